//! Membership state in proportion to groups and runs, not to memberships.
//!
//! - Workers are numbered once, in `workers` (key <-> id, append-only), and a set of workers
//!   is a roaring bitmap of their ids.
//! - The audit is one `group_changes` row per run and group that changed: the sets of workers
//!   added and removed, each direction's most common reason, and the reasons that differ
//!   from it. It is never pruned.
//! - The audit is also the state: a group's members now are its last checkpoint
//!   (`group_checkpoints`, written every [`CHECKPOINT_EVERY`] changes) with the changes since
//!   folded in. A run writes one small row per changed group, whatever the size of the
//!   groups.
//! - A member's reason is kept only when it is not `rule`, and the run a member joined in
//!   comes from the checkpoint's layers: one set per run, of the members it added who are
//!   still members.

use std::collections::{BTreeMap, HashMap};

use roaring::RoaringBitmap;
use sqlx::any::AnyRow;
// Dynamic SQL here is only constants and `$N` placeholders; values are always bound.
use sqlx::AssertSqlSafe;
use sqlx::{AnyConnection, Row};

use super::error::corrupt;
use super::numbering::{read_worker_ids, WorkerIds};
use super::{Backend, Col, Store, StoreError};

/// A group's changes since its checkpoint that make the next run write a new checkpoint: the
/// state is then read from at most this many rows per group.
pub const CHECKPOINT_EVERY: usize = 32;

/// The reason of a membership nobody named: the group's rule matched.
pub const RULE: &str = "rule";

/// One run's changes to one group: what the audit keeps, and what moves the state on.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GroupDelta {
    pub group: String,
    pub added: RoaringBitmap,
    pub removed: RoaringBitmap,
    /// The reason of each added worker not in `reasons`.
    pub added_reason: String,
    /// The reason of each removed worker not in `reasons`.
    pub removed_reason: String,
    /// The changes whose reason is not their direction's, by worker id.
    pub reasons: Vec<(u32, String)>,
    /// The group's size after the change.
    pub member_count: u64,
}

impl GroupDelta {
    /// The delta of `changes` (worker id, added, reason), each direction's reason being the
    /// one most of its changes have. `member_count` is left for the caller.
    pub fn from_changes<'a>(
        group: &str,
        changes: impl IntoIterator<Item = (u32, bool, &'a str)>,
    ) -> GroupDelta {
        let mut added = Vec::new();
        let mut removed = Vec::new();
        for (id, add, reason) in changes {
            if add {
                added.push((id, reason));
            } else {
                removed.push((id, reason));
            }
        }
        let mut reasons = Vec::new();
        let mut side = |list: &mut Vec<(u32, &str)>| {
            list.sort_unstable_by_key(|&(id, _)| id);
            let common = most_common(list.iter().map(|&(_, r)| r)).unwrap_or(RULE);
            reasons.extend(
                list.iter()
                    .filter(|&&(_, r)| r != common)
                    .map(|&(id, r)| (id, r.to_string())),
            );
            let set = RoaringBitmap::from_sorted_iter(list.iter().map(|&(id, _)| id))
                .unwrap_or_else(|_| list.iter().map(|&(id, _)| id).collect());
            (set, common.to_string())
        };
        let (added, added_reason) = side(&mut added);
        let (removed, removed_reason) = side(&mut removed);
        reasons.sort_unstable_by_key(|&(id, _)| id);
        GroupDelta {
            group: group.to_string(),
            added,
            removed,
            added_reason,
            removed_reason,
            reasons,
            member_count: 0,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.removed.is_empty()
    }

    /// Why worker `id` was added (`added`) or removed.
    pub fn reason_of(&self, id: u32, added: bool) -> &str {
        match self.reasons.binary_search_by_key(&id, |&(i, _)| i) {
            Ok(at) => &self.reasons[at].1,
            Err(_) if added => &self.added_reason,
            Err(_) => &self.removed_reason,
        }
    }

    /// Every change: worker id, added, reason; additions first, each by id.
    pub fn changes(&self) -> impl Iterator<Item = (u32, bool, &str)> + '_ {
        let adds = self.added.iter().map(|id| (id, true));
        let removes = self.removed.iter().map(|id| (id, false));
        adds.chain(removes)
            .map(|(id, added)| (id, added, self.reason_of(id, added)))
    }
}

fn most_common<'a>(reasons: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    let mut counts: Vec<(&str, usize)> = Vec::new();
    for r in reasons {
        match counts.iter_mut().find(|(c, _)| *c == r) {
            Some((_, n)) => *n += 1,
            None => counts.push((r, 1)),
        }
    }
    // Ties go to the first seen, so the same changes always give the same row.
    let mut best: Option<(&str, usize)> = None;
    for (r, n) in counts {
        if best.is_none_or(|(_, b)| n > b) {
            best = Some((r, n));
        }
    }
    best.map(|(r, _)| r)
}

/// A group's members now.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GroupState {
    pub members: RoaringBitmap,
    /// The members each run added who are members still, oldest run first.
    pub layers: Vec<(i64, RoaringBitmap)>,
    /// Members whose reason is not `rule`.
    pub reasons: HashMap<u32, String>,
    /// Changes folded in since the checkpoint.
    pub since_checkpoint: usize,
    /// The run of the last change folded in.
    pub last_run: i64,
}

impl GroupState {
    pub fn apply(&mut self, run_id: i64, delta: &GroupDelta) {
        if !delta.removed.is_empty() {
            if delta.removed.len() < self.members.len() / 64 {
                // A few leave a large group: each found and taken out, not every set's
                // members walked (which was most of reading the stored state).
                for id in &delta.removed {
                    if self.members.remove(id) {
                        for (_, layer) in &mut self.layers {
                            layer.remove(id);
                        }
                    }
                }
            } else {
                self.members -= &delta.removed;
                for (_, layer) in &mut self.layers {
                    *layer -= &delta.removed;
                }
            }
            self.layers.retain(|(_, layer)| !layer.is_empty());
            self.reasons.retain(|id, _| !delta.removed.contains(*id));
        }
        if !delta.added.is_empty() {
            self.members |= &delta.added;
            if delta.added_reason != RULE {
                for id in &delta.added {
                    self.reasons.insert(id, delta.added_reason.clone());
                }
            }
            for (id, reason) in &delta.reasons {
                if delta.added.contains(*id) {
                    if reason == RULE {
                        self.reasons.remove(id);
                    } else {
                        self.reasons.insert(*id, reason.clone());
                    }
                }
            }
            self.layers.push((run_id, delta.added.clone()));
        }
        self.since_checkpoint += 1;
        self.last_run = run_id;
    }

    pub fn reason(&self, id: u32) -> &str {
        self.reasons.get(&id).map_or(RULE, String::as_str)
    }

    /// The run worker `id` joined in, if a member.
    pub fn since(&self, id: u32) -> Option<i64> {
        self.layers
            .iter()
            .rev()
            .find(|(_, layer)| layer.contains(id))
            .map(|&(run, _)| run)
    }

    /// Every member: id, reason, the run they joined in; by id.
    pub fn entries(&self) -> Vec<(u32, &str, i64)> {
        let mut out: Vec<(u32, &str, i64)> = self
            .layers
            .iter()
            .flat_map(|(run, layer)| layer.iter().map(move |id| (id, *run)))
            .map(|(id, run)| (id, self.reason(id), run))
            .collect();
        out.sort_unstable_by_key(|&(id, _, _)| id);
        out
    }

    /// The checkpoint row's `members`: each layer as its run id, its length and its bytes.
    fn encode_layers(&self) -> Result<Vec<u8>, StoreError> {
        let mut out = Vec::new();
        for (run, layer) in &self.layers {
            out.extend_from_slice(&run.to_le_bytes());
            out.extend_from_slice(&(layer.serialized_size() as u64).to_le_bytes());
            layer.serialize_into(&mut out).map_err(encode_error)?;
        }
        Ok(out)
    }

    fn decode_layers(bytes: &[u8]) -> Result<Vec<(i64, RoaringBitmap)>, String> {
        let mut layers = Vec::new();
        let mut rest = bytes;
        while !rest.is_empty() {
            let (head, tail) = rest.split_at_checked(16).ok_or("a layer is cut short")?;
            let run = i64::from_le_bytes(head[..8].try_into().map_err(|_| "bad run")?);
            let len = u64::from_le_bytes(head[8..].try_into().map_err(|_| "bad length")?);
            let len = usize::try_from(len).map_err(|_| "bad length")?;
            let (set, tail) = tail.split_at_checked(len).ok_or("a layer is cut short")?;
            layers.push((run, decode_set(set)?));
            rest = tail;
        }
        Ok(layers)
    }
}

/// Every group's members now, and the numbering their sets use.
#[derive(Debug, Clone, Default)]
pub struct MemberState {
    pub workers: WorkerIds,
    pub groups: BTreeMap<String, GroupState>,
    /// The newest run whose changes are folded in (0 for none): a run's changes made
    /// against this state may be stored only while it is still the newest.
    pub last_run: i64,
}

impl MemberState {
    pub fn group(&self, name: &str) -> Option<&GroupState> {
        self.groups.get(name)
    }
}

pub(crate) fn encode_set(set: &RoaringBitmap) -> Result<Vec<u8>, StoreError> {
    let mut out = Vec::with_capacity(set.serialized_size());
    set.serialize_into(&mut out).map_err(encode_error)?;
    Ok(out)
}

pub(crate) fn decode_set(bytes: &[u8]) -> Result<RoaringBitmap, String> {
    RoaringBitmap::deserialize_from(bytes).map_err(|e| format!("a stored set is corrupt: {e}"))
}

/// Bytes as lower-case hex, the form [`super::Col::Hex`] carries them in.
fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[usize::from(b >> 4)] as char);
        out.push(DIGITS[usize::from(b & 15)] as char);
    }
    out
}

fn encode_error(e: impl std::error::Error + Send + Sync + 'static) -> StoreError {
    StoreError::Query(sqlx::Error::Encode(Box::new(e)))
}

const DELTA_COLUMNS: &str = "c.run_id, c.group_name, c.added, c.removed, c.added_reason, \
                             c.removed_reason, c.reasons, c.member_count";

/// A `group_changes` row selected with [`DELTA_COLUMNS`]: its run and the delta.
fn delta_of(row: &AnyRow) -> Result<(i64, GroupDelta), StoreError> {
    let run: i64 = row.try_get(0)?;
    let group: String = row.try_get(1)?;
    let what = || format!("the changes of group `{group}` in run {run}");
    let set = |i: usize| -> Result<RoaringBitmap, StoreError> {
        let bytes: Vec<u8> = row.try_get(i)?;
        decode_set(&bytes).map_err(|e| corrupt(&what(), e))
    };
    let reasons: String = row.try_get(6)?;
    Ok((
        run,
        GroupDelta {
            added: set(2)?,
            removed: set(3)?,
            added_reason: row.try_get(4)?,
            removed_reason: row.try_get(5)?,
            reasons: serde_json::from_str(&reasons).map_err(|e| corrupt(&what(), e))?,
            member_count: row.try_get::<i64, _>(7)?.max(0) as u64,
            group,
        },
    ))
}

/// A `group_checkpoints` row: the group's state as of its run.
fn checkpoint_of(row: &AnyRow) -> Result<(String, GroupState), StoreError> {
    let group: String = row.try_get("group_name")?;
    let what = format!("the checkpoint of group `{group}`");
    let bytes: Vec<u8> = row.try_get("members")?;
    let layers = GroupState::decode_layers(&bytes).map_err(|e| corrupt(&what, e))?;
    let reasons: String = row.try_get("reasons")?;
    let reasons: Vec<(u32, String)> =
        serde_json::from_str(&reasons).map_err(|e| corrupt(&what, e))?;
    let mut members = RoaringBitmap::new();
    for (_, layer) in &layers {
        members |= layer;
    }
    let state = GroupState {
        members,
        layers,
        reasons: reasons.into_iter().collect(),
        since_checkpoint: 0,
        last_run: row.try_get("run_id")?,
    };
    Ok((group, state))
}

impl Store {
    /// One worker's id, if ever numbered (without reading the whole numbering).
    pub async fn worker_id(&self, key: &str) -> Result<Option<u32>, StoreError> {
        let row = sqlx::query("SELECT id FROM workers WHERE worker_key = $1")
            .bind(key)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row
            .map(|r| r.try_get::<i64, _>(0))
            .transpose()?
            .and_then(|id| u32::try_from(id).ok()))
    }

    /// The worker numbering.
    pub async fn worker_ids(&self) -> Result<WorkerIds, StoreError> {
        read_worker_ids(&mut *self.pool.acquire().await?).await
    }

    /// The workers numbered since `known` was read, in id order. Numbers are never taken
    /// back or reused, so `known` plus these is the numbering now: a reader that keeps one
    /// (the web console) reads only what is new.
    pub async fn workers_numbered_after(
        &self,
        known: &WorkerIds,
    ) -> Result<Vec<(u32, String)>, StoreError> {
        let rows = sqlx::query("SELECT id, worker_key FROM workers WHERE id >= $1 ORDER BY id")
            .bind(known.len() as i64)
            .fetch_all(self.pool())
            .await?;
        rows.iter()
            .map(|row| {
                let id: i64 = row.try_get(0)?;
                let id = u32::try_from(id)
                    .map_err(|_| corrupt("the worker numbering", format!("id {id}")))?;
                Ok((id, row.try_get(1)?))
            })
            .collect()
    }

    /// Every group's members now (groups that have none are left out).
    pub async fn member_state(&self) -> Result<MemberState, StoreError> {
        let timer = std::time::Instant::now();
        let workers = self.worker_ids().await?;
        let numbering_ms = timer.elapsed().as_secs_f64() * 1e3;
        let (groups, last_run) = self.group_states(None).await?;
        tracing::debug!(
            numbering_ms,
            groups_ms = timer.elapsed().as_secs_f64() * 1e3 - numbering_ms,
            "read the stored memberships"
        );
        Ok(MemberState {
            workers,
            groups,
            last_run,
        })
    }

    /// One group's members now; empty for a group never stored.
    pub async fn group_state(&self, group: &str) -> Result<GroupState, StoreError> {
        Ok(self
            .group_states(Some(group))
            .await?
            .0
            .remove(group)
            .unwrap_or_default())
    }

    /// Checkpoints with the changes since folded in, every group or `only`, and the newest
    /// run folded in.
    async fn group_states(
        &self,
        only: Option<&str>,
    ) -> Result<(BTreeMap<String, GroupState>, i64), StoreError> {
        let filter = if only.is_some() {
            "WHERE group_name = $1"
        } else {
            ""
        };
        let sql =
            format!("SELECT group_name, run_id, members, reasons FROM group_checkpoints {filter}");
        let mut query = sqlx::query(AssertSqlSafe(sql));
        if let Some(group) = only {
            query = query.bind(group);
        }
        let mut states = BTreeMap::new();
        for row in query.fetch_all(&self.pool).await? {
            let (group, state) = checkpoint_of(&row)?;
            states.insert(group, state);
        }
        let filter = if only.is_some() {
            "AND c.group_name = $1"
        } else {
            ""
        };
        let sql = format!(
            "SELECT {DELTA_COLUMNS} FROM group_changes c \
             LEFT JOIN group_checkpoints k ON k.group_name = c.group_name \
             WHERE (k.run_id IS NULL OR c.run_id > k.run_id) {filter} \
             ORDER BY c.group_name, c.run_id"
        );
        let mut query = sqlx::query(AssertSqlSafe(sql));
        if let Some(group) = only {
            query = query.bind(group);
        }
        // Streamed: a first run's rows hold every membership.
        use futures_util::TryStreamExt;
        let mut rows = query.fetch(&self.pool);
        while let Some(row) = rows.try_next().await? {
            let (run, delta) = delta_of(&row)?;
            states
                .entry(delta.group.clone())
                .or_insert_with(GroupState::default)
                .apply(run, &delta);
        }
        drop(rows);
        let last_run = states.values().map(|s| s.last_run).max().unwrap_or(0);
        // A group emptied (removed from the rules) is not a group with members.
        states.retain(|_, s| !s.members.is_empty());
        Ok((states, last_run))
    }

    /// Members per group now, from each group's newest change (for metrics and listings).
    pub async fn group_sizes(&self) -> Result<BTreeMap<String, usize>, StoreError> {
        let rows = sqlx::query(
            "SELECT c.group_name, c.member_count FROM group_changes c \
             JOIN (SELECT group_name, MAX(run_id) AS run_id FROM group_changes GROUP BY group_name) n \
             ON n.group_name = c.group_name AND n.run_id = c.run_id WHERE c.member_count > 0",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| Ok((row.try_get(0)?, row.try_get::<i64, _>(1)? as usize)))
            .collect()
    }

    /// Every group the audit has a change of, those the rules have since dropped included.
    pub async fn audited_groups(&self) -> Result<std::collections::BTreeSet<String>, StoreError> {
        let rows = sqlx::query("SELECT DISTINCT group_name FROM group_changes")
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(|row| Ok(row.try_get(0)?)).collect()
    }

    /// The changes of a run, by group name.
    pub async fn run_deltas(&self, run_id: i64) -> Result<Vec<GroupDelta>, StoreError> {
        let sql = format!(
            "SELECT {DELTA_COLUMNS} FROM group_changes c WHERE c.run_id = $1 ORDER BY c.group_name"
        );
        let rows = sqlx::query(AssertSqlSafe(sql))
            .bind(run_id)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(|r| delta_of(r).map(|(_, d)| d)).collect()
    }

    /// Every change of one group, oldest first, with the run and its evaluation date; only
    /// those of runs evaluated on or before `until` when given.
    pub async fn group_deltas(
        &self,
        group: &str,
        until: Option<&str>,
    ) -> Result<Vec<(i64, String, GroupDelta)>, StoreError> {
        let sql = format!(
            "SELECT {DELTA_COLUMNS}, r.as_of FROM group_changes c JOIN runs r ON r.id = c.run_id \
             WHERE c.group_name = $1 AND r.as_of <= $2 ORDER BY c.run_id"
        );
        let rows = sqlx::query(AssertSqlSafe(sql))
            .bind(group)
            .bind(until.unwrap_or("9999-12-31"))
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                let (run, delta) = delta_of(r)?;
                Ok((run, r.try_get::<String, _>(8)?, delta))
            })
            .collect()
    }
}

/// Stores workers newly numbered. On SQLite, as bound values, [`WORKER_ROWS`] a statement:
/// a statement there is a call, and a first run's 100,000 workers went through JSON (written,
/// then parsed by `json_each`) in about 150 ms.
pub(crate) async fn insert_workers(
    conn: &mut AnyConnection,
    backend: Backend,
    workers: &[(u32, String)],
) -> Result<(), StoreError> {
    if backend == Backend::Sqlite {
        for chunk in workers.chunks(WORKER_ROWS) {
            let sql = super::sqlite_insert_values("workers (id, worker_key)", 2, chunk.len());
            let mut query = sqlx::query(AssertSqlSafe(sql));
            for (id, key) in chunk {
                query = query.bind(i64::from(*id)).bind(key.as_str());
            }
            query.execute(&mut *conn).await?;
        }
        return Ok(());
    }
    super::insert_rows(
        conn,
        backend,
        "workers (id, worker_key)",
        &[Col::Int, Col::Text],
        "",
        workers,
    )
    .await
}

/// Workers a statement of [`insert_workers`] binds on SQLite, two values each.
const WORKER_ROWS: usize = 4096;
const _: () = assert!(WORKER_ROWS * 2 <= super::SQLITE_PARAMETERS);

/// Stores changes, each with its run, in a few statements: one statement per group cost a
/// round trip each, and on PostgreSQL a large parameter's round trip can wait on a delayed
/// ACK. A statement carries about [`DELTA_BYTES_PER_STATEMENT`] of sets, so that a first
/// run's (every membership) is not held twice over in hex and JSON at once.
pub(crate) async fn insert_deltas(
    conn: &mut AnyConnection,
    backend: Backend,
    deltas: &[(i64, &GroupDelta)],
) -> Result<(), StoreError> {
    if backend == Backend::Sqlite {
        return insert_deltas_bound(conn, deltas).await;
    }
    let mut rows = Vec::new();
    let mut bytes = 0;
    for (run, delta) in deltas.iter().filter(|(_, d)| !d.is_empty()) {
        let (added, removed) = (encode_set(&delta.added)?, encode_set(&delta.removed)?);
        if added.len() + removed.len() >= DELTA_BYTES_ALONE {
            insert_large_delta(conn, *run, delta, added, removed).await?;
            continue;
        }
        let (added, removed) = (hex(&added), hex(&removed));
        bytes += added.len() + removed.len();
        rows.push((
            run,
            &delta.group,
            delta.added.len(),
            delta.removed.len(),
            added,
            removed,
            &delta.added_reason,
            &delta.removed_reason,
            serde_json::to_string(&delta.reasons).map_err(encode_error)?,
            delta.member_count,
        ));
        if bytes >= DELTA_BYTES_PER_STATEMENT {
            insert_delta_rows(conn, backend, &rows).await?;
            rows.clear();
            bytes = 0;
        }
    }
    insert_delta_rows(conn, backend, &rows).await
}

/// The `group_changes` columns a delta is inserted into, in the order both inserts bind.
const DELTA_TABLE: &str = "group_changes (run_id, group_name, added_count, removed_count, \
                           added, removed, added_reason, removed_reason, reasons, member_count)";

/// The hex of the sets one statement of [`insert_deltas`] carries, about.
const DELTA_BYTES_PER_STATEMENT: usize = 16 << 20;

/// Sets of at least this many bytes are bound as they are, a statement per delta: in the
/// JSON of [`insert_delta_rows`] they would be written as hex and parsed back (a first run
/// at a million workers writes 120 MB of sets).
const DELTA_BYTES_ALONE: usize = 32 << 10;

/// [`insert_deltas`] on SQLite: every value bound (sets as bytes), up to [`DELTA_ROWS`]
/// changes or about [`DELTA_BYTES_PER_STATEMENT`] of sets a statement. A statement there is
/// a call, not a round trip, but still about 50 microseconds: a first run at 100,000 workers
/// stored its 2,000 groups a statement each (small sets as hex in JSON) in about 130 ms.
async fn insert_deltas_bound(
    conn: &mut AnyConnection,
    deltas: &[(i64, &GroupDelta)],
) -> Result<(), StoreError> {
    let mut rows = Vec::new();
    let mut bytes = 0;
    for (run, delta) in deltas.iter().filter(|(_, d)| !d.is_empty()) {
        let (added, removed) = (encode_set(&delta.added)?, encode_set(&delta.removed)?);
        bytes += added.len() + removed.len();
        let reasons = serde_json::to_string(&delta.reasons).map_err(encode_error)?;
        rows.push((*run, *delta, added, removed, reasons));
        if rows.len() == DELTA_ROWS || bytes >= DELTA_BYTES_PER_STATEMENT {
            insert_bound_deltas(conn, &mut rows).await?;
            bytes = 0;
        }
    }
    insert_bound_deltas(conn, &mut rows).await
}

/// A change with its sets and reasons encoded, as [`insert_deltas_bound`] binds it.
type BoundDelta<'a> = (i64, &'a GroupDelta, Vec<u8>, Vec<u8>, String);

/// Inserts `rows` in one statement, leaving `rows` empty.
async fn insert_bound_deltas(
    conn: &mut AnyConnection,
    rows: &mut Vec<BoundDelta<'_>>,
) -> Result<(), StoreError> {
    if rows.is_empty() {
        return Ok(());
    }
    let sql = super::sqlite_insert_values(DELTA_TABLE, 10, rows.len());
    let mut query = sqlx::query(AssertSqlSafe(sql));
    for (run, delta, added, removed, reasons) in rows.drain(..) {
        query = query
            .bind(run)
            .bind(delta.group.as_str())
            .bind(delta.added.len() as i64)
            .bind(delta.removed.len() as i64)
            .bind(added)
            .bind(removed)
            .bind(delta.added_reason.as_str())
            .bind(delta.removed_reason.as_str())
            .bind(reasons)
            .bind(delta.member_count as i64);
    }
    query.execute(&mut *conn).await?;
    Ok(())
}

/// Changes a statement of [`insert_deltas_bound`] binds, ten values each.
const DELTA_ROWS: usize = 1024;
const _: () = assert!(DELTA_ROWS * 10 <= super::SQLITE_PARAMETERS);

/// One `group_changes` row, its sets bound as bytes.
async fn insert_large_delta(
    conn: &mut AnyConnection,
    run: i64,
    delta: &GroupDelta,
    added: Vec<u8>,
    removed: Vec<u8>,
) -> Result<(), StoreError> {
    let sql = format!("INSERT INTO {DELTA_TABLE} VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)");
    sqlx::query(AssertSqlSafe(sql))
        .bind(run)
        .bind(&delta.group)
        .bind(delta.added.len() as i64)
        .bind(delta.removed.len() as i64)
        .bind(added)
        .bind(removed)
        .bind(&delta.added_reason)
        .bind(&delta.removed_reason)
        .bind(serde_json::to_string(&delta.reasons).map_err(encode_error)?)
        .bind(delta.member_count as i64)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// `group_changes` rows as [`insert_deltas`] makes them.
type DeltaRow<'a> = (
    &'a i64,
    &'a String,
    u64,
    u64,
    String,
    String,
    &'a String,
    &'a String,
    String,
    u64,
);

async fn insert_delta_rows(
    conn: &mut AnyConnection,
    backend: Backend,
    rows: &[DeltaRow<'_>],
) -> Result<(), StoreError> {
    super::insert_rows(
        conn,
        backend,
        DELTA_TABLE,
        &[
            Col::Int,
            Col::Text,
            Col::Int,
            Col::Int,
            Col::Hex,
            Col::Hex,
            Col::Text,
            Col::Text,
            Col::Text,
            Col::Int,
        ],
        "",
        rows,
    )
    .await
}

/// Replaces `group`'s checkpoint with `state`, its state after run `run_id`.
pub(crate) async fn write_checkpoint(
    conn: &mut AnyConnection,
    group: &str,
    run_id: i64,
    state: &GroupState,
) -> Result<(), StoreError> {
    let mut reasons: Vec<(u32, &str)> = state
        .reasons
        .iter()
        .map(|(&id, r)| (id, r.as_str()))
        .collect();
    reasons.sort_unstable();
    let reasons = serde_json::to_string(&reasons).map_err(encode_error)?;
    sqlx::query("DELETE FROM group_checkpoints WHERE group_name = $1")
        .bind(group)
        .execute(&mut *conn)
        .await?;
    sqlx::query(
        "INSERT INTO group_checkpoints (group_name, run_id, member_count, members, reasons) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(group)
    .bind(run_id)
    .bind(state.members.len() as i64)
    .bind(state.encode_layers()?)
    .bind(reasons)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_delta_keeps_each_directions_common_reason_and_the_exceptions() {
        let d = GroupDelta::from_changes(
            "g",
            [
                (5, true, "rule"),
                (2, true, "include"),
                (9, true, "rule"),
                (7, false, "not_eligible"),
                (3, false, "rule_no_longer_matches"),
                (4, false, "not_eligible"),
            ],
        );
        assert_eq!(d.added.iter().collect::<Vec<_>>(), [2, 5, 9]);
        assert_eq!(d.removed.iter().collect::<Vec<_>>(), [3, 4, 7]);
        assert_eq!(
            (d.added_reason.as_str(), d.removed_reason.as_str()),
            ("rule", "not_eligible")
        );
        assert_eq!(
            d.reasons,
            [
                (2, "include".to_string()),
                (3, "rule_no_longer_matches".to_string())
            ]
        );
        let all: Vec<_> = d.changes().collect();
        assert_eq!(
            all,
            [
                (2, true, "include"),
                (5, true, "rule"),
                (9, true, "rule"),
                (3, false, "rule_no_longer_matches"),
                (4, false, "not_eligible"),
                (7, false, "not_eligible"),
            ]
        );
    }

    #[test]
    fn folding_deltas_keeps_members_reasons_and_the_run_each_joined_in() {
        let mut state = GroupState::default();
        state.apply(
            1,
            &GroupDelta::from_changes("g", [(1, true, "rule"), (2, true, "include")]),
        );
        state.apply(
            2,
            &GroupDelta::from_changes("g", [(3, true, "include"), (1, false, "x")]),
        );
        state.apply(
            3,
            &GroupDelta::from_changes("g", [(1, true, "rule"), (2, false, "expired")]),
        );
        assert_eq!(state.entries(), [(1, "rule", 3), (3, "include", 2)]);
        assert_eq!(state.layers.len(), 2, "run 1's layer is empty and gone");
        let bytes = state.encode_layers().unwrap();
        assert_eq!(GroupState::decode_layers(&bytes).unwrap(), state.layers);
        assert!(GroupState::decode_layers(&bytes[..bytes.len() - 1]).is_err());
    }

    /// A few leaving a large group (taken out one by one) leave the state that taking the
    /// set out of every layer leaves.
    #[test]
    fn a_few_leaving_a_large_group_leave_what_the_set_difference_leaves() {
        let mut state = GroupState::default();
        let joins = |ids: std::ops::Range<u32>| ids.map(|id| (id, true, "rule"));
        state.apply(1, &GroupDelta::from_changes("g", joins(0..1000)));
        state.apply(2, &GroupDelta::from_changes("g", joins(1000..3000)));
        state.apply(3, &GroupDelta::from_changes("g", [(3000, true, "rule")]));
        // 5 and 2,500 are members, 9,999 is not; run 3's layer empties.
        let leaves = [(5, false, "x"), (2500, false, "x"), (3000, false, "x")];
        let mut leaving = GroupDelta::from_changes("g", leaves);
        leaving.removed.insert(9999);
        assert!(leaving.removed.len() < state.members.len() / 64);
        let mut expected = state.clone();
        expected.members -= &leaving.removed;
        for (_, layer) in &mut expected.layers {
            *layer -= &leaving.removed;
        }
        expected.layers.retain(|(_, layer)| !layer.is_empty());
        state.apply(4, &leaving);
        assert_eq!(state.members, expected.members);
        assert_eq!(state.layers, expected.layers);
        assert_eq!(state.layers.len(), 2);
        assert_eq!(state.members.len(), 2998);
        assert_eq!(state.since(2500), None);
        assert_eq!(state.since(2501), Some(2));
    }
}
