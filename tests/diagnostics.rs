//! Every error and warning kind of docs/rules-language.md, rendered as users see it, pinned with
//! insta: one broken rule file per kind in tests/fixtures/diagnostics.

#![allow(clippy::unwrap_used, reason = "a failed unwrap is a failed test")]

mod common;

use rosterd::engine;

fn render(path: &std::path::Path) -> (String, usize, usize) {
    let (config, snapshot) = common::org();
    let name = format!("rules/{}", path.file_name().unwrap().to_string_lossy());
    let text = std::fs::read_to_string(path).unwrap();
    match common::rules_from(&name, &text, &config, &snapshot) {
        Ok(rules) => {
            let evaluation = engine::evaluate(&snapshot, &rules, common::as_of());
            let d = engine::lint(&snapshot, &rules, &evaluation);
            (d.render(rules.sources()), d.errors(), d.warnings())
        }
        Err((sources, d)) => (d.render(&sources), d.errors(), d.warnings()),
    }
}

#[test]
fn every_broken_rule_file_renders_as_pinned() {
    let mut files: Vec<_> = std::fs::read_dir("tests/fixtures/diagnostics")
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert!(files.len() >= 25, "one fixture per error and warning kind");
    for path in files {
        let stem = path.file_stem().unwrap().to_string_lossy().to_string();
        let (rendered, errors, warnings) = render(&path);
        if stem.starts_with("warn-") {
            assert_eq!(errors, 0, "{stem} should only warn:\n{rendered}");
            assert!(warnings >= 1, "{stem} should warn:\n{rendered}");
        } else {
            assert!(errors >= 1, "{stem} should be an error:\n{rendered}");
            assert!(
                rendered.contains('^'),
                "{stem} should underline the spot:\n{rendered}"
            );
        }
        insta::assert_snapshot!(stem, rendered);
    }
}

#[test]
fn line_and_column_point_into_a_folded_block_scalar() {
    let (rendered, _, _) = render(std::path::Path::new(
        "tests/fixtures/diagnostics/unknown-attribute.yaml",
    ));
    assert!(
        rendered
            .starts_with("rules/unknown-attribute.yaml:5:7: error: unknown attribute `departmnet`"),
        "{rendered}"
    );
    assert!(
        rendered.contains("help: did you mean `department`?"),
        "{rendered}"
    );
}

#[test]
fn all_errors_of_a_run_are_reported_together() {
    let (config, snapshot) = common::org();
    let text = std::fs::read_to_string("tests/fixtures/five-mistakes/rules/mistakes.yaml").unwrap();
    let Err((sources, d)) = common::rules_from("rules/five.yaml", &text, &config, &snapshot) else {
        panic!("five mistakes were accepted");
    };
    assert_eq!(d.errors(), 5, "{}", d.render(&sources));
}
