//! Tree blobs come from the repository, which may be hostile: decoding must never panic,
//! and whatever decodes must pass validation (safe, sorted, unique names).
#![no_main]

use libfuzzer_sys::fuzz_target;
use zenith_snapshot::tree::{Tree, is_safe_name};

fuzz_target!(|data: &[u8]| {
    if let Ok(tree) = Tree::decode(data) {
        for n in &tree.nodes {
            assert!(is_safe_name(&n.name));
        }
        assert!(tree.nodes.windows(2).all(|w| w[0].name < w[1].name));
    }
});
