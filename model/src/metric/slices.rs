//! `--by-label`: the label families a metric's points are sliced by (`sig/`, `kind/`), a
//! flag both plugins share. Each family becomes a tag whose value is the item's label in
//! that family at the time of the point, without the prefix (`sig=node`), or `none`.

use super::MetricError;
use super::args::{Flag, FlagDef, value};

/// The shared flag.
pub(crate) const FLAGS: [FlagDef; 1] = [value("by-label")];

/// The value of a family's tag on an item that has no label of the family.
pub const NO_LABEL: &str = "none";

/// Tags that points already carry, which a family may not shadow.
const RESERVED: [&str; 2] = ["repository", "time"];

/// A label family: the prefix labels share, and the tag it becomes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Family {
    prefix: String,
    tag: String,
}

impl Family {
    /// The label prefix, as written (`sig/`).
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The tag name (`sig`).
    pub fn tag(&self) -> &str {
        &self.tag
    }

    /// The tag value of `label` when it belongs to the family (`sig/node` -> `node`).
    pub fn value_of<'l>(&self, label: &'l str) -> Option<&'l str> {
        label.strip_prefix(self.prefix.as_str())
    }
}

/// The families of a metric, in the order written.
#[derive(Debug, Clone, Default)]
pub struct Slices {
    families: Vec<Family>,
    at: Option<usize>,
}

impl Slices {
    /// Takes `--by-label`; `Ok(false)` leaves other flags to the plugin.
    pub(crate) fn take(&mut self, flag: &Flag) -> Result<bool, MetricError> {
        if flag.name != "by-label" {
            return Ok(false);
        }
        if self.at.is_some() {
            return Err(MetricError::at(
                flag.at,
                "--by-label is given twice; list every family in one, as --by-label=sig/,kind/",
            ));
        }
        self.at = Some(flag.at);
        for prefix in flag.text().split(',').map(str::trim) {
            let Some(tag) = prefix.strip_suffix('/') else {
                return Err(flag.fail(format!(
                    "--by-label: {prefix:?} is not a label family; write the prefix its labels share, ending in '/', as sig/"
                )));
            };
            let valid = !tag.is_empty()
                && tag
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
            if !valid {
                return Err(flag.fail(format!(
                    "--by-label: {prefix:?}: a family name is lower-case letters, digits, '-' and '_' before the '/'"
                )));
            }
            if RESERVED.contains(&tag) {
                return Err(flag.fail(format!(
                    "--by-label: {prefix:?} would shadow the {tag:?} tag every point has"
                )));
            }
            if self.families.iter().any(|f| f.tag == tag) {
                return Err(flag.fail(format!("--by-label: {prefix:?} is listed twice")));
            }
            self.families.push(Family {
                prefix: prefix.to_owned(),
                tag: tag.to_owned(),
            });
        }
        Ok(true)
    }

    /// The families, in the order written.
    pub fn families(&self) -> &[Family] {
        &self.families
    }

    /// Whether the metric is sliced at all.
    pub fn is_empty(&self) -> bool {
        self.families.is_empty()
    }

    /// Appends the flag in canonical spelling.
    pub(crate) fn write_canonical(&self, out: &mut String) {
        if !self.families.is_empty() {
            let list: Vec<&str> = self.families.iter().map(|f| f.prefix.as_str()).collect();
            out.push_str(&format!(" --by-label={}", list.join(",")));
        }
    }
}

/// Parses an age such as `30d`, `12h`, `2w` or `90m` into seconds (`s`, `m`, `h`, `d`, `w`).
pub(crate) fn parse_age(text: &str) -> Option<i64> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit())?;
    let (number, unit) = text.split_at(split);
    let number: i64 = number.parse().ok().filter(|n| *n > 0)?;
    let unit = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3_600,
        "d" => 86_400,
        "w" => 604_800,
        _ => return None,
    };
    number.checked_mul(unit)
}

/// An age in the shortest exact spelling, for canonical forms and field names.
pub(crate) fn age_text(seconds: i64) -> String {
    for (unit, size) in [("d", 86_400), ("h", 3_600), ("m", 60)] {
        if seconds % size == 0 {
            return format!("{}{unit}", seconds / size);
        }
    }
    format!("{seconds}s")
}
