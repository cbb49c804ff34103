//! A run that starts cold (a process that runs once, or the daemon's first run) has no
//! earlier evaluation in memory, and so compared every member with the stored state: at a
//! million workers that is 180 million memberships for a change of ten thousand rows. When
//! the store vouches for its state, it compares only the workers the change can reach.
//!
//! The store vouches when the last run that succeeded evaluated the snapshot in force with
//! the same inputs (rules, config, date, version: [`super::inputs_digest`]), and no run
//! stored membership changes after it: its memberships are then that snapshot's
//! evaluation. The new export's rows are compared with that snapshot's by their digests,
//! so the changed workers and their earlier rows are known, and [`engine::reach`] finds
//! every worker whose memberships they can move.
//!
//! The restriction is checked, not trusted: every `daemon.full_evaluation_every` runs (by
//! run id, whichever process makes them) the run also compares everyone, and a difference
//! fails the run loudly and stores nothing.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use chrono::NaiveDate;

use super::diff::{run_changes_among, run_changes_keeping, Among};
use super::{CycleError, Phase};
use crate::directory::{Snapshot, WorkerId};
use crate::engine::{self, Evaluation};
use crate::rules::RuleSet;
use crate::store::{GroupDelta, MemberState, RunChanges, Store, StoreError};

/// What a cold run knows of the snapshot in force: the run that vouches for the stored
/// state, and whether this run checks the restriction against a full comparison.
#[derive(Debug, Clone, Copy)]
pub(super) struct Vouched {
    pub run: i64,
    pub check: bool,
}

impl Vouched {
    /// The last succeeded run, when it evaluated the snapshot in force `current` with inputs
    /// of digest `digest` ([`super::same_as_last_run`]) and no run failed after it (a run
    /// whose check found a difference fails; the next compares everyone, and stores what a
    /// full comparison finds, instead of failing the same check again and again). `every` is
    /// how often a run checks.
    pub async fn by(
        store: &Store,
        current: Option<i64>,
        digest: Option<&str>,
        every: u32,
    ) -> Result<Option<Vouched>, StoreError> {
        let Some(current) = current else {
            return Ok(None);
        };
        let Some(last) = super::same_as_last_run(store, current, digest).await? else {
            return Ok(None);
        };
        if store.failed_since(last.id).await? {
            return Ok(None);
        }
        Ok(Some(Vouched {
            run: last.id,
            check: every > 0 && (last.id + 1) % i64::from(every) == 0,
        }))
    }

    /// Whether `stored` is still what the vouching run left: no run stored changes since.
    pub fn holds(&self, stored: &MemberState) -> bool {
        stored.last_run <= self.run
    }
}

/// The workers to compare ([`Among`]): those of `snapshot` that [`engine::reach`] finds from
/// the `changed` workers (new or with another row) and `before`, the stored rows of
/// snapshot `of` of the workers who changed or left; and the keys of those who left.
pub(super) fn among(
    snapshot: &Snapshot,
    changed: &[WorkerId],
    (of, before): (i64, &[(String, String)]),
    rules: &RuleSet,
    as_of: NaiveDate,
) -> Result<(Vec<WorkerId>, Vec<String>), CycleError> {
    let phase = Phase::start();
    let schema = Arc::new(snapshot.schema().clone());
    let earlier = Snapshot::from_rows_json(schema, before)
        .map_err(|message| CycleError::Corrupt { id: of, message })?;
    let workers = engine::reach(snapshot, changed, &earlier, rules, as_of);
    let left = (0..earlier.len())
        .map(|e| earlier.key(e))
        .filter(|key| snapshot.by_key(key).is_none())
        .map(str::to_string)
        .collect();
    tracing::debug!(
        changed = changed.len(),
        reached = workers.len(),
        workers = snapshot.len(),
        "a cold run compares only the workers the change can reach"
    );
    phase.done("find the workers the change can reach");
    Ok((workers, left))
}

/// [`run_changes_among`], and a full comparison beside it: a difference fails the run.
pub(super) fn checked(
    snapshot: &Snapshot,
    rules: &RuleSet,
    evaluation: &Evaluation,
    stored: MemberState,
    among: &Among<'_>,
) -> Result<(RunChanges, MemberState), CycleError> {
    let (full, rest) = run_changes_keeping(snapshot, rules, evaluation, stored.clone());
    let (restricted, _) = run_changes_among(snapshot, rules, evaluation, stored, among);
    let (everyone, among_only) = (by_group(&full), by_group(&restricted));
    let groups: BTreeSet<&str> = everyone.keys().chain(among_only.keys()).copied().collect();
    let differences: Vec<String> = groups
        .into_iter()
        .filter(|g| everyone.get(g) != among_only.get(g))
        .map(|g| format!("group {g}"))
        .collect();
    if !differences.is_empty() {
        tracing::error!(
            differences = ?differences,
            "comparing only the workers the change can reach differs from comparing everyone: the run fails and stores nothing"
        );
        return Err(CycleError::ReachDiffers { differences });
    }
    tracing::info!(
        reached = among.workers.len(),
        "comparing only the workers the change can reach checked against comparing everyone: the same"
    );
    Ok((full, rest))
}

/// A run's deltas by group name.
fn by_group(changes: &RunChanges) -> BTreeMap<&str, &GroupDelta> {
    (changes.deltas.iter())
        .map(|d| (d.group.as_str(), d))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::{checked, Among, CycleError};
    use crate::store::MemberState;

    /// A restriction that leaves out a worker whose memberships change is caught by the
    /// check: the run fails, naming the groups, instead of storing less than the rules say.
    #[test]
    fn the_check_fails_a_restriction_that_leaves_out_a_change() {
        let (rules, snapshot) = crate::cycle::sample();
        let as_of = chrono::NaiveDate::from_ymd_opt(2026, 11, 22).unwrap();
        let evaluation = crate::engine::evaluate(&snapshot, &rules, as_of);
        // Nothing stored: every member joins, but only the first ten workers are compared.
        let workers: Vec<usize> = (0..10).collect();
        let among = Among {
            workers: &workers,
            left: &[],
        };
        let stored = MemberState::default();
        let err = checked(&snapshot, &rules, &evaluation, stored.clone(), &among).unwrap_err();
        let CycleError::ReachDiffers { differences } = &err else {
            panic!("{err}");
        };
        assert!(!differences.is_empty());
        assert!(err.to_string().contains("this run stores nothing"), "{err}");
        // Everyone compared: the same.
        let everyone: Vec<usize> = (0..snapshot.len()).collect();
        let among = Among {
            workers: &everyone,
            left: &[],
        };
        let (changes, _) = checked(&snapshot, &rules, &evaluation, stored, &among).unwrap();
        assert!(changes.added() > 0);
    }
}
