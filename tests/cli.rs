//! The `rosterd` binary as users run it: output, exit codes, formats.

#![allow(clippy::unwrap_used, reason = "a failed unwrap is a failed test")]

mod common;

use assert_cmd::Command;
use common::git;

fn rosterd() -> Command {
    let mut cmd = Command::cargo_bin("rosterd").unwrap();
    cmd.env("NO_COLOR", "1");
    cmd
}

/// `rosterd` on the fixture organisation, as of the tests' date.
fn org() -> Command {
    let mut cmd = rosterd();
    cmd.args([
        "--config",
        "tests/fixtures/org/rosterd.yaml",
        "--as-of",
        "2026-11-22",
    ]);
    cmd
}

fn stdout(cmd: &mut Command) -> String {
    String::from_utf8(cmd.output().unwrap().stdout).unwrap()
}

#[test]
fn check_prints_all_five_mistakes_with_carets_and_exits_1() {
    let out = rosterd()
        .args([
            "--config",
            "tests/fixtures/five-mistakes/rosterd.yaml",
            "check",
        ])
        .assert()
        .code(1)
        .get_output()
        .stdout
        .clone();
    let out = String::from_utf8(out).unwrap();
    assert_eq!(out.matches(": error: ").count(), 5, "{out}");
    for expected in [
        "mistakes.yaml:5:11: error: unknown attribute `divison`",
        "help: did you mean `division`?",
        "mistakes.yaml:9:17: error: `>=` cannot compare a number with a string",
        "mistakes.yaml:13:5: error: `rule` is not allowed on a manual group",
        "mistakes.yaml:19:12: error: unknown push target `slak`",
        "mistakes.yaml:23:21: error: unknown group `engineering`",
        "5 errors, 0 warnings",
    ] {
        assert!(out.contains(expected), "missing `{expected}` in:\n{out}");
    }
    assert_eq!(
        out.lines()
            .filter(|l| l.trim_start().starts_with('|') && l.contains('^'))
            .count(),
        5,
        "{out}"
    );
}

/// A rule file with a thousand mistakes is told in a page: the first 200 diagnostics by
/// position, how many more there are, and the whole count in the summary (text and JSON).
#[test]
fn check_shows_the_first_200_diagnostics_and_counts_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let fixture = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let config = std::fs::read_to_string(fixture.join("five-mistakes/rosterd.yaml"))
        .unwrap()
        .replace(
            "../org/workers.csv",
            &fixture.join("org/workers.csv").display().to_string(),
        );
    std::fs::write(dir.path().join("rosterd.yaml"), config).unwrap();
    std::fs::create_dir(dir.path().join("rules")).unwrap();
    let mut rules = String::from("groups:\n");
    for i in 0..1_000 {
        rules.push_str(&format!(
            "  - name: g{i}\n    kind: managed\n    rule: divison == \"x\"\n"
        ));
    }
    std::fs::write(dir.path().join("rules/many.yaml"), rules).unwrap();
    let config = dir.path().join("rosterd.yaml");
    let out = rosterd()
        .arg("--config")
        .arg(&config)
        .arg("check")
        .assert()
        .code(1)
        .get_output()
        .stdout
        .clone();
    let out = String::from_utf8(out).unwrap();
    assert_eq!(out.matches(": error: ").count(), 200, "{out}");
    assert!(out.contains("... and 800 more not shown"), "{out}");
    assert!(out.contains("1000 errors, 0 warnings"), "{out}");
    assert!(out.lines().count() < 2_000, "{} lines", out.lines().count());
    let json = stdout(
        rosterd()
            .arg("--config")
            .arg(&config)
            .args(["--format", "json", "check"]),
    );
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["errors"], 1_000);
    assert_eq!(v["diagnostics"].as_array().unwrap().len(), 200);
    assert_eq!(v["diagnostics_not_shown"], 800);
}

#[test]
fn check_passes_on_the_bundled_sample() {
    let out = stdout(rosterd().args(["--as-of", "2026-11-22", "check"]));
    assert!(out.contains("0 errors"), "{out}");
    rosterd()
        .args(["--as-of", "2026-11-22", "check"])
        .assert()
        .code(0);
}

#[test]
fn check_json_is_machine_readable() {
    let out = stdout(rosterd().args([
        "--config",
        "tests/fixtures/five-mistakes/rosterd.yaml",
        "--format",
        "json",
        "check",
    ]));
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["ok"], false);
    assert_eq!(v["errors"], 5);
    assert_eq!(v["diagnostics"][0]["line"], 5);
    assert_eq!(v["diagnostics"][0]["column"], 11);
}

#[test]
fn plan_counts_members_per_group() {
    let out = stdout(org().args(["--format", "json", "plan"]));
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["workers"], 10);
    assert_eq!(v["eligible"], 9);
    let count = |name: &str| {
        v["groups"]
            .as_array()
            .unwrap()
            .iter()
            .find(|g| g["name"] == name)
            .unwrap()["members"]
            .clone()
    };
    assert_eq!(count("security-division"), 3);
    assert_eq!(count("security-slack"), 3); // W002, W004, EA (W003); W005 excluded
    assert_eq!(count("cat-owners"), 2);
}

#[test]
fn plan_lists_one_groups_members() {
    let out = stdout(org().args(["plan", "--group", "security-slack"]));
    assert!(
        out.contains(
            "
security-slack (hybrid): 3 members as of 2026-11-22
"
        ),
        "{out}"
    );
    assert!(out.contains("compared with an empty store"), "{out}");
    assert!(
        !std::path::Path::new("tests/fixtures/org/rosterd.db").exists(),
        "plan created a database"
    );
    for w in [
        "W002 (ciso@example.com)",
        "W003 (ea@example.com)",
        "W004 (secops@example.com)",
    ] {
        assert!(out.contains(w), "{out}");
    }
    assert!(!out.contains("W005"), "{out}");
    // After the include entry expires, the assistant leaves.
    let later = stdout(rosterd().args([
        "--config",
        "tests/fixtures/org/rosterd.yaml",
        "--as-of",
        "2027-02-01",
        "plan",
        "--group",
        "security-slack",
    ]));
    assert!(!later.contains("W003"), "{later}");
}

#[test]
fn explain_shows_the_sub_expression_tree_and_the_deciding_entry() {
    let out = stdout(org().args(["explain", "ea@example.com", "security-slack"]));
    assert!(
        out.contains("W003 (ea@example.com) in security-slack (hybrid"),
        "{out}"
    );
    assert!(out.contains(": MEMBER"), "{out}");
    assert!(
        out.contains("decided by: included by `email: EA@example.com`"),
        "{out}"
    );
    assert!(out.contains("✗ member_of(\"security-division\")"), "{out}");
    assert!(out.contains("✓ status == \"Active\""), "{out}");
    assert!(out.contains("· status = \"Active\""), "{out}");

    let out = stdout(org().args(["explain", "W005", "security-slack"]));
    assert!(
        out.contains("NOT A MEMBER") && out.contains("excluded by `id: W005`"),
        "{out}"
    );
}

#[test]
fn explain_without_a_group_lists_every_group_of_the_worker() {
    let out = stdout(org().args(["explain", "W004"]));
    assert!(
        out.starts_with("W004 (secops@example.com) is in 3 of 3 groups"),
        "{out}"
    );
    let json = stdout(org().args(["--format", "json", "explain", "W004"]));
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v.as_array().unwrap().len(), 3);
    assert_eq!(v[0]["rule"]["value"], true);
}

#[test]
fn usage_errors_exit_2() {
    let org = ["--config", "tests/fixtures/org/rosterd.yaml"];
    rosterd()
        .args(org)
        .args(["explain", "nobody@example.com"])
        .assert()
        .code(2);
    rosterd()
        .args(org)
        .args(["plan", "--group", "security-slak"])
        .assert()
        .code(2)
        .stderr(predicates_contains("did you mean `security-slack`?"));
    rosterd()
        .args(org)
        .args(["--as-of", "2026-02-30", "plan"])
        .assert()
        .code(2);
    rosterd().args(["plan", "--bogus"]).assert().code(2);
    rosterd()
        .current_dir("tests")
        .args(["plan"])
        .assert()
        .code(2);
}

fn predicates_contains(needle: &'static str) -> impl predicates_core::Predicate<[u8]> {
    Contains(needle)
}

struct Contains(&'static str);

impl predicates_core::reflection::PredicateReflection for Contains {}

impl std::fmt::Display for Contains {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "contains {:?}", self.0)
    }
}

impl predicates_core::Predicate<[u8]> for Contains {
    fn eval(&self, variable: &[u8]) -> bool {
        String::from_utf8_lossy(variable).contains(self.0)
    }
}

#[test]
fn data_errors_exit_1_with_the_place() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("rosterd.yaml");
    let text = std::fs::read_to_string("tests/fixtures/org/rosterd.yaml")
        .unwrap()
        .replace(
            "file: workers.csv",
            &format!(
                "file: {}",
                std::path::Path::new("tests/fixtures/bad-export/workers.csv")
                    .canonicalize()
                    .unwrap()
                    .display()
            ),
        )
        .replace(
            "rules:\n  dir: rules",
            &format!(
                "rules:\n  dir: {}",
                std::path::Path::new("tests/fixtures/org/rules")
                    .canonicalize()
                    .unwrap()
                    .display()
            ),
        );
    std::fs::write(&config, text).unwrap();
    let out = rosterd()
        .args(["--config", config.to_str().unwrap(), "plan"])
        .assert()
        .code(1)
        .get_output()
        .stderr
        .clone();
    let out = String::from_utf8(out).unwrap();
    assert!(
        out.contains("missing columns `country`, `department`, `division`"),
        "{out}"
    );
    assert!(
        out.contains("help: the file has the columns: `id`, `email`"),
        "{out}"
    );
    // `check` counts the export's error in its summary (it said `0 errors` under it).
    let out = run_in(
        dir.path(),
        &["--config", config.to_str().unwrap(), "check"],
        1,
    );
    assert!(out.contains("1 error, 0 warnings"), "{out}");
}

/// A dry run says so, and counts the write requests it would send rather than `0 requests`.
#[test]
fn a_dry_run_says_it_is_one() {
    let dir = sample_copy();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = dir.path().join("rosterd.yaml");
    let text = std::fs::read_to_string(&config)
        .unwrap()
        .replace("127.0.0.1:8990", &format!("127.0.0.1:{port}"));
    std::fs::write(&config, text).unwrap();
    let mut emulator = std::process::Command::new(assert_cmd::cargo::cargo_bin("rosterd"))
        .args(["emulator", "--users-from-config", "--listen"])
        .arg(format!("127.0.0.1:{port}"))
        .current_dir(dir.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            started.elapsed().as_secs() < 30,
            "the emulator did not start"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let out = rosterd()
        .args(["sync", "--dry-run", "--target", "figma"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    let _ = emulator.kill();
    let _ = emulator.wait();
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(
        text.starts_with("dry run: nothing was recorded and nothing was sent"),
        "{text}"
    );
    assert!(
        text.contains("figma: 1 group, +3 -0 members; 1 write request would be sent ("),
        "{text}"
    );
    assert!(text.contains("    POST http://127.0.0.1:"), "{text}");
    assert!(!text.contains(" requests ("), "{text}");
}

#[test]
fn generate_is_deterministic_and_loads_as_workday_json() {
    let a = stdout(rosterd().args(["generate", "--workers", "300", "--seed", "9"]));
    let b = stdout(rosterd().args(["generate", "--workers", "300", "--seed", "9"]));
    assert_eq!(a, b);
    assert_eq!(a.lines().count(), 301);
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("workers.json");
    rosterd()
        .args([
            "generate",
            "--workers",
            "300",
            "--seed",
            "9",
            "--export-format",
            "workday-json",
            "--output",
            json.to_str().unwrap(),
        ])
        .assert()
        .code(0);
    let config = std::fs::read_to_string("rosterd.yaml")
        .unwrap()
        .replace("file: sample/workers.csv", "file: workers.json")
        .replace(
            "dir: rules",
            &format!(
                "dir: {}",
                std::path::Path::new("rules")
                    .canonicalize()
                    .unwrap()
                    .display()
            ),
        );
    std::fs::write(dir.path().join("rosterd.yaml"), config).unwrap();
    let out = stdout(rosterd().current_dir(dir.path()).args([
        "--as-of",
        "2026-11-22",
        "--format",
        "json",
        "plan",
    ]));
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["workers"], 300);
}

/// A copy of the fixture organisation with its own SQLite database.
fn stateful_org() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let rules = std::path::Path::new("tests/fixtures/org/rules")
        .canonicalize()
        .unwrap();
    let config = std::fs::read_to_string("tests/fixtures/org/rosterd.yaml")
        .unwrap()
        .replace("dir: rules", &format!("dir: {}", rules.display()));
    std::fs::write(dir.path().join("rosterd.yaml"), config).unwrap();
    std::fs::copy(
        "tests/fixtures/org/workers.csv",
        dir.path().join("workers.csv"),
    )
    .unwrap();
    dir
}

/// `rosterd` in `dir`; with `date`, as of that date (given before the command, as
/// `rosterd --as-of DATE COMMAND`, which only commands that take a date accept).
fn in_dir(dir: &tempfile::TempDir, date: Option<&str>) -> Command {
    let mut cmd = rosterd();
    cmd.current_dir(dir.path());
    if let Some(date) = date {
        cmd.args(["--as-of", date]);
    }
    cmd
}

#[test]
fn evaluate_records_runs_and_plan_diffs_against_them() {
    let dir = stateful_org();
    let out = stdout(in_dir(&dir, Some("2026-11-22")).arg("evaluate"));
    assert_eq!(
        out,
        "run 1: 8 joined, 0 left; 8 memberships in 3 groups (snapshot 1)\n"
    );
    assert!(
        dir.path().join("rosterd.db").exists(),
        "the embedded default is a SQLite file beside the config"
    );
    let plan = stdout(in_dir(&dir, Some("2026-11-22")).arg("plan"));
    assert!(
        plan.contains("compared with the stored state after run 1 (as of 2026-11-22)"),
        "{plan}"
    );
    assert!(
        plan.contains("Plan: 0 to join, 0 to leave, in 0 groups; 3 groups unchanged."),
        "{plan}"
    );
    // Same export, rules, config and date as run 1: nothing is read from the store.
    assert!(
        plan.contains(
            "the export, the rules, the config and the date are those of run 1: nothing changes"
        ),
        "{plan}"
    );
    let out = stdout(in_dir(&dir, Some("2026-11-22")).arg("evaluate"));
    assert_eq!(
        out,
        "run 2: 0 joined, 0 left; 8 memberships in 3 groups (snapshot 1)\n"
    );
    // After the EA's include entry expires, the plan shows exactly that.
    let plan = stdout(in_dir(&dir, Some("2027-02-01")).arg("plan"));
    assert!(
        plan.contains(
            "~ security-slack (hybrid): 0 joins, 1 leave\n    - W003 (ea@example.com)  [expired]"
        ),
        "{plan}"
    );
    let out = stdout(in_dir(&dir, Some("2027-02-01")).arg("evaluate"));
    assert!(out.starts_with("run 3: 0 joined, 1 left"), "{out}");
    let members = stdout(in_dir(&dir, None).args(["members", "security-slack"]));
    assert_eq!(
        members,
        "security-slack: 2 members\n  W002  rule  since run 1\n  W004  rule  since run 1\n"
    );
    let history = stdout(in_dir(&dir, Some("2027-02-01")).args([
        "history",
        "security-slack",
        "--worker",
        "W003",
        "--at",
        "2026-12-01",
    ]));
    assert_eq!(history, "W003 was a member of security-slack on 2026-12-01\n  2026-11-22  run 1  joined  [include]\n  2027-02-01  run 3  left  [expired]\n");
    let runs = stdout(in_dir(&dir, None).args(["--format", "json", "runs"]));
    let runs: serde_json::Value = serde_json::from_str(&runs).unwrap();
    assert_eq!(runs[0]["id"], 3);
    assert_eq!(runs[0]["removed"], 1);
    assert_eq!(runs[1]["added"], 0, "run 2 had nothing to evaluate");
    assert_eq!(runs[1]["memberships"], 8);
    assert_eq!(runs[2]["added"], 8);
}

#[test]
fn a_held_snapshot_exits_3_until_approved() {
    let dir = stateful_org();
    in_dir(&dir, Some("2026-11-22"))
        .arg("evaluate")
        .assert()
        .code(0);
    let text = std::fs::read_to_string(dir.path().join("workers.csv")).unwrap();
    let truncated: Vec<&str> = text.lines().take(3).collect();
    std::fs::write(dir.path().join("workers.csv"), truncated.join("\n") + "\n").unwrap();
    let out = in_dir(&dir, Some("2026-11-22"))
        .arg("evaluate")
        .assert()
        .code(3)
        .get_output()
        .stdout
        .clone();
    let out = String::from_utf8(out).unwrap();
    assert!(out.starts_with("run 2: held, nothing changed: the eligible population shrank from 9 to 2 workers (-77.8%)"), "{out}");
    assert!(
        out.contains("help: if the export is right, run `rosterd approve snapshot 2`"),
        "{out}"
    );
    in_dir(&dir, None)
        .args(["approve", "snapshot", "2"])
        .assert()
        .code(0);
    in_dir(&dir, None)
        .args(["approve", "snapshot", "2"])
        .assert()
        .code(2);
    in_dir(&dir, None)
        .args(["approve", "snapshot", "99"])
        .assert()
        .code(2);
    let out = stdout(in_dir(&dir, Some("2026-11-22")).arg("evaluate"));
    assert!(out.starts_with("run 3: 0 joined, 6 left"), "{out}");
}

/// A text plan lists each group's first 50 changes, by key, and counts the rest: the same
/// changes, in the same order, as the JSON plan lists in full (before a first run, and after
/// an HR change that makes members leave).
#[test]
fn a_text_plan_shows_the_first_changes_of_the_json_plan() {
    let dir = sample_copy();
    let compare = |expect_leaves: bool| {
        let text = run_in(dir.path(), &["--as-of", "2026-11-22", "plan"], 0);
        let json = run_in(
            dir.path(),
            &["--as-of", "2026-11-22", "--format", "json", "plan"],
            0,
        );
        let plan: serde_json::Value = serde_json::from_str(&json).unwrap();
        let (mut cut, mut leaves) = (0, 0);
        for group in plan["groups"].as_array().unwrap() {
            let listed = |side: &str, mark: &str| -> Vec<String> {
                group[side].as_array().map_or_else(Vec::new, |changes| {
                    changes
                        .iter()
                        .map(|c| {
                            format!(
                                "    {mark} {}  [{}]",
                                c["label"].as_str().unwrap(),
                                c["reason"].as_str().unwrap()
                            )
                        })
                        .collect()
                })
            };
            let mut all = listed("joins", "+");
            let joins = all.len();
            all.extend(listed("leaves", "-"));
            leaves += all.len() - joins;
            if all.is_empty() {
                continue;
            }
            let name = group["name"].as_str().unwrap();
            let head = text
                .lines()
                .position(|l| {
                    l.get(2..)
                        .is_some_and(|l| l.starts_with(&format!("{name} (")))
                })
                .unwrap_or_else(|| panic!("{name} is not in the text plan:\n{text}"));
            let shown: Vec<&str> = text
                .lines()
                .skip(head + 1)
                .take_while(|l| l.starts_with("    "))
                .collect();
            let expected: Vec<&str> = all.iter().take(50).map(String::as_str).collect();
            assert_eq!(&shown[..expected.len()], expected.as_slice(), "{name}");
            if all.len() > 50 {
                cut += 1;
                assert_eq!(
                    shown[50],
                    format!(
                        "    ... and {} more (`--format json` lists all)",
                        all.len() - 50
                    )
                );
            } else {
                assert_eq!(shown.len(), all.len(), "{name}");
            }
        }
        assert!(cut > 0, "a group of the sample has more than 50 changes");
        assert_eq!(leaves > 0, expect_leaves, "{text}");
    };
    compare(false);
    run_in(dir.path(), &["--as-of", "2026-11-22", "evaluate"], 0);
    edit(&dir, "sample/workers.csv", |text| {
        text.lines()
            .enumerate()
            .filter(|(i, _)| i % 7 != 3)
            .map(|(_, line)| format!("{line}\n"))
            .collect()
    });
    compare(true);
}

/// A copy of the repository's sample (config, export, rules and rule tests) to break.
fn sample_copy() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    std::fs::copy(root.join("rosterd.yaml"), dir.path().join("rosterd.yaml")).unwrap();
    for folder in ["rules", "sample"] {
        copy_dir(&root.join(folder), &dir.path().join(folder));
    }
    dir
}

/// Rewrites a file of `dir` (by its path inside it) with `change`.
fn edit(dir: &tempfile::TempDir, file: &str, change: impl FnOnce(String) -> String) {
    let path = dir.path().join(file);
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, change(text)).unwrap();
}

/// `rosterd ARGS` in `dir`, expecting exit `code`: its standard output.
fn run_in(dir: &std::path::Path, args: &[&str], code: i32) -> String {
    let out = rosterd()
        .args(args)
        .current_dir(dir)
        .assert()
        .code(code)
        .get_output()
        .stdout
        .clone();
    String::from_utf8(out).unwrap()
}

/// `rosterd ARGS` in `dir`, expecting exit `code`: its standard error.
fn stderr_in(dir: &std::path::Path, args: &[&str], code: i32) -> String {
    let out = rosterd().args(args).current_dir(dir).output().unwrap();
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(out.status.code(), Some(code), "{args:?}: {err}");
    err
}

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

#[test]
fn the_sample_rule_tests_pass() {
    let out = run_in(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")),
        &["test"],
        0,
    );
    assert!(out.contains("5 tests, 0 failed (11 expectations)"), "{out}");
    assert!(
        out.lines().filter(|l| l.starts_with("ok ")).count() == 5,
        "{out}"
    );
}

/// A rule broken in the sample: the test that pins its intent fails, with the expectation,
/// where it is written, and the explain tree of the worker and group; exit 1.
#[test]
fn a_broken_rule_fails_its_test_with_the_explain_tree() {
    let dir = sample_copy();
    edit(&dir, "rules/apps/github.yaml", |text| {
        text.replace("worker_type != \"Intern\"", "worker_type != \"Interns\"")
    });
    let out = run_in(dir.path(), &["test"], 1);
    for expected in [
        "FAIL interns are never on call, engineers with the tag are (rules/tests/intent.yaml:22:11)",
        "expected: T2 not in engineering-oncall",
        "got:      a member (rule)",
        "at rules/tests/intent.yaml:29:9",
        "T2 (t2@example.com) in engineering-oncall (managed, rules/apps/github.yaml:8:11)",
        "✓ worker_type != \"Interns\"",
        "· worker_type = \"Intern\"",
        "5 tests, 1 failed (11 expectations)",
    ] {
        assert!(out.contains(expected), "missing `{expected}` in:\n{out}");
    }

    // The same as JUnit XML: well-formed, one suite, a case per test, the failure with its
    // message and the explain tree.
    let xml = run_in(dir.path(), &["test", "--format", "junit"], 1);
    let doc = roxmltree::Document::parse(&xml).unwrap();
    let root = doc.root_element();
    assert_eq!(root.tag_name().name(), "testsuites");
    assert_eq!(root.attribute("tests"), Some("5"));
    assert_eq!(root.attribute("failures"), Some("1"));
    let suites: Vec<_> = root
        .children()
        .filter(|n| n.has_tag_name("testsuite"))
        .collect();
    assert_eq!(suites.len(), 1);
    let suite = suites[0];
    for attribute in ["name", "tests", "failures", "errors", "skipped", "time"] {
        assert!(
            suite.attribute(attribute).is_some(),
            "testsuite lacks `{attribute}`"
        );
    }
    assert!(suite.attribute("time").unwrap().parse::<f64>().is_ok());
    let cases: Vec<_> = suite
        .children()
        .filter(|n| n.has_tag_name("testcase"))
        .collect();
    assert_eq!(cases.len(), 5);
    for case in &cases {
        assert!(case.attribute("name").is_some() && case.attribute("classname").is_some());
    }
    let failed: Vec<_> = cases
        .iter()
        .filter_map(|c| c.children().find(|n| n.has_tag_name("failure")))
        .collect();
    assert_eq!(failed.len(), 1);
    let failure = failed[0];
    assert!(failure
        .attribute("message")
        .unwrap()
        .contains("expected T2 not in engineering-oncall, got a member (rule)"));
    assert!(failure.text().unwrap().contains("worker_type = \"Intern\""));
}

/// Tests are checked like rules: an unknown attribute, group or reason in a test is a
/// diagnostic with its file, line, column and caret, and `rosterd check` reports it too.
#[test]
fn mistakes_in_rule_tests_are_diagnostics_with_their_place() {
    let dir = sample_copy();
    edit(&dir, "rules/tests/intent.yaml", |text| {
        text.replace(
            "{ worker: M1, in: eng-managers-us }",
            "{ worker: M1, in: eng-manager-us }",
        )
        .replace(
            "{ worker_id: R1, email: r1@example.com, department",
            "{ worker_id: R1, email: r1@example.com, departement",
        )
        .replace("reason: no_match }", "reason: nomatch }")
    });
    for command in ["test", "check"] {
        let out = rosterd()
            .args([command])
            .current_dir(dir.path())
            .output()
            .unwrap();
        assert!(!out.status.success(), "{command}");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        for expected in [
            "rules/tests/intent.yaml:37:27: error: unknown group `eng-manager-us`",
            "help: did you mean `eng-managers-us`?",
            "rules/tests/intent.yaml:35:49: error: unknown attribute `departement`",
            "help: did you mean `department`?",
            "rules/tests/intent.yaml:30:59: error: `nomatch` is not a reason for `not_in`",
            "help: did you mean `no_match`?",
        ] {
            assert!(
                text.contains(expected),
                "{command}: missing `{expected}` in:\n{text}"
            );
        }
        assert_eq!(
            text.matches(": error: ").count(),
            3,
            "{command}: one error each:\n{text}"
        );
    }
}

/// `rosterd check` reports broken guardrails against the export: a `hold` one as an error at
/// the guardrail (exit 1), a `warn` one as a warning, each with the workers involved.
#[test]
fn check_reports_broken_guardrails_with_the_workers_involved() {
    let dir = sample_copy();
    edit(&dir, "rules/guardrails.yaml", |text| {
        text.replace("max_members: 200", "max_members: 3").replace(
            r#"never: member_of("engineering-oncall") and worker_type == "Intern""#,
            r#"never: member_of("engineering-oncall") and country == "US""#,
        )
    });
    let out = run_in(dir.path(), &["check", "--as-of", "2026-11-22"], 1);
    for expected in [
        "rules/guardrails.yaml:5:11: error: guardrail `no-intern-on-call` is violated: ",
        " make `member_of(\"engineering-oncall\") and country == \"US\"` true",
        "help: workers: E",
        "rules/guardrails.yaml:14:11: warning: guardrail `security-slack-size` is violated: `security-slack` has ",
        "more than 3",
        "1 error, 1 warning",
    ] {
        assert!(out.contains(expected), "missing `{expected}` in:\n{out}");
    }
}

/// A broken rule file: `plan` and `sync` print its diagnostics as `check` does, each once
/// with its own `error:` (not `error: rules/x.yaml:8:52: error: ...`).
#[test]
fn rule_errors_are_printed_once_compiler_style_by_every_command() {
    let dir = sample_copy();
    edit(&dir, "rules/comms/security-slack.yaml", |text| {
        text.replace(
            r#"rule: division == "Security""#,
            r#"rule: division == "Security" and title matches "(""#,
        )
    });
    for command in ["plan", "sync", "test", "evaluate"] {
        let err = stderr_in(dir.path(), &[command], 1);
        assert!(
            err.starts_with("rules/comms/security-slack.yaml:8:52: error: invalid regex"),
            "{command}: {err}"
        );
        assert!(!err.contains("error: rules/"), "{command}: {err}");
    }
}

/// A group name that neither the rules nor the audit know is a usage error (exit 2) with a
/// suggestion, for `members` and `history` alike; a known group's members show with names.
#[test]
fn unknown_groups_are_usage_errors_and_members_have_names() {
    let dir = sample_copy();
    for args in [
        &["history", "security-slak"][..],
        &["members", "security-slak"][..],
    ] {
        let err = stderr_in(dir.path(), args, 2);
        assert!(
            err.contains("error: no group `security-slak` in the rules or the audit"),
            "{err}"
        );
        assert!(
            err.contains("help: did you mean `security-slack`?"),
            "{err}"
        );
    }
    // Defined but never stored: members says how to get some, exit 0.
    let out = run_in(dir.path(), &["members", "security-slack"], 0);
    assert!(out.contains("security-slack: 0 members"), "{out}");
    run_in(dir.path(), &["evaluate", "--as-of", "2026-11-22"], 0);
    for args in [
        &["members", "security-slack"][..],
        &["history", "security-slack", "--at", "2026-11-22"][..],
    ] {
        let out = run_in(dir.path(), args, 0);
        // E000008 is Lara Moreno in the sample.
        assert!(out.contains("  E000008  Lara Moreno  "), "{args:?}: {out}");
    }
}

/// A group the rules dropped, whose members therefore all left, is still one the audit
/// answers for: who was in it before, and that nobody is now.
#[test]
fn a_dropped_groups_history_is_still_answered() {
    let dir = sample_copy();
    run_in(dir.path(), &["evaluate", "--as-of", "2026-11-22"], 0);
    std::fs::remove_file(dir.path().join("rules/apps/figma.yaml")).unwrap();
    run_in(dir.path(), &["evaluate", "--as-of", "2026-11-23"], 0);
    let before = run_in(
        dir.path(),
        &["history", "figma-admins", "--at", "2026-11-22"],
        0,
    );
    assert!(before.contains("  E000171  "), "{before}");
    assert!(before.contains("3 members"), "{before}");
    let after = run_in(
        dir.path(),
        &["history", "figma-admins", "--at", "2026-11-23"],
        0,
    );
    assert!(after.contains("0 members"), "{after}");
}

/// `runs` shows the rules revision each run used: the rules folder's own commit, marked
/// dirty when the files differ from it, and the files' digest when the folder is not in a
/// repository that tracks it (an untracked copy inside another checkout).
#[test]
fn runs_show_the_rules_folders_own_commit() {
    let dir = sample_copy();
    git(dir.path(), &["init", "-q"]);
    git(dir.path(), &["add", "rules"]);
    git(dir.path(), &["commit", "-q", "-m", "rules"]);
    let commit = git(dir.path(), &["rev-parse", "HEAD"]);
    let last_run_rules = |dir: &std::path::Path| {
        run_in(dir, &["evaluate", "--as-of", "2026-11-22"], 0);
        let runs = run_in(dir, &["runs", "--limit", "1"], 0);
        let line = runs.lines().nth(1).unwrap().to_string();
        (runs, line)
    };
    let (runs, line) = last_run_rules(dir.path());
    assert!(
        runs.starts_with("  RUN  OUTCOME                     KIND"),
        "{runs}"
    );
    assert!(line.contains(&format!("  {}  ", &commit[..12])), "{runs}");
    assert!(!line.contains("-dirty"), "{runs}");

    edit(&dir, "rules/org/divisions.yaml", |text| {
        format!("{text}\n# a change not committed yet\n")
    });
    let (runs, line) = last_run_rules(dir.path());
    assert!(
        line.contains(&format!("  {}-dirty  ", &commit[..12])),
        "{runs}"
    );

    // A copy of the rules that the repository around it does not track.
    let nested = dir.path().join("copy");
    std::fs::create_dir(&nested).unwrap();
    std::fs::copy(dir.path().join("rosterd.yaml"), nested.join("rosterd.yaml")).unwrap();
    copy_dir(&dir.path().join("rules"), &nested.join("rules"));
    copy_dir(&dir.path().join("sample"), &nested.join("sample"));
    let (runs, line) = last_run_rules(&nested);
    assert!(line.contains("  sha256:"), "{runs}");
    assert!(!line.contains(&commit[..12]), "{runs}");
}

/// A rule file that is not YAML is one mistake: its groups are unknown, so the files that
/// name them get no `unknown group` errors (nor `did you mean` another group).
#[test]
fn a_file_that_is_not_yaml_gives_one_error() {
    let dir = sample_copy();
    edit(&dir, "rules/org/divisions.yaml", |text| {
        format!("{text}\n  - name: [unclosed\n")
    });
    let out = run_in(dir.path(), &["check"], 1);
    assert_eq!(out.matches(": error: ").count(), 1, "{out}");
    assert!(out.contains("rules/org/divisions.yaml:"), "{out}");
    assert!(!out.contains("unknown group"), "{out}");
    assert!(out.contains("1 error, 0 warnings"), "{out}");
}

/// A command's findings are in its own output; log lines only behind -v (they were
/// interleaved with the output as `2026-...Z WARN rosterd::...` lines).
#[test]
fn log_lines_are_behind_verbose() {
    let dir = sample_copy();
    edit(&dir, "rules/guardrails.yaml", |text| {
        text.replace("max_members: 200", "max_members: 3")
    });
    let out = rosterd()
        .args(["evaluate", "--as-of", "2026-11-22"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let (stdout, stderr) = (
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    );
    assert!(
        stdout
            .contains("guardrail `security-slack-size` is violated (warns): `security-slack` has"),
        "{stdout}"
    );
    assert_eq!(stderr, "", "no log lines without -v");
    std::fs::remove_file(dir.path().join("rosterd.db")).unwrap();
    let out = rosterd()
        .args(["evaluate", "--as-of", "2026-11-22", "-v"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.contains("WARN") && stderr.contains("guardrail violated"),
        "{stderr}"
    );
}

/// An audit question may name a worker by key or by email: `history --worker` answers the
/// same for both, for every worker of the sample (an email in any case), and a worker
/// rosterd never heard of is a usage error with the nearest name, never "was not a member".
#[test]
fn history_answers_by_key_or_email_and_refuses_an_unknown_worker() {
    let dir = sample_copy();
    run_in(dir.path(), &["evaluate", "--as-of", "2026-11-22"], 0);
    // The issue's case: by key a member through an include entry; by email the same answer.
    let ask = |who: &str| {
        run_in(
            dir.path(),
            &[
                "history",
                "security-slack",
                "--worker",
                who,
                "--at",
                "2026-11-22",
            ],
            0,
        )
    };
    let by_key = ask("E000720");
    assert!(
        by_key.contains("was a member of security-slack"),
        "{by_key}"
    );
    assert!(by_key.contains("joined  [include]"), "{by_key}");
    assert_eq!(ask("ben.hansen@example.com"), by_key);
    assert_eq!(ask("Ben.Hansen@Example.COM"), by_key);
    let err = stderr_in(
        dir.path(),
        &[
            "history",
            "security-slack",
            "--worker",
            "ben.hanson@example.com",
        ],
        2,
    );
    assert!(
        err.contains(
            "error: no worker `ben.hanson@example.com` in the audit or the snapshot in force"
        ),
        "{err}"
    );
    assert!(
        err.contains("help: did you mean `ben.hansen@example.com`?"),
        "{err}"
    );

    // Every worker of the sample: the email names the key, in the store the CLI reads.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let config = rosterd::config::Config::load(&dir.path().join("rosterd.yaml")).unwrap();
        let store = rosterd::store::Store::open(config.database.expose())
            .await
            .unwrap();
        let current = store.current_snapshot().await.unwrap().unwrap();
        let rows = store.snapshot_workers(current.id).await.unwrap();
        let schema =
            std::sync::Arc::new(rosterd::directory::Schema::from_config(&config.directory));
        let snapshot = rosterd::directory::Snapshot::from_rows_json(schema, &rows).unwrap();
        assert!(snapshot.len() > 1_000, "the whole sample");
        for w in 0..snapshot.len() {
            let key = snapshot.key(w);
            let by_key = rosterd::cli::audited_worker(&store, Some(&snapshot), key)
                .await
                .unwrap();
            assert_eq!(by_key, key);
            if let Some(email) = snapshot.email(w) {
                for asked in [email.to_string(), email.to_uppercase()] {
                    let by_email = rosterd::cli::audited_worker(&store, Some(&snapshot), &asked)
                        .await
                        .unwrap();
                    assert_eq!(by_email, key, "{asked}");
                }
            }
        }
        store.close().await;
    });
}

/// `rosterd run --as-of` would be ignored by the daemon, so it is refused, saying what to use.
#[test]
fn the_daemon_refuses_as_of() {
    let dir = sample_copy();
    let err = stderr_in(dir.path(), &["run", "--as-of", "2027-01-01"], 2);
    assert!(
        err.contains("`--as-of 2027-01-01` does not apply to `rosterd run`"),
        "{err}"
    );
    assert!(err.contains("rosterd plan --as-of 2027-01-01"), "{err}");
}

/// `rosterd help` walked: every subcommand's `--help` describes each of its arguments and
/// options, and says what its exit status means.
#[test]
fn every_command_documents_its_arguments_and_exit_status() {
    let help = |args: &[&str]| -> String {
        let out = Command::cargo_bin("rosterd")
            .unwrap()
            .args(args)
            .arg("--help")
            .output()
            .unwrap();
        assert!(out.status.success(), "{args:?}");
        String::from_utf8(out.stdout).unwrap()
    };
    // The commands, from the top level's list.
    let top = help(&[]);
    let commands: Vec<String> = top
        .split("Commands:")
        .nth(1)
        .unwrap()
        .split("Options:")
        .next()
        .unwrap()
        .lines()
        .filter_map(|l| {
            l.strip_prefix("  ")?
                .split_whitespace()
                .next()
                .map(str::to_string)
        })
        .filter(|c| c != "help")
        .collect();
    assert!(commands.len() >= 15, "{commands:?}");
    let mut pages = vec![(vec![], top.clone())];
    for c in &commands {
        pages.push((vec![c.clone()], help(&[c.as_str()])));
    }
    for sub in ["snapshot", "push"] {
        pages.push((vec!["approve".into(), sub.into()], help(&["approve", sub])));
    }
    for sub in ["keep", "remove"] {
        pages.push((vec!["review".into(), sub.into()], help(&["review", sub])));
    }
    // Every option shown applies to the command: a date only where it evaluates, a format
    // only where there is an output for programs.
    let dated = [
        "check", "test", "plan", "explain", "evaluate", "sync", "history", "reviews",
    ];
    let formatted = [
        "check",
        "test",
        "plan",
        "explain",
        "evaluate",
        "sync",
        "history",
        "push",
        "status",
        "members",
        "runs",
        "holds",
        "reviews",
        "decisions",
    ];
    for (args, page) in pages.iter().filter(|(args, _)| !args.is_empty()) {
        let command = args[0].as_str();
        let only = args.len() == 1;
        // A review's decision is dated (the `reviewed` day) and prints what it committed.
        let decision = command == "review" && !only;
        assert_eq!(
            page.contains("--as-of"),
            (only && dated.contains(&command)) || decision,
            "{args:?}: {page}"
        );
        assert_eq!(
            page.contains("--format"),
            (only && formatted.contains(&command)) || decision,
            "{args:?}: {page}"
        ); // The config: read by every command but `generate` (and named on the own pages
           // of approve's and review's subcommands).
        assert_eq!(
            page.contains("--config"),
            !["generate", "approve", "review"].contains(&command) || args.len() == 2,
            "{args:?}: {page}"
        );
    }
    for (args, page) in &pages {
        assert!(page.contains("Exit status:\n  0  done"), "{args:?}: {page}");
        // Each entry of Arguments and Options: its name line, then a described line.
        for section in ["Arguments:", "Options:"] {
            let Some(body) = page.split(section).nth(1) else {
                continue;
            };
            let lines: Vec<&str> = body
                .lines()
                .take_while(|l| l.is_empty() || l.starts_with(' '))
                .collect();
            for (i, line) in lines.iter().enumerate() {
                let entry = line.trim_start();
                let is_name = line.starts_with("  ") && !line.starts_with("          ");
                if !is_name || entry.is_empty() {
                    continue;
                }
                // clap puts the description on the name's line (after two spaces) or, when
                // the page is wide, on the next; `[default: ..]` and `[possible values: ..]`
                // stand there when there is none.
                let same_line = entry
                    .split_once("  ")
                    .map(|(_, rest)| rest.trim())
                    .is_some_and(|rest| !rest.is_empty() && !rest.starts_with('['));
                let described = same_line
                    || lines.get(i + 1).is_some_and(|next| {
                        next.starts_with("          ")
                            && !next.trim().is_empty()
                            && !next.trim().starts_with('[')
                    });
                assert!(described, "{args:?}: `{entry}` has no description\n{page}");
            }
        }
    }
}

/// `--as-of` and `--format` before a command that does not take them are refused (exit 2),
/// not ignored; before one that does, they are its own.
#[test]
fn options_before_a_command_must_be_its_own() {
    let dir = sample_copy();
    let err = stderr_in(dir.path(), &["--as-of", "2026-11-22", "status"], 2);
    assert!(
        err.contains("`--as-of` does not apply to `rosterd status`"),
        "{err}"
    );
    let err = stderr_in(dir.path(), &["--format", "json", "migrate"], 2);
    assert!(
        err.contains("`--format` does not apply to `rosterd migrate`"),
        "{err}"
    );
    let err = stderr_in(dir.path(), &["--config", "rosterd.yaml", "generate"], 2);
    assert!(
        err.contains("`--config` does not apply to `rosterd generate`"),
        "{err}"
    );
    let err = stderr_in(dir.path(), &["--format", "junit", "plan"], 2);
    assert!(
        err.contains("`--format junit` is for `rosterd test` only"),
        "{err}"
    );
    let before = stdout(rosterd().current_dir(dir.path()).args([
        "--format",
        "json",
        "--as-of",
        "2026-11-22",
        "check",
    ]));
    let after = stdout(rosterd().current_dir(dir.path()).args([
        "check",
        "--format",
        "json",
        "--as-of",
        "2026-11-22",
    ]));
    assert_eq!(before, after);
    assert!(
        serde_json::from_str::<serde_json::Value>(&before).is_ok(),
        "{before}"
    );
}

/// A config file that is not there is a usage error (exit 2) with a hint, whether it is the
/// default `rosterd.yaml` or one named with `--config`.
#[test]
fn a_missing_config_is_a_usage_error_either_way() {
    let dir = tempfile::tempdir().unwrap();
    for args in [&["check"][..], &["check", "--config", "nope.yaml"][..]] {
        let out = Command::cargo_bin("rosterd")
            .unwrap()
            .args(args)
            .current_dir(dir.path())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains("help: "), "{args:?}: {stderr}");
    }
}

/// A new database has nothing to carry over from older layouts: migrating it says that it
/// is migrated, and does not tell of carrying memberships (migrations 6 and 8).
#[test]
fn a_new_database_tells_of_no_carry_over() {
    let dir = stateful_org();
    let out = in_dir(&dir, None)
        .args(["-vv", "migrate"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(String::from_utf8_lossy(&out.stdout).contains("is migrated"));
    assert!(!stderr.contains("carrying memberships"), "{stderr}");
    assert!(!stderr.contains("migration 8"), "{stderr}");
}
