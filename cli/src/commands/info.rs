//! `docker info`: docker's layout and `--format` fields, filled from what
//! the gateway serves (containers, tasks, images, the daemon's version and
//! the sandbox's namespace) and from this machine (kernel, CPUs, memory),
//! which is the one the sandbox's containers run on.

use std::collections::HashSet;

use containerd_client::services::v1 as api;
use containerd_client::services::v1::containers_client::ContainersClient;
use containerd_client::services::v1::images_client::ImagesClient;
use containerd_client::services::v1::namespaces_client::NamespacesClient;
use containerd_client::services::v1::tasks_client::TasksClient;
use containerd_client::types::v1::{Process, Status};
use serde_json::{json, Value};

use super::version::{client_version, daemon_version, kernel_version};
use crate::cli::FormatArgs;
use crate::client::Gateway;
use crate::error::{CliError, Result};
use crate::format::{self, output, units};

const STORAGE_DRIVER: &str = "overlayfs";
const RUNTIME: &str = "io.containerd.runc.v2";
/// containerd's runc shim manages cgroups itself unless told to use
/// systemd, and the gateway sets no such option.
const CGROUP_DRIVER: &str = "cgroupfs";
/// Where the gateway keeps container output (berth's own log store).
const LOGGING_DRIVER: &str = "berth-gateway";

pub async fn info(
    gw: &crate::client::Gateway,
    a: crate::cli::FormatArgs,
) -> crate::error::Result<i32> {
    output::finish(run(gw, a).await)
}

async fn run(gw: &Gateway, a: FormatArgs) -> Result<i32> {
    let template = match a.format.as_deref() {
        None | Some("") => None,
        Some("json") => Some(format::parse_inspect("{{json .}}")?),
        Some(f) => Some(format::parse_inspect(f)?),
    };
    let data = collect(gw).await?;
    match template {
        Some(t) => {
            let text = format::execute_inspect(&t, &data).map_err(|e| {
                CliError::general(
                    e.message
                        .trim_start_matches("template parsing error: ")
                        .to_string(),
                )
            })?;
            output::print(&format!("{text}\n"))?;
        }
        None => output::print(&pretty(&data))?,
    }
    Ok(0)
}

/// Counts of containers by task state: (total, running, paused, stopped).
async fn container_counts(gw: &Gateway) -> Result<(usize, usize, usize, usize)> {
    let containers = ContainersClient::new(gw.channel.clone())
        .list(api::ListContainersRequest {
            filters: Vec::new(),
        })
        .await?
        .into_inner()
        .containers;
    let tasks = TasksClient::new(gw.channel.clone())
        .list(api::ListTasksRequest {
            filter: String::new(),
        })
        .await?
        .into_inner()
        .tasks;
    let ids: HashSet<&str> = containers.iter().map(|c| c.id.as_str()).collect();
    let (mut running, mut paused) = (0, 0);
    // containerd names an init process by its container in `id` and leaves
    // `container_id` empty.
    let owner = |t: &Process| {
        if t.container_id.is_empty() {
            t.id.clone()
        } else {
            t.container_id.clone()
        }
    };
    for t in tasks.iter().filter(|t| ids.contains(owner(t).as_str())) {
        match Status::try_from(t.status) {
            Ok(Status::Running) => running += 1,
            Ok(Status::Paused | Status::Pausing) => paused += 1,
            _ => {}
        }
    }
    let total = containers.len();
    Ok((total, running, paused, total - running - paused))
}

/// The number of images: distinct contents the sandbox's names point to.
async fn image_count(gw: &Gateway) -> Result<usize> {
    let images = ImagesClient::new(gw.channel.clone())
        .list(api::ListImagesRequest {
            filters: Vec::new(),
        })
        .await?
        .into_inner()
        .images;
    Ok(images
        .iter()
        .filter_map(|i| i.target.as_ref().map(|t| t.digest.clone()))
        .collect::<HashSet<_>>()
        .len())
}

/// The namespace the gateway pins the sandbox to (the only one it shows).
async fn namespace(gw: &Gateway) -> Option<String> {
    let r = NamespacesClient::new(gw.channel.clone())
        .list(api::ListNamespacesRequest {
            filter: String::new(),
        })
        .await
        .ok()?;
    r.into_inner().namespaces.into_iter().next().map(|n| n.name)
}

fn read_trimmed(path: &str) -> String {
    std::fs::read_to_string(path)
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

fn operating_system() -> String {
    let text = std::fs::read_to_string("/etc/os-release").unwrap_or_default();
    text.lines()
        .find_map(|l| l.strip_prefix("PRETTY_NAME="))
        .map(|v| v.trim_matches('"').to_string())
        .unwrap_or_else(|| "Linux".to_string())
}

fn mem_total() -> u64 {
    let text = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    text.lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

/// CPUs this process may run on, as Go's `runtime.NumCPU`.
fn cpus() -> usize {
    nix::sched::sched_getaffinity(nix::unistd::Pid::from_raw(0))
        .map(|set| {
            (0..nix::sched::CpuSet::count())
                .filter(|&i| set.is_set(i).unwrap_or(false))
                .count()
        })
        .ok()
        .filter(|&n| n > 0)
        .unwrap_or(1)
}

fn cgroup_version() -> &'static str {
    if std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
        "2"
    } else {
        "1"
    }
}

/// docker's info fields (the ones berth can fill), plus `ClientInfo` and
/// berth's own section.
async fn collect(gw: &Gateway) -> Result<Value> {
    let (total, running, paused, stopped) = container_counts(gw).await?;
    let images = image_count(gw).await?;
    let (containerd, revision) = daemon_version(gw).await?;
    let ns = namespace(gw).await;
    Ok(json!({
        "ID": "",
        "Containers": total,
        "ContainersRunning": running,
        "ContainersPaused": paused,
        "ContainersStopped": stopped,
        "Images": images,
        "Driver": STORAGE_DRIVER,
        "DriverStatus": [["driver-type", "io.containerd.snapshotter.v1"]],
        "Plugins": {"Volume": null, "Network": null, "Authorization": null, "Log": null},
        "Debug": false,
        "LoggingDriver": LOGGING_DRIVER,
        "CgroupDriver": CGROUP_DRIVER,
        "CgroupVersion": cgroup_version(),
        "KernelVersion": kernel_version(),
        "OperatingSystem": operating_system(),
        "OSVersion": "",
        "OSType": std::env::consts::OS,
        "Architecture": std::env::consts::ARCH,
        "IndexServerAddress": "",
        "NCPU": cpus(),
        "MemTotal": mem_total(),
        "DockerRootDir": "",
        "Name": read_trimmed("/proc/sys/kernel/hostname"),
        "Labels": [],
        "ExperimentalBuild": false,
        "ServerVersion": client_version(),
        "Runtimes": {RUNTIME: {"path": RUNTIME}},
        "DefaultRuntime": RUNTIME,
        "Swarm": {"LocalNodeState": "inactive"},
        "LiveRestoreEnabled": false,
        "ContainerdCommit": {"ID": revision},
        "ContainerdVersion": containerd,
        "SecurityOptions": ["name=seccomp,profile=builtin", "name=no-new-privileges"],
        "Warnings": null,
        "ClientInfo": {
            "Debug": false,
            "Version": client_version(),
            "Context": "default",
            "Plugins": [],
            "Warnings": null,
        },
        "Berth": {
            "Gateway": format!("unix://{}", gw.socket.display()),
            "Namespace": ns,
        },
    }))
}

/// docker's human layout of the fields above.
fn pretty(d: &Value) -> String {
    let s = |k: &str| d[k].as_str().unwrap_or_default().to_string();
    let n = |k: &str| d[k].as_u64().unwrap_or_default();
    let mut out = String::new();
    let mut line = |l: String| {
        out.push_str(&l);
        out.push('\n');
    };
    line("Client: berth".into());
    line(format!(
        " Version:    {}",
        d["ClientInfo"]["Version"].as_str().unwrap_or_default()
    ));
    line(" Context:    default".into());
    line(" Debug Mode: false".into());
    line(String::new());
    line("Server:".into());
    line(format!(" Containers: {}", n("Containers")));
    line(format!("  Running: {}", n("ContainersRunning")));
    line(format!("  Paused: {}", n("ContainersPaused")));
    line(format!("  Stopped: {}", n("ContainersStopped")));
    line(format!(" Images: {}", n("Images")));
    line(format!(" Server Version: {}", s("ServerVersion")));
    line(format!(" Storage Driver: {}", s("Driver")));
    line("  driver-type: io.containerd.snapshotter.v1".into());
    line(format!(" Logging Driver: {}", s("LoggingDriver")));
    line(format!(" Cgroup Driver: {}", s("CgroupDriver")));
    line(format!(" Cgroup Version: {}", s("CgroupVersion")));
    line(" Swarm: inactive".into());
    line(format!(" Runtimes: {RUNTIME}"));
    line(format!(" Default Runtime: {}", s("DefaultRuntime")));
    line(format!(
        " containerd version: {} ({})",
        s("ContainerdVersion"),
        d["ContainerdCommit"]["ID"].as_str().unwrap_or_default()
    ));
    line(" Security Options:".into());
    line("  seccomp".into());
    line("   Profile: builtin".into());
    line("  no-new-privileges".into());
    line(format!(" Kernel Version: {}", s("KernelVersion")));
    line(format!(" Operating System: {}", s("OperatingSystem")));
    line(format!(" OSType: {}", s("OSType")));
    line(format!(" Architecture: {}", s("Architecture")));
    line(format!(" CPUs: {}", n("NCPU")));
    line(format!(
        " Total Memory: {}",
        units::bytes_size(n("MemTotal") as f64)
    ));
    line(format!(" Name: {}", s("Name")));
    line(" Debug Mode: false".into());
    line(" Experimental: false".into());
    line(" Live Restore Enabled: false".into());
    line(String::new());
    line("Berth:".into());
    line(format!(
        " Gateway: {}",
        d["Berth"]["Gateway"].as_str().unwrap_or_default()
    ));
    let ns = d["Berth"]["Namespace"]
        .as_str()
        .map_or("(hidden)".to_string(), str::to_string);
    line(format!(
        " Namespace: {ns} (pinned by the gateway; the CLI cannot choose another)"
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pretty_uses_docker_labels() {
        let d = json!({
            "Containers": 3, "ContainersRunning": 1, "ContainersPaused": 0, "ContainersStopped": 2, "Images": 1,
            "ServerVersion": "26.1.5+berth.0.1.0", "Driver": "overlayfs", "LoggingDriver": "berth-gateway",
            "CgroupDriver": "cgroupfs", "CgroupVersion": "2", "DefaultRuntime": RUNTIME,
            "ContainerdVersion": "1.7.24", "ContainerdCommit": {"ID": "abc"}, "KernelVersion": "6.1.0",
            "OperatingSystem": "Debian GNU/Linux 12 (bookworm)", "OSType": "linux", "Architecture": "x86_64",
            "NCPU": 2, "MemTotal": 2_097_152_000u64, "Name": "host",
            "ClientInfo": {"Version": "26.1.5+berth.0.1.0"},
            "Berth": {"Gateway": "unix:///run/berth/containerd.sock", "Namespace": "berth-sandbox"},
        });
        let text = pretty(&d);
        assert!(
            text.starts_with("Client: berth\n Version:    26.1.5+berth.0.1.0\n"),
            "{text}"
        );
        assert!(
            text.contains(
                "\nServer:\n Containers: 3\n  Running: 1\n  Paused: 0\n  Stopped: 2\n Images: 1\n"
            ),
            "{text}"
        );
        assert!(text.contains("\n Total Memory: 1.953GiB\n"), "{text}");
        assert!(
            text.contains("\n Namespace: berth-sandbox (pinned by the gateway"),
            "{text}"
        );
    }
}
