//! Golden policy cases: `fixtures/policy/<case>/{input.json,expected.json}`.
//!
//! Each `input.json` is the [`PolicyInput`] admission computes for a request
//! shaped like berth's CLI builds it (the test's temporary sandbox directory
//! is written as `/var/lib/berth-stack`); `expected.json` is the decision of
//! the repository's `policies/`. The test replays every case directory and
//! also checks that admission still computes the same inputs.
//!
//! `run_busybox_true` is the spec the CLI sends for `berth run --rm busybox
//! true` (`benches/data/run-busybox-true.spec.json`); `benches/policy.rs`
//! times the decision on its `input.json`.
//!
//! Regenerate after a deliberate change with
//! `BERTH_REGEN_GOLDEN=1 cargo test --release -p berth-gateway golden`
//! and review the diff.

use std::path::{Path, PathBuf};

use containerd_client::services::v1 as api;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::PolicyInput;
use crate::admission::testkit::{
    self, bind, container, engine, exec_request, spec, task_request, World, ID,
};
use crate::admission::{self, SPEC_TYPE_URL};

/// Switch that rewrites the case files from the current code and policies.
const REGEN: &str = "BERTH_REGEN_GOLDEN";
/// The spec of the criterion bench.
const BENCH_SPEC: &str = include_str!("../../benches/data/run-busybox-true.spec.json");
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

fn create(w: &World, edit: impl FnOnce(&mut Value, &mut api::Container)) -> PolicyInput {
    let mut s = spec();
    let mut c = container(&s);
    edit(&mut s, &mut c);
    c.spec = Some(testkit::any(SPEC_TYPE_URL, &s));
    admission::create_input(&w.sb, &c)
        .expect("case specs decode")
        .1
}

/// The container `berth run --rm busybox true` creates
/// (`benches/data/run-busybox-true.spec.json`, written by the CLI).
fn run_busybox_true(w: &World) -> PolicyInput {
    let s: Value = serde_json::from_str(BENCH_SPEC).expect("the bench spec is JSON");
    let mut c = container(&s);
    c.labels = [
        ("berth.name", "bench_busybox"),
        ("berth.image", "busybox"),
        ("berth.config", r#"{"user":"","auto_remove":true}"#),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    admission::create_input(&w.sb, &c)
        .expect("the bench spec decodes")
        .1
}

fn exec(w: &World, edit: impl FnOnce(&mut Value)) -> PolicyInput {
    let current = admission::container_create(engine(), &w.sb, container(&spec()))
        .unwrap()
        .0;
    let mut p = testkit::process();
    edit(&mut p);
    admission::exec_input(&w.sb, &current, &exec_request(&p))
        .expect("case process decodes")
        .2
}

fn task(w: &World, edit: impl FnOnce(&mut api::CreateTaskRequest)) -> PolicyInput {
    let mut r = task_request();
    edit(&mut r);
    admission::task_create_input(&w.sb, &r)
}

fn update(w: &World, paths: &[&str], labels: &[(&str, &str)]) -> PolicyInput {
    let current = container(&spec());
    let given = api::Container {
        id: ID.into(),
        labels: labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        ..Default::default()
    };
    let mask = prost_types::FieldMask {
        paths: paths.iter().map(|p| p.to_string()).collect(),
    };
    admission::update_input(&w.sb, &current, &given, Some(mask)).1
}

fn generic(w: &World, method: &str, object: &str) -> PolicyInput {
    PolicyInput::new(
        method,
        object,
        admission::facts::sandbox(&w.sb),
        super::input::Request::Generic,
    )
}

fn caps(s: &mut Value, names: &[&str]) {
    s["process"]["capabilities"] =
        json!({"bounding": names, "effective": names, "permitted": names});
}

/// Every case, built through admission from a docker-like request.
fn cases(w: &World) -> Vec<(&'static str, PolicyInput)> {
    let ws = w.workspace();
    let outside = w.outside();
    let mut default_plus = testkit::DEFAULT_CAP_NAMES.to_vec();
    default_plus.push("CAP_SYS_ADMIN");
    vec![
        ("plain_ok", create(w, |_, _| {})),
        ("run_busybox_true", run_busybox_true(w)),
        (
            "privileged",
            create(w, |s, _| {
                caps(s, &testkit::ALL_CAP_NAMES);
                s["linux"].as_object_mut().unwrap().remove("seccomp");
                s["linux"]["resources"]["devices"] = json!([{"allow": true, "access": "rwm"}]);
            }),
        ),
        (
            "cap_add_sys_admin",
            create(w, |s, _| caps(s, &default_plus)),
        ),
        (
            "seccomp_unconfined",
            create(w, |s, _| drop_key(&mut s["linux"], "seccomp")),
        ),
        (
            "systempaths_unconfined",
            create(w, |s, _| {
                drop_key(&mut s["linux"], "maskedPaths");
                drop_key(&mut s["linux"], "readonlyPaths");
            }),
        ),
        ("pid_host", create(w, |s, _| drop_ns(s, "pid"))),
        ("network_host", create(w, |s, _| drop_ns(s, "network"))),
        (
            "network_none_ok",
            create(w, |s, _| s["annotations"]["berth.network"] = json!("none")),
        ),
        (
            "userns",
            create(w, |s, _| {
                s["linux"]["namespaces"]
                    .as_array_mut()
                    .unwrap()
                    .push(json!({"type": "user"}))
            }),
        ),
        (
            "bind_ok",
            create(w, |s, _| push_mount(s, bind(&format!("{ws}/data"), "/src"))),
        ),
        (
            "bind_outside",
            create(w, |s, _| push_mount(s, bind(&outside, "/src"))),
        ),
        (
            "bind_symlink",
            create(w, |s, _| push_mount(s, bind(&format!("{ws}/link"), "/src"))),
        ),
        (
            "bind_relative",
            create(w, |s, _| push_mount(s, bind("data", "/src"))),
        ),
        (
            "device",
            create(w, |s, _| {
                s["linux"]["devices"] =
                    json!([{"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229}]);
                s["linux"]["resources"]["devices"]
                    .as_array_mut()
                    .unwrap()
                    .push(json!({"allow": true, "type": "c", "major": 10, "minor": 229, "access": "rwm"}));
            }),
        ),
        (
            "hooks",
            create(
                w,
                |s, _| {
                    s["hooks"] =
                        json!({"prestart": [{"path": "/usr/bin/nvidia-container-runtime-hook"}]})
                },
            ),
        ),
        (
            "sysctl",
            create(w, |s, _| {
                s["linux"]["sysctl"] = json!({"net.ipv4.ip_unprivileged_port_start": "0"})
            }),
        ),
        (
            "runtime_other",
            create(w, |_, c| {
                c.runtime.as_mut().unwrap().name = "io.containerd.runsc.v1".into()
            }),
        ),
        (
            "runtime_options",
            create(w, |_, c| {
                c.runtime.as_mut().unwrap().options = Some(prost_types::Any {
                    type_url: "containerd.runc.v1.Options".into(),
                    value: vec![],
                })
            }),
        ),
        (
            "label_containerd_io",
            create(w, |_, c| {
                c.labels
                    .insert("containerd.io/restart.status".into(), "running".into());
            }),
        ),
        (
            "annotation_criu",
            create(w, |s, _| {
                s["annotations"]["org.criu.config"] = json!("/tmp/criu.conf")
            }),
        ),
        (
            "cwd_proc",
            create(w, |s, _| s["process"]["cwd"] = json!("/proc/self/fd/8")),
        ),
        (
            "root_absolute",
            create(w, |s, _| s["root"]["path"] = json!("/")),
        ),
        ("exec_ok", exec(w, |_| {})),
        (
            "exec_cap_add",
            exec(w, |p| {
                p["capabilities"]["bounding"]
                    .as_array_mut()
                    .unwrap()
                    .push(json!("CAP_SYS_PTRACE"))
            }),
        ),
        ("task_ok", task(w, |_| {})),
        (
            "stdio_path",
            task(w, |r| r.stdout = "/etc/cron.d/job".into()),
        ),
        (
            "stdio_binary_uri",
            task(w, |r| r.stderr = "binary:///usr/bin/sh?-c=id".into()),
        ),
        (
            "update_label_ok",
            update(w, &["labels.owner"], &[("owner", "agent")]),
        ),
        ("update_spec", update(w, &["spec"], &[])),
        (
            "namespace_create",
            generic(w, "namespaces.create", "default"),
        ),
        ("images_list_ok", generic(w, "images.list", "")),
        ("diff_apply_unserved", generic(w, "diff.apply", "")),
    ]
}

fn drop_key(v: &mut Value, key: &str) {
    v.as_object_mut().unwrap().remove(key);
}

fn drop_ns(s: &mut Value, kind: &str) {
    s["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .retain(|ns| ns["type"] != kind);
}

fn push_mount(s: &mut Value, m: Value) {
    s["mounts"].as_array_mut().unwrap().push(m);
}

/// Pretty JSON with the temporary directory written as [`STABLE_ROOT`].
fn stable_json(w: &World, input: &PolicyInput) -> String {
    let mut text = serde_json::to_string_pretty(input).unwrap();
    let tmp = w.dir.path().to_string_lossy().into_owned();
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
fn golden_cases() {
    let w = World::new();
    let dir = cases_dir();
    let regen = std::env::var(REGEN).is_ok_and(|v| v == "1");
    let cases = cases(&w);
    assert!(cases.len() >= 15);

    for (name, input) in &cases {
        let case = dir.join(name);
        let text = stable_json(&w, input);
        if regen {
            std::fs::create_dir_all(&case).unwrap();
            std::fs::write(case.join("input.json"), &text).unwrap();
            let stored: PolicyInput = serde_json::from_str(&text).unwrap();
            let expected = serde_json::to_string_pretty(&decision_of(&stored)).unwrap() + "\n";
            std::fs::write(case.join("expected.json"), expected).unwrap();
        } else {
            let stored = std::fs::read_to_string(case.join("input.json"))
                .unwrap_or_else(|e| panic!("case {name}: {e}; run with {REGEN}=1"));
            if stored != text {
                let line = stored
                    .lines()
                    .zip(text.lines())
                    .position(|(a, b)| a != b)
                    .unwrap_or(0);
                panic!(
                    "case {name}: admission computes a different input now (input.json line {}: {:?}, now {:?}); \
                     run with {REGEN}=1 and review the diff",
                    line + 1,
                    stored.lines().nth(line).unwrap_or(""),
                    text.lines().nth(line).unwrap_or(""),
                );
            }
        }
    }

    // Replay every case directory, including ones written by hand.
    let mut replayed = 0;
    let mut entries: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for case in entries.into_iter().filter(|p| p.is_dir()) {
        let read = |file: &str| {
            std::fs::read_to_string(case.join(file))
                .unwrap_or_else(|e| panic!("{}: {e}", case.join(file).display()))
        };
        let input: PolicyInput = serde_json::from_str(&read("input.json")).unwrap_or_else(|e| {
            panic!(
                "{}: input.json does not match the schema: {e}",
                case.display()
            )
        });
        let expected: Expected = serde_json::from_str(&read("expected.json")).unwrap();
        assert_eq!(decision_of(&input), expected, "case {}", case.display());
        replayed += 1;
    }
    assert!(replayed >= cases.len());
}

/// The engine's direct conversion gives the value the JSON would: what the
/// policies see is exactly what `input.json` shows.
#[test]
fn input_values_match_their_json() {
    let w = World::new();
    for (name, input) in cases(&w) {
        let direct = super::value::to_value(&input).unwrap();
        let json: regorus::Value =
            serde_json::from_value(serde_json::to_value(&input).unwrap()).unwrap();
        assert_eq!(direct, json, "case {name}");
    }
}

#[test]
fn golden_cases_cover_both_verdicts_per_method() {
    let w = World::new();
    let cases = cases(&w);
    for method in [
        "containers.create",
        "containers.update",
        "tasks.create",
        "tasks.exec",
    ] {
        let verdicts: Vec<bool> = cases
            .iter()
            .filter(|(_, i)| i.method == method)
            .map(|(_, i)| decision_of(i).allow)
            .collect();
        assert!(
            verdicts.contains(&true) && verdicts.contains(&false),
            "{method}: {verdicts:?}"
        );
    }
}

/// Rough cost of one decision, printed (not asserted; the criterion bench
/// in benches/policy.rs is the measurement).
#[test]
fn decide_cost_printout() {
    let w = World::new();
    let input = create(&w, |_, _| {});
    let generic = generic(&w, "containers.list", "");
    for (what, input) in [("containers.create", &input), ("containers.list", &generic)] {
        let mut times = Vec::new();
        for _ in 0..200 {
            let start = std::time::Instant::now();
            let d = engine().decide(input);
            times.push(start.elapsed());
            assert!(d.allow);
        }
        times.sort();
        eprintln!(
            "decide {what}: median {:?}, p90 {:?}",
            times[times.len() / 2],
            times[times.len() * 9 / 10]
        );
    }
}
