//! The runtime crate's integration tests: real processes (`/bin/sh` and coreutils only), real
//! files and real sockets. Waits are bounded and generous; nothing asserts on elapsed time.

mod common;
mod exec;
mod health;
mod lifecycle;
mod logs;
mod stop_adopt;
