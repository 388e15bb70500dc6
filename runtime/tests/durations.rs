//! The `duration` metrics of the bundled config.yaml, on a generated repository of 2,000
//! issues and pull requests: the points read back from influxd, week by week, equal
//! durations computed independently by SQL over the same MySQL rows.

mod support;

use std::collections::BTreeMap;

use mysql_async::Pool;
use mysql_async::prelude::Queryable;
use velodrome_model::metric::{EventMatcher, MetricSpec};

use support::history::{REPO, fixture, generate_over, load, ok, transform};
use support::influx::InfluxServer;

/// Seconds in a week: InfluxDB's `GROUP BY time(1w)` buckets start on multiples of it.
const WEEK: i64 = 604_800;

/// Seconds since the epoch of a DATETIME column, whatever the session time zone.
fn unix(column: &str) -> String {
    format!("TIMESTAMPDIFF(SECOND, '1970-01-01 00:00:00', {column})")
}

/// SQL for the rows an event description matches, on table alias `e` of `issue_events`.
fn matching(event: &EventMatcher) -> String {
    match event {
        EventMatcher::Merged => "e.event = 'merged'".to_owned(),
        EventMatcher::Closed => "e.event = 'closed'".to_owned(),
        EventMatcher::Labeled(label) => format!("e.event = 'labeled' AND e.label = '{label}'"),
        other => panic!("no SQL written for {other}"),
    }
}

/// (completion second, seconds) of every item the metric completes, by SQL alone.
async fn durations_by_sql(pool: &Pool, spec: &MetricSpec) -> Vec<(i64, i64)> {
    let duration = spec.duration().expect("a duration metric");
    let is_pr = spec.filter().includes_pull_requests();
    // Items opened by the generated data's two robots are left out (the default bots).
    let items = format!(
        "FROM issues i WHERE i.repository = '{REPO}' AND i.is_pr = {is_pr}
           AND i.user NOT IN ('k8s-ci-robot', 'k8s-merge-robot')"
    );
    let sql = match (duration.from(), duration.to()) {
        (EventMatcher::Opened, EventMatcher::Responded) => format!(
            // The first comment (either kind), label or close by someone else, not a robot.
            "SELECT t, t - start FROM (
               SELECT {created} AS start, LEAST(
                 COALESCE((SELECT MIN({ct}) FROM comments c
                   WHERE c.repository = i.repository AND c.issue_id = i.id
                     AND c.user <> i.user AND c.user NOT IN ('k8s-ci-robot', 'k8s-merge-robot')),
                   9999999999),
                 COALESCE((SELECT MIN({et}) FROM issue_events e
                   WHERE e.repository = i.repository AND e.issue_id = i.id
                     AND e.event IN ('labeled', 'closed') AND e.actor IS NOT NULL
                     AND e.actor <> i.user AND e.actor NOT IN ('k8s-ci-robot', 'k8s-merge-robot')),
                   9999999999)) AS t
               {items}) x WHERE t < 9999999999",
            created = unix("i.issue_created_at"),
            ct = unix("c.comment_created_at"),
            et = unix("e.event_created_at"),
        ),
        (EventMatcher::Opened, to) => format!(
            "SELECT t, t - start FROM (
               SELECT {created} AS start,
                 (SELECT MIN({et}) FROM issue_events e
                   WHERE e.repository = i.repository AND e.issue_id = i.id AND {to}) AS t
               {items}) x WHERE t IS NOT NULL",
            created = unix("i.issue_created_at"),
            et = unix("e.event_created_at"),
            to = matching(to),
        ),
        (from, to) => format!(
            // From the first `from` event to the first `to` event after it (events of one
            // second are in id order, as the transform reads them).
            "SELECT {et2}, {et2} - {st} FROM (
               SELECT i.repository, i.id,
                 (SELECT e.event_created_at FROM issue_events e
                   WHERE e.repository = i.repository AND e.issue_id = i.id AND {from}
                   ORDER BY e.event_created_at, e.id LIMIT 1) AS start_at,
                 (SELECT e.id FROM issue_events e
                   WHERE e.repository = i.repository AND e.issue_id = i.id AND {from}
                   ORDER BY e.event_created_at, e.id LIMIT 1) AS start_id
               {items}) s
             JOIN issue_events e2 ON e2.id = (
               SELECT e.id FROM issue_events e
                WHERE e.repository = s.repository AND e.issue_id = s.id AND {to}
                  AND (e.event_created_at > s.start_at
                       OR (e.event_created_at = s.start_at AND e.id > s.start_id))
                ORDER BY e.event_created_at, e.id LIMIT 1)
              AND e2.repository = s.repository",
            st = unix("s.start_at"),
            et2 = unix("e2.event_created_at"),
            from = matching(from),
            to = matching(to),
        ),
    };
    let mut conn = pool.get_conn().await.expect("MySQL");
    conn.query(sql).await.expect("duration SQL")
}

/// Week start -> (count, sum of seconds), as `GROUP BY time(1w)` buckets them.
fn weekly(durations: &[(i64, i64)]) -> BTreeMap<i64, (i64, i64)> {
    let mut weeks = BTreeMap::new();
    for (at, seconds) in durations {
        let week = at - at.rem_euclid(WEEK);
        let entry = weeks.entry(week).or_insert((0, 0));
        entry.0 += 1;
        entry.1 += seconds;
    }
    weeks
}

/// Week start -> (count, sum) of a measurement's `seconds`, from influxd.
async fn weekly_from_influx(influx: &InfluxServer, measurement: &str) -> BTreeMap<i64, (i64, i64)> {
    let query = format!(
        "SELECT count(\"seconds\"), sum(\"seconds\") FROM \"{measurement}\" \
         WHERE time >= 0s AND time < 4000000000s GROUP BY time(1w) fill(none)"
    );
    let result = influx.query("github", &query, "s").await;
    assert!(result["error"].is_null(), "{query}: {result}");
    let mut weeks = BTreeMap::new();
    for series in result["series"].as_array().into_iter().flatten() {
        for row in series["values"].as_array().into_iter().flatten() {
            let week = row[0].as_i64().expect("time");
            let count = row[1].as_i64().expect("count");
            let sum = row[2].as_i64().expect("sum");
            weeks.insert(week, (count, sum));
        }
    }
    weeks
}

#[tokio::test(flavor = "multi_thread")]
async fn bundled_durations_equal_sql_week_by_week() {
    let Some(fx) = fixture("transform_durations").await else {
        return;
    };
    let Some(influx) = support::influx::start().await else {
        return;
    };
    // Opened over most of a year, events over months: many weeks to compare.
    let data = generate_over(2_026, 2_000, 24_000, 600);
    load(&fx.pool, &data).await;
    let path = support::bundled::kubernetes_metrics_file(fx.dir.path());
    let metrics: Vec<(String, MetricSpec)> = support::bundled::kubernetes_metrics()
        .into_iter()
        .map(|(name, m)| {
            let spec = MetricSpec::parse(&m.plugin, &m.args).expect("the bundled metrics parse");
            (name, spec)
        })
        .collect();
    ok(&transform(&fx, Some((&influx, "github")), &path, &[]));

    let mut checked = Vec::new();
    for (name, spec) in &metrics {
        if spec.duration().is_none() {
            continue;
        }
        let by_sql = weekly(&durations_by_sql(&fx.pool, spec).await);
        let by_influx = weekly_from_influx(&influx, name).await;
        let points: i64 = by_sql.values().map(|(n, _)| n).sum();
        assert!(points > 20, "{name}: only {points} completions in the data");
        assert_eq!(by_influx, by_sql, "{name}: week -> (count, sum of seconds)");
        checked.push(format!("{name}: {points} points in {} weeks", by_sql.len()));
    }
    println!("{}", checked.join("\n"));
    assert!(checked.iter().all(|c| !c.ends_with(" 1 weeks")));
    // Seven, and time to first response by SIG: the generated rows have no sig/ labels,
    // so its one series (sig=none) equals SQL over every pull request.
    assert_eq!(
        checked.len(),
        8,
        "the bundled Kubernetes set has eight durations"
    );
}
