//! Rule tests: made-up workers and what the rules must make of them, written beside the
//! rules (a `tests:` list in any rule file) and checked like them. `rosterd test` runs them
//! (`engine::rule_tests`).
//!
//! ```yaml
//! tests:
//!   - name: an engineer joins engineering, a contractor does not
//!     as_of: 2026-11-22                      # optional; else today or --as-of
//!     workers:
//!       - { id: T1, email: t1@example.com, division: Engineering, status: Active }
//!       - { id: T2, email: t2@example.com, division: Engineering, status: Active, worker_type: Contractor }
//!     expect:
//!       - { worker: T1, in: engineering, reason: rule }
//!       - { worker: T2, not_in: engineering }
//! ```

use std::collections::{BTreeMap, HashMap};

use chrono::NaiveDate;
use serde::Serialize;

use super::diagnostic::{Diagnostic, Diagnostics};
use super::load::{ExpectDef, FixtureDef, TestDef};
use super::source::Span;
use super::yaml::{Node, NodeKind};
use super::GroupId;
use crate::directory::{parse_text, AttrType, Attribute, Schema, Value};

/// A checked rule test.
#[derive(Debug, Clone)]
pub struct RuleTest {
    pub name: String,
    /// The test's `name` in its file.
    pub span: Span,
    pub as_of: Option<NaiveDate>,
    /// The made-up workers, as rows in schema order.
    pub workers: Vec<Vec<Option<Value>>>,
    pub expect: Vec<Expectation>,
}

#[derive(Debug, Clone)]
pub struct Expectation {
    /// The worker's key.
    pub worker: String,
    pub group: GroupId,
    pub member: bool,
    pub reason: Option<Reason>,
    /// With `reason: include`: the ticket of the entry that includes the worker.
    pub ticket: Option<String>,
    pub span: Span,
}

/// Why a worker is in a group, or is not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// In: the rule matches.
    Rule,
    /// In: a hybrid group's `include` entry.
    Include,
    /// In: a manual group's `members` entry.
    Member,
    /// Not in: an `exclude` entry.
    Excluded,
    /// Not in: the directory's eligibility expression is not true for them.
    NotEligible,
    /// Not in: the entry that named them has expired.
    Expired,
    /// Not in: the rule does not match, and no entry names them.
    NoMatch,
}

const IN_REASONS: &[&str] = &["rule", "include", "member"];
const NOT_IN_REASONS: &[&str] = &["excluded", "not_eligible", "expired", "no_match"];

impl Reason {
    fn parse(text: &str) -> Option<Reason> {
        Some(match text {
            "rule" => Reason::Rule,
            "include" => Reason::Include,
            "member" => Reason::Member,
            "excluded" => Reason::Excluded,
            "not_eligible" => Reason::NotEligible,
            "expired" => Reason::Expired,
            "no_match" => Reason::NoMatch,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Rule => "rule",
            Reason::Include => "include",
            Reason::Member => "member",
            Reason::Excluded => "excluded",
            Reason::NotEligible => "not_eligible",
            Reason::Expired => "expired",
            Reason::NoMatch => "no_match",
        }
    }
}

/// Checks the tests against the groups and the schema; every problem is a diagnostic with
/// its place.
pub(super) fn check(
    defs: Vec<TestDef>,
    groups: &HashMap<String, GroupId>,
    schema: &Schema,
    diags: &mut Diagnostics,
) -> Vec<RuleTest> {
    let mut names: HashMap<String, Span> = HashMap::new();
    let mut out = Vec::new();
    for def in defs {
        if let Some(first) = names.get(&def.name) {
            diags.push(
                Diagnostic::error(def.span, format!("duplicate test name `{}`", def.name))
                    .with_note(*first, "first defined"),
            );
            continue;
        }
        names.insert(def.name.clone(), def.span);
        let mut workers = Vec::new();
        let mut keys: BTreeMap<String, Span> = BTreeMap::new();
        for fixture in &def.workers {
            let Some((key, row)) = worker(fixture, schema, diags) else {
                continue;
            };
            if let Some(first) = keys.get(&key.0) {
                diags.push(
                    Diagnostic::error(key.1, format!("duplicate worker `{}` in this test", key.0))
                        .with_note(*first, "first given"),
                );
                continue;
            }
            // A worker with a bad value still has its key: one mistake, one error.
            keys.insert(key.0, key.1);
            workers.extend(row);
        }
        let expect = def
            .expect
            .iter()
            .filter_map(|e| expectation(e, &keys, groups, diags))
            .collect();
        out.push(RuleTest {
            name: def.name,
            span: def.span,
            as_of: def.as_of,
            workers,
            expect,
        });
    }
    out
}

/// A row of values in schema order.
type Row = Vec<Option<Value>>;

/// A made-up worker's key with the key's span, and its row when every value is good.
fn worker(
    fixture: &FixtureDef,
    schema: &Schema,
    diags: &mut Diagnostics,
) -> Option<((String, Span), Option<Row>)> {
    let mut row: Row = vec![None; schema.attrs().len()];
    let mut ok = true;
    let mut key = None;
    for (name, span, node) in &fixture.values {
        let Some(attr) = schema.lookup(name) else {
            diags.push(
                Diagnostic::error(*span, format!("unknown attribute `{name}`"))
                    .with_suggestion(name, schema.names())
                    .with_label("the config's `directory.attributes` lists the attributes"),
            );
            ok = false;
            continue;
        };
        match value(node, schema.attr(attr)) {
            Ok(v) => {
                if attr == schema.key() {
                    if let Some(Value::Str(k)) = &v {
                        key = Some((k.clone(), node.span));
                    }
                }
                row[attr] = v;
            }
            Err(message) => {
                diags.push(Diagnostic::error(node.span, message));
                ok = false;
            }
        }
    }
    let Some(key) = key else {
        let name = &schema.attr(schema.key()).name;
        diags.push(
            Diagnostic::error(
                fixture.span,
                format!("a test worker needs `{name}`, its key"),
            )
            .with_help("expectations name workers by it"),
        );
        return None;
    };
    Some((key, ok.then_some(row)))
}

/// A value as the export's loader types it (`directory::parse_text`), dates as
/// `YYYY-MM-DD`; a list may also be a YAML list. `Ok(None)` for null or empty.
fn value(node: &Node, attr: &Attribute) -> Result<Option<Value>, String> {
    let scalar = match &node.kind {
        NodeKind::Scalar(_) if node.is_null() => return Ok(None),
        NodeKind::Scalar(s) => &s.value,
        NodeKind::Seq(items) if attr.ty == AttrType::List => {
            let items = items
                .iter()
                .map(|i| match &i.kind {
                    NodeKind::Scalar(s) => Ok(s.value.clone()),
                    _ => Err(format!(
                        "expected a list of strings, found {} in it",
                        i.describe()
                    )),
                })
                .collect::<Result<_, _>>()?;
            return Ok(Some(Value::List(items)));
        }
        _ => {
            return Err(format!(
                "expected a {} value, found {}",
                attr.ty,
                node.describe()
            ))
        }
    };
    // A test writes dates one way, whatever format the export uses.
    let attr = Attribute {
        date_format: None,
        ..attr.clone()
    };
    parse_text(&attr, scalar).map_err(|e| {
        e.strip_suffix(": value treated as missing")
            .unwrap_or(&e)
            .to_string()
    })
}

fn expectation(
    e: &ExpectDef,
    keys: &BTreeMap<String, Span>,
    groups: &HashMap<String, GroupId>,
    diags: &mut Diagnostics,
) -> Option<Expectation> {
    let mut ok = true;
    if !keys.contains_key(&e.worker.0) {
        diags.push(
            Diagnostic::error(
                e.worker.1,
                format!("no worker `{}` in this test", e.worker.0),
            )
            .with_suggestion(&e.worker.0, keys.keys().map(String::as_str))
            .with_label("expectations name the test's own workers by key"),
        );
        ok = false;
    }
    let group = groups.get(&e.group.0).copied();
    if group.is_none() {
        diags.push(
            Diagnostic::error(e.group.1, format!("unknown group `{}`", e.group.0))
                .with_suggestion(&e.group.0, groups.keys().map(String::as_str)),
        );
        ok = false;
    }
    let allowed = if e.member { IN_REASONS } else { NOT_IN_REASONS };
    let reason = match &e.reason {
        None => None,
        Some((text, span)) => {
            match Reason::parse(text).filter(|_| allowed.contains(&text.as_str())) {
                Some(r) => Some(r),
                None => {
                    let which = if e.member { "`in`" } else { "`not_in`" };
                    diags.push(
                        Diagnostic::error(*span, format!("`{text}` is not a reason for {which}"))
                            .with_suggestion(text, allowed.iter().copied())
                            .with_label(format!("with {which}: {}", allowed.join(", "))),
                    );
                    ok = false;
                    None
                }
            }
        }
    };
    if e.ticket.is_some() && reason != Some(Reason::Include) {
        diags.push(
            Diagnostic::error(e.span, "`ticket` goes with `reason: include`")
                .with_help("the ticket is that of the include entry that names the worker"),
        );
        ok = false;
    }
    Some(Expectation {
        worker: e.worker.0.clone(),
        group: group?,
        member: e.member,
        reason,
        ticket: e.ticket.clone(),
        span: e.span,
    })
    .filter(|_| ok)
}
