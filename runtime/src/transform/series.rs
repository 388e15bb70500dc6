//! A `--state` split into series and looked at more closely: by label family
//! (`--by-label`), by age bucket (`--age-buckets`) and by inactivity (`--inactive`), so
//! "pull requests waiting more than 30 days, by SIG" is one metric.
//!
//! The per-issue state machine is the plain state's ([`StateTracker::step`]); what differs
//! is what is counted. Each series (one combination of label values, interned by
//! [`FamilyLabels`]) holds its members' start times in sorted chunks ([`CutBag`]), so a
//! percentile is a rank query, and each age bucket is a count below a cut (now less the
//! bucket's age) that only moves forward and is searched only when it passes a start.
//! Inactivity is counted the same way, by a cut over the members' last attention: a
//! member is counted when the cut passes it ([`Quiet`], whose heap holds at most the
//! attention of one inactivity window). An item moves between series when its labels
//! change and keeps its start, so its age does not reset. A point is written for every
//! series a change touches, at the change.
//!
//! Attention is the last comment, review, or event by someone who is neither the item's
//! author nor a bot; an item nobody else has touched counts from its creation.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use velodrome_model::metric::{CountSpec, EventMatcher, Family};

use super::engine::{Item, Kind, Observed, Point, Stamp, Values, Vocabulary};
use super::issues::{IssueTable, Rows};
use super::labels::{FamilyLabels, SeriesId, SeriesIds, SliceKey};
use super::rank::{CutBag, MinuteSum};
use super::state::{FOREVER_NS, Fields, StateTracker, StateValues};

/// An active issue: its start (`None`: active since the beginning of time) and the series
/// it is counted in.
#[derive(Debug, Clone)]
struct Member {
    start: Option<i64>,
    series: SeriesIds,
}

/// The members of one series.
#[derive(Debug, Clone, Default)]
struct Group {
    /// Finite start times; cut i counts those older than bucket i.
    starts: CutBag,
    /// The sum of whole minutes of age, and the count with the members active since the
    /// beginning of time.
    minutes: MinuteSum,
    /// Members whose last attention is at or before the inactivity cut.
    inactive: i64,
}

impl Group {
    fn add(&mut self, start: Option<i64>) {
        if let Some(start) = start {
            self.starts.insert(start);
        }
        self.minutes.add(start);
    }

    fn take(&mut self, start: Option<i64>) {
        if let Some(start) = start {
            self.starts.remove(start);
        }
        self.minutes.remove(start);
    }

    /// Members whose start is after `time - limit` (bucket `index`), younger than it.
    fn younger_than(&mut self, index: usize, time: i64, limit: i64) -> i64 {
        let cut = time.saturating_sub(limit);
        (self.starts.len() - self.starts.count_at_most(index, cut)) as i64
    }
}

/// Inactivity by a cut that only moves forward: a member is counted inactive when the cut
/// (now less the limit) passes its last attention, and uncounted when it gets attention
/// or leaves, so no point searches the members' attention times.
#[derive(Debug, Clone)]
struct Quiet {
    limit: i64,
    /// The time less the limit, as of the item being received.
    cut: i64,
    /// (attention, issue) of members not counted yet, by attention; an entry whose issue
    /// has had attention since, or left, is dropped when the cut passes it.
    pending: BinaryHeap<Reverse<(i64, i64)>>,
}

/// The series of one `count --state` metric with slices, buckets or an inactivity limit.
#[derive(Debug, Clone)]
pub struct SeriesState {
    machine: StateTracker,
    labels: Option<FamilyLabels>,
    percentiles: Vec<u8>,
    buckets: Vec<i64>,
    /// The inactivity limit, and the attention times still to pass the cut.
    quiet: Option<Quiet>,
    /// Its column in the computation's rows for membership: 0 for an item that is not
    /// active, else its start; and the column after it, the series it is counted in
    /// (see [`SeriesState::set_member`]).
    member: usize,
    /// The series of members counted in more than two (rare: three SIGs and more).
    many: IssueTable<SeriesIds>,
    /// Its column in the computation's rows: each item's last attention, as
    /// `time << 2 | counted << 1 | 1` (0: none yet), where `counted` says the item is in
    /// the inactive counts of its series.
    attention: usize,
    /// Every series seen, by the id the labels gave it (0 when not sliced); a series that
    /// empties keeps its group (there are as many as label combinations, not items).
    groups: Vec<Group>,
    /// The tag values of the one series of a metric that is not sliced.
    unsliced: SliceKey,
    /// Series the item being received touched (kept to reuse its allocation).
    touched: Vec<SeriesId>,
}

impl SeriesState {
    /// The series of `spec`'s state (which must have one), sliced by `families`.
    pub fn new(spec: &CountSpec, families: &[Family]) -> Option<Self> {
        let state = spec.state()?;
        Some(Self {
            machine: StateTracker::new(state, &[]),
            labels: (!families.is_empty()).then(|| FamilyLabels::new(families)),
            percentiles: spec.percentiles().to_vec(),
            buckets: spec.age_buckets().to_vec(),
            quiet: spec.inactive().map(|limit| Quiet {
                limit,
                cut: i64::MIN,
                pending: BinaryHeap::new(),
            }),
            member: 0,
            many: IssueTable::default(),
            attention: 0,
            groups: Vec::new(),
            unsliced: SliceKey::from(Vec::new()),
            touched: Vec::new(),
        })
    }

    /// Every event description its state reads.
    pub(crate) fn descriptions(&self) -> &[EventMatcher] {
        self.machine.descriptions()
    }

    /// Takes the bits of its state's matchers from the computation's vocabulary.
    pub(crate) fn bind(&mut self, vocabulary: &Vocabulary) {
        self.machine.bind(vocabulary);
    }

    /// Takes its columns of `rows`: its state's and the attention's.
    pub(crate) fn place(&mut self, rows: &mut Rows) {
        self.machine.place(rows);
        self.attention = rows.reserve(1);
        self.member = rows.reserve(2);
    }

    /// The membership of `issue`, if it is active.
    fn member(&self, issue: i64, rows: &Rows) -> Option<Member> {
        let start = match rows.get(issue, self.member) {
            0 => return None,
            2 => None,
            word => Some((word as i64) >> 1),
        };
        let word = rows.get(issue, self.member + 1);
        let series = match (word >> 32) as u32 {
            u32::MAX => self.many.get(issue).cloned().unwrap_or_default(),
            0 => smallvec::smallvec![word as u32],
            second => smallvec::smallvec![word as u32, second - 1],
        };
        Some(Member { start, series })
    }

    fn set_member(&mut self, issue: i64, member: Option<&Member>, rows: &mut Rows) {
        let Some(member) = member else {
            rows.set(issue, self.member, 0);
            self.many.remove(issue);
            return;
        };
        let start = match member.start {
            Some(start) => ((start << 1) | 1) as u64,
            None => 2,
        };
        let series = match member.series.as_slice() {
            [] => u64::from(u32::MAX) << 32,
            [only] => u64::from(*only),
            [first, second] if *second < u32::MAX - 1 => {
                u64::from(*first) | (u64::from(*second + 1) << 32)
            }
            _ => {
                self.many.insert(issue, member.series.clone());
                u64::from(u32::MAX) << 32
            }
        };
        rows.set(issue, self.member, start);
        rows.set(issue, self.member + 1, series);
    }

    /// Issues with a state (memory accounting).
    pub fn tracked_issues(&self) -> usize {
        self.machine.tracked_issues()
    }

    /// The series `issue` is counted in now, each with its group.
    fn series_of(&mut self, issue: i64) -> SeriesIds {
        let series = match self.labels.as_mut() {
            Some(labels) => labels.series(issue),
            None => smallvec::smallvec![0],
        };
        let needed = series.iter().max().map_or(0, |id| *id as usize + 1);
        if self.groups.len() < needed {
            self.groups.resize_with(needed, Group::default);
        }
        series
    }

    /// The tag values of series `id`.
    fn key(&self, id: SeriesId) -> &SliceKey {
        match &self.labels {
            Some(labels) => labels.key(id),
            None => &self.unsliced,
        }
    }

    /// The last attention of `issue` and whether it is counted inactive.
    fn attention_of(&self, issue: i64, rows: &Rows) -> Option<(i64, bool)> {
        match rows.get(issue, self.attention) {
            0 => None,
            word => Some(((word as i64) >> 2, word & 2 != 0)),
        }
    }

    fn set_attention(&self, issue: i64, time: i64, counted: bool, rows: &mut Rows) {
        let word = (time << 2) | (i64::from(counted) << 1) | 1;
        rows.set(issue, self.attention, word as u64);
    }

    /// Adds `delta` to the inactive counts of the series of `member`.
    fn count_inactive(&mut self, member: &[SeriesId], delta: i64) {
        for id in member {
            self.groups[*id as usize].inactive += delta;
        }
    }

    /// Counts a member whose attention is `attention` as inactive at once, or waits for
    /// the cut to pass it; returns whether it is counted.
    fn place_attention(&mut self, issue: i64, attention: i64, series: &[SeriesId]) -> bool {
        let Some(quiet) = self.quiet.as_mut() else {
            return false;
        };
        if attention <= quiet.cut {
            self.count_inactive(series, 1);
            true
        } else {
            quiet.pending.push(Reverse((attention, issue)));
            false
        }
    }

    /// Moves the inactivity cut to `time` less the limit: members whose attention it
    /// passes are counted, once, if that is still their last attention.
    fn pass_cut(&mut self, time: i64, rows: &mut Rows) {
        let Some(quiet) = self.quiet.as_mut() else {
            return;
        };
        quiet.cut = time.saturating_sub(quiet.limit);
        let cut = quiet.cut;
        while let Some(Reverse((attention, issue))) = self.quiet.as_ref().and_then(|q| {
            q.pending
                .peek()
                .copied()
                .filter(|Reverse((a, _))| *a <= cut)
        }) {
            if let Some(quiet) = self.quiet.as_mut() {
                quiet.pending.pop();
            }
            if let (Some(member), Some((last, false))) =
                (self.member(issue, rows), self.attention_of(issue, rows))
                && last == attention
            {
                self.set_attention(issue, attention, true, rows);
                self.count_inactive(&member.series, 1);
            }
        }
    }

    fn join(
        &mut self,
        issue: i64,
        start: Option<i64>,
        time: i64,
        touched: &mut Vec<SeriesId>,
        rows: &mut Rows,
    ) {
        let series = self.series_of(issue);
        let attention = match self.attention_of(issue, rows) {
            Some((attention, _)) => attention,
            None => start.unwrap_or(time),
        };
        for id in &series {
            self.groups[*id as usize].add(start);
        }
        let counted = self.place_attention(issue, attention, &series);
        self.set_attention(issue, attention, counted, rows);
        touched.extend_from_slice(&series);
        self.set_member(issue, Some(&Member { start, series }), rows);
    }

    fn leave(&mut self, issue: i64, touched: &mut Vec<SeriesId>, rows: &mut Rows) {
        let Some(member) = self.member(issue, rows) else {
            return;
        };
        self.set_member(issue, None, rows);
        for id in &member.series {
            self.groups[*id as usize].take(member.start);
        }
        if let Some((attention, true)) = self.attention_of(issue, rows) {
            self.count_inactive(&member.series, -1);
            self.set_attention(issue, attention, false, rows);
        }
        touched.extend_from_slice(&member.series);
    }

    /// Feeds one item (`wanted`: the metric's filters let it through); appends a point,
    /// stamped by `stamp`, for every series the item changed, in the order of their tag
    /// values.
    pub(crate) fn receive(
        &mut self,
        item: &Item,
        seen: &Observed<'_>,
        rows: &mut Rows,
        wanted: bool,
        stamp: &mut Stamp,
        out: &mut Vec<Point>,
    ) {
        let issue = item.issue;
        let time = item.key.time;
        // Attention comes from an action of someone other than the author, not a bot.
        let attends = wanted
            && item.key.kind != Kind::Opened
            && !item.actor_is_bot
            && item
                .actor
                .as_deref()
                .is_some_and(|a| !a.eq_ignore_ascii_case(&item.issue_user));
        let mut touched = std::mem::take(&mut self.touched);
        touched.clear();
        self.pass_cut(time, rows);
        // Attention: the creation, then every action of another person.
        let before = self.attention_of(issue, rows);
        let attention = if item.key.kind == Kind::Opened {
            before.is_none().then_some(time)
        } else {
            attends.then_some(time)
        };
        if let Some(now) = attention {
            match self.member(issue, rows) {
                Some(member) => {
                    if before.is_some_and(|(_, counted)| counted) {
                        self.count_inactive(&member.series, -1);
                    }
                    let counted = self.place_attention(issue, now, &member.series);
                    self.set_attention(issue, now, counted, rows);
                    if self.quiet.is_some() {
                        touched.extend_from_slice(&member.series);
                    }
                }
                None => self.set_attention(issue, now, false, rows),
            }
        }
        // Labels: an active item moves between series, keeping its start.
        let relabelled = self.labels.as_mut().is_some_and(|l| l.observe(item));
        if relabelled && let Some(member) = self.member(issue, rows) {
            let start = member.start;
            self.leave(issue, &mut touched, rows);
            self.join(issue, start, time, &mut touched, rows);
        }
        if wanted {
            let was_known = self.machine.is_known(issue, rows);
            let step = self.machine.step(issue, seen, rows);
            let active = self.machine.is_active(issue, rows);
            let member = self.member(issue, rows).is_some();
            if !was_known && self.machine.starts_active() && active && !member {
                // A state active from the beginning of time, seen for the first time.
                self.join(issue, None, time, &mut Vec::new(), rows);
            } else if active && !member {
                self.join(issue, Some(time), time, &mut touched, rows);
            } else if !active && member {
                self.leave(issue, &mut touched, rows);
            }
            if step && let Some(member) = self.member(issue, rows) {
                touched.extend_from_slice(&member.series);
            }
        }
        touched.sort_unstable_by(|a, b| self.key(*a).cmp(self.key(*b)));
        touched.dedup();
        for id in touched.drain(..) {
            let values = self.values(id, time);
            let key = self.key(id);
            out.push(Point {
                time_ns: stamp.next(time),
                values: Values::State(values),
                author: None,
                slice: (!key.is_empty()).then(|| key.clone()),
            });
        }
        self.touched = touched;
    }

    /// The values of one series at `time`.
    fn values(&mut self, id: SeriesId, time: i64) -> StateValues {
        let group = &mut self.groups[id as usize];
        let finite = group.minutes.finite();
        let count = group.minutes.count();
        let percentiles = self
            .percentiles
            .iter()
            .map(|p| {
                if count == 0 {
                    return 0;
                }
                let index = (i64::from(*p) * count + 99) / 100 - 1;
                if index >= finite {
                    return FOREVER_NS;
                }
                // Ages ascending = starts descending.
                let start = group
                    .starts
                    .nth((finite - 1 - index) as usize)
                    .unwrap_or(time);
                (time - start).saturating_mul(1_000_000_000)
            })
            .collect();
        let mut buckets = Fields::new();
        let mut younger_before = 0;
        for (index, limit) in self.buckets.iter().enumerate() {
            let younger = group.younger_than(index, time, *limit);
            buckets.push(younger - younger_before);
            younger_before = younger;
        }
        if !self.buckets.is_empty() {
            buckets.push(count - younger_before);
        }
        let inactive = self.quiet.is_some().then_some(group.inactive);
        StateValues {
            count,
            sum: group.minutes.at(time),
            percentiles,
            buckets,
            inactive,
        }
    }
}

#[cfg(test)]
mod tests {
    use velodrome_model::metric::MetricSpec;

    use super::super::compute::MetricEngine;
    use super::super::engine::tests::{comment, event, opened};
    use super::super::engine::{Point, Values};
    use super::*;

    const DAY: i64 = 86_400;

    /// (second, series, count, buckets, inactive) of every point.
    type Seen = (i64, Vec<String>, i64, Vec<i64>, Option<i64>);

    fn run(args: &[&str], items: &[Item]) -> Vec<Seen> {
        run_each(args, items).into_iter().flatten().collect()
    }

    /// The points of each item.
    fn run_each(args: &[&str], items: &[Item]) -> Vec<Vec<Seen>> {
        let args: Vec<String> = args.iter().map(|s| (*s).to_owned()).collect();
        let spec = MetricSpec::parse("count", &args).expect("metric parses");
        let mut engine = MetricEngine::new(&spec);
        let mut rows = super::super::issues::Rows::default();
        engine.place(&mut rows);
        let mut out: Vec<Point> = Vec::new();
        items
            .iter()
            .map(|item| {
                engine.receive(
                    item,
                    &super::super::engine::Observed::unbound(item),
                    &mut rows,
                    &mut out,
                );
                out.drain(..)
                    .map(|p| match p.values {
                        Values::State(v) => (
                            p.time_ns / 1_000_000_000,
                            p.slice.map(|s| s.to_vec()).unwrap_or_default(),
                            v.count,
                            v.buckets.to_vec(),
                            v.inactive,
                        ),
                        other => panic!("a state point, not {other:?}"),
                    })
                    .collect()
            })
            .collect()
    }

    fn sig(values: &[&str]) -> Vec<String> {
        values.iter().map(|v| (*v).to_owned()).collect()
    }

    #[test]
    fn a_relabelled_item_moves_and_an_item_in_two_sigs_counts_twice() {
        let one = (1, false, "alice");
        let two = (2, false, "bob");
        let items = [
            opened(0, 1, false, "alice"),
            event(0, 1, one, "labeled", Some("sig/node"), Some("alice")),
            opened(10, 2, false, "bob"),
            event(10, 2, two, "labeled", Some("sig/node"), Some("bob")),
            event(10, 3, two, "labeled", Some("sig/apps"), Some("bob")),
            // Issue 1 moves from node to storage while open.
            event(20, 4, one, "unlabeled", Some("sig/node"), Some("carol")),
            event(20, 5, one, "labeled", Some("sig/storage"), Some("carol")),
            event(30, 6, two, "closed", None, Some("bob")),
        ];
        let points = run(&["--state=opened", "--by-label=sig/"], &items);
        let seen: Vec<(i64, Vec<String>, i64)> = points
            .into_iter()
            .map(|(t, s, c, _, _)| (t, s, c))
            .collect();
        assert_eq!(
            seen,
            vec![
                // Opened before its label: counted as none, then moved to node.
                (0, sig(&["none"]), 1),
                (0, sig(&["node"]), 1),
                (0, sig(&["none"]), 0),
                (10, sig(&["none"]), 1),
                (10, sig(&["node"]), 2),
                (10, sig(&["none"]), 0),
                (10, sig(&["apps"]), 1),
                (10, sig(&["node"]), 2),
                // The move is two events: out of node (into none), then into storage.
                (20, sig(&["node"]), 1),
                (20, sig(&["none"]), 1),
                (20, sig(&["none"]), 0),
                (20, sig(&["storage"]), 1),
                (30, sig(&["apps"]), 0),
                (30, sig(&["node"]), 0),
            ]
        );
    }

    /// Random histories against a recount from scratch at every point: members per
    /// series, age buckets and inactivity, through closes, reopens, relabels, bots and
    /// several actions in one second.
    #[test]
    fn series_points_equal_a_recount() {
        let mut seed = 0x5eed_u64;
        let mut next = move |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % n
        };
        let people = ["alice", "bob", "carol", "k8s-ci-robot"];
        let sigs = ["sig/a", "sig/b", "sig/c"];
        let mut items = Vec::new();
        let mut time = 0;
        let mut id = 0;
        let mut opened_issues: Vec<(i64, &str)> = Vec::new();
        for _ in 0..3_000 {
            // Whole multiples of 20 s: actions fall exactly on the limits often.
            time += 20 * next(3) as i64;
            id += 1;
            if opened_issues.len() < 5 || next(8) == 0 {
                let number = opened_issues.len() as i64 + 1;
                let author = people[next(3) as usize];
                items.push(opened(time, number, false, author));
                opened_issues.push((number, author));
                continue;
            }
            let (number, author) = opened_issues[next(opened_issues.len() as u64) as usize];
            let issue = (number, false, author);
            let actor = people[next(4) as usize];
            items.push(match next(6) {
                0 => event(time, id, issue, "closed", None, Some(actor)),
                1 => event(time, id, issue, "reopened", None, Some(actor)),
                2 => event(
                    time,
                    id,
                    issue,
                    "labeled",
                    Some(sigs[next(3) as usize]),
                    Some(actor),
                ),
                3 => event(
                    time,
                    id,
                    issue,
                    "unlabeled",
                    Some(sigs[next(3) as usize]),
                    Some(actor),
                ),
                _ => comment(time, id, issue, actor, "x"),
            });
        }
        let args = [
            "--state=opened,!closed",
            "--by-label=sig/",
            "--age-buckets=100s,1000s",
            "--inactive=300s",
        ];
        let points = run_each(&args, &items);
        assert!(points.iter().flatten().count() > 1_000);
        // The recount: per issue, open since, labels, last attention, after each item.
        let mut open: std::collections::HashMap<i64, i64> = Default::default();
        let mut labels: std::collections::HashMap<i64, Vec<String>> = Default::default();
        let mut attention: std::collections::HashMap<i64, i64> = Default::default();
        for (item, written) in items.iter().zip(&points) {
            let t = item.key.time;
            let author = item.issue_user.as_str();
            let actor = item.actor.as_deref().unwrap_or("");
            match item.event.as_str() {
                "opened" => {
                    open.insert(item.issue, t);
                    attention.insert(item.issue, t);
                }
                "closed" => {
                    open.remove(&item.issue);
                }
                "reopened" => {
                    open.entry(item.issue).or_insert(t);
                }
                "labeled" | "unlabeled" => {
                    let value = item.label.as_deref().unwrap_or("")[4..].to_owned();
                    let list = labels.entry(item.issue).or_default();
                    list.retain(|l| *l != value);
                    if item.event == "labeled" {
                        list.push(value);
                    }
                }
                _ => {}
            }
            // (An engine used alone has no annotator: the robot is a person here.)
            if item.event != "opened" && actor != author {
                attention.insert(item.issue, t);
            }
            for point in written {
                assert_eq!(point.0, t);
                let sig = &point.1[0];
                let members: Vec<i64> = open
                    .keys()
                    .filter(|issue| {
                        let list = labels.get(issue).cloned().unwrap_or_default();
                        if sig == "none" {
                            list.is_empty()
                        } else {
                            list.contains(sig)
                        }
                    })
                    .copied()
                    .collect();
                let ages: Vec<i64> = members.iter().map(|i| t - open[i]).collect();
                let buckets = vec![
                    ages.iter().filter(|a| **a < 100).count() as i64,
                    ages.iter().filter(|a| (100..1000).contains(*a)).count() as i64,
                    ages.iter().filter(|a| **a >= 1000).count() as i64,
                ];
                let quiet = members.iter().filter(|i| attention[i] <= t - 300).count() as i64;
                assert_eq!(
                    (point.2, point.3.clone(), point.4),
                    (members.len() as i64, buckets, Some(quiet)),
                    "series {sig} at {t}"
                );
            }
        }
    }

    #[test]
    fn a_move_on_the_inactivity_limit_keeps_the_item_inactive() {
        let one = (1, false, "alice");
        let items = [
            opened(0, 1, false, "alice"),
            // The author relabels exactly at the limit: no attention, and the item moves
            // from none to a with its attention of second 0, inactive since this second.
            event(300, 1, one, "labeled", Some("sig/a"), Some("alice")),
            event(301, 2, one, "labeled", Some("sig/b"), Some("alice")),
        ];
        let points = run(
            &["--state=opened", "--by-label=sig/", "--inactive=300s"],
            &items,
        );
        let inactive: Vec<(i64, Vec<String>, Option<i64>)> =
            points.into_iter().map(|p| (p.0, p.1, p.4)).collect();
        assert_eq!(
            inactive,
            vec![
                (0, sig(&["none"]), Some(0)),
                (300, sig(&["a"]), Some(1)),
                (300, sig(&["none"]), Some(0)),
                (301, sig(&["a"]), Some(1)),
                (301, sig(&["b"]), Some(1)),
            ]
        );
    }

    #[test]
    fn an_item_in_three_sigs_leaves_all_three() {
        let one = (1, false, "alice");
        let mut items = vec![opened(0, 1, false, "alice")];
        for (id, sig) in [(1, "sig/a"), (2, "sig/b"), (3, "sig/c")] {
            items.push(event(1, id, one, "labeled", Some(sig), Some("alice")));
        }
        items.push(event(2, 4, one, "closed", None, Some("bob")));
        let points = run(&["--state=opened,!closed", "--by-label=sig/"], &items);
        let last: Vec<(Vec<String>, i64)> = points
            .iter()
            .filter(|p| p.0 == 2)
            .map(|p| (p.1.clone(), p.2))
            .collect();
        assert_eq!(
            last,
            vec![(sig(&["a"]), 0), (sig(&["b"]), 0), (sig(&["c"]), 0)]
        );
    }

    #[test]
    fn buckets_and_inactivity_follow_ages_and_attention() {
        let pr = (1, true, "alice");
        let items = [
            opened(0, 1, true, "alice"),
            opened(10 * DAY, 2, true, "bob"),
            // The author's own comment and a bot's are no attention; carol's is.
            comment(20 * DAY, 1, pr, "alice", "ping"),
            comment(21 * DAY, 2, (2, true, "bob"), "carol", "on it"),
            opened(40 * DAY, 3, true, "dave"),
        ];
        let points = run(
            &["--state=opened", "--age-buckets=7d,30d", "--inactive=14d"],
            &items,
        );
        let last = points.last().expect("points");
        // At day 40: ages 40 d, 30 d, 0 d -> one under 7 d, none in 7-30 d, two of 30 d
        // and more; attention: issue 1 at day 0 (40 d), issue 2 at day 21 (19 d), issue
        // 3 at day 40 (0 d) -> two inactive for 14 d.
        assert_eq!(last.0, 40 * DAY);
        assert_eq!(last.2, 3);
        assert_eq!(last.3, vec![1, 0, 2]);
        assert_eq!(last.4, Some(2));
        // carol's comment on issue 2 was a point of its own (inactivity changed).
        assert!(
            points.iter().any(|p| p.0 == 21 * DAY && p.4 == Some(1)),
            "{points:?}"
        );
    }
}
