use super::*;
use chrono::Duration;

#[test]
fn human_durations_match_go_units() {
    let cases = [
        (Duration::milliseconds(450), "Less than a second"),
        (Duration::seconds(1), "1 second"),
        (Duration::seconds(47), "47 seconds"),
        (Duration::seconds(60), "About a minute"),
        (Duration::minutes(3), "3 minutes"),
        (Duration::minutes(35) + Duration::seconds(40), "35 minutes"),
        (Duration::hours(1), "About an hour"),
        (Duration::hours(1) + Duration::minutes(29), "About an hour"),
        (Duration::hours(1) + Duration::minutes(31), "2 hours"),
        (Duration::hours(3) + Duration::minutes(59), "4 hours"),
        (Duration::hours(24), "24 hours"),
        (Duration::hours(36), "36 hours"),
        (Duration::days(2), "2 days"),
        (Duration::days(13) + Duration::hours(5), "13 days"),
        (Duration::weeks(2), "2 weeks"),
        (Duration::days(30), "4 weeks"),
        (Duration::days(44), "6 weeks"),
        (Duration::days(60), "2 months"),
        (Duration::days(97), "3 months"),
        (Duration::days(720), "24 months"),
        (Duration::days(734), "2 years"),
        (Duration::days(3 * 365 + 60), "3 years"),
    ];
    for (d, want) in cases {
        assert_eq!(human_duration(d), want, "{d:?}");
    }
}

#[test]
fn status_words_match_docker() {
    let now = Utc::now();
    let started = Some(now - Duration::seconds(3));
    assert_eq!(State::Created.describe(None, now), "Created");
    assert_eq!(
        State::Running { pid: 1 }.describe(started, now),
        "Up 3 seconds"
    );
    assert_eq!(
        State::Paused { pid: 1 }.describe(started, now),
        "Up 3 seconds (Paused)"
    );
    let exited = State::Exited {
        code: 2,
        finished: Some(now - Duration::minutes(2)),
    };
    assert_eq!(exited.describe(started, now), "Exited (2) 2 minutes ago");
    let just = State::Exited {
        code: 0,
        finished: Some(now),
    };
    assert_eq!(
        just.describe(started, now),
        "Exited (0) Less than a second ago"
    );
}

#[test]
fn task_status_maps_to_state() {
    let p = |status: Status, code: u32| Process {
        status: status as i32,
        pid: 7,
        exit_status: code,
        ..Default::default()
    };
    assert_eq!(State::from_task(None), State::Created);
    assert_eq!(
        State::from_task(Some(&p(Status::Created, 0))),
        State::Created
    );
    assert_eq!(
        State::from_task(Some(&p(Status::Running, 0))),
        State::Running { pid: 7 }
    );
    assert_eq!(
        State::from_task(Some(&p(Status::Unknown, 0))),
        State::Running { pid: 7 }
    );
    assert_eq!(
        State::from_task(Some(&p(Status::Pausing, 0))),
        State::Paused { pid: 7 }
    );
    assert_eq!(
        State::from_task(Some(&p(Status::Stopped, 3))),
        State::Exited {
            code: 3,
            finished: None
        }
    );
}

#[test]
fn signals_parse_like_docker() {
    assert_eq!(parse_signal("KILL"), Some(9));
    assert_eq!(parse_signal("sigterm"), Some(15));
    assert_eq!(parse_signal("SIGUSR1"), Some(10));
    assert_eq!(parse_signal("9"), Some(9));
    assert_eq!(parse_signal("RTMIN+2"), Some(36));
    assert_eq!(parse_signal("SIGRTMAX-1"), Some(63));
    assert_eq!(parse_signal("0"), None);
    assert_eq!(parse_signal("65"), None);
    assert_eq!(parse_signal("FOO"), None);
}

#[test]
fn go_time_trims_the_fraction() {
    let t = DateTime::from_timestamp(1_700_000_000, 120_000_000).unwrap();
    assert_eq!(go_time(Some(t)), "2023-11-14T22:13:20.12Z");
    let t = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
    assert_eq!(go_time(Some(t)), "2023-11-14T22:13:20Z");
    assert_eq!(go_time(None), "0001-01-01T00:00:00Z");
}

fn container(id: &str, name: &str) -> Container {
    Container::from_api(api::Container {
        id: id.to_string(),
        labels: HashMap::from([(label::NAME.to_string(), name.to_string())]),
        ..Default::default()
    })
}

#[test]
fn lookup_prefers_id_then_name_then_prefix() {
    let all = vec![
        container("abc123", "web"),
        container("abd456", "abc"),
        container("fff", "db"),
    ];
    assert_eq!(select(&all, "abc123"), Lookup::Found(&all[0]));
    // An exact name wins over an ID prefix, as in docker.
    assert_eq!(select(&all, "abc"), Lookup::Found(&all[1]));
    assert_eq!(select(&all, "/web"), Lookup::Found(&all[0]));
    assert_eq!(select(&all, "ab"), Lookup::Ambiguous);
    assert_eq!(select(&all, "ff"), Lookup::Found(&all[2]));
    assert_eq!(select(&all, "zz"), Lookup::Missing);
    assert_eq!(select(&all, ""), Lookup::Missing);
}

#[test]
fn berth_labels_are_decoded_and_hidden() {
    let record = Record {
        user: "1000".into(),
        auto_remove: true,
        ..Default::default()
    };
    let c = Container::from_api(api::Container {
        id: "0123456789abcdef".into(),
        image: "docker.io/library/busybox:latest".into(),
        labels: HashMap::from([
            (label::IMAGE.to_string(), "busybox".to_string()),
            (
                label::CONFIG.to_string(),
                serde_json::to_string(&record).unwrap(),
            ),
            (
                label::STARTED_AT.to_string(),
                "2024-01-02T03:04:05Z".to_string(),
            ),
            ("berth.other".to_string(), "x".to_string()),
            ("app".to_string(), "web".to_string()),
        ]),
        ..Default::default()
    });
    assert_eq!(c.name, "0123456789ab");
    assert_eq!(c.image, "busybox");
    assert_eq!(c.record, record);
    assert_eq!(
        c.started_at.unwrap().to_rfc3339(),
        "2024-01-02T03:04:05+00:00"
    );
    assert_eq!(
        c.labels,
        BTreeMap::from([("app".to_string(), "web".to_string())])
    );
}
