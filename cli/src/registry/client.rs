//! One repository of one registry, authenticated for pull or push: the
//! distribution API calls berth makes (manifests, blobs, uploads), each a
//! request over the proxy-aware transport.

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Full, Limited};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};

use super::challenge::{self, Challenge};
use super::config::Credentials;
use super::digest::Digest;
use super::endpoint::{Registry, Repository};
use super::error::{parse_errors, RegistryError, StatusError};
use super::manifest::{self, Kind};
use super::transport::{self, Body, HttpClient};

/// Largest manifest, token response or error body read into memory.
const MAX_DOCUMENT: usize = 4 << 20;
/// Redirects followed for a blob (registries may send blobs from storage).
const MAX_REDIRECTS: usize = 5;
const USER_AGENT: &str = concat!("berth/", env!("CARGO_PKG_VERSION"));

pub fn empty() -> Body {
    Empty::<Bytes>::new()
        .map_err(|never| match never {})
        .boxed()
}

pub fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed()
}

/// What a repository is opened for: the token scope's actions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Pull,
    Push,
}

/// A manifest or index as served, with its verified digest.
#[derive(Debug, Clone)]
pub struct Fetched {
    pub digest: Digest,
    pub media_type: String,
    pub kind: Kind,
    pub bytes: Vec<u8>,
}

/// Where a blob upload stands after asking for a mount.
pub enum Mount {
    Mounted,
    /// The registry did not mount; upload to this location instead.
    Upload(String),
}

pub struct Client {
    http: HttpClient,
    pub repo: Repository,
    /// The Authorization header value for this repository, if any.
    auth: std::sync::Mutex<Option<String>>,
    /// What `auth` was obtained with, to renew an expired token.
    creds: Option<Credentials>,
    scopes: Vec<String>,
}

impl Client {
    /// Opens `repo`: pings `/v2/` and answers its challenge (a Bearer token
    /// for the scope, or Basic credentials). `mount_from` adds pull scopes
    /// for repositories blobs may be mounted from.
    pub async fn open(
        http: HttpClient,
        repo: Repository,
        access: Access,
        creds: Option<Credentials>,
        mount_from: &[String],
    ) -> Result<Self, RegistryError> {
        let actions = match access {
            Access::Pull => "pull",
            Access::Push => "pull,push",
        };
        let mut scopes = vec![format!("repository:{}:{actions}", repo.path)];
        scopes.extend(mount_from.iter().map(|r| format!("repository:{r}:pull")));
        let auth = authorize(&http, &repo.registry, creds.as_ref(), &scopes).await?;
        Ok(Self {
            http,
            repo,
            auth: std::sync::Mutex::new(auth),
            creds,
            scopes,
        })
    }

    /// A manifest by tag or digest; a digest reference is verified, a tag's
    /// digest is computed (and checked against the registry's header).
    /// `shown` names the image in a "not found" error.
    pub async fn manifest(&self, reference: &str, shown: &str) -> Result<Fetched, RegistryError> {
        let url = self.repo.url(&format!("manifests/{reference}"));
        let resp = self
            .send(
                Method::GET,
                &url,
                &[("Accept", manifest::ACCEPT.into())],
                empty(),
            )
            .await?;
        if resp.status() == StatusCode::NOT_FOUND {
            let body = read_body(resp, MAX_DOCUMENT).await.unwrap_or_default();
            let errors = parse_errors(&body);
            return Err(RegistryError::NotFound {
                what: format!("manifest for {shown}"),
                reason: if errors.is_empty() {
                    "manifest unknown".into()
                } else {
                    errors.join("; ")
                },
            });
        }
        let resp = self.expect_ok(resp, "Get", &url, &[StatusCode::OK]).await?;
        let content_type = header(&resp, "content-type").unwrap_or_default();
        let header_digest = header(&resp, "docker-content-digest");
        let bytes = read_body(resp, MAX_DOCUMENT)
            .await
            .map_err(|e| transport_error("Get", &url, e))?;
        let digest = Digest::of(&bytes);
        if let Ok(want) = Digest::parse(reference) {
            if want != digest {
                return Err(RegistryError::Invalid(format!(
                    "manifest verification failed for digest {want}"
                )));
            }
        } else if let Some(h) = header_digest.as_deref().and_then(|h| Digest::parse(h).ok()) {
            if h != digest {
                return Err(RegistryError::Invalid(format!(
                    "manifest for {shown}: the registry says {h}, its content is {digest}"
                )));
            }
        }
        let kind = manifest::kind(&content_type, &bytes).map_err(RegistryError::Invalid)?;
        let media_type = manifest::media_type(&content_type, &bytes, kind);
        Ok(Fetched {
            digest,
            media_type,
            kind,
            bytes: bytes.to_vec(),
        })
    }

    /// Starts a blob download; the caller reads and verifies the body.
    pub async fn blob(&self, digest: &Digest) -> Result<Response<Incoming>, RegistryError> {
        let mut url = self.repo.url(&format!("blobs/{digest}"));
        let mut auth = true;
        for _ in 0..=MAX_REDIRECTS {
            let resp = self
                .send_with(Method::GET, &url, &[], empty(), auth)
                .await?;
            if resp.status().is_redirection() {
                let Some(location) = header(&resp, "location") else {
                    break;
                };
                let next = resolve_location(&url, &location);
                // Credentials stay with the registry, not its storage.
                auth = same_origin(&url, &next) && auth;
                url = next;
                continue;
            }
            return self.expect_ok(resp, "Get", &url, &[StatusCode::OK]).await;
        }
        Err(RegistryError::Transport {
            method: "Get",
            url,
            reason: "stopped after too many redirects".into(),
        })
    }

    /// A small blob (a config) read whole and verified.
    pub async fn blob_bytes(&self, digest: &Digest, size: u64) -> Result<Vec<u8>, RegistryError> {
        if size as usize > MAX_DOCUMENT {
            return Err(RegistryError::Invalid(format!(
                "{digest}: document larger than {MAX_DOCUMENT} bytes"
            )));
        }
        let resp = self.blob(digest).await?;
        let url = self.repo.url(&format!("blobs/{digest}"));
        let bytes = read_body(resp, MAX_DOCUMENT)
            .await
            .map_err(|e| transport_error("Get", &url, e))?;
        let mut v = super::digest::Verifier::new(digest, Some(size));
        v.update(&bytes).map_err(RegistryError::Invalid)?;
        v.finish().map_err(RegistryError::Invalid)?;
        Ok(bytes.to_vec())
    }

    /// Whether the repository already has the blob (HEAD).
    pub async fn has_blob(&self, digest: &Digest) -> Result<bool, RegistryError> {
        let url = self.repo.url(&format!("blobs/{digest}"));
        let resp = self.send(Method::HEAD, &url, &[], empty()).await?;
        match resp.status() {
            StatusCode::OK => Ok(true),
            StatusCode::NOT_FOUND => Ok(false),
            _ => Err(self.status_error(resp, "Head", &url).await),
        }
    }

    /// Asks the registry to mount `digest` from repository `from`; when it
    /// does not, the upload it started instead is returned.
    pub async fn mount(&self, digest: &Digest, from: &str) -> Result<Mount, RegistryError> {
        let url = self.repo.url(&format!(
            "blobs/uploads/?mount={}&from={}",
            challenge::encode(digest.as_str()),
            challenge::encode(from)
        ));
        let resp = self
            .send(
                Method::POST,
                &url,
                &[("Content-Length", "0".into())],
                empty(),
            )
            .await?;
        match resp.status() {
            StatusCode::CREATED => Ok(Mount::Mounted),
            StatusCode::ACCEPTED => Ok(Mount::Upload(self.location(&resp, &url)?)),
            _ => Err(self.status_error(resp, "Post", &url).await),
        }
    }

    /// Starts an upload; returns its location.
    pub async fn start_upload(&self) -> Result<String, RegistryError> {
        let url = self.repo.url("blobs/uploads/");
        let resp = self
            .send(
                Method::POST,
                &url,
                &[("Content-Length", "0".into())],
                empty(),
            )
            .await?;
        let resp = self
            .expect_ok(resp, "Post", &url, &[StatusCode::ACCEPTED])
            .await?;
        self.location(&resp, &url)
    }

    /// Completes an upload with the whole blob in one PUT (monolithic).
    pub async fn finish_upload(
        &self,
        location: &str,
        digest: &Digest,
        size: u64,
        body: Body,
    ) -> Result<(), RegistryError> {
        let sep = if location.contains('?') { '&' } else { '?' };
        let url = format!(
            "{location}{sep}digest={}",
            challenge::encode(digest.as_str())
        );
        let resp = self
            .send(
                Method::PUT,
                &url,
                &[
                    ("Content-Type", "application/octet-stream".into()),
                    ("Content-Length", size.to_string()),
                ],
                body,
            )
            .await?;
        self.expect_ok(resp, "Put", &url, &[StatusCode::CREATED])
            .await?;
        Ok(())
    }

    /// Uploads a manifest under `reference` (a tag or its digest).
    pub async fn put_manifest(
        &self,
        reference: &str,
        media_type: &str,
        bytes: Vec<u8>,
    ) -> Result<Digest, RegistryError> {
        let url = self.repo.url(&format!("manifests/{reference}"));
        let digest = Digest::of(&bytes);
        let resp = self
            .send(
                Method::PUT,
                &url,
                &[
                    ("Content-Type", media_type.into()),
                    ("Content-Length", bytes.len().to_string()),
                ],
                full(bytes),
            )
            .await?;
        self.expect_ok(resp, "Put", &url, &[StatusCode::CREATED, StatusCode::OK])
            .await?;
        Ok(digest)
    }

    fn location(&self, resp: &Response<Incoming>, url: &str) -> Result<String, RegistryError> {
        let l = header(resp, "location").ok_or_else(|| {
            RegistryError::Invalid(format!("{url}: the registry gave no upload location"))
        })?;
        Ok(resolve_location(url, &l))
    }

    async fn send(
        &self,
        method: Method,
        url: &str,
        headers: &[(&str, String)],
        body: Body,
    ) -> Result<Response<Incoming>, RegistryError> {
        self.send_with(method, url, headers, body, true).await
    }

    async fn send_with(
        &self,
        method: Method,
        url: &str,
        headers: &[(&str, String)],
        body: Body,
        with_auth: bool,
    ) -> Result<Response<Incoming>, RegistryError> {
        let current = || self.auth.lock().expect("auth lock").clone();
        let with = |auth: Option<String>| {
            let mut all: Vec<(&str, String)> = headers.to_vec();
            if let (true, Some(a)) = (with_auth, auth) {
                all.push(("Authorization", a));
            }
            all
        };
        let used = current();
        let retry = with_auth
            && used.as_deref().is_some_and(|a| a.starts_with("Bearer "))
            && (method == Method::GET || method == Method::HEAD);
        let resp = send(&self.http, method.clone(), url, &with(used), body).await?;
        if !(retry && resp.status() == StatusCode::UNAUTHORIZED) {
            return Ok(resp);
        }
        // Tokens are short-lived (docker's default is 5 minutes): a long
        // pull renews its token once and repeats the request (GET and HEAD
        // carry no body, so they can be sent again).
        drop(resp);
        let fresh = authorize(
            &self.http,
            &self.repo.registry,
            self.creds.as_ref(),
            &self.scopes,
        )
        .await?;
        *self.auth.lock().expect("auth lock") = fresh.clone();
        send(&self.http, method, url, &with(fresh), empty()).await
    }

    async fn expect_ok(
        &self,
        resp: Response<Incoming>,
        method: &'static str,
        url: &str,
        ok: &[StatusCode],
    ) -> Result<Response<Incoming>, RegistryError> {
        if ok.contains(&resp.status()) {
            Ok(resp)
        } else {
            Err(self.status_error(resp, method, url).await)
        }
    }

    async fn status_error(
        &self,
        resp: Response<Incoming>,
        method: &'static str,
        url: &str,
    ) -> RegistryError {
        status_error(resp, method, url).await
    }
}

/// Answers the registry's challenge for `scopes`; `None` when the registry
/// needs no authorization.
pub async fn authorize(
    http: &HttpClient,
    registry: &Registry,
    creds: Option<&Credentials>,
    scopes: &[String],
) -> Result<Option<String>, RegistryError> {
    let url = registry.base_url();
    let resp = send(http, Method::GET, &url, &[], empty()).await?;
    if resp.status().is_success() {
        return Ok(None);
    }
    if resp.status() != StatusCode::UNAUTHORIZED {
        return Err(status_error(resp, "Get", &url).await);
    }
    let header_value = header(&resp, "www-authenticate").unwrap_or_default();
    drop(resp);
    match challenge::parse(&header_value) {
        Some(Challenge::Basic) => match creds {
            Some(c) => Ok(Some(format!("Basic {}", c.encoded()))),
            None => Err(RegistryError::Transport {
                method: "Get",
                url,
                reason: "no basic auth credentials".into(),
            }),
        },
        Some(Challenge::Bearer { realm, service, .. }) => {
            let token = fetch_token(http, &realm, service.as_deref(), scopes, creds).await?;
            Ok(Some(format!("Bearer {token}")))
        }
        None => Err(RegistryError::Transport {
            method: "Get",
            url,
            reason: format!("unsupported authentication challenge {header_value:?}"),
        }),
    }
}

/// Checks credentials as `docker login` does: the registry's `/v2/` must
/// answer 200 with them (Basic), or its token service must grant a token.
pub async fn check_login(
    http: &HttpClient,
    registry: &Registry,
    creds: &Credentials,
) -> Result<(), RegistryError> {
    let url = registry.base_url();
    let auth = authorize(http, registry, Some(creds), &[]).await?;
    let headers: Vec<(&str, String)> = auth.into_iter().map(|a| ("Authorization", a)).collect();
    let resp = send(http, Method::GET, &url, &headers, empty()).await?;
    if resp.status().is_success() {
        Ok(())
    } else {
        Err(status_error(resp, "Get", &url).await)
    }
}

async fn fetch_token(
    http: &HttpClient,
    realm: &str,
    service: Option<&str>,
    scopes: &[String],
    creds: Option<&Credentials>,
) -> Result<String, RegistryError> {
    let url = challenge::token_url(realm, service, scopes, creds.map(|c| c.username.as_str()));
    let mut headers = Vec::new();
    if let Some(c) = creds {
        headers.push(("Authorization", format!("Basic {}", c.encoded())));
    }
    let resp = send(http, Method::GET, &url, &headers, empty()).await?;
    if !resp.status().is_success() {
        return Err(status_error(resp, "Get", realm).await);
    }
    let body = read_body(resp, MAX_DOCUMENT)
        .await
        .map_err(|e| transport_error("Get", realm, e))?;
    #[derive(serde::Deserialize)]
    struct Token {
        #[serde(default)]
        token: String,
        #[serde(default)]
        access_token: String,
    }
    let t: Token = serde_json::from_slice(&body)
        .map_err(|e| RegistryError::Invalid(format!("token response from {realm}: {e}")))?;
    let token = if t.token.is_empty() {
        t.access_token
    } else {
        t.token
    };
    if token.is_empty() {
        return Err(RegistryError::Invalid(format!(
            "token response from {realm} holds no token"
        )));
    }
    Ok(token)
}

/// One request; connection failures are worded as Go's client words them.
pub async fn send(
    http: &HttpClient,
    method: Method,
    url: &str,
    headers: &[(&str, String)],
    body: Body,
) -> Result<Response<Incoming>, RegistryError> {
    let go_method = go_method(&method);
    let mut req = Request::builder()
        .method(method)
        .uri(url)
        .header("User-Agent", USER_AGENT);
    for (k, v) in headers {
        req = req.header(*k, v.as_str());
    }
    let req = req.body(body).map_err(|e| RegistryError::Transport {
        method: go_method,
        url: url.to_string(),
        reason: e.to_string(),
    })?;
    http.request(req).await.map_err(|e| {
        let reason = match transport::connect_error(&e) {
            Some(c) => c.to_string(),
            None => source_text(&e),
        };
        RegistryError::Transport {
            method: go_method,
            url: url.to_string(),
            reason,
        }
    })
}

fn go_method(m: &Method) -> &'static str {
    match *m {
        Method::GET => "Get",
        Method::HEAD => "Head",
        Method::POST => "Post",
        Method::PUT => "Put",
        Method::PATCH => "Patch",
        Method::DELETE => "Delete",
        _ => "Request",
    }
}

/// The innermost cause of an error chain, where the useful words are.
fn source_text(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cur = e;
    while let Some(s) = cur.source() {
        cur = s;
    }
    cur.to_string()
}

pub async fn status_error(
    resp: Response<Incoming>,
    method: &'static str,
    url: &str,
) -> RegistryError {
    let status = resp.status().as_u16();
    let body = if method == "Head" {
        Bytes::new()
    } else {
        read_body(resp, MAX_DOCUMENT).await.unwrap_or_default()
    };
    RegistryError::Status(StatusError {
        method,
        url: url.to_string(),
        status,
        errors: parse_errors(&body),
    })
}

fn transport_error(method: &'static str, url: &str, e: String) -> RegistryError {
    RegistryError::Transport {
        method,
        url: url.to_string(),
        reason: e,
    }
}

pub async fn read_body(resp: Response<Incoming>, limit: usize) -> Result<Bytes, String> {
    Limited::new(resp.into_body(), limit)
        .collect()
        .await
        .map(|c| c.to_bytes())
        .map_err(|e| e.to_string())
}

pub fn header(resp: &Response<Incoming>, name: &str) -> Option<String> {
    resp.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

/// A Location header against the request URL: absolute, or a path on the
/// same scheme and host.
pub fn resolve_location(base: &str, location: &str) -> String {
    if location.contains("://") {
        return location.to_string();
    }
    let origin_end = base
        .find("://")
        .and_then(|i| base[i + 3..].find('/').map(|j| i + 3 + j))
        .unwrap_or(base.len());
    if location.starts_with('/') {
        format!("{}{location}", &base[..origin_end])
    } else {
        let dir_end = base.rfind('/').map_or(base.len(), |i| i + 1);
        format!("{}{location}", &base[..dir_end])
    }
}

fn same_origin(a: &str, b: &str) -> bool {
    let origin = |u: &str| {
        let i = u.find("://").map_or(0, |i| i + 3);
        let end = u[i..].find('/').map_or(u.len(), |j| i + j);
        u[..end].to_string()
    };
    origin(a) == origin(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_resolve_against_the_request() {
        let base = "https://r:5000/v2/a/b/blobs/uploads/";
        assert_eq!(
            resolve_location(base, "/v2/a/b/blobs/uploads/u1?_state=x"),
            "https://r:5000/v2/a/b/blobs/uploads/u1?_state=x"
        );
        assert_eq!(resolve_location(base, "https://s3/x"), "https://s3/x");
        assert!(same_origin("https://r:5000/v2/x", "https://r:5000/y"));
        assert!(!same_origin("https://r:5000/v2/x", "https://s3/y"));
    }
}
