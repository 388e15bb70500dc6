//! Fetcher throughput: `cargo bench -p velodrome --bench fetcher [-- SCALE]`.
//!
//! Two figures, printed, never asserted (needs the MariaDB of VELODROME_TEST_MYSQL_URL):
//! 1. MySQL ingest: rows per second written through the fetcher's own upserts
//!    (`db::tables`), one transaction per 100-item page as the fetcher commits them.
//! 2. End to end: the release `velodrome fetcher --once` binary backfilling a generated
//!    repository from the loopback fake GitHub (which shares the machine's cores), with
//!    requests per 100 items per endpoint, then a quiet poll (all 304).
//!
//! SCALE multiplies the default repository (10,000 issues and PRs, 50,000 comments, 1,000
//! review comments, 40,000 events).

#![allow(dead_code)]

#[path = "../src/db/mod.rs"]
mod db;
#[path = "../tests/support/fake_github.rs"]
mod fake_github;
#[path = "../tests/support/mysql.rs"]
mod mysql;

use std::time::Instant;

use db::UtcTime;
use db::tables::{self, CommentRow, EventRow, IssueRow};
use fake_github::{FakeGithub, FakeRepo, Sizes, generate};
use mysql_async::TxOpts;

const TOKEN: &str = "bench-token";

fn rows_of(repo: &FakeRepo) -> (Vec<IssueRow>, Vec<CommentRow>, Vec<EventRow>) {
    let issues = repo
        .issues
        .values()
        .map(|i| IssueRow {
            number: i.number,
            title: i.title.clone(),
            body: i.body.clone().unwrap_or_default(),
            user: i.user.clone().unwrap_or_default(),
            state: i.state.clone(),
            comments: i.comments,
            is_pr: i.is_pr,
            closed_at: i.closed_at.map(UtcTime),
            created_at: UtcTime(i.created_at),
            updated_at: UtcTime(i.updated_at),
            labels: i.labels.clone(),
            assignees: i.assignees.clone(),
            node_id: None,
            user_type: Some("User".into()),
        })
        .collect();
    let mut comments = Vec::new();
    for (pr, list) in [(false, &repo.comments), (true, &repo.reviews)] {
        comments.extend(list.values().map(|c| CommentRow {
            id: c.id,
            issue_id: c.issue,
            pull_request: pr,
            body: c.body.clone(),
            user: c.user.clone().unwrap_or_default(),
            created_at: UtcTime(c.created_at),
            updated_at: UtcTime(c.updated_at),
            user_type: Some("User".into()),
        }));
    }
    let events = repo
        .events
        .values()
        .map(|e| EventRow {
            id: e.id,
            node_id: None,
            issue_id: e.issue,
            event: e.event.clone(),
            label: e.label.clone(),
            actor: e.actor.clone(),
            assignee: e.assignee.clone(),
            created_at: UtcTime(e.created_at),
            actor_type: Some("User".into()),
        })
        .collect();
    (issues, comments, events)
}

async fn ingest(url: &str, repo: &FakeRepo) {
    let pool = db::connect(url, 2).expect("pool");
    db::migrate(&pool).await.expect("migrate");
    let (issues, comments, events) = rows_of(repo);
    let side_rows: usize = issues
        .iter()
        .map(|i| i.labels.len() + i.assignees.len())
        .sum();
    let started = Instant::now();
    let mut phase = Instant::now();
    for page in issues.chunks(100) {
        let mut tx = pool.start_transaction(TxOpts::default()).await.expect("tx");
        tables::upsert_issues(&mut tx, "bench/ingest", page)
            .await
            .expect("issues");
        tx.commit().await.expect("commit");
    }
    let t_issues = phase.elapsed();
    phase = Instant::now();
    for page in comments.chunks(100) {
        let mut tx = pool.start_transaction(TxOpts::default()).await.expect("tx");
        tables::upsert_comments(&mut tx, "bench/ingest", page)
            .await
            .expect("comments");
        tx.commit().await.expect("commit");
    }
    let t_comments = phase.elapsed();
    phase = Instant::now();
    for page in events.chunks(100) {
        let mut tx = pool.start_transaction(TxOpts::default()).await.expect("tx");
        tables::upsert_events(&mut tx, "bench/ingest", page)
            .await
            .expect("events");
        tx.commit().await.expect("commit");
    }
    let t_events = phase.elapsed();
    let total = started.elapsed();
    let rate = |n: usize, t: std::time::Duration| n as f64 / t.as_secs_f64();
    println!("MySQL ingest (db::tables upserts, one transaction per 100-item page):");
    println!(
        "  issues    {:>7} items (+{side_rows} label/assignee rows) in {:>6.2?}: {:>8.0} items/s, {:>8.0} rows/s",
        issues.len(),
        t_issues,
        rate(issues.len(), t_issues),
        rate(issues.len() + side_rows, t_issues)
    );
    println!(
        "  comments  {:>7} rows in {:>6.2?}: {:>8.0} rows/s",
        comments.len(),
        t_comments,
        rate(comments.len(), t_comments)
    );
    println!(
        "  events    {:>7} rows in {:>6.2?}: {:>8.0} rows/s",
        events.len(),
        t_events,
        rate(events.len(), t_events)
    );
    let all = issues.len() + side_rows + comments.len() + events.len();
    println!(
        "  all       {all:>7} rows in {total:>6.2?}: {:>8.0} rows/s",
        rate(all, total)
    );
    // Re-ingesting the same pages is idempotent (upserts): time it too.
    let again = Instant::now();
    for page in events.chunks(100) {
        let mut tx = pool.start_transaction(TxOpts::default()).await.expect("tx");
        tables::upsert_events(&mut tx, "bench/ingest", page)
            .await
            .expect("events");
        tx.commit().await.expect("commit");
    }
    println!(
        "  events re-upserted (no change): {:>8.0} rows/s",
        rate(events.len(), again.elapsed())
    );
    // What the background writer does when MySQL is the bottleneck: pages that queue up
    // during a commit share the next transaction (up to 8 pages).
    let merged = Instant::now();
    for pages in comments.chunks(800) {
        let mut tx = pool.start_transaction(TxOpts::default()).await.expect("tx");
        for page in pages.chunks(100) {
            tables::upsert_comments(&mut tx, "bench/merged", page)
                .await
                .expect("comments");
        }
        tx.commit().await.expect("commit");
    }
    println!(
        "  comments, 8 pages per transaction (writer under backlog): {:>8.0} rows/s",
        rate(comments.len(), merged.elapsed())
    );
    pool.disconnect().await.ok();
}

async fn end_to_end(url: &str, repo: FakeRepo, sizes: Sizes) {
    let fake = FakeGithub::start(TOKEN).await;
    fake.with(|s| {
        s.repos.insert("bench/e2e".into(), repo.clone());
    });
    let dir = tempfile::tempdir().expect("tempdir");
    let token = dir.path().join("token");
    std::fs::write(&token, TOKEN).expect("token");
    let run = |label: &'static str| {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_velodrome"));
        cmd.args([
            "fetcher",
            "--once",
            "--repository",
            "bench/e2e",
            "--mysql-url",
            url,
        ])
        .arg("--token-file")
        .arg(&token)
        .arg("--github-url")
        .arg(&fake.url)
        .env("VELODROME_LOG", "warn");
        async move {
            let started = Instant::now();
            let out = tokio::task::spawn_blocking(move || cmd.output())
                .await
                .expect("join")
                .expect("run velodrome");
            assert!(
                out.status.success(),
                "{label}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            started.elapsed()
        }
    };
    let took = run("backfill").await;
    let log = fake.log();
    let count = |what: &str| {
        log.iter()
            .filter(|l| l.path.starts_with(&format!("/repos/bench/e2e/{what}?")))
            .count()
    };
    let labels: usize = repo
        .issues
        .values()
        .map(|i| i.labels.len() + i.assignees.len())
        .sum();
    let items = sizes.issues + sizes.comments + sizes.reviews + sizes.events;
    println!("End to end (release binary <- loopback fake GitHub, same 2 cores):");
    println!(
        "  backfill of {items} items ({} rows with labels/assignees) in {took:.2?}: {:.0} rows/s, {} requests",
        items + labels,
        (items + labels) as f64 / took.as_secs_f64(),
        log.len()
    );
    for (what, n) in [
        ("issues", sizes.issues),
        ("issues/comments", sizes.comments),
        ("pulls/comments", sizes.reviews),
        ("issues/events", sizes.events),
    ] {
        let r = count(what);
        println!(
            "  {what:<16} {r:>5} requests for {n:>6} items: {:.3} requests per 100 items",
            r as f64 * 100.0 / n as f64
        );
    }
    fake.clear_log();
    let took = run("quiet poll").await;
    let log = fake.log();
    println!(
        "  quiet poll: {} requests, {} answered 304, in {took:.2?}",
        log.len(),
        log.iter().filter(|l| l.status == 304).count()
    );
}

fn main() {
    let scale: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(1);
    let sizes = Sizes {
        issues: 10_000 * scale,
        comments: 50_000 * scale,
        reviews: 1_000 * scale,
        events: 40_000 * scale,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        println!(
            "fetcher bench: {} cores, repository of {sizes:?}",
            std::thread::available_parallelism().map_or(0, |n| n.get())
        );
        let repo = generate(42, sizes);
        let Some(url) = mysql::fresh_database("bench_fetcher_ingest").await else {
            return;
        };
        ingest(&url, &repo).await;
        let Some(url) = mysql::fresh_database("bench_fetcher_e2e").await else {
            return;
        };
        end_to_end(&url, repo, sizes).await;
    });
}
