//! What GitHub forgets, the mirror forgets too: the reconciliation sweep against the fake
//! GitHub and the real MariaDB (and influxd for the metrics).
//!
//! - Deleted comments, review comments, a review and an issue, and an issue transferred
//!   to another repository of the project: after one sweep both repositories equal the
//!   fake field by field, and the transform's points equal a full recompute.
//! - The sweep of an unchanged 2,000-issue repository costs at most 25 points and reads
//!   nothing again.
//! - An item deleted in the middle of a walk hides the next one from a newest-first walk
//!   (shown with the boundary check off); with it on, nothing stays hidden.
//! - SIGKILL three times during a sweep: every issue is either as it was or as GitHub has
//!   it after each kill, and the completed sweep leaves exact tables.

mod support;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use mysql_async::prelude::Queryable;
use support::fake_github::{
    FakeGithub, FakeIssue, FakeRepo, Logged, Mirror, Sizes, add_pr_reviews, generate,
};
use support::mysql::fresh_database;
use support::process::Run;

const TOKEN: &str = "ghp_SWEEPtoken0123456789secretVALUE";

fn fetcher(
    fake: &FakeGithub,
    db: &str,
    repos: &[&str],
    dir: &Path,
    env: &[(&str, &str)],
) -> Command {
    scheduled(fake, db, repos, dir, env, &["--once"])
}

/// `velodrome fetcher` with `schedule` (`--once`, or `--interval ...`).
fn scheduled(
    fake: &FakeGithub,
    db: &str,
    repos: &[&str],
    dir: &Path,
    env: &[(&str, &str)],
    schedule: &[&str],
) -> Command {
    let token = dir.join("token");
    std::fs::write(&token, format!("{TOKEN}\n")).expect("write token");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_velodrome"));
    cmd.arg("fetcher").args(schedule).args(["--mysql-url", db]);
    for repo in repos {
        cmd.args(["--repository", repo]);
    }
    cmd.arg("--token-file")
        .arg(&token)
        .args(["--github-url", &fake.url])
        .env("VELODROME_GITHUB_BACKOFF_MS", "20")
        .env("VELODROME_LOG", "info")
        .env_remove("RUST_LOG")
        .env_remove("VELODROME_RECONCILE_EVERY")
        .env_remove("VELODROME_BOUNDARY_CHECK")
        .envs(env.iter().copied());
    cmd
}

async fn fetch_once(
    fake: &FakeGithub,
    db: &str,
    repos: &[&str],
    dir: &Path,
    env: &[(&str, &str)],
) -> Run {
    let cmd = fetcher(fake, db, repos, dir, env);
    support::process::run_keeping(cmd, TOKEN).await
}

fn census(log: &[Logged]) -> Vec<&Logged> {
    log.iter()
        .filter(|l| {
            l.query
                .as_deref()
                .is_some_and(|q| q.starts_with("Reconcile"))
        })
        .collect()
}

/// REST reads of one issue (the issue, its comments, events, review comments, reviews).
fn per_issue(path: &str) -> bool {
    let segs: Vec<&str> = path
        .split('?')
        .next()
        .unwrap_or_default()
        .trim_matches('/')
        .split('/')
        .collect();
    segs.len() >= 5
        && segs[0] == "repos"
        && matches!(segs[3], "issues" | "pulls")
        && segs[4].parse::<i64>().is_ok()
}

const METRICS: &str = "\
comments:
  plugin: count
  args: ['--event=commented', '--log-author']
opened:
  plugin: count
  args: ['--event=opened']
open-issues:
  plugin: count
  args: ['--no-pull-requests', '--state=opened,!closed', '--percentiles=50']
reviewed:
  plugin: count
  args: ['--no-issues', '--event=reviewed']
first-response:
  plugin: duration
  args: ['--to=responded']
";
const MEASUREMENTS: [&str; 5] = [
    "comments",
    "opened",
    "open-issues",
    "reviewed",
    "first-response",
];

fn transform(
    db: &str,
    influx: &support::influx::InfluxServer,
    database: &str,
    repo: &str,
    metrics: &Path,
) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_velodrome"))
        .args([
            "transform",
            "--once",
            "--repository",
            repo,
            "--metrics-file",
        ])
        .arg(metrics)
        .args([
            "--mysql-url",
            db,
            "--influx-url",
            &influx.url,
            "--influx-database",
            database,
        ])
        .env("RUST_LOG", "info")
        .env_remove("VELODROME_TRANSFORM_BATCH")
        .output()
        .expect("run velodrome transform");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "transform failed:\n{stderr}");
    stderr
}

async fn snapshot(
    influx: &support::influx::InfluxServer,
    database: &str,
) -> Vec<(&'static str, Vec<(i64, Vec<String>)>)> {
    let mut out = Vec::new();
    for m in MEASUREMENTS {
        out.push((m, influx.points(database, m).await));
    }
    out
}

/// Ids of `repo`'s issue comments on `issue`.
fn comments_of(repo: &FakeRepo, issue: i64) -> Vec<i64> {
    repo.comments
        .values()
        .filter(|c| c.issue == issue)
        .map(|c| c.id)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_sweep_follows_deletions_and_a_transfer_and_the_metrics_follow() {
    let Some(db) = fresh_database("sweep_main").await else {
        return;
    };
    // Both repositories are rewritten from their first day: this needs the tsi1 index
    // support::influx starts (see start_with_index there).
    let Some(influx) = support::influx::start().await else {
        return;
    };
    let fake = FakeGithub::start(TOKEN).await;
    let (main, side) = ("velo/main", "velo/side");
    let mut a = generate(
        31,
        Sizes {
            issues: 2000,
            comments: 10_000,
            reviews: 300,
            events: 8000,
        },
    );
    add_pr_reviews(&mut a, 31, 1500);
    let mut b = generate(
        32,
        Sizes {
            issues: 150,
            comments: 600,
            reviews: 20,
            events: 600,
        },
    );
    add_pr_reviews(&mut b, 32, 60);
    // velo/side's history is younger than anything velo/main has: what arrives there by
    // transfer is older than its walks' marks, so only the sweep can bring it in.
    shift(&mut b, 60 * 86_400);
    fake.with(|s| {
        s.repos.insert(main.into(), a.clone());
        s.repos.insert(side.into(), b.clone());
        s.feed_cap = 3000;
    });
    let dir = tempfile::tempdir().expect("tempdir");

    // 1. Backfill both repositories; the sweep that follows a backfill finds nothing.
    let run = fetch_once(&fake, &db, &[main, side], dir.path(), &[]).await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert_eq!(
        run.stderr.matches("reconciliation sweep done").count(),
        2,
        "{}",
        run.stderr
    );
    for (name, data) in [(main, &a), (side, &b)] {
        Mirror::load_all(&db, name)
            .await
            .assert_same(&Mirror::expected_named(data, Some(name)));
    }

    // 2. The sweep of the unchanged 2,000-issue repository: at most 25 points, and not
    //    one issue read again (the polls before it are four 304s).
    fake.clear_log();
    let run = fetch_once(
        &fake,
        &db,
        &[main],
        dir.path(),
        &[("VELODROME_RECONCILE_EVERY", "0")],
    )
    .await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let log = fake.log();
    let pages = census(&log);
    let points: u64 = pages.iter().map(|l| l.points).sum();
    let issues = a.issues.values().filter(|i| !i.is_pr).count();
    let pulls = a.issues.len() - issues;
    eprintln!(
        "unchanged sweep of {} issues and pull requests: {} census queries, {points} GraphQL points",
        a.issues.len(),
        pages.len()
    );
    assert!(points <= 25, "{points} points");
    assert_eq!(pages.len(), issues.div_ceil(100) + pulls.div_ceil(100));
    assert!(pages.iter().all(|l| l.points == 1 && l.status == 200));
    let rest: Vec<&Logged> = log.iter().filter(|l| l.query.is_none()).collect();
    assert_eq!(rest.len(), 4, "{rest:?}");
    assert!(rest.iter().all(|l| l.status == 304), "{rest:?}");
    assert!(
        run.stderr
            .lines()
            .any(|l| l.contains("reconciliation sweep done")
                && l.contains("reread=0")
                && l.contains("removed=0")),
        "{}",
        run.stderr
    );

    // 3. The metrics as they are now.
    let metrics = dir.path().join("metrics.yaml");
    std::fs::write(&metrics, METRICS).expect("metrics file");
    for repo in [main, side] {
        transform(&db, &influx, "incremental", repo, &metrics);
    }

    // 4. GitHub forgets: five issue comments, two review comments and a review go, an
    //    issue is deleted with its events and comments, another moves to velo/side.
    let with = |n: i64| !comments_of(&a, n).is_empty() && a.events.values().any(|e| e.issue == n);
    let plain: Vec<i64> = a
        .issues
        .values()
        .filter(|i| !i.is_pr && with(i.number))
        .map(|i| i.number)
        .collect();
    let (deleted, moved) = (plain[10], plain[20]);
    let mut touched = BTreeSet::from([deleted, moved]);
    for n in plain.iter().skip(30).step_by(37).take(5) {
        let id = comments_of(&a, *n)[0];
        a.delete_comment(id);
        touched.insert(*n);
    }
    let review_comments: Vec<i64> = a
        .reviews
        .values()
        .filter(|c| !touched.contains(&c.issue))
        .map(|c| c.id)
        .step_by(50)
        .take(2)
        .collect();
    for id in review_comments {
        touched.insert(a.reviews[&id].issue);
        a.reviews.remove(&id);
    }
    let review = a
        .pr_reviews
        .values()
        .find(|r| r.state == "APPROVED" && !touched.contains(&r.issue))
        .map(|r| r.id)
        .expect("an approval");
    touched.insert(a.pr_reviews[&review].issue);
    a.pr_reviews.remove(&review);
    let at = a.issues.values().map(|i| i.updated_at).max().unwrap_or(0) + 600;
    let new_number = fake.with(|s| {
        s.repos.insert(main.into(), a.clone());
        s.delete_issue(main, deleted);
        s.transfer_issue(main, moved, side, at)
    });
    let (a, b) = fake.with(|s| (s.repos[main].clone(), s.repos[side].clone()));
    assert!(!a.issues.contains_key(&deleted) && !a.issues.contains_key(&moved));
    assert!(!comments_of(&b, new_number).is_empty());

    // 5. One sweep: both repositories equal the fake, field by field.
    fake.clear_log();
    let run = fetch_once(
        &fake,
        &db,
        &[main, side],
        dir.path(),
        &[("VELODROME_RECONCILE_EVERY", "0")],
    )
    .await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    for (name, data) in [(main, &a), (side, &b)] {
        Mirror::load_all(&db, name)
            .await
            .assert_same(&Mirror::expected_named(data, Some(name)));
    }
    let removed: Vec<&str> = run
        .stderr
        .lines()
        .filter(|l| l.contains("issue removed from the mirror"))
        .collect();
    assert_eq!(removed.len(), 2, "{}", run.stderr);
    assert!(
        removed
            .iter()
            .any(|l| l.contains(&format!("issue={deleted}")) && l.contains("deleted (HTTP 410")),
        "{removed:?}"
    );
    assert!(
        removed.iter().any(|l| l.contains(&format!("issue={moved}"))
            && l.contains(&format!("transferred to velo/side#{new_number}"))),
        "{removed:?}"
    );
    // Only the issues that changed were read again: the ones touched here, and the
    // transferred issue where it arrived.
    let reread: BTreeSet<i64> = fake
        .log()
        .iter()
        .filter(|l| per_issue(&l.path) && l.path.starts_with(&format!("/repos/{main}/")))
        .filter_map(|l| l.path.split('/').nth(5)?.split('?').next()?.parse().ok())
        .collect();
    assert_eq!(reread, touched, "{}", run.stderr);
    for what in ["comments", "events"] {
        assert!(
            fake.log().iter().any(|l| l
                .path
                .starts_with(&format!("/repos/{side}/issues/{new_number}/{what}"))),
            "the transferred issue's {what} were read where it arrived"
        );
    }

    // 6. The metrics follow: the incremental run equals a full recompute.
    let mut logs = String::new();
    for repo in [main, side] {
        logs += &transform(&db, &influx, "incremental", repo, &metrics);
        transform(&db, &influx, "full", repo, &metrics);
    }
    assert!(logs.contains("rewriting from that day"), "{logs}");
    let full = snapshot(&influx, "full").await;
    assert!(
        full.iter().all(|(_, p)| !p.is_empty()),
        "every metric has points"
    );
    let incremental = snapshot(&influx, "incremental").await;
    for ((name, want), (_, got)) in full.iter().zip(&incremental) {
        assert!(
            got == want,
            "{name}: {} points, a full recompute has {}",
            got.len(),
            want.len()
        );
    }
}

/// Moves every time of `repo` `by` seconds later.
fn shift(repo: &mut FakeRepo, by: i64) {
    for i in repo.issues.values_mut() {
        i.created_at += by;
        i.updated_at += by;
        i.closed_at = i.closed_at.map(|t| t + by);
    }
    for c in repo.comments.values_mut().chain(repo.reviews.values_mut()) {
        c.created_at += by;
        c.updated_at += by;
    }
    for e in repo.events.values_mut() {
        e.created_at += by;
    }
    for r in repo.pr_reviews.values_mut() {
        r.submitted_at += by;
    }
}

/// The numbers of `repo`'s issues in newest-update-first order, as the issues list walks.
fn newest_first(repo: &FakeRepo) -> Vec<i64> {
    let mut keys: Vec<(i64, i64)> = repo
        .issues
        .values()
        .map(|i| (i.updated_at, i.number))
        .collect();
    keys.sort_unstable();
    keys.into_iter().rev().map(|(_, n)| n).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deletion_mid_walk_hides_an_item_unless_the_boundary_is_checked() {
    let Some(db_off) = fresh_database("gap_unchecked").await else {
        return;
    };
    let Some(db_on) = fresh_database("gap_checked").await else {
        return;
    };
    let fake = FakeGithub::start(TOKEN).await;
    let repo = "velo/gap";
    let data = generate(
        33,
        Sizes {
            issues: 450,
            comments: 200,
            reviews: 10,
            events: 200,
        },
    );
    fake.with(|s| {
        s.repos.insert(repo.into(), data.clone());
    });
    let dir = tempfile::tempdir().expect("tempdir");
    let quiet = [("VELODROME_RECONCILE_EVERY", "off")];
    for db in [&db_off, &db_on] {
        let run = fetch_once(&fake, db, &[repo], dir.path(), &quiet).await;
        assert_eq!(run.code, Some(0), "{}", run.stderr);
    }

    // 250 issues are edited: the next poll walks three pages. Right after page 1 is
    // served, an issue of page 1 (already read) is deleted: page 2 then starts one item
    // later, and the item that led it slides onto page 1, behind the walk.
    let mut edited = data.clone();
    let top = data
        .issues
        .values()
        .map(|i| i.updated_at)
        .max()
        .unwrap_or(0);
    for (k, n) in (1..=250).enumerate() {
        let issue: &mut FakeIssue = edited.issues.get_mut(&n).expect("issue");
        issue.updated_at = top + 100 + k as i64;
        issue.title = format!("edited {k}");
    }
    let order = newest_first(&edited);
    let (victim, hidden) = (order[50], order[100]);
    let run_with = |db: String, env: Vec<(&'static str, &'static str)>| {
        let fake = &fake;
        let edited = edited.clone();
        let dir = dir.path().to_owned();
        async move {
            fake.with(|s| {
                s.repos.insert(repo.into(), edited);
                s.deleted.clear();
                s.matched = 0;
                s.faults.delete_after =
                    Some((format!("/repos/{repo}/issues?"), 1, repo.to_owned(), victim));
            });
            let run = fetch_once(fake, &db, &[repo], &dir, &env).await;
            assert_eq!(run.code, Some(0), "{}", run.stderr);
            run
        }
    };
    // After the walk, GitHub has every edited issue but the victim, and MySQL still has
    // the victim's row (only a sweep removes it).
    let mut expected = edited.clone();
    expected.issues.remove(&victim);
    let stored_titles = |m: &Mirror| -> Vec<(i64, String)> {
        m.issues
            .iter()
            .filter(|i| i.0 != victim)
            .map(|i| (i.0, i.1.clone()))
            .collect()
    };
    let want = stored_titles(&Mirror::expected(&expected));

    // Today's walk, without the check: the item that led page 2 is hidden (its edit is
    // not stored) and nothing else is missing.
    let run = run_with(
        db_off.clone(),
        vec![
            ("VELODROME_RECONCILE_EVERY", "off"),
            ("VELODROME_BOUNDARY_CHECK", "off"),
        ],
    )
    .await;
    let got = stored_titles(&Mirror::load(&db_off, repo).await);
    let wrong: Vec<i64> = got
        .iter()
        .zip(&want)
        .filter(|(g, w)| g != w)
        .map(|(g, _)| g.0)
        .collect();
    assert_eq!(wrong, vec![hidden], "{}", run.stderr);

    // With the check: the walk's pages are asked again by ETag, the shifted one shows the
    // hidden item, and it is stored. No other item is hidden.
    let run = run_with(db_on.clone(), vec![("VELODROME_RECONCILE_EVERY", "off")]).await;
    assert_eq!(
        stored_titles(&Mirror::load(&db_on, repo).await),
        want,
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .lines()
            .any(|l| l.contains("hid these items") && l.contains(&hidden.to_string())),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("unhidden=1"), "{}", run.stderr);
}

/// Whether issue `n` exists, and the ids of its comments (with their kind), events and
/// reviews.
type IssueState = (bool, Vec<(i64, bool)>, Vec<i64>, Vec<i64>);

/// Comment, event and review ids of issue `n` in MySQL, and whether its row exists.
async fn rows_of(pool: &mysql_async::Pool, repo: &str, n: i64) -> IssueState {
    let mut conn = pool.get_conn().await.expect("connect");
    let exists: Option<i64> = conn
        .exec_first(
            "SELECT id FROM issues WHERE repository = ? AND id = ?",
            (repo, n),
        )
        .await
        .expect("issue");
    let comments: Vec<(i64, bool)> = conn
        .exec(
            "SELECT id, pull_request FROM comments WHERE repository = ? AND issue_id = ? ORDER BY id, pull_request",
            (repo, n),
        )
        .await
        .expect("comments");
    let events: Vec<i64> = conn
        .exec(
            "SELECT id FROM issue_events WHERE repository = ? AND issue_id = ? ORDER BY id",
            (repo, n),
        )
        .await
        .expect("events");
    let reviews: Vec<i64> = conn
        .exec(
            "SELECT id FROM reviews WHERE repository = ? AND issue_id = ? ORDER BY id",
            (repo, n),
        )
        .await
        .expect("reviews");
    (exists.is_some(), comments, events, reviews)
}

/// Requests of a sweep: census pages and per-issue REST reads.
fn sweep_requests(fake: &FakeGithub) -> usize {
    fake.log()
        .iter()
        .filter(|l| {
            l.query
                .as_deref()
                .is_some_and(|q| q.starts_with("Reconcile"))
                || per_issue(&l.path)
        })
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_three_times_during_a_sweep_then_exact_tables() {
    let Some(reference_db) = fresh_database("sweep_kill_ref").await else {
        return;
    };
    let Some(db) = fresh_database("sweep_kill").await else {
        return;
    };
    let fake = FakeGithub::start(TOKEN).await;
    let repo = "velo/crashy";
    let mut data = generate(
        34,
        Sizes {
            issues: 400,
            comments: 2000,
            reviews: 80,
            events: 1500,
        },
    );
    add_pr_reviews(&mut data, 34, 200);
    fake.with(|s| {
        s.repos.insert(repo.into(), data.clone());
    });
    let dir = tempfile::tempdir().expect("tempdir");
    for db in [&reference_db, &db] {
        let run = fetch_once(&fake, db, &[repo], dir.path(), &[]).await;
        assert_eq!(run.code, Some(0), "{}", run.stderr);
    }
    let before = data.clone();

    // Many issues disagree: 30 lose a comment, 5 pull requests a review comment, 3 a
    // review, and 3 issues are deleted.
    let numbers: Vec<i64> = data.issues.keys().copied().collect();
    let mut touched = BTreeSet::new();
    let lose_one: Vec<i64> = numbers
        .iter()
        .step_by(7)
        .filter(|n| !comments_of(&data, **n).is_empty())
        .take(30)
        .copied()
        .collect();
    for n in &lose_one {
        let id = comments_of(&data, *n)[0];
        data.delete_comment(id);
        touched.insert(*n);
    }
    let ids: Vec<i64> = data.reviews.keys().copied().step_by(9).take(5).collect();
    for id in ids {
        touched.insert(data.reviews[&id].issue);
        data.reviews.remove(&id);
    }
    let ids: Vec<i64> = data
        .pr_reviews
        .values()
        .filter(|r| r.state != "PENDING")
        .map(|r| r.id)
        .step_by(40)
        .take(3)
        .collect();
    for id in ids {
        touched.insert(data.pr_reviews[&id].issue);
        data.pr_reviews.remove(&id);
    }
    let gone: Vec<i64> = numbers
        .iter()
        .copied()
        .filter(|n| n % 97 == 5)
        .take(3)
        .collect();
    fake.with(|s| {
        s.repos.insert(repo.into(), data.clone());
        for n in &gone {
            s.delete_issue(repo, *n);
        }
    });
    touched.extend(gone.iter().copied());
    let after = fake.with(|s| s.repos[repo].clone());
    let env = [
        ("VELODROME_RECONCILE_EVERY", "0"),
        ("VELODROME_RECONCILE_PAGE", "10"),
    ];

    // The uninterrupted sweep, to know its size.
    fake.clear_log();
    let run = fetch_once(&fake, &reference_db, &[repo], dir.path(), &env).await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let total = sweep_requests(&fake);
    assert!(total > 100, "{total} sweep requests");
    Mirror::load_all(&reference_db, repo)
        .await
        .assert_same(&Mirror::expected_named(&after, Some(repo)));

    // Three kills at deterministic "random" points: in the census, early in the re-reads,
    // and later in them. Each restart resumes the sweep where it stopped.
    let pool = mysql_async::Pool::new(db.as_str());
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    for (round, share) in [0.1, 0.35, 0.3].into_iter().enumerate() {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let target = ((total as f64 * share) as usize + (seed % 7) as usize).max(2);
        fake.clear_log();
        let mut child = fetcher(&fake, &db, &[repo], dir.path(), &env)
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("spawn velodrome");
        let started = Instant::now();
        while sweep_requests(&fake) < target && started.elapsed() < Duration::from_secs(120) {
            tokio::time::sleep(Duration::from_millis(1 + seed % 4)).await;
        }
        let still_running = child.try_wait().expect("poll child").is_none();
        child.kill().expect("SIGKILL");
        let status = tokio::task::spawn_blocking(move || child.wait())
            .await
            .expect("join")
            .expect("wait");
        assert!(
            still_running,
            "kill {round}: the sweep had already finished"
        );
        assert!(!status.success());
        // Every touched issue is as it was or as GitHub has it, never a mix.
        for n in &touched {
            let old = rows_of_fake(&before, *n);
            let new = rows_of_fake(&after, *n);
            let got = rows_of(&pool, repo, *n).await;
            assert!(
                got == old || got == new,
                "kill {round}, issue {n}: {got:?}\nold {old:?}\nnew {new:?}"
            );
        }
        eprintln!("kill {round} after {target} of {total} sweep requests");
    }

    let run = fetch_once(&fake, &db, &[repo], dir.path(), &env).await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    Mirror::load_all(&db, repo)
        .await
        .assert_same(&Mirror::expected_named(&after, Some(repo)));
    let mut conn = pool.get_conn().await.expect("connect");
    let left: Option<i64> = conn
        .query_first("SELECT COUNT(*) FROM sync_sweep_items")
        .await
        .expect("count");
    assert_eq!(left, Some(0));
    let phase: Option<String> = conn
        .exec_first(
            "SELECT phase FROM sync_sweeps WHERE repository = ?",
            (repo,),
        )
        .await
        .expect("phase");
    assert_eq!(phase.as_deref(), Some("done"));
    let logged: Option<i64> = conn
        .query_first("SELECT COUNT(DISTINCT issue_id) FROM sync_removals")
        .await
        .expect("removals");
    assert_eq!(
        logged,
        Some(touched.len() as i64),
        "one removals entry per changed issue"
    );
    drop(conn);
    pool.disconnect().await.ok();
}

/// What MySQL must hold for issue `n` when it mirrors `repo` exactly (see [`rows_of`]).
fn rows_of_fake(repo: &FakeRepo, n: i64) -> IssueState {
    let mut comments: Vec<(i64, bool)> = repo
        .comments
        .values()
        .filter(|c| c.issue == n)
        .map(|c| (c.id, false))
        .chain(
            repo.reviews
                .values()
                .filter(|c| c.issue == n)
                .map(|c| (c.id, true)),
        )
        .collect();
    comments.sort();
    let events = repo
        .events
        .values()
        .filter(|e| e.issue == n)
        .map(|e| e.id)
        .collect();
    let reviews = repo
        .pr_reviews
        .values()
        .filter(|r| r.issue == n && r.state != "PENDING")
        .map(|r| r.id)
        .collect();
    (repo.issues.contains_key(&n), comments, events, reviews)
}

/// The transform side alone: a comment removed and another arriving on the same day, both
/// before the watermark, leave every day's row count as it was, so counting rows cannot
/// see them; the entry the sweep logs with such a change makes the transform rewrite from
/// that day, and its points equal a full recompute again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removal_and_an_arrival_on_one_day_are_followed_through_the_log() {
    use support::history;
    let Some(fx) = history::fixture("removals_log").await else {
        return;
    };
    let Some(influx) = support::influx::start().await else {
        return;
    };
    let data = history::generate(5, 300, 4000);
    history::load(&fx.pool, &data).await;
    let metrics = history::write_metrics(fx.dir.path(), "m.yaml", METRICS);
    history::ok(&history::transform(
        &fx,
        Some((&influx, "incremental")),
        &metrics,
        &[],
    ));

    let gone = data
        .comments
        .iter()
        .filter(|c| !c.review)
        .nth(data.comments.len() / 3)
        .expect("a comment")
        .clone();
    let mut conn = fx.pool.get_conn().await.expect("connect");
    conn.exec_drop(
        "DELETE FROM comments WHERE repository = ? AND id = ? AND pull_request = FALSE",
        (history::REPO, gone.id),
    )
    .await
    .expect("delete");
    drop(conn);
    let arrival = history::Comment {
        id: 9_000_000,
        user: "grace",
        body: "a comment a walk had hidden".into(),
        ..gone.clone()
    };
    history::insert_comments(&fx.pool, &[arrival]).await;

    // Counting rows per day sees nothing: the points stay stale.
    let run = history::transform(
        &fx,
        Some((&influx, "incremental")),
        &metrics,
        &[("RUST_LOG", "info")],
    );
    history::ok(&run);
    assert!(!String::from_utf8_lossy(&run.stderr).contains("rewriting"));
    history::ok(&history::transform(
        &fx,
        Some((&influx, "full")),
        &metrics,
        &[],
    ));
    let full = snapshot(&influx, "full").await;
    assert_ne!(snapshot(&influx, "incremental").await, full, "stale points");

    // The sweep writes this entry in the transaction that makes such a change.
    let mut conn = fx.pool.get_conn().await.expect("connect");
    conn.exec_drop(
        "INSERT INTO sync_removals (repository, issue_id, reason, first_at, rows_removed, \
         rows_added, logged_at) VALUES (?, ?, 'read again: 1 comments fewer on GitHub', ?, 1, 1, \
         UTC_TIMESTAMP())",
        (history::REPO, gone.issue, history::at(gone.created)),
    )
    .await
    .expect("log");
    drop(conn);
    let run = history::transform(
        &fx,
        Some((&influx, "incremental")),
        &metrics,
        &[("RUST_LOG", "info")],
    );
    history::ok(&run);
    let log = String::from_utf8_lossy(&run.stderr);
    assert!(
        log.contains("rows were removed before the watermark"),
        "{log}"
    );
    assert_eq!(snapshot(&influx, "incremental").await, full);
    // Taken into account once: the next round writes nothing.
    let run = history::transform(
        &fx,
        Some((&influx, "incremental")),
        &metrics,
        &[("RUST_LOG", "info")],
    );
    let log = String::from_utf8_lossy(&run.stderr);
    assert!(
        !log.contains("rewriting") && log.contains("written=0"),
        "{log}"
    );
}

/// Where GitHub's two APIs disagree for good (here: a timeline counts an event REST never
/// lists), the sweep reads the issue whole once, and not again while neither side moves:
/// an unchanged repository stays free of REST requests.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lasting_disagreement_between_githubs_apis_is_read_once() {
    let Some(db) = fresh_database("sweep_apis").await else {
        return;
    };
    let fake = FakeGithub::start(TOKEN).await;
    let repo = "velo/apis";
    let data = generate(
        35,
        Sizes {
            issues: 120,
            comments: 300,
            reviews: 10,
            events: 400,
        },
    );
    let hidden = data
        .events
        .values()
        .find(|e| e.event == "labeled" && !comments_of(&data, e.issue).is_empty())
        .expect("an event")
        .clone();
    let comment = comments_of(&data, hidden.issue)[0];
    fake.with(|s| {
        s.repos.insert(repo.into(), data.clone());
        s.rest_hides.insert(hidden.id);
    });
    let dir = tempfile::tempdir().expect("tempdir");
    let run = fetch_once(&fake, &db, &[repo], dir.path(), &[]).await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert!(
        run.stderr.lines().any(|l| l.contains("issue read again")
            && l.contains(&format!("issue={}", hidden.issue))
            && l.contains("1 events missing")),
        "{}",
        run.stderr
    );
    for round in 0..2 {
        fake.clear_log();
        let run = fetch_once(
            &fake,
            &db,
            &[repo],
            dir.path(),
            &[("VELODROME_RECONCILE_EVERY", "0")],
        )
        .await;
        assert_eq!(run.code, Some(0), "{}", run.stderr);
        let log = fake.log();
        assert!(!census(&log).is_empty(), "round {round}: a sweep ran");
        assert!(
            log.iter().all(|l| !per_issue(&l.path)),
            "round {round}: {:?}",
            log.iter().map(|l| &l.path).collect::<Vec<_>>()
        );
        assert!(run.stderr.contains("reread=0"), "{}", run.stderr);
    }
    // Once GitHub changes the issue (a comment deleted), it is judged afresh.
    fake.with(|s| {
        if let Some(r) = s.repos.get_mut(repo) {
            r.delete_comment(comment);
        }
    });
    fake.clear_log();
    let run = fetch_once(
        &fake,
        &db,
        &[repo],
        dir.path(),
        &[("VELODROME_RECONCILE_EVERY", "0")],
    )
    .await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert!(
        fake.log().iter().any(|l| l
            .path
            .starts_with(&format!("/repos/{repo}/issues/{}", hidden.issue))),
        "{}",
        run.stderr
    );
}

/// A looping fetcher sweeps a slice per round and keeps polling between slices; the sweep
/// still ends exact.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_looping_fetcher_sweeps_in_slices_and_keeps_polling() {
    let Some(db) = fresh_database("sweep_slices").await else {
        return;
    };
    let fake = FakeGithub::start(TOKEN).await;
    let repo = "velo/sliced";
    let mut data = generate(
        36,
        Sizes {
            issues: 150,
            comments: 600,
            reviews: 20,
            events: 400,
        },
    );
    fake.with(|s| {
        s.repos.insert(repo.into(), data.clone());
    });
    let dir = tempfile::tempdir().expect("tempdir");
    let run = fetch_once(&fake, &db, &[repo], dir.path(), &[]).await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let numbers: Vec<i64> = data.issues.keys().copied().collect();
    let mut changed = 0;
    for n in numbers.iter().step_by(13) {
        if let Some(id) = comments_of(&data, *n).first().copied() {
            data.delete_comment(id);
            changed += 1;
        }
    }
    assert!(changed >= 5);
    fake.with(|s| {
        s.repos.insert(repo.into(), data.clone());
    });
    let mut looping = scheduled(
        &fake,
        &db,
        &[repo],
        dir.path(),
        &[
            ("VELODROME_RECONCILE_EVERY", "0"),
            ("VELODROME_RECONCILE_PAGE", "20"),
            ("VELODROME_SWEEP_SLICE_MS", "1"),
        ],
        &["--interval", "0"],
    );
    let mut child = support::process::Watched::spawn(&mut looping, "velodrome fetcher");
    child.wait_for_lines("reconciliation sweep done", 1).await;
    let log = child.log();
    drop(child);
    let before_done: &str = log
        .split("reconciliation sweep done")
        .next()
        .unwrap_or_default();
    let paused = before_done.matches("sweep paused").count();
    let rounds = before_done.matches("round done").count();
    assert!(paused >= 3, "{log}");
    assert!(
        rounds >= paused,
        "rounds kept polling between slices:\n{log}"
    );
    Mirror::load_all(&db, repo)
        .await
        .assert_same(&Mirror::expected_named(&data, Some(repo)));
}
