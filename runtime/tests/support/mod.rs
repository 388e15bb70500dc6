//! Shared test harness: real services, with one database per test.
//!
//! A missing service skips the test with a message, unless VELODROME_REQUIRE_SERVICES=1
//! (set by .ci/run), which turns it into a failure.
#![allow(dead_code)]

pub mod fake_github;
pub mod fake_tokens;
pub mod influx;
pub mod mysql;
pub mod promtool;
