//! The metric grammar: a metric's plugin and arguments, parsed once into a spec the
//! transform can run. Both binaries parse with this code, so `velogen validate` and the
//! runtime reject the same configs, before anything runs.
//!
//! Two plugins share one command-line shape ([`args`]), one event vocabulary ([`event`])
//! and one item filter ([`filter`]):
//!
//! | plugin | writes | module |
//! |---|---|---|
//! | `count` | `event`, `comment`, `count`/`sum`/`"<p>%"`, `author` | [`count`] |
//! | `duration` | `seconds` and `number` per completed item | [`duration`] |
//!
//! | shared flag | value | meaning |
//! |---|---|---|
//! | `--no-issues`, `--no-pull-requests` | optional `=true/false` | skip issues or pull requests |
//! | `--ignore-authors=a,b` | logins, repeatable | drop what these users did or opened |
//!
//! `count` takes `--event=E`, `--comments=R1,R2`, `--state=D1,D2`, `--percentiles=50,90`
//! and `--log-author` (spec/original-transform.md, sections 3.5 to 3.8); `duration` takes
//! `--from=E`, `--to=E` and `--every`. Values come as `--flag=value` or as the next
//! argument, as pflag allowed. Everything the original only discovered at run time (or
//! never) is refused here.

mod args;
pub mod count;
pub mod duration;
pub mod event;
pub mod filter;
pub mod slices;

use thiserror::Error;

pub use count::CountSpec;
pub use duration::DurationSpec;
pub use event::{EventMatcher, Marks, StateItem, StateSpec};
pub use filter::ItemFilter;
pub use slices::{Family, NO_LABEL, Slices};

use args::FlagDef;

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
    /// Integer `seconds`: how long one item took (`duration`).
    Seconds,
    /// Integer `number`: the issue or pull request a `duration` point is about.
    Number,
    /// Integer: items of the state in one age bucket (`age_lt_7d`, `age_7d_30d`, ...).
    Age(String),
    /// Integer `inactive`: items of the state without attention for `--inactive`.
    Inactive,
}

impl Field {
    /// The InfluxDB field name, as dashboards query it.
    pub fn name(&self) -> String {
        match self {
            Self::Event => "event".to_owned(),
            Self::Comment => "comment".to_owned(),
            Self::Count => "count".to_owned(),
            Self::Sum => "sum".to_owned(),
            Self::Percentile(p) => format!("{p}%"),
            Self::Author => "author".to_owned(),
            Self::Seconds => "seconds".to_owned(),
            Self::Number => "number".to_owned(),
            Self::Age(name) => name.clone(),
            Self::Inactive => "inactive".to_owned(),
        }
    }
}

/// What a metric computes, by plugin.
#[derive(Debug, Clone)]
pub enum Plugin {
    /// Events, comments and states (`count`).
    Count(CountSpec),
    /// Time from one event to another, per item (`duration`).
    Duration(DurationSpec),
}

/// The plugin names, for messages and for tools that point at a metric's parts.
pub const PLUGINS: [&str; 2] = ["count", "duration"];

/// The flags of `count`, the original's in the order it listed them, then ours.
const COUNT_FLAGS: [FlagDef; 11] = [
    count::FLAGS[0],
    count::FLAGS[1],
    count::FLAGS[2],
    count::FLAGS[3],
    filter::FLAGS[0],
    filter::FLAGS[1],
    filter::FLAGS[2],
    count::FLAGS[4],
    count::FLAGS[5],
    count::FLAGS[6],
    slices::FLAGS[0],
];

/// The flags of `duration`.
const DURATION_FLAGS: [FlagDef; 7] = [
    duration::FLAGS[0],
    duration::FLAGS[1],
    duration::FLAGS[2],
    filter::FLAGS[0],
    filter::FLAGS[1],
    filter::FLAGS[2],
    slices::FLAGS[0],
];

/// A metric definition that parsed: one the transform can run.
#[derive(Debug, Clone)]
pub struct MetricSpec {
    filter: ItemFilter,
    slices: Slices,
    plugin: Plugin,
}

impl PartialEq for MetricSpec {
    fn eq(&self, other: &Self) -> bool {
        self.canonical() == other.canonical()
    }
}

impl MetricSpec {
    /// Parses a plugin name and its arguments.
    pub fn parse(plugin: &str, args: &[String]) -> Result<Self, MetricError> {
        let defs: &[FlagDef] = match plugin {
            "count" => &COUNT_FLAGS,
            "duration" => &DURATION_FLAGS,
            _ => {
                let mut message = format!(
                    "unknown plugin {plugin:?}; known plugins: {}",
                    PLUGINS.join(", ")
                );
                if let Some(near) = nearest(plugin, PLUGINS.into_iter()) {
                    message = format!("unknown plugin {plugin:?}; did you mean {near:?}?");
                }
                return Err(MetricError::whole(message));
            }
        };
        let mut filter = ItemFilter::default();
        let mut slices = Slices::default();
        let mut own = Vec::new();
        for flag in args::scan(plugin, defs, args)? {
            if !filter.take(&flag)? && !slices.take(&flag)? {
                own.push(flag);
            }
        }
        let plugin = if plugin == "count" {
            let spec = CountSpec::from_flags(&own)?;
            filter.check()?;
            spec.check_counts_something()?;
            Plugin::Count(spec)
        } else {
            let spec = DurationSpec::from_flags(&own)?;
            filter.check()?;
            Plugin::Duration(spec)
        };
        Ok(Self {
            filter,
            slices,
            plugin,
        })
    }

    /// What the metric computes.
    pub fn plugin(&self) -> &Plugin {
        &self.plugin
    }

    /// The `count` part, if it is a `count` metric.
    pub fn count(&self) -> Option<&CountSpec> {
        match &self.plugin {
            Plugin::Count(spec) => Some(spec),
            Plugin::Duration(_) => None,
        }
    }

    /// The `duration` part, if it is a `duration` metric.
    pub fn duration(&self) -> Option<&DurationSpec> {
        match &self.plugin {
            Plugin::Duration(spec) => Some(spec),
            Plugin::Count(_) => None,
        }
    }

    /// Which items and whose actions the metric looks at.
    pub fn filter(&self) -> &ItemFilter {
        &self.filter
    }

    /// The label families its points are sliced by (`--by-label`).
    pub fn slices(&self) -> &Slices {
        &self.slices
    }

    /// Whether the config's `bots:` change this metric's points: it attributes work to
    /// people (`count` with `--log-author` or `--comments`), measures durations (bots'
    /// items are left out), or uses `responded` (bots never respond).
    pub fn uses_bots(&self) -> bool {
        match &self.plugin {
            Plugin::Count(spec) => {
                spec.counts_people()
                    || spec.inactive().is_some()
                    || spec.events().any(EventMatcher::needs_responses)
            }
            Plugin::Duration(_) => true,
        }
    }

    /// Whether the metric needs [`Marks::responded`].
    pub fn uses_responses(&self) -> bool {
        match &self.plugin {
            Plugin::Count(spec) => spec.events().any(EventMatcher::needs_responses),
            Plugin::Duration(spec) => spec.from().needs_responses() || spec.to().needs_responses(),
        }
    }

    /// Every field this metric can write, in a fixed order, for dashboards and docs.
    pub fn fields(&self) -> Vec<Field> {
        match &self.plugin {
            Plugin::Count(spec) => spec.fields(),
            Plugin::Duration(spec) => spec.fields(),
        }
    }

    /// One normalised text for the definition: equal for any two spellings of the same
    /// metric, different when the points would differ. The transform hashes it to notice a
    /// changed definition and recompute that metric only.
    pub fn canonical(&self) -> String {
        let mut out = String::new();
        match &self.plugin {
            Plugin::Count(spec) => {
                out.push_str("count");
                spec.write_canonical(&mut out);
                self.filter.write_canonical(&mut out);
                spec.write_canonical_tail(&mut out);
            }
            Plugin::Duration(spec) => {
                out.push_str("duration");
                spec.write_canonical(&mut out);
                self.filter.write_canonical(&mut out);
            }
        }
        self.slices.write_canonical(&mut out);
        out
    }
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
    use regex::Regex;

    use super::count::split_regexes;

    /// The count part of a spec that must parse as `count`.
    fn counting(spec: &MetricSpec) -> &CountSpec {
        spec.count().expect("a count metric")
    }

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
            assert!(!spec.filter().includes_issues(), "{name}");
            assert!(spec.filter().includes_pull_requests(), "{name}");
        }
        let open = parse(legacy[2].1).expect("open");
        assert_eq!(
            open.fields(),
            vec![Field::Count, Field::Sum, Field::Percentile(50)]
        );
        assert_eq!(
            counting(&open).state().expect("state").items(),
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
        assert_eq!(contributions.filter().ignored_authors().len(), 3);
        assert!(counting(&contributions).logs_author());
        assert_eq!(Field::Percentile(50).name(), "50%");
        let testthis = parse(legacy[8].1).expect("testthis");
        assert!(counting(&testthis).comments()[0].is_match("x\n@k8s-bot e2e test this\n"));
        assert!(!counting(&testthis).comments()[0].is_match("@k8s-bot tests this"));
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
        assert_eq!(counting(&spec).event(), Some(&EventMatcher::Merged));
        assert!(!spec.filter().includes_issues());
        assert!(!counting(&spec).logs_author());
        let spec = parse(&["--comments", "a", "--comments=b,c", "--event=closed"]).expect("ok");
        let sources: Vec<&str> = counting(&spec)
            .comments()
            .iter()
            .map(Regex::as_str)
            .collect();
        assert_eq!(sources, ["a", "b", "c"]);
        let spec = parse(&[
            "--state=merged",
            "--percentiles=50",
            "--percentiles",
            "90,50",
        ])
        .expect("ok");
        assert_eq!(counting(&spec).percentiles(), &[50, 90]);
        let spec = parse(&[
            "--state=closed",
            "--ignore-authors=a,b",
            "--ignore-authors",
            "c",
        ])
        .expect("ok");
        assert_eq!(spec.filter().ignored_authors(), &["a", "b", "c"]);
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
        let sources: Vec<&str> = counting(&spec)
            .comments()
            .iter()
            .map(Regex::as_str)
            .collect();
        assert_eq!(sources, ["a{1,3}", r"b\,c"]);
        assert!(counting(&spec).comments()[1].is_match("b,c"));
        assert!(counting(&spec).comments()[0].is_match("aaa"));
    }

    fn duration(list: &[&str]) -> Result<MetricSpec, MetricError> {
        MetricSpec::parse("duration", &args(list))
    }

    #[test]
    fn duration_parses_with_its_defaults() {
        let spec = duration(&["--no-issues", "--to", "merged"]).expect("parses");
        assert_eq!(
            spec.canonical(),
            "duration --from=opened --to=merged --no-issues"
        );
        let d = spec.duration().expect("a duration");
        assert_eq!(d.from(), &EventMatcher::Opened);
        assert_eq!(d.to(), &EventMatcher::Merged);
        assert!(!d.every());
        assert_eq!(spec.fields(), vec![Field::Seconds, Field::Number]);
        assert!(spec.count().is_none());
        assert!(spec.uses_bots());
        assert!(!spec.uses_responses());
        let spec = duration(&[
            "--from=labeled:lgtm",
            "--to=responded",
            "--every=true",
            "--ignore-authors=b,a",
        ])
        .expect("parses");
        assert_eq!(
            spec.canonical(),
            "duration --from=labeled:lgtm --to=responded --every --ignore-authors=a,b"
        );
        assert!(spec.uses_responses());
        // Two spellings of one metric are one metric.
        assert_eq!(
            duration(&["--to=merged", "--from=opened"]).expect("a"),
            duration(&["--to", "merged"]).expect("b")
        );
    }

    #[test]
    fn duration_refuses_what_cannot_run() {
        let e = duration(&["--from=opened"]).expect_err("no --to");
        assert_eq!(e.arg, None);
        assert!(e.message.contains("needs --to"), "{e}");
        let e = duration(&["--no-issues", "--to=respnded"]).expect_err("misspelt");
        assert_eq!(e.arg, Some(1));
        assert!(e.message.contains("did you mean \"responded\""), "{e}");
        let e = duration(&["--to=merged", "--state=opened"]).expect_err("count flag");
        assert_eq!(e.arg, Some(1));
        assert!(e.message.contains("for plugin duration"), "{e}");
        let e = duration(&["--to=merged", "--to=closed"]).expect_err("twice");
        assert_eq!(e.arg, Some(1));
        let e = duration(&["--from=merged", "--to=merged"]).expect_err("zero");
        assert!(e.message.contains("always be 0"), "{e}");
        let e =
            duration(&["--to=merged", "--no-issues", "--no-pull-requests"]).expect_err("nothing");
        assert!(e.message.contains("can't ignore both"), "{e}");
        let e = duration(&["--to=merged", "--every=maybe"]).expect_err("switch");
        assert!(e.message.contains("takes no value"), "{e}");
    }

    #[test]
    fn slices_buckets_and_inactivity() {
        let spec = parse(&[
            "--no-issues",
            "--state=opened,!merged",
            "--by-label=sig/,kind/",
            "--age-buckets=7d,30d,2w",
        ]);
        let e = spec.expect_err("unsorted buckets");
        assert!(e.message.contains("shortest to the longest"), "{e}");
        let spec = parse(&[
            "--no-issues",
            "--state=opened,!merged",
            "--by-label=sig/,kind/",
            "--age-buckets=7d,2w,30d",
            "--inactive=14d",
        ])
        .expect("parses");
        assert_eq!(
            spec.canonical(),
            "count --state=opened,!merged --no-issues --age-buckets=7d,14d,30d --inactive=14d --by-label=sig/,kind/"
        );
        let tags: Vec<&str> = spec.slices().families().iter().map(|f| f.tag()).collect();
        assert_eq!(tags, ["sig", "kind"]);
        assert_eq!(
            spec.slices().families()[0].value_of("sig/node"),
            Some("node")
        );
        assert_eq!(spec.slices().families()[0].value_of("kind/bug"), None);
        let names: Vec<String> = spec.fields().iter().map(Field::name).collect();
        assert_eq!(
            names,
            [
                "count",
                "sum",
                "age_lt_7d",
                "age_7d_14d",
                "age_14d_30d",
                "age_ge_30d",
                "inactive"
            ]
        );
        assert!(spec.uses_bots(), "inactivity ignores bots");
        let counting = counting(&spec);
        assert_eq!(counting.age_buckets(), &[604_800, 1_209_600, 2_592_000]);
        assert_eq!(counting.inactive(), Some(1_209_600));
        // Durations are sliced too.
        let d = duration(&["--to=merged", "--by-label", "area/"]).expect("parses");
        assert_eq!(
            d.canonical(),
            "duration --from=opened --to=merged --by-label=area/"
        );
        for (args, needle) in [
            (&["--event=merged", "--by-label=sig"][..], "ending in '/'"),
            (&["--event=merged", "--by-label=SIG/"], "lower-case"),
            (&["--event=merged", "--by-label=repository/"], "shadow"),
            (&["--event=merged", "--by-label=sig/,sig/"], "twice"),
            (&["--event=merged", "--age-buckets=7d"], "needs --state"),
            (&["--event=merged", "--inactive=14d"], "needs --state"),
            (&["--state=opened", "--inactive=soon"], "not an age"),
            (&["--state=opened", "--age-buckets=7d,0d"], "not an age"),
        ] {
            let e = parse(args).expect_err("refused");
            assert!(e.message.contains(needle), "{args:?}: {e}");
            assert_eq!(e.arg, Some(1), "{args:?}");
        }
    }

    #[test]
    fn which_metrics_bots_change() {
        let uses = |list: &[&str]| parse(list).expect("parses").uses_bots();
        assert!(!uses(&["--event=merged"]));
        assert!(!uses(&["--state=opened,!merged", "--percentiles=50"]));
        assert!(uses(&["--event=opened", "--log-author"]));
        assert!(uses(&["--comments=/lgtm"]));
        assert!(uses(&["--state=opened,!responded"]));
        assert!(uses(&["--event=responded"]));
        assert!(parse(&["--event=closed-unmerged"]).is_ok());
    }

    #[test]
    fn refuses_other_plugins() {
        let e = MetricSpec::parse("cont", &[]).expect_err("unknown plugin");
        assert_eq!(e.arg, None);
        assert!(e.message.contains("did you mean \"count\""), "{e}");
        let e = MetricSpec::parse("duraton", &[]).expect_err("unknown plugin");
        assert!(e.message.contains("did you mean \"duration\""), "{e}");
        let e = MetricSpec::parse("first_comment", &[]).expect_err("unknown plugin");
        assert!(e.message.contains("known plugins: count, duration"), "{e}");
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
        assert!(
            e.message.contains("only labeled, unlabeled and reviewed"),
            "{e}"
        );
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
        assert_eq!(nearest("xyzzy", COUNT_FLAGS.iter().map(|f| f.name)), None);
    }
}
