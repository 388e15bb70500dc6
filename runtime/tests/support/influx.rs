//! A private `influxd` (Debian's influxdb 1.x package) per test, on ports it picks itself,
//! with a temporary data folder, stopped when the handle drops.
//!
//! influxd binds port 0 and the harness reads the port from its "Listening on HTTP" log
//! line, so tests started at the same moment never race for a port. A start that fails
//! (influxd exits first) is retried a few times, then fails with influxd's own log.
//!
//! Missing binary: the test is skipped with a message, unless VELODROME_REQUIRE_SERVICES=1.

use std::path::PathBuf;
use std::process::Command;

use super::mysql::services_required;
use super::process::{Watched, loopback_addr};

/// Starts tried before giving up (each with a fresh data folder).
const ATTEMPTS: usize = 3;

/// A running influxd; killed on drop.
pub struct InfluxServer {
    process: Watched,
    /// Base URL, `http://127.0.0.1:PORT`.
    pub url: String,
    _dir: tempfile::TempDir,
}

fn influxd_binary() -> Option<PathBuf> {
    if let Ok(path) = std::env::var("VELODROME_INFLUXD") {
        return Some(PathBuf::from(path));
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join("influxd"))
        .find(|candidate| candidate.is_file())
        .or_else(|| {
            let usr = PathBuf::from("/usr/bin/influxd");
            usr.is_file().then_some(usr)
        })
}

/// Starts a fresh influxd with the `tsi1` index the rendered InfluxDB runs, or `None` (test
/// skipped) when it is not installed.
pub async fn start() -> Option<InfluxServer> {
    start_with_index("tsi1").await
}

/// [`start`] with the series index `index` (`inmem`, influxd's default, or `tsi1`).
///
/// InfluxDB 1.6's `inmem` index loses a series that was removed (`DROP SERIES`, or a
/// `DELETE` of all its points) and written again as soon as another series of the same
/// measurement is removed the same way; `tsi1` keeps it. A transform that rewrites two
/// repositories of one database from their first day needs `tsi1`.
async fn start_with_index(index: &str) -> Option<InfluxServer> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let Some(binary) = influxd_binary() else {
        if services_required() {
            panic!("influxd is required (VELODROME_REQUIRE_SERVICES=1) but not installed");
        }
        eprintln!("skipping: influxd is not installed (apt-get install influxdb)");
        return None;
    };
    let mut failures = Vec::new();
    for attempt in 1..=ATTEMPTS {
        match start_once(&binary, index).await {
            Ok(server) => return Some(server),
            Err(why) => failures.push(format!("attempt {attempt}: {why}")),
        }
    }
    panic!(
        "influxd did not start in {ATTEMPTS} attempts:\n{}",
        failures.join("\n\n")
    );
}

async fn start_once(binary: &std::path::Path, index: &str) -> Result<InfluxServer, String> {
    let dir = tempfile::tempdir().expect("temp dir");
    let root = dir.path().display().to_string();
    let config = format!(
        "reporting-disabled = true\n\
         bind-address = \"127.0.0.1:0\"\n\
         [meta]\n  dir = \"{root}/meta\"\n\
         [data]\n  dir = \"{root}/data\"\n  wal-dir = \"{root}/wal\"\n  query-log-enabled = false\n  index-version = \"{index}\"\n\
         [http]\n  bind-address = \"127.0.0.1:0\"\n  log-enabled = false\n\
         [ifql]\n  enabled = false\n\
         [monitor]\n  store-enabled = false\n\
         [continuous_queries]\n  enabled = false\n"
    );
    let config_path = dir.path().join("influxdb.conf");
    std::fs::write(&config_path, config).expect("write influxdb.conf");
    let mut process = Watched::spawn(
        Command::new(binary).arg("-config").arg(&config_path),
        "influxd",
    );
    let addr = process
        .try_wait_for("its \"Listening on HTTP\" line", |line| {
            line.contains("Listening on HTTP")
                .then(|| loopback_addr(line))
                .flatten()
        })
        .await?;
    let url = format!("http://{addr}");
    let client = influxdb::Client::new(url.clone(), "_internal");
    if let Err(err) = client.ping().await {
        return Err(format!(
            "influxd said it listens on {addr} but /ping failed: {err}; its log ends:\n{}",
            process.tail()
        ));
    }
    Ok(InfluxServer {
        process,
        url,
        _dir: dir,
    })
}

impl InfluxServer {
    /// What influxd has logged so far (for failure messages).
    pub fn log(&self) -> String {
        self.process.log()
    }

    /// Runs an InfluxQL statement on `database` (POST, so it may change data).
    pub async fn execute(&self, database: &str, statement: &str) {
        let client = influxdb::Client::new(self.url.clone(), database);
        client
            .query(influxdb::ReadQuery::new(statement))
            .await
            .unwrap_or_else(|err| panic!("{statement}: {err}"));
    }

    /// The result of one InfluxQL read on `database`, times in `epoch` units (`s`, `ns`):
    /// the object holding `series`, or `error` when influxd refused the query.
    pub async fn query(&self, database: &str, query: &str, epoch: &str) -> serde_json::Value {
        let text = reqwest::Client::new()
            .get(format!("{}/query", self.url))
            .query(&[("db", database), ("q", query), ("epoch", epoch)])
            .send()
            .await
            .unwrap_or_else(|e| panic!("query influxd: {e}; its log:\n{}", self.log()))
            .text()
            .await
            .expect("influx answer");
        let mut body: serde_json::Value =
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{query}: {e}: {text}"));
        body["results"][0].take()
    }

    /// Every point of `measurement` in `database` as (time in ns, sorted "field=value"
    /// strings including the repository tag), in time order.
    pub async fn points(&self, database: &str, measurement: &str) -> Vec<(i64, Vec<String>)> {
        let q = format!(
            "SELECT * FROM \"{}\" GROUP BY * ORDER BY time",
            measurement.replace('"', "\\\"")
        );
        let body = self.query(database, &q, "ns").await;
        let mut out = Vec::new();
        let series = body["series"].as_array().cloned().unwrap_or_default();
        for s in series {
            let tags = s["tags"].as_object().cloned().unwrap_or_default();
            let columns: Vec<String> = s["columns"]
                .as_array()
                .expect("columns")
                .iter()
                .map(|c| c.as_str().unwrap_or_default().to_owned())
                .collect();
            for row in s["values"].as_array().expect("values") {
                let row = row.as_array().expect("row");
                let time = row[0].as_i64().expect("ns time");
                let mut fields: Vec<String> = tags
                    .iter()
                    .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                    .collect();
                for (column, value) in columns.iter().zip(row).skip(1) {
                    if !value.is_null() {
                        fields.push(format!("{column}={value}"));
                    }
                }
                fields.sort();
                out.push((time, fields));
            }
        }
        out.sort();
        out
    }
}
