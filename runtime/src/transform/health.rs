//! `/healthz`, `/livez` and `/metrics` for the transform (`--listen`): the rendered
//! Deployment probes the first two, and Prometheus scrapes `/metrics` (the original had no
//! signal at all, spec 9.20).
//!
//! Ready means every repository has finished a round. Live means "making progress": a row
//! was processed or a round finished within the stall limit (three intervals, at least ten
//! minutes). A first replay of a long history keeps reading rows, so it stays live; a
//! process stuck on a dead connection does not.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Counters of one repository.
#[derive(Debug, Default, Clone)]
struct RepoStats {
    rounds_ok: u64,
    rounds_failed: u64,
    items_read: u64,
    points_written: u64,
    recomputes: u64,
    last_success: Option<u64>,
}

/// What the transform reports about itself; shared between rounds and the HTTP server.
#[derive(Debug)]
pub struct Stats {
    started: Instant,
    progress_ms: AtomicU64,
    stall: Duration,
    repos: Mutex<BTreeMap<String, RepoStats>>,
}

impl Stats {
    /// New counters for `repositories`; `interval` sets the stall limit.
    pub fn new(interval: Duration, repositories: &[&str]) -> Self {
        let repos = repositories
            .iter()
            .map(|r| ((*r).to_owned(), RepoStats::default()))
            .collect();
        Self {
            started: Instant::now(),
            progress_ms: AtomicU64::new(0),
            stall: (interval * 3).max(Duration::from_secs(600)),
            repos: Mutex::new(repos),
        }
    }

    /// The repositories that have not finished a round yet.
    fn waiting(&self) -> Vec<String> {
        let repos = self.repos.lock().unwrap_or_else(|e| e.into_inner());
        repos
            .iter()
            .filter(|(_, s)| s.last_success.is_none())
            .map(|(r, _)| r.clone())
            .collect()
    }

    /// Marks progress now (cheap: one atomic store).
    pub fn progress(&self) {
        let ms = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.progress_ms.store(ms, Ordering::Relaxed);
    }

    fn update(&self, repository: &str, change: impl FnOnce(&mut RepoStats)) {
        if let Ok(mut repos) = self.repos.lock() {
            change(repos.entry(repository.to_owned()).or_default());
        }
    }

    /// Records a finished round.
    pub fn round(&self, repository: &str, ok: bool, read: u64, written: u64) {
        self.progress();
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        self.update(repository, |s| {
            s.items_read += read;
            s.points_written += written;
            if ok {
                s.rounds_ok += 1;
                s.last_success = Some(now);
            } else {
                s.rounds_failed += 1;
            }
        });
    }

    /// Records that a metric's points are being recomputed.
    pub fn recompute(&self, repository: &str) {
        self.update(repository, |s| s.recomputes += 1);
    }

    /// True while the process makes progress.
    pub fn healthy(&self) -> bool {
        let last = Duration::from_millis(self.progress_ms.load(Ordering::Relaxed));
        self.started.elapsed().saturating_sub(last) < self.stall
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let repos = match self.repos.lock() {
            Ok(repos) => repos.clone(),
            Err(_) => BTreeMap::new(),
        };
        let mut out = String::new();
        let families: [(&str, &str, &str); 5] = [
            (
                "velodrome_transform_rounds_total",
                "counter",
                "Rounds finished per repository, by result.",
            ),
            (
                "velodrome_transform_items_read_total",
                "counter",
                "Issues, events and comments read from MySQL.",
            ),
            (
                "velodrome_transform_points_written_total",
                "counter",
                "Points written to InfluxDB.",
            ),
            (
                "velodrome_transform_recomputes_total",
                "counter",
                "Metrics recomputed (new or changed definition, or late rows).",
            ),
            (
                "velodrome_transform_last_success_timestamp_seconds",
                "gauge",
                "Unix time of the last successful round.",
            ),
        ];
        for (name, kind, help) in families {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
            for (repo, s) in &repos {
                let repo = crate::observe::escape_label(repo);
                match name {
                    "velodrome_transform_rounds_total" => {
                        let _ = writeln!(
                            out,
                            "{name}{{repository=\"{repo}\",result=\"ok\"}} {}",
                            s.rounds_ok
                        );
                        let _ = writeln!(
                            out,
                            "{name}{{repository=\"{repo}\",result=\"error\"}} {}",
                            s.rounds_failed
                        );
                    }
                    "velodrome_transform_items_read_total" => {
                        let _ = writeln!(out, "{name}{{repository=\"{repo}\"}} {}", s.items_read);
                    }
                    "velodrome_transform_points_written_total" => {
                        let _ =
                            writeln!(out, "{name}{{repository=\"{repo}\"}} {}", s.points_written);
                    }
                    "velodrome_transform_recomputes_total" => {
                        let _ = writeln!(out, "{name}{{repository=\"{repo}\"}} {}", s.recomputes);
                    }
                    _ => {
                        if let Some(t) = s.last_success {
                            let _ = writeln!(out, "{name}{{repository=\"{repo}\"}} {t}");
                        }
                    }
                }
            }
        }
        out
    }
}

/// `/healthz` (readiness) turns 200 once a round has finished; `/livez` turns 503 when no
/// progress was made within the stall limit, so a hung process is restarted while a long
/// recompute is not.
impl crate::observe::Probe for Stats {
    fn ready(&self) -> Result<(), String> {
        let waiting = self.waiting();
        if waiting.is_empty() {
            Ok(())
        } else {
            Err(format!("first round not done yet: {}", waiting.join(", ")))
        }
    }

    fn live(&self) -> Result<(), String> {
        if self.healthy() {
            Ok(())
        } else {
            Err("stalled: no progress within the stall limit".to_owned())
        }
    }

    fn metrics(&self) -> String {
        self.render()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_per_repository() {
        let stats = Stats::new(Duration::from_secs(60), &["o/r"]);
        assert!(crate::observe::Probe::ready(&stats).is_err());
        assert!(stats.healthy());
        stats.round("o/r", true, 10, 4);
        assert!(crate::observe::Probe::ready(&stats).is_ok());
        stats.round("o/r", false, 1, 0);
        stats.recompute("o/r");
        let text = stats.render();
        assert!(
            text.contains("velodrome_transform_rounds_total{repository=\"o/r\",result=\"ok\"} 1")
        );
        assert!(
            text.contains(
                "velodrome_transform_rounds_total{repository=\"o/r\",result=\"error\"} 1"
            )
        );
        assert!(text.contains("velodrome_transform_items_read_total{repository=\"o/r\"} 11"));
        assert!(text.contains("velodrome_transform_points_written_total{repository=\"o/r\"} 4"));
        assert!(text.contains("velodrome_transform_recomputes_total{repository=\"o/r\"} 1"));
        assert!(text.contains("# TYPE velodrome_transform_last_success_timestamp_seconds gauge"));
    }
}
