//! `berth.v1.Images/Load`: the archive is spooled to a gateway-private file
//! and imported by `load::import_archive` (boundary rule 5: the gateway
//! unpacks, never a client-supplied mount).

use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use berth_gateway::admission::image::{self, Action};
use berth_gateway::admission::Denied;
use berth_gateway::load;
use berth_proto::berth::v1::load_response::Payload;
use berth_proto::berth::v1::{
    images_server, CheckImageRequest, CheckImageResponse, LoadRequest, LoadResponse,
};
use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Status, Streaming};

use super::{method, reply, BoxStream, Method, Reply};
use crate::audit::Peer;
use crate::error::{GatewayError, Result};
use crate::server::Ctx;

const LOAD: Method = method!("berth.v1.Images", "Load", "images.load");
const CHECK: Method = method!("berth.v1.Images", "Check", "images.check");

/// The largest archive the gateway spools.
const MAX_ARCHIVE: u64 = 8 << 30;

pub struct Load(pub Arc<Ctx>);

#[tonic::async_trait]
impl images_server::Images for Load {
    type LoadStream = BoxStream<LoadResponse>;

    async fn load(&self, req: Request<Streaming<LoadRequest>>) -> Reply<Self::LoadStream> {
        let peer = Peer::of(&req);
        let inbound = req.into_inner();
        reply(self.0.decide(peer, &LOAD, "").map(|()| {
            let (tx, rx) = mpsc::channel(16);
            let ctx = self.0.clone();
            tokio::spawn(async move {
                match run(&ctx, peer, inbound, &tx).await {
                    Ok(()) => {}
                    Err(e) => {
                        let _ = tx.send(Err(Status::from(e))).await;
                    }
                }
            });
            Box::pin(ReceiverStream::new(rx)) as BoxStream<LoadResponse>
        }))
    }

    async fn check(&self, req: Request<CheckImageRequest>) -> Reply<CheckImageResponse> {
        let peer = Peer::of(&req);
        let req = req.into_inner();
        reply(check(&self.0, peer, &req).map(|()| CheckImageResponse {}))
    }
}

fn check(ctx: &Ctx, peer: Peer, req: &CheckImageRequest) -> Result<()> {
    let action = Action::parse_check(&req.action).ok_or_else(|| {
        GatewayError::invalid(format!(
            "image check action {:?} is not one of pull, push, run",
            req.action
        ))
    })?;
    let digest = Some(req.digest.as_str()).filter(|d| !d.is_empty());
    ctx.admit_image(peer, &CHECK, action, &req.name, digest)
}

type Tx = mpsc::Sender<std::result::Result<LoadResponse, Status>>;

async fn run(ctx: &Ctx, peer: Peer, mut inbound: Streaming<LoadRequest>, tx: &Tx) -> Result<()> {
    let (spool, file) = Spool::create(&ctx.tmp_dir)?;
    let mut file = tokio::fs::File::from_std(file);
    let mut total = 0u64;
    loop {
        let msg = match inbound.message().await {
            Ok(Some(m)) => m,
            Ok(None) => break,
            Err(s) => {
                return Err(GatewayError::client(
                    s.code(),
                    format!("receiving the image archive: {}", s.message()),
                ))
            }
        };
        total += msg.chunk.len() as u64;
        // An archive larger than the content quota cannot fit in it.
        let max = MAX_ARCHIVE.min(ctx.quotas.content_bytes);
        if total > max {
            return Err(GatewayError::invalid(format!(
                "refusing image archive: larger than {}",
                berth_gateway::quota::human(max)
            )));
        }
        file.write_all(&msg.chunk)
            .await
            .map_err(|e| GatewayError::internal("spooling image archive", e))?;
    }
    file.flush()
        .await
        .map_err(|e| GatewayError::internal("spooling image archive", e))?;
    drop(file);
    if total == 0 {
        return Err(GatewayError::invalid("refusing image archive: it is empty"));
    }

    let (ptx, mut prx) = mpsc::channel::<String>(16);
    let import = async move {
        let admit = |name: &str, digest: &str| -> std::result::Result<(), Denied> {
            match ctx.admit_image(peer, &LOAD, Action::Load, name, Some(digest)) {
                Ok(()) => Ok(()),
                Err(GatewayError::Denied(d)) => Err(d),
                Err(other) => Err(Denied {
                    rule: image::RULE.into(),
                    message: other.to_string(),
                    reasons: vec![],
                }),
            }
        };
        let res =
            load::import_archive(&ctx.up, &ctx.sb, &ctx.quotas, &spool.path, &admit, &ptx).await;
        drop(ptx);
        drop(spool);
        res
    };
    let progress = async {
        while let Some(line) = prx.recv().await {
            let _ = tx
                .send(Ok(LoadResponse {
                    payload: Some(Payload::Progress(line)),
                }))
                .await;
        }
    };
    let (res, ()) = tokio::join!(import, progress);
    for image in res? {
        let _ = tx
            .send(Ok(LoadResponse {
                payload: Some(Payload::Loaded(image)),
            }))
            .await;
    }
    Ok(())
}

/// The spooled archive; removed when dropped, whatever happened.
struct Spool {
    path: PathBuf,
}

impl Spool {
    /// A new file only the gateway can read, and the guard that removes it.
    fn create(dir: &Path) -> Result<(Self, std::fs::File)> {
        let path = dir.join(format!("load-{:016x}.tar", rand::random::<u64>()));
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .map_err(|e| GatewayError::internal(&format!("creating {}", path.display()), e))?;
        Ok((Self { path }, file))
    }
}

impl Drop for Spool {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn spool_is_private_and_removed() {
        let dir = std::env::temp_dir().join(format!("berth-spool-test-{}", rand::random::<u64>()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = {
            let (s, _file) = Spool::create(&dir).unwrap();
            let mode = std::fs::metadata(&s.path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
            s.path.clone()
        };
        assert!(!path.exists());
        std::fs::remove_dir_all(dir).unwrap();
    }
}
