//! Where a repository lives: the registry host a normalised reference's
//! domain stands for, the scheme used to reach it, and the key docker's
//! config.json files its credentials under.

use crate::refs::Reference;

/// docker.io's API host (the name itself serves no registry API).
const DOCKER_HUB_API: &str = "registry-1.docker.io";
/// The key docker's config.json uses for Docker Hub credentials.
pub const DOCKER_HUB_AUTH_KEY: &str = "https://index.docker.io/v1/";

/// A registry as berth talks to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registry {
    /// The domain as it appears in image names (`docker.io`, `10.0.0.1:5000`).
    pub domain: String,
    /// `host[:port]` of the API.
    pub host: String,
    /// Plain HTTP only for loopback registries, as docker (they are
    /// "insecure" by default there); everything else is HTTPS.
    pub plain_http: bool,
}

impl Registry {
    pub fn for_domain(domain: &str) -> Self {
        let host = match domain {
            "docker.io" | "index.docker.io" => DOCKER_HUB_API.to_string(),
            other => other.to_string(),
        };
        Self {
            domain: domain.to_string(),
            plain_http: is_loopback(&host),
            host,
        }
    }

    /// The base URL of the API: `https://host/v2/`.
    pub fn base_url(&self) -> String {
        format!(
            "{}://{}/v2/",
            if self.plain_http { "http" } else { "https" },
            self.host
        )
    }

    /// The config.json `auths` key berth writes for this registry.
    pub fn auth_key(&self) -> String {
        if self.domain == "docker.io" {
            DOCKER_HUB_AUTH_KEY.to_string()
        } else {
            self.domain.clone()
        }
    }

    /// The server as docker names it in `login` messages and errors.
    pub fn shown(&self) -> String {
        self.auth_key()
    }
}

/// A repository of a registry: `berth/busybox` on `10.201.0.4:5000`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Repository {
    pub registry: Registry,
    /// The path below the registry (`library/busybox`).
    pub path: String,
}

impl Repository {
    pub fn of(r: &Reference) -> Self {
        Self {
            registry: Registry::for_domain(&r.domain),
            path: r.path.clone(),
        }
    }

    pub fn url(&self, rest: &str) -> String {
        format!("{}{}/{rest}", self.registry.base_url(), self.path)
    }
}

/// Parses the SERVER argument of `login`/`logout` as docker does: an
/// optional scheme and path are dropped; Docker Hub's spellings are one
/// registry.
pub fn server_arg(server: &str) -> Registry {
    let s = server
        .strip_prefix("https://")
        .or_else(|| server.strip_prefix("http://"))
        .unwrap_or(server);
    let host = s.split('/').next().unwrap_or(s);
    match host {
        "" | "index.docker.io" | "docker.io" | "registry-1.docker.io" => {
            Registry::for_domain("docker.io")
        }
        h => Registry::for_domain(h),
    }
}

/// `localhost`, `127.0.0.0/8` and `::1`, with or without a port.
fn is_loopback(host: &str) -> bool {
    let name = match host.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or(rest),
        None => host.rsplit_once(':').map_or(host, |(h, _)| h),
    };
    if name == "localhost" {
        return true;
    }
    match name.parse::<std::net::IpAddr>() {
        Ok(ip) => ip.is_loopback(),
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repo(s: &str) -> Repository {
        Repository::of(&Reference::parse_normalized(s).unwrap())
    }

    #[test]
    fn maps_names_to_registries() {
        let r = repo("busybox");
        assert_eq!(r.registry.host, "registry-1.docker.io");
        assert_eq!(r.path, "library/busybox");
        assert_eq!(r.registry.auth_key(), DOCKER_HUB_AUTH_KEY);
        assert_eq!(
            r.url("manifests/latest"),
            "https://registry-1.docker.io/v2/library/busybox/manifests/latest"
        );
        let r = repo("10.201.0.4:5000/berth/busybox:latest");
        assert_eq!(r.registry.host, "10.201.0.4:5000");
        assert_eq!(r.path, "berth/busybox");
        assert!(!r.registry.plain_http);
        assert_eq!(r.registry.auth_key(), "10.201.0.4:5000");
        assert_eq!(r.registry.base_url(), "https://10.201.0.4:5000/v2/");
    }

    #[test]
    fn loopback_registries_are_plain_http() {
        for s in [
            "localhost:5000/a",
            "127.0.0.1:5000/a",
            "localhost/a",
            "127.3.2.1/a",
        ] {
            assert!(repo(s).registry.plain_http, "{s}");
        }
        for s in [
            "10.0.0.1:5000/a",
            "example.com/a",
            "localhost.example.com/a",
        ] {
            assert!(!repo(s).registry.plain_http, "{s}");
        }
    }

    #[test]
    fn login_server_arguments() {
        assert_eq!(server_arg("").domain, "docker.io");
        assert_eq!(
            server_arg("https://index.docker.io/v1/").domain,
            "docker.io"
        );
        assert_eq!(server_arg("https://10.0.0.1:5001").domain, "10.0.0.1:5001");
        assert_eq!(server_arg("10.0.0.1:5001/").domain, "10.0.0.1:5001");
    }
}
