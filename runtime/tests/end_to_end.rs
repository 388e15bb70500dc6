//! The whole runtime on one machine: a fake GitHub serves a small repository, the fetcher
//! mirrors it into MariaDB, the transform writes the bundled config's Kubernetes metrics
//! into influxd, the token counter writes its points; then every InfluxDB query of every
//! dashboard velogen renders for the bundled config runs and returns a series, and the
//! numbers agree with SQL over the mirror.

mod support;

use std::path::Path;
use std::process::{Command, Output};

use mysql_async::prelude::Queryable;
use serde_json::Value;
use support::fake_github::{
    FakeComment, FakeEvent, FakeGithub, FakeIssue, FakeRepo, FakeReview, Sizes, add_pr_reviews,
    generate,
};
use support::fake_tokens::{Account, FakeTokens, Limit};
use support::influx::InfluxServer;

const TOKEN: &str = "ghp_E2Etoken0123456789secretVALUE";
const REPO: &str = "velo/e2e";

async fn run(mut cmd: Command) -> Output {
    cmd.env("VELODROME_LOG", "info")
        .env("VELODROME_GITHUB_BACKOFF_MS", "20")
        .env_remove("RUST_LOG")
        .env_remove("VELODROME_INFLUX_USER")
        .env_remove("VELODROME_INFLUX_PASSWORD");
    let out = tokio::task::spawn_blocking(move || cmd.output())
        .await
        .expect("join")
        .expect("run velodrome");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{:?} failed:\n{stderr}", out.status);
    assert!(
        !stderr.contains(TOKEN) && !String::from_utf8_lossy(&out.stdout).contains(TOKEN),
        "a token leaked"
    );
    out
}

fn velodrome(mode: &str) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_velodrome"));
    cmd.arg(mode).arg("--once");
    cmd
}

fn field(point: &[String], name: &str) -> Option<i64> {
    point
        .iter()
        .find_map(|f| f.strip_prefix(&format!("{name}=")))
        .and_then(|v| v.parse().ok())
}

/// Adds, after the generated history, the lives of a few items that every velocity panel
/// is about: a Prow pull request through lgtm, approval and merge (a bot comments first),
/// one closed without merge, one approved and waiting, one waiting for anyone, and issues
/// answered, closed, or still waiting.
fn add_velocity_story(repo: &mut FakeRepo) {
    let start = repo
        .events
        .values()
        .map(|e| e.created_at)
        .chain(repo.comments.values().map(|c| c.created_at))
        .chain(repo.issues.values().map(|i| i.updated_at))
        .max()
        .unwrap_or(0)
        + 3_600;
    let mut event_id = repo.events.keys().max().copied().unwrap_or(0) + 1_000;
    let mut comment_id = 3_000_000;
    let number = repo.issues.keys().max().copied().unwrap_or(0);
    // (number offset, author, is_pr, state at the end)
    let items = [
        (1, "alice", true, "closed"),
        (2, "carol", true, "closed"),
        (3, "dave", true, "open"),
        (4, "erin", true, "open"),
        (5, "frank", false, "closed"),
        (6, "bob", false, "open"),
    ];
    for (offset, user, is_pr, state) in items {
        let n = number + offset;
        repo.issues.insert(
            n,
            FakeIssue {
                number: n,
                title: format!("velocity story {offset}"),
                body: None,
                user: Some(user.into()),
                state: state.into(),
                comments: 0,
                is_pr,
                labels: Vec::new(),
                assignees: Vec::new(),
                created_at: start + offset * 60,
                updated_at: start + offset * 60,
                closed_at: None,
            },
        );
    }
    let mut event = |n: i64, at: i64, name: &str, label: Option<&str>, actor: &str| {
        event_id += 7;
        repo.events.insert(
            event_id,
            FakeEvent {
                id: event_id,
                issue: number + n,
                event: name.into(),
                label: label.map(str::to_owned),
                actor: Some(actor.into()),
                assignee: None,
                created_at: start + at,
            },
        );
    };
    event(1, 5_000, "labeled", Some("lgtm"), "k8s-ci-robot");
    event(1, 9_000, "labeled", Some("approved"), "k8s-ci-robot");
    event(1, 20_000, "merged", None, "k8s-merge-robot");
    event(1, 20_000, "closed", None, "k8s-merge-robot");
    event(2, 30_000, "closed", None, "carol");
    event(3, 4_000, "labeled", Some("lgtm"), "k8s-ci-robot");
    event(3, 8_000, "labeled", Some("approved"), "frank");
    event(5, 40_000, "closed", None, "grace");
    let mut comment = |n: i64, at: i64, user: &str, body: &str| {
        comment_id += 3;
        repo.comments.insert(
            comment_id,
            FakeComment {
                id: comment_id,
                issue: number + n,
                body: body.into(),
                user: Some(user.into()),
                created_at: start + at,
                updated_at: start + at,
            },
        );
    };
    // Dave's pull request is first answered by a review.
    repo.pr_reviews.insert(
        9_000_000_001,
        FakeReview {
            id: 9_000_000_001,
            issue: number + 3,
            user: Some("bob".into()),
            state: "APPROVED".into(),
            submitted_at: start + 2_000,
            body: "Looks right.".into(),
        },
    );
    comment(1, 100, "k8s-ci-robot", "/test all");
    comment(1, 4_900, "bob", "/lgtm");
    comment(1, 8_900, "carol", "/approve");
    comment(3, 3_000, "alice", "@k8s-bot e2e test this");
    comment(5, 2_000, "grace", "Can you share the logs?");
    let touched: Vec<(i64, i64)> = repo
        .events
        .values()
        .map(|e| (e.issue, e.created_at))
        .chain(repo.comments.values().map(|c| (c.issue, c.created_at)))
        .chain(repo.pr_reviews.values().map(|r| (r.issue, r.submitted_at)))
        .filter(|(issue, _)| *issue > number)
        .collect();
    for (issue, at) in touched {
        if let Some(i) = repo.issues.get_mut(&issue) {
            i.updated_at = i.updated_at.max(at + 5);
            if i.state == "closed" {
                i.closed_at = Some(i.updated_at);
            }
        }
    }
    for c in repo.comments.values().filter(|c| c.issue > number) {
        if let Some(i) = repo.issues.get_mut(&c.issue) {
            i.comments += 1;
        }
    }
}

/// Every InfluxDB query of every dashboard of the bundled config's render, as
/// (dashboard and panel, database, query text), template variables and query text as
/// Grafana sends it.
fn dashboard_queries() -> Vec<(String, String, String)> {
    let config = Path::new(env!("CARGO_MANIFEST_DIR")).join("../config.yaml");
    let valid = velogen::load(&config).unwrap_or_else(|d| panic!("config.yaml: {d:?}"));
    let templates = velogen::render::Templates::embedded().expect("templates");
    let objects = velogen::render_config(&valid.config, &templates).expect("render");
    let mut out = Vec::new();
    for object in &objects {
        let yaml = object.to_yaml().expect("yaml");
        let doc: Value = serde_saphyr::from_str(&yaml).expect("parse");
        if doc["kind"] != "ConfigMap" || doc["metadata"]["labels"]["app"] != "grafana" {
            continue;
        }
        let name = doc["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        for (key, text) in doc["data"].as_object().into_iter().flatten() {
            if !key.ends_with(".json") {
                continue;
            }
            let board: Value = serde_json::from_str(text.as_str().unwrap_or_default())
                .unwrap_or_else(|e| panic!("{name}/{key}: {e}"));
            let database = |uid: &Value| match uid.as_str() {
                Some("velodrome-github") => "github",
                Some("velodrome-monitoring") => "monitoring",
                other => panic!("{name}/{key}: unknown datasource {other:?}"),
            };
            for variable in board["templating"]["list"].as_array().into_iter().flatten() {
                out.push((
                    format!("{name}/{key} variable {}", variable["name"]),
                    database(&variable["datasource"]["uid"]).to_owned(),
                    variable["query"].as_str().unwrap_or_default().to_owned(),
                ));
            }
            for panel in board["panels"].as_array().into_iter().flatten() {
                for target in panel["targets"].as_array().into_iter().flatten() {
                    if target["datasource"]["type"] == "mysql" {
                        continue; // SQL panels run against MariaDB in tests/people.rs
                    }
                    out.push((
                        format!("{name}/{key} {:?} {}", panel["title"], target["refId"]),
                        database(&target["datasource"]["uid"]).to_owned(),
                        target["query"].as_str().unwrap_or_default().to_owned(),
                    ));
                }
            }
        }
    }
    out
}

/// Runs an InfluxQL query as Grafana would with `All` repositories picked and a time range
/// from `from` to `to` (seconds); returns how many series came back, or the error.
async fn series(
    influx: &InfluxServer,
    database: &str,
    query: &str,
    from: i64,
    to: i64,
) -> Result<usize, String> {
    let query = query
        .replace("$repository", &format!("({})", REPO.replace('/', "\\/")))
        .replace("$timeFilter", &format!("time >= {from}s and time <= {to}s"))
        .replace("$__interval", "1h");
    let result = influx.query(database, &query, "s").await;
    if let Some(error) = result["error"].as_str() {
        return Err(format!("{query}: {error}"));
    }
    Ok(result["series"].as_array().map_or(0, Vec::len))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn github_to_mysql_to_influxdb_end_to_end() {
    let Some(db) = support::mysql::fresh_database("end_to_end").await else {
        return;
    };
    let Some(influx) = support::influx::start().await else {
        return;
    };
    let dir = tempfile::tempdir().expect("tmp");
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, format!("{TOKEN}\n")).expect("token file");

    // 1. GitHub -> MySQL.
    let github = FakeGithub::start(TOKEN).await;
    let data = generate(
        7,
        Sizes {
            issues: 150,
            comments: 400,
            reviews: 30,
            events: 500,
        },
    );
    let mut data = data;
    add_pr_reviews(&mut data, 7, 60);
    add_velocity_story(&mut data);
    let (first, last) = (
        data.issues
            .values()
            .map(|i| i.created_at)
            .min()
            .unwrap_or(0),
        data.issues
            .values()
            .map(|i| i.updated_at)
            .max()
            .unwrap_or(0),
    );
    github.with(|s| {
        s.repos.insert(REPO.into(), data.clone());
    });
    let mut fetch = velodrome("fetcher");
    fetch
        .args([
            "--repository",
            REPO,
            "--mysql-url",
            &db,
            "--github-url",
            &github.url,
            "--influx-url",
            &influx.url,
        ])
        .arg("--token-file")
        .arg(&token_file);
    run(fetch).await;

    let pool = mysql_async::Pool::new(db.as_str());
    let mut conn = pool.get_conn().await.expect("MySQL");
    let issues: i64 = conn
        .query_first("SELECT COUNT(*) FROM issues")
        .await
        .expect("count")
        .unwrap_or(0);
    assert_eq!(issues, 156, "every issue mirrored");
    let prs: i64 = conn
        .query_first("SELECT COUNT(*) FROM issues WHERE is_pr")
        .await
        .expect("count")
        .unwrap_or(0);
    let merged: i64 = conn
        .query_first("SELECT COUNT(*) FROM issue_events e JOIN issues i ON i.repository = e.repository AND i.id = e.issue_id WHERE e.event = 'merged' AND i.is_pr")
        .await
        .expect("count")
        .unwrap_or(0);
    let merged_prs: i64 = conn
        .query_first("SELECT COUNT(DISTINCT e.issue_id) FROM issue_events e JOIN issues i ON i.repository = e.repository AND i.id = e.issue_id WHERE e.event = 'merged' AND i.is_pr")
        .await
        .expect("count")
        .unwrap_or(0);
    drop(conn);
    pool.disconnect().await.ok();
    assert!(
        prs > 0 && merged > 0,
        "the generated repository has pull requests ({prs}) and merges ({merged})"
    );

    // 2. MySQL -> InfluxDB with every metric of the bundled Kubernetes set.
    let metrics = support::bundled::kubernetes_metrics_file(dir.path());
    let mut transform = velodrome("transform");
    transform
        .args([
            "--repository",
            REPO,
            "--mysql-url",
            &db,
            "--influx-url",
            &influx.url,
            "--influx-database",
            "github",
        ])
        .arg("--metrics-file")
        .arg(&metrics);
    run(transform).await;

    let merge = influx.points("github", "merge").await;
    let merge_sum: i64 = merge.iter().filter_map(|(_, p)| field(p, "event")).sum();
    assert_eq!(
        merge_sum, merged,
        "every merge of a pull request is one event point"
    );
    assert!(
        merge
            .iter()
            .all(|(_, p)| p.iter().any(|f| f == &format!("repository={REPO}")))
    );
    let contributions = influx.points("github", "contributions").await;
    let opened = contributions
        .iter()
        .filter(|(_, p)| field(p, "event") == Some(1))
        .count() as i64;
    assert_eq!(opened, prs, "contributions counts every pull request once");
    // It credits people: comments on pull requests (a deleted user's too, as the original
    // did), but none by a bot, whether its login says so or only GitHub's user type does
    // (`ci-helper`).
    let pool = mysql_async::Pool::new(db.as_str());
    let (people_comments, typed_bot_comments): (i64, i64) = pool
        .get_conn()
        .await
        .expect("MySQL")
        .query_first(
            "SELECT SUM(c.user NOT REGEXP '(?i)^(.*\\\\[bot\\\\]|k8s-.*)$'
                        AND COALESCE(c.user_type, '') <> 'Bot'),
                    SUM(c.user_type = 'Bot')
               FROM comments c JOIN issues i ON i.repository = c.repository AND i.id = c.issue_id
              WHERE i.is_pr",
        )
        .await
        .expect("count")
        .unwrap_or((0, 0));
    let credited: i64 = contributions
        .iter()
        .filter_map(|(_, p)| field(p, "comment"))
        .sum();
    assert!(typed_bot_comments > 0, "the fake has comments by ci-helper");
    assert_eq!(credited, people_comments, "comments by people only");
    // Reviews reach the transform: approvals counted, and a review is a first response.
    let approved_sql: i64 = pool
        .get_conn()
        .await
        .expect("MySQL")
        .query_first(
            "SELECT COUNT(*) FROM reviews r JOIN issues i
               ON i.repository = r.repository AND i.id = r.issue_id
             WHERE r.state = 'APPROVED' AND i.is_pr AND r.submitted_at IS NOT NULL",
        )
        .await
        .expect("count")
        .unwrap_or(0);
    pool.disconnect().await.ok();
    let approvals = influx.points("github", "pr-approvals").await;
    let approved: i64 = approvals
        .iter()
        .filter_map(|(_, p)| field(p, "event"))
        .sum();
    assert!(approved_sql > 5, "the fake has approvals ({approved_sql})");
    assert_eq!(approved, approved_sql, "one point per APPROVED review");
    let responses = influx.points("github", "pr-time-to-first-response").await;
    let dave = data.issues.keys().max().copied().unwrap_or(0) - 3;
    let by_review = responses
        .iter()
        .find(|(_, p)| field(p, "number") == Some(dave))
        .expect("a first response on the story's pull request 3");
    assert_eq!(field(&by_review.1, "seconds"), Some(2_000 - 180));
    let unmerged = influx.points("github", "pr-closed-unmerged").await;
    assert!(!unmerged.is_empty(), "pull requests closed without merge");
    let to_merge = influx.points("github", "pr-time-to-merge").await;
    assert_eq!(
        to_merge.len() as i64,
        merged_prs,
        "one time to merge per merged pull request, however often the fake merged it"
    );
    let open = influx.points("github", "open").await;
    assert!(
        !open.is_empty()
            && open
                .iter()
                .all(|(_, p)| field(p, "count").is_some() && field(p, "50%").is_some())
    );

    // 3. The token counter's points, in the monitoring database.
    let tokens = FakeTokens::start(vec![Account {
        token: TOKEN.into(),
        login: "e2e-bot".into(),
        core: Limit {
            limit: 5000,
            remaining: 4000,
            reset: 4_102_444_800,
        },
        search: Limit {
            limit: 30,
            remaining: 30,
            reset: 4_102_444_800,
        },
        graphql: Limit {
            limit: 5000,
            remaining: 5000,
            reset: 4_102_444_800,
        },
        malformed: false,
    }])
    .await;
    let mut counter = velodrome("token-counter");
    counter
        .args([
            "--github-url",
            &tokens.url,
            "--influx-url",
            &influx.url,
            "--influx-database",
            "monitoring",
        ])
        .arg("--token-file")
        .arg(&token_file);
    run(counter).await;
    let used = influx.points("monitoring", "github_token_count").await;
    assert_eq!(used.len(), 1);
    assert_eq!(field(&used[0].1, "value"), Some(1000));
    assert!(used[0].1.iter().any(|f| f == "login=e2e-bot"));

    // 4. Every dashboard's questions have answers: each query, as Grafana sends it over
    // the history's time range (the token counter's over now), returns a series.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let queries = dashboard_queries();
    assert!(queries.len() > 100, "only {} queries", queries.len());
    let mut empty = Vec::new();
    for (place, database, query) in &queries {
        let (from, to) = if database == "monitoring" {
            (now - 86_400, now + 86_400)
        } else {
            (first - 86_400, last + 14 * 86_400)
        };
        match series(&influx, database, query, from, to).await {
            Ok(0) => empty.push(format!("{place}: no series for {query}")),
            Ok(_) => {}
            Err(err) => empty.push(format!("{place}: {err}")),
        }
    }
    assert!(empty.is_empty(), "{}", empty.join("\n"));
    println!("{} dashboard queries answered", queries.len());
}
