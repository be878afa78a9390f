//! The live view on a terminal, in the manner of buildx: a header line
//! `[+] Building 1.2s (5/5) FINISHED`, then one line per vertex and per
//! status (` => [2/3] RUN make   0.4s`), the last output lines of running
//! steps, redrawn in place by indicatif.

use std::time::Instant;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::trace::{is_canceled, secs, Trace};
use super::{bytes, SolveStatus, Time};

/// Output lines of a running step shown under it.
const TERM_LINES: usize = 6;
const BLUE: &str = "\x1b[34m";
const RED: &str = "\x1b[31m";
const YELLOW: &str = "\x1b[33m";
const FAINT: &str = "\x1b[2m";
const RESET: &str = "\x1b[0m";

pub struct Tty {
    t: Trace,
    bar: ProgressBar,
    opened: Instant,
}

struct Job {
    name: String,
    status: String,
    seconds: f64,
    completed: bool,
    error: bool,
    canceled: bool,
    term: Vec<String>,
}

impl Tty {
    pub fn new() -> Self {
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr_with_hz(10));
        bar.set_style(ProgressStyle::with_template("{msg}").expect("static template"));
        Tty {
            t: Trace::default(),
            bar,
            opened: Instant::now(),
        }
    }

    pub fn update(&mut self, s: &SolveStatus) {
        self.t.update(s);
        self.t.updates.clear();
        self.tick();
    }

    pub fn tick(&mut self) {
        let (height, width) = size();
        self.bar.set_message(render(
            &self.t,
            self.now(),
            self.opened,
            width,
            height,
            false,
        ));
    }

    pub fn done(&mut self) {
        let (height, width) = size();
        self.bar.finish_with_message(render(
            &self.t,
            self.now(),
            self.opened,
            width,
            height,
            true,
        ));
        let mut text = String::new();
        for key in &self.t.started {
            let v = &self.t.by_digest[key];
            if v.v.error.is_empty() || is_canceled(&v.v.error) {
                continue;
            }
            text.push_str(&format!("------\n > {}:\n", v.v.name));
            for l in &v.logs {
                text.push_str(&String::from_utf8_lossy(l));
                text.push('\n');
            }
            text.push_str("------\n");
        }
        eprint!("{text}");
    }

    /// Now, on BuildKit's clock.
    fn now(&self) -> Time {
        chrono::Utc::now() - self.t.local_offset.unwrap_or_default()
    }
}

fn size() -> (usize, usize) {
    let (h, w) = console::Term::stderr().size();
    let h = if h == 0 { 10 } else { h as usize };
    let w = if w == 0 { 80 } else { w as usize };
    (h, w)
}

fn jobs(t: &Trace, now: Time) -> Vec<Job> {
    let mut out = Vec::new();
    for key in &t.started {
        let Some(v) = t.by_digest.get(key) else {
            continue;
        };
        if v.hidden {
            continue;
        }
        let mut name = v.v.name.replace('\t', " ");
        let mut error = false;
        let mut canceled = false;
        if !v.v.error.is_empty() {
            if is_canceled(&v.v.error) {
                canceled = true;
                name = format!("CANCELED {name}");
            } else {
                error = true;
                name = format!("ERROR {name}");
            }
        }
        if v.v.cached {
            name = format!("CACHED {name}");
        }
        let completed = v.is_completed();
        let term = if completed {
            Vec::new()
        } else {
            let lines: Vec<String> = v
                .logs
                .iter()
                .map(|l| {
                    let s = String::from_utf8_lossy(l);
                    // Drop the time column; the view shows the raw output.
                    s.split_once(' ')
                        .map(|(_, r)| r.to_string())
                        .unwrap_or_default()
                })
                .filter(|l| !l.trim().is_empty())
                .collect();
            lines[lines.len().saturating_sub(TERM_LINES)..].to_vec()
        };
        out.push(Job {
            name,
            status: String::new(),
            seconds: v.duration(now),
            completed,
            error,
            canceled,
            term,
        });
        for id in &v.statuses {
            let s = &v.by_id[id];
            let status = if s.total != 0 {
                format!("{} / {}", bytes(s.current), bytes(s.total))
            } else if s.current != 0 {
                bytes(s.current)
            } else {
                String::new()
            };
            let seconds = match s.started {
                Some(start) => secs(s.completed.unwrap_or(now) - start),
                None => 0.0,
            };
            out.push(Job {
                name: format!("=> {id}"),
                status,
                seconds,
                completed: s.completed.is_some(),
                error: false,
                canceled: false,
                term: Vec::new(),
            });
        }
        for w in &v.warnings {
            out.push(Job {
                name: format!("WARN: {}", String::from_utf8_lossy(&w.short)),
                status: String::new(),
                seconds: 0.0,
                completed: true,
                error: false,
                canceled: true,
                term: Vec::new(),
            });
        }
    }
    out
}

/// The whole view as text, lines separated by `\n`.
fn render(t: &Trace, now: Time, opened: Instant, width: usize, height: usize, all: bool) -> String {
    let visible: Vec<_> = t.by_digest.values().filter(|v| !v.hidden).collect();
    let total = visible.len();
    let done = visible.iter().filter(|v| v.is_completed()).count();
    let elapsed = match t.start_time {
        Some(start) => secs(now - start).max(0.0),
        None => opened.elapsed().as_secs_f64(),
    };
    let finished = if all && done > 0 && done == total {
        "FINISHED"
    } else {
        ""
    };
    let header = format!("[+] Building {elapsed:.1}s ({done}/{total}) {finished}");
    let mut lines = vec![truncate(&header, width.saturating_sub(1))];
    let mut body = Vec::new();
    for j in jobs(t, now) {
        let seconds = if j.seconds < 0.05 { 0.0 } else { j.seconds };
        let timer = format!(" {seconds:3.1}s");
        let pfx = " => ";
        // One column is left free so the terminal never wraps.
        let mut left = width.saturating_sub(pfx.len() + timer.len() + 2);
        let mut show_status = false;
        if !j.status.is_empty() && left + j.status.len() > 20 {
            show_status = true;
            left = left.saturating_sub(j.status.len() + 1);
        }
        if left < 12 {
            continue;
        }
        let mut text = format!("{pfx}{}", truncate(&j.name, left));
        if show_status {
            text.push(' ');
            text.push_str(&j.status);
        }
        let pad = width.saturating_sub(timer.len() + 2);
        let line = format!("{text:<pad$} {timer}");
        let color = if !j.completed {
            None
        } else if j.canceled {
            Some(YELLOW)
        } else if j.error {
            Some(RED)
        } else {
            Some(BLUE)
        };
        body.push(match color {
            Some(c) => format!("{c}{line}{RESET}"),
            None => line,
        });
        for l in &j.term {
            let l = truncate(&format!(" => => # {l}"), width.saturating_sub(1));
            body.push(format!("{FAINT}{l}{RESET}"));
        }
    }
    if !all && body.len() + 2 > height {
        let keep = height.saturating_sub(2);
        body = body.split_off(body.len() - keep);
    }
    lines.extend(body);
    lines.join("\n")
}

/// The first `n` characters.
fn truncate(s: &str, n: usize) -> String {
    s.chars().take(n).collect()
}

#[cfg(test)]
mod tests {
    use super::super::{Vertex, VertexStatus};
    use super::*;
    use chrono::TimeZone;

    fn t(ms: i64) -> Option<Time> {
        Some(
            chrono::Utc
                .timestamp_millis_opt(1_700_000_000_000 + ms)
                .unwrap(),
        )
    }

    #[test]
    fn renders_a_finished_build() {
        let mut tr = Trace::default();
        let mut cached = Vertex {
            digest: "b".into(),
            name: "[1/2] FROM docker.io/library/busybox:latest".into(),
            started: t(0),
            completed: t(0),
            ..Default::default()
        };
        cached.cached = true;
        tr.update(&SolveStatus {
            vertexes: vec![
                Vertex {
                    digest: "a".into(),
                    name: "[internal] load build definition from Dockerfile".into(),
                    started: t(0),
                    completed: t(20),
                    ..Default::default()
                },
                cached,
                Vertex {
                    digest: "c".into(),
                    name: "[2/2] RUN make".into(),
                    started: t(20),
                    completed: t(1220),
                    ..Default::default()
                },
            ],
            statuses: vec![VertexStatus {
                id: "transferring dockerfile:".into(),
                vertex: "a".into(),
                current: 91,
                started: t(0),
                completed: t(10),
                ..Default::default()
            }],
            ..Default::default()
        });
        let text = render(&tr, t(1300).unwrap(), Instant::now(), 60, 20, true);
        let plain: Vec<String> = text
            .lines()
            .map(|l| l.replace(BLUE, "").replace(RESET, ""))
            .collect();
        assert_eq!(
            plain,
            [
                "[+] Building 1.3s (3/3) FINISHED",
                " => [internal] load build definition from Dockerfile   0.0s",
                " => => transferring dockerfile: 91B                    0.0s",
                " => CACHED [1/2] FROM docker.io/library/busybox:lates  0.0s",
                " => [2/2] RUN make                                     1.2s",
            ]
        );
        assert!(text.lines().nth(1).unwrap().starts_with(BLUE));
    }

    #[test]
    fn running_steps_show_their_last_output_and_the_view_fits_the_screen() {
        let mut tr = Trace::default();
        let mut vs = Vec::new();
        for i in 0..10 {
            vs.push(Vertex {
                digest: format!("v{i}"),
                name: format!("step {i}"),
                started: t(i * 10),
                completed: if i < 9 { t(i * 10 + 5) } else { None },
                ..Default::default()
            });
        }
        tr.update(&SolveStatus {
            vertexes: vs,
            logs: vec![super::super::VertexLog {
                vertex: "v9".into(),
                stream: 1,
                data: b"compiling\n".to_vec(),
                timestamp: t(95),
            }],
            ..Default::default()
        });
        let text = render(&tr, t(200).unwrap(), Instant::now(), 50, 6, false);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 5);
        assert!(lines[0].starts_with("[+] Building 0.2s (9/10) "));
        assert!(lines[3].starts_with(" => step 9"));
        assert_eq!(lines[4], format!("{FAINT} => => # compiling{RESET}"));
    }
}
