//! Chains of HR changes to the sample export, for the tests that compare incremental work
//! with a full one.

use chrono::{Duration, NaiveDate};

/// The date the changes are made around (the sample's evaluation date).
pub fn as_of() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 11, 22).unwrap()
}

/// The sample organisation's schema and rules, as the repository's `rosterd.yaml` names them.
pub fn sample_rules() -> (
    std::sync::Arc<rosterd::directory::Schema>,
    rosterd::rules::RuleSet,
) {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let config = rosterd::config::Config::load(&root.join("rosterd.yaml")).unwrap();
    let schema = std::sync::Arc::new(rosterd::directory::Schema::from_config(&config.directory));
    let ctx = rosterd::rules::Context::from_config(&config, &schema);
    let rules = rosterd::rules::load(&config.rules.dir, &ctx).unwrap();
    (schema, rules)
}

/// `rows` (the header first) loaded as a CSV export.
pub fn load(
    schema: &std::sync::Arc<rosterd::directory::Schema>,
    rows: &[Vec<String>],
) -> rosterd::directory::Snapshot {
    let text = csv_text(rows);
    let format = rosterd::config::SourceFormat::Csv;
    let schema = std::sync::Arc::clone(schema);
    rosterd::directory::load_from_str(&text, format, "workers.csv", schema, 100.0)
        .unwrap()
        .0
}

/// The sample export's rows, the header first.
pub fn sample_rows() -> Vec<Vec<String>> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/sample/workers.csv");
    let text = std::fs::read_to_string(path).unwrap();
    csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(text.as_bytes())
        .records()
        .map(|r| r.unwrap().iter().map(str::to_string).collect())
        .collect()
}

/// Rows as CSV text.
pub fn csv_text(rows: &[Vec<String>]) -> String {
    let mut out = csv::Writer::from_writer(Vec::new());
    for row in rows {
        out.write_record(row).unwrap();
    }
    String::from_utf8(out.into_inner().unwrap()).unwrap()
}

/// One change of the kind an HR export makes between two runs, to the sample export's
/// rows (the header first), said in words.
pub fn change(
    rows: &mut Vec<Vec<String>>,
    gone: &mut Vec<Vec<String>>,
    rng: &mut impl rand::Rng,
) -> String {
    let col = |name: &str| -> usize {
        let header = [
            "Employee_ID",
            "Legal_First_Name",
            "Legal_Last_Name",
            "Work_Email",
            "Manager_Employee_ID",
            "Division",
            "Department",
            "Cost_Center",
            "Country_ISO",
            "Location",
            "Business_Title",
            "Management_Level",
            "Job_Level",
            "Worker_Type",
            "Worker_Status",
            "Hire_Date",
            "Termination_Date",
            "FTE",
            "Tags",
            "Remote_Worker",
        ];
        header.iter().position(|h| *h == name).unwrap()
    };
    let n = rows.len();
    let w = rng.random_range(1..n);
    let other = rows[rng.random_range(1..n)].clone();
    let day = |d: i64| (as_of() + Duration::days(d)).to_string();
    match rng.random_range(0..10) {
        0 => {
            rows[w][col("Department")] = other[col("Department")].clone();
            format!("{} moves to {}", rows[w][0], rows[w][col("Department")])
        }
        1 => {
            // A manager change, to a worker with reports or to anyone (even a leaf).
            rows[w][col("Manager_Employee_ID")] = other[0].clone();
            format!("{} now reports to {}", rows[w][0], other[0])
        }
        2 => {
            rows[w][col("Worker_Status")] = "Terminated".into();
            rows[w][col("Termination_Date")] = day(-3);
            format!("{} is terminated", rows[w][0])
        }
        3 => {
            let t = rows
                .iter()
                .position(|r| r[col("Worker_Status")] == "Terminated")
                .unwrap_or(w);
            rows[t][col("Worker_Status")] = "Active".into();
            rows[t][col("Termination_Date")] = String::new();
            rows[t][col("Hire_Date")] = day(-1);
            format!("{} is rehired", rows[t][0])
        }
        4 => {
            // A manager's row is the interesting one to lose: their reports' chain breaks.
            let key = rows[w][col("Manager_Employee_ID")].clone();
            let m = rows
                .iter()
                .position(|r| r[0] == key)
                .filter(|&m| m > 0)
                .unwrap_or(w);
            let row = rows.remove(m);
            let key = row[0].clone();
            gone.push(row);
            format!("{key}'s row is deleted")
        }
        5 if !gone.is_empty() => {
            let row = gone.remove(0);
            let key = row[0].clone();
            let at = rng.random_range(1..=rows.len());
            rows.insert(at, row);
            format!("{key}'s row is back, at row {at}")
        }
        6 => {
            let c = rng.random_range(1..20);
            rows[w][c] = String::new();
            format!("{}'s {} is blanked", rows[w][0], rows[0][c])
        }
        7 => {
            // Dates that cross the evaluation date, both ways.
            let d = rng.random_range(-1..=1);
            if rng.random_bool(0.5) {
                rows[w][col("Hire_Date")] = day(d);
            } else {
                rows[w][col("Termination_Date")] = day(d);
            }
            format!("{}'s dates move to {}", rows[w][0], day(d))
        }
        8 => {
            rows[w][col("Work_Email")] = other[col("Work_Email")].to_uppercase();
            format!("{} takes {}'s email", rows[w][0], other[0])
        }
        _ => {
            let v = rng.random_range(1..n);
            rows.swap(w, v);
            format!("rows {w} and {v} swap places")
        }
    }
}
