//! Event descriptions (`merged`, `labeled:lgtm`, `responded`, ...) and `--state`
//! descriptions built from them: the vocabulary both plugins share.

use std::fmt;

use super::nearest;

/// What one event description matches (spec 3.2). The transform feeds events through these
/// and the state machine walks their [`EventMatcher::opposite`]s, so both live here.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum EventMatcher {
    /// Matches nothing (the opposite of `merged` and `commented`).
    Never,
    /// Matches everything; only reachable as the opposite of [`EventMatcher::Never`].
    Always,
    /// The synthetic `opened` event at an issue's creation.
    Opened,
    /// The synthetic `commented` event of every comment.
    Commented,
    /// GitHub's `closed`.
    Closed,
    /// GitHub's `reopened`.
    Reopened,
    /// GitHub's `merged`.
    Merged,
    /// GitHub's `labeled` with this exact label.
    Labeled(String),
    /// GitHub's `unlabeled` with this exact label.
    Unlabeled(String),
    /// Synthetic: the first comment, review comment, label or close on an item by someone
    /// who is neither its author nor a bot. Happens at most once per item.
    Responded,
    /// Synthetic: a pull request's `closed` without a `merged` in the same second.
    ClosedUnmerged,
    /// A submitted pull-request review (a row of `reviews`), in this lower-case state
    /// (`approved`, `changes_requested`, `commented`, `dismissed`) or in any state.
    Reviewed(Option<String>),
}

/// Facts about one event that its name and label cannot tell, worked out by the transform
/// from the rest of the history (the item's earlier events, the same second's events).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Marks {
    /// This is the item's first response (see [`EventMatcher::Responded`]).
    pub responded: bool,
    /// This `closed` of a pull request has no `merged` in the same second.
    pub unmerged: bool,
}

/// The states a review can be in, as `reviewed:STATE` writes them.
pub const REVIEW_STATES: [&str; 4] = ["approved", "changes_requested", "commented", "dismissed"];

/// The event names a description may use, for messages and suggestions.
const EVENT_NAMES: [&str; 10] = [
    "opened",
    "commented",
    "closed",
    "reopened",
    "merged",
    "labeled",
    "unlabeled",
    "responded",
    "closed-unmerged",
    "reviewed",
];

impl EventMatcher {
    /// Parses `name` or `name:label` (split at the first ':', so labels may hold ':').
    /// Unknown names, and `labeled`/`unlabeled` without a label, are errors (the original
    /// panicked on them, sometimes long after start-up).
    pub fn parse(text: &str) -> Result<Self, String> {
        let (name, label) = match text.split_once(':') {
            Some((name, label)) => (name, Some(label)),
            None => (text, None),
        };
        let needs_label = matches!(name, "labeled" | "unlabeled" | "reviewed");
        if !needs_label && label.is_some() && EVENT_NAMES.contains(&name) {
            return Err(format!(
                "event {text:?}: only labeled, unlabeled and reviewed take a \":\" part"
            ));
        }
        match (name, label) {
            ("opened", None) => Ok(Self::Opened),
            ("commented", None) => Ok(Self::Commented),
            ("closed", None) => Ok(Self::Closed),
            ("reopened", None) => Ok(Self::Reopened),
            ("merged", None) => Ok(Self::Merged),
            ("responded", None) => Ok(Self::Responded),
            ("closed-unmerged", None) => Ok(Self::ClosedUnmerged),
            ("reviewed", None) => Ok(Self::Reviewed(None)),
            ("reviewed", Some(state)) => {
                if REVIEW_STATES.contains(&state) {
                    return Ok(Self::Reviewed(Some(state.to_owned())));
                }
                let known = REVIEW_STATES.join(", ");
                Err(match nearest(state, REVIEW_STATES.iter().copied()) {
                    Some(near) => format!(
                        "event {text:?}: unknown review state {state:?}; did you mean \"reviewed:{near}\"?"
                    ),
                    None => format!(
                        "event {text:?}: unknown review state {state:?}; review states: {known}"
                    ),
                })
            }
            ("labeled" | "unlabeled", None) => Err(format!(
                "event {text:?} needs the label it is about, as {name}:LABEL"
            )),
            ("labeled" | "unlabeled", Some("")) => Err(format!(
                "event {text:?} has an empty label; write {name}:LABEL"
            )),
            ("labeled", Some(label)) => Ok(Self::Labeled(label.to_owned())),
            ("unlabeled", Some(label)) => Ok(Self::Unlabeled(label.to_owned())),
            ("", _) => Err("empty event name".to_owned()),
            (other, _) => {
                let mut message = format!(
                    "unknown event {other:?}; known events: {}",
                    EVENT_NAMES.join(", ")
                );
                if let Some(near) = nearest(other, EVENT_NAMES.iter().copied()) {
                    message = format!("unknown event {other:?}; did you mean {near:?}?");
                }
                Err(message)
            }
        }
    }

    /// The event that undoes this one; the state machine toggles between them (spec 3.2).
    /// A first response cannot be undone; an unmerged close is undone like a close.
    pub fn opposite(&self) -> Self {
        match self {
            Self::Never => Self::Always,
            Self::Always => Self::Never,
            Self::Opened => Self::Closed,
            Self::Commented | Self::Merged | Self::Responded | Self::Reviewed(_) => Self::Never,
            Self::Closed | Self::ClosedUnmerged => Self::Reopened,
            Self::Reopened => Self::Closed,
            Self::Labeled(label) => Self::Unlabeled(label.clone()),
            Self::Unlabeled(label) => Self::Labeled(label.clone()),
        }
    }

    /// Whether an event with this GitHub name, label (NULL read as "") and marks matches.
    pub fn matches(&self, event: &str, label: &str, marks: Marks) -> bool {
        match self {
            Self::Never => false,
            Self::Always => true,
            Self::Opened => event == "opened",
            Self::Commented => event == "commented",
            Self::Closed => event == "closed",
            Self::Reopened => event == "reopened",
            Self::Merged => event == "merged",
            Self::Labeled(want) => event == "labeled" && label == want,
            Self::Unlabeled(want) => event == "unlabeled" && label == want,
            Self::Responded => marks.responded,
            Self::ClosedUnmerged => marks.unmerged && event == "closed",
            Self::Reviewed(state) => {
                event == "reviewed" && state.as_deref().is_none_or(|want| label == want)
            }
        }
    }

    /// Whether matching needs [`Marks::responded`], which the transform computes only
    /// when some metric asks.
    pub fn needs_responses(&self) -> bool {
        matches!(self, Self::Responded)
    }
}

impl fmt::Display for EventMatcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Never => f.write_str("(never)"),
            Self::Always => f.write_str("(always)"),
            Self::Opened => f.write_str("opened"),
            Self::Commented => f.write_str("commented"),
            Self::Closed => f.write_str("closed"),
            Self::Reopened => f.write_str("reopened"),
            Self::Merged => f.write_str("merged"),
            Self::Labeled(label) => write!(f, "labeled:{label}"),
            Self::Unlabeled(label) => write!(f, "unlabeled:{label}"),
            Self::Responded => f.write_str("responded"),
            Self::ClosedUnmerged => f.write_str("closed-unmerged"),
            Self::Reviewed(None) => f.write_str("reviewed"),
            Self::Reviewed(Some(state)) => write!(f, "reviewed:{state}"),
        }
    }
}

/// One item of a `--state` description: `event` (inactive until it happens) or `!event`
/// (active from the beginning of time until it happens).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateItem {
    /// True for `!event`: the item starts active and `event` ends it.
    pub starts_active: bool,
    /// The event that flips the item first (entry for plain items, exit for `!` items).
    pub event: EventMatcher,
}

/// A parsed `--state` description: an issue is in the state when every item is active.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateSpec {
    items: Vec<StateItem>,
}

impl StateSpec {
    /// Parses `d1,d2,...` (items trimmed). Empty items and a bare `!` are refused: the
    /// original silently made such a state impossible (or permanently active).
    pub fn parse(text: &str) -> Result<Self, String> {
        if text.trim().is_empty() {
            return Err("empty state description".to_owned());
        }
        let mut items = Vec::new();
        for (index, raw) in text.split(',').enumerate() {
            let item = raw.trim();
            if item.is_empty() {
                return Err(format!(
                    "state item {} of {text:?} is empty (a stray or trailing comma?)",
                    index + 1
                ));
            }
            let (starts_active, event_text) = match item.strip_prefix('!') {
                Some(rest) => (true, rest.trim()),
                None => (false, item),
            };
            if event_text.is_empty() {
                return Err(format!("state item {item:?} needs an event after '!'"));
            }
            let event = EventMatcher::parse(event_text)?;
            items.push(StateItem {
                starts_active,
                event,
            });
        }
        Ok(Self { items })
    }

    /// The items in the order written.
    pub fn items(&self) -> &[StateItem] {
        &self.items
    }

    /// Whether the description holds this item.
    pub fn contains(&self, starts_active: bool, event: &EventMatcher) -> bool {
        self.items
            .iter()
            .any(|i| i.starts_active == starts_active && i.event == *event)
    }
}

impl fmt::Display for StateSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, item) in self.items.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            if item.starts_active {
                f.write_str("!")?;
            }
            write!(f, "{}", item.event)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_event_matches_the_original_table() {
        // TestNewEvent of spec 8.2 ("" is refused at parse time instead of meaning never).
        assert_eq!(
            EventMatcher::parse("labeled:something"),
            Ok(EventMatcher::Labeled("something".into()))
        );
        assert_eq!(
            EventMatcher::parse("unlabeled:something"),
            Ok(EventMatcher::Unlabeled("something".into()))
        );
        assert_eq!(EventMatcher::parse("merged"), Ok(EventMatcher::Merged));
        assert_eq!(EventMatcher::parse("closed"), Ok(EventMatcher::Closed));
        assert_eq!(EventMatcher::parse("reopened"), Ok(EventMatcher::Reopened));
        assert_eq!(EventMatcher::parse("opened"), Ok(EventMatcher::Opened));
        assert_eq!(
            EventMatcher::parse("commented"),
            Ok(EventMatcher::Commented)
        );
        assert_eq!(
            EventMatcher::parse("labeled:a:b"),
            Ok(EventMatcher::Labeled("a:b".into()))
        );
        assert!(EventMatcher::parse("").is_err());
    }

    #[test]
    fn opposites_follow_the_original() {
        use EventMatcher::*;
        let none = Marks::default();
        assert_eq!(Opened.opposite(), Closed);
        assert_eq!(Closed.opposite(), Reopened);
        assert_eq!(Reopened.opposite(), Closed);
        assert_eq!(Merged.opposite(), Never);
        assert_eq!(Commented.opposite(), Never);
        assert_eq!(Never.opposite(), Always);
        assert_eq!(Labeled("x".into()).opposite(), Unlabeled("x".into()));
        assert_eq!(Unlabeled("x".into()).opposite(), Labeled("x".into()));
        assert!(Labeled("x".into()).matches("labeled", "x", none));
        assert!(!Labeled("x".into()).matches("labeled", "X", none));
        assert!(!Labeled("x".into()).matches("unlabeled", "x", none));
        assert!(!Never.matches("merged", "", none));
        assert!(Always.matches("anything", "", none));
    }

    #[test]
    fn synthetic_events_match_their_marks_only() {
        use EventMatcher::*;
        let none = Marks::default();
        let first = Marks {
            responded: true,
            unmerged: false,
        };
        let unmerged = Marks {
            responded: false,
            unmerged: true,
        };
        assert_eq!(EventMatcher::parse("responded"), Ok(Responded));
        assert_eq!(EventMatcher::parse("closed-unmerged"), Ok(ClosedUnmerged));
        assert!(Responded.matches("commented", "", first));
        assert!(Responded.matches("labeled", "lgtm", first));
        assert!(!Responded.matches("commented", "", none));
        assert!(ClosedUnmerged.matches("closed", "", unmerged));
        assert!(!ClosedUnmerged.matches("closed", "", none));
        assert!(!ClosedUnmerged.matches("merged", "", unmerged));
        // A plain close still matches `closed`, merged or not.
        assert!(Closed.matches("closed", "", unmerged));
        assert_eq!(Responded.opposite(), Never);
        assert_eq!(ClosedUnmerged.opposite(), Reopened);
        assert!(Responded.needs_responses());
        assert!(!Merged.needs_responses());
        let e = EventMatcher::parse("respnded").expect_err("misspelt");
        assert!(e.contains("did you mean \"responded\""), "{e}");
        let e = EventMatcher::parse("closed-unmerge").expect_err("misspelt");
        assert!(e.contains("did you mean \"closed-unmerged\""), "{e}");
        assert!(EventMatcher::parse("responded:x").is_err());
    }

    #[test]
    fn reviews_match_by_state() {
        use EventMatcher::*;
        let none = Marks::default();
        let approved = EventMatcher::parse("reviewed:approved").expect("parses");
        assert_eq!(approved, Reviewed(Some("approved".into())));
        assert!(approved.matches("reviewed", "approved", none));
        assert!(!approved.matches("reviewed", "commented", none));
        assert!(!approved.matches("labeled", "approved", none));
        let any = EventMatcher::parse("reviewed").expect("parses");
        assert!(any.matches("reviewed", "dismissed", none));
        assert_eq!(any.to_string(), "reviewed");
        assert_eq!(approved.to_string(), "reviewed:approved");
        assert_eq!(approved.opposite(), Never);
        let e = EventMatcher::parse("reviewed:aproved").expect_err("misspelt");
        assert!(e.contains("did you mean \"reviewed:approved\""), "{e}");
        let e = EventMatcher::parse("reviewed:lgtm").expect_err("unknown");
        assert!(e.contains("review states: approved"), "{e}");
        let e = EventMatcher::parse("reviewd:approved").expect_err("misspelt name");
        assert!(e.contains("did you mean \"reviewed\""), "{e}");
    }
}
