//! `velodrome token-counter`: records the GitHub rate-limit usage of each token in InfluxDB.
//!
//! Every round, for each `--token-file` (concurrently): read the file, GET `/rate_limit`
//! (free of charge) and, once per token, GET `/user` for its login. Each resource present
//! among core, search and graphql becomes one point of `github_rate_limit` (tags `login`,
//! `resource`; integer fields `limit`, `remaining`, `used`, `reset`), and core also becomes
//! one point of `github_token_count` (tag `login`, field `value` = core used), the
//! measurement the original dashboards read (spec/original-deploy.md section 5). All points
//! of a round go to InfluxDB in one write, timestamped now in seconds.
//!
//! What is fixed relative to the original:
//! - One failing token (unreadable file, 401, network error, malformed JSON) is logged with
//!   its index and file path, never its text, and retried next round; the others go on. The
//!   original's `glog.Fatalf` in one goroutine killed every token.
//! - No busy loop: every failure waits for the next round, and the interval has a floor.
//!   The original `continue`d with no sleep once the reset time had passed.
//! - Readings are taken on a fixed interval instead of "just before the reset", so no calls
//!   go uncounted and an idle token is not reported as a spurious 0.
//!
//! Exit codes: with `--once`, 0 when at least one token was read and written, 1 when none
//! was (every token failed, or InfluxDB refused the write); looping, 0 after SIGTERM or
//! Ctrl-C (the current round is finished first).

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::Deserialize;

use crate::cli::{Cli, TokenCounterArgs};
use crate::github::{Client, ClientConfig, Fetched, GithubError, Token, TokenPool};
use crate::influx::{Batch, Field, Influx, InfluxConfig, Precision};

/// The resources written, in this order (GitHub lists more; these are the ones that matter
/// to the dashboards and to the fetcher's budget).
const RESOURCES: [&str; 3] = ["core", "search", "graphql"];

/// Shortest pause between rounds, so neither `--interval 0` nor a round that overran the
/// interval can turn into a hot loop.
const MIN_INTERVAL: Duration = Duration::from_secs(1);

/// Per-request timeout: short, so one unreachable or hanging token cannot stall a round for
/// minutes (the fetcher's 30 s x 8 attempts would).
const TIMEOUT: Duration = Duration::from_secs(10);

/// Counters of the token counter, kept for a later `/metrics` endpoint (issue 6) and logged
/// after every round meanwhile. Token entries follow the order of `--token-file`.
#[derive(Debug)]
pub struct Counters {
    /// Rounds completed.
    pub rounds: AtomicU64,
    /// Points written to InfluxDB.
    pub points_written: AtomicU64,
    /// Writes to InfluxDB that failed (the round's points are lost; the next round writes
    /// fresh readings).
    pub write_errors: AtomicU64,
    /// Per token: rounds in which its reading was written.
    pub token_successes: Vec<AtomicU64>,
    /// Per token: rounds in which it failed (file, GitHub, payload or write).
    pub token_errors: Vec<AtomicU64>,
    /// Per token: core requests remaining at its last reading, -1 before the first one.
    pub core_remaining: Vec<AtomicI64>,
}

impl Counters {
    /// Zeroed counters for `tokens` tokens.
    pub fn new(tokens: usize) -> Self {
        Counters {
            rounds: AtomicU64::new(0),
            points_written: AtomicU64::new(0),
            write_errors: AtomicU64::new(0),
            token_successes: (0..tokens).map(|_| AtomicU64::new(0)).collect(),
            token_errors: (0..tokens).map(|_| AtomicU64::new(0)).collect(),
            core_remaining: (0..tokens).map(|_| AtomicI64::new(-1)).collect(),
        }
    }

    fn bump(list: &[AtomicU64], index: usize) {
        if let Some(counter) = list.get(index) {
            counter.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Errors per token as `[n0, n1, ...]`, for the round log line.
    fn errors_text(&self) -> String {
        let values: Vec<String> = self
            .token_errors
            .iter()
            .map(|c| c.load(Ordering::Relaxed).to_string())
            .collect();
        format!("[{}]", values.join(","))
    }
}

/// `/healthz` is ready once a token's reading was written; `/metrics` labels tokens by their
/// index in `--token-file` order, never by anything a token contains.
impl crate::observe::Probe for Counters {
    fn ready(&self) -> Result<(), String> {
        let written = self
            .token_successes
            .iter()
            .any(|c| c.load(Ordering::Relaxed) > 0);
        if written {
            Ok(())
        } else {
            Err("no token reading written yet".to_owned())
        }
    }

    fn metrics(&self) -> String {
        use std::fmt::Write as _;
        let mut out = String::new();
        let mut counter = |name: &str, help: &str, value: u64| {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {value}"
            );
        };
        counter(
            "velodrome_tokens_rounds_total",
            "Rounds completed.",
            self.rounds.load(Ordering::Relaxed),
        );
        counter(
            "velodrome_tokens_points_written_total",
            "Points written to InfluxDB.",
            self.points_written.load(Ordering::Relaxed),
        );
        counter(
            "velodrome_tokens_write_errors_total",
            "InfluxDB writes that failed.",
            self.write_errors.load(Ordering::Relaxed),
        );
        let per_token = |out: &mut String, name: &str, help: &str, kind: &str, values: Vec<i64>| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
            for (index, value) in values.into_iter().enumerate() {
                let _ = writeln!(out, "{name}{{token=\"{index}\"}} {value}");
            }
        };
        let load = |list: &[AtomicU64]| {
            list.iter()
                .map(|c| i64::try_from(c.load(Ordering::Relaxed)).unwrap_or(i64::MAX))
                .collect()
        };
        per_token(
            &mut out,
            "velodrome_tokens_successes_total",
            "Rounds in which the token's reading was written.",
            "counter",
            load(&self.token_successes),
        );
        per_token(
            &mut out,
            "velodrome_tokens_errors_total",
            "Rounds in which the token failed.",
            "counter",
            load(&self.token_errors),
        );
        per_token(
            &mut out,
            "velodrome_github_core_remaining",
            "Core API requests left at the token's last reading (-1 before the first).",
            "gauge",
            self.core_remaining
                .iter()
                .map(|c| c.load(Ordering::Relaxed))
                .collect(),
        );
        out
    }
}

/// One resource of GitHub's `/rate_limit` answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
struct Resource {
    limit: i64,
    remaining: i64,
    /// Epoch seconds of the next refill.
    reset: i64,
    /// Absent on older GitHub Enterprise servers: then limit - remaining.
    #[serde(default)]
    used: Option<i64>,
}

impl Resource {
    fn used(&self) -> i64 {
        self.used
            .unwrap_or_else(|| self.limit.saturating_sub(self.remaining))
    }
}

/// The part of `/rate_limit` we read; other resources (code_search, integration_manifest,
/// ...) and the deprecated top-level `rate` are ignored.
#[derive(Debug, Deserialize)]
struct RateLimitBody {
    resources: Resources,
}

#[derive(Debug, Default, Deserialize)]
struct Resources {
    #[serde(default)]
    core: Option<Resource>,
    #[serde(default)]
    search: Option<Resource>,
    #[serde(default)]
    graphql: Option<Resource>,
}

impl Resources {
    fn get(&self, name: &str) -> Option<&Resource> {
        match name {
            "core" => self.core.as_ref(),
            "search" => self.search.as_ref(),
            "graphql" => self.graphql.as_ref(),
            _ => None,
        }
    }
}

/// Why one token's round failed; the text never holds the token.
#[derive(Debug, thiserror::Error)]
enum PollError {
    #[error(transparent)]
    Github(#[from] GithubError),
    #[error("{0}")]
    Payload(String),
}

impl PollError {
    fn is_unauthorized(&self) -> bool {
        matches!(
            self,
            PollError::Github(GithubError::Status { status: 401, .. })
        )
    }
}

/// One token's successful reading.
#[derive(Debug)]
struct Reading {
    login: String,
    resources: Resources,
    /// Epoch seconds when `/rate_limit` answered.
    at: u64,
}

fn now_epoch() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Client settings for one token: short timeout, two attempts, short waits. A failure is
/// retried next round rather than inside this one. `VELODROME_GITHUB_TIMEOUT_S` and
/// `VELODROME_GITHUB_BACKOFF_MS` tune it as for the fetcher.
fn client_config(base_url: &str) -> ClientConfig {
    let mut config = ClientConfig {
        base_url: base_url.to_owned(),
        timeout: TIMEOUT,
        max_attempts: 2,
        backoff_base: Duration::from_millis(500),
        backoff_cap: Duration::from_secs(2),
        // Never rest the token: /rate_limit is free, and a spent token is exactly the one
        // whose numbers matter.
        low_water: 0,
        max_wait: Duration::from_secs(5),
    };
    if let Some(secs) = env_number("VELODROME_GITHUB_TIMEOUT_S") {
        config.timeout = Duration::from_secs(secs.max(1));
    }
    if let Some(ms) = env_number("VELODROME_GITHUB_BACKOFF_MS") {
        config.backoff_base = Duration::from_millis(ms);
    }
    config
}

fn env_number(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.trim().parse().ok())
}

fn parse_rate_limit(url: &str, body: &[u8]) -> Result<Resources, PollError> {
    let parsed: RateLimitBody =
        serde_json::from_slice(body).map_err(|err| GithubError::Decode {
            url: url.to_owned(),
            message: err.to_string(),
        })?;
    if RESOURCES
        .iter()
        .all(|name| parsed.resources.get(name).is_none())
    {
        return Err(PollError::Payload(format!(
            "GET {url}: none of core, search, graphql in `resources`"
        )));
    }
    Ok(parsed.resources)
}

fn parse_login(url: &str, body: &[u8]) -> Result<String, PollError> {
    let user: crate::github::models::User =
        serde_json::from_slice(body).map_err(|err| GithubError::Decode {
            url: url.to_owned(),
            message: err.to_string(),
        })?;
    match user.login {
        Some(login) if !login.trim().is_empty() => Ok(login),
        _ => Err(PollError::Payload(format!(
            "GET {url}: no login in the answer"
        ))),
    }
}

async fn get_body(client: &Client, url: &str) -> Result<Vec<u8>, PollError> {
    match client.get(url, None).await? {
        Fetched::Page { body, .. } => Ok(body),
        Fetched::NotModified => Err(PollError::Payload(format!(
            "GET {url}: unexpected 304 without a conditional request"
        ))),
    }
}

/// One token's round: read its file (again every round, so a rotated Secret is picked up),
/// read `/rate_limit`, and learn the login if it is not known yet.
///
/// A fresh single-token client per round: the shared pool rests a token whose core budget
/// is spent until its reset, which would block the free `/rate_limit` call at the moment
/// it matters most.
async fn poll(
    path: &Path,
    config: &ClientConfig,
    login: Option<String>,
    shutdown: crate::shutdown::Shutdown,
) -> Result<Reading, PollError> {
    let token = Token::from_file(path)?;
    let pool = TokenPool::new(vec![token], config.low_water)?;
    let client = Client::new(config.clone(), pool)?.stopping_on(shutdown);
    let url = client.url("/rate_limit");
    let body = get_body(&client, &url).await?;
    let at = now_epoch();
    let resources = parse_rate_limit(&url, &body)?;
    let login = match login {
        Some(login) => login,
        None => {
            // /user costs one core request: with none left GitHub answers 403 and the
            // client would wait for the reset. Learn the login after the reset instead.
            if let Some(core) = resources.core.filter(|c| c.remaining <= 0) {
                return Err(PollError::Payload(format!(
                    "core budget spent before the login was learned; retrying after the reset at {}",
                    core.reset
                )));
            }
            let url = client.url("/user");
            let body = get_body(&client, &url).await?;
            parse_login(&url, &body)?
        }
    };
    Ok(Reading {
        login,
        resources,
        at,
    })
}

/// Adds one reading's points: one per resource present, plus `github_token_count` for core.
/// Returns how many points were added.
fn add_points(batch: &mut Batch, reading: &Reading) -> Result<usize, crate::influx::InfluxError> {
    let mut added = 0;
    for name in RESOURCES {
        let Some(r) = reading.resources.get(name) else {
            continue;
        };
        batch.add(
            "github_rate_limit",
            &[("login", reading.login.as_str()), ("resource", name)],
            &[
                ("limit", Field::Int(r.limit)),
                ("remaining", Field::Int(r.remaining)),
                ("used", Field::Int(r.used())),
                ("reset", Field::Int(r.reset)),
            ],
            reading.at,
        )?;
        added += 1;
    }
    if let Some(core) = &reading.resources.core {
        batch.add(
            "github_token_count",
            &[("login", reading.login.as_str())],
            &[("value", Field::Int(core.used()))],
            reading.at,
        )?;
        added += 1;
    }
    Ok(added)
}

/// The state kept across rounds.
struct Counter {
    files: Vec<PathBuf>,
    /// Login per token once `/user` answered; forgotten after a 401 so that a replaced
    /// token is identified again.
    logins: Vec<Option<String>>,
    config: ClientConfig,
    influx: Influx,
    database_ready: bool,
    counters: Arc<Counters>,
    /// Cuts a rate-limit wait inside a round short on SIGTERM.
    shutdown: crate::shutdown::Shutdown,
}

impl Counter {
    /// Runs one round; returns how many tokens had their points written.
    async fn round(&mut self) -> usize {
        let started = Instant::now();
        let handles: Vec<_> = self
            .files
            .iter()
            .zip(self.logins.iter())
            .map(|(path, login)| {
                let (path, login, config) = (path.clone(), login.clone(), self.config.clone());
                let shutdown = self.shutdown.clone();
                tokio::spawn(async move { poll(&path, &config, login, shutdown).await })
            })
            .collect();
        let mut readings = Vec::new();
        let mut failed = 0usize;
        for (index, handle) in handles.into_iter().enumerate() {
            let path = self.files[index].display().to_string();
            let result = match handle.await {
                Ok(result) => result,
                Err(err) => Err(PollError::Payload(format!("token task failed: {err}"))),
            };
            match result {
                Ok(reading) => {
                    if self.logins[index].is_none() {
                        tracing::info!(token_index = index, token_file = %path, login = %reading.login, "token identified");
                    }
                    self.logins[index] = Some(reading.login.clone());
                    if let (Some(core), Some(slot)) = (
                        reading.resources.core,
                        self.counters.core_remaining.get(index),
                    ) {
                        slot.store(core.remaining, Ordering::Relaxed);
                    }
                    readings.push((index, reading));
                }
                Err(err) => {
                    failed += 1;
                    Counters::bump(&self.counters.token_errors, index);
                    if err.is_unauthorized() {
                        self.logins[index] = None;
                        tracing::error!(token_index = index, token_file = %path, error = %err,
                            "GitHub rejected the token (revoked or expired?); retrying next round");
                    } else {
                        tracing::error!(token_index = index, token_file = %path, error = %err,
                            "cannot read the token's rate limit; retrying next round");
                    }
                }
            }
        }
        let written = self.write(&readings).await;
        self.counters.rounds.fetch_add(1, Ordering::Relaxed);
        tracing::info!(
            round = self.counters.rounds.load(Ordering::Relaxed),
            tokens_ok = written,
            tokens_failed = self.files.len() - written,
            read_failures = failed,
            points_written_total = self.counters.points_written.load(Ordering::Relaxed),
            errors_per_token = %self.counters.errors_text(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "round done"
        );
        written
    }

    /// Writes the round's readings in one request; returns how many tokens were written.
    async fn write(&mut self, readings: &[(usize, Reading)]) -> usize {
        if readings.is_empty() {
            return 0;
        }
        let mut batch = Batch::new(Precision::Seconds, readings.len() * (RESOURCES.len() + 1));
        let mut points = 0;
        let mut included = Vec::new();
        for (index, reading) in readings {
            match add_points(&mut batch, reading) {
                Ok(n) => {
                    points += n;
                    included.push(*index);
                }
                Err(err) => {
                    Counters::bump(&self.counters.token_errors, *index);
                    tracing::error!(token_index = index, error = %err, "cannot build the token's points");
                }
            }
        }
        if !self.database_ready {
            match self.influx.create_database().await {
                Ok(()) => self.database_ready = true,
                // A user without admin rights cannot create it; the write below tells.
                Err(err) => tracing::warn!(database = self.influx.database(), error = %err,
                    "cannot create the database; writing anyway"),
            }
        }
        match self.influx.write(&mut batch).await {
            Ok(()) => {
                self.database_ready = true;
                self.counters
                    .points_written
                    .fetch_add(points as u64, Ordering::Relaxed);
                for index in &included {
                    Counters::bump(&self.counters.token_successes, *index);
                }
                included.len()
            }
            Err(err) => {
                self.counters.write_errors.fetch_add(1, Ordering::Relaxed);
                for index in &included {
                    Counters::bump(&self.counters.token_errors, *index);
                }
                tracing::error!(database = self.influx.database(), points, error = %err,
                    "cannot write to InfluxDB; this round's readings are lost");
                0
            }
        }
    }
}

/// Runs the mode until it is done (`--once`) or stopped (see the module docs for the exit
/// codes).
pub async fn run(globals: &Cli, args: &TokenCounterArgs) -> anyhow::Result<ExitCode> {
    crate::observe::init_logging(globals.log_format);
    let shutdown = crate::shutdown::Shutdown::on_signals();
    let tokens = args.github.token_files.len();
    let interval = if args.schedule.interval < MIN_INTERVAL {
        tracing::warn!(
            interval_ms = args.schedule.interval.as_millis() as u64,
            "interval too short; using 1s"
        );
        MIN_INTERVAL
    } else {
        args.schedule.interval
    };
    let influx = Influx::new(&InfluxConfig {
        url: args.influx.influx_url.clone(),
        database: args.influx.influx_database.clone(),
        user: args.influx.influx_user.clone(),
        password: args.influx.influx_password.clone(),
    });
    let mut counter = Counter {
        files: args.github.token_files.clone(),
        logins: vec![None; tokens],
        config: client_config(&args.github.github_url),
        influx,
        database_ready: false,
        counters: Arc::new(Counters::new(tokens)),
        shutdown: shutdown.clone(),
    };
    if let Some(addr) = globals.listen
        && let Err(err) = crate::observe::serve(addr, counter.counters.clone()).await
    {
        tracing::error!(%addr, "cannot listen: {err}");
        return Ok(ExitCode::from(2));
    }
    tracing::info!(
        tokens,
        github = %args.github.github_url,
        database = %args.influx.influx_database,
        once = args.schedule.once,
        interval_s = interval.as_secs(),
        "token counter starting"
    );
    loop {
        let started = tokio::time::Instant::now();
        let written = counter.round().await;
        if args.schedule.once {
            return Ok(if written > 0 {
                ExitCode::SUCCESS
            } else {
                tracing::error!("no token could be read and written");
                ExitCode::from(1)
            });
        }
        // A round that overran the interval (slow GitHub) still leaves a gap before the next.
        let next = (started + interval).max(tokio::time::Instant::now() + MIN_INTERVAL);
        if !shutdown
            .sleep(next.saturating_duration_since(tokio::time::Instant::now()))
            .await
        {
            tracing::info!("stopped");
            return Ok(ExitCode::SUCCESS);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BODY: &str = r#"{
      "resources": {
        "core": {"limit": 5000, "used": 12, "remaining": 4988, "reset": 1700000000},
        "search": {"limit": 30, "used": 0, "remaining": 30, "reset": 1700000060},
        "graphql": {"limit": 5000, "remaining": 4900, "reset": 1700000000},
        "integration_manifest": {"limit": 5000, "used": 0, "remaining": 5000, "reset": 1}
      },
      "rate": {"limit": 5000, "used": 12, "remaining": 4988, "reset": 1700000000}
    }"#;

    #[test]
    fn reads_resources_and_computes_missing_used() {
        let r = parse_rate_limit("u", BODY.as_bytes()).expect("valid body");
        assert_eq!(r.core.map(|c| c.used()), Some(12));
        assert_eq!(r.graphql.map(|c| c.used()), Some(100));
        let reading = Reading {
            login: "bot, one".into(),
            resources: r,
            at: 1_700_000_001,
        };
        let mut batch = Batch::new(Precision::Seconds, 8);
        assert_eq!(add_points(&mut batch, &reading).ok(), Some(4));
        let text = batch.line_protocol();
        assert!(text.contains(
            "github_rate_limit,login=bot\\,\\ one,resource=core limit=5000i,remaining=4988i,used=12i,reset=1700000000i 1700000001"
        ), "{text}");
        assert!(
            text.contains("github_token_count,login=bot\\,\\ one value=12i 1700000001"),
            "{text}"
        );
    }

    #[test]
    fn malformed_payloads_are_errors() {
        assert!(parse_rate_limit("u", b"{\"resources\":").is_err());
        assert!(parse_rate_limit("u", b"{\"resources\":{}}").is_err());
        assert!(parse_rate_limit("u", b"[]").is_err());
        assert!(parse_login("u", b"{\"login\":null}").is_err());
        assert!(parse_login("u", b"{\"login\":\"\"}").is_err());
        assert_eq!(
            parse_login("u", b"{\"login\":\"a\",\"id\":1}")
                .ok()
                .as_deref(),
            Some("a")
        );
    }
}
