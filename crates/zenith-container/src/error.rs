//! The one error type of container snapshots. Each variant names the container, image, volume
//! or snapshot involved, and its message says what to do next.

use std::path::PathBuf;

/// The engine answered 404 (no such container, image or volume).
pub(crate) use zenith_runtime::docker::is_not_found;

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong while snapshotting or restoring a container.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The engine does not answer at all.
    #[error(transparent)]
    Unreachable(#[from] zenith_runtime::docker::DockerError),

    #[error("no container named {name} on this Docker engine; `docker ps -a` lists them")]
    NoSuchContainer { name: String },

    #[error(
        "a container named {name} already exists; choose another name with --container NAME or remove it (`docker rm -f {name}`)"
    )]
    NameTaken { name: String },

    #[error("image {image} is not on this engine; load or build it (`docker load`, `docker build`) and restore again")]
    ImageMissing { image: String },

    #[error(
        "volume {name} already exists; remove it (`docker volume rm {name}`) or restore with --volume-prefix P to create the volumes as P<name>"
    )]
    VolumeExists { name: String },

    #[error(
        "snapshot {id} is not a container snapshot (its type is {kind}); restore it into a directory with `--target DIR`"
    )]
    NotAContainerSnapshot { id: String, kind: String },

    #[error("snapshot {id} holds no readable container.json: {detail}")]
    BadRecord { id: String, detail: String },

    #[error(
        "snapshot {id} is damaged, these files could not be read in full: {files}; `zenith snapshot verify` tells more"
    )]
    Damaged { id: String, files: String },

    /// A request the engine answered with an error.
    #[error("the Docker engine could not {action}: {source}")]
    Engine {
        action: String,
        #[source]
        source: bollard::errors::Error,
    },

    #[error(
        "the archive of {path} from container {container} holds an entry outside it: {entry}; nothing of it was kept"
    )]
    UnsafeArchive {
        container: String,
        path: String,
        entry: String,
    },

    #[error(transparent)]
    Snapshot(#[from] zenith_snapshot::Error),

    #[error("{path}: {source}")]
    IoAt {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error(transparent)]
    Io(#[from] std::io::Error),

    /// A restore failed and removing what it had created failed too.
    #[error("{cause}; removing what the restore had created failed too, remove by hand: {left}")]
    RollbackIncomplete { cause: Box<Error>, left: String },
}

impl Error {
    /// An engine error for `action` ("inspect container web").
    pub(crate) fn engine(action: impl Into<String>) -> impl FnOnce(bollard::errors::Error) -> Error {
        let action = action.into();
        move |source| Error::Engine { action, source }
    }

    /// True for errors a user fixes by changing their input or their engine's contents
    /// (exit code 2 in the CLI).
    pub fn is_input(&self) -> bool {
        match self {
            Error::NoSuchContainer { .. }
            | Error::NameTaken { .. }
            | Error::ImageMissing { .. }
            | Error::VolumeExists { .. }
            | Error::NotAContainerSnapshot { .. } => true,
            Error::Snapshot(e) => e.is_input(),
            Error::RollbackIncomplete { cause, .. } => cause.is_input(),
            _ => false,
        }
    }
}
