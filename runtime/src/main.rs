//! `velodrome`: the runtime, one binary with three modes over shared GitHub, MySQL and
//! InfluxDB layers. See ARCHITECTURE.md for the map.

use std::process::ExitCode;

use clap::Parser;
use velodrome::cli;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(err) => {
            eprintln!("error: cannot start the async runtime: {err}");
            return ExitCode::from(2);
        }
    };
    match runtime.block_on(velodrome::run(cli)) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::from(1)
        }
    }
}
