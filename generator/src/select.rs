//! kubectl's label selector syntax (`-l`), so `velogen render -l project=istio` picks what
//! `kubectl apply -l project=istio` would.

use std::collections::BTreeMap;

use thiserror::Error;

/// A selector that could not be parsed.
#[derive(Debug, Error, PartialEq, Eq)]
#[error("invalid label selector {selector:?}: {reason}")]
pub struct SelectorError {
    /// The selector as given.
    pub selector: String,
    /// What is wrong.
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Requirement {
    Equals(String, String),
    NotEquals(String, String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Exists(String),
    NotExists(String),
}

/// A parsed selector: every requirement must hold.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selector(Vec<Requirement>);

impl Selector {
    /// Parses `a=b,c!=d,e in (x,y),f notin (z),g,!h` (`==` works as `=`).
    pub fn parse(text: &str) -> Result<Self, SelectorError> {
        let err = |reason: &str| SelectorError {
            selector: text.to_owned(),
            reason: reason.to_owned(),
        };
        let mut out = Vec::new();
        for part in split_top_level(text) {
            let part = part.trim();
            if part.is_empty() {
                return Err(err(
                    "empty requirement (two commas in a row, or a trailing comma)",
                ));
            }
            let req = if let Some((k, v)) = part.split_once("!=") {
                Requirement::NotEquals(key(k, &err)?, value(v, &err)?)
            } else if let Some((k, v)) = part.split_once("==").or_else(|| part.split_once('=')) {
                Requirement::Equals(key(k, &err)?, value(v, &err)?)
            } else if let Some((k, set)) = split_set(part, " notin ") {
                Requirement::NotIn(key(k, &err)?, set_values(set, &err)?)
            } else if let Some((k, set)) = split_set(part, " in ") {
                Requirement::In(key(k, &err)?, set_values(set, &err)?)
            } else if let Some(k) = part.strip_prefix('!') {
                Requirement::NotExists(key(k, &err)?)
            } else {
                Requirement::Exists(key(part, &err)?)
            };
            out.push(req);
        }
        Ok(Self(out))
    }

    /// True when the labels satisfy every requirement.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.0.iter().all(|r| match r {
            Requirement::Equals(k, v) => labels.get(k) == Some(v),
            Requirement::NotEquals(k, v) => labels.get(k) != Some(v),
            Requirement::In(k, vs) => labels.get(k).is_some_and(|l| vs.contains(l)),
            Requirement::NotIn(k, vs) => labels.get(k).is_none_or(|l| !vs.contains(l)),
            Requirement::Exists(k) => labels.contains_key(k),
            Requirement::NotExists(k) => !labels.contains_key(k),
        })
    }
}

fn split_top_level(text: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut depth, mut start) = (0i32, 0);
    for (i, c) in text.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&text[start..]);
    parts
}

fn split_set<'a>(part: &'a str, op: &str) -> Option<(&'a str, &'a str)> {
    let i = part.find(op)?;
    Some((&part[..i], &part[i + op.len()..]))
}

fn key(text: &str, err: &dyn Fn(&str) -> SelectorError) -> Result<String, SelectorError> {
    let k = text.trim();
    let ok = !k.is_empty()
        && k.len() <= 316
        && k.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./".contains(c));
    if ok {
        Ok(k.to_owned())
    } else {
        Err(err(&format!("{k:?} is not a label key")))
    }
}

fn value(text: &str, err: &dyn Fn(&str) -> SelectorError) -> Result<String, SelectorError> {
    let v = text.trim();
    let ok = v.len() <= 63
        && v.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
    if ok {
        Ok(v.to_owned())
    } else {
        Err(err(&format!("{v:?} is not a label value")))
    }
}

fn set_values(
    text: &str,
    err: &dyn Fn(&str) -> SelectorError,
) -> Result<Vec<String>, SelectorError> {
    let inner = text
        .trim()
        .strip_prefix('(')
        .and_then(|t| t.strip_suffix(')'))
        .ok_or_else(|| err("a set must be written (a,b)"))?;
    inner.split(',').map(|v| value(v, err)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).into(), (*v).into()))
            .collect()
    }

    #[test]
    fn kubectl_forms() {
        let l = labels(&[("app", "fetcher"), ("project", "istio")]);
        for (sel, want) in [
            ("project=istio", true),
            ("project==istio", true),
            ("project!=istio", false),
            ("app=fetcher,project=istio", true),
            ("app=fetcher,project=kubernetes", false),
            ("app in (fetcher,transform)", true),
            ("app notin (fetcher)", false),
            ("project", true),
            ("!project", false),
            ("tier!=web", true),
        ] {
            assert_eq!(Selector::parse(sel).unwrap().matches(&l), want, "{sel}");
        }
        assert!(Selector::parse("a=b,").is_err());
        assert!(Selector::parse("a b=c").is_err());
        assert!(Selector::parse("a in b").is_err());
    }
}
