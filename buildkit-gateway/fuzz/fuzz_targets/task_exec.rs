//! Tasks.Exec admission: the process spec's `Any`, the strict JSON check,
//! the decode, the facts and policy input against the container's
//! capabilities, the decision and the hardening. The input is the process
//! JSON; the container is the one `docker run busybox` creates.
#![no_main]

use std::collections::HashSet;

use berth_gateway::admission::{self, strict, DEFAULT_CAPS, PROCESS_TYPE_URL, SPEC_TYPE_URL};
use berth_gateway_fuzz::{engine, sandbox};
use containerd_client::services::v1 as api;
use libfuzzer_sys::fuzz_target;
use oci_spec::runtime::Process;
use prost_types::Any;

const ID: &str = "3f2a9c1b7d4e5f60718293a4b5c6d7e8";

fn container() -> api::Container {
    // The spec `docker run busybox sh` creates, as the gateway forwarded it.
    let spec = include_bytes!("../seeds/container_create/docker_run_busybox");
    api::Container {
        id: ID.into(),
        spec: Some(Any {
            type_url: SPEC_TYPE_URL.into(),
            value: spec.to_vec(),
        }),
        ..Default::default()
    }
}

fuzz_target!(|data: &[u8]| {
    let _ = strict::check(data, &strict::PROCESS);
    let req = api::ExecProcessRequest {
        container_id: ID.into(),
        exec_id: "exec-1".into(),
        stdout: berth_proto::STDIO_RELAY.into(),
        stderr: berth_proto::STDIO_RELAY.into(),
        spec: Some(Any {
            type_url: PROCESS_TYPE_URL.into(),
            value: data.to_vec(),
        }),
        ..Default::default()
    };
    let Ok((hardened, _)) = admission::task_exec(engine(), sandbox(), &container(), req) else {
        return;
    };
    let any = hardened.spec.expect("a hardened exec has a process");
    let process: Process = serde_json::from_slice(&any.value).expect("the hardened process decodes");
    let allowed: HashSet<_> = DEFAULT_CAPS.into_iter().collect();
    if let Some(caps) = process.capabilities() {
        for set in [caps.bounding(), caps.effective(), caps.permitted(), caps.inheritable(), caps.ambient()] {
            for cap in set.iter().flatten() {
                assert!(allowed.contains(cap), "hardened process keeps {cap:?}");
            }
        }
    }
});
