//! What the CLI serves BuildKit on a build's session, apart from the
//! transport: the build context and the Dockerfile (`FileSync/DiffCopy`),
//! exporter output (`FileSend/DiffCopy`), secrets and SSH agent forwarding.
//!
//! BuildKit drives every one of these calls; the daemon is trusted to build
//! but not to read or write outside what the user named: only the named
//! directories are served, symlinks are sent as links and never followed out
//! of the context, and a received tree is written strictly below its
//! destination.

mod export;
mod follow;
mod local_export;
pub mod patterns;
mod receive;
mod secrets;
mod send;
mod ssh;
mod walker;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

pub use export::{file_send, ExportSink};
// the types are named by callers that build these values themselves
#[allow(unused_imports)]
pub use local_export::{file_receive_dir, FileReceiveServer};
#[allow(unused_imports)]
pub use patterns::read_dockerignore;
#[allow(unused_imports)]
pub use secrets::{parse_secret_flag, secrets, SecretFrom, SecretSource};
pub use send::file_sync;
pub use ssh::{parse_ssh_flag, ssh};

/// A failure while serving the session's files, secrets or agents.
#[derive(Debug, thiserror::Error)]
pub enum ContextError {
    #[error("invalid {what} pattern: {source}")]
    Pattern {
        what: &'static str,
        #[source]
        source: patterns::PatternError,
    },
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("file name is not valid UTF-8: {0}")]
    NotUtf8(String),
    #[error("refusing {path:?} from the daemon: {reason}")]
    Refused { path: String, reason: &'static str },
    #[error("{0}")]
    Protocol(String),
    #[error("invalid secret {flag:?}: {reason}")]
    SecretFlag { flag: String, reason: String },
    #[error("secret {id}: {reason}")]
    Secret { id: String, reason: String },
    #[error("invalid ssh {flag:?}: {reason}")]
    SshFlag { flag: String, reason: String },
}

impl ContextError {
    pub(crate) fn io(
        op: &'static str,
        path: impl std::fmt::Display,
        source: std::io::Error,
    ) -> Self {
        Self::Io {
            op,
            path: path.to_string(),
            source,
        }
    }
}

/// The directories served on `FileSync`, by the name BuildKit asks for
/// (`context`, `dockerfile`, or a named context).
#[derive(Debug, Clone, Default)]
pub struct LocalDirs {
    dirs: HashMap<String, PathBuf>,
}

impl LocalDirs {
    pub fn new() -> Self {
        Self::default()
    }

    /// Serves `dir` under `name`; a second `add` of a name replaces the first.
    pub fn add(&mut self, name: &str, dir: PathBuf) {
        self.dirs.insert(name.to_string(), dir);
    }

    fn get(&self, name: &str) -> Option<&PathBuf> {
        self.dirs.get(name)
    }
}

/// What the context transfers of one session sent: file contents only (the
/// DATA payload), not the stat entries, so a test can tell an incremental
/// send from a full one. BuildKit re-sends the Dockerfile and
/// `.dockerignore` whole on every build (their sources use no differ), so
/// each transfer is also recorded on its own.
#[derive(Debug, Clone, Default)]
pub struct TransferStats {
    inner: Arc<Counters>,
}

#[derive(Debug, Default)]
struct Counters {
    bytes: AtomicU64,
    files: AtomicU64,
    done: std::sync::Mutex<Vec<Transfer>>,
}

/// One finished DiffCopy of a served directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transfer {
    /// The name BuildKit asked for (`context`, `dockerfile`, …).
    pub dir: String,
    pub bytes: u64,
    pub files: u64,
}

impl TransferStats {
    pub fn new() -> Self {
        Self::default()
    }

    /// Bytes of file contents sent, all transfers together.
    #[allow(dead_code)] // agreed API; `build` reports per transfer today
    pub fn bytes_sent(&self) -> u64 {
        self.inner.bytes.load(Ordering::Relaxed)
    }

    /// Files whose contents BuildKit requested and got, all transfers
    /// together.
    #[allow(dead_code)] // agreed API; `build` reports per transfer today
    pub fn files_sent(&self) -> u64 {
        self.inner.files.load(Ordering::Relaxed)
    }

    /// The finished transfers, in the order they finished.
    pub fn transfers(&self) -> Vec<Transfer> {
        self.inner.done.lock().expect("transfer log").clone()
    }

    fn begin(&self, dir: &str) -> TransferCount {
        TransferCount {
            session: self.clone(),
            dir: dir.to_string(),
            own: Arc::default(),
        }
    }
}

/// The counters of one transfer, which also add to the session's.
#[derive(Debug, Clone)]
pub(crate) struct TransferCount {
    session: TransferStats,
    dir: String,
    own: Arc<(AtomicU64, AtomicU64)>,
}

impl TransferCount {
    fn add_bytes(&self, n: u64) {
        self.own.0.fetch_add(n, Ordering::Relaxed);
        self.session.inner.bytes.fetch_add(n, Ordering::Relaxed);
    }

    fn add_file(&self) {
        self.own.1.fetch_add(1, Ordering::Relaxed);
        self.session.inner.files.fetch_add(1, Ordering::Relaxed);
    }

    /// Records the transfer as finished.
    fn finish(&self) {
        let t = Transfer {
            dir: self.dir.clone(),
            bytes: self.own.0.load(Ordering::Relaxed),
            files: self.own.1.load(Ordering::Relaxed),
        };
        self.session
            .inner
            .done
            .lock()
            .expect("transfer log")
            .push(t);
    }
}

/// Go `os.FileMode` bits: the wire's `Stat.mode` keeps the file type in the
/// high bits, not in `st_mode`'s `S_IFMT`.
pub(crate) mod gomode {
    pub const DIR: u32 = 1 << 31;
    pub const SYMLINK: u32 = 1 << 27;
    pub const DEVICE: u32 = 1 << 26;
    pub const NAMED_PIPE: u32 = 1 << 25;
    pub const SOCKET: u32 = 1 << 24;
    pub const SETUID: u32 = 1 << 23;
    pub const SETGID: u32 = 1 << 22;
    pub const CHAR_DEVICE: u32 = 1 << 21;
    pub const STICKY: u32 = 1 << 20;
    pub const IRREGULAR: u32 = 1 << 19;
    pub const PERM: u32 = 0o777;
    /// Go's `os.ModeType`: any of these makes an entry something other than
    /// a regular file.
    pub const TYPE: u32 = DIR | SYMLINK | NAMED_PIPE | SOCKET | DEVICE | CHAR_DEVICE | IRREGULAR;

    /// `st_mode` to Go's `os.FileMode`, as Go's `fillFileStatFromSys` does.
    pub fn from_unix(st_mode: u32) -> u32 {
        let mut mode = st_mode & PERM;
        mode |= match st_mode & libc::S_IFMT {
            libc::S_IFBLK => DEVICE,
            libc::S_IFCHR => DEVICE | CHAR_DEVICE,
            libc::S_IFDIR => DIR,
            libc::S_IFIFO => NAMED_PIPE,
            libc::S_IFLNK => SYMLINK,
            libc::S_IFSOCK => SOCKET,
            _ => 0,
        };
        if st_mode & libc::S_ISUID != 0 {
            mode |= SETUID;
        }
        if st_mode & libc::S_ISGID != 0 {
            mode |= SETGID;
        }
        if st_mode & libc::S_ISVTX != 0 {
            mode |= STICKY;
        }
        mode
    }

    /// Go's `os.FileMode.Perm` plus the setuid, setgid and sticky bits as
    /// `chmod` takes them.
    pub fn to_unix_perm(mode: u32) -> u32 {
        let mut perm = mode & PERM;
        if mode & SETUID != 0 {
            perm |= libc::S_ISUID;
        }
        if mode & SETGID != 0 {
            perm |= libc::S_ISGID;
        }
        if mode & STICKY != 0 {
            perm |= libc::S_ISVTX;
        }
        perm
    }

    /// Whether the receiver may request this entry's contents (fsutil's
    /// `fileCanRequestData`): a regular file.
    pub fn is_regular(mode: u32) -> bool {
        mode & TYPE == 0
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn unix_modes_map_to_go_file_modes() {
            let cases = [
                (libc::S_IFREG | 0o644, 0o644),
                (libc::S_IFREG | 0o4755, SETUID | 0o755),
                (libc::S_IFDIR | 0o1777, DIR | STICKY | 0o777),
                (libc::S_IFDIR | 0o2750, DIR | SETGID | 0o750),
                (libc::S_IFLNK | 0o777, SYMLINK | 0o777),
                (libc::S_IFIFO | 0o600, NAMED_PIPE | 0o600),
                (libc::S_IFSOCK | 0o755, SOCKET | 0o755),
                (libc::S_IFCHR | 0o666, DEVICE | CHAR_DEVICE | 0o666),
                (libc::S_IFBLK | 0o660, DEVICE | 0o660),
            ];
            for (unix, go) in cases {
                assert_eq!(from_unix(unix), go, "{unix:o}");
            }
            assert_eq!(to_unix_perm(SETUID | STICKY | 0o755), 0o5755);
            assert!(is_regular(0o644 | SETUID));
            assert!(!is_regular(DIR | 0o755));
            assert!(!is_regular(SYMLINK | 0o777));
        }
    }
}

/// Reads a metadata key that may carry several values, undoing BuildKit's
/// header encoding: values with non-ASCII characters are query-escaped and
/// flagged by `<key>-encoded: 1` (filesync's `encodeOpts`).
pub(crate) fn metadata_values(md: &tonic::metadata::MetadataMap, key: &str) -> Vec<String> {
    let encoded = md
        .get(format!("{key}-encoded").as_str())
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| matches!(v, "1" | "t" | "T" | "true" | "TRUE" | "True"));
    md.get_all(key)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .map(|v| {
            if encoded {
                query_unescape(v)
            } else {
                v.to_string()
            }
        })
        .collect()
}

/// Go's `url.QueryUnescape`: `+` is a space, `%XX` a byte; a malformed
/// escape leaves the value as it was (BuildKit ignores the error too, but
/// then uses an empty string; keeping the raw value is the safer reading).
fn query_unescape(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b'%' => {
                let hex = bytes
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok());
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(b) => {
                        out.push(b);
                        i += 3;
                    }
                    None => return s.to_string(),
                }
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).unwrap_or_else(|_| s.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tonic::metadata::{MetadataMap, MetadataValue};

    #[test]
    fn metadata_values_are_repeated_and_decoded() {
        let mut md = MetadataMap::new();
        md.append("include-patterns", MetadataValue::from_static("a"));
        md.append("include-patterns", MetadataValue::from_static("b,c"));
        md.append(
            "exclude-patterns",
            MetadataValue::from_static("caf%C3%A9+x"),
        );
        md.append("exclude-patterns-encoded", MetadataValue::from_static("1"));
        assert_eq!(metadata_values(&md, "include-patterns"), ["a", "b,c"]);
        assert_eq!(metadata_values(&md, "exclude-patterns"), ["café x"]);
        assert!(metadata_values(&md, "followpaths").is_empty());
    }

    #[test]
    fn query_unescape_cases() {
        let cases = [
            ("a%2Fb", "a/b"),
            ("a+b", "a b"),
            ("100%", "100%"),
            ("%zz", "%zz"),
            ("plain", "plain"),
        ];
        for (input, want) in cases {
            assert_eq!(query_unescape(input), want, "{input}");
        }
    }

    #[test]
    fn transfers_add_up_and_are_recorded_one_by_one() {
        let stats = TransferStats::new();
        let a = stats.clone().begin("context");
        let b = stats.begin("dockerfile");
        a.add_bytes(10);
        a.add_file();
        b.add_bytes(5);
        b.add_file();
        b.add_bytes(1);
        b.finish();
        a.finish();
        assert_eq!((stats.bytes_sent(), stats.files_sent()), (16, 2));
        let t = |dir: &str, bytes, files| Transfer {
            dir: dir.into(),
            bytes,
            files,
        };
        assert_eq!(
            stats.transfers(),
            [t("dockerfile", 6, 1), t("context", 10, 1)]
        );
    }
}
