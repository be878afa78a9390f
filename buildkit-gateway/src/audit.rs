//! The gateway's log: one JSON line per decision on stderr (boundary rule 6),
//! plus the few operational lines an operator needs (start-up, internal
//! errors, relay trouble), in the same shape.

use std::io::Write;

use serde_json::{json, Value};
use tonic::transport::server::UdsConnectInfo;

/// Who sent a request, from SO_PEERCRED of its unix connection.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Peer {
    pub uid: Option<u32>,
    pub pid: Option<i32>,
}

impl Peer {
    pub fn of<T>(req: &tonic::Request<T>) -> Self {
        let cred = req
            .extensions()
            .get::<UdsConnectInfo>()
            .and_then(|i| i.peer_cred);
        Self {
            uid: cred.map(|c| c.uid()),
            pid: cred.and_then(|c| c.pid()),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Allow,
    Deny,
}

/// One decision, as logged.
#[derive(Debug)]
pub struct Decision<'a> {
    pub peer: Peer,
    /// Full gRPC path, e.g. `/containerd.services.tasks.v1.Tasks/Create`.
    pub method: &'a str,
    /// The object the request names: container id, image name, digest…
    pub object: &'a str,
    pub verdict: Verdict,
    /// The policy or gateway rule that decided.
    pub rule: &'a str,
    pub reasons: &'a [String],
}

pub fn decision(d: &Decision<'_>) {
    emit(decision_line(d, &now()));
}

/// A failure inside the gateway whose details the client never sees.
pub fn internal_error(detail: &str) {
    emit(json!({ "ts": now(), "level": "error", "msg": detail }));
}

/// Something worth an operator's attention that did not fail a request.
pub fn warn(msg: &str) {
    emit(json!({ "ts": now(), "level": "warn", "msg": msg }));
}

pub fn info(msg: &str) {
    emit(json!({ "ts": now(), "level": "info", "msg": msg }));
}

fn decision_line(d: &Decision<'_>, ts: &str) -> Value {
    json!({
        "ts": ts,
        "level": "audit",
        "peer_uid": d.peer.uid,
        "peer_pid": d.peer.pid,
        "method": d.method,
        "object": d.object,
        "verdict": match d.verdict { Verdict::Allow => "allow", Verdict::Deny => "deny" },
        "rule": d.rule,
        "reasons": d.reasons,
    })
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

fn emit(line: Value) {
    // One write per line; a closed stderr must not take the gateway down.
    let mut text = line.to_string();
    text.push('\n');
    let _ = std::io::stderr().lock().write_all(text.as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decision_line_has_every_field() {
        let reasons = vec!["privileged containers are not allowed".to_string()];
        let line = decision_line(
            &Decision {
                peer: Peer {
                    uid: Some(1000),
                    pid: Some(42),
                },
                method: "/containerd.services.containers.v1.Containers/Create",
                object: "web",
                verdict: Verdict::Deny,
                rule: "containers.create",
                reasons: &reasons,
            },
            "2026-01-01T00:00:00.000Z",
        );
        assert_eq!(
            line,
            json!({
                "ts": "2026-01-01T00:00:00.000Z",
                "level": "audit",
                "peer_uid": 1000,
                "peer_pid": 42,
                "method": "/containerd.services.containers.v1.Containers/Create",
                "object": "web",
                "verdict": "deny",
                "rule": "containers.create",
                "reasons": ["privileged containers are not allowed"],
            })
        );
        assert!(!line.to_string().contains('\n'));
    }

    #[test]
    fn unknown_peer_is_null() {
        let line = decision_line(
            &Decision {
                peer: Peer::default(),
                method: "/m",
                object: "",
                verdict: Verdict::Allow,
                rule: "r",
                reasons: &[],
            },
            "t",
        );
        assert_eq!(line["peer_uid"], Value::Null);
        assert_eq!(line["verdict"], "allow");
    }
}
