//! The protobuf decoding of every request type the gateway serves (the
//! containerd facade, berth's own services, the BuildKit facade) and of the
//! event types it rewrites. The first byte picks the type (52 of
//! them), the rest is the message. Whatever prost decodes survives a round
//! trip unchanged: the gateway re-encodes requests it forwards.
#![no_main]

use berth_proto::berth::v1 as berth;
use berth_proto::buildkit::control as bk;
use containerd_client::services::v1 as api;
use libfuzzer_sys::fuzz_target;
use prost::Message;

fn round_trip<T: Message + Default + PartialEq + std::fmt::Debug>(bytes: &[u8]) {
    let Ok(msg) = T::decode(bytes) else {
        return;
    };
    let again = T::decode(msg.encode_to_vec().as_slice()).expect("re-encoded message decodes");
    assert_eq!(again, msg);
}

fuzz_target!(|data: &[u8]| {
    let Some((&which, rest)) = data.split_first() else {
        return;
    };
    match usize::from(which) % 52 {
        0 => round_trip::<api::CloseIoRequest>(rest),
        1 => round_trip::<api::CreateContainerRequest>(rest),
        2 => round_trip::<api::CreateImageRequest>(rest),
        3 => round_trip::<api::CreateNamespaceRequest>(rest),
        4 => round_trip::<api::CreateRequest>(rest),
        5 => round_trip::<api::CreateTaskRequest>(rest),
        6 => round_trip::<api::DeleteContainerRequest>(rest),
        7 => round_trip::<api::DeleteImageRequest>(rest),
        8 => round_trip::<api::DeleteNamespaceRequest>(rest),
        9 => round_trip::<api::DeleteProcessRequest>(rest),
        10 => round_trip::<api::DeleteRequest>(rest),
        11 => round_trip::<api::DeleteTaskRequest>(rest),
        12 => round_trip::<api::ExecProcessRequest>(rest),
        13 => round_trip::<api::GetContainerRequest>(rest),
        14 => round_trip::<api::GetImageRequest>(rest),
        15 => round_trip::<api::GetNamespaceRequest>(rest),
        16 => round_trip::<api::GetRequest>(rest),
        17 => round_trip::<api::InfoRequest>(rest),
        18 => round_trip::<api::KillRequest>(rest),
        19 => round_trip::<api::ListContainersRequest>(rest),
        20 => round_trip::<api::ListContentRequest>(rest),
        21 => round_trip::<api::ListImagesRequest>(rest),
        22 => round_trip::<api::ListNamespacesRequest>(rest),
        23 => round_trip::<api::ListPidsRequest>(rest),
        24 => round_trip::<api::ListRequest>(rest),
        25 => round_trip::<api::snapshots::ListSnapshotsRequest>(rest),
        26 => round_trip::<api::ListTasksRequest>(rest),
        27 => round_trip::<api::snapshots::PrepareSnapshotRequest>(rest),
        28 => round_trip::<api::ReadContentRequest>(rest),
        29 => round_trip::<api::snapshots::RemoveSnapshotRequest>(rest),
        30 => round_trip::<api::ResizePtyRequest>(rest),
        31 => round_trip::<api::StartRequest>(rest),
        32 => round_trip::<api::snapshots::StatSnapshotRequest>(rest),
        33 => round_trip::<api::SubscribeRequest>(rest),
        34 => round_trip::<api::UpdateContainerRequest>(rest),
        35 => round_trip::<api::UpdateImageRequest>(rest),
        36 => round_trip::<api::UpdateNamespaceRequest>(rest),
        37 => round_trip::<api::snapshots::UsageRequest>(rest),
        38 => round_trip::<api::WaitRequest>(rest),
        39 => round_trip::<berth::AttachRequest>(rest),
        40 => round_trip::<berth::LoadRequest>(rest),
        41 => round_trip::<berth::LogsRequest>(rest),
        42 => round_trip::<berth::CheckImageRequest>(rest),
        43 => round_trip::<bk::SolveRequest>(rest),
        44 => round_trip::<bk::StatusRequest>(rest),
        45 => round_trip::<bk::DiskUsageRequest>(rest),
        46 => round_trip::<bk::PruneRequest>(rest),
        47 => round_trip::<bk::InfoRequest>(rest),
        48 => round_trip::<bk::ListWorkersRequest>(rest),
        49 => round_trip::<bk::BytesMessage>(rest),
        50 => round_trip::<containerd_client::events::TaskCreate>(rest),
        51 => round_trip::<containerd_client::types::Envelope>(rest),
        _ => unreachable!(),
    }
});
