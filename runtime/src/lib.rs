//! The Velodrome runtime as a library: the `velodrome` binary is a thin `main` over
//! [`cli::run`]. Exposed so tests and benchmarks use the real modules (the argument parser
//! in particular, which the generator's manifests must satisfy).

pub mod cli;
/// Every GraphQL query the fetcher can send, for the test that validates them against
/// GitHub's published schema; and GitHub's node-ID encoding, which the fake GitHub of the
/// tests uses to hand out node IDs as GitHub does.
pub mod graphql {
    pub use crate::github::node_id::{database_id, encode, encode_legacy, event_id};
    pub use crate::github::queries::{QueryText, all_queries};
}

mod db;
mod fetcher;
mod freshness;
mod github;
pub mod influx;
mod observe;
mod progress;
mod shutdown;
mod token_counter;
pub mod transform;
