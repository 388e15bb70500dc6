//! The `--state` machine (spec 3.3 to 3.5) without the original's rescans.
//!
//! The original kept one state object per issue and, on every change, walked every issue to
//! count the active ones, sum their ages and sort them for each percentile: O(events x
//! issues). Here each issue keeps one byte per state item (packed with its slot in one word
//! of the computation's rows), and the active issues live in an [`ActiveSet`] that answers
//! count, sum and any percentile in O(log n):
//!
//! - An issue's age is the minimum over its items of (t - item start), that is t - S with S
//!   the latest item start. When an issue becomes active, the item that just flipped started
//!   at the current event time, so S = t, the largest start so far: starts enter the set in
//!   non-decreasing order, and a bit per insertion position (live or not) under a Fenwick
//!   tree of the live count per 64 positions gives rank queries.
//!   The one exception is a description made only of `!x` items, active "since year 1":
//!   those are counted apart with the original's saturated age (292 years).
//! - The sum of whole minutes Σ floor((t - S)/60) is kept exactly from Σ floor(S/60) and a
//!   60-slot histogram of S mod 60.
//!
//! Removed entries leave holes that are compacted once they outnumber the live ones, so the
//! memory follows the open issues, not the history.

use std::num::NonZeroU64;

use velodrome_model::metric::{EventMatcher, StateSpec};

use super::engine::{BoundEvent, Observed, Vocabulary};
use super::issues::Rows;
use super::rank::{LivePositions, MinuteSum};

/// Age of an item active since the beginning of time, in nanoseconds: Go's saturated
/// `time.Duration`, which the original wrote for such items.
pub const FOREVER_NS: i64 = i64::MAX;

/// Whole minutes of [`FOREVER_NS`], what the original added to `sum` for such items.
pub const FOREVER_MINUTES: i64 = i64::MAX / 60_000_000_000;

/// The matchers a description can reach, interned, with each one's opposite.
#[derive(Debug, Clone)]
struct Matchers {
    list: Vec<EventMatcher>,
    opposite: Vec<u8>,
    /// Every matcher's bit, when all of them have one.
    mask: Option<u128>,
    /// Per matcher, its bit (or [`UNBOUND`]) and its opposite side by side: what a flip
    /// reads, in one load.
    steps: Vec<(u8, u8)>,
}

/// The bit of a matcher with none: it compares strings.
const UNBOUND: u8 = u8::MAX;

impl Matchers {
    fn intern(&mut self, matcher: &EventMatcher) -> u8 {
        if let Some(i) = self.list.iter().position(|m| m == matcher) {
            return i as u8;
        }
        self.list.push(matcher.clone());
        self.opposite.push(u8::MAX);
        (self.list.len() - 1) as u8
    }

    /// Interns `matcher` and the chain of its opposites (at most a handful: x, opp(x),
    /// opp(opp(x)) cycles with period 2 after the first step).
    fn close(&mut self, matcher: &EventMatcher) -> u8 {
        let first = self.intern(matcher);
        let mut current = first;
        loop {
            if self.opposite[current as usize] != u8::MAX {
                break;
            }
            let opposite = self.list[current as usize].opposite();
            let next = self.intern(&opposite);
            self.opposite[current as usize] = next;
            current = next;
        }
        first
    }
}

impl Matchers {
    /// Sets each matcher's step: its bit in `vocabulary` ([`UNBOUND`] without one, or
    /// without a vocabulary) beside its opposite; and the mask when every bit is known.
    fn bind(&mut self, vocabulary: Option<&Vocabulary>) {
        self.steps = self
            .list
            .iter()
            .zip(&self.opposite)
            .map(|(matcher, opposite)| {
                let bit = vocabulary.and_then(|vocabulary| {
                    let mut bound = BoundEvent::new(matcher.clone());
                    bound.bind(vocabulary);
                    bound.bit()
                });
                (bit.unwrap_or(UNBOUND), *opposite)
            })
            .collect();
        self.mask = self.steps.iter().try_fold(0u128, |mask, (bit, _)| {
            (*bit != UNBOUND).then(|| mask | 1 << bit)
        });
    }

    /// Whether some matcher matches.
    fn any(&self, seen: &Observed<'_>) -> bool {
        match self.mask {
            Some(mask) => seen.matched & mask != 0,
            None => self
                .list
                .iter()
                .any(|m| m.matches(seen.event, seen.label, seen.marks)),
        }
    }
}

/// Flips every item of `codes` whose event matches; returns whether one flipped and
/// whether all are active now.
fn toggle(matchers: &Matchers, codes: &mut [Code], seen: &Observed<'_>) -> (bool, bool) {
    let mut changed = false;
    let mut active = true;
    for c in codes {
        let matcher = usize::from(*c >> 1);
        let Some(&(bit, opposite)) = matchers.steps.get(matcher) else {
            continue;
        };
        let hit = if bit == UNBOUND {
            matchers.list[matcher].matches(seen.event, seen.label, seen.marks)
        } else {
            seen.matched >> bit & 1 == 1
        };
        if hit {
            *c = code(opposite, *c & 1 == 0);
            changed = true;
        }
        active &= *c & 1 == 1;
    }
    (changed, active)
}

/// One state item's condition, packed in a byte: matcher id << 1 | active.
type Code = u8;

fn code(matcher: u8, active: bool) -> Code {
    (matcher << 1) | u8::from(active)
}

/// Descriptions of at most this many items keep their codes inside the issue's entry
/// (all of the bundled ones do); longer ones keep a row in the tracker's `long` table.
const INLINE_ITEMS: usize = 4;

/// One issue's state in eight bytes: its items' codes (inline, or the index of its row
/// in the tracker's table of long descriptions) and its [`Slot`]. Every state metric keeps
/// one entry per issue and looks one up per relevant item; at eight bytes the entries of
/// the busy issues of all of them stay in cache, where 32-byte entries missed it on
/// most lookups, the largest cost of the transform.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct IssueState(NonZeroU64);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Slot {
    Inactive,
    Forever,
    At(u32),
}

impl Slot {
    /// Never 0, so that an entry is never 0 and `Option<IssueState>` is eight bytes too.
    fn code(self) -> u32 {
        match self {
            Self::Inactive => 1,
            Self::Forever => 2,
            Self::At(position) => position.saturating_add(3),
        }
    }

    fn from_code(code: u32) -> Self {
        match code {
            0 | 1 => Self::Inactive,
            2 => Self::Forever,
            position => Self::At(position - 3),
        }
    }
}

impl IssueState {
    fn new(codes: u32, slot: Slot) -> Self {
        let packed = (u64::from(slot.code()) << 32) | u64::from(codes);
        Self(NonZeroU64::new(packed).unwrap_or(NonZeroU64::MIN))
    }

    fn codes(self) -> u32 {
        self.0.get() as u32
    }

    fn slot(self) -> Slot {
        Slot::from_code((self.0.get() >> 32) as u32)
    }

    fn with_codes(self, codes: u32) -> Self {
        Self::new(codes, self.slot())
    }

    fn with_slot(self, slot: Slot) -> Self {
        Self::new(self.codes(), slot)
    }
}

/// Inline codes as the low bytes of a word.
fn pack(codes: &[Code]) -> u32 {
    let mut bytes = [0u8; INLINE_ITEMS];
    bytes[..codes.len()].copy_from_slice(codes);
    u32::from_le_bytes(bytes)
}

fn all_active(codes: &[Code]) -> bool {
    codes.iter().all(|c| c & 1 == 1)
}

/// A list of integer fields kept inline: most metrics ask for one to four percentiles or
/// buckets, and a state point is written for most items, so a heap list cost two
/// allocations per point.
pub type Fields = smallvec::SmallVec<[i64; 5]>;

/// What a state change reports: the fields of the point (spec 3.5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateValues {
    /// Issues in the state after the event.
    pub count: i64,
    /// Their total age in whole minutes.
    pub sum: i64,
    /// One value per requested percentile, in nanoseconds, in the requested order.
    pub percentiles: Fields,
    /// Issues per `--age-buckets` bucket, youngest first (empty without the flag).
    pub buckets: Fields,
    /// Issues without attention for `--inactive` (`None` without the flag).
    pub inactive: Option<i64>,
}

/// Per-issue states of one description for one repository, plus their active set.
#[derive(Debug, Clone)]
pub struct StateTracker {
    matchers: Matchers,
    initial: Box<[Code]>,
    starts_active: bool,
    /// Its column in the computation's [`Rows`]: one [`IssueState`] per issue.
    column: usize,
    /// Issues seen (memory accounting).
    known: usize,
    /// Codes of descriptions longer than [`INLINE_ITEMS`], one row of `initial.len()`
    /// per issue.
    long: Vec<Code>,
    active: ActiveSet,
    percentiles: Vec<u8>,
    /// The members the percentiles read, as of [`ActiveSet::version`] `ranks_of`.
    ranks: Vec<Rank>,
    ranks_of: Option<u64>,
}

impl StateTracker {
    /// A tracker for `spec`, reporting the given percentiles (1..=100, checked by the
    /// metric grammar).
    pub fn new(spec: &StateSpec, percentiles: &[u8]) -> Self {
        let mut matchers = Matchers {
            list: Vec::new(),
            opposite: Vec::new(),
            mask: None,
            steps: Vec::new(),
        };
        let initial: Box<[Code]> = spec
            .items()
            .iter()
            .map(|item| code(matchers.close(&item.event), item.starts_active))
            .collect();
        matchers.bind(None);
        let starts_active = initial.iter().all(|c| c & 1 == 1);
        Self {
            matchers,
            initial,
            starts_active,
            column: 0,
            known: 0,
            long: Vec::new(),
            active: ActiveSet::default(),
            percentiles: percentiles.to_vec(),
            ranks: Vec::new(),
            ranks_of: None,
        }
    }

    /// Feeds one event of `issue` at `time` (seconds); returns the new values when the
    /// issue's state changed (even if its overall activity did not), as the original did.
    pub(crate) fn receive(
        &mut self,
        issue: i64,
        seen: &Observed<'_>,
        time: i64,
        rows: &mut Rows,
    ) -> Option<StateValues> {
        if !self.concerns(seen) {
            return None;
        }
        let mut state = match self.state(issue, rows) {
            Some(state) => state,
            None => {
                let slot = if self.starts_active {
                    self.active.insert_forever();
                    Slot::Forever
                } else {
                    Slot::Inactive
                };
                self.create(issue, slot, rows)
            }
        };
        let (changed, active) = self.apply(&mut state, seen);
        if !changed {
            return None;
        }
        match (state.slot(), active) {
            (Slot::Inactive, true) => {
                let position = self.active.insert(time, issue);
                state = state.with_slot(Slot::At(position));
            }
            (Slot::At(position), false) => {
                self.active.remove(position);
                state = state.with_slot(Slot::Inactive);
            }
            (Slot::Forever, false) => {
                self.active.remove_forever();
                state = state.with_slot(Slot::Inactive);
            }
            _ => {}
        }
        rows.set(issue, self.column, state.0.get());
        if self.active.needs_compaction() {
            let moves = self.active.compact();
            for (owner, position) in moves {
                if let Some(state) = self.state(owner, rows) {
                    rows.set(
                        owner,
                        self.column,
                        state.with_slot(Slot::At(position)).0.get(),
                    );
                }
            }
        }
        Some(self.values(time))
    }

    /// Feeds one event to the per-issue machine only, for a caller that counts active
    /// issues its own way ([`super::series`]); true when one of the issue's items flipped.
    /// An issue seen for the first time is created (active at once when the description
    /// starts active), as in [`StateTracker::receive`].
    pub(crate) fn step(&mut self, issue: i64, seen: &Observed<'_>, rows: &mut Rows) -> bool {
        if !self.concerns(seen) {
            return false;
        }
        let mut state = match self.state(issue, rows) {
            Some(state) => state,
            None => self.create(issue, Slot::Inactive, rows),
        };
        let (changed, _) = self.apply(&mut state, seen);
        if changed {
            rows.set(issue, self.column, state.0.get());
        }
        changed
    }

    /// The entry of `issue`, if it has been seen.
    fn state(&self, issue: i64, rows: &Rows) -> Option<IssueState> {
        NonZeroU64::new(rows.get(issue, self.column)).map(IssueState)
    }

    /// Takes its column of `rows`.
    pub(crate) fn place(&mut self, rows: &mut Rows) {
        self.column = rows.reserve(1);
    }

    /// The entry of an issue seen for the first time, in `slot`.
    fn create(&mut self, issue: i64, slot: Slot, rows: &mut Rows) -> IssueState {
        let codes = if self.initial.len() <= INLINE_ITEMS {
            pack(&self.initial)
        } else {
            let row = self.long.len() / self.initial.len();
            self.long.extend_from_slice(&self.initial);
            row as u32
        };
        let state = IssueState::new(codes, slot);
        rows.set(issue, self.column, state.0.get());
        self.known += 1;
        state
    }

    /// Flips the items of `state` that `seen` matches; returns whether one flipped and
    /// whether all are active now.
    fn apply(&mut self, state: &mut IssueState, seen: &Observed<'_>) -> (bool, bool) {
        let n = self.initial.len();
        if n <= INLINE_ITEMS {
            let mut bytes = state.codes().to_le_bytes();
            let (changed, active) = toggle(&self.matchers, &mut bytes[..n], seen);
            if changed {
                *state = state.with_codes(u32::from_le_bytes(bytes));
            }
            (changed, active)
        } else {
            let row = state.codes() as usize * n;
            let codes = &mut self.long[row..row + n];
            toggle(&self.matchers, codes, seen)
        }
    }

    /// Whether every item of an issue is active.
    fn all_active(&self, state: IssueState) -> bool {
        let n = self.initial.len();
        if n <= INLINE_ITEMS {
            all_active(&state.codes().to_le_bytes()[..n])
        } else {
            let row = state.codes() as usize * n;
            all_active(&self.long[row..row + n])
        }
    }

    /// The codes of an issue's items.
    fn codes(&self, state: IssueState) -> Vec<Code> {
        let n = self.initial.len();
        if n <= INLINE_ITEMS {
            state.codes().to_le_bytes()[..n].to_vec()
        } else {
            let row = state.codes() as usize * n;
            self.long[row..row + n].to_vec()
        }
    }

    /// Whether an event can change anything: one an item matches, or any event at all for
    /// a state that starts active (it is created at the issue's first event, and counted
    /// from then on). The rest is skipped before the map lookup.
    fn concerns(&self, seen: &Observed<'_>) -> bool {
        self.starts_active || self.matchers.any(seen)
    }

    /// Takes the bits of its matchers from the computation's vocabulary.
    pub(crate) fn bind(&mut self, vocabulary: &Vocabulary) {
        self.matchers.bind(Some(vocabulary));
    }

    /// Whether the description is active before any event (made only of `!x` items).
    pub fn starts_active(&self) -> bool {
        self.starts_active
    }

    /// Whether the machine has seen `issue`.
    pub(crate) fn is_known(&self, issue: i64, rows: &Rows) -> bool {
        self.state(issue, rows).is_some()
    }

    /// Count, sum and percentiles of the issues active at `time`.
    pub fn values(&mut self, time: i64) -> StateValues {
        // A change of an item that leaves the issue's activity as it was leaves the set
        // as it was: its percentiles are the same issues, only older.
        if self.ranks_of != Some(self.active.version) {
            self.ranks.clear();
            for p in &self.percentiles {
                self.ranks.push(self.active.rank(*p));
            }
            self.ranks_of = Some(self.active.version);
        }
        StateValues {
            count: self.active.count(),
            sum: self.active.sum_minutes(time),
            percentiles: self.ranks.iter().map(|rank| rank.age_ns(time)).collect(),
            buckets: Fields::new(),
            inactive: None,
        }
    }

    /// Whether `issue`'s state is active (every item active).
    pub(crate) fn is_active(&self, issue: i64, rows: &Rows) -> bool {
        self.state(issue, rows).is_some_and(|s| self.all_active(s))
    }

    #[cfg_attr(not(test), allow(dead_code))]
    /// The items of `issue` as (active, matcher) pairs, for tests and debugging.
    pub(crate) fn items(&self, issue: i64, rows: &Rows) -> Option<Vec<(bool, EventMatcher)>> {
        self.state(issue, rows).map(|s| {
            self.codes(s)
                .iter()
                .map(|c| (c & 1 == 1, self.matchers.list[(c >> 1) as usize].clone()))
                .collect()
        })
    }

    /// Every event description that can change a state (the items' events and the
    /// chains of their opposites), or `None` when every item of the stream matters (a
    /// state active from the start is created at an issue's first item, whatever it is).
    pub fn listens_to(&self) -> Option<&[EventMatcher]> {
        (!self.starts_active && !self.matchers.list.contains(&EventMatcher::Always))
            .then_some(self.matchers.list.as_slice())
    }

    /// Every event description an item of the state can wait for.
    pub fn descriptions(&self) -> &[EventMatcher] {
        &self.matchers.list
    }

    /// Issues with a state (memory accounting for benchmarks).
    pub fn tracked_issues(&self) -> usize {
        self.known
    }
}

/// Start times (seconds) of the active issues: count, sum of whole minutes and percentiles
/// of ages without a scan. Starts must be inserted in non-decreasing order.
#[derive(Debug, Clone, Default)]
pub struct ActiveSet {
    starts: Vec<i64>,
    owners: Vec<i64>,
    live: LivePositions,
    minutes: MinuteSum,
    /// Changes with every insert and removal, so answers about the members can be kept.
    version: u64,
}

/// The member a percentile reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Rank {
    /// No member: the percentile is 0.
    Empty,
    /// A member active since the beginning of time.
    Forever,
    /// A member active since this second.
    Start(i64),
}

impl Rank {
    /// The percentile at `time`, in nanoseconds.
    fn age_ns(self, time: i64) -> i64 {
        match self {
            Self::Empty => 0,
            Self::Forever => FOREVER_NS,
            Self::Start(start) => (time - start).saturating_mul(1_000_000_000),
        }
    }
}

impl ActiveSet {
    /// Adds an issue active since `start`; returns its position for [`ActiveSet::remove`].
    pub fn insert(&mut self, start: i64, owner: i64) -> u32 {
        self.version += 1;
        debug_assert!(self.starts.last().is_none_or(|last| *last <= start));
        let position = self.starts.len();
        self.starts.push(start);
        self.owners.push(owner);
        self.live.push_live();
        self.minutes.add(Some(start));
        position as u32
    }

    /// Adds an issue active since the beginning of time.
    pub fn insert_forever(&mut self) {
        self.version += 1;
        self.minutes.add(None);
    }

    /// Removes the issue at `position`.
    pub fn remove(&mut self, position: u32) {
        let i = position as usize;
        if !self.live.kill(i) {
            return;
        }
        self.version += 1;
        let start = self.starts[i];
        self.minutes.remove(Some(start));
    }

    /// Removes one issue active since the beginning of time.
    pub fn remove_forever(&mut self) {
        self.version += 1;
        self.minutes.remove(None);
    }

    /// Number of active issues.
    pub fn count(&self) -> i64 {
        self.minutes.count()
    }

    /// Σ floor((t - S) / 1 minute) over active issues, exactly as the original's loop.
    pub fn sum_minutes(&self, time: i64) -> i64 {
        self.minutes.at(time)
    }

    /// Nearest-rank percentile of the ages at `time`, in nanoseconds (0 when empty).
    #[cfg(test)]
    pub fn percentile_ns(&self, time: i64, p: u8) -> i64 {
        self.rank(p).age_ns(time)
    }

    /// Which member the nearest-rank percentile `p` of the ages is, whatever the time.
    fn rank(&self, p: u8) -> Rank {
        let n = self.count();
        if n == 0 {
            return Rank::Empty;
        }
        let index = (i64::from(p) * n + 99) / 100 - 1;
        if index >= self.minutes.finite() {
            return Rank::Forever;
        }
        // Ages ascending = starts descending: the (index+1)-th largest start.
        let rank = self.minutes.finite() - index;
        Rank::Start(self.starts[self.live.kth(rank as usize)])
    }

    fn needs_compaction(&self) -> bool {
        self.starts.len() >= 1024 && (self.minutes.finite() as usize) * 2 < self.starts.len()
    }

    /// Drops the holes; returns (owner, new position) of every live entry.
    fn compact(&mut self) -> Vec<(i64, u32)> {
        self.version += 1;
        let mut moves = Vec::with_capacity(self.minutes.finite() as usize);
        let mut starts = Vec::with_capacity(self.minutes.finite() as usize * 2);
        let mut owners = Vec::with_capacity(self.minutes.finite() as usize * 2);
        for i in 0..self.starts.len() {
            if self.live.is_live(i) {
                moves.push((self.owners[i], starts.len() as u32));
                starts.push(self.starts[i]);
                owners.push(self.owners[i]);
            }
        }
        self.live = LivePositions::ones(starts.len());
        self.starts = starts;
        self.owners = owners;
        moves
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use velodrome_model::metric::Marks;

    /// An event as an engine used alone sees it.
    fn seen<'a>(event: &'a str, label: &'a str) -> Observed<'a> {
        Observed {
            event,
            label,
            marks: Marks::default(),
            matched: 0,
            author_ignored: 0,
            actor_ignored: 0,
            actor_login: None,
        }
    }

    /// A tracker with rows of its own, as a computation of one metric would give it.
    struct Alone {
        tracker: StateTracker,
        rows: Rows,
    }

    impl Alone {
        fn receive(&mut self, issue: i64, seen: &Observed<'_>, time: i64) -> Option<StateValues> {
            self.tracker.receive(issue, seen, time, &mut self.rows)
        }

        fn is_active(&self, issue: i64) -> bool {
            self.tracker.is_active(issue, &self.rows)
        }

        fn items(&self, issue: i64) -> Option<Vec<(bool, EventMatcher)>> {
            self.tracker.items(issue, &self.rows)
        }

        fn values(&mut self, time: i64) -> StateValues {
            self.tracker.values(time)
        }
    }

    fn tracker(description: &str, percentiles: &[u8]) -> Alone {
        let mut tracker = StateTracker::new(
            &StateSpec::parse(description).expect("state parses"),
            percentiles,
        );
        let mut rows = Rows::default();
        rows.reserve(2);
        // A column other than the first, as in a computation of several metrics.
        tracker.column = 1;
        Alone { tracker, rows }
    }

    const T0: i64 = 0;

    // Spec 8.2, states tests. The original measured ages in nanoseconds from N(...); the
    // tables hold whole seconds, so the same cases run in seconds.

    #[test]
    fn active_item_leaves_on_its_exit_event() {
        // ActiveState{start 0, exit labeled:test}: active, age(10) = 10; labeled test ->
        // Inactive{entry unlabeled:test}, changed; labeled non-matching -> unchanged.
        let mut t = tracker("!labeled:test", &[100]);
        assert_eq!(t.receive(1, &seen("labeled", "non-matching"), 10), None);
        assert!(t.is_active(1));
        assert_eq!(
            t.items(1),
            Some(vec![(true, EventMatcher::Labeled("test".into()))])
        );
        let values = t.receive(1, &seen("labeled", "test"), 10).expect("changed");
        assert_eq!(values.count, 0);
        assert_eq!(
            t.items(1),
            Some(vec![(false, EventMatcher::Unlabeled("test".into()))])
        );
    }

    #[test]
    fn inactive_item_enters_on_its_entry_event() {
        let mut t = tracker("labeled:test", &[100]);
        assert_eq!(t.receive(1, &seen("labeled", "non-matching"), 5), None);
        assert!(!t.is_active(1));
        let values = t.receive(1, &seen("labeled", "test"), 10).expect("changed");
        assert_eq!(
            t.items(1),
            Some(vec![(true, EventMatcher::Unlabeled("test".into()))])
        );
        assert_eq!(values.count, 1);
        // Age(N(20)) of an item started at 10 is 10.
        assert_eq!(t.values(20).percentiles.as_slice(), [10_000_000_000]);
    }

    #[test]
    fn multi_state_age_is_the_minimum() {
        // [Active{exit merged, start 10}, Active{exit closed, start 20}]: age(30) = 10.
        let mut t = tracker("reopened,labeled:x", &[100]);
        t.receive(1, &seen("reopened", ""), 10);
        let values = t.receive(1, &seen("labeled", "x"), 20).expect("changed");
        assert_eq!(values.count, 1);
        assert_eq!(t.values(30).percentiles.as_slice(), [10_000_000_000]);
        // [Active, Inactive] is not active.
        let mut t = tracker("reopened,closed", &[]);
        t.receive(1, &seen("reopened", ""), 10);
        assert!(!t.is_active(1));
    }

    #[test]
    fn merged_not_closed_sequence() {
        use EventMatcher::*;
        let mut t = tracker("merged,!closed", &[]);
        // The state is created lazily by the first event of the issue.
        assert_eq!(t.receive(1, &seen("labeled", "x"), T0), None);
        assert_eq!(t.items(1), Some(vec![(false, Merged), (true, Closed)]));
        assert!(t.receive(1, &seen("closed", ""), 10).is_some());
        assert_eq!(t.items(1), Some(vec![(false, Merged), (false, Reopened)]));
        assert!(t.receive(1, &seen("merged", ""), 20).is_some());
        assert_eq!(t.items(1), Some(vec![(true, Never), (false, Reopened)]));
        let values = t.receive(1, &seen("reopened", ""), 30).expect("changed");
        assert_eq!(t.items(1), Some(vec![(true, Never), (true, Closed)]));
        assert_eq!(values.count, 1);
        assert!(t.is_active(1));
    }

    #[test]
    fn new_state_shapes() {
        use EventMatcher::*;
        let mut t = tracker("merged", &[]);
        t.receive(1, &seen("x", ""), 0);
        assert_eq!(t.items(1), Some(vec![(false, Merged)]));
        let mut t = tracker("merged,!closed", &[]);
        t.receive(1, &seen("x", ""), 0);
        assert_eq!(t.items(1), Some(vec![(false, Merged), (true, Closed)]));
    }

    #[test]
    fn long_descriptions_live_on_the_heap() {
        let description: Vec<String> = (1..=13).map(|i| format!("labeled:a{i}")).collect();
        let mut t = tracker(&description.join(","), &[]);
        for i in 1..=12 {
            assert_eq!(
                t.receive(7, &seen("labeled", &format!("a{i}")), i)
                    .map(|v| v.count),
                Some(0)
            );
        }
        assert_eq!(
            t.receive(7, &seen("labeled", "a13"), 13).map(|v| v.count),
            Some(1)
        );
        assert!(t.is_active(7));
        assert_eq!(t.items(7).map(|items| items.len()), Some(13));
    }

    #[test]
    fn bundle_totals_and_percentiles() {
        // TestBundle: 50 issues merged at T(60 i); at T(3000): (50, 1275), p50 = 25 min.
        let mut t = tracker("merged", &[50]);
        assert_eq!(
            t.values(10),
            StateValues {
                count: 0,
                sum: 0,
                percentiles: Fields::from_slice(&[0]),
                buckets: Fields::new(),
                inactive: None,
            }
        );
        for i in 0..50 {
            assert!(t.receive(i, &seen("merged", ""), 60 * i).is_some(), "{i}");
        }
        let values = t.values(3000);
        assert_eq!((values.count, values.sum), (50, 1275));
        assert_eq!(values.percentiles.as_slice(), [25 * 60 * 1_000_000_000]);
    }

    #[test]
    fn state_plugin_points() {
        // TestStatePlugin: --state=merged --percentiles=50,100.
        let mut t = tracker("merged", &[50, 100]);
        assert_eq!(t.receive(1, &seen("opened", ""), 600), None);
        assert_eq!(
            t.receive(1, &seen("merged", ""), 1200),
            Some(StateValues {
                count: 1,
                sum: 0,
                percentiles: Fields::from_slice(&[0, 0]),
                buckets: Fields::new(),
                inactive: None,
            })
        );
        assert_eq!(t.receive(1, &seen("merged", ""), 1800), None);
        assert_eq!(
            t.receive(2, &seen("merged", ""), 2400),
            Some(StateValues {
                count: 2,
                sum: 20,
                percentiles: Fields::from_slice(&[0, 1_200_000_000_000]),
                buckets: Fields::new(),
                inactive: None,
            })
        );
    }

    #[test]
    fn forever_items_saturate_like_go() {
        let mut t = tracker("!merged", &[50]);
        assert_eq!(t.receive(1, &seen("opened", ""), 100), None);
        let values = t.values(200);
        assert_eq!(values.count, 1);
        assert_eq!(values.sum, 153_722_867);
        assert_eq!(values.percentiles.as_slice(), [FOREVER_NS]);
        assert_eq!(
            t.receive(1, &seen("merged", ""), 300).map(|v| v.count),
            Some(0)
        );
    }

    /// The fast set against the original's definition, on random histories, including
    /// compactions.
    #[test]
    fn active_set_matches_a_naive_scan() {
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let mut set = ActiveSet::default();
        // (owner, start) of the live entries, and each owner's position in the set.
        let mut naive: Vec<(i64, i64)> = Vec::new();
        let mut positions: std::collections::HashMap<i64, u32> = std::collections::HashMap::new();
        let mut time = 1_500_000_000i64;
        for step in 0..20_000i64 {
            time += (next() % 90) as i64;
            if naive.is_empty() || next() % 3 != 0 {
                positions.insert(step, set.insert(time, step));
                naive.push((step, time));
            } else {
                let i = (next() as usize) % naive.len();
                let (owner, _) = naive.swap_remove(i);
                let position = positions.remove(&owner).expect("live owner");
                set.remove(position);
            }
            if set.needs_compaction() {
                for (owner, position) in set.compact() {
                    positions.insert(owner, position);
                }
            }
            if step % 97 == 0 {
                let mut ages: Vec<i64> = naive.iter().map(|(_, s)| time - s).collect();
                ages.sort_unstable();
                let sum: i64 = ages.iter().map(|a| a / 60).sum();
                assert_eq!(set.count(), ages.len() as i64);
                assert_eq!(set.sum_minutes(time), sum);
                for p in [1u8, 25, 50, 90, 100] {
                    let want = if ages.is_empty() {
                        0
                    } else {
                        ages[(usize::from(p) * ages.len()).div_ceil(100) - 1] * 1_000_000_000
                    };
                    assert_eq!(set.percentile_ns(time, p), want, "p{p} step {step}");
                }
            }
        }
    }
}
