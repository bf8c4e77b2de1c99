//! Exit codes, decided in one place (documented in docs/cli.md).

use zenith_snapshot::Error;

/// Success.
pub const OK: u8 = 0;
/// The operation ran and found a problem: verify found damage, a restore is incomplete, an
/// I/O error stopped the operation.
pub const PROBLEM: u8 = 1;
/// Usage or input error: a bad flag, an unknown snapshot, an invalid path or policy.
pub const USAGE: u8 = 2;
/// A snapshot was written, but some files could not be read and are missing from it.
pub const INCOMPLETE: u8 = 3;
/// No repository at the given location.
pub const NO_REPOSITORY: u8 = 10;
/// The password opens no key of the repository.
pub const WRONG_PASSWORD: u8 = 11;
/// Another process holds a conflicting lock.
pub const LOCKED: u8 = 12;

/// The daemon cannot be found or reached.
pub const NO_DAEMON: u8 = 20;
/// The daemon refused the token (missing, unknown, or its role does not allow the call).
pub const DENIED: u8 = 21;

/// A command's failure with the exit code it maps to.
#[derive(Debug)]
pub struct Failure {
    pub code: u8,
    pub error: anyhow::Error,
}

impl From<anyhow::Error> for Failure {
    fn from(error: anyhow::Error) -> Failure {
        let code = match error.downcast_ref::<Error>() {
            Some(Error::NotARepository { .. }) => NO_REPOSITORY,
            Some(Error::WrongPassword { .. }) => WRONG_PASSWORD,
            Some(Error::Locked(_)) => LOCKED,
            Some(e) if e.is_input() => USAGE,
            _ if error.downcast_ref::<UsageError>().is_some() => USAGE,
            _ if error
                .downcast_ref::<zenith_container::Error>()
                .is_some_and(zenith_container::Error::is_input) =>
            {
                USAGE
            }
            _ => PROBLEM,
        };
        Failure { code, error }
    }
}

impl From<Error> for Failure {
    fn from(e: Error) -> Failure {
        anyhow::Error::from(e).into()
    }
}

/// An input error found by the CLI itself.
#[derive(Debug)]
pub struct UsageError(pub String);

impl std::fmt::Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

/// Fail with a usage error.
pub fn usage(msg: impl Into<String>) -> anyhow::Error {
    UsageError(msg.into()).into()
}
