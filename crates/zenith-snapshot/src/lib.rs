//! zenith's snapshot engine: an encrypted, deduplicated, crash-safe repository of directory
//! snapshots, with retention, verification, pruning, copying and restore.
//!
//! The crate computes and never prints: every operation returns a typed report and tells its
//! progress through [`progress::Progress`], which the binary renders. The repository format is
//! described in `docs/repository-format.md`.

pub mod archiver;
pub mod backend;
pub mod chunker;
pub mod copy;
pub mod crypto;
pub mod diff;
pub mod direct;
pub mod error;
pub mod forget;
pub mod id;
pub mod index;
pub mod keys;
pub mod lock;
pub mod pack;
pub mod progress;
pub mod prune;
pub mod repo;
pub mod restorer;
pub mod saver;
pub mod snapshot;
pub mod tree;
pub mod verify;

pub use error::{Error, Result};
pub use id::Id;
pub use repo::{Repository, RepositoryConfig};
pub use snapshot::{Snapshot, SnapshotFilter};
