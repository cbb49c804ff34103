//! Incremental evaluation: when a new snapshot differs from the previous one in a few
//! workers, only the workers it can affect are evaluated again, and the previous evaluation
//! is updated in place. The result equals a full evaluation (a property test checks it).
//!
//! A worker's memberships depend on its own attributes, its eligibility, `is_manager`, its
//! manager chain (`reports_to`), its other memberships (`member_of`, evaluated in order) and
//! the person entries that name it. So the workers to evaluate again are the changed ones,
//! those whose `is_manager` flipped, everyone below a worker whose manager changed (in the old
//! and the new chart), and those whom an entry names differently now. They are evaluated by
//! the columnar evaluator over a snapshot of just them, with `is_manager`, `reports_to` and
//! the entries taken from the full snapshot.

use std::collections::BTreeSet;

use chrono::NaiveDate;
use fixedbitset::FixedBitSet;

use super::{columnar, entries_set, eval, full, managers_of, Evaluation};
use crate::directory::{Snapshot, WorkerId};
use crate::rules::{GroupKind, RuleSet};

/// `prev` evaluated `prev_snapshot` with `rules` on `as_of`; `snapshot` differs from it only
/// in the workers `changed` (same workers, same order). Anything else, such as workers who
/// joined or left, or another date, gets a full evaluation.
pub fn evaluate_incremental(
    prev: Evaluation,
    prev_snapshot: &Snapshot,
    snapshot: &Snapshot,
    changed: &[WorkerId],
    rules: &RuleSet,
    as_of: NaiveDate,
) -> Evaluation {
    let n = snapshot.len();
    let same_workers = prev.as_of == as_of
        && prev_snapshot.len() == n
        && prev.members.len() == rules.groups().len()
        && (0..n).all(|w| prev_snapshot.key(w) == snapshot.key(w));
    if !same_workers {
        return super::evaluate(snapshot, rules, as_of);
    }
    let mut prev = prev;
    let changed: Vec<WorkerId> = changed.iter().copied().filter(|&w| w < n).collect();
    // Eligibility of the changed workers.
    let none = FixedBitSet::with_capacity(n);
    if let Some(expr) = rules.eligibility() {
        let ctx = eval::Context {
            snapshot,
            as_of,
            is_manager: &none,
            members: &[],
        };
        for &w in &changed {
            prev.eligible.set(w, eval::truth(expr, w, &ctx));
        }
    } else {
        prev.eligible = full(n);
    }
    let is_manager = managers_of(snapshot, &prev.eligible);
    let affected = affected(
        &prev,
        prev_snapshot,
        snapshot,
        &changed,
        &is_manager,
        rules,
        as_of,
    );
    prev.is_manager = is_manager;
    if affected.is_empty() {
        return prev;
    }
    update(prev, snapshot, &affected, rules, as_of)
}

/// The workers whose memberships may differ, in order.
fn affected(
    prev: &Evaluation,
    prev_snapshot: &Snapshot,
    snapshot: &Snapshot,
    changed: &[WorkerId],
    is_manager: &FixedBitSet,
    rules: &RuleSet,
    as_of: NaiveDate,
) -> Vec<WorkerId> {
    let mut out: BTreeSet<WorkerId> = changed.iter().copied().collect();
    let mut flipped = is_manager.clone();
    flipped.symmetric_difference_with(&prev.is_manager);
    out.extend(flipped.ones());
    let moved: Vec<WorkerId> = changed
        .iter()
        .copied()
        .filter(|&w| prev_snapshot.manager(w) != snapshot.manager(w))
        .collect();
    if !moved.is_empty() {
        for s in [prev_snapshot, snapshot] {
            let mut children = vec![Vec::new(); s.len()];
            for (w, m) in s.managers().iter().enumerate() {
                if let Some(m) = m {
                    children[*m].push(w);
                }
            }
            let mut stack = moved.clone();
            while let Some(w) = stack.pop() {
                for &c in &children[w] {
                    if out.insert(c) {
                        stack.push(c);
                    }
                }
            }
        }
    }
    for group in rules.groups() {
        for entries in [&group.include, &group.exclude, &group.members] {
            if entries.is_empty() {
                continue;
            }
            let mut named = entries_set(entries, prev_snapshot, as_of);
            named.symmetric_difference_with(&entries_set(entries, snapshot, as_of));
            out.extend(named.ones());
        }
    }
    out.into_iter().collect()
}

/// Evaluates the affected workers over a snapshot of just them and writes their
/// memberships into `prev`.
fn update(
    mut prev: Evaluation,
    snapshot: &Snapshot,
    affected: &[WorkerId],
    rules: &RuleSet,
    as_of: NaiveDate,
) -> Evaluation {
    let k = affected.len();
    let attrs = snapshot.schema().attrs().len();
    let rows = affected
        .iter()
        .map(|&w| (0..attrs).map(|a| snapshot.get(a, w).cloned()).collect())
        .collect();
    let sub = Snapshot::from_rows(std::sync::Arc::new(snapshot.schema().clone()), rows);
    let restrict = |bits: &FixedBitSet| {
        let mut out = FixedBitSet::with_capacity(k);
        for (i, &w) in affected.iter().enumerate() {
            out.set(i, bits.contains(w));
        }
        out
    };
    let eligible = restrict(&prev.eligible);
    let is_manager = restrict(&prev.is_manager);
    let reports_to = |key: &str| {
        let mut out = FixedBitSet::with_capacity(k);
        for (i, &w) in affected.iter().enumerate() {
            out.set(i, eval::reports_to(snapshot, w, key));
        }
        out
    };
    let indexes = columnar::Indexes::new(&sub);
    let memo = columnar::Memo::default();
    let mut members: Vec<FixedBitSet> = vec![FixedBitSet::new(); rules.groups().len()];
    for &g in rules.evaluation_order() {
        let group = rules.group(g);
        let entries = |list| restrict(&entries_set(list, snapshot, as_of));
        let rule = |members: &[FixedBitSet]| match &group.rule {
            Some(rule) => columnar::Columnar {
                indexes: &indexes,
                as_of,
                is_manager: &is_manager,
                members,
                memo: &memo,
                reports_to: Some(&reports_to),
            }
            .truth(rule),
            None => FixedBitSet::with_capacity(k),
        };
        let mut result = match group.kind {
            GroupKind::Manual => entries(&group.members),
            GroupKind::Managed | GroupKind::Hybrid => rule(&members),
        };
        if group.kind == GroupKind::Hybrid {
            if let Some(rule_set) = &mut prev.rule_sets[g] {
                for (i, &w) in affected.iter().enumerate() {
                    rule_set.set(w, result.contains(i));
                }
            }
            result.union_with(&entries(&group.include));
            result.difference_with(&entries(&group.exclude));
        }
        result.intersect_with(&eligible);
        for (i, &w) in affected.iter().enumerate() {
            prev.members[g].set(w, result.contains(i));
        }
        members[g] = result;
    }
    prev
}
