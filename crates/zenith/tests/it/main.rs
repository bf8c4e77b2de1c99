//! End-to-end tests: the real `zenith` binary in temporary directories.

mod cli;
mod container;
mod crash;
mod daemon;
mod demo;
mod docker_image;
mod memory;
mod registry;
mod spec;
mod state;
mod util;
