//! Runs, the current memberships, and the append-only audit of every membership change, from
//! which `history` reconstructs any past date.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use serde::Serialize;
use sqlx::any::AnyRow;
// Dynamic SQL here is only constants and `$N` placeholders; values are always bound.
use sqlx::AssertSqlSafe;
use sqlx::Row;

use super::members::{self, GroupDelta, GroupState};
use super::snapshots::{self, NewSnapshot};
use super::{Backend, Store, StoreError};

use super::text::{RunOutcome, RunStatus};

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Membership {
    /// `rule`, `include` or `member`.
    pub reason: String,
    pub since_run: i64,
}

/// One membership change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Change {
    pub group: String,
    pub worker: String,
    pub added: bool,
    pub reason: String,
}

/// The newest run whose membership changes (or a checkpoint) are stored.
const NEWEST_MEMBERSHIP_RUN: &str =
    "SELECT COALESCE(MAX(m), 0) FROM (SELECT MAX(run_id) AS m FROM group_changes \
     UNION ALL SELECT MAX(run_id) AS m FROM group_checkpoints) n";

/// Which snapshot a run used.
#[derive(Debug, Clone)]
pub enum SnapshotUse {
    /// None (a failed run before any snapshot).
    None,
    /// A new snapshot, stored with the run.
    New(Box<NewSnapshot>),
    /// One already stored and current.
    Existing(i64),
    /// An approved snapshot that becomes current with this run.
    Promote(i64),
}

/// Everything a run writes, committed at once.
#[derive(Debug, Clone)]
pub struct RunCommit {
    pub kind: String,
    pub started_at: String,
    pub finished_at: String,
    pub status: RunStatus,
    pub as_of: NaiveDate,
    pub snapshot: SnapshotUse,
    pub rules_commit: Option<String>,
    pub rules_digest: Option<String>,
    /// The rule files, the config file and the evaluation date, digested together.
    pub inputs_digest: Option<String>,
    pub group_count: i64,
    pub membership_count: i64,
    /// The changes, made against the state after run `base_run`.
    pub changes: RunChanges,
    pub message: Option<String>,
    /// The guardrails the evaluation broke, as JSON; `None` for a run that did not evaluate.
    pub violations: Option<String>,
}

/// A run's membership changes, as [`super::members`] stores them.
#[derive(Debug, Clone, Default)]
pub struct RunChanges {
    /// The newest run in the state the changes were made against ([`super::MemberState::last_run`]):
    /// if another run was stored since, these changes are refused.
    pub base_run: i64,
    /// Workers numbered by this run.
    pub new_workers: Vec<(u32, String)>,
    /// Per group changed, by group name.
    pub deltas: Vec<GroupDelta>,
    /// The groups due a checkpoint, with their state before the run (the run's changes are
    /// folded in when the run has its id).
    pub checkpoints: Vec<(String, GroupState)>,
}

impl RunChanges {
    pub fn added(&self) -> u64 {
        self.deltas.iter().map(|d| d.added.len()).sum()
    }

    pub fn removed(&self) -> u64 {
        self.deltas.iter().map(|d| d.removed.len()).sum()
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct RunInfo {
    pub id: i64,
    pub kind: String,
    pub started_at: String,
    pub finished_at: String,
    pub status: RunStatus,
    pub as_of: String,
    pub snapshot_id: Option<i64>,
    pub rules_commit: Option<String>,
    pub rules_digest: Option<String>,
    pub groups: i64,
    pub memberships: i64,
    pub added: i64,
    pub removed: i64,
    pub message: Option<String>,
    #[serde(skip)]
    pub inputs_digest: Option<String>,
    /// What the run did as a whole (see [`RunOutcome`]), why, and what each target was
    /// sent; filled by [`Store::runs_told`], by the status alone elsewhere.
    pub outcome: RunOutcome,
    pub outcome_reason: Option<String>,
    pub pushed: Option<serde_json::Value>,
}

/// One change of one worker in one group, for a worker's timeline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HistoryEntry {
    pub run_id: i64,
    pub as_of: String,
    pub added: bool,
    pub reason: String,
}

const RUN_COLUMNS: &str =
    "id, kind, started_at, finished_at, status, as_of, snapshot_id, rules_commit, \
                           rules_digest, group_count, membership_count, added, removed, message";

fn run_info(row: &AnyRow) -> Result<RunInfo, sqlx::Error> {
    let status = RunStatus::parse(&row.try_get::<String, _>("status")?)?;
    Ok(RunInfo {
        id: row.try_get::<i64, _>("id")?,
        kind: row.try_get("kind")?,
        started_at: row.try_get("started_at")?,
        finished_at: row.try_get("finished_at")?,
        status,
        as_of: row.try_get("as_of")?,
        snapshot_id: row.try_get("snapshot_id")?,
        rules_commit: row.try_get("rules_commit")?,
        rules_digest: row.try_get("rules_digest")?,
        groups: row.try_get::<i64, _>("group_count")?,
        memberships: row.try_get::<i64, _>("membership_count")?,
        added: row.try_get::<i64, _>("added")?,
        removed: row.try_get::<i64, _>("removed")?,
        message: row.try_get("message")?,
        // Read where selected (`last_succeeded_run`): `runs` leaves it out, so that a `plan`
        // by a newer rosterd can still list the runs of a database not yet migrated.
        inputs_digest: row.try_get("inputs_digest").ok().flatten(),
        outcome: RunOutcome::of_status(status),
        outcome_reason: None,
        pushed: None,
    })
}

impl Store {
    /// The guardrail violations of the newest succeeded run that evaluated: the state in
    /// force. Empty when no run evaluated yet, or the stored list cannot be read as `T`s.
    pub async fn current_violations<T: serde::de::DeserializeOwned>(
        &self,
    ) -> Result<Vec<T>, StoreError> {
        let row = sqlx::query(
            "SELECT violations FROM runs WHERE status = 'succeeded' AND violations IS NOT NULL \
             ORDER BY id DESC LIMIT 1",
        )
        .fetch_optional(self.pool())
        .await?;
        let Some(row) = row else {
            return Ok(Vec::new());
        };
        let json: Option<String> = row.try_get(0)?;
        // A list that cannot be read is an error: read as empty, it would release the holds
        // the broken guardrails put on pushes.
        json.map_or(Ok(Vec::new()), |json| {
            serde_json::from_str(&json)
                .map_err(|e| super::error::corrupt("the guardrail violations of the last run", e))
        })
    }

    /// Writes the run, its snapshot and its membership changes in one transaction. Returns
    /// the run's id and the id of the snapshot it used.
    pub async fn commit_run(&self, run: &RunCommit) -> Result<(i64, Option<i64>), StoreError> {
        let (_writing, mut tx) = self.begin_write().await?;
        let timer = std::time::Instant::now();
        let snapshot_id = match &run.snapshot {
            SnapshotUse::None => None,
            SnapshotUse::New(new) => Some(snapshots::insert(&mut tx, self.backend, new).await?),
            SnapshotUse::Existing(id) => Some(*id),
            SnapshotUse::Promote(id) => {
                snapshots::promote(&mut tx, *id).await?;
                Some(*id)
            }
        };
        let changes = &run.changes;
        if !changes.deltas.is_empty() || !changes.new_workers.is_empty() {
            if self.backend == Backend::Postgres {
                // Run commits take turns (SQLite's writers always do).
                sqlx::query("SELECT pg_advisory_xact_lock($1)")
                    .bind(RUN_COMMIT_LOCK)
                    .execute(&mut *tx)
                    .await?;
            }
            let newest: i64 = sqlx::query(NEWEST_MEMBERSHIP_RUN)
                .fetch_one(&mut *tx)
                .await?
                .try_get(0)?;
            if newest != changes.base_run {
                return Err(StoreError::Conflict(format!(
                    "run {newest} changed the memberships after this run read them (after run {}): \
                     nothing was stored; run again",
                    changes.base_run
                )));
            }
        }
        let added = changes.added() as i64;
        let removed = changes.removed() as i64;
        let row = sqlx::query(
            "INSERT INTO runs (kind, started_at, finished_at, status, as_of, snapshot_id, rules_commit, \
             rules_digest, group_count, membership_count, added, removed, message, inputs_digest, violations) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15) RETURNING id",
        )
        .bind(&run.kind)
        .bind(&run.started_at)
        .bind(&run.finished_at)
        .bind(run.status.as_str())
        .bind(run.as_of.to_string())
        .bind(snapshot_id)
        .bind(run.rules_commit.as_deref())
        .bind(run.rules_digest.as_deref())
        .bind(run.group_count)
        .bind(run.membership_count)
        .bind(added)
        .bind(removed)
        .bind(run.message.as_deref().map(bounded_message))
        .bind(run.inputs_digest.as_deref())
        .bind(run.violations.as_deref())
        .fetch_one(&mut *tx)
        .await?;
        let run_id = row.try_get::<i64, _>("id")?;
        let snapshot_ms = timer.elapsed().as_secs_f64() * 1e3;
        members::insert_workers(&mut tx, self.backend, &changes.new_workers).await?;
        let workers_ms = timer.elapsed().as_secs_f64() * 1e3;
        let deltas: Vec<(i64, &GroupDelta)> = changes.deltas.iter().map(|d| (run_id, d)).collect();
        members::insert_deltas(&mut tx, self.backend, &deltas).await?;
        let deltas_ms = timer.elapsed().as_secs_f64() * 1e3;
        for (group, before) in &changes.checkpoints {
            let mut state = before.clone();
            // The deltas are by group name.
            if let Ok(at) = changes
                .deltas
                .binary_search_by(|d| d.group.as_str().cmp(group.as_str()))
            {
                state.apply(run_id, &changes.deltas[at]);
            }
            members::write_checkpoint(&mut tx, group, run_id, &state).await?;
        }
        tx.commit().await?;
        tracing::debug!(
            snapshot_ms,
            workers_ms,
            deltas_ms,
            committed_ms = timer.elapsed().as_secs_f64() * 1e3,
            "stored the run (milliseconds since the write began)"
        );
        Ok((run_id, snapshot_id))
    }

    /// The newest run whose membership changes are stored ([`super::MemberState::last_run`]
    /// of the state read now): a state kept in memory since is the stored one while this
    /// has not moved.
    pub async fn newest_membership_run(&self) -> Result<i64, StoreError> {
        Ok(sqlx::query(NEWEST_MEMBERSHIP_RUN)
            .fetch_one(&self.pool)
            .await?
            .try_get(0)?)
    }

    /// The newest runs first.
    pub async fn runs(&self, limit: i64) -> Result<Vec<RunInfo>, StoreError> {
        let sql = format!("SELECT {RUN_COLUMNS} FROM runs ORDER BY id DESC LIMIT $1");
        let rows = sqlx::query(AssertSqlSafe(sql))
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.iter().map(run_info).collect::<Result<_, _>>()?)
    }

    /// The newest runs with their recorded outcomes: what `rosterd runs`, the API and the
    /// console show.
    pub async fn runs_told(&self, limit: i64) -> Result<Vec<RunInfo>, StoreError> {
        let mut runs = self.runs(limit).await?;
        self.tell(&mut runs).await?;
        Ok(runs)
    }

    /// Fills in the recorded outcomes of `runs` (newest first).
    async fn tell(&self, runs: &mut [RunInfo]) -> Result<(), StoreError> {
        let Some(oldest) = runs.last().map(|r| r.id) else {
            return Ok(());
        };
        let rows = sqlx::query(
            "SELECT run_id, outcome, reason, pushed FROM run_outcomes WHERE run_id >= $1",
        )
        .bind(oldest)
        .fetch_all(&self.pool)
        .await?;
        let mut told = std::collections::HashMap::new();
        for row in &rows {
            let id: i64 = row.try_get(0)?;
            let outcome = RunOutcome::parse(&row.try_get::<String, _>(1)?)?;
            let reason: Option<String> = row.try_get(2)?;
            let pushed: Option<String> = row.try_get(3)?;
            let pushed = pushed
                .map(|p| serde_json::from_str(&p))
                .transpose()
                .map_err(|e| super::error::corrupt("what a run pushed", e))?;
            told.insert(id, (outcome, reason, pushed));
        }
        for run in runs.iter_mut() {
            if let Some((outcome, reason, pushed)) = told.remove(&run.id) {
                run.outcome = outcome;
                run.outcome_reason = reason;
                run.pushed = pushed;
            }
        }
        Ok(())
    }

    /// Records what run `id` did as a whole, once its push finished.
    pub async fn record_run_outcome(
        &self,
        id: i64,
        outcome: RunOutcome,
        reason: Option<&str>,
        pushed: &serde_json::Value,
    ) -> Result<(), StoreError> {
        let _writing = self.writing().await;
        sqlx::query(
            "INSERT INTO run_outcomes (run_id, outcome, reason, pushed) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (run_id) DO UPDATE SET outcome = excluded.outcome, \
             reason = excluded.reason, pushed = excluded.pushed",
        )
        .bind(id)
        .bind(outcome.as_str())
        .bind(reason.map(bounded_message))
        .bind(pushed.to_string())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The newest run that succeeded: the one whose memberships the store holds.
    pub async fn last_succeeded_run(&self) -> Result<Option<RunInfo>, StoreError> {
        let sql = format!(
            "SELECT {RUN_COLUMNS}, inputs_digest FROM runs WHERE status = 'succeeded' ORDER BY id DESC LIMIT 1"
        );
        let row = sqlx::query(AssertSqlSafe(sql))
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| run_info(&r)).transpose()?)
    }

    /// Whether a run after run `id` failed.
    pub async fn failed_since(&self, id: i64) -> Result<bool, StoreError> {
        let row = sqlx::query("SELECT COUNT(*) FROM runs WHERE id > $1 AND status = 'failed'")
            .bind(id)
            .fetch_one(&self.pool)
            .await?;
        Ok(row.try_get::<i64, _>(0)? > 0)
    }

    /// One run, with its recorded outcome.
    pub async fn run(&self, id: i64) -> Result<Option<RunInfo>, StoreError> {
        let sql = format!("SELECT {RUN_COLUMNS} FROM runs WHERE id = $1");
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        let Some(run) = row.map(|r| run_info(&r)).transpose()? else {
            return Ok(None);
        };
        let mut runs = [run];
        self.tell(&mut runs).await?;
        let [run] = runs;
        Ok(Some(run))
    }

    /// A run's changes: by group name, then additions before removals, each by worker id.
    pub async fn run_changes(&self, run_id: i64) -> Result<Vec<Change>, StoreError> {
        let deltas = self.run_deltas(run_id).await?;
        if deltas.is_empty() {
            return Ok(Vec::new());
        }
        let workers = self.worker_ids().await?;
        let mut out = Vec::new();
        for delta in &deltas {
            for (id, added, reason) in delta.changes() {
                out.push(Change {
                    group: delta.group.clone(),
                    worker: workers.stored_key(id)?.to_string(),
                    added,
                    reason: reason.to_string(),
                });
            }
        }
        Ok(out)
    }

    /// `group` as the last run evaluated on or before `at` left it, reconstructed from the
    /// audit alone.
    pub async fn group_state_at(
        &self,
        group: &str,
        at: NaiveDate,
    ) -> Result<members::GroupState, StoreError> {
        let deltas = self.group_deltas(group, Some(&at.to_string())).await?;
        let mut state = members::GroupState::default();
        for (run, _, delta) in &deltas {
            state.apply(*run, delta);
        }
        Ok(state)
    }

    /// Who was in `group` after the last run evaluated on or before `at`, and why,
    /// reconstructed from the audit alone.
    pub async fn members_at(
        &self,
        group: &str,
        at: NaiveDate,
    ) -> Result<BTreeMap<String, String>, StoreError> {
        let state = self.group_state_at(group, at).await?;
        if state.members.is_empty() {
            return Ok(BTreeMap::new());
        }
        let members = state.keyed(&self.worker_ids().await?)?;
        Ok(members.into_iter().map(|(k, m)| (k, m.reason)).collect())
    }

    /// Every change of `worker` in `group`, oldest first.
    pub async fn worker_history(
        &self,
        group: &str,
        worker: &str,
    ) -> Result<Vec<HistoryEntry>, StoreError> {
        let Some(id) = self.worker_id(worker).await? else {
            return Ok(Vec::new());
        };
        Ok(self
            .group_deltas(group, None)
            .await?
            .into_iter()
            .filter_map(|(run_id, as_of, delta)| {
                let added = if delta.added.contains(id) {
                    true
                } else if delta.removed.contains(id) {
                    false
                } else {
                    return None;
                };
                Some(HistoryEntry {
                    run_id,
                    as_of,
                    added,
                    reason: delta.reason_of(id, added).to_string(),
                })
            })
            .collect())
    }
}

/// Serializes run commits on PostgreSQL (an advisory lock, taken in the run's transaction).
pub const RUN_COMMIT_LOCK: i64 = 0x726f_7374_6572_0001;

/// The longest run message stored, in characters. A message quotes what went wrong, and
/// what went wrong can be an export of hundreds of megabytes: the row stays small.
pub const MAX_RUN_MESSAGE_CHARS: usize = 8_000;

/// `message` as stored: at most [`MAX_RUN_MESSAGE_CHARS`], and without NUL characters
/// (which PostgreSQL's text cannot hold), the same on both backends.
pub fn bounded_message(message: &str) -> String {
    let cut = crate::text::prefix(message, MAX_RUN_MESSAGE_CHARS).len();
    let mut out = message[..cut].replace('\0', "\u{FFFD}");
    if cut < message.len() {
        out.push_str(&format!("… ({} more bytes)", message.len() - cut));
    }
    out
}
