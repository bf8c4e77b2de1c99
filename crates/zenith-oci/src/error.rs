//! The one error type of the registry transport. Each variant names the registry, reference
//! or file involved, carries the registry's own words where it gave any, and says what to do.

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong talking to a registry or carrying a snapshot through one.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(
        "{reference:?} is not a registry reference: {reason} (expected HOST[:PORT]/REPOSITORY[:TAG], e.g. registry.example.com/team/state:v1)"
    )]
    InvalidReference { reference: String, reason: String },

    #[error("cannot reach the registry {registry}: {detail}; check the address and that the registry is running")]
    Unreachable { registry: String, detail: String },

    #[error("{reference} was not found in the registry ({message}); check the repository name and tag")]
    NotFound { reference: String, message: String },

    #[error(
        "the registry {registry} refused the credentials or asks for some ({message}); set ZENITH_REGISTRY_USERNAME and ZENITH_REGISTRY_PASSWORD, or log in with `docker login {registry}`"
    )]
    Unauthorized { registry: String, message: String },

    #[error(
        "the registry {registry} refused to {action} (HTTP {status}: {message}); the registry may be read-only, or the account may not have access to this repository"
    )]
    Denied {
        registry: String,
        action: String,
        status: u16,
        message: String,
    },

    #[error("the registry {registry} answered {action} with HTTP {status}: {message}")]
    Protocol {
        registry: String,
        action: String,
        status: u16,
        message: String,
    },

    #[error("{reference} is not a zenith snapshot ({found}); pull only what `zenith snapshot push` pushed")]
    NotZenithArtifact { reference: String, found: String },

    #[error("{reference} is a damaged or hostile zenith artifact: {detail}; nothing was written")]
    BadArtifact { reference: String, detail: String },

    #[error(
        "blob {digest} from the registry does not match its digest or size ({detail}); nothing was written, try again or push the snapshot again"
    )]
    DigestMismatch { digest: String, detail: String },

    #[error(
        "wrong password for {reference}: its repository key does not open with the password given; set ZENITH_OTHER_PASSWORD (or ZENITH_OTHER_PASSWORD_FILE) to the password the snapshot was pushed with"
    )]
    WrongPassword { reference: String },

    #[error("{0}")]
    Snapshot(#[from] zenith_snapshot::Error),

    #[error("{0}")]
    Io(#[from] std::io::Error),
}

impl Error {
    /// True for errors a user fixes by changing their input (a reference, a tag, a name).
    pub fn is_input(&self) -> bool {
        match self {
            Error::InvalidReference { .. } | Error::NotFound { .. } | Error::NotZenithArtifact { .. } => true,
            Error::Snapshot(e) => e.is_input(),
            _ => false,
        }
    }
}
