//! The validators catch real defects: a deliberately broken template (an nginx directive
//! misspelt, a Prometheus flag dropped into the config) renders — velogen's own checks only
//! know the Kubernetes shape — and the real tool that consumes the file refuses it.

#[path = "support/validators.rs"]
mod validators;

use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn render_with(templates: &Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_velogen"))
        .args(["render", "--templates"])
        .arg(templates)
        .current_dir(root())
        .output()
        .expect("velogen runs")
}

#[test]
fn a_broken_nginx_template_is_caught_by_nginx() {
    let tools = validators::Tools::detect();
    if !tools.available_or_skip(
        validators::Tool::Nginx,
        "a_broken_nginx_template_is_caught_by_nginx",
    ) {
        return;
    }
    let dir = tempfile::tempdir().expect("tmp");
    let original =
        std::fs::read_to_string(root().join("templates/nginx.conf.j2")).expect("template");
    let broken = original.replace("listen 8080;", "lisen 8080;");
    assert_ne!(original, broken);
    std::fs::write(dir.path().join("nginx.conf.j2"), broken).expect("write");
    let out = render_with(dir.path());
    assert!(
        out.status.success(),
        "velogen cannot know nginx directives: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let yaml = String::from_utf8(out.stdout).expect("utf-8");
    let errors = validators::validate_rendered(&yaml).expect_err("nginx -t must refuse `lisen`");
    assert!(errors.iter().any(|e| e.contains("lisen")), "{errors:?}");
}

#[test]
fn a_broken_manifest_template_is_caught_before_output() {
    let dir = tempfile::tempdir().expect("tmp");
    let original =
        std::fs::read_to_string(root().join("templates/influxdb.yaml.j2")).expect("template");
    let broken = original.replacen("  replicas: 1", "  replicass: 1", 1);
    assert_ne!(original, broken);
    std::fs::write(dir.path().join("influxdb.yaml.j2"), broken).expect("write");
    let out = render_with(dir.path());
    assert_eq!(
        out.status.code(),
        Some(2),
        "a template defect is `other error`"
    );
    assert!(out.stdout.is_empty(), "nothing may be written");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("influxdb.yaml.j2") && stderr.contains("replicass"),
        "{stderr}"
    );
}

#[test]
fn an_unknown_template_file_is_refused() {
    let dir = tempfile::tempdir().expect("tmp");
    std::fs::write(dir.path().join("ngnix.conf.j2"), "x").expect("write");
    let out = render_with(dir.path());
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a velogen template"));
}
