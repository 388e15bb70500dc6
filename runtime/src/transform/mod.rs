//! `velodrome transform`: MySQL -> InfluxDB, every configured metric of one repository
//! (`--repository` + `--metrics-file`) or of a whole project (`--plan`), in one process
//! with one pass over each repository's rows for all its metrics.
//!
//! # Points and timestamps
//!
//! Output is what existing dashboards read: measurement = metric name, tag `repository`,
//! integer fields `event`, `comment`, `count`, `sum`, `"<p>%"` and the string `author`.
//! Points are written in nanoseconds: a point's time is its event's second, plus 1 ns for
//! each earlier point of the same metric and repository in that second. The first point of
//! a second is exactly where the original's second-precision point was, the others stay
//! inside the same second (so `GROUP BY time(...)` buckets do not change), and two merges
//! in one second are two points instead of one overwriting the other.
//!
//! # Watermarks
//!
//! Table `transform_watermarks` (created here, idempotently) holds per (destination =
//! InfluxDB URL and database, repository, metric) the metric's canonical definition, the key of the last stream item whose points are
//! all written, and how many stream items were at or before that key. Each round:
//!
//! - a metric without a row, or whose definition changed, is dropped from InfluxDB and
//!   recomputed; the others keep their points;
//! - a metric whose count of items up to its mark changed (rows arrived late, with older
//!   timestamps: a fetcher backfill, one table lagging another, or events whose issue row
//!   came later) has its points deleted from the first UTC day whose item count changed
//!   (table `transform_days`, items per day as of the last complete round) and rewritten
//!   from there, so its series equals a full recompute while older points stay in place;
//!   when the day cannot be told (a round that crashed half-way) it is recomputed whole;
//! - a metric whose points reach past the earliest row the fetcher's reconciliation sweep
//!   removed (or added) since the last complete round (`sync_removals`, see [`removals`])
//!   is rewritten from that row's UTC day the same way, so a removal and an arrival that
//!   cancel out in the day counts are still followed;
//! - otherwise only items after the mark are written. Within one process the computation
//!   state stays in memory and only new rows are read; after a restart the history is
//!   replayed in memory (no writes) up to the mark, then writing resumes.
//!
//! Batches are bounded; after each written batch the marks advance, so a crash loses at
//! most one batch of work and the same points are rewritten identically.

mod annotate;
mod compute;
mod count;
mod duration;
mod engine;
mod health;
mod issues;
mod labels;
mod output;
mod rank;
mod removals;
mod series;
mod source;
mod state;

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;
use mysql_async::Pool;
use velodrome_model::bots::Bots;
use velodrome_model::metric::MetricSpec;
use velodrome_model::names::RepoName;
use velodrome_model::plan::{MetricEntry, TransformPlan};

use crate::cli::{Cli, TransformArgs};
use crate::freshness::Freshness;
use crate::influx::{self, Batch, Influx, InfluxConfig, Precision};
use crate::shutdown::Shutdown;
use source::Watermark;

// The computation, public for the benchmark (`benches/transform.rs`).
pub use compute::Computation;
pub use engine::{Item, Key, Kind, Point, Values};
pub use output::{Shape, add_point};

/// Points per InfluxDB request.
const DEFAULT_BATCH: usize = 5_000;

/// One configured metric, parsed.
#[derive(Debug, Clone)]
struct Metric {
    name: String,
    spec: MetricSpec,
    definition: String,
    shape: Shape,
}

/// One repository and its metrics.
#[derive(Debug, Clone)]
struct RepoPlan {
    repository: String,
    metrics: Vec<Metric>,
    bots: Bots,
}

impl RepoPlan {
    /// A fresh computation of every metric.
    fn computation(&self) -> Computation {
        Computation::new(self.metrics.iter().map(|m| &m.spec), &self.bots)
    }
}

/// A configuration problem: reported, then exit code 2.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct ConfigError(String);

/// Runs the mode until it is done (`--once`) or stopped (SIGTERM: the batch being written
/// is finished and its watermarks stored, then the process exits 0).
pub async fn run(globals: &Cli, args: &TransformArgs) -> anyhow::Result<ExitCode> {
    crate::observe::init_logging(globals.log_format);
    let shutdown = Shutdown::on_signals();
    let plans = match load_plans(args) {
        Ok(plans) => plans,
        Err(err) => {
            eprintln!("error: {err}");
            return Ok(ExitCode::from(2));
        }
    };
    let repositories: Vec<&str> = plans.iter().map(|p| p.repository.as_str()).collect();
    let stats = Arc::new(health::Stats::new(args.schedule.interval, &repositories));
    if let (Some(addr), false) = (globals.listen, args.dry_run)
        && let Err(err) = crate::observe::serve(addr, stats.clone()).await
    {
        eprintln!("error: cannot listen on {addr}: {err}");
        return Ok(ExitCode::from(2));
    }
    let pool = crate::db::connect(&args.mysql.mysql_url, 6).context("MySQL")?;
    let batch_size = env_number("VELODROME_TRANSFORM_BATCH").unwrap_or(DEFAULT_BATCH);
    let result = if args.dry_run {
        dry_run(&pool, &plans, batch_size).await
    } else {
        run_rounds(&pool, &plans, args, batch_size, &stats, &shutdown).await
    };
    // A stop mid-round leaves streaming results that the pool would read to the end
    // before closing: do not wait for that.
    let _ = tokio::time::timeout(std::time::Duration::from_secs(5), pool.disconnect()).await;
    result
}

fn env_number(name: &str) -> Option<usize> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

/// Reads and checks every metric before anything runs.
fn load_plans(args: &TransformArgs) -> Result<Vec<RepoPlan>, ConfigError> {
    let mut raw: Vec<(String, BTreeMap<String, MetricEntry>)> = Vec::new();
    let source;
    let bot_patterns;
    if let Some(path) = &args.plan {
        source = path.display().to_string();
        let text = read(path)?;
        let plan: TransformPlan =
            serde_saphyr::from_str(&text).map_err(|err| ConfigError(format!("{source}: {err}")))?;
        for (repo, metrics) in plan.repositories {
            raw.push((repo.key(), metrics));
        }
        bot_patterns = plan.bots;
    } else {
        let (Some(repository), Some(path)) = (&args.repository, &args.metrics_file) else {
            return Err(ConfigError(
                "give --repository with --metrics-file, or --plan".to_owned(),
            ));
        };
        let repo = RepoName::parse(repository).map_err(|err| ConfigError(err.to_string()))?;
        source = path.display().to_string();
        let text = read(path)?;
        let metrics: BTreeMap<String, MetricEntry> =
            serde_saphyr::from_str(&text).map_err(|err| ConfigError(format!("{source}: {err}")))?;
        raw.push((repo.key(), metrics));
        bot_patterns = if args.bot.is_empty() {
            Bots::default().patterns().to_vec()
        } else {
            args.bot.clone()
        };
    }
    let bots =
        Bots::parse(&bot_patterns).map_err(|err| ConfigError(format!("{source}: bots: {err}")))?;
    let mut plans = Vec::new();
    let mut problems = Vec::new();
    for (repository, metrics) in raw {
        let mut parsed = Vec::new();
        for (name, entry) in metrics {
            if name.is_empty() {
                problems.push(format!("{source}: {repository}: empty metric name"));
                continue;
            }
            match MetricSpec::parse(&entry.plugin, &entry.args) {
                Ok(spec) => {
                    // A metric that bots change is recomputed when `bots:` changes.
                    let mut definition = spec.canonical();
                    if spec.uses_bots() {
                        definition.push(' ');
                        definition.push_str(&bots.canonical());
                    }
                    let shape = Shape::of(&spec);
                    parsed.push(Metric {
                        name,
                        spec,
                        definition,
                        shape,
                    });
                }
                Err(err) => {
                    let place = match err.arg.and_then(|i| entry.args.get(i).map(|a| (i, a))) {
                        Some((i, arg)) => format!(" argument {} ({arg:?})", i + 1),
                        None => String::new(),
                    };
                    problems.push(format!(
                        "{source}: {repository}: metric {name:?}{place}: {}",
                        err.message
                    ));
                }
            }
        }
        plans.push(RepoPlan {
            repository,
            metrics: parsed,
            bots: bots.clone(),
        });
    }
    if !problems.is_empty() {
        return Err(ConfigError(problems.join("\nerror: ")));
    }
    Ok(plans)
}

fn read(path: &Path) -> Result<String, ConfigError> {
    std::fs::read_to_string(path)
        .map_err(|err| ConfigError(format!("cannot read {}: {err}", path.display())))
}

/// `--dry-run`: every point of every metric as line protocol on stdout; nothing is written
/// and no state is stored.
async fn dry_run(pool: &Pool, plans: &[RepoPlan], batch_size: usize) -> anyhow::Result<ExitCode> {
    let stdout = std::io::stdout();
    for plan in plans {
        let mut computation = plan.computation();
        let mut batch = Batch::new(Precision::Nanoseconds, batch_size);
        let mut conns = source::connections(pool).await.context("MySQL")?;
        let mut items = source::open_items(
            &mut conns,
            &plan.repository,
            None,
            computation.reads_bodies(),
        )
        .await
        .context("reading rows")?;
        while let Some(mut item) = source::next_item(&mut items)
            .await
            .context("reading rows")?
        {
            computation.receive(&mut item, |index, point| {
                let metric = &plan.metrics[index];
                add_point(
                    &mut batch,
                    &metric.name,
                    &plan.repository,
                    point,
                    &metric.shape,
                )
            })?;
            if batch.is_full() {
                print_batch(&stdout, &mut batch)?;
            }
        }
        drop(items);
        print_batch(&stdout, &mut batch)?;
    }
    Ok(ExitCode::SUCCESS)
}

fn print_batch(stdout: &std::io::Stdout, batch: &mut Batch) -> anyhow::Result<()> {
    if batch.is_empty() {
        return Ok(());
    }
    let text = batch.line_protocol();
    let mut out = stdout.lock();
    writeln!(out, "{text}").context("writing stdout")?;
    batch.clear();
    Ok(())
}

/// The computation of one repository kept between rounds of one process.
struct Live {
    computation: Computation,
    position: Option<Key>,
    seen: i64,
    /// Items processed per UTC day (days since the epoch), stored after each round.
    days: BTreeMap<i64, i64>,
}

async fn run_rounds(
    pool: &Pool,
    plans: &[RepoPlan],
    args: &TransformArgs,
    batch_size: usize,
    stats: &health::Stats,
    shutdown: &Shutdown,
) -> anyhow::Result<ExitCode> {
    let version = crate::db::migrate(pool)
        .await
        .context("MySQL schema migration")?;
    tracing::debug!(version, "schema ready");
    source::ensure_tables(pool)
        .await
        .context("creating transform_watermarks")?;
    removals::ensure_table(pool)
        .await
        .context("creating transform_removals_seen")?;
    let influx = Influx::new(&InfluxConfig {
        url: args.influx.influx_url.clone(),
        database: args.influx.influx_database.clone(),
        user: args.influx.influx_user.clone(),
        password: args.influx.influx_password.clone(),
    });
    if let Err(err) = influx.create_database().await {
        tracing::warn!(error = %err, "could not create the InfluxDB database (it must exist)");
    }
    let fail_after = env_number("VELODROME_TRANSFORM_FAIL_AFTER_BATCHES");
    let destination = format!(
        "{}|{}",
        args.influx.influx_url.trim_end_matches('/'),
        args.influx.influx_database
    );
    let freshness = Freshness::new(
        &InfluxConfig {
            url: args.influx.influx_url.clone(),
            database: args.freshness_database.clone(),
            user: args.influx.influx_user.clone(),
            password: args.influx.influx_password.clone(),
        },
        "transform",
    )
    .await;
    let mut live: Vec<Option<Live>> = plans.iter().map(|_| None).collect();
    loop {
        let mut failed = false;
        for (plan, live) in plans.iter().zip(live.iter_mut()) {
            if shutdown.requested() {
                break;
            }
            // The round's output covers every row in MySQL when it starts reading.
            let started_at = crate::freshness::now();
            let round = Round {
                pool,
                destination: &destination,
                influx: &influx,
                plan,
                batch_size,
                fail_after,
                stats,
                shutdown,
            };
            let outcome = round.run(live.take()).await;
            if matches!(outcome, Ok(Outcome::Done(_))) {
                freshness.synced(&plan.repository, started_at);
            }
            if !matches!(outcome, Ok(Outcome::Stopped)) {
                freshness.write(&plan.repository).await;
            }
            match outcome {
                Ok(Outcome::Done(state)) => *live = Some(*state),
                Ok(Outcome::Stopped) => {
                    tracing::info!(repository = %plan.repository, "stopped; written points and their watermarks are stored");
                    break;
                }
                Err(err) => {
                    failed = true;
                    stats.round(&plan.repository, false, 0, 0);
                    tracing::error!(repository = %plan.repository, error = format!("{err:#}"), "transform round failed");
                    if args.schedule.once {
                        eprintln!("error: {}: {err:#}", plan.repository);
                    }
                }
            }
        }
        if args.schedule.once || shutdown.requested() {
            return Ok(if failed {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            });
        }
        if !shutdown.sleep(args.schedule.interval).await {
            return Ok(ExitCode::SUCCESS);
        }
    }
}

/// How a metric takes part in a round.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Points up to the mark are written; write only after it.
    Continue(Option<Key>),
    /// Rows arrived late from this time (seconds, the start of a UTC day) on: delete the
    /// points from there and rewrite them; older points stay.
    Rewrite(i64),
    /// Drop its points and write everything (new or changed definition, or late rows
    /// whose day cannot be told).
    Recompute,
}

struct Round<'a> {
    pool: &'a Pool,
    destination: &'a str,
    influx: &'a Influx,
    plan: &'a RepoPlan,
    batch_size: usize,
    fail_after: Option<usize>,
    stats: &'a health::Stats,
    shutdown: &'a Shutdown,
}

/// How a round ended.
enum Outcome {
    /// Every row was read and every point written; the computation can continue.
    Done(Box<Live>),
    /// A stop was requested: the last full batch is written and its watermarks stored;
    /// the day counts stay those of the last complete round, so a restart continues from
    /// the marks instead of recomputing.
    Stopped,
}

impl Round<'_> {
    async fn run(&self, previous: Option<Live>) -> anyhow::Result<Outcome> {
        let repository = self.plan.repository.as_str();
        let stored: BTreeMap<String, Watermark> =
            source::load_watermarks(self.pool, self.destination, repository)
                .await
                .context("loading watermarks")?
                .into_iter()
                .collect();
        let stored_days = source::load_days(self.pool, self.destination, repository)
            .await
            .context("loading day counts")?;
        let stored_total: i64 = stored_days.values().sum();
        let mut modes = Vec::with_capacity(self.plan.metrics.len());
        let mut counts: BTreeMap<Key, i64> = BTreeMap::new();
        let mut current_days: BTreeMap<Key, BTreeMap<i64, i64>> = BTreeMap::new();
        for metric in &self.plan.metrics {
            let mode = match stored.get(&metric.name) {
                Some(mark) if mark.definition == metric.definition => {
                    let current = match mark.mark {
                        Some(key) => match counts.get(&key) {
                            Some(count) => *count,
                            None => {
                                let count = source::count_upto(self.pool, repository, key)
                                    .await
                                    .context("counting rows")?;
                                counts.insert(key, count);
                                count
                            }
                        },
                        None => 0,
                    };
                    match mark.mark {
                        _ if current == mark.seen => Mode::Continue(mark.mark),
                        // The day counts describe exactly what this mark saw: the first
                        // day that differs now is where late rows start.
                        Some(key) if stored_total == mark.seen => {
                            if let std::collections::btree_map::Entry::Vacant(entry) =
                                current_days.entry(key)
                            {
                                let days = source::days_upto(self.pool, repository, key)
                                    .await
                                    .context("counting rows per day")?;
                                entry.insert(days);
                            }
                            let now = current_days.get(&key);
                            let first = now
                                .into_iter()
                                .flat_map(|d| d.keys())
                                .chain(stored_days.keys())
                                .filter(|day| now.and_then(|d| d.get(day)) != stored_days.get(day))
                                .min()
                                .copied();
                            match first {
                                Some(day) => {
                                    tracing::info!(repository, metric = %metric.name, stored = mark.seen, current, day = day * 86_400, "rows arrived before the watermark; rewriting from that day");
                                    Mode::Rewrite(day * 86_400)
                                }
                                None => {
                                    tracing::info!(repository, metric = %metric.name, stored = mark.seen, current, "rows arrived before the watermark; recomputing");
                                    Mode::Recompute
                                }
                            }
                        }
                        _ => {
                            tracing::info!(repository, metric = %metric.name, stored = mark.seen, current, "rows arrived before the watermark; recomputing");
                            Mode::Recompute
                        }
                    }
                }
                Some(_) => {
                    tracing::info!(repository, metric = %metric.name, "definition changed; recomputing");
                    Mode::Recompute
                }
                None => Mode::Recompute,
            };
            modes.push(mode);
        }
        // Rows the fetcher's sweep removed or added before a mark: rewrite from their day.
        let removed = removals::pending(self.pool, self.destination, repository)
            .await
            .context("reading the removals log")?;
        if let Some(first) = removed.first_time {
            let from = removals::day_start(first);
            for (metric, mode) in self.plan.metrics.iter().zip(modes.iter_mut()) {
                let rewritten = match *mode {
                    Mode::Continue(Some(mark)) if mark.time >= first => Mode::Rewrite(from),
                    Mode::Rewrite(day) => Mode::Rewrite(day.min(from)),
                    other => other,
                };
                if rewritten != *mode {
                    tracing::info!(repository, metric = %metric.name, day = from, "rows were removed before the watermark; rewriting from that day");
                    *mode = rewritten;
                }
            }
        }
        // Keep the in-memory computation when every metric continues from where it is.
        let (mut computation, start, mut seen, mut days) = match previous {
            Some(live)
                if live.computation.len() == modes.len()
                    && modes.iter().all(|m| *m == Mode::Continue(live.position)) =>
            {
                (live.computation, live.position, live.seen, live.days)
            }
            _ => (self.plan.computation(), None, 0, BTreeMap::new()),
        };
        for (metric, mode) in self.plan.metrics.iter().zip(&modes) {
            let tags = [("repository", repository)];
            let statement = match mode {
                Mode::Continue(_) => continue,
                Mode::Recompute => influx::drop_series(&metric.name, &tags),
                Mode::Rewrite(from) => {
                    influx::delete_since(&metric.name, &tags, from.saturating_mul(1_000_000_000))
                }
            };
            self.stats.recompute(repository);
            self.influx
                .execute(&statement)
                .await
                .with_context(|| format!("removing the old points of {}", metric.name))?;
        }
        let bodies = computation.reads_bodies();
        let mut batch = Batch::new(Precision::Nanoseconds, self.batch_size);
        let mut position = start;
        let mut batches = 0usize;
        let mut written = 0usize;
        let mut read = 0usize;
        let mut conns = source::connections(self.pool).await.context("MySQL")?;
        // A round from the start of the history (a recompute, or the replay after a
        // restart) can take minutes: count its rows first so progress has an end.
        let (mut progress, total) = if start.is_none() {
            let total = source::count_all(self.pool, repository)
                .await
                .context("counting rows")?;
            (
                Some(crate::progress::Progress::start(format!(
                    "{repository} transform"
                ))),
                total.max(1) as f64,
            )
        } else {
            (None, 1.0)
        };
        let mut items = source::open_items(&mut conns, repository, start, bodies)
            .await
            .context("reading rows")?;
        while let Some(mut item) = source::next_item(&mut items)
            .await
            .context("reading rows")?
        {
            read += 1;
            seen += 1;
            if read.is_multiple_of(4096) {
                // A replay up to the marks writes nothing for a long time: stop there too
                // (nothing is pending, so the stored marks already say where to resume).
                if batch.is_empty() && self.shutdown.requested() {
                    return Ok(Outcome::Stopped);
                }
                self.stats.progress();
                if let Some(progress) = progress.as_mut() {
                    progress.advance(read as u64, Some(read as f64 / total));
                }
            }
            position = Some(item.key);
            *days.entry(item.key.time.div_euclid(86_400)).or_insert(0) += 1;
            self.receive(&mut item, &modes, &mut computation, &mut batch)?;
            if batch.is_full() {
                if let Some(progress) = progress.as_mut() {
                    progress.advance(read as u64, Some(read as f64 / total));
                }
                written += batch.len();
                self.influx
                    .write(&mut batch)
                    .await
                    .context("writing points")?;
                self.store(&modes, position, seen, false).await?;
                batches += 1;
                if self.fail_after.is_some_and(|n| batches >= n) {
                    anyhow::bail!(
                        "stopped after {batches} batches (VELODROME_TRANSFORM_FAIL_AFTER_BATCHES)"
                    );
                }
                if self.shutdown.requested() {
                    return Ok(Outcome::Stopped);
                }
            }
        }
        drop(items);
        drop(conns);
        written += batch.len();
        self.influx
            .write(&mut batch)
            .await
            .context("writing points")?;
        self.store(&modes, position, seen, true).await?;
        source::store_days(self.pool, self.destination, repository, &stored_days, &days)
            .await
            .context("storing day counts")?;
        if let Some(last) = removed.last_id {
            removals::mark_seen(self.pool, self.destination, repository, last)
                .await
                .context("storing the removals taken into account")?;
        }
        tracing::info!(repository, read, written, "transform round done");
        self.stats
            .round(repository, true, read as u64, written as u64);
        Ok(Outcome::Done(Box::new(Live {
            computation,
            position,
            seen,
            days,
        })))
    }

    /// Feeds one item to the computation and batches the points of the metrics whose
    /// mode writes at this item.
    fn receive(
        &self,
        item: &mut Item,
        modes: &[Mode],
        computation: &mut Computation,
        batch: &mut Batch,
    ) -> anyhow::Result<()> {
        let key = item.key;
        computation.receive(item, |index, point| {
            let writing = match modes[index] {
                Mode::Recompute | Mode::Continue(None) => true,
                Mode::Continue(Some(mark)) => key > mark,
                Mode::Rewrite(from) => key.time >= from,
            };
            if !writing {
                return Ok(());
            }
            let metric = &self.plan.metrics[index];
            add_point(
                batch,
                &metric.name,
                &self.plan.repository,
                point,
                &metric.shape,
            )
        })?;
        Ok(())
    }

    /// Advances the marks of the metrics whose points up to `position` are all written
    /// (at the end of the round: all of them).
    async fn store(
        &self,
        modes: &[Mode],
        position: Option<Key>,
        seen: i64,
        end: bool,
    ) -> anyhow::Result<()> {
        let mut marks = Vec::new();
        for (metric, mode) in self.plan.metrics.iter().zip(modes) {
            let behind = match mode {
                Mode::Continue(Some(mark)) => position.is_none_or(|p| p <= *mark),
                _ => false,
            };
            if behind && !end {
                continue;
            }
            let mark = match mode {
                Mode::Continue(Some(mark)) if position.is_none_or(|p| p < *mark) => Some(*mark),
                _ => position,
            };
            marks.push((
                metric.name.as_str(),
                Watermark {
                    definition: metric.definition.clone(),
                    mark,
                    seen,
                },
            ));
        }
        let refs: Vec<(&str, &Watermark)> = marks.iter().map(|(n, w)| (*n, w)).collect();
        source::store_watermarks(self.pool, self.destination, &self.plan.repository, &refs)
            .await
            .context("storing watermarks")
    }
}
