//! Grafana dashboards generated from the metrics a project configures, so a new project gets
//! charts without anyone importing JSON by hand. UIDs are fixed strings (each project has its
//! own Grafana), so links and the home dashboard path never change between renders.
//!
//! One module per dashboard: [`home`] charts every metric, [`velocity`] answers "how long
//! does it take" for pull requests and for issues, [`tokens`] shows the token counter,
//! [`people`] lists people and old work from MySQL; [`freshness`] adds the row every one of
//! them ends with. This module holds what they share: panels, targets and the grid that
//! places them.

pub mod freshness;
mod home;
pub(crate) mod people;
mod tokens;
mod velocity;

use serde_json::{Value, json};
use velodrome_model::bots::Bots;

use crate::model::Project;

/// Datasource of the transform metrics (provisioned by grafana-datasources.yaml.j2).
const GITHUB_DS: &str = "velodrome-github";
/// Datasource of the token counter.
const MONITORING_DS: &str = "velodrome-monitoring";

/// What the dashboards of a project depend on besides its metrics.
#[derive(Debug, Clone, Copy)]
pub struct Inputs<'a> {
    /// Whether the project's InfluxDB receives the token counter's points.
    pub with_tokens: bool,
    /// Who is a bot (the people dashboard leaves them out).
    pub bots: &'a Bots,
    /// The GitHub API URL (the people dashboard links to items).
    pub github_url: &'a str,
    /// Whether Grafana may read the `reviews` table.
    pub reviews_mirrored: bool,
    /// The loop intervals behind the freshness thresholds.
    pub intervals: freshness::Intervals,
}

/// The dashboards of one project as (ConfigMap key, pretty JSON), home first, each ending
/// with the freshness row.
pub fn dashboards(project: &Project, inputs: &Inputs) -> Vec<(String, String)> {
    let metrics = project.distinct_metrics();
    let mut boards = vec![("home.json".to_owned(), home::home(project, &metrics))];
    boards.extend(velocity::dashboards(project, &metrics));
    if inputs.with_tokens {
        boards.push(("github-tokens.json".to_owned(), tokens::tokens()));
    }
    boards.push((
        "people.json".to_owned(),
        people::dashboard(
            project,
            inputs.bots,
            inputs.github_url,
            inputs.reviews_mirrored,
        ),
    ));
    boards
        .into_iter()
        .map(|(key, mut board)| {
            freshness::add(&mut board, inputs.intervals);
            (key, pretty(&board))
        })
        .collect()
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

/// The refId of the `i`-th target of a panel (A, B, ...).
fn ref_id(i: usize) -> String {
    char::from(b'A' + (i % 26) as u8).to_string()
}

/// A time-series panel; [`Grid`] gives it its id and place.
fn panel(
    title: &str,
    description: &str,
    datasource: &str,
    targets: Vec<Value>,
    unit: &str,
    bars: bool,
) -> Value {
    json!({
        "id": 0,
        "type": "timeseries",
        "title": title,
        "description": description,
        "gridPos": {"h": 8, "w": 12, "x": 0, "y": 0},
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

/// Places panels top to bottom: each [`Grid::row`] of one or two panels is 8 units high and
/// splits the 24 columns; ids follow placement order.
#[derive(Default)]
pub(super) struct Grid {
    panels: Vec<Value>,
    y: u32,
}

impl Grid {
    /// A collapsible section header.
    fn section(&mut self, title: &str) {
        let id = self.panels.len() + 1;
        self.panels.push(json!({
            "id": id,
            "type": "row",
            "title": title,
            "collapsed": false,
            "gridPos": {"h": 1, "w": 24, "x": 0, "y": self.y},
            "panels": [],
        }));
        self.y += 1;
    }

    /// One row: the panels side by side, 12 columns each.
    fn row(&mut self, panels: Vec<Value>) {
        for (column, mut panel) in panels.into_iter().enumerate() {
            panel["id"] = json!(self.panels.len() + 1);
            panel["gridPos"] = json!({"h": 8, "w": 12, "x": (column as u32) * 12, "y": self.y});
            self.panels.push(panel);
        }
        self.y += 8;
    }

    /// One row of panels `h` units high sharing the 24 columns equally.
    fn spread(&mut self, h: u32, panels: Vec<Value>) {
        let width = 24 / u32::try_from(panels.len().max(1)).unwrap_or(1);
        for (column, mut panel) in (0u32..).zip(panels) {
            panel["id"] = json!(self.panels.len() + 1);
            panel["gridPos"] = json!({"h": h, "w": width, "x": column * width, "y": self.y});
            self.panels.push(panel);
        }
        self.y += h;
    }

    /// Panels two to a row, in order.
    fn pairs(&mut self, panels: Vec<Value>) {
        let mut panels = panels.into_iter();
        while let Some(first) = panels.next() {
            let mut row = vec![first];
            row.extend(panels.next());
            self.row(row);
        }
    }
}

/// The filter every query of a project dashboard applies: the repositories picked in the
/// `repository` variable and Grafana's time range.
fn repo_filter() -> &'static str {
    "\"repository\" =~ /^$repository$/ AND $timeFilter"
}

/// A dashboard with the `repository` variable (values from `measurement`).
fn dashboard(
    uid: &str,
    title: &str,
    description: &str,
    measurement: &str,
    panels: Vec<Value>,
) -> Value {
    json!({
        "uid": uid,
        "title": title,
        "description": description,
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
            "query": format!("SHOW TAG VALUES FROM {measurement} WITH KEY = \"repository\""),
            "refresh": 2,
            "multi": true,
            "includeAll": true,
            "current": {"text": "All", "value": "$__all"},
        }]},
        "annotations": {"list": []},
        "panels": panels,
    })
}
