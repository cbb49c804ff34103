//! Loading HR exports: every bad value named by row and column, rejected rows, manager
//! problems, the bad-row threshold, and Workday JSON.

#![allow(clippy::unwrap_used, reason = "a failed unwrap is a failed test")]

mod common;

use std::sync::Arc;

use rosterd::config::SourceFormat;
use rosterd::directory::{
    self, AttrType, DirectoryError, IssueKind, LoadMemo, Schema, Snapshot, Value,
};

fn schema() -> Arc<Schema> {
    use AttrType::*;
    let attrs = [
        ("id", String),
        ("email", String),
        ("manager", String),
        ("level", Number),
        ("hire_date", Date),
        ("remote", Bool),
        ("tags", List),
    ];
    common::schema_of(&attrs, "id", "email", "manager")
}

fn bad_export() -> String {
    std::fs::read_to_string("tests/fixtures/bad-export/workers.csv").unwrap()
}

#[test]
fn every_problem_is_reported_with_its_row_and_column() {
    let (snap, report) = directory::load_from_str(
        &bad_export(),
        SourceFormat::Csv,
        "workers.csv",
        schema(),
        100.0,
    )
    .unwrap();
    let lines: Vec<String> = report.issues.iter().map(|i| i.to_string()).collect();
    let expected = [
        "line 3: column `level`: bad number `five`: value treated as missing",
        "line 3: column `hire_date`: bad date `2020-13-01`: expected YYYY-MM-DD: value treated as missing",
        "line 3: column `remote`: bad bool `maybe`: expected true/false, yes/no, y/n or 1/0: value treated as missing",
        "line 4: column `id`: empty key: row rejected",
        "line 5: column `id`: duplicate key `A1`, first seen at line 2: row rejected",
        "line 10: has 4 fields where the header has 7: row rejected",
        "line 8: column `manager`: manager `ZZ` is not a worker in this export",
        "line 9: column `manager`: names the worker as their own manager: treated as no manager",
        "line 6: column `manager`: manager cycle: A3 -> A4 -> A3",
    ];
    assert_eq!(lines, expected);
    assert_eq!(report.rows, 9);
    assert_eq!(snap.len(), 6, "A1, A2, A3, A4, A5, A6");
    let a2 = snap.by_key("A2").unwrap();
    assert_eq!(snap.get(snap.schema().lookup("level").unwrap(), a2), None);
    let a1 = snap.by_key("A1").unwrap();
    assert_eq!(
        snap.email(a1),
        Some("a1@example.com"),
        "the first of duplicate keys is kept"
    );
    assert_eq!(
        snap.get(snap.schema().lookup("tags").unwrap(), a1),
        Some(&Value::List(vec!["x".into(), "y".into()]))
    );
    assert_eq!(snap.manager(snap.by_key("A6").unwrap()), None);
    assert_eq!(report.count(IssueKind::ManagerCycle), 1);
}

#[test]
fn too_many_bad_rows_fail_the_load_with_the_numbers() {
    let err = directory::load_from_str(
        &bad_export(),
        SourceFormat::Csv,
        "workers.csv",
        schema(),
        20.0,
    )
    .unwrap_err();
    let DirectoryError::TooManyBadRows { bad, rows, .. } = &err else {
        panic!("{err}")
    };
    assert_eq!((*bad, *rows), (4, 9));
    let text = err.to_string();
    assert!(
        text.starts_with(
            "workers.csv: 4 of 9 rows are bad or rejected (44.4%), more than the allowed 20%"
        ),
        "{text}"
    );
    assert!(
        text.contains("line 3: column `level`: bad number `five`"),
        "{text}"
    );
}

#[test]
fn missing_columns_list_what_the_file_has() {
    let err = directory::load_from_str(
        "id,mail\nA,a@x\n",
        SourceFormat::Csv,
        "w.csv",
        schema(),
        5.0,
    )
    .unwrap_err();
    let text = err.to_string();
    assert!(
        text.starts_with(
            "w.csv: missing columns `email`, `manager`, `level`, `hire_date`, `remote`, `tags`"
        ),
        "{text}"
    );
    assert!(
        text.ends_with("help: the file has the columns: `id`, `mail`"),
        "{text}"
    );
}

#[test]
fn unparsable_csv_names_the_line() {
    let err = directory::load_from_str(
        "id,email\n\"A,a@x\n",
        SourceFormat::Csv,
        "w.csv",
        schema(),
        5.0,
    );
    assert!(err.is_err());
}

#[test]
fn workday_json_with_lists_numbers_and_workday_dates() {
    let json = r#"{"Report_Entry": [
        {"id": "A1", "email": "A1@Example.com", "level": 5, "hire_date": "2021-03-04-08:00", "remote": true, "tags": ["x", "y"]},
        {"id": "A2", "email": "a2@example.com", "manager": "A1", "level": "6", "hire_date": "2022-01-01T09:00:00Z", "tags": "p;q"},
        {"id": "A3", "email": "a3@example.com", "level": {"value": 1}}
    ]}"#;
    let (snap, report) = directory::load_from_str(
        json,
        SourceFormat::WorkdayJson,
        "report.json",
        schema(),
        50.0,
    )
    .unwrap();
    assert_eq!(snap.len(), 3);
    assert_eq!(report.issues.len(), 1, "{report}");
    assert_eq!(report.issues[0].to_string(), "Report_Entry[2]: column `level`: expected number, found an object: value treated as missing");
    let s = snap.schema();
    let a2 = snap.by_key("A2").unwrap();
    assert_eq!(
        snap.get(s.lookup("level").unwrap(), a2),
        Some(&Value::Num(6.0))
    );
    assert_eq!(
        snap.get(s.lookup("tags").unwrap(), a2),
        Some(&Value::List(vec!["p".into(), "q".into()]))
    );
    assert_eq!(
        snap.get(s.lookup("hire_date").unwrap(), 0)
            .map(|v| v.to_string()),
        Some("2021-03-04".into())
    );
    assert_eq!(snap.by_email("a1@example.COM"), Some(0));
    assert_eq!(snap.manager(a2), Some(0));
}

#[test]
fn json_that_is_not_a_workday_report_is_an_error_with_its_place() {
    let err = directory::load_from_str(
        "{\"Report_Entry\": [\n{]}",
        SourceFormat::WorkdayJson,
        "r.json",
        schema(),
        5.0,
    )
    .unwrap_err();
    assert!(
        err.to_string()
            .starts_with("r.json: line 2 column 2: invalid JSON"),
        "{err}"
    );
    let err =
        directory::load_from_str("[1, 2]", SourceFormat::WorkdayJson, "r.json", schema(), 5.0)
            .unwrap_err();
    assert!(err.to_string().contains("`Report_Entry`"), "{err}");
}

#[test]
fn a_byte_order_mark_and_blank_values_are_handled() {
    let csv = "\u{feff}id,email,manager,level,hire_date,remote,tags\nA1, a1@x ,,  ,,,; ;\n";
    let (snap, report) =
        directory::load_from_str(csv, SourceFormat::Csv, "w.csv", schema(), 5.0).unwrap();
    assert!(report.issues.is_empty(), "{report}");
    assert_eq!(snap.email(0), Some("a1@x"));
    assert_eq!(
        snap.get(snap.schema().lookup("tags").unwrap(), 0),
        None,
        "an empty list is missing"
    );
}

#[test]
fn shared_emails_are_reported_and_match_nobody() {
    let csv = "id,email,manager,level,hire_date,remote,tags\nA1,same@x,,,,,\nA2,SAME@x,,,,,\n";
    let (snap, report) =
        directory::load_from_str(csv, SourceFormat::Csv, "w.csv", schema(), 5.0).unwrap();
    assert_eq!(report.count(IssueKind::DuplicateEmail), 1);
    assert_eq!(snap.by_email("same@x"), None);
}

/// An export of many thousand rows is read and typed in batches, its columns in two halves at
/// once: rows, values and issues come out as if typed one by one, across batches.
#[test]
fn a_large_export_loads_as_if_row_by_row() {
    use rosterd::directory::generate;
    let workers = generate::generate(10_000, 3);
    let mut csv = Vec::new();
    generate::write_csv(&workers, &mut csv).unwrap();
    let mut lines: Vec<String> = String::from_utf8(csv)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    // Line 9,001 (a later batch) gets a bad date; a copy of line 12 and a short row are added.
    let hire = &workers[8999].hire_date.to_string();
    assert!(lines[9000].contains(hire.as_str()));
    lines[9000] = lines[9000].replacen(hire.as_str(), "2024-02-31", 1);
    lines.push(lines[11].clone());
    lines.push("only,three,fields".into());
    let text = lines.join("\n") + "\n";
    let schema = Arc::new(generate::schema());
    let (snap, report) =
        directory::load_from_str(&text, SourceFormat::Csv, "w.csv", schema, 5.0).unwrap();
    let issues: Vec<String> = report.issues.iter().map(|i| i.to_string()).collect();
    assert_eq!(
        issues,
        [
            "line 9001: column `Hire_Date`: bad date `2024-02-31`: expected YYYY-MM-DD: value treated as missing".to_string(),
            format!(
                "line 10002: column `Employee_ID`: duplicate key `{}`, first seen at line 12: row rejected",
                workers[10].id
            ),
            "line 10003: has 3 fields where the header has 20: row rejected".to_string(),
        ]
    );
    assert_eq!(report.rows, 10_002);
    assert_eq!(snap.len(), 10_000);
    let attr = |name: &str| snap.schema().lookup(name).unwrap();
    let (department, hired) = (attr("department"), attr("hire_date"));
    for (w, worker) in workers.iter().enumerate() {
        assert_eq!(snap.key(w), worker.id);
        assert_eq!(
            snap.get(department, w),
            Some(&Value::Str(worker.department.clone()))
        );
        assert_eq!(snap.email(w), Some(worker.email.as_str()), "{w}");
        let date = (w != 8999).then_some(Value::Date(worker.hire_date));
        assert_eq!(snap.get(hired, w), date.as_ref(), "{w}");
    }
}

/// Rows as CSV text, rows of any length (a longer one is a malformed row).
fn rows_text(rows: &[Vec<String>]) -> String {
    let mut out = csv::WriterBuilder::new()
        .flexible(true)
        .from_writer(Vec::new());
    for row in rows {
        out.write_record(row).unwrap();
    }
    String::from_utf8(out.into_inner().unwrap()).unwrap()
}

/// A change that makes a row bad, or mends one, said in words.
fn spoil(rows: &mut Vec<Vec<String>>, rng: &mut impl rand::Rng) -> String {
    let w = rng.random_range(1..rows.len());
    let key = rows[w][0].clone();
    match rng.random_range(0..6) {
        0 => {
            rows[w][12] = "five".into();
            format!("{key}'s job level is bad")
        }
        1 => {
            rows[w][15] = "2026-02-30".into();
            format!("{key}'s hire date is bad")
        }
        2 => {
            let copy = rows[rng.random_range(1..rows.len())].clone();
            rows.insert(w, copy);
            format!("a copy of a row is at row {w}")
        }
        3 => {
            // One field too many: rejected (a short row would be too, but the other
            // changes index every field).
            let mut long = rows[w].clone();
            long.push("extra".into());
            rows.insert(w, long);
            format!("a long row is at row {w}")
        }
        4 => {
            rows[w][0] = format!("  {}  ", key.trim());
            format!("{key}'s key is padded")
        }
        _ => {
            rows[w][6] = "R&D\0".into();
            format!("{key}'s department holds a NUL")
        }
    }
}

/// A load that goes on from the snapshot of the last one (as the daemon's runs do: only the
/// rows that changed are typed) gives what a load from nothing gives, along a chain of HR
/// changes and bad rows: the same workers, values, row digests and issues (a bad value of a
/// row that did not change is reported again); and the earlier snapshot keeps its values.
#[test]
fn a_load_from_the_last_one_is_a_load_from_nothing() {
    use rand::SeedableRng as _;
    let (schema, _) = common::hr::sample_rules();
    let load = |text: &str, earlier: Option<(&mut Snapshot, LoadMemo)>| {
        let schema = Arc::clone(&schema);
        directory::load_from(
            text,
            SourceFormat::Csv,
            "workers.csv",
            schema,
            100.0,
            earlier,
        )
        .unwrap()
    };
    let mut rows = common::hr::sample_rows();
    let (mut gone, mut history) = (Vec::new(), Vec::new());
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(20261207);
    let mut text = rows_text(&rows);
    let mut last = load(&text, None);
    let (mut reused, mut reported_again) = (0, 0);
    for step in 0..40 {
        for _ in 0..rand::Rng::random_range(&mut rng, 1..=4) {
            let what = if rand::Rng::random_bool(&mut rng, 0.3) {
                spoil(&mut rows, &mut rng)
            } else {
                common::hr::change(&mut rows, &mut gone, &mut rng)
            };
            history.push(format!("step {step}: {what}"));
        }
        let earlier_text = std::mem::replace(&mut text, rows_text(&rows));
        let earlier = load(&earlier_text, None).snapshot;
        let fresh = load(&text, None);
        let again = load(&text, Some((&mut last.snapshot, last.memo)));
        let said = history.join("\n");
        assert_eq!(
            again.snapshot.differences(&fresh.snapshot),
            [""; 0],
            "{said}"
        );
        assert_eq!(again.report.issues, fresh.report.issues, "{said}");
        assert_eq!(again.report.rows, fresh.report.rows, "{said}");
        assert_eq!(last.snapshot.differences(&earlier), [""; 0], "{said}");
        reused += again.memo.reused();
        if again.memo.reused() > 0 && fresh.report.count(IssueKind::BadValue) > 0 {
            reported_again += 1;
        }
        last = again;
    }
    assert!(
        reused > 40 * 100,
        "{reused} rows taken from the earlier snapshot"
    );
    assert!(reported_again >= 10, "{reported_again} steps");
    for kind in [
        "is bad",
        "a copy",
        "a long row",
        "is padded",
        "a NUL",
        "moves to",
    ] {
        assert!(
            history.iter().any(|h| h.contains(kind)),
            "the chain never had `{kind}`"
        );
    }
}

/// A load from an earlier snapshot that fails (too many bad rows) leaves that snapshot as it
/// was; a snapshot's differences from another name the worker and the attribute.
#[test]
fn a_failed_load_from_the_last_one_leaves_it_as_it_was() {
    use rosterd::directory::generate;
    let workers = generate::generate(10_000, 5);
    let mut csv = Vec::new();
    generate::write_csv(&workers, &mut csv).unwrap();
    let text = String::from_utf8(csv).unwrap();
    let schema = Arc::new(generate::schema());
    let load = |text: &str, max_bad, earlier: Option<(&mut Snapshot, LoadMemo)>| {
        let schema = Arc::clone(&schema);
        directory::load_from(text, SourceFormat::Csv, "w.csv", schema, max_bad, earlier)
    };
    let mut last = load(&text, 5.0, None).unwrap();
    let copy = load(&text, 5.0, None).unwrap().snapshot;
    // Line 5,001 (a later batch) is bad, and the bad rows may be none.
    let mut lines: Vec<&str> = text.lines().collect();
    let bad = lines[5000].replacen(&workers[4999].department, "Moved", 1);
    let bad = bad.replacen(&workers[4999].hire_date.to_string(), "2025-13-01", 1);
    lines[5000] = &bad;
    let changed = lines.join("\n") + "\n";
    let err = load(&changed, 0.0, Some((&mut last.snapshot, last.memo))).unwrap_err();
    assert!(
        matches!(err, DirectoryError::TooManyBadRows { .. }),
        "{err}"
    );
    assert_eq!(last.snapshot.differences(&copy), [""; 0]);
    let moved = load(&changed, 5.0, None).unwrap().snapshot;
    assert_eq!(
        moved.differences(&copy),
        [
            format!("worker 4999 (`{}`): `department`", workers[4999].id),
            format!("worker 4999 (`{}`): `hire_date`", workers[4999].id),
            "the rows' digests".to_string(),
        ]
    );
    // From the same earlier snapshot, what a load from nothing gives: 9,999 rows not typed.
    let mut last = load(&text, 5.0, None).unwrap();
    let again = load(&changed, 5.0, Some((&mut last.snapshot, last.memo))).unwrap();
    assert_eq!(again.memo.reused(), 9_999);
    assert_eq!(again.snapshot.differences(&moved), [""; 0]);
    assert_eq!(last.snapshot.differences(&copy), [""; 0]);
}
