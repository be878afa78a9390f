//! `--ssh` and the `SSH` session service behind `RUN --mount=type=ssh`.
//!
//! BuildKit opens one `ForwardAgent` stream per agent connection a build
//! step makes and carries the agent protocol's bytes. The CLI relays them to
//! the user's agent socket, but only the two requests a build needs, listing
//! keys and signing: BuildKit's own provider wraps the agent read-only the
//! same way, so a build step can neither add, remove nor lock keys.

use std::collections::HashMap;
use std::os::unix::fs::FileTypeExt;
use std::path::PathBuf;
use std::sync::Arc;

use berth_proto::buildkit::sshforward::ssh_server::{Ssh, SshServer};
use berth_proto::buildkit::sshforward::{BytesMessage, CheckAgentRequest, CheckAgentResponse};
use futures::{Stream, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

use super::ContextError;

/// The agent ID used when none is named.
pub const DEFAULT_ID: &str = "default";
/// Metadata key naming the agent of a ForwardAgent call.
const KEY_SSH_ID: &str = "buildkit.ssh.id";

/// Agent protocol message types (draft-miller-ssh-agent).
const SSH_AGENT_FAILURE: u8 = 5;
const SSH_AGENTC_REQUEST_IDENTITIES: u8 = 11;
const SSH_AGENTC_SIGN_REQUEST: u8 = 13;
/// OpenSSH's agent refuses larger messages too.
const MAX_MESSAGE: usize = 256 * 1024;

/// Parses `--ssh`: `default`, `ID=PATH`, or `ID` alone for `$SSH_AUTH_SOCK`.
/// Only agent sockets are supported, not key files.
pub fn parse_ssh_flag(s: &str) -> Result<(String, PathBuf), ContextError> {
    parse_ssh_with(s, std::env::var("SSH_AUTH_SOCK").ok())
}

fn parse_ssh_with(s: &str, auth_sock: Option<String>) -> Result<(String, PathBuf), ContextError> {
    let bad = |reason: String| ContextError::SshFlag {
        flag: s.to_string(),
        reason,
    };
    let (id, paths) = match s.split_once('=') {
        Some((id, paths)) => (id, paths),
        None => (s, ""),
    };
    let id = if id.is_empty() { DEFAULT_ID } else { id };
    if paths.contains(',') {
        return Err(bad("only one agent socket per id is supported".to_string()));
    }
    let path = if paths.is_empty() {
        auth_sock.filter(|p| !p.is_empty()).ok_or_else(|| {
            bad("invalid empty ssh agent socket: make sure SSH_AUTH_SOCK is set".to_string())
        })?
    } else {
        paths.to_string()
    };
    let meta = std::fs::metadata(&path).map_err(|e| bad(format!("{path}: {e}")))?;
    if !meta.file_type().is_socket() {
        return Err(bad(format!(
            "{path} is not an agent socket (key files are not supported)"
        )));
    }
    Ok((id.to_string(), PathBuf::from(path)))
}

/// The `SSH` service forwarding to `agents` (ID → socket path); a later
/// entry with the same ID wins.
pub fn ssh(agents: Vec<(String, PathBuf)>) -> SshServer<impl Ssh> {
    SshServer::new(Agents {
        map: Arc::new(agents.into_iter().collect()),
    })
}

struct Agents {
    map: Arc<HashMap<String, PathBuf>>,
}

impl Agents {
    fn lookup(&self, id: &str) -> Result<&PathBuf, Status> {
        let id = if id.is_empty() { DEFAULT_ID } else { id };
        // BuildKit's wording, which it shows the user as is
        self.map
            .get(id)
            .ok_or_else(|| Status::unknown(format!("unset ssh forward key {id}")))
    }
}

#[tonic::async_trait]
impl Ssh for Agents {
    type ForwardAgentStream = ReceiverStream<Result<BytesMessage, Status>>;

    async fn check_agent(
        &self,
        request: Request<CheckAgentRequest>,
    ) -> Result<Response<CheckAgentResponse>, Status> {
        self.lookup(&request.get_ref().id)?;
        Ok(Response::new(CheckAgentResponse {}))
    }

    async fn forward_agent(
        &self,
        request: Request<Streaming<BytesMessage>>,
    ) -> Result<Response<Self::ForwardAgentStream>, Status> {
        let id = request
            .metadata()
            .get(KEY_SSH_ID)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        let path = self.lookup(&id)?.clone();
        let conn = tokio::time::timeout(
            std::time::Duration::from_secs(2),
            UnixStream::connect(&path),
        )
        .await
        .map_err(|_| {
            Status::unavailable(format!(
                "connecting to ssh agent {}: timed out",
                path.display()
            ))
        })?
        .map_err(|e| {
            Status::unavailable(format!("connecting to ssh agent {}: {e}", path.display()))
        })?;
        let (tx, rx) = mpsc::channel(16);
        let incoming = request.into_inner();
        tokio::spawn(async move {
            if let Err(e) = relay(conn, incoming, tx.clone()).await {
                let _ = tx.send(Err(Status::aborted(e))).await;
            }
        });
        Ok(Response::new(ReceiverStream::new(rx)))
    }
}

/// Relays one agent connection: each complete request from BuildKit goes to
/// the agent if it is allowed, and the agent's one reply comes back; any
/// other request is answered with SSH_AGENT_FAILURE without reaching it.
async fn relay<S>(
    mut agent: UnixStream,
    mut incoming: S,
    out: mpsc::Sender<Result<BytesMessage, Status>>,
) -> Result<(), String>
where
    S: Stream<Item = Result<BytesMessage, Status>> + Unpin,
{
    let mut buf: Vec<u8> = Vec::new();
    while let Some(msg) = incoming.next().await {
        let msg = msg.map_err(|s| s.message().to_string())?;
        buf.extend_from_slice(&msg.data);
        while let Some(frame) = take_frame(&mut buf)? {
            let reply = if allowed(&frame) {
                agent
                    .write_all(&frame)
                    .await
                    .map_err(|e| format!("writing to ssh agent: {e}"))?;
                read_frame(&mut agent).await?
            } else {
                vec![0, 0, 0, 1, SSH_AGENT_FAILURE]
            };
            if out.send(Ok(BytesMessage { data: reply })).await.is_err() {
                return Ok(());
            }
        }
    }
    Ok(())
}

/// Whether a framed request may reach the user's agent.
fn allowed(frame: &[u8]) -> bool {
    matches!(
        frame.get(4),
        Some(&SSH_AGENTC_REQUEST_IDENTITIES | &SSH_AGENTC_SIGN_REQUEST)
    )
}

/// Takes one length-prefixed message off the front of `buf`, if complete.
fn take_frame(buf: &mut Vec<u8>) -> Result<Option<Vec<u8>>, String> {
    if buf.len() < 4 {
        return Ok(None);
    }
    let len = u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
    if len == 0 || len > MAX_MESSAGE {
        return Err(format!("invalid ssh agent message length {len}"));
    }
    if buf.len() < 4 + len {
        return Ok(None);
    }
    Ok(Some(buf.drain(..4 + len).collect()))
}

async fn read_frame(agent: &mut UnixStream) -> Result<Vec<u8>, String> {
    let mut len = [0u8; 4];
    agent
        .read_exact(&mut len)
        .await
        .map_err(|e| format!("reading from ssh agent: {e}"))?;
    let n = u32::from_be_bytes(len) as usize;
    if n > MAX_MESSAGE {
        return Err(format!("invalid ssh agent reply length {n}"));
    }
    let mut frame = vec![0u8; 4 + n];
    frame[..4].copy_from_slice(&len);
    agent
        .read_exact(&mut frame[4..])
        .await
        .map_err(|e| format!("reading from ssh agent: {e}"))?;
    Ok(frame)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::net::UnixListener;

    fn frame(typ: u8, body: &[u8]) -> Vec<u8> {
        let mut f = ((body.len() + 1) as u32).to_be_bytes().to_vec();
        f.push(typ);
        f.extend_from_slice(body);
        f
    }

    #[test]
    fn ssh_flags() {
        let tmp = tempfile::tempdir().unwrap();
        let sock = tmp.path().join("agent.sock");
        let _l = std::os::unix::net::UnixListener::bind(&sock).unwrap();
        let file = tmp.path().join("id_rsa");
        std::fs::write(&file, "key").unwrap();
        let env = Some(sock.to_str().unwrap().to_string());
        let s = sock.to_str().unwrap();

        assert_eq!(
            parse_ssh_with("default", env.clone()).unwrap(),
            ("default".into(), sock.clone())
        );
        assert_eq!(
            parse_ssh_with(&format!("default={s}"), None).unwrap(),
            ("default".into(), sock.clone())
        );
        assert_eq!(
            parse_ssh_with(&format!("gh={s}"), None).unwrap(),
            ("gh".into(), sock.clone())
        );
        assert_eq!(
            parse_ssh_with("gh", env.clone()).unwrap(),
            ("gh".into(), sock.clone())
        );
        assert_eq!(parse_ssh_with("", env).unwrap().0, "default");
        assert!(parse_ssh_with("default", None).is_err());
        assert!(parse_ssh_with(&format!("default={}", file.display()), None).is_err());
        assert!(parse_ssh_with(&format!("default={s},{s}"), None).is_err());
        assert!(parse_ssh_with("default=/nonexistent/sock", None).is_err());
    }

    #[tokio::test]
    async fn only_listing_and_signing_reach_the_agent() {
        let tmp = tempfile::tempdir().unwrap();
        let sock = tmp.path().join("agent.sock");
        let listener = UnixListener::bind(&sock).unwrap();
        let seen = Arc::new(AtomicUsize::new(0));
        let agent_seen = Arc::clone(&seen);
        // a fake agent: answers every request with IDENTITIES_ANSWER (12)
        tokio::spawn(async move {
            let (mut c, _) = listener.accept().await.unwrap();
            loop {
                let Ok(req) = read_frame(&mut c).await else {
                    return;
                };
                agent_seen.fetch_add(1, Ordering::SeqCst);
                c.write_all(&frame(12, &req[4..])).await.unwrap();
            }
        });

        let conn = UnixStream::connect(&sock).await.unwrap();
        let (in_tx, in_rx) = mpsc::channel(8);
        let (out_tx, mut out_rx) = mpsc::channel(8);
        let relay = tokio::spawn(relay(conn, ReceiverStream::new(in_rx), out_tx));

        // a request split over two messages
        let list = frame(SSH_AGENTC_REQUEST_IDENTITIES, b"");
        in_tx
            .send(Ok(BytesMessage {
                data: list[..2].to_vec(),
            }))
            .await
            .unwrap();
        in_tx
            .send(Ok(BytesMessage {
                data: list[2..].to_vec(),
            }))
            .await
            .unwrap();
        let reply = out_rx.recv().await.unwrap().unwrap().data;
        assert_eq!(reply, frame(12, &[SSH_AGENTC_REQUEST_IDENTITIES]));

        // adding a key (17), removing all (19), locking (22), extensions (27)
        for typ in [17u8, 19, 22, 27] {
            in_tx
                .send(Ok(BytesMessage {
                    data: frame(typ, b"x"),
                }))
                .await
                .unwrap();
            let reply = out_rx.recv().await.unwrap().unwrap().data;
            assert_eq!(reply, [0, 0, 0, 1, SSH_AGENT_FAILURE], "type {typ}");
        }
        in_tx
            .send(Ok(BytesMessage {
                data: frame(SSH_AGENTC_SIGN_REQUEST, b"blob"),
            }))
            .await
            .unwrap();
        assert_eq!(out_rx.recv().await.unwrap().unwrap().data[4], 12);
        assert_eq!(seen.load(Ordering::SeqCst), 2);

        drop(in_tx);
        relay.await.unwrap().unwrap();
    }

    #[tokio::test]
    async fn unknown_agent_ids_use_buildkits_wording() {
        let agents = Agents {
            map: Arc::new([("default".to_string(), PathBuf::from("/x"))].into()),
        };
        assert!(agents.lookup("").is_ok());
        let err = agents
            .check_agent(Request::new(CheckAgentRequest { id: "gh".into() }))
            .await
            .unwrap_err();
        assert_eq!(err.message(), "unset ssh forward key gh");
    }

    #[test]
    fn oversized_or_empty_frames_are_refused() {
        let mut buf = vec![0, 0, 0, 0];
        assert!(take_frame(&mut buf).is_err());
        let mut buf = (MAX_MESSAGE as u32 + 1).to_be_bytes().to_vec();
        assert!(take_frame(&mut buf).is_err());
        let mut buf = vec![0, 0, 0, 2, 11];
        assert_eq!(take_frame(&mut buf), Ok(None));
    }
}
