//! A fake GitHub REST API on loopback, with the semantics the fetcher relies on: `since`,
//! `sort=updated`, `direction`, `per_page`/`page` with `Link` headers, ETag / 304,
//! `x-ratelimit-*` headers, bearer-token checks, and injectable faults (5xx bursts, a
//! secondary rate limit with Retry-After, malformed JSON, a connection dropped mid-body).
//! It can also replay a recorded session (shared/reference/github-paginate-issues.json).
//!
//! Long because it is one server: routing, paging, ETags, faults and the data generator
//! share its state; the GraphQL side lives apart in `fake_graphql.rs`.
//!
//! A small hand-written HTTP/1.1 server on tokio: no framework, full control over the bytes
//! (a fault can cut a body in the middle). `POST /graphql` answers GraphQL queries over the
//! same data (see `fake_graphql.rs`), with its own points budget and faults.

#[path = "fake_graphql.rs"]
pub mod graphql;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// An issue or pull request as the fake serves it.
#[derive(Debug, Clone, PartialEq)]
pub struct FakeIssue {
    pub number: i64,
    pub title: String,
    pub body: Option<String>,
    pub user: Option<String>,
    pub state: String,
    pub comments: i32,
    pub is_pr: bool,
    pub labels: Vec<String>,
    pub assignees: Vec<String>,
    pub created_at: i64,
    pub updated_at: i64,
    pub closed_at: Option<i64>,
}

/// An issue comment or a review comment.
#[derive(Debug, Clone, PartialEq)]
pub struct FakeComment {
    pub id: i64,
    pub issue: i64,
    pub body: String,
    pub user: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// An issue event.
#[derive(Debug, Clone, PartialEq)]
pub struct FakeEvent {
    pub id: i64,
    pub issue: i64,
    pub event: String,
    pub label: Option<String>,
    pub actor: Option<String>,
    pub assignee: Option<String>,
    pub created_at: i64,
}

/// A pull-request review (GraphQL only: no REST list the fetcher reads has them).
#[derive(Debug, Clone, PartialEq)]
pub struct FakeReview {
    pub id: i64,
    pub issue: i64,
    pub user: Option<String>,
    /// APPROVED, CHANGES_REQUESTED, COMMENTED, DISMISSED or PENDING (a draft).
    pub state: String,
    pub submitted_at: i64,
    pub body: String,
}

/// One repository's data. `reviews` are review comments (REST `pulls/comments`);
/// `pr_reviews` are pull-request reviews.
#[derive(Debug, Clone, Default)]
pub struct FakeRepo {
    pub issues: BTreeMap<i64, FakeIssue>,
    pub comments: BTreeMap<i64, FakeComment>,
    pub reviews: BTreeMap<i64, FakeComment>,
    pub events: BTreeMap<i64, FakeEvent>,
    pub pr_reviews: BTreeMap<i64, FakeReview>,
}

impl FakeRepo {
    /// Deletes an issue comment (the issue's comment count drops; its update time does
    /// not move, the worst case for a poller).
    pub fn delete_comment(&mut self, id: i64) {
        if let Some(c) = self.comments.remove(&id)
            && let Some(i) = self.issues.get_mut(&c.issue)
        {
            i.comments -= 1;
        }
    }
}

/// The repository's database id, derived from its name.
pub fn repo_db_id(repo: &str) -> u64 {
    1_000 + fnv(repo.as_bytes()) % 1_000_000
}

/// GitHub's node ID of an issue or pull request (current form).
pub fn issue_node_id(repo: &str, issue: &FakeIssue) -> String {
    let prefix = if issue.is_pr { "PR" } else { "I" };
    velodrome::graphql::encode(
        prefix,
        &[0, repo_db_id(repo), 100_000 + issue.number as u64],
    )
}

/// GitHub's node ID of an event: the current form, or for every fifth event the legacy
/// one (old objects keep it), both encoding the event id.
pub fn event_node_id(repo: &str, e: &FakeEvent) -> String {
    let typename = graphql::event_typename(&e.event);
    if e.id % 5 == 0 {
        velodrome::graphql::encode_legacy(&typename, e.id as u64)
    } else {
        let prefix: String = typename.chars().filter(char::is_ascii_uppercase).collect();
        velodrome::graphql::encode(
            &prefix,
            &[0, repo_db_id(repo), 100_000 + e.issue as u64, e.id as u64],
        )
    }
}

/// GitHub's node ID of a review.
pub fn review_node_id(repo: &str, r: &FakeReview) -> String {
    velodrome::graphql::encode("PRR", &[0, repo_db_id(repo), r.id as u64])
}

/// Standard base64 with padding (cursors).
pub fn base64(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, b)| acc | u32::from(*b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// The inverse of [`base64`].
pub fn unbase64(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let (mut acc, mut bits) = (0u32, 0);
    for b in text.trim_end_matches('=').bytes() {
        let v = match b {
            b'A'..=b'Z' => b - b'A',
            b'a'..=b'z' => b - b'a' + 26,
            b'0'..=b'9' => b - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

/// Faults to inject, counted over data requests (every request but 304s).
#[derive(Debug, Clone, Default)]
pub struct Faults {
    /// Probability of answering 502.
    pub error_rate: f64,
    /// At this data-request index, answer 403 "secondary rate limit" with Retry-After.
    pub secondary_limit_at: Option<(usize, u64)>,
    /// At this data-request index, answer 403 "API rate limit exceeded" with
    /// `x-ratelimit-remaining: 0` and a reset 2 s ahead (the primary limit is spent).
    pub exhausted_at: Option<usize>,
    /// At this data-request index, answer 200 with a truncated JSON body.
    pub malformed_at: Option<usize>,
    /// At this data-request index, send half the body and close the connection.
    pub drop_mid_body_at: Option<usize>,
    /// At this data-request index, answer only after 6 s (past the client's timeout).
    pub hang_at: Option<usize>,
    /// Right after serving this data-request index, update the issue (repository, number)
    /// so that it moves to the end of `sort=updated` while a walk is in progress.
    pub touch_after: Option<(usize, String, i64)>,
    /// Requests whose path contains this string always get a malformed body.
    pub always_malformed: Option<String>,
    /// Right after serving the Nth (from 1) data request whose path starts with the
    /// prefix, delete the issue (repository, number): a deletion in the middle of a walk.
    pub delete_after: Option<(String, usize, String, i64)>,
    /// At this GraphQL query index, answer 200 with a `RATE_LIMITED` error, no points
    /// left and a reset 2 s ahead.
    pub graphql_rate_limited_at: Option<usize>,
    /// At these GraphQL query indexes, answer 502 as GitHub does when a query runs too
    /// long (the points are charged all the same).
    pub graphql_timeout_at: Vec<usize>,
}

/// What the fake saw and answered.
#[derive(Debug, Clone)]
pub struct Logged {
    pub path: String,
    pub status: u16,
    /// GraphQL: the operation name and the points charged (0 for REST).
    pub query: Option<String>,
    pub points: u64,
    /// GraphQL: the root fields asked for (`rateLimit` aside), the fetcher's batch size.
    pub graphql_roots: usize,
    pub conditional: bool,
    pub authorized: bool,
    pub at: Instant,
    pub headers: Vec<(String, String)>,
}

/// Shared state behind the server.
#[derive(Debug)]
pub struct State {
    pub repos: HashMap<String, FakeRepo>,
    /// The events feed only serves this many newest events (GitHub only keeps recent ones).
    pub feed_cap: usize,
    /// Feed pages past this number answer 422 "pagination is limited" (GitHub's depth cap).
    pub feed_page_limit: Option<usize>,
    /// List pages (issues, comments, review comments) past this number answer 422, as
    /// GitHub does for page numbers deep into large lists.
    pub list_page_limit: Option<usize>,
    pub log: Vec<Logged>,
    pub faults: Faults,
    pub token: String,
    pub remaining: u64,
    /// Extra latency for requests whose path starts with the key (a slow repository).
    pub latency: HashMap<String, std::time::Duration>,
    /// While this holds `false`, every answer waits: a test can look at a client in the
    /// middle of its first request, for as long as it needs, without racing a clock.
    pub gate: Option<tokio::sync::watch::Receiver<bool>>,
    /// GraphQL points left this hour.
    pub graphql_remaining: u64,
    /// Issue node IDs GraphQL answers NOT_FOUND for (deleted after REST listed them).
    pub graphql_gone: std::collections::BTreeSet<String>,
    /// Events REST does not list (feed and per-issue pages) while GraphQL timelines count
    /// them: GitHub's two APIs disagreeing.
    pub rest_hides: std::collections::BTreeSet<i64>,
    /// Issues deleted on GitHub: a read answers 410.
    pub deleted: std::collections::BTreeSet<(String, i64)>,
    /// Issues transferred: a read answers 301 to their new place (repository, number).
    pub moved: HashMap<(String, i64), (String, i64)>,
    /// Data requests served so far whose path starts with `Faults::delete_after`'s prefix.
    pub matched: usize,
    graphql_queries: usize,
    nodes: Option<Arc<HashMap<String, (String, i64)>>>,
    data_requests: usize,
    rng: u64,
    replay: HashMap<(String, u32), Recorded>,
    sorted: HashMap<(String, &'static str), SortKeys>,
}

/// (updated_at, id) of one list, sorted.
type SortKeys = Arc<Vec<(i64, i64)>>;

/// A recorded answer: status, body, headers.
type Recorded = (u16, String, Vec<(String, String)>);

/// The running fake.
pub struct FakeGithub {
    /// Base URL (`http://127.0.0.1:PORT`) for `--github-url`.
    pub url: String,
    pub state: Arc<Mutex<State>>,
}

/// RFC 3339 of epoch seconds.
pub fn rfc3339(t: i64) -> String {
    let days = t.div_euclid(86_400);
    let secs = t.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

/// Epoch seconds of RFC 3339 `YYYY-MM-DDTHH:MM:SSZ`.
pub fn parse_rfc3339(text: &str) -> Option<i64> {
    let n = |a: usize, b: usize| text.get(a..b)?.parse::<i64>().ok();
    let (y, m, d, h, mi, s) = (
        n(0, 4)?,
        n(5, 7)?,
        n(8, 10)?,
        n(11, 13)?,
        n(14, 16)?,
        n(17, 19)?,
    );
    let y2 = if m <= 2 { y - 1 } else { y };
    let era = y2.div_euclid(400);
    let yoe = y2 - era * 400;
    let doy = (153 * ((m + 9) % 12) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    Some((era * 146_097 + doe - 719_468) * 86_400 + h * 3600 + mi * 60 + s)
}

/// The account type GitHub reports for a login: `ci-helper` is a bot whose login does not
/// look like one, `*[bot]` are GitHub Apps, `org-*` organizations, `mannequin-*`
/// placeholders of imported users; everyone else is a user.
pub fn user_type(login: &str) -> &'static str {
    if login == "ci-helper" || login.ends_with("[bot]") {
        "Bot"
    } else if login.starts_with("org-") {
        "Organization"
    } else if login.starts_with("mannequin-") {
        "Mannequin"
    } else {
        "User"
    }
}

/// The stored account type of an optional login.
pub fn type_of(login: &Option<String>) -> Option<String> {
    login.as_deref().map(|l| user_type(l).to_owned())
}

fn user_json(login: &Option<String>) -> Value {
    match login {
        None => Value::Null,
        Some(login) => json!({
            "login": login, "id": 1000 + login.len(), "node_id": "MDQ6VXNlcjE=",
            "avatar_url": "https://avatars.githubusercontent.com/u/1?v=4",
            "url": format!("https://api.github.com/users/{login}"), "type": user_type(login),
            "site_admin": false
        }),
    }
}

impl FakeIssue {
    fn json(&self, base: &str, repo: &str) -> Value {
        let mut v = json!({
            "url": format!("{base}/repos/{repo}/issues/{}", self.number),
            "repository_url": format!("{base}/repos/{repo}"),
            "id": 100_000 + self.number, "node_id": issue_node_id(repo, self), "number": self.number,
            "title": self.title, "user": user_json(&self.user),
            "labels": self.labels.iter().map(|l| json!({"id": 1, "node_id": "LA_", "name": l, "color": "ededed", "default": false, "description": null})).collect::<Vec<_>>(),
            "state": self.state, "locked": false,
            "assignee": self.assignees.first().map(|a| user_json(&Some(a.clone()))),
            "assignees": self.assignees.iter().map(|a| user_json(&Some(a.clone()))).collect::<Vec<_>>(),
            "milestone": null, "comments": self.comments,
            "created_at": rfc3339(self.created_at), "updated_at": rfc3339(self.updated_at),
            "closed_at": self.closed_at.map(rfc3339), "author_association": "MEMBER",
            "active_lock_reason": null, "body": self.body,
            "reactions": {"total_count": 0, "+1": 0}
        });
        if self.is_pr {
            v["pull_request"] = json!({
                "url": format!("{base}/repos/{repo}/pulls/{}", self.number),
                "merged_at": null
            });
            v["draft"] = json!(false);
        }
        v
    }
}

impl FakeComment {
    fn json(&self, base: &str, repo: &str, review: bool) -> Value {
        let mut v = json!({
            "id": self.id, "node_id": "IC_", "user": user_json(&self.user), "body": self.body,
            "created_at": rfc3339(self.created_at), "updated_at": rfc3339(self.updated_at),
            "author_association": "CONTRIBUTOR", "reactions": {"total_count": 0}
        });
        if review {
            v["pull_request_url"] = json!(format!("{base}/repos/{repo}/pulls/{}", self.issue));
            v["path"] = json!("src/main.rs");
            v["diff_hunk"] = json!("@@ -1 +1 @@");
            v["commit_id"] = json!("0123456789abcdef");
            v["in_reply_to_id"] = Value::Null;
        } else {
            v["issue_url"] = json!(format!("{base}/repos/{repo}/issues/{}", self.issue));
        }
        v
    }
}

impl FakeReview {
    fn json(&self, repo: &str) -> Value {
        json!({
            "id": self.id, "node_id": review_node_id(repo, self), "user": user_json(&self.user),
            "body": self.body, "state": self.state, "commit_id": "0123456789abcdef",
            "submitted_at": (self.state != "PENDING").then(|| rfc3339(self.submitted_at)),
            "author_association": "MEMBER"
        })
    }
}

impl FakeEvent {
    fn json(&self, base: &str, repo: &str, with_issue: bool) -> Value {
        let mut v = json!({
            "id": self.id, "node_id": event_node_id(repo, self), "url": format!("{base}/repos/{repo}/issues/events/{}", self.id),
            "actor": user_json(&self.actor), "event": self.event, "commit_id": null, "commit_url": null,
            "created_at": rfc3339(self.created_at), "performed_via_github_app": null
        });
        if let Some(label) = &self.label {
            v["label"] = json!({"name": label, "color": "ededed"});
        }
        if self.assignee.is_some() {
            v["assignee"] = user_json(&self.assignee);
            v["assigner"] = user_json(&self.actor);
        }
        if with_issue {
            v["issue"] = json!({"number": self.issue, "id": 100_000 + self.issue, "title": "t", "state": "open"});
        }
        v
    }
}

fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3)
    })
}

fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let Ok(b) = u8::from_str_radix(s.get(i + 1..i + 3).unwrap_or("zz"), 16)
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(if bytes[i] == b'+' { b' ' } else { bytes[i] });
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

struct Reply {
    status: u16,
    body: String,
    headers: Vec<(String, String)>,
}

fn reply(status: u16, body: String) -> Reply {
    Reply {
        status,
        body,
        headers: Vec::new(),
    }
}

/// Serves a sorted list page with Link headers built from the request's own query.
fn page<T>(
    base: &str,
    path: &str,
    query: &[(String, String)],
    items: Vec<T>,
    to_json: impl Fn(T) -> Value,
) -> Reply {
    let get = |k: &str| query.iter().find(|(q, _)| q == k).map(|(_, v)| v.as_str());
    let per_page = get("per_page")
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(30)
        .clamp(1, 100);
    let page_no = get("page")
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(1)
        .max(1);
    let total_pages = items.len().div_ceil(per_page).max(1);
    let start = (page_no - 1) * per_page;
    let slice: Vec<Value> = items
        .into_iter()
        .skip(start)
        .take(per_page)
        .map(to_json)
        .collect();
    let link_to = |p: usize| {
        let mut q: Vec<String> = query
            .iter()
            .filter(|(k, _)| k != "page")
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        q.push(format!("page={p}"));
        format!("<{base}{path}?{}>", q.join("&"))
    };
    let mut links = Vec::new();
    if page_no < total_pages {
        links.push(format!("{}; rel=\"next\"", link_to(page_no + 1)));
        links.push(format!("{}; rel=\"last\"", link_to(total_pages)));
    }
    if page_no > 1 {
        links.push(format!("{}; rel=\"prev\"", link_to(page_no - 1)));
        links.push(format!("{}; rel=\"first\"", link_to(1)));
    }
    let mut r = reply(200, Value::Array(slice).to_string());
    if !links.is_empty() {
        r.headers.push(("link".into(), links.join(", ")));
    }
    r
}

/// The (updated_at, id) keys at or after `since`, in the requested direction.
fn window(keys: &[(i64, i64)], query: &[(String, String)]) -> Vec<(i64, i64)> {
    let get = |k: &str| query.iter().find(|(q, _)| q == k).map(|(_, v)| v.as_str());
    let since = get("since").and_then(parse_rfc3339);
    let start = since.map_or(0, |s| keys.partition_point(|k| k.0 < s));
    let mut list = keys[start..].to_vec();
    if get("direction") == Some("desc") {
        list.reverse();
    }
    list
}

impl State {
    /// Deletes an issue as a GitHub admin can: it goes with its comments, review comments,
    /// events and reviews, and a read of it answers 410.
    pub fn delete_issue(&mut self, repo: &str, number: i64) {
        if let Some(r) = self.repos.get_mut(repo) {
            r.issues.remove(&number);
            r.comments.retain(|_, c| c.issue != number);
            r.reviews.retain(|_, c| c.issue != number);
            r.events.retain(|_, e| e.issue != number);
            r.pr_reviews.retain(|_, v| v.issue != number);
        }
        self.deleted.insert((repo.to_owned(), number));
        self.sorted.clear();
        self.nodes = None;
    }

    /// Transfers issue `number` of `from` to `to` at time `at`, as GitHub does: it gets the
    /// next number there, keeps its creation time, comments and events (re-numbered here,
    /// since the fake's generated ids are not unique across repositories), gains a
    /// `transferred` event, and a read of its old address answers 301 to the new one.
    /// Returns its new number.
    pub fn transfer_issue(&mut self, from: &str, number: i64, to: &str, at: i64) -> i64 {
        let source = self.repos.get_mut(from).expect("source repository");
        let mut issue = source.issues.remove(&number).expect("issue to transfer");
        assert!(!issue.is_pr, "GitHub transfers issues only");
        let comments: Vec<FakeComment> = source
            .comments
            .values()
            .filter(|c| c.issue == number)
            .cloned()
            .collect();
        source.comments.retain(|_, c| c.issue != number);
        let events: Vec<FakeEvent> = source
            .events
            .values()
            .filter(|e| e.issue == number)
            .cloned()
            .collect();
        source.events.retain(|_, e| e.issue != number);
        let target = self.repos.get_mut(to).expect("target repository");
        let new = target.issues.keys().max().copied().unwrap_or(0) + 1;
        let mut comment_id = target.comments.keys().max().copied().unwrap_or(0) + 1_000;
        for mut c in comments {
            comment_id += 1;
            c.id = comment_id;
            c.issue = new;
            target.comments.insert(c.id, c);
        }
        // Below the target's own ids: the moved events are old news in its feed.
        let mut event_id = target.events.keys().min().copied().unwrap_or(0) / 2;
        for mut e in events {
            event_id += 1;
            e.id = event_id;
            e.issue = new;
            target.events.insert(e.id, e);
        }
        let event_id = target.events.keys().max().copied().unwrap_or(0) + 1_000;
        target.events.insert(
            event_id,
            FakeEvent {
                id: event_id,
                issue: new,
                event: "transferred".into(),
                label: None,
                actor: Some("org-velo".into()),
                assignee: None,
                created_at: at,
            },
        );
        issue.number = new;
        issue.updated_at = at;
        target.issues.insert(new, issue);
        self.moved
            .insert((from.to_owned(), number), (to.to_owned(), new));
        self.sorted.clear();
        self.nodes = None;
        new
    }

    /// Sort keys of one list, cached until the next [`FakeGithub::with`].
    fn sorted_keys(&mut self, repo: &str, list: &'static str) -> SortKeys {
        let key = (repo.to_owned(), list);
        if let Some(keys) = self.sorted.get(&key) {
            return keys.clone();
        }
        let mut keys: Vec<(i64, i64)> = match (self.repos.get(repo), list) {
            (Some(r), "issues") => r
                .issues
                .values()
                .map(|i| (i.updated_at, i.number))
                .collect(),
            (Some(r), "comments") => r.comments.values().map(|c| (c.updated_at, c.id)).collect(),
            (Some(r), "reviews") => r.reviews.values().map(|c| (c.updated_at, c.id)).collect(),
            _ => Vec::new(),
        };
        keys.sort_unstable();
        let keys = Arc::new(keys);
        self.sorted.insert(key, keys.clone());
        keys
    }

    fn route(&mut self, base: &str, path: &str, query: &[(String, String)]) -> Reply {
        let page_no = query
            .iter()
            .find(|(k, _)| k == "page")
            .and_then(|(_, v)| v.parse().ok())
            .unwrap_or(1);
        if let Some((status, body, headers)) = self.replay.get(&(path.to_owned(), page_no)) {
            let headers = headers
                .iter()
                .map(|(k, v)| (k.clone(), v.replace("https://api.github.com", base)))
                .collect();
            return Reply {
                status: *status,
                body: body.clone(),
                headers,
            };
        }
        let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
        if let ["repositories", id, "issues", n] = segs.as_slice() {
            // Where GitHub redirects the old address of a transferred issue.
            let n = n.parse::<i64>().unwrap_or(0);
            let found = self
                .repos
                .iter()
                .find(|(name, _)| repo_db_id(name).to_string() == *id);
            return match found.and_then(|(name, r)| Some((name, r.issues.get(&n)?))) {
                Some((name, issue)) => reply(200, issue.json(base, name).to_string()),
                None => reply(404, r#"{"message":"Not Found"}"#.into()),
            };
        }
        if segs.len() < 4 || segs[0] != "repos" {
            return reply(404, r#"{"message":"Not Found"}"#.into());
        }
        let repo_name = format!("{}/{}", segs[1], segs[2]).to_lowercase();
        let list = match &segs[3..] {
            ["issues"] => Some("issues"),
            ["issues", "comments"] => Some("comments"),
            ["pulls", "comments"] => Some("reviews"),
            _ => None,
        };
        let keys = list
            .map(|l| self.sorted_keys(&repo_name, l))
            .unwrap_or_default();
        let Some(repo) = self.repos.get(&repo_name) else {
            return reply(404, r#"{"message":"Not Found"}"#.into());
        };
        let r = repo_name.as_str();
        if list.is_some()
            && self
                .list_page_limit
                .is_some_and(|limit| page_no as usize > limit)
        {
            return reply(
                422,
                r#"{"message":"Pagination with the page parameter is not supported for large datasets, please use cursor based pagination (after/before)","documentation_url":"https://docs.github.com/rest/issues/issues#list-repository-issues"}"#.into(),
            );
        }
        match &segs[3..] {
            ["issues"] => page(base, path, query, window(&keys, query), |(_, n)| {
                repo.issues.get(&n).map_or(Value::Null, |i| i.json(base, r))
            }),
            ["issues", "comments"] => page(base, path, query, window(&keys, query), |(_, id)| {
                repo.comments
                    .get(&id)
                    .map_or(Value::Null, |c| c.json(base, r, false))
            }),
            ["pulls", "comments"] => page(base, path, query, window(&keys, query), |(_, id)| {
                repo.reviews
                    .get(&id)
                    .map_or(Value::Null, |c| c.json(base, r, true))
            }),
            ["issues", "events"] if self.feed_page_limit.is_some_and(|limit| page_no as usize > limit) => reply(
                422,
                r#"{"message":"In order to keep the API fast for everyone, pagination is limited for this resource. Check the rel=last link relation in the Link response header to see how far back you can traverse.","documentation_url":"https://docs.github.com/v3/#pagination"}"#.into(),
            ),
            ["issues", "events"] => {
                let list: Vec<&FakeEvent> = repo
                    .events
                    .values()
                    .rev()
                    .filter(|e| !self.rest_hides.contains(&e.id))
                    .take(self.feed_cap)
                    .collect();
                page(base, path, query, list, |e| e.json(base, r, true))
            }
            ["issues", n] => {
                let n = n.parse::<i64>().unwrap_or(0);
                if let Some((to, new)) = self.moved.get(&(repo_name.clone(), n)) {
                    let mut r = reply(301, r#"{"message":"Moved Permanently"}"#.into());
                    r.headers.push((
                        "location".into(),
                        format!("{base}/repositories/{}/issues/{new}", repo_db_id(to)),
                    ));
                    return r;
                }
                if self.deleted.contains(&(repo_name.clone(), n)) {
                    return reply(410, r#"{"message":"This issue was deleted"}"#.into());
                }
                match repo.issues.get(&n) {
                    Some(issue) => reply(200, issue.json(base, r).to_string()),
                    None => reply(404, r#"{"message":"Not Found"}"#.into()),
                }
            }
            ["issues", n, "comments"] | ["pulls", n, "comments"] | ["pulls", n, "reviews"] => {
                let Some(n) = n
                    .parse::<i64>()
                    .ok()
                    .filter(|n| repo.issues.contains_key(n))
                else {
                    return reply(404, r#"{"message":"Not Found"}"#.into());
                };
                match &segs[3..] {
                    ["issues", ..] => {
                        let list: Vec<&FakeComment> =
                            repo.comments.values().filter(|c| c.issue == n).collect();
                        page(base, path, query, list, |c| c.json(base, r, false))
                    }
                    [_, _, "comments"] => {
                        let list: Vec<&FakeComment> =
                            repo.reviews.values().filter(|c| c.issue == n).collect();
                        page(base, path, query, list, |c| c.json(base, r, true))
                    }
                    _ => {
                        let mut list: Vec<&FakeReview> =
                            repo.pr_reviews.values().filter(|v| v.issue == n).collect();
                        list.sort_by_key(|v| (v.submitted_at, v.id));
                        page(base, path, query, list, |v| v.json(r))
                    }
                }
            }
            ["issues", n, "events"] => {
                let Some(n) = n
                    .parse::<i64>()
                    .ok()
                    .filter(|n| repo.issues.contains_key(n))
                else {
                    return reply(404, r#"{"message":"Not Found"}"#.into());
                };
                let list: Vec<&FakeEvent> = repo
                    .events
                    .values()
                    .filter(|e| e.issue == n && !self.rest_hides.contains(&e.id))
                    .collect();
                page(base, path, query, list, |e| e.json(base, r, false))
            }
            _ => reply(404, r#"{"message":"Not Found"}"#.into()),
        }
    }

    /// Node ID -> (repository, number) of every issue and pull request.
    fn node_index(&mut self) -> Arc<HashMap<String, (String, i64)>> {
        if let Some(nodes) = &self.nodes {
            return nodes.clone();
        }
        let mut nodes = HashMap::new();
        for (name, repo) in &self.repos {
            for issue in repo.issues.values() {
                nodes.insert(issue_node_id(name, issue), (name.clone(), issue.number));
            }
        }
        let nodes = Arc::new(nodes);
        self.nodes = Some(nodes.clone());
        nodes
    }

    /// One GraphQL query: (reply, points charged, operation name, rate limited).
    fn graphql(&mut self, body: &str) -> (Reply, u64, (String, usize), bool) {
        let index = self.graphql_queries;
        self.graphql_queries += 1;
        if self.faults.graphql_rate_limited_at == Some(index) {
            let body = r#"{"errors":[{"type":"RATE_LIMITED","code":"graphql_rate_limit","message":"API rate limit already exceeded for user ID 1."}]}"#;
            return (reply(200, body.into()), 0, ("RATE_LIMITED".into(), 0), true);
        }
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let nodes = self.node_index();
        let outcome = {
            let ctx = graphql::Context {
                repos: &self.repos,
                nodes: &nodes,
                gone: &self.graphql_gone,
                remaining: self.graphql_remaining,
                reset: now + 3600,
            };
            graphql::execute(&ctx, body)
        };
        self.graphql_remaining = self.graphql_remaining.saturating_sub(outcome.cost);
        if self.faults.graphql_timeout_at.contains(&index) {
            let body = r#"{"data":null,"errors":[{"message":"Something went wrong while executing your query. This may be the result of a timeout, or it could be a GitHub bug. Please include `0000:0000:0000000:0000000:00000000` when reporting this issue."}]}"#;
            return (
                reply(502, body.into()),
                outcome.cost,
                (outcome.operation, outcome.roots),
                false,
            );
        }
        (
            reply(outcome.status, outcome.body),
            outcome.cost,
            (outcome.operation, outcome.roots),
            false,
        )
    }

    fn random(&mut self) -> f64 {
        // xorshift64*: deterministic per seed, no dependency.
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        (self.rng.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11) as f64 / (1u64 << 53) as f64
    }
}

impl FakeGithub {
    /// Starts the fake on a free loopback port; requests must carry `Bearer <token>`.
    pub async fn start(token: &str) -> FakeGithub {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind loopback");
        let url = format!("http://{}", listener.local_addr().expect("local addr"));
        let state = Arc::new(Mutex::new(State {
            repos: HashMap::new(),
            feed_cap: usize::MAX,
            feed_page_limit: None,
            list_page_limit: None,
            log: Vec::new(),
            faults: Faults::default(),
            token: token.to_owned(),
            remaining: 5000,
            latency: HashMap::new(),
            gate: None,
            graphql_remaining: 5000,
            graphql_gone: Default::default(),
            rest_hides: Default::default(),
            deleted: Default::default(),
            moved: HashMap::new(),
            matched: 0,
            graphql_queries: 0,
            nodes: None,
            data_requests: 0,
            rng: 0x9e37_79b9_7f4a_7c15,
            replay: HashMap::new(),
            sorted: HashMap::new(),
        }));
        let shared = state.clone();
        let base = url.clone();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let _ = stream.set_nodelay(true);
                let state = shared.clone();
                let base = base.clone();
                tokio::spawn(async move {
                    let _ = serve(stream, state, base).await;
                });
            }
        });
        FakeGithub { url, state }
    }

    /// Runs `f` on the state (add repositories, change data, set faults).
    pub fn with<R>(&self, f: impl FnOnce(&mut State) -> R) -> R {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state.sorted.clear(); // the caller may change data
        state.nodes = None;
        f(&mut state)
    }

    /// Everything logged so far.
    pub fn log(&self) -> Vec<Logged> {
        self.with(|s| s.log.clone())
    }

    /// Forgets the log.
    pub fn clear_log(&self) {
        self.with(|s| s.log.clear());
    }

    /// Loads a recorded session (nock format: scope, method, path, status, response,
    /// headers); the recorded links to https://api.github.com point back at the fake.
    pub fn load_replay(&self, recorded: &Value) {
        let entries = recorded.as_array().expect("recording is an array");
        self.with(|s| {
            for entry in entries {
                let full = entry["path"].as_str().expect("path");
                let (path, query) = full.split_once('?').unwrap_or((full, ""));
                let page = query
                    .split('&')
                    .find_map(|kv| kv.strip_prefix("page="))
                    .and_then(|p| p.parse().ok())
                    .unwrap_or(1);
                let headers = entry["headers"]
                    .as_object()
                    .map(|h| {
                        h.iter()
                            .filter(|(k, _)| matches!(k.as_str(), "link" | "etag"))
                            .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
                            .collect()
                    })
                    .unwrap_or_default();
                let status = entry["status"].as_u64().unwrap_or(200) as u16;
                s.replay.insert(
                    (path.to_owned(), page),
                    (status, entry["response"].to_string(), headers),
                );
            }
        });
    }
}

async fn serve(
    mut stream: TcpStream,
    state: Arc<Mutex<State>>,
    base: String,
) -> std::io::Result<()> {
    let mut buf = Vec::new();
    loop {
        // Read one request head (GET only, no body).
        let head_end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i;
            }
            let mut chunk = [0u8; 4096];
            let n = stream.read(&mut chunk).await?;
            if n == 0 {
                return Ok(());
            }
            buf.extend_from_slice(&chunk[..n]);
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
        buf.drain(..head_end + 4);
        let mut lines = head.split("\r\n");
        let request_line = lines.next().unwrap_or_default();
        let method = request_line.split(' ').next().unwrap_or("GET").to_owned();
        let target = request_line.split(' ').nth(1).unwrap_or("/").to_owned();
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
            .collect();
        // A POST carries a body of content-length bytes.
        let length = headers
            .iter()
            .find(|(k, _)| k == "content-length")
            .and_then(|(_, v)| v.parse::<usize>().ok())
            .unwrap_or(0);
        while buf.len() < length {
            let mut chunk = [0u8; 65536];
            let n = stream.read(&mut chunk).await?;
            if n == 0 {
                return Ok(());
            }
            buf.extend_from_slice(&chunk[..n]);
        }
        let request_body = String::from_utf8_lossy(&buf[..length]).into_owned();
        buf.drain(..length);
        let header = |name: &str| {
            headers
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        };
        let (path, query_text) = target.split_once('?').unwrap_or((target.as_str(), ""));
        let query: Vec<(String, String)> = query_text
            .split('&')
            .filter(|kv| !kv.is_empty())
            .map(|kv| {
                let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
                (decode(k), decode(v))
            })
            .collect();
        let gate = state.lock().unwrap_or_else(|e| e.into_inner()).gate.clone();
        if let Some(mut gate) = gate {
            let _ = gate.wait_for(|open| *open).await;
        }
        let (status, body, mut extra, cut, delay) = {
            let mut s = state.lock().unwrap_or_else(|e| e.into_inner());
            let delay = s
                .latency
                .iter()
                .find(|(prefix, _)| target.starts_with(prefix.as_str()))
                .map(|(_, d)| *d);
            let authorized =
                header("authorization").is_some_and(|a| a == format!("Bearer {}", s.token));
            let is_graphql = method == "POST" && path == "/graphql";
            let (mut points, mut operation, mut graphql_limited) = (0, None, false);
            let mut graphql_roots = 0;
            let mut r = if !authorized {
                reply(401, r#"{"message":"Bad credentials"}"#.into())
            } else if is_graphql {
                let (r, cost, (name, roots), limited) = s.graphql(&request_body);
                (points, operation, graphql_limited) = (cost, Some(name), limited);
                graphql_roots = roots;
                r
            } else {
                s.route(&base, path, &query)
            };
            let etag = format!("\"{:016x}\"", fnv(r.body.as_bytes()));
            let conditional = header("if-none-match").is_some();
            let mut cut = false;
            let mut hang = false;
            let mut exhausted = false;
            if r.status == 200 && header("if-none-match").as_deref() == Some(etag.as_str()) {
                r = reply(304, String::new());
            } else if r.status == 200 || r.status == 404 {
                let index = s.data_requests;
                s.data_requests += 1;
                let f = s.faults.clone();
                if let Some((_, repo, number)) = f.touch_after.as_ref().filter(|t| t.0 == index) {
                    let repo = s.repos.get_mut(repo.as_str());
                    if let Some(repo) = repo {
                        let newest = repo
                            .issues
                            .values()
                            .map(|i| i.updated_at)
                            .max()
                            .unwrap_or(0);
                        if let Some(issue) = repo.issues.get_mut(number) {
                            issue.updated_at = newest + 60;
                            issue.title.push_str(" (edited)");
                        }
                    }
                    s.sorted.clear();
                    s.nodes = None;
                }
                if let Some((prefix, nth, repo, number)) = &f.delete_after
                    && target.starts_with(prefix.as_str())
                {
                    s.matched += 1;
                    if s.matched == *nth {
                        let (repo, number) = (repo.clone(), *number);
                        s.delete_issue(&repo, number);
                    }
                }
                if f.exhausted_at == Some(index) {
                    r = reply(403, r#"{"message":"API rate limit exceeded for user ID 1.","documentation_url":"https://docs.github.com/rest/overview/resources-in-the-rest-api#rate-limiting"}"#.into());
                    exhausted = true;
                } else if f.secondary_limit_at.is_some_and(|(i, _)| i == index) {
                    let secs = f.secondary_limit_at.map_or(1, |(_, s)| s);
                    r = reply(403, r#"{"message":"You have exceeded a secondary rate limit. Please wait a few minutes before you try again.","documentation_url":"https://docs.github.com/rest/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits"}"#.into());
                    r.headers.push(("retry-after".into(), secs.to_string()));
                } else if r.status == 200
                    && (f.malformed_at == Some(index)
                        || f.always_malformed
                            .as_deref()
                            .is_some_and(|m| target.contains(m)))
                {
                    let keep = r.body.len() / 2;
                    r.body.truncate(keep);
                } else if r.status == 200 && f.drop_mid_body_at == Some(index) {
                    cut = true;
                } else if r.status == 200 && f.hang_at == Some(index) {
                    hang = true;
                } else if f.error_rate > 0.0 && s.random() < f.error_rate {
                    r = reply(
                        502,
                        "<html><body><h1>502 Bad Gateway</h1></body></html>".into(),
                    );
                }
                if r.status == 200 && !is_graphql {
                    r.headers.push(("etag".into(), etag));
                    s.remaining = s.remaining.saturating_sub(1);
                }
            }
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            let (resource, remaining, used) = if is_graphql {
                let left = if graphql_limited || exhausted {
                    0
                } else {
                    s.graphql_remaining
                };
                ("graphql", left, 5000 - s.graphql_remaining)
            } else {
                let left = if exhausted { 0 } else { s.remaining };
                ("core", left, 5000 - s.remaining)
            };
            let reset = if exhausted || graphql_limited {
                now + 2
            } else {
                now + 3600
            };
            r.headers.push(("x-ratelimit-limit".into(), "5000".into()));
            r.headers
                .push(("x-ratelimit-remaining".into(), remaining.to_string()));
            r.headers
                .push(("x-ratelimit-used".into(), used.to_string()));
            r.headers
                .push(("x-ratelimit-reset".into(), reset.to_string()));
            r.headers
                .push(("x-ratelimit-resource".into(), resource.into()));
            s.log.push(Logged {
                path: target.clone(),
                status: r.status,
                query: operation,
                points,
                graphql_roots,
                conditional,
                authorized,
                at: Instant::now(),
                headers: headers.clone(),
            });
            let delay = if hang {
                Some(std::time::Duration::from_secs(6))
            } else {
                delay
            };
            (r.status, r.body, r.headers, cut, delay)
        };
        if let Some(delay) = delay {
            tokio::time::sleep(delay).await;
        }
        let reason = match status {
            200 => "OK",
            304 => "Not Modified",
            401 => "Unauthorized",
            403 => "Forbidden",
            404 => "Not Found",
            301 => "Moved Permanently",
            410 => "Gone",
            502 => "Bad Gateway",
            _ => "Other",
        };
        extra.push((
            "content-type".into(),
            "application/json; charset=utf-8".into(),
        ));
        let mut out = format!(
            "HTTP/1.1 {status} {reason}\r\ncontent-length: {}\r\n",
            body.len()
        );
        for (k, v) in &extra {
            out.push_str(&format!("{k}: {v}\r\n"));
        }
        out.push_str("\r\n");
        // One write per response (and no Nagle): two small writes would cost a delayed-ACK
        // round trip of 40 ms each.
        let mut bytes = out.into_bytes();
        if cut {
            bytes.extend_from_slice(&body.as_bytes()[..body.len() / 2]);
            stream.write_all(&bytes).await?;
            stream.flush().await?;
            return Ok(()); // dropped mid-body
        }
        bytes.extend_from_slice(body.as_bytes());
        stream.write_all(&bytes).await?;
    }
}

/// Sizes of a generated repository.
#[derive(Debug, Clone, Copy)]
pub struct Sizes {
    pub issues: usize,
    pub comments: usize,
    pub reviews: usize,
    pub events: usize,
}

/// A deterministic, realistic repository: issues and PRs with labels and assignees,
/// comments, review comments on PRs, events with ids increasing in time (some with
/// `actor: null`), a run of issues updated in the same second (a bulk edit), and bodies
/// with multibyte text. Issue `updated_at` is at or after its last comment and event.
pub fn generate(seed: u64, sizes: Sizes) -> FakeRepo {
    let mut rng = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let mut next = move |n: u64| {
        rng ^= rng >> 12;
        rng ^= rng << 25;
        rng ^= rng >> 27;
        rng.wrapping_mul(0x2545_f491_4f6c_dd1d) % n.max(1)
    };
    let base = 1_577_836_800i64; // 2020-01-01
    let users = ["alice", "bob", "carol", "dave", "erin", "frank"];
    let labels = [
        "kind/bug",
        "kind/feature",
        "priority/P0",
        "priority/P1",
        "lgtm",
        "size/XL",
    ];
    let mut repo = FakeRepo::default();
    let mut last_touch: BTreeMap<i64, i64> = BTreeMap::new();
    for n in 1..=sizes.issues as i64 {
        let created = base + n * 900;
        let is_pr = n % 3 == 0;
        let user = if n % 97 == 0 {
            None
        } else {
            let user = users[next(6) as usize];
            // Now and then an organization opens an issue (GitHub says `Organization`).
            Some(if n % 41 == 0 { "org-velo" } else { user }.to_string())
        };
        let mut l: Vec<String> = (0..next(3))
            .map(|_| labels[next(6) as usize].to_string())
            .collect();
        l.sort();
        l.dedup();
        let a: Vec<String> = (0..next(2))
            .map(|_| users[next(6) as usize].to_string())
            .collect();
        let closed = n % 4 == 0;
        repo.issues.insert(
            n,
            FakeIssue {
                number: n,
                title: format!("Issue {n}: fix the \"thing\" ✓"),
                body: if n % 5 == 0 {
                    None
                } else {
                    Some(format!(
                        "Body of {n}\nwith ünïcödé — and 'quotes' {}",
                        "x".repeat(next(400) as usize)
                    ))
                },
                user,
                state: if closed { "closed" } else { "open" }.into(),
                comments: 0,
                is_pr,
                labels: l,
                assignees: a,
                created_at: created,
                updated_at: created,
                closed_at: None,
            },
        );
        last_touch.insert(n, created);
    }
    let numbers: Vec<i64> = repo.issues.keys().copied().collect();
    let prs: Vec<i64> = repo
        .issues
        .values()
        .filter(|i| i.is_pr)
        .map(|i| i.number)
        .collect();
    let pick = |list: &[i64], r: u64| list[(r as usize) % list.len().max(1)];
    let span = (sizes.issues as i64) * 900;
    for id in 1..=sizes.comments as i64 {
        let issue = pick(&numbers, next(u64::MAX));
        let created = repo.issues[&issue].created_at + 60 + next(span as u64 / 4) as i64;
        let updated = if id % 7 == 0 { created + 3600 } else { created };
        repo.comments.insert(
            id * 3 + 1_000_000,
            FakeComment {
                id: id * 3 + 1_000_000,
                issue,
                body: format!("comment {id} ✓ {}", "y".repeat(next(200) as usize)),
                user: if id % 50 == 0 {
                    None
                } else {
                    let user = users[next(6) as usize];
                    // A bot whose login does not look like one.
                    Some(if id % 23 == 0 { "ci-helper" } else { user }.to_string())
                },
                created_at: created,
                updated_at: updated,
            },
        );
        if let Some(i) = repo.issues.get_mut(&issue) {
            i.comments += 1;
        }
        let t = last_touch.entry(issue).or_default();
        *t = (*t).max(updated);
    }
    for id in 1..=sizes.reviews as i64 {
        let issue = pick(&prs, next(u64::MAX));
        let created = repo.issues[&issue].created_at + 120 + next(span as u64 / 4) as i64;
        // review comment ids overlap issue comment ids on purpose: separate id spaces
        let rid = id * 3 + 1_000_000;
        repo.reviews.insert(
            rid,
            FakeComment {
                id: rid,
                issue,
                body: format!("nit: rename {id}"),
                user: Some(users[next(6) as usize].to_string()),
                created_at: created,
                updated_at: created,
            },
        );
        let t = last_touch.entry(issue).or_default();
        *t = (*t).max(created);
    }
    let kinds = [
        "labeled",
        "unlabeled",
        "assigned",
        "closed",
        "reopened",
        "mentioned",
        "subscribed",
        "referenced",
    ];
    let mut times: Vec<(i64, i64)> = (0..sizes.events)
        .map(|_| {
            let issue = pick(&numbers, next(u64::MAX));
            (
                repo.issues[&issue].created_at + 30 + next(span as u64 / 3) as i64,
                issue,
            )
        })
        .collect();
    times.sort();
    for (k, (t, issue)) in times.into_iter().enumerate() {
        let id = 5_000_000 + k as i64 * 7;
        let kind = if prs.contains(&issue) && k % 11 == 0 {
            "merged"
        } else {
            kinds[next(8) as usize]
        };
        repo.events.insert(
            id,
            FakeEvent {
                id,
                issue,
                event: kind.into(),
                label: matches!(kind, "labeled" | "unlabeled")
                    .then(|| labels[next(6) as usize].to_string()),
                actor: if k % 13 == 0 {
                    None
                } else {
                    let user = users[next(6) as usize];
                    Some(if k % 19 == 0 { "ci-helper" } else { user }.to_string())
                },
                assignee: (kind == "assigned").then(|| users[next(6) as usize].to_string()),
                created_at: t,
            },
        );
        let e = last_touch.entry(issue).or_default();
        *e = (*e).max(t);
    }
    for (n, t) in last_touch {
        if let Some(i) = repo.issues.get_mut(&n) {
            i.updated_at = t + 5;
            if i.state == "closed" {
                i.closed_at = Some(t + 5);
            }
        }
    }
    // A bulk edit in the middle of history: 150 issues touched in the same second (more
    // than a page of one timestamp).
    let mut times: Vec<i64> = repo.issues.values().map(|i| i.updated_at).collect();
    times.sort();
    let bulk = times.get(times.len() / 2).copied().unwrap_or(base) + 1;
    let older: Vec<i64> = repo
        .issues
        .values()
        .filter(|i| i.updated_at < bulk)
        .map(|i| i.number)
        .collect();
    for n in older.into_iter().step_by(5).take(150) {
        if let Some(i) = repo.issues.get_mut(&n) {
            i.updated_at = bulk;
            i.labels.push("triage/accepted".into());
            i.labels.sort();
            i.labels.dedup();
        }
    }
    repo
}

/// Adds `count` pull-request reviews to `repo`: every state (and one draft in 40, which
/// nobody but its author sees, so it is never stored), some by deleted users, ids past
/// 2^31 for the newer half (GitHub's review ids passed it long ago), each submitted after
/// its pull request opened, which moves the pull request's update time.
pub fn add_pr_reviews(repo: &mut FakeRepo, seed: u64, count: usize) {
    let mut rng = seed.wrapping_mul(0x2545_f491_4f6c_dd1d) | 1;
    let mut next = move |n: u64| {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng % n.max(1)
    };
    let prs: Vec<i64> = repo
        .issues
        .values()
        .filter(|i| i.is_pr)
        .map(|i| i.number)
        .collect();
    if prs.is_empty() {
        return;
    }
    let users = ["alice", "bob", "carol", "dave", "erin", "frank"];
    let states = ["APPROVED", "CHANGES_REQUESTED", "COMMENTED", "DISMISSED"];
    let span = repo.issues.len() as u64 * 900 / 4;
    for k in 0..count as i64 {
        let issue = prs[next(prs.len() as u64) as usize];
        let submitted = repo.issues[&issue].created_at + 300 + next(span) as i64;
        let id = if k < count as i64 / 2 {
            600_000_000 + k * 11
        } else {
            2_200_000_000 + k * 13
        };
        let state = if k % 40 == 39 {
            "PENDING"
        } else {
            states[next(4) as usize]
        };
        repo.pr_reviews.insert(
            id,
            FakeReview {
                id,
                issue,
                user: (k % 29 != 0).then(|| {
                    let user = users[next(6) as usize];
                    if k % 31 == 0 { "ci-helper" } else { user }.to_string()
                }),
                state: state.into(),
                submitted_at: submitted,
                body: if k % 3 == 0 {
                    String::new()
                } else {
                    format!("LGTM ✓ {k}")
                },
            },
        );
        if let Some(i) = repo.issues.get_mut(&issue) {
            i.updated_at = i.updated_at.max(submitted + 5);
        }
    }
}

/// An `issues` row: id, title, body, user, state, comments, is_pr, closed, created, updated.
pub type IssueTuple = (
    i64,
    String,
    String,
    String,
    String,
    i32,
    bool,
    Option<String>,
    String,
    String,
);
/// An `issue_events` row: id, issue_id, event, label, actor, assignee, created.
pub type EventTuple = (
    i64,
    i64,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    String,
);

/// A `reviews` row: id, node_id, issue_id, user, state, submitted_at, body.
pub type ReviewTuple = (i64, String, i64, String, String, Option<String>, String);

/// Rows of the mirrored tables, in a comparable shape (times as RFC 3339 strings).
#[derive(Debug, Default, PartialEq)]
pub struct Mirror {
    pub issues: Vec<IssueTuple>,
    pub labels: Vec<(i64, String)>,
    pub assignees: Vec<(i64, String)>,
    pub comments: Vec<(i64, bool, i64, String, String, String, String)>,
    pub events: Vec<EventTuple>,
    /// (event id, node id) of every event.
    pub event_nodes: Vec<(i64, Option<String>)>,
    pub reviews: Vec<ReviewTuple>,
    /// Account types of authors and actors: (issue, type), (comment, review?, type),
    /// (event, type), (review, type).
    pub issue_types: Vec<(i64, Option<String>)>,
    pub comment_types: Vec<(i64, bool, Option<String>)>,
    pub event_types: Vec<(i64, Option<String>)>,
    pub review_types: Vec<(i64, Option<String>)>,
}

impl Mirror {
    /// What the tables must hold for `repo` (named `name`, which node IDs encode).
    pub fn expected(repo: &FakeRepo) -> Mirror {
        Self::expected_named(repo, None)
    }

    /// [`Self::expected`], also with node IDs and reviews, which depend on the name.
    pub fn expected_named(repo: &FakeRepo, name: Option<&str>) -> Mirror {
        let mut m = Mirror::default();
        for i in repo.issues.values() {
            m.issues.push((
                i.number,
                i.title.clone(),
                i.body.clone().unwrap_or_default(),
                i.user.clone().unwrap_or_default(),
                i.state.clone(),
                i.comments,
                i.is_pr,
                i.closed_at.map(rfc3339),
                rfc3339(i.created_at),
                rfc3339(i.updated_at),
            ));
            m.issue_types.push((i.number, type_of(&i.user)));
            let mut l = i.labels.clone();
            l.sort();
            l.dedup();
            m.labels.extend(l.into_iter().map(|l| (i.number, l)));
            let mut a = i.assignees.clone();
            a.sort();
            a.dedup();
            m.assignees.extend(a.into_iter().map(|a| (i.number, a)));
        }
        for (review, list) in [(false, &repo.comments), (true, &repo.reviews)] {
            for c in list.values() {
                m.comments.push((
                    c.id,
                    review,
                    c.issue,
                    c.body.clone(),
                    c.user.clone().unwrap_or_default(),
                    rfc3339(c.created_at),
                    rfc3339(c.updated_at),
                ));
                m.comment_types.push((c.id, review, type_of(&c.user)));
            }
        }
        for e in repo.events.values() {
            m.events.push((
                e.id,
                e.issue,
                e.event.clone(),
                e.label.clone(),
                e.actor.clone(),
                e.assignee.clone(),
                rfc3339(e.created_at),
            ));
            m.event_types.push((e.id, type_of(&e.actor)));
            if let Some(name) = name {
                m.event_nodes.push((e.id, Some(event_node_id(name, e))));
            }
        }
        if let Some(name) = name {
            for r in repo.pr_reviews.values().filter(|r| r.state != "PENDING") {
                m.reviews.push((
                    r.id,
                    review_node_id(name, r),
                    r.issue,
                    r.user.clone().unwrap_or_default(),
                    r.state.clone(),
                    Some(rfc3339(r.submitted_at)),
                    r.body.clone(),
                ));
                m.review_types.push((r.id, type_of(&r.user)));
            }
        }
        m.sort();
        m
    }

    /// What the tables hold, node IDs and reviews included.
    pub async fn load_all(db_url: &str, repository: &str) -> Mirror {
        use mysql_async::prelude::Queryable;
        let mut m = Self::load(db_url, repository).await;
        let pool = mysql_async::Pool::new(db_url);
        let mut conn = pool.get_conn().await.expect("connect");
        m.event_nodes = conn
            .exec(
                "SELECT id, node_id FROM issue_events WHERE repository = ?",
                (repository,),
            )
            .await
            .expect("event nodes");
        let rows: Vec<mysql_async::Row> = conn
            .exec(
                "SELECT id, node_id, issue_id, user, state, \
                 DATE_FORMAT(submitted_at, '%Y-%m-%dT%H:%i:%sZ'), body FROM reviews WHERE repository = ?",
                (repository,),
            )
            .await
            .expect("reviews");
        m.review_types = conn
            .exec(
                "SELECT id, user_type FROM reviews WHERE repository = ?",
                (repository,),
            )
            .await
            .expect("review types");
        for r in rows {
            m.reviews.push((
                r.get(0).expect("id"),
                r.get(1).expect("node"),
                r.get(2).expect("issue"),
                r.get(3).expect("user"),
                r.get(4).expect("state"),
                r.get(5).expect("submitted"),
                r.get(6).expect("body"),
            ));
        }
        drop(conn);
        pool.disconnect().await.ok();
        m.sort();
        m
    }

    fn sort(&mut self) {
        self.issues.sort_by_key(|r| r.0);
        self.labels.sort();
        self.assignees.sort();
        self.comments.sort_by_key(|r| (r.0, r.1));
        self.events.sort_by_key(|r| r.0);
        self.event_nodes.sort();
        self.reviews.sort_by_key(|r| r.0);
        self.issue_types.sort();
        self.comment_types.sort();
        self.event_types.sort();
        self.review_types.sort();
    }

    /// What the tables hold for `repository` (the lower-case key).
    pub async fn load(db_url: &str, repository: &str) -> Mirror {
        use mysql_async::prelude::Queryable;
        let pool = mysql_async::Pool::new(db_url);
        let mut conn = pool.get_conn().await.expect("connect");
        let t = |c: &str| format!("DATE_FORMAT({c}, '%Y-%m-%dT%H:%i:%sZ')");
        let mut m = Mirror::default();
        let rows: Vec<mysql_async::Row> = conn
            .exec(
                format!(
                    "SELECT id, title, body, user, state, comments, is_pr, {}, {}, {} FROM issues WHERE repository = ?",
                    t("issue_closed_at"), t("issue_created_at"), t("issue_updated_at")
                ),
                (repository,),
            )
            .await
            .expect("issues");
        for r in rows {
            m.issues.push((
                r.get(0).expect("id"),
                r.get(1).expect("title"),
                r.get(2).expect("body"),
                r.get(3).expect("user"),
                r.get(4).expect("state"),
                r.get(5).expect("comments"),
                r.get(6).expect("is_pr"),
                r.get(7).expect("closed"),
                r.get(8).expect("created"),
                r.get(9).expect("updated"),
            ));
        }
        m.issue_types = conn
            .exec(
                "SELECT id, user_type FROM issues WHERE repository = ?",
                (repository,),
            )
            .await
            .expect("issue types");
        m.comment_types = conn
            .exec(
                "SELECT id, pull_request, user_type FROM comments WHERE repository = ?",
                (repository,),
            )
            .await
            .expect("comment types");
        m.event_types = conn
            .exec(
                "SELECT id, actor_type FROM issue_events WHERE repository = ?",
                (repository,),
            )
            .await
            .expect("event types");
        m.labels = conn
            .exec(
                "SELECT issue_id, name FROM labels WHERE repository = ?",
                (repository,),
            )
            .await
            .expect("labels");
        m.assignees = conn
            .exec(
                "SELECT issue_id, name FROM assignees WHERE repository = ?",
                (repository,),
            )
            .await
            .expect("assignees");
        let rows: Vec<mysql_async::Row> = conn
            .exec(
                format!("SELECT id, pull_request, issue_id, body, user, {}, {} FROM comments WHERE repository = ?", t("comment_created_at"), t("comment_updated_at")),
                (repository,),
            )
            .await
            .expect("comments");
        for r in rows {
            m.comments.push((
                r.get(0).expect("id"),
                r.get(1).expect("pr"),
                r.get(2).expect("issue"),
                r.get(3).expect("body"),
                r.get(4).expect("user"),
                r.get(5).expect("c"),
                r.get(6).expect("u"),
            ));
        }
        let rows: Vec<mysql_async::Row> = conn
            .exec(
                format!("SELECT id, issue_id, event, label, actor, assignee, {} FROM issue_events WHERE repository = ?", t("event_created_at")),
                (repository,),
            )
            .await
            .expect("events");
        for r in rows {
            m.events.push((
                r.get(0).expect("id"),
                r.get(1).expect("issue"),
                r.get(2).expect("event"),
                r.get(3).expect("label"),
                r.get(4).expect("actor"),
                r.get(5).expect("assignee"),
                r.get(6).expect("created"),
            ));
        }
        drop(conn);
        pool.disconnect().await.ok();
        m.sort();
        m
    }

    /// Panics with the first differing row of each table, not a multi-megabyte dump.
    pub fn assert_same(&self, expected: &Mirror) {
        fn first_diff<T: std::fmt::Debug + PartialEq>(name: &str, got: &[T], want: &[T]) {
            if got == want {
                return;
            }
            let at = got
                .iter()
                .zip(want)
                .position(|(g, w)| g != w)
                .unwrap_or(got.len().min(want.len()));
            panic!(
                "{name}: {} rows, want {}; first difference at {at}: got {:?}, want {:?}",
                got.len(),
                want.len(),
                got.get(at),
                want.get(at)
            );
        }
        first_diff("issues", &self.issues, &expected.issues);
        first_diff("labels", &self.labels, &expected.labels);
        first_diff("assignees", &self.assignees, &expected.assignees);
        first_diff("comments", &self.comments, &expected.comments);
        first_diff("issue_events", &self.events, &expected.events);
        first_diff(
            "issue_events node ids",
            &self.event_nodes,
            &expected.event_nodes,
        );
        first_diff("reviews", &self.reviews, &expected.reviews);
        first_diff("issues.user_type", &self.issue_types, &expected.issue_types);
        first_diff(
            "comments.user_type",
            &self.comment_types,
            &expected.comment_types,
        );
        first_diff(
            "issue_events.actor_type",
            &self.event_types,
            &expected.event_types,
        );
        first_diff(
            "reviews.user_type",
            &self.review_types,
            &expected.review_types,
        );
    }
}
