//! Containers.Create admission: the `Any` wrapper, the strict JSON check
//! (duplicate, case-variant and unknown keys), the OCI spec decode, the
//! facts and policy input, the Rego decision and the hardening. The input
//! is the spec's JSON. Whatever is allowed comes out hardened: it decodes
//! and its capabilities are within docker's default set.
#![no_main]

use std::collections::HashSet;

use berth_gateway::admission::{self, strict, DEFAULT_CAPS, SPEC_TYPE_URL};
use berth_gateway_fuzz::{engine, sandbox};
use containerd_client::services::v1 as api;
use libfuzzer_sys::fuzz_target;
use oci_spec::runtime::Spec;
use prost_types::Any;

fuzz_target!(|data: &[u8]| {
    // The strict check alone, on the raw bytes.
    let _ = strict::check(data, &strict::SPEC);

    let container = api::Container {
        id: "3f2a9c1b7d4e5f60718293a4b5c6d7e8".into(),
        image: "docker.io/library/busybox:latest".into(),
        spec: Some(Any {
            type_url: SPEC_TYPE_URL.into(),
            value: data.to_vec(),
        }),
        snapshotter: "overlayfs".into(),
        snapshot_key: "3f2a9c1b7d4e5f60718293a4b5c6d7e8".into(),
        ..Default::default()
    };
    let Ok((hardened, _)) = admission::container_create(engine(), sandbox(), container) else {
        return;
    };
    let any = hardened.spec.expect("a hardened container has a spec");
    let spec: Spec = serde_json::from_slice(&any.value).expect("the hardened spec decodes");
    let allowed: HashSet<_> = DEFAULT_CAPS.into_iter().collect();
    if let Some(caps) = spec.process().as_ref().and_then(|p| p.capabilities().as_ref()) {
        for set in [caps.bounding(), caps.effective(), caps.permitted(), caps.inheritable(), caps.ambient()] {
            for cap in set.iter().flatten() {
                assert!(allowed.contains(cap), "hardened spec keeps {cap:?}");
            }
        }
    }
});
