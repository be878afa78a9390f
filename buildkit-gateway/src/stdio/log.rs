//! The log the gateway keeps of a container's init process.
//!
//! One append-only file per container, `<state_dir>/logs/<id>.log`, kept
//! across restarts of the container (as docker keeps them) and removed with
//! the container. Each entry is a frame:
//!
//! ```text
//! stream: u8 (1 stdout, 2 stderr) | time: i64 LE (unix ns) | len: u32 LE | data
//! ```
//!
//! Output is split after every newline, so one entry is one line (with its
//! `\n`) or, when a read ended mid-line, the part of a line read so far; the
//! next entry of the same stream continues it. That keeps `--tail N` and
//! `--timestamps` close to docker's per-line behaviour without holding bytes
//! back from followers.

use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use tokio::io::AsyncReadExt;

const HEADER_LEN: usize = 13;
/// Larger than any read the relay makes; a bigger length means corruption.
const MAX_ENTRY: usize = 1 << 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Stream {
    Stdout,
    Stderr,
}

impl Stream {
    fn tag(self) -> u8 {
        match self {
            Stream::Stdout => 1,
            Stream::Stderr => 2,
        }
    }

    fn from_tag(tag: u8) -> Option<Self> {
        match tag {
            1 => Some(Stream::Stdout),
            2 => Some(Stream::Stderr),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub stream: Stream,
    /// Unix nanoseconds when the gateway read the bytes.
    pub time: i64,
    pub data: Vec<u8>,
}

/// Unix nanoseconds now.
pub fn now_nanos() -> i64 {
    chrono::Utc::now().timestamp_nanos_opt().unwrap_or(i64::MAX)
}

/// Frames `data` as entries, one per line.
fn encode(stream: Stream, time: i64, data: &[u8], out: &mut Vec<u8>) {
    for line in data.split_inclusive(|b| *b == b'\n') {
        out.push(stream.tag());
        out.extend_from_slice(&time.to_le_bytes());
        out.extend_from_slice(&(line.len() as u32).to_le_bytes());
        out.extend_from_slice(line);
    }
}

#[derive(Debug, PartialEq, Eq)]
struct Header {
    stream: Stream,
    time: i64,
    len: usize,
}

fn parse_header(h: &[u8; HEADER_LEN]) -> Option<Header> {
    let stream = Stream::from_tag(h[0])?;
    let time = i64::from_le_bytes(h[1..9].try_into().ok()?);
    let len = u32::from_le_bytes(h[9..13].try_into().ok()?) as usize;
    (len <= MAX_ENTRY).then_some(Header { stream, time, len })
}

/// Appends entries to a container's log.
pub struct LogWriter {
    file: File,
    buf: Vec<u8>,
}

impl LogWriter {
    /// Opens (creating, 0600) the log for appending. A frame torn by a crash
    /// is cut off first, so new frames never follow garbage.
    pub fn open(path: &Path) -> io::Result<Self> {
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .mode(0o600)
            .open(path)?;
        let valid = valid_prefix(&mut file)?;
        if valid < file.metadata()?.len() {
            file.set_len(valid)?;
        }
        Ok(Self {
            file,
            buf: Vec::new(),
        })
    }

    pub fn append(&mut self, stream: Stream, time: i64, data: &[u8]) -> io::Result<()> {
        self.buf.clear();
        encode(stream, time, data, &mut self.buf);
        // One write per read from the process: O_APPEND keeps it whole.
        self.file.write_all(&self.buf)
    }
}

/// Length of the longest prefix of whole, well-formed frames.
fn valid_prefix(file: &mut File) -> io::Result<u64> {
    let len = file.metadata()?.len();
    let mut pos = 0u64;
    let mut header = [0u8; HEADER_LEN];
    file.seek(SeekFrom::Start(0))?;
    let mut r = io::BufReader::new(&mut *file);
    loop {
        if pos + HEADER_LEN as u64 > len {
            break;
        }
        r.read_exact(&mut header)?;
        let Some(h) = parse_header(&header) else {
            break;
        };
        let end = pos + (HEADER_LEN + h.len) as u64;
        if end > len {
            break;
        }
        r.seek_relative(h.len as i64)?;
        pos = end;
    }
    Ok(pos)
}

/// Splits a byte stream into entries; bytes of an incomplete frame wait for
/// the next `push`.
#[derive(Default)]
pub struct Decoder {
    buf: Vec<u8>,
    start: usize,
}

#[derive(Debug, thiserror::Error)]
#[error("corrupt log entry")]
pub struct Corrupt;

impl Decoder {
    pub fn push(&mut self, bytes: &[u8]) {
        if self.start > 0 && self.start == self.buf.len() {
            self.buf.clear();
            self.start = 0;
        }
        self.buf.extend_from_slice(bytes);
    }

    pub fn next_entry(&mut self) -> Result<Option<Entry>, Corrupt> {
        let rest = &self.buf[self.start..];
        if rest.len() < HEADER_LEN {
            return Ok(None);
        }
        let header: &[u8; HEADER_LEN] = rest[..HEADER_LEN].try_into().expect("length checked");
        let h = parse_header(header).ok_or(Corrupt)?;
        if rest.len() < HEADER_LEN + h.len {
            return Ok(None);
        }
        let data = rest[HEADER_LEN..HEADER_LEN + h.len].to_vec();
        self.start += HEADER_LEN + h.len;
        if self.start > (1 << 16) && self.start * 2 > self.buf.len() {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        Ok(Some(Entry {
            stream: h.stream,
            time: h.time,
            data,
        }))
    }
}

/// Reads a log from the start; at the current end `next` answers `None`
/// and may be called again once more was appended (follow).
pub struct LogReader {
    file: tokio::fs::File,
    dec: Decoder,
    chunk: Vec<u8>,
}

impl LogReader {
    pub async fn open(path: &Path) -> io::Result<Self> {
        Ok(Self {
            file: tokio::fs::File::open(path).await?,
            dec: Decoder::default(),
            chunk: vec![0; 64 << 10],
        })
    }

    pub async fn next(&mut self) -> io::Result<Option<Entry>> {
        loop {
            if let Some(e) = self
                .dec
                .next_entry()
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?
            {
                return Ok(Some(e));
            }
            let n = self.file.read(&mut self.chunk).await?;
            if n == 0 {
                return Ok(None);
            }
            self.dec.push(&self.chunk[..n]);
        }
    }
}

/// Which entries a `Logs/Read` wants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Query {
    /// Last N entries of what is already logged; `None` for all.
    pub tail: Option<usize>,
    /// Unix ns; 0 for unbounded.
    pub since: i64,
    pub until: i64,
}

impl Query {
    pub fn admits(&self, e: &Entry) -> bool {
        (self.since == 0 || e.time >= self.since) && !self.past_until(e)
    }

    /// Entries are in time order, so nothing after this one can be admitted.
    pub fn past_until(&self, e: &Entry) -> bool {
        self.until != 0 && e.time > self.until
    }
}

/// Keeps the last `n` admitted entries (`--tail`).
pub struct Tail {
    n: usize,
    entries: VecDeque<Entry>,
}

impl Tail {
    pub fn new(n: usize) -> Self {
        Self {
            n,
            entries: VecDeque::new(),
        }
    }

    pub fn push(&mut self, e: Entry) {
        if self.n == 0 {
            return;
        }
        if self.entries.len() == self.n {
            self.entries.pop_front();
        }
        self.entries.push_back(e);
    }

    pub fn into_entries(self) -> VecDeque<Entry> {
        self.entries
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries_of(bytes: &[u8]) -> Vec<Entry> {
        let mut d = Decoder::default();
        d.push(bytes);
        let mut out = Vec::new();
        while let Some(e) = d.next_entry().unwrap() {
            out.push(e);
        }
        out
    }

    #[test]
    fn frames_round_trip_one_entry_per_line() {
        let mut buf = Vec::new();
        encode(Stream::Stdout, 7, b"a\nbc\nd", &mut buf);
        encode(Stream::Stderr, 8, b"e\n", &mut buf);
        let got = entries_of(&buf);
        let want = vec![
            Entry {
                stream: Stream::Stdout,
                time: 7,
                data: b"a\n".to_vec(),
            },
            Entry {
                stream: Stream::Stdout,
                time: 7,
                data: b"bc\n".to_vec(),
            },
            Entry {
                stream: Stream::Stdout,
                time: 7,
                data: b"d".to_vec(),
            },
            Entry {
                stream: Stream::Stderr,
                time: 8,
                data: b"e\n".to_vec(),
            },
        ];
        assert_eq!(got, want);
    }

    #[test]
    fn decoder_waits_for_a_whole_frame() {
        let mut buf = Vec::new();
        encode(Stream::Stdout, 1, b"hello\n", &mut buf);
        let mut d = Decoder::default();
        for b in &buf[..buf.len() - 1] {
            d.push(std::slice::from_ref(b));
            assert_eq!(d.next_entry().unwrap(), None);
        }
        d.push(&buf[buf.len() - 1..]);
        assert_eq!(d.next_entry().unwrap().unwrap().data, b"hello\n");
    }

    #[test]
    fn decoder_refuses_an_unknown_stream() {
        let mut d = Decoder::default();
        d.push(&[9u8; HEADER_LEN]);
        assert!(d.next_entry().is_err());
    }

    #[test]
    fn writer_cuts_a_torn_frame_before_appending() {
        let dir = tempdir();
        let path = dir.join("c.log");
        {
            let mut w = LogWriter::open(&path).unwrap();
            w.append(Stream::Stdout, 1, b"one\n").unwrap();
        }
        // A crash in the middle of a frame.
        let mut torn = Vec::new();
        encode(Stream::Stdout, 2, b"lost\n", &mut torn);
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(&torn[..torn.len() - 2]).unwrap();
        drop(f);

        let mut w = LogWriter::open(&path).unwrap();
        w.append(Stream::Stderr, 3, b"two\n").unwrap();
        let got = entries_of(&std::fs::read(&path).unwrap());
        let data: Vec<&[u8]> = got.iter().map(|e| e.data.as_slice()).collect();
        assert_eq!(data, vec![b"one\n".as_slice(), b"two\n".as_slice()]);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[tokio::test]
    async fn reader_follows_appends() {
        let dir = tempdir();
        let path = dir.join("c.log");
        let mut w = LogWriter::open(&path).unwrap();
        w.append(Stream::Stdout, 1, b"first\n").unwrap();
        let mut r = LogReader::open(&path).await.unwrap();
        assert_eq!(r.next().await.unwrap().unwrap().data, b"first\n");
        assert_eq!(r.next().await.unwrap(), None);
        w.append(Stream::Stderr, 2, b"second\n").unwrap();
        let e = r.next().await.unwrap().unwrap();
        assert_eq!(
            (e.stream, e.time, e.data.as_slice()),
            (Stream::Stderr, 2, b"second\n".as_slice())
        );
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn query_and_tail_select_the_window() {
        let e = |t: i64| Entry {
            stream: Stream::Stdout,
            time: t,
            data: vec![],
        };
        let q = Query {
            tail: Some(2),
            since: 20,
            until: 40,
        };
        let mut tail = Tail::new(2);
        for t in [10, 20, 30, 40, 50] {
            if q.admits(&e(t)) {
                tail.push(e(t));
            }
        }
        assert!(q.past_until(&e(50)));
        let times: Vec<i64> = tail.into_entries().iter().map(|e| e.time).collect();
        assert_eq!(times, vec![30, 40]);

        let mut none = Tail::new(0);
        none.push(e(1));
        assert!(none.into_entries().is_empty());
    }

    fn tempdir() -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("berth-log-test-{}", rand::random::<u64>()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }
}
