//! Integration tests of the router against real backends on loopback sockets. One binary
//! (see `common` for the test backends and client); each module covers one behaviour.

mod common;
mod drain;
mod failover;
mod metrics;
mod pin_header;
mod proxy;
mod sticky;
mod upgrade;
