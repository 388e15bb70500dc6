//! The "People and backlog" dashboard and the read-only MySQL account behind it, on a real
//! MariaDB holding two years of generated mirror rows (three repositories, one outside the
//! project; bots, deleted users, Prow commands, review comments, merges by people and by a
//! bot).
//!
//! What is rendered is what runs: velogen renders a config pointing at the test server,
//! the test runs the rendered grants script with the rendered `grants.sql`, connects the way
//! the rendered Grafana datasource says, and runs every SQL panel of the rendered dashboard
//! with Grafana's macros expanded. Each panel's rows must equal the same question answered
//! in Rust over the generated rows, and no 30-day panel may scan `comments` or
//! `issue_events` whole (EXPLAIN).
//!
//! Long because it holds an oracle: every panel's question answered again in plain Rust
//! over the generated rows, which is what makes the panels' SQL checkable.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use mysql_async::prelude::Queryable;
use mysql_async::{Opts, Pool, Row, Value};
use regex::Regex;
use serde_json::Value as Json;
use velodrome_model::bots::Bots;

use support::history::{at, fixture, insert_rows};

/// 2026-01-01 00:00:00 UTC: the generated history ends here.
const END: i64 = 1_767_225_600;
const DAY: i64 = 86_400;
const WEEK: i64 = 604_800;
/// The history is two years long.
const START: i64 = END - 730 * DAY;
/// The dashboard's default window: the last 30 days.
const FROM: i64 = END - 30 * DAY;

const PROJECT_REPOS: [&str; 2] = ["velo/api", "velo/web"];
/// Mirrored for another project on the same server: never on this dashboard.
const OTHER_REPO: &str = "other/repo";
/// Logins the default `bots:` catch, written in the cases GitHub shows.
const BOT_LOGINS: [&str; 4] = [
    "k8s-ci-robot",
    "dependabot[bot]",
    "Renovate[Bot]",
    "GoogleBot",
];
const STATES: [&str; 5] = [
    "APPROVED",
    "CHANGES_REQUESTED",
    "COMMENTED",
    "DISMISSED",
    "PENDING",
];

// ---------------------------------------------------------------------------------------
// Generated mirror rows.

#[derive(Clone, Debug)]
struct Item {
    repo: &'static str,
    id: i64,
    title: String,
    user: String,
    open: bool,
    is_pr: bool,
    created: i64,
    updated: i64,
    closed: Option<i64>,
}

#[derive(Clone, Debug)]
struct Event {
    repo: &'static str,
    id: i64,
    issue: i64,
    event: &'static str,
    label: Option<&'static str>,
    actor: Option<String>,
    at: i64,
}

#[derive(Clone, Debug)]
struct Comment {
    repo: &'static str,
    id: i64,
    review: bool,
    issue: i64,
    body: &'static str,
    user: String,
    at: i64,
}

#[derive(Clone, Debug)]
struct Review {
    repo: &'static str,
    id: i64,
    issue: i64,
    user: String,
    state: &'static str,
    at: Option<i64>,
}

#[derive(Default)]
struct Mirror {
    items: Vec<Item>,
    events: Vec<Event>,
    comments: Vec<Comment>,
    reviews: Vec<Review>,
}

/// Comment bodies as people write them; the Prow commands among them are what the
/// reviewers panel counts (a command must be on a line of its own).
const BODIES: [&str; 12] = [
    "/lgtm",
    "/approve",
    "/lgtm cancel",
    "/approve cancel",
    "/approve no-issue",
    "Thanks for the fix!\r\n/lgtm\r\n",
    "/LGTM",
    "/retest",
    "please /lgtm this",
    "Looks good to me.",
    "Could you add a test?",
    "/lgtm\n/approve",
];

fn humans() -> Vec<String> {
    let mut out = vec!["botanist".to_owned(), "k8s-ci-robot-fan".to_owned()];
    out.extend((0..58).map(|i| format!("dev{i:02}")));
    out
}

fn generate(seed: u64) -> Mirror {
    let mut rng = fastrand::Rng::with_seed(seed);
    let humans = humans();
    // Few people do most of the work: index k is picked about 1/k as often.
    let someone = |rng: &mut fastrand::Rng| -> String {
        match rng.u8(..100) {
            0..=11 => BOT_LOGINS[rng.usize(..BOT_LOGINS.len())].to_owned(),
            12..=14 => String::new(),
            _ => {
                let upto = rng.usize(1..=humans.len());
                humans[rng.usize(..upto)].clone()
            }
        }
    };
    let maintainer = |rng: &mut fastrand::Rng| humans[2 + rng.usize(..6)].clone();
    let mut m = Mirror::default();
    let mut event_id = 1_000_000;
    let mut comment_id = 5_000_000;
    let mut review_id = 9_000_000;
    for repo in [PROJECT_REPOS[0], PROJECT_REPOS[1], OTHER_REPO] {
        let mut created: Vec<i64> = (0..2400).map(|_| START + rng.i64(0..730 * DAY)).collect();
        created.sort_unstable();
        for (n, created) in created.into_iter().enumerate() {
            let id = n as i64 + 1;
            let is_pr = rng.u8(..10) < 6;
            let user = someone(&mut rng);
            let title = if id % 17 == 0 {
                format!("Don't \"quote\" me: ünïcode {id}")
            } else {
                format!("{} {id} of {repo}", if is_pr { "Change" } else { "Bug" })
            };
            let mut item = Item {
                repo,
                id,
                title,
                user: user.clone(),
                open: true,
                is_pr,
                created,
                updated: created,
                closed: None,
            };
            let mut event = |m: &mut Mirror, name, label, actor: Option<String>, t| {
                event_id += 1;
                m.events.push(Event {
                    repo,
                    id: event_id,
                    issue: id,
                    event: name,
                    label,
                    actor,
                    at: t,
                });
            };
            let outcome = rng.u8(..100);
            let close_at = created + rng.i64(3_600..45 * DAY);
            if close_at <= END && outcome < 80 {
                item.open = false;
                item.closed = Some(close_at);
                if is_pr && outcome < 60 {
                    let merger = match rng.u8(..100) {
                        0..=44 => Some("k8s-ci-robot".to_owned()),
                        45..=89 => Some(maintainer(&mut rng)),
                        _ => None,
                    };
                    event(&mut m, "closed", None, merger.clone(), close_at);
                    event(&mut m, "merged", None, merger, close_at);
                } else {
                    let closer = Some(someone(&mut rng)).filter(|u| !u.is_empty());
                    event(&mut m, "closed", None, closer, close_at);
                }
            }
            let last = item.closed.unwrap_or(END).min(END);
            for _ in 0..rng.usize(0..3) {
                let label = ["lgtm", "approved", "kind/bug"][rng.usize(..3)];
                let t = created + rng.i64(0..=(last - created));
                event(
                    &mut m,
                    "labeled",
                    Some(label),
                    Some("k8s-ci-robot".into()),
                    t,
                );
                item.updated = item.updated.max(t);
            }
            for _ in 0..rng.usize(0..14) {
                let t = created + rng.i64(60..=(last - created).max(61) + 7 * DAY);
                if t > END {
                    continue;
                }
                let commenter = if rng.u8(..5) == 0 {
                    user.clone()
                } else {
                    someone(&mut rng)
                };
                let review = is_pr && rng.u8(..4) == 0;
                comment_id += 1;
                m.comments.push(Comment {
                    repo,
                    id: comment_id,
                    review,
                    issue: id,
                    body: BODIES[rng.usize(..BODIES.len())],
                    user: commenter,
                    at: t,
                });
                item.updated = item.updated.max(t);
            }
            if is_pr {
                for _ in 0..rng.usize(0..3) {
                    let state = STATES[rng.usize(..STATES.len())];
                    let t = created + rng.i64(60..=(last - created).max(61));
                    review_id += 1;
                    m.reviews.push(Review {
                        repo,
                        id: review_id,
                        issue: id,
                        user: someone(&mut rng),
                        state,
                        at: (state != "PENDING" && t <= END).then_some(t),
                    });
                }
            }
            m.items.push(item);
        }
    }
    // Three people whose first pull request merged in the last 30 days.
    for k in 0..3 {
        let id = 10_000 + k;
        let created = END - 20 * DAY + k * DAY;
        let merged = END - 10 * DAY + k * DAY;
        m.items.push(Item {
            repo: PROJECT_REPOS[0],
            id,
            title: format!("First contribution {k}"),
            user: format!("newcomer-{k}"),
            open: false,
            is_pr: true,
            created,
            updated: merged,
            closed: Some(merged),
        });
        for name in ["closed", "merged"] {
            event_id += 1;
            m.events.push(Event {
                repo: PROJECT_REPOS[0],
                id: event_id,
                issue: id,
                event: name,
                label: None,
                actor: Some("dev03".into()),
                at: merged,
            });
        }
    }
    m
}

async fn load(pool: &Pool, m: &Mirror, with_reviews: bool) {
    let issues = m
        .items
        .iter()
        .map(|i| {
            vec![
                i.repo.into(),
                i.id.into(),
                i.title.as_str().into(),
                "".into(),
                i.user.as_str().into(),
                if i.open { "open" } else { "closed" }.into(),
                0.into(),
                i.is_pr.into(),
                i.closed.map(at).into(),
                at(i.created).into(),
                at(i.updated).into(),
            ]
        })
        .collect();
    insert_rows(
        pool,
        "issues",
        &[
            "repository",
            "id",
            "title",
            "body",
            "user",
            "state",
            "comments",
            "is_pr",
            "issue_closed_at",
            "issue_created_at",
            "issue_updated_at",
        ],
        issues,
    )
    .await;
    let events = m
        .events
        .iter()
        .map(|e| {
            vec![
                e.repo.into(),
                e.id.into(),
                e.issue.into(),
                e.event.into(),
                e.label.into(),
                e.actor.as_deref().into(),
                at(e.at).into(),
            ]
        })
        .collect();
    insert_rows(
        pool,
        "issue_events",
        &[
            "repository",
            "id",
            "issue_id",
            "event",
            "label",
            "actor",
            "event_created_at",
        ],
        events,
    )
    .await;
    let comments = m
        .comments
        .iter()
        .map(|c| {
            vec![
                c.repo.into(),
                c.id.into(),
                c.review.into(),
                c.issue.into(),
                c.body.into(),
                c.user.as_str().into(),
                at(c.at).into(),
                at(c.at).into(),
            ]
        })
        .collect();
    insert_rows(
        pool,
        "comments",
        &[
            "repository",
            "id",
            "pull_request",
            "issue_id",
            "body",
            "user",
            "comment_created_at",
            "comment_updated_at",
        ],
        comments,
    )
    .await;
    let mut conn = pool.get_conn().await.expect("connect");
    if with_reviews {
        // The table is the fetcher's migration 2's.
        drop(conn);
        let reviews = m
            .reviews
            .iter()
            .map(|r| {
                vec![
                    r.repo.into(),
                    r.id.into(),
                    format!("PRR_{}", r.id).into(),
                    r.issue.into(),
                    r.user.as_str().into(),
                    r.state.into(),
                    r.at.map(at).into(),
                    "".into(),
                ]
            })
            .collect();
        insert_rows(
            pool,
            "reviews",
            &[
                "repository",
                "id",
                "node_id",
                "issue_id",
                "user",
                "state",
                "submitted_at",
                "body",
            ],
            reviews,
        )
        .await;
        conn = pool.get_conn().await.expect("connect");
    }
    // The fetcher's own state, which Grafana must not read.
    conn.query_drop(
        "INSERT INTO sync_cursors (repository, endpoint, etag) VALUES ('velo/api', 'issues', 'W/\"etag\"')",
    )
    .await
    .expect("cursor");
    conn.query_drop(
        "INSERT INTO sync_event_backfill (repository, issue_id) VALUES ('velo/api', 1)",
    )
    .await
    .expect("backfill");
    // Fresh statistics, so EXPLAIN shows the plans a server with this data would choose.
    conn.query_drop("ANALYZE TABLE issues, issue_events, comments")
        .await
        .expect("analyze");
}

// ---------------------------------------------------------------------------------------
// The same questions, answered in Rust.

type Rows = Vec<Vec<String>>;

struct Oracle<'a> {
    m: &'a Mirror,
    bots: Bots,
    lgtm: Regex,
    approve: Regex,
    items: BTreeMap<(&'static str, i64), &'a Item>,
}

impl<'a> Oracle<'a> {
    fn new(m: &'a Mirror) -> Self {
        Self {
            m,
            bots: Bots::default(),
            lgtm: Regex::new(velogen::LGTM_COMMAND).expect("lgtm pattern"),
            approve: Regex::new(velogen::APPROVE_COMMAND).expect("approve pattern"),
            items: m.items.iter().map(|i| ((i.repo, i.id), i)).collect(),
        }
    }

    fn person(&self, login: &str) -> bool {
        !login.is_empty() && !self.bots.is_bot(login)
    }

    fn mine(repo: &str) -> bool {
        PROJECT_REPOS.contains(&repo)
    }

    fn within(t: i64, from: i64, to: i64) -> bool {
        (from..=to).contains(&t)
    }

    /// Sorts by the count in `column` descending, then by the first column; keeps `limit`.
    fn rank(mut rows: Vec<(i64, Vec<String>)>, limit: usize) -> Rows {
        rows.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1[0].cmp(&b.1[0])));
        rows.into_iter().take(limit).map(|(_, r)| r).collect()
    }

    fn merged(&self) -> BTreeSet<(&'static str, i64)> {
        self.m
            .events
            .iter()
            .filter(|e| e.event == "merged")
            .map(|e| (e.repo, e.issue))
            .collect()
    }

    fn pr_authors(&self, from: i64, to: i64) -> Rows {
        let merged = self.merged();
        let mut by: BTreeMap<&str, [i64; 3]> = BTreeMap::new();
        for i in &self.m.items {
            if Self::mine(i.repo)
                && i.is_pr
                && Self::within(i.created, from, to)
                && self.person(&i.user)
            {
                let e = by.entry(&i.user).or_default();
                e[0] += 1;
                e[1] += i64::from(merged.contains(&(i.repo, i.id)));
                e[2] += i64::from(i.open);
            }
        }
        Self::rank(
            by.into_iter()
                .map(|(u, c)| {
                    (
                        c[0],
                        vec![
                            u.to_owned(),
                            c[0].to_string(),
                            c[1].to_string(),
                            c[2].to_string(),
                        ],
                    )
                })
                .collect(),
            20,
        )
    }

    fn commenters(&self, from: i64, to: i64) -> Rows {
        // Per commenter: comments, and the items they were on.
        type Tally<'b> = (i64, BTreeSet<(&'b str, i64)>);
        let mut by: BTreeMap<&str, Tally> = BTreeMap::new();
        for c in &self.m.comments {
            if Self::mine(c.repo) && Self::within(c.at, from, to) && self.person(&c.user) {
                let e = by.entry(&c.user).or_default();
                e.0 += 1;
                e.1.insert((c.repo, c.issue));
            }
        }
        Self::rank(
            by.into_iter()
                .map(|(u, (n, items))| {
                    (
                        n,
                        vec![u.to_owned(), n.to_string(), items.len().to_string()],
                    )
                })
                .collect(),
            20,
        )
    }

    fn reviewers(&self, from: i64, to: i64, reviews: bool) -> Rows {
        #[derive(Default)]
        struct Tally<'b> {
            prs: BTreeSet<(&'b str, i64)>,
            lgtm: i64,
            approve: i64,
            review_comments: i64,
            reviews: i64,
        }
        let mut by: BTreeMap<&str, Tally> = BTreeMap::new();
        for c in &self.m.comments {
            let Some(item) = self.items.get(&(c.repo, c.issue)) else {
                continue;
            };
            let lgtm = self.lgtm.is_match(c.body);
            let approve = self.approve.is_match(c.body);
            if Self::mine(c.repo)
                && Self::within(c.at, from, to)
                && item.is_pr
                && c.user != item.user
                && (c.review || lgtm || approve)
                && self.person(&c.user)
            {
                let t = by.entry(&c.user).or_default();
                t.prs.insert((c.repo, c.issue));
                t.lgtm += i64::from(lgtm);
                t.approve += i64::from(approve);
                t.review_comments += i64::from(c.review);
            }
        }
        if reviews {
            for r in &self.m.reviews {
                let Some(item) = self.items.get(&(r.repo, r.issue)) else {
                    continue;
                };
                if Self::mine(r.repo)
                    && r.at.is_some_and(|t| Self::within(t, from, to))
                    && r.state != "PENDING"
                    && r.user != item.user
                    && self.person(&r.user)
                {
                    let t = by.entry(&r.user).or_default();
                    t.prs.insert((r.repo, r.issue));
                    t.reviews += 1;
                }
            }
        }
        Self::rank(
            by.into_iter()
                .map(|(u, t)| {
                    let mut row = vec![
                        u.to_owned(),
                        t.prs.len().to_string(),
                        t.lgtm.to_string(),
                        t.approve.to_string(),
                        t.review_comments.to_string(),
                    ];
                    if reviews {
                        row.push(t.reviews.to_string());
                    }
                    (t.prs.len() as i64, row)
                })
                .collect(),
            20,
        )
    }

    fn mergers(&self, from: i64, to: i64) -> Rows {
        let mut by: BTreeMap<&str, i64> = BTreeMap::new();
        for e in &self.m.events {
            if let Some(actor) = &e.actor
                && Self::mine(e.repo)
                && e.event == "merged"
                && Self::within(e.at, from, to)
                && self.person(actor)
            {
                *by.entry(actor).or_default() += 1;
            }
        }
        Self::rank(
            by.into_iter()
                .map(|(u, n)| (n, vec![u.to_owned(), n.to_string()]))
                .collect(),
            20,
        )
    }

    /// Each person's first merged pull request: (time, repository, number, title).
    fn first_merges(&self) -> BTreeMap<&str, (i64, &'static str, i64, &str)> {
        let mut first: BTreeMap<&str, (i64, &'static str, i64, &str)> = BTreeMap::new();
        for e in &self.m.events {
            let Some(item) = self.items.get(&(e.repo, e.issue)) else {
                continue;
            };
            if Self::mine(e.repo) && e.event == "merged" && item.is_pr && self.person(&item.user) {
                let candidate = (e.at, e.repo, e.issue, item.title.as_str());
                let slot = first.entry(&item.user).or_insert(candidate);
                if (candidate.0, candidate.1, candidate.2) < (slot.0, slot.1, slot.2) {
                    *slot = candidate;
                }
            }
        }
        first
    }

    fn new_contributors(&self, from: i64, to: i64) -> Rows {
        let mut weeks: BTreeMap<i64, i64> = BTreeMap::new();
        for (t, ..) in self.first_merges().values() {
            if Self::within(*t, from, to) {
                *weeks.entry(t / WEEK * WEEK).or_default() += 1;
            }
        }
        weeks
            .into_iter()
            .map(|(w, n)| vec![w.to_string(), n.to_string()])
            .collect()
    }

    fn newest_contributors(&self, from: i64, to: i64) -> Rows {
        let mut rows: Vec<(i64, &str, Vec<String>)> = self
            .first_merges()
            .into_iter()
            .filter(|(_, (t, ..))| Self::within(*t, from, to))
            .map(|(user, (t, repo, id, title))| {
                (
                    t,
                    user,
                    vec![
                        user.to_owned(),
                        at(t),
                        repo.to_owned(),
                        title.to_owned(),
                        format!("https://github.com/{repo}/pull/{id}"),
                    ],
                )
            })
            .collect();
        rows.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(b.1)));
        rows.into_iter().take(50).map(|(.., r)| r).collect()
    }

    /// The oldest open items, without the age column (it depends on today).
    fn oldest(&self, pull_requests: bool) -> Rows {
        let mut open: Vec<&Item> = self
            .m
            .items
            .iter()
            .filter(|i| {
                Self::mine(i.repo) && i.open && i.is_pr == pull_requests && self.person(&i.user)
            })
            .collect();
        open.sort_by(|a, b| (a.created, a.repo, a.id).cmp(&(b.created, b.repo, b.id)));
        let kind = if pull_requests { "pull" } else { "issues" };
        open.into_iter()
            .take(20)
            .map(|i| {
                vec![
                    i.repo.to_owned(),
                    i.id.to_string(),
                    i.title.clone(),
                    i.user.clone(),
                    at(i.created),
                    at(i.updated),
                    format!("https://github.com/{}/{kind}/{}", i.repo, i.id),
                ]
            })
            .collect()
    }

    /// What `title` should show for the window.
    fn expected(&self, title: &str, from: i64, to: i64, reviews: bool) -> Rows {
        match title {
            "Top pull request authors" => self.pr_authors(from, to),
            "Top commenters" => self.commenters(from, to),
            "Top reviewers" => self.reviewers(from, to, reviews),
            "Mergers" => self.mergers(from, to),
            "New contributors per week" => self.new_contributors(from, to),
            "Newest contributors" => self.newest_contributors(from, to),
            "Oldest open pull requests" => self.oldest(true),
            "Oldest open issues" => self.oldest(false),
            other => panic!("panel {other:?} has no oracle in this test: add one"),
        }
    }
}

// ---------------------------------------------------------------------------------------
// Grafana's side: macros, as pkg/tsdb/mysql/macros.go expands them.

/// Queries Grafana refuses to run (its `restrictedRegExp`), so a panel must not match.
fn restricted() -> Regex {
    Regex::new(
        r"(?im)([\s]*show[\s]+grants|[\s,]session_user\([^\)]*\)|[\s,]current_user(\([^\)]*\))?|[\s,]system_user\([^\)]*\)|[\s,]user\([^\)]*\))([\s,;]|$)",
    )
    .expect("restricted pattern")
}

fn interval_seconds(text: &str) -> i64 {
    let text = text.trim_matches(|c| c == '\'' || c == '"');
    let (number, unit) = text.split_at(text.len() - 1);
    let n: i64 = number.parse().unwrap_or_else(|_| panic!("interval {text}"));
    n * match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3_600,
        "d" => DAY,
        "w" => WEEK,
        _ => panic!("interval unit of {text}"),
    }
}

/// The SQL Grafana sends for a dashboard time range of [from, to].
fn interpolate(sql: &str, from: i64, to: i64) -> String {
    assert!(
        !restricted().is_match(sql),
        "Grafana would refuse this query:\n{sql}"
    );
    let macro_call = Regex::new(r"\$(\w+)\(([^\)]*)\)").expect("macro pattern");
    let out = macro_call.replace_all(sql, |caps: &regex::Captures<'_>| {
        let args: Vec<&str> = caps[2].split(',').map(str::trim).collect();
        match &caps[1] {
            "__timeFilter" => format!(
                "{} BETWEEN FROM_UNIXTIME({from}) AND FROM_UNIXTIME({to})",
                args[0]
            ),
            "__timeFrom" => format!("FROM_UNIXTIME({from})"),
            "__timeTo" => format!("FROM_UNIXTIME({to})"),
            name @ ("__timeGroup" | "__timeGroupAlias") => {
                let s = interval_seconds(args[1]);
                let group = format!("UNIX_TIMESTAMP({}) DIV {s} * {s}", args[0]);
                if name == "__timeGroupAlias" {
                    format!("{group} AS \"time\"")
                } else {
                    group
                }
            }
            other => panic!("macro ${other} is not expanded by this test"),
        }
    });
    let variable = Regex::new(r"\$\{?\w").expect("variable pattern");
    assert!(
        !variable.is_match(&out),
        "a template variable is left in:\n{out}"
    );
    out.into_owned()
}

fn text(value: &Value) -> String {
    match value {
        Value::NULL => "NULL".to_owned(),
        Value::Bytes(b) => String::from_utf8_lossy(b).into_owned(),
        Value::Int(i) => i.to_string(),
        Value::UInt(u) => u.to_string(),
        Value::Float(f) => f.to_string(),
        Value::Double(d) => d.to_string(),
        Value::Date(y, mo, d, h, mi, s, _) => {
            format!("{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02}")
        }
        Value::Time(..) => format!("{value:?}"),
    }
}

/// Column names and rows of `sql`, every value as text.
async fn run(conn: &mut mysql_async::Conn, sql: &str) -> (Vec<String>, Rows) {
    let rows: Vec<Row> = conn
        .query(sql)
        .await
        .unwrap_or_else(|e| panic!("{e}\n{sql}"));
    let columns = rows
        .first()
        .map(|r| {
            r.columns_ref()
                .iter()
                .map(|c| c.name_str().into_owned())
                .collect()
        })
        .unwrap_or_default();
    let rows = rows
        .into_iter()
        .map(|r| r.unwrap().iter().map(text).collect())
        .collect();
    (columns, rows)
}

/// One table access of an EXPLAIN: alias, access type, key and estimated rows.
#[derive(Debug)]
struct Step {
    table: String,
    kind: String,
    key: String,
    rows: i64,
}

/// Every table access EXPLAIN lists for `sql`.
async fn plan(conn: &mut mysql_async::Conn, sql: &str) -> Vec<Step> {
    let (columns, rows) = run(conn, &format!("EXPLAIN {sql}")).await;
    let at = |name: &str| {
        columns
            .iter()
            .position(|c| c == name)
            .unwrap_or_else(|| panic!("EXPLAIN has no {name} column: {columns:?}"))
    };
    let (table, kind, key, estimate) = (at("table"), at("type"), at("key"), at("rows"));
    rows.into_iter()
        .map(|r| Step {
            table: r[table].clone(),
            kind: r[kind].clone(),
            key: r[key].clone(),
            rows: r[estimate].parse().unwrap_or(0),
        })
        .collect()
}

// ---------------------------------------------------------------------------------------
// The rendered objects.

/// The admin side of the test server, from VELODROME_TEST_MYSQL_URL.
struct Server {
    host: String,
    port: u16,
    user: String,
    password: String,
}

fn server() -> Server {
    let url = std::env::var("VELODROME_TEST_MYSQL_URL")
        .unwrap_or_else(|_| "mysql://root@127.0.0.1:3306/test".to_owned());
    let opts = Opts::from_url(&url).expect("VELODROME_TEST_MYSQL_URL");
    Server {
        host: opts.ip_or_hostname().to_owned(),
        port: opts.tcp_port(),
        user: opts.user().unwrap_or("root").to_owned(),
        password: opts.pass().unwrap_or("").to_owned(),
    }
}

/// True when the `mariadb` client (what the grants Job runs) is installed; otherwise the
/// test is skipped, or fails under VELODROME_REQUIRE_SERVICES=1.
fn client_available() -> bool {
    if Command::new("mariadb").arg("--version").output().is_ok() {
        return true;
    }
    assert!(
        !support::mysql::services_required(),
        "the mariadb client is required (VELODROME_REQUIRE_SERVICES=1) but not installed"
    );
    eprintln!("skipping: the mariadb client is not installed (apt-get install mariadb-client)");
    false
}

/// Everything the test needs from one render.
struct Rendered {
    objects: Vec<Json>,
    project: velogen::model::Project,
    bots: Bots,
    github_url: String,
}

impl Rendered {
    /// Renders the project `velo` (the two project repositories) with MySQL as an external
    /// host: the test server, database `database`.
    fn new(database: &str) -> Self {
        let s = server();
        let config = format!(
            "mysql:\n  mode: external\n  host: {host}\n  port: {port}\n  database: {database}\n\
             projects:\n  velo:\n    repositories:\n      {a}:\n      {b}:\n",
            host = s.host,
            port = s.port,
            a = PROJECT_REPOS[0],
            b = PROJECT_REPOS[1],
        );
        let valid = velogen::load_str(Path::new("people-test.yaml"), &config)
            .unwrap_or_else(|d| panic!("{d:?}"));
        let templates = velogen::render::Templates::embedded().expect("templates");
        let objects = velogen::render_config(&valid.config, &templates)
            .expect("renders")
            .iter()
            .map(|o| serde_json::to_value(&o.object).expect("JSON"))
            .collect();
        Self {
            objects,
            project: valid.config.projects[0].clone(),
            bots: valid.config.bots.clone(),
            github_url: valid.config.github.url.clone(),
        }
    }

    fn object(&self, kind: &str, name: impl Fn(&str) -> bool) -> &Json {
        self.objects
            .iter()
            .find(|o| o["kind"] == kind && name(o["metadata"]["name"].as_str().unwrap_or("")))
            .unwrap_or_else(|| panic!("no {kind} rendered"))
    }

    fn data(&self, config_map: &str, key: &str) -> String {
        self.object("ConfigMap", |n| n == config_map)["data"][key]
            .as_str()
            .unwrap_or_else(|| panic!("ConfigMap {config_map} has no {key}"))
            .to_owned()
    }

    /// The grants Job's container.
    fn job_container(&self) -> &Json {
        &self.object("Job", |n| n.starts_with("mysql-grants-"))["spec"]["template"]["spec"]["containers"]
            [0]
    }

    /// The literal env values of the grants Job, and the Secret keys it reads by env name.
    fn job_env(&self) -> (BTreeMap<String, String>, BTreeMap<String, (String, String)>) {
        let mut literal = BTreeMap::new();
        let mut secret = BTreeMap::new();
        for e in self.job_container()["env"].as_array().expect("env") {
            let name = e["name"].as_str().expect("name").to_owned();
            if let Some(v) = e["value"].as_str() {
                literal.insert(name, v.to_owned());
            } else {
                let r = &e["valueFrom"]["secretKeyRef"];
                secret.insert(
                    name,
                    (
                        r["name"].as_str().expect("secret").to_owned(),
                        r["key"].as_str().expect("key").to_owned(),
                    ),
                );
            }
        }
        (literal, secret)
    }

    /// The rendered MySQL datasource of the project's Grafana.
    fn datasource(&self) -> Json {
        let text = self.data("grafana-velo", "datasources.yaml");
        let file: Json = serde_saphyr::from_str(&text).expect("datasources.yaml");
        file["datasources"]
            .as_array()
            .expect("datasources")
            .iter()
            .find(|d| d["type"] == "mysql")
            .cloned()
            .expect("a mysql datasource")
    }

    /// (title, rawSql) of every SQL panel of the rendered people dashboard.
    fn panels(&self) -> Vec<(String, String)> {
        panels_of(&serde_json::from_str(&self.data("grafana-velo", "people.json")).expect("JSON"))
    }
}

fn panels_of(dashboard: &Json) -> Vec<(String, String)> {
    dashboard["panels"]
        .as_array()
        .expect("panels")
        .iter()
        // Rows, and the freshness row every dashboard ends with (InfluxDB, checked by the
        // end-to-end test).
        .filter(|p| p["type"] != "row" && p["datasource"]["type"] != "influxdb")
        .map(|p| {
            let target = &p["targets"][0];
            assert_eq!(target["datasource"]["uid"], "velodrome-mysql", "{p}");
            (
                p["title"].as_str().expect("title").to_owned(),
                target["rawSql"].as_str().expect("rawSql").to_owned(),
            )
        })
        .collect()
}

/// Runs the rendered grants script against the test server, as the Job would: its literal
/// env from the Job, the Secrets' values from the test.
fn run_grants(
    rendered: &Rendered,
    dir: &Path,
    grants_sql: &str,
    user: &str,
    password: &str,
) -> Output {
    std::fs::write(
        dir.join("grants.sh"),
        rendered.data("mysql-grants", "grants.sh"),
    )
    .expect("grants.sh");
    std::fs::write(dir.join("grants.sql"), grants_sql).expect("grants.sql");
    let (literal, secret) = rendered.job_env();
    let s = server();
    let command = rendered.job_container()["command"].clone();
    assert_eq!(
        command[0], "sh",
        "the Job runs the script with sh: {command}"
    );
    let script_in_pod = PathBuf::from(command[1].as_str().expect("script path"));
    assert_eq!(
        script_in_pod.parent().map(Path::to_path_buf),
        literal.get("VELODROME_GRANTS_DIR").map(PathBuf::from),
        "the script and grants.sql are mounted together"
    );
    let mut cmd = Command::new("sh");
    cmd.arg(dir.join("grants.sh"));
    for (name, value) in &literal {
        cmd.env(name, value);
    }
    cmd.env("VELODROME_GRANTS_DIR", dir);
    for (name, (secret_name, key)) in &secret {
        let value = match (name.as_str(), key.as_str()) {
            ("MYSQL_ADMIN_USER", "user") => s.user.clone(),
            ("MYSQL_PWD", "password") => s.password.clone(),
            ("GRAFANA_MYSQL_USER", "user") => user.to_owned(),
            ("GRAFANA_MYSQL_PASSWORD", "password") => password.to_owned(),
            other => panic!("unexpected Secret reference {other:?} of {secret_name}"),
        };
        cmd.env(name, value);
    }
    cmd.output().expect("run sh")
}

/// Drops a test account when the test ends, however it ends (the server is shared).
struct AccountGuard {
    user: String,
}

impl AccountGuard {
    fn new(user: &str) -> Self {
        drop_account(user);
        Self {
            user: user.to_owned(),
        }
    }
}

impl Drop for AccountGuard {
    fn drop(&mut self) {
        drop_account(&self.user);
    }
}

fn drop_account(user: &str) {
    let s = server();
    let status = Command::new("mariadb")
        .arg(format!("--host={}", s.host))
        .arg(format!("--port={}", s.port))
        .arg(format!("--user={}", s.user))
        .arg("--batch")
        .arg("-e")
        .arg(format!("DROP USER IF EXISTS '{user}'@'%'"))
        .env("MYSQL_PWD", &s.password)
        .status();
    if !status.is_ok_and(|s| s.success()) {
        eprintln!("could not drop test account {user}");
    }
}

fn account_name(suffix: &str) -> String {
    let prefix = std::env::var("VELODROME_TEST_DB_PREFIX").unwrap_or_else(|_| "vt_".to_owned());
    format!("{prefix}{suffix}")
}

/// A connection as the Grafana datasource makes it: its URL, database and session zone.
async fn grafana_connection(
    rendered: &Rendered,
    user: &str,
    password: &str,
) -> (Pool, mysql_async::Conn) {
    let ds = rendered.datasource();
    assert_eq!(ds["user"], "$GRAFANA_MYSQL_USER", "{ds}");
    assert_eq!(
        ds["secureJsonData"]["password"], "$GRAFANA_MYSQL_PASSWORD",
        "{ds}"
    );
    let url = format!(
        "mysql://{user}:{password}@{}/{}",
        ds["url"].as_str().expect("url"),
        ds["jsonData"]["database"].as_str().expect("database")
    );
    let pool = Pool::new(url.as_str());
    let mut conn = pool.get_conn().await.expect("the Grafana account connects");
    let zone = ds["jsonData"]["timezone"]
        .as_str()
        .expect("session time zone");
    conn.query_drop(format!("SET time_zone = '{zone}'"))
        .await
        .expect("time zone");
    (pool, conn)
}

fn server_error(result: Result<(), mysql_async::Error>) -> u16 {
    match result {
        Err(mysql_async::Error::Server(e)) => e.code,
        other => panic!("expected a server error, got {other:?}"),
    }
}

/// Runs every panel of `panels` for the last 30 days and for the whole history: the rows
/// equal the oracle's, none is empty, no bot or foreign repository shows, and no 30-day
/// query reads `comments`, `issue_events` or `reviews` whole.
async fn check_panels(
    conn: &mut mysql_async::Conn,
    panels: &[(String, String)],
    oracle: &Oracle<'_>,
    reviews: bool,
) {
    assert!(panels.len() >= 8, "{panels:?}");
    // Rows of the large tables, by the alias every panel gives them.
    let mut totals: BTreeMap<&str, i64> = BTreeMap::new();
    for (alias, table) in [("c", "comments"), ("e", "issue_events"), ("v", "reviews")] {
        if reviews || alias != "v" {
            let n: Option<i64> = conn
                .query_first(format!("SELECT COUNT(*) FROM {table}"))
                .await
                .expect("count");
            totals.insert(alias, n.unwrap_or(0));
        }
    }
    for (title, raw) in panels {
        for (from, to, label) in [(FROM, END, "last 30 days"), (START - DAY, END, "all time")] {
            let sql = interpolate(raw, from, to);
            let (columns, mut rows) = run(conn, &sql).await;
            assert!(
                !rows.is_empty(),
                "{title} ({label}) returned no rows:\n{sql}"
            );
            let oldest = title.starts_with("Oldest open");
            if oldest {
                let age = columns
                    .iter()
                    .position(|c| c == "Age (days)")
                    .expect("age column");
                let opened = columns.iter().position(|c| c == "Opened").expect("opened");
                for row in &mut rows {
                    let days: i64 = row[age].parse().expect("age in days");
                    let created = support::fake_github::parse_rfc3339(&format!(
                        "{}Z",
                        row[opened].replace(' ', "T")
                    ))
                    .expect("opened time");
                    assert!(days >= END / DAY - created / DAY, "{title}: {row:?}");
                    row.remove(age);
                }
            }
            let expected = oracle.expected(title, from, to, reviews);
            assert_eq!(rows, expected, "{title} ({label}):\n{sql}");
            eprintln!(
                "{title} ({label}): {} rows, first {:?}",
                rows.len(),
                rows[0]
            );
            for row in &rows {
                for cell in row {
                    assert!(
                        !BOT_LOGINS.iter().any(|b| b.eq_ignore_ascii_case(cell)),
                        "{title}: bot {cell} shown"
                    );
                    assert!(!cell.contains(OTHER_REPO), "{title}: {cell}");
                }
            }
        }
        let sql = interpolate(raw, FROM, END);
        let steps = plan(conn, &sql).await;
        eprintln!("{title}: EXPLAIN {steps:?}");
        for step in steps {
            if step.table.starts_with('<') {
                continue; // a derived table, materialized from the rows above
            }
            // A scan of the table or of a whole index, or a primary-key range over
            // `repository IN (...)` (every row of the project's repositories), is a full
            // scan under another name.
            assert!(
                step.kind != "ALL"
                    && step.kind != "index"
                    && !(step.kind == "range" && step.key == "PRIMARY"),
                "{title}: EXPLAIN reads {step:?} whole:\n{sql}"
            );
            // comments, issue_events and reviews: a 30-day window (or one event type)
            // reads a small part of the table.
            if let Some(total) = totals.get(step.table.as_str()) {
                assert!(
                    step.rows * 4 <= *total,
                    "{title}: EXPLAIN expects {} of {total} rows of {}:\n{sql}",
                    step.rows,
                    step.table
                );
            }
        }
    }
}

// ---------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grafana_reads_the_mirror_only_and_every_people_panel_answers() {
    if !client_available() {
        return;
    }
    let Some(fx) = fixture("people").await else {
        return;
    };
    let database = fx.url.rsplit('/').next().expect("database name").to_owned();
    let mirror = generate(12);
    load(&fx.pool, &mirror, velogen::mirror::REVIEWS_MIRRORED).await;

    // The transform's own tables, with real rows, from a real run.
    let Some(influx) = support::influx::start().await else {
        return;
    };
    let metrics = fx.dir.path().join("metrics.yaml");
    std::fs::write(
        &metrics,
        "merge:\n  plugin: count\n  args: [--no-issues, --event=merged]\n",
    )
    .expect("metrics");
    let out = Command::new(env!("CARGO_BIN_EXE_velodrome"))
        .args(["transform", "--once", "--repository", PROJECT_REPOS[0]])
        .arg("--metrics-file")
        .arg(&metrics)
        .args(["--mysql-url", &fx.url, "--influx-url", &influx.url])
        .args(["--influx-database", "github"])
        .env_remove("VELODROME_INFLUX_PASSWORD")
        .output()
        .expect("run velodrome");
    assert!(
        out.status.success(),
        "transform failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut root = fx.pool.get_conn().await.expect("connect");
    for table in ["transform_watermarks", "sync_cursors", "schema_migrations"] {
        let n: Option<i64> = root
            .query_first(format!("SELECT COUNT(*) FROM {table}"))
            .await
            .expect("count");
        assert!(n.unwrap_or(0) > 0, "{table} has rows to hide");
    }

    // Render for this server and database; run the rendered Job's script.
    let rendered = Rendered::new(&database);
    let (_, secret) = rendered.job_env();
    let grafana_env = rendered
        .object("Deployment", |n| n == "grafana-velo")["spec"]["template"]["spec"]["containers"]
        [0]["env"]
        .clone();
    for (name, key) in [
        ("GRAFANA_MYSQL_USER", "user"),
        ("GRAFANA_MYSQL_PASSWORD", "password"),
    ] {
        let reference = grafana_env
            .as_array()
            .and_then(|env| env.iter().find(|e| e["name"] == name))
            .map(|e| e["valueFrom"]["secretKeyRef"].clone())
            .unwrap_or_else(|| panic!("Grafana has no {name}"));
        assert_eq!(
            (reference["name"].as_str(), reference["key"].as_str()),
            (secret.get(name).map(|s| s.0.as_str()), Some(key)),
            "Grafana and the grants Job read the same Secret"
        );
    }
    let grants_sql = rendered.data("mysql-grants", "grants.sql");
    assert_eq!(
        grants_sql,
        velogen::mirror::grant_sql(
            &database,
            &velogen::mirror::readable_tables(velogen::mirror::REVIEWS_MIRRORED)
        )
    );
    let user = account_name("grafana_ro");
    let _guard = AccountGuard::new(&user);
    let work = tempfile::tempdir().expect("tmp");
    let first_password = "first-Pass_1.x~";
    let out = run_grants(&rendered, work.path(), &grants_sql, &user, first_password);
    assert!(
        out.status.success(),
        "grants failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let printed = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !printed.contains(first_password),
        "the script printed the password"
    );
    // Again with a rotated password: still succeeds, and only the new password works.
    let password = "second-Pass_2";
    let out = run_grants(&rendered, work.path(), &grants_sql, &user, password);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stale = Pool::new(
        format!(
            "mysql://{user}:{first_password}@{}:{}/{database}",
            server().host,
            server().port
        )
        .as_str(),
    );
    assert!(
        stale.get_conn().await.is_err(),
        "the old password still works"
    );
    stale.disconnect().await.ok();
    // A value the script cannot pass safely into SQL is refused before any SQL runs.
    let out = run_grants(&rendered, work.path(), &grants_sql, &user, "it's");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("GRAFANA_MYSQL_PASSWORD must be"));

    let (pool, mut conn) = grafana_connection(&rendered, &user, password).await;

    // Exactly the mirror tables are visible; each is readable.
    let tables: Vec<String> = conn.query("SHOW TABLES").await.expect("show tables");
    let tables: BTreeSet<String> = tables.into_iter().collect();
    let readable: BTreeSet<String> =
        velogen::mirror::readable_tables(velogen::mirror::REVIEWS_MIRRORED)
            .into_iter()
            .map(str::to_owned)
            .collect();
    assert_eq!(tables, readable);
    for table in &readable {
        let _: Option<i64> = conn
            .query_first(format!("SELECT COUNT(*) FROM {table}"))
            .await
            .unwrap_or_else(|e| panic!("SELECT on {table}: {e}"));
    }
    // Nothing else: no write, no DDL, no sync or transform state.
    let denied = [
        "INSERT INTO issues (repository, id, title, body, user, state, comments, is_pr, issue_created_at, issue_updated_at) VALUES ('velo/api', 99999, 't', '', 'x', 'open', 0, 0, NOW(), NOW())",
        "UPDATE issues SET title = 'defaced' WHERE repository = 'velo/api'",
        "DELETE FROM comments WHERE repository = 'velo/api'",
        "DELETE FROM labels",
        "SELECT * FROM sync_cursors",
        "SELECT * FROM sync_event_backfill",
        "SELECT * FROM transform_watermarks",
        "SELECT * FROM transform_days",
        "SELECT * FROM schema_migrations",
        "CREATE TABLE grafana_was_here (a INT)",
        "DROP TABLE assignees",
        "ALTER TABLE issues ADD COLUMN x INT",
    ];
    for statement in denied {
        let code = server_error(conn.query_drop(statement).await);
        assert!(
            code == 1142 || code == 1143,
            "{statement}: error {code}, expected a denied privilege (1142)"
        );
    }
    let granted: Vec<String> = conn.query("SHOW GRANTS").await.expect("grants");
    assert!(
        granted
            .iter()
            .all(|g| !g.contains("ALL PRIVILEGES") && !g.contains("INSERT")),
        "{granted:?}"
    );
    let titles: Option<i64> = root
        .query_first("SELECT COUNT(*) FROM issues WHERE title = 'defaced'")
        .await
        .expect("count");
    assert_eq!(titles, Some(0));

    // Every panel, with its rows and its plan.
    let oracle = Oracle::new(&mirror);
    check_panels(
        &mut conn,
        &rendered.panels(),
        &oracle,
        velogen::mirror::REVIEWS_MIRRORED,
    )
    .await;

    drop(conn);
    pool.disconnect().await.ok();
    drop(root);
    fx.pool.clone().disconnect().await.ok();
}

/// The reviewers panel with GitHub reviews, for when the fetcher mirrors them: the same
/// grants script grants `reviews` too, and the panel counts submitted reviews of other
/// people's pull requests, by an index.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reviewers_count_github_reviews_once_they_are_mirrored() {
    if !client_available() {
        return;
    }
    let Some(fx) = fixture("people_reviews").await else {
        return;
    };
    let database = fx.url.rsplit('/').next().expect("database name").to_owned();
    let mirror = generate(13);
    load(&fx.pool, &mirror, true).await;
    let rendered = Rendered::new(&database);
    let user = account_name("grafana_rv");
    let _guard = AccountGuard::new(&user);
    let work = tempfile::tempdir().expect("tmp");
    let grants_sql = velogen::mirror::grant_sql(&database, &velogen::mirror::readable_tables(true));
    let password = "reviews-Pass_1";
    let out = run_grants(&rendered, work.path(), &grants_sql, &user, password);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (pool, mut conn) = grafana_connection(&rendered, &user, password).await;
    let _: Option<i64> = conn
        .query_first("SELECT COUNT(*) FROM reviews")
        .await
        .expect("reviews are readable");
    let dashboard = velogen::people_dashboard(
        &rendered.project,
        &rendered.bots,
        &rendered.github_url,
        true,
    );
    let panels = panels_of(&dashboard);
    let reviewers: Vec<(String, String)> = panels
        .iter()
        .filter(|(title, _)| title == "Top reviewers")
        .cloned()
        .collect();
    assert_eq!(reviewers.len(), 1);
    assert!(
        reviewers[0].1.contains("FROM reviews v"),
        "{}",
        reviewers[0].1
    );
    let oracle = Oracle::new(&mirror);
    // The reviews column is not all zero: the data has reviews in the window.
    let expected = oracle.reviewers(FROM, END, true);
    assert!(
        expected.iter().any(|r| r[5] != "0"),
        "no reviews in the window: {expected:?}"
    );
    check_panels(&mut conn, &panels, &oracle, true).await;
    drop(conn);
    pool.disconnect().await.ok();
    fx.pool.clone().disconnect().await.ok();
}
