//! Runs the rule tests (`rules::rule_tests`): each test's made-up workers are a snapshot of
//! their own, evaluated under the rules as of the test's date, and every expectation is
//! compared with what the rules made of them. A failed expectation carries the explain tree
//! of the worker and group, the same one `rosterd explain` prints.

use std::sync::Arc;

use chrono::NaiveDate;
use serde::Serialize;

use super::{evaluate, explain, reason, resolve, Explanation};
use crate::directory::{Schema, SnapshotBuilder};
use crate::rules::rule_tests::{Expectation, Reason, RuleTest};
use crate::rules::RuleSet;

/// One test's result.
#[derive(Debug, Clone, Serialize)]
pub struct TestResult {
    pub name: String,
    /// `file:line:col` of the test's name.
    pub location: String,
    pub as_of: NaiveDate,
    pub expectations: usize,
    pub failures: Vec<Failure>,
}

impl TestResult {
    pub fn passed(&self) -> bool {
        self.failures.is_empty()
    }
}

/// An expectation the rules did not meet.
#[derive(Debug, Clone, Serialize)]
pub struct Failure {
    /// The expectation in words: `T1 in engineering (reason: rule)`.
    pub expected: String,
    /// What the rules made of it: `not a member (no_match)`.
    pub got: String,
    /// Where the expectation is written.
    pub location: String,
    pub explanation: Explanation,
}

/// Runs every test; `as_of` is the date of tests that give none.
pub fn run(rules: &RuleSet, schema: &Arc<Schema>, as_of: NaiveDate) -> Vec<TestResult> {
    rules
        .tests()
        .iter()
        .map(|t| run_one(rules, schema, t, as_of))
        .collect()
}

fn run_one(rules: &RuleSet, schema: &Arc<Schema>, test: &RuleTest, as_of: NaiveDate) -> TestResult {
    let as_of = test.as_of.unwrap_or(as_of);
    let mut builder = SnapshotBuilder::new(Arc::clone(schema));
    for row in &test.workers {
        builder.push(row.clone());
    }
    let snapshot = builder.finish();
    let evaluation = evaluate(&snapshot, rules, as_of);
    let sources = rules.sources();
    let mut failures = Vec::new();
    for e in &test.expect {
        // Checking made sure the worker is the test's own.
        let Some(w) = snapshot.by_key(&e.worker) else {
            continue;
        };
        let member = evaluation.is_member(e.group, w);
        let why = if member {
            match reason::joined(rules, &evaluation, e.group, w) {
                "include" => Reason::Include,
                "member" => Reason::Member,
                _ => Reason::Rule,
            }
        } else {
            match reason::left(&snapshot, rules, &evaluation, e.group, Some(w)) {
                "not_eligible" => Reason::NotEligible,
                "exclude" => Reason::Excluded,
                "expired" => Reason::Expired,
                _ => Reason::NoMatch,
            }
        };
        let ticket = (why == Reason::Include)
            .then(|| {
                rules.group(e.group).include.iter().find(|entry| {
                    entry.active_on(as_of) && resolve(&entry.who, &snapshot) == Some(w)
                })
            })
            .flatten()
            .and_then(|entry| entry.ticket.clone());
        let met = member == e.member
            && e.reason.is_none_or(|r| r == why)
            && e.ticket.as_ref().is_none_or(|t| ticket.as_ref() == Some(t));
        if met {
            continue;
        }
        let got = match (member, &ticket) {
            (true, Some(t)) => format!("a member ({}, ticket {t})", why.as_str()),
            (true, None) => format!("a member ({})", why.as_str()),
            (false, _) => format!("not a member ({})", why.as_str()),
        };
        failures.push(Failure {
            expected: expected(rules, e),
            got,
            location: sources.location(e.span),
            explanation: explain(&snapshot, rules, &evaluation, w, e.group),
        });
    }
    TestResult {
        name: test.name.clone(),
        location: sources.location(test.span),
        as_of,
        expectations: test.expect.len(),
        failures,
    }
}

fn expected(rules: &RuleSet, e: &Expectation) -> String {
    let mut s = format!(
        "{} {} {}",
        e.worker,
        if e.member { "in" } else { "not in" },
        rules.group(e.group).name
    );
    match (e.reason, &e.ticket) {
        (Some(r), Some(t)) => s.push_str(&format!(" ({}, ticket {t})", r.as_str())),
        (Some(r), None) => s.push_str(&format!(" ({})", r.as_str())),
        _ => {}
    }
    s
}
