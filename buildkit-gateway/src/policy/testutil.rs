//! Helpers shared by the policy and admission unit tests.

use std::path::{Path, PathBuf};

/// A fresh directory removed on drop.
pub(crate) struct TempDir(PathBuf);

impl TempDir {
    pub(crate) fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub(crate) fn tempdir() -> TempDir {
    use rand::Rng;
    let name = format!("berth-policy-test-{:016x}", rand::thread_rng().gen::<u64>());
    let path = std::env::temp_dir().join(name);
    std::fs::create_dir_all(&path).unwrap();
    TempDir(path)
}
