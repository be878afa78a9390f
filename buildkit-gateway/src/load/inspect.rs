//! Reads every layer a load will unpack before anything is written
//! (threat model rows 27 and 28). containerd's applier inflates a gzip
//! layer without a bound and keeps hostile names inside the snapshot only
//! by resolving them there; the gateway refuses such layers outright:
//!
//! * the unpacked size of one load's layers is bounded (by the sandbox's
//!   content quota): a small gzip layer cannot fill the snapshot disk;
//! * the unpacked bytes must hash to the config's diff_id;
//! * entry names must be relative and without `..`, hard-link targets too,
//!   and no entry may go through a symlink the same layer made (the
//!   "symlink to /, then a file through it" layer);
//! * zstd layers are refused: the gateway cannot bound them. Compression
//!   is told by magic, as containerd's applier does, not by media type.
//!
//! The tar is read with the `tar` crate in raw mode, so long-name and PAX
//! headers are read here, bounded, rather than into unbounded buffers.

use std::collections::HashSet;
use std::io::Read;

use sha2::{Digest as _, Sha256};

use super::archive::{Archive, Loc};
use super::oci::Digest;
use super::plan::{Layer, Plan, Source};
use super::{invalid, LoadError};
use crate::quota::{human, Exceeded};

/// Longest name (long-name header or PAX `path`) a layer entry may have.
const MAX_NAME: u64 = 4096;
/// Largest PAX header read (xattrs of real layers are well below this).
const MAX_PAX: u64 = 1 << 20;

/// Checks the layers of every manifest the plan unpacks that the archive
/// carries; `limit` bounds the sum of their unpacked sizes.
pub fn layers(archive: &Archive, plan: &Plan, limit: u64) -> Result<(), LoadError> {
    let mut seen = HashSet::new();
    let mut budget = limit;
    for unpack in plan.images.iter().filter_map(|i| i.unpack.as_ref()) {
        for layer in &unpack.layers {
            if !seen.insert(layer.digest.clone()) {
                continue;
            }
            let Some(Source::Archive(loc)) = plan
                .blobs
                .iter()
                .find(|b| b.digest == layer.digest)
                .map(|b| &b.source)
            else {
                // Taken from the sandbox's own store: checked when it came in.
                continue;
            };
            let used = layer_ok(archive, *loc, layer, budget, limit)?;
            budget -= used;
        }
    }
    Ok(())
}

/// Checks one layer; returns its unpacked size.
fn layer_ok(
    archive: &Archive,
    loc: Loc,
    layer: &Layer,
    budget: u64,
    limit: u64,
) -> Result<u64, LoadError> {
    // containerd's applier picks the decompressor by magic, whatever the
    // media type says, so the gateway does too.
    let mut magic = [0u8; 4];
    let n = archive.head(loc, &mut magic)?;
    let magic = &magic[..n];
    let raw = archive.region(loc);
    let stream: Box<dyn Read + '_> = if magic.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        return Err(invalid(format!(
            "layer {} is zstd-compressed; only plain and gzip layers are unpacked",
            layer.digest
        )));
    } else if magic.starts_with(&[0x1f, 0x8b]) {
        Box::new(flate2::read::MultiGzDecoder::new(std::io::BufReader::new(
            raw,
        )))
    } else {
        Box::new(raw)
    };
    let mut counted = Counted {
        inner: stream,
        total: 0,
        hasher: Sha256::new(),
        budget,
    };
    let check = check_entries(&mut counted, &layer.digest);
    if counted.total > budget {
        return Err(LoadError::Quota(Exceeded(format!(
            "refusing image archive: layer {} unpacks to more than {}, the most one load may unpack (quota.content_bytes {})",
            layer.digest,
            human(budget),
            human(limit)
        ))));
    }
    check?;
    // Whatever follows the end-of-archive marker is unpacked by nobody,
    // but is part of the diff_id.
    std::io::copy(&mut counted, &mut std::io::sink()).map_err(|e| read_error(&layer.digest, e))?;
    if counted.total > budget {
        return Err(LoadError::Quota(Exceeded(format!(
            "refusing image archive: layer {} unpacks to more than {} (quota.content_bytes)",
            layer.digest,
            human(budget)
        ))));
    }
    let diff_id = Digest::from_sha256(counted.hasher.finalize().into());
    if diff_id != layer.diff_id {
        return Err(invalid(format!(
            "layer {} unpacks to {diff_id}, but the config lists diff_id {}",
            layer.digest, layer.diff_id
        )));
    }
    Ok(counted.total)
}

/// The decompressed stream, hashed and counted; it stops (with an error)
/// one byte past the budget.
struct Counted<R> {
    inner: R,
    total: u64,
    hasher: Sha256,
    budget: u64,
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.total > self.budget {
            return Err(std::io::Error::other("layer larger than allowed"));
        }
        let n = self.inner.read(buf)?;
        self.total += n as u64;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}

fn read_error(digest: &Digest, e: std::io::Error) -> LoadError {
    invalid(format!("layer {digest} cannot be read as a tar: {e}"))
}

/// Walks the layer's headers; see the module comment for what is refused.
fn check_entries(stream: &mut impl Read, digest: &Digest) -> Result<(), LoadError> {
    let mut tar = tar::Archive::new(stream);
    let entries = tar.entries().map_err(|e| read_error(digest, e))?.raw(true);
    let mut symlinks: HashSet<String> = HashSet::new();
    let mut long_name: Option<Vec<u8>> = None;
    let mut long_link: Option<Vec<u8>> = None;
    let mut pax_path: Option<Vec<u8>> = None;
    let mut pax_link: Option<Vec<u8>> = None;
    for entry in entries {
        let mut entry = entry.map_err(|e| read_error(digest, e))?;
        let kind = entry.header().entry_type();
        let size = entry.header().size().map_err(|e| read_error(digest, e))?;
        match kind {
            tar::EntryType::GNULongName | tar::EntryType::GNULongLink => {
                let data = read_bounded(&mut entry, size, MAX_NAME, digest, "long name")?;
                let value = data.split(|&b| b == 0).next().unwrap_or(&[]).to_vec();
                if kind == tar::EntryType::GNULongName {
                    long_name = Some(value);
                } else {
                    long_link = Some(value);
                }
                continue;
            }
            tar::EntryType::XHeader | tar::EntryType::XGlobalHeader => {
                let data = read_bounded(&mut entry, size, MAX_PAX, digest, "PAX header")?;
                for ext in tar::PaxExtensions::new(&data) {
                    let ext = ext.map_err(|e| read_error(digest, e))?;
                    match ext.key_bytes() {
                        b"path" => pax_path = Some(ext.value_bytes().to_vec()),
                        b"linkpath" => pax_link = Some(ext.value_bytes().to_vec()),
                        _ => {}
                    }
                }
                continue;
            }
            _ => {}
        }
        let name_bytes = pax_path
            .take()
            .or_else(|| long_name.take())
            .unwrap_or_else(|| entry.header().path_bytes().into_owned());
        let link_bytes = pax_link
            .take()
            .or_else(|| long_link.take())
            .or_else(|| entry.header().link_name_bytes().map(|l| l.into_owned()));
        let name = clean(&name_bytes, digest, "entry")?;
        let Some(name) = name else { continue };
        if let Some(through) = through_symlink(&name, &symlinks) {
            return Err(invalid(format!(
                "layer {digest}: entry {name} goes through symlink {through}"
            )));
        }
        match kind {
            tar::EntryType::Symlink => {
                symlinks.insert(name);
            }
            tar::EntryType::Link => {
                let target = link_bytes.unwrap_or_default();
                let Some(target) = clean(&target, digest, "hard link target")? else {
                    return Err(invalid(format!(
                        "layer {digest}: hard link {name} has no target"
                    )));
                };
                if let Some(through) = through_symlink(&target, &symlinks) {
                    return Err(invalid(format!(
                        "layer {digest}: hard link {name} points through symlink {through}"
                    )));
                }
                symlinks.remove(&name);
            }
            _ => {
                symlinks.remove(&name);
            }
        }
    }
    Ok(())
}

fn read_bounded(
    entry: &mut impl Read,
    size: u64,
    max: u64,
    digest: &Digest,
    what: &str,
) -> Result<Vec<u8>, LoadError> {
    if size > max {
        return Err(invalid(format!(
            "layer {digest}: {what} of {size} bytes (at most {max})"
        )));
    }
    let mut data = Vec::with_capacity(size as usize);
    entry
        .take(max)
        .read_to_end(&mut data)
        .map_err(|e| read_error(digest, e))?;
    Ok(data)
}

/// The name without `./` and `.` parts; absolute names and `..` refused.
/// `None` for the layer's root.
fn clean(bytes: &[u8], digest: &Digest, what: &str) -> Result<Option<String>, LoadError> {
    let name = String::from_utf8_lossy(bytes);
    if name.starts_with('/') {
        return Err(invalid(format!(
            "layer {digest}: {what} {name} is an absolute path"
        )));
    }
    let mut parts = Vec::new();
    for part in name.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                return Err(invalid(format!(
                    "layer {digest}: {what} {name} contains '..'"
                )))
            }
            p => parts.push(p),
        }
    }
    Ok(if parts.is_empty() {
        None
    } else {
        Some(parts.join("/"))
    })
}

/// The first proper ancestor of `name` that is a symlink of this layer.
fn through_symlink<'a>(name: &str, symlinks: &'a HashSet<String>) -> Option<&'a str> {
    let mut end = 0;
    while let Some(i) = name[end..].find('/') {
        end += i;
        if let Some(s) = symlinks.get(&name[..end]) {
            return Some(s);
        }
        end += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digest() -> Digest {
        Digest::of(b"layer")
    }

    /// A tar with the given (name, kind, link) entries; names written verbatim.
    fn layer(entries: &[(&str, tar::EntryType, &str)]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (name, kind, link) in entries {
            let mut h = tar::Header::new_gnu();
            let raw = &mut h.as_gnu_mut().unwrap().name;
            raw[..name.len()].copy_from_slice(name.as_bytes());
            let l = &mut h.as_gnu_mut().unwrap().linkname;
            l[..link.len()].copy_from_slice(link.as_bytes());
            h.set_entry_type(*kind);
            h.set_mode(0o644);
            let data: &[u8] = if *kind == tar::EntryType::Regular {
                b"x"
            } else {
                b""
            };
            h.set_size(data.len() as u64);
            h.set_cksum();
            b.append(&h, data).unwrap();
        }
        b.into_inner().unwrap()
    }

    fn check(bytes: &[u8]) -> Result<(), String> {
        check_entries(&mut &bytes[..], &digest()).map_err(|e| e.to_string())
    }

    use tar::EntryType::{Directory as D, Link as H, Regular as F, Symlink as S};

    #[test]
    fn accepts_ordinary_layers() {
        let ok = layer(&[
            ("bin/", D, ""),
            ("bin/busybox", F, ""),
            ("bin/sh", H, "bin/busybox"),
            ("etc/mtab", S, "/proc/mounts"),
            ("usr/lib", S, "../lib"),
            ("./etc/.wh.old", F, ""),
            ("etc/mtab", F, ""),
            ("etc/mtab/x", F, ""),
        ]);
        check(&ok).unwrap();
    }

    #[test]
    fn refuses_entries_through_a_symlink_of_the_layer() {
        let err = check(&layer(&[("escape", S, "/"), ("escape/tmp/pwned", F, "")])).unwrap_err();
        assert!(err.contains("goes through symlink escape"), "{err}");
        let err = check(&layer(&[("a/up", S, "../../.."), ("a/up/etc/x", D, "")])).unwrap_err();
        assert!(err.contains("through symlink a/up"), "{err}");
        let err = check(&layer(&[("root", S, "/"), ("h", H, "root/etc/shadow")])).unwrap_err();
        assert!(err.contains("points through symlink root"), "{err}");
    }

    #[test]
    fn refuses_parent_and_absolute_names() {
        let err = check(&layer(&[("../../tmp/x", F, "")])).unwrap_err();
        assert!(err.contains("'..'"), "{err}");
        let err = check(&layer(&[("/etc/x", F, "")])).unwrap_err();
        assert!(err.contains("absolute"), "{err}");
        let err = check(&layer(&[("h", H, "../../etc/shadow")])).unwrap_err();
        assert!(err.contains("'..'"), "{err}");
    }

    #[test]
    fn bounds_the_unpacked_size_while_reading() {
        let mut c = Counted {
            inner: std::io::repeat(0),
            total: 0,
            hasher: Sha256::new(),
            budget: 1 << 20,
        };
        let err = std::io::copy(&mut c, &mut std::io::sink()).unwrap_err();
        assert!(err.to_string().contains("larger than allowed"));
        assert!(c.total > 1 << 20 && c.total < 2 << 20, "{}", c.total);
    }

    #[test]
    fn symlink_ancestors_are_found() {
        let set: HashSet<String> = ["a/b".to_string()].into();
        assert_eq!(through_symlink("a/b/c", &set), Some("a/b"));
        assert_eq!(through_symlink("a/b", &set), None);
        assert_eq!(through_symlink("a/bc/d", &set), None);
    }
}
