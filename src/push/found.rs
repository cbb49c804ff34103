//! A pair's group in the target: found by name or created (or, in a dry run, only looked
//! for), its members read (paged), and read back entry by entry against what rosterd knew,
//! which is what verification and reconcile rest on.

use std::collections::BTreeSet;

use roaring::RoaringBitmap;

use super::outcome::Halt;
use super::pair::confirmed_of;
use super::resolve::Users;
use super::target::FoundGroup;
use super::{PairReport, TargetRun};
use crate::config::TargetKind;
use crate::rules::{Group, Push};
use crate::store::{
    Confirmed, Drift, DriftKind, OutboxAction, OutboxPayload, PairAction, TargetGroup, TargetMember,
};

impl TargetRun<'_> {
    pub(super) async fn find_or_create(
        &self,
        group: &Group,
        push: &Push,
        want: &RoaringBitmap,
        users: &Users,
        report: &mut PairReport,
    ) -> Result<(TargetGroup, Confirmed), Halt> {
        let name = push.link.as_deref().unwrap_or(&push.display_name);
        // A group a broken guardrail holds is created empty: its members are changes the
        // failsafe holds until approved, like any other.
        let batch = if self.guarded.contains_key(&group.name) {
            0
        } else {
            self.target.members_on_create(self.config)
        };
        let first: Vec<TargetMember> = want
            .iter()
            .take(batch)
            .filter_map(|id| {
                Some(TargetMember {
                    user_id: users.ids.get(&id)?.clone(),
                    worker_key: self.desired.workers.key(id).map(str::to_string),
                    worker: Some(id),
                })
            })
            .collect();
        let payload = OutboxPayload {
            display_name: Some(name.to_string()),
            scim_id: None,
            members: first,
            email: self.email_of(group, push),
            link: push.link.is_some(),
            ..OutboxPayload::default()
        };
        if self.options.dry_run {
            return self.dry_find_or_create(group, payload, users, report).await;
        }
        let mut none = Confirmed::default();
        let created = self
            .send_all(
                &group.name,
                vec![(OutboxAction::Create, payload)],
                &mut none,
                report,
            )
            .await?;
        let Some(created) = created else {
            return Err(Halt::Failed("the group was not created".into()));
        };
        report.action = Some(if created.state.linked {
            PairAction::Linked
        } else if created.made {
            PairAction::Created
        } else {
            PairAction::Adopted
        });
        if created.made {
            report.added += created.members.len();
        }
        Ok((created.state, created.members))
    }

    /// The group's address, in a target whose groups have one: the group linked to, the
    /// push's `email`, or the target's `google.group_email` made from the group's name.
    fn email_of(&self, group: &Group, push: &Push) -> Option<String> {
        if self.config.kind != TargetKind::GoogleWorkspace {
            return None;
        }
        push.link
            .clone()
            .or_else(|| push.email.clone())
            .or_else(|| self.config.google().email_of(&group.name))
            .map(|e| e.to_lowercase())
    }

    pub(super) async fn dry_find_or_create(
        &self,
        group: &Group,
        payload: OutboxPayload,
        users: &Users,
        report: &mut PairReport,
    ) -> Result<(TargetGroup, Confirmed), Halt> {
        let name = payload.display_name.clone().unwrap_or_default();
        let found = self
            .target
            .find_groups(&name, payload.email.as_deref())
            .await
            .map_err(|e| self.target_error(e))?;
        let mut state = TargetGroup::new(&group.name, "(new)".into(), name.clone(), payload.link);
        if let Some(g) = found.first() {
            state.scim_id = g.id.clone();
            self.note_kept(&group.name, &g.kept, report);
            let members = match &g.members {
                Some(m) => m.clone(),
                None => self.read_members(&state.scim_id).await?,
            };
            report.action = Some(if payload.link {
                PairAction::Linked
            } else {
                PairAction::Adopted
            });
            let held = confirmed_of(members.iter().map(String::as_str), users, None);
            return Ok((state, held));
        }
        if payload.link {
            return Err(Halt::Failed(format!(
                "no group named `{name}` in target `{}` to link to",
                self.name
            )));
        }
        report.action = Some(PairAction::Created);
        report.added += payload.members.len();
        report
            .requests
            .extend(self.show(OutboxAction::Create, &payload));
        let mut held = Confirmed::default();
        held.apply(&payload.members, &[]);
        Ok((state, held))
    }

    /// Most of what was pushed is gone from a group read whole: the target lost state (its
    /// users deleted and made again, say) that the user ids cached need not show (a kind
    /// whose ids are addresses keeps them). The whole target is verified in this run.
    fn note_lost(&self, group: &str, stored: &Confirmed, actual: &Confirmed) {
        let had = stored.workers.len();
        let lost = (&stored.workers - &actual.workers).len();
        if had >= 10 && lost * 2 > had {
            self.evidence.reset(format!(
                "target `{}`: group `{group}` holds {} of the {had} members rosterd pushed",
                self.name,
                had - lost
            ));
        }
    }

    /// Reports the members the target keeps out of rosterd's hands.
    fn note_kept(&self, group: &str, kept: &[String], report: &mut PairReport) {
        if kept.is_empty() {
            return;
        }
        tracing::info!(
            target_name = self.name,
            group,
            kept = kept.len(),
            "the target group has members rosterd does not manage (kept, never removed): {}",
            kept.join(", ")
        );
        report.kept = kept.to_vec();
    }

    pub(super) async fn read_members(&self, scim_id: &str) -> Result<Vec<String>, Halt> {
        Ok(self.read_group(scim_id).await?.members.unwrap_or_default())
    }

    pub(super) async fn read_group(&self, scim_id: &str) -> Result<FoundGroup, Halt> {
        match self.target.read_group(scim_id).await {
            Ok(Some(g)) => Ok(g),
            Ok(None) => Err(Halt::GroupMissing),
            Err(e) => Err(self.target_error(e)),
        }
    }

    /// Reads the group back; a verification's read counts the requests it took, as the
    /// target's client counted them: its pages (Okta, Google, a directory's paged search)
    /// and retries. A group the target lost is recorded as missing.
    async fn read_counted(&self, state: &TargetGroup, verify: bool) -> Result<FoundGroup, Halt> {
        let (found, requests) = crate::http::client::counted(self.read_group(&state.scim_id)).await;
        if verify {
            self.verify_reads
                .fetch_add(requests, std::sync::atomic::Ordering::Relaxed);
        }
        match found {
            Err(Halt::GroupMissing) => {
                if !self.options.dry_run {
                    self.store
                        .record_group_missing(self.name, &state.group, &self.now)
                        .await?;
                }
                Err(Halt::GroupMissing)
            }
            other => other,
        }
    }

    /// Reads the group back: what it holds becomes the known state. On a verification, the
    /// differences from what rosterd knew are recorded as drift, the group's name among
    /// them (the name it was found under, to name it back); after a request whose outcome
    /// is unknown they are rosterd's own changes, and are not.
    pub(super) async fn read_back(
        &self,
        state: &TargetGroup,
        stored: &Confirmed,
        users: &Users,
        verify: bool,
        report: &mut PairReport,
    ) -> Result<(Confirmed, BTreeSet<String>, Option<String>), Halt> {
        let found = self.read_counted(state, verify).await?;
        report.verified |= verify;
        self.note_kept(&state.group, &found.kept, report);
        let renamed = (verify && !state.linked && found.name != state.display_name)
            .then(|| found.name.clone());
        let members = found.members.unwrap_or_default();
        let actual = confirmed_of(members.iter().map(String::as_str), users, Some(stored));
        // Entry by entry: a member held more than once is drift, whatever the set says.
        let mut seen = std::collections::HashSet::new();
        let duplicates: BTreeSet<String> = members
            .iter()
            .filter(|m| !seen.insert(m.as_str()))
            .cloned()
            .collect();
        let mut drift = Vec::new();
        if let Some(name) = &renamed {
            tracing::warn!(target_name = self.name, group = %state.group, found = %name, "the target group was renamed outside rosterd; naming it back");
            drift.push(Drift {
                kind: DriftKind::Renamed,
                user_id: None,
                worker_key: None,
                detail: Some(name.clone()),
            });
        }
        if verify {
            for user in &duplicates {
                let key = users
                    .workers
                    .get(user)
                    .and_then(|&id| self.desired.workers.key(id))
                    .map(str::to_string);
                drift.push(Drift {
                    kind: DriftKind::Duplicate,
                    user_id: Some(user.clone()),
                    worker_key: key,
                    detail: None,
                });
            }
            // Each entry is drift of one kind: one that is no user's is that, not also `extra`.
            let no_user = |u: &str| users.all.as_ref().is_some_and(|all| !all.contains(u));
            for (user, key) in actual.foreign.iter().filter(|(u, _)| no_user(u)) {
                drift.push(Drift {
                    kind: DriftKind::NotAUser,
                    user_id: Some(user.clone()),
                    worker_key: key.clone(),
                    detail: None,
                });
            }
            let entry = |kind: DriftKind, user: &str, key: Option<String>| Drift {
                kind,
                user_id: Some(user.to_string()),
                worker_key: key,
                detail: None,
            };
            let key = |id: u32| self.desired.workers.key(id).map(str::to_string);
            let user = |id: u32| users.ids.get(&id).map(String::as_str).unwrap_or_default();
            for id in &actual.workers - &stored.workers {
                drift.push(entry(DriftKind::Extra, user(id), key(id)));
            }
            for (u, k) in actual
                .foreign
                .iter()
                .filter(|(u, _)| !stored.foreign.contains_key(*u) && !no_user(u))
            {
                drift.push(entry(DriftKind::Extra, u, k.clone()));
            }
            for id in &stored.workers - &actual.workers {
                drift.push(entry(DriftKind::Missing, user(id), key(id)));
            }
            for (u, k) in stored
                .foreign
                .iter()
                .filter(|(u, _)| !actual.foreign.contains_key(*u))
            {
                drift.push(entry(DriftKind::Missing, u, k.clone()));
            }
        }
        if verify {
            self.note_lost(&state.group, stored, &actual);
        }
        report.drift = drift.len();
        if !drift.is_empty() {
            tracing::info!(target_name = self.name, group = %state.group, drift = drift.len(), "the target group changed outside rosterd");
        }
        if !self.options.dry_run {
            self.store
                .record_read_back(
                    self.name,
                    &state.group,
                    &actual,
                    verify.then_some(drift.as_slice()),
                    &self.now,
                )
                .await?;
        }
        Ok((actual, duplicates, renamed))
    }
}
