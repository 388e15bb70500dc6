//! Data freshness during an outage: the fetcher loops every second against the fake
//! GitHub, which then refuses every request for more than three intervals. The
//! `velodrome_freshness` points show the age of the mirror growing round after round, and
//! the queries of the rendered dashboards' freshness panel and stale-data annotation return
//! it.

mod support;

use std::path::Path;

use serde_json::Value;
use support::fake_github::{FakeGithub, Sizes, generate};
use support::influx::InfluxServer;
use support::process::Watched;

const TOKEN: &str = "ghp_FreshnessTokenABCDEF0123456789";
const REPO: &str = "velo/fresh";

/// The freshness panel query (target A of "Age of fetcher data") and the stale-data
/// annotation query, from velogen's render of a config whose fetcher loops every second.
fn rendered_queries(dir: &Path) -> (String, String) {
    let path = dir.join("config.yaml");
    std::fs::write(
        &path,
        format!(
            "fetcher:\n  interval: 1s\nprojects:\n  fresh:\n    repositories:\n      {REPO}:\n"
        ),
    )
    .expect("config");
    let valid = velogen::load(&path).unwrap_or_else(|d| panic!("{d:?}"));
    let templates = velogen::render::Templates::embedded().expect("templates");
    let objects = velogen::render_config(&valid.config, &templates).expect("render");
    for object in &objects {
        let doc: Value = serde_saphyr::from_str(&object.to_yaml().expect("yaml")).expect("parse");
        let Some(home) = doc["data"]["home.json"].as_str() else {
            continue;
        };
        let home: Value = serde_json::from_str(home).expect("home.json");
        let panel = home["panels"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|p| p["title"] == "Age of fetcher data")
            .expect("the freshness panel");
        let annotation = home["annotations"]["list"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|a| a["name"] == "No successful fetch")
            .expect("the stale-data annotation");
        return (
            panel["targets"][0]["query"]
                .as_str()
                .expect("query")
                .to_owned(),
            annotation["target"]["query"]
                .as_str()
                .expect("query")
                .to_owned(),
        );
    }
    panic!("no grafana ConfigMap with home.json");
}

/// Runs a dashboard query on the monitoring database with Grafana's variables filled in;
/// returns its rows as (time, values).
async fn rows(influx: &InfluxServer, query: &str, from: i64, to: i64) -> Vec<Vec<Value>> {
    let query = query
        .replace("$repository", &format!("({})", REPO.replace('/', "\\/")))
        .replace("$timeFilter", &format!("time >= {from}s and time <= {to}s"))
        .replace("$__interval", "1s");
    let result = influx.query("monitoring", &query, "s").await;
    assert!(result["error"].is_null(), "{query}: {result}");
    result["series"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|s| s["values"].as_array().cloned().unwrap_or_default())
        .map(|row| row.as_array().cloned().unwrap_or_default())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_shows_as_a_growing_age() {
    let Some(db) = support::mysql::fresh_database("freshness").await else {
        return;
    };
    let Some(influx) = support::influx::start().await else {
        return;
    };
    let fake = FakeGithub::start(TOKEN).await;
    let sizes = Sizes {
        issues: 20,
        comments: 20,
        reviews: 2,
        events: 20,
    };
    fake.with(|s| {
        s.repos.insert(REPO.into(), generate(3, sizes));
    });
    let dir = tempfile::tempdir().expect("tmp");
    let token = dir.path().join("token");
    std::fs::write(&token, TOKEN).expect("token");
    let started = support::process::now_seconds();
    let mut fetcher = Watched::spawn(
        std::process::Command::new(env!("CARGO_BIN_EXE_velodrome"))
            .args(["fetcher", "--repository", REPO, "--mysql-url", &db])
            .arg("--token-file")
            .arg(&token)
            .args(["--github-url", &fake.url, "--interval", "1s"])
            .args(["--influx-url", &influx.url])
            .env("VELODROME_GITHUB_BACKOFF_MS", "20")
            .env("VELODROME_LOG", "info")
            .env_remove("RUST_LOG"),
        "velodrome fetcher",
    );
    fetcher.wait_for_lines("round done", 2).await;
    // GitHub goes away: every request is refused from now on.
    fake.with(|s| s.token = "a token nobody has".into());
    let failed_before = fetcher.count_lines("round failed");
    fetcher
        .wait_for_lines("round failed", failed_before + 5)
        .await;
    drop(fetcher);
    let ended = support::process::now_seconds();

    let points = influx
        .points("monitoring", "velodrome_freshness")
        .await
        .into_iter()
        .filter(|(_, p)| p.iter().any(|f| f == "component=fetcher"))
        .collect::<Vec<_>>();
    let field = |p: &[String], name: &str| -> i64 {
        p.iter()
            .find_map(|f| f.strip_prefix(&format!("{name}=")))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {name} in {p:?}"))
    };
    assert!(points.len() >= 7, "{points:?}");
    // The last five points are failed rounds: the same last sync, an age that grows.
    let outage = &points[points.len() - 5..];
    let synced: Vec<i64> = outage.iter().map(|(_, p)| field(p, "synced_at")).collect();
    assert!(synced.windows(2).all(|w| w[0] == w[1]), "{synced:?}");
    let ages: Vec<i64> = outage.iter().map(|(_, p)| field(p, "age")).collect();
    assert!(
        ages.windows(2).all(|w| w[0] < w[1]),
        "ages must grow: {ages:?}"
    );
    assert!(
        *ages.last().unwrap_or(&0) >= 3,
        "three intervals at least: {ages:?}"
    );
    assert!(
        points
            .iter()
            .all(|(_, p)| p.iter().any(|f| f == &format!("repository={REPO}")))
    );

    // The dashboards see it: the panel's query returns the growing age, and the annotation
    // marks the rounds past three intervals.
    let (panel, annotation) = rendered_queries(dir.path());
    let series = rows(&influx, &panel, started - 5, ended + 5).await;
    let max_age = series
        .iter()
        .filter_map(|row| row.get(1).and_then(Value::as_i64))
        .max()
        .unwrap_or(0);
    assert_eq!(max_age, *ages.last().unwrap_or(&0), "{series:?}");
    let stale = rows(&influx, &annotation, started - 5, ended + 5).await;
    assert!(!stale.is_empty(), "the annotation finds the stale rounds");
    assert!(
        stale.iter().all(|row| row
            .get(1)
            .and_then(Value::as_i64)
            .is_some_and(|age| age > 3)),
        "{stale:?}"
    );
}
