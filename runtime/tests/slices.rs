//! `--by-label`, `--age-buckets` and `--inactive` on a generated repository whose items
//! carry `sig/*` and `kind/*` labels that change over time: the points read back from
//! influxd equal per-SIG figures worked out from MySQL at three chosen times, including
//! items relabelled from one SIG to another and items in two SIGs.

mod support;

use std::collections::{BTreeMap, BTreeSet};

use mysql_async::Pool;
use mysql_async::prelude::Queryable;

use support::history::{
    Comment, Event, Issue, REPO, at, fixture, insert_comments, insert_events, insert_issues, ok,
    transform, write_metrics,
};

const DAY: i64 = 86_400;
/// 2020-01-01.
const BASE: i64 = 1_577_836_800;
const SIGS: [&str; 4] = ["node", "apps", "storage", "network"];
const PEOPLE: [&str; 6] = ["alice", "bob", "carol", "dave", "erin", "frank"];

const METRIC: &str = "\
sig-open:
  plugin: count
  args: ['--state=opened', '--by-label=sig/,kind/', '--age-buckets=7d,30d', '--inactive=14d']
";

/// A history in which no two rows share a second (so "the state at second T" is one
/// thing), spread over half a year.
struct History {
    issues: Vec<Issue>,
    events: Vec<Event>,
    comments: Vec<Comment>,
    taken: BTreeSet<i64>,
    next_id: i64,
}

impl History {
    fn free(&mut self, mut t: i64) -> i64 {
        while !self.taken.insert(t) {
            t += 1;
        }
        t
    }

    fn event(
        &mut self,
        issue: i64,
        t: i64,
        event: &'static str,
        label: Option<&'static str>,
        actor: &'static str,
    ) {
        let created = self.free(t);
        self.next_id += 1;
        self.events.push(Event {
            id: self.next_id,
            issue,
            event,
            label,
            actor: Some(actor),
            created,
            repo: REPO,
        });
    }

    fn comment(&mut self, issue: i64, t: i64, user: &'static str) {
        let created = self.free(t);
        self.next_id += 1;
        self.comments.push(Comment {
            id: self.next_id,
            issue,
            user,
            body: "a comment".into(),
            created,
            review: false,
            repo: REPO,
        });
    }
}

fn sig_label(sig: &str) -> &'static str {
    match sig {
        "node" => "sig/node",
        "apps" => "sig/apps",
        "storage" => "sig/storage",
        _ => "sig/network",
    }
}

fn generate() -> History {
    let mut rng = fastrand::Rng::with_seed(12);
    let mut h = History {
        issues: Vec::new(),
        events: Vec::new(),
        comments: Vec::new(),
        taken: BTreeSet::new(),
        next_id: 1_000,
    };
    for n in 1..=300i64 {
        let created = h.free(BASE + n * 13 * 3_600);
        let author = PEOPLE[rng.usize(..PEOPLE.len())];
        h.issues.push(Issue {
            id: n,
            user: author,
            is_pr: false,
            created,
        });
        let mut sig = SIGS[rng.usize(..SIGS.len())];
        h.event(n, created + 1, "labeled", Some(sig_label(sig)), author);
        if n % 5 == 0 {
            // In two SIGs.
            let other = SIGS[(SIGS.iter().position(|s| *s == sig).unwrap_or(0) + 1) % SIGS.len()];
            h.event(n, created + 2, "labeled", Some(sig_label(other)), author);
        }
        let kind = if rng.bool() {
            "kind/bug"
        } else {
            "kind/feature"
        };
        h.event(n, created + 3, "labeled", Some(kind), author);
        let mut t = created;
        let mut open = true;
        for _ in 0..rng.usize(0..6) {
            t += rng.i64(DAY / 2..20 * DAY);
            match rng.u8(..10) {
                0..=3 => {
                    let who = if rng.u8(..5) == 0 {
                        "k8s-ci-robot"
                    } else if rng.u8(..4) == 0 {
                        author
                    } else {
                        PEOPLE[rng.usize(..PEOPLE.len())]
                    };
                    h.comment(n, t, who);
                }
                4 | 5 if open => {
                    // Relabel from one SIG to another.
                    let next = SIGS[rng.usize(..SIGS.len())];
                    if next != sig {
                        h.event(n, t, "unlabeled", Some(sig_label(sig)), "k8s-ci-robot");
                        h.event(n, t + 1, "labeled", Some(sig_label(next)), "k8s-ci-robot");
                        sig = next;
                    }
                }
                6 | 7 if open => {
                    h.event(n, t, "closed", None, PEOPLE[rng.usize(..PEOPLE.len())]);
                    open = false;
                }
                8 if !open => {
                    h.event(n, t, "reopened", None, author);
                    open = true;
                }
                _ => {}
            }
        }
    }
    h
}

/// What MySQL says about the open issues at second `t`, for one series:
/// (count, [age < 7 d, 7 d <= age < 30 d, age >= 30 d], inactive for 14 d).
type Figures = (i64, Vec<i64>, i64);

/// Per series ("sig,kind") figures at second `t`, worked out from the rows by SQL and
/// plain arithmetic (no code shared with the transform).
async fn figures_at(pool: &Pool, t: i64) -> BTreeMap<String, Figures> {
    let mut conn = pool.get_conn().await.expect("MySQL");
    let ts = at(t);
    let unix = |c: &str| format!("TIMESTAMPDIFF(SECOND, '1970-01-01 00:00:00', {c})");
    // Open at t: created, and the last close or reopen by then is not a close.
    let open: Vec<(i64, i64, i64)> = conn
        .query(format!(
            "SELECT i.id,
                    GREATEST({created}, COALESCE((SELECT MAX({et}) FROM issue_events e
                        WHERE e.repository = i.repository AND e.issue_id = i.id
                          AND e.event = 'reopened' AND e.event_created_at <= '{ts}'), 0)),
                    GREATEST({created},
                      COALESCE((SELECT MAX({ct}) FROM comments c
                        WHERE c.repository = i.repository AND c.issue_id = i.id
                          AND c.comment_created_at <= '{ts}' AND c.user <> i.user
                          AND c.user <> 'k8s-ci-robot'), 0),
                      COALESCE((SELECT MAX({et}) FROM issue_events e
                        WHERE e.repository = i.repository AND e.issue_id = i.id
                          AND e.event_created_at <= '{ts}' AND e.actor <> i.user
                          AND e.actor <> 'k8s-ci-robot'), 0))
               FROM issues i
              WHERE i.repository = '{REPO}' AND i.issue_created_at <= '{ts}'
                AND COALESCE((SELECT e.event FROM issue_events e
                       WHERE e.repository = i.repository AND e.issue_id = i.id
                         AND e.event IN ('closed', 'reopened') AND e.event_created_at <= '{ts}'
                       ORDER BY e.event_created_at DESC, e.id DESC LIMIT 1), 'reopened')
                    = 'reopened'",
            created = unix("i.issue_created_at"),
            et = unix("e.event_created_at"),
            ct = unix("c.comment_created_at"),
        ))
        .await
        .expect("open issues");
    // Labels held at t: the last labeled/unlabeled of each (issue, label) is `labeled`.
    let held: Vec<(i64, String)> = conn
        .query(format!(
            "SELECT l.issue_id, l.label FROM issue_events l
              WHERE l.repository = '{REPO}' AND l.event = 'labeled'
                AND l.event_created_at <= '{ts}'
                AND NOT EXISTS (SELECT 1 FROM issue_events x
                  WHERE x.repository = l.repository AND x.issue_id = l.issue_id
                    AND x.label = l.label AND x.event IN ('labeled', 'unlabeled')
                    AND x.event_created_at <= '{ts}'
                    AND (x.event_created_at > l.event_created_at
                         OR (x.event_created_at = l.event_created_at AND x.id > l.id)))"
        ))
        .await
        .expect("labels");
    let mut labels: BTreeMap<i64, (BTreeSet<String>, BTreeSet<String>)> = BTreeMap::new();
    for (issue, label) in held {
        let entry = labels.entry(issue).or_default();
        if let Some(sig) = label.strip_prefix("sig/") {
            entry.0.insert(sig.to_owned());
        } else if let Some(kind) = label.strip_prefix("kind/") {
            entry.1.insert(kind.to_owned());
        }
    }
    let mut out: BTreeMap<String, Figures> = BTreeMap::new();
    for (issue, start, attention) in open {
        let (sigs, kinds) = labels.get(&issue).cloned().unwrap_or_default();
        let none = || BTreeSet::from(["none".to_owned()]);
        let sigs = if sigs.is_empty() { none() } else { sigs };
        let kinds = if kinds.is_empty() { none() } else { kinds };
        let age = t - start;
        let bucket = if age < 7 * DAY {
            0
        } else if age < 30 * DAY {
            1
        } else {
            2
        };
        for sig in &sigs {
            for kind in &kinds {
                let entry = out
                    .entry(format!("{sig},{kind}"))
                    .or_insert_with(|| (0, vec![0, 0, 0], 0));
                entry.0 += 1;
                entry.1[bucket] += 1;
                if t - attention >= 14 * DAY {
                    entry.2 += 1;
                }
            }
        }
    }
    out
}

fn field(point: &[String], name: &str) -> Option<String> {
    point
        .iter()
        .find_map(|f| f.strip_prefix(&format!("{name}=")))
        .map(str::to_owned)
}

fn number(point: &[String], name: &str) -> i64 {
    field(point, name)
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no integer {name} in {point:?}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn sig_series_equal_mysql_at_three_times() {
    let Some(fx) = fixture("transform_slices").await else {
        return;
    };
    let Some(influx) = support::influx::start().await else {
        return;
    };
    let h = generate();
    insert_issues(&fx.pool, REPO, &h.issues).await;
    insert_events(&fx.pool, &h.events).await;
    insert_comments(&fx.pool, &h.comments).await;
    let metrics = write_metrics(fx.dir.path(), "slices.yaml", METRIC);
    ok(&transform(&fx, Some((&influx, "github")), &metrics, &[]));

    // Every point, by series.
    let mut series: BTreeMap<String, Vec<(i64, Vec<String>)>> = BTreeMap::new();
    for (time, point) in influx.points("github", "sig-open").await {
        let key = format!(
            "{},{}",
            field(&point, "sig").expect("sig tag"),
            field(&point, "kind").expect("kind tag")
        );
        series
            .entry(key)
            .or_default()
            .push((time / 1_000_000_000, point));
    }
    assert!(series.len() >= 8, "series: {:?}", series.keys());
    let mut relabelled_seen = false;
    let mut compared = 0;
    for days in [45, 90, 150] {
        let t = BASE + days * DAY;
        let expected = figures_at(&fx.pool, t).await;
        for (key, points) in &series {
            let Some((time, point)) = points.iter().rev().find(|(time, _)| *time <= t) else {
                continue;
            };
            // The count holds between points of its series; buckets and inactivity are as
            // of the point, so they are compared with MySQL at the point's own second.
            let now = expected.get(key).map_or(0, |f| f.0);
            assert_eq!(number(point, "count"), now, "{key} count at day {days}");
            let then = figures_at(&fx.pool, *time).await;
            let (count, buckets, inactive) =
                then.get(key).cloned().unwrap_or((0, vec![0, 0, 0], 0));
            assert_eq!(number(point, "count"), count, "{key} at {time}");
            let got: Vec<i64> = ["age_lt_7d", "age_7d_30d", "age_ge_30d"]
                .iter()
                .map(|f| number(point, f))
                .collect();
            assert_eq!(got, buckets, "{key} age buckets at {time}");
            assert_eq!(
                number(point, "inactive"),
                inactive,
                "{key} inactive at {time}"
            );
            compared += 1;
        }
        relabelled_seen |= expected.len() >= 8;
    }
    assert!(compared >= 24, "only {compared} series compared");
    assert!(relabelled_seen);

    // The data holds what the test is about: relabelled items and items in two SIGs.
    let mut conn = fx.pool.get_conn().await.expect("MySQL");
    let relabelled: i64 = conn
        .query_first(format!(
            "SELECT COUNT(DISTINCT issue_id) FROM issue_events
              WHERE repository = '{REPO}' AND event = 'unlabeled' AND label LIKE 'sig/%'"
        ))
        .await
        .expect("count")
        .unwrap_or(0);
    let in_two: i64 = conn
        .query_first(format!(
            "SELECT COUNT(*) FROM (SELECT issue_id FROM issue_events
              WHERE repository = '{REPO}' AND event = 'labeled' AND label LIKE 'sig/%'
              GROUP BY issue_id HAVING COUNT(DISTINCT label) > 1) x"
        ))
        .await
        .expect("count")
        .unwrap_or(0);
    assert!(
        relabelled > 10 && in_two > 10,
        "relabelled {relabelled}, in two SIGs {in_two}"
    );
}
