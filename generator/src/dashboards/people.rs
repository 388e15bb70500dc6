//! "People and backlog": who does the work and what waits longest, straight from the MySQL
//! mirror. InfluxQL cannot group by a field, so per-person tables and lists of items need
//! SQL; the original Velodrome had one such table ("Top Commenters", 2018), DevStats and
//! DevLake have many.
//!
//! Every query is limited to the project's repositories (a literal `IN` list of validated
//! `owner/name` values) and leaves out the config's `bots:` (a case-insensitive `REGEXP`
//! over the whole login, the same patterns the transform uses) and deleted users (an empty
//! login). Time windows use Grafana's `$__timeFilter` on a column the migrations index
//! after `repository`, so a 30-day window reads 30 days of rows, never whole tables.

use serde_json::{Value, json};
use velodrome_model::bots::Bots;
use velodrome_model::names::RepoName;

use super::Grid;
use crate::mirror;
use crate::model::Project;

/// Datasource of the SQL panels (provisioned by grafana-datasources.yaml.j2).
pub const MYSQL_DS: &str = "velodrome-mysql";

/// A Prow `/lgtm` command on a line of its own (`/lgtm cancel` is not one). POSIX classes
/// instead of backslash escapes, so the pattern means the same in a SQL string literal
/// under any `sql_mode`, in MariaDB's PCRE, MySQL's ICU and Rust's regex.
pub const LGTM_COMMAND: &str = "(?im)^/lgtm[[:space:]]*$";

/// A Prow `/approve` command on a line of its own, with `no-issue` or nothing after it
/// (`/approve cancel` withdraws an approval).
pub const APPROVE_COMMAND: &str = "(?im)^/approve([[:blank:]]+no-issue)?[[:space:]]*$";

/// How many people a leaderboard lists.
const TOP: u32 = 20;

/// How many items a backlog list shows.
const OLDEST: u32 = 20;

/// A SQL string literal: quotes doubled, and backslashes doubled for the default
/// `sql_mode` (where a backslash escapes).
fn literal(text: &str) -> String {
    format!("'{}'", text.replace('\\', "\\\\").replace('\'', "''"))
}

/// What every query of one project shares: its repositories and who counts as a person.
struct Scope {
    /// `('a/b', 'c/d')`.
    repositories: String,
    /// The combined bots pattern as a SQL literal; `None` when `bots:` is empty.
    bots: Option<String>,
    /// The GitHub web address as a SQL literal prefix, for links.
    web: String,
    /// Whether the mirror has the reviews table.
    reviews: bool,
}

impl Scope {
    /// The scope of a project's `repositories` for the config's bots and GitHub API URL.
    fn new(repositories: &[RepoName], bots: &Bots, github_api_url: &str, reviews: bool) -> Self {
        let list: Vec<String> = repositories.iter().map(|r| literal(r.as_str())).collect();
        let bots = (!bots.patterns().is_empty()).then(|| {
            let alternation: Vec<String> =
                bots.patterns().iter().map(|p| format!("(?:{p})")).collect();
            literal(&format!("^(?i:{})$", alternation.join("|")))
        });
        // Percent-encoding keeps quotes and backslashes out of the URL literal entirely.
        let web = mirror::github_web_url(github_api_url)
            .replace('\\', "%5C")
            .replace('\'', "%27");
        Self {
            repositories: format!("({})", list.join(", ")),
            bots,
            web: format!("'{web}/'"),
            reviews,
        }
    }

    /// `column` holds a person: a login that is not empty and no bot.
    fn person(&self, column: &str) -> String {
        match &self.bots {
            Some(pattern) => format!("{column} <> '' AND {column} NOT REGEXP {pattern}"),
            None => format!("{column} <> ''"),
        }
    }

    /// `alias.repository` is one of the project's.
    fn mine(&self, alias: &str) -> String {
        format!("{alias}.repository IN {}", self.repositories)
    }

    /// A link to an issue (`kind` = `issues`) or pull request (`pull`) of alias `i`.
    fn link(&self, kind: &str) -> String {
        format!("CONCAT({}, i.repository, '/{kind}/', i.id)", self.web)
    }
}

/// The dashboard of `project`, with the reviewers panel counting GitHub reviews when the
/// mirror has them.
pub fn dashboard(project: &Project, bots: &Bots, github_api_url: &str, reviews: bool) -> Value {
    let repositories: Vec<RepoName> = project
        .repositories
        .iter()
        .map(|r| r.name.clone())
        .collect();
    let scope = Scope::new(&repositories, bots, github_api_url, reviews);
    let mut layout = Grid::default();
    layout.section("People");
    layout.spread(10, vec![pr_authors(&scope), commenters(&scope)]);
    layout.spread(10, vec![reviewers(&scope), mergers(&scope)]);
    layout.spread(
        9,
        vec![new_contributors(&scope), newest_contributors(&scope)],
    );
    layout.section("Backlog");
    layout.spread(12, vec![oldest(&scope, true)]);
    layout.spread(12, vec![oldest(&scope, false)]);
    json!({
        "uid": "velodrome-people",
        "title": format!("{}: people and backlog", project.name),
        "description": "Who opens, reviews, comments on and merges pull requests, who contributed for the first time, and the oldest open items, from the MySQL mirror. Bots and deleted users are left out. Generated by velogen from config.yaml; edit the config, not this dashboard.",
        "tags": ["velodrome"],
        "timezone": "utc",
        "editable": false,
        "graphTooltip": 1,
        "schemaVersion": 39,
        "version": 1,
        "refresh": "1h",
        "time": {"from": "now-30d", "to": "now"},
        "templating": {"list": []},
        "annotations": {"list": []},
        "panels": layout.panels,
    })
}

fn datasource() -> Value {
    json!({"type": "mysql", "uid": MYSQL_DS})
}

fn target(format: &str, sql: String) -> Value {
    json!({
        "refId": "A",
        "datasource": datasource(),
        "format": format,
        "rawQuery": true,
        "editorMode": "code",
        "rawSql": sql,
    })
}

/// A table panel; `link` names a column to make a link to the row's hidden `url` column.
fn table(title: &str, description: &str, sql: String, link: Option<&str>) -> Value {
    let mut overrides = Vec::new();
    if let Some(column) = link {
        overrides.push(json!({
            "matcher": {"id": "byName", "options": column},
            "properties": [{"id": "links", "value": [{
                "title": "Open on GitHub",
                "url": "${__data.fields.url}",
                "targetBlank": true,
            }]}],
        }));
        overrides.push(json!({
            "matcher": {"id": "byName", "options": "url"},
            "properties": [
                {"id": "custom.hidden", "value": true},
                {"id": "custom.hideFrom", "value": {"viz": true, "legend": true, "tooltip": true}},
            ],
        }));
    }
    json!({
        "id": 0,
        "type": "table",
        "title": title,
        "description": description,
        "gridPos": {"h": 8, "w": 12, "x": 0, "y": 0},
        "datasource": datasource(),
        "targets": [target("table", sql)],
        "fieldConfig": {
            "defaults": {"custom": {"align": "auto", "filterable": false}},
            "overrides": overrides,
        },
        "options": {"showHeader": true, "cellHeight": "sm", "footer": {"show": false, "reducer": ["sum"], "fields": ""}},
    })
}

fn pr_authors(s: &Scope) -> Value {
    let sql = format!(
        "SELECT i.user AS \"Author\",\n  COUNT(*) AS \"Opened\",\n  \
         SUM(EXISTS (SELECT 1 FROM issue_events e WHERE e.repository = i.repository AND e.issue_id = i.id AND e.event = 'merged')) AS \"Merged\",\n  \
         SUM(i.state = 'open') AS \"Still open\"\n\
         FROM issues i\n\
         WHERE {} AND i.is_pr = 1 AND $__timeFilter(i.issue_created_at)\n  AND {}\n\
         GROUP BY i.user\n\
         ORDER BY COUNT(*) DESC, i.user\n\
         LIMIT {TOP}",
        s.mine("i"),
        s.person("i.user")
    );
    table(
        "Top pull request authors",
        "Who opened the most pull requests in the time range, how many of those have merged since, and how many are still open.",
        sql,
        None,
    )
}

fn commenters(s: &Scope) -> Value {
    let sql = format!(
        "SELECT c.user AS \"Commenter\",\n  COUNT(*) AS \"Comments\",\n  \
         COUNT(DISTINCT c.repository, c.issue_id) AS \"Issues and pull requests\"\n\
         FROM comments c\n\
         WHERE {} AND $__timeFilter(c.comment_created_at)\n  AND {}\n\
         GROUP BY c.user\n\
         ORDER BY COUNT(*) DESC, c.user\n\
         LIMIT {TOP}",
        s.mine("c"),
        s.person("c.user")
    );
    table(
        "Top commenters",
        "Who wrote the most comments in the time range (conversation and review comments, on issues and pull requests), and on how many items.",
        sql,
        None,
    )
}

fn reviewers(s: &Scope) -> Value {
    let lgtm = literal(LGTM_COMMAND);
    let approve = literal(APPROVE_COMMAND);
    let mut sql = String::from(
        "SELECT r.user AS \"Reviewer\",\n  \
         COUNT(DISTINCT r.repository, r.issue_id) AS \"Pull requests\",\n  \
         SUM(r.lgtm) AS \"/lgtm\",\n  SUM(r.approve) AS \"/approve\",\n  \
         SUM(r.review_comment) AS \"Review comments\"",
    );
    if s.reviews {
        sql.push_str(",\n  SUM(r.review) AS \"Reviews\"");
    }
    sql.push_str(&format!(
        "\nFROM (\n  \
         SELECT c.repository, c.issue_id, c.user,\n    \
         c.body REGEXP {lgtm} AS lgtm,\n    \
         c.body REGEXP {approve} AS approve,\n    \
         c.pull_request AS review_comment,\n    0 AS review\n  \
         FROM comments c\n  \
         JOIN issues i ON i.repository = c.repository AND i.id = c.issue_id\n  \
         WHERE {} AND $__timeFilter(c.comment_created_at)\n    \
         AND i.is_pr = 1 AND c.user <> i.user\n    \
         AND (c.pull_request OR c.body REGEXP {lgtm} OR c.body REGEXP {approve})",
        s.mine("c")
    ));
    if s.reviews {
        sql.push_str(&format!(
            "\n  UNION ALL\n  \
             SELECT v.repository, v.issue_id, v.user, 0, 0, 0, 1\n  \
             FROM {} v\n  \
             JOIN issues i ON i.repository = v.repository AND i.id = v.issue_id\n  \
             WHERE {} AND $__timeFilter(v.submitted_at)\n    \
             AND v.state <> 'PENDING' AND v.user <> i.user",
            mirror::REVIEWS_TABLE,
            s.mine("v")
        ));
    }
    sql.push_str(&format!(
        "\n) r\n\
         WHERE {}\n\
         GROUP BY r.user\n\
         ORDER BY COUNT(DISTINCT r.repository, r.issue_id) DESC, r.user\n\
         LIMIT {TOP}",
        s.person("r.user")
    ));
    let reviews = if s.reviews {
        ", submitted GitHub reviews"
    } else {
        " (GitHub reviews join this table once the fetcher mirrors them)"
    };
    table(
        "Top reviewers",
        &format!(
            "Who reviewed the most pull requests of other people in the time range: `/lgtm` and `/approve` commands (Prow), review comments on the diff{reviews}. Own pull requests do not count."
        ),
        sql,
        None,
    )
}

fn mergers(s: &Scope) -> Value {
    let sql = format!(
        "SELECT e.actor AS \"Merged by\",\n  COUNT(*) AS \"Pull requests merged\"\n\
         FROM issue_events e\n\
         WHERE {} AND e.event = 'merged' AND $__timeFilter(e.event_created_at)\n  AND {}\n\
         GROUP BY e.actor\n\
         ORDER BY COUNT(*) DESC, e.actor\n\
         LIMIT {TOP}",
        s.mine("e"),
        s.person("e.actor")
    );
    table(
        "Mergers",
        "Who pressed merge in the time range. Where a bot merges (Prow's Tide), this table is empty: look at /approve in the reviewers table.",
        sql,
        None,
    )
}

/// First merged pull request of every author of the project, from the whole history.
fn first_merges(s: &Scope) -> String {
    format!(
        "SELECT i.user, i.repository, i.id, i.title, e.event_created_at AS merged_at,\n    \
         ROW_NUMBER() OVER (PARTITION BY i.user ORDER BY e.event_created_at, i.repository, i.id) AS n\n  \
         FROM issue_events e\n  \
         JOIN issues i ON i.repository = e.repository AND i.id = e.issue_id\n  \
         WHERE {} AND e.event = 'merged' AND i.is_pr = 1\n    AND {}",
        s.mine("e"),
        s.person("i.user")
    )
}

fn new_contributors(s: &Scope) -> Value {
    let sql = format!(
        "SELECT $__timeGroupAlias(f.merged_at, '1w', 0), COUNT(*) AS \"New contributors\"\n\
         FROM (\n  {}\n) f\n\
         WHERE f.n = 1 AND $__timeFilter(f.merged_at)\n\
         GROUP BY 1\n\
         ORDER BY 1",
        first_merges(s)
    );
    json!({
        "id": 0,
        "type": "timeseries",
        "title": "New contributors per week",
        "description": "People whose first pull request in the project's repositories merged that week.",
        "gridPos": {"h": 8, "w": 12, "x": 0, "y": 0},
        "datasource": datasource(),
        "targets": [target("time_series", sql)],
        "fieldConfig": {
            "defaults": {"unit": "short", "decimals": 0, "custom": {"drawStyle": "bars", "fillOpacity": 60}},
            "overrides": [],
        },
        "options": {"legend": {"showLegend": false, "displayMode": "list", "placement": "bottom"}, "tooltip": {"mode": "single", "sort": "none"}},
    })
}

fn newest_contributors(s: &Scope) -> Value {
    let sql = format!(
        "SELECT f.user AS \"Contributor\",\n  f.merged_at AS \"First merge\",\n  \
         f.repository AS \"Repository\",\n  f.title AS \"Pull request\",\n  \
         CONCAT({}, f.repository, '/pull/', f.id) AS url\n\
         FROM (\n  {}\n) f\n\
         WHERE f.n = 1 AND $__timeFilter(f.merged_at)\n\
         ORDER BY f.merged_at DESC, f.user\n\
         LIMIT 50",
        s.web,
        first_merges(s)
    );
    table(
        "Newest contributors",
        "The people whose first pull request merged in the time range, newest first, with that pull request.",
        sql,
        Some("Pull request"),
    )
}

fn oldest(s: &Scope, pull_requests: bool) -> Value {
    let (title, what, kind, flag) = if pull_requests {
        ("Oldest open pull requests", "pull requests", "pull", 1)
    } else {
        ("Oldest open issues", "issues", "issues", 0)
    };
    let sql = format!(
        "SELECT i.repository AS \"Repository\",\n  i.id AS \"Number\",\n  i.title AS \"Title\",\n  \
         i.user AS \"Author\",\n  i.issue_created_at AS \"Opened\",\n  \
         DATEDIFF(UTC_TIMESTAMP(), i.issue_created_at) AS \"Age (days)\",\n  \
         i.issue_updated_at AS \"Updated\",\n  {} AS url\n\
         FROM issues i\n\
         WHERE {} AND i.state = 'open' AND i.is_pr = {flag}\n  AND {}\n\
         ORDER BY i.issue_created_at, i.repository, i.id\n\
         LIMIT {OLDEST}",
        s.link(kind),
        s.mine("i"),
        s.person("i.user")
    );
    table(
        title,
        &format!(
            "The {OLDEST} {what} open longest, whatever the time range; the title links to GitHub."
        ),
        sql,
        Some("Title"),
    )
}
