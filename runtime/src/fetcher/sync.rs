//! One repository's sync round, over four sources that each have a module and all commit
//! through the one page writer ([`super::writer`]):
//!
//! 1. [`super::lists`]: issues, issue comments and review comments, repository-wide lists
//!    walked newest update first down to the top of the last complete walk (REST, ETags);
//! 2. [`super::feed`]: the repository issue-events feed, newest first down to the newest
//!    event already stored; when it cannot reach that far back, it queues the older issues;
//! 3. [`super::timelines`]: the queued issues' histories through GraphQL timelines, 100
//!    issues per query (per-issue REST event pages only for issues without a node ID), and
//!    the reviews of the pull requests the issues walk saw change;
//! 4. [`super::reconcile`]: when due, the sweep that compares GitHub's counts with MySQL's
//!    and reads again, or removes, the issues that disagree.
//!
//! Every page commits in one transaction with the cursor or queue entry that covers it,
//! and every write is an idempotent upsert, so a kill at any moment followed by a restart
//! ends with exactly GitHub's rows.

use std::sync::Arc;

use mysql_async::Pool;
use serde::de::DeserializeOwned;

use crate::db::DbError;
use crate::github::{Client, Fetched, GithubError, models};
use crate::shutdown::Shutdown;

/// Items per page: GitHub's maximum.
pub const PER_PAGE: usize = 100;

/// How many times a page whose body cannot be decoded is fetched again before the round
/// fails (a proxy can truncate a body once; a persistent error is reported with its URL).
const DECODE_ATTEMPTS: u32 = 3;

/// A failed round of one repository.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// GitHub failed (the error carries the URL or the query name).
    #[error(transparent)]
    Github(#[from] GithubError),
    /// MySQL failed.
    #[error(transparent)]
    Db(#[from] DbError),
    /// The background page writer died.
    #[error("page writer: {0}")]
    Writer(String),
    /// A stop was requested; every page fetched so far is committed with its cursor.
    #[error("stopped on request")]
    Stopped,
}

impl SyncError {
    /// True when the round ended because a stop was requested, not because of a failure.
    pub fn is_stop(&self) -> bool {
        matches!(
            self,
            SyncError::Stopped | SyncError::Github(GithubError::Stopped { .. })
        )
    }
}

impl crate::db::Transient for SyncError {
    fn is_transient(&self) -> bool {
        matches!(self, SyncError::Db(err) if err.is_transient())
    }
}

impl From<mysql_async::Error> for SyncError {
    fn from(err: mysql_async::Error) -> Self {
        SyncError::Db(DbError::from(err))
    }
}

/// Counters of one round, for the log line that ends it.
#[derive(Debug, Default, Clone, Copy)]
pub struct RoundStats {
    /// Issue rows written.
    pub issues: u64,
    /// Comment rows written (both kinds).
    pub comments: u64,
    /// Event rows written.
    pub events: u64,
    /// Review rows written.
    pub reviews: u64,
    /// Issues whose history (timeline or per-issue event pages) was read.
    pub backfilled_issues: u64,
    /// Issues and pull requests a reconciliation sweep compared.
    pub swept: u64,
    /// Of those, the ones that disagreed with MySQL.
    pub disagreeing: u64,
    /// Issues read again and replaced by a sweep.
    pub reread: u64,
    /// Issues a sweep removed (deleted, or transferred to another repository).
    pub removed: u64,
    /// Items a walk's boundary check found that a shifting list had hidden.
    pub unhidden: u64,
}

/// Syncs one repository.
pub struct RepoSync {
    /// `owner/name` as given (used in URLs).
    pub(super) path: String,
    /// Lower-cased `owner/name`, the stored `repository` value.
    pub(super) key: String,
    pub(super) client: Arc<Client>,
    pub(super) pool: Pool,
    shutdown: Shutdown,
    /// How often a reconciliation sweep runs (`None`: never).
    reconcile_every: Option<std::time::Duration>,
    /// How long a round may sweep before it leaves the rest to the next (`None`: no limit).
    sweep_slice: Option<std::time::Duration>,
}

/// A decoded page: its content, ETag, next link, and the share of the walk done with it.
pub(super) type WalkPage<T> = (T, Option<String>, Option<String>, Option<f64>);

pub(super) fn decode<T: DeserializeOwned>(url: &str, body: &[u8]) -> Result<Vec<T>, GithubError> {
    serde_json::from_slice(body).map_err(|err| GithubError::Decode {
        url: url.to_owned(),
        message: err.to_string(),
    })
}

/// The login of an optional user (deleted users have none).
pub(super) fn login(user: Option<models::User>) -> Option<String> {
    user.and_then(|u| u.login)
}

/// The account type of an optional user (`User`, `Bot`, ...), `None` when unknown.
pub(super) fn user_type(user: &Option<models::User>) -> Option<String> {
    user.as_ref().and_then(|u| u.kind.clone())
}

impl RepoSync {
    /// A syncer for `repository` (`owner/name`) that stops between pages once `shutdown`
    /// is requested.
    pub fn new(
        path: &str,
        key: String,
        client: Arc<Client>,
        pool: Pool,
        shutdown: Shutdown,
    ) -> Self {
        RepoSync {
            path: path.to_owned(),
            key,
            client,
            pool,
            shutdown,
            reconcile_every: None,
            sweep_slice: None,
        }
    }

    /// Lets a round sweep for at most `slice`; the next round continues the sweep, so a
    /// looping fetcher keeps polling while a long sweep runs.
    pub fn sweeping_at_most(mut self, slice: std::time::Duration) -> Self {
        self.sweep_slice = Some(slice);
        self
    }

    /// Sweeps the repository for what GitHub forgot ([`super::reconcile`]) after the first
    /// complete round and then whenever the last sweep finished at least `every` ago.
    pub fn reconciling_every(mut self, every: std::time::Duration) -> Self {
        self.reconcile_every = Some(every);
        self
    }

    /// Fails with [`SyncError::Stopped`] once a stop is requested: called before each
    /// page is fetched, so the page in flight is the last one committed.
    pub(super) fn check_stop(&self) -> Result<(), SyncError> {
        if self.shutdown.requested() {
            Err(SyncError::Stopped)
        } else {
            Ok(())
        }
    }

    /// Waits `wait` unless a stop is requested first (then [`SyncError::Stopped`]).
    pub(super) async fn pause(&self, wait: std::time::Duration) -> Result<(), SyncError> {
        if self.shutdown.sleep(wait).await {
            Ok(())
        } else {
            Err(SyncError::Stopped)
        }
    }

    /// Runs one full round. An error leaves every committed page and cursor in place, so
    /// the next round resumes where this one stopped.
    pub async fn round(&self) -> Result<RoundStats, SyncError> {
        let mut stats = RoundStats::default();
        for kind in super::lists::ListKind::ALL {
            self.sync_list(kind, &mut stats).await?;
        }
        self.sync_event_feed(&mut stats).await?;
        self.read_histories(&mut stats).await?;
        self.read_reviews(&mut stats).await?;
        if let Some(every) = self.reconcile_every {
            self.reconcile(every, self.sweep_slice, &mut stats).await?;
        }
        Ok(stats)
    }

    /// GETs a page, fetching it again when the body does not decode; returns the decoded
    /// items with the ETag and next link, or `None` for 304.
    pub(super) async fn fetch<T: DeserializeOwned>(
        &self,
        url: &str,
        etag: Option<&str>,
    ) -> Result<Option<(Vec<T>, Option<String>, Option<String>)>, GithubError> {
        Ok(self
            .fetch_page(url, etag)
            .await?
            .map(|(items, etag, next, _)| (items, etag, next)))
    }

    /// [`Self::fetch`], also returning how far through its walk the page is (page number
    /// over the last page, from the `Link` header).
    pub(super) async fn fetch_page<T: DeserializeOwned>(
        &self,
        url: &str,
        etag: Option<&str>,
    ) -> Result<Option<WalkPage<Vec<T>>>, GithubError> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self.client.get(url, etag).await? {
                Fetched::NotModified => return Ok(None),
                Fetched::Page {
                    body,
                    etag,
                    next,
                    last_page,
                } => match decode::<T>(url, &body) {
                    Ok(items) => {
                        let this = crate::github::link::page_number(url).unwrap_or(1);
                        let fraction = match last_page {
                            Some(last) if last > 0 => Some(this as f64 / last as f64),
                            _ if next.is_none() => Some(1.0),
                            _ => None,
                        };
                        return Ok(Some((items, etag, next, fraction)));
                    }
                    Err(err) if attempt < DECODE_ATTEMPTS => {
                        tracing::warn!(repository = %self.key, error = %err, "malformed page, fetching it again");
                        tokio::time::sleep(std::time::Duration::from_millis(
                            200 * u64::from(attempt),
                        ))
                        .await;
                    }
                    Err(err) => return Err(err),
                },
            }
        }
    }
}
