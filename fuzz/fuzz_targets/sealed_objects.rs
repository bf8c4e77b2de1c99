//! Index files, snapshots and blobs are opened from untrusted bytes: garbage must be an
//! error, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use zenith_snapshot::Id;
use zenith_snapshot::crypto::MasterKey;
use zenith_snapshot::index::IndexFile;
use zenith_snapshot::pack::{BlobKind, open_blob};
use zenith_snapshot::snapshot::Snapshot;

fuzz_target!(|data: &[u8]| {
    let key = MasterKey::generate();
    let cipher = key.cipher();
    let _ = IndexFile::open(data, &cipher, "fuzz");
    let _ = Snapshot::open(data, &Id::default(), &cipher);
    let _ = open_blob(data, BlobKind::Tree, &Id::default(), true, 1 << 20, &cipher, &key);
});
