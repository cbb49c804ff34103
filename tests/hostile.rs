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

/// `rosterd ARGS` with the install's config, as of the tests' date.
fn rosterd(install: &Install, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rosterd"))
        .arg("--config")
        .arg(install.path("rosterd.yaml"))
        .args(["--as-of", "2026-11-22"])
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
    for name in ["rosterd.db", "rosterd.db.migrate-lock"] {
        let mode = std::fs::metadata(dir.path().join(name))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{name}: {mode:o}");
    }
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
            config: &config,
            rules: &rules,
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
        assert_eq!(run.status, "failed", "{run:?}");
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
    // 2 MB without a newline: the header is one enormous column name.
    let one_line = "x".repeat(2_000_000);
    let (install, store) = evaluated_then_export(common::sqlite_db(), one_line.as_bytes()).await;
    let out = rosterd(&install, &["evaluate"]);
    let shown = text(&out);
    assert_eq!(out.status.code(), Some(1), "{shown:.2000}");
    assert!(shown.contains("missing columns"), "{shown:.2000}");
    assert!(shown.len() < 3_000, "{} bytes of message", shown.len());
    let run = store.runs(1).await.unwrap().remove(0);
    assert_eq!(run.status, "failed");
    assert!(run.message.unwrap().len() < 3_000);

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
