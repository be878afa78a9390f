//! The attack corpus of issue 5 against the gateway's containerd facade.
//! Each case tries one way through the boundary with a client nobody here
//! wrote (Debian's `ctr` as the agent, pointed at the gateway socket) or,
//! where `ctr` cannot express the request, containerd's protobuf messages
//! sent by hand; it asserts the refusal with its reason AND that the real
//! containerd received nothing (its state compared before and after, and no
//! file the request named on the host). architecture/threat-model.md maps
//! each vector to its test here.
//!
//! The tests compare containerd's state before and after, so they run one
//! at a time (`serial`).

mod common;

// Not every helper of raw_api's client is used here.
#[allow(dead_code)]
#[path = "raw_api/raw.rs"]
mod raw;

#[path = "attacks/events.rs"]
mod events;
#[path = "attacks/grpc.rs"]
mod grpc;
#[path = "attacks/inside.rs"]
mod inside;
#[path = "attacks/labels.rs"]
mod labels;
#[path = "attacks/mounts.rs"]
mod mounts;
#[path = "attacks/namespaces.rs"]
mod namespaces;
#[path = "attacks/process.rs"]
mod process;
#[path = "attacks/rpc.rs"]
mod rpc;
#[path = "attacks/spec.rs"]
mod spec;
#[path = "attacks/store.rs"]
mod store;
#[path = "attacks/support.rs"]
mod support;
#[path = "attacks/toctou.rs"]
mod toctou;
#[path = "attacks/update.rs"]
mod update;
