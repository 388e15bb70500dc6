//! The `duration` plugin: per item, a clock that `--from` starts and `--to` stops; each
//! stop that counts is one point at the `--to` event with `seconds` and `number`.
//!
//! Items opened by bots are left out (a bot's pull request says nothing about how fast
//! people work), but bots' actions still count: on Prow repositories the `lgtm` and
//! `approved` labels are applied by a bot on a person's command.

use velodrome_model::metric::{DurationSpec, ItemFilter};

use super::engine::{
    Audience, BoundEvent, Item, Observed, Point, PointSlices, Relevance, Stamp, Values, Vocabulary,
};
use super::issues::Rows;
use super::labels::FamilyLabels;

/// One item's clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Clock {
    /// Not started (or started again with `--every`).
    Idle,
    /// Started at this second.
    Running(i64),
    /// Completed, and no second point may follow (no `--every`).
    Done,
}

impl Clock {
    /// Its word in the computation's rows: 0 idle, 2 done, odd running.
    fn word(self) -> u64 {
        match self {
            Self::Idle => 0,
            Self::Running(start) => ((start << 1) | 1) as u64,
            Self::Done => 2,
        }
    }

    fn from_word(word: u64) -> Self {
        match word {
            0 => Self::Idle,
            w if w & 1 == 1 => Self::Running((w as i64) >> 1),
            _ => Self::Done,
        }
    }
}

/// One `duration` metric's running computation over one repository's stream.
#[derive(Debug, Clone)]
pub struct DurationEngine {
    from: BoundEvent,
    to: BoundEvent,
    every: bool,
    audience: Audience,
    /// Its column in the computation's rows: the [`Clock`] of each item.
    column: usize,
    /// Items whose clock runs or that are done (memory accounting).
    clocks: usize,
    /// Family labels, when the points are sliced (`--by-label`).
    labels: Option<FamilyLabels>,
    stamp: Stamp,
}

impl DurationEngine {
    /// A fresh computation of `spec` over the items `filter` lets through.
    pub fn new(
        spec: &DurationSpec,
        filter: &ItemFilter,
        slices: &velodrome_model::metric::Slices,
    ) -> Self {
        Self {
            from: BoundEvent::new(spec.from().clone()),
            to: BoundEvent::new(spec.to().clone()),
            every: spec.every(),
            audience: Audience::new(filter, true, false),
            column: 0,
            clocks: 0,
            labels: (!slices.is_empty()).then(|| FamilyLabels::new(slices.families())),
            stamp: Stamp::default(),
        }
    }

    /// Which items can change the output: the two events, and every item when labels
    /// are followed.
    pub(crate) fn relevance(&self) -> Relevance {
        Relevance {
            events: vec![self.from.matcher().clone(), self.to.matcher().clone()],
            comments: false,
            everything: self.labels.is_some(),
        }
    }

    /// Items with a clock (memory accounting for benchmarks).
    pub fn tracked_issues(&self) -> usize {
        self.clocks
    }

    /// Takes its column of `rows`.
    pub(crate) fn place(&mut self, rows: &mut Rows) {
        self.column = rows.reserve(1);
    }

    fn set(&mut self, issue: i64, before: Clock, clock: Clock, rows: &mut Rows) {
        match (before, clock) {
            (Clock::Idle, Clock::Idle) => {}
            (Clock::Idle, _) => self.clocks += 1,
            (_, Clock::Idle) => self.clocks -= 1,
            _ => {}
        }
        rows.set(issue, self.column, clock.word());
    }

    /// The logins it ignores.
    pub(crate) fn ignored(&self) -> &[String] {
        self.audience.ignored()
    }

    /// Takes its bits from the computation's vocabulary.
    pub(crate) fn bind(&mut self, vocabulary: &Vocabulary) {
        self.from.bind(vocabulary);
        self.to.bind(vocabulary);
        self.audience.bind(vocabulary);
    }

    /// Processes one item (items must come in key order) and appends its point, if any.
    /// An event that is both `--to` and `--from` stops one clock before starting the next.
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
        let stops = self.to.matches(seen);
        let starts = self.from.matches(seen);
        if !(stops || starts) || !self.audience.wants(item, seen) {
            return;
        }
        let time = item.key.time;
        let mut clock = Clock::from_word(rows.get(item.issue, self.column));
        if stops && let Clock::Running(start) = clock {
            let slices: PointSlices = match self.labels.as_mut() {
                Some(labels) => labels.keys(item.issue).into_iter().map(Some).collect(),
                None => smallvec::smallvec![None],
            };
            for slice in slices {
                out.push(Point {
                    time_ns: self.stamp.next(time),
                    values: Values::Duration {
                        seconds: time - start,
                        number: item.issue,
                    },
                    author: None,
                    slice,
                });
            }
            if self.every {
                self.set(item.issue, clock, Clock::Idle, rows);
                clock = Clock::Idle;
            } else {
                self.set(item.issue, clock, Clock::Done, rows);
                return;
            }
        }
        if starts && clock == Clock::Idle {
            self.set(item.issue, clock, Clock::Running(time), rows);
        }
    }
}

#[cfg(test)]
mod tests {
    use velodrome_model::metric::{Marks, MetricSpec};

    use super::super::compute::MetricEngine;
    use super::super::engine::Item;
    use super::super::engine::tests::{comment, event, opened};
    use super::*;

    const S: i64 = 1_000_000_000;

    fn run(args: &[&str], items: &[Item]) -> Vec<(i64, i64, i64)> {
        let args: Vec<String> = args.iter().map(|s| (*s).to_owned()).collect();
        let spec = MetricSpec::parse("duration", &args).expect("metric parses");
        let mut engine = MetricEngine::new(&spec);
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
        out.iter()
            .map(|p| match p.values {
                Values::Duration { seconds, number } => (p.time_ns, seconds, number),
                ref other => panic!("a duration point, not {other:?}"),
            })
            .collect()
    }

    fn responded(mut item: Item) -> Item {
        item.marks = Marks {
            responded: true,
            ..Marks::default()
        };
        item
    }

    const PR: (i64, bool, &str) = (1, true, "alice");

    #[test]
    fn merged_after_a_reopen_is_one_point_from_the_opening() {
        let items = [
            opened(100, 1, true, "alice"),
            event(200, 1, PR, "closed", None, Some("alice")),
            event(300, 2, PR, "reopened", None, Some("alice")),
            event(400, 3, PR, "merged", None, Some("bob")),
            event(400, 4, PR, "closed", None, Some("bob")),
        ];
        assert_eq!(run(&["--to=merged"], &items), vec![(400 * S, 300, 1)]);
        // Time to close: the first close only, unless --every; --every needs a new start.
        assert_eq!(run(&["--to=closed"], &items), vec![(200 * S, 100, 1)]);
        assert_eq!(
            run(&["--to=closed", "--every"], &items),
            vec![(200 * S, 100, 1)]
        );
        assert_eq!(
            run(&["--from=reopened", "--to=closed", "--every"], &items),
            vec![(400 * S, 100, 1)]
        );
    }

    #[test]
    fn every_counts_each_completion() {
        let rebase = |t, id, name| event(t, id, PR, name, Some("needs-rebase"), Some("bot"));
        let items = [
            opened(0, 1, true, "alice"),
            rebase(10, 1, "labeled"),
            rebase(40, 2, "unlabeled"),
            rebase(100, 3, "labeled"),
            // A second start while the clock runs does not restart it.
            rebase(150, 4, "labeled"),
            rebase(300, 5, "unlabeled"),
        ];
        let args = ["--from=labeled:needs-rebase", "--to=unlabeled:needs-rebase"];
        assert_eq!(run(&args, &items), vec![(40 * S, 30, 1)]);
        let every = [args[0], args[1], "--every"];
        assert_eq!(
            run(&every, &items),
            vec![(40 * S, 30, 1), (300 * S, 200, 1)]
        );
    }

    #[test]
    fn a_response_by_the_author_is_no_response() {
        // The annotator marks first responses; an author's own comment is never marked,
        // so no point comes of it.
        let items = [
            opened(0, 1, true, "alice"),
            comment(50, 1, PR, "alice", "ping"),
        ];
        assert_eq!(run(&["--to=responded"], &items), vec![]);
        let items = [
            opened(0, 1, true, "alice"),
            comment(50, 1, PR, "alice", "ping"),
            responded(comment(70, 2, PR, "bob", "looks good")),
        ];
        assert_eq!(run(&["--to=responded"], &items), vec![(70 * S, 70, 1)]);
    }

    #[test]
    fn two_completions_in_one_second_are_two_points() {
        let items = [
            opened(10, 1, true, "alice"),
            opened(20, 2, true, "bob"),
            event(100, 1, (1, true, "alice"), "merged", None, Some("m")),
            event(100, 2, (2, true, "bob"), "merged", None, Some("m")),
        ];
        assert_eq!(
            run(&["--to=merged"], &items),
            vec![(100 * S, 90, 1), (100 * S + 1, 80, 2)]
        );
    }

    #[test]
    fn filters_and_bots() {
        let mut bot_pr = opened(10, 2, true, "dependabot[bot]");
        bot_pr.author_is_bot = true;
        let mut bot_merge = event(90, 2, (2, true, "dependabot[bot]"), "merged", None, None);
        bot_merge.author_is_bot = true;
        let mut labeled_by_bot = event(60, 3, PR, "labeled", Some("lgtm"), Some("k8s-ci-robot"));
        labeled_by_bot.actor_is_bot = true;
        let items = [
            opened(0, 1, true, "alice"),
            bot_pr,
            labeled_by_bot,
            bot_merge,
            opened(95, 3, false, "carol"),
            event(99, 4, (3, false, "carol"), "closed", None, Some("carol")),
        ];
        // A bot's pull request is left out; a bot's label on a person's command counts.
        assert_eq!(run(&["--to=labeled:lgtm"], &items), vec![(60 * S, 60, 1)]);
        assert_eq!(run(&["--to=merged"], &items), vec![]);
        assert_eq!(
            run(&["--to=closed", "--no-pull-requests"], &items),
            vec![(99 * S, 4, 3)]
        );
        assert_eq!(run(&["--to=closed", "--no-issues"], &items), vec![]);
        assert_eq!(
            run(
                &["--to=labeled:lgtm", "--ignore-authors=k8s-ci-robot"],
                &items
            ),
            vec![]
        );
        assert_eq!(
            run(&["--to=labeled:lgtm", "--ignore-authors=alice"], &items),
            vec![]
        );
    }
}
