//! `WWW-Authenticate` challenges of registries (RFC 7235 syntax): the
//! scheme and its parameters, and the token request URL a Bearer challenge
//! asks for (the distribution token protocol).

use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Challenge {
    /// Ask `realm` for a token for `service` and `scope`.
    Bearer {
        realm: String,
        service: Option<String>,
        scope: Option<String>,
    },
    Basic,
}

/// Parses the first challenge berth can answer; `None` when there is none.
pub fn parse(header: &str) -> Option<Challenge> {
    let mut rest = header.trim();
    while !rest.is_empty() {
        let (scheme, after) = split_token(rest);
        let (params, after) = parse_params(after);
        match scheme.to_ascii_lowercase().as_str() {
            "bearer" => {
                if let Some(realm) = params.get("realm") {
                    return Some(Challenge::Bearer {
                        realm: realm.clone(),
                        service: params.get("service").cloned(),
                        scope: params.get("scope").cloned(),
                    });
                }
            }
            "basic" => return Some(Challenge::Basic),
            _ => {}
        }
        if after.len() == rest.len() {
            break;
        }
        rest = after.trim_start_matches([',', ' ']);
    }
    None
}

fn split_token(s: &str) -> (&str, &str) {
    let s = s.trim_start();
    let end = s.find([' ', ',']).unwrap_or(s.len());
    (&s[..end], &s[end..])
}

/// `k=v, k="quoted \" value"` up to the next challenge's scheme.
fn parse_params(mut s: &str) -> (BTreeMap<String, String>, &str) {
    let mut out = BTreeMap::new();
    loop {
        let t = s.trim_start_matches([' ', ',']);
        let Some(eq) = t.find('=') else {
            return (out, s);
        };
        let key = &t[..eq];
        if key.is_empty() || key.contains([' ', ',', '"']) {
            // The next challenge's scheme.
            return (out, s);
        }
        let after = &t[eq + 1..];
        let (value, rest) = if let Some(q) = after.strip_prefix('"') {
            let mut v = String::new();
            let mut chars = q.char_indices();
            let mut end = q.len();
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => {
                        if let Some((_, n)) = chars.next() {
                            v.push(n);
                        }
                    }
                    '"' => {
                        end = i + 1;
                        break;
                    }
                    c => v.push(c),
                }
            }
            (v, &q[end.min(q.len())..])
        } else {
            let end = after.find(',').unwrap_or(after.len());
            (after[..end].trim().to_string(), &after[end..])
        };
        out.insert(key.to_ascii_lowercase(), value);
        s = rest;
    }
}

/// The token URL for a Bearer challenge: `realm?service=…&scope=…`.
pub fn token_url(
    realm: &str,
    service: Option<&str>,
    scopes: &[String],
    account: Option<&str>,
) -> String {
    let mut query = Vec::new();
    if let Some(a) = account {
        query.push(format!("account={}", encode(a)));
    }
    if let Some(s) = service {
        query.push(format!("service={}", encode(s)));
    }
    for scope in scopes {
        query.push(format!("scope={}", encode(scope)));
    }
    if query.is_empty() {
        return realm.to_string();
    }
    let sep = if realm.contains('?') { '&' } else { '?' };
    format!("{realm}{sep}{}", query.join("&"))
}

/// Percent-encoding of a query value (unreserved characters kept).
pub fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_bearer_challenges() {
        let h = r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull""#;
        assert_eq!(
            parse(h),
            Some(Challenge::Bearer {
                realm: "https://auth.docker.io/token".into(),
                service: Some("registry.docker.io".into()),
                scope: Some("repository:library/busybox:pull".into()),
            })
        );
        let h = r#"bearer realm="https://r/t?x=1", error="invalid_token", service=reg"#;
        match parse(h) {
            Some(Challenge::Bearer { realm, service, .. }) => {
                assert_eq!(realm, "https://r/t?x=1");
                assert_eq!(service.as_deref(), Some("reg"));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn parses_basic_and_unknown() {
        assert_eq!(
            parse(r#"Basic realm="Registry Realm""#),
            Some(Challenge::Basic)
        );
        assert_eq!(
            parse(r#"Negotiate, Basic realm="x""#),
            Some(Challenge::Basic)
        );
        assert_eq!(parse("Negotiate"), None);
        assert_eq!(parse(""), None);
        // A Bearer challenge without a realm cannot be answered.
        assert_eq!(parse(r#"Bearer service="x""#), None);
    }

    #[test]
    fn quoted_values_unescape() {
        let h = r#"Bearer realm="https://a/\"t\"",scope="a,b""#;
        match parse(h) {
            Some(Challenge::Bearer { realm, scope, .. }) => {
                assert_eq!(realm, r#"https://a/"t""#);
                assert_eq!(scope.as_deref(), Some("a,b"));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn token_urls() {
        assert_eq!(
            token_url(
                "https://auth/token",
                Some("reg"),
                &["repository:berth/x:pull,push".into()],
                Some("alice")
            ),
            "https://auth/token?account=alice&service=reg&scope=repository%3Aberth%2Fx%3Apull%2Cpush"
        );
        assert_eq!(
            token_url("https://a/t?v=1", None, &[], None),
            "https://a/t?v=1"
        );
        assert_eq!(
            token_url("https://a/t?v=1", Some("s"), &[], None),
            "https://a/t?v=1&service=s"
        );
    }
}
