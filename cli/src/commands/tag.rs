//! `docker tag SOURCE TARGET` / `docker image tag`: points the record
//! TARGET at the same index or manifest as SOURCE (by name, short or full
//! ID). Errors are docker's, exit 1.

use clap::Args;

use crate::client::Gateway;
use crate::error::{CliError, Result};
use crate::format::output;
use crate::image::store::{self, Catalog};
use crate::image::{self, ImageError};
use crate::refs::Reference;

#[derive(Debug, Args)]
pub struct TagArgs {
    #[arg(value_name = "SOURCE_IMAGE[:TAG]")]
    pub source: String,
    #[arg(value_name = "TARGET_IMAGE[:TAG]")]
    pub target: String,
}

pub async fn tag(gw: &Gateway, a: TagArgs) -> Result<i32> {
    output::finish(run(gw, a).await)
}

/// docker's client checks both references before asking the daemon.
fn parse_target(source: &str, target: &str) -> Result<Reference> {
    let bad = |what: &str, e: &dyn std::fmt::Display| {
        CliError::general(format!(
            "Error parsing reference: {what:?} is not a valid repository/tag: {e}"
        ))
    };
    if !is_image_id(source) {
        Reference::parse_normalized(source).map_err(|e| bad(source, &e))?;
    }
    let t = Reference::parse_normalized(target).map_err(|e| bad(target, &e))?;
    if t.digest.is_some() {
        return Err(CliError::general(
            "refusing to create a tag with a digest reference",
        ));
    }
    Ok(t.with_default_tag())
}

/// A full image ID, with or without `sha256:` (docker's ParseAnyReference
/// takes it as a digest).
fn is_image_id(s: &str) -> bool {
    let hex = s.strip_prefix("sha256:").unwrap_or(s);
    hex.len() == 64 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// A daemon-side failure as docker's CLI prints it for tag/rmi (exit 1).
pub(crate) fn daemon_error(e: ImageError) -> CliError {
    match e {
        ImageError::Reference(r) => CliError::general(format!("Error response from daemon: {r}")),
        other => CliError::general(format!("Error response from daemon: {other}")),
    }
}

pub(crate) fn status_error(s: &tonic::Status) -> CliError {
    CliError::general(format!(
        "Error response from daemon: {}",
        CliError::from_status(s).message
    ))
}

async fn run(gw: &Gateway, a: TagArgs) -> Result<i32> {
    let target = parse_target(&a.source, &a.target)?;
    let source = image::lookup(gw, &a.source).await.map_err(daemon_error)?;
    let Some(descriptor) = source.record.target.clone() else {
        return Err(CliError::general(format!(
            "Error response from daemon: image {} has no target",
            source.record.name
        )));
    };
    let name = target.to_string();
    if name == source.record.name {
        return Ok(0);
    }
    // Moving a tag away from an image that has no other name would lose
    // that image; docker keeps it as <none>.
    let catalog = Catalog::read(gw).await.map_err(daemon_error)?;
    if let Some(old) = catalog.by_record(&name) {
        if old.id != source.config_digest && old.records.len() == 1 {
            store::keep_dangling(gw, old).await;
        }
    }
    store::put(gw, &name, &descriptor)
        .await
        .map_err(|s| status_error(&s))?;
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn target_errors_like_dockers_client() {
        let err = |s: &str, t: &str| parse_target(s, t).unwrap_err();
        let e = err("busybox", "Foo");
        assert_eq!(e.code, 1);
        assert_eq!(
            e.message,
            "Error parsing reference: \"Foo\" is not a valid repository/tag: invalid reference format: repository name (library/Foo) must be lowercase"
        );
        assert_eq!(
            err("bu$y", "x").message,
            "Error parsing reference: \"bu$y\" is not a valid repository/tag: invalid reference format"
        );
        let digest = format!("x@sha256:{}", "a".repeat(64));
        assert_eq!(
            err("busybox", &digest).message,
            "refusing to create a tag with a digest reference"
        );
        let ok = parse_target(&"a".repeat(64), "app").unwrap();
        assert_eq!(ok.to_string(), "docker.io/library/app:latest");
        assert_eq!(
            parse_target("busybox", "localhost:5000/x:v1")
                .unwrap()
                .to_string(),
            "localhost:5000/x:v1"
        );
    }
}
