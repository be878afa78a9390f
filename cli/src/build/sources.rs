//! The directories a build serves: the context and the Dockerfile's
//! directory. A Dockerfile read from stdin is written to a private
//! temporary directory (and `docker build -` gets an empty one as its
//! context), removed when the build ends.

use std::io::Read;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use super::options::{Context, Dockerfile};
use super::session::random_id;
use crate::error::CliError;

/// The largest Dockerfile read from stdin.
const MAX_STDIN_DOCKERFILE: u64 = 16 << 20;

/// A directory removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new() -> std::io::Result<Self> {
        let path = std::env::temp_dir().join(format!("berth-build-{}", random_id()));
        std::fs::DirBuilder::new().mode(0o700).create(&path)?;
        Ok(TempDir(path))
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub struct Sources {
    /// Absolute.
    pub context_dir: PathBuf,
    /// Absolute.
    pub dockerfile_dir: PathBuf,
    /// The Dockerfile's text, when it could be read (for the `FROM` scan;
    /// BuildKit reads it itself and reports a missing one).
    pub dockerfile_text: Option<String>,
    _temp: Vec<TempDir>,
}

fn absolute(p: &Path) -> Result<PathBuf, CliError> {
    std::path::absolute(p).map_err(|e| CliError::general(format!("resolving {}: {e}", p.display())))
}

pub fn prepare(
    context: &Context,
    dockerfile: &Dockerfile,
    name: &str,
) -> Result<Sources, CliError> {
    let mut temp = Vec::new();
    let context_dir = match context {
        Context::Dir(d) => absolute(d)?,
        Context::Stdin => {
            let t = TempDir::new()
                .map_err(|e| CliError::general(format!("creating a temporary context: {e}")))?;
            let p = t.path().to_path_buf();
            temp.push(t);
            p
        }
    };
    let (dockerfile_dir, dockerfile_text) = match dockerfile {
        Dockerfile::Path(p) => {
            let abs = absolute(p)?;
            let dir = abs
                .parent()
                .map(Path::to_path_buf)
                .unwrap_or_else(|| PathBuf::from("/"));
            (dir, std::fs::read_to_string(&abs).ok())
        }
        Dockerfile::Stdin => {
            let mut text = String::new();
            std::io::stdin()
                .take(MAX_STDIN_DOCKERFILE)
                .read_to_string(&mut text)
                .map_err(|e| {
                    CliError::general(format!("reading the Dockerfile from stdin: {e}"))
                })?;
            let t = TempDir::new().map_err(|e| {
                CliError::general(format!("storing the Dockerfile from stdin: {e}"))
            })?;
            std::fs::write(t.path().join(name), &text).map_err(|e| {
                CliError::general(format!("storing the Dockerfile from stdin: {e}"))
            })?;
            let p = t.path().to_path_buf();
            temp.push(t);
            (p, Some(text))
        }
    };
    Ok(Sources {
        context_dir,
        dockerfile_dir,
        dockerfile_text,
        _temp: temp,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temp_dirs_are_private_and_removed() {
        use std::os::unix::fs::PermissionsExt;
        let t = TempDir::new().unwrap();
        let p = t.path().to_path_buf();
        assert_eq!(
            std::fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o700
        );
        drop(t);
        assert!(!p.exists());
    }

    #[test]
    fn a_dockerfile_path_serves_its_directory() {
        let t = TempDir::new().unwrap();
        std::fs::create_dir(t.path().join("sub")).unwrap();
        std::fs::write(t.path().join("sub/Build.df"), "FROM scratch\n").unwrap();
        let s = prepare(
            &Context::Dir(t.path().to_path_buf()),
            &Dockerfile::Path(t.path().join("sub/Build.df")),
            "Build.df",
        )
        .unwrap();
        assert_eq!(s.dockerfile_dir, t.path().join("sub"));
        assert_eq!(s.dockerfile_text.as_deref(), Some("FROM scratch\n"));
        assert_eq!(s.context_dir, t.path());
    }
}
