//! Mounts: the facts the policy sees about a client's mounts, and the mount
//! list the gateway forwards.
//!
//! A bind source is resolved below its volume root one component at a time
//! with `lstat`, never following a symlink: runc follows symlinks in a bind
//! source, so a link inside the workspace could otherwise expose any host
//! path. The check is made on the path's state at decision time; the
//! workspace is writable by the agent, so a caller should check again just
//! before the task is created ([`recheck_binds`]).

use std::path::{Path, PathBuf};

use oci_spec::runtime::{Mount, Spec};
use serde_json::json;

use crate::policy::input::BindFacts;

/// Options that make runc bind-mount whatever the type says.
const BIND_OPTIONS: [&str; 2] = ["bind", "rbind"];

/// Destinations of the gateway's system mounts: a client's tmpfs there is
/// replaced by the gateway's own.
pub const SYSTEM_DESTINATIONS: [&str; 7] = [
    "/proc",
    "/dev",
    "/dev/pts",
    "/dev/shm",
    "/dev/mqueue",
    "/sys",
    "/sys/fs/cgroup",
];

/// Whether runc would bind-mount `m`.
pub fn is_bind(m: &Mount) -> bool {
    m.typ().as_deref() == Some("bind")
        || m.options()
            .iter()
            .flatten()
            .any(|o| BIND_OPTIONS.contains(&o.as_str()))
}

fn components(path: &str) -> Vec<&str> {
    path.split('/').filter(|c| !c.is_empty()).collect()
}

/// Facts about a bind source, resolved below the volume roots without
/// following symlinks.
pub fn bind_facts(volume_roots: &[PathBuf], source: &str) -> BindFacts {
    let mut facts = BindFacts {
        source_absolute: source.starts_with('/'),
        source_normalized: !source.split('/').any(|c| c == "." || c == ".."),
        under_volume_root: false,
        exists: false,
        through_symlink: false,
        resolved: String::new(),
    };
    if !facts.source_absolute || !facts.source_normalized {
        return facts;
    }
    let parts = components(source);
    for root in volume_roots {
        let Some(root_str) = root.to_str() else {
            continue;
        };
        let root_parts = components(root_str);
        if root_parts.iter().any(|c| *c == "." || *c == "..") || !parts.starts_with(&root_parts) {
            continue;
        }
        facts.under_volume_root = true;
        match walk(root, &parts[root_parts.len()..]) {
            Walk::Found(path) => {
                facts.exists = true;
                facts.resolved = path.to_string_lossy().into_owned();
            }
            Walk::Symlink => facts.through_symlink = true,
            Walk::Missing => {}
        }
        break;
    }
    facts
}

enum Walk {
    Found(PathBuf),
    Symlink,
    Missing,
}

/// Walks `rest` below `root` with lstat. The root itself comes from the
/// gateway's configuration and is trusted, so it is canonicalised.
fn walk(root: &Path, rest: &[&str]) -> Walk {
    let Ok(mut path) = std::fs::canonicalize(root) else {
        return Walk::Missing;
    };
    for (i, part) in rest.iter().enumerate() {
        path.push(part);
        match std::fs::symlink_metadata(&path) {
            Ok(md) if md.file_type().is_symlink() => return Walk::Symlink,
            Ok(md) if !md.is_dir() && i + 1 < rest.len() => return Walk::Missing,
            Ok(_) => {}
            Err(_) => return Walk::Missing,
        }
    }
    Walk::Found(path)
}

fn mount(destination: &str, typ: &str, source: &str, options: &[&str]) -> Mount {
    serde_json::from_value(json!({
        "destination": destination,
        "type": typ,
        "source": source,
        "options": options,
    }))
    .expect("a mount built from strings is valid")
}

/// The gateway's system mounts, replacing the client's: /sys and the cgroup
/// tree read-only, /dev a fresh tmpfs (runc adds the default device nodes).
pub fn system_mounts() -> Vec<Mount> {
    vec![
        mount("/proc", "proc", "proc", &["nosuid", "noexec", "nodev"]),
        mount(
            "/dev",
            "tmpfs",
            "tmpfs",
            &["nosuid", "strictatime", "mode=755", "size=65536k"],
        ),
        mount(
            "/dev/pts",
            "devpts",
            "devpts",
            &[
                "nosuid",
                "noexec",
                "newinstance",
                "ptmxmode=0666",
                "mode=0620",
                "gid=5",
            ],
        ),
        mount(
            "/dev/shm",
            "tmpfs",
            "shm",
            &["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"],
        ),
        mount(
            "/dev/mqueue",
            "mqueue",
            "mqueue",
            &["nosuid", "noexec", "nodev"],
        ),
        mount(
            "/sys",
            "sysfs",
            "sysfs",
            &["nosuid", "noexec", "nodev", "ro"],
        ),
        mount(
            "/sys/fs/cgroup",
            "cgroup",
            "cgroup",
            &["nosuid", "noexec", "nodev", "relatime", "ro"],
        ),
    ]
}

/// Why a mount the policy allowed cannot be forwarded (the bind source
/// changed between the decision and hardening).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bind mount {0} cannot be resolved below a volume root")]
pub struct Unresolved(pub String);

/// The mount list to forward: the gateway's system mounts, then the client's
/// tmpfs mounts (not at a system destination) with nosuid and nodev, then
/// its bind mounts with their resolved source, `nosuid`, `nodev` and private
/// propagation. Other client mounts (proc, sysfs… at their standard places)
/// are dropped: the gateway's own replace them.
pub fn harden(volume_roots: &[PathBuf], client: &[Mount]) -> Result<Vec<Mount>, Unresolved> {
    let mut out = system_mounts();
    for m in client {
        let destination = m.destination().to_string_lossy();
        let options: Vec<&str> = m.options().iter().flatten().map(String::as_str).collect();
        if is_bind(m) {
            let source = m
                .source()
                .as_ref()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            let facts = bind_facts(volume_roots, &source);
            if facts.resolved.is_empty() || facts.through_symlink {
                return Err(Unresolved(source));
            }
            let recursive = if options.contains(&"bind") && !options.contains(&"rbind") {
                "bind"
            } else {
                "rbind"
            };
            let access = if options.contains(&"ro") { "ro" } else { "rw" };
            let mut opts = vec![recursive, access, "nosuid", "nodev"];
            if options.contains(&"noexec") {
                opts.push("noexec");
            }
            opts.push("rprivate");
            out.push(mount(&destination, "bind", &facts.resolved, &opts));
        } else if m.typ().as_deref() == Some("tmpfs")
            && !SYSTEM_DESTINATIONS.contains(&destination.as_ref())
        {
            let mut opts: Vec<&str> = options
                .iter()
                .copied()
                .filter(|o| !matches!(*o, "suid" | "dev"))
                .collect();
            for required in ["nosuid", "nodev"] {
                if !opts.contains(&required) {
                    opts.push(required);
                }
            }
            out.push(mount(&destination, "tmpfs", "tmpfs", &opts));
        }
    }
    Ok(out)
}

/// The read-only bind of the proxy's CA bundle (the gateway's own mount, from
/// its config: not below a volume root, and never a client's).
pub fn proxy_ca(host: &Path) -> Mount {
    mount(
        crate::sandbox::PROXY_CA_PATH,
        "bind",
        &host.to_string_lossy(),
        &["rbind", "ro", "nosuid", "nodev", "noexec", "rprivate"],
    )
}

/// Checks again, just before a task is created, that every bind mount of a
/// container spec (as the gateway forwarded it) still resolves to the same
/// host path without a symlink. Returns the offending source on failure.
pub fn recheck_binds(volume_roots: &[PathBuf], spec: &Spec) -> Result<(), Unresolved> {
    // Forwarded sources are below the canonical roots.
    let roots: Vec<PathBuf> = volume_roots
        .iter()
        .filter_map(|r| std::fs::canonicalize(r).ok())
        .collect();
    for m in spec.mounts().iter().flatten().filter(|m| is_bind(m)) {
        let source = m
            .source()
            .as_ref()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let facts = bind_facts(&roots, &source);
        if facts.through_symlink || facts.resolved != source {
            return Err(Unresolved(source));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::testutil::tempdir;

    #[test]
    fn bind_sources_are_resolved_without_following_symlinks() {
        let tmp = tempdir();
        let root = tmp.path().join("ws");
        std::fs::create_dir_all(root.join("data/sub")).unwrap();
        std::fs::write(root.join("data/file"), b"x").unwrap();
        std::fs::create_dir_all(tmp.path().join("outside")).unwrap();
        std::os::unix::fs::symlink("/etc", root.join("link")).unwrap();
        std::os::unix::fs::symlink(root.join("data"), root.join("inner-link")).unwrap();
        let roots = vec![root.clone()];
        let r = root.to_str().unwrap();
        let canonical_root = std::fs::canonicalize(&root).unwrap();

        let f = bind_facts(&roots, &format!("{r}/data/sub"));
        assert!(
            f.under_volume_root && f.exists && !f.through_symlink,
            "{f:?}"
        );
        assert_eq!(Path::new(&f.resolved), canonical_root.join("data/sub"));

        let f = bind_facts(&roots, r);
        assert!(
            f.exists && f.resolved == canonical_root.to_str().unwrap(),
            "{f:?}"
        );

        let f = bind_facts(&roots, &format!("{r}/data/file"));
        assert!(f.exists, "{f:?}");

        for link in ["link", "link/passwd", "inner-link", "inner-link/sub"] {
            let f = bind_facts(&roots, &format!("{r}/{link}"));
            assert!(
                f.under_volume_root && f.through_symlink && !f.exists,
                "{link}: {f:?}"
            );
            assert_eq!(f.resolved, "");
        }

        let f = bind_facts(&roots, &format!("{r}/missing"));
        assert!(
            f.under_volume_root && !f.exists && !f.through_symlink,
            "{f:?}"
        );
        let f = bind_facts(&roots, &format!("{r}/data/file/below"));
        assert!(!f.exists, "a file cannot have children: {f:?}");

        let outside = tmp.path().join("outside");
        let f = bind_facts(&roots, outside.to_str().unwrap());
        assert!(
            f.source_absolute && !f.under_volume_root && !f.exists,
            "{f:?}"
        );
        // a sibling whose name starts with the root's name is not below it
        let f = bind_facts(&roots, &format!("{r}-other"));
        assert!(!f.under_volume_root, "{f:?}");

        let f = bind_facts(&roots, "relative/dir");
        assert!(!f.source_absolute && !f.under_volume_root);
        let f = bind_facts(&roots, &format!("{r}/data/../../outside"));
        assert!(f.source_absolute && !f.source_normalized && !f.under_volume_root);
        let f = bind_facts(&roots, &format!("{r}//data/./sub"));
        assert!(!f.source_normalized);
        // doubled slashes alone are harmless
        let f = bind_facts(&roots, &format!("{r}//data/sub/"));
        assert!(f.source_normalized && f.exists, "{f:?}");
    }

    fn client_mount(json: serde_json::Value) -> Mount {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn hardened_mounts_replace_system_mounts_and_pin_binds() {
        let tmp = tempdir();
        let root = tmp.path().join("ws");
        std::fs::create_dir_all(root.join("src")).unwrap();
        let r = root.to_str().unwrap();
        let client = vec![
            client_mount(json!({"destination": "/proc", "type": "proc", "source": "proc"})),
            client_mount(
                json!({"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["rw"]}),
            ),
            client_mount(
                json!({"destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": ["size=1g"]}),
            ),
            client_mount(
                json!({"destination": "/run", "type": "tmpfs", "source": "tmpfs", "options": ["suid", "size=10m"]}),
            ),
            client_mount(
                json!({"destination": "/src", "type": "bind", "source": format!("{r}/src"), "options": ["rbind", "ro", "shared"]}),
            ),
            client_mount(
                json!({"destination": "/w", "type": "none", "source": format!("{r}/src"), "options": ["bind"]}),
            ),
        ];
        let out = harden(std::slice::from_ref(&root), &client).unwrap();
        let view: Vec<serde_json::Value> = out
            .iter()
            .map(|m| serde_json::to_value(m).unwrap())
            .collect();
        assert_eq!(view.len(), 7 + 3);
        let sys = view.iter().find(|m| m["destination"] == "/sys").unwrap();
        assert!(sys["options"].as_array().unwrap().contains(&json!("ro")));
        let shm: Vec<_> = view
            .iter()
            .filter(|m| m["destination"] == "/dev/shm")
            .collect();
        assert_eq!(shm.len(), 1, "client /dev/shm replaced");
        assert_eq!(
            shm[0]["options"],
            json!(["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"])
        );
        let run = view.iter().find(|m| m["destination"] == "/run").unwrap();
        assert_eq!(run["options"], json!(["size=10m", "nosuid", "nodev"]));
        let canonical = std::fs::canonicalize(root.join("src")).unwrap();
        let src = view.iter().find(|m| m["destination"] == "/src").unwrap();
        assert_eq!(src["source"], canonical.to_str().unwrap());
        assert_eq!(src["type"], "bind");
        assert_eq!(
            src["options"],
            json!(["rbind", "ro", "nosuid", "nodev", "rprivate"])
        );
        let w = view.iter().find(|m| m["destination"] == "/w").unwrap();
        assert_eq!(
            w["options"],
            json!(["bind", "rw", "nosuid", "nodev", "rprivate"])
        );
    }

    #[test]
    fn hardening_refuses_a_bind_that_became_a_symlink() {
        let tmp = tempdir();
        let root = tmp.path().join("ws");
        std::fs::create_dir_all(&root).unwrap();
        std::os::unix::fs::symlink("/etc", root.join("x")).unwrap();
        let m = client_mount(
            json!({"destination": "/x", "type": "bind", "source": format!("{}/x", root.display())}),
        );
        assert!(harden(&[root], &[m]).is_err());
    }

    #[test]
    fn recheck_notices_a_swapped_directory() {
        let tmp = tempdir();
        let root = tmp.path().join("ws");
        std::fs::create_dir_all(root.join("d")).unwrap();
        let source = std::fs::canonicalize(root.join("d")).unwrap();
        let spec: Spec = serde_json::from_value(json!({
            "ociVersion": "1.1.0",
            "mounts": [{"destination": "/d", "type": "bind", "source": source, "options": ["rbind"]}]
        }))
        .unwrap();
        let roots = vec![root];
        recheck_binds(&roots, &spec).unwrap();
        std::fs::remove_dir(&source).unwrap();
        std::os::unix::fs::symlink("/etc", &source).unwrap();
        assert_eq!(
            recheck_binds(&roots, &spec),
            Err(Unresolved(source.to_string_lossy().into_owned()))
        );
    }
}
