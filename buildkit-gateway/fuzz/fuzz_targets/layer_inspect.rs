//! The layer reader of `docker load` (`load::inspect::layers`): every layer
//! the plan unpacks is read before anything is written, plain or gzip
//! (told by magic), its entries' names and link targets checked, links
//! through the layer's own symlinks refused, the unpacked size bounded and
//! the bytes hashed against the config's diff_id.
//!
//! Structure-aware like `load_plan` (same input format): `layer` and
//! `layergz` entries hold a layer tar whose header checksums the target
//! fixes up, and `{uN}` gives a config the layer's diff_id.
#![no_main]

use berth_gateway::load::archive::Archive;
use berth_gateway::load::inspect;
use berth_gateway::load::plan::plan;
use libfuzzer_sys::fuzz_target;

/// Small, so the fuzzer finds layers that cross it.
const LIMIT: u64 = 256 << 10;

fuzz_target!(|data: &[u8]| {
    let tar = berth_gateway_fuzz::plan_archive(data);
    let path = berth_gateway_fuzz::input_file(&tar);
    let Ok(archive) = Archive::open(&path) else {
        return;
    };
    let Ok(plan) = plan(&archive) else {
        return;
    };
    let _ = inspect::layers(&archive, &plan, LIMIT);
});
