//! `velodrome transform` end to end: real MariaDB (one database per test), a private
//! influxd per test, the real binary.
//!
//! Spec section 8.1 (fetch order) and 8.4 (the derived example) are ported here; the
//! plugin cases of 8.2 are unit tests next to the engine (src/transform/engine.rs and
//! state.rs), 8.3's historical cases are covered by the ordering and resume tests below.

mod support;

use std::process::Command;

use mysql_async::Pool;
use mysql_async::prelude::Queryable;

// The rows, generator and runner shared with the other transform tests.
use support::history::*;
use support::influx::InfluxServer;

const EXAMPLE_METRICS: &str = "\
open:
  plugin: count
  args:
    - '--no-issues'
    - '--state=opened,!merged'
    - '--percentiles=50'
merge:
  plugin: count
  args:
    - '--no-issues'
    - '--event=merged'
contributions:
  plugin: count
  args:
    - '--no-issues'
    - '--event=opened'
    - '--comments=.*'
    - '--log-author'
";

async fn example_rows(pool: &Pool) {
    let t = |h: i64, m: i64| DAY + h * 3600 + m * 60;
    insert_issues(
        pool,
        REPO,
        &[
            Issue {
                id: 1,
                user: "alice",
                is_pr: true,
                created: t(10, 0),
            },
            Issue {
                id: 2,
                user: "bob",
                is_pr: true,
                created: t(10, 5),
            },
            Issue {
                id: 3,
                user: "carol",
                is_pr: false,
                created: t(10, 2),
            },
        ],
    )
    .await;
    insert_events(
        pool,
        &[
            Event {
                id: 100,
                issue: 1,
                event: "merged",
                label: None,
                actor: Some("m"),
                created: t(10, 30),
                repo: REPO,
            },
            Event {
                id: 101,
                issue: 2,
                event: "closed",
                label: None,
                actor: Some("bob"),
                created: t(10, 40),
                repo: REPO,
            },
        ],
    )
    .await;
    insert_comments(
        pool,
        &[Comment {
            id: 7,
            issue: 1,
            user: "dave",
            body: "nice".into(),
            created: t(10, 10),
            review: false,
            repo: REPO,
        }],
    )
    .await;
}

/// Spec 8.4: the derived example gives exactly its four `open` points, one `merge` point
/// and the contributions points, both in --dry-run output and in InfluxDB.
#[tokio::test(flavor = "multi_thread")]
async fn derived_example_8_4() {
    let Some(fx) = fixture("transform_example").await else {
        return;
    };
    example_rows(&fx.pool).await;
    let metrics = write_metrics(fx.dir.path(), "metrics.yaml", EXAMPLE_METRICS);
    let t = |h: i64, m: i64| (DAY + h * 3600 + m * 60) * S;
    let lines = ok(&transform(&fx, None, &metrics, &[]));
    let want = [
        format!(
            "contributions,repository=o/r event=1i,author=\"alice\" {}",
            t(10, 0)
        ),
        format!(
            "contributions,repository=o/r event=1i,author=\"bob\" {}",
            t(10, 5)
        ),
        format!(
            "contributions,repository=o/r comment=1i,author=\"dave\" {}",
            t(10, 10)
        ),
        format!("merge,repository=o/r event=1i {}", t(10, 30)),
        format!("open,repository=o/r count=1i,sum=0i,50%=0i {}", t(10, 0)),
        format!("open,repository=o/r count=2i,sum=5i,50%=0i {}", t(10, 5)),
        format!(
            "open,repository=o/r count=1i,sum=25i,50%=1500000000000i {}",
            t(10, 30)
        ),
        format!("open,repository=o/r count=0i,sum=0i,50%=0i {}", t(10, 40)),
    ];
    let mut got: Vec<&str> = lines.lines().collect();
    got.sort();
    let mut want_sorted: Vec<&str> = want.iter().map(String::as_str).collect();
    want_sorted.sort();
    assert_eq!(got, want_sorted);

    let Some(influx) = support::influx::start().await else {
        return;
    };
    ok(&transform(&fx, Some((&influx, "github")), &metrics, &[]));
    let open = influx.points("github", "open").await;
    let fields = |c: i64, s: i64, p: i64| {
        vec![
            format!("50%={p}"),
            format!("count={c}"),
            format!("repository={REPO}"),
            format!("sum={s}"),
        ]
    };
    assert_eq!(
        open,
        vec![
            (t(10, 0), fields(1, 0, 0)),
            (t(10, 5), fields(2, 5, 0)),
            (t(10, 30), fields(1, 25, 1_500_000_000_000)),
            (t(10, 40), fields(0, 0, 0)),
        ]
    );
    let merge = influx.points("github", "merge").await;
    assert_eq!(
        merge,
        vec![(
            t(10, 30),
            vec!["event=1".to_owned(), format!("repository={REPO}")]
        )]
    );
    let contributions = influx.points("github", "contributions").await;
    assert_eq!(contributions.len(), 3);
}

/// Spec 8.1 (TestFetchIssues, TestFetchEventsAndComments), ported to the one ordered
/// stream: only the repository's rows, in non-decreasing time order (the original test
/// never really checked the order), an event before a comment of the same second, and
/// a second run writes only what is after the watermark.
#[tokio::test(flavor = "multi_thread")]
async fn stream_order_and_watermark_8_1() {
    let Some(fx) = fixture("transform_order").await else {
        return;
    };
    let d = |n: i64| DAY + n * 86_400;
    // "zero" times of the original are 1990-01-01 here (DATETIME has no year 1).
    let zero = 631_152_000;
    insert_issues(
        &fx.pool,
        REPO,
        &[Issue {
            id: 1,
            user: "u",
            is_pr: true,
            created: zero - 10,
        }],
    )
    .await;
    insert_issues(
        &fx.pool,
        "notok/r",
        &[Issue {
            id: 1,
            user: "u",
            is_pr: true,
            created: zero - 10,
        }],
    )
    .await;
    let ev = |id, created, repo| Event {
        id,
        issue: 1,
        event: "closed",
        label: None,
        actor: None,
        created,
        repo,
    };
    insert_events(
        &fx.pool,
        &[
            ev(1, zero, REPO),
            ev(2, zero, REPO),
            ev(3, d(1), REPO),
            ev(4, d(3), REPO),
            ev(5, d(5), "notok/r"),
        ],
    )
    .await;
    let cm = |id, created, repo| Comment {
        id,
        issue: 1,
        user: "u",
        body: "x".into(),
        created,
        review: false,
        repo,
    };
    insert_comments(
        &fx.pool,
        &[
            cm(1, zero, REPO),
            cm(2, zero, REPO),
            cm(3, d(2), REPO),
            cm(4, d(4), REPO),
            cm(5, d(5), REPO),
            cm(6, d(5), "notok/r"),
        ],
    )
    .await;
    let metrics = write_metrics(
        fx.dir.path(),
        "m.yaml",
        "m:\n  plugin: count\n  args: [--event=closed, --comments=x]\n",
    );
    let lines = ok(&transform(&fx, None, &metrics, &[]));
    let parsed: Vec<(i64, &str)> = lines
        .lines()
        .map(|l| {
            let mut parts = l.rsplitn(2, ' ');
            let time: i64 = parts.next().and_then(|t| t.parse().ok()).expect("time");
            let kind = if l.contains("event=1i") {
                "event"
            } else {
                "comment"
            };
            (time, kind)
        })
        .collect();
    assert_eq!(parsed.len(), 4 + 5, "{lines}");
    assert!(
        parsed.windows(2).all(|w| w[0].0 < w[1].0),
        "strictly increasing: {parsed:?}"
    );
    // Same second: the two events, then the two comments.
    assert_eq!(
        parsed[..4].iter().map(|p| p.1).collect::<Vec<_>>(),
        ["event", "event", "comment", "comment"]
    );
    assert_eq!(parsed[0].0, zero * S);
    assert_eq!(parsed[3].0, zero * S + 3);
    assert!(lines.lines().all(|l| l.contains("repository=o/r")));

    let Some(influx) = support::influx::start().await else {
        return;
    };
    ok(&transform(&fx, Some((&influx, "github")), &metrics, &[]));
    assert_eq!(influx.points("github", "m").await.len(), 9);
    // A new row after the mark: one more point, the old ones untouched.
    insert_events(&fx.pool, &[ev(9, d(6), REPO)]).await;
    ok(&transform(&fx, Some((&influx, "github")), &metrics, &[]));
    let points = influx.points("github", "m").await;
    assert_eq!(points.len(), 10);
    assert_eq!(points[9].0, d(6) * S);
}

const KUBERNETES_METRICS: &str = "\
merge:
  plugin: count
  args:
    - '--no-issues'
    - '--event=merged'
contributions:
  plugin: count
  args:
    - '--no-issues'
    - '--event=opened'
    - '--comments=.*'
    - '--log-author'
bot-free-contributions:
  plugin: count
  args:
    - '--ignore-authors=k8s-merge-robot,k8s-reviewable,k8s-ci-robot'
    - '--no-issues'
    - '--event=opened'
    - '--comments=.*'
    - '--log-author'
open:
  plugin: count
  args:
    - '--no-issues'
    - '--state=opened,!merged'
    - '--percentiles=50'
needs-rebase:
  plugin: count
  args:
    - '--no-issues'
    - '--percentiles=50'
    - '--state=opened,labeled:needs-rebase'
lgtmed:
  plugin: count
  args:
    - '--no-issues'
    - '--percentiles=50'
    - '--state=opened,!labeled:needs-rebase,labeled:lgtm'
lgtmer:
  plugin: count
  args:
    - '--no-issues'
    - '--ignore-authors=k8s-merge-robot'
    - '--event=labeled:lgtm'
    - '--comments=(?m)^/lgtm$'
    - '--log-author'
";

const MEASUREMENTS: [&str; 7] = [
    "merge",
    "contributions",
    "bot-free-contributions",
    "open",
    "needs-rebase",
    "lgtmed",
    "lgtmer",
];

async fn sql_count(pool: &Pool, sql: &str) -> i64 {
    let mut conn = pool.get_conn().await.expect("connect");
    conn.query_first::<i64, _>(sql)
        .await
        .expect("count")
        .unwrap_or(0)
}

fn field(fields: &[String], name: &str) -> Option<i64> {
    fields
        .iter()
        .find_map(|f| f.strip_prefix(&format!("{name}=")))
        .and_then(|v| v.parse().ok())
}

/// Must show: on a generated repository (5,000 issues and pull requests, 50,000 events
/// and comments), the metrics agree with SQL over the same rows.
#[tokio::test(flavor = "multi_thread")]
async fn generated_repository_agrees_with_sql() {
    let Some(fx) = fixture("transform_generated").await else {
        return;
    };
    let Some(influx) = support::influx::start().await else {
        return;
    };
    let data = generate(42, 5_000, 50_000);
    load(&fx.pool, &data).await;
    let metrics = write_metrics(fx.dir.path(), "k.yaml", KUBERNETES_METRICS);
    ok(&transform(&fx, Some((&influx, "github")), &metrics, &[]));

    let merged_sql = sql_count(
        &fx.pool,
        "SELECT COUNT(*) FROM issue_events e JOIN issues i
           ON i.repository = e.repository AND i.id = e.issue_id
         WHERE e.repository = 'o/r' AND e.event = 'merged' AND i.is_pr",
    )
    .await;
    let merge = influx.points("github", "merge").await;
    let merged_points: i64 = merge.iter().filter_map(|(_, f)| field(f, "event")).sum();
    assert!(merged_sql > 100, "the generator merges pull requests");
    assert_eq!(merged_points, merged_sql);
    let same_second = merge
        .windows(2)
        .filter(|w| w[0].0 / S == w[1].0 / S)
        .count();
    assert!(same_second > 0, "some merges share a second");

    // `contributions` credits people, so the default `bots:` leave the two robots of the
    // generated data out, as `--ignore-authors` does for `bot-free-contributions`.
    let prs = sql_count(
        &fx.pool,
        "SELECT COUNT(*) FROM issues WHERE repository = 'o/r' AND is_pr
           AND user NOT IN ('k8s-ci-robot', 'k8s-merge-robot')",
    )
    .await;
    let contributions = influx.points("github", "contributions").await;
    let opened: i64 = contributions
        .iter()
        .filter_map(|(_, f)| field(f, "event"))
        .sum();
    assert_eq!(opened, prs, "every pull request by a person once");
    let pr_comments = sql_count(
        &fx.pool,
        "SELECT COUNT(*) FROM comments c JOIN issues i
           ON i.repository = c.repository AND i.id = c.issue_id
         WHERE c.repository = 'o/r' AND i.is_pr
           AND i.user NOT IN ('k8s-ci-robot', 'k8s-merge-robot')
           AND c.user NOT IN ('k8s-ci-robot', 'k8s-merge-robot')",
    )
    .await;
    let comments: i64 = contributions
        .iter()
        .filter_map(|(_, f)| field(f, "comment"))
        .sum();
    assert_eq!(comments, pr_comments);
    let bot_free = influx.points("github", "bot-free-contributions").await;
    let bot_free_opened: i64 = bot_free.iter().filter_map(|(_, f)| field(f, "event")).sum();
    let human_prs = sql_count(
        &fx.pool,
        "SELECT COUNT(*) FROM issues WHERE repository = 'o/r' AND is_pr
           AND user NOT IN ('k8s-merge-robot','k8s-reviewable','k8s-ci-robot')",
    )
    .await;
    assert_eq!(bot_free_opened, human_prs);

    let open_sql = sql_count(
        &fx.pool,
        "SELECT COUNT(*) FROM issues i WHERE i.repository = 'o/r' AND i.is_pr
           AND NOT EXISTS (SELECT 1 FROM issue_events e WHERE e.repository = i.repository
                           AND e.issue_id = i.id AND e.event = 'merged')
           AND COALESCE((SELECT e.event FROM issue_events e WHERE e.repository = i.repository
                          AND e.issue_id = i.id AND e.event IN ('closed', 'reopened')
                        ORDER BY e.event_created_at DESC, e.id DESC LIMIT 1), 'reopened')
               = 'reopened'",
    )
    .await;
    let open = influx.points("github", "open").await;
    let last = open.last().expect("open points");
    println!(
        "merged events on PRs: SQL {merged_sql}, points {merged_points} ({same_second} in a second shared with the previous merge); PRs: SQL {prs}, opened points {opened}; PR comments: SQL {pr_comments}, points {comments}; human PRs {human_prs}, bot-free opened points {bot_free_opened}; open and not merged: SQL {open_sql}, last open point {:?}",
        field(&last.1, "count")
    );
    assert_eq!(field(&last.1, "count"), Some(open_sql));
    assert!(
        open.windows(2).all(|w| w[0].0 < w[1].0),
        "unique timestamps"
    );
}

async fn snapshot(influx: &InfluxServer, db: &str) -> Vec<(String, Vec<(i64, Vec<String>)>)> {
    let mut out = Vec::new();
    for m in MEASUREMENTS {
        out.push((m.to_owned(), influx.points(db, m).await));
    }
    out
}

/// Must show: running twice gives the same points; stopping half-way and resuming gives
/// the same points as one uninterrupted run; adding rows (including late ones with older
/// timestamps) and running again gives the same points as a full recompute; a changed
/// definition recomputes that metric only.
#[tokio::test(flavor = "multi_thread")]
async fn reruns_resumes_and_late_rows_match_a_full_recompute() {
    let Some(fx) = fixture("transform_rerun").await else {
        return;
    };
    let Some(influx) = support::influx::start().await else {
        return;
    };
    let data = generate(7, 1_500, 15_000);
    let metrics = write_metrics(fx.dir.path(), "k.yaml", KUBERNETES_METRICS);
    let small_batches = [("VELODROME_TRANSFORM_BATCH", "500")];

    // Part of the history first: issues, and rows before a cut, minus some held back.
    let cut = DAY + 400 * 60;
    let (early_events, late_events): (Vec<Event>, Vec<Event>) = data
        .events
        .iter()
        .cloned()
        .partition(|e| e.created < cut && e.id % 7 != 0);
    let (early_comments, late_comments): (Vec<Comment>, Vec<Comment>) = data
        .comments
        .iter()
        .cloned()
        .partition(|c| c.created < cut && c.id % 5 != 0);
    insert_issues(&fx.pool, REPO, &data.issues).await;
    insert_events(&fx.pool, &early_events).await;
    insert_comments(&fx.pool, &early_comments).await;
    ok(&transform(
        &fx,
        Some((&influx, "incremental")),
        &metrics,
        &small_batches,
    ));
    // Then the rest: later rows and rows older than the watermark (a backfill).
    insert_events(&fx.pool, &late_events).await;
    insert_comments(&fx.pool, &late_comments).await;
    let late_run = transform(
        &fx,
        Some((&influx, "incremental")),
        &metrics,
        &[("VELODROME_TRANSFORM_BATCH", "500"), ("RUST_LOG", "info")],
    );
    ok(&late_run);
    let log = String::from_utf8_lossy(&late_run.stderr);
    assert!(log.contains("rewriting from that day"), "{log}");

    // One uninterrupted full run into another database.
    ok(&transform(&fx, Some((&influx, "full")), &metrics, &[]));
    let full = snapshot(&influx, "full").await;
    assert!(
        full.iter().all(|(_, p)| !p.is_empty()),
        "every metric has points"
    );
    assert_eq!(
        snapshot(&influx, "incremental").await,
        full,
        "late rows == recompute"
    );

    // Twice: identical, and nothing recomputed or rewritten (the watermarks hold).
    let again = transform(
        &fx,
        Some((&influx, "full")),
        &metrics,
        &[("RUST_LOG", "info")],
    );
    ok(&again);
    let log = String::from_utf8_lossy(&again.stderr);
    assert!(!log.contains("recomputing"), "{log}");
    assert!(log.contains("written=0"), "{log}");
    assert_eq!(snapshot(&influx, "full").await, full, "second run");

    // Stopped half-way (after 3 batches of 500 points), then resumed.
    let crash = transform(
        &fx,
        Some((&influx, "resumed")),
        &metrics,
        &[
            ("VELODROME_TRANSFORM_BATCH", "500"),
            ("VELODROME_TRANSFORM_FAIL_AFTER_BATCHES", "3"),
        ],
    );
    assert!(!crash.status.success(), "the simulated crash stops the run");
    let partial: usize = snapshot(&influx, "resumed")
        .await
        .iter()
        .map(|(_, p)| p.len())
        .sum();
    let total: usize = full.iter().map(|(_, p)| p.len()).sum();
    assert!(
        partial > 0 && partial < total,
        "{partial} of {total} points before the crash"
    );
    ok(&transform(
        &fx,
        Some((&influx, "resumed")),
        &metrics,
        &small_batches,
    ));
    assert_eq!(
        snapshot(&influx, "resumed").await,
        full,
        "resumed == uninterrupted"
    );

    // SIGTERM half-way: the batch being written is finished with its watermarks, the
    // process exits 0, and the restart continues from the marks (no recompute).
    let mut child = Command::new(env!("CARGO_BIN_EXE_velodrome"))
        .arg("transform")
        .args(["--repository", REPO, "--metrics-file"])
        .arg(&metrics)
        .args(["--mysql-url", &fx.url, "--influx-url", &influx.url])
        .args(["--influx-database", "termed", "--once"])
        .env("VELODROME_TRANSFORM_BATCH", "100")
        .env("VELODROME_PROGRESS_EVERY_MS", "1")
        .env("RUST_LOG", "info")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn velodrome");
    let measurement = full[0].0.clone();
    let started = std::time::Instant::now();
    while influx.points("termed", &measurement).await.is_empty()
        && started.elapsed() < std::time::Duration::from_secs(60)
    {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    support::terminate(child.id());
    let stderr = child.stderr.take().expect("stderr");
    let output = tokio::task::spawn_blocking(move || {
        let status = child.wait().expect("wait");
        (
            status,
            std::io::read_to_string(stderr).expect("read stderr"),
        )
    })
    .await
    .expect("join");
    assert!(output.0.success(), "exit {:?}: {}", output.0, output.1);
    assert!(
        output
            .1
            .contains("written points and their watermarks are stored"),
        "{}",
        output.1
    );
    let partial: usize = snapshot(&influx, "termed")
        .await
        .iter()
        .map(|(_, p)| p.len())
        .sum();
    assert!(
        partial > 0 && partial < total,
        "{partial} of {total} points when stopped"
    );
    let resumed = transform(
        &fx,
        Some((&influx, "termed")),
        &metrics,
        &[("RUST_LOG", "info")],
    );
    let log = ok(&resumed);
    let log = log + &String::from_utf8_lossy(&resumed.stderr);
    assert!(!log.contains("recomputing"), "{log}");
    assert_eq!(
        snapshot(&influx, "termed").await,
        full,
        "stopped + resumed == uninterrupted"
    );

    // A changed definition recomputes that metric only: a stray point survives in the
    // unchanged metric and disappears from the changed one.
    let stray = |m: &str| format!("{m},repository=o/r event=99i 1000000000");
    for m in ["merge", "open"] {
        write_line(&influx, "full", &stray(m)).await;
    }
    let changed = KUBERNETES_METRICS.replace(
        "    - '--state=opened,!merged'\n    - '--percentiles=50'\n",
        "    - '--state=opened,!merged'\n    - '--percentiles=50,90'\n",
    );
    assert_ne!(changed, KUBERNETES_METRICS);
    let changed_metrics = write_metrics(fx.dir.path(), "k2.yaml", &changed);
    let rerun = transform(
        &fx,
        Some((&influx, "full")),
        &changed_metrics,
        &[("RUST_LOG", "info")],
    );
    ok(&rerun);
    let log = String::from_utf8_lossy(&rerun.stderr);
    assert_eq!(log.matches("recomputing").count(), 1, "{log}");
    assert!(
        log.lines()
            .any(|l| l.contains("definition changed; recomputing") && l.contains("metric=open")),
        "{log}"
    );
    let merge = influx.points("full", "merge").await;
    assert_eq!(merge.first().map(|p| p.0), Some(S), "merge kept its points");
    let open = influx.points("full", "open").await;
    assert!(open.iter().all(|(t, _)| *t != S), "open was recomputed");
    assert!(open.iter().all(|(_, f)| field(f, "90%").is_some()));
    assert_eq!(open.len(), full[3].1.len());
}

async fn write_line(influx: &InfluxServer, db: &str, line: &str) {
    let text = reqwest::Client::new()
        .post(format!("{}/write", influx.url))
        .query(&[("db", db), ("precision", "ns")])
        .body(line.to_owned())
        .send()
        .await
        .expect("write")
        .text()
        .await
        .expect("answer");
    assert!(!text.contains("error"), "{text}");
}

/// Bad metric arguments stop the run before anything is read or written, with exit 2 and
/// the metric and argument named.
#[tokio::test(flavor = "multi_thread")]
async fn bad_metrics_exit_2_before_running() {
    let dir = tempfile::tempdir().expect("dir");
    let metrics = write_metrics(
        dir.path(),
        "bad.yaml",
        "merge:\n  plugin: count\n  args: ['--no-issues', '--evnt=merged']\nopen:\n  plugin: count\n  args: ['--state=opened,', '--percentiles=50']\n",
    );
    let output = Command::new(env!("CARGO_BIN_EXE_velodrome"))
        .args(["transform", "--repository", REPO, "--metrics-file"])
        .arg(&metrics)
        .args([
            "--mysql-url",
            "mysql://nobody@127.0.0.1:1/none",
            "--influx-database",
            "x",
            "--once",
        ])
        .output()
        .expect("run");
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("metric \"merge\" argument 2 (\"--evnt=merged\"): unknown flag --evnt for plugin count; did you mean --event?"), "{stderr}");
    assert!(stderr.contains("metric \"open\" argument 1"), "{stderr}");
}

/// The project mode: one process, every repository of the plan, each with its metrics.
#[tokio::test(flavor = "multi_thread")]
async fn plan_runs_every_repository() {
    let Some(fx) = fixture("transform_plan").await else {
        return;
    };
    example_rows(&fx.pool).await;
    insert_issues(
        &fx.pool,
        "other/repo",
        &[Issue {
            id: 1,
            user: "zed",
            is_pr: true,
            created: DAY,
        }],
    )
    .await;
    let plan = write_metrics(
        fx.dir.path(),
        "plan.yaml",
        "project: demo\nrepositories:\n  O/R:\n    merge:\n      plugin: count\n      args: ['--event=merged']\n  other/repo:\n    prs:\n      plugin: count\n      args: ['--event=opened', '--no-issues']\n",
    );
    let output = Command::new(env!("CARGO_BIN_EXE_velodrome"))
        .args(["transform", "--plan"])
        .arg(&plan)
        .args([
            "--mysql-url",
            &fx.url,
            "--influx-database",
            "x",
            "--once",
            "--dry-run",
        ])
        .output()
        .expect("run");
    let lines = ok(&output);
    let mut got: Vec<&str> = lines.lines().collect();
    got.sort();
    assert_eq!(
        got,
        vec![
            format!(
                "merge,repository=o/r event=1i {}",
                (DAY + 10 * 3600 + 30 * 60) * S
            ),
            format!("prs,repository=other/repo event=1i {}", DAY * S),
        ]
    );
    let bad = write_metrics(fx.dir.path(), "bad-plan.yaml", "project: demo\nrepos: {}\n");
    let output = Command::new(env!("CARGO_BIN_EXE_velodrome"))
        .args(["transform", "--plan"])
        .arg(&bad)
        .args(["--mysql-url", &fx.url, "--influx-database", "x", "--once"])
        .output()
        .expect("run");
    assert_eq!(output.status.code(), Some(2));
}

/// The remaining legacy kubernetes metrics, for the scale run (nine in all).
const MORE_KUBERNETES_METRICS: &str = "\
approved:
  plugin: count
  args:
    - '--no-issues'
    - '--percentiles=50'
    - '--state=opened,!labeled:needs-rebase,labeled:approved'
approver:
  plugin: count
  args:
    - '--no-issues'
    - '--ignore-authors=k8s-merge-robot'
    - '--event=labeled:approved'
    - '--comments=(?m)^/approve$'
    - '--log-author'
testthis:
  plugin: count
  args:
    - '--no-issues'
    - '--ignore-authors=k8s-merge-robot,k8s-ci-robot'
    - '--comments=(?m)^@k8s-bot.*test this'
";

/// Not a test but a measurement, run by hand: `cargo test -p velodrome --test transform
/// -- --ignored --nocapture scale`. 100,000 issues and 1,000,000 events and comments in
/// MariaDB, the legacy kubernetes metrics, one full run into influxd; prints the wall time
/// and the peak memory of the velodrome process (GNU time). Nothing is asserted on time.
#[tokio::test(flavor = "multi_thread")]
#[ignore = "measurement, run by hand"]
async fn scale_one_million_events() {
    let Some(fx) = fixture("transform_scale").await else {
        return;
    };
    let Some(influx) = support::influx::start().await else {
        return;
    };
    let started = std::time::Instant::now();
    let data = generate(1, 100_000, 1_000_000);
    load(&fx.pool, &data).await;
    println!(
        "loaded {} issues, {} events, {} comments in {:.1} s",
        data.issues.len(),
        data.events.len(),
        data.comments.len(),
        started.elapsed().as_secs_f64()
    );
    let metrics = write_metrics(
        fx.dir.path(),
        "all.yaml",
        &format!("{KUBERNETES_METRICS}{MORE_KUBERNETES_METRICS}"),
    );
    for (label, dry) in [
        ("dry-run (MariaDB -> stdout)", true),
        ("full run (MariaDB -> influxd)", false),
    ] {
        let mut command = Command::new("/usr/bin/time");
        command
            .args(["-f", "TIME %e s wall, %U s user, %S s sys, %M KiB peak RSS"])
            .arg(env!("CARGO_BIN_EXE_velodrome"))
            .args(["transform", "--repository", REPO, "--metrics-file"])
            .arg(&metrics)
            .args(["--mysql-url", &fx.url, "--once"]);
        if dry {
            command.args(["--influx-database", "x", "--dry-run"]);
        } else {
            command.args(["--influx-url", &influx.url, "--influx-database", "scale"]);
        }
        let output = command.output().expect("run");
        let stderr = String::from_utf8_lossy(&output.stderr);
        let summary = stderr
            .lines()
            .filter(|l| l.starts_with("TIME") || l.contains("round done"))
            .collect::<Vec<_>>();
        println!(
            "{label}: status {:?}, {} bytes of stdout; {summary:?}",
            output.status,
            output.stdout.len()
        );
    }
}

/// A long-running process keeps its state between rounds and reads only rows after its
/// mark, including rows of the mark's own second; the points equal a full recompute.
#[tokio::test(flavor = "multi_thread")]
async fn interval_rounds_read_only_new_rows() {
    let Some(fx) = fixture("transform_interval").await else {
        return;
    };
    let Some(influx) = support::influx::start().await else {
        return;
    };
    let data = generate(11, 300, 3_000);
    load(&fx.pool, &data).await;
    let metrics = write_metrics(fx.dir.path(), "k.yaml", KUBERNETES_METRICS);
    let mut child = support::process::Watched::spawn(
        Command::new(env!("CARGO_BIN_EXE_velodrome"))
            .args(["transform", "--repository", REPO, "--metrics-file"])
            .arg(&metrics)
            .args(["--mysql-url", &fx.url, "--influx-url", &influx.url])
            .args(["--influx-database", "live", "--interval", "1s"])
            .args(["--listen", "127.0.0.1:0"])
            .env("RUST_LOG", "info"),
        "velodrome transform",
    );
    let addr = child.listening_addr().await;
    // The first round is complete when it says so; then add rows at and after the last
    // second of history.
    const DONE: &str = "transform round done";
    child.wait_for_lines(DONE, 1).await;
    let first: usize = snapshot(&influx, "live")
        .await
        .iter()
        .map(|(_, p)| p.len())
        .sum();
    assert!(first > 0, "first round wrote points");
    let last = data
        .events
        .iter()
        .map(|e| e.created)
        .chain(data.comments.iter().map(|c| c.created))
        .max()
        .expect("rows");
    let pr = data
        .issues
        .iter()
        .find(|i| i.is_pr)
        .expect("a pull request")
        .id;
    insert_events(
        &fx.pool,
        &[Event {
            id: 9_000_001,
            issue: pr,
            event: "labeled",
            label: Some("lgtm"),
            actor: Some("alice"),
            created: last,
            repo: REPO,
        }],
    )
    .await;
    insert_comments(
        &fx.pool,
        &[
            Comment {
                id: 9_000_002,
                issue: pr,
                user: "bob",
                body: "/lgtm".into(),
                created: last,
                review: false,
                repo: REPO,
            },
            Comment {
                id: 9_000_002,
                issue: pr,
                user: "carol",
                body: "/lgtm".into(),
                created: last,
                review: true,
                repo: REPO,
            },
            Comment {
                id: 9_000_003,
                issue: pr,
                user: "dave",
                body: "/lgtm".into(),
                created: last + 1,
                review: false,
                repo: REPO,
            },
        ],
    )
    .await;
    // A round that starts after the insert has read the new rows.
    let rounds = child.count_lines(DONE);
    child.wait_for_lines(DONE, rounds + 2).await;
    let after: usize = snapshot(&influx, "live")
        .await
        .iter()
        .map(|(_, p)| p.len())
        .sum();
    // The probes of the rendered Deployment, and Prometheus' view.
    let get = |path: &str| {
        let url = format!("http://{addr}{path}");
        async move {
            let response = reqwest::Client::new().get(url).send().await.expect("GET");
            (
                response.status().as_u16(),
                response.text().await.expect("body"),
            )
        }
    };
    assert_eq!(get("/healthz").await, (200, "ok\n".to_owned()));
    let (status, metrics_text) = get("/metrics").await;
    assert_eq!(status, 200);
    assert!(
        metrics_text.contains("velodrome_transform_rounds_total{repository=\"o/r\",result=\"ok\"}"),
        "{metrics_text}"
    );
    assert_eq!(get("/nope").await.0, 404);
    support::promtool::check_metrics(&metrics_text);
    drop(child);
    assert!(
        after >= first + 8,
        "new rows were picked up ({first} -> {after})"
    );
    ok(&transform(&fx, Some((&influx, "full")), &metrics, &[]));
    assert_eq!(
        snapshot(&influx, "live").await,
        snapshot(&influx, "full").await
    );
}

/// Spec 8.3, TestMerged (historical): with the last stored point at D15, a run over
/// something@D5, merged@D10, merged@D15, merged@D20, something@D25, merged@D30 adds exactly
/// the merges at D20 and D30. The mark is ours (the stored watermark) instead of the
/// newest point in InfluxDB; the earlier points stay as they were.
#[tokio::test(flavor = "multi_thread")]
async fn resume_after_the_last_stored_point_8_3() {
    let Some(fx) = fixture("transform_merged").await else {
        return;
    };
    let Some(influx) = support::influx::start().await else {
        return;
    };
    let d = |n: i64| DAY + (n - 1) * 86_400;
    insert_issues(
        &fx.pool,
        REPO,
        &[Issue {
            id: 1,
            user: "u",
            is_pr: true,
            created: d(1),
        }],
    )
    .await;
    let ev = |id: i64, day: i64, event: &'static str| Event {
        id,
        issue: 1,
        event,
        label: None,
        actor: None,
        created: d(day),
        repo: REPO,
    };
    // "something" is an event no metric reads.
    insert_events(
        &fx.pool,
        &[
            ev(1, 5, "labeled"),
            ev(2, 10, "merged"),
            ev(3, 15, "merged"),
        ],
    )
    .await;
    let metrics = write_metrics(
        fx.dir.path(),
        "m.yaml",
        "merged:\n  plugin: count\n  args: ['--event=merged']\n",
    );
    ok(&transform(&fx, Some((&influx, "github")), &metrics, &[]));
    let before = influx.points("github", "merged").await;
    assert_eq!(
        before.iter().map(|p| p.0).collect::<Vec<_>>(),
        vec![d(10) * S, d(15) * S]
    );
    insert_events(
        &fx.pool,
        &[
            ev(4, 20, "merged"),
            ev(5, 25, "labeled"),
            ev(6, 30, "merged"),
        ],
    )
    .await;
    let run = transform(
        &fx,
        Some((&influx, "github")),
        &metrics,
        &[("RUST_LOG", "info")],
    );
    ok(&run);
    assert!(String::from_utf8_lossy(&run.stderr).contains("written=2"));
    let after = influx.points("github", "merged").await;
    assert_eq!(
        after.iter().map(|p| p.0).collect::<Vec<_>>(),
        vec![d(10) * S, d(15) * S, d(20) * S, d(30) * S]
    );

    // A late merge (older than the mark, D30) on day 25: only the points from day 25 on
    // are deleted and rewritten; a marker point on day 12 shows older ones stay in place.
    write_line(
        &influx,
        "github",
        &format!("merged,repository=o/r event=7i {}", d(12) * S),
    )
    .await;
    insert_events(&fx.pool, &[ev(7, 25, "merged")]).await;
    let run = transform(
        &fx,
        Some((&influx, "github")),
        &metrics,
        &[("RUST_LOG", "info")],
    );
    ok(&run);
    let log = String::from_utf8_lossy(&run.stderr);
    assert!(log.contains("rewriting from that day"), "{log}");
    assert!(log.contains(&format!("day={}", d(25))), "{log}");
    let late = influx.points("github", "merged").await;
    assert_eq!(
        late.iter().map(|p| p.0).collect::<Vec<_>>(),
        vec![
            d(10) * S,
            d(12) * S,
            d(15) * S,
            d(20) * S,
            d(25) * S,
            d(30) * S
        ]
    );
}
