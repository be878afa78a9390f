//! `docker pull`, and the pull `run`/`create` make for a missing image.
//!
//! The registry client (`crate::registry`) resolves and downloads; the
//! gateway imports. Output is docker's: per-layer lines, or live bars on a
//! terminal, `-q` only the name. Ctrl-C (or SIGTERM) drops the pull, which
//! removes its downloads; the gateway's import is all-or-nothing.

use crate::cli::PullArgs;
use crate::client::Gateway;
use crate::error::{CliError, Result};
use crate::image::{self, ImageInfo};
use crate::refs::Reference;
use crate::registry::manifest::Platform;
use crate::registry::progress::{self, Stream};
use crate::registry::pull::{self, PullError};

/// `--pull` of run and create.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PullPolicy {
    /// Pull only when the image is not in the sandbox (docker's default).
    #[default]
    Missing,
    Always,
    Never,
}

impl PullPolicy {
    pub fn parse(s: Option<&str>) -> std::result::Result<Self, String> {
        match s {
            None | Some("missing") => Ok(Self::Missing),
            Some("always") => Ok(Self::Always),
            Some("never") => Ok(Self::Never),
            Some(other) => Err(format!(
                "invalid pull option: '{other}': must be one of \"always\", \"missing\" or \"never\""
            )),
        }
    }
}

pub async fn pull(gw: &Gateway, a: PullArgs) -> Result<i32> {
    if a.all_tags {
        return Err(CliError::general(
            "docker pull --all-tags is not supported by berth",
        ));
    }
    let platform = platform(a.platform.as_deref()).map_err(CliError::general)?;
    let parsed =
        Reference::parse_normalized(&a.name).map_err(|e| CliError::general(e.to_string()))?;
    if parsed.tag.is_none() && parsed.digest.is_none() && !a.quiet {
        println!("Using default tag: {}", crate::refs::DEFAULT_TAG);
    }
    let reference = parsed.with_default_tag();
    let shown = progress::for_stream(Stream::Stdout, a.quiet);
    match interruptible(pull::pull(gw, &reference, &platform, &*shown)).await {
        Ok(_) => {
            println!("{reference}");
            Ok(0)
        }
        Err(PullError(e)) => Err(CliError::general(format!(
            "Error response from daemon: {e}"
        ))),
    }
}

/// The platform to pull: the native one; another is refused, since the
/// sandbox runs only native containers (no emulation).
pub fn platform(requested: Option<&str>) -> std::result::Result<Platform, String> {
    let native = Platform::native();
    match requested {
        None => Ok(native),
        Some(p) => {
            let want = Platform::parse(p)?;
            if want.same_as(&native) {
                Ok(native)
            } else {
                Err(format!(
                    "pulling for platform {} is not supported by berth: the sandbox runs only {} images",
                    want.display(),
                    native.display()
                ))
            }
        }
    }
}

/// The image `run` or `create` uses, pulled first as `--pull` says: a
/// missing image prints `Unable to find image 'X' locally` and the pull's
/// output on stderr, as docker does.
pub async fn image_for_run(gw: &Gateway, reference: &str, policy: PullPolicy) -> Result<ImageInfo> {
    let local = image::lookup(gw, reference).await;
    let missing = match &local {
        Ok(_) => false,
        Err(image::ImageError::NotFound(_)) => true,
        Err(e) => return Err(CliError::daemon(e.to_string())),
    };
    let must_pull = match policy {
        PullPolicy::Always => true,
        PullPolicy::Missing => missing,
        PullPolicy::Never => false,
    };
    if !must_pull {
        return match local {
            Ok(r) => Ok(r.info()),
            Err(image::ImageError::NotFound(shown)) => Err(CliError::daemon(format!(
                "Error response from daemon: No such image: {shown}"
            ))),
            Err(e) => Err(CliError::daemon(e.to_string())),
        };
    }
    // An image ID cannot be pulled.
    let reference_parsed = Reference::parse_normalized(reference)
        .map_err(|e| CliError::daemon(e.to_string()))?
        .with_default_tag();
    if missing {
        eprintln!(
            "Unable to find image '{}' locally",
            reference_parsed.familiar_string()
        );
    }
    let shown = progress::for_stream(Stream::Stderr, false);
    let platform = Platform::native();
    interruptible(pull::pull(gw, &reference_parsed, &platform, &*shown))
        .await
        .map_err(|PullError(e)| CliError::daemon(format!("Error response from daemon: {e}")))?;
    image::lookup(gw, &reference_parsed.to_string())
        .await
        .map(|r| r.info())
        .map_err(|e| CliError::daemon(e.to_string()))
}

/// Runs a pull until it ends or the user interrupts it. On SIGINT or
/// SIGTERM the pull is dropped (its downloads are removed with it) and the
/// process exits as a signalled docker CLI does.
pub async fn interruptible<T>(fut: impl std::future::Future<Output = T>) -> T {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut int), Ok(mut term)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) else {
        return fut.await;
    };
    let code = tokio::select! {
        out = fut => return out,
        _ = int.recv() => 130,
        _ = term.recv() => 143,
    };
    // The pull future is dropped here: its scratch directory is gone.
    std::process::exit(code);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pull_policies() {
        assert_eq!(PullPolicy::parse(None), Ok(PullPolicy::Missing));
        assert_eq!(PullPolicy::parse(Some("always")), Ok(PullPolicy::Always));
        assert_eq!(PullPolicy::parse(Some("never")), Ok(PullPolicy::Never));
        assert!(PullPolicy::parse(Some("sometimes"))
            .unwrap_err()
            .contains("must be one of"));
    }

    #[test]
    fn only_the_native_platform() {
        let native = Platform::native().display();
        assert!(platform(Some(&native)).is_ok());
        assert!(platform(None).is_ok());
        let other = if native.contains("amd64") {
            "linux/arm64"
        } else {
            "linux/amd64"
        };
        let e = platform(Some(other)).unwrap_err();
        assert!(e.contains("not supported by berth"), "{e}");
    }
}
