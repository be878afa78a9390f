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
