//! The metric grammar: a metric's plugin and arguments, parsed once into a spec the
//! transform can run. OWNED BY THE TRANSFORM WORK (issue 5); this is the agreed interface.
//!
//! The only plugin is `count`, with the flags of the original Go transform
//! (spec/original-transform.md, sections 3.5 to 3.8):
//!
//! | flag | value | meaning |
//! |---|---|---|
//! | `--event=E` | one event description | `{event: 1}` per matching event |
//! | `--comments=R1,R2` | regexes, repeatable | `{comment: 1}` per comment and matching regex |
//! | `--state=D1,D2` | state description | `{count, sum, "<p>%"}` on each state change |
//! | `--percentiles=50,90` | integers 1..=100, repeatable | percentile fields of the state |
//! | `--no-issues`, `--no-pull-requests` | optional `=true/false` | skip issues or pull requests |
//! | `--ignore-authors=a,b` | logins, repeatable | drop what these users did or opened |
//! | `--log-author` | optional `=true/false` | string field `author` on event/comment points |
//!
//! Values come as `--flag=value` or as the next argument (`--flag value`), as pflag allowed.
//! Everything that the original only discovered at run time (or never) is refused here, so
//! `velogen validate` and the runtime reject the same configs, before anything runs.
//!
//! # How `--comments` splits
//!
//! The original split the value like a CSV line, so `a{1,3}` became two broken regexes. Here
//! a comma separates two regexes only when it is *outside* any `(...)`, `[...]` and `{...}`
//! and not escaped with a backslash. Every regex of the legacy configs (which contain no
//! comma) splits exactly as before; `a{1,3}`, `[,;]` and `(a,b)` stay whole. A literal
//! comma at the top level is written `\,` or `[,]`. Empty items are refused (write `(?:)`
//! or `.*` to match every comment).

use std::fmt;

use regex::Regex;
use thiserror::Error;

/// Why a metric definition was refused. `arg` is the index of the offending argument in the
/// list as written (so velogen can point at its line), or `None` when the problem is the
/// plugin or the combination of arguments.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{message}")]
pub struct MetricError {
    /// Index into the argument list, when one argument is at fault.
    pub arg: Option<usize>,
    /// What is wrong, for the person editing the config.
    pub message: String,
}

impl MetricError {
    fn at(arg: usize, message: impl Into<String>) -> Self {
        Self {
            arg: Some(arg),
            message: message.into(),
        }
    }

    fn whole(message: impl Into<String>) -> Self {
        Self {
            arg: None,
            message: message.into(),
        }
    }
}

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
}

/// The event names a description may use, for messages and suggestions.
const EVENT_NAMES: [&str; 7] = [
    "opened",
    "commented",
    "closed",
    "reopened",
    "merged",
    "labeled",
    "unlabeled",
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
        let needs_label = matches!(name, "labeled" | "unlabeled");
        if !needs_label && label.is_some() && EVENT_NAMES.contains(&name) {
            return Err(format!(
                "event {text:?}: only labeled and unlabeled take a \":label\" part"
            ));
        }
        match (name, label) {
            ("opened", None) => Ok(Self::Opened),
            ("commented", None) => Ok(Self::Commented),
            ("closed", None) => Ok(Self::Closed),
            ("reopened", None) => Ok(Self::Reopened),
            ("merged", None) => Ok(Self::Merged),
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
    pub fn opposite(&self) -> Self {
        match self {
            Self::Never => Self::Always,
            Self::Always => Self::Never,
            Self::Opened => Self::Closed,
            Self::Commented | Self::Merged => Self::Never,
            Self::Closed => Self::Reopened,
            Self::Reopened => Self::Closed,
            Self::Labeled(label) => Self::Unlabeled(label.clone()),
            Self::Unlabeled(label) => Self::Labeled(label.clone()),
        }
    }

    /// Whether an event with this GitHub name and label (NULL read as "") matches.
    pub fn matches(&self, event: &str, label: &str) -> bool {
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
        }
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

/// A field a metric writes, so dashboards and the transform agree on names and types.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Field {
    /// Integer `event` = 1 per matching event.
    Event,
    /// Integer `comment` = 1 per comment and matching regex.
    Comment,
    /// Integer `count`: issues in the state.
    Count,
    /// Integer `sum`: total age of the issues in the state, in whole minutes.
    Sum,
    /// Integer `"<p>%"`: the p-th percentile of the ages, in nanoseconds.
    Percentile(u8),
    /// String `author`: who did it (with `--log-author`).
    Author,
}

impl Field {
    /// The InfluxDB field name, as existing dashboards query it.
    pub fn name(&self) -> String {
        match self {
            Self::Event => "event".to_owned(),
            Self::Comment => "comment".to_owned(),
            Self::Count => "count".to_owned(),
            Self::Sum => "sum".to_owned(),
            Self::Percentile(p) => format!("{p}%"),
            Self::Author => "author".to_owned(),
        }
    }
}

/// A metric definition that parsed: one the transform can run.
#[derive(Debug, Clone)]
pub struct MetricSpec {
    event: Option<EventMatcher>,
    comments: Vec<Regex>,
    state: Option<StateSpec>,
    percentiles: Vec<u8>,
    no_issues: bool,
    no_pull_requests: bool,
    ignore_authors: Vec<String>,
    log_author: bool,
}

impl PartialEq for MetricSpec {
    fn eq(&self, other: &Self) -> bool {
        self.canonical() == other.canonical()
    }
}

/// The flags of `count`, with whether each takes a value.
const FLAGS: [(&str, bool); 8] = [
    ("event", true),
    ("comments", true),
    ("state", true),
    ("percentiles", true),
    ("no-issues", false),
    ("no-pull-requests", false),
    ("ignore-authors", true),
    ("log-author", false),
];

impl MetricSpec {
    /// Parses a plugin name and its arguments.
    pub fn parse(plugin: &str, args: &[String]) -> Result<Self, MetricError> {
        if plugin != "count" {
            let mut message = format!("unknown plugin {plugin:?}; the only plugin is \"count\"");
            if nearest(plugin, ["count"].into_iter()).is_some() {
                message.push_str(" (did you mean \"count\"?)");
            }
            return Err(MetricError::whole(message));
        }
        let mut spec = Self {
            event: None,
            comments: Vec::new(),
            state: None,
            percentiles: Vec::new(),
            no_issues: false,
            no_pull_requests: false,
            ignore_authors: Vec::new(),
            log_author: false,
        };
        let mut event_at = None;
        let mut state_at = None;
        let mut percentiles_at = None;
        let mut no_issues_at = None;
        let mut no_pull_requests_at = None;
        let mut index = 0;
        while index < args.len() {
            let arg = args[index].as_str();
            let flag_at = index;
            index += 1;
            let Some(body) = arg.strip_prefix("--") else {
                let message = if arg.starts_with('-') && arg.len() > 1 {
                    format!("{arg:?}: flags take two dashes, as in -{arg}")
                } else {
                    format!("unexpected argument {arg:?}: every argument is a --flag")
                };
                return Err(MetricError::at(flag_at, message));
            };
            let (name, inline) = match body.split_once('=') {
                Some((name, value)) => (name, Some(value)),
                None => (body, None),
            };
            let Some(&(name, takes_value)) = FLAGS.iter().find(|(known, _)| *known == name) else {
                let mut message = format!("unknown flag --{name} for plugin count");
                match nearest(name, FLAGS.iter().map(|(known, _)| *known)) {
                    Some(near) => message.push_str(&format!("; did you mean --{near}?")),
                    None => message.push_str(&format!(
                        "; known flags: {}",
                        FLAGS
                            .iter()
                            .map(|(f, _)| format!("--{f}"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    )),
                }
                return Err(MetricError::at(flag_at, message));
            };
            if !takes_value {
                let on = match inline {
                    None => true,
                    Some(value) => parse_bool(value).ok_or_else(|| {
                        MetricError::at(
                            flag_at,
                            format!("--{name} takes no value (or true/false), not {value:?}"),
                        )
                    })?,
                };
                match name {
                    "no-issues" => {
                        spec.no_issues = on;
                        no_issues_at = Some(flag_at);
                    }
                    "no-pull-requests" => {
                        spec.no_pull_requests = on;
                        no_pull_requests_at = Some(flag_at);
                    }
                    _ => spec.log_author = on,
                }
                continue;
            }
            let (value, value_at) = match inline {
                Some(value) => (value, flag_at),
                None => match args.get(index) {
                    Some(next) if !next.starts_with("--") => {
                        index += 1;
                        (next.as_str(), index - 1)
                    }
                    _ => {
                        return Err(MetricError::at(
                            flag_at,
                            format!("--{name} needs a value, as --{name}=VALUE"),
                        ));
                    }
                },
            };
            let fail = |message: String| MetricError::at(value_at, message);
            match name {
                "event" => {
                    if event_at.is_some() {
                        return Err(MetricError::at(
                            flag_at,
                            "--event is given twice; a metric counts one event",
                        ));
                    }
                    event_at = Some(flag_at);
                    let matcher =
                        EventMatcher::parse(value).map_err(|m| fail(format!("--event: {m}")))?;
                    spec.event = Some(matcher);
                }
                "state" => {
                    if state_at.is_some() {
                        return Err(MetricError::at(
                            flag_at,
                            "--state is given twice; a metric has one state",
                        ));
                    }
                    state_at = Some(flag_at);
                    let state =
                        StateSpec::parse(value).map_err(|m| fail(format!("--state: {m}")))?;
                    spec.state = Some(state);
                }
                "comments" => {
                    for item in split_regexes(value) {
                        if item.is_empty() {
                            return Err(fail(format!(
                                "--comments={value:?} has an empty regex; write (?:) or .* to match every comment"
                            )));
                        }
                        let regex = Regex::new(item).map_err(|err| {
                            fail(format!("--comments: bad regex {item:?}: {err}"))
                        })?;
                        spec.comments.push(regex);
                    }
                }
                "percentiles" => {
                    percentiles_at.get_or_insert(flag_at);
                    for item in value.split(',') {
                        let item = item.trim();
                        let p: u8 = match item.parse::<u64>() {
                            Ok(p) if (1..=100).contains(&p) => p as u8,
                            _ => {
                                return Err(fail(format!(
                                    "--percentiles: {item:?} is not an integer from 1 to 100"
                                )));
                            }
                        };
                        if !spec.percentiles.contains(&p) {
                            spec.percentiles.push(p);
                        }
                    }
                }
                _ => {
                    for item in value.split(',') {
                        let item = item.trim();
                        if item.is_empty() {
                            return Err(fail(format!(
                                "--ignore-authors={value:?} has an empty login"
                            )));
                        }
                        if !spec.ignore_authors.iter().any(|a| a == item) {
                            spec.ignore_authors.push(item.to_owned());
                        }
                    }
                }
            }
        }
        if let (Some(at), None) = (percentiles_at, &spec.state) {
            return Err(MetricError::at(
                at,
                "--percentiles needs --state: percentiles are of the ages of issues in the state",
            ));
        }
        if spec.no_issues && spec.no_pull_requests {
            return Err(MetricError {
                arg: no_issues_at.max(no_pull_requests_at),
                message: "you can't ignore both pull-requests and issues \
                          (--no-issues with --no-pull-requests counts nothing)"
                    .to_owned(),
            });
        }
        if spec.event.is_none() && spec.comments.is_empty() && spec.state.is_none() {
            return Err(MetricError::whole(
                "the metric counts nothing: give --event, --comments or --state",
            ));
        }
        Ok(spec)
    }

    /// The event counted by `--event`, if any.
    pub fn event(&self) -> Option<&EventMatcher> {
        self.event.as_ref()
    }

    /// The `--comments` regexes in order; each match of a comment writes one point.
    pub fn comments(&self) -> &[Regex] {
        &self.comments
    }

    /// The `--state` description, if any.
    pub fn state(&self) -> Option<&StateSpec> {
        self.state.as_ref()
    }

    /// The `--percentiles`, in the order first written, without repeats.
    pub fn percentiles(&self) -> &[u8] {
        &self.percentiles
    }

    /// False with `--no-issues`: plain issues (not pull requests) are skipped.
    pub fn includes_issues(&self) -> bool {
        !self.no_issues
    }

    /// False with `--no-pull-requests`.
    pub fn includes_pull_requests(&self) -> bool {
        !self.no_pull_requests
    }

    /// The `--ignore-authors` logins (exact, case-sensitive, as the original compared).
    pub fn ignored_authors(&self) -> &[String] {
        &self.ignore_authors
    }

    /// Whether event and comment points carry the `author` field.
    pub fn logs_author(&self) -> bool {
        self.log_author
    }

    /// Every field this metric can write, in a fixed order, for dashboards and docs.
    pub fn fields(&self) -> Vec<Field> {
        let mut fields = Vec::new();
        if self.event.is_some() {
            fields.push(Field::Event);
        }
        if !self.comments.is_empty() {
            fields.push(Field::Comment);
        }
        if self.state.is_some() {
            fields.push(Field::Count);
            fields.push(Field::Sum);
            fields.extend(self.percentiles.iter().map(|p| Field::Percentile(*p)));
        }
        if self.log_author && (self.event.is_some() || !self.comments.is_empty()) {
            fields.push(Field::Author);
        }
        fields
    }

    /// One normalised text for the definition: equal for any two spellings of the same
    /// metric, different when the points would differ. The transform hashes it to notice a
    /// changed definition and recompute that metric only.
    pub fn canonical(&self) -> String {
        let mut out = String::from("count");
        if let Some(event) = &self.event {
            out.push_str(&format!(" --event={event}"));
        }
        for regex in &self.comments {
            out.push_str(&format!(" --comments={:?}", regex.as_str()));
        }
        if let Some(state) = &self.state {
            out.push_str(&format!(" --state={state}"));
        }
        if !self.percentiles.is_empty() {
            let list: Vec<String> = self.percentiles.iter().map(u8::to_string).collect();
            out.push_str(&format!(" --percentiles={}", list.join(",")));
        }
        if self.no_issues {
            out.push_str(" --no-issues");
        }
        if self.no_pull_requests {
            out.push_str(" --no-pull-requests");
        }
        if !self.ignore_authors.is_empty() {
            let mut list = self.ignore_authors.clone();
            list.sort();
            out.push_str(&format!(" --ignore-authors={}", list.join(",")));
        }
        if self.log_author {
            out.push_str(" --log-author");
        }
        out
    }
}

/// Go's strconv.ParseBool, which pflag used for `--flag=value` on booleans.
fn parse_bool(value: &str) -> Option<bool> {
    match value {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// Splits a `--comments` value on commas outside brackets and not escaped (module docs).
fn split_regexes(value: &str) -> Vec<&str> {
    let mut items = Vec::new();
    let mut depth_paren = 0usize;
    let mut depth_brace = 0usize;
    let mut in_class = false;
    let mut escaped = false;
    let mut start = 0;
    for (i, c) in value.char_indices() {
        if escaped {
            escaped = false;
            continue;
        }
        match c {
            '\\' => escaped = true,
            '[' if !in_class => in_class = true,
            ']' if in_class => in_class = false,
            '(' if !in_class => depth_paren += 1,
            ')' if !in_class => depth_paren = depth_paren.saturating_sub(1),
            '{' if !in_class => depth_brace += 1,
            '}' if !in_class => depth_brace = depth_brace.saturating_sub(1),
            ',' if !in_class && depth_paren == 0 && depth_brace == 0 => {
                items.push(&value[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    items.push(&value[start..]);
    items
}

/// The candidate closest to `word` by edit distance, when close enough to be a typo.
fn nearest<'a>(word: &str, candidates: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    let limit = (word.chars().count() / 3).max(2);
    candidates
        .map(|c| (edit_distance(word, c), c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// Levenshtein distance over characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut previous = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitute = previous + usize::from(ca != *cb);
            previous = row[j + 1];
            row[j + 1] = substitute.min(row[j] + 1).min(row[j + 1] + 1);
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    fn parse(list: &[&str]) -> Result<MetricSpec, MetricError> {
        MetricSpec::parse("count", &args(list))
    }

    fn err(list: &[&str]) -> MetricError {
        match parse(list) {
            Ok(spec) => panic!("{list:?} parsed as {}", spec.canonical()),
            Err(err) => err,
        }
    }

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
        assert_eq!(Opened.opposite(), Closed);
        assert_eq!(Closed.opposite(), Reopened);
        assert_eq!(Reopened.opposite(), Closed);
        assert_eq!(Merged.opposite(), Never);
        assert_eq!(Commented.opposite(), Never);
        assert_eq!(Never.opposite(), Always);
        assert_eq!(Labeled("x".into()).opposite(), Unlabeled("x".into()));
        assert_eq!(Unlabeled("x".into()).opposite(), Labeled("x".into()));
        assert!(Labeled("x".into()).matches("labeled", "x"));
        assert!(!Labeled("x".into()).matches("labeled", "X"));
        assert!(!Labeled("x".into()).matches("unlabeled", "x"));
        assert!(!Never.matches("merged", ""));
        assert!(Always.matches("anything", ""));
    }

    #[test]
    fn every_legacy_config_metric_parses() {
        let legacy: [(&str, &[&str]); 9] = [
            ("merge", &["--no-issues", "--event=merged"]),
            (
                "contributions",
                &[
                    "--ignore-authors=k8s-merge-robot,k8s-reviewable,k8s-ci-robot",
                    "--no-issues",
                    "--event=opened",
                    "--comments=.*",
                    "--log-author",
                ],
            ),
            (
                "open",
                &["--no-issues", "--state=opened,!merged", "--percentiles=50"],
            ),
            (
                "needs-rebase",
                &[
                    "--no-issues",
                    "--percentiles=50",
                    "--state=opened,labeled:needs-rebase",
                ],
            ),
            (
                "lgtmed",
                &[
                    "--no-issues",
                    "--percentiles=50",
                    "--state=opened,!labeled:needs-rebase,labeled:lgtm",
                ],
            ),
            (
                "approved",
                &[
                    "--no-issues",
                    "--percentiles=50",
                    "--state=opened,!labeled:needs-rebase,labeled:approved",
                ],
            ),
            (
                "lgtmer",
                &[
                    "--no-issues",
                    "--ignore-authors=k8s-merge-robot",
                    "--event=labeled:lgtm",
                    "--comments=(?m)^/lgtm$",
                    "--log-author",
                ],
            ),
            (
                "approver",
                &[
                    "--no-issues",
                    "--ignore-authors=k8s-merge-robot",
                    "--event=labeled:approved",
                    "--comments=(?m)^/approve$",
                    "--log-author",
                ],
            ),
            (
                "testthis",
                &[
                    "--no-issues",
                    "--ignore-authors=k8s-merge-robot,k8s-ci-robot",
                    "--comments=(?m)^@k8s-bot.*test this",
                ],
            ),
        ];
        let want = [
            "count --event=merged --no-issues",
            "count --event=opened --comments=\".*\" --no-issues --ignore-authors=k8s-ci-robot,k8s-merge-robot,k8s-reviewable --log-author",
            "count --state=opened,!merged --percentiles=50 --no-issues",
            "count --state=opened,labeled:needs-rebase --percentiles=50 --no-issues",
            "count --state=opened,!labeled:needs-rebase,labeled:lgtm --percentiles=50 --no-issues",
            "count --state=opened,!labeled:needs-rebase,labeled:approved --percentiles=50 --no-issues",
            "count --event=labeled:lgtm --comments=\"(?m)^/lgtm$\" --no-issues --ignore-authors=k8s-merge-robot --log-author",
            "count --event=labeled:approved --comments=\"(?m)^/approve$\" --no-issues --ignore-authors=k8s-merge-robot --log-author",
            "count --comments=\"(?m)^@k8s-bot.*test this\" --no-issues --ignore-authors=k8s-ci-robot,k8s-merge-robot",
        ];
        for ((name, list), want) in legacy.iter().zip(want) {
            let spec = parse(list).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(spec.canonical(), want, "{name}");
            assert!(!spec.includes_issues(), "{name}");
            assert!(spec.includes_pull_requests(), "{name}");
        }
        let open = parse(legacy[2].1).expect("open");
        assert_eq!(
            open.fields(),
            vec![Field::Count, Field::Sum, Field::Percentile(50)]
        );
        assert_eq!(
            open.state().expect("state").items(),
            &[
                StateItem {
                    starts_active: false,
                    event: EventMatcher::Opened
                },
                StateItem {
                    starts_active: true,
                    event: EventMatcher::Merged
                },
            ]
        );
        let contributions = parse(legacy[1].1).expect("contributions");
        assert_eq!(
            contributions.fields(),
            vec![Field::Event, Field::Comment, Field::Author]
        );
        assert_eq!(contributions.ignored_authors().len(), 3);
        assert!(contributions.logs_author());
        assert_eq!(Field::Percentile(50).name(), "50%");
        let testthis = parse(legacy[8].1).expect("testthis");
        assert!(testthis.comments()[0].is_match("x\n@k8s-bot e2e test this\n"));
        assert!(!testthis.comments()[0].is_match("@k8s-bot tests this"));
    }

    #[test]
    fn space_separated_values_and_booleans() {
        let spec = parse(&[
            "--event",
            "merged",
            "--no-issues=true",
            "--log-author=false",
        ])
        .expect("parses");
        assert_eq!(spec.event(), Some(&EventMatcher::Merged));
        assert!(!spec.includes_issues());
        assert!(!spec.logs_author());
        let spec = parse(&["--comments", "a", "--comments=b,c", "--event=closed"]).expect("ok");
        let sources: Vec<&str> = spec.comments().iter().map(Regex::as_str).collect();
        assert_eq!(sources, ["a", "b", "c"]);
        let spec = parse(&[
            "--state=merged",
            "--percentiles=50",
            "--percentiles",
            "90,50",
        ])
        .expect("ok");
        assert_eq!(spec.percentiles(), &[50, 90]);
        let spec = parse(&[
            "--state=closed",
            "--ignore-authors=a,b",
            "--ignore-authors",
            "c",
        ])
        .expect("ok");
        assert_eq!(spec.ignored_authors(), &["a", "b", "c"]);
        assert_eq!(spec.fields(), vec![Field::Count, Field::Sum]);
    }

    #[test]
    fn comments_split_outside_brackets_only() {
        assert_eq!(split_regexes("a,b"), ["a", "b"]);
        assert_eq!(split_regexes("a{1,3},b"), ["a{1,3}", "b"]);
        assert_eq!(split_regexes("[,;],x"), ["[,;]", "x"]);
        assert_eq!(split_regexes("(a,b)|c"), ["(a,b)|c"]);
        assert_eq!(split_regexes(r"a\,b,c"), [r"a\,b", "c"]);
        assert_eq!(split_regexes(r"[\],]x,y"), [r"[\],]x", "y"]);
        assert_eq!(split_regexes(".*"), [".*"]);
        let spec = parse(&[r"--comments=a{1,3},b\,c"]).expect("ok");
        let sources: Vec<&str> = spec.comments().iter().map(Regex::as_str).collect();
        assert_eq!(sources, ["a{1,3}", r"b\,c"]);
        assert!(spec.comments()[1].is_match("b,c"));
        assert!(spec.comments()[0].is_match("aaa"));
    }

    #[test]
    fn refuses_other_plugins() {
        let e = MetricSpec::parse("cont", &[]).expect_err("unknown plugin");
        assert_eq!(e.arg, None);
        assert!(e.message.contains("did you mean \"count\""), "{e}");
        assert!(MetricSpec::parse("first_comment", &[]).is_err());
    }

    #[test]
    fn refuses_unknown_flags_with_a_suggestion() {
        let e = err(&["--no-issues", "--evnt=merged"]);
        assert_eq!(e.arg, Some(1));
        assert_eq!(
            e.message,
            "unknown flag --evnt for plugin count; did you mean --event?"
        );
        let e = err(&["--no-issue"]);
        assert!(e.message.contains("did you mean --no-issues?"), "{e}");
        let e = err(&["--percentile=50", "--state=merged"]);
        assert!(e.message.contains("did you mean --percentiles?"), "{e}");
        let e = err(&["--frequency=2"]);
        assert!(e.message.contains("known flags"), "{e}");
        let e = err(&["-event=merged"]);
        assert_eq!(e.arg, Some(0));
        let e = err(&["merged"]);
        assert!(e.message.contains("unexpected argument"), "{e}");
    }

    #[test]
    fn refuses_bad_events() {
        let e = err(&["--event=assigned"]);
        assert_eq!(e.arg, Some(0));
        assert!(e.message.contains("unknown event \"assigned\""), "{e}");
        let e = err(&["--event=merge"]);
        assert!(e.message.contains("did you mean \"merged\""), "{e}");
        let e = err(&["--no-issues", "--event=labeled"]);
        assert_eq!(e.arg, Some(1));
        assert!(e.message.contains("labeled:LABEL"), "{e}");
        let e = err(&["--event=unlabeled:"]);
        assert!(e.message.contains("empty label"), "{e}");
        let e = err(&["--event=merged:x"]);
        assert!(e.message.contains("only labeled and unlabeled"), "{e}");
        let e = err(&["--event="]);
        assert!(e.message.contains("empty event"), "{e}");
        let e = err(&["--event=merged", "--event=closed"]);
        assert_eq!(e.arg, Some(1));
        // The value's own index in the space-separated form.
        let e = err(&["--no-issues", "--event", "bogus"]);
        assert_eq!(e.arg, Some(2));
    }

    #[test]
    fn refuses_bad_states() {
        for (value, needle) in [
            ("--state=", "empty state"),
            ("--state=opened,,merged", "item 2"),
            ("--state=opened,", "item 2"),
            ("--state=opened,!", "after '!'"),
            ("--state=opened,!foo", "unknown event"),
            ("--state=labeled", "labeled:LABEL"),
        ] {
            let e = err(&[value]);
            assert_eq!(e.arg, Some(0), "{value}");
            assert!(e.message.contains(needle), "{value}: {e}");
        }
        let e = err(&["--state=merged", "--state=closed"]);
        assert_eq!(e.arg, Some(1));
        // commented is accepted in a state (the original could never activate it).
        assert!(parse(&["--state=opened,commented"]).is_ok());
    }

    #[test]
    fn refuses_bad_regexes() {
        let e = err(&["--event=merged", "--comments=(unclosed"]);
        assert_eq!(e.arg, Some(1));
        assert!(e.message.contains("bad regex \"(unclosed\""), "{e}");
        let e = err(&["--comments=a,,b"]);
        assert!(e.message.contains("empty regex"), "{e}");
        let e = err(&["--comments="]);
        assert!(e.message.contains("empty regex"), "{e}");
        assert!(parse(&["--comments=(?:)"]).is_ok());
    }

    #[test]
    fn refuses_bad_percentiles() {
        for value in ["0", "101", "50.5", "-1", "x", "50,", ""] {
            let e = err(&["--state=merged", &format!("--percentiles={value}")]);
            assert_eq!(e.arg, Some(1), "{value}");
            assert!(e.message.contains("1 to 100"), "{value}: {e}");
        }
        let e = err(&["--event=merged", "--percentiles=50"]);
        assert_eq!(e.arg, Some(1));
        assert!(e.message.contains("needs --state"), "{e}");
        assert!(parse(&["--state=merged", "--percentiles=1,100"]).is_ok());
    }

    #[test]
    fn refuses_ignoring_both_kinds() {
        let e = err(&["--event=merged", "--no-issues", "--no-pull-requests"]);
        assert_eq!(e.arg, Some(2));
        assert!(e.message.contains("can't ignore both"), "{e}");
        let e = err(&["--no-pull-requests", "--event=merged", "--no-issues"]);
        assert!(e.message.contains("can't ignore both"), "{e}");
        assert!(parse(&["--event=merged", "--no-issues", "--no-pull-requests=false"]).is_ok());
    }

    #[test]
    fn refuses_values_on_switches_and_missing_values() {
        let e = err(&["--event=merged", "--no-issues=yes"]);
        assert_eq!(e.arg, Some(1));
        assert!(e.message.contains("takes no value"), "{e}");
        let e = err(&["--event=merged", "--log-author=1x"]);
        assert!(e.message.contains("takes no value"), "{e}");
        let e = err(&["--event"]);
        assert!(e.message.contains("needs a value"), "{e}");
        let e = err(&["--event", "--no-issues"]);
        assert_eq!(e.arg, Some(0));
        assert!(e.message.contains("needs a value"), "{e}");
        let e = err(&["--event=merged", "--ignore-authors=a,,b"]);
        assert!(e.message.contains("empty login"), "{e}");
    }

    #[test]
    fn refuses_metrics_that_count_nothing() {
        let e = err(&[]);
        assert_eq!(e.arg, None);
        assert!(e.message.contains("counts nothing"), "{e}");
        assert!(
            err(&["--no-issues", "--log-author"])
                .message
                .contains("counts nothing")
        );
    }

    #[test]
    fn canonical_form_ignores_spelling() {
        let a = parse(&["--no-issues", "--event=merged"]).expect("a");
        let b = parse(&["--event", "merged", "--no-issues=true"]).expect("b");
        assert_eq!(a.canonical(), b.canonical());
        assert_eq!(a, b);
        let c = parse(&["--event=merged"]).expect("c");
        assert_ne!(a.canonical(), c.canonical());
    }

    #[test]
    fn edit_distances() {
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("event", "event"), 0);
        assert_eq!(nearest("xyzzy", FLAGS.iter().map(|f| f.0)), None);
    }
}
