//! The shared GitHub layer: a token pool, rate-limit accounting from every response,
//! retries with backoff, `Link` pagination and conditional requests (ETag / 304) for REST,
//! and GraphQL queries (`graphql`, `queries`) on the same pool with their own budget.
//!
//! Plain reqwest and our own lenient models instead of octocrab: octocrab's models reject
//! real payloads (`actor: null` of deleted users fails a whole page), its ETag support is
//! partial, and it does not surface per-response rate-limit headers. The fetcher and the
//! token counter both build on [`Client`].

pub mod census;
pub mod client;
pub mod graphql;
pub mod link;
pub mod models;
pub mod node_id;
pub mod queries;
pub mod token;

pub use client::{Client, ClientConfig, Fetched};
pub use token::{Token, TokenPool};

/// A GitHub failure. Messages carry the URL (tokens travel in headers, never in URLs) and
/// never a token.
#[derive(Debug, thiserror::Error)]
pub enum GithubError {
    /// A token could not be read or used (the message names the file, not the content).
    #[error("{0}")]
    Token(String),
    /// GitHub answered with a status that retrying will not fix (404, 401, 422, ...).
    #[error("GET {url}: HTTP {status}: {message}")]
    Status {
        /// The URL requested.
        url: String,
        /// The HTTP status code.
        status: u16,
        /// GitHub's `message`, or the start of the body.
        message: String,
    },
    /// Retries ran out on 5xx answers, timeouts or broken connections.
    #[error("GET {url}: gave up after {attempts} attempts: {last}")]
    GaveUp {
        /// The URL requested.
        url: String,
        /// How many times it was tried.
        attempts: u32,
        /// The last failure seen.
        last: String,
    },
    /// The body is not the JSON we expect; nothing of it is used.
    #[error("GET {url}: cannot decode the response: {message}")]
    Decode {
        /// The URL requested.
        url: String,
        /// What was wrong (serde's message with line and column).
        message: String,
    },
    /// A stop was requested while waiting to retry; nothing of this request is used.
    #[error("GET {url}: stopped while waiting to retry")]
    Stopped {
        /// The URL requested.
        url: String,
    },
    /// The HTTP client could not be built.
    #[error("cannot build the HTTP client: {0}")]
    Setup(String),
    /// A GraphQL query failed for good: an error in its answer other than `NOT_FOUND`, an
    /// undecodable answer, or retries used up. Names the query, never its variables.
    #[error("GraphQL query {query}: {message}")]
    Graphql {
        /// The operation name.
        query: String,
        /// What went wrong.
        message: String,
    },
    /// GitHub gave up on a GraphQL query (502/504) or it got no answer in time: the caller
    /// asks for less at once.
    #[error("GraphQL query {query} timed out: {why}")]
    GraphqlTimeout {
        /// The operation name.
        query: String,
        /// The status or network error.
        why: String,
    },
}

impl GithubError {
    /// True when the resource is gone (deleted or transferred issue).
    pub fn is_gone(&self) -> bool {
        matches!(
            self,
            GithubError::Status {
                status: 404 | 410,
                ..
            }
        )
    }
}

/// Every GraphQL query the fetcher can send, for the test that validates them against
/// GitHub's published schema.
pub fn all_queries() -> Vec<queries::QueryText> {
    let mut all = queries::queries();
    all.extend(census::queries());
    all
}
