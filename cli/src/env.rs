//! Every environment variable berth reads, in one place.

/// The gateway's containerd socket, as `unix:///path`.
pub const CONTAINERD_ADDR: &str = "BERTH_CONTAINERD_ADDR";
/// The gateway's BuildKit socket, as `unix:///path`.
pub const BUILDKIT_ADDR: &str = "BERTH_BUILDKIT_ADDR";
/// The sandbox's workspace; bind mounts may only come from below it.
pub const WORKSPACE: &str = "BERTH_WORKSPACE";
/// Default gateway containerd socket when `BERTH_CONTAINERD_ADDR` is unset.
pub const DEFAULT_CONTAINERD_ADDR: &str = "unix:///run/berth/containerd.sock";
