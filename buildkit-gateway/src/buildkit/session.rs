//! `Control.Session`: which of the client's metadata reaches BuildKit.
//!
//! The session's identity travels as request metadata: BuildKit reads the
//! session ID, name and shared key, and one `grpc-method` value per method
//! the client serves, and calls only those. The gateway copies exactly these
//! keys, checked, and nothing else: any other header the client sent could
//! be read by the daemon or by something in front of it (Docker's API reads
//! its own headers on `/grpc`).

use tonic::metadata::{MetadataMap, MetadataValue};

pub const KEY_UUID: &str = "x-docker-expose-session-uuid";
pub const KEY_NAME: &str = "x-docker-expose-session-name";
pub const KEY_SHARED_KEY: &str = "x-docker-expose-session-sharedkey";
pub const KEY_METHOD: &str = "x-docker-expose-session-grpc-method";

/// Bounds well above what BuildKit's clients send (a 25-character ID, a
/// directory name, a hash, a dozen methods).
const MAX_ID: usize = 128;
const MAX_TEXT: usize = 512;
const MAX_METHODS: usize = 64;
const MAX_METHOD: usize = 256;

/// The session metadata as the gateway forwards it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionHeaders {
    pub uuid: String,
    pub name: Option<String>,
    pub shared_key: Option<String>,
    /// `/package.Service/Method`, in the order sent.
    pub methods: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SessionError {
    #[error("session metadata {0} is missing")]
    Missing(&'static str),
    #[error("session metadata {0} is given more than once")]
    Repeated(&'static str),
    #[error("session metadata {0} is not printable text of at most {1} bytes")]
    NotText(&'static str, usize),
    #[error("session method {0:?} is not of the form /package.Service/Method")]
    BadMethod(String),
    #[error("session exposes more than {MAX_METHODS} methods")]
    TooManyMethods,
}

impl SessionHeaders {
    /// Reads and checks the session keys of the client's metadata.
    pub fn from_metadata(md: &MetadataMap) -> Result<Self, SessionError> {
        let uuid =
            single(md, KEY_UUID, MAX_ID, is_id_byte)?.ok_or(SessionError::Missing(KEY_UUID))?;
        let name = single(md, KEY_NAME, MAX_TEXT, is_text_byte)?;
        let shared_key = single(md, KEY_SHARED_KEY, MAX_TEXT, is_text_byte)?;
        let mut methods = Vec::new();
        for value in md.get_all(KEY_METHOD) {
            if methods.len() == MAX_METHODS {
                return Err(SessionError::TooManyMethods);
            }
            let text = value.to_str().map_err(|_| {
                SessionError::BadMethod(String::from_utf8_lossy(value.as_bytes()).into())
            })?;
            if !is_method(text) {
                return Err(SessionError::BadMethod(text.to_string()));
            }
            methods.push(text.to_string());
        }
        Ok(Self {
            uuid,
            name,
            shared_key,
            methods,
        })
    }

    /// The metadata of the upstream Session call: these keys only.
    pub fn to_metadata(&self) -> MetadataMap {
        let mut md = MetadataMap::new();
        // Every value was checked to be visible ASCII, which always parses.
        let value = |s: &str| MetadataValue::try_from(s).expect("checked ASCII");
        md.insert(KEY_UUID, value(&self.uuid));
        if let Some(name) = &self.name {
            md.insert(KEY_NAME, value(name));
        }
        if let Some(key) = &self.shared_key {
            md.insert(KEY_SHARED_KEY, value(key));
        }
        for m in &self.methods {
            md.append(KEY_METHOD, value(m));
        }
        md
    }
}

fn single(
    md: &MetadataMap,
    key: &'static str,
    max: usize,
    ok: fn(u8) -> bool,
) -> Result<Option<String>, SessionError> {
    let mut values = md.get_all(key).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(SessionError::Repeated(key));
    }
    let bytes = value.as_bytes();
    if bytes.is_empty() || bytes.len() > max || !bytes.iter().all(|b| ok(*b)) {
        return Err(SessionError::NotText(key, max));
    }
    Ok(Some(
        String::from_utf8(bytes.to_vec()).expect("checked ASCII"),
    ))
}

/// Visible ASCII: IDs never contain spaces.
fn is_id_byte(b: u8) -> bool {
    b.is_ascii_graphic()
}

/// Visible ASCII and space: a session name is often a directory name.
fn is_text_byte(b: u8) -> bool {
    b.is_ascii_graphic() || b == b' '
}

/// `/package.Service/Method`: a dotted service name with at least one dot,
/// and a method name, both of identifier characters.
fn is_method(s: &str) -> bool {
    if s.len() > MAX_METHOD {
        return false;
    }
    let Some(rest) = s.strip_prefix('/') else {
        return false;
    };
    let Some((service, method)) = rest.split_once('/') else {
        return false;
    };
    let ident = |p: &str| {
        p.bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
            && p.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
    };
    service.contains('.') && service.split('.').all(ident) && ident(method)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn md(pairs: &[(&'static str, &str)]) -> MetadataMap {
        let mut md = MetadataMap::new();
        for (k, v) in pairs {
            md.append(*k, MetadataValue::try_from(*v).unwrap());
        }
        md
    }

    #[test]
    fn methods_table() {
        for (method, ok) in [
            ("/moby.filesync.v1.FileSync/DiffCopy", true),
            ("/grpc.health.v1.Health/Check", true),
            ("/moby.buildkit.secrets.v1.Secrets/GetSecret", true),
            ("moby.filesync.v1.FileSync/DiffCopy", false),
            ("/FileSync/DiffCopy", false),
            ("/moby.filesync.v1.FileSync/", false),
            ("/moby.filesync.v1.FileSync/Diff/Copy", false),
            ("/moby..FileSync/DiffCopy", false),
            ("/moby.filesync.v1.FileSync/Diff Copy", false),
            ("/a.b/c,/d.e/f", false),
        ] {
            assert_eq!(is_method(method), ok, "{method}");
        }
    }

    #[test]
    fn only_session_keys_are_copied() {
        let given = md(&[
            (KEY_UUID, "6g3yq2wgdzubtv8vs3ke5cnzd"),
            (KEY_NAME, "my project"),
            (KEY_SHARED_KEY, "abc123"),
            (KEY_METHOD, "/moby.filesync.v1.FileSync/DiffCopy"),
            (KEY_METHOD, "/grpc.health.v1.Health/Check"),
            ("x-docker-expose-session-other", "x"),
            ("authorization", "Bearer t"),
            ("user-agent", "x"),
        ]);
        let h = SessionHeaders::from_metadata(&given).unwrap();
        assert_eq!(h.methods.len(), 2);
        let out = h.to_metadata();
        let mut keys: Vec<String> = out
            .keys()
            .map(|k| match k {
                tonic::metadata::KeyRef::Ascii(k) => k.as_str().to_string(),
                tonic::metadata::KeyRef::Binary(k) => k.as_str().to_string(),
            })
            .collect();
        keys.sort();
        assert_eq!(keys, vec![KEY_METHOD, KEY_NAME, KEY_SHARED_KEY, KEY_UUID]);
        assert_eq!(out.get_all(KEY_METHOD).iter().count(), 2);
        assert_eq!(SessionHeaders::from_metadata(&out).unwrap(), h);
    }

    #[test]
    fn refusals_table() {
        let method = "/moby.filesync.v1.FileSync/DiffCopy";
        let long = "x".repeat(MAX_ID + 1);
        let many: Vec<(&'static str, &str)> = std::iter::once((KEY_UUID, "u"))
            .chain(std::iter::repeat_n((KEY_METHOD, method), MAX_METHODS + 1))
            .collect();
        for (what, given, err) in [
            (
                "no uuid",
                md(&[(KEY_METHOD, method)]),
                SessionError::Missing(KEY_UUID),
            ),
            (
                "two uuids",
                md(&[(KEY_UUID, "a"), (KEY_UUID, "b")]),
                SessionError::Repeated(KEY_UUID),
            ),
            (
                "uuid with a space",
                md(&[(KEY_UUID, "a b")]),
                SessionError::NotText(KEY_UUID, MAX_ID),
            ),
            (
                "long uuid",
                md(&[(KEY_UUID, long.as_str())]),
                SessionError::NotText(KEY_UUID, MAX_ID),
            ),
            (
                "empty shared key",
                md(&[(KEY_UUID, "a"), (KEY_SHARED_KEY, "")]),
                SessionError::NotText(KEY_SHARED_KEY, MAX_TEXT),
            ),
            (
                "bad method",
                md(&[(KEY_UUID, "a"), (KEY_METHOD, "/x")]),
                SessionError::BadMethod("/x".into()),
            ),
            ("too many methods", md(&many), SessionError::TooManyMethods),
        ] {
            assert_eq!(SessionHeaders::from_metadata(&given), Err(err), "{what}");
        }
    }
}
