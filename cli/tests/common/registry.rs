//! The stack's registries for pull/push/login tests: their addresses as the
//! sandbox reaches them (through the proxy), the fixture digests and test
//! credentials, image cleanup, and a large test image pushed from the host
//! side with the stack's own fill script.

use std::path::Path;
use std::process::Command;

use super::{docker, real_ctr, repo_root, run, Input, COMMAND_TIMEOUT};

/// The open registry (anonymous pull and push).
pub const REGISTRY: &str = "10.201.0.4:5000";
/// The basic-auth registry.
pub const AUTH_REGISTRY: &str = "10.201.0.4:5001";
/// The open registry on an address the proxy refuses.
pub const DENIED_REGISTRY: &str = "10.201.0.5:5000";
/// The registries' CA (host side).
pub const REGISTRY_CA: &str = "/var/lib/berth-stack/registry/ca.crt";
/// Tags and digests of the fixture images.
pub const REGISTRY_FIXTURES: &str = "/var/lib/berth-stack/registry/fixtures.json";
/// `BERTH_TEST_REGISTRY_USER=…` and `BERTH_TEST_REGISTRY_PASSWORD=…`.
pub const REGISTRY_CREDENTIALS: &str = "/var/lib/berth-stack/registry/test-credentials";

/// The digest a fixture image's tag points to (`berth/busybox:latest` on the open registry).
pub fn fixture_digest(image: &str) -> String {
    let text = std::fs::read_to_string(REGISTRY_FIXTURES)
        .unwrap_or_else(|e| panic!("reading {REGISTRY_FIXTURES}: {e}"));
    let v: serde_json::Value = serde_json::from_str(&text).expect("fixtures.json is JSON");
    v["images"][image]
        .as_str()
        .unwrap_or_else(|| panic!("{image} is not in {REGISTRY_FIXTURES}"))
        .to_string()
}

/// The test user and password of the auth registry.
pub fn registry_credentials() -> (String, String) {
    let text = std::fs::read_to_string(REGISTRY_CREDENTIALS)
        .unwrap_or_else(|e| panic!("reading {REGISTRY_CREDENTIALS}: {e}"));
    let get = |key: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{key}=")))
            .map(|v| v.trim().trim_matches('\'').trim_matches('"').to_string())
            .unwrap_or_else(|| panic!("{key} is not in {REGISTRY_CREDENTIALS}"))
    };
    (
        get("BERTH_TEST_REGISTRY_USER"),
        get("BERTH_TEST_REGISTRY_PASSWORD"),
    )
}

/// Whether the sandbox's namespace holds an image record named `name`
/// (full name), as containerd itself says.
pub fn image_exists(name: &str) -> bool {
    let out = real_ctr(&["images", "ls", "-q"]);
    out.ok();
    out.stdout.lines().any(|l| l.trim() == name)
}

/// Removes images by full name: `docker rmi` as the agent, then the real
/// containerd for whatever is left (a test must not leave images behind).
pub fn remove_images(names: &[&str]) {
    for name in names {
        let _ = docker(&["rmi", "-f", name]);
        if image_exists(name) {
            let _ = real_ctr(&["images", "rm", "--sync", name]);
        }
    }
}

/// Removes the listed images when dropped, even when the test panics.
pub struct ImageCleanup(pub Vec<String>);

impl Drop for ImageCleanup {
    fn drop(&mut self) {
        let names: Vec<&str> = self.0.iter().map(String::as_str).collect();
        remove_images(&names);
    }
}

/// Pushes `repo:latest` to the open registry from the host side: one layer
/// of `mib` MiB of fresh random bytes (never in the sandbox yet), for
/// pulls that must take a while. Returns the manifest digest.
pub fn push_large_image(repo: &str, mib: usize) -> String {
    let script = r#"
import gzip, importlib.util, io, os, sys, tarfile
spec = importlib.util.spec_from_file_location("fill", sys.argv[1])
m = importlib.util.module_from_spec(spec)
spec.loader.exec_module(m)
reg = m.Registry(sys.argv[2], sys.argv[3])
repo, mib, arch = sys.argv[4], int(sys.argv[5]), sys.argv[6]
data = os.urandom(mib << 20)
buf = io.BytesIO()
with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
    ti = tarfile.TarInfo("big")
    ti.size = len(data)
    ti.mode = 0o644
    t.addfile(ti, io.BytesIO(data))
tar = buf.getvalue()
layer = gzip.compress(tar, compresslevel=1, mtime=0)
config = m.canonical({"architecture": arch, "os": "linux", "config": {},
    "rootfs": {"type": "layers", "diff_ids": [m.digest_of(tar)]}})
manifest = m.canonical({"schemaVersion": 2, "mediaType": m.OCI_MANIFEST,
    "config": {"mediaType": m.OCI_CONFIG, "digest": m.digest_of(config), "size": len(config)},
    "layers": [{"mediaType": m.OCI_LAYER, "digest": m.digest_of(layer), "size": len(layer)}]})
reg.push_blob(repo, m.digest_of(config), config)
reg.push_blob(repo, m.digest_of(layer), layer)
reg.push_manifest(repo, "latest", manifest, m.OCI_MANIFEST)
print(m.digest_of(manifest))
"#;
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    };
    let fill = repo_root().join("fixtures/stack/registry-fill.py");
    assert!(Path::new(&fill).exists(), "{} is missing", fill.display());
    let mut cmd = Command::new("/usr/bin/python3");
    cmd.arg("-c")
        .arg(script)
        .arg(&fill)
        .arg(REGISTRY)
        .arg(REGISTRY_CA)
        .arg(repo)
        .arg(mib.to_string())
        .arg(arch);
    let out = run(cmd, Input::Null, COMMAND_TIMEOUT);
    out.ok();
    out.stdout.trim().to_string()
}
