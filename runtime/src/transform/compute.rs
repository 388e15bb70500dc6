//! Every metric of one repository as one function of its stream: the annotator, then each
//! metric's engine, item by item. The rounds, `--dry-run` and the benchmark all drive this
//! one type, so they compute the same points.
//!
//! Most items matter to few metrics (a label event to the states that mention the label,
//! a comment to the metrics that read comments). The event descriptions of all metrics are
//! matched once per item, into a bit set ([`Matcher`]), and an engine is called only for the
//! kinds of items its filter reads, and only when one of its events matched, or it reads
//! comments and the item is one, or it needs every item (the engines an item reaches are
//! one bit set, [`Routes`]). What an engine does with an item is unchanged; it simply never
//! sees items it would ignore.

use smallvec::SmallVec;
use velodrome_model::bots::Bots;
use velodrome_model::metric::{EventMatcher, MetricSpec};

use super::annotate::Annotator;
use velodrome_model::metric::Plugin;

use super::count::CountEngine;
use super::duration::DurationEngine;
use super::engine::{Item, Kind, Observed, Point, Relevance, Vocabulary};
use super::issues::Rows;

/// The most distinct event descriptions routed by bit set; past that, every engine sees
/// every item (correct, only slower).
const ROUTED: usize = 128;

/// The vocabulary's bits sorted by what an item must show to match them, so an item is
/// matched with one look at its event name and a few label comparisons, not one full
/// comparison per description.
#[derive(Debug, Clone, Default)]
struct Matcher {
    /// Bits matched by the event name alone, by [`name_index`].
    by_name: [u128; NAMES.len() + 1],
    /// `labeled:L` bits, with their label.
    labeled: Vec<(String, u128)>,
    /// `unlabeled:L` bits, with their label.
    unlabeled: Vec<(String, u128)>,
    /// Bits that match every item.
    always: u128,
    /// `responded` bits.
    responded: u128,
    /// `closed-unmerged` bits.
    unmerged: u128,
    /// `reviewed` (any state: `None`) and `reviewed:STATE` bits.
    reviewed: Vec<(Option<String>, u128)>,
}

/// The event names a description can name without a label.
const NAMES: [&str; 5] = ["opened", "commented", "closed", "reopened", "merged"];

fn name_index(event: &str) -> usize {
    NAMES
        .iter()
        .position(|n| *n == event)
        .unwrap_or(NAMES.len())
}

impl Matcher {
    fn new(vocabulary: &[EventMatcher]) -> Self {
        let mut matcher = Self::default();
        for (bit, event) in vocabulary.iter().enumerate() {
            let bit = 1u128 << bit;
            match event {
                EventMatcher::Never => {}
                EventMatcher::Always => matcher.always |= bit,
                EventMatcher::Opened => matcher.by_name[0] |= bit,
                EventMatcher::Commented => matcher.by_name[1] |= bit,
                EventMatcher::Closed => matcher.by_name[2] |= bit,
                EventMatcher::Reopened => matcher.by_name[3] |= bit,
                EventMatcher::Merged => matcher.by_name[4] |= bit,
                EventMatcher::Labeled(label) => matcher.labeled.push((label.clone(), bit)),
                EventMatcher::Unlabeled(label) => matcher.unlabeled.push((label.clone(), bit)),
                EventMatcher::Responded => matcher.responded |= bit,
                EventMatcher::ClosedUnmerged => matcher.unmerged |= bit,
                EventMatcher::Reviewed(state) => matcher.reviewed.push((state.clone(), bit)),
            }
        }
        matcher
    }

    /// The bits of every description `item` matches (as [`EventMatcher::matches`] says).
    fn matches(&self, item: &Item) -> u128 {
        let mut bits = self.always | self.by_name[name_index(&item.event)];
        let labels = match item.event.as_str() {
            "labeled" => self.labeled.as_slice(),
            "unlabeled" => self.unlabeled.as_slice(),
            _ => &[],
        };
        let label = item.label.as_deref().unwrap_or("");
        for (want, bit) in labels {
            if want == label {
                bits |= bit;
            }
        }
        if item.event == "reviewed" {
            for (state, bit) in &self.reviewed {
                if state.as_deref().is_none_or(|want| want == label) {
                    bits |= bit;
                }
            }
        }
        if item.marks.responded {
            bits |= self.responded;
        }
        if item.marks.unmerged && item.event == "closed" {
            bits |= self.unmerged;
        }
        bits
    }
}

/// Which engines an item reaches, as sets of engine indexes (a bit each): worked out once
/// per item from its kind, the descriptions it matched and whether it is a comment, so an
/// item costs work only for the engines it reaches, not a test per engine.
#[derive(Debug, Clone, Default)]
struct Routes {
    /// 64-bit words per set.
    words: usize,
    /// Engines that read items of issues, and of pull requests.
    issues: Vec<u64>,
    pull_requests: Vec<u64>,
    /// Engines called for every item, and for every comment.
    everything: Vec<u64>,
    comments: Vec<u64>,
    /// For each bit of the vocabulary, the engines listening to it (`words` words each).
    listeners: Vec<u64>,
}

impl Routes {
    fn new(engines: usize) -> Self {
        let words = engines.div_ceil(64);
        Self {
            words,
            issues: vec![0; words],
            pull_requests: vec![0; words],
            everything: vec![0; words],
            comments: vec![0; words],
            listeners: vec![0; words * ROUTED],
        }
    }

    fn add(set: &mut [u64], engine: usize) {
        set[engine / 64] |= 1 << (engine % 64);
    }

    /// The engines an item reaches, into `call` (one word per 64 engines).
    fn reached(&self, is_pr: bool, matched: u128, comment: bool, call: &mut SmallVec<[u64; 2]>) {
        call.clear();
        call.extend_from_slice(&self.everything);
        if comment {
            call.iter_mut()
                .zip(&self.comments)
                .for_each(|(c, m)| *c |= m);
        }
        let mut bits = matched;
        while bits != 0 {
            let bit = bits.trailing_zeros() as usize;
            bits &= bits - 1;
            let listeners = &self.listeners[bit * self.words..(bit + 1) * self.words];
            call.iter_mut().zip(listeners).for_each(|(c, m)| *c |= m);
        }
        let kind = if is_pr {
            &self.pull_requests
        } else {
            &self.issues
        };
        call.iter_mut().zip(kind).for_each(|(c, m)| *c &= m);
    }
}

/// The running computation of a repository's metrics.
#[derive(Debug, Clone)]
pub struct Computation {
    annotator: Annotator,
    engines: Vec<MetricEngine>,
    routes: Routes,
    /// The engines the item being received reaches (kept to reuse its allocation).
    call: SmallVec<[u64; 2]>,
    /// Which bits of the distinct event descriptions of all engines an item matches.
    matcher: Matcher,
    /// The per-issue words of the annotator and of every engine, one row per issue.
    rows: Rows,
    points: Vec<Point>,
}

impl Computation {
    /// A fresh computation of `specs` (in this order) with the config's `bots`.
    pub fn new<'a>(specs: impl IntoIterator<Item = &'a MetricSpec>, bots: &Bots) -> Self {
        let specs: Vec<&MetricSpec> = specs.into_iter().collect();
        let responses = specs.iter().any(|s| s.uses_responses());
        // An engine never sees items of a kind its filter leaves out: their issue numbers
        // are never those of the items it counts (issues and pull requests share one
        // numbering), so nothing it keeps per issue, nor any point, depends on them.
        let kinds: Vec<(bool, bool)> = specs
            .iter()
            .map(|s| {
                (
                    s.filter().includes_issues(),
                    s.filter().includes_pull_requests(),
                )
            })
            .collect();
        let mut engines: Vec<MetricEngine> = specs.into_iter().map(MetricEngine::new).collect();
        let mut vocabulary: Vec<EventMatcher> = Vec::new();
        let mut logins: Vec<String> = Vec::new();
        let mut routes = Routes::new(engines.len());
        for (index, (engine, (issues, pull_requests))) in engines.iter().zip(&kinds).enumerate() {
            for login in engine.ignored() {
                if !logins.contains(login) {
                    logins.push(login.clone());
                }
            }
            let relevance = engine.relevance();
            if *issues {
                Routes::add(&mut routes.issues, index);
            }
            if *pull_requests {
                Routes::add(&mut routes.pull_requests, index);
            }
            if relevance.comments {
                Routes::add(&mut routes.comments, index);
            }
            let mut everything = relevance.everything;
            for event in relevance.events {
                let bit = match vocabulary.iter().position(|known| *known == event) {
                    Some(bit) => bit,
                    None => {
                        vocabulary.push(event);
                        vocabulary.len() - 1
                    }
                };
                if bit < ROUTED {
                    let words = routes.words;
                    Routes::add(&mut routes.listeners[bit * words..(bit + 1) * words], index);
                } else {
                    everything = true;
                }
            }
            if everything {
                Routes::add(&mut routes.everything, index);
            }
        }
        vocabulary.truncate(ROUTED);
        let vocabulary = Vocabulary {
            events: vocabulary,
            logins,
        };
        let mut rows = Rows::default();
        for engine in &mut engines {
            engine.bind(&vocabulary);
            engine.place(&mut rows);
        }
        Self {
            annotator: Annotator::new(bots, responses, &vocabulary.logins, &mut rows),
            rows,
            engines,
            routes,
            call: SmallVec::new(),
            matcher: Matcher::new(&vocabulary.events),
            points: Vec::new(),
        }
    }

    /// How many metrics it computes.
    pub fn len(&self) -> usize {
        self.engines.len()
    }

    /// Whether it computes no metric.
    pub fn is_empty(&self) -> bool {
        self.engines.is_empty()
    }

    /// Whether some metric needs comment bodies (the reader skips them otherwise).
    pub fn reads_bodies(&self) -> bool {
        self.engines.iter().any(MetricEngine::reads_bodies)
    }

    /// Issues with per-issue state, over all metrics (memory accounting for benchmarks).
    pub fn tracked_issues(&self) -> usize {
        self.engines.iter().map(MetricEngine::tracked_issues).sum()
    }

    /// Feeds one item (in key order) to every metric it concerns and hands each point to
    /// `emit` with the index of its metric; stops at the first error `emit` returns.
    pub fn receive<E>(
        &mut self,
        item: &mut Item,
        mut emit: impl FnMut(usize, &Point) -> Result<(), E>,
    ) -> Result<(), E> {
        let annotation = self.annotator.annotate(item, &mut self.rows);
        let item = &*item;
        let matched = self.matcher.matches(item);
        let seen = Observed {
            matched,
            author_ignored: annotation.author_ignored,
            actor_ignored: annotation.actor_ignored,
            actor_login: annotation.actor.and_then(|i| self.annotator.login(i)),
            ..Observed::unbound(item)
        };
        let comment = matches!(item.key.kind, Kind::Comment | Kind::ReviewComment);
        self.routes
            .reached(item.is_pr, matched, comment, &mut self.call);
        // Engines in index order, as the metrics are listed.
        for (word, mut bits) in self.call.iter().copied().enumerate() {
            while bits != 0 {
                let index = word * 64 + bits.trailing_zeros() as usize;
                bits &= bits - 1;
                let Some(engine) = self.engines.get_mut(index) else {
                    continue;
                };
                engine.receive(item, &seen, &mut self.rows, &mut self.points);
                let mut result = Ok(());
                for point in &self.points {
                    result = emit(index, point);
                    if result.is_err() {
                        break;
                    }
                }
                self.points.clear();
                result?;
            }
        }
        Ok(())
    }
}

/// One metric's running computation over one repository's stream.
#[derive(Debug, Clone)]
pub enum MetricEngine {
    /// A `count` metric (boxed, as both: engines are large and live in a Vec).
    Count(Box<CountEngine>),
    /// A `duration` metric.
    Duration(Box<DurationEngine>),
}

impl MetricEngine {
    /// A fresh computation of `spec`.
    pub fn new(spec: &MetricSpec) -> Self {
        match spec.plugin() {
            Plugin::Count(count) => Self::Count(Box::new(CountEngine::new(
                count,
                spec.filter(),
                spec.slices(),
            ))),
            Plugin::Duration(duration) => Self::Duration(Box::new(DurationEngine::new(
                duration,
                spec.filter(),
                spec.slices(),
            ))),
        }
    }

    /// Whether the metric needs comment bodies (the reader skips them otherwise).
    pub fn reads_bodies(&self) -> bool {
        match self {
            Self::Count(engine) => engine.reads_bodies(),
            Self::Duration(_) => false,
        }
    }

    /// Which items can change the metric's output.
    pub(crate) fn relevance(&self) -> Relevance {
        match self {
            Self::Count(engine) => engine.relevance(),
            Self::Duration(engine) => engine.relevance(),
        }
    }

    /// Issues with per-issue state (memory accounting for benchmarks).
    pub fn tracked_issues(&self) -> usize {
        match self {
            Self::Count(engine) => engine.tracked_issues(),
            Self::Duration(engine) => engine.tracked_issues(),
        }
    }

    /// The logins it ignores (`--ignore-authors`).
    fn ignored(&self) -> &[String] {
        match self {
            Self::Count(engine) => engine.ignored(),
            Self::Duration(engine) => engine.ignored(),
        }
    }

    /// Takes the bits of its event descriptions and ignored logins from the computation's
    /// `vocabulary`, so that it reads them from [`Observed`] instead of comparing strings.
    pub(crate) fn bind(&mut self, vocabulary: &Vocabulary) {
        match self {
            Self::Count(engine) => engine.bind(vocabulary),
            Self::Duration(engine) => engine.bind(vocabulary),
        }
    }

    /// Takes the columns of `rows` that hold its per-issue words.
    pub(crate) fn place(&mut self, rows: &mut Rows) {
        match self {
            Self::Count(engine) => engine.place(rows),
            Self::Duration(engine) => engine.place(rows),
        }
    }

    /// Processes one item (items must come in key order) and appends its points; `seen`
    /// is what the computation it is bound to worked out about the item
    /// ([`Observed::unbound`] for an engine used alone), `rows` the per-issue words it
    /// was placed in.
    pub(crate) fn receive(
        &mut self,
        item: &Item,
        seen: &Observed<'_>,
        rows: &mut Rows,
        out: &mut Vec<Point>,
    ) {
        match self {
            Self::Count(engine) => engine.receive(item, seen, rows, out),
            Self::Duration(engine) => engine.receive(item, seen, rows, out),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::engine::Values;
    use super::super::engine::tests::{comment, event, opened};
    use super::*;

    fn spec(plugin: &str, args: &[&str]) -> MetricSpec {
        let args: Vec<String> = args.iter().map(|s| (*s).to_owned()).collect();
        MetricSpec::parse(plugin, &args).expect("metric parses")
    }

    /// (metric index, second, seconds) of every duration point.
    fn durations(specs: &[MetricSpec], items: &[Item]) -> Vec<(usize, i64, i64)> {
        let mut computation = Computation::new(specs, &Bots::default());
        let mut out = Vec::new();
        for item in items {
            let mut item = item.clone();
            computation
                .receive(&mut item, |index, point| {
                    if let Values::Duration { seconds, .. } = point.values {
                        out.push((index, point.time_ns / 1_000_000_000, seconds));
                    }
                    Ok::<(), ()>(())
                })
                .expect("no error");
        }
        out
    }

    /// Every point of a computation, by metric.
    fn points(specs: &[MetricSpec], items: &[Item]) -> Vec<Vec<Point>> {
        let mut computation = Computation::new(specs, &Bots::default());
        let mut out = vec![Vec::new(); specs.len()];
        for item in items {
            let mut item = item.clone();
            computation
                .receive(&mut item, |index, point| {
                    out[index].push(point.clone());
                    Ok::<(), ()>(())
                })
                .expect("no error");
        }
        out
    }

    /// Seventy metrics (two words of routes, and 70 ignored logins: past 64 the audiences
    /// compare strings) give each metric exactly the points it gives alone.
    #[test]
    fn many_metrics_route_as_one() {
        let kinds = [
            ("count", vec!["--event=merged"]),
            (
                "count",
                vec!["--no-issues", "--state=opened,!merged", "--percentiles=50"],
            ),
            ("count", vec!["--comments=(?m)^/lgtm$", "--log-author"]),
            ("count", vec!["--no-pull-requests", "--event=closed"]),
            ("duration", vec!["--to=responded"]),
            (
                "count",
                vec!["--state=opened", "--by-label=sig/", "--inactive=1d"],
            ),
            (
                "duration",
                vec!["--no-issues", "--from=labeled:lgtm", "--to=merged"],
            ),
        ];
        let specs: Vec<MetricSpec> = (0..70)
            .map(|i| {
                let (plugin, args) = &kinds[i % kinds.len()];
                let login = format!("--ignore-authors=user{i}");
                let mut args: Vec<&str> = args.clone();
                args.push(&login);
                spec(plugin, &args)
            })
            .collect();
        let pr = (1, true, "alice");
        let issue = (2, false, "erin");
        let items = vec![
            opened(0, 1, true, "alice"),
            opened(5, 2, false, "erin"),
            event(10, 1, pr, "labeled", Some("sig/node"), Some("alice")),
            comment(20, 1, pr, "bob", "/lgtm"),
            event(30, 2, pr, "labeled", Some("lgtm"), Some("k8s-ci-robot")),
            comment(40, 2, issue, "user7", "me"),
            comment(50, 3, issue, "carol", "on it"),
            event(100_000, 3, pr, "merged", None, Some("dave")),
            event(100_000, 4, issue, "closed", None, Some("carol")),
        ];
        let together = points(&specs, &items);
        for (index, spec) in specs.iter().enumerate() {
            let alone = points(std::slice::from_ref(spec), &items);
            assert_eq!(together[index], alone[0], "metric {index}");
        }
        assert!(together.iter().all(|p| !p.is_empty()));
    }

    #[test]
    fn the_bit_matcher_agrees_with_the_descriptions() {
        let vocabulary: Vec<EventMatcher> = [
            "opened",
            "commented",
            "closed",
            "reopened",
            "merged",
            "labeled:lgtm",
            "labeled:a:b",
            "unlabeled:lgtm",
            "responded",
            "closed-unmerged",
            "reviewed",
            "reviewed:approved",
        ]
        .iter()
        .map(|e| EventMatcher::parse(e).expect("event"))
        .chain([EventMatcher::Never, EventMatcher::Always])
        .collect();
        let matcher = Matcher::new(&vocabulary);
        let pr = (1, true, "alice");
        let mut items = vec![
            opened(1, 1, true, "alice"),
            comment(2, 1, pr, "bob", "x"),
            event(3, 1, pr, "closed", None, Some("bob")),
            event(4, 2, pr, "reopened", None, Some("bob")),
            event(5, 3, pr, "merged", None, Some("bob")),
            event(6, 4, pr, "labeled", Some("lgtm"), Some("bob")),
            event(7, 5, pr, "labeled", Some("a:b"), Some("bob")),
            event(8, 6, pr, "unlabeled", Some("lgtm"), Some("bob")),
            event(9, 7, pr, "unlabeled", Some("a:b"), Some("bob")),
            event(10, 8, pr, "referenced", None, Some("bob")),
            event(10, 9, pr, "reviewed", Some("approved"), Some("bob")),
            event(10, 10, pr, "reviewed", Some("commented"), Some("bob")),
        ];
        let mut first = comment(11, 2, pr, "carol", "y");
        first.marks.responded = true;
        let mut unmerged = event(12, 9, pr, "closed", None, Some("bob"));
        unmerged.marks.unmerged = true;
        items.extend([first, unmerged]);
        for item in &items {
            let label = item.label.as_deref().unwrap_or("");
            let want = vocabulary
                .iter()
                .enumerate()
                .filter(|(_, e)| e.matches(&item.event, label, item.marks))
                .fold(0u128, |bits, (bit, _)| bits | 1 << bit);
            assert_eq!(matcher.matches(item), want, "{item:?}");
        }
    }

    #[test]
    fn a_bot_answers_first_and_the_person_after_it_counts() {
        let pr = (1, true, "alice");
        let items = [
            opened(100, 1, true, "alice"),
            comment(110, 1, pr, "k8s-ci-robot", "/test all"),
            event(
                120,
                1,
                pr,
                "labeled",
                Some("size/S"),
                Some("dependabot[bot]"),
            ),
            comment(130, 2, pr, "alice", "ready for review"),
            comment(400, 3, pr, "bob", "/lgtm"),
            comment(500, 4, pr, "carol", "+1"),
        ];
        let specs = [
            spec("duration", &["--to=responded"]),
            spec("duration", &["--to=responded", "--ignore-authors=bob"]),
        ];
        // Bob's comment is the first response for every metric: `--ignore-authors` of
        // one metric hides Bob from that metric only, so it sees no response at all.
        assert_eq!(durations(&specs, &items), vec![(0, 400, 300)]);
    }

    #[test]
    fn an_issue_answered_only_by_its_author_and_bots_has_no_response() {
        let issue = (2, false, "erin");
        let items = [
            opened(0, 2, false, "erin"),
            comment(10, 1, issue, "erin", "more details"),
            comment(20, 2, issue, "googlebot", "CLA signed"),
            event(30, 1, issue, "closed", None, Some("erin")),
        ];
        let specs = [spec("duration", &["--to=responded"])];
        assert_eq!(durations(&specs, &items), vec![]);
    }
}
