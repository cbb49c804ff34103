//! The pure half of a cycle: what changed between the stored memberships and a new
//! evaluation, as the run records it (by worker number) and as `plan` shows it (by key).
//! Nothing here reads or writes the store; [`super`] orchestrates.

use crate::directory::{Snapshot, WorkerId};
use crate::engine::{reason, Evaluation};
use crate::rules::{GroupId, RuleSet};
use crate::store::{Change, GroupDelta, MemberState, RunChanges, WorkerIds, CHECKPOINT_EVERY};
use fixedbitset::FixedBitSet;
use roaring::RoaringBitmap;

/// The membership changes that take the stored state to what the rules say now, by worker
/// key: groups in rule-set order, then removed groups; joins, then leaves, each by key.
pub fn changes(
    snapshot: &Snapshot,
    rules: &RuleSet,
    evaluation: &Evaluation,
    stored: &MemberState,
) -> Vec<Change> {
    let order = KeyOrder::new(snapshot);
    let numbering = Numbering::new(snapshot, &stored.workers);
    let side = StoredSide {
        state: stored,
        numbering: &numbering,
    };
    let mut out = Vec::new();
    for (g, group) in rules.groups().iter().enumerate() {
        out.extend(
            planned_changes(snapshot, &order, rules, evaluation, g, &side, usize::MAX)
                .2
                .into_iter()
                .map(|c| c.owned(&group.name)),
        );
    }
    for name in stored.groups.keys() {
        if rules.lookup(name).is_none() {
            out.extend(
                removed_group_changes(&side, name)
                    .into_iter()
                    .map(|c| c.owned(name)),
            );
        }
    }
    out
}

/// The snapshot's workers in the store's numbering, both ways.
pub struct Numbering {
    /// By [`WorkerId`]: the stored id, when the worker has one.
    ids: Vec<Option<u32>>,
    /// By stored id: the worker in this snapshot, or `u32::MAX`.
    workers: Vec<u32>,
    /// Whether every worker's id is its place (a first run numbers the export in order):
    /// a set of places is then the set of ids, made from its bits.
    identity: bool,
}

impl Numbering {
    /// The ids the store has; workers it never saw have none (a plan writes nothing).
    pub fn new(snapshot: &Snapshot, stored: &WorkerIds) -> Self {
        let ids = (0..snapshot.len())
            .map(|w| stored.id(snapshot.key(w)))
            .collect();
        Self::of(ids, stored.len())
    }

    /// Numbers every worker the store never saw; [`WorkerIds::since`] then lists them.
    pub fn assign(snapshot: &Snapshot, stored: &mut WorkerIds) -> Self {
        let ids = (0..snapshot.len())
            .map(|w| Some(stored.number(snapshot.key(w))))
            .collect();
        Self::of(ids, stored.len())
    }

    /// [`Numbering::assign`] of `workers` alone (in order), for a run that compares only
    /// them: every worker new to the store must be among them.
    fn assign_among(snapshot: &Snapshot, stored: &mut WorkerIds, workers: &[WorkerId]) -> Self {
        let mut ids = vec![None; snapshot.len()];
        for &w in workers {
            ids[w] = Some(stored.number(snapshot.key(w)));
        }
        Self::of(ids, stored.len())
    }

    fn of(ids: Vec<Option<u32>>, stored: usize) -> Self {
        let mut workers = vec![u32::MAX; stored];
        for (w, id) in ids.iter().enumerate() {
            if let Some(id) = id {
                workers[*id as usize] = w as u32;
            }
        }
        let identity = (ids.iter().enumerate()).all(|(w, id)| *id == u32::try_from(w).ok());
        Numbering {
            ids,
            workers,
            identity,
        }
    }

    /// The stored ids of `workers`, leaving out those without one. The store numbers workers
    /// in the order it first sees them, so ids usually rise with the places: each is then
    /// appended, which costs a fraction of inserting it.
    pub fn ids_of(&self, workers: impl Iterator<Item = WorkerId>) -> RoaringBitmap {
        let ids: Vec<u32> = workers.filter_map(|w| self.ids[w]).collect();
        let mut set = RoaringBitmap::new();
        if set.append(ids.iter().copied()).is_err() {
            // Not in order: what was appended stays, the rest is inserted.
            set.extend(ids);
        }
        set
    }

    /// [`Numbering::ids_of`] a set of workers: from its words when every id is its place
    /// (a first run's 20 million memberships at 100,000 workers were appended one by one).
    pub fn ids_of_set(&self, workers: &FixedBitSet) -> RoaringBitmap {
        if !self.identity {
            return self.ids_of(workers.ones());
        }
        let bytes: Vec<u8> = (workers.as_slice().iter())
            .flat_map(|block| block.to_le_bytes())
            .collect();
        RoaringBitmap::from_lsb0_bytes(0, &bytes)
    }

    pub fn id(&self, w: WorkerId) -> Option<u32> {
        self.ids[w]
    }

    /// The worker with stored id `id` in this snapshot, if it is in it.
    pub fn worker(&self, id: u32) -> Option<WorkerId> {
        match self.workers.get(id as usize) {
            Some(&w) if w != u32::MAX => Some(w as WorkerId),
            _ => None,
        }
    }
}

/// The stored state and the snapshot's workers in its numbering.
pub struct StoredSide<'a> {
    pub state: &'a MemberState,
    pub numbering: &'a Numbering,
}

/// The workers in key order: `order[r]` is the worker at place `r`, `ranks[w]` the place of
/// worker `w`. Sorting a group's changes by key is then sorting integers.
pub struct KeyOrder {
    order: Vec<WorkerId>,
    ranks: Vec<u32>,
}

impl KeyOrder {
    pub fn new(snapshot: &Snapshot) -> Self {
        let mut order: Vec<WorkerId> = (0..snapshot.len()).collect();
        order.sort_unstable_by(|&a, &b| snapshot.key(a).cmp(snapshot.key(b)));
        let mut ranks = vec![0u32; order.len()];
        for (r, &w) in order.iter().enumerate() {
            ranks[w] = u32::try_from(r).unwrap_or(u32::MAX);
        }
        KeyOrder { order, ranks }
    }
}

/// One membership change, borrowed from the snapshot and the stored state: what a plan lists,
/// at the cost of a few words each (a plan may list millions).
#[derive(Debug, Clone, Copy)]
pub struct PlannedChange<'a> {
    pub key: &'a str,
    /// `None` for a worker no longer in the export.
    pub worker: Option<WorkerId>,
    pub added: bool,
    pub reason: &'static str,
}

impl PlannedChange<'_> {
    pub fn owned(&self, group: &str) -> Change {
        Change {
            group: group.to_string(),
            worker: self.key.to_string(),
            added: self.added,
            reason: self.reason.to_string(),
        }
    }
}

/// One group's changes against its stored members: joins, then leaves, each by worker key,
/// cut to the first `shown`; and how many joins and leaves there are in all. A plan works
/// through the groups one at a time with this, so its memory is that of one group's
/// changes, not of all of them; a text plan lists a few per group, and needs neither the
/// order nor the reason of the rest (a first plan at a million workers has 180 million joins).
pub fn planned_changes<'a>(
    snapshot: &'a Snapshot,
    order: &KeyOrder,
    rules: &RuleSet,
    evaluation: &Evaluation,
    g: GroupId,
    stored: &StoredSide<'a>,
    shown: usize,
) -> (usize, usize, Vec<PlannedChange<'a>>) {
    let before = stored.state.group(&rules.group(g).name);
    let numbering = stored.numbering;
    let mut joins: Vec<u32> = evaluation
        .members(g)
        .ones()
        .filter(|&w| match (before, numbering.id(w)) {
            (Some(b), Some(id)) => !b.members.contains(id),
            _ => true,
        })
        .map(|w| order.ranks[w])
        .collect();
    let join_count = joins.len();
    if joins.len() > shown {
        joins.select_nth_unstable(shown);
        joins.truncate(shown);
    }
    joins.sort_unstable();
    let mut out: Vec<PlannedChange<'a>> = joins
        .into_iter()
        .map(|r| {
            let w = order.order[r as usize];
            PlannedChange {
                key: snapshot.key(w),
                worker: Some(w),
                added: true,
                reason: reason::joined(rules, evaluation, g, w),
            }
        })
        .collect();
    let Some(before) = before else {
        return (join_count, 0, out);
    };
    let mut leaves: Vec<PlannedChange<'a>> = before
        .members
        .iter()
        .filter_map(|id| {
            let w = numbering.worker(id);
            if w.is_some_and(|w| evaluation.is_member(g, w)) {
                return None;
            }
            Some(PlannedChange {
                key: stored.state.workers.key(id)?,
                worker: w,
                added: false,
                reason: reason::left(snapshot, rules, evaluation, g, w),
            })
        })
        .collect();
    let leave_count = leaves.len();
    leaves.sort_unstable_by(|a, b| a.key.cmp(b.key));
    out.extend(leaves.into_iter().take(shown.saturating_sub(out.len())));
    (join_count, leave_count, out)
}

/// The leaves of a stored group that the rules no longer define, by key.
pub fn removed_group_changes<'a>(stored: &StoredSide<'a>, group: &str) -> Vec<PlannedChange<'a>> {
    let Some(members) = stored.state.group(group) else {
        return Vec::new();
    };
    let mut out: Vec<PlannedChange<'a>> = members
        .members
        .iter()
        .filter_map(|id| {
            Some(PlannedChange {
                key: stored.state.workers.key(id)?,
                worker: stored.numbering.worker(id),
                added: false,
                reason: "group_removed",
            })
        })
        .collect();
    out.sort_unstable_by(|a, b| a.key.cmp(b.key));
    out
}

/// What a run stores: each changed group's delta against `state`, by group name, with the
/// workers it numbered and the checkpoints due. Every worker of the snapshot is numbered.
pub fn run_changes(
    snapshot: &Snapshot,
    rules: &RuleSet,
    evaluation: &Evaluation,
    state: MemberState,
) -> RunChanges {
    run_changes_keeping(snapshot, rules, evaluation, state).0
}

/// [`run_changes`], and the state with the groups due a checkpoint taken out (they are in
/// the changes), for [`state_after`].
pub fn run_changes_keeping(
    snapshot: &Snapshot,
    rules: &RuleSet,
    evaluation: &Evaluation,
    state: MemberState,
) -> (RunChanges, MemberState) {
    run_changes_of(snapshot, rules, evaluation, state, None)
}

/// The workers whose memberships may differ from the stored ones: those of the snapshot
/// (by index) and those who left it (by key). Every other worker's are the stored ones.
pub struct Among<'a> {
    pub workers: &'a [WorkerId],
    pub left: &'a [String],
}

/// [`run_changes_keeping`] when the stored state is known to hold the evaluation's
/// memberships for every worker but `among`: only those are compared.
pub fn run_changes_among(
    snapshot: &Snapshot,
    rules: &RuleSet,
    evaluation: &Evaluation,
    state: MemberState,
    among: &Among<'_>,
) -> (RunChanges, MemberState) {
    run_changes_of(snapshot, rules, evaluation, state, Some(among))
}

/// The workers [`Among`] names, by stored id: what each group compares.
struct AmongIds {
    /// The snapshot's workers, with their ids, in id order.
    workers: Vec<(u32, WorkerId)>,
    /// Their ids and those of the workers who left.
    ids: RoaringBitmap,
}

impl AmongIds {
    fn new(among: &Among<'_>, numbering: &Numbering, stored: &WorkerIds) -> AmongIds {
        let mut workers: Vec<(u32, WorkerId)> = (among.workers.iter())
            .filter_map(|&w| Some((numbering.id(w)?, w)))
            .collect();
        workers.sort_unstable();
        let mut ids: RoaringBitmap = workers.iter().map(|&(id, _)| id).collect();
        ids.extend(among.left.iter().filter_map(|key| stored.id(key)));
        AmongIds { workers, ids }
    }
}

/// One group's joins and leaves against its stored members `before`, by worker id: every
/// member compared, or only the workers `among` names (a set operation on their ids, not a
/// lookup per worker).
fn group_sides(
    evaluation: &Evaluation,
    g: GroupId,
    numbering: &Numbering,
    before: Option<&RoaringBitmap>,
    among: Option<&AmongIds>,
) -> (RoaringBitmap, RoaringBitmap) {
    let Some(among) = among else {
        let wanted = numbering.ids_of_set(evaluation.members(g));
        return match before {
            Some(before) => (&wanted - before, before - &wanted),
            None => (wanted, RoaringBitmap::new()),
        };
    };
    let was = before.map_or_else(RoaringBitmap::new, |b| b & &among.ids);
    let mut wanted = RoaringBitmap::new();
    let members = evaluation.members(g);
    let ids = (among.workers.iter())
        .filter(|&&(_, w)| members.contains(w))
        .map(|&(id, _)| id);
    // In id order, so appended; were they not, what was appended stays and the rest is added.
    if wanted.append(ids.clone()).is_err() {
        wanted.extend(ids);
    }
    (&wanted - &was, &was - &wanted)
}

fn run_changes_of(
    snapshot: &Snapshot,
    rules: &RuleSet,
    evaluation: &Evaluation,
    mut state: MemberState,
    among: Option<&Among<'_>>,
) -> (RunChanges, MemberState) {
    let known = state.workers.len();
    let numbering = match among {
        // Those who joined are among the workers compared.
        Some(a) => Numbering::assign_among(snapshot, &mut state.workers, a.workers),
        None => Numbering::assign(snapshot, &mut state.workers),
    };
    let among = among.map(|a| AmongIds::new(a, &numbering, &state.workers));
    let groups = rules.groups();
    let mut deltas: Vec<GroupDelta> = crate::halves::map_halves(groups.len(), |range| {
        range
            .filter_map(|g| {
                let name = &groups[g].name;
                let before = state.group(name).map(|s| &s.members);
                let (added, removed) =
                    group_sides(evaluation, g, &numbering, before, among.as_ref());
                if added.is_empty() && removed.is_empty() {
                    return None;
                }
                let leaves = removed.iter().map(|id| {
                    let w = numbering.worker(id);
                    (id, false, reason::left(snapshot, rules, evaluation, g, w))
                });
                let mut delta = match reason::joined_any(rules, g) {
                    // Every join has one reason: the set is the delta's as it is (a first
                    // run joins every member).
                    Some(reason) => {
                        let mut delta = GroupDelta::from_changes(name, leaves);
                        delta.added = added;
                        delta.added_reason = reason.to_string();
                        delta
                    }
                    None => {
                        let joins = added.iter().filter_map(|id| {
                            let w = numbering.worker(id)?;
                            Some((id, true, reason::joined(rules, evaluation, g, w)))
                        });
                        GroupDelta::from_changes(name, joins.chain(leaves))
                    }
                };
                delta.member_count = evaluation.members(g).count_ones(..) as u64;
                Some(delta)
            })
            .collect()
    });
    for (name, members) in &state.groups {
        if rules.lookup(name).is_none() {
            let leaves = members
                .members
                .iter()
                .map(|id| (id, false, "group_removed"));
            deltas.push(GroupDelta::from_changes(name, leaves));
        }
    }
    deltas.sort_by(|a, b| a.group.cmp(&b.group));
    let due: Vec<String> = deltas
        .iter()
        .filter(|d| state.group(&d.group).map_or(0, |s| s.since_checkpoint) + 1 >= CHECKPOINT_EVERY)
        .map(|d| d.group.clone())
        .collect();
    let checkpoints = due
        .into_iter()
        .map(|name| {
            let before = state.groups.remove(&name).unwrap_or_default();
            (name, before)
        })
        .collect();
    let changes = RunChanges {
        base_run: state.last_run,
        new_workers: state.workers.since(known),
        deltas,
        checkpoints,
    };
    (changes, state)
}

/// The stored state once run `run_id` stored `changes`, from what [`run_changes_keeping`]
/// left of the state before: the same as reading it back from the store.
pub fn state_after(mut rest: MemberState, changes: &RunChanges, run_id: i64) -> MemberState {
    for (name, before) in &changes.checkpoints {
        rest.groups.insert(name.clone(), before.clone());
    }
    for delta in &changes.deltas {
        let group = rest.groups.entry(delta.group.clone()).or_default();
        group.apply(run_id, delta);
    }
    for (name, _) in &changes.checkpoints {
        if let Some(group) = rest.groups.get_mut(name) {
            group.since_checkpoint = 0;
        }
    }
    if !changes.deltas.is_empty() || !changes.checkpoints.is_empty() {
        rest.last_run = run_id;
    }
    rest
}

pub(super) fn total_members(evaluation: &Evaluation, rules: &RuleSet) -> usize {
    (0..rules.groups().len())
        .map(|g| evaluation.members(g).count_ones(..))
        .sum()
}

#[cfg(test)]
mod tests {
    use fixedbitset::FixedBitSet;

    use super::Numbering;
    use crate::store::WorkerIds;

    /// A set of workers gets the same ids from its bits (every id its place, as a first run
    /// numbers them) as one by one, and one by one when the numbering is another.
    #[test]
    fn a_set_of_workers_gets_the_same_ids_from_its_bits() {
        let (_, snapshot) = crate::cycle::sample();
        let mut set = FixedBitSet::with_capacity(snapshot.len());
        set.extend((0..snapshot.len()).filter(|w| w % 3 != 1));
        let mut fresh = WorkerIds::default();
        let first = Numbering::assign(&snapshot, &mut fresh);
        assert!(first.identity);
        let expected: Vec<u32> = set.ones().map(|w| w as u32).collect();
        assert_eq!(first.ids_of_set(&set).iter().collect::<Vec<_>>(), expected);
        // A worker numbered before the others: no id is its place.
        let mut earlier = WorkerIds::default();
        earlier.number(snapshot.key(snapshot.len() - 1));
        let later = Numbering::assign(&snapshot, &mut earlier);
        assert!(!later.identity);
        let by_bits = later.ids_of_set(&set);
        assert_eq!(by_bits, later.ids_of(set.ones()));
        assert_eq!(by_bits.len(), set.count_ones(..) as u64);
        assert!(!by_bits.contains(0) || set.contains(snapshot.len() - 1));
    }
}
