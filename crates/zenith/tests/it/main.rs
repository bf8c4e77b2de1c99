//! End-to-end tests: the real `zenith` binary in temporary directories.

mod cli;
mod crash;
mod daemon;
mod demo;
mod memory;
mod spec;
mod state;
mod util;
