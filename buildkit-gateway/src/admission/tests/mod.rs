//! Table tests of admission: every refusal of the boundary rules, and what
//! hardening makes of an allowed request. They run the repository's
//! policies/ against requests shaped like berth's CLI (docker-like) builds.

mod create;
mod tasks;

use containerd_client::services::v1 as api;
use serde_json::{json, Value};

use super::testkit::{
    self, any, bind, container, engine, exec_request, spec, task_request, World, ID, NETNS, PROXY,
};
use super::*;

fn create(w: &World, spec: &Value) -> Admission<api::Container> {
    container_create(engine(), &w.sb, container(spec))
}

fn create_with(
    w: &World,
    spec: &Value,
    edit: impl FnOnce(&mut api::Container),
) -> Admission<api::Container> {
    let mut c = container(spec);
    edit(&mut c);
    container_create(engine(), &w.sb, c)
}

/// The reasons of a refusal (panics when allowed).
fn reasons<T: std::fmt::Debug>(result: Admission<T>) -> Vec<String> {
    match result {
        Ok((v, _)) => panic!("expected a refusal, got {v:?}"),
        Err(d) => d.reasons,
    }
}

fn refused_with<T: std::fmt::Debug>(result: Admission<T>, reason: &str) {
    let got = reasons(result);
    assert!(
        got.iter().any(|r| r == reason),
        "missing {reason:?} in {got:?}"
    );
}

fn forwarded_spec(c: &api::Container) -> Value {
    let any = c.spec.as_ref().unwrap();
    assert_eq!(any.type_url, SPEC_TYPE_URL);
    serde_json::from_slice(&any.value).unwrap()
}
