//! The module graph's ground floor: the config, and what it checks names and values with
//! (`names`, `schedule`, `backend`, `secret`), import nothing of rosterd above them. A
//! module that the config imported and that imported the config back made one loop of the
//! whole crate.

#![allow(clippy::unwrap_used, reason = "a failed unwrap is a failed test")]

use std::path::Path;

/// `crate::NAME` paths in a source file, by NAME.
fn crate_paths(path: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap();
    let mut out = Vec::new();
    for (at, _) in text.match_indices("crate::") {
        let rest = &text[at + "crate::".len()..];
        let name: String = rest
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        out.push(name);
    }
    out
}

#[test]
fn the_config_imports_nothing_above_it() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let ground = ["names", "schedule", "backend", "secret"];
    let mut files = vec![root.join("config.rs")];
    for entry in std::fs::read_dir(root.join("config")).unwrap() {
        files.push(entry.unwrap().path());
    }
    for file in &files {
        for name in crate_paths(file) {
            assert!(
                name == "config" || ground.contains(&name.as_str()),
                "{} imports crate::{name}",
                file.display()
            );
        }
    }
    for module in ground {
        let file = root.join(format!("{module}.rs"));
        let paths = crate_paths(&file);
        assert!(paths.is_empty(), "{} imports {paths:?}", file.display());
    }
}
