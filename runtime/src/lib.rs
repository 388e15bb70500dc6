//! The Velodrome runtime as a library: the `velodrome` binary is a thin `main` over
//! [`run`]. Exposed so tests and benchmarks use the real modules (the argument parser
//! in particular, which the generator's manifests must satisfy).

pub mod cli;
/// Every GraphQL query the fetcher can send, for the test that validates them against
/// GitHub's published schema; and GitHub's node-ID encoding, which the fake GitHub of the
/// tests uses to hand out node IDs as GitHub does.
pub mod graphql {
    pub use crate::github::all_queries;
    pub use crate::github::node_id::{database_id, encode, encode_legacy, event_id};
    pub use crate::github::queries::QueryText;
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

/// Runs the chosen mode; the exit code follows DESIGN.md (2 = could not run). Here rather
/// than in `cli`, so the modes depend on `cli` for their arguments and `cli` on nothing.
pub async fn run(cli: cli::Cli) -> anyhow::Result<std::process::ExitCode> {
    match &cli.mode {
        cli::Mode::Fetcher(args) => fetcher::run(&cli, args).await,
        cli::Mode::Transform(args) => transform::run(&cli, args).await,
        cli::Mode::TokenCounter(args) => token_counter::run(&cli, args).await,
    }
}
