//! What pull and push show, in docker's manner: per-layer status lines when
//! the output is not a terminal (`a1b2c3d4e5f6: Pull complete`), a live
//! line per layer with a 50-column bar on a terminal, nothing with `-q`.

use std::collections::HashMap;
use std::io::Write;
use std::sync::Mutex;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::format::units::human_size;

/// Receives the events of one pull or push.
pub trait Progress: Send + Sync {
    /// A line of its own (`latest: Pulling from x`, `Digest: …`).
    fn message(&self, text: &str);
    /// A layer's status changed (`Pulling fs layer`, `Waiting`, `Pushed`).
    fn layer(&self, id: &str, status: &str);
    /// Bytes moved for a layer (`Downloading`, `Pushing`); shown on a terminal only.
    fn bytes(&self, id: &str, action: &str, done: u64, total: u64);
    /// Ends live drawing before the caller prints on its own.
    fn finish(&self) {}
}

/// Which stream progress goes to: `pull` writes to stdout; a pull made by
/// `run` or `create` writes to stderr, as docker's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

impl Stream {
    pub fn is_terminal(self) -> bool {
        use std::io::IsTerminal;
        match self {
            Stream::Stdout => std::io::stdout().is_terminal(),
            Stream::Stderr => std::io::stderr().is_terminal(),
        }
    }

    fn write_line(self, text: &str) {
        // A closed stream must not fail the pull itself.
        let _ = match self {
            Stream::Stdout => writeln!(std::io::stdout(), "{text}"),
            Stream::Stderr => writeln!(std::io::stderr(), "{text}"),
        };
    }
}

/// The display for a stream: bars on a terminal, lines otherwise, or none.
pub fn for_stream(stream: Stream, quiet: bool) -> Box<dyn Progress> {
    if quiet {
        Box::new(Quiet)
    } else if stream.is_terminal() {
        Box::new(Bars::new(stream))
    } else {
        Box::new(Lines {
            stream,
            last: Mutex::new(HashMap::new()),
        })
    }
}

pub struct Quiet;

impl Progress for Quiet {
    fn message(&self, _: &str) {}
    fn layer(&self, _: &str, _: &str) {}
    fn bytes(&self, _: &str, _: &str, _: u64, _: u64) {}
}

/// docker's non-terminal output: one line per status change.
pub struct Lines {
    stream: Stream,
    last: Mutex<HashMap<String, String>>,
}

impl Progress for Lines {
    fn message(&self, text: &str) {
        self.stream.write_line(text);
    }

    fn layer(&self, id: &str, status: &str) {
        let mut last = self.last.lock().expect("progress lock");
        if last.get(id).map(String::as_str) == Some(status) {
            return;
        }
        last.insert(id.to_string(), status.to_string());
        self.stream.write_line(&format!("{id}: {status}"));
    }

    fn bytes(&self, _: &str, _: &str, _: u64, _: u64) {}
}

/// docker's terminal output: a line per layer, redrawn in place.
pub struct Bars {
    stream: Stream,
    multi: MultiProgress,
    bars: Mutex<HashMap<String, ProgressBar>>,
    /// Set by `finish`: later messages go below the finished bars.
    finished: std::sync::atomic::AtomicBool,
}

impl Bars {
    fn new(stream: Stream) -> Self {
        let target = match stream {
            Stream::Stdout => ProgressDrawTarget::stdout_with_hz(10),
            Stream::Stderr => ProgressDrawTarget::stderr_with_hz(10),
        };
        Self {
            stream,
            multi: MultiProgress::with_draw_target(target),
            bars: Mutex::new(HashMap::new()),
            finished: std::sync::atomic::AtomicBool::new(false),
        }
    }

    fn bar(&self, id: &str) -> ProgressBar {
        let mut bars = self.bars.lock().expect("progress lock");
        bars.entry(id.to_string())
            .or_insert_with(|| {
                let b = self.multi.add(ProgressBar::new(0));
                b.set_style(ProgressStyle::with_template("{msg}").expect("static template"));
                b
            })
            .clone()
    }
}

impl Progress for Bars {
    fn message(&self, text: &str) {
        let finished = self.finished.load(std::sync::atomic::Ordering::SeqCst);
        if finished || self.bars.lock().expect("progress lock").is_empty() {
            self.stream.write_line(text);
        } else {
            let _ = self.multi.println(text);
        }
    }

    fn layer(&self, id: &str, status: &str) {
        self.bar(id).set_message(format!("{id}: {status}"));
    }

    fn bytes(&self, id: &str, action: &str, done: u64, total: u64) {
        self.bar(id)
            .set_message(format!("{id}: {action} {}", bar_text(done, total)));
    }

    fn finish(&self) {
        for b in self.bars.lock().expect("progress lock").values() {
            b.finish();
        }
        self.finished
            .store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

/// docker's progress text: `[=====>      ]  1.08MB/2.15MB` with a
/// 50-column bar (no bar when the total is unknown).
pub fn bar_text(done: u64, total: u64) -> String {
    let numbers = format!(
        "{:>8}/{}",
        human_size(done as f64),
        human_size(total as f64)
    );
    if total == 0 {
        return numbers;
    }
    let width = 50usize;
    let filled = ((done.min(total) as f64 / total as f64) * width as f64) as usize;
    let bars = filled.min(width - 1);
    let spaces = width - 1 - bars;
    format!("[{}>{}] {numbers}", "=".repeat(bars), " ".repeat(spaces))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_look_like_docker() {
        let s = bar_text(1_080_000, 2_160_000);
        assert!(s.starts_with("[=========================>"), "{s}");
        assert_eq!(s.find(']'), Some(51));
        assert!(s.ends_with(" 1.08MB/2.16MB"), "{s}");
        assert!(
            bar_text(10, 10).starts_with("[=================================================>]")
        );
    }
}
