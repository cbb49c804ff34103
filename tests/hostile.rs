//! Hostile and broken input: rule files built to exhaust the stack or the memory, exports
//! that are not text, keys that a database cannot hold, configs that look safe and are not.
//! Each ends in a clear error that names the place, never in an abort, a hang or a false
//! success.

#![allow(clippy::unwrap_used, reason = "a failed unwrap is a failed test")]

mod common;

use std::process::{Command, Output};

use common::Install;
use rosterd::config::Config;
use rosterd::cycle::{CycleError, Outcome};
use rosterd::rules::limits;
use rosterd::store::RunStatus;

/// `rosterd ARGS` with the install's config, as of the tests' date.
fn rosterd(install: &Install, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rosterd"))
        .arg("--config")
        .arg(install.path("rosterd.yaml"))
        .args(common::as_of_for(args, "2026-11-22"))
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .unwrap()
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// A rule file with one managed group whose rule is `rule` (on one line).
fn group_with_rule(rule: &str) -> String {
    format!("groups:\n  - name: deep\n    kind: managed\n    rule: '{rule}'\n")
}

#[test]
fn rules_nested_past_any_stack_are_a_diagnostic_not_an_abort() {
    let n = limits::MAX_NESTING;
    let cases = [
        ("5,000 nots", "not ".repeat(5_000) + "remote"),
        (
            "9,400 parentheses",
            "(".repeat(9_400) + "remote" + &")".repeat(9_400),
        ),
        (
            "100,000 parentheses",
            "(".repeat(100_000) + "remote" + &")".repeat(100_000),
        ),
        (
            "1,000 nested calls",
            "member_of(".repeat(1_000) + "\"x\"" + &")".repeat(1_000),
        ),
        (
            "1,000 nested lower()",
            "lower(".repeat(1_000) + "title" + &")".repeat(1_000) + " == \"x\"",
        ),
    ];
    for (what, rule) in cases {
        let install = Install::new(
            common::sqlite_db(),
            &[("deep.yaml", &group_with_rule(&rule))],
        );
        let out = rosterd(&install, &["check"]);
        let shown = text(&out);
        assert_eq!(
            out.status.code(),
            Some(1),
            "{what}: {:?}\n{shown:.2000}",
            out.status
        );
        assert!(
            shown.contains(&format!(
                "expression nested too deeply: more than {n} levels"
            )),
            "{what}: {shown:.2000}"
        );
        assert!(shown.contains("deep.yaml:4:"), "{what}: {shown:.2000}");
        assert!(
            shown.len() < 4_000,
            "{what}: the message quotes the whole rule"
        );
    }
    // As deep as allowed is fine, all the way through evaluation and explain.
    let ok = "(".repeat(n - 1) + "remote" + &")".repeat(n - 1);
    let install = Install::new(common::sqlite_db(), &[("deep.yaml", &group_with_rule(&ok))]);
    let out = rosterd(&install, &["check"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let out = rosterd(&install, &["explain", "W004", "deep"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
}

#[test]
fn yaml_nested_past_the_limit_is_a_diagnostic() {
    // Past our limit, and past the YAML parser's own.
    for (levels, message) in [
        (limits::MAX_YAML_NESTING + 10, "YAML nested too deeply"),
        (100_000, "invalid YAML: recursion limit exceeded"),
    ] {
        let deep = format!("groups: {}{}\n", "[".repeat(levels), "]".repeat(levels));
        let install = Install::new(common::sqlite_db(), &[("deep.yaml", &deep)]);
        let out = rosterd(&install, &["check"]);
        let shown = text(&out);
        assert_eq!(out.status.code(), Some(1), "{levels}: {shown:.2000}");
        assert!(shown.contains("deep.yaml:1:"), "{levels}: {shown:.2000}");
        assert!(shown.contains(message), "{levels}: {shown:.2000}");
        assert!(
            shown.len() < 2_000,
            "{levels}: the message quotes the whole line"
        );
    }
}

#[test]
fn duplicate_keys_are_found_among_a_hundred_thousand() {
    // Quadratic before: 100,000 keys took a minute (release) and froze the daemon's probes.
    let mut yaml = String::from("groups: []\nx:\n");
    for i in 0..100_000 {
        yaml.push_str(&format!("  k{i}: 1\n"));
    }
    yaml.push_str("  k7: 2\n");
    let err = rosterd::rules::yaml::parse(&yaml, 0).unwrap_err();
    assert_eq!(err.message, "duplicate key in mapping");
    let first = yaml.find("  k7: 1").unwrap() + 2;
    assert_eq!(err.notes[0].0.start as usize, first);
}

#[test]
fn regexes_have_a_size_limit_each_and_together() {
    // One pattern that compiles past the limit for one regex.
    let big = group_with_rule(r#"title matches "x{65000}""#);
    let install = Install::new(common::sqlite_db(), &[("re.yaml", &big)]);
    let out = rosterd(&install, &["check"]);
    let shown = text(&out);
    assert_eq!(out.status.code(), Some(1), "{shown}");
    assert!(shown.contains("invalid regex"), "{shown}");
    assert!(
        shown.contains("larger than the limit of 1024 KiB for one pattern"),
        "{shown}"
    );

    // Many patterns each under that limit, together over the budget: 700 rules of this size
    // took 2.2 GB in `check` with the regex crate's default limits.
    let mut yaml = String::from("groups:\n");
    for i in 0..700 {
        yaml.push_str(&format!(
            "  - name: g{i}\n    kind: managed\n    rule: 'title matches \"y{{{}}}\"'\n",
            8_000 + i
        ));
    }
    let install = Install::new(common::sqlite_db(), &[("many.yaml", &yaml)]);
    let out = rosterd(&install, &["check"]);
    let shown = text(&out);
    assert_eq!(out.status.code(), Some(1), "{shown:.3000}");
    assert!(
        shown.contains(&format!(
            "together compile to more than the limit of {} MiB",
            limits::MAX_REGEX_TOTAL_BYTES >> 20
        )),
        "{shown:.3000}"
    );
    assert_eq!(
        shown.matches("invalid regex").count(),
        1,
        "one mistake, one error"
    );
}

#[test]
fn rule_files_and_groups_have_limits_that_are_named() {
    let install = Install::new(common::sqlite_db(), &[]);
    let mut huge = String::from("groups: []\n");
    while huge.len() <= limits::MAX_FILE_BYTES {
        huge.push_str("# padding padding padding padding padding padding padding padding\n");
    }
    install.write_rule("huge.yaml", &huge);
    let out = rosterd(&install, &["check"]);
    let shown = text(&out);
    assert_eq!(out.status.code(), Some(1), "{shown}");
    assert!(shown.contains("huge.yaml:1:1"), "{shown}");
    assert!(
        shown.contains("more than the limit of 4 MiB for one file"),
        "{shown}"
    );

    let install = Install::new(common::sqlite_db(), &[]);
    let mut many = String::from("groups:\n");
    for i in 0..=limits::MAX_GROUPS {
        many.push_str(&format!("  - {{name: g{i}, kind: manual}}\n"));
    }
    install.write_rule("many.yaml", &many);
    let out = rosterd(&install, &["check"]);
    let shown = text(&out);
    assert_eq!(out.status.code(), Some(1), "{shown:.2000}");
    assert!(
        shown.contains(&format!(
            "more than the limit of {} groups",
            limits::MAX_GROUPS
        )),
        "{shown:.2000}"
    );
}

#[test]
fn a_nul_in_a_rule_file_is_a_diagnostic() {
    let yaml = "groups:\n  - name: n\n    kind: manual\n    members: [\"a\\0b\"]\n";
    let install = Install::new(common::sqlite_db(), &[("nul.yaml", yaml)]);
    let out = rosterd(&install, &["check"]);
    let shown = text(&out);
    assert_eq!(out.status.code(), Some(1), "{shown}");
    assert!(shown.contains("nul.yaml:4:"), "{shown}");
    assert!(shown.contains("NUL character"), "{shown}");
}

#[test]
fn plain_http_is_for_loopback_hosts_only_and_numbers_are_range_checked() {
    let install = Install::new(common::sqlite_db(), &[]);
    let original = std::fs::read_to_string(install.path("rosterd.yaml")).unwrap();
    let with_target = |target: &str| {
        std::fs::write(
            install.path("rosterd.yaml"),
            original.replace("  slack: {}\n", &format!("  slack: {target}\n")),
        )
        .unwrap();
        Config::load(&install.path("rosterd.yaml")).map_err(|e| e.to_string())
    };
    for refused in [
        "http://localhost.attacker.example/scim",
        "http://127.0.0.1.nip.io/scim",
        "http://[::1].attacker.example/",
        "http://10.0.0.1/scim",
        "ftp://127.0.0.1/",
    ] {
        let err = with_target(&format!("{{ url: \"{refused}\" }}")).unwrap_err();
        assert!(err.contains("targets.slack.url"), "{refused}: {err}");
    }
    for allowed in [
        "http://localhost:8080/scim",
        "http://LOCALHOST/scim",
        "http://127.0.0.1/scim",
        "http://127.1.2.3:99/",
        "http://[::1]:8080/scim",
        "https://scim.example.com/v2",
    ] {
        with_target(&format!("{{ url: \"{allowed}\" }}"))
            .unwrap_or_else(|e| panic!("{allowed}: {e}"));
    }
    for (option, value, named) in [
        (
            "requests_per_second",
            "1e-300",
            "requests_per_second: must be from 0.001",
        ),
        (
            "requests_per_second",
            ".nan",
            "requests_per_second: must be from 0.001",
        ),
        (
            "concurrency",
            "100000",
            "concurrency: must be from 1 to 256",
        ),
        ("timeout_seconds", "0", "timeout_seconds: must be from 1"),
        ("retries", "1000", "retries: must be from 0 to 20"),
        ("page_size", "0", "page_size: must be from 1"),
        (
            "max_retry_after_seconds",
            "99999999",
            "max_retry_after_seconds",
        ),
    ] {
        let err = with_target(&format!(
            "{{ url: \"https://scim.example.com\", {option}: {value} }}"
        ))
        .unwrap_err();
        assert!(
            err.contains(&format!("targets.slack.{named}")),
            "{option}: {err}"
        );
    }
    std::fs::write(
        install.path("rosterd.yaml"),
        original.replace(
            "source: { file: workers.csv }",
            "source: { file: workers.csv, retries: 99 }",
        ),
    )
    .unwrap();
    let err = Config::load(&install.path("rosterd.yaml"))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("directory.source.retries: must be from 0 to 20"),
        "{err}"
    );
}

#[cfg(unix)]
#[tokio::test]
async fn the_sqlite_file_is_readable_by_its_owner_alone() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("rosterd.db");
    let url = format!("sqlite://{}", file.display());
    let store = rosterd::store::Store::open(&url).await.unwrap();
    store.close().await;
    let mode = std::fs::metadata(&file).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "{mode:o}");
    // Migrating takes its lock on the database file itself: nothing is left beside it.
    let names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .filter(|n| !n.ends_with("-wal") && !n.ends_with("-shm"))
        .collect();
    assert_eq!(names, ["rosterd.db"]);
}

/// A database made by an older version (or by hand) with a wider mode is narrowed to the
/// owner's on open, its `-wal` and `-shm` with it; a path that is a symbolic link (dangling or
/// not) is refused, naming the file and the way to allow it, and nothing is created where it
/// points.
#[cfg(unix)]
#[tokio::test]
async fn an_existing_database_is_narrowed_to_its_owner_and_a_symlink_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("old.db");
    let url = format!("sqlite://{}", file.display());
    let store = rosterd::store::Store::open(&url).await.unwrap();
    store.close().await;
    for suffix in ["", "-wal", "-shm"] {
        let path = dir.path().join(format!("old.db{suffix}"));
        if !path.exists() {
            std::fs::write(&path, b"").unwrap();
        }
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    // Checked while open: SQLite removes its -wal and -shm files when it closes.
    let store = rosterd::store::Store::open(&url).await.unwrap();
    for suffix in ["", "-wal", "-shm"] {
        let path = dir.path().join(format!("old.db{suffix}"));
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "old.db{suffix}: {mode:o}");
    }
    store.close().await;

    for (link, points_to) in [("dangling.db", "nowhere.db"), ("linked.db", "old.db")] {
        let path = dir.path().join(link);
        std::os::unix::fs::symlink(dir.path().join(points_to), &path).unwrap();
        let err = match rosterd::store::Store::open(&format!("sqlite://{}", path.display())).await {
            Ok(_) => panic!("{link} was opened"),
            Err(e) => e.to_string(),
        };
        assert!(
            err.contains(link)
                && err.contains("symbolic link")
                && err.contains(rosterd::store::SYMLINK_ENV),
            "{err}"
        );
    }
    assert!(
        !dir.path().join("nowhere.db").exists(),
        "created through a dangling link"
    );
}

/// The fixture organisation, evaluated once on `db`; then its export replaced by `bytes`.
async fn evaluated_then_export(
    db: common::TestDb,
    bytes: &[u8],
) -> (Install, rosterd::store::Store) {
    let install = Install::new(db, &[("groups.yaml", &common::org_rules())]);
    // One bad row of ten is 10%: let such a load through, so the rows' own issues show.
    let config = std::fs::read_to_string(install.path("rosterd.yaml")).unwrap();
    std::fs::write(
        install.path("rosterd.yaml"),
        config.replace(
            "failsafe: { max_shrink_percent: 50 }",
            "failsafe: { max_shrink_percent: 50 }\n  max_bad_rows_percent: 50",
        ),
    )
    .unwrap();
    let store = install.store().await;
    let first = install.run(&store, "2026-11-22").await;
    assert!(matches!(first, Outcome::Applied { .. }), "{first:?}");
    std::fs::write(install.path("workers.csv"), bytes).unwrap();
    (install, store)
}

fn latin1_export() -> Vec<u8> {
    let mut bytes = std::fs::read("tests/fixtures/org/workers.csv").unwrap();
    // A leaver's row, and one Latin-1 byte (é) further down in another row.
    let text = String::from_utf8(bytes.clone()).unwrap();
    let line = text.lines().nth(3).unwrap();
    let at = text.find(line).unwrap() + 2;
    bytes.splice(at..at, [0xE9]);
    bytes
}

#[tokio::test]
async fn an_export_that_is_not_utf8_fails_the_run_and_promotes_nothing() {
    for db in common::all_dbs().await {
        let (install, store) = evaluated_then_export(db, &latin1_export()).await;
        let before = store.current_snapshot().await.unwrap().unwrap();
        let config = install.config();
        let rules = install.rules(&config);
        let inputs = rosterd::cycle::Inputs {
            config: std::sync::Arc::new(config.clone()),
            rules: std::sync::Arc::new(rules.clone()),
            as_of: common::as_of(),
            now: rosterd::clock::now_utc(),
            kind: "evaluate",
        };
        let err = rosterd::cycle::run(&inputs, &store).await.unwrap_err();
        let CycleError::Fetch(rosterd::fetch::FetchError::Encoding { line, column, .. }) = &err
        else {
            panic!("expected an encoding error, got {err}");
        };
        assert_eq!((*line, *column), (4, 3), "{err}");
        let run = store.runs(1).await.unwrap().remove(0);
        assert_eq!(run.status, RunStatus::Failed, "{run:?}");
        assert!(run.message.unwrap().contains("not UTF-8"));
        let after = store.current_snapshot().await.unwrap().unwrap();
        assert_eq!(before.id, after.id, "no snapshot was promoted");
        store.close().await;

        // `check` and `evaluate` say the same, and both fail.
        for command in ["check", "evaluate"] {
            let out = rosterd(&install, &[command]);
            let shown = text(&out);
            assert_eq!(out.status.code(), Some(1), "{command}: {shown}");
            assert!(
                shown.contains("not UTF-8 text: the first bad byte is at line 4, column 3"),
                "{command}: {shown}"
            );
        }
    }
}

#[tokio::test]
async fn an_export_over_max_bytes_fails_the_run() {
    let (install, store) = evaluated_then_export(
        common::sqlite_db(),
        &std::fs::read("tests/fixtures/org/workers.csv").unwrap(),
    )
    .await;
    store.close().await;
    let config = std::fs::read_to_string(install.path("rosterd.yaml")).unwrap();
    std::fs::write(
        install.path("rosterd.yaml"),
        config.replace(
            "source: { file: workers.csv }",
            "source: { file: workers.csv, max_bytes: 100 }",
        ),
    )
    .unwrap();
    for command in ["check", "evaluate"] {
        let out = rosterd(&install, &[command]);
        let shown = text(&out);
        assert_eq!(out.status.code(), Some(1), "{command}: {shown}");
        assert!(
            shown.contains("larger than directory.source.max_bytes (100 bytes)"),
            "{command}: {shown}"
        );
    }
}

#[tokio::test]
async fn a_huge_line_or_field_is_quoted_in_a_few_characters() {
    let (install, store) = evaluated_then_export(common::sqlite_db(), b"").await;
    for (bytes, expected) in [
        // 2 MB without a newline: not read as a header at all.
        (
            2_000_000,
            "line 1: the header line is 2000000 bytes, more than the limit of 1048576",
        ),
        // Half a megabyte: one enormous column name, quoted in a few characters.
        (500_000, "missing columns"),
    ] {
        std::fs::write(install.path("workers.csv"), "x".repeat(bytes)).unwrap();
        let out = rosterd(&install, &["evaluate"]);
        let shown = text(&out);
        assert_eq!(out.status.code(), Some(1), "{shown:.2000}");
        assert!(shown.contains(expected), "{shown:.2000}");
        assert!(shown.len() < 3_000, "{} bytes of message", shown.len());
        let run = store.runs(1).await.unwrap().remove(0);
        assert_eq!(run.status, RunStatus::Failed);
        assert!(run.message.unwrap().len() < 3_000);
    }

    // A field longer than the limit is a bad value, not a copy of it in the message.
    let export = std::fs::read_to_string("tests/fixtures/org/workers.csv").unwrap();
    let long = "t".repeat(rosterd::directory::MAX_FIELD_BYTES + 1);
    let mut lines: Vec<String> = export.lines().map(str::to_string).collect();
    lines[4] = lines[4].replacen("Engineer", &long, 1);
    std::fs::write(install.path("workers.csv"), lines.join("\n") + "\n").unwrap();
    let out = rosterd(&install, &["check"]);
    let shown = text(&out);
    assert!(
        shown.contains(&format!(
            "line 5: column `title`: the value is {} bytes, more than the limit of {}",
            long.len() + "Security ".len(),
            rosterd::directory::MAX_FIELD_BYTES
        )),
        "{shown:.3000}"
    );
    assert!(shown.len() < 5_000, "{} bytes of message", shown.len());
    store.close().await;
}

#[test]
fn run_messages_are_bounded_and_hold_no_nul() {
    let long = "é".repeat(20_000) + "\0";
    let stored = rosterd::store::bounded_message(&long);
    assert!(stored.chars().count() < rosterd::store::MAX_RUN_MESSAGE_CHARS + 40);
    assert!(
        stored.ends_with("more bytes)"),
        "{}",
        &stored[stored.len() - 40..]
    );
    assert_eq!(rosterd::store::bounded_message("a\0b"), "a\u{FFFD}b");
}

#[tokio::test]
async fn keys_with_control_characters_are_rejected_on_both_backends() {
    let export = std::fs::read_to_string("tests/fixtures/org/workers.csv").unwrap();
    let mut lines: Vec<String> = export.lines().map(str::to_string).collect();
    // Line 3's key gets a NUL.
    lines[2] = lines[2].replacen("W002", "W002\0x", 1);
    let bytes = (lines.join("\n") + "\n").into_bytes();
    for db in common::all_dbs().await {
        let backend = db.url.split(':').next().unwrap().to_string();
        let (install, store) = evaluated_then_export(db, &bytes).await;
        let outcome = install.run(&store, "2026-11-22").await;
        let Outcome::Applied { removed, .. } = outcome else {
            panic!("{backend}: {outcome:?}");
        };
        assert!(
            removed > 0,
            "{backend}: the worker with the bad key left its groups"
        );
        let out = rosterd(&install, &["check"]);
        let shown = text(&out);
        assert!(
            shown.contains(
                "line 3: column `id`: the key holds a control character (U+0000): row rejected"
            ),
            "{backend}: {shown}"
        );
        store.close().await;
    }
}

/// An HR answer that is not an export (a sign-in page served with 200, here one that never
/// ends) is refused at its first bytes, naming why, not read into memory to `max_bytes`
/// first; a Workday JSON source that answers with something else is refused the same way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_hr_answer_that_is_not_an_export_is_refused_at_its_first_bytes() {
    use futures_util::StreamExt;
    let app = axum::Router::new().fallback(|uri: axum::http::Uri| async move {
        let first: &'static str = if uri.path().ends_with("html") {
            "<!DOCTYPE html><html><body>Sign in"
        } else {
            "id,email\n"
        };
        let head = futures_util::stream::once(async move {
            Ok::<_, std::io::Error>(axum::body::Bytes::from(first))
        });
        // Then nothing, for ever: a reader that waits for the end waits for the deadline.
        axum::body::Body::from_stream(head.chain(futures_util::stream::pending()))
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    for (path, format, why) in [
        (
            "/report.html",
            "csv",
            "it begins with `<`: an HTML or XML page",
        ),
        (
            "/report.csv",
            "workday_json",
            "a Workday JSON report begins with `{`",
        ),
    ] {
        let source: rosterd::config::SourceConfig = serde_yaml::from_str(&format!(
            "url: {base}{path}\nformat: {format}\nretries: 0\ndeadline_seconds: 30\n"
        ))
        .unwrap();
        let started = std::time::Instant::now();
        let err = rosterd::fetch::export(&source).await.unwrap_err();
        assert!(
            started.elapsed() < std::time::Duration::from_secs(5),
            "{path}: waited for the end"
        );
        assert!(err.is_bad_answer(), "{err}");
        let text = err.to_string();
        assert!(
            text.contains("not an export") && text.contains(why),
            "{text}"
        );
    }
}

// --- Hostile targets -------------------------------------------------------------------------

use std::sync::{Arc, Mutex};

use common::world::{World, TARGET_OPTIONS};
use serde_json::{json, Value};

/// What a scripted target answers: status, headers, body.
type Answer = (u16, Vec<(String, String)>, Vec<u8>);
type Script = dyn Fn(&str, &str, &[u8]) -> Answer + Send + Sync;

/// A SCIM target that answers as its script says, over real HTTP on 127.0.0.1, and keeps
/// each request's `METHOD path?query`.
struct Scripted {
    url: String,
    requests: Arc<Mutex<Vec<String>>>,
}

impl Scripted {
    async fn start(
        script: impl Fn(&str, &str, &[u8]) -> Answer + Send + Sync + 'static,
    ) -> Scripted {
        let script: Arc<Script> = Arc::new(script);
        let requests = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::clone(&requests);
        let app = axum::Router::new().fallback(move |request: axum::extract::Request| {
            let script = Arc::clone(&script);
            let seen = Arc::clone(&seen);
            async move {
                let method = request.method().to_string();
                let path = request
                    .uri()
                    .path_and_query()
                    .map(|p| p.to_string())
                    .unwrap_or_default();
                let body = axum::body::to_bytes(request.into_body(), 1 << 20)
                    .await
                    .unwrap_or_default();
                seen.lock().unwrap().push(format!("{method} {path}"));
                let script = Arc::clone(&script);
                // A script may block (to hold a request open): off the runtime's threads.
                let (status, headers, body) =
                    tokio::task::spawn_blocking(move || script(&method, &path, &body))
                        .await
                        .unwrap();
                let mut response = axum::response::Response::new(axum::body::Body::from(body));
                *response.status_mut() = axum::http::StatusCode::from_u16(status).unwrap();
                for (name, value) in headers {
                    response.headers_mut().insert(
                        axum::http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                        value.parse().unwrap(),
                    );
                }
                response
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/scim", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Scripted { url, requests }
    }

    fn requests(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }
}

fn scim_json(status: u16, body: Value) -> Answer {
    (
        status,
        vec![("content-type".into(), "application/scim+json".into())],
        serde_json::to_vec(&body).unwrap(),
    )
}

fn list(resources: Vec<Value>, total: u64) -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"],
        "totalResults": total,
        "Resources": resources,
    })
}

/// `GET /Users?filter=userName eq "x"` answered with one user whose id is `u-x`.
fn user_by_filter(path: &str) -> Option<Answer> {
    let query = path.split_once("filter=")?.1;
    let decoded = percent_decode(query);
    let value = decoded.split('"').nth(1)?.to_string();
    Some(scim_json(
        200,
        list(
            vec![json!({"id": format!("u-{value}"), "userName": value})],
            1,
        ),
    ))
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() + 1 {
            if let Ok(b) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(if bytes[i] == b'+' { b' ' } else { bytes[i] });
        i += 1;
    }
    String::from_utf8_lossy(&out).to_string()
}

/// A world whose target `app` is the scripted server, with `extra` target options.
async fn world_against(target: &Scripted, extra: &str) -> World {
    let world = World::with_emulator(common::sqlite_db(), 30, &[]).await;
    let retries = if extra.contains("retries:") {
        ""
    } else {
        "    retries: 2\n"
    };
    let options = TARGET_OPTIONS.replace("    retries: 12\n", retries);
    world.write_config("", &format!("{options}{extra}"));
    let config = std::fs::read_to_string(world.path("rosterd.yaml")).unwrap();
    std::fs::write(
        world.path("rosterd.yaml"),
        config.replace(&world.url(), &target.url),
    )
    .unwrap();
    world
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_created_without_an_id_is_an_error_not_a_default() {
    let target = Scripted::start(|method, path, _| {
        if let Some(found) = path.starts_with("/scim/Users?filter").then(|| user_by_filter(path)).flatten() {
            return found;
        }
        match (method, path) {
            ("GET", p) if p.starts_with("/scim/Groups?") => scim_json(200, list(vec![], 0)),
            // 201, but no id: RFC 7643 requires one.
            ("POST", "/scim/Groups") => scim_json(
                201,
                json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "x"}),
            ),
            _ => scim_json(500, json!({"detail": "unexpected"})),
        }
    })
    .await;
    let world = world_against(&target, "    user_match: { lookup: filter }\n").await;
    let report = world.sync(Default::default()).await;
    let errors: Vec<&str> = report.targets[0]
        .groups
        .iter()
        .filter_map(|g| g.error.as_deref())
        .collect();
    assert!(!errors.is_empty(), "{report:?}");
    assert!(
        errors.iter().all(|e| e.contains("the group has no `id`")),
        "{errors:?}"
    );
    let store = world.store().await;
    let groups = store.target_groups("app").await.unwrap();
    assert!(groups.is_empty(), "stored as created: {groups:?}");
    assert!(
        !target
            .requests()
            .iter()
            .any(|r| r.starts_with("PATCH /scim/Groups/ ") || r == "PATCH /scim/Groups/"),
        "{:?}",
        target.requests()
    );
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_target_whose_total_lies_is_not_listed_forever() {
    let pages = Arc::new(Mutex::new(0u32));
    let counted = Arc::clone(&pages);
    let target = Scripted::start(move |method, path, _| {
        if path.starts_with("/scim/Users?startIndex") {
            // The same page, again and again, with a billion promised.
            *counted.lock().unwrap() += 1;
            let users = (0..5).map(|i| json!({"id": format!("x{i}"), "userName": format!("nobody{i}@example.com")})).collect();
            return scim_json(200, list(users, 1_000_000_000));
        }
        if let Some(found) = path.starts_with("/scim/Users?filter").then(|| user_by_filter(path)).flatten() {
            return found;
        }
        match (method, path) {
            ("GET", p) if p.starts_with("/scim/Groups?") => scim_json(200, list(vec![], 0)),
            ("POST", "/scim/Groups") => scim_json(201, json!({"id": "g1", "displayName": "x", "members": []})),
            ("PATCH", _) => (204, vec![], vec![]),
            _ => scim_json(500, json!({"detail": "unexpected"})),
        }
    })
    .await;
    let world = world_against(
        &target,
        "    user_match: { lookup: list }\n    page_size: 5\n",
    )
    .await;
    let report = tokio::time::timeout(
        std::time::Duration::from_secs(120),
        world.sync(Default::default()),
    )
    .await
    .expect("the listing went on");
    assert_eq!(
        *pages.lock().unwrap(),
        2,
        "a repeated page ends the listing"
    );
    // The workers were then looked up one by one, and found.
    assert!(report.targets[0].error.is_none(), "{report:?}");
    assert!(
        report.targets[0]
            .groups
            .iter()
            .all(|g| g.unprovisioned == 0),
        "{report:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn huge_answers_slow_retries_and_foreign_redirects_are_refused() {
    // Elsewhere: must never be asked.
    let elsewhere = Scripted::start(|_, _, _| scim_json(200, list(vec![], 0))).await;
    let foreign = format!("{}/Groups", elsewhere.url);
    let first = Arc::new(Mutex::new(true));
    let target = Scripted::start(move |method, path, _| {
        if let Some(found) = path
            .starts_with("/scim/Users?filter")
            .then(|| user_by_filter(path))
            .flatten()
        {
            // The first lookup is told to come back in eleven days.
            let mut first = first.lock().unwrap();
            if *first {
                *first = false;
                return (429, vec![("retry-after".into(), "999999".into())], vec![]);
            }
            return found;
        }
        match (method, path) {
            ("GET", p) if p.contains("engineering") || p.contains("Engineering") => {
                // 2 MiB of JSON, over the 1 MiB allowed.
                let padding = "x".repeat(2 << 20);
                scim_json(
                    200,
                    json!({"Resources": [], "totalResults": 0, "padding": padding}),
                )
            }
            ("GET", p) if p.starts_with("/scim/Groups?") => {
                (307, vec![("location".into(), foreign.clone())], vec![])
            }
            _ => scim_json(500, json!({"detail": "unexpected"})),
        }
    })
    .await;
    let world = world_against(
        &target,
        "    user_match: { lookup: filter }\n    max_retry_after_seconds: 1\n    max_response_bytes: 1048576\n",
    )
    .await;
    let report = tokio::time::timeout(
        std::time::Duration::from_secs(120),
        world.sync(Default::default()),
    )
    .await
    .expect("a Retry-After of eleven days was waited out");
    let errors: Vec<String> = report.targets[0]
        .groups
        .iter()
        .filter_map(|g| g.error.clone())
        .collect();
    assert!(
        errors
            .iter()
            .any(|e| e.contains("larger than max_response_bytes (1048576 bytes)")),
        "{errors:?}"
    );
    assert!(
        errors
            .iter()
            .any(|e| e.contains("refused a redirect to another origin")),
        "{errors:?}"
    );
    assert!(
        elsewhere.requests().is_empty(),
        "{:?}",
        elsewhere.requests()
    );
}

/// Two targets: one holds every request open until the other has received its writes. Pushed
/// one after the other (the slow one first, by name), the second would never be reached in
/// time; pushed side by side, it is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_slow_target_does_not_hold_back_the_others() {
    let world = World::with_emulator(common::sqlite_db(), 30, &[]).await;
    // Whether the emulator holds any group yet, asked over plain HTTP from the script's
    // blocking thread.
    let groups_url = format!("{}/Groups", world.url());
    let emulator_writes = move || {
        let rest = groups_url.strip_prefix("http://").unwrap();
        let (host, path) = rest.split_once('/').unwrap();
        let Ok(mut s) = std::net::TcpStream::connect(host) else {
            return 0;
        };
        use std::io::{Read, Write};
        let _ = write!(
            s,
            "GET /{path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
        );
        let mut answer = String::new();
        let _ = s.read_to_string(&mut answer);
        usize::from(!answer.contains("\"totalResults\":0") && answer.contains("totalResults"))
    };
    let saw_the_other_push = Arc::new(Mutex::new(false));
    let saw = Arc::clone(&saw_the_other_push);
    let slow = Scripted::start(move |_, _, _| {
        // Wait (up to 20 s) for the other target's writes, then refuse.
        for _ in 0..200 {
            if emulator_writes() > 0 {
                *saw.lock().unwrap() = true;
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        scim_json(503, json!({"detail": "busy"}))
    })
    .await;
    world.write_config("", TARGET_OPTIONS);
    let config = std::fs::read_to_string(world.path("rosterd.yaml")).unwrap();
    let config = config.replace(
        "targets:\n",
        &format!(
            "targets:\n  aaa-slow:\n    url: {}\n    retries: 0\n    user_match: {{ lookup: filter }}\n    timeout_seconds: 60\n",
            slow.url
        ),
    );
    std::fs::write(world.path("rosterd.yaml"), config).unwrap();
    let rules = std::fs::read_to_string(world.path("rules/groups.yaml")).unwrap();
    std::fs::write(
        world.path("rules/groups.yaml"),
        rules.replace("push: [app]", "push: [aaa-slow, app]"),
    )
    .unwrap();
    let report = world.sync(Default::default()).await;
    assert!(
        *saw_the_other_push.lock().unwrap(),
        "the targets were pushed one after the other"
    );
    let app = report.targets.iter().find(|t| t.target == "app").unwrap();
    assert!(app.error.is_none(), "{app:?}");
    assert!(app.groups.iter().all(|g| g.error.is_none()), "{app:?}");
    let slow_report = report
        .targets
        .iter()
        .find(|t| t.target == "aaa-slow")
        .unwrap();
    assert!(slow_report.error.is_some(), "{slow_report:?}");
}

/// A target that cannot be reached is unhealthy, and a one-group push touches the health of
/// no target that group is not pushed to.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_comes_only_from_requests_to_that_target() {
    let world = World::with_emulator(common::sqlite_db(), 30, &[]).await;
    // A second target that nothing listens on.
    // Port 1 on loopback: nothing listens there, and no test binds it. (A port taken and
    // let go again can be handed to a server of another test running meanwhile.)
    let dead_url = "http://127.0.0.1:1/scim";
    world.write_config("", TARGET_OPTIONS);
    let config = std::fs::read_to_string(world.path("rosterd.yaml")).unwrap();
    let config = config.replace(
        "targets:\n",
        &format!(
            "targets:\n  dead:\n    url: {dead_url}\n    retries: 0\n    retry_backoff_ms: 1\n"
        ),
    );
    std::fs::write(world.path("rosterd.yaml"), config).unwrap();
    let rules = std::fs::read_to_string(world.path("rules/groups.yaml")).unwrap();
    // Only `sales` goes to the dead target.
    let rules = rules.replacen(
        "rule: division == \"Sales\"\n    push: [app]",
        "rule: division == \"Sales\"\n    push: [app, dead]",
        1,
    );
    std::fs::write(world.path("rules/groups.yaml"), rules).unwrap();

    let report = world.sync(Default::default()).await;
    let dead_report = report.targets.iter().find(|t| t.target == "dead").unwrap();
    assert!(dead_report.error.is_some(), "{dead_report:?}");
    assert!(report.failed() > 0);
    let store = world.store().await;
    let health = store.target_health().await.unwrap();
    let of = |name: &str| health.iter().find(|h| h.target == name).map(|h| h.healthy);
    assert_eq!(of("dead"), Some(false), "{health:?}");
    assert_eq!(of("app"), Some(true), "{health:?}");

    // A push of `engineering` (app only) leaves the dead target's health alone.
    let since = health
        .iter()
        .find(|h| h.target == "dead")
        .unwrap()
        .since
        .clone();
    store.close().await;
    let report = world
        .sync(rosterd::push::Options {
            group: Some("engineering".into()),
            ..Default::default()
        })
        .await;
    assert!(
        report.targets.iter().all(|t| t.target != "dead"),
        "{report:?}"
    );
    let store = world.store().await;
    let health = store.target_health().await.unwrap();
    let dead_now = health.iter().find(|h| h.target == "dead").unwrap();
    assert!(!dead_now.healthy);
    assert_eq!(dead_now.since, since);
    store.close().await;
}

/// A target that is always busy: one request gives up at `request_deadline_seconds`, however
/// many retries are allowed; a target that answers too slowly gives up the whole push at
/// `push_deadline_seconds`, and the run says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_and_pushes_give_up_at_their_deadlines() {
    let busy =
        Scripted::start(|_, _, _| (503, vec![("retry-after".into(), "1".into())], vec![])).await;
    let world = world_against(
        &busy,
        "    retries: 20\n    request_deadline_seconds: 1\n    user_match: { lookup: filter }\n",
    )
    .await;
    let report = tokio::time::timeout(
        std::time::Duration::from_secs(120),
        world.sync(Default::default()),
    )
    .await
    .expect("a request outlived its deadline");
    let error = report.targets[0].error.clone().unwrap_or_default();
    assert!(
        error.contains("request_deadline_seconds (1 s)"),
        "{report:?}"
    );
    // Each request was tried until its deadline, not 21 times.
    let mut tries: std::collections::BTreeMap<String, usize> = Default::default();
    for r in busy.requests() {
        *tries.entry(r).or_default() += 1;
    }
    assert!(tries.values().all(|&n| n <= 3), "{tries:?}");

    let slow = Scripted::start(|method, path, _| {
        std::thread::sleep(std::time::Duration::from_millis(700));
        if let Some(found) = path
            .starts_with("/scim/Users?filter")
            .then(|| user_by_filter(path))
            .flatten()
        {
            return found;
        }
        match method {
            "GET" => scim_json(200, list(vec![], 0)),
            "POST" => scim_json(201, json!({"id": "g", "displayName": "x", "members": []})),
            _ => (204, vec![], vec![]),
        }
    })
    .await;
    let world = world_against(
        &slow,
        "    push_deadline_seconds: 2\n    user_match: { lookup: filter }\n",
    )
    .await;
    let report = tokio::time::timeout(
        std::time::Duration::from_secs(120),
        world.sync(Default::default()),
    )
    .await
    .expect("a push outlived its deadline");
    let error = report.targets[0].error.clone().unwrap_or_default();
    assert!(
        error.contains("did not finish within push_deadline_seconds (2 s)"),
        "{report:?}"
    );
    assert!(report.failed() > 0);
}
