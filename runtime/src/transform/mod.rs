//! `velodrome transform`: see ARCHITECTURE.md.

use std::process::ExitCode;

use crate::cli::{Cli, TransformArgs};

/// Runs the mode until it is done (`--once`) or stopped.
pub async fn run(_globals: &Cli, _args: &TransformArgs) -> anyhow::Result<ExitCode> {
    eprintln!("error: velodrome transform is not implemented yet");
    Ok(ExitCode::from(2))
}
