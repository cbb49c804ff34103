//! Sending outbox entries. An entry is in the store before its request leaves; the store
//! learns the change (and marks the entry done) only once the target confirms it, and
//! confirmations of requests in flight together share one commit ([`Confirmer`]).
//!
//! An entry left pending (a crash, a push cut short) is never sent again as it was: adding
//! a member twice is not harmless on targets that store duplicates. Its group is read back
//! and planned afresh ([`TargetRun::replay`]). A request whose answer was lost is treated the
//! same way within the run: the pair reads the group back and sends only what is missing.

use std::collections::{BTreeSet, HashMap};
use std::sync::Mutex;

use tokio::sync::oneshot;

use super::outcome::{Halt, Refusal};
use super::target::Change;
use super::{PairReport, Stop, TargetRun};
use crate::http::client::TargetError;
use crate::store::{
    Confirmation, Confirmed, OutboxAction, OutboxEntry, OutboxPayload, Store, StoreError,
    TargetGroup, TargetMember,
};

/// A group a `create` entry made or found, with what it holds.
pub(super) struct Created {
    pub state: TargetGroup,
    pub members: Confirmed,
    /// Made by this entry; found (adopted) otherwise.
    pub made: bool,
}

/// Confirmations waiting for a commit, and where to tell how it went.
type Queued = (Vec<Confirmation>, oneshot::Sender<Result<(), String>>);

/// Commits confirmations: whoever confirms while no commit is running commits every
/// confirmation queued by then, its own and those of the requests that finished meanwhile;
/// the others wait for that commit. With four requests in flight, a commit carries up to
/// four confirmations, and each request still waits for its own before the next is sent.
pub(crate) struct Confirmer<'a> {
    store: &'a Store,
    queue: Mutex<Vec<Queued>>,
    committing: tokio::sync::Mutex<()>,
}

impl<'a> Confirmer<'a> {
    pub(super) fn new(store: &'a Store) -> Self {
        Confirmer {
            store,
            queue: Mutex::default(),
            committing: tokio::sync::Mutex::new(()),
        }
    }

    /// Stores `confirmations` (in their order) in a commit, with whatever else is queued.
    async fn confirm(&self, confirmations: Vec<Confirmation>, now: &str) -> Result<(), StoreError> {
        if confirmations.is_empty() {
            return Ok(());
        }
        let (tell, told) = oneshot::channel();
        crate::locks::lock(&self.queue).push((confirmations, tell));
        {
            let _turn = self.committing.lock().await;
            let batch = std::mem::take(&mut *crate::locks::lock(&self.queue));
            if !batch.is_empty() {
                let (lists, tells): (Vec<_>, Vec<_>) = batch.into_iter().unzip();
                let list: Vec<Confirmation> = lists.into_iter().flatten().collect();
                let outcome = self
                    .store
                    .confirm(&list, now)
                    .await
                    .map_err(|e| e.to_string());
                for tell in tells {
                    let _ = tell.send(outcome.clone());
                }
            }
        }
        match told.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(message)) => Err(StoreError::Confirm(message)),
            Err(_) => Err(StoreError::Confirm(
                "the commit carrying it was dropped before it finished".into(),
            )),
        }
    }
}

impl TargetRun<'_> {
    /// Settles what a stopped push left pending for the groups this push handles, oldest
    /// first: a delete is sent again (deleting twice leaves the group as gone); any other
    /// entry is not, its group is read back before it is planned. How many were settled,
    /// and the groups to read back.
    pub(super) async fn replay(
        &self,
        handled: &BTreeSet<&str>,
    ) -> Result<(usize, BTreeSet<String>), Stop> {
        let pending: Vec<OutboxEntry> = self
            .store
            .pending_outbox(self.name)
            .await?
            .into_iter()
            .filter(|e| handled.contains(e.group.as_str()))
            .collect();
        let mut unsure = BTreeSet::new();
        if pending.is_empty() {
            return Ok((0, unsure));
        }
        tracing::info!(
            target_name = self.name,
            entries = pending.len(),
            "settling what the last push left unconfirmed"
        );
        let mut settle = Vec::new();
        for entry in &pending {
            if entry.action == OutboxAction::Delete {
                let mut report = PairReport::default();
                match self
                    .execute(entry, &mut Confirmed::default(), 0, &mut report)
                    .await
                {
                    Ok(_)
                    | Err(
                        Halt::GroupMissing
                        | Halt::Failed(_)
                        | Halt::Unknown
                        | Halt::Reread(..)
                        | Halt::Refused(..),
                    ) => {}
                    Err(Halt::Pending(message)) => {
                        return Err(Stop::Target(TargetError::Setup {
                            target: self.name.to_string(),
                            message: format!("a pending delete could not be sent: {message}"),
                        }))
                    }
                    Err(Halt::Stop(stop)) => return Err(stop),
                }
            } else {
                unsure.insert(entry.group.clone());
                settle.push(entry.id);
            }
        }
        self.store.outbox_superseded(&settle, &self.now).await?;
        Ok((pending.len(), unsure))
    }

    /// The requests an entry takes, as `--dry-run` prints them.
    pub(super) fn show(&self, action: OutboxAction, payload: &OutboxPayload) -> Vec<String> {
        let ids = EntryIds::of(action, payload);
        self.target.show(ids.change(action, payload))
    }

    /// [`Self::show`], after the target learned what it shows the group by (a directory's
    /// DN) where it can; a dry run's reads, and no harm when one fails.
    pub(super) async fn show_read(
        &self,
        action: OutboxAction,
        payload: &OutboxPayload,
    ) -> Vec<String> {
        let ids = EntryIds::of(action, payload);
        let change = ids.change(action, payload);
        if let Err(e) = self.target.learn(change).await {
            tracing::debug!(
                target_name = self.name,
                "a dry run shows the group by its id: {e}"
            );
        }
        self.target.show(change)
    }

    /// Sends one entry and records the outcome: a confirmed change is applied to `current`
    /// (what the pair holds) and stored with it. `sent` requests were already sent for the
    /// entry. A `create` returns the group it made or adopted.
    pub(super) async fn execute(
        &self,
        entry: &OutboxEntry,
        current: &mut Confirmed,
        sent: i64,
        report: &mut PairReport,
    ) -> Result<Option<Created>, Halt> {
        // A process that lost the leadership sends nothing more.
        self.store.check_fence()?;
        if entry.action == OutboxAction::Create {
            return self.execute_create(entry).await.map(Some);
        }
        let answer = self.send(entry).await;
        if let Err(e) = &answer {
            // A member to remove was gone already, and the whole PATCH failed with it: send
            // the additions and the removals apart, as when they do not share a request.
            if entry.action == OutboxAction::Update
                && e.status() != Some(404)
                && self.target.member_was_gone(e)
            {
                return self.execute_apart(entry, current, sent + 1, report).await;
            }
        }
        if let Some(mut confirmation) = self
            .answered(entry, answer, current, sent + 1, report)
            .await?
        {
            confirmation.set = self.members_changed(entry, current)?;
            self.confirmer
                .confirm(vec![confirmation], &self.now)
                .await?;
        }
        Ok(None)
    }

    /// Sends the request of an entry other than a `create`.
    pub(super) async fn send(&self, entry: &OutboxEntry) -> Result<(), TargetError> {
        let ids = EntryIds::of(entry.action, &entry.payload);
        self.target
            .change(ids.change(entry.action, &entry.payload))
            .await
    }

    /// What the pair holds after `entry`, to store with its confirmation; `None` when the
    /// entry changed no member (a rename).
    pub(super) fn members_changed(
        &self,
        entry: &OutboxEntry,
        current: &Confirmed,
    ) -> Result<Option<crate::store::EncodedSet>, StoreError> {
        let (added, removed) = entry.payload.member_changes(entry.action);
        if added.is_empty() && removed.is_empty() {
            return Ok(None);
        }
        Ok(Some(current.encode()?))
    }

    /// Sorts the answer to an entry's `sent`th request. A confirmed change is applied to
    /// `current` and counted in `report`; the confirmation to store is returned, without the
    /// set it leaves (the caller encodes that once for the confirmations it commits
    /// together). `None`: nothing to confirm (a group deleted).
    pub(super) async fn answered(
        &self,
        entry: &OutboxEntry,
        answer: Result<(), TargetError>,
        current: &mut Confirmed,
        sent: i64,
        report: &mut PairReport,
    ) -> Result<Option<Confirmation>, Halt> {
        match answer {
            Ok(()) => {}
            // Deleting a group that is gone already leaves it as wanted.
            Err(e) if e.status() == Some(404) && entry.action == OutboxAction::Delete => {}
            // Not a failure: the pair finds or creates the group again and plans afresh, and
            // the drift record says what happened.
            Err(e) if e.status() == Some(404) => {
                tracing::info!(target_name = self.name, group = %entry.group, entry = entry.id, "the target lost the group: {e}");
                self.store.outbox_superseded(&[entry.id], &self.now).await?;
                self.store
                    .record_group_missing(self.name, &entry.group, &self.now)
                    .await?;
                return Err(Halt::GroupMissing);
            }
            // Removing a member who is already gone leaves the group as wanted.
            Err(e) if entry.action == OutboxAction::Remove && e.code() == Some("noTarget") => {}
            Err(e) if e.outcome_unknown() => {
                tracing::info!(target_name = self.name, group = %entry.group, entry = entry.id, "the answer was lost; reading the group back: {e}");
                self.store.outbox_superseded(&[entry.id], &self.now).await?;
                return Err(Halt::Unknown);
            }
            Err(e) => return Err(self.refused(entry, sent, e, true).await?),
        }
        if entry.action == OutboxAction::Delete {
            self.store
                .forget_target_group(self.name, &entry.group, Some((entry.id, sent)), &self.now)
                .await?;
            return Ok(None);
        }
        Ok(Some(self.applied(entry, sent, current, report)))
    }

    /// Applies a change the target confirmed to `current` and `report`: its confirmation,
    /// without the set.
    pub(super) fn applied(
        &self,
        entry: &OutboxEntry,
        sent: i64,
        current: &mut Confirmed,
        report: &mut PairReport,
    ) -> Confirmation {
        let (added, removed) = entry.payload.member_changes(entry.action);
        report.added += added.len();
        report.removed += removed.len();
        if let Some(progress) = &self.progress {
            progress.sent((added.len() + removed.len()) as u64);
        }
        current.apply(added, removed);
        Confirmation {
            target: self.name.to_string(),
            group: entry.group.clone(),
            entry: entry.id,
            attempts: sent,
            set: None,
            display_name: (entry.action == OutboxAction::Rename)
                .then(|| entry.payload.display_name.clone())
                .flatten(),
        }
    }

    /// Commits confirmations sent together; the last carries the set they leave.
    pub(super) async fn confirm_all(
        &self,
        mut confirmations: Vec<Confirmation>,
        current: &Confirmed,
    ) -> Result<(), Halt> {
        if let Some(last) = confirmations.last_mut() {
            last.set = Some(current.encode()?);
        }
        self.confirmer.confirm(confirmations, &self.now).await?;
        Ok(())
    }

    /// Sends member changes that are requests of their own all at once (the client keeps
    /// within `concurrency`), sorts their answers in order and commits what the target
    /// confirmed in one go. Each entry's outcome, in order; after the first that stops the
    /// group, the others' confirmed changes are still kept.
    pub(super) async fn send_together(
        &self,
        entries: &[OutboxEntry],
        current: &mut Confirmed,
        report: &mut PairReport,
    ) -> Result<Vec<Result<Option<Created>, Halt>>, Halt> {
        // A process that lost the leadership sends nothing more.
        self.store.check_fence()?;
        let answers =
            futures_util::future::join_all(entries.iter().map(|entry| self.send(entry))).await;
        let mut confirmations = Vec::new();
        let mut outcomes = Vec::new();
        let mut stopped = false;
        for (entry, answer) in entries.iter().zip(answers) {
            if stopped {
                // Planned again with the rest; a change the target made is kept.
                if answer.is_ok() {
                    confirmations.push(self.applied(entry, 1, current, report));
                }
                outcomes.push(Ok(None));
                continue;
            }
            let outcome = match self.answered(entry, answer, current, 1, report).await {
                Ok(confirmation) => {
                    confirmations.extend(confirmation);
                    Ok(None)
                }
                Err(e) => {
                    stopped = !matches!(e, Halt::Unknown);
                    Err(e)
                }
            };
            outcomes.push(outcome);
        }
        self.confirm_all(confirmations, current).await?;
        Ok(outcomes)
    }

    /// Sends an `update` entry's additions and removals as two requests. `attempts` counts
    /// the requests sent for the entry: the shared one and its two halves.
    async fn execute_apart(
        &self,
        entry: &OutboxEntry,
        current: &mut Confirmed,
        sent: i64,
        report: &mut PairReport,
    ) -> Result<Option<Created>, Halt> {
        let mut sent = sent;
        for (action, members) in [
            (OutboxAction::Add, &entry.payload.members),
            (OutboxAction::Remove, &entry.payload.remove),
        ] {
            let half = OutboxEntry {
                action,
                payload: OutboxPayload {
                    members: members.clone(),
                    remove: Vec::new(),
                    ..entry.payload.clone()
                },
                ..entry.clone()
            };
            Box::pin(self.execute(&half, current, sent, report)).await?;
            sent = 0;
        }
        Ok(None)
    }

    /// Creates the group, or adopts the one a crashed attempt (or a person) made with the
    /// same name: POST is not idempotent, so the name is looked up first.
    async fn execute_create(&self, entry: &OutboxEntry) -> Result<Created, Halt> {
        let name = entry.payload.display_name.clone().unwrap_or_default();
        let mut last_error = String::new();
        let mut sent = 0;
        for attempt in 0..=self.config.retries {
            let email = entry.payload.email.as_deref();
            let found = match self.target.find_groups(&name, email).await {
                Ok(found) => found,
                Err(e) => return Err(self.refused(entry, sent, e, false).await?),
            };
            // `told`: the target said what the group holds (it was read, or its creation
            // was answered with its members), rather than rosterd assuming what it sent.
            let (id, members, made, told) = if let Some(g) = found.first() {
                let id = g.id.clone();
                let members = match &g.members {
                    Some(m) => m.clone(),
                    None => self.read_members(&id).await?,
                };
                (id, members, false, true)
            } else if entry.payload.link {
                let message = format!(
                    "no group named `{name}` in target `{}` to link to",
                    self.name
                );
                self.store
                    .outbox_failed(entry.id, sent, Some(404), None, &message, &self.now)
                    .await?;
                return Err(Halt::Failed(message));
            } else {
                let ids: Vec<String> = ids_of(&entry.payload.members);
                self.store.check_fence()?;
                sent += 1;
                match self.target.create_group(&name, email, &ids).await {
                    Ok(g) => {
                        let told = g.members.is_some();
                        let members = g.members.unwrap_or(ids);
                        (g.id, members, true, told)
                    }
                    // Made meanwhile (or by an attempt whose answer was lost): adopt it.
                    Err(e) if e.status() == Some(409) => continue,
                    // The answer was lost: the group may exist now; look again.
                    Err(e @ TargetError::Transport { .. }) => {
                        last_error = e.to_string();
                        let pause = self
                            .config
                            .retry_backoff_ms
                            .saturating_mul(1 << attempt.min(10));
                        tokio::time::sleep(std::time::Duration::from_millis(pause)).await;
                        continue;
                    }
                    Err(e) => return Err(self.refused(entry, sent, e, true).await?),
                }
            };
            let mut state = TargetGroup::new(&entry.group, id, name.clone(), entry.payload.link);
            state.pushed_at = Some(self.now.clone());
            if told {
                state.verified_at = Some(self.now.clone());
                state.verified_drift = Some(0);
                state.verify_state = Some(crate::store::VerifyState::Matched);
            }
            // What the target answered it holds: the members sent by worker, any other entry
            // by id (the pair settles those that are workers' users).
            let sent_ids: HashMap<&str, &TargetMember> = entry
                .payload
                .members
                .iter()
                .map(|m| (m.user_id.as_str(), m))
                .collect();
            let mut held = Confirmed::default();
            for user in members {
                match sent_ids.get(user.as_str()) {
                    Some(&member) => held.apply(std::slice::from_ref(member), &[]),
                    None => {
                        held.foreign.insert(user, None);
                    }
                }
            }
            self.store
                .record_target_group(
                    self.name,
                    &state,
                    &held,
                    Some((entry.id, sent.max(1))),
                    &self.now,
                )
                .await?;
            if let Some(progress) = &self.progress {
                progress.sent(if made { held.len() as u64 } else { 0 });
            }
            return Ok(Created {
                state,
                members: held,
                made,
            });
        }
        Err(Halt::Pending(format!(
            "group `{name}` could not be created or found: {last_error}"
        )))
    }

    /// Sorts a failed request: credentials refused stop the target; retries exhausted leave
    /// the entry pending; a refusal of a request that added members (`carried_members`)
    /// goes back to the pair, which looks those workers up again; any other refusal is
    /// recorded on the entry for good.
    async fn refused(
        &self,
        entry: &OutboxEntry,
        sent: i64,
        e: TargetError,
        carried_members: bool,
    ) -> Result<Halt, crate::store::StoreError> {
        if e.is_auth() {
            return Ok(Halt::Stop(Stop::Target(e)));
        }
        // Not rosterd's to change: recorded on the entry for good, and said.
        if let TargetError::Refused { .. } = e {
            self.fail(entry, sent, &e).await?;
            tracing::warn!(target_name = self.name, group = %entry.group, entry = entry.id, "{e}");
            return Ok(Halt::Failed(e.to_string()));
        }
        match e.status() {
            Some(status) if status != 429 && status < 500 => {
                let (added, _) = entry.payload.member_changes(entry.action);
                let workers: Vec<u32> = added.iter().filter_map(|m| m.worker).collect();
                if carried_members && !workers.is_empty() {
                    return Ok(Halt::Refused(
                        Box::new(Refusal {
                            entry: entry.id,
                            sent,
                            error: e,
                            workers,
                        }),
                        None,
                    ));
                }
                self.fail(entry, sent, &e).await?;
                tracing::warn!(target_name = self.name, group = %entry.group, entry = entry.id, "the target refused a change: {e}");
                Ok(Halt::Failed(e.to_string()))
            }
            _ => Ok(Halt::Pending(e.to_string())),
        }
    }

    /// A refusal that looking the workers up again did not explain: recorded on the entry
    /// for good, and the workers' cached ids are looked up again at the next push. Its
    /// message.
    pub(super) async fn refusal_stands(
        &self,
        group: &str,
        refusal: &Refusal,
    ) -> Result<String, crate::store::StoreError> {
        let e = &refusal.error;
        self.store
            .outbox_failed(
                refusal.entry,
                refusal.sent,
                e.status(),
                e.code(),
                e.detail().unwrap_or(&e.to_string()),
                &self.now,
            )
            .await?;
        let keys: Vec<&str> = refusal
            .workers
            .iter()
            .filter_map(|&id| self.desired.workers.key(id))
            .collect();
        self.store.forget_target_users(self.name, &keys).await?;
        tracing::warn!(
            target_name = self.name,
            group,
            entry = refusal.entry,
            "the target refused a change: {e}"
        );
        Ok(e.to_string())
    }

    async fn fail(
        &self,
        entry: &OutboxEntry,
        sent: i64,
        e: &TargetError,
    ) -> Result<(), crate::store::StoreError> {
        self.store
            .outbox_failed(
                entry.id,
                sent,
                e.status(),
                e.code(),
                e.detail().unwrap_or(&e.to_string()),
                &self.now,
            )
            .await
    }
}

/// The user ids an entry adds and removes, for the [`Change`] it is.
struct EntryIds {
    add: Vec<String>,
    remove: Vec<String>,
}

impl EntryIds {
    fn of(action: OutboxAction, payload: &OutboxPayload) -> EntryIds {
        let (added, removed) = payload.member_changes(action);
        EntryIds {
            add: ids_of(added),
            remove: ids_of(removed),
        }
    }

    fn change<'a>(&'a self, action: OutboxAction, payload: &'a OutboxPayload) -> Change<'a> {
        let id = payload.scim_id.as_deref().unwrap_or("(new)");
        let name = payload.display_name.as_deref().unwrap_or_default();
        match action {
            OutboxAction::Create => Change::Create {
                email: payload.email.as_deref(),
                name,
                members: &self.add,
            },
            OutboxAction::Add | OutboxAction::Remove | OutboxAction::Update => Change::Members {
                id,
                add: &self.add,
                remove: &self.remove,
            },
            OutboxAction::Rename => Change::Rename { id, name },
            OutboxAction::Delete => Change::Delete { id },
        }
    }
}

fn ids_of(members: &[TargetMember]) -> Vec<String> {
    members.iter().map(|m| m.user_id.clone()).collect()
}
