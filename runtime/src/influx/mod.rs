//! The InfluxDB layer shared by the transform and the token counter: bounded batches over
//! the v1 HTTP API (InfluxDB 1.x, and 2.x's v1 compatibility endpoint), with the statements
//! that remove points quoted properly.
//!
//! Why these rules:
//! - A batch has one precision, fixed when it is created: the influxdb crate takes the
//!   precision of a whole request from its first point, so a mixed batch would silently
//!   shift the others by a factor of 10^9.
//! - A batch has a maximum size, so a first run over years of history never builds one
//!   huge request (the original did, and InfluxDB refused it: spec 9.16).
//! - Statements that change data (`DROP SERIES`, `DELETE`) check the response body: the
//!   original ignored it and its unquoted `DROP SERIES FROM needs-rebase` did nothing.

// Parts of this layer (seconds, ping, queries, DELETE) serve the token counter and tests.
#![allow(dead_code)]

use std::time::Duration;

use influxdb::{Client, Query, QueryType, ReadQuery, Timestamp, ValidQuery, WriteQuery};

/// A failure talking to InfluxDB, with what was being done.
#[derive(Debug, thiserror::Error)]
pub enum InfluxError {
    /// A point of another precision was pushed into a batch.
    #[error("a batch holds points of one precision ({batch}); got a point in {point}")]
    MixedPrecision {
        /// The batch's precision.
        batch: &'static str,
        /// The rejected point's precision.
        point: &'static str,
    },
    /// A point could not be turned into line protocol (for example it has no field).
    #[error("invalid point: {0}")]
    Point(String),
    /// The server could not be reached or answered with an error.
    #[error("InfluxDB {action}: {message}")]
    Server {
        /// What was attempted (`write of 5000 points`, `DROP SERIES ...`).
        action: String,
        /// The error, without credentials.
        message: String,
    },
}

/// Timestamp unit of a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Precision {
    /// Whole seconds (token counter).
    Seconds,
    /// Nanoseconds (transform: a second plus a per-series offset, see transform docs).
    Nanoseconds,
}

impl Precision {
    fn name(self) -> &'static str {
        match self {
            Self::Seconds => "s",
            Self::Nanoseconds => "ns",
        }
    }

    /// The timestamp of `value` in this unit.
    pub fn timestamp(self, value: u128) -> Timestamp {
        match self {
            Self::Seconds => Timestamp::Seconds(value),
            Self::Nanoseconds => Timestamp::Nanoseconds(value),
        }
    }
}

fn precision_of(query: &WriteQuery) -> &'static str {
    match query.get_precision().as_str() {
        "s" => "s",
        "ns" => "ns",
        "ms" => "ms",
        "u" => "u",
        "m" => "m",
        _ => "h",
    }
}

/// A field value of a point.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field<'a> {
    /// An integer field (`42i` on the wire): every transform field but `author`.
    Int(i64),
    /// A string field.
    Str(&'a str),
}

/// Appends `text` with line-protocol escapes for measurements (`,` and space) or, with
/// `equals`, for tag keys, tag values and field keys (`,`, `=` and space too).
fn escape_name(out: &mut String, text: &str, equals: bool) {
    if !text
        .bytes()
        .any(|b| b == b',' || b == b' ' || (equals && b == b'='))
    {
        out.push_str(text);
        return;
    }
    for c in text.chars() {
        if c == ',' || c == ' ' || (equals && c == '=') {
            out.push('\\');
        }
        out.push(c);
    }
}

/// Points waiting to be written together: one precision, at most `capacity` points,
/// already serialised as line protocol.
///
/// Points are written straight into one text buffer: building an influxdb `WriteQuery`
/// per point cost about 7 us (regex escaping, a `String` per term), which capped the
/// transform at 150,000 events/s; the buffer costs a small fraction of that. The text
/// still travels through the influxdb client (see [`Influx::write`]).
#[derive(Debug)]
pub struct Batch {
    precision: Precision,
    capacity: usize,
    count: usize,
    text: String,
}

impl Batch {
    /// An empty batch of `precision` that is full at `capacity` points (at least 1).
    pub fn new(precision: Precision, capacity: usize) -> Self {
        let capacity = capacity.max(1);
        Self {
            precision,
            capacity,
            count: 0,
            text: String::with_capacity(capacity.min(10_000) * 80),
        }
    }

    /// The batch's precision, for building points.
    pub fn precision(&self) -> Precision {
        self.precision
    }

    /// Adds a point at `time` (in the batch's precision). A point needs a field.
    pub fn add(
        &mut self,
        measurement: &str,
        tags: &[(&str, &str)],
        fields: &[(&str, Field<'_>)],
        time: u64,
    ) -> Result<(), InfluxError> {
        if fields.is_empty() {
            return Err(InfluxError::Point(format!(
                "{measurement}: a point needs a field"
            )));
        }
        if measurement.is_empty() {
            return Err(InfluxError::Point("empty measurement name".to_owned()));
        }
        if !self.text.is_empty() {
            self.text.push('\n');
        }
        let out = &mut self.text;
        escape_name(out, measurement, false);
        for (key, value) in tags {
            out.push(',');
            escape_name(out, key, true);
            out.push('=');
            escape_name(out, value, true);
        }
        for (i, (key, value)) in fields.iter().enumerate() {
            out.push(if i == 0 { ' ' } else { ',' });
            escape_name(out, key, true);
            out.push('=');
            match value {
                Field::Int(v) => {
                    out.push_str(itoa::Buffer::new().format(*v));
                    out.push('i');
                }
                Field::Str(v) if !v.contains(['"', '\\']) => {
                    out.push('"');
                    out.push_str(v);
                    out.push('"');
                }
                Field::Str(v) => {
                    out.push('"');
                    for c in v.chars() {
                        if c == '"' || c == '\\' {
                            out.push('\\');
                        }
                        out.push(c);
                    }
                    out.push('"');
                }
            }
        }
        out.push(' ');
        out.push_str(itoa::Buffer::new().format(time));
        self.count += 1;
        Ok(())
    }

    /// Adds an influxdb-crate point; refuses one of another precision.
    pub fn push(&mut self, point: WriteQuery) -> Result<(), InfluxError> {
        let got = precision_of(&point);
        if got != self.precision.name() {
            return Err(InfluxError::MixedPrecision {
                batch: self.precision.name(),
                point: got,
            });
        }
        let line = point
            .build()
            .map_err(|err| InfluxError::Point(err.to_string()))?
            .get();
        if !self.text.is_empty() {
            self.text.push('\n');
        }
        self.text.push_str(&line);
        self.count += 1;
        Ok(())
    }

    /// True when the batch should be written before more points are added.
    pub fn is_full(&self) -> bool {
        self.count >= self.capacity
    }

    /// Number of points held.
    pub fn len(&self) -> usize {
        self.count
    }

    /// True when there is nothing to write.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The points as line protocol, one line per point (what `--dry-run` prints).
    pub fn line_protocol(&self) -> &str {
        &self.text
    }

    /// Empties the batch for reuse.
    pub fn clear(&mut self) {
        self.text.clear();
        self.count = 0;
    }
}

/// A batch as an influxdb-crate write request: its text and its one precision.
struct Lines<'a>(&'a Batch);

impl Query for Lines<'_> {
    fn build(&self) -> Result<ValidQuery, influxdb::Error> {
        Ok(ValidQuery::from(self.0.text.as_str()))
    }

    fn build_with_opts(&self, _use_v2: bool) -> Result<ValidQuery, influxdb::Error> {
        self.build()
    }

    fn get_type(&self) -> QueryType {
        QueryType::WriteQuery(self.0.precision.name().to_owned())
    }
}

/// Where and as whom to connect.
#[derive(Debug, Clone)]
pub struct InfluxConfig {
    /// Base URL, for example `http://influxdb:8086`.
    pub url: String,
    /// Database name.
    pub database: String,
    /// User, when authentication is on.
    pub user: Option<String>,
    /// Password of `user`.
    pub password: Option<String>,
}

/// A connection to one database.
#[derive(Debug, Clone)]
pub struct Influx {
    client: Client,
    database: String,
}

/// Attempts per request before giving up (transport errors and 5xx only).
const ATTEMPTS: u32 = 4;

impl Influx {
    /// A client for `config` (no request is made yet).
    pub fn new(config: &InfluxConfig) -> Self {
        // reqwest is built without a default TLS provider (see Cargo.toml): install ring
        // once, as the GitHub client does; a second install is a harmless no-op.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let url = config.url.trim_end_matches('/').to_owned();
        let mut client = Client::new(url, config.database.clone());
        if let Some(user) = &config.user {
            client = client.with_auth(user.clone(), config.password.clone().unwrap_or_default());
        }
        Self {
            client,
            database: config.database.clone(),
        }
    }

    /// The database points go to.
    pub fn database(&self) -> &str {
        &self.database
    }

    /// Checks the server answers `/ping`.
    pub async fn ping(&self) -> Result<(), InfluxError> {
        self.client
            .ping()
            .await
            .map(|_| ())
            .map_err(|err| server_error("ping", &err))
    }

    /// Creates the database if missing (`CREATE DATABASE` is idempotent in 1.x).
    pub async fn create_database(&self) -> Result<(), InfluxError> {
        let statement = format!("CREATE DATABASE {}", quote_ident(&self.database));
        self.execute(&statement).await
    }

    /// Writes a batch in one request (retrying transport errors and 5xx), then empties it.
    pub async fn write(&self, batch: &mut Batch) -> Result<(), InfluxError> {
        if batch.is_empty() {
            return Ok(());
        }
        let action = format!("write of {} points", batch.len());
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self.client.query(Lines(batch)).await {
                Ok(_) => break,
                Err(err) if attempt < ATTEMPTS && retryable(&err) => {
                    tracing::warn!(%action, attempt, error = %redact(&err), "retrying InfluxDB");
                    tokio::time::sleep(Duration::from_millis(250 << attempt)).await;
                }
                Err(err) => return Err(server_error(&action, &err)),
            }
        }
        batch.clear();
        Ok(())
    }

    /// Runs a statement that changes data or schema and fails if InfluxDB reports an error.
    pub async fn execute(&self, statement: &str) -> Result<(), InfluxError> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self.client.query(ReadQuery::new(statement)).await {
                Ok(_) => return Ok(()),
                Err(err) if attempt < ATTEMPTS && retryable(&err) => {
                    tokio::time::sleep(Duration::from_millis(250 << attempt)).await;
                }
                Err(err) => return Err(server_error(statement, &err)),
            }
        }
    }

    /// Runs a query and returns the raw JSON answer (tests and tools).
    pub async fn query(&self, statement: &str) -> Result<String, InfluxError> {
        self.client
            .query(ReadQuery::new(statement))
            .await
            .map_err(|err| server_error(statement, &err))
    }
}

fn retryable(err: &influxdb::Error) -> bool {
    match err {
        influxdb::Error::ConnectionError { .. } => true,
        influxdb::Error::ApiError(status) => *status >= 500,
        _ => false,
    }
}

/// The error text, with any `p=` password parameter of a URL removed.
fn redact(err: &influxdb::Error) -> String {
    let text = err.to_string();
    match text.find("p=") {
        Some(start) => {
            let end = text[start..]
                .find(['&', ' ', ')', '"'])
                .map_or(text.len(), |i| start + i);
            format!("{}p=<redacted>{}", &text[..start], &text[end..])
        }
        None => text,
    }
}

fn server_error(action: &str, err: &influxdb::Error) -> InfluxError {
    InfluxError::Server {
        action: action.to_owned(),
        message: redact(err),
    }
}

/// An InfluxQL identifier in double quotes (measurement names such as `needs-rebase`).
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('\\', "\\\\").replace('"', "\\\""))
}

/// An InfluxQL string literal in single quotes (tag values).
pub fn quote_string(value: &str) -> String {
    format!("'{}'", value.replace('\\', "\\\\").replace('\'', "\\'"))
}

/// `DROP SERIES FROM "m" WHERE "k" = 'v' AND ...`, tag conditions sorted by key (the
/// original's TestTagsToWhere), every name and value quoted.
pub fn drop_series(measurement: &str, tags: &[(&str, &str)]) -> String {
    format!(
        "DROP SERIES FROM {}{}",
        quote_ident(measurement),
        tags_to_where(tags)
    )
}

/// `DELETE FROM "m" WHERE "k" = 'v' AND time >= <ns>`: the points of one series from a
/// time on, so a recompute can replace a tail without a hole in older history.
pub fn delete_since(measurement: &str, tags: &[(&str, &str)], since_ns: i64) -> String {
    let mut condition = tags_to_where(tags);
    if condition.is_empty() {
        condition = format!(" WHERE time >= {since_ns}");
    } else {
        condition.push_str(&format!(" AND time >= {since_ns}"));
    }
    format!("DELETE FROM {}{condition}", quote_ident(measurement))
}

/// The WHERE clause of tag conditions, or "" without tags.
pub fn tags_to_where(tags: &[(&str, &str)]) -> String {
    if tags.is_empty() {
        return String::new();
    }
    let mut sorted = tags.to_vec();
    sorted.sort();
    let conditions: Vec<String> = sorted
        .iter()
        .map(|(k, v)| format!("{} = {}", quote_ident(k), quote_string(v)))
        .collect();
    format!(" WHERE {}", conditions.join(" AND "))
}

/// A point of `measurement` at `time` in `precision` (a helper so callers never build a
/// timestamp of the wrong unit by hand).
pub fn point(precision: Precision, time: u128, measurement: &str) -> WriteQuery {
    WriteQuery::new(precision.timestamp(time), measurement)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_to_where_sorts_and_quotes() {
        // TestTagsToWhere (spec 8.1), with identifiers quoted too.
        assert_eq!(tags_to_where(&[]), "");
        assert_eq!(
            tags_to_where(&[("key1", "value1")]),
            r#" WHERE "key1" = 'value1'"#
        );
        assert_eq!(
            tags_to_where(&[("key2", "value2"), ("key1", "value1")]),
            r#" WHERE "key1" = 'value1' AND "key2" = 'value2'"#
        );
        assert_eq!(
            drop_series("needs-rebase", &[("repository", "o/r")]),
            r#"DROP SERIES FROM "needs-rebase" WHERE "repository" = 'o/r'"#
        );
        assert_eq!(quote_string("it's"), r"'it\'s'");
        assert_eq!(quote_ident(r#"a"b"#), r#""a\"b""#);
        assert_eq!(
            delete_since("m", &[("repository", "o/r")], 5),
            r#"DELETE FROM "m" WHERE "repository" = 'o/r' AND time >= 5"#
        );
    }

    #[test]
    fn batches_refuse_mixed_precision_and_bound_size() {
        let mut batch = Batch::new(Precision::Nanoseconds, 2);
        batch
            .push(point(Precision::Nanoseconds, 1, "m").add_field("event", 1i64))
            .expect("same precision");
        let err = batch
            .push(point(Precision::Seconds, 1, "m").add_field("event", 1i64))
            .expect_err("mixed");
        assert!(matches!(err, InfluxError::MixedPrecision { .. }));
        assert!(!batch.is_full());
        batch
            .push(
                point(Precision::Nanoseconds, 2, "needs-rebase")
                    .add_tag("repository", "o/r")
                    .add_field("50%", 3i64)
                    .add_field("author", "a \"b\""),
            )
            .expect("push");
        assert!(batch.is_full());
        assert_eq!(
            batch.line_protocol(),
            "m event=1i 1\nneeds-rebase,repository=o/r 50%=3i,author=\"a \\\"b\\\"\" 2"
        );
        let mut fast = Batch::new(Precision::Nanoseconds, 10);
        fast.add("m", &[], &[("event", Field::Int(1))], 1)
            .expect("add");
        fast.add(
            "needs-rebase",
            &[("repository", "o/r")],
            &[("50%", Field::Int(3)), ("author", Field::Str("a \"b\""))],
            2,
        )
        .expect("add");
        assert_eq!(fast.line_protocol(), batch.line_protocol());
        fast.clear();
        fast.add("a b,c", &[("k=", "v w")], &[("f,", Field::Str("\\"))], 3)
            .expect("add");
        assert_eq!(fast.line_protocol(), "a\\ b\\,c,k\\==v\\ w f\\,=\"\\\\\" 3");
        assert!(fast.add("m", &[], &[], 1).is_err());
    }

    #[test]
    fn redacts_passwords() {
        let err = influxdb::Error::ConnectionError {
            error: "error sending request for url (http://h/write?db=x&p=secret&u=root)".into(),
        };
        let text = redact(&err);
        assert!(!text.contains("secret"), "{text}");
    }
}
