//! Rule 1: whatever namespace a client names, in however many headers,
//! under whichever header name or letter case, the action lands in the
//! sandbox's namespace only (threat model rows 1 and 2).

use tonic::Code;

use crate::common::*;
use crate::raw;
use crate::rpc;
use crate::support::*;

/// Runs `act`, which creates lease `id` somehow, and asserts that the only
/// new object anywhere is that lease in the sandbox's namespace (not in
/// `OTHER_NAMESPACE`, nor in `default`).
#[track_caller]
fn lands_in_the_sandbox(id: &str, act: impl FnOnce()) {
    stack();
    let _serial = serial();
    let before = Snapshot::take();
    act();
    let new = Snapshot::take().new_since(&before);
    let _ = real_ctr(&["leases", "rm", id]);
    assert_eq!(
        new,
        vec![format!("{NAMESPACE} lease {id}")],
        "the lease must land in {NAMESPACE} and nowhere else"
    );
    let default = real_ctr_ns("default", &["leases", "ls", "-q"]);
    assert!(
        !default.stdout.contains(id),
        "the lease landed in default:\n{default}"
    );
}

#[test]
fn two_namespace_headers_land_in_the_sandbox() {
    let id = unique("two-ns");
    lands_in_the_sandbox(&id, || {
        let headers = [
            ("containerd-namespace", OTHER_NAMESPACE),
            ("containerd-namespace", "default"),
        ];
        raw::block_on(rpc::create_lease_as(&id, &headers)).expect("Leases.Create");
    });
}

#[test]
fn the_ttrpc_namespace_header_is_ignored() {
    let id = unique("ttrpc-ns");
    lands_in_the_sandbox(&id, || {
        let headers = [("containerd-namespace-ttrpc", OTHER_NAMESPACE)];
        raw::block_on(rpc::create_lease_as(&id, &headers)).expect("Leases.Create");
    });
}

#[test]
fn ctr_naming_another_namespace_lands_in_the_sandbox() {
    let id = unique("ctr-other-ns");
    lands_in_the_sandbox(&id, || {
        gateway_ctr_ns(OTHER_NAMESPACE, &["leases", "create", "--id", &id]).ok();
    });
}

#[test]
fn a_namespace_in_another_letter_case_lands_in_the_sandbox() {
    // containerd rejects upper-case namespaces; a checker comparing without
    // case would take this for the sandbox's. The gateway reads neither.
    let id = unique("upper-ns");
    let upper = OTHER_NAMESPACE.to_uppercase();
    lands_in_the_sandbox(&id, || {
        gateway_ctr_ns(&upper, &["leases", "create", "--id", &id]).ok();
    });
}

#[test]
fn another_namespace_is_not_found() {
    stack();
    let _serial = serial();
    let marker = unique("ns-marker");
    real_ctr_ns(OTHER_NAMESPACE, &["leases", "create", "--id", &marker]).ok();
    let result = raw::block_on(rpc::get_namespace(OTHER_NAMESPACE));
    let _ = real_ctr_ns(OTHER_NAMESPACE, &["leases", "rm", &marker]);
    assert_status(
        result,
        &[Code::NotFound],
        &["not found"],
        "Namespaces.Get of another namespace",
    );
}

#[test]
fn deleting_another_namespace_is_refused() {
    stack();
    let _serial = serial();
    let marker = unique("ns-keep");
    real_ctr_ns(OTHER_NAMESPACE, &["leases", "create", "--id", &marker]).ok();
    let before = Snapshot::take();
    let out = gateway_ctr(&["namespaces", "rm", OTHER_NAMESPACE]);
    let still = real_ctr_ns(OTHER_NAMESPACE, &["leases", "ls", "-q"]);
    let _ = real_ctr_ns(OTHER_NAMESPACE, &["leases", "rm", &marker]);
    assert_raw_refused(&out, &["namespace"], &before);
    assert!(
        before.contains(&format!("namespace {OTHER_NAMESPACE}")) && still.stdout.contains(&marker),
        "{OTHER_NAMESPACE} or its lease is gone:\n{still}"
    );
}

#[test]
fn deleting_the_sandbox_namespace_is_refused() {
    stack();
    let _serial = serial();
    let before = Snapshot::take();
    let out = gateway_ctr(&["namespaces", "rm", NAMESPACE]);
    assert_raw_refused(&out, &["namespace"], &before);
    assert!(Snapshot::take().contains(&format!("namespace {NAMESPACE}")));
}
