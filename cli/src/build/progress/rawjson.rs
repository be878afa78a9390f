//! `--progress=rawjson`: every status update as the JSON object buildx
//! writes (BuildKit's client `SolveStatus`, two-space indented, Go's
//! encoding of times, byte strings and HTML characters).

use std::io::Write;

use base64::Engine as _;
use serde_json::{json, Map, Value};

use super::{out, SolveStatus, Time};

pub struct RawJson {
    w: Box<dyn Write + Send>,
}

impl RawJson {
    pub fn new(w: Box<dyn Write + Send>) -> Self {
        RawJson { w }
    }

    pub fn update(&mut self, s: &SolveStatus) {
        out(&mut *self.w, &encode(s));
        let _ = self.w.flush();
    }
}

/// Go's `time.RFC3339Nano`: fractional seconds without trailing zeros.
pub fn go_time(t: &Time) -> String {
    let base = t.format("%Y-%m-%dT%H:%M:%S").to_string();
    let nanos = t.timestamp_subsec_nanos();
    if nanos == 0 {
        return format!("{base}Z");
    }
    let frac = format!("{nanos:09}");
    format!("{base}.{}Z", frac.trim_end_matches('0'))
}

const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

fn b64(data: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(data)
}

fn put(m: &mut Map<String, Value>, key: &str, v: Value, omit: bool) {
    if !omit {
        m.insert(key.to_string(), v);
    }
}

fn opt_time(m: &mut Map<String, Value>, key: &str, t: &Option<Time>) {
    if let Some(t) = t {
        m.insert(key.to_string(), Value::String(go_time(t)));
    }
}

fn encode(s: &SolveStatus) -> String {
    let mut root = Map::new();
    let vertexes: Vec<Value> = s
        .vertexes
        .iter()
        .map(|v| {
            let mut m = Map::new();
            put(&mut m, "digest", json!(v.digest), v.digest.is_empty());
            put(&mut m, "inputs", json!(v.inputs), v.inputs.is_empty());
            put(&mut m, "name", json!(v.name), v.name.is_empty());
            opt_time(&mut m, "started", &v.started);
            opt_time(&mut m, "completed", &v.completed);
            put(&mut m, "cached", json!(true), !v.cached);
            put(&mut m, "error", json!(v.error), v.error.is_empty());
            if let Some(g) = &v.progress_group {
                let mut gm = Map::new();
                put(&mut gm, "id", json!(g.id), g.id.is_empty());
                put(&mut gm, "name", json!(g.name), g.name.is_empty());
                put(&mut gm, "weak", json!(true), !g.weak);
                m.insert("progressGroup".into(), Value::Object(gm));
            }
            Value::Object(m)
        })
        .collect();
    put(
        &mut root,
        "vertexes",
        Value::Array(vertexes),
        s.vertexes.is_empty(),
    );
    let statuses: Vec<Value> = s
        .statuses
        .iter()
        .map(|st| {
            let mut m = Map::new();
            m.insert("id".into(), json!(st.id));
            put(&mut m, "vertex", json!(st.vertex), st.vertex.is_empty());
            put(&mut m, "name", json!(st.name), st.name.is_empty());
            put(&mut m, "total", json!(st.total), st.total == 0);
            m.insert("current".into(), json!(st.current));
            m.insert(
                "timestamp".into(),
                json!(st.timestamp.as_ref().map_or(ZERO_TIME.to_string(), go_time)),
            );
            opt_time(&mut m, "started", &st.started);
            opt_time(&mut m, "completed", &st.completed);
            Value::Object(m)
        })
        .collect();
    put(
        &mut root,
        "statuses",
        Value::Array(statuses),
        s.statuses.is_empty(),
    );
    let logs: Vec<Value> = s
        .logs
        .iter()
        .map(|l| {
            let mut m = Map::new();
            put(&mut m, "vertex", json!(l.vertex), l.vertex.is_empty());
            put(&mut m, "stream", json!(l.stream), l.stream == 0);
            m.insert("data".into(), json!(b64(&l.data)));
            m.insert(
                "timestamp".into(),
                json!(l.timestamp.as_ref().map_or(ZERO_TIME.to_string(), go_time)),
            );
            Value::Object(m)
        })
        .collect();
    put(&mut root, "logs", Value::Array(logs), s.logs.is_empty());
    let warnings: Vec<Value> = s
        .warnings
        .iter()
        .map(|w| {
            let mut m = Map::new();
            put(&mut m, "vertex", json!(w.vertex), w.vertex.is_empty());
            put(&mut m, "level", json!(w.level), w.level == 0);
            put(&mut m, "short", json!(b64(&w.short)), w.short.is_empty());
            let detail: Vec<String> = w.detail.iter().map(|d| b64(d)).collect();
            put(&mut m, "detail", json!(detail), w.detail.is_empty());
            put(&mut m, "url", json!(w.url), w.url.is_empty());
            Value::Object(m)
        })
        .collect();
    put(
        &mut root,
        "warnings",
        Value::Array(warnings),
        s.warnings.is_empty(),
    );
    let text = serde_json::to_string_pretty(&Value::Object(root)).unwrap_or_default();
    // Go's encoder escapes these for HTML; outside strings JSON has none of them.
    let text = text
        .replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026");
    format!("{text}\n")
}

#[cfg(test)]
mod tests {
    use super::super::{Vertex, VertexLog, VertexStatus};
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn go_times() {
        let t = chrono::Utc
            .timestamp_opt(1_796_205_593, 779_984_000)
            .unwrap();
        assert_eq!(go_time(&t), "2026-12-02T09:59:53.779984Z");
        let t = chrono::Utc.timestamp_opt(1_796_205_593, 0).unwrap();
        assert_eq!(go_time(&t), "2026-12-02T09:59:53Z");
    }

    #[test]
    fn encodes_as_buildx() {
        let t = chrono::Utc
            .timestamp_opt(1_796_205_593, 780_933_772)
            .unwrap();
        let s = SolveStatus {
            vertexes: vec![Vertex {
                digest: "sha256:8c".into(),
                name: "[2/2] RUN echo >&2".into(),
                started: Some(t),
                ..Default::default()
            }],
            statuses: vec![VertexStatus {
                id: "transferring dockerfile:".into(),
                vertex: "sha256:8c".into(),
                name: "transferring".into(),
                timestamp: Some(t),
                started: Some(t),
                ..Default::default()
            }],
            logs: vec![VertexLog {
                vertex: "sha256:8c".into(),
                stream: 1,
                data: b"hi\n".to_vec(),
                timestamp: Some(t),
            }],
            warnings: vec![],
        };
        assert_eq!(
            encode(&s),
            r#"{
  "vertexes": [
    {
      "digest": "sha256:8c",
      "name": "[2/2] RUN echo \u003e\u00262",
      "started": "2026-12-02T09:59:53.780933772Z"
    }
  ],
  "statuses": [
    {
      "id": "transferring dockerfile:",
      "vertex": "sha256:8c",
      "name": "transferring",
      "current": 0,
      "timestamp": "2026-12-02T09:59:53.780933772Z",
      "started": "2026-12-02T09:59:53.780933772Z"
    }
  ],
  "logs": [
    {
      "vertex": "sha256:8c",
      "stream": 1,
      "data": "aGkK",
      "timestamp": "2026-12-02T09:59:53.780933772Z"
    }
  ]
}
"#
        );
    }
}
