//! What the fuzz targets share: the repository's policies, a sandbox with a
//! real (scratch) workspace, and a scratch directory for inputs that the
//! gateway reads from a file (`docker load` archives are spooled to disk).

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use berth_gateway::config::Config;
use berth_gateway::policy::PolicyEngine;
use berth_gateway::sandbox::Sandbox;

/// One scratch directory per fuzzing process, on tmpfs when there is one:
/// inputs are rewritten there on every run.
pub fn scratch() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        // fixtures/fuzz/run.sh gives each target its own base and removes
        // it afterwards (fork mode starts many processes).
        let base = match std::env::var_os("BERTH_FUZZ_SCRATCH") {
            Some(dir) => PathBuf::from(dir),
            None if Path::new("/dev/shm").is_dir() => PathBuf::from("/dev/shm"),
            None => std::env::temp_dir(),
        };
        let dir = base.join(format!("berth-fuzz-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("workspace/data/sub")).expect("scratch dir");
        std::fs::write(dir.join("workspace/file"), b"x").expect("scratch file");
        let _ = std::os::unix::fs::symlink("/etc", dir.join("workspace/link"));
        dir
    })
}

/// Writes `data` to the scratch input file and returns its path.
pub fn input_file(data: &[u8]) -> PathBuf {
    let path = scratch().join("input");
    let mut f = File::create(&path).expect("input file");
    f.write_all(data).expect("input written");
    path
}

/// The repository's policies (`policies/`), loaded once.
pub fn engine() -> &'static PolicyEngine {
    static ENGINE: OnceLock<PolicyEngine> = OnceLock::new();
    ENGINE.get_or_init(|| {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../policies");
        PolicyEngine::load(&dir).expect("policies/ loads")
    })
}

/// A sandbox as the gateway makes one from its config file, whose volume
/// root is the scratch workspace (`data/`, `file`, `link -> /etc`). Built
/// through `Config` so that new optional settings need no change here.
pub fn sandbox() -> &'static Sandbox {
    static SB: OnceLock<Sandbox> = OnceLock::new();
    SB.get_or_init(|| {
        let cfg: Config = serde_json::from_value(serde_json::json!({
            "namespace": "berth-sandbox",
            "containerd_socket": "/nonexistent/containerd.sock",
            "listen_containerd": "/nonexistent/gateway.sock",
            "state_dir": scratch().join("state"),
            "policy_dir": Path::new(env!("CARGO_MANIFEST_DIR")).join("../../policies"),
            "netns_path": "/run/netns/berth-sandbox",
            "proxy_url": "http://10.200.0.1:3128",
            "volume_roots": [scratch().join("workspace")],
            "snapshotter": "overlayfs",
        }))
        .expect("the fuzz sandbox's config");
        Sandbox::from_config(&cfg)
    })
}

/// Rewrites the checksum of each tar header in `data`, walking headers the
/// way a tar reader does (sizes in octal), so mutated headers get past the
/// checksum and reach the code behind it. Stops at the first block it
/// cannot walk past.
pub fn fix_tar_checksums(data: &mut [u8]) {
    let mut pos = 0usize;
    while pos + 512 <= data.len() {
        let block = &mut data[pos..pos + 512];
        if block.iter().all(|&b| b == 0) {
            return;
        }
        block[148..156].fill(b' ');
        let sum: u32 = block.iter().map(|&b| u32::from(b)).sum();
        let text = format!("{sum:06o}\0 ");
        block[148..156].copy_from_slice(text.as_bytes());
        let size_text: String = block[124..136]
            .iter()
            .take_while(|&&b| (b'0'..=b'7').contains(&b))
            .map(|&b| char::from(b))
            .collect();
        let size_text = if size_text.is_empty() { "0" } else { size_text.as_str() };
        let Ok(size) = u64::from_str_radix(size_text, 8) else {
            return;
        };
        let Some(next) = usize::try_from(size)
            .ok()
            .and_then(|s| s.checked_add(511))
            .map(|s| s / 512 * 512)
            .and_then(|s| s.checked_add(pos + 512))
        else {
            return;
        };
        pos = next;
    }
}

/// `sha256:<hex>` of `data`.
pub fn sha256(data: &[u8]) -> String {
    use sha2::Digest as _;
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(data)))
}

/// Packs a `load_plan` input into a tar archive.
///
/// The input is entries separated by `\n--\n`; each is a name line and
/// the content. The name `blob` stores the content under
/// `blobs/sha256/<its digest>` and numbers it (0, 1, …); in any content
/// and name, `{dN}`, `{hN}` and `{sN}` become blob N's digest, hex and
/// size (blobs defined earlier only). `layer` and `layergz` are blobs
/// whose content is a tar (its header checksums fixed up first; `layergz`
/// then gzips it), and `{uN}` is blob N's uncompressed digest (its
/// diff_id). An input starting with `gz\n` is
/// gzip-compressed after packing. A name the tar crate refuses to write
/// (absolute, `..`) goes into a PAX header instead, so it still reaches
/// the reader.
pub fn plan_archive(data: &[u8]) -> Vec<u8> {
    let (compress, data) = match data.strip_prefix(b"gz\n") {
        Some(rest) => (true, rest),
        None => (false, data),
    };
    let mut blobs: Vec<Blob> = Vec::new();
    let mut builder = tar::Builder::new(Vec::new());
    for section in split(data, b"\n--\n") {
        let (name, content) = match section.iter().position(|&b| b == b'\n') {
            Some(i) => (&section[..i], &section[i + 1..]),
            None => (section, &[][..]),
        };
        let mut content = fill(content, &blobs);
        let name = if matches!(name, b"blob" | b"layer" | b"layergz") {
            let mut uncompressed = String::new();
            if name != b"blob" {
                fix_tar_checksums(&mut content);
                uncompressed = sha256(&content);
                if name == b"layergz" {
                    content = gzip(&content);
                }
            }
            let digest = sha256(&content);
            let hex = digest["sha256:".len()..].to_string();
            if uncompressed.is_empty() {
                uncompressed = digest;
            }
            let name = format!("blobs/sha256/{hex}");
            blobs.push(Blob {
                hex,
                size: content.len(),
                uncompressed,
            });
            name
        } else {
            String::from_utf8_lossy(&fill(name, &blobs)).into_owned()
        };
        let mut header = file_header(content.len());
        if builder
            .append_data(&mut header, &name, content.as_slice())
            .is_err()
        {
            let _ = builder.append_pax_extensions([("path", name.as_bytes())]);
            let mut header = file_header(content.len());
            let _ = header.set_path("x");
            header.set_cksum();
            let _ = builder.append(&header, content.as_slice());
        }
    }
    let tar = builder.into_inner().unwrap_or_default();
    if compress {
        gzip(&tar)
    } else {
        tar
    }
}

/// A blob `plan_archive` stored, for the placeholders of later entries.
struct Blob {
    hex: String,
    size: usize,
    /// `sha256:…` of the uncompressed content (the diff_id of a layer).
    uncompressed: String,
}

fn gzip(data: &[u8]) -> Vec<u8> {
    use std::io::Write as _;
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let _ = enc.write_all(data);
    enc.finish().unwrap_or_default()
}

fn file_header(size: usize) -> tar::Header {
    let mut header = tar::Header::new_ustar();
    header.set_size(size as u64);
    header.set_mode(0o644);
    header.set_entry_type(tar::EntryType::Regular);
    header
}

fn split<'a>(data: &'a [u8], sep: &[u8]) -> Vec<&'a [u8]> {
    let mut out = Vec::new();
    let mut rest = data;
    while let Some(i) = rest.windows(sep.len()).position(|w| w == sep) {
        out.push(&rest[..i]);
        rest = &rest[i + sep.len()..];
    }
    out.push(rest);
    out
}

/// Replaces `{dN}`, `{hN}`, `{sN}` and `{uN}` with blob N's digest, hex,
/// size and uncompressed digest.
fn fill(content: &[u8], blobs: &[Blob]) -> Vec<u8> {
    let mut out = Vec::with_capacity(content.len());
    let mut i = 0;
    while i < content.len() {
        if let Some((text, used)) = placeholder(&content[i..], blobs) {
            out.extend_from_slice(text.as_bytes());
            i += used;
        } else {
            out.push(content[i]);
            i += 1;
        }
    }
    out
}

/// `{dN}` / `{hN}` / `{sN}` / `{uN}` at the start of `s`: its text and length.
fn placeholder(s: &[u8], blobs: &[Blob]) -> Option<(String, usize)> {
    if s.first() != Some(&b'{') {
        return None;
    }
    let end = s.iter().take(8).position(|&b| b == b'}')?;
    let kind = *s.get(1)?;
    let n: usize = std::str::from_utf8(s.get(2..end)?).ok()?.parse().ok()?;
    let blob = blobs.get(n)?;
    let text = match kind {
        b'd' => format!("sha256:{}", blob.hex),
        b'h' => blob.hex.clone(),
        b's' => blob.size.to_string(),
        b'u' => blob.uncompressed.clone(),
        _ => return None,
    };
    Some((text, end + 1))
}
