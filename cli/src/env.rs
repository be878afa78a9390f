//! Every environment variable berth reads, in one place.

/// The gateway's containerd socket, as `unix:///path`.
pub const CONTAINERD_ADDR: &str = "BERTH_CONTAINERD_ADDR";
/// The gateway's BuildKit socket, as `unix:///path` (used by `build`, next milestone).
#[allow(dead_code)]
pub const BUILDKIT_ADDR: &str = "BERTH_BUILDKIT_ADDR";
/// The sandbox's workspace; bind mounts may only come from below it (set by the stack;
/// the gateway enforces it, the CLI does not need to read it).
#[allow(dead_code)]
pub const WORKSPACE: &str = "BERTH_WORKSPACE";
/// Default gateway containerd socket when `BERTH_CONTAINERD_ADDR` is unset.
pub const DEFAULT_CONTAINERD_ADDR: &str = "unix:///run/berth/containerd.sock";
