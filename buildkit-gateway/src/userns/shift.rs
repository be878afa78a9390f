//! Shifting the owners of a tree into a sandbox's ID range.
//!
//! The tree is a fresh overlay of an image chain (mounted by
//! [`super::mount`]), so each change copies the entry up into the new
//! snapshot. Every entry is first listed with `lstat` (never following a
//! symlink, never leaving the tree's filesystem), then changed to the owner
//! computed from what it had: the result does not depend on whether the
//! overlay already showed a hardlinked name as changed.
//!
//! `chown` clears setuid/setgid and file capabilities; both are put back.
//! A second name of a hardlinked file is replaced by a link to the first,
//! already shifted, name rather than copied up again (one copy, the link
//! kept).

use std::collections::HashMap;
use std::fs;
use std::io;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::IdMap;

/// The extended attribute holding a file's capabilities.
const CAPS_XATTR: &str = "security.capability";

/// What a shift did, for the gateway's log.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Shifted {
    /// Entries whose owner was changed.
    pub entries: u64,
    /// Second names of hardlinked files, re-linked to the shifted first.
    pub relinked: u64,
    /// Files whose capabilities were put back after the chown.
    pub capabilities: u64,
}

#[derive(Debug)]
struct Entry {
    path: PathBuf,
    uid: u32,
    gid: u32,
    mode: u32,
    kind: Kind,
    /// (dev, ino) of a regular file with more than one name.
    link: Option<(u64, u64)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Dir,
    File,
    Symlink,
    Other,
}

fn kind(md: &fs::Metadata) -> Kind {
    let t = md.file_type();
    if t.is_symlink() {
        Kind::Symlink
    } else if t.is_dir() {
        Kind::Dir
    } else if t.is_file() {
        Kind::File
    } else {
        Kind::Other
    }
}

fn entry(path: PathBuf, md: &fs::Metadata) -> Entry {
    let kind = kind(md);
    Entry {
        link: (kind == Kind::File && md.nlink() > 1).then(|| (md.dev(), md.ino())),
        path,
        uid: md.uid(),
        gid: md.gid(),
        mode: md.mode(),
        kind,
    }
}

/// Every entry below and including `root`, parents before children,
/// without following symlinks or descending into another filesystem.
fn list(root: &Path) -> io::Result<Vec<Entry>> {
    let top = fs::symlink_metadata(root)?;
    if !top.is_dir() {
        return Err(io::Error::other(format!(
            "{} is not a directory",
            root.display()
        )));
    }
    let dev = top.dev();
    let mut out = vec![entry(root.to_path_buf(), &top)];
    let mut dirs = vec![root.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        let mut names: Vec<PathBuf> = fs::read_dir(&dir)?
            .map(|e| e.map(|e| e.path()))
            .collect::<io::Result<_>>()?;
        names.sort();
        for path in names {
            let md = fs::symlink_metadata(&path)?;
            let e = entry(path, &md);
            // A directory on another filesystem is a mount point: its
            // contents are not the tree's.
            if e.kind == Kind::Dir && md.dev() == dev {
                dirs.push(e.path.clone());
            }
            out.push(e);
        }
    }
    Ok(out)
}

/// The raw value of `name` on `path` (not following a symlink), if any; a
/// filesystem without xattrs has none.
fn get_xattr(path: &Path, name: &str) -> io::Result<Option<Vec<u8>>> {
    match xattr::get(path, name) {
        Err(e) if e.raw_os_error() == Some(libc::ENOTSUP) => Ok(None),
        other => other,
    }
}

fn set_xattr(path: &Path, name: &str, value: &[u8]) -> io::Result<()> {
    xattr::set(path, name, value)
}

/// Replaces `path` by a hard link to `first` (atomically, through a
/// temporary name beside it).
fn relink(first: &Path, path: &Path, n: u64) -> io::Result<()> {
    let tmp = path.with_file_name(format!(".berth-userns-link-{n}"));
    fs::hard_link(first, &tmp)?;
    fs::rename(&tmp, path)
}

fn context(e: io::Error, what: &str, path: &Path) -> io::Error {
    io::Error::new(e.kind(), format!("{what} {}: {e}", path.display()))
}

/// Shifts every owner below and including `root` into `map`'s range,
/// keeping modes (setuid/setgid included) and file capabilities.
pub fn shift_tree(root: &Path, map: &IdMap) -> io::Result<Shifted> {
    let entries = list(root).map_err(|e| context(e, "listing", root))?;
    let mut done = Shifted::default();
    let mut first_names: HashMap<(u64, u64), PathBuf> = HashMap::new();
    for e in &entries {
        if let Some(key) = e.link {
            if let Some(first) = first_names.get(&key) {
                relink(first, &e.path, done.relinked)
                    .map_err(|err| context(err, "relinking", &e.path))?;
                done.relinked += 1;
                continue;
            }
            first_names.insert(key, e.path.clone());
        }
        let caps = match e.kind {
            Kind::File => {
                get_xattr(&e.path, CAPS_XATTR).map_err(|err| context(err, "reading", &e.path))?
            }
            _ => None,
        };
        shift_entry(e, map)?;
        done.entries += 1;
        // chown dropped the file's capabilities; put them back as they were.
        if let Some(value) = caps {
            set_xattr(&e.path, CAPS_XATTR, &value)
                .map_err(|err| context(err, "restoring capabilities of", &e.path))?;
            done.capabilities += 1;
        }
    }
    Ok(done)
}

fn shift_entry(e: &Entry, map: &IdMap) -> io::Result<()> {
    std::os::unix::fs::lchown(
        &e.path,
        Some(map.host_uid(e.uid)),
        Some(map.host_gid(e.gid)),
    )
    .map_err(|err| context(err, "chown", &e.path))?;
    // chown cleared setuid and setgid of a non-directory; put the mode back.
    if e.kind != Kind::Symlink && e.kind != Kind::Dir && e.mode & 0o6000 != 0 {
        fs::set_permissions(&e.path, fs::Permissions::from_mode(e.mode & 0o7777))
            .map_err(|err| context(err, "chmod", &e.path))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{symlink, PermissionsExt};

    use containerd_client::types::Mount;

    /// A v2 `security.capability` value granting CAP_NET_BIND_SERVICE
    /// (permitted, effective).
    const NET_BIND_CAPS: [u8; 20] = [
        0x01, 0x00, 0x00, 0x02, // magic: revision 2, effective
        0x00, 0x04, 0x00, 0x00, // permitted[0]: bit 10
        0x00, 0x00, 0x00, 0x00, // inheritable[0]
        0x00, 0x00, 0x00, 0x00, // permitted[1]
        0x00, 0x00, 0x00, 0x00, // inheritable[1]
    ];

    fn map() -> IdMap {
        IdMap::new(100000, 200000, 65536).unwrap()
    }

    fn scratch(tag: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("berth-userns-{tag}-{:016x}", rand::random::<u64>()));
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// Shifting changes owners: only root can, and the gateway runs as root.
    fn need_root() -> bool {
        if nix::unistd::geteuid().is_root() {
            return true;
        }
        eprintln!("skipped: chown needs root (the gateway runs as root)");
        false
    }

    /// An image-like tree: root-owned dirs, a user's file, a setuid binary,
    /// a file with capabilities, two hardlinked names, a symlink to a file
    /// outside the tree, a FIFO and an owner beyond the range.
    fn fill(root: &Path, outside: &Path) {
        fs::create_dir_all(root.join("bin")).unwrap();
        fs::create_dir_all(root.join("home/user")).unwrap();
        fs::write(root.join("home/user/notes"), b"n").unwrap();
        std::os::unix::fs::lchown(root.join("home/user"), Some(1000), Some(1000)).unwrap();
        std::os::unix::fs::lchown(root.join("home/user/notes"), Some(1000), Some(100)).unwrap();
        fs::write(root.join("bin/su"), b"su").unwrap();
        fs::set_permissions(root.join("bin/su"), fs::Permissions::from_mode(0o4755)).unwrap();
        fs::write(root.join("bin/ping"), b"ping").unwrap();
        fs::write(root.join("bin/a"), b"linked").unwrap();
        fs::hard_link(root.join("bin/a"), root.join("bin/b")).unwrap();
        symlink(outside, root.join("bin/out")).unwrap();
        nix::unistd::mkfifo(
            &root.join("fifo"),
            nix::sys::stat::Mode::from_bits(0o644).unwrap(),
        )
        .unwrap();
        fs::write(root.join("far"), b"far").unwrap();
        std::os::unix::fs::lchown(root.join("far"), Some(70000), Some(70000)).unwrap();
    }

    fn owner(p: &Path) -> (u32, u32) {
        let md = fs::symlink_metadata(p).unwrap();
        (md.uid(), md.gid())
    }

    fn check_shifted(root: &Path, outside: &Path) {
        assert_eq!(owner(root), (100000, 200000));
        assert_eq!(owner(&root.join("bin")), (100000, 200000));
        assert_eq!(owner(&root.join("home/user")), (101000, 201000));
        assert_eq!(owner(&root.join("home/user/notes")), (101000, 200100));
        assert_eq!(owner(&root.join("bin/su")), (100000, 200000));
        let mode = fs::symlink_metadata(root.join("bin/su")).unwrap().mode();
        assert_eq!(mode & 0o7777, 0o4755, "setuid kept");
        assert_eq!(owner(&root.join("bin/out")), (100000, 200000));
        assert_eq!(owner(outside), (0, 0), "a symlink's target is not followed");
        assert_eq!(owner(&root.join("fifo")), (100000, 200000));
        assert_eq!(owner(&root.join("far")), (100000 + 65534, 200000 + 65534));
        assert_eq!(
            xattr::get(root.join("bin/ping"), CAPS_XATTR)
                .unwrap()
                .as_deref(),
            Some(&NET_BIND_CAPS[..]),
            "capabilities kept"
        );
        let (a, b) = (
            fs::symlink_metadata(root.join("bin/a")).unwrap(),
            fs::symlink_metadata(root.join("bin/b")).unwrap(),
        );
        assert_eq!((a.dev(), a.ino()), (b.dev(), b.ino()), "hardlink kept");
        assert_eq!(owner(&root.join("bin/b")), (100000, 200000));
    }

    #[test]
    fn a_tree_is_shifted_in_place() {
        if !need_root() {
            return;
        }
        let dir = scratch("plain");
        let (root, outside) = (dir.join("root"), dir.join("outside"));
        fs::write(&outside, b"host").unwrap();
        fill(&root, &outside);
        xattr::set(root.join("bin/ping"), CAPS_XATTR, &NET_BIND_CAPS).unwrap();
        let done = shift_tree(&root, &map()).unwrap();
        check_shifted(&root, &outside);
        assert_eq!(done.capabilities, 1);
        fs::remove_dir_all(&dir).unwrap();
    }

    /// What the gateway really does: the tree is an overlay on an image
    /// layer; the shifted copies land in the upper dir, the layer stays
    /// as it was, and a hardlink is copied up once.
    #[test]
    fn an_overlay_is_shifted_into_its_upper_dir() {
        if !need_root() {
            return;
        }
        let dir = scratch("overlay");
        let (lower, upper, work, target, outside) = (
            dir.join("lower"),
            dir.join("upper"),
            dir.join("work"),
            dir.join("mnt"),
            dir.join("outside"),
        );
        for d in [&upper, &work, &target] {
            fs::create_dir_all(d).unwrap();
        }
        fs::write(&outside, b"host").unwrap();
        fill(&lower, &outside);
        xattr::set(lower.join("bin/ping"), CAPS_XATTR, &NET_BIND_CAPS).unwrap();
        let mount = Mount {
            r#type: "overlay".into(),
            source: "overlay".into(),
            target: String::new(),
            options: vec![
                "index=off".into(),
                format!("workdir={}", work.display()),
                format!("upperdir={}", upper.display()),
                format!("lowerdir={}", lower.display()),
            ],
        };
        let done = super::super::mount::with_mount(&[mount], &target, |root| {
            let done = shift_tree(root, &map())?;
            check_shifted(root, &outside);
            Ok(done)
        })
        .unwrap();
        assert_eq!(done.relinked, 1);
        assert_eq!(done.capabilities, 1);
        // Unmounted again, and nowhere else to be seen.
        assert!(fs::read_dir(&target).unwrap().next().is_none());
        // The layer is untouched; the upper dir holds the shifted copies.
        assert_eq!(owner(&lower.join("home/user")), (1000, 1000));
        assert_eq!(owner(&upper.join("home/user/notes")), (101000, 200100));
        assert_eq!(owner(&upper), (100000, 200000));
        let (a, b) = (
            fs::symlink_metadata(upper.join("bin/a")).unwrap(),
            fs::symlink_metadata(upper.join("bin/b")).unwrap(),
        );
        assert_eq!(a.ino(), b.ino(), "one copy-up for both names");
        fs::remove_dir_all(&dir).unwrap();
    }
}
