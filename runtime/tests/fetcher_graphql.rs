//! The fetcher's GraphQL side against the fake GitHub and the real MariaDB: a backfill
//! whose events feed reaches only the newest events reads the rest through timelines,
//! exactly and at most 1.2 requests-or-points per 100 items; REST-only and timeline
//! backfills give identical tables; a quiet poll costs no point and a new review one
//! query; GraphQL faults (RATE_LIMITED, a 502 timeout, a NOT_FOUND issue) end exactly.

mod support;

use std::collections::BTreeSet;
use std::time::Duration;

use support::fake_github::{
    FakeEvent, FakeGithub, FakeRepo, FakeReview, Logged, Mirror, Sizes, add_pr_reviews, generate,
    issue_node_id,
};
use support::mysql::fresh_database;
use support::process::Run;

const TOKEN: &str = "ghp_GRAPHQLtoken0123456789secretVALUE";

async fn fetch_once(fake: &FakeGithub, db: &str, repo: &str, dir: &tempfile::TempDir) -> Run {
    let token = dir.path().join("token");
    std::fs::write(&token, format!("{TOKEN}\n")).expect("write token");
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_velodrome"));
    cmd.args(["fetcher", "--once", "--repository", repo, "--mysql-url", db])
        .arg("--token-file")
        .arg(&token)
        .args(["--github-url", &fake.url])
        .env("VELODROME_GITHUB_BACKOFF_MS", "20")
        .env("VELODROME_GITHUB_TIMEOUT_S", "10")
        .env("VELODROME_LOG", "info")
        .env_remove("RUST_LOG");
    support::process::run_keeping(cmd, TOKEN).await
}

fn graphql(log: &[Logged]) -> Vec<&Logged> {
    log.iter().filter(|l| l.query.is_some()).collect()
}

fn rest(log: &[Logged]) -> Vec<&Logged> {
    log.iter().filter(|l| l.query.is_none()).collect()
}

/// The creation time of the oldest event the capped feed still serves.
fn feed_floor(repo: &FakeRepo, cap: usize) -> i64 {
    repo.events
        .values()
        .rev()
        .take(cap)
        .map(|e| e.created_at)
        .min()
        .unwrap_or(i64::MAX)
}

/// Issues the capped feed cannot cover: created before its floor.
fn old_issues(repo: &FakeRepo, cap: usize) -> BTreeSet<i64> {
    let floor = feed_floor(repo, cap);
    repo.issues
        .values()
        .filter(|i| i.created_at < floor)
        .map(|i| i.number)
        .collect()
}

/// Pages of 100 a timeline needs (events, and reviews of every state for a pull request).
fn timeline_pages(repo: &FakeRepo, issue: i64) -> usize {
    let events = repo.events.values().filter(|e| e.issue == issue).count();
    let reviews = repo
        .pr_reviews
        .values()
        .filter(|r| r.issue == issue)
        .count();
    (events + reviews).div_ceil(100).max(1)
}

fn items(sizes: Sizes, reviews: usize) -> usize {
    sizes.issues + sizes.comments + sizes.reviews + sizes.events + reviews
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeline_backfill_is_exact_within_budget_then_quiet_then_one_query_per_review() {
    let Some(db) = fresh_database("graphql_backfill").await else {
        return;
    };
    let fake = FakeGithub::start(TOKEN).await;
    let sizes = Sizes {
        issues: 2000,
        comments: 10_000,
        reviews: 300,
        events: 8000,
    };
    let reviews = 1500;
    let cap = 3000;
    let mut data = generate(21, sizes);
    add_pr_reviews(&mut data, 21, reviews);
    let repo = "velo/history";
    fake.with(|s| {
        s.repos.insert(repo.into(), data.clone());
        s.feed_cap = cap;
    });
    let dir = tempfile::tempdir().expect("tempdir");

    // 1. Backfill: exactly what the fake serves, reviews and node IDs included.
    let run = fetch_once(&fake, &db, repo, &dir).await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    Mirror::load_all(&db, repo)
        .await
        .assert_same(&Mirror::expected_named(&data, Some(repo)));
    let log = fake.log();
    assert!(log.iter().all(|l| l.status == 200), "unexpected statuses");
    let rest_requests = rest(&log).len();
    let queries = graphql(&log);
    let points: u64 = queries.iter().map(|l| l.points).sum();
    let total = items(sizes, reviews);
    let per_100 = (rest_requests as f64 + points as f64) * 100.0 / total as f64;
    let old = old_issues(&data, cap);
    eprintln!(
        "timeline backfill of {total} items ({} issues older than the feed): {rest_requests} REST requests \
         + {points} GraphQL points in {} queries = {per_100:.3} per 100 items",
        old.len(),
        queries.len()
    );
    assert!(per_100 <= 1.2, "{per_100:.3} per 100 items");
    // No per-issue REST event page: every old issue went through a timeline.
    assert!(
        rest(&log).iter().all(|l| !l.path.contains("/events?")
            || l.path.starts_with(&format!("/repos/{repo}/issues/events?"))),
        "per-issue REST pages were read"
    );
    // Each old issue's timeline pages were asked for exactly once (inner pages included).
    let timeline_roots: usize = queries
        .iter()
        .filter(|l| l.query.as_deref().is_some_and(|q| q.ends_with("Timelines")))
        .map(|l| l.graphql_roots)
        .sum();
    let pages: usize = old.iter().map(|n| timeline_pages(&data, *n)).sum();
    assert_eq!(timeline_roots, pages);

    // 2. Nothing changed: only 304s, and not one GraphQL point.
    fake.clear_log();
    let run = fetch_once(&fake, &db, repo, &dir).await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let log = fake.log();
    assert_eq!(log.len(), 4, "{log:?}");
    assert!(log.iter().all(|l| l.conditional && l.status == 304));
    assert!(graphql(&log).is_empty());

    // 3. A review is submitted on an old pull request: the next run stores it with one query.
    let pr = *old
        .iter()
        .find(|n| data.issues[n].is_pr)
        .expect("an old pull request");
    let now = data
        .issues
        .values()
        .map(|i| i.updated_at)
        .max()
        .unwrap_or(0)
        + 100;
    data.pr_reviews.insert(
        3_500_000_000,
        FakeReview {
            id: 3_500_000_000,
            issue: pr,
            user: Some("grace".into()),
            state: "APPROVED".into(),
            submitted_at: now,
            body: "ship it".into(),
        },
    );
    if let Some(i) = data.issues.get_mut(&pr) {
        i.updated_at = now + 1;
    }
    fake.with(|s| {
        s.repos.insert(repo.into(), data.clone());
    });
    fake.clear_log();
    let run = fetch_once(&fake, &db, repo, &dir).await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let log = fake.log();
    let queries = graphql(&log);
    assert_eq!(queries.len(), 1, "{queries:?}");
    assert_eq!(queries[0].points, 1);
    assert_eq!(queries[0].query.as_deref(), Some("PullRequestReviews"));
    assert_eq!(rest(&log).iter().filter(|l| l.status == 200).count(), 1);
    Mirror::load_all(&db, repo)
        .await
        .assert_same(&Mirror::expected_named(&data, Some(repo)));
}

/// Adds `count` events to `issue` from the second it opened: a timeline of several pages
/// (and, on the oldest issue, an events feed whose oldest event is no younger than any
/// issue, so a feed that reaches everything leaves no issue to read otherwise).
fn crowd(repo: &mut FakeRepo, issue: i64, count: usize, first_id: i64) {
    let created = repo.issues[&issue].created_at;
    for k in 0..count as i64 {
        let id = first_id + k;
        repo.events.insert(
            id,
            FakeEvent {
                id,
                issue,
                event: if k % 2 == 0 { "labeled" } else { "unlabeled" }.into(),
                label: Some(format!("area/{}", k % 7)),
                actor: Some("bot".into()),
                assignee: None,
                created_at: created + k,
            },
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rest_only_and_timeline_backfills_give_identical_tables() {
    let Some(db_rest) = fresh_database("graphql_same_rest").await else {
        return;
    };
    let Some(db_timeline) = fresh_database("graphql_same_timeline").await else {
        return;
    };
    let mut data = generate(
        22,
        Sizes {
            issues: 500,
            comments: 1000,
            reviews: 50,
            events: 3000,
        },
    );
    add_pr_reviews(&mut data, 22, 400);
    // An issue and a pull request with timelines of three pages.
    crowd(&mut data, 1, 250, 4_000_000);
    crowd(&mut data, 3, 230, 4_100_000);
    let repo = "velo/same";
    let dir = tempfile::tempdir().expect("tempdir");

    let fake = FakeGithub::start(TOKEN).await;
    fake.with(|s| {
        s.repos.insert(repo.into(), data.clone());
    });
    let run = fetch_once(&fake, &db_rest, repo, &dir).await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert!(
        graphql(&fake.log()).iter().all(|l| matches!(
            l.query.as_deref(),
            Some("PullRequestReviews" | "ReconcileIssues" | "ReconcilePullRequests")
        )),
        "the feed reaches every event: no timeline"
    );

    let cap = 1000;
    fake.with(|s| s.feed_cap = cap);
    fake.clear_log();
    let run = fetch_once(&fake, &db_timeline, repo, &dir).await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let log = fake.log();
    let old = old_issues(&data, cap);
    assert!(old.contains(&1) && old.contains(&3));
    let roots: usize = graphql(&log)
        .iter()
        .filter(|l| l.query.as_deref().is_some_and(|q| q.ends_with("Timelines")))
        .map(|l| l.graphql_roots)
        .sum();
    assert_eq!(
        roots,
        old.iter().map(|n| timeline_pages(&data, *n)).sum::<usize>(),
        "one timeline page per old issue, plus the inner pages of the crowded two"
    );

    let by_rest = Mirror::load_all(&db_rest, repo).await;
    let by_timeline = Mirror::load_all(&db_timeline, repo).await;
    assert_eq!(by_rest.events.len(), data.events.len());
    by_timeline.assert_same(&by_rest);
    by_rest.assert_same(&Mirror::expected_named(&data, Some(repo)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graphql_rate_limit_timeout_and_a_missing_issue_end_exactly() {
    let Some(db) = fresh_database("graphql_faults").await else {
        return;
    };
    let mut data = generate(
        23,
        Sizes {
            issues: 600,
            comments: 1000,
            reviews: 50,
            events: 3000,
        },
    );
    add_pr_reviews(&mut data, 23, 300);
    let repo = "velo/faults";
    let cap = 800;
    let floor = feed_floor(&data, cap);
    // An old issue with events, all older than the feed's reach, deleted after the REST
    // walk listed it: GraphQL answers NOT_FOUND for it.
    let gone = data
        .issues
        .values()
        .filter(|i| !i.is_pr && i.created_at < floor)
        .map(|i| i.number)
        .find(|n| {
            let mut events = data.events.values().filter(|e| e.issue == *n);
            events.clone().count() > 0 && events.all(|e| e.created_at < floor)
        })
        .expect("an old issue");
    let fake = FakeGithub::start(TOKEN).await;
    fake.with(|s| {
        s.repos.insert(repo.into(), data.clone());
        s.feed_cap = cap;
        s.graphql_gone
            .insert(issue_node_id(repo, &s.repos[repo].issues[&gone]));
        s.faults.graphql_rate_limited_at = Some(0);
        s.faults.graphql_timeout_at = vec![1, 2];
    });
    let dir = tempfile::tempdir().expect("tempdir");
    let run = fetch_once(&fake, &db, repo, &dir).await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);

    // The timelines skip the missing issue; the sweep after the backfill finds its events
    // missing and reads it again over REST (which still serves it): exact.
    Mirror::load_all(&db, repo)
        .await
        .assert_same(&Mirror::expected_named(&data, Some(repo)));
    assert!(
        run.stderr.lines().any(|l| l.contains("issue read again")
            && l.contains(&format!("issue={gone}"))
            && l.contains("events missing")),
        "{}",
        run.stderr
    );
    let said = run
        .stderr
        .lines()
        .filter(|l| l.contains("not found") && l.contains(&format!("issue={gone}")))
        .count();
    assert_eq!(said, 1, "the missing issue is logged once:\n{}", run.stderr);

    let log = fake.log();
    let queries = graphql(&log);
    // RATE_LIMITED: the token rests until its reset (2 s ahead, whole seconds: over 0.9 s).
    assert_eq!(queries[0].query.as_deref(), Some("RATE_LIMITED"));
    let rested = queries[1].at.duration_since(queries[0].at);
    assert!(
        rested >= Duration::from_millis(900),
        "rested only {rested:?}"
    );
    // Two 502 timeouts: each halves the batch before it is sent again.
    assert_eq!((queries[1].status, queries[2].status), (502, 502));
    let sizes: Vec<usize> = queries[1..4].iter().map(|l| l.graphql_roots).collect();
    assert!(
        sizes[1] < sizes[0] && sizes[2] < sizes[1] && queries[3].status == 200,
        "batch sizes around the timeouts: {sizes:?}"
    );
    assert!(run.stderr.contains("halving the batch"), "{}", run.stderr);
    // Timed-out queries are charged too.
    assert!(queries[1].points >= 1);
}
