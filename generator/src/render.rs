//! Step 4: render every object and every config file from the model with the minijinja
//! templates under templates/ (embedded; `--templates DIR` overrides them by name).
//!
//! Values reach YAML templates only through JSON escaping (auto-escape by file name), so a
//! value with a newline, `$`, `{{`, a quote or `yes` comes out as that literal string and
//! can never become new YAML. Nothing here validates user input: the model already did.

use std::collections::BTreeMap;
use std::path::Path;

use minijinja::{AutoEscape, Environment, UndefinedBehavior};
use serde::Serialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use thiserror::Error;

use crate::dashboards;
use crate::mirror;
use crate::model::{Config, MysqlMode, Project};

/// Every template, embedded so the binary is self-contained.
pub const TEMPLATES: &[(&str, &str)] = &[
    (
        "namespace.yaml.j2",
        include_str!("../../templates/namespace.yaml.j2"),
    ),
    (
        "mysql.yaml.j2",
        include_str!("../../templates/mysql.yaml.j2"),
    ),
    (
        "cloudsql-proxy.yaml.j2",
        include_str!("../../templates/cloudsql-proxy.yaml.j2"),
    ),
    (
        "mysql-grants.yaml.j2",
        include_str!("../../templates/mysql-grants.yaml.j2"),
    ),
    (
        "mysql-grants.sh.j2",
        include_str!("../../templates/mysql-grants.sh.j2"),
    ),
    (
        "influxdb.yaml.j2",
        include_str!("../../templates/influxdb.yaml.j2"),
    ),
    (
        "influxdb-init.iql.j2",
        include_str!("../../templates/influxdb-init.iql.j2"),
    ),
    (
        "grafana.yaml.j2",
        include_str!("../../templates/grafana.yaml.j2"),
    ),
    (
        "grafana-datasources.yaml.j2",
        include_str!("../../templates/grafana-datasources.yaml.j2"),
    ),
    (
        "grafana-dashboards.yaml.j2",
        include_str!("../../templates/grafana-dashboards.yaml.j2"),
    ),
    (
        "nginx.yaml.j2",
        include_str!("../../templates/nginx.yaml.j2"),
    ),
    (
        "nginx.conf.j2",
        include_str!("../../templates/nginx.conf.j2"),
    ),
    (
        "prometheus.yaml.j2",
        include_str!("../../templates/prometheus.yaml.j2"),
    ),
    (
        "fetcher.yaml.j2",
        include_str!("../../templates/fetcher.yaml.j2"),
    ),
    (
        "transform.yaml.j2",
        include_str!("../../templates/transform.yaml.j2"),
    ),
    (
        "token-counter.yaml.j2",
        include_str!("../../templates/token-counter.yaml.j2"),
    ),
];

/// Why rendering failed: a template problem (the config was already valid).
#[derive(Debug, Error)]
pub enum RenderError {
    /// A template could not be read from the override folder.
    #[error("cannot read template {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A file in the override folder is not a template velogen uses.
    #[error("{path}: not a velogen template (known templates: {known})")]
    Unknown {
        /// The file.
        path: String,
        /// The known names.
        known: String,
    },
    /// minijinja refused a template or failed while rendering it.
    #[error("template error: {0:#}")]
    Template(#[from] minijinja::Error),
    /// A generated file could not be serialized.
    #[error("cannot serialize {what}: {message}")]
    Serialize {
        /// What was being serialized.
        what: &'static str,
        /// Why it failed.
        message: String,
    },
}

/// The template set: the embedded one, possibly overridden from a folder.
pub struct Templates {
    env: Environment<'static>,
}

impl Templates {
    /// The embedded templates.
    pub fn embedded() -> Result<Self, RenderError> {
        Self::build(
            TEMPLATES
                .iter()
                .map(|(n, s)| ((*n).to_owned(), (*s).to_owned()))
                .collect(),
        )
    }

    /// The embedded templates with every file of `dir` replacing the one of the same name.
    pub fn with_overrides(dir: &Path) -> Result<Self, RenderError> {
        let mut sources: BTreeMap<String, String> = TEMPLATES
            .iter()
            .map(|(n, s)| ((*n).to_owned(), (*s).to_owned()))
            .collect();
        let read_err = |source| RenderError::Read {
            path: dir.display().to_string(),
            source,
        };
        let mut entries: Vec<_> = std::fs::read_dir(dir)
            .map_err(read_err)?
            .collect::<Result<_, _>>()
            .map_err(read_err)?;
        entries.sort_by_key(|e| e.file_name());
        for entry in entries {
            let path = entry.path();
            if !path.is_file() {
                continue;
            }
            let name = entry.file_name().to_string_lossy().into_owned();
            if !sources.contains_key(&name) {
                return Err(RenderError::Unknown {
                    path: path.display().to_string(),
                    known: TEMPLATES
                        .iter()
                        .map(|(n, _)| *n)
                        .collect::<Vec<_>>()
                        .join(", "),
                });
            }
            let text = std::fs::read_to_string(&path).map_err(|source| RenderError::Read {
                path: path.display().to_string(),
                source,
            })?;
            sources.insert(name, text);
        }
        Self::build(sources)
    }

    fn build(sources: BTreeMap<String, String>) -> Result<Self, RenderError> {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        env.set_auto_escape_callback(|name| {
            let name = name.strip_suffix(".j2").unwrap_or(name);
            if name.ends_with(".yaml") {
                AutoEscape::Json
            } else {
                AutoEscape::None
            }
        });
        env.set_syntax(
            minijinja::syntax::SyntaxConfig::builder()
                .keep_trailing_newline(true)
                .build()
                .map_err(RenderError::Template)?,
        );
        for (name, source) in sources {
            env.add_template_owned(name, source)?;
        }
        Ok(Self { env })
    }

    fn render(&self, name: &str, ctx: &Value) -> Result<String, RenderError> {
        Ok(self
            .env
            .get_template(name)?
            .render(minijinja::Value::from(minijinja::value::Serde(ctx)))?)
    }
}

/// One template's output: a YAML stream of one or more objects.
#[derive(Debug, Clone)]
pub struct Rendered {
    /// The template that produced it (for error messages).
    pub template: &'static str,
    /// The project it belongs to, if any.
    pub project: Option<String>,
    /// The YAML text.
    pub text: String,
}

/// The fixed labels every object carries, so `kubectl apply --prune -l` and inventories can
/// find everything velogen owns.
fn labels(app: &str, project: Option<&str>) -> Value {
    let mut map = serde_json::Map::new();
    map.insert("app".into(), json!(app));
    map.insert("app.kubernetes.io/managed-by".into(), json!("velogen"));
    map.insert("app.kubernetes.io/part-of".into(), json!("velodrome"));
    if let Some(p) = project {
        map.insert("project".into(), json!(p));
    }
    Value::Object(map)
}

/// Selectors are immutable in apps/v1: keep them to the two labels that never change.
fn selector(app: &str, project: Option<&str>) -> Value {
    match project {
        Some(p) => json!({ "app": app, "project": p }),
        None => json!({ "app": app }),
    }
}

fn to_value<T: Serialize>(what: &'static str, value: &T) -> Result<Value, RenderError> {
    serde_json::to_value(value).map_err(|e| RenderError::Serialize {
        what,
        message: e.to_string(),
    })
}

fn resources_value(config: &Config) -> Result<Value, RenderError> {
    let mut map = serde_json::Map::new();
    for (component, res) in &config.resources {
        map.insert(component.replace('-', "_"), to_value("resources", res)?);
    }
    Ok(Value::Object(map))
}

/// Renders every object of the config, globals first, then projects by name.
pub fn render(config: &Config, templates: &Templates) -> Result<Vec<Rendered>, RenderError> {
    let base = json!({
        "namespace": config.namespace.as_str(),
        "images": to_value("images", &config.images)?,
        "mysql": to_value("mysql", &config.mysql)?,
        "github": to_value("github", &config.github)?,
        "resources": resources_value(config)?,
    });
    let mut out = Vec::new();
    let mut global = base.clone();
    global["labels"] = json!({
        "global": labels("velodrome", None),
        "mysql": labels("mysql", None),
        "cloudsql_proxy": labels("cloudsql-proxy", None),
        "mysql_grants": labels("mysql-grants", None),
    });
    global["selectors"] = json!({
        "mysql": selector("mysql", None),
        "cloudsql_proxy": selector("cloudsql-proxy", None),
    });
    let mut push =
        |template: &'static str, project: Option<&str>, ctx: &Value| -> Result<(), RenderError> {
            out.push(Rendered {
                template,
                project: project.map(str::to_owned),
                text: templates.render(template, ctx)?,
            });
            Ok(())
        };
    push("namespace.yaml.j2", None, &global)?;
    match config.mysql.mode {
        MysqlMode::InCluster { .. } => push("mysql.yaml.j2", None, &global)?,
        MysqlMode::Cloudsql { .. } => push("cloudsql-proxy.yaml.j2", None, &global)?,
        MysqlMode::External => {}
    }
    out.push(render_grants(config, templates, &mut global)?);
    // Projects are independent: render them on every core, then keep config order.
    let per_project = crate::parallel_map(&config.projects, |p| {
        render_project(config, p, &base, templates)
    });
    for rendered in per_project {
        out.extend(rendered?);
    }
    Ok(out)
}

/// The mysql-grants ConfigMap and Job. The Job is named after a hash of the whole
/// rendered stream: a Job's pod template is immutable, so any change (SQL, script, host,
/// Secret names, image) must be a new Job, and an unchanged render the same one.
fn render_grants(
    config: &Config,
    templates: &Templates,
    ctx: &mut Value,
) -> Result<Rendered, RenderError> {
    let tables = mirror::readable_tables(mirror::REVIEWS_MIRRORED);
    ctx["grants"] = json!({
        "user_variable": mirror::USER_VARIABLE,
        "password_variable": mirror::PASSWORD_VARIABLE,
        "tables": tables,
    });
    let script = templates.render("mysql-grants.sh.j2", ctx)?;
    ctx["files"] = json!({"grants": {
        "grants.sql": mirror::grant_sql(&config.mysql.database, &tables),
        "grants.sh": script,
    }});
    ctx["names"] = json!({"grants_job": "mysql-grants"});
    let draft = templates.render("mysql-grants.yaml.j2", ctx)?;
    let digest = Sha256::digest(draft.as_bytes());
    let hash: String = digest.iter().take(5).map(|b| format!("{b:02x}")).collect();
    ctx["names"] = json!({"grants_job": format!("mysql-grants-{hash}")});
    Ok(Rendered {
        template: "mysql-grants.yaml.j2",
        project: None,
        text: templates.render("mysql-grants.yaml.j2", ctx)?,
    })
}

/// The objects of one project, in a fixed order.
fn render_project(
    config: &Config,
    project: &Project,
    base: &Value,
    templates: &Templates,
) -> Result<Vec<Rendered>, RenderError> {
    let ctx = project_context(config, project, base, templates)?;
    let name = project.name.as_str();
    let mut templates_used = vec!["influxdb.yaml.j2", "grafana.yaml.j2", "nginx.yaml.j2"];
    if project.prometheus.is_some() {
        templates_used.push("prometheus.yaml.j2");
    }
    templates_used.push("fetcher.yaml.j2");
    if project.repositories.iter().any(|r| !r.metrics.is_empty()) {
        templates_used.push("transform.yaml.j2");
    }
    if config
        .token_counter
        .as_ref()
        .is_some_and(|t| t.project == project.name)
    {
        templates_used.push("token-counter.yaml.j2");
    }
    templates_used
        .into_iter()
        .map(|template| {
            Ok(Rendered {
                template,
                project: Some(name.to_owned()),
                text: templates.render(template, &ctx)?,
            })
        })
        .collect()
}

/// Everything the project templates may use.
fn project_context(
    config: &Config,
    project: &Project,
    base: &Value,
    templates: &Templates,
) -> Result<Value, RenderError> {
    let p = project.name.as_str();
    let ns = config.namespace.as_str();
    let mut ctx = base.clone();
    let names = json!({
        "influxdb": format!("influxdb-{p}"),
        "grafana": format!("grafana-{p}"),
        "nginx": format!("nginx-{p}"),
        "prometheus": format!("prometheus-{p}"),
        "prometheus_data": format!("prometheus-{p}-data"),
        "fetcher": format!("fetcher-{p}"),
        "transform": format!("transform-{p}"),
        "token_counter": format!("token-counter-{p}"),
    });
    // Every project component (mysql is global).
    let apps = crate::model::COMPONENTS.iter().filter(|c| **c != "mysql");
    let mut label_map = serde_json::Map::new();
    let mut selector_map = serde_json::Map::new();
    for app in apps {
        label_map.insert(app.replace('-', "_"), labels(app, Some(p)));
        selector_map.insert(app.replace('-', "_"), selector(app, Some(p)));
    }
    ctx["names"] = names.clone();
    ctx["labels"] = Value::Object(label_map);
    ctx["selectors"] = Value::Object(selector_map);
    ctx["hosts"] = json!({
        "influxdb": format!("influxdb-{p}.{ns}.svc.cluster.local"),
        "grafana": format!("grafana-{p}.{ns}.svc.cluster.local"),
        "prometheus": format!("prometheus-{p}.{ns}.svc.cluster.local"),
    });
    ctx["project"] = json!({
        "name": p,
        "repositories": project.repositories.iter().map(|r| r.name.as_str()).collect::<Vec<_>>(),
        "nginx": to_value("nginx", &project.nginx)?,
        "grafana": to_value("grafana", &project.grafana)?,
        "storage": to_value("storage", &project.storage)?,
        "has_prometheus": project.prometheus.is_some(),
        "prometheus_retention": project.prometheus.as_ref().map(|p| p.retention.clone()),
    });

    // Runtime command lines: flags of `velodrome` (runtime/src/cli.rs).
    let token_files: Vec<String> = config
        .github
        .tokens
        .iter()
        .flat_map(|t| {
            [
                "--token-file".to_owned(),
                format!("/etc/velodrome/github-tokens/{t}"),
            ]
        })
        .collect();
    let common = [
        "--listen".to_owned(),
        "0.0.0.0:9100".to_owned(),
        "--log-format".to_owned(),
        "json".to_owned(),
    ];
    let mut fetcher: Vec<String> = vec!["fetcher".into()];
    for repo in &project.repositories {
        fetcher.extend(["--repository".to_owned(), repo.name.to_string()]);
    }
    fetcher.extend(token_files.iter().cloned());
    fetcher.extend([
        "--github-url".to_owned(),
        config.github.url.clone(),
        "--interval".to_owned(),
        config.fetch_interval.clone(),
    ]);
    let influx_url = format!("http://influxdb-{p}:8086");
    // Each round's freshness, into the project's `monitoring` database.
    fetcher.extend([
        "--influx-url".to_owned(),
        influx_url.clone(),
        "--influx-user".to_owned(),
        "admin".to_owned(),
    ]);
    fetcher.extend(common.iter().cloned());
    let mut transform: Vec<String> = vec![
        "transform".into(),
        "--plan".into(),
        "/etc/velodrome/transform/plan.yaml".into(),
        "--influx-url".into(),
        influx_url.clone(),
        "--influx-database".into(),
        "github".into(),
        "--influx-user".into(),
        "admin".into(),
        "--interval".into(),
        config.transform_interval.clone(),
    ];
    transform.extend(common.iter().cloned());
    let mut token_counter: Vec<String> = vec!["token-counter".into()];
    if let Some(tc) = &config.token_counter {
        for t in &tc.tokens {
            token_counter.extend([
                "--token-file".to_owned(),
                format!("/etc/velodrome/github-tokens/{t}"),
            ]);
        }
        token_counter.extend([
            "--github-url".to_owned(),
            config.github.url.clone(),
            "--influx-url".to_owned(),
            influx_url,
            "--influx-database".to_owned(),
            "monitoring".to_owned(),
            "--influx-user".to_owned(),
            "admin".to_owned(),
            "--interval".to_owned(),
            tc.interval.clone(),
        ]);
        token_counter.extend(common.iter().cloned());
    }
    ctx["args"] =
        json!({ "fetcher": fetcher, "transform": transform, "token_counter": token_counter });
    let secret_env = |name: &str, secret: &str, key: &str| json!({"name": name, "valueFrom": {"secretKeyRef": {"name": secret, "key": key}}});
    ctx["mysql_env"] = json!([
        secret_env("MYSQL_USER", &config.mysql.secret, "user"),
        secret_env("MYSQL_PASSWORD", &config.mysql.secret, "password"),
        {"name": "VELODROME_MYSQL_URL", "value": format!("mysql://$(MYSQL_USER):$(MYSQL_PASSWORD)@{}:{}/{}", config.mysql.host, config.mysql.port, config.mysql.database)},
    ]);
    // Grafana expands `$NAME` in provisioning files, so a literal `$` is written `$$`.
    ctx["mysql_datasource"] = json!({
        "url": format!("{}:{}", config.mysql.host, config.mysql.port).replace('$', "$$"),
        "database": config.mysql.database,
    });
    ctx["influx_env"] = json!([secret_env(
        "VELODROME_INFLUX_PASSWORD",
        &format!("influxdb-{p}"),
        "admin-password"
    )]);

    // Config files, rendered before the objects that carry them.
    let mut files = serde_json::Map::new();
    files.insert(
        "influxdb".into(),
        json!({ "init.iql": templates.render("influxdb-init.iql.j2", &ctx)? }),
    );
    files.insert(
        "nginx".into(),
        json!({ "nginx.conf": templates.render("nginx.conf.j2", &ctx)? }),
    );
    if let Some(prom) = &project.prometheus {
        let text = serde_saphyr::to_string(&prom.config).map_err(|e| RenderError::Serialize {
            what: "prometheus.yml",
            message: e.to_string(),
        })?;
        files.insert("prometheus".into(), json!({ "prometheus.yml": text }));
    }
    let plan = serde_saphyr::to_string(&project.transform_plan(&config.bots)).map_err(|e| {
        RenderError::Serialize {
            what: "plan.yaml",
            message: e.to_string(),
        }
    })?;
    files.insert("transform".into(), json!({ "plan.yaml": plan }));
    let mut grafana = serde_json::Map::new();
    grafana.insert(
        "datasources.yaml".into(),
        json!(templates.render("grafana-datasources.yaml.j2", &ctx)?),
    );
    grafana.insert(
        "dashboards.yaml".into(),
        json!(templates.render("grafana-dashboards.yaml.j2", &ctx)?),
    );
    let with_tokens = config
        .token_counter
        .as_ref()
        .is_some_and(|t| t.project == project.name);
    let inputs = dashboards::Inputs {
        with_tokens,
        bots: &config.bots,
        github_url: &config.github.url,
        reviews_mirrored: mirror::REVIEWS_MIRRORED,
        intervals: dashboards::freshness::Intervals::parse(
            &config.fetch_interval,
            &config.transform_interval,
        ),
    };
    let mut dashboard_keys = Vec::new();
    for (key, body) in dashboards::dashboards(project, &inputs) {
        dashboard_keys.push(key.clone());
        grafana.insert(key, json!(body));
    }
    files.insert("grafana".into(), Value::Object(grafana));
    ctx["files"] = Value::Object(files);
    ctx["dashboard_keys"] = json!(dashboard_keys);
    Ok(ctx)
}
