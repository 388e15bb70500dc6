//! `velodrome token-counter` end to end (issue 6, Must show): the real binary, a private
//! influxd, and a fake GitHub on loopback that knows three tokens, two valid (different
//! logins and numbers) and one revoked (401 "Bad credentials").
//!
//! Shown: points for both good logins and every resource each round, `github_token_count`
//! = core used, an error logged (text and JSON logs) for the revoked token with its index
//! and file, no token text in stdout, stderr or InfluxDB, one request per token and round
//! (no busy loop), and `--once` exits 1 only when no token succeeded (malformed JSON,
//! revoked and unreadable token files all logged).

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use support::fake_tokens::{Account, FakeTokens, Limit};
use support::influx::InfluxServer;

const ALPHA_TOKEN: &str = "ghp_tcAlphaSecretValue0001";
const BETA_TOKEN: &str = "github_pat_tcBetaSecretValue0002";
const REVOKED_TOKEN: &str = "ghp_tcRevokedSecretValue0003";
const TOKENS: [&str; 3] = [ALPHA_TOKEN, BETA_TOKEN, REVOKED_TOKEN];

const RESOURCES: [&str; 3] = ["core", "search", "graphql"];

fn accounts() -> Vec<Account> {
    let reset = now_s() + 1800;
    vec![
        Account {
            token: ALPHA_TOKEN.into(),
            login: "alpha-bot".into(),
            core: Limit {
                limit: 5000,
                remaining: 4321,
                reset,
            },
            search: Limit {
                limit: 30,
                remaining: 28,
                reset: reset - 1700,
            },
            graphql: Limit {
                limit: 5000,
                remaining: 4999,
                reset,
            },
            malformed: false,
        },
        Account {
            token: BETA_TOKEN.into(),
            login: "beta-robot".into(),
            core: Limit {
                limit: 15000,
                remaining: 12,
                reset: reset + 600,
            },
            search: Limit {
                limit: 30,
                remaining: 30,
                reset: reset - 1600,
            },
            graphql: Limit {
                limit: 5000,
                remaining: 3210,
                reset: reset + 600,
            },
            malformed: false,
        },
    ]
}

fn now_s() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// Writes the three token files (trailing newline, as a Secret often has) and returns
/// their paths in order alpha, beta, revoked.
fn token_files(dir: &Path) -> Vec<PathBuf> {
    ["alpha.token", "beta.token", "revoked.token"]
        .iter()
        .zip(TOKENS)
        .map(|(name, token)| {
            let path = dir.join(name);
            std::fs::write(&path, format!("{token}\n")).expect("write token file");
            path
        })
        .collect()
}

fn command(fake: &FakeTokens, influx: &InfluxServer, db: &str, files: &[PathBuf]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_velodrome"));
    cmd.arg("token-counter");
    for file in files {
        cmd.arg("--token-file").arg(file);
    }
    cmd.args(["--github-url", &fake.url])
        .args(["--influx-url", &influx.url])
        .args(["--influx-database", db])
        .env("VELODROME_LOG", "info")
        .env("VELODROME_GITHUB_BACKOFF_MS", "20")
        .env_remove("RUST_LOG")
        .env_remove("VELODROME_INFLUX_USER")
        .env_remove("VELODROME_INFLUX_PASSWORD");
    cmd
}

struct Run {
    status: ExitStatus,
    stdout: String,
    stderr: String,
}

async fn run_once(mut cmd: Command) -> Run {
    cmd.arg("--once");
    let out = tokio::task::spawn_blocking(move || cmd.output())
        .await
        .expect("join")
        .expect("run velodrome");
    Run {
        status: out.status,
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn assert_no_token(what: &str, text: &str) {
    for token in TOKENS {
        assert!(!text.contains(token), "a token leaked into {what}:\n{text}");
    }
}

/// The points of `measurement` without their time, and the times.
async fn fields_and_times(
    influx: &InfluxServer,
    db: &str,
    measurement: &str,
) -> (Vec<Vec<String>>, Vec<i64>) {
    let points = influx.points(db, measurement).await;
    let text = format!("{points:?}");
    assert_no_token("InfluxDB", &text);
    let mut fields: Vec<Vec<String>> = points.iter().map(|(_, f)| f.clone()).collect();
    fields.sort();
    (fields, points.iter().map(|(t, _)| *t).collect())
}

fn expected_rate_limit(accounts: &[Account]) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    for a in accounts {
        for (name, limit) in RESOURCES.iter().zip([a.core, a.search, a.graphql]) {
            let mut f = vec![
                format!("limit={}", limit.limit),
                format!("login={}", a.login),
                format!("remaining={}", limit.remaining),
                format!("reset={}", limit.reset),
                format!("resource={name}"),
                format!("used={}", limit.used()),
            ];
            f.sort();
            out.push(f);
        }
    }
    out.sort();
    out
}

fn expected_token_count(accounts: &[Account]) -> Vec<Vec<String>> {
    let mut out: Vec<Vec<String>> = accounts
        .iter()
        .map(|a| {
            vec![
                format!("login={}", a.login),
                format!("value={}", a.core.used()),
            ]
        })
        .collect();
    out.sort();
    out
}

/// The error lines about token 2 (the revoked one), in either log format.
fn revoked_errors(stderr: &str, json: bool, revoked: &Path) -> Vec<String> {
    let revoked = revoked.display().to_string();
    stderr
        .lines()
        .filter(|line| {
            if json {
                let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else {
                    panic!("a log line is not JSON: {line}");
                };
                v["level"] == "ERROR"
                    && v["fields"]["token_index"] == 2
                    && v["fields"]["token_file"] == revoked.as_str()
                    && v["fields"]["error"]
                        .as_str()
                        .is_some_and(|e| e.contains("401") && e.contains("Bad credentials"))
            } else {
                line.contains("ERROR")
                    && line.contains("token_index=2")
                    && line.contains(&format!("token_file={revoked}"))
                    && line.contains("HTTP 401: Bad credentials")
            }
        })
        .map(str::to_owned)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_tokens_one_revoked_once_in_text_and_json() {
    let Some(influx) = support::influx::start().await else {
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let files = token_files(dir.path());
    let accounts = accounts();
    for (format, db) in [("text", "tc_text"), ("json", "tc_json")] {
        let fake = FakeTokens::start(accounts.clone()).await;
        let before = now_s();
        let mut cmd = command(&fake, &influx, db, &files);
        cmd.args(["--log-format", format]);
        let run = run_once(cmd).await;
        let after = now_s();
        assert_no_token("stdout", &run.stdout);
        assert_no_token("stderr", &run.stderr);
        assert!(
            run.status.success(),
            "{format}: two of three tokens worked, so --once succeeds: {:?}\n{}",
            run.status,
            run.stderr
        );
        let errors = revoked_errors(&run.stderr, format == "json", &files[2]);
        assert_eq!(
            errors.len(),
            1,
            "{format}: one error line for the revoked token:\n{}",
            run.stderr
        );

        let (fields, times) = fields_and_times(&influx, db, "github_rate_limit").await;
        assert_eq!(fields, expected_rate_limit(&accounts), "{format}");
        let (counts, count_times) = fields_and_times(&influx, db, "github_token_count").await;
        assert_eq!(counts, expected_token_count(&accounts), "{format}");
        for t in times.iter().chain(&count_times) {
            let s = t / 1_000_000_000;
            assert!(
                (before..=after).contains(&s) && t % 1_000_000_000 == 0,
                "{format}: points are timestamped now, in whole seconds: {t}"
            );
        }

        // One /rate_limit per token, one /user per good token, nothing retried after 401.
        for good in [Some(0), Some(1)] {
            assert_eq!(fake.count("/rate_limit", good), 1, "{format}");
            assert_eq!(fake.count("/user", good), 1, "{format}");
        }
        assert_eq!(fake.count("/rate_limit", None), 1, "{format}");
        assert_eq!(fake.count("/user", None), 0, "{format}");
        assert_eq!(fake.log().len(), 5, "{format}: {:?}", fake.log());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loops_every_interval_without_spinning_and_fails_when_no_token_works() {
    let Some(influx) = support::influx::start().await else {
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let files = token_files(dir.path());
    let accounts = accounts();
    let fake = FakeTokens::start(accounts.clone()).await;

    // Loop with the shortest interval until three rounds are done, then SIGTERM.
    let mut cmd = command(&fake, &influx, "tc_loop", &files);
    cmd.args([
        "--interval",
        "1s",
        "--log-format",
        "json",
        "--listen",
        "127.0.0.1:0",
    ]);
    let started = Instant::now();
    let mut child = support::process::Watched::spawn(&mut cmd, "velodrome token-counter");
    let listen = child.listening_addr().await;
    // /healthz is ready after the first written round; /metrics is valid Prometheus text
    // that counts the revoked token's failures by index, never by its text.
    child.wait_for_lines("round done", 1).await;
    let (health_status, _) = http_get(&listen, "/healthz").await;
    assert!(health_status.contains("200"), "healthz: {health_status}");
    let (metrics_status, metrics) = http_get(&listen, "/metrics").await;
    assert!(metrics_status.contains("200"), "metrics: {metrics_status}");
    assert_no_token("/metrics", &metrics);
    assert!(
        metrics.contains("velodrome_tokens_errors_total{token=\"2\"}"),
        "{metrics}"
    );
    assert!(
        !metrics.contains("velodrome_tokens_successes_total{token=\"0\"} 0\n"),
        "{metrics}"
    );
    support::promtool::check_metrics(&metrics);
    child.wait_for_lines("round done", 3).await;
    support::terminate(child.id());
    let status = child.wait_exit().await;
    let elapsed = started.elapsed();
    let stderr = child.log();
    assert_no_token("output", &stderr);
    assert!(
        status.success(),
        "SIGTERM stops it cleanly: {status:?}\n{stderr}"
    );

    // A round a second, no more (no busy loop): one /rate_limit per token per round,
    // /user once per good token, and the revoked token is tried once per round.
    let rounds = fake.count("/rate_limit", Some(0));
    assert!(
        rounds >= 3 && rounds as u64 <= elapsed.as_secs() + 1,
        "{rounds} rounds in {elapsed:?}\n{stderr}"
    );
    assert_eq!(fake.count("/rate_limit", Some(1)), rounds);
    assert_eq!(fake.count("/rate_limit", None), rounds);
    assert_eq!(fake.count("/user", Some(0)), 1);
    assert_eq!(fake.count("/user", Some(1)), 1);
    assert_eq!(fake.log().len(), 3 * rounds + 2, "{:?}", fake.log());
    let errors = revoked_errors(&stderr, true, &files[2]);
    assert_eq!(errors.len(), rounds, "an error per round:\n{stderr}");

    // Points for both good logins every round (distinct seconds, so at least rounds - 1
    // distinct timestamps per series even if two rounds straddle a second oddly).
    let (counts, _) = fields_and_times(&influx, "tc_loop", "github_token_count").await;
    for a in &accounts {
        let mine = counts
            .iter()
            .filter(|f| f.contains(&format!("login={}", a.login)))
            .count();
        assert!(
            mine + 1 >= rounds && mine <= rounds,
            "{}: {mine} points in {rounds} rounds",
            a.login
        );
    }
    let (limits, _) = fields_and_times(&influx, "tc_loop", "github_rate_limit").await;
    for a in &accounts {
        for resource in RESOURCES {
            let n = limits
                .iter()
                .filter(|f| {
                    f.contains(&format!("login={}", a.login))
                        && f.contains(&format!("resource={resource}"))
                })
                .count();
            assert!(n + 1 >= rounds, "{} {resource}: {n} points", a.login);
        }
    }

    // No token works: malformed JSON (alpha's /rate_limit is broken on this fake), revoked,
    // unreadable file. --once exits 1; each failure is logged with its index and file.
    let mut broken = accounts.clone();
    broken[0].malformed = true;
    let fake = FakeTokens::start(broken).await;
    let missing = dir.path().join("missing.token");
    let mut cmd = command(
        &fake,
        &influx,
        "tc_none",
        &[files[0].clone(), files[2].clone(), missing.clone()],
    );
    cmd.args(["--log-format", "text"]);
    let run = run_once(cmd).await;
    assert_no_token("stdout", &run.stdout);
    assert_no_token("stderr", &run.stderr);
    assert_eq!(
        run.status.code(),
        Some(1),
        "no token worked:\n{}",
        run.stderr
    );
    let error_about = |index: usize, file: &Path, what: &str| {
        run.stderr.lines().any(|l| {
            l.contains("ERROR")
                && l.contains(&format!("token_index={index}"))
                && l.contains(&format!("token_file={}", file.display()))
                && l.contains(what)
        })
    };
    assert!(
        error_about(0, &files[0], "cannot decode the response"),
        "{}",
        run.stderr
    );
    assert!(error_about(1, &files[2], "HTTP 401"), "{}", run.stderr);
    assert!(
        error_about(2, &missing, "cannot read token file"),
        "{}",
        run.stderr
    );
    // A decode error is not retried within the round, and no /user follows it.
    assert_eq!(fake.count("/rate_limit", Some(0)), 1);
    assert_eq!(fake.count("/rate_limit", None), 1);
    assert_eq!(fake.log().len(), 2, "{:?}", fake.log());
    let (none, _) = fields_and_times(&influx, "tc_none", "github_token_count").await;
    assert!(none.is_empty(), "{none:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn influxdb_down_means_no_token_succeeded() {
    // A loopback port with nobody listening: connection refused.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port");
    let dir = tempfile::tempdir().expect("temp dir");
    let files = token_files(dir.path());
    let fake = FakeTokens::start(accounts()).await;
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_velodrome"));
    cmd.arg("token-counter").arg("--once");
    for file in &files {
        cmd.arg("--token-file").arg(file);
    }
    cmd.args(["--github-url", &fake.url])
        .args(["--influx-url", &format!("http://{closed}")])
        .args(["--influx-database", "monitoring"])
        .env("VELODROME_LOG", "info")
        .env_remove("RUST_LOG");
    let started = Instant::now();
    let out = tokio::task::spawn_blocking(move || cmd.output())
        .await
        .expect("join")
        .expect("run velodrome");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_no_token("stderr", &stderr);
    assert_no_token("stdout", &String::from_utf8_lossy(&out.stdout));
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("cannot write to InfluxDB"),
        "the lost write is logged:\n{stderr}"
    );
    // Bounded retries: the round ends in seconds, not minutes (loose bound: a loaded
    // machine only makes it slower).
    assert!(started.elapsed() < Duration::from_secs(45), "{stderr}");
    assert_eq!(fake.log().len(), 5, "{:?}", fake.log());
}

/// A bare HTTP/1.0 GET on loopback: (status line, body).
async fn http_get(addr: &str, path: &str) -> (String, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr)
        .await
        .expect("connect to --listen");
    stream
        .write_all(format!("GET {path} HTTP/1.0\r\nHost: x\r\n\r\n").as_bytes())
        .await
        .expect("send request");
    let mut response = String::new();
    stream
        .read_to_string(&mut response)
        .await
        .expect("read response");
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    (
        head.lines().next().unwrap_or_default().to_owned(),
        body.to_owned(),
    )
}
