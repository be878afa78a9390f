//! docker's `image inspect` JSON (API 1.45, containerd image store shape),
//! built from what containerd holds.

use serde_json::{json, Map, Value};

use super::{parse_name, Resolved};
use crate::format::time;

/// The storage driver name docker reports with the containerd snapshotter.
const GRAPH_DRIVER: &str = "overlayfs";
/// What Go prints for a zero `time.Time`.
const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

/// `names`: every stored name of this image with the digest it points to.
pub(super) fn build(r: &Resolved, names: &[(String, String)], size: i64) -> Value {
    let mut tags: Vec<String> = Vec::new();
    let mut digests: Vec<String> = Vec::new();
    for (name, target) in names {
        let Some(reference) = parse_name(name) else {
            continue;
        };
        let repo = reference.familiar_name();
        if let Some(tag) = &reference.tag {
            tags.push(format!("{repo}:{tag}"));
        }
        let digest = reference.digest.clone().unwrap_or_else(|| target.clone());
        digests.push(format!("{repo}@{digest}"));
    }
    tags.sort();
    tags.dedup();
    digests.sort();
    digests.dedup();

    let raw = &r.raw_config;
    let text = |key: &str| {
        raw.get(key)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    let created = raw
        .get("created")
        .and_then(Value::as_str)
        .map(|c| time::parse_rfc3339(c).map_or_else(|| c.to_string(), |t| time::rfc3339_nano(&t)))
        .unwrap_or_default();
    let last_tag = r
        .record
        .updated_at
        .as_ref()
        .and_then(time::from_timestamp)
        .map_or_else(|| ZERO_TIME.to_string(), |t| time::rfc3339_nano(&t));
    let layers: Vec<Value> = r
        .config
        .rootfs()
        .diff_ids()
        .iter()
        .map(|d| json!(d))
        .collect();

    let mut out = Map::new();
    out.insert("Id".into(), json!(r.config_digest));
    out.insert("RepoTags".into(), json!(tags));
    out.insert("RepoDigests".into(), json!(digests));
    out.insert("Parent".into(), json!(""));
    out.insert("Comment".into(), json!(text("comment")));
    out.insert("Created".into(), json!(created));
    out.insert("DockerVersion".into(), json!(text("docker_version")));
    out.insert("Author".into(), json!(text("author")));
    out.insert("Config".into(), container_config(raw.get("config")));
    out.insert("Architecture".into(), json!(text("architecture")));
    if let Some(v) = raw
        .get("variant")
        .and_then(Value::as_str)
        .filter(|v| !v.is_empty())
    {
        out.insert("Variant".into(), json!(v));
    }
    out.insert("Os".into(), json!(text("os")));
    if let Some(v) = raw
        .get("os.version")
        .and_then(Value::as_str)
        .filter(|v| !v.is_empty())
    {
        out.insert("OsVersion".into(), json!(v));
    }
    out.insert("Size".into(), json!(size));
    out.insert(
        "GraphDriver".into(),
        json!({"Data": null, "Name": GRAPH_DRIVER}),
    );
    out.insert("RootFS".into(), json!({"Type": "layers", "Layers": layers}));
    out.insert("Metadata".into(), json!({"LastTagTime": last_tag}));
    Value::Object(out)
}

/// docker's `container.Config` from an image config's `config`, in its
/// field order, with its `omitempty` fields left out when empty.
fn container_config(c: Option<&Value>) -> Value {
    let empty = Map::new();
    let c = c.and_then(Value::as_object).unwrap_or(&empty);
    let string = |k: &str| json!(c.get(k).and_then(Value::as_str).unwrap_or_default());
    let strings = |k: &str| match c.get(k) {
        Some(Value::Array(a)) if a.iter().all(Value::is_string) => Value::Array(a.clone()),
        _ => Value::Null,
    };
    // Go maps marshal with sorted keys.
    let sorted = |k: &str| match c.get(k) {
        Some(Value::Object(o)) => {
            let mut keys: Vec<&String> = o.keys().collect();
            keys.sort();
            Value::Object(
                keys.into_iter()
                    .map(|key| (key.clone(), o[key].clone()))
                    .collect(),
            )
        }
        _ => Value::Null,
    };
    let mut out = Map::new();
    out.insert("Hostname".into(), json!(""));
    out.insert("Domainname".into(), json!(""));
    out.insert("User".into(), string("User"));
    out.insert("AttachStdin".into(), json!(false));
    out.insert("AttachStdout".into(), json!(false));
    out.insert("AttachStderr".into(), json!(false));
    let ports = sorted("ExposedPorts");
    if ports.as_object().is_some_and(|o| !o.is_empty()) {
        out.insert("ExposedPorts".into(), ports);
    }
    out.insert("Tty".into(), json!(false));
    out.insert("OpenStdin".into(), json!(false));
    out.insert("StdinOnce".into(), json!(false));
    out.insert("Env".into(), strings("Env"));
    out.insert("Cmd".into(), strings("Cmd"));
    if let Some(h) = c.get("Healthcheck").filter(|h| h.is_object()) {
        out.insert("Healthcheck".into(), h.clone());
    }
    if c.get("ArgsEscaped").and_then(Value::as_bool) == Some(true) {
        out.insert("ArgsEscaped".into(), json!(true));
    }
    out.insert("Image".into(), string("Image"));
    out.insert("Volumes".into(), sorted("Volumes"));
    out.insert("WorkingDir".into(), string("WorkingDir"));
    out.insert("Entrypoint".into(), strings("Entrypoint"));
    out.insert("OnBuild".into(), strings("OnBuild"));
    out.insert("Labels".into(), sorted("Labels"));
    if let Some(s) = c
        .get("StopSignal")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
    {
        out.insert("StopSignal".into(), json!(s));
    }
    if let Some(s) = c
        .get("Shell")
        .filter(|s| s.as_array().is_some_and(|a| !a.is_empty()))
    {
        out.insert("Shell".into(), s.clone());
    }
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::json;
    use crate::image::manifest::{Descriptor, Manifest};
    use containerd_client::services::v1 as api;
    use oci_spec::image::ImageConfiguration;

    const CONFIG: &str = r#"{"architecture":"amd64","os":"linux","created":"2024-01-01T00:00:00Z",
        "author":"me <me@example.com>",
        "config":{"Env":["PATH=/bin"],"Cmd":["sh"],"Labels":{"z":"1","a":"<2>"},
                  "ExposedPorts":{"80/tcp":{},"443/tcp":{}},"User":"berth","StopSignal":"SIGTERM"},
        "rootfs":{"type":"layers","diff_ids":["sha256:aaaa"]}}"#;

    fn resolved() -> Resolved {
        let digest = |c: char| format!("sha256:{}", c.to_string().repeat(64));
        Resolved {
            record: api::Image {
                name: "docker.io/library/busybox:latest".into(),
                updated_at: Some(prost_types::Timestamp {
                    seconds: 1_704_067_200,
                    nanos: 0,
                }),
                ..Default::default()
            },
            manifest_digest: digest('m'),
            manifest: Manifest {
                config: Descriptor {
                    media_type: String::new(),
                    digest: digest('c'),
                    size: 1,
                    platform: None,
                },
                layers: Vec::new(),
            },
            config_digest: digest('c'),
            raw_config: serde_json::from_str(CONFIG).unwrap(),
            config: ImageConfiguration::from_reader(CONFIG.as_bytes()).unwrap(),
            chain_ids: vec!["sha256:aaaa".into()],
        }
    }

    #[test]
    fn builds_docker_shaped_json() {
        let t =
            "sha256:1111111111111111111111111111111111111111111111111111111111111111".to_string();
        let names = vec![
            ("docker.io/library/busybox:latest".to_string(), t.clone()),
            ("localhost:5000/bb:1".to_string(), t.clone()),
            ("moby-dangling@sha256:x".to_string(), t.clone()),
        ];
        let v = build(&resolved(), &names, 2_129_920);
        let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            [
                "Id",
                "RepoTags",
                "RepoDigests",
                "Parent",
                "Comment",
                "Created",
                "DockerVersion",
                "Author",
                "Config",
                "Architecture",
                "Os",
                "Size",
                "GraphDriver",
                "RootFS",
                "Metadata"
            ]
        );
        assert_eq!(
            v["RepoTags"],
            json!(["busybox:latest", "localhost:5000/bb:1"])
        );
        assert_eq!(
            v["RepoDigests"],
            json!([format!("busybox@{t}"), format!("localhost:5000/bb@{t}")])
        );
        assert_eq!(v["Author"], "me <me@example.com>");
        assert_eq!(v["Metadata"]["LastTagTime"], "2024-01-01T00:00:00Z");
        let cfg = &v["Config"];
        let cfg_keys: Vec<&str> = cfg
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(
            cfg_keys,
            [
                "Hostname",
                "Domainname",
                "User",
                "AttachStdin",
                "AttachStdout",
                "AttachStderr",
                "ExposedPorts",
                "Tty",
                "OpenStdin",
                "StdinOnce",
                "Env",
                "Cmd",
                "Image",
                "Volumes",
                "WorkingDir",
                "Entrypoint",
                "OnBuild",
                "Labels",
                "StopSignal"
            ]
        );
        assert_eq!(
            json::encode(&cfg["Labels"], true),
            r#"{"a":"\u003c2\u003e","z":"1"}"#
        );
        assert_eq!(
            json::encode(&cfg["ExposedPorts"], false),
            r#"{"443/tcp":{},"80/tcp":{}}"#
        );
        assert!(cfg["Entrypoint"].is_null() && cfg["Volumes"].is_null());
        assert_eq!(
            v["RootFS"],
            json!({"Type": "layers", "Layers": ["sha256:aaaa"]})
        );
    }
}
