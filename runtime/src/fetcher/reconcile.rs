//! The reconciliation sweep: what makes the mirror follow GitHub when GitHub forgets
//! (deleted comments, reviews and issues, transferred issues, items a walk could not see).
//!
//! The lists the fetcher walks only ever show what exists, so a deletion leaves nothing to
//! read. Once after the first complete round (the backfill) and then every
//! `--reconcile-every`, a sweep compares the repository as GitHub counts it with MySQL:
//!
//! 1. **Census** (`issues`, then `pulls`): GraphQL lists every issue and every pull request,
//!    100 per point, with its update time and the counts of its comments, timeline events,
//!    reviews and review comments ([`crate::github::census`]). Each page is compared with
//!    MySQL's counts for the same numbers; an item that disagrees gets a reason. Pages
//!    commit with the cursor, so a kill resumes at the next page.
//! 2. **Unlisted**: issues MySQL holds that GitHub did not list at all are marked too.
//! 3. **Re-read**: each marked issue is read again over REST, whole
//!    ([`super::reread`]), and MySQL's rows for it are replaced by GitHub's in one
//!    transaction that also logs the change (`sync_removals`, for the transform) and
//!    removes the mark. An issue GitHub answers 404 or 410 for, or that redirects to
//!    another repository, is removed with everything that hangs off it.
//!
//! What disagrees: a count lower on GitHub than in MySQL (something was deleted); a count
//! higher on GitHub, or another update time, on an item not updated since the issues
//! walk's mark (something the walks should have stored and did not: the next poll reads
//! an item that changed after the mark, so those are left to it); a number GitHub lists
//! and MySQL lacks, under the same condition; a pull request with more than 100 review
//! threads, whose review comments cannot be counted in the page (read again every sweep).

use std::time::{Duration, Instant};

use mysql_async::Value;
use mysql_async::prelude::Queryable;

use super::batch::{AfterTimeout, BatchSize};
use super::reread::Reread;
use super::sync::{RepoSync, RoundStats, SyncError};
use crate::db::replace::{self, Change, Stored};
use crate::db::{DbError, UtcTime};
use crate::github::GithubError;
use crate::github::census::{self, Item, Kind};
use crate::github::queries::stored_event_names;
use crate::progress::Progress;

/// True once `deadline` has passed.
fn past(deadline: Option<Instant>) -> bool {
    deadline.is_some_and(|d| Instant::now() >= d)
}

/// Marked issues read per selection from MySQL.
const REREAD_BATCH: usize = 100;

/// Where a sweep is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Issues,
    Pulls,
    Unlisted,
    Reread,
    Done,
}

impl Phase {
    fn as_str(self) -> &'static str {
        match self {
            Phase::Issues => "issues",
            Phase::Pulls => "pulls",
            Phase::Unlisted => "unlisted",
            Phase::Reread => "reread",
            Phase::Done => "done",
        }
    }

    fn parse(text: &str) -> Option<Phase> {
        [
            Phase::Issues,
            Phase::Pulls,
            Phase::Unlisted,
            Phase::Reread,
            Phase::Done,
        ]
        .into_iter()
        .find(|p| p.as_str() == text)
    }
}

/// The stored state of a sweep.
#[derive(Debug, Clone)]
struct Sweep {
    phase: Phase,
    after: Option<String>,
    /// The issues walk's mark when the sweep started: items updated later are the next
    /// poll's to read.
    mark: Option<UtcTime>,
}

/// Page size of the census: 100, or less with `VELODROME_RECONCILE_PAGE` (tests use it to
/// spread a small repository over many queries).
fn page_limit() -> usize {
    std::env::var("VELODROME_RECONCILE_PAGE")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(census::PAGE)
        .clamp(1, census::PAGE)
}

/// GitHub's counts of a listed item in one string (see [`Stored::signature`]), or `None`
/// when its review comments cannot be counted.
fn census_signature(item: &Item, kind: Kind) -> Option<String> {
    let review_comments = match kind {
        Kind::PullRequests => item.review_comments()?,
        Kind::Issues => 0,
    };
    Some(format!(
        "{}|{}|{}|{}|{}",
        item.updated_at.0,
        item.comments.total_count,
        item.timeline_items.total_count,
        item.reviews.map_or(0, |c| c.total_count),
        review_comments
    ))
}

/// Why a listed item must be read again, or `None` when GitHub and MySQL agree on it.
fn judge(
    item: &Item,
    kind: Kind,
    stored: Option<&Stored>,
    mark: Option<UtcTime>,
) -> Option<String> {
    // Not updated since the walk's mark: every change of it should be stored by now.
    let settled = mark.is_some_and(|m| item.updated_at <= m);
    let Some(stored) = stored else {
        return settled.then(|| "GitHub lists it, MySQL lacks it".to_owned());
    };
    let review_comments = match kind {
        Kind::PullRequests => match item.review_comments() {
            Some(n) => Some(n),
            None => return Some("more than 100 review threads: not countable".to_owned()),
        },
        Kind::Issues => None,
    };
    let counts = [
        ("comments", Some(item.comments.total_count), stored.comments),
        (
            "events",
            Some(item.timeline_items.total_count),
            stored.events,
        ),
        (
            "reviews",
            item.reviews.map(|c| c.total_count),
            stored.reviews,
        ),
        ("review comments", review_comments, stored.review_comments),
    ];
    for (what, github, mysql) in counts {
        let Some(github) = github else { continue };
        if github < mysql {
            return Some(format!("{} {what} fewer on GitHub", mysql - github));
        }
        if github > mysql && settled {
            return Some(format!("{} {what} missing", github - mysql));
        }
    }
    if settled && stored.updated_at != Some(item.updated_at) {
        return Some(format!(
            "stored update {} but GitHub's is {}",
            stored
                .updated_at
                .map_or("none".to_owned(), |t| t.to_string()),
            item.updated_at
        ));
    }
    None
}

impl RepoSync {
    /// Runs a sweep when one is due (never run, or the last finished at least `every`
    /// ago) or resumes the one a stop or a failure interrupted.
    ///
    /// With a `slice`, the sweep stops once it has worked that long (between two commits)
    /// and the next round continues it, so a long sweep does not hold the polls up.
    pub(super) async fn reconcile(
        &self,
        every: Duration,
        slice: Option<Duration>,
        stats: &mut RoundStats,
    ) -> Result<(), SyncError> {
        let Some(mut sweep) = self.sweep_to_run(every).await? else {
            return Ok(());
        };
        let deadline = slice.map(|s| Instant::now() + s);
        let points_before = self.points_spent();
        tracing::info!(repository = %self.key, phase = sweep.phase.as_str(), "reconciliation sweep");
        while sweep.phase != Phase::Done {
            if past(deadline) {
                tracing::info!(repository = %self.key, phase = sweep.phase.as_str(), "reconciliation sweep paused; the next round continues it");
                return Ok(());
            }
            match sweep.phase {
                Phase::Issues => {
                    self.census(Kind::Issues, &mut sweep, deadline, stats)
                        .await?
                }
                Phase::Pulls => {
                    self.census(Kind::PullRequests, &mut sweep, deadline, stats)
                        .await?
                }
                Phase::Unlisted => self.mark_unlisted(&mut sweep).await?,
                Phase::Reread => self.reread_marked(&mut sweep, deadline, stats).await?,
                Phase::Done => {}
            }
        }
        tracing::info!(
            repository = %self.key,
            listed = stats.swept,
            disagreeing = stats.disagreeing,
            reread = stats.reread,
            removed = stats.removed,
            graphql_points = self.points_spent().saturating_sub(points_before),
            "reconciliation sweep done"
        );
        Ok(())
    }

    fn points_spent(&self) -> u64 {
        self.client
            .stats
            .graphql_points
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The sweep to run now: the one in progress, a new one when due, or none.
    async fn sweep_to_run(&self, every: Duration) -> Result<Option<Sweep>, SyncError> {
        let mut conn = self.pool.get_conn().await?;
        let row: Option<(String, Option<String>, Value, bool)> = conn
            .exec_first(
                "SELECT phase, after_cursor, mark_at, finished_at IS NULL \
                 OR TIMESTAMPDIFF(SECOND, finished_at, UTC_TIMESTAMP()) >= ? \
                 FROM sync_sweeps WHERE repository = ?",
                (every.as_secs(), &self.key),
            )
            .await?;
        if let Some((phase, after, mark, due)) = row {
            let phase = Phase::parse(&phase)
                .ok_or_else(|| DbError::Value(format!("sweep phase {phase:?}")))?;
            if phase != Phase::Done {
                let mark = UtcTime::from_mysql(&mark).map_err(|e| DbError::Value(e.to_string()))?;
                return Ok(Some(Sweep { phase, after, mark }));
            }
            if !due {
                return Ok(None);
            }
        }
        let mark = crate::db::tables::load_cursor(&mut conn, &self.key, "issues")
            .await?
            .since;
        drop(conn);
        let (pool, key) = (&self.pool, &self.key);
        crate::db::retry_transient(key, "sweep start", move || async move {
            let mut tx = pool.start_transaction(crate::db::write_tx()).await?;
            tx.exec_drop("DELETE FROM sync_sweep_items WHERE repository = ?", (key,))
                .await?;
            tx.exec_drop(
                "INSERT INTO sync_sweeps (repository, phase, after_cursor, mark_at, started_at) \
                 VALUES (?, 'issues', NULL, ?, UTC_TIMESTAMP()) \
                 ON DUPLICATE KEY UPDATE phase = 'issues', after_cursor = NULL, \
                 mark_at = VALUES(mark_at), started_at = VALUES(started_at)",
                (key, mark.map_or(Value::NULL, UtcTime::to_mysql)),
            )
            .await?;
            tx.commit().await?;
            Ok::<(), SyncError>(())
        })
        .await?;
        Ok(Some(Sweep {
            phase: Phase::Issues,
            after: None,
            mark,
        }))
    }

    /// Reads one census list to its end, page by page, marking the items that disagree.
    async fn census(
        &self,
        kind: Kind,
        sweep: &mut Sweep,
        deadline: Option<Instant>,
        stats: &mut RoundStats,
    ) -> Result<(), SyncError> {
        let Some((owner, name)) = self.path.split_once('/') else {
            return Err(GithubError::Graphql {
                query: kind.name().into(),
                message: format!("repository {:?} is not owner/name", self.path),
            }
            .into());
        };
        let text = census::query(kind);
        let names = stored_event_names(kind == Kind::PullRequests);
        let mut size = BatchSize::new(page_limit());
        let mut progress = Progress::start(format!("{} {}", self.key, kind.name()));
        let mut done = 0u64;
        loop {
            self.check_stop()?;
            let vars = census::variables(kind, owner, name, size.get(), sweep.after.as_deref());
            let answer = match self.client.graphql(kind.name(), &text, &vars).await {
                Ok(answer) => answer,
                Err(GithubError::GraphqlTimeout { query, why }) => {
                    match size.timed_out(size.get(), self.client.config.max_attempts) {
                        AfterTimeout::Halved(smaller) => {
                            tracing::warn!(repository = %self.key, query, reason = %why, page = smaller, "GraphQL query timed out; halving the page");
                        }
                        AfterTimeout::Retry(attempt) => {
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
            if let Some(missing) = answer.not_found.first() {
                return Err(GithubError::Graphql {
                    query: kind.name().into(),
                    message: format!("repository not found: {}", missing.message),
                }
                .into());
            }
            let page = census::page(&answer.data).map_err(|message| GithubError::Graphql {
                query: kind.name().into(),
                message,
            })?;
            let items: Vec<&Item> = page.nodes.iter().flatten().collect();
            let numbers: Vec<i64> = items.iter().map(|i| i.number).collect();
            let mut conn = self.pool.get_conn().await?;
            let stored = replace::stored_counts(&mut conn, &self.key, &numbers, &names).await?;
            let accepted = accepted(&mut conn, &self.key, &numbers).await?;
            drop(conn);
            let verdicts: Vec<Verdict> = items
                .iter()
                .map(|i| {
                    let census = census_signature(i, kind);
                    let mut reason = judge(i, kind, stored.get(&i.number), sweep.mark);
                    // Read whole last time, and neither side has moved since: GitHub's two
                    // APIs disagree on it, and reading it again would change nothing.
                    if let (Some(census), Some(stored)) = (&census, stored.get(&i.number))
                        && accepted.get(&i.number) == Some(&(census.clone(), stored.signature()))
                    {
                        reason = None;
                    }
                    (i.number, reason, census)
                })
                .collect();
            stats.swept += verdicts.len() as u64;
            stats.disagreeing += verdicts.iter().filter(|v| v.1.is_some()).count() as u64;
            let info = &page.page_info;
            let after = info.end_cursor.clone().filter(|_| info.has_next_page);
            let phase = match (&after, kind) {
                (Some(_), _) => sweep.phase,
                (None, Kind::Issues) => Phase::Pulls,
                (None, Kind::PullRequests) => Phase::Unlisted,
            };
            let is_pr = kind == Kind::PullRequests;
            let (pool, key, verdicts, after_ref) = (&self.pool, &self.key, &verdicts, &after);
            crate::db::retry_transient(key, "census page", move || async move {
                let mut tx = pool.start_transaction(crate::db::write_tx()).await?;
                put_items(&mut tx, key, is_pr, true, verdicts).await?;
                tx.exec_drop(
                    "UPDATE sync_sweeps SET phase = ?, after_cursor = ? WHERE repository = ?",
                    (phase.as_str(), after_ref.as_deref(), key),
                )
                .await?;
                tx.commit().await?;
                Ok::<(), SyncError>(())
            })
            .await?;
            done += verdicts.len() as u64;
            progress.advance(done, None);
            sweep.after = after;
            sweep.phase = phase;
            if sweep.after.is_none() || past(deadline) {
                return Ok(());
            }
        }
    }

    /// Marks the issues MySQL holds that neither census list named.
    async fn mark_unlisted(&self, sweep: &mut Sweep) -> Result<(), SyncError> {
        let (pool, key) = (&self.pool, &self.key);
        crate::db::retry_transient(key, "unlisted issues", move || async move {
            let mut tx = pool.start_transaction(crate::db::write_tx()).await?;
            let unlisted: Vec<(i64, bool)> = tx
                .exec(
                    "SELECT i.id, i.is_pr FROM issues i LEFT JOIN sync_sweep_items s \
                     ON s.repository = i.repository AND s.issue_id = i.id \
                     WHERE i.repository = ? AND s.issue_id IS NULL",
                    (key,),
                )
                .await?;
            for prs in [false, true] {
                let chosen: Vec<Verdict> = unlisted
                    .iter()
                    .filter(|(_, is_pr)| *is_pr == prs)
                    .map(|(n, _)| {
                        let why = "GitHub does not list it in this repository".to_owned();
                        (*n, Some(why), None)
                    })
                    .collect();
                put_items(&mut tx, key, prs, false, &chosen).await?;
            }
            tx.exec_drop(
                "UPDATE sync_sweeps SET phase = 'reread', after_cursor = NULL WHERE repository = ?",
                (key,),
            )
            .await?;
            tx.commit().await?;
            Ok::<(), SyncError>(())
        })
        .await?;
        sweep.phase = Phase::Reread;
        Ok(())
    }

    /// Reads every marked issue again and replaces (or removes) it, one transaction each;
    /// then ends the sweep.
    async fn reread_marked(
        &self,
        sweep: &mut Sweep,
        deadline: Option<Instant>,
        stats: &mut RoundStats,
    ) -> Result<(), SyncError> {
        loop {
            let mut conn = self.pool.get_conn().await?;
            let marked: Vec<(i64, bool, bool, String, Option<String>)> = conn
                .exec(
                    format!(
                        "SELECT issue_id, is_pr, listed, reason, census FROM sync_sweep_items \
                         WHERE repository = ? AND reason IS NOT NULL ORDER BY issue_id \
                         LIMIT {REREAD_BATCH}"
                    ),
                    (&self.key,),
                )
                .await?;
            drop(conn);
            if marked.is_empty() {
                break;
            }
            for (number, is_pr, listed, why, census) in marked {
                self.check_stop()?;
                if past(deadline) {
                    return Ok(());
                }
                let outcome = self.reread(number, is_pr).await?;
                let reason = match &outcome {
                    Reread::Present(_) => format!("read again: {why}"),
                    Reread::Gone(gone) => gone.clone(),
                };
                let (pool, key, outcome_ref, reason_ref, census_ref) =
                    (&self.pool, &self.key, &outcome, &reason, &census);
                let change: Change =
                    crate::db::retry_transient(key, "issue reconciled", move || async move {
                        let mut tx = pool.start_transaction(crate::db::write_tx()).await?;
                        let change = match outcome_ref {
                            Reread::Present(rows) => {
                                let change =
                                    replace::replace_issue(&mut tx, key, number, rows).await?;
                                if let Some(census) = census_ref {
                                    remember(&mut tx, key, number, is_pr, census).await?;
                                }
                                change
                            }
                            Reread::Gone(_) => replace::remove_issue(&mut tx, key, number).await?,
                        };
                        replace::log_change(&mut tx, key, number, reason_ref, &change).await?;
                        tx.exec_drop(
                            "DELETE FROM sync_sweep_items WHERE repository = ? AND issue_id = ?",
                            (key, number),
                        )
                        .await?;
                        tx.commit().await?;
                        Ok::<Change, SyncError>(change)
                    })
                    .await?;
                match outcome {
                    Reread::Present(_) => {
                        stats.reread += 1;
                        if !listed {
                            tracing::warn!(repository = %self.key, issue = number, "GitHub's census left this issue out, yet it is here; kept");
                        }
                        tracing::info!(repository = %self.key, issue = number, why = %why, rows_removed = change.removed, rows_added = change.added, "issue read again and replaced");
                    }
                    Reread::Gone(gone) => {
                        stats.removed += 1;
                        tracing::warn!(repository = %self.key, issue = number, reason = %gone, rows_removed = change.removed, "issue removed from the mirror");
                    }
                }
            }
        }
        let (pool, key) = (&self.pool, &self.key);
        crate::db::retry_transient(key, "sweep end", move || async move {
            let mut tx = pool.start_transaction(crate::db::write_tx()).await?;
            tx.exec_drop("DELETE FROM sync_sweep_items WHERE repository = ?", (key,))
                .await?;
            tx.exec_drop(
                "UPDATE sync_sweeps SET phase = 'done', after_cursor = NULL, \
                 finished_at = UTC_TIMESTAMP() WHERE repository = ?",
                (key,),
            )
            .await?;
            tx.commit().await?;
            Ok::<(), SyncError>(())
        })
        .await?;
        sweep.phase = Phase::Done;
        Ok(())
    }
}

/// One census verdict: the number, why it must be read again (`None`: it agrees), and
/// GitHub's counts of it.
type Verdict = (i64, Option<String>, Option<String>);

/// Records census verdicts of issues of one kind.
async fn put_items<Q: Queryable>(
    tx: &mut Q,
    key: &str,
    is_pr: bool,
    listed: bool,
    verdicts: &[Verdict],
) -> Result<(), SyncError> {
    let text = |t: &Option<String>, max: usize| {
        t.as_deref().map_or(Value::NULL, |r| {
            Value::from(r.chars().take(max).collect::<String>())
        })
    };
    for chunk in verdicts.chunks(200) {
        let tuples = vec!["(?, ?, ?, ?, ?, ?)"; chunk.len()].join(",");
        let mut params: Vec<Value> = Vec::with_capacity(chunk.len() * 6);
        for (number, reason, census) in chunk {
            params.extend([
                key.into(),
                (*number).into(),
                is_pr.into(),
                listed.into(),
                text(reason, 255),
                text(census, 96),
            ]);
        }
        tx.exec_drop(
            format!(
                "INSERT INTO sync_sweep_items (repository, issue_id, is_pr, listed, reason, \
                 census) VALUES {tuples} ON DUPLICATE KEY UPDATE is_pr = VALUES(is_pr), \
                 listed = VALUES(listed), reason = VALUES(reason), census = VALUES(census)"
            ),
            params,
        )
        .await?;
    }
    Ok(())
}

/// Records GitHub's counts of issue `number` (`census`) and MySQL's now that it was read
/// whole, so an unchanged disagreement between GitHub's APIs is not read again.
async fn remember<Q: Queryable>(
    tx: &mut Q,
    key: &str,
    number: i64,
    is_pr: bool,
    census: &str,
) -> Result<(), SyncError> {
    let names = stored_event_names(is_pr);
    let stored = replace::stored_counts(tx, key, &[number], &names).await?;
    let stored = stored.get(&number).copied().unwrap_or_default();
    tx.exec_drop(
        "INSERT INTO sync_reconciled (repository, issue_id, census, stored) VALUES (?, ?, ?, ?) \
         ON DUPLICATE KEY UPDATE census = VALUES(census), stored = VALUES(stored)",
        (key, number, census, stored.signature()),
    )
    .await?;
    Ok(())
}

/// The counts recorded when the issues `numbers` were last read whole: (GitHub's, MySQL's
/// after the replacement).
async fn accepted<Q: Queryable>(
    conn: &mut Q,
    key: &str,
    numbers: &[i64],
) -> Result<std::collections::HashMap<i64, (String, String)>, SyncError> {
    if numbers.is_empty() {
        return Ok(Default::default());
    }
    let ids = numbers
        .iter()
        .map(i64::to_string)
        .collect::<Vec<_>>()
        .join(",");
    let rows: Vec<(i64, String, String)> = conn
        .exec(
            format!(
                "SELECT issue_id, census, stored FROM sync_reconciled \
                 WHERE repository = ? AND issue_id IN ({ids})"
            ),
            (key,),
        )
        .await?;
    Ok(rows.into_iter().map(|(n, c, s)| (n, (c, s))).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(json: serde_json::Value) -> Item {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn what_disagrees() {
        let t = |s| UtcTime::parse(s).unwrap();
        let mark = Some(t("2020-01-02T00:00:00Z"));
        let issue = item(
            serde_json::json!({"number": 1, "updatedAt": "2020-01-01T00:00:00Z",
            "comments": {"totalCount": 3}, "timelineItems": {"totalCount": 2}}),
        );
        let same = Stored {
            updated_at: Some(t("2020-01-01T00:00:00Z")),
            comments: 3,
            events: 2,
            ..Stored::default()
        };
        assert_eq!(judge(&issue, Kind::Issues, Some(&same), mark), None);
        let more = Stored {
            comments: 5,
            ..same
        };
        assert_eq!(
            judge(&issue, Kind::Issues, Some(&more), mark).as_deref(),
            Some("2 comments fewer on GitHub")
        );
        let fewer = Stored { events: 1, ..same };
        assert_eq!(
            judge(&issue, Kind::Issues, Some(&fewer), mark).as_deref(),
            Some("1 events missing")
        );
        // Updated after the mark: missing rows are the next poll's, deletions are not.
        let later = Some(t("2019-12-31T00:00:00Z"));
        assert_eq!(judge(&issue, Kind::Issues, Some(&fewer), later), None);
        assert!(judge(&issue, Kind::Issues, Some(&more), later).is_some());
        assert_eq!(judge(&issue, Kind::Issues, None, later), None);
        assert!(judge(&issue, Kind::Issues, None, mark).is_some());
        let stale = Stored {
            updated_at: Some(t("2019-01-01T00:00:00Z")),
            ..same
        };
        assert!(judge(&issue, Kind::Issues, Some(&stale), mark).is_some());
        let pull = item(
            serde_json::json!({"number": 3, "updatedAt": "2020-01-01T00:00:00Z",
            "comments": {"totalCount": 3}, "timelineItems": {"totalCount": 2},
            "reviews": {"totalCount": 1},
            "reviewThreads": {"pageInfo": {"hasNextPage": true}, "nodes": []}}),
        );
        assert!(
            judge(&pull, Kind::PullRequests, Some(&same), mark)
                .is_some_and(|r| r.contains("100 review threads"))
        );
        assert_eq!(Phase::parse("reread"), Some(Phase::Reread));
    }
}
