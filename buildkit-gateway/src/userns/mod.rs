//! User namespaces: every container's root is an unprivileged host ID.
//!
//! When the gateway's config has `userns = { uid, gid, size }`, each
//! container gets a private user namespace mapping container IDs
//! `0..size` to host IDs `uid..uid+size` (and the same for groups). The
//! hardening adds it ([`crate::admission::harden`]); a client can neither
//! drop nor change it (policy refuses client mappings and `user` entries).
//!
//! runc 1.1 cannot idmap a rootfs mount, so the image's files must be owned
//! by the mapped IDs on disk: the gateway keeps, per image chain and per
//! mapping, a *remapped* committed snapshot whose files are the chain's with
//! every owner shifted ([`remap`], [`shift`]); a container's snapshot is
//! prepared on that instead of the chain. See `architecture/userns.md`.

pub mod mount;
pub mod remap;
pub mod shift;

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::Deserialize;

/// Snapshot names (and keys) under this prefix are the gateway's own: the
/// remapped parents and the temporary snapshots they are made in. A client
/// may not prepare or remove them.
pub const SNAPSHOT_PREFIX: &str = "berth-userns";

/// Where, below the gateway's state dir, the remapping mounts and the
/// sandbox's sysfs live.
pub const STATE_SUBDIR: &str = "userns";

/// The inside ID a file gets when its in-image owner is outside the mapped
/// range: the kernel's overflow ID, which is what such an owner would show
/// as anyway.
pub const OVERFLOW_ID: u32 = 65534;

/// A sandbox's ID range: container ID `n` is host ID `uid + n` (`gid + n`
/// for groups) for `n < size`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "RawIdMap")]
pub struct IdMap {
    pub uid: u32,
    pub gid: u32,
    pub size: u32,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawIdMap {
    uid: u32,
    gid: u32,
    size: u32,
}

impl TryFrom<RawIdMap> for IdMap {
    type Error = String;

    fn try_from(raw: RawIdMap) -> Result<Self, String> {
        IdMap::new(raw.uid, raw.gid, raw.size)
    }
}

impl IdMap {
    /// Checks the range: it must start above host root, hold at least the
    /// IDs 0 and 65534 (root and nobody, which images use), and fit in u32.
    pub fn new(uid: u32, gid: u32, size: u32) -> Result<Self, String> {
        if uid == 0 || gid == 0 {
            return Err("userns: uid and gid must not be 0 (host root)".into());
        }
        if size <= OVERFLOW_ID {
            return Err(format!(
                "userns: size must be more than {OVERFLOW_ID} (images use IDs up to nobody)"
            ));
        }
        if uid.checked_add(size).is_none() || gid.checked_add(size).is_none() {
            return Err("userns: uid + size and gid + size must fit in 32 bits".into());
        }
        Ok(Self { uid, gid, size })
    }

    /// The host uid of container uid `inside`.
    pub fn host_uid(&self, inside: u32) -> u32 {
        self.uid + self.inside(inside)
    }

    /// The host gid of container gid `inside`.
    pub fn host_gid(&self, inside: u32) -> u32 {
        self.gid + self.inside(inside)
    }

    fn inside(&self, id: u32) -> u32 {
        if id < self.size {
            id
        } else {
            OVERFLOW_ID
        }
    }

    /// `uid-gid-size`, as used in names.
    pub fn tag(&self) -> String {
        format!("{}-{}-{}", self.uid, self.gid, self.size)
    }

    /// The name of the remapped copy of image chain `chain`.
    pub fn remapped_name(&self, chain: &str) -> String {
        format!("{}/{}", self.remapped_prefix(), chain)
    }

    /// Every remapped parent of this mapping is named below this.
    pub fn remapped_prefix(&self) -> String {
        format!("{SNAPSHOT_PREFIX}/{}", self.tag())
    }

    /// The OCI `uidMappings` / `gidMappings` entries (one each).
    pub fn spec_mappings(&self) -> (serde_json::Value, serde_json::Value) {
        let one = |host: u32| serde_json::json!([{ "containerID": 0, "hostID": host, "size": self.size }]);
        (one(self.uid), one(self.gid))
    }
}

/// Whether a snapshot key or name belongs to the gateway (see
/// [`SNAPSHOT_PREFIX`]).
pub fn is_gateway_snapshot(key: &str) -> bool {
    key == SNAPSHOT_PREFIX
        || key
            .strip_prefix(SNAPSHOT_PREFIX)
            .is_some_and(|rest| rest.starts_with('/') || rest.starts_with('-'))
}

/// Where the sandbox's sysfs is mounted for containers to bind.
pub fn sysfs_dir(state_dir: &Path) -> PathBuf {
    state_dir.join(STATE_SUBDIR).join("sys")
}

/// Makes sure [`sysfs_dir`] holds a read-only sysfs of the sandbox's
/// network namespace as it is now (a re-created namespace gets a fresh
/// mount). Cheap when nothing changed.
pub fn ensure_sysfs(netns: &Path, state_dir: &Path) -> std::io::Result<()> {
    static MOUNTED_FOR: Mutex<Option<(u64, u64)>> = Mutex::new(None);
    let mut mounted = MOUNTED_FOR.lock().unwrap_or_else(|p| p.into_inner());
    let id = mount::netns_id(netns)?;
    let dir = sysfs_dir(state_dir);
    if *mounted == Some(id) && mount::is_mount_point(&dir)? {
        return Ok(());
    }
    std::fs::create_dir_all(&dir)?;
    mount::mount_sysfs(netns, &dir)?;
    *mounted = Some(id);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_are_checked() {
        assert!(IdMap::new(100000, 100000, 65536).is_ok());
        assert!(IdMap::new(0, 100000, 65536)
            .unwrap_err()
            .contains("host root"));
        assert!(IdMap::new(100000, 0, 65536)
            .unwrap_err()
            .contains("host root"));
        assert!(IdMap::new(100000, 100000, 1000)
            .unwrap_err()
            .contains("size"));
        assert!(IdMap::new(u32::MAX - 10, 100000, 65536)
            .unwrap_err()
            .contains("32 bits"));
    }

    #[test]
    fn ids_shift_and_overflow_to_nobody() {
        let m = IdMap::new(100000, 200000, 65536).unwrap();
        assert_eq!(m.host_uid(0), 100000);
        assert_eq!(m.host_gid(0), 200000);
        assert_eq!(m.host_uid(1000), 101000);
        assert_eq!(m.host_uid(65535), 165535);
        assert_eq!(m.host_uid(70000), 100000 + OVERFLOW_ID);
        assert_eq!(m.host_gid(u32::MAX), 200000 + OVERFLOW_ID);
    }

    #[test]
    fn config_form() {
        let m: IdMap = toml::from_str("uid = 100000\ngid = 100000\nsize = 65536").unwrap();
        assert_eq!(m, IdMap::new(100000, 100000, 65536).unwrap());
        assert!(toml::from_str::<IdMap>("uid = 1\ngid = 1\nsize = 65536\nx = 1").is_err());
        assert!(toml::from_str::<IdMap>("uid = 0\ngid = 1\nsize = 65536").is_err());
    }

    #[test]
    fn names() {
        let m = IdMap::new(100000, 100000, 65536).unwrap();
        assert_eq!(
            m.remapped_name("sha256:ab"),
            "berth-userns/100000-100000-65536/sha256:ab"
        );
        assert!(is_gateway_snapshot(&m.remapped_name("sha256:ab")));
        assert!(is_gateway_snapshot("berth-userns-tmp/1"));
        assert!(is_gateway_snapshot("berth-userns"));
        assert!(!is_gateway_snapshot("berth-usernsx"));
        assert!(!is_gateway_snapshot("sha256:ab"));
        let (u, g) = m.spec_mappings();
        assert_eq!(u[0]["hostID"], 100000);
        assert_eq!(g[0]["size"], 65536);
    }
}
