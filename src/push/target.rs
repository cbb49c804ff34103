//! The target interface: what a push asks of a target, whatever its kind. Planning, the
//! outbox, the failsafes, guardrail holds, verification, reconcile, progress and status are
//! the push's own and the same for every kind; a kind answers only these questions and makes
//! only these changes, in its own requests:
//!
//! - users: look one up by the value workers are matched by, list them all (paged), tell
//!   which of some user ids are users;
//! - groups: find one by name, read one with its members (paged), create one (with a first
//!   batch of members where the kind can);
//! - changes: add and remove members (in the batches the kind allows), rename, delete.
//!
//! Every kind is an HTTP API over [`crate::http::client::Requester`], so they share pacing,
//! retries, the counts and [`TargetError`].

use serde_json::{json, Value};

use crate::config::{RemoveDialect, TargetConfig};
use crate::http::client::{MaySend, Stats, TargetError};
use crate::scim::wire::{self, Member, PatchOperation};
use crate::scim::{Client, Request};

/// A target of any kind.
pub(crate) enum Target {
    Scim {
        client: Client,
        /// How a removal is written in a PATCH (`patch.remove`).
        remove: RemoveDialect,
    },
}

/// A group as the target holds it.
#[derive(Debug, Clone)]
pub(crate) struct FoundGroup {
    pub id: String,
    pub name: String,
    /// Its members' user ids, entry by entry (a member held twice is there twice); `None`
    /// when the answer left them out.
    pub members: Option<Vec<String>>,
}

/// A user as the target answers it: its id, and its values of the attribute users are
/// matched by.
#[derive(Debug, Clone)]
pub(crate) struct FoundUser {
    pub id: String,
    pub values: Vec<String>,
}

/// One page of a listing of users.
pub(crate) struct UserPage {
    /// How many users the target says it has in all.
    pub total: u64,
    /// How many entries the page held, usable or not.
    pub listed: u64,
    pub users: Vec<FoundUser>,
}

/// A change to a group, as an outbox entry asks it.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Change<'a> {
    Create {
        name: &'a str,
        members: &'a [String],
    },
    Members {
        id: &'a str,
        add: &'a [String],
        remove: &'a [String],
    },
    Rename {
        id: &'a str,
        name: &'a str,
    },
    Delete {
        id: &'a str,
    },
}

impl Target {
    pub fn new(name: &str, config: &TargetConfig) -> Result<Target, TargetError> {
        Ok(Target::Scim {
            client: Client::new(name, config)?,
            remove: config.patch.remove,
        })
    }

    /// See [`crate::http::client::Requester::gated`].
    pub fn gated(self, may_send: MaySend) -> Target {
        match self {
            Target::Scim { client, remove } => Target::Scim {
                client: client.gated(may_send),
                remove,
            },
        }
    }

    /// The requests sent so far, by kind.
    pub fn stats(&self) -> &Stats {
        match self {
            Target::Scim { client, .. } => &client.stats,
        }
    }

    // --- Groups ------------------------------------------------------------------------------

    /// The groups named exactly `name`.
    pub async fn find_groups(&self, name: &str) -> Result<Vec<FoundGroup>, TargetError> {
        match self {
            Target::Scim { client, .. } => Ok(client
                .find_groups(name)
                .await?
                .into_iter()
                .map(found_group)
                .collect()),
        }
    }

    /// The group `id` with its members; `None` when the target does not have it.
    pub async fn read_group(&self, id: &str) -> Result<Option<FoundGroup>, TargetError> {
        match self {
            Target::Scim { client, .. } => Ok(client.get_group(id).await?.map(found_group)),
        }
    }

    /// Makes the group `name` holding `members` (as many as [`Target::members_on_create`]
    /// allows): the group as the target answered it.
    pub async fn create_group(
        &self,
        name: &str,
        members: &[String],
    ) -> Result<FoundGroup, TargetError> {
        match self {
            Target::Scim { client, .. } => {
                let request = client.create_group_request(name, members);
                Ok(found_group(client.create_group(&request).await?))
            }
        }
    }

    /// How many members the request that creates a group may carry.
    pub fn members_on_create(&self, config: &TargetConfig) -> usize {
        match self {
            Target::Scim { .. } => config.patch.max_members_per_request,
        }
    }

    /// Makes a change other than a creation ([`Target::create_group`]).
    pub async fn change(&self, change: Change<'_>) -> Result<(), TargetError> {
        match self {
            Target::Scim { client, remove } => {
                client.send(&scim_request(client, *remove, change)).await?;
                Ok(())
            }
        }
    }

    /// The requests a change takes, as `--dry-run` prints them.
    pub fn show(&self, change: Change<'_>) -> Vec<String> {
        match self {
            Target::Scim { client, remove } => {
                vec![client.show(&scim_request(client, *remove, change))]
            }
        }
    }

    /// Whether the error says that a member to remove was not in the group: the group is
    /// then as wanted.
    pub fn member_was_gone(&self, e: &TargetError) -> bool {
        match self {
            Target::Scim { .. } => e.code() == Some("noTarget"),
        }
    }

    // --- Users -------------------------------------------------------------------------------

    /// The users whose `attribute` equals `value`, as the target compares.
    pub async fn find_users(
        &self,
        attribute: &str,
        value: &str,
    ) -> Result<Vec<FoundUser>, TargetError> {
        match self {
            Target::Scim { client, .. } => Ok(client
                .find_users(attribute, value)
                .await?
                .iter()
                .filter_map(|u| found_user(u, attribute))
                .collect()),
        }
    }

    /// One page of the users, `start` counting from 1.
    pub async fn list_users(
        &self,
        start: u64,
        count: u64,
        attribute: &str,
    ) -> Result<UserPage, TargetError> {
        match self {
            Target::Scim { client, .. } => {
                let page = client.list_users(start, count).await?;
                Ok(UserPage {
                    total: page.total_results,
                    listed: page.resources.len() as u64,
                    users: page
                        .resources
                        .iter()
                        .filter_map(|u| found_user(u, attribute))
                        .collect(),
                })
            }
        }
    }

    /// The ids among `ids` that are users of the target, asked in one request.
    pub async fn users_with_ids(&self, ids: &[&str]) -> Result<Vec<String>, TargetError> {
        match self {
            Target::Scim { client, .. } => Ok(client
                .users_with_ids(ids)
                .await?
                .iter()
                .filter_map(|u| u.get("id").and_then(Value::as_str).map(str::to_string))
                .collect()),
        }
    }

    /// Whether `id` is a user of the target.
    pub async fn is_user(&self, id: &str) -> Result<bool, TargetError> {
        match self {
            Target::Scim { client, .. } => Ok(client
                .get_user(id)
                .await?
                .is_some_and(|u| u.get("id").and_then(Value::as_str) == Some(id))),
        }
    }

    /// The target's description of its users, where its kind publishes one (SCIM's
    /// `/Schemas`).
    pub async fn user_schema(&self) -> Result<Option<Value>, TargetError> {
        match self {
            Target::Scim { client, .. } => client.user_schema().await,
        }
    }
}

fn found_group(g: wire::Group) -> FoundGroup {
    FoundGroup {
        id: g.id.unwrap_or_default(),
        name: g.display_name,
        members: g
            .members
            .map(|members| members.into_iter().map(|m| m.value).collect()),
    }
}

/// A SCIM user with a usable id.
fn found_user(user: &Value, attribute: &str) -> Option<FoundUser> {
    let id = user
        .get("id")
        .and_then(Value::as_str)
        .filter(|id| wire::is_valid_id(id))?;
    Some(FoundUser {
        id: id.to_string(),
        values: wire::user_values(user, attribute)
            .into_iter()
            .map(str::to_string)
            .collect(),
    })
}

/// The SCIM request a change is.
fn scim_request(client: &Client, remove: RemoveDialect, change: Change<'_>) -> Request {
    let values = |ids: &[String]| {
        let list: Vec<Member> = ids.iter().map(Member::id).collect();
        serde_json::to_value(list).ok()
    };
    match change {
        Change::Create { name, members } => client.create_group_request(name, members),
        Change::Members {
            id,
            add,
            remove: removed,
        } => {
            // All operations of one PATCH apply, or none (RFC 7644 section 3.5.2).
            let mut operations = Vec::new();
            if !add.is_empty() {
                operations.push(PatchOperation {
                    op: "add".into(),
                    path: Some("members".into()),
                    value: values(add),
                });
            }
            if !removed.is_empty() {
                match remove {
                    RemoveDialect::PathFilter => {
                        operations.extend(removed.iter().map(|user| PatchOperation {
                            op: "remove".into(),
                            path: Some(format!("members[{}]", wire::eq_filter("value", user))),
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
            client.patch_request(id, operations)
        }
        Change::Rename { id, name } => client.patch_request(
            id,
            vec![PatchOperation {
                op: "replace".into(),
                path: Some("displayName".into()),
                value: Some(json!(name)),
            }],
        ),
        Change::Delete { id } => client.delete_request(id),
    }
}
