//! What each target confirmed per group, as one compact row per (target, group): the workers
//! whose user the target holds, as a roaring set of worker ids, and the few other entries by
//! user id. A push plans on these sets (wanted minus confirmed, confirmed minus wanted) and a
//! confirmation rewrites one row; nothing is stored per membership.
//!
//! The invariant that makes a worker id enough: a worker is in a group's set only while
//! `target_users` caches the user id the target holds for them. When a lookup gives a worker
//! another id (the target re-created the user), [`Store::save_target_users`] moves the old id
//! out of every set into `foreign`, in the same transaction, so that it is removed, not lost.

use std::collections::{BTreeMap, HashMap};

use roaring::RoaringBitmap;
use sqlx::{AnyConnection, Row};

use super::error::corrupt;
use super::members::{decode_set, encode_set};
use super::numbering::read_worker_ids;
use super::{Store, StoreError};

/// The entries a target holds in one group, as far as rosterd knows.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Confirmed {
    /// Workers whose user (the id `target_users` caches for them) the target holds.
    pub workers: RoaringBitmap,
    /// Every other entry: user id → the worker it was known as, if any.
    pub foreign: BTreeMap<String, Option<String>>,
}

impl Confirmed {
    /// Applies a confirmed request's member changes: `added` join, `removed` leave (a
    /// member with a worker number by it, any other by its user id).
    pub fn apply(&mut self, added: &[super::TargetMember], removed: &[super::TargetMember]) {
        for m in added {
            match m.worker {
                Some(id) => {
                    self.workers.insert(id);
                }
                None => {
                    self.foreign.insert(m.user_id.clone(), m.worker_key.clone());
                }
            }
        }
        for m in removed {
            match m.worker {
                Some(id) => {
                    self.workers.remove(id);
                }
                None => {
                    self.foreign.remove(&m.user_id);
                }
            }
        }
    }

    pub fn len(&self) -> usize {
        self.workers.len() as usize + self.foreign.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// What the target has not confirmed of `desired`: the workers still to join (less
    /// those in `without`, who have no account there), and how many entries still to leave,
    /// entries that are no worker's included.
    pub fn unsent(&self, desired: &RoaringBitmap, without: &RoaringBitmap) -> (RoaringBitmap, u64) {
        let joins = &(desired - &self.workers) - without;
        let leaves = (&self.workers - desired).len() + self.foreign.len() as u64;
        (joins, leaves)
    }

    /// The row's columns: the set, the foreign entries as JSON, the count.
    pub fn encode(&self) -> Result<EncodedSet, StoreError> {
        let foreign: Vec<(&String, &Option<String>)> = self.foreign.iter().collect();
        Ok(EncodedSet {
            members: encode_set(&self.workers)?,
            foreign: serde_json::to_string(&foreign).unwrap_or_else(|_| "[]".into()),
            count: self.len() as i64,
        })
    }

    fn decode(what: &str, members: &[u8], foreign: &str) -> Result<Confirmed, StoreError> {
        let workers = decode_set(members).map_err(|e| corrupt(what, e))?;
        let foreign: Vec<(String, Option<String>)> =
            serde_json::from_str(foreign).map_err(|e| corrupt(what, e))?;
        Ok(Confirmed {
            workers,
            foreign: foreign.into_iter().collect(),
        })
    }
}

/// A [`Confirmed`] as it is stored.
#[derive(Debug, Clone)]
pub struct EncodedSet {
    members: Vec<u8>,
    foreign: String,
    count: i64,
}

/// Writes one pair's row, replacing what was known.
pub(super) async fn write_set(
    conn: &mut AnyConnection,
    target: &str,
    group: &str,
    set: &EncodedSet,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO target_member_sets (target, group_name, members, foreign_members, member_count) \
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (target, group_name) DO UPDATE SET \
         members = excluded.members, foreign_members = excluded.foreign_members, \
         member_count = excluded.member_count",
    )
    .bind(target)
    .bind(group)
    .bind(set.members.clone())
    .bind(set.foreign.as_str())
    .bind(set.count)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Every pair's row of a target.
pub(super) async fn read_sets(
    conn: &mut AnyConnection,
    target: &str,
) -> Result<BTreeMap<String, Confirmed>, StoreError> {
    read_sets_of(conn, target, None).await
}

/// The sets of `target`: every group's, or only `group`'s.
async fn read_sets_of(
    conn: &mut AnyConnection,
    target: &str,
    group: Option<&str>,
) -> Result<BTreeMap<String, Confirmed>, StoreError> {
    let rows = sqlx::query(
        "SELECT group_name, members, foreign_members FROM target_member_sets WHERE target = $1 \
         AND ($2 = '' OR group_name = $2)",
    )
    .bind(target)
    .bind(group.unwrap_or(""))
    .fetch_all(&mut *conn)
    .await?;
    let mut out = BTreeMap::new();
    for row in rows {
        let group: String = row.try_get(0)?;
        let members: Vec<u8> = row.try_get(1)?;
        let foreign: String = row.try_get(2)?;
        let what = format!("the members target `{target}` confirmed in group `{group}`");
        out.insert(group, Confirmed::decode(&what, &members, &foreign)?);
    }
    Ok(out)
}

/// Moves each changed worker's old user id out of the target's sets into their foreign
/// entries (see the module's invariant). `moved`: (worker id, key, the old user id).
pub(super) async fn move_old_ids(
    conn: &mut AnyConnection,
    target: &str,
    moved: &[(u32, String, String)],
) -> Result<(), StoreError> {
    if moved.is_empty() {
        return Ok(());
    }
    let changed: RoaringBitmap = moved.iter().map(|(worker, _, _)| *worker).collect();
    for (group, mut set) in read_sets(conn, target).await? {
        if set.workers.is_disjoint(&changed) {
            continue;
        }
        for (worker, key, old) in moved {
            if set.workers.remove(*worker) {
                set.foreign.insert(old.clone(), Some(key.clone()));
            }
        }
        write_set(conn, target, &group, &set.encode()?).await?;
    }
    Ok(())
}

impl Store {
    /// What the target confirmed, per pushed group.
    pub async fn target_sets(
        &self,
        target: &str,
    ) -> Result<BTreeMap<String, Confirmed>, StoreError> {
        read_sets(&mut *self.pool.acquire().await?, target).await
    }

    /// What the target confirmed of one group (empty when nothing was).
    pub async fn target_set(&self, target: &str, group: &str) -> Result<Confirmed, StoreError> {
        Ok(
            read_sets_of(&mut *self.pool.acquire().await?, target, Some(group))
                .await?
                .remove(group)
                .unwrap_or_default(),
        )
    }

    /// Every pushed group's confirmed members by user id (→ worker key, when known): the sets
    /// read out with the cached user ids. For reports and tests; a push plans on the sets.
    pub async fn target_members(
        &self,
        target: &str,
    ) -> Result<BTreeMap<String, BTreeMap<String, Option<String>>>, StoreError> {
        let sets = self.target_sets(target).await?;
        let workers = self.worker_ids().await?;
        let users = self.target_users(target).await?;
        let mut out = BTreeMap::new();
        for (group, set) in sets {
            let mut members = set.foreign;
            for id in &set.workers {
                let key = workers.stored_key(id)?;
                let user = users.get(key).and_then(|u| u.user_id.clone()).ok_or_else(|| {
                    corrupt(
                        "the members a target confirmed",
                        format!("worker `{key}` is in group `{group}` of target `{target}` without a cached user id"),
                    )
                })?;
                members.insert(user, Some(key.to_string()));
            }
            out.insert(group, members);
        }
        Ok(out)
    }

    /// How many entries each pushed group has in the target, as far as rosterd knows.
    pub async fn target_member_counts(
        &self,
        target: &str,
    ) -> Result<BTreeMap<String, i64>, StoreError> {
        let rows = sqlx::query(
            "SELECT group_name, member_count FROM target_member_sets WHERE target = $1",
        )
        .bind(target)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
            .collect()
    }
}

/// Carries the rows of `target_members` (migrations 2 to 7) into sets: a member whose
/// worker is numbered and whose cached user id is the one held goes into the set, every
/// other one into the foreign entries, so that nothing the target holds is forgotten.
pub(super) async fn carry_target_members(conn: &mut AnyConnection) -> Result<usize, StoreError> {
    let workers = read_worker_ids(conn).await?;
    let cached: HashMap<(String, String), String> = sqlx::query(
        "SELECT target, worker_key, user_id FROM target_users WHERE user_id IS NOT NULL",
    )
    .fetch_all(&mut *conn)
    .await?
    .iter()
    .map(|r| Ok(((r.try_get(0)?, r.try_get(1)?), r.try_get(2)?)))
    .collect::<Result<_, sqlx::Error>>()?;
    let rows = sqlx::query(
        "SELECT target, group_name, user_id, worker_key FROM target_members \
         ORDER BY target, group_name",
    )
    .fetch_all(&mut *conn)
    .await?;
    let mut sets: BTreeMap<(String, String), Confirmed> = BTreeMap::new();
    for row in &rows {
        let target: String = row.try_get(0)?;
        let group: String = row.try_get(1)?;
        let user: String = row.try_get(2)?;
        let key: Option<String> = row.try_get(3)?;
        let set = sets.entry((target.clone(), group)).or_default();
        let id = key.as_deref().and_then(|k| {
            let cached = cached.get(&(target.clone(), k.to_string()))?;
            (*cached == user).then(|| workers.id(k)).flatten()
        });
        match id {
            Some(id) => {
                set.workers.insert(id);
            }
            None => {
                set.foreign.insert(user, key);
            }
        }
    }
    for ((target, group), set) in &sets {
        write_set(conn, target, group, &set.encode()?).await?;
    }
    Ok(rows.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unsent_leaves_out_workers_without_an_account_and_counts_foreign_entries() {
        let held = Confirmed {
            workers: [1, 2, 3].into_iter().collect(),
            foreign: BTreeMap::from([("u-9".to_string(), None)]),
        };
        let desired: RoaringBitmap = [2, 3, 4, 5].into_iter().collect();
        let without: RoaringBitmap = [5].into_iter().collect();
        let (joins, leaves) = held.unsent(&desired, &without);
        assert_eq!(joins.iter().collect::<Vec<_>>(), vec![4]);
        assert_eq!(leaves, 2, "worker 1 and the foreign entry");
    }
}
