//! The `count` plugin: the flags of the original Go transform (spec/original-transform.md,
//! sections 3.5 to 3.8), which count events and comments and follow a state.
//!
//! # How `--comments` splits
//!
//! The original split the value like a CSV line, so `a{1,3}` became two broken regexes. Here
//! a comma separates two regexes only when it is *outside* any `(...)`, `[...]` and `{...}`
//! and not escaped with a backslash. Every regex of the legacy configs (which contain no
//! comma) splits exactly as before; `a{1,3}`, `[,;]` and `(a,b)` stay whole. A literal
//! comma at the top level is written `\,` or `[,]`. Empty items are refused (write `(?:)`
//! or `.*` to match every comment).

use regex::Regex;

use super::args::{Flag, FlagDef, once, switch, value};
use super::event::{EventMatcher, StateSpec};
use super::slices::{age_text, parse_age};
use super::{Field, MetricError};

/// The flags of `count` besides the shared ones.
pub(crate) const FLAGS: [FlagDef; 7] = [
    value("event"),
    value("comments"),
    value("state"),
    value("percentiles"),
    switch("log-author"),
    value("age-buckets"),
    value("inactive"),
];

/// What a `count` metric counts.
#[derive(Debug, Clone)]
pub struct CountSpec {
    event: Option<EventMatcher>,
    comments: Vec<Regex>,
    state: Option<StateSpec>,
    percentiles: Vec<u8>,
    log_author: bool,
    age_buckets: Vec<i64>,
    inactive: Option<i64>,
}

impl CountSpec {
    /// Builds the spec from the flags the shared filter did not take.
    pub(crate) fn from_flags(flags: &[Flag]) -> Result<Self, MetricError> {
        let mut spec = Self {
            event: None,
            comments: Vec::new(),
            state: None,
            percentiles: Vec::new(),
            log_author: false,
            age_buckets: Vec::new(),
            inactive: None,
        };
        let (mut event_at, mut state_at, mut percentiles_at) = (None, None, None);
        let (mut buckets_at, mut inactive_at) = (None, None);
        for flag in flags {
            let value = flag.text();
            match flag.name {
                "event" => {
                    once(&mut event_at, flag, "a metric counts one event")?;
                    let matcher = EventMatcher::parse(value)
                        .map_err(|m| flag.fail(format!("--event: {m}")))?;
                    spec.event = Some(matcher);
                }
                "state" => {
                    once(&mut state_at, flag, "a metric has one state")?;
                    let state =
                        StateSpec::parse(value).map_err(|m| flag.fail(format!("--state: {m}")))?;
                    spec.state = Some(state);
                }
                "comments" => {
                    for item in split_regexes(value) {
                        if item.is_empty() {
                            return Err(flag.fail(format!(
                                "--comments={value:?} has an empty regex; write (?:) or .* to match every comment"
                            )));
                        }
                        let regex = Regex::new(item).map_err(|err| {
                            flag.fail(format!("--comments: bad regex {item:?}: {err}"))
                        })?;
                        spec.comments.push(regex);
                    }
                }
                "percentiles" => {
                    percentiles_at.get_or_insert(flag.at);
                    for item in value.split(',') {
                        let item = item.trim();
                        let p: u8 = match item.parse::<u64>() {
                            Ok(p) if (1..=100).contains(&p) => p as u8,
                            _ => {
                                return Err(flag.fail(format!(
                                    "--percentiles: {item:?} is not an integer from 1 to 100"
                                )));
                            }
                        };
                        if !spec.percentiles.contains(&p) {
                            spec.percentiles.push(p);
                        }
                    }
                }
                "age-buckets" => {
                    once(&mut buckets_at, flag, "list every bucket in one")?;
                    for item in value.split(',') {
                        let age = parse_age(item).ok_or_else(|| {
                            flag.fail(format!(
                                "--age-buckets: {:?} is not an age such as 7d, 12h or 2w",
                                item.trim()
                            ))
                        })?;
                        spec.age_buckets.push(age);
                    }
                    let mut sorted = spec.age_buckets.clone();
                    sorted.sort_unstable();
                    sorted.dedup();
                    if sorted != spec.age_buckets {
                        return Err(flag.fail(
                            "--age-buckets: list the ages from the shortest to the longest, each once",
                        ));
                    }
                }
                "inactive" => {
                    once(&mut inactive_at, flag, "a metric has one inactivity limit")?;
                    spec.inactive = Some(parse_age(value).ok_or_else(|| {
                        flag.fail(format!(
                            "--inactive: {value:?} is not an age such as 14d, 12h or 2w"
                        ))
                    })?);
                }
                _ => spec.log_author = flag.on,
            }
        }
        for (at, what) in [(buckets_at, "--age-buckets"), (inactive_at, "--inactive")] {
            if let (Some(at), None) = (at, &spec.state) {
                return Err(MetricError::at(
                    at,
                    format!("{what} needs --state: it describes the items in the state"),
                ));
            }
        }
        if let (Some(at), None) = (percentiles_at, &spec.state) {
            return Err(MetricError::at(
                at,
                "--percentiles needs --state: percentiles are of the ages of issues in the state",
            ));
        }
        Ok(spec)
    }

    /// Refuses a metric that would never write a point.
    pub(crate) fn check_counts_something(&self) -> Result<(), MetricError> {
        if self.event.is_none() && self.comments.is_empty() && self.state.is_none() {
            return Err(MetricError::whole(
                "the metric counts nothing: give --event, --comments or --state",
            ));
        }
        Ok(())
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

    /// The `--age-buckets` limits in seconds, ascending: a state point counts its items
    /// younger than the first, between each two, and at least as old as the last.
    pub fn age_buckets(&self) -> &[i64] {
        &self.age_buckets
    }

    /// The `--inactive` limit in seconds: a state point counts its items whose last action
    /// by someone other than the author and not a bot is at least this old.
    pub fn inactive(&self) -> Option<i64> {
        self.inactive
    }

    /// Whether event and comment points carry the `author` field.
    pub fn logs_author(&self) -> bool {
        self.log_author
    }

    /// Whether the metric attributes work to people (`--log-author` or `--comments`):
    /// then bots' comments and items are left out, as `--ignore-authors` would.
    pub fn counts_people(&self) -> bool {
        self.log_author || !self.comments.is_empty()
    }

    /// Every event description the metric uses, for the transform's bookkeeping.
    pub fn events(&self) -> impl Iterator<Item = &EventMatcher> {
        self.event.iter().chain(
            self.state
                .iter()
                .flat_map(|s| s.items().iter().map(|i| &i.event)),
        )
    }

    /// The fields written, in a fixed order.
    pub(crate) fn fields(&self) -> Vec<Field> {
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
            fields.extend(bucket_fields(&self.age_buckets).into_iter().map(Field::Age));
            if self.inactive.is_some() {
                fields.push(Field::Inactive);
            }
        }
        if self.log_author && (self.event.is_some() || !self.comments.is_empty()) {
            fields.push(Field::Author);
        }
        fields
    }

    /// The flags before the shared filter, in canonical spelling.
    pub(crate) fn write_canonical(&self, out: &mut String) {
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
    }

    /// The flags after the shared filter.
    pub(crate) fn write_canonical_tail(&self, out: &mut String) {
        if self.log_author {
            out.push_str(" --log-author");
        }
        if !self.age_buckets.is_empty() {
            let list: Vec<String> = self.age_buckets.iter().map(|a| age_text(*a)).collect();
            out.push_str(&format!(" --age-buckets={}", list.join(",")));
        }
        if let Some(limit) = self.inactive {
            out.push_str(&format!(" --inactive={}", age_text(limit)));
        }
    }
}

/// The field names of age buckets for `limits` (ascending): `age_lt_7d`, `age_7d_30d`,
/// ..., `age_ge_365d`.
pub fn bucket_fields(limits: &[i64]) -> Vec<String> {
    if limits.is_empty() {
        return Vec::new();
    }
    let names: Vec<String> = limits.iter().map(|l| age_text(*l)).collect();
    let mut fields = vec![format!("age_lt_{}", names[0])];
    for pair in names.windows(2) {
        fields.push(format!("age_{}_{}", pair[0], pair[1]));
    }
    fields.push(format!("age_ge_{}", names[names.len() - 1]));
    fields
}

/// Splits a `--comments` value on commas outside brackets and not escaped (module docs).
pub(crate) fn split_regexes(value: &str) -> Vec<&str> {
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
