//! Progress of long work (a fetcher backfill, a transform recompute): items done, rate and
//! time left. In a pod (stderr is not a terminal) it is a log line every ten seconds, and
//! only for work that lasts that long, so quiet rounds log nothing extra. On a terminal it
//! is one status line at the bottom, redrawn in place; log lines are printed above it.
//!
//! The fraction done is the caller's estimate: the fetcher walks lists in update order, so
//! how far its cursor has moved from the walk's start towards now is a free and steady
//! estimate; the transform counts its rows first.

use std::collections::BTreeMap;
use std::io::IsTerminal as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// How often a progress line is logged (`VELODROME_PROGRESS_EVERY_MS`, default 10 s).
fn log_every() -> Duration {
    static EVERY: OnceLock<Duration> = OnceLock::new();
    *EVERY.get_or_init(|| {
        std::env::var("VELODROME_PROGRESS_EVERY_MS")
            .ok()
            .and_then(|v| v.parse().ok())
            .map_or(Duration::from_secs(10), Duration::from_millis)
    })
}

/// Shortest time between two redraws of the terminal line.
const REDRAW_EVERY: Duration = Duration::from_millis(100);

/// The terminal status line: one entry per running task, drawn as one line.
#[derive(Default)]
struct Console {
    bars: BTreeMap<u64, String>,
    /// Whether the status line is on screen now (so a log line must clear it first).
    shown: bool,
}

fn console() -> &'static Mutex<Console> {
    static CONSOLE: OnceLock<Mutex<Console>> = OnceLock::new();
    CONSOLE.get_or_init(Mutex::default)
}

fn stderr_is_terminal() -> bool {
    static TTY: OnceLock<bool> = OnceLock::new();
    *TTY.get_or_init(|| std::io::stderr().is_terminal())
}

impl Console {
    fn line(&self) -> Option<String> {
        let mut bars = self.bars.values();
        let first = bars.next()?;
        let more = bars.count();
        Some(if more == 0 {
            first.clone()
        } else {
            format!("{first} (+{more} more)")
        })
    }

    fn clear(&mut self, out: &mut impl std::io::Write) {
        if self.shown {
            let _ = out.write_all(b"\r\x1b[2K");
            self.shown = false;
        }
    }

    fn draw(&mut self, out: &mut impl std::io::Write) {
        self.clear(out);
        if let Some(line) = self.line() {
            // A line wider than the terminal wraps, and `\r` would redraw only its last row.
            let width = std::env::var("COLUMNS")
                .ok()
                .and_then(|c| c.parse::<usize>().ok())
                .unwrap_or(100)
                .saturating_sub(1);
            let line: String = line.chars().take(width).collect();
            let _ = write!(out, "{line}");
            self.shown = true;
        }
        let _ = out.flush();
    }
}

/// The log writer for `tracing`: plain stderr, except that on a terminal a status line
/// being shown is cleared before the log line and drawn again after it.
#[derive(Debug, Clone, Copy, Default)]
pub struct LogWriter;

impl std::io::Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let mut stderr = std::io::stderr().lock();
        if !stderr_is_terminal() {
            stderr.write_all(buf)?;
            return Ok(buf.len());
        }
        let mut console = console().lock().unwrap_or_else(|e| e.into_inner());
        console.clear(&mut stderr);
        stderr.write_all(buf)?;
        console.draw(&mut stderr);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogWriter {
    type Writer = LogWriter;

    fn make_writer(&'a self) -> Self::Writer {
        LogWriter
    }
}

/// `1h02m`, `3m05s`, `42s`.
fn duration_text(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m{:02}s", s / 60, s % 60),
        _ => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
    }
}

/// One long task's progress. Dropping it takes its status line away.
#[derive(Debug)]
pub struct Progress {
    id: u64,
    task: String,
    started: Instant,
    next_log: Instant,
    next_draw: Instant,
    done: u64,
    logged: bool,
}

impl Progress {
    /// Starts tracking `task` (such as `kubernetes/kubernetes issues`).
    pub fn start(task: impl Into<String>) -> Self {
        static NEXT_ID: AtomicU64 = AtomicU64::new(0);
        let now = Instant::now();
        Progress {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            task: task.into(),
            started: now,
            next_log: now + log_every(),
            next_draw: now,
            done: 0,
            logged: false,
        }
    }

    /// Records that `done` items are finished in all, and the estimated `fraction` of the
    /// whole task (0 to 1) when one is known.
    pub fn advance(&mut self, done: u64, fraction: Option<f64>) {
        self.done = done;
        let now = Instant::now();
        let elapsed = now.duration_since(self.started);
        let rate = done as f64 / elapsed.as_secs_f64().max(0.001);
        let fraction = fraction
            .filter(|f| f.is_finite())
            .map(|f| f.clamp(0.0, 1.0));
        let eta = fraction
            .filter(|f| *f > 0.0)
            .map(|f| elapsed.mul_f64((1.0 - f) / f));
        if stderr_is_terminal() {
            if now >= self.next_draw {
                self.next_draw = now + REDRAW_EVERY;
                self.draw(rate, fraction, eta);
            }
        } else if now >= self.next_log {
            self.next_log = now + log_every();
            self.logged = true;
            tracing::info!(
                task = %self.task,
                done,
                rate_per_s = rate.round() as u64,
                percent = fraction.map(|f| (f * 1000.0).round() / 10.0),
                eta_s = eta.map(|d| d.as_secs()),
                "progress"
            );
        }
    }

    fn draw(&self, rate: f64, fraction: Option<f64>, eta: Option<Duration>) {
        const WIDTH: usize = 20;
        let bar = match fraction {
            Some(f) => {
                let filled = ((f * WIDTH as f64).round() as usize).min(WIDTH);
                format!(
                    "[{}{}] {:>3.0}%",
                    "#".repeat(filled),
                    "-".repeat(WIDTH - filled),
                    f * 100.0
                )
            }
            None => "[working]".to_owned(),
        };
        let eta = eta.map_or(String::new(), |d| format!(", {} left", duration_text(d)));
        let line = format!(
            "{} {bar} {} items, {}/s{eta}",
            self.task,
            self.done,
            rate.round() as u64
        );
        // Lock order everywhere: stderr, then the console (as in `LogWriter::write`).
        let mut stderr = std::io::stderr().lock();
        let mut console = console().lock().unwrap_or_else(|e| e.into_inner());
        console.bars.insert(self.id, line);
        console.draw(&mut stderr);
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        if stderr_is_terminal() {
            let mut stderr = std::io::stderr().lock();
            let mut console = console().lock().unwrap_or_else(|e| e.into_inner());
            if console.bars.remove(&self.id).is_some() {
                console.draw(&mut stderr);
            }
        } else if self.logged {
            // A task that reported progress also says when it is over.
            tracing::info!(
                task = %self.task,
                done = self.done,
                elapsed_s = self.started.elapsed().as_secs(),
                "progress: finished"
            );
        }
    }
}

/// The share of the way from `from` to `to` that `at` has covered (all in seconds), for
/// walks that move through time.
pub fn time_fraction(from: i64, at: i64, to: i64) -> Option<f64> {
    (to > from).then(|| (at - from) as f64 / (to - from) as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_fractions() {
        assert_eq!(duration_text(Duration::from_secs(42)), "42s");
        assert_eq!(duration_text(Duration::from_secs(185)), "3m05s");
        assert_eq!(duration_text(Duration::from_secs(3720)), "1h02m");
        assert_eq!(time_fraction(100, 150, 200), Some(0.5));
        assert_eq!(time_fraction(100, 150, 100), None);
    }

    #[test]
    fn the_status_line_names_one_task_and_counts_the_rest() {
        let mut console = Console::default();
        assert_eq!(console.line(), None);
        console.bars.insert(1, "a/b issues".into());
        console.bars.insert(2, "c/d issues".into());
        assert_eq!(console.line().as_deref(), Some("a/b issues (+1 more)"));
        let mut out = Vec::new();
        console.draw(&mut out);
        console.clear(&mut out);
        assert_eq!(out, b"a/b issues (+1 more)\r\x1b[2K");
    }
}
