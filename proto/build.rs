//! Generates the wire contracts berth serves.
//!
//! * berth's own extension service (`berth/v1/*.proto`): client and server.
//! * BuildKit's Control API and the session services its clients serve
//!   (`buildkit/*.proto`, hand-written with BuildKit's package names and field
//!   numbers): client and server, since the CLI is a Control client and a
//!   session server, and the gateway a Control server and client.
//! * The containerd services the gateway serves to a sandbox. Their messages
//!   are the `containerd-client` crate's types; only the server side is
//!   generated here, from the explicit list below. A method that is not in
//!   this list does not exist on the gateway (tonic answers Unimplemented):
//!   the list *is* the allowlist of boundary rule 2.

use tonic_build::manual::{Builder, Method, Service};

const SVC: &str = "::containerd_client::services::v1";
const SNAP: &str = "::containerd_client::services::v1::snapshots";
/// `google.protobuf.Empty`, which prost maps to `()`.
const EMPTY: &str = "crate::Empty";

/// (route name, input type, output type, client streaming, server streaming)
type Rpc = (&'static str, String, String, bool, bool);

fn unary(route: &'static str, input: &str, output: &str) -> Rpc {
    (route, input.to_string(), output.to_string(), false, false)
}

fn svc(m: &str) -> String {
    format!("{SVC}::{m}")
}

fn snap(m: &str) -> String {
    format!("{SNAP}::{m}")
}

fn snake(route: &str) -> String {
    let mut out = String::new();
    for (i, c) in route.chars().enumerate() {
        if c.is_ascii_uppercase() {
            if i > 0 {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

fn service(package: &str, name: &str, rpcs: Vec<Rpc>) -> Service {
    let mut b = Service::builder().name(name).package(package);
    for (route, input, output, cs, ss) in rpcs {
        let mut m = Method::builder()
            .name(snake(route))
            .route_name(route)
            .input_type(input)
            .output_type(output)
            .codec_path("::tonic_prost::ProstCodec");
        if cs {
            m = m.client_streaming();
        }
        if ss {
            m = m.server_streaming();
        }
        b = b.method(m.build());
    }
    b.build()
}

fn main() {
    println!("cargo:rerun-if-changed=berth");
    println!("cargo:rerun-if-changed=buildkit");
    println!("cargo:rerun-if-changed=build.rs");

    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .compile_protos(&["berth/v1/gateway.proto"], &["."])
        .expect("compiling berth/v1/gateway.proto");

    // `buildkit/google` holds the one well-known type BuildKit's messages use,
    // for a protoc installed without its includes; prost maps it to
    // `prost_types` regardless.
    // Maps decode into BTreeMap so that re-encoding is deterministic: the
    // gateway's forwarded requests and its tests do not depend on hash order.
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .btree_map(".")
        .compile_protos(
            &[
                "buildkit/control.proto",
                "buildkit/filesync.proto",
                "buildkit/secrets.proto",
                "buildkit/ssh.proto",
            ],
            &[".", "buildkit"],
        )
        .expect("compiling buildkit/*.proto");

    let services = vec![
        service(
            "containerd.services.version.v1",
            "Version",
            vec![unary("Version", EMPTY, &svc("VersionResponse"))],
        ),
        service(
            "containerd.services.namespaces.v1",
            "Namespaces",
            vec![
                unary(
                    "Get",
                    &svc("GetNamespaceRequest"),
                    &svc("GetNamespaceResponse"),
                ),
                unary(
                    "List",
                    &svc("ListNamespacesRequest"),
                    &svc("ListNamespacesResponse"),
                ),
                // Served only to refuse with a reason (rule 1: namespace writes).
                unary(
                    "Create",
                    &svc("CreateNamespaceRequest"),
                    &svc("CreateNamespaceResponse"),
                ),
                unary(
                    "Update",
                    &svc("UpdateNamespaceRequest"),
                    &svc("UpdateNamespaceResponse"),
                ),
                unary("Delete", &svc("DeleteNamespaceRequest"), EMPTY),
            ],
        ),
        service(
            "containerd.services.containers.v1",
            "Containers",
            vec![
                unary(
                    "Get",
                    &svc("GetContainerRequest"),
                    &svc("GetContainerResponse"),
                ),
                unary(
                    "List",
                    &svc("ListContainersRequest"),
                    &svc("ListContainersResponse"),
                ),
                (
                    "ListStream",
                    svc("ListContainersRequest"),
                    svc("ListContainerMessage"),
                    false,
                    true,
                ),
                unary(
                    "Create",
                    &svc("CreateContainerRequest"),
                    &svc("CreateContainerResponse"),
                ),
                unary(
                    "Update",
                    &svc("UpdateContainerRequest"),
                    &svc("UpdateContainerResponse"),
                ),
                unary("Delete", &svc("DeleteContainerRequest"), EMPTY),
            ],
        ),
        service(
            "containerd.services.images.v1",
            "Images",
            vec![
                unary("Get", &svc("GetImageRequest"), &svc("GetImageResponse")),
                unary(
                    "List",
                    &svc("ListImagesRequest"),
                    &svc("ListImagesResponse"),
                ),
                unary(
                    "Create",
                    &svc("CreateImageRequest"),
                    &svc("CreateImageResponse"),
                ),
                unary(
                    "Update",
                    &svc("UpdateImageRequest"),
                    &svc("UpdateImageResponse"),
                ),
                unary("Delete", &svc("DeleteImageRequest"), EMPTY),
            ],
        ),
        service(
            "containerd.services.content.v1",
            "Content",
            vec![
                unary("Info", &svc("InfoRequest"), &svc("InfoResponse")),
                (
                    "List",
                    svc("ListContentRequest"),
                    svc("ListContentResponse"),
                    false,
                    true,
                ),
                (
                    "Read",
                    svc("ReadContentRequest"),
                    svc("ReadContentResponse"),
                    false,
                    true,
                ),
            ],
        ),
        service(
            "containerd.services.snapshots.v1",
            "Snapshots",
            vec![
                unary(
                    "Prepare",
                    &snap("PrepareSnapshotRequest"),
                    &snap("PrepareSnapshotResponse"),
                ),
                unary("Remove", &snap("RemoveSnapshotRequest"), EMPTY),
                unary(
                    "Stat",
                    &snap("StatSnapshotRequest"),
                    &snap("StatSnapshotResponse"),
                ),
                (
                    "List",
                    snap("ListSnapshotsRequest"),
                    snap("ListSnapshotsResponse"),
                    false,
                    true,
                ),
                unary("Usage", &snap("UsageRequest"), &snap("UsageResponse")),
            ],
        ),
        service(
            "containerd.services.tasks.v1",
            "Tasks",
            vec![
                unary(
                    "Create",
                    &svc("CreateTaskRequest"),
                    &svc("CreateTaskResponse"),
                ),
                unary("Start", &svc("StartRequest"), &svc("StartResponse")),
                unary("Delete", &svc("DeleteTaskRequest"), &svc("DeleteResponse")),
                unary(
                    "DeleteProcess",
                    &svc("DeleteProcessRequest"),
                    &svc("DeleteResponse"),
                ),
                unary("Get", &svc("GetRequest"), &svc("GetResponse")),
                unary("List", &svc("ListTasksRequest"), &svc("ListTasksResponse")),
                unary("Kill", &svc("KillRequest"), EMPTY),
                unary("Exec", &svc("ExecProcessRequest"), EMPTY),
                unary("ResizePty", &svc("ResizePtyRequest"), EMPTY),
                unary("CloseIO", &svc("CloseIoRequest"), EMPTY),
                unary(
                    "ListPids",
                    &svc("ListPidsRequest"),
                    &svc("ListPidsResponse"),
                ),
                unary("Wait", &svc("WaitRequest"), &svc("WaitResponse")),
            ],
        ),
        service(
            "containerd.services.leases.v1",
            "Leases",
            vec![
                unary("Create", &svc("CreateRequest"), &svc("CreateResponse")),
                unary("Delete", &svc("DeleteRequest"), EMPTY),
                unary("List", &svc("ListRequest"), &svc("ListResponse")),
            ],
        ),
        service(
            "containerd.services.events.v1",
            "Events",
            vec![(
                "Subscribe",
                svc("SubscribeRequest"),
                "::containerd_client::types::Envelope".to_string(),
                false,
                true,
            )],
        ),
    ];

    Builder::new()
        .build_client(false)
        .build_server(true)
        .compile(&services);

    // A second, separate Content server: the one the CLI serves to BuildKit
    // on the build session (named `oci-layout://` contexts read from it, the
    // `oci` exporter with `tar=false` writes through it). It is not part of
    // the gateway's allowlist above and lives in its own directory so the
    // two generated files never collide.
    let session_dir =
        std::path::PathBuf::from(std::env::var("OUT_DIR").expect("OUT_DIR")).join("session");
    std::fs::create_dir_all(&session_dir).expect("creating OUT_DIR/session");
    let session_content = service(
        "containerd.services.content.v1",
        "Content",
        vec![
            unary("Info", &svc("InfoRequest"), &svc("InfoResponse")),
            unary("Update", &svc("UpdateRequest"), &svc("UpdateResponse")),
            (
                "List",
                svc("ListContentRequest"),
                svc("ListContentResponse"),
                false,
                true,
            ),
            unary("Delete", &svc("DeleteContentRequest"), EMPTY),
            (
                "Read",
                svc("ReadContentRequest"),
                svc("ReadContentResponse"),
                false,
                true,
            ),
            unary("Status", &svc("StatusRequest"), &svc("StatusResponse")),
            unary(
                "ListStatuses",
                &svc("ListStatusesRequest"),
                &svc("ListStatusesResponse"),
            ),
            (
                "Write",
                svc("WriteContentRequest"),
                svc("WriteContentResponse"),
                true,
                true,
            ),
            unary("Abort", &svc("AbortRequest"), EMPTY),
        ],
    );
    Builder::new()
        .build_client(false)
        .build_server(true)
        .out_dir(&session_dir)
        .compile(&[session_content]);
}
