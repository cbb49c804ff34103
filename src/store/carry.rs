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

use super::members::{self, GroupDelta, GroupState, MemberState, WorkerIds};
use super::{has_table, Backend, Store, StoreError};

/// Serializes carries between processes on PostgreSQL (SQLite has the migrate lock file).
const CARRY_LOCK: i64 = 0x726f_7374_6572_0006;

/// The state and audit held in the old tables.
pub(crate) struct Legacy {
    pub state: MemberState,
    /// By run, then group name.
    pub deltas: Vec<(i64, GroupDelta)>,
    /// The run the memberships table is the state after.
    pub last_run: i64,
}

impl Store {
    /// Carries the old tables over when the database has them.
    pub(crate) async fn carry_over(&self) -> Result<(), StoreError> {
        if !self.has_table("memberships").await? {
            return Ok(());
        }
        let (_writing, mut tx) = self.begin_write().await?;
        if self.backend == Backend::Postgres {
            sqlx::query("SELECT pg_advisory_xact_lock($1)")
                .bind(CARRY_LOCK)
                .execute(&mut *tx)
                .await?;
        }
        // Another process may have carried them while this one waited.
        if !has_table(&mut tx, self.backend, "memberships").await? {
            return Ok(());
        }
        let legacy = read_legacy(&mut tx).await?;
        let workers = legacy.state.workers.since(0);
        tracing::info!(
            workers = workers.len(),
            groups = legacy.state.groups.len(),
            audit_rows = legacy.deltas.len(),
            "carrying memberships into the compact state (migration 6)"
        );
        members::write_changes(&mut tx, self.backend, 0, &workers, &[], &[]).await?;
        for (run, delta) in &legacy.deltas {
            members::write_changes(
                &mut tx,
                self.backend,
                *run,
                &[],
                std::slice::from_ref(delta),
                &[],
            )
            .await?;
        }
        for (group, state) in &legacy.state.groups {
            members::write_changes(
                &mut tx,
                self.backend,
                legacy.last_run,
                &[],
                &[],
                &[(group.as_str(), state)],
            )
            .await?;
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
        if self.has_table("workers").await? && !self.has_table("memberships").await? {
            return self.member_state().await;
        }
        if !self.has_table("memberships").await? {
            return Ok(MemberState::default());
        }
        let mut conn = self.pool.acquire().await?;
        Ok(read_legacy(&mut conn).await?.state)
    }
}

/// A row of `membership_changes`: worker id, added, reason.
type OldChange = (u32, bool, String);

/// Reads `memberships` and `membership_changes`, numbering their workers by key.
pub(crate) async fn read_legacy(conn: &mut AnyConnection) -> Result<Legacy, StoreError> {
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
            let key: String = row.try_get(2)?;
            let id = workers.id(&key).unwrap_or_default();
            let added = row.try_get::<String, _>(3)? == "added";
            pending
                .entry((row.try_get(0)?, row.try_get(1)?))
                .or_default()
                .push((id, added, row.try_get(4)?));
        }
        drop(rows);
        let mut sizes: BTreeMap<String, GroupState> = BTreeMap::new();
        for ((run, group), changes) in pending {
            let mut delta = GroupDelta::from_changes(
                &group,
                changes.iter().map(|(id, a, r)| (*id, *a, r.as_str())),
            );
            let state = sizes.entry(group).or_default();
            state.members -= &delta.removed;
            state.members |= &delta.added;
            delta.member_count = state.members.len();
            deltas.push((run, delta));
        }
    }
    deltas.sort_by(|(a, da), (b, db)| (a, &da.group).cmp(&(b, &db.group)));

    // The state: each group's members by the run they joined in.
    let mut groups: BTreeMap<String, GroupState> = BTreeMap::new();
    {
        let mut layers: BTreeMap<String, BTreeMap<i64, Vec<u32>>> = BTreeMap::new();
        let mut rows =
            sqlx::query("SELECT group_name, worker_key, reason, since_run FROM memberships")
                .fetch(&mut *conn);
        while let Some(row) = rows.try_next().await? {
            let group: String = row.try_get(0)?;
            let key: String = row.try_get(1)?;
            let id = workers.id(&key).unwrap_or_default();
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
        last_run,
    })
}
