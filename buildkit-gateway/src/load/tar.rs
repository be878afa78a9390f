//! A strict, bounded reader of tar headers.
//!
//! The `tar` crate reads GNU long names and PAX records into memory without a
//! bound and accepts sparse entries, so the gateway reads the headers itself:
//! ustar/GNU/PAX names, sizes in octal or base-256, and nothing it cannot
//! explain. It never writes anything: callers get each entry's name, link
//! target, kind and the byte range of its data inside the archive file.

use std::fs::File;
use std::os::unix::fs::FileExt;

use super::{invalid, LoadError};

const BLOCK: u64 = 512;
/// Longest entry or link name accepted (OCI and docker-save names are < 200).
pub const MAX_NAME_LEN: usize = 512;
/// Largest PAX extended header accepted.
const MAX_PAX_LEN: u64 = 64 << 10;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    File,
    Dir,
    Symlink,
    Hardlink,
}

/// One logical entry: long-name and PAX headers already folded in.
#[derive(Debug)]
pub struct RawEntry {
    pub name: Vec<u8>,
    pub link: Vec<u8>,
    pub kind: Kind,
    /// Offset of the entry's data in the archive file.
    pub offset: u64,
    pub size: u64,
}

/// Walks the headers of the tar in `file` (of `len` bytes) without reading
/// the entries' data.
pub struct Scanner<'a> {
    file: &'a File,
    len: u64,
    pos: u64,
    done: bool,
}

/// Metadata that extension headers attach to the next real entry.
#[derive(Default)]
struct Pending {
    name: Option<Vec<u8>>,
    link: Option<Vec<u8>>,
    size: Option<u64>,
}

impl Pending {
    fn is_empty(&self) -> bool {
        self.name.is_none() && self.link.is_none() && self.size.is_none()
    }
}

impl<'a> Scanner<'a> {
    pub fn new(file: &'a File, len: u64) -> Self {
        Self {
            file,
            len,
            pos: 0,
            done: false,
        }
    }

    /// The next entry, or `None` at the end-of-archive marker. An archive
    /// that stops without the marker is truncated.
    pub fn next_entry(&mut self) -> Result<Option<RawEntry>, LoadError> {
        if self.done {
            return Ok(None);
        }
        let mut pending = Pending::default();
        loop {
            let header = self.read_block()?;
            if header.iter().all(|&b| b == 0) {
                if !pending.is_empty() {
                    return Err(invalid("extension header without an entry"));
                }
                self.done = true;
                return Ok(None);
            }
            verify_checksum(&header)?;
            let typeflag = header[156];
            let header_size = parse_number(&header[124..136], "size")?;
            let size = match typeflag {
                b'x' | b'g' | b'L' | b'K' => header_size,
                _ => pending.size.take().unwrap_or(header_size),
            };
            let offset = self.pos + BLOCK;
            let end = offset
                .checked_add(size)
                .filter(|&end| end <= self.len)
                .ok_or_else(|| invalid("unexpected end of archive"))?;
            // Data is padded to whole blocks; the padding may be cut off only
            // at the very end, where the end marker would have to follow.
            self.pos = end.div_ceil(BLOCK) * BLOCK;

            match typeflag {
                b'x' | b'g' => {
                    if size > MAX_PAX_LEN {
                        return Err(invalid("PAX header larger than 64 KiB"));
                    }
                    let data = self.read_data(offset, size)?;
                    let global = typeflag == b'g';
                    apply_pax(&data, &mut pending, global)?;
                }
                b'L' | b'K' => {
                    if size > MAX_NAME_LEN as u64 + 1 {
                        return Err(invalid(format!(
                            "entry name longer than {MAX_NAME_LEN} bytes"
                        )));
                    }
                    let data = self.read_data(offset, size)?;
                    let value = until_nul(&data).to_vec();
                    let slot = if typeflag == b'L' {
                        &mut pending.name
                    } else {
                        &mut pending.link
                    };
                    if slot.replace(value).is_some() {
                        return Err(invalid("two long-name headers for one entry"));
                    }
                }
                _ => {
                    let name = match pending.name.take() {
                        Some(name) => name,
                        None => header_name(&header),
                    };
                    let link = pending
                        .link
                        .take()
                        .unwrap_or_else(|| until_nul(&header[157..257]).to_vec());
                    let kind = match typeflag {
                        b'0' | 0 | b'7' => Kind::File,
                        b'5' => Kind::Dir,
                        b'2' => Kind::Symlink,
                        b'1' => Kind::Hardlink,
                        other => {
                            return Err(invalid(format!(
                                "entry {} is a {}; only files and directories are accepted",
                                String::from_utf8_lossy(&name),
                                type_name(other)
                            )))
                        }
                    };
                    if name.len() > MAX_NAME_LEN || link.len() > MAX_NAME_LEN {
                        return Err(invalid(format!(
                            "entry name longer than {MAX_NAME_LEN} bytes"
                        )));
                    }
                    return Ok(Some(RawEntry {
                        name,
                        link,
                        kind,
                        offset,
                        size,
                    }));
                }
            }
        }
    }

    fn read_block(&mut self) -> Result<[u8; 512], LoadError> {
        let mut block = [0u8; 512];
        if self.pos + BLOCK > self.len {
            return Err(invalid("unexpected end of archive"));
        }
        self.file.read_exact_at(&mut block, self.pos)?;
        Ok(block)
    }

    fn read_data(&self, offset: u64, size: u64) -> Result<Vec<u8>, LoadError> {
        let mut data = vec![0u8; size as usize];
        self.file.read_exact_at(&mut data, offset)?;
        Ok(data)
    }
}

fn until_nul(bytes: &[u8]) -> &[u8] {
    match bytes.iter().position(|&b| b == 0) {
        Some(end) => &bytes[..end],
        None => bytes,
    }
}

/// The name from the header itself: POSIX ustar joins `prefix/name`; the GNU
/// format keeps other fields where ustar has the prefix.
fn header_name(header: &[u8; 512]) -> Vec<u8> {
    let name = until_nul(&header[0..100]);
    if &header[257..263] == b"ustar\0" {
        let prefix = until_nul(&header[345..500]);
        if !prefix.is_empty() {
            let mut joined = prefix.to_vec();
            joined.push(b'/');
            joined.extend_from_slice(name);
            return joined;
        }
    }
    name.to_vec()
}

fn verify_checksum(header: &[u8; 512]) -> Result<(), LoadError> {
    let recorded = parse_number(&header[148..156], "checksum")?;
    let actual: u64 = header
        .iter()
        .enumerate()
        .map(|(i, &b)| {
            if (148..156).contains(&i) {
                u64::from(b' ')
            } else {
                u64::from(b)
            }
        })
        .sum();
    if recorded != actual {
        return Err(invalid("tar header checksum mismatch"));
    }
    Ok(())
}

/// Octal ASCII (space/NUL padded) or GNU base-256 for large values.
fn parse_number(field: &[u8], what: &str) -> Result<u64, LoadError> {
    let bad = || invalid(format!("malformed tar header ({what} field)"));
    if field[0] & 0x80 != 0 {
        // Base-256; 0xff marks a negative number, which no size may be.
        if field[0] != 0x80 {
            return Err(bad());
        }
        let mut value: u64 = 0;
        for &b in &field[1..] {
            value = value
                .checked_mul(256)
                .and_then(|v| v.checked_add(u64::from(b)))
                .ok_or_else(bad)?;
        }
        return Ok(value);
    }
    let text = field
        .iter()
        .skip_while(|&&b| b == b' ')
        .take_while(|&&b| b != b' ' && b != 0)
        .copied()
        .collect::<Vec<u8>>();
    let mut value: u64 = 0;
    for b in text {
        if !(b'0'..=b'7').contains(&b) {
            return Err(bad());
        }
        value = value
            .checked_mul(8)
            .and_then(|v| v.checked_add(u64::from(b - b'0')))
            .ok_or_else(bad)?;
    }
    Ok(value)
}

/// PAX records are `"<len> <key>=<value>\n"`; only path, linkpath and size
/// change how the gateway reads the archive. Global headers may not change
/// them at all (readers disagree on their scope).
fn apply_pax(data: &[u8], pending: &mut Pending, global: bool) -> Result<(), LoadError> {
    let bad = || invalid("malformed PAX header");
    let mut rest = data;
    while !rest.is_empty() {
        let space = rest.iter().position(|&b| b == b' ').ok_or_else(bad)?;
        let len: usize = std::str::from_utf8(&rest[..space])
            .ok()
            .and_then(|s| s.parse().ok())
            .filter(|&len| len > space + 1 && len <= rest.len())
            .ok_or_else(bad)?;
        let record = &rest[space + 1..len];
        rest = &rest[len..];
        let record = record.strip_suffix(b"\n").ok_or_else(bad)?;
        let eq = record.iter().position(|&b| b == b'=').ok_or_else(bad)?;
        let (key, value) = (&record[..eq], &record[eq + 1..]);
        if key.starts_with(b"GNU.sparse.") {
            return Err(invalid("sparse entries are not accepted"));
        }
        let slot = match key {
            b"path" => &mut pending.name,
            b"linkpath" => &mut pending.link,
            b"size" => {
                if global {
                    return Err(invalid("global PAX header sets size"));
                }
                let size = std::str::from_utf8(value)
                    .ok()
                    .and_then(|s| s.parse().ok())
                    .ok_or_else(bad)?;
                pending.size = Some(size);
                continue;
            }
            _ => continue,
        };
        if global {
            return Err(invalid("global PAX header sets a path"));
        }
        if value.len() > MAX_NAME_LEN {
            return Err(invalid(format!(
                "entry name longer than {MAX_NAME_LEN} bytes"
            )));
        }
        *slot = Some(value.to_vec());
    }
    Ok(())
}

fn type_name(typeflag: u8) -> String {
    match typeflag {
        b'3' => "character device".into(),
        b'4' => "block device".into(),
        b'6' => "FIFO".into(),
        b'S' => "sparse file".into(),
        other => format!("tar entry of type {:?}", char::from(other)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::testdata::{raw_header, TempFile};

    fn scan_all(bytes: &[u8]) -> Result<Vec<RawEntry>, LoadError> {
        let tmp = TempFile::with(bytes);
        let file = File::open(tmp.path()).unwrap();
        let mut scanner = Scanner::new(&file, bytes.len() as u64);
        let mut out = Vec::new();
        while let Some(e) = scanner.next_entry()? {
            out.push(e);
        }
        Ok(out)
    }

    #[test]
    fn reads_long_names_and_pax_paths() {
        let long = format!("blobs/sha256/{}", "a".repeat(150));
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_size(3);
        h.set_entry_type(tar::EntryType::Regular);
        b.append_data(&mut h, &long, &b"abc"[..]).unwrap();
        // A PAX header naming the next entry.
        let pax_name = "pax/".to_string() + &"b".repeat(120);
        b.append_pax_extensions([("path", pax_name.as_bytes())])
            .unwrap();
        let mut h = tar::Header::new_ustar();
        h.set_size(2);
        h.set_path("short").unwrap();
        h.set_cksum();
        b.append(&h, &b"xy"[..]).unwrap();
        let bytes = b.into_inner().unwrap();

        let entries = scan_all(&bytes).unwrap();
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[0].name, long.as_bytes());
        assert_eq!(entries[0].size, 3);
        let mut data = [0u8; 3];
        let tmp = TempFile::with(&bytes);
        File::open(tmp.path())
            .unwrap()
            .read_exact_at(&mut data, entries[0].offset)
            .unwrap();
        assert_eq!(&data, b"abc");
        assert_eq!(entries[1].name, pax_name.as_bytes());
    }

    #[test]
    fn refuses_devices_and_sparse_files() {
        for (flag, what) in [
            (b'3', "character device"),
            (b'6', "FIFO"),
            (b'S', "sparse file"),
        ] {
            let mut bytes = raw_header(b"dev/x", flag, b"", 0);
            bytes.extend_from_slice(&[0u8; 1024]);
            let err = scan_all(&bytes).unwrap_err().to_string();
            assert_eq!(err, format!("invalid archive: entry dev/x is a {what}; only files and directories are accepted"));
        }
    }

    #[test]
    fn refuses_bad_checksum() {
        let mut bytes = raw_header(b"x", b'0', b"", 0);
        bytes[0] = b'y';
        bytes.extend_from_slice(&[0u8; 1024]);
        assert_eq!(
            scan_all(&bytes).unwrap_err().to_string(),
            "invalid archive: tar header checksum mismatch"
        );
    }

    #[test]
    fn refuses_archive_without_end_marker() {
        let mut bytes = raw_header(b"x", b'0', b"", 1);
        bytes.extend_from_slice(&[b'a'; 512]);
        assert_eq!(
            scan_all(&bytes).unwrap_err().to_string(),
            "invalid archive: unexpected end of archive"
        );
    }

    #[test]
    fn parses_base256_sizes() {
        let mut field = [0u8; 12];
        field[0] = 0x80;
        field[11] = 0x10;
        field[10] = 0x01;
        assert_eq!(parse_number(&field, "size").unwrap(), 0x0110);
        field[0] = 0xff;
        assert!(parse_number(&field, "size").is_err());
        assert_eq!(parse_number(b"00000000017\0", "size").unwrap(), 15);
        assert!(parse_number(b"0000000009\0\0", "size").is_err());
    }

    #[test]
    fn refuses_oversized_pax_header() {
        let mut bytes = raw_header(b"pax", b'x', b"", MAX_PAX_LEN + 1);
        bytes.resize(
            bytes.len() + (MAX_PAX_LEN as usize + 1).div_ceil(512) * 512 + 1024,
            0,
        );
        assert_eq!(
            scan_all(&bytes).unwrap_err().to_string(),
            "invalid archive: PAX header larger than 64 KiB"
        );
    }
}
