//! Control.Solve admission: the SolveRequest as prost decodes it from the
//! wire, the facts and policy input (`buildkit::solve_input`), the Rego
//! decision and the hardening. The first byte picks the input's form:
//! even, the rest is the protobuf wire bytes; odd, the rest drives
//! `arbitrary` to build a request field by field (frontend attributes,
//! entitlements, exporters, cache, …), which reaches the policy far more
//! often than random protobuf does. Whatever is allowed comes out with
//! exactly the `network.host` entitlement, host networking forced, the
//! proxy build args and the image source policy.
#![no_main]

use std::collections::BTreeMap;

use arbitrary::{Arbitrary, Unstructured};
use berth_gateway::buildkit::{self, solve, BuildSandbox};
use berth_proto::buildkit::control::{CacheOptions, CacheOptionsEntry, Exporter, SolveRequest};
use berth_gateway_fuzz::{engine, sandbox};
use libfuzzer_sys::fuzz_target;
use prost::Message;

#[derive(Arbitrary, Debug)]
struct Shape {
    reference: String,
    session: String,
    frontend: Word,
    frontend_attrs: Vec<(Attr, String)>,
    entitlements: Vec<String>,
    exporters: Vec<(Word, Vec<(String, String)>)>,
    exporter_deprecated: Option<(Word, Vec<(String, String)>)>,
    cache_imports: Vec<Word>,
    cache_exports: Vec<Word>,
    cache_deprecated: Option<(String, Vec<String>)>,
    internal: bool,
    enable_session_exporter: bool,
    source_policy_session: String,
    definition: bool,
    frontend_inputs: Vec<String>,
}

/// A value the policy names, or anything.
#[derive(Arbitrary, Debug)]
enum Word {
    Dockerfile,
    Image,
    Oci,
    Docker,
    Local,
    Tar,
    Registry,
    Inline,
    Gha,
    Other(String),
}

impl Word {
    fn text(&self) -> String {
        match self {
            Word::Dockerfile => "dockerfile.v0".into(),
            Word::Image => "image".into(),
            Word::Oci => "oci".into(),
            Word::Docker => "docker".into(),
            Word::Local => "local".into(),
            Word::Tar => "tar".into(),
            Word::Registry => "registry".into(),
            Word::Inline => "inline".into(),
            Word::Gha => "gha".into(),
            Word::Other(s) => s.clone(),
        }
    }
}

/// A frontend attribute the policy or the hardening looks at, or anything.
#[derive(Arbitrary, Debug)]
enum Attr {
    ForceNetwork,
    BuildArg(String),
    Context(String),
    Platform,
    Other(String),
}

impl Attr {
    fn key(&self) -> String {
        match self {
            Attr::ForceNetwork => solve::ATTR_FORCE_NETWORK.into(),
            Attr::BuildArg(s) => format!("{}{s}", solve::BUILD_ARG),
            Attr::Context(s) => format!("context:{s}"),
            Attr::Platform => "platform".into(),
            Attr::Other(s) => s.clone(),
        }
    }
}

fn attrs(v: &[(String, String)]) -> std::collections::HashMap<String, String> {
    v.iter().cloned().collect()
}

fn build(s: Shape) -> SolveRequest {
    let mut req = SolveRequest {
        r#ref: s.reference,
        session: s.session,
        frontend: s.frontend.text(),
        frontend_attrs: s.frontend_attrs.iter().map(|(k, v)| (k.key(), v.clone())).collect(),
        entitlements: s.entitlements,
        internal: s.internal,
        enable_session_exporter: s.enable_session_exporter,
        source_policy_session: s.source_policy_session,
        definition: s.definition.then(Default::default),
        frontend_inputs: s.frontend_inputs.into_iter().map(|k| (k, Default::default())).collect(),
        exporters: s
            .exporters
            .iter()
            .map(|(t, a)| Exporter {
                r#type: t.text(),
                attrs: attrs(a).into_iter().collect(),
            })
            .collect(),
        ..Default::default()
    };
    if let Some((t, a)) = &s.exporter_deprecated {
        req.exporter_deprecated = t.text();
        req.exporter_attrs_deprecated = attrs(a).into_iter().collect();
    }
    if !s.cache_imports.is_empty() || !s.cache_exports.is_empty() || s.cache_deprecated.is_some() {
        let entry = |w: &Word| CacheOptionsEntry {
            r#type: w.text(),
            attrs: BTreeMap::new().into_iter().collect(),
        };
        let (export_ref, import_refs) = s.cache_deprecated.unwrap_or_default();
        req.cache = Some(CacheOptions {
            imports: s.cache_imports.iter().map(entry).collect(),
            exports: s.cache_exports.iter().map(entry).collect(),
            export_ref_deprecated: export_ref,
            import_refs_deprecated: import_refs,
            ..Default::default()
        });
    }
    req
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let req = if mode & 1 == 0 {
        let Ok(req) = SolveRequest::decode(rest) else {
            return;
        };
        // What prost decoded survives a round trip.
        assert_eq!(SolveRequest::decode(req.encode_to_vec().as_slice()).unwrap(), req);
        req
    } else {
        let Ok(shape) = Shape::arbitrary(&mut Unstructured::new(rest)) else {
            return;
        };
        build(shape)
    };
    let sb = sandbox();
    let build_sb = BuildSandbox::from_sandbox(sb).with_images(engine().image_patterns());
    let Ok((hardened, _)) = buildkit::solve(engine(), sb, &build_sb, req) else {
        return;
    };
    assert_eq!(hardened.entitlements, vec![solve::ENTITLEMENT_NETWORK_HOST.to_string()]);
    assert_eq!(
        hardened.frontend_attrs.get(solve::ATTR_FORCE_NETWORK).map(String::as_str),
        Some(solve::NETWORK_HOST)
    );
    for (name, value) in &sb.proxy_env {
        assert_eq!(
            hardened.frontend_attrs.get(&format!("{}{name}", solve::BUILD_ARG)),
            Some(value)
        );
    }
    assert!(hardened.source_policy.is_some());
});
