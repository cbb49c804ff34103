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
//! The HTTP kinds go through [`crate::http::client::Requester`]; LDAP through its own
//! connection ([`crate::ldap::conn`]). All share the counts ([`Stats`]) and [`TargetError`].

use serde_json::{json, Value};

use crate::config::{RemoveDialect, TargetConfig, TargetKind};
use crate::http::client::{MaySend, Stats, TargetError};
use crate::scim::wire::{self, Member, PatchOperation};
use crate::scim::{Client, Request};
use crate::{google, ldap, okta};

/// A target of any kind.
pub(crate) enum Target {
    Scim {
        client: Client,
        /// How a removal is written in a PATCH (`patch.remove`).
        remove: RemoveDialect,
    },
    Okta(okta::Client),
    Google(google::Client),
    Ldap(ldap::Client),
}

/// The description a group rosterd makes carries (where the kind has descriptions).
const MADE_BY: &str = "Managed by rosterd from the group rules; changes made here are undone";

/// A group as the target holds it.
#[derive(Debug, Clone)]
pub(crate) struct FoundGroup {
    pub id: String,
    pub name: String,
    /// Its members' user ids, entry by entry (a member held twice is there twice); `None`
    /// when the answer left them out.
    pub members: Option<Vec<String>>,
    /// Members the kind keeps out of rosterd's hands, described (Google's nested groups
    /// and addresses outside the account): never planned, never removed, reported.
    pub kept: Vec<String>,
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
    /// How many users the target says it has in all, when it says.
    pub total: Option<u64>,
    /// How many entries the page held, usable or not.
    pub listed: u64,
    pub users: Vec<FoundUser>,
    /// Where the next page starts, when there is one: for [`Target::list_users`].
    pub next: Option<String>,
}

/// A change to a group, as an outbox entry asks it.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Change<'a> {
    Create {
        name: &'a str,
        /// Its address, for a kind whose groups have one.
        email: Option<&'a str>,
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
        Ok(match config.kind {
            TargetKind::Scim => Target::Scim {
                client: Client::new(name, config)?,
                remove: config.patch().remove,
            },
            TargetKind::Okta => Target::Okta(okta::Client::new(name, config)?),
            TargetKind::GoogleWorkspace => Target::Google(google::Client::new(name, config)?),
            TargetKind::Ldap => Target::Ldap(ldap::Client::new(name, config)?),
        })
    }

    /// See [`crate::http::client::Requester::gated`].
    pub fn gated(self, may_send: MaySend) -> Target {
        match self {
            Target::Scim { client, remove } => Target::Scim {
                client: client.gated(may_send),
                remove,
            },
            Target::Okta(client) => Target::Okta(client.gated(may_send)),
            Target::Google(client) => Target::Google(client.gated(may_send)),
            Target::Ldap(client) => Target::Ldap(client.gated(may_send)),
        }
    }

    /// The requests sent so far, by kind.
    pub fn stats(&self) -> &Stats {
        match self {
            Target::Scim { client, .. } => client.stats(),
            Target::Okta(client) => client.stats(),
            Target::Google(client) => client.stats(),
            Target::Ldap(client) => client.stats(),
        }
    }

    // --- Groups ------------------------------------------------------------------------------

    /// The groups named exactly `name`; for a kind whose groups have addresses, the group
    /// at `email`.
    pub async fn find_groups(
        &self,
        name: &str,
        email: Option<&str>,
    ) -> Result<Vec<FoundGroup>, TargetError> {
        match self {
            Target::Scim { client, .. } => Ok(client
                .find_groups(name)
                .await?
                .into_iter()
                .map(found_group)
                .collect()),
            Target::Okta(client) => {
                let mut out = Vec::new();
                for group in client.find_groups(name).await? {
                    client.check_ours(&group).await?;
                    let members = client.member_ids(&group.id).await?;
                    out.push(FoundGroup {
                        id: group.id,
                        name: group.profile.name,
                        members: Some(members),
                        kept: Vec::new(),
                    });
                }
                Ok(out)
            }
            Target::Google(client) => {
                let Some(email) = email else {
                    return Err(client.refused(format!(
                        "group `{name}` has no email address\nhelp: set `google.group_email` on the target (such as `{{name}}@groups.example.com`), or `email:` in the group's push"
                    )));
                };
                match client.get_group(email).await? {
                    None => Ok(Vec::new()),
                    Some(group) => Ok(vec![google_group(client, group).await?]),
                }
            }
            Target::Ldap(client) => Ok(client
                .find_groups(name)
                .await?
                .into_iter()
                .map(ldap_group)
                .collect()),
        }
    }

    /// The group `id` with its members; `None` when the target does not have it.
    pub async fn read_group(&self, id: &str) -> Result<Option<FoundGroup>, TargetError> {
        match self {
            Target::Scim { client, .. } => Ok(client.get_group(id).await?.map(found_group)),
            Target::Okta(client) => {
                let Some(group) = client.get_group(id).await? else {
                    return Ok(None);
                };
                client.check_ours(&group).await?;
                Ok(Some(FoundGroup {
                    members: Some(client.member_ids(id).await?),
                    id: group.id,
                    name: group.profile.name,
                    kept: Vec::new(),
                }))
            }
            Target::Google(client) => match client.get_group(id).await? {
                None => Ok(None),
                Some(group) => Ok(Some(google_group(client, group).await?)),
            },
            Target::Ldap(client) => Ok(client.read_group(id).await?.map(ldap_group)),
        }
    }

    /// Makes the group `name` holding `members` (as many as [`Target::members_on_create`]
    /// allows): the group as the target answered it.
    pub async fn create_group(
        &self,
        name: &str,
        email: Option<&str>,
        members: &[String],
    ) -> Result<FoundGroup, TargetError> {
        match self {
            Target::Scim { client, .. } => {
                let request = client.create_group_request(name, members);
                Ok(found_group(client.create_group(&request).await?))
            }
            // Okta makes a group empty ([`Target::members_on_create`]).
            Target::Okta(client) => {
                let group = client.create_group(name, MADE_BY).await?;
                Ok(FoundGroup {
                    id: group.id,
                    name: group.profile.name,
                    members: Some(Vec::new()),
                    kept: Vec::new(),
                })
            }
            // Google makes a group empty too; `find_groups` has refused a group without an
            // address before this is asked.
            Target::Google(client) => {
                let request = client.create_group_request(email.unwrap_or_default(), name, MADE_BY);
                let group = client.create_group(&request).await?;
                Ok(FoundGroup {
                    id: group.id,
                    name: group.name,
                    members: Some(Vec::new()),
                    kept: Vec::new(),
                })
            }
            // Made with its first batch of members, and read back.
            Target::Ldap(client) => Ok(ldap_group(
                client.create_group(name, MADE_BY, members).await?,
            )),
        }
    }

    /// How many members the request that creates a group may carry.
    pub fn members_on_create(&self, config: &TargetConfig) -> usize {
        match self {
            Target::Scim { .. } => config.patch().max_members_per_request,
            Target::Okta(_) | Target::Google(_) => 0,
            Target::Ldap(client) => client.batch_size(),
        }
    }

    /// How many member changes one request (and so one outbox entry) carries.
    pub fn members_per_request(&self, config: &TargetConfig) -> usize {
        match self {
            Target::Scim { .. } => config.patch().max_members_per_request,
            // `PUT` or `DELETE /api/v1/groups/{id}/users/{userId}`: one member each.
            Target::Okta(_) => 1,
            // One batch request of member inserts and deletes.
            Target::Google(client) => client.batch_size(),
            // One modify of `member` values.
            Target::Ldap(client) => client.batch_size(),
        }
    }

    /// Whether each member change is a request of its own that the target applies on its
    /// own (Okta's `PUT` and `DELETE` of one membership), so that a group's changes may be in
    /// flight together, as many as `concurrency` allows, and confirmed in one commit. A
    /// SCIM PATCH, a Google batch and an LDAP modify are sent one after another.
    pub fn independent_requests(&self) -> bool {
        matches!(self, Target::Okta(_))
    }

    /// Makes a change other than a creation ([`Target::create_group`]).
    pub async fn change(&self, change: Change<'_>) -> Result<(), TargetError> {
        match self {
            Target::Scim { client, remove } => {
                client.send(&scim_request(client, *remove, change)).await?;
                Ok(())
            }
            Target::Okta(client) => {
                if let Change::Rename { id, name } = change {
                    return client.rename(id, name).await;
                }
                for request in okta_requests(client, change) {
                    client.send(&request).await?;
                }
                Ok(())
            }
            Target::Google(client) => match change {
                Change::Members { id, add, remove } => {
                    client
                        .change_members(client.member_calls(id, add, remove))
                        .await
                }
                Change::Rename { id, name } => client.send(&client.rename_request(id, name)).await,
                Change::Delete { id } => client.send(&client.delete_request(id)).await,
                Change::Create { name, email, .. } => {
                    client
                        .send(&client.create_group_request(
                            email.unwrap_or_default(),
                            name,
                            MADE_BY,
                        ))
                        .await
                }
            },
            Target::Ldap(client) => match change {
                Change::Members { id, add, remove } => client.change_members(id, add, remove).await,
                Change::Rename { id, name } => client.rename(id, name).await,
                Change::Delete { id } => client.delete_group(id).await,
                Change::Create { name, members, .. } => client
                    .create_group(name, MADE_BY, members)
                    .await
                    .map(|_| ()),
            },
        }
    }

    /// Learns what [`Target::show`] names the group of `change` by, where that takes a read
    /// (a directory's DN, by the group's id); nothing for the other kinds.
    pub async fn learn(&self, change: Change<'_>) -> Result<(), TargetError> {
        match (self, change) {
            (
                Target::Ldap(client),
                Change::Members { id, .. } | Change::Rename { id, .. } | Change::Delete { id },
            ) => client.dn_of(id).await.map(|_| ()),
            _ => Ok(()),
        }
    }

    /// The requests a change takes, as `--dry-run` prints them.
    pub fn show(&self, change: Change<'_>) -> Vec<String> {
        match self {
            Target::Scim { client, remove } => {
                vec![client.show(&scim_request(client, *remove, change))]
            }
            Target::Okta(client) => okta_requests(client, change)
                .iter()
                .map(|r| client.show(r))
                .collect(),
            Target::Google(client) => match change {
                // In the batches `change` sends them in.
                Change::Members { id, add, remove } => client
                    .member_calls(id, add, remove)
                    .chunks(client.batch_size().max(1))
                    .flat_map(|calls| client.show_batch(calls))
                    .collect(),
                Change::Create { name, email, .. } => vec![client
                    .show(&client.create_group_request(email.unwrap_or_default(), name, MADE_BY))],
                Change::Rename { id, name } => vec![client.show(&client.rename_request(id, name))],
                Change::Delete { id } => vec![client.show(&client.delete_request(id))],
            },
            Target::Ldap(client) => vec![match change {
                Change::Members { id, add, remove } => client.show_members(id, add, remove),
                Change::Create { name, members, .. } => format!(
                    "LDAP add {} ({} with {} member(s))",
                    client.dn_for(name),
                    client.class_name(),
                    members.len()
                ),
                Change::Rename { id, name } => format!(
                    "LDAP modrdn {} to {}",
                    client.shown_dn(id),
                    ldap::dn::cn(name)
                ),
                Change::Delete { id } => format!("LDAP delete {}", client.shown_dn(id)),
            }],
        }
    }

    /// Whether the error says that a member to remove was not in the group: the group is
    /// then as wanted.
    pub fn member_was_gone(&self, e: &TargetError) -> bool {
        match self {
            Target::Scim { .. } => e.code() == Some("noTarget"),
            // Okta answers 204 to removing a member it does not have; Google's 404 for a
            // member gone is taken as done call by call; LDAP's modify reads the group and
            // sends what is still wanted.
            Target::Okta(_) | Target::Google(_) | Target::Ldap(_) => false,
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
            Target::Okta(client) => Ok(client
                .find_users(attribute, value)
                .await?
                .iter()
                .map(|u| okta_user(u, attribute))
                .collect()),
            // The user by its address (primary or alias), which Google compares without
            // case.
            Target::Google(client) => Ok(client
                .get_user(value)
                .await?
                .iter()
                .map(google_user)
                .collect()),
            Target::Ldap(client) => Ok(client
                .find_users(attribute, value)
                .await?
                .into_iter()
                .map(ldap_user)
                .collect()),
        }
    }

    /// One page of the users: the first, or the one a page named as its `next`.
    pub async fn list_users(
        &self,
        from: Option<&str>,
        count: u64,
        attribute: &str,
    ) -> Result<UserPage, TargetError> {
        match self {
            Target::Scim { client, .. } => {
                // SCIM pages by index, counting from 1 (RFC 7644 section 3.4.2.4).
                let start: u64 = from.and_then(|f| f.parse().ok()).unwrap_or(1);
                let page = client.list_users(start, count).await?;
                let listed = page.resources.len() as u64;
                let total = page.total_results;
                Ok(UserPage {
                    total: Some(total),
                    listed,
                    users: page
                        .resources
                        .iter()
                        .filter_map(|u| found_user(u, attribute))
                        .collect(),
                    next: (listed > 0 && start - 1 + listed < total)
                        .then(|| (start + listed).to_string()),
                })
            }
            Target::Okta(client) => {
                let (users, next) = client.list_users(from, count).await?;
                Ok(UserPage {
                    total: None,
                    listed: users.len() as u64,
                    users: users.iter().map(|u| okta_user(u, attribute)).collect(),
                    next,
                })
            }
            Target::Google(client) => {
                let (users, next) = client.list_users(from, count).await?;
                Ok(UserPage {
                    total: None,
                    listed: users.len() as u64,
                    users: users.iter().map(google_user).collect(),
                    next,
                })
            }
            // The paged-results control's cookie holds only on the connection that asked:
            // the whole listing, its pages on one connection, is one page here.
            Target::Ldap(client) => {
                let users = client.list_users(attribute).await?;
                Ok(UserPage {
                    total: Some(users.len() as u64),
                    listed: users.len() as u64,
                    users: users.into_iter().map(ldap_user).collect(),
                    next: None,
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
            Target::Okta(client) => Ok(client
                .users_with_ids(ids)
                .await?
                .into_iter()
                .map(|u| u.id)
                .collect()),
            Target::Google(client) => client.users_among(ids).await,
            Target::Ldap(client) => client.users_among(ids).await,
        }
    }

    /// Whether `id` is a user of the target.
    pub async fn is_user(&self, id: &str) -> Result<bool, TargetError> {
        match self {
            Target::Scim { client, .. } => Ok(client
                .get_user(id)
                .await?
                .is_some_and(|u| u.get("id").and_then(Value::as_str) == Some(id))),
            Target::Okta(client) => Ok(client.get_user(id).await?.is_some_and(|u| u.id == id)),
            Target::Google(client) => Ok(client.get_user(id).await?.is_some_and(|u| u.key() == id)),
            Target::Ldap(client) => Ok(!client.users_among(&[id]).await?.is_empty()),
        }
    }

    /// The target's description of its users, where its kind publishes one (SCIM's
    /// `/Schemas`).
    pub async fn user_schema(&self) -> Result<Option<Value>, TargetError> {
        match self {
            Target::Scim { client, .. } => client.user_schema().await,
            Target::Okta(_) | Target::Google(_) | Target::Ldap(_) => Ok(None),
        }
    }

    /// Whether the kind's user search compares values without case (so nothing need be
    /// learned about it): Okta's and Google's do, and a directory's for the attributes
    /// users are matched by (`mail`, `uid` and AD's names match without case).
    pub fn search_ignores_case(&self) -> bool {
        match self {
            Target::Scim { .. } => false,
            Target::Okta(_) | Target::Google(_) | Target::Ldap(_) => true,
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
        kept: Vec::new(),
    }
}

/// A Google user as the push sees it: known by its primary address, matched by it and its
/// aliases.
fn google_user(user: &google::client::User) -> FoundUser {
    FoundUser {
        id: user.key(),
        values: std::iter::once(user.primary_email.clone())
            .chain(user.aliases.iter().cloned())
            .collect(),
    }
}

/// A Google group with its members read.
async fn google_group(
    client: &google::Client,
    group: google::client::Group,
) -> Result<FoundGroup, TargetError> {
    let members = client.members(&group.id).await?;
    Ok(FoundGroup {
        id: group.id,
        name: group.name,
        members: Some(members.users),
        kept: members.kept,
    })
}

/// A directory's group as the push sees it.
fn ldap_group(group: ldap::ops::Group) -> FoundGroup {
    FoundGroup {
        id: group.id,
        name: group.name,
        members: Some(group.members),
        kept: group.kept,
    }
}

/// A directory's user as the push sees it: known by its DN.
fn ldap_user(user: ldap::ops::User) -> FoundUser {
    FoundUser {
        id: user.dn,
        values: user.values,
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

/// An Okta user as the push sees it.
fn okta_user(user: &okta::client::User, attribute: &str) -> FoundUser {
    FoundUser {
        id: user.id.clone(),
        values: user
            .value(attribute)
            .map(str::to_string)
            .into_iter()
            .collect(),
    }
}

/// The Okta requests a change is: one per member added or removed.
fn okta_requests(client: &okta::Client, change: Change<'_>) -> Vec<Request> {
    match change {
        Change::Create { name, .. } => vec![client.create_group_request(name, MADE_BY)],
        Change::Members { id, add, remove } => add
            .iter()
            .map(|user| client.membership_request(id, user, true))
            .chain(
                remove
                    .iter()
                    .map(|user| client.membership_request(id, user, false)),
            )
            .collect(),
        // The group is read first, and its description is sent back as it was.
        Change::Rename { id, name } => vec![
            client.get_group_request(id),
            client.rename_request(id, name, Some("(its description, as read)")),
        ],
        Change::Delete { id } => vec![client.delete_request(id)],
    }
}

/// The SCIM request a change is.
fn scim_request(client: &Client, remove: RemoveDialect, change: Change<'_>) -> Request {
    let values = |ids: &[String]| {
        let list: Vec<Member> = ids.iter().map(Member::id).collect();
        serde_json::to_value(list).ok()
    };
    match change {
        Change::Create { name, members, .. } => client.create_group_request(name, members),
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
