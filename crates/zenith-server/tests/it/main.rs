//! zenith-server's integration tests: one binary, one module per area.
//!
//! These exercise the public API against real database files in temp directories, including
//! reopening after a crashed writer, which unit tests in the modules cannot do.

mod auth;
mod store;

use tempfile::TempDir;
use zenith_server::store::Store;

/// A store in a fresh temp dir; keep the `TempDir` alive as long as the store.
fn temp_store() -> (TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("state.db")).unwrap();
    (dir, store)
}
