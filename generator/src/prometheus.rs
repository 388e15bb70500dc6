//! A typed Prometheus configuration: the subset velogen accepts, with unknown fields
//! rejected. The original shipped `methids_path` in an opaque string and nothing noticed;
//! here a typo fails validation with its line, and the rendered `prometheus.yml` is this
//! struct serialized, so what Prometheus loads is exactly what was checked.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The top level of `prometheus.yml`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrometheusConfig {
    /// Defaults for every scrape job.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub global: Option<Global>,
    /// The jobs to scrape.
    #[serde(default)]
    pub scrape_configs: Vec<ScrapeConfig>,
}

/// `global:` settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Global {
    /// How often to scrape by default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scrape_interval: Option<String>,
    /// Per-scrape timeout by default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scrape_timeout: Option<String>,
    /// How often rules are evaluated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evaluation_interval: Option<String>,
    /// Labels added to every series.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub external_labels: BTreeMap<String, String>,
}

/// One scrape job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScrapeConfig {
    /// Unique job name.
    pub job_name: String,
    /// Override of the global interval.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scrape_interval: Option<String>,
    /// Override of the global timeout.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scrape_timeout: Option<String>,
    /// Path of the metrics endpoint (default /metrics).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics_path: Option<String>,
    /// `http` or `https`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheme: Option<String>,
    /// Keep the target's labels on conflict.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub honor_labels: Option<bool>,
    /// Keep the target's timestamps.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub honor_timestamps: Option<bool>,
    /// URL parameters of the scrape request.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub params: BTreeMap<String, Vec<String>>,
    /// Fixed targets.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub static_configs: Vec<StaticConfig>,
    /// Relabelling before the scrape.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub relabel_configs: Vec<RelabelConfig>,
    /// Relabelling of scraped series.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub metric_relabel_configs: Vec<RelabelConfig>,
}

/// A fixed list of targets with shared labels.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StaticConfig {
    /// host:port (or URLs, for a blackbox job).
    pub targets: Vec<String>,
    /// Labels for these targets.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
}

/// One relabelling rule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RelabelConfig {
    /// Labels whose values are joined as the input.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub source_labels: Vec<String>,
    /// Join separator.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub separator: Option<String>,
    /// The label written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_label: Option<String>,
    /// Regex matched against the input.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub regex: Option<String>,
    /// Modulus for hashmod.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub modulus: Option<u64>,
    /// Replacement text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replacement: Option<String>,
    /// What to do.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<RelabelAction>,
}

/// Relabel actions Prometheus knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[allow(missing_docs)]
pub enum RelabelAction {
    Replace,
    Keep,
    Drop,
    Hashmod,
    Labelmap,
    Labeldrop,
    Labelkeep,
    Lowercase,
    Uppercase,
    Keepequal,
    Dropequal,
}

impl PrometheusConfig {
    /// Semantic checks serde cannot express; each problem as (JSON-ish path, message).
    pub fn problems(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        let check_duration =
            |out: &mut Vec<(String, String)>, path: String, value: &Option<String>| {
                if let Some(v) = value
                    && !is_prometheus_duration(v)
                {
                    out.push((
                        path,
                        format!("{v:?} is not a Prometheus duration (examples: 15s, 1m, 1h30m)"),
                    ));
                }
            };
        if let Some(global) = &self.global {
            check_duration(
                &mut out,
                "global.scrape_interval".into(),
                &global.scrape_interval,
            );
            check_duration(
                &mut out,
                "global.scrape_timeout".into(),
                &global.scrape_timeout,
            );
            check_duration(
                &mut out,
                "global.evaluation_interval".into(),
                &global.evaluation_interval,
            );
        }
        let mut seen = std::collections::BTreeSet::new();
        for (i, job) in self.scrape_configs.iter().enumerate() {
            check_duration(
                &mut out,
                format!("scrape_configs[{i}].scrape_interval"),
                &job.scrape_interval,
            );
            check_duration(
                &mut out,
                format!("scrape_configs[{i}].scrape_timeout"),
                &job.scrape_timeout,
            );
            if !seen.insert(job.job_name.clone()) {
                out.push((
                    format!("scrape_configs[{i}].job_name"),
                    format!("job name {:?} is used twice", job.job_name),
                ));
            }
            if let Some(scheme) = &job.scheme
                && scheme != "http"
                && scheme != "https"
            {
                out.push((
                    format!("scrape_configs[{i}].scheme"),
                    format!("scheme {scheme:?} must be http or https"),
                ));
            }
            if let Some(path) = &job.metrics_path
                && !path.starts_with('/')
            {
                out.push((
                    format!("scrape_configs[{i}].metrics_path"),
                    format!("metrics_path {path:?} must start with '/'"),
                ));
            }
            for (j, rule) in job
                .relabel_configs
                .iter()
                .chain(&job.metric_relabel_configs)
                .enumerate()
            {
                if let Some(regex) = &rule.regex
                    && let Err(err) = regex::Regex::new(&format!("^(?:{regex})$"))
                {
                    out.push((
                        format!("scrape_configs[{i}].relabel_configs[{j}].regex"),
                        format!("invalid regex: {err}"),
                    ));
                }
            }
        }
        out
    }
}

/// Prometheus' duration grammar: units y w d h m s ms, largest first, each at most once.
pub fn is_prometheus_duration(text: &str) -> bool {
    const UNITS: [&str; 7] = ["y", "w", "d", "h", "m", "s", "ms"];
    if text.is_empty() {
        return false;
    }
    let mut rest = text;
    let mut next_unit = 0;
    while !rest.is_empty() {
        let digits = rest.chars().take_while(char::is_ascii_digit).count();
        if digits == 0 {
            return false;
        }
        rest = &rest[digits..];
        let unit = if rest.starts_with("ms") {
            "ms"
        } else {
            match rest.chars().next() {
                Some(c) if "ywdhms".contains(c) => &rest[..1],
                _ => return false,
            }
        };
        let Some(pos) = UNITS.iter().position(|u| *u == unit) else {
            return false;
        };
        if pos < next_unit {
            return false;
        }
        next_unit = pos + 1;
        rest = &rest[unit.len()..];
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        for ok in ["1m", "15s", "1h30m", "100ms", "1y2w", "0s"] {
            assert!(is_prometheus_duration(ok), "{ok}");
        }
        for bad in ["", "1", "m", "30x", "1m1h", "1s1s", "-1m"] {
            assert!(!is_prometheus_duration(bad), "{bad}");
        }
    }
}
