//! The archive plan: oci-layout, index.json, image indexes, manifests,
//! configs and docker's manifest.json, each checked against its digest,
//! names normalised, platforms chosen, layers matched to diff_ids.
//!
//! Structure-aware: a random archive would never get past the digests, so
//! the input is a list of entries that this target packs into a tar (see
//! [`berth_gateway_fuzz::plan_archive`]); blob contents may refer to
//! earlier blobs' digests and sizes, which the target fills in.
#![no_main]

use berth_gateway::load::archive::Archive;
use berth_gateway::load::plan::{plan, Role, Source};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let tar = berth_gateway_fuzz::plan_archive(data);
    let path = berth_gateway_fuzz::input_file(&tar);
    let Ok(archive) = Archive::open(&path) else {
        return;
    };
    let Ok(plan) = plan(&archive) else {
        return;
    };
    // Every document the plan takes from the archive was checked against
    // its digest and size (layers are checked while they are copied).
    for blob in &plan.blobs {
        match &blob.source {
            Source::Archive(loc) if blob.role != Role::Layer => {
                assert_eq!(loc.size, blob.size, "size of {}", blob.digest);
                let digest = archive.digest_of(*loc).expect("a planned blob can be read");
                assert_eq!(digest.as_str(), blob.digest.as_str(), "digest of a planned document");
            }
            Source::Bytes(bytes) => {
                assert_eq!(bytes.len() as u64, blob.size);
                assert_eq!(berth_gateway_fuzz::sha256(bytes), blob.digest.as_str());
            }
            _ => {}
        }
    }
    let _ = plan.layer_count();
    for image in &plan.images {
        for name in &image.names {
            assert!(!name.is_empty(), "an image got an empty name");
        }
    }
});
