//! The orchestration of one run: fetch and choose the snapshot (with the failsafe), evaluate,
//! compare with the stored memberships, and record the run. The CPU work (loading the
//! export, evaluating, comparing) and `git` run on tokio's blocking threads, so that the
//! runtime's workers go on answering (the daemon's probes, API and console) meanwhile.

use std::sync::Arc;

use super::cold::{self, Vouched};
use super::diff::total_members;
use super::stored::{chain_of, changed_ahead, rows_to_store, stored_form};
use super::warm::{self, Kept, Made, Warm};
use super::{failsafe, inputs_digest, run_changes_keeping, same_as_last_run, state_after};
use super::{off_runtime, Ahead, Phase};
use super::{CycleError, Inputs, Outcome};
use crate::directory::{self, Schema, Snapshot};
use crate::engine;
use crate::store::{
    MemberState, NewSnapshot, PackedRows, RowDigests, RunChanges, RunCommit, RunStatus,
    SnapshotStatus, SnapshotUse, Store, StoreError,
};

/// The snapshot the cycle evaluates, and how the run refers to it.
struct Chosen {
    snapshot: Snapshot,
    /// What the snapshot's load left, when it was loaded from the export.
    memo: Option<directory::LoadMemo>,
    usage: SnapshotUse,
    warning: Option<String>,
    /// Already made for the failsafe, when the snapshot is new.
    made: Option<Made>,
    /// What the last run kept, when nothing was evaluated yet.
    kept: Option<Kept>,
    /// For a run that starts cold, when the store vouches that its memberships are the
    /// snapshot in force's evaluation: `made.among` is then the workers to compare.
    vouched: Option<Vouched>,
    /// The stored memberships, being read since the export's load began, when the run
    /// kept none it can use: a run that kept none (a process that runs once, a daemon's
    /// first or checked run) needs them only after its evaluation, and reading them after
    /// it took a fifth of a one-shot `evaluate` after a 1% change.
    stored: Option<Ahead<MemberState>>,
}

/// Refreshes, evaluates and records one run, from nothing kept: a process that runs once.
pub async fn run(inputs: &Inputs<'_>, store: &Store) -> Result<Outcome, CycleError> {
    run_warm(inputs, store, &mut Warm::default()).await
}

/// [`run`] in a process that exits after it (`rosterd evaluate`): what the run would keep
/// for a next one is left to the exit to free. Dropping a million workers' snapshot,
/// evaluation and stored memberships, value by value, took 0.4 s of a 7 s run.
pub async fn run_once(inputs: &Inputs<'_>, store: &Store) -> Result<Outcome, CycleError> {
    let mut warm = Warm::default();
    let outcome = run_warm(inputs, store, &mut warm).await;
    std::mem::forget(warm);
    outcome
}

/// Refreshes, evaluates and records one run, from what the last run of this process kept
/// (see [`Warm`]), and keeps what the next one needs.
pub async fn run_warm(
    inputs: &Inputs<'_>,
    store: &Store,
    warm: &mut Warm,
) -> Result<Outcome, CycleError> {
    let started = crate::clock::stamp(inputs.now);
    let (digests, fetched) = fetch(inputs).await;
    let mut kept_state = usable_state(warm, store).await?;
    let (kept, every) = (warm.take(), warm.full_evaluation_every);
    let prefetch = kept_state.is_none();
    let chosen = choose_snapshot(inputs, store, &digests, fetched, (kept, every), prefetch).await;
    if !matches!(chosen, Ok(Choice::Evaluate(_))) {
        // Held, nothing to evaluate, or failed: the state stays kept for the next run.
        if let Some(state) = kept_state.take() {
            warm.keep_state(state);
        }
    }
    let chosen = match chosen {
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
    let Chosen {
        snapshot,
        memo,
        usage,
        warning,
        made,
        kept,
        vouched,
        stored,
    } = chosen;
    let from_kept = kept_state.is_some();
    let stored = match (kept_state, stored) {
        (Some(state), _) => state,
        (None, Some(read)) => read.result().await?,
        (None, None) => store.member_state().await?,
    };
    let scope = Scope::of(vouched, &stored, from_kept);
    let (rules, as_of) = (Arc::clone(&inputs.rules), inputs.as_of);
    let compared = off_runtime(move || {
        let phase = Phase::start();
        let made = match made {
            Some(made) => made,
            None => warm::evaluate(kept, &snapshot, &rules, as_of, every)?,
        };
        phase.done("evaluate");
        let (violations, changes, counts, rest) = compare(&snapshot, &rules, &made, stored, scope)?;
        Ok::<_, CycleError>((violations, changes, counts, made, (snapshot, rest)))
    })
    .await;
    let (violations, changes, (memberships, compared), made, (snapshot, rest)) = match compared {
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
            memo,
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
        compared,
    })
}

/// Which workers a run compares with the stored memberships.
#[derive(Debug, Clone, Copy)]
enum Scope {
    Everyone,
    /// Those of `made.among` (when there is one), and everyone as well when `check`.
    Among {
        check: bool,
    },
}

impl Scope {
    /// Only the workers a change reaches are compared when the state read is the one the
    /// evaluation they were found from was compared with: kept with it (`kept_state`), or
    /// vouched for by the store.
    fn of(vouched: Option<Vouched>, stored: &crate::store::MemberState, kept_state: bool) -> Scope {
        match vouched.filter(|v| v.holds(stored)) {
            Some(v) => Scope::Among { check: v.check },
            None if kept_state => Scope::Among { check: false },
            None => Scope::Everyone,
        }
    }
}

/// What [`compare`] gives: the guardrails broken, the changes, the memberships and the
/// workers compared ([`Outcome::Applied`]'s), and the stored state the changes leave.
type Compared = (
    Vec<engine::guardrails::Violation>,
    RunChanges,
    (usize, Option<usize>),
    crate::store::MemberState,
);

/// The guardrails the evaluation breaks, and its changes from the `stored` state: only
/// among the workers it may have changed when `scope` says the state is the one the
/// evaluation they were found from was compared with.
fn compare(
    snapshot: &Snapshot,
    rules: &crate::rules::RuleSet,
    made: &Made,
    stored: crate::store::MemberState,
    scope: Scope,
) -> Result<Compared, CycleError> {
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
    let ((changes, rest), compared) = match (made.among.as_ref(), scope) {
        (Some((workers, left)), Scope::Among { check }) => {
            let among = super::diff::Among { workers, left };
            let compared = if check {
                cold::checked(snapshot, rules, evaluation, stored, &among)?
            } else {
                super::diff::run_changes_among(snapshot, rules, evaluation, stored, &among)
            };
            (compared, Some(workers.len()))
        }
        _ => (
            run_changes_keeping(snapshot, rules, evaluation, stored),
            None,
        ),
    };
    phase.done("compare");
    let counts = (total_members(evaluation, rules), compared);
    Ok((violations, changes, counts, rest))
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
    fetched: Result<(String, String), crate::fetch::FetchError>,
    (kept, every): (Option<Kept>, u32),
    prefetch: bool,
) -> Result<Choice, CycleError> {
    let dir = &inputs.config.directory;
    let schema = Arc::new(Schema::from_config(dir));
    let (text, sum) = match fetched {
        Ok(fetched) => fetched,
        // It answered with what is not an export: the run fails, and says so.
        Err(e) if e.is_bad_answer() => return Err(e.into()),
        Err(e) => {
            return keep_last_good(store, schema, e, kept)
                .await
                .map(|c| Choice::Evaluate(Box::new(c)))
        }
    };
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
    let export = warm::Export {
        text,
        format: dir.source.format(),
        name: source.clone(),
        schema,
        max_bad_rows_percent: dir.max_bad_rows_percent,
    };
    let stored = prefetch.then(|| {
        let store = store.clone();
        Ahead::start(
            "read the stored memberships (while the export loads)",
            async move { store.member_state().await },
        )
    });
    let (loaded, kept) = off_runtime(move || {
        let phase = Phase::start();
        let loaded = warm::load(kept, &export, every);
        phase.done("load the export");
        loaded
    })
    .await;
    let directory::Loaded {
        snapshot,
        report,
        memo,
        ..
    } = loaded?;
    if let Some(usage) = usage {
        return Ok(Choice::Evaluate(Box::new(Chosen {
            snapshot,
            memo: Some(memo),
            usage,
            warning: None,
            made: None,
            kept,
            vouched: None,
            stored,
        })));
    }
    let fetched = Fetched {
        snapshot,
        memo,
        report,
        source,
        sum,
    };
    choose_new(inputs, store, digests, (kept, stored), every, fetched).await
}

/// An export no snapshot has, loaded: its rows, what the load found, where it came from and
/// its checksum.
struct Fetched {
    snapshot: Snapshot,
    memo: directory::LoadMemo,
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
    (kept, stored): (Option<Kept>, Option<Ahead<MemberState>>),
    every: u32,
    fetched: Fetched,
) -> Result<Choice, CycleError> {
    let Fetched {
        snapshot,
        memo,
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
    // Compared with the stored rows by their digests, a cold run may compare only the
    // workers the change reaches, when the store vouches for its memberships.
    let vouched = match &stored_digests {
        Some(_) => {
            let every = inputs.config.daemon.full_evaluation_every;
            Vouched::by(store, current_id, digests.inputs.as_deref(), every).await?
        }
        None => None,
    };
    let (snapshot, early) = changed_ahead(store, snapshot, stored_digests).await?;
    let (snapshot, mut made, rows, row_digests) = off_runtime(move || {
        let phase = Phase::start();
        let made = warm::evaluate(kept, &snapshot, &rules, as_of, every)?;
        phase.done("evaluate");
        let rows = early.or_else(|| rows_to_store(&snapshot, &made, current_id, chain));
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
    // `vouched` holds on only where the workers to compare were found.
    let (snapshot, worker_rows, base, changes, vouched) = match rows {
        None => {
            let (snapshot, packed) = pack_first(snapshot).await;
            // Every worker joined: the snapshot's rows say so, without a row each.
            (snapshot, packed, None, Vec::new(), None)
        }
        Some(rows) => {
            let ((worker_rows, base, changes), earlier) =
                stored_form(store, current.as_ref(), rows, &snapshot).await?;
            let (rules, earlier) = (
                Arc::clone(&inputs.rules),
                earlier.filter(|_| vouched.is_some()),
            );
            let (snapshot, worker_rows, among) = off_runtime(move || {
                let among = earlier.map(|(of, changed, before)| {
                    cold::among(&snapshot, &changed, (of, &before), &rules, as_of)
                });
                (snapshot, PackedRows::pack(&worker_rows), among)
            })
            .await;
            let vouched = match among {
                Some(among) => {
                    made.among = Some(among?);
                    vouched
                }
                None => None,
            };
            (snapshot, worker_rows, base, changes, vouched)
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
        memo: Some(memo),
        usage: SnapshotUse::New(Box::new(new)),
        warning: None,
        made: Some(made),
        kept: None,
        vouched,
        stored,
    })))
}

/// A first snapshot's rows, packed from its columns a chunk at a time (a million workers'
/// rows are never all made at once).
async fn pack_first(snapshot: Snapshot) -> (Snapshot, PackedRows) {
    off_runtime(move || {
        let phase = Phase::start();
        let packed = PackedRows::pack_with(snapshot.len(), |workers| {
            snapshot.rows_of(&workers.collect::<Vec<_>>())
        });
        phase.done("serialize the first snapshot");
        (snapshot, packed)
    })
    .await
}

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

/// The stored memberships as the last run of this process left them, while no other run
/// stored changes since and no check is due: they hold the kept evaluation's memberships. (A
/// run storing changes meanwhile fails this one's commit, as ever.) Without them, the run
/// reads the stored state while the export loads ([`Chosen::stored`]).
async fn usable_state(warm: &mut Warm, store: &Store) -> Result<Option<MemberState>, StoreError> {
    let check_due = warm.check_due();
    Ok(match warm.take_state() {
        Some(state) if !check_due && state.last_run == store.newest_membership_run().await? => {
            Some(state)
        }
        _ => None,
    })
}

/// The export and its checksum, read while the run's digests are made (the rules', and
/// `git`'s commit of them): neither waits for the other.
async fn fetch(
    inputs: &Inputs<'_>,
) -> (Digests, Result<(String, String), crate::fetch::FetchError>) {
    let read = async {
        let phase = Phase::start();
        let text = crate::fetch::export(&inputs.config.directory.source).await?;
        let fetched = off_runtime(move || {
            let sum = directory::checksum(text.as_bytes());
            (text, sum)
        })
        .await;
        phase.done("read the export");
        Ok(fetched)
    };
    tokio::join!(Digests::of(inputs), read)
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
        compared: None,
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
            memo: None,
            usage: SnapshotUse::Existing(current.id),
            warning,
            made: None,
            kept: Some(kept),
            vouched: None,
            stored: None,
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
        memo: None,
        usage: SnapshotUse::Existing(current.id),
        warning,
        made: None,
        kept: None,
        vouched: None,
        stored: None,
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
