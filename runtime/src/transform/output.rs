//! Computed points to InfluxDB points: the field names and types dashboards query
//! (integers `event`, `comment`, `count`, `sum`, `"<p>%"`, string `author` for `count`;
//! integers `seconds` and `number` for `duration`), tag `repository`, nanosecond
//! timestamps (see the module docs of `transform`).

use velodrome_model::metric::MetricSpec;

use super::engine::{Point, Values};
use crate::influx::{Batch, Field, InfluxError};

/// The names of a metric's percentile fields (`"50%"`), computed once per metric.
pub fn percentile_fields(spec: &MetricSpec) -> Vec<String> {
    spec.count()
        .map(|count| {
            count
                .percentiles()
                .iter()
                .map(|p| format!("{p}%"))
                .collect()
        })
        .unwrap_or_default()
}

/// Appends the InfluxDB point of a computed `point` of metric `name` for `repository`
/// to a nanosecond batch.
pub fn add_point(
    batch: &mut Batch,
    name: &str,
    repository: &str,
    point: &Point,
    percentile_fields: &[String],
) -> Result<(), InfluxError> {
    let time = u64::try_from(point.time_ns).unwrap_or(0);
    let tags = [("repository", repository)];
    let author = point.author.as_deref().map(|a| ("author", Field::Str(a)));
    match &point.values {
        Values::Event | Values::Comment => {
            let key = if point.values == Values::Event {
                "event"
            } else {
                "comment"
            };
            match author {
                Some(author) => batch.add(name, &tags, &[(key, Field::Int(1)), author], time),
                None => batch.add(name, &tags, &[(key, Field::Int(1))], time),
            }
        }
        Values::Duration { seconds, number } => batch.add(
            name,
            &tags,
            &[
                ("seconds", Field::Int(*seconds)),
                ("number", Field::Int(*number)),
            ],
            time,
        ),
        Values::State(values) => {
            let mut fields = Vec::with_capacity(3 + values.percentiles.len());
            fields.push(("count", Field::Int(values.count)));
            fields.push(("sum", Field::Int(values.sum)));
            for (field, value) in percentile_fields.iter().zip(&values.percentiles) {
                fields.push((field.as_str(), Field::Int(*value)));
            }
            fields.extend(author);
            batch.add(name, &tags, &fields, time)
        }
    }
}
