//! Sending outbox entries. An entry is in the store before its request leaves; the store
//! learns the change (and marks the entry done) only once the target confirms it. Entries
//! left pending by a crash are replayed first at the next push; replaying one that had
//! reached the target is harmless, because adding a member twice or removing an absent one
//! leaves the group the same.

use serde_json::json;

use super::pair::PairStop;
use super::{Stop, TargetRun};
use crate::config::RemoveDialect;
use crate::scim::wire::{self, Member, PatchOperation};
use crate::scim::{Request, ScimError};
use crate::store::{OutboxAction, OutboxEntry, OutboxPayload, TargetGroup, TargetMember};

/// How sending an entry went wrong.
pub(super) enum Exec {
    /// 404: the target lost the group.
    GroupMissing,
    /// The target refused the entry for good (recorded on the entry).
    Failed(String),
    /// Retries ran out; the entry stays pending for the next push.
    Pending(String),
    Stop(Stop),
}

impl From<crate::store::StoreError> for Exec {
    fn from(e: crate::store::StoreError) -> Self {
        Exec::Stop(Stop::Store(e))
    }
}

impl From<PairStop> for Exec {
    fn from(e: PairStop) -> Self {
        match e {
            PairStop::GroupMissing => Exec::GroupMissing,
            PairStop::Failed(message) => Exec::Failed(message),
            PairStop::Stop(stop) => Exec::Stop(stop),
        }
    }
}

type Created = Option<(TargetGroup, Vec<TargetMember>)>;

/// Where an entry stands in a run of entries sent one after the other.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Next {
    /// The entry was already counted as attempted, by the confirmation of the one before.
    pub counted: bool,
    /// The entry sent right after this one, to count as attempted when this one is
    /// confirmed.
    pub id: Option<i64>,
}

impl OutboxAction {
    /// Whether a confirmation of this action counts the next entry as attempted.
    pub(super) fn counts_next(self) -> bool {
        !matches!(self, OutboxAction::Create | OutboxAction::Delete)
    }
}

impl TargetRun<'_> {
    /// Sends what a crash or an outage left pending, oldest first. How many were sent.
    pub(super) async fn replay(&self) -> Result<usize, Stop> {
        let pending = self.store.pending_outbox(self.name).await?;
        if !pending.is_empty() {
            tracing::info!(
                target_name = self.name,
                entries = pending.len(),
                "replaying the outbox"
            );
        }
        let mut sent = 0;
        for entry in &pending {
            match self.execute(entry, Next::default()).await {
                Ok(_) => sent += 1,
                // The pair is planned afresh right after.
                Err(Exec::GroupMissing | Exec::Failed(_)) => {}
                Err(Exec::Pending(message)) => {
                    return Err(Stop::Target(ScimError::Setup {
                        target: self.name.to_string(),
                        message: format!("the outbox could not be replayed: {message}"),
                    }))
                }
                Err(Exec::Stop(stop)) => return Err(stop),
            }
        }
        Ok(sent)
    }

    /// The request an entry stands for.
    pub(super) fn request_for(&self, action: OutboxAction, payload: &OutboxPayload) -> Request {
        let id = payload.scim_id.as_deref().unwrap_or("(new)");
        let values = |members: &[TargetMember]| {
            let list: Vec<Member> = members
                .iter()
                .map(|m| Member::id(m.user_id.clone()))
                .collect();
            serde_json::to_value(list).ok()
        };
        match action {
            OutboxAction::Create => {
                let ids: Vec<String> = payload.members.iter().map(|m| m.user_id.clone()).collect();
                self.client
                    .create_group_request(payload.display_name.as_deref().unwrap_or_default(), &ids)
            }
            OutboxAction::Add | OutboxAction::Remove | OutboxAction::Update => {
                // All operations of one PATCH apply, or none (RFC 7644 section 3.5.2).
                let (added, removed) = payload.member_changes(action);
                let mut operations = Vec::new();
                if !added.is_empty() {
                    operations.push(PatchOperation {
                        op: "add".into(),
                        path: Some("members".into()),
                        value: values(added),
                    });
                }
                if !removed.is_empty() {
                    match self.config.patch.remove {
                        RemoveDialect::PathFilter => {
                            operations.extend(removed.iter().map(|m| PatchOperation {
                                op: "remove".into(),
                                path: Some(format!(
                                    "members[{}]",
                                    wire::eq_filter("value", &m.user_id)
                                )),
                                value: None,
                            }));
                        }
                        RemoveDialect::ValueList => operations.push(PatchOperation {
                            op: "remove".into(),
                            path: Some("members".into()),
                            value: values(removed),
                        }),
                    }
                }
                self.client.patch_request(id, operations)
            }
            OutboxAction::Rename => self.client.patch_request(
                id,
                vec![PatchOperation {
                    op: "replace".into(),
                    path: Some("displayName".into()),
                    value: Some(json!(payload.display_name)),
                }],
            ),
            OutboxAction::Delete => self.client.delete_request(id),
        }
    }

    /// Sends one entry and records the outcome. A `create` returns the group it made or
    /// adopted, with its members.
    pub(super) async fn execute(&self, entry: &OutboxEntry, next: Next) -> Result<Created, Exec> {
        if !next.counted {
            self.store.outbox_attempted(entry.id).await?;
        }
        if entry.action == OutboxAction::Create {
            return self.execute_create(entry).await;
        }
        let request = self.request_for(entry.action, &entry.payload);
        match self.client.send(&request).await {
            Ok(_) => {}
            Err(e) if e.status() == Some(404) => {
                if entry.action == OutboxAction::Delete {
                    self.store
                        .forget_target_group(self.name, &entry.group, Some(entry.id), &self.now)
                        .await?;
                    return Ok(None);
                }
                self.fail(entry, &e).await?;
                self.store
                    .record_group_missing(self.name, &entry.group, &self.now)
                    .await?;
                return Err(Exec::GroupMissing);
            }
            // Removing a member who is already gone leaves the group as wanted.
            Err(e) if entry.action == OutboxAction::Remove && e.scim_type() == Some("noTarget") => {
            }
            // A member to remove was gone already, and the whole PATCH failed with it: send
            // the additions and the removals apart, as when they do not share a request.
            Err(e) if entry.action == OutboxAction::Update && e.scim_type() == Some("noTarget") => {
                return self.execute_apart(entry, next).await;
            }
            Err(e) => return Err(self.refused(entry, e).await?),
        }
        if entry.action == OutboxAction::Delete {
            self.store
                .forget_target_group(self.name, &entry.group, Some(entry.id), &self.now)
                .await?;
        } else {
            self.store.confirm_patch(entry, &self.now, next.id).await?;
        }
        Ok(None)
    }

    /// Sends an `update` entry's additions and removals as two requests.
    /// Each half counts as an attempt of the entry: `attempts` is the requests sent for it.
    async fn execute_apart(&self, entry: &OutboxEntry, next: Next) -> Result<Created, Exec> {
        let last = Next {
            counted: false,
            id: next.id,
        };
        for (action, members, next) in [
            (OutboxAction::Add, &entry.payload.members, Next::default()),
            (OutboxAction::Remove, &entry.payload.remove, last),
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
            Box::pin(self.execute(&half, next)).await?;
        }
        Ok(None)
    }

    /// Creates the group, or adopts the one a crashed attempt (or a person) made with the
    /// same name: POST is not idempotent, so the name is looked up first.
    async fn execute_create(&self, entry: &OutboxEntry) -> Result<Created, Exec> {
        let name = entry.payload.display_name.clone().unwrap_or_default();
        let mut last_error = String::new();
        for attempt in 0..=self.config.retries {
            let found = match self.client.find_groups(&name).await {
                Ok(found) => found,
                Err(e) => return Err(self.refused(entry, e).await?),
            };
            let (id, members) = if let Some(g) = found.first() {
                let id = g.id.clone().unwrap_or_default();
                let members = match &g.members {
                    Some(m) => m.clone(),
                    None => self.read_members(&id).await?,
                };
                (id, members)
            } else if entry.payload.link {
                let message = format!(
                    "no group named `{name}` in target `{}` to link to",
                    self.name
                );
                self.store
                    .outbox_failed(entry.id, Some(404), None, &message, &self.now)
                    .await?;
                return Err(Exec::Failed(message));
            } else {
                let request = self.request_for(OutboxAction::Create, &entry.payload);
                match self.client.create_group(&request).await {
                    Ok(g) => {
                        let members = g.members.clone().unwrap_or_else(|| {
                            entry
                                .payload
                                .members
                                .iter()
                                .map(|m| Member::id(m.user_id.clone()))
                                .collect()
                        });
                        (g.id.unwrap_or_default(), members)
                    }
                    // Made meanwhile (or by an attempt whose answer was lost): adopt it.
                    Err(e) if e.status() == Some(409) => continue,
                    // The answer was lost: the group may exist now; look again.
                    Err(e @ ScimError::Transport { .. }) => {
                        last_error = e.to_string();
                        let pause = self
                            .config
                            .retry_backoff_ms
                            .saturating_mul(1 << attempt.min(10));
                        tokio::time::sleep(std::time::Duration::from_millis(pause)).await;
                        continue;
                    }
                    Err(e) => return Err(self.refused(entry, e).await?),
                }
            };
            let state = TargetGroup {
                group: entry.group.clone(),
                scim_id: id,
                display_name: name.clone(),
                linked: entry.payload.link,
                pushed_at: Some(self.now.clone()),
                reconciled_at: None,
            };
            let members: Vec<TargetMember> = members
                .into_iter()
                .map(|m| TargetMember {
                    worker_key: entry
                        .payload
                        .members
                        .iter()
                        .find(|p| p.user_id == m.value)
                        .and_then(|p| p.worker_key.clone()),
                    user_id: m.value,
                })
                .collect();
            self.store
                .record_target_group(self.name, &state, &members, Some(entry.id), &self.now)
                .await?;
            return Ok(Some((state, members)));
        }
        Err(Exec::Pending(format!(
            "group `{name}` could not be created or found: {last_error}"
        )))
    }

    /// Sorts a failed request: credentials refused stop the target; retries exhausted leave
    /// the entry pending; any other refusal is recorded on the entry for good.
    async fn refused(
        &self,
        entry: &OutboxEntry,
        e: ScimError,
    ) -> Result<Exec, crate::store::StoreError> {
        if e.is_auth() {
            return Ok(Exec::Stop(Stop::Target(e)));
        }
        match e.status() {
            Some(status) if status != 429 && status < 500 => {
                self.fail(entry, &e).await?;
                let (added, _) = entry.payload.member_changes(entry.action);
                if entry.action != OutboxAction::Create && !added.is_empty() {
                    // A user id the target no longer knows is the likely cause: look the
                    // workers up again at the next push instead of trusting the cache.
                    let keys: Vec<&str> = added
                        .iter()
                        .filter_map(|m| m.worker_key.as_deref())
                        .collect();
                    self.store.forget_target_users(self.name, &keys).await?;
                }
                tracing::warn!(target_name = self.name, group = %entry.group, entry = entry.id, "the target refused a change: {e}");
                Ok(Exec::Failed(e.to_string()))
            }
            _ => Ok(Exec::Pending(e.to_string())),
        }
    }

    async fn fail(
        &self,
        entry: &OutboxEntry,
        e: &ScimError,
    ) -> Result<(), crate::store::StoreError> {
        self.store
            .outbox_failed(
                entry.id,
                e.status(),
                e.scim_type(),
                e.detail().unwrap_or(&e.to_string()),
                &self.now,
            )
            .await
    }
}
