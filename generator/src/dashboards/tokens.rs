//! The token counter's dashboard: how much of each token's rate limit the fetchers use.

use serde_json::{Value, json};

use super::{Grid, MONITORING_DS, panel, target};

pub(super) fn tokens() -> Value {
    let used = target("A", MONITORING_DS, "SELECT max(\"value\") FROM \"github_token_count\" WHERE $timeFilter GROUP BY time(1h), \"login\" fill(none)".to_owned(), "$tag_login");
    let mut grid = Grid::default();
    grid.row(vec![panel(
        "Calls used per window",
        "limit - remaining, recorded at each reset.",
        MONITORING_DS,
        vec![used],
        "short",
        false,
    )]);
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
        "panels": grid.panels,
    })
}
