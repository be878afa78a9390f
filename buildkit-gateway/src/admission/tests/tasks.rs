//! Containers.Update, Tasks.Create, Tasks.Exec and generic methods.

use super::*;

fn current() -> api::Container {
    let w = World::new();
    container_create(engine(), &w.sb, container(&spec()))
        .unwrap()
        .0
}

#[test]
fn container_update_rules() {
    let w = World::new();
    let cur = current();
    let update = |paths: &[&str], labels: &[(&str, &str)], edit: &dyn Fn(&mut api::Container)| {
        let mut given = api::Container {
            id: ID.into(),
            ..Default::default()
        };
        given.labels = labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        edit(&mut given);
        let mask = (!paths.is_empty()).then(|| prost_types::FieldMask {
            paths: paths.iter().map(|p| p.to_string()).collect(),
        });
        container_update(
            engine(),
            &w.sb,
            &cur,
            api::UpdateContainerRequest {
                container: Some(given),
                update_mask: mask,
            },
        )
    };
    let none = |_: &mut api::Container| {};

    let (req, v) = update(&["labels.owner"], &[("owner", "me")], &none).unwrap();
    assert_eq!(v.rule, "containers.update");
    assert_eq!(req.update_mask.unwrap().paths, ["labels.owner"]);
    let forwarded = req.container.unwrap();
    assert_eq!(forwarded.spec, None, "only labels go on");

    // no mask: labels only, other equal or unset fields are not a change
    let (req, _) = update(&[], &[("berth.name", "web"), ("x", "1")], &|c| {
        c.image = cur.image.clone()
    })
    .unwrap();
    assert_eq!(req.update_mask.unwrap().paths, ["labels"]);

    for path in [
        "spec",
        "runtime",
        "snapshotter",
        "snapshot_key",
        "image",
        "extensions",
        "extensions.x",
        "sandbox",
    ] {
        refused_with(
            update(&[path], &[], &none),
            &format!("changing {path} is not allowed (only labels)"),
        );
    }
    refused_with(
        update(&[], &[], &|c| {
            c.spec = Some(any(SPEC_TYPE_URL, &json!({"ociVersion": "1"})))
        }),
        "changing spec is not allowed (only labels)",
    );
    refused_with(
        update(&[], &[], &|c| c.snapshotter = "native".into()),
        "changing snapshotter is not allowed (only labels)",
    );
    refused_with(
        update(
            &["labels.containerd.io/gc.root"],
            &[("containerd.io/gc.root", "x")],
            &none,
        ),
        "label containerd.io/gc.root uses a prefix the daemons read",
    );
    refused_with(
        update(&["labels"], &[("io.cri-containerd.kind", "sandbox")], &none),
        "label io.cri-containerd.kind uses a prefix the daemons read",
    );
    let err = update(&[], &[], &|c| c.id = "other".into()).unwrap_err();
    assert_eq!(err.reasons, ["the update names another container"]);
}

#[test]
fn task_create_rules() {
    let w = World::new();
    let (req, v) = task_create(engine(), &w.sb, task_request()).unwrap();
    assert_eq!(req, task_request(), "returned unchanged");
    assert_eq!(v.rule, "tasks.create");
    let mut quiet = task_request();
    quiet.stdin.clear();
    task_create(engine(), &w.sb, quiet).unwrap();

    type Edit = Box<dyn Fn(&mut api::CreateTaskRequest)>;
    let table: Vec<(Edit, &str)> = vec![
        (
            Box::new(|r| r.stdout = "/var/lib/berth-stack/gateway/x".into()),
            "stdout must be empty or the gateway relay, not a host path (/var/lib/berth-stack/gateway/x)",
        ),
        (
            Box::new(|r| r.stderr = "binary:///usr/bin/logger?x=1".into()),
            "stderr must be empty or the gateway relay, not a uri (binary:///usr/bin/logger?x=1)",
        ),
        (Box::new(|r| r.stdin = "file:///etc/shadow".into()), "stdin must be empty or the gateway relay, not a uri (file:///etc/shadow)"),
        (
            Box::new(|r| r.rootfs.push(containerd_client::types::Mount { r#type: "bind".into(), source: "/".into(), ..Default::default() })),
            "client rootfs mounts are not allowed",
        ),
        (Box::new(|r| r.checkpoint = Some(Default::default())), "checkpoints are not allowed"),
        (Box::new(|r| r.options = Some(Default::default())), "task options are not allowed"),
        (Box::new(|r| r.runtime_path = "/tmp/runc".into()), "a runtime path is not allowed"),
    ];
    for (edit, reason) in table {
        let mut r = task_request();
        edit(&mut r);
        let err = task_create(engine(), &w.sb, r).unwrap_err();
        assert!(
            err.reasons.iter().any(|x| x == reason),
            "missing {reason:?} in {:?}",
            err.reasons
        );
        assert!(
            err.message.starts_with("refusing task 3f2a9c1b7d4e: ")
                && err.message.ends_with("(rule tasks.create)")
        );
    }
}

#[test]
fn task_exec_rules_and_hardening() {
    let w = World::new();
    let cur = current();
    let mut p = testkit::process();
    p["capabilities"] = json!({"bounding": ["CAP_KILL", "CAP_CHOWN"], "effective": ["CAP_KILL"], "permitted": ["CAP_KILL"]});
    p["noNewPrivileges"] = json!(false);
    let (req, v) = task_exec(engine(), &w.sb, &cur, exec_request(&p)).unwrap();
    assert_eq!(v.rule, "tasks.exec");
    assert_eq!(req.exec_id, "exec-1");
    assert_eq!(req.stdout, berth_proto::STDIO_RELAY);
    let forwarded = req.spec.unwrap();
    assert_eq!(forwarded.type_url, PROCESS_TYPE_URL);
    strict::check(&forwarded.value, &strict::PROCESS).unwrap();
    let out: Value = serde_json::from_slice(&forwarded.value).unwrap();
    assert_eq!(out["noNewPrivileges"], true);
    assert_eq!(
        out["capabilities"],
        json!({"bounding": ["CAP_CHOWN", "CAP_KILL"], "effective": ["CAP_KILL"], "permitted": ["CAP_KILL"], "inheritable": [], "ambient": []})
    );
    assert!(out["env"]
        .as_array()
        .unwrap()
        .contains(&json!(format!("HTTPS_PROXY={PROXY}"))));

    // a container created with fewer caps bounds its execs
    let mut s = spec();
    s["process"]["capabilities"] =
        json!({"bounding": ["CAP_KILL"], "effective": ["CAP_KILL"], "permitted": ["CAP_KILL"]});
    let small = container_create(engine(), &w.sb, container(&s)).unwrap().0;

    type Edit = Box<dyn Fn(&mut Value, &mut api::ExecProcessRequest)>;
    let table: Vec<(Edit, &str)> = vec![
        (
            Box::new(|p, _| p["capabilities"]["bounding"] = json!(["CAP_SYS_ADMIN"])),
            "capability CAP_SYS_ADMIN is not allowed",
        ),
        (
            Box::new(|p, _| p["capabilities"]["effective"] = json!(["CAP_CHOWN"])),
            "capability CAP_CHOWN is not in the container's set",
        ),
        (
            Box::new(|p, _| p["capabilities"]["ambient"] = json!(["CAP_KILL"])),
            "ambient capabilities are not allowed",
        ),
        (
            Box::new(|p, _| p["cwd"] = json!("/proc/1/cwd")),
            "a working directory under /proc is not allowed",
        ),
        (
            Box::new(|p, _| p["cwd"] = json!("")),
            "the working directory must be an absolute path",
        ),
        (
            Box::new(|p, _| p["apparmorProfile"] = json!("unconfined")),
            "apparmor profiles are not allowed",
        ),
        (
            Box::new(|_, r| r.stdout = "/etc/passwd".into()),
            "stdout must be empty or the gateway relay, not a host path (/etc/passwd)",
        ),
        (
            Box::new(|_, r| r.stdin = "binary:///bin/sh".into()),
            "stdin must be empty or the gateway relay, not a uri (binary:///bin/sh)",
        ),
    ];
    for (edit, reason) in table {
        let mut p = testkit::process();
        p["capabilities"] =
            json!({"bounding": ["CAP_KILL"], "effective": ["CAP_KILL"], "permitted": ["CAP_KILL"]});
        let mut r = exec_request(&p);
        edit(&mut p, &mut r);
        r.spec = Some(any(PROCESS_TYPE_URL, &p));
        let err = task_exec(engine(), &w.sb, &small, r).unwrap_err();
        assert!(
            err.reasons.iter().any(|x| x == reason),
            "missing {reason:?} in {:?}",
            err.reasons
        );
        assert!(
            err.message
                .starts_with("refusing exec exec-1 in container 3f2a9c1b7d4e: "),
            "{}",
            err.message
        );
        assert!(err.message.ends_with("(rule tasks.exec)"));
    }

    // strict parse of the process spec
    let mut r = exec_request(&testkit::process());
    r.spec = Some(prost_types::Any {
        type_url: PROCESS_TYPE_URL.into(),
        value: br#"{"user":{"uid":0,"gid":0},"cwd":"/","Capabilities":{}}"#.to_vec(),
    });
    let got = reasons(task_exec(engine(), &w.sb, &cur, r));
    assert_eq!(got, ["spec key Capabilities is not supported (keys are case-sensitive: did you mean capabilities?)"]);
    let mut r = exec_request(&testkit::process());
    r.spec.as_mut().unwrap().type_url = SPEC_TYPE_URL.into();
    assert!(reasons(task_exec(engine(), &w.sb, &cur, r))[0].starts_with("process type"));
    let mut r = exec_request(&testkit::process());
    r.container_id = "other".into();
    assert_eq!(
        reasons(task_exec(engine(), &w.sb, &cur, r)),
        ["the exec names another container"]
    );
}

#[test]
fn generic_methods() {
    let w = World::new();
    for method in [
        "images.list",
        "containers.delete",
        "tasks.start",
        "namespaces.list",
        "content.read",
        "stdio.attach",
    ] {
        let v = generic(engine(), &w.sb, method, "x").unwrap();
        assert_eq!(v.rule, method);
    }
    for verb in ["create", "update", "delete"] {
        let err = generic(engine(), &w.sb, &format!("namespaces.{verb}"), "default").unwrap_err();
        assert_eq!(
            err.message,
            format!("refusing namespace default: namespace writes are not allowed (rule namespaces.{verb})")
        );
    }
    let err = generic(engine(), &w.sb, "diff.apply", "").unwrap_err();
    assert_eq!(err.reasons, ["method diff.apply is not served"]);
    // a method with its own admission cannot be waved through as generic
    for method in [
        "containers.create",
        "containers.update",
        "tasks.create",
        "tasks.exec",
    ] {
        let err = generic(engine(), &w.sb, method, ID).unwrap_err();
        assert!(
            err.reasons
                .contains(&"request does not match the method".to_string()),
            "{method}: {err:?}"
        );
    }
}

#[test]
fn recheck_catches_a_bind_swapped_for_a_symlink() {
    let w = World::new();
    let ws = w.workspace();
    std::fs::create_dir(format!("{ws}/swap")).unwrap();
    let mut s = spec();
    s["mounts"]
        .as_array_mut()
        .unwrap()
        .push(bind(&format!("{ws}/swap"), "/swap"));
    let (c, _) = create(&w, &s).unwrap();
    recheck_binds(&w.sb, &c).unwrap();
    std::fs::remove_dir(format!("{ws}/swap")).unwrap();
    std::os::unix::fs::symlink("/", format!("{ws}/swap")).unwrap();
    let err = recheck_binds(&w.sb, &c).unwrap_err();
    assert_eq!(err.rule, "tasks.create");
    assert!(
        err.message
            .contains("cannot be resolved below a volume root"),
        "{}",
        err.message
    );
}

#[test]
fn short_ids() {
    assert_eq!(short_id(ID), "3f2a9c1b7d4e");
    assert_eq!(short_id("web"), "web");
    assert_eq!(short_id("ééééééééééééé"), "éééééééééééé");
}
