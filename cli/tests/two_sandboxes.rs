//! Two sandboxes on one containerd and one gateway host (issue 5, item 3):
//! nothing of one is visible to, or changeable by, the other.
//!
//! Sandbox A is the stack's first sandbox, B its second (stack contract,
//! "Sandbox B"): each has its own gateway pinned to its own containerd
//! namespace. One sandbox makes containers (running with logs, stopped),
//! an exec, images (a tag and, in A, a build of its own), content, snapshots
//! and a lease while the other subscribes to events; then the other tries
//! every way it has to see or change them, with berth's CLI and with `ctr`
//! on its own gateway socket, also naming the first sandbox's namespace.
//! Each attempt must come back empty or not found, and the first sandbox's
//! objects must be unchanged in the REAL containerd afterwards.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::sandbox_b::*;
use common::*;

/// What one sandbox made, by the names and IDs the other could try.
struct Objects {
    side: Side,
    running: String,
    running_id: String,
    stopped: String,
    stopped_id: String,
    /// A tag of busybox (`NAME:v1`) and its full containerd name.
    tag: String,
    tag_ref: String,
    /// A's own build: its tag and image ID (config digest); None in B.
    built: Option<(String, String)>,
    lease: String,
    /// The line the running container logged.
    log_line: String,
}

impl Objects {
    /// The names a user of the other sandbox could type.
    fn names(&self) -> Vec<String> {
        let mut v = vec![
            self.running.clone(),
            self.running_id.clone(),
            self.stopped.clone(),
            self.stopped_id.clone(),
            self.tag.clone(),
        ];
        if let Some((tag, id)) = &self.built {
            v.push(tag.clone());
            v.push(id.clone());
        }
        v
    }
}

fn id_of(side: Side, name: &str) -> String {
    let out = side.docker(&["inspect", "-f", "{{.Id}}", name]);
    out.ok();
    out.stdout.trim().to_string()
}

/// Makes the objects in `side`: a running container that logs, a stopped
/// one, an exec, a tag, a lease and (with `build`) an image built there.
fn make(side: Side, made: &mut Made, build: bool) -> Objects {
    let tag_name = unique(&format!("two-{side:?}-tag").to_lowercase());
    let log_line = unique("log-line");
    let exec_line = unique("exec-line");
    let running = unique(&format!("two-{side:?}-run").to_lowercase());
    made.container(side, &running);
    side.docker(&[
        "run",
        "-d",
        "--name",
        &running,
        "busybox",
        "sh",
        "-c",
        &format!("echo {log_line}; sleep 600"),
    ])
    .ok();
    let stopped = unique(&format!("two-{side:?}-stopped").to_lowercase());
    made.container(side, &stopped);
    side.docker(&["run", "--name", &stopped, "busybox", "true"])
        .ok();
    side.docker(&["exec", &running, "echo", &exec_line])
        .ok()
        .stdout_has(&exec_line);
    let tag = format!("{tag_name}:v1");
    made.image(side, &full_ref(&tag));
    side.docker(&["tag", "busybox", &tag]).ok();
    let lease = unique("two-lease");
    made.lease(side, &lease);
    side.ctr(side.namespace(), &["leases", "create", "--id", &lease])
        .ok();
    let built = build.then(|| {
        let built_tag = unique(&format!("two-{side:?}-built").to_lowercase());
        made.image(side, &full_ref(&built_tag));
        let dockerfile = format!("FROM busybox\nRUN echo {built_tag} > /unique\n");
        let dir = format!("{WORKSPACE}/{built_tag}");
        side.run(&["mkdir", &dir]).ok();
        let out = side.run(&[
            "sh",
            "-c",
            &format!(
                "printf '%s' \"$1\" > {dir}/Dockerfile && docker build -q -t {built_tag} {dir}"
            ),
            "sh",
            &dockerfile,
        ]);
        let _ = std::fs::remove_dir_all(&dir);
        out.ok();
        let id = side.docker(&["image", "inspect", "-f", "{{.Id}}", &built_tag]);
        id.ok();
        // Run once: its layer is unpacked into a committed snapshot of A's own.
        side.docker(&["run", "--rm", &built_tag, "cat", "/unique"])
            .ok()
            .stdout_has(&built_tag);
        (built_tag, id.stdout.trim().to_string())
    });
    // The log line has reached the gateway's log before anyone looks.
    eventually(Duration::from_secs(10), || {
        side.docker(&["logs", &running])
            .stdout
            .contains(&log_line)
            .then_some(())
    })
    .expect("the running container's log line");
    Objects {
        side,
        running_id: id_of(side, &running),
        stopped_id: id_of(side, &stopped),
        running,
        stopped,
        tag_ref: full_ref(&tag),
        tag,
        built,
        lease,
        log_line,
    }
}

/// The identifiers of the objects `owner`'s namespace holds and `viewer`'s
/// does not (IDs, references, digests, snapshot keys, lease IDs): none of
/// them may show up anywhere the viewer looks.
fn secrets(owner: &NsState, viewer: &NsState) -> Vec<String> {
    let seen: BTreeSet<&str> = viewer
        .items
        .iter()
        .flat_map(|l| l.split_whitespace().skip(1))
        .collect();
    let mut out = BTreeSet::new();
    for line in &owner.items {
        for tok in line.split_whitespace().skip(1) {
            if tok.len() >= 12
                && !tok.starts_with("io.containerd")
                && !tok.starts_with("application/")
                && !seen.contains(tok)
            {
                out.insert(tok.to_string());
            }
        }
    }
    out.into_iter().collect()
}

/// The owner's lines that name one of its test objects (other tests may
/// work in sandbox A at the same time: only ours are compared).
fn ours(state: &NsState, objects: &Objects, extra: &[String]) -> BTreeSet<String> {
    let mut keys = objects.names();
    keys.push(objects.tag_ref.clone());
    keys.push(objects.lease.clone());
    keys.extend(extra.iter().cloned());
    state
        .items
        .iter()
        .filter(|l| keys.iter().any(|k| l.contains(k.as_str())))
        .cloned()
        .collect()
}

/// Event lines of a `ctr events` output (its warnings left out).
fn event_lines(stdout: &str) -> Vec<&str> {
    stdout
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.contains("level=warning"))
        .collect()
}

/// Asserts a CLI attempt on the other sandbox's object failed as for a
/// missing one: exit 1 and docker's "No such …" words.
#[track_caller]
fn assert_no_such(out: &Out) {
    assert_eq!(out.code, 1, "expected 'No such …' (exit 1):\n{out}");
    out.stderr_has("No such ");
}

/// Asserts a ctr attempt on the other sandbox's object came back not found.
#[track_caller]
fn assert_ctr_not_found(out: &Out) {
    assert_ne!(out.code, 0, "expected not found:\n{out}");
    let err = ctr_error(out);
    assert!(
        err.contains("not found") || err.contains("does not exist"),
        "expected not found:\n{out}"
    );
}

/// Everything `viewer` can try with berth's CLI on `obj` (the other
/// sandbox's objects); `secrets` are the owner's identifiers.
fn cli_matrix(viewer: Side, obj: &Objects, secrets: &[String]) {
    for args in [
        &["ps", "-a", "--no-trunc"][..],
        &["images", "--no-trunc"],
        &["images", "-a", "--digests", "--no-trunc"],
    ] {
        let out = viewer.docker(args);
        out.ok();
        assert_sees_none(&out.cmd, &out.stdout, secrets);
        assert_sees_none(&out.cmd, &out.stdout, &obj.names());
    }
    for name in obj.names() {
        let out = viewer.docker(&["inspect", &name]);
        assert_no_such(&out);
        assert_sees_none(&out.cmd, &out.stdout, secrets);
    }
    for name in [&obj.running, &obj.running_id] {
        let out = viewer.docker(&["logs", name]);
        assert_no_such(&out);
        assert!(!out.stdout.contains(&obj.log_line), "{out}");
        assert_no_such(&viewer.docker(&["exec", name, "echo", "from-the-other-sandbox"]));
        assert_no_such(&viewer.docker(&["kill", name]));
        assert_no_such(&viewer.docker(&["stop", "-t", "0", name]));
        assert_no_such(&viewer.docker(&["rm", name]));
    }
    for name in [&obj.running, &obj.stopped_id, &obj.stopped] {
        // docker's `rm -f` of a missing container says so and exits 0.
        let out = viewer.docker(&["rm", "-f", name]);
        out.stderr_has("No such container");
    }
    assert_no_such(&viewer.docker(&["start", &obj.stopped]));
    let mut images = vec![obj.tag.clone()];
    if let Some((tag, id)) = &obj.built {
        images.push(tag.clone());
        images.push(id.clone());
        assert_no_such(&viewer.docker(&["tag", id, "stolen:v1"]));
        // Not local, and no registry has it: nothing runs.
        let out = viewer.docker(&["run", "--rm", id, "cat", "/unique"]);
        assert_ne!(out.code, 0, "{out}");
        assert!(!out.stdout.contains(tag.as_str()), "{out}");
        let out = viewer.docker(&["save", "-o", "/dev/null", id]);
        assert_no_such(&out);
    }
    assert_no_such(&viewer.docker(&["tag", &obj.tag, "stolen:v2"]));
    for image in &images {
        assert_no_such(&viewer.docker(&["rmi", image]));
        // docker's `rmi -f` of a missing image says so and exits 0.
        viewer
            .docker(&["rmi", "-f", image])
            .stderr_has("No such image");
        assert_no_such(&viewer.docker(&["save", "-o", "/dev/null", image]));
    }
}

/// Everything `viewer` can try with `ctr` on its own gateway socket, naming
/// its own namespace and the owner's.
fn ctr_matrix(viewer: Side, obj: &Objects, owner: &NsState, secrets: &[String]) {
    let digests: Vec<&str> = owner
        .items
        .iter()
        .filter_map(|l| l.strip_prefix("content "))
        .filter(|d| secrets.iter().any(|s| s == d))
        .collect();
    let snapshot_keys: Vec<&str> = owner
        .items
        .iter()
        .filter_map(|l| l.strip_prefix("snapshot "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|k| secrets.iter().any(|s| s == k))
        .collect();
    assert!(
        snapshot_keys.contains(&obj.running_id.as_str()),
        "the owner's running container has a snapshot keyed by its ID: {snapshot_keys:?}"
    );
    if obj.built.is_some() {
        let committed = owner
            .items
            .iter()
            .filter(|l| l.starts_with("snapshot ") && l.ends_with(" Committed"))
            .filter(|l| snapshot_keys.iter().any(|k| l.contains(k)));
        assert!(
            committed.count() > 0,
            "the owner's build left a committed snapshot of its own: {snapshot_keys:?}"
        );
    }
    // A snapshot of the viewer's own on top of one of the owner's
    // committed snapshots: the parent is not found in the viewer's namespace.
    let committed = owner
        .items
        .iter()
        .filter(|l| l.starts_with("snapshot ") && l.ends_with(" Committed"))
        .filter_map(|l| l.split_whitespace().nth(1))
        .filter(|k| snapshot_keys.contains(k));
    for key in committed {
        let child = unique("two-child");
        let err = raw_prepare(viewer.gateway_socket(), &child, key)
            .expect_err("preparing on the other sandbox's snapshot");
        assert_eq!(err.code(), tonic::Code::NotFound, "parent {key}: {err:?}");
    }
    for ns in [viewer.namespace(), obj.side.namespace()] {
        let c = |args: &[&str]| viewer.ctr(ns, args);
        for args in [
            &["namespaces", "ls"][..],
            &["containers", "ls"],
            &["tasks", "ls"],
            &["images", "ls"],
            &["content", "ls"],
            &["snapshots", "ls"],
            &["leases", "ls"],
        ] {
            let out = c(args);
            out.ok();
            assert_sees_none(&out.cmd, &out.stdout, secrets);
            assert_sees_none(&out.cmd, &out.stdout, &obj.names());
            assert!(!out.stdout.contains(&obj.lease), "{out}");
        }
        let ns_list = c(&["namespaces", "ls", "-q"]);
        assert_eq!(ns_list.stdout.trim(), viewer.namespace(), "{ns_list}");
        for id in [&obj.running_id, &obj.stopped_id] {
            assert_ctr_not_found(&c(&["containers", "info", id]));
            assert_ctr_not_found(&c(&["tasks", "ps", id]));
            assert_ctr_not_found(&c(&["tasks", "kill", "-s", "SIGKILL", id]));
            assert_ctr_not_found(&c(&["tasks", "rm", "-f", id]));
            assert_ctr_not_found(&c(&["containers", "rm", id]));
        }
        for d in &digests {
            assert_ctr_not_found(&c(&["content", "get", d]));
            // The gateway does not serve Content.Delete to anyone.
            let out = c(&["content", "rm", d]);
            assert_ne!(out.code, 0, "{out}");
            let err = ctr_error(&out);
            assert!(
                err.contains("not found") || UNSERVED.iter().any(|w| err.contains(w)),
                "deleting the other sandbox's blob {d}:\n{out}"
            );
        }
        for key in &snapshot_keys {
            assert_ctr_not_found(&c(&["snapshots", "info", key]));
            assert_ctr_not_found(&c(&["snapshots", "rm", key]));
        }
        assert_ctr_not_found(&c(&["leases", "rm", &obj.lease]));
        // ctr images rm warns about a missing image and exits 0.
        let out = c(&["images", "rm", &obj.tag_ref]);
        assert!(
            out.stderr
                .contains(&format!("{}: image not found", obj.tag_ref)),
            "{out}"
        );
    }
}

/// Asserts the owner's own objects are exactly as before and still work
/// from the owner's side.
fn assert_unchanged(obj: &Objects, before: &BTreeSet<String>, extra: &[String]) {
    let after = ours(&NsState::take(obj.side.namespace()), obj, extra);
    assert_eq!(
        &after, before,
        "the other sandbox changed sandbox {:?}'s objects in the real containerd",
        obj.side
    );
    let running = after
        .iter()
        .any(|l| l.starts_with(&format!("task {} ", obj.running_id)) && l.ends_with("RUNNING"));
    assert!(running, "the running container still runs: {after:#?}");
    assert!(
        after.iter().any(|l| l == &format!("lease {}", obj.lease)),
        "{after:#?}"
    );
    obj.side
        .docker(&["logs", &obj.running])
        .ok()
        .stdout_has(&obj.log_line);
}

#[test]
fn nothing_of_sandbox_a_is_visible_or_changeable_from_sandbox_b() {
    stack_b();
    let _serial = serial();
    let mut made = Made::default();

    // B subscribes (naming its own namespace and A's) while A acts; A's
    // own subscriber shows the events happened.
    let b_events = Side::B.spawn(&["ctr", "-a", B_GATEWAY_SOCKET, "-n", B_NAMESPACE, "events"]);
    let b_events_a = Side::B.spawn(&["ctr", "-a", B_GATEWAY_SOCKET, "-n", NAMESPACE, "events"]);
    let a_events = Side::A.spawn(&["ctr", "-a", GATEWAY_SOCKET, "-n", NAMESPACE, "events"]);
    std::thread::sleep(Duration::from_secs(1));
    let a = make(Side::A, &mut made, true);
    std::thread::sleep(Duration::from_secs(1));
    let (a_seen, _) = finish(a_events);
    let (b_seen, b_err) = finish(b_events);
    let (b_seen_a, b_err_a) = finish(b_events_a);
    assert!(
        a_seen.contains(&a.running_id) && a_seen.contains("/tasks/exec-added"),
        "A's own subscriber must see A's events (else this proves nothing):\n{a_seen}"
    );
    for (out, err) in [(&b_seen, &b_err), (&b_seen_a, &b_err_a)] {
        assert!(
            event_lines(out).is_empty(),
            "B's subscriber saw events while only A acted:\n{out}\n{err}"
        );
    }

    let a_state = NsState::take(NAMESPACE);
    let b_state = NsState::take(B_NAMESPACE);
    let secrets = secrets(&a_state, &b_state);
    let (built_tag, built_id) = a.built.clone().expect("A built an image");
    let built_ref = full_ref(&built_tag);
    // The build's blobs are A's alone (content_sharing_policy isolated).
    let built_digest = a_state
        .items
        .iter()
        .find_map(|l| l.strip_prefix(&format!("image {built_ref} ")))
        .expect("A's built image in the real containerd")
        .to_string();
    assert!(secrets.contains(&built_digest), "{secrets:?}");
    assert!(secrets.contains(&built_id), "{secrets:?}");
    let extra = vec![built_ref.clone(), built_digest.clone()];
    let a_before = ours(&a_state, &a, &extra);
    let b_before = NsState::take(B_NAMESPACE);

    cli_matrix(Side::B, &a, &secrets);
    ctr_matrix(Side::B, &a, &a_state, &secrets);

    // B has no BuildKit: a build is refused before anything reaches one.
    let probe = unique("two-b-build");
    let out = Side::B.run(&[
        "sh",
        "-c",
        &format!("printf 'FROM busybox\\n' | docker build --label {PROBE_LABEL}={probe} -"),
    ]);
    out.code(125)
        .stderr_has("BuildKit")
        .stderr_has(B_BUILDKIT_SOCKET);
    assert!(!buildkit_saw(&probe), "B's build reached the BuildKit host");
    assert!(!std::path::Path::new(B_BUILDKIT_SOCKET).exists());
    // Nor does B's agent reach the BuildKit host (or A's gateway state).
    for dir in ["/run/berth-stack/buildhost", "/var/lib/berth-stack/gateway"] {
        Side::B
            .run(&["ls", dir])
            .failed()
            .stderr_has("Permission denied");
    }

    assert_unchanged(&a, &a_before, &extra);
    let b_after = NsState::take(B_NAMESPACE);
    assert_eq!(
        b_after, b_before,
        "B's failed attempts left objects in B's namespace"
    );
    // A still uses its build.
    Side::A
        .docker(&["run", "--rm", &built_tag, "cat", "/unique"])
        .ok()
        .stdout_has(&built_tag);
}

#[test]
fn nothing_of_sandbox_b_is_visible_or_changeable_from_sandbox_a() {
    stack_b();
    let _serial = serial();
    let mut made = Made::default();

    let a_events = Side::A.spawn(&["ctr", "-a", GATEWAY_SOCKET, "-n", B_NAMESPACE, "events"]);
    let b_events = Side::B.spawn(&["ctr", "-a", B_GATEWAY_SOCKET, "-n", B_NAMESPACE, "events"]);
    std::thread::sleep(Duration::from_secs(1));
    let b = make(Side::B, &mut made, false);
    std::thread::sleep(Duration::from_secs(1));
    let (b_seen, _) = finish(b_events);
    let (a_seen, _) = finish(a_events);
    assert!(
        b_seen.contains(&b.running_id),
        "B's own subscriber must see B's events:\n{b_seen}"
    );
    // Other tests may act in A meanwhile: A may see its own events, never B's.
    assert!(!a_seen.contains(B_NAMESPACE), "{a_seen}");
    assert_sees_none("A's events", &a_seen, &b.names());

    let b_state = NsState::take(B_NAMESPACE);
    let a_state = NsState::take(NAMESPACE);
    let secrets = secrets(&b_state, &a_state);
    let b_before = ours(&b_state, &b, &[]);

    cli_matrix(Side::A, &b, &secrets);
    ctr_matrix(Side::A, &b, &b_state, &secrets);

    assert_unchanged(&b, &b_before, &[]);
    // A's socket directory is not B's: A's agent cannot even reach B's gateway.
    Side::A
        .run(&["ls", "/run/berth-stack/gateway-b"])
        .failed()
        .stderr_has("Permission denied");
}

#[test]
fn sandbox_b_cannot_reach_sandbox_a_over_the_network() {
    stack_b();
    let _serial = serial();
    let mut made = Made::default();
    // A serves a secret on the sandbox's address (containers share its netns).
    let secret = unique("net-secret");
    let port = (20000 + std::process::id() % 20000).to_string();
    let server = unique("two-a-httpd");
    made.container(Side::A, &server);
    Side::A
        .docker(&[
            "run",
            "-d",
            "--name",
            &server,
            "busybox",
            "sh",
            "-c",
            &format!("mkdir /w && echo {secret} > /w/f && exec httpd -f -p {port} -h /w"),
        ])
        .ok();
    let url = format!("http://10.200.0.2:{port}/f");
    // Positive control: A reaches it.
    let seen = eventually(Duration::from_secs(10), || {
        let out = Side::A.run(&["curl", "-sS", "--noproxy", "*", "--max-time", "3", &url]);
        out.stdout.contains(&secret).then_some(())
    });
    assert!(
        seen.is_some(),
        "A's own agent must reach its server at {url}"
    );

    // B's agent: directly refused by B's walls, through the proxy filtered.
    let out = Side::B.run(&["curl", "-sS", "--noproxy", "*", "--max-time", "3", &url]);
    assert_eq!(out.code, 7, "expected curl's 'Couldn't connect':\n{out}");
    assert!(!out.stdout.contains(&secret), "{out}");
    let out = Side::B.run(&[
        "curl",
        "-sS",
        "--max-time",
        "3",
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        &url,
    ]);
    assert_eq!(
        out.stdout.trim(),
        "403",
        "the proxy must refuse A's address:\n{out}"
    );

    // B's containers (in B's netns): the same.
    let probe = format!(
        "nc -w 3 10.200.0.2 {port} </dev/null; echo direct=$?; \
         printf 'GET {url} HTTP/1.0\\r\\n\\r\\n' | nc -w 3 10.200.0.1 3128"
    );
    let out = Side::B.docker(&["run", "--rm", "busybox", "sh", "-c", &probe]);
    out.ok().stdout_has("direct=1").stdout_has("403");
    assert!(!out.stdout.contains(&secret), "{out}");
}

#[test]
fn the_same_names_in_sandbox_b_are_b_own() {
    stack_b();
    let _serial = serial();
    let mut made = Made::default();
    let a = make(Side::A, &mut made, false);
    let a_before = ours(&NsState::take(NAMESPACE), &a, &[]);

    // B makes objects under A's very names: they are B's, beside A's.
    made.container(Side::B, &a.running);
    made.image(Side::B, &a.tag_ref);
    made.lease(Side::B, &a.lease);
    Side::B
        .docker(&["run", "-d", "--name", &a.running, "busybox", "sleep", "600"])
        .ok();
    Side::B.docker(&["tag", "busybox", &a.tag]).ok();
    Side::B
        .ctr(B_NAMESPACE, &["leases", "create", "--id", &a.lease])
        .ok();
    let b_id = Side::B
        .docker(&["inspect", "-f", "{{.Id}}", &a.running])
        .ok()
        .stdout
        .trim()
        .to_string();
    assert_ne!(b_id, a.running_id, "B's container is not A's");
    let logs = Side::B.docker(&["logs", &a.running]);
    logs.ok();
    assert!(
        !logs.stdout.contains(&a.log_line),
        "B read A's log:\n{logs}"
    );
    let b_state = NsState::take(B_NAMESPACE);
    assert!(!b_state.matching(&b_id).is_empty(), "{b_state:#?}");
    assert!(!b_state.matching(&a.tag_ref).is_empty(), "{b_state:#?}");
    assert!(b_state.matching(&a.running_id).is_empty(), "{b_state:#?}");

    // Removing them in B removes B's only.
    Side::B.docker(&["rm", "-f", &a.running]).ok();
    Side::B.docker(&["rmi", &a.tag]).ok();
    Side::B.ctr(B_NAMESPACE, &["leases", "rm", &a.lease]).ok();
    let b_after = NsState::take(B_NAMESPACE);
    for gone in [&b_id, &a.tag_ref, &a.lease] {
        assert!(
            b_after.matching(gone).is_empty(),
            "{gone} left in B: {b_after:#?}"
        );
    }
    assert_unchanged(&a, &a_before, &[]);
}

/// The client's own leases of a namespace (the gateway's, `berth-…`, do
/// not count against the quota).
fn client_leases(ns: &str) -> usize {
    NsState::take(ns)
        .items
        .iter()
        .filter_map(|l| l.strip_prefix("lease "))
        .filter(|id| !id.starts_with("berth-"))
        .count()
}

#[test]
fn sandbox_b_at_its_lease_quota_leaves_sandbox_a_its_own() {
    stack_b();
    let _serial = serial();
    let mut made = Made::default();
    // B fills its own quota: exactly B_LEASE_QUOTA of B's own, whatever A holds.
    let start = client_leases(B_NAMESPACE);
    let mut created = 0;
    let refusal = loop {
        assert!(
            start + created <= B_LEASE_QUOTA,
            "B created {created} leases beyond its quota of {B_LEASE_QUOTA}"
        );
        let id = unique("two-quota");
        made.lease(Side::B, &id);
        let out = Side::B.ctr(B_NAMESPACE, &["leases", "create", "--id", &id]);
        if out.code != 0 {
            break out;
        }
        created += 1;
    };
    assert_eq!(start + created, B_LEASE_QUOTA, "{refusal}");
    assert!(ctr_error(&refusal).contains("quota.leases"), "{refusal}");
    assert_eq!(client_leases(B_NAMESPACE), B_LEASE_QUOTA);
    // A is not starved by B's exhaustion, and its leases never counted in B's.
    let a_lease = unique("two-quota-a");
    made.lease(Side::A, &a_lease);
    Side::A
        .ctr(NAMESPACE, &["leases", "create", "--id", &a_lease])
        .ok();
    assert!(client_leases(NAMESPACE) >= 1);
}
