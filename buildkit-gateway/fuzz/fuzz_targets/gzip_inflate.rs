//! The bounded gzip inflate of a compressed `docker load` archive: any
//! stream (truncated, corrupt, multi-member, a bomb) ends in an error or in
//! at most `limit` bytes written, and nothing is left on disk.
#![no_main]

use std::io::{Read, Seek, SeekFrom};

use berth_gateway::load::archive::gunzip_to_unlinked;
use libfuzzer_sys::fuzz_target;

/// Small enough that the fuzzer finds streams that cross it.
const LIMIT: u64 = 64 << 10;

fuzz_target!(|data: &[u8]| {
    let path = berth_gateway_fuzz::input_file(data);
    let src = std::fs::File::open(&path).unwrap();
    let dir = berth_gateway_fuzz::scratch().join("gunzip");
    std::fs::create_dir_all(&dir).unwrap();
    let result = gunzip_to_unlinked(&src, &dir, LIMIT);
    assert!(
        std::fs::read_dir(&dir).unwrap().next().is_none(),
        "the decompressed file was left on disk"
    );
    if let Ok(mut out) = result {
        let len = out.metadata().unwrap().len();
        assert!(len <= LIMIT, "wrote {len} bytes past the limit");
        // What was written is what the stream holds.
        out.seek(SeekFrom::Start(0)).unwrap();
        let mut written = Vec::new();
        out.read_to_end(&mut written).unwrap();
        let mut expected = Vec::new();
        let mut decoder = flate2::read::MultiGzDecoder::new(data);
        decoder.read_to_end(&mut expected).expect("the gateway accepted a stream flate2 refuses");
        assert_eq!(written, expected);
    }
});
