//! `rosterd test`: runs the rule tests written beside the rules; exit 1 when one fails.

use std::fmt::Write as _;
use std::sync::Arc;

use super::{print, print_json, CliError, Format, Global, Workspace};
use crate::engine::rule_tests::{self, TestResult};

/// Runs the tests; whether all passed.
pub fn test(global: &Global) -> Result<bool, CliError> {
    let ws = Workspace::load_rules_only(global)?;
    let schema = Arc::new(crate::directory::Schema::from_config(&ws.config.directory));
    let started = std::time::Instant::now();
    let results = rule_tests::run(&ws.rules, &schema, global.as_of());
    let seconds = started.elapsed().as_secs_f64();
    let failed = results.iter().filter(|r| !r.passed()).count();
    match global.format {
        Format::Json => print_json(&serde_json::json!({
            "tests": results,
            "passed": results.len() - failed,
            "failed": failed,
        }))?,
        Format::Junit => print(&junit(&results, seconds))?,
        Format::Text | Format::Csv => print(&text(&results))?,
    }
    Ok(failed == 0)
}

fn text(results: &[TestResult]) -> String {
    let mut out = String::new();
    if results.is_empty() {
        out.push_str(
            "no rule tests: add a `tests:` list to a rule file (see the rules language reference)\n",
        );
        return out;
    }
    for r in results {
        let verdict = if r.passed() { "ok  " } else { "FAIL" };
        let _ = writeln!(out, "{verdict} {} ({})", r.name, r.location);
        for f in &r.failures {
            let _ = writeln!(out, "     expected: {}", f.expected);
            let _ = writeln!(out, "     got:      {}", f.got);
            let _ = writeln!(out, "     at {}", f.location);
            for line in f.explanation.render().lines() {
                let _ = writeln!(out, "       {line}");
            }
        }
    }
    let failed = results.iter().filter(|r| !r.passed()).count();
    let expectations: usize = results.iter().map(|r| r.expectations).sum();
    let _ = writeln!(
        out,
        "\n{}, {} failed ({})",
        crate::text::count(results.len() as u64, "test"),
        failed,
        crate::text::count(expectations as u64, "expectation")
    );
    out
}

/// JUnit XML, as CI systems read it: one suite, one test case per rule test, a `failure`
/// per failed test with its expectations and explain trees.
fn junit(results: &[TestResult], seconds: f64) -> String {
    let failed = results.iter().filter(|r| !r.passed()).count();
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        out,
        "<testsuites name=\"rosterd\" tests=\"{}\" failures=\"{failed}\" errors=\"0\" time=\"{seconds:.3}\">",
        results.len()
    );
    let _ = writeln!(
        out,
        "  <testsuite name=\"rosterd rule tests\" tests=\"{}\" failures=\"{failed}\" errors=\"0\" skipped=\"0\" time=\"{seconds:.3}\">",
        results.len()
    );
    for r in results {
        let file = r.location.split(':').next().unwrap_or("");
        let _ = write!(
            out,
            "    <testcase name=\"{}\" classname=\"{}\" file=\"{}\"",
            xml(&r.name),
            xml(file),
            xml(file)
        );
        if r.passed() {
            out.push_str("/>\n");
            continue;
        }
        out.push_str(">\n");
        let message: Vec<String> = r
            .failures
            .iter()
            .map(|f| format!("expected {}, got {}", f.expected, f.got))
            .collect();
        let mut body = String::new();
        for f in &r.failures {
            let _ = writeln!(
                body,
                "expected: {}\ngot: {}\nat {}",
                f.expected, f.got, f.location
            );
            body.push_str(&f.explanation.render());
            body.push('\n');
        }
        let _ = writeln!(
            out,
            "      <failure message=\"{}\" type=\"expectation\">{}</failure>",
            xml(&message.join("; ")),
            xml(&body)
        );
        out.push_str("    </testcase>\n");
    }
    out.push_str("  </testsuite>\n</testsuites>\n");
    out
}

/// Text as XML character data or an attribute value.
fn xml(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // Characters XML 1.0 cannot hold at all.
            c if (c as u32) < 0x20 && !matches!(c, '\t' | '\n' | '\r') => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}
