//! `FileSend/DiffCopy` for `--output type=local`: BuildKit calls it and
//! speaks fsutil's protocol as the *sender* (filesync's `CopyToCaller`), so
//! the stream carries `fsutil.types.Packet`s although the method is declared
//! with `BytesMessage`. The generated `FileSendServer` decodes the declared
//! type, hence this hand-written service with a Packet codec.

use std::path::PathBuf;
use std::sync::Arc;

use berth_proto::buildkit::fsutil::packet::PacketType;
use berth_proto::buildkit::fsutil::Packet;
use futures::Stream;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::codegen::{http, Body, BoxFuture, Context, Poll, Service, StdError};
use tonic::{Request, Response, Status, Streaming};

use super::receive::receive_tree;

const DIFF_COPY_PATH: &str = "/moby.filesync.v1.FileSend/DiffCopy";

/// `moby.filesync.v1.FileSend` for `--output type=local,dest=…`.
#[derive(Debug, Clone)]
pub struct FileReceiveServer {
    dest: Arc<PathBuf>,
}

/// The `FileSend` service writing the exported tree below `dest`.
pub fn file_receive_dir(dest: PathBuf) -> FileReceiveServer {
    FileReceiveServer {
        dest: Arc::new(dest),
    }
}

impl tonic::server::NamedService for FileReceiveServer {
    const NAME: &'static str = "moby.filesync.v1.FileSend";
}

impl<B> Service<http::Request<B>> for FileReceiveServer
where
    B: Body + Send + 'static,
    B::Error: Into<StdError> + Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = std::convert::Infallible;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        if req.uri().path() != DIFF_COPY_PATH {
            return Box::pin(async { Ok(Status::unimplemented("").into_http()) });
        }
        let svc = ReceiveCall {
            dest: Arc::clone(&self.dest),
        };
        Box::pin(async move {
            let codec = tonic_prost::ProstCodec::<Packet, Packet>::default();
            Ok(tonic::server::Grpc::new(codec).streaming(svc, req).await)
        })
    }
}

struct ReceiveCall {
    dest: Arc<PathBuf>,
}

impl tonic::server::StreamingService<Packet> for ReceiveCall {
    type Response = Packet;
    type ResponseStream = ReceiverStream<Result<Packet, Status>>;
    type Future = BoxFuture<Response<Self::ResponseStream>, Status>;

    fn call(&mut self, request: Request<Streaming<Packet>>) -> Self::Future {
        let dest = (*self.dest).clone();
        Box::pin(async move { Ok(Response::new(start(dest, request.into_inner()))) })
    }
}

/// Runs the receiver on a blocking thread (it is all file system work) and
/// returns the stream of its REQ and FIN packets.
fn start<S>(dest: PathBuf, incoming: S) -> ReceiverStream<Result<Packet, Status>>
where
    S: Stream<Item = Result<Packet, Status>> + Unpin + Send + 'static,
{
    let (tx, rx) = mpsc::channel(64);
    let rt = tokio::runtime::Handle::current();
    tokio::task::spawn_blocking(move || {
        if let Err(e) = receive_tree(&dest, incoming, &tx, &rt) {
            let message = e.to_string();
            let _ = tx.blocking_send(Ok(Packet {
                r#type: PacketType::PacketErr as i32,
                data: message.clone().into_bytes(),
                ..Packet::default()
            }));
            let _ = tx.blocking_send(Err(Status::unknown(message)));
        }
    });
    ReceiverStream::new(rx)
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_proto::buildkit::fsutil::Stat;
    use futures::StreamExt;
    use tonic::codegen::http::uri::PathAndQuery;

    fn packet(t: PacketType, id: u32, stat: Option<Stat>, data: &[u8]) -> Packet {
        Packet {
            r#type: t as i32,
            id,
            stat,
            data: data.to_vec(),
        }
    }

    /// BuildKit's side over real gRPC: Packets on `FileSend/DiffCopy`.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_exporter_protocol_runs_over_grpc() {
        let tmp = tempfile::tempdir().unwrap();
        let dest = tmp.path().join("out");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(file_receive_dir(dest.clone()))
                .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
        );
        let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
            .unwrap()
            .connect()
            .await
            .unwrap();
        let mut grpc = tonic::client::Grpc::new(channel);
        grpc.ready().await.unwrap();

        let (tx, rx) = mpsc::channel(8);
        let dir = Stat {
            path: "d".into(),
            mode: super::super::gomode::DIR | 0o755,
            ..Stat::default()
        };
        let file = Stat {
            path: "d/f".into(),
            mode: 0o640,
            ..Stat::default()
        };
        tx.send(packet(PacketType::PacketStat, 0, Some(dir), b""))
            .await
            .unwrap();
        tx.send(packet(PacketType::PacketStat, 0, Some(file), b""))
            .await
            .unwrap();
        tx.send(packet(PacketType::PacketStat, 0, None, b""))
            .await
            .unwrap();
        let codec = tonic_prost::ProstCodec::<Packet, Packet>::default();
        let path = PathAndQuery::from_static("/moby.filesync.v1.FileSend/DiffCopy");
        let mut replies = grpc
            .streaming(Request::new(ReceiverStream::new(rx)), path, codec)
            .await
            .unwrap()
            .into_inner();

        let req = replies.next().await.unwrap().unwrap();
        assert_eq!((req.r#type, req.id), (PacketType::PacketReq as i32, 1));
        tx.send(packet(PacketType::PacketData, 1, None, b"hello"))
            .await
            .unwrap();
        tx.send(packet(PacketType::PacketData, 1, None, b""))
            .await
            .unwrap();
        let fin = replies.next().await.unwrap().unwrap();
        assert_eq!(fin.r#type, PacketType::PacketFin as i32);
        tx.send(packet(PacketType::PacketFin, 0, None, b""))
            .await
            .unwrap();
        drop(tx);
        assert!(replies.next().await.is_none(), "the call ends with OK");

        assert_eq!(std::fs::read(dest.join("d/f")).unwrap(), b"hello");
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(dest.join("d/f"))
                .unwrap()
                .permissions()
                .mode()
                & 0o777,
            0o640
        );
        server.abort();
    }
}
