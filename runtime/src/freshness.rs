//! How old the data behind the dashboards is, so a flat line can be told apart from a
//! stopped fetcher (DevStats users asked for exactly this).
//!
//! Each round, whether it worked or not, the fetcher and the transform write one point per
//! repository to the `monitoring` database: measurement `velodrome_freshness`, tags
//! `repository` and `component` (`fetcher` or `transform`), integer fields `synced_at`
//! (seconds since the epoch of the last complete sync, or of the moment the transform's
//! output was read up to) and `age` (seconds from then to the point). While GitHub is down
//! the fetcher's rounds fail and `age` grows by one interval per round; dashboards turn it
//! red past three intervals. A component that has not succeeded once since it started
//! writes nothing: it cannot say how old the data is.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::influx::{Batch, Field, Influx, InfluxConfig, InfluxError, Precision};

/// The measurement, as dashboards query it.
pub const MEASUREMENT: &str = "velodrome_freshness";

/// Seconds since the epoch now.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// The freshness of one component's repositories, and where it is written.
pub struct Freshness {
    influx: Influx,
    component: &'static str,
    synced: Mutex<HashMap<String, i64>>,
}

impl Freshness {
    /// Writes for `component` into `config`'s database (created when missing).
    pub async fn new(config: &InfluxConfig, component: &'static str) -> Self {
        let influx = Influx::new(config);
        if let Err(err) = influx.create_database().await {
            tracing::warn!(error = %err, database = %config.database, "could not create the freshness database (it must exist)");
        }
        Self {
            influx,
            component,
            synced: Mutex::new(HashMap::new()),
        }
    }

    /// Records that `repository`'s data is complete as of `at` (seconds).
    pub fn synced(&self, repository: &str, at: i64) {
        let mut synced = self.synced.lock().unwrap_or_else(|e| e.into_inner());
        synced.insert(repository.to_owned(), at);
    }

    /// Writes the repository's point for a round that ended now. A failed write is logged,
    /// never fatal: freshness must not stop the work it describes.
    pub async fn write(&self, repository: &str) {
        let synced_at = self
            .synced
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(repository)
            .copied();
        let Some(synced_at) = synced_at else {
            return;
        };
        if let Err(err) = self.try_write(repository, synced_at, now()).await {
            tracing::warn!(repository, component = self.component, error = %err, "cannot write freshness");
        }
    }

    async fn try_write(
        &self,
        repository: &str,
        synced_at: i64,
        now: i64,
    ) -> Result<(), InfluxError> {
        let mut batch = Batch::new(Precision::Seconds, 1);
        batch.add(
            MEASUREMENT,
            &[("repository", repository), ("component", self.component)],
            &[
                ("synced_at", Field::Int(synced_at)),
                ("age", Field::Int((now - synced_at).max(0))),
            ],
            u64::try_from(now).unwrap_or(0),
        )?;
        self.influx.write(&mut batch).await
    }
}
