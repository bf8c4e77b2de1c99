//! One module per command group; each returns an exit code or a [`crate::exit::Failure`].

pub mod copy;
pub mod create;
pub mod forget;
pub mod inspect;
pub mod repo;
pub mod restore;
pub mod snapshot;
pub mod state;
pub mod verify;

/// What a command returns: an exit code, or a failure that carries its own.
pub type CmdResult = Result<u8, crate::exit::Failure>;
