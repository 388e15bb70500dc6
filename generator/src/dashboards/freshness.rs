//! The row every dashboard ends with: how old the data behind it is, per repository, from
//! the `velodrome_freshness` points the fetcher and the transform write each round, with a
//! red line at three intervals, and an annotation over the times no fetch had succeeded for that
//! long. A flat line then reads as "quiet" or as "stopped", never as both.

use serde_json::{Value, json};

use super::{MONITORING_DS, panel, target};

/// The series that draws the staleness limit.
const STALE: &str = "stale: 3 intervals";

/// The loop intervals the thresholds derive from, in seconds.
#[derive(Debug, Clone, Copy)]
pub struct Intervals {
    /// The fetcher's `--interval`.
    pub fetch: u64,
    /// The transform's `--interval`.
    pub transform: u64,
}

impl Intervals {
    /// Seconds of config durations such as `5m` or `1h30m` (the schema's pattern).
    pub fn parse(fetch: &str, transform: &str) -> Self {
        Self {
            fetch: seconds(fetch),
            transform: seconds(transform),
        }
    }
}

fn seconds(text: &str) -> u64 {
    let mut total = 0;
    let mut number = 0u64;
    for c in text.chars() {
        match c {
            '0'..='9' => number = number * 10 + u64::from(c as u8 - b'0'),
            's' | 'm' | 'h' | 'd' => {
                let unit = match c {
                    's' => 1,
                    'm' => 60,
                    'h' => 3_600,
                    _ => 86_400,
                };
                total += number * unit;
                number = 0;
            }
            _ => {}
        }
    }
    total.max(1)
}

/// Appends the freshness row to `dashboard` and its annotation. Dashboards with a
/// `repository` variable show the repositories picked; others show every repository.
pub fn add(dashboard: &mut Value, intervals: Intervals) {
    let by_repository = dashboard["templating"]["list"]
        .as_array()
        .is_some_and(|l| l.iter().any(|v| v["name"] == "repository"));
    let filter = if by_repository {
        "\"repository\" =~ /^$repository$/ AND "
    } else {
        ""
    };
    let panels = dashboard["panels"].as_array().cloned().unwrap_or_default();
    let mut id = panels
        .iter()
        .filter_map(|p| p["id"].as_u64())
        .max()
        .unwrap_or(0);
    let y = panels
        .iter()
        .map(|p| p["gridPos"]["y"].as_u64().unwrap_or(0) + p["gridPos"]["h"].as_u64().unwrap_or(0))
        .max()
        .unwrap_or(0);
    let mut added = Vec::new();
    id += 1;
    added.push(json!({
        "id": id,
        "type": "row",
        "title": "Data freshness",
        "collapsed": false,
        "gridPos": {"h": 1, "w": 24, "x": 0, "y": y},
        "panels": [],
    }));
    for (column, (component, interval, what)) in [
        (
            "fetcher",
            intervals.fetch,
            "the mirror of GitHub: time since the last complete fetch began",
        ),
        (
            "transform",
            intervals.transform,
            "the metrics: time since the last complete transform round began reading",
        ),
    ]
    .into_iter()
    .enumerate()
    {
        id += 1;
        let query = format!(
            "SELECT last(\"age\") FROM \"velodrome_freshness\" WHERE \"component\" = '{component}' AND {filter}$timeFilter GROUP BY time($__interval), \"repository\" fill(previous)"
        );
        let limit = 3 * interval;
        let stale = format!(
            "SELECT max(\"age\") * 0 + {limit} FROM \"velodrome_freshness\" WHERE \"component\" = '{component}' AND {filter}$timeFilter GROUP BY time($__interval) fill(previous)"
        );
        let mut age = panel(
            &format!("Age of {component} data"),
            &format!(
                "How old {what}, per repository, as of each {component} round. Above the red \
                 line (three intervals, {limit} s) the data is stale, and a flat line elsewhere \
                 may mean a stop, not a quiet week."
            ),
            MONITORING_DS,
            vec![
                target("A", MONITORING_DS, query, "$tag_repository"),
                target("B", MONITORING_DS, stale, STALE),
            ],
            "s",
            false,
        );
        age["id"] = json!(id);
        age["gridPos"] = json!({"h": 6, "w": 12, "x": column * 12, "y": y + 1});
        age["fieldConfig"]["overrides"] = json!([{
            "matcher": {"id": "byName", "options": STALE},
            "properties": [
                {"id": "color", "value": {"mode": "fixed", "fixedColor": "red"}},
                {"id": "custom.lineStyle", "value": {"fill": "dash", "dash": [10, 10]}},
                {"id": "custom.fillOpacity", "value": 0},
            ],
        }]);
        added.push(age);
    }
    if let Some(list) = dashboard["panels"].as_array_mut() {
        list.extend(added);
    }
    let annotation = json!({
        "name": "No successful fetch",
        "datasource": {"type": "influxdb", "uid": MONITORING_DS},
        "enable": true,
        "hide": false,
        "iconColor": "red",
        "target": {
            "refId": "Anno",
            "query": stale_query(filter, intervals.fetch),
            "rawQuery": true,
        },
    });
    if !dashboard["annotations"]["list"].is_array() {
        dashboard["annotations"] = json!({"list": []});
    }
    if let Some(list) = dashboard["annotations"]["list"].as_array_mut() {
        list.push(annotation);
    }
}

/// The fetcher rounds after which the mirror was older than three intervals.
fn stale_query(filter: &str, fetch: u64) -> String {
    format!(
        "SELECT \"age\", \"repository\" FROM \"velodrome_freshness\" WHERE \"component\" = 'fetcher' AND \"age\" > {} AND {filter}$timeFilter",
        3 * fetch
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals_read_the_config_durations() {
        let i = Intervals::parse("5m", "1h30m");
        assert_eq!((i.fetch, i.transform), (300, 5_400));
        assert_eq!(seconds("45s"), 45);
        assert_eq!(seconds("2d"), 172_800);
    }

    #[test]
    fn the_row_goes_below_everything_with_the_annotation() {
        let mut board = json!({
            "templating": {"list": [{"name": "repository"}]},
            "annotations": {"list": []},
            "panels": [{"id": 4, "gridPos": {"h": 8, "w": 12, "x": 0, "y": 9}}],
        });
        add(&mut board, Intervals::parse("5m", "30m"));
        let panels = board["panels"].as_array().expect("panels");
        assert_eq!(panels.len(), 4);
        assert_eq!(panels[1]["type"], "row");
        assert_eq!(panels[1]["gridPos"]["y"], 17);
        assert_eq!(panels[2]["id"], 6);
        let limit = panels[3]["targets"][1]["query"].as_str().expect("query");
        assert!(limit.contains("* 0 + 5400"), "{limit}");
        let query = panels[2]["targets"][0]["query"].as_str().expect("query");
        assert!(
            query.contains("'fetcher'") && query.contains("$repository"),
            "{query}"
        );
        let anno = &board["annotations"]["list"][0];
        assert!(
            anno["target"]["query"]
                .as_str()
                .expect("query")
                .contains("\"age\" > 900")
        );
    }
}
