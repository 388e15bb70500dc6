//! GraphQL over the same client and token pool as REST, with GitHub's GraphQL rules:
//!
//! - the endpoint follows `--github-url`: `https://api.github.com` -> `/graphql`, GitHub
//!   Enterprise `https://HOST/api/v3` -> `https://HOST/api/graphql`;
//! - its own budget per token (`x-ratelimit-resource: graphql`, and the `rateLimit` every
//!   query asks for): tokens are picked by their GraphQL points left;
//! - errors arrive with HTTP 200: `RATE_LIMITED` rests the token until its reset and the
//!   query is sent again; `NOT_FOUND` is handed to the caller with the alias it concerns;
//!   any other error fails the query, named;
//! - a 502/504 (GitHub gave up on a slow query, which still costs points) or no answer in
//!   time comes back as [`GithubError::GraphqlTimeout`] at once, so the caller can halve
//!   its batch instead of sending the same heavy query again;
//! - secondary limits, `Retry-After` and other 5xx as for REST.

use std::sync::atomic::Ordering;
use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, USER_AGENT};
use serde::Deserialize;

use super::client::{Attempt, describe, error_message, header_str};
use super::queries::RateLimit;
use super::token::Resource;
use super::{Client, GithubError};

/// A successful answer: its `data`, the `NOT_FOUND` errors, and what it cost.
#[derive(Debug)]
pub struct Answer {
    /// The `data` object.
    pub data: serde_json::Value,
    /// Nodes that could not be resolved (deleted or transferred issues).
    pub not_found: Vec<NotFound>,
    /// Points charged (`rateLimit.cost`), when the query asked.
    pub cost: Option<u64>,
}

/// One `NOT_FOUND` error.
#[derive(Debug, Clone)]
pub struct NotFound {
    /// The alias (first element of the error's `path`), such as `n3`.
    pub alias: Option<String>,
    /// GitHub's message.
    pub message: String,
}

#[derive(Deserialize)]
struct Envelope {
    #[serde(default)]
    data: Option<serde_json::Value>,
    #[serde(default)]
    errors: Vec<ErrorItem>,
}

#[derive(Deserialize)]
struct ErrorItem {
    #[serde(default, rename = "type")]
    kind: Option<String>,
    #[serde(default)]
    message: String,
    #[serde(default)]
    path: Vec<serde_json::Value>,
}

impl Client {
    /// The GraphQL endpoint of the configured API.
    pub fn graphql_url(&self) -> String {
        let base = &self.config.base_url;
        match base.strip_suffix("/api/v3") {
            Some(host) => format!("{host}/api/graphql"),
            None => format!("{base}/graphql"),
        }
    }

    /// Sends query `name` (`text` with `variables`) and returns its answer, after waiting
    /// out rate limits and retrying what a retry can fix (see the module documentation).
    pub async fn graphql(
        &self,
        name: &str,
        text: &str,
        variables: &serde_json::Value,
    ) -> Result<Answer, GithubError> {
        let url = self.graphql_url();
        let payload = serde_json::json!({ "query": text, "variables": variables });
        let payload = serde_json::to_vec(&payload).map_err(|e| GithubError::Graphql {
            query: name.into(),
            message: format!("cannot encode the request: {e}"),
        })?;
        let (mut failures, mut limited) = (0u32, 0u32);
        loop {
            let (why, wait) = match self
                .graphql_attempt(name, &url, &payload, failures, limited)
                .await
            {
                Try::Done(answer) => return Ok(answer),
                Try::Fail(err) => return Err(err),
                Try::Retry { wait, why } => (why, wait),
            };
            self.stats.retries.fetch_add(1, Ordering::Relaxed);
            let counter = if why.starts_with("rate limit") {
                &mut limited
            } else {
                &mut failures
            };
            *counter += 1;
            if *counter > self.config.max_attempts {
                return Err(GithubError::Graphql {
                    query: name.into(),
                    message: format!("gave up after {} attempts: {why}", *counter),
                });
            }
            tracing::warn!(query = name, wait_ms = wait.as_millis() as u64, reason = %why, "retrying GraphQL query");
            if !self.shutdown.sleep(wait).await {
                return Err(GithubError::Stopped { url });
            }
        }
    }

    /// One try of a query.
    async fn graphql_attempt(
        &self,
        name: &str,
        url: &str,
        payload: &[u8],
        failures: u32,
        limited: u32,
    ) -> Try {
        let (index, token) = match self.pool.pick_for(Resource::Graphql) {
            Ok(picked) => picked,
            Err(wait) => {
                let wait = wait.min(self.config.max_wait);
                tracing::warn!(
                    query = name,
                    wait_s = wait.as_secs(),
                    "every token is low on GraphQL points; waiting for the earliest reset"
                );
                if !self.shutdown.sleep(wait).await {
                    return Try::Fail(GithubError::Stopped { url: url.into() });
                }
                return Try::Retry {
                    wait: Duration::ZERO,
                    why: "rate limit: all tokens low on GraphQL points".into(),
                };
            }
        };
        let auth = match token.header_value() {
            Ok(value) => value,
            Err(err) => return Try::Fail(err),
        };
        let request = self
            .http
            .post(url)
            .header(ACCEPT, "application/json")
            .header(CONTENT_TYPE, "application/json")
            .header(USER_AGENT, concat!("velodrome/", env!("CARGO_PKG_VERSION")))
            .header(AUTHORIZATION, auth)
            .body(payload.to_vec());
        self.stats.graphql_queries.fetch_add(1, Ordering::Relaxed);
        let timeout = |why: String| {
            Try::Fail(GithubError::GraphqlTimeout {
                query: name.into(),
                why,
            })
        };
        let response = match request.send().await {
            Ok(response) => response,
            Err(err) => {
                self.stats.record(Some(index), "error");
                if err.is_timeout() {
                    return timeout(describe(&err));
                }
                return Try::Retry {
                    wait: self.backoff(failures),
                    why: describe(&err),
                };
            }
        };
        let status = response.status();
        self.stats.record(Some(index), status.as_str());
        let headers = response.headers().clone();
        self.pool.observe(index, &headers);
        if status == StatusCode::BAD_GATEWAY || status == StatusCode::GATEWAY_TIMEOUT {
            return timeout(format!("HTTP {}", status.as_u16()));
        }
        let body = match response.bytes().await {
            Ok(body) => body.to_vec(),
            Err(err) if err.is_timeout() => return timeout(describe(&err)),
            Err(err) => {
                return Try::Retry {
                    wait: self.backoff(failures),
                    why: format!("reading body: {}", describe(&err)),
                };
            }
        };
        if status != StatusCode::OK {
            let message = error_message(&body);
            if let Some(Attempt::Retry { wait, why }) = self.rate_limited(
                status,
                &headers,
                &message,
                Some(index),
                Resource::Graphql,
                limited,
            ) {
                return Try::Retry { wait, why };
            }
            if status.is_server_error() {
                return Try::Retry {
                    wait: self.backoff(failures),
                    why: format!("HTTP {}", status.as_u16()),
                };
            }
            return Try::Fail(GithubError::Graphql {
                query: name.into(),
                message: format!("HTTP {}: {message}", status.as_u16()),
            });
        }
        let envelope: Envelope = match serde_json::from_slice(&body) {
            Ok(envelope) => envelope,
            Err(err) => {
                tracing::warn!(query = name, error = %err, "malformed GraphQL answer; sending the query again");
                return Try::Retry {
                    wait: self.backoff(failures),
                    why: format!("cannot decode the answer: {err}"),
                };
            }
        };
        let rate = envelope
            .data
            .as_ref()
            .and_then(|d| d.get("rateLimit"))
            .and_then(|r| serde_json::from_value::<RateLimit>(r.clone()).ok());
        if let Some(rate) = &rate {
            self.stats
                .graphql_points
                .fetch_add(rate.cost, Ordering::Relaxed);
            self.pool.record(
                index,
                Resource::Graphql,
                Some(rate.remaining),
                u64::try_from(rate.reset_at.0).ok(),
            );
        }
        if envelope
            .errors
            .iter()
            .any(|e| e.kind.as_deref() == Some("RATE_LIMITED"))
        {
            let reset = header_str(&headers, "x-ratelimit-reset")
                .and_then(|v| v.trim().parse::<u64>().ok())
                .or_else(|| rate.as_ref().and_then(|r| u64::try_from(r.reset_at.0).ok()));
            self.pool.exhaust_of(index, Resource::Graphql, reset);
            return Try::Retry {
                wait: Duration::ZERO,
                why: "rate limit (GraphQL RATE_LIMITED): waiting for the token's reset".into(),
            };
        }
        let mut not_found = Vec::new();
        let mut other = Vec::new();
        for e in envelope.errors {
            if e.kind.as_deref() == Some("NOT_FOUND") {
                not_found.push(NotFound {
                    alias: e.path.first().and_then(|p| p.as_str()).map(str::to_owned),
                    message: e.message,
                });
            } else {
                other.push(match e.kind {
                    Some(kind) => format!("{kind}: {}", e.message),
                    None => e.message,
                });
            }
        }
        if !other.is_empty() {
            return Try::Fail(GithubError::Graphql {
                query: name.into(),
                message: other.join("; "),
            });
        }
        let Some(data) = envelope.data.filter(|d| !d.is_null()) else {
            return Try::Fail(GithubError::Graphql {
                query: name.into(),
                message: "answer without data or errors".into(),
            });
        };
        Try::Done(Answer {
            data,
            not_found,
            cost: rate.map(|r| r.cost),
        })
    }
}

/// What one try of a query came to.
enum Try {
    Done(Answer),
    Retry { wait: Duration, why: String },
    Fail(GithubError),
}
