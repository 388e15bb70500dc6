//! `velogen diff`: one test per exit code, git revisions, and that a change shows up only
//! where it belongs.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn velogen_in(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_velogen"))
        .args(args)
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .output()
        .expect("velogen runs")
}

fn velogen(args: &[&str]) -> Output {
    velogen_in(&root(), args)
}

/// Writes `config` into `tmp` and diffs it against `from`.
fn diff_config(tmp: &tempfile::TempDir, config: &str, from: &str) -> Output {
    let new = tmp.path().join("config.yaml");
    std::fs::write(&new, config).expect("write");
    velogen(&["diff", "-c", new.to_str().expect("utf-8"), "--from", from])
}

/// Runs git in `repo` with a fixed identity, and asserts it succeeded.
fn git(repo: &Path, args: &[&str]) {
    let out = Command::new("git")
        .args(args)
        .current_dir(repo)
        .env("GIT_AUTHOR_NAME", "t")
        .env("GIT_AUTHOR_EMAIL", "t@example.com")
        .env("GIT_COMMITTER_NAME", "t")
        .env("GIT_COMMITTER_EMAIL", "t@example.com")
        .env("GIT_CEILING_DIRECTORIES", repo.parent().unwrap_or(repo))
        .output()
        .expect("git runs");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn text(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn no_change_exits_0_against_a_render_a_folder_and_the_same_config() {
    let tmp = tempfile::tempdir().expect("tmp");
    let file = tmp.path().join("render.yaml");
    std::fs::write(&file, velogen(&["render"]).stdout).expect("write");
    let dir = tmp.path().join("out");
    assert!(
        velogen(&["render", "-o", dir.to_str().expect("utf-8")])
            .status
            .success()
    );
    for from in [
        file.to_str().expect("utf-8"),
        dir.to_str().expect("utf-8"),
        "config.yaml",
    ] {
        let out = velogen(&["diff", "--from", from]);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{from}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            out.stdout.is_empty(),
            "{from}: printed a diff for no change"
        );
    }
}

#[test]
fn changes_exit_1_and_show_a_unified_diff_per_object() {
    let tmp = tempfile::tempdir().expect("tmp");
    let old = tmp.path().join("old.yaml");
    let config = std::fs::read_to_string(root().join("config.yaml")).expect("config");
    std::fs::write(
        &old,
        config.replace("public-ip: 130.211.224.127", "public-ip: 130.211.224.128"),
    )
    .expect("write");
    let out = velogen(&["diff", "--from", old.to_str().expect("utf-8")]);
    assert_eq!(out.status.code(), Some(1));
    let diff = text(&out);
    assert!(
        diff.contains("# Service/velodrome/nginx-istio (changed)"),
        "{diff}"
    );
    assert!(
        diff.contains("-  loadBalancerIP: \"130.211.224.128\""),
        "{diff}"
    );
    assert!(
        diff.contains("+  loadBalancerIP: \"130.211.224.127\""),
        "{diff}"
    );
    assert_eq!(
        diff.matches("(changed)").count(),
        1,
        "only the istio Service changed:\n{diff}"
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("1 changed, 0 added, 0 removed"));
}

/// Asserts the diff failed to compare: exit 2 (never 1, which a CI step reads as "changes
/// to apply"), nothing on stdout, and `needle` in what it says.
fn assert_cannot_compare(out: &Output, needle: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(out.stdout.is_empty(), "printed on stdout: {}", text(out));
    assert!(stderr.contains(needle), "expected {needle:?} in: {stderr}");
}

#[test]
fn an_invalid_new_config_is_exit_2() {
    let out = velogen(&[
        "diff",
        "-c",
        "tests/golden/bad/unknown-key.yaml",
        "--from",
        "config.yaml",
    ]);
    assert_cannot_compare(&out, "unknown key");
    assert_cannot_compare(&out, "the new config");
    let out = velogen(&["diff", "-c", "no-such-config.yaml", "--from", "config.yaml"]);
    assert_cannot_compare(&out, "cannot read no-such-config.yaml");
}

#[test]
fn an_invalid_old_config_is_exit_2() {
    let out = velogen(&["diff", "--from", "tests/golden/bad/many-errors.yaml"]);
    assert_cannot_compare(
        &out,
        "the old config --from tests/golden/bad/many-errors.yaml",
    );
}

#[test]
fn a_missing_from_is_exit_2() {
    let out = velogen(&["diff", "--from", "no-such-file.yaml"]);
    assert_cannot_compare(&out, "cannot read no-such-file.yaml");
}

#[test]
fn an_unreadable_from_is_exit_2() {
    let tmp = tempfile::tempdir().expect("tmp");
    let binary = tmp.path().join("render.yaml");
    std::fs::write(&binary, b"kind: \xff\xfe\x00 not text").expect("write");
    assert_cannot_compare(
        &velogen(&["diff", "--from", binary.to_str().expect("utf-8")]),
        "cannot read",
    );
    // A folder whose `.yaml` entry cannot be read as a file.
    let folder = tmp.path().join("rendered");
    std::fs::create_dir_all(folder.join("service.yaml")).expect("mkdir");
    assert_cannot_compare(
        &velogen(&["diff", "--from", folder.to_str().expect("utf-8")]),
        "service.yaml",
    );
}

#[test]
fn a_from_that_is_not_a_render_is_exit_2() {
    let tmp = tempfile::tempdir().expect("tmp");
    for (name, content, needle) in [
        ("empty.yaml", "", "holds no Kubernetes object"),
        (
            "comments.yaml",
            "# nothing here\n---\n",
            "holds no Kubernetes object",
        ),
        ("other.yaml", "foo: bar\n", "has no kind"),
        ("list.yaml", "- a\n- b\n", "is not a mapping"),
        (
            "noversion.yaml",
            "kind: Service\nmetadata: {name: x}\n",
            "no apiVersion",
        ),
        ("broken.yaml", "kind: [unclosed\n", "not valid YAML"),
    ] {
        let file = tmp.path().join(name);
        std::fs::write(&file, content).expect("write");
        assert_cannot_compare(
            &velogen(&["diff", "--from", file.to_str().expect("utf-8")]),
            needle,
        );
    }
    assert_cannot_compare(&velogen(&["diff", "--from", "README.md"]), "README.md");
    let empty = tmp.path().join("empty-folder");
    std::fs::create_dir(&empty).expect("mkdir");
    assert_cannot_compare(
        &velogen(&["diff", "--from", empty.to_str().expect("utf-8")]),
        "holds no .yaml files",
    );
}

#[test]
fn a_git_revision_without_the_config_is_exit_2() {
    // The project's own checkout may be a shallow clone: use a repository of our own.
    let tmp = tempfile::tempdir().expect("tmp");
    let repo = tmp.path();
    let config =
        std::fs::read_to_string(root().join("tests/golden/minimal/config.yaml")).expect("config");
    std::fs::write(repo.join("config.yaml"), &config).expect("write");
    // Not a git repository at all.
    assert_cannot_compare(
        &velogen_in(repo, &["diff", "--from", "git:HEAD"]),
        "git show HEAD:./config.yaml failed",
    );
    git(repo, &["init", "-q", "-b", "main"]);
    std::fs::write(repo.join("other.txt"), "x").expect("write");
    git(repo, &["add", "other.txt"]);
    git(repo, &["commit", "-q", "-m", "first"]);
    // A revision that does not exist, and one that lacks the file.
    assert_cannot_compare(
        &velogen_in(repo, &["diff", "--from", "git:no-such-revision"]),
        "no-such-revision",
    );
    assert_cannot_compare(
        &velogen_in(repo, &["diff", "--from", "git:HEAD"]),
        "git show HEAD:./config.yaml failed",
    );
    // An invalid config at that revision.
    std::fs::write(repo.join("config.yaml"), "projects: {demo: {}}\n").expect("write");
    git(repo, &["add", "config.yaml"]);
    git(repo, &["commit", "-q", "-m", "broken"]);
    std::fs::write(repo.join("config.yaml"), &config).expect("write");
    assert_cannot_compare(
        &velogen_in(repo, &["diff", "--from", "git:HEAD"]),
        "(the config at git revision HEAD is invalid)",
    );
}

#[test]
fn a_failing_template_is_exit_2() {
    let tmp = tempfile::tempdir().expect("tmp");
    let original =
        std::fs::read_to_string(root().join("templates/influxdb.yaml.j2")).expect("template");
    let broken = original.replacen("  replicas: 1", "  replicass: 1", 1);
    assert_ne!(original, broken);
    std::fs::write(tmp.path().join("influxdb.yaml.j2"), broken).expect("write");
    let dir = tmp.path().to_str().expect("utf-8");
    let out = velogen(&["diff", "--templates", dir, "--from", "config.yaml"]);
    assert_cannot_compare(&out, "replicass");
    // A template that does not even parse.
    std::fs::write(tmp.path().join("influxdb.yaml.j2"), "{% if %}").expect("write");
    let out = velogen(&["diff", "--templates", dir, "--from", "config.yaml"]);
    assert_cannot_compare(&out, "influxdb.yaml.j2");
}

#[test]
fn changing_one_metric_changes_only_that_projects_transform_and_its_checksum() {
    let tmp = tempfile::tempdir().expect("tmp");
    let config =
        std::fs::read_to_string(root().join("tests/golden/cloudsql/config.yaml")).expect("config");
    let changed = config.replace("--event=merged", "--event=closed");
    assert_ne!(config, changed);
    let out = diff_config(&tmp, &changed, "tests/golden/cloudsql/config.yaml");
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let diff = text(&out);
    let objects: Vec<&str> = diff.lines().filter(|l| l.starts_with("# ")).collect();
    assert_eq!(
        objects,
        [
            "# ConfigMap/metrics/transform-team (changed)",
            "# Deployment/metrics/transform-team (changed)"
        ],
        "{diff}"
    );
    let deployment = diff
        .split("# Deployment/metrics/transform-team")
        .nth(1)
        .expect("deployment diff");
    let changed_lines: Vec<&str> = deployment
        .lines()
        .filter(|l| l.starts_with('-') || l.starts_with('+'))
        .filter(|l| !l.starts_with("---") && !l.starts_with("+++"))
        .collect();
    assert_eq!(
        changed_lines.len(),
        2,
        "only the checksum line changes:\n{deployment}"
    );
    assert!(
        changed_lines
            .iter()
            .all(|l| l.contains("velodrome.dev/config-checksum")),
        "{deployment}"
    );
}

#[test]
fn a_prometheus_change_rolls_only_that_prometheus() {
    let tmp = tempfile::tempdir().expect("tmp");
    let config = std::fs::read_to_string(root().join("config.yaml")).expect("config");
    let changed = config.replace("job_name: istio-boskos", "job_name: istio-boskos-2");
    let out = diff_config(&tmp, &changed, "config.yaml");
    assert_eq!(out.status.code(), Some(1));
    let diff = text(&out);
    let objects: Vec<&str> = diff.lines().filter(|l| l.starts_with("# ")).collect();
    assert_eq!(
        objects,
        [
            "# ConfigMap/velodrome/prometheus-istio (changed)",
            "# Deployment/velodrome/prometheus-istio (changed)"
        ],
        "{diff}"
    );
}

#[test]
fn reordered_keys_diff_as_unchanged() {
    let tmp = tempfile::tempdir().expect("tmp");
    // The same config with projects, repositories, metrics and keys in another order.
    let reordered = r#"
projects:
  team:
    prometheus:
      config:
        scrape_configs:
          - static_configs:
              - targets: ["api.team-org.example:9090"]
            job_name: api
        global: {scrape_interval: 30s}
    nginx:
      public-ip: 203.0.113.10
    repositories:
      team-org/web:
      team-org/api:
    metric-set: default
metric-sets:
  default:
    open:
      args: [--no-issues, "--state=opened,!merged", "--percentiles=50,90"]
    merge:
      args: [--no-issues, --event=merged]
github:
  tokens: [bot-a, bot-b]
mysql:
  secret: cloudsql-mysql
  instance: my-gcp-project:us-central1:github-database
  mode: cloudsql
namespace: metrics
"#;
    let out = diff_config(&tmp, reordered, "tests/golden/cloudsql/config.yaml");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        text(&out),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn from_git_ref_renders_the_config_as_it_was() {
    let tmp = tempfile::tempdir().expect("tmp");
    let repo = tmp.path();
    let git = |args: &[&str]| git(repo, args);
    git(&["init", "-q", "-b", "main"]);
    let config =
        std::fs::read_to_string(root().join("tests/golden/minimal/config.yaml")).expect("config");
    std::fs::write(repo.join("config.yaml"), &config).expect("write");
    git(&["add", "config.yaml"]);
    git(&["commit", "-q", "-m", "first"]);
    let out = velogen_in(repo, &["diff", "--from", "git:HEAD"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::write(
        repo.join("config.yaml"),
        config.replace(
            "octo-org/octo-repo:",
            "octo-org/octo-repo:\n      octo-org/second:",
        ),
    )
    .expect("write");
    let out = velogen_in(repo, &["diff", "--from", "git:HEAD"]);
    assert_eq!(out.status.code(), Some(1));
    let diff = text(&out);
    assert!(diff.contains("+        - octo-org/second"), "{diff}");
}

#[test]
fn color_only_when_asked_or_on_a_terminal() {
    let tmp = tempfile::tempdir().expect("tmp");
    let old = tmp.path().join("old.yaml");
    let config = std::fs::read_to_string(root().join("config.yaml")).expect("config");
    std::fs::write(
        &old,
        config.replace("scrape_interval: 1m", "scrape_interval: 2m"),
    )
    .expect("write");
    let plain = velogen(&["diff", "--from", old.to_str().expect("utf-8")]);
    assert!(!text(&plain).contains('\x1b'));
    let colored = velogen(&[
        "diff",
        "--color",
        "always",
        "--from",
        old.to_str().expect("utf-8"),
    ]);
    assert!(text(&colored).contains("\x1b[31m"));
}

#[test]
fn secret_values_in_an_old_render_are_masked() {
    let tmp = tempfile::tempdir().expect("tmp");
    let old = tmp.path().join("old.yaml");
    let mut rendered = String::from_utf8(velogen(&["render"]).stdout).expect("utf-8");
    rendered.push_str("---\napiVersion: v1\nkind: Secret\nmetadata:\n  name: leaked\n  namespace: velodrome\nstringData:\n  password: hunter2-very-secret\n");
    std::fs::write(&old, rendered).expect("write");
    let out = velogen(&["diff", "--from", old.to_str().expect("utf-8")]);
    assert_eq!(out.status.code(), Some(1));
    let diff = text(&out);
    assert!(
        diff.contains("# Secret/velodrome/leaked (removed)"),
        "{diff}"
    );
    assert!(
        !diff.contains("hunter2"),
        "a secret value leaked into the diff:\n{diff}"
    );
    assert!(diff.contains("masked"));
}

#[test]
fn a_selector_limits_both_sides() {
    let tmp = tempfile::tempdir().expect("tmp");
    let old = tmp.path().join("old.yaml");
    let config = std::fs::read_to_string(root().join("config.yaml")).expect("config");
    // beam changes and a kubernetes repository disappears; istio does not move.
    let changed = config
        .replace("public-ip: 130.211.226.122", "public-ip: 130.211.226.123")
        .replace("      kubernetes/dns:\n", "");
    std::fs::write(&old, changed).expect("write");
    let out = velogen(&[
        "diff",
        "-l",
        "project=istio",
        "--from",
        old.to_str().expect("utf-8"),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let out = velogen(&[
        "diff",
        "-l",
        "project=beam",
        "--from",
        old.to_str().expect("utf-8"),
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out)
            .lines()
            .filter(|l| l.starts_with("# "))
            .all(|l| l.contains("-beam")),
        "{}",
        text(&out)
    );
}
