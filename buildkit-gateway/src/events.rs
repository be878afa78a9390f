//! What of containerd's event stream a sandbox may see: its subscription
//! filters are scoped to its namespace, and envelopes are dropped or
//! scrubbed (boundary rule 2). Used by the Events service
//! (`services/events.rs`); in the library so the fuzz targets can reach it.

use berth_proto::STDIO_RELAY;
use containerd_client::events::TaskCreate;
use containerd_client::types::Envelope;
use prost::Message;

/// The event type whose payload carries host paths.
pub const TASK_CREATE: &str = "containerd.events.TaskCreate";

/// containerd ORs the filters of a subscription and ANDs the selectors of
/// one filter (comma-separated), so the namespace goes into each.
pub fn scoped_filters(client: &[String], ns: &str) -> Vec<String> {
    let own = format!("namespace=={}", quote(ns));
    let scoped: Vec<String> = client
        .iter()
        .filter(|f| !f.trim().is_empty())
        .map(|f| format!("{own},{f}"))
        .collect();
    if scoped.is_empty() {
        vec![own]
    } else {
        scoped
    }
}

fn quote(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// The envelope as the sandbox may see it, or `None` if it may not.
pub fn sandboxed(mut env: Envelope, ns: &str) -> Option<Envelope> {
    if env.namespace != ns {
        return None;
    }
    let Some(event) = env.event.as_mut() else {
        return Some(env);
    };
    if type_name(&event.type_url) == TASK_CREATE {
        // Unreadable means unscrubbable: drop it rather than pass paths on.
        let mut tc = TaskCreate::decode(event.value.as_slice()).ok()?;
        tc.bundle.clear();
        tc.rootfs.clear();
        tc.checkpoint.clear();
        if let Some(io) = tc.io.as_mut() {
            for p in [&mut io.stdin, &mut io.stdout, &mut io.stderr] {
                if !p.is_empty() {
                    *p = STDIO_RELAY.to_string();
                }
            }
        }
        event.value = tc.encode_to_vec();
    }
    Some(env)
}

fn type_name(type_url: &str) -> &str {
    type_url.rsplit('/').next().unwrap_or(type_url)
}

#[cfg(test)]
mod tests {
    use super::*;
    use containerd_client::events::TaskIo;
    use containerd_client::types::Mount;

    fn envelope(ns: &str, topic: &str, event: Option<prost_types::Any>) -> Envelope {
        Envelope {
            timestamp: None,
            namespace: ns.into(),
            topic: topic.into(),
            event,
        }
    }

    #[test]
    fn drops_envelopes_of_other_namespaces() {
        assert!(sandboxed(
            envelope("berth-sandbox", "/containers/create", None),
            "berth-sandbox"
        )
        .is_some());
        for other in ["default", "k8s.io", "", "berth-sandbox2", "BERTH-SANDBOX"] {
            assert!(
                sandboxed(envelope(other, "/containers/create", None), "berth-sandbox").is_none(),
                "{other}"
            );
        }
    }

    #[test]
    fn task_create_loses_its_host_paths() {
        let tc = TaskCreate {
            container_id: "web".into(),
            bundle: "/run/berth-stack/containerd/io.containerd.runtime.v2.task/berth-sandbox/web"
                .into(),
            rootfs: vec![Mount {
                r#type: "overlay".into(),
                source: "overlay".into(),
                target: String::new(),
                options: vec!["lowerdir=/var/lib/x".into()],
            }],
            io: Some(TaskIo {
                stdin: String::new(),
                stdout: "/var/lib/berth-stack/gateway/io/web/init/stdout".into(),
                stderr: "/var/lib/berth-stack/gateway/io/web/init/stderr".into(),
                terminal: false,
            }),
            checkpoint: String::new(),
            pid: 42,
        };
        let any = prost_types::Any {
            type_url: TASK_CREATE.into(),
            value: tc.encode_to_vec(),
        };
        let env = sandboxed(envelope("ns", "/tasks/create", Some(any)), "ns").unwrap();
        let got = TaskCreate::decode(env.event.unwrap().value.as_slice()).unwrap();
        assert_eq!(got.container_id, "web");
        assert_eq!(got.pid, 42);
        assert!(got.bundle.is_empty() && got.rootfs.is_empty());
        let io = got.io.unwrap();
        assert_eq!(
            (io.stdin.as_str(), io.stdout.as_str(), io.stderr.as_str()),
            ("", STDIO_RELAY, STDIO_RELAY)
        );
    }

    #[test]
    fn undecodable_task_create_is_dropped() {
        let any = prost_types::Any {
            type_url: format!("types.googleapis.com/{TASK_CREATE}"),
            value: vec![0xff, 0xff],
        };
        assert!(sandboxed(envelope("ns", "/tasks/create", Some(any)), "ns").is_none());
    }

    #[test]
    fn namespace_is_anded_into_every_client_filter() {
        assert_eq!(
            scoped_filters(&[], "berth-sandbox"),
            vec![r#"namespace=="berth-sandbox""#]
        );
        assert_eq!(
            scoped_filters(&["".into()], "ns"),
            vec![r#"namespace=="ns""#]
        );
        assert_eq!(
            scoped_filters(
                &[
                    r#"topic=="/tasks/exit""#.into(),
                    r#"topic~="/containers/""#.into()
                ],
                "ns"
            ),
            vec![
                r#"namespace=="ns",topic=="/tasks/exit""#,
                r#"namespace=="ns",topic~="/containers/""#
            ]
        );
    }
}
