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
    async fn attach(
        &self,
        peer: Peer,
        mut inbound: Streaming<AttachRequest>,
    ) -> Result<BoxStream<AttachResponse>> {
        let ctx = &self.0;
        let open = match inbound.message().await {
            Ok(Some(AttachRequest {
                payload: Some(In::Open(open)),
            })) => open,
            Ok(_) => {
                return Err(GatewayError::invalid(
                    "attach: the first message must be open",
                ))
            }
            Err(s) => {
                return Err(GatewayError::client(
                    s.code(),
                    format!("attach: {}", s.message()),
                ))
            }
        };
        let object = process_object(&open.container_id, &open.exec_id);
        ctx.decide(peer, &ATTACH, &object)?;
        let proc = ctx.relays.get(&open.container_id, &open.exec_id)?;
        if open.stdin && !proc.has_stdin() {
            return Err(RelayError::NoStdin(object).into());
        }

        let mut output = proc.subscribe(open.stdout, open.stderr);
        let (tx, rx) = mpsc::channel(16);
        tx.send(Ok(AttachResponse {
            payload: Some(Out::Ready(true)),
        }))
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
async fn pump_stdin(
    ctx: Arc<Ctx>,
    proc: Arc<Process>,
    open: AttachOpen,
    mut inbound: Streaming<AttachRequest>,
) {
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

#[cfg(test)]
mod tests {
    use std::fs::{File, OpenOptions};
    use std::io::{Read, Write};
    use std::path::PathBuf;

    use berth_gateway::config::Config;
    use berth_gateway::policy::PolicyEngine;
    use berth_gateway::sandbox::Sandbox;
    use berth_gateway::upstream::Upstream;
    use berth_proto::berth::v1::stdio_client::StdioClient;
    use tonic::transport::{Channel, Endpoint};

    use super::*;
    use crate::stdio::{Relays, Streams};

    struct Gateway {
        dir: PathBuf,
        ctx: Arc<Ctx>,
        client: StdioClient<Channel>,
        _stop: tokio::sync::oneshot::Sender<()>,
    }

    impl Drop for Gateway {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }

    /// The gateway's server on a scratch socket, with the repository's
    /// policies and no containerd behind it.
    async fn gateway() -> Gateway {
        let dir =
            std::env::temp_dir().join(format!("berth-attach-test-{:016x}", rand::random::<u64>()));
        for d in ["io", "logs", "tmp"] {
            std::fs::create_dir_all(dir.join(d)).unwrap();
        }
        let cfg = Config {
            namespace: "attach-test".into(),
            containerd_socket: dir.join("no-containerd.sock"),
            listen_containerd: dir.join("gateway.sock"),
            listen_buildkit: None,
            buildkit_upstream: None,
            state_dir: dir.clone(),
            policy_dir: PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../policies"),
            policy_site_data: None,
            proxy_ca: None,
            netns_path: "/run/netns/attach-test".into(),
            proxy_url: "http://10.200.0.1:3128".into(),
            no_proxy: String::new(),
            volume_roots: vec![],
            snapshotter: "overlayfs".into(),
            quota: Default::default(),
            userns: None,
        };
        let ctx = Arc::new(Ctx {
            up: Upstream::new(&cfg.containerd_socket, &cfg.namespace).unwrap(),
            sb: Sandbox::from_config(&cfg),
            engine: PolicyEngine::load(&cfg.policy_dir).unwrap(),
            relays: Relays::new(dir.join("io"), dir.join("logs")),
            tmp_dir: dir.join("tmp"),
            quotas: Default::default(),
        });
        let listener = tokio::net::UnixListener::bind(&cfg.listen_containerd).unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(crate::server::serve(ctx.clone(), listener, async {
            let _ = stopped.await;
        }));
        let sock = cfg.listen_containerd.clone();
        let channel = Endpoint::try_from("http://gateway.invalid")
            .unwrap()
            .connect_with_connector(tower::service_fn(move |_| {
                let sock = sock.clone();
                async move {
                    Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(
                        tokio::net::UnixStream::connect(sock).await?,
                    ))
                }
            }))
            .await
            .unwrap();
        Gateway {
            dir,
            ctx,
            client: StdioClient::new(channel),
            _stop: stop,
        }
    }

    fn open_msg(container: &str, exec: &str) -> AttachRequest {
        AttachRequest {
            payload: Some(In::Open(AttachOpen {
                container_id: container.into(),
                exec_id: exec.into(),
                stdin: true,
                stdout: true,
                stderr: true,
            })),
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn ready_then_output_then_end_and_stdin_reaches_the_process() {
        let mut gw = gateway().await;
        let streams = Streams {
            stdin: true,
            stdout: true,
            stderr: true,
            terminal: false,
        };
        let pending = gw.ctx.relays.prepare("c1", "", streams).unwrap();
        let paths = pending.paths().clone();
        pending.commit();

        // A shim: opens its output ends (Tasks.Create), then, once told the
        // process runs, its stdin end, echoes stdin to stdout until EOF and
        // says bye on stderr.
        let (opened_tx, opened) = std::sync::mpsc::channel();
        let (go, go_rx) = std::sync::mpsc::channel::<()>();
        let shim = std::thread::spawn(move || {
            let mut out = OpenOptions::new()
                .write(true)
                .open(paths.stdout.unwrap())
                .unwrap();
            let mut err = OpenOptions::new()
                .write(true)
                .open(paths.stderr.unwrap())
                .unwrap();
            opened_tx.send(()).unwrap();
            go_rx.recv().unwrap();
            // containerd opens its stdin reader in a goroutine, which may
            // run only after Tasks.Start returned: here, only now.
            let mut stdin = File::open(paths.stdin.unwrap()).unwrap();
            let mut input = String::new();
            stdin.read_to_string(&mut input).unwrap();
            out.write_all(format!("echo:{input}").as_bytes()).unwrap();
            err.write_all(b"bye\n").unwrap();
        });
        tokio::task::spawn_blocking(move || opened.recv().unwrap())
            .await
            .unwrap();
        gw.ctx.relays.connect("c1", "");

        let (tx, rx) = mpsc::channel(4);
        tx.send(open_msg("c1", "")).await.unwrap();
        let mut resp = gw
            .client
            .attach(ReceiverStream::new(rx))
            .await
            .unwrap()
            .into_inner();
        let first = resp.message().await.unwrap().unwrap();
        assert_eq!(first.payload, Some(Out::Ready(true)));

        go.send(()).unwrap();
        tx.send(AttachRequest {
            payload: Some(In::Stdin(b"ping\n".to_vec())),
        })
        .await
        .unwrap();
        tx.send(AttachRequest {
            payload: Some(In::CloseStdin(true)),
        })
        .await
        .unwrap();
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let collect = async {
            while let Some(m) = resp.message().await.unwrap() {
                match m.payload {
                    Some(Out::Stdout(b)) => out.extend(b),
                    Some(Out::Stderr(b)) => err.extend(b),
                    other => panic!("unexpected {other:?}"),
                }
            }
        };
        tokio::time::timeout(std::time::Duration::from_secs(5), collect)
            .await
            .expect("the stream ends with the output");
        assert_eq!(
            (out.as_slice(), err.as_slice()),
            (b"echo:ping\n".as_slice(), b"bye\n".as_slice())
        );
        shim.join().unwrap();

        // Attaching after the output ended: ready, then the end.
        let (tx, rx) = mpsc::channel(1);
        tx.send(open_msg("c1", "")).await.unwrap();
        let mut resp = gw
            .client
            .attach(ReceiverStream::new(rx))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(
            resp.message().await.unwrap().unwrap().payload,
            Some(Out::Ready(true))
        );
        assert!(resp.message().await.unwrap().is_none());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn attach_refuses_unknown_processes_and_a_missing_open() {
        let mut gw = gateway().await;
        let (tx, rx) = mpsc::channel(1);
        tx.send(open_msg("nope", "")).await.unwrap();
        let err = gw.client.attach(ReceiverStream::new(rx)).await.unwrap_err();
        assert_eq!(err.code(), Code::NotFound, "{}", err.message());

        let (tx, rx) = mpsc::channel(1);
        tx.send(AttachRequest {
            payload: Some(In::Stdin(b"x".to_vec())),
        })
        .await
        .unwrap();
        let err = gw.client.attach(ReceiverStream::new(rx)).await.unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument);
        assert_eq!(err.message(), "attach: the first message must be open");

        let (tx, rx) = mpsc::channel(1);
        tx.send(open_msg("../etc", "")).await.unwrap();
        let err = gw.client.attach(ReceiverStream::new(rx)).await.unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument);
    }
}
