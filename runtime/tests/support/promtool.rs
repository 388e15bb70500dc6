//! `promtool check metrics` over a mode's `/metrics` exposition.

use std::process::{Command, Stdio};

/// `promtool check metrics` accepts the exposition (a missing promtool fails under
/// VELODROME_REQUIRE_SERVICES=1, else skips this check).
pub fn check_metrics(text: &str) {
    use std::io::Write as _;
    let child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(child) => child,
        Err(err) => {
            assert!(
                !super::mysql::services_required(),
                "promtool is required: {err}"
            );
            eprintln!("skipping promtool check: {err}");
            return;
        }
    };
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(text.as_bytes()).expect("promtool stdin");
    }
    let out = child.wait_with_output().expect("promtool runs");
    assert!(
        out.status.success(),
        "promtool check metrics: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
