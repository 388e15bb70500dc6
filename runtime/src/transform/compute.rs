//! Every metric of one repository as one function of its stream: the annotator, then each
//! metric's engine, item by item. The rounds, `--dry-run` and the benchmark all drive this
//! one type, so they compute the same points.

use velodrome_model::bots::Bots;
use velodrome_model::metric::MetricSpec;

use super::annotate::Annotator;
use super::engine::{Item, MetricEngine, Point};

/// The running computation of a repository's metrics.
#[derive(Debug, Clone)]
pub struct Computation {
    annotator: Annotator,
    engines: Vec<MetricEngine>,
    points: Vec<Point>,
}

impl Computation {
    /// A fresh computation of `specs` (in this order) with the config's `bots`.
    pub fn new<'a>(specs: impl IntoIterator<Item = &'a MetricSpec>, bots: &Bots) -> Self {
        let specs: Vec<&MetricSpec> = specs.into_iter().collect();
        let responses = specs.iter().any(|s| s.uses_responses());
        Self {
            annotator: Annotator::new(bots, responses),
            engines: specs.into_iter().map(MetricEngine::new).collect(),
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

    /// Feeds one item (in key order) to every metric and hands each point to `emit` with
    /// the index of its metric; stops at the first error `emit` returns.
    pub fn receive<E>(
        &mut self,
        item: &mut Item,
        mut emit: impl FnMut(usize, &Point) -> Result<(), E>,
    ) -> Result<(), E> {
        self.annotator.annotate(item);
        for (index, engine) in self.engines.iter_mut().enumerate() {
            engine.receive(item, &mut self.points);
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
        Ok(())
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
