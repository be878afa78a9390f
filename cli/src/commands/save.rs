//! `docker save [-o FILE] IMAGE...` / `docker image save`: one archive of
//! one or more images, in the layout of `image::archive` (OCI layout and
//! docker save at once), read blob by blob through the gateway's
//! Content.Read and streamed out.
//!
//! Which names are saved follows docker: `name:tag` saves that name, a bare
//! repository saves each of its tags, an ID saves the image unnamed. An
//! image whose record is an index is saved with the index and this
//! platform's manifest, config and layers (what `docker load` here uses).
//!
//! With `-o` the archive is written beside the destination and renamed
//! over it when complete, so a failure leaves no partial file.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use clap::Args;
use containerd_client::services::v1 as api;
use containerd_client::services::v1::content_client::ContentClient;
use sha2::{Digest as _, Sha256};
use tokio::io::{AsyncWrite, BufWriter};

use crate::client::Gateway;
use crate::commands::tag::{daemon_error, status_error};
use crate::error::{CliError, Result};
use crate::format::output;
use crate::image::archive::{self, Entry, Root, TarWriter};
use crate::image::{self, parse_name, ImageError, Resolved};
use crate::refs::Reference;

/// Buffer between the content stream and the sink.
const WRITE_BUFFER: usize = 1 << 20;

#[derive(Debug, Args)]
pub struct SaveArgs {
    /// Write to a file, instead of STDOUT
    #[arg(short = 'o', long)]
    pub output: Option<String>,
    /// Save only the given platform (not supported)
    #[arg(long)]
    pub platform: Option<String>,
    #[arg(required = true, value_name = "IMAGE")]
    pub images: Vec<String>,
}

pub async fn save(gw: &Gateway, a: SaveArgs) -> Result<i32> {
    output::finish(run(gw, a).await)
}

/// docker's `ValidateOutputPath`: the directory must exist and the path
/// must not be a directory.
fn validate_output(path: &str) -> Result<()> {
    let p = Path::new(path);
    let dir = p
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let bad = |why: String| {
        CliError::general(format!("failed to save image: invalid output path: {why}"))
    };
    if !dir.exists() {
        return Err(bad(format!(
            "directory {:?} does not exist",
            dir.display().to_string()
        )));
    }
    if p.is_dir() {
        return Err(bad(format!("{path:?} is a directory")));
    }
    Ok(())
}

async fn run(gw: &Gateway, a: SaveArgs) -> Result<i32> {
    if a.platform.is_some() {
        return Err(CliError::general(
            "docker save --platform is not supported by berth",
        ));
    }
    match &a.output {
        Some(path) => validate_output(path)?,
        None if std::io::stdout().is_terminal() => {
            return Err(CliError::general(
                "cowardly refusing to save to a terminal. Use the -o flag or redirect",
            ))
        }
        None => {}
    }
    let plan = plan(gw, &a.images).await?;
    match &a.output {
        None => {
            let out = BufWriter::with_capacity(WRITE_BUFFER, tokio::io::stdout());
            write(gw, &plan, out).await?;
        }
        Some(path) => {
            let tmp = temp_path(Path::new(path));
            let result = async {
                let file = tokio::fs::File::create(&tmp)
                    .await
                    .map_err(|e| CliError::general(format!("failed to save image: {e}")))?;
                let file = write(gw, &plan, BufWriter::with_capacity(WRITE_BUFFER, file)).await?;
                file.into_inner()
                    .sync_all()
                    .await
                    .map_err(|e| CliError::general(format!("failed to save image: {e}")))?;
                tokio::fs::rename(&tmp, path)
                    .await
                    .map_err(|e| CliError::general(format!("failed to save image: {e}")))
            }
            .await;
            if result.is_err() {
                let _ = tokio::fs::remove_file(&tmp).await;
            }
            result?;
        }
    }
    Ok(0)
}

/// A hidden file beside `dest`, so the final rename stays in one filesystem.
fn temp_path(dest: &Path) -> PathBuf {
    let dir = dest
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    dir.join(format!(".docker_temp_{:016x}", rand::random::<u64>()))
}

/// What goes into the archive, decided before a byte is written.
struct Plan {
    roots: Vec<Root>,
    entries: Vec<Entry>,
    /// (digest, size), each once, in writing order.
    blobs: Vec<(String, u64)>,
}

/// Resolves every argument to images and names (errors before any output).
async fn plan(gw: &Gateway, args: &[String]) -> Result<Plan> {
    let mut chosen: Vec<(Resolved, Vec<String>)> = Vec::new();
    for arg in args {
        for (r, names) in select(gw, arg).await? {
            match chosen
                .iter_mut()
                .find(|(c, _)| c.target_digest() == r.target_digest())
            {
                Some((_, n)) => n.extend(names),
                None => chosen.push((r, names)),
            }
        }
    }
    let mut plan = Plan {
        roots: Vec::new(),
        entries: Vec::new(),
        blobs: Vec::new(),
    };
    for (r, mut names) in chosen {
        names.sort();
        names.dedup();
        let target =
            r.record.target.clone().ok_or_else(|| {
                CliError::general(format!("image {} has no target", r.record.name))
            })?;
        plan.roots.push(Root {
            media_type: target.media_type.clone(),
            digest: target.digest.clone(),
            size: target.size,
            names: names.clone(),
        });
        let mut digests = vec![target.digest.clone()];
        digests.push(r.manifest_digest.clone());
        digests.push(r.config_digest.clone());
        digests.extend(r.manifest.layers.iter().map(|l| l.digest.clone()));
        for d in digests {
            if plan.blobs.iter().any(|(b, _)| *b == d) {
                continue;
            }
            let size = info_size(gw, &d).await?;
            plan.blobs.push((d, size));
        }
        let repo_tags: Vec<String> = names
            .iter()
            .filter_map(|n| parse_name(n))
            .filter(|p| p.tag.is_some())
            .map(|p| p.familiar_string())
            .collect();
        match plan
            .entries
            .iter_mut()
            .find(|e| e.config == r.config_digest)
        {
            Some(e) => e.repo_tags.extend(repo_tags),
            None => plan.entries.push(Entry {
                config: r.config_digest.clone(),
                layers: r.manifest.layers.iter().map(|l| l.digest.clone()).collect(),
                repo_tags,
            }),
        }
    }
    Ok(plan)
}

/// The images one argument names, with the names to save them under.
async fn select(gw: &Gateway, arg: &str) -> Result<Vec<(Resolved, Vec<String>)>> {
    // A bare repository: every tag of it.
    if let Ok(r) = Reference::parse_normalized(arg) {
        if r.tag.is_none() && r.digest.is_none() {
            let mut out: Vec<(Resolved, Vec<String>)> = Vec::new();
            for (rec, res) in image::list(gw).await.map_err(daemon_error)? {
                let Some(p) = parse_name(&rec.name) else {
                    continue;
                };
                if p.name() != r.name() || p.tag.is_none() {
                    continue;
                }
                let res = res.map_err(daemon_error)?;
                out.push((res, vec![rec.name.clone()]));
            }
            if !out.is_empty() {
                return Ok(out);
            }
        }
    }
    let found = image::lookup(gw, arg).await.map_err(|e| match e {
        e @ ImageError::NotFound(_) => daemon_error(e),
        other => daemon_error(other),
    })?;
    let by_name = Reference::parse_normalized(arg)
        .map(|r| r.with_default_tag().to_string() == found.record.name)
        .unwrap_or(false);
    let names = if by_name {
        vec![found.record.name.clone()]
    } else {
        Vec::new()
    };
    Ok(vec![(found, names)])
}

async fn info_size(gw: &Gateway, digest: &str) -> Result<u64> {
    let mut c = ContentClient::new(gw.channel.clone());
    let info = c
        .info(api::InfoRequest {
            digest: digest.to_string(),
        })
        .await
        .map_err(|s| match s.code() {
            tonic::Code::NotFound => CliError::general(format!(
                "Error response from daemon: content {digest} is not in the sandbox"
            )),
            _ => status_error(&s),
        })?
        .into_inner()
        .info
        .ok_or_else(|| CliError::general(format!("no information on content {digest}")))?;
    Ok(info.size.max(0) as u64)
}

/// Writes the archive; returns the sink (flushed) for the caller to close.
async fn write<W: AsyncWrite + Unpin>(gw: &Gateway, plan: &Plan, out: W) -> Result<W> {
    let io = |e: std::io::Error| CliError::general(format!("failed to save image: {e}"));
    let mut tar = TarWriter::new(out);
    tar.dir("blobs/").await.map_err(io)?;
    tar.dir("blobs/sha256/").await.map_err(io)?;
    for (digest, size) in &plan.blobs {
        tar.begin(&archive::blob_path(digest), *size)
            .await
            .map_err(io)?;
        copy_blob(gw, digest, &mut tar).await?;
        tar.end().await.map_err(io)?;
    }
    tar.file("index.json", &archive::index_json(&plan.roots))
        .await
        .map_err(io)?;
    tar.file("manifest.json", &archive::manifest_json(&plan.entries))
        .await
        .map_err(io)?;
    tar.file("oci-layout", &archive::oci_layout())
        .await
        .map_err(io)?;
    if let Some(repos) = archive::repositories(&plan.entries) {
        tar.file("repositories", &repos).await.map_err(io)?;
    }
    tar.finish().await.map_err(io)
}

/// Streams one blob into the archive, checking its digest as it passes.
async fn copy_blob<W: AsyncWrite + Unpin>(
    gw: &Gateway,
    digest: &str,
    tar: &mut TarWriter<W>,
) -> Result<()> {
    let mut c = ContentClient::new(gw.channel.clone());
    let mut stream = c
        .read(api::ReadContentRequest {
            digest: digest.to_string(),
            offset: 0,
            size: 0,
        })
        .await
        .map_err(|s| status_error(&s))?
        .into_inner();
    let mut hash = Sha256::new();
    while let Some(msg) = stream.message().await.map_err(|s| status_error(&s))? {
        hash.update(&msg.data);
        tar.write(&msg.data).await.map_err(|e| {
            CliError::general(format!("failed to save image: content {digest}: {e}"))
        })?;
    }
    if let Some(want) = digest.strip_prefix("sha256:") {
        if hex::encode(hash.finalize()) != want {
            return Err(CliError::general(format!(
                "failed to save image: content {digest} does not match its digest"
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_paths_like_docker() {
        let e = validate_output("/nonexistent-dir/x.tar").unwrap_err();
        assert_eq!(
            e.message,
            "failed to save image: invalid output path: directory \"/nonexistent-dir\" does not exist"
        );
        assert_eq!(e.code, 1);
        let e = validate_output("/tmp").unwrap_err();
        assert_eq!(
            e.message,
            "failed to save image: invalid output path: \"/tmp\" is a directory"
        );
        assert!(validate_output("x.tar").is_ok());
        assert!(temp_path(Path::new("/a/b.tar")).starts_with("/a"));
    }
}
