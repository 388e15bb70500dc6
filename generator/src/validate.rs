//! Step 2: validate the document, first against the JSON Schema (shape, types, unknown
//! keys), then semantically (names that must compose into Kubernetes names, metric
//! arguments parsed by the runtime's grammar, typed Prometheus config, cross references),
//! and build the typed [`Config`]. Every problem in the file is reported, not only the first.
//!
//! Long because it is one walk over the document: each section's checks sit next to the
//! model type they build, and splitting the walk would split the error positions from it.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::OnceLock;

use serde_json::{Map, Value};
use velodrome_model::bots::Bots;
use velodrome_model::metric::{MetricSpec, PLUGINS};
use velodrome_model::names::{DnsLabel, RepoName, dns_label_problem};

use crate::diagnostics::{self, Diagnostic};
use crate::model::{
    self, Config, Github, Grafana, Images, Metric, Mysql, MysqlMode, Nginx, Project, Prometheus,
    Repository, Resources, Storage, TokenCounter,
};
use crate::prometheus::PrometheusConfig;
use crate::read::{Document, pointer_token};

/// The JSON Schema of config.yaml, embedded so the binary needs no files.
pub const SCHEMA: &str = include_str!("../../schema/config.schema.json");

/// The longest fixed text velogen adds around a project name (`prometheus-` + `-data`).
const LONGEST_PROJECT_AFFIX: usize = "prometheus-".len() + "-data".len();

/// A config that passed every check, with the warnings found on the way.
#[derive(Debug)]
pub struct Validated {
    /// The typed config.
    pub config: Config,
    /// Non-fatal findings (a repository in two projects, a repository with no metrics).
    pub warnings: Vec<Diagnostic>,
}

fn schema() -> &'static (Value, jsonschema::Validator) {
    static SCHEMA_CELL: OnceLock<(Value, jsonschema::Validator)> = OnceLock::new();
    SCHEMA_CELL.get_or_init(|| {
        let value: Value = serde_json::from_str(SCHEMA).expect("the embedded schema is JSON");
        let validator = jsonschema::draft202012::new(&value).expect("the embedded schema compiles");
        (value, validator)
    })
}

/// Validates a document; on failure every error (and warning) is returned, sorted by line.
pub fn validate(doc: &Document) -> Result<Validated, Vec<Diagnostic>> {
    let mut diags = schema_errors(doc);
    let failed_at: Vec<String> = diags.iter().map(|d| d.path.clone()).collect();
    let mut checker = Checker {
        doc,
        diags: Vec::new(),
        parsed: HashMap::new(),
    };
    let config = checker.config();
    // A value the schema already refused is reported once, by the schema.
    checker.diags.retain(|d| {
        !failed_at
            .iter()
            .any(|p| !p.is_empty() && d.path.starts_with(p.as_str()))
    });
    diags.append(&mut checker.diags);
    diagnostics::sort(&mut diags);
    diags.dedup_by(|a, b| {
        a.span.map(|s| s.defined) == b.span.map(|s| s.defined) && a.message == b.message
    });
    match config {
        Some(config) if !diags.iter().any(Diagnostic::is_error) => Ok(Validated {
            config,
            warnings: diags,
        }),
        _ => Err(diags),
    }
}

fn schema_errors(doc: &Document) -> Vec<Diagnostic> {
    let (schema, validator) = schema();
    let mut out = Vec::new();
    for err in validator.iter_errors(&doc.value) {
        let at = err.instance_path().as_str().to_owned();
        let keyword_location = err
            .absolute_keyword_location()
            .map(|uri| uri.as_str().to_owned())
            .unwrap_or_default();
        use jsonschema::error::ValidationErrorKind as K;
        match err.kind() {
            K::AdditionalProperties { unexpected } => {
                let known = known_keys(schema, &at);
                for key in unexpected {
                    let child = format!("{at}/{}", pointer_token(key));
                    out.push(doc.error_at_key(&child, unknown_key_message(key, &known)));
                }
            }
            K::Required { property } => {
                let name = property.as_str().unwrap_or_default();
                out.push(doc.error_at(&at, format!("missing required key {name:?}")));
            }
            K::Type { .. } => {
                let expected = expected_types(schema, &at);
                out.push(doc.error_at(
                    &at,
                    format!("expected {expected}, found {}", describe(err.instance())),
                ));
            }
            K::Enum { options } => {
                let choices: Vec<String> = options
                    .as_array()
                    .map(|a| a.iter().map(|v| v.to_string()).collect())
                    .unwrap_or_default();
                out.push(doc.error_at(
                    &at,
                    format!(
                        "{} is not one of {}",
                        describe(err.instance()),
                        choices.join(", ")
                    ),
                ));
            }
            K::Pattern { .. } => {
                let what = pattern_meaning(&keyword_location);
                out.push(doc.error_at(&at, format!("{} is not {what}", describe(err.instance()))));
            }
            K::PropertyNames { error } => {
                let name = error.instance().as_str().unwrap_or_default().to_owned();
                let child = format!("{at}/{}", pointer_token(&name));
                out.push(doc.error_at_key(
                    &child,
                    format!("{name:?} is not {}", pattern_meaning("$defs/setName")),
                ));
            }
            K::MinProperties { .. } => out.push(doc.error_at(&at, "must not be empty")),
            K::MinItems { .. } => out.push(doc.error_at(&at, "must not be empty")),
            K::UniqueItems => out.push(doc.error_at(&at, "lists the same item twice")),
            K::Minimum { limit } => {
                out.push(doc.error_at(&at, format!("must be at least {limit}")))
            }
            K::Maximum { limit } => out.push(doc.error_at(&at, format!("must be at most {limit}"))),
            K::MinLength { .. } => out.push(doc.error_at(&at, "must not be empty")),
            _ => out.push(doc.error_at(&at, err.to_string())),
        }
    }
    // "missing key repositories" next to "unknown key repositoris (did you mean
    // repositories?)" says the same thing twice: keep the one that names the typo.
    let suggested: Vec<(String, String)> = out
        .iter()
        .filter_map(|d| {
            let hint = d
                .message
                .split("(did you mean \"")
                .nth(1)?
                .split('"')
                .next()?;
            let parent = d.path.rsplit_once('.').map_or("", |(p, _)| p);
            Some((parent.to_owned(), hint.to_owned()))
        })
        .collect();
    out.retain(|d| {
        let Some(key) = d
            .message
            .strip_prefix("missing required key \"")
            .and_then(|k| k.strip_suffix('"'))
        else {
            return true;
        };
        !suggested
            .iter()
            .any(|(parent, hint)| *parent == d.path && hint == key)
    });
    out
}

/// Describes a JSON value briefly for a message.
fn describe(value: &Value) -> String {
    match value {
        Value::Null => "null (an empty value)".into(),
        Value::Bool(b) => format!("the boolean {b}"),
        Value::Number(n) => format!("the number {n}"),
        Value::String(s) => format!("{s:?}"),
        Value::Array(_) => "a list".into(),
        Value::Object(_) => "a map".into(),
    }
}

/// What a `$defs` pattern means, for people.
fn pattern_meaning(keyword_location: &str) -> &'static str {
    let defs = [
        (
            "dnsLabel",
            "a valid name (lower-case letters, digits and '-', starting and ending with a letter or digit, at most 63 characters)",
        ),
        (
            "dnsSubdomain",
            "a valid Kubernetes object name (lower-case letters, digits, '-' and '.')",
        ),
        ("quantity", "a Kubernetes quantity such as 10Gi or 500m"),
        ("duration", "a duration such as 30s, 5m or 1h"),
        ("image", "a container image reference such as nginx:1.27"),
        (
            "secretKey",
            "a valid Secret key (letters, digits, '-', '_' and '.')",
        ),
        (
            "setName",
            "a valid metric-set name (lower-case letters, digits and '-')",
        ),
    ];
    for (name, meaning) in defs {
        if keyword_location.contains(&format!("$defs/{name}")) {
            return meaning;
        }
    }
    if keyword_location.contains("instance") {
        return "a Cloud SQL instance connection name (project:region:instance)";
    }
    if keyword_location.contains("database") {
        return "a database name (letters, digits and '_')";
    }
    if keyword_location.contains("url") {
        return "an http:// or https:// URL";
    }
    "in the expected format"
}

/// Walks the schema along an instance pointer to the sub-schema that describes it.
fn schema_at<'s>(root: &'s Value, pointer: &str) -> Option<&'s Value> {
    let mut node = resolve(root, root);
    for token in pointer.split('/').skip(1) {
        let token = token.replace("~1", "/").replace("~0", "~");
        let next = node
            .get("properties")
            .and_then(|p| p.get(&token))
            .or_else(|| node.get("additionalProperties").filter(|v| v.is_object()))
            .or_else(|| node.get("items"))?;
        node = resolve(root, next);
    }
    Some(node)
}

fn resolve<'s>(root: &'s Value, mut node: &'s Value) -> &'s Value {
    for _ in 0..8 {
        match node.get("$ref").and_then(Value::as_str) {
            Some(r) => match r.strip_prefix('#').and_then(|p| root.pointer(p)) {
                Some(target) => node = target,
                None => break,
            },
            None => break,
        }
    }
    node
}

fn known_keys(root: &Value, pointer: &str) -> Vec<String> {
    schema_at(root, pointer)
        .and_then(|s| s.get("properties"))
        .and_then(Value::as_object)
        .map(|p| p.keys().cloned().collect())
        .unwrap_or_default()
}

fn expected_types(root: &Value, pointer: &str) -> String {
    let names = |t: &Value| match t.as_str() {
        Some("object") => "a map",
        Some("array") => "a list",
        Some("string") => "a string",
        Some("integer") => "an integer",
        Some("boolean") => "true or false",
        Some("null") => "nothing",
        _ => "another type",
    };
    match schema_at(root, pointer).and_then(|s| s.get("type")) {
        Some(Value::Array(types)) => types.iter().map(names).collect::<Vec<_>>().join(" or "),
        Some(t) => names(t).to_owned(),
        None => "another type".into(),
    }
}

fn unknown_key_message(key: &str, known: &[String]) -> String {
    match nearest(key, known.iter().map(String::as_str)) {
        Some(best) => format!("unknown key {key:?} (did you mean {best:?}?)"),
        None if known.is_empty() => format!("unknown key {key:?}"),
        None => format!("unknown key {key:?}; expected one of: {}", known.join(", ")),
    }
}

/// The candidate closest to `word` by edit distance, if close enough to be a likely typo.
pub fn nearest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let limit = (word.chars().count() / 3).max(2);
    candidates
        .into_iter()
        .map(|c| (levenshtein(&word.to_lowercase(), &c.to_lowercase()), c))
        .filter(|(d, _)| *d <= limit)
        .min()
        .map(|(_, c)| c)
}

fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != *cb)).min(row[j] + 1).min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
}

/// Semantic checks over the (possibly schema-invalid) JSON, defensive about types.
struct Checker<'d> {
    doc: &'d Document,
    diags: Vec<Diagnostic>,
    /// Metric definitions already parsed: a metric set shared by many repositories (or a
    /// YAML anchor) compiles its regexes once.
    parsed:
        HashMap<(String, Vec<String>), Result<MetricSpec, velodrome_model::metric::MetricError>>,
}

fn get<'v>(value: &'v Value, key: &str) -> Option<&'v Value> {
    value.get(key).filter(|v| !v.is_null())
}

fn str_at<'v>(value: &'v Value, key: &str) -> Option<&'v str> {
    value.get(key).and_then(Value::as_str)
}

fn string_list(value: Option<&Value>) -> Option<Vec<String>> {
    value?
        .as_array()?
        .iter()
        .map(|v| v.as_str().map(str::to_owned))
        .collect()
}

impl Checker<'_> {
    fn error(&mut self, pointer: &str, message: impl Into<String>) {
        self.diags.push(self.doc.error_at(pointer, message));
    }

    fn error_key(&mut self, pointer: &str, message: impl Into<String>) {
        self.diags.push(self.doc.error_at_key(pointer, message));
    }

    fn warn_key(&mut self, pointer: &str, message: impl Into<String>) {
        self.diags.push(self.doc.warning_at_key(pointer, message));
    }

    fn config(&mut self) -> Option<Config> {
        let root = &self.doc.value;
        if !root.is_object() {
            return None; // the schema reports it: "expected a map"
        }
        let namespace = DnsLabel::parse(str_at(root, "namespace").unwrap_or("velodrome")).ok();
        let images = self.images(get(root, "images"));
        let mysql = self.mysql(get(root, "mysql"));
        let github = self.github(get(root, "github"));
        let interval = |key: &str, default: &str| {
            get(root, key)
                .and_then(|s| str_at(s, "interval"))
                .unwrap_or(default)
                .to_owned()
        };
        let fetch_interval = interval("fetcher", "5m");
        let transform_interval = interval("transform", "30m");
        let metric_sets = self.metric_sets(get(root, "metric-sets"));
        let resources = self.resources(get(root, "resources"));
        let bots = self.bots(get(root, "bots"));

        let mut projects = Vec::new();
        let mut repo_owner: HashMap<String, String> = HashMap::new();
        if let Some(map) = get(root, "projects").and_then(Value::as_object) {
            for (name, body) in map {
                let pointer = format!("/projects/{}", pointer_token(name));
                if let Some(project) = self.project(name, body, &pointer, &metric_sets) {
                    for repo in &project.repositories {
                        let key = repo.name.key();
                        let repo_pointer = format!(
                            "{pointer}/repositories/{}",
                            pointer_token(repo.name.as_str())
                        );
                        match repo_owner.get(&key) {
                            Some(other) => self.warn_key(
                                &repo_pointer,
                                format!(
                                    "repository {} is also in project {other:?}: both fetchers will mirror it into the same MySQL rows",
                                    repo.name
                                ),
                            ),
                            None => {
                                repo_owner.insert(key, name.clone());
                            }
                        }
                    }
                    projects.push(project);
                }
            }
        }
        projects.sort_by(|a, b| a.name.cmp(&b.name));

        let token_counter = self.token_counter(get(root, "token-counter"), &github);
        Some(Config {
            namespace: namespace?,
            images: images?,
            mysql: mysql?,
            github: github?,
            fetch_interval,
            transform_interval,
            token_counter: token_counter?,
            resources,
            bots: bots?,
            projects,
        })
    }

    /// `bots:`, compiled with the runtime's own code; an invalid pattern is reported at
    /// its item.
    fn bots(&mut self, value: Option<&Value>) -> Option<Bots> {
        let Some(list) = value.and_then(Value::as_array) else {
            return Some(Bots::default());
        };
        let patterns: Vec<String> = list
            .iter()
            .map(|v| v.as_str().unwrap_or_default().to_owned())
            .collect();
        match Bots::parse(&patterns) {
            Ok(bots) => Some(bots),
            Err(err) => {
                self.error(&format!("/bots/{}", err.index), err.to_string());
                None
            }
        }
    }

    fn images(&mut self, value: Option<&Value>) -> Option<Images> {
        let mut images = Images::default();
        let Some(value) = value else {
            return Some(images);
        };
        let slots: [(&str, &mut String); 7] = [
            ("velodrome", &mut images.velodrome),
            ("influxdb", &mut images.influxdb),
            ("grafana", &mut images.grafana),
            ("nginx", &mut images.nginx),
            ("prometheus", &mut images.prometheus),
            ("mariadb", &mut images.mariadb),
            ("cloudsql-proxy", &mut images.cloudsql_proxy),
        ];
        for (key, slot) in slots {
            if let Some(image) = str_at(value, key) {
                *slot = image.to_owned();
            }
        }
        Some(images)
    }

    fn mysql(&mut self, value: Option<&Value>) -> Option<Mysql> {
        let empty = Value::Object(Map::new());
        let value = value.unwrap_or(&empty);
        let mode_name = str_at(value, "mode").unwrap_or("in-cluster");
        let database = str_at(value, "database").unwrap_or("github").to_owned();
        let secret = str_at(value, "secret")
            .unwrap_or("velodrome-mysql")
            .to_owned();
        let grafana_secret = str_at(value, "grafana-secret")
            .unwrap_or("velodrome-mysql-grafana")
            .to_owned();
        // In-cluster, the grants Job is root (the Secret's `root-password`); elsewhere root
        // is not ours, so an account allowed to grant comes from its own Secret.
        let admin_secret = (mode_name != "in-cluster").then(|| {
            str_at(value, "admin-secret")
                .unwrap_or("velodrome-mysql-admin")
                .to_owned()
        });
        if mode_name == "in-cluster" && get(value, "admin-secret").is_some() {
            self.error_key(
                "/mysql/admin-secret",
                "\"admin-secret\" is only used with `mode: cloudsql` or `mode: external`; in-cluster the grants Job uses root and the `root-password` of `secret`",
            );
        }
        let port = value
            .get("port")
            .and_then(Value::as_u64)
            .and_then(|p| u16::try_from(p).ok())
            .unwrap_or(3306);
        let only_for = |key: &str, mode: &str| -> Option<String> {
            (get(value, key).is_some() && mode_name != mode).then(|| {
                format!(
                    "{key:?} is only used with `mode: {mode}`; this config has `mode: {mode_name}`"
                )
            })
        };
        for (key, mode) in [
            ("storage", "in-cluster"),
            ("instance", "cloudsql"),
            ("host", "external"),
        ] {
            if let Some(message) = only_for(key, mode) {
                self.error_key(&format!("/mysql/{key}"), message);
            }
        }
        let (mode, host) = match mode_name {
            "cloudsql" => match str_at(value, "instance") {
                Some(instance) => (
                    MysqlMode::Cloudsql {
                        instance: instance.to_owned(),
                    },
                    "cloudsql-proxy".to_owned(),
                ),
                None => {
                    self.error(
                        "/mysql",
                        "`mode: cloudsql` needs `instance: project:region:instance`",
                    );
                    return None;
                }
            },
            "external" => match str_at(value, "host") {
                Some(host) => (MysqlMode::External, host.to_owned()),
                None => {
                    self.error("/mysql", "`mode: external` needs `host:`");
                    return None;
                }
            },
            _ => (
                MysqlMode::InCluster {
                    storage: str_at(value, "storage").unwrap_or("100Gi").to_owned(),
                },
                "mysql".to_owned(),
            ),
        };
        Some(Mysql {
            mode,
            database,
            secret,
            grafana_secret,
            admin_secret,
            host,
            port,
        })
    }

    fn github(&mut self, value: Option<&Value>) -> Option<Github> {
        let empty = Value::Object(Map::new());
        let value = value.unwrap_or(&empty);
        Some(Github {
            secret: str_at(value, "secret")
                .unwrap_or("github-tokens")
                .to_owned(),
            tokens: string_list(get(value, "tokens")).unwrap_or_else(|| vec!["token".to_owned()]),
            url: str_at(value, "url")
                .unwrap_or("https://api.github.com")
                .to_owned(),
        })
    }

    fn resources(&mut self, value: Option<&Value>) -> BTreeMap<&'static str, Resources> {
        let mut out = BTreeMap::new();
        for component in model::COMPONENTS {
            let mut resources = model::default_resources(component);
            if let Some(spec) = value.and_then(|v| get(v, component)) {
                for (kind, slot) in [
                    ("requests", &mut resources.requests),
                    ("limits", &mut resources.limits),
                ] {
                    if let Some(list) = get(spec, kind).and_then(Value::as_object) {
                        *slot = list
                            .iter()
                            .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
                            .collect();
                    }
                }
            }
            out.insert(component, resources);
        }
        out
    }

    /// Parses every named metric set; a set with errors is still known (so references to
    /// it do not add a second, misleading error).
    fn metric_sets(&mut self, value: Option<&Value>) -> BTreeMap<String, Vec<Metric>> {
        let mut sets = BTreeMap::new();
        if let Some(map) = value.and_then(Value::as_object) {
            for (name, metrics) in map {
                let pointer = format!("/metric-sets/{}", pointer_token(name));
                sets.insert(name.clone(), self.metrics(metrics, &pointer));
            }
        }
        sets
    }

    fn metrics(&mut self, value: &Value, pointer: &str) -> Vec<Metric> {
        let mut out = Vec::new();
        let Some(map) = value.as_object() else {
            return out;
        };
        for (name, body) in map {
            let metric_pointer = format!("{pointer}/{}", pointer_token(name));
            if let Some(problem) = metric_name_problem(name) {
                self.error_key(&metric_pointer, format!("metric name {name:?} {problem}"));
                continue;
            }
            if body.is_null() {
                self.error(
                    &metric_pointer,
                    format!(
                        "metric {name:?} has no definition; write `plugin: count` and its `args`"
                    ),
                );
                continue;
            }
            let plugin = str_at(body, "plugin").unwrap_or("count").to_owned();
            let Some(args) =
                string_list(body.get("args")).or_else(|| body.get("args").is_none().then(Vec::new))
            else {
                continue; // the schema reports non-string args
            };
            let key = (plugin.clone(), args.clone());
            let parsed = self
                .parsed
                .entry(key)
                .or_insert_with(|| MetricSpec::parse(&plugin, &args))
                .clone();
            match parsed {
                Ok(spec) => out.push(Metric {
                    name: name.clone(),
                    plugin,
                    args,
                    spec,
                }),
                Err(err) => {
                    // An error about no single argument is about the plugin when the plugin
                    // is unknown, and about the argument list otherwise.
                    let known = PLUGINS.contains(&plugin.as_str());
                    let at = match err.arg {
                        Some(i) => format!("{metric_pointer}/args/{i}"),
                        None if known && body.get("args").is_some() => {
                            format!("{metric_pointer}/args")
                        }
                        None if body.get("plugin").is_some() => format!("{metric_pointer}/plugin"),
                        None => metric_pointer.clone(),
                    };
                    self.error(&at, err.message);
                }
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        out
    }

    fn project(
        &mut self,
        name: &str,
        body: &Value,
        pointer: &str,
        sets: &BTreeMap<String, Vec<Metric>>,
    ) -> Option<Project> {
        let label = match dns_label_problem(name) {
            Some(problem) => {
                self.error_key(pointer, format!("project name {name:?} {problem}"));
                None
            }
            None if name.len() + LONGEST_PROJECT_AFFIX > velodrome_model::names::MAX_LABEL_LEN => {
                self.error_key(
                    pointer,
                    format!(
                        "project name {name:?} is too long: object names such as prometheus-{name}-data must fit in 63 characters, so a project name has at most {} characters",
                        velodrome_model::names::MAX_LABEL_LEN - LONGEST_PROJECT_AFFIX
                    ),
                );
                None
            }
            None => DnsLabel::parse(name).ok(),
        };
        if !body.is_object() {
            return None; // the schema reports it
        }
        let default_set = str_at(body, "metric-set");
        if let Some(set) = default_set
            && !sets.contains_key(set)
        {
            let message = missing_set_message(set, sets);
            self.error(&format!("{pointer}/metric-set"), message);
        }

        let mut repositories = Vec::new();
        let mut seen: BTreeMap<String, String> = BTreeMap::new();
        if let Some(repos) = get(body, "repositories").and_then(Value::as_object) {
            for (repo_key, metrics) in repos {
                let repo_pointer = format!("{pointer}/repositories/{}", pointer_token(repo_key));
                let repo = match RepoName::parse(repo_key) {
                    Ok(repo) => repo,
                    Err(err) => {
                        self.error_key(&repo_pointer, err.0);
                        continue;
                    }
                };
                if let Some(first) = seen.insert(repo.key(), repo_key.clone()) {
                    self.error_key(&repo_pointer, format!("repository {repo_key:?} is listed twice in this project (also as {first:?})"));
                    continue;
                }
                let metrics = match metrics {
                    Value::Null => match default_set {
                        Some(set) => sets.get(set).cloned().unwrap_or_default(),
                        None => {
                            self.warn_key(
                                &repo_pointer,
                                format!("repository {repo_key} has no metrics: it is mirrored into MySQL but nothing is charted (name a metric set, or set the project's `metric-set`)"),
                            );
                            Vec::new()
                        }
                    },
                    Value::String(set) => match sets.get(set) {
                        Some(metrics) => metrics.clone(),
                        None => {
                            let message = missing_set_message(set, sets);
                            self.error(&repo_pointer, message);
                            continue;
                        }
                    },
                    Value::Object(_) => self.metrics(metrics, &repo_pointer),
                    _ => continue,
                };
                repositories.push(Repository {
                    name: repo,
                    metrics,
                });
            }
        }
        repositories.sort_by_key(|r| r.name.key());

        let nginx = self.nginx(get(body, "nginx"), &format!("{pointer}/nginx"));
        let grafana = self.grafana(get(body, "grafana"), &format!("{pointer}/grafana"));
        let prometheus = self.prometheus(get(body, "prometheus"), &format!("{pointer}/prometheus"));
        let mut storage = Storage::default();
        if let Some(s) = get(body, "storage") {
            for (key, slot) in [
                ("influxdb", &mut storage.influxdb),
                ("grafana", &mut storage.grafana),
                ("prometheus", &mut storage.prometheus),
            ] {
                if let Some(size) = str_at(s, key) {
                    *slot = size.to_owned();
                }
            }
        }
        Some(Project {
            name: label?,
            repositories,
            nginx: nginx?,
            grafana: grafana?,
            prometheus: prometheus?,
            storage,
        })
    }

    fn nginx(&mut self, value: Option<&Value>, pointer: &str) -> Option<Nginx> {
        let empty = Value::Object(Map::new());
        let value = value.unwrap_or(&empty);
        let public_ip = match value.get("public-ip") {
            None | Some(Value::Null) => None,
            Some(Value::String(text)) => match text.parse::<IpAddr>() {
                Ok(ip) => Some(ip),
                Err(_) => {
                    self.error(
                        &format!("{pointer}/public-ip"),
                        format!("{text:?} is not an IP address (write an IPv4 or IPv6 address, or remove the key)"),
                    );
                    return None;
                }
            },
            Some(_) => return None,
        };
        Some(Nginx {
            public_ip,
            service_type: str_at(value, "service-type")
                .unwrap_or("LoadBalancer")
                .to_owned(),
        })
    }

    fn grafana(&mut self, value: Option<&Value>, pointer: &str) -> Option<Grafana> {
        let empty = Value::Object(Map::new());
        let value = value.unwrap_or(&empty);
        let uaid = str_at(value, "google-analytics-uaid")
            .unwrap_or("")
            .to_owned();
        let valid_uaid =
            uaid.is_empty() || regex_is_match(r"^(UA-[0-9]+-[0-9]+|G-[A-Z0-9]+)$", &uaid);
        if !valid_uaid {
            self.error(
                &format!("{pointer}/google-analytics-uaid"),
                format!("{uaid:?} is not a Google Analytics id (UA-12345-1 or G-XXXXXXX), or \"\" for none"),
            );
            return None;
        }
        let root_url = str_at(value, "root-url").map(str::to_owned);
        if let Some(url) = &root_url
            && !regex_is_match(r"^https?://[^\s]+$", url)
        {
            self.error(
                &format!("{pointer}/root-url"),
                format!("{url:?} is not an http:// or https:// URL"),
            );
            return None;
        }
        Some(Grafana {
            google_analytics_uaid: uaid,
            anonymous_access: value
                .get("anonymous-access")
                .and_then(Value::as_bool)
                .unwrap_or(true),
            root_url,
        })
    }

    /// `Some(None)` when the project has no Prometheus; `None` when it is invalid.
    fn prometheus(&mut self, value: Option<&Value>, pointer: &str) -> Option<Option<Prometheus>> {
        let Some(value) = value else {
            return Some(None);
        };
        let retention = str_at(value, "retention").unwrap_or("365d").to_owned();
        let embedded = str_at(value, "prometheus-config.yml");
        let typed = get(value, "config");
        let config: PrometheusConfig = match (embedded, typed) {
            (Some(_), Some(_)) => {
                self.error(
                    pointer,
                    "give either `prometheus-config.yml` or `config`, not both",
                );
                return None;
            }
            (None, None) => {
                self.error(pointer, "needs `config:` (a Prometheus config as YAML) or the legacy `prometheus-config.yml:` string");
                return None;
            }
            (Some(text), None) => {
                let at = format!("{pointer}/prometheus-config.yml");
                match serde_saphyr::from_str::<PrometheusConfig>(text) {
                    Ok(config) => config,
                    Err(err) => {
                        self.embedded_error(&at, &err);
                        return None;
                    }
                }
            }
            (None, Some(map)) => match serde_json::from_value::<PrometheusConfig>(map.clone()) {
                Ok(config) => config,
                Err(err) => {
                    self.error(
                        &format!("{pointer}/config"),
                        format!("invalid Prometheus config: {err}"),
                    );
                    return None;
                }
            },
        };
        let problems = config.problems();
        if !problems.is_empty() {
            let at = if embedded.is_some() {
                "prometheus-config.yml"
            } else {
                "config"
            };
            for (path, message) in problems {
                self.error(&format!("{pointer}/{at}"), format!("{path}: {message}"));
            }
            return None;
        }
        Some(Some(Prometheus { config, retention }))
    }

    /// Reports an error inside the embedded Prometheus string at its line in config.yaml.
    fn embedded_error(&mut self, pointer: &str, err: &serde_saphyr::Error) {
        let inner = err.without_snippet();
        let raw = inner.to_string();
        let message = raw.lines().next().unwrap_or(&raw);
        let message = message
            .split(" at line ")
            .next()
            .unwrap_or(message)
            .to_owned();
        let message = friendly_serde_message(&message);
        let mut diag = self
            .doc
            .error_at(pointer, format!("invalid Prometheus config: {message}"));
        if let (Some(loc), Some(span)) = (inner.location(), diag.span.as_mut()) {
            // A `|` block starts on the line after the key; its content is indented.
            let first_content_line = span.defined.line + 1;
            let indent = self.doc.line_indent(first_content_line).unwrap_or(0);
            let line_in_block = loc.line() as u32;
            span.defined.line = first_content_line + line_in_block.saturating_sub(1);
            span.defined.column = loc.column() as u32 + indent;
            span.used = span.defined;
        }
        self.diags.push(diag);
    }

    fn token_counter(
        &mut self,
        value: Option<&Value>,
        github: &Option<Github>,
    ) -> Option<Option<TokenCounter>> {
        let Some(value) = value else {
            return Some(None);
        };
        let project = str_at(value, "project")?;
        let declared: Vec<String> = get(&self.doc.value, "projects")
            .and_then(Value::as_object)
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default();
        if !declared.iter().any(|p| p == project) {
            let names: Vec<&str> = declared.iter().map(String::as_str).collect();
            let hint = match nearest(project, names.iter().copied()) {
                Some(best) => format!(" (did you mean {best:?}?)"),
                None => format!("; projects are: {}", names.join(", ")),
            };
            self.error(
                "/token-counter/project",
                format!("no project named {project:?}{hint}"),
            );
            return None;
        }
        let tokens = string_list(get(value, "tokens"))
            .or_else(|| github.as_ref().map(|g| g.tokens.clone()))
            .unwrap_or_default();
        Some(Some(TokenCounter {
            project: DnsLabel::parse(project).ok()?,
            tokens,
            interval: str_at(value, "interval").unwrap_or("1h").to_owned(),
        }))
    }
}

impl Document {
    /// Leading spaces of a 1-based line of the source (for positions inside block scalars).
    fn line_indent(&self, line: u32) -> Option<u32> {
        let text = self.source.lines().nth(line.checked_sub(1)? as usize)?;
        Some(text.chars().take_while(|c| *c == ' ').count() as u32)
    }
}

fn friendly_serde_message(message: &str) -> String {
    // serde says "unknown field `methids_path`, expected one of `job_name`, ..."
    if let Some(rest) = message.strip_prefix("unknown field `")
        && let Some((field, tail)) = rest.split_once('`')
    {
        let list = tail.split_once("expected one of").map_or("", |(_, l)| l);
        let expected: Vec<&str> = list
            .split(',')
            .map(|e| e.trim().trim_matches('`'))
            .filter(|e| !e.is_empty())
            .collect();
        return match nearest(field, expected.iter().copied()) {
            Some(best) => format!("unknown field {field:?} (did you mean {best:?}?)"),
            None => format!(
                "unknown field {field:?}; expected one of: {}",
                expected.join(", ")
            ),
        };
    }
    message.to_owned()
}

fn missing_set_message(set: &str, sets: &BTreeMap<String, Vec<Metric>>) -> String {
    match nearest(set, sets.keys().map(String::as_str)) {
        Some(best) => format!("no metric set named {set:?} (did you mean {best:?}?)"),
        None if sets.is_empty() => {
            format!("no metric set named {set:?}: define it under `metric-sets:`")
        }
        None => format!(
            "no metric set named {set:?}; defined sets: {}",
            sets.keys().cloned().collect::<Vec<_>>().join(", ")
        ),
    }
}

fn metric_name_problem(name: &str) -> Option<&'static str> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    (!ok).then_some("is not a valid measurement name (1-64 letters, digits, '-', '_' or '.', starting with a letter or digit)")
}

fn regex_is_match(pattern: &str, text: &str) -> bool {
    regex::Regex::new(pattern).is_ok_and(|r| r.is_match(text))
}

/// Every key the schema allows anywhere, used by tests to keep the schema and the checker
/// in step.
#[cfg(test)]
pub fn all_schema_keys() -> std::collections::BTreeSet<String> {
    fn walk(v: &Value, out: &mut std::collections::BTreeSet<String>) {
        match v {
            Value::Object(map) => {
                if let Some(Value::Object(props)) = map.get("properties") {
                    out.extend(props.keys().cloned());
                }
                map.values().for_each(|c| walk(c, out));
            }
            Value::Array(items) => items.iter().for_each(|c| walk(c, out)),
            _ => {}
        }
    }
    let mut out = std::collections::BTreeSet::new();
    walk(&schema().0, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_finds_typos() {
        assert_eq!(
            nearest("repositoris", ["repositories", "nginx"]),
            Some("repositories")
        );
        assert_eq!(nearest("zzz", ["repositories", "nginx"]), None);
        assert_eq!(levenshtein("kitten", "sitting"), 3);
    }

    #[test]
    fn schema_compiles_and_lists_keys() {
        let keys = all_schema_keys();
        assert!(keys.contains("repositories"));
        assert!(keys.contains("prometheus-config.yml"));
    }
}
