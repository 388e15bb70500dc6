//! The `count` plugin as one function of an ordered stream of items.
//!
//! The original composed wrappers (spec 3.1):
//! `AuthorFilter(TypeFilter(FakeOpen(Multiplexer(AuthorLogger(Multiplexer(
//! FakeComment(EventCounter), CommentCounter)), StatePlugin))))`. Here the same behaviour is
//! one `match` per item:
//!
//! - the filters are the metric's [`Audience`]; with `--log-author` or `--comments` (the
//!   metric credits people) bots are left out as `--ignore-authors` would;
//! - a comment is also the event `commented`, for `--event` and now for `--state` too;
//! - points of one input come out in the original order: event, comments, state.

use velodrome_model::metric::{CountSpec, ItemFilter};

use super::engine::{
    Audience, BoundEvent, Item, Kind, Login, Observed, Point, PointSlices, Relevance, Stamp,
    Values, Vocabulary,
};
use super::issues::Rows;
use super::labels::FamilyLabels;
use super::series::SeriesState;
use super::state::StateTracker;

/// A `--comments` pattern. One that can match the empty string without looking around
/// (`.*`, `(?:)`) matches every comment: it needs no search, which costs more than
/// everything else a comment does in such a metric.
#[derive(Debug, Clone)]
struct CommentPattern {
    regex: regex::Regex,
    every: bool,
}

impl CommentPattern {
    fn new(regex: &regex::Regex) -> Self {
        let every = regex_syntax::Parser::new()
            .parse(regex.as_str())
            .is_ok_and(|hir| {
                let properties = hir.properties();
                properties.minimum_len() == Some(0) && properties.look_set().is_empty()
            });
        Self {
            regex: regex.clone(),
            every,
        }
    }

    fn is_match(&self, body: &str) -> bool {
        self.every || self.regex.is_match(body)
    }
}

/// One `count` metric's running computation over one repository's stream.
#[derive(Debug, Clone)]
pub struct CountEngine {
    event: Option<BoundEvent>,
    comments: Vec<CommentPattern>,
    /// The state, counted over the whole repository (the original's way).
    state: Option<StateTracker>,
    /// The state split by label family, age bucket or inactivity.
    series: Option<SeriesState>,
    audience: Audience,
    log_author: bool,
    /// Family labels, for the event and comment points of a sliced metric.
    labels: Option<FamilyLabels>,
    stamp: Stamp,
}

impl CountEngine {
    /// A fresh computation of `spec` over the items `filter` lets through, sliced by
    /// `slices`.
    pub fn new(
        spec: &CountSpec,
        filter: &ItemFilter,
        slices: &velodrome_model::metric::Slices,
    ) -> Self {
        let people = spec.counts_people();
        let families = slices.families();
        let split =
            !families.is_empty() || !spec.age_buckets().is_empty() || spec.inactive().is_some();
        Self {
            event: spec.event().cloned().map(BoundEvent::new),
            comments: spec.comments().iter().map(CommentPattern::new).collect(),
            state: if split {
                None
            } else {
                spec.state()
                    .map(|state| StateTracker::new(state, spec.percentiles()))
            },
            series: if split {
                SeriesState::new(spec, families)
            } else {
                None
            },
            audience: Audience::new(filter, people, people),
            log_author: spec.logs_author(),
            // The series follow their own labels; these are for event and comment points.
            labels: (!families.is_empty()
                && (spec.event().is_some() || !spec.comments().is_empty()))
            .then(|| FamilyLabels::new(families)),
            stamp: Stamp::default(),
        }
    }

    /// Whether the metric needs comment bodies (the reader skips them otherwise).
    pub fn reads_bodies(&self) -> bool {
        !self.comments.is_empty()
    }

    /// Which items can change the output: the counted event, comments when bodies are
    /// matched, and whatever moves the state; everything when labels or attention are
    /// followed.
    pub(crate) fn relevance(&self) -> Relevance {
        let mut relevance = Relevance {
            events: self.event.iter().map(|e| e.matcher().clone()).collect(),
            comments: !self.comments.is_empty(),
            everything: self.labels.is_some() || self.series.is_some(),
        };
        if let Some(series) = &self.series {
            // Every item reaches the series; its descriptions are listed for their bits.
            relevance
                .events
                .extend(series.descriptions().iter().cloned());
        }
        if let Some(state) = &self.state {
            match state.listens_to() {
                Some(events) => relevance.events.extend(events.iter().cloned()),
                None => relevance.everything = true,
            }
        }
        relevance
    }

    /// Issues with a state (memory accounting for benchmarks).
    pub fn tracked_issues(&self) -> usize {
        self.state.as_ref().map_or(0, StateTracker::tracked_issues)
            + self.series.as_ref().map_or(0, SeriesState::tracked_issues)
    }

    /// The logins it ignores.
    pub(crate) fn ignored(&self) -> &[String] {
        self.audience.ignored()
    }

    /// Takes its bits from the computation's vocabulary.
    pub(crate) fn bind(&mut self, vocabulary: &Vocabulary) {
        if let Some(event) = self.event.as_mut() {
            event.bind(vocabulary);
        }
        if let Some(state) = self.state.as_mut() {
            state.bind(vocabulary);
        }
        if let Some(series) = self.series.as_mut() {
            series.bind(vocabulary);
        }
        self.audience.bind(vocabulary);
    }

    /// Takes its columns of `rows`.
    pub(crate) fn place(&mut self, rows: &mut Rows) {
        if let Some(state) = self.state.as_mut() {
            state.place(rows);
        }
        if let Some(series) = self.series.as_mut() {
            series.place(rows);
        }
    }

    /// Processes one item (items must come in key order) and appends its points.
    pub(crate) fn receive(
        &mut self,
        item: &Item,
        seen: &Observed<'_>,
        rows: &mut Rows,
        out: &mut Vec<Point>,
    ) {
        if let Some(labels) = self.labels.as_mut() {
            labels.observe(item);
        }
        let wanted = self.audience.wants(item, seen);
        if wanted {
            self.count(item, seen, rows, out);
        }
        // The series' points come last, as the plain state's do.
        if let Some(series) = self.series.as_mut() {
            series.receive(item, seen, rows, wanted, &mut self.stamp, out);
        }
    }

    /// The event, comment and plain state points of an item the metric looks at.
    fn count(&mut self, item: &Item, seen: &Observed<'_>, rows: &mut Rows, out: &mut Vec<Point>) {
        let author = || {
            if !self.log_author {
                return None;
            }
            match seen.actor_login {
                Some(login) => Some(login.clone()),
                None => item.actor.as_deref().map(Login::from),
            }
        };
        let time = item.key.time;
        let mut points: [Option<(Values, Option<Login>)>; 2] = [None, None];
        if let Some(event) = &self.event
            && event.matches(seen)
        {
            points[0] = Some((Values::Event, author()));
        }
        let mut comment_hits = 0;
        if matches!(item.key.kind, Kind::Comment | Kind::ReviewComment) {
            comment_hits = self
                .comments
                .iter()
                .filter(|pattern| pattern.is_match(&item.body))
                .count();
        }
        if comment_hits > 0 {
            points[1] = Some((Values::Comment, author()));
        }
        let state = self
            .state
            .as_mut()
            .and_then(|state| state.receive(item.issue, seen, time, rows));
        let slices: PointSlices = match self.labels.as_mut() {
            Some(labels) if points.iter().any(Option::is_some) => {
                labels.keys(item.issue).into_iter().map(Some).collect()
            }
            _ => smallvec::smallvec![None],
        };
        if let Some((values, author)) = points[0].take() {
            for slice in &slices {
                out.push(Point {
                    time_ns: self.stamp.next(time),
                    values: values.clone(),
                    author: author.clone(),
                    slice: slice.clone(),
                });
            }
        }
        if let Some((values, author)) = points[1].take() {
            for slice in &slices {
                for _ in 0..comment_hits {
                    out.push(Point {
                        time_ns: self.stamp.next(time),
                        values: values.clone(),
                        author: author.clone(),
                        slice: slice.clone(),
                    });
                }
            }
        }
        if let Some(values) = state {
            out.push(Point {
                time_ns: self.stamp.next(time),
                values: Values::State(values),
                author: None,
                slice: None,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use velodrome_model::metric::MetricSpec;

    use super::super::compute::MetricEngine;
    use super::super::engine::tests::{comment, event, opened};
    use super::super::state::StateValues;
    use super::*;

    fn spec(args: &[&str]) -> MetricSpec {
        let args: Vec<String> = args.iter().map(|s| (*s).to_owned()).collect();
        MetricSpec::parse("count", &args).expect("metric parses")
    }

    const S: i64 = 1_000_000_000;

    fn run(args: &[&str], items: &[Item]) -> Vec<Point> {
        let mut engine = MetricEngine::new(&spec(args));
        let mut rows = super::super::issues::Rows::default();
        engine.place(&mut rows);
        let mut out = Vec::new();
        for item in items {
            engine.receive(
                item,
                &super::super::engine::Observed::unbound(item),
                &mut rows,
                &mut out,
            );
        }
        out
    }

    fn at(seconds: i64, values: Values) -> Point {
        Point {
            time_ns: seconds * S,
            values,
            author: None,
            slice: None,
        }
    }

    fn state(count: i64, sum: i64, percentiles: &[i64]) -> Values {
        Values::State(StateValues {
            count,
            sum,
            percentiles: percentiles.into(),
            buckets: Default::default(),
            inactive: None,
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
    fn patterns_that_match_everything_are_told_apart() {
        for (pattern, every) in [
            (".*", true),
            ("(?:)", true),
            ("a*", true),
            ("(?m)^/lgtm$", false),
            ("^", false),
            (r"\b", false),
            ("x", false),
        ] {
            let regex = regex::Regex::new(pattern).expect("pattern");
            assert_eq!(CommentPattern::new(&regex).every, every, "{pattern}");
            // What it claims agrees with the search on any body.
            for body in ["", "/lgtm", "x y"] {
                assert!(!every || regex.is_match(body), "{pattern} on {body:?}");
            }
        }
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
                    author: None,
                    slice: None,
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
                Values::Duration { .. } => "duration",
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

    #[test]
    fn synthetic_events_count_and_hold_states() {
        let mut first = comment(30, 2, PR, "bob", "looks good");
        first.marks.responded = true;
        let mut unmerged = event(50, 3, PR, "closed", None, Some("Person"));
        unmerged.marks.unmerged = true;
        let items = [
            opened(10, 1, true, "Person"),
            comment(20, 1, PR, "Person", "ping"),
            first,
            unmerged,
        ];
        assert_eq!(
            run(&["--event=responded"], &items),
            vec![at(30, Values::Event)]
        );
        assert_eq!(
            run(&["--event=closed-unmerged"], &items),
            vec![at(50, Values::Event)]
        );
        // Waiting for a first response: in from the opening until the response (the close
        // changes an item of the state too, so it reports, as every change does).
        assert_eq!(
            run(&["--state=opened,!responded"], &items),
            vec![
                at(10, state(1, 0, &[])),
                at(30, state(0, 0, &[])),
                at(50, state(0, 0, &[]))
            ]
        );
    }

    #[test]
    fn reviews_count_by_state_and_end_states() {
        let review = |t, id, state: &str, user| {
            let mut item = event(t, id, PR, "reviewed", Some(state), Some(user));
            item.key.kind = Kind::Review;
            item
        };
        let items = [
            opened(10, 1, true, "Person"),
            review(20, 1, "commented", "bob"),
            review(30, 2, "approved", "carol"),
            review(40, 3, "approved", "dave"),
        ];
        assert_eq!(
            run(&["--event=reviewed:approved"], &items),
            vec![at(30, Values::Event), at(40, Values::Event)]
        );
        assert_eq!(run(&["--event=reviewed"], &items).len(), 3);
        // Waiting for an approval: from the opening until the first one.
        assert_eq!(
            run(&["--state=opened,!reviewed:approved"], &items),
            vec![at(10, state(1, 0, &[])), at(30, state(0, 0, &[]))]
        );
    }

    #[test]
    fn sliced_events_are_one_point_per_label_of_the_family() {
        let items = [
            opened(10, 1, true, "Person"),
            event(11, 1, PR, "labeled", Some("sig/node"), Some("bob")),
            event(12, 2, PR, "labeled", Some("sig/apps"), Some("bob")),
            event(13, 3, PR, "labeled", Some("kind/bug"), Some("bob")),
            event(20, 4, PR, "merged", None, Some("bob")),
        ];
        let points = run(&["--event=merged", "--by-label=sig/,kind/"], &items);
        let slices: Vec<(i64, Vec<String>)> = points
            .iter()
            .map(|p| (p.time_ns, p.slice.as_deref().unwrap_or_default().to_vec()))
            .collect();
        assert_eq!(
            slices,
            vec![
                (20 * S, vec!["apps".to_owned(), "bug".to_owned()]),
                (20 * S + 1, vec!["node".to_owned(), "bug".to_owned()]),
            ]
        );
        // Opened before any label: `none`.
        let points = run(&["--event=opened", "--by-label=sig/"], &items);
        assert_eq!(points[0].slice.as_deref(), Some(&["none".to_owned()][..]));
    }

    #[test]
    fn metrics_that_credit_people_leave_bots_out() {
        let mut by_bot = comment(20, 1, PR, "k8s-ci-robot", "/lgtm");
        by_bot.actor_is_bot = true;
        let mut bot_pr = opened(30, 2, true, "dependabot[bot]");
        bot_pr.author_is_bot = true;
        let mut bot_merge = event(40, 1, PR, "merged", None, Some("k8s-merge-robot"));
        bot_merge.actor_is_bot = true;
        let items = [opened(10, 1, true, "Person"), by_bot, bot_pr, bot_merge];
        // Crediting people: no bot comment, no bot pull request.
        let points = run(&["--event=opened", "--comments=.*", "--log-author"], &items);
        let authors: Vec<Option<&str>> = points.iter().map(|p| p.author.as_deref()).collect();
        assert_eq!(authors, vec![Some("Person")]);
        // Counting what happened: a bot's merge is still a merge.
        assert_eq!(
            run(&["--event=merged"], &items),
            vec![at(40, Values::Event)]
        );
        assert_eq!(
            run(&["--event=opened"], &items),
            vec![at(10, Values::Event), at(30, Values::Event)]
        );
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
