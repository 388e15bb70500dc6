//! `velodrome fetcher`: mirrors GitHub issues, pull requests, events and comments of one or
//! more repositories into MySQL, incrementally and within the rate limit.
//!
//! Each repository runs in its own task, so a slow or failing repository never holds up the
//! others; they share one token pool and one MySQL pool. See [`sync`] for what a round does;
//! each source has its own module (`lists`, `feed`, `timelines`) over one page writer
//! (`writer`), and the reconciliation sweep (`reconcile`, `reread`) repairs what the
//! sources cannot see: deletions and transfers.

mod batch;
mod boundary;
mod feed;
pub mod health;
mod lists;
mod reconcile;
mod reread;
pub mod sync;
mod timelines;
mod writer;

use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use velodrome_model::names::RepoName;

use crate::cli::{Cli, FetcherArgs};
use crate::freshness::Freshness;
use crate::github::{Client, ClientConfig, Token, TokenPool};
use crate::influx::InfluxConfig;
use crate::shutdown::Shutdown;

/// Client settings from the environment: `VELODROME_GITHUB_BACKOFF_MS` (first retry delay)
/// and `VELODROME_GITHUB_TIMEOUT_S` let tests and unusual networks tune what production
/// leaves at the defaults.
fn client_config(base_url: &str) -> ClientConfig {
    let mut config = ClientConfig {
        base_url: base_url.to_owned(),
        ..ClientConfig::default()
    };
    if let Some(ms) = std::env::var("VELODROME_GITHUB_BACKOFF_MS")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        config.backoff_base = Duration::from_millis(ms);
    }
    if let Some(s) = std::env::var("VELODROME_GITHUB_TIMEOUT_S")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        config.timeout = Duration::from_secs(s);
    }
    config
}

/// Runs the fetcher until it is done (`--once`) or stopped (SIGTERM: every repository
/// commits the page it is on, then the process exits 0). Exit code 0 when every repository
/// synced or stopped cleanly, 1 when one failed (`--once`), 2 when it could not start.
pub async fn run(globals: &Cli, args: &FetcherArgs) -> anyhow::Result<ExitCode> {
    crate::observe::init_logging(globals.log_format);
    let shutdown = Shutdown::on_signals();
    let mut repos = Vec::new();
    for text in &args.repositories {
        match RepoName::parse(text) {
            Ok(name) => repos.push(name),
            Err(err) => {
                tracing::error!(repository = %text, "invalid repository: {err}");
                return Ok(ExitCode::from(2));
            }
        }
    }
    let tokens = match args
        .github
        .token_files
        .iter()
        .map(|p| Token::from_file(p))
        .collect::<Result<Vec<_>, _>>()
    {
        Ok(tokens) => tokens,
        Err(err) => {
            tracing::error!("{err}");
            return Ok(ExitCode::from(2));
        }
    };
    let pool = TokenPool::new(tokens, ClientConfig::default().low_water)?;
    let client = Arc::new(
        Client::new(client_config(&args.github.github_url), pool)?.stopping_on(shutdown.clone()),
    );
    let keys: Vec<String> = repos.iter().map(RepoName::key).collect();
    let health = Arc::new(health::Health::new(client.clone(), &keys));
    if let Some(addr) = globals.listen
        && let Err(err) = crate::observe::serve(addr, health.clone()).await
    {
        tracing::error!(%addr, "cannot listen: {err}");
        return Ok(ExitCode::from(2));
    }
    let db = match crate::db::connect(&args.mysql.mysql_url, repos.len() + 2) {
        Ok(db) => db,
        Err(err) => {
            tracing::error!("{err}");
            return Ok(ExitCode::from(2));
        }
    };
    match crate::db::migrate(&db).await {
        Ok(version) => tracing::info!(version, "schema ready"),
        Err(err) => {
            tracing::error!("cannot prepare the database: {err}");
            return Ok(ExitCode::from(2));
        }
    }
    let once = args.schedule.once;
    let interval = args.schedule.interval;
    let freshness = match &args.freshness.influx_url {
        Some(url) => Some(Arc::new(
            Freshness::new(
                &InfluxConfig {
                    url: url.clone(),
                    database: args.freshness.freshness_database.clone(),
                    user: args.freshness.influx_user.clone(),
                    password: args.freshness.influx_password.clone(),
                },
                "fetcher",
            )
            .await,
        )),
        None => None,
    };
    let mut tasks = tokio::task::JoinSet::new();
    for repo in repos {
        let mut syncer = sync::RepoSync::new(
            repo.as_str(),
            repo.key(),
            client.clone(),
            db.clone(),
            shutdown.clone(),
        );
        if let Some(every) = args.reconcile_every.0 {
            syncer = syncer.reconciling_every(every);
        }
        if !once {
            // A sweep works at most half an interval per round (30 s at least): a
            // Kubernetes-size sweep of an hour or two spreads over rounds that keep polling.
            // `VELODROME_SWEEP_SLICE_MS` sets it (tests use it to slice a small sweep).
            let slice = std::env::var("VELODROME_SWEEP_SLICE_MS")
                .ok()
                .and_then(|v| v.parse().ok())
                .map_or(
                    (interval / 2).max(Duration::from_secs(30)),
                    Duration::from_millis,
                );
            syncer = syncer.sweeping_at_most(slice);
        }
        let health = health.clone();
        let shutdown = shutdown.clone();
        let freshness = freshness.clone();
        tasks.spawn(async move {
            let mut ok = true;
            loop {
                let started = Instant::now();
                let started_at = crate::freshness::now();
                let result = syncer.round().await;
                if let Err(err) = &result
                    && err.is_stop()
                {
                    tracing::info!(repository = %repo.key(), "stopped; every fetched page is committed");
                    return ok;
                }
                health.round(&repo.key(), result.as_ref().map_err(|_| ()));
                if let Some(freshness) = &freshness {
                    // A complete round mirrors GitHub as it was when the round began.
                    if result.is_ok() {
                        freshness.synced(&repo.key(), started_at);
                    }
                    freshness.write(&repo.key()).await;
                }
                match result {
                    Ok(stats) => tracing::info!(
                        repository = %repo.key(),
                        issues = stats.issues,
                        comments = stats.comments,
                        events = stats.events,
                        reviews = stats.reviews,
                        backfilled_issues = stats.backfilled_issues,
                        swept = stats.swept,
                        reread = stats.reread,
                        removed = stats.removed,
                        unhidden = stats.unhidden,
                        elapsed_ms = started.elapsed().as_millis() as u64,
                        "round done"
                    ),
                    Err(err) => {
                        ok = false;
                        tracing::error!(repository = %repo.key(), "round failed: {err}");
                    }
                }
                if once || !shutdown.sleep(interval.saturating_sub(started.elapsed())).await {
                    return ok;
                }
            }
        });
    }
    let mut all_ok = true;
    while let Some(result) = tasks.join_next().await {
        all_ok &= result.unwrap_or(false);
    }
    let stats = &client.stats;
    tracing::info!(
        requests = stats.requests(None),
        not_modified = stats.requests(Some("304")),
        graphql_queries = stats
            .graphql_queries
            .load(std::sync::atomic::Ordering::Relaxed),
        graphql_points = stats
            .graphql_points
            .load(std::sync::atomic::Ordering::Relaxed),
        retries = stats.retries.load(std::sync::atomic::Ordering::Relaxed),
        "fetcher done"
    );
    db.disconnect().await.ok();
    Ok(if all_ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
