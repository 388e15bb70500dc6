//! `velodrome token-counter`: see ARCHITECTURE.md.

use std::process::ExitCode;

use crate::cli::{Cli, TokenCounterArgs};

/// Runs the mode until it is done (`--once`) or stopped.
pub async fn run(_globals: &Cli, _args: &TokenCounterArgs) -> anyhow::Result<ExitCode> {
    eprintln!("error: velodrome token-counter is not implemented yet");
    Ok(ExitCode::from(2))
}
