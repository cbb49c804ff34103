//! One (target, group) pair: what it should hold, the difference from what the target holds,
//! the failsafe, and the batches sent. Finding, creating and reading back the group is in
//! [`super::found`]; a group that leaves the rules in [`super::unpush`].

use std::collections::{BTreeMap, BTreeSet};

use roaring::RoaringBitmap;

use super::outcome::Halt;
use super::resolve::Users;
use super::send::Created;
use super::{Held, PairReport, Stop, TargetRun};
use crate::config::PushFailsafe;
use crate::rules::{Failsafe, Group, Push};
use crate::store::{
    Confirmed, HoldStatus, OutboxAction, OutboxEntry, OutboxPayload, OutboxStatus, PushHold,
    TargetGroup, TargetMember, WorkerIds,
};

/// Why a push that removes `remove` of the `current` members in the target must be held.
pub fn failsafe_reason(
    remove: usize,
    current: usize,
    target: &PushFailsafe,
    group: &Failsafe,
) -> Option<String> {
    if remove == 0 {
        return None;
    }
    let percent = group
        .max_remove_percent
        .unwrap_or(target.max_remove_percent);
    if let Some(max) = group.max_remove_count.or(target.max_remove_count) {
        if remove as u64 > max {
            return Some(format!(
                "the push would remove {remove} members, more than max_remove_count ({max})"
            ));
        }
    }
    let share = remove as f64 * 100.0 / current.max(1) as f64;
    (share > percent).then(|| {
        format!(
            "the push would remove {remove} of {current} members ({share:.1}%), more than max_remove_percent ({percent}%)"
        )
    })
}

/// The PATCH entries that make `adds` and `removes`, each carrying up to `per_request`
/// member changes: additions first, then removals, with the batch where they meet carrying
/// both (an `update`), so that a group costs `ceil((adds + removes) / per_request)` requests.
pub(super) fn batches(
    adds: &[TargetMember],
    removes: &[TargetMember],
    per_request: usize,
    scim_id: &str,
) -> Vec<(OutboxAction, OutboxPayload)> {
    let per_request = per_request.max(1);
    let total = adds.len() + removes.len();
    let mut out = Vec::with_capacity(total.div_ceil(per_request));
    let mut start = 0;
    while start < total {
        let end = (start + per_request).min(total);
        let added = &adds[start.min(adds.len())..end.min(adds.len())];
        let removed = &removes[start.saturating_sub(adds.len())..end.saturating_sub(adds.len())];
        let (action, members, remove) = match (added.is_empty(), removed.is_empty()) {
            (false, true) => (OutboxAction::Add, added.to_vec(), Vec::new()),
            (true, false) => (OutboxAction::Remove, removed.to_vec(), Vec::new()),
            _ => (OutboxAction::Update, added.to_vec(), removed.to_vec()),
        };
        out.push((
            action,
            OutboxPayload {
                scim_id: Some(scim_id.to_string()),
                members,
                remove,
                ..OutboxPayload::default()
            },
        ));
        start = end;
    }
    out
}

/// What the target should hold and does hold, as members to add and to remove: set
/// differences on the worker numbering, then the user ids of only those that differ.
fn difference(
    want: &RoaringBitmap,
    current: &Confirmed,
    users: &Users,
    workers: &WorkerIds,
) -> (Vec<TargetMember>, Vec<TargetMember>) {
    let member = |id: u32| -> Option<TargetMember> {
        Some(TargetMember {
            user_id: users.ids.get(&id)?.clone(),
            worker_key: workers.key(id).map(str::to_string),
            worker: Some(id),
        })
    };
    let adds = (want - &current.workers)
        .iter()
        .filter_map(member)
        .collect();
    let mut removes: Vec<TargetMember> = (&current.workers - want)
        .iter()
        .filter_map(member)
        .collect();
    removes.extend(current.foreign.iter().map(|(user, key)| TargetMember {
        user_id: user.clone(),
        worker_key: key.clone(),
        worker: None,
    }));
    (adds, removes)
}

/// Entries the target holds, by user id, as [`Confirmed`]: a user id that is a worker's
/// (as far as `users` knows) goes into the set; any other into the foreign entries, with
/// the worker `known` names for it.
pub(super) fn confirmed_of<'a>(
    held: impl IntoIterator<Item = &'a str>,
    users: &Users,
    known: Option<&Confirmed>,
) -> Confirmed {
    let mut out = Confirmed::default();
    for user in held {
        match users.workers.get(user) {
            Some(&id) => {
                out.workers.insert(id);
            }
            None => {
                let key = known.and_then(|k| k.foreign.get(user).cloned().flatten());
                out.foreign.insert(user.to_string(), key);
            }
        }
    }
    out
}

/// `set` with every foreign entry that is a worker's user (as far as `users` knows) moved
/// into the worker set: an entry added by hand or carried over, or a member of a group found
/// in the target, is then planned as the member it is, not removed and added again.
fn settled(set: Confirmed, users: &Users) -> Confirmed {
    let Confirmed {
        mut workers,
        foreign,
    } = set;
    let foreign = foreign
        .into_iter()
        .filter(|(user, _)| match users.workers.get(user) {
            Some(&id) => {
                workers.insert(id);
                false
            }
            None => true,
        })
        .collect();
    Confirmed { workers, foreign }
}

/// What the store knows of a pair before it is pushed.
pub(super) struct Stored<'a> {
    /// The target group, once found or created.
    pub group: Option<&'a TargetGroup>,
    /// The members the target confirmed.
    pub members: Option<&'a Confirmed>,
    /// The workers listed as having no account on the target.
    pub unprovisioned: Option<&'a BTreeSet<String>>,
    /// A stopped push left requests of the pair unconfirmed: read the group back first.
    pub unsure: bool,
    /// The group is due to be verified in this run.
    pub verify: bool,
}

/// Where a pair's push starts: nothing known (find or create the group), the group and
/// what it holds as stored, or the group to read back first: to verify it (differences are
/// drift), or to settle rosterd's own requests whose answers were lost (they are not).
enum Start {
    Unknown,
    Known(TargetGroup, Confirmed),
    ReadBack(TargetGroup, Confirmed, Read),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Read {
    Verify,
    Settle,
}

impl TargetRun<'_> {
    pub(super) async fn push_pair(
        &self,
        group: &Group,
        push: &Push,
        users: &Users,
        stored: Stored<'_>,
    ) -> Result<PairReport, Stop> {
        let mut report = PairReport {
            group: group.name.clone(),
            display_name: push.display_name.clone(),
            ..PairReport::default()
        };
        let before = stored.unprovisioned.cloned().unwrap_or_default();
        let (mut want, mut unprovisioned) = self
            .wanted(&group.name, users, &before, &mut report)
            .await?;
        // Workers looked up again after the target refused their ids: this pair's own view.
        let mut rechecked: Option<Users> = None;
        let mut start = match stored.group {
            None => Start::Unknown,
            Some(state) => {
                let set = stored.members.cloned().unwrap_or_default();
                if stored.verify {
                    Start::ReadBack(state.clone(), set, Read::Verify)
                } else if stored.unsure {
                    Start::ReadBack(state.clone(), set, Read::Settle)
                } else {
                    Start::Known(state.clone(), set)
                }
            }
        };
        // Rounds: the group lost (find or create it again, at most 3 times), or an answer
        // lost (read back and go on; `retries` times in a row without progress at most).
        let (mut lost, mut stalls) = (0, 0);
        loop {
            // The target lost state: this pass stops here, and the next verifies all of it.
            if !self.reconcile && self.evidence.reset_reason().is_some() {
                return Ok(report);
            }
            let users_now = rechecked.as_ref().unwrap_or(users);
            match self
                .sync_pair(
                    group,
                    push,
                    &want,
                    users_now,
                    start,
                    &mut stalls,
                    &mut report,
                )
                .await
            {
                Ok(()) => {
                    if report.drift > 0 && report.held.is_none() && !self.options.dry_run {
                        self.store.record_repaired(self.name, &group.name).await?;
                    }
                    return Ok(report);
                }
                // Perhaps for user ids the target no longer knows: look those workers up
                // again (once) and, when their ids changed, plan again in this run.
                Err(Halt::Refused(refusal, at)) if rechecked.is_none() => {
                    let Some(fresh) = self.recheck(users, &refusal.workers).await? else {
                        report.error = Some(self.refusal_stands(&group.name, &refusal).await?);
                        break;
                    };
                    self.store
                        .outbox_superseded(&[refusal.entry], &self.now)
                        .await?;
                    (want, unprovisioned) = self
                        .wanted(&group.name, &fresh, &unprovisioned, &mut report)
                        .await?;
                    rechecked = Some(fresh);
                    start = match at {
                        Some((state, set)) => Start::ReadBack(state, set, Read::Settle),
                        None => Start::Unknown,
                    };
                }
                Err(Halt::Refused(refusal, _)) => {
                    report.error = Some(self.refusal_stands(&group.name, &refusal).await?);
                    break;
                }
                Err(Halt::GroupMissing) if lost < 3 => {
                    lost += 1;
                    tracing::warn!(target_name = self.name, group = %group.name, "the target lost the group; finding or creating it again");
                    if let Some(known) = stored.group.filter(|_| lost == 1) {
                        self.evidence.reset(format!(
                            "target `{}`: group `{}` ({}) that rosterd pushed is gone",
                            self.name, group.name, known.scim_id
                        ));
                    }
                    start = Start::Unknown;
                }
                Err(Halt::Reread(state, set)) if stalls <= self.config.retries => {
                    // A request's outcome is unknown: read what the target holds, then
                    // send only what is still missing.
                    start = Start::ReadBack(state, set, Read::Settle);
                }
                Err(Halt::Stop(stop)) => return Err(stop),
                Err(halt) => {
                    report.error = Some(self.gave_up(&group.name, halt, lost, stalls));
                    break;
                }
            }
        }
        Ok(report)
    }

    /// Why a pair's push ends without finishing, for its report.
    fn gave_up(&self, group: &str, halt: Halt, lost: u32, stalls: u32) -> String {
        match halt {
            Halt::GroupMissing => format!(
                "the target lost the group {lost} times in this push; check who deletes it there (the next push finds or creates it again)"
            ),
            Halt::Unknown | Halt::Reread(..) => format!(
                "the answers to {} requests in a row were lost and reading the group back showed no progress (targets.{}.retries); check the target's health, the next push reads the group back and goes on",
                stalls, self.name
            ),
            Halt::Failed(message) | Halt::Pending(message) => {
                tracing::warn!(target_name = self.name, group = %group, "the group's push failed: {message}");
                message
            }
            // The caller records a refusal that stands; its answer is the reason.
            Halt::Refused(refusal, _) => refusal.error.to_string(),
            // The caller stops the whole target's push on it; its text is the reason.
            Halt::Stop(stop) => stop.to_string(),
        }
    }

    /// The group's wanted members who have an account in the target; those without one are
    /// stored as unprovisioned (replacing `before`) and counted in the report. Also the keys
    /// of those without one.
    async fn wanted(
        &self,
        group: &str,
        users: &Users,
        before: &BTreeSet<String>,
        report: &mut PairReport,
    ) -> Result<(RoaringBitmap, BTreeSet<String>), Stop> {
        let none = RoaringBitmap::new();
        let desired = self.desired.members.get(group).unwrap_or(&none);
        let want = desired & &users.accounts;
        report.members = want.len() as usize;
        let unprovisioned: BTreeMap<String, Option<String>> = (desired - &users.accounts)
            .iter()
            .filter_map(|id| {
                let key = self.desired.workers.key(id)?;
                Some((key.to_string(), self.match_value(id).map(str::to_string)))
            })
            .collect();
        report.unprovisioned = unprovisioned.len();
        if !self.options.dry_run {
            self.store
                .set_unprovisioned(self.name, group, &unprovisioned, before, &self.now)
                .await?;
        }
        Ok((want, unprovisioned.into_keys().collect()))
    }

    #[allow(
        clippy::too_many_arguments,
        reason = "one pair's inputs, each of them used"
    )]
    async fn sync_pair(
        &self,
        group: &Group,
        push: &Push,
        want: &RoaringBitmap,
        users: &Users,
        start: Start,
        stalls: &mut u32,
        report: &mut PairReport,
    ) -> Result<(), Halt> {
        let Some((state, mut current, duplicates)) = self
            .begin(group, push, want, users, start, stalls, report)
            .await?
        else {
            return Ok(());
        };
        report.scim_id = Some(state.scim_id.clone());
        // A member held twice is removed (every entry of them goes) and, when wanted, added
        // back once: first the removals, then the plan as if they were not held.
        let dedupe = self.dedupe(&duplicates, users, &mut current);
        // An add only of a user id the target has shown in this run.
        let adding: RoaringBitmap = want - &current.workers;
        let (unknown, _) = self.confirm(&adding, users).await?;
        if !unknown.is_empty() {
            return Err(Halt::Failed(format!(
                "{} members to add have cached user ids the target does not know; nothing was added, and the target is verified whole",
                unknown.len()
            )));
        }
        let (adds, removes) = difference(want, &current, users, &self.desired.workers);
        // Entries that are no user's of the target are not people: removing them does not
        // count against the failsafe (a reconcile knows them, having listed every user).
        let people = match &users.all {
            Some(all) => removes
                .iter()
                .filter(|m| m.worker.is_some() || all.contains(&m.user_id))
                .count(),
            None => removes.len(),
        };
        let reason = failsafe_reason(
            people,
            current.len(),
            &self.config.failsafe,
            &group.failsafe,
        );
        // A guardrail the memberships break holds any change to the groups it concerns.
        let changes = !adds.is_empty() || !removes.is_empty() || !dedupe.is_empty();
        let reason = match (reason, self.guarded.get(&group.name)) {
            (Some(r), Some(g)) if changes => Some(format!("{r}; {g}")),
            (None, Some(g)) if changes => Some(g.clone()),
            (r, _) => r,
        };
        if !self
            .failsafe(
                &group.name,
                reason,
                adds.len(),
                people,
                current.len(),
                report,
            )
            .await?
        {
            return Ok(());
        }
        let mut entries = Vec::new();
        if !dedupe.is_empty() {
            entries.extend(batches(
                &[],
                &dedupe,
                self.target.members_per_request(self.config),
                &state.scim_id,
            ));
        }
        if !state.linked && state.display_name != push.display_name {
            report.renamed = true;
            entries.push((
                OutboxAction::Rename,
                OutboxPayload {
                    display_name: Some(push.display_name.clone()),
                    scim_id: Some(state.scim_id.clone()),
                    ..OutboxPayload::default()
                },
            ));
        }
        entries.extend(batches(
            &adds,
            &removes,
            self.target.members_per_request(self.config),
            &state.scim_id,
        ));
        match self
            .send_all(&group.name, entries, &mut current, report)
            .await
        {
            Ok(_) => Ok(()),
            Err(Halt::Unknown) => Err(Halt::Reread(state, current)),
            Err(Halt::Refused(refusal, None)) => {
                Err(Halt::Refused(refusal, Some((state, current))))
            }
            Err(e) => Err(e),
        }
    }

    /// The pair's group and what it holds, from where its push starts: read back (with
    /// the members it holds twice), as stored, or found or created. `None` when reading it
    /// back showed that the target lost state (the next pass verifies all of it).
    #[allow(
        clippy::too_many_arguments,
        reason = "one pair's inputs, each of them used"
    )]
    async fn begin(
        &self,
        group: &Group,
        push: &Push,
        want: &RoaringBitmap,
        users: &Users,
        start: Start,
        stalls: &mut u32,
        report: &mut PairReport,
    ) -> Result<Option<(TargetGroup, Confirmed, BTreeSet<String>)>, Halt> {
        Ok(Some(match start {
            Start::ReadBack(mut state, stored, read) => {
                let (current, twice, renamed) = self
                    .read_back(&state, &stored, users, read == Read::Verify, report)
                    .await?;
                // The entries a verification read are the ids rosterd cached: a sample of
                // them is confirmed to be users, or a target that re-created its users and
                // kept the old ids in its groups would look as pushed.
                if read == Read::Verify && !self.reconcile {
                    let sample: RoaringBitmap = current
                        .workers
                        .iter()
                        .take(super::verify::CONFIRM_BATCH)
                        .collect();
                    let (_, requests) = self.confirm(&sample, users).await?;
                    self.verify_reads
                        .fetch_add(requests, std::sync::atomic::Ordering::Relaxed);
                    if self.evidence.reset_reason().is_some() {
                        return Ok(None);
                    }
                }
                // Found under another name: the plan below names it back.
                if let Some(name) = renamed {
                    state.display_name = name;
                }
                // Whether the group moved since what was known: progress.
                *stalls = if current == stored && twice.is_empty() {
                    *stalls + 1
                } else {
                    0
                };
                (state, current, twice)
            }
            Start::Known(state, stored) => (state, settled(stored, users), BTreeSet::new()),
            Start::Unknown => {
                let (state, found) = self
                    .find_or_create(group, push, want, users, report)
                    .await?;
                (state, settled(found, users), BTreeSet::new())
            }
        }))
    }

    /// The entries of members held twice, taken out of `current`.
    fn dedupe(
        &self,
        duplicates: &BTreeSet<String>,
        users: &Users,
        current: &mut Confirmed,
    ) -> Vec<TargetMember> {
        let mut dedupe = Vec::new();
        for user in duplicates {
            let worker = users.workers.get(user).copied();
            match worker {
                Some(id) => {
                    current.workers.remove(id);
                }
                None => {
                    current.foreign.remove(user);
                }
            }
            dedupe.push(TargetMember {
                user_id: user.clone(),
                worker_key: worker
                    .and_then(|id| self.desired.workers.key(id))
                    .map(str::to_string),
                worker,
            });
        }
        dedupe
    }

    /// Sends (or, in a dry run, shows) entries in order; each confirmed one is applied to
    /// `current` and stored with it.
    pub(super) async fn send_all(
        &self,
        group: &str,
        entries: Vec<(OutboxAction, OutboxPayload)>,
        current: &mut Confirmed,
        report: &mut PairReport,
    ) -> Result<Option<Created>, Halt> {
        if self.options.dry_run {
            for (action, payload) in &entries {
                let (added, removed) = payload.member_changes(*action);
                report.added += added.len();
                report.removed += removed.len();
                report
                    .requests
                    .extend(self.show_read(*action, payload).await);
            }
            return Ok(None);
        }
        if entries.is_empty() {
            return Ok(None);
        }
        let ids = self
            .store
            .enqueue(self.name, group, &entries, &self.now)
            .await?;
        if let Some(progress) = &self.progress {
            progress.planned(entries.len() as u64);
        }
        let entries: Vec<OutboxEntry> = entries
            .into_iter()
            .zip(&ids)
            .map(|((action, payload), &id)| OutboxEntry {
                id,
                target: self.name.to_string(),
                group: group.to_string(),
                action,
                payload,
                status: OutboxStatus::Pending,
                attempts: 0,
                http_status: None,
                scim_type: None,
                detail: None,
                created_at: self.now.clone(),
                finished_at: None,
            })
            .collect();
        let width = if self.target.independent_requests() {
            self.config.concurrency.max(1)
        } else {
            1
        };
        let mut last = None;
        // Answers lost so far, and in a row: the entries after a lost answer change other
        // members, so they are sent on and the group is read back once at the end, not
        // after each (which made a reconcile of a slow target's large group quadratic).
        // Only `retries` losses in a row stop the sending early: a target that answers
        // nothing at all is not sent to for long.
        let (mut lost, mut in_a_row) = (0usize, 0u32);
        let mut i = 0;
        while i < entries.len() {
            // Member changes that are requests of their own go out together.
            let together = entries[i..]
                .iter()
                .take(width)
                .take_while(|e| matches!(e.action, OutboxAction::Add | OutboxAction::Remove))
                .count();
            let outcomes = if together > 1 {
                self.send_together(&entries[i..i + together], current, report)
                    .await?
            } else {
                vec![self.execute(&entries[i], current, 0, report).await]
            };
            for (k, outcome) in outcomes.into_iter().enumerate() {
                let at = i + k;
                match outcome {
                    Ok(created) => {
                        last = created;
                        in_a_row = 0;
                    }
                    Err(Halt::Unknown) if in_a_row < self.config.retries && at + 1 < ids.len() => {
                        lost += 1;
                        in_a_row += 1;
                    }
                    Err(e) => {
                        // The rest of the batch is planned again (in this run, when the pair
                        // goes on) from what the target holds; none of it stays pending
                        // (what was sent with it and confirmed stays done).
                        if !matches!(e, Halt::Stop(_) | Halt::Pending(_)) {
                            self.store
                                .outbox_superseded(&ids[at + 1..], &self.now)
                                .await?;
                        }
                        return Err(e);
                    }
                }
            }
            i += together.max(1);
        }
        if lost > 0 {
            return Err(Halt::Unknown);
        }
        Ok(last)
    }

    /// `Ok(true)`: go ahead. `Ok(false)`: held (recorded in the report).
    pub(super) async fn failsafe(
        &self,
        group: &str,
        reason: Option<String>,
        to_add: usize,
        to_remove: usize,
        current: usize,
        report: &mut PairReport,
    ) -> Result<bool, Halt> {
        let open = if self.options.dry_run {
            None
        } else {
            self.store.open_push_hold(self.name, group).await?
        };
        let Some(reason) = reason else {
            if let Some(open) = open {
                self.store
                    .close_push_hold(open.id, HoldStatus::Superseded, &self.now)
                    .await?;
            }
            return Ok(true);
        };
        if let Some(open) = &open {
            if open.status == HoldStatus::Approved && to_remove as i64 <= open.to_remove {
                self.store
                    .close_push_hold(open.id, HoldStatus::Released, &self.now)
                    .await?;
                return Ok(true);
            }
        }
        let hold_id = if self.options.dry_run {
            0
        } else {
            match open.filter(|o| {
                o.status == HoldStatus::Held
                    && o.to_remove == to_remove as i64
                    && o.to_add == to_add as i64
            }) {
                Some(same) => same.id,
                None => {
                    let hold = PushHold {
                        id: 0,
                        target: self.name.to_string(),
                        group: group.to_string(),
                        reason: reason.clone(),
                        to_add: to_add as i64,
                        to_remove: to_remove as i64,
                        members_in_target: current as i64,
                        status: HoldStatus::Held,
                        created_at: self.now.clone(),
                        approved_at: None,
                        approved_by: None,
                    };
                    self.store.hold_push(&hold, &self.now).await?
                }
            }
        };
        tracing::warn!(
            target_name = self.name,
            group,
            hold_id,
            "push held: {reason}"
        );
        report.held = Some(Held { hold_id, reason });
        Ok(false)
    }

    pub(super) fn target_error(&self, e: crate::http::client::TargetError) -> Halt {
        if e.is_auth() {
            Halt::Stop(Stop::Target(e))
        } else {
            Halt::Failed(e.to_string())
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use proptest::prelude::*;
    use roaring::RoaringBitmap;

    use super::{batches, confirmed_of, difference};
    use crate::push::resolve::Users;
    use crate::store::{Confirmed, OutboxAction, TargetMember, WorkerIds};

    /// Workers 0..n, each with user id `u{i}`.
    fn world(n: u32) -> (WorkerIds, Users) {
        let mut workers = WorkerIds::default();
        let mut users = Users::default();
        for i in 0..n {
            let id = workers.number(&format!("w{i}"));
            users.ids.insert(id, format!("u{i}"));
            users.workers.insert(format!("u{i}"), id);
        }
        (workers, users)
    }

    proptest! {
        /// Planning on sets gives what set difference on user ids gives, and applying the
        /// plan to what is held yields exactly what is wanted.
        #[test]
        fn difference_is_set_difference_and_applying_it_converges(
            want in prop::collection::btree_set(0u32..60, 0..40),
            held in prop::collection::btree_set(0u32..60, 0..40),
            foreign in prop::collection::btree_set("x[0-9]{1,2}", 0..5),
        ) {
            let (workers, users) = world(60);
            let want: RoaringBitmap = want.into_iter().collect();
            let mut current = Confirmed {
                workers: held.iter().copied().collect(),
                foreign: foreign.iter().map(|f| (f.clone(), None)).collect(),
            };
            let (adds, removes) = difference(&want, &current, &users, &workers);
            let ids = |v: &[TargetMember]| v.iter().map(|m| m.user_id.clone()).collect::<std::collections::BTreeSet<_>>();
            let expected_adds: std::collections::BTreeSet<String> =
                want.iter().filter(|w| !held.contains(w)).map(|w| format!("u{w}")).collect();
            let mut expected_removes: std::collections::BTreeSet<String> =
                held.iter().filter(|w| !want.contains(**w)).map(|w| format!("u{w}")).collect();
            expected_removes.extend(foreign.iter().cloned());
            prop_assert_eq!(ids(&adds), expected_adds);
            prop_assert_eq!(ids(&removes), expected_removes);
            current.apply(&adds, &removes);
            prop_assert_eq!(current, Confirmed { workers: want, foreign: BTreeMap::new() });
        }
    }

    #[test]
    fn entries_read_back_are_workers_or_foreign_ids_with_the_key_known_for_them() {
        let (_, users) = world(3);
        let known = Confirmed {
            workers: RoaringBitmap::new(),
            foreign: [("old-1".to_string(), Some("w1".to_string()))].into(),
        };
        let held = confirmed_of(["u0", "old-1", "u2", "stranger"], &users, Some(&known));
        assert_eq!(held.workers.iter().collect::<Vec<_>>(), [0, 2]);
        assert_eq!(
            held.foreign,
            BTreeMap::from([
                ("old-1".to_string(), Some("w1".to_string())),
                ("stranger".to_string(), None)
            ])
        );
        assert_eq!(held.len(), 4);
    }

    fn members(prefix: &str, n: usize) -> Vec<TargetMember> {
        (0..n)
            .map(|i| TargetMember {
                user_id: format!("{prefix}{i}"),
                worker_key: None,
                worker: None,
            })
            .collect()
    }

    /// (action, members added, members removed) of each batch.
    fn shape(adds: usize, removes: usize, per: usize) -> Vec<(OutboxAction, usize, usize)> {
        let (a, r) = (members("a", adds), members("r", removes));
        let out = batches(&a, &r, per, "g1");
        // Every change is in exactly one batch, in order: adds first, then removes.
        let sent_adds: Vec<_> = out
            .iter()
            .flat_map(|(act, p)| p.member_changes(*act).0)
            .cloned()
            .collect();
        let sent_removes: Vec<_> = out
            .iter()
            .flat_map(|(act, p)| p.member_changes(*act).1)
            .cloned()
            .collect();
        assert_eq!((sent_adds, sent_removes), (a, r));
        assert_eq!(
            out.len(),
            (adds + removes).div_ceil(per.max(1)),
            "the fewest requests"
        );
        assert!(out.iter().all(|(_, p)| p.scim_id.as_deref() == Some("g1")));
        out.iter()
            .map(|(act, p)| {
                let (x, y) = p.member_changes(*act);
                (*act, x.len(), y.len())
            })
            .collect()
    }

    #[test]
    fn batches_are_full_and_adds_and_removes_share_the_one_where_they_meet() {
        use OutboxAction::{Add, Remove, Update};
        assert_eq!(shape(0, 0, 100), []);
        assert_eq!(
            shape(250, 30, 100),
            [(Add, 100, 0), (Add, 100, 0), (Update, 50, 30)]
        );
        assert_eq!(shape(0, 150, 100), [(Remove, 0, 100), (Remove, 0, 50)]);
        assert_eq!(
            shape(30, 250, 100),
            [(Update, 30, 70), (Remove, 0, 100), (Remove, 0, 80)]
        );
        assert_eq!(
            shape(200, 100, 100),
            [(Add, 100, 0), (Add, 100, 0), (Remove, 0, 100)]
        );
        assert_eq!(shape(3, 4, 1).len(), 7);
        assert_eq!(shape(1, 1, 2), [(Update, 1, 1)]);
    }
}
