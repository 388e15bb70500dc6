//! A fake GitHub for the token counter on loopback: `/user` and `/rate_limit` for a set of
//! known tokens, each with its own login and rate-limit numbers; any other token gets
//! GitHub's 401 `{"message":"Bad credentials"}`. Every request is logged (path, status and
//! which known token it carried, by index, never the text) so tests can count requests and
//! prove the client does not spin.
//!
//! A minimal HTTP/1.1 server on tokio (GET only, keep-alive), like fake_github.rs.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// One resource of `/rate_limit`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    pub limit: i64,
    pub remaining: i64,
    pub reset: i64,
}

impl Limit {
    /// What GitHub reports as `used`.
    pub fn used(&self) -> i64 {
        self.limit - self.remaining
    }

    fn json(&self) -> serde_json::Value {
        json!({
            "limit": self.limit,
            "used": self.used(),
            "remaining": self.remaining,
            "reset": self.reset,
        })
    }
}

/// A token the fake accepts.
#[derive(Debug, Clone)]
pub struct Account {
    pub token: String,
    pub login: String,
    pub core: Limit,
    pub search: Limit,
    pub graphql: Limit,
    /// Answer `/rate_limit` with a truncated JSON body (a broken proxy or server).
    pub malformed: bool,
}

/// One request as the fake saw it.
#[derive(Debug, Clone)]
pub struct Request {
    pub path: String,
    pub status: u16,
    /// Index of the known account whose token came with the request.
    pub account: Option<usize>,
    pub at: Instant,
}

/// The running fake; the server task lives as long as the test's runtime.
#[derive(Debug, Clone)]
pub struct FakeTokens {
    /// Base URL, `http://127.0.0.1:PORT`.
    pub url: String,
    accounts: Arc<Vec<Account>>,
    log: Arc<Mutex<Vec<Request>>>,
}

impl FakeTokens {
    /// Starts the fake on a free loopback port.
    pub async fn start(accounts: Vec<Account>) -> FakeTokens {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind loopback");
        let url = format!("http://{}", listener.local_addr().expect("local addr"));
        let fake = FakeTokens {
            url,
            accounts: Arc::new(accounts),
            log: Arc::new(Mutex::new(Vec::new())),
        };
        let shared = fake.clone();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let _ = stream.set_nodelay(true);
                let fake = shared.clone();
                tokio::spawn(async move {
                    let _ = fake.serve(stream).await;
                });
            }
        });
        fake
    }

    /// Every request so far.
    pub fn log(&self) -> Vec<Request> {
        self.log.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Requests to `path` carrying account `account` (None: an unknown token).
    pub fn count(&self, path: &str, account: Option<usize>) -> usize {
        self.log()
            .iter()
            .filter(|r| r.path == path && r.account == account)
            .count()
    }

    fn route(&self, path: &str, authorization: Option<&str>) -> (u16, String, Option<usize>) {
        let account = authorization
            .and_then(|a| {
                a.strip_prefix("Bearer ")
                    .or_else(|| a.strip_prefix("token "))
            })
            .and_then(|t| self.accounts.iter().position(|a| a.token == t.trim()));
        let Some(index) = account else {
            let body = json!({
                "message": "Bad credentials",
                "documentation_url": "https://docs.github.com/rest",
                "status": "401"
            });
            return (401, body.to_string(), None);
        };
        let a = &self.accounts[index];
        if a.malformed && path == "/rate_limit" {
            return (
                200,
                r#"{"resources":{"core":{"limit":50"#.into(),
                Some(index),
            );
        }
        let (status, body) = match path {
            "/user" => (
                200,
                json!({"login": a.login, "id": 1000 + index, "type": "User"}),
            ),
            "/rate_limit" => (
                200,
                json!({
                    "resources": {
                        "core": a.core.json(),
                        "search": a.search.json(),
                        "graphql": a.graphql.json(),
                        "integration_manifest": {"limit": 5000, "used": 0, "remaining": 5000, "reset": a.core.reset},
                        "code_scanning_upload": {"limit": 1000, "used": 0, "remaining": 1000, "reset": a.core.reset}
                    },
                    "rate": a.core.json()
                }),
            ),
            _ => (404, json!({"message": "Not Found"})),
        };
        (status, body.to_string(), Some(index))
    }

    async fn serve(&self, mut stream: TcpStream) -> std::io::Result<()> {
        let mut buf = Vec::new();
        loop {
            let head_end = loop {
                if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                    break i;
                }
                let mut chunk = [0u8; 4096];
                let n = stream.read(&mut chunk).await?;
                if n == 0 {
                    return Ok(());
                }
                buf.extend_from_slice(&chunk[..n]);
            };
            let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
            buf.drain(..head_end + 4);
            let mut lines = head.split("\r\n");
            let target = lines
                .next()
                .and_then(|l| l.split(' ').nth(1))
                .unwrap_or("/")
                .to_owned();
            let authorization = lines
                .filter_map(|l| l.split_once(':'))
                .find(|(k, _)| k.trim().eq_ignore_ascii_case("authorization"))
                .map(|(_, v)| v.trim().to_owned());
            let path = target.split('?').next().unwrap_or("/").to_owned();
            let (status, body, account) = self.route(&path, authorization.as_deref());
            self.log
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(Request {
                    path,
                    status,
                    account,
                    at: Instant::now(),
                });
            let reason = match status {
                200 => "OK",
                401 => "Unauthorized",
                _ => "Not Found",
            };
            let mut head = format!(
                "HTTP/1.1 {status} {reason}\r\ncontent-type: application/json; charset=utf-8\r\ncontent-length: {}\r\n",
                body.len()
            );
            if let Some(a) = account.map(|i| &self.accounts[i]) {
                head.push_str(&format!(
                    "x-ratelimit-limit: {}\r\nx-ratelimit-remaining: {}\r\nx-ratelimit-used: {}\r\nx-ratelimit-reset: {}\r\nx-ratelimit-resource: core\r\n",
                    a.core.limit, a.core.remaining, a.core.used(), a.core.reset
                ));
            } else {
                head.push_str("x-ratelimit-limit: 60\r\nx-ratelimit-remaining: 59\r\nx-ratelimit-used: 1\r\nx-ratelimit-resource: core\r\n");
            }
            head.push_str("\r\n");
            stream.write_all(head.as_bytes()).await?;
            stream.write_all(body.as_bytes()).await?;
            stream.flush().await?;
        }
    }
}
