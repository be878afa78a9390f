//! Strict reading of OCI runtime-spec JSON sent by a client.
//!
//! runc decodes `config.json` with Go's encoding/json, which matches keys
//! case-insensitively (even with Unicode folding: `"hoo\u212As"` is `hooks`)
//! and keeps the last of duplicate keys. serde_json keeps the last duplicate
//! too and oci-spec ignores keys it does not model. A document the gateway
//! checked could therefore mean something else to runc. So before the typed
//! parse every object is walked against a table of the keys berth supports:
//! an unknown, duplicate or case-variant key refuses the whole document. The
//! table is a subset of what oci-spec models, so nothing accepted here is
//! dropped by the typed parse; keys for features berth never forwards
//! (netDevices, intelRdt, personality, scheduler, Windows/Solaris/VM parts…)
//! are simply not in it.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

/// A JSON document exactly as written: objects keep every key in order,
/// duplicates included.
#[derive(Debug, Clone, PartialEq)]
pub enum Raw {
    Null,
    Bool(bool),
    Number(serde_json::Number),
    String(String),
    Array(Vec<Raw>),
    Object(Vec<(String, Raw)>),
}

impl<'de> Deserialize<'de> for Raw {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(RawVisitor)
    }
}

struct RawVisitor;

impl<'de> Visitor<'de> for RawVisitor {
    type Value = Raw;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_unit<E>(self) -> Result<Raw, E> {
        Ok(Raw::Null)
    }
    fn visit_none<E>(self) -> Result<Raw, E> {
        Ok(Raw::Null)
    }
    fn visit_bool<E>(self, v: bool) -> Result<Raw, E> {
        Ok(Raw::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Raw, E> {
        Ok(Raw::Number(v.into()))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Raw, E> {
        Ok(Raw::Number(v.into()))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Raw, E> {
        serde_json::Number::from_f64(v)
            .map(Raw::Number)
            .ok_or_else(|| E::custom("non-finite number"))
    }
    fn visit_str<E>(self, v: &str) -> Result<Raw, E> {
        Ok(Raw::String(v.to_string()))
    }
    fn visit_string<E>(self, v: String) -> Result<Raw, E> {
        Ok(Raw::String(v))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Raw, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Raw>()? {
            items.push(item);
        }
        Ok(Raw::Array(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Raw, A::Error> {
        let mut pairs = Vec::new();
        while let Some(key) = map.next_key::<String>()? {
            let value = map.next_value::<Raw>()?;
            pairs.push((key, value));
        }
        Ok(Raw::Object(pairs))
    }
}

/// What a position in the document may hold.
pub enum Shape {
    /// A string, number, boolean or null; the typed parse checks which.
    Scalar,
    /// An object with exactly these keys (each optional).
    Object(&'static [(&'static str, &'static Shape)]),
    /// An object with free-form keys (annotations, sysctl…), values of one shape.
    Map(&'static Shape),
    /// An array of one shape.
    List(&'static Shape),
}

use Shape::{List, Map, Object, Scalar};

static SCALARS: Shape = List(&Scalar);

// process
static CONSOLE_SIZE: Shape = Object(&[("height", &Scalar), ("width", &Scalar)]);
static USER: Shape = Object(&[
    ("uid", &Scalar),
    ("gid", &Scalar),
    ("umask", &Scalar),
    ("additionalGids", &SCALARS),
]);
static CAPABILITIES: Shape = Object(&[
    ("bounding", &SCALARS),
    ("effective", &SCALARS),
    ("inheritable", &SCALARS),
    ("permitted", &SCALARS),
    ("ambient", &SCALARS),
]);
static RLIMIT: Shape = Object(&[("type", &Scalar), ("hard", &Scalar), ("soft", &Scalar)]);
static RLIMITS: Shape = List(&RLIMIT);

/// `process` of a spec, and the whole document of an exec's process spec.
pub static PROCESS: Shape = Object(&[
    ("terminal", &Scalar),
    ("consoleSize", &CONSOLE_SIZE),
    ("user", &USER),
    ("args", &SCALARS),
    ("env", &SCALARS),
    ("cwd", &Scalar),
    ("capabilities", &CAPABILITIES),
    ("rlimits", &RLIMITS),
    ("noNewPrivileges", &Scalar),
    ("apparmorProfile", &Scalar),
    ("oomScoreAdj", &Scalar),
    ("selinuxLabel", &Scalar),
]);

static ROOT: Shape = Object(&[("path", &Scalar), ("readonly", &Scalar)]);
static MOUNT: Shape = Object(&[
    ("destination", &Scalar),
    ("type", &Scalar),
    ("source", &Scalar),
    ("options", &SCALARS),
]);
static MOUNTS: Shape = List(&MOUNT);

static HOOK: Shape = Object(&[
    ("path", &Scalar),
    ("args", &SCALARS),
    ("env", &SCALARS),
    ("timeout", &Scalar),
]);
static HOOK_LIST: Shape = List(&HOOK);
static HOOKS: Shape = Object(&[
    ("prestart", &HOOK_LIST),
    ("createRuntime", &HOOK_LIST),
    ("createContainer", &HOOK_LIST),
    ("startContainer", &HOOK_LIST),
    ("poststart", &HOOK_LIST),
    ("poststop", &HOOK_LIST),
]);

// linux
static NAMESPACE: Shape = Object(&[("type", &Scalar), ("path", &Scalar)]);
static ID_MAPPING: Shape = Object(&[
    ("containerID", &Scalar),
    ("hostID", &Scalar),
    ("size", &Scalar),
]);
static DEVICE: Shape = Object(&[
    ("type", &Scalar),
    ("path", &Scalar),
    ("major", &Scalar),
    ("minor", &Scalar),
    ("fileMode", &Scalar),
    ("uid", &Scalar),
    ("gid", &Scalar),
]);
static DEVICE_RULE: Shape = Object(&[
    ("allow", &Scalar),
    ("type", &Scalar),
    ("major", &Scalar),
    ("minor", &Scalar),
    ("access", &Scalar),
]);
static MEMORY: Shape = Object(&[
    ("limit", &Scalar),
    ("reservation", &Scalar),
    ("swap", &Scalar),
    ("kernel", &Scalar),
    ("kernelTCP", &Scalar),
    ("swappiness", &Scalar),
    ("disableOOMKiller", &Scalar),
    ("useHierarchy", &Scalar),
    ("checkBeforeUpdate", &Scalar),
]);
static CPU: Shape = Object(&[
    ("shares", &Scalar),
    ("quota", &Scalar),
    ("burst", &Scalar),
    ("period", &Scalar),
    ("realtimeRuntime", &Scalar),
    ("realtimePeriod", &Scalar),
    ("cpus", &Scalar),
    ("mems", &Scalar),
    ("idle", &Scalar),
]);
static PIDS: Shape = Object(&[("limit", &Scalar)]);
static WEIGHT_DEVICE: Shape = Object(&[
    ("major", &Scalar),
    ("minor", &Scalar),
    ("weight", &Scalar),
    ("leafWeight", &Scalar),
]);
static THROTTLE_DEVICE: Shape =
    Object(&[("major", &Scalar), ("minor", &Scalar), ("rate", &Scalar)]);
static THROTTLE_DEVICES: Shape = List(&THROTTLE_DEVICE);
static BLOCK_IO: Shape = Object(&[
    ("weight", &Scalar),
    ("leafWeight", &Scalar),
    ("weightDevice", &List(&WEIGHT_DEVICE)),
    ("throttleReadBpsDevice", &THROTTLE_DEVICES),
    ("throttleWriteBpsDevice", &THROTTLE_DEVICES),
    ("throttleReadIOPSDevice", &THROTTLE_DEVICES),
    ("throttleWriteIOPSDevice", &THROTTLE_DEVICES),
]);
static HUGEPAGE_LIMIT: Shape = Object(&[("pageSize", &Scalar), ("limit", &Scalar)]);
static RESOURCES: Shape = Object(&[
    ("devices", &List(&DEVICE_RULE)),
    ("memory", &MEMORY),
    ("cpu", &CPU),
    ("pids", &PIDS),
    ("blockIO", &BLOCK_IO),
    ("hugepageLimits", &List(&HUGEPAGE_LIMIT)),
    ("unified", &Map(&Scalar)),
]);
static SECCOMP_ARG: Shape = Object(&[
    ("index", &Scalar),
    ("value", &Scalar),
    ("valueTwo", &Scalar),
    ("op", &Scalar),
]);
static SYSCALL: Shape = Object(&[
    ("names", &SCALARS),
    ("action", &Scalar),
    ("errnoRet", &Scalar),
    ("args", &List(&SECCOMP_ARG)),
]);
static SECCOMP: Shape = Object(&[
    ("defaultAction", &Scalar),
    ("defaultErrnoRet", &Scalar),
    ("architectures", &SCALARS),
    ("flags", &SCALARS),
    ("listenerPath", &Scalar),
    ("listenerMetadata", &Scalar),
    ("syscalls", &List(&SYSCALL)),
]);
static LINUX: Shape = Object(&[
    ("namespaces", &List(&NAMESPACE)),
    ("uidMappings", &List(&ID_MAPPING)),
    ("gidMappings", &List(&ID_MAPPING)),
    ("devices", &List(&DEVICE)),
    ("cgroupsPath", &Scalar),
    ("rootfsPropagation", &Scalar),
    ("resources", &RESOURCES),
    ("sysctl", &Map(&Scalar)),
    ("seccomp", &SECCOMP),
    ("maskedPaths", &SCALARS),
    ("readonlyPaths", &SCALARS),
    ("mountLabel", &Scalar),
]);

/// The root of a container's spec.
pub static SPEC: Shape = Object(&[
    ("ociVersion", &Scalar),
    ("process", &PROCESS),
    ("root", &ROOT),
    ("hostname", &Scalar),
    ("domainname", &Scalar),
    ("mounts", &MOUNTS),
    ("hooks", &HOOKS),
    ("annotations", &Map(&Scalar)),
    ("linux", &LINUX),
]);

/// Why a document was refused, worded for the user.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StrictError {
    #[error("spec is not valid JSON: {0}")]
    Syntax(String),
    #[error("duplicate spec key {0}")]
    Duplicate(String),
    #[error("spec key {0} is not supported (keys are case-sensitive: did you mean {1}?)")]
    CaseVariant(String, String),
    #[error("spec key {0} is not supported")]
    Unknown(String),
    #[error("spec key {0} must be {1}")]
    WrongKind(String, &'static str),
}

/// Parses `bytes` and checks every key against `shape`.
pub fn check(bytes: &[u8], shape: &Shape) -> Result<Raw, StrictError> {
    let raw: Raw = serde_json::from_slice(bytes).map_err(|e| StrictError::Syntax(e.to_string()))?;
    walk(&raw, shape, "")?;
    Ok(raw)
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

fn walk(value: &Raw, shape: &Shape, path: &str) -> Result<(), StrictError> {
    let here = || {
        if path.is_empty() {
            "(root)".to_string()
        } else {
            path.to_string()
        }
    };
    match (shape, value) {
        // null is an absent value to Go and to serde's Option alike.
        (_, Raw::Null) => Ok(()),
        (Scalar, Raw::Array(_) | Raw::Object(_)) => {
            Err(StrictError::WrongKind(here(), "a plain value"))
        }
        (Scalar, _) => Ok(()),
        (List(item), Raw::Array(items)) => {
            for (i, v) in items.iter().enumerate() {
                walk(v, item, &format!("{path}[{i}]"))?;
            }
            Ok(())
        }
        (List(_), _) => Err(StrictError::WrongKind(here(), "a list")),
        (Object(fields), Raw::Object(pairs)) => {
            no_duplicates(pairs, path)?;
            for (key, v) in pairs {
                let Some((_, sub)) = fields.iter().find(|(k, _)| k == key) else {
                    let known = fields.iter().find(|(k, _)| k.eq_ignore_ascii_case(key));
                    return Err(match known {
                        Some((k, _)) => StrictError::CaseVariant(join(path, key), join(path, k)),
                        None => StrictError::Unknown(join(path, key)),
                    });
                };
                walk(v, sub, &join(path, key))?;
            }
            Ok(())
        }
        (Map(item), Raw::Object(pairs)) => {
            no_duplicates(pairs, path)?;
            for (key, v) in pairs {
                walk(v, item, &join(path, key))?;
            }
            Ok(())
        }
        (Object(_) | Map(_), _) => Err(StrictError::WrongKind(here(), "an object")),
    }
}

fn no_duplicates(pairs: &[(String, Raw)], path: &str) -> Result<(), StrictError> {
    for (i, (key, _)) in pairs.iter().enumerate() {
        if pairs[..i].iter().any(|(k, _)| k == key) {
            return Err(StrictError::Duplicate(join(path, key)));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(json: &str) -> Result<Raw, StrictError> {
        check(json.as_bytes(), &SPEC)
    }

    #[test]
    fn accepts_known_keys_at_every_depth() {
        let doc = r#"{"ociVersion":"1.1.0","process":{"user":{"uid":0,"gid":0},"cwd":"/",
            "capabilities":{"bounding":["CAP_CHOWN"]}},
            "linux":{"resources":{"memory":{"limit":1},"unified":{"memory.high":"1"}},
            "seccomp":{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["read"],"action":"SCMP_ACT_ALLOW","args":[{"index":0,"value":1,"op":"SCMP_CMP_EQ"}]}]},
            "sysctl":{"any.key":"1"}},"annotations":{"a":"b"}}"#;
        spec(doc).unwrap();
    }

    #[test]
    fn refuses_bad_documents() {
        let table = [
            (
                r#"{"hooks":{},"hooks":{}}"#,
                StrictError::Duplicate("hooks".into()),
            ),
            (
                r#"{"process":{"args":["a"],"args":["b"]}}"#,
                StrictError::Duplicate("process.args".into()),
            ),
            (
                r#"{"annotations":{"k":"1","k":"2"}}"#,
                StrictError::Duplicate("annotations.k".into()),
            ),
            (
                r#"{"Hooks":{}}"#,
                StrictError::CaseVariant("Hooks".into(), "hooks".into()),
            ),
            (
                r#"{"linux":{"Seccomp":null}}"#,
                StrictError::CaseVariant("linux.Seccomp".into(), "linux.seccomp".into()),
            ),
            (
                r#"{"process":{"capabilities":{"Bounding":[]}}}"#,
                StrictError::CaseVariant(
                    "process.capabilities.Bounding".into(),
                    "process.capabilities.bounding".into(),
                ),
            ),
            // Go folds U+212A KELVIN SIGN to k: an exact-match table refuses it.
            (
                "{\"hoo\u{212A}s\":{}}",
                StrictError::Unknown("hoo\u{212A}s".into()),
            ),
            (r#"{"hooks2":{}}"#, StrictError::Unknown("hooks2".into())),
            (
                r#"{"linux":{"netDevices":{}}}"#,
                StrictError::Unknown("linux.netDevices".into()),
            ),
            (
                r#"{"mounts":[{"destination":"/a"},{"destination":"/b","uidMappings":[]}]}"#,
                StrictError::Unknown("mounts[1].uidMappings".into()),
            ),
            (
                r#"{"process":{"scheduler":{"policy":"SCHED_FIFO"}}}"#,
                StrictError::Unknown("process.scheduler".into()),
            ),
            (r#"{"windows":{}}"#, StrictError::Unknown("windows".into())),
            (
                r#"{"process":{"cwd":{"x":1}}}"#,
                StrictError::WrongKind("process.cwd".into(), "a plain value"),
            ),
            (
                r#"{"mounts":{"destination":"/"}}"#,
                StrictError::WrongKind("mounts".into(), "a list"),
            ),
            (
                r#"{"linux":[]}"#,
                StrictError::WrongKind("linux".into(), "an object"),
            ),
            (
                r#"[]"#,
                StrictError::WrongKind("(root)".into(), "an object"),
            ),
        ];
        for (doc, want) in table {
            assert_eq!(spec(doc).unwrap_err(), want, "{doc}");
        }
    }

    #[test]
    fn escaped_keys_are_compared_after_unescaping() {
        // "\u0048ooks" is "Hooks": refused as a case variant, as Go would honour it.
        let err = spec(r#"{"\u0048ooks":{}}"#).unwrap_err();
        assert_eq!(
            err,
            StrictError::CaseVariant("Hooks".into(), "hooks".into())
        );
    }

    #[test]
    fn syntax_errors_are_refused() {
        assert!(matches!(spec("{"), Err(StrictError::Syntax(_))));
        assert!(matches!(spec(r#"{"a":1} x"#), Err(StrictError::Syntax(_))));
    }
}
