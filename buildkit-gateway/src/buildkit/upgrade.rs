//! A build session opened the way Docker's API opens one: `POST /session`
//! with the session's identity in `X-Docker-Expose-Session-*` headers and
//! `Upgrade: h2c`. After `101` the connection itself is the session's
//! HTTP/2, on which BuildKit is the client and the CLI the server.
//!
//! The gateway serves this beside `Control.Session` on its BuildKit socket.
//! The gRPC form wraps every session byte in a `BytesMessage`, so a context
//! crossed two more HTTP/2 framings and several copies in the CLI and the
//! gateway; here the gateway reads one request head, decides it exactly as
//! it decides `Control.Session`'s metadata, and from then on copies bytes.
//!
//! This module is the part without I/O: telling the two protocols apart,
//! reading the head, and the answers.

use tonic::metadata::{MetadataMap, MetadataValue};

use super::session::{
    SessionError, SessionHeaders, KEY_METHOD, KEY_NAME, KEY_SHARED_KEY, KEY_UUID,
};

/// Longest request head read (64 method headers fit easily).
pub const MAX_HEAD: usize = 16 << 10;
/// Most header lines in a head.
const MAX_HEADERS: usize = 96;
/// What an HTTP/2 client with prior knowledge sends first.
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// The answer that hands the connection over to the session.
pub const SWITCHED: &[u8] = b"HTTP/1.1 101 UPGRADED\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n";

/// What a new connection speaks, from its first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// gRPC: the Control API, `Control.Session` included.
    Http2,
    /// HTTP/1.1: only `POST /session` is served.
    Http1,
}

/// Decides from the first bytes; `None` while they are still a prefix of
/// the HTTP/2 preface shorter than four bytes.
pub fn classify(first: &[u8]) -> Option<Protocol> {
    let n = first.len().min(4);
    if H2_PREFACE.starts_with(&first[..n]) {
        (n == 4).then_some(Protocol::Http2)
    } else {
        Some(Protocol::Http1)
    }
}

/// Why a request head is not a session the gateway will open.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    #[error("malformed request: {0}")]
    Malformed(String),
    #[error("{0} {1} is not served on this socket, only POST /session")]
    NotServed(String, String),
    #[error("POST /session must ask for Connection: Upgrade and Upgrade: h2c")]
    NoUpgrade,
    #[error("POST /session takes no body")]
    Body,
    #[error("request head longer than {MAX_HEAD} bytes")]
    TooLong,
    /// The session metadata is wrong: a refusal by the rule that decides
    /// `Control.Session`, worded the same.
    #[error(transparent)]
    Session(#[from] SessionError),
}

impl RequestError {
    /// What the refused request asked for, as the audit line's object:
    /// `METHOD PATH` when it got that far.
    pub fn request_line(&self) -> String {
        match self {
            RequestError::NotServed(method, path) => format!("{method} {path}"),
            _ => String::new(),
        }
    }

    /// The HTTP status the answer carries.
    pub fn status(&self) -> u16 {
        match self {
            RequestError::Malformed(_) | RequestError::NoUpgrade | RequestError::Body => 400,
            RequestError::NotServed(..) => 404,
            RequestError::TooLong => 431,
            RequestError::Session(_) => 403,
        }
    }
}

/// Reads a request head from the bytes received so far: `Ok(None)` when
/// more are needed, else the session's headers and the head's length
/// (bytes after it belong to the session).
pub fn parse(buf: &[u8]) -> Result<Option<(SessionHeaders, usize)>, RequestError> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    let len = match req.parse(buf) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) if buf.len() >= MAX_HEAD => {
            return Err(RequestError::TooLong)
        }
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => {
            return Err(RequestError::Malformed(format!(
                "more than {MAX_HEADERS} headers"
            )))
        }
        Err(e) => return Err(RequestError::Malformed(e.to_string())),
    };
    if len > MAX_HEAD {
        return Err(RequestError::TooLong);
    }
    let method = req.method.unwrap_or_default();
    let path = req.path.unwrap_or_default();
    if method != "POST" || !is_session_path(path) {
        return Err(RequestError::NotServed(method.into(), path.into()));
    }
    let mut md = MetadataMap::new();
    let (mut upgrade, mut connection) = (false, false);
    for h in req.headers.iter() {
        let name = h.name.to_ascii_lowercase();
        let text = std::str::from_utf8(h.value)
            .map_err(|_| RequestError::Malformed(format!("header {} is not text", h.name)))?;
        match name.as_str() {
            "upgrade" => upgrade |= text.trim().eq_ignore_ascii_case("h2c"),
            "connection" => {
                connection |= text
                    .split(',')
                    .any(|t| t.trim().eq_ignore_ascii_case("upgrade"))
            }
            "content-length" if text.trim() != "0" => return Err(RequestError::Body),
            "transfer-encoding" => return Err(RequestError::Body),
            KEY_UUID | KEY_NAME | KEY_SHARED_KEY | KEY_METHOD => {
                let value = MetadataValue::try_from(text).map_err(|_| {
                    RequestError::Malformed(format!("header {} is not printable ASCII", h.name))
                })?;
                let key = [KEY_UUID, KEY_NAME, KEY_SHARED_KEY, KEY_METHOD]
                    .into_iter()
                    .find(|k| *k == name)
                    .expect("matched above");
                md.append(key, value);
            }
            // Anything else (Host, User-Agent, Docker's API headers) stays
            // here: the upstream request is built from the checked headers.
            _ => {}
        }
    }
    if !(upgrade && connection) {
        return Err(RequestError::NoUpgrade);
    }
    Ok(Some((SessionHeaders::from_metadata(&md)?, len)))
}

/// `/session`, or Docker's versioned `/v1.44/session`.
fn is_session_path(path: &str) -> bool {
    if path == "/session" {
        return true;
    }
    path.strip_prefix("/v")
        .and_then(|rest| rest.strip_suffix("/session"))
        .is_some_and(|v| {
            let mut parts = v.split('.');
            let num = |p: Option<&str>| {
                p.is_some_and(|p| {
                    !p.is_empty() && p.len() <= 4 && p.bytes().all(|b| b.is_ascii_digit())
                })
            };
            num(parts.next()) && num(parts.next()) && parts.next().is_none()
        })
}

/// A final answer: `code` with `message` as a one-line text body; the
/// connection closes after it.
pub fn answer(code: u16, message: &str) -> Vec<u8> {
    let reason = match code {
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        431 => "Request Header Fields Too Large",
        503 => "Service Unavailable",
        _ => "Internal Server Error",
    };
    let body = format!("{}\n", message.replace(['\r', '\n'], " "));
    format!(
        "HTTP/1.1 {code} {reason}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str =
        "POST /session HTTP/1.1\r\nHost: berth\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\
X-Docker-Expose-Session-Uuid: abc123\r\nX-Docker-Expose-Session-Name: ctx\r\n\
X-Docker-Expose-Session-Sharedkey: k\r\n\
X-Docker-Expose-Session-Grpc-Method: /moby.filesync.v1.FileSync/DiffCopy\r\n\
X-Docker-Expose-Session-Grpc-Method: /grpc.health.v1.Health/Check\r\n\
Authorization: Bearer secret\r\nContent-Length: 0\r\n\r\n";

    #[test]
    fn protocols_are_told_apart_by_their_first_bytes() {
        assert_eq!(classify(b"PRI * HTTP/2.0"), Some(Protocol::Http2));
        assert_eq!(classify(b"POST /session"), Some(Protocol::Http1));
        assert_eq!(classify(b"PO"), Some(Protocol::Http1));
        assert_eq!(classify(b"GET "), Some(Protocol::Http1));
        assert_eq!(classify(b"PR"), None);
        assert_eq!(classify(b""), None);
    }

    #[test]
    fn a_session_request_gives_only_the_session_headers() {
        let (h, len) = parse(GOOD.as_bytes()).unwrap().unwrap();
        assert_eq!(len, GOOD.len());
        assert_eq!(h.uuid, "abc123");
        assert_eq!(h.name.as_deref(), Some("ctx"));
        assert_eq!(h.shared_key.as_deref(), Some("k"));
        assert_eq!(
            h.methods,
            [
                "/moby.filesync.v1.FileSync/DiffCopy",
                "/grpc.health.v1.Health/Check"
            ]
        );
        // what follows the head is the session's
        let mut more = GOOD.as_bytes().to_vec();
        more.extend_from_slice(b"PRI * HTTP/2.0");
        assert_eq!(parse(&more).unwrap().unwrap().1, GOOD.len());
    }

    #[test]
    fn an_incomplete_head_asks_for_more() {
        assert_eq!(parse(&GOOD.as_bytes()[..40]), Ok(None));
        let endless = format!("POST /session HTTP/1.1\r\nX-Pad: {}", "a".repeat(MAX_HEAD));
        assert_eq!(parse(endless.as_bytes()), Err(RequestError::TooLong));
    }

    #[test]
    fn versioned_paths_are_dockers_session_too() {
        for (path, ok) in [
            ("/v1.44/session", true),
            ("/v1.4/session", true),
            ("/session", true),
            ("/v1/session", false),
            ("/v1.44/session/x", false),
            ("/vx.y/session", false),
            ("/grpc", false),
            ("/session?x=1", false),
        ] {
            let req = GOOD.replacen("/session", path, 1);
            let res = parse(req.as_bytes());
            assert_eq!(res.is_ok(), ok, "{path}: {res:?}");
        }
    }

    #[test]
    fn other_requests_are_refused_with_their_reason() {
        let cases = [
            (GOOD.replacen("POST", "GET", 1), 404),
            (GOOD.replacen("Upgrade: h2c", "Upgrade: websocket", 1), 400),
            (
                GOOD.replacen("Connection: Upgrade", "Connection: keep-alive", 1),
                400,
            ),
            (
                GOOD.replacen("Content-Length: 0", "Content-Length: 5", 1),
                400,
            ),
            (
                GOOD.replacen("Content-Length: 0", "Transfer-Encoding: chunked", 1),
                400,
            ),
            (
                GOOD.replacen("X-Docker-Expose-Session-Uuid: abc123\r\n", "", 1),
                403,
            ),
            (
                GOOD.replacen(
                    "X-Docker-Expose-Session-Name: ctx",
                    "X-Docker-Expose-Session-Uuid: two",
                    1,
                ),
                403,
            ),
            (
                GOOD.replacen("/grpc.health.v1.Health/Check", "/Health", 1),
                403,
            ),
            (
                "POST /session HTTP/1.1\r\nbad header\r\n\r\n".to_string(),
                400,
            ),
        ];
        for (req, code) in cases {
            let err = parse(req.as_bytes()).expect_err(&req);
            assert_eq!(err.status(), code, "{req}: {err}");
        }
        let err = parse(
            GOOD.replacen("X-Docker-Expose-Session-Uuid: abc123\r\n", "", 1)
                .as_bytes(),
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "session metadata x-docker-expose-session-uuid is missing"
        );
    }

    #[test]
    fn answers_are_one_line_and_close_the_connection() {
        let a = String::from_utf8(answer(403, "refusing build session:\nno")).unwrap();
        assert!(a.starts_with("HTTP/1.1 403 Forbidden\r\n"), "{a}");
        assert!(a.contains("Connection: close\r\n"));
        assert!(a.ends_with("\r\n\r\nrefusing build session: no\n"), "{a}");
        assert!(a.contains("Content-Length: 27\r\n"), "{a}");
    }
}
