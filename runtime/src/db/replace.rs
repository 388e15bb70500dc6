//! Replacing or removing everything MySQL holds about one issue, for the reconciliation
//! sweep: unlike the upserts of [`super::tables`], these writes also delete, so each one
//! records what it changed in `sync_removals` (the transform rewrites its points from the
//! earliest time it names). Callers pass the open transaction that also moves the sweep
//! on, so an issue is either as it was or as GitHub has it now, never half of each.

use std::collections::{BTreeSet, HashMap};

use mysql_async::Value;
use mysql_async::prelude::Queryable;

use super::tables::{self, CommentRow, EventRow, IssueRow, ReviewRow};
use super::{DbError, UtcTime};

/// Everything GitHub has about one issue, read in one go.
#[derive(Debug, Clone, Default)]
pub struct IssueRows {
    /// The issue row, with its labels and assignees.
    pub issue: Option<IssueRow>,
    /// Its comments of both kinds.
    pub comments: Vec<CommentRow>,
    /// Its events.
    pub events: Vec<EventRow>,
    /// Its submitted reviews.
    pub reviews: Vec<ReviewRow>,
}

/// What a replacement or removal changed: rows that left, rows that arrived (in the
/// stream tables: issues, comments, events, reviews), and the earliest time among them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Change {
    /// Rows deleted.
    pub removed: u64,
    /// Rows inserted that were not there.
    pub added: u64,
    /// The earliest creation (or submission) time of those rows.
    pub first_at: Option<UtcTime>,
}

impl Change {
    fn touch(&mut self, at: Option<UtcTime>, added: bool) {
        if added {
            self.added += 1;
        } else {
            self.removed += 1;
        }
        if let Some(at) = at {
            self.first_at = Some(self.first_at.map_or(at, |f| f.min(at)));
        }
    }

    /// True when no row came or went.
    pub fn is_empty(&self) -> bool {
        self.removed == 0 && self.added == 0
    }
}

fn time(value: &Value) -> Result<Option<UtcTime>, DbError> {
    UtcTime::from_mysql(value).map_err(|e| DbError::Value(e.to_string()))
}

/// Deletes rows of `table` by key columns, in chunks: `keys` are the values of `columns`.
async fn delete_keys<Q: Queryable>(
    tx: &mut Q,
    table: &str,
    repository: &str,
    columns: &[&str],
    keys: &[Vec<Value>],
) -> Result<(), DbError> {
    let tuple = format!("({})", vec!["?"; columns.len()].join(","));
    for chunk in keys.chunks(200) {
        let mut params: Vec<Value> = vec![repository.into()];
        for key in chunk {
            params.extend(key.iter().cloned());
        }
        tx.exec_drop(
            format!(
                "DELETE FROM {table} WHERE repository = ? AND ({}) IN ({})",
                columns.join(", "),
                vec![tuple.as_str(); chunk.len()].join(",")
            ),
            params,
        )
        .await?;
    }
    Ok(())
}

/// Makes issue `number` hold exactly `rows`: the issue upserted (labels and assignees
/// replaced), and its comments, events and reviews replaced by the given sets.
pub async fn replace_issue<Q: Queryable>(
    tx: &mut Q,
    repository: &str,
    number: i64,
    rows: &IssueRows,
) -> Result<Change, DbError> {
    let mut change = Change::default();
    let stored: Option<Value> = tx
        .exec_first(
            "SELECT issue_created_at FROM issues WHERE repository = ? AND id = ?",
            (repository, number),
        )
        .await?;
    if stored.is_none()
        && let Some(issue) = &rows.issue
    {
        change.touch(Some(issue.created_at), true);
    }

    let stored: Vec<(i64, bool, Value)> = tx
        .exec(
            "SELECT id, pull_request, comment_created_at FROM comments \
             WHERE repository = ? AND issue_id = ?",
            (repository, number),
        )
        .await?;
    let wanted: BTreeSet<(i64, bool)> = rows
        .comments
        .iter()
        .map(|c| (c.id, c.pull_request))
        .collect();
    let mut gone = Vec::new();
    let mut have = BTreeSet::new();
    for (id, pr, at) in stored {
        have.insert((id, pr));
        if !wanted.contains(&(id, pr)) {
            change.touch(time(&at)?, false);
            gone.push(vec![Value::from(id), Value::from(pr)]);
        }
    }
    for c in &rows.comments {
        if !have.contains(&(c.id, c.pull_request)) {
            change.touch(Some(c.created_at), true);
        }
    }
    delete_keys(tx, "comments", repository, &["id", "pull_request"], &gone).await?;

    // Events are one row per node ID (or per id for rows stored without one).
    let stored: Vec<(i64, Option<String>, Value)> = tx
        .exec(
            "SELECT id, node_id, event_created_at FROM issue_events \
             WHERE repository = ? AND issue_id = ?",
            (repository, number),
        )
        .await?;
    let ids: BTreeSet<i64> = rows.events.iter().map(|e| e.id).collect();
    let nodes: BTreeSet<&str> = rows
        .events
        .iter()
        .filter_map(|e| e.node_id.as_deref())
        .collect();
    let mut gone = Vec::new();
    let (mut have_ids, mut have_nodes) = (BTreeSet::new(), BTreeSet::new());
    for (id, node, at) in &stored {
        have_ids.insert(*id);
        if let Some(node) = node {
            have_nodes.insert(node.clone());
        }
        let kept = ids.contains(id) || node.as_deref().is_some_and(|n| nodes.contains(n));
        if !kept {
            change.touch(time(at)?, false);
            gone.push(vec![Value::from(*id)]);
        }
    }
    for e in &rows.events {
        let known =
            have_ids.contains(&e.id) || e.node_id.as_ref().is_some_and(|n| have_nodes.contains(n));
        if !known {
            change.touch(Some(e.created_at), true);
        }
    }
    delete_keys(tx, "issue_events", repository, &["id"], &gone).await?;

    let stored: Vec<(i64, Value)> = tx
        .exec(
            "SELECT id, submitted_at FROM reviews WHERE repository = ? AND issue_id = ?",
            (repository, number),
        )
        .await?;
    let wanted: BTreeSet<i64> = rows.reviews.iter().map(|r| r.id).collect();
    let mut gone = Vec::new();
    let mut have = BTreeSet::new();
    for (id, at) in stored {
        have.insert(id);
        if !wanted.contains(&id) {
            change.touch(time(&at)?, false);
            gone.push(vec![Value::from(id)]);
        }
    }
    for r in &rows.reviews {
        if !have.contains(&r.id) {
            change.touch(r.submitted_at, true);
        }
    }
    delete_keys(tx, "reviews", repository, &["id"], &gone).await?;

    if let Some(issue) = &rows.issue {
        tables::upsert_issues(tx, repository, std::slice::from_ref(issue)).await?;
    }
    tables::upsert_comments(tx, repository, &rows.comments).await?;
    tables::upsert_events(tx, repository, &rows.events).await?;
    tables::upsert_reviews(tx, repository, &rows.reviews).await?;
    // Its history and reviews are complete now: nothing left to queue for it.
    for queue in ["sync_event_backfill", "sync_review_queue"] {
        tx.exec_drop(
            format!("DELETE FROM {queue} WHERE repository = ? AND issue_id = ?"),
            (repository, number),
        )
        .await?;
    }
    Ok(change)
}

/// Removes issue `number` and everything that hangs off it (labels, assignees, comments,
/// events, reviews, queue entries).
pub async fn remove_issue<Q: Queryable>(
    tx: &mut Q,
    repository: &str,
    number: i64,
) -> Result<Change, DbError> {
    let mut change = Change::default();
    let times: Vec<Value> = tx
        .exec(
            "SELECT issue_created_at FROM issues WHERE repository = ? AND id = ? \
             UNION ALL SELECT comment_created_at FROM comments WHERE repository = ? AND issue_id = ? \
             UNION ALL SELECT event_created_at FROM issue_events WHERE repository = ? AND issue_id = ? \
             UNION ALL SELECT submitted_at FROM reviews WHERE repository = ? AND issue_id = ?",
            (
                repository, number, repository, number, repository, number, repository, number,
            ),
        )
        .await?;
    for at in &times {
        change.touch(time(at)?, false);
    }
    tx.exec_drop(
        "DELETE FROM issues WHERE repository = ? AND id = ?",
        (repository, number),
    )
    .await?;
    for table in [
        "labels",
        "assignees",
        "comments",
        "issue_events",
        "reviews",
        "sync_event_backfill",
        "sync_review_queue",
        "sync_reconciled",
    ] {
        tx.exec_drop(
            format!("DELETE FROM {table} WHERE repository = ? AND issue_id = ?"),
            (repository, number),
        )
        .await?;
    }
    Ok(change)
}

/// Records `change` to issue `number` in `sync_removals` (nothing when it changed nothing).
pub async fn log_change<Q: Queryable>(
    tx: &mut Q,
    repository: &str,
    number: i64,
    reason: &str,
    change: &Change,
) -> Result<(), DbError> {
    if change.is_empty() {
        return Ok(());
    }
    let reason: String = reason.chars().take(255).collect();
    tx.exec_drop(
        "INSERT INTO sync_removals (repository, issue_id, reason, first_at, rows_removed, \
         rows_added, logged_at) VALUES (?, ?, ?, ?, ?, ?, UTC_TIMESTAMP())",
        (
            repository,
            number,
            reason,
            change.first_at.map_or(Value::NULL, UtcTime::to_mysql),
            change.removed,
            change.added,
        ),
    )
    .await?;
    Ok(())
}

/// What MySQL holds about one issue, to compare with GitHub's counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stored {
    /// Its stored update time.
    pub updated_at: Option<UtcTime>,
    /// Conversation comments.
    pub comments: u64,
    /// Review comments.
    pub review_comments: u64,
    /// Events of the types a timeline holds.
    pub events: u64,
    /// Submitted reviews.
    pub reviews: u64,
}

impl Stored {
    /// Its counts in one string, to compare with the same counts later.
    pub fn signature(&self) -> String {
        format!(
            "{}|{}|{}|{}|{}",
            self.updated_at.map_or(0, |t| t.0),
            self.comments,
            self.events,
            self.reviews,
            self.review_comments
        )
    }
}

/// The stored counts of the issues `numbers` (those in MySQL), counting only events
/// named in `events`.
pub async fn stored_counts<Q: Queryable>(
    conn: &mut Q,
    repository: &str,
    numbers: &[i64],
    events: &[String],
) -> Result<HashMap<i64, Stored>, DbError> {
    let mut out: HashMap<i64, Stored> = HashMap::new();
    if numbers.is_empty() {
        return Ok(out);
    }
    let ids = numbers
        .iter()
        .map(i64::to_string)
        .collect::<Vec<_>>()
        .join(",");
    let rows: Vec<(i64, Value)> = conn
        .exec(
            format!(
                "SELECT id, issue_updated_at FROM issues WHERE repository = ? AND id IN ({ids})"
            ),
            (repository,),
        )
        .await?;
    for (id, at) in rows {
        out.insert(
            id,
            Stored {
                updated_at: time(&at)?,
                ..Stored::default()
            },
        );
    }
    let rows: Vec<(i64, bool, i64)> = conn
        .exec(
            format!(
                "SELECT issue_id, pull_request, COUNT(*) FROM comments \
                 WHERE repository = ? AND issue_id IN ({ids}) GROUP BY issue_id, pull_request"
            ),
            (repository,),
        )
        .await?;
    for (id, pr, n) in rows {
        if let Some(s) = out.get_mut(&id) {
            if pr {
                s.review_comments = n as u64;
            } else {
                s.comments = n as u64;
            }
        }
    }
    if !events.is_empty() {
        let names = vec!["?"; events.len()].join(",");
        let mut params: Vec<Value> = vec![repository.into()];
        params.extend(events.iter().map(|e| Value::from(e.as_str())));
        let rows: Vec<(i64, i64)> = conn
            .exec(
                format!(
                    "SELECT issue_id, COUNT(*) FROM issue_events WHERE repository = ? \
                     AND issue_id IN ({ids}) AND event IN ({names}) GROUP BY issue_id"
                ),
                params,
            )
            .await?;
        for (id, n) in rows {
            if let Some(s) = out.get_mut(&id) {
                s.events = n as u64;
            }
        }
    }
    let rows: Vec<(i64, i64)> = conn
        .exec(
            format!(
                "SELECT issue_id, COUNT(*) FROM reviews WHERE repository = ? \
                 AND issue_id IN ({ids}) GROUP BY issue_id"
            ),
            (repository,),
        )
        .await?;
    for (id, n) in rows {
        if let Some(s) = out.get_mut(&id) {
            s.reviews = n as u64;
        }
    }
    Ok(out)
}
