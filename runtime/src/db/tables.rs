//! Rows of the mirrored tables and the idempotent writes the fetcher makes.
//!
//! Writes are multi-row `INSERT ... ON DUPLICATE KEY UPDATE col = VALUES(col)`: one round
//! trip per chunk, and running the same page twice leaves the same rows. Callers pass an
//! open transaction so a page and its cursor commit together.

use mysql_async::prelude::Queryable;
use mysql_async::{Params, Value};

use super::{DbError, UtcTime};

/// Rows per multi-row statement: far below the 65,535 placeholder limit and small enough
/// for the default `max_allowed_packet` with large bodies.
const CHUNK: usize = 200;

/// One row of `issues`, with the issue's current label and assignee sets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssueRow {
    /// Issue or pull request number (the `id` column).
    pub number: i64,
    /// Title.
    pub title: String,
    /// Body; empty when GitHub sends null.
    pub body: String,
    /// Author login; empty when the user is gone.
    pub user: String,
    /// `open` or `closed` as GitHub says.
    pub state: String,
    /// GitHub's count of conversation comments.
    pub comments: i32,
    /// True for pull requests.
    pub is_pr: bool,
    /// When it was closed, if it is.
    pub closed_at: Option<UtcTime>,
    /// When it was opened.
    pub created_at: UtcTime,
    /// Last update; the `since` watermark of the issues endpoint.
    pub updated_at: UtcTime,
    /// Label names, the full current set.
    pub labels: Vec<String>,
    /// Assignee logins, the full current set.
    pub assignees: Vec<String>,
    /// GitHub's node ID (REST `node_id`), by which GraphQL reads the issue's timeline.
    pub node_id: Option<String>,
    /// The author's account type (`User`, `Bot`, `Organization`, `Mannequin`), so a bot
    /// is known as one whatever its login; `None` when unknown.
    pub user_type: Option<String>,
}

/// One row of `issue_events`.
///
/// An event's identity is its node ID (unique per repository), which REST (`node_id`) and
/// GraphQL (`id`) share; `id` is its database id, which REST gives and the node ID encodes
/// (see [`crate::github::node_id::event_id`]), so both reads give the same row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventRow {
    /// GitHub's event id (negative only for a node ID that encodes none).
    pub id: i64,
    /// GitHub's node ID; `None` only for rows written before node IDs were stored.
    pub node_id: Option<String>,
    /// Number of the issue the event belongs to.
    pub issue_id: i64,
    /// Event type, verbatim (`labeled`, `closed`, `merged`, ...).
    pub event: String,
    /// Label name of labeled/unlabeled events.
    pub label: Option<String>,
    /// Who did it; None for deleted users (`actor: null`).
    pub actor: Option<String>,
    /// Assignee of assigned/unassigned events.
    pub assignee: Option<String>,
    /// When it happened.
    pub created_at: UtcTime,
    /// The actor's account type (`User`, `Bot`, ...); `None` when unknown or no actor.
    pub actor_type: Option<String>,
}

/// One row of `comments`: an issue comment, or a review comment when `pull_request`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommentRow {
    /// GitHub's comment id (unique within its kind).
    pub id: i64,
    /// Number of the issue or pull request commented on.
    pub issue_id: i64,
    /// True for review (diff) comments.
    pub pull_request: bool,
    /// Body.
    pub body: String,
    /// Author login; empty when the user is gone.
    pub user: String,
    /// When it was written.
    pub created_at: UtcTime,
    /// Last edit; the `since` watermark of the comment endpoints.
    pub updated_at: UtcTime,
    /// The author's account type (`User`, `Bot`, ...); `None` when unknown.
    pub user_type: Option<String>,
}

fn opt_str(value: &Option<String>) -> Value {
    value
        .as_ref()
        .map_or(Value::NULL, |s| Value::from(s.as_str()))
}

fn opt_time(value: Option<UtcTime>) -> Value {
    value.map_or(Value::NULL, UtcTime::to_mysql)
}

/// Runs `INSERT <head> VALUES (..),(..) <tail>` over `rows` in chunks.
async fn insert_many<Q: Queryable, T>(
    conn: &mut Q,
    head: &str,
    width: usize,
    tail: &str,
    rows: &[T],
    mut bind: impl FnMut(&T, &mut Vec<Value>),
) -> Result<(), DbError> {
    let tuple = format!("({})", vec!["?"; width].join(","));
    for chunk in rows.chunks(CHUNK) {
        let mut sql =
            String::with_capacity(head.len() + tail.len() + chunk.len() * (tuple.len() + 1));
        sql.push_str(head);
        sql.push_str(" VALUES ");
        let mut values = Vec::with_capacity(chunk.len() * width);
        for (i, row) in chunk.iter().enumerate() {
            if i > 0 {
                sql.push(',');
            }
            sql.push_str(&tuple);
            bind(row, &mut values);
        }
        sql.push(' ');
        sql.push_str(tail);
        conn.exec_drop(sql, Params::Positional(values)).await?;
    }
    Ok(())
}

/// Upserts issues and replaces each one's label and assignee sets.
pub async fn upsert_issues<Q: Queryable>(
    conn: &mut Q,
    repository: &str,
    rows: &[IssueRow],
) -> Result<(), DbError> {
    if rows.is_empty() {
        return Ok(());
    }
    insert_many(
        conn,
        "INSERT INTO issues (repository, id, title, body, user, state, comments, is_pr, \
         issue_closed_at, issue_created_at, issue_updated_at, node_id, user_type)",
        13,
        "ON DUPLICATE KEY UPDATE title = VALUES(title), body = VALUES(body), \
         user = VALUES(user), state = VALUES(state), comments = VALUES(comments), \
         is_pr = VALUES(is_pr), issue_closed_at = VALUES(issue_closed_at), \
         issue_created_at = VALUES(issue_created_at), issue_updated_at = VALUES(issue_updated_at), \
         node_id = COALESCE(VALUES(node_id), node_id), user_type = VALUES(user_type)",
        rows,
        |r, v| {
            v.extend([
                Value::from(repository),
                Value::from(r.number),
                Value::from(r.title.as_str()),
                Value::from(r.body.as_str()),
                Value::from(r.user.as_str()),
                Value::from(r.state.as_str()),
                Value::from(r.comments),
                Value::from(r.is_pr),
                opt_time(r.closed_at),
                r.created_at.to_mysql(),
                r.updated_at.to_mysql(),
                opt_str(&r.node_id),
                opt_str(&r.user_type),
            ])
        },
    )
    .await?;
    for chunk in rows.chunks(CHUNK) {
        let ids = chunk
            .iter()
            .map(|r| r.number.to_string())
            .collect::<Vec<_>>()
            .join(",");
        for table in ["labels", "assignees"] {
            conn.exec_drop(
                format!("DELETE FROM {table} WHERE repository = ? AND issue_id IN ({ids})"),
                (repository,),
            )
            .await?;
        }
    }
    let mut labels = Vec::new();
    let mut assignees = Vec::new();
    for r in rows {
        let mut seen = std::collections::BTreeSet::new();
        labels.extend(
            r.labels
                .iter()
                .filter(|l| seen.insert(l.as_str()))
                .map(|l| (r.number, l)),
        );
        let mut seen = std::collections::BTreeSet::new();
        assignees.extend(
            r.assignees
                .iter()
                .filter(|a| seen.insert(a.as_str()))
                .map(|a| (r.number, a)),
        );
    }
    for (table, pairs) in [("labels", &labels), ("assignees", &assignees)] {
        insert_many(
            conn,
            &format!("INSERT INTO {table} (repository, issue_id, name)"),
            3,
            "ON DUPLICATE KEY UPDATE name = VALUES(name)",
            pairs,
            |(n, name), v| {
                v.extend([
                    Value::from(repository),
                    Value::from(*n),
                    Value::from(name.as_str()),
                ])
            },
        )
        .await?;
    }
    Ok(())
}

/// Upserts issue events (an event edited on GitHub is updated, never duplicated). A row
/// matches by id or by node ID, so an event read once by REST and once through GraphQL is
/// one row; a real (positive) id is never replaced by a derived (negative) one.
pub async fn upsert_events<Q: Queryable>(
    conn: &mut Q,
    repository: &str,
    rows: &[EventRow],
) -> Result<(), DbError> {
    insert_many(
        conn,
        "INSERT INTO issue_events (repository, id, node_id, issue_id, event, label, actor, \
         assignee, event_created_at, actor_type)",
        10,
        "ON DUPLICATE KEY UPDATE id = IF(VALUES(id) < 0 AND id > 0, id, VALUES(id)), \
         node_id = COALESCE(VALUES(node_id), node_id), issue_id = VALUES(issue_id), \
         event = VALUES(event), label = VALUES(label), actor = VALUES(actor), \
         assignee = VALUES(assignee), event_created_at = VALUES(event_created_at), \
         actor_type = VALUES(actor_type)",
        rows,
        |r, v| {
            v.extend([
                Value::from(repository),
                Value::from(r.id),
                opt_str(&r.node_id),
                Value::from(r.issue_id),
                Value::from(r.event.as_str()),
                opt_str(&r.label),
                opt_str(&r.actor),
                opt_str(&r.assignee),
                r.created_at.to_mysql(),
                opt_str(&r.actor_type),
            ])
        },
    )
    .await
}

/// Upserts comments of either kind; edits replace body and updated time.
pub async fn upsert_comments<Q: Queryable>(
    conn: &mut Q,
    repository: &str,
    rows: &[CommentRow],
) -> Result<(), DbError> {
    insert_many(
        conn,
        "INSERT INTO comments (repository, id, pull_request, issue_id, body, user, \
         comment_created_at, comment_updated_at, user_type)",
        9,
        "ON DUPLICATE KEY UPDATE issue_id = VALUES(issue_id), body = VALUES(body), \
         user = VALUES(user), comment_created_at = VALUES(comment_created_at), \
         comment_updated_at = VALUES(comment_updated_at), user_type = VALUES(user_type)",
        rows,
        |r, v| {
            v.extend([
                Value::from(repository),
                Value::from(r.id),
                Value::from(r.pull_request),
                Value::from(r.issue_id),
                Value::from(r.body.as_str()),
                Value::from(r.user.as_str()),
                r.created_at.to_mysql(),
                r.updated_at.to_mysql(),
                opt_str(&r.user_type),
            ])
        },
    )
    .await
}

/// One row of `reviews`: a submitted pull-request review.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReviewRow {
    /// The review's database id (`fullDatabaseId`; past 2^31 for recent reviews).
    pub id: i64,
    /// Its node ID.
    pub node_id: String,
    /// Number of the pull request reviewed.
    pub issue_id: i64,
    /// Author login; empty when the user is gone.
    pub user: String,
    /// `APPROVED`, `CHANGES_REQUESTED`, `COMMENTED` or `DISMISSED`.
    pub state: String,
    /// When it was submitted.
    pub submitted_at: Option<UtcTime>,
    /// Body; empty when there is none.
    pub body: String,
    /// The author's account type (`User`, `Bot`, ...); `None` when unknown.
    pub user_type: Option<String>,
}

/// Upserts reviews; a later read (a dismissal, an edit) replaces state and body.
pub async fn upsert_reviews<Q: Queryable>(
    conn: &mut Q,
    repository: &str,
    rows: &[ReviewRow],
) -> Result<(), DbError> {
    insert_many(
        conn,
        "INSERT INTO reviews (repository, id, node_id, issue_id, user, state, submitted_at, body, \
         user_type)",
        9,
        "ON DUPLICATE KEY UPDATE node_id = VALUES(node_id), issue_id = VALUES(issue_id), \
         user = VALUES(user), state = VALUES(state), submitted_at = VALUES(submitted_at), \
         body = VALUES(body), user_type = VALUES(user_type)",
        rows,
        |r, v| {
            v.extend([
                Value::from(repository),
                Value::from(r.id),
                Value::from(r.node_id.as_str()),
                Value::from(r.issue_id),
                Value::from(r.user.as_str()),
                Value::from(r.state.as_str()),
                opt_time(r.submitted_at),
                Value::from(r.body.as_str()),
                opt_str(&r.user_type),
            ])
        },
    )
    .await
}

/// Sync state of one repository and endpoint (a row of `sync_cursors`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cursor {
    /// `since` watermark for endpoints sorted by update time.
    pub since: Option<UtcTime>,
    /// ETag of the last response of the poll URL, sent as `If-None-Match`.
    pub etag: Option<String>,
    /// Page to resume a walk from, when one was interrupted.
    pub next_url: Option<String>,
    /// Newest event id the events feed has fully covered.
    pub mark_id: Option<i64>,
    /// Creation time of that event.
    pub mark_at: Option<UtcTime>,
    /// Newest event id of the walk in progress.
    pub walk_top_id: Option<i64>,
    /// Creation time of that event.
    pub walk_top_at: Option<UtcTime>,
}

fn time_at(row: &mysql_async::Row, i: usize) -> Result<Option<UtcTime>, DbError> {
    let value = row.as_ref(i).cloned().unwrap_or(Value::NULL);
    UtcTime::from_mysql(&value).map_err(|e| DbError::Value(e.to_string()))
}

/// Reads a cursor; a missing row is the default (start from the beginning).
pub async fn load_cursor<Q: Queryable>(
    conn: &mut Q,
    repository: &str,
    endpoint: &str,
) -> Result<Cursor, DbError> {
    let row: Option<mysql_async::Row> = conn
        .exec_first(
            "SELECT since_at, etag, next_url, mark_id, mark_at, walk_top_id, walk_top_at \
             FROM sync_cursors WHERE repository = ? AND endpoint = ?",
            (repository, endpoint),
        )
        .await?;
    let Some(row) = row else {
        return Ok(Cursor::default());
    };
    let text = |i: usize| -> Option<String> {
        row.get_opt::<Option<String>, _>(i)
            .and_then(Result::ok)
            .flatten()
    };
    let int = |i: usize| -> Option<i64> {
        row.get_opt::<Option<i64>, _>(i)
            .and_then(Result::ok)
            .flatten()
    };
    Ok(Cursor {
        since: time_at(&row, 0)?,
        etag: text(1),
        next_url: text(2),
        mark_id: int(3),
        mark_at: time_at(&row, 4)?,
        walk_top_id: int(5),
        walk_top_at: time_at(&row, 6)?,
    })
}

/// Writes a cursor (inside the transaction of the page it covers).
pub async fn save_cursor<Q: Queryable>(
    conn: &mut Q,
    repository: &str,
    endpoint: &str,
    cursor: &Cursor,
) -> Result<(), DbError> {
    conn.exec_drop(
        "INSERT INTO sync_cursors (repository, endpoint, since_at, etag, next_url, mark_id, \
         mark_at, walk_top_id, walk_top_at) VALUES (?,?,?,?,?,?,?,?,?) \
         ON DUPLICATE KEY UPDATE since_at = VALUES(since_at), etag = VALUES(etag), \
         next_url = VALUES(next_url), mark_id = VALUES(mark_id), mark_at = VALUES(mark_at), \
         walk_top_id = VALUES(walk_top_id), walk_top_at = VALUES(walk_top_at)",
        Params::Positional(vec![
            Value::from(repository),
            Value::from(endpoint),
            opt_time(cursor.since),
            opt_str(&cursor.etag),
            opt_str(&cursor.next_url),
            cursor.mark_id.map_or(Value::NULL, Value::from),
            opt_time(cursor.mark_at),
            cursor.walk_top_id.map_or(Value::NULL, Value::from),
            opt_time(cursor.walk_top_at),
        ]),
    )
    .await
    .map_err(DbError::from)
}
