//! The Rego policy engine: every `.rego` file and `data.json` under the
//! policy directory, loaded once at start-up with regorus and compiled to
//! regorus's register VM (RVM), one program per deciding rule. Each decision
//! runs on a fresh VM built from the shared, immutable programs and data, so
//! no evaluation state outlives a request.
//!
//! A method `area.verb` is decided by the package `berth.area.verb` when the
//! policies define one, else by `berth.generic`. Each package has
//! `default allow := false`, `deny contains reason if …` and allows only when
//! nothing denies. An evaluation error, an undefined or a non-boolean `allow`
//! is a deny.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use regorus::languages::rego::compiler::Compiler;
use regorus::rvm::{Program, RegoVM};
use regorus::utils::limits::ExecutionTimerConfig;

pub mod input;
pub mod value;

pub use input::PolicyInput;

/// Longest a single policy evaluation may run.
pub const EVAL_TIME_LIMIT: std::time::Duration = std::time::Duration::from_secs(1);

/// Package deciding every method without a package of its own.
pub const GENERIC_PACKAGE: &str = "data.berth.generic";

/// The outcome of one policy evaluation. Error, undefined or non-boolean
/// results are a deny.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub allow: bool,
    /// Why, in user-facing words (empty when allowed).
    pub reasons: Vec<String>,
    /// Internal failure detail for the audit log, never shown to the user.
    pub error: Option<String>,
}

impl Decision {
    fn failed(error: String) -> Self {
        Self {
            allow: false,
            reasons: vec!["policy evaluation failed".into()],
            error: Some(error),
        }
    }
}

/// Globs over `registry/repository` (`policies/images/admit.rego`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImagePatterns {
    pub allowed: Vec<String>,
    pub refused: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error("reading policy directory {0}: {1}")]
    Io(PathBuf, std::io::Error),
    #[error("loading policy {0}: {1}")]
    Parse(PathBuf, String),
    #[error("policy directory {0} has no package berth.generic")]
    NoGeneric(PathBuf),
    #[error("policy package {0} fails to evaluate: {1}")]
    Broken(String, String),
}

/// The compiled `allow` and `deny` rules of one deciding package.
#[derive(Clone)]
struct Package {
    allow: Arc<Program>,
    deny: Arc<Program>,
}

#[derive(Clone)]
pub struct PolicyEngine {
    /// Deciding packages by name, e.g. "data.berth.containers.create".
    packages: BTreeMap<String, Package>,
    /// Every data.json, merged as regorus merged them at load.
    data: regorus::Value,
}

impl std::fmt::Debug for PolicyEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PolicyEngine")
            .field("packages", &self.packages.keys())
            .finish()
    }
}

/// A pathological input must not hold a worker: over the limit is an
/// error, hence a deny.
fn timer() -> ExecutionTimerConfig {
    ExecutionTimerConfig {
        limit: EVAL_TIME_LIMIT,
        check_interval: std::num::NonZeroU32::new(256).expect("non-zero"),
    }
}

impl PolicyEngine {
    /// Loads every `.rego` file and `data.json` under `dir` (recursively, in
    /// name order); fails on a parse error or a package that cannot be
    /// evaluated or compiled, so a broken policy stops the gateway from
    /// starting.
    pub fn load(dir: &Path) -> Result<Self, PolicyError> {
        Self::load_with_site(dir, None)
    }

    /// [`load`](Self::load), then the sandbox owner's data (`site`), a JSON
    /// document whose only key is `site`: the policies read
    /// `data.site.<area>` before their defaults, and the site can neither
    /// replace nor loosen the boundary's own tables.
    pub fn load_with_site(dir: &Path, site: Option<&Path>) -> Result<Self, PolicyError> {
        let mut files = Vec::new();
        collect(dir, &mut files)?;
        files.sort();

        let mut engine = regorus::Engine::new();
        engine.set_execution_timer_config(timer());
        let mut names = BTreeSet::new();
        for path in &files {
            let text =
                std::fs::read_to_string(path).map_err(|e| PolicyError::Io(path.clone(), e))?;
            let parse = |e: anyhow::Error| PolicyError::Parse(path.clone(), e.to_string());
            if path.extension().is_some_and(|e| e == "rego") {
                let name = path.display().to_string();
                names.insert(engine.add_policy(name, text).map_err(parse)?);
            } else {
                engine.add_data_json(&text).map_err(parse)?;
            }
        }
        if !names.contains(GENERIC_PACKAGE) {
            return Err(PolicyError::NoGeneric(dir.to_path_buf()));
        }
        if let Some(path) = site {
            let text =
                std::fs::read_to_string(path).map_err(|e| PolicyError::Io(path.into(), e))?;
            let bad = |e: String| PolicyError::Parse(path.into(), e);
            let doc: serde_json::Value =
                serde_json::from_str(&text).map_err(|e| bad(e.to_string()))?;
            let keys: Vec<&String> = doc
                .as_object()
                .map(|o| o.keys().collect())
                .unwrap_or_default();
            if keys != [&"site".to_string()] {
                return Err(bad(
                    "site data must be a JSON object whose only key is \"site\"".into(),
                ));
            }
            engine
                .add_data_json(&text)
                .map_err(|e| bad(e.to_string()))?;
        }
        // Evaluate each package once without input: a reference to a missing
        // function or a type error surfaces here rather than on a request.
        // Then compile each deciding rule on its own, so a program holds
        // exactly what that rule needs.
        let mut packages = BTreeMap::new();
        for name in names.iter().filter(|p| !p.starts_with("data.berth.lib")) {
            let broken = |e: String| PolicyError::Broken(name.clone(), e);
            let mut compile = |rule: &str| {
                let path = format!("{name}.{rule}");
                engine
                    .eval_rule(path.clone())
                    .map_err(|e| broken(e.to_string()))?;
                let compiled = engine
                    .compile_with_entrypoint(&path.as_str().into())
                    .map_err(|e| broken(e.to_string()))?;
                Compiler::compile_from_policy(&compiled, &[&path])
                    .map_err(|e| broken(e.to_string()))
            };
            let package = Package {
                allow: compile("allow")?,
                deny: compile("deny")?,
            };
            packages.insert(name.clone(), package);
        }
        let data = engine.get_data();
        Ok(Self { packages, data })
    }

    /// The image patterns in force (`data.site.images`, else the default
    /// `data.images`): what `berth.images.admit` matches names against and
    /// what becomes BuildKit's source policy for `FROM`.
    pub fn image_patterns(&self) -> ImagePatterns {
        let site = &self.data["site"]["images"];
        let rules = if matches!(site, regorus::Value::Undefined) {
            &self.data["images"]
        } else {
            site
        };
        let list = |key: &str| -> Vec<String> {
            rules[key]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|v| v.as_string().ok().map(|s| s.to_string()))
                        .collect()
                })
                .unwrap_or_default()
        };
        ImagePatterns {
            allowed: list("allowed"),
            refused: list("refused"),
        }
    }

    /// The package deciding `method`.
    pub fn package_for(&self, method: &str) -> String {
        let own = format!("data.berth.{method}");
        let valid = !method.is_empty()
            && method
                .split('.')
                .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'));
        if valid && !own.starts_with("data.berth.lib") && self.packages.contains_key(&own) {
            own
        } else {
            GENERIC_PACKAGE.to_string()
        }
    }

    /// Runs one compiled rule on a fresh VM.
    fn run(
        &self,
        program: &Arc<Program>,
        input: &regorus::Value,
    ) -> Result<regorus::Value, String> {
        let mut vm = RegoVM::new();
        vm.set_execution_timer_config(Some(timer()));
        vm.load_program(program.clone());
        vm.set_data(self.data.clone()).map_err(|e| e.to_string())?;
        vm.set_input(input.clone());
        vm.execute_entry_point_by_index(0)
            .map_err(|e| e.to_string())
    }

    pub fn decide(&self, input: &PolicyInput) -> Decision {
        let name = self.package_for(&input.method);
        let Some(package) = self.packages.get(&name) else {
            return Decision::failed(format!("no compiled package {name}"));
        };
        let value = match value::to_value(input) {
            Ok(v) => v,
            Err(e) => return Decision::failed(format!("encoding input: {e}")),
        };

        let allow = match self.run(&package.allow, &value) {
            Ok(v) => v,
            Err(e) => return Decision::failed(format!("{name}.allow: {e}")),
        };
        if allow == regorus::Value::Bool(true) {
            return Decision {
                allow: true,
                reasons: vec![],
                error: None,
            };
        }
        let error = match allow {
            regorus::Value::Bool(false) => None,
            other => Some(format!("{name}.allow is {other:?}, not a boolean")),
        };
        let mut reasons = match self.run(&package.deny, &value) {
            Ok(regorus::Value::Set(set)) => set
                .iter()
                .filter_map(|r| r.as_string().ok().map(|s| s.to_string()))
                .collect(),
            Ok(regorus::Value::Undefined) => vec![],
            Ok(other) => return Decision::failed(format!("{name}.deny is {other:?}, not a set")),
            Err(e) => return Decision::failed(format!("{name}.deny: {e}")),
        };
        if let Some(error) = error {
            return Decision::failed(error);
        }
        if reasons.is_empty() {
            reasons.push(format!("no policy rule allows {}", input.method));
        }
        Decision {
            allow: false,
            reasons,
            error: None,
        }
    }
}

fn collect(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), PolicyError> {
    let entries = std::fs::read_dir(dir).map_err(|e| PolicyError::Io(dir.to_path_buf(), e))?;
    for entry in entries {
        let entry = entry.map_err(|e| PolicyError::Io(dir.to_path_buf(), e))?;
        let path = entry.path();
        let kind = entry
            .file_type()
            .map_err(|e| PolicyError::Io(path.clone(), e))?;
        if kind.is_dir() {
            collect(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "rego")
            || path.file_name().is_some_and(|n| n == "data.json")
        {
            out.push(path);
        }
    }
    Ok(())
}

#[cfg(test)]
mod golden;
#[cfg(test)]
pub(crate) mod testutil;

#[cfg(test)]
mod tests {
    use super::testutil::tempdir;
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) {
        let path = dir.join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    fn generic_input(method: &str) -> PolicyInput {
        PolicyInput::new(
            method,
            "x",
            input::SandboxFacts {
                namespace: "ns".into(),
                snapshotter: "overlayfs".into(),
                netns_path: "/run/netns/ns".into(),
                volume_roots: vec![],
            },
            input::Request::Generic,
        )
    }

    const GENERIC: &str = r#"package berth.generic
default allow := false
allow if count(deny) == 0
deny contains "namespace writes are not allowed" if input.method == "namespaces.create"
"#;

    #[test]
    fn load_fails_on_parse_error() {
        let dir = tempdir();
        write(dir.path(), "generic.rego", GENERIC);
        write(dir.path(), "broken/x.rego", "package berth.x\nallow if {");
        let err = PolicyEngine::load(dir.path()).unwrap_err();
        assert!(matches!(err, PolicyError::Parse(..)), "{err}");
    }

    #[test]
    fn load_fails_on_bad_data_json() {
        let dir = tempdir();
        write(dir.path(), "generic.rego", GENERIC);
        write(dir.path(), "data.json", "{");
        assert!(matches!(
            PolicyEngine::load(dir.path()),
            Err(PolicyError::Parse(..))
        ));
    }

    #[test]
    fn load_requires_the_generic_package() {
        let dir = tempdir();
        write(
            dir.path(),
            "a.rego",
            "package berth.a.b\ndefault allow := false\n",
        );
        assert!(matches!(
            PolicyEngine::load(dir.path()),
            Err(PolicyError::NoGeneric(_))
        ));
    }

    #[test]
    fn load_fails_on_a_package_that_cannot_evaluate() {
        let dir = tempdir();
        write(dir.path(), "generic.rego", GENERIC);
        write(
            dir.path(),
            "x.rego",
            "package berth.x.y\nallow := no_such_function(1)\ndeny := set()\n",
        );
        assert!(PolicyEngine::load(dir.path()).is_err());
    }

    #[test]
    fn decisions_default_to_deny() {
        let dir = tempdir();
        write(dir.path(), "generic.rego", GENERIC);
        // allow is a string, not a boolean.
        write(
            dir.path(),
            "s.rego",
            "package berth.s.string\nallow := \"yes\"\ndeny := set()\n",
        );
        // no allow rule matches and nothing denies.
        write(
            dir.path(),
            "u.rego",
            "package berth.u.undefined\ndefault allow := false\ndeny := set()\n",
        );
        // evaluation error at request time (division by zero on input).
        write(
            dir.path(),
            "e.rego",
            "package berth.e.error\ndefault allow := false\nallow if 1 / count(input.object) > 100\ndeny := set()\n",
        );
        let engine = PolicyEngine::load(dir.path()).unwrap();

        let d = engine.decide(&generic_input("images.list"));
        assert_eq!(
            d,
            Decision {
                allow: true,
                reasons: vec![],
                error: None
            }
        );

        let d = engine.decide(&generic_input("namespaces.create"));
        assert!(!d.allow);
        assert_eq!(
            d.reasons,
            vec!["namespace writes are not allowed".to_string()]
        );

        let d = engine.decide(&generic_input("s.string"));
        assert!(!d.allow && d.error.is_some(), "{d:?}");

        let d = engine.decide(&generic_input("u.undefined"));
        assert_eq!(
            d.reasons,
            vec!["no policy rule allows u.undefined".to_string()]
        );

        let mut input = generic_input("e.error");
        input.object = String::new();
        let d = engine.decide(&input);
        assert!(!d.allow, "{d:?}");
    }

    #[test]
    fn the_engine_can_be_shared_between_tasks() {
        fn shared<T: Send + Sync>() {}
        shared::<PolicyEngine>();
    }

    #[test]
    fn methods_route_to_their_own_package_or_generic() {
        let dir = tempdir();
        write(dir.path(), "generic.rego", GENERIC);
        write(
            dir.path(),
            "c.rego",
            "package berth.containers.create\ndefault allow := false\ndeny := set()\n",
        );
        write(dir.path(), "l.rego", "package berth.lib.helpers\nx := 1\n");
        let engine = PolicyEngine::load(dir.path()).unwrap();
        assert_eq!(
            engine.package_for("containers.create"),
            "data.berth.containers.create"
        );
        assert_eq!(engine.package_for("containers.delete"), GENERIC_PACKAGE);
        assert_eq!(engine.package_for("lib.helpers"), GENERIC_PACKAGE);
        assert_eq!(
            engine.package_for("containers[\"create\"]"),
            GENERIC_PACKAGE
        );
        assert_eq!(engine.package_for(""), GENERIC_PACKAGE);
    }
}
