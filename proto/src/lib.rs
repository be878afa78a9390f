//! berth's wire contracts.
//!
//! `berth::v1` is berth's own extension service (stdio relay, logs, image
//! load). `containerd` holds the server side of the containerd services the
//! gateway serves; their message types (and every client) come from the
//! `containerd-client` crate.

pub use containerd_client;

/// `google.protobuf.Empty` as prost maps it.
pub type Empty = ();

/// `google.rpc.Status`: what a gRPC error's `grpc-status-details-bin`
/// carries. BuildKit puts the Dockerfile location of a failed step there
/// (`errdefs.Source`); the gateway filters the details and the CLI prints
/// that location.
#[derive(Clone, PartialEq, prost::Message)]
pub struct RpcStatus {
    #[prost(int32, tag = "1")]
    pub code: i32,
    #[prost(string, tag = "2")]
    pub message: String,
    #[prost(message, repeated, tag = "3")]
    pub details: Vec<prost_types::Any>,
}

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
        include!(concat!(
            env!("OUT_DIR"),
            "/containerd.services.version.v1.Version.rs"
        ));
    }
    pub mod namespaces {
        include!(concat!(
            env!("OUT_DIR"),
            "/containerd.services.namespaces.v1.Namespaces.rs"
        ));
    }
    pub mod containers {
        include!(concat!(
            env!("OUT_DIR"),
            "/containerd.services.containers.v1.Containers.rs"
        ));
    }
    pub mod images {
        include!(concat!(
            env!("OUT_DIR"),
            "/containerd.services.images.v1.Images.rs"
        ));
    }
    pub mod content {
        include!(concat!(
            env!("OUT_DIR"),
            "/containerd.services.content.v1.Content.rs"
        ));
    }
    pub mod snapshots {
        include!(concat!(
            env!("OUT_DIR"),
            "/containerd.services.snapshots.v1.Snapshots.rs"
        ));
    }
    pub mod tasks {
        include!(concat!(
            env!("OUT_DIR"),
            "/containerd.services.tasks.v1.Tasks.rs"
        ));
    }
    pub mod leases {
        include!(concat!(
            env!("OUT_DIR"),
            "/containerd.services.leases.v1.Leases.rs"
        ));
    }
    pub mod events {
        include!(concat!(
            env!("OUT_DIR"),
            "/containerd.services.events.v1.Events.rs"
        ));
    }
}

/// Services the CLI serves to BuildKit on a build session that are not
/// BuildKit's own protos.
pub mod session {
    /// containerd's Content service as BuildKit's session content store
    /// calls it (store chosen by the `buildkit-attachable-store-id` request
    /// header). Separate from `containerd::content`, the gateway's
    /// allowlisted subset.
    pub mod content {
        include!(concat!(
            env!("OUT_DIR"),
            "/session/containerd.services.content.v1.Content.rs"
        ));
    }
}

/// BuildKit's Control API and session services (hand-written protos in
/// `proto/buildkit/`), one module per protobuf package.
pub mod buildkit {
    /// `fsutil.types`: DiffCopy's packets and file stats.
    pub use super::generated::fsutil::types as fsutil;
    /// `moby.buildkit.secrets.v1`: secrets for `RUN --mount=type=secret`.
    pub use super::generated::moby::buildkit::secrets::v1 as secrets;
    /// `moby.buildkit.v1`: the Control service and its messages.
    pub use super::generated::moby::buildkit::v1 as control;
    /// `moby.buildkit.v1.sourcepolicy`: the source policy a solve may carry.
    pub use super::generated::moby::buildkit::v1::sourcepolicy;
    /// `moby.buildkit.v1.types`: worker records.
    pub use super::generated::moby::buildkit::v1::types;
    /// `moby.filesync.v1`: FileSync (context in) and FileSend (output out).
    pub use super::generated::moby::filesync::v1 as filesync;
    /// `moby.sshforward.v1`: agent forwarding for `RUN --mount=type=ssh`.
    pub use super::generated::moby::sshforward::v1 as sshforward;
    /// `pb`: the LLB messages the Control API names (definitions, platforms,
    /// source locations).
    pub use super::generated::pb;
}

/// prost's generated code names other packages by relative paths, so the
/// modules nest as the package names do; `buildkit` above gives them short
/// names.
mod generated {
    pub mod pb {
        tonic::include_proto!("pb");
    }
    pub mod fsutil {
        pub mod types {
            tonic::include_proto!("fsutil.types");
        }
    }
    pub mod moby {
        pub mod buildkit {
            pub mod v1 {
                tonic::include_proto!("moby.buildkit.v1");
                pub mod types {
                    tonic::include_proto!("moby.buildkit.v1.types");
                }
                pub mod sourcepolicy {
                    tonic::include_proto!("moby.buildkit.v1.sourcepolicy");
                }
            }
            pub mod secrets {
                pub mod v1 {
                    tonic::include_proto!("moby.buildkit.secrets.v1");
                }
            }
        }
        pub mod filesync {
            pub mod v1 {
                tonic::include_proto!("moby.filesync.v1");
            }
        }
        pub mod sshforward {
            pub mod v1 {
                tonic::include_proto!("moby.sshforward.v1");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::buildkit::{control, fsutil};
    use prost::Message;

    /// The first key byte of a length-delimited field (wire type 2).
    fn key(field: u32) -> u8 {
        u8::try_from((field << 3) | 2).expect("one-byte key")
    }

    // The field numbers are the contract with BuildKit; a renumbered field
    // would decode as garbage on the daemon's side, so pin the ones that
    // carry policy-relevant data.
    #[test]
    fn solve_request_field_numbers() {
        let cases: Vec<(u32, control::SolveRequest)> = vec![
            (
                1,
                control::SolveRequest {
                    r#ref: "r".into(),
                    ..Default::default()
                },
            ),
            (
                3,
                control::SolveRequest {
                    exporter_deprecated: "oci".into(),
                    ..Default::default()
                },
            ),
            (
                5,
                control::SolveRequest {
                    session: "s".into(),
                    ..Default::default()
                },
            ),
            (
                6,
                control::SolveRequest {
                    frontend: "f".into(),
                    ..Default::default()
                },
            ),
            (
                7,
                control::SolveRequest {
                    frontend_attrs: [("a".to_string(), "b".to_string())].into(),
                    ..Default::default()
                },
            ),
            (
                9,
                control::SolveRequest {
                    entitlements: vec!["e".into()],
                    ..Default::default()
                },
            ),
            (
                13,
                control::SolveRequest {
                    exporters: vec![control::Exporter {
                        r#type: "oci".into(),
                        ..Default::default()
                    }],
                    ..Default::default()
                },
            ),
        ];
        for (field, request) in cases {
            let bytes = request.encode_to_vec();
            assert_eq!(bytes[0], key(field), "field {field}");
        }
    }

    #[test]
    fn packet_field_numbers() {
        let packet = fsutil::Packet {
            r#type: fsutil::packet::PacketType::PacketData as i32,
            id: 7,
            ..Default::default()
        };
        // type = 1 (varint 2), ID = 3 (varint 7)
        assert_eq!(packet.encode_to_vec(), vec![0x08, 2, 0x18, 7]);
    }
}
