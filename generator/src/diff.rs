//! `velogen diff`: what would change, object by object, between an older render (a file, a
//! folder written by `render -o`, another config, or config.yaml at a git revision) and the
//! current one. Both sides go through the same canonical serializer, so formatting and key
//! order never show as changes; objects are matched by kind, namespace and name.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use serde_json::Value;
use similar::{ChangeTag, TextDiff};

use crate::check::{self, Checked};

/// One side of a diff: canonical YAML and labels by object id, in output order.
#[derive(Debug, Default, Clone)]
pub struct Side {
    order: Vec<String>,
    objects: BTreeMap<String, (String, Labels)>,
}

/// metadata.labels of an object.
type Labels = BTreeMap<String, String>;

impl Side {
    /// Builds a side from checked objects (the current render, or an old config rendered).
    pub fn from_checked(objects: &[&Checked]) -> Result<Self, String> {
        let mut side = Self::default();
        for o in objects {
            let yaml = o
                .to_yaml()
                .map_err(|e| format!("cannot serialize {}: {e}", o.id()))?;
            side.insert(o.id(), yaml, o.labels.clone());
        }
        Ok(side)
    }

    /// Builds a side from rendered YAML text: one or more Kubernetes objects. Text that
    /// holds none (an empty file, a config of another tool, prose) is refused, because
    /// comparing with it would report every object as added.
    pub fn from_manifests(text: &str, origin: &Path) -> Result<Self, String> {
        let docs: Vec<Value> = serde_saphyr::from_multiple(text).map_err(|e| {
            format!(
                "{}: not valid YAML: {}",
                origin.display(),
                e.without_snippet()
            )
        })?;
        let mut side = Self::default();
        for (index, doc) in docs.into_iter().filter(|d| !d.is_null()).enumerate() {
            let (id, yaml) = canonical(&doc).map_err(|e| {
                format!(
                    "{}: document {}: {e}; not a rendered manifest",
                    origin.display(),
                    index + 1
                )
            })?;
            side.insert(id, yaml, check::labels_of(&doc));
        }
        if side.order.is_empty() {
            return Err(format!(
                "{}: holds no Kubernetes object; not a rendered manifest",
                origin.display()
            ));
        }
        Ok(side)
    }

    /// Adds the objects of another side (files of a folder).
    pub fn extend(&mut self, other: Side) {
        let Side { order, mut objects } = other;
        for id in order {
            if let Some((yaml, labels)) = objects.remove(&id) {
                self.insert(id, yaml, labels);
            }
        }
    }

    fn insert(&mut self, id: String, yaml: String, labels: Labels) {
        if self.objects.insert(id.clone(), (yaml, labels)).is_none() {
            self.order.push(id);
        }
    }

    /// Keeps only the objects whose labels satisfy `keep` (for `-l`, applied to both sides
    /// alike, so a removed object is shown only when the selector covers it).
    pub fn retain_labels(&mut self, keep: impl Fn(&Labels) -> bool) {
        self.objects.retain(|_, (_, labels)| keep(labels));
        let objects = &self.objects;
        self.order.retain(|id| objects.contains_key(id));
    }
}

/// Canonical form of one object from any source: known kinds through their typed model,
/// anything else as sorted JSON-style YAML. Secret values are masked here, before any
/// comparison or output can see them.
fn canonical(doc: &Value) -> Result<(String, String), String> {
    if !doc.is_object() {
        return Err("is not a mapping".to_owned());
    }
    let Some(kind) = doc.get("kind").and_then(Value::as_str) else {
        return Err("has no kind".to_owned());
    };
    if doc.get("apiVersion").and_then(Value::as_str).is_none() {
        return Err(format!("a {kind} document has no apiVersion"));
    }
    let name = doc
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("");
    let namespace = doc
        .pointer("/metadata/namespace")
        .and_then(Value::as_str)
        .unwrap_or("");
    if name.is_empty() {
        return Err(format!("a {kind} document has no metadata.name"));
    }
    let mut doc = doc.clone();
    if kind == "Secret" {
        mask_secret(&mut doc);
    }
    let yaml = match check::parse_lenient(&doc) {
        Some(o) => o.to_yaml().map_err(|e| e.to_string())?,
        None => serde_saphyr::to_string(&sorted(&doc)).map_err(|e| e.to_string())?,
    };
    Ok((format!("{kind}/{namespace}/{name}"), yaml))
}

fn sorted(v: &Value) -> Value {
    match v {
        Value::Object(m) => {
            let sorted: BTreeMap<&String, Value> = m.iter().map(|(k, v)| (k, sorted(v))).collect();
            Value::Object(sorted.into_iter().map(|(k, v)| (k.clone(), v)).collect())
        }
        Value::Array(a) => Value::Array(a.iter().map(sorted).collect()),
        other => other.clone(),
    }
}

/// Replaces every Secret value with a marker that still changes when the value does (a
/// short hash), so a diff shows *that* a secret changed, never what it is.
fn mask_secret(doc: &mut Value) {
    use sha2::{Digest, Sha256};
    for field in ["data", "stringData"] {
        if let Some(Value::Object(map)) = doc.get_mut(field) {
            for value in map.values_mut() {
                let digest = Sha256::digest(value.to_string().as_bytes());
                let short: String = digest.iter().take(4).map(|b| format!("{b:02x}")).collect();
                *value = Value::String(format!("(masked, sha256 {short}...)"));
            }
        }
    }
}

/// How a diff is printed.
#[derive(Debug, Clone, Copy)]
pub struct Style {
    /// ANSI colors on.
    pub color: bool,
}

/// The outcome of a diff: the text to print and the counts for the summary.
#[derive(Debug, Default)]
pub struct Report {
    /// Unified diffs, object by object.
    pub text: String,
    /// Objects only in the new side.
    pub added: usize,
    /// Objects only in the old side.
    pub removed: usize,
    /// Objects in both, with differences.
    pub changed: usize,
}

impl Report {
    /// True when anything differs.
    pub fn has_changes(&self) -> bool {
        self.added + self.removed + self.changed > 0
    }
}

/// Compares two sides object by object.
pub fn diff(old: &Side, new: &Side, style: Style) -> Report {
    let mut report = Report::default();
    let mut ids: Vec<&String> = new.order.iter().collect();
    ids.extend(old.order.iter().filter(|id| !new.objects.contains_key(*id)));
    for id in ids {
        let before = old.objects.get(id).map(|(yaml, _)| yaml.as_str());
        let after = new.objects.get(id).map(|(yaml, _)| yaml.as_str());
        if before == after {
            continue;
        }
        match (before, after) {
            (None, Some(_)) => report.added += 1,
            (Some(_), None) => report.removed += 1,
            _ => report.changed += 1,
        }
        let status = match (before, after) {
            (None, _) => "added",
            (_, None) => "removed",
            _ => "changed",
        };
        let _ = writeln!(
            report.text,
            "{}",
            paint(style, "1", &format!("# {id} ({status})"))
        );
        let text_diff = TextDiff::from_lines(before.unwrap_or(""), after.unwrap_or(""));
        let mut unified = text_diff.unified_diff();
        let unified = unified
            .context_radius(3)
            .header(&format!("old/{id}"), &format!("new/{id}"));
        for hunk in unified.iter_hunks() {
            let _ = writeln!(
                report.text,
                "{}",
                paint(style, "36", &hunk.header().to_string())
            );
            for change in hunk.iter_changes() {
                let (sign, color) = match change.tag() {
                    ChangeTag::Delete => ("-", "31"),
                    ChangeTag::Insert => ("+", "32"),
                    ChangeTag::Equal => (" ", ""),
                };
                let line = format!("{sign}{}", change.value().trim_end_matches('\n'));
                let _ = writeln!(
                    report.text,
                    "{}",
                    if color.is_empty() {
                        line
                    } else {
                        paint(style, color, &line)
                    }
                );
            }
        }
    }
    report
}

fn paint(style: Style, code: &str, text: &str) -> String {
    if style.color {
        format!("\x1b[{code}m{text}\x1b[0m")
    } else {
        text.to_owned()
    }
}
