use super::*;

fn exited(secs_ago: i64, now: DateTime<Utc>) -> State {
    State::Exited {
        code: 0,
        finished: Some(now - chrono::Duration::seconds(secs_ago)),
    }
}

#[test]
fn an_attached_run_keeps_its_exited_container_to_itself_for_a_while() {
    let now = Utc::now();
    let attached = Record {
        auto_remove: true,
        attach_stdout: true,
        ..Default::default()
    };
    assert!(!sweepable(&attached, &exited(1, now), now));
    assert!(sweepable(&attached, &exited(31, now), now));
    assert!(!sweepable(&attached, &State::Running { pid: 1 }, now));
}

#[test]
fn a_detached_exited_container_is_removed_at_once() {
    let now = Utc::now();
    let detached = Record {
        auto_remove: true,
        attach_stdout: false,
        ..Default::default()
    };
    assert!(sweepable(&detached, &exited(0, now), now));
}
