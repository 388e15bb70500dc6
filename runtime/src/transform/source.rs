//! Reading one repository's mirrored rows as one ordered stream, and the transform's own
//! durable state (watermarks) in MySQL.
//!
//! Four cursors, one per table (issues, events, comments, reviews), each row joined to its issue (so the filters know the
//! issue's author and kind), each ordered as its `(repository, created_at)` index already
//! is (events, comments; issues are sorted, without bodies), merged here by [`Key`]. The
//! order is total and the same on every run, which the original's two racing channels
//! never were (spec 9.5, 9.8), and the server never sorts the big tables: a single
//! `UNION ALL ... ORDER BY` made MariaDB sort a million rows with their bodies first.
//!
//! Events whose name no metric can match (`referenced`, `subscribed`, ...) are left out on
//! the server: they can neither produce a point nor change a state.

use std::collections::BTreeMap;

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Pool, Row, Value};

use velodrome_model::metric::Marks;

use super::engine::{Item, Key, Kind};
use crate::db::{DbError, UtcTime};

/// The event names a metric can match; other events are never read.
const USEFUL_EVENTS: &str =
    "'closed','reopened','merged','labeled','unlabeled','opened','commented'";

/// Seconds since the epoch of a DATETIME column, independent of the session time zone.
fn seconds(column: &str) -> String {
    format!("TIMESTAMPDIFF(SECOND, '1970-01-01 00:00:00', {column})")
}

/// The condition "this table's key > after" for a table whose rows all have `class`.
/// `sub` is the column that orders the two comment kinds of one id (`pull_request`).
fn after_condition(time: &str, id: &str, class: u8, sub: Option<&str>, after: Key) -> String {
    let after_class = after.kind.class();
    if class > after_class {
        format!(" AND {time} >= :after_t")
    } else if class < after_class {
        format!(" AND {time} > :after_t")
    } else {
        let tie = match sub {
            Some(sub) => format!("({id} > :after_id OR ({id} = :after_id AND {sub} > :after_sub))"),
            None => format!("{id} > :after_id"),
        };
        format!(" AND {time} >= :after_t AND ({time} > :after_t OR {tie})")
    }
}

fn issues_sql(after: Option<Key>) -> String {
    let condition = after.map_or(String::new(), |after| {
        after_condition("i.issue_created_at", "i.id", 0, None, after)
    });
    format!(
        "SELECT {t}, 0, i.id, i.id, i.is_pr, i.user, 'opened', NULL, i.user, '', FALSE,
                COALESCE(i.user_type = 'Bot', FALSE), COALESCE(i.user_type = 'Bot', FALSE)
           FROM issues i
          WHERE i.repository = :repo{condition}
          ORDER BY i.issue_created_at, i.id",
        t = seconds("i.issue_created_at")
    )
}

/// Events, each with whether it is a pull request's close without a `merged` in the same
/// second (the `closed-unmerged` mark; GitHub writes `merged` and `closed` together).
fn events_sql(after: Option<Key>) -> String {
    let condition = after.map_or(String::new(), |after| {
        after_condition("e.event_created_at", "e.id", 1, None, after)
    });
    format!(
        "SELECT {t}, 1, e.id, e.issue_id, i.is_pr, i.user, e.event, e.label, e.actor, '',
                e.event = 'closed' AND i.is_pr AND NOT EXISTS (
                    SELECT 1 FROM issue_events m
                     WHERE m.repository = e.repository AND m.issue_id = e.issue_id
                       AND m.event = 'merged' AND m.event_created_at = e.event_created_at),
                COALESCE(i.user_type = 'Bot', FALSE), COALESCE(e.actor_type = 'Bot', FALSE)
           FROM issue_events e
           STRAIGHT_JOIN issues i ON i.repository = e.repository AND i.id = e.issue_id
          WHERE e.repository = :repo AND e.event IN ({USEFUL_EVENTS}){condition}
          ORDER BY e.event_created_at, e.id",
        t = seconds("e.event_created_at")
    )
}

fn comments_sql(after: Option<Key>, bodies: bool) -> String {
    let condition = after.map_or(String::new(), |after| {
        after_condition(
            "c.comment_created_at",
            "c.id",
            2,
            Some("c.pull_request"),
            after,
        )
    });
    let body = if bodies { "c.body" } else { "''" };
    format!(
        "SELECT {t}, IF(c.pull_request, 3, 2), c.id, c.issue_id, i.is_pr, i.user,
                'commented', NULL, c.user, {body}, FALSE,
                COALESCE(i.user_type = 'Bot', FALSE), COALESCE(c.user_type = 'Bot', FALSE)
           FROM comments c
           STRAIGHT_JOIN issues i ON i.repository = c.repository AND i.id = c.issue_id
          WHERE c.repository = :repo{condition}
          ORDER BY c.comment_created_at, c.id, c.pull_request",
        t = seconds("c.comment_created_at")
    )
}

/// Submitted reviews as the event `reviewed`, labelled with the lower-case state.
fn reviews_sql(after: Option<Key>) -> String {
    let condition = after.map_or(String::new(), |after| {
        after_condition("r.submitted_at", "r.id", 3, None, after)
    });
    format!(
        "SELECT {t}, 4, r.id, r.issue_id, i.is_pr, i.user, 'reviewed', LOWER(r.state), r.user,
                '', FALSE, COALESCE(i.user_type = 'Bot', FALSE), COALESCE(r.user_type = 'Bot', FALSE)
           FROM reviews r
           STRAIGHT_JOIN issues i ON i.repository = r.repository AND i.id = r.issue_id
          WHERE r.repository = :repo AND r.submitted_at IS NOT NULL{condition}
          ORDER BY r.submitted_at, r.id",
        t = seconds("r.submitted_at")
    )
}

/// How many items of the stream are at or before `upto` (same rows, same order as the
/// cursors): compared with the count stored with a watermark, it reveals rows that
/// arrived late with older timestamps.
fn count_sql(by_day: bool) -> String {
    let class = "CASE WHEN s.kind IN (2, 3) THEN 2 WHEN s.kind = 4 THEN 3 ELSE s.kind END";
    let (select, group) = if by_day {
        (
            "SELECT TIMESTAMPDIFF(SECOND, '1970-01-01 00:00:00', s.t) DIV 86400 AS day, COUNT(*)",
            " GROUP BY day ORDER BY day",
        )
    } else {
        ("SELECT COUNT(*)", "")
    };
    format!(
        "{select} FROM (
            SELECT i.issue_created_at AS t, 0 AS kind, i.id AS id
              FROM issues i WHERE i.repository = :repo AND i.issue_created_at <= :upto_t
            UNION ALL
            SELECT e.event_created_at, 1, e.id
              FROM issue_events e
              JOIN issues i ON i.repository = e.repository AND i.id = e.issue_id
             WHERE e.repository = :repo AND e.event IN ({USEFUL_EVENTS})
               AND e.event_created_at <= :upto_t
            UNION ALL
            SELECT c.comment_created_at, IF(c.pull_request, 3, 2), c.id
              FROM comments c
              JOIN issues i ON i.repository = c.repository AND i.id = c.issue_id
             WHERE c.repository = :repo AND c.comment_created_at <= :upto_t
            UNION ALL
            SELECT r.submitted_at, 4, r.id
              FROM reviews r
              JOIN issues i ON i.repository = r.repository AND i.id = r.issue_id
             WHERE r.repository = :repo AND r.submitted_at IS NOT NULL
               AND r.submitted_at <= :upto_t
        ) s
        WHERE s.t < :upto_t OR ({class} < :upto_c OR ({class} = :upto_c
              AND (s.id < :upto_id OR (s.id = :upto_id AND s.kind <= :upto_k)))){group}"
    )
}

fn params(repository: &str, after: Option<Key>, upto: Option<Key>) -> mysql_async::Params {
    let mut named: Vec<(Vec<u8>, Value)> = vec![(b"repo".to_vec(), repository.into())];
    if let Some(key) = after {
        named.push((b"after_t".to_vec(), UtcTime(key.time).to_mysql()));
        named.push((b"after_id".to_vec(), key.id.into()));
        named.push((
            b"after_sub".to_vec(),
            u8::from(key.kind == Kind::ReviewComment).into(),
        ));
    }
    if let Some(key) = upto {
        named.push((b"upto_t".to_vec(), UtcTime(key.time).to_mysql()));
        named.push((b"upto_c".to_vec(), key.kind.class().into()));
        named.push((b"upto_k".to_vec(), (key.kind as u8).into()));
        named.push((b"upto_id".to_vec(), key.id.into()));
    }
    mysql_async::Params::Named(named.into_iter().collect())
}

/// One table's open result.
type Cursor<'a> = mysql_async::QueryResult<'a, 'static, mysql_async::BinaryProtocol>;

/// The cursors of a repository merged into one stream in [`Key`] order.
pub struct Items<'a> {
    cursors: Vec<Cursor<'a>>,
    heads: Vec<Option<Item>>,
}

/// Four connections for [`open_items`], taken from `pool`.
pub async fn connections(pool: &Pool) -> Result<[Conn; 4], DbError> {
    Ok([
        pool.get_conn().await?,
        pool.get_conn().await?,
        pool.get_conn().await?,
        pool.get_conn().await?,
    ])
}

/// Starts the stream of `repository` after `after` (everything when `None`) on the four
/// connections, with comment bodies only when some metric reads them.
pub async fn open_items<'a>(
    conns: &'a mut [Conn; 4],
    repository: &str,
    after: Option<Key>,
    bodies: bool,
) -> Result<Items<'a>, DbError> {
    let [issues, events, comments, reviews] = conns;
    let params = params(repository, after, None);
    let mut cursors = Vec::with_capacity(4);
    cursors.push(issues.exec_iter(issues_sql(after), params.clone()).await?);
    cursors.push(events.exec_iter(events_sql(after), params.clone()).await?);
    cursors.push(
        comments
            .exec_iter(comments_sql(after, bodies), params.clone())
            .await?,
    );
    cursors.push(reviews.exec_iter(reviews_sql(after), params).await?);
    let mut heads = Vec::with_capacity(4);
    for cursor in &mut cursors {
        heads.push(read(cursor).await?);
    }
    Ok(Items { cursors, heads })
}

async fn read(cursor: &mut Cursor<'_>) -> Result<Option<Item>, DbError> {
    match cursor.next().await? {
        Some(row) => decode(row).map(Some),
        None => Ok(None),
    }
}

/// The next item of an open stream, `None` at its end.
pub async fn next_item(items: &mut Items<'_>) -> Result<Option<Item>, DbError> {
    let mut best: Option<usize> = None;
    for (i, head) in items.heads.iter().enumerate() {
        if let Some(item) = head {
            let better = match best.and_then(|b| items.heads[b].as_ref()) {
                Some(current) => item.key < current.key,
                None => true,
            };
            if better {
                best = Some(i);
            }
        }
    }
    let Some(i) = best else {
        return Ok(None);
    };
    let next = read(&mut items.cursors[i]).await?;
    let item = std::mem::replace(&mut items.heads[i], next);
    if let (Some(item), Some(next)) = (&item, &items.heads[i])
        && next.key < item.key
    {
        return Err(DbError::Value(format!(
            "rows out of order: {:?} after {:?}",
            next.key, item.key
        )));
    }
    Ok(item)
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
        marks: Marks {
            responded: false,
            unmerged: column(&mut row, 10)?,
        },
        // GitHub's own word (`user.type` Bot); the annotator adds the config's patterns.
        author_is_bot: column(&mut row, 11)?,
        actor_is_bot: column(&mut row, 12)?,
    })
}

/// How many items of the stream are at or before `upto` (see [`count_sql`]).
pub async fn count_upto(pool: &Pool, repository: &str, upto: Key) -> Result<i64, DbError> {
    let mut conn = pool.get_conn().await?;
    let count: Option<i64> = conn
        .exec_first(count_sql(false), params(repository, None, Some(upto)))
        .await?;
    Ok(count.unwrap_or(0))
}

/// How many items the whole stream of `repository` holds now.
pub async fn count_all(pool: &Pool, repository: &str) -> Result<i64, DbError> {
    let last = Key {
        // 9999-12-31T23:59:59Z, the largest DATETIME.
        time: 253_402_300_799,
        kind: Kind::ReviewComment,
        id: i64::MAX,
    };
    count_upto(pool, repository, last).await
}

/// Items per UTC day (days since the epoch) at or before `upto`, as the stream is now.
pub async fn days_upto(
    pool: &Pool,
    repository: &str,
    upto: Key,
) -> Result<BTreeMap<i64, i64>, DbError> {
    let mut conn = pool.get_conn().await?;
    let rows: Vec<(i64, i64)> = conn
        .exec(count_sql(true), params(repository, None, Some(upto)))
        .await?;
    Ok(rows.into_iter().collect())
}

/// Items per day processed by the last complete round for `destination` (see
/// [`store_days`]).
pub async fn load_days(
    pool: &Pool,
    destination: &str,
    repository: &str,
) -> Result<BTreeMap<i64, i64>, DbError> {
    let mut conn = pool.get_conn().await?;
    let rows: Vec<(i64, i64)> = conn
        .exec(
            "SELECT day, items FROM transform_days WHERE destination = ? AND repository = ?",
            (destination, repository),
        )
        .await?;
    Ok(rows.into_iter().collect())
}

/// Replaces the stored items-per-day of `repository` for `destination`, writing only the
/// days that differ from `previous`. Compared later with [`days_upto`], it tells from
/// which day late rows changed the history, so only that tail is rewritten.
pub async fn store_days(
    pool: &Pool,
    destination: &str,
    repository: &str,
    previous: &BTreeMap<i64, i64>,
    days: &BTreeMap<i64, i64>,
) -> Result<(), DbError> {
    let changed: Vec<(i64, i64)> = days
        .iter()
        .filter(|(day, items)| previous.get(day) != Some(items))
        .map(|(d, n)| (*d, *n))
        .collect();
    let gone: Vec<i64> = previous
        .keys()
        .filter(|day| !days.contains_key(day))
        .copied()
        .collect();
    if changed.is_empty() && gone.is_empty() {
        return Ok(());
    }
    let mut conn = pool.get_conn().await?;
    let mut tx = conn
        .start_transaction(mysql_async::TxOpts::default())
        .await?;
    for day in gone {
        tx.exec_drop(
            "DELETE FROM transform_days WHERE destination = ? AND repository = ? AND day = ?",
            (destination, repository, day),
        )
        .await?;
    }
    for chunk in changed.chunks(500) {
        let values = vec!["(?, ?, ?, ?)"; chunk.len()].join(", ");
        let mut params: Vec<Value> = Vec::with_capacity(chunk.len() * 4);
        for (day, items) in chunk {
            params.extend([
                destination.into(),
                repository.into(),
                (*day).into(),
                (*items).into(),
            ]);
        }
        tx.exec_drop(
            format!(
                "INSERT INTO transform_days (destination, repository, day, items) VALUES {values}
                 ON DUPLICATE KEY UPDATE items = VALUES(items)"
            ),
            params,
        )
        .await?;
    }
    tx.commit().await?;
    Ok(())
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

/// Creates the watermark and day-count tables if missing (idempotent, so concurrent
/// starts are fine).
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
    conn.query_drop(
        "CREATE TABLE IF NOT EXISTS transform_days (
            destination VARCHAR(255) NOT NULL,
            repository VARCHAR(255) NOT NULL,
            day BIGINT NOT NULL,
            items BIGINT NOT NULL,
            PRIMARY KEY (destination, repository, day)
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
