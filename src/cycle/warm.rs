//! What a run leaves for the next one in the same process. The daemon keeps it between runs,
//! so that a run evaluates only the workers the export changed (and those their change
//! reaches) and stores the snapshot's difference without reading the one in force back. A
//! process that runs once (`rosterd evaluate`, `sync`) starts cold and evaluates everything.
//!
//! Kept state is checked, not trusted: every `full_evaluation_every` runs the evaluation is
//! also made in full and the two compared. A difference fails the run loudly, stores nothing,
//! and drops what was kept, so that the next run starts cold.

use std::sync::Arc;

use chrono::NaiveDate;

use super::CycleError;
use crate::config::SourceFormat;
use crate::directory::{self, Alignment, LoadMemo, Loaded, Schema, Snapshot, WorkerId};
use crate::engine::{self, Evaluation};
use crate::rules::RuleSet;
use crate::store::MemberState;

/// Kept between the runs of one process ([`super::run_warm`]).
#[derive(Default)]
pub struct Warm {
    /// Every this many evaluations made from a kept one, one is also made in full and
    /// compared; 0 never (only for tests that measure the incremental path alone).
    pub full_evaluation_every: u32,
    kept: Option<Kept>,
    /// The stored memberships as the last run left them; used while the store's newest
    /// membership run is still the one it names.
    state: Option<MemberState>,
    /// Runs that evaluated from a kept evaluation.
    incremental_runs: u64,
    /// Rows that loads took from a kept snapshot without typing them.
    reused_rows: u64,
}

/// The snapshot in force after the last run of this process, and its evaluation.
pub(super) struct Kept {
    pub snapshot_id: i64,
    pub rules: Arc<RuleSet>,
    pub snapshot: Snapshot,
    /// What the snapshot's load left for the next load to go on from it, when it was
    /// loaded from a CSV export.
    pub memo: Option<LoadMemo>,
    pub evaluation: Evaluation,
    /// Evaluations made from kept ones since the last full one.
    pub since_full: u32,
}

impl Warm {
    pub fn new(full_evaluation_every: u32) -> Warm {
        Warm {
            full_evaluation_every,
            ..Warm::default()
        }
    }

    pub(super) fn take(&mut self) -> Option<Kept> {
        self.kept.take()
    }

    /// Keeps what a run evaluated, which it did from the kept evaluation if `incremental`.
    pub(super) fn keep(&mut self, kept: Kept, incremental: bool) {
        self.incremental_runs += u64::from(incremental);
        if incremental {
            self.reused_rows += kept.memo.as_ref().map_or(0, |m| m.reused() as u64);
        }
        self.kept = Some(kept);
    }

    /// The next evaluation from the kept one is also made in full: the run then reads the
    /// stored state back as well.
    pub(super) fn check_due(&self) -> bool {
        let every = self.full_evaluation_every;
        self.kept
            .as_ref()
            .is_some_and(|k| every > 0 && k.since_full + 1 >= every)
    }

    pub(super) fn take_state(&mut self) -> Option<MemberState> {
        self.state.take()
    }

    pub(super) fn keep_state(&mut self, state: MemberState) {
        self.state = Some(state);
    }

    /// The stored memberships as this process's last run left them, and the snapshot in
    /// force it evaluated (what a push reads, without reading them back).
    pub fn kept_state(&self) -> Option<(&MemberState, i64, &Snapshot)> {
        let kept = self.kept.as_ref()?;
        Some((self.state.as_ref()?, kept.snapshot_id, &kept.snapshot))
    }

    /// How many runs evaluated only what changed.
    pub fn incremental_runs(&self) -> u64 {
        self.incremental_runs
    }

    /// How many rows the loads of the runs that evaluated only what changed took from the
    /// snapshot kept since the run before, without typing them.
    pub fn reused_rows(&self) -> u64 {
        self.reused_rows
    }

    /// The snapshot in force as this process last evaluated it, under `rules` on `as_of`:
    /// what the console shows, without reading the snapshot back and evaluating it again.
    pub fn evaluated(
        &self,
        rules: &Arc<RuleSet>,
        as_of: NaiveDate,
    ) -> Option<(i64, &Snapshot, &Evaluation)> {
        self.kept
            .as_ref()
            .filter(|k| Arc::ptr_eq(&k.rules, rules) && k.evaluation.as_of == as_of)
            .map(|k| (k.snapshot_id, &k.snapshot, &k.evaluation))
    }
}

/// An export read, to load.
pub(super) struct Export {
    pub text: String,
    pub format: SourceFormat,
    pub name: String,
    pub schema: Arc<Schema>,
    pub max_bad_rows_percent: f64,
}

impl Export {
    fn load(&self, earlier: Option<(&mut Snapshot, LoadMemo)>) -> Result<Loaded, CycleError> {
        let schema = Arc::clone(&self.schema);
        let (text, format, name) = (&self.text, self.format, &self.name);
        Ok(directory::load_from(
            text,
            format,
            name,
            schema,
            self.max_bad_rows_percent,
            earlier,
        )?)
    }
}

/// Loads `export`, from the kept snapshot when there is one: only the rows that changed
/// since are typed. When the next evaluation from a kept one is also made in full (every
/// `every`), the export is also loaded from nothing, the two compared (a difference is an
/// error), and the run goes on from the latter. `kept` is given back, its snapshot's values
/// unchanged.
pub(super) fn load(
    mut kept: Option<Kept>,
    export: &Export,
    every: u32,
) -> (Result<Loaded, CycleError>, Option<Kept>) {
    let check = kept
        .as_ref()
        .is_some_and(|k| every > 0 && k.since_full + 1 >= every);
    let earlier = (kept.as_mut()).and_then(|k| Some((&mut k.snapshot, k.memo.take()?)));
    let loaded = match export.load(earlier) {
        Ok(loaded) if check && loaded.memo.reused() > 0 => checked_load(loaded, export),
        other => other,
    };
    if let Ok(loaded) = &loaded {
        tracing::debug!(
            reused = loaded.memo.reused(),
            workers = loaded.snapshot.len(),
            "loaded the export; rows unchanged since the kept snapshot were not typed again"
        );
    }
    (loaded, kept)
}

/// `loaded`, made from a kept snapshot, checked against a load of `export` from nothing:
/// the latter when they are the same.
fn checked_load(loaded: Loaded, export: &Export) -> Result<Loaded, CycleError> {
    let full = export.load(None)?;
    let mut differences = loaded.snapshot.differences(&full.snapshot);
    if loaded.report.issues != full.report.issues || loaded.report.rows != full.report.rows {
        differences.push("the issues the load found".to_string());
    }
    if !differences.is_empty() {
        tracing::error!(
            differences = %differences.join(", "),
            "loading from the kept snapshot differs from loading from nothing: the run fails and stores nothing"
        );
        return Err(CycleError::LoadDiffers { differences });
    }
    tracing::info!("loading from the kept snapshot checked against loading from nothing: the same");
    Ok(full)
}

/// An evaluation, and what it was made from.
pub(super) struct Made {
    pub evaluation: Evaluation,
    pub since_full: u32,
    /// The kept snapshot it was made from, and how the new one's workers relate to it.
    pub earlier: Option<Earlier>,
    /// The workers whose memberships may differ from the kept evaluation's: by index, and
    /// by key those who left. `None` after a full evaluation.
    pub among: Option<(Vec<WorkerId>, Vec<String>)>,
}

pub(super) struct Earlier {
    pub snapshot_id: i64,
    pub snapshot: Snapshot,
    pub alignment: Alignment,
}

/// Evaluates `snapshot`: from `kept` when that was made under the same rules on the same date
/// and the export has the same attributes, else in full. Every `every` evaluations from kept
/// ones, in full as well, and a difference is an error.
pub(super) fn evaluate(
    kept: Option<Kept>,
    snapshot: &Snapshot,
    rules: &Arc<RuleSet>,
    as_of: NaiveDate,
    every: u32,
) -> Result<Made, CycleError> {
    let usable = kept
        .filter(|k| Arc::ptr_eq(&k.rules, rules) && k.evaluation.as_of == as_of)
        .and_then(|k| snapshot.align(&k.snapshot).map(|a| (k, a)));
    let Some((kept, alignment)) = usable else {
        return Ok(Made {
            evaluation: engine::evaluate(snapshot, rules, as_of),
            since_full: 0,
            earlier: None,
            among: None,
        });
    };
    let (evaluation, affected) = engine::evaluate_incremental(
        kept.evaluation,
        &kept.snapshot,
        snapshot,
        &alignment,
        rules,
        as_of,
    );
    let mut among = affected.map(|workers| (workers, left(&alignment, &kept.snapshot)));
    tracing::debug!(
        changed = alignment.changed.len(),
        workers = snapshot.len(),
        "evaluated incrementally from the snapshot kept since the last run"
    );
    let mut since_full = kept.since_full + 1;
    if every > 0 && since_full >= every {
        let full = engine::evaluate(snapshot, rules, as_of);
        let differences = evaluation.differences(&full, rules);
        if !differences.is_empty() {
            tracing::error!(
                differences = %differences.join(", "),
                runs = since_full,
                "incremental evaluation differs from a full one: the run fails and stores nothing"
            );
            return Err(CycleError::IncrementalDiffers {
                differences,
                runs: since_full,
            });
        }
        tracing::info!(
            runs = since_full,
            "incremental evaluation checked against a full one: the same"
        );
        since_full = 0;
        // The run compares every member with the state read back from the store too.
        among = None;
    }
    Ok(Made {
        evaluation,
        since_full,
        among,
        earlier: Some(Earlier {
            snapshot_id: kept.snapshot_id,
            snapshot: kept.snapshot,
            alignment,
        }),
    })
}

/// Workers as the store keeps them: key, attributes as JSON.
type StoredRows = Vec<(String, String)>;

/// The workers (by earlier index) of a snapshot of `earlier_len` whom `alignment`'s snapshot
/// no longer has.
fn left_of(alignment: &Alignment, earlier_len: usize) -> Vec<WorkerId> {
    let mut stays = vec![false; earlier_len];
    for o in alignment.old.iter().flatten() {
        stays[*o] = true;
    }
    (0..earlier_len).filter(|&o| !stays[o]).collect()
}

/// The keys of the workers of `earlier` whom `alignment`'s snapshot no longer has.
fn left(alignment: &Alignment, earlier: &Snapshot) -> Vec<String> {
    left_of(alignment, earlier.len())
        .into_iter()
        .map(|o| earlier.key(o).to_string())
        .collect()
}

/// The rows to compare for a new snapshot's difference from the earlier one: the earlier rows
/// of the workers who changed or left, and the new rows of those who changed or joined.
/// Every other worker's row is the same in both (its digest or its values are).
pub(super) fn changed_rows(earlier: &Earlier, snapshot: &Snapshot) -> (StoredRows, StoredRows) {
    let alignment = &earlier.alignment;
    let mut before: Vec<WorkerId> = alignment
        .changed
        .iter()
        .filter_map(|&w| alignment.old[w])
        .collect();
    before.extend(left_of(alignment, earlier.snapshot.len()));
    (
        earlier.snapshot.rows_of(&before),
        snapshot.rows_of(&alignment.changed),
    )
}
