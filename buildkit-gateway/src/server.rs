//! What every service of the gateway shares, and the tonic server itself.
//!
//! Only the services listed in `router` exist; tonic answers Unimplemented
//! for every other method (deny by default, boundary rule 2).

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;

use berth_gateway::admission::{self, Admission, Denied};
use berth_gateway::policy::PolicyEngine;
use berth_gateway::sandbox::Sandbox;
use berth_gateway::upstream::Upstream;
use berth_proto::berth::v1 as berth;
use berth_proto::containerd as facade;
use tokio::net::UnixListener;
use tokio_stream::wrappers::UnixListenerStream;

use crate::audit::{self, Peer, Verdict};
use crate::error::{GatewayError, Result};
use crate::services::{self, Method};
use crate::stdio::Relays;

pub struct Ctx {
    pub up: Upstream,
    pub sb: Sandbox,
    pub engine: PolicyEngine,
    pub relays: Relays,
    /// Where `Images/Load` spools archives (gateway-private).
    pub tmp_dir: PathBuf,
    /// The sandbox's content, snapshot and lease quotas (config `[quota]`).
    pub quotas: berth_gateway::quota::Quotas,
}

impl Ctx {
    /// Decides a method that has no admission function of its own
    /// (`admission::generic`) and logs the decision.
    pub fn decide(&self, peer: Peer, m: &Method, object: &str) -> Result<()> {
        let res = admission::generic(&self.engine, &self.sb, m.rule, object).map(|v| ((), v));
        self.admitted(peer, m, object, res)
    }

    /// Decides an image name the sandbox wants to use
    /// (`admission::image`, rule `images.admit`) and logs the decision.
    pub fn admit_image(
        &self,
        peer: Peer,
        m: &Method,
        action: admission::image::Action,
        name: &str,
        digest: Option<&str>,
    ) -> Result<()> {
        let res =
            admission::image::admit(&self.engine, &self.sb, action, name, digest).map(|v| ((), v));
        self.admitted(peer, m, name, res)
    }

    /// Refuses labels under prefixes containerd or runc act on (GC roots and
    /// expiry, restart monitor, CRIU and systemd properties); a client may set
    /// only its own labels on snapshots, images and leases.
    pub fn check_labels<'a>(
        &self,
        peer: Peer,
        m: &Method,
        object: &str,
        keys: impl IntoIterator<Item = &'a String>,
    ) -> Result<()> {
        for key in keys {
            if let Some(prefix) = admission::DAEMON_PREFIXES
                .iter()
                .find(|p| key.starts_with(**p))
            {
                let message = format!(
                    "refusing {object}: label {key} is under {prefix}, which the daemon acts on (rule {})",
                    m.rule
                );
                return Err(self.refuse(peer, m, object, m.rule, message));
            }
        }
        Ok(())
    }

    /// A quota refusal (ResourceExhausted), logged like a policy refusal
    /// under the rule `quota`.
    pub fn over_quota(
        &self,
        peer: Peer,
        m: &Method,
        object: &str,
        e: berth_gateway::quota::Exceeded,
    ) -> GatewayError {
        audit::decision(&audit::Decision {
            peer,
            method: m.path,
            object,
            verdict: Verdict::Deny,
            rule: "quota",
            reasons: std::slice::from_ref(&e.0),
        });
        GatewayError::client(tonic::Code::ResourceExhausted, e.0)
    }

    /// Logs an admission's outcome and passes on the admitted value.
    pub fn admitted<T>(
        &self,
        peer: Peer,
        m: &Method,
        object: &str,
        res: Admission<T>,
    ) -> Result<T> {
        match res {
            Ok((value, v)) => {
                let object = if v.object.is_empty() {
                    object
                } else {
                    &v.object
                };
                audit::decision(&audit::Decision {
                    peer,
                    method: m.path,
                    object,
                    verdict: Verdict::Allow,
                    rule: &v.rule,
                    reasons: &v.reasons,
                });
                Ok(value)
            }
            Err(d) => Err(self.denied(peer, m, object, d)),
        }
    }

    /// A refusal by one of the gateway's own rules, logged like policy's.
    pub fn refuse(
        &self,
        peer: Peer,
        m: &Method,
        object: &str,
        rule: &str,
        message: String,
    ) -> GatewayError {
        let d = Denied {
            rule: rule.to_string(),
            reasons: vec![message.clone()],
            message,
        };
        self.denied(peer, m, object, d)
    }

    fn denied(&self, peer: Peer, m: &Method, object: &str, d: Denied) -> GatewayError {
        audit::decision(&audit::Decision {
            peer,
            method: m.path,
            object,
            verdict: Verdict::Deny,
            rule: &d.rule,
            reasons: &d.reasons,
        });
        GatewayError::Denied(d)
    }
}

/// Serves the containerd facade and berth's own services on `listener` until
/// `shutdown` resolves, then stops accepting and lets running calls finish.
pub async fn serve(
    ctx: Arc<Ctx>,
    listener: UnixListener,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    tonic::transport::Server::builder()
        .add_service(facade::version::version_server::VersionServer::new(
            services::version::Version(ctx.clone()),
        ))
        .add_service(
            facade::namespaces::namespaces_server::NamespacesServer::new(
                services::namespaces::Namespaces(ctx.clone()),
            ),
        )
        .add_service(
            facade::containers::containers_server::ContainersServer::new(
                services::containers::Containers(ctx.clone()),
            ),
        )
        .add_service(facade::images::images_server::ImagesServer::new(
            services::images::Images(ctx.clone()),
        ))
        .add_service(facade::content::content_server::ContentServer::new(
            services::content::Content(ctx.clone()),
        ))
        .add_service(facade::snapshots::snapshots_server::SnapshotsServer::new(
            services::snapshots::Snapshots(ctx.clone()),
        ))
        .add_service(facade::tasks::tasks_server::TasksServer::new(
            services::tasks::Tasks(ctx.clone()),
        ))
        .add_service(facade::leases::leases_server::LeasesServer::new(
            services::leases::Leases(ctx.clone()),
        ))
        .add_service(facade::events::events_server::EventsServer::new(
            services::events::Events(ctx.clone()),
        ))
        .add_service(berth::stdio_server::StdioServer::new(
            services::attach::Stdio(ctx.clone()),
        ))
        .add_service(berth::logs_server::LogsServer::new(services::logs::Logs(
            ctx.clone(),
        )))
        .add_service(berth::images_server::ImagesServer::new(
            services::load::Load(ctx),
        ))
        .serve_with_incoming_shutdown(UnixListenerStream::new(listener), shutdown)
        .await?;
    Ok(())
}
