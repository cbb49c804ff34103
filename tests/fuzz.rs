//! Fuzz targets, structure-aware: inputs are built from the grammar of what they attack (rule
//! expressions from the language's tokens, rule files from YAML's, exports from CSV's and
//! Workday JSON's, SCIM answers from the RFC's shapes), then mutated byte by byte. Each
//! target asserts what must hold for any input: no panic, no abort, an error that renders.
//!
//! `FUZZ_CASES` sets the cases per target (the test command runs 2,000 each); for a longer
//! hunt: `FUZZ_CASES=200000 cargo test --release --test fuzz`. A crash found here becomes a
//! test of its own, below the targets.
//!
//! cargo-fuzz needs a nightly compiler, which this project's machines do not have; proptest
//! gives the same structure-aware generation and shrinks a failure to a small input.

#![allow(clippy::unwrap_used, reason = "a failed unwrap is a failed test")]

mod common;

use std::path::Path;
use std::sync::Arc;

use proptest::prelude::*;
use rosterd::config::SourceFormat;
use rosterd::directory::{self, Schema};
use rosterd::rules::{self, RulesError, SourceMap};
use serde_json::{json, Value};

fn cases() -> u32 {
    std::env::var("FUZZ_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(2_000)
}

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: cases(),
        // A failure is shrunk, but not for long: the input is printed either way.
        max_shrink_iters: 2_000,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

// --- Mutation ------------------------------------------------------------------------------

/// Edits applied to a text: each inserts, deletes or replaces at a position (a fraction of
/// the length, so that it lands inside whatever was generated).
#[derive(Debug, Clone)]
enum Edit {
    Insert(f64, String),
    Delete(f64, usize),
    Replace(f64, char),
}

fn edits() -> impl Strategy<Value = Vec<Edit>> {
    let piece = prop_oneof![
        Just("(".to_string()),
        Just(")".to_string()),
        Just("\"".to_string()),
        Just("\\".to_string()),
        Just("\n".to_string()),
        Just("\0".to_string()),
        Just("'".to_string()),
        Just(":".to_string()),
        Just("- ".to_string()),
        Just("[".to_string()),
        Just("{".to_string()),
        Just("&a ".to_string()),
        Just("*a".to_string()),
        Just("\t".to_string()),
        Just("é".to_string()),
        Just("\u{202e}".to_string()),
        Just("not ".to_string()),
        "\\PC{0,8}",
    ];
    prop::collection::vec(
        prop_oneof![
            (0.0..1.0f64, piece).prop_map(|(at, s)| Edit::Insert(at, s)),
            (0.0..1.0f64, 1..6usize).prop_map(|(at, n)| Edit::Delete(at, n)),
            (0.0..1.0f64, any::<char>()).prop_map(|(at, c)| Edit::Replace(at, c)),
        ],
        0..4,
    )
}

fn apply(text: &str, edits: &[Edit]) -> String {
    let mut chars: Vec<char> = text.chars().collect();
    for edit in edits {
        let at = |f: f64, len: usize| ((f * len as f64) as usize).min(len);
        match edit {
            Edit::Insert(f, s) => {
                let i = at(*f, chars.len());
                chars.splice(i..i, s.chars());
            }
            Edit::Delete(f, n) => {
                let i = at(*f, chars.len());
                let end = (i + n).min(chars.len());
                chars.drain(i..end);
            }
            Edit::Replace(f, c) => {
                if !chars.is_empty() {
                    let i = at(*f, chars.len() - 1);
                    chars[i] = *c;
                }
            }
        }
    }
    chars.into_iter().collect()
}

// --- Rules: parser, checker, evaluation, explanation -----------------------------------------

fn token() -> impl Strategy<Value = String> {
    let words = prop::sample::select(vec![
        "division",
        "department",
        "title",
        "level",
        "hire_date",
        "tags",
        "status",
        "remote",
        "nickname",
        "email",
        "id",
        "manager",
        "nosuch",
        "and",
        "or",
        "not",
        "in",
        "not in",
        "contains",
        "startswith",
        "endswith",
        "matches",
        "true",
        "false",
        "member_of",
        "reports_to",
        "is_manager",
        "has",
        "lower",
        "days_since",
        "(",
        ")",
        "[",
        "]",
        ",",
        "==",
        "!=",
        "<",
        "<=",
        ">",
        ">=",
        "#",
        "-",
    ]);
    prop_oneof![
        4 => words.prop_map(str::to_string),
        1 => "[a-z_]{1,6}",
        1 => "-?[0-9]{1,4}(\\.[0-9]{1,3})?",
        1 => "[0-9]{4}-[0-9]{2}-[0-9]{2}",
        2 => "[ -~é\\\\]{0,8}".prop_map(|s| format!("\"{}\"", s.replace('"', "\\\""))),
        1 => Just("\"security-division\"".to_string()),
        1 => Just("\"W002\"".to_string()),
        1 => Just("\"\\u{1F600}\"".to_string()),
        1 => Just("\"(a|b)*c{2,3}[\"".to_string()),
    ]
}

fn expression() -> impl Strategy<Value = String> {
    (prop::collection::vec(token(), 0..30), any::<bool>())
        .prop_map(|(tokens, spaced)| tokens.join(if spaced { " " } else { "" }))
}

fn rule_file() -> impl Strategy<Value = String> {
    let group = (
        prop::sample::select(vec!["a", "b", "security-division", "c-d", "Bad Name", ""]),
        prop::sample::select(vec!["managed", "hybrid", "manual", "bogus"]),
        prop::option::of(expression()),
        prop::collection::vec(
            prop::sample::select(vec![
                "{id: W002, ticket: T-1}",
                "{email: ea@example.com, expires: 2026-01-01}",
                "W009",
                "{id: W001, expires: 2026-13-40}",
                "{who: nobody}",
            ]),
            0..3,
        ),
        prop::sample::select(vec![
            "[slack]",
            "[google, slack]",
            "[]",
            "[nosuch]",
            "{x: 1}",
        ]),
    )
        .prop_map(|(name, kind, rule, entries, push)| {
            let mut g = format!("  - name: {name}\n    kind: {kind}\n");
            if let Some(rule) = rule {
                g.push_str(&format!("    rule: '{}'\n", rule.replace('\'', "''")));
            }
            if !entries.is_empty() {
                let field = if kind == "manual" {
                    "members"
                } else {
                    "include"
                };
                g.push_str(&format!("    {field}: [{}]\n", entries.join(", ")));
            }
            g.push_str(&format!("    push: {push}\n"));
            g
        });
    (prop::collection::vec(group, 0..5), edits())
        .prop_map(|(groups, edits)| apply(&format!("groups:\n{}", groups.concat()), &edits))
}

proptest! {
    #![proptest_config(config())]

    /// Any rule file: checked without a panic; diagnostics render; a rule set that checks is
    /// evaluated, linted and explained without one.
    #[test]
    fn rules_fuzz(yaml in rule_file()) {
        let (config, snapshot) = common::org();
        let mut sources = SourceMap::default();
        sources.add("fuzz.yaml", Path::new("fuzz.yaml"), yaml);
        match rules::check_sources(sources, &common::context(&config, &snapshot)) {
            Ok(set) => {
                let evaluation = rosterd::engine::evaluate(&snapshot, &set, common::as_of());
                let _ = rosterd::engine::lint(&snapshot, &set, &evaluation).render(set.sources());
                for g in 0..set.groups().len() {
                    for w in [0, snapshot.len() - 1] {
                        let _ = rosterd::engine::explain(&snapshot, &set, &evaluation, w, g).render();
                    }
                }
            }
            Err(RulesError::Internal(e)) => prop_assert!(false, "a panic while checking: {}", e),
            Err(e) => {
                let shown = e.to_string();
                prop_assert!(!shown.is_empty());
            }
        }
    }
}

// --- Exports: CSV and Workday JSON -----------------------------------------------------------

fn fixture_schema() -> Arc<Schema> {
    let (config, _) = common::org();
    Arc::new(Schema::from_config(&config.directory))
}

const COLUMNS: &[&str] = &[
    "id",
    "email",
    "manager",
    "division",
    "department",
    "country",
    "title",
    "level",
    "hire_date",
    "tags",
    "status",
    "remote",
    "nickname",
];

fn field() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => "[A-Za-z0-9@. -]{0,12}",
        1 => Just(String::new()),
        1 => "[0-9]{4}-[0-9]{2}-[0-9]{2}",
        1 => "-?[0-9]{1,12}(\\.[0-9]{1,4})?(e[0-9]{1,3})?",
        1 => prop::sample::select(vec!["yes", "no", "TRUE", "maybe", "W001", "W002", "W0"]).prop_map(str::to_string),
        1 => "\\PC{0,10}",
        1 => "[a-z,\"\n\r;]{0,10}".prop_map(|s| format!("\"{}\"", s.replace('"', "\"\""))),
        1 => Just("a\0b".to_string()),
        1 => Just("x".repeat(70_000)),
    ]
}

fn csv_export() -> impl Strategy<Value = String> {
    let header = prop::sample::subsequence(COLUMNS.to_vec(), 8..=COLUMNS.len());
    (header, 0..12usize)
        .prop_flat_map(|(header, rows)| {
            let width = header.len();
            (
                Just(header),
                prop::collection::vec(
                    prop::collection::vec(field(), width.saturating_sub(1)..=width + 1),
                    rows,
                ),
                edits(),
            )
        })
        .prop_map(|(header, rows, edits)| {
            let mut text = header.join(",") + "\n";
            for row in rows {
                text.push_str(&row.join(","));
                text.push('\n');
            }
            apply(&text, &edits)
        })
}

fn json_value(depth: u32) -> BoxedStrategy<Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>().prop_map(|n| json!(n)),
        "\\PC{0,10}".prop_map(Value::String),
        prop::sample::select(vec![
            "W001",
            "W002",
            "Security",
            "Active",
            "2024-02-30",
            "oncall"
        ])
        .prop_map(|s| Value::String(s.to_string())),
    ];
    if depth == 0 {
        return leaf.boxed();
    }
    prop_oneof![
        3 => leaf,
        1 => prop::collection::vec(json_value(depth - 1), 0..4).prop_map(Value::Array),
        1 => prop::collection::btree_map("[a-z_]{1,6}", json_value(depth - 1), 0..4)
            .prop_map(|m| Value::Object(m.into_iter().collect())),
    ]
    .boxed()
}

fn workday_export() -> impl Strategy<Value = String> {
    let entry = prop::collection::btree_map(
        prop::sample::select(COLUMNS.to_vec()).prop_map(str::to_string),
        json_value(2),
        0..COLUMNS.len(),
    )
    .prop_map(|m| Value::Object(m.into_iter().collect()));
    (
        prop::collection::vec(prop_oneof![9 => entry, 1 => json_value(2)], 0..8),
        prop::option::of(0.0..1.0f64),
    )
        .prop_map(|(entries, cut)| {
            let text = json!({ "Report_Entry": entries }).to_string();
            // Sometimes truncated, as a dropped connection leaves it.
            match cut {
                Some(f) => text
                    .chars()
                    .take((f * text.chars().count() as f64) as usize)
                    .collect(),
                None => text,
            }
        })
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn csv_export_fuzz(text in csv_export()) {
        let schema = fixture_schema();
        match directory::load_from_str(&text, SourceFormat::Csv, "fuzz.csv", schema, 100.0) {
            Ok((snapshot, report)) => {
                prop_assert_eq!(report.workers, snapshot.len());
                for w in 0..snapshot.len() {
                    prop_assert!(!snapshot.key(w).chars().any(char::is_control));
                }
            }
            Err(e) => prop_assert!(e.to_string().len() < 20_000, "{} bytes of message", e.to_string().len()),
        }
    }

    #[test]
    fn workday_export_fuzz(text in workday_export()) {
        let schema = fixture_schema();
        if let Err(e) = directory::load_from_str(&text, SourceFormat::WorkdayJson, "fuzz.json", schema, 100.0) {
            prop_assert!(!e.to_string().is_empty());
        }
    }

    /// Bytes that are not all UTF-8: the error's place is that of the first bad byte.
    #[test]
    fn decode_fuzz(prefix in "\\PC{0,40}", bad in prop::sample::select(vec![0x80u8, 0xBF, 0xC0, 0xC1, 0xF8, 0xFF]), rest in prop::collection::vec(any::<u8>(), 0..10)) {
        let mut bytes = prefix.clone().into_bytes();
        bytes.push(bad);
        bytes.extend(rest);
        match rosterd::fetch::decode(bytes, "fuzz") {
            Ok(_) => prop_assert!(false, "decoded bytes with a bad one"),
            Err(rosterd::fetch::FetchError::Encoding { line, column, .. }) => {
                let lines: Vec<&str> = prefix.split('\n').collect();
                prop_assert_eq!(line, lines.len());
                prop_assert_eq!(column, lines.last().unwrap().chars().count() + 1);
            }
            Err(e) => prop_assert!(false, "{}", e),
        }
    }
}

// --- SCIM answers ---------------------------------------------------------------------------

fn scim_group() -> impl Strategy<Value = Value> {
    (
        prop_oneof![json_value(0), "[a-z0-9-]{0,8}".prop_map(Value::String)],
        json_value(0),
        prop::option::of(prop::collection::vec(
            prop_oneof![
                3 => ("\\PC{0,8}", json_value(0)).prop_map(|(v, d)| json!({"value": v, "display": d})),
                1 => json_value(1),
            ],
            0..4,
        )),
    )
        .prop_map(|(id, name, members)| {
            let mut g = json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "id": id, "displayName": name});
            if let Some(m) = members {
                g["members"] = Value::Array(m);
            }
            g
        })
}

proptest! {
    #![proptest_config(config())]

    /// Groups, list responses and errors as a target might send them: decoded or refused,
    /// never a panic; an id that decodes and passes the check is one the store can hold.
    #[test]
    fn scim_answer_fuzz(
        group in scim_group(),
        total in json_value(0),
        resources in prop::collection::vec(prop_oneof![scim_group(), json_value(2)], 0..4),
        user in json_value(3),
        path in prop::sample::select(vec!["userName", "emails.value", "emails[type eq \"work\"].value", "name.givenName", "emails[", "a.b.c"]),
    ) {
        use rosterd::scim::wire::{is_valid_id, ErrorResponse, Group, ListResponse};
        if let Ok(g) = serde_json::from_value::<Group>(group.clone()) {
            if let Some(id) = g.id.as_deref().filter(|id| is_valid_id(id)) {
                prop_assert!(!id.is_empty() && !id.contains('\0'));
            }
        }
        let listed = json!({"totalResults": total, "Resources": resources});
        let _ = serde_json::from_value::<ListResponse<Group>>(listed.clone());
        let _ = serde_json::from_value::<ListResponse<Value>>(listed);
        let _ = serde_json::from_value::<ErrorResponse>(group);
        let _ = rosterd::scim::wire::user_values(&user, path);
    }
}
