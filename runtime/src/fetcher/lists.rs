//! The repository-wide REST lists: issues, issue comments and review comments, walked
//! newest update first down to the top of the last complete walk, one request per 100
//! items, page 1 conditional so a quiet list costs a 304. Issue pages also queue the pull
//! requests that changed for their reviews.

use super::boundary::Walked;
use super::sync::{PER_PAGE, RepoSync, RoundStats, SyncError, WalkPage, login, user_type};
use super::writer::{PageWrite, QueueOp, Writer};
use crate::db::UtcTime;
use crate::db::tables::{self, CommentRow, Cursor, IssueRow};
use crate::github::GithubError;
use crate::github::models::{self, Comment, Issue};
use crate::progress::{Progress, time_fraction};

/// The repository-wide lists sorted by update time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ListKind {
    Issues,
    IssueComments,
    ReviewComments,
}

impl ListKind {
    /// Every list, in the order a round walks them (issues first: they queue the reviews).
    pub const ALL: [ListKind; 3] = [
        ListKind::Issues,
        ListKind::IssueComments,
        ListKind::ReviewComments,
    ];

    pub(super) fn endpoint(self) -> &'static str {
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
pub(super) enum Rows {
    Issues(Vec<IssueRow>),
    Comments(Vec<CommentRow>),
}

impl Rows {
    pub(super) fn len(&self) -> usize {
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

impl Rows {
    /// The identity (issue number or comment id) and update time of every row.
    pub(super) fn keys(&self) -> Vec<(i64, UtcTime)> {
        match self {
            Rows::Issues(r) => r.iter().map(|r| (r.number, r.updated_at)).collect(),
            Rows::Comments(r) => r.iter().map(|r| (r.id, r.updated_at)).collect(),
        }
    }

    /// Keeps the rows whose identity and update time `keep` accepts.
    pub(super) fn retain(&mut self, mut keep: impl FnMut(i64, UtcTime) -> bool) {
        match self {
            Rows::Issues(r) => r.retain(|r| keep(r.number, r.updated_at)),
            Rows::Comments(r) => r.retain(|r| keep(r.id, r.updated_at)),
        }
    }

    /// The page to commit without moving a cursor (rows a boundary check found).
    pub(super) fn into_plain_page(self, kind: ListKind) -> PageWrite {
        let mut page = self.into_page(kind, Cursor::default());
        page.cursor = None;
        page
    }

    pub(super) fn count(&self, stats: &mut RoundStats) {
        match self {
            Rows::Issues(r) => stats.issues += r.len() as u64,
            Rows::Comments(r) => stats.comments += r.len() as u64,
        }
    }

    /// The page to commit with `cursor`. Its pull requests go to the writer, which queues
    /// for their reviews those that changed since they were stored (perhaps a review).
    fn into_page(self, kind: ListKind, cursor: Cursor) -> PageWrite {
        let mut page = PageWrite::new(kind.endpoint());
        page.cursor = Some(cursor);
        match self {
            Rows::Issues(rows) => {
                let seen: Vec<(i64, UtcTime)> = rows
                    .iter()
                    .filter(|r| r.is_pr)
                    .map(|r| (r.number, r.updated_at))
                    .collect();
                if !seen.is_empty() {
                    page.queue.push(QueueOp::ReviewsWanted(seen));
                }
                page.rows.issues = rows;
            }
            Rows::Comments(rows) => page.rows.comments = rows,
        }
        page
    }
}

pub(super) fn issue_row(issue: Issue) -> IssueRow {
    IssueRow {
        user_type: user_type(&issue.user),
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
        node_id: issue.node_id,
    }
}

pub(super) fn comment_row(
    url: &str,
    c: Comment,
    pull_request: bool,
) -> Result<CommentRow, GithubError> {
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
        user_type: user_type(&c.user),
        id: c.id,
        issue_id,
        pull_request,
        body: c.body.unwrap_or_default(),
        user: login(c.user).unwrap_or_default(),
        created_at: c.created_at,
        updated_at: c.updated_at,
    })
}

impl RepoSync {
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
    pub(super) async fn sync_list(
        &self,
        kind: ListKind,
        stats: &mut RoundStats,
    ) -> Result<(), SyncError> {
        let mut writer = Writer::spawn(self.pool.clone(), self.key.clone());
        let walked = self.walk_list(kind, stats, &mut writer).await;
        let flushed = writer.finish().await;
        walked.and(flushed)
    }

    /// Fetches one list page as rows, or `None` for 304.
    pub(super) async fn list_page(
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
        // A walk down to a mark may have its pages shift under it: they are checked again
        // at its end (a first walk is checked by the reconciliation sweep after it).
        let mark = cursor.since;
        let mut walked = Walked::new(mark.is_some());
        loop {
            self.check_stop()?;
            let fresh = cursor.next_url.is_none();
            let etag = if fresh { cursor.etag.clone() } else { None };
            let page = match self.list_page(kind, &url, etag.as_deref()).await {
                Err(SyncError::Github(GithubError::Status { status: 422, .. })) if !fresh => {
                    tracing::info!(repository = %self.key, endpoint = kind.endpoint(), url, "GitHub limits page numbers on this list; reading the older part by `since`");
                    let mut next_cursor = cursor.clone();
                    next_cursor.next_url = None;
                    let switch = Rows::Comments(Vec::new());
                    writer
                        .send(switch.into_page(kind, next_cursor.clone()))
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
            walked.record(&url, new_etag.clone(), &rows);
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
            rows.count(stats);
            writer
                .send(rows.into_page(kind, next_cursor.clone()))
                .await?;
            cursor = next_cursor;
            match next {
                Some(next) if !complete => url = next,
                _ => {
                    drop(progress);
                    return self
                        .recheck_boundaries(kind, walked, mark, cursor.since, stats, writer)
                        .await;
                }
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
            rows.count(stats);
            writer
                .send(rows.into_page(kind, next_cursor.clone()))
                .await?;
            cursor = next_cursor;
            if complete {
                return Ok(());
            }
        }
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
    fn new_comment() {
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
    }
}
