//! The Velodrome runtime as a library: the `velodrome` binary is a thin `main` over
//! [`cli::run`]. Exposed so tests and benchmarks use the real modules (the argument parser
//! in particular, which the generator's manifests must satisfy).

pub mod cli;
mod db;
mod fetcher;
mod github;
pub mod influx;
mod observe;
mod progress;
mod shutdown;
mod token_counter;
pub mod transform;
