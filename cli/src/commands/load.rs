//! `docker load`: streams an image archive to the gateway, which imports it
//! (berth's `Images/Load`; the CLI never writes content or unpacks layers).

use std::io::IsTerminal;

use berth_proto::berth::v1::images_client::ImagesClient;
use berth_proto::berth::v1::{load_response, LoadRequest};
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio_stream::wrappers::ReceiverStream;

use crate::cli::LoadArgs;
use crate::client::Gateway;
use crate::error::{CliError, Result};
use crate::format::output;
use crate::refs;

/// Size of the pieces the archive is sent in.
const CHUNK: usize = 1 << 20;

pub async fn load(gw: &Gateway, a: LoadArgs) -> Result<i32> {
    output::finish(run(gw, a).await)
}

async fn run(gw: &Gateway, a: LoadArgs) -> Result<i32> {
    if a.platform.is_some() {
        return Err(CliError::general(
            "docker load --platform is not supported by berth",
        ));
    }
    let input: Box<dyn AsyncRead + Unpin + Send> = match &a.input {
        Some(path) => Box::new(
            tokio::fs::File::open(path)
                .await
                .map_err(|e| go_error("open", path, &e))?,
        ),
        // docker refuses to wait on a terminal for an archive.
        None if std::io::stdin().is_terminal() => {
            return Err(CliError::general(
                "requested load from stdin, but stdin is empty",
            ))
        }
        None => Box::new(tokio::io::stdin()),
    };
    // Go names standard input /dev/stdin in its errors.
    let source = a.input.clone().unwrap_or_else(|| "/dev/stdin".to_string());
    // docker shows progress only on a terminal, and never with -q.
    let progress = !a.quiet && std::io::stdout().is_terminal();

    let (tx, rx) = tokio::sync::mpsc::channel::<LoadRequest>(4);
    let reader = tokio::spawn(send_chunks(input, source.clone(), tx));
    let mut client = ImagesClient::new(gw.channel.clone());
    let response = client.load(ReceiverStream::new(rx)).await;
    let mut stream = match response {
        Ok(s) => s.into_inner(),
        Err(s) => return Err(load_error(reader, &source, &s).await),
    };
    loop {
        match stream.message().await {
            Ok(Some(msg)) => match msg.payload {
                Some(load_response::Payload::Progress(line)) if progress => {
                    output::print(&format!("{line}\n"))?
                }
                Some(load_response::Payload::Loaded(img)) => {
                    let line = match refs::familiar(&img.name) {
                        _ if img.name.is_empty() => {
                            format!("Loaded image ID: {}", img.config_digest)
                        }
                        (name, tag) if tag.is_empty() => format!("Loaded image: {name}"),
                        (name, tag) => format!("Loaded image: {name}:{tag}"),
                    };
                    output::print(&format!("{line}\n"))?;
                }
                _ => {}
            },
            Ok(None) => break,
            Err(s) => return Err(load_error(reader, &source, &s).await),
        }
    }
    // A read error after the gateway accepted everything still fails the load.
    match reader.await {
        Ok(Ok(())) => Ok(0),
        Ok(Err(e)) => Err(e),
        Err(e) => Err(CliError::general(format!("reading {source}: {e}"))),
    }
}

/// Reads the archive in chunks onto the request stream; ends the stream at EOF.
async fn send_chunks(
    mut input: Box<dyn AsyncRead + Unpin + Send>,
    source: String,
    tx: tokio::sync::mpsc::Sender<LoadRequest>,
) -> Result<()> {
    loop {
        let mut buf = vec![0u8; CHUNK];
        let mut filled = 0;
        while filled < CHUNK {
            let n = input
                .read(&mut buf[filled..])
                .await
                .map_err(|e| go_error("read", &source, &e))?;
            if n == 0 {
                break;
            }
            filled += n;
        }
        if filled == 0 {
            return Ok(());
        }
        buf.truncate(filled);
        if tx.send(LoadRequest { chunk: buf }).await.is_err() {
            // The gateway ended the call; its status says why.
            return Ok(());
        }
        if filled < CHUNK {
            return Ok(());
        }
    }
}

/// A failed load: a local read error explains it best, else the gateway's
/// message (worded for users), exit 1 as docker load.
async fn load_error(
    reader: tokio::task::JoinHandle<Result<()>>,
    source: &str,
    s: &tonic::Status,
) -> CliError {
    if reader.is_finished() {
        if let Ok(Err(e)) = reader.await {
            return e;
        }
    } else {
        reader.abort();
    }
    let msg = CliError::from_status(s).message;
    CliError::general(if msg.is_empty() {
        format!("loading {source} failed")
    } else {
        msg
    })
}

/// Go's `*PathError` text: `open FILE: no such file or directory`.
fn go_error(op: &str, path: &str, e: &std::io::Error) -> CliError {
    let text = match e.raw_os_error() {
        Some(code) => {
            let desc = nix::errno::Errno::from_raw(code).desc();
            let mut c = desc.chars();
            match c.next() {
                Some(first) => first.to_lowercase().chain(c).collect(),
                None => e.to_string(),
            }
        }
        None => e.to_string(),
    };
    CliError::general(format!("{op} {path}: {text}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_style_open_errors() {
        let e = std::fs::File::open("/nonexistent/x.tar").unwrap_err();
        let c = go_error("open", "/nonexistent/x.tar", &e);
        assert_eq!(
            c.message,
            "open /nonexistent/x.tar: no such file or directory"
        );
        assert_eq!(c.code, 1);
    }
}
