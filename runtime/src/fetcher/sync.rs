//! One repository's sync round: issues, issue comments, review comments (repository-wide
//! lists, newest update first, down to the top of the last complete walk), the repository
//! issue-events feed (newest first, down to the newest event already stored), then
//! per-issue event pages only for issues the feed cannot reach.
//!
//! Every page commits in one transaction with the cursor that covers it, and every write is
//! an idempotent upsert, so a kill at any moment followed by a restart ends with exactly
//! GitHub's rows.

use std::sync::Arc;

use mysql_async::Pool;
use mysql_async::prelude::Queryable;
use serde::de::DeserializeOwned;

use crate::db::tables::{self, CommentRow, Cursor, EventRow, IssueRow};
use crate::db::{DbError, UtcTime};
use crate::github::models::{self, Comment, Event, Issue};
use crate::github::{Client, Fetched, GithubError};
use crate::progress::{Progress, time_fraction};
use crate::shutdown::Shutdown;

/// Items per page: GitHub's maximum.
pub const PER_PAGE: usize = 100;

/// How many times a page whose body cannot be decoded is fetched again before the round
/// fails (a proxy can truncate a body once; a persistent error is reported with its URL).
const DECODE_ATTEMPTS: u32 = 3;

/// A failed round of one repository.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// GitHub failed (the error carries the URL).
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

impl From<mysql_async::Error> for SyncError {
    fn from(err: mysql_async::Error) -> Self {
        SyncError::Db(DbError::from(err))
    }
}

/// The repository-wide lists sorted by update time.
#[derive(Debug, Clone, Copy)]
enum ListKind {
    Issues,
    IssueComments,
    ReviewComments,
}

impl ListKind {
    fn endpoint(self) -> &'static str {
        match self {
            ListKind::Issues => "issues",
            ListKind::IssueComments => "issue_comments",
            ListKind::ReviewComments => "review_comments",
        }
    }

    fn path(self) -> &'static str {
        match self {
            ListKind::Issues => "issues",
            ListKind::IssueComments => "issues/comments",
            ListKind::ReviewComments => "pulls/comments",
        }
    }
}

/// Rows decoded from one page of a list.
enum Rows {
    Issues(Vec<IssueRow>),
    Comments(Vec<CommentRow>),
}

impl Rows {
    fn len(&self) -> usize {
        match self {
            Rows::Issues(r) => r.len(),
            Rows::Comments(r) => r.len(),
        }
    }

    fn max_updated(&self) -> Option<UtcTime> {
        match self {
            Rows::Issues(r) => r.iter().map(|r| r.updated_at).max(),
            Rows::Comments(r) => r.iter().map(|r| r.updated_at).max(),
        }
    }

    fn min_updated(&self) -> Option<UtcTime> {
        match self {
            Rows::Issues(r) => r.iter().map(|r| r.updated_at).min(),
            Rows::Comments(r) => r.iter().map(|r| r.updated_at).min(),
        }
    }
}

impl From<Rows> for WriteRows {
    fn from(rows: Rows) -> Self {
        match rows {
            Rows::Issues(r) => WriteRows::Issues(r),
            Rows::Comments(r) => WriteRows::Comments(r),
        }
    }
}

impl RoundStats {
    fn count(&mut self, rows: &Rows) {
        match rows {
            Rows::Issues(r) => self.issues += r.len() as u64,
            Rows::Comments(r) => self.comments += r.len() as u64,
        }
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
    /// Issues whose per-issue event pages were read.
    pub backfilled_issues: u64,
}

/// Rows of one page, for the writer.
enum WriteRows {
    Issues(Vec<IssueRow>),
    Comments(Vec<CommentRow>),
    Events(Vec<EventRow>),
}

/// One fetched page and the sync state that covers it: they commit together.
struct PageWrite {
    rows: WriteRows,
    endpoint: &'static str,
    /// The endpoint's cursor after this page (list walks and the events feed).
    cursor: Option<Cursor>,
    /// Per-issue event pages: the issue and the page to resume from (`None`: done).
    backfill: Option<(i64, Option<String>)>,
}

impl PageWrite {
    /// A page of a repository-wide list with the cursor that covers it.
    fn list(kind: ListKind, rows: WriteRows, cursor: Cursor) -> Self {
        PageWrite {
            rows,
            endpoint: kind.endpoint(),
            cursor: Some(cursor),
            backfill: None,
        }
    }
}

/// Commits pages in the background, in order, while the next page is being fetched, so a
/// walk costs about max(fetch, commit) per page instead of their sum. Pages that queue up
/// while a commit runs go into the next transaction together (rows of every page plus the
/// newest cursor), which is exactly as crash-safe as one transaction per page.
struct Writer {
    sender: Option<tokio::sync::mpsc::Sender<PageWrite>>,
    handle: Option<tokio::task::JoinHandle<Result<(), SyncError>>>,
}

/// Most pages merged into one transaction.
const MAX_PAGES_PER_COMMIT: usize = 8;

/// Commits the rows of every page of a batch and the newest cursor of each endpoint in one
/// transaction (retried as a whole by the caller when MySQL rolls it back).
async fn commit_pages(pool: &Pool, key: &str, batch: &[PageWrite]) -> Result<(), SyncError> {
    let mut tx = pool.start_transaction(crate::db::write_tx()).await?;
    for page in batch {
        match &page.rows {
            WriteRows::Issues(r) => tables::upsert_issues(&mut tx, key, r).await?,
            WriteRows::Comments(r) => tables::upsert_comments(&mut tx, key, r).await?,
            WriteRows::Events(r) => tables::upsert_events(&mut tx, key, r).await?,
        }
    }
    for (i, page) in batch.iter().enumerate() {
        let superseded = batch[i + 1..]
            .iter()
            .any(|p| p.endpoint == page.endpoint && p.cursor.is_some());
        if let Some(cursor) = page.cursor.as_ref().filter(|_| !superseded) {
            tables::save_cursor(&mut tx, key, page.endpoint, cursor).await?;
        }
        match &page.backfill {
            Some((issue, Some(next))) => {
                tx.exec_drop(
                    "UPDATE sync_event_backfill SET next_url = ? \
                     WHERE repository = ? AND issue_id = ?",
                    (next, key, issue),
                )
                .await?
            }
            Some((issue, None)) => {
                tx.exec_drop(
                    "DELETE FROM sync_event_backfill WHERE repository = ? AND issue_id = ?",
                    (key, issue),
                )
                .await?
            }
            None => {}
        }
    }
    tx.commit().await?;
    Ok(())
}

impl Writer {
    fn spawn(pool: Pool, key: String) -> Self {
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
                let mut attempt = 0;
                loop {
                    attempt += 1;
                    match commit_pages(&pool, &key, &batch).await {
                        Err(SyncError::Db(err))
                            if err.is_transient() && attempt < crate::db::TRANSIENT_ATTEMPTS =>
                        {
                            tracing::warn!(repository = %key, attempt, error = %err, "page commit rolled back by MySQL; retrying");
                            tokio::time::sleep(std::time::Duration::from_millis(
                                50 * u64::from(attempt),
                            ))
                            .await;
                        }
                        other => break other?,
                    }
                }
            }
            Ok(())
        });
        Writer {
            sender: Some(sender),
            handle: Some(handle),
        }
    }

    /// Queues a page; fails with the writer's error if an earlier commit failed.
    async fn send(&mut self, page: PageWrite) -> Result<(), SyncError> {
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
    async fn finish(&mut self) -> Result<(), SyncError> {
        self.sender = None;
        match self.handle.take() {
            Some(handle) => handle.await.map_err(|e| SyncError::Writer(e.to_string()))?,
            None => Ok(()),
        }
    }
}

/// Syncs one repository.
pub struct RepoSync {
    /// `owner/name` as given (used in URLs).
    path: String,
    /// Lower-cased `owner/name`, the stored `repository` value.
    key: String,
    client: Arc<Client>,
    pool: Pool,
    shutdown: Shutdown,
}

/// A decoded page: its content, ETag, next link, and the share of the walk done with it.
type WalkPage<T> = (T, Option<String>, Option<String>, Option<f64>);

fn decode<T: DeserializeOwned>(url: &str, body: &[u8]) -> Result<Vec<T>, GithubError> {
    serde_json::from_slice(body).map_err(|err| GithubError::Decode {
        url: url.to_owned(),
        message: err.to_string(),
    })
}

fn login(user: Option<models::User>) -> Option<String> {
    user.and_then(|u| u.login)
}

fn issue_row(issue: Issue) -> IssueRow {
    IssueRow {
        number: issue.number,
        title: issue.title.unwrap_or_default(),
        body: issue.body.unwrap_or_default(),
        user: login(issue.user).unwrap_or_default(),
        state: issue.state,
        comments: issue.comments.unwrap_or(0),
        is_pr: issue.pull_request.is_some_and(|p| p.url.is_some()),
        closed_at: issue.closed_at,
        created_at: issue.created_at,
        updated_at: issue.updated_at,
        labels: issue
            .labels
            .into_iter()
            .flatten()
            .filter_map(|l| l.name)
            .collect(),
        assignees: issue
            .assignees
            .unwrap_or_default()
            .into_iter()
            .filter_map(login)
            .collect(),
    }
}

fn comment_row(url: &str, c: Comment, pull_request: bool) -> Result<CommentRow, GithubError> {
    let parent = if pull_request {
        &c.pull_request_url
    } else {
        &c.issue_url
    };
    let issue_id = parent
        .as_deref()
        .and_then(models::number_from_url)
        .ok_or_else(|| GithubError::Decode {
            url: url.to_owned(),
            message: format!(
                "comment {} has no parseable issue or pull request URL",
                c.id
            ),
        })?;
    Ok(CommentRow {
        id: c.id,
        issue_id,
        pull_request,
        body: c.body.unwrap_or_default(),
        user: login(c.user).unwrap_or_default(),
        created_at: c.created_at,
        updated_at: c.updated_at,
    })
}

fn event_row(e: Event, issue_id: i64) -> EventRow {
    EventRow {
        id: e.id,
        issue_id,
        event: e.event,
        label: e.label.and_then(|l| l.name),
        actor: login(e.actor),
        assignee: login(e.assignee),
        created_at: e.created_at,
    }
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
        }
    }

    /// Fails with [`SyncError::Stopped`] once a stop is requested: called before each
    /// page is fetched, so the page in flight is the last one committed.
    fn check_stop(&self) -> Result<(), SyncError> {
        if self.shutdown.requested() {
            Err(SyncError::Stopped)
        } else {
            Ok(())
        }
    }

    /// Runs one full round. An error leaves every committed page and cursor in place, so
    /// the next round resumes where this one stopped.
    pub async fn round(&self) -> Result<RoundStats, SyncError> {
        let mut stats = RoundStats::default();
        for kind in [
            ListKind::Issues,
            ListKind::IssueComments,
            ListKind::ReviewComments,
        ] {
            self.sync_list(kind, &mut stats).await?;
        }
        self.sync_event_feed(&mut stats).await?;
        self.backfill_events(&mut stats).await?;
        Ok(stats)
    }

    /// GETs a page, fetching it again when the body does not decode; returns the decoded
    /// items with the ETag and next link, or `None` for 304.
    async fn fetch<T: DeserializeOwned>(
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
    async fn fetch_page<T: DeserializeOwned>(
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

    /// Page 1 of a list, newest update first.
    fn list_url(&self, kind: ListKind) -> String {
        self.list_url_with(kind, "desc", None)
    }

    /// Page 1 of a list in `direction` of update time, from `since` on.
    fn list_url_with(&self, kind: ListKind, direction: &str, since: Option<UtcTime>) -> String {
        let mut query = format!("per_page={PER_PAGE}&sort=updated&direction={direction}");
        if matches!(kind, ListKind::Issues) {
            query.push_str("&state=all");
        }
        if let Some(since) = since {
            query.push_str(&format!("&since={since}"));
        }
        self.client
            .url(&format!("/repos/{}/{}?{query}", self.path, kind.path()))
    }

    /// Walks a list newest update first (see [`Self::walk_list`]).
    async fn sync_list(&self, kind: ListKind, stats: &mut RoundStats) -> Result<(), SyncError> {
        let mut writer = Writer::spawn(self.pool.clone(), self.key.clone());
        let walked = self.walk_list(kind, stats, &mut writer).await;
        let flushed = writer.finish().await;
        walked.and(flushed)
    }

    /// Fetches one list page as rows, or `None` for 304.
    async fn list_page(
        &self,
        kind: ListKind,
        url: &str,
        etag: Option<&str>,
    ) -> Result<Option<WalkPage<Rows>>, SyncError> {
        Ok(match kind {
            ListKind::Issues => {
                self.fetch_page::<Issue>(url, etag)
                    .await?
                    .map(|(items, e, n, f)| {
                        let rows = items.into_iter().map(issue_row).collect();
                        (Rows::Issues(rows), e, n, f)
                    })
            }
            ListKind::IssueComments | ListKind::ReviewComments => {
                let pr = matches!(kind, ListKind::ReviewComments);
                match self.fetch_page::<Comment>(url, etag).await? {
                    None => None,
                    Some((items, e, n, f)) => {
                        let rows = items
                            .into_iter()
                            .map(|c| comment_row(url, c, pr))
                            .collect::<Result<Vec<_>, _>>()?;
                        Some((Rows::Comments(rows), e, n, f))
                    }
                }
            }
        })
    }

    /// One walk of a list, newest update first, following `Link` pages (one request per
    /// 100 items) down to the newest update the last complete walk saw (its mark).
    ///
    /// - A walk starts at page 1 with the ETag of the last walk's page 1. Any change
    ///   anywhere (an edit, a new item) puts that item first, so page 1 changes: 304 means
    ///   nothing changed, for free.
    /// - An item edited mid-walk moves to the front: the pages shift by one towards the
    ///   end, so one item already read is read again, never one skipped. (Oldest first with
    ///   offset pages would hide an unread item at the next boundary instead.)
    /// - Every page commits with the link to resume from; the mark moves only when the
    ///   walk completes, so after a kill the walk resumes where it stopped.
    /// - GitHub refuses page numbers deep into a large list (422). The walk then reads what
    ///   is left, from the mark up to the oldest update it has read (the floor, kept in
    ///   `mark_at`), oldest first by `since` (see [`Self::walk_list_up`]).
    async fn walk_list(
        &self,
        kind: ListKind,
        stats: &mut RoundStats,
        writer: &mut Writer,
    ) -> Result<(), SyncError> {
        let mut conn = self.pool.get_conn().await?;
        let mut cursor = tables::load_cursor(&mut conn, &self.key, kind.endpoint()).await?;
        drop(conn);
        let mut url = cursor
            .next_url
            .clone()
            .unwrap_or_else(|| self.list_url(kind));
        if cursor.next_url.is_none() && cursor.walk_top_at.is_some() && cursor.mark_at.is_some() {
            return self.walk_list_up(kind, stats, writer, cursor).await;
        }
        let mut progress = Progress::start(format!("{} {}", self.key, kind.endpoint()));
        let mut done = 0u64;
        loop {
            self.check_stop()?;
            let fresh = cursor.next_url.is_none();
            let etag = if fresh { cursor.etag.clone() } else { None };
            let page = match self.list_page(kind, &url, etag.as_deref()).await {
                Err(SyncError::Github(GithubError::Status { status: 422, .. })) if !fresh => {
                    tracing::info!(repository = %self.key, endpoint = kind.endpoint(), url, "GitHub limits page numbers on this list; reading the older part by `since`");
                    let mut next_cursor = cursor.clone();
                    next_cursor.next_url = None;
                    let switch = WriteRows::Comments(Vec::new());
                    writer
                        .send(PageWrite::list(kind, switch, next_cursor.clone()))
                        .await?;
                    drop(progress);
                    return self.walk_list_up(kind, stats, writer, next_cursor).await;
                }
                other => other?,
            };
            let Some((rows, new_etag, next, page_share)) = page else {
                tracing::debug!(repository = %self.key, endpoint = kind.endpoint(), "not modified");
                return Ok(());
            };
            let mut next_cursor = cursor.clone();
            if fresh {
                // A new walk: its top becomes the mark when it completes, and page 1's
                // ETag is what the next poll sends.
                next_cursor.walk_top_at = rows.max_updated().or(cursor.since);
                next_cursor.etag = new_etag;
            }
            let oldest = rows.min_updated();
            // The floor: the oldest update this walk has read.
            next_cursor.mark_at = if fresh {
                oldest
            } else {
                oldest.into_iter().chain(cursor.mark_at).min()
            };
            // Strictly older than the mark: items updated within the mark's own second
            // after the last walk read it are still read.
            let reached = cursor
                .since
                .zip(oldest)
                .is_some_and(|(mark, oldest)| oldest < mark);
            let complete = reached || next.is_none();
            done += rows.len() as u64;
            // Down to the mark: how far through time; a first walk: how far through pages.
            let fraction = match (next_cursor.walk_top_at, cursor.since, oldest) {
                (Some(top), Some(mark), Some(oldest)) => time_fraction(-top.0, -oldest.0, -mark.0),
                _ => page_share,
            };
            progress.advance(done, fraction);
            if complete {
                next_cursor.since = next_cursor.walk_top_at.take();
                next_cursor.next_url = None;
                next_cursor.mark_at = None;
            } else {
                next_cursor.next_url = next.clone();
            }
            stats.count(&rows);
            writer
                .send(PageWrite::list(kind, rows.into(), next_cursor.clone()))
                .await?;
            cursor = next_cursor;
            match next {
                Some(next) if !complete => url = next,
                _ => return Ok(()),
            }
        }
    }

    /// The rest of a walk whose page numbers ran out: every item from the mark (`since`)
    /// up to the floor (`mark_at`), oldest first, each request page 1 with `since` = the
    /// newest update read so far (100 items cost 1 request per 99, and no page number
    /// grows). Edits during this part move items past the floor, never out of sight.
    async fn walk_list_up(
        &self,
        kind: ListKind,
        stats: &mut RoundStats,
        writer: &mut Writer,
        mut cursor: Cursor,
    ) -> Result<(), SyncError> {
        let floor = cursor.mark_at;
        let mut progress = Progress::start(format!("{} {} (by since)", self.key, kind.endpoint()));
        let (mut done, mut from) = (0u64, None);
        // A full page of one second cannot be passed by `since`: follow its link instead.
        let mut follow: Option<String> = None;
        loop {
            self.check_stop()?;
            let url = follow
                .clone()
                .unwrap_or_else(|| self.list_url_with(kind, "asc", cursor.since));
            let Some((rows, _, next, _)) = self.list_page(kind, &url, None).await? else {
                return Ok(());
            };
            let max = rows.max_updated();
            done += rows.len() as u64;
            let start = *from.get_or_insert_with(|| rows.min_updated());
            progress.advance(
                done,
                match (start, max, floor) {
                    (Some(a), Some(m), Some(f)) => time_fraction(a.0, m.0, f.0),
                    _ => None,
                },
            );
            let mut next_cursor = cursor.clone();
            // Past the floor, everything older has been read by one part or the other.
            let passed = max.zip(floor).is_some_and(|(m, f)| m > f);
            let exhausted = next.is_none() && rows.len() < PER_PAGE;
            let complete = if passed || exhausted {
                true
            } else if max > cursor.since {
                next_cursor.since = max;
                follow = None;
                false
            } else if next.is_some() {
                follow = next;
                false
            } else {
                true
            };
            if complete {
                next_cursor.since = next_cursor.walk_top_at.take();
                next_cursor.mark_at = None;
            }
            stats.count(&rows);
            writer
                .send(PageWrite::list(kind, rows.into(), next_cursor.clone()))
                .await?;
            cursor = next_cursor;
            if complete {
                return Ok(());
            }
        }
    }

    /// Walks the repository issue-events feed newest first until it reaches the newest
    /// event a previous walk covered. Pages commit as they come with the link to resume
    /// from; the coverage mark moves only when the walk completes. If the feed ends before
    /// reaching the mark (GitHub only serves recent history), the issues it could not cover
    /// are queued for per-issue event pages.
    async fn sync_event_feed(&self, stats: &mut RoundStats) -> Result<(), SyncError> {
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
                writer
                    .send(PageWrite {
                        rows: WriteRows::Events(rows),
                        endpoint,
                        cursor: Some(next_cursor.clone()),
                        backfill: None,
                    })
                    .await?;
                cursor = next_cursor;
                match next {
                    Some(next) => url = next,
                    None => return Ok(()),
                }
                continue;
            }
            // The last page of the walk commits after every earlier one, with the mark.
            writer.finish().await?;
            // MySQL may roll this transaction back (deadlock): run it again from the same
            // cursor, as a whole.
            let mut attempt = 0;
            loop {
                attempt += 1;
                let mut next_cursor = next_cursor.clone();
                let result: Result<(), SyncError> = async {
                let mut tx = self.pool.start_transaction(crate::db::write_tx()).await?;
                tables::upsert_events(&mut tx, &self.key, &rows).await?;
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
                                    &self.key,
                                    floor.map(UtcTime::to_mysql),
                                    floor.map(UtcTime::to_mysql),
                                    cursor.mark_at.map(UtcTime::to_mysql),
                                    cursor.mark_at.map(UtcTime::to_mysql),
                                ),
                            )
                            .await?
                            .affected_rows();
                        tracing::info!(repository = %self.key, queued, "events feed does not reach back far enough; reading per-issue events of older issues");
                        if next_cursor.walk_top_at.is_none() {
                            // No event at all: coverage is what the issues table says.
                            let newest: Option<mysql_async::Value> = tx
                                .exec_first(
                                    "SELECT MAX(issue_updated_at) FROM issues WHERE repository = ?",
                                    (&self.key,),
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
                tables::save_cursor(&mut tx, &self.key, endpoint, &next_cursor).await?;
                tx.commit().await?;
                    Ok(())
                }
                .await;
                match result {
                    Err(SyncError::Db(err))
                        if err.is_transient() && attempt < crate::db::TRANSIENT_ATTEMPTS =>
                    {
                        tracing::warn!(repository = %self.key, attempt, error = %err, "events commit rolled back by MySQL; retrying");
                        tokio::time::sleep(std::time::Duration::from_millis(
                            50 * u64::from(attempt),
                        ))
                        .await;
                    }
                    other => {
                        other?;
                        return Ok(());
                    }
                }
            }
        }
    }

    /// Reads every event page of each queued issue (oldest first), committing each page
    /// with the link to resume from, and dequeues the issue with its last page.
    async fn backfill_events(&self, stats: &mut RoundStats) -> Result<(), SyncError> {
        let mut conn = self.pool.get_conn().await?;
        let queued: Option<i64> = conn
            .exec_first(
                "SELECT COUNT(*) FROM sync_event_backfill WHERE repository = ?",
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
                    "SELECT issue_id, next_url FROM sync_event_backfill WHERE repository = ? \
                     ORDER BY issue_id LIMIT 100",
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
                writer
                    .send(PageWrite {
                        rows: WriteRows::Events(rows),
                        endpoint: "issue_events_per_issue",
                        cursor: None,
                        backfill: Some((number, next.clone())),
                    })
                    .await?;
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
    //! The original fetcher's conversion cases (spec/original-fetcher.md, section 5).
    use super::*;

    fn t(text: &str) -> UtcTime {
        UtcTime::parse(text).unwrap()
    }

    #[test]
    fn new_issue() {
        let only_mandatory: Issue = serde_json::from_str(
            r#"{"number":1,"title":"Title","body":null,"state":"State","user":{"login":"User"},
                "comments":5,"created_at":"1900-01-01T19:30:00Z","updated_at":"2000-01-01T19:30:00Z",
                "closed_at":null}"#,
        )
        .unwrap();
        let row = issue_row(only_mandatory);
        assert_eq!(
            (
                row.number,
                row.title.as_str(),
                row.body.as_str(),
                row.state.as_str(),
                row.user.as_str()
            ),
            (1, "Title", "", "State", "User")
        );
        assert_eq!((row.comments, row.is_pr, row.closed_at), (5, false, None));
        assert_eq!(
            (row.created_at, row.updated_at),
            (t("1900-01-01T19:30:00Z"), t("2000-01-01T19:30:00Z"))
        );
        assert!(row.labels.is_empty() && row.assignees.is_empty());

        let all: Issue = serde_json::from_str(
            r#"{"number":1,"title":"Title","body":"Body","state":"State","user":{"login":"User"},
                "comments":5,"pull_request":{"url":"PRLink"},"created_at":"1900-01-01T19:30:00Z",
                "updated_at":"2000-01-01T19:30:00Z","closed_at":"2100-01-01T19:30:00Z",
                "labels":[{"name":"SomeLabel"},null,{"name":"OtherLabel"}],
                "assignees":[{"login":"a"},null,{"login":null}]}"#,
        )
        .unwrap();
        let row = issue_row(all);
        assert_eq!((row.body.as_str(), row.is_pr), ("Body", true));
        assert_eq!(row.closed_at, Some(t("2100-01-01T19:30:00Z")));
        // lenient where the original failed the whole issue or panicked (null entries)
        assert_eq!(row.labels, vec!["SomeLabel", "OtherLabel"]);
        assert_eq!(row.assignees, vec!["a"]);

        assert!(
            serde_json::from_str::<Issue>("{}").is_err(),
            "an empty issue is an error"
        );
    }

    #[test]
    fn new_comment_and_event() {
        let c: Comment = serde_json::from_str(
            r#"{"id":1,"body":"Body","user":null,"created_at":"2000-01-01T19:30:00Z",
                "updated_at":"2001-01-01T19:30:00Z","issue_url":"https://x/repos/o/r/issues/12"}"#,
        )
        .unwrap();
        let row = comment_row("u", c.clone(), false).unwrap();
        assert_eq!(
            (row.id, row.issue_id, row.user.as_str(), row.pull_request),
            (1, 12, "", false)
        );
        assert!(
            comment_row("u", c, true).is_err(),
            "a review comment needs its pull request URL"
        );

        let e: Event = serde_json::from_str(
            r#"{"id":1,"event":"Event","label":{"name":"Label"},"assignee":{"login":"Assignee"},
                "actor":null,"created_at":"2000-01-01T19:30:00Z"}"#,
        )
        .unwrap();
        let row = event_row(e, 2);
        assert_eq!(row.issue_id, 2);
        assert_eq!(
            (row.label.as_deref(), row.assignee.as_deref(), row.actor),
            (Some("Label"), Some("Assignee"), None)
        );
        assert!(serde_json::from_str::<Event>("{}").is_err());
    }
}
