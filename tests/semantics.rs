//! docs/rules-language.md, line by line: every operator with present and missing values, every
//! function, and every membership rule of section 3.

#![allow(clippy::unwrap_used, reason = "a failed unwrap is a failed test")]

mod common;

use std::path::Path;
use std::sync::Arc;

use chrono::NaiveDate;
use rosterd::directory::{Schema, Snapshot, Value};
use rosterd::engine;
use rosterd::rules::{self, RuleSet, SourceMap};

fn date(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
}

fn as_of() -> NaiveDate {
    date("2026-11-22")
}

fn schema() -> Arc<Schema> {
    common::letters_schema()
}

/// One worker's attributes; `None` is missing.
#[derive(Default, Clone)]
struct W {
    id: &'static str,
    email: Option<&'static str>,
    mgr: Option<&'static str>,
    s: Option<&'static str>,
    t: Option<&'static str>,
    n: Option<f64>,
    b: Option<bool>,
    d: Option<&'static str>,
    l: Option<&'static [&'static str]>,
    status: Option<&'static str>,
}

fn row(w: &W) -> Vec<Option<Value>> {
    let s = |v: Option<&str>| v.map(|x| Value::Str(x.to_string()));
    vec![
        Some(Value::Str(w.id.to_string())),
        s(w.email),
        s(w.mgr),
        s(w.s),
        s(w.t),
        w.n.map(Value::Num),
        w.b.map(Value::Bool),
        w.d.map(|d| Value::Date(date(d))),
        w.l.map(|l| Value::List(l.iter().map(|x| x.to_string()).collect())),
        s(w.status),
    ]
}

fn snapshot(workers: &[W]) -> Snapshot {
    Snapshot::from_rows(schema(), workers.iter().map(row).collect())
}

fn rule_set(yaml: &str, snap: &Snapshot, eligibility: Option<&str>) -> RuleSet {
    let mut sources = SourceMap::default();
    sources.add(
        "rules/test.yaml",
        Path::new("rules/test.yaml"),
        yaml.to_string(),
    );
    let ctx = rules::Context {
        schema: snap.schema(),
        targets: vec![],
        addressed: Vec::new(),
        eligibility: eligibility.map(|e| (e, Path::new("config.yaml"))),
    };
    rules::check_sources(sources, &ctx).unwrap_or_else(|e| panic!("{e}"))
}

/// Whether `expr` holds for the worker, as a managed group's rule with no eligibility.
fn holds(expr: &str, w: W) -> bool {
    let w = W { id: "X1", ..w };
    let snap = snapshot(&[w]);
    let yaml = format!("groups:\n  - name: g\n    kind: managed\n    rule: |-\n      {expr}\n");
    let rules = rule_set(&yaml, &snap, None);
    engine::evaluate(&snap, &rules, as_of()).is_member(0, 0)
}

fn none() -> W {
    W::default()
}

#[track_caller]
fn check(expr: &str, w: W, expected: bool) {
    assert_eq!(holds(expr, w), expected, "`{expr}`");
}

#[test]
fn equality_of_every_type_present_and_missing() {
    check(
        r#"s == "x""#,
        W {
            s: Some("x"),
            ..none()
        },
        true,
    );
    check(
        r#"s == "x""#,
        W {
            s: Some("y"),
            ..none()
        },
        false,
    );
    check(r#"s == "x""#, none(), false);
    check(
        "n == 5",
        W {
            n: Some(5.0),
            ..none()
        },
        true,
    );
    check(
        "n == 5.5",
        W {
            n: Some(5.5),
            ..none()
        },
        true,
    );
    check("n == 5", none(), false);
    check(
        "b == true",
        W {
            b: Some(true),
            ..none()
        },
        true,
    );
    check(
        "b == false",
        W {
            b: Some(false),
            ..none()
        },
        true,
    );
    check("b == false", none(), false);
    check(
        "d == 2024-01-31",
        W {
            d: Some("2024-01-31"),
            ..none()
        },
        true,
    );
    check("d == 2024-01-31", none(), false);
    check(
        r#"l == ["a", "b"]"#,
        W {
            l: Some(&["a", "b"]),
            ..none()
        },
        true,
    );
    check(
        r#"l == ["b", "a"]"#,
        W {
            l: Some(&["a", "b"]),
            ..none()
        },
        false,
    );
    check(r#"l == ["a"]"#, none(), false);
    check(
        "s == t",
        W {
            s: Some("x"),
            t: Some("x"),
            ..none()
        },
        true,
    );
    check(
        "s == t",
        W {
            s: Some("x"),
            ..none()
        },
        false,
    );
}

#[test]
fn not_equal_is_the_negation_of_equal_also_when_missing() {
    check(
        r#"s != "x""#,
        W {
            s: Some("y"),
            ..none()
        },
        true,
    );
    check(
        r#"s != "x""#,
        W {
            s: Some("x"),
            ..none()
        },
        false,
    );
    check(r#"s != "x""#, none(), true);
    check("n != 5", none(), true);
    check("d != 2024-01-01", none(), true);
    check(
        "s != t",
        W {
            s: Some("x"),
            ..none()
        },
        true,
    );
}

#[test]
fn orderings_of_numbers_dates_and_strings_by_bytes() {
    let n = |v| W {
        n: Some(v),
        ..none()
    };
    check("n < 5", n(4.0), true);
    check("n < 5", n(5.0), false);
    check("n <= 5", n(5.0), true);
    check("n > 5", n(5.0), false);
    check("n >= 5", n(5.0), true);
    check("n > -1.5", n(0.0), true);
    let d = |v| W {
        d: Some(v),
        ..none()
    };
    check("d < 2024-01-01", d("2023-12-31"), true);
    check("d >= 2024-01-01", d("2023-12-31"), false);
    check("d > 2024-01-01", d("2024-01-02"), true);
    check("d <= 2024-01-01", d("2024-01-01"), true);
    let s = |v| W {
        s: Some(v),
        ..none()
    };
    check(r#"s < "b""#, s("a"), true);
    check(r#"s < "a""#, s("B"), true); // bytes: upper case sorts first
    check(r#"s > "a""#, s("ab"), true);
    check(r#"s >= "é""#, s("z"), false); // bytes: UTF-8 é is above z
    for op in ["<", "<=", ">", ">="] {
        check(&format!("n {op} 5"), none(), false);
        check(&format!("d {op} 2024-01-01"), none(), false);
        check(&format!(r#"s {op} "m""#), none(), false);
    }
}

#[test]
fn in_and_not_in_for_strings_numbers_and_dates() {
    check(
        r#"s in ["x", "y"]"#,
        W {
            s: Some("y"),
            ..none()
        },
        true,
    );
    check(
        r#"s in ["x", "y"]"#,
        W {
            s: Some("z"),
            ..none()
        },
        false,
    );
    check(r#"s in ["x", "y"]"#, none(), false);
    check(
        r#"s not in ["x", "y"]"#,
        W {
            s: Some("z"),
            ..none()
        },
        true,
    );
    check(
        r#"s not in ["x", "y"]"#,
        W {
            s: Some("x"),
            ..none()
        },
        false,
    );
    check(r#"s not in ["x", "y"]"#, none(), true);
    check(
        "n in [1, 2, 3]",
        W {
            n: Some(2.0),
            ..none()
        },
        true,
    );
    check("n not in [1, 2, 3,]", none(), true);
    check(
        "d in [2024-01-01, 2025-01-01]",
        W {
            d: Some("2025-01-01"),
            ..none()
        },
        true,
    );
    check("d in [2024-01-01]", none(), false);
    check(
        "s in []",
        W {
            s: Some("x"),
            ..none()
        },
        false,
    );
    check(
        "s not in []",
        W {
            s: Some("x"),
            ..none()
        },
        true,
    );
}

#[test]
fn contains_on_lists_and_strings() {
    check(
        r#"l contains "a""#,
        W {
            l: Some(&["a", "b"]),
            ..none()
        },
        true,
    );
    check(
        r#"l contains "c""#,
        W {
            l: Some(&["a", "b"]),
            ..none()
        },
        false,
    );
    check(r#"l contains "a""#, none(), false);
    check(
        r#"s contains "ngin""#,
        W {
            s: Some("Engineering"),
            ..none()
        },
        true,
    );
    check(
        r#"s contains "x""#,
        W {
            s: Some("Engineering"),
            ..none()
        },
        false,
    );
    check(r#"s contains "x""#, none(), false);
}

#[test]
fn startswith_and_endswith() {
    let s = W {
        s: Some("Engineering Platform"),
        ..none()
    };
    check(r#"s startswith "Engineering""#, s.clone(), true);
    check(r#"s startswith "Platform""#, s.clone(), false);
    check(r#"s endswith "Platform""#, s.clone(), true);
    check(r#"s endswith "Engineering""#, s, false);
    check(r#"s startswith """#, none(), false);
    check(r#"s endswith "x""#, none(), false);
}

#[test]
fn matches_anywhere_unless_anchored() {
    let s = W {
        s: Some("Senior Staff Engineer"),
        ..none()
    };
    check(r#"s matches "Staff""#, s.clone(), true);
    check(r#"s matches "^Staff""#, s.clone(), false);
    check(r#"s matches "^(Senior|Staff) .*Engineer$""#, s, true);
    check(r#"s matches ".*""#, none(), false);
}

#[test]
fn bools_stand_alone_and_missing_counts_as_false() {
    check(
        "b",
        W {
            b: Some(true),
            ..none()
        },
        true,
    );
    check(
        "b",
        W {
            b: Some(false),
            ..none()
        },
        false,
    );
    check("b", none(), false);
    check("not b", none(), true);
    check(
        "not b",
        W {
            b: Some(true),
            ..none()
        },
        false,
    );
}

#[test]
fn precedence_is_or_then_and_then_not_then_comparison() {
    let w = W {
        s: Some("x"),
        n: Some(1.0),
        ..none()
    };
    // or is loosest: true or (false and false)
    check(r#"s == "x" or n == 2 and n == 3"#, w.clone(), true);
    // not binds tighter than and: (not false) and true
    check(r#"not n == 2 and s == "x""#, w.clone(), true);
    check(r#"not (n == 1 and s == "x")"#, w.clone(), false);
    check(
        "not not b",
        W {
            b: Some(true),
            ..none()
        },
        true,
    );
    check(
        "# comments run to the end of the line\n      n == 1 # and more",
        w,
        true,
    );
}

#[test]
fn string_escapes() {
    check(
        r#"s == "a\"b""#,
        W {
            s: Some("a\"b"),
            ..none()
        },
        true,
    );
    check(
        r#"s == "a\\b""#,
        W {
            s: Some("a\\b"),
            ..none()
        },
        true,
    );
    check(
        r#"s == "caf\u{e9}""#,
        W {
            s: Some("café"),
            ..none()
        },
        true,
    );
    check(
        r#"s contains "\t""#,
        W {
            s: Some("a\tb"),
            ..none()
        },
        true,
    );
}

#[test]
fn has_is_how_to_ask_for_presence() {
    check(
        "has(s)",
        W {
            s: Some("x"),
            ..none()
        },
        true,
    );
    check("has(s)", none(), false);
    check(
        "has(l)",
        W {
            l: Some(&["a"]),
            ..none()
        },
        true,
    );
    check("not has(n)", none(), true);
}

#[test]
fn lower_is_unicode_and_missing_stays_missing() {
    check(
        r#"lower(s) == "école""#,
        W {
            s: Some("ÉCOLE"),
            ..none()
        },
        true,
    );
    check(r#"lower(s) == "x""#, none(), false);
    check(r#"lower(s) != "x""#, none(), true);
    check(
        r#"lower(s) startswith "eng""#,
        W {
            s: Some("ENGINEERING"),
            ..none()
        },
        true,
    );
}

#[test]
fn days_since_counts_whole_days_to_the_evaluation_date() {
    // as_of is 2026-11-22
    check(
        "days_since(d) == 21",
        W {
            d: Some("2026-11-01"),
            ..none()
        },
        true,
    );
    check(
        "days_since(d) == 0",
        W {
            d: Some("2026-11-22"),
            ..none()
        },
        true,
    );
    check(
        "days_since(d) == -10",
        W {
            d: Some("2026-12-02"),
            ..none()
        },
        true,
    );
    check("days_since(d) < 100000", none(), false);
    check("days_since(d) != 1", none(), true);
}

fn org() -> Vec<W> {
    // W1 <- W2 <- W3 <- W4, and W5 <-> W6 a cycle with W7 under it; W8 terminated under W1.
    let w = |id, mgr: Option<&'static str>, status| W {
        id,
        mgr,
        status: Some(status),
        ..none()
    };
    vec![
        w("W1", None, "Active"),
        w("W2", Some("W1"), "Active"),
        w("W3", Some("W2"), "Active"),
        w("W4", Some("W3"), "Active"),
        w("W5", Some("W6"), "Active"),
        w("W6", Some("W5"), "Active"),
        w("W7", Some("W5"), "Active"),
        w("W8", Some("W4"), "Terminated"),
    ]
}

fn members(
    yaml: &str,
    workers: &[W],
    eligibility: Option<&str>,
    group: &str,
    on: &str,
) -> Vec<String> {
    let snap = snapshot(workers);
    let rules = rule_set(yaml, &snap, eligibility);
    let ev = engine::evaluate(&snap, &rules, date(on));
    let g = rules.lookup(group).unwrap();
    ev.members(g)
        .ones()
        .map(|w| snap.key(w).to_string())
        .collect()
}

fn managed(name: &str, rule: &str) -> String {
    format!("  - name: {name}\n    kind: managed\n    rule: '{rule}'\n")
}

#[test]
fn reports_to_walks_the_whole_chain_but_not_the_worker_itself() {
    let yaml = format!("groups:\n{}", managed("under-w2", r#"reports_to("W2")"#));
    assert_eq!(
        members(&yaml, &org(), None, "under-w2", "2026-11-22"),
        ["W3", "W4", "W8"]
    );
    let yaml = format!("groups:\n{}", managed("under-x", r#"reports_to("NOBODY")"#));
    assert!(members(&yaml, &org(), None, "under-x", "2026-11-22").is_empty());
}

#[test]
fn reports_to_stops_at_a_cycle_in_the_hr_data() {
    let yaml = format!(
        "groups:\n{}{}",
        managed("under-w5", r#"reports_to("W5")"#),
        managed("under-w1", r#"reports_to("W1")"#)
    );
    // W6 reports to W5; W5's chain loops back through W6 to W5 itself, which does not count.
    assert_eq!(
        members(&yaml, &org(), None, "under-w5", "2026-11-22"),
        ["W6", "W7"]
    );
    assert_eq!(
        members(&yaml, &org(), None, "under-w1", "2026-11-22"),
        ["W2", "W3", "W4", "W8"]
    );
}

#[test]
fn is_manager_counts_only_eligible_reports() {
    let yaml = format!("groups:\n{}", managed("managers", "is_manager"));
    let elig = Some(r#"status == "Active""#);
    // W4's only report W8 is terminated, so W4 is not a manager.
    assert_eq!(
        members(&yaml, &org(), elig, "managers", "2026-11-22"),
        ["W1", "W2", "W3", "W5", "W6"]
    );
    assert_eq!(
        members(&yaml, &org(), None, "managers", "2026-11-22"),
        ["W1", "W2", "W3", "W4", "W5", "W6"]
    );
}

#[test]
fn member_of_chains_see_final_membership() {
    let yaml = "groups:
  - name: c
    kind: managed
    rule: member_of(\"b\") and id != \"W3\"
  - name: b
    kind: hybrid
    rule: member_of(\"a\")
    exclude: [W2]
    include: [W7]
  - name: a
    kind: managed
    rule: reports_to(\"W1\")
";
    let elig = Some(r#"status == "Active""#);
    assert_eq!(
        members(yaml, &org(), elig, "a", "2026-11-22"),
        ["W2", "W3", "W4"]
    );
    assert_eq!(
        members(yaml, &org(), elig, "b", "2026-11-22"),
        ["W3", "W4", "W7"]
    );
    assert_eq!(members(yaml, &org(), elig, "c", "2026-11-22"), ["W4", "W7"]);
}

#[test]
fn hybrid_is_rule_or_include_minus_exclude() {
    let yaml = "groups:
  - name: h
    kind: hybrid
    rule: reports_to(\"W2\")
    include:
      - W6
      - id: W3
    exclude:
      - id: W3
      - email: W4@EXAMPLE.com
";
    let mut workers = org();
    workers[3].email = Some("w4@example.com");
    // Exclude beats both rule and include; emails match ignoring case.
    assert_eq!(
        members(yaml, &workers, None, "h", "2026-11-22"),
        ["W6", "W8"]
    );
}

#[test]
fn entries_count_through_their_expiry_day_and_not_after() {
    let yaml = "groups:
  - name: m
    kind: manual
    members:
      - id: W1
        expires: 2026-11-22
      - id: W2
        expires: 2026-11-21
      - id: W3
  - name: h
    kind: hybrid
    rule: id == \"W1\"
    exclude:
      - id: W1
        expires: 2026-11-30
";
    assert_eq!(members(yaml, &org(), None, "m", "2026-11-22"), ["W1", "W3"]);
    assert_eq!(members(yaml, &org(), None, "m", "2026-11-23"), ["W3"]);
    assert!(members(yaml, &org(), None, "h", "2026-11-30").is_empty());
    assert_eq!(members(yaml, &org(), None, "h", "2026-12-01"), ["W1"]);
}

#[test]
fn eligibility_removes_workers_from_every_kind_of_group() {
    let yaml = "groups:
  - name: m
    kind: manual
    members: [W8, W1]
  - name: h
    kind: hybrid
    rule: id == \"W8\"
    include: [W8]
  - name: r
    kind: managed
    rule: reports_to(\"W4\")
";
    let elig = Some(r#"status == "Active""#);
    assert_eq!(members(yaml, &org(), elig, "m", "2026-11-22"), ["W1"]);
    assert!(members(yaml, &org(), elig, "h", "2026-11-22").is_empty());
    assert!(members(yaml, &org(), elig, "r", "2026-11-22").is_empty());
    assert_eq!(members(yaml, &org(), None, "m", "2026-11-22"), ["W1", "W8"]);
}

#[test]
fn bare_strings_are_keys_first_then_emails() {
    let mut workers = org();
    workers[0].email = Some("W2"); // W1's email is another worker's key
    workers[2].email = Some("three@example.com");
    let yaml = "groups:\n  - name: m\n    kind: manual\n    members: [W2, THREE@example.com]\n";
    assert_eq!(
        members(yaml, &workers, None, "m", "2026-11-22"),
        ["W2", "W3"]
    );
}

#[test]
fn groups_are_evaluated_in_member_of_order_whatever_the_file_order() {
    let snap = snapshot(&org());
    let yaml = "groups:
  - name: last
    kind: managed
    rule: member_of(\"middle\")
  - name: middle
    kind: managed
    rule: member_of(\"first\")
  - name: first
    kind: managed
    rule: id == \"W1\"
";
    let rules = rule_set(yaml, &snap, None);
    let order: Vec<&str> = rules
        .evaluation_order()
        .iter()
        .map(|&g| rules.group(g).name.as_str())
        .collect();
    assert_eq!(order, ["first", "middle", "last"]);
}
