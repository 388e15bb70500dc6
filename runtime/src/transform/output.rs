//! Computed points to InfluxDB points: the field names and types dashboards query
//! (integers `event`, `comment`, `count`, `sum`, `"<p>%"`, the age buckets and `inactive`,
//! string `author` for `count`; integers `seconds` and `number` for `duration`), tag
//! `repository` plus one tag per `--by-label` family, nanosecond timestamps (see the
//! module docs of `transform`).

use smallvec::SmallVec;
use velodrome_model::metric::MetricSpec;
use velodrome_model::metric::count::bucket_fields;

use super::engine::{Point, Values};
use crate::influx::{Batch, Field, InfluxError};

/// The names a metric's points use besides the fixed ones, computed once per metric.
#[derive(Debug, Clone, Default)]
pub struct Shape {
    percentiles: Vec<String>,
    buckets: Vec<String>,
    slice_tags: Vec<String>,
}

impl Shape {
    /// The field and tag names of `spec`'s points.
    pub fn of(spec: &MetricSpec) -> Self {
        let (percentiles, buckets) = spec.count().map_or_else(Default::default, |count| {
            (
                count
                    .percentiles()
                    .iter()
                    .map(|p| format!("{p}%"))
                    .collect(),
                bucket_fields(count.age_buckets()),
            )
        });
        Self {
            percentiles,
            buckets,
            slice_tags: spec
                .slices()
                .families()
                .iter()
                .map(|f| f.tag().to_owned())
                .collect(),
        }
    }
}

/// Appends the InfluxDB point of a computed `point` of metric `name` for `repository`
/// to a nanosecond batch.
pub fn add_point(
    batch: &mut Batch,
    name: &str,
    repository: &str,
    point: &Point,
    shape: &Shape,
) -> Result<(), InfluxError> {
    let time = u64::try_from(point.time_ns).unwrap_or(0);
    // Inline lists: a point is written for most items, and must not allocate.
    let mut tags: SmallVec<[(&str, &str); 4]> = SmallVec::new();
    tags.push(("repository", repository));
    if let Some(slice) = &point.slice {
        for (tag, value) in shape.slice_tags.iter().zip(slice.iter()) {
            tags.push((tag.as_str(), value.as_str()));
        }
    }
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
            let mut fields: SmallVec<[(&str, Field<'_>); 12]> = SmallVec::new();
            fields.push(("count", Field::Int(values.count)));
            fields.push(("sum", Field::Int(values.sum)));
            for (field, value) in shape.percentiles.iter().zip(&values.percentiles) {
                fields.push((field.as_str(), Field::Int(*value)));
            }
            for (field, value) in shape.buckets.iter().zip(&values.buckets) {
                fields.push((field.as_str(), Field::Int(*value)));
            }
            if let Some(inactive) = values.inactive {
                fields.push(("inactive", Field::Int(inactive)));
            }
            fields.extend(author);
            batch.add(name, &tags, &fields, time)
        }
    }
}
