//! Which items and whose actions a metric looks at: the flags every plugin shares
//! (`--no-issues`, `--no-pull-requests`, `--ignore-authors`).

use super::MetricError;
use super::args::{Flag, FlagDef, switch, value};

/// The shared flags, in the order `canonical` writes them.
pub(crate) const FLAGS: [FlagDef; 3] = [
    switch("no-issues"),
    switch("no-pull-requests"),
    value("ignore-authors"),
];

/// Items and people a metric leaves out.
#[derive(Debug, Clone, Default)]
pub struct ItemFilter {
    no_issues: bool,
    no_pull_requests: bool,
    ignore_authors: Vec<String>,
    no_issues_at: Option<usize>,
    no_pull_requests_at: Option<usize>,
}

impl ItemFilter {
    /// Takes `flag` when it is one of [`FLAGS`]; `Ok(false)` leaves it to the plugin.
    pub(crate) fn take(&mut self, flag: &Flag) -> Result<bool, MetricError> {
        match flag.name {
            "no-issues" => {
                self.no_issues = flag.on;
                self.no_issues_at = Some(flag.at);
            }
            "no-pull-requests" => {
                self.no_pull_requests = flag.on;
                self.no_pull_requests_at = Some(flag.at);
            }
            "ignore-authors" => {
                let value = flag.text();
                for item in value.split(',') {
                    let item = item.trim();
                    if item.is_empty() {
                        return Err(
                            flag.fail(format!("--ignore-authors={value:?} has an empty login"))
                        );
                    }
                    if !self.ignore_authors.iter().any(|a| a == item) {
                        self.ignore_authors.push(item.to_owned());
                    }
                }
            }
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// Refuses a filter that leaves nothing.
    pub(crate) fn check(&self) -> Result<(), MetricError> {
        if self.no_issues && self.no_pull_requests {
            return Err(MetricError {
                arg: self.no_issues_at.max(self.no_pull_requests_at),
                message: "you can't ignore both pull-requests and issues \
                          (--no-issues with --no-pull-requests counts nothing)"
                    .to_owned(),
            });
        }
        Ok(())
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

    /// Appends the flags in their canonical spelling and order.
    pub(crate) fn write_canonical(&self, out: &mut String) {
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
    }
}
