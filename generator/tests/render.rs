//! What every render must be, whatever the config: labelled for `kubectl -l`, free of
//! secret values, selectable, and faithful to the literal values of the config.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn velogen(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_velogen"))
        .args(args)
        .current_dir(root())
        .output()
        .expect("velogen runs")
}

fn docs(out: &Output) -> Vec<Value> {
    assert!(
        out.status.success(),
        "render failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout.clone()).expect("UTF-8");
    assert!(text.starts_with("---\n"), "every document starts with ---");
    serde_saphyr::from_multiple::<Value>(&text)
        .expect("output is YAML")
        .into_iter()
        .filter(|d| !d.is_null())
        .collect()
}

fn label<'a>(doc: &'a Value, key: &str) -> Option<&'a str> {
    doc.pointer("/metadata/labels")
        .and_then(|l| l.get(key))
        .and_then(Value::as_str)
}

const CONFIGS: [&str; 2] = ["config.yaml", "tests/golden/legacy/config.yaml"];

#[test]
fn every_object_is_labelled_and_project_objects_name_their_project() {
    for config in CONFIGS {
        let all = docs(&velogen(&["render", "-c", config]));
        assert!(all.len() > 40, "{config}: only {} objects", all.len());
        for doc in &all {
            let id = format!("{config}: {}/{}", doc["kind"], doc["metadata"]["name"]);
            assert!(label(doc, "app").is_some(), "{id} has no app label");
            assert_eq!(
                label(doc, "app.kubernetes.io/managed-by"),
                Some("velogen"),
                "{id}"
            );
            assert_eq!(
                label(doc, "app.kubernetes.io/part-of"),
                Some("velodrome"),
                "{id}"
            );
            let global = matches!(
                label(doc, "app"),
                Some("velodrome" | "mysql" | "cloudsql-proxy" | "mysql-grants")
            );
            assert_eq!(
                label(doc, "project").is_some(),
                !global,
                "{id}: project label"
            );
        }
    }
}

#[test]
fn selectors_pick_what_kubectl_would() {
    for config in CONFIGS {
        let istio = docs(&velogen(&["render", "-c", config, "-l", "project=istio"]));
        assert!(!istio.is_empty());
        assert!(
            istio.iter().all(|d| label(d, "project") == Some("istio")),
            "{config}: -l project=istio"
        );
        let fetchers = docs(&velogen(&["render", "-c", config, "-l", "app=fetcher"]));
        assert_eq!(fetchers.len(), 4, "{config}: one fetcher per project");
        assert!(fetchers.iter().all(|d| label(d, "app") == Some("fetcher")));
        let both = docs(&velogen(&[
            "render",
            "-c",
            config,
            "-l",
            "app=fetcher,project=istio",
        ]));
        assert_eq!(both.len(), 1);
        let not_nginx = docs(&velogen(&["render", "-c", config, "-l", "app!=nginx"]));
        assert!(not_nginx.iter().all(|d| label(d, "app") != Some("nginx")));
    }
    let bad = velogen(&["render", "-l", "app=,=x"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(bad.stdout.is_empty());
}

/// Walks every string of a document.
fn strings<'a>(v: &'a Value, out: &mut Vec<(String, &'a str)>, path: String) {
    match v {
        Value::String(s) => out.push((path, s)),
        Value::Array(a) => a
            .iter()
            .enumerate()
            .for_each(|(i, x)| strings(x, out, format!("{path}[{i}]"))),
        Value::Object(m) => m
            .iter()
            .for_each(|(k, x)| strings(x, out, format!("{path}.{k}"))),
        _ => {}
    }
}

#[test]
fn no_secret_value_is_rendered_only_references() {
    for config in CONFIGS {
        let all = docs(&velogen(&["render", "-c", config]));
        assert!(
            all.iter().all(|d| d["kind"] != "Secret"),
            "{config}: a Secret object was rendered"
        );
        let mut secret_refs = BTreeSet::new();
        for doc in &all {
            let mut found = Vec::new();
            strings(doc, &mut found, String::new());
            for (path, _) in &found {
                if path.contains("secretKeyRef.name") || path.ends_with("secret.secretName") {
                    secret_refs.insert(path.clone());
                }
            }
            if let Some(containers) = doc
                .pointer("/spec/template/spec/containers")
                .and_then(Value::as_array)
            {
                for c in containers {
                    for env in c.get("env").and_then(Value::as_array).into_iter().flatten() {
                        let name = env["name"].as_str().unwrap_or_default();
                        let sensitive = ["PASSWORD", "PWD", "TOKEN", "SECRET"]
                            .iter()
                            .any(|w| name.contains(w));
                        if sensitive {
                            assert!(
                                env.get("value").is_none(),
                                "{config}: env {name} carries a literal value"
                            );
                            assert!(
                                env.pointer("/valueFrom/secretKeyRef").is_some(),
                                "{config}: env {name} is not a secret reference"
                            );
                        }
                    }
                    for arg in c
                        .get("args")
                        .and_then(Value::as_array)
                        .into_iter()
                        .flatten()
                    {
                        let arg = arg.as_str().unwrap_or_default();
                        assert!(
                            !arg.contains("password"),
                            "{config}: a password on a command line: {arg}"
                        );
                    }
                }
            }
        }
        assert!(
            !secret_refs.is_empty(),
            "{config}: expected secret references"
        );
    }
}

#[test]
fn literal_values_come_out_as_the_same_strings() {
    let all = docs(&velogen(&[
        "render",
        "-c",
        "tests/golden/literal-values/config.yaml",
    ]));
    // The project named `yes` stays the string "yes" in every label.
    assert!(
        all.iter()
            .filter(|d| label(d, "project").is_some())
            .all(|d| label(d, "project") == Some("yes"))
    );
    let plan_text = all
        .iter()
        .find(|d| d["kind"] == "ConfigMap" && d["metadata"]["name"] == "transform-yes")
        .and_then(|d| d.pointer("/data/plan.yaml"))
        .and_then(Value::as_str)
        .expect("the transform plan");
    let plan: velodrome_model::plan::TransformPlan =
        serde_saphyr::from_str(plan_text).expect("the plan parses as the runtime reads it");
    let repo = velodrome_model::names::RepoName::parse("yes-org/on").expect("repo");
    let args = &plan.repositories[&repo]["true"].args;
    assert_eq!(
        args[0],
        "--event=labeled:{{ project }} $(MYSQL_PASSWORD) ${HOME} $$x 'q' \"dq\""
    );
    assert_eq!(args[1], "--ignore-authors=yes,no,on,off,~,null");
    let repo = velodrome_model::names::RepoName::parse("n/null").expect("repo");
    assert_eq!(
        plan.repositories[&repo]["no"].args[0],
        "--comments=line1\nline2: \\{x: 1\\}\n- item"
    );
    let grafana = all
        .iter()
        .find(|d| d["kind"] == "Deployment" && d["metadata"]["name"] == "grafana-yes")
        .expect("grafana");
    let env = grafana
        .pointer("/spec/template/spec/containers/0/env")
        .and_then(Value::as_array)
        .expect("env");
    let root_url = env
        .iter()
        .find(|e| e["name"] == "GF_SERVER_ROOT_URL")
        .expect("root url");
    assert_eq!(
        root_url["value"],
        "https://yes.example/grafana?q=$x&y={{z}}"
    );
}

#[test]
fn a_failed_validation_prints_nothing_on_stdout_and_exits_1() {
    let out = velogen(&["render", "-c", "tests/golden/bad/many-errors.yaml"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    let missing = velogen(&["render", "-c", "does-not-exist.yaml"]);
    assert_eq!(
        missing.status.code(),
        Some(2),
        "a missing file is `could not run`"
    );
    assert!(missing.stdout.is_empty());
}

#[test]
fn render_to_a_folder_writes_one_file_per_object_and_replaces_only_its_own() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path().join("out");
    let d = dir.to_str().expect("utf-8 path");
    let out = velogen(&["render", "-o", d]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stream = docs(&velogen(&["render"]));
    let files: Vec<_> = std::fs::read_dir(&dir)
        .expect("dir")
        .filter_map(Result::ok)
        .filter(|e| e.path().extension().is_some_and(|x| x == "yaml"))
        .collect();
    assert_eq!(files.len(), stream.len());
    // A second render replaces the folder (objects removed from the config disappear).
    let out = velogen(&["render", "-o", d, "-l", "project=beam"]);
    assert!(out.status.success());
    let count = std::fs::read_dir(&dir)
        .expect("dir")
        .filter(|e| {
            e.as_ref()
                .is_ok_and(|e| e.path().extension().is_some_and(|x| x == "yaml"))
        })
        .count();
    assert!(count < stream.len() && count > 0);
    // A folder velogen did not write is never replaced.
    let foreign = tmp.path().join("foreign");
    std::fs::create_dir(&foreign).expect("mkdir");
    std::fs::write(foreign.join("keep.txt"), "mine").expect("write");
    let out = velogen(&["render", "-o", foreign.to_str().expect("utf-8")]);
    assert_eq!(out.status.code(), Some(2));
    assert!(foreign.join("keep.txt").exists());
}

#[test]
fn the_schema_command_prints_the_schema() {
    let out = velogen(&["schema"]);
    assert!(out.status.success());
    let schema: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(
        schema["$schema"],
        "https://json-schema.org/draft/2020-12/schema"
    );
}
