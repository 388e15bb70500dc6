//! One GET with everything GitHub asks of a well-behaved client: the best token, timeouts,
//! rate-limit headers read on every response, `Retry-After` and secondary limits honoured,
//! 5xx and network failures retried with capped exponential backoff and jitter, and
//! conditional requests.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::{ACCEPT, AUTHORIZATION, HeaderMap, IF_NONE_MATCH, USER_AGENT};

use super::token::Resource;
use super::{GithubError, TokenPool, link};
use crate::shutdown::Shutdown;

/// Tunables of the client; `Default` is what production uses.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// API base URL without a trailing slash (`https://api.github.com`).
    pub base_url: String,
    /// Whole-request timeout, body included.
    pub timeout: Duration,
    /// Attempts per request for retryable failures (5xx, timeouts, broken connections).
    pub max_attempts: u32,
    /// First backoff delay; doubles per attempt.
    pub backoff_base: Duration,
    /// Largest backoff delay.
    pub backoff_cap: Duration,
    /// A token with this many requests left or fewer is rested until its reset.
    pub low_water: u64,
    /// Longest single wait for a rate limit (Retry-After or reset), so a bad header cannot
    /// park the process for days.
    pub max_wait: Duration,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            base_url: "https://api.github.com".into(),
            timeout: Duration::from_secs(30),
            max_attempts: 8,
            backoff_base: Duration::from_millis(250),
            backoff_cap: Duration::from_secs(60),
            low_water: 50,
            max_wait: Duration::from_secs(3700),
        }
    }
}

/// The outcome of a successful GET.
#[derive(Debug)]
pub enum Fetched {
    /// 304: the resource still matches the ETag we sent (free of rate limit).
    NotModified,
    /// 200 with its body, ETag and `rel="next"` link.
    Page {
        /// Raw JSON body.
        body: Vec<u8>,
        /// The `ETag` header, to send back as `If-None-Match`.
        etag: Option<String>,
        /// The next page, from the `Link` header.
        next: Option<String>,
        /// The number of the last page, from the `Link` header (how long a walk is).
        last_page: Option<u64>,
    },
}

/// Counters for logs, `/metrics` and benchmarks.
#[derive(Debug, Default)]
pub struct Stats {
    /// Retries after a failure or a rate limit.
    pub retries: AtomicU64,
    /// GraphQL points spent, as each answer's `rateLimit.cost` says.
    pub graphql_points: AtomicU64,
    /// GraphQL queries answered (any status).
    pub graphql_queries: AtomicU64,
    /// Answers per (token index, status); status `error` is a request that got no answer
    /// (timeout, refused or broken connection). Token `None`: a link to another origin.
    by_status: Mutex<BTreeMap<(Option<usize>, String), u64>>,
}

impl Stats {
    pub(crate) fn record(&self, token: Option<usize>, status: &str) {
        let mut counts = self.by_status.lock().unwrap_or_else(|e| e.into_inner());
        *counts.entry((token, status.to_owned())).or_insert(0) += 1;
    }

    /// Requests sent, retries included, and of those the ones `status` answered (every
    /// token together).
    pub fn requests(&self, status: Option<&str>) -> u64 {
        let counts = self.by_status.lock().unwrap_or_else(|e| e.into_inner());
        counts
            .iter()
            .filter(|((_, s), _)| status.is_none_or(|wanted| s == wanted))
            .map(|(_, n)| n)
            .sum()
    }
}

/// A GitHub REST client over a pool of tokens.
#[derive(Debug)]
pub struct Client {
    pub(crate) http: reqwest::Client,
    pub(crate) pool: TokenPool,
    pub(crate) config: ClientConfig,
    /// Request counters.
    pub stats: Stats,
    /// Cuts retry and rate-limit waits short so a stop is not held up by a timer.
    pub(crate) shutdown: Shutdown,
}

/// What one try of a request came to.
pub(crate) enum Attempt {
    Done(Fetched),
    Retry { wait: Duration, why: String },
    Fail(GithubError),
}

impl Client {
    /// Builds a client. Installs rustls' ring provider (we build reqwest without one to
    /// avoid compiling aws-lc).
    pub fn new(config: ClientConfig, pool: TokenPool) -> Result<Self, GithubError> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .timeout(config.timeout)
            .connect_timeout(config.timeout.min(Duration::from_secs(10)))
            .build()
            .map_err(|e| GithubError::Setup(e.to_string()))?;
        let mut config = config;
        config.base_url = config.base_url.trim_end_matches('/').to_owned();
        Ok(Client {
            http,
            pool,
            config,
            stats: Stats::default(),
            shutdown: Shutdown::never(),
        })
    }

    /// Makes waits (backoff, Retry-After, rate-limit resets) end early with
    /// [`GithubError::Stopped`] when `shutdown` is requested.
    pub fn stopping_on(mut self, shutdown: Shutdown) -> Self {
        self.shutdown = shutdown;
        self
    }

    /// The Prometheus text of the client's counters: requests by status and token, retries,
    /// and the core requests each token has left. Tokens appear by label (file path), never
    /// by value.
    pub fn metrics(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "# HELP velodrome_github_requests_total GitHub answers by HTTP status (error: no answer) and token.\n\
             # TYPE velodrome_github_requests_total counter"
        );
        let counts = self
            .stats
            .by_status
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        for ((token, status), n) in counts {
            let token = token.map_or("none", |i| self.pool.label(i));
            let _ = writeln!(
                out,
                "velodrome_github_requests_total{{status=\"{status}\",token=\"{}\"}} {n}",
                crate::observe::escape_label(token)
            );
        }
        let _ = writeln!(
            out,
            "# HELP velodrome_github_retries_total GitHub requests retried after a failure or a rate limit.\n\
             # TYPE velodrome_github_retries_total counter\n\
             velodrome_github_retries_total {}",
            self.stats.retries.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP velodrome_github_rate_limit_remaining Core requests left per token, from the last response.\n\
             # TYPE velodrome_github_rate_limit_remaining gauge"
        );
        for (token, remaining) in self.pool.remaining() {
            if let Some(remaining) = remaining {
                let _ = writeln!(
                    out,
                    "velodrome_github_rate_limit_remaining{{token=\"{}\"}} {remaining}",
                    crate::observe::escape_label(token)
                );
            }
        }
        let _ = writeln!(
            out,
            "# HELP velodrome_github_graphql_points_total GraphQL points spent (rateLimit.cost of each answer).\n\
             # TYPE velodrome_github_graphql_points_total counter\n\
             velodrome_github_graphql_points_total {}",
            self.stats.graphql_points.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP velodrome_github_graphql_remaining GraphQL points left per token, from the last answer.\n\
             # TYPE velodrome_github_graphql_remaining gauge"
        );
        for (token, remaining) in self.pool.remaining_of(Resource::Graphql) {
            if let Some(remaining) = remaining {
                let _ = writeln!(
                    out,
                    "velodrome_github_graphql_remaining{{token=\"{}\"}} {remaining}",
                    crate::observe::escape_label(token)
                );
            }
        }
        out
    }

    /// The absolute URL of an API path such as `/repos/o/r/issues`.
    pub fn url(&self, path_and_query: &str) -> String {
        format!("{}{}", self.config.base_url, path_and_query)
    }

    /// True when `url` points at the configured API, so it may carry a token. Links from
    /// elsewhere are followed without one.
    fn same_origin(&self, url: &str) -> bool {
        let base = &self.config.base_url;
        url.starts_with(base.as_str()) && url[base.len()..].starts_with(['/', '?'])
    }

    /// GETs `url`, sending `If-None-Match` when an ETag is given, retrying as GitHub's
    /// guidelines ask. Only a final answer comes back: 200, 304 or an error.
    pub async fn get(&self, url: &str, etag: Option<&str>) -> Result<Fetched, GithubError> {
        let mut failures = 0u32;
        let mut limited = 0u32;
        loop {
            match self.attempt(url, etag, failures, limited).await {
                Attempt::Done(fetched) => return Ok(fetched),
                Attempt::Fail(err) => return Err(err),
                Attempt::Retry { wait, why } => {
                    self.stats.retries.fetch_add(1, Ordering::Relaxed);
                    if why.starts_with("rate limit") {
                        limited += 1;
                        if limited > self.config.max_attempts {
                            return Err(GithubError::GaveUp {
                                url: url.into(),
                                attempts: limited,
                                last: why,
                            });
                        }
                    } else {
                        failures += 1;
                        if failures >= self.config.max_attempts {
                            return Err(GithubError::GaveUp {
                                url: url.into(),
                                attempts: failures,
                                last: why,
                            });
                        }
                    }
                    tracing::warn!(url, wait_ms = wait.as_millis() as u64, reason = %why, "retrying GitHub request");
                    if !self.shutdown.sleep(wait).await {
                        return Err(GithubError::Stopped { url: url.into() });
                    }
                }
            }
        }
    }

    pub(crate) fn backoff(&self, failures: u32) -> Duration {
        let exp = self
            .config
            .backoff_base
            .saturating_mul(1u32 << failures.min(16));
        let capped = exp.min(self.config.backoff_cap);
        // "Equal jitter": half fixed, half random, so retries of many clients spread out.
        let half = capped / 2;
        half + half.mul_f64(fastrand::f64())
    }

    async fn attempt(&self, url: &str, etag: Option<&str>, failures: u32, limited: u32) -> Attempt {
        let authorized = self.same_origin(url);
        let (index, token) = if authorized {
            match self.pool.pick() {
                Ok(picked) => (Some(picked.0), Some(picked.1)),
                Err(wait) => {
                    let wait = wait.min(self.config.max_wait);
                    tracing::warn!(
                        wait_s = wait.as_secs(),
                        "every token is low on rate limit; waiting for the earliest reset"
                    );
                    if !self.shutdown.sleep(wait).await {
                        return Attempt::Fail(GithubError::Stopped { url: url.into() });
                    }
                    return Attempt::Retry {
                        wait: Duration::ZERO,
                        why: "rate limit: all tokens low".into(),
                    };
                }
            }
        } else {
            (None, None)
        };
        let mut request = self
            .http
            .get(url)
            .header(ACCEPT, "application/vnd.github+json")
            .header("x-github-api-version", "2022-11-28")
            .header(USER_AGENT, concat!("velodrome/", env!("CARGO_PKG_VERSION")));
        if let Some(token) = &token {
            match token.header_value() {
                Ok(value) => request = request.header(AUTHORIZATION, value),
                Err(err) => return Attempt::Fail(err),
            }
        }
        if let Some(etag) = etag {
            request = request.header(IF_NONE_MATCH, etag);
        }
        let response = match request.send().await {
            Ok(response) => response,
            Err(err) => {
                self.stats.record(index, "error");
                return Attempt::Retry {
                    wait: self.backoff(failures),
                    why: describe(&err),
                };
            }
        };
        let status = response.status();
        self.stats.record(index, status.as_str());
        let headers = response.headers().clone();
        if let Some(index) = index {
            self.pool.observe(index, &headers);
        }
        tracing::debug!(
            url,
            status = status.as_u16(),
            remaining = header_str(&headers, "x-ratelimit-remaining"),
            "GitHub response"
        );
        if status == StatusCode::NOT_MODIFIED {
            return Attempt::Done(Fetched::NotModified);
        }
        let body = match response.bytes().await {
            Ok(body) => body.to_vec(),
            Err(err) => {
                return Attempt::Retry {
                    wait: self.backoff(failures),
                    why: format!("reading body: {}", describe(&err)),
                };
            }
        };
        if status.is_success() {
            let links = header_str(&headers, "link");
            let next = links.and_then(link::next_url);
            let last_page = links
                .and_then(|h| link::find_rel(h, "last"))
                .and_then(|u| link::page_number(&u));
            let etag = header_str(&headers, "etag").map(str::to_owned);
            return Attempt::Done(Fetched::Page {
                body,
                etag,
                next,
                last_page,
            });
        }
        let message = error_message(&body);
        if let Some(retry) =
            self.rate_limited(status, &headers, &message, index, Resource::Core, limited)
        {
            return retry;
        }
        if status.is_server_error() {
            return Attempt::Retry {
                wait: self.backoff(failures),
                why: format!("HTTP {}", status.as_u16()),
            };
        }
        Attempt::Fail(GithubError::Status {
            url: url.into(),
            status: status.as_u16(),
            message,
        })
    }
}

/// `Retry-After` in seconds: either delay-seconds or an HTTP-date (RFC 9110, section
/// 10.2.3). A date is measured against the response's own `Date` header when it has one,
/// so a skewed local clock does not stretch or cut the wait.
impl Client {
    /// The retry a 403/429 asks for, if it is a rate limit: `Retry-After` (secondary
    /// limits, either budget), a spent primary budget (`x-ratelimit-remaining: 0`: the
    /// token rests until its reset and another one is picked), or a secondary limit
    /// without a header (at least a minute, growing). `None`: a real refusal.
    pub(crate) fn rate_limited(
        &self,
        status: StatusCode,
        headers: &HeaderMap,
        message: &str,
        index: Option<usize>,
        resource: Resource,
        limited: u32,
    ) -> Option<Attempt> {
        if status != StatusCode::FORBIDDEN && status != StatusCode::TOO_MANY_REQUESTS {
            return None;
        }
        let retry_after = header_str(headers, "retry-after")
            .and_then(|v| retry_after_secs(v, header_str(headers, "date")));
        let remaining =
            header_str(headers, "x-ratelimit-remaining").and_then(|v| v.trim().parse::<u64>().ok());
        let reset =
            header_str(headers, "x-ratelimit-reset").and_then(|v| v.trim().parse::<u64>().ok());
        if let Some(secs) = retry_after {
            return Some(Attempt::Retry {
                wait: Duration::from_secs(secs).min(self.config.max_wait),
                why: format!("rate limit (Retry-After {secs}s): {message}"),
            });
        }
        if remaining == Some(0) {
            if let Some(index) = index {
                self.pool.exhaust_of(index, resource, reset);
            }
            return Some(Attempt::Retry {
                wait: Duration::ZERO,
                why: format!("rate limit (primary, token exhausted): {message}"),
            });
        }
        if message.to_ascii_lowercase().contains("rate limit") {
            // Secondary limit without Retry-After: at least a minute, growing.
            let wait = Duration::from_secs(60u64.saturating_mul(1 << limited.min(5)))
                .min(self.config.max_wait);
            return Some(Attempt::Retry {
                wait,
                why: format!("rate limit (secondary): {message}"),
            });
        }
        None
    }
}

fn retry_after_secs(value: &str, date: Option<&str>) -> Option<u64> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(secs);
    }
    let at = parse_http_date(value)?;
    let now = date.and_then(parse_http_date).unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64)
    });
    // A date already past still waits a second, so retries never fire back to back.
    Some(at.saturating_sub(now).max(1) as u64)
}

/// Epoch seconds of an IMF-fixdate such as `Wed, 21 Oct 2015 07:28:00 GMT`, the only
/// HTTP-date form a server may send.
fn parse_http_date(text: &str) -> Option<i64> {
    let parts: Vec<&str> = text.split_whitespace().collect();
    let [_weekday, day, month, year, clock, "GMT"] = parts.as_slice() else {
        return None;
    };
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let month = MONTHS.iter().position(|m| m == month)? as i64 + 1;
    let day: i64 = day.parse().ok().filter(|d| (1..=31).contains(d))?;
    let year: i64 = year.parse().ok().filter(|y| (1970..=9999).contains(y))?;
    let mut hms = clock.split(':').map(|p| p.parse::<i64>().ok());
    let (h, mi, s) = (hms.next()??, hms.next()??, hms.next()??);
    if hms.next().is_some() || h > 23 || mi > 59 || s > 60 {
        return None;
    }
    Some(crate::db::UtcTime::from_parts(year, month, day, h, mi, s).0)
}

pub(crate) fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// reqwest's error chain in one line (its Display alone hides the cause).
pub(crate) fn describe(err: &reqwest::Error) -> String {
    let mut text = err.to_string();
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// GitHub's `{"message": ...}`, or the start of the body.
pub(crate) fn error_message(body: &[u8]) -> String {
    #[derive(serde::Deserialize)]
    struct Message {
        message: String,
    }
    match serde_json::from_slice::<Message>(body) {
        Ok(m) => m.message,
        Err(_) => String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_takes_seconds_or_an_http_date() {
        assert_eq!(retry_after_secs(" 120 ", None), Some(120));
        assert_eq!(
            parse_http_date("Wed, 21 Oct 2015 07:28:00 GMT"),
            Some(1_445_412_480)
        );
        assert_eq!(
            retry_after_secs(
                "Wed, 21 Oct 2015 07:28:00 GMT",
                Some("Wed, 21 Oct 2015 07:26:30 GMT")
            ),
            Some(90)
        );
        // A date already past means "in a second", not a negative or huge wait.
        assert_eq!(
            retry_after_secs(
                "Wed, 21 Oct 2015 07:28:00 GMT",
                Some("Wed, 21 Oct 2015 08:00:00 GMT")
            ),
            Some(1)
        );
        for bad in [
            "soon",
            "Wed, 21 Oct 2015 07:28:00 UTC",
            "Wed, 32 Oct 2015 07:28:00 GMT",
            "Wed, 21 Foo 2015 07:28:00 GMT",
            "Wed, 21 Oct 2015 07:28 GMT",
            "Wed, 21 Oct 99999999999999 07:28:00 GMT",
            "-5",
        ] {
            assert_eq!(retry_after_secs(bad, None), None, "{bad}");
        }
    }
}
