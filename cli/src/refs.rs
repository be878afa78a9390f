//! Docker image references: parsing, normalisation and the familiar form.
//!
//! Follows the grammar and normalisation of docker's `distribution/reference`
//! package (`ParseNormalizedNamed`, `TagNameOnly`, `FamiliarName`), so that
//! names typed by a user, stored in containerd and shown by `docker images`
//! agree with docker's, and errors carry docker's wording.

use std::fmt;

/// The registry docker assumes when a name has none.
const DEFAULT_DOMAIN: &str = "docker.io";
/// docker's old spelling of [`DEFAULT_DOMAIN`]; normalised to it.
const LEGACY_DEFAULT_DOMAIN: &str = "index.docker.io";
/// The namespace of official images on the default registry.
const OFFICIAL_REPO_PREFIX: &str = "library/";
/// The tag docker adds to a name that has neither tag nor digest.
pub const DEFAULT_TAG: &str = "latest";
/// docker refuses repository names longer than this.
const NAME_TOTAL_LENGTH_MAX: usize = 255;
/// Longest tag the grammar allows.
const TAG_MAX: usize = 128;

/// Why a reference was refused; the texts are docker's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RefError {
    #[error("invalid reference format")]
    InvalidFormat,
    #[error("invalid reference format: repository name ({0}) must be lowercase")]
    RemoteNotLowercase(String),
    #[error("invalid reference format: repository name must be lowercase")]
    NameNotLowercase,
    #[error("repository name must not be more than {NAME_TOTAL_LENGTH_MAX} characters")]
    NameTooLong,
    #[error("invalid repository name ({0}), cannot specify 64-byte hexadecimal strings")]
    HexIdentifier(String),
    #[error("unsupported digest algorithm")]
    DigestAlgorithm,
    #[error("invalid checksum digest length")]
    DigestLength,
    #[error("invalid checksum digest format")]
    DigestFormat,
}

/// A parsed, normalised reference: `docker.io/library/busybox:latest`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    /// Registry host, with port if any (`docker.io`, `localhost:5000`).
    pub domain: String,
    /// Repository path below the registry (`library/busybox`).
    pub path: String,
    pub tag: Option<String>,
    /// `algorithm:hex`.
    pub digest: Option<String>,
}

impl Reference {
    /// Parses what a user typed, as docker's `ParseNormalizedNamed`: adds the
    /// default registry and `library/`, refuses upper-case repository names.
    pub fn parse_normalized(s: &str) -> Result<Self, RefError> {
        if is_hex_identifier(s) {
            return Err(RefError::HexIdentifier(s.to_string()));
        }
        let (domain, remainder) = split_docker_domain(s);
        let remote = remainder.split(':').next().unwrap_or_default();
        if remote.to_lowercase() != remote {
            return Err(RefError::RemoteNotLowercase(remote.to_string()));
        }
        parse_full(&domain, &remainder)
    }

    /// `domain/path`, without tag or digest.
    pub fn name(&self) -> String {
        format!("{}/{}", self.domain, self.path)
    }

    /// Adds `:latest` when the reference has neither tag nor digest
    /// (docker's `TagNameOnly`).
    pub fn with_default_tag(mut self) -> Self {
        if self.tag.is_none() && self.digest.is_none() {
            self.tag = Some(DEFAULT_TAG.to_string());
        }
        self
    }

    /// The repository as docker displays it: `busybox`, `user/app`,
    /// `localhost:5000/app`.
    pub fn familiar_name(&self) -> String {
        if self.domain != DEFAULT_DOMAIN {
            return self.name();
        }
        match self.path.strip_prefix(OFFICIAL_REPO_PREFIX) {
            // Only a single component below library/ is an official image.
            Some(rest) if !rest.contains('/') => rest.to_string(),
            _ => self.path.clone(),
        }
    }

    /// The whole reference as docker displays it: `busybox:latest`.
    pub fn familiar_string(&self) -> String {
        let mut s = self.familiar_name();
        push_tag_digest(&mut s, self);
        s
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = self.name();
        push_tag_digest(&mut s, self);
        f.write_str(&s)
    }
}

fn push_tag_digest(s: &mut String, r: &Reference) {
    if let Some(tag) = &r.tag {
        s.push(':');
        s.push_str(tag);
    }
    if let Some(digest) = &r.digest {
        s.push('@');
        s.push_str(digest);
    }
}

/// The short, docker-style display form (`busybox`, `localhost:5000/app`), and the tag.
///
/// The tag is empty when the name carries none (a digest-only name). A name
/// that does not parse is returned unchanged.
pub fn familiar(full: &str) -> (String, String) {
    match Reference::parse_normalized(full) {
        Ok(r) => (r.familiar_name(), r.tag.unwrap_or_default()),
        Err(_) => (full.to_string(), String::new()),
    }
}

/// docker's `splitDockerDomain`: the first path component is a registry only
/// if it looks like a host (has a dot or a port, is `localhost`, or has
/// upper-case letters, which repository paths cannot).
fn split_docker_domain(name: &str) -> (String, String) {
    let (mut domain, mut remainder) = match name.find('/') {
        Some(i) => {
            let first = &name[..i];
            let is_host =
                first.contains(['.', ':']) || first == "localhost" || first.to_lowercase() != first;
            if is_host {
                (first.to_string(), name[i + 1..].to_string())
            } else {
                (DEFAULT_DOMAIN.to_string(), name.to_string())
            }
        }
        None => (DEFAULT_DOMAIN.to_string(), name.to_string()),
    };
    if domain == LEGACY_DEFAULT_DOMAIN {
        domain = DEFAULT_DOMAIN.to_string();
    }
    if domain == DEFAULT_DOMAIN && !remainder.contains('/') {
        remainder = format!("{OFFICIAL_REPO_PREFIX}{remainder}");
    }
    (domain, remainder)
}

/// Checks `domain/remainder` against the reference grammar, as docker's
/// `Parse` does on the normalised string.
fn parse_full(domain: &str, remainder: &str) -> Result<Reference, RefError> {
    let grammar = |remainder: &str| -> Option<(String, Option<String>, Option<String>)> {
        let (name_tag, digest) = match remainder.split_once('@') {
            Some((a, d)) => (a, Some(d)),
            None => (remainder, None),
        };
        let (path, tag) = match name_tag.split_once(':') {
            Some((p, t)) => (p, Some(t)),
            None => (name_tag, None),
        };
        let ok = is_domain(domain)
            && is_path(path)
            && tag.is_none_or(is_tag)
            && digest.is_none_or(is_digest_syntax);
        ok.then(|| {
            (
                path.to_string(),
                tag.map(str::to_string),
                digest.map(str::to_string),
            )
        })
    };
    let Some((path, tag, digest)) = grammar(remainder) else {
        // docker retries the match lower-cased to tell case errors apart.
        if grammar(&remainder.to_lowercase()).is_some() && is_domain(domain) {
            return Err(RefError::NameNotLowercase);
        }
        return Err(RefError::InvalidFormat);
    };
    if domain.len() + 1 + path.len() > NAME_TOTAL_LENGTH_MAX {
        return Err(RefError::NameTooLong);
    }
    if let Some(d) = &digest {
        check_digest(d)?;
    }
    Ok(Reference {
        domain: domain.to_string(),
        path,
        tag,
        digest,
    })
}

/// `[a-f0-9]{64}`: docker refuses a bare image ID where a name is expected.
fn is_hex_identifier(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*` per component, components joined by `/`.
fn is_path(path: &str) -> bool {
    !path.is_empty() && path.split('/').all(is_path_component)
}

fn is_path_component(c: &str) -> bool {
    let b = c.as_bytes();
    let alnum = |x: u8| x.is_ascii_lowercase() || x.is_ascii_digit();
    if b.is_empty() || !alnum(b[0]) || !alnum(b[b.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if alnum(b[i]) {
            i += 1;
            continue;
        }
        // A separator run: ".", "_", "__" or one or more "-".
        let start = i;
        while i < b.len() && !alnum(b[i]) {
            i += 1;
        }
        let sep = &c[start..i];
        let valid = matches!(sep, "." | "_" | "__") || sep.bytes().all(|x| x == b'-');
        if !valid {
            return false;
        }
    }
    true
}

/// A host name (components of `[a-zA-Z0-9-]`, not starting or ending with
/// `-`, joined by dots) or a bracketed IPv6 address, with an optional port.
fn is_domain(domain: &str) -> bool {
    let (host, port) = if let Some(rest) = domain.strip_prefix('[') {
        let Some((addr, after)) = rest.split_once(']') else {
            return false;
        };
        if addr.is_empty() || !addr.bytes().all(|b| b.is_ascii_hexdigit() || b == b':') {
            return false;
        }
        match after {
            "" => return true,
            _ => match after.strip_prefix(':') {
                Some(p) => ("", Some(p)),
                None => return false,
            },
        }
    } else {
        match domain.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (domain, None),
        }
    };
    if let Some(p) = port {
        if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) {
            return false;
        }
    }
    if domain.starts_with('[') {
        return true;
    }
    !host.is_empty()
        && host.split('.').all(|c| {
            let b = c.as_bytes();
            !b.is_empty()
                && b.iter().all(|x| x.is_ascii_alphanumeric() || *x == b'-')
                && b[0] != b'-'
                && b[b.len() - 1] != b'-'
        })
}

/// `[\w][\w.-]{0,127}`.
fn is_tag(tag: &str) -> bool {
    let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let b = tag.as_bytes();
    !b.is_empty()
        && b.len() <= TAG_MAX
        && word(b[0])
        && b.iter().all(|&x| word(x) || x == b'.' || x == b'-')
}

/// `algorithm:hex` with algorithm `[A-Za-z][A-Za-z0-9]*([-_+.][A-Za-z][A-Za-z0-9]*)*`
/// and at least 32 hex digits.
fn is_digest_syntax(d: &str) -> bool {
    let Some((alg, hex)) = d.split_once(':') else {
        return false;
    };
    let alg_ok = alg.split(['-', '_', '+', '.']).all(|part| {
        let b = part.as_bytes();
        !b.is_empty() && b[0].is_ascii_alphabetic() && b.iter().all(|x| x.is_ascii_alphanumeric())
    });
    alg_ok && hex.len() >= 32 && hex.bytes().all(|b| b.is_ascii_hexdigit())
}

/// go-digest's validation after the grammar matched.
fn check_digest(d: &str) -> Result<(), RefError> {
    let (alg, hex) = d.split_once(':').unwrap_or((d, ""));
    let want = match alg {
        "sha256" => 64,
        "sha384" => 96,
        "sha512" => 128,
        _ => return Err(RefError::DigestAlgorithm),
    };
    if hex.len() != want {
        return Err(RefError::DigestLength);
    }
    if !hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return Err(RefError::DigestFormat);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:e05ea467e33766fe8f66bf9839d3e0328013bbf5937525da101e15936a7973d2";

    fn norm(s: &str) -> Result<String, RefError> {
        Reference::parse_normalized(s).map(|r| r.with_default_tag().to_string())
    }

    #[test]
    fn normalises_like_docker() {
        let digested = format!("host.tld/a/b@{D}");
        let cases: &[(&str, String)] = &[
            ("busybox", "docker.io/library/busybox:latest".into()),
            ("busybox:1.36", "docker.io/library/busybox:1.36".into()),
            ("library/busybox", "docker.io/library/busybox:latest".into()),
            (
                "docker.io/busybox",
                "docker.io/library/busybox:latest".into(),
            ),
            (
                "index.docker.io/busybox",
                "docker.io/library/busybox:latest".into(),
            ),
            (
                "docker.io/library/busybox:latest",
                "docker.io/library/busybox:latest".into(),
            ),
            ("user/app:1", "docker.io/user/app:1".into()),
            ("user/app/sub", "docker.io/user/app/sub:latest".into()),
            ("localhost/app", "localhost/app:latest".into()),
            ("localhost:5000/x", "localhost:5000/x:latest".into()),
            ("127.0.0.1:5000/x/y:v2", "127.0.0.1:5000/x/y:v2".into()),
            ("[::1]:5000/x", "[::1]:5000/x:latest".into()),
            (
                "Registry.Example.com/app",
                "Registry.Example.com/app:latest".into(),
            ),
            (digested.as_str(), digested.clone()),
            (
                &format!("busybox:1@{D}"),
                format!("docker.io/library/busybox:1@{D}"),
            ),
            (
                "a_b/c__d/e-f/g--h/i.j",
                "docker.io/a_b/c__d/e-f/g--h/i.j:latest".into(),
            ),
            (
                "busybox:Tag_1.x-y",
                "docker.io/library/busybox:Tag_1.x-y".into(),
            ),
            // A single-component name that looks like a registry stays a name.
            ("localhost:5000", "docker.io/library/localhost:5000".into()),
            // Upper-case first component: a registry, as docker decides.
            ("Foo/bar", "Foo/bar:latest".into()),
        ];
        for (input, want) in cases {
            assert_eq!(norm(input).as_deref(), Ok(want.as_str()), "input {input}");
        }
    }

    #[test]
    fn refuses_like_docker() {
        let hex64 = "a".repeat(64);
        let cases: &[(&str, &str)] = &[
            ("Busybox", "invalid reference format: repository name (library/Busybox) must be lowercase"),
            ("user/App:1", "invalid reference format: repository name (user/App) must be lowercase"),
            ("localhost:5000/Foo", "invalid reference format: repository name (Foo) must be lowercase"),
            ("", "invalid reference format"),
            ("busybox:", "invalid reference format"),
            (":tag", "invalid reference format"),
            ("busybox:-tag", "invalid reference format"),
            ("bu$ybox", "invalid reference format"),
            ("busybox/", "invalid reference format"),
            ("/busybox", "invalid reference format"),
            ("a//b", "invalid reference format"),
            ("a..b", "invalid reference format"),
            ("-a", "invalid reference format"),
            ("a-", "invalid reference format"),
            ("a___b", "invalid reference format"),
            ("busybox@sha256:abc", "invalid reference format"),
            ("host_name:5000/x", "invalid reference format"),
            ("-host.tld/x", "invalid reference format"),
            ("busybox@md5:0123456789abcdef0123456789abcdef", "unsupported digest algorithm"),
            (
                "busybox@sha256:0123456789abcdef0123456789abcdef",
                "invalid checksum digest length",
            ),
            (
                "busybox@sha256:E05EA467E33766FE8F66BF9839D3E0328013BBF5937525DA101E15936A7973D2",
                "invalid checksum digest format",
            ),
            (&hex64, "invalid repository name (aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa), cannot specify 64-byte hexadecimal strings"),
        ];
        for (input, want) in cases {
            let got = norm(input).map_err(|e| e.to_string());
            assert_eq!(got, Err(want.to_string()), "input {input:?}");
        }
        let long = format!("a/{}", "b".repeat(250));
        assert_eq!(norm(&long), Err(RefError::NameTooLong));
        let long_tag = format!("a:{}", "t".repeat(129));
        assert_eq!(norm(&long_tag), Err(RefError::InvalidFormat));
    }

    #[test]
    fn familiar_strips_default_registry_and_library() {
        let cases = [
            ("docker.io/library/busybox:latest", ("busybox", "latest")),
            ("docker.io/user/app:1", ("user/app", "1")),
            ("docker.io/library/a/b:1", ("library/a/b", "1")),
            ("localhost:5000/x:latest", ("localhost:5000/x", "latest")),
            ("quay.io/library/x:2", ("quay.io/library/x", "2")),
            ("not a reference", ("not a reference", "")),
        ];
        for (full, (name, tag)) in cases {
            assert_eq!(
                familiar(full),
                (name.to_string(), tag.to_string()),
                "{full}"
            );
        }
        let r = Reference::parse_normalized(&format!("docker.io/library/busybox@{D}")).unwrap();
        assert_eq!(r.familiar_string(), format!("busybox@{D}"));
        assert_eq!(
            familiar(&r.to_string()),
            ("busybox".to_string(), String::new())
        );
    }
}
