//! `/healthz` and `/metrics` on `--listen`, so the Deployment's probes and Prometheus can
//! see the fetcher: per repository, rounds that succeeded or failed, the time of the last
//! success and rows written; for the GitHub client, requests, 304s and retries.
//!
//! A few lines of HTTP/1.1 on tokio rather than a web framework: two fixed GET routes do
//! not justify the build time. Nothing here ever prints a token.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use super::sync::RoundStats;
use crate::github::Client;

/// What one repository's task has done so far.
#[derive(Debug, Default, Clone)]
struct RepoHealth {
    rounds_ok: u64,
    rounds_failed: u64,
    last_success: Option<u64>,
    issues: u64,
    comments: u64,
    events: u64,
    reviews: u64,
}

/// Shared counters of the running fetcher.
#[derive(Debug)]
pub struct Health {
    client: Arc<Client>,
    repos: Mutex<BTreeMap<String, RepoHealth>>,
}

fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl Health {
    /// Counters for `repositories` (lower-case keys), reading request totals from `client`.
    pub fn new(client: Arc<Client>, repositories: &[String]) -> Self {
        let repos = repositories
            .iter()
            .map(|r| (r.clone(), RepoHealth::default()))
            .collect();
        Health {
            client,
            repos: Mutex::new(repos),
        }
    }

    /// Records the end of a round.
    pub fn round(&self, repository: &str, result: Result<&RoundStats, ()>) {
        let mut repos = self.repos.lock().unwrap_or_else(|e| e.into_inner());
        let entry = repos.entry(repository.to_owned()).or_default();
        match result {
            Ok(stats) => {
                entry.rounds_ok += 1;
                entry.last_success = Some(now_unix());
                entry.issues += stats.issues;
                entry.comments += stats.comments;
                entry.events += stats.events;
                entry.reviews += stats.reviews;
            }
            Err(()) => entry.rounds_failed += 1,
        }
    }

    /// The Prometheus text exposition of every counter.
    pub fn metrics(&self) -> String {
        let mut out = self.client.metrics();
        let repos = self.repos.lock().unwrap_or_else(|e| e.into_inner());
        let _ = writeln!(
            out,
            "# HELP velodrome_fetcher_rounds_total Sync rounds per repository and result.\n\
             # TYPE velodrome_fetcher_rounds_total counter"
        );
        for (repo, h) in repos.iter() {
            let r = crate::observe::escape_label(repo);
            let _ = writeln!(
                out,
                "velodrome_fetcher_rounds_total{{repository=\"{r}\",result=\"ok\"}} {}",
                h.rounds_ok
            );
            let _ = writeln!(
                out,
                "velodrome_fetcher_rounds_total{{repository=\"{r}\",result=\"error\"}} {}",
                h.rounds_failed
            );
        }
        let _ = writeln!(
            out,
            "# HELP velodrome_fetcher_rows_total Rows written per repository and table.\n\
             # TYPE velodrome_fetcher_rows_total counter"
        );
        for (repo, h) in repos.iter() {
            let r = crate::observe::escape_label(repo);
            for (table, n) in [
                ("issues", h.issues),
                ("comments", h.comments),
                ("issue_events", h.events),
                ("reviews", h.reviews),
            ] {
                let _ = writeln!(
                    out,
                    "velodrome_fetcher_rows_total{{repository=\"{r}\",table=\"{table}\"}} {n}"
                );
            }
        }
        let _ = writeln!(
            out,
            "# HELP velodrome_fetcher_last_success_timestamp_seconds End of the last successful round.\n\
             # TYPE velodrome_fetcher_last_success_timestamp_seconds gauge"
        );
        for (repo, h) in repos.iter() {
            if let Some(t) = h.last_success {
                let _ = writeln!(
                    out,
                    "velodrome_fetcher_last_success_timestamp_seconds{{repository=\"{}\"}} {t}",
                    crate::observe::escape_label(repo)
                );
            }
        }
        out
    }
}

/// `/healthz` (readiness) turns 200 once every repository has finished a round, so a
/// rollout shows when the mirror is complete; `/livez` stays 200 while the process runs,
/// because a backfill round of hours is progress, not a hang. Staleness shows in
/// `/metrics` (last success per repository).
impl crate::observe::Probe for Health {
    fn ready(&self) -> Result<(), String> {
        let repos = self.repos.lock().unwrap_or_else(|e| e.into_inner());
        let waiting: Vec<&str> = repos
            .iter()
            .filter(|(_, h)| h.last_success.is_none())
            .map(|(r, _)| r.as_str())
            .collect();
        if waiting.is_empty() {
            Ok(())
        } else {
            Err(format!("first round not done yet: {}", waiting.join(", ")))
        }
    }

    fn metrics(&self) -> String {
        Health::metrics(self)
    }
}
