//! `--secret` and the `Secrets` session service behind
//! `RUN --mount=type=secret`.

use std::collections::HashMap;
use std::path::PathBuf;

use berth_proto::buildkit::secrets::secrets_server::{Secrets, SecretsServer};
use berth_proto::buildkit::secrets::{GetSecretRequest, GetSecretResponse};
use tonic::{Request, Response, Status};

use super::ContextError;

/// BuildKit refuses larger secrets (secretsprovider's `MaxSecretSize`).
const MAX_SECRET_SIZE: u64 = 500 * 1024;

/// One `--secret`: the ID a Dockerfile names and where its value comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretSource {
    pub id: String,
    pub from: SecretFrom,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretFrom {
    File(PathBuf),
    /// The value of this environment variable, read when BuildKit asks.
    Env(String),
}

/// Parses `--secret` as docker buildx does: comma-separated `key=value`
/// fields `id`, `type` (`file` or `env`), `src`/`source`, `env`. Without a
/// source, `id` names an environment variable if one is set, else a file.
pub fn parse_secret_flag(s: &str) -> Result<SecretSource, ContextError> {
    parse_secret_with_env(s, |name| std::env::var_os(name).is_some())
}

fn parse_secret_with_env(
    s: &str,
    has_env: impl Fn(&str) -> bool,
) -> Result<SecretSource, ContextError> {
    let bad = |reason: String| ContextError::SecretFlag {
        flag: s.to_string(),
        reason,
    };
    let (mut id, mut src, mut env, mut typ) =
        (String::new(), String::new(), String::new(), String::new());
    for field in split_csv(s).map_err(bad)? {
        let Some((key, value)) = field.split_once('=') else {
            return Err(bad(format!("field {field:?} must be a key=value pair")));
        };
        match key.to_ascii_lowercase().as_str() {
            "type" => {
                if value != "file" && value != "env" {
                    return Err(bad(format!("unsupported secret type {value:?}")));
                }
                typ = value.to_string();
            }
            "id" => id = value.to_string(),
            "source" | "src" => src = value.to_string(),
            "env" => env = value.to_string(),
            other => return Err(bad(format!("unexpected key {other:?} in {field:?}"))),
        }
    }
    if typ == "env" && env.is_empty() {
        env = std::mem::take(&mut src);
    }
    if id.is_empty() {
        return Err(bad("secret missing id".to_string()));
    }
    let from = if !env.is_empty() {
        SecretFrom::Env(env)
    } else if !src.is_empty() {
        SecretFrom::File(PathBuf::from(src))
    } else if has_env(&id) {
        SecretFrom::Env(id.clone())
    } else {
        SecretFrom::File(PathBuf::from(&id))
    };
    Ok(SecretSource { id, from })
}

/// Splits a CSV record (one line, `"` quoting with `""` for a quote), as
/// buildx reads its flag values.
fn split_csv(s: &str) -> Result<Vec<String>, String> {
    let mut fields = Vec::new();
    let mut cur = String::new();
    let mut chars = s.chars().peekable();
    let mut at_start = true;
    while let Some(c) = chars.next() {
        match c {
            '"' if at_start => {
                loop {
                    match chars.next() {
                        Some('"') if chars.peek() == Some(&'"') => {
                            chars.next();
                            cur.push('"');
                        }
                        Some('"') => break,
                        Some(c) => cur.push(c),
                        None => return Err("unterminated quote".to_string()),
                    }
                }
                if !matches!(chars.peek(), None | Some(',')) {
                    return Err("unexpected text after a quoted field".to_string());
                }
                at_start = false;
            }
            ',' => {
                fields.push(std::mem::take(&mut cur));
                at_start = true;
            }
            c => {
                cur.push(c);
                at_start = false;
            }
        }
    }
    fields.push(cur);
    Ok(fields)
}

/// The `Secrets` service for `list`; files must exist and be at most 500 KiB
/// now, as BuildKit's store checks when it is made. A later `--secret` with
/// the same ID wins.
pub fn secrets(list: Vec<SecretSource>) -> Result<SecretsServer<impl Secrets>, ContextError> {
    let mut map = HashMap::new();
    for s in list {
        if let SecretFrom::File(path) = &s.from {
            let meta = std::fs::metadata(path).map_err(|e| ContextError::Secret {
                id: s.id.clone(),
                reason: format!("reading {}: {e}", path.display()),
            })?;
            if meta.len() > MAX_SECRET_SIZE {
                return Err(ContextError::Secret {
                    id: s.id.clone(),
                    reason: "too big, the maximum size is 500KB".to_string(),
                });
            }
        }
        map.insert(s.id.clone(), s.from);
    }
    Ok(SecretsServer::new(Store { map }))
}

struct Store {
    map: HashMap<String, SecretFrom>,
}

impl Store {
    async fn get(&self, id: &str) -> Result<Vec<u8>, Status> {
        let Some(from) = self.map.get(id) else {
            // NotFound is what BuildKit turns into "secret … not found", and
            // what lets `required=false` mounts go on without it
            return Err(Status::not_found(format!("secret {id} not found")));
        };
        let data = match from {
            SecretFrom::Env(name) => std::env::var_os(name)
                .map(|v| std::os::unix::ffi::OsStrExt::as_bytes(v.as_os_str()).to_vec())
                .unwrap_or_default(),
            SecretFrom::File(path) => tokio::fs::read(path).await.map_err(|e| {
                Status::unavailable(format!("reading secret {id} from {}: {e}", path.display()))
            })?,
        };
        if data.len() as u64 > MAX_SECRET_SIZE {
            return Err(Status::invalid_argument(format!(
                "invalid secret size {}",
                data.len()
            )));
        }
        Ok(data)
    }
}

#[tonic::async_trait]
impl Secrets for Store {
    async fn get_secret(
        &self,
        request: Request<GetSecretRequest>,
    ) -> Result<Response<GetSecretResponse>, Status> {
        let data = self.get(&request.get_ref().id).await?;
        Ok(Response::new(GetSecretResponse { data }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(id: &str, p: &str) -> SecretSource {
        SecretSource {
            id: id.into(),
            from: SecretFrom::File(p.into()),
        }
    }

    fn env(id: &str, v: &str) -> SecretSource {
        SecretSource {
            id: id.into(),
            from: SecretFrom::Env(v.into()),
        }
    }

    #[test]
    fn secret_flags_parse_like_buildx() {
        let has_env = |name: &str| name == "TOKEN";
        let cases: &[(&str, SecretSource)] = &[
            ("id=npm,src=/run/npmrc", file("npm", "/run/npmrc")),
            ("id=npm,source=npmrc", file("npm", "npmrc")),
            ("type=file,id=npm,src=x", file("npm", "x")),
            ("id=tok,env=TOKEN", env("tok", "TOKEN")),
            ("type=env,id=tok,src=TOKEN", env("tok", "TOKEN")),
            ("ID=a,SRC=b", file("a", "b")),
            // no source: an environment variable of that name, else a file
            ("id=TOKEN", env("TOKEN", "TOKEN")),
            ("id=other", file("other", "other")),
            ("\"id=a,b\",src=c", file("a,b", "c")),
        ];
        for (flag, want) in cases {
            assert_eq!(
                &parse_secret_with_env(flag, has_env).unwrap(),
                want,
                "{flag}"
            );
        }
        for bad in ["id", "type=ssh,id=a", "id=a,mode=0400", "src=x", "\"id=a"] {
            assert!(
                parse_secret_with_env(bad, has_env).is_err(),
                "{bad} should be refused"
            );
        }
    }

    #[tokio::test]
    async fn secrets_are_served_by_id_and_unknown_ids_are_not_found() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("s");
        std::fs::write(&path, "file-secret").unwrap();
        let store = Store {
            map: [
                ("f".to_string(), SecretFrom::File(path.clone())),
                ("e".to_string(), SecretFrom::Env("PATH".into())),
            ]
            .into(),
        };
        assert_eq!(store.get("f").await.unwrap(), b"file-secret");
        assert_eq!(
            store.get("e").await.unwrap(),
            std::env::var("PATH").unwrap().as_bytes()
        );
        let err = store.get("missing").await.unwrap_err();
        assert_eq!(err.code(), tonic::Code::NotFound);

        // construction checks files: missing and oversized are refused
        assert!(secrets(vec![file("x", "/nonexistent/secret")]).is_err());
        let big = tmp.path().join("big");
        std::fs::write(&big, vec![0u8; 500 * 1024 + 1]).unwrap();
        assert!(secrets(vec![file("big", big.to_str().unwrap())]).is_err());
        assert!(secrets(vec![file("f", path.to_str().unwrap()), env("e", "HOME")]).is_ok());
    }
}
