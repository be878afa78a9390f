//! The egress proof suite: nothing in the sandbox leaves except through the
//! proxy, and the proxy lets out only what its allowlist names.
//!
//! Every case is tried from each place a user's code runs — the agent's own
//! process, an inner container (`docker run`), a `docker exec` and a RUN step
//! of `docker build` — and asserts what that user would see: direct TCP, UDP
//! and DNS to the outside world fail at once, IPv6 fails at once (no route,
//! no hang), the allowed URL works through the proxy and the refused one gets
//! the proxy's own refusal (HTTP 403).
//!
//! Each outside target is first shown to answer the host side
//! (`outside_answers_the_host`), so that "blocked" means the sandbox's walls
//! stopped it, not that nothing was listening. RUN steps are checked here
//! only for what `build/network.rs` does not already cover (it checks the
//! allowed URL and direct TCP).
//!
//! Inner containers, execs and RUN steps run `fixtures/egress/probe.sh`
//! (busybox only); the agent's process uses the host's curl, socat and
//! busybox, as an agent's tools would.

mod common;

use std::process::Command;
use std::sync::OnceLock;

use common::*;

/// The outside server over IPv6 (the outside namespace has this address;
/// the sandbox has no IPv6 route).
const OUTSIDE_V6_URL: &str = "http://[fd00:b0:201::2]:8080/hello.txt";
/// A resolver in the outside namespace; answers every A query with the
/// outside server's address.
const OUTSIDE_RESOLVER: &str = "10.201.0.2";
/// The open registry, allowed by the proxy.
const REGISTRY: &str = "10.201.0.4:5000";
/// The same registry on the address the proxy refuses.
const DENIED_REGISTRY: &str = "10.201.0.5:5000";
/// The registry CA as the stack keeps it (host side).
const REGISTRY_CA: &str = "/var/lib/berth-stack/registry/ca.crt";
/// The probe run in containers, execs and RUN steps.
const PROBE: &str = "fixtures/egress/probe.sh";
/// The host's static busybox (nslookup for the agent's process).
const BUSYBOX: &str = "/bin/busybox";

/// A DNS query for `hello.outside` (A, IN) as one UDP datagram.
const DNS_QUERY: &[u8] = b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\
\x05hello\x07outside\x00\x00\x01\x00\x01";

// --- the outside world is there -----------------------------------------------------

/// Runs a command as root on the host (outside the sandbox).
fn host(args: &[&str]) -> Out {
    let mut cmd = Command::new(args[0]);
    cmd.args(&args[1..]);
    run(cmd, Input::Null, COMMAND_TIMEOUT)
}

/// Proves, once per test binary, that every target the suite tries answers
/// the host side: the HTTP server on IPv4 and IPv6, the resolver (UDP and
/// DNS), and the registry on both its addresses over TLS.
fn outside_answers_the_host() {
    static DONE: OnceLock<()> = OnceLock::new();
    DONE.get_or_init(|| {
        stack();
        for url in [OUTSIDE_URL, OUTSIDE_V6_URL] {
            let out = host(&[
                "curl",
                "-sS",
                "-g",
                "--noproxy",
                "*",
                "--max-time",
                "5",
                url,
            ]);
            out.ok();
            assert_eq!(
                out.stdout.trim(),
                OUTSIDE_BODY,
                "{url} from the host:\n{out}"
            );
        }
        let udp = udp_query(Command::new("socat"));
        assert!(
            !udp.stdout.is_empty(),
            "the outside resolver does not answer the host:\n{udp}"
        );
        host(&[BUSYBOX, "nslookup", "hello.outside", OUTSIDE_RESOLVER])
            .ok()
            .stdout_has(&format!("Address: {OUTSIDE_RESOLVER}"));
        for registry in [REGISTRY, DENIED_REGISTRY] {
            let url = format!("https://{registry}/v2/");
            let out = host(&[
                "curl",
                "-sS",
                "--noproxy",
                "*",
                "--max-time",
                "5",
                "--cacert",
                REGISTRY_CA,
                &url,
            ]);
            out.ok();
            assert_eq!(out.stdout.trim(), "{}", "{url} from the host:\n{out}");
        }
    });
}

/// Sends `DNS_QUERY` to the outside resolver with socat and prints the
/// reply (nothing when none came within 2 s). `cmd` runs socat, on the host
/// or in the sandbox.
fn udp_query(mut cmd: Command) -> Out {
    cmd.args(["-T2", "-", &format!("UDP:{OUTSIDE_RESOLVER}:53")]);
    run(cmd, Input::Bytes(DNS_QUERY.to_vec()), COMMAND_TIMEOUT)
}

/// The same as the agent in the sandbox.
fn agent_udp_query() -> Out {
    let mut cmd = Command::new(repo_root().join("fixtures/stack/sandbox"));
    cmd.arg("socat");
    udp_query(cmd)
}

/// curl as the agent, bounded; the agent's environment names the proxy.
fn agent_curl(args: &[&str]) -> Out {
    let mut full = vec!["curl", "-sS", "-g", "--max-time", "5"];
    full.extend_from_slice(args);
    sandbox(&full)
}

/// The agent's copy of the registry CA, where docker looks for it.
fn agent_ca(registry: &str) -> String {
    format!("/home/{AGENT}/.docker/certs.d/{registry}/ca.crt")
}

/// curl's exit status for "could not connect"; 28 would be its timeout.
const CURL_COULDNT_CONNECT: i32 = 7;

// --- the agent's own process -----------------------------------------------------------

#[test]
fn agent_direct_tcp_to_the_outside_fails() {
    outside_answers_the_host();
    let out = agent_curl(&["--noproxy", "*", OUTSIDE_URL]);
    out.code(CURL_COULDNT_CONNECT);
    assert!(!out.stdout.contains(OUTSIDE_BODY), "{out}");
    let url = format!("https://{REGISTRY}/v2/");
    agent_curl(&["--noproxy", "*", "--cacert", &agent_ca(REGISTRY), &url])
        .code(CURL_COULDNT_CONNECT);
}

#[test]
fn agent_udp_to_the_outside_gets_nothing() {
    outside_answers_the_host();
    let out = agent_udp_query();
    assert!(
        out.stdout.is_empty(),
        "a UDP reply reached the sandbox:\n{out}"
    );
    out.stderr_has("Operation not permitted");
}

#[test]
fn agent_dns_to_an_outside_resolver_fails() {
    outside_answers_the_host();
    for server in [Some(OUTSIDE_RESOLVER), None] {
        let mut args = vec![BUSYBOX, "nslookup", "hello.outside"];
        args.extend(server);
        let out = sandbox(&args);
        out.code(1);
        assert!(
            !out.stdout.contains("Name:"),
            "a name resolved in the sandbox:\n{out}"
        );
        // The nftables reject (any outside resolver), or nothing listening
        // (a resolver the host configures on its own loopback).
        let err = out.stderr.to_lowercase();
        assert!(
            err.contains("operation not permitted") || err.contains("connection refused"),
            "expected the send to fail at once:\n{out}"
        );
    }
}

#[test]
fn agent_ipv6_to_the_outside_fails_at_once() {
    outside_answers_the_host();
    // Could not connect (no route), not curl's timeout.
    agent_curl(&["--noproxy", "*", OUTSIDE_V6_URL]).code(CURL_COULDNT_CONNECT);
    // The proxy refuses it too.
    let out = agent_curl(&["-o", "/dev/null", "-w", "%{http_code}", OUTSIDE_V6_URL]);
    assert_eq!(out.stdout, "403", "{out}");
}

#[test]
fn agent_reaches_the_allowed_url_and_registry_through_the_proxy() {
    outside_answers_the_host();
    // No --proxy: the agent's HTTP_PROXY/HTTPS_PROXY do it.
    let out = agent_curl(&[OUTSIDE_URL]);
    out.ok();
    assert_eq!(out.stdout.trim(), OUTSIDE_BODY, "{out}");
    let url = format!("https://{REGISTRY}/v2/");
    let out = agent_curl(&["--cacert", &agent_ca(REGISTRY), &url]);
    out.ok();
    assert_eq!(out.stdout.trim(), "{}", "{out}");
}

#[test]
fn agent_gets_the_proxys_refusal_for_the_refused_url_and_registry() {
    outside_answers_the_host();
    let out = agent_curl(&["-w", "\n%{http_code}", DENIED_URL]);
    out.ok();
    assert!(out.stdout.ends_with("\n403"), "{out}");
    assert!(!out.stdout.contains(OUTSIDE_BODY), "{out}");
    // HTTPS: the CONNECT itself is refused, which curl reports as such.
    let url = format!("https://{DENIED_REGISTRY}/v2/");
    agent_curl(&["--cacert", &agent_ca(DENIED_REGISTRY), &url])
        .failed()
        .stderr_has("CONNECT tunnel failed, response 403");
}

// --- inner containers and execs --------------------------------------------------------

/// One probe result: `egress CASE rc=N: OUTPUT`.
struct Probe {
    rc: i32,
    output: String,
}

fn probe_script() -> String {
    let path = repo_root().join(PROBE);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Reads the probe's line for `case` out of `out`'s stdout.
#[track_caller]
fn probe_result(out: &Out, case: &str) -> Probe {
    let prefix = format!("egress {case} rc=");
    let line = out
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("the probe printed no result for {case}:\n{out}"));
    let (rc, output) = line
        .split_once(": ")
        .unwrap_or_else(|| panic!("malformed probe line {line:?}:\n{out}"));
    Probe {
        rc: rc.parse().unwrap_or_else(|_| panic!("bad rc in {line:?}")),
        output: output.trim().to_string(),
    }
}

/// Where a probe runs.
#[derive(Clone, Copy, Debug)]
enum Place {
    Run,
    Exec,
}

/// Runs the probe for `case` in a new container or by exec in a running one.
fn probe_in(place: Place, case: &str) -> Probe {
    let script = probe_script();
    let out = match place {
        Place::Run => docker(&["run", "--rm", "busybox", "sh", "-c", &script, "probe", case]),
        Place::Exec => {
            let name = unique("egress-exec");
            let mut cleanup = Cleanup::new();
            cleanup.container(&name);
            docker(&["run", "-d", "--name", &name, "busybox", "sleep", "120"]).ok();
            docker(&["exec", &name, "sh", "-c", &script, "probe", case])
        }
    };
    out.ok();
    probe_result(&out, case)
}

/// Asserts an attempt failed at once (not by the probe's 5 s timeout) with
/// one of `words`, and that nothing from the outside came back.
#[track_caller]
fn assert_blocked(what: &str, p: &Probe, words: &[&str]) {
    assert_ne!(p.rc, 0, "{what} succeeded: {}", p.output);
    assert_ne!(p.rc, 143, "{what} hung until the timeout: {}", p.output);
    assert!(
        words.iter().any(|w| p.output.contains(w)),
        "{what}: expected one of {words:?} in {:?}",
        p.output
    );
    assert!(
        !p.output.contains(OUTSIDE_BODY),
        "{what} reached the outside: {}",
        p.output
    );
    assert!(
        !p.output.contains("Name:"),
        "{what} resolved a name: {}",
        p.output
    );
}

const PLACES: [Place; 2] = [Place::Run, Place::Exec];

#[test]
fn containers_direct_tcp_to_the_outside_fails() {
    outside_answers_the_host();
    for place in PLACES {
        let p = probe_in(place, "tcp");
        assert_blocked(&format!("{place:?}: direct TCP"), &p, &["can't connect"]);
    }
}

#[test]
fn containers_udp_to_the_outside_gets_nothing() {
    outside_answers_the_host();
    for place in PLACES {
        let p = probe_in(place, "udp");
        assert_blocked(&format!("{place:?}: UDP"), &p, &["Operation not permitted"]);
    }
}

#[test]
fn containers_dns_fails() {
    outside_answers_the_host();
    for place in PLACES {
        let p = probe_in(place, "dns");
        assert_blocked(
            &format!("{place:?}: DNS"),
            &p,
            &["Operation not permitted", "no servers could be reached"],
        );
    }
}

#[test]
fn containers_ipv6_to_the_outside_fails_at_once() {
    outside_answers_the_host();
    for place in PLACES {
        let p = probe_in(place, "ipv6");
        assert_blocked(&format!("{place:?}: IPv6"), &p, &["Network is unreachable"]);
    }
}

#[test]
fn containers_reach_the_allowed_url_through_the_proxy() {
    outside_answers_the_host();
    for place in PLACES {
        let p = probe_in(place, "proxy-allowed");
        assert_eq!(p.rc, 0, "{place:?}: {}", p.output);
        assert_eq!(p.output, OUTSIDE_BODY, "{place:?}");
    }
}

#[test]
fn containers_get_the_proxys_refusal_for_the_refused_url() {
    outside_answers_the_host();
    for place in PLACES {
        let p = probe_in(place, "proxy-refused");
        assert_blocked(&format!("{place:?}: refused URL"), &p, &["403"]);
    }
}

// --- RUN steps -------------------------------------------------------------------------

/// What `build/network.rs` does not check: UDP, DNS, IPv6 and the proxy's
/// refusal, from a RUN step (host network mode on the BuildKit host, i.e.
/// the sandbox's network namespace).
#[test]
fn run_steps_get_no_udp_dns_or_ipv6_and_see_the_proxys_refusal() {
    outside_answers_the_host();
    let mut cleanup = Cleanup::new();
    let root = agent_dir(&mut cleanup, "egress-build");
    let ctx = format!("{root}/ctx");
    let dest = format!("{root}/out");
    std::fs::create_dir(&ctx).expect("context dir");
    std::fs::write(format!("{ctx}/probe.sh"), probe_script()).expect("probe.sh");
    std::fs::write(
        format!("{ctx}/Dockerfile"),
        "FROM busybox\nCOPY probe.sh /probe.sh\n\
         RUN sh /probe.sh udp dns ipv6 proxy-refused > /egress.txt\n\
         FROM scratch\nCOPY --from=0 /egress.txt /\n",
    )
    .expect("Dockerfile");
    let mut chown = Command::new("chown");
    chown.args(["-R", &format!("{AGENT}:{AGENT}"), &root]);
    run(chown, Input::Null, COMMAND_TIMEOUT).ok();

    // --no-cache: the probe must run now, not come from an earlier build.
    let out = sandbox(&[
        "docker",
        "build",
        "--no-cache",
        "--output",
        &format!("type=local,dest={dest}"),
        &ctx,
    ]);
    out.ok();
    let text = std::fs::read_to_string(format!("{dest}/egress.txt"))
        .unwrap_or_else(|e| panic!("the build wrote no egress.txt ({e}):\n{out}"));
    let report = Out {
        cmd: "RUN sh /probe.sh".into(),
        code: 0,
        stdout: text,
        stderr: String::new(),
    };
    assert_blocked(
        "RUN: UDP",
        &probe_result(&report, "udp"),
        &["Operation not permitted"],
    );
    assert_blocked(
        "RUN: DNS",
        &probe_result(&report, "dns"),
        &["Operation not permitted", "no servers could be reached"],
    );
    assert_blocked(
        "RUN: IPv6",
        &probe_result(&report, "ipv6"),
        &["Network is unreachable"],
    );
    assert_blocked(
        "RUN: refused URL",
        &probe_result(&report, "proxy-refused"),
        &["403"],
    );
}

// --- the proxy's CA bundle (gateway config `proxy_ca`) ------------------------------
//
// The stack configures the registry CA as the proxy's CA bundle: it is what
// the sandbox must trust to talk TLS to the outside (a TLS-intercepting
// proxy's CA plays the same part).

const PROXY_CA_IN_CONTAINERS: &str = "/etc/berth/proxy-ca.crt";
const CA_VARS: [&str; 5] = [
    "SSL_CERT_FILE",
    "CURL_CA_BUNDLE",
    "REQUESTS_CA_BUNDLE",
    "GIT_SSL_CAINFO",
    "NODE_EXTRA_CA_CERTS",
];

#[test]
fn containers_and_execs_get_the_proxy_ca_read_only_with_the_usual_variables() {
    stack();
    let ca = std::fs::read_to_string(REGISTRY_CA).expect("the stack's CA");
    let name = unique("proxy-ca");
    let mut cleanup = Cleanup::new();
    cleanup.container(&name);
    // The user's own SSL_CERT_FILE gives way to the sandbox's.
    docker(&[
        "run",
        "-d",
        "--name",
        &name,
        "-e",
        "SSL_CERT_FILE=/tmp/mine.pem",
        "busybox",
        "sleep",
        "60",
    ])
    .ok();
    let shown = docker(&["exec", &name, "cat", PROXY_CA_IN_CONTAINERS]);
    assert_eq!(
        shown.ok().stdout,
        ca,
        "the container sees another CA bundle"
    );
    let env = docker(&["exec", &name, "env"]);
    for v in CA_VARS {
        env.stdout_has(&format!("{v}={PROXY_CA_IN_CONTAINERS}"));
    }
    assert!(!env.stdout.contains("/tmp/mine.pem"), "{env}");
    let write = docker(&[
        "exec",
        &name,
        "sh",
        "-c",
        &format!("echo x >> {PROXY_CA_IN_CONTAINERS}"),
    ]);
    write.failed().stderr_has("Read-only file system");
}
