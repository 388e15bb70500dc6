//! Mirror rows written straight into MariaDB, for tests of what the transform makes of
//! them: a fresh database with the runtime's migrations, typed rows, a seeded generator of
//! Kubernetes-like history, and a runner of `velodrome transform --once`.

#[path = "../../src/db/migrations.rs"]
#[allow(dead_code)]
mod migrations;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use mysql_async::prelude::Queryable;
use mysql_async::{Pool, Value};

use super::influx::InfluxServer;

pub const REPO: &str = "o/r";

/// 2017-01-01 00:00:00 UTC.
pub const DAY: i64 = 1_483_228_800;
pub const S: i64 = 1_000_000_000;

pub struct Fixture {
    pub url: String,
    pub pool: Pool,
    pub dir: tempfile::TempDir,
}

pub async fn fixture(name: &str) -> Option<Fixture> {
    let url = super::mysql::fresh_database(name).await?;
    let pool = Pool::new(url.as_str());
    let mut conn = pool.get_conn().await.expect("connect");
    for migration in migrations::MIGRATIONS {
        for statement in migration.statements {
            conn.query_drop(*statement).await.expect("migration");
        }
    }
    drop(conn);
    Some(Fixture {
        url,
        pool,
        dir: tempfile::tempdir().expect("temp dir"),
    })
}

#[derive(Clone, Debug)]
pub struct Issue {
    pub id: i64,
    pub user: &'static str,
    pub is_pr: bool,
    pub created: i64,
}

#[derive(Clone, Debug)]
pub struct Event {
    pub id: i64,
    pub issue: i64,
    pub event: &'static str,
    pub label: Option<&'static str>,
    pub actor: Option<&'static str>,
    pub created: i64,
    pub repo: &'static str,
}

#[derive(Clone, Debug)]
pub struct Comment {
    pub id: i64,
    pub issue: i64,
    pub user: &'static str,
    pub body: String,
    pub created: i64,
    pub review: bool,
    pub repo: &'static str,
}

pub fn at(seconds: i64) -> String {
    // Naive UTC DATETIME text, computed here so the session time zone never matters.
    super::fake_github::rfc3339(seconds)
        .replace('T', " ")
        .replace('Z', "")
}

pub async fn insert_rows(pool: &Pool, table: &str, columns: &[&str], rows: Vec<Vec<Value>>) {
    let mut conn = pool.get_conn().await.expect("connect");
    for chunk in rows.chunks(500) {
        let one = format!("({})", vec!["?"; columns.len()].join(","));
        let sql = format!(
            "INSERT INTO {table} ({}) VALUES {}",
            columns.join(","),
            vec![one; chunk.len()].join(",")
        );
        let params: Vec<Value> = chunk.iter().flatten().cloned().collect();
        conn.exec_drop(sql, params).await.expect("insert");
    }
}

pub async fn insert_issues(pool: &Pool, repo: &str, issues: &[Issue]) {
    let rows = issues
        .iter()
        .map(|i| {
            vec![
                repo.into(),
                i.id.into(),
                "title".into(),
                "".into(),
                i.user.into(),
                "open".into(),
                0.into(),
                i.is_pr.into(),
                at(i.created).into(),
                at(i.created).into(),
            ]
        })
        .collect();
    insert_rows(
        pool,
        "issues",
        &[
            "repository",
            "id",
            "title",
            "body",
            "user",
            "state",
            "comments",
            "is_pr",
            "issue_created_at",
            "issue_updated_at",
        ],
        rows,
    )
    .await;
}

pub async fn insert_events(pool: &Pool, events: &[Event]) {
    let rows = events
        .iter()
        .map(|e| {
            vec![
                e.repo.into(),
                e.id.into(),
                e.issue.into(),
                e.event.into(),
                e.label.into(),
                e.actor.into(),
                at(e.created).into(),
            ]
        })
        .collect();
    insert_rows(
        pool,
        "issue_events",
        &[
            "repository",
            "id",
            "issue_id",
            "event",
            "label",
            "actor",
            "event_created_at",
        ],
        rows,
    )
    .await;
}

pub async fn insert_comments(pool: &Pool, comments: &[Comment]) {
    let rows = comments
        .iter()
        .map(|c| {
            vec![
                c.repo.into(),
                c.id.into(),
                c.review.into(),
                c.issue.into(),
                c.body.as_str().into(),
                c.user.into(),
                at(c.created).into(),
                at(c.created).into(),
            ]
        })
        .collect();
    insert_rows(
        pool,
        "comments",
        &[
            "repository",
            "id",
            "pull_request",
            "issue_id",
            "body",
            "user",
            "comment_created_at",
            "comment_updated_at",
        ],
        rows,
    )
    .await;
}

pub fn write_metrics(dir: &Path, name: &str, yaml: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, yaml).expect("metrics file");
    path
}

/// Runs `velodrome transform` once for REPO.
pub fn transform(
    fx: &Fixture,
    influx: Option<(&InfluxServer, &str)>,
    metrics: &Path,
    env: &[(&str, &str)],
) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_velodrome"));
    command
        .arg("transform")
        .arg("--repository")
        .arg(REPO)
        .arg("--metrics-file")
        .arg(metrics)
        .arg("--mysql-url")
        .arg(&fx.url)
        .arg("--once");
    match influx {
        Some((server, db)) => {
            command
                .arg("--influx-url")
                .arg(&server.url)
                .arg("--influx-database")
                .arg(db);
        }
        None => {
            command
                .arg("--influx-database")
                .arg("unused")
                .arg("--dry-run");
        }
    }
    command.env_remove("VELODROME_TRANSFORM_BATCH");
    command.env_remove("VELODROME_TRANSFORM_FAIL_AFTER_BATCHES");
    for (k, v) in env {
        command.env(k, v);
    }
    command.output().expect("run velodrome")
}

pub fn ok(output: &Output) -> String {
    assert!(
        output.status.success(),
        "velodrome failed ({:?}):\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// A seeded repository: issues and pull requests, events and comments, many in the same
/// second; ignored bots; late rows.
pub struct Generated {
    pub issues: Vec<Issue>,
    pub events: Vec<Event>,
    pub comments: Vec<Comment>,
}

pub const USERS: [&str; 12] = [
    "alice",
    "bob",
    "carol",
    "dave",
    "erin",
    "frank",
    "grace",
    "heidi",
    "ivan",
    "judy",
    "k8s-ci-robot",
    "k8s-merge-robot",
];
pub const LABELS: [&str; 4] = ["lgtm", "approved", "needs-rebase", "kind/bug"];

pub fn generate(seed: u64, issues: usize, rows: usize) -> Generated {
    generate_over(seed, issues, rows, 1)
}

/// [`generate`] with every time step `stretch` times longer: at 600, 2,000 issues are
/// opened over most of a year and their events spread over months, so weekly series
/// have many weeks.
pub fn generate_over(seed: u64, issues: usize, rows: usize, stretch: i64) -> Generated {
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut out = Generated {
        issues: Vec::new(),
        events: Vec::new(),
        comments: Vec::new(),
    };
    let mut merged = std::collections::HashSet::new();
    for n in 0..issues {
        out.issues.push(Issue {
            id: n as i64 + 1,
            user: USERS[rng.usize(..USERS.len())],
            is_pr: rng.u8(..10) < 6,
            // Several issues per minute, on whole 30 s steps: same-second collisions.
            created: DAY + ((n as i64 / 3) * 60 + rng.i64(0..2) * 30) * stretch,
        });
    }
    let mut event_id = 1_000_000;
    let mut comment_id = 5_000_000;
    for _ in 0..rows {
        let issue = &out.issues[rng.usize(..out.issues.len())];
        let created = issue.created + rng.i64(0..2000) * 30 * stretch;
        let actor = USERS[rng.usize(..USERS.len())];
        match rng.u8(..10) {
            0..=4 => {
                comment_id += 1;
                out.comments.push(Comment {
                    id: comment_id,
                    issue: issue.id,
                    user: actor,
                    body: if rng.bool() {
                        "/lgtm".into()
                    } else {
                        "looks fine".into()
                    },
                    created,
                    review: issue.is_pr && rng.u8(..4) == 0,
                    repo: REPO,
                });
            }
            5 | 6 => {
                event_id += 1;
                out.events.push(Event {
                    id: event_id,
                    issue: issue.id,
                    event: if rng.bool() { "labeled" } else { "unlabeled" },
                    label: Some(LABELS[rng.usize(..LABELS.len())]),
                    actor: Some(actor),
                    created,
                    repo: REPO,
                });
            }
            7 | 8 => {
                event_id += 1;
                out.events.push(Event {
                    id: event_id,
                    issue: issue.id,
                    event: if rng.bool() { "closed" } else { "reopened" },
                    label: None,
                    actor: if rng.u8(..20) == 0 { None } else { Some(actor) },
                    created,
                    repo: REPO,
                });
            }
            _ => {
                if issue.is_pr && merged.insert(issue.id) {
                    // GitHub writes closed and merged in the same second.
                    for name in ["closed", "merged"] {
                        event_id += 1;
                        out.events.push(Event {
                            id: event_id,
                            issue: issue.id,
                            event: name,
                            label: None,
                            actor: Some("k8s-merge-robot"),
                            created,
                            repo: REPO,
                        });
                    }
                } else {
                    event_id += 1;
                    out.events.push(Event {
                        id: event_id,
                        issue: issue.id,
                        event: "referenced",
                        label: None,
                        actor: Some(actor),
                        created,
                        repo: REPO,
                    });
                }
            }
        }
    }
    out
}

pub async fn load(pool: &Pool, data: &Generated) {
    insert_issues(pool, REPO, &data.issues).await;
    insert_events(pool, &data.events).await;
    insert_comments(pool, &data.comments).await;
}
