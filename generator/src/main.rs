//! The `velogen` command line. Exit codes follow DESIGN.md: 0 success (for diff: no
//! change), 1 invalid config (for diff: changes), 2 could not run.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use velogen::diff::{Side, Style};
use velogen::render::Templates;
use velogen::select::Selector;
use velogen::validate::{SCHEMA, Validated};
use velogen::{Checked, Diagnostic};

#[derive(Debug, Parser)]
#[command(
    name = "velogen",
    version,
    about = "Validate config.yaml and render every Velodrome Kubernetes manifest",
    long_about = "velogen reads config.yaml (projects, their GitHub repositories and the metrics of each), \
checks it against a JSON Schema and semantic rules, and renders every manifest: per project InfluxDB, \
Grafana (provisioned datasources and dashboards), nginx, Prometheus, the fetcher and the transform; once, \
the MySQL side.\n\nNothing is written unless everything renders and passes its checks, so\n\n    \
velogen render | kubectl apply -f -\n\ncan never half-apply.",
    after_help = "Examples:\n  velogen validate -c config.yaml\n  velogen render | kubectl apply -f -\n  \
velogen render -l project=istio | kubectl apply -f -\n  velogen render -o rendered/\n  \
velogen diff --from git:origin/main\n  velogen schema > config.schema.json"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, clap::Args)]
struct ConfigArgs {
    /// The config file.
    #[arg(short, long, value_name = "FILE", default_value = "config.yaml")]
    config: PathBuf,
    /// Replace embedded templates by the files of the same name in DIR.
    #[arg(long, value_name = "DIR")]
    templates: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Check the config: schema and semantic rules. Exit 0 valid, 1 invalid, 2 could not run.
    Validate {
        #[command(flatten)]
        config: ConfigArgs,
    },
    /// Render every manifest as one YAML stream on stdout, or one file per object with -o.
    /// Exit 0, 1 invalid config, 2 other error.
    Render {
        #[command(flatten)]
        config: ConfigArgs,
        /// Only objects matching this label selector (kubectl syntax: project=istio, app!=nginx).
        #[arg(short = 'l', long, value_name = "SELECTOR")]
        selector: Option<String>,
        /// Write one file per object into DIR (replaced as a whole) instead of stdout.
        #[arg(short, long, value_name = "DIR")]
        output: Option<PathBuf>,
    },
    /// Show what would change against an older render. Exit 0 no change, 1 changes, 2 error.
    Diff {
        #[command(flatten)]
        config: ConfigArgs,
        /// What to compare with: a rendered file, a folder written by `render -o`, another
        /// config file, or git:REF for the config file as it was at a git revision.
        #[arg(long, value_name = "OLD")]
        from: String,
        /// Only objects matching this label selector.
        #[arg(short = 'l', long, value_name = "SELECTOR")]
        selector: Option<String>,
        /// Color the diff: auto (when stdout is a terminal and NO_COLOR is unset), always, never.
        #[arg(long, value_enum, default_value_t = ColorChoice::Auto)]
        color: ColorChoice,
    },
    /// Print the JSON Schema of config.yaml (for editors and other tools).
    Schema,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum ColorChoice {
    Auto,
    Always,
    Never,
}

/// A failure and its exit code.
struct Failure {
    code: u8,
    lines: Vec<String>,
}

impl Failure {
    fn usage(message: impl Into<String>) -> Self {
        Self {
            code: 2,
            lines: vec![format!("error: {}", message.into())],
        }
    }

    /// The same failure with one more line of explanation after its own.
    fn with_note(mut self, note: String) -> Self {
        self.lines.push(note);
        self
    }

    /// For `diff`, where 1 means "changes": any failure to compare is 2.
    fn cannot_compare(mut self) -> Self {
        self.code = 2;
        self
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(failure) => {
            let mut stderr = std::io::stderr().lock();
            for line in failure.lines {
                let _ = writeln!(stderr, "{line}");
            }
            ExitCode::from(failure.code)
        }
    }
}

fn run(cli: Cli) -> Result<u8, Failure> {
    match cli.command {
        Command::Schema => {
            print!("{SCHEMA}");
            Ok(0)
        }
        Command::Validate { config } => {
            let valid = load(&config.config)?;
            let c = &valid.config;
            let repos: usize = c.projects.iter().map(|p| p.repositories.len()).sum();
            let metrics: usize = c
                .projects
                .iter()
                .flat_map(|p| &p.repositories)
                .map(|r| r.metrics.len())
                .sum();
            eprintln!(
                "{}: valid ({} projects, {repos} repositories, {metrics} metrics)",
                config.config.display(),
                c.projects.len()
            );
            Ok(0)
        }
        Command::Render {
            config,
            selector,
            output,
        } => {
            let selector = parse_selector(selector.as_deref())?;
            let objects = render(&config)?;
            let selected: Vec<&Checked> = objects
                .iter()
                .filter(|o| selector.matches(&o.labels))
                .collect();
            match output {
                Some(dir) => {
                    velogen::write::to_dir(&selected, &dir)
                        .map_err(|e| Failure::usage(e.to_string()))?;
                    eprintln!("wrote {} objects to {}", selected.len(), dir.display());
                }
                None => {
                    let stream = velogen::write::to_stream(&selected)
                        .map_err(|e| Failure::usage(e.to_string()))?;
                    let mut stdout = std::io::stdout().lock();
                    stdout
                        .write_all(stream.as_bytes())
                        .and_then(|()| stdout.flush())
                        .map_err(|e| Failure::usage(format!("cannot write to stdout: {e}")))?;
                }
            }
            Ok(0)
        }
        Command::Diff {
            config,
            from,
            selector,
            color,
        } => diff(&config, &from, selector.as_deref(), color).map_err(Failure::cannot_compare),
    }
}

/// `velogen diff`. Exit 1 means "there are changes to apply", so a CI step may act on it:
/// every way of failing to compare (either config invalid, OLD missing or not a render, a
/// git revision without the file, a template defect) must be 2 instead, with nothing on
/// stdout. The caller maps every [`Failure`] of this function to 2.
fn diff(
    config: &ConfigArgs,
    from: &str,
    selector: Option<&str>,
    color: ColorChoice,
) -> Result<u8, Failure> {
    let selector = parse_selector(selector)?;
    let objects = render(config).map_err(|f| {
        f.with_note(format!(
            "(the new config {} is invalid; nothing was compared)",
            config.config.display()
        ))
    })?;
    let keep = |o: &&Checked| selector.matches(&o.labels);
    let new_objects: Vec<&Checked> = objects.iter().filter(keep).collect();
    let new = Side::from_checked(&new_objects).map_err(Failure::usage)?;
    let mut old = old_side(from, config)?;
    old.retain_labels(|labels| selector.matches(labels));
    let use_color = match color {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => {
            std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none()
        }
    };
    let report = velogen::diff::diff(&old, &new, Style { color: use_color });
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(report.text.as_bytes())
        .and_then(|()| stdout.flush())
        .map_err(|e| Failure::usage(format!("cannot write to stdout: {e}")))?;
    eprintln!(
        "{} changed, {} added, {} removed",
        report.changed, report.added, report.removed
    );
    Ok(u8::from(report.has_changes()))
}

fn parse_selector(text: Option<&str>) -> Result<Selector, Failure> {
    text.map_or(Ok(Selector::default()), |t| {
        Selector::parse(t).map_err(|e| Failure::usage(e.to_string()))
    })
}

fn diagnostics_failure(diags: &[Diagnostic]) -> Failure {
    let errors = diags.iter().filter(|d| d.is_error()).count();
    let mut lines: Vec<String> = diags.iter().map(ToString::to_string).collect();
    lines.push(format!(
        "{errors} error{} found; nothing was rendered",
        if errors == 1 { "" } else { "s" }
    ));
    Failure { code: 1, lines }
}

fn load(path: &Path) -> Result<Validated, Failure> {
    let text = std::fs::read(path)
        .map_err(|e| Failure::usage(format!("cannot read {}: {e}", path.display())))?;
    let text = String::from_utf8(text).map_err(|e| Failure {
        code: 1,
        lines: vec![format!(
            "{}: error: the file is not UTF-8 text (invalid byte at offset {})",
            path.display(),
            e.utf8_error().valid_up_to()
        )],
    })?;
    load_text(path, &text)
}

fn load_text(path: &Path, text: &str) -> Result<Validated, Failure> {
    let valid = velogen::load_str(path, text).map_err(|d| diagnostics_failure(&d))?;
    for warning in &valid.warnings {
        eprintln!("{warning}");
    }
    Ok(valid)
}

fn templates(config: &ConfigArgs) -> Result<Templates, Failure> {
    match &config.templates {
        Some(dir) => Templates::with_overrides(dir),
        None => Templates::embedded(),
    }
    .map_err(|e| Failure::usage(e.to_string()))
}

fn render(config: &ConfigArgs) -> Result<Vec<Checked>, Failure> {
    let valid = load(&config.config)?;
    render_valid(&valid, config)
}

fn render_valid(valid: &Validated, config: &ConfigArgs) -> Result<Vec<Checked>, Failure> {
    let templates = templates(config)?;
    velogen::render_config(&valid.config, &templates).map_err(|e| Failure::usage(e.to_string()))
}

/// The old side of a diff, from whichever kind of OLD was given.
fn old_side(from: &str, config: &ConfigArgs) -> Result<Side, Failure> {
    if let Some(rev) = from.strip_prefix("git:") {
        let text = git_show(rev, &config.config)?;
        let label = PathBuf::from(format!("{}@{rev}", config.config.display()));
        let valid = load_text(&label, &text)
            .map_err(|f| f.with_note(format!("(the config at git revision {rev} is invalid)")))?;
        let objects = render_valid(&valid, config)?;
        return Side::from_checked(&objects.iter().collect::<Vec<_>>()).map_err(Failure::usage);
    }
    let path = Path::new(from);
    if path.is_dir() {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(path)
            .map_err(|e| Failure::usage(format!("cannot read {from}: {e}")))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
            .collect();
        entries.sort();
        if entries.is_empty() {
            return Err(Failure::usage(format!(
                "{from} holds no .yaml files; not a folder written by `velogen render -o`"
            )));
        }
        let mut side = Side::default();
        for file in entries {
            let text = std::fs::read_to_string(&file)
                .map_err(|e| Failure::usage(format!("cannot read {}: {e}", file.display())))?;
            side.extend(Side::from_manifests(&text, &file).map_err(Failure::usage)?);
        }
        return Ok(side);
    }
    let text = std::fs::read_to_string(path)
        .map_err(|e| Failure::usage(format!("cannot read {from}: {e}")))?;
    if looks_like_config(&text) {
        let valid = load_text(path, &text)
            .map_err(|f| f.with_note(format!("(the old config --from {from} is invalid)")))?;
        let objects = render_valid(&valid, config)?;
        return Side::from_checked(&objects.iter().collect::<Vec<_>>()).map_err(Failure::usage);
    }
    Side::from_manifests(&text, path).map_err(Failure::usage)
}

/// A config has `projects:` at the top; a render has `kind:` documents.
fn looks_like_config(text: &str) -> bool {
    serde_saphyr::from_multiple::<serde_json::Value>(text)
        .ok()
        .is_some_and(|docs| {
            docs.len() == 1 && docs[0].get("projects").is_some() && docs[0].get("kind").is_none()
        })
}

/// The config file as it was at a git revision.
fn git_show(rev: &str, config: &Path) -> Result<String, Failure> {
    let absolute = std::fs::canonicalize(config)
        .map_err(|e| Failure::usage(format!("cannot resolve {}: {e}", config.display())))?;
    let dir = absolute.parent().unwrap_or(Path::new("."));
    let name = absolute
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    // `./NAME` makes git resolve the path relative to the config's folder.
    let output = std::process::Command::new("git")
        .arg("-C")
        .arg(dir)
        .arg("show")
        .arg(format!("{rev}:./{name}"))
        .output()
        .map_err(|e| Failure::usage(format!("cannot run git: {e}")))?;
    if !output.status.success() {
        return Err(Failure::usage(format!(
            "git show {rev}:./{name} failed: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        )));
    }
    String::from_utf8(output.stdout)
        .map_err(|_| Failure::usage(format!("{name} at {rev} is not UTF-8")))
}
