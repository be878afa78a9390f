//! `berth.v1.Stdio/Attach`: a client's window onto a relayed process.
//!
//! The first message names the process; the gateway subscribes the stream to
//! its output, answers `ready` (the client starts the process only then, so
//! no output is lost), relays stdout/stderr chunks, and writes stdin bytes.
//! The response ends once the process's output streams reached EOF; if they
//! already had, right after `ready`.

use std::sync::Arc;

use berth_proto::berth::v1::attach_request::Payload as In;
use berth_proto::berth::v1::attach_response::Payload as Out;
use berth_proto::berth::v1::{stdio_server, AttachOpen, AttachRequest, AttachResponse};
use containerd_client::services::v1 as api;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Code, Request, Streaming};

use super::{method, process_object, reply, BoxStream, Method, Reply};
use crate::audit::{self, Peer};
use crate::error::{GatewayError, Result};
use crate::server::Ctx;
use crate::stdio::{Output, Process, RelayError};

const ATTACH: Method = method!("berth.v1.Stdio", "Attach", "stdio.attach");

pub struct Stdio(pub Arc<Ctx>);

#[tonic::async_trait]
impl stdio_server::Stdio for Stdio {
    type AttachStream = BoxStream<AttachResponse>;

    async fn attach(&self, req: Request<Streaming<AttachRequest>>) -> Reply<Self::AttachStream> {
        let peer = Peer::of(&req);
        reply(self.attach(peer, req.into_inner()).await)
    }
}

impl Stdio {
    async fn attach(&self, peer: Peer, mut inbound: Streaming<AttachRequest>) -> Result<BoxStream<AttachResponse>> {
        let ctx = &self.0;
        let open = match inbound.message().await {
            Ok(Some(AttachRequest { payload: Some(In::Open(open)) })) => open,
            Ok(_) => return Err(GatewayError::invalid("attach: the first message must be open")),
            Err(s) => return Err(GatewayError::client(s.code(), format!("attach: {}", s.message()))),
        };
        let object = process_object(&open.container_id, &open.exec_id);
        ctx.decide(peer, &ATTACH, &object)?;
        let proc = ctx.relays.get(&open.container_id, &open.exec_id)?;
        if open.stdin && !proc.has_stdin() {
            return Err(RelayError::NoStdin(object).into());
        }

        let mut output = proc.subscribe(open.stdout, open.stderr);
        let (tx, rx) = mpsc::channel(16);
        tx.send(Ok(AttachResponse { payload: Some(Out::Ready(true)) }))
            .await
            .map_err(|_| GatewayError::client(Code::Cancelled, "attach: the client went away"))?;

        // Stdin runs on its own: a full stdin pipe must never hold up output.
        let input = tokio::spawn(pump_stdin(ctx.clone(), proc, open, inbound));
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    out = output.recv() => match out {
                        Some(out) => {
                            let payload = match out {
                                Output::Stdout(b) => Out::Stdout(b),
                                Output::Stderr(b) => Out::Stderr(b),
                            };
                            if tx.send(Ok(AttachResponse { payload: Some(payload) })).await.is_err() {
                                break;
                            }
                        }
                        None => break,
                    },
                    _ = tx.closed() => break,
                }
            }
            input.abort();
        });
        Ok(Box::pin(ReceiverStream::new(rx)))
    }
}

/// Copies the client's stdin messages to the process. Messages other than
/// stdin ones, and stdin from a client that did not ask for it, are ignored.
async fn pump_stdin(ctx: Arc<Ctx>, proc: Arc<Process>, open: AttachOpen, mut inbound: Streaming<AttachRequest>) {
    while let Ok(Some(msg)) = inbound.message().await {
        match msg.payload {
            Some(In::Stdin(bytes)) if open.stdin => {
                // Fails only once stdin was closed; later bytes have nowhere to go.
                let _ = proc.write_stdin(&bytes).await;
            }
            Some(In::CloseStdin(true)) if open.stdin => {
                proc.close_stdin().await;
                // The shim holds a write end of its own; only CloseIO drops it,
                // and with it the process sees EOF.
                let msg = api::CloseIoRequest {
                    container_id: open.container_id.clone(),
                    exec_id: open.exec_id.clone(),
                    stdin: true,
                };
                if let Err(s) = ctx.up.tasks().close_io(ctx.up.request(msg)).await {
                    if s.code() != Code::NotFound {
                        audit::warn(&format!(
                            "closing stdin of {}: {}",
                            process_object(&open.container_id, &open.exec_id),
                            s.message()
                        ));
                    }
                }
            }
            _ => {}
        }
    }
}
