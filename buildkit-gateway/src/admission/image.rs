//! The image policy: which image names the sandbox may use.
//!
//! Every image record that enters the sandbox's namespace (Images.Create and
//! Update, each name a load or a build's import creates), every image a
//! container is created from, and every pull or push the CLI asks about is
//! decided by `berth.images.admit` (`policies/images/admit.rego`) on the
//! facts computed here: the name as docker normalises it, split into
//! registry and repository, and the manifest digest it points to when the
//! request says. The rules themselves are data: `data.images` (the
//! project's default, everything allowed) or, when the sandbox owner gives
//! one, `data.site.images` (`policy_site_data` in the gateway's config).
//!
//! A name is a claim, not provenance: the gateway never sees where the bytes
//! of a loaded image came from. The policy decides which names (and, for a
//! pinned repository, which digests) can exist and be run in the sandbox;
//! the proxy decides which registries bytes can come from.

use super::{decide, facts, Denied, Verdict};
use crate::load::names;
use crate::load::DANGLING_PREFIX;
use crate::policy::input::{ImageFacts, PolicyInput, Request};
use crate::policy::PolicyEngine;
use crate::sandbox::Sandbox;

/// The rule every image decision is reported under.
pub const RULE: &str = "images.admit";

/// Why the sandbox names an image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Create,
    Update,
    Load,
    Run,
    Pull,
    Push,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Create => "create",
            Action::Update => "update",
            Action::Load => "load",
            Action::Run => "run",
            Action::Pull => "pull",
            Action::Push => "push",
        }
    }

    /// The CLI's word for a check it asks about ahead of time.
    pub fn parse_check(word: &str) -> Option<Self> {
        match word {
            "pull" => Some(Action::Pull),
            "push" => Some(Action::Push),
            "run" => Some(Action::Run),
            _ => None,
        }
    }
}

/// The facts of `name` (with `digest`, the manifest it points to, when the
/// request says).
pub fn facts(action: Action, name: &str, digest: Option<&str>) -> ImageFacts {
    let mut f = ImageFacts {
        action: action.as_str().into(),
        name: name.into(),
        valid: false,
        dangling: false,
        reference: String::new(),
        registry: String::new(),
        repository: String::new(),
        repo: String::new(),
        tag: None,
        digest: digest.filter(|d| !d.is_empty()).map(str::to_string),
    };
    if let Some(d) = name.strip_prefix(DANGLING_PREFIX) {
        f.valid = true;
        f.dangling = true;
        f.digest.get_or_insert_with(|| d.to_string());
        return f;
    }
    let Ok(reference) = names::normalize(name) else {
        return f;
    };
    let (rest, in_name) = match reference.split_once('@') {
        Some((rest, d)) => (rest, Some(d)),
        None => (reference.as_str(), None),
    };
    let (repo, tag) = match rest.rfind(':') {
        Some(i) if !rest[i..].contains('/') => (&rest[..i], Some(&rest[i + 1..])),
        _ => (rest, None),
    };
    let (registry, repository) = repo.split_once('/').unwrap_or((repo, ""));
    f.valid = true;
    f.registry = registry.into();
    f.repository = repository.into();
    f.repo = repo.into();
    f.tag = tag.map(str::to_string);
    if f.digest.is_none() {
        f.digest = in_name.map(str::to_string);
    }
    f.reference = reference;
    f
}

/// Asks `berth.images.admit` about `name`.
pub fn admit(
    engine: &PolicyEngine,
    sb: &Sandbox,
    action: Action,
    name: &str,
    digest: Option<&str>,
) -> Result<Verdict, Denied> {
    let f = facts(action, name, digest);
    let input = PolicyInput::new(RULE, name, facts::sandbox(sb), Request::Image(f));
    let shown = if name.is_empty() {
        "image".to_string()
    } else {
        format!("image {name}")
    };
    decide(engine, &input, &shown)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admission::testkit::World;
    use crate::policy::testutil::{tempdir, TempDir};
    use std::path::Path;

    fn engine_with(site: &str) -> (TempDir, PolicyEngine) {
        let dir = tempdir();
        let path = dir.path().join("site.json");
        std::fs::write(&path, site).unwrap();
        let policies = Path::new(env!("CARGO_MANIFEST_DIR")).join("../policies");
        let engine = PolicyEngine::load_with_site(&policies, Some(&path)).unwrap();
        (dir, engine)
    }

    const SITE: &str = r#"{"site": {"images": {
        "allowed": ["docker.io/library/*", "10.201.0.4:5000/berth/*"],
        "refused": ["10.201.0.4:5000/berth/forbidden"],
        "pinned": {"10.201.0.4:5000/berth/pinned": ["sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"]}
    }}}"#;

    #[test]
    fn names_are_split_as_docker_normalises_them() {
        let f = facts(Action::Load, "busybox", None);
        assert!(f.valid && !f.dangling);
        assert_eq!(f.reference, "docker.io/library/busybox:latest");
        assert_eq!(f.repo, "docker.io/library/busybox");
        assert_eq!(f.registry, "docker.io");
        assert_eq!(f.repository, "library/busybox");
        assert_eq!(f.tag.as_deref(), Some("latest"));

        let d = "sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
        let f = facts(Action::Pull, &format!("10.201.0.4:5000/berth/x@{d}"), None);
        assert_eq!(f.registry, "10.201.0.4:5000");
        assert_eq!(f.repository, "berth/x");
        assert_eq!(f.tag, None);
        assert_eq!(f.digest.as_deref(), Some(d));

        let f = facts(Action::Create, "Not A Name", None);
        assert!(!f.valid);
        assert_eq!(f.repo, "");

        let f = facts(Action::Load, &format!("{DANGLING_PREFIX}{d}"), None);
        assert!(f.valid && f.dangling);
        assert_eq!(f.digest.as_deref(), Some(d));
    }

    #[test]
    fn the_default_data_allows_every_valid_name() {
        let w = World::new();
        let engine = crate::admission::testkit::engine();
        let d = "sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
        for name in ["busybox", "10.201.0.5:5000/any/thing:1", "localhost/x"] {
            admit(engine, &w.sb, Action::Load, name, None).unwrap();
            admit(engine, &w.sb, Action::Load, name, Some(d)).unwrap();
        }
        let e = admit(engine, &w.sb, Action::Create, "UPPER case", None).unwrap_err();
        assert_eq!(
            e.message,
            "refusing image UPPER case: \"UPPER case\" is not a valid image reference (rule images.admit)"
        );
    }

    fn other_digest() -> &'static str {
        "sha256:dddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd"
    }

    #[test]
    fn site_data_allows_refuses_and_pins() {
        let w = World::new();
        let (_d, engine) = engine_with(SITE);
        let ok = |name: &str, digest: Option<&str>| {
            admit(&engine, &w.sb, Action::Pull, name, digest)
                .map(|_| ())
                .map_err(|e| e.message)
        };
        ok("busybox:latest", None).unwrap();
        ok("busybox:latest", Some(other_digest())).unwrap();
        ok("10.201.0.4:5000/berth/busybox", None).unwrap();
        assert_eq!(
            ok("10.201.0.5:5000/berth/busybox", None).unwrap_err(),
            "refusing image 10.201.0.5:5000/berth/busybox: registry and repository \
             10.201.0.5:5000/berth/busybox are not allowed by the image policy (rule images.admit)"
        );
        assert_eq!(
            ok("10.201.0.4:5000/berth/forbidden:latest", None).unwrap_err(),
            "refusing image 10.201.0.4:5000/berth/forbidden:latest: repository \
             10.201.0.4:5000/berth/forbidden is refused by the image policy (rule images.admit)"
        );
        let pin = "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
        let other = "sha256:cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc";
        ok("10.201.0.4:5000/berth/pinned:1", Some(pin)).unwrap();
        assert!(ok("10.201.0.4:5000/berth/pinned:1", Some(other))
            .unwrap_err()
            .contains("is pinned: sha256:cccccccccccc is not one of its allowed digests"));
        // Dangling records are unnamed: the name rules do not apply.
        ok(&format!("{DANGLING_PREFIX}{other}"), None).unwrap();
    }
}
