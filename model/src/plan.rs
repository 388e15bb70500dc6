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
    /// Plugin name: `count` or `duration`.
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
    /// Login patterns of bots (see [`crate::bots`]). Written only when they differ from
    /// [`crate::bots::DEFAULT_BOTS`], which a plan without the key means: plans rendered
    /// before bots existed read the same, and a config that keeps the default renders the
    /// same plan (and the same pod checksum) as before.
    #[serde(default = "default_bots", skip_serializing_if = "is_default_bots")]
    pub bots: Vec<String>,
}

fn default_bots() -> Vec<String> {
    crate::bots::DEFAULT_BOTS
        .iter()
        .map(|p| (*p).to_owned())
        .collect()
}

fn is_default_bots(bots: &[String]) -> bool {
    bots.iter()
        .map(String::as_str)
        .eq(crate::bots::DEFAULT_BOTS)
}
