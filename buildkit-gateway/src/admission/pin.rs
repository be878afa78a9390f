//! Pinning bind sources for runc (threat model row 10).
//!
//! The agent owns the workspace and can exchange a checked directory with a
//! symlink to /etc at any moment; mount(2), which runc calls with the spec's
//! source path, follows it. Checking the path again cannot close that race.
//! So just before Tasks.Create the gateway opens each client bind source
//! itself, one component at a time below its volume root, with `O_PATH`
//! and `O_NOFOLLOW` (a symlink anywhere refuses the task), bind-mounts the
//! opened directory onto a staging path in its private state directory, and
//! hands runc that path: whatever the agent renames afterwards, the staging
//! mount is the directory that was checked. (The opened descriptor itself,
//! as `/proc/<pid>/fd/<n>`, cannot be the source: runc mounts from its new
//! mount namespace, and the kernel refuses a bind of another namespace's
//! mount with EINVAL.) The staging mounts go once Tasks.Create returns; the
//! container's mount namespace keeps its own copy.

use std::fs::File;
use std::os::fd::AsRawFd;

use nix::mount::{mount, umount2, MntFlags, MsFlags};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use containerd_client::services::v1 as api;

use super::{short_id, Denied};
use crate::sandbox::Sandbox;

const RULE: &str = "tasks.create";

/// A container's spec with its bind sources replaced by staging mounts,
/// which must outlive the Tasks.Create that uses it; dropped, they go.
#[derive(Debug)]
pub struct Pinned {
    /// The spec to forward for the task's creation.
    pub spec: Vec<u8>,
    staged: Vec<PathBuf>,
}

impl Drop for Pinned {
    fn drop(&mut self) {
        for path in &self.staged {
            let _ = umount2(path, MntFlags::MNT_DETACH);
            let _ = std::fs::remove_dir(path).or_else(|_| std::fs::remove_file(path));
        }
    }
}

/// Where the staging mounts of a container's task go (gateway-private).
fn staging_dir(sb: &Sandbox) -> PathBuf {
    sb.state_dir.join("pins")
}

/// Bind-mounts the opened `fd` onto a fresh path named after `container`
/// and `n`: a directory or a file, as the source is.
fn stage(sb: &Sandbox, container: &str, n: usize, fd: &File) -> std::io::Result<PathBuf> {
    let dir = staging_dir(sb);
    std::fs::create_dir_all(&dir)?;
    let target = dir.join(format!("{container}.{n}"));
    let _ = umount2(&target, MntFlags::MNT_DETACH);
    let _ = std::fs::remove_dir(&target).or_else(|_| std::fs::remove_file(&target));
    if fd.metadata()?.is_dir() {
        std::fs::create_dir(&target)?;
    } else {
        std::fs::File::create(&target)?;
    }
    let source = PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()));
    let flags = MsFlags::MS_BIND | MsFlags::MS_REC;
    if let Err(e) = mount(Some(&source), &target, None::<&str>, flags, None::<&str>) {
        let _ = std::fs::remove_dir(&target).or_else(|_| std::fs::remove_file(&target));
        return Err(e.into());
    }
    Ok(target)
}

/// Pins every bind mount of `container` whose source is below a volume
/// root; `None` when it has none (nothing to do). The gateway's own binds
/// (the proxy CA and the like) are outside the volume roots and stay.
pub fn pin_binds(sb: &Sandbox, container: &api::Container) -> Result<Option<Pinned>, Denied> {
    let object = format!("task {}", short_id(&container.id));
    let refuse = |reason: String| Denied::new(RULE, &object, vec![reason]);
    let bytes = container
        .spec
        .as_ref()
        .map(|any| any.value.as_slice())
        .unwrap_or_default();
    let mut spec: serde_json::Value = serde_json::from_slice(bytes)
        .map_err(|_| refuse("the container's spec cannot be read".into()))?;
    let roots: Vec<PathBuf> = sb
        .volume_roots
        .iter()
        .filter_map(|r| std::fs::canonicalize(r).ok())
        .collect();
    let mut pinned = Pinned {
        spec: Vec::new(),
        staged: Vec::new(),
    };
    for m in spec["mounts"].as_array_mut().into_iter().flatten() {
        if !is_bind(m) {
            continue;
        }
        let Some(source) = m["source"].as_str() else {
            continue;
        };
        let Some((root, rest)) = below(&roots, source) else {
            continue;
        };
        let fd = open_below(root, &rest).map_err(|e| {
            refuse(format!(
                "bind mount {source} cannot be opened below its volume root: {e}"
            ))
        })?;
        let n = pinned.staged.len();
        let staged = stage(sb, &container.id, n, &fd)
            .map_err(|e| refuse(format!("bind mount {source} cannot be pinned: {e}")))?;
        m["source"] = staged.to_string_lossy().into_owned().into();
        pinned.staged.push(staged);
    }
    if pinned.staged.is_empty() {
        return Ok(None);
    }
    pinned.spec = serde_json::to_vec(&spec).map_err(|e| refuse(e.to_string()))?;
    Ok(Some(pinned))
}

/// As runc sees it: type bind, or a bind/rbind option whatever the type.
fn is_bind(m: &serde_json::Value) -> bool {
    m["type"] == "bind"
        || m["options"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|o| o == "bind" || o == "rbind")
}

/// The volume root `source` is below, and its components below it.
fn below<'a>(roots: &'a [PathBuf], source: &'a str) -> Option<(&'a Path, Vec<&'a str>)> {
    let parts: Vec<&str> = source.split('/').filter(|c| !c.is_empty()).collect();
    roots.iter().find_map(|root| {
        let root_parts: Vec<&str> = root
            .to_str()?
            .split('/')
            .filter(|c| !c.is_empty())
            .collect();
        parts
            .starts_with(&root_parts)
            .then(|| (root.as_path(), parts[root_parts.len()..].to_vec()))
    })
}

/// Opens `rest` below the (trusted, canonical) `root` one component at a
/// time, each relative to the descriptor of the one before (through its
/// /proc/self/fd link, which is openat(2) without unsafe code), never
/// following a symlink and refusing `.` and `..`.
fn open_below(root: &Path, rest: &[&str]) -> std::io::Result<File> {
    let open = |path: &Path| {
        std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_PATH | libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(path)
    };
    let mut fd = open(root)?;
    for part in rest {
        if *part == "." || *part == ".." {
            return Err(std::io::Error::other(format!("component {part}")));
        }
        let next = open(
            &Path::new("/proc/self/fd")
                .join(fd.as_raw_fd().to_string())
                .join(part),
        )?;
        if next.metadata()?.file_type().is_symlink() {
            return Err(std::io::Error::other(format!("{part} is a symlink")));
        }
        fd = next;
    }
    Ok(fd)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admission::testkit::{any, World};

    fn container(spec: serde_json::Value) -> api::Container {
        api::Container {
            id: "c1".into(),
            spec: Some(any(super::super::SPEC_TYPE_URL, &spec)),
            ..Default::default()
        }
    }

    #[test]
    fn bind_sources_become_staging_mounts_of_the_checked_directory() {
        let w = World::new();
        let ws = w.workspace();
        std::fs::write(format!("{ws}/data/marker"), b"pinned").unwrap();
        let spec = serde_json::json!({"mounts": [
            {"destination": "/m", "type": "bind", "source": format!("{ws}/data"), "options": ["rbind"]},
            {"destination": "/ca", "type": "bind", "source": w.outside(), "options": ["bind", "ro"]},
            {"destination": "/t", "type": "tmpfs", "source": "tmpfs"}
        ]});
        // Mounting needs root (the gateway runs as root).
        if !nix::unistd::geteuid().is_root() {
            let err = pin_binds(&w.sb, &container(spec)).unwrap_err();
            assert!(err.message.contains("cannot be pinned"), "{}", err.message);
            return;
        }
        let pinned = pin_binds(&w.sb, &container(spec)).unwrap().unwrap();
        let out: serde_json::Value = serde_json::from_slice(&pinned.spec).unwrap();
        let source = out["mounts"][0]["source"].as_str().unwrap().to_string();
        assert!(source.starts_with(&staging_dir(&w.sb).to_string_lossy().into_owned()));
        // The staging mount is the directory that was checked, even once
        // the path is swapped for a symlink to /etc.
        std::fs::rename(format!("{ws}/data"), format!("{ws}/moved")).unwrap();
        std::os::unix::fs::symlink("/etc", format!("{ws}/data")).unwrap();
        assert_eq!(
            std::fs::read(format!("{source}/marker")).unwrap(),
            b"pinned"
        );
        drop(pinned);
        assert!(
            !std::path::Path::new(&source).exists(),
            "the staging mount stays"
        );
        // Outside the volume roots (the gateway's own) and non-binds stay.
        assert_eq!(out["mounts"][1]["source"], w.outside());
        assert_eq!(out["mounts"][2]["source"], "tmpfs");
    }

    #[test]
    fn a_symlink_anywhere_refuses_and_no_binds_is_nothing_to_do() {
        let w = World::new();
        let ws = w.workspace();
        // `link` is a symlink to /etc in the World's workspace.
        for source in [format!("{ws}/link"), format!("{ws}/link/ssl")] {
            let spec = serde_json::json!({"mounts": [
                {"destination": "/m", "type": "none", "source": source, "options": ["rbind"]}
            ]});
            let err = pin_binds(&w.sb, &container(spec)).unwrap_err();
            assert!(err.message.contains("cannot be opened"), "{}", err.message);
        }
        let spec = serde_json::json!({"mounts": [{"destination": "/t", "type": "tmpfs", "source": "tmpfs"}]});
        assert!(pin_binds(&w.sb, &container(spec)).unwrap().is_none());
    }
}
