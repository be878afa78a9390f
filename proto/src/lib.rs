//! berth's wire contracts.
//!
//! `berth::v1` is berth's own extension service (stdio relay, logs, image
//! load). `containerd` holds the server side of the containerd services the
//! gateway serves; their message types (and every client) come from the
//! `containerd-client` crate.

pub use containerd_client;

/// `google.protobuf.Empty` as prost maps it.
pub type Empty = ();

/// The only value a client may put in a task's or exec's `stdin`, `stdout`
/// or `stderr` field: "connect this stream to the gateway's relay". An empty
/// field means the stream is not connected (/dev/null). Anything else — a
/// host path, `binary://`, `file://` — is refused (boundary rule 4); the
/// gateway replaces the marker with FIFOs it created itself.
pub const STDIO_RELAY: &str = "berth-relay";

/// Container and spec annotation keys berth's CLI and gateway agree on.
pub mod labels {
    /// The docker-style container name (without the leading slash).
    pub const NAME: &str = "berth.name";
    /// The image reference as the user typed it (`busybox`).
    pub const IMAGE: &str = "berth.image";
    /// Spec annotation: `none` asks for a private, empty network namespace
    /// instead of the sandbox's (docker's `--network none`).
    pub const NETWORK: &str = "berth.network";
}

pub mod berth {
    pub mod v1 {
        tonic::include_proto!("berth.v1");
    }
}

/// Server traits of the containerd services the gateway serves, one module
/// per service, named after its protobuf package.
pub mod containerd {
    pub mod version {
        include!(concat!(env!("OUT_DIR"), "/containerd.services.version.v1.Version.rs"));
    }
    pub mod namespaces {
        include!(concat!(env!("OUT_DIR"), "/containerd.services.namespaces.v1.Namespaces.rs"));
    }
    pub mod containers {
        include!(concat!(env!("OUT_DIR"), "/containerd.services.containers.v1.Containers.rs"));
    }
    pub mod images {
        include!(concat!(env!("OUT_DIR"), "/containerd.services.images.v1.Images.rs"));
    }
    pub mod content {
        include!(concat!(env!("OUT_DIR"), "/containerd.services.content.v1.Content.rs"));
    }
    pub mod snapshots {
        include!(concat!(env!("OUT_DIR"), "/containerd.services.snapshots.v1.Snapshots.rs"));
    }
    pub mod tasks {
        include!(concat!(env!("OUT_DIR"), "/containerd.services.tasks.v1.Tasks.rs"));
    }
    pub mod leases {
        include!(concat!(env!("OUT_DIR"), "/containerd.services.leases.v1.Leases.rs"));
    }
    pub mod events {
        include!(concat!(env!("OUT_DIR"), "/containerd.services.events.v1.Events.rs"));
    }
}
