//! The walk of a served directory: the stat entries fsutil's sender emits.
//!
//! Facts BuildKit's receiver checks or relies on: entries come depth-first
//! in pre-order with the entries of each directory sorted bytewise by name;
//! a directory comes before its contents, and a directory that is itself
//! filtered out is still sent when something below it is; symlinks are sent
//! as links (never followed); the second and later paths of a hard-linked
//! inode carry the first path as `linkname` and size 0; modes are Go
//! `os.FileMode` bits (socket bit cleared, as fsutil does for tar's sake).
//! The nanosecond mtime is sent as it is, so BuildKit's content cache sees
//! unchanged files as unchanged; uid and gid are sent as 0, as docker's and
//! buildx's clients reset them, so a `COPY` without `--chown` gives root's
//! files whoever owns the context.

use std::collections::HashMap;
use std::fs::Metadata;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use berth_proto::buildkit::fsutil::Stat;

use super::follow::{dedupe_paths, follow_links};
use super::patterns::{MatchInfo, PatternMatcher};
use super::{gomode, ContextError};

/// The include/exclude/followpaths filter of one transfer (fsutil's
/// `FilterOpt`).
#[derive(Debug, Default)]
pub struct Filter {
    include: Option<PatternMatcher>,
    exclude: Option<PatternMatcher>,
    /// No include pattern has a wildcard before its trailing glob: a
    /// directory no pattern starts with can be skipped whole.
    only_prefix_includes: bool,
    /// Likewise for the `!` exceptions of the exclude patterns.
    only_prefix_exclude_exceptions: bool,
}

impl Filter {
    pub fn new(
        root: &Path,
        include: &[String],
        exclude: &[String],
        follow: &[String],
    ) -> Result<Self, ContextError> {
        let mut include = include.to_vec();
        if !follow.is_empty() {
            if let Some(targets) = follow_links(root, follow)? {
                include.extend(targets);
                match dedupe_paths(&include) {
                    Some(d) => include = d,
                    None => include.clear(),
                }
            }
        }
        let include = if include.is_empty() {
            None
        } else {
            Some(
                PatternMatcher::new(&include).map_err(|source| ContextError::Pattern {
                    what: "include",
                    source,
                })?,
            )
        };
        let exclude = if exclude.is_empty() {
            None
        } else {
            Some(
                PatternMatcher::new(exclude).map_err(|source| ContextError::Pattern {
                    what: "exclude",
                    source,
                })?,
            )
        };
        let only_prefix_includes = include.as_ref().is_none_or(|m| {
            m.patterns()
                .iter()
                .all(|p| p.is_exclusion() || !p.has_wildcard_prefix())
        });
        let only_prefix_exclude_exceptions = exclude.as_ref().is_none_or(|m| {
            m.patterns()
                .iter()
                .all(|p| !p.is_exclusion() || !p.has_wildcard_prefix())
        });
        Ok(Self {
            include,
            exclude,
            only_prefix_includes,
            only_prefix_exclude_exceptions,
        })
    }
}

/// One entry of the walk: its wire stat and where to read it.
#[derive(Debug, Clone)]
pub struct Entry {
    pub stat: Stat,
    pub source: PathBuf,
}

/// What a visited directory leaves for its entries.
struct Frame {
    rel: String,
    abs: PathBuf,
    meta: Metadata,
    include: MatchInfo,
    exclude: MatchInfo,
    emitted: bool,
}

/// Walks `root` (resolved through symlinks first, as the user named it) and
/// hands each entry to `emit` in wire order.
pub fn walk(
    root: &Path,
    filter: &Filter,
    emit: &mut dyn FnMut(Entry) -> Result<(), ContextError>,
) -> Result<(), ContextError> {
    let root = std::fs::canonicalize(root)
        .map_err(|e| ContextError::io("resolving", root.display(), e))?;
    let meta =
        std::fs::metadata(&root).map_err(|e| ContextError::io("reading", root.display(), e))?;
    if !meta.is_dir() {
        return Err(ContextError::io(
            "reading",
            root.display(),
            std::io::Error::from_raw_os_error(libc::ENOTDIR),
        ));
    }
    let mut w = Walker {
        filter,
        emit,
        hardlinks: HashMap::new(),
        frames: Vec::new(),
    };
    w.dir(&root, "")
}

struct Walker<'a> {
    filter: &'a Filter,
    emit: &'a mut dyn FnMut(Entry) -> Result<(), ContextError>,
    /// (device, inode) of each sent multiply-linked file, to its first path.
    hardlinks: HashMap<(u64, u64), String>,
    /// The directories from the root down to the one being walked.
    frames: Vec<Frame>,
}

impl Walker<'_> {
    fn dir(&mut self, abs: &Path, rel: &str) -> Result<(), ContextError> {
        let mut names: Vec<std::ffi::OsString> = match std::fs::read_dir(abs) {
            Ok(rd) => rd
                .map(|e| e.map(|e| e.file_name()))
                .collect::<Result<_, _>>()
                .map_err(|e| ContextError::io("reading directory", display_rel(rel), e))?,
            Err(e) => {
                // an unreadable directory that is itself filtered out is
                // passed over, as fsutil does
                let skipped = self.frames.last().is_some_and(|f| !f.emitted);
                if skipped && e.kind() == std::io::ErrorKind::PermissionDenied {
                    return Ok(());
                }
                return Err(ContextError::io("reading directory", display_rel(rel), e));
            }
        };
        names.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
        for name in names {
            let child_abs = abs.join(&name);
            let name = name.to_string_lossy();
            let child_rel = if rel.is_empty() {
                name.into_owned()
            } else {
                format!("{rel}/{name}")
            };
            let meta = match std::fs::symlink_metadata(&child_abs) {
                Ok(m) => m,
                // removed while walking
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(ContextError::io("reading", &child_rel, e)),
            };
            self.entry(child_abs, child_rel, meta)?;
        }
        Ok(())
    }

    fn entry(&mut self, abs: PathBuf, rel: String, meta: Metadata) -> Result<(), ContextError> {
        let is_dir = meta.is_dir();
        let mut skip = false;
        let (mut include_info, mut exclude_info) = (MatchInfo::default(), MatchInfo::default());

        if let Some(m) = &self.filter.include {
            let parent = self
                .frames
                .last()
                .map(|f| &f.include)
                .cloned()
                .unwrap_or_default();
            let (hit, info) = m.matches_using_parent_results(&rel, &parent);
            include_info = info;
            if !hit {
                if is_dir && self.filter.only_prefix_includes && !could_match_below(m, &rel, false)
                {
                    return Ok(());
                }
                skip = true;
            }
        }
        if let Some(m) = &self.filter.exclude {
            let parent = self
                .frames
                .last()
                .map(|f| &f.exclude)
                .cloned()
                .unwrap_or_default();
            let (hit, info) = m.matches_using_parent_results(&rel, &parent);
            exclude_info = info;
            if hit {
                if is_dir
                    && self.filter.only_prefix_exclude_exceptions
                    && !could_match_below(m, &rel, true)
                {
                    return Ok(());
                }
                skip = true;
            }
        }

        if !skip {
            self.emit_pending_parents()?;
            let stat = self.stat(&abs, &rel, &meta)?;
            (self.emit)(Entry {
                stat,
                source: abs.clone(),
            })?;
        }
        if is_dir {
            self.frames.push(Frame {
                rel: rel.clone(),
                abs: abs.clone(),
                meta,
                include: include_info,
                exclude: exclude_info,
                emitted: !skip,
            });
            let res = self.dir(&abs, &rel);
            self.frames.pop();
            res?;
        }
        Ok(())
    }

    /// Sends the filtered-out directories above an entry that is sent, so
    /// the receiver always has a parent before its child.
    fn emit_pending_parents(&mut self) -> Result<(), ContextError> {
        for i in 0..self.frames.len() {
            if self.frames[i].emitted {
                continue;
            }
            let f = &self.frames[i];
            let stat = stat_of(&f.abs, &f.rel, &f.meta, &mut self.hardlinks)?;
            let source = f.abs.clone();
            (self.emit)(Entry { stat, source })?;
            self.frames[i].emitted = true;
        }
        Ok(())
    }

    fn stat(&mut self, abs: &Path, rel: &str, meta: &Metadata) -> Result<Stat, ContextError> {
        stat_of(abs, rel, meta, &mut self.hardlinks)
    }
}

/// Whether a pattern of `m` (an exception when `exceptions`, else an
/// inclusion) can match something below the directory `dir`.
fn could_match_below(m: &PatternMatcher, dir: &str, exceptions: bool) -> bool {
    if exceptions && !m.has_exclusions() {
        return false;
    }
    let dir_slash = format!("{dir}/");
    m.patterns()
        .iter()
        .filter(|p| p.is_exclusion() == exceptions)
        .any(|p| format!("{}/", p.without_trailing_glob()).starts_with(&dir_slash))
}

fn display_rel(rel: &str) -> &str {
    if rel.is_empty() {
        "."
    } else {
        rel
    }
}

/// The wire stat of one path (fsutil's `mkstat`).
fn stat_of(
    abs: &Path,
    rel: &str,
    meta: &Metadata,
    hardlinks: &mut HashMap<(u64, u64), String>,
) -> Result<Stat, ContextError> {
    if std::str::from_utf8(abs.file_name().map(|n| n.as_bytes()).unwrap_or_default()).is_err() {
        return Err(ContextError::NotUtf8(rel.to_string()));
    }
    let mut stat = Stat {
        path: rel.to_string(),
        mode: gomode::from_unix(meta.mode()) & !gomode::SOCKET,
        uid: 0,
        gid: 0,
        mod_time: meta.mtime() * 1_000_000_000 + meta.mtime_nsec(),
        ..Stat::default()
    };
    if !meta.is_dir() {
        stat.size = meta.size() as i64;
        let ft = meta.mode() & libc::S_IFMT;
        if ft == libc::S_IFBLK || ft == libc::S_IFCHR {
            // Go's old-style major/minor split, which fsutil uses
            let rdev = meta.rdev();
            stat.devmajor = ((rdev >> 8) & 0xfff) as i64;
            stat.devminor = ((rdev & 0xff) | ((rdev >> 12) & 0xfff00)) as i64;
        }
        if meta.file_type().is_symlink() {
            let link =
                std::fs::read_link(abs).map_err(|e| ContextError::io("reading link", rel, e))?;
            stat.linkname = link
                .into_os_string()
                .into_string()
                .map_err(|_| ContextError::NotUtf8(rel.to_string()))?;
        }
        if meta.nlink() > 1 {
            match hardlinks.get(&(meta.dev(), meta.ino())) {
                Some(first) => {
                    stat.linkname = first.clone();
                    stat.size = 0;
                }
                None => {
                    hardlinks.insert((meta.dev(), meta.ino()), rel.to_string());
                }
            }
        }
    }
    stat.xattrs = read_xattrs(abs, rel)?;
    Ok(stat)
}

/// The path's own extended attributes (not its symlink target's); a file
/// system without xattr support has none.
fn read_xattrs(
    abs: &Path,
    rel: &str,
) -> Result<std::collections::BTreeMap<String, Vec<u8>>, ContextError> {
    let mut out = std::collections::BTreeMap::new();
    let names = match xattr::list(abs) {
        Ok(n) => n,
        Err(e) if e.raw_os_error() == Some(libc::ENOTSUP) => return Ok(out),
        Err(e) => return Err(ContextError::io("reading xattrs of", rel, e)),
    };
    for name in names {
        let Some(key) = name.to_str() else { continue };
        // fsutil skips these macOS bookkeeping attributes
        if key.starts_with("com.apple.") {
            continue;
        }
        if let Ok(Some(value)) = xattr::get(abs, &name) {
            out.insert(key.to_string(), value);
        }
    }
    Ok(out)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::os::unix::fs::{symlink, PermissionsExt};

    /// dirs, files, an executable, a symlink out of the tree, a hard link
    pub fn sample_tree() -> tempfile::TempDir {
        let tmp = tempfile::tempdir().unwrap();
        let r = tmp.path();
        std::fs::create_dir_all(r.join("a/sub")).unwrap();
        std::fs::create_dir_all(r.join("b")).unwrap();
        std::fs::write(r.join("a/sub/deep.txt"), "deep").unwrap();
        std::fs::write(r.join("a/x.md"), "markdown").unwrap();
        std::fs::write(r.join("a-b"), "dash").unwrap();
        std::fs::write(r.join("a.txt"), "dot").unwrap();
        std::fs::write(r.join("B"), "upper").unwrap();
        std::fs::write(r.join("run.sh"), "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(r.join("run.sh"), std::fs::Permissions::from_mode(0o755)).unwrap();
        symlink("/etc/passwd", r.join("b/outside")).unwrap();
        std::fs::hard_link(r.join("a.txt"), r.join("b/hard")).unwrap();
        tmp
    }

    pub fn walk_all(root: &Path, filter: &Filter) -> Vec<Entry> {
        let mut out = Vec::new();
        walk(root, filter, &mut |e| {
            out.push(e);
            Ok(())
        })
        .expect("walk");
        out
    }

    fn paths(entries: &[Entry]) -> Vec<&str> {
        entries.iter().map(|e| e.stat.path.as_str()).collect()
    }

    fn filter(root: &Path, include: &[&str], exclude: &[&str], follow: &[&str]) -> Filter {
        let v = |s: &[&str]| s.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        Filter::new(root, &v(include), &v(exclude), &v(follow)).expect("filter")
    }

    #[test]
    fn walk_order_is_preorder_with_bytewise_sorted_siblings() {
        let tmp = sample_tree();
        let entries = walk_all(tmp.path(), &Filter::default());
        // `B` < `a` < `a-b` < `a.txt` bytewise; `a`'s contents right after it
        assert_eq!(
            paths(&entries),
            [
                "B",
                "a",
                "a/sub",
                "a/sub/deep.txt",
                "a/x.md",
                "a-b",
                "a.txt",
                "b",
                "b/hard",
                "b/outside",
                "run.sh"
            ]
        );
    }

    #[test]
    fn modes_links_and_sizes_are_fsutils() {
        let tmp = sample_tree();
        let entries = walk_all(tmp.path(), &Filter::default());
        let get = |p: &str| {
            entries
                .iter()
                .find(|e| e.stat.path == p)
                .unwrap()
                .stat
                .clone()
        };

        let dir = get("a");
        assert_eq!(dir.mode & gomode::DIR, gomode::DIR);
        assert_eq!(dir.size, 0);

        let exe = get("run.sh");
        assert_eq!(exe.mode, 0o755);
        assert_eq!(exe.size, 10);

        let link = get("b/outside");
        assert_eq!(link.mode & gomode::SYMLINK, gomode::SYMLINK);
        assert_eq!(link.linkname, "/etc/passwd");
        assert_eq!(link.size, "/etc/passwd".len() as i64);

        // the first path of the inode is a plain file, the second links to it
        let first = get("a.txt");
        assert!(first.linkname.is_empty());
        assert_eq!(first.size, 3);
        let hard = get("b/hard");
        assert_eq!(hard.linkname, "a.txt");
        assert_eq!(hard.size, 0);
        assert!(gomode::is_regular(hard.mode));

        let meta = std::fs::metadata(tmp.path().join("a-b")).unwrap();
        let st = get("a-b");
        assert_eq!(
            st.mod_time,
            meta.mtime() * 1_000_000_000 + meta.mtime_nsec()
        );
        assert_eq!(
            (st.uid, st.gid),
            (0, 0),
            "owner reset as docker's client does"
        );
    }

    #[test]
    fn excludes_with_exceptions_still_send_parents() {
        let tmp = sample_tree();
        let r = tmp.path();
        let cases: &[(&[&str], &[&str], &[&str])] = &[
            (
                &[],
                &["a"],
                &["B", "a-b", "a.txt", "b", "b/hard", "b/outside", "run.sh"],
            ),
            (
                &[],
                &["**/*.txt", "b"],
                &["B", "a", "a/sub", "a/x.md", "a-b", "run.sh"],
            ),
            // `a` excluded, but an exception below it: `a` and `a/sub` are
            // still sent, before the file
            (
                &[],
                &["a", "!a/sub/deep.txt", "b", "B", "a-b", "a.txt", "run.sh"],
                &["a", "a/sub", "a/sub/deep.txt"],
            ),
            // the same with a wildcard exception (no prefix shortcut)
            (
                &[],
                &["*", "!**/deep.txt"],
                &["a", "a/sub", "a/sub/deep.txt"],
            ),
            // include a deep file: its parents come first
            (&["a/sub/deep.txt"], &[], &["a", "a/sub", "a/sub/deep.txt"]),
            (&["a", "run.sh"], &["a/sub"], &["a", "a/x.md", "run.sh"]),
            (&["*.txt"], &[], &["a.txt"]),
        ];
        for (include, exclude, want) in cases {
            let got = walk_all(r, &filter(r, include, exclude, &[]));
            assert_eq!(
                paths(&got),
                *want,
                "include {include:?} exclude {exclude:?}"
            );
        }
    }

    #[test]
    fn hard_link_to_an_excluded_file_is_sent_as_a_file() {
        let tmp = sample_tree();
        let r = tmp.path();
        let got = walk_all(r, &filter(r, &[], &["a.txt"], &[]));
        let hard = got.iter().find(|e| e.stat.path == "b/hard").unwrap();
        assert!(hard.stat.linkname.is_empty());
        assert_eq!(hard.stat.size, 3);
    }

    #[test]
    fn followpaths_add_link_targets_but_never_leave_the_root() {
        let tmp = sample_tree();
        let r = tmp.path();
        symlink("a/x.md", r.join("Dockerfile")).unwrap();
        let got = walk_all(r, &filter(r, &[], &[], &["Dockerfile", "b/outside"]));
        // the link, its target's directory and target; `b/outside` points at
        // `/etc/passwd`, which means `etc/passwd` in the context: absent
        assert_eq!(paths(&got), ["Dockerfile", "a", "a/x.md", "b", "b/outside"]);
        assert!(got
            .iter()
            .all(|e| e.source.starts_with(std::fs::canonicalize(r).unwrap())));
    }
}
