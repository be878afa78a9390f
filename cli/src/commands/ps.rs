//! `docker ps`: docker's columns, truncation and durations, laid out by
//! docker's list formats (`crate::format`).

use std::collections::BTreeMap;

use chrono::{DateTime, Local, Utc};
use serde_json::{json, Value};

use crate::cli::PsArgs;
use crate::client::Gateway;
use crate::containers::{self, human_duration, Container, State};
use crate::error::{CliError, Result};
use crate::format::ListFormat;

/// docker's default `ps` table.
const DEFAULT_FORMAT: &str =
    "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}";
/// `ps -q`.
const QUIET_FORMAT: &str = "{{.ID}}";

/// Column titles docker prints for each field of a `table` template.
const HEADERS: &[(&str, &str)] = &[
    ("ID", "CONTAINER ID"),
    ("Image", "IMAGE"),
    ("Command", "COMMAND"),
    ("CreatedAt", "CREATED AT"),
    ("RunningFor", "CREATED"),
    ("Ports", "PORTS"),
    ("State", "STATE"),
    ("Status", "STATUS"),
    ("Size", "SIZE"),
    ("Names", "NAMES"),
    ("Labels", "LABELS"),
    ("Mounts", "MOUNTS"),
    ("Networks", "NETWORKS"),
    ("LocalVolumes", "LOCAL VOLUMES"),
    ("Platform", "PLATFORM"),
];

/// Go's `strconv.Quote`.
pub fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\u{b}' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// docker's `Ellipsis`: at most `max` characters, the last one `…`.
pub fn ellipsis(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// The short display form of an image reference, as docker's ps shows it:
/// `docker.io/library/busybox:latest` → `busybox:latest`, digests dropped.
fn familiar_image(image: &str) -> String {
    let no_digest = image.split_once('@').map_or(image, |(n, _)| n);
    for prefix in [
        "docker.io/library/",
        "index.docker.io/library/",
        "docker.io/",
        "index.docker.io/",
    ] {
        if let Some(rest) = no_digest.strip_prefix(prefix) {
            return rest.to_string();
        }
    }
    no_digest.to_string()
}

/// Go's `time.Time.String()` of a creation time, in local time.
fn go_time_string(t: DateTime<Utc>) -> String {
    let local = t.with_timezone(&Local);
    let offset = local.format("%z").to_string();
    let zone = if offset == "+0000" {
        "UTC".to_string()
    } else {
        offset.clone()
    };
    format!("{} {offset} {zone}", local.format("%Y-%m-%d %H:%M:%S"))
}

/// One row of `ps` as docker's template context exposes it.
pub fn row(c: &Container, state: &State, trunc: bool, now: DateTime<Utc>) -> Value {
    let id = if trunc {
        c.id.chars().take(12).collect()
    } else {
        c.id.clone()
    };
    let image = if c.image.is_empty() {
        "<no image>".to_string()
    } else if trunc {
        familiar_image(&c.image)
    } else {
        c.image.clone()
    };
    let command = c.command_line();
    let command = go_quote(&if trunc {
        ellipsis(&command, 20)
    } else {
        command
    });
    let created = c.created.unwrap_or(now);
    let labels: Vec<String> = c.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let mounts: Vec<String> = c.spec["mounts"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|m| m["type"] == "bind")
        .filter_map(|m| m["source"].as_str())
        .map(|s| {
            if trunc {
                ellipsis(s, 15)
            } else {
                s.to_string()
            }
        })
        .collect();
    // Keys in sorted order: docker's `{{json .}}` prints a Go map, sorted.
    json!({
        "Command": command,
        "CreatedAt": go_time_string(created),
        "ID": id,
        "Image": image,
        "Labels": labels.join(","),
        "LocalVolumes": "0",
        "Mounts": mounts.join(","),
        "Names": c.name,
        "Networks": c.record.network_mode,
        "Platform": Value::Null,
        "Ports": "",
        "RunningFor": format!("{} ago", human_duration(now - created)),
        "Size": "0B",
        "State": state.word(),
        "Status": state.describe(c.started_at, now),
    })
}

/// `--filter` conditions docker's ps supports that berth can answer.
#[derive(Debug, Default, PartialEq, Eq)]
struct Filters {
    id: Vec<String>,
    name: Vec<String>,
    label: Vec<(String, Option<String>)>,
    status: Vec<String>,
    exited: Vec<u32>,
}

fn parse_filters(values: &[String]) -> Result<Filters> {
    let mut f = Filters::default();
    for v in values {
        let Some((key, value)) = v.split_once('=') else {
            return Err(CliError::general(format!("invalid argument \"{v}\" for \"-f, --filter\" flag: bad format of filter (expected name=value)")));
        };
        match key {
            "id" => f.id.push(value.to_string()),
            "name" => f.name.push(value.to_string()),
            "label" => f.label.push(match value.split_once('=') {
                Some((k, v)) => (k.to_string(), Some(v.to_string())),
                None => (value.to_string(), None),
            }),
            "status" => {
                const STATES: &[&str] = &[
                    "created",
                    "restarting",
                    "running",
                    "removing",
                    "paused",
                    "exited",
                    "dead",
                ];
                if !STATES.contains(&value) {
                    return Err(CliError::general(format!(
                        "Error response from daemon: invalid filter 'status={value}'"
                    )));
                }
                f.status.push(value.to_string())
            }
            "exited" => f.exited.push(value.parse().map_err(|_| {
                CliError::general(format!(
                    "Error response from daemon: invalid filter 'exited={value}'"
                ))
            })?),
            _ => {
                return Err(CliError::general(format!(
                    "Error response from daemon: invalid filter '{key}'"
                )))
            }
        }
    }
    Ok(f)
}

/// docker's name filter is a regular expression; berth matches a substring,
/// honouring `^` and `$` anchors.
fn name_matches(pattern: &str, name: &str) -> bool {
    let anchored_start = pattern.starts_with('^');
    let anchored_end = pattern.ends_with('$') && pattern.len() > 1;
    let core = pattern.trim_start_matches('^');
    let core = if anchored_end {
        &core[..core.len() - 1]
    } else {
        core
    };
    match (anchored_start, anchored_end) {
        (true, true) => name == core,
        (true, false) => name.starts_with(core),
        (false, true) => name.ends_with(core),
        (false, false) => name.contains(core),
    }
}

impl Filters {
    fn matches(&self, c: &Container, state: &State) -> bool {
        (self.id.is_empty() || self.id.iter().any(|p| c.id.starts_with(p.as_str())))
            && (self.name.is_empty() || self.name.iter().any(|p| name_matches(p, &c.name)))
            && self.label.iter().all(|(k, v)| match v {
                Some(v) => c.labels.get(k) == Some(v),
                None => c.labels.contains_key(k),
            })
            && (self.status.is_empty() || self.status.iter().any(|s| s == state.word()))
            && (self.exited.is_empty()
                || matches!(state, State::Exited { code, .. } if self.exited.contains(code)))
    }

    /// Filtering by an exited state shows stopped containers without `-a`.
    fn implies_all(&self) -> bool {
        !self.exited.is_empty() || self.status.iter().any(|s| s != "running" && s != "paused")
    }
}

/// Docker's header for a `table` template: each field's column title.
fn header_context() -> Value {
    let map: BTreeMap<&str, &str> = HEADERS.iter().copied().collect();
    json!(map)
}

/// Renders rows with a list format (`table …`, `json` or a template per row).
fn render(template: &str, rows: &[Value]) -> Result<String> {
    let list = ListFormat::parse(template)
        .map_err(|e| CliError::general(format!("template parsing error: {e}")))?;
    list.render(rows, &header_context())
        .map_err(|e| CliError::general(e.to_string()))
}

pub async fn ps(gw: &Gateway, a: PsArgs) -> Result<i32> {
    if a.size {
        return Err(CliError::daemon("--size is not supported by berth"));
    }
    let filters = parse_filters(&a.filter)?;
    let last = if a.latest {
        Some(1)
    } else {
        a.last.filter(|n| *n != -1)
    };
    let all = a.all || last.is_some() || filters.implies_all();

    let now = Utc::now();
    let mut listed: Vec<(Container, State)> = containers::list_live(gw)
        .await?
        .into_iter()
        .filter(|(c, s)| (all || s.is_running()) && filters.matches(c, s))
        .collect();
    if let Some(n) = last.filter(|n| *n > 0) {
        listed.truncate(n as usize);
    }
    let trunc = !a.no_trunc;
    let rows: Vec<Value> = listed.iter().map(|(c, s)| row(c, s, trunc, now)).collect();

    let format = match (&a.format, a.quiet) {
        (Some(f), _) if !f.is_empty() && f != "table" => f.as_str(),
        (_, true) => QUIET_FORMAT,
        _ => DEFAULT_FORMAT,
    };
    print!("{}", render(format, &rows)?);
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use containerd_client::services::v1 as api;
    use std::collections::HashMap;

    #[test]
    fn default_table_matches_dockers_layout() {
        let rows = vec![
            json!({ "ID": "a1b2c3d4e5f6", "Image": "busybox", "Command": "\"sh -c 'while true; …\"",
                    "RunningFor": "2 minutes ago", "Status": "Up 2 minutes", "Ports": "", "Names": "happy_turing" }),
            json!({ "ID": "ffffffffffff", "Image": "busybox:latest", "Command": "\"true\"",
                    "RunningFor": "1 second ago", "Status": "Exited (0) Less than a second ago", "Ports": "", "Names": "x" }),
        ];
        // What docker 28 printed for the same two containers.
        let want = "CONTAINER ID   IMAGE            COMMAND                  CREATED         STATUS                              PORTS     NAMES\n\
                    a1b2c3d4e5f6   busybox          \"sh -c 'while true; …\"   2 minutes ago   Up 2 minutes                                  happy_turing\n\
                    ffffffffffff   busybox:latest   \"true\"                   1 second ago    Exited (0) Less than a second ago             x\n";
        assert_eq!(render(DEFAULT_FORMAT, &rows).unwrap(), want);
        assert_eq!(
            render(DEFAULT_FORMAT, &[]).unwrap(),
            "CONTAINER ID   IMAGE     COMMAND   CREATED   STATUS    PORTS     NAMES\n"
        );
        assert_eq!(
            render(QUIET_FORMAT, &rows).unwrap(),
            "a1b2c3d4e5f6\nffffffffffff\n"
        );
        assert_eq!(
            render("table {{.ID}}\\t{{.Names}}", &rows).unwrap(),
            "CONTAINER ID   NAMES\na1b2c3d4e5f6   happy_turing\nffffffffffff   x\n"
        );
    }

    #[test]
    fn commands_are_quoted_and_truncated() {
        assert_eq!(
            go_quote(&ellipsis("sh -c while true; do sleep 1; done", 20)),
            "\"sh -c while true; d…\""
        );
        assert_eq!(go_quote("echo \"hi\"\n"), "\"echo \\\"hi\\\"\\n\"");
        assert_eq!(ellipsis("true", 20), "true");
        assert_eq!(ellipsis("12345678901234567890", 20), "12345678901234567890");
        assert_eq!(
            ellipsis("123456789012345678901", 20),
            "1234567890123456789…"
        );
    }

    #[test]
    fn images_are_shown_in_familiar_form() {
        assert_eq!(
            familiar_image("docker.io/library/busybox:latest"),
            "busybox:latest"
        );
        assert_eq!(familiar_image("busybox"), "busybox");
        assert_eq!(familiar_image("docker.io/me/app:1"), "me/app:1");
        assert_eq!(
            familiar_image("localhost:5000/app@sha256:abc"),
            "localhost:5000/app"
        );
    }

    fn container(name: &str, args: &[&str]) -> Container {
        let spec = json!({ "process": { "args": args }, "mounts": [
            { "type": "bind", "source": "/var/lib/berth-stack/workspace/src", "destination": "/src" },
            { "type": "proc", "source": "proc", "destination": "/proc" },
        ]});
        Container::from_api(api::Container {
            id: "f".repeat(64),
            image: "docker.io/library/busybox:latest".into(),
            labels: HashMap::from([
                (containers::label::NAME.to_string(), name.to_string()),
                (containers::label::IMAGE.to_string(), "busybox".to_string()),
                ("b".to_string(), "2".to_string()),
                ("a".to_string(), "1".to_string()),
            ]),
            spec: Some(prost_types::Any {
                type_url: containers::SPEC_TYPE_URL.into(),
                value: serde_json::to_vec(&spec).unwrap(),
            }),
            created_at: Some(prost_types::Timestamp {
                seconds: 1_700_000_000,
                nanos: 0,
            }),
            ..Default::default()
        })
    }

    #[test]
    fn rows_carry_dockers_fields() {
        let c = container("web", &["sh", "-c", "while true; do sleep 1; done"]);
        let now = c.created.unwrap() + chrono::Duration::seconds(125);
        let r = row(
            &c,
            &State::Exited {
                code: 3,
                finished: Some(now),
            },
            true,
            now,
        );
        assert_eq!(r["ID"], "ffffffffffff");
        assert_eq!(r["Image"], "busybox");
        assert_eq!(r["Command"], "\"sh -c while true; d…\"");
        assert_eq!(r["RunningFor"], "2 minutes ago");
        assert_eq!(r["Status"], "Exited (3) Less than a second ago");
        assert_eq!(r["State"], "exited");
        assert_eq!(r["Names"], "web");
        assert_eq!(r["Labels"], "a=1,b=2");
        assert_eq!(r["Mounts"], "/var/lib/berth…");
        let full = row(&c, &State::Created, false, now);
        assert_eq!(full["ID"].as_str().unwrap().len(), 64);
        assert_eq!(full["Command"], "\"sh -c while true; do sleep 1; done\"");
        assert_eq!(full["Status"], "Created");
    }

    #[test]
    fn filters_select_like_docker() {
        let c = container("web-1", &["true"]);
        let exited = State::Exited {
            code: 1,
            finished: None,
        };
        let f = |v: &[&str]| {
            parse_filters(&v.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap()
        };
        assert!(f(&["name=web"]).matches(&c, &exited));
        assert!(f(&["name=^web-1$"]).matches(&c, &exited));
        assert!(!f(&["name=^eb"]).matches(&c, &exited));
        assert!(f(&["label=a=1", "label=b"]).matches(&c, &exited));
        assert!(!f(&["label=a=2"]).matches(&c, &exited));
        assert!(f(&["status=exited", "exited=1"]).matches(&c, &exited));
        assert!(!f(&["status=running"]).matches(&c, &exited));
        assert!(f(&["id=fff"]).matches(&c, &exited));
        assert!(f(&["status=exited"]).implies_all());
        assert!(!f(&["status=running"]).implies_all());
        assert!(parse_filters(&["bogus=1".to_string()]).is_err());
        assert!(parse_filters(&["status=sleeping".to_string()]).is_err());
    }
}
