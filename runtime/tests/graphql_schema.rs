//! Every GraphQL query the fetcher can send validates against GitHub's published schema
//! (`@octokit/graphql-schema`, checked by `.ci/graphql-schema/validate.mjs` with graphql-js),
//! variables included; and the check is real: a misspelt field fails it.
//!
//! The validator is found at `VELODROME_GRAPHQL_SCHEMA_DIR`, else
//! `$VELODROME_CI_PREFIX/graphql-schema`, else `/opt/velodrome-ci/graphql-schema` (where
//! `bash .ci/run --setup-only` installs it). Missing, the test skips with a message, unless
//! `VELODROME_REQUIRE_SERVICES=1`, which makes it fail.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::json;
use velodrome::graphql::{QueryText, all_queries};

fn validator_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("VELODROME_GRAPHQL_SCHEMA_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            std::env::var_os("VELODROME_CI_PREFIX")
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from("/opt/velodrome-ci"))
                .join("graphql-schema")
        });
    let ready = dir.join("validate.mjs").is_file()
        && dir
            .join("node_modules/@octokit/graphql-schema/schema.json")
            .is_file()
        && Command::new("node")
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success());
    if ready {
        return Some(dir);
    }
    let message = format!(
        "GraphQL schema validator not found in {} (node, validate.mjs, node_modules/@octokit/graphql-schema); \
         bash .ci/run --setup-only installs it, VELODROME_GRAPHQL_SCHEMA_DIR points at it",
        dir.display()
    );
    if std::env::var("VELODROME_REQUIRE_SERVICES").is_ok_and(|v| v == "1") {
        panic!("{message}; VELODROME_REQUIRE_SERVICES=1 forbids skipping");
    }
    eprintln!("SKIPPED: {message}");
    None
}

/// Runs the validator over `queries`: (exit code, problems printed).
fn validate(dir: &Path, queries: &[QueryText]) -> (Option<i32>, String) {
    let input: Vec<serde_json::Value> = queries
        .iter()
        .map(|q| json!({"name": q.name, "text": q.text, "variables": q.variables}))
        .collect();
    let mut child = Command::new("node")
        .arg(dir.join("validate.mjs"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run node");
    let body = serde_json::to_vec(&input).expect("encode");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(&body)
        .expect("write the queries");
    let out = child.wait_with_output().expect("wait for node");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code(), text)
}

#[test]
fn every_query_the_fetcher_sends_validates_against_githubs_schema() {
    let Some(dir) = validator_dir() else {
        return;
    };
    let queries = all_queries();
    assert!(queries.len() >= 300, "{} queries", queries.len());
    let (code, text) = validate(&dir, &queries);
    assert_eq!(code, Some(0), "{text}");
    assert!(
        text.contains(&format!("{n} of {n} documents valid", n = queries.len())),
        "{text}"
    );
}

#[test]
fn the_check_fails_on_a_misspelt_field_and_a_wrong_enum_value() {
    let Some(dir) = validator_dir() else {
        return;
    };
    let good = all_queries()
        .into_iter()
        .find(|q| q.name == "PullRequestTimelines")
        .expect("a timeline query");
    let mut misspelt = good.clone();
    misspelt.text = good.text.replacen("submittedAt", "submitedAt", 1);
    assert_ne!(misspelt.text, good.text);
    let mut wrong_enum = good.clone();
    wrong_enum.variables["types"][0] = json!("LABELLED_EVENT");
    let (code, text) = validate(&dir, &[good, misspelt, wrong_enum]);
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("submitedAt"), "{text}");
    assert!(text.contains("LABELLED_EVENT"), "{text}");
    assert!(text.contains("1 of 3 documents valid"), "{text}");
}
