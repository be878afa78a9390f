//! A pull's scratch directory: verified downloads wait there until the
//! gateway has imported them. It is removed when the pull ends, whether it
//! succeeded, failed or was interrupted (the guard is dropped then).

use std::path::{Path, PathBuf};

use crate::env;

pub struct Scratch {
    path: PathBuf,
}

impl Scratch {
    pub fn create(what: &str) -> std::io::Result<Self> {
        let base = std::env::var_os(env::TMPDIR)
            .filter(|d| !d.is_empty())
            .map_or_else(std::env::temp_dir, PathBuf::from);
        for _ in 0..16 {
            let name = format!(
                "berth-{what}-{}-{:08x}",
                std::process::id(),
                rand::random::<u32>()
            );
            let path = base.join(name);
            match std::fs::create_dir(&path) {
                Ok(()) => {
                    use std::os::unix::fs::PermissionsExt;
                    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o700))?;
                    return Ok(Self { path });
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => {
                    return Err(std::io::Error::new(
                        e.kind(),
                        format!("creating a directory in {}: {e}", base.display()),
                    ))
                }
            }
        }
        Err(std::io::Error::other("cannot create a scratch directory"))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn removed_when_dropped() {
        let s = Scratch::create("test").unwrap();
        let p = s.path().to_path_buf();
        std::fs::write(p.join("f"), b"x").unwrap();
        drop(s);
        assert!(!p.exists());
    }
}
