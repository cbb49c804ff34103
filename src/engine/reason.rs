//! Why a worker holds or lost a membership, in the audit's words.

use super::{resolve, Evaluation};
use crate::directory::{Snapshot, WorkerId};
use crate::rules::{GroupId, GroupKind, PersonEntry, RuleSet};

/// Why a member is in the group: `rule`, `include` (a hybrid group's entry) or `member` (a
/// manual group's entry).
pub fn joined(
    rules: &RuleSet,
    evaluation: &Evaluation,
    group: GroupId,
    worker: WorkerId,
) -> &'static str {
    joined_any(rules, group).unwrap_or_else(|| match &evaluation.rule_sets[group] {
        Some(set) if set.contains(worker) => "rule",
        _ => "include",
    })
}

/// [`joined`] when it is the same for every member of the group (all but hybrid groups).
pub fn joined_any(rules: &RuleSet, group: GroupId) -> Option<&'static str> {
    match rules.group(group).kind {
        GroupKind::Managed => Some("rule"),
        GroupKind::Manual => Some("member"),
        GroupKind::Hybrid => None,
    }
}

/// Why a worker who was in the group is not any more. `worker` is `None` when the worker is
/// no longer in the export at all.
pub fn left(
    snapshot: &Snapshot,
    rules: &RuleSet,
    evaluation: &Evaluation,
    group: GroupId,
    worker: Option<WorkerId>,
) -> &'static str {
    let Some(w) = worker else {
        return "not_eligible";
    };
    if !evaluation.eligible().contains(w) {
        return "not_eligible";
    }
    let g = rules.group(group);
    let names = |entries: &[PersonEntry], active: bool| {
        entries.iter().any(|e| {
            e.active_on(evaluation.as_of) == active && resolve(&e.who, snapshot) == Some(w)
        })
    };
    match g.kind {
        GroupKind::Managed => "rule_no_longer_matches",
        GroupKind::Hybrid if names(&g.exclude, true) => "exclude",
        GroupKind::Hybrid if names(&g.include, false) => "expired",
        GroupKind::Hybrid => "rule_no_longer_matches",
        GroupKind::Manual if names(&g.members, false) => "expired",
        GroupKind::Manual => "entry_removed",
    }
}
