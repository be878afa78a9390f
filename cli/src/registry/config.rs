//! docker's client config file, `$DOCKER_CONFIG/config.json` (default
//! `~/.docker/config.json`): credentials in `auths`, keyed by registry, as
//! `{"auth": base64("user:password")}`. Other keys are kept as they are.

use std::path::{Path, PathBuf};

use base64::Engine as _;
use serde_json::{Map, Value};

use super::endpoint::Registry;
use crate::env;

const CONFIG_FILE: &str = "config.json";

/// `$DOCKER_CONFIG`, else `$HOME/.docker`.
pub fn docker_config_dir() -> Option<PathBuf> {
    if let Some(d) = std::env::var_os(env::DOCKER_CONFIG).filter(|d| !d.is_empty()) {
        return Some(PathBuf::from(d));
    }
    std::env::var_os(env::HOME)
        .filter(|h| !h.is_empty())
        .map(|h| PathBuf::from(h).join(".docker"))
}

/// A user name and password (or token) for one registry.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Credentials({}, ***)", self.username)
    }
}

impl Credentials {
    /// The `auth` value: base64 of `user:password`.
    pub fn encoded(&self) -> String {
        base64::engine::general_purpose::STANDARD
            .encode(format!("{}:{}", self.username, self.password))
    }
}

/// The config file as read, to be changed and written back.
#[derive(Debug)]
pub struct ConfigFile {
    path: PathBuf,
    root: Map<String, Value>,
}

impl ConfigFile {
    /// Reads the user's config; a missing file is an empty config.
    pub fn load() -> Result<Self, String> {
        let dir = docker_config_dir().ok_or_else(|| {
            "cannot find the docker config directory: HOME is not set".to_string()
        })?;
        Self::load_from(&dir.join(CONFIG_FILE))
    }

    pub fn load_from(path: &Path) -> Result<Self, String> {
        let root = match std::fs::read(path) {
            Ok(bytes) if bytes.iter().all(u8::is_ascii_whitespace) => Map::new(),
            Ok(bytes) => match serde_json::from_slice::<Value>(&bytes) {
                Ok(Value::Object(m)) => m,
                Ok(_) | Err(_) => {
                    return Err(format!(
                        "loading config file {}: not a JSON object",
                        path.display()
                    ))
                }
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Map::new(),
            Err(e) => return Err(format!("loading config file {}: {e}", path.display())),
        };
        Ok(Self {
            path: path.to_path_buf(),
            root,
        })
    }

    /// The stored credentials for `registry`, matching keys as docker does
    /// (a key may carry a scheme or path; Docker Hub has several spellings).
    pub fn credentials(&self, registry: &Registry) -> Option<Credentials> {
        let auths = self.root.get("auths")?.as_object()?;
        let want = registry.auth_key();
        let entry = auths.get(&want).or_else(|| {
            auths
                .iter()
                .find(|(k, _)| super::endpoint::server_arg(k).domain == registry.domain)
                .map(|(_, v)| v)
        })?;
        decode_entry(entry)
    }

    /// Stores credentials under the registry's key.
    pub fn set_credentials(&mut self, registry: &Registry, c: &Credentials) {
        let auths = self
            .root
            .entry("auths")
            .or_insert_with(|| Value::Object(Map::new()));
        if !auths.is_object() {
            *auths = Value::Object(Map::new());
        }
        let auths = auths.as_object_mut().expect("made an object");
        let mut entry = Map::new();
        entry.insert("auth".into(), Value::String(c.encoded()));
        auths.insert(registry.auth_key(), Value::Object(entry));
    }

    /// Removes the registry's credentials; false when there were none.
    pub fn remove_credentials(&mut self, registry: &Registry) -> bool {
        let Some(auths) = self.root.get_mut("auths").and_then(Value::as_object_mut) else {
            return false;
        };
        let keys: Vec<String> = auths
            .keys()
            .filter(|k| {
                **k == registry.auth_key()
                    || super::endpoint::server_arg(k).domain == registry.domain
            })
            .cloned()
            .collect();
        for k in &keys {
            auths.remove(k);
        }
        !keys.is_empty()
    }

    /// Writes the file atomically, readable by its owner only (it holds
    /// passwords), as docker does.
    pub fn save(&self) -> Result<(), String> {
        use std::io::Write as _;
        use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
        let fail = |e: std::io::Error| format!("saving {}: {e}", self.path.display());
        let dir = self.path.parent().unwrap_or(Path::new("."));
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(fail)?;
        let tmp = dir.join(format!(".{CONFIG_FILE}.{}", std::process::id()));
        let text = serde_json::to_string_pretty(&Value::Object(self.root.clone()))
            .map_err(|e| format!("encoding {}: {e}", self.path.display()))?;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(fail)?;
        f.write_all(text.as_bytes()).map_err(fail)?;
        f.write_all(b"\n").map_err(fail)?;
        f.sync_all().map_err(fail)?;
        std::fs::rename(&tmp, &self.path).map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            fail(e)
        })
    }
}

fn decode_entry(entry: &Value) -> Option<Credentials> {
    if let Some(auth) = entry
        .get("auth")
        .and_then(Value::as_str)
        .filter(|a| !a.is_empty())
    {
        let raw = base64::engine::general_purpose::STANDARD
            .decode(auth.trim())
            .ok()?;
        let text = String::from_utf8(raw).ok()?;
        let (u, p) = text.split_once(':')?;
        return Some(Credentials {
            username: u.to_string(),
            password: p.trim_end_matches('\0').to_string(),
        });
    }
    let u = entry.get("username")?.as_str()?;
    let p = entry.get("password")?.as_str()?;
    Some(Credentials {
        username: u.to_string(),
        password: p.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::endpoint::server_arg;

    #[test]
    fn round_trip_keeps_other_keys() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        std::fs::write(
            &path,
            r#"{"auths":{"other:1":{"auth":"eDp5"}},"psFormat":"table {{.ID}}"}"#,
        )
        .unwrap();
        let reg = server_arg("10.201.0.4:5001");
        let mut c = ConfigFile::load_from(&path).unwrap();
        assert_eq!(c.credentials(&reg), None);
        let creds = Credentials {
            username: "alice".into(),
            password: "s3:cret".into(),
        };
        c.set_credentials(&reg, &creds);
        c.save().unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(
            v["auths"]["10.201.0.4:5001"]["auth"],
            "YWxpY2U6czM6Y3JldA=="
        );
        assert_eq!(v["psFormat"], "table {{.ID}}");
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);

        let mut c = ConfigFile::load_from(&path).unwrap();
        assert_eq!(c.credentials(&reg), Some(creds));
        assert_eq!(c.credentials(&server_arg("other:1")).unwrap().username, "x");
        assert!(c.remove_credentials(&reg));
        assert!(!c.remove_credentials(&reg));
        assert_eq!(c.credentials(&reg), None);
    }

    #[test]
    fn keys_with_scheme_and_hub_spellings_match() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        std::fs::write(
            &path,
            r#"{"auths":{"https://reg.example:5000/v2/":{"auth":"YTpi"},"https://index.docker.io/v1/":{"username":"u","password":"p"}}}"#,
        )
        .unwrap();
        let c = ConfigFile::load_from(&path).unwrap();
        assert_eq!(
            c.credentials(&server_arg("reg.example:5000"))
                .unwrap()
                .password,
            "b"
        );
        assert_eq!(
            c.credentials(&server_arg("docker.io")).unwrap().username,
            "u"
        );
        assert!(ConfigFile::load_from(&dir.path().join("missing.json")).is_ok());
    }
}
