//! One module per command group; each returns an exit code or a [`crate::exit::Failure`].

pub mod admin;
pub mod apps;
pub mod container;
pub mod copy;
pub mod create;
pub mod demo;
pub mod demo_app;
pub mod deploy;
pub mod forget;
pub mod inspect;
pub mod push;
pub mod recover;
pub mod repo;
pub mod restore;
pub mod rollout;
pub(crate) mod rollout_view;
pub mod serve;
pub mod snapshot;
pub mod spec;
pub mod state;
pub mod verify;

/// What a command returns: an exit code, or a failure that carries its own.
pub type CmdResult = Result<u8, crate::exit::Failure>;
