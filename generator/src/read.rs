//! Step 1: read config.yaml into a plain JSON value, keeping where every key and value came
//! from, so that every later error can name the file, line and column.
//!
//! YAML anchors, aliases and `<<` merge keys are resolved here (by serde-saphyr); a value
//! reached through an alias reports the place it was defined and the place it was used.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};
use serde_saphyr::Spanned;

pub use crate::diagnostics::Span;
use crate::diagnostics::{Diagnostic, Position};

/// A parsed config file: its JSON value and the position of every key and value.
#[derive(Debug)]
pub struct Document {
    /// The file as given on the command line, for messages.
    pub path: PathBuf,
    /// The whole file as JSON (what the schema validates).
    pub value: Value,
    /// The text as read, for positions inside embedded strings.
    pub source: String,
    /// The parsed tree with positions; walked only when a message needs a position, so a
    /// valid config pays nothing for them.
    root: Spanned<Node>,
}

impl Document {
    /// Where the value at a JSON pointer is written; falls back to the nearest parent.
    pub fn value_span(&self, pointer: &str) -> Span {
        self.lookup(pointer, false)
    }

    /// Where the key of the entry at a JSON pointer is written (for unknown-key errors);
    /// falls back to the value's own position.
    pub fn key_span(&self, pointer: &str) -> Span {
        self.lookup(pointer, true)
    }

    fn lookup(&self, pointer: &str, want_key: bool) -> Span {
        let mut node = &self.root;
        let mut span = span_of(node);
        let tokens: Vec<String> = pointer
            .split('/')
            .skip(1)
            .map(|t| t.replace("~1", "/").replace("~0", "~"))
            .collect();
        for (i, token) in tokens.iter().enumerate() {
            let last = i + 1 == tokens.len();
            let next = match &node.value {
                Node::Map(entries) => entries
                    .iter()
                    .find(|(k, _)| key_text(&k.value).as_deref() == Some(token.as_str()))
                    .map(|(k, v)| {
                        if last && want_key {
                            span = span_of(k);
                        }
                        v
                    }),
                Node::Seq(items) => token.parse::<usize>().ok().and_then(|i| items.get(i)),
                _ => None,
            };
            let Some(next) = next else { return span };
            node = next;
            if !(last && want_key) {
                span = span_of(node);
            }
        }
        span
    }

    /// A diagnostic at the value behind `pointer`.
    pub fn error_at(&self, pointer: &str, message: impl Into<String>) -> Diagnostic {
        Diagnostic::error(&self.path, self.value_span(pointer), pointer, message)
    }

    /// A diagnostic at the key of the entry behind `pointer`.
    pub fn error_at_key(&self, pointer: &str, message: impl Into<String>) -> Diagnostic {
        Diagnostic::error(&self.path, self.key_span(pointer), pointer, message)
    }

    /// A warning at the key of the entry behind `pointer`.
    pub fn warning_at_key(&self, pointer: &str, message: impl Into<String>) -> Diagnostic {
        Diagnostic::warning(&self.path, self.key_span(pointer), pointer, message)
    }
}

/// Stack for the YAML parser thread: deep enough for its nesting limit in a debug build.
const PARSER_STACK: usize = 64 * 1024 * 1024;

/// Parser limits: serde-saphyr's defaults guard against alias bombs and deep nesting; the
/// node and event budgets are raised so a config of thousands of repositories still parses.
fn parse_options() -> serde_saphyr::Options {
    let mut budget = serde_saphyr::Budget::default();
    budget.max_nodes = 20_000_000;
    budget.max_events = 40_000_000;
    let mut options = serde_saphyr::Options::default();
    options.budget = Some(budget);
    options
}

/// Reads and parses a config file. A missing file, invalid UTF-8 or invalid YAML is one
/// diagnostic with the best position the parser gives.
pub fn read_file(path: &Path) -> Result<Document, Vec<Diagnostic>> {
    let text = std::fs::read(path).map_err(|err| {
        vec![Diagnostic::plain(
            path,
            format!("cannot read the config file: {err}"),
        )]
    })?;
    let text = String::from_utf8(text).map_err(|err| {
        vec![Diagnostic::plain(
            path,
            format!(
                "the config file is not UTF-8 text (invalid byte at offset {})",
                err.utf8_error().valid_up_to()
            ),
        )]
    })?;
    parse(path, &text)
}

/// Parses YAML text already in memory (used by `diff --from git:REF` and by tests).
pub fn parse(path: &Path, text: &str) -> Result<Document, Vec<Diagnostic>> {
    if text.trim().is_empty() {
        return Err(vec![Diagnostic::plain(
            path,
            "the config file is empty; it needs at least a `projects:` map",
        )]);
    }
    // The parser recurses once per nesting level (up to its limit of about 256); give it a
    // stack that holds that depth in any build, whatever thread calls us.
    let parsed = std::thread::scope(|scope| {
        std::thread::Builder::new()
            .stack_size(PARSER_STACK)
            .spawn_scoped(scope, || {
                serde_saphyr::from_str_with_options::<Spanned<Node>>(text, parse_options())
            })
            .map(|handle| handle.join())
    });
    let parsed = match parsed {
        Ok(Ok(result)) => result,
        _ => {
            return Err(vec![Diagnostic::plain(
                path,
                "the YAML parser could not run (thread failure)",
            )]);
        }
    };
    let root: Spanned<Node> = parsed.map_err(|err| {
        let inner = err.without_snippet();
        let position = inner.location().map(|loc| Position {
            line: loc.line() as u32,
            column: loc.column() as u32,
        });
        let message = yaml_message(&inner.to_string());
        vec![match position {
            Some(at) => Diagnostic::error(
                path,
                Span {
                    defined: at,
                    used: at,
                },
                "",
                message,
            ),
            None => Diagnostic::plain(path, message),
        }]
    })?;
    let mut errors = Vec::new();
    let value = to_json(&root, path, &mut errors);
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(Document {
        path: path.to_owned(),
        value,
        source: text.to_owned(),
        root,
    })
}

/// Drops the parser's own "at line X column Y" tail: our prefix already says where.
fn yaml_message(raw: &str) -> String {
    let first = raw.lines().next().unwrap_or(raw).trim();
    let trimmed = match first.find(" at line ") {
        Some(i) => &first[..i],
        None => first,
    };
    if let Some(rest) = trimmed.strip_prefix("duplicate mapping key: ") {
        let key = rest
            .split(", set DuplicateKeyPolicy")
            .next()
            .unwrap_or(rest);
        return format!("duplicate key {key:?}: each key may appear once in a map");
    }
    format!("invalid YAML: {trimmed}")
}

fn span_of<T>(node: &Spanned<T>) -> Span {
    let pos = |loc: serde_saphyr::Location| Position {
        line: loc.line() as u32,
        column: loc.column() as u32,
    };
    Span {
        defined: pos(node.defined),
        used: pos(node.referenced),
    }
}

/// Escapes one JSON-pointer token (RFC 6901).
pub fn pointer_token(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

/// The text of a map key, for the key types YAML allows in a config.
fn key_text(key: &Node) -> Option<String> {
    match key {
        Node::Str(s) => Some(s.clone()),
        Node::Int(i) => Some(i.to_string()),
        Node::UInt(u) => Some(u.to_string()),
        Node::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn to_json(node: &Spanned<Node>, path: &Path, errors: &mut Vec<Diagnostic>) -> Value {
    match &node.value {
        Node::Null => Value::Null,
        Node::Bool(b) => Value::Bool(*b),
        Node::Int(i) => Value::Number((*i).into()),
        Node::UInt(u) => Value::Number((*u).into()),
        Node::Float(f) => Number::from_f64(*f).map_or(Value::Null, Value::Number),
        Node::Str(s) => Value::String(s.clone()),
        Node::Seq(items) => Value::Array(
            items
                .iter()
                .map(|item| to_json(item, path, errors))
                .collect(),
        ),
        Node::Map(entries) => {
            let mut map = Map::with_capacity(entries.len());
            for (key, value) in entries {
                match key_text(&key.value) {
                    Some(name) => {
                        map.insert(name, to_json(value, path, errors));
                    }
                    None => errors.push(Diagnostic::error(
                        path,
                        span_of(key),
                        "",
                        "a map key must be a plain string",
                    )),
                }
            }
            Value::Object(map)
        }
    }
}

/// One YAML node whose children carry their positions.
#[derive(Debug)]
enum Node {
    Null,
    Bool(bool),
    Int(i64),
    UInt(u64),
    Float(f64),
    Str(String),
    Seq(Vec<Spanned<Node>>),
    Map(Vec<(Spanned<Node>, Spanned<Node>)>),
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(NodeVisitor)
    }
}

struct NodeVisitor;

impl<'de> Visitor<'de> for NodeVisitor {
    type Value = Node;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any YAML value")
    }
    fn visit_unit<E: de::Error>(self) -> Result<Node, E> {
        Ok(Node::Null)
    }
    fn visit_none<E: de::Error>(self) -> Result<Node, E> {
        Ok(Node::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Node, D::Error> {
        Node::deserialize(d)
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Node, E> {
        Ok(Node::Bool(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Node, E> {
        Ok(Node::Int(v))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Node, E> {
        Ok(Node::UInt(v))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Node, E> {
        Ok(Node::Float(v))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Node, E> {
        Ok(Node::Str(v.to_owned()))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Node, E> {
        Ok(Node::Str(v))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Node, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Spanned<Node>>()? {
            items.push(item);
        }
        Ok(Node::Seq(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node, A::Error> {
        let mut entries = Vec::new();
        while let Some(key) = map.next_key::<Spanned<Node>>()? {
            let value = map.next_value::<Spanned<Node>>()?;
            entries.push((key, value));
        }
        Ok(Node::Map(entries))
    }
}
