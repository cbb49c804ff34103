//! Verification: rosterd never takes what it sent for what a target holds.
//!
//! - Every sync reads back a slice of each target's pushed groups, oldest verification
//!   first, sized so that each is read at least once per `verify_every` over the runs the
//!   sync schedule makes ([`slice`]).
//! - A user id is sent in an add only once the target has shown it this run: looked up, or
//!   confirmed with batched `id eq` filters ([`TargetRun::confirm`]).
//! - Signs that the target lost state (a known group gone, a cached user id it does not
//!   know, a listing far smaller than the last) are [`Evidence`]: the target is then verified
//!   whole in the same run (its users listed, every cached id replaced, every group read).

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::Mutex;

use roaring::RoaringBitmap;

use super::resolve::Users;
use super::{Stop, TargetRun};
use crate::http::client::TargetError;
use crate::store::TargetGroup;

/// Ids confirmed with one filter, at most.
pub(super) const CONFIRM_BATCH: usize = 50;

/// A listing with fewer than this share of the users the last one held is a sign of reset.
const SHRUNK_BELOW: f64 = 0.5;

/// The groups of `known` (those pushed here: `pushed`) to read back in this run: the
/// `ceil(n / runs)` whose verification is oldest (never verified first), where `runs` is
/// how many syncs the schedule makes within `verify_every`, and every group whose
/// verification is older than `verify_every` anyway. At least one while there are any.
pub(super) fn slice(
    known: &BTreeMap<String, TargetGroup>,
    pushed: &BTreeSet<&str>,
    runs: u64,
    every: chrono::Duration,
    now: chrono::DateTime<chrono::Utc>,
) -> BTreeSet<String> {
    let mut candidates: Vec<(Option<chrono::DateTime<chrono::Utc>>, &str)> = known
        .values()
        .filter(|g| pushed.contains(g.group.as_str()))
        .map(|g| (verified_at(g), g.group.as_str()))
        .collect();
    // `None` (never verified) sorts first, then the oldest.
    candidates.sort();
    let share = candidates.len().div_ceil(runs.max(1) as usize);
    candidates
        .iter()
        .enumerate()
        .filter(|(i, (at, _))| *i < share || at.is_none_or(|at| now - at >= every))
        .map(|(_, (_, group))| group.to_string())
        .collect()
}

fn verified_at(g: &TargetGroup) -> Option<chrono::DateTime<chrono::Utc>> {
    let at = g.verified_at.as_deref()?;
    chrono::DateTime::parse_from_rfc3339(at)
        .ok()
        .map(|t| t.with_timezone(&chrono::Utc))
}

/// What this run has seen of the target: the workers whose user id it showed, and the
/// first sign that it lost state.
#[derive(Debug, Default)]
pub(crate) struct Evidence {
    confirmed: Mutex<RoaringBitmap>,
    reset: Mutex<Option<String>>,
    /// The target refused `or` filters: ids are confirmed one by one.
    one_by_one: std::sync::atomic::AtomicBool,
}

impl Evidence {
    /// Records a sign of reset; the first one is kept as the reason.
    pub fn reset(&self, reason: String) {
        let mut reset = crate::locks::lock(&self.reset);
        if reset.is_none() {
            tracing::warn!("{reason}; verifying the whole target in this run");
            *reset = Some(reason);
        }
    }

    pub fn reset_reason(&self) -> Option<String> {
        crate::locks::lock(&self.reset).clone()
    }

    fn unconfirmed(&self, workers: &RoaringBitmap) -> RoaringBitmap {
        workers - &*crate::locks::lock(&self.confirmed)
    }

    /// `workers`' user ids were shown by the target in this run.
    pub fn confirm(&self, workers: &RoaringBitmap) {
        *crate::locks::lock(&self.confirmed) |= workers;
    }
}

impl TargetRun<'_> {
    /// Confirms that the target has the user each of `workers` is cached with, unless this
    /// run has seen it already. The workers whose id it does not know (a sign of reset,
    /// recorded): none of them may be added; and the requests that took.
    pub(super) async fn confirm(
        &self,
        workers: &RoaringBitmap,
        users: &Users,
    ) -> Result<(RoaringBitmap, u64), Stop> {
        let todo = self.evidence.unconfirmed(workers);
        let ids: Vec<(u32, &str)> = todo
            .iter()
            .filter_map(|w| Some((w, users.ids.get(&w)?.as_str())))
            .collect();
        let mut unknown = RoaringBitmap::new();
        let mut requests = 0;
        for batch in ids.chunks(CONFIRM_BATCH) {
            let (held, sent) = self.held_ids(batch).await.map_err(Stop::Target)?;
            requests += sent;
            for &(worker, id) in batch {
                if !held.contains(id) {
                    unknown.insert(worker);
                }
            }
        }
        self.evidence.confirm(&(&todo - &unknown));
        if let Some(first) = unknown.min() {
            let key = self.desired.workers.key(first).unwrap_or("?");
            self.evidence.reset(format!(
                "target `{}`: {} cached user ids are no users of the target (worker `{key}`'s `{}`, for one): its users were re-created",
                self.name,
                unknown.len(),
                users.ids.get(&first).map_or("", String::as_str),
            ));
        }
        Ok((unknown, requests))
    }

    /// The ids of `batch` the target has: by one `or` filter, or one by one when it
    /// refuses such filters.
    async fn held_ids(&self, batch: &[(u32, &str)]) -> Result<(HashSet<String>, u64), TargetError> {
        use std::sync::atomic::Ordering;
        if !self.evidence.one_by_one.load(Ordering::Relaxed) {
            let ids: Vec<&str> = batch.iter().map(|(_, id)| *id).collect();
            match self.target.users_with_ids(&ids).await {
                Ok(found) => return Ok((found.into_iter().collect(), 1)),
                Err(e) if e.status() == Some(400) || e.status() == Some(501) => {
                    tracing::info!(
                        target_name = self.name,
                        "the target refuses `id eq` filters joined by `or` ({e}); confirming user ids one by one"
                    );
                    self.evidence.one_by_one.store(true, Ordering::Relaxed);
                }
                Err(e) => return Err(e),
            }
        }
        let mut held = HashSet::new();
        for (_, id) in batch {
            if self.target.is_user(id).await? {
                held.insert(id.to_string());
            }
        }
        Ok((held, batch.len() as u64))
    }

    /// A full listing found `count` users: far fewer than the last one is a sign of reset.
    pub(super) async fn listed(&self, count: usize) -> Result<(), Stop> {
        let before = self
            .store
            .target_verifications()
            .await?
            .remove(self.name)
            .and_then(|v| v.users_listed);
        if let Some(before) = before.filter(|&b| b >= 10) {
            if (count as f64) < before as f64 * SHRUNK_BELOW {
                self.evidence.reset(format!(
                    "target `{}`: its users were listed as {count}, down from {before} at the last listing",
                    self.name
                ));
            }
        }
        if !self.options.dry_run {
            self.store
                .record_users_listed(self.name, count as i64, &self.now)
                .await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group(name: &str, verified: Option<&str>) -> (String, TargetGroup) {
        let mut g = TargetGroup::new(name, format!("id-{name}"), name.into(), false);
        g.verified_at = verified.map(str::to_string);
        (name.to_string(), g)
    }

    #[test]
    fn the_slice_takes_the_oldest_share_and_whatever_is_overdue() {
        let now = chrono::DateTime::parse_from_rfc3339("2026-12-06T12:00:00Z")
            .unwrap()
            .with_timezone(&chrono::Utc);
        let known: BTreeMap<String, TargetGroup> = [
            group("a", Some("2026-12-06T11:00:00Z")),
            group("b", Some("2026-12-06T01:00:00Z")),
            group("c", None),
            group("d", Some("2026-12-04T00:00:00Z")),
            group("e", Some("2026-12-06T06:00:00Z")),
            group("not-pushed", None),
        ]
        .into_iter()
        .collect();
        let pushed: BTreeSet<&str> = ["a", "b", "c", "d", "e"].into();
        let day = chrono::Duration::hours(24);
        let names = |s: BTreeSet<String>| s.into_iter().collect::<Vec<_>>();
        // 5 groups over 96 runs: one a run, the never verified first; `d` is overdue.
        assert_eq!(names(slice(&known, &pushed, 96, day, now)), ["c", "d"]);
        // Over 2 runs: 3 a run, oldest first.
        assert_eq!(names(slice(&known, &pushed, 2, day, now)), ["b", "c", "d"]);
        // One run a day: all of them.
        assert_eq!(slice(&known, &pushed, 1, day, now).len(), 5);
        assert!(slice(&BTreeMap::new(), &pushed, 96, day, now).is_empty());
    }

    #[test]
    fn the_first_sign_of_reset_is_the_reason_and_confirmed_workers_are_remembered() {
        let e = Evidence::default();
        e.confirm(&[1, 2].into_iter().collect());
        assert_eq!(e.reset_reason(), None);
        e.reset("first".into());
        e.reset("second".into());
        assert_eq!(e.reset_reason().as_deref(), Some("first"));
        let asked: RoaringBitmap = [1, 2, 3, 4].into_iter().collect();
        assert_eq!(e.unconfirmed(&asked).iter().collect::<Vec<_>>(), [3, 4]);
        e.confirm(&[3].into_iter().collect());
        assert_eq!(e.unconfirmed(&asked).iter().collect::<Vec<_>>(), [4]);
    }
}
