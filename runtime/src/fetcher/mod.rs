//! `velodrome fetcher`: see ARCHITECTURE.md.

use std::process::ExitCode;

use crate::cli::{Cli, FetcherArgs};

/// Runs the mode until it is done (`--once`) or stopped.
pub async fn run(_globals: &Cli, _args: &FetcherArgs) -> anyhow::Result<ExitCode> {
    eprintln!("error: velodrome fetcher is not implemented yet");
    Ok(ExitCode::from(2))
}
