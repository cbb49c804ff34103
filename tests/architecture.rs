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

/// Every `.rs` file under `dir`, at any depth.
fn rust_files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut dirs = vec![dir.to_path_buf()];
    let mut files = Vec::new();
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                files.push(path);
            }
        }
    }
    files
}

/// No file in `src/` passes 900 lines: a file that long holds several concerns.
#[test]
fn no_source_file_passes_900_lines() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut long = Vec::new();
    for path in rust_files(&root) {
        let lines = std::fs::read_to_string(&path).unwrap().lines().count();
        if lines > 900 {
            long.push(format!("{} ({lines} lines)", path.display()));
        }
    }
    assert!(long.is_empty(), "{long:?}");
}

/// Files that are siblings (modules of one parent) do not import each other in a loop: each
/// concern depends on others one way, so any of them can be read (and changed) knowing only
/// those below it. Imports of the parent (`super::X` for an item of the parent) are not
/// counted: a parent holds what its children share.
#[test]
fn sibling_files_do_not_import_each_other_in_a_loop() {
    use std::collections::{BTreeMap, BTreeSet};
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    // Each directory's module files, by module name.
    let mut dirs = vec![root.clone()];
    let mut families: Vec<(std::path::PathBuf, BTreeMap<String, std::path::PathBuf>)> = Vec::new();
    while let Some(dir) = dirs.pop() {
        let mut members = BTreeMap::new();
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_stem().unwrap().to_string_lossy().to_string();
            if path.is_dir() {
                dirs.push(path.clone());
                if path.join("mod.rs").exists() {
                    members.insert(name, path);
                }
            } else if path.extension().is_some_and(|e| e == "rs")
                && !["mod", "lib", "main"].contains(&name.as_str())
            {
                members.insert(name, path);
            }
        }
        families.push((dir, members));
    }
    // The files of a module: its own file, or every file under its folder.
    let files_of = |path: &Path| -> Vec<std::path::PathBuf> {
        if path.is_file() {
            return vec![path.to_path_buf()];
        }
        let mut out = Vec::new();
        let mut stack = vec![path.to_path_buf()];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).unwrap() {
                let p = e.unwrap().path();
                if p.is_dir() {
                    stack.push(p);
                } else if p.extension().is_some_and(|x| x == "rs") {
                    out.push(p);
                }
            }
        }
        out
    };
    for (dir, members) in &families {
        // The module path of this family's parent, as `crate::a::b::`.
        let rel = dir.strip_prefix(&root).unwrap();
        let parent: String = rel
            .components()
            .map(|c| format!("{}::", c.as_os_str().to_string_lossy()))
            .collect();
        let mut edges: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
        for (name, path) in members {
            for file in files_of(path) {
                let text = std::fs::read_to_string(&file).unwrap();
                for other in members.keys().filter(|o| *o != name) {
                    // A child file of a folder module reaches its siblings through
                    // `super::super::`; its own folder's files through `super::`.
                    let direct = file.parent() == Some(dir.as_path());
                    let up = if direct { "super::" } else { "super::super::" };
                    let names = [
                        format!("{up}{other}::"),
                        format!("{up}{{{other}"),
                        format!("crate::{parent}{other}::"),
                    ];
                    let uses = names.iter().any(|n| text.contains(n.as_str()))
                        || text.contains(&format!("{up}{other};"))
                        || (direct
                            && (text.contains(&format!("use super::{{{other}"))
                                || text.contains(&format!(", {other}::"))
                                    && text.contains("use super::{")));
                    if uses {
                        edges
                            .entry(name.as_str())
                            .or_default()
                            .insert(other.as_str());
                    }
                }
            }
        }
        // A loop is a path back to where it started.
        for start in edges.keys() {
            let mut seen = BTreeSet::new();
            let mut stack: Vec<Vec<&str>> = vec![vec![start]];
            while let Some(path) = stack.pop() {
                let last = *path.last().unwrap();
                for next in edges.get(last).into_iter().flatten() {
                    if next == start {
                        panic!(
                            "in {}: {} imports {}",
                            dir.display(),
                            path.join(" → "),
                            next
                        );
                    }
                    if seen.insert(*next) {
                        let mut longer = path.clone();
                        longer.push(next);
                        stack.push(longer);
                    }
                }
            }
        }
    }
}

/// No function in `src/` passes 120 lines: one that long does several things, each of which
/// can have a name. A function is measured from its `fn` line to the closing brace at its
/// indentation (rustfmt's layout).
#[test]
fn no_function_passes_120_lines() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut long = Vec::new();
    let mut measured = 0;
    for path in rust_files(&root) {
        let text = std::fs::read_to_string(&path).unwrap();
        for (name, at, lines) in function_lengths(&text) {
            measured += 1;
            if lines > 120 {
                long.push(format!("{}:{at} {name} ({lines} lines)", path.display()));
            }
        }
    }
    assert!(
        measured > 1000,
        "only {measured} functions found: the scan is broken"
    );
    assert!(long.is_empty(), "{long:#?}");
}

/// Each function with a body in `text`: its name, the line its `fn` is on, and its length.
fn function_lengths(text: &str) -> Vec<(String, usize, usize)> {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let indent = &line[..line.len() - line.trim_start().len()];
        let mut words = line.split_whitespace();
        let name = loop {
            match words.next() {
                Some(w) if w == "pub" || w.starts_with("pub(") => {}
                Some("const" | "async" | "unsafe" | "extern") => {}
                Some("fn") => break words.next(),
                _ => break None,
            }
        };
        let Some(name) = name else { continue };
        let name: String = name
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        // A declaration without a body (in a trait) ends with `;` before any `{`.
        let body = lines[i..]
            .iter()
            .find(|l| l.trim_end().ends_with('{') || l.trim_end().ends_with(';'))
            .is_some_and(|l| l.trim_end().ends_with('{'));
        if !body {
            continue;
        }
        // A one-line body (`fn f() -> u32 { 1 }`) closes on its own line.
        if line.trim_end().ends_with('}') {
            continue;
        }
        let close = format!("{indent}}}");
        if let Some(end) = lines[i + 1..].iter().position(|l| *l == close) {
            out.push((name, i + 1, end + 2));
        }
    }
    out
}

#[test]
fn function_lengths_are_measured_from_fn_to_its_brace() {
    let text = "trait T {\n    fn declared(&self);\n}\n\npub(crate) async fn three() {\n    1;\n}\n\nfn one() -> u32 { 1 }\n";
    assert_eq!(
        function_lengths(text),
        vec![("three".to_string(), 5, 3)],
        "a declaration and a one-line function have no lines to count"
    );
}

/// The push reaches a target only through the target interface (`push/target.rs`): planning,
/// the outbox, the failsafes, verification and status are the same for every kind, so no
/// other file of the push knows a kind's wire (SCIM's, for one).
#[test]
fn the_push_knows_targets_only_through_the_target_interface() {
    let kinds = ["scim", "okta", "google", "ldap"];
    let mut seen_interface = false;
    for (path, file) in module_paths("push") {
        if file.ends_with("push/target.rs") {
            seen_interface = true;
            continue;
        }
        assert!(
            !kinds.contains(&path.as_str()),
            "{} imports crate::{path}",
            file.display()
        );
    }
    assert!(seen_interface, "no push/target.rs");
}
