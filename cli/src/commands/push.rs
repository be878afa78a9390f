//! `docker push`: uploads a sandbox image to its registry through the
//! proxy (see `crate::registry::push`), with docker's output.

use std::collections::HashMap;
use std::sync::Arc;

use crate::cli::PushArgs;
use crate::client::Gateway;
use crate::error::{CliError, Result};
use crate::image;
use crate::refs::Reference;
use crate::registry::digest::Digest;
use crate::registry::progress::{self, Stream};
use crate::registry::pull::PullError;
use crate::registry::push::{self, Local};

pub async fn push(gw: &Gateway, a: PushArgs) -> Result<i32> {
    if a.all_tags {
        return Err(CliError::general(
            "docker push --all-tags is not supported by berth",
        ));
    }
    if a.platform.is_some() {
        return Err(CliError::general(
            "docker push --platform is not supported by berth",
        ));
    }
    let parsed =
        Reference::parse_normalized(&a.name).map_err(|e| CliError::general(e.to_string()))?;
    if parsed.digest.is_some() {
        return Err(CliError::general("cannot push a digest reference"));
    }
    if parsed.tag.is_none() && !a.quiet {
        println!("Using default tag: {}", crate::refs::DEFAULT_TAG);
    }
    let reference = parsed.with_default_tag();
    let resolved = match image::lookup(gw, &reference.to_string()).await {
        Ok(r) => r,
        Err(image::ImageError::NotFound(_)) => {
            return Err(CliError::general(format!(
                "Error response from daemon: An image does not exist locally with the tag: {}",
                reference.familiar_name()
            )))
        }
        Err(e) => return Err(CliError::general(e.to_string())),
    };
    let daemon = |e: PullError| CliError::general(format!("Error response from daemon: {}", e.0));
    let invalid = |e: String| CliError::general(format!("Error response from daemon: {e}"));

    let manifest_digest = Digest::parse(&resolved.manifest_digest).map_err(invalid)?;
    let manifest = push::read_small(gw, &manifest_digest)
        .await
        .map_err(daemon)?;
    let config = (
        Digest::parse(&resolved.config_digest).map_err(invalid)?,
        resolved.manifest.config.size.max(0) as u64,
    );
    let mut layers = Vec::new();
    for l in &resolved.manifest.layers {
        layers.push((
            Digest::parse(&l.digest).map_err(invalid)?,
            l.size.max(0) as u64,
        ));
    }
    let mount_from = mount_sources(gw, &reference, &layers).await;

    if !a.quiet {
        println!("The push refers to repository [{}]", reference.name());
    }
    let shown: Arc<dyn progress::Progress> =
        Arc::from(progress::for_stream(Stream::Stdout, a.quiet));
    let local = Local {
        manifest_digest,
        manifest,
        config,
        layers,
        mount_from,
    };
    let pushed = crate::commands::pull::interruptible(push::push(gw, &reference, local, shown))
        .await
        .map_err(daemon)?;
    if a.quiet {
        println!("{reference}");
    } else {
        println!(
            "{}: digest: {} size: {}",
            reference.tag.as_deref().unwrap_or(crate::refs::DEFAULT_TAG),
            pushed.digest,
            pushed.size
        );
    }
    Ok(0)
}

/// For each layer, another repository of the same registry that a sandbox
/// image (pulled from or pushed to there) has it in: the registry can
/// mount it from there instead of receiving it again.
async fn mount_sources(
    gw: &Gateway,
    target: &Reference,
    layers: &[(Digest, u64)],
) -> HashMap<Digest, String> {
    let mut out = HashMap::new();
    let Ok(all) = image::list(gw).await else {
        return out;
    };
    for (rec, r) in all {
        let (Some(name), Ok(r)) = (image::parse_name(&rec.name), r) else {
            continue;
        };
        if name.domain != target.domain || name.path == target.path {
            continue;
        }
        for l in &r.manifest.layers {
            if let Some((d, _)) = layers.iter().find(|(d, _)| d.as_str() == l.digest) {
                out.entry(d.clone()).or_insert_with(|| name.path.clone());
            }
        }
    }
    out
}
