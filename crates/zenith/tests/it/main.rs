//! End-to-end tests: the real `zenith` binary in temporary directories.

mod cli;
mod crash;
mod memory;
mod state;
mod util;
