//! Our own lenient models of the GitHub payloads we store: only the fields we keep, with
//! `Option` wherever GitHub can send null or omit a field (deleted users give
//! `actor: null` / `user: null`). Unknown fields are ignored.

use serde::Deserialize;

use crate::db::UtcTime;

/// A user reference: the login, and the kind of account GitHub says it is.
#[derive(Debug, Clone, Deserialize)]
pub struct User {
    /// Login, absent for some ghost or app users.
    pub login: Option<String>,
    /// `User`, `Bot`, `Organization` or `Mannequin` (REST `type`): it tells a bot whose
    /// login does not look like one.
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
}

/// A label reference.
#[derive(Debug, Clone, Deserialize)]
pub struct Label {
    /// Label name.
    pub name: Option<String>,
}

/// The `pull_request` marker of an issue that is a pull request.
#[derive(Debug, Clone, Deserialize)]
pub struct PullRequestRef {
    /// API URL of the pull request.
    pub url: Option<String>,
}

/// An item of `GET /repos/{o}/{r}/issues`.
#[derive(Debug, Clone, Deserialize)]
pub struct Issue {
    /// Issue or pull request number.
    pub number: i64,
    /// Node ID, by which GraphQL finds the issue.
    #[serde(default)]
    pub node_id: Option<String>,
    /// Title.
    #[serde(default)]
    pub title: Option<String>,
    /// Body (null when empty).
    #[serde(default)]
    pub body: Option<String>,
    /// Author.
    #[serde(default)]
    pub user: Option<User>,
    /// `open` or `closed`.
    pub state: String,
    /// Conversation comment count.
    #[serde(default)]
    pub comments: Option<i32>,
    /// Present for pull requests.
    #[serde(default)]
    pub pull_request: Option<PullRequestRef>,
    /// Labels (entries may be null in broken payloads; they are skipped).
    #[serde(default)]
    pub labels: Vec<Option<Label>>,
    /// Assignees.
    #[serde(default)]
    pub assignees: Option<Vec<Option<User>>>,
    /// Creation time.
    pub created_at: UtcTime,
    /// Last update.
    pub updated_at: UtcTime,
    /// Close time.
    #[serde(default)]
    pub closed_at: Option<UtcTime>,
    /// API URL of the repository holding the issue: after a transfer, GitHub redirects a
    /// read of the old address to the issue in its new repository, and this says so.
    #[serde(default)]
    pub repository_url: Option<String>,
}

/// An item of the issue-comment or review-comment lists.
#[derive(Debug, Clone, Deserialize)]
pub struct Comment {
    /// Comment id.
    pub id: i64,
    /// Body.
    #[serde(default)]
    pub body: Option<String>,
    /// Author.
    #[serde(default)]
    pub user: Option<User>,
    /// Creation time.
    pub created_at: UtcTime,
    /// Last edit.
    pub updated_at: UtcTime,
    /// Issue comments: `.../issues/{number}`.
    #[serde(default)]
    pub issue_url: Option<String>,
    /// Review comments: `.../pulls/{number}`.
    #[serde(default)]
    pub pull_request_url: Option<String>,
}

/// An item of `GET /repos/{o}/{r}/pulls/{n}/reviews`: a pull-request review.
#[derive(Debug, Clone, Deserialize)]
pub struct Review {
    /// The review's database id (GraphQL `fullDatabaseId`).
    pub id: i64,
    /// Its node ID.
    #[serde(default)]
    pub node_id: Option<String>,
    /// Author.
    #[serde(default)]
    pub user: Option<User>,
    /// Body (empty or null when there is none).
    #[serde(default)]
    pub body: Option<String>,
    /// `APPROVED`, `CHANGES_REQUESTED`, `COMMENTED`, `DISMISSED` or `PENDING`.
    #[serde(default)]
    pub state: Option<String>,
    /// When it was submitted (null for a draft).
    #[serde(default)]
    pub submitted_at: Option<UtcTime>,
}

/// The `issue` object embedded in repository-wide events.
#[derive(Debug, Clone, Deserialize)]
pub struct IssueRef {
    /// Issue number.
    pub number: i64,
}

/// An item of the repository or per-issue events lists.
#[derive(Debug, Clone, Deserialize)]
pub struct Event {
    /// Event id.
    pub id: i64,
    /// Node ID: the event's identity, shared with GraphQL's `id`.
    #[serde(default)]
    pub node_id: Option<String>,
    /// Event type.
    pub event: String,
    /// Who did it; null for deleted users.
    #[serde(default)]
    pub actor: Option<User>,
    /// Label of labeled/unlabeled events.
    #[serde(default)]
    pub label: Option<Label>,
    /// Assignee of assigned/unassigned events.
    #[serde(default)]
    pub assignee: Option<User>,
    /// When it happened.
    pub created_at: UtcTime,
    /// The issue (repository-wide feed only).
    #[serde(default)]
    pub issue: Option<IssueRef>,
}

/// The number at the end of an issue or pull request API URL.
pub fn number_from_url(url: &str) -> Option<i64> {
    url.trim_end_matches('/').rsplit('/').next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lenient_event() {
        let page: Vec<Event> = serde_json::from_str(
            r#"[{"id":1,"event":"closed","actor":null,"created_at":"2020-01-01T00:00:00Z","extra":{"x":1}},
                {"id":2,"event":"labeled","actor":{"login":"a"},"label":{"name":"bug","color":"f00"},
                 "created_at":"2020-01-01T00:00:01Z","issue":{"number":7}}]"#,
        )
        .unwrap();
        assert!(page[0].actor.is_none());
        assert_eq!(page[1].issue.as_ref().unwrap().number, 7);
        assert_eq!(
            number_from_url("https://api.github.com/repos/o/r/issues/42"),
            Some(42)
        );
        assert_eq!(
            number_from_url("https://api.github.com/repos/o/r/issues/x"),
            None
        );
    }
}
