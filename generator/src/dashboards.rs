//! Grafana dashboards generated from the metrics a project configures, so a new project gets
//! charts without anyone importing JSON by hand. UIDs are fixed strings (each project has its
//! own Grafana), so links and the home dashboard path never change between renders.

use serde_json::{Value, json};

use crate::model::{Metric, Project};

/// Datasource of the transform metrics (provisioned by grafana-datasources.yaml.j2).
const GITHUB_DS: &str = "velodrome-github";
/// Datasource of the token counter.
const MONITORING_DS: &str = "velodrome-monitoring";
/// Nanoseconds per day: percentile fields are stored in nanoseconds, as the original did.
const NANOS_PER_DAY: u64 = 86_400_000_000_000;

/// The dashboards of one project as (ConfigMap key, pretty JSON), home first.
pub fn dashboards(project: &Project, with_tokens: bool) -> Vec<(String, String)> {
    let metrics = project.distinct_metrics();
    let mut out = vec![("home.json".to_owned(), pretty(&home(project, &metrics)))];
    if with_tokens {
        out.push(("github-tokens.json".to_owned(), pretty(&tokens())));
    }
    out
}

fn pretty(value: &Value) -> String {
    let mut text = serde_json::to_string_pretty(value).unwrap_or_default();
    text.push('\n');
    text
}

/// InfluxQL identifier quoting: `"needs-rebase"`, `"50%"`.
fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('\\', "\\\\").replace('"', "\\\""))
}

fn target(ref_id: &str, datasource: &str, query: String, alias: &str) -> Value {
    json!({
        "refId": ref_id,
        "datasource": {"type": "influxdb", "uid": datasource},
        "query": query,
        "rawQuery": true,
        "resultFormat": "time_series",
        "alias": alias,
    })
}

fn panel(
    id: u32,
    title: &str,
    description: &str,
    datasource: &str,
    targets: Vec<Value>,
    unit: &str,
    bars: bool,
) -> Value {
    let x = if id % 2 == 1 { 0 } else { 12 };
    let y = ((id - 1) / 2) * 8;
    json!({
        "id": id,
        "type": "timeseries",
        "title": title,
        "description": description,
        "gridPos": {"h": 8, "w": 12, "x": x, "y": y},
        "datasource": {"type": "influxdb", "uid": datasource},
        "targets": targets,
        "fieldConfig": {
            "defaults": {
                "unit": unit,
                "custom": {"drawStyle": if bars { "bars" } else { "line" }, "fillOpacity": if bars { 60 } else { 10 }},
            },
            "overrides": [],
        },
        "options": {"legend": {"showLegend": true, "displayMode": "list", "placement": "bottom"}, "tooltip": {"mode": "multi", "sort": "none"}},
    })
}

fn repo_filter() -> &'static str {
    "\"repository\" =~ /^$repository$/ AND $timeFilter"
}

/// The panels that chart one metric, according to the fields its spec writes.
fn metric_panels(metric: &Metric, next_id: &mut u32) -> Vec<Value> {
    let spec = &metric.spec;
    let m = ident(&metric.name);
    let mut panels = Vec::new();
    let mut id = || {
        *next_id += 1;
        *next_id
    };
    let mut counters = Vec::new();
    if spec.event().is_some() {
        counters.push(target(
            "A",
            GITHUB_DS,
            format!(
                "SELECT sum(\"event\") FROM {m} WHERE {} GROUP BY time(1w), \"repository\" fill(0)",
                repo_filter()
            ),
            "$tag_repository events",
        ));
    }
    if !spec.comments().is_empty() {
        counters.push(target("B", GITHUB_DS, format!("SELECT sum(\"comment\") FROM {m} WHERE {} GROUP BY time(1w), \"repository\" fill(0)", repo_filter()), "$tag_repository comments"));
    }
    if !counters.is_empty() {
        panels.push(panel(
            id(),
            &format!("{} per week", metric.name),
            &format!("Weekly count of `{}`, per repository.", metric.name),
            GITHUB_DS,
            counters,
            "short",
            true,
        ));
    }
    if spec.logs_author() {
        let q = format!(
            "SELECT count(distinct(\"author\")) FROM {m} WHERE {} GROUP BY time(1w) fill(0)",
            repo_filter()
        );
        panels.push(panel(
            id(),
            &format!("{}: distinct authors per week", metric.name),
            "People behind the counted events and comments, each counted once a week.",
            GITHUB_DS,
            vec![target("A", GITHUB_DS, q, "authors")],
            "short",
            true,
        ));
    }
    if spec.state().is_some() {
        let count = format!(
            "SELECT last(\"count\") FROM {m} WHERE {} GROUP BY time(1d), \"repository\" fill(previous)",
            repo_filter()
        );
        panels.push(panel(
            id(),
            &format!("{}: how many", metric.name),
            "Items in the state, at the end of each day.",
            GITHUB_DS,
            vec![target("A", GITHUB_DS, count, "$tag_repository")],
            "short",
            false,
        ));
        let mut ages = vec![target(
            "A",
            GITHUB_DS,
            format!(
                "SELECT last(\"sum\") / last(\"count\") / 1440 FROM {m} WHERE {} GROUP BY time(1d), \"repository\" fill(previous)",
                repo_filter()
            ),
            "$tag_repository mean",
        )];
        for (i, p) in spec.percentiles().iter().enumerate() {
            let field = ident(&format!("{p}%"));
            let ref_id = char::from(b'B' + (i as u8 % 24)).to_string();
            ages.push(target(&ref_id, GITHUB_DS, format!("SELECT last({field}) / {NANOS_PER_DAY} FROM {m} WHERE {} GROUP BY time(1d), \"repository\" fill(previous)", repo_filter()), &format!("$tag_repository p{p}")));
        }
        panels.push(panel(
            id(),
            &format!("{}: age in days", metric.name),
            "How long items have been in the state: mean and percentiles.",
            GITHUB_DS,
            ages,
            "d",
            false,
        ));
    }
    panels
}

fn home(project: &Project, metrics: &[&Metric]) -> Value {
    let mut next_id = 0;
    let panels: Vec<Value> = metrics
        .iter()
        .flat_map(|m| metric_panels(m, &mut next_id))
        .collect();
    let first_measurement = metrics
        .first()
        .map_or_else(|| "\"merge\"".to_owned(), |m| ident(&m.name));
    json!({
        "uid": "velodrome-home",
        "title": format!("{}: developer productivity", project.name),
        "description": "Generated by velogen from config.yaml; edit the config, not this dashboard.",
        "tags": ["velodrome"],
        "timezone": "utc",
        "editable": false,
        "graphTooltip": 1,
        "schemaVersion": 39,
        "version": 1,
        "refresh": "1h",
        "time": {"from": "now-1y", "to": "now"},
        "templating": {"list": [{
            "name": "repository",
            "label": "Repository",
            "type": "query",
            "datasource": {"type": "influxdb", "uid": GITHUB_DS},
            "query": format!("SHOW TAG VALUES FROM {first_measurement} WITH KEY = \"repository\""),
            "refresh": 2,
            "multi": true,
            "includeAll": true,
            "current": {"text": "All", "value": "$__all"},
        }]},
        "annotations": {"list": []},
        "panels": panels,
    })
}

fn tokens() -> Value {
    let used = target("A", MONITORING_DS, "SELECT max(\"value\") FROM \"github_token_count\" WHERE $timeFilter GROUP BY time(1h), \"login\" fill(none)".to_owned(), "$tag_login");
    json!({
        "uid": "velodrome-tokens",
        "title": "GitHub tokens",
        "description": "API calls used per token and rate-limit window, from the token counter.",
        "tags": ["velodrome"],
        "timezone": "utc",
        "editable": false,
        "schemaVersion": 39,
        "version": 1,
        "refresh": "1h",
        "time": {"from": "now-7d", "to": "now"},
        "templating": {"list": []},
        "annotations": {"list": []},
        "panels": [panel(1, "Calls used per window", "limit - remaining, recorded at each reset.", MONITORING_DS, vec![used], "short", false)],
    })
}
