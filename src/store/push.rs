//! Push state: the target groups rosterd manages, their members as the targets confirmed
//! them, resolved users, the outbox, holds, target health and drift.
//!
//! Every write that follows a target's confirmation also marks its outbox entry done, in the
//! same transaction: after a crash the store says either "sent and confirmed" or "pending".

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::Serialize;
// Dynamic SQL here is only constants and `$N` placeholders; values are always bound.
use sqlx::AssertSqlSafe;
use sqlx::{Any, Row, Transaction};

use super::confirmed::{move_old_ids, write_set, Confirmed, EncodedSet};
use super::text::DriftKind;
use super::{delete_rows, grouped_json, insert_rows, json_agg, Backend, Col, Store, StoreError};

/// A request the target confirmed, for [`Store::confirm`].
#[derive(Debug, Clone)]
pub struct Confirmation {
    pub target: String,
    pub group: String,
    /// The outbox entry, done now, and the requests sent for it.
    pub entry: i64,
    pub attempts: i64,
    /// What the pair holds after it; `None` when its members did not change (a rename).
    pub set: Option<EncodedSet>,
    /// A rename's new display name.
    pub display_name: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TargetGroup {
    pub group: String,
    pub scim_id: String,
    pub display_name: String,
    pub linked: bool,
    pub pushed_at: Option<String>,
    pub reconciled_at: Option<String>,
    /// When the group was last read back entry by entry (or answered its creation with
    /// what it holds); `None`: never, and nothing is known of what it holds but what was
    /// sent.
    pub verified_at: Option<String>,
    /// How many differences that read found.
    pub verified_drift: Option<i64>,
    pub verify_state: Option<VerifyState>,
}

impl TargetGroup {
    /// A group just found or made, not read back yet.
    pub fn new(group: &str, scim_id: String, display_name: String, linked: bool) -> TargetGroup {
        TargetGroup {
            group: group.to_string(),
            scim_id,
            display_name,
            linked,
            pushed_at: None,
            reconciled_at: None,
            verified_at: None,
            verified_drift: None,
            verify_state: None,
        }
    }
}

/// Where the last read back of a group left it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum VerifyState {
    /// It held what rosterd knew.
    Matched,
    /// It differed, and the repair has not been confirmed yet (held, failed, or unsent).
    Drifted,
    /// It differed, and the target confirmed every repair.
    Repaired,
}

impl VerifyState {
    pub fn as_str(self) -> &'static str {
        match self {
            VerifyState::Matched => "matched",
            VerifyState::Drifted => "drifted",
            VerifyState::Repaired => "repaired",
        }
    }

    fn parse(s: &str) -> Result<Self, sqlx::Error> {
        Ok(match s {
            "matched" => VerifyState::Matched,
            "drifted" => VerifyState::Drifted,
            "repaired" => VerifyState::Repaired,
            other => {
                return Err(sqlx::Error::Decode(
                    format!("unknown verification state `{other}`").into(),
                ))
            }
        })
    }
}

/// What rosterd knows of a target as a whole from reading it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct TargetVerification {
    /// Users its last full listing held, and when.
    pub users_listed: Option<i64>,
    pub listed_at: Option<String>,
    /// The last sign that it lost state (a known group gone, a cached user id unknown, a
    /// listing far smaller than the last), which made rosterd verify all of it.
    pub reset_at: Option<String>,
    pub reset_reason: Option<String>,
}

/// A member as rosterd knows it: the target's user id and, when known, the worker.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, serde::Deserialize)]
pub struct TargetMember {
    pub user_id: String,
    pub worker_key: Option<String>,
    /// The worker's id in the numbering, when the member is a worker rosterd pushes.
    #[serde(skip)]
    pub worker: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CachedUser {
    pub match_value: String,
    pub user_id: Option<String>,
    pub checked_at: String,
}

/// What an outbox entry carries; the request is built from it when it is sent.
#[derive(Debug, Clone, Serialize)]
pub struct Unprovisioned {
    pub target: String,
    pub group: String,
    pub worker_key: String,
    pub match_value: Option<String>,
    pub since: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct TargetHealth {
    pub target: String,
    pub healthy: bool,
    pub reason: Option<String>,
    pub since: String,
}

/// How a target's filters compare the attribute workers are matched by (`lookup: auto`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TargetLookup {
    pub target: String,
    /// The SCIM attribute this was learned for (`userName`, `emails.value`).
    pub attribute: String,
    pub case_exact: bool,
    /// `schemas` (the target's /Schemas said so) or `probe` (a known value in another case
    /// found its user, or did not).
    pub source: String,
    pub checked_at: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Drift {
    pub kind: DriftKind,
    pub user_id: Option<String>,
    pub worker_key: Option<String>,
    /// For `renamed`: the name the group was found under.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

impl Store {
    // --- Target groups and members ---------------------------------------------------------

    pub async fn target_groups(
        &self,
        target: &str,
    ) -> Result<BTreeMap<String, TargetGroup>, StoreError> {
        let rows = sqlx::query(
            "SELECT group_name, scim_id, display_name, linked, pushed_at, reconciled_at, \
             verified_at, verified_drift, verify_state FROM target_groups WHERE target = $1",
        )
        .bind(target)
        .fetch_all(self.pool())
        .await?;
        let mut out = BTreeMap::new();
        for row in rows {
            let group: String = row.try_get(0)?;
            let state: Option<String> = row.try_get(8)?;
            out.insert(
                group.clone(),
                TargetGroup {
                    group,
                    scim_id: row.try_get(1)?,
                    display_name: row.try_get(2)?,
                    linked: row.try_get::<i64, _>(3)? != 0,
                    pushed_at: row.try_get(4)?,
                    reconciled_at: row.try_get(5)?,
                    verified_at: row.try_get(6)?,
                    verified_drift: row.try_get(7)?,
                    verify_state: state.as_deref().map(VerifyState::parse).transpose()?,
                },
            );
        }
        Ok(out)
    }

    /// Records the target group a pair is pushed to, with the entries the target holds
    /// (replacing what was known), and marks `done` (an entry, the requests sent for it)
    /// finished.
    pub async fn record_target_group(
        &self,
        target: &str,
        group: &TargetGroup,
        members: &Confirmed,
        done: Option<(i64, i64)>,
        now: &str,
    ) -> Result<(), StoreError> {
        let (_writing, mut tx) = self.begin_write().await?;
        sqlx::query(
            "INSERT INTO target_groups (target, group_name, scim_id, display_name, linked, pushed_at, \
             verified_at, verified_drift, verify_state) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (target, group_name) DO UPDATE SET \
             scim_id = excluded.scim_id, display_name = excluded.display_name, \
             linked = excluded.linked, pushed_at = excluded.pushed_at, \
             verified_at = excluded.verified_at, verified_drift = excluded.verified_drift, \
             verify_state = excluded.verify_state",
        )
        .bind(target)
        .bind(group.group.as_str())
        .bind(group.scim_id.as_str())
        .bind(group.display_name.as_str())
        .bind(i64::from(group.linked))
        .bind(now)
        .bind(group.verified_at.as_deref())
        .bind(group.verified_drift)
        .bind(group.verify_state.map(VerifyState::as_str))
        .execute(&mut *tx)
        .await?;
        write_set(&mut tx, target, &group.group, &members.encode()?).await?;
        if let Some((id, attempts)) = done {
            finish(&mut tx, &[id], attempts, now).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Forgets a pair: its target group, members and unprovisioned workers.
    pub async fn forget_target_group(
        &self,
        target: &str,
        group: &str,
        done: Option<(i64, i64)>,
        now: &str,
    ) -> Result<(), StoreError> {
        let (_writing, mut tx) = self.begin_write().await?;
        for table in ["target_groups", "target_member_sets", "push_unprovisioned"] {
            sqlx::query(AssertSqlSafe(format!(
                "DELETE FROM {table} WHERE target = $1 AND group_name = $2"
            )))
            .bind(target)
            .bind(group)
            .execute(&mut *tx)
            .await?;
        }
        if let Some((id, attempts)) = done {
            finish(&mut tx, &[id], attempts, now).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// The targets confirmed requests: each one's pair now holds its `set`, its rename
    /// takes effect, and its outbox entry is done. Confirmations of requests in flight at
    /// the same time share this one transaction (one commit, not one per request).
    pub async fn confirm(&self, batch: &[Confirmation], now: &str) -> Result<(), StoreError> {
        if batch.is_empty() {
            return Ok(());
        }
        // One write per pair (its last set and name in the batch) and one per count of
        // requests: a batch of requests sent together costs a few statements, not a few each.
        let mut pairs: BTreeMap<(&str, &str), PairConfirmed> = BTreeMap::new();
        let mut done: BTreeMap<i64, Vec<i64>> = BTreeMap::new();
        for c in batch {
            let pair = pairs
                .entry((c.target.as_str(), c.group.as_str()))
                .or_default();
            pair.0 = c.set.as_ref().or(pair.0);
            pair.1 = c.display_name.as_deref().or(pair.1);
            done.entry(c.attempts).or_default().push(c.entry);
        }
        let (_writing, mut tx) = self.begin_write().await?;
        for ((target, group), (set, display_name)) in pairs {
            if let Some(set) = set {
                write_set(&mut tx, target, group, set).await?;
            }
            sqlx::query(
                "UPDATE target_groups SET pushed_at = $1, display_name = COALESCE($2, display_name) \
                 WHERE target = $3 AND group_name = $4",
            )
            .bind(now)
            .bind(display_name)
            .bind(target)
            .bind(group)
            .execute(&mut *tx)
            .await?;
        }
        for (attempts, ids) in done {
            for ids in ids.chunks(500) {
                finish(&mut tx, ids, attempts, now).await?;
            }
        }
        tx.commit().await?;
        Ok(())
    }

    /// The group was read back: what it holds replaces what was known. A verification
    /// (`drift` given) records the differences it found and where they leave the group; a
    /// read that settles rosterd's own lost answers (`None`) only when it was read.
    pub async fn record_read_back(
        &self,
        target: &str,
        group: &str,
        members: &Confirmed,
        drift: Option<&[Drift]>,
        now: &str,
    ) -> Result<(), StoreError> {
        let (_writing, mut tx) = self.begin_write().await?;
        write_set(&mut tx, target, group, &members.encode()?).await?;
        match drift {
            Some(drift) => {
                insert_drift(&mut tx, self.backend(), target, group, drift, now).await?;
                let state = if drift.is_empty() {
                    VerifyState::Matched
                } else {
                    VerifyState::Drifted
                };
                sqlx::query(
                    "UPDATE target_groups SET reconciled_at = $1, verified_at = $1, \
                     verified_drift = $2, verify_state = $3 WHERE target = $4 AND group_name = $5",
                )
                .bind(now)
                .bind(drift.len() as i64)
                .bind(state.as_str())
                .bind(target)
                .bind(group)
                .execute(&mut *tx)
                .await?;
            }
            None => {
                sqlx::query(
                    "UPDATE target_groups SET verified_at = $1 WHERE target = $2 AND group_name = $3",
                )
                .bind(now)
                .bind(target)
                .bind(group)
                .execute(&mut *tx)
                .await?;
            }
        }
        tx.commit().await?;
        Ok(())
    }

    /// The target confirmed every repair of the drift its group's last verification found.
    pub async fn record_repaired(&self, target: &str, group: &str) -> Result<(), StoreError> {
        let _writing = self.writing().await;
        sqlx::query(
            "UPDATE target_groups SET verify_state = 'repaired' \
             WHERE target = $1 AND group_name = $2 AND verify_state = 'drifted'",
        )
        .bind(target)
        .bind(group)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// What a full listing of the target's users found: how many there are.
    pub async fn record_users_listed(
        &self,
        target: &str,
        users: i64,
        now: &str,
    ) -> Result<(), StoreError> {
        let _writing = self.writing().await;
        sqlx::query(
            "INSERT INTO target_verification (target, users_listed, listed_at) VALUES ($1, $2, $3) \
             ON CONFLICT (target) DO UPDATE SET users_listed = excluded.users_listed, \
             listed_at = excluded.listed_at",
        )
        .bind(target)
        .bind(users)
        .bind(now)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// A sign that the target lost state, which made rosterd verify all of it.
    pub async fn record_reset(
        &self,
        target: &str,
        reason: &str,
        now: &str,
    ) -> Result<(), StoreError> {
        let _writing = self.writing().await;
        sqlx::query(
            "INSERT INTO target_verification (target, reset_at, reset_reason) VALUES ($1, $2, $3) \
             ON CONFLICT (target) DO UPDATE SET reset_at = excluded.reset_at, \
             reset_reason = excluded.reset_reason",
        )
        .bind(target)
        .bind(now)
        .bind(reason)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// What each target's reads showed of it as a whole, by target.
    pub async fn target_verifications(
        &self,
    ) -> Result<BTreeMap<String, TargetVerification>, StoreError> {
        let rows = sqlx::query(
            "SELECT target, users_listed, listed_at, reset_at, reset_reason FROM target_verification",
        )
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok((
                    r.try_get(0)?,
                    TargetVerification {
                        users_listed: r.try_get(1)?,
                        listed_at: r.try_get(2)?,
                        reset_at: r.try_get(3)?,
                        reset_reason: r.try_get(4)?,
                    },
                ))
            })
            .collect()
    }

    /// The target lost a group rosterd knew: forget it and record why.
    pub async fn record_group_missing(
        &self,
        target: &str,
        group: &str,
        now: &str,
    ) -> Result<(), StoreError> {
        let drift = [Drift {
            kind: DriftKind::GroupMissing,
            user_id: None,
            worker_key: None,
            detail: None,
        }];
        let (_writing, mut tx) = self.begin_write().await?;
        insert_drift(&mut tx, self.backend(), target, group, &drift, now).await?;
        for table in ["target_groups", "target_member_sets"] {
            sqlx::query(AssertSqlSafe(format!(
                "DELETE FROM {table} WHERE target = $1 AND group_name = $2"
            )))
            .bind(target)
            .bind(group)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    pub async fn drift(&self, target: &str, group: &str) -> Result<Vec<Drift>, StoreError> {
        let rows = sqlx::query(
            "SELECT kind, user_id, worker_key, detail FROM push_drift WHERE target = $1 AND group_name = $2 ORDER BY id",
        )
        .bind(target)
        .bind(group)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(Drift {
                    kind: DriftKind::parse(&r.try_get::<String, _>(0)?)?,
                    user_id: r.try_get(1)?,
                    worker_key: r.try_get(2)?,
                    detail: r.try_get(3)?,
                })
            })
            .collect()
    }

    // --- Users -------------------------------------------------------------------------------

    pub async fn target_users(
        &self,
        target: &str,
    ) -> Result<HashMap<String, CachedUser>, StoreError> {
        let rows = sqlx::query(
            "SELECT worker_key, match_value, user_id, checked_at FROM target_users WHERE target = $1",
        )
        .bind(target)
        .fetch_all(self.pool())
        .await?;
        let mut out = HashMap::with_capacity(rows.len());
        for row in rows {
            out.insert(
                row.try_get(0)?,
                CachedUser {
                    match_value: row.try_get(1)?,
                    user_id: row.try_get(2)?,
                    checked_at: row.try_get(3)?,
                },
            );
        }
        Ok(out)
    }

    /// Caches lookups: (worker key, value looked up, user id or none). `moved` are the
    /// workers whose cached user id this replaces: (worker id, key, the old user id), which
    /// may still be in the target's groups (see [`super::confirmed`]).
    pub async fn save_target_users(
        &self,
        target: &str,
        users: &[(String, String, Option<String>)],
        moved: &[(u32, String, String)],
        now: &str,
    ) -> Result<(), StoreError> {
        let (_writing, mut tx) = self.begin_write().await?;
        move_old_ids(&mut tx, target, moved).await?;
        insert_rows(
            &mut tx,
            self.backend(),
            "target_users (target, worker_key, match_value, user_id, checked_at)",
            &[
                Col::SameText(target),
                Col::Text,
                Col::Text,
                Col::Text,
                Col::SameText(now),
            ],
            "ON CONFLICT (target, worker_key) DO UPDATE SET match_value = excluded.match_value, \
             user_id = excluded.user_id, checked_at = excluded.checked_at",
            users,
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Makes cached lookups stale, so that those workers are looked up again. The user ids
    /// stay: they are what the target's groups may hold.
    pub async fn forget_target_users(&self, target: &str, keys: &[&str]) -> Result<(), StoreError> {
        let (_writing, mut tx) = self.begin_write().await?;
        for key in keys {
            sqlx::query(
                "UPDATE target_users SET checked_at = '' WHERE target = $1 AND worker_key = $2",
            )
            .bind(target)
            .bind(*key)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// The workers listed as unprovisioned for a target, by group.
    pub async fn unprovisioned_keys(
        &self,
        target: &str,
    ) -> Result<BTreeMap<String, BTreeSet<String>>, StoreError> {
        let sql = format!(
            "SELECT group_name, {} FROM push_unprovisioned WHERE target = $1 GROUP BY group_name",
            json_agg(self.backend(), "worker_key")
        );
        grouped_json(self.pool(), &sql, Some(target)).await
    }

    /// Replaces a pair's unprovisioned workers, keeping the `since` of those still listed.
    /// `known` is what [`Store::unprovisioned_keys`] listed for the pair.
    pub async fn set_unprovisioned(
        &self,
        target: &str,
        group: &str,
        workers: &BTreeMap<String, Option<String>>,
        known: &BTreeSet<String>,
        now: &str,
    ) -> Result<(), StoreError> {
        let gone: Vec<&String> = known.iter().filter(|k| !workers.contains_key(*k)).collect();
        let new: Vec<(&String, &Option<String>)> = workers
            .iter()
            .filter(|(k, _)| !known.contains(*k))
            .collect();
        if gone.is_empty() && new.is_empty() {
            return Ok(());
        }
        let (_writing, mut tx) = self.begin_write().await?;
        let gone: Vec<_> = gone.iter().map(|k| (k,)).collect();
        delete_rows(
            &mut tx,
            self.backend(),
            "push_unprovisioned",
            "target, group_name, worker_key",
            &[Col::SameText(target), Col::SameText(group), Col::Text],
            &gone,
        )
        .await?;
        insert_rows(
            &mut tx,
            self.backend(),
            "push_unprovisioned (target, group_name, worker_key, match_value, since)",
            &[
                Col::SameText(target),
                Col::SameText(group),
                Col::Text,
                Col::Text,
                Col::SameText(now),
            ],
            "",
            &new,
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn unprovisioned(&self) -> Result<Vec<Unprovisioned>, StoreError> {
        let rows = sqlx::query(
            "SELECT target, group_name, worker_key, match_value, since FROM push_unprovisioned \
             ORDER BY target, group_name, worker_key",
        )
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(Unprovisioned {
                    target: r.try_get(0)?,
                    group: r.try_get(1)?,
                    worker_key: r.try_get(2)?,
                    match_value: r.try_get(3)?,
                    since: r.try_get(4)?,
                })
            })
            .collect()
    }

    // --- Health ------------------------------------------------------------------------------

    pub async fn set_target_health(
        &self,
        target: &str,
        healthy: bool,
        reason: Option<&str>,
        now: &str,
    ) -> Result<(), StoreError> {
        let _writing = self.writing().await;
        sqlx::query(
            "INSERT INTO target_health (target, healthy, reason, since) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (target) DO UPDATE SET healthy = excluded.healthy, reason = excluded.reason, \
             since = CASE WHEN target_health.healthy = excluded.healthy THEN target_health.since ELSE excluded.since END",
        )
        .bind(target)
        .bind(i64::from(healthy))
        .bind(reason)
        .bind(now)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    pub async fn target_health(&self) -> Result<Vec<TargetHealth>, StoreError> {
        let rows =
            sqlx::query("SELECT target, healthy, reason, since FROM target_health ORDER BY target")
                .fetch_all(self.pool())
                .await?;
        rows.iter()
            .map(|r| {
                Ok(TargetHealth {
                    target: r.try_get(0)?,
                    healthy: r.try_get::<i64, _>(1)? != 0,
                    reason: r.try_get(2)?,
                    since: r.try_get(3)?,
                })
            })
            .collect()
    }
}

impl Store {
    // --- Lookup ------------------------------------------------------------------------------

    pub async fn set_target_lookup(&self, lookup: &TargetLookup) -> Result<(), StoreError> {
        let _writing = self.writing().await;
        sqlx::query(
            "INSERT INTO target_lookup (target, attribute, case_exact, source, checked_at) \
             VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (target) DO UPDATE SET attribute = excluded.attribute, \
             case_exact = excluded.case_exact, source = excluded.source, checked_at = excluded.checked_at",
        )
        .bind(&lookup.target)
        .bind(&lookup.attribute)
        .bind(i64::from(lookup.case_exact))
        .bind(&lookup.source)
        .bind(&lookup.checked_at)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// What was learned about each target's filters, by target.
    pub async fn target_lookups(&self) -> Result<BTreeMap<String, TargetLookup>, StoreError> {
        let rows = sqlx::query(
            "SELECT target, attribute, case_exact, source, checked_at FROM target_lookup",
        )
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                let lookup = TargetLookup {
                    target: r.try_get(0)?,
                    attribute: r.try_get(1)?,
                    case_exact: r.try_get::<i64, _>(2)? != 0,
                    source: r.try_get(3)?,
                    checked_at: r.try_get(4)?,
                };
                Ok((lookup.target.clone(), lookup))
            })
            .collect()
    }
}

/// A pair's last set and display name in a batch of confirmations.
type PairConfirmed<'a> = (Option<&'a EncodedSet>, Option<&'a str>);

/// Marks outbox entries done, each after `attempts` requests.
async fn finish(
    tx: &mut Transaction<'_, Any>,
    ids: &[i64],
    attempts: i64,
    now: &str,
) -> Result<(), StoreError> {
    let list: Vec<String> = (0..ids.len()).map(|i| format!("${}", i + 3)).collect();
    let sql = format!(
        "UPDATE outbox SET status = 'done', finished_at = $1, attempts = attempts + $2 WHERE id IN ({})",
        list.join(", ")
    );
    let mut query = sqlx::query(AssertSqlSafe(sql)).bind(now).bind(attempts);
    for id in ids {
        query = query.bind(*id);
    }
    query.execute(&mut **tx).await?;
    Ok(())
}

async fn insert_drift(
    tx: &mut Transaction<'_, Any>,
    backend: Backend,
    target: &str,
    group: &str,
    drift: &[Drift],
    now: &str,
) -> Result<(), StoreError> {
    let rows: Vec<_> = drift
        .iter()
        .map(|d| (&d.kind, &d.user_id, &d.worker_key, &d.detail))
        .collect();
    insert_rows(
        tx,
        backend,
        "push_drift (target, group_name, kind, user_id, worker_key, detail, found_at)",
        &[
            Col::SameText(target),
            Col::SameText(group),
            Col::Text,
            Col::Text,
            Col::Text,
            Col::Text,
            Col::SameText(now),
        ],
        "",
        &rows,
    )
    .await
}
