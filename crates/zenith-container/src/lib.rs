//! Container snapshots: a Docker container's configuration, its file-system changes against
//! its image and, when asked, its volumes' data, saved as one ordinary zenith snapshot (type
//! `container`) and restored as a new, equivalent container.
//!
//! Everything goes through the engine's API (inspect, changes, archive, create): nothing runs
//! inside the container, so images without a shell work. A snapshot holds:
//!
//! ```text
//! <name>/container.json        the record (see `record`)
//! <name>/rootfs/<path>         each top-most changed path, at its place in the container
//! <name>/volumes/<vol>/<base>  each captured volume, under the last component of its target
//! ```
//!
//! The functions are async on `bollard` and compute only: they return typed reports and tell
//! their progress through [`zenith_snapshot::progress::Progress`].

mod archive;
pub mod error;
pub mod plan;
pub mod record;
pub mod restore;
pub mod snapshot;

pub use error::{Error, Result};
pub use restore::{RestoreOptions, RestoreReport, restore_container};
pub use snapshot::{SnapshotOptions, SnapshotReport, snapshot_container};

/// The snapshot type (`--type`) of container snapshots.
pub const SNAPSHOT_TYPE: &str = "container";

pub use bollard::Docker;
pub use zenith_runtime::docker::connect;
