//! What every mode shows an operator: log lines (text or JSON, on stderr) and, with
//! `--listen`, `/healthz` and `/livez` for the Deployment's probes and `/metrics` for Prometheus.
//!
//! One implementation for the three modes; each mode supplies a [`Probe`]. A few lines of
//! HTTP/1.1 on tokio rather than a web framework: two fixed GET routes do not justify the
//! build time. Nothing here ever prints a token.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::cli::LogFormat;

/// Installs the log subscriber. The level comes from `VELODROME_LOG` (or `RUST_LOG`),
/// default `info`; colors are off so log collectors get plain text.
pub fn init_logging(format: LogFormat) {
    let filter = std::env::var("VELODROME_LOG")
        .or_else(|_| std::env::var("RUST_LOG"))
        .unwrap_or_else(|_| "info".to_owned());
    let filter = tracing_subscriber::EnvFilter::try_new(&filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(crate::progress::LogWriter)
        .with_ansi(false);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}

/// What a mode reports on `--listen`.
pub trait Probe: Send + Sync + 'static {
    /// `/healthz`, the readiness probe: `Ok` once the mode has finished its first
    /// successful round; the reason otherwise (served as 503).
    fn ready(&self) -> Result<(), String>;
    /// `/livez`, the liveness probe: `Ok` unless the process is stuck and a restart would
    /// help. A long first round (a backfill, a recompute) is alive, just not ready.
    fn live(&self) -> Result<(), String> {
        Ok(())
    }
    /// The Prometheus text exposition of the mode's counters.
    fn metrics(&self) -> String;
}

/// Escapes a Prometheus label value (backslash, double quote, newline).
pub fn escape_label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Binds `addr` and serves `/healthz`, `/livez` and `/metrics` from `probe` until the process ends.
/// Binding fails before any work starts, so a wrong address is an immediate error. Port 0
/// picks a free port; the log line names the address actually bound, so whoever started the
/// process (a test, a sidecar) learns it without racing for a port.
pub async fn serve(addr: SocketAddr, probe: Arc<dyn Probe>) -> std::io::Result<()> {
    let listener = TcpListener::bind(addr).await?;
    let addr = listener.local_addr()?;
    tracing::info!(%addr, "serving /healthz and /metrics");
    tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else {
                continue;
            };
            let probe = probe.clone();
            tokio::spawn(async move {
                let mut buffer = [0u8; 2048];
                let mut filled = 0;
                // Read the request head, bounded in size and time: probes are tiny.
                let read = tokio::time::timeout(Duration::from_secs(5), async {
                    while filled < buffer.len() {
                        match socket.read(&mut buffer[filled..]).await {
                            Ok(0) | Err(_) => break,
                            Ok(n) => filled += n,
                        }
                        if buffer[..filled].windows(4).any(|w| w == b"\r\n\r\n") {
                            break;
                        }
                    }
                })
                .await;
                if read.is_err() {
                    return;
                }
                let head = String::from_utf8_lossy(&buffer[..filled]);
                let path = head.split_whitespace().nth(1).unwrap_or("");
                let path = path.split('?').next().unwrap_or(path);
                let (status, body, kind) = match path {
                    "/healthz" | "/livez" => {
                        let state = if path == "/healthz" {
                            probe.ready()
                        } else {
                            probe.live()
                        };
                        match state {
                            Ok(()) => ("200 OK", "ok\n".to_owned(), "text/plain"),
                            Err(why) => {
                                ("503 Service Unavailable", format!("{why}\n"), "text/plain")
                            }
                        }
                    }
                    "/metrics" => (
                        "200 OK",
                        probe.metrics(),
                        "text/plain; version=0.0.4; charset=utf-8",
                    ),
                    _ => ("404 Not Found", "not found\n".to_owned(), "text/plain"),
                };
                let response = format!(
                    "HTTP/1.1 {status}\r\nContent-Type: {kind}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = socket.write_all(response.as_bytes()).await;
                let _ = socket.shutdown().await;
            });
        }
    });
    Ok(())
}
