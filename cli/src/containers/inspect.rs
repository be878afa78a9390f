//! docker's `inspect` document of a container.

use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use super::{find, go_time, string_list, task, Container, State};
use crate::client::Gateway;
use crate::error::Result;

/// docker-shaped `inspect` JSON of a container, by name, ID or unique ID prefix.
// Called by `commands::inspect`, which the images side of the CLI owns.
#[allow(dead_code)]
pub async fn inspect_json(gw: &Gateway, name: &str) -> Result<Value> {
    let (c, _) = find(gw, name).await?;
    let process = task(gw, &c.id).await?;
    Ok(document(&c, &State::from_task(process.as_ref())))
}

fn state_json(c: &Container, state: &State) -> Value {
    let (pid, exit_code, finished) = match state {
        State::Running { pid } | State::Paused { pid } => (*pid, 0, None),
        State::Exited { code, finished } => (0, *code, *finished),
        State::Created => (0, 0, None),
    };
    let started: Option<DateTime<Utc>> = match state {
        State::Created => None,
        _ => c.started_at,
    };
    json!({
        "Status": state.word(),
        "Running": state.is_running(),
        "Paused": matches!(state, State::Paused { .. }),
        "Restarting": false,
        "OOMKilled": false,
        "Dead": false,
        "Pid": pid,
        "ExitCode": exit_code,
        "Error": "",
        "StartedAt": go_time(started),
        "FinishedAt": go_time(finished),
    })
}

fn mounts(spec: &Value) -> Vec<Value> {
    spec["mounts"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|m| m["type"] == "bind")
        .map(|m| {
            let options = string_list(&m["options"]);
            let rw = !options.iter().any(|o| o == "ro");
            let propagation = options
                .iter()
                .find(|o| {
                    [
                        "shared", "rshared", "slave", "rslave", "private", "rprivate",
                    ]
                    .contains(&o.as_str())
                })
                .cloned()
                .unwrap_or_else(|| "rprivate".to_string());
            json!({
                "Type": "bind",
                "Source": m["source"],
                "Destination": m["destination"],
                "Mode": if rw { "" } else { "ro" },
                "RW": rw,
                "Propagation": propagation,
            })
        })
        .collect()
}

fn nullable(v: Vec<String>) -> Value {
    if v.is_empty() {
        Value::Null
    } else {
        json!(v)
    }
}

fn host_config(c: &Container) -> Value {
    let r = &c.record;
    let network = network_mode(r);
    json!({
        "Binds": nullable(r.binds.clone()),
        "ContainerIDFile": "",
        "LogConfig": { "Type": "berth", "Config": {} },
        "NetworkMode": network,
        "PortBindings": {},
        "RestartPolicy": { "Name": "no", "MaximumRetryCount": 0 },
        "AutoRemove": r.auto_remove,
        "VolumeDriver": "",
        "VolumesFrom": Value::Null,
        "CapAdd": nullable(r.cap_add.clone()),
        "CapDrop": nullable(r.cap_drop.clone()),
        "Dns": [],
        "DnsOptions": [],
        "DnsSearch": [],
        "ExtraHosts": Value::Null,
        "IpcMode": r.ipc_mode,
        "PidMode": r.pid_mode,
        "UTSMode": r.uts_mode,
        "Privileged": r.privileged,
        "PublishAllPorts": false,
        "ReadonlyRootfs": c.spec["root"]["readonly"].as_bool().unwrap_or(r.read_only),
        "SecurityOpt": nullable(r.security_opt.clone()),
        "Runtime": if c.runtime.is_empty() || c.runtime == super::RUNTIME { "runc".to_string() } else { c.runtime.clone() },
        "Memory": r.memory,
        "NanoCpus": r.nano_cpus,
        "PidsLimit": r.pids_limit,
        "Devices": nullable(r.devices.clone()),
        "Init": Value::Null,
    })
}

fn config(c: &Container) -> Value {
    let r = &c.record;
    let args = c.args();
    let (entrypoint, cmd) = args.split_at(r.entrypoint_len.min(args.len()));
    let process = &c.spec["process"];
    json!({
        "Hostname": c.spec["hostname"].as_str().unwrap_or(""),
        "Domainname": "",
        "User": r.user,
        "AttachStdin": r.attach_stdin,
        "AttachStdout": r.attach_stdout,
        "AttachStderr": r.attach_stderr,
        "Tty": c.tty(),
        "OpenStdin": r.open_stdin,
        "StdinOnce": r.stdin_once,
        "Env": string_list(&process["env"]),
        "Cmd": nullable(cmd.to_vec()),
        "Image": c.image,
        "Volumes": Value::Null,
        "WorkingDir": r.working_dir,
        "Entrypoint": nullable(entrypoint.to_vec()),
        "OnBuild": Value::Null,
        "Labels": c.labels,
        "StopSignal": r.stop_signal,
        "StopTimeout": r.stop_timeout,
    })
}

fn network_mode(r: &super::Record) -> &str {
    if r.network_mode.is_empty() {
        "bridge"
    } else {
        r.network_mode.as_str()
    }
}

/// The document itself, from the container and its state.
pub fn document(c: &Container, state: &State) -> Value {
    let r = &c.record;
    let args = c.args();
    let process = &c.spec["process"];
    let network = network_mode(r);
    let networks = if network == "host" || network == "none" || network == "bridge" {
        json!({ network: { "NetworkID": "", "EndpointID": "", "Gateway": "", "IPAddress": "", "MacAddress": "" } })
    } else {
        json!({})
    };
    json!({
        "Id": c.id,
        "Created": go_time(c.created),
        "Path": args.first().cloned().unwrap_or_default(),
        "Args": args.iter().skip(1).collect::<Vec<_>>(),
        "State": state_json(c, state),
        "Image": r.image_id,
        "ResolvConfPath": "",
        "HostnamePath": "",
        "HostsPath": "",
        "LogPath": "",
        "Name": format!("/{}", c.name),
        "RestartCount": 0,
        "Driver": c.snapshotter,
        "Platform": "linux",
        "MountLabel": "",
        "ProcessLabel": "",
        "AppArmorProfile": process["apparmorProfile"].as_str().unwrap_or(""),
        "ExecIDs": Value::Null,
        "HostConfig": host_config(c),
        "GraphDriver": { "Name": c.snapshotter, "Data": Value::Null },
        "Mounts": mounts(&c.spec),
        "Config": config(c),
        "NetworkSettings": {
            "Bridge": "",
            "SandboxID": "",
            "Ports": {},
            "SandboxKey": "",
            "Networks": networks,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::super::{label, Record};
    use super::*;
    use containerd_client::services::v1 as api;
    use std::collections::HashMap;

    #[test]
    fn document_has_dockers_shape() {
        let record = Record {
            image_id: "sha256:abc".into(),
            entrypoint_len: 1,
            auto_remove: true,
            network_mode: "none".into(),
            binds: vec!["/w:/w:ro".into()],
            ..Default::default()
        };
        let spec = json!({
            "process": { "args": ["/entry.sh", "serve", "-v"], "env": ["PATH=/bin"], "terminal": true },
            "root": { "path": "rootfs", "readonly": true },
            "hostname": "abcdef012345",
            "mounts": [{ "type": "bind", "source": "/w", "destination": "/w", "options": ["rbind", "ro"] }],
        });
        let c = Container::from_api(api::Container {
            id: "abcdef0123456789".into(),
            image: "docker.io/library/busybox:latest".into(),
            labels: HashMap::from([
                (label::NAME.to_string(), "web".to_string()),
                (label::IMAGE.to_string(), "busybox".to_string()),
                (
                    label::CONFIG.to_string(),
                    serde_json::to_string(&record).unwrap(),
                ),
                (
                    label::STARTED_AT.to_string(),
                    "2024-01-02T03:04:05Z".to_string(),
                ),
                ("app".to_string(), "x".to_string()),
            ]),
            spec: Some(prost_types::Any {
                type_url: super::super::SPEC_TYPE_URL.into(),
                value: serde_json::to_vec(&spec).unwrap(),
            }),
            snapshotter: "overlayfs".into(),
            created_at: Some(prost_types::Timestamp {
                seconds: 1_704_164_645,
                nanos: 0,
            }),
            ..Default::default()
        });
        let finished = DateTime::from_timestamp(1_704_164_700, 500_000_000);
        let d = document(&c, &State::Exited { code: 3, finished });
        assert_eq!(d["Id"], "abcdef0123456789");
        assert_eq!(d["Name"], "/web");
        assert_eq!(d["Path"], "/entry.sh");
        assert_eq!(d["Args"], json!(["serve", "-v"]));
        assert_eq!(d["Image"], "sha256:abc");
        assert_eq!(d["Driver"], "overlayfs");
        assert_eq!(d["Created"], "2024-01-02T03:04:05Z");
        assert_eq!(d["State"]["Status"], "exited");
        assert_eq!(d["State"]["Running"], false);
        assert_eq!(d["State"]["ExitCode"], 3);
        assert_eq!(d["State"]["StartedAt"], "2024-01-02T03:04:05Z");
        assert_eq!(d["State"]["FinishedAt"], "2024-01-02T03:05:00.5Z");
        assert_eq!(d["Config"]["Entrypoint"], json!(["/entry.sh"]));
        assert_eq!(d["Config"]["Cmd"], json!(["serve", "-v"]));
        assert_eq!(d["Config"]["Image"], "busybox");
        assert_eq!(d["Config"]["Tty"], true);
        assert_eq!(d["Config"]["Hostname"], "abcdef012345");
        assert_eq!(d["Config"]["Labels"], json!({ "app": "x" }));
        assert_eq!(d["HostConfig"]["AutoRemove"], true);
        assert_eq!(d["HostConfig"]["ReadonlyRootfs"], true);
        assert_eq!(d["HostConfig"]["Privileged"], false);
        assert_eq!(d["HostConfig"]["NetworkMode"], "none");
        assert_eq!(d["HostConfig"]["Binds"], json!(["/w:/w:ro"]));
        assert_eq!(d["Mounts"][0]["RW"], false);
        assert_eq!(d["Mounts"][0]["Mode"], "ro");
        let created = document(&c, &State::Created);
        assert_eq!(created["State"]["StartedAt"], "0001-01-01T00:00:00Z");
        assert_eq!(created["State"]["Status"], "created");
        let running = document(&c, &State::Running { pid: 42 });
        assert_eq!(running["State"]["Pid"], 42);
        assert_eq!(running["State"]["Running"], true);
    }
}
