use super::*;

fn s(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

fn base_input() -> SpecInput {
    SpecInput {
        process: ProcessInput {
            args: s(&["sh"]),
            env: s(&["PATH=/bin"]),
            cwd: "/".into(),
            uid: 0,
            gid: 0,
            additional_gids: vec![10],
            terminal: false,
            capabilities: capabilities(false, &[], &[]).unwrap(),
            no_new_privileges: false,
            apparmor_profile: None,
        },
        hostname: "0123456789ab".into(),
        read_only_rootfs: false,
        binds: vec![],
        privileged: false,
        seccomp: Seccomp::Default,
        unmask_system_paths: false,
        host: HostNamespaces::default(),
        ipc_none: false,
        network_none: false,
        devices: vec![],
        resources: Resources::default(),
    }
}

fn namespaces(spec: &Value) -> Vec<String> {
    spec["linux"]["namespaces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["type"].as_str().unwrap().to_string())
        .collect()
}

fn caps(spec: &Value, set: &str) -> Vec<String> {
    crate::containers::string_list(&spec["process"]["capabilities"][set])
}

#[test]
fn default_spec_is_a_valid_oci_spec_with_dockers_defaults() {
    let spec = build(&base_input());
    let parsed: oci_spec::runtime::Spec =
        serde_json::from_value(spec.clone()).expect("valid OCI spec");
    assert_eq!(parsed.hostname().as_deref(), Some("0123456789ab"));
    assert_eq!(
        namespaces(&spec),
        ["pid", "ipc", "uts", "mount", "network", "cgroup"]
    );
    assert!(spec["linux"]["namespaces"]
        .as_array()
        .unwrap()
        .iter()
        .all(|n| n.get("path").is_none()));
    assert_eq!(caps(&spec, "bounding"), DEFAULT_CAPS);
    assert_eq!(caps(&spec, "effective"), DEFAULT_CAPS);
    assert_eq!(caps(&spec, "permitted"), DEFAULT_CAPS);
    assert!(spec["process"]["capabilities"].get("inheritable").is_none());
    assert!(spec["process"]["capabilities"].get("ambient").is_none());
    assert_eq!(spec["process"]["noNewPrivileges"], false);
    assert!(spec["process"].get("rlimits").is_none());
    assert_eq!(spec["process"]["user"]["additionalGids"], json!([10]));
    assert_eq!(spec["root"], json!({ "path": "rootfs", "readonly": false }));
    assert_eq!(spec["linux"]["maskedPaths"], json!(MASKED_PATHS));
    assert_eq!(spec["linux"]["readonlyPaths"], json!(READONLY_PATHS));
    assert_eq!(spec["linux"]["seccomp"]["defaultAction"], "SCMP_ACT_ERRNO");
    assert_eq!(
        spec["linux"]["resources"]["devices"],
        json!([{ "allow": false, "access": "rwm" }])
    );
    assert!(spec["linux"].get("devices").is_none());
    assert!(spec.get("annotations").is_none());
    let dests: Vec<&str> = spec["mounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["destination"].as_str().unwrap())
        .collect();
    assert_eq!(
        dests,
        [
            "/proc",
            "/dev",
            "/dev/pts",
            "/sys",
            "/sys/fs/cgroup",
            "/dev/mqueue",
            "/dev/shm"
        ]
    );
    assert_eq!(spec["mounts"][3]["options"][3], "ro");
    assert_eq!(spec["mounts"][4]["options"][0], "ro");
}

#[test]
fn privileged_is_reflected_not_refused() {
    let mut input = base_input();
    input.privileged = true;
    input.process.capabilities = capabilities(true, &[], &[]).unwrap();
    let spec = build(&input);
    assert_eq!(caps(&spec, "bounding").len(), ALL_CAPS.len());
    assert!(spec["linux"].get("seccomp").is_none());
    assert_eq!(
        spec["linux"]["resources"]["devices"],
        json!([{ "allow": true, "access": "rwm" }])
    );
    assert!(spec["linux"].get("maskedPaths").is_none());
    assert!(spec["linux"].get("readonlyPaths").is_none());
    assert_eq!(spec["mounts"][3]["options"][3], "rw");
}

#[test]
fn host_namespaces_are_left_out() {
    for (host, missing) in [
        (
            HostNamespaces {
                pid: true,
                ..Default::default()
            },
            "pid",
        ),
        (
            HostNamespaces {
                ipc: true,
                ..Default::default()
            },
            "ipc",
        ),
        (
            HostNamespaces {
                uts: true,
                ..Default::default()
            },
            "uts",
        ),
        (
            HostNamespaces {
                network: true,
                ..Default::default()
            },
            "network",
        ),
    ] {
        let mut input = base_input();
        input.host = host;
        let ns = namespaces(&build(&input));
        assert!(!ns.contains(&missing.to_string()), "{missing}");
        assert_eq!(ns.len(), 5);
    }
}

#[test]
fn network_none_is_an_annotation_and_keeps_the_namespace() {
    let mut input = base_input();
    input.network_none = true;
    let spec = build(&input);
    assert_eq!(spec["annotations"], json!({ "berth.network": "none" }));
    assert!(namespaces(&spec).contains(&"network".to_string()));
}

#[test]
fn seccomp_unconfined_and_custom_profiles() {
    let mut input = base_input();
    input.seccomp = Seccomp::Unconfined;
    assert!(build(&input)["linux"].get("seccomp").is_none());
    let custom = json!({ "defaultAction": "SCMP_ACT_ALLOW" });
    input.seccomp = Seccomp::Profile(custom.clone());
    assert_eq!(build(&input)["linux"]["seccomp"], custom);
}

#[test]
fn systempaths_unconfined_drops_masks() {
    let mut input = base_input();
    input.unmask_system_paths = true;
    let spec = build(&input);
    assert!(spec["linux"].get("maskedPaths").is_none());
    assert!(spec["linux"].get("readonlyPaths").is_none());
}

#[test]
fn devices_binds_and_resources() {
    let mut input = base_input();
    input.devices = vec![Device {
        path: "/dev/xvda".into(),
        kind: "b".into(),
        major: 8,
        minor: 0,
        file_mode: 0o660,
        permissions: "rwm".into(),
    }];
    input.binds = vec![
        Bind {
            source: "/w/src".into(),
            destination: "/src".into(),
            read_only: true,
            propagation: None,
        },
        Bind {
            source: "/w/out".into(),
            destination: "/out".into(),
            read_only: false,
            propagation: Some("rshared".into()),
        },
    ];
    input.resources = Resources {
        memory: Some(64 << 20),
        nano_cpus: Some(1_500_000_000),
        pids_limit: Some(100),
    };
    input.read_only_rootfs = true;
    input.ipc_none = true;
    let spec = build(&input);
    serde_json::from_value::<oci_spec::runtime::Spec>(spec.clone()).expect("valid OCI spec");
    assert_eq!(spec["linux"]["devices"][0]["path"], "/dev/xvda");
    assert_eq!(spec["linux"]["devices"][0]["type"], "b");
    assert_eq!(
        spec["linux"]["resources"]["devices"][1],
        json!({ "allow": true, "type": "b", "major": 8, "minor": 0, "access": "rwm" })
    );
    let mounts = spec["mounts"].as_array().unwrap();
    assert!(!mounts.iter().any(|m| m["destination"] == "/dev/shm"));
    let binds: Vec<&Value> = mounts.iter().filter(|m| m["type"] == "bind").collect();
    assert_eq!(binds[0]["options"], json!(["rbind", "ro"]));
    assert_eq!(binds[1]["options"], json!(["rbind", "rw", "rshared"]));
    assert_eq!(binds[1]["source"], "/w/out");
    assert_eq!(spec["linux"]["resources"]["memory"]["limit"], 64 << 20);
    assert_eq!(
        spec["linux"]["resources"]["cpu"],
        json!({ "quota": 150_000, "period": 100_000 })
    );
    assert_eq!(spec["linux"]["resources"]["pids"]["limit"], 100);
    assert_eq!(spec["root"]["readonly"], true);
}

#[test]
fn unlimited_pids_are_not_limited() {
    let mut input = base_input();
    input.resources.pids_limit = Some(-1);
    assert!(build(&input)["linux"]["resources"].get("pids").is_none());
}

#[test]
fn capability_tweaks_follow_docker() {
    let v = |x: &[&str]| s(x);
    let added = capabilities(false, &v(&["net_admin"]), &[]).unwrap();
    assert_eq!(added.last().unwrap(), "CAP_NET_ADMIN");
    assert_eq!(added.len(), DEFAULT_CAPS.len() + 1);
    let dropped = capabilities(false, &[], &v(&["CAP_CHOWN", "kill"])).unwrap();
    assert!(!dropped.contains(&"CAP_CHOWN".to_string()));
    assert!(!dropped.contains(&"CAP_KILL".to_string()));
    assert_eq!(dropped.len(), DEFAULT_CAPS.len() - 2);
    assert_eq!(
        capabilities(false, &v(&["ALL"]), &v(&["SYS_ADMIN"]))
            .unwrap()
            .len(),
        ALL_CAPS.len() - 1
    );
    assert_eq!(
        capabilities(false, &v(&["chown"]), &v(&["all"])).unwrap(),
        ["CAP_CHOWN"]
    );
    assert_eq!(
        capabilities(false, &v(&["CHOWN"]), &[]).unwrap().len(),
        DEFAULT_CAPS.len()
    );
    assert_eq!(
        capabilities(false, &v(&["FOO"]), &[]).unwrap_err(),
        "invalid CapAdd: unknown capability: \"CAP_FOO\""
    );
    assert_eq!(capabilities(true, &[], &[]).unwrap().len(), ALL_CAPS.len());
}

#[test]
fn env_merges_like_docker() {
    let image = s(&["PATH=/usr/bin", "HOME=/root"]);
    let user = s(&["A=1", "HOME=/home", "UNSET"]);
    let config = config_env(&user, &image);
    assert_eq!(config, ["A=1", "HOME=/home", "PATH=/usr/bin"]);
    assert_eq!(
        process_env(&config, "abc", true),
        [
            "PATH=/usr/bin",
            "HOSTNAME=abc",
            "TERM=xterm",
            "A=1",
            "HOME=/home"
        ]
    );
    assert_eq!(
        process_env(&[], "abc", false),
        [format!("PATH={DEFAULT_PATH}"), "HOSTNAME=abc".into()]
    );
    assert_eq!(
        replace_or_append(&s(&["A=1", "B=2"]), &s(&["B=3", "A", "C=4"])),
        ["B=3", "C=4"]
    );
}

#[test]
fn entrypoint_and_cmd_merge_like_docker() {
    let ep = s(&["/entry.sh"]);
    let cmd = s(&["serve", "--port=1"]);
    assert_eq!(
        command(&ep, &cmd, None, &[]).unwrap(),
        (ep.clone(), cmd.clone())
    );
    assert_eq!(
        command(&ep, &cmd, None, &s(&["ls"])).unwrap(),
        (ep.clone(), s(&["ls"]))
    );
    // A user entrypoint drops the image's CMD.
    assert_eq!(
        command(&ep, &cmd, Some("/bin/sh -c"), &[]).unwrap(),
        (s(&["/bin/sh -c"]), vec![])
    );
    assert_eq!(
        command(&ep, &cmd, Some("sh"), &s(&["-c", "x"])).unwrap(),
        (s(&["sh"]), s(&["-c", "x"]))
    );
    assert_eq!(
        command(&ep, &cmd, Some(""), &s(&["ls"])).unwrap(),
        (vec![], s(&["ls"]))
    );
    assert_eq!(
        command(&ep, &cmd, Some(""), &[]).unwrap_err(),
        "no command specified"
    );
    assert_eq!(
        command(&[], &[], None, &[]).unwrap_err(),
        "no command specified"
    );
    assert_eq!(
        command(&[], &s(&["sh"]), None, &[]).unwrap(),
        (vec![], s(&["sh"]))
    );
}
