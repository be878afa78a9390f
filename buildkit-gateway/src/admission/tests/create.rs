//! Containers.Create: refusals and hardening.

use super::*;

#[test]
fn plain_docker_run_is_allowed() {
    let w = World::new();
    let (c, verdict) = create(&w, &spec()).unwrap();
    assert_eq!(verdict.rule, "containers.create");
    assert_eq!(verdict.object, ID);
    assert!(verdict.reasons.is_empty());
    assert_eq!(
        c.runtime,
        Some(api::container::Runtime {
            name: RUNTIME.into(),
            options: None
        })
    );
    assert_eq!(c.snapshotter, "overlayfs");
}

#[test]
fn denial_message_names_container_reason_and_rule() {
    let w = World::new();
    let mut s = spec();
    s["process"]["capabilities"]["bounding"]
        .as_array_mut()
        .unwrap()
        .push(json!("CAP_SYS_ADMIN"));
    s["hooks"] = json!({"prestart": [{"path": "/bin/true"}]});
    let err = create(&w, &s).unwrap_err();
    assert_eq!(err.rule, "containers.create");
    assert_eq!(
        err.message,
        "refusing container 3f2a9c1b7d4e: capability CAP_SYS_ADMIN is not allowed; \
         hooks are not allowed (prestart) (rule containers.create)"
    );
    assert!(!err.message.contains('\n'));
}

#[test]
fn container_create_refusals() {
    let w = World::new();
    let ws = w.workspace();
    let outside = w.outside();
    type Edit = Box<dyn Fn(&mut Value)>;
    let table: Vec<(&str, Edit, &str)> = vec![
        (
            "privileged",
            Box::new(|s| {
                s["process"]["capabilities"] = json!({"bounding": &testkit::ALL_CAP_NAMES[..], "effective": &testkit::ALL_CAP_NAMES[..], "permitted": &testkit::ALL_CAP_NAMES[..]});
                s["linux"].as_object_mut().unwrap().remove("seccomp");
            }),
            "privileged containers are not allowed",
        ),
        (
            "cap-add",
            Box::new(|s| {
                s["process"]["capabilities"]["effective"]
                    .as_array_mut()
                    .unwrap()
                    .push(json!("CAP_NET_ADMIN"))
            }),
            "capability CAP_NET_ADMIN is not allowed",
        ),
        (
            "inheritable",
            Box::new(|s| s["process"]["capabilities"]["inheritable"] = json!(["CAP_CHOWN"])),
            "inheritable capabilities are not allowed",
        ),
        (
            "ambient",
            Box::new(|s| s["process"]["capabilities"]["ambient"] = json!(["CAP_KILL"])),
            "ambient capabilities are not allowed",
        ),
        (
            "seccomp unconfined",
            Box::new(|s| {
                s["linux"].as_object_mut().unwrap().remove("seccomp");
            }),
            "running without a seccomp profile is not allowed",
        ),
        (
            "systempaths unconfined",
            Box::new(|s| {
                let linux = s["linux"].as_object_mut().unwrap();
                linux.remove("maskedPaths");
                linux.remove("readonlyPaths");
            }),
            "unmasking system paths is not allowed",
        ),
        (
            "one path unmasked",
            Box::new(|s| {
                s["linux"]["maskedPaths"]
                    .as_array_mut()
                    .unwrap()
                    .retain(|p| p != "/proc/kcore")
            }),
            "unmasking system paths is not allowed (/proc/kcore)",
        ),
        (
            "sysfs rw",
            Box::new(|s| s["mounts"][3]["options"] = json!(["nosuid", "noexec", "nodev", "rw"])),
            "a writable /sys is not allowed",
        ),
        (
            "pid host",
            Box::new(|s| drop_ns(s, "pid")),
            "the host pid namespace is not allowed",
        ),
        (
            "ipc host",
            Box::new(|s| drop_ns(s, "ipc")),
            "the host ipc namespace is not allowed",
        ),
        (
            "uts host",
            Box::new(|s| drop_ns(s, "uts")),
            "the host uts namespace is not allowed",
        ),
        (
            "mount host",
            Box::new(|s| drop_ns(s, "mount")),
            "a private mount namespace is required",
        ),
        (
            "network host",
            Box::new(|s| drop_ns(s, "network")),
            "the host network is not allowed",
        ),
        (
            "userns",
            Box::new(|s| {
                s["linux"]["namespaces"]
                    .as_array_mut()
                    .unwrap()
                    .push(json!({"type": "user"}))
            }),
            "user namespaces are not supported",
        ),
        (
            "time ns",
            Box::new(|s| {
                s["linux"]["namespaces"]
                    .as_array_mut()
                    .unwrap()
                    .push(json!({"type": "time"}))
            }),
            "namespace type time is not allowed",
        ),
        (
            "pid ns path",
            Box::new(|s| {
                s["linux"]["namespaces"][0] = json!({"type": "pid", "path": "/proc/1/ns/pid"})
            }),
            "joining an existing pid namespace is not allowed",
        ),
        (
            "foreign netns",
            Box::new(|s| {
                s["linux"]["namespaces"][4] = json!({"type": "network", "path": "/proc/1/ns/net"})
            }),
            "network namespace /proc/1/ns/net is not the sandbox's",
        ),
        (
            "network mode",
            Box::new(|s| s["annotations"]["berth.network"] = json!("host")),
            "network mode host is not supported",
        ),
        (
            "hooks",
            Box::new(|s| {
                s["hooks"] = json!({"createRuntime": [{"path": "/usr/bin/evil"}], "poststop": []})
            }),
            "hooks are not allowed (createRuntime)",
        ),
        (
            "device",
            Box::new(|s| {
                s["linux"]["devices"] =
                    json!([{"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229}]);
            }),
            "devices are not allowed (/dev/fuse)",
        ),
        (
            "device rule",
            Box::new(|s| {
                s["linux"]["resources"]["devices"].as_array_mut().unwrap().push(json!({"allow": true, "type": "b", "major": 8, "minor": 0, "access": "rwm"}));
            }),
            "device cgroup rule b 8:0 rwm is not allowed",
        ),
        (
            "apparmor",
            Box::new(|s| s["process"]["apparmorProfile"] = json!("unconfined")),
            "apparmor profiles are not allowed",
        ),
        (
            "selinux",
            Box::new(|s| s["process"]["selinuxLabel"] = json!("system_u:system_r:spc_t:s0")),
            "selinux labels are not allowed",
        ),
        (
            "mount label",
            Box::new(|s| s["linux"]["mountLabel"] = json!("system_u:object_r:x:s0")),
            "selinux mount labels are not allowed",
        ),
        (
            "sysctl",
            Box::new(|s| s["linux"]["sysctl"] = json!({"net.ipv4.ip_forward": "1"})),
            "sysctls are not allowed (net.ipv4.ip_forward)",
        ),
        (
            "idmap",
            Box::new(|s| {
                s["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": 1000, "size": 1}])
            }),
            "uid and gid mappings are not supported",
        ),
        (
            "propagation",
            Box::new(|s| s["linux"]["rootfsPropagation"] = json!("shared")),
            "rootfs propagation shared is not allowed",
        ),
        (
            "pids",
            Box::new(|s| s["linux"]["resources"]["pids"] = json!({"limit": 5000})),
            "a pids limit above 1024 is not allowed",
        ),
        (
            "unified",
            Box::new(|s| s["linux"]["resources"]["unified"] = json!({"memory.max": "max"})),
            "unified cgroup settings are not allowed (memory.max)",
        ),
        (
            "realtime",
            Box::new(|s| s["linux"]["resources"]["cpu"] = json!({"realtimeRuntime": 950000})),
            "realtime cpu scheduling is not allowed",
        ),
        (
            "oom",
            Box::new(|s| s["process"]["oomScoreAdj"] = json!(-1000)),
            "a negative oom score adjustment is not allowed",
        ),
        (
            "rlimit type",
            Box::new(|s| {
                s["process"]["rlimits"] = json!([{"type": "RLIMIT_RTPRIO", "hard": 99, "soft": 99}])
            }),
            "rlimit RLIMIT_RTPRIO is not allowed",
        ),
        (
            "rlimit max",
            Box::new(|s| {
                s["process"]["rlimits"] =
                    json!([{"type": "RLIMIT_NOFILE", "hard": 4194304, "soft": 1024}])
            }),
            "rlimit RLIMIT_NOFILE above 1048576 is not allowed",
        ),
        (
            "cwd relative",
            Box::new(|s| s["process"]["cwd"] = json!("work")),
            "the working directory must be an absolute path",
        ),
        (
            "cwd proc",
            Box::new(|s| s["process"]["cwd"] = json!("/proc/self/fd/7")),
            "a working directory under /proc is not allowed",
        ),
        (
            "cwd dotdot",
            Box::new(|s| s["process"]["cwd"] = json!("/tmp/../proc")),
            "the working directory must not contain . or .. components",
        ),
        (
            "root absolute",
            Box::new(|s| s["root"]["path"] = json!("/")),
            "an absolute root path is not allowed",
        ),
        (
            "root dotdot",
            Box::new(|s| s["root"]["path"] = json!("../../../")),
            "root path ../../../ must stay inside the bundle",
        ),
        (
            "annotation criu",
            Box::new(|s| s["annotations"]["org.criu.config"] = json!("/tmp/x")),
            "annotation org.criu.config uses a prefix the daemons read",
        ),
        (
            "annotation systemd",
            Box::new(|s| s["annotations"]["org.systemd.property.ExecStartPre"] = json!("/x")),
            "annotation org.systemd.property.ExecStartPre uses a prefix the daemons read",
        ),
        (
            "mount type",
            Box::new(|s| {
                s["mounts"]
                    .as_array_mut()
                    .unwrap()
                    .push(json!({"destination": "/mnt", "type": "overlay", "source": "overlay"}))
            }),
            "mount type overlay at /mnt is not allowed",
        ),
        (
            "proc elsewhere",
            Box::new(|s| {
                s["mounts"]
                    .as_array_mut()
                    .unwrap()
                    .push(json!({"destination": "/hostproc", "type": "proc", "source": "proc"}))
            }),
            "proc mount at /hostproc is not allowed (only at /proc)",
        ),
        (
            "untyped mount",
            Box::new(|s| {
                s["mounts"]
                    .as_array_mut()
                    .unwrap()
                    .push(json!({"destination": "/x", "source": "/dev/sda1"}))
            }),
            "mount at /x has no type",
        ),
        (
            "tmpfs over proc",
            Box::new(|s| {
                s["mounts"]
                    .as_array_mut()
                    .unwrap()
                    .push(json!({"destination": "/proc/sys", "type": "tmpfs", "source": "tmpfs"}))
            }),
            "mounting over /proc/sys is not allowed",
        ),
        (
            "tmpfs option",
            Box::new(|s| {
                s["mounts"].as_array_mut().unwrap().push(json!({"destination": "/run", "type": "tmpfs", "source": "tmpfs", "options": ["suid"]}))
            }),
            "tmpfs option suid is not allowed (/run)",
        ),
        (
            "relative destination",
            Box::new(|s| {
                s["mounts"]
                    .as_array_mut()
                    .unwrap()
                    .push(json!({"destination": "run", "type": "tmpfs", "source": "tmpfs"}))
            }),
            "mount destination run is not an absolute path",
        ),
    ];
    for (name, edit, reason) in table {
        let mut s = spec();
        edit(&mut s);
        let got = reasons(create(&w, &s));
        assert!(
            got.iter().any(|r| r == reason),
            "{name}: missing {reason:?} in {got:?}"
        );
    }

    // bind mounts need the real workspace
    let binds: Vec<(Value, String)> = vec![
        (
            bind("/etc", "/host-etc"),
            "bind mount /etc is outside the allowed volume roots".into(),
        ),
        (
            bind(&outside, "/o"),
            format!("bind mount {outside} is outside the allowed volume roots"),
        ),
        (
            bind(&format!("{ws}/link"), "/l"),
            format!("bind mount {ws}/link passes through a symlink"),
        ),
        (
            bind(&format!("{ws}/link/shadow"), "/l"),
            format!("bind mount {ws}/link/shadow passes through a symlink"),
        ),
        (
            bind(&format!("{ws}/missing"), "/m"),
            format!("bind mount source {ws}/missing does not exist"),
        ),
        (
            bind("data", "/d"),
            "bind mount source data is not an absolute path".into(),
        ),
        (
            bind(&format!("{ws}/../outside"), "/d"),
            format!("bind mount source {ws}/../outside must not contain . or .. components"),
        ),
        (
            json!({"destination": "/d", "type": "bind", "source": format!("{ws}/data"), "options": ["rbind", "rshared"]}),
            "bind mount option rshared is not allowed (/d)".into(),
        ),
        // runc binds whatever the type says when the options say bind
        (
            json!({"destination": "/d", "type": "tmpfs", "source": "/etc", "options": ["rbind"]}),
            "bind mount /etc is outside the allowed volume roots".into(),
        ),
        (
            bind(&format!("{ws}/data"), "/proc/self"),
            "mounting over /proc/self is not allowed".into(),
        ),
        (
            bind(&format!("{ws}/data"), "/sys"),
            "mounting over /sys is not allowed".into(),
        ),
        (
            bind(&format!("{ws}/data"), "/"),
            "mounting over / is not allowed".into(),
        ),
        (
            bind(&format!("{ws}/data"), "/a/../etc"),
            "mount destination /a/../etc must not contain . or .. components".into(),
        ),
    ];
    for (mount, reason) in binds {
        let mut s = spec();
        s["mounts"].as_array_mut().unwrap().push(mount.clone());
        refused_with(create(&w, &s), &reason);
    }
}

fn drop_ns(s: &mut Value, kind: &str) {
    s["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .retain(|ns| ns["type"] != kind);
}

#[test]
fn privileged_is_one_reason() {
    let w = World::new();
    let mut s = spec();
    s["process"]["capabilities"] = json!({"bounding": &testkit::ALL_CAP_NAMES[..], "effective": &testkit::ALL_CAP_NAMES[..], "permitted": &testkit::ALL_CAP_NAMES[..]});
    s["linux"].as_object_mut().unwrap().remove("seccomp");
    s["linux"]["resources"]["devices"] = json!([{"allow": true, "access": "rwm"}]);
    assert_eq!(
        reasons(create(&w, &s)),
        vec!["privileged containers are not allowed".to_string()]
    );
}

#[test]
fn container_record_refusals() {
    let w = World::new();
    let s = spec();
    type Edit = Box<dyn Fn(&mut api::Container)>;
    let table: Vec<(Edit, &str)> = vec![
        (
            Box::new(|c| {
                c.runtime = Some(api::container::Runtime {
                    name: "io.containerd.runsc.v1".into(),
                    options: None,
                })
            }),
            "runtime io.containerd.runsc.v1 is not allowed (only io.containerd.runc.v2)",
        ),
        (Box::new(|c| c.runtime = None), "a runtime is required"),
        (
            Box::new(|c| {
                c.runtime = Some(api::container::Runtime {
                    name: RUNTIME.into(),
                    options: Some(prost_types::Any {
                        type_url: "containerd.runc.v1.Options".into(),
                        value: vec![],
                    }),
                })
            }),
            "runtime options are not allowed",
        ),
        (
            Box::new(|c| c.snapshotter = "native".into()),
            "snapshotter native is not allowed (only overlayfs)",
        ),
        (
            Box::new(|c| {
                c.labels
                    .insert("containerd.io/restart.policy".into(), "always".into());
            }),
            "label containerd.io/restart.policy uses a prefix the daemons read",
        ),
        (
            Box::new(|c| {
                c.labels
                    .insert("io.containerd.image.config.stop-signal".into(), "x".into());
            }),
            "label io.containerd.image.config.stop-signal uses a prefix the daemons read",
        ),
        (
            Box::new(|c| c.sandbox = "sb-1".into()),
            "the sandbox field is not allowed",
        ),
        (
            Box::new(|c| {
                c.extensions.insert("x".into(), prost_types::Any::default());
            }),
            "container extensions are not allowed",
        ),
    ];
    for (edit, reason) in table {
        refused_with(create_with(&w, &s, edit), reason);
    }
}

#[test]
fn strict_parse_refusals_reach_the_user() {
    let w = World::new();
    let raw = |text: &str| {
        let mut c = container(&spec());
        c.spec = Some(prost_types::Any {
            type_url: SPEC_TYPE_URL.into(),
            value: text.as_bytes().to_vec(),
        });
        container_create(engine(), &w.sb, c)
    };
    let base = serde_json::to_string(&spec()).unwrap();
    // "Hooks": runc would honour it; serde would have dropped it.
    let cased = base.replacen('{', r#"{"Hooks":{"prestart":[{"path":"/x"}]},"#, 1);
    assert_eq!(
        reasons(raw(&cased)),
        vec![
            "spec key Hooks is not supported (keys are case-sensitive: did you mean hooks?)"
                .to_string()
        ]
    );
    let dup = base.replacen('{', r#"{"hostname":"a","#, 1);
    assert_eq!(
        reasons(raw(&dup)),
        vec!["duplicate spec key hostname".to_string()]
    );
    let unknown = base.replacen('{', r#"{"vm":{},"#, 1);
    assert_eq!(
        reasons(raw(&unknown)),
        vec!["spec key vm is not supported".to_string()]
    );
    assert_eq!(reasons(raw("{\"process\":")).len(), 1);

    let mut c = container(&spec());
    c.spec.as_mut().unwrap().type_url =
        "types.containerd.io/opencontainers/runtime-spec/1/Process".into();
    let got = reasons(container_create(engine(), &w.sb, c));
    assert!(
        got[0].starts_with(
            "spec type types.containerd.io/opencontainers/runtime-spec/1/Process is not allowed"
        ),
        "{got:?}"
    );

    let mut c = container(&spec());
    c.spec = None;
    assert_eq!(
        reasons(container_create(engine(), &w.sb, c)),
        vec!["a spec is required".to_string()]
    );

    let mut s = spec();
    s.as_object_mut().unwrap().remove("process");
    assert_eq!(
        reasons(create(&w, &s)),
        vec!["spec has no process".to_string()]
    );

    let mut s = spec();
    s["process"]["capabilities"]["bounding"] = json!(["CAP_NOT_A_CAP"]);
    assert!(reasons(create(&w, &s))[0].starts_with("spec is not a valid runtime spec"));
}

#[test]
fn hardening_of_an_allowed_container() {
    let w = World::new();
    let ws = w.workspace();
    let mut s = spec();
    s["mounts"].as_array_mut().unwrap().push(json!({
        "destination": "/src", "type": "bind", "source": format!("{ws}/data"), "options": ["rbind", "ro"]
    }));
    s["mounts"].as_array_mut().unwrap().push(json!({"destination": "/cache", "type": "tmpfs", "source": "tmpfs", "options": ["size=1m"]}));
    s["linux"]["resources"]["pids"] = json!({"limit": 100});
    s["linux"]["cgroupsPath"] = json!("/elsewhere");
    s["process"]["capabilities"] = json!({
        "bounding": ["CAP_CHOWN", "CAP_KILL"], "effective": ["CAP_KILL"], "permitted": ["CAP_KILL", "CAP_CHOWN"]
    });
    let (c, _) = create_with(&w, &s, |c| c.snapshotter.clear()).unwrap();
    assert_eq!(
        c.snapshotter, "overlayfs",
        "empty snapshotter means the sandbox's"
    );
    let out = forwarded_spec(&c);

    assert_eq!(out["root"], json!({"path": "rootfs"}));
    assert!(out.get("hooks").is_none());
    let p = &out["process"];
    assert_eq!(p["noNewPrivileges"], true);
    assert_eq!(
        p["capabilities"],
        json!({"bounding": ["CAP_CHOWN", "CAP_KILL"], "effective": ["CAP_KILL"], "permitted": ["CAP_CHOWN", "CAP_KILL"], "inheritable": [], "ambient": []})
    );
    let env: Vec<&str> = p["env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e.as_str().unwrap())
        .collect();
    assert!(!env.contains(&"http_proxy=http://elsewhere:8080"));
    assert!(!env.iter().any(|e| e.starts_with("Https_Proxy=")));
    for name in [
        "HTTP_PROXY",
        "http_proxy",
        "HTTPS_PROXY",
        "https_proxy",
        "ALL_PROXY",
        "all_proxy",
    ] {
        assert!(
            env.contains(&format!("{name}={PROXY}").as_str()),
            "{name} in {env:?}"
        );
    }
    assert!(env.contains(&"NO_PROXY=") && env.contains(&"no_proxy="));
    assert_eq!(
        env[0],
        "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    );

    let l = &out["linux"];
    assert_eq!(
        l["namespaces"],
        json!([{"type": "pid"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}, {"type": "cgroup"}, {"type": "network", "path": NETNS}])
    );
    assert_eq!(l["cgroupsPath"], format!("/berth/berth-sandbox/{ID}"));
    assert_eq!(l["resources"]["pids"], json!({"limit": 100}));
    assert_eq!(
        l["resources"]["devices"],
        json!([{"allow": false, "access": "rwm"}])
    );
    assert_eq!(l["resources"]["memory"], json!({"limit": 536870912}));
    assert_eq!(l["seccomp"]["defaultAction"], "SCMP_ACT_ERRNO");
    assert!(l.get("devices").is_none() && l.get("sysctl").is_none());
    let masked = l["maskedPaths"].as_array().unwrap();
    assert!(masked.contains(&json!("/proc/keys")) && masked.contains(&json!("/proc/extra")));
    assert_eq!(masked.iter().filter(|p| *p == "/proc/kcore").count(), 1);
    assert!(l["readonlyPaths"]
        .as_array()
        .unwrap()
        .contains(&json!("/proc/sysrq-trigger")));

    let mounts = out["mounts"].as_array().unwrap();
    let dests: Vec<&str> = mounts
        .iter()
        .map(|m| m["destination"].as_str().unwrap())
        .collect();
    assert_eq!(
        dests,
        [
            "/proc",
            "/dev",
            "/dev/pts",
            "/dev/shm",
            "/dev/mqueue",
            "/sys",
            "/sys/fs/cgroup",
            "/src",
            "/cache"
        ]
    );
    let canonical = std::fs::canonicalize(format!("{ws}/data")).unwrap();
    assert_eq!(mounts[7]["source"], canonical.to_str().unwrap());
    assert_eq!(
        mounts[7]["options"],
        json!(["rbind", "ro", "nosuid", "nodev", "rprivate"])
    );
    assert_eq!(mounts[8]["options"], json!(["size=1m", "nosuid", "nodev"]));

    // the forwarded bytes are accepted by our own strict reading
    strict::check(&c.spec.as_ref().unwrap().value, &strict::SPEC).unwrap();
}

#[test]
fn network_none_gets_a_private_empty_netns_and_pids_default() {
    let w = World::new();
    let mut s = spec();
    s["annotations"]["berth.network"] = json!("none");
    let (c, _) = create(&w, &s).unwrap();
    let out = forwarded_spec(&c);
    let ns = out["linux"]["namespaces"].as_array().unwrap();
    assert_eq!(ns.last().unwrap(), &json!({"type": "network"}));
    assert_eq!(out["linux"]["resources"]["pids"], json!({"limit": 1024}));
}

#[test]
fn sandbox_netns_path_may_be_given() {
    let w = World::new();
    let mut s = spec();
    s["linux"]["namespaces"][4] = json!({"type": "network", "path": NETNS});
    create(&w, &s).unwrap();
}

#[test]
fn default_caps_match_the_policy_data() {
    let data: Value =
        serde_json::from_slice(&std::fs::read(testkit::policy_dir().join("data.json")).unwrap())
            .unwrap();
    let b = &data["boundary"];
    let mut policy: Vec<String> = b["default_capabilities"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_string())
        .collect();
    policy.sort();
    let mut rust: Vec<String> = DEFAULT_CAPS.iter().map(facts::cap_name).collect();
    rust.sort();
    assert_eq!(policy, rust);
    let prefixes: Vec<&str> = b["daemon_prefixes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap())
        .collect();
    assert_eq!(prefixes, DAEMON_PREFIXES);
    assert_eq!(b["max_pids"], DEFAULT_PIDS_LIMIT);
}

#[test]
fn a_configured_proxy_ca_is_mounted_read_only_and_named_by_the_usual_variables() {
    let mut w = World::new();
    let ca = w.outside();
    w.sb.proxy_ca = Some(std::path::PathBuf::from(&ca));
    w.sb.ca_env = crate::sandbox::CA_VARS
        .iter()
        .map(|v| (v.to_string(), crate::sandbox::PROXY_CA_PATH.to_string()))
        .collect();
    let mut s = spec();
    // The client's own values give way, and a client mount at the same
    // place is covered by the gateway's, which comes last.
    s["process"]["env"]
        .as_array_mut()
        .unwrap()
        .push(json!("SSL_CERT_FILE=/tmp/mine.pem"));
    s["mounts"].as_array_mut().unwrap().push(json!({
        "destination": "/etc/berth/proxy-ca.crt", "type": "tmpfs", "source": "tmpfs", "options": []
    }));
    let (c, _) = create(&w, &s).unwrap();
    let out = forwarded_spec(&c);
    let last = out["mounts"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(
        last,
        json!({"destination": "/etc/berth/proxy-ca.crt", "type": "bind", "source": ca,
               "options": ["rbind", "ro", "nosuid", "nodev", "noexec", "rprivate"]})
    );
    let env: Vec<&str> = out["process"]["env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e.as_str().unwrap())
        .collect();
    assert!(!env.contains(&"SSL_CERT_FILE=/tmp/mine.pem"), "{env:?}");
    for v in crate::sandbox::CA_VARS {
        assert!(
            env.contains(&format!("{v}=/etc/berth/proxy-ca.crt").as_str()),
            "{v} in {env:?}"
        );
    }
    // The gateway's own bind is not mistaken for a swapped client bind.
    crate::admission::recheck_binds(&w.sb, &c).unwrap();
}
