//! The orchestration of one run: fetch and choose the snapshot (with the failsafe), evaluate,
//! compare with the stored memberships, and record the run. The CPU work (loading the
//! export, evaluating, comparing) and `git` run on tokio's blocking threads, so that the
//! runtime's workers go on answering (the daemon's probes, API and console) meanwhile.

use std::sync::Arc;

use super::diff::total_members;
use super::warm::{self, Kept, Made, Warm};
use super::{failsafe, inputs_digest, run_changes_keeping, same_as_last_run, state_after};
use super::{CycleError, Inputs, Outcome};
use crate::directory::{self, ChangeKind, Schema, Snapshot};
use crate::engine;
use crate::store::{
    NewSnapshot, PackedRows, RowDigests, RunChanges, RunCommit, RunStatus, SnapshotChange,
    SnapshotStatus, SnapshotUse, Store, StoreError, SNAPSHOT_CHAIN,
};

/// Runs `work` (CPU work or a process) on tokio's blocking threads, within the current span;
/// a panic there is the caller's.
async fn off_runtime<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> T {
    let span = tracing::Span::current();
    match tokio::task::spawn_blocking(move || span.in_scope(work)).await {
        Ok(value) => value,
        Err(e) => std::panic::resume_unwind(e.into_panic()),
    }
}

/// The snapshot the cycle evaluates, and how the run refers to it.
struct Chosen {
    snapshot: Snapshot,
    usage: SnapshotUse,
    warning: Option<String>,
    /// Already made for the failsafe, when the snapshot is new.
    made: Option<Made>,
    /// What the last run kept, when nothing was evaluated yet.
    kept: Option<Kept>,
}

/// Refreshes, evaluates and records one run, from nothing kept: a process that runs once.
pub async fn run(inputs: &Inputs<'_>, store: &Store) -> Result<Outcome, CycleError> {
    run_warm(inputs, store, &mut Warm::default()).await
}

/// Refreshes, evaluates and records one run, from what the last run of this process kept
/// (see [`Warm`]), and keeps what the next one needs.
pub async fn run_warm(
    inputs: &Inputs<'_>,
    store: &Store,
    warm: &mut Warm,
) -> Result<Outcome, CycleError> {
    let started = crate::clock::stamp(inputs.now);
    let digests = Digests::of(inputs).await;
    let check_due = warm.check_due();
    let kept = warm.take();
    let every = warm.full_evaluation_every;
    let chosen = match choose_snapshot(inputs, store, &digests, kept, every).await {
        Ok(Choice::Evaluate(chosen)) => *chosen,
        // Held, or nothing to evaluate: the run is recorded already.
        Ok(Choice::Done(done, kept)) => {
            if let Some(kept) = kept {
                warm.keep(*kept, false);
            }
            if let Outcome::Applied { .. } = done {
                prune(inputs, store).await;
            }
            return Ok(done);
        }
        Err(e) => {
            record_failure(inputs, store, &digests, &started, &e).await?;
            return Err(e);
        }
    };
    let phase = Phase::start();
    // The state the last run of this process left, while no other run stored changes since:
    // it holds the kept evaluation's memberships.
    let (stored, kept_state) = match warm.take_state() {
        Some(state) if !check_due && state.last_run == store.newest_membership_run().await? => {
            (state, true)
        }
        _ => (store.member_state().await?, false),
    };
    phase.done("read the stored memberships");
    let Chosen {
        snapshot,
        usage,
        warning,
        made,
        kept,
    } = chosen;
    let (rules, as_of) = (Arc::clone(&inputs.rules), inputs.as_of);
    let compared = off_runtime(move || {
        let phase = Phase::start();
        let made = match made {
            Some(made) => made,
            None => warm::evaluate(kept, &snapshot, &rules, as_of, every)?,
        };
        phase.done("evaluate");
        let (violations, changes, memberships, rest) =
            compare(&snapshot, &rules, &made, stored, kept_state);
        Ok::<_, CycleError>((violations, changes, memberships, made, (snapshot, rest)))
    })
    .await;
    let (violations, changes, memberships, made, (snapshot, rest)) = match compared {
        Ok(compared) => compared,
        Err(e) => {
            record_failure(inputs, store, &digests, &started, &e).await?;
            return Err(e);
        }
    };
    let existing = match &usage {
        SnapshotUse::Existing(id) | SnapshotUse::Promote(id) => Some(*id),
        SnapshotUse::New(_) | SnapshotUse::None => None,
    };
    let commit = RunCommit {
        kind: inputs.kind.to_string(),
        started_at: started,
        finished_at: crate::clock::stamp(crate::clock::now_utc()),
        status: RunStatus::Succeeded,
        as_of: inputs.as_of,
        snapshot: usage,
        rules_commit: digests.commit.clone(),
        rules_digest: Some(digests.rules.clone()),
        inputs_digest: digests.inputs.clone(),
        group_count: inputs.rules.groups().len() as i64,
        membership_count: memberships as i64,
        changes,
        message: warning.clone(),
        violations: serde_json::to_string(&violations).ok(),
    };
    let phase = Phase::start();
    let (run_id, snapshot_id) = store.commit_run(&commit).await?;
    phase.done("store the run");
    if let Some(id) = snapshot_id.or(existing) {
        let incremental = made.earlier.is_some();
        let kept = Kept {
            snapshot_id: id,
            rules: Arc::clone(&inputs.rules),
            snapshot,
            evaluation: made.evaluation,
            since_full: made.since_full,
        };
        warm.keep(kept, incremental);
        warm.keep_state(state_after(rest, &commit.changes, run_id));
    }
    prune(inputs, store).await;
    Ok(Outcome::Applied {
        run_id,
        snapshot_id,
        added: commit.changes.added() as usize,
        removed: commit.changes.removed() as usize,
        memberships,
        warning,
        violations,
    })
}

/// The guardrails the evaluation breaks, and its changes from the `stored` state: only
/// among the workers it may have changed when the state is the one kept with the evaluation
/// it was made from.
fn compare(
    snapshot: &Snapshot,
    rules: &crate::rules::RuleSet,
    made: &Made,
    stored: crate::store::MemberState,
    kept_state: bool,
) -> (
    Vec<engine::guardrails::Violation>,
    RunChanges,
    usize,
    crate::store::MemberState,
) {
    let evaluation = &made.evaluation;
    let phase = Phase::start();
    let violations = engine::guardrails::check(snapshot, rules, evaluation);
    for v in &violations {
        tracing::warn!(
            guardrail = %v.guardrail,
            hold = v.hold,
            workers = v.count,
            "guardrail violated: {}",
            v.message
        );
    }
    phase.done("check the guardrails");
    let phase = Phase::start();
    let (changes, rest) = match made.among.as_ref().filter(|_| kept_state) {
        Some((workers, left)) => {
            let among = super::diff::Among { workers, left };
            super::diff::run_changes_among(snapshot, rules, evaluation, stored, &among)
        }
        None => run_changes_keeping(snapshot, rules, evaluation, stored),
    };
    phase.done("compare");
    (violations, changes, total_members(evaluation, rules), rest)
}

/// What [`choose_snapshot`] decided.
enum Choice {
    /// Evaluate this snapshot.
    Evaluate(Box<Chosen>),
    /// The run is over before any evaluation, and recorded: the failsafe holds the export, or
    /// nothing changed since the last run (and what was kept still holds).
    Done(Outcome, Option<Box<Kept>>),
}

/// Which snapshot this run evaluates: the export fetched now, the last good one when the
/// export cannot be had, or none (see [`Choice::Done`]).
async fn choose_snapshot(
    inputs: &Inputs<'_>,
    store: &Store,
    digests: &Digests,
    kept: Option<Kept>,
    every: u32,
) -> Result<Choice, CycleError> {
    let dir = &inputs.config.directory;
    let schema = Arc::new(Schema::from_config(dir));
    let phase = Phase::start();
    let text = match crate::fetch::export(&dir.source).await {
        Ok(text) => text,
        // It answered with what is not an export: the run fails, and says so.
        Err(e) if e.is_bad_answer() => return Err(e.into()),
        Err(e) => {
            return keep_last_good(store, schema, e, kept)
                .await
                .map(|c| Choice::Evaluate(Box::new(c)))
        }
    };
    let sum = directory::checksum(text.as_bytes());
    phase.done("read the export");
    let source = crate::fetch::source_name(&dir.source);
    let known = store.snapshot_by_checksum(&sum).await?;
    let usage = match &known {
        Some(s) if s.status == SnapshotStatus::Held => {
            let reason = format!(
                "snapshot {} is held: {}\nhelp: if the export is right, run `rosterd approve snapshot {}`",
                s.id,
                s.hold_reason.as_deref().unwrap_or("held by the failsafe"),
                s.id
            );
            let (run_id, _) =
                record_held(inputs, store, digests, SnapshotUse::Existing(s.id), &reason).await?;
            return Ok(Choice::Done(
                Outcome::Held {
                    run_id,
                    snapshot_id: s.id,
                    reason,
                },
                kept.map(Box::new),
            ));
        }
        Some(s) if s.status == SnapshotStatus::Current => {
            if let Some(done) = unchanged(inputs, store, digests, s.id).await? {
                return Ok(Choice::Done(done, kept.map(Box::new)));
            }
            Some(SnapshotUse::Existing(s.id))
        }
        Some(s) if s.status == SnapshotStatus::Approved => Some(SnapshotUse::Promote(s.id)),
        _ => None,
    };
    let (format, name, max_bad) = (
        dir.source.format(),
        source.clone(),
        dir.max_bad_rows_percent,
    );
    let (snapshot, report) = off_runtime(move || {
        let phase = Phase::start();
        let loaded = directory::load_from_str(&text, format, &name, schema, max_bad);
        phase.done("load the export");
        loaded
    })
    .await?;
    if let Some(usage) = usage {
        return Ok(Choice::Evaluate(Box::new(Chosen {
            snapshot,
            usage,
            warning: None,
            made: None,
            kept,
        })));
    }
    let fetched = Fetched {
        snapshot,
        report,
        source,
        sum,
    };
    choose_new(inputs, store, digests, kept, every, fetched).await
}

/// An export no snapshot has, loaded: its rows, what the load found, where it came from and
/// its checksum.
struct Fetched {
    snapshot: Snapshot,
    report: directory::LoadReport,
    source: String,
    sum: String,
}

/// [`choose_snapshot`] for an export no snapshot has: it is evaluated, and stored as the new
/// snapshot in force unless the failsafe holds it.
async fn choose_new(
    inputs: &Inputs<'_>,
    store: &Store,
    digests: &Digests,
    kept: Option<Kept>,
    every: u32,
    fetched: Fetched,
) -> Result<Choice, CycleError> {
    let Fetched {
        snapshot,
        report,
        source,
        sum,
    } = fetched;
    let dir = &inputs.config.directory;
    let current = store.current_snapshot().await?;
    let (rules, as_of) = (Arc::clone(&inputs.rules), inputs.as_of);
    let current_id = current.as_ref().map(|c| c.id);
    let chain = chain_of(current.as_ref());
    // A run that kept nothing of the snapshot in force finds the changed rows by the digests
    // stored with it, when its difference can be stored as one.
    let stored_digests = match chain {
        Some((id, _)) if kept.as_ref().is_none_or(|k| k.snapshot_id != id) => {
            store.snapshot_digests(id).await?.map(|d| (id, d))
        }
        _ => None,
    };
    let (snapshot, made, rows, row_digests) = off_runtime(move || {
        let phase = Phase::start();
        let made = warm::evaluate(kept, &snapshot, &rules, as_of, every)?;
        phase.done("evaluate");
        let rows = rows_to_store(&snapshot, &made, current_id, chain, stored_digests)?;
        let row_digests = snapshot
            .digest_form()
            .zip(snapshot.row_digests())
            .map(|(form, rows)| RowDigests::encode(form, rows));
        Ok::<_, CycleError>((snapshot, made, rows, row_digests))
    })
    .await?;
    let eligible = made.evaluation.eligible().count_ones(..) as i64;
    let hold_reason = failsafe(
        eligible,
        current.as_ref().map(|c| c.eligible),
        dir.failsafe.max_shrink_percent,
    );
    let (snapshot, worker_rows, base, changes) = match rows {
        None => {
            off_runtime(move || {
                let phase = Phase::start();
                let packed = PackedRows::pack_with(snapshot.len(), |workers| {
                    snapshot.rows_of(&workers.collect::<Vec<_>>())
                });
                let changes = joined(&snapshot);
                phase.done("serialize the first snapshot");
                (snapshot, packed, None, changes)
            })
            .await
        }
        Some(rows) => {
            let (worker_rows, base, changes) =
                stored_form(store, current.as_ref(), rows, &snapshot).await?;
            let worker_rows = off_runtime(move || PackedRows::pack(&worker_rows)).await;
            (snapshot, worker_rows, base, changes)
        }
    };
    let new = NewSnapshot {
        source,
        fetched_at: crate::clock::stamp(inputs.now),
        checksum: sum,
        rows: report.rows as i64,
        workers: snapshot.len() as i64,
        eligible,
        issues: report.issues.len() as i64,
        hold_reason: hold_reason.clone(),
        worker_rows,
        base,
        changes,
        digests: row_digests.filter(|_| hold_reason.is_none()),
    };
    if let Some(reason) = hold_reason {
        return Ok(Choice::Done(
            hold_new(inputs, store, digests, new, &reason).await?,
            None,
        ));
    }
    Ok(Choice::Evaluate(Box::new(Chosen {
        snapshot,
        usage: SnapshotUse::New(Box::new(new)),
        warning: None,
        made: Some(made),
        kept: None,
    })))
}

/// A new snapshot's rows to compare with the one in force `current_id`: only the rows that
/// changed when the kept snapshot is that one, or when its stored row digests tell which.
/// `None` when no snapshot is in force: every worker joins, and the caller stores the
/// snapshot whole, packed from its columns a chunk at a time (a million workers' rows are
/// never all made at once).
fn rows_to_store(
    snapshot: &Snapshot,
    made: &Made,
    current_id: Option<i64>,
    chain: Option<(i64, i64)>,
    stored: Option<(i64, RowDigests)>,
) -> Result<Option<Rows>, StoreError> {
    if current_id.is_none() {
        return Ok(None);
    }
    let phase = Phase::start();
    let rows = match made.earlier.as_ref() {
        Some(e) if Some(e.snapshot_id) == current_id => {
            let (before, after) = warm::changed_rows(e, snapshot);
            let changes = directory::diff_rows(&before, &after);
            let total = snapshot.len();
            Rows::Form(form_of(changes, &after, total, chain, || {
                snapshot.to_rows()
            }))
        }
        _ => match stored {
            Some((id, digests)) => changed_by_digests(snapshot, id, &digests)?,
            None => None,
        }
        .unwrap_or_else(|| Rows::All(snapshot.to_rows())),
    };
    phase.done("serialize the snapshot");
    Ok(Some(rows))
}

/// [`Rows::Among`], from the row digests stored with snapshot `id`, the one in force: `None`
/// when they cannot be compared (made in another form), or when the difference would not
/// be stored as one (half the export or more changed).
fn changed_by_digests(
    snapshot: &Snapshot,
    id: i64,
    digests: &RowDigests,
) -> Result<Option<Rows>, StoreError> {
    let stored = digests.decode()?;
    let Some((changed, keys)) = snapshot.changed_from_digests(&stored, &digests.form) else {
        return Ok(None);
    };
    if changed.len() * 2 > snapshot.len() {
        return Ok(None);
    }
    tracing::debug!(
        changed = changed.len(),
        workers = snapshot.len(),
        "found the rows that changed by their digests"
    );
    Ok(Some(Rows::Among {
        of: id,
        after: snapshot.rows_of(&changed),
        before: keys.into_iter().map(str::to_string).collect(),
    }))
}

/// A new snapshot's rows, to compare with the one in force.
enum Rows {
    /// Every worker's.
    All(Vec<(String, String)>),
    /// The stored form already made from the rows of the workers who changed, joined or
    /// left ([`warm::changed_rows`]): the others are the same in both.
    Form(StoredForm),
    /// The rows of the workers who changed or joined, and the keys of the workers whose
    /// stored rows of snapshot `of` to compare them with (those who changed or left): every
    /// other worker's row has the digest it had ([`changed_by_digests`]).
    Among {
        of: i64,
        after: Vec<(String, String)>,
        before: Vec<String>,
    },
}

/// The rows a new snapshot is stored with, the snapshot it is a difference from (and the
/// depth of that difference), and its changes from the current one: stored as its
/// difference (the workers who joined or changed) unless the chain of differences is long or
/// the difference is most of the export; then whole.
async fn stored_form(
    store: &Store,
    current: Option<&crate::store::SnapshotInfo>,
    rows: Rows,
    snapshot: &Snapshot,
) -> Result<StoredForm, CycleError> {
    let chain = chain_of(current);
    let phase = Phase::start();
    let (before, rows) = match (rows, current) {
        (Rows::Form(form), _) => return Ok(form),
        (Rows::Among { of, after, before }, _) => {
            let keys: std::collections::HashSet<&str> = before.iter().map(String::as_str).collect();
            let before = store.snapshot_workers_among(of, Some(&keys)).await?;
            phase.done("read the changed rows of the current snapshot");
            let changes = directory::diff_rows(&before, &after);
            return Ok(form_of(changes, &after, snapshot.len(), chain, || {
                snapshot.to_rows()
            }));
        }
        (Rows::All(rows), Some(c)) => (store.snapshot_workers(c.id).await?, rows),
        (Rows::All(rows), None) => (Vec::new(), rows),
    };
    phase.done("read the current snapshot");
    Ok(off_runtime(move || {
        let phase = Phase::start();
        let changes = directory::diff_rows(&before, &rows);
        drop(before);
        let total = rows.len();
        let (changed, base) = changed_or_whole(&changes, &rows, total, chain);
        // Stored whole (a first snapshot, or a long chain): the rows themselves, not a copy.
        let form = (changed.unwrap_or(rows), base, snapshot_changes(changes));
        phase.done("compare with the current snapshot");
        form
    })
    .await)
}

/// How deep a new snapshot's difference would be, and from which snapshot: `None` when it
/// must be stored whole.
fn chain_of(current: Option<&crate::store::SnapshotInfo>) -> Option<(i64, i64)> {
    current
        .filter(|c| c.depth + 1 < SNAPSHOT_CHAIN)
        .map(|c| (c.id, c.depth + 1))
}

/// [`stored_form`] from the changes already found: the `rows` that changed or joined (a
/// superset of them will do), stored as a difference from `chain` when they are at most half
/// of the `total` workers, else the rows `whole` gives.
fn form_of(
    changes: Vec<directory::WorkerChange>,
    rows: &[(String, String)],
    total: usize,
    chain: Option<(i64, i64)>,
    whole: impl FnOnce() -> Vec<(String, String)>,
) -> StoredForm {
    let (changed, base) = changed_or_whole(&changes, rows, total, chain);
    (
        changed.unwrap_or_else(whole),
        base,
        snapshot_changes(changes),
    )
}

/// The rows of the workers who joined or changed, and the base they are a difference from,
/// when they are at most half of the `total` workers and `chain` allows a difference; `None`
/// and no base when the snapshot is stored whole.
fn changed_or_whole(
    changes: &[directory::WorkerChange],
    rows: &[(String, String)],
    total: usize,
    chain: Option<(i64, i64)>,
) -> (Option<KeyedRows>, Option<(i64, i64)>) {
    // The workers who joined or changed, from the diff just made.
    let touched: std::collections::HashSet<&str> = changes
        .iter()
        .filter(|c| c.change != ChangeKind::Left)
        .map(|c| c.key.as_str())
        .collect();
    match chain {
        Some(base) if touched.len() * 2 <= total => {
            let changed = rows
                .iter()
                .filter(|(key, _)| touched.contains(key.as_str()))
                .cloned()
                .collect();
            (Some(changed), Some(base))
        }
        _ => (None, None),
    }
}

/// A first snapshot's changes: every worker joined, by key (as [`directory::diff_rows`] from
/// nothing gives them).
fn joined(snapshot: &Snapshot) -> Vec<SnapshotChange> {
    let mut keys: Vec<&str> = (0..snapshot.len()).map(|w| snapshot.key(w)).collect();
    keys.sort_unstable();
    keys.into_iter()
        .map(|key| SnapshotChange {
            worker_key: key.to_string(),
            change: ChangeKind::Joined,
            attribute: None,
            old_value: None,
            new_value: None,
        })
        .collect()
}

fn snapshot_changes(changes: Vec<directory::WorkerChange>) -> Vec<SnapshotChange> {
    changes
        .into_iter()
        .map(|c| SnapshotChange {
            worker_key: c.key,
            change: c.change,
            attribute: c.attribute,
            old_value: c.old_value,
            new_value: c.new_value,
        })
        .collect()
}

/// Workers' rows as the store keeps them: key, attributes as JSON.
type KeyedRows = Vec<(String, String)>;

/// What [`stored_form`] gives: the rows, the base and depth, the changes.
type StoredForm = (
    Vec<(String, String)>,
    Option<(i64, i64)>,
    Vec<SnapshotChange>,
);

/// Applies `retention` after a run that succeeded. A failure is logged, not the run's: the
/// run is stored, and the next one tries again.
async fn prune(inputs: &Inputs<'_>, store: &Store) {
    let retention = &inputs.config.retention;
    let before = |days: u32| crate::clock::stamp(inputs.now - chrono::Duration::days(days.into()));
    let now = crate::clock::stamp(inputs.now);
    match store
        .prune(
            &before(retention.snapshot_days),
            &before(retention.run_days),
            &now,
        )
        .await
    {
        Ok(pruned) if pruned.snapshots + pruned.runs > 0 => tracing::info!(
            snapshots = pruned.snapshots,
            runs = pruned.runs,
            "retention: removed the workers of old snapshots and old runs that changed nothing"
        ),
        Ok(_) => {}
        Err(e) => tracing::warn!("retention: {e}"),
    }
}

/// A part of a run, timed for `-v` (a run's cost should follow its change; this shows where
/// it goes).
struct Phase(std::time::Instant);

impl Phase {
    fn start() -> Self {
        Phase(std::time::Instant::now())
    }

    fn done(self, what: &str) {
        tracing::debug!(
            phase = what,
            ms = self.0.elapsed().as_secs_f64() * 1e3,
            "run phase done"
        );
    }
}

/// What a run records of its inputs, made once per run: reading and hashing every rule file
/// is not free, and the commit takes `git`.
struct Digests {
    /// [`crate::rules::RuleSet::digest`].
    rules: String,
    /// [`inputs_digest`].
    inputs: Option<String>,
    /// The rules folder's commit ([`crate::revision::git_commit`]).
    commit: Option<String>,
}

impl Digests {
    async fn of(inputs: &Inputs<'_>) -> Self {
        let (config, rules, as_of) = (
            Arc::clone(&inputs.config),
            Arc::clone(&inputs.rules),
            inputs.as_of,
        );
        off_runtime(move || {
            let digest = rules.digest(&config.rules.dir);
            Digests {
                inputs: inputs_digest(&config, &digest, as_of),
                rules: digest,
                commit: crate::revision::git_commit(&config.rules.dir),
            }
        })
        .await
    }
}

/// When the last succeeded run evaluated this same snapshot with the same inputs, the run is
/// recorded as such, and nothing is loaded, evaluated or compared: an unchanged export costs
/// its read and its checksum.
async fn unchanged(
    inputs: &Inputs<'_>,
    store: &Store,
    digests: &Digests,
    snapshot_id: i64,
) -> Result<Option<Outcome>, StoreError> {
    let Some(last) = same_as_last_run(store, snapshot_id, digests.inputs.as_deref()).await? else {
        return Ok(None);
    };
    let message = format!(
        "unchanged: the export, the rules, the config and the date are those of run {}; nothing was evaluated",
        last.id
    );
    let mut commit = bare_run(
        inputs,
        digests,
        RunStatus::Succeeded,
        SnapshotUse::Existing(snapshot_id),
        &message,
    );
    commit.membership_count = last.memberships;
    commit.inputs_digest = digests.inputs.clone();
    // The same inputs break the same guardrails as the run they repeat.
    let violations = store.current_violations().await?;
    let (run_id, _) = store.commit_run(&commit).await?;
    Ok(Some(Outcome::Applied {
        run_id,
        snapshot_id: Some(snapshot_id),
        added: 0,
        removed: 0,
        memberships: usize::try_from(last.memberships).unwrap_or(0),
        warning: None,
        violations,
    }))
}

/// The export could not be read: evaluate the last good snapshot instead.
async fn keep_last_good(
    store: &Store,
    schema: Arc<Schema>,
    error: crate::fetch::FetchError,
    kept: Option<Kept>,
) -> Result<Chosen, CycleError> {
    let Some(current) = store.current_snapshot().await? else {
        return Err(error.into());
    };
    let warning = Some(format!(
        "{error}: evaluated the last good snapshot {}",
        current.id
    ));
    // The snapshot in force is the one kept: nothing to read back.
    if let Some(kept) = kept.filter(|k| k.snapshot_id == current.id) {
        return Ok(Chosen {
            snapshot: kept.snapshot.clone(),
            usage: SnapshotUse::Existing(current.id),
            warning,
            made: None,
            kept: Some(kept),
        });
    }
    let rows = store.snapshot_workers(current.id).await?;
    let snapshot = off_runtime(move || Snapshot::from_rows_json(schema, &rows))
        .await
        .map_err(|message| CycleError::Corrupt {
            id: current.id,
            message,
        })?;
    Ok(Chosen {
        snapshot,
        usage: SnapshotUse::Existing(current.id),
        warning,
        made: None,
        kept: None,
    })
}

/// Records a run that the failsafe held on the new snapshot `new`, for `reason`.
async fn hold_new(
    inputs: &Inputs<'_>,
    store: &Store,
    digests: &Digests,
    new: NewSnapshot,
    reason: &str,
) -> Result<Outcome, StoreError> {
    let (run_id, snapshot_id) = record_held(
        inputs,
        store,
        digests,
        SnapshotUse::New(Box::new(new)),
        reason,
    )
    .await?;
    let reason = format!(
        "{reason}\nhelp: if the export is right, run `rosterd approve snapshot {snapshot_id}`"
    );
    Ok(Outcome::Held {
        run_id,
        snapshot_id,
        reason,
    })
}

async fn record_held(
    inputs: &Inputs<'_>,
    store: &Store,
    digests: &Digests,
    snapshot: SnapshotUse,
    reason: &str,
) -> Result<(i64, i64), StoreError> {
    let commit = bare_run(inputs, digests, RunStatus::Held, snapshot, reason);
    let (run_id, snapshot_id) = store.commit_run(&commit).await?;
    // A held run always names the snapshot it holds.
    Ok((run_id, snapshot_id.unwrap_or_default()))
}

async fn record_failure(
    inputs: &Inputs<'_>,
    store: &Store,
    digests: &Digests,
    started: &str,
    e: &CycleError,
) -> Result<(), StoreError> {
    let mut commit = bare_run(
        inputs,
        digests,
        RunStatus::Failed,
        SnapshotUse::None,
        &e.to_string(),
    );
    commit.started_at = started.to_string();
    store.commit_run(&commit).await.map(|_| ())
}

fn bare_run(
    inputs: &Inputs<'_>,
    digests: &Digests,
    status: RunStatus,
    snapshot: SnapshotUse,
    message: &str,
) -> RunCommit {
    RunCommit {
        kind: inputs.kind.to_string(),
        started_at: crate::clock::stamp(inputs.now),
        finished_at: crate::clock::stamp(crate::clock::now_utc()),
        status,
        as_of: inputs.as_of,
        snapshot,
        rules_commit: digests.commit.clone(),
        rules_digest: Some(digests.rules.clone()),
        inputs_digest: None,
        group_count: inputs.rules.groups().len() as i64,
        membership_count: 0,
        changes: RunChanges::default(),
        message: Some(message.to_string()),
        violations: None,
    }
}
