//! The fetcher against a fake GitHub on loopback and the real MariaDB: a full backfill
//! compared field by field, the request budget, conditional polls, the recorded session,
//! injected faults, and tokens kept out of every log line and error.

mod support;

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use support::fake_github::{
    FakeComment, FakeEvent, FakeGithub, FakeRepo, Logged, Mirror, Sizes, generate,
};
use support::mysql::fresh_database;
use support::process::Run;

const TOKEN: &str = "ghp_TESTtoken0123456789secretVALUE";

async fn fetch_once(
    fake: &FakeGithub,
    db: &str,
    repos: &[&str],
    token_file: &Path,
    log: &str,
) -> Run {
    fetch_once_with(fake, db, repos, token_file, log, &[]).await
}

async fn fetch_once_with(
    fake: &FakeGithub,
    db: &str,
    repos: &[&str],
    token_file: &Path,
    log: &str,
    env: &[(&str, &str)],
) -> Run {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_velodrome"));
    cmd.arg("fetcher").arg("--once");
    for repo in repos {
        cmd.arg("--repository").arg(repo);
    }
    cmd.arg("--mysql-url")
        .arg(db)
        .arg("--token-file")
        .arg(token_file)
        .arg("--github-url")
        .arg(&fake.url)
        .env("VELODROME_GITHUB_BACKOFF_MS", "20")
        .env("VELODROME_GITHUB_TIMEOUT_S", "4")
        .env("VELODROME_LOG", log)
        .env_remove("RUST_LOG")
        .envs(env.iter().copied());
    support::process::run_keeping(cmd, TOKEN).await
}

fn token_file(dir: &tempfile::TempDir) -> std::path::PathBuf {
    let path = dir.path().join("token");
    std::fs::write(&path, format!("{TOKEN}\n")).expect("write token");
    path
}

fn count(log: &[Logged], pred: impl Fn(&str) -> bool) -> usize {
    log.iter().filter(|l| pred(&l.path)).count()
}

fn is_list(path: &str, repo: &str, what: &str) -> bool {
    path.starts_with(&format!("/repos/{repo}/{what}?"))
}

/// Issue numbers whose histories the capped feed cannot show: those created before the
/// oldest event it still serves.
fn unreachable_issues(repo: &FakeRepo, cap: usize) -> BTreeSet<i64> {
    let floor = repo
        .events
        .values()
        .rev()
        .take(cap)
        .map(|e| e.created_at)
        .min()
        .unwrap_or(i64::MAX);
    repo.issues
        .values()
        .filter(|i| i.created_at < floor)
        .map(|i| i.number)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backfill_then_conditional_polls_then_only_changes() {
    let Some(db) = fresh_database("fetcher_backfill").await else {
        return;
    };
    let fake = FakeGithub::start(TOKEN).await;
    let sizes = Sizes {
        issues: 2000,
        comments: 10_000,
        reviews: 300,
        events: 8000,
    };
    let cap = 6000;
    let data = generate(1, sizes);
    fake.with(|s| {
        s.repos.insert("velo/big".into(), data.clone());
        s.feed_cap = cap;
    });
    let dir = tempfile::tempdir().expect("tempdir");
    let token = token_file(&dir);

    // 1. Backfill: the tables hold exactly what the fake serves.
    let run = fetch_once(&fake, &db, &["velo/big"], &token, "info").await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    Mirror::load(&db, "velo/big")
        .await
        .assert_same(&Mirror::expected(&data));

    // ... within the request budget: one request per 100 items per list endpoint, and the
    // issues the capped feed cannot reach through GraphQL timelines (100 per query), with
    // no per-issue REST page.
    let log = fake.log();
    assert!(
        log.iter().all(|l| l.status == 200 && l.authorized),
        "unexpected statuses"
    );
    let issues = count(&log, |p| is_list(p, "velo/big", "issues"));
    let comments = count(&log, |p| is_list(p, "velo/big", "issues/comments"));
    let reviews = count(&log, |p| is_list(p, "velo/big", "pulls/comments"));
    let feed = count(&log, |p| is_list(p, "velo/big", "issues/events"));
    let per_issue = log
        .iter()
        .filter(|l| l.path.contains("/events?") && !is_list(&l.path, "velo/big", "issues/events"))
        .count();
    let timelines: Vec<&Logged> = log
        .iter()
        .filter(|l| l.query.as_deref().is_some_and(|q| q.ends_with("Timelines")))
        .collect();
    let points: u64 = log.iter().map(|l| l.points).sum();
    eprintln!(
        "backfill requests: issues {issues} for {}, comments {comments} for {}, reviews {reviews} for {}, feed {feed} for {cap} of {}, timeline queries {} ({points} points); total {}",
        sizes.issues,
        sizes.comments,
        sizes.reviews,
        sizes.events,
        timelines.len(),
        log.len()
    );
    assert_eq!(issues, sizes.issues.div_ceil(100), "issues");
    assert_eq!(comments, sizes.comments.div_ceil(100), "comments");
    assert_eq!(reviews, sizes.reviews.div_ceil(100), "reviews");
    assert!(feed <= cap.div_ceil(100), "feed: {feed}");
    assert_eq!(per_issue, 0, "no per-issue REST event page");
    // Every issue the feed cannot reach is asked for once per page of its timeline.
    let needed = unreachable_issues(&data, cap);
    let pages_needed: usize = needed
        .iter()
        .map(|n| {
            data.events
                .values()
                .filter(|e| e.issue == *n)
                .count()
                .div_ceil(100)
                .max(1)
        })
        .sum();
    let asked: usize = timelines.iter().map(|l| l.graphql_roots).sum();
    assert_eq!(asked, pages_needed);
    assert!(timelines.len() <= pages_needed.div_ceil(100) + 2);
    // The rest of GraphQL: the reviews of the pull requests no timeline covered.
    assert!(
        log.iter()
            .filter(|l| l.query.is_some())
            .all(|l| l.points == 1),
        "one point per query"
    );
    assert_eq!(
        issues + comments + reviews + feed + log.iter().filter(|l| l.query.is_some()).count(),
        log.len()
    );

    // 2. Nothing changed: only conditional requests, all 304.
    fake.clear_log();
    let run = fetch_once(&fake, &db, &["velo/big"], &token, "info").await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let log = fake.log();
    assert_eq!(
        log.len(),
        4,
        "one poll per endpoint: {:?}",
        log.iter().map(|l| &l.path).collect::<Vec<_>>()
    );
    assert!(
        log.iter().all(|l| l.conditional && l.status == 304),
        "{log:?}"
    );

    // 3. A few changes: the next run fetches only the endpoints that changed, one page each.
    let mut data = data;
    let now = data
        .issues
        .values()
        .map(|i| i.updated_at)
        .max()
        .unwrap_or(0)
        + 1000;
    if let Some(i) = data.issues.get_mut(&5) {
        i.title = "renamed".into();
        i.labels = vec!["kind/regression".into()];
        i.updated_at = now;
    }
    data.comments.insert(
        9_999_999,
        FakeComment {
            id: 9_999_999,
            issue: 7,
            body: "new".into(),
            user: None,
            created_at: now + 1,
            updated_at: now + 1,
        },
    );
    if let Some(i) = data.issues.get_mut(&7) {
        i.comments += 1;
        i.updated_at = now + 1;
    }
    data.events.insert(
        99_000_000,
        FakeEvent {
            id: 99_000_000,
            issue: 7,
            event: "closed".into(),
            label: None,
            actor: None,
            assignee: None,
            created_at: now + 2,
        },
    );
    fake.with(|s| {
        s.repos.insert("velo/big".into(), data.clone());
    });
    fake.clear_log();
    let run = fetch_once(&fake, &db, &["velo/big"], &token, "info").await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    Mirror::load(&db, "velo/big")
        .await
        .assert_same(&Mirror::expected(&data));
    let log = fake.log();
    let statuses: Vec<(String, u16)> = log.iter().map(|l| (l.path.clone(), l.status)).collect();
    assert_eq!(log.len(), 4, "{statuses:?}");
    assert!(log.iter().all(|l| l.conditional), "{statuses:?}");
    assert_eq!(count(&log, |p| is_list(p, "velo/big", "pulls/comments")), 1);
    assert!(
        log.iter()
            .any(|l| is_list(&l.path, "velo/big", "pulls/comments") && l.status == 304),
        "review comments did not change: {statuses:?}"
    );
    assert_eq!(
        log.iter().filter(|l| l.status == 200).count(),
        3,
        "{statuses:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replays_the_recorded_session() {
    let Some(db) = fresh_database("fetcher_replay").await else {
        return;
    };
    let fake = FakeGithub::start(TOKEN).await;
    let recorded: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/github-paginate-issues.json"
        ))
        .expect("read the recorded session"),
    )
    .expect("parse the recorded session");
    fake.load_replay(&recorded);
    fake.with(|s| {
        s.repos.insert(
            "octokit-fixture-org/paginate-issues".into(),
            FakeRepo::default(),
        );
    });
    let dir = tempfile::tempdir().expect("tempdir");
    // The recording holds REST answers only: no GraphQL census to reconcile with.
    let run = fetch_once_with(
        &fake,
        &db,
        &["octokit-fixture-org/paginate-issues"],
        &token_file(&dir),
        "info",
        &[("VELODROME_RECONCILE_EVERY", "off")],
    )
    .await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let mut want = Vec::new();
    for entry in recorded.as_array().expect("array") {
        for issue in entry["response"].as_array().expect("issues") {
            want.push((
                issue["number"].as_i64().expect("number"),
                issue["title"].as_str().expect("title").to_owned(),
                issue["user"]["login"].as_str().expect("login").to_owned(),
                issue["state"].as_str().expect("state").to_owned(),
                issue["comments"].as_i64().expect("comments") as i32,
                issue["created_at"].as_str().expect("created").to_owned(),
            ));
        }
    }
    want.sort();
    assert_eq!(want.len(), 13);
    let got = Mirror::load(&db, "octokit-fixture-org/paginate-issues").await;
    let got: Vec<_> = got
        .issues
        .into_iter()
        .map(|i| (i.0, i.1, i.3, i.4, i.5, i.8))
        .collect();
    assert_eq!(got, want);
    // every recorded page was requested through the Link headers
    let log = fake.log();
    for page in 2..=5 {
        assert!(
            log.iter()
                .any(|l| l.path.starts_with("/repositories/1000/issues")
                    && l.path.ends_with(&format!("page={page}"))),
            "page {page}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn completes_exactly_through_injected_faults() {
    let Some(db) = fresh_database("fetcher_faults").await else {
        return;
    };
    let fake = FakeGithub::start(TOKEN).await;
    let data = generate(
        2,
        Sizes {
            issues: 400,
            comments: 2000,
            reviews: 80,
            events: 2000,
        },
    );
    fake.with(|s| {
        s.repos.insert("velo/faulty".into(), data.clone());
        s.feed_cap = 1200;
        s.faults.error_rate = 0.2;
        s.faults.secondary_limit_at = Some((6, 2));
        s.faults.malformed_at = Some(11);
        s.faults.drop_mid_body_at = Some(17);
        s.faults.hang_at = Some(23);
        s.faults.exhausted_at = Some(29);
        s.feed_page_limit = Some(8);
    });
    let dir = tempfile::tempdir().expect("tempdir");
    let run = fetch_once(&fake, &db, &["velo/faulty"], &token_file(&dir), "debug").await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    Mirror::load(&db, "velo/faulty")
        .await
        .assert_same(&Mirror::expected(&data));
    let log = fake.log();
    let bad = log.iter().filter(|l| l.status == 502).count();
    assert!(
        bad * 100 >= log.len() * 10,
        "about 20% 502s expected: {bad} of {}",
        log.len()
    );
    // waited as told by Retry-After
    let limited = log
        .iter()
        .position(|l| l.status == 403)
        .expect("a secondary rate limit was served");
    let waited = log[limited + 1].at.duration_since(log[limited].at);
    assert!(
        waited >= Duration::from_secs(2),
        "waited only {waited:?} after Retry-After: 2"
    );
    assert!(
        run.stderr.contains("secondary rate limit"),
        "{}",
        run.stderr
    );
    // the malformed page was reported with its URL, then fetched again
    let line = run
        .stderr
        .lines()
        .find(|l| l.contains("malformed page"))
        .expect("a malformed-page warning");
    assert!(line.contains(&fake.url), "{line}");
    // the primary limit ran out: the only token rested until its reset (2 s ahead, so
    // between 1 and 2 s given whole-second resets)
    let forbidden: Vec<usize> = (0..log.len()).filter(|&i| log[i].status == 403).collect();
    assert_eq!(
        forbidden.len(),
        2,
        "one secondary and one primary rate limit"
    );
    let spent = forbidden[1];
    let rested = log[spent + 1].at.duration_since(log[spent].at);
    assert!(
        rested >= Duration::from_millis(900),
        "rested only {rested:?} before the reset"
    );
    assert!(run.stderr.contains("token exhausted"), "{}", run.stderr);
    // the events feed hit GitHub's pagination cap (422) and the per-issue pages covered the rest
    assert!(
        log.iter()
            .any(|l| l.status == 422 && l.path.contains("/issues/events?"))
    );
    // the request that hung past the 4 s timeout was given up and sent again
    assert!(
        run.stderr.contains("timed out"),
        "a timeout was logged and retried"
    );
    assert!(
        run.stderr.contains("reading body"),
        "the dropped connection was retried"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_that_never_decodes_fails_with_its_url_and_commits_nothing_of_it() {
    let Some(db) = fresh_database("fetcher_malformed").await else {
        return;
    };
    let fake = FakeGithub::start(TOKEN).await;
    let data = generate(
        3,
        Sizes {
            issues: 50,
            comments: 100,
            reviews: 30,
            events: 100,
        },
    );
    fake.with(|s| {
        s.repos.insert("velo/broken".into(), data.clone());
        s.faults.always_malformed = Some("pulls/comments".into());
    });
    let dir = tempfile::tempdir().expect("tempdir");
    let run = fetch_once(&fake, &db, &["velo/broken"], &token_file(&dir), "info").await;
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    let line = run
        .stderr
        .lines()
        .find(|l| l.contains("round failed"))
        .expect("an error line");
    assert!(
        line.contains("cannot decode")
            && line.contains(&format!("{}/repos/velo/broken/pulls/comments", fake.url)),
        "{line}"
    );
    let got = Mirror::load(&db, "velo/broken").await;
    let want = Mirror::expected(&data);
    assert_eq!(
        got.issues, want.issues,
        "pages before the broken one are committed"
    );
    assert!(
        got.comments.iter().all(|c| !c.1),
        "nothing of the broken page is committed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_stay_out_of_logs_and_errors() {
    let Some(db) = fresh_database("fetcher_secrets").await else {
        return;
    };
    // The fake expects another token: every request fails with 401.
    let fake = FakeGithub::start("some-other-token").await;
    fake.with(|s| {
        s.repos.insert(
            "velo/secret".into(),
            generate(
                4,
                Sizes {
                    issues: 5,
                    comments: 5,
                    reviews: 1,
                    events: 5,
                },
            ),
        );
    });
    let dir = tempfile::tempdir().expect("tempdir");
    // trace level: every layer's logging on, including the HTTP client's
    let run = fetch_once(&fake, &db, &["velo/secret"], &token_file(&dir), "trace").await;
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    assert!(run.stderr.contains("401"), "{}", run.stderr);
    // the Authorization header was sent, and yet never printed (checked in fetch_once)
    let log = fake.log();
    assert!(log.iter().any(|l| {
        l.headers
            .iter()
            .any(|(k, v)| k == "authorization" && v.contains(TOKEN))
    }));
    // an unreadable token file is named, not echoed
    let missing = dir.path().join("missing-token");
    let run = fetch_once(&fake, &db, &["velo/secret"], &missing, "trace").await;
    assert_eq!(run.code, Some(2));
    assert!(run.stderr.contains("missing-token"), "{}", run.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_repository_does_not_hold_up_the_others() {
    let Some(db) = fresh_database("fetcher_concurrent").await else {
        return;
    };
    let fake = FakeGithub::start(TOKEN).await;
    let slow = generate(
        5,
        Sizes {
            issues: 150,
            comments: 150,
            reviews: 10,
            events: 150,
        },
    );
    let fast = generate(
        6,
        Sizes {
            issues: 600,
            comments: 1500,
            reviews: 50,
            events: 1500,
        },
    );
    fake.with(|s| {
        s.repos.insert("velo/slow".into(), slow.clone());
        s.repos.insert("velo/fast".into(), fast.clone());
        s.latency
            .insert("/repos/velo/slow/".into(), Duration::from_millis(400));
    });
    let dir = tempfile::tempdir().expect("tempdir");
    let run = fetch_once(
        &fake,
        &db,
        &["velo/slow", "velo/fast"],
        &token_file(&dir),
        "info",
    )
    .await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    Mirror::load(&db, "velo/slow")
        .await
        .assert_same(&Mirror::expected(&slow));
    Mirror::load(&db, "velo/fast")
        .await
        .assert_same(&Mirror::expected(&fast));
    let log = fake.log();
    let last = |repo: &str| {
        log.iter()
            .rposition(|l| l.path.starts_with(&format!("/repos/{repo}/")))
            .expect("requests")
    };
    let slow_requests = count(&log, |p| p.starts_with("/repos/velo/slow/"));
    let slow_before_fast_done = log[..last("velo/fast")]
        .iter()
        .filter(|l| l.path.starts_with("/repos/velo/slow/"))
        .count();
    // the fast repository finished while the slow one had most of its requests ahead
    assert!(
        slow_before_fast_done * 2 < slow_requests,
        "fast repository finished after {slow_before_fast_done} of {slow_requests} slow requests"
    );
    assert!(last("velo/fast") < last("velo/slow"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_issue_edited_mid_walk_skips_nothing_and_the_next_poll_reads_it() {
    let Some(db) = fresh_database("fetcher_shift").await else {
        return;
    };
    let fake = FakeGithub::start(TOKEN).await;
    let data = generate(
        8,
        Sizes {
            issues: 450,
            comments: 10,
            reviews: 2,
            events: 10,
        },
    );
    // The oldest issue, not read yet, is edited right after page 1 is served: it moves to
    // the front and every page after shifts by one. Newest-first offset pages then read one
    // issue twice; none slides out of sight (oldest-first ones would skip one at the next
    // boundary, the original fetcher's silent loss).
    let first = data
        .issues
        .values()
        .min_by_key(|i| (i.updated_at, i.number))
        .map(|i| i.number)
        .expect("issues");
    fake.with(|s| {
        s.repos.insert("velo/shift".into(), data.clone());
        s.faults.touch_after = Some((0, "velo/shift".to_owned(), first));
    });
    let dir = tempfile::tempdir().expect("tempdir");
    // Mixed case on the command line: stored under the lower-case key.
    let run = fetch_once(&fake, &db, &["Velo/Shift"], &token_file(&dir), "info").await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let now = fake.with(|s| s.repos["velo/shift"].clone());
    assert_ne!(now.issues, data.issues, "the fake edited an issue mid-walk");
    // Every other issue is there, exactly; the edited one moved behind the walk.
    let mut without_edited = now.clone();
    without_edited.issues.remove(&first);
    Mirror::load(&db, "velo/shift")
        .await
        .assert_same(&Mirror::expected(&without_edited));
    // The edit is newer than the walk's mark: the next poll reads it, on page 1.
    fake.clear_log();
    let run = fetch_once(&fake, &db, &["velo/shift"], &token_file(&dir), "info").await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    Mirror::load(&db, "velo/shift")
        .await
        .assert_same(&Mirror::expected(&now));
    let issue_pages: Vec<u16> = fake
        .log()
        .iter()
        .filter(|l| is_list(&l.path, "velo/shift", "issues"))
        .map(|l| l.status)
        .collect();
    assert_eq!(issue_pages, vec![200], "one page for one change");
}

/// GET on a plain HTTP endpoint: (status line, body).
async fn http_get(addr: &str, path: &str) -> Option<(String, String)> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.ok()?;
    let request = format!("GET {path} HTTP/1.1\r\nhost: {addr}\r\n\r\n");
    stream.write_all(request.as_bytes()).await.ok()?;
    let mut text = String::new();
    stream.read_to_string(&mut text).await.ok()?;
    let (head, body) = text.split_once("\r\n\r\n")?;
    Some((head.lines().next()?.to_owned(), body.to_owned()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_healthz_and_metrics_while_looping() {
    let Some(db) = fresh_database("fetcher_listen").await else {
        return;
    };
    let fake = FakeGithub::start(TOKEN).await;
    fake.with(|s| {
        s.repos.insert(
            "velo/watched".into(),
            generate(
                9,
                Sizes {
                    issues: 30,
                    comments: 30,
                    reviews: 3,
                    events: 30,
                },
            ),
        );
    });
    // The first round's requests wait until the test has seen it in progress.
    let (open, gate) = tokio::sync::watch::channel(false);
    fake.with(|s| s.gate = Some(gate));
    let dir = tempfile::tempdir().expect("tempdir");
    let token = token_file(&dir);
    let mut child = support::process::Watched::spawn(
        std::process::Command::new(env!("CARGO_BIN_EXE_velodrome"))
            .args([
                "fetcher",
                "--repository",
                "velo/watched",
                "--interval",
                "1s",
                "--mysql-url",
                &db,
            ])
            .arg("--token-file")
            .arg(&token)
            .args(["--github-url", &fake.url, "--listen", "127.0.0.1:0"])
            .env(
                "VELODROME_LOG",
                "warn,velodrome::observe=info,velodrome::fetcher=info",
            ),
        "velodrome fetcher",
    );
    let addr = child.listening_addr().await;
    // During the first round (its first request is held): alive, not ready.
    let early_live = http_get(&addr, "/livez").await.map(|h| h.0);
    let early_ready = http_get(&addr, "/healthz").await;
    open.send(true).expect("the fake is running");
    // Two rounds done, as the fetcher logs them (after counting them).
    child.wait_for_lines("round done", 2).await;
    let (_, metrics) = http_get(&addr, "/metrics")
        .await
        .unwrap_or_else(|| panic!("/metrics at {addr} answers; log:\n{}", child.log()));
    let health = http_get(&addr, "/healthz").await;
    drop(child);
    assert_eq!(health.map(|h| h.0), Some("HTTP/1.1 200 OK".to_owned()));
    assert_eq!(early_live.as_deref(), Some("HTTP/1.1 200 OK"));
    let early_ready = early_ready.expect("healthz answered");
    assert_eq!(early_ready.0, "HTTP/1.1 503 Service Unavailable");
    assert!(early_ready.1.contains("velo/watched"), "{early_ready:?}");
    support::promtool::check_metrics(&metrics);
    // two rounds done in loop mode: the second one cost only 304s
    assert!(
        metrics.contains(
            "velodrome_fetcher_rounds_total{repository=\"velo/watched\",result=\"ok\"} 2"
        ),
        "{metrics}"
    );
    assert!(
        metrics.contains(
            "velodrome_fetcher_rows_total{repository=\"velo/watched\",table=\"issues\"} 30"
        ),
        "{metrics}"
    );
    // Requests by status and token; the token shows as its file, never its value.
    let token_label = token.display().to_string();
    let count = |status: &str| -> u64 {
        let prefix = format!(
            "velodrome_github_requests_total{{status=\"{status}\",token=\"{token_label}\"}} "
        );
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(prefix.as_str()))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    assert!(count("304") >= 4, "{metrics}");
    assert!(count("200") >= 4, "{metrics}");
    assert!(
        metrics.contains(&format!(
            "velodrome_github_rate_limit_remaining{{token=\"{token_label}\"}} "
        )),
        "{metrics}"
    );
    assert!(!metrics.contains(TOKEN));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_of_maximal_bodies_fits_mysql_packets() {
    let Some(db) = fresh_database("fetcher_huge").await else {
        return;
    };
    let fake = FakeGithub::start(TOKEN).await;
    // 100 issues with GitHub's largest body (65,536 characters, here 4-byte emoji): one
    // 25 MiB page, more than MariaDB's default 16 MiB max_allowed_packet (large parameters
    // travel as COM_STMT_SEND_LONG_DATA, so the multi-row upsert still fits).
    let mut data = generate(
        10,
        Sizes {
            issues: 100,
            comments: 0,
            reviews: 0,
            events: 0,
        },
    );
    for issue in data.issues.values_mut() {
        issue.body = Some("😀".repeat(65_536));
    }
    fake.with(|s| {
        s.repos.insert("velo/huge".into(), data.clone());
    });
    let dir = tempfile::tempdir().expect("tempdir");
    let run = fetch_once(&fake, &db, &["velo/huge"], &token_file(&dir), "info").await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    Mirror::load(&db, "velo/huge")
        .await
        .assert_same(&Mirror::expected(&data));
}

/// GitHub answers 422 for page numbers deep into a large list. The newest-first walk then
/// reads the older part oldest first by `since`, and the mirror still ends exact; the next
/// polls are 304s again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lists_deeper_than_githubs_page_limit_are_read_by_since() {
    let Some(db) = fresh_database("fetcher_deep").await else {
        return;
    };
    let fake = FakeGithub::start(TOKEN).await;
    let mut data = generate(
        12,
        Sizes {
            issues: 1200,
            comments: 2500,
            reviews: 50,
            events: 300,
        },
    );
    fake.with(|s| {
        s.repos.insert("velo/deep".into(), data.clone());
        s.list_page_limit = Some(5);
    });
    let dir = tempfile::tempdir().expect("tempdir");
    let token = token_file(&dir);
    let run = fetch_once(&fake, &db, &["velo/deep"], &token, "info").await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert!(
        run.stderr.contains("GitHub limits page numbers"),
        "{}",
        run.stderr
    );
    Mirror::load(&db, "velo/deep")
        .await
        .assert_same(&Mirror::expected(&data));
    let log = fake.log();
    let refused = log.iter().filter(|l| l.status == 422).count();
    assert_eq!(refused, 2, "issues and comments hit the limit once each");
    // 5 newest-first pages, then about one request per 99 items for the rest.
    let issues = count(&log, |p| is_list(p, "velo/deep", "issues"));
    assert!(
        issues <= 5 + 1 + (1200 - 500usize).div_ceil(99) + 1,
        "issues: {issues}"
    );

    fake.clear_log();
    let run = fetch_once(&fake, &db, &["velo/deep"], &token, "info").await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert!(
        fake.log().iter().all(|l| l.conditional && l.status == 304),
        "{:?}",
        fake.log()
    );

    // An old issue edited: page 1 shows it, one request.
    let newest = data
        .issues
        .values()
        .map(|i| i.updated_at)
        .max()
        .unwrap_or(0);
    let oldest = data
        .issues
        .values()
        .min_by_key(|i| i.updated_at)
        .map(|i| i.number)
        .expect("issues");
    if let Some(issue) = data.issues.get_mut(&oldest) {
        issue.title = "edited long after".into();
        issue.updated_at = newest + 600;
    }
    fake.with(|s| {
        s.repos.insert("velo/deep".into(), data.clone());
    });
    fake.clear_log();
    let run = fetch_once(&fake, &db, &["velo/deep"], &token, "info").await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    Mirror::load(&db, "velo/deep")
        .await
        .assert_same(&Mirror::expected(&data));
    assert_eq!(count(&fake.log(), |p| is_list(p, "velo/deep", "issues")), 1);
}
