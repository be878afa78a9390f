//! Every environment variable berth reads, in one place.

/// The gateway's containerd socket, as `unix:///path`.
pub const CONTAINERD_ADDR: &str = "BERTH_CONTAINERD_ADDR";
/// The gateway's BuildKit socket, as `unix:///path` (used by `build`).
pub const BUILDKIT_ADDR: &str = "BERTH_BUILDKIT_ADDR";
/// Default gateway BuildKit socket when `BERTH_BUILDKIT_ADDR` is unset.
pub const DEFAULT_BUILDKIT_ADDR: &str = "unix:///run/berth/buildkit.sock";
/// `1`: `build` ends with `berth: context sent: N bytes in M files` on
/// stderr, the file contents its context transfers sent (for tests of
/// incremental sends).
pub const DEBUG_TRANSFER: &str = "BERTH_DEBUG_TRANSFER";
/// The sandbox's workspace; bind mounts may only come from below it (set by the stack;
/// the gateway enforces it, the CLI does not need to read it).
#[allow(dead_code)]
pub const WORKSPACE: &str = "BERTH_WORKSPACE";
/// Default gateway containerd socket when `BERTH_CONTAINERD_ADDR` is unset.
pub const DEFAULT_CONTAINERD_ADDR: &str = "unix:///run/berth/containerd.sock";
/// docker's client config directory (`config.json` with registry
/// credentials, `certs.d/<host:port>/` with registry CAs); default `~/.docker`.
pub const DOCKER_CONFIG: &str = "DOCKER_CONFIG";
/// The home directory, for the default `~/.docker`.
pub const HOME: &str = "HOME";
/// The proxy registries are reached through (HTTP CONNECT), as Go reads them:
/// `HTTPS_PROXY` first, then `HTTP_PROXY`, each also in lower case.
pub const HTTPS_PROXY: &str = "HTTPS_PROXY";
pub const HTTPS_PROXY_LOWER: &str = "https_proxy";
pub const HTTP_PROXY: &str = "HTTP_PROXY";
pub const HTTP_PROXY_LOWER: &str = "http_proxy";
/// Hosts reached directly, not through the proxy (Go's syntax).
pub const NO_PROXY: &str = "NO_PROXY";
pub const NO_PROXY_LOWER: &str = "no_proxy";
/// Where a pull keeps its downloads until the gateway imports them.
pub const TMPDIR: &str = "TMPDIR";
