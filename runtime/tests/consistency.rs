//! What velogen renders for the runtime is what the runtime accepts: every container that
//! runs `velodrome` parses with the runtime's own argument parser, every file it is told to
//! read is mounted where it looks, and the transform plan it reads parses with every metric
//! accepted by the runtime's grammar.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use clap::Parser;
use serde_json::Value;
use velodrome::cli::{Cli, Mode};
use velodrome_model::metric::MetricSpec;
use velodrome_model::plan::TransformPlan;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn rendered(config: &str) -> Vec<Value> {
    let valid = velogen::load(&root().join(config)).unwrap_or_else(|d| panic!("{config}: {d:?}"));
    let templates = velogen::render::Templates::embedded().expect("templates");
    let objects = velogen::render_config(&valid.config, &templates).expect("renders");
    objects
        .iter()
        .map(|o| serde_json::to_value(&o.object).expect("JSON"))
        .collect()
}

/// What a mount holds: (`ConfigMap` or `Secret`, its name, the file names it projects).
type Volume = (String, String, Vec<String>);

/// Mount path -> volume, for every volume of a pod.
fn mounts(pod: &Value, config_maps: &BTreeMap<String, Value>) -> BTreeMap<String, Volume> {
    let mut volumes = BTreeMap::new();
    for v in pod["volumes"].as_array().into_iter().flatten() {
        let name = v["name"].as_str().unwrap_or_default().to_owned();
        if let Some(cm) = v["configMap"]["name"].as_str() {
            let keys: Vec<String> = match v["configMap"]["items"].as_array() {
                Some(items) => items
                    .iter()
                    .filter_map(|i| i["path"].as_str().map(str::to_owned))
                    .collect(),
                None => config_maps
                    .get(cm)
                    .and_then(|d| d.as_object())
                    .map(|d| d.keys().cloned().collect())
                    .unwrap_or_default(),
            };
            volumes.insert(name, ("ConfigMap".to_owned(), cm.to_owned(), keys));
        } else if let Some(secret) = v["secret"]["secretName"].as_str() {
            volumes.insert(name, ("Secret".to_owned(), secret.to_owned(), Vec::new()));
        }
    }
    let mut out = BTreeMap::new();
    for c in pod["containers"].as_array().into_iter().flatten() {
        for m in c["volumeMounts"].as_array().into_iter().flatten() {
            if let Some(volume) = volumes.get(m["name"].as_str().unwrap_or_default()) {
                out.insert(
                    m["mountPath"]
                        .as_str()
                        .unwrap_or_default()
                        .trim_end_matches('/')
                        .to_owned(),
                    volume.clone(),
                );
            }
        }
    }
    out
}

/// The volume that holds `file`, and the key the file name must be.
fn mounted<'m>(file: &Path, mounts: &'m BTreeMap<String, Volume>) -> Option<(&'m Volume, String)> {
    let dir = file.parent()?.to_str()?;
    let key = file.file_name()?.to_str()?.to_owned();
    mounts.get(dir).map(|m| (m, key))
}

#[test]
fn every_runtime_container_parses_and_reads_only_what_is_mounted() {
    let mut checked = 0;
    for config in [
        "config.yaml",
        "tests/golden/legacy/config.yaml",
        "tests/golden/cloudsql/config.yaml",
        "tests/golden/no-prometheus/config.yaml",
        "tests/golden/literal-values/config.yaml",
    ] {
        let docs = rendered(config);
        let config_maps: BTreeMap<String, Value> = docs
            .iter()
            .filter(|d| d["kind"] == "ConfigMap")
            .map(|d| {
                (
                    d["metadata"]["name"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned(),
                    d["data"].clone(),
                )
            })
            .collect();
        for d in docs.iter().filter(|d| d["kind"] == "Deployment") {
            let pod = &d["spec"]["template"]["spec"];
            let mounts = mounts(pod, &config_maps);
            for c in pod["containers"].as_array().into_iter().flatten() {
                if !c["image"]
                    .as_str()
                    .unwrap_or_default()
                    .contains("velodrome")
                {
                    continue;
                }
                let name = format!("{config}: {}", d["metadata"]["name"]);
                let env: Vec<String> = c["env"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|e| e["name"].as_str().map(str::to_owned))
                    .collect();
                let mut args: Vec<String> = vec!["velodrome".into()];
                args.extend(
                    c["args"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(|a| a.as_str().map(str::to_owned)),
                );
                // The flags that come from the environment in the pod are given as flags here
                // (setting the test process's environment would race other tests).
                let mode = args.get(1).cloned().unwrap_or_default();
                if env.iter().any(|e| e == "VELODROME_MYSQL_URL") && mode != "token-counter" {
                    args.extend(["--mysql-url".into(), "mysql://u:p@mysql:3306/github".into()]);
                }
                if env.iter().any(|e| e == "VELODROME_INFLUX_PASSWORD") {
                    args.extend(["--influx-password".into(), "x".into()]);
                }
                let cli = Cli::try_parse_from(&args).unwrap_or_else(|e| {
                    panic!("{name}: the runtime refuses its args {args:?}:\n{e}")
                });
                match &cli.mode {
                    Mode::Fetcher(f) => {
                        assert!(
                            env.iter().any(|e| e == "VELODROME_MYSQL_URL"),
                            "{name}: no MySQL URL in env"
                        );
                        assert!(!f.repositories.is_empty());
                        for token in &f.github.token_files {
                            let ((kind, _, _), _) = mounted(token, &mounts).unwrap_or_else(|| {
                                panic!("{name}: token file {} is not mounted", token.display())
                            });
                            assert_eq!(kind, "Secret", "{name}: tokens come from a Secret");
                        }
                    }
                    Mode::TokenCounter(t) => {
                        for token in &t.github.token_files {
                            let ((kind, _, _), _) = mounted(token, &mounts).unwrap_or_else(|| {
                                panic!("{name}: token file {} is not mounted", token.display())
                            });
                            assert_eq!(kind, "Secret");
                        }
                    }
                    Mode::Transform(t) => {
                        let plan_path = t
                            .plan
                            .as_ref()
                            .unwrap_or_else(|| panic!("{name}: the project transform runs a plan"));
                        let ((kind, cm, keys), key) =
                            mounted(plan_path, &mounts).unwrap_or_else(|| {
                                panic!("{name}: plan {} is not mounted", plan_path.display())
                            });
                        assert_eq!(kind, "ConfigMap");
                        assert!(
                            keys.contains(&key),
                            "{name}: ConfigMap {cm} has no key {key}"
                        );
                        let text = config_maps[cm][&key].as_str().expect("plan text");
                        let plan: TransformPlan = serde_saphyr::from_str(text)
                            .unwrap_or_else(|e| panic!("{name}: the plan does not parse: {e}"));
                        let mut metrics = 0;
                        for (repo, entries) in &plan.repositories {
                            for (metric, entry) in entries {
                                MetricSpec::parse(&entry.plugin, &entry.args)
                                    .unwrap_or_else(|e| panic!("{name}: {repo} {metric}: {e}"));
                                metrics += 1;
                            }
                        }
                        assert!(metrics > 0, "{name}: an empty plan");
                    }
                }
                checked += 1;
            }
        }
    }
    assert!(checked >= 15, "checked only {checked} runtime containers");
}
