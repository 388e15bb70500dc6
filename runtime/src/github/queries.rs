//! Every GraphQL query the fetcher sends, and the shapes of their answers.
//!
//! Queries are fixed documents; only their variables change. A batch of K issues or pull
//! requests is one query with K aliases `n0 .. n{K-1}`, each `node(id:)` with its own
//! `after` cursor (null for a first page), so first pages and the inner pages of long
//! timelines travel in the same batches. GitHub charges a query by the connections it
//! asks for (K timelines of up to 100 items: K requests, K/100 points, at least 1), so a
//! batch of up to [`MAX_BATCH`] costs one point.
//!
//! [`all_queries`] lists every document with the variables it is sent with; a test
//! validates them all against GitHub's published schema (`@octokit/graphql-schema`).

use serde::Deserialize;

use crate::db::UtcTime;

/// Most aliases in one query: 100 connections of `first: 100` cost one point.
pub const MAX_BATCH: usize = 100;

/// Which timeline a batch reads. Issues and pull requests have different timeline types
/// (and item-type enums), so each has its own query: one query holding both fragments
/// would be charged for both connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Family {
    /// `Issue.timelineItems`: the events of an issue.
    IssueTimelines,
    /// `PullRequest.timelineItems`: the events and the reviews of a pull request.
    PullRequestTimelines,
    /// `PullRequest.reviews`: the submitted reviews of a pull request.
    PullRequestReviews,
}

impl Family {
    /// The operation name, which logs and errors carry.
    pub fn name(self) -> &'static str {
        match self {
            Family::IssueTimelines => "IssueTimelines",
            Family::PullRequestTimelines => "PullRequestTimelines",
            Family::PullRequestReviews => "PullRequestReviews",
        }
    }

    /// Every family.
    pub const ALL: [Family; 3] = [
        Family::IssueTimelines,
        Family::PullRequestTimelines,
        Family::PullRequestReviews,
    ];
}

/// One GraphQL timeline event type we store: its `__typename`, the REST name it is stored
/// under (the same event read through `/issues/events` gets this name), and which
/// timelines have it. Items REST does not list as issue events (comments, commits,
/// cross-references, review threads) are not asked for.
struct EventType {
    typename: &'static str,
    on_issue: bool,
    on_pull_request: bool,
}

const fn both(typename: &'static str) -> EventType {
    EventType {
        typename,
        on_issue: true,
        on_pull_request: true,
    }
}

const fn pr_only(typename: &'static str) -> EventType {
    EventType {
        typename,
        on_issue: false,
        on_pull_request: true,
    }
}

/// The event types of issue and pull request timelines that REST also serves as issue
/// events (checked against the schema by the query test).
const EVENT_TYPES: &[EventType] = &[
    both("AddedToProjectEvent"),
    both("AssignedEvent"),
    both("ClosedEvent"),
    both("CommentDeletedEvent"),
    both("ConnectedEvent"),
    both("ConvertedNoteToIssueEvent"),
    both("ConvertedToDiscussionEvent"),
    both("DemilestonedEvent"),
    both("DisconnectedEvent"),
    both("LabeledEvent"),
    both("LockedEvent"),
    both("MarkedAsDuplicateEvent"),
    both("MentionedEvent"),
    both("MilestonedEvent"),
    both("MovedColumnsInProjectEvent"),
    both("PinnedEvent"),
    both("ReferencedEvent"),
    both("RemovedFromProjectEvent"),
    both("RenamedTitleEvent"),
    both("ReopenedEvent"),
    both("SubscribedEvent"),
    both("TransferredEvent"),
    both("UnassignedEvent"),
    both("UnlabeledEvent"),
    both("UnlockedEvent"),
    both("UnmarkedAsDuplicateEvent"),
    both("UnpinnedEvent"),
    both("UnsubscribedEvent"),
    both("UserBlockedEvent"),
    pr_only("AddedToMergeQueueEvent"),
    pr_only("AutoMergeDisabledEvent"),
    pr_only("AutoMergeEnabledEvent"),
    pr_only("AutoRebaseEnabledEvent"),
    pr_only("AutoSquashEnabledEvent"),
    pr_only("AutomaticBaseChangeFailedEvent"),
    pr_only("AutomaticBaseChangeSucceededEvent"),
    pr_only("BaseRefChangedEvent"),
    pr_only("BaseRefDeletedEvent"),
    pr_only("BaseRefForcePushedEvent"),
    pr_only("ConvertToDraftEvent"),
    pr_only("DeployedEvent"),
    pr_only("DeploymentEnvironmentChangedEvent"),
    pr_only("HeadRefDeletedEvent"),
    pr_only("HeadRefForcePushedEvent"),
    pr_only("HeadRefRestoredEvent"),
    pr_only("MergedEvent"),
    pr_only("ReadyForReviewEvent"),
    pr_only("RemovedFromMergeQueueEvent"),
    pr_only("ReviewDismissedEvent"),
    pr_only("ReviewRequestRemovedEvent"),
    pr_only("ReviewRequestedEvent"),
];

/// The REST event name of a GraphQL timeline `__typename` (`LabeledEvent` -> `labeled`,
/// `RenamedTitleEvent` -> `renamed`), or `None` for a type we do not store as an event.
pub fn rest_event_name(typename: &str) -> Option<String> {
    if !EVENT_TYPES.iter().any(|t| t.typename == typename) {
        return None;
    }
    if typename == "RenamedTitleEvent" {
        return Some("renamed".into());
    }
    Some(snake(typename.strip_suffix("Event").unwrap_or(typename)))
}

/// `HeadRefForcePushed` -> `head_ref_force_pushed`.
fn snake(camel: &str) -> String {
    let mut out = String::with_capacity(camel.len() + 4);
    for (i, c) in camel.chars().enumerate() {
        if c.is_ascii_uppercase() {
            if i > 0 {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// The item-type enum value of a typename (`LabeledEvent` -> `LABELED_EVENT`).
fn item_type(typename: &str) -> String {
    snake(typename).to_ascii_uppercase()
}

/// The `itemTypes` a family's timeline query asks for (its `$types` variable).
pub fn item_types(family: Family) -> Vec<String> {
    let mut types: Vec<String> = EVENT_TYPES
        .iter()
        .filter(|t| match family {
            Family::IssueTimelines => t.on_issue,
            Family::PullRequestTimelines => t.on_pull_request,
            Family::PullRequestReviews => false,
        })
        .map(|t| item_type(t.typename))
        .collect();
    if family == Family::PullRequestTimelines {
        types.push("PULL_REQUEST_REVIEW".into());
    }
    types
}

/// The REST names of the events a timeline of this kind can hold (`pull_request`: a pull
/// request's), which the reconciliation sweep counts in MySQL to compare with the
/// timeline's `totalCount`.
pub fn stored_event_names(pull_request: bool) -> Vec<String> {
    EVENT_TYPES
        .iter()
        .filter(|t| t.on_issue || pull_request)
        .filter_map(|t| rest_event_name(t.typename))
        .collect()
}

/// The event item types of a timeline (reviews left out): what the sweep counts.
pub fn event_item_types(pull_request: bool) -> Vec<String> {
    let family = if pull_request {
        Family::PullRequestTimelines
    } else {
        Family::IssueTimelines
    };
    item_types(family)
        .into_iter()
        .filter(|t| t != "PULL_REQUEST_REVIEW")
        .collect()
}

/// Review states worth storing: every submitted one (`PENDING` is a draft only its author
/// sees).
pub const REVIEW_STATES: [&str; 4] = ["APPROVED", "CHANGES_REQUESTED", "COMMENTED", "DISMISSED"];

fn event_fragment(on_issue: bool) -> String {
    let mut text = String::new();
    for t in EVENT_TYPES {
        if on_issue && !t.on_issue {
            continue;
        }
        let extra = match t.typename {
            "LabeledEvent" | "UnlabeledEvent" => " label { name }",
            "AssignedEvent" | "UnassignedEvent" => " assignee { ... on Actor { login } }",
            _ => "",
        };
        text.push_str(&format!(
            "    ... on {} {{ id createdAt actor {{ __typename login }}{extra} }}\n",
            t.typename
        ));
    }
    text
}

/// The query of `family` for a batch of `k` (1..=[`MAX_BATCH`]) issues or pull requests.
pub fn query(family: Family, k: usize) -> String {
    let k = k.clamp(1, MAX_BATCH);
    let mut vars = String::new();
    let mut body = String::new();
    let (types_var, on, field, fragment) = match family {
        Family::IssueTimelines => (
            "$types: [IssueTimelineItemsItemType!]",
            "Issue",
            "timelineItems(first: 100, after: $after{i}, itemTypes: $types)",
            "IssueItems",
        ),
        Family::PullRequestTimelines => (
            "$types: [PullRequestTimelineItemsItemType!]",
            "PullRequest",
            "timelineItems(first: 100, after: $after{i}, itemTypes: $types)",
            "PullRequestItems",
        ),
        Family::PullRequestReviews => (
            "$states: [PullRequestReviewState!]",
            "PullRequest",
            "reviews(first: 100, after: $after{i}, states: $states)",
            "Reviews",
        ),
    };
    vars.push_str(types_var);
    for i in 0..k {
        vars.push_str(&format!(", $id{i}: ID!, $after{i}: String"));
        let field = field.replace("{i}", &i.to_string());
        body.push_str(&format!(
            "  n{i}: node(id: $id{i}) {{ __typename ... on {on} {{ number {field} {{ ...{fragment} }} }} }}\n"
        ));
    }
    let fragments = match family {
        Family::IssueTimelines => format!(
            "fragment IssueItems on IssueTimelineItemsConnection {{\n  totalCount\n  pageInfo {{ hasNextPage endCursor }}\n  nodes {{\n    __typename\n{}  }}\n}}\n",
            event_fragment(true)
        ),
        Family::PullRequestTimelines => format!(
            "fragment PullRequestItems on PullRequestTimelineItemsConnection {{\n  totalCount\n  pageInfo {{ hasNextPage endCursor }}\n  nodes {{\n    __typename\n{}    ...Review\n  }}\n}}\n{REVIEW_FRAGMENT}",
            event_fragment(false)
        ),
        Family::PullRequestReviews => format!(
            "fragment Reviews on PullRequestReviewConnection {{\n  totalCount\n  pageInfo {{ hasNextPage endCursor }}\n  nodes {{ __typename ...Review }}\n}}\n{REVIEW_FRAGMENT}"
        ),
    };
    format!(
        "query {}({vars}) {{\n  rateLimit {{ cost remaining resetAt }}\n{body}}}\n{fragments}",
        family.name()
    )
}

/// What a review brings: `fullDatabaseId` (a BigInt, as a string) rather than
/// `databaseId`, a 32-bit `Int` that fails with an error for ids past 2^31.
const REVIEW_FRAGMENT: &str = "fragment Review on PullRequestReview { id fullDatabaseId author { __typename login } state submittedAt body }\n";

/// The variables of one batch: the family's filter, then each alias's node ID and cursor.
pub fn variables(family: Family, batch: &[(String, Option<String>)]) -> serde_json::Value {
    let mut vars = serde_json::Map::new();
    match family {
        Family::PullRequestReviews => {
            vars.insert("states".into(), serde_json::json!(REVIEW_STATES));
        }
        _ => {
            vars.insert("types".into(), serde_json::json!(item_types(family)));
        }
    }
    for (i, (id, after)) in batch.iter().enumerate() {
        vars.insert(format!("id{i}"), serde_json::json!(id));
        vars.insert(format!("after{i}"), serde_json::json!(after));
    }
    serde_json::Value::Object(vars)
}

/// One query the fetcher can send: its operation name, its text, and variables it is sent
/// with (node IDs are placeholders; the filters are the real ones).
#[derive(Debug, Clone)]
pub struct QueryText {
    /// Operation name.
    pub name: &'static str,
    /// The document.
    pub text: String,
    /// Example variables, for validating their types too.
    pub variables: serde_json::Value,
}

/// The timeline and review queries the fetcher can send: each family at every batch size
/// (the census queries are in `census`; `github::all_queries` lists both).
pub fn queries() -> Vec<QueryText> {
    let mut all = Vec::new();
    for family in Family::ALL {
        for k in 1..=MAX_BATCH {
            let batch: Vec<(String, Option<String>)> = (0..k)
                .map(|i| {
                    (
                        format!("I_node{i}"),
                        (i % 2 == 1).then(|| "Y3Vyc29y".to_owned()),
                    )
                })
                .collect();
            all.push(QueryText {
                name: family.name(),
                text: query(family, k),
                variables: variables(family, &batch),
            });
        }
    }
    all
}

/// `rateLimit` of an answer.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RateLimit {
    /// Points this query cost.
    pub cost: u64,
    /// Points left in this hour.
    pub remaining: u64,
    /// When the budget refills.
    pub reset_at: UtcTime,
}

/// A `login`-bearing actor (user, bot, mannequin, organization).
#[derive(Debug, Clone, Deserialize)]
pub struct Actor {
    /// Login.
    pub login: Option<String>,
    /// Its concrete type (`User`, `Bot`, `Organization`, `Mannequin`): the account type
    /// REST calls `type`, asked for where the actor's type is stored.
    #[serde(default, rename = "__typename")]
    pub typename: Option<String>,
}

/// A label reference.
#[derive(Debug, Clone, Deserialize)]
pub struct LabelRef {
    /// Label name.
    pub name: Option<String>,
}

/// `pageInfo` of a connection.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PageInfo {
    /// More items after this page.
    pub has_next_page: bool,
    /// Cursor of the last item, for `after`.
    pub end_cursor: Option<String>,
}

/// A timeline item or review: every field any fragment asks for, absent when the item's
/// type has no such field.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Item {
    /// The concrete type (`LabeledEvent`, `PullRequestReview`, ...).
    #[serde(rename = "__typename")]
    pub typename: String,
    /// Node ID.
    #[serde(default)]
    pub id: Option<String>,
    /// When an event happened.
    #[serde(default)]
    pub created_at: Option<UtcTime>,
    /// Who did it (events); null for deleted users.
    #[serde(default)]
    pub actor: Option<Actor>,
    /// Label of labeled/unlabeled events.
    #[serde(default)]
    pub label: Option<LabelRef>,
    /// Assignee of assigned/unassigned events.
    #[serde(default)]
    pub assignee: Option<Actor>,
    /// A review's database id, as a decimal string (BigInt).
    #[serde(default)]
    pub full_database_id: Option<String>,
    /// A review's author.
    #[serde(default)]
    pub author: Option<Actor>,
    /// A review's state.
    #[serde(default)]
    pub state: Option<String>,
    /// When a review was submitted.
    #[serde(default)]
    pub submitted_at: Option<UtcTime>,
    /// A review's body.
    #[serde(default)]
    pub body: Option<String>,
}

/// One page of a timeline or review connection.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Connection {
    /// Items in the whole connection (with its filters).
    pub total_count: u64,
    /// Where the next page starts.
    pub page_info: PageInfo,
    /// This page's items.
    #[serde(default)]
    pub nodes: Vec<Option<Item>>,
}

/// The node behind one alias: an issue or pull request with its page.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IssueNode {
    /// `Issue` or `PullRequest` (another type means the node is not what we asked for).
    #[serde(rename = "__typename")]
    pub typename: String,
    /// Issue or pull request number.
    #[serde(default)]
    pub number: Option<i64>,
    /// The timeline page (timeline families).
    #[serde(default)]
    pub timeline_items: Option<Connection>,
    /// The review page (review family).
    #[serde(default)]
    pub reviews: Option<Connection>,
}

impl IssueNode {
    /// The page the family asked for.
    pub fn page(&self, family: Family) -> Option<&Connection> {
        match family {
            Family::PullRequestReviews => self.reviews.as_ref(),
            _ => self.timeline_items.as_ref(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rest_names() {
        assert_eq!(rest_event_name("LabeledEvent").as_deref(), Some("labeled"));
        assert_eq!(
            rest_event_name("HeadRefForcePushedEvent").as_deref(),
            Some("head_ref_force_pushed")
        );
        assert_eq!(
            rest_event_name("ReviewRequestedEvent").as_deref(),
            Some("review_requested")
        );
        assert_eq!(
            rest_event_name("RenamedTitleEvent").as_deref(),
            Some("renamed")
        );
        assert_eq!(rest_event_name("IssueComment"), None);
        assert_eq!(rest_event_name("PullRequestReview"), None);
        assert_eq!(item_type("ConvertToDraftEvent"), "CONVERT_TO_DRAFT_EVENT");
    }

    #[test]
    fn batches_share_one_document_per_size() {
        let q = query(Family::IssueTimelines, 3);
        assert!(q.starts_with(
            "query IssueTimelines($types: [IssueTimelineItemsItemType!], $id0: ID!, $after0: String"
        ));
        assert!(q.contains("n2: node(id: $id2)"));
        assert!(!q.contains("n3:"));
        assert!(
            !q.contains("MergedEvent"),
            "merges exist on pull requests only"
        );
        assert!(query(Family::PullRequestTimelines, 1).contains("... on MergedEvent"));
        assert_eq!(
            super::super::all_queries().len(),
            3 * MAX_BATCH + 2,
            "and the two census pages"
        );
        let vars = variables(
            Family::PullRequestReviews,
            &[("PR_x".into(), None), ("PR_y".into(), Some("c".into()))],
        );
        assert_eq!(vars["after1"], "c");
        assert!(vars["after0"].is_null());
    }
}
