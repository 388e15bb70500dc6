//! The command line: one subcommand per mode, the flags of DESIGN.md.
//!
//! Every flag that carries a secret reads from the environment too, so that manifests never
//! put a password on a command line (where `ps` would show it).

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Top-level arguments shared by every mode.
#[derive(Debug, Parser)]
#[command(
    name = "velodrome",
    version,
    about = "Velodrome runtime: GitHub -> MySQL -> InfluxDB"
)]
pub struct Cli {
    /// Log line format.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// Address serving /metrics and /healthz (for example 0.0.0.0:9100).
    #[arg(long, global = true)]
    pub listen: Option<std::net::SocketAddr>,
    #[command(subcommand)]
    pub mode: Mode,
}

/// How log lines are written to stderr.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

/// The three modes of the runtime.
#[derive(Debug, Subcommand)]
pub enum Mode {
    /// Mirror GitHub issues, pull requests, events and comments into MySQL.
    Fetcher(FetcherArgs),
    /// Turn the mirrored data into metrics in InfluxDB.
    Transform(TransformArgs),
    /// Record GitHub rate-limit usage per token in InfluxDB.
    TokenCounter(TokenCounterArgs),
}

/// Whether a mode runs one round or loops.
#[derive(Debug, Clone, Args)]
pub struct Schedule {
    /// Run one round, then exit.
    #[arg(long, conflicts_with = "interval")]
    pub once: bool,
    /// Time between rounds when looping (for example 30s, 5m, 1h).
    #[arg(long, value_parser = parse_duration, default_value = "5m")]
    pub interval: Duration,
}

/// Where MySQL is.
#[derive(Debug, Clone, Args)]
pub struct MysqlArgs {
    /// MySQL or MariaDB URL, for example mysql://user:password@host:3306/github.
    #[arg(long, env = "VELODROME_MYSQL_URL", hide_env_values = true)]
    pub mysql_url: String,
}

/// Where InfluxDB is.
#[derive(Debug, Clone, Args)]
pub struct InfluxArgs {
    /// InfluxDB 1.x base URL (or 2.x's v1-compatible endpoint).
    #[arg(
        long,
        env = "VELODROME_INFLUX_URL",
        default_value = "http://localhost:8086"
    )]
    pub influx_url: String,
    /// Database the points are written to.
    #[arg(long, env = "VELODROME_INFLUX_DATABASE")]
    pub influx_database: String,
    /// InfluxDB user, when authentication is on.
    #[arg(long, env = "VELODROME_INFLUX_USER")]
    pub influx_user: Option<String>,
    /// InfluxDB password; prefer the environment variable over the flag.
    #[arg(long, env = "VELODROME_INFLUX_PASSWORD", hide_env_values = true)]
    pub influx_password: Option<String>,
}

/// Where GitHub is and which tokens to use.
#[derive(Debug, Clone, Args)]
pub struct GithubArgs {
    /// GitHub API base URL (GitHub Enterprise and test servers use it).
    #[arg(
        long,
        env = "VELODROME_GITHUB_URL",
        default_value = "https://api.github.com"
    )]
    pub github_url: String,
    /// A file holding one GitHub token; repeat for a pool of tokens.
    #[arg(long = "token-file", required = true)]
    pub token_files: Vec<PathBuf>,
}

/// Where the fetcher records how fresh its mirror is (optional: without a URL, nowhere).
#[derive(Debug, Args)]
pub struct FreshnessArgs {
    /// InfluxDB to record data freshness in (measurement `velodrome_freshness`, each
    /// round); without it the fetcher records none.
    #[arg(long = "influx-url", env = "VELODROME_INFLUX_URL")]
    pub influx_url: Option<String>,
    /// User, when InfluxDB authentication is on.
    #[arg(long = "influx-user", env = "VELODROME_INFLUX_USER")]
    pub influx_user: Option<String>,
    /// Password (prefer the environment variable).
    #[arg(
        long = "influx-password",
        env = "VELODROME_INFLUX_PASSWORD",
        hide_env_values = true
    )]
    pub influx_password: Option<String>,
    /// Database of the freshness points.
    #[arg(long, default_value = "monitoring")]
    pub freshness_database: String,
}

/// `velodrome fetcher`.
#[derive(Debug, Args)]
pub struct FetcherArgs {
    /// Repository to mirror, as OWNER/NAME; repeat for several.
    #[arg(long = "repository", required = true)]
    pub repositories: Vec<String>,
    #[command(flatten)]
    pub mysql: MysqlArgs,
    #[command(flatten)]
    pub github: GithubArgs,
    #[command(flatten)]
    pub freshness: FreshnessArgs,
    #[command(flatten)]
    pub schedule: Schedule,
    /// How often each repository is swept for what GitHub deleted or moved (per-issue
    /// counts compared through GraphQL, disagreeing issues read again); a repository is
    /// also swept once after its backfill. 0 sweeps after every round; `off` never (for a
    /// server that has no GraphQL API).
    #[arg(long, env = "VELODROME_RECONCILE_EVERY", value_parser = parse_every, default_value = "24h")]
    pub reconcile_every: Every,
}

/// A period that can be turned off (`off`, `never`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Every(pub Option<Duration>);

/// Parses a duration as [`parse_duration`] does, or `off` / `never`.
pub fn parse_every(text: &str) -> Result<Every, String> {
    match text.trim() {
        "off" | "never" => Ok(Every(None)),
        other => parse_duration(other).map(|d| Every(Some(d))),
    }
}

/// `velodrome transform`.
#[derive(Debug, Args)]
pub struct TransformArgs {
    /// One repository to transform, with --metrics-file.
    #[arg(long, requires = "metrics_file", conflicts_with = "plan")]
    pub repository: Option<String>,
    /// YAML map of metric name to {plugin, args} for --repository.
    #[arg(long, requires = "repository")]
    pub metrics_file: Option<PathBuf>,
    /// The project plan rendered by velogen: every repository and metric of one project.
    #[arg(long, required_unless_present = "repository")]
    pub plan: Option<PathBuf>,
    /// Login pattern of a bot for --metrics-file (a regular expression matched against
    /// the whole login, any case); repeatable. Without it: every GitHub App (`.*\[bot\]`)
    /// and the Kubernetes robot accounts. A --plan carries the config's own list.
    #[arg(long, value_name = "PATTERN", conflicts_with = "plan")]
    pub bot: Vec<String>,
    /// Print line protocol on stdout instead of writing to InfluxDB.
    #[arg(long)]
    pub dry_run: bool,
    /// Database, on the same InfluxDB, of the freshness points (`velodrome_freshness`:
    /// how old the data each round's output covers is).
    #[arg(long, default_value = "monitoring")]
    pub freshness_database: String,
    #[command(flatten)]
    pub mysql: MysqlArgs,
    #[command(flatten)]
    pub influx: InfluxArgs,
    #[command(flatten)]
    pub schedule: Schedule,
}

/// `velodrome token-counter`.
#[derive(Debug, Args)]
pub struct TokenCounterArgs {
    #[command(flatten)]
    pub github: GithubArgs,
    #[command(flatten)]
    pub influx: InfluxArgs,
    #[command(flatten)]
    pub schedule: Schedule,
}

/// Parses `90s`, `5m`, `1h`, `2h30m` or a bare number of seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if let Ok(secs) = text.parse::<u64>() {
        return Ok(Duration::from_secs(secs));
    }
    let mut total = 0u64;
    let mut number = String::new();
    for ch in text.chars() {
        if ch.is_ascii_digit() {
            number.push(ch);
            continue;
        }
        let unit = match ch {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            _ => {
                return Err(format!(
                    "unknown unit {ch:?} in duration {text:?} (use s, m, h or d)"
                ));
            }
        };
        let value: u64 = number
            .parse()
            .map_err(|_| format!("missing number before {ch:?} in duration {text:?}"))?;
        total = total.saturating_add(value.saturating_mul(unit));
        number.clear();
    }
    if !number.is_empty() || total == 0 {
        return Err(format!("invalid duration {text:?} (examples: 30s, 5m, 1h)"));
    }
    Ok(Duration::from_secs(total))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("5m").unwrap(), Duration::from_secs(300));
        assert_eq!(parse_duration("2h30m").unwrap(), Duration::from_secs(9000));
        assert!(parse_duration("5x").is_err());
        assert!(parse_duration("m").is_err());
        assert!(parse_duration("0").is_ok());
        assert!(parse_duration("").is_err());
        assert_eq!(parse_every("off").unwrap(), Every(None));
        assert_eq!(
            parse_every("24h").unwrap(),
            Every(Some(Duration::from_secs(86_400)))
        );
    }

    #[test]
    fn cli_is_well_formed() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
