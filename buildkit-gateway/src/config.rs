//! The gateway's configuration file (TOML). Every key is documented here and
//! unknown keys are refused, so a typo cannot silently weaken the boundary.

use std::path::{Path, PathBuf};

use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The sandbox's containerd namespace; every request is pinned to it.
    pub namespace: String,
    /// The real containerd socket (never exposed to the sandbox).
    pub containerd_socket: PathBuf,
    /// Where the containerd facade listens for the sandbox.
    pub listen_containerd: PathBuf,
    /// Where the BuildKit facade listens for the sandbox (later issue).
    #[serde(default)]
    pub listen_buildkit: Option<PathBuf>,
    /// Gateway-private state: FIFOs, logs. Must not be writable by the agent.
    pub state_dir: PathBuf,
    /// Directory with the Rego policies and their data.
    pub policy_dir: PathBuf,
    /// The sandbox's network namespace; every container joins it.
    pub netns_path: PathBuf,
    /// The sandbox proxy, injected as HTTP_PROXY and friends.
    pub proxy_url: String,
    /// Injected as NO_PROXY and no_proxy.
    #[serde(default)]
    pub no_proxy: String,
    /// Host directories bind mounts may come from.
    pub volume_roots: Vec<PathBuf>,
    /// The only snapshotter containers may use.
    pub snapshotter: String,
}

impl Config {
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("reading config {}: {e}", path.display()))?;
        let cfg: Config = toml::from_str(&text)
            .map_err(|e| anyhow::anyhow!("parsing config {}: {e}", path.display()))?;
        Ok(cfg)
    }
}
