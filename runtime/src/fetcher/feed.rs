//! The repository issue-events feed (REST), newest first down to the newest event already
//! stored, with a conditional first page so a quiet repository costs a 304. GitHub only
//! pages the feed so deep; when it ends before the mark, the issues it cannot cover are
//! queued for their histories ([`super::timelines`]). Issues stored before node IDs were
//! have their history read here instead, through per-issue REST event pages.

use mysql_async::prelude::Queryable;

use super::sync::{PER_PAGE, RepoSync, RoundStats, SyncError, login, user_type};
use super::writer::{PageWrite, QueueOp, Writer};
use crate::db::tables::{self, EventRow};
use crate::db::{DbError, UtcTime};
use crate::github::GithubError;
use crate::github::models::Event;
use crate::progress::{Progress, time_fraction};

/// Queued issues (`b`) that GraphQL cannot find: no node ID stored.
const WITHOUT_NODE_ID: &str = "LEFT JOIN issues i ON i.repository = b.repository AND i.id = b.issue_id \
     WHERE b.repository = ? AND i.node_id IS NULL";

/// An event of the feed or of per-issue pages as a row. Its node ID, when REST gives one,
/// is its identity; its REST id is the id.
pub(super) fn event_row(e: Event, issue_id: i64) -> EventRow {
    EventRow {
        actor_type: user_type(&e.actor),
        id: e.id,
        node_id: e.node_id,
        issue_id,
        event: e.event,
        label: e.label.and_then(|l| l.name),
        actor: login(e.actor),
        assignee: login(e.assignee),
        created_at: e.created_at,
    }
}

impl RepoSync {
    /// Walks the repository issue-events feed newest first until it reaches the newest
    /// event a previous walk covered. Pages commit as they come with the link to resume
    /// from; the coverage mark moves only when the walk completes. If the feed ends before
    /// reaching the mark (GitHub only serves recent history), the issues it could not cover
    /// are queued for per-issue event pages.
    pub(super) async fn sync_event_feed(&self, stats: &mut RoundStats) -> Result<(), SyncError> {
        let mut writer = Writer::spawn(self.pool.clone(), self.key.clone());
        let walked = self.walk_event_feed(stats, &mut writer).await;
        let flushed = writer.finish().await;
        walked.and(flushed)
    }

    async fn walk_event_feed(
        &self,
        stats: &mut RoundStats,
        writer: &mut Writer,
    ) -> Result<(), SyncError> {
        let endpoint = "issue_events";
        let mut conn = self.pool.get_conn().await?;
        let mut cursor = tables::load_cursor(&mut conn, &self.key, endpoint).await?;
        drop(conn);
        let first_url = self.client.url(&format!(
            "/repos/{}/issues/events?per_page={PER_PAGE}",
            self.path
        ));
        let mut url = cursor.next_url.clone().unwrap_or_else(|| first_url.clone());
        let mut progress = Progress::start(format!("{} {endpoint}", self.key));
        let mut done = 0u64;
        loop {
            self.check_stop()?;
            let fresh = cursor.next_url.is_none();
            let etag = if fresh { cursor.etag.clone() } else { None };
            let fetched = match self.fetch::<Event>(&url, etag.as_deref()).await {
                // GitHub caps how deep the feed pages ("pagination is limited for this
                // resource"): past the cap the feed is exhausted, like a last page.
                Err(GithubError::Status { status: 422, .. }) if !fresh => {
                    tracing::info!(repository = %self.key, url, "events feed pagination limit reached");
                    Some((Vec::new(), None, None))
                }
                other => other?,
            };
            let Some((items, new_etag, next)) = fetched else {
                tracing::debug!(repository = %self.key, endpoint, "not modified");
                return Ok(());
            };
            let mut rows = Vec::with_capacity(items.len());
            for e in items {
                let number =
                    e.issue
                        .as_ref()
                        .map(|i| i.number)
                        .ok_or_else(|| GithubError::Decode {
                            url: url.clone(),
                            message: format!("event {} has no issue", e.id),
                        })?;
                rows.push(event_row(e, number));
            }
            let mut next_cursor = cursor.clone();
            // `since` of the events cursor: the oldest event this walk has seen so far.
            let oldest = rows.iter().map(|r| r.created_at).min();
            next_cursor.since = if fresh {
                oldest
            } else {
                oldest.into_iter().chain(cursor.since).min()
            };
            if fresh {
                // A new walk: remember where it started and the ETag of its first page.
                let top = rows.iter().max_by_key(|r| r.id);
                next_cursor.walk_top_id = top.map(|r| r.id).or(cursor.mark_id);
                next_cursor.walk_top_at = top.map(|r| r.created_at).or(cursor.mark_at);
                next_cursor.etag = new_etag;
            }
            let reached = cursor
                .mark_id
                .is_some_and(|mark| rows.iter().any(|r| r.id <= mark));
            let complete = reached || next.is_none();
            stats.events += rows.len() as u64;
            done += rows.len() as u64;
            // Newest first, down to the mark: how far from the walk's top towards it.
            let fraction = match (next_cursor.walk_top_at, cursor.mark_at, next_cursor.since) {
                (Some(top), Some(mark), Some(oldest)) => time_fraction(-top.0, -oldest.0, -mark.0),
                _ => None,
            };
            progress.advance(done, fraction);
            if !complete {
                next_cursor.next_url = next.clone();
                let mut page = PageWrite::new(endpoint);
                page.rows.events = rows;
                page.cursor = Some(next_cursor.clone());
                writer.send(page).await?;
                cursor = next_cursor;
                match next {
                    Some(next) => url = next,
                    None => return Ok(()),
                }
                continue;
            }
            // The last page of the walk commits after every earlier one, with the mark.
            writer.finish().await?;
            // MySQL may roll this transaction back (deadlock): it runs again, whole, from
            // the same cursor.
            let (key, pool, rows, cursor) = (&self.key, &self.pool, &rows, &cursor);
            let walked = &next_cursor;
            return crate::db::retry_transient(key, "events feed commit", move || async move {
                let mut next_cursor = walked.clone();
                let mut tx = pool.start_transaction(crate::db::write_tx()).await?;
                tables::upsert_events(&mut tx, key, rows).await?;
                {
                    if !reached {
                        // The feed ran out before the mark: issues created before its oldest
                        // event (and touched since the mark) may have events it cannot show.
                        let floor = next_cursor.since;
                        let queued = tx
                            .exec_iter(
                                "INSERT IGNORE INTO sync_event_backfill (repository, issue_id) \
                                 SELECT repository, id FROM issues WHERE repository = ? \
                                 AND (? IS NULL OR issue_created_at < ?) \
                                 AND (? IS NULL OR issue_updated_at >= ?)",
                                (
                                    key,
                                    floor.map(UtcTime::to_mysql),
                                    floor.map(UtcTime::to_mysql),
                                    cursor.mark_at.map(UtcTime::to_mysql),
                                    cursor.mark_at.map(UtcTime::to_mysql),
                                ),
                            )
                            .await?
                            .affected_rows();
                        tracing::info!(repository = %key, queued, "events feed does not reach back far enough; reading the histories of older issues");
                        if next_cursor.walk_top_at.is_none() {
                            // No event at all: coverage is what the issues table says.
                            let newest: Option<mysql_async::Value> = tx
                                .exec_first(
                                    "SELECT MAX(issue_updated_at) FROM issues WHERE repository = ?",
                                    (key,),
                                )
                                .await?;
                            next_cursor.walk_top_at = newest
                                .as_ref()
                                .map(UtcTime::from_mysql)
                                .transpose()
                                .map_err(|e| DbError::Value(e.to_string()))?
                                .flatten();
                        }
                    }
                    next_cursor.mark_id = next_cursor.walk_top_id.or(cursor.mark_id);
                    next_cursor.mark_at = next_cursor.walk_top_at.or(cursor.mark_at);
                    next_cursor.walk_top_id = None;
                    next_cursor.walk_top_at = None;
                    next_cursor.next_url = None;
                }
                tables::save_cursor(&mut tx, key, endpoint, &next_cursor).await?;
                tx.commit().await?;
                Ok::<(), SyncError>(())
            })
            .await;
        }
    }

    /// Reads every event page of each queued issue that has no node ID (stored before node
    /// IDs were, so GraphQL cannot find it) over REST, oldest first, committing each page
    /// with the link to resume from, and dequeues the issue with its last page.
    pub(super) async fn backfill_events_rest(
        &self,
        stats: &mut RoundStats,
    ) -> Result<(), SyncError> {
        let mut conn = self.pool.get_conn().await?;
        let queued: Option<i64> = conn
            .exec_first(
                format!("SELECT COUNT(*) FROM sync_event_backfill b {WITHOUT_NODE_ID}"),
                (&self.key,),
            )
            .await?;
        drop(conn);
        let mut progress = Progress::start(format!("{} per-issue events", self.key));
        let total = queued.unwrap_or(0).max(1) as f64;
        loop {
            let mut conn = self.pool.get_conn().await?;
            let batch: Vec<(i64, Option<String>)> = conn
                .exec(
                    format!(
                        "SELECT b.issue_id, b.next_url FROM sync_event_backfill b \
                         {WITHOUT_NODE_ID} ORDER BY b.issue_id LIMIT 100"
                    ),
                    (&self.key,),
                )
                .await?;
            drop(conn);
            if batch.is_empty() {
                return Ok(());
            }
            // Pages commit in the background while the next one is fetched; the queue is
            // drained before the next batch is selected.
            let mut writer = Writer::spawn(self.pool.clone(), self.key.clone());
            let read = self
                .backfill_batch(batch, stats, &mut writer, &mut progress, total)
                .await;
            let flushed = writer.finish().await;
            read.and(flushed)?;
        }
    }

    async fn backfill_batch(
        &self,
        batch: Vec<(i64, Option<String>)>,
        stats: &mut RoundStats,
        writer: &mut Writer,
        progress: &mut Progress,
        total: f64,
    ) -> Result<(), SyncError> {
        for (number, next_url) in batch {
            let mut url = next_url.unwrap_or_else(|| {
                self.client.url(&format!(
                    "/repos/{}/issues/{number}/events?per_page={PER_PAGE}",
                    self.path
                ))
            });
            loop {
                self.check_stop()?;
                let page = match self.fetch::<Event>(&url, None).await {
                    Ok(page) => page,
                    Err(err) if err.is_gone() => {
                        tracing::warn!(repository = %self.key, issue = number, error = %err, "issue is gone; skipping its events");
                        None
                    }
                    Err(err) => return Err(err.into()),
                };
                let (rows, next) = match page {
                    Some((items, _, next)) => (
                        items
                            .into_iter()
                            .map(|e| event_row(e, number))
                            .collect::<Vec<_>>(),
                        next,
                    ),
                    None => (Vec::new(), None),
                };
                stats.events += rows.len() as u64;
                let mut page = PageWrite::new("issue_events_per_issue");
                page.rows.events = rows;
                page.queue.push(QueueOp::RestEvents {
                    issue: number,
                    next: next.clone(),
                });
                writer.send(page).await?;
                match next {
                    Some(next) => url = next,
                    None => break,
                }
            }
            stats.backfilled_issues += 1;
            progress.advance(
                stats.backfilled_issues,
                Some(stats.backfilled_issues as f64 / total),
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_event() {
        let e: Event = serde_json::from_str(
            r#"{"id":1,"event":"Event","label":{"name":"Label"},"assignee":{"login":"Assignee"},
                "actor":null,"created_at":"2000-01-01T19:30:00Z","node_id":"LE_x"}"#,
        )
        .unwrap();
        let row = event_row(e, 2);
        assert_eq!((row.issue_id, row.node_id.as_deref()), (2, Some("LE_x")));
        assert_eq!(
            (row.label.as_deref(), row.assignee.as_deref(), row.actor),
            (Some("Label"), Some("Assignee"), None)
        );
        assert!(serde_json::from_str::<Event>("{}").is_err());
    }
}
