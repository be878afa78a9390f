//! Messages the gateway must not decode (threat model row 30): larger than
//! tonic's 4 MiB limit, or compressed (tonic is built without compression,
//! so a decompression bomb cannot reach a decoder). Compressed frames are
//! written by hand on a raw HTTP/2 connection: no stock client sends a
//! compressed request to a server that does not advertise it.

use std::io::Write;

use bytes::Bytes;
use containerd_client::services::v1::CreateRequest;
use http_body_util::{BodyExt, Full};
use prost::Message;
use tonic::Code;

use crate::common::*;
use crate::raw;
use crate::support::*;

/// gRPC's answer to a hand-made call: status code and message, from the
/// headers (trailers-only answer) or the trailers.
struct Answer {
    code: i32,
    message: String,
}

/// POSTs one gRPC frame (`compressed` flag, `payload`) to `path` on the
/// gateway socket with extra `headers`.
async fn raw_call(
    path: &str,
    compressed: bool,
    payload: &[u8],
    headers: &[(&str, &str)],
) -> Answer {
    let stream = tokio::net::UnixStream::connect(GATEWAY_SOCKET)
        .await
        .expect("gateway socket");
    let io = hyper_util::rt::TokioIo::new(stream);
    let (mut sender, conn) =
        hyper::client::conn::http2::handshake(hyper_util::rt::TokioExecutor::new(), io)
            .await
            .expect("HTTP/2 handshake");
    tokio::spawn(conn);
    let mut frame = vec![u8::from(compressed)];
    frame.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    frame.extend_from_slice(payload);
    let mut req = hyper::Request::post(format!("http://gateway.invalid{path}"))
        .header("content-type", "application/grpc")
        .header("te", "trailers");
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    let req = req.body(Full::new(Bytes::from(frame))).expect("request");
    let resp = sender.send_request(req).await.expect("HTTP/2 request");
    let mut fields = resp.headers().clone();
    let collected = resp.into_body().collect().await.expect("response body");
    if let Some(trailers) = collected.trailers() {
        fields.extend(trailers.clone());
    }
    let get = |name: &str| {
        fields
            .get(name)
            .map(|v| v.to_str().unwrap_or_default().to_string())
            .unwrap_or_default()
    };
    Answer {
        code: get("grpc-status").parse().expect("a grpc-status"),
        message: get("grpc-message"),
    }
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(data).expect("gzip");
    enc.finish().expect("gzip")
}

const LEASES_CREATE: &str = "/containerd.services.leases.v1.Leases/Create";

/// Sends a gzip-compressed Leases.Create of a fresh lease; asserts it is
/// refused and that the lease does not exist.
#[track_caller]
fn compressed_lease_refused(headers: &[(&str, &str)]) {
    stack();
    let _serial = serial();
    let before = Snapshot::take();
    let id = unique("gzip-lease");
    let msg = CreateRequest {
        id: id.clone(),
        labels: Default::default(),
    };
    let answer = raw::block_on(raw_call(
        LEASES_CREATE,
        true,
        &gzip(&msg.encode_to_vec()),
        headers,
    ));
    let _ = real_ctr(&["leases", "rm", &id]);
    assert!(
        answer.code == Code::Unimplemented as i32 || answer.code == Code::Internal as i32,
        "a compressed request was not refused: grpc-status {} {}",
        answer.code,
        answer.message
    );
    let text = answer.message.to_lowercase();
    assert!(
        text.contains("compress") || text.contains("gzip"),
        "the refusal does not name compression: {}",
        answer.message
    );
    assert_nothing_new(&before, "a compressed Leases.Create");
}

#[test]
fn a_gzip_compressed_request_is_refused() {
    compressed_lease_refused(&[("grpc-encoding", "gzip")]);
}

#[test]
fn a_compressed_frame_without_an_encoding_header_is_refused() {
    compressed_lease_refused(&[]);
}

#[test]
fn the_same_request_uncompressed_is_served() {
    // The control for the two above: the hand-made call itself works.
    stack();
    let _serial = serial();
    let id = unique("plain-lease");
    let msg = CreateRequest {
        id: id.clone(),
        labels: Default::default(),
    };
    let answer = raw::block_on(raw_call(LEASES_CREATE, false, &msg.encode_to_vec(), &[]));
    let listed = real_ctr(&["leases", "ls", "-q"]);
    let _ = real_ctr(&["leases", "rm", &id]);
    assert_eq!(answer.code, 0, "{}", answer.message);
    listed.stdout_has(&id);
}

#[test]
fn an_oversize_container_create_is_refused() {
    stack();
    let _serial = serial();
    let before = Snapshot::take();
    let big = "x".repeat(5 << 20);
    let c = spec_container(|spec| spec["annotations"] = serde_json::json!({ "bt.big": big }));
    let result = raw::block_on(raw::create_container(c));
    assert_status(
        result,
        &[Code::OutOfRange, Code::ResourceExhausted],
        &["too large", "limit"],
        "a 5 MiB Containers.Create",
    );
    assert_nothing_new(&before, "a 5 MiB Containers.Create");
}

#[test]
fn an_oversize_lease_create_is_refused() {
    stack();
    let _serial = serial();
    let before = Snapshot::take();
    let msg = CreateRequest {
        id: "l".repeat(5 << 20),
        labels: Default::default(),
    };
    let answer = raw::block_on(raw_call(LEASES_CREATE, false, &msg.encode_to_vec(), &[]));
    assert!(
        answer.code == Code::OutOfRange as i32 || answer.code == Code::ResourceExhausted as i32,
        "a 5 MiB Leases.Create was not refused for its size: {} {}",
        answer.code,
        answer.message
    );
    assert_nothing_new(&before, "a 5 MiB Leases.Create");
}
