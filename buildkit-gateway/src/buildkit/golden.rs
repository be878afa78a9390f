//! Golden policy cases of `Control.Solve`: `fixtures/policy/solve_*`.
//!
//! Each case is a `SolveRequest` shaped like a docker build (or an attack on
//! one); `input.json` is the `PolicyInput` the gateway computes for it and
//! `expected.json` the decision of the repository's `policies/`. The
//! policy's golden test (`policy::golden`) replays every case directory; this
//! one checks that the gateway still computes the same inputs. Regenerate
//! after a deliberate change with
//! `BERTH_REGEN_GOLDEN=1 cargo test --release -p berth-gateway golden`
//! and review the diff.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use berth_proto::buildkit::control::{CacheOptions, CacheOptionsEntry, Exporter, SolveRequest};
use berth_proto::buildkit::pb;
use serde::{Deserialize, Serialize};

use super::solve::BuildSandbox;
use crate::admission::testkit::{engine, World};
use crate::policy::PolicyInput;

const REGEN: &str = "BERTH_REGEN_GOLDEN";
/// What the temporary sandbox directory is called in the case files.
const STABLE_ROOT: &str = "/var/lib/berth-stack";

#[derive(Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Expected {
    allow: bool,
    reasons: Vec<String>,
}

fn cases_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/policy")
}

fn build() -> BuildSandbox {
    BuildSandbox::from_sandbox(&World::new().sb)
}

/// A fixed platform, so the cases do not depend on the machine.
fn build_sandbox(w: &World) -> BuildSandbox {
    BuildSandbox {
        native_platform: "linux/amd64".into(),
        ..BuildSandbox::from_sandbox(&w.sb)
    }
}

fn attrs(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn exporter(typ: &str, pairs: &[(&str, &str)]) -> Exporter {
    Exporter {
        r#type: typ.into(),
        attrs: attrs(pairs),
    }
}

/// `docker build -t app --build-arg V=1 .` as berth's CLI sends it: the
/// Dockerfile frontend, an `oci` tarball to the session, both exporter
/// fields set.
fn docker_build() -> SolveRequest {
    let out = exporter("oci", &[("name", "docker.io/library/app:latest")]);
    SolveRequest {
        r#ref: "3n5kq0p1w8c4h2y7r6m9t0b1x".into(),
        session: "6g3yq2wgdzubtv8vs3ke5cnzd".into(),
        frontend: "dockerfile.v0".into(),
        frontend_attrs: attrs(&[
            ("filename", "Dockerfile"),
            ("build-arg:V", "1"),
            ("label:org.example.team", "tools"),
            ("target", "final"),
        ]),
        exporter_deprecated: out.r#type.clone(),
        exporter_attrs_deprecated: out.attrs.clone(),
        exporters: vec![out],
        ..Default::default()
    }
}

fn with(edit: impl FnOnce(&mut SolveRequest)) -> SolveRequest {
    let mut r = docker_build();
    edit(&mut r);
    r
}

fn set_attr(r: &mut SolveRequest, k: &str, v: &str) {
    r.frontend_attrs.insert(k.into(), v.into());
}

fn cases() -> Vec<(&'static str, SolveRequest)> {
    vec![
        ("solve_ok", docker_build()),
        (
            "solve_options_ok",
            with(|r| {
                set_attr(r, "no-cache", "");
                set_attr(r, "platform", "linux/amd64");
                set_attr(r, "image-resolve-mode", "pull");
                set_attr(r, "context:base", "oci-layout://berth-sandbox@sha256:0123");
                set_attr(r, "add-hosts", "");
            }),
        ),
        (
            "solve_local_output_ok",
            with(|r| {
                r.exporter_deprecated = "local".into();
                r.exporter_attrs_deprecated = BTreeMap::new();
                r.exporters = vec![exporter("local", &[])];
            }),
        ),
        (
            "solve_insecure",
            with(|r| r.entitlements = vec!["security.insecure".into()]),
        ),
        (
            "solve_entitlement_network_host",
            with(|r| r.entitlements = vec!["network.host".into()]),
        ),
        (
            "solve_network_mode",
            with(|r| set_attr(r, "force-network-mode", "host")),
        ),
        (
            "solve_frontend_gateway",
            with(|r| {
                r.frontend = "gateway.v0".into();
                set_attr(r, "source", "docker/dockerfile:1");
            }),
        ),
        (
            "solve_syntax_arg",
            with(|r| set_attr(r, "build-arg:BUILDKIT_SYNTAX", "evil/frontend")),
        ),
        (
            "solve_llb",
            with(|r| {
                r.frontend = String::new();
                r.frontend_attrs = BTreeMap::new();
                r.definition = Some(pb::Definition {
                    def: vec![vec![0x1a, 0x00]],
                    ..Default::default()
                });
            }),
        ),
        (
            "solve_frontend_inputs",
            with(|r| {
                r.frontend_inputs
                    .insert("context".into(), pb::Definition::default());
            }),
        ),
        (
            "solve_exporter_image",
            with(|r| {
                let out = exporter("image", &[("name", "app"), ("push", "true")]);
                r.exporter_deprecated = out.r#type.clone();
                r.exporter_attrs_deprecated = out.attrs.clone();
                r.exporters = vec![out];
            }),
        ),
        (
            "solve_exporters_disagree",
            with(|r| r.exporter_deprecated = "moby".into()),
        ),
        (
            "solve_cache_import",
            with(|r| {
                r.cache = Some(CacheOptions {
                    imports: vec![CacheOptionsEntry {
                        r#type: "registry".into(),
                        attrs: attrs(&[("ref", "registry.example/cache")]),
                    }],
                    ..Default::default()
                })
            }),
        ),
        (
            "solve_cgroup_parent",
            with(|r| set_attr(r, "cgroup-parent", "/")),
        ),
        (
            "solve_unknown_option",
            with(|r| set_attr(r, "attest:sbom", "")),
        ),
        (
            "solve_platform_other",
            with(|r| set_attr(r, "platform", "linux/arm64")),
        ),
        (
            "solve_context_registry",
            with(|r| set_attr(r, "context:base", "docker-image://alpine")),
        ),
        (
            "solve_add_hosts",
            with(|r| set_attr(r, "add-hosts", "metadata=169.254.169.254")),
        ),
        (
            "solve_session_exporter",
            with(|r| r.enable_session_exporter = true),
        ),
        ("solve_bad_ref", with(|r| r.r#ref = "../x".into())),
    ]
}

fn stable_json(w: &World, input: &PolicyInput) -> String {
    let text = serde_json::to_string_pretty(input).unwrap();
    let tmp = w.dir.path().to_string_lossy().into_owned();
    let mut text = text;
    if let Ok(canonical) = std::fs::canonicalize(w.dir.path()) {
        text = text.replace(canonical.to_string_lossy().as_ref(), STABLE_ROOT);
    }
    text.replace(&tmp, STABLE_ROOT) + "\n"
}

fn decision_of(input: &PolicyInput) -> Expected {
    let d = engine().decide(input);
    assert!(d.error.is_none(), "policy error: {:?}", d.error);
    Expected {
        allow: d.allow,
        reasons: d.reasons,
    }
}

#[test]
fn solve_golden_cases() {
    let w = World::new();
    let bsb = build_sandbox(&w);
    let regen = std::env::var(REGEN).is_ok_and(|v| v == "1");
    let mut verdicts = Vec::new();
    for (name, req) in cases() {
        let input = super::solve_input(&w.sb, &bsb, &req);
        let text = stable_json(&w, &input);
        let case = cases_dir().join(name);
        let stored_input: PolicyInput = serde_json::from_str(&text).unwrap();
        let decision = decision_of(&stored_input);
        if regen {
            std::fs::create_dir_all(&case).unwrap();
            std::fs::write(case.join("input.json"), &text).unwrap();
            let expected = serde_json::to_string_pretty(&decision).unwrap() + "\n";
            std::fs::write(case.join("expected.json"), expected).unwrap();
        } else {
            let stored = std::fs::read_to_string(case.join("input.json"))
                .unwrap_or_else(|e| panic!("case {name}: {e}; run with {REGEN}=1"));
            assert_eq!(
                stored, text,
                "case {name}: the gateway computes a different input now; run with {REGEN}=1 and review the diff"
            );
            let expected: Expected =
                serde_json::from_str(&std::fs::read_to_string(case.join("expected.json")).unwrap())
                    .unwrap();
            assert_eq!(decision, expected, "case {name}");
        }
        verdicts.push((name, decision.allow));
    }
    // Every case whose name ends in _ok is allowed, every other refused.
    for (name, allow) in verdicts {
        assert_eq!(allow, name.ends_with("_ok"), "case {name}");
    }
}

#[test]
fn refusals_name_the_rule_in_one_line() {
    let w = World::new();
    let req = with(|r| r.entitlements = vec!["security.insecure".into()]);
    let err = super::solve(engine(), &w.sb, &build(), req).unwrap_err();
    assert_eq!(
        err.message,
        "refusing build: entitlement security.insecure is not allowed in this sandbox (rule control.solve)"
    );
    assert!(!err.message.contains('\n'));
}

#[test]
fn an_allowed_build_is_forwarded_hardened() {
    let w = World::new();
    let (out, verdict) = super::solve(engine(), &w.sb, &build(), docker_build()).unwrap();
    assert_eq!(verdict.rule, "control.solve");
    assert_eq!(verdict.object, docker_build().r#ref);
    assert_eq!(out.entitlements, vec!["network.host"]);
    assert_eq!(out.frontend_attrs["force-network-mode"], "host");
    assert!(out.frontend_attrs.contains_key("build-arg:HTTPS_PROXY"));
    assert!(out.frontend_attrs.contains_key("build-arg:no_proxy"));
}
