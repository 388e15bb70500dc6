//! `POST /graphql` of the fake GitHub: a small GraphQL executor over the fake's data, with
//! GitHub's semantics for what the fetcher asks and nothing tied to the fetcher's queries:
//! any document is parsed (graphql-parser) and resolved field by field.
//!
//! - Root fields `node(id:)`, `nodes(ids:)`, `repository(owner:, name:)`, `rateLimit`;
//!   objects `Repository` (`issues`, `pullRequests`: oldest first, with cursors that
//!   name an item, so a deletion does not shift later pages), `Issue`, `PullRequest`,
//!   timeline events (REST events under their GraphQL type names), `IssueComment`,
//!   `PullRequestReview`, `PullRequestReviewThread` (a pull request's review comments,
//!   two per thread), actors (`User`, `Bot`, `Organization`, `Mannequin` by login, see
//!   `user_type`), `Label`; connections with `first`/`after`, `pageInfo`, `totalCount`,
//!   `nodes`, `edges`; `timelineItems(itemTypes:)`, `reviews(states:)`. A connection may
//!   go without `first` when it is asked only for its `totalCount`, as on GitHub.
//! - Fragments (inline and named) by type, union and interface; aliases; variables.
//! - An unknown field fails the whole query, as GitHub's validation does; `databaseId` of a
//!   review past 2^31 is an error, as GitHub's 32-bit `Int` is.
//! - Node IDs are the ones REST hands out (`node_id`), so both APIs name one object alike.
//! - Cost, GitHub's rule: every connection needs one request per parent item (a nested
//!   connection counts once per item its parents may return: `first` of each, or the
//!   number of `ids`), the sum divided by 100 and rounded, at least 1.

use std::collections::HashMap;

use graphql_parser::query::{
    Definition, Document, Field, OperationDefinition, Selection, SelectionSet, TypeCondition,
    Value as GValue,
};
use serde_json::{Map, Value, json};

use super::{FakeComment, FakeEvent, FakeIssue, FakeRepo, FakeReview, rfc3339};

/// The GraphQL typename of a REST event name (`labeled` -> `LabeledEvent`).
pub fn event_typename(event: &str) -> String {
    if event == "renamed" {
        return "RenamedTitleEvent".into();
    }
    let mut out = String::new();
    for part in event.split('_') {
        let mut chars = part.chars();
        if let Some(first) = chars.next() {
            out.push(first.to_ascii_uppercase());
            out.extend(chars);
        }
    }
    out.push_str("Event");
    out
}

/// `LabeledEvent` -> `LABELED_EVENT` (the item-type enum).
fn item_type(typename: &str) -> String {
    let mut out = String::new();
    for (i, c) in typename.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            out.push('_');
        }
        out.push(c.to_ascii_uppercase());
    }
    out
}

/// Events that only pull requests have.
const PR_ONLY: &[&str] = &[
    "merged",
    "review_requested",
    "review_request_removed",
    "review_dismissed",
    "head_ref_deleted",
    "head_ref_restored",
    "head_ref_force_pushed",
    "ready_for_review",
    "convert_to_draft",
    "base_ref_changed",
];

/// What a query resolves over.
#[derive(Clone, Copy)]
enum Obj<'a> {
    Query,
    RateLimit,
    Issue(&'a str, &'a FakeIssue),
    Event(&'a str, &'a FakeEvent),
    Comment(&'a FakeComment),
    Review(&'a str, &'a FakeReview),
    User(&'a str),
    Label(&'a str),
    Repo(&'a str),
    /// A review thread: how many comments it holds.
    Thread(usize),
}

/// A page of a connection.
struct Page<'a> {
    typename: &'static str,
    items: Vec<Obj<'a>>,
    start: usize,
    total: usize,
    has_next: bool,
    /// Asked without `first`: only `totalCount` (and `pageInfo`) may be read.
    count_only: bool,
    /// Cursors of the items, when they name the item rather than its position.
    keys: Option<Vec<String>>,
}

fn cursor(index: usize) -> String {
    super::base64(format!("cursor:v2:{index}").as_bytes())
}

fn uncursor(text: &str) -> Option<usize> {
    let bytes = super::unbase64(text)?;
    String::from_utf8(bytes)
        .ok()?
        .strip_prefix("cursor:v2:")?
        .parse()
        .ok()
}

/// The outcome of one query.
pub struct Outcome {
    pub status: u16,
    pub body: String,
    pub cost: u64,
    pub operation: String,
    /// Root fields asked for, `rateLimit` aside (the batch size of the fetcher's queries).
    pub roots: usize,
}

/// Everything the executor needs from the fake's state.
pub struct Context<'a> {
    pub repos: &'a HashMap<String, FakeRepo>,
    /// Node ID -> (repository, issue number).
    pub nodes: &'a HashMap<String, (String, i64)>,
    /// Issue node IDs that answer NOT_FOUND (deleted after REST listed them).
    pub gone: &'a std::collections::BTreeSet<String>,
    pub remaining: u64,
    pub reset: u64,
}

struct Exec<'a> {
    ctx: &'a Context<'a>,
    fragments: HashMap<String, &'a graphql_parser::query::FragmentDefinition<'a, String>>,
    vars: Map<String, Value>,
    errors: Vec<Value>,
    fatal: bool,
    cost: u64,
}

fn operation<'a>(doc: &'a Document<'a, String>) -> Option<(String, &'a SelectionSet<'a, String>)> {
    doc.definitions.iter().find_map(|d| match d {
        Definition::Operation(OperationDefinition::Query(q)) => {
            Some((q.name.clone().unwrap_or_default(), &q.selection_set))
        }
        Definition::Operation(OperationDefinition::SelectionSet(s)) => Some((String::new(), s)),
        _ => None,
    })
}

fn fragments<'a>(
    doc: &'a Document<'a, String>,
) -> HashMap<String, &'a graphql_parser::query::FragmentDefinition<'a, String>> {
    doc.definitions
        .iter()
        .filter_map(|d| match d {
            Definition::Fragment(f) => Some((f.name.clone(), f)),
            _ => None,
        })
        .collect()
}

fn arg_value(value: &GValue<String>, vars: &Map<String, Value>) -> Value {
    match value {
        GValue::Variable(name) => vars.get(name).cloned().unwrap_or(Value::Null),
        GValue::Int(n) => json!(n.as_i64()),
        GValue::Float(f) => json!(f),
        GValue::String(s) | GValue::Enum(s) => json!(s),
        GValue::Boolean(b) => json!(b),
        GValue::Null => Value::Null,
        GValue::List(items) => Value::Array(items.iter().map(|v| arg_value(v, vars)).collect()),
        GValue::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), arg_value(v, vars)))
                .collect(),
        ),
    }
}

fn arg(field: &Field<String>, name: &str, vars: &Map<String, Value>) -> Value {
    field
        .arguments
        .iter()
        .find(|(k, _)| k == name)
        .map_or(Value::Null, |(_, v)| arg_value(v, vars))
}

/// Requests a selection needs when `multiplicity` parent items may each ask for it.
fn requests(
    selection: &SelectionSet<String>,
    multiplicity: u64,
    vars: &Map<String, Value>,
    fragments: &HashMap<String, &graphql_parser::query::FragmentDefinition<String>>,
) -> u64 {
    let mut total = 0;
    for item in &selection.items {
        match item {
            Selection::Field(field) => {
                let first = arg(field, "first", vars)
                    .as_u64()
                    .or_else(|| arg(field, "last", vars).as_u64());
                let ids = arg(field, "ids", vars).as_array().map(|a| a.len() as u64);
                let inner = match (first, ids) {
                    (Some(first), _) => {
                        total += multiplicity;
                        multiplicity * first
                    }
                    (None, Some(ids)) => multiplicity * ids,
                    _ => multiplicity,
                };
                total += requests(&field.selection_set, inner, vars, fragments);
            }
            Selection::InlineFragment(f) => {
                total += requests(&f.selection_set, multiplicity, vars, fragments)
            }
            Selection::FragmentSpread(s) => {
                if let Some(f) = fragments.get(&s.fragment_name) {
                    total += requests(&f.selection_set, multiplicity, vars, fragments);
                }
            }
        }
    }
    total
}

/// Runs one query (the body of `POST /graphql`), charging its cost.
pub fn execute(ctx: &Context, body: &str) -> Outcome {
    let fail = |status: u16, message: String| Outcome {
        status,
        body: json!({"errors": [{"message": message}]}).to_string(),
        cost: 0,
        operation: String::new(),
        roots: 0,
    };
    let request: Value = match serde_json::from_str(body) {
        Ok(v) => v,
        Err(e) => return fail(400, format!("Problems parsing JSON: {e}")),
    };
    let Some(text) = request["query"].as_str() else {
        return fail(
            200,
            "A query attribute must be specified and must be a string.".into(),
        );
    };
    let doc = match graphql_parser::parse_query::<String>(text) {
        Ok(doc) => doc,
        Err(e) => return fail(200, format!("Parse error on {e}")),
    };
    let Some((operation, selection)) = operation(&doc) else {
        return fail(200, "No query operation".into());
    };
    let vars = request["variables"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    let fragments = fragments(&doc);
    let cost = ((requests(selection, 1, &vars, &fragments) + 50) / 100).max(1);
    let roots = selection
        .items
        .iter()
        .filter(|i| matches!(i, Selection::Field(f) if f.name != "rateLimit"))
        .count();
    let mut exec = Exec {
        ctx,
        fragments,
        vars,
        errors: Vec::new(),
        fatal: false,
        cost,
    };
    let data = exec.object(Obj::Query, selection, &[]);
    let body = if exec.fatal {
        json!({ "errors": exec.errors })
    } else if exec.errors.is_empty() {
        json!({ "data": data })
    } else {
        json!({ "data": data, "errors": exec.errors })
    };
    Outcome {
        status: 200,
        body: body.to_string(),
        cost,
        operation,
        roots,
    }
}

impl<'a> Exec<'a> {
    fn typename(&self, obj: &Obj) -> String {
        match obj {
            Obj::Query => "Query".into(),
            Obj::RateLimit => "RateLimit".into(),
            Obj::Issue(_, i) => if i.is_pr { "PullRequest" } else { "Issue" }.into(),
            Obj::Event(_, e) => event_typename(&e.event),
            Obj::Comment(_) => "IssueComment".into(),
            Obj::Review(..) => "PullRequestReview".into(),
            Obj::User(login) => super::user_type(login).into(),
            Obj::Label(_) => "Label".into(),
            Obj::Repo(_) => "Repository".into(),
            Obj::Thread(_) => "PullRequestReviewThread".into(),
        }
    }

    /// Whether a fragment on `condition` applies to `obj` (its type, a union it is in, or
    /// an interface it implements).
    fn applies(&self, obj: &Obj, condition: &str) -> bool {
        let typename = self.typename(obj);
        if condition == typename {
            return true;
        }
        match obj {
            Obj::Issue(..) => matches!(condition, "Node" | "IssueOrPullRequest"),
            Obj::Event(_, e) => {
                condition == "Node"
                    || condition == "PullRequestTimelineItems"
                    || (condition == "IssueTimelineItems" && !PR_ONLY.contains(&e.event.as_str()))
            }
            Obj::Comment(_) => matches!(
                condition,
                "Node" | "IssueTimelineItems" | "PullRequestTimelineItems"
            ),
            Obj::Review(..) => matches!(condition, "Node" | "PullRequestTimelineItems"),
            Obj::User(_) => matches!(condition, "Node" | "Actor" | "Assignee"),
            Obj::Repo(_) | Obj::Thread(_) => condition == "Node",
            _ => false,
        }
    }

    fn object(
        &mut self,
        obj: Obj<'a>,
        selection: &'a SelectionSet<'a, String>,
        path: &[Value],
    ) -> Value {
        let mut out = Map::new();
        self.collect(obj, selection, path, &mut out);
        Value::Object(out)
    }

    fn collect(
        &mut self,
        obj: Obj<'a>,
        selection: &'a SelectionSet<'a, String>,
        path: &[Value],
        out: &mut Map<String, Value>,
    ) {
        for item in &selection.items {
            match item {
                Selection::Field(field) => {
                    let key = field.alias.clone().unwrap_or_else(|| field.name.clone());
                    let mut here = path.to_vec();
                    here.push(json!(key));
                    let value = self.field(obj, field, &here);
                    match (out.get_mut(&key), value) {
                        (Some(Value::Object(old)), Value::Object(new)) => old.extend(new),
                        (_, value) => {
                            out.insert(key, value);
                        }
                    }
                }
                Selection::InlineFragment(f) => {
                    let applies = match &f.type_condition {
                        None => true,
                        Some(TypeCondition::On(t)) => self.applies(&obj, t),
                    };
                    if applies {
                        self.collect(obj, &f.selection_set, path, out);
                    }
                }
                Selection::FragmentSpread(s) => {
                    let Some(f) = self.fragments.get(&s.fragment_name).copied() else {
                        self.invalid(format!(
                            "Fragment {} was used, but not defined",
                            s.fragment_name
                        ));
                        continue;
                    };
                    let TypeCondition::On(t) = &f.type_condition;
                    if self.applies(&obj, t) {
                        self.collect(obj, &f.selection_set, path, out);
                    }
                }
            }
        }
    }

    fn invalid(&mut self, message: String) {
        self.fatal = true;
        self.errors
            .push(json!({"message": message, "extensions": {"code": "undefinedField"}}));
    }

    fn undefined(&mut self, obj: &Obj, field: &str) -> Value {
        let t = self.typename(obj);
        self.invalid(format!("Field '{field}' doesn't exist on type '{t}'"));
        Value::Null
    }

    fn sub(&mut self, obj: Option<Obj<'a>>, field: &'a Field<'a, String>, path: &[Value]) -> Value {
        match obj {
            Some(obj) => self.object(obj, &field.selection_set, path),
            None => Value::Null,
        }
    }

    fn field(&mut self, obj: Obj<'a>, field: &'a Field<'a, String>, path: &[Value]) -> Value {
        let name = field.name.as_str();
        if name == "__typename" {
            return json!(self.typename(&obj));
        }
        let ctx = self.ctx;
        match obj {
            Obj::Query => match name {
                "rateLimit" => self.object(Obj::RateLimit, &field.selection_set, path),
                "repository" => {
                    let owner = arg(field, "owner", &self.vars);
                    let name = arg(field, "name", &self.vars);
                    let full = format!(
                        "{}/{}",
                        owner.as_str().unwrap_or_default(),
                        name.as_str().unwrap_or_default()
                    )
                    .to_lowercase();
                    match ctx.repos.get_key_value(&full) {
                        Some((key, _)) => {
                            self.object(Obj::Repo(key.as_str()), &field.selection_set, path)
                        }
                        None => {
                            self.errors.push(json!({
                                "type": "NOT_FOUND",
                                "path": path,
                                "message": format!("Could not resolve to a Repository with the name '{full}'."),
                            }));
                            Value::Null
                        }
                    }
                }
                "node" => {
                    let id = arg(field, "id", &self.vars);
                    let found = self.lookup(id.as_str().unwrap_or_default(), path);
                    self.sub(found, field, path)
                }
                "nodes" => {
                    let ids = arg(field, "ids", &self.vars);
                    let mut list = Vec::new();
                    for (i, id) in ids
                        .as_array()
                        .cloned()
                        .unwrap_or_default()
                        .iter()
                        .enumerate()
                    {
                        let mut here = path.to_vec();
                        here.push(json!(i));
                        let found = self.lookup(id.as_str().unwrap_or_default(), &here);
                        list.push(self.sub(found, field, &here));
                    }
                    Value::Array(list)
                }
                _ => self.undefined(&obj, name),
            },
            Obj::RateLimit => match name {
                "cost" => json!(self.cost),
                "remaining" => json!(ctx.remaining.saturating_sub(self.cost)),
                "limit" => json!(5000),
                "used" => json!(5000 - ctx.remaining.saturating_sub(self.cost)),
                "nodeCount" => json!(0),
                "resetAt" => json!(rfc3339(ctx.reset as i64)),
                _ => self.undefined(&obj, name),
            },
            Obj::Repo(repo) => match name {
                "issues" | "pullRequests" => {
                    let prs = name == "pullRequests";
                    let mut list: Vec<&FakeIssue> = ctx.repos[repo]
                        .issues
                        .values()
                        .filter(|i| i.is_pr == prs)
                        .collect();
                    list.sort_by_key(|i| (i.created_at, i.number));
                    let keyed = list
                        .into_iter()
                        .map(|i| {
                            (
                                format!("{}:{}", i.created_at, i.number),
                                Obj::Issue(repo, i),
                            )
                        })
                        .collect();
                    let typename = if prs {
                        "PullRequestConnection"
                    } else {
                        "IssueConnection"
                    };
                    let page = self.paginate_keyed(typename, keyed, field);
                    self.connection(page, field, path)
                }
                "name" => json!(repo.split('/').nth(1).unwrap_or_default()),
                _ => self.undefined(&obj, name),
            },
            Obj::Thread(count) => match name {
                "comments" => {
                    let page = Page {
                        typename: "PullRequestReviewCommentConnection",
                        items: Vec::new(),
                        start: 0,
                        total: count,
                        has_next: count > 0,
                        count_only: true,
                        keys: None,
                    };
                    self.connection(Some(page), field, path)
                }
                _ => self.undefined(&obj, name),
            },
            Obj::Issue(repo, issue) => match name {
                "id" => json!(super::issue_node_id(repo, issue)),
                "number" => json!(issue.number),
                "title" => json!(issue.title),
                "updatedAt" => json!(rfc3339(issue.updated_at)),
                "createdAt" => json!(rfc3339(issue.created_at)),
                "author" => self.sub(issue.user.as_deref().map(Obj::User), field, path),
                "comments" => {
                    let list = ctx.repos[repo]
                        .comments
                        .values()
                        .filter(|c| c.issue == issue.number)
                        .map(Obj::Comment)
                        .collect();
                    let page = self.paginate("IssueCommentConnection", list, field);
                    self.connection(page, field, path)
                }
                "reviewThreads" if issue.is_pr => {
                    let comments = ctx.repos[repo]
                        .reviews
                        .values()
                        .filter(|c| c.issue == issue.number)
                        .count();
                    let threads = (0..comments.div_ceil(2))
                        .map(|t| Obj::Thread((comments - 2 * t).min(2)))
                        .collect();
                    let page = self.paginate("PullRequestReviewThreadConnection", threads, field);
                    self.connection(page, field, path)
                }
                "databaseId" | "fullDatabaseId" => {
                    let id = 100_000 + issue.number;
                    if name == "databaseId" {
                        json!(id)
                    } else {
                        json!(id.to_string())
                    }
                }
                "timelineItems" => {
                    let page = self.timeline(repo, issue, field);
                    self.connection(page, field, path)
                }
                "reviews" if issue.is_pr => {
                    let page = self.reviews(repo, issue, field);
                    self.connection(page, field, path)
                }
                _ => self.undefined(&obj, name),
            },
            Obj::Event(repo, e) => match name {
                "id" => json!(super::event_node_id(repo, e)),
                "createdAt" => json!(rfc3339(e.created_at)),
                "actor" => self.sub(e.actor.as_deref().map(Obj::User), field, path),
                "label" if matches!(e.event.as_str(), "labeled" | "unlabeled") => {
                    self.sub(e.label.as_deref().map(Obj::Label), field, path)
                }
                "assignee" if matches!(e.event.as_str(), "assigned" | "unassigned") => {
                    self.sub(e.assignee.as_deref().map(Obj::User), field, path)
                }
                _ => self.undefined(&obj, name),
            },
            Obj::Comment(c) => match name {
                "id" => json!(format!("IC_{}", c.id)),
                "createdAt" => json!(rfc3339(c.created_at)),
                "body" => json!(c.body),
                "author" => self.sub(c.user.as_deref().map(Obj::User), field, path),
                _ => self.undefined(&obj, name),
            },
            Obj::Review(repo, r) => match name {
                "id" => json!(super::review_node_id(repo, r)),
                "fullDatabaseId" => json!(r.id.to_string()),
                "databaseId" => {
                    if r.id > i64::from(i32::MAX) {
                        self.errors.push(json!({
                            "path": path,
                            "message": format!("Int cannot represent non 32-bit signed integer value: {}", r.id)
                        }));
                        Value::Null
                    } else {
                        json!(r.id)
                    }
                }
                "author" => self.sub(r.user.as_deref().map(Obj::User), field, path),
                "state" => json!(r.state),
                "submittedAt" => match r.state.as_str() {
                    "PENDING" => Value::Null,
                    _ => json!(rfc3339(r.submitted_at)),
                },
                "createdAt" => json!(rfc3339(r.submitted_at)),
                "body" => json!(r.body),
                _ => self.undefined(&obj, name),
            },
            Obj::User(login) => match name {
                "login" => json!(login),
                _ => self.undefined(&obj, name),
            },
            Obj::Label(label) => match name {
                "name" => json!(label),
                _ => self.undefined(&obj, name),
            },
        }
    }

    fn lookup(&mut self, id: &str, path: &[Value]) -> Option<Obj<'a>> {
        let ctx = self.ctx;
        let found = if ctx.gone.contains(id) {
            None
        } else {
            ctx.nodes.get(id).and_then(|(repo, number)| {
                let (name, data) = ctx.repos.get_key_value(repo)?;
                Some(Obj::Issue(name.as_str(), data.issues.get(number)?))
            })
        };
        if found.is_none() {
            self.errors.push(json!({
                "type": "NOT_FOUND",
                "path": path,
                "locations": [{"line": 1, "column": 1}],
                "message": format!("Could not resolve to a node with the global id of '{id}'."),
            }));
        }
        found
    }

    /// `first`/`after` over `items` (already filtered and in order); without `first`, a
    /// page that can only tell its `totalCount`.
    fn paginate(
        &mut self,
        typename: &'static str,
        items: Vec<Obj<'a>>,
        field: &Field<String>,
    ) -> Option<Page<'a>> {
        self.paginate_from(typename, items, field, None)
    }

    /// [`Self::paginate`] from `start` when given, else from the `after` cursor.
    fn paginate_from(
        &mut self,
        typename: &'static str,
        items: Vec<Obj<'a>>,
        field: &Field<String>,
        start: Option<usize>,
    ) -> Option<Page<'a>> {
        let first = arg(field, "first", &self.vars).as_u64();
        if first.is_none() && arg(field, "last", &self.vars).is_null() {
            return Some(Page {
                typename,
                total: items.len(),
                has_next: !items.is_empty(),
                items: Vec::new(),
                start: 0,
                count_only: true,
                keys: None,
            });
        }
        let Some(first) = first.filter(|f| (1..=100).contains(f)) else {
            self.invalid(format!(
                "You must provide a `first` value between 1 and 100 to properly paginate the `{}` connection.",
                field.name
            ));
            return None;
        };
        let start = match (start, arg(field, "after", &self.vars).as_str()) {
            (Some(start), _) => start,
            (None, Some(after)) => uncursor(after).map_or(usize::MAX, |i| i + 1),
            (None, None) => 0,
        };
        let total = items.len();
        let start = start.min(total);
        let end = (start + first as usize).min(total);
        Some(Page {
            typename,
            items: items[start..end].to_vec(),
            start,
            total,
            has_next: end < total,
            count_only: false,
            keys: None,
        })
    }

    /// [`Self::paginate`] with cursors that name an item (its key): `after` starts right
    /// after that key even when items before it are gone, as GitHub's cursors do.
    fn paginate_keyed(
        &mut self,
        typename: &'static str,
        items: Vec<(String, Obj<'a>)>,
        field: &Field<String>,
    ) -> Option<Page<'a>> {
        let key = |k: &str| -> (i64, i64) {
            let mut parts = k.split(':').map(|p| p.parse::<i64>().unwrap_or(0));
            (parts.next().unwrap_or(0), parts.next().unwrap_or(0))
        };
        let after = arg(field, "after", &self.vars)
            .as_str()
            .and_then(super::unbase64)
            .and_then(|b| String::from_utf8(b).ok())
            .and_then(|t| t.strip_prefix("key:").map(key));
        let from = after.map_or(0, |a| items.partition_point(|(k, _)| key(k) <= a));
        let keys: Vec<String> = items[from..]
            .iter()
            .map(|(k, _)| super::base64(format!("key:{k}").as_bytes()))
            .collect();
        let total = items.len();
        let objects = items[from..].iter().map(|(_, o)| *o).collect();
        let mut page = self.paginate_from(typename, objects, field, Some(0))?;
        page.total = total;
        if !page.count_only {
            page.keys = Some(keys[..page.items.len()].to_vec());
        }
        Some(page)
    }

    fn timeline(
        &mut self,
        repo: &'a str,
        issue: &'a FakeIssue,
        field: &Field<String>,
    ) -> Option<Page<'a>> {
        let data = &self.ctx.repos[repo];
        let mut items: Vec<(i64, u8, i64, Obj<'a>)> = Vec::new();
        for e in data.events.values().filter(|e| e.issue == issue.number) {
            items.push((e.created_at, 1, e.id, Obj::Event(repo, e)));
        }
        for c in data.comments.values().filter(|c| c.issue == issue.number) {
            items.push((c.created_at, 0, c.id, Obj::Comment(c)));
        }
        for r in data.pr_reviews.values().filter(|r| r.issue == issue.number) {
            items.push((r.submitted_at, 2, r.id, Obj::Review(repo, r)));
        }
        items.sort_by_key(|(t, k, id, _)| (*t, *k, *id));
        let types: Option<Vec<String>> = arg(field, "itemTypes", &self.vars).as_array().map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        });
        let list = items
            .into_iter()
            .map(|(.., o)| o)
            .filter(|o| {
                types
                    .as_ref()
                    .is_none_or(|t| t.contains(&item_type(&self.typename(o))))
            })
            .collect();
        let typename = if issue.is_pr {
            "PullRequestTimelineItemsConnection"
        } else {
            "IssueTimelineItemsConnection"
        };
        self.paginate(typename, list, field)
    }

    fn reviews(
        &mut self,
        repo: &'a str,
        issue: &'a FakeIssue,
        field: &Field<String>,
    ) -> Option<Page<'a>> {
        let states: Option<Vec<String>> = arg(field, "states", &self.vars).as_array().map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        });
        let mut list: Vec<&FakeReview> = self.ctx.repos[repo]
            .pr_reviews
            .values()
            .filter(|r| r.issue == issue.number)
            .filter(|r| states.as_ref().is_none_or(|s| s.contains(&r.state)))
            .collect();
        list.sort_by_key(|r| (r.submitted_at, r.id));
        let list = list.into_iter().map(|r| Obj::Review(repo, r)).collect();
        self.paginate("PullRequestReviewConnection", list, field)
    }

    /// The fields of a selection on a connection type, fragments expanded.
    fn flatten(
        &mut self,
        selection: &'a SelectionSet<'a, String>,
        typename: &str,
        out: &mut Vec<&'a Field<'a, String>>,
    ) {
        for item in &selection.items {
            match item {
                Selection::Field(f) => out.push(f),
                Selection::InlineFragment(f) => {
                    if f.type_condition
                        .as_ref()
                        .is_none_or(|TypeCondition::On(t)| t == typename)
                    {
                        self.flatten(&f.selection_set, typename, out);
                    }
                }
                Selection::FragmentSpread(s) => match self.fragments.get(&s.fragment_name).copied()
                {
                    Some(f) => {
                        let TypeCondition::On(t) = &f.type_condition;
                        if t == typename {
                            self.flatten(&f.selection_set, typename, out);
                        }
                    }
                    None => self.invalid(format!(
                        "Fragment {} was used, but not defined",
                        s.fragment_name
                    )),
                },
            }
        }
    }

    fn connection(
        &mut self,
        page: Option<Page<'a>>,
        field: &'a Field<'a, String>,
        path: &[Value],
    ) -> Value {
        let Some(page) = page else {
            return Value::Null;
        };
        let mut out = Map::new();
        let mut fields = Vec::new();
        self.flatten(&field.selection_set, page.typename, &mut fields);
        for f in fields {
            let key = f.alias.clone().unwrap_or_else(|| f.name.clone());
            let mut here = path.to_vec();
            here.push(json!(key));
            let value = match f.name.as_str() {
                "__typename" => json!(page.typename),
                "totalCount" => json!(page.total),
                "pageInfo" => {
                    let mut info = Map::new();
                    for p in &f.selection_set.items {
                        if let Selection::Field(p) = p {
                            let k = p.alias.clone().unwrap_or_else(|| p.name.clone());
                            let v = match p.name.as_str() {
                                "hasNextPage" => json!(page.has_next),
                                "hasPreviousPage" => json!(page.start > 0),
                                "endCursor" if !page.items.is_empty() => match &page.keys {
                                    Some(keys) => json!(keys.last()),
                                    None => json!(cursor(page.start + page.items.len() - 1)),
                                },
                                "startCursor" if !page.items.is_empty() => {
                                    json!(cursor(page.start))
                                }
                                "endCursor" | "startCursor" => Value::Null,
                                other => {
                                    self.invalid(format!(
                                        "Field '{other}' doesn't exist on type 'PageInfo'"
                                    ));
                                    Value::Null
                                }
                            };
                            info.insert(k, v);
                        }
                    }
                    Value::Object(info)
                }
                "nodes" | "edges" if page.count_only => {
                    self.invalid(format!(
                        "You must provide a `first` or `last` value to properly paginate the `{}` connection.",
                        field.name
                    ));
                    Value::Null
                }
                "nodes" => Value::Array(
                    page.items
                        .iter()
                        .enumerate()
                        .map(|(i, o)| {
                            let mut at = here.clone();
                            at.push(json!(i));
                            self.object(*o, &f.selection_set, &at)
                        })
                        .collect(),
                ),
                other => {
                    self.invalid(format!(
                        "Field '{other}' doesn't exist on type '{}'",
                        page.typename
                    ));
                    Value::Null
                }
            };
            out.insert(key, value);
        }
        Value::Object(out)
    }
}
