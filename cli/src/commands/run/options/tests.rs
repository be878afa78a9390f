use super::*;
use std::collections::HashMap;

struct FakeHost {
    env: HashMap<&'static str, &'static str>,
    files: HashMap<&'static str, &'static str>,
}

impl Host for FakeHost {
    fn env(&self, key: &str) -> Option<String> {
        self.env.get(key).map(|v| v.to_string())
    }
    fn read(&self, path: &str) -> std::io::Result<String> {
        self.files
            .get(path)
            .map(|v| v.to_string())
            .ok_or_else(|| std::io::Error::from_raw_os_error(libc::ENOENT))
    }
    fn device(&self, path: &str) -> std::io::Result<(String, i64, i64, u32)> {
        match path {
            "/dev/fuse" => Ok(("c".into(), 10, 229, 0o666)),
            _ => Err(std::io::Error::from_raw_os_error(libc::ENOENT)),
        }
    }
}

fn host() -> FakeHost {
    FakeHost {
        env: HashMap::from([("HOME", "/home/agent"), ("X", "1")]),
        files: HashMap::from([
            ("env.list", "A=1\n"),
            ("profile.json", "{\"defaultAction\":\"SCMP_ACT_ALLOW\"}"),
        ]),
    }
}

fn args(extra: &[&str]) -> RunArgs {
    use clap::Parser;
    let mut argv = vec!["docker", "run"];
    argv.extend_from_slice(extra);
    match crate::cli::Cli::try_parse_from(argv)
        .unwrap()
        .command
        .unwrap()
    {
        crate::cli::Command::Run(a) => a,
        other => panic!("{other:?}"),
    }
}

fn decode(extra: &[&str]) -> Result<RunOptions, Invalid> {
    RunOptions::decode(&args(extra), &host())
}

#[test]
fn env_file_parses_like_docker() {
    let lookup = |k: &str| (k == "FROM_ENV").then(|| "yes".to_string());
    let content = "\u{feff}A=1\n# comment\n   B= 2 \nFROM_ENV\nNOT_SET\n\nE=\nF=a=b\n";
    assert_eq!(
        parse_env_file(content, "f", &lookup).unwrap(),
        ["A=1", "B= 2 ", "FROM_ENV=yes", "E=", "F=a=b"]
    );
    assert_eq!(
        parse_env_file("a b=1\n", "env", &lookup)
            .unwrap_err()
            .message,
        "invalid env file (env): variable 'a b' contains whitespaces"
    );
    assert_eq!(
        parse_env_file("=x\n", "env", &lookup).unwrap_err().message,
        "invalid env file (env): no variable name on line '=x'"
    );
}

#[test]
fn env_flags_resolve_from_the_environment() {
    let lookup = |k: &str| (k == "HOME").then(|| "/root".to_string());
    assert_eq!(
        resolve_env_flag("A=1", &lookup).unwrap(),
        Some("A=1".into())
    );
    assert_eq!(
        resolve_env_flag("HOME", &lookup).unwrap(),
        Some("HOME=/root".into())
    );
    assert_eq!(
        resolve_env_flag("UNSET", &lookup).unwrap(),
        Some("UNSET".into())
    );
    assert!(resolve_env_flag("=x", &lookup).is_err());
}

#[test]
fn volumes_parse_and_refuse_what_berth_cannot_do() {
    assert_eq!(
        parse_volume("/w/src:/src:ro").unwrap(),
        Bind {
            source: "/w/src".into(),
            destination: "/src".into(),
            read_only: true,
            propagation: None
        }
    );
    assert_eq!(parse_volume("/w/a/../b/:/dst/").unwrap().source, "/w/b");
    assert_eq!(
        parse_volume("/w:/x:rw,rshared")
            .unwrap()
            .propagation
            .as_deref(),
        Some("rshared")
    );
    assert!(!parse_volume("/w:/x:z").unwrap().read_only);
    assert_eq!(
        parse_volume("data:/data").unwrap_err().message,
        "named volume data is not supported by berth"
    );
    assert_eq!(
        parse_volume("/data").unwrap_err().message,
        "anonymous volume /data is not supported by berth"
    );
    let rel = parse_volume("./src:/src").unwrap_err();
    assert!(
        rel.from_daemon
            && rel
                .message
                .contains("If you intended to pass a host directory, use absolute path")
    );
    assert!(parse_volume("/a:b")
        .unwrap_err()
        .message
        .contains("'b' mount path must be absolute"));
    assert!(parse_volume("/a:/")
        .unwrap_err()
        .message
        .contains("destination can't be '/'"));
    assert_eq!(
        parse_volume("/a:/b:xx").unwrap_err().message,
        "invalid mode: xx"
    );
    assert!(parse_volume("/a:/b:ro:x")
        .unwrap_err()
        .message
        .contains("too many colons"));
}

#[test]
fn memory_and_cpus_parse_like_docker() {
    assert_eq!(parse_memory("512m").unwrap(), 512 << 20);
    assert_eq!(parse_memory("1.5g").unwrap(), 3 << 29);
    assert_eq!(parse_memory("64MiB").unwrap(), 64 << 20);
    assert_eq!(parse_memory("67108864").unwrap(), 64 << 20);
    assert!(parse_memory("lots").is_err());
    assert_eq!(
        parse_memory("1m").unwrap_err().message,
        "Minimum memory limit allowed is 6MB"
    );
    assert_eq!(parse_cpus("1.5").unwrap(), 1_500_000_000);
    assert_eq!(parse_cpus("0.01").unwrap(), 10_000_000);
    assert_eq!(parse_cpus("2").unwrap(), 2_000_000_000);
    assert_eq!(parse_cpus(".5").unwrap(), 500_000_000);
    assert!(parse_cpus("x").is_err());
    assert!(parse_cpus("0.0000000001")
        .unwrap_err()
        .message
        .contains("too precise"));
}

#[test]
fn labels_refuse_berths_prefix() {
    let l = parse_labels(&["a=b".into(), "c".into()]).unwrap();
    assert_eq!(
        l,
        BTreeMap::from([("a".into(), "b".into()), ("c".into(), String::new())])
    );
    assert!(parse_labels(&["berth.name=x".into()]).is_err());
}

#[test]
fn decode_collects_run_flags() {
    let o = decode(&[
        "--name",
        "web",
        "-e",
        "X",
        "-e",
        "Y=2",
        "--env-file",
        "env.list",
        "-v",
        "/w:/w:ro",
        "-w",
        "/w",
        "--read-only",
        "-m",
        "64m",
        "--cpus",
        "0.5",
        "--pids-limit",
        "50",
        "-l",
        "app=web",
        "--stop-signal",
        "SIGINT",
        "busybox",
        "sh",
        "-c",
        "echo hi",
    ])
    .unwrap();
    assert_eq!(o.name.as_deref(), Some("web"));
    assert_eq!(o.env, ["A=1", "X=1", "Y=2"]);
    assert_eq!(o.binds.len(), 1);
    assert_eq!(o.command, ["sh", "-c", "echo hi"]);
    assert_eq!(
        o.resources,
        Resources {
            memory: Some(64 << 20),
            nano_cpus: Some(500_000_000),
            pids_limit: Some(50)
        }
    );
    assert_eq!(o.network_mode, "bridge");
    assert_eq!(o.runtime, "io.containerd.runc.v2");
    assert_eq!(o.seccomp, Seccomp::Default);
    assert!(o.read_only);
}

#[test]
fn decode_reflects_dangerous_flags() {
    let o = decode(&[
        "--privileged",
        "--pid",
        "host",
        "--ipc",
        "host",
        "--uts",
        "host",
        "--network",
        "host",
        "--security-opt",
        "seccomp=unconfined",
        "--security-opt",
        "apparmor=unconfined",
        "--cap-add",
        "SYS_ADMIN",
        "--runtime",
        "io.containerd.runsc.v1",
        "--device",
        "/dev/fuse",
        "busybox",
    ])
    .unwrap();
    assert_eq!(
        o.host,
        HostNamespaces {
            pid: true,
            ipc: true,
            uts: true,
            network: true
        }
    );
    assert!(o.privileged);
    assert_eq!(o.capabilities.len(), spec::ALL_CAPS.len());
    assert_eq!(o.seccomp, Seccomp::Unconfined);
    assert_eq!(o.apparmor.as_deref(), Some("unconfined"));
    assert_eq!(o.runtime, "io.containerd.runsc.v1");
    assert_eq!(
        o.devices[0],
        Device {
            path: "/dev/fuse".into(),
            kind: "c".into(),
            major: 10,
            minor: 229,
            file_mode: 0o666,
            permissions: "rwm".into()
        }
    );
    let none = decode(&["--network", "none", "busybox"]).unwrap();
    assert!(none.network_none && !none.host.network);
    let custom = decode(&["--security-opt", "seccomp=profile.json", "busybox"]).unwrap();
    assert_eq!(
        custom.seccomp,
        Seccomp::Profile(serde_json::json!({ "defaultAction": "SCMP_ACT_ALLOW" }))
    );
    let unmasked = decode(&["--security-opt", "systempaths=unconfined", "busybox"]).unwrap();
    assert!(unmasked.unmask_system_paths);
}

#[test]
fn decode_refuses_with_dockers_messages() {
    let err = |extra: &[&str]| decode(extra).unwrap_err();
    assert_eq!(
        err(&["-p", "80:80", "busybox"]).message,
        "--publish is not supported by berth"
    );
    assert_eq!(
        err(&["--network", "foo", "busybox"]),
        Invalid::daemon("network foo not found")
    );
    assert_eq!(
        err(&["--name", "a b", "busybox"]),
        Invalid::daemon("Invalid container name (a b), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed")
    );
    assert_eq!(
        err(&["--env-file", "nope", "busybox"]).message,
        "open nope: no such file or directory"
    );
    assert!(err(&["-w", "rel", "busybox"])
        .message
        .contains("needs to be an absolute path"));
    assert_eq!(
        err(&["--cap-add", "BOGUS", "busybox"]).message,
        "invalid CapAdd: unknown capability: \"CAP_BOGUS\""
    );
    assert_eq!(
        err(&["--stop-signal", "NOPE", "busybox"]).message,
        "Invalid signal: NOPE"
    );
    assert!(err(&["--device", "/dev/nope", "busybox"])
        .message
        .contains("no such file or directory"));
    assert_eq!(
        err(&["--init", "busybox"]).message,
        "--init is not supported by berth"
    );
    assert!(err(&["--security-opt", "bogus", "busybox"])
        .message
        .contains("Invalid --security-opt"));
}
