//! The receiver side of fsutil's protocol, for the `local` exporter: the
//! daemon sends the stats of the exported tree, the receiver creates each
//! entry, requests the contents of regular files and ends with FIN.
//!
//! The daemon is not trusted to write outside `dest`: every path must be
//! relative and clean, its parent must be a directory received earlier in
//! the same transfer (so a symlink, received or already on disk, is never
//! written through), a hard link may only point at a regular file of the
//! transfer, and a path may not come twice. Existing entries are replaced,
//! never followed (BuildKit merges into the destination the same way).

use std::collections::HashMap;
use std::fs::File;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use berth_proto::buildkit::fsutil::packet::PacketType;
use berth_proto::buildkit::fsutil::{Packet, Stat};
use filetime::FileTime;
use futures::{Stream, StreamExt};
use tokio::sync::mpsc;
use tonic::Status;

use super::{gomode, ContextError};

/// Receives one tree into `dest`; blocks, reading `incoming` through `rt`.
pub(crate) fn receive_tree<S>(
    dest: &Path,
    mut incoming: S,
    out: &mpsc::Sender<Result<Packet, Status>>,
    rt: &tokio::runtime::Handle,
) -> Result<(), ContextError>
where
    S: Stream<Item = Result<Packet, Status>> + Unpin,
{
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dest)
        .map_err(|e| ContextError::io("creating", dest.display(), e))?;
    let mut r = Receiver::new(dest.to_path_buf());
    loop {
        let packet = match rt.block_on(incoming.next()) {
            Some(Ok(p)) => p,
            Some(Err(status)) => {
                return Err(ContextError::Protocol(format!(
                    "receiving from the daemon: {}",
                    status.message()
                )))
            }
            None => {
                return Err(ContextError::Protocol(
                    "the daemon ended the export early".into(),
                ))
            }
        };
        match r.on_packet(packet)? {
            Flow::Finished => return Ok(()),
            Flow::Continue(replies) => {
                for p in replies {
                    out.blocking_send(Ok(p)).map_err(|_| {
                        ContextError::Protocol("the daemon closed the export".into())
                    })?;
                }
            }
        }
    }
}

enum Flow {
    Continue(Vec<Packet>),
    Finished,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Dir,
    /// A regular file, which hard links may point at.
    File,
    Other,
}

struct OpenFile {
    file: File,
    path: PathBuf,
    stat: Stat,
}

/// fsutil's receiver as a state machine over incoming packets.
struct Receiver {
    dest: PathBuf,
    entries: HashMap<String, Kind>,
    next_id: u32,
    open: HashMap<u32, OpenFile>,
    /// Directories, whose final mode and times are set last so that a
    /// read-only directory can still be filled.
    dirs: Vec<(PathBuf, Stat)>,
    stats_done: bool,
    fin_sent: bool,
}

static TMP_COUNTER: AtomicU64 = AtomicU64::new(0);

impl Receiver {
    fn new(dest: PathBuf) -> Self {
        Self {
            dest,
            entries: HashMap::new(),
            next_id: 0,
            open: HashMap::new(),
            dirs: Vec::new(),
            stats_done: false,
            fin_sent: false,
        }
    }

    fn on_packet(&mut self, p: Packet) -> Result<Flow, ContextError> {
        match PacketType::try_from(p.r#type) {
            Ok(PacketType::PacketStat) => match p.stat {
                Some(stat) => {
                    if self.stats_done {
                        return Err(ContextError::Protocol(
                            "stat after the end of the list".into(),
                        ));
                    }
                    let id = self.next_id;
                    self.next_id += 1;
                    let req = self.add(stat, id)?;
                    Ok(Flow::Continue(req.into_iter().collect()))
                }
                None => {
                    self.stats_done = true;
                    self.maybe_fin()
                }
            },
            Ok(PacketType::PacketData) => {
                let Some(f) = self.open.get_mut(&p.id) else {
                    return Err(ContextError::Protocol(format!(
                        "invalid file request {}",
                        p.id
                    )));
                };
                if !p.data.is_empty() {
                    f.file
                        .write_all(&p.data)
                        .map_err(|e| ContextError::io("writing", f.path.display(), e))?;
                    return Ok(Flow::Continue(Vec::new()));
                }
                let f = self.open.remove(&p.id).expect("open file");
                finish_file(f)?;
                self.maybe_fin()
            }
            Ok(PacketType::PacketFin) if self.fin_sent => Ok(Flow::Finished),
            Ok(PacketType::PacketFin) => Err(ContextError::Protocol(
                "the daemon finished the export early".into(),
            )),
            Ok(PacketType::PacketErr) => Err(ContextError::Protocol(format!(
                "error from sender: {}",
                String::from_utf8_lossy(&p.data)
            ))),
            _ => Ok(Flow::Continue(Vec::new())),
        }
    }

    /// Once every stat is in and every file complete: fix up directories,
    /// then FIN (the sender answers with its own FIN).
    fn maybe_fin(&mut self) -> Result<Flow, ContextError> {
        if !self.stats_done || !self.open.is_empty() || self.fin_sent {
            return Ok(Flow::Continue(Vec::new()));
        }
        for (path, stat) in self.dirs.drain(..).rev() {
            std::fs::set_permissions(
                &path,
                std::fs::Permissions::from_mode(gomode::to_unix_perm(stat.mode)),
            )
            .map_err(|e| ContextError::io("setting the mode of", path.display(), e))?;
            set_times(&path, &stat)?;
        }
        self.fin_sent = true;
        Ok(Flow::Continue(vec![Packet {
            r#type: PacketType::PacketFin as i32,
            ..Packet::default()
        }]))
    }

    /// Creates one entry; returns the REQ for a regular file's data.
    fn add(&mut self, stat: Stat, id: u32) -> Result<Option<Packet>, ContextError> {
        let refuse = |reason| ContextError::Refused {
            path: stat.path.clone(),
            reason,
        };
        check_path(&stat.path).map_err(refuse)?;
        if self.entries.contains_key(&stat.path) {
            return Err(refuse("sent twice"));
        }
        if let Some((parent, _)) = stat.path.rsplit_once('/') {
            if self.entries.get(parent) != Some(&Kind::Dir) {
                return Err(refuse("its parent is not a directory of this export"));
            }
        }
        let target = self.dest.join(&stat.path);
        let mode = stat.mode;
        let (kind, req) = if mode & gomode::DIR != 0 {
            make_dir(&target)?;
            self.dirs.push((target, stat.clone()));
            (Kind::Dir, None)
        } else if mode & gomode::SYMLINK != 0 {
            replace_with(&target, |tmp| {
                std::os::unix::fs::symlink(&stat.linkname, tmp)
            })?;
            set_times(&target, &stat)?;
            (Kind::Other, None)
        } else if mode & (gomode::DEVICE | gomode::NAMED_PIPE) != 0 {
            make_node(&target, &stat)?;
            (Kind::Other, None)
        } else if !gomode::is_regular(mode) {
            return Err(refuse("unsupported file type"));
        } else if !stat.linkname.is_empty() {
            check_path(&stat.linkname).map_err(refuse)?;
            if self.entries.get(&stat.linkname) != Some(&Kind::File) {
                return Err(refuse(
                    "hard link to a file that is not part of this export",
                ));
            }
            let source = self.dest.join(&stat.linkname);
            replace_with(&target, |tmp| std::fs::hard_link(&source, tmp))?;
            (Kind::Other, None)
        } else {
            let file = replace_with(&target, |tmp| {
                std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(tmp)
            })?;
            self.open.insert(
                id,
                OpenFile {
                    file,
                    path: target,
                    stat: stat.clone(),
                },
            );
            let req = Packet {
                r#type: PacketType::PacketReq as i32,
                id,
                ..Packet::default()
            };
            (Kind::File, Some(req))
        };
        self.entries.insert(stat.path, kind);
        Ok(req)
    }
}

/// A path from the daemon must be relative and clean: no empty, `.` or `..`
/// component, no NUL.
fn check_path(path: &str) -> Result<(), &'static str> {
    if path.is_empty() {
        return Err("empty path");
    }
    if path.starts_with('/') {
        return Err("absolute path");
    }
    if path.contains('\0') {
        return Err("NUL in path");
    }
    for part in path.split('/') {
        match part {
            ".." => return Err("path leaves the destination"),
            "" | "." => return Err("path is not clean"),
            _ => {}
        }
    }
    Ok(())
}

/// Makes `target` a real directory: an existing one is kept, anything else
/// there (a file, a symlink) is removed first, never followed.
fn make_dir(target: &Path) -> Result<(), ContextError> {
    match std::fs::symlink_metadata(target) {
        Ok(m) if m.is_dir() => return Ok(()),
        Ok(_) => std::fs::remove_file(target)
            .map_err(|e| ContextError::io("replacing", target.display(), e))?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(ContextError::io("reading", target.display(), e)),
    }
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(target)
        .map_err(|e| ContextError::io("creating", target.display(), e))
}

/// Creates the entry under a temporary name beside `target` and renames it
/// into place, which replaces whatever was there without following it.
fn replace_with<T>(
    target: &Path,
    create: impl FnOnce(&Path) -> std::io::Result<T>,
) -> Result<T, ContextError> {
    let parent = target.parent().expect("a path below dest");
    let tmp = parent.join(format!(
        ".berth-tmp-{}-{}",
        std::process::id(),
        TMP_COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let value = create(&tmp).map_err(|e| ContextError::io("creating", target.display(), e))?;
    let replace = || -> std::io::Result<()> {
        if std::fs::symlink_metadata(target).is_ok_and(|m| m.is_dir()) {
            std::fs::remove_dir_all(target)?;
        }
        std::fs::rename(&tmp, target)
    };
    if let Err(e) = replace() {
        let _ = std::fs::remove_file(&tmp);
        return Err(ContextError::io("creating", target.display(), e));
    }
    Ok(value)
}

/// A FIFO, or a device node (which only works with privileges, as with
/// BuildKit's own client).
fn make_node(target: &Path, stat: &Stat) -> Result<(), ContextError> {
    use nix::sys::stat::{makedev, mknod, Mode, SFlag};
    let kind = if stat.mode & gomode::NAMED_PIPE != 0 {
        SFlag::S_IFIFO
    } else if stat.mode & gomode::CHAR_DEVICE != 0 {
        SFlag::S_IFCHR
    } else {
        SFlag::S_IFBLK
    };
    let dev = makedev(stat.devmajor as u64, stat.devminor as u64);
    replace_with(target, |tmp| {
        mknod(tmp, kind, Mode::from_bits_truncate(0o600), dev).map_err(std::io::Error::from)
    })?;
    std::fs::set_permissions(
        target,
        std::fs::Permissions::from_mode(gomode::to_unix_perm(stat.mode)),
    )
    .map_err(|e| ContextError::io("setting the mode of", target.display(), e))?;
    set_times(target, stat)
}

/// Mode, times and extended attributes of a completed file, through its
/// handle.
fn finish_file(f: OpenFile) -> Result<(), ContextError> {
    let perm = std::fs::Permissions::from_mode(gomode::to_unix_perm(f.stat.mode));
    f.file
        .set_permissions(perm)
        .map_err(|e| ContextError::io("setting the mode of", f.path.display(), e))?;
    let t = file_time(&f.stat);
    filetime::set_file_handle_times(&f.file, Some(t), Some(t))
        .map_err(|e| ContextError::io("setting the times of", f.path.display(), e))?;
    // best effort: an unprivileged user can set only `user.` attributes
    for (key, value) in &f.stat.xattrs {
        let _ = xattr::set(&f.path, key, value);
    }
    Ok(())
}

fn file_time(stat: &Stat) -> FileTime {
    FileTime::from_unix_time(
        stat.mod_time.div_euclid(1_000_000_000),
        stat.mod_time.rem_euclid(1_000_000_000) as u32,
    )
}

/// Sets atime and mtime to the stat's mtime without following a symlink.
fn set_times(path: &Path, stat: &Stat) -> Result<(), ContextError> {
    let t = file_time(stat);
    filetime::set_symlink_file_times(path, t, t)
        .map_err(|e| ContextError::io("setting the times of", path.display(), e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::build::context::send::send_tree;
    use crate::build::context::walker::tests::{sample_tree, walk_all};
    use crate::build::context::walker::Filter;
    use crate::build::context::TransferStats;
    use std::os::unix::fs::MetadataExt;
    use tokio_stream::wrappers::ReceiverStream;

    fn stat(path: &str, mode: u32, linkname: &str) -> Packet {
        Packet {
            r#type: PacketType::PacketStat as i32,
            stat: Some(Stat {
                path: path.into(),
                mode,
                linkname: linkname.into(),
                mod_time: 1_600_000_000_123_456_789,
                ..Stat::default()
            }),
            ..Packet::default()
        }
    }

    /// Feeds `packets` to a receiver and returns its result.
    async fn feed(dest: PathBuf, packets: Vec<Packet>) -> Result<(), ContextError> {
        let (out, mut replies) = mpsc::channel(64);
        let incoming = futures::stream::iter(packets.into_iter().map(Ok));
        let rt = tokio::runtime::Handle::current();
        let res = tokio::task::spawn_blocking(move || receive_tree(&dest, incoming, &out, &rt))
            .await
            .unwrap();
        while replies.recv().await.is_some() {}
        res
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_sent_tree_arrives_whole() {
        let src = sample_tree();
        std::fs::create_dir(src.path().join("ro")).unwrap();
        std::fs::write(src.path().join("ro/f"), "in a read-only dir").unwrap();
        std::fs::set_permissions(
            src.path().join("ro"),
            std::fs::Permissions::from_mode(0o555),
        )
        .unwrap();
        let dst = tempfile::tempdir().unwrap();
        let dest = dst.path().join("out");

        // the sender and the receiver talk over two channels
        let (to_recv, recv_in) = mpsc::channel(64);
        let (recv_out, from_recv) = mpsc::channel(64);
        let sender = tokio::spawn(send_tree(
            src.path().to_path_buf(),
            Filter::default(),
            ReceiverStream::new(from_recv),
            to_recv,
            TransferStats::new().begin("context"),
        ));
        let rt = tokio::runtime::Handle::current();
        let d = dest.clone();
        let receiver = tokio::task::spawn_blocking(move || {
            receive_tree(&d, ReceiverStream::new(recv_in), &recv_out, &rt)
        });
        receiver.await.unwrap().expect("receiver");
        sender.await.unwrap().expect("sender");

        let sent = walk_all(src.path(), &Filter::default());
        let got = walk_all(&dest, &Filter::default());
        let view = |v: &[crate::build::context::walker::Entry]| {
            v.iter()
                .map(|e| {
                    (
                        e.stat.path.clone(),
                        e.stat.mode,
                        e.stat.size,
                        e.stat.mod_time,
                        e.stat.linkname.clone(),
                    )
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(view(&got), view(&sent));
        assert_eq!(std::fs::read(dest.join("a/sub/deep.txt")).unwrap(), b"deep");
        assert_eq!(
            std::fs::read_link(dest.join("b/outside")).unwrap(),
            Path::new("/etc/passwd")
        );
        let (a, b) = (
            std::fs::metadata(dest.join("a.txt")).unwrap(),
            std::fs::metadata(dest.join("b/hard")).unwrap(),
        );
        assert_eq!(a.ino(), b.ino(), "the hard link is a hard link");
        std::fs::set_permissions(
            src.path().join("ro"),
            std::fs::Permissions::from_mode(0o755),
        )
        .unwrap();
        std::fs::set_permissions(dest.join("ro"), std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn paths_leaving_the_destination_are_refused() {
        let dir = gomode::DIR | 0o755;
        let cases: Vec<(&str, Vec<Packet>)> = vec![
            ("dot-dot", vec![stat("../x", 0o644, "")]),
            (
                "nested dot-dot",
                vec![stat("a", dir, ""), stat("a/../../x", 0o644, "")],
            ),
            ("absolute", vec![stat("/tmp/x", 0o644, "")]),
            ("unclean", vec![stat("a//b", 0o644, "")]),
            // a symlink to outside, then a file through it
            (
                "through a symlink",
                vec![
                    stat("evil", gomode::SYMLINK | 0o777, "/tmp"),
                    stat("evil/x", 0o644, ""),
                ],
            ),
            // a directory replaced by a symlink later in the stream
            (
                "sent twice",
                vec![
                    stat("d", dir, ""),
                    stat("d", gomode::SYMLINK | 0o777, "/tmp"),
                ],
            ),
            ("parent never sent", vec![stat("nodir/x", 0o644, "")]),
            (
                "hard link outside",
                vec![stat("h", 0o644, "../../etc/passwd")],
            ),
            ("hard link to unknown", vec![stat("h", 0o644, "elsewhere")]),
            (
                "hard link to a symlink",
                vec![
                    stat("l", gomode::SYMLINK | 0o777, "/etc/passwd"),
                    stat("h", 0o644, "l"),
                ],
            ),
        ];
        for (name, packets) in cases {
            let tmp = tempfile::tempdir().unwrap();
            let dest = tmp.path().join("dest");
            let err = feed(dest, packets).await.expect_err(name);
            assert!(matches!(err, ContextError::Refused { .. }), "{name}: {err}");
            assert!(!tmp.path().join("x").exists() && !Path::new("/tmp/x-berth-test").exists());
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_symlink_already_in_dest_is_replaced_not_followed() {
        let tmp = tempfile::tempdir().unwrap();
        let outside = tmp.path().join("outside");
        std::fs::create_dir(&outside).unwrap();
        let dest = tmp.path().join("dest");
        std::fs::create_dir(&dest).unwrap();
        std::os::unix::fs::symlink(&outside, dest.join("d")).unwrap();
        std::os::unix::fs::symlink(outside.join("f"), dest.join("f")).unwrap();

        // `d` becomes a real directory and `f` a file; nothing lands outside
        let packets = vec![
            stat("d", gomode::DIR | 0o755, ""),
            stat("d/inner", gomode::SYMLINK | 0o777, "x"),
            stat("f", gomode::SYMLINK | 0o777, "y"),
            Packet {
                r#type: PacketType::PacketStat as i32,
                ..Packet::default()
            },
            Packet {
                r#type: PacketType::PacketFin as i32,
                ..Packet::default()
            },
        ];
        feed(dest.clone(), packets).await.expect("receive");
        assert!(std::fs::symlink_metadata(dest.join("d")).unwrap().is_dir());
        assert_eq!(std::fs::read_dir(&outside).unwrap().count(), 0);
        assert_eq!(std::fs::read_link(dest.join("f")).unwrap(), Path::new("y"));
    }

    #[test]
    fn check_path_cases() {
        for ok in ["a", "a/b", ".hidden", "a/..b", "...", "b.."] {
            assert_eq!(check_path(ok), Ok(()), "{ok}");
        }
        for bad in ["", "/a", "..", "a/..", "./a", "a/./b", "a/", "a//b", "a\0b"] {
            assert!(check_path(bad).is_err(), "{bad:?}");
        }
    }
}
