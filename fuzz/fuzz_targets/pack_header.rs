//! Pack tails from a hostile repository: header parsing must never panic, and every entry it
//! accepts must lie inside the pack.
#![no_main]

use libfuzzer_sys::fuzz_target;
use zenith_snapshot::crypto::MasterKey;
use zenith_snapshot::pack::parse_header;

fuzz_target!(|data: &[u8]| {
    let cipher = MasterKey::generate().cipher();
    if let Ok(entries) = parse_header(data, data.len() as u64, &cipher, "fuzz") {
        for e in entries {
            assert!(u64::from(e.offset) + u64::from(e.length) <= data.len() as u64);
        }
    }
});
