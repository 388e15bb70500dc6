//! Histories and reviews through GraphQL, many issues per query.
//!
//! - Issues the events feed cannot reach (queued in `sync_event_backfill`) get their events
//!   from `timelineItems`: up to 100 issues per query, each one page of 100 items, at one
//!   point per query; an issue with more than one page comes back in a later batch with its
//!   cursor, so inner pages cost only for issues that have them. A pull request's timeline
//!   also carries its reviews, which dequeues it from `sync_review_queue`.
//! - Pull requests the issues walk saw change (queued in `sync_review_queue`) get their
//!   reviews from `reviews`, 100 pull requests per point. A quiet repository queues none
//!   and costs no point.
//!
//! Every answer commits as one page with the queue entries it moves on or removes, so a
//! kill resumes at the first unread page. A batch GitHub times out on (502/504) is halved
//! and sent again; the size grows back after a few good answers. An issue GraphQL cannot
//! resolve (`NOT_FOUND`: deleted, or transferred elsewhere) is skipped with one warning.

use std::collections::{HashMap, VecDeque};

use mysql_async::prelude::Queryable;

use super::batch::{AfterTimeout, BatchSize};
use super::sync::{RepoSync, RoundStats, SyncError};
use super::writer::{PageWrite, QueueOp, Writer};
use crate::db::tables::{EventRow, ReviewRow};
use crate::github::GithubError;
use crate::github::node_id;
use crate::github::queries::{self, Connection, Family, IssueNode, Item, MAX_BATCH};
use crate::progress::Progress;

/// Largest batch: [`MAX_BATCH`], or less with `VELODROME_GRAPHQL_BATCH` (tests use it to
/// spread a small backfill over many queries).
fn batch_limit() -> usize {
    std::env::var("VELODROME_GRAPHQL_BATCH")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(MAX_BATCH)
        .clamp(1, MAX_BATCH)
}

/// One queued issue or pull request.
#[derive(Debug, Clone)]
struct Pending {
    issue: i64,
    node_id: String,
    /// Where its next page starts (`None`: the first page).
    after: Option<String>,
}

/// A page of one issue as rows.
fn rows_of(
    family: Family,
    issue: i64,
    page: &Connection,
) -> Result<(Vec<EventRow>, Vec<ReviewRow>), String> {
    let mut events = Vec::new();
    let mut reviews = Vec::new();
    for item in page.nodes.iter().flatten() {
        if item.typename == "PullRequestReview" {
            if let Some(review) = review_row(issue, item)? {
                reviews.push(review);
            }
        } else if family != Family::PullRequestReviews
            && let Some(event) = event_row(issue, item)?
        {
            events.push(event);
        }
    }
    Ok((events, reviews))
}

fn event_row(issue: i64, item: &Item) -> Result<Option<EventRow>, String> {
    let Some(event) = queries::rest_event_name(&item.typename) else {
        return Ok(None);
    };
    let (Some(id), Some(created_at)) = (&item.id, item.created_at) else {
        return Err(format!("a {} without id or createdAt", item.typename));
    };
    Ok(Some(EventRow {
        id: node_id::event_id(id),
        node_id: Some(id.clone()),
        issue_id: issue,
        event,
        label: item.label.as_ref().and_then(|l| l.name.clone()),
        actor: item.actor.as_ref().and_then(|a| a.login.clone()),
        assignee: item.assignee.as_ref().and_then(|a| a.login.clone()),
        created_at,
        actor_type: item.actor.as_ref().and_then(|a| a.typename.clone()),
    }))
}

fn review_row(issue: i64, item: &Item) -> Result<Option<ReviewRow>, String> {
    let state = item.state.clone().unwrap_or_default();
    if !queries::REVIEW_STATES.contains(&state.as_str()) {
        return Ok(None); // a draft (PENDING) only its author sees
    }
    let Some(node) = &item.id else {
        return Err("a review without id".into());
    };
    let id = match &item.full_database_id {
        Some(text) => text
            .parse::<i64>()
            .map_err(|_| format!("review {node}: fullDatabaseId {text:?} is not an integer"))?,
        None => node_id::event_id(node),
    };
    Ok(Some(ReviewRow {
        id,
        node_id: node.clone(),
        issue_id: issue,
        user: item
            .author
            .as_ref()
            .and_then(|a| a.login.clone())
            .unwrap_or_default(),
        state,
        submitted_at: item.submitted_at,
        body: item.body.clone().unwrap_or_default(),
        user_type: item.author.as_ref().and_then(|a| a.typename.clone()),
    }))
}

impl RepoSync {
    /// Reads the histories of every queued issue: through GraphQL timelines when its node
    /// ID is known, else through per-issue REST event pages.
    pub(super) async fn read_histories(&self, stats: &mut RoundStats) -> Result<(), SyncError> {
        let mut conn = self.pool.get_conn().await?;
        let queued: Vec<(i64, String, bool, Option<String>)> = conn
            .exec(
                "SELECT b.issue_id, i.node_id, i.is_pr, b.timeline_after FROM sync_event_backfill b \
                 JOIN issues i ON i.repository = b.repository AND i.id = b.issue_id \
                 WHERE b.repository = ? AND i.node_id IS NOT NULL ORDER BY b.issue_id",
                (&self.key,),
            )
            .await?;
        drop(conn);
        let (mut issues, mut pulls) = (VecDeque::new(), VecDeque::new());
        for (issue, node_id, is_pr, after) in queued {
            let pending = Pending {
                issue,
                node_id,
                after,
            };
            if is_pr {
                pulls.push_back(pending);
            } else {
                issues.push_back(pending);
            }
        }
        self.drain(Family::IssueTimelines, issues, stats).await?;
        self.drain(Family::PullRequestTimelines, pulls, stats)
            .await?;
        self.backfill_events_rest(stats).await
    }

    /// Reads the reviews of every queued pull request.
    pub(super) async fn read_reviews(&self, stats: &mut RoundStats) -> Result<(), SyncError> {
        let mut conn = self.pool.get_conn().await?;
        let queued: Vec<(i64, Option<String>, Option<String>)> = conn
            .exec(
                "SELECT q.issue_id, i.node_id, q.after_cursor FROM sync_review_queue q \
                 LEFT JOIN issues i ON i.repository = q.repository AND i.id = q.issue_id \
                 WHERE q.repository = ? ORDER BY q.issue_id",
                (&self.key,),
            )
            .await?;
        let unknown: Vec<i64> = queued
            .iter()
            .filter(|q| q.1.is_none())
            .map(|q| q.0)
            .collect();
        if !unknown.is_empty() {
            // Cannot happen for rows the issues walk queued (they carry node IDs); guards
            // against a queue left by hand.
            tracing::warn!(repository = %self.key, count = unknown.len(), "pull requests without a node ID; their reviews cannot be read");
            for issue in unknown {
                conn.exec_drop(
                    "DELETE FROM sync_review_queue WHERE repository = ? AND issue_id = ?",
                    (&self.key, issue),
                )
                .await?;
            }
        }
        drop(conn);
        let pending = queued
            .into_iter()
            .filter_map(|(issue, node_id, after)| {
                Some(Pending {
                    issue,
                    node_id: node_id?,
                    after,
                })
            })
            .collect();
        self.drain(Family::PullRequestReviews, pending, stats).await
    }

    /// Sends batches of `family` until every pending item has its last page committed.
    async fn drain(
        &self,
        family: Family,
        pending: VecDeque<Pending>,
        stats: &mut RoundStats,
    ) -> Result<(), SyncError> {
        if pending.is_empty() {
            return Ok(());
        }
        let mut writer = Writer::spawn(self.pool.clone(), self.key.clone());
        let read = self.drain_with(family, pending, stats, &mut writer).await;
        let flushed = writer.finish().await;
        read.and(flushed)
    }

    async fn drain_with(
        &self,
        family: Family,
        mut pending: VecDeque<Pending>,
        stats: &mut RoundStats,
        writer: &mut Writer,
    ) -> Result<(), SyncError> {
        let mut size = BatchSize::new(batch_limit());
        let total = pending.len() as f64;
        let (mut finished, mut items) = (0u64, 0u64);
        let mut progress = Progress::start(format!("{} {}", self.key, family.name()));
        let endpoint = match family {
            Family::PullRequestReviews => "reviews",
            _ => "timelines",
        };
        while !pending.is_empty() {
            self.check_stop()?;
            let take = size.get().min(pending.len());
            let batch: Vec<Pending> = pending.drain(..take).collect();
            let ids: Vec<(String, Option<String>)> = batch
                .iter()
                .map(|p| (p.node_id.clone(), p.after.clone()))
                .collect();
            let text = queries::query(family, batch.len());
            let vars = queries::variables(family, &ids);
            let answer = match self.client.graphql(family.name(), &text, &vars).await {
                Ok(answer) => answer,
                Err(GithubError::GraphqlTimeout { query, why }) => {
                    for p in batch.into_iter().rev() {
                        pending.push_front(p);
                    }
                    match size.timed_out(take, self.client.config.max_attempts) {
                        AfterTimeout::Halved(smaller) => {
                            tracing::warn!(repository = %self.key, query, reason = %why, batch = smaller, "GraphQL query timed out; halving the batch");
                        }
                        AfterTimeout::Retry(attempt) => {
                            tracing::warn!(repository = %self.key, query, reason = %why, "GraphQL query of one item timed out; sending it again");
                            self.pause(self.client.backoff(attempt)).await?;
                        }
                        AfterTimeout::GiveUp => {
                            return Err(GithubError::GraphqlTimeout { query, why }.into());
                        }
                    }
                    continue;
                }
                Err(err) => return Err(err.into()),
            };
            size.answered();
            let missing: HashMap<&str, &str> = answer
                .not_found
                .iter()
                .filter_map(|n| Some((n.alias.as_deref()?, n.message.as_str())))
                .collect();
            tracing::debug!(repository = %self.key, query = family.name(), batch = take, cost = answer.cost, "GraphQL answer");
            let mut page = PageWrite::new(endpoint);
            for (i, p) in batch.into_iter().enumerate() {
                let alias = format!("n{i}");
                let node = match answer.data.get(&alias) {
                    None | Some(serde_json::Value::Null) => None,
                    Some(value) => Some(
                        serde_json::from_value::<IssueNode>(value.clone()).map_err(|err| {
                            GithubError::Graphql {
                                query: family.name().into(),
                                message: format!("cannot decode {alias}: {err}"),
                            }
                        })?,
                    ),
                };
                let connection = node
                    .as_ref()
                    .filter(|n| n.number == Some(p.issue))
                    .and_then(|n| n.page(family));
                let after = match connection {
                    None => {
                        let why = match (missing.get(alias.as_str()), &node) {
                            (Some(message), _) => {
                                format!("not found (deleted or transferred): {message}")
                            }
                            (None, Some(n)) => format!(
                                "resolves to {} {:?}, not this one (transferred)",
                                n.typename, n.number
                            ),
                            (None, None) => "missing from the answer".to_owned(),
                        };
                        tracing::warn!(repository = %self.key, issue = p.issue, query = family.name(), "issue {why}; skipping it");
                        None
                    }
                    Some(connection) => {
                        let (events, reviews) =
                            rows_of(family, p.issue, connection).map_err(|message| {
                                GithubError::Graphql {
                                    query: family.name().into(),
                                    message: format!("issue {}: {message}", p.issue),
                                }
                            })?;
                        items += (events.len() + reviews.len()) as u64;
                        stats.events += events.len() as u64;
                        stats.reviews += reviews.len() as u64;
                        page.rows.events.extend(events);
                        page.rows.reviews.extend(reviews);
                        let info = &connection.page_info;
                        if info.has_next_page {
                            tracing::debug!(repository = %self.key, issue = p.issue, items = connection.total_count, "more than one page; the rest comes in later batches");
                        }
                        info.end_cursor.clone().filter(|_| info.has_next_page)
                    }
                };
                page.queue.push(match family {
                    Family::PullRequestReviews => QueueOp::Reviews {
                        issue: p.issue,
                        after: after.clone(),
                    },
                    _ => QueueOp::Timeline {
                        issue: p.issue,
                        after: after.clone(),
                        with_reviews: family == Family::PullRequestTimelines,
                    },
                });
                match after {
                    Some(after) => pending.push_back(Pending {
                        after: Some(after),
                        ..p
                    }),
                    None => {
                        finished += 1;
                        if family != Family::PullRequestReviews {
                            stats.backfilled_issues += 1;
                        }
                    }
                }
            }
            writer.send(page).await?;
            progress.advance(items, Some(finished as f64 / total));
        }
        Ok(())
    }
}
