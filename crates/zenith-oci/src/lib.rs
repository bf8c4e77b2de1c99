//! zenith's OCI registry transport: carry snapshots to and from any registry that speaks the
//! OCI distribution API, as artifacts whose layers are the (encrypted) files of a repository
//! holding just that snapshot. The registry stores ciphertext only; pulling needs the
//! repository password.
//!
//! Like the engine, this crate never prints: [`push::push`] and [`pull::pull`] return
//! reports and tell their progress through [`zenith_snapshot::progress::Progress`]. The
//! artifact's layout is described in `docs/repository-format.md` ("OCI artifact").

pub mod auth;
pub mod client;
pub mod error;
pub mod manifest;
pub mod pull;
pub mod push;
pub mod reference;

pub use client::{Client, ClientOptions};
pub use error::{Error, Result};
pub use reference::Reference;
