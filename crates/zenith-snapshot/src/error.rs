//! The one error type of the snapshot engine. Each variant names the thing involved (a path, an
//! id, a key) and its message says what to do next.

use std::path::PathBuf;

/// Result with the engine's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in the snapshot engine.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An operating-system error; `fs-err` puts the path in the message.
    #[error("{0}")]
    Io(#[from] std::io::Error),

    #[error("{path}: {source}")]
    IoAt {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("{path} is not a zenith repository (no `config` file); create one with `zenith repo init`")]
    NotARepository { path: PathBuf },

    #[error("{path} already holds a zenith repository; choose another directory")]
    AlreadyExists { path: PathBuf },

    #[error("{path} exists and is not empty; a repository must be created in a new or empty directory")]
    NotEmpty { path: PathBuf },

    #[error("wrong password: no key of the repository at {path} opens with it (`zenith repo key list` shows the keys)")]
    WrongPassword { path: PathBuf },

    #[error("no key with id {0} in this repository (`zenith repo key list` shows the keys)")]
    NoSuchKey(String),

    #[error("refusing to remove the key that opened the repository; open it with another key first")]
    RemoveCurrentKey,

    #[error(
        "no snapshot matches {0:?}: give `latest`, a name, a tag, or an id (at least 4 hex characters); `zenith snapshot list` shows them"
    )]
    NoSuchSnapshot(String),

    #[error("{query:?} matches several snapshots: {candidates}; use a longer id")]
    AmbiguousSnapshot { query: String, candidates: String },

    #[error("the repository is empty: it has no snapshots yet")]
    NoSnapshots,

    #[error("damaged repository data: {what}: {detail}")]
    Corrupt { what: String, detail: String },

    #[error("blob {id} is not in the index; the repository may need `zenith snapshot verify`")]
    BlobNotFound { id: String },

    #[error("{0}")]
    Locked(String),

    #[error("{0}")]
    InvalidInput(String),

    #[error("{path}: path not found in snapshot {snapshot}")]
    PathNotInSnapshot { path: String, snapshot: String },
}

impl Error {
    pub(crate) fn corrupt(what: impl Into<String>, detail: impl std::fmt::Display) -> Self {
        Error::Corrupt {
            what: what.into(),
            detail: detail.to_string(),
        }
    }

    pub(crate) fn io_at(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::IoAt {
            path: path.into(),
            source,
        }
    }

    /// True for errors a user fixes by changing their input (exit code 2 in the CLI).
    pub fn is_input(&self) -> bool {
        matches!(
            self,
            Error::NoSuchSnapshot(_)
                | Error::AmbiguousSnapshot { .. }
                | Error::InvalidInput(_)
                | Error::NoSuchKey(_)
                | Error::RemoveCurrentKey
                | Error::PathNotInSnapshot { .. }
                | Error::AlreadyExists { .. }
                | Error::NotEmpty { .. }
                | Error::NoSnapshots
        )
    }
}
