//! Reading single files out of an image's layer tarballs, top layer first,
//! with overlay semantics (whiteouts and opaque directories), without
//! unpacking or mounting anything.

use std::collections::HashMap;
use std::io::{self, BufRead, BufReader, Read};

/// The largest file berth reads out of a layer (passwd and group files are
/// far smaller; this bounds memory against a hostile image).
const MAX_FILE: u64 = 16 << 20;
/// How many symbolic links one lookup follows.
const MAX_SYMLINKS: usize = 8;

const WHITEOUT_PREFIX: &str = ".wh.";
const OPAQUE_MARKER: &str = ".wh..wh..opq";

/// What one layer says about a path.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Entry {
    File(Vec<u8>),
    /// A hard link to another path of the same layer.
    HardLink(String),
    Symlink(String),
    /// Whited out, or not a regular file.
    Gone,
}

#[derive(Debug, Default)]
struct Scan {
    entries: HashMap<String, Entry>,
    /// Paths removed by a whiteout in this layer.
    whiteouts: Vec<String>,
    /// Directories whose lower-layer contents this layer hides.
    opaque: Vec<String>,
}

/// `./etc//passwd/` → `etc/passwd`, resolving `.` and `..` lexically.
pub fn clean(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for p in path.split('/') {
        match p {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    parts.join("/")
}

fn is_at_or_below(path: &str, dir: &str) -> bool {
    dir.is_empty() || path == dir || path.strip_prefix(dir).is_some_and(|r| r.starts_with('/'))
}

/// Wraps a layer stream in the decompressor its first bytes call for.
fn decompress<'a>(r: Box<dyn Read + Send + 'a>) -> io::Result<Box<dyn Read + Send + 'a>> {
    let mut br = BufReader::with_capacity(64 << 10, r);
    let head = br.fill_buf()?;
    if head.starts_with(&[0x1f, 0x8b]) {
        return Ok(Box::new(flate2::bufread::MultiGzDecoder::new(br)));
    }
    if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        return Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "zstd-compressed layers are not supported by berth yet",
        ));
    }
    Ok(Box::new(br))
}

/// Reads one layer, noting what it says about `wanted` (and stopping early
/// once every wanted path is a file of this layer).
fn scan(layer: Box<dyn Read + Send + '_>, wanted: &[String]) -> io::Result<Scan> {
    let mut out = Scan::default();
    let mut archive = tar::Archive::new(decompress(layer)?);
    for entry in archive.entries()? {
        let mut entry = entry?;
        let raw = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let path = clean(&raw);
        let (dir, base) = match path.rsplit_once('/') {
            Some((d, b)) => (d.to_string(), b.to_string()),
            None => (String::new(), path.clone()),
        };
        if base == OPAQUE_MARKER {
            out.opaque.push(dir);
            continue;
        }
        if let Some(name) = base.strip_prefix(WHITEOUT_PREFIX) {
            out.whiteouts.push(if dir.is_empty() {
                name.to_string()
            } else {
                format!("{dir}/{name}")
            });
            continue;
        }
        if !wanted.contains(&path) {
            continue;
        }
        let kind = entry.header().entry_type();
        let e = if kind.is_file() {
            if entry.size() > MAX_FILE {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("/{path} is larger than {MAX_FILE} bytes"),
                ));
            }
            let mut data = Vec::with_capacity(entry.size() as usize);
            entry.read_to_end(&mut data)?;
            Entry::File(data)
        } else if kind.is_hard_link() || kind.is_symlink() {
            let target = entry
                .link_name_bytes()
                .map(|b| String::from_utf8_lossy(&b).into_owned())
                .unwrap_or_default();
            if kind.is_hard_link() {
                Entry::HardLink(clean(&target))
            } else {
                Entry::Symlink(target)
            }
        } else {
            Entry::Gone
        };
        out.entries.insert(path, e);
        if wanted
            .iter()
            .all(|w| matches!(out.entries.get(w), Some(Entry::File(_))))
        {
            break;
        }
    }
    Ok(out)
}

/// Where a symlink at `path` pointing to `target` leads, relative to the root.
fn follow(path: &str, target: &str) -> String {
    if target.starts_with('/') {
        return clean(target);
    }
    let dir = path.rsplit_once('/').map_or("", |(d, _)| d);
    clean(&format!("{dir}/{target}"))
}

/// Finds `paths` (absolute or relative to the root) in a stack of
/// `layer_count` layers, opened by index with `open` (0 is the bottom).
/// Returns each file's contents, or `None` when the merged tree has no
/// regular file there.
pub fn find_files<F>(
    layer_count: usize,
    open: &mut F,
    paths: &[&str],
) -> io::Result<Vec<Option<Vec<u8>>>>
where
    F: FnMut(usize) -> io::Result<Box<dyn Read + Send>>,
{
    find(
        layer_count,
        open,
        &paths.iter().map(|p| clean(p)).collect::<Vec<_>>(),
        0,
    )
}

fn find<F>(
    layer_count: usize,
    open: &mut F,
    paths: &[String],
    depth: usize,
) -> io::Result<Vec<Option<Vec<u8>>>>
where
    F: FnMut(usize) -> io::Result<Box<dyn Read + Send>>,
{
    let mut result: Vec<Option<Option<Vec<u8>>>> = vec![None; paths.len()];
    for layer in (0..layer_count).rev() {
        let pending: Vec<String> = paths
            .iter()
            .zip(&result)
            .filter(|(_, r)| r.is_none())
            .map(|(p, _)| p.clone())
            .collect();
        if pending.is_empty() {
            break;
        }
        let s = scan(open(layer)?, &pending)?;
        let mut links: Vec<(usize, String)> = Vec::new();
        for (i, p) in paths.iter().enumerate() {
            if result[i].is_some() {
                continue;
            }
            match s.entries.get(p) {
                Some(Entry::File(data)) => result[i] = Some(Some(data.clone())),
                Some(Entry::Gone) => result[i] = Some(None),
                Some(Entry::HardLink(target)) => links.push((i, target.clone())),
                Some(Entry::Symlink(target)) => {
                    if depth >= MAX_SYMLINKS {
                        return Err(io::Error::new(
                            io::ErrorKind::InvalidData,
                            format!("too many levels of symbolic links at /{p}"),
                        ));
                    }
                    let next = follow(p, target);
                    result[i] = Some(find(layer_count, open, &[next], depth + 1)?.pop().flatten());
                }
                None => {
                    // A whiteout of the path or a parent, or an opaque parent,
                    // hides every lower layer.
                    let hidden = s.whiteouts.iter().any(|w| is_at_or_below(p, w))
                        || s.opaque.iter().any(|d| is_at_or_below(p, d) && p != d);
                    if hidden {
                        result[i] = Some(None);
                    }
                }
            }
        }
        if !links.is_empty() {
            // A hard link's target is in the same layer: read it again for those.
            let targets: Vec<String> = links.iter().map(|(_, t)| t.clone()).collect();
            let again = scan(open(layer)?, &targets)?;
            for (i, t) in links {
                result[i] = Some(match again.entries.get(&t) {
                    Some(Entry::File(data)) => Some(data.clone()),
                    _ => None,
                });
            }
        }
    }
    Ok(result.into_iter().map(Option::flatten).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    enum E<'a> {
        File(&'a str, &'a [u8]),
        Dir(&'a str),
        Symlink(&'a str, &'a str),
        HardLink(&'a str, &'a str),
    }

    fn tar_of(entries: &[E], gzip: bool) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for e in entries {
            let mut h = tar::Header::new_gnu();
            h.set_mode(0o644);
            match e {
                E::File(p, data) => {
                    h.set_size(data.len() as u64);
                    h.set_entry_type(tar::EntryType::Regular);
                    b.append_data(&mut h, p, *data).unwrap();
                }
                E::Dir(p) => {
                    h.set_size(0);
                    h.set_entry_type(tar::EntryType::Directory);
                    b.append_data(&mut h, p, io::empty()).unwrap();
                }
                E::Symlink(p, t) => {
                    h.set_size(0);
                    h.set_entry_type(tar::EntryType::Symlink);
                    b.append_link(&mut h, p, t).unwrap();
                }
                E::HardLink(p, t) => {
                    h.set_size(0);
                    h.set_entry_type(tar::EntryType::Link);
                    b.append_link(&mut h, p, t).unwrap();
                }
            }
        }
        let raw = b.into_inner().unwrap();
        if !gzip {
            return raw;
        }
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&raw).unwrap();
        gz.finish().unwrap()
    }

    fn lookup(layers: &[Vec<u8>], paths: &[&str]) -> Vec<Option<String>> {
        let mut open = |i: usize| -> io::Result<Box<dyn Read + Send>> {
            Ok(Box::new(io::Cursor::new(layers[i].clone())))
        };
        find_files(layers.len(), &mut open, paths)
            .unwrap()
            .into_iter()
            .map(|f| f.map(|b| String::from_utf8(b).unwrap()))
            .collect()
    }

    #[test]
    fn upper_layers_win_and_gzip_is_detected() {
        let base = tar_of(
            &[
                E::Dir("etc"),
                E::File("etc/passwd", b"base"),
                E::File("etc/group", b"g0"),
            ],
            true,
        );
        let top = tar_of(&[E::File("./etc/passwd", b"top")], false);
        assert_eq!(
            lookup(&[base.clone(), top], &["/etc/passwd", "/etc/group"]),
            vec![Some("top".into()), Some("g0".into())]
        );
        assert_eq!(lookup(&[base], &["/etc/shadow"]), vec![None]);
    }

    #[test]
    fn whiteouts_and_opaque_directories_hide_lower_files() {
        let base = tar_of(
            &[E::File("etc/passwd", b"base"), E::File("etc/group", b"g0")],
            true,
        );
        let removed = tar_of(&[E::File("etc/.wh.passwd", b"")], false);
        assert_eq!(
            lookup(&[base.clone(), removed], &["/etc/passwd", "/etc/group"]),
            vec![None, Some("g0".into())]
        );
        let opaque = tar_of(
            &[
                E::Dir("etc"),
                E::File("etc/.wh..wh..opq", b""),
                E::File("etc/group", b"g1"),
            ],
            false,
        );
        assert_eq!(
            lookup(&[base.clone(), opaque], &["/etc/passwd", "/etc/group"]),
            vec![None, Some("g1".into())]
        );
        let parent_gone = tar_of(&[E::File(".wh.etc", b"")], false);
        assert_eq!(lookup(&[base, parent_gone], &["/etc/group"]), vec![None]);
    }

    #[test]
    fn links_are_followed() {
        let base = tar_of(
            &[
                E::File("usr/share/passwd.real", b"real"),
                E::Symlink("etc/passwd", "../usr/share/passwd.real"),
                E::File("lib/group.orig", b"grp"),
                E::HardLink("etc/group", "lib/group.orig"),
                E::Dir("etc/dir"),
                E::Symlink("etc/loop", "/etc/loop"),
            ],
            false,
        );
        assert_eq!(
            lookup(
                std::slice::from_ref(&base),
                &["/etc/passwd", "/etc/group", "/etc/dir"]
            ),
            vec![Some("real".into()), Some("grp".into()), None]
        );
        let mut open = |_: usize| -> io::Result<Box<dyn Read + Send>> {
            Ok(Box::new(io::Cursor::new(base.clone())))
        };
        assert!(find_files(1, &mut open, &["/etc/loop"]).is_err());
    }

    #[test]
    fn cleans_paths() {
        assert_eq!(clean("./etc//passwd/"), "etc/passwd");
        assert_eq!(clean("/a/b/../c"), "a/c");
        assert_eq!(follow("etc/passwd", "../x/p"), "x/p");
        assert_eq!(follow("etc/passwd", "/abs"), "abs");
    }
}
