//! `Control.Solve`: decode, decide, harden.
//!
//! A `SolveRequest` is turned into [`SolveFacts`] (what the policy
//! `policies/buildkit/solve.rego` sees), decided, and only then hardened:
//! the gateway replaces the entitlements with its own, forces the network
//! mode, overwrites the proxy build args and gives BuildKit the image
//! policy as its source policy. The hardened request is what
//! goes to BuildKit; the client's is dropped.

use std::collections::BTreeMap;

use berth_proto::buildkit::control::{Exporter, SolveRequest};
use berth_proto::buildkit::sourcepolicy::{MatchType, Policy, PolicyAction, Rule, Selector};
use serde::{Deserialize, Serialize};

use crate::policy::ImagePatterns;
use crate::sandbox::Sandbox;

/// The only frontend the gateway lets through.
pub const DOCKERFILE_FRONTEND: &str = "dockerfile.v0";
/// Frontend option the Dockerfile frontend reads the RUN steps' network
/// mode from.
pub const ATTR_FORCE_NETWORK: &str = "force-network-mode";
/// The network mode the gateway forces, and the one entitlement it grants.
pub const NETWORK_HOST: &str = "host";
pub const ENTITLEMENT_NETWORK_HOST: &str = "network.host";
/// Prefix of build args in the frontend options.
pub const BUILD_ARG: &str = "build-arg:";

/// The facts about one `SolveRequest` that the policy decides on
/// (`input.request` with `kind == "solve"`). Every field is always present.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SolveFacts {
    /// The build's ref (Status is asked with it).
    #[serde(rename = "ref")]
    pub reference: String,
    /// The session the daemon pulls the context from ("" when none).
    pub session: String,
    pub frontend: String,
    /// A raw LLB definition was sent.
    pub definition: bool,
    /// Names of the frontend inputs (raw LLB definitions by name).
    pub frontend_inputs: Vec<String>,
    /// The frontend options as sent (build args, target, named contexts…).
    pub frontend_attrs: BTreeMap<String, String>,
    /// Entitlements the client asked for, sorted.
    pub entitlements: Vec<String>,
    /// `Exporters` (field 13), in order.
    pub exporters: Vec<ExporterFacts>,
    /// `ExporterDeprecated`/`ExporterAttrsDeprecated` (fields 3 and 4), read
    /// by daemons older than BuildKit 0.13; null when both are empty.
    pub exporter_deprecated: Option<ExporterFacts>,
    /// Whether fields 3/4 and 13 describe the same output: 3/4 empty, or 13
    /// empty, or 13 one exporter equal to 3/4 (type and attributes).
    pub exporters_agree: bool,
    pub cache: CacheFacts,
    /// Field 11: leave the build out of the daemon's history.
    pub internal: bool,
    /// Field 12 is set.
    pub source_policy: bool,
    /// Field 15: ask the session for a source policy.
    pub source_policy_session: String,
    /// Field 14: let the session choose exporters.
    pub enable_session_exporter: bool,
    /// The daemon host's platform, `os/arch`; the only one a build may ask for.
    pub native_platform: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExporterFacts {
    #[serde(rename = "type")]
    pub typ: String,
    /// Attribute keys, sorted.
    pub attrs: Vec<String>,
}

/// Cache import and export types, the deprecated registry fields counted as
/// `registry`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CacheFacts {
    pub imports: Vec<String>,
    pub exports: Vec<String>,
}

/// What the gateway knows of the sandbox that shapes a build.
#[derive(Debug, Clone)]
pub struct BuildSandbox {
    /// `HTTP_PROXY`… and lower-case twins, as for containers.
    pub proxy_env: Vec<(String, String)>,
    /// `os/arch` of the daemon host.
    pub native_platform: String,
    /// The image policy's patterns, given to BuildKit as its source policy.
    pub images: ImagePatterns,
}

impl BuildSandbox {
    /// Every image allowed until [`with_images`](Self::with_images) says
    /// otherwise.
    pub fn from_sandbox(sb: &Sandbox) -> Self {
        Self {
            proxy_env: sb.proxy_env.clone(),
            native_platform: native_platform(),
            images: ImagePatterns {
                allowed: vec!["*".into()],
                refused: vec![],
            },
        }
    }

    pub fn with_images(mut self, images: ImagePatterns) -> Self {
        self.images = images;
        self
    }
}

/// BuildKit's source policy for the image patterns: every `docker-image://`
/// source (a `FROM`, a `COPY --from` image) is denied unless an allowed
/// pattern matches it and no refused one does. BuildKit applies the last
/// matching rule, and matches the whole identifier
/// (`docker-image://registry/repository:tag[@digest]`), so each pattern is
/// given bare, with a tag and with a digest.
pub fn image_source_policy(images: &ImagePatterns) -> Policy {
    let rule = |action: PolicyAction, identifier: String| Rule {
        action: action as i32,
        selector: Some(Selector {
            identifier,
            match_type: MatchType::Wildcard as i32,
            constraints: vec![],
        }),
        updates: None,
    };
    let mut rules = vec![rule(PolicyAction::Deny, format!("{DOCKER_IMAGE}*"))];
    for (action, patterns) in [
        (PolicyAction::Allow, &images.allowed),
        (PolicyAction::Deny, &images.refused),
    ] {
        for p in patterns {
            for suffix in ["", ":*", "@*"] {
                rules.push(rule(action, format!("{DOCKER_IMAGE}{p}{suffix}")));
            }
        }
    }
    Policy { version: 1, rules }
}

/// The scheme of registry image sources in BuildKit's identifiers.
const DOCKER_IMAGE: &str = "docker-image://";

/// The OCI platform of this host. The BuildKit daemon runs on the same host
/// as the gateway (in the stack and in production), so it is the daemon's.
pub fn native_platform() -> String {
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        other => other,
    };
    format!("linux/{arch}")
}

/// Decodes a request into the facts the policy sees.
pub fn facts(req: &SolveRequest, sb: &BuildSandbox) -> SolveFacts {
    let exporters: Vec<ExporterFacts> = req.exporters.iter().map(exporter_facts).collect();
    let exporter_deprecated =
        if req.exporter_deprecated.is_empty() && req.exporter_attrs_deprecated.is_empty() {
            None
        } else {
            Some(ExporterFacts {
                typ: req.exporter_deprecated.clone(),
                attrs: req.exporter_attrs_deprecated.keys().cloned().collect(),
            })
        };
    let exporters_agree = match (&exporter_deprecated, req.exporters.as_slice()) {
        (None, _) | (Some(_), []) => true,
        (Some(_), [only]) => {
            only.r#type == req.exporter_deprecated && only.attrs == req.exporter_attrs_deprecated
        }
        (Some(_), _) => false,
    };
    let mut entitlements = req.entitlements.clone();
    entitlements.sort();
    let mut cache = CacheFacts::default();
    if let Some(c) = &req.cache {
        cache.imports = c.imports.iter().map(|e| e.r#type.clone()).collect();
        cache.imports.extend(
            c.import_refs_deprecated
                .iter()
                .map(|_| "registry".to_string()),
        );
        cache.exports = c.exports.iter().map(|e| e.r#type.clone()).collect();
        if !c.export_ref_deprecated.is_empty() || !c.export_attrs_deprecated.is_empty() {
            cache.exports.push("registry".to_string());
        }
    }
    SolveFacts {
        reference: req.r#ref.clone(),
        session: req.session.clone(),
        frontend: req.frontend.clone(),
        definition: req.definition.is_some(),
        frontend_inputs: req.frontend_inputs.keys().cloned().collect(),
        frontend_attrs: req.frontend_attrs.clone(),
        entitlements,
        exporters,
        exporter_deprecated,
        exporters_agree,
        cache,
        internal: req.internal,
        source_policy: req.source_policy.is_some(),
        source_policy_session: req.source_policy_session.clone(),
        enable_session_exporter: req.enable_session_exporter,
        native_platform: sb.native_platform.clone(),
    }
}

fn exporter_facts(e: &Exporter) -> ExporterFacts {
    ExporterFacts {
        typ: e.r#type.clone(),
        attrs: e.attrs.keys().cloned().collect(),
    }
}

/// The request as the gateway forwards it, after the policy allowed it.
///
/// * Entitlements are exactly `network.host`: whatever the client asked for
///   is dropped (the policy refuses any anyway).
/// * `force-network-mode=host`: RUN steps join the daemon's own network
///   namespace. The daemon runs in the sandbox's network namespace, so that
///   is the sandbox's, whose only way out is the proxy. BuildKit's default
///   (a private namespace with its own CNI or bridge network) would route
///   around the sandbox's nftables through the daemon's NAT.
/// * The proxy build args overwrite the client's. BuildKit treats these
///   names as predefined args: they reach RUN steps' environment but never
///   the image config, its history or the cache key.
/// * The source policy is the image policy's ([`image_source_policy`]):
///   a `FROM` of a registry image the sandbox may not use fails in
///   BuildKit before anything is fetched.
pub fn harden(mut req: SolveRequest, sb: &BuildSandbox) -> SolveRequest {
    req.entitlements = vec![ENTITLEMENT_NETWORK_HOST.to_string()];
    req.frontend_attrs
        .insert(ATTR_FORCE_NETWORK.to_string(), NETWORK_HOST.to_string());
    for (name, value) in &sb.proxy_env {
        req.frontend_attrs
            .insert(format!("{BUILD_ARG}{name}"), value.clone());
    }
    // The policy refused any source policy of the client's.
    req.source_policy = Some(image_source_policy(&sb.images));
    req
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_proto::buildkit::control::{CacheOptions, CacheOptionsEntry};
    use berth_proto::buildkit::pb;
    use prost::Message;

    pub(crate) fn sandbox() -> BuildSandbox {
        let mut proxy_env = Vec::new();
        for (name, value) in [
            ("HTTP_PROXY", "http://10.200.0.1:3128"),
            ("HTTPS_PROXY", "http://10.200.0.1:3128"),
            ("ALL_PROXY", "http://10.200.0.1:3128"),
            ("NO_PROXY", "localhost"),
        ] {
            proxy_env.push((name.to_string(), value.to_string()));
            proxy_env.push((name.to_lowercase(), value.to_string()));
        }
        BuildSandbox {
            proxy_env,
            native_platform: "linux/amd64".into(),
            images: ImagePatterns {
                allowed: vec!["*".into()],
                refused: vec![],
            },
        }
    }

    fn oci() -> Exporter {
        Exporter {
            r#type: "oci".into(),
            attrs: [("name".to_string(), "app".to_string())].into(),
        }
    }

    #[test]
    fn exporters_agree_table() {
        let both = |dep: &str, list: Vec<Exporter>| SolveRequest {
            exporter_deprecated: dep.into(),
            exporter_attrs_deprecated: if dep.is_empty() {
                BTreeMap::new()
            } else {
                [("name".to_string(), "app".to_string())].into()
            },
            exporters: list,
            ..Default::default()
        };
        let tar = Exporter {
            r#type: "tar".into(),
            attrs: BTreeMap::new(),
        };
        for (what, req, agree) in [
            ("neither", both("", vec![]), true),
            ("only new", both("", vec![oci(), tar.clone()]), true),
            ("only old", both("oci", vec![]), true),
            ("same", both("oci", vec![oci()]), true),
            ("other type", both("image", vec![oci()]), false),
            (
                "two new, one old",
                both("oci", vec![oci(), tar.clone()]),
                false,
            ),
            (
                "attrs differ",
                both(
                    "oci",
                    vec![Exporter {
                        r#type: "oci".into(),
                        attrs: BTreeMap::new(),
                    }],
                ),
                false,
            ),
        ] {
            assert_eq!(facts(&req, &sandbox()).exporters_agree, agree, "{what}");
        }
    }

    #[test]
    fn deprecated_cache_fields_count_as_registry() {
        let req = SolveRequest {
            cache: Some(CacheOptions {
                import_refs_deprecated: vec!["r/x".into()],
                export_ref_deprecated: "r/y".into(),
                imports: vec![CacheOptionsEntry {
                    r#type: "local".into(),
                    attrs: BTreeMap::new(),
                }],
                ..Default::default()
            }),
            ..Default::default()
        };
        let f = facts(&req, &sandbox());
        assert_eq!(f.cache.imports, vec!["local", "registry"]);
        assert_eq!(f.cache.exports, vec!["registry"]);
    }

    #[test]
    fn harden_replaces_entitlements_network_and_proxy_args() {
        let req = SolveRequest {
            frontend: DOCKERFILE_FRONTEND.into(),
            entitlements: vec!["security.insecure".into()],
            frontend_attrs: [
                ("build-arg:HTTP_PROXY", "http://evil:1"),
                ("build-arg:FOO", "bar"),
                ("force-network-mode", "none"),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
            ..Default::default()
        };
        let out = harden(req, &sandbox());
        assert_eq!(out.entitlements, vec!["network.host"]);
        let attrs = &out.frontend_attrs;
        assert_eq!(attrs["force-network-mode"], "host");
        assert_eq!(attrs["build-arg:HTTP_PROXY"], "http://10.200.0.1:3128");
        assert_eq!(attrs["build-arg:https_proxy"], "http://10.200.0.1:3128");
        assert_eq!(attrs["build-arg:NO_PROXY"], "localhost");
        assert_eq!(attrs["build-arg:all_proxy"], "http://10.200.0.1:3128");
        assert_eq!(attrs["build-arg:FOO"], "bar");
        assert_eq!(attrs.len(), 10);
        assert!(out.source_policy.is_some());
    }

    #[test]
    fn the_source_policy_denies_registry_images_outside_the_patterns() {
        let images = ImagePatterns {
            allowed: vec!["10.201.0.4:5000/berth/*".into()],
            refused: vec!["10.201.0.4:5000/berth/forbidden".into()],
        };
        let p = image_source_policy(&images);
        let shown: Vec<(i32, &str)> = p
            .rules
            .iter()
            .map(|r| (r.action, r.selector.as_ref().unwrap().identifier.as_str()))
            .collect();
        let (allow, deny) = (PolicyAction::Allow as i32, PolicyAction::Deny as i32);
        assert_eq!(
            shown,
            vec![
                (deny, "docker-image://*"),
                (allow, "docker-image://10.201.0.4:5000/berth/*"),
                (allow, "docker-image://10.201.0.4:5000/berth/*:*"),
                (allow, "docker-image://10.201.0.4:5000/berth/*@*"),
                (deny, "docker-image://10.201.0.4:5000/berth/forbidden"),
                (deny, "docker-image://10.201.0.4:5000/berth/forbidden:*"),
                (deny, "docker-image://10.201.0.4:5000/berth/forbidden@*"),
            ]
        );
        assert!(p
            .rules
            .iter()
            .all(|r| r.selector.as_ref().unwrap().match_type == MatchType::Wildcard as i32));
    }

    // What the gateway decodes it re-encodes: a request using every field
    // survives decode → harden → encode with only the hardened fields
    // changed (prost drops undeclared fields, so this catches a field missing
    // from proto/buildkit).
    #[test]
    fn every_field_survives_the_round_trip() {
        let req = SolveRequest {
            r#ref: "r".into(),
            definition: Some(pb::Definition {
                def: vec![vec![1, 2, 3]],
                ..Default::default()
            }),
            exporter_deprecated: "oci".into(),
            exporter_attrs_deprecated: [("name".to_string(), "app".to_string())].into(),
            session: "s".into(),
            frontend: "dockerfile.v0".into(),
            frontend_attrs: [("target".to_string(), "t".to_string())].into(),
            cache: Some(CacheOptions::default()),
            entitlements: vec![],
            frontend_inputs: [("x".to_string(), pb::Definition::default())].into(),
            internal: true,
            source_policy: Some(Default::default()),
            exporters: vec![oci()],
            enable_session_exporter: true,
            source_policy_session: "p".into(),
            compatibility_version: 3,
        };
        let wire = req.encode_to_vec();
        let decoded = SolveRequest::decode(wire.as_slice()).unwrap();
        assert_eq!(decoded, req);
        let mut expected = req.clone();
        expected.entitlements = vec!["network.host".into()];
        expected.source_policy = Some(image_source_policy(&sandbox().images));
        let out = harden(decoded, &sandbox());
        for (k, v) in &out.frontend_attrs {
            if k != "target" {
                expected.frontend_attrs.insert(k.clone(), v.clone());
            }
        }
        assert_eq!(out, expected);
    }
}
