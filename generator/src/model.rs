//! The typed model: what a validated config means, with every default applied.
//!
//! `validate` is the only producer of a [`Config`]; holding one proves that every name is a
//! valid Kubernetes name, every repository is `owner/name`, every metric parsed with the
//! runtime's own grammar and every Prometheus config passed its typed checks. Rendering can
//! therefore not fail on user input, only on a broken template.

use std::collections::BTreeMap;
use std::net::IpAddr;

use serde::Serialize;
use velodrome_model::bots::Bots;
use velodrome_model::metric::MetricSpec;
use velodrome_model::names::{DnsLabel, RepoName};
use velodrome_model::plan::{MetricEntry, TransformPlan};

use crate::prometheus::PrometheusConfig;

/// The whole deployment.
#[derive(Debug, Clone)]
pub struct Config {
    /// Namespace of every object.
    pub namespace: DnsLabel,
    /// Images after overrides.
    pub images: Images,
    /// Where MySQL is.
    pub mysql: Mysql,
    /// GitHub tokens and API URL.
    pub github: Github,
    /// Loop interval of the fetchers.
    pub fetch_interval: String,
    /// Loop interval of the transforms.
    pub transform_interval: String,
    /// The token counter, when configured.
    pub token_counter: Option<TokenCounter>,
    /// Requests and limits per component name.
    pub resources: BTreeMap<&'static str, Resources>,
    /// Who is a bot, for every project's metrics and dashboards.
    pub bots: Bots,
    /// Projects, sorted by name so output does not depend on key order.
    pub projects: Vec<Project>,
}

/// Container images, one per component.
#[derive(Debug, Clone, Serialize)]
#[allow(missing_docs)]
pub struct Images {
    pub velodrome: String,
    pub influxdb: String,
    pub grafana: String,
    pub nginx: String,
    pub prometheus: String,
    pub mariadb: String,
    pub cloudsql_proxy: String,
}

impl Default for Images {
    fn default() -> Self {
        Self {
            velodrome: "velodrome/velodrome:0.1.0".into(),
            influxdb: "influxdb:1.8.10".into(),
            grafana: "grafana/grafana:11.3.0".into(),
            nginx: "nginx:1.27-alpine".into(),
            prometheus: "prom/prometheus:v2.53.2".into(),
            mariadb: "mariadb:10.11".into(),
            cloudsql_proxy: "gcr.io/cloud-sql-connectors/cloud-sql-proxy:2.14.0".into(),
        }
    }
}

/// Where the MySQL mirror lives and how to reach it.
#[derive(Debug, Clone, Serialize)]
pub struct Mysql {
    /// How it is deployed.
    pub mode: MysqlMode,
    /// Database name.
    pub database: String,
    /// Secret with `user`, `password` (and `root-password` in-cluster).
    pub secret: String,
    /// Secret with `user` and `password` of the read-only account of the Grafana
    /// datasources, so a dashboard query can never write or read the sync state.
    pub grafana_secret: String,
    /// Secret with `user` and `password` of an account that may create users and grant
    /// (cloudsql and external modes; in-cluster the grants Job uses root).
    pub admin_secret: Option<String>,
    /// Host the runtime connects to.
    pub host: String,
    /// Port the runtime connects to.
    pub port: u16,
}

/// The three ways of providing MySQL.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum MysqlMode {
    /// A MariaDB Deployment with a volume of this size.
    InCluster {
        /// PVC size.
        storage: String,
    },
    /// The Cloud SQL Auth proxy for this instance.
    Cloudsql {
        /// project:region:instance.
        instance: String,
    },
    /// A server run elsewhere; nothing is rendered for it.
    External,
}

/// GitHub access for the fetchers.
#[derive(Debug, Clone, Serialize)]
pub struct Github {
    /// Secret holding the token files.
    pub secret: String,
    /// Keys of that Secret, one token each.
    pub tokens: Vec<String>,
    /// API base URL.
    pub url: String,
}

/// The token counter and the project whose InfluxDB receives its points.
#[derive(Debug, Clone, Serialize)]
pub struct TokenCounter {
    /// Target project.
    pub project: DnsLabel,
    /// Token keys in the GitHub Secret.
    pub tokens: Vec<String>,
    /// Loop interval.
    pub interval: String,
}

/// Kubernetes requests and limits.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Resources {
    /// Requests by resource name.
    pub requests: BTreeMap<String, String>,
    /// Limits by resource name.
    pub limits: BTreeMap<String, String>,
}

/// One project: one dashboard site.
#[derive(Debug, Clone)]
pub struct Project {
    /// Project name, a DNS label short enough for every composed name.
    pub name: DnsLabel,
    /// Repositories sorted by name.
    pub repositories: Vec<Repository>,
    /// The public entry point.
    pub nginx: Nginx,
    /// Grafana settings.
    pub grafana: Grafana,
    /// Prometheus, when configured.
    pub prometheus: Option<Prometheus>,
    /// PVC sizes.
    pub storage: Storage,
}

/// A repository and the metrics computed for it.
#[derive(Debug, Clone)]
pub struct Repository {
    /// owner/name.
    pub name: RepoName,
    /// Metrics in name order.
    pub metrics: Vec<Metric>,
}

/// One metric: a measurement name and a definition the runtime accepts.
#[derive(Debug, Clone)]
pub struct Metric {
    /// The InfluxDB measurement.
    pub name: String,
    /// Plugin as written (or the default `count`).
    pub plugin: String,
    /// Arguments as written.
    pub args: Vec<String>,
    /// The parsed definition (proof that the runtime accepts it).
    pub spec: MetricSpec,
}

/// The nginx front door.
#[derive(Debug, Clone, Serialize)]
pub struct Nginx {
    /// Static IP of the Service, when reserved.
    pub public_ip: Option<IpAddr>,
    /// Service type.
    pub service_type: String,
}

/// Grafana settings.
#[derive(Debug, Clone, Serialize)]
pub struct Grafana {
    /// Google Analytics id, empty for none.
    pub google_analytics_uaid: String,
    /// Anonymous viewers allowed.
    pub anonymous_access: bool,
    /// Public URL, when Grafana must know it.
    pub root_url: Option<String>,
}

/// Prometheus for one project.
#[derive(Debug, Clone)]
pub struct Prometheus {
    /// The checked scrape config.
    pub config: PrometheusConfig,
    /// How long samples are kept.
    pub retention: String,
}

/// PVC sizes.
#[derive(Debug, Clone, Serialize)]
#[allow(missing_docs)]
pub struct Storage {
    pub influxdb: String,
    pub grafana: String,
    pub prometheus: String,
}

impl Default for Storage {
    fn default() -> Self {
        Self {
            influxdb: "100Gi".into(),
            grafana: "10Gi".into(),
            prometheus: "100Gi".into(),
        }
    }
}

/// Default requests and limits per component: small, since every server here is lightly
/// loaded, and always set, since a pod without them is the first evicted.
pub fn default_resources(component: &str) -> Resources {
    let (req_cpu, req_mem, lim_mem) = match component {
        "influxdb" => ("100m", "512Mi", "2Gi"),
        "grafana" => ("50m", "128Mi", "512Mi"),
        "nginx" => ("10m", "32Mi", "128Mi"),
        "prometheus" => ("100m", "512Mi", "2Gi"),
        "mysql" => ("100m", "512Mi", "2Gi"),
        "transform" => ("100m", "256Mi", "1Gi"),
        _ => ("50m", "64Mi", "256Mi"),
    };
    Resources {
        requests: BTreeMap::from([
            ("cpu".into(), req_cpu.into()),
            ("memory".into(), req_mem.into()),
        ]),
        limits: BTreeMap::from([("memory".into(), lim_mem.into())]),
    }
}

/// Components that take resources, in the order the schema lists them.
pub const COMPONENTS: [&str; 8] = [
    "influxdb",
    "grafana",
    "nginx",
    "prometheus",
    "fetcher",
    "transform",
    "token-counter",
    "mysql",
];

impl Project {
    /// The plan the project's transform Deployment runs, with the config's bots.
    pub fn transform_plan(&self, bots: &Bots) -> TransformPlan {
        TransformPlan {
            project: self.name.to_string(),
            bots: bots.patterns().to_vec(),
            repositories: self
                .repositories
                .iter()
                .filter(|r| !r.metrics.is_empty())
                .map(|r| {
                    let metrics = r
                        .metrics
                        .iter()
                        .map(|m| {
                            (
                                m.name.clone(),
                                MetricEntry {
                                    plugin: m.plugin.clone(),
                                    args: m.args.clone(),
                                },
                            )
                        })
                        .collect();
                    (r.name.clone(), metrics)
                })
                .collect(),
        }
    }

    /// Every distinct metric name of the project, with one definition for each (the first
    /// repository's), in name order: what the dashboards chart.
    pub fn distinct_metrics(&self) -> Vec<&Metric> {
        let mut seen = BTreeMap::new();
        for repo in &self.repositories {
            for metric in &repo.metrics {
                seen.entry(metric.name.as_str()).or_insert(metric);
            }
        }
        seen.into_values().collect()
    }
}
