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

/// Every `crate::` path in the files of `module` (a file `src/NAME.rs` or a folder
/// `src/NAME/`), with the file it is in.
fn module_paths(module: &str) -> Vec<(String, std::path::PathBuf)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    let file = root.join(format!("{module}.rs"));
    if file.exists() {
        files.push(file);
    }
    let mut dirs = vec![root.join(module)];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                files.push(path);
            }
        }
    }
    assert!(!files.is_empty(), "no files for `{module}`");
    files
        .into_iter()
        .flat_map(|f| crate_paths(&f).into_iter().map(move |p| (p, f.clone())))
        .collect()
}

/// The engine is pure: it evaluates rules on a snapshot and reads or writes nothing, so it
/// imports no layer that does I/O.
#[test]
fn the_engine_imports_no_io_layer() {
    let io = [
        "store", "fetch", "http", "scim", "push", "daemon", "cycle", "cli", "revision",
    ];
    for (path, file) in module_paths("engine") {
        assert!(
            !io.contains(&path.as_str()),
            "{} imports crate::{path}",
            file.display()
        );
    }
}

/// The store keeps state and knows nothing of what computes it or uses it.
#[test]
fn the_store_knows_nothing_of_the_engine_the_push_or_the_daemon() {
    let above = ["engine", "push", "daemon", "cycle", "cli", "scim", "fetch"];
    for (path, file) in module_paths("store") {
        assert!(
            !above.contains(&path.as_str()),
            "{} imports crate::{path}",
            file.display()
        );
    }
}
