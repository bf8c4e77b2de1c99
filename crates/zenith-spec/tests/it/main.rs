//! Integration tests of zenith-spec: where each class of error is reported, the repository's
//! examples, round trips, and docker-compose import.

mod compose;
mod container;
mod errors;
mod examples;
mod rollout;
mod rollout_errors;
mod state;
