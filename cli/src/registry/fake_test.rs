//! The client against a small fake registry on loopback (plain HTTP, as
//! docker uses for localhost): the Bearer token dance, Basic credentials,
//! manifests by tag and digest, and blobs that do not match their digest.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use super::client::{Access, Client};
use super::config::Credentials;
use super::digest::Digest;
use super::endpoint::{Registry, Repository};
use super::error::RegistryError;
use super::manifest::{Kind, OCI_MANIFEST};
use super::proxy::ProxyConfig;
use super::transport;

/// path → (status, extra headers, body); requests are logged with their
/// Authorization header.
type Routes = HashMap<String, (u16, Vec<(String, String)>, Vec<u8>)>;

struct Fake {
    port: u16,
    seen: Arc<Mutex<Vec<(String, String)>>>,
}

/// Serves `routes`; a request under `/v2/` without `Authorization:
/// <valid>` gets 401 with `challenge`. `/token…` answers with the token of
/// the current `valid` Bearer value.
async fn serve(routes: Routes, challenge: String, want_auth: String) -> Fake {
    serve_with(routes, challenge, Arc::new(Mutex::new(want_auth))).await
}

async fn serve_with(routes: Routes, challenge: String, valid: Arc<Mutex<String>>) -> Fake {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    let routes = Arc::new(routes);
    tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = listener.accept().await else {
                return;
            };
            let routes = routes.clone();
            let log = log.clone();
            let challenge = challenge.replace("PORT", &port.to_string());
            let valid = valid.clone();
            tokio::spawn(async move {
                loop {
                    let mut head = Vec::new();
                    let mut b = [0u8; 1];
                    while !head.ends_with(b"\r\n\r\n") {
                        match s.read(&mut b).await {
                            Ok(1) => head.push(b[0]),
                            _ => return,
                        }
                    }
                    let text = String::from_utf8_lossy(&head).to_string();
                    let path = text.split(' ').nth(1).unwrap_or("").to_string();
                    let auth = text
                        .lines()
                        .find_map(|l| {
                            l.strip_prefix("authorization: ")
                                .or_else(|| l.strip_prefix("Authorization: "))
                        })
                        .unwrap_or("")
                        .trim()
                        .to_string();
                    log.lock().unwrap().push((path.clone(), auth.clone()));
                    let protected = path.starts_with("/v2/");
                    let want_auth = valid.lock().unwrap().clone();
                    let token = want_auth.strip_prefix("Bearer ").unwrap_or("").to_string();
                    let (status, headers, body) = if path.starts_with("/token") {
                        (
                            200,
                            vec![],
                            format!(r#"{{"token":"{token}"}}"#).into_bytes(),
                        )
                    } else if protected && auth != want_auth {
                        (401, vec![("WWW-Authenticate".to_string(), challenge.clone())], br#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}"#.to_vec())
                    } else {
                        routes.get(&path).cloned().unwrap_or((404, vec![], br#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}"#.to_vec()))
                    };
                    let mut resp =
                        format!("HTTP/1.1 {status} X\r\nContent-Length: {}\r\n", body.len());
                    for (k, v) in headers {
                        resp.push_str(&format!("{k}: {v}\r\n"));
                    }
                    resp.push_str("\r\n");
                    if s.write_all(resp.as_bytes()).await.is_err()
                        || s.write_all(&body).await.is_err()
                    {
                        return;
                    }
                }
            });
        }
    });
    Fake { port, seen }
}

fn repo(port: u16) -> Repository {
    Repository {
        registry: Registry::for_domain(&format!("127.0.0.1:{port}")),
        path: "berth/x".into(),
    }
}

fn manifest_doc() -> Vec<u8> {
    format!(r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{}","size":2}},"layers":[]}}"#, Digest::of(b"{}")).into_bytes()
}

#[tokio::test]
async fn bearer_token_then_manifest_by_tag_and_digest() {
    let m = manifest_doc();
    let md = Digest::of(&m);
    let mut routes = Routes::new();
    routes.insert(
        "/v2/berth/x/manifests/v1".into(),
        (
            200,
            vec![("Content-Type".into(), OCI_MANIFEST.into())],
            m.clone(),
        ),
    );
    routes.insert(
        format!("/v2/berth/x/manifests/{md}"),
        (
            200,
            vec![("Content-Type".into(), OCI_MANIFEST.into())],
            m.clone(),
        ),
    );
    let cfg_digest = Digest::of(b"{}");
    routes.insert(
        format!("/v2/berth/x/blobs/{cfg_digest}"),
        (200, vec![], b"{]".to_vec()),
    );
    // The token endpoint is outside /v2/, so it needs no token itself.
    routes.insert(
        "/token?account=u&service=fake&scope=repository%3Aberth%2Fx%3Apull".into(),
        (200, vec![], br#"{"token":"tok"}"#.to_vec()),
    );
    let fake = serve(
        routes,
        r#"Bearer realm="http://127.0.0.1:PORT/token",service="fake""#.into(),
        "Bearer tok".into(),
    )
    .await;
    // /v2/ itself is protected too in this fake: the ping sees the challenge.
    let http = transport::client(ProxyConfig::default());
    let creds = Credentials {
        username: "u".into(),
        password: "p".into(),
    };
    let client = Client::open(http, repo(fake.port), Access::Pull, Some(creds), &[])
        .await
        .unwrap();
    let got = client.manifest("v1", "x").await.unwrap();
    assert_eq!(got.digest, md);
    assert_eq!(got.kind, Kind::Manifest);
    assert_eq!(got.media_type, OCI_MANIFEST);
    assert_eq!(client.manifest(md.as_str(), "x").await.unwrap().bytes, m);
    let seen = fake.seen.lock().unwrap().clone();
    let token_request = seen
        .iter()
        .find(|(p, _)| p.starts_with("/token"))
        .expect("a token request");
    assert_eq!(token_request.1, "Basic dTpw");
    // A blob whose bytes do not match its digest is refused.
    let e = client.blob_bytes(&cfg_digest, 2).await.unwrap_err();
    assert!(e.to_string().contains("digest mismatch"), "{e}");
    // A missing tag is docker's "not found".
    let e = client
        .manifest("nope", "127.0.0.1/berth/x:nope")
        .await
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "manifest for 127.0.0.1/berth/x:nope not found: manifest unknown: manifest unknown"
    );
}

#[tokio::test]
async fn basic_auth_needs_credentials() {
    let fake = serve(
        Routes::new(),
        r#"Basic realm="r""#.into(),
        "Basic dTpw".into(),
    )
    .await;
    let http = transport::client(ProxyConfig::default());
    let e = Client::open(http.clone(), repo(fake.port), Access::Pull, None, &[])
        .await
        .err()
        .unwrap();
    assert!(matches!(e, RegistryError::Transport { .. }));
    assert!(
        e.to_string().ends_with("/v2/\": no basic auth credentials"),
        "{e}"
    );
    let bad = Credentials {
        username: "u".into(),
        password: "wrong".into(),
    };
    let e = super::client::check_login(&http, &repo(fake.port).registry, &bad)
        .await
        .unwrap_err();
    assert!(
        e.to_string()
            .contains("unauthorized: authentication required"),
        "{e}"
    );
}

#[tokio::test]
async fn a_manifest_that_is_not_its_digest_is_refused() {
    let m = manifest_doc();
    let wrong = Digest::of(b"something else");
    let mut routes = Routes::new();
    routes.insert(
        format!("/v2/berth/x/manifests/{wrong}"),
        (
            200,
            vec![("Content-Type".into(), OCI_MANIFEST.into())],
            m.clone(),
        ),
    );
    routes.insert(
        "/v2/berth/x/manifests/v1".into(),
        (
            200,
            vec![
                ("Content-Type".into(), OCI_MANIFEST.into()),
                ("Docker-Content-Digest".into(), wrong.to_string()),
            ],
            m,
        ),
    );
    let fake = serve(routes, r#"Basic realm="r""#.into(), "Basic dTpw".into()).await;
    let http = transport::client(ProxyConfig::default());
    let creds = Credentials {
        username: "u".into(),
        password: "p".into(),
    };
    let client = Client::open(http, repo(fake.port), Access::Pull, Some(creds), &[])
        .await
        .unwrap();
    assert!(client
        .manifest(wrong.as_str(), "x")
        .await
        .unwrap_err()
        .to_string()
        .contains("verification failed"));
    assert!(client
        .manifest("v1", "x")
        .await
        .unwrap_err()
        .to_string()
        .contains("the registry says"));
}

#[tokio::test]
async fn an_expired_token_is_renewed_once() {
    let m = manifest_doc();
    let mut routes = Routes::new();
    routes.insert(
        "/v2/berth/x/manifests/v1".into(),
        (200, vec![("Content-Type".into(), OCI_MANIFEST.into())], m),
    );
    let valid = Arc::new(Mutex::new("Bearer tok1".to_string()));
    let fake = serve_with(
        routes,
        r#"Bearer realm="http://127.0.0.1:PORT/token",service="fake""#.into(),
        valid.clone(),
    )
    .await;
    let http = transport::client(ProxyConfig::default());
    let client = Client::open(http, repo(fake.port), Access::Pull, None, &[])
        .await
        .unwrap();
    client.manifest("v1", "x").await.unwrap();
    // The registry now wants a new token: one renewal, then success.
    *valid.lock().unwrap() = "Bearer tok2".into();
    client.manifest("v1", "x").await.unwrap();
    let seen = fake.seen.lock().unwrap().clone();
    assert_eq!(
        seen.iter().filter(|(p, _)| p.starts_with("/token")).count(),
        2,
        "{seen:?}"
    );
    assert_eq!(seen.last().unwrap().1, "Bearer tok2");
}
