//! Reading one repository's mirrored rows as one ordered stream, and the transform's own
//! durable state (watermarks) in MySQL.
//!
//! The stream is a single `UNION ALL` of issues (as `opened`), events and comments, each
//! row joined to its issue (so the filters know the issue's author and kind), ordered by
//! (time, kind, id) on the server. One query, one cursor: the order is total and the same
//! on every run, which the original's two racing channels never were (spec 9.5, 9.8).
//!
//! Events whose name no metric can match (`referenced`, `subscribed`, ...) are left out on
//! the server: they can neither produce a point nor change a state.

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Pool, Row, Value};

use super::engine::{Item, Key, Kind};
use crate::db::{DbError, UtcTime};

/// The event names a metric can match; other events are never read.
const USEFUL_EVENTS: &str =
    "'closed','reopened','merged','labeled','unlabeled','opened','commented'";

/// The stream's SQL, optionally after `after` and up to `upto` (inclusive).
fn stream_sql(bodies: bool, after: Option<Key>, upto: Option<Key>, count: bool) -> String {
    let from = |column: &str| match after {
        Some(_) => format!(" AND {column} >= :after_t"),
        None => String::new(),
    };
    let body = if bodies { "c.body" } else { "''" };
    let mut conditions = Vec::new();
    if after.is_some() {
        conditions.push(
            "(s.t > :after_t OR (s.t = :after_t AND (s.kind > :after_k \
             OR (s.kind = :after_k AND s.id > :after_id))))",
        );
    }
    if upto.is_some() {
        conditions.push(
            "(s.t < :upto_t OR (s.t = :upto_t AND (s.kind < :upto_k \
             OR (s.kind = :upto_k AND s.id <= :upto_id))))",
        );
    }
    let filter = if conditions.is_empty() {
        String::new()
    } else {
        format!(" WHERE {}", conditions.join(" AND "))
    };
    let select = if count {
        "SELECT COUNT(*)".to_owned()
    } else {
        "SELECT TIMESTAMPDIFF(SECOND, '1970-01-01 00:00:00', s.t), s.kind, s.id, s.issue, \
         s.is_pr, s.issue_user, s.event, s.label, s.actor, s.body"
            .to_owned()
    };
    let order = if count {
        ""
    } else {
        " ORDER BY s.t, s.kind, s.id"
    };
    format!(
        "{select} FROM (
            SELECT i.issue_created_at AS t, 0 AS kind, i.id AS id, i.id AS issue,
                   i.is_pr AS is_pr, i.user AS issue_user, 'opened' AS event,
                   NULL AS label, i.user AS actor, '' AS body
              FROM issues i
             WHERE i.repository = :repo{issues_from}
            UNION ALL
            SELECT e.event_created_at, 1, e.id, e.issue_id, i.is_pr, i.user, e.event,
                   e.label, e.actor, ''
              FROM issue_events e
              JOIN issues i ON i.repository = e.repository AND i.id = e.issue_id
             WHERE e.repository = :repo AND e.event IN ({USEFUL_EVENTS}){events_from}
            UNION ALL
            SELECT c.comment_created_at, IF(c.pull_request, 3, 2), c.id, c.issue_id, i.is_pr,
                   i.user, 'commented', NULL, c.user, {body}
              FROM comments c
              JOIN issues i ON i.repository = c.repository AND i.id = c.issue_id
             WHERE c.repository = :repo{comments_from}
        ) s{filter}{order}",
        issues_from = from("i.issue_created_at"),
        events_from = from("e.event_created_at"),
        comments_from = from("c.comment_created_at"),
    )
}

fn params(repository: &str, after: Option<Key>, upto: Option<Key>) -> mysql_async::Params {
    let mut named: Vec<(Vec<u8>, Value)> = vec![(b"repo".to_vec(), repository.into())];
    for (prefix, key) in [("after", after), ("upto", upto)] {
        if let Some(key) = key {
            named.push((
                format!("{prefix}_t").into_bytes(),
                UtcTime(key.time).to_mysql(),
            ));
            named.push((format!("{prefix}_k").into_bytes(), (key.kind as u8).into()));
            named.push((format!("{prefix}_id").into_bytes(), key.id.into()));
        }
    }
    mysql_async::Params::Named(named.into_iter().collect())
}

/// The open result of a stream query; read it with [`next_item`].
pub type Items<'a> = mysql_async::QueryResult<'a, 'static, mysql_async::BinaryProtocol>;

/// Starts the stream of `repository` after `after` (everything when `None`) on `conn`,
/// with comment bodies only when some metric reads them.
pub async fn open_items<'a>(
    conn: &'a mut Conn,
    repository: &str,
    after: Option<Key>,
    bodies: bool,
) -> Result<Items<'a>, DbError> {
    let sql = stream_sql(bodies, after, None, false);
    Ok(conn.exec_iter(sql, params(repository, after, None)).await?)
}

/// The next item of an open stream, `None` at its end.
pub async fn next_item(items: &mut Items<'_>) -> Result<Option<Item>, DbError> {
    match items.next().await? {
        Some(row) => decode(row).map(Some),
        None => Ok(None),
    }
}

fn column<T: mysql_async::prelude::FromValue>(row: &mut Row, index: usize) -> Result<T, DbError> {
    match row.take_opt::<T, usize>(index) {
        Some(Ok(value)) => Ok(value),
        Some(Err(err)) => Err(DbError::Value(format!("stream column {index}: {err}"))),
        None => Err(DbError::Value(format!("stream column {index} missing"))),
    }
}

fn decode(mut row: Row) -> Result<Item, DbError> {
    let time: i64 = column(&mut row, 0)?;
    let kind_code: u8 = column(&mut row, 1)?;
    let kind = Kind::from_code(kind_code)
        .ok_or_else(|| DbError::Value(format!("unknown item kind {kind_code}")))?;
    let id: i64 = column(&mut row, 2)?;
    Ok(Item {
        key: Key { time, kind, id },
        issue: column(&mut row, 3)?,
        is_pr: column(&mut row, 4)?,
        issue_user: column(&mut row, 5)?,
        event: column(&mut row, 6)?,
        label: column(&mut row, 7)?,
        actor: column(&mut row, 8)?,
        body: column(&mut row, 9)?,
    })
}

/// How many items of the stream are at or before `upto`: compared with the count stored
/// with a watermark, it reveals rows that arrived late with older timestamps.
pub async fn count_upto(pool: &Pool, repository: &str, upto: Key) -> Result<i64, DbError> {
    let mut conn = pool.get_conn().await?;
    let count: Option<i64> = conn
        .exec_first(
            stream_sql(false, None, Some(upto), true),
            params(repository, None, Some(upto)),
        )
        .await?;
    Ok(count.unwrap_or(0))
}

/// What is stored per (repository, metric).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Watermark {
    /// The metric's canonical definition when its points were written.
    pub definition: String,
    /// The last item whose points are all in InfluxDB (`None`: no item yet).
    pub mark: Option<Key>,
    /// How many stream items were at or before `mark` then.
    pub seen: i64,
}

/// Creates the watermark table if missing (idempotent, so concurrent starts are fine).
pub async fn ensure_tables(pool: &Pool) -> Result<(), DbError> {
    let mut conn = pool.get_conn().await?;
    conn.query_drop(
        "CREATE TABLE IF NOT EXISTS transform_watermarks (
            destination VARCHAR(255) NOT NULL,
            repository VARCHAR(255) NOT NULL,
            metric VARCHAR(255) NOT NULL,
            definition TEXT NOT NULL,
            mark_time BIGINT NULL,
            mark_kind TINYINT NULL,
            mark_id BIGINT NULL,
            seen BIGINT NOT NULL,
            updated_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP,
            PRIMARY KEY (destination, repository, metric)
        ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4",
    )
    .await?;
    Ok(())
}

type WatermarkRow = (String, String, Option<i64>, Option<u8>, Option<i64>, i64);

/// Every stored watermark of `repository` for `destination` (the InfluxDB URL and
/// database: another destination has its own points, so its own marks), by metric name.
pub async fn load_watermarks(
    pool: &Pool,
    destination: &str,
    repository: &str,
) -> Result<Vec<(String, Watermark)>, DbError> {
    let mut conn = pool.get_conn().await?;
    let rows: Vec<WatermarkRow> = conn
        .exec(
            "SELECT metric, definition, mark_time, mark_kind, mark_id, seen
               FROM transform_watermarks WHERE destination = ? AND repository = ?",
            (destination, repository),
        )
        .await?;
    let mut out = Vec::with_capacity(rows.len());
    for (metric, definition, time, kind, id, seen) in rows {
        let mark = match (time, kind, id) {
            (Some(time), Some(kind), Some(id)) => Some(Key {
                time,
                kind: Kind::from_code(kind)
                    .ok_or_else(|| DbError::Value(format!("watermark kind {kind}")))?,
                id,
            }),
            _ => None,
        };
        out.push((
            metric,
            Watermark {
                definition,
                mark,
                seen,
            },
        ));
    }
    Ok(out)
}

/// Stores the watermarks of several metrics of `repository` for `destination` in one
/// transaction.
pub async fn store_watermarks(
    pool: &Pool,
    destination: &str,
    repository: &str,
    marks: &[(&str, &Watermark)],
) -> Result<(), DbError> {
    if marks.is_empty() {
        return Ok(());
    }
    let mut conn = pool.get_conn().await?;
    let mut tx = conn
        .start_transaction(mysql_async::TxOpts::default())
        .await?;
    for (metric, mark) in marks {
        let (time, kind, id) = match mark.mark {
            Some(key) => (Some(key.time), Some(key.kind as u8), Some(key.id)),
            None => (None, None, None),
        };
        tx.exec_drop(
            "INSERT INTO transform_watermarks
                (destination, repository, metric, definition, mark_time, mark_kind, mark_id,
                 seen)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?)
             ON DUPLICATE KEY UPDATE definition = VALUES(definition),
                mark_time = VALUES(mark_time), mark_kind = VALUES(mark_kind),
                mark_id = VALUES(mark_id), seen = VALUES(seen)",
            (
                destination,
                repository,
                *metric,
                mark.definition.as_str(),
                time,
                kind,
                id,
                mark.seen,
            ),
        )
        .await?;
    }
    tx.commit().await?;
    Ok(())
}
