//! Crash safety: SIGKILL the real fetcher binary at random points of a backfill that reads
//! old histories through GraphQL timelines, five times (twice in the REST walks, three
//! times among the GraphQL queries), restarting each time; the final tables, reviews
//! included, must equal the fake's data, with no row lost and none duplicated.

mod support;

use std::time::{Duration, Instant};

use mysql_async::prelude::Queryable;
use support::fake_github::{FakeGithub, Mirror, Sizes, add_pr_reviews, generate};
use support::mysql::fresh_database;

const TOKEN: &str = "ghp_killtest_token_value";

fn command(fake: &FakeGithub, db: &str, token: &std::path::Path) -> std::process::Command {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_velodrome"));
    cmd.args([
        "fetcher",
        "--once",
        "--repository",
        "velo/crashy",
        "--mysql-url",
        db,
    ])
    .arg("--token-file")
    .arg(token)
    .arg("--github-url")
    .arg(&fake.url)
    .env("VELODROME_GITHUB_BACKOFF_MS", "20")
    .env("VELODROME_GRAPHQL_BATCH", "20")
    .env("VELODROME_LOG", "warn")
    .stdout(std::process::Stdio::null())
    .stderr(std::process::Stdio::null());
    cmd
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_five_times_then_restart_loses_and_duplicates_nothing() {
    let Some(reference_db) = fresh_database("fetcher_kill_ref").await else {
        return;
    };
    let Some(db) = fresh_database("fetcher_kill").await else {
        return;
    };
    let fake = FakeGithub::start(TOKEN).await;
    let mut data = generate(
        7,
        Sizes {
            issues: 2000,
            comments: 10_000,
            reviews: 300,
            events: 8000,
        },
    );
    add_pr_reviews(&mut data, 7, 1500);
    fake.with(|s| {
        s.repos.insert("velo/crashy".into(), data.clone());
        // The feed reaches its newest 3,000 events: the older issues' histories come
        // through GraphQL timelines.
        s.feed_cap = 3000;
        // Past page 8 the lists are read oldest first by `since`: kills land in both parts.
        s.list_page_limit = Some(8);
    });
    let dir = tempfile::tempdir().expect("tempdir");
    let token = dir.path().join("token");
    std::fs::write(&token, TOKEN).expect("write token");

    // An uninterrupted backfill first, to place the kills: two in the REST part (list
    // walks and feed), three in the GraphQL part (timelines and reviews). Batches of 20
    // spread the GraphQL part over enough queries to kill between them.
    assert!(
        run_to_end(command(&fake, &reference_db, &token))
            .await
            .success()
    );
    let rest_total = rest_data_requests(&fake);
    let graphql_total = graphql_queries(&fake);
    assert!(graphql_total >= 20, "{graphql_total} GraphQL queries");
    fake.clear_log();

    // Deterministic "random" kill points within each share; the kill comes at an arbitrary
    // moment after that request: mid-page, mid-transaction or between commits.
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut kills = Vec::new();
    for round in 0..5usize {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let (graphql, from, to) = [
            (false, 0.05, 0.4),
            (false, 0.5, 0.95),
            (true, 0.05, 0.3),
            (true, 0.4, 0.6),
            (true, 0.7, 0.9),
        ][round];
        let total = if graphql { graphql_total } else { rest_total } as f64;
        let share = from + (to - from) * (seed % 1000) as f64 / 1000.0;
        let target = ((total * share) as usize).max(1);
        let mut child = command(&fake, &db, &token)
            .spawn()
            .expect("spawn velodrome");
        let started = Instant::now();
        let reached = |fake: &FakeGithub| {
            if graphql {
                graphql_queries(fake) >= target
            } else {
                rest_data_requests(fake) >= target
            }
        };
        while !reached(&fake) && started.elapsed() < Duration::from_secs(60) {
            tokio::time::sleep(Duration::from_millis(2 + seed % 5)).await;
        }
        let still_running = child.try_wait().expect("poll child").is_none();
        child.kill().expect("SIGKILL"); // SIGKILL on Unix
        let status = tokio::task::spawn_blocking(move || child.wait())
            .await
            .expect("join")
            .expect("wait");
        assert!(
            still_running,
            "round {round}: the fetcher had already finished"
        );
        assert!(!status.success());
        kills.push((graphql, target, fake.log().last().map(|l| l.path.clone())));
    }
    eprintln!(
        "reference: {rest_total} REST data requests, {graphql_total} GraphQL queries; killed after (GraphQL?, count, last path): {kills:#?}"
    );

    // Restart and let it finish.
    assert!(run_to_end(command(&fake, &db, &token)).await.success());
    let expected = Mirror::expected_named(&data, Some("velo/crashy"));
    Mirror::load_all(&db, "velo/crashy")
        .await
        .assert_same(&expected);
    Mirror::load_all(&reference_db, "velo/crashy")
        .await
        .assert_same(&expected);

    // Nothing left half-done, and a poll now costs only 304s and no point.
    let pool = mysql_async::Pool::new(db.as_str());
    let mut conn = pool.get_conn().await.expect("connect");
    for queue in ["sync_event_backfill", "sync_review_queue"] {
        let pending: Option<i64> = conn
            .query_first(format!("SELECT COUNT(*) FROM {queue}"))
            .await
            .expect("count");
        assert_eq!(pending, Some(0), "{queue}");
    }
    drop(conn);
    pool.disconnect().await.ok();
    fake.clear_log();
    assert!(run_to_end(command(&fake, &db, &token)).await.success());
    assert!(
        fake.log().iter().all(|l| l.status == 304),
        "{:?}",
        fake.log()
            .iter()
            .map(|l| (&l.path, l.status))
            .collect::<Vec<_>>()
    );
}

/// REST requests the fake answered with data.
fn rest_data_requests(fake: &FakeGithub) -> usize {
    fake.log()
        .iter()
        .filter(|l| l.query.is_none() && l.status == 200)
        .count()
}

/// GraphQL queries the fake answered.
fn graphql_queries(fake: &FakeGithub) -> usize {
    fake.log().iter().filter(|l| l.query.is_some()).count()
}

/// Runs `cmd` to its end off the async runtime (the fake GitHub serves on it meanwhile).
async fn run_to_end(mut cmd: std::process::Command) -> std::process::ExitStatus {
    tokio::task::spawn_blocking(move || cmd.status())
        .await
        .expect("join")
        .expect("run velodrome")
}

/// Requests the fake answered with data (not 304), per run.
fn data_requests(fake: &FakeGithub) -> usize {
    fake.log().iter().filter(|l| l.status == 200).count()
}

/// SIGTERM mid-backfill: the fetcher commits the page it is on and exits 0 at once, and
/// nothing it fetched is thrown away: the stopped run plus a restart send exactly the data
/// requests of one uninterrupted backfill (a dropped page would be fetched twice).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_commits_the_page_in_flight_and_exits_zero() {
    let Some(reference_db) = fresh_database("fetcher_term_ref").await else {
        return;
    };
    let Some(db) = fresh_database("fetcher_term").await else {
        return;
    };
    let fake = FakeGithub::start(TOKEN).await;
    let data = generate(
        11,
        Sizes {
            issues: 900,
            comments: 1500,
            reviews: 120,
            events: 600,
        },
    );
    fake.with(|s| {
        s.repos.insert("velo/crashy".into(), data.clone());
        // Slow enough that the signal lands mid-walk, with a page in flight.
        s.latency
            .insert("/repos/velo/crashy".into(), Duration::from_millis(60));
    });
    let dir = tempfile::tempdir().expect("tempdir");
    let token = dir.path().join("token");
    std::fs::write(&token, TOKEN).expect("write token");

    assert!(
        run_to_end(command(&fake, &reference_db, &token))
            .await
            .success()
    );
    let uninterrupted = data_requests(&fake);
    fake.clear_log();

    let child = command(&fake, &db, &token)
        .env("VELODROME_LOG", "info")
        .env("VELODROME_PROGRESS_EVERY_MS", "50")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn velodrome");
    let started = Instant::now();
    while fake.log().len() < 4 && started.elapsed() < Duration::from_secs(30) {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    support::terminate(child.id());
    let signalled = Instant::now();
    let seen_at_signal = fake.log().len();
    let output = tokio::task::spawn_blocking(move || child.wait_with_output())
        .await
        .expect("join")
        .expect("wait");
    let stopped_after = signalled.elapsed();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "exit {:?}: {stderr}",
        output.status
    );
    assert!(stderr.contains("stop requested"), "{stderr}");
    assert!(
        stderr.contains("every fetched page is committed"),
        "{stderr}"
    );
    // A long walk reports its progress: items, rate and how far it is.
    let progress = stderr
        .lines()
        .find(|l| l.contains("progress") && l.contains("task=velo/crashy issues"))
        .unwrap_or_else(|| panic!("no progress line: {stderr}"));
    eprintln!("{progress}");
    for field in ["done=", "rate_per_s=", "percent=", "eta_s="] {
        assert!(progress.contains(field), "{progress}");
    }
    // Only the request in flight finishes after the signal; no new page is started.
    let after_signal = fake.log().len() - seen_at_signal;
    assert!(after_signal <= 1, "{after_signal} requests after SIGTERM");
    // Promptly: the uninterrupted backfill takes a minute at this latency; the bound is
    // loose so that a loaded machine cannot fail it.
    assert!(
        stopped_after < Duration::from_secs(20),
        "took {stopped_after:?} to stop"
    );
    let stopped_requests = data_requests(&fake);
    assert!(
        stopped_requests < uninterrupted,
        "the run was not interrupted"
    );

    fake.clear_log();
    assert!(run_to_end(command(&fake, &db, &token)).await.success());
    Mirror::load(&db, "velo/crashy")
        .await
        .assert_same(&Mirror::expected(&data));
    assert_eq!(
        stopped_requests + data_requests(&fake),
        uninterrupted,
        "stopped run + restart must cost exactly one backfill"
    );
}
