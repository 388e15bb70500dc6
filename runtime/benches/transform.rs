//! Transform throughput: `cargo bench -p velodrome --bench transform [-- EVENTS] [MODE]`.
//!
//! Feeds a synthetic Kubernetes-like history (100,000 issues and pull requests, 1,000,000
//! events and comments by default, many in the same second) through the Kubernetes metric
//! set of the bundled config.yaml, on one thread, twice: its `count` metrics only (what the
//! set held before `duration` existed), then the whole set. Prints events per CPU-second
//! and the process's peak resident memory. The input is generated in small chunks so the
//! memory figure is the engine's, not the input's. Not a timed test: numbers are printed,
//! never asserted.
//!
//! MODE `--whole` runs the whole set alone (for profiling), `--per-metric` each metric
//! alone, and `--digest` prints a hash of the whole set's line protocol instead of timing
//! it: a change made for speed must leave the digest as it was.

use std::time::{Duration, Instant};

use velodrome::influx;
use velodrome::transform::{Computation, Item, Key, Kind, Shape, add_point};
use velodrome_model::bots::Bots;
use velodrome_model::metric::{Marks, MetricSpec};

/// The Kubernetes metric set, read from the bundled config.yaml (`metric-sets.kubernetes`)
/// so the benchmark runs exactly what is deployed: (name, plugin, args).
fn kubernetes_metrics() -> Vec<(String, String, Vec<String>)> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../config.yaml");
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let config: serde_json::Value =
        serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"));
    let set = config["metric-sets"]["kubernetes"]
        .as_object()
        .unwrap_or_else(|| panic!("{path}: no metric-sets.kubernetes"));
    set.iter()
        .map(|(name, metric)| {
            let args = metric["args"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|a| a.as_str().map(str::to_owned))
                .collect();
            let plugin = metric["plugin"].as_str().unwrap_or("count").to_owned();
            (name.clone(), plugin, args)
        })
        .collect()
}

const USERS: [&str; 8] = [
    "alice",
    "bob",
    "carol",
    "dave",
    "erin",
    "k8s-ci-robot",
    "k8s-merge-robot",
    "frank",
];
const LABELS: [&str; 5] = ["lgtm", "approved", "needs-rebase", "kind/bug", "size/M"];
const BODIES: [&str; 5] = [
    "/lgtm",
    "/approve",
    "@k8s-bot gce e2e test this",
    "Thanks, this looks reasonable to me but please add a test.",
    "ping",
];

/// A small xorshift generator: the bench must not depend on the machine's randomness.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Issue facts the generator needs to emit plausible rows.
struct Issue {
    is_pr: bool,
    user: &'static str,
    merged: bool,
}

/// Generates the history in time order, `chunk` items at a time.
struct History {
    rng: Rng,
    issues: Vec<Issue>,
    issue_target: usize,
    events_left: usize,
    time: i64,
    next_id: i64,
}

impl History {
    /// The same history every run: `events` events and comments over a tenth as many issues.
    fn new(events: usize) -> Self {
        Self {
            rng: Rng(0x2545_f491_4f6c_dd1d),
            issues: Vec::new(),
            issue_target: events / 10,
            events_left: events,
            time: 1_400_000_000,
            next_id: 0,
        }
    }

    fn fill(&mut self, out: &mut Vec<Item>, chunk: usize) {
        out.clear();
        while out.len() < chunk && (self.events_left > 0 || self.issues.len() < self.issue_target) {
            // About 1 second per item on average, in bursts: many share a second.
            if self.rng.below(3) == 0 {
                self.time += self.rng.below(4) as i64;
            }
            let open_issue = self.issues.len() < self.issue_target
                && (self.events_left == 0 || self.rng.below(11) == 0 || self.issues.len() < 100);
            self.next_id += 1;
            if open_issue {
                let number = self.issues.len() as i64 + 1;
                let issue = Issue {
                    is_pr: self.rng.below(10) < 6,
                    user: USERS[self.rng.below(USERS.len() as u64) as usize],
                    merged: false,
                };
                out.push(Item {
                    key: Key {
                        time: self.time,
                        kind: Kind::Opened,
                        id: number,
                    },
                    issue: number,
                    is_pr: issue.is_pr,
                    issue_user: issue.user.to_owned(),
                    event: "opened".to_owned(),
                    label: None,
                    actor: Some(issue.user.to_owned()),
                    body: String::new(),
                    marks: Marks::default(),
                    author_is_bot: false,
                    actor_is_bot: false,
                });
                self.issues.push(issue);
                continue;
            }
            self.events_left -= 1;
            // Recent issues are the busy ones.
            let recent = (self.issues.len() as u64).min(5_000);
            let index = self.issues.len() - 1 - self.rng.below(recent) as usize;
            let number = index as i64 + 1;
            let actor = USERS[self.rng.below(USERS.len() as u64) as usize];
            let roll = self.rng.below(100);
            let issue = &mut self.issues[index];
            let (kind, event, label, body) = match roll {
                0..=44 => (
                    Kind::Comment,
                    "commented",
                    None,
                    BODIES[(roll % 5) as usize],
                ),
                45..=74 => (
                    Kind::Event,
                    if roll.is_multiple_of(3) {
                        "unlabeled"
                    } else {
                        "labeled"
                    },
                    Some(LABELS[(roll % 5) as usize]),
                    "",
                ),
                75..=84 => (
                    Kind::Event,
                    if roll.is_multiple_of(2) {
                        "closed"
                    } else {
                        "reopened"
                    },
                    None,
                    "",
                ),
                85..=89 if issue.is_pr && !issue.merged => {
                    issue.merged = true;
                    (Kind::Event, "merged", None, "")
                }
                _ => (Kind::Event, "referenced", None, ""),
            };
            out.push(Item {
                key: Key {
                    time: self.time,
                    kind,
                    id: self.next_id,
                },
                issue: number,
                is_pr: issue.is_pr,
                issue_user: issue.user.to_owned(),
                event: event.to_owned(),
                label: label.map(str::to_owned),
                actor: Some(actor.to_owned()),
                body: body.to_owned(),
                // GitHub writes `closed` with `merged`; here a close is never a merge.
                marks: Marks {
                    responded: false,
                    unmerged: issue.is_pr && event == "closed",
                },
                author_is_bot: false,
                actor_is_bot: false,
            });
        }
    }
}

/// CPU time of this thread in nanoseconds (first field of schedstat): the machine is
/// shared, so "per core" is measured in CPU time, not wall time.
fn thread_cpu_ns() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|v| v.parse().ok()))
        .unwrap_or(0)
}

fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

fn main() {
    let events: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let all: Vec<(String, MetricSpec, Shape)> = kubernetes_metrics()
        .into_iter()
        .map(|(name, plugin, args)| {
            assert!(!args.is_empty(), "{name}: no args");
            match MetricSpec::parse(&plugin, &args) {
                Ok(spec) => {
                    let fields = Shape::of(&spec);
                    (name, spec, fields)
                }
                Err(err) => panic!("{name}: {err}"),
            }
        })
        .collect();
    let counts: Vec<(String, MetricSpec, Shape)> = all
        .iter()
        .filter(|(_, spec, _)| spec.count().is_some())
        .cloned()
        .collect();
    let before = peak_rss_kib().unwrap_or(0);
    if std::env::args().any(|a| a == "--per-metric") {
        for metric in &all {
            run(&metric.0, std::slice::from_ref(metric), events, false);
        }
        return;
    }
    if std::env::args().any(|a| a == "--digest") {
        println!("output digest: {:016x}", digest(&all, events));
        return;
    }
    if std::env::args().any(|a| a == "--whole") {
        run("whole set", &all, events, false);
        return;
    }
    for (set, specs) in [("count metrics", &counts), ("whole set", &all)] {
        for with_lines in [false, true] {
            run(set, specs, events, with_lines);
        }
    }
    println!(
        "peak RSS: {} MiB (before the run: {} MiB)",
        peak_rss_kib().unwrap_or(0) / 1024,
        before / 1024
    );
}

fn run(set: &str, specs: &[(String, MetricSpec, Shape)], events: usize, with_lines: bool) {
    let bots = Bots::default();
    let mut computation = Computation::new(specs.iter().map(|(_, s, _)| s), &bots);
    let mut history = History::new(events);
    let mut items = Vec::with_capacity(10_000);
    let mut batch = influx::Batch::new(influx::Precision::Nanoseconds, 5_000);
    let mut line_bytes = 0usize;
    let mut total_points = 0usize;
    let mut total_items = 0usize;
    let mut busy = Duration::ZERO;
    let mut cpu_ns = 0u64;
    loop {
        history.fill(&mut items, 10_000);
        if items.is_empty() {
            break;
        }
        total_items += items.len();
        let started = Instant::now();
        let cpu_started = thread_cpu_ns();
        for item in &mut items {
            let written = computation.receive(item, |index, point| {
                total_points += 1;
                if !with_lines {
                    return Ok(());
                }
                let (name, _, fields) = &specs[index];
                add_point(&mut batch, name, "kubernetes/kubernetes", point, fields)?;
                if batch.is_full() {
                    line_bytes += batch.line_protocol().len();
                    batch.clear();
                }
                Ok::<(), influx::InfluxError>(())
            });
            if let Err(err) = written {
                panic!("{err}");
            }
        }
        busy += started.elapsed();
        cpu_ns += thread_cpu_ns().saturating_sub(cpu_started);
    }
    let seconds = busy.as_secs_f64();
    let cpu_seconds = cpu_ns as f64 / 1e9;
    println!(
        "{set}, {}: {} items ({} events and comments, {} issues) x {} metrics -> {} points in {:.3} s wall, {:.3} s CPU: {:.0} events per CPU-second ({:.0} per wall second){}; {} issue states held",
        if with_lines {
            "engine + line protocol"
        } else {
            "engine only"
        },
        total_items,
        events,
        history.issues.len(),
        specs.len(),
        total_points,
        seconds,
        cpu_seconds,
        events as f64 / cpu_seconds,
        events as f64 / seconds,
        if with_lines {
            format!(" ({} MiB of line protocol)", line_bytes >> 20)
        } else {
            String::new()
        },
        computation.tracked_issues(),
    );
}

/// A hash of the whole set's line protocol, to check that a change to the engine left
/// every point as it was (`--digest`, compared before and after the change).
fn digest(specs: &[(String, MetricSpec, Shape)], events: usize) -> u64 {
    fn fnv(mut hash: u64, bytes: &[u8]) -> u64 {
        for b in bytes {
            hash = (hash ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3);
        }
        hash
    }
    let bots = Bots::default();
    let mut computation = Computation::new(specs.iter().map(|(_, s, _)| s), &bots);
    let mut history = History::new(events);
    let mut items = Vec::with_capacity(10_000);
    let mut batch = influx::Batch::new(influx::Precision::Nanoseconds, 5_000);
    let mut hash = 0xcbf2_9ce4_8422_2325;
    loop {
        history.fill(&mut items, 10_000);
        if items.is_empty() {
            break;
        }
        for item in &mut items {
            let written = computation.receive(item, |index, point| {
                let (name, _, fields) = &specs[index];
                add_point(&mut batch, name, "kubernetes/kubernetes", point, fields)?;
                if batch.is_full() {
                    hash = fnv(hash, batch.line_protocol().as_bytes());
                    batch.clear();
                }
                Ok::<(), influx::InfluxError>(())
            });
            if let Err(err) = written {
                panic!("{err}");
            }
        }
    }
    fnv(hash, batch.line_protocol().as_bytes())
}
