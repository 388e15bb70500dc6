//! The transform plan: the file velogen renders into each project's transform ConfigMap and
//! `velodrome transform --plan` reads. One schema on both sides is what makes "a config that
//! renders is a config the runtime accepts" true for metrics.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::names::RepoName;

/// One metric as config.yaml writes it: a plugin and its arguments.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricEntry {
    /// Plugin name; `count` is the only one.
    pub plugin: String,
    /// Plugin arguments, as on a command line.
    #[serde(default)]
    pub args: Vec<String>,
}

/// Every repository of one project with the metrics to compute for it, keyed by metric name
/// (the InfluxDB measurement).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TransformPlan {
    /// The project the plan belongs to (informational; used in logs).
    pub project: String,
    /// Repository -> metric name -> metric.
    pub repositories: BTreeMap<RepoName, BTreeMap<String, MetricEntry>>,
}
