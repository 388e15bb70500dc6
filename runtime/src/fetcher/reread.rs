//! Reading one issue again, whole, over REST: the issue itself, its comments, its events
//! and, for a pull request, its review comments and reviews, every page. The
//! reconciliation sweep replaces what MySQL holds with this in one transaction.
//!
//! An issue GitHub no longer has in this repository comes back as [`Reread::Gone`] with the
//! reason: 404 or 410 (deleted), or a redirect to the issue in another repository
//! (transferred: GitHub answers the old address with 301, which the client follows).

use serde::de::DeserializeOwned;

use super::feed::event_row;
use super::lists::{comment_row, issue_row};
use super::sync::{PER_PAGE, RepoSync, SyncError, login, user_type};
use crate::db::replace::IssueRows;
use crate::db::tables::ReviewRow;
use crate::github::models::{Comment, Event, Issue, Review};
use crate::github::{Fetched, GithubError};

/// What a read of one issue found.
#[derive(Debug)]
pub(super) enum Reread {
    /// The issue is here, with everything that hangs off it.
    Present(Box<IssueRows>),
    /// GitHub no longer has it in this repository; why.
    Gone(String),
}

/// `Some(reason)` when `err` says the issue is gone (404, 410).
fn gone(err: &GithubError) -> Option<String> {
    match err {
        GithubError::Status {
            status: status @ (404 | 410),
            message,
            ..
        } => Some(format!("deleted (HTTP {status}: {message})")),
        _ => None,
    }
}

/// `owner/name` of a repository API URL (`.../repos/owner/name`).
fn repository_of(url: &str) -> Option<String> {
    let (_, rest) = url.rsplit_once("/repos/")?;
    let mut parts = rest.trim_end_matches('/').splitn(3, '/');
    Some(format!("{}/{}", parts.next()?, parts.next()?))
}

fn review_row(issue: i64, review: Review) -> Option<ReviewRow> {
    let state = review.state.unwrap_or_default();
    if !crate::github::queries::REVIEW_STATES.contains(&state.as_str()) {
        return None; // a draft only its author sees
    }
    Some(ReviewRow {
        id: review.id,
        node_id: review.node_id.unwrap_or_default(),
        issue_id: issue,
        user_type: user_type(&review.user),
        user: login(review.user).unwrap_or_default(),
        state,
        submitted_at: review.submitted_at,
        body: review.body.unwrap_or_default(),
    })
}

impl RepoSync {
    /// Every page of a per-issue list, or `Err(Some(reason))` when the issue is gone.
    async fn read_all<T: DeserializeOwned>(&self, first: String) -> Result<Vec<T>, Gone> {
        let mut items = Vec::new();
        let mut url = first;
        loop {
            self.check_stop().map_err(Gone::Failed)?;
            match self.fetch::<T>(&url, None).await {
                Ok(Some((page, _, next))) => {
                    items.extend(page);
                    match next {
                        Some(next) => url = next,
                        None => return Ok(items),
                    }
                }
                Ok(None) => return Ok(items),
                Err(err) => {
                    return Err(match gone(&err) {
                        Some(reason) => Gone::Reason(reason),
                        None => Gone::Failed(err.into()),
                    });
                }
            }
        }
    }

    /// Reads issue `number` (a pull request when `is_pr`) again, whole.
    pub(super) async fn reread(&self, number: i64, is_pr: bool) -> Result<Reread, SyncError> {
        match self.reread_inner(number, is_pr).await {
            Ok(rows) => Ok(Reread::Present(Box::new(rows))),
            Err(Gone::Reason(reason)) => Ok(Reread::Gone(reason)),
            Err(Gone::Failed(err)) => Err(err),
        }
    }

    async fn reread_inner(&self, number: i64, is_pr: bool) -> Result<IssueRows, Gone> {
        let base = format!("/repos/{}", self.path);
        let url = self.client.url(&format!("{base}/issues/{number}"));
        let issue: Issue = match self.client.get(&url, None).await {
            Ok(Fetched::Page { body, .. }) => serde_json::from_slice(&body).map_err(|err| {
                Gone::Failed(
                    GithubError::Decode {
                        url: url.clone(),
                        message: err.to_string(),
                    }
                    .into(),
                )
            })?,
            Ok(Fetched::NotModified) => {
                return Err(Gone::Failed(
                    GithubError::Decode {
                        url: url.clone(),
                        message: "304 Not Modified to a request without an ETag".into(),
                    }
                    .into(),
                ));
            }
            Err(err) => {
                return Err(match gone(&err) {
                    Some(reason) => Gone::Reason(reason),
                    None => Gone::Failed(err.into()),
                });
            }
        };
        if let Some(there) = issue.repository_url.as_deref().and_then(repository_of)
            && !there.eq_ignore_ascii_case(&self.path)
        {
            return Err(Gone::Reason(format!(
                "transferred to {there}#{}",
                issue.number
            )));
        }
        if issue.number != number {
            return Err(Gone::Reason(format!(
                "GitHub answers with #{} for #{number}",
                issue.number
            )));
        }
        let is_pr = is_pr || issue.pull_request.is_some();
        let list = |what: &str| {
            self.client
                .url(&format!("{base}/{what}?per_page={PER_PAGE}"))
        };
        let mut rows = IssueRows {
            issue: Some(issue_row(issue)),
            ..IssueRows::default()
        };
        let comments: Vec<Comment> = self
            .read_all(list(&format!("issues/{number}/comments")))
            .await?;
        for c in comments {
            rows.comments
                .push(comment_row(&url, c, false).map_err(|e| Gone::Failed(e.into()))?);
        }
        let events: Vec<Event> = self
            .read_all(list(&format!("issues/{number}/events")))
            .await?;
        rows.events = events.into_iter().map(|e| event_row(e, number)).collect();
        if is_pr {
            let comments: Vec<Comment> = self
                .read_all(list(&format!("pulls/{number}/comments")))
                .await?;
            for c in comments {
                rows.comments
                    .push(comment_row(&url, c, true).map_err(|e| Gone::Failed(e.into()))?);
            }
            let reviews: Vec<Review> = self
                .read_all(list(&format!("pulls/{number}/reviews")))
                .await?;
            rows.reviews = reviews
                .into_iter()
                .filter_map(|r| review_row(number, r))
                .collect();
        }
        Ok(rows)
    }
}

/// Why a read stopped: the issue is gone (with the reason), or a failure.
enum Gone {
    Reason(String),
    Failed(SyncError),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repository_of_an_api_url() {
        assert_eq!(
            repository_of("https://api.github.com/repos/Velo/Other").as_deref(),
            Some("Velo/Other")
        );
        assert_eq!(
            repository_of("http://127.0.0.1:9/repos/o/r/").as_deref(),
            Some("o/r")
        );
        assert_eq!(repository_of("https://api.github.com/repositories/1"), None);
        let gone_err = GithubError::Status {
            url: "u".into(),
            status: 410,
            message: "This issue was deleted".into(),
        };
        assert_eq!(
            gone(&gone_err).as_deref(),
            Some("deleted (HTTP 410: This issue was deleted)")
        );
    }
}
