//! Warnings that need the directory and an evaluation: entries that name nobody, have expired
//! or will soon, name ineligible workers or change nothing; groups that match nobody.

use chrono::NaiveDate;

use super::{eval, resolve, Evaluation};
use crate::directory::Snapshot;
use crate::rules::{CExpr, Diagnostic, Diagnostics, GroupKind, Op, PersonEntry, RuleSet};

/// How far ahead an entry's expiry is announced.
pub const EXPIRY_NOTICE_DAYS: i64 = 14;

pub fn lint(snapshot: &Snapshot, rules: &RuleSet, evaluation: &Evaluation) -> Diagnostics {
    let mut out = Diagnostics::default();
    let as_of = evaluation.as_of;
    let ctx = evaluation.context(snapshot);
    for (g, group) in rules.groups().iter().enumerate() {
        let lists: [(&str, &[PersonEntry]); 3] = [
            ("include", &group.include),
            ("exclude", &group.exclude),
            ("members", &group.members),
        ];
        for (list, entries) in lists {
            for entry in entries {
                if let Some(d) = entry_warning(entry, list, snapshot, evaluation, as_of) {
                    out.push(d);
                    continue;
                }
                if list == "exclude" {
                    let w = resolve(&entry.who, snapshot);
                    let rule_matches = match (w, &group.rule) {
                        (Some(w), Some(rule)) => eval::truth(rule, w, &ctx),
                        _ => true,
                    };
                    let included = w.is_some_and(|w| {
                        group
                            .include
                            .iter()
                            .any(|i| i.active_on(as_of) && resolve(&i.who, snapshot) == Some(w))
                    });
                    if !rule_matches && !included {
                        out.push(
                            Diagnostic::warning(entry.span, format!("exclude entry `{}` has no effect: the rule does not match the worker anyway", entry.who))
                                .with_help("remove the entry, or keep it on purpose in case the worker's attributes change"),
                        );
                    }
                }
            }
        }
        if evaluation.members(g).is_clear() {
            let why = match group.kind {
                GroupKind::Manual => "no active entry names an eligible worker",
                _ => "the rule matches no eligible worker",
            };
            out.push(Diagnostic::warning(
                group.span,
                format!("group `{}` has no members: {why}", group.name),
            ));
        }
        if let Some(rule) = &group.rule {
            unknown_managers(rule, snapshot, &mut out);
        }
    }
    out
}

fn entry_warning(
    entry: &PersonEntry,
    list: &str,
    snapshot: &Snapshot,
    evaluation: &Evaluation,
    as_of: NaiveDate,
) -> Option<Diagnostic> {
    if let Some(expires) = entry.expires {
        if expires < as_of {
            return Some(
                Diagnostic::warning(
                    entry.span,
                    format!(
                        "{list} entry `{}` expired on {expires} and is ignored",
                        entry.who
                    ),
                )
                .with_help("remove the entry, or renew it with a new ticket and date"),
            );
        }
    }
    let Some(w) = resolve(&entry.who, snapshot) else {
        return Some(
            Diagnostic::warning(entry.span, format!("{list} entry `{}` matches no worker in the export", entry.who))
                .with_help("check the spelling; emails match ignoring case, and an email shared by several workers matches none"),
        );
    };
    if !evaluation.eligible.contains(w) {
        return Some(Diagnostic::warning(
            entry.span,
            format!(
                "{list} entry `{}` names {}, who is not eligible: the entry has no effect",
                entry.who,
                snapshot.label(w)
            ),
        ));
    }
    let expires = entry.expires?;
    let days = (expires - as_of).num_days();
    (days <= EXPIRY_NOTICE_DAYS).then(|| {
        let when = match days {
            0 => "today".to_string(),
            1 => "tomorrow".to_string(),
            n => format!("in {n} days"),
        };
        Diagnostic::warning(
            entry.span,
            format!("{list} entry `{}` expires on {expires} ({when})", entry.who),
        )
        .with_help("renew it before then if the access is still needed")
    })
}

/// `reports_to("KEY")` with a key no worker has is always false, which is rarely meant.
fn unknown_managers(rule: &CExpr, snapshot: &Snapshot, out: &mut Diagnostics) {
    let mut stack = vec![rule];
    while let Some(e) = stack.pop() {
        if let Op::ReportsTo(key) = &e.op {
            if snapshot.by_key(key).is_none() {
                out.push(Diagnostic::warning(
                    e.span,
                    format!(
                        "`reports_to(\"{key}\")` names no worker in the export: it is always false"
                    ),
                ));
            }
        }
        stack.extend(e.children());
    }
}
