//! `docker load`: importing image archives into the sandbox's namespace.
//!
//! The archive is hostile input. It is decoded into a name table without
//! extracting anything (`archive`, `tar`), then a plan is decided from its
//! JSON documents, each checked against its digest (`plan`), and only then
//! acted on: blobs written under a lease with their bytes verified
//! (`content`), the host platform's layers unpacked by the gateway itself
//! (`unpack`), and the image records created last (`images`). On any error
//! the records are not created, extraction snapshots are removed and the
//! lease is deleted, so containerd's GC takes the partial blobs.
//!
//! An OCI layout may leave out layers of the images it imports when the
//! sandbox's content store already holds them (a build exports only what
//! the sandbox lacks): such a layer is leased, then checked with
//! `Content.Info` in the sandbox's namespace for its digest and size, all
//! before anything is written; one the sandbox lacks is refused
//! ("blob … is neither in the archive nor in the sandbox").

/// Public for the fuzz targets (`buildkit-gateway/fuzz`): the archive reader
/// is the first code to see a hostile `docker load` archive.
pub mod archive;
mod content;
mod images;
/// Public for the fuzz targets: the layer reader sees hostile tar and gzip.
pub mod inspect;
pub(crate) mod names;
mod oci;
/// Public for the fuzz targets: the plan decoder reads the archive's JSON.
pub mod plan;
#[cfg(test)]
mod stack_test;
/// Public for the fuzz targets: the bounded tar header reader.
pub mod tar;
#[cfg(test)]
mod testdata;
mod unpack;

use std::path::Path;
use std::sync::Arc;

use berth_proto::berth::v1::LoadedImage;

use crate::quota::{self, Quotas, Reservation};
use crate::sandbox::Sandbox;
use crate::upstream::Upstream;

pub use images::DANGLING_PREFIX;

/// Largest archive (after decompression) and so the most one load can
/// write into the content store.
pub const MAX_ARCHIVE_BYTES: u64 = 8 << 30;
/// Largest JSON document read (index.json, manifest.json, manifests,
/// configs); they are held in memory.
pub const MAX_JSON_BYTES: u64 = 4 << 20;
/// Most blobs one archive may hold.
pub const MAX_BLOBS: usize = 10_000;
/// Most tar entries (files, directories, links) one archive may hold.
pub const MAX_ENTRIES: usize = 50_000;

/// Why a load failed; worded for the user, one line.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The archive is malformed, truncated, unsafe or inconsistent (InvalidArgument).
    #[error("{0}")]
    Invalid(String),
    /// containerd refused or failed (its status is passed on).
    #[error("{0}")]
    Upstream(#[from] tonic::Status),
    /// Local I/O failure in the gateway (Internal).
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// The image policy refused a name the archive gives (PermissionDenied).
    #[error("{0}")]
    Refused(crate::admission::Denied),
    /// The load would pass one of the sandbox's quotas (ResourceExhausted).
    #[error("{0}")]
    Quota(#[from] crate::quota::Exceeded),
}

/// Decides each image record a load would create, by its record name and
/// the manifest digest it points to, before anything is written.
pub type Admit<'a> = &'a (dyn Fn(&str, &str) -> Result<(), crate::admission::Denied> + Sync);

fn invalid(msg: impl std::fmt::Display) -> LoadError {
    LoadError::Invalid(format!("invalid archive: {msg}"))
}

/// Keeps containerd's status code, prefixing what the gateway was doing.
fn upstream_error(doing: &str, status: tonic::Status) -> LoadError {
    LoadError::Upstream(tonic::Status::new(
        status.code(),
        format!("{doing}: {}", status.message()),
    ))
}

/// Progress is best effort: a client that stopped reading does not stop
/// the load.
async fn progress_line(progress: &tokio::sync::mpsc::Sender<String>, line: String) {
    let _ = progress.send(line).await;
}

/// Imports the archive spooled at `path` (OCI layout or `docker save`, plain
/// or gzip) into the sandbox's namespace: blobs under a lease, layers
/// unpacked by the gateway, image records created last. Every record name
/// is decided by `admit` before anything is written, and so are the
/// sandbox's `quotas` (the decompressed archive and the layers it unpacks
/// are bounded by the content quota; its new blobs must fit in it). On
/// error nothing is left behind. Progress lines go to `progress`.
pub async fn import_archive(
    up: &Upstream,
    sb: &Sandbox,
    quotas: &Quotas,
    path: &Path,
    admit: Admit<'_>,
    progress: &tokio::sync::mpsc::Sender<String>,
) -> Result<Vec<LoadedImage>, LoadError> {
    // Decode and decide (blocking file reads) before touching containerd.
    let owned = path.to_path_buf();
    let limit = quotas.content_bytes;
    let (archive, plan) = tokio::task::spawn_blocking(move || -> Result<_, LoadError> {
        let archive = archive::Archive::open_bounded(&owned, limit)?;
        let plan = plan::plan(&archive)?;
        inspect::layers(&archive, &plan, limit)?;
        Ok((Arc::new(archive), plan))
    })
    .await
    .map_err(|e| LoadError::Io(std::io::Error::other(format!("archive reader failed: {e}"))))??;

    for image in &plan.images {
        for (_, record) in records(image) {
            admit(&record, &image.target.digest.to_string()).map_err(LoadError::Refused)?;
        }
    }

    // Held until the load ends: concurrent loads see these bytes as taken.
    let _reserved = check_quotas(up, sb, quotas, &plan).await?;

    let format = match plan.format {
        plan::Format::OciLayout => "OCI layout",
        plan::Format::DockerSave => "docker save",
    };
    progress_line(
        progress,
        format!(
            "Loading {format} archive{}: {} image(s), {} layer(s)",
            if archive.compressed { " (gzip)" } else { "" },
            plan.images.len(),
            plan.layer_count()
        ),
    )
    .await;

    let session = content::Session::begin(up, &sb.snapshotter).await?;
    match apply(&session, &archive, &plan, progress).await {
        Ok(loaded) => {
            session.finish().await;
            Ok(loaded)
        }
        Err(e) => {
            session.abort().await;
            Err(e)
        }
    }
}

/// Refuses a plan whose new blobs (declared sizes of those the namespace
/// lacks) would pass the content quota, or whose layers to unpack would
/// pass the snapshot quota; reserves the bytes for the load.
async fn check_quotas(
    up: &Upstream,
    sb: &Sandbox,
    quotas: &Quotas,
    plan: &plan::Plan,
) -> Result<Reservation, LoadError> {
    let _gate = quota::CONTENT_GATE.enter().await;
    let held = quota::content_held(up)
        .await
        .map_err(|s| upstream_error("listing the sandbox's content", s))?;
    let adding = quota::new_bytes(
        &held,
        plan.blobs.iter().map(|b| (b.digest.as_str(), b.size)),
    );
    let total = held.values().fold(0u64, |sum, s| sum.saturating_add(*s));
    let reservation = Reservation::take(total, adding, quotas.content_bytes)?;
    let mut manifests = std::collections::HashSet::new();
    let layers: u64 = plan
        .images
        .iter()
        .filter_map(|i| i.unpack.as_ref())
        .filter(|u| manifests.insert(u.manifest.clone()))
        .map(|u| u.layers.len() as u64)
        .sum();
    if layers > 0 {
        let count = quota::snapshot_count(up, &sb.snapshotter)
            .await
            .map_err(|s| upstream_error("listing the sandbox's snapshots", s))?;
        quota::check_count(
            "image archive",
            "snapshots",
            "quota.snapshots",
            count,
            layers,
            quotas.snapshots,
        )?;
    }
    Ok(reservation)
}

/// Each name an image of the plan is loaded as ("" for an unnamed one),
/// with the image record it becomes.
fn records(image: &plan::ImagePlan) -> Vec<(&str, String)> {
    let names: Vec<&str> = if image.names.is_empty() {
        vec![""]
    } else {
        image.names.iter().map(String::as_str).collect()
    };
    names
        .into_iter()
        .map(|name| (name, images::record_name(name, &image.target)))
        .collect()
}

async fn apply(
    s: &content::Session,
    archive: &Arc<archive::Archive>,
    plan: &plan::Plan,
    progress: &tokio::sync::mpsc::Sender<String>,
) -> Result<Vec<LoadedImage>, LoadError> {
    let layers = plan.layer_count();
    let mut layer_no = 0;
    // Blobs the archive leaves out first: a load that names a blob the
    // sandbox lacks is refused before anything is written.
    let (from_sandbox, in_archive): (Vec<&plan::Blob>, Vec<&plan::Blob>) = plan
        .blobs
        .iter()
        .partition(|b| matches!(b.source, plan::Source::Sandbox));
    for blob in from_sandbox.into_iter().chain(in_archive) {
        let stored = content::store(s, archive, blob).await?;
        if blob.role == plan::Role::Layer {
            layer_no += 1;
            let note = match stored {
                content::Stored::Written => "",
                content::Stored::AlreadyPresent => " (already present)",
                content::Stored::FromSandbox => " (from the sandbox)",
            };
            progress_line(
                progress,
                format!(
                    "Loading layer {} {layer_no}/{layers}{note}",
                    blob.digest.short()
                ),
            )
            .await;
        }
    }

    let mut unpacked = Vec::new();
    for image in &plan.images {
        match &image.unpack {
            Some(u) if !unpacked.contains(&u.manifest) => {
                unpack::unpack(s, u, progress).await?;
                unpacked.push(u.manifest.clone());
            }
            Some(_) => {}
            None => {
                let (os, arch) = plan::host_platform();
                let shown = image
                    .names
                    .first()
                    .map_or_else(|| image.target.digest.to_string(), Clone::clone);
                progress_line(
                    progress,
                    format!("Image {shown} has no {os}/{arch} image; loaded without unpacking"),
                )
                .await;
            }
        }
    }

    let mut done = images::Published::default();
    let mut loaded = Vec::new();
    for image in &plan.images {
        for (name, record) in records(image) {
            if let Err(e) = images::publish(s, &record, &image.target, &mut done).await {
                images::unpublish(s, done).await;
                return Err(e);
            }
            loaded.push(LoadedImage {
                name: name.to_string(),
                config_digest: image
                    .config
                    .as_ref()
                    .map(ToString::to_string)
                    .unwrap_or_default(),
                target_digest: image.target.digest.to_string(),
            });
        }
    }
    Ok(loaded)
}
