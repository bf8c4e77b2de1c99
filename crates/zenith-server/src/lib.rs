//! The daemon behind `zenith serve`: the HTTP+JSON API with tokens, roles and an audit log,
//! the embedded SQLite state store, and the wiring that brings every app's controller back
//! after a restart. Deploy logic lives in `zenith-rollout`; this crate decides who may call it
//! and remembers what happened.

pub mod api;
pub mod auth;
pub mod daemon;
pub mod error;
pub mod journal;
pub mod logs;
pub mod orphans;
pub mod secret;
pub mod state;
pub mod store;

pub use daemon::{ServeConfig, ServeError, serve};
