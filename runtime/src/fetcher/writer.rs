//! The one page writer every source commits through: the rows of a fetched page and the
//! sync state that covers it (a list cursor, a queue entry moved on or removed) go into
//! MySQL in one transaction, in the background while the next page is fetched.

use mysql_async::Pool;
use mysql_async::prelude::Queryable;

use super::sync::SyncError;
use crate::db::UtcTime;
use crate::db::tables::{self, CommentRow, Cursor, EventRow, IssueRow, ReviewRow};

/// Rows of one page, of any table (most pages fill one or two).
#[derive(Debug, Default)]
pub(super) struct PageRows {
    /// `issues` rows, with their labels and assignees.
    pub issues: Vec<IssueRow>,
    /// `comments` rows.
    pub comments: Vec<CommentRow>,
    /// `issue_events` rows.
    pub events: Vec<EventRow>,
    /// `reviews` rows.
    pub reviews: Vec<ReviewRow>,
}

/// A change to one of the work queues, committed with the page it follows from.
#[derive(Debug)]
pub(super) enum QueueOp {
    /// Per-issue REST event pages: resume at `next`, or (`None`) the issue is done.
    RestEvents { issue: i64, next: Option<String> },
    /// A GraphQL timeline: resume after `after`, or (`None`) the issue is done, and with a
    /// pull request (`with_reviews`) its reviews too, since the timeline carried them.
    Timeline {
        issue: i64,
        after: Option<String>,
        with_reviews: bool,
    },
    /// A pull request's reviews: resume after `after`, or (`None`) done.
    Reviews { issue: i64, after: Option<String> },
    /// Pull requests the issues walk read, with their update times: those that are new or
    /// newer than the stored row changed (perhaps a review), so their reviews are queued.
    ReviewsWanted(Vec<(i64, UtcTime)>),
}

/// One fetched page and the sync state that covers it: they commit together.
#[derive(Debug)]
pub(super) struct PageWrite {
    /// The page's rows.
    pub rows: PageRows,
    /// The endpoint whose cursor `cursor` is.
    pub endpoint: &'static str,
    /// The endpoint's cursor after this page (list walks and the events feed).
    pub cursor: Option<Cursor>,
    /// Queue changes.
    pub queue: Vec<QueueOp>,
}

impl PageWrite {
    /// A page without a cursor (a queue drains instead).
    pub fn new(endpoint: &'static str) -> Self {
        PageWrite {
            rows: PageRows::default(),
            endpoint,
            cursor: None,
            queue: Vec::new(),
        }
    }
}

/// Most pages merged into one transaction.
const MAX_PAGES_PER_COMMIT: usize = 8;

/// Commits the rows of every page of a batch, the newest cursor of each endpoint and every
/// queue change in one transaction.
async fn commit_pages(pool: &Pool, key: &str, batch: &[PageWrite]) -> Result<(), SyncError> {
    let mut tx = pool.start_transaction(crate::db::write_tx()).await?;
    // Before the issues are upserted: which pull requests changed since they were stored.
    let mut changed = Vec::new();
    for page in batch {
        for op in &page.queue {
            if let QueueOp::ReviewsWanted(seen) = op {
                changed.extend(changed_since_stored(&mut tx, key, seen).await?);
            }
        }
    }
    for page in batch {
        let rows = &page.rows;
        tables::upsert_issues(&mut tx, key, &rows.issues).await?;
        tables::upsert_comments(&mut tx, key, &rows.comments).await?;
        tables::upsert_events(&mut tx, key, &rows.events).await?;
        tables::upsert_reviews(&mut tx, key, &rows.reviews).await?;
    }
    for (i, page) in batch.iter().enumerate() {
        let superseded = batch[i + 1..]
            .iter()
            .any(|p| p.endpoint == page.endpoint && p.cursor.is_some());
        if let Some(cursor) = page.cursor.as_ref().filter(|_| !superseded) {
            tables::save_cursor(&mut tx, key, page.endpoint, cursor).await?;
        }
        for op in &page.queue {
            apply(&mut tx, key, op).await?;
        }
    }
    queue_reviews(&mut tx, key, &changed).await?;
    tx.commit().await?;
    Ok(())
}

/// The pull requests of `seen` that are not stored yet or are stored with an older update
/// time: exactly those that changed since the last read, whatever the walk's mark.
async fn changed_since_stored<Q: Queryable>(
    tx: &mut Q,
    key: &str,
    seen: &[(i64, UtcTime)],
) -> Result<Vec<i64>, SyncError> {
    if seen.is_empty() {
        return Ok(Vec::new());
    }
    let ids = seen
        .iter()
        .map(|(n, _)| n.to_string())
        .collect::<Vec<_>>()
        .join(",");
    let stored: Vec<(i64, mysql_async::Value)> = tx
        .exec(
            format!(
                "SELECT id, issue_updated_at FROM issues WHERE repository = ? AND id IN ({ids})"
            ),
            (key,),
        )
        .await?;
    let mut known = std::collections::HashMap::new();
    for (id, at) in stored {
        let at = UtcTime::from_mysql(&at).map_err(|e| crate::db::DbError::Value(e.to_string()))?;
        known.insert(id, at);
    }
    Ok(seen
        .iter()
        .filter(|(n, at)| known.get(n).copied().flatten().is_none_or(|old| old < *at))
        .map(|(n, _)| *n)
        .collect())
}

/// Queues pull requests for their reviews; one queued again starts from the first page.
async fn queue_reviews<Q: Queryable>(
    tx: &mut Q,
    key: &str,
    issues: &[i64],
) -> Result<(), SyncError> {
    if issues.is_empty() {
        return Ok(());
    }
    let tuples = vec!["(?, ?)"; issues.len()].join(",");
    let mut params: Vec<mysql_async::Value> = Vec::with_capacity(issues.len() * 2);
    for issue in issues {
        params.push(key.into());
        params.push((*issue).into());
    }
    tx.exec_drop(
        format!(
            "INSERT INTO sync_review_queue (repository, issue_id) VALUES {tuples} \
             ON DUPLICATE KEY UPDATE after_cursor = NULL"
        ),
        params,
    )
    .await?;
    Ok(())
}

async fn apply<Q: Queryable>(tx: &mut Q, key: &str, op: &QueueOp) -> Result<(), SyncError> {
    match op {
        QueueOp::RestEvents {
            issue,
            next: Some(next),
        } => {
            tx.exec_drop(
                "UPDATE sync_event_backfill SET next_url = ? WHERE repository = ? AND issue_id = ?",
                (next, key, issue),
            )
            .await?
        }
        QueueOp::RestEvents { issue, next: None }
        | QueueOp::Timeline {
            issue, after: None, ..
        } => {
            tx.exec_drop(
                "DELETE FROM sync_event_backfill WHERE repository = ? AND issue_id = ?",
                (key, issue),
            )
            .await?
        }
        QueueOp::Timeline {
            issue,
            after: Some(after),
            ..
        } => {
            tx.exec_drop(
                "UPDATE sync_event_backfill SET timeline_after = ? \
                 WHERE repository = ? AND issue_id = ?",
                (after, key, issue),
            )
            .await?
        }
        QueueOp::Reviews {
            issue,
            after: Some(after),
        } => {
            tx.exec_drop(
                "UPDATE sync_review_queue SET after_cursor = ? WHERE repository = ? AND issue_id = ?",
                (after, key, issue),
            )
            .await?
        }
        QueueOp::Reviews { .. } | QueueOp::ReviewsWanted(_) => {}
    }
    match op {
        QueueOp::Reviews { issue, after: None }
        | QueueOp::Timeline {
            issue,
            after: None,
            with_reviews: true,
        } => {
            tx.exec_drop(
                "DELETE FROM sync_review_queue WHERE repository = ? AND issue_id = ?",
                (key, issue),
            )
            .await?
        }
        _ => {}
    }
    Ok(())
}

/// Commits pages in the background, in order, while the next page is being fetched, so a
/// walk costs about max(fetch, commit) per page instead of their sum. Pages that queue up
/// while a commit runs go into the next transaction together (rows of every page plus the
/// newest cursor), which is exactly as crash-safe as one transaction per page.
pub(super) struct Writer {
    sender: Option<tokio::sync::mpsc::Sender<PageWrite>>,
    handle: Option<tokio::task::JoinHandle<Result<(), SyncError>>>,
}

impl Writer {
    /// Starts the writer of repository `key`.
    pub fn spawn(pool: Pool, key: String) -> Self {
        let (sender, mut receiver) = tokio::sync::mpsc::channel::<PageWrite>(MAX_PAGES_PER_COMMIT);
        let handle = tokio::spawn(async move {
            while let Some(first) = receiver.recv().await {
                let mut batch = vec![first];
                while batch.len() < MAX_PAGES_PER_COMMIT {
                    match receiver.try_recv() {
                        Ok(page) => batch.push(page),
                        Err(_) => break,
                    }
                }
                crate::db::retry_transient(&key, "page commit", || {
                    commit_pages(&pool, &key, &batch)
                })
                .await?;
            }
            Ok(())
        });
        Writer {
            sender: Some(sender),
            handle: Some(handle),
        }
    }

    /// Queues a page; fails with the writer's error if an earlier commit failed.
    pub async fn send(&mut self, page: PageWrite) -> Result<(), SyncError> {
        let sent = match &self.sender {
            Some(sender) => sender.send(page).await.is_ok(),
            None => false,
        };
        if sent {
            return Ok(());
        }
        self.finish().await?;
        Err(SyncError::Writer("the page writer stopped".into()))
    }

    /// Waits until every queued page is committed.
    pub async fn finish(&mut self) -> Result<(), SyncError> {
        self.sender = None;
        match self.handle.take() {
            Some(handle) => handle.await.map_err(|e| SyncError::Writer(e.to_string()))?,
            None => Ok(()),
        }
    }
}
