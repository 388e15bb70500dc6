//! Who is a bot, once per config: every metric that looks at people (and the synthetic
//! `responded` event) leaves bots out the same way, so "first response" and "top
//! contributors" never credit `k8s-ci-robot` or `dependabot[bot]`.
//!
//! Patterns are regular expressions matched against the whole login, ignoring case (GitHub
//! logins are case-insensitive): `.*\[bot\]` is every GitHub App, `k8s-ci-robot` one account.

use regex::Regex;

/// Bots when a config says nothing: every GitHub App (`name[bot]`) and the robot accounts
/// the original Kubernetes configs excluded over the years.
pub const DEFAULT_BOTS: [&str; 8] = [
    r".*\[bot\]",
    "k8s-merge-robot",
    "k8s-ci-robot",
    "k8s-reviewable",
    "k8s-bot",
    "k8s-github-robot",
    "k8s-triage-robot",
    "googlebot",
];

/// A pattern that did not compile, with its index in the list as written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bot pattern {pattern:?} is not a valid pattern: {message}")]
pub struct BotsError {
    /// Index of the pattern in the list.
    pub index: usize,
    /// The pattern as written.
    pub pattern: String,
    /// What the regex compiler said.
    pub message: String,
}

/// A compiled list of bot patterns.
#[derive(Debug, Clone)]
pub struct Bots {
    patterns: Vec<String>,
    /// All patterns in one anchored, case-insensitive alternation; `None` when empty.
    matcher: Option<Regex>,
}

impl Default for Bots {
    fn default() -> Self {
        let patterns: Vec<String> = DEFAULT_BOTS.iter().map(|p| (*p).to_owned()).collect();
        Self::parse(&patterns).unwrap_or_else(|_| Self {
            patterns: Vec::new(),
            matcher: None,
        })
    }
}

impl Bots {
    /// Compiles `patterns`; the first one that does not compile is the error.
    pub fn parse(patterns: &[String]) -> Result<Self, BotsError> {
        for (index, pattern) in patterns.iter().enumerate() {
            let problem = if pattern.trim().is_empty() {
                Some("it is empty".to_owned())
            } else {
                Regex::new(pattern).err().map(|e| e.to_string())
            };
            if let Some(message) = problem {
                return Err(BotsError {
                    index,
                    pattern: pattern.clone(),
                    message,
                });
            }
        }
        let matcher = if patterns.is_empty() {
            None
        } else {
            let alternation: Vec<String> = patterns.iter().map(|p| format!("(?:{p})")).collect();
            let joined = format!("^(?i:{})$", alternation.join("|"));
            Some(Regex::new(&joined).map_err(|e| BotsError {
                index: 0,
                pattern: joined.clone(),
                message: e.to_string(),
            })?)
        };
        Ok(Self {
            patterns: patterns.to_vec(),
            matcher,
        })
    }

    /// Whether `login` is a bot.
    pub fn is_bot(&self, login: &str) -> bool {
        self.matcher.as_ref().is_some_and(|m| m.is_match(login))
    }

    /// The patterns as written.
    pub fn patterns(&self) -> &[String] {
        &self.patterns
    }

    /// One text for the list, for the transform's definition of a metric that uses it:
    /// a change of `bots:` recomputes exactly those metrics.
    pub fn canonical(&self) -> String {
        format!("bots={:?}", self.patterns)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bots(list: &[&str]) -> Result<Bots, BotsError> {
        Bots::parse(&list.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>())
    }

    #[test]
    fn defaults_catch_apps_and_the_legacy_robots_only() {
        let b = Bots::default();
        assert!(b.is_bot("dependabot[bot]"));
        assert!(b.is_bot("K8S-CI-Robot"));
        assert!(b.is_bot("k8s-merge-robot"));
        assert!(!b.is_bot("k8s-ci-robot-fan"));
        assert!(!b.is_bot("alice"));
        assert!(!b.is_bot("botanist"));
        assert_eq!(b.patterns().len(), DEFAULT_BOTS.len());
    }

    #[test]
    fn patterns_match_whole_logins() {
        let b = bots(&["ci-.*", "robot"]).expect("valid");
        assert!(b.is_bot("ci-runner"));
        assert!(!b.is_bot("my-ci-runner"));
        assert!(!b.is_bot("robots"));
        let none = bots(&[]).expect("empty list");
        assert!(!none.is_bot("dependabot[bot]"));
    }

    #[test]
    fn invalid_patterns_are_named_with_their_index() {
        let e = bots(&["ok", "[bot"]).expect_err("unclosed class");
        assert_eq!(e.index, 1);
        assert!(
            e.to_string().contains("\"[bot\" is not a valid pattern"),
            "{e}"
        );
        let e = bots(&[" "]).expect_err("empty");
        assert_eq!(e.index, 0);
    }
}
