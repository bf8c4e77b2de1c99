//! Integration tests of the snapshot engine through its public API, on real directories.

mod common;
mod concurrency;
mod hostile;
mod integrity;
mod lifecycle;
mod roundtrip;
