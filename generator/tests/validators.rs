//! Every rendered golden output passes the real validators CI installs
//! (kubernetes-validate --strict, nginx -t, promtool check config, @grafana/schema via tsc,
//! and the Grafana provisioning JSON Schema), and each validator is proven to catch a real
//! defect. See support/validators.rs for the harness and how other tests reuse it.

#[path = "support/validators.rs"]
mod validators;

use std::fs;
use std::path::{Path, PathBuf};

use validators::{Outcome, Rendered, Tool, Tools, check};

fn fixture(name: &str) -> Rendered {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/validators")
        .join(name);
    let yaml = fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    Rendered::new(format!("fixtures/validators/{name}"), yaml)
}

fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/golden")
}

fn print_skipped(test: &str, outcome: &Outcome) {
    for s in &outcome.skipped {
        eprintln!("SKIPPED in {test}: {s}");
    }
}

/// Runs `check` on one fixture that must fail, and returns all errors as one string.
fn errors_of(tools: &Tools, name: &str) -> String {
    let outcome = check(tools, &[fixture(name)]);
    print_skipped(name, &outcome);
    assert!(
        !outcome.is_ok(),
        "{name} must be rejected, but every validator passed it (checked: {:?})",
        outcome.checked
    );
    outcome.report()
}

#[test]
fn golden_renders_pass_every_validator() {
    let mut paths: Vec<PathBuf> = match fs::read_dir(golden_dir()) {
        Ok(dir) => dir
            .filter_map(Result::ok)
            .map(|e| e.path().join("render.yaml"))
            .filter(|p| p.is_file())
            .collect(),
        Err(_) => Vec::new(),
    };
    paths.sort();
    if paths.is_empty() {
        eprintln!(
            "NOTE: no tests/golden/*/render.yaml yet; only the fixtures are validated (see the other tests)"
        );
        return;
    }
    let inputs: Vec<Rendered> = paths
        .iter()
        .map(|p| {
            let case = p.parent().and_then(Path::file_name).unwrap_or_default();
            let yaml = fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            Rendered::new(
                format!("tests/golden/{}/render.yaml", case.to_string_lossy()),
                yaml,
            )
        })
        .collect();
    let outcome = check(&Tools::detect(), &inputs);
    print_skipped("golden renders", &outcome);
    eprintln!(
        "validated {} golden render(s): {:?}",
        inputs.len(),
        outcome.checked
    );
    assert!(
        outcome.is_ok(),
        "golden renders fail real validators:\n{}",
        outcome.report()
    );
}

#[test]
fn valid_fixture_passes_every_validator() {
    let tools = Tools::detect();
    let outcome = check(&tools, &[fixture("valid.yaml")]);
    print_skipped("valid.yaml", &outcome);
    assert!(
        outcome.is_ok(),
        "valid.yaml rejected:\n{}",
        outcome.report()
    );
    // Every validator that is present really looked at its part.
    let expect = [
        (Tool::KubernetesValidate, "kubernetes-validate", 5),
        (Tool::Nginx, "nginx -t", 1),
        (Tool::Promtool, "promtool check config", 1),
        (Tool::GrafanaSchema, "tsc @grafana/schema", 1),
    ];
    for (tool, name, n) in expect {
        if tools.has(tool) {
            assert_eq!(outcome.checked.get(name), Some(&n), "{name}: {outcome:?}");
        }
    }
    assert_eq!(
        outcome.checked.get("grafana provisioning schema"),
        Some(&2),
        "{outcome:?}"
    );
}

#[test]
fn kubernetes_validate_rejects_an_unknown_field() {
    let tools = Tools::detect();
    if !tools.available_or_skip(
        Tool::KubernetesValidate,
        "kubernetes_validate_rejects_an_unknown_field",
    ) {
        return;
    }
    let errors = errors_of(&tools, "broken-unknown-field.yaml");
    assert!(errors.contains("'replicass' was unexpected"), "{errors}");
    assert!(
        errors.contains("fixtures/validators/broken-unknown-field.yaml"),
        "the error must name the input, not a temp file: {errors}"
    );
}

#[test]
fn kubernetes_validate_rejects_an_unknown_kind() {
    let tools = Tools::detect();
    if !tools.available_or_skip(
        Tool::KubernetesValidate,
        "kubernetes_validate_rejects_an_unknown_kind",
    ) {
        return;
    }
    // kubernetes-validate only warns (exit 0) for a kind it has no schema for; a typo in
    // apiVersion must not slip through that way.
    let yaml = "---\napiVersion: apps/v2\nkind: Deployment\nmetadata:\n  name: x\n";
    let outcome = check(&tools, &[Rendered::new("apps-v2", yaml)]);
    assert!(!outcome.is_ok(), "apps/v2 passed: {outcome:?}");
    assert!(
        outcome.report().contains("Couldn't find schema"),
        "{}",
        outcome.report()
    );
}

#[test]
fn nginx_rejects_a_broken_config() {
    let tools = Tools::detect();
    if !tools.available_or_skip(Tool::Nginx, "nginx_rejects_a_broken_config") {
        return;
    }
    let errors = errors_of(&tools, "broken-nginx.yaml");
    assert!(errors.contains("unknown directive \"lisen\""), "{errors}");
    assert!(
        errors.contains("ConfigMap nginx-broken key nginx.conf"),
        "{errors}"
    );
}

#[test]
fn nginx_checks_a_server_fragment_inside_a_main_config() {
    let tools = Tools::detect();
    if !tools.available_or_skip(
        Tool::Nginx,
        "nginx_checks_a_server_fragment_inside_a_main_config",
    ) {
        return;
    }
    let cm = |body: &str| {
        format!(
            "---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: frag\n  labels:\n    app: nginx\ndata:\n  default.conf: |\n{}",
            body.lines()
                .map(|l| format!("    {l}\n"))
                .collect::<String>()
        )
    };
    let good = cm("server {\n  listen 8080;\n  location / { return 200; }\n}");
    let outcome = check(&tools, &[Rendered::new("good-fragment", good)]);
    assert!(outcome.is_ok(), "{}", outcome.report());
    assert_eq!(outcome.checked.get("nginx -t"), Some(&1));
    let bad = cm("server {\n  listen 8080;\n  location / { retrun 200; }\n}");
    let outcome = check(&tools, &[Rendered::new("bad-fragment", bad)]);
    assert!(
        outcome.report().contains("unknown directive \"retrun\""),
        "{outcome:?}"
    );
}

#[test]
fn promtool_rejects_an_unknown_field() {
    let tools = Tools::detect();
    if !tools.available_or_skip(Tool::Promtool, "promtool_rejects_an_unknown_field") {
        return;
    }
    let errors = errors_of(&tools, "broken-prometheus.yaml");
    assert!(errors.contains("methids_path"), "{errors}");
    assert!(
        errors.contains("ConfigMap prometheus-broken key prometheus.yml"),
        "{errors}"
    );
}

#[test]
fn grafana_schema_rejects_a_misspelt_dashboard_key() {
    let tools = Tools::detect();
    if !tools.available_or_skip(
        Tool::GrafanaSchema,
        "grafana_schema_rejects_a_misspelt_dashboard_key",
    ) {
        return;
    }
    let errors = errors_of(&tools, "broken-dashboard.yaml");
    assert!(
        errors.contains("'\"titel\"' does not exist in type 'InfluxDashboard'"),
        "{errors}"
    );
    assert!(
        errors.contains("key broken.json: dashboard does not match @grafana/schema at line 3"),
        "the error must point at the line of the JSON: {errors}"
    );
}

#[test]
fn grafana_provisioning_schema_rejects_broken_files() {
    // In-process (jsonschema crate): never skipped.
    let errors = errors_of(&Tools::default(), "broken-provisioning.yaml");
    for needle in [
        "key datasources.yaml: Grafana provisioning schema: at /datasources/0: \"type\" is a required property",
        "key datasources.yaml: Grafana provisioning schema: at /datasources/0: \"url\" is a required property",
        "'urll' was unexpected",
        "at /datasources/0/secureJsonData/password: value does not match",
        "key dashboards.yaml: Grafana provisioning schema: at /providers/0/options: \"path\" is a required property",
        "at /datasources/1/url: \"http://mysql:3306\" does not match",
        "at /datasources/1/jsonData: \"database\" is a required property",
    ] {
        assert!(errors.contains(needle), "missing {needle:?} in:\n{errors}");
    }
    assert!(
        !errors.contains("plain-text-instead-of-a-reference"),
        "a secret value was echoed: {errors}"
    );
}

#[test]
fn a_json_key_that_is_no_dashboard_is_an_error() {
    let yaml = "---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: g\n  labels:\n    app: grafana\ndata:\n  notes.json: '{\"a\": 1}'\n  bad.json: '{'\n";
    let outcome = check(&Tools::default(), &[Rendered::new("json-keys", yaml)]);
    let report = outcome.report();
    assert!(
        report.contains("key notes.json: a .json key of a Grafana ConfigMap must be a dashboard"),
        "{report}"
    );
    assert!(report.contains("key bad.json: not valid JSON"), "{report}");
}

#[test]
fn unparsable_yaml_is_an_error() {
    let outcome = check(
        &Tools::default(),
        &[Rendered::new("bad-yaml", "---\na: [1, 2\n")],
    );
    assert!(
        outcome.report().contains("bad-yaml: YAML does not parse"),
        "{outcome:?}"
    );
}

#[test]
fn a_missing_tool_skips_or_fails_as_required() {
    let valid = fixture("valid.yaml");
    let none = Tools {
        require: false,
        ..Tools::default()
    };
    let outcome = check(&none, std::slice::from_ref(&valid));
    assert!(outcome.is_ok(), "{outcome:?}");
    assert_eq!(outcome.skipped.len(), 4, "{outcome:?}");

    let required = Tools {
        require: true,
        ..Tools::default()
    };
    let outcome = check(&required, &[valid]);
    assert_eq!(outcome.errors.len(), 4, "{outcome:?}");
    assert!(outcome.skipped.is_empty());
    assert!(
        outcome
            .report()
            .contains("VELODROME_REQUIRE_SERVICES=1 forbids skipping")
    );
}

#[test]
fn batched_errors_name_the_right_input() {
    let tools = Tools::detect();
    let inputs = [
        fixture("valid.yaml"),
        fixture("broken-unknown-field.yaml"),
        fixture("broken-nginx.yaml"),
        fixture("broken-prometheus.yaml"),
        fixture("broken-dashboard.yaml"),
        fixture("valid.yaml"),
    ];
    let outcome = check(&tools, &inputs);
    print_skipped("batched", &outcome);
    for e in &outcome.errors {
        assert!(
            !e.contains("fixtures/validators/valid.yaml"),
            "an error was blamed on valid.yaml: {e}"
        );
    }
    let expected = [
        (Tool::KubernetesValidate, "broken-unknown-field.yaml"),
        (Tool::Nginx, "broken-nginx.yaml"),
        (Tool::Promtool, "broken-prometheus.yaml"),
        (Tool::GrafanaSchema, "broken-dashboard.yaml"),
    ];
    for (tool, name) in expected {
        if tools.has(tool) {
            assert!(
                outcome.errors.iter().any(|e| e.contains(name)),
                "no error for {name}:\n{}",
                outcome.report()
            );
        }
    }
}

/// The library entry point other tests use (issue 3: a deliberately broken template).
#[test]
fn validate_rendered_returns_the_errors() {
    let valid = fixture("valid.yaml").yaml;
    assert_eq!(validators::validate_rendered(&valid), Ok(()));
    let broken = fixture("broken-provisioning.yaml").yaml;
    let errors = validators::validate_rendered(&broken).unwrap_err();
    assert!(errors.iter().any(|e| e.contains("urll")), "{errors:?}");
}
