//! The network of a build and what a sandbox never grants: RUN steps reach
//! the outside only through the sandbox proxy and leave no proxy setting in
//! the image; `security.insecure` and a host network override are refused
//! — by the CLI with a reason, and by the gateway whatever the client — and
//! BuildKit never receives such a solve.
//!
//! "BuildKit received nothing" is read from the Engine's own build history
//! (`Control.ListenBuildHistory` on its `/grpc`): each refused request
//! carries a unique ref or label, and no record may carry it. A legitimate
//! build with such a label is first shown to appear there, so the check can
//! fail.

use std::sync::OnceLock;

use berth_proto::buildkit::control::control_client::ControlClient;
use berth_proto::buildkit::control::SolveRequest;

use crate::common::*;

// --- the proxy in RUN steps ----------------------------------------------------------

const PROXY_NAMES: [&str; 8] = [
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "NO_PROXY",
    "ALL_PROXY",
    "http_proxy",
    "https_proxy",
    "no_proxy",
    "all_proxy",
];

#[test]
fn run_steps_reach_the_outside_only_through_the_proxy() {
    stack();
    let mut cleanup = Cleanup::new();
    let mut images = Images::new();
    let ctx = Context::new(&mut cleanup, "proxy");
    let tag = images.tag("proxy");
    // --no-cache: the probe must run now (the proxy arguments are not part
    // of the cache key, so an earlier run's result would be reused).
    let out = build(&[
        "--no-cache",
        "--progress",
        "plain",
        "--build-arg",
        "BERTH_TEST_OUTSIDE_URL",
        "-t",
        &tag,
        &ctx.dir,
    ]);
    out.ok();
    let log = all_output(&out);
    for name in ["HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy"] {
        let line = format!("probe env: {name}={PROXY_URL}");
        assert!(log.contains(&line), "the step's log lacks {line:?}:\n{out}");
    }
    assert!(
        log.contains(&format!("probe: fetched through the proxy: {OUTSIDE_BODY}")),
        "{out}"
    );
    assert!(log.contains("probe: direct connections failed"), "{out}");

    // What the step left in the image says the same.
    let env = run_image(&tag, &["cat", "/proxy-env.txt"]);
    for name in PROXY_NAMES {
        assert!(
            env.lines().any(|l| l.starts_with(&format!("{name}="))),
            "{name} was not set in the RUN step:\n{env}"
        );
    }
    assert!(
        env.lines().any(|l| l == format!("HTTP_PROXY={PROXY_URL}")),
        "{env}"
    );
    assert_eq!(
        run_image(&tag, &["cat", "/fetched.txt"]).trim(),
        OUTSIDE_BODY
    );
    let direct = run_image(&tag, &["cat", "/direct-error.txt"]);
    assert_eq!(
        direct.matches("can't connect").count(),
        2,
        "both direct fetches must fail to connect:\n{direct}"
    );
}

#[test]
fn proxy_settings_appear_neither_in_the_image_config_nor_its_history() {
    stack();
    let mut cleanup = Cleanup::new();
    let mut images = Images::new();
    let ctx = Context::new(&mut cleanup, "proxy");
    let tag = images.tag("proxy-config");
    build(&[
        "--build-arg",
        "BERTH_TEST_OUTSIDE_URL",
        "-t",
        &tag,
        &ctx.dir,
    ])
    .ok();

    // The config blob the real containerd holds: config and history.
    let config = containerd_config(&tag);
    let history = config["history"]
        .as_array()
        .unwrap_or_else(|| panic!("no history in {config}"));
    assert!(
        history.iter().any(|h| h["created_by"]
            .as_str()
            .is_some_and(|c| c.contains("probe.sh"))),
        "the RUN step is not in the history: {config}"
    );
    let text = config.to_string().to_lowercase();
    for needle in ["proxy", "10.200.0.1", "3128"] {
        assert!(
            !text.contains(needle),
            "the image config or history holds {needle:?}:\n{}",
            serde_json::to_string_pretty(&config).unwrap_or_default()
        );
    }
    let env = inspect_image(&tag)["Config"]["Env"]
        .to_string()
        .to_lowercase();
    assert!(!env.contains("proxy"), "docker image inspect shows {env}");
}

// --- what BuildKit received ---------------------------------------------------------------

/// Shows once that a build carrying a probe label appears in the Engine's
/// history, so that "no record" below means "not received".
fn history_is_observable() {
    static SEEN: OnceLock<()> = OnceLock::new();
    SEEN.get_or_init(|| {
        let mut cleanup = Cleanup::new();
        let ctx = Context::new(&mut cleanup, "outputs");
        let probe = unique("probe-control");
        let dest = ctx.beside("out");
        build(&[
            "--label",
            &format!("{PROBE_LABEL}={probe}"),
            "--output",
            &format!("type=local,dest={dest}"),
            &ctx.dir,
        ])
        .ok();
        assert!(
            eventually(std::time::Duration::from_secs(10), || buildkit_saw(&probe)
                .then_some(()))
            .is_some(),
            "a build labelled {PROBE_LABEL}={probe} is not in the Engine's build history: \
             the history cannot show what BuildKit received"
        );
    });
}

#[track_caller]
fn assert_buildkit_never_saw(probe: &str) {
    history_is_observable();
    assert!(
        !buildkit_saw(probe),
        "BuildKit received the refused request {probe}: the Engine's build history has it"
    );
}

// --- refusals through the CLI ---------------------------------------------------------------

/// Asserts a build refused before it ran: failure (docker's exit 1 for a
/// refused build, or berth's 125 for a flag it refuses), a line naming the
/// rule (one of `keywords`), no raw gRPC status or debug dump.
#[track_caller]
fn assert_build_refused(out: &Out, keywords: &[&str]) {
    assert!(
        out.code == 1 || out.code == 125,
        "expected a refused build (exit 1 or 125):\n{out}"
    );
    let lower = out.stderr.to_lowercase();
    assert!(
        lower
            .lines()
            .any(|l| keywords.iter().any(|k| l.contains(&k.to_lowercase()))),
        "expected a line naming the rule (one of {keywords:?}):\n{out}"
    );
    for raw in [
        "status {",
        "code: ",
        "rpc error",
        "tonic",
        "metadata: ",
        "panicked",
    ] {
        assert!(!lower.contains(raw), "the message leaks {raw:?}:\n{out}");
    }
}

#[test]
fn build_network_host_is_refused_and_never_reaches_buildkit() {
    stack();
    let mut cleanup = Cleanup::new();
    let ctx = Context::new(&mut cleanup, "outputs");
    let probe = unique("probe-network");
    let out = build(&[
        "--network",
        "host",
        "--label",
        &format!("{PROBE_LABEL}={probe}"),
        "--output",
        &format!("type=local,dest={}", ctx.beside("out")),
        &ctx.dir,
    ]);
    assert_build_refused(&out, &["network"]);
    assert!(
        walk(&ctx.beside("out")).is_empty(),
        "a refused build wrote its output"
    );
    assert_buildkit_never_saw(&probe);
}

/// `RUN --security=insecure` needs the Dockerfile labs syntax, which would be
/// pulled from a registry; a client asks for the entitlement with `--allow`.
#[test]
fn build_allow_security_insecure_is_refused_and_never_reaches_buildkit() {
    stack();
    let mut cleanup = Cleanup::new();
    let ctx = Context::new(&mut cleanup, "outputs");
    let probe = unique("probe-allow");
    let dest = ctx.beside("out");
    let out = build(&[
        "--allow",
        "security.insecure",
        "--label",
        &format!("{PROBE_LABEL}={probe}"),
        "--output",
        &format!("type=local,dest={dest}"),
        &ctx.dir,
    ]);
    assert_build_refused(&out, &["--allow", "security.insecure", "entitlement"]);
    assert!(walk(&dest).is_empty(), "a refused build wrote its output");
    assert_buildkit_never_saw(&probe);
}

// --- refusals of raw solves at the gateway -----------------------------------------------------

/// A dockerfile solve as a client other than berth could send it to the
/// gateway's BuildKit socket, with a unique ref and probe label.
fn raw_solve(probe: &str) -> SolveRequest {
    let mut req = SolveRequest {
        r#ref: probe.to_string(),
        // Well formed but for the part under test: a session ID as a
        // client's Session stream would announce it.
        session: unique("raw-session"),
        frontend: "dockerfile.v0".to_string(),
        ..Default::default()
    };
    req.frontend_attrs
        .insert(format!("label:{PROBE_LABEL}"), probe.to_string());
    req
}

/// Sends `req` to the gateway; asserts PermissionDenied with a one-line
/// message naming one of `keywords`, and that BuildKit never saw it.
#[track_caller]
fn assert_gateway_refuses(req: SolveRequest, keywords: &[&str]) {
    stack();
    let probe = req.r#ref.clone();
    let result = block_on(async {
        let mut client = ControlClient::new(gateway_buildkit().await);
        client.solve(req).await
    });
    let status = match result {
        Ok(resp) => panic!("the gateway accepted the solve: {resp:?}"),
        Err(status) => status,
    };
    assert_eq!(
        status.code(),
        tonic::Code::PermissionDenied,
        "expected a policy refusal: {status:?}"
    );
    let msg = status.message().to_lowercase();
    assert_eq!(msg.lines().count(), 1, "one-line message: {status:?}");
    assert!(
        keywords.iter().any(|k| msg.contains(&k.to_lowercase())),
        "the refusal must name the rule (one of {keywords:?}): {status:?}"
    );
    assert_buildkit_never_saw(&probe);
}

#[test]
fn gateway_refuses_a_solve_asking_for_security_insecure() {
    let mut req = raw_solve(&unique("raw-insecure"));
    req.entitlements.push("security.insecure".to_string());
    assert_gateway_refuses(req, &["security.insecure"]);
}

#[test]
fn gateway_refuses_a_solve_asking_for_network_host() {
    let mut req = raw_solve(&unique("raw-net-entitlement"));
    req.entitlements.push("network.host".to_string());
    assert_gateway_refuses(req, &["network.host", "entitlement"]);
}

#[test]
fn gateway_refuses_a_solve_forcing_the_network_mode() {
    let mut req = raw_solve(&unique("raw-net-mode"));
    req.frontend_attrs
        .insert("force-network-mode".to_string(), "host".to_string());
    assert_gateway_refuses(req, &["network"]);
}
