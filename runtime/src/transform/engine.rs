//! The `count` plugin as one function of an ordered stream of items.
//!
//! The original composed wrappers (spec 3.1):
//! `AuthorFilter(TypeFilter(FakeOpen(Multiplexer(AuthorLogger(Multiplexer(
//! FakeComment(EventCounter), CommentCounter)), StatePlugin))))`. Here the same behaviour is
//! one `match` per item, over a stream that the reader already puts in one deterministic
//! order (time, then opened < event < comment, then id: see [`Key`]):
//!
//! - `opened` is an item of its own at the issue's creation time (FakeOpen, fixed: it no
//!   longer waits for the next real event);
//! - each row carries its issue's author and kind (so TypeFilter and the issue part of
//!   AuthorFilter need no per-issue memory);
//! - a comment is also the event `commented`, for `--event` and now for `--state` too;
//! - points of one input come out in the original order: event, comments, state;
//! - no two points of a metric share a timestamp: a point's time is its second in
//!   nanoseconds, moved forward by 1 ns past the previous point when needed, so the first
//!   point of a second keeps exactly the timestamp the original wrote.

use velodrome_model::metric::{EventMatcher, MetricSpec};

use super::state::{StateTracker, StateValues};

/// Where an item comes from (see [`Key`] for how kinds order items of one second).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u8)]
pub enum Kind {
    /// The synthetic `opened` event of an issue row, at its creation.
    Opened = 0,
    /// A row of `issue_events`.
    Event = 1,
    /// A row of `comments` with `pull_request = false`.
    Comment = 2,
    /// A row of `comments` with `pull_request = true` (its own id space).
    ReviewComment = 3,
}

impl Kind {
    /// The kind stored in a watermark.
    pub fn from_code(code: u8) -> Option<Self> {
        match code {
            0 => Some(Self::Opened),
            1 => Some(Self::Event),
            2 => Some(Self::Comment),
            3 => Some(Self::ReviewComment),
            _ => None,
        }
    }
}

/// The position of an item in the one total order; watermarks store it.
///
/// Items are ordered by time, then opened < event < comment, then id, then issue comment
/// before review comment of the same id (the two comment kinds have separate id spaces).
/// This is the order of the tables' `(repository, created_at)` indexes, whose InnoDB
/// entries end with the primary key, so the server streams each table without sorting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Key {
    /// Seconds since the epoch (the tables' DATETIME precision).
    pub time: i64,
    /// Which table (and which comment id space).
    pub kind: Kind,
    /// Row id (issue number for `opened`).
    pub id: i64,
}

impl Kind {
    /// Rank among items of the same second: both comment kinds share one.
    pub fn class(self) -> u8 {
        match self {
            Self::Opened => 0,
            Self::Event => 1,
            Self::Comment | Self::ReviewComment => 2,
        }
    }
}

impl Ord for Key {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.time, self.kind.class(), self.id, self.kind).cmp(&(
            other.time,
            other.kind.class(),
            other.id,
            other.kind,
        ))
    }
}

impl PartialOrd for Key {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

/// One input: an opened issue, an event or a comment, with what the filters need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    /// Position in the stream.
    pub key: Key,
    /// The issue number it belongs to.
    pub issue: i64,
    /// Whether that issue is a pull request.
    pub is_pr: bool,
    /// That issue's author.
    pub issue_user: String,
    /// GitHub event name (`opened` for the synthetic one, `commented` for comments).
    pub event: String,
    /// Label of labeled/unlabeled events.
    pub label: Option<String>,
    /// Who did it: the event actor (NULL for deleted users), the comment author, or the
    /// issue author for `opened`.
    pub actor: Option<String>,
    /// Comment body (empty for other items).
    pub body: String,
}

/// The values of one point.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Values {
    /// `event = 1`.
    Event,
    /// `comment = 1`.
    Comment,
    /// `count`, `sum` and the percentiles.
    State(StateValues),
}

/// One output point of a metric (measurement and tag are added by the writer).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Point {
    /// Nanoseconds since the epoch, unique within the metric.
    pub time_ns: i64,
    /// Its integer fields.
    pub values: Values,
    /// The `author` string field, with `--log-author`.
    pub author: Option<String>,
}

/// One metric's running computation over one repository's stream.
#[derive(Debug, Clone)]
pub struct MetricEngine {
    event: Option<EventMatcher>,
    comments: Vec<regex::Regex>,
    state: Option<StateTracker>,
    include_issues: bool,
    include_pull_requests: bool,
    ignore: Vec<String>,
    log_author: bool,
    last_ns: i64,
}

impl MetricEngine {
    /// A fresh computation of `spec`.
    pub fn new(spec: &MetricSpec) -> Self {
        Self {
            event: spec.event().cloned(),
            comments: spec.comments().to_vec(),
            state: spec
                .state()
                .map(|state| StateTracker::new(state, spec.percentiles())),
            include_issues: spec.includes_issues(),
            include_pull_requests: spec.includes_pull_requests(),
            ignore: spec.ignored_authors().to_vec(),
            log_author: spec.logs_author(),
            last_ns: i64::MIN,
        }
    }

    fn ignored(&self, login: &str) -> bool {
        self.ignore.iter().any(|i| i == login)
    }

    /// Whether the metric needs comment bodies (the reader skips them otherwise).
    pub fn reads_bodies(&self) -> bool {
        !self.comments.is_empty()
    }

    #[allow(dead_code)]
    /// Issues with a state (memory accounting for benchmarks).
    pub fn tracked_issues(&self) -> usize {
        self.state.as_ref().map_or(0, StateTracker::tracked_issues)
    }

    /// A unique timestamp for a point in second `time`.
    fn stamp(&mut self, time: i64) -> i64 {
        let base = time.saturating_mul(1_000_000_000);
        let ns = if self.last_ns >= base {
            self.last_ns.saturating_add(1)
        } else {
            base
        };
        self.last_ns = ns;
        ns
    }

    /// Processes one item (items must come in key order) and appends its points.
    pub fn receive(&mut self, item: &Item, out: &mut Vec<Point>) {
        // TypeFilter, then AuthorFilter on the issue's author: what an ignored user opened
        // is dropped whole, as in the original.
        let wanted_kind = if item.is_pr {
            self.include_pull_requests
        } else {
            self.include_issues
        };
        if !wanted_kind || self.ignored(&item.issue_user) {
            return;
        }
        if let Some(actor) = &item.actor
            && item.key.kind != Kind::Opened
            && self.ignored(actor)
        {
            return;
        }
        let author = || {
            if self.log_author {
                item.actor.clone()
            } else {
                None
            }
        };
        let time = item.key.time;
        let label = item.label.as_deref().unwrap_or("");
        let mut points: [Option<(Values, Option<String>)>; 2] = [None, None];
        if let Some(event) = &self.event
            && event.matches(&item.event, label)
        {
            points[0] = Some((Values::Event, author()));
        }
        let mut comment_hits = 0;
        if matches!(item.key.kind, Kind::Comment | Kind::ReviewComment) {
            comment_hits = self
                .comments
                .iter()
                .filter(|regex| regex.is_match(&item.body))
                .count();
        }
        if comment_hits > 0 {
            points[1] = Some((Values::Comment, author()));
        }
        let state = self
            .state
            .as_mut()
            .and_then(|state| state.receive(item.issue, &item.event, label, time));
        if let Some((values, author)) = points[0].take() {
            let time_ns = self.stamp(time);
            out.push(Point {
                time_ns,
                values,
                author,
            });
        }
        if let Some((values, author)) = points[1].take() {
            for _ in 0..comment_hits {
                let time_ns = self.stamp(time);
                out.push(Point {
                    time_ns,
                    values: values.clone(),
                    author: author.clone(),
                });
            }
        }
        if let Some(values) = state {
            let time_ns = self.stamp(time);
            out.push(Point {
                time_ns,
                values: Values::State(values),
                author: None,
            });
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn spec(args: &[&str]) -> MetricSpec {
        let args: Vec<String> = args.iter().map(|s| (*s).to_owned()).collect();
        MetricSpec::parse("count", &args).expect("metric parses")
    }

    const S: i64 = 1_000_000_000;

    pub(crate) fn opened(time: i64, issue: i64, is_pr: bool, user: &str) -> Item {
        Item {
            key: Key {
                time,
                kind: Kind::Opened,
                id: issue,
            },
            issue,
            is_pr,
            issue_user: user.to_owned(),
            event: "opened".to_owned(),
            label: None,
            actor: Some(user.to_owned()),
            body: String::new(),
        }
    }

    pub(crate) fn event(
        time: i64,
        id: i64,
        issue: (i64, bool, &str),
        name: &str,
        label: Option<&str>,
        actor: Option<&str>,
    ) -> Item {
        Item {
            key: Key {
                time,
                kind: Kind::Event,
                id,
            },
            issue: issue.0,
            is_pr: issue.1,
            issue_user: issue.2.to_owned(),
            event: name.to_owned(),
            label: label.map(str::to_owned),
            actor: actor.map(str::to_owned),
            body: String::new(),
        }
    }

    pub(crate) fn comment(
        time: i64,
        id: i64,
        issue: (i64, bool, &str),
        user: &str,
        body: &str,
    ) -> Item {
        Item {
            key: Key {
                time,
                kind: Kind::Comment,
                id,
            },
            issue: issue.0,
            is_pr: issue.1,
            issue_user: issue.2.to_owned(),
            event: "commented".to_owned(),
            label: None,
            actor: Some(user.to_owned()),
            body: body.to_owned(),
        }
    }

    fn run(args: &[&str], items: &[Item]) -> Vec<Point> {
        let mut engine = MetricEngine::new(&spec(args));
        let mut out = Vec::new();
        for item in items {
            engine.receive(item, &mut out);
        }
        out
    }

    fn at(seconds: i64, values: Values) -> Point {
        Point {
            time_ns: seconds * S,
            values,
            author: None,
        }
    }

    fn state(count: i64, sum: i64, percentiles: &[i64]) -> Values {
        Values::State(StateValues {
            count,
            sum,
            percentiles: percentiles.to_vec(),
        })
    }

    const PR: (i64, bool, &str) = (1, true, "Person");

    #[test]
    fn event_counter() {
        // TestEventCounter: merged@10, opened@20, closed@30.
        let items = [
            event(10, 1, PR, "merged", None, None),
            event(20, 2, PR, "opened", None, None),
            event(30, 3, PR, "closed", None, None),
        ];
        // --event "" counted nothing; it is refused now (the metric would count nothing).
        assert!(MetricSpec::parse("count", &["--event=".to_owned()]).is_err());
        assert_eq!(
            run(&["--event=merged"], &items),
            vec![at(10, Values::Event)]
        );
    }

    #[test]
    fn comment_counter() {
        // The empty pattern is written (?:) now; it matches every comment.
        let items = [
            comment(10, 1, PR, "a", "Something"),
            comment(20, 2, PR, "a", "Anything"),
            comment(30, 3, PR, "a", "It doesn't matter"),
        ];
        assert_eq!(
            run(&["--comments=(?:)"], &items),
            vec![
                at(10, Values::Comment),
                at(20, Values::Comment),
                at(30, Values::Comment)
            ]
        );
        let items = [
            comment(10, 1, PR, "a", "/lgtm cancel"),
            comment(20, 2, PR, "a", "/lgtm"),
            comment(30, 3, PR, "a", "/lgtm    \nOr not."),
        ];
        assert_eq!(
            run(&[r"--comments=(?m)/lgtm\s*$"], &items),
            vec![at(20, Values::Comment), at(30, Values::Comment)]
        );
    }

    #[test]
    fn k_matching_regexes_are_k_points() {
        let items = [comment(10, 1, PR, "a", "/lgtm")];
        let points = run(&["--comments=lgtm,/lgtm"], &items);
        assert_eq!(points.len(), 2);
        assert_eq!(points[0].time_ns, 10 * S);
        assert_eq!(points[1].time_ns, 10 * S + 1);
    }

    #[test]
    fn author_filter() {
        let args = [
            "--ignore-authors=OneBot,OtherBot",
            "--event=opened",
            "--comments=.*",
        ];
        // Issues by ignored users are dropped (no opened point).
        let items = [
            opened(1, 1, false, "OneBot"),
            opened(2, 2, false, "Person"),
            opened(3, 3, false, "OtherBot"),
        ];
        assert_eq!(run(&args, &items), vec![at(2, Values::Event)]);
        // Events: actor OneBot/OtherBot dropped, Person and NULL forwarded.
        let args = ["--ignore-authors=OneBot,OtherBot", "--event=closed"];
        let p = (2, false, "Person");
        let items = [
            event(10, 1, p, "closed", None, Some("OneBot")),
            event(20, 2, p, "closed", None, Some("Person")),
            event(30, 3, p, "closed", None, Some("OtherBot")),
            event(40, 4, p, "closed", None, None),
        ];
        assert_eq!(
            run(&args, &items),
            vec![at(20, Values::Event), at(40, Values::Event)]
        );
        // Comments by ignored users dropped.
        let args = ["--ignore-authors=OneBot,OtherBot", "--comments=.*"];
        let items = [
            comment(10, 1, p, "OneBot", "x"),
            comment(20, 2, p, "Person", "x"),
            comment(30, 3, p, "OtherBot", "x"),
        ];
        assert_eq!(run(&args, &items), vec![at(20, Values::Comment)]);
        // Everything on an issue opened by an ignored user is dropped, whoever did it.
        let bot = (3, false, "OneBot");
        let items = [
            event(10, 1, bot, "closed", None, Some("Person")),
            comment(20, 2, bot, "Person", "x"),
        ];
        assert_eq!(
            run(
                &["--ignore-authors=OneBot", "--event=closed", "--comments=x"],
                &items
            ),
            vec![]
        );
    }

    #[test]
    fn author_logger() {
        let p = (1, false, "Person");
        let items = [
            opened(10, 1, false, "Person"),
            event(20, 1, p, "closed", None, Some("Person")),
            comment(30, 1, p, "Person", "x"),
            event(40, 2, p, "reopened", None, None),
        ];
        let points = run(
            &[
                "--event=opened",
                "--comments=x",
                "--state=closed",
                "--log-author",
            ],
            &items,
        );
        let authors: Vec<Option<&str>> = points.iter().map(|p| p.author.as_deref()).collect();
        // opened (event), closed (state: never an author), comment, reopened (state).
        assert_eq!(authors, vec![Some("Person"), None, Some("Person"), None]);
        let points = run(&["--event=closed"], &items);
        assert_eq!(points, vec![at(20, Values::Event)]);
        // NULL actor: no author field.
        let points = run(&["--event=reopened", "--log-author"], &items);
        assert_eq!(points, vec![at(40, Values::Event)]);
    }

    #[test]
    fn fake_comment_is_an_event_and_a_state_input() {
        // TestFakeCommentWrapper: a comment is also the event "commented" (actor = user).
        let items = [comment(10, 1, PR, "SomeUser", "hello")];
        let points = run(
            &["--event=commented", "--comments=hello", "--log-author"],
            &items,
        );
        assert_eq!(points.len(), 2);
        assert_eq!(points[0].values, Values::Event);
        assert_eq!(points[1].values, Values::Comment);
        assert_eq!(points[0].author.as_deref(), Some("SomeUser"));
        assert_eq!(points[1].time_ns, points[0].time_ns + 1);
        // Fixed: commented reaches the state (the original never activated it).
        let points = run(&["--state=commented"], &items);
        assert_eq!(points, vec![at(10, state(1, 0, &[]))]);
    }

    #[test]
    fn fake_open_fires_at_creation_in_order() {
        // TestFakeOpenWrapper, with the fix: each opened is its own item at creation time,
        // before any event of the same second.
        let items = [
            event(10, 1, (1, false, "User1"), "event1", None, Some("Actor1")),
            opened(20, 1, false, "User1"),
            opened(30, 2, false, "User2"),
            event(40, 2, (2, false, "User2"), "event2", None, Some("Actor2")),
            opened(50, 3, false, "User3"),
            event(50, 3, (3, false, "User3"), "closed", None, Some("Actor3")),
        ];
        let points = run(&["--event=opened", "--log-author"], &items);
        let got: Vec<(i64, Option<&str>)> = points
            .iter()
            .map(|p| (p.time_ns / S, p.author.as_deref()))
            .collect();
        assert_eq!(
            got,
            vec![
                (20, Some("User1")),
                (30, Some("User2")),
                (50, Some("User3"))
            ]
        );
        // The synthetic opened reaches the state; closed at the same second comes after.
        let points = run(&["--state=opened"], &items);
        assert_eq!(
            points,
            vec![
                at(20, state(1, 0, &[])),
                at(30, state(2, 0, &[])),
                at(50, state(3, 0, &[])),
                Point {
                    time_ns: 50 * S + 1,
                    values: state(2, 0, &[]),
                    author: None
                },
            ]
        );
        // An opened with nothing after it still counts.
        assert_eq!(
            run(&["--event=opened"], &[opened(5, 9, true, "x")]),
            vec![at(5, Values::Event)]
        );
    }

    #[test]
    fn multiplexer_order_event_comments_state() {
        let items = [comment(10, 1, PR, "u", "lgtm")];
        let points = run(
            &[
                "--event=commented",
                "--comments=lgtm,.",
                "--state=commented",
            ],
            &items,
        );
        let kinds: Vec<&str> = points
            .iter()
            .map(|p| match p.values {
                Values::Event => "event",
                Values::Comment => "comment",
                Values::State(_) => "state",
            })
            .collect();
        assert_eq!(kinds, vec!["event", "comment", "comment", "state"]);
        let times: Vec<i64> = points.iter().map(|p| p.time_ns - 10 * S).collect();
        assert_eq!(times, vec![0, 1, 2, 3]);
    }

    #[test]
    fn type_filter() {
        let issue = (1, false, "a");
        let pr = (2, true, "a");
        let items = [
            opened(1, 1, false, "a"),
            event(2, 1, issue, "closed", None, None),
            comment(3, 1, issue, "a", "x"),
            opened(4, 2, true, "a"),
            event(5, 2, pr, "closed", None, None),
            comment(6, 2, pr, "a", "x"),
        ];
        let args = ["--event=opened", "--comments=x"];
        let all = run(&args, &items);
        assert_eq!(all.len(), 4);
        let closed = ["--event=closed"];
        assert_eq!(run(&closed, &items).len(), 2);
        let no_issues: Vec<i64> = run(&["--event=closed", "--comments=x", "--no-issues"], &items)
            .iter()
            .map(|p| p.time_ns / S)
            .collect();
        assert_eq!(no_issues, vec![5, 6]);
        let no_prs: Vec<i64> = run(
            &["--event=closed", "--comments=x", "--no-pull-requests"],
            &items,
        )
        .iter()
        .map(|p| p.time_ns / S)
        .collect();
        assert_eq!(no_prs, vec![2, 3]);
    }

    #[test]
    fn key_order_follows_the_indexes() {
        let key = |time, kind, id| Key { time, kind, id };
        let mut keys = vec![
            key(2, Kind::Opened, 1),
            key(1, Kind::ReviewComment, 5),
            key(1, Kind::Comment, 6),
            key(1, Kind::Comment, 5),
            key(1, Kind::Event, 9),
            key(1, Kind::Opened, 3),
        ];
        keys.sort();
        assert_eq!(
            keys,
            vec![
                key(1, Kind::Opened, 3),
                key(1, Kind::Event, 9),
                key(1, Kind::Comment, 5),
                key(1, Kind::ReviewComment, 5),
                key(1, Kind::Comment, 6),
                key(2, Kind::Opened, 1),
            ]
        );
    }

    #[test]
    fn two_merges_in_one_second_are_two_points() {
        let items = [
            event(100, 1, (1, true, "a"), "merged", None, None),
            event(100, 2, (2, true, "a"), "merged", None, None),
            event(101, 3, (3, true, "a"), "merged", None, None),
        ];
        let points = run(&["--event=merged"], &items);
        let times: Vec<i64> = points.iter().map(|p| p.time_ns).collect();
        assert_eq!(times, vec![100 * S, 100 * S + 1, 101 * S]);
    }

    /// Spec 8.4, derived end-to-end example.
    #[test]
    fn derived_example() {
        let t = |h: i64, m: i64| 1_500_000_000 - 1_500_000_000 % 86_400 + h * 3600 + m * 60;
        let alice = (1, true, "alice");
        let bob = (2, true, "bob");
        let items = [
            opened(t(10, 0), 1, true, "alice"),
            opened(t(10, 2), 3, false, "carol"),
            opened(t(10, 5), 2, true, "bob"),
            comment(t(10, 10), 1, alice, "dave", "looks good"),
            event(t(10, 30), 1, alice, "merged", None, Some("merger")),
            event(t(10, 40), 2, bob, "closed", None, Some("bob")),
        ];
        let open = run(
            &["--no-issues", "--state=opened,!merged", "--percentiles=50"],
            &items,
        );
        assert_eq!(
            open,
            vec![
                at(t(10, 0), state(1, 0, &[0])),
                at(t(10, 5), state(2, 5, &[0])),
                at(t(10, 30), state(1, 25, &[1_500_000_000_000])),
                at(t(10, 40), state(0, 0, &[0])),
            ]
        );
        let merge = run(&["--no-issues", "--event=merged"], &items);
        assert_eq!(merge, vec![at(t(10, 30), Values::Event)]);
        let contributions = run(
            &[
                "--event=opened",
                "--comments=.*",
                "--log-author",
                "--no-issues",
            ],
            &items,
        );
        let got: Vec<(i64, &Values, Option<&str>)> = contributions
            .iter()
            .map(|p| (p.time_ns / S, &p.values, p.author.as_deref()))
            .collect();
        assert_eq!(
            got,
            vec![
                (t(10, 0), &Values::Event, Some("alice")),
                (t(10, 5), &Values::Event, Some("bob")),
                (t(10, 10), &Values::Comment, Some("dave")),
            ]
        );
    }
}
