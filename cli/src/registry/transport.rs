//! Connections to registries: TCP to the proxy, `CONNECT host:port`, then
//! TLS to the registry itself; direct only when no proxy applies. hyper's
//! pooled HTTP/1 client runs on top, so one pull reuses its connections.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use hyper::Uri;
use hyper_util::client::legacy::connect::{Connected, Connection};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;

use super::proxy::ProxyConfig;
use super::tls::TlsConfigs;

/// Request bodies: empty, whole, or streamed from a file.
pub type Body = BoxBody<Bytes, io::Error>;
pub type HttpClient = hyper_util::client::legacy::Client<Connector, Body>;

/// How long opening a connection (TCP, CONNECT and TLS) may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// Longest proxy response head read before the tunnel.
const MAX_PROXY_HEAD: usize = 16 * 1024;

/// Why a connection could not be made; worded like Go's net/http errors.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("proxy refused CONNECT: {0}")]
    ProxyRefused(String),
    #[error("proxyconnect tcp: {0}")]
    ProxyConnect(String),
    #[error("dial tcp {0}: {1}")]
    Dial(String, String),
    #[error("tls: {0}")]
    Tls(String),
    #[error("i/o timeout connecting to {0}")]
    Timeout(String),
    #[error("invalid registry address {0}")]
    Address(String),
}

pub fn client(proxy: ProxyConfig) -> HttpClient {
    let connector = Connector {
        proxy: Arc::new(proxy),
        tls: Arc::new(TlsConfigs::default()),
    };
    hyper_util::client::legacy::Client::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(30))
        .build(connector)
}

#[derive(Clone)]
pub struct Connector {
    proxy: Arc<ProxyConfig>,
    tls: Arc<TlsConfigs>,
}

impl tower::Service<Uri> for Connector {
    type Response = TokioIo<Conn>;
    type Error = ConnectError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, ConnectError>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), ConnectError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let this = self.clone();
        Box::pin(async move {
            let target = authority(&uri)?;
            match tokio::time::timeout(CONNECT_TIMEOUT, this.connect(&uri, &target)).await {
                Ok(r) => r.map(TokioIo::new),
                Err(_) => Err(ConnectError::Timeout(target.hostport)),
            }
        })
    }
}

struct Target {
    host: String,
    port: u16,
    /// `host:port` as the CONNECT target and certs.d directory name.
    hostport: String,
}

fn authority(uri: &Uri) -> Result<Target, ConnectError> {
    let bad = || ConnectError::Address(uri.to_string());
    let host = uri.host().ok_or_else(bad)?.to_string();
    let https = uri.scheme_str() == Some("https");
    let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
    let hostport = match uri.port_u16() {
        Some(p) => format!("{host}:{p}"),
        None => host.clone(),
    };
    Ok(Target {
        host: host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string(),
        port,
        hostport,
    })
}

impl Connector {
    async fn connect(&self, uri: &Uri, t: &Target) -> Result<Conn, ConnectError> {
        let https = uri.scheme_str() == Some("https");
        let connect_to = format!("{}:{}", bracket(&t.host), t.port);
        let tcp = match self.proxy.for_host(&t.host, t.port).filter(|_| https) {
            Some(proxy) => {
                let mut s = TcpStream::connect(&proxy.addr)
                    .await
                    .map_err(|e| ConnectError::ProxyConnect(format!("dial {}: {e}", proxy.addr)))?;
                tunnel(&mut s, &connect_to, proxy.credentials.as_deref()).await?;
                s
            }
            None => TcpStream::connect(&connect_to)
                .await
                .map_err(|e| ConnectError::Dial(connect_to.clone(), e.to_string()))?,
        };
        let _ = tcp.set_nodelay(true);
        if !https {
            return Ok(Conn::Plain(tcp));
        }
        // certs.d is keyed by host:port as typed (no port for 443).
        let config = self.tls.for_host(&t.hostport).map_err(ConnectError::Tls)?;
        let name = ServerName::try_from(t.host.clone())
            .map_err(|_| ConnectError::Address(t.host.clone()))?;
        let tls = tokio_rustls::TlsConnector::from(config)
            .connect(name, tcp)
            .await
            .map_err(|e| ConnectError::Tls(e.to_string()))?;
        Ok(Conn::Tls(Box::new(tls)))
    }
}

fn bracket(host: &str) -> String {
    if host.contains(':') {
        format!("[{host}]")
    } else {
        host.to_string()
    }
}

/// Sends `CONNECT target` and reads the proxy's answer; anything but 2xx
/// is the proxy's refusal, reported with its status line.
async fn tunnel(
    s: &mut TcpStream,
    target: &str,
    credentials: Option<&str>,
) -> Result<(), ConnectError> {
    let mut req = format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n");
    if let Some(c) = credentials {
        let enc = base64::engine::general_purpose::STANDARD.encode(c);
        req.push_str(&format!("Proxy-Authorization: Basic {enc}\r\n"));
    }
    req.push_str("\r\n");
    let io_err = |e: io::Error| ConnectError::ProxyConnect(e.to_string());
    s.write_all(req.as_bytes()).await.map_err(io_err)?;
    // Read the head byte by byte: nothing after it may be consumed, it
    // belongs to the TLS handshake.
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        if head.len() > MAX_PROXY_HEAD {
            return Err(ConnectError::ProxyConnect(
                "proxy response head too long".into(),
            ));
        }
        let b = s.read_u8().await.map_err(|e| {
            ConnectError::ProxyConnect(if e.kind() == io::ErrorKind::UnexpectedEof {
                "proxy closed the connection".into()
            } else {
                e.to_string()
            })
        })?;
        head.push(b);
    }
    let status = status_of(&head)
        .ok_or_else(|| ConnectError::ProxyConnect("malformed proxy response".into()))?;
    if status.0 / 100 == 2 {
        Ok(())
    } else {
        Err(ConnectError::ProxyRefused(status.1))
    }
}

/// The status code and `code reason` of a response head.
fn status_of(head: &[u8]) -> Option<(u16, String)> {
    let line = head.split(|&b| b == b'\n').next()?;
    let line = String::from_utf8_lossy(line).trim().to_string();
    let mut parts = line.splitn(3, ' ');
    let version = parts.next()?;
    if !version.starts_with("HTTP/") {
        return None;
    }
    let code: u16 = parts.next()?.parse().ok()?;
    let reason = parts.next().unwrap_or("").trim();
    Some((code, format!("{code} {reason}").trim().to_string()))
}

/// A registry connection, plain or TLS.
pub enum Conn {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

impl Connection for Conn {
    fn connected(&self) -> Connected {
        Connected::new()
    }
}

impl AsyncRead for Conn {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Conn {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_flush(cx),
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

/// The connection error inside a hyper client error, if that is what failed.
pub fn connect_error<'a>(e: &'a (dyn std::error::Error + 'static)) -> Option<&'a ConnectError> {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if let Some(c) = err.downcast_ref::<ConnectError>() {
            return Some(c);
        }
        cur = err.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proxy_status_lines() {
        assert_eq!(
            status_of(b"HTTP/1.0 403 Filtered\r\nServer: tinyproxy\r\n\r\n"),
            Some((403, "403 Filtered".into()))
        );
        assert_eq!(
            status_of(b"HTTP/1.1 200 Connection established\r\n\r\n").map(|s| s.0),
            Some(200)
        );
        assert_eq!(status_of(b"garbage\r\n\r\n"), None);
    }

    #[tokio::test]
    async fn refused_connect_reports_the_proxy_status() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut buf = [0u8; 1024];
            let n = s.read(&mut buf).await.unwrap();
            assert!(String::from_utf8_lossy(&buf[..n])
                .starts_with("CONNECT 10.0.0.9:5000 HTTP/1.1\r\n"));
            s.write_all(b"HTTP/1.0 403 Filtered\r\n\r\n").await.unwrap();
        });
        let mut s = TcpStream::connect(addr).await.unwrap();
        let e = tunnel(&mut s, "10.0.0.9:5000", None).await.unwrap_err();
        assert_eq!(e.to_string(), "proxy refused CONNECT: 403 Filtered");
        server.await.unwrap();
    }
}
