//! The archive as a read-only name table.
//!
//! Nothing is ever extracted: entries stay inside the (possibly decompressed)
//! tar file and are read by offset. Names are cleaned and checked once; links
//! are aliases resolved only against this table, never on a filesystem.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::Path;

use sha2::{Digest as _, Sha256};

use super::oci::Digest;
use super::tar::{Kind, Scanner};
use super::{invalid, LoadError, MAX_ARCHIVE_BYTES, MAX_ENTRIES, MAX_JSON_BYTES};

/// Where an entry's bytes are in the tar file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Loc {
    pub offset: u64,
    pub size: u64,
}

#[derive(Debug)]
enum Node {
    File(Loc),
    Dir,
    /// Target as written, relative to the link's directory.
    Symlink(String),
    /// Target as written, relative to the archive root.
    Hardlink(String),
}

/// How deep link chains may go before the archive is refused.
const MAX_LINK_HOPS: usize = 16;
const READ_CHUNK: usize = 1 << 20;

pub struct Archive {
    /// The tar itself: the spooled file, or an unlinked temporary file with
    /// the decompressed bytes.
    file: File,
    entries: HashMap<String, Node>,
    pub compressed: bool,
}

impl Archive {
    /// Opens the spooled archive, decompressing gzip (detected by magic) into
    /// an unlinked file beside it, and reads its name table.
    pub fn open(path: &Path) -> Result<Self, LoadError> {
        Self::open_bounded(path, MAX_ARCHIVE_BYTES)
    }

    /// `open`, with gzip decompression stopped past `limit` bytes (at most
    /// `MAX_ARCHIVE_BYTES`): a load gets the sandbox's content quota.
    pub fn open_bounded(path: &Path, limit: u64) -> Result<Self, LoadError> {
        let limit = limit.min(MAX_ARCHIVE_BYTES);
        let mut file = File::open(path)?;
        let mut magic = [0u8; 6];
        let n = read_up_to(&file, &mut magic, 0)?;
        let magic = &magic[..n];
        let compressed = if magic.starts_with(&[0x1f, 0x8b]) {
            let dir = path
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or(Path::new("."));
            file = gunzip_to_unlinked(&file, dir, limit)?;
            true
        } else if magic.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            return Err(invalid(
                "zstd-compressed archives are not supported (use plain tar or gzip)",
            ));
        } else if magic.starts_with(b"BZh") {
            return Err(invalid(
                "bzip2-compressed archives are not supported (use plain tar or gzip)",
            ));
        } else if magic.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0]) {
            return Err(invalid(
                "xz-compressed archives are not supported (use plain tar or gzip)",
            ));
        } else {
            false
        };
        Self::scan(file, compressed)
    }

    fn scan(file: File, compressed: bool) -> Result<Self, LoadError> {
        let len = file.metadata()?.len();
        if len > MAX_ARCHIVE_BYTES {
            return Err(invalid(format!(
                "archive is larger than {}",
                human(MAX_ARCHIVE_BYTES)
            )));
        }
        if len == 0 {
            return Err(invalid("archive is empty"));
        }
        let mut entries = HashMap::new();
        let mut scanner = Scanner::new(&file, len);
        while let Some(raw) = scanner.next_entry()? {
            let shown = String::from_utf8_lossy(&raw.name).into_owned();
            let name = String::from_utf8(raw.name)
                .map_err(|_| invalid(format!("entry {shown} is not UTF-8")))?;
            let Some(name) = clean_name(&name)? else {
                // `./` (the root itself) carries nothing.
                if raw.kind == Kind::Dir {
                    continue;
                }
                return Err(invalid(format!("entry {shown:?} has an empty name")));
            };
            let node = match raw.kind {
                Kind::File => Node::File(Loc {
                    offset: raw.offset,
                    size: raw.size,
                }),
                Kind::Dir => Node::Dir,
                Kind::Symlink | Kind::Hardlink => {
                    let target = String::from_utf8(raw.link).map_err(|_| {
                        invalid(format!("link {name} has a target that is not UTF-8"))
                    })?;
                    check_link(&name, &target, raw.kind)?;
                    if raw.kind == Kind::Symlink {
                        Node::Symlink(target)
                    } else {
                        Node::Hardlink(target)
                    }
                }
            };
            if entries.len() >= MAX_ENTRIES {
                return Err(invalid(format!("more than {MAX_ENTRIES} entries")));
            }
            match entries.get(&name) {
                None => {
                    entries.insert(name, node);
                }
                // Repeated directory entries are harmless; anything else
                // would make the archive mean different things to different
                // readers (tar keeps the last one).
                Some(Node::Dir) if matches!(node, Node::Dir) => {}
                Some(_) => return Err(invalid(format!("entry {name} appears twice"))),
            }
        }
        Ok(Self {
            file,
            entries,
            compressed,
        })
    }

    /// Finds the regular file `name` refers to, following links inside the
    /// archive. `Ok(None)` when nothing by that name exists.
    pub fn find(&self, name: &str) -> Result<Option<Loc>, LoadError> {
        let Some(clean) = clean_name(name)? else {
            return Ok(None);
        };
        let mut parts: Vec<String> = clean.split('/').map(str::to_string).collect();
        let mut hops = 0;
        'restart: loop {
            for i in 0..parts.len() {
                let prefix = parts[..=i].join("/");
                let last = i + 1 == parts.len();
                let target = match self.entries.get(&prefix) {
                    None | Some(Node::Dir) if !last => continue,
                    None | Some(Node::Dir) => return Ok(None),
                    Some(Node::File(loc)) if last => return Ok(Some(*loc)),
                    Some(Node::File(_)) | Some(Node::Hardlink(_)) if !last => {
                        return Err(invalid(format!(
                            "{name} goes through {prefix}, which is not a directory"
                        )))
                    }
                    Some(Node::File(_)) => unreachable!("handled above"),
                    Some(Node::Hardlink(target)) => resolve(&[], target, name)?,
                    Some(Node::Symlink(target)) => resolve(&parts[..i], target, name)?,
                };
                hops += 1;
                if hops > MAX_LINK_HOPS {
                    return Err(invalid(format!("too many links resolving {name}")));
                }
                let mut next = target;
                next.extend_from_slice(&parts[i + 1..]);
                parts = next;
                if parts.is_empty() {
                    return Err(invalid(format!("{name} resolves to the archive root")));
                }
                continue 'restart;
            }
            unreachable!("the loop returns or restarts on the last part");
        }
    }

    /// Reads a small document (index.json, a manifest, a config), bounded by
    /// `MAX_JSON_BYTES` so a hostile archive cannot make the gateway buffer a
    /// layer. `what` names it in errors.
    pub fn read_small(&self, loc: Loc, what: &str) -> Result<Vec<u8>, LoadError> {
        if loc.size > MAX_JSON_BYTES {
            return Err(invalid(format!(
                "{what} is larger than {}",
                human(MAX_JSON_BYTES)
            )));
        }
        let mut buf = vec![0u8; loc.size as usize];
        self.file.read_exact_at(&mut buf, loc.offset)?;
        Ok(buf)
    }

    /// An entry's bytes as a reader (positioned reads, so regions can be
    /// read side by side).
    pub fn region(&self, loc: Loc) -> Region<'_> {
        Region {
            file: &self.file,
            pos: loc.offset,
            end: loc.offset + loc.size,
        }
    }

    /// Reads the first bytes of an entry (for compression magic).
    pub fn head(&self, loc: Loc, buf: &mut [u8]) -> Result<usize, LoadError> {
        let want = buf.len().min(loc.size as usize);
        self.file.read_exact_at(&mut buf[..want], loc.offset)?;
        Ok(want)
    }

    /// The sha256 of an entry's bytes.
    pub fn digest_of(&self, loc: Loc) -> Result<Digest, LoadError> {
        let mut hasher = Sha256::new();
        self.for_each_chunk(loc, |chunk| {
            hasher.update(chunk);
            Ok(())
        })?;
        Ok(Digest::from_sha256(hasher.finalize().into()))
    }

    /// Streams an entry's bytes to `sink` in chunks and checks them against
    /// `expected` before returning: a caller commits only after `Ok`.
    pub fn copy_verified(
        &self,
        loc: Loc,
        expected: &Digest,
        mut sink: impl FnMut(&[u8]) -> Result<(), LoadError>,
    ) -> Result<(), LoadError> {
        let mut hasher = Sha256::new();
        self.for_each_chunk(loc, |chunk| {
            hasher.update(chunk);
            sink(chunk)
        })?;
        let actual = Digest::from_sha256(hasher.finalize().into());
        if &actual != expected {
            return Err(invalid(format!(
                "blob {expected} does not match its digest (content hashes to {actual})"
            )));
        }
        Ok(())
    }

    fn for_each_chunk(
        &self,
        loc: Loc,
        mut f: impl FnMut(&[u8]) -> Result<(), LoadError>,
    ) -> Result<(), LoadError> {
        let mut buf = vec![0u8; READ_CHUNK.min(loc.size as usize)];
        let mut done = 0u64;
        while done < loc.size {
            let n = (loc.size - done).min(buf.len() as u64) as usize;
            self.file.read_exact_at(&mut buf[..n], loc.offset + done)?;
            f(&buf[..n])?;
            done += n as u64;
        }
        Ok(())
    }
}

/// The bytes of one entry, read in place.
pub struct Region<'a> {
    file: &'a File,
    pos: u64,
    end: u64,
}

impl Read for Region<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let want = buf.len().min((self.end - self.pos) as usize);
        if want == 0 {
            return Ok(0);
        }
        let n = self.file.read_at(&mut buf[..want], self.pos)?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        self.pos += n as u64;
        Ok(n)
    }
}

/// Lexically cleans an entry name: `./` prefixes and `.` parts are dropped;
/// absolute names and `..` are refused. `None` for the root itself.
fn clean_name(name: &str) -> Result<Option<String>, LoadError> {
    if name.starts_with('/') {
        return Err(invalid(format!("entry {name} is an absolute path")));
    }
    let mut parts = Vec::new();
    for part in name.split('/') {
        match part {
            "" | "." => {}
            ".." => return Err(invalid(format!("entry {name} escapes the archive"))),
            part => parts.push(part),
        }
    }
    Ok((!parts.is_empty()).then(|| parts.join("/")))
}

/// Resolves a link target lexically against `base` (the link's directory,
/// or the root for hardlinks); refuses targets that leave the archive.
fn resolve(base: &[String], target: &str, shown: &str) -> Result<Vec<String>, LoadError> {
    if target.starts_with('/') {
        return Err(invalid(format!(
            "link in {shown} points outside the archive ({target})"
        )));
    }
    let mut parts = base.to_vec();
    for part in target.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if parts.pop().is_none() {
                    return Err(invalid(format!(
                        "link in {shown} points outside the archive ({target})"
                    )));
                }
            }
            part => parts.push(part.to_string()),
        }
    }
    Ok(parts)
}

/// Refuses, when the archive is read, links that could only point outside
/// it, whether or not anything refers to them later.
fn check_link(name: &str, target: &str, kind: Kind) -> Result<(), LoadError> {
    let what = if kind == Kind::Symlink {
        "symlink"
    } else {
        "hardlink"
    };
    let escapes = || {
        invalid(format!(
            "{what} {name} points outside the archive ({target})"
        ))
    };
    if target.is_empty() {
        return Err(invalid(format!("{what} {name} has an empty target")));
    }
    if target.starts_with('/') {
        return Err(escapes());
    }
    let base: Vec<String> = if kind == Kind::Symlink {
        let mut parts: Vec<String> = name.split('/').map(str::to_string).collect();
        parts.pop();
        parts
    } else {
        Vec::new()
    };
    resolve(&base, target, name).map_err(|_| escapes())?;
    Ok(())
}

/// Decompresses into a file that is unlinked as soon as it is created, so
/// nothing is left on disk whatever happens. The output is bounded: a small
/// gzip bomb cannot fill the gateway's disk.
///
/// Public for the fuzz targets (`buildkit-gateway/fuzz`, `gzip_inflate`).
pub fn gunzip_to_unlinked(src: &File, dir: &Path, limit: u64) -> Result<File, LoadError> {
    let tmp_path = dir.join(format!(".berth-load-{:016x}.tar", rand::random::<u64>()));
    let mut out = OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp_path)?;
    std::fs::remove_file(&tmp_path)?;
    let mut src = src;
    src.seek(SeekFrom::Start(0))?;
    let mut decoder = flate2::read::MultiGzDecoder::new(std::io::BufReader::new(src));
    let mut buf = vec![0u8; READ_CHUNK];
    let mut total = 0u64;
    loop {
        let n = match decoder.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                return Err(invalid("unexpected end of archive (gzip stream truncated)"))
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e)
                if e.kind() == std::io::ErrorKind::InvalidInput
                    || e.kind() == std::io::ErrorKind::InvalidData =>
            {
                return Err(invalid(format!("corrupt gzip stream: {e}")))
            }
            Err(e) => return Err(e.into()),
        };
        total += n as u64;
        if total > limit {
            return Err(invalid(format!(
                "decompressed archive is larger than {}",
                human(limit)
            )));
        }
        out.write_all(&buf[..n])?;
    }
    out.flush()?;
    Ok(out)
}

fn read_up_to(file: &File, buf: &mut [u8], offset: u64) -> std::io::Result<usize> {
    let mut done = 0;
    while done < buf.len() {
        match file.read_at(&mut buf[done..], offset + done as u64)? {
            0 => break,
            n => done += n,
        }
    }
    Ok(done)
}

pub fn human(bytes: u64) -> String {
    if bytes >= 1 << 30 && bytes.is_multiple_of(1 << 30) {
        format!("{} GiB", bytes >> 30)
    } else if bytes >= 1 << 20 && bytes.is_multiple_of(1 << 20) {
        format!("{} MiB", bytes >> 20)
    } else {
        format!("{bytes} bytes")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::testdata::{gzip, raw_header, tar_of, Entry, TempFile};

    fn open(bytes: &[u8]) -> Result<Archive, LoadError> {
        let tmp = TempFile::with(bytes);
        Archive::open(tmp.path())
    }

    fn err(bytes: &[u8]) -> String {
        match open(bytes) {
            Ok(_) => panic!("archive was accepted"),
            Err(e) => e.to_string(),
        }
    }

    fn read(ar: &Archive, name: &str) -> Vec<u8> {
        let loc = ar.find(name).unwrap().expect("entry exists");
        ar.read_small(loc, name).unwrap()
    }

    #[test]
    fn cleans_names_and_reads_entries() {
        let bytes = tar_of(&[
            Entry::dir("./"),
            Entry::dir("./blobs/"),
            Entry::file("./blobs/a", b"alpha"),
            Entry::file("index.json", b"{}"),
        ]);
        let ar = open(&bytes).unwrap();
        assert_eq!(read(&ar, "blobs/a"), b"alpha");
        assert_eq!(read(&ar, "./index.json"), b"{}");
        assert!(ar.find("blobs/b").unwrap().is_none());
        assert!(!ar.compressed);
    }

    #[test]
    fn refuses_parent_and_absolute_entries() {
        assert_eq!(
            err(&tar_of(&[Entry::file("../x", b"")])),
            "invalid archive: entry ../x escapes the archive"
        );
        assert_eq!(
            err(&tar_of(&[Entry::file("a/../../x", b"")])),
            "invalid archive: entry a/../../x escapes the archive"
        );
        assert_eq!(
            err(&tar_of(&[Entry::file("/etc/passwd", b"")])),
            "invalid archive: entry /etc/passwd is an absolute path"
        );
    }

    #[test]
    fn refuses_symlinks_escaping() {
        assert_eq!(
            err(&tar_of(&[Entry::symlink("blobs/sha256/x", "../../../etc/passwd")])),
            "invalid archive: symlink blobs/sha256/x points outside the archive (../../../etc/passwd)"
        );
        assert_eq!(
            err(&tar_of(&[Entry::symlink("layer.tar", "/etc/shadow")])),
            "invalid archive: symlink layer.tar points outside the archive (/etc/shadow)"
        );
    }

    #[test]
    fn refuses_hardlinks_escaping() {
        assert_eq!(
            err(&tar_of(&[Entry::hardlink("x", "/etc/shadow")])),
            "invalid archive: hardlink x points outside the archive (/etc/shadow)"
        );
        assert_eq!(
            err(&tar_of(&[Entry::hardlink("a/x", "../etc/shadow")])),
            "invalid archive: hardlink a/x points outside the archive (../etc/shadow)"
        );
    }

    #[test]
    fn resolves_links_inside_the_table_only() {
        let bytes = tar_of(&[
            Entry::file("id1/layer.tar", b"layer one"),
            // docker save's shared layers: a link to another layer directory.
            Entry::symlink("id2/layer.tar", "../id1/layer.tar"),
            Entry::symlink("id3", "id1"),
            Entry::hardlink("copy", "id1/layer.tar"),
            Entry::symlink("dangling", "nowhere"),
            Entry::symlink("loop", "loop"),
            Entry::symlink("sneaky/x", "../../id1/layer.tar"),
        ]);
        // The last link escapes lexically from `sneaky/`: refused when read.
        assert_eq!(
            err(&bytes),
            "invalid archive: symlink sneaky/x points outside the archive (../../id1/layer.tar)"
        );
        let bytes = tar_of(&[
            Entry::file("id1/layer.tar", b"layer one"),
            Entry::symlink("id2/layer.tar", "../id1/layer.tar"),
            Entry::symlink("id3", "id1"),
            Entry::hardlink("copy", "id1/layer.tar"),
            Entry::symlink("dangling", "nowhere"),
            Entry::symlink("loop", "loop"),
        ]);
        let ar = open(&bytes).unwrap();
        assert_eq!(read(&ar, "id2/layer.tar"), b"layer one");
        assert_eq!(read(&ar, "id3/layer.tar"), b"layer one");
        assert_eq!(read(&ar, "copy"), b"layer one");
        assert!(ar.find("dangling").unwrap().is_none());
        assert_eq!(
            ar.find("loop").unwrap_err().to_string(),
            "invalid archive: too many links resolving loop"
        );
    }

    #[test]
    fn symlinked_directory_cannot_climb_out() {
        // `d` -> `a/b` is fine, but `d/../../../x` would climb above the
        // root once resolved; lookups never touch the disk and stop there.
        let bytes = tar_of(&[Entry::file("a/b/f", b"f"), Entry::symlink("d", "a/b")]);
        let ar = open(&bytes).unwrap();
        assert_eq!(read(&ar, "d/f"), b"f");
        assert!(ar.find("d/../../x").is_err());
    }

    #[test]
    fn refuses_duplicate_entries() {
        let bytes = tar_of(&[
            Entry::file("index.json", b"{}"),
            Entry::file("index.json", b"[]"),
        ]);
        assert_eq!(
            err(&bytes),
            "invalid archive: entry index.json appears twice"
        );
        let bytes = tar_of(&[Entry::dir("blobs/"), Entry::dir("blobs/")]);
        assert!(open(&bytes).is_ok());
    }

    #[test]
    fn reads_gzip_archives() {
        let bytes = gzip(&tar_of(&[Entry::file("index.json", b"{\"a\":1}")]));
        let ar = open(&bytes).unwrap();
        assert!(ar.compressed);
        assert_eq!(read(&ar, "index.json"), b"{\"a\":1}");
    }

    #[test]
    fn refuses_truncated_archives() {
        let bytes = tar_of(&[Entry::file("blob", &[7u8; 4000])]);
        assert_eq!(
            err(&bytes[..2000]),
            "invalid archive: unexpected end of archive"
        );
        assert_eq!(
            err(&bytes[..512 + 4096]),
            "invalid archive: unexpected end of archive"
        );
        let gz = gzip(&bytes);
        assert_eq!(
            err(&gz[..gz.len() / 2]),
            "invalid archive: unexpected end of archive (gzip stream truncated)"
        );
    }

    #[test]
    fn bounds_gzip_decompression() {
        let zeros = vec![0u8; 3 << 20];
        let gz = gzip(&zeros);
        let src = TempFile::with(&gz);
        let file = File::open(src.path()).unwrap();
        let dir = src.path().parent().unwrap();
        let e = gunzip_to_unlinked(&file, dir, 1 << 20).unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid archive: decompressed archive is larger than 1 MiB"
        );
        // Within the bound it works, and leaves no file behind.
        let before = std::fs::read_dir(dir).unwrap().count();
        let out = gunzip_to_unlinked(&file, dir, 4 << 20).unwrap();
        assert_eq!(out.metadata().unwrap().len(), 3 << 20);
        assert_eq!(std::fs::read_dir(dir).unwrap().count(), before);
    }

    #[test]
    fn refuses_other_compressions_and_garbage() {
        assert_eq!(
            err(&[0xfd, b'7', b'z', b'X', b'Z', 0, 1, 2]),
            "invalid archive: xz-compressed archives are not supported (use plain tar or gzip)"
        );
        assert_eq!(err(b""), "invalid archive: archive is empty");
        assert_eq!(
            err(&[b'x'; 100]),
            "invalid archive: unexpected end of archive"
        );
        let mut junk = raw_header(b"x", b'0', b"", 0);
        junk[148] = b'9';
        junk.extend_from_slice(&[0u8; 1024]);
        assert_eq!(
            err(&junk),
            "invalid archive: malformed tar header (checksum field)"
        );
    }

    #[test]
    fn verifies_digests_while_copying() {
        let bytes = tar_of(&[Entry::file("blob", b"hello")]);
        let ar = open(&bytes).unwrap();
        let loc = ar.find("blob").unwrap().unwrap();
        let good = Digest::of(b"hello");
        let mut copied = Vec::new();
        ar.copy_verified(loc, &good, |c| {
            copied.extend_from_slice(c);
            Ok(())
        })
        .unwrap();
        assert_eq!(copied, b"hello");
        let bad = Digest::of(b"other");
        let e = ar
            .copy_verified(loc, &bad, |_| Ok(()))
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            format!(
                "invalid archive: blob {bad} does not match its digest (content hashes to {good})"
            )
        );
    }
}
