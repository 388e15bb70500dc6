//! Render benchmark: `cargo bench -p velogen --bench render`.
//!
//! Measures the whole pipeline a user runs (parse, validate, render, check, serialize) on the
//! legacy config and on a generated config of 100 projects x 50 repositories x 9 metrics, and
//! reports the peak resident memory of the process. Targets (DESIGN.md): the legacy config in
//! well under 10 ms, the big one under 1 s.

use std::fmt::Write as _;
use std::path::Path;
use std::time::{Duration, Instant};

use velogen::render::Templates;

fn pipeline(text: &str, templates: &Templates) -> usize {
    let valid = velogen::load_str(Path::new("bench.yaml"), text).expect("valid config");
    let objects = velogen::render_config(&valid.config, templates).expect("renders");
    let refs: Vec<_> = objects.iter().collect();
    velogen::write::to_stream(&refs).expect("serializes").len()
}

fn measure(name: &str, text: &str, runs: usize) {
    let templates = Templates::embedded().expect("templates");
    let bytes = pipeline(text, &templates); // warm-up
    let mut times: Vec<Duration> = (0..runs)
        .map(|_| {
            let start = Instant::now();
            std::hint::black_box(pipeline(text, &templates));
            start.elapsed()
        })
        .collect();
    times.sort();
    let median = times[times.len() / 2];
    let min = times[0];
    println!(
        "{name:<28} median {:>9.2?}  min {:>9.2?}  ({runs} runs, {} KiB of YAML out)",
        median,
        min,
        bytes / 1024
    );
}

/// A config of `projects` x `repos` x 9 metrics, with the Kubernetes metric set inline.
fn big_config(projects: usize, repos: usize) -> String {
    let metrics = [
        ("merge", "[--no-issues, --event=merged]"),
        (
            "contributions",
            "[\"--ignore-authors=bot-a,bot-b\", --no-issues, --event=opened, --comments=.*, --log-author]",
        ),
        (
            "open",
            "[--no-issues, \"--state=opened,!merged\", --percentiles=50]",
        ),
        (
            "needs-rebase",
            "[--no-issues, --percentiles=50, \"--state=opened,labeled:needs-rebase\"]",
        ),
        (
            "lgtmed",
            "[--no-issues, --percentiles=50, \"--state=opened,!labeled:needs-rebase,labeled:lgtm\"]",
        ),
        (
            "approved",
            "[--no-issues, --percentiles=50, \"--state=opened,!labeled:needs-rebase,labeled:approved\"]",
        ),
        (
            "lgtmer",
            "[--no-issues, --ignore-authors=bot-a, \"--event=labeled:lgtm\", \"--comments=(?m)^/lgtm$\", --log-author]",
        ),
        (
            "approver",
            "[--no-issues, --ignore-authors=bot-a, \"--event=labeled:approved\", \"--comments=(?m)^/approve$\", --log-author]",
        ),
        (
            "testthis",
            "[--no-issues, \"--ignore-authors=bot-a,bot-b\", \"--comments=(?m)^@bot.*test this\"]",
        ),
    ];
    let mut out = String::from("projects:\n");
    for p in 0..projects {
        let _ = writeln!(out, "  project-{p}:\n    repositories:");
        for r in 0..repos {
            let _ = writeln!(out, "      org-{p}/repo-{r}:");
            for (name, args) in metrics {
                let _ = writeln!(out, "        {name}:\n          args: {args}");
            }
        }
        let _ = writeln!(
            out,
            "    nginx:\n      public-ip: 10.0.{}.{}",
            p / 250,
            p % 250 + 1
        );
    }
    out
}

fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
}

/// Where the time of one legacy render goes, step by step.
fn stages(text: &str) {
    let templates = Templates::embedded().expect("templates");
    let path = Path::new("bench.yaml");
    let runs = 50;
    let mut totals = [Duration::ZERO; 5];
    for _ in 0..runs {
        let t = Instant::now();
        let doc = velogen::read::parse(path, text).expect("parses");
        totals[0] += t.elapsed();
        let t = Instant::now();
        let valid = velogen::validate::validate(&doc).expect("valid");
        totals[1] += t.elapsed();
        let t = Instant::now();
        let rendered = velogen::render::render(&valid.config, &templates).expect("renders");
        totals[2] += t.elapsed();
        let t = Instant::now();
        let objects = velogen::check::check(&rendered).expect("checks");
        totals[3] += t.elapsed();
        let t = Instant::now();
        let refs: Vec<_> = objects.iter().collect();
        std::hint::black_box(velogen::write::to_stream(&refs).expect("serializes"));
        totals[4] += t.elapsed();
    }
    let names = ["read", "validate", "render", "check", "write"];
    let line: Vec<String> = names
        .iter()
        .zip(totals)
        .map(|(n, t)| format!("{n} {:.2?}", t / runs))
        .collect();
    println!("legacy config by step (mean): {}", line.join(", "));
}

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let legacy = std::fs::read_to_string(root.join("tests/golden/legacy/config.yaml"))
        .expect("legacy config");
    let modern = std::fs::read_to_string(root.join("config.yaml")).expect("config.yaml");
    stages(&legacy);
    measure("legacy config", &legacy, 200);
    measure("config.yaml", &modern, 200);
    let big = big_config(100, 50);
    println!(
        "generated config: {} KiB, 100 projects x 50 repositories x 9 metrics",
        big.len() / 1024
    );
    measure("100 x 50 x 9", &big, 10);
    if let Some(kib) = peak_rss_kib() {
        println!(
            "peak resident memory of the benchmark process: {} MiB",
            kib / 1024
        );
    }
}
