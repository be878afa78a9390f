//! The image import started before `Control.Solve` returns.
//!
//! BuildKit's `oci` exporter is done when its vertex, `exporting to oci
//! image format`, completes; Solve answers some 30 ms later (BuildKit
//! records the build's history first). On a cached rebuild the import takes
//! about 20 ms, so it is started as soon as the vertex completes, with the
//! root the exporter's status lines named (`exporting manifest list
//! sha256:…`, else the one `exporting manifest sha256:…`). When Solve
//! returns, its own root descriptor decides: an early import of exactly
//! that root is kept, anything else is imported again with the real root,
//! so a wrong guess costs time, never the result.
//!
//! An early import names the image before the solve has returned. Should
//! the solve still fail, the image stays imported and tagged: docker's own
//! exporter names images at the same point, before its solve returns.

use std::collections::{BTreeMap, BTreeSet};

use tokio::task::JoinHandle;

use super::progress::{SolveStatus, Time};
use super::store::layout::{Descriptor, Loaded};
use super::store::{ExportStore, StoreError};
use crate::client::Gateway;

/// The name of the `oci` exporter's vertex (BuildKit 0.13).
pub const EXPORTER_VERTEX: &str = "exporting to oci image format";
/// Status ID prefixes the exporter reports its documents under. An
/// attestation manifest (`exporting attestation manifest sha256:…`) has
/// neither.
const MANIFEST: &str = "exporting manifest ";
const MANIFEST_LIST: &str = "exporting manifest list ";

/// The image's root among the exporter's status IDs: the manifest list if
/// exactly one was reported, else the manifest if exactly one was; `None`
/// when that is ambiguous.
pub fn root_candidate<'a>(ids: impl IntoIterator<Item = &'a str>) -> Option<String> {
    let mut lists = BTreeSet::new();
    let mut manifests = BTreeSet::new();
    for id in ids {
        if let Some(d) = id.strip_prefix(MANIFEST_LIST) {
            lists.insert(d);
        } else if let Some(d) = id.strip_prefix(MANIFEST) {
            manifests.insert(d);
        }
    }
    let only = |set: BTreeSet<&str>| match set.len() {
        1 => set.into_iter().next().map(str::to_string),
        _ => None,
    };
    match lists.len() {
        0 => only(manifests),
        _ => only(lists),
    }
}

/// What the status stream told about the exporter so far.
#[derive(Debug, Default)]
pub struct ExporterWatch {
    /// Document status IDs per vertex (statuses may precede their vertex).
    ids: BTreeMap<String, BTreeSet<String>>,
    /// The exporter's vertex finished (well or not): nothing more to say.
    over: bool,
}

impl ExporterWatch {
    /// Takes one update; the root's digest, once, when the exporter's
    /// vertex completed without error and its statuses name one root.
    pub fn observe(&mut self, s: &SolveStatus) -> Option<String> {
        if self.over {
            return None;
        }
        for st in &s.statuses {
            if st.id.starts_with(MANIFEST) {
                self.ids
                    .entry(st.vertex.clone())
                    .or_default()
                    .insert(st.id.clone());
            }
        }
        let v = s
            .vertexes
            .iter()
            .find(|v| v.name == EXPORTER_VERTEX && v.completed.is_some())?;
        self.over = true;
        if !v.error.is_empty() {
            return None;
        }
        let ids = self.ids.get(&v.digest)?;
        root_candidate(ids.iter().map(String::as_str))
    }
}

/// Which import a build keeps once Solve named the real root.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The early import was of the real root.
    KeepEarly,
    /// None ran, it failed, or it imported another root: import again.
    Import,
}

/// `early`: the root an early import finished with, if one did.
pub fn verdict(early: Option<&Descriptor>, real: &Descriptor) -> Verdict {
    match early {
        Some(d) if d == real => Verdict::KeepEarly,
        _ => Verdict::Import,
    }
}

/// What an early import ended with: the root it imported, and how.
type Outcome = Result<(Descriptor, Loaded), StoreError>;

/// The import of one build's export, early if the status stream allows.
pub struct Import {
    export: ExportStore,
    gw: Gateway,
    names: Vec<String>,
    watch: ExporterWatch,
    early: Option<(Time, JoinHandle<Outcome>)>,
}

/// A finished import.
#[derive(Debug)]
pub struct Done {
    /// When the import that counts started (the progress shows it).
    pub started: Time,
    pub loaded: Loaded,
}

impl Import {
    /// `names`: the `-t` values.
    pub fn new(export: ExportStore, gw: Gateway, names: Vec<String>) -> Self {
        Import {
            export,
            gw,
            names,
            watch: ExporterWatch::default(),
            early: None,
        }
    }

    /// Takes a status update while the solve runs; starts the early import
    /// when the exporter finished. Needs a tokio runtime.
    pub fn observe(&mut self, s: &SolveStatus) {
        if self.early.is_some() {
            return;
        }
        let Some(digest) = self.watch.observe(s) else {
            return;
        };
        let (export, gw, names) = (self.export.clone(), self.gw.clone(), self.names.clone());
        let task = tokio::spawn(async move {
            let Some(root) = export.describe(&gw, &digest).await? else {
                return Err(StoreError::Invalid(format!(
                    "the export holds no image document {digest}"
                )));
            };
            let loaded = export.finish(&gw, &root, &names).await?;
            Ok((root, loaded))
        });
        self.early = Some((chrono::Utc::now(), task));
    }

    /// The import of `root`, the root Solve returned: the early one if it
    /// imported exactly that, else a new one.
    pub async fn finish(mut self, root: &Descriptor) -> Result<Done, StoreError> {
        if let Some((started, Ok((early_root, loaded)))) = self.settle_early().await {
            if verdict(Some(&early_root), root) == Verdict::KeepEarly {
                return Ok(Done { started, loaded });
            }
        }
        let started = chrono::Utc::now();
        let loaded = self.export.finish(&self.gw, root, &self.names).await?;
        Ok(Done { started, loaded })
    }

    /// Waits for an early import when the solve failed, so none is left
    /// half done. What it imported and named stays (see the module doc).
    pub async fn settle(mut self) {
        let _ = self.settle_early().await;
    }

    /// When the early import started and what it ended with, if one ran.
    async fn settle_early(&mut self) -> Option<(Time, Outcome)> {
        let (started, task) = self.early.take()?;
        let result = task
            .await
            .unwrap_or_else(|e| Err(StoreError::Invalid(format!("the early import failed: {e}"))));
        Some((started, result))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::build::progress::{Vertex, VertexStatus};

    const EXPORTER: &str = "sha256:e0";
    const OTHER: &str = "sha256:s1";

    fn hex(c: char) -> String {
        format!("sha256:{}", c.to_string().repeat(64))
    }

    fn statuses(vertex: &str, ids: Vec<String>) -> SolveStatus {
        SolveStatus {
            statuses: ids
                .into_iter()
                .map(|id| VertexStatus {
                    id,
                    vertex: vertex.to_string(),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }
    }

    fn exporter(completed: bool, error: &str) -> SolveStatus {
        let now = chrono::Utc::now();
        SolveStatus {
            vertexes: vec![Vertex {
                digest: EXPORTER.into(),
                name: EXPORTER_VERTEX.into(),
                started: Some(now),
                completed: completed.then_some(now),
                error: error.into(),
                ..Default::default()
            }],
            ..Default::default()
        }
    }

    /// Feeds `updates` in order; every root the watch gave.
    fn run(updates: &[SolveStatus]) -> Vec<String> {
        let mut w = ExporterWatch::default();
        updates.iter().filter_map(|u| w.observe(u)).collect()
    }

    fn ids(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn the_single_manifest_is_the_root() {
        let (m, c) = (hex('a'), hex('c'));
        let got = run(&[
            exporter(false, ""),
            statuses(EXPORTER, ids(&["exporting layers"])),
            statuses(EXPORTER, vec![format!("exporting manifest {m}")]),
            statuses(EXPORTER, vec![format!("exporting config {c}")]),
            exporter(true, ""),
        ]);
        assert_eq!(got, [m]);
    }

    #[test]
    fn the_manifest_list_wins_over_its_manifests() {
        let (m1, m2, l) = (hex('1'), hex('2'), hex('f'));
        let got = run(&[
            statuses(
                EXPORTER,
                vec![
                    format!("exporting manifest {m1}"),
                    format!("exporting manifest {m2}"),
                ],
            ),
            statuses(EXPORTER, vec![format!("exporting manifest list {l}")]),
            exporter(true, ""),
        ]);
        assert_eq!(got, [l]);
    }

    #[test]
    fn two_manifests_without_a_list_give_no_root() {
        let got = run(&[
            statuses(
                EXPORTER,
                vec![
                    format!("exporting manifest {}", hex('1')),
                    format!("exporting manifest {}", hex('2')),
                ],
            ),
            exporter(true, ""),
        ]);
        assert!(got.is_empty());
    }

    #[test]
    fn attestation_manifests_are_not_roots() {
        let m = hex('a');
        let got = run(&[
            statuses(
                EXPORTER,
                vec![
                    format!("exporting manifest {m}"),
                    format!("exporting attestation manifest {}", hex('b')),
                ],
            ),
            exporter(true, ""),
        ]);
        assert_eq!(got, [m]);
    }

    #[test]
    fn a_failed_or_unfinished_exporter_gives_no_root() {
        let m = format!("exporting manifest {}", hex('a'));
        assert!(run(&[statuses(EXPORTER, vec![m.clone()]), exporter(true, "boom")]).is_empty());
        assert!(run(&[statuses(EXPORTER, vec![m.clone()]), exporter(false, "")]).is_empty());
        // Once over, a later update changes nothing.
        assert!(run(&[
            statuses(EXPORTER, vec![m]),
            exporter(true, "boom"),
            exporter(true, ""),
        ])
        .is_empty());
    }

    #[test]
    fn the_root_is_given_once_and_only_from_the_exporters_statuses() {
        let m = hex('a');
        let got = run(&[
            statuses(OTHER, vec![format!("exporting manifest {}", hex('9'))]),
            statuses(EXPORTER, vec![format!("exporting manifest {m}")]),
            exporter(true, ""),
            exporter(true, ""),
        ]);
        assert_eq!(got, [m]);
    }

    #[test]
    fn statuses_in_the_completing_update_count() {
        let m = hex('a');
        let mut last = exporter(true, "");
        last.statuses = statuses(EXPORTER, vec![format!("exporting manifest {m}")]).statuses;
        assert_eq!(run(&[last]), [m]);
    }

    #[test]
    fn root_candidates() {
        let cases: &[(&[&str], Option<&str>)] = &[
            (&[], None),
            (&["exporting layers"], None),
            (&["exporting manifest sha256:a"], Some("sha256:a")),
            // The same status seen twice (started, then completed).
            (
                &["exporting manifest sha256:a", "exporting manifest sha256:a"],
                Some("sha256:a"),
            ),
            (
                &["exporting manifest sha256:a", "exporting manifest sha256:b"],
                None,
            ),
            (
                &[
                    "exporting manifest sha256:a",
                    "exporting manifest list sha256:l",
                ],
                Some("sha256:l"),
            ),
            (
                &[
                    "exporting manifest list sha256:l",
                    "exporting manifest list sha256:k",
                ],
                None,
            ),
            (&["exporting attestation manifest sha256:t"], None),
            (&["exporting config sha256:c"], None),
        ];
        for (ids, want) in cases {
            assert_eq!(
                root_candidate(ids.iter().copied()).as_deref(),
                *want,
                "{ids:?}"
            );
        }
    }

    #[test]
    fn the_early_import_counts_only_for_the_same_root() {
        let real = Descriptor {
            media_type: "application/vnd.oci.image.manifest.v1+json".into(),
            digest: hex('a'),
            size: 480,
        };
        let other_digest = Descriptor {
            digest: hex('b'),
            ..real.clone()
        };
        let other_size = Descriptor {
            size: 481,
            ..real.clone()
        };
        let other_type = Descriptor {
            media_type: "application/vnd.oci.image.index.v1+json".into(),
            ..real.clone()
        };
        assert_eq!(verdict(Some(&real), &real), Verdict::KeepEarly);
        for d in [&other_digest, &other_size, &other_type] {
            assert_eq!(verdict(Some(d), &real), Verdict::Import, "{d:?}");
        }
        assert_eq!(verdict(None, &real), Verdict::Import);
    }
}
