//! A private `influxd` (Debian's influxdb 1.x package) per test: free loopback ports, a
//! temporary data folder, stopped by PID when the handle drops.
//!
//! Missing binary: the test is skipped with a message, unless VELODROME_REQUIRE_SERVICES=1.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::mysql::services_required;

/// A running influxd; killed (by its own PID) on drop.
pub struct InfluxServer {
    child: Child,
    /// Base URL, `http://127.0.0.1:PORT`.
    pub url: String,
    _dir: tempfile::TempDir,
}

impl Drop for InfluxServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
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

/// Starts a fresh influxd, or `None` (test skipped) when it is not installed.
pub async fn start() -> Option<InfluxServer> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let Some(binary) = influxd_binary() else {
        if services_required() {
            panic!("influxd is required (VELODROME_REQUIRE_SERVICES=1) but not installed");
        }
        eprintln!("skipping: influxd is not installed (apt-get install influxdb)");
        return None;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let http = free_port();
    let rpc = free_port();
    let root = dir.path().display().to_string();
    let config = format!(
        "reporting-disabled = true\n\
         bind-address = \"127.0.0.1:{rpc}\"\n\
         [meta]\n  dir = \"{root}/meta\"\n\
         [data]\n  dir = \"{root}/data\"\n  wal-dir = \"{root}/wal\"\n  query-log-enabled = false\n\
         [http]\n  bind-address = \"127.0.0.1:{http}\"\n  log-enabled = false\n\
         [ifql]\n  enabled = false\n\
         [monitor]\n  store-enabled = false\n\
         [continuous_queries]\n  enabled = false\n"
    );
    let config_path = dir.path().join("influxdb.conf");
    std::fs::write(&config_path, config).expect("write influxdb.conf");
    let log = std::fs::File::create(dir.path().join("influxd.log")).expect("log file");
    let child = Command::new(&binary)
        .arg("-config")
        .arg(&config_path)
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("log handle"))
        .stderr(log)
        .spawn()
        .unwrap_or_else(|err| panic!("cannot start {}: {err}", binary.display()));
    let server = InfluxServer {
        child,
        url: format!("http://127.0.0.1:{http}"),
        _dir: dir,
    };
    let client = influxdb::Client::new(server.url.clone(), "_internal");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if client.ping().await.is_ok() {
            return Some(server);
        }
        if Instant::now() > deadline {
            panic!("influxd at {} did not answer /ping within 30 s", server.url);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

impl InfluxServer {
    /// Runs an InfluxQL statement on `database` (POST, so it may change data).
    pub async fn execute(&self, database: &str, statement: &str) {
        let client = influxdb::Client::new(self.url.clone(), database);
        client
            .query(influxdb::ReadQuery::new(statement))
            .await
            .unwrap_or_else(|err| panic!("{statement}: {err}"));
    }

    /// Every point of `measurement` in `database` as (time in ns, sorted "field=value"
    /// strings including the repository tag), in time order.
    pub async fn points(&self, database: &str, measurement: &str) -> Vec<(i64, Vec<String>)> {
        let url = format!("{}/query", self.url);
        let q = format!(
            "SELECT * FROM \"{}\" GROUP BY * ORDER BY time",
            measurement.replace('"', "\\\"")
        );
        let text = reqwest::Client::new()
            .get(url)
            .query(&[("db", database), ("q", q.as_str()), ("epoch", "ns")])
            .send()
            .await
            .expect("query influxd")
            .text()
            .await
            .expect("influx answer");
        let body: serde_json::Value = serde_json::from_str(&text).expect("influx JSON");
        let mut out = Vec::new();
        let series = body["results"][0]["series"]
            .as_array()
            .cloned()
            .unwrap_or_default();
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
