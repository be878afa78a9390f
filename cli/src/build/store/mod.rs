//! The content store the CLI serves to BuildKit on a build session.
//!
//! BuildKit reaches content stores on the client through one session service,
//! containerd's `containerd.services.content.v1.Content`, and names the store
//! a call is for in the request header `buildkit-attachable-store-id`
//! (BuildKit's `session/content`: the client registers a map of stores, the
//! daemon's caller store sets the header on every call). Two kinds of store
//! are served here, behind that one service:
//!
//! * **Named stores, `oci:<id>`** (read-only). A Dockerfile frontend attribute
//!   `context:<name>=oci-layout://<id>:<tag>@<digest>` makes BuildKit read the
//!   image through the store `oci:` + `<id>`: `Info` of the digest, then
//!   `Read` of the index or manifest, its config and layers (the OCI layout
//!   resolver and the blob puller call nothing else). Both go through the
//!   gateway's containerd facade, and only for digests reachable from the
//!   images offered (an index/manifest walk done before the solve).
//! * **The export store, `export`** (write). The `oci` (or `docker`) exporter
//!   with the attribute `tar=false` does not stream a tarball over
//!   `FileSend`; it copies the image into the session store named `export`
//!   (the name is fixed in BuildKit's exporter), children before parents, as
//!   containerd's fetch handler does: `Write` opened with a `STAT` naming the
//!   ref, the expected digest and size, then `WRITE`s and a `COMMIT`. When
//!   opening the writer fails with `AlreadyExists`, the client counts the blob
//!   as copied and sends nothing. That answer is given for every digest the
//!   sandbox's content store already has (checked with `Content.Info` through
//!   the gateway), so a rebuild sends only the blobs the sandbox lacks. The
//!   others are spooled to a private temporary directory, hashed as they
//!   arrive and kept only when the digest and size match.
//!
//! With `tar=false` BuildKit writes no `index.json`: the client writes it
//! itself from the exporter response (`containerimage.descriptor`, the
//! base64 JSON descriptor of the image's root; `containerimage.digest` as
//! well). [`ExportStore::finish`] does that: it builds an OCI layout holding
//! the new blobs, plus the index, manifest and config documents the gateway
//! must read to plan the import (read back from the sandbox when BuildKit
//! skipped them), and streams it through `berth.v1.Images/Load`. The
//! gateway takes the layers the layout leaves out from the sandbox's own
//! content store (`buildkit-gateway/src/load`), so a cached rebuild sends a
//! few kilobytes whatever the image's size.
//!
//! Exporter attributes for this mode (BuildKit 0.13): `type=oci`,
//! `tar=false`, and `name=<tags>` if the response should carry the names.
//! The session must advertise the methods in [`METHODS`].

mod export;
pub mod layout;
mod named;

use std::collections::BTreeMap;
use std::pin::Pin;

use berth_proto::session::content::content_server::Content;
use containerd_client::services::v1 as api;
use containerd_client::services::v1::content_client::ContentClient;
use futures::Stream;
use tonic::metadata::MetadataMap;
use tonic::transport::Channel;
use tonic::{Request, Response, Status, Streaming};

pub use export::ExportStore;
pub use layout::root_descriptor;
pub use named::NamedStore;

/// The request header naming the store a call is for.
pub const STORE_HEADER: &str = "buildkit-attachable-store-id";
/// The store BuildKit's image exporters write to with `tar=false`.
pub const EXPORT_STORE: &str = "export";
/// Prefix BuildKit puts before an `oci-layout://` context's store id.
pub const NAMED_PREFIX: &str = "oci:";
/// The methods the session must advertise for this service.
pub const METHODS: &[&str] = &[
    "Info",
    "Update",
    "List",
    "Delete",
    "Read",
    "Status",
    "ListStatuses",
    "Write",
    "Abort",
];

/// Why the store could not do what was asked; worded for the user.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The gateway refused or failed a call.
    #[error("{doing}: {message}")]
    Gateway { doing: String, message: String },
    /// Something BuildKit or the sandbox handed over is malformed.
    #[error("{0}")]
    Invalid(String),
    /// Local I/O on the spool directory.
    #[error("{doing}: {source}")]
    Io {
        doing: String,
        #[source]
        source: std::io::Error,
    },
}

impl StoreError {
    fn gateway(doing: impl Into<String>, status: &Status) -> Self {
        StoreError::Gateway {
            doing: doing.into(),
            message: crate::error::CliError::from_status(status).message,
        }
    }

    fn io(doing: impl Into<String>, source: std::io::Error) -> Self {
        StoreError::Io {
            doing: doing.into(),
            source,
        }
    }
}

/// The session's content service: `named` stores (read-only, each limited
/// to its images' digests) and, if given, the `export` store. Serve
/// `ContentServer::new(SessionContent::new(…))` on the session with
/// [`METHODS`]; keep a clone of the export store to call
/// [`ExportStore::finish`] once the solve returned.
pub struct SessionContent {
    client: ContentClient<Channel>,
    named: BTreeMap<String, NamedStore>,
    export: Option<ExportStore>,
}

/// The store a request is for.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Chosen {
    Named(String),
    Export,
}

/// Decides from the request header which store is meant; pure, so the
/// dispatch is tested without a server.
fn choose(
    md: &MetadataMap,
    named: &BTreeMap<String, NamedStore>,
    has_export: bool,
) -> Result<Chosen, Status> {
    let Some(value) = md.get(STORE_HEADER) else {
        return Err(Status::invalid_argument(format!(
            "request lacks metadata {STORE_HEADER}"
        )));
    };
    let id = value
        .to_str()
        .map_err(|_| Status::invalid_argument(format!("{STORE_HEADER} is not text")))?;
    if id == EXPORT_STORE && has_export {
        return Ok(Chosen::Export);
    }
    if let Some(key) = id.strip_prefix(NAMED_PREFIX) {
        if named.contains_key(key) {
            return Ok(Chosen::Named(key.to_string()));
        }
    }
    Err(Status::not_found(format!("unknown store {id}")))
}

fn read_only(id: &str) -> Status {
    Status::permission_denied(format!("store {NAMED_PREFIX}{id} is read-only"))
}

type BoxStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send + 'static>>;

impl SessionContent {
    /// `client` reaches the gateway's containerd facade (named stores read
    /// through it).
    pub fn new(
        client: ContentClient<Channel>,
        named: Vec<NamedStore>,
        export: Option<ExportStore>,
    ) -> Self {
        SessionContent {
            client,
            named: named.into_iter().map(|n| (n.id().to_string(), n)).collect(),
            export,
        }
    }

    fn choose(&self, md: &MetadataMap) -> Result<Chosen, Status> {
        choose(md, &self.named, self.export.is_some())
    }

    fn export(&self) -> &ExportStore {
        self.export.as_ref().expect("chosen only when configured")
    }

    /// The named store `id`, refusing digests outside its images.
    fn named_allows(&self, id: &str, digest: &str) -> Result<(), Status> {
        let store = &self.named[id];
        if store.allows(digest) {
            Ok(())
        } else {
            Err(Status::not_found(format!(
                "content {digest}: not found in store {NAMED_PREFIX}{id}"
            )))
        }
    }
}

#[tonic::async_trait]
impl Content for SessionContent {
    async fn info(
        &self,
        request: Request<api::InfoRequest>,
    ) -> Result<Response<api::InfoResponse>, Status> {
        match self.choose(request.metadata())? {
            Chosen::Named(id) => {
                let digest = request.get_ref().digest.clone();
                self.named_allows(&id, &digest)?;
                let mut c = self.client.clone();
                c.info(api::InfoRequest { digest }).await
            }
            Chosen::Export => {
                let info = self.export().info(&request.get_ref().digest)?;
                Ok(Response::new(api::InfoResponse { info: Some(info) }))
            }
        }
    }

    async fn update(
        &self,
        request: Request<api::UpdateRequest>,
    ) -> Result<Response<api::UpdateResponse>, Status> {
        match self.choose(request.metadata())? {
            Chosen::Named(id) => Err(read_only(&id)),
            // BuildKit's labels are hints for its own store; the sandbox's
            // labels are set by the gateway's import.
            Chosen::Export => Err(Status::unimplemented("the export store keeps no labels")),
        }
    }

    type ListStream = BoxStream<api::ListContentResponse>;

    async fn list(
        &self,
        request: Request<api::ListContentRequest>,
    ) -> Result<Response<Self::ListStream>, Status> {
        let info = match self.choose(request.metadata())? {
            Chosen::Named(id) => {
                let mut out = Vec::new();
                for digest in self.named[&id].digests() {
                    let mut c = self.client.clone();
                    match c
                        .info(api::InfoRequest {
                            digest: digest.to_string(),
                        })
                        .await
                    {
                        Ok(r) => out.extend(r.into_inner().info),
                        Err(s) if s.code() == tonic::Code::NotFound => {}
                        Err(s) => return Err(s),
                    }
                }
                out
            }
            Chosen::Export => self.export().list(),
        };
        let once = futures::stream::once(async move { Ok(api::ListContentResponse { info }) });
        Ok(Response::new(Box::pin(once)))
    }

    async fn delete(
        &self,
        request: Request<api::DeleteContentRequest>,
    ) -> Result<Response<()>, Status> {
        match self.choose(request.metadata())? {
            Chosen::Named(id) => Err(read_only(&id)),
            Chosen::Export => Err(Status::permission_denied(
                "the export store does not delete content",
            )),
        }
    }

    type ReadStream = BoxStream<api::ReadContentResponse>;

    async fn read(
        &self,
        request: Request<api::ReadContentRequest>,
    ) -> Result<Response<Self::ReadStream>, Status> {
        match self.choose(request.metadata())? {
            Chosen::Named(id) => {
                let req = request.into_inner();
                self.named_allows(&id, &req.digest)?;
                let mut c = self.client.clone();
                let s = c.read(req).await?.into_inner();
                Ok(Response::new(Box::pin(s)))
            }
            Chosen::Export => {
                let s = self.export().read(request.into_inner())?;
                Ok(Response::new(s))
            }
        }
    }

    async fn status(
        &self,
        request: Request<api::StatusRequest>,
    ) -> Result<Response<api::StatusResponse>, Status> {
        match self.choose(request.metadata())? {
            Chosen::Named(id) => Err(read_only(&id)),
            Chosen::Export => {
                let status = self.export().status(&request.get_ref().r#ref)?;
                Ok(Response::new(api::StatusResponse {
                    status: Some(status),
                }))
            }
        }
    }

    async fn list_statuses(
        &self,
        request: Request<api::ListStatusesRequest>,
    ) -> Result<Response<api::ListStatusesResponse>, Status> {
        let statuses = match self.choose(request.metadata())? {
            Chosen::Named(_) => Vec::new(),
            Chosen::Export => self.export().statuses(),
        };
        Ok(Response::new(api::ListStatusesResponse { statuses }))
    }

    type WriteStream = BoxStream<api::WriteContentResponse>;

    async fn write(
        &self,
        request: Request<Streaming<api::WriteContentRequest>>,
    ) -> Result<Response<Self::WriteStream>, Status> {
        match self.choose(request.metadata())? {
            Chosen::Named(id) => Err(read_only(&id)),
            Chosen::Export => {
                let s = self.export().write(request.into_inner()).await?;
                Ok(Response::new(s))
            }
        }
    }

    async fn abort(&self, request: Request<api::AbortRequest>) -> Result<Response<()>, Status> {
        match self.choose(request.metadata())? {
            Chosen::Named(id) => Err(read_only(&id)),
            Chosen::Export => {
                self.export().abort(&request.get_ref().r#ref)?;
                Ok(Response::new(()))
            }
        }
    }
}

#[cfg(test)]
mod stack_test;
#[cfg(test)]
mod tests;
