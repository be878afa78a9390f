//! The events filter handling (`berth_gateway::events`): the client's
//! subscription filters scoped to the sandbox's namespace, and each
//! envelope containerd sends dropped unless it is the sandbox's, with a
//! TaskCreate payload (decoded with prost) stripped of host paths.
//! Structure-aware (`arbitrary`): filters, a namespace, an envelope whose
//! payload is a TaskCreate built from fields or raw bytes.
#![no_main]

use arbitrary::Arbitrary;
use berth_gateway::events::{sandboxed, scoped_filters, TASK_CREATE};
use berth_proto::STDIO_RELAY;
use containerd_client::events::{TaskCreate, TaskIo};
use containerd_client::types::{Envelope, Mount};
use libfuzzer_sys::fuzz_target;
use prost::Message;

#[derive(Arbitrary, Debug)]
struct Input {
    filters: Vec<String>,
    /// The sandbox's namespace is this one when set, else `berth-sandbox`.
    namespace: Option<String>,
    envelope_namespace: Option<String>,
    topic: String,
    type_url: TypeUrl,
    payload: Payload,
}

#[derive(Arbitrary, Debug)]
enum TypeUrl {
    Bare,
    Prefixed(String),
    Other(String),
    None,
}

#[derive(Arbitrary, Debug)]
enum Payload {
    Raw(Vec<u8>),
    TaskCreate {
        container_id: String,
        bundle: String,
        rootfs: Vec<(String, String, Vec<String>)>,
        stdin: String,
        stdout: String,
        stderr: String,
        checkpoint: String,
        pid: u32,
    },
}

fuzz_target!(|input: Input| {
    let ns = input.namespace.unwrap_or_else(|| "berth-sandbox".into());

    let scoped = scoped_filters(&input.filters, &ns);
    let given = input.filters.iter().filter(|f| !f.trim().is_empty()).count();
    assert_eq!(scoped.len(), given.max(1));
    let quoted = format!("\"{}\"", ns.replace('\\', "\\\\").replace('"', "\\\""));
    for f in &scoped {
        assert!(f.starts_with(&format!("namespace=={quoted}")), "{f:?} is not scoped");
    }

    let value = match input.payload {
        Payload::Raw(bytes) => bytes,
        Payload::TaskCreate {
            container_id,
            bundle,
            rootfs,
            stdin,
            stdout,
            stderr,
            checkpoint,
            pid,
        } => TaskCreate {
            container_id,
            bundle,
            rootfs: rootfs
                .into_iter()
                .map(|(r#type, source, options)| Mount {
                    r#type,
                    source,
                    target: String::new(),
                    options,
                })
                .collect(),
            io: Some(TaskIo {
                stdin,
                stdout,
                stderr,
                terminal: false,
            }),
            checkpoint,
            pid,
        }
        .encode_to_vec(),
    };
    let type_url = match input.type_url {
        TypeUrl::Bare => Some(TASK_CREATE.to_string()),
        TypeUrl::Prefixed(p) => Some(format!("{p}/{TASK_CREATE}")),
        TypeUrl::Other(t) => Some(t),
        TypeUrl::None => None,
    };
    let env = Envelope {
        timestamp: None,
        namespace: input.envelope_namespace.unwrap_or_else(|| ns.clone()),
        topic: input.topic,
        event: type_url.map(|type_url| prost_types::Any { type_url, value }),
    };
    let from = env.namespace.clone();
    let Some(out) = sandboxed(env, &ns) else {
        return;
    };
    assert_eq!(from, ns, "an envelope of another namespace was passed on");
    let Some(event) = out.event else {
        return;
    };
    if event.type_url.rsplit('/').next() == Some(TASK_CREATE) {
        let tc = TaskCreate::decode(event.value.as_slice()).expect("a scrubbed TaskCreate decodes");
        assert!(tc.bundle.is_empty() && tc.rootfs.is_empty() && tc.checkpoint.is_empty());
        if let Some(io) = tc.io {
            for p in [&io.stdin, &io.stdout, &io.stderr] {
                assert!(p.is_empty() || p == STDIO_RELAY, "host path {p:?} passed on");
            }
        }
    }
});
