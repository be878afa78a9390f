//! `FileSend/DiffCopy` for the `tar`, `oci` and `docker` exporters: BuildKit
//! streams the archive as `BytesMessage`s and ends it by closing its side of
//! the stream; the call's OK status tells BuildKit the archive is stored.

use std::path::PathBuf;
use std::sync::Mutex;

use berth_proto::buildkit::filesync::file_send_server::{FileSend, FileSendServer};
use berth_proto::buildkit::filesync::BytesMessage;
use futures::{Stream, StreamExt};
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;
use tonic::{Request, Response, Status, Streaming};

/// Where an exported archive goes.
#[derive(Debug)]
pub enum ExportSink {
    /// Created or truncated.
    File(PathBuf),
    Stdout,
    /// Each received chunk; the sender is dropped when the archive ends.
    #[allow(dead_code)] // agreed API; `build` imports through the session store today
    Channel(mpsc::Sender<Vec<u8>>),
}

/// The `FileSend` service writing one archive to `sink`. A second export
/// on the same session is refused (`AlreadyExists`, as BuildKit's client
/// answers when it has no target), so a daemon cannot overwrite the first.
pub fn file_send(sink: ExportSink) -> FileSendServer<impl FileSend> {
    FileSendServer::new(Archive {
        sink: Mutex::new(Some(sink)),
    })
}

struct Archive {
    sink: Mutex<Option<ExportSink>>,
}

#[tonic::async_trait]
impl FileSend for Archive {
    type DiffCopyStream = futures::stream::Empty<Result<BytesMessage, Status>>;

    async fn diff_copy(
        &self,
        request: Request<Streaming<BytesMessage>>,
    ) -> Result<Response<Self::DiffCopyStream>, Status> {
        let sink = self
            .sink
            .lock()
            .expect("export sink")
            .take()
            .ok_or_else(|| Status::already_exists("target already exists"))?;
        store(sink, request.into_inner()).await?;
        Ok(Response::new(futures::stream::empty()))
    }
}

/// Copies the stream into `sink` until BuildKit closes it.
async fn store<S>(sink: ExportSink, stream: S) -> Result<(), Status>
where
    S: Stream<Item = Result<BytesMessage, Status>> + Unpin,
{
    match sink {
        ExportSink::File(path) => {
            let file = tokio::fs::File::create(&path)
                .await
                .map_err(|e| Status::unavailable(format!("creating {}: {e}", path.display())))?;
            copy(
                stream,
                tokio::io::BufWriter::new(file),
                &path.display().to_string(),
            )
            .await
        }
        ExportSink::Stdout => copy(stream, tokio::io::stdout(), "standard output").await,
        ExportSink::Channel(tx) => {
            let mut stream = stream;
            while let Some(msg) = stream.next().await {
                let msg = msg?;
                if msg.data.is_empty() {
                    continue;
                }
                tx.send(msg.data)
                    .await
                    .map_err(|_| Status::aborted("the export's reader went away"))?;
            }
            Ok(())
        }
    }
}

async fn copy<S, W>(mut stream: S, mut w: W, name: &str) -> Result<(), Status>
where
    S: Stream<Item = Result<BytesMessage, Status>> + Unpin,
    W: AsyncWrite + Unpin,
{
    let failed = |e: std::io::Error| Status::unavailable(format!("writing {name}: {e}"));
    while let Some(msg) = stream.next().await {
        w.write_all(&msg?.data).await.map_err(failed)?;
    }
    w.flush().await.map_err(failed)?;
    w.shutdown().await.map_err(failed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunks(parts: &[&[u8]]) -> impl Stream<Item = Result<BytesMessage, Status>> + Unpin {
        futures::stream::iter(
            parts
                .iter()
                .map(|p| Ok(BytesMessage { data: p.to_vec() }))
                .collect::<Vec<_>>(),
        )
    }

    #[tokio::test]
    async fn an_archive_lands_in_a_file_or_a_channel() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("out.tar");
        std::fs::write(&path, "old and longer content").unwrap();
        store(
            ExportSink::File(path.clone()),
            chunks(&[b"abc", b"", b"def"]),
        )
        .await
        .unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"abcdef");

        let (tx, mut rx) = mpsc::channel(4);
        store(ExportSink::Channel(tx), chunks(&[b"one", b"", b"two"]))
            .await
            .unwrap();
        assert_eq!(rx.recv().await.unwrap(), b"one");
        assert_eq!(rx.recv().await.unwrap(), b"two");
        assert!(
            rx.recv().await.is_none(),
            "the channel closes with the archive"
        );
    }

    #[tokio::test]
    async fn a_failed_stream_fails_the_export() {
        let (tx, _rx) = mpsc::channel(4);
        let stream = futures::stream::iter(vec![
            Ok(BytesMessage {
                data: b"x".to_vec(),
            }),
            Err(Status::cancelled("daemon went away")),
        ]);
        let err = store(ExportSink::Channel(tx), stream).await.unwrap_err();
        assert_eq!(err.code(), tonic::Code::Cancelled);
    }
}
