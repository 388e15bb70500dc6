//! The whole runtime on one machine: a fake GitHub serves a small repository, the fetcher
//! mirrors it into MariaDB, the transform writes the configured metrics into influxd, the
//! token counter writes its points, and queries of InfluxDB return the series the
//! dashboards read, with numbers that agree with SQL over the mirror.

mod support;

use std::process::{Command, Output};

use mysql_async::prelude::Queryable;
use support::fake_github::{FakeGithub, Sizes, generate};
use support::fake_tokens::{Account, FakeTokens, Limit};

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
    assert_eq!(issues, 150, "every issue mirrored");
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
    drop(conn);
    pool.disconnect().await.ok();
    assert!(
        prs > 0 && merged > 0,
        "the generated repository has pull requests ({prs}) and merges ({merged})"
    );

    // 2. MySQL -> InfluxDB with the default dashboard's metrics.
    let metrics = dir.path().join("metrics.yaml");
    std::fs::write(
        &metrics,
        "merge:\n  plugin: count\n  args: [--no-issues, --event=merged]\n\
         contributions:\n  plugin: count\n  args: [--no-issues, --event=opened, --comments=.*, --log-author]\n\
         open:\n  plugin: count\n  args: [--no-issues, \"--state=opened,!merged\", --percentiles=50]\n",
    )
    .expect("metrics file");
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
}
