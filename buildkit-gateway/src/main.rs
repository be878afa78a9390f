//! `berth-gateway --config FILE`: serves one sandbox its containerd facade
//! (and berth's stdio, logs and image-load services) on a unix socket, and
//! talks to the real containerd on the sandbox's behalf.

mod audit;
// The BuildKit facade's service; its decisions are in the library
// (`berth_gateway::buildkit`).
#[path = "buildkit/facade.rs"]
mod buildkit_facade;
// Its accept loop and the sessions opened with `POST /session`.
#[path = "buildkit/facade_upgrade.rs"]
mod buildkit_upgrade;
mod error;
mod server;
mod services;
mod stdio;

use std::fs::DirBuilder;
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use berth_gateway::config::Config;
use berth_gateway::policy::PolicyEngine;
use berth_gateway::sandbox::Sandbox;
use berth_gateway::upstream::Upstream;
use clap::Parser;
use tokio::net::UnixListener;
use tokio::signal::unix::{signal, SignalKind};

use crate::server::Ctx;
use crate::stdio::Relays;

/// How long running calls (a followed log, an attached process) may take to
/// finish after SIGTERM before the gateway exits anyway.
const GRACE: Duration = Duration::from_secs(5);

#[derive(Parser)]
#[command(
    name = "berth-gateway",
    version,
    about = "Per-sandbox policy gateway in front of containerd and BuildKit"
)]
struct Args {
    /// The gateway's configuration file (TOML).
    #[arg(long, value_name = "FILE")]
    config: PathBuf,
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("berth-gateway: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &Args) -> anyhow::Result<()> {
    let cfg = Config::load(&args.config)?;
    if !stdio::valid_id(&cfg.namespace) {
        bail!(
            "invalid namespace {:?} in {}",
            cfg.namespace,
            args.config.display()
        );
    }
    let engine = PolicyEngine::load_with_site(&cfg.policy_dir, cfg.policy_site_data.as_deref())
        .with_context(|| format!("loading policies from {}", cfg.policy_dir.display()))?;
    let sb = Sandbox::from_config(&cfg);
    let dirs = StateDirs::prepare(&cfg.state_dir)?;

    // Small on purpose: one gateway runs per sandbox, and idle memory counts.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("berth-gateway")
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let res = runtime.block_on(serve(cfg, engine, sb, dirs));
    runtime.shutdown_timeout(Duration::from_secs(1));
    res
}

async fn serve(
    cfg: Config,
    engine: PolicyEngine,
    sb: Sandbox,
    dirs: StateDirs,
) -> anyhow::Result<()> {
    let buildkit = match (&cfg.listen_buildkit, &cfg.buildkit_upstream) {
        (Some(path), Some(addr)) => {
            let facade = Arc::new(buildkit_facade::Facade::new(
                engine.clone(),
                sb.clone(),
                addr,
            ));
            let listener = bind(path)?;
            audit::info(&format!(
                "serving the BuildKit facade on {}, forwarding to {addr}",
                path.display()
            ));
            let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
            let task = tokio::spawn(async move {
                let shutdown = async {
                    let _ = stopped.await;
                };
                if let Err(e) = buildkit_facade::serve(facade, listener, shutdown).await {
                    audit::internal_error(&format!("the BuildKit facade stopped: {e:#}"));
                }
            });
            Some((stop, task, path.clone()))
        }
        _ => None,
    };
    let up = Upstream::new(&cfg.containerd_socket, &cfg.namespace)?;
    let relays = Relays::new(dirs.io, dirs.logs);
    match relays.recover() {
        Ok(0) => {}
        Ok(n) => audit::info(&format!(
            "picked up the stdio of {n} processes of a previous gateway"
        )),
        Err(e) => audit::warn(&format!("recovering relays: {e}")),
    }
    let ctx = Arc::new(Ctx {
        up,
        sb,
        engine,
        relays,
        tmp_dir: dirs.tmp,
        quotas: cfg.quota,
    });

    let mut term = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    let mut int = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
    let listener = bind(&cfg.listen_containerd)?;
    audit::info(&format!(
        "serving the containerd facade for namespace {} on {}",
        cfg.namespace,
        cfg.listen_containerd.display()
    ));

    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let mut server = tokio::spawn(server::serve(ctx, listener, async {
        let _ = stopped.await;
    }));
    let res = tokio::select! {
        r = &mut server => r.context("server task")?,
        _ = term.recv() => Ok(()),
        _ = int.recv() => Ok(()),
    };
    if !server.is_finished() {
        audit::info("stopping: no new connections; waiting for running calls");
        let _ = stop.send(());
        if tokio::time::timeout(GRACE, &mut server).await.is_err() {
            audit::info("stopping: calls still running after the grace period are cut");
        }
    }
    let _ = std::fs::remove_file(&cfg.listen_containerd);
    if let Some((stop, mut task, path)) = buildkit {
        let _ = stop.send(());
        if tokio::time::timeout(GRACE, &mut task).await.is_err() {
            audit::info("stopping: builds still running after the grace period are cut");
        }
        let _ = std::fs::remove_file(path);
    }
    res
}

/// Binds the facade socket, replacing a stale socket file but never a live
/// gateway's or anything that is not a socket. 0666: the agent is another
/// user, and the directory the socket is in decides who reaches it.
fn bind(path: &Path) -> anyhow::Result<UnixListener> {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_socket() => {
            if std::os::unix::net::UnixStream::connect(path).is_ok() {
                bail!("another process is serving {}", path.display());
            }
            std::fs::remove_file(path)
                .with_context(|| format!("removing stale {}", path.display()))?;
        }
        Ok(_) => bail!("refusing to replace {}: not a socket", path.display()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("checking {}", path.display())),
    }
    let listener =
        UnixListener::bind(path).with_context(|| format!("listening on {}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o666))
        .with_context(|| format!("making {} reachable", path.display()))?;
    Ok(listener)
}

/// The gateway's private directories under `state_dir`.
struct StateDirs {
    io: PathBuf,
    logs: PathBuf,
    tmp: PathBuf,
}

impl StateDirs {
    /// Creates them 0700 and makes sure nobody else owns them: whoever owns
    /// the state dir could swap the FIFOs the shim opens as root.
    fn prepare(state: &Path) -> anyhow::Result<Self> {
        let dirs = Self {
            io: state.join("io"),
            logs: state.join("logs"),
            tmp: state.join("tmp"),
        };
        let me = nix::unistd::geteuid().as_raw();
        for d in [state, &dirs.io, &dirs.logs, &dirs.tmp] {
            DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(d)
                .with_context(|| format!("creating {}", d.display()))?;
            let m = std::fs::symlink_metadata(d)
                .with_context(|| format!("checking {}", d.display()))?;
            if !m.is_dir() {
                bail!("{} is not a directory", d.display());
            }
            if m.uid() != me {
                bail!(
                    "refusing state directory {}: owned by uid {}, not the gateway's uid {me}",
                    d.display(),
                    m.uid()
                );
            }
            std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o700))
                .with_context(|| format!("making {} private", d.display()))?;
        }
        // Archives spooled by a load the previous gateway did not finish.
        for e in std::fs::read_dir(&dirs.tmp)
            .with_context(|| format!("reading {}", dirs.tmp.display()))?
        {
            let p = e?.path();
            let _ = std::fs::remove_file(&p);
        }
        Ok(dirs)
    }
}
