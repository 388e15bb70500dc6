//! Names that end up in Kubernetes objects, SQL rows and InfluxDB tags.
//!
//! Each type can only be built through its parser, so holding one proves the text is valid.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use thiserror::Error;

/// Why a name was refused; the message is written for the person editing config.yaml.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{0}")]
pub struct NameError(pub String);

/// A GitHub repository as `owner/name`, kept as written (GitHub names are case-insensitive,
/// so comparisons go through [`RepoName::key`]).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RepoName {
    full: String,
    slash: usize,
}

impl RepoName {
    /// Parses `owner/name` with GitHub's grammar: an owner of 1 to 39 letters, digits and
    /// single inner hyphens; a name of 1 to 100 letters, digits, `-`, `_` and `.`, not `.`
    /// or `..`.
    pub fn parse(text: &str) -> Result<Self, NameError> {
        let Some((owner, name)) = text.split_once('/') else {
            return Err(NameError(format!(
                "repository {text:?} must be written as owner/name"
            )));
        };
        if name.contains('/') {
            return Err(NameError(format!(
                "repository {text:?} has more than one '/': write it as owner/name"
            )));
        }
        let owner_ok = !owner.is_empty()
            && owner.len() <= 39
            && owner.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            && !owner.starts_with('-')
            && !owner.ends_with('-')
            && !owner.contains("--");
        if !owner_ok {
            return Err(NameError(format!(
                "repository owner {owner:?} is not a GitHub login (1-39 letters, digits or inner single hyphens)"
            )));
        }
        let name_ok = !name.is_empty()
            && name.len() <= 100
            && name != "."
            && name != ".."
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        if !name_ok {
            return Err(NameError(format!(
                "repository name {name:?} is not a GitHub repository name (1-100 letters, digits, '-', '_' or '.')"
            )));
        }
        Ok(Self {
            full: text.to_owned(),
            slash: owner.len(),
        })
    }

    /// The owner (organisation or user) part.
    pub fn owner(&self) -> &str {
        &self.full[..self.slash]
    }

    /// The repository part.
    pub fn name(&self) -> &str {
        &self.full[self.slash + 1..]
    }

    /// `owner/name` as written in the config.
    pub fn as_str(&self) -> &str {
        &self.full
    }

    /// The lower-case form stored in MySQL and used as the InfluxDB `repository` tag, as the
    /// original fetcher did, so two spellings of one repository are one repository.
    pub fn key(&self) -> String {
        self.full.to_ascii_lowercase()
    }
}

impl fmt::Display for RepoName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.full)
    }
}

impl std::str::FromStr for RepoName {
    type Err = NameError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl Serialize for RepoName {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.full)
    }
}

impl<'de> Deserialize<'de> for RepoName {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Self::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// The longest DNS-1123 label, and the longest Kubernetes label value.
pub const MAX_LABEL_LEN: usize = 63;

/// A DNS-1123 label: lower-case letters, digits and `-`, starting and ending with an
/// alphanumeric, at most 63 characters. Kubernetes object names of Services must be one,
/// and every such label is also a valid label value.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct DnsLabel(String);

impl DnsLabel {
    /// Checks `text` against the DNS-1123 label grammar.
    pub fn parse(text: &str) -> Result<Self, NameError> {
        if let Some(problem) = dns_label_problem(text) {
            return Err(NameError(format!("{text:?} {problem}")));
        }
        Ok(Self(text.to_owned()))
    }

    /// The label text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for DnsLabel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for DnsLabel {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Self::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// Says what is wrong with `text` as a DNS-1123 label, or `None` when it is one.
pub fn dns_label_problem(text: &str) -> Option<String> {
    if text.is_empty() {
        return Some("is empty; a name needs 1 to 63 characters".into());
    }
    if text.len() > MAX_LABEL_LEN {
        return Some(format!(
            "is {} characters long; Kubernetes allows at most {MAX_LABEL_LEN}",
            text.len()
        ));
    }
    if let Some(bad) = text
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-'))
    {
        return Some(format!(
            "contains {bad:?}; only lower-case letters, digits and '-' can form a Kubernetes name"
        ));
    }
    if text.starts_with('-') || text.ends_with('-') {
        return Some("must start and end with a letter or digit".into());
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repo_names() {
        let repo = RepoName::parse("Kubernetes/test-infra").unwrap();
        assert_eq!(repo.owner(), "Kubernetes");
        assert_eq!(repo.name(), "test-infra");
        assert_eq!(repo.key(), "kubernetes/test-infra");
        for bad in [
            "", "a", "a/", "/b", "a/b/c", "-a/b", "a--b/c", "a/..", "a/b c", "a_b/c",
        ] {
            assert!(RepoName::parse(bad).is_err(), "{bad:?} should be refused");
        }
        assert!(RepoName::parse("apache/beam-site").is_ok());
        assert!(RepoName::parse("a/b.c_d-e").is_ok());
    }

    #[test]
    fn dns_labels() {
        assert!(DnsLabel::parse("kubernetes").is_ok());
        assert!(DnsLabel::parse("a-1").is_ok());
        for bad in ["", "Yes", "a_b", "-a", "a-", &"x".repeat(64)] {
            assert!(DnsLabel::parse(bad).is_err(), "{bad:?} should be refused");
        }
        assert!(DnsLabel::parse(&"x".repeat(63)).is_ok());
    }
}
