//! Per-sandbox quotas on what the sandbox keeps on the host's disk
//! (threat model row 32): bytes of content, number of snapshots, number of
//! leases. One gateway serves one sandbox, so the counts are those of the
//! sandbox's namespace in containerd, asked for when needed rather than
//! cached: containerd's GC and other clients change them at any time.
//!
//! Checks happen before anything is written; a refusal is gRPC
//! ResourceExhausted with one line naming the config key. Concurrent
//! requests are serialised around check-and-create (`gate`), and a load
//! reserves the bytes it was allowed until it ends, so two loads started
//! together cannot both take the last free gigabyte.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};

use containerd_client::services::v1::snapshots::ListSnapshotsRequest;
use containerd_client::services::v1::{ListContentRequest, ListRequest as ListLeasesRequest};
use serde::Deserialize;

use crate::upstream::Upstream;

/// Default of `quota.content_bytes`: 20 GiB of blobs.
pub const DEFAULT_CONTENT_BYTES: u64 = 20 << 30;
/// Default of `quota.snapshots`: committed layers and containers' active
/// snapshots together.
pub const DEFAULT_SNAPSHOTS: u64 = 4096;
/// Default of `quota.leases`: leases the sandbox's clients create.
pub const DEFAULT_LEASES: u64 = 1024;

/// The quotas of one sandbox: the config's `[quota]` table, each key
/// defaulting when left out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Quotas {
    pub content_bytes: u64,
    pub snapshots: u64,
    pub leases: u64,
}

impl Default for Quotas {
    fn default() -> Self {
        Self {
            content_bytes: DEFAULT_CONTENT_BYTES,
            snapshots: DEFAULT_SNAPSHOTS,
            leases: DEFAULT_LEASES,
        }
    }
}

/// A quota refusal, worded for the user (one line).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Exceeded(pub String);

impl From<Exceeded> for tonic::Status {
    fn from(e: Exceeded) -> Self {
        tonic::Status::resource_exhausted(e.0)
    }
}

/// Bytes a load adds: the declared size of each blob the namespace does not
/// hold yet, counted once however often the archive names it.
pub fn new_bytes<'a>(
    held: &HashMap<String, u64>,
    blobs: impl IntoIterator<Item = (&'a str, u64)>,
) -> u64 {
    let mut seen = std::collections::HashSet::new();
    blobs
        .into_iter()
        .filter(|(d, _)| !held.contains_key(*d) && seen.insert(*d))
        .fold(0u64, |sum, (_, size)| sum.saturating_add(size))
}

/// Refuses adding `adding` bytes to `held` (plus what loads in flight have
/// reserved) when that passes `quota`.
pub fn check_content(held: u64, reserved: u64, adding: u64, quota: u64) -> Result<(), Exceeded> {
    let after = held.saturating_add(reserved).saturating_add(adding);
    if after <= quota {
        return Ok(());
    }
    Err(Exceeded(format!(
        "refusing image archive: its new blobs ({}) on top of the sandbox's {} of content would pass its quota of {} (quota.content_bytes)",
        human(adding),
        human(held.saturating_add(reserved)),
        human(quota)
    )))
}

/// Refuses a `what` (e.g. "snapshot x") when the sandbox already has
/// `current` of `kind` ("snapshots") and `adding` more would pass `quota`.
pub fn check_count(
    what: &str,
    kind: &str,
    key: &str,
    current: u64,
    adding: u64,
    quota: u64,
) -> Result<(), Exceeded> {
    if current.saturating_add(adding) <= quota {
        return Ok(());
    }
    Err(Exceeded(format!(
        "refusing {what}: the sandbox has {current} {kind}, its quota is {quota} ({key})"
    )))
}

/// Bytes with a binary unit, for messages.
pub fn human(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

// --- what the namespace holds ------------------------------------------------------

/// Every blob of the namespace with its size (Content.List).
pub async fn content_held(up: &Upstream) -> Result<HashMap<String, u64>, tonic::Status> {
    let mut stream = up
        .content()
        .list(up.request(ListContentRequest::default()))
        .await?
        .into_inner();
    let mut held = HashMap::new();
    while let Some(page) = stream.message().await? {
        for info in page.info {
            held.insert(info.digest, info.size.max(0) as u64);
        }
    }
    Ok(held)
}

/// How many snapshots the namespace has in `snapshotter`.
pub async fn snapshot_count(up: &Upstream, snapshotter: &str) -> Result<u64, tonic::Status> {
    let req = ListSnapshotsRequest {
        snapshotter: snapshotter.to_string(),
        filters: Vec::new(),
    };
    let mut stream = up.snapshots().list(up.request(req)).await?.into_inner();
    let mut n = 0u64;
    while let Some(page) = stream.message().await? {
        n += page.info.len() as u64;
    }
    Ok(n)
}

/// How many leases of the namespace `counts` (the gateway's own, under its
/// prefix, are bounded by what they hold and are not the client's).
pub async fn lease_count(
    up: &Upstream,
    counts: impl Fn(&str) -> bool,
) -> Result<u64, tonic::Status> {
    let leases = up
        .leases()
        .list(up.request(ListLeasesRequest::default()))
        .await?
        .into_inner()
        .leases;
    Ok(leases.iter().filter(|l| counts(&l.id)).count() as u64)
}

// --- serialising check-and-create ----------------------------------------------------

/// Held across a count and the create it allows, so parallel requests of
/// one sandbox cannot all pass the same last free slot.
pub struct Gate(tokio::sync::Mutex<()>);

impl Gate {
    pub const fn new() -> Self {
        Self(tokio::sync::Mutex::const_new(()))
    }

    pub async fn enter(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.0.lock().await
    }
}

impl Default for Gate {
    fn default() -> Self {
        Self::new()
    }
}

/// Serialises the content check of concurrent loads.
pub static CONTENT_GATE: Gate = Gate::new();
/// Bytes allowed to loads still running (not yet in Content.List, or only
/// partly).
static RESERVED: AtomicU64 = AtomicU64::new(0);

/// Bytes a running load was allowed to write; released when dropped.
#[derive(Debug)]
pub struct Reservation(u64);

impl Reservation {
    /// Checks `adding` against the quota with what is held and reserved,
    /// and reserves it. Call with `CONTENT_GATE` held.
    pub fn take(held: u64, adding: u64, quota: u64) -> Result<Self, Exceeded> {
        check_content(held, RESERVED.load(Ordering::SeqCst), adding, quota)?;
        RESERVED.fetch_add(adding, Ordering::SeqCst);
        Ok(Self(adding))
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        RESERVED.fetch_sub(self.0, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_bytes_counts_only_what_is_not_held_and_each_blob_once() {
        let held = HashMap::from([("sha256:a".to_string(), 100)]);
        let blobs = [
            ("sha256:a", 100),
            ("sha256:b", 7),
            ("sha256:b", 7),
            ("sha256:c", 5),
        ];
        assert_eq!(new_bytes(&held, blobs), 12);
        assert_eq!(
            new_bytes(&held, [("sha256:x", u64::MAX), ("sha256:y", 9)]),
            u64::MAX
        );
    }

    #[test]
    fn content_check_counts_held_reserved_and_new() {
        assert!(check_content(50, 0, 50, 100).is_ok());
        let err = check_content(50, 1, 50, 100).unwrap_err();
        assert!(err.0.contains("quota.content_bytes"), "{err}");
        assert!(err.0.contains("51 B"), "{err}");
        assert!(check_content(0, 0, u64::MAX, u64::MAX - 1).is_err());
        assert!(!err.0.contains('\n'));
    }

    #[test]
    fn count_check_allows_up_to_the_quota() {
        assert!(check_count("lease x", "leases", "quota.leases", 9, 1, 10).is_ok());
        let err = check_count("lease x", "leases", "quota.leases", 10, 1, 10).unwrap_err();
        assert_eq!(
            err.0,
            "refusing lease x: the sandbox has 10 leases, its quota is 10 (quota.leases)"
        );
        let status = tonic::Status::from(err);
        assert_eq!(status.code(), tonic::Code::ResourceExhausted);
    }

    #[test]
    fn reservations_count_until_dropped() {
        // RESERVED is process-wide; this is the only test that takes some.
        let quota = 1000;
        let first = Reservation::take(0, 600, quota).unwrap();
        assert!(Reservation::take(0, 600, quota).is_err());
        drop(first);
        let again = Reservation::take(0, 600, quota).unwrap();
        drop(again);
    }

    #[test]
    fn sizes_are_shown_with_units() {
        assert_eq!(human(512), "512 B");
        assert_eq!(human(2 << 30), "2.0 GiB");
        assert_eq!(human(1536 << 10), "1.5 MiB");
    }
}
