//! Image names as docker normalises them: `busybox` is
//! `docker.io/library/busybox:latest`, `foo/bar` is `docker.io/foo/bar:latest`,
//! a first component with a dot, a colon or `localhost` is a registry.
//! The grammar follows the distribution reference format.

/// Longest repository name (domain and path) the reference grammar allows.
const MAX_NAME_LEN: usize = 255;

pub fn normalize(reference: &str) -> Result<String, String> {
    let bad = |why: &str| format!("image name {reference:?} is not a valid reference ({why})");
    if reference.is_empty() || reference.len() > 512 {
        return Err(bad("empty or too long"));
    }
    let (rest, digest) = match reference.split_once('@') {
        Some((rest, digest)) => {
            super::oci::Digest::parse(digest).map_err(|_| bad("bad digest"))?;
            (rest, Some(digest))
        }
        None => (reference, None),
    };
    let (name, tag) = match rest.rfind(':') {
        Some(i) if !rest[i..].contains('/') => (&rest[..i], Some(&rest[i + 1..])),
        _ => (rest, None),
    };
    if let Some(tag) = tag {
        if !valid_tag(tag) {
            return Err(bad("bad tag"));
        }
    }
    let (domain, path) = match name.split_once('/') {
        Some((first, rest))
            if first.contains('.')
                || first.contains(':')
                || first == "localhost"
                || first.bytes().any(|b| b.is_ascii_uppercase()) =>
        {
            (first, rest.to_string())
        }
        _ => ("docker.io", name.to_string()),
    };
    let domain = if domain == "index.docker.io" {
        "docker.io"
    } else {
        domain
    };
    let path = if domain == "docker.io" && !path.contains('/') {
        format!("library/{path}")
    } else {
        path
    };
    if !valid_domain(domain) {
        return Err(bad("bad registry"));
    }
    if path.is_empty() || !path.split('/').all(valid_component) {
        return Err(bad("bad repository path"));
    }
    if domain.len() + 1 + path.len() > MAX_NAME_LEN {
        return Err(bad("name longer than 255 characters"));
    }
    let mut full = format!("{domain}/{path}");
    match (tag, digest) {
        (None, None) => full.push_str(":latest"),
        (tag, digest) => {
            if let Some(tag) = tag {
                full.push(':');
                full.push_str(tag);
            }
            if let Some(digest) = digest {
                full.push('@');
                full.push_str(digest);
            }
        }
    }
    Ok(full)
}

/// `[a-z0-9]+` joined by `.`, `_`, `__` or runs of `-`.
fn valid_component(c: &str) -> bool {
    let b = c.as_bytes();
    if b.is_empty() || !is_alnum(b[0]) || !is_alnum(b[b.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if is_alnum(b[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && !is_alnum(b[i]) {
            i += 1;
        }
        let sep = &c[start..i];
        if !(sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|x| x == b'-')) {
            return false;
        }
    }
    true
}

fn is_alnum(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit()
}

/// `[\w][\w.-]{0,127}`
fn valid_tag(tag: &str) -> bool {
    let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let b = tag.as_bytes();
    !b.is_empty()
        && b.len() <= 128
        && word(b[0])
        && b.iter().all(|&x| word(x) || x == b'.' || x == b'-')
}

/// Host labels separated by dots, optionally `:port`.
fn valid_domain(domain: &str) -> bool {
    let (host, port) = match domain.rsplit_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (domain, None),
    };
    if let Some(port) = port {
        if port.is_empty() || port.len() > 5 || !port.bytes().all(|b| b.is_ascii_digit()) {
            return false;
        }
    }
    !host.is_empty()
        && host.split('.').all(|label| {
            let b = label.as_bytes();
            !b.is_empty()
                && b[0].is_ascii_alphanumeric()
                && b[b.len() - 1].is_ascii_alphanumeric()
                && b.iter().all(|&x| x.is_ascii_alphanumeric() || x == b'-')
        })
}

#[cfg(test)]
mod tests {
    use super::normalize;

    #[test]
    fn normalises_like_docker() {
        let d = format!("sha256:{}", "a".repeat(64));
        for (input, want) in [
            ("busybox", "docker.io/library/busybox:latest".to_string()),
            (
                "busybox:latest",
                "docker.io/library/busybox:latest".to_string(),
            ),
            ("foo/bar", "docker.io/foo/bar:latest".to_string()),
            (
                "docker.io/library/busybox:1.36",
                "docker.io/library/busybox:1.36".to_string(),
            ),
            (
                "index.docker.io/library/alpine",
                "docker.io/library/alpine:latest".to_string(),
            ),
            ("localhost:5000/x:1", "localhost:5000/x:1".to_string()),
            ("localhost/app", "localhost/app:latest".to_string()),
            (
                "registry.example.com/a/b/c:v1.2-rc_3",
                "registry.example.com/a/b/c:v1.2-rc_3".to_string(),
            ),
            (
                "my-app__x.y--z",
                "docker.io/library/my-app__x.y--z:latest".to_string(),
            ),
            (
                &format!("busybox@{d}"),
                format!("docker.io/library/busybox@{d}"),
            ),
            (
                &format!("busybox:1@{d}"),
                format!("docker.io/library/busybox:1@{d}"),
            ),
        ] {
            assert_eq!(normalize(input).as_deref(), Ok(want.as_str()), "{input}");
        }
    }

    #[test]
    fn refuses_invalid_references() {
        for input in [
            "",
            "Busybox",
            "busybox:",
            "busybox:-x",
            "foo//bar",
            "foo/bar/",
            "a..b",
            "-a",
            "a_",
            "busybox@sha256:abc",
            "busy box",
            "exa_mple.com:99999x/a",
            "a\nb",
        ] {
            assert!(normalize(input).is_err(), "{input:?} accepted");
        }
        let long = "a".repeat(300);
        assert!(normalize(&long).is_err());
    }
}
