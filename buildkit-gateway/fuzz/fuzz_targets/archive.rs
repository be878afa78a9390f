//! The `docker load` archive reader: tar headers (ustar, GNU long names,
//! PAX, base-256 sizes), name cleaning, link checks and link resolution,
//! gzip detection. The first byte picks whether tar checksums are fixed up
//! first (odd) so that mutations reach what is behind the checksum.
#![no_main]

use berth_gateway::load::archive::Archive;
use berth_gateway::load::tar::{Scanner, MAX_NAME_LEN};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &[u8]| {
    let Some((&mode, rest)) = input.split_first() else {
        return;
    };
    let mut data = rest.to_vec();
    if mode & 1 == 1 {
        berth_gateway_fuzz::fix_tar_checksums(&mut data);
    }
    let path = berth_gateway_fuzz::input_file(&data);
    let len = data.len() as u64;

    // The header reader alone: every entry it returns lies inside the file
    // and has a bounded name.
    let file = std::fs::File::open(&path).unwrap();
    let mut scanner = Scanner::new(&file, len);
    let mut names = Vec::new();
    while let Ok(Some(entry)) = scanner.next_entry() {
        let end = entry.offset.checked_add(entry.size).expect("offset + size overflows");
        assert!(end <= len, "entry data beyond the end of the archive");
        assert!(entry.name.len() <= MAX_NAME_LEN && entry.link.len() <= MAX_NAME_LEN);
        names.push(String::from_utf8_lossy(&entry.name).into_owned());
        names.push(String::from_utf8_lossy(&entry.link).into_owned());
    }

    // The name table: every lookup (which follows links) ends inside the
    // archive and reads back what it points to.
    let Ok(archive) = Archive::open(&path) else {
        return;
    };
    let archive_len = if archive.compressed { u64::MAX } else { len };
    names.extend(["index.json", "manifest.json", "oci-layout", "../etc/passwd", "/", "."].map(String::from));
    for name in &names {
        if let Ok(Some(loc)) = archive.find(name) {
            assert!(loc.offset.saturating_add(loc.size) <= archive_len);
            let _ = archive.read_small(loc, "entry");
            let mut head = [0u8; 16];
            archive.head(loc, &mut head).expect("a found entry can be read");
        }
    }
});
