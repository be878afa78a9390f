//! The gateway's configuration file (TOML). Every key is documented here and
//! unknown keys are refused, so a typo cannot silently weaken the boundary.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::buildkit::dial::UpstreamAddr;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The sandbox's containerd namespace; every request is pinned to it.
    pub namespace: String,
    /// The real containerd socket (never exposed to the sandbox).
    pub containerd_socket: PathBuf,
    /// Where the containerd facade listens for the sandbox.
    pub listen_containerd: PathBuf,
    /// Where the BuildKit facade listens for the sandbox. Needs
    /// `buildkit_upstream`; without it no build is served.
    #[serde(default)]
    pub listen_buildkit: Option<PathBuf>,
    /// The BuildKit the facade forwards to (never exposed to the sandbox):
    /// `unix:///path/buildkitd.sock` for a buildkitd, or
    /// `docker+unix:///path/docker.sock` for Docker Engine's embedded BuildKit
    /// (reached with `POST /grpc` and an upgrade to h2c).
    #[serde(default)]
    pub buildkit_upstream: Option<UpstreamAddr>,
    /// Gateway-private state: FIFOs, logs. Must not be writable by the agent.
    pub state_dir: PathBuf,
    /// Directory with the Rego policies and their data.
    pub policy_dir: PathBuf,
    /// The sandbox owner's policy data: a JSON file whose only key is
    /// `site` (e.g. `site.images`: the registries and repositories the
    /// sandbox may use; `policies/images/admit.rego`). Without it the
    /// project's defaults in `policy_dir` apply.
    #[serde(default)]
    pub policy_site_data: Option<PathBuf>,
    /// The sandbox's network namespace; every container joins it.
    pub netns_path: PathBuf,
    /// The sandbox proxy, injected as HTTP_PROXY and friends.
    pub proxy_url: String,
    /// Injected as NO_PROXY and no_proxy.
    #[serde(default)]
    pub no_proxy: String,
    /// The proxy's CA bundle (PEM), when the proxy intercepts TLS: mounted
    /// read-only into every container at `sandbox::PROXY_CA_PATH`, with
    /// `SSL_CERT_FILE` and the other usual variables pointing at it.
    #[serde(default)]
    pub proxy_ca: Option<PathBuf>,
    /// Host directories bind mounts may come from.
    pub volume_roots: Vec<PathBuf>,
    /// The only snapshotter containers may use.
    pub snapshotter: String,
    /// Per-sandbox quotas, a `[quota]` table (`quota.rs`): `content_bytes`
    /// (default 20 GiB; also bounds a decompressed `load` archive),
    /// `snapshots` (default 4096), `leases` (client leases, default 1024).
    #[serde(default)]
    pub quota: crate::quota::Quotas,
    /// `{ uid, gid, size }`: every container in a user namespace, root at host uid/gid (`userns`).
    #[serde(default)]
    pub userns: Option<crate::userns::IdMap>,
}

impl Config {
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("reading config {}: {e}", path.display()))?;
        let cfg: Config = toml::from_str(&text)
            .map_err(|e| anyhow::anyhow!("parsing config {}: {e}", path.display()))?;
        if cfg.listen_buildkit.is_some() && cfg.buildkit_upstream.is_none() {
            anyhow::bail!(
                "config {}: listen_buildkit needs buildkit_upstream",
                path.display()
            );
        }
        Ok(cfg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = r#"
namespace = "ns"
containerd_socket = "/run/c.sock"
listen_containerd = "/run/g/c.sock"
state_dir = "/var/lib/g"
policy_dir = "/p"
netns_path = "/run/netns/s"
proxy_url = "http://10.200.0.1:3128"
volume_roots = []
snapshotter = "overlayfs"
"#;

    fn load(extra: &str) -> anyhow::Result<Config> {
        let dir = std::env::temp_dir().join(format!(
            "berth-config-test-{}-{:x}",
            std::process::id(),
            rand::random::<u64>()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("gateway.toml");
        std::fs::write(&path, format!("{BASE}{extra}")).unwrap();
        let res = Config::load(&path);
        std::fs::remove_dir_all(&dir).unwrap();
        res
    }

    #[test]
    fn buildkit_keys() {
        let cfg = load(
            "listen_buildkit = \"/run/g/b.sock\"\nbuildkit_upstream = \"docker+unix:///run/d.sock\"\n",
        )
        .unwrap();
        assert_eq!(
            cfg.buildkit_upstream,
            Some(UpstreamAddr::DockerUnix("/run/d.sock".into()))
        );
        assert!(load("").unwrap().buildkit_upstream.is_none());
        let err = load("listen_buildkit = \"/run/g/b.sock\"\n").unwrap_err();
        assert!(err.to_string().contains("needs buildkit_upstream"), "{err}");
        let err = load("buildkit_upstream = \"tcp://1.2.3.4:1\"\n").unwrap_err();
        assert!(err.to_string().contains("is not unix:///path"), "{err:#}");
    }

    #[test]
    fn quota_keys_default_and_refuse_typos() {
        use crate::quota::{Quotas, DEFAULT_SNAPSHOTS};
        assert_eq!(load("").unwrap().quota, Quotas::default());
        let cfg = load("[quota]\ncontent_bytes = 1024\nleases = 3\n").unwrap();
        assert_eq!(cfg.quota.content_bytes, 1024);
        assert_eq!(cfg.quota.leases, 3);
        assert_eq!(cfg.quota.snapshots, DEFAULT_SNAPSHOTS);
        assert!(load("[quota]\ncontent = 1\n").is_err());
    }
}
