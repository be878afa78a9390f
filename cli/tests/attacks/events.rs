//! Events.Publish and Events.Forward would inject events into containerd's
//! exchange, which every namespace's subscribers read (threat model row 26).
//! Neither is served; a subscriber on the real containerd sees nothing.

use std::time::Duration;

use crate::common::*;
use crate::raw;
use crate::rpc;
use crate::support::*;

/// Runs `inject` while `ctr events` listens on the real containerd, and
/// asserts its refusal as Unimplemented and that `topic` never appeared.
#[track_caller]
fn injection_refused(topic: &str, inject: impl FnOnce() -> Result<(), tonic::Status>) {
    stack();
    let _serial = serial();
    let before = Snapshot::take();
    let listener = std::thread::spawn(|| {
        let mut cmd = std::process::Command::new("timeout");
        cmd.args(["5", "ctr", "-a", REAL_SOCKET, "events"]);
        run(cmd, Input::Null, COMMAND_TIMEOUT)
    });
    std::thread::sleep(Duration::from_secs(1));
    let result = inject();
    let seen = listener.join().expect("events listener");
    assert_status(result, &[tonic::Code::Unimplemented], &[""], topic);
    assert!(
        !seen.stdout.contains(topic),
        "the real containerd published {topic}:\n{seen}"
    );
    assert_nothing_new(&before, topic);
}

#[test]
fn events_publish_is_refused() {
    let topic = format!("/containers/delete/{}", unique("pub"));
    injection_refused(&topic, || raw::block_on(rpc::publish(&topic)));
}

#[test]
fn events_forward_into_another_namespace_is_refused() {
    let topic = format!("/containers/delete/{}", unique("fwd"));
    injection_refused(&topic, || {
        raw::block_on(rpc::forward(OTHER_NAMESPACE, &topic))
    });
}

#[test]
fn events_forward_into_the_sandbox_namespace_is_refused() {
    let topic = format!("/tasks/exit/{}", unique("fwd-own"));
    injection_refused(&topic, || raw::block_on(rpc::forward(NAMESPACE, &topic)));
}
