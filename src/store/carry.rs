//! Carries a database from one row per membership (`memberships`, `membership_changes`,
//! migrations 1 to 5) into the compact state of migration 6 ([`super::members`]), keeping
//! every membership with its reason and the run it joined in, and every audit row.
//!
//! It runs when rosterd opens the database, after the SQL migrations, in one transaction that
//! ends by dropping the old tables: a crash leaves the old tables, and the next start carries
//! them again.

use std::collections::BTreeMap;

use futures_util::TryStreamExt;
use sqlx::{AnyConnection, Row};

use super::members::{self, GroupDelta, GroupState, MemberState};
use super::numbering::WorkerIds;
use super::{has_table, Backend, Store, StoreError};

/// Serializes carries between processes on PostgreSQL (SQLite has the migrate lock file).
const CARRY_LOCK: i64 = 0x726f_7374_6572_0006;

/// The state and audit held in the old tables.
pub(crate) struct Legacy {
    pub state: MemberState,
    /// By run, then group name.
    pub deltas: Vec<(i64, GroupDelta)>,
}

impl Store {
    /// Carries the old tables over when the database has them.
    pub(crate) async fn carry_over(&self) -> Result<(), StoreError> {
        self.carry_memberships().await?;
        self.carry_target_members().await
    }

    /// The carry's transaction, when the database still has `table`: carries take turns
    /// (the write lock; on PostgreSQL also an advisory lock between processes), and another
    /// process may have carried it while this one waited.
    async fn begin_carry(
        &self,
        table: &str,
    ) -> Result<Option<(super::Writing, sqlx::Transaction<'static, sqlx::Any>)>, StoreError> {
        if !self.has_table(table).await? {
            return Ok(None);
        }
        let (writing, mut tx) = self.begin_write().await?;
        if self.backend == Backend::Postgres {
            sqlx::query("SELECT pg_advisory_xact_lock($1)")
                .bind(CARRY_LOCK)
                .execute(&mut *tx)
                .await?;
        }
        if !has_table(&mut tx, self.backend, table).await? {
            return Ok(None);
        }
        Ok(Some((writing, tx)))
    }

    /// Migration 8: `target_members` rows into one set per (target, group).
    async fn carry_target_members(&self) -> Result<(), StoreError> {
        let Some((_writing, mut tx)) = self.begin_carry("target_members").await? else {
            return Ok(());
        };
        let rows = super::confirmed::carry_target_members(&mut tx).await?;
        // A new database has nothing to carry: say so only when something was.
        if rows > 0 {
            tracing::info!(
                rows,
                "carried what the targets confirmed into one set per group (migration 8)"
            );
        }
        sqlx::query("DROP TABLE target_members")
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Migration 6: `memberships` and `membership_changes` into the compact state.
    async fn carry_memberships(&self) -> Result<(), StoreError> {
        let Some((_writing, mut tx)) = self.begin_carry("memberships").await? else {
            return Ok(());
        };
        let legacy = read_legacy(&mut tx).await?;
        let workers = legacy.state.workers.since(0);
        if !workers.is_empty() || !legacy.deltas.is_empty() {
            tracing::info!(
                workers = workers.len(),
                groups = legacy.state.groups.len(),
                audit_rows = legacy.deltas.len(),
                "carrying memberships into the compact state (migration 6)"
            );
        }
        members::insert_workers(&mut tx, self.backend, &workers).await?;
        let deltas: Vec<(i64, &GroupDelta)> = legacy.deltas.iter().map(|(r, d)| (*r, d)).collect();
        members::insert_deltas(&mut tx, self.backend, &deltas).await?;
        for (group, state) in &legacy.state.groups {
            members::write_checkpoint(&mut tx, group, legacy.state.last_run, state).await?;
        }
        sqlx::query("DROP TABLE membership_changes")
            .execute(&mut *tx)
            .await?;
        sqlx::query("DROP TABLE memberships")
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The state, for a read-only command (`plan`), which does not migrate: from the old
    /// tables when the database has not been carried over yet.
    pub async fn member_state_for_reading(&self) -> Result<MemberState, StoreError> {
        if self.has_table("memberships").await? {
            let mut conn = self.pool.acquire().await?;
            return Ok(read_legacy(&mut conn).await?.state);
        }
        if self.has_table("workers").await? {
            return self.member_state().await;
        }
        Ok(MemberState::default())
    }
}

/// A row of `membership_changes`: worker id, added, reason.
type OldChange = (u32, bool, String);

/// Reads `memberships` and `membership_changes`, numbering their workers by key.
pub(crate) async fn read_legacy(conn: &mut AnyConnection) -> Result<Legacy, StoreError> {
    // Numbered in key order, so that a carried database is numbered alike wherever it is
    // carried.
    let mut workers = WorkerIds::default();
    let keys: Vec<String> = sqlx::query(
        "SELECT worker_key FROM memberships UNION SELECT worker_key FROM membership_changes \
         ORDER BY 1",
    )
    .fetch_all(&mut *conn)
    .await?
    .iter()
    .map(|r| r.try_get(0))
    .collect::<Result<_, _>>()?;
    for key in &keys {
        workers.number(key);
    }
    drop(keys);

    // The audit, grouped into one delta per run and group.
    let mut deltas: Vec<(i64, GroupDelta)> = Vec::new();
    {
        let mut pending: BTreeMap<(i64, String), Vec<OldChange>> = BTreeMap::new();
        let mut rows = sqlx::query(
            "SELECT run_id, group_name, worker_key, action, reason FROM membership_changes ORDER BY id",
        )
        .fetch(&mut *conn);
        while let Some(row) = rows.try_next().await? {
            let id = workers.number(&row.try_get::<String, _>(2)?);
            let added = row.try_get::<String, _>(3)? == "added";
            pending
                .entry((row.try_get(0)?, row.try_get(1)?))
                .or_default()
                .push((id, added, row.try_get(4)?));
        }
        drop(rows);
        // Each group's members as the audit goes, for its size after each change. The map
        // is by run, then group: the order the deltas are stored and folded in.
        let mut so_far: BTreeMap<String, roaring::RoaringBitmap> = BTreeMap::new();
        for ((run, group), changes) in pending {
            let mut delta = GroupDelta::from_changes(
                &group,
                changes.iter().map(|(id, a, r)| (*id, *a, r.as_str())),
            );
            let now = so_far.entry(group).or_default();
            *now -= &delta.removed;
            *now |= &delta.added;
            delta.member_count = now.len();
            deltas.push((run, delta));
        }
    }

    // The state: each group's members by the run they joined in.
    let mut groups: BTreeMap<String, GroupState> = BTreeMap::new();
    {
        let mut layers: BTreeMap<String, BTreeMap<i64, Vec<u32>>> = BTreeMap::new();
        let mut rows =
            sqlx::query("SELECT group_name, worker_key, reason, since_run FROM memberships")
                .fetch(&mut *conn);
        while let Some(row) = rows.try_next().await? {
            let group: String = row.try_get(0)?;
            let id = workers.number(&row.try_get::<String, _>(1)?);
            let reason: String = row.try_get(2)?;
            let since: i64 = row.try_get(3)?;
            let state = groups.entry(group.clone()).or_default();
            if reason != members::RULE {
                state.reasons.insert(id, reason);
            }
            layers
                .entry(group)
                .or_default()
                .entry(since)
                .or_default()
                .push(id);
        }
        drop(rows);
        for (group, by_run) in layers {
            let state = groups.entry(group).or_default();
            for (run, mut ids) in by_run {
                ids.sort_unstable();
                let set: roaring::RoaringBitmap = ids.into_iter().collect();
                state.members |= &set;
                state.layers.push((run, set));
            }
        }
    }
    let last_run: i64 = sqlx::query("SELECT COALESCE(MAX(id), 0) FROM runs")
        .fetch_one(&mut *conn)
        .await?
        .try_get(0)?;
    for state in groups.values_mut() {
        state.last_run = last_run;
    }
    Ok(Legacy {
        state: MemberState {
            workers,
            groups,
            last_run,
        },
        deltas,
    })
}
