//! Real-validator harness for rendered Velodrome manifests.
//!
//! Checks a rendered multi-document YAML stream with the tools CI installs
//! (`bash .ci/run --setup-only` installs them on a developer machine too):
//!
//! - every document: `kubernetes-validate --strict -k 1.33` (one call per core, the
//!   inputs spread over them);
//! - ConfigMaps labelled `app=nginx`, keys ending `.conf`: `nginx -t` as rendered;
//! - ConfigMaps labelled `app=prometheus`, key `prometheus.yml`: `promtool check config`;
//! - ConfigMaps labelled `app=grafana`: keys ending `.json` must be dashboards and are
//!   type-checked against `@grafana/schema` with `tsc` (one run for all dashboards); keys
//!   ending `.yaml`/`.yml` are provisioning files, checked against
//!   `tests/fixtures/grafana-provisioning.schema.json`.
//!
//! A missing tool is skipped with a message on stderr, unless
//! `VELODROME_REQUIRE_SERVICES=1`, which turns it into an error.
//!
//! Tool lookup: `VELODROME_KUBERNETES_VALIDATE` (else `kubernetes-validate` on PATH, else
//! /opt/velodrome-ci/kv/bin/kubernetes-validate); `VELODROME_GRAFANA_SCHEMA_DIR` (else
//! /opt/velodrome-ci/grafana-schema), which must hold `node_modules/.bin/tsc`,
//! `node_modules/@grafana/schema` and `tsconfig.json`; `nginx` and `promtool` on PATH or
//! in /usr/sbin, /usr/bin.
//!
//! Use from another integration test of the generator crate:
//!
//! ```ignore
//! #[path = "support/validators.rs"]
//! mod validators;
//!
//! let yaml = /* rendered output */;
//! if let Err(errors) = validators::validate_rendered(&yaml) {
//!     panic!("{}", errors.join("\n"));
//! }
//! ```
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::env;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

/// The Kubernetes version we target (k8s-openapi feature `v1_33`).
pub const KUBERNETES_VERSION: &str = "1.33";

/// Default install prefix of `.ci/run` (`VELODROME_CI_PREFIX`).
pub const DEFAULT_CI_PREFIX: &str = "/opt/velodrome-ci";

const PROVISIONING_SCHEMA: &str = include_str!("../fixtures/grafana-provisioning.schema.json");

/// True when `VELODROME_REQUIRE_SERVICES=1`: a missing tool fails instead of skipping.
pub fn require_services() -> bool {
    env::var("VELODROME_REQUIRE_SERVICES").is_ok_and(|v| v == "1")
}

/// One rendered multi-document YAML stream, named for messages (a golden path, say).
#[derive(Clone, Debug)]
pub struct Rendered {
    pub label: String,
    pub yaml: String,
}

impl Rendered {
    pub fn new(label: impl Into<String>, yaml: impl Into<String>) -> Self {
        Self {
            label: label.into(),
            yaml: yaml.into(),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Tool {
    KubernetesValidate,
    Nginx,
    Promtool,
    GrafanaSchema,
}

impl Tool {
    pub fn name(self) -> &'static str {
        match self {
            Tool::KubernetesValidate => "kubernetes-validate",
            Tool::Nginx => "nginx",
            Tool::Promtool => "promtool",
            Tool::GrafanaSchema => "@grafana/schema + tsc",
        }
    }

    fn hint(self) -> &'static str {
        match self {
            Tool::KubernetesValidate => {
                "set VELODROME_KUBERNETES_VALIDATE or put kubernetes-validate on PATH (bash .ci/run --setup-only installs it)"
            }
            Tool::Nginx => "apt-get install nginx (bash .ci/run --setup-only does)",
            Tool::Promtool => "apt-get install prometheus (bash .ci/run --setup-only does)",
            Tool::GrafanaSchema => {
                "set VELODROME_GRAFANA_SCHEMA_DIR to an npm dir with @grafana/schema, typescript and tsconfig.json (bash .ci/run --setup-only installs it)"
            }
        }
    }
}

/// The validators found on this machine.
#[derive(Clone, Debug, Default)]
pub struct Tools {
    pub kubernetes_validate: Option<PathBuf>,
    pub nginx: Option<PathBuf>,
    pub promtool: Option<PathBuf>,
    /// The npm dir with node_modules/@grafana/schema, node_modules/.bin/tsc, tsconfig.json.
    pub grafana_schema_dir: Option<PathBuf>,
    /// A missing tool is an error, not a skip (`VELODROME_REQUIRE_SERVICES=1`).
    pub require: bool,
}

fn on_path(name: &str, extra: &[&str]) -> Option<PathBuf> {
    let path = env::var_os("PATH").unwrap_or_default();
    env::split_paths(&path)
        .chain(extra.iter().map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|p| is_executable(p))
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

fn ci_prefix() -> PathBuf {
    env::var_os("VELODROME_CI_PREFIX")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(DEFAULT_CI_PREFIX))
}

impl Tools {
    pub fn detect() -> Self {
        let kubernetes_validate = match env::var_os("VELODROME_KUBERNETES_VALIDATE") {
            Some(p) => Some(PathBuf::from(p)).filter(|p| is_executable(p)),
            None => on_path("kubernetes-validate", &[]).or_else(|| {
                Some(ci_prefix().join("kv/bin/kubernetes-validate")).filter(|p| is_executable(p))
            }),
        };
        let grafana_schema_dir = env::var_os("VELODROME_GRAFANA_SCHEMA_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| ci_prefix().join("grafana-schema"));
        let grafana_ok = is_executable(&grafana_schema_dir.join("node_modules/.bin/tsc"))
            && grafana_schema_dir
                .join("node_modules/@grafana/schema/package.json")
                .is_file()
            && grafana_schema_dir.join("tsconfig.json").is_file()
            && on_path("node", &[]).is_some();
        Self {
            kubernetes_validate,
            nginx: on_path("nginx", &["/usr/sbin", "/sbin"]),
            promtool: on_path("promtool", &["/usr/bin"]),
            grafana_schema_dir: grafana_ok.then_some(grafana_schema_dir),
            require: require_services(),
        }
    }

    pub fn has(&self, tool: Tool) -> bool {
        match tool {
            Tool::KubernetesValidate => self.kubernetes_validate.is_some(),
            Tool::Nginx => self.nginx.is_some(),
            Tool::Promtool => self.promtool.is_some(),
            Tool::GrafanaSchema => self.grafana_schema_dir.is_some(),
        }
    }

    /// For tests that exercise one tool: true when it is there; false (with a message)
    /// when it is missing and skipping is allowed; panics under VELODROME_REQUIRE_SERVICES=1.
    pub fn available_or_skip(&self, tool: Tool, test: &str) -> bool {
        if self.has(tool) {
            return true;
        }
        let msg = format!("{} not found: {}", tool.name(), tool.hint());
        if self.require {
            panic!("{test}: {msg}; VELODROME_REQUIRE_SERVICES=1 forbids skipping");
        }
        eprintln!("SKIPPED {test}: {msg}");
        false
    }
}

/// What a validation run found.
#[derive(Clone, Debug, Default)]
pub struct Outcome {
    /// Defects, each naming the input, object and key it comes from.
    pub errors: Vec<String>,
    /// Checks not run because their tool is missing (empty under VELODROME_REQUIRE_SERVICES=1,
    /// where a missing tool is an error instead).
    pub skipped: Vec<String>,
    /// How many items each validator checked, by validator name.
    pub checked: BTreeMap<&'static str, usize>,
}

impl Outcome {
    pub fn is_ok(&self) -> bool {
        self.errors.is_empty()
    }

    /// All errors as one string, for panics.
    pub fn report(&self) -> String {
        self.errors.join("\n")
    }
}

/// Validates one rendered stream with every tool found; missing tools are reported on
/// stderr (or are errors under VELODROME_REQUIRE_SERVICES=1).
pub fn validate_rendered(yaml: &str) -> Result<(), Vec<String>> {
    validate_all(&[Rendered::new("rendered", yaml)])
}

/// Like [`validate_rendered`] for several streams, with one validator call per tool.
pub fn validate_all(inputs: &[Rendered]) -> Result<(), Vec<String>> {
    let outcome = check(&Tools::detect(), inputs);
    for s in &outcome.skipped {
        eprintln!("SKIPPED {s}");
    }
    if outcome.errors.is_empty() {
        Ok(())
    } else {
        Err(outcome.errors)
    }
}

/// An extracted config file: where it came from and its text.
#[derive(Clone, Debug)]
struct Item {
    origin: String,
    key: String,
    text: String,
}

#[derive(Default)]
struct Extracted {
    nginx: Vec<Item>,
    prometheus: Vec<Item>,
    dashboards: Vec<Item>,
    provisioning: Vec<Item>,
    documents: usize,
}

fn str_at<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    path.iter().try_fold(v, |v, k| v.get(k))?.as_str()
}

fn extract(input: &Rendered, errors: &mut Vec<String>) -> Extracted {
    let mut out = Extracted::default();
    let docs: Vec<Value> = match serde_saphyr::from_multiple(&input.yaml) {
        Ok(docs) => docs,
        Err(e) => {
            errors.push(format!("{}: YAML does not parse: {e}", input.label));
            return out;
        }
    };
    for (i, doc) in docs.iter().enumerate() {
        if doc.is_null() {
            continue;
        }
        out.documents += 1;
        if !doc.is_object() {
            errors.push(format!(
                "{}: document {} is not a mapping",
                input.label,
                i + 1
            ));
            continue;
        }
        if str_at(doc, &["kind"]) != Some("ConfigMap") {
            continue;
        }
        let name = str_at(doc, &["metadata", "name"]).unwrap_or("?");
        let ns = str_at(doc, &["metadata", "namespace"]).map_or(String::new(), |n| format!("{n}/"));
        let app = str_at(doc, &["metadata", "labels", "app"]);
        let Some(data) = doc.get("data").and_then(Value::as_object) else {
            continue;
        };
        for (key, value) in data {
            let origin = format!("{}: ConfigMap {ns}{name} key {key}", input.label);
            let Some(text) = value.as_str() else {
                errors.push(format!("{origin}: data value is not a string"));
                continue;
            };
            let item = Item {
                origin,
                key: key.clone(),
                text: text.to_owned(),
            };
            match app {
                Some("nginx") if key.ends_with(".conf") => out.nginx.push(item),
                Some("prometheus") if key == "prometheus.yml" => out.prometheus.push(item),
                Some("grafana") if key.ends_with(".json") => out.dashboards.push(item),
                Some("grafana") if key.ends_with(".yaml") || key.ends_with(".yml") => {
                    out.provisioning.push(item)
                }
                _ => {}
            }
        }
    }
    out
}

/// Runs every validator over `inputs`: one kubernetes-validate call, one promtool call,
/// one tsc run, one `nginx -t` per nginx config, the JSON Schema in process.
pub fn check(tools: &Tools, inputs: &[Rendered]) -> Outcome {
    let mut outcome = Outcome::default();
    let mut all = Extracted::default();
    for input in inputs {
        let mut e = extract(input, &mut outcome.errors);
        all.documents += e.documents;
        all.nginx.append(&mut e.nginx);
        all.prometheus.append(&mut e.prometheus);
        all.dashboards.append(&mut e.dashboards);
        all.provisioning.append(&mut e.provisioning);
    }

    let mut dashboards = Vec::new();
    for item in all.dashboards {
        match serde_json::from_str::<Value>(&item.text) {
            Err(e) => outcome
                .errors
                .push(format!("{}: not valid JSON: {e}", item.origin)),
            Ok(v) if is_dashboard(&v) => dashboards.push(item),
            Ok(_) => outcome.errors.push(format!(
                "{}: a .json key of a Grafana ConfigMap must be a dashboard (an object with \"schemaVersion\" and \"panels\" or \"title\")",
                item.origin
            )),
        }
    }

    let mut wanted: Vec<(Tool, &'static str, usize)> = vec![
        (
            Tool::KubernetesValidate,
            "kubernetes-validate",
            all.documents,
        ),
        (Tool::Nginx, "nginx -t", all.nginx.len()),
        (
            Tool::Promtool,
            "promtool check config",
            all.prometheus.len(),
        ),
        (Tool::GrafanaSchema, "tsc @grafana/schema", dashboards.len()),
    ];
    wanted.retain(|(_, _, n)| *n > 0);
    for (tool, _, n) in &wanted {
        if !tools.has(*tool) {
            let msg = format!(
                "{} check of {n} item(s): {} not found: {}",
                tool.name(),
                tool.name(),
                tool.hint()
            );
            if tools.require {
                outcome.errors.push(format!(
                    "{msg}; VELODROME_REQUIRE_SERVICES=1 forbids skipping"
                ));
            } else {
                outcome.skipped.push(msg);
            }
        }
    }

    let work = match tempfile::Builder::new()
        .prefix("velodrome-validators-")
        .tempdir()
    {
        Ok(t) => t,
        Err(e) => {
            outcome
                .errors
                .push(format!("cannot create a temp dir: {e}"));
            return outcome;
        }
    };
    let work = work.path();

    // The external tools run in parallel; each returns its own errors.
    let results: Vec<(&'static str, usize, Vec<String>)> = std::thread::scope(|s| {
        let mut handles = Vec::new();
        if let Some(kv) = &tools.kubernetes_validate
            && all.documents > 0
        {
            let dir = work.join("k8s");
            handles.push(s.spawn(move || {
                (
                    "kubernetes-validate",
                    all.documents,
                    run_kubernetes_validate(kv, &dir, inputs),
                )
            }));
        }
        if let Some(promtool) = &tools.promtool
            && !all.prometheus.is_empty()
        {
            let dir = work.join("prometheus");
            let items = &all.prometheus;
            handles.push(s.spawn(move || {
                (
                    "promtool check config",
                    items.len(),
                    run_promtool(promtool, &dir, items),
                )
            }));
        }
        if let Some(gs) = &tools.grafana_schema_dir
            && !dashboards.is_empty()
        {
            let dir = work.join("grafana");
            let items = &dashboards;
            handles.push(
                s.spawn(move || ("tsc @grafana/schema", items.len(), run_tsc(gs, &dir, items))),
            );
        }
        if let Some(nginx) = &tools.nginx
            && !all.nginx.is_empty()
        {
            let dir = work.join("nginx");
            let items = &all.nginx;
            handles.push(s.spawn(move || ("nginx -t", items.len(), run_nginx(nginx, &dir, items))));
        }
        let mut results: Vec<_> = handles
            .into_iter()
            .map(|h| h.join().expect("validator thread panicked"))
            .collect();
        if !all.provisioning.is_empty() {
            results.push((
                "grafana provisioning schema",
                all.provisioning.len(),
                check_provisioning(&all.provisioning),
            ));
        }
        results
    });
    for (name, n, mut errors) in results {
        outcome.checked.insert(name, n);
        outcome.errors.append(&mut errors);
    }
    outcome
}

fn is_dashboard(v: &Value) -> bool {
    v.get("schemaVersion").is_some() && (v.get("panels").is_some() || v.get("title").is_some())
}

fn output_text(out: &Output) -> String {
    let mut s = String::from_utf8_lossy(&out.stdout).into_owned();
    s.push_str(&String::from_utf8_lossy(&out.stderr));
    s
}

/// Runs `cmd` with stdout and stderr on one pipe, so their lines stay in order.
fn run_merged(cmd: &mut Command) -> Result<(std::process::ExitStatus, String), String> {
    use std::io::Read as _;
    let program = cmd.get_program().to_owned();
    let fail = |e: std::io::Error| format!("cannot run {program:?}: {e}");
    let (mut reader, writer) = std::io::pipe().map_err(fail)?;
    let writer2 = writer.try_clone().map_err(fail)?;
    cmd.stdin(std::process::Stdio::null())
        .stdout(writer)
        .stderr(writer2);
    let mut child = cmd.spawn().map_err(fail)?;
    // The Command still holds the write ends; replace them so EOF arrives when the child exits.
    cmd.stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let mut bytes = Vec::new();
    let read = reader.read_to_end(&mut bytes);
    let status = child.wait().map_err(fail)?;
    read.map_err(fail)?;
    Ok((status, String::from_utf8_lossy(&bytes).into_owned()))
}

fn run(cmd: &mut Command) -> Result<Output, String> {
    cmd.output()
        .map_err(|e| format!("cannot run {:?}: {e}", cmd.get_program()))
}

/// Replaces temp paths in tool output with the names of what they hold.
fn relabel(text: &str, names: &[(PathBuf, String)]) -> String {
    let mut text = text.to_owned();
    // Longest paths first, so /x/10.yaml is not rewritten by /x/1.yaml.
    let mut names: Vec<_> = names.iter().collect();
    names.sort_by_key(|(p, _)| std::cmp::Reverse(p.as_os_str().len()));
    for (path, label) in names {
        text = text.replace(&*path.to_string_lossy(), label);
    }
    text
}

fn run_kubernetes_validate(kv: &Path, dir: &Path, inputs: &[Rendered]) -> Vec<String> {
    let mut errors = Vec::new();
    if let Err(e) = fs::create_dir_all(dir) {
        return vec![format!(
            "kubernetes-validate: cannot create {}: {e}",
            dir.display()
        )];
    }
    let mut names = Vec::new();
    for (i, input) in inputs.iter().enumerate() {
        let path = dir.join(format!("input-{i}.yaml"));
        if let Err(e) = fs::write(&path, &input.yaml) {
            return vec![format!(
                "kubernetes-validate: cannot write {}: {e}",
                path.display()
            )];
        }
        names.push((path, input.label.clone()));
    }
    // One call per core at most (kubernetes-validate is single-threaded Python, about
    // 20 ms per document), the inputs spread over the calls by size.
    let calls = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .clamp(1, 4)
        .min(names.len());
    let mut groups: Vec<(usize, Vec<&Path>)> = vec![(0, Vec::new()); calls];
    let mut by_size: Vec<(usize, &Path)> = inputs
        .iter()
        .zip(&names)
        .map(|(input, (path, _))| (input.yaml.len(), path.as_path()))
        .collect();
    by_size.sort_by_key(|(len, _)| std::cmp::Reverse(*len));
    for (len, path) in by_size {
        let smallest = groups.iter_mut().min_by_key(|(total, _)| *total);
        let (total, paths) = smallest.expect("at least one group");
        *total += len;
        paths.push(path);
    }
    let children: Vec<_> = groups
        .into_iter()
        .map(|(_, paths)| {
            Command::new(kv)
                .args(["--strict", "--quiet", "-k", KUBERNETES_VERSION])
                .args(paths)
                .stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
        })
        .collect();
    let mut text = String::new();
    let mut success = true;
    for child in children {
        match child.and_then(|c| c.wait_with_output()) {
            Ok(out) => {
                success &= out.status.success();
                text.push_str(&output_text(&out));
            }
            Err(e) => return vec![format!("cannot run {}: {e}", kv.display())],
        }
    }
    let text = relabel(&text, &names);
    // --quiet prints only warnings and failures. A warning is a failure too: an unknown
    // kind or apiVersion ("Couldn't find schema") would otherwise pass unchecked.
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with("ERROR") || line.starts_with("WARN") {
            errors.push(format!("kubernetes-validate: {line}"));
        } else if !line.is_empty() && !line.starts_with("INFO") {
            // Continuation of a message (tracebacks, multi-line errors).
            match errors.last_mut() {
                Some(last) => {
                    last.push('\n');
                    last.push_str(line);
                }
                None => errors.push(format!("kubernetes-validate: {line}")),
            }
        }
    }
    if !success && errors.is_empty() {
        errors.push(format!("kubernetes-validate failed: {}", text.trim()));
    }
    errors
}

/// True when `conf` is a main nginx config (has a top-level `http` or `events` block);
/// otherwise it is a fragment (`server { ... }`) meant for an `include` inside `http`.
fn is_main_nginx_conf(conf: &str) -> bool {
    conf.lines().map(str::trim_start).any(|l| {
        ["http", "events"].iter().any(|kw| {
            l.strip_prefix(kw)
                .is_some_and(|rest| rest.trim_start().starts_with('{'))
        })
    })
}

fn run_nginx(nginx: &Path, dir: &Path, items: &[Item]) -> Vec<String> {
    let mut errors = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let prefix = dir.join(format!("conf-{i}"));
        if let Err(e) = fs::create_dir_all(prefix.join("logs")) {
            errors.push(format!("nginx: cannot create {}: {e}", prefix.display()));
            continue;
        }
        let file = prefix.join(&item.key);
        let main = if is_main_nginx_conf(&item.text) {
            file.clone()
        } else {
            // A server-level fragment: check it inside a minimal main config.
            let p = prefix.join("velodrome-wrapper.conf");
            let wrapper = format!(
                "pid {0}/nginx.pid;\nevents {{}}\nhttp {{\n  client_body_temp_path {0}/client_body;\n  proxy_temp_path {0}/proxy;\n  fastcgi_temp_path {0}/fastcgi;\n  uwsgi_temp_path {0}/uwsgi;\n  scgi_temp_path {0}/scgi;\n  include {1};\n}}\n",
                prefix.display(),
                file.display()
            );
            if let Err(e) = fs::write(&p, wrapper) {
                errors.push(format!("nginx: cannot write {}: {e}", p.display()));
                continue;
            }
            p
        };
        if let Err(e) = fs::write(&file, &item.text) {
            errors.push(format!("nginx: cannot write {}: {e}", file.display()));
            continue;
        }
        let mut prefix_arg = prefix.clone().into_os_string();
        prefix_arg.push("/");
        let mut cmd = Command::new(nginx);
        cmd.arg("-t")
            .arg("-q")
            .arg("-c")
            .arg(&main)
            .arg("-p")
            .arg(&prefix_arg)
            .arg("-e")
            .arg(prefix.join("logs/error.log"));
        match run(&mut cmd) {
            Err(e) => errors.push(format!("{}: {e}", item.origin)),
            Ok(out) if out.status.success() => {}
            Ok(out) => {
                let text = relabel(
                    &output_text(&out),
                    &[
                        (file.clone(), item.key.clone()),
                        (prefix.clone(), "<prefix>".into()),
                    ],
                );
                errors.push(format!(
                    "{}: nginx -t failed:\n{}",
                    item.origin,
                    text.trim_end()
                ));
            }
        }
    }
    errors
}

fn run_promtool(promtool: &Path, dir: &Path, items: &[Item]) -> Vec<String> {
    if let Err(e) = fs::create_dir_all(dir) {
        return vec![format!("promtool: cannot create {}: {e}", dir.display())];
    }
    let mut files = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let sub = dir.join(format!("config-{i}"));
        let path = sub.join("prometheus.yml");
        if let Err(e) = fs::create_dir_all(&sub).and_then(|()| fs::write(&path, &item.text)) {
            return vec![format!("promtool: cannot write {}: {e}", path.display())];
        }
        files.push(path);
    }
    let mut cmd = Command::new(promtool);
    cmd.args(["check", "config"]).args(&files);
    // promtool prints "Checking FILE" and "SUCCESS" on stdout but "FAILED" on stderr: read
    // both through one pipe to keep them in order.
    let (status, text) = match run_merged(&mut cmd) {
        Ok(r) => r,
        Err(e) => return vec![e],
    };
    if status.success() {
        return Vec::new();
    }
    let mut errors = Vec::new();
    for (path, item) in files.iter().zip(items) {
        let path = path.to_string_lossy();
        let mut section = String::new();
        let mut inside = false;
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("Checking ") {
                inside = rest.trim() == path;
                continue;
            }
            if inside {
                let _ = writeln!(section, "{line}");
            }
        }
        if section.contains("FAILED") {
            let section = relabel(&section, &[(PathBuf::from(&*path), item.key.clone())]);
            errors.push(format!(
                "{}: promtool check config failed:\n{}",
                item.origin,
                section.trim_end()
            ));
        }
    }
    if errors.is_empty() {
        let names: Vec<_> = files
            .iter()
            .cloned()
            .zip(items.iter().map(|i| i.origin.clone()))
            .collect();
        errors.push(format!(
            "promtool check config exited with {}:\n{}",
            status,
            relabel(&text, &names).trim_end()
        ));
    }
    errors
}

/// Line of the .ts file where the dashboard JSON starts (1-based); see [`run_tsc`].
const TS_JSON_FIRST_LINE: usize = 2;

fn run_tsc(gs: &Path, dir: &Path, items: &[Item]) -> Vec<String> {
    if let Err(e) = fs::create_dir_all(dir) {
        return vec![format!("tsc: cannot create {}: {e}", dir.display())];
    }
    if let Err(e) = std::os::unix::fs::symlink(gs.join("node_modules"), dir.join("node_modules")) {
        return vec![format!(
            "tsc: cannot link node_modules into {}: {e}",
            dir.display()
        )];
    }
    let mut files = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let name = format!("dashboard_{i}.ts");
        // Grafana types a datasource's query fields by extending DataQuery (the InfluxDB
        // plugin adds `query` and `rawQuery`); panels' targets accept them as they are,
        // annotations' targets only through such an extension, declared here.
        let ts = format!(
            "import type {{ AnnotationQuery, Dashboard, DataQuery }} from \"@grafana/schema\"; \
             interface InfluxQuery extends DataQuery {{ query?: string; rawQuery?: boolean }} \
             type InfluxDashboard = Omit<Dashboard, \"annotations\"> & \
             {{ annotations?: {{ list?: AnnotationQuery<InfluxQuery>[] }} }};\n\
             export const dashboard = {} satisfies InfluxDashboard;\n",
            item.text.trim_end()
        );
        if let Err(e) = fs::write(dir.join(&name), ts) {
            return vec![format!("tsc: cannot write {name}: {e}")];
        }
        files.push(name);
    }
    let tsconfig = serde_json::json!({
        "extends": gs.join("tsconfig.json").to_string_lossy(),
        "files": files,
    });
    let tsconfig_path = dir.join("tsconfig.json");
    if let Err(e) = fs::write(&tsconfig_path, tsconfig.to_string()) {
        return vec![format!("tsc: cannot write tsconfig.json: {e}")];
    }
    let mut cmd = Command::new(gs.join("node_modules/.bin/tsc"));
    cmd.arg("-p")
        .arg(&tsconfig_path)
        .args(["--pretty", "false"])
        .current_dir(dir);
    let out = match run(&mut cmd) {
        Ok(out) => out,
        Err(e) => return vec![e],
    };
    if out.status.success() {
        return Vec::new();
    }
    // Lines read `dashboard_3.ts(5,7): error TS2353: ...`, with indented continuations.
    let text = output_text(&out);
    let mut errors: Vec<String> = Vec::new();
    for line in text.lines() {
        let parsed = line.split_once(".ts(").and_then(|(file, rest)| {
            let i: usize = file.strip_prefix("dashboard_")?.parse().ok()?;
            let (pos, msg) = rest.split_once("):")?;
            let (l, c) = pos.split_once(',')?;
            let l: usize = l.parse().ok()?;
            Some((i, l, c.to_owned(), msg.trim().to_owned()))
        });
        match parsed {
            Some((i, l, c, msg)) if i < items.len() => {
                let json_line = (l + 1).saturating_sub(TS_JSON_FIRST_LINE);
                errors.push(format!(
                    "{}: dashboard does not match @grafana/schema at line {json_line}, column {c}: {msg}",
                    items[i].origin
                ));
            }
            _ if line.trim().is_empty() => {}
            _ => match errors.last_mut() {
                Some(last) if line.starts_with(' ') => {
                    last.push('\n');
                    last.push_str(line);
                }
                _ => errors.push(format!("tsc: {line}")),
            },
        }
    }
    if errors.is_empty() {
        errors.push(format!("tsc exited with {}: {}", out.status, text.trim()));
    }
    errors
}

fn check_provisioning(items: &[Item]) -> Vec<String> {
    let schema: Value = match serde_json::from_str(PROVISIONING_SCHEMA) {
        Ok(s) => s,
        Err(e) => {
            return vec![format!(
                "grafana-provisioning.schema.json does not parse: {e}"
            )];
        }
    };
    let validator = match jsonschema::validator_for(&schema) {
        Ok(v) => v,
        Err(e) => {
            return vec![format!(
                "grafana-provisioning.schema.json is not a valid schema: {e}"
            )];
        }
    };
    let mut errors = Vec::new();
    for item in items {
        let value: Value = match serde_saphyr::from_str(&item.text) {
            Ok(v) => v,
            Err(e) => {
                errors.push(format!("{}: YAML does not parse: {e}", item.origin));
                continue;
            }
        };
        for e in validator.iter_errors(&value) {
            let at = e.instance_path().as_str();
            let at = if at.is_empty() { "/" } else { at };
            // A value that may be a secret is never echoed into test output.
            let lower = at.to_ascii_lowercase();
            let message = if ["securejsondata", "password", "secret", "token"]
                .iter()
                .any(|w| lower.contains(w))
            {
                e.masked().to_string()
            } else {
                e.to_string()
            };
            errors.push(format!(
                "{}: Grafana provisioning schema: at {at}: {message}",
                item.origin
            ));
        }
    }
    errors
}
