//! Golden files: every example config renders to exactly its committed `render.yaml`, and
//! every bad config fails with exactly its committed `.err` text, printing nothing on stdout.
//!
//! Regenerate after an intended change with:
//!     UPDATE_GOLDEN=1 cargo test -p velogen --test golden
//! A missing golden file is a failure, never a silent pass.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn velogen(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_velogen"))
        .args(args)
        .current_dir(root())
        .env_remove("NO_COLOR")
        .output()
        .expect("velogen runs")
}

fn updating() -> bool {
    std::env::var_os("UPDATE_GOLDEN").is_some_and(|v| v == "1")
}

/// Compares `actual` with the golden file, or rewrites it under UPDATE_GOLDEN=1.
fn assert_golden(path: &Path, actual: &str) {
    if updating() {
        std::fs::write(path, actual).expect("write golden file");
        return;
    }
    let expected = std::fs::read_to_string(path).unwrap_or_else(|_| {
        panic!(
            "golden file {} is missing; run UPDATE_GOLDEN=1 cargo test -p velogen --test golden",
            path.display()
        )
    });
    if expected != actual {
        let diff = similar::TextDiff::from_lines(&expected, actual)
            .unified_diff()
            .header("golden", "actual")
            .to_string();
        panic!("{} differs from the render:\n{diff}", path.display());
    }
}

/// (case name, config path relative to the workspace root)
fn good_cases() -> Vec<(String, String)> {
    let mut cases = vec![("deployment".to_owned(), "config.yaml".to_owned())];
    let mut dirs: Vec<_> = std::fs::read_dir(root().join("tests/golden"))
        .expect("tests/golden exists")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.join("config.yaml").is_file())
        .collect();
    dirs.sort();
    for dir in dirs {
        let name = dir
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        cases.push((name.clone(), format!("tests/golden/{name}/config.yaml")));
    }
    cases
}

#[test]
fn every_example_renders_to_its_golden_file() {
    let cases = good_cases();
    assert!(
        cases.len() >= 5,
        "expected the deployment, legacy and at least three examples, found {cases:?}"
    );
    for (name, config) in cases {
        let out = velogen(&["render", "-c", &config]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{name}: render failed:\n{stderr}");
        let stdout = String::from_utf8(out.stdout).expect("UTF-8 output");
        assert_golden(
            &root().join(format!("tests/golden/{name}/render.yaml")),
            &stdout,
        );
        let again = velogen(&["render", "-c", &config]);
        assert_eq!(
            again.stdout,
            stdout.as_bytes(),
            "{name}: two renders differ"
        );
    }
}

#[test]
fn every_bad_config_fails_with_its_golden_error() {
    let dir = root().join("tests/golden/bad");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("tests/golden/bad exists")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    assert!(
        files.len() >= 15,
        "at least fifteen bad configs, found {}",
        files.len()
    );
    for file in files {
        let rel = format!(
            "tests/golden/bad/{}",
            file.file_name().unwrap_or_default().to_string_lossy()
        );
        for command in ["validate", "render"] {
            let out = velogen(&[command, "-c", &rel]);
            assert_eq!(
                out.status.code(),
                Some(1),
                "{rel}: `velogen {command}` must exit 1"
            );
            assert!(
                out.stdout.is_empty(),
                "{rel}: `velogen {command}` printed on stdout"
            );
            let stderr = String::from_utf8(out.stderr).expect("UTF-8 errors");
            assert!(!stderr.contains("panicked"), "{rel}: panic");
            assert_golden(&file.with_extension("err"), &stderr);
        }
    }
}

#[test]
fn the_legacy_config_is_the_reference_file_unchanged() {
    let reference = root().join("../shared/reference/legacy-config.yaml");
    let Ok(expected) = std::fs::read(&reference) else {
        eprintln!(
            "skipping: {} is not beside this checkout",
            reference.display()
        );
        return;
    };
    let ours = std::fs::read(root().join("tests/golden/legacy/config.yaml")).expect("legacy copy");
    assert_eq!(
        ours, expected,
        "tests/golden/legacy/config.yaml must stay byte-identical to the reference"
    );
}
