//! One (target, group) pair: find or create the target group, read it back when
//! reconciling, compute the difference, check the failsafe, send the batches.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet, HashMap};

use super::send::{Exec, Next};
use super::{Desired, Held, PairReport, Stop, TargetRun};
use crate::config::{OnUnpush, PushFailsafe};
use crate::rules::{Failsafe, Group, Push};
use crate::store::{
    Drift, OutboxAction, OutboxEntry, OutboxPayload, PushHold, TargetGroup, TargetMember,
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

/// How a pair's push ended early.
pub(super) enum PairStop {
    /// The target lost the group: find or create it again.
    GroupMissing,
    /// This pair could not be pushed; the others go on.
    Failed(String),
    Stop(Stop),
}

impl From<Stop> for PairStop {
    fn from(s: Stop) -> Self {
        PairStop::Stop(s)
    }
}

impl From<crate::store::StoreError> for PairStop {
    fn from(e: crate::store::StoreError) -> Self {
        PairStop::Stop(Stop::Store(e))
    }
}

impl From<Exec> for PairStop {
    fn from(e: Exec) -> Self {
        match e {
            Exec::GroupMissing => PairStop::GroupMissing,
            Exec::Failed(message) | Exec::Pending(message) => PairStop::Failed(message),
            Exec::Stop(s) => PairStop::Stop(s),
        }
    }
}

type Members = BTreeMap<String, Option<String>>;
/// The members a group should hold: user id to worker key, borrowed from the resolved users
/// and the desired state (a group holds thousands; copying them costs more than the diff).
type Want<'a> = BTreeMap<&'a str, &'a str>;

/// The members to add (wanted, not held) and to remove (held, not wanted), by user id: one
/// walk over both sorted maps.
fn difference(want: &Want<'_>, current: &Members) -> (Vec<TargetMember>, Vec<TargetMember>) {
    use std::cmp::Ordering;
    let (mut adds, mut removes) = (Vec::new(), Vec::new());
    let add = |(id, key): (&&str, &&str)| TargetMember {
        user_id: id.to_string(),
        worker_key: Some(key.to_string()),
    };
    let remove = |(id, key): (&String, &Option<String>)| TargetMember {
        user_id: id.clone(),
        worker_key: key.clone(),
    };
    let (mut w, mut c) = (want.iter().peekable(), current.iter().peekable());
    loop {
        match (w.peek(), c.peek()) {
            (Some(a), Some(b)) => match (*a.0).cmp(b.0.as_str()) {
                Ordering::Less => adds.extend(w.next().map(add)),
                Ordering::Greater => removes.extend(c.next().map(remove)),
                Ordering::Equal => {
                    w.next();
                    c.next();
                }
            },
            (Some(_), None) => adds.extend(w.by_ref().map(add)),
            (None, Some(_)) => removes.extend(c.by_ref().map(remove)),
            (None, None) => break,
        }
    }
    (adds, removes)
}

/// What the store knows of a pair before it is pushed.
pub(super) struct Stored<'a> {
    /// The target group, once found or created.
    pub group: Option<&'a TargetGroup>,
    /// The members the target confirmed.
    pub members: Option<&'a Members>,
    /// The workers listed as having no account on the target.
    pub unprovisioned: Option<&'a BTreeSet<String>>,
}

impl TargetRun<'_> {
    pub(super) async fn push_pair(
        &self,
        group: &Group,
        push: &Push,
        desired: &Desired,
        users: &HashMap<String, Option<String>>,
        stored: Stored<'_>,
    ) -> Result<PairReport, Stop> {
        let mut report = PairReport {
            group: group.name.clone(),
            display_name: push.display_name.clone(),
            ..PairReport::default()
        };
        let mut want = Want::new();
        let mut unprovisioned = BTreeMap::new();
        for key in desired.members.get(&group.name).into_iter().flatten() {
            match users.get(key) {
                Some(Some(id)) => {
                    want.insert(id, key);
                }
                _ => {
                    unprovisioned.insert(key.clone(), self.match_value(desired, key));
                }
            }
        }
        report.members = want.len();
        report.unprovisioned = unprovisioned.len();
        if !self.options.dry_run {
            self.store
                .set_unprovisioned(
                    self.name,
                    &group.name,
                    &unprovisioned,
                    stored.unprovisioned.unwrap_or(&BTreeSet::new()),
                    &self.now,
                )
                .await?;
        }
        let none = Members::new();
        let mut known = stored
            .group
            .map(|k| (k.clone(), Cow::Borrowed(stored.members.unwrap_or(&none))));
        for round in 0..3 {
            match self
                .sync_pair(group, push, &want, known.take(), &mut report)
                .await
            {
                Ok(()) => return Ok(report),
                Err(PairStop::GroupMissing) if round < 2 => {
                    tracing::warn!(target_name = self.name, group = %group.name, "the target lost the group; finding or creating it again");
                }
                Err(PairStop::GroupMissing) => {
                    report.error = Some("the target keeps losing the group".into());
                }
                Err(PairStop::Failed(message)) => report.error = Some(message),
                Err(PairStop::Stop(stop)) => return Err(stop),
            }
            if report.error.is_some() {
                break;
            }
        }
        Ok(report)
    }

    async fn sync_pair(
        &self,
        group: &Group,
        push: &Push,
        want: &Want<'_>,
        known: Option<(TargetGroup, Cow<'_, Members>)>,
        report: &mut PairReport,
    ) -> Result<(), PairStop> {
        let (state, current) = match known {
            Some((state, stored)) if self.options.reconcile => {
                let current = self.read_back(&state, &stored, want, report).await?;
                (state, Cow::Owned(current))
            }
            Some(known) => known,
            None => {
                let (state, members) = self.find_or_create(group, push, want, report).await?;
                (state, Cow::Owned(members))
            }
        };
        report.scim_id = Some(state.scim_id.clone());
        let (adds, removes) = difference(want, &current);
        let reason = failsafe_reason(
            removes.len(),
            current.len(),
            &self.config.failsafe,
            &group.failsafe,
        );
        if !self
            .failsafe(
                &group.name,
                reason,
                adds.len(),
                removes.len(),
                current.len(),
                report,
            )
            .await?
        {
            return Ok(());
        }
        let mut entries = Vec::new();
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
            self.config.patch.max_members_per_request,
            &state.scim_id,
        ));
        report.added += adds.len();
        report.removed += removes.len();
        self.send_all(&group.name, entries, report).await?;
        Ok(())
    }

    /// Sends (or, in a dry run, shows) entries in order.
    async fn send_all(
        &self,
        group: &str,
        entries: Vec<(OutboxAction, OutboxPayload)>,
        report: &mut PairReport,
    ) -> Result<Option<(TargetGroup, Vec<TargetMember>)>, PairStop> {
        if self.options.dry_run {
            for (action, payload) in &entries {
                report
                    .requests
                    .push(self.client.show(&self.request_for(*action, payload)));
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
        let mut last = None;
        let mut counted = false;
        for (i, (action, payload)) in entries.into_iter().enumerate() {
            let entry = OutboxEntry {
                id: ids[i],
                target: self.name.to_string(),
                group: group.to_string(),
                action,
                payload,
                status: "pending".into(),
                attempts: 0,
                http_status: None,
                scim_type: None,
                detail: None,
                created_at: self.now.clone(),
                finished_at: None,
            };
            let next = Next {
                counted,
                id: ids.get(i + 1).copied().filter(|_| action.counts_next()),
            };
            last = self.execute(&entry, next).await?;
            counted = next.id.is_some();
        }
        Ok(last)
    }

    async fn find_or_create(
        &self,
        group: &Group,
        push: &Push,
        want: &Want<'_>,
        report: &mut PairReport,
    ) -> Result<(TargetGroup, Members), PairStop> {
        let name = push.link.as_deref().unwrap_or(&push.display_name);
        let first: Vec<TargetMember> = want
            .iter()
            .take(self.config.patch.max_members_per_request)
            .map(|(id, key)| TargetMember {
                user_id: id.to_string(),
                worker_key: Some(key.to_string()),
            })
            .collect();
        let payload = OutboxPayload {
            display_name: Some(name.to_string()),
            scim_id: None,
            members: first.clone(),
            link: push.link.is_some(),
            ..OutboxPayload::default()
        };
        if self.options.dry_run {
            return self.dry_find_or_create(group, payload, want, report).await;
        }
        let created = self
            .send_all(&group.name, vec![(OutboxAction::Create, payload)], report)
            .await?;
        let Some((state, members)) = created else {
            return Err(PairStop::Failed("the group was not created".into()));
        };
        report.action = Some(if state.linked { "linked" } else { "created" }.into());
        if !state.linked {
            report.added += members.len();
        }
        let members = members
            .into_iter()
            .map(|m| {
                let key = m
                    .worker_key
                    .or_else(|| want.get(m.user_id.as_str()).map(|k| k.to_string()));
                (m.user_id, key)
            })
            .collect();
        Ok((state, members))
    }

    async fn dry_find_or_create(
        &self,
        group: &Group,
        payload: OutboxPayload,
        want: &Want<'_>,
        report: &mut PairReport,
    ) -> Result<(TargetGroup, Members), PairStop> {
        let name = payload.display_name.clone().unwrap_or_default();
        let found = self
            .client
            .find_groups(&name)
            .await
            .map_err(|e| self.target_error(e))?;
        let mut state = TargetGroup {
            group: group.name.clone(),
            scim_id: "(new)".into(),
            display_name: name.clone(),
            linked: payload.link,
            pushed_at: None,
            reconciled_at: None,
        };
        if let Some(g) = found.first() {
            state.scim_id = g.id.clone().unwrap_or_default();
            let members = match &g.members {
                Some(m) => m.clone(),
                None => self.read_members(&state.scim_id).await?,
            };
            report.action = Some(if payload.link { "linked" } else { "adopted" }.into());
            let members = members
                .into_iter()
                .map(|m| {
                    let key = want.get(m.value.as_str()).map(|k| k.to_string());
                    (m.value, key)
                })
                .collect();
            return Ok((state, members));
        }
        if payload.link {
            return Err(PairStop::Failed(format!(
                "no group named `{name}` in target `{}` to link to",
                self.name
            )));
        }
        report.action = Some("created".into());
        report.added += payload.members.len();
        report.requests.push(
            self.client
                .show(&self.request_for(OutboxAction::Create, &payload)),
        );
        let members = payload
            .members
            .into_iter()
            .map(|m| (m.user_id, m.worker_key))
            .collect();
        Ok((state, members))
    }

    pub(super) async fn read_members(
        &self,
        scim_id: &str,
    ) -> Result<Vec<crate::scim::wire::Member>, PairStop> {
        match self.client.get_group(scim_id).await {
            Ok(Some(g)) => Ok(g.members.unwrap_or_default()),
            Ok(None) => Err(PairStop::GroupMissing),
            Err(e) => Err(self.target_error(e)),
        }
    }

    /// Reads the group back; what it holds becomes the known state, and differences from
    /// what rosterd knew are recorded as drift.
    async fn read_back(
        &self,
        state: &TargetGroup,
        stored: &Members,
        want: &Want<'_>,
        report: &mut PairReport,
    ) -> Result<Members, PairStop> {
        let members = match self.read_members(&state.scim_id).await {
            Err(PairStop::GroupMissing) => {
                if !self.options.dry_run {
                    self.store
                        .record_group_missing(self.name, &state.group, &self.now)
                        .await?;
                }
                return Err(PairStop::GroupMissing);
            }
            other => other?,
        };
        let actual: Members = members
            .into_iter()
            .map(|m| {
                let key = stored
                    .get(&m.value)
                    .cloned()
                    .flatten()
                    .or_else(|| want.get(m.value.as_str()).map(|k| k.to_string()));
                (m.value, key)
            })
            .collect();
        let mut drift = Vec::new();
        for (id, key) in &actual {
            if !stored.contains_key(id) {
                drift.push(Drift {
                    kind: "extra".into(),
                    user_id: Some(id.clone()),
                    worker_key: key.clone(),
                });
            }
        }
        for (id, key) in stored {
            if !actual.contains_key(id) {
                drift.push(Drift {
                    kind: "missing".into(),
                    user_id: Some(id.clone()),
                    worker_key: key.clone(),
                });
            }
        }
        report.drift = drift.len();
        if !drift.is_empty() {
            tracing::info!(target_name = self.name, group = %state.group, drift = drift.len(), "the target group changed outside rosterd");
        }
        if !self.options.dry_run {
            let list: Vec<TargetMember> = actual
                .iter()
                .map(|(id, key)| TargetMember {
                    user_id: id.clone(),
                    worker_key: key.clone(),
                })
                .collect();
            self.store
                .record_read_back(self.name, &state.group, &list, &drift, &self.now)
                .await?;
        }
        Ok(actual)
    }

    /// `Ok(true)`: go ahead. `Ok(false)`: held (recorded in the report).
    async fn failsafe(
        &self,
        group: &str,
        reason: Option<String>,
        to_add: usize,
        to_remove: usize,
        current: usize,
        report: &mut PairReport,
    ) -> Result<bool, PairStop> {
        let open = if self.options.dry_run {
            None
        } else {
            self.store.open_push_hold(self.name, group).await?
        };
        let Some(reason) = reason else {
            if let Some(open) = open {
                self.store.close_push_hold(open.id, "superseded").await?;
            }
            return Ok(true);
        };
        if let Some(open) = &open {
            if open.status == "approved" && to_remove as i64 <= open.to_remove {
                self.store.close_push_hold(open.id, "released").await?;
                return Ok(true);
            }
        }
        let hold_id = if self.options.dry_run {
            0
        } else {
            match open.filter(|o| {
                o.status == "held" && o.to_remove == to_remove as i64 && o.to_add == to_add as i64
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
                        status: "held".into(),
                        created_at: self.now.clone(),
                        approved_at: None,
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

    /// A pushed group left the rules, or stopped pushing here.
    pub(super) async fn unpush(
        &self,
        state: &TargetGroup,
        members: Option<&Members>,
        overrides: Failsafe,
    ) -> Result<PairReport, Stop> {
        let mut report = PairReport {
            group: state.group.clone(),
            display_name: state.display_name.clone(),
            scim_id: Some(state.scim_id.clone()),
            ..PairReport::default()
        };
        if self.config.on_unpush == OnUnpush::Keep || state.linked {
            report.action = Some("unlinked".into());
            if !self.options.dry_run {
                self.store
                    .forget_target_group(self.name, &state.group, None, &self.now)
                    .await?;
            }
            return Ok(report);
        }
        let current = members.map_or(0, BTreeMap::len);
        let reason = failsafe_reason(current, current, &self.config.failsafe, &overrides);
        let outcome = async {
            if !self
                .failsafe(&state.group, reason, 0, current, current, &mut report)
                .await?
            {
                return Ok(());
            }
            report.action = Some("deleted".into());
            report.removed = current;
            let payload = OutboxPayload {
                scim_id: Some(state.scim_id.clone()),
                display_name: Some(state.display_name.clone()),
                ..OutboxPayload::default()
            };
            self.send_all(
                &state.group,
                vec![(OutboxAction::Delete, payload)],
                &mut report,
            )
            .await
            .map(|_| ())
        }
        .await;
        match outcome {
            Ok(()) | Err(PairStop::GroupMissing) => Ok(report),
            Err(PairStop::Failed(message)) => {
                report.error = Some(message);
                Ok(report)
            }
            Err(PairStop::Stop(stop)) => Err(stop),
        }
    }

    pub(super) fn target_error(&self, e: crate::scim::ScimError) -> PairStop {
        if e.is_auth() {
            PairStop::Stop(Stop::Target(e))
        } else {
            PairStop::Failed(e.to_string())
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::{batches, difference, Members, Want};
    use crate::store::{OutboxAction, TargetMember};

    proptest! {
        /// The merge walk gives what set difference gives, in user id order.
        #[test]
        fn difference_is_set_difference(
            want in prop::collection::btree_map("u[0-9]{1,2}", "w[0-9]", 0..40),
            current in prop::collection::btree_map("u[0-9]{1,2}", prop::option::of("w[0-9]"), 0..40),
        ) {
            let borrowed: Want<'_> = want.iter().map(|(u, w)| (u.as_str(), w.as_str())).collect();
            let (adds, removes) = difference(&borrowed, &current);
            let expected_adds: Vec<TargetMember> = want
                .iter()
                .filter(|(id, _)| !current.contains_key(*id))
                .map(|(id, key)| TargetMember { user_id: id.clone(), worker_key: Some(key.clone()) })
                .collect();
            let expected_removes: Vec<TargetMember> = current
                .iter()
                .filter(|(id, _)| !want.contains_key(*id))
                .map(|(id, key)| TargetMember { user_id: id.clone(), worker_key: key.clone() })
                .collect();
            prop_assert_eq!(adds, expected_adds);
            prop_assert_eq!(removes, expected_removes);
        }
    }

    #[test]
    fn difference_of_overlapping_groups() {
        let want: Want<'_> = [("u1", "a"), ("u2", "b"), ("u4", "d")].into();
        let current: Members = [("u2", None), ("u3", Some("c".to_string()))]
            .map(|(u, w)| (u.to_string(), w))
            .into();
        let (adds, removes) = difference(&want, &current);
        let ids = |v: &[TargetMember]| v.iter().map(|m| m.user_id.clone()).collect::<Vec<_>>();
        assert_eq!(ids(&adds), ["u1", "u4"]);
        assert_eq!(ids(&removes), ["u3"]);
        assert_eq!(removes[0].worker_key.as_deref(), Some("c"));
    }

    fn members(prefix: &str, n: usize) -> Vec<TargetMember> {
        (0..n)
            .map(|i| TargetMember {
                user_id: format!("{prefix}{i}"),
                worker_key: None,
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
