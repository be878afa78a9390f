//! What the gateway knows of the sandbox it serves, derived once from the
//! config. Admission and hardening read it; nothing in it comes from a client.

use std::path::PathBuf;

use crate::config::Config;
use crate::userns::{self, IdMap};

/// The only runtime a container may use (boundary rule 3).
pub const RUNTIME: &str = "io.containerd.runc.v2";

/// Where containers find the proxy's CA bundle, when one is configured.
pub const PROXY_CA_PATH: &str = "/etc/berth/proxy-ca.crt";

/// Variables that name a CA bundle for the common TLS stacks: OpenSSL and
/// Go (`SSL_CERT_FILE`), curl, Python requests, git, and Node.js (which adds
/// it to its own roots).
pub const CA_VARS: [&str; 5] = [
    "SSL_CERT_FILE",
    "CURL_CA_BUNDLE",
    "REQUESTS_CA_BUNDLE",
    "GIT_SSL_CAINFO",
    "NODE_EXTRA_CA_CERTS",
];

#[derive(Debug, Clone)]
pub struct Sandbox {
    pub namespace: String,
    pub netns_path: PathBuf,
    /// Injected into every process: HTTP_PROXY, HTTPS_PROXY, NO_PROXY,
    /// ALL_PROXY and their lower-case twins.
    pub proxy_env: Vec<(String, String)>,
    /// The proxy's CA bundle on the host, mounted read-only into every
    /// container at [`PROXY_CA_PATH`] (None: the proxy does not intercept
    /// TLS).
    pub proxy_ca: Option<PathBuf>,
    /// Injected with the proxy variables when `proxy_ca` is set: each of
    /// [`CA_VARS`] = [`PROXY_CA_PATH`].
    pub ca_env: Vec<(String, String)>,
    pub volume_roots: Vec<PathBuf>,
    pub snapshotter: String,
    pub state_dir: PathBuf,
    /// The sandbox's ID range: when set, every container runs in a user
    /// namespace mapping its root to this range, on remapped snapshots
    /// (`crate::userns`).
    pub userns: Option<IdMap>,
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
        let ca_env = match &cfg.proxy_ca {
            Some(_) => CA_VARS
                .iter()
                .map(|v| (v.to_string(), PROXY_CA_PATH.to_string()))
                .collect(),
            None => Vec::new(),
        };
        Self {
            namespace: cfg.namespace.clone(),
            netns_path: cfg.netns_path.clone(),
            proxy_env,
            proxy_ca: cfg.proxy_ca.clone(),
            ca_env,
            volume_roots: cfg.volume_roots.clone(),
            snapshotter: cfg.snapshotter.clone(),
            state_dir: cfg.state_dir.clone(),
            userns: cfg.userns,
        }
    }

    /// Where containers in a user namespace find the sandbox's sysfs (see
    /// `userns::ensure_sysfs`).
    pub fn userns_sysfs(&self) -> PathBuf {
        userns::sysfs_dir(&self.state_dir)
    }

    /// cgroup path of a container, under a parent per sandbox namespace.
    pub fn cgroups_path(&self, container_id: &str) -> String {
        format!("/berth/{}/{}", self.namespace, container_id)
    }
}
