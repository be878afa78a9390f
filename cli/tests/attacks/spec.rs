//! The spec as runc would read it (threat model rows 21 and 23): Go's JSON
//! decoder matches keys case-insensitively, with Unicode folding, and keeps
//! the last of duplicate keys; it ignores unknown keys a newer runc might
//! act on. The gateway refuses any document it cannot read exactly as runc
//! would, and any spec it was not shown (missing, empty, another type).

use containerd_client::services::v1::Container;
use serde_json::json;

use crate::common::*;
use crate::raw;
use crate::support::*;

/// A placeholder key `spec_text` replaces with the key under test.
const KEY: &str = "\"bt-placeholder\"";

fn set(spec: &mut serde_json::Value, pointer: &str, value: serde_json::Value) {
    let object = spec
        .pointer_mut(pointer)
        .unwrap_or_else(|| panic!("no {pointer} in ctr's spec"))
        .as_object_mut()
        .expect("an object");
    object.insert("bt-placeholder".to_string(), value);
}

/// ctr's spec with `key: value` written verbatim into the object at
/// `pointer` ("" for the top level).
fn with_key(pointer: &str, key: &str, value: serde_json::Value) -> String {
    spec_text(|s| set(s, pointer, value), KEY, key)
}

#[test]
fn an_unknown_top_level_key_is_refused() {
    // A newer runc (or crun) might act on a key the gateway never saw.
    let spec = with_key("", "\"hookz\"", json!({"prestart": [{"path": "/bin/sh"}]}));
    create_text_refused(&spec, &["hookz"]);
}

#[test]
fn an_unknown_key_in_process_is_refused() {
    let spec = with_key("/process", "\"privileged\"", json!(true));
    create_text_refused(&spec, &["process.privileged"]);
}

#[test]
fn an_unknown_key_in_linux_is_refused() {
    // intelRdt and personality are real OCI keys berth does not forward.
    let spec = with_key("/linux", "\"personality\"", json!({"domain": "LINUX32"}));
    create_text_refused(&spec, &["linux.personality"]);
}

#[test]
fn an_unknown_key_in_a_mount_is_refused() {
    let spec = spec_text(
        |s| {
            s["mounts"].as_array_mut().expect("mounts").push(json!({
                "destination": "/x", "type": "tmpfs", "source": "tmpfs", "bt-placeholder": "/etc"
            }))
        },
        KEY,
        "\"bindSource\"",
    );
    create_text_refused(&spec, &["bindsource"]);
}

#[test]
fn a_case_variant_capabilities_key_is_refused() {
    // runc would take "Capabilities" (the last of the two) as the process's
    // capabilities; a case-sensitive checker sees docker's default set.
    let spec = with_key(
        "/process",
        "\"Capabilities\"",
        json!({"bounding": ["CAP_SYS_ADMIN"], "effective": ["CAP_SYS_ADMIN"], "permitted": ["CAP_SYS_ADMIN"]}),
    );
    create_text_refused(&spec, &["capabilities"]);
}

#[test]
fn a_case_variant_namespaces_key_is_refused() {
    // An empty "Namespaces" list after the real one: runc would share every
    // namespace with the host.
    let spec = with_key("/linux", "\"NAMESPACES\"", json!([]));
    create_text_refused(&spec, &["namespaces"]);
}

#[test]
fn a_hooks_key_with_a_kelvin_sign_is_refused() {
    // U+212A KELVIN SIGN folds to "k" in Go's decoder: "hoo\u212As" is hooks.
    let spec = with_key(
        "",
        "\"hoo\\u212as\"",
        json!({"prestart": [{"path": "/bin/sh", "args": ["sh", "-c", "true"]}]}),
    );
    create_text_refused(&spec, &["hoo", "not supported"]);
}

#[test]
fn an_escaped_hooks_key_is_refused() {
    // "\u0068ooks" is "hooks" once unescaped; a byte-level check misses it.
    let spec = with_key(
        "",
        "\"\\u0068ooks\"",
        json!({"prestart": [{"path": "/bin/sh", "args": ["sh", "-c", "true"]}]}),
    );
    create_text_refused(&spec, &["hook"]);
}

#[test]
fn a_duplicate_cwd_in_process_is_refused() {
    // Go keeps the last duplicate: the checked cwd would be the first.
    let spec = with_key("/process", "\"cwd\"", json!("/proc/self/fd/7"));
    create_text_refused(&spec, &["duplicate spec key process.cwd", "/proc"]);
}

#[test]
fn a_duplicate_source_in_a_mount_is_refused() {
    let spec = spec_text(
        |s| {
            s["mounts"].as_array_mut().expect("mounts").push(json!({
                "destination": "/x", "type": "bind", "source": WORKSPACE,
                "options": ["rbind", "ro"], "bt-placeholder": "/etc"
            }))
        },
        KEY,
        "\"source\"",
    );
    create_text_refused(&spec, &["duplicate spec key mounts[", "/etc"]);
}

#[test]
fn a_duplicate_annotation_is_refused() {
    let spec = spec_text(
        |s| s["annotations"] = json!({"bt.a": "1", "bt-placeholder": "2"}),
        KEY,
        "\"bt.a\"",
    );
    create_text_refused(&spec, &["duplicate spec key annotations.bt.a"]);
}

#[test]
fn trailing_json_after_the_spec_is_refused() {
    let spec = format!(
        "{} {{\"hooks\": {{\"prestart\": [{{\"path\": \"/bin/sh\"}}]}}}}",
        spec_with(|_| {})
    );
    create_text_refused(&spec, &["spec", "json", "trailing"]);
}

fn container_with_spec(spec: Option<prost_types::Any>) -> Container {
    let mut c = raw::container(&unique("atk-spec"), "{}");
    c.spec = spec;
    c
}

#[test]
fn a_container_without_a_spec_is_refused() {
    create_refused(container_with_spec(None), &["a spec is required"]);
}

#[test]
fn an_empty_spec_is_refused() {
    // CVE-2024-41110's shape: an authoriser that skips an empty body.
    let spec = prost_types::Any {
        type_url: "types.containerd.io/opencontainers/runtime-spec/1/Spec".to_string(),
        value: vec![],
    };
    create_refused(container_with_spec(Some(spec)), &["spec"]);
}

#[test]
fn an_empty_object_spec_is_refused() {
    create_text_refused("{}", &["spec has no process"]);
}

#[test]
fn a_spec_with_another_type_url_is_refused() {
    let spec = prost_types::Any {
        type_url: "types.containerd.io/opencontainers/runtime-spec/1/Process".to_string(),
        value: spec_with(|_| {}).into_bytes(),
    };
    create_refused(container_with_spec(Some(spec)), &["type"]);
}

#[test]
fn a_spec_without_a_process_is_refused() {
    let spec = spec_with(|s| {
        s.as_object_mut().expect("object").remove("process");
    });
    create_text_refused(&spec, &["spec has no process"]);
}

#[test]
fn a_spec_that_is_not_an_object_is_refused() {
    create_text_refused("null", &["spec"]);
}
