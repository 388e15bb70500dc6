//! The stream every metric reads, and what all metric engines share.
//!
//! The reader puts a repository's issues, events and comments in one deterministic order
//! (time, then opened < event < comment, then id: see [`Key`]); [`super::annotate`] adds
//! what a row cannot tell by itself (bots, first responses); then each metric's engine, one
//! per plugin (`count`, `duration`), turns items into points:
//!
//! - `opened` is an item of its own at the issue's creation time (the original's FakeOpen,
//!   fixed: it no longer waits for the next real event);
//! - each row carries its issue's author and kind, so the filters need no per-issue memory;
//! - no two points of a metric share a timestamp: a point's time is its second in
//!   nanoseconds, moved forward by 1 ns past the previous point when needed ([`Stamp`]), so
//!   the first point of a second keeps exactly the timestamp the original wrote.

use velodrome_model::metric::{EventMatcher, ItemFilter, Marks};

use super::state::StateValues;

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
    /// A row of `reviews`: the event `reviewed`, labelled with the lower-case state.
    Review = 4,
}

impl Kind {
    /// The kind stored in a watermark.
    pub fn from_code(code: u8) -> Option<Self> {
        match code {
            0 => Some(Self::Opened),
            1 => Some(Self::Event),
            2 => Some(Self::Comment),
            3 => Some(Self::ReviewComment),
            4 => Some(Self::Review),
            _ => None,
        }
    }

    /// Rank among items of the same second: both comment kinds share one; reviews come
    /// last (a review is submitted after its review comments are written).
    pub fn class(self) -> u8 {
        match self {
            Self::Opened => 0,
            Self::Event => 1,
            Self::Comment | Self::ReviewComment => 2,
            Self::Review => 3,
        }
    }
}

/// The position of an item in the one total order; watermarks store it.
///
/// Items are ordered by time, then opened < event < comment < review, then id, then issue
/// comment before review comment of the same id (the two comment kinds have separate id
/// spaces).
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
    /// What the rest of the history says about this event (first response, unmerged close).
    pub marks: Marks,
    /// Whether the issue's author is a bot (set by the annotator).
    pub author_is_bot: bool,
    /// Whether the actor is a bot (set by the annotator).
    pub actor_is_bot: bool,
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
    /// `seconds` and `number`: how long one item took.
    Duration {
        /// The duration.
        seconds: i64,
        /// The issue or pull request number.
        number: i64,
    },
}

/// One output point of a metric (measurement and tag are added by the writer).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Point {
    /// Nanoseconds since the epoch, unique within the metric.
    pub time_ns: i64,
    /// Its fields.
    pub values: Values,
    /// The `author` string field, with `--log-author`.
    pub author: Option<Login>,
    /// The values of the metric's `--by-label` family tags, in family order.
    pub slice: Option<SliceKey>,
}

/// A login, shared between the annotator's cache and the points that name it.
pub type Login = std::sync::Arc<str>;

/// The tag values of one series of a sliced metric (`--by-label`), in family order.
pub type SliceKey = std::sync::Arc<[String]>;

/// The series an event, comment or duration point goes to: one `None` when the metric is
/// not sliced, kept inline so that case costs no allocation.
pub(crate) type PointSlices = smallvec::SmallVec<[Option<SliceKey>; 1]>;

/// Unique timestamps for the points of one metric: a point's second in nanoseconds, or
/// 1 ns after the previous point when that is later.
#[derive(Debug, Clone)]
pub(crate) struct Stamp {
    last_ns: i64,
}

impl Default for Stamp {
    fn default() -> Self {
        Self { last_ns: i64::MIN }
    }
}

impl Stamp {
    /// A unique timestamp for a point in second `time`.
    pub fn next(&mut self, time: i64) -> i64 {
        let base = time.saturating_mul(1_000_000_000);
        let ns = if self.last_ns >= base {
            self.last_ns.saturating_add(1)
        } else {
            base
        };
        self.last_ns = ns;
        ns
    }
}

/// What the computation works out about an item once, for all of its engines: which
/// descriptions of its vocabulary the item matches, and which of the logins some metric
/// ignores are its author and its actor. Engines read bits here instead of comparing the
/// same strings again, one metric after another.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Observed<'a> {
    /// GitHub event name.
    pub event: &'a str,
    /// Label of labeled/unlabeled events, state of reviews ("" otherwise).
    pub label: &'a str,
    /// The item's marks.
    pub marks: Marks,
    /// Bit i: the item matches vocabulary description i.
    pub matched: u128,
    /// Bit i: the issue's author is ignored login i.
    pub author_ignored: u64,
    /// Bit i: the actor is ignored login i.
    pub actor_ignored: u64,
    /// The actor's login, shared (none for an engine used alone: it copies the item's).
    pub actor_login: Option<&'a Login>,
}

impl<'a> Observed<'a> {
    /// What an engine used alone (not bound to a computation) sees: no bits, so every
    /// matcher and audience compares strings.
    pub fn unbound(item: &'a Item) -> Self {
        Self {
            event: &item.event,
            label: item.label.as_deref().unwrap_or(""),
            marks: item.marks,
            matched: 0,
            author_ignored: 0,
            actor_ignored: 0,
            actor_login: None,
        }
    }
}

/// The vocabulary of a computation: the distinct event descriptions of its metrics (an
/// item's [`Observed::matched`] has one bit per entry) and the distinct logins they
/// ignore (one bit each in [`Observed::author_ignored`] and
/// [`Observed::actor_ignored`]).
#[derive(Debug, Clone, Default)]
pub(crate) struct Vocabulary {
    /// Event descriptions, at most [`u128::BITS`] (the rest are matched by strings).
    pub events: Vec<EventMatcher>,
    /// Ignored logins; the first [`IGNORED_BY_BIT`] have a bit.
    pub logins: Vec<String>,
}

/// Most distinct logins ignored by bit; past that, audiences compare strings.
pub(crate) const IGNORED_BY_BIT: usize = 64;

/// An event description and, once bound to a computation, its bit there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BoundEvent {
    matcher: EventMatcher,
    bit: Option<u8>,
}

impl BoundEvent {
    /// `matcher`, unbound until [`BoundEvent::bind`]: it compares strings until then.
    pub fn new(matcher: EventMatcher) -> Self {
        Self { matcher, bit: None }
    }

    /// Takes its bit from `vocabulary` (none when the vocabulary was too large to route).
    pub fn bind(&mut self, vocabulary: &Vocabulary) {
        self.bit = vocabulary
            .events
            .iter()
            .position(|e| *e == self.matcher)
            .and_then(|bit| u8::try_from(bit).ok());
    }

    /// Whether the item matches: one bit when bound, the description's own test if not.
    pub fn matches(&self, seen: &Observed<'_>) -> bool {
        match self.bit {
            Some(bit) => seen.matched >> bit & 1 == 1,
            None => self.matcher.matches(seen.event, seen.label, seen.marks),
        }
    }

    /// The description, for the computation's vocabulary and routes.
    pub fn matcher(&self) -> &EventMatcher {
        &self.matcher
    }

    /// Its bit, once bound.
    pub fn bit(&self) -> Option<u8> {
        self.bit
    }
}

/// The items and actions a metric looks at: its [`ItemFilter`], and bots where the
/// plugin leaves them out.
#[derive(Debug, Clone)]
pub(crate) struct Audience {
    include_issues: bool,
    include_pull_requests: bool,
    ignore: Vec<String>,
    /// The bits of `ignore` in the computation's logins, once bound.
    ignore_bits: Option<u64>,
    skip_bot_items: bool,
    skip_bot_actions: bool,
}

impl Audience {
    pub fn new(filter: &ItemFilter, skip_bot_items: bool, skip_bot_actions: bool) -> Self {
        Self {
            include_issues: filter.includes_issues(),
            include_pull_requests: filter.includes_pull_requests(),
            ignore: filter.ignored_authors().to_vec(),
            ignore_bits: None,
            skip_bot_items,
            skip_bot_actions,
        }
    }

    /// The logins it ignores, for the computation's vocabulary.
    pub fn ignored(&self) -> &[String] {
        &self.ignore
    }

    /// Takes the bits of its ignored logins from `vocabulary`; when one has none (too many
    /// logins), it keeps comparing strings.
    pub fn bind(&mut self, vocabulary: &Vocabulary) {
        self.ignore_bits = self.ignore.iter().try_fold(0u64, |bits, login| {
            let bit = vocabulary.logins.iter().position(|l| l == login)?;
            (bit < IGNORED_BY_BIT).then(|| bits | 1 << bit)
        });
    }

    #[inline]
    fn ignores(&self, login: &str, bits: u64) -> bool {
        match self.ignore_bits {
            Some(mask) => bits & mask != 0,
            None => self.ignore.iter().any(|i| i == login),
        }
    }

    /// Whether the metric looks at `item` at all: TypeFilter, then AuthorFilter on the
    /// issue's author (what an ignored user opened is dropped whole, as in the original).
    /// For anything but `opened`, the actor must not be ignored either.
    #[inline]
    pub fn wants(&self, item: &Item, seen: &Observed<'_>) -> bool {
        let kind = if item.is_pr {
            self.include_pull_requests
        } else {
            self.include_issues
        };
        if !kind
            || (self.skip_bot_items && item.author_is_bot)
            || self.ignores(&item.issue_user, seen.author_ignored)
        {
            return false;
        }
        if item.key.kind == Kind::Opened {
            return true;
        }
        match &item.actor {
            Some(actor) => {
                !((self.skip_bot_actions && item.actor_is_bot)
                    || self.ignores(actor, seen.actor_ignored))
            }
            None => true,
        }
    }
}

/// Which items can change a metric's output: anything else is skipped before its engine
/// sees it, which is most items for most metrics.
#[derive(Debug, Clone, Default)]
pub(crate) struct Relevance {
    /// Events that matter (matched with their marks).
    pub events: Vec<EventMatcher>,
    /// Comments matter (the metric matches their bodies).
    pub comments: bool,
    /// Every item matters.
    pub everything: bool,
}

#[cfg(test)]
pub(crate) mod tests {
    //! Item constructors shared by the engines' tests.
    use super::*;

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
            marks: Marks::default(),
            author_is_bot: false,
            actor_is_bot: false,
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
            marks: Marks::default(),
            author_is_bot: false,
            actor_is_bot: false,
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
            marks: Marks::default(),
            author_is_bot: false,
            actor_is_bot: false,
        }
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
            key(1, Kind::Review, 1),
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
                key(1, Kind::Review, 1),
                key(2, Kind::Opened, 1),
            ]
        );
    }

    #[test]
    fn stamps_are_unique_and_keep_the_first_of_a_second() {
        let mut stamp = Stamp::default();
        let s = 1_000_000_000;
        assert_eq!(stamp.next(100), 100 * s);
        assert_eq!(stamp.next(100), 100 * s + 1);
        assert_eq!(stamp.next(101), 101 * s);
    }
}
