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

use super::{columnar, descendants, eval, full, managers_of, resolve, Evaluation};
use crate::directory::{Alignment, Snapshot, WorkerId};
use crate::rules::{GroupKind, PersonEntry, RuleSet};

/// `prev` evaluated `prev_snapshot` with `rules` on `as_of`; `alignment` relates `snapshot`'s
/// workers to `prev_snapshot`'s ([`Snapshot::align`]): workers may have joined, left or
/// moved within the export. Another date or another number of groups gets a full evaluation.
/// Also returns the workers whose memberships may differ from `prev`'s (every other one's
/// are the same in both); `None` when it evaluated in full.
pub fn evaluate_incremental(
    prev: Evaluation,
    prev_snapshot: &Snapshot,
    snapshot: &Snapshot,
    alignment: &Alignment,
    rules: &RuleSet,
    as_of: NaiveDate,
) -> (Evaluation, Option<Vec<WorkerId>>) {
    let n = snapshot.len();
    let comparable = prev.as_of == as_of
        && prev.members.len() == rules.groups().len()
        && prev.eligible.len() == prev_snapshot.len()
        && alignment.old.len() == n;
    if !comparable {
        return (super::evaluate(snapshot, rules, as_of), None);
    }
    let map = Renumbering::new(alignment, prev_snapshot.len());
    let mut prev = map.apply(prev, n);
    let changed = &alignment.changed;
    // Eligibility of the changed workers.
    let none = FixedBitSet::with_capacity(n);
    if let Some(expr) = rules.eligibility() {
        let ctx = eval::Context {
            snapshot,
            as_of,
            is_manager: &none,
            members: &[],
            part: None,
        };
        for &w in changed {
            prev.eligible.set(w, eval::truth(expr, w, &ctx));
        }
    } else {
        prev.eligible = full(n);
    }
    let is_manager = managers_of(snapshot, &prev.eligible);
    let affected = affected(
        &prev,
        (prev_snapshot, snapshot),
        &map,
        changed,
        &is_manager,
        rules,
        as_of,
    );
    prev.is_manager = is_manager;
    if affected.is_empty() {
        return (prev, Some(affected));
    }
    let evaluation = update(prev, snapshot, &affected, rules, as_of);
    (evaluation, Some(affected))
}

/// The earlier snapshot's workers in the new one's numbering.
struct Renumbering {
    /// By earlier index: the new index, or `u32::MAX` for a worker who left. Empty when
    /// every worker kept its index (the common case: nobody left or moved).
    new: Vec<u32>,
}

impl Renumbering {
    fn new(alignment: &Alignment, prev_len: usize) -> Renumbering {
        if alignment.same_order && alignment.old.len() >= prev_len {
            return Renumbering { new: Vec::new() };
        }
        let mut new = vec![u32::MAX; prev_len];
        for (w, o) in alignment.old.iter().enumerate() {
            if let Some(o) = o {
                new[*o] = w as u32;
            }
        }
        Renumbering { new }
    }

    fn is_identity(&self) -> bool {
        self.new.is_empty()
    }

    fn of(&self, old: WorkerId) -> Option<WorkerId> {
        if self.is_identity() {
            return Some(old);
        }
        match self.new[old] {
            u32::MAX => None,
            w => Some(w as WorkerId),
        }
    }

    /// A set of earlier workers as a set of `n` new ones.
    fn bits(&self, old: &FixedBitSet, n: usize) -> FixedBitSet {
        let mut out = FixedBitSet::with_capacity(n);
        if self.is_identity() {
            out.as_mut_slice()[..old.as_slice().len()].copy_from_slice(old.as_slice());
            return out;
        }
        for o in old.ones() {
            if let Some(w) = self.of(o) {
                out.insert(w);
            }
        }
        out
    }

    /// The evaluation in the new numbering; workers new to it are in no set.
    fn apply(&self, prev: Evaluation, n: usize) -> Evaluation {
        if self.is_identity() && prev.eligible.len() == n {
            return prev;
        }
        Evaluation {
            as_of: prev.as_of,
            eligible: self.bits(&prev.eligible, n),
            is_manager: self.bits(&prev.is_manager, n),
            members: prev.members.iter().map(|m| self.bits(m, n)).collect(),
            rule_sets: (prev.rule_sets.iter())
                .map(|r| r.as_ref().map(|r| self.bits(r, n)))
                .collect(),
        }
    }
}

/// The workers whose memberships may differ, in order, by new index.
fn affected(
    prev: &Evaluation,
    (prev_snapshot, snapshot): (&Snapshot, &Snapshot),
    map: &Renumbering,
    changed: &[WorkerId],
    is_manager: &FixedBitSet,
    rules: &RuleSet,
    as_of: NaiveDate,
) -> Vec<WorkerId> {
    let mut out: BTreeSet<WorkerId> = changed.iter().copied().collect();
    let mut flipped = is_manager.clone();
    flipped.symmetric_difference_with(&prev.is_manager);
    out.extend(flipped.ones());
    // Workers whose manager (as resolved in each export) is another one now. With the same
    // workers in the same places only a changed row can change it; otherwise any row can
    // (its manager left, or joined).
    let moved_of = |w: WorkerId, o: WorkerId| match prev_snapshot.manager(o) {
        None => snapshot.manager(w).is_some(),
        // A manager who left is no manager now, but a change all the same.
        Some(m) => map.of(m).is_none() || map.of(m) != snapshot.manager(w),
    };
    let moved: Vec<WorkerId> = if map.is_identity() && snapshot.len() == prev_snapshot.len() {
        changed
            .iter()
            .copied()
            .filter(|&w| moved_of(w, w))
            .collect()
    } else {
        let old = old_positions(map, snapshot.len());
        (0..snapshot.len())
            .filter(|&w| old[w].is_none_or(|o| moved_of(w, o)))
            .collect()
    };
    out.extend(moved.iter().copied());
    if !moved.is_empty() {
        // Everyone below a moved worker, in the new chart and (by earlier index) the old one.
        let mut below = FixedBitSet::with_capacity(snapshot.len());
        descendants(snapshot.managers(), &[], &moved, &mut below);
        out.extend(below.ones());
        let old = old_positions(map, snapshot.len());
        let then: Vec<WorkerId> = moved.iter().filter_map(|&w| old[w]).collect();
        let mut below = FixedBitSet::with_capacity(prev_snapshot.len());
        descendants(prev_snapshot.managers(), &[], &then, &mut below);
        out.extend(below.ones().filter_map(|o| map.of(o)));
    }
    // An entry names the same worker by key in both; by email, a changed email may move it.
    for group in rules.groups() {
        for entries in [&group.include, &group.exclude, &group.members] {
            for entry in entries.iter().filter(|e| e.active_on(as_of)) {
                let (then, now) = (
                    resolve(&entry.who, prev_snapshot).and_then(|o| map.of(o)),
                    resolve(&entry.who, snapshot),
                );
                if then != now {
                    out.extend(then);
                    out.extend(now);
                }
            }
        }
    }
    out.into_iter().collect()
}

/// By new index: the earlier index, from the renumbering (the identity when it is one).
fn old_positions(map: &Renumbering, n: usize) -> Vec<Option<WorkerId>> {
    if map.is_identity() {
        return (0..n).map(Some).collect();
    }
    let mut old = vec![None; n];
    for (o, &w) in map.new.iter().enumerate() {
        if w != u32::MAX {
            old[w as usize] = Some(o);
        }
    }
    old
}

/// Evaluates the affected workers over a snapshot of just them, on two threads as a full
/// evaluation does, and writes their memberships into `prev`.
fn update(
    mut prev: Evaluation,
    snapshot: &Snapshot,
    affected: &[WorkerId],
    rules: &RuleSet,
    as_of: NaiveDate,
) -> Evaluation {
    let k = affected.len();
    let groups = rules.groups().len();
    let sub = snapshot.select(affected);
    let part = eval::Part::new(snapshot, affected);
    let restrict = |bits: &FixedBitSet| {
        let mut out = FixedBitSet::with_capacity(k);
        for (i, &w) in affected.iter().enumerate() {
            out.set(i, bits.contains(w));
        }
        out
    };
    let eligible = restrict(&prev.eligible);
    let is_manager = restrict(&prev.is_manager);
    let indexes = columnar::Indexes::new(&sub);
    let memo = columnar::Memo::default();
    let mut members = vec![FixedBitSet::new(); groups];
    let mut rule_sets = vec![None; groups];
    super::by_levels(rules, &mut members, &mut rule_sets, |members, level| {
        let mut c = columnar::Columnar {
            indexes: &indexes,
            as_of,
            is_manager: &is_manager,
            members,
            memo: &memo,
            part: Some(&part),
        };
        // The positions of the workers that the active entries name.
        let entries = |list: &[PersonEntry]| {
            let mut out = FixedBitSet::with_capacity(k);
            for entry in list.iter().filter(|e| e.active_on(as_of)) {
                let position =
                    resolve(&entry.who, snapshot).and_then(|w| affected.binary_search(&w).ok());
                if let Some(i) = position {
                    out.insert(i);
                }
            }
            out
        };
        level
            .iter()
            .map(|&g| {
                let group = rules.group(g);
                let mut result = match (group.kind, &group.rule) {
                    (GroupKind::Manual, _) => entries(&group.members),
                    (_, Some(rule)) => c.truth(rule),
                    (_, None) => FixedBitSet::with_capacity(k),
                };
                let mut rule_set = None;
                if group.kind == GroupKind::Hybrid {
                    rule_set = Some(result.clone());
                    if !group.include.is_empty() {
                        result.union_with(&entries(&group.include));
                    }
                    if !group.exclude.is_empty() {
                        result.difference_with(&entries(&group.exclude));
                    }
                }
                result.intersect_with(&eligible);
                (g, (result, rule_set))
            })
            .collect()
    });
    // Writing a bit per affected worker touches most of every group's bitset: the two
    // threads take half of the groups each.
    let half = groups.div_ceil(2);
    let (members_left, members_right) = prev.members.split_at_mut(half);
    let (rules_left, rules_right) = prev.rule_sets.split_at_mut(half);
    let words = Words::of(affected);
    let write_back = |whole: &mut [FixedBitSet],
                      whole_rules: &mut [Option<FixedBitSet>],
                      parts: &[FixedBitSet],
                      part_rules: &[Option<FixedBitSet>]| {
        for (whole, part) in whole.iter_mut().zip(parts) {
            words.write(whole, part);
        }
        for (whole, part) in whole_rules.iter_mut().zip(part_rules) {
            if let (Some(whole), Some(part)) = (whole, part) {
                words.write(whole, part);
            }
        }
    };
    std::thread::scope(|scope| {
        scope.spawn(|| {
            write_back(
                members_right,
                rules_right,
                &members[half..],
                &rule_sets[half..],
            )
        });
        write_back(
            members_left,
            rules_left,
            &members[..half],
            &rule_sets[..half],
        );
    });
    prev
}

/// The affected workers by the word of a bitset they fall in: writing a group's new bits
/// then reads each word once and writes it only when it changes, so that most of the memory
/// is only read.
struct Words {
    /// (word index, the affected workers' bits in it, their positions `start..end`).
    runs: Vec<(usize, usize, usize, usize)>,
    /// Each position's bit within its word.
    bits: Vec<u32>,
}

impl Words {
    /// `affected` is sorted.
    fn of(affected: &[WorkerId]) -> Words {
        let bits_per_word = usize::BITS as usize;
        let mut runs: Vec<(usize, usize, usize, usize)> = Vec::new();
        let mut bits = Vec::with_capacity(affected.len());
        for (i, &w) in affected.iter().enumerate() {
            let (word, bit) = (w / bits_per_word, w % bits_per_word);
            bits.push(bit as u32);
            match runs.last_mut() {
                Some(run) if run.0 == word => {
                    run.1 |= 1 << bit;
                    run.3 = i + 1;
                }
                _ => runs.push((word, 1 << bit, i, i + 1)),
            }
        }
        Words { runs, bits }
    }

    /// Sets each affected worker's bit in `whole` to its position's bit in `part`.
    fn write(&self, whole: &mut FixedBitSet, part: &FixedBitSet) {
        let blocks = whole.as_mut_slice();
        for &(word, mask, start, end) in &self.runs {
            let mut new = 0usize;
            for i in start..end {
                if part.contains(i) {
                    new |= 1 << self.bits[i];
                }
            }
            let old = blocks[word];
            if old & mask != new {
                blocks[word] = (old & !mask) | new;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writing_by_words_sets_exactly_the_affected_bits() {
        let n = 300;
        let affected: Vec<WorkerId> = vec![0, 1, 63, 64, 65, 127, 128, 200, 299];
        let mut whole = FixedBitSet::with_capacity(n);
        for w in (0..n).filter(|w| w % 3 == 0) {
            whole.insert(w);
        }
        let mut part = FixedBitSet::with_capacity(affected.len());
        for i in (0..affected.len()).filter(|i| i % 2 == 1) {
            part.insert(i);
        }
        let mut expected = whole.clone();
        for (i, &w) in affected.iter().enumerate() {
            expected.set(w, part.contains(i));
        }
        Words::of(&affected).write(&mut whole, &part);
        assert_eq!(whole, expected);
    }
}
