//! The two mounts the gateway makes itself for user namespaces.
//!
//! * A snapshot's mounts, to shift its owners: made on a thread of its own
//!   that first leaves the process's mount namespace (`unshare(CLONE_NEWNS
//!   | CLONE_FS)`, then everything private), so the mount is seen by no one
//!   else, propagates nowhere, and is gone with the thread even if the
//!   gateway dies half-way. The thread's own working directory also allows
//!   containerd's trick for a lowerdir list longer than a page.
//! * The sandbox's sysfs: in a user namespace runc cannot mount sysfs for a
//!   network namespace the user namespace does not own (the sandbox's,
//!   which containers join), so the gateway mounts one from inside that
//!   network namespace, read-only, and containers bind it.

use std::ffi::OsStr;
use std::fs::File;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path, PathBuf};

use containerd_client::types::Mount;
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sched::{setns, unshare, CloneFlags};

/// Longest mount data the kernel takes (one page, with its NUL).
const MAX_MOUNT_DATA: usize = 4095;

fn os(e: nix::Error, what: &str) -> io::Error {
    io::Error::new(io::Error::from(e).kind(), format!("{what}: {e}"))
}

/// fstab-style options split into flags and filesystem data.
pub fn parse_options(options: &[String]) -> (MsFlags, Vec<String>) {
    let mut flags = MsFlags::empty();
    let mut data = Vec::new();
    for o in options {
        match o.as_str() {
            "ro" => flags |= MsFlags::MS_RDONLY,
            "rw" | "defaults" => {}
            "nosuid" => flags |= MsFlags::MS_NOSUID,
            "nodev" => flags |= MsFlags::MS_NODEV,
            "noexec" => flags |= MsFlags::MS_NOEXEC,
            "bind" => flags |= MsFlags::MS_BIND,
            "rbind" => flags |= MsFlags::MS_BIND | MsFlags::MS_REC,
            _ => data.push(o.clone()),
        }
    }
    (flags, data)
}

/// The longest common directory of `paths` (absolute).
fn common_dir(paths: &[&str]) -> Option<PathBuf> {
    let first: Vec<Component> = Path::new(paths.first()?).parent()?.components().collect();
    let mut len = first.len();
    for p in &paths[1..] {
        let comps: Vec<Component> = Path::new(p).components().collect();
        len = len.min(
            first
                .iter()
                .zip(comps.iter())
                .take_while(|(a, b)| a == b)
                .count(),
        );
    }
    (len > 1).then(|| first[..len].iter().collect())
}

/// For overlay data longer than a page: the directory to work from and
/// the data with lowerdirs relative to it (what containerd does too).
fn compact(data: &[String]) -> Option<(PathBuf, Vec<String>)> {
    let idx = data.iter().position(|o| o.starts_with("lowerdir="))?;
    let lowers: Vec<&str> = data[idx]["lowerdir=".len()..].split(':').collect();
    let dir = common_dir(&lowers)?;
    let rel: Vec<String> = lowers
        .iter()
        .map(|l| {
            Path::new(l)
                .strip_prefix(&dir)
                .map(|r| r.to_string_lossy().into_owned())
        })
        .collect::<Result<_, _>>()
        .ok()?;
    let mut out = data.to_vec();
    out[idx] = format!("lowerdir={}", rel.join(":"));
    Some((dir, out))
}

fn mount_one(m: &Mount, target: &Path) -> io::Result<()> {
    let (flags, data) = parse_options(&m.options);
    let mut joined = data.join(",");
    if joined.len() > MAX_MOUNT_DATA {
        let (dir, short) = compact(&data).ok_or_else(|| {
            io::Error::other("overlay options longer than a page and cannot be shortened")
        })?;
        std::env::set_current_dir(&dir)?;
        joined = short.join(",");
    }
    let data = (!joined.is_empty()).then_some(joined.as_str());
    if flags.contains(MsFlags::MS_BIND) {
        mount(
            Some(m.source.as_str()),
            target,
            None::<&str>,
            flags & (MsFlags::MS_BIND | MsFlags::MS_REC),
            None::<&str>,
        )
        .map_err(|e| os(e, "bind mount"))?;
        let rest = flags & !(MsFlags::MS_BIND | MsFlags::MS_REC);
        if !rest.is_empty() {
            mount(
                None::<&str>,
                target,
                None::<&str>,
                rest | MsFlags::MS_BIND | MsFlags::MS_REMOUNT,
                None::<&str>,
            )
            .map_err(|e| os(e, "remount"))?;
        }
        return Ok(());
    }
    mount(
        Some(m.source.as_str()),
        target,
        Some(m.r#type.as_str()),
        flags,
        data,
    )
    .map_err(|e| os(e, &format!("mount {}", m.r#type)))
}

/// Mounts `mounts` (one, as containerd gives for an active snapshot) on
/// `target` in a private mount namespace of a new thread, runs `f` on it,
/// and unmounts. `target` must exist.
pub fn with_mount<T: Send>(
    mounts: &[Mount],
    target: &Path,
    f: impl FnOnce(&Path) -> io::Result<T> + Send,
) -> io::Result<T> {
    let [m] = mounts else {
        return Err(io::Error::other(format!(
            "expected one mount for a snapshot, got {}",
            mounts.len()
        )));
    };
    std::thread::scope(|s| {
        s.spawn(|| {
            unshare(CloneFlags::CLONE_NEWNS | CloneFlags::CLONE_FS)
                .map_err(|e| os(e, "unshare"))?;
            mount(
                None::<&str>,
                "/",
                None::<&str>,
                MsFlags::MS_REC | MsFlags::MS_PRIVATE,
                None::<&str>,
            )
            .map_err(|e| os(e, "making mounts private"))?;
            mount_one(m, target)?;
            let res = f(target);
            // The namespace goes with the thread anyway; unmounting first
            // makes sure the overlay is done before the snapshot is
            // committed.
            umount2(target, MntFlags::empty()).map_err(|e| os(e, "unmount"))?;
            res
        })
        .join()
        .unwrap_or_else(|_| Err(io::Error::other("the mount thread panicked")))
    })
}

/// Whether `dir` is a mount point (its device differs from its parent's).
pub fn is_mount_point(dir: &Path) -> io::Result<bool> {
    let here = std::fs::symlink_metadata(dir)?;
    let parent = std::fs::symlink_metadata(dir.join(".."))?;
    Ok(here.dev() != parent.dev() || here.ino() == parent.ino())
}

/// The (dev, ino) of a network namespace file: its identity.
pub fn netns_id(netns: &Path) -> io::Result<(u64, u64)> {
    let md = std::fs::metadata(netns)?;
    Ok((md.dev(), md.ino()))
}

/// Mounts a read-only sysfs on `target` (in the gateway's mount namespace)
/// as seen from network namespace `netns`, replacing whatever is mounted
/// there.
pub fn mount_sysfs(netns: &Path, target: &Path) -> io::Result<()> {
    while is_mount_point(target)? {
        umount2(target, MntFlags::MNT_DETACH).map_err(|e| os(e, "unmounting old sysfs"))?;
    }
    let ns = File::open(netns)?;
    std::thread::scope(|s| {
        s.spawn(|| {
            // Only this thread enters the network namespace; it ends here.
            setns(&ns, CloneFlags::CLONE_NEWNET).map_err(|e| os(e, "entering the netns"))?;
            mount(
                Some(OsStr::new("sysfs")),
                target,
                Some("sysfs"),
                MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
                None::<&str>,
            )
            .map_err(|e| os(e, "mounting sysfs"))
        })
        .join()
        .unwrap_or_else(|_| Err(io::Error::other("the sysfs thread panicked")))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn options_split_into_flags_and_data() {
        let (f, d) = parse_options(&strings(&[
            "index=off",
            "workdir=/w",
            "upperdir=/u",
            "lowerdir=/a:/b",
            "ro",
            "nosuid",
        ]));
        assert_eq!(f, MsFlags::MS_RDONLY | MsFlags::MS_NOSUID);
        assert_eq!(
            d,
            strings(&["index=off", "workdir=/w", "upperdir=/u", "lowerdir=/a:/b"])
        );
        let (f, d) = parse_options(&strings(&["rbind", "rw"]));
        assert_eq!(f, MsFlags::MS_BIND | MsFlags::MS_REC);
        assert!(d.is_empty());
    }

    #[test]
    fn long_lowerdirs_become_relative() {
        let lowers: Vec<String> = (1..=3)
            .map(|i| format!("/var/lib/c/snapshots/{i}/fs"))
            .collect();
        let data = strings(&["index=off", "upperdir=/var/lib/c/snapshots/9/fs"])
            .into_iter()
            .chain([format!("lowerdir={}", lowers.join(":"))])
            .collect::<Vec<_>>();
        let (dir, out) = compact(&data).unwrap();
        assert_eq!(dir, PathBuf::from("/var/lib/c/snapshots"));
        assert_eq!(out[2], "lowerdir=1/fs:2/fs:3/fs");
        assert_eq!(out[1], data[1]);
    }
}
