//! The workers a change can reach, known from the new snapshot whole and, of the earlier one,
//! only the rows of the workers who changed or left: what a run that starts cold (nothing
//! kept in memory) compares with the stored memberships, when the store vouches that they
//! are the earlier snapshot's evaluation under the same rules on the same date.
//!
//! It finds what [`super::incremental`] finds from the earlier snapshot whole, and more: every
//! step here adds workers, none takes any out, and a worker compared needlessly costs a
//! lookup. Only a worker left out would be wrong, so each dependency a membership has is
//! covered (docs/rules-language.md): its own row and eligibility; `is_manager` (who reports
//! to it); its manager chain (`reports_to`); its other groups (`member_of`, its own); and the
//! person entries that name it, by key or by email.

use fixedbitset::FixedBitSet;
use rustc_hash::FxHashSet;

use chrono::NaiveDate;

use crate::directory::{Snapshot, Value, WorkerId};
use crate::rules::{RuleSet, Who};

/// The workers of `snapshot` whose memberships may differ from those of the earlier
/// snapshot's evaluation (in order), given `changed`, the workers of `snapshot` who are new
/// or whose rows differ, and `earlier`, the earlier rows of the workers who changed or left
/// (any order; a snapshot of just them). Those who left are not in `snapshot`: the caller
/// compares them by key.
pub fn reach(
    snapshot: &Snapshot,
    changed: &[WorkerId],
    earlier: &Snapshot,
    rules: &RuleSet,
    as_of: NaiveDate,
) -> Vec<WorkerId> {
    let n = snapshot.len();
    let mut out = FixedBitSet::with_capacity(n);
    out.extend(changed.iter().copied());
    // The keys that name a worker in one snapshot and nobody in the other: a reference to
    // one of them resolves differently now.
    let earlier_keys: FxHashSet<&str> = (0..earlier.len()).map(|e| earlier.key(e)).collect();
    let mut moved_keys: FxHashSet<&str> = changed
        .iter()
        .map(|&w| snapshot.key(w))
        .filter(|k| !earlier_keys.contains(k))
        .collect();
    let left: Vec<WorkerId> = (0..earlier.len())
        .filter(|&e| snapshot.by_key(earlier.key(e)).is_none())
        .collect();
    moved_keys.extend(left.iter().map(|&e| earlier.key(e)));
    // Workers whose manager may be another one now: those who joined, those whose manager
    // reference changed, and those whose reference names a key that joined or left.
    let mut moved: Vec<WorkerId> = Vec::new();
    // Each changed worker's earlier manager in this snapshot, for the earlier chart.
    let mut earlier_edges: Vec<(WorkerId, WorkerId)> = Vec::new();
    for &w in changed {
        let Some(e) = earlier.by_key(snapshot.key(w)) else {
            moved.push(w);
            continue;
        };
        let (then, now) = (manager_key(earlier, e), manager_key(snapshot, w));
        if then != now || now.is_some_and(|k| moved_keys.contains(k)) {
            moved.push(w);
        }
        if let Some(m) = then.and_then(|k| snapshot.by_key(k)) {
            earlier_edges.push((m, w));
        }
    }
    if !moved_keys.is_empty() && snapshot.schema().manager().is_some() {
        let managers = snapshot.managers();
        let mut joined = FixedBitSet::with_capacity(n);
        joined.extend(moved_keys.iter().filter_map(|k| snapshot.by_key(k)));
        moved.extend(managers.iter().enumerate().filter_map(|(w, m)| {
            let names_moved = match m {
                Some(m) => joined.contains(*m),
                // A reference to nobody now may have named someone who left.
                None => manager_key(snapshot, w).is_some_and(|k| moved_keys.contains(k)),
            };
            names_moved.then_some(w)
        }));
    }
    // `is_manager` changes only for a manager, now or then, of a worker who changed, moved
    // or left.
    let managers = snapshot.managers();
    for &w in changed.iter().chain(&moved) {
        out.extend(managers[w]);
    }
    out.extend(earlier_edges.iter().map(|&(m, _)| m));
    for &e in &left {
        out.extend(manager_key(earlier, e).and_then(|k| snapshot.by_key(k)));
    }
    // Everyone below a moved worker, in the chart now or (for the edges that changed) then.
    if !moved.is_empty() {
        out.extend(moved.iter().copied());
        super::descendants(managers, &earlier_edges, &moved, &mut out);
    }
    entries(
        snapshot,
        changed,
        earlier,
        &moved_keys,
        rules,
        as_of,
        &mut out,
    );
    out.ones().collect()
}

/// The key worker `w` names as its manager in `s`, whether or not `s` has that worker.
fn manager_key(s: &Snapshot, w: WorkerId) -> Option<&str> {
    match s.get(s.schema().manager()?, w) {
        Some(Value::Str(k)) => Some(k),
        _ => None,
    }
}

/// Adds to `out` the workers an active person entry may name differently now: an entry
/// names the same worker in both snapshots unless its key joined or left, or a worker who
/// changed, joined or left holds (or held) its email. Every holder of such an email is
/// added: an email held by several names nobody.
fn entries(
    snapshot: &Snapshot,
    changed: &[WorkerId],
    earlier: &Snapshot,
    moved_keys: &FxHashSet<&str>,
    rules: &RuleSet,
    as_of: NaiveDate,
    out: &mut FixedBitSet,
) {
    let mut emails: FxHashSet<String> = changed
        .iter()
        .filter_map(|&w| snapshot.email(w))
        .map(str::to_lowercase)
        .collect();
    emails.extend((0..earlier.len()).filter_map(|e| earlier.email(e).map(str::to_lowercase)));
    let mut named: FxHashSet<String> = FxHashSet::default();
    let active = rules
        .groups()
        .iter()
        .flat_map(|g| [&g.include, &g.exclude, &g.members])
        .flatten()
        .filter(|e| e.active_on(as_of));
    for entry in active {
        let (key, email) = match &entry.who {
            Who::Key(k) => (Some(k), None),
            Who::Email(e) => (None, Some(e)),
            Who::KeyOrEmail(s) => (Some(s), Some(s)),
        };
        let key_moved = key.is_some_and(|k| moved_keys.contains(k.as_str()));
        let email = email.map(|e| e.to_lowercase());
        let email_moved = email.as_ref().is_some_and(|e| emails.contains(e));
        if !(key_moved || email_moved) {
            continue;
        }
        out.extend(key.and_then(|k| snapshot.by_key(k)));
        named.extend(email);
    }
    if named.is_empty() {
        return;
    }
    for w in 0..snapshot.len() {
        if snapshot
            .email(w)
            .is_some_and(|e| named.contains(&e.to_lowercase()))
        {
            out.insert(w);
        }
    }
}
