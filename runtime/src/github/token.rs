//! GitHub tokens and the pool that spreads requests over them.
//!
//! A token is only ever turned into a sensitive header value; its `Debug` is redacted and it
//! has no `Display`, so it cannot reach a log line or an error message by accident.

use std::fmt;
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use reqwest::header::{HeaderMap, HeaderValue};

use super::GithubError;

/// A GitHub token. Debug prints `Token(<redacted>)`; there is deliberately no Display.
#[derive(Clone)]
pub struct Token {
    secret: Box<str>,
    /// Where it came from (the file path), shown in metrics and logs instead of the token.
    label: Box<str>,
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

impl Token {
    /// Wraps a token string (whitespace trimmed); empty is an error, never anonymous access.
    pub fn new(text: &str) -> Result<Self, GithubError> {
        let text = text.trim();
        if text.is_empty() || text.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(GithubError::Token(
                "token is empty or contains whitespace".into(),
            ));
        }
        Ok(Token {
            secret: text.into(),
            label: "token".into(),
        })
    }

    /// The name metrics and logs use for this token: the file it was read from. A file
    /// path is not a secret, and unlike the login it costs no request to learn.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// Reads one token from a file (as mounted from a Kubernetes Secret). The error names
    /// the file, never its content.
    pub fn from_file(path: &Path) -> Result<Self, GithubError> {
        let text = std::fs::read_to_string(path).map_err(|err| {
            GithubError::Token(format!("cannot read token file {}: {err}", path.display()))
        })?;
        let mut token = Self::new(&text).map_err(|_| {
            GithubError::Token(format!(
                "token file {} is empty or malformed",
                path.display()
            ))
        })?;
        token.label = path.display().to_string().into();
        Ok(token)
    }

    /// The `Authorization` header value, marked sensitive so HTTP layers never log it.
    pub fn header_value(&self) -> Result<HeaderValue, GithubError> {
        let mut value =
            HeaderValue::from_str(&format!("Bearer {}", self.secret)).map_err(|_| {
                GithubError::Token("token has characters not allowed in a header".into())
            })?;
        value.set_sensitive(true);
        Ok(value)
    }
}

/// What we last heard from GitHub about one token's primary rate limit.
#[derive(Debug, Clone, Copy, Default)]
struct Budget {
    remaining: Option<u64>,
    reset: Option<u64>,
}

/// GitHub's separate rate-limit budgets a token draws on: REST requests (`core`, 5,000
/// requests an hour) and GraphQL (`graphql`, 5,000 points an hour). Each is picked and
/// rested on its own, so a spent GraphQL budget never stops REST polling, nor the reverse.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resource {
    /// REST requests.
    Core,
    /// GraphQL points.
    Graphql,
}

impl Resource {
    fn slot(self) -> usize {
        match self {
            Resource::Core => 0,
            Resource::Graphql => 1,
        }
    }
}

/// The tokens of one process: requests go to the token with most remaining in the budget
/// they draw on, and when all are below the low-water mark the caller waits for the
/// earliest reset.
#[derive(Debug)]
pub struct TokenPool {
    tokens: Vec<Token>,
    budgets: Mutex<Vec<[Budget; 2]>>,
    low_water: u64,
}

fn now_epoch() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl TokenPool {
    /// A pool over `tokens`; a token with `low_water` or fewer requests left is rested.
    pub fn new(tokens: Vec<Token>, low_water: u64) -> Result<Self, GithubError> {
        if tokens.is_empty() {
            return Err(GithubError::Token("no GitHub token given".into()));
        }
        let budgets = Mutex::new(vec![[Budget::default(); 2]; tokens.len()]);
        Ok(TokenPool {
            tokens,
            budgets,
            low_water,
        })
    }

    /// Picks a token for a REST request: the one with most core requests remaining
    /// (unknown counts as full). Returns its index, or the time to wait when every token
    /// is at or below the low-water mark.
    pub fn pick(&self) -> Result<(usize, Token), Duration> {
        self.pick_for(Resource::Core)
    }

    /// [`Self::pick`] for the budget of `resource`.
    pub fn pick_for(&self, resource: Resource) -> Result<(usize, Token), Duration> {
        self.pick_at(resource, now_epoch())
    }

    fn pick_at(&self, resource: Resource, now: u64) -> Result<(usize, Token), Duration> {
        let slot = resource.slot();
        let mut all = self.budgets.lock().unwrap_or_else(|e| e.into_inner());
        let mut budgets: Vec<&mut Budget> = all.iter_mut().map(|b| &mut b[slot]).collect();
        for b in budgets.iter_mut() {
            if b.reset.is_some_and(|reset| reset <= now) {
                **b = Budget::default();
            }
        }
        let best = budgets
            .iter()
            .map(|b| **b)
            .enumerate()
            .max_by_key(|(i, b)| (b.remaining.unwrap_or(u64::MAX), std::cmp::Reverse(*i)));
        match best {
            Some((i, b)) if b.remaining.is_none_or(|r| r > self.low_water) => {
                Ok((i, self.tokens[i].clone()))
            }
            _ => {
                let earliest = budgets
                    .iter()
                    .filter_map(|b| b.reset)
                    .min()
                    .unwrap_or(now + 60);
                Err(Duration::from_secs(earliest.saturating_sub(now).max(1)))
            }
        }
    }

    /// Records the `x-ratelimit-*` headers of a response made with token `index`, in the
    /// budget `x-ratelimit-resource` names (`core` when absent; other budgets such as
    /// `search` are not ours to track).
    pub fn observe(&self, index: usize, headers: &HeaderMap) {
        let num = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
        };
        let resource = match headers
            .get("x-ratelimit-resource")
            .and_then(|v| v.to_str().ok())
        {
            None | Some("core") => Resource::Core,
            Some("graphql") => Resource::Graphql,
            Some(_) => return,
        };
        let (remaining, reset) = (num("x-ratelimit-remaining"), num("x-ratelimit-reset"));
        self.record(index, resource, remaining, reset);
    }

    /// Records what a response said about one budget of token `index` (GraphQL also tells
    /// it in the body's `rateLimit`).
    pub fn record(
        &self,
        index: usize,
        resource: Resource,
        remaining: Option<u64>,
        reset: Option<u64>,
    ) {
        if remaining.is_none() && reset.is_none() {
            return;
        }
        let mut budgets = self.budgets.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(b) = budgets.get_mut(index).map(|b| &mut b[resource.slot()]) {
            b.remaining = remaining.or(b.remaining);
            b.reset = reset.or(b.reset);
        }
    }

    /// Each token's label and the core requests it had left at the last response (`None`
    /// before its first), for `/metrics`.
    pub fn remaining(&self) -> Vec<(&str, Option<u64>)> {
        self.remaining_of(Resource::Core)
    }

    /// Each token's label and what it had left of `resource` at the last response.
    pub fn remaining_of(&self, resource: Resource) -> Vec<(&str, Option<u64>)> {
        let budgets = self.budgets.lock().unwrap_or_else(|e| e.into_inner());
        self.tokens
            .iter()
            .zip(budgets.iter())
            .map(|(t, b)| (t.label(), b[resource.slot()].remaining))
            .collect()
    }

    /// The label of token `index`.
    pub fn label(&self, index: usize) -> &str {
        self.tokens.get(index).map_or("", Token::label)
    }

    /// Marks one budget of a token as exhausted until `reset` (epoch seconds): a 403/429
    /// for REST, a `RATE_LIMITED` error for GraphQL.
    pub fn exhaust_of(&self, index: usize, resource: Resource, reset: Option<u64>) {
        let mut budgets = self.budgets.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(b) = budgets.get_mut(index).map(|b| &mut b[resource.slot()]) {
            b.remaining = Some(0);
            b.reset = reset.or(b.reset).or(Some(now_epoch() + 60));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_is_redacted() {
        let token = Token::new("ghp_supersecret123\n").unwrap();
        let shown = format!("{token:?} {:?}", vec![token.clone()]);
        assert!(!shown.contains("supersecret"), "{shown}");
        let pool = TokenPool::new(vec![token.clone()], 50).unwrap();
        assert!(!format!("{pool:?}").contains("supersecret"));
        let header = token.header_value().unwrap();
        assert!(header.is_sensitive());
        assert!(!format!("{header:?}").contains("supersecret"));
        assert!(Token::new("  ").is_err());
        let err = Token::from_file(Path::new("/nonexistent/token")).unwrap_err();
        assert!(err.to_string().contains("/nonexistent/token"));
    }

    #[test]
    fn picks_most_remaining_and_waits_when_all_low() {
        let pool = TokenPool::new(
            vec![
                Token::new("a").unwrap(),
                Token::new("b").unwrap(),
                Token::new("c").unwrap(),
            ],
            50,
        )
        .unwrap();
        let mut h = HeaderMap::new();
        let set = |h: &mut HeaderMap, rem: &str, reset: &str| {
            h.insert("x-ratelimit-remaining", HeaderValue::from_str(rem).unwrap());
            h.insert("x-ratelimit-reset", HeaderValue::from_str(reset).unwrap());
        };
        set(&mut h, "100", "1000");
        pool.observe(0, &h);
        set(&mut h, "4000", "1000");
        pool.observe(1, &h);
        set(&mut h, "10", "900");
        pool.observe(2, &h);
        assert_eq!(pool.pick_at(Resource::Core, 500).unwrap().0, 1);
        set(&mut h, "3", "1000");
        pool.observe(0, &h);
        pool.observe(1, &h);
        // every token low: wait for the earliest reset (900)
        assert_eq!(
            pool.pick_at(Resource::Core, 500).unwrap_err(),
            Duration::from_secs(400)
        );
        // the GraphQL budget is apart: still unknown, so every token is usable there
        assert_eq!(pool.pick_at(Resource::Graphql, 500).unwrap().0, 0);
        // after token 2's reset it is usable again
        assert_eq!(pool.pick_at(Resource::Core, 901).unwrap().0, 2);
        pool.exhaust_of(2, Resource::Core, Some(2000));
        assert_eq!(
            pool.pick_at(Resource::Core, 950).unwrap_err(),
            Duration::from_secs(50)
        );
        // a GraphQL response counts against the GraphQL budget only
        h.insert("x-ratelimit-resource", HeaderValue::from_static("graphql"));
        set(&mut h, "0", "3000");
        pool.observe(0, &h);
        pool.exhaust_of(1, Resource::Graphql, Some(3000));
        assert_eq!(pool.pick_at(Resource::Graphql, 950).unwrap().0, 2);
        assert_eq!(pool.remaining_of(Resource::Graphql)[0].1, Some(0));
        assert_eq!(pool.remaining()[0].1, Some(3));
    }
}
