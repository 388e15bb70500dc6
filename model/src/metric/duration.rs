//! The `duration` plugin: how long each item took from one event to another (time to first
//! response, time to merge, the stages of a review).
//!
//! | flag | value | meaning |
//! |---|---|---|
//! | `--from=E` | event description, default `opened` | starts the item's clock |
//! | `--to=E` | event description, required | stops it and writes one point |
//! | `--every` | optional `=true/false` | a point at every stop, not only the first |
//!
//! For each item, the clock starts at the first `--from` and stops at the next `--to`; the
//! point is written at the `--to` event with integer fields `seconds` and `number` (the
//! issue or pull request). A `--from` while the clock runs does not restart it. Without
//! `--every` an item gives at most one point, its first completion; with it the clock can
//! start again at the next `--from` and every completion is a point.

use super::args::{Flag, FlagDef, once, switch, value};
use super::event::EventMatcher;
use super::{Field, MetricError};

/// The flags of `duration` besides the shared filter flags.
pub(crate) const FLAGS: [FlagDef; 3] = [value("from"), value("to"), switch("every")];

/// What a `duration` metric measures.
#[derive(Debug, Clone)]
pub struct DurationSpec {
    from: EventMatcher,
    to: EventMatcher,
    every: bool,
}

impl DurationSpec {
    /// Builds the spec from the flags the shared filter did not take.
    pub(crate) fn from_flags(flags: &[Flag]) -> Result<Self, MetricError> {
        let (mut from, mut to, mut every) = (None, None, false);
        let (mut from_at, mut to_at) = (None, None);
        for flag in flags {
            match flag.name {
                "from" => {
                    once(&mut from_at, flag, "a duration starts at one event")?;
                    from = Some(parse_event(flag)?);
                }
                "to" => {
                    once(&mut to_at, flag, "a duration ends at one event")?;
                    to = Some(parse_event(flag)?);
                }
                _ => every = flag.on,
            }
        }
        let Some(to) = to else {
            return Err(MetricError::whole(
                "a duration needs --to, the event that ends it (for example --to=merged)",
            ));
        };
        let from = from.unwrap_or(EventMatcher::Opened);
        if from == to {
            return Err(MetricError {
                arg: to_at,
                message: format!("--from and --to are both {to}: the duration would always be 0"),
            });
        }
        Ok(Self { from, to, every })
    }

    /// The event that starts the clock.
    pub fn from(&self) -> &EventMatcher {
        &self.from
    }

    /// The event that stops it.
    pub fn to(&self) -> &EventMatcher {
        &self.to
    }

    /// Whether every completion is a point (`--every`), or only the first.
    pub fn every(&self) -> bool {
        self.every
    }

    /// The fields written.
    pub(crate) fn fields(&self) -> Vec<Field> {
        vec![Field::Seconds, Field::Number]
    }

    /// The plugin's own flags in canonical spelling.
    pub(crate) fn write_canonical(&self, out: &mut String) {
        out.push_str(&format!(" --from={} --to={}", self.from, self.to));
        if self.every {
            out.push_str(" --every");
        }
    }
}

fn parse_event(flag: &Flag) -> Result<EventMatcher, MetricError> {
    EventMatcher::parse(flag.text()).map_err(|m| flag.fail(format!("--{}: {m}", flag.name)))
}
