//! `containerd.services.tasks.v1.Tasks` (boundary rule 4).
//!
//! Create and Exec: the client names no host path. The rootfs is computed
//! from the container's snapshot upstream; stdio fields may only carry the
//! relay marker, which the gateway replaces with FIFOs it created in its own
//! directory. Everything else is decided, then forwarded.

use std::sync::Arc;

use berth_gateway::admission;
use berth_proto::containerd::tasks::tasks_server;
use berth_proto::{Empty, STDIO_RELAY};
use containerd_client::services::v1 as api;
use containerd_client::services::v1::snapshots::MountsRequest;
use containerd_client::types::v1::Process;
use tonic::Request;

use super::{method, process_object, reply, Method, Reply};
use crate::audit::Peer;
use crate::error::{GatewayError, Result};
use crate::server::Ctx;
use crate::stdio::{Paths, Streams};

const SVC_TASKS: &str = "containerd.services.tasks.v1.Tasks";
const CREATE: Method = method!(
    "containerd.services.tasks.v1.Tasks",
    "Create",
    "tasks.create"
);
const START: Method = method!("containerd.services.tasks.v1.Tasks", "Start", "tasks.start");
const DELETE: Method = method!(
    "containerd.services.tasks.v1.Tasks",
    "Delete",
    "tasks.delete"
);
const DELETE_PROCESS: Method = method!(
    "containerd.services.tasks.v1.Tasks",
    "DeleteProcess",
    "tasks.delete_process"
);
const GET: Method = method!("containerd.services.tasks.v1.Tasks", "Get", "tasks.get");
const LIST: Method = method!("containerd.services.tasks.v1.Tasks", "List", "tasks.list");
const KILL: Method = method!("containerd.services.tasks.v1.Tasks", "Kill", "tasks.kill");
const EXEC: Method = method!("containerd.services.tasks.v1.Tasks", "Exec", "tasks.exec");
const RESIZE_PTY: Method = method!(
    "containerd.services.tasks.v1.Tasks",
    "ResizePty",
    "tasks.resize_pty"
);
const CLOSE_IO: Method = method!(
    "containerd.services.tasks.v1.Tasks",
    "CloseIO",
    "tasks.close_io"
);
const LIST_PIDS: Method = method!(
    "containerd.services.tasks.v1.Tasks",
    "ListPids",
    "tasks.list_pids"
);
const WAIT: Method = method!("containerd.services.tasks.v1.Tasks", "Wait", "tasks.wait");

/// The gateway's own rule for fields that name host paths or programs.
const RULE_HOST_FIELDS: &str = "tasks.host_fields";

pub struct Tasks(pub Arc<Ctx>);

/// Runs `f` as its own task: once the gateway created FIFOs or forwarded a
/// create, a client hanging up must not abandon the work half-way.
async fn detached<T: Send + 'static>(
    f: impl std::future::Future<Output = Result<T>> + Send + 'static,
) -> Result<T> {
    tokio::spawn(f)
        .await
        .map_err(|e| GatewayError::internal("task handler", e))?
}

#[tonic::async_trait]
impl tasks_server::Tasks for Tasks {
    async fn create(&self, req: Request<api::CreateTaskRequest>) -> Reply<api::CreateTaskResponse> {
        let peer = Peer::of(&req);
        reply(detached(create(self.0.clone(), peer, req.into_inner())).await)
    }

    async fn start(&self, req: Request<api::StartRequest>) -> Reply<api::StartResponse> {
        let peer = Peer::of(&req);
        let req = req.into_inner();
        let ctx = &self.0;
        reply(
            async {
                let (cid, exec) = (req.container_id.clone(), req.exec_id.clone());
                ctx.decide(peer, &START, &process_object(&cid, &exec))?;
                let resp = ctx
                    .up
                    .tasks()
                    .start(ctx.up.request(req))
                    .await?
                    .into_inner();
                // An exec's shim opens its FIFOs in Start.
                ctx.relays.connect(&cid, &exec);
                Ok(resp)
            }
            .await,
        )
    }

    async fn delete(&self, req: Request<api::DeleteTaskRequest>) -> Reply<api::DeleteResponse> {
        let peer = Peer::of(&req);
        let ctx = self.0.clone();
        let req = req.into_inner();
        reply(
            detached(async move {
                let cid = req.container_id.clone();
                ctx.decide(peer, &DELETE, &cid)?;
                let resp = ctx
                    .up
                    .tasks()
                    .delete(ctx.up.request(req))
                    .await?
                    .into_inner();
                ctx.relays.finish_container(&cid).await;
                Ok(resp)
            })
            .await,
        )
    }

    async fn delete_process(
        &self,
        req: Request<api::DeleteProcessRequest>,
    ) -> Reply<api::DeleteResponse> {
        let peer = Peer::of(&req);
        let ctx = self.0.clone();
        let req = req.into_inner();
        reply(
            detached(async move {
                let (cid, exec) = (req.container_id.clone(), req.exec_id.clone());
                ctx.decide(peer, &DELETE_PROCESS, &process_object(&cid, &exec))?;
                let resp = ctx
                    .up
                    .tasks()
                    .delete_process(ctx.up.request(req))
                    .await?
                    .into_inner();
                ctx.relays.finish(&cid, &exec).await;
                Ok(resp)
            })
            .await,
        )
    }

    async fn get(&self, req: Request<api::GetRequest>) -> Reply<api::GetResponse> {
        let peer = Peer::of(&req);
        let req = req.into_inner();
        let ctx = &self.0;
        reply(
            async {
                ctx.decide(peer, &GET, &process_object(&req.container_id, &req.exec_id))?;
                let mut resp = ctx.up.tasks().get(ctx.up.request(req)).await?.into_inner();
                resp.process.iter_mut().for_each(hide_fifo_paths);
                Ok(resp)
            }
            .await,
        )
    }

    async fn list(&self, req: Request<api::ListTasksRequest>) -> Reply<api::ListTasksResponse> {
        let peer = Peer::of(&req);
        let req = req.into_inner();
        let ctx = &self.0;
        reply(
            async {
                ctx.decide(peer, &LIST, "")?;
                let mut resp = ctx.up.tasks().list(ctx.up.request(req)).await?.into_inner();
                resp.tasks.iter_mut().for_each(hide_fifo_paths);
                Ok(resp)
            }
            .await,
        )
    }

    async fn kill(&self, req: Request<api::KillRequest>) -> Reply<Empty> {
        let peer = Peer::of(&req);
        let req = req.into_inner();
        let ctx = &self.0;
        reply(
            async {
                ctx.decide(
                    peer,
                    &KILL,
                    &process_object(&req.container_id, &req.exec_id),
                )?;
                ctx.up.tasks().kill(ctx.up.request(req)).await?;
                Ok(())
            }
            .await,
        )
    }

    async fn exec(&self, req: Request<api::ExecProcessRequest>) -> Reply<Empty> {
        let peer = Peer::of(&req);
        reply(detached(exec(self.0.clone(), peer, req.into_inner())).await)
    }

    async fn resize_pty(&self, req: Request<api::ResizePtyRequest>) -> Reply<Empty> {
        let peer = Peer::of(&req);
        let req = req.into_inner();
        let ctx = &self.0;
        reply(
            async {
                ctx.decide(
                    peer,
                    &RESIZE_PTY,
                    &process_object(&req.container_id, &req.exec_id),
                )?;
                ctx.up.tasks().resize_pty(ctx.up.request(req)).await?;
                Ok(())
            }
            .await,
        )
    }

    async fn close_i_o(&self, req: Request<api::CloseIoRequest>) -> Reply<Empty> {
        let peer = Peer::of(&req);
        let req = req.into_inner();
        let ctx = &self.0;
        reply(
            async {
                ctx.decide(
                    peer,
                    &CLOSE_IO,
                    &process_object(&req.container_id, &req.exec_id),
                )?;
                ctx.up.tasks().close_io(ctx.up.request(req)).await?;
                Ok(())
            }
            .await,
        )
    }

    async fn list_pids(&self, req: Request<api::ListPidsRequest>) -> Reply<api::ListPidsResponse> {
        let peer = Peer::of(&req);
        let req = req.into_inner();
        let ctx = &self.0;
        reply(
            async {
                ctx.decide(peer, &LIST_PIDS, &req.container_id)?;
                Ok(ctx
                    .up
                    .tasks()
                    .list_pids(ctx.up.request(req))
                    .await?
                    .into_inner())
            }
            .await,
        )
    }

    async fn wait(&self, req: Request<api::WaitRequest>) -> Reply<api::WaitResponse> {
        let peer = Peer::of(&req);
        let req = req.into_inner();
        let ctx = &self.0;
        reply(
            async {
                ctx.decide(
                    peer,
                    &WAIT,
                    &process_object(&req.container_id, &req.exec_id),
                )?;
                // Across a containerd restart (upstream::retry_while_away).
                use berth_gateway::upstream::{retry_while_away, RESTART_WINDOW};
                Ok(retry_while_away(RESTART_WINDOW, || {
                    let (mut tasks, req) = (ctx.up.tasks(), ctx.up.request(req.clone()));
                    async move { tasks.wait(req).await }
                })
                .await?
                .into_inner())
            }
            .await,
        )
    }
}

async fn create(
    ctx: Arc<Ctx>,
    peer: Peer,
    req: api::CreateTaskRequest,
) -> Result<api::CreateTaskResponse> {
    let id = req.container_id.clone();
    let mut req = ctx.admitted(
        peer,
        &CREATE,
        &id,
        admission::task_create(&ctx.engine, &ctx.sb, req),
    )?;
    // Admission refuses these; the gateway still never forwards a client's
    // host path, program or runtime options, whatever a policy says.
    if let Some(field) = host_field_of_create(&req) {
        return Err(refuse_host_field(&ctx, peer, &CREATE, &id, field));
    }
    let streams = streams_of(&req.stdin, &req.stdout, &req.stderr, req.terminal)
        .map_err(|field| refuse_host_field(&ctx, peer, &CREATE, &id, field))?;

    let container = get_container(&ctx, &id).await?;
    if container.snapshotter != ctx.sb.snapshotter || container.snapshot_key.is_empty() {
        return Err(ctx.refuse(
            peer,
            &CREATE,
            &id,
            RULE_HOST_FIELDS,
            format!(
                "refusing task for container {id}: it has no {} snapshot",
                ctx.sb.snapshotter
            ),
        ));
    }
    // The agent may have swapped a checked bind source for a symlink since
    // Containers.Create: check the sources again right before runc mounts.
    if let Err(denied) = admission::recheck_binds(&ctx.sb, &container) {
        return Err(ctx.refuse(peer, &CREATE, &id, &denied.rule, denied.message));
    }
    // The recheck only narrows the race; runc gets each source as a
    // staging mount of the directory the gateway opened, so a later swap
    // changes nothing (admission::pin). The original spec is put back, and
    // the staging mounts removed, once the task exists.
    let pinned = admission::pin::pin_binds(&ctx.sb, &container)
        .map_err(|d| ctx.refuse(peer, &CREATE, &id, &d.rule, d.message))?;
    let original_spec = container.spec.clone();
    let mounts = MountsRequest {
        snapshotter: container.snapshotter,
        key: container.snapshot_key,
    };
    req.rootfs = ctx
        .up
        .snapshots()
        .mounts(ctx.up.request(mounts))
        .await?
        .into_inner()
        .mounts;

    // Dropped without commit (any `?` below), the relay and its FIFOs go.
    let pending = match streams.any() {
        true => Some(ctx.relays.prepare(&id, "", streams)?),
        false => None,
    };
    let paths = pending
        .as_ref()
        .map(|p| p.paths().clone())
        .unwrap_or_default();
    (req.stdin, req.stdout, req.stderr) = fifo_fields(&paths);
    let resp = match &pinned {
        None => ctx.up.tasks().create(ctx.up.request(req)).await,
        Some(p) => {
            // One pinned create at a time: two creates of one container
            // would share its staging paths and its spec.
            let _one = PIN_LOCK.lock().await;
            set_spec(&ctx, &id, p.spec.clone()).await?;
            let resp = ctx.up.tasks().create(ctx.up.request(req)).await;
            if let Some(spec) = original_spec {
                if let Err(e) = set_spec(&ctx, &id, spec.value).await {
                    // Its next task is refused by the recheck (the /proc
                    // sources are below no volume root); nothing escapes.
                    crate::audit::warn(&format!("restoring the spec of {id}: {e}"));
                }
            }
            resp
        }
    }?
    .into_inner();
    drop(pinned);
    if let Some(p) = pending {
        p.commit();
        // The init process's shim opened its FIFO ends during Create.
        ctx.relays.connect(&id, "");
    }
    Ok(resp)
}

async fn exec(ctx: Arc<Ctx>, peer: Peer, req: api::ExecProcessRequest) -> Result<Empty> {
    let (cid, exec_id) = (req.container_id.clone(), req.exec_id.clone());
    let object = process_object(&cid, &exec_id);
    if exec_id.is_empty() {
        return Err(GatewayError::invalid(format!(
            "exec in container {cid} without an exec id"
        )));
    }
    let container = get_container(&ctx, &cid).await?;
    let mut req = ctx.admitted(
        peer,
        &EXEC,
        &object,
        admission::task_exec(&ctx.engine, &ctx.sb, &container, req),
    )?;
    let streams = streams_of(&req.stdin, &req.stdout, &req.stderr, req.terminal)
        .map_err(|field| refuse_host_field(&ctx, peer, &EXEC, &object, field))?;
    let pending = match streams.any() {
        true => Some(ctx.relays.prepare(&cid, &exec_id, streams)?),
        false => None,
    };
    let paths = pending
        .as_ref()
        .map(|p| p.paths().clone())
        .unwrap_or_default();
    (req.stdin, req.stdout, req.stderr) = fifo_fields(&paths);
    ctx.up.tasks().exec(ctx.up.request(req)).await?;
    // The exec's shim opens the FIFOs at Tasks.Start, which connects them.
    if let Some(p) = pending {
        p.commit();
    }
    Ok(())
}

/// Serialises the Tasks.Create calls that run with a pinned spec.
static PIN_LOCK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Replaces the spec of container `id` in containerd (the gateway's own
/// update: only the spec, by mask).
async fn set_spec(ctx: &Ctx, id: &str, spec: Vec<u8>) -> Result<()> {
    let msg = api::UpdateContainerRequest {
        container: Some(api::Container {
            id: id.to_string(),
            spec: Some(prost_types::Any {
                type_url: admission::SPEC_TYPE_URL.to_string(),
                value: spec,
            }),
            ..Default::default()
        }),
        update_mask: Some(prost_types::FieldMask {
            paths: vec!["spec".to_string()],
        }),
    };
    ctx.up.containers().update(ctx.up.request(msg)).await?;
    Ok(())
}

async fn get_container(ctx: &Ctx, id: &str) -> Result<api::Container> {
    let msg = api::GetContainerRequest { id: id.to_string() };
    ctx.up
        .containers()
        .get(ctx.up.request(msg))
        .await?
        .into_inner()
        .container
        .ok_or_else(|| GatewayError::not_found(format!("container {id}: not found")))
}

fn host_field_of_create(req: &api::CreateTaskRequest) -> Option<&'static str> {
    if !req.runtime_path.is_empty() {
        Some("runtime_path")
    } else if req.checkpoint.is_some() {
        Some("checkpoint")
    } else if req.options.is_some() {
        Some("options")
    } else {
        None
    }
}

fn refuse_host_field(ctx: &Ctx, peer: Peer, m: &Method, object: &str, field: &str) -> GatewayError {
    let what = &m.path[SVC_TASKS.len() + 2..];
    ctx.refuse(
        peer,
        m,
        object,
        RULE_HOST_FIELDS,
        format!(
            "refusing {} of {object}: {field} is set by the gateway, not the client (rule {RULE_HOST_FIELDS})",
            what.to_lowercase()
        ),
    )
}

/// Which streams to relay. Each stdio field is empty (not connected) or the
/// relay marker; anything else — a path, `binary://`, `file://` — names the
/// field that carried it.
fn streams_of(
    stdin: &str,
    stdout: &str,
    stderr: &str,
    terminal: bool,
) -> Result<Streams, &'static str> {
    let relay = |v: &str, field: &'static str| match v {
        "" => Ok(false),
        STDIO_RELAY => Ok(true),
        _ => Err(field),
    };
    Ok(Streams {
        stdin: relay(stdin, "stdin")?,
        stdout: relay(stdout, "stdout")?,
        stderr: relay(stderr, "stderr")?,
        terminal,
    })
}

fn fifo_fields(p: &Paths) -> (String, String, String) {
    let s = |p: &Option<std::path::PathBuf>| {
        p.as_ref()
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_default()
    };
    (s(&p.stdin), s(&p.stdout), s(&p.stderr))
}

/// The client sees the marker it sent, not the gateway's FIFO paths.
fn hide_fifo_paths(p: &mut Process) {
    for f in [&mut p.stdin, &mut p.stdout, &mut p.stderr] {
        if !f.is_empty() {
            *f = STDIO_RELAY.to_string();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_relay_marker_or_nothing_is_accepted_as_stdio() {
        let r = STDIO_RELAY;
        assert_eq!(
            streams_of("", r, r, false),
            Ok(Streams {
                stdin: false,
                stdout: true,
                stderr: true,
                terminal: false
            })
        );
        assert_eq!(
            streams_of("", "", "", true),
            Ok(Streams {
                terminal: true,
                ..Default::default()
            })
        );
        for (stdin, stdout, stderr, field) in [
            ("/etc/shadow", r, r, "stdin"),
            ("", "binary:///usr/bin/evil", r, "stdout"),
            ("", r, "file:///etc/cron.d/x", "stderr"),
            (
                "",
                r,
                "/var/lib/berth-stack/gateway/io/x/init/stderr",
                "stderr",
            ),
            ("", "berth-relay ", r, "stdout"),
        ] {
            assert_eq!(streams_of(stdin, stdout, stderr, false), Err(field));
        }
    }

    #[test]
    fn create_refuses_runtime_path_checkpoint_and_options() {
        let base = api::CreateTaskRequest {
            container_id: "c".into(),
            ..Default::default()
        };
        assert_eq!(host_field_of_create(&base), None);
        let r = api::CreateTaskRequest {
            runtime_path: "/tmp/shim".into(),
            ..base.clone()
        };
        assert_eq!(host_field_of_create(&r), Some("runtime_path"));
        let r = api::CreateTaskRequest {
            options: Some(prost_types::Any::default()),
            ..base.clone()
        };
        assert_eq!(host_field_of_create(&r), Some("options"));
        let r = api::CreateTaskRequest {
            checkpoint: Some(Default::default()),
            ..base
        };
        assert_eq!(host_field_of_create(&r), Some("checkpoint"));
    }

    #[test]
    fn fifo_paths_are_hidden_from_the_client() {
        let mut p = Process {
            stdout: "/var/lib/berth-stack/gateway/io/c/init/stdout".into(),
            stderr: "/var/lib/berth-stack/gateway/io/c/init/stderr".into(),
            ..Default::default()
        };
        hide_fifo_paths(&mut p);
        assert_eq!(
            (p.stdin.as_str(), p.stdout.as_str(), p.stderr.as_str()),
            ("", STDIO_RELAY, STDIO_RELAY)
        );
    }
}
