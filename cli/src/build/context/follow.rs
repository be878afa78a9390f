//! `followpaths`: the paths BuildKit wants resolved through symlinks (the
//! Dockerfile and `.dockerignore` may be links). Each symlink met on the way
//! is kept, and its target is resolved in turn, always inside the context
//! root: an absolute target means the root, `..` stops at the root. The
//! result only widens the include patterns; the walk itself never follows a
//! link, so nothing outside the root is ever read.

use std::collections::BTreeSet;
use std::io::ErrorKind;
use std::path::Path;

use super::patterns::{clean_path, match_component};
use super::ContextError;

/// Resolves `paths` below `root` as fsutil's `FollowLinks` does: the sorted,
/// de-duplicated symlinks and targets, or `None` when they cover the whole
/// root (no filter).
pub fn follow_links(root: &Path, paths: &[String]) -> Result<Option<Vec<String>>, ContextError> {
    let mut r = Resolver {
        root,
        resolved: BTreeSet::new(),
    };
    for p in paths {
        // clamp at the root before touching the file system
        let p = clean_path(&format!("/{p}"));
        r.append(p.trim_start_matches('/'))?;
    }
    let sorted: Vec<String> = r.resolved.into_iter().collect();
    Ok(dedupe_paths(&sorted))
}

/// Drops paths below an earlier one (input sorted); `None` if `.` is there.
pub fn dedupe_paths(paths: &[String]) -> Option<Vec<String>> {
    let mut out: Vec<String> = Vec::with_capacity(paths.len());
    let mut last = String::new();
    for p in paths {
        if p == "." {
            return None;
        }
        if p.starts_with(&format!("{last}/")) {
            continue;
        }
        out.push(p.clone());
        last = p.clone();
    }
    Some(out)
}

/// Go's `filepath.Join` of two slash paths: empty parts dropped, cleaned.
fn join(a: &str, b: &str) -> String {
    match (a.is_empty(), b.is_empty()) {
        (true, true) => String::new(),
        (true, false) => clean_path(b),
        (false, true) => clean_path(a),
        (false, false) => clean_path(&format!("{a}/{b}")),
    }
}

fn dir_of(p: &str) -> &str {
    match p.rsplit_once('/') {
        Some(("", _)) => "/",
        Some((d, _)) => d,
        None => ".",
    }
}

struct Resolver<'a> {
    root: &'a Path,
    resolved: BTreeSet<String>,
}

impl Resolver<'_> {
    fn append(&mut self, path: &str) -> Result<(), ContextError> {
        let mut rest = path.to_string();
        let mut current = ".".to_string();
        loop {
            let (first, tail) = match rest.split_once('/') {
                Some((a, b)) => (a.to_string(), b.to_string()),
                None => (rest.clone(), String::new()),
            };
            current = join(&current, &first);
            let targets = self.read_symlink(&current, true)?;
            rest = tail;
            if (rest.is_empty() || targets.is_some()) && self.resolved.contains(&current) {
                return Ok(());
            }
            if let Some(targets) = targets {
                self.resolved.insert(current);
                for target in targets {
                    self.append(&join(&target, &rest))?;
                }
                return Ok(());
            }
            if rest.is_empty() {
                self.resolved.insert(current);
                return Ok(());
            }
        }
    }

    /// The targets of the symlink at `p` (relative to the root), as absolute
    /// slash paths meaning "from the root"; a wildcard in the last component
    /// reads every matching link. `None` when `p` is no link or is missing.
    fn read_symlink(&self, p: &str, wildcard: bool) -> Result<Option<Vec<String>>, ContextError> {
        let base = p.rsplit('/').next().unwrap_or(p);
        if wildcard && contains_wildcards(base) {
            let dir = dir_of(p);
            let entries = match std::fs::read_dir(self.root.join(dir)) {
                Ok(e) => e,
                Err(e) if not_found(&e) => return Ok(None),
                Err(e) => return Err(ContextError::io("reading directory", dir, e)),
            };
            let mut names: Vec<String> = entries
                .filter_map(|e| e.ok())
                .filter_map(|e| e.file_name().into_string().ok())
                .filter(|name| match_component(base, name))
                .collect();
            names.sort();
            let mut out = Vec::new();
            for name in names {
                if let Some(t) = self.read_symlink(&join(dir, &name), false)? {
                    out.extend(t);
                }
            }
            return Ok((!out.is_empty()).then_some(out));
        }
        let real = self.root.join(p);
        let meta = match std::fs::symlink_metadata(&real) {
            Ok(m) => m,
            Err(e) if not_found(&e) => return Ok(None),
            Err(e) => return Err(ContextError::io("reading", p, e)),
        };
        if !meta.file_type().is_symlink() {
            return Ok(None);
        }
        let link = std::fs::read_link(&real).map_err(|e| ContextError::io("reading link", p, e))?;
        let link = link
            .into_os_string()
            .into_string()
            .map_err(|l| ContextError::NotUtf8(l.to_string_lossy().into_owned()))?;
        let link = clean_path(&link);
        if link.starts_with('/') {
            return Ok(Some(vec![link]));
        }
        Ok(Some(vec![join("/", &join(dir_of(p), &link))]))
    }
}

fn not_found(e: &std::io::Error) -> bool {
    e.kind() == ErrorKind::NotFound || e.raw_os_error() == Some(libc::ENOTDIR)
}

fn contains_wildcards(name: &str) -> bool {
    let mut chars = name.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                chars.next();
            }
            '*' | '?' | '[' => return true,
            _ => {}
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn follow(root: &Path, paths: &[&str]) -> Option<Vec<String>> {
        let paths: Vec<String> = paths.iter().map(|s| s.to_string()).collect();
        follow_links(root, &paths).expect("follow_links")
    }

    fn strs(v: &[&str]) -> Option<Vec<String>> {
        Some(v.iter().map(|s| s.to_string()).collect())
    }

    #[test]
    fn links_are_resolved_inside_the_root() {
        let tmp = tempfile::tempdir().unwrap();
        let r = tmp.path();
        std::fs::create_dir(r.join("dir")).unwrap();
        std::fs::write(r.join("dir/foo"), "x").unwrap();
        symlink("foo", r.join("dir/l1")).unwrap();
        symlink("dir/l1", r.join("l2")).unwrap();
        std::fs::write(r.join("bar"), "").unwrap();
        assert_eq!(
            follow(r, &["l2", "bar"]),
            strs(&["bar", "dir/foo", "dir/l1", "l2"])
        );
    }

    #[test]
    fn loops_end_and_escapes_stop_at_the_root() {
        let tmp = tempfile::tempdir().unwrap();
        let r = tmp.path();
        symlink("l1", r.join("l1")).unwrap();
        symlink("l2", r.join("l3")).unwrap();
        symlink("l3", r.join("l2")).unwrap();
        assert_eq!(follow(r, &["l1", "l3"]), strs(&["l1", "l2", "l3"]));

        let tmp = tempfile::tempdir().unwrap();
        let r = tmp.path();
        std::fs::create_dir(r.join("dir")).unwrap();
        std::fs::create_dir(r.join("foo")).unwrap();
        symlink("/foo/bar/baz", r.join("dir/l1")).unwrap();
        symlink("../../../", r.join("foo/bar")).unwrap();
        assert_eq!(follow(r, &["dir/l1"]), strs(&["baz", "dir/l1", "foo/bar"]));
        // a `..` in the request itself is clamped too
        assert_eq!(follow(r, &["../../etc/passwd"]), strs(&["etc/passwd"]));
    }

    #[test]
    fn missing_paths_root_and_wildcards() {
        let tmp = tempfile::tempdir().unwrap();
        let r = tmp.path();
        assert_eq!(
            follow(r, &["foo/bar/baz", "bar/baz"]),
            strs(&["bar/baz", "foo/bar/baz"])
        );
        assert_eq!(follow(r, &["."]), None);
        assert_eq!(follow(r, &["foo/bar/baz", "foo/bar"]), strs(&["foo/bar"]));

        std::fs::create_dir(r.join("dir")).unwrap();
        std::fs::create_dir(r.join("foo")).unwrap();
        symlink("/foo/bar1", r.join("dir/l1")).unwrap();
        symlink("/foo/bar2", r.join("dir/l2")).unwrap();
        symlink("/foo/bar3", r.join("dir/anotherlink")).unwrap();
        symlink("../baz", r.join("foo/bar2")).unwrap();
        std::fs::write(r.join("foo/bar1"), "").unwrap();
        assert_eq!(
            follow(r, &["dir/l*"]),
            strs(&["baz", "dir/l*", "foo/bar1", "foo/bar2"])
        );
        assert_eq!(follow(r, &["dir", "dir/*link"]), strs(&["dir", "foo/bar3"]));
    }
}
