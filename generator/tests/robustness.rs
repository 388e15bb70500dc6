//! Bad input never panics: truncated, binary, deeply nested and randomly mutated configs
//! end in a clean list of errors or a valid render, through the same library calls the
//! binary makes.

use std::path::Path;

use proptest::prelude::*;
use velogen::render::Templates;

fn run(text: &str) {
    let path = Path::new("fuzz.yaml");
    match velogen::load_str(path, text) {
        Ok(valid) => {
            let templates = Templates::embedded().expect("templates");
            velogen::render_config(&valid.config, &templates).expect("a valid config renders");
        }
        Err(diags) => {
            assert!(!diags.is_empty());
            assert!(
                diags.iter().any(velogen::Diagnostic::is_error),
                "an invalid config has an error"
            );
            for d in &diags {
                let line = d.to_string();
                assert!(line.starts_with("fuzz.yaml"), "{line}");
            }
        }
    }
}

fn base() -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../config.yaml"))
        .expect("config.yaml")
}

#[test]
fn truncations_at_every_line_never_panic() {
    let text = base();
    let lines: Vec<&str> = text.lines().collect();
    for end in 0..lines.len() {
        run(&lines[..end].join("\n"));
    }
    for cut in (0..text.len()).step_by(97) {
        if text.is_char_boundary(cut) {
            run(&text[..cut]);
        }
    }
}

#[test]
fn binary_and_deeply_nested_input_never_panics() {
    run("\u{0}\u{1}\u{2}binary\u{7f}");
    run(&"[".repeat(100_000));
    // Block nesting by indentation, 2,000 levels deep.
    let deep: String = (0..2000)
        .map(|i| format!("{}k{i}:\n", " ".repeat(i)))
        .collect();
    run(&deep);
    run(&format!("projects: {}", "{a: ".repeat(10_000)));
    run("projects: &a [*a]");
    // A billion-laughs style alias bomb stays within serde-saphyr's budget.
    let mut bomb = String::from("a: &a [x, x, x, x, x, x, x, x, x]\n");
    for i in 0..9 {
        bomb.push_str(&format!(
            "b{i}: &b{i} [{}]\n",
            if i == 0 {
                "*a, *a, *a, *a, *a, *a, *a, *a".to_owned()
            } else {
                format!(
                    "*b{}, *b{}, *b{}, *b{}, *b{}, *b{}, *b{}, *b{}",
                    i - 1,
                    i - 1,
                    i - 1,
                    i - 1,
                    i - 1,
                    i - 1,
                    i - 1,
                    i - 1
                )
            }
        ));
    }
    run(&bomb);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn random_mutations_of_config_yaml_never_panic(
        edits in prop::collection::vec((any::<prop::sample::Index>(), prop::sample::select(vec![
            "", " ", "\n", ":", "- ", "[", "]", "{", "}", "&x ", "*x", "<<: *x\n", "\"", "'", "yes", "~", "!!binary ", "|\n", "\t", "#", "0x1F", "-1", "a/b/c", "{{", "$(", "\u{0}", "é",
        ])), 1..8)
    ) {
        let mut text = base();
        for (at, insert) in edits {
            let mut i = at.index(text.len().max(1));
            while !text.is_char_boundary(i) { i -= 1; }
            let end = (i + 3).min(text.len());
            let end = (end..=text.len()).find(|e| text.is_char_boundary(*e)).unwrap_or(text.len());
            text.replace_range(i..end, insert);
        }
        run(&text);
    }
}
