//! Child processes a test starts and then talks to (influxd, velodrome in loop mode),
//! watched through their own output instead of the clock.
//!
//! A test waits for the line in which the child says it is ready (influxd's "Listening on
//! HTTP", velodrome's "serving /healthz"), which also carries the port it bound: children
//! bind port 0, so two tests can never race for a port. A child that exits before the line
//! arrives fails the wait at once, and every failure shows the tail of the child's log.
//! The only clock is a last-resort limit against a child that hangs without exiting.

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How long a wait may last before the child is considered hung. Generous on purpose: a
/// wait ends as soon as its event happens, and this only bounds a child that never answers.
pub const HANG_LIMIT: Duration = Duration::from_secs(180);

/// Lines of the log shown when a wait fails.
const TAIL_LINES: usize = 40;

/// What the reader threads collected.
#[derive(Default)]
struct Output {
    text: String,
    /// Pipes still open (stdout and stderr each count one).
    open: usize,
}

/// A running child whose stdout and stderr are collected line by line; killed on drop.
pub struct Watched {
    child: Child,
    name: String,
    output: Arc<Mutex<Output>>,
    changed: tokio::sync::watch::Sender<u64>,
}

impl Watched {
    /// Starts `command` with both output streams captured. `name` labels failures.
    pub fn spawn(command: &mut Command, name: &str) -> Self {
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|err| panic!("cannot start {name}: {err}"));
        let output = Arc::new(Mutex::new(Output {
            text: String::new(),
            open: 2,
        }));
        let (changed, _) = tokio::sync::watch::channel(0u64);
        let pipes: [Box<dyn Read + Send>; 2] = [
            Box::new(child.stdout.take().expect("stdout piped")),
            Box::new(child.stderr.take().expect("stderr piped")),
        ];
        for pipe in pipes {
            let output = output.clone();
            let changed = changed.clone();
            std::thread::spawn(move || {
                let mut reader = BufReader::new(pipe);
                let mut line = Vec::new();
                loop {
                    line.clear();
                    let read = reader.read_until(b'\n', &mut line).unwrap_or(0);
                    let mut out = output.lock().unwrap_or_else(|e| e.into_inner());
                    if read == 0 {
                        out.open -= 1;
                    } else {
                        out.text.push_str(&String::from_utf8_lossy(&line));
                        if !line.ends_with(b"\n") {
                            out.text.push('\n');
                        }
                    }
                    drop(out);
                    changed.send_modify(|n| *n += 1);
                    if read == 0 {
                        return;
                    }
                }
            });
        }
        Self {
            child,
            name: name.to_owned(),
            output,
            changed,
        }
    }

    /// The process id (for signals).
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// Everything the child has printed so far, stdout and stderr interleaved by line.
    pub fn log(&self) -> String {
        self.output
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .text
            .clone()
    }

    /// The last lines of the log, for failure messages.
    pub fn tail(&self) -> String {
        let log = self.log();
        let lines: Vec<&str> = log.lines().collect();
        let start = lines.len().saturating_sub(TAIL_LINES);
        lines[start..].join("\n")
    }

    /// Waits until `find` returns something for the log so far (called again on each new
    /// line). `Err` with the reason and the log tail when the child closes its output (it
    /// exited) first, or when [`HANG_LIMIT`] passes.
    pub async fn try_wait_for_log<T>(
        &mut self,
        what: &str,
        find: impl Fn(&str) -> Option<T>,
    ) -> Result<T, String> {
        let mut changes = self.changed.subscribe();
        let limit = tokio::time::Instant::now() + HANG_LIMIT;
        loop {
            changes.borrow_and_update();
            let closed = {
                let out = self.output.lock().unwrap_or_else(|e| e.into_inner());
                if let Some(found) = find(&out.text) {
                    return Ok(found);
                }
                out.open == 0
            };
            if closed {
                let status = self
                    .child
                    .wait()
                    .map_or("unknown".to_owned(), |s| s.to_string());
                return Err(format!(
                    "{} exited ({status}) before {what}; its log ends:\n{}",
                    self.name,
                    self.tail()
                ));
            }
            if tokio::time::timeout_at(limit, changes.changed())
                .await
                .is_err()
            {
                return Err(format!(
                    "{} printed no {what} within {HANG_LIMIT:?} and is still running; its log ends:\n{}",
                    self.name,
                    self.tail()
                ));
            }
        }
    }

    /// Waits for the first line for which `find` returns something.
    pub async fn try_wait_for<T>(
        &mut self,
        what: &str,
        find: impl Fn(&str) -> Option<T>,
    ) -> Result<T, String> {
        self.try_wait_for_log(what, |log| log.lines().find_map(&find))
            .await
    }

    /// [`Self::try_wait_for`], failing the test on `Err`.
    pub async fn wait_for<T>(&mut self, what: &str, find: impl Fn(&str) -> Option<T>) -> T {
        match self.try_wait_for(what, find).await {
            Ok(found) => found,
            Err(why) => panic!("{why}"),
        }
    }

    /// Waits until `count` lines contain `needle` (the n-th round done, say), failing the
    /// test if the child exits or hangs first.
    pub async fn wait_for_lines(&mut self, needle: &str, count: usize) {
        let what = format!("{count} lines with {needle:?}");
        let found = self
            .try_wait_for_log(&what, |log| {
                (log.lines().filter(|l| l.contains(needle)).count() >= count).then_some(())
            })
            .await;
        if let Err(why) = found {
            panic!("{why}");
        }
    }

    /// How many lines of the log so far contain `needle`.
    pub fn count_lines(&self, needle: &str) -> usize {
        self.log().lines().filter(|l| l.contains(needle)).count()
    }

    /// Waits for the address velodrome's `--listen 127.0.0.1:0` bound, from its log line.
    pub async fn listening_addr(&mut self) -> String {
        self.wait_for("its /healthz address", |line| {
            line.contains("serving /healthz")
                .then(|| loopback_addr(line))
                .flatten()
        })
        .await
    }

    /// Waits for the child to exit (its output closes, then its status is read), failing
    /// the test with the log tail when it hangs past [`HANG_LIMIT`].
    pub async fn wait_exit(&mut self) -> ExitStatus {
        let mut changes = self.changed.subscribe();
        let limit = tokio::time::Instant::now() + HANG_LIMIT;
        loop {
            changes.borrow_and_update();
            let open = self.output.lock().unwrap_or_else(|e| e.into_inner()).open;
            if open == 0 {
                return self.child.wait().expect("wait for the child");
            }
            if tokio::time::timeout_at(limit, changes.changed())
                .await
                .is_err()
            {
                panic!(
                    "{} did not exit within {HANG_LIMIT:?}; its log ends:\n{}",
                    self.name,
                    self.tail()
                );
            }
        }
    }
}

impl Drop for Watched {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The first `127.0.0.1:PORT` in `line`.
pub fn loopback_addr(line: &str) -> Option<String> {
    let start = line.find("127.0.0.1:")?;
    let rest = &line[start + "127.0.0.1:".len()..];
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    (!digits.is_empty()).then(|| format!("127.0.0.1:{digits}"))
}

/// Seconds since the epoch now (for time ranges of queries, never for waiting).
pub fn now_seconds() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// What a finished run left: its exit code and its log (stderr).
pub struct Run {
    /// The exit code (`None` when a signal ended it).
    pub code: Option<i32>,
    /// Everything it printed on stderr.
    pub stderr: String,
}

/// Runs `cmd` to its end off the async runtime (the fakes it talks to live on it), and
/// fails the test if `secret` (a token) appears in anything it printed.
pub async fn run_keeping(mut cmd: std::process::Command, secret: &str) -> Run {
    let out = tokio::task::spawn_blocking(move || cmd.output())
        .await
        .expect("join")
        .expect("run velodrome");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!stderr.contains(secret), "the token leaked:\n{stderr}");
    assert!(
        !String::from_utf8_lossy(&out.stdout).contains(secret),
        "the token leaked on stdout"
    );
    Run {
        code: out.status.code(),
        stderr,
    }
}
