//! Which proxy a registry is reached through: `HTTPS_PROXY` (else
//! `HTTP_PROXY`), lower-case spellings too, minus the hosts `NO_PROXY`
//! names. In a sandbox the proxy is the only way out; without one
//! configured the connection is direct.

use std::net::IpAddr;

use crate::env;

/// A proxy as `host:port` (the CONNECT target is given per request).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proxy {
    /// `host:port` to open the TCP connection to.
    pub addr: String,
    /// The URL as configured, for error messages.
    pub url: String,
    /// `user:pass` from the URL, sent as Proxy-Authorization.
    pub credentials: Option<String>,
}

/// The proxy settings read from the environment once per command.
#[derive(Debug, Clone, Default)]
pub struct ProxyConfig {
    proxy: Option<Proxy>,
    no_proxy: Vec<String>,
}

impl ProxyConfig {
    pub fn from_env() -> Result<Self, String> {
        let var = |names: &[&str]| {
            names
                .iter()
                .find_map(|n| std::env::var(n).ok().filter(|v| !v.trim().is_empty()))
        };
        let url = var(&[env::HTTPS_PROXY, env::HTTPS_PROXY_LOWER])
            .or_else(|| var(&[env::HTTP_PROXY, env::HTTP_PROXY_LOWER]));
        let no_proxy = var(&[env::NO_PROXY, env::NO_PROXY_LOWER]).unwrap_or_default();
        Self::parse(url.as_deref(), &no_proxy)
    }

    pub fn parse(url: Option<&str>, no_proxy: &str) -> Result<Self, String> {
        let proxy = match url {
            Some(u) => Some(parse_proxy_url(u.trim())?),
            None => None,
        };
        let no_proxy = no_proxy
            .split(',')
            .map(|s| s.trim().to_ascii_lowercase())
            .filter(|s| !s.is_empty())
            .collect();
        Ok(Self { proxy, no_proxy })
    }

    /// The proxy for `host:port`, or `None` for a direct connection.
    pub fn for_host(&self, host: &str, port: u16) -> Option<&Proxy> {
        let proxy = self.proxy.as_ref()?;
        let name = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_ascii_lowercase();
        // Go's http.ProxyFromEnvironment never proxies loopback.
        if name == "localhost" || name.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback()) {
            return None;
        }
        if self
            .no_proxy
            .iter()
            .any(|e| no_proxy_matches(e, &name, port))
        {
            return None;
        }
        Some(proxy)
    }
}

fn parse_proxy_url(u: &str) -> Result<Proxy, String> {
    let bad = || format!("invalid proxy URL {u:?}");
    let rest = match u.split_once("://") {
        Some(("http", rest)) => rest,
        Some((scheme, _)) => {
            return Err(format!(
                "proxy URL {u:?}: scheme {scheme:?} is not supported (only http)"
            ))
        }
        // Go accepts a bare host:port as http.
        None => u,
    };
    let authority = rest.split('/').next().unwrap_or_default();
    let (credentials, hostport) = match authority.rsplit_once('@') {
        Some((c, h)) => (Some(c.to_string()), h),
        None => (None, authority),
    };
    if hostport.is_empty() {
        return Err(bad());
    }
    let has_port = match hostport.strip_prefix('[') {
        Some(rest) => rest.contains("]:"),
        None => hostport.contains(':'),
    };
    let addr = if has_port {
        hostport.to_string()
    } else {
        format!("{hostport}:80")
    };
    Ok(Proxy {
        addr,
        url: u.to_string(),
        credentials,
    })
}

/// One NO_PROXY entry against a host (lower-case, no brackets), as Go's
/// httpproxy: `*`; an IP or CIDR; a domain matching itself and its
/// subdomains (a leading `.` or `*.` only for subdomains); an optional port.
fn no_proxy_matches(entry: &str, host: &str, port: u16) -> bool {
    if entry == "*" {
        return true;
    }
    if let Some((net, bits)) = entry.split_once('/') {
        return match (
            net.parse::<IpAddr>(),
            bits.parse::<u32>(),
            host.parse::<IpAddr>(),
        ) {
            (Ok(net), Ok(bits), Ok(ip)) => in_cidr(ip, net, bits),
            _ => false,
        };
    }
    let (name, entry_port) = split_port(entry);
    if entry_port.is_some_and(|p| p != port) {
        return false;
    }
    if let (Ok(a), Ok(b)) = (name.parse::<IpAddr>(), host.parse::<IpAddr>()) {
        return a == b;
    }
    if let Some(suffix) = name.strip_prefix("*.").or_else(|| name.strip_prefix('.')) {
        return host.ends_with(&format!(".{suffix}"));
    }
    host == name || host.ends_with(&format!(".{name}"))
}

fn split_port(entry: &str) -> (&str, Option<u16>) {
    if let Some(rest) = entry.strip_prefix('[') {
        return match rest.split_once(']') {
            Some((h, p)) => (h, p.strip_prefix(':').and_then(|p| p.parse().ok())),
            None => (rest, None),
        };
    }
    match entry.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') => match p.parse() {
            Ok(p) => (h, Some(p)),
            Err(_) => (entry, None),
        },
        _ => (entry, None),
    }
}

fn in_cidr(ip: IpAddr, net: IpAddr, bits: u32) -> bool {
    match (ip, net) {
        (IpAddr::V4(ip), IpAddr::V4(net)) if bits <= 32 => {
            let mask = if bits == 0 {
                0
            } else {
                u32::MAX << (32 - bits)
            };
            u32::from(ip) & mask == u32::from(net) & mask
        }
        (IpAddr::V6(ip), IpAddr::V6(net)) if bits <= 128 => {
            let mask = if bits == 0 {
                0
            } else {
                u128::MAX << (128 - bits)
            };
            u128::from(ip) & mask == u128::from(net) & mask
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(no_proxy: &str) -> ProxyConfig {
        ProxyConfig::parse(Some("http://10.200.0.1:3128"), no_proxy).unwrap()
    }

    #[test]
    fn parses_proxy_urls() {
        let p = parse_proxy_url("http://10.200.0.1:3128").unwrap();
        assert_eq!(p.addr, "10.200.0.1:3128");
        let p = parse_proxy_url("http://u:p@proxy.local/").unwrap();
        assert_eq!(p.addr, "proxy.local:80");
        assert_eq!(p.credentials.as_deref(), Some("u:p"));
        assert_eq!(parse_proxy_url("proxy:8080").unwrap().addr, "proxy:8080");
        assert!(parse_proxy_url("socks5://proxy:1080").is_err());
    }

    #[test]
    fn no_proxy_rules() {
        let c = cfg("example.com, .internal,10.1.0.0/16,10.201.0.9,reg:5001");
        assert!(c.for_host("10.201.0.4", 5000).is_some());
        assert!(c.for_host("example.com", 443).is_none());
        assert!(c.for_host("a.example.com", 443).is_none());
        assert!(c.for_host("badexample.com", 443).is_some());
        assert!(c.for_host("internal", 443).is_some());
        assert!(c.for_host("x.internal", 443).is_none());
        assert!(c.for_host("10.1.200.3", 5000).is_none());
        assert!(c.for_host("10.201.0.9", 5000).is_none());
        assert!(c.for_host("reg", 5001).is_none());
        assert!(c.for_host("reg", 5000).is_some());
        assert!(c.for_host("localhost", 5000).is_none());
        assert!(c.for_host("127.0.0.1", 5000).is_none());
        assert!(cfg("*").for_host("anything", 1).is_none());
        let none = ProxyConfig::parse(None, "").unwrap();
        assert!(none.for_host("10.201.0.4", 5000).is_none());
    }
}
