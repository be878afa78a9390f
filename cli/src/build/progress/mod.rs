//! Build progress as buildx shows it: `plain` (numbered text), `tty` (a
//! live view), `rawjson` (one JSON object per status update) or `quiet`.
//!
//! BuildKit's `Status` stream is decoded into [`SolveStatus`] first; the
//! displays only ever see these plain values, which keeps them testable
//! and lets the CLI add vertices of its own (importing into the sandbox).

mod plain;
mod rawjson;
mod trace;
mod tty;

use std::io::Write;

use berth_proto::buildkit::control as bk;
use chrono::{DateTime, Utc};

use super::options::Progress;

pub type Time = DateTime<Utc>;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct ProgressGroup {
    pub id: String,
    pub name: String,
    pub weak: bool,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Vertex {
    pub digest: String,
    pub inputs: Vec<String>,
    pub name: String,
    pub started: Option<Time>,
    pub completed: Option<Time>,
    pub cached: bool,
    pub error: String,
    pub progress_group: Option<ProgressGroup>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct VertexStatus {
    pub id: String,
    pub vertex: String,
    pub name: String,
    pub total: i64,
    pub current: i64,
    pub timestamp: Option<Time>,
    pub started: Option<Time>,
    pub completed: Option<Time>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct VertexLog {
    pub vertex: String,
    pub stream: i64,
    pub data: Vec<u8>,
    pub timestamp: Option<Time>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct VertexWarning {
    pub vertex: String,
    pub level: i64,
    pub short: Vec<u8>,
    pub detail: Vec<Vec<u8>>,
    pub url: String,
}

/// One update of the build's progress.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SolveStatus {
    pub vertexes: Vec<Vertex>,
    pub statuses: Vec<VertexStatus>,
    pub logs: Vec<VertexLog>,
    pub warnings: Vec<VertexWarning>,
}

fn time(t: Option<prost_types::Timestamp>) -> Option<Time> {
    let t = t?;
    DateTime::from_timestamp(t.seconds, t.nanos.max(0) as u32)
}

impl From<bk::StatusResponse> for SolveStatus {
    fn from(r: bk::StatusResponse) -> Self {
        SolveStatus {
            vertexes: r
                .vertexes
                .into_iter()
                .map(|v| Vertex {
                    digest: v.digest,
                    inputs: v.inputs,
                    name: v.name,
                    started: time(v.started),
                    completed: time(v.completed),
                    cached: v.cached,
                    error: v.error,
                    progress_group: v.progress_group.map(|g| ProgressGroup {
                        id: g.id,
                        name: g.name,
                        weak: g.weak,
                    }),
                })
                .collect(),
            statuses: r
                .statuses
                .into_iter()
                .map(|s| VertexStatus {
                    id: s.id,
                    vertex: s.vertex,
                    name: s.name,
                    total: s.total,
                    current: s.current,
                    timestamp: time(s.timestamp),
                    started: time(s.started),
                    completed: time(s.completed),
                })
                .collect(),
            logs: r
                .logs
                .into_iter()
                .map(|l| VertexLog {
                    vertex: l.vertex,
                    stream: l.stream,
                    data: l.msg,
                    timestamp: time(l.timestamp),
                })
                .collect(),
            warnings: r
                .warnings
                .into_iter()
                .map(|w| VertexWarning {
                    vertex: w.vertex,
                    level: w.level,
                    short: w.short,
                    detail: w.detail,
                    url: w.url,
                })
                .collect(),
        }
    }
}

/// A progress display on stderr.
pub enum Display {
    Plain(plain::Plain),
    Tty(tty::Tty),
    RawJson(rawjson::RawJson),
    Quiet,
}

impl Display {
    /// `header`: buildx's `#0 building with …` line, shown by plain only.
    pub fn new(mode: Progress, header: &str) -> Self {
        match mode {
            Progress::Plain => {
                Display::Plain(plain::Plain::new(Box::new(std::io::stderr()), header))
            }
            Progress::Tty => Display::Tty(tty::Tty::new()),
            Progress::RawJson => {
                Display::RawJson(rawjson::RawJson::new(Box::new(std::io::stderr())))
            }
            Progress::Quiet => Display::Quiet,
        }
    }

    pub fn update(&mut self, s: &SolveStatus) {
        match self {
            Display::Plain(p) => p.update(s),
            Display::Tty(t) => t.update(s),
            Display::RawJson(r) => r.update(s),
            Display::Quiet => {}
        }
    }

    /// Redraws the live view (its clock moves even without updates).
    pub fn tick(&mut self) {
        match self {
            Display::Plain(p) => p.tick(),
            Display::Tty(t) => t.tick(),
            Display::RawJson(_) | Display::Quiet => {}
        }
    }

    /// Ends the display: final state, then the failing steps' log tails.
    pub fn done(&mut self) {
        match self {
            Display::Plain(p) => p.done(),
            Display::Tty(t) => t.done(),
            Display::RawJson(_) | Display::Quiet => {}
        }
    }
}

/// Writes, ignoring a closed stderr: progress must never fail a build.
fn out(w: &mut dyn Write, text: &str) {
    let _ = w.write_all(text.as_bytes());
}

/// Byte counts as BuildKit's progress shows them: `138B`, `1.23kB`, `4.50MB`.
pub fn bytes(n: i64) -> String {
    const UNITS: [&str; 9] = ["B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"];
    let abs = n.unsigned_abs() as f64;
    if abs < 1000.0 {
        return format!("{n}B");
    }
    let mut value = n as f64;
    let mut i = 0;
    while (value.abs()) >= 1000.0 && i < UNITS.len() - 1 {
        value /= 1000.0;
        i += 1;
    }
    format!("{value:.2}{}", UNITS[i])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_units() {
        assert_eq!(bytes(0), "0B");
        assert_eq!(bytes(138), "138B");
        assert_eq!(bytes(999), "999B");
        assert_eq!(bytes(1000), "1.00kB");
        assert_eq!(bytes(1234), "1.23kB");
        assert_eq!(bytes(4_500_000), "4.50MB");
    }

    #[test]
    fn decodes_status_responses() {
        let r = bk::StatusResponse {
            vertexes: vec![bk::Vertex {
                digest: "sha256:a".into(),
                name: "step".into(),
                started: Some(prost_types::Timestamp {
                    seconds: 10,
                    nanos: 5,
                }),
                ..Default::default()
            }],
            logs: vec![bk::VertexLog {
                vertex: "sha256:a".into(),
                stream: 1,
                msg: b"hi\n".to_vec(),
                timestamp: None,
            }],
            ..Default::default()
        };
        let s = SolveStatus::from(r);
        assert_eq!(
            s.vertexes[0].started.unwrap().timestamp_nanos_opt(),
            Some(10_000_000_005)
        );
        assert_eq!(s.logs[0].data, b"hi\n");
    }
}
