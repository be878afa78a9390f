//! What the gateway knows of the sandbox it serves, derived once from the
//! config. Admission and hardening read it; nothing in it comes from a client.

use std::path::PathBuf;

use crate::config::Config;

/// The only runtime a container may use (boundary rule 3).
pub const RUNTIME: &str = "io.containerd.runc.v2";

#[derive(Debug, Clone)]
pub struct Sandbox {
    pub namespace: String,
    pub netns_path: PathBuf,
    /// Injected into every process: HTTP_PROXY, HTTPS_PROXY, NO_PROXY,
    /// ALL_PROXY and their lower-case twins.
    pub proxy_env: Vec<(String, String)>,
    pub volume_roots: Vec<PathBuf>,
    pub snapshotter: String,
    pub state_dir: PathBuf,
}

impl Sandbox {
    pub fn from_config(cfg: &Config) -> Self {
        let mut proxy_env = Vec::new();
        for (name, value) in [
            ("HTTP_PROXY", cfg.proxy_url.as_str()),
            ("HTTPS_PROXY", cfg.proxy_url.as_str()),
            ("ALL_PROXY", cfg.proxy_url.as_str()),
            ("NO_PROXY", cfg.no_proxy.as_str()),
        ] {
            proxy_env.push((name.to_string(), value.to_string()));
            proxy_env.push((name.to_lowercase(), value.to_string()));
        }
        Self {
            namespace: cfg.namespace.clone(),
            netns_path: cfg.netns_path.clone(),
            proxy_env,
            volume_roots: cfg.volume_roots.clone(),
            snapshotter: cfg.snapshotter.clone(),
            state_dir: cfg.state_dir.clone(),
        }
    }

    /// cgroup path of a container, under a parent per sandbox namespace.
    pub fn cgroups_path(&self, container_id: &str) -> String {
        format!("/berth/{}/{}", self.namespace, container_id)
    }
}
