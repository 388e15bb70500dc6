//! Shared test harness: real services, with one database per test.
//!
//! A missing service skips the test with a message, unless VELODROME_REQUIRE_SERVICES=1
//! (set by .ci/run), which turns it into a failure.
#![allow(dead_code)]

pub mod bundled;
pub mod fake_github;
pub mod fake_tokens;
pub mod history;
pub mod influx;
pub mod mysql;
pub mod process;
pub mod promtool;

/// Sends SIGTERM to process `pid`, as Kubernetes does on a rollout (std can only SIGKILL).
pub fn terminate(pid: u32) {
    let status = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .expect("run kill");
    assert!(status.success(), "kill -TERM {pid} failed");
}
