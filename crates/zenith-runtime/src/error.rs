//! The one error type of the runtime crate. Every variant names the replica it concerns, and
//! variants about files carry the path as a field; their message names it through the `fs-err`
//! source, which says which file and which operation failed. The daemon can show them as is.

use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("could not start replica {id}: {source}")]
    Spawn {
        id: String,
        #[source]
        source: std::io::Error,
    },
    #[error("replica {id}: {message}")]
    Other { id: String, message: String },
    /// A secret could not be copied into the replica's secrets directory; nothing was started.
    #[error("replica {id}: cannot install secret `{name}`: {source}")]
    Secret {
        id: String,
        name: String,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The replica's own files (run directory, log) could not be prepared.
    #[error("replica {id}: cannot prepare its files: {source}")]
    Files {
        id: String,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Signalling the replica's process group failed for another reason than "already gone".
    #[error("replica {id}: cannot signal process group {pgid}: {source}")]
    Signal {
        id: String,
        pgid: i32,
        #[source]
        source: std::io::Error,
    },
    /// A command run in the replica's environment could not be started.
    #[error("replica {id}: cannot run `{command}`: {source}")]
    Exec {
        id: String,
        command: String,
        #[source]
        source: std::io::Error,
    },
    /// A command run in the replica's environment outlived its timeout; its process group
    /// was killed. `output` holds the tail of what it printed.
    #[error("replica {id}: `{command}` did not finish within {timeout:?} and was killed")]
    ExecTimeout {
        id: String,
        command: String,
        timeout: Duration,
        output: String,
    },
}
