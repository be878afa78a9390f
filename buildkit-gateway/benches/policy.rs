//! Cost of the gateway's decisions, without any I/O (target: a policy
//! decision ≤ 50 µs median; see architecture/benchmarks.md).
//!
//! - `decide_containers_create`: `PolicyEngine::decide` on the facts of
//!   `berth run --rm busybox true` (the golden case `run_busybox_true`).
//! - `decide_generic`: the decision every plain forwarded call pays
//!   (`containers.list`).
//! - `input_to_value`: turning that `PolicyInput` into regorus's `Value`
//!   (part of `decide_containers_create`); `input_json_to_value`: the same
//!   through a `serde_json::Value`, as decisions did before, for comparison.
//! - `admit_containers_create`: the whole Containers.Create admission —
//!   strict parse of the spec, facts, policy, hardening, re-serialisation.
//!
//! `data/run-busybox-true.spec.json` is the spec berth's CLI builds for
//! `berth run --rm busybox true` (`cli/src/spec.rs` `build`, docker's
//! default seccomp profile included), as the gateway receives it.
//!
//! Run with `cargo bench -p berth-gateway --bench policy` (or `make bench`).

use std::collections::HashMap;
use std::hint::black_box;
use std::path::{Path, PathBuf};

use berth_gateway::admission;
use berth_gateway::policy::input::{Request, SandboxFacts};
use berth_gateway::policy::{value, PolicyEngine, PolicyInput};
use berth_gateway::sandbox::{Sandbox, RUNTIME};
use containerd_client::services::v1 as api;
use criterion::{criterion_group, criterion_main, BatchSize, Criterion};

const SPEC: &str = include_str!("data/run-busybox-true.spec.json");
const ID: &str = "5c1f0e2a9b7d43c68e1a2f3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f";
const IMAGE: &str = "docker.io/library/busybox:latest";

fn policy_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../policies")
}

/// The sandbox of the local stack, as fixtures/stack/up.sh configures it.
fn sandbox() -> Sandbox {
    Sandbox {
        namespace: "berth-sandbox".into(),
        netns_path: "/run/netns/berth-sandbox".into(),
        proxy_ca: None,
        ca_env: Vec::new(),
        proxy_env: ["HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY"]
            .iter()
            .flat_map(|name| {
                let value = if *name == "NO_PROXY" {
                    "localhost,127.0.0.1,::1"
                } else {
                    "http://10.200.0.1:3128"
                };
                [
                    (name.to_string(), value.to_string()),
                    (name.to_lowercase(), value.to_string()),
                ]
            })
            .collect(),
        volume_roots: vec!["/var/lib/berth-stack/workspace".into()],
        snapshotter: "overlayfs".into(),
        state_dir: "/var/lib/berth-stack/gateway".into(),
        userns: None,
    }
}

fn sandbox_facts(sb: &Sandbox) -> SandboxFacts {
    SandboxFacts {
        namespace: sb.namespace.clone(),
        snapshotter: sb.snapshotter.clone(),
        netns_path: sb.netns_path.to_string_lossy().into_owned(),
        volume_roots: sb
            .volume_roots
            .iter()
            .map(|p| p.to_string_lossy().into_owned())
            .collect(),
    }
}

/// The container berth's CLI sends for `berth run --rm busybox true`.
fn container() -> api::Container {
    let spec: serde_json::Value =
        serde_json::from_str(SPEC).expect("data/run-busybox-true.spec.json is JSON");
    api::Container {
        id: ID.into(),
        labels: HashMap::from([
            ("berth.name".to_string(), "bench_busybox".to_string()),
            ("berth.image".to_string(), "busybox".to_string()),
            (
                "berth.config".to_string(),
                r#"{"user":"","auto_remove":true}"#.to_string(),
            ),
        ]),
        image: IMAGE.into(),
        runtime: Some(api::container::Runtime {
            name: RUNTIME.into(),
            options: None,
        }),
        spec: Some(prost_types::Any {
            type_url: admission::SPEC_TYPE_URL.into(),
            value: serde_json::to_vec(&spec).expect("re-encoding the spec"),
        }),
        snapshotter: "overlayfs".into(),
        snapshot_key: ID.into(),
        ..Default::default()
    }
}

/// The facts admission computes from that container's spec: the golden
/// case `run_busybox_true`, which a unit test keeps in step with admission
/// (`src/policy/golden.rs`).
fn create_input() -> PolicyInput {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fixtures/policy/run_busybox_true/input.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn policy(c: &mut Criterion) {
    let engine = PolicyEngine::load(&policy_dir()).expect("policies/ loads");
    let sb = sandbox();

    // Benchmark the path a real request takes: each input must be allowed,
    // or the numbers would time a refusal instead.
    let create = create_input();
    assert_eq!(
        create.sandbox,
        sandbox_facts(&sb),
        "the case's sandbox is the bench's"
    );
    let decision = engine.decide(&create);
    assert!(
        decision.allow,
        "the busybox run must be allowed by policies/: {decision:?}"
    );
    let list = PolicyInput::new("containers.list", "", sandbox_facts(&sb), Request::Generic);
    let decision = engine.decide(&list);
    assert!(
        decision.allow,
        "containers.list must be allowed by policies/: {decision:?}"
    );
    let container = container();
    if let Err(denied) = admission::container_create(&engine, &sb, container.clone()) {
        panic!("admission refuses the busybox run: {denied}");
    }

    let mut group = c.benchmark_group("policy");
    group.bench_function("decide_containers_create", |b| {
        b.iter(|| engine.decide(black_box(&create)))
    });
    group.bench_function("decide_generic", |b| {
        b.iter(|| engine.decide(black_box(&list)))
    });
    // The input conversion alone, as decide does it, and as it did before
    // (the input as a serde_json::Value, then deserialised into regorus's).
    group.bench_function("input_to_value", |b| {
        b.iter(|| value::to_value(black_box(&create)).expect("the input converts"))
    });
    group.bench_function("input_json_to_value", |b| {
        b.iter(|| {
            serde_json::to_value(black_box(&create))
                .and_then(<regorus::Value as serde::Deserialize>::deserialize)
                .expect("the input converts")
        })
    });
    group.bench_function("admit_containers_create", |b| {
        b.iter_batched(
            || container.clone(),
            |c| admission::container_create(&engine, &sb, c),
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

criterion_group!(benches, policy);
criterion_main!(benches);
