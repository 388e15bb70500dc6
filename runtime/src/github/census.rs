//! The census of a repository: every issue and pull request GitHub lists, 100 a page, with
//! the counts the reconciliation sweep compares with MySQL.
//!
//! Each page asks, per item, for its update time and the `totalCount` of its comments, of
//! the timeline events we store, and for a pull request of its submitted reviews and of
//! the comments of each review thread (the review comments). A connection asked only for
//! its `totalCount` has no `first`, so under GitHub's cost rule (connections are charged
//! by the items they may return) it costs nothing: a page of issues is one request, a page
//! of pull requests one request plus one per pull request for its review threads, 101
//! requests, one point either way. A pull request with more than 100 review threads
//! cannot have its review comments counted in the page; the sweep reads those again.
//!
//! Documents are fixed; the page size is a variable, so a page GitHub times out on is
//! asked again with half as many items.

use serde::Deserialize;

use super::queries::{PageInfo, QueryText, REVIEW_STATES, event_item_types};
use crate::db::UtcTime;

/// Items per page: GitHub's maximum.
pub const PAGE: usize = 100;

/// Which list a census page reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `Repository.issues`.
    Issues,
    /// `Repository.pullRequests`.
    PullRequests,
}

impl Kind {
    /// The operation name, which logs and errors carry.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Issues => "ReconcileIssues",
            Kind::PullRequests => "ReconcilePullRequests",
        }
    }

    /// The field of `Repository` that lists this kind.
    pub fn field(self) -> &'static str {
        match self {
            Kind::Issues => "issues",
            Kind::PullRequests => "pullRequests",
        }
    }
}

/// The query document of `kind`.
pub fn query(kind: Kind) -> String {
    let (vars, extra) = match kind {
        Kind::Issues => ("$types: [IssueTimelineItemsItemType!]", ""),
        Kind::PullRequests => (
            "$types: [PullRequestTimelineItemsItemType!], $states: [PullRequestReviewState!]",
            "\n        reviews(states: $states) { totalCount }\
             \n        reviewThreads(first: 100) { pageInfo { hasNextPage } nodes { comments { totalCount } } }",
        ),
    };
    format!(
        "query {name}($owner: String!, $name: String!, $first: Int!, $after: String, {vars}) {{
  rateLimit {{ cost remaining resetAt }}
  repository(owner: $owner, name: $name) {{
    list: {field}(first: $first, after: $after, orderBy: {{field: CREATED_AT, direction: ASC}}) {{
      pageInfo {{ hasNextPage endCursor }}
      nodes {{
        number
        updatedAt
        comments {{ totalCount }}
        timelineItems(itemTypes: $types) {{ totalCount }}{extra}
      }}
    }}
  }}
}}
",
        name = kind.name(),
        field = kind.field(),
    )
}

/// The variables of one page of `owner/name`.
pub fn variables(
    kind: Kind,
    owner: &str,
    name: &str,
    first: usize,
    after: Option<&str>,
) -> serde_json::Value {
    let mut vars = serde_json::json!({
        "owner": owner,
        "name": name,
        "first": first.clamp(1, PAGE),
        "after": after,
        "types": event_item_types(kind == Kind::PullRequests),
    });
    if kind == Kind::PullRequests {
        vars["states"] = serde_json::json!(REVIEW_STATES);
    }
    vars
}

/// Both census documents, for the schema test.
pub fn queries() -> Vec<QueryText> {
    [Kind::Issues, Kind::PullRequests]
        .into_iter()
        .map(|kind| QueryText {
            name: kind.name(),
            text: query(kind),
            variables: variables(kind, "kubernetes", "kubernetes", PAGE, Some("Y3Vyc29y")),
        })
        .collect()
}

/// A `totalCount`.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Count {
    /// Items in the connection (with its filters).
    pub total_count: u64,
}

/// `pageInfo` of the review threads (only whether more exist).
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MoreInfo {
    /// True when the pull request has more threads than the page holds.
    pub has_next_page: bool,
}

/// One review thread: how many comments it holds.
#[derive(Debug, Clone, Copy, Deserialize)]
pub struct Thread {
    /// Its comments (review comments).
    pub comments: Count,
}

/// The first page of a pull request's review threads.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Threads {
    /// Whether threads are left out.
    pub page_info: MoreInfo,
    /// The threads.
    #[serde(default)]
    pub nodes: Vec<Option<Thread>>,
}

/// One listed issue or pull request with its counts.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Item {
    /// Its number.
    pub number: i64,
    /// Its last update.
    pub updated_at: UtcTime,
    /// Conversation comments.
    pub comments: Count,
    /// Timeline events of the types we store.
    pub timeline_items: Count,
    /// Submitted reviews (pull requests only).
    #[serde(default)]
    pub reviews: Option<Count>,
    /// Review threads (pull requests only).
    #[serde(default)]
    pub review_threads: Option<Threads>,
}

impl Item {
    /// Review comments, when the page holds every thread of the pull request.
    pub fn review_comments(&self) -> Option<u64> {
        let threads = self.review_threads.as_ref()?;
        if threads.page_info.has_next_page {
            return None;
        }
        Some(
            threads
                .nodes
                .iter()
                .flatten()
                .map(|t| t.comments.total_count)
                .sum(),
        )
    }
}

/// One page of a census list.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Page {
    /// Where the next page starts.
    pub page_info: PageInfo,
    /// The items.
    #[serde(default)]
    pub nodes: Vec<Option<Item>>,
}

/// The page inside an answer's `data`, or why there is none.
pub fn page(data: &serde_json::Value) -> Result<Page, String> {
    let list = data
        .get("repository")
        .filter(|r| !r.is_null())
        .ok_or("the repository is missing from the answer")?
        .get("list")
        .ok_or("the list is missing from the answer")?;
    serde_json::from_value(list.clone()).map_err(|err| format!("cannot decode the page: {err}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_and_counts() {
        let q = query(Kind::PullRequests);
        assert!(q.contains("list: pullRequests(first: $first"));
        assert!(q.contains("reviewThreads(first: 100)"));
        assert!(!query(Kind::Issues).contains("reviews"));
        let page = page(&serde_json::json!({"repository": {"list": {
            "pageInfo": {"hasNextPage": false, "endCursor": null},
            "nodes": [{"number": 3, "updatedAt": "2020-01-01T00:00:00Z",
                "comments": {"totalCount": 2}, "timelineItems": {"totalCount": 5},
                "reviews": {"totalCount": 1},
                "reviewThreads": {"pageInfo": {"hasNextPage": false},
                    "nodes": [{"comments": {"totalCount": 2}}, {"comments": {"totalCount": 1}}]}},
              {"number": 6, "updatedAt": "2020-01-01T00:00:00Z",
                "comments": {"totalCount": 0}, "timelineItems": {"totalCount": 0},
                "reviews": {"totalCount": 0},
                "reviewThreads": {"pageInfo": {"hasNextPage": true}, "nodes": []}}]
        }}}))
        .unwrap();
        let items: Vec<&Item> = page.nodes.iter().flatten().collect();
        assert_eq!(items[0].review_comments(), Some(3));
        assert_eq!(items[1].review_comments(), None, "threads left out");
        assert!(super::page(&serde_json::json!({"repository": null})).is_err());
        let vars = variables(Kind::Issues, "o", "r", 500, None);
        assert_eq!(vars["first"], 100);
        assert!(vars.get("states").is_none());
    }
}
