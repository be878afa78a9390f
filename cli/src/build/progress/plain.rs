//! buildx's plain progress: each vertex as a numbered block (`#5 [2/3] RUN
//! …`, its statuses, its log lines with their time, `#5 DONE 0.1s`), the
//! blocks of concurrent vertices interleaved with `#5 ...` markers, and on
//! failure the failing steps' last log lines between `------` rulers.

use std::collections::HashMap;
use std::io::Write;
use std::time::{Duration, Instant};

use super::trace::{is_canceled, Trace, VState, TAIL_LINES};
use super::{bytes, out, SolveStatus, Time};

/// A status line is reprinted only after this much progress or time.
const MIN_PROGRESS_DELTA: f64 = 0.05;
const MIN_TIME_DELTA: Duration = Duration::from_secs(5);
/// A vertex waiting longer than this for its turn is shown anyway.
const MAX_DELAY: Duration = Duration::from_secs(10);
/// An update prints at once only if the last one that did is this old
/// (buildx's display limiter); the others wait for a quiet moment.
const MIN_GAP: Duration = Duration::from_millis(100);
/// Pending updates print once no update came for this long (buildx's
/// ticker, reset on every update).
const QUIET: Duration = Duration::from_millis(150);

pub struct Plain {
    w: Box<dyn Write + Send>,
    t: Trace,
    current: Option<String>,
    not_first: bool,
    next_index: usize,
    /// Status ID → (current, timestamp) when last printed.
    last: HashMap<String, (i64, Option<Time>)>,
    min_gap: Duration,
    quiet: Duration,
    /// When an update last printed at once.
    last_allowed: Option<Instant>,
    last_update: Option<Instant>,
}

impl Plain {
    pub fn new(mut w: Box<dyn Write + Send>, header: &str) -> Self {
        let mut not_first = false;
        if !header.is_empty() {
            out(&mut *w, &format!("{header}\n"));
            not_first = true;
        }
        Plain {
            w,
            t: Trace::default(),
            current: None,
            not_first,
            next_index: 0,
            last: HashMap::new(),
            min_gap: MIN_GAP,
            quiet: QUIET,
            last_allowed: None,
            last_update: None,
        }
    }

    pub fn update(&mut self, s: &SolveStatus) {
        self.t.update(s);
        let now = Instant::now();
        self.last_update = Some(now);
        if self
            .last_allowed
            .is_none_or(|at| now.duration_since(at) >= self.min_gap)
        {
            self.last_allowed = Some(now);
            self.flush();
        }
    }

    /// Called often; prints what waits once updates paused.
    pub fn tick(&mut self) {
        if self.last_update.is_none_or(|at| at.elapsed() >= self.quiet) {
            self.flush();
        }
    }

    fn flush(&mut self) {
        if !self.t.updates.is_empty() {
            self.print();
            let _ = self.w.flush();
        }
    }

    pub fn done(&mut self) {
        // Print until nothing is left: completed vertices first, then each
        // still-open one.
        for _ in 0..self.t.by_digest.len() + 1 {
            if self.t.updates.is_empty() {
                break;
            }
            self.print();
        }
        let mut text = String::new();
        for key in &self.t.started {
            let v = &self.t.by_digest[key];
            if v.v.error.is_empty() || is_canceled(&v.v.error) {
                continue;
            }
            text.push_str("------\n");
            text.push_str(&format!(" > {}:\n", v.v.name));
            for l in v.tail.iter().chain(v.logs.iter()) {
                text.push_str(&String::from_utf8_lossy(l));
                text.push('\n');
            }
            text.push_str("------\n");
        }
        out(&mut *self.w, &text);
        let _ = self.w.flush();
    }

    fn print(&mut self) {
        let mut completed: Vec<String> = Vec::new();
        let mut rest: Vec<String> = Vec::new();
        for key in &self.t.updates {
            let Some(v) = self.t.by_digest.get(key) else {
                continue;
            };
            if v.hidden {
                continue;
            }
            if v.is_completed() {
                completed.push(key.clone());
            } else {
                rest.push(key.clone());
            }
        }
        let current = self.current.clone();
        if let Some(c) = &current {
            if completed.contains(c) {
                self.print_vertex(c);
            }
        }
        completed.sort_by_key(|k| {
            let v = &self.t.by_digest[k];
            (v.merged().last().and_then(|(_, stop)| *stop), v.seen)
        });
        for key in &completed {
            if Some(key) != current.as_ref() {
                self.print_vertex(key);
            }
        }
        if rest.is_empty() {
            if let Some(c) = &self.current {
                let v = &self.t.by_digest[c];
                if v.is_started() && !v.is_completed() {
                    return;
                }
            }
            return;
        }
        rest.sort_by_key(|k| self.t.by_digest[k].seen);
        if let Some(c) = &self.current {
            if rest.contains(c) {
                let c = c.clone();
                self.print_vertex(&c);
                // Another vertex waiting too long gets its turn.
                let now = Instant::now();
                if let Some(late) = rest.iter().find(|k| {
                    *k != &c
                        && self.t.by_digest[*k]
                            .last_block
                            .is_some_and(|b| now.duration_since(b) > MAX_DELAY)
                }) {
                    let late = late.clone();
                    self.print_vertex(&late);
                }
                return;
            }
        }
        if self.current.is_none() || completed.contains(&current.unwrap_or_default()) {
            let first = rest[0].clone();
            self.print_vertex(&first);
        }
    }

    fn print_vertex(&mut self, key: &str) {
        let Some(mut v) = self.t.by_digest.remove(key) else {
            return;
        };
        if v.index == 0 {
            self.next_index += 1;
            v.index = self.next_index;
        }
        let idx = v.index;
        let mut text = String::new();
        if self.current.as_deref() != Some(key) {
            if let Some(old_key) = self.current.take() {
                if let Some(old) = self.t.by_digest.get_mut(&old_key) {
                    if old.logs_partial {
                        text.push('\n');
                    }
                    old.logs_offset = 0;
                    old.count = 0;
                    text.push_str(&format!("#{} ...\n", old.index));
                }
            }
            if self.not_first {
                text.push('\n');
            } else {
                self.not_first = true;
            }
            text.push_str(&format!("#{idx} {}\n", v.v.name));
        }

        let mut open_status = false;
        for id in v.statuses.clone() {
            if !v.status_updates.contains(&id) {
                continue;
            }
            let s = &v.by_id[&id];
            if s.completed.is_none() {
                if let Some((cur, ts)) = self.last.get(&id) {
                    let progress = if s.total > 0 {
                        (s.current - cur) as f64 / s.total as f64
                    } else {
                        0.0
                    };
                    let elapsed = match (s.timestamp, ts) {
                        (Some(a), Some(b)) => (a - *b).to_std().unwrap_or_default(),
                        _ => Duration::ZERO,
                    };
                    if progress < MIN_PROGRESS_DELTA && elapsed < MIN_TIME_DELTA {
                        continue;
                    }
                }
            }
            self.last.insert(id.clone(), (s.current, s.timestamp));
            let amount = if s.total != 0 {
                format!(" {} / {}", bytes(s.current), bytes(s.total))
            } else if s.current != 0 {
                format!(" {}", bytes(s.current))
            } else {
                String::new()
            };
            let mut tm = String::new();
            let end = s.completed.or(s.timestamp);
            if let (Some(start), Some(end)) = (s.started, end) {
                let diff = super::trace::secs(end - start);
                if diff > 0.01 {
                    tm = format!(" {diff:.1}s");
                }
            }
            if s.completed.is_some() {
                tm.push_str(" done");
            } else {
                open_status = true;
            }
            text.push_str(&format!("#{idx} {id}{amount}{tm}\n"));
        }
        v.status_updates.clear();

        for w in &v.warnings[v.warning_idx..] {
            text.push_str(&format!(
                "#{idx} WARN: {}\n",
                String::from_utf8_lossy(&w.short)
            ));
        }
        v.warning_idx = v.warnings.len();

        let n = v.logs.len();
        let logs = std::mem::take(&mut v.logs);
        for (i, line) in logs.iter().enumerate() {
            let part = if i == 0 {
                &line[v.logs_offset.min(line.len())..]
            } else {
                &line[..]
            };
            if i != 0 || v.logs_offset == 0 {
                text.push_str(&format!("#{idx} "));
            }
            text.push_str(&String::from_utf8_lossy(part));
            let whole = i != n - 1 || !v.logs_partial;
            if whole {
                text.push('\n');
                push_tail(&mut v, line.clone());
            }
        }
        v.logs = logs;
        if n > 0 {
            if v.logs_partial {
                let last = v.logs.pop().expect("non-empty");
                v.logs_offset = last.len();
                v.logs = vec![last];
            } else {
                v.logs.clear();
                v.logs_offset = 0;
            }
        }

        self.current = Some(key.to_string());
        if v.is_completed() && !open_status {
            self.current = None;
            v.count = 0;
            if v.logs_partial {
                text.push('\n');
                if let Some(last) = v.logs.pop() {
                    push_tail(&mut v, last);
                }
                v.logs_partial = false;
                v.logs_offset = 0;
            }
            text.push_str(&finish_line(&v, idx));
        }
        out(&mut *self.w, &text);
        self.t.updates.remove(key);
        v.last_block = None;
        self.t.by_digest.insert(key.to_string(), v);
    }
}

fn push_tail(v: &mut VState, line: Vec<u8>) {
    if v.tail.len() == TAIL_LINES {
        v.tail.pop_front();
    }
    v.tail.push_back(line);
}

fn finish_line(v: &VState, idx: usize) -> String {
    if !v.v.error.is_empty() {
        if is_canceled(&v.v.error) {
            format!("#{idx} CANCELED\n")
        } else {
            format!("#{idx} ERROR: {}\n", v.v.error)
        }
    } else if v.v.cached {
        format!("#{idx} CACHED\n")
    } else {
        let now = chrono::Utc::now();
        if v.is_started() {
            format!("#{idx} DONE {:.1}s\n", v.duration(now))
        } else {
            format!("#{idx} DONE\n")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Vertex, VertexLog, VertexStatus, VertexWarning};
    use super::*;
    use chrono::TimeZone;
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Buf(Arc<Mutex<Vec<u8>>>);
    impl Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    impl Buf {
        fn text(&self) -> String {
            String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
        }
    }

    /// A printer that prints on every update, so the text is deterministic.
    fn printer(buf: &Buf, header: &str) -> Plain {
        let mut p = Plain::new(Box::new(buf.clone()), header);
        p.min_gap = Duration::ZERO;
        p.quiet = Duration::ZERO;
        p
    }

    fn t(ms: i64) -> Option<Time> {
        Some(
            chrono::Utc
                .timestamp_millis_opt(1_700_000_000_000 + ms)
                .unwrap(),
        )
    }

    fn vtx(d: &str, name: &str, started: Option<Time>, completed: Option<Time>) -> Vertex {
        Vertex {
            digest: d.into(),
            name: name.into(),
            started,
            completed,
            ..Default::default()
        }
    }

    fn only_vertexes(v: Vec<Vertex>) -> SolveStatus {
        SolveStatus {
            vertexes: v,
            ..Default::default()
        }
    }

    fn log(d: &str, at: i64, data: &str) -> VertexLog {
        VertexLog {
            vertex: d.into(),
            stream: 1,
            data: data.as_bytes().to_vec(),
            timestamp: t(at),
        }
    }

    #[test]
    fn a_successful_build_reads_like_buildx() {
        let buf = Buf::default();
        let mut p = printer(
            &buf,
            "#0 building with \"default\" instance using docker driver",
        );
        let d1 = "sha256:1";
        let name1 = "[internal] load build definition from Dockerfile";
        p.update(&only_vertexes(vec![vtx(d1, name1, None, None)]));
        p.update(&SolveStatus {
            vertexes: vec![vtx(d1, name1, t(0), None)],
            statuses: vec![VertexStatus {
                id: "transferring dockerfile:".into(),
                vertex: d1.into(),
                current: 0,
                timestamp: t(1),
                started: t(1),
                ..Default::default()
            }],
            ..Default::default()
        });
        p.update(&SolveStatus {
            vertexes: vec![vtx(d1, name1, t(0), t(20))],
            statuses: vec![VertexStatus {
                id: "transferring dockerfile:".into(),
                vertex: d1.into(),
                current: 138,
                timestamp: t(5),
                started: t(1),
                completed: t(5),
                ..Default::default()
            }],
            ..Default::default()
        });
        let d2 = "sha256:2";
        let mut cached = vtx(d2, "[2/3] COPY a /a", t(30), t(30));
        cached.cached = true;
        p.update(&only_vertexes(vec![cached]));
        let d3 = "sha256:3";
        let name3 = "[3/3] RUN echo hello; echo world >&2";
        p.update(&only_vertexes(vec![vtx(d3, name3, t(100), None)]));
        p.update(&SolveStatus {
            logs: vec![log(d3, 165, "hello\n"), log(d3, 166, "world\n")],
            ..Default::default()
        });
        p.update(&only_vertexes(vec![vtx(d3, name3, t(100), t(240))]));
        p.done();
        assert_eq!(
            buf.text(),
            "#0 building with \"default\" instance using docker driver\n\
             \n\
             #1 [internal] load build definition from Dockerfile\n\
             #1 transferring dockerfile:\n\
             #1 transferring dockerfile: 138B done\n\
             #1 DONE 0.0s\n\
             \n\
             #2 [2/3] COPY a /a\n\
             #2 CACHED\n\
             \n\
             #3 [3/3] RUN echo hello; echo world >&2\n\
             #3 0.065 hello\n\
             #3 0.066 world\n\
             #3 DONE 0.1s\n"
        );
    }

    #[test]
    fn a_failing_step_ends_with_its_log_tail() {
        let buf = Buf::default();
        let mut p = printer(&buf, "");
        let d = "sha256:8";
        let name = "[4/4] RUN echo failing; sleep 0.2; echo more; exit 3";
        p.update(&only_vertexes(vec![vtx(d, name, t(0), None)]));
        p.update(&SolveStatus {
            logs: vec![
                log(d, 70, "failing\n"),
                log(d, 272, "mo"),
                log(d, 273, "re\n"),
            ],
            ..Default::default()
        });
        let mut failed = vtx(d, name, t(0), t(300));
        failed.error = "process \"/bin/sh -c echo failing; sleep 0.2; echo more; exit 3\" did not complete successfully: exit code: 3".into();
        p.update(&only_vertexes(vec![failed]));
        p.done();
        assert_eq!(
            buf.text(),
            "#1 [4/4] RUN echo failing; sleep 0.2; echo more; exit 3\n\
             #1 0.070 failing\n\
             #1 0.272 more\n\
             #1 ERROR: process \"/bin/sh -c echo failing; sleep 0.2; echo more; exit 3\" did not complete successfully: exit code: 3\n\
             ------\n \
             > [4/4] RUN echo failing; sleep 0.2; echo more; exit 3:\n\
             0.070 failing\n\
             0.272 more\n\
             ------\n"
        );
    }

    #[test]
    fn interleaved_vertices_are_marked() {
        let buf = Buf::default();
        let mut p = printer(&buf, "");
        p.update(&only_vertexes(vec![vtx("a", "[a 1/2] RUN x", t(0), None)]));
        p.update(&SolveStatus {
            logs: vec![log("a", 10, "from a\n")],
            ..Default::default()
        });
        p.update(&only_vertexes(vec![vtx("b", "[b 1/2] RUN y", t(5), t(50))]));
        p.update(&only_vertexes(vec![vtx(
            "a",
            "[a 1/2] RUN x",
            t(0),
            t(100),
        )]));
        p.done();
        assert_eq!(
            buf.text(),
            "#1 [a 1/2] RUN x\n\
             #1 0.010 from a\n\
             #1 ...\n\
             \n\
             #2 [b 1/2] RUN y\n\
             #2 DONE 0.0s\n\
             \n\
             #1 [a 1/2] RUN x\n\
             #1 DONE 0.1s\n"
        );
    }

    #[test]
    fn canceled_vertices_and_warnings() {
        let buf = Buf::default();
        let mut p = printer(&buf, "");
        let mut c = vtx("c", "[2/2] RUN sleep 9", t(0), t(10));
        c.error = "context canceled".into();
        p.update(&SolveStatus {
            vertexes: vec![c],
            warnings: vec![VertexWarning {
                vertex: "c".into(),
                short: b"something odd".to_vec(),
                ..Default::default()
            }],
            ..Default::default()
        });
        p.done();
        assert_eq!(
            buf.text(),
            "#1 [2/2] RUN sleep 9\n#1 WARN: something odd\n#1 CANCELED\n"
        );
    }
}
