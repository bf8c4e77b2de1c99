//! Integration tests of the router against real backends on loopback sockets. One binary
//! (see `common` for the test backends and client); each module covers one behaviour.

mod common;
mod drain;
mod failover;
mod metrics;
mod proxy;
mod upgrade;
