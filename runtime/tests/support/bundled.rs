//! The bundled config.yaml as the runtime sees it: velogen loads it and renders the
//! Kubernetes project's transform plan, so tests run exactly what is deployed.

use std::collections::BTreeMap;
use std::path::Path;

use velodrome_model::plan::MetricEntry;

/// The metrics of the Kubernetes project's first repository, by name.
pub fn kubernetes_metrics() -> BTreeMap<String, MetricEntry> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../config.yaml");
    let valid = velogen::load(&path).unwrap_or_else(|d| panic!("config.yaml: {d:?}"));
    let project = valid
        .config
        .projects
        .iter()
        .find(|p| p.name.as_str() == "kubernetes")
        .expect("the kubernetes project");
    let plan = project.transform_plan(&valid.config.bots);
    plan.repositories
        .into_values()
        .next()
        .expect("a repository with metrics")
}

/// [`kubernetes_metrics`] as a `--metrics-file` in `dir`.
pub fn kubernetes_metrics_file(dir: &Path) -> std::path::PathBuf {
    let path = dir.join("bundled-metrics.yaml");
    let yaml = serde_saphyr::to_string(&kubernetes_metrics()).expect("metrics YAML");
    std::fs::write(&path, yaml).expect("write the metrics file");
    path
}
