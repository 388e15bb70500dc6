//! Rows that leave MySQL leave the metrics: the fetcher's reconciliation sweep logs every
//! change of presence it makes to an issue's rows (`sync_removals`: removed or added rows
//! and the earliest time among them, written in the transaction that makes the change).
//! Each round reads the entries it has not taken into account yet for its destination,
//! and every metric whose points reach past the earliest of them is rewritten from the
//! start of that UTC day, as for late rows. Counting rows per day alone would miss a
//! removal and an arrival that cancel out on one day.
//!
//! The last entry taken into account is stored per destination and repository in
//! `transform_removals_seen`, after a round completes; a stopped round leaves it, so the
//! next one rewrites again from the same day.

use mysql_async::Pool;
use mysql_async::prelude::Queryable;

use crate::db::{DbError, UtcTime};

/// Entries not taken into account yet.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pending {
    /// The newest entry (to store once the round completes); `None`: nothing new.
    pub last_id: Option<i64>,
    /// The earliest time (seconds) the new entries touch.
    pub first_time: Option<i64>,
}

/// Creates the table of entries taken into account (idempotent).
pub async fn ensure_table(pool: &Pool) -> Result<(), DbError> {
    let mut conn = pool.get_conn().await?;
    conn.query_drop(
        "CREATE TABLE IF NOT EXISTS transform_removals_seen (
            destination VARCHAR(255) NOT NULL,
            repository VARCHAR(255) NOT NULL,
            last_id BIGINT NOT NULL,
            PRIMARY KEY (destination, repository)
        ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4",
    )
    .await?;
    Ok(())
}

/// The entries of `repository` that `destination` has not taken into account.
pub async fn pending(pool: &Pool, destination: &str, repository: &str) -> Result<Pending, DbError> {
    let mut conn = pool.get_conn().await?;
    let seen: Option<i64> = conn
        .exec_first(
            "SELECT last_id FROM transform_removals_seen WHERE destination = ? AND repository = ?",
            (destination, repository),
        )
        .await?;
    let row: Option<(Option<i64>, mysql_async::Value)> = conn
        .exec_first(
            "SELECT MAX(id), MIN(first_at) FROM sync_removals WHERE repository = ? AND id > ?",
            (repository, seen.unwrap_or(0)),
        )
        .await?;
    let Some((last_id, first)) = row else {
        return Ok(Pending::default());
    };
    let first = UtcTime::from_mysql(&first).map_err(|e| DbError::Value(e.to_string()))?;
    Ok(Pending {
        last_id,
        first_time: first.map(|t| t.0),
    })
}

/// Stores that `destination` has taken every entry up to `last_id` into account.
pub async fn mark_seen(
    pool: &Pool,
    destination: &str,
    repository: &str,
    last_id: i64,
) -> Result<(), DbError> {
    let mut conn = pool.get_conn().await?;
    conn.exec_drop(
        "INSERT INTO transform_removals_seen (destination, repository, last_id) VALUES (?, ?, ?) \
         ON DUPLICATE KEY UPDATE last_id = GREATEST(last_id, VALUES(last_id))",
        (destination, repository, last_id),
    )
    .await?;
    Ok(())
}

/// The start (seconds) of the UTC day holding `time`.
pub fn day_start(time: i64) -> i64 {
    time.div_euclid(86_400) * 86_400
}
