//! TLS towards registries: rustls with the system's CA bundle plus the CAs
//! docker trusts per registry (`certs.d/<host:port>/*.crt` under
//! `$DOCKER_CONFIG` and `/etc/docker`), so a registry with a private CA
//! works as it does with docker.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use rustls::{ClientConfig, RootCertStore};

use super::config::docker_config_dir;

/// The system bundle on Debian; other bundles are found through
/// `SSL_CERT_FILE` by nobody here, so one path is enough.
const SYSTEM_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";
/// docker daemon's per-registry CA directory.
const SYSTEM_CERTS_D: &str = "/etc/docker/certs.d";

/// One rustls config per registry host, built on first use.
#[derive(Default)]
pub struct TlsConfigs {
    by_host: Mutex<HashMap<String, Arc<ClientConfig>>>,
}

impl TlsConfigs {
    /// The config for `host:port` (the certs.d directory name).
    pub fn for_host(&self, hostport: &str) -> Result<Arc<ClientConfig>, String> {
        let mut map = self.by_host.lock().expect("tls config lock");
        if let Some(c) = map.get(hostport) {
            return Ok(c.clone());
        }
        let mut dirs = Vec::new();
        if let Some(d) = docker_config_dir() {
            dirs.push(d.join("certs.d").join(hostport));
        }
        dirs.push(Path::new(SYSTEM_CERTS_D).join(hostport));
        let config = Arc::new(build(Path::new(SYSTEM_BUNDLE), &dirs)?);
        map.insert(hostport.to_string(), config.clone());
        Ok(config)
    }
}

/// A client config trusting the bundle (if present) and every `*.crt` in
/// `dirs`. No trusted CA at all is an error: nothing could be verified.
pub fn build(bundle: &Path, dirs: &[PathBuf]) -> Result<ClientConfig, String> {
    let mut roots = RootCertStore::empty();
    if bundle.exists() {
        add_pem_file(&mut roots, bundle)?;
    }
    for dir in dirs {
        let Ok(entries) = std::fs::read_dir(dir) else {
            continue;
        };
        let mut files: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "crt"))
            .collect();
        files.sort();
        for f in files {
            add_pem_file(&mut roots, &f)?;
        }
    }
    if roots.is_empty() {
        return Err(format!(
            "no trusted CA certificates: {} is missing",
            bundle.display()
        ));
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("tls setup: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

fn add_pem_file(roots: &mut RootCertStore, path: &Path) -> Result<(), String> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| format!("reading CA certificates {}: {e}", path.display()))?;
    for cert in certs {
        let cert = cert.map_err(|e| format!("reading CA certificates {}: {e}", path.display()))?;
        // A bundle may hold certificates rustls cannot use; skip those as
        // Go's x509 pool does.
        let _ = roots.add(cert);
    }
    Ok(())
}
