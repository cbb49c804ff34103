//! A SCIM 2.0 service provider in memory, over real HTTP on 127.0.0.1: Users and Groups with
//! `eq` filters, pagination and RFC 7644 PATCH (filtered paths included). Each first path
//! segment is a tenant with its own data, so one emulator stands in for many targets.
//!
//! It is for tests and the quickstart, so it also injects faults (error statuses, 429 with
//! `Retry-After`, latency, dropped connections before or after the change is applied), counts
//! requests, and can act out real targets' quirks.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, Method, StatusCode, Uri};
use axum::response::Response;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use super::wire::{self, ErrorResponse, ListResponse, Member, PatchOperation, PatchRequest};

mod auth;
mod control;
mod google;
mod groups;
mod okta;
mod resource;
mod routes;
mod schema;
mod users;

use auth::*;
use control::*;
use groups::*;
use resource::Projection;
use routes::*;
use schema::Kind;
use users::*;

/// What goes wrong, how often.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Faults {
    /// The share of requests (0 to 1) that fail with one of `kinds`, picked at random.
    pub rate: f64,
    pub kinds: Vec<FaultKind>,
    /// Sent with 429 and 503.
    pub retry_after_seconds: u64,
    pub latency_ms: u64,
    /// Only write requests fail.
    pub only_writes: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultKind {
    /// Answer with this status; nothing is applied.
    Status(u16),
    /// Break the connection; nothing is applied.
    Drop,
    /// Apply the request, then break the connection before the answer arrives.
    DropAfterApply,
}

/// Behaviours of real targets that the RFC allows or that they get wrong.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Quirks {
    /// Refuse `members[value eq "..."]` paths (400 invalidPath).
    pub no_filtered_paths: bool,
    /// Accept `remove` of `members` with a value list (Entra ID style). scim2-server does not.
    pub value_list_removal: bool,
    /// Refuse PATCH and POST requests that change more members than this (400).
    pub max_members_per_request: Option<usize>,
    /// Compare `userName` in filters case-sensitively.
    pub case_sensitive_user_name: bool,
    /// Pages hold at most this many resources.
    pub max_page_size: u64,
    /// Refuse a second group with the same displayName (409 uniqueness).
    pub unique_display_names: bool,
    /// Refuse to remove a member the group does not have (400 noTarget, failing the whole
    /// PATCH), as RFC 7644's error table allows; the default ignores such a removal.
    pub strict_removal: bool,
    /// Accept member ids that are no user's, and keep a deleted user's id in its groups
    /// (both third-party servers tried do).
    pub accept_unknown_members: bool,
    /// Adding a member the group has adds a second entry (several real servers do).
    pub duplicate_on_add: bool,
    /// Every Nth PATCH to a group is applied and then answered only after
    /// `slow_answer_ms`: a client with a shorter timeout never learns that it was (0: none).
    pub slow_patch_every: u32,
    pub slow_answer_ms: u64,
    /// Pages of `GET /Users` and `GET /Groups` are answered after this many milliseconds.
    pub slow_pages_ms: u64,
    /// Serve no `/Schemas` and `/ResourceTypes` (404), as some targets do.
    pub no_discovery: bool,
    /// `/Schemas` says `caseExact: false` for `userName` whatever its filters do: with
    /// `case_sensitive_user_name`, a target whose description is wrong.
    pub schemas_lie_case_exact: bool,
    /// Listings say there are this many results, however many there are (0: the truth):
    /// a target that promises a billion users.
    pub inflate_total_results: u64,
    /// Okta's API (`/api/v1`) allows this many requests a minute in each rate-limit bucket,
    /// and says so in `X-Rate-Limit-*` headers (0: no limit, no headers).
    pub okta_rate_limit_per_minute: u64,
    /// Okta's API allows what Okta documents for each bucket (a Workforce Identity org:
    /// [`crate::okta::documented_per_minute`]) per window, when no single limit is set.
    pub okta_documented_limits: bool,
    /// How long a rate-limit window lasts: Okta's minute, or less for a test.
    pub okta_rate_limit_window_seconds: u64,
    /// With the documented limits, each bucket allows this many times what Okta documents
    /// per window (0 or 1: once): a benchmark's clock running faster than a window of a
    /// second can say, since `X-Rate-Limit-Reset` counts whole seconds.
    pub okta_documented_limits_times: u64,
    /// Okta refuses to list the group rules (403): a token whose admin role cannot read them.
    pub okta_rules_forbidden: bool,
    /// Every Nth Directory API call (each call in a batch counts) is answered 403
    /// `userRateLimitExceeded`, as Google answers calls beyond its quota (0: none).
    pub google_throttle_every: u64,
    /// Google's quota: this many Directory API calls (each call in a batch counts) per
    /// window of `google_quota_window_seconds`, and 403 `userRateLimitExceeded` beyond
    /// (0: none). Google's default is 2,400 a minute per user per Cloud project.
    pub google_calls_per_window: u64,
    pub google_quota_window_seconds: u64,
    /// The quota's window in milliseconds instead, when not 0: a benchmark's shortened
    /// minute.
    pub google_quota_window_ms: u64,
    /// The Google account's domain: an address in it (or a subdomain) that is no user's
    /// cannot be added as a member (404); one outside it is added as an external member.
    pub google_domain: String,
}

impl Default for Quirks {
    fn default() -> Self {
        Quirks {
            no_filtered_paths: false,
            value_list_removal: true,
            max_members_per_request: None,
            case_sensitive_user_name: false,
            max_page_size: 100,
            unique_display_names: true,
            strict_removal: false,
            accept_unknown_members: false,
            duplicate_on_add: false,
            slow_patch_every: 0,
            slow_answer_ms: 0,
            slow_pages_ms: 0,
            no_discovery: false,
            schemas_lie_case_exact: false,
            inflate_total_results: 0,
            okta_rate_limit_per_minute: 0,
            okta_documented_limits: false,
            okta_rate_limit_window_seconds: 60,
            okta_documented_limits_times: 1,
            okta_rules_forbidden: false,
            google_throttle_every: 0,
            google_calls_per_window: 0,
            google_quota_window_seconds: 60,
            google_quota_window_ms: 0,
            google_domain: "example.com".into(),
        }
    }
}

/// Requests received, by kind.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Counters {
    pub reads: u64,
    pub writes: u64,
    /// Writes that reached the data (not failed by a fault, auth or a bad request).
    pub applied_writes: u64,
    pub members_added: u64,
    pub members_removed: u64,
    /// Operations that replaced a whole member list (PUT, or PATCH replace of `members`).
    pub member_list_replaces: u64,
    pub faults: u64,
    pub by_status: BTreeMap<u16, u64>,
    /// `GET /Groups/{id}` answered, by group id: how often each group was read whole.
    pub group_reads: BTreeMap<String, u64>,
    /// Pages of `GET /Users` without a filter: a listing of every user.
    pub user_listings: u64,
    /// Requests to Okta's API, by its rate-limit bucket ([`crate::okta::bucket`]).
    pub okta_buckets: BTreeMap<String, u64>,
    /// Directory API calls (each call in a batch counts) and batch requests.
    pub google_calls: u64,
    pub google_batches: u64,
    /// The latest Directory API calls (at most 10,000), as served: method, path (from the
    /// API's root, `admin/directory/v1/...`), query and body; for checking them against
    /// the API's published description.
    pub google_log: Vec<Value>,
}

/// Settings every new tenant starts with.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Accept only this bearer token (or tokens issued by the OAuth2 endpoint).
    pub token: Option<String>,
    /// `(client_id, client_secret)` accepted by `POST /{tenant}/oauth/token`.
    pub oauth_client: Option<(String, String)>,
    /// `(client_id, public key PEM)` of an Okta service app: `POST
    /// /{tenant}/oauth2/v1/token` issues access tokens for client assertions it signed.
    pub okta_service_app: Option<(String, String)>,
    /// `(client_email, public key PEM)` of a Google service account with domain-wide
    /// delegation: `POST /{tenant}/token` issues access tokens for JWTs it signed.
    pub google_service_account: Option<(String, String)>,
    /// Users every tenant starts with, by userName.
    pub users: Vec<String>,
    pub quirks: Quirks,
}

#[derive(Debug, Clone)]
struct EmuGroup {
    display_name: String,
    /// Its other attributes (`externalId`), as the schema names them.
    attrs: Map<String, Value>,
    members: BTreeSet<String>,
    /// Entries beyond the first of a member, with [`Quirks::duplicate_on_add`].
    extra: BTreeMap<String, usize>,
    meta: Meta,
    /// Okta's view: the group's type and description.
    okta_type: String,
    description: Option<String>,
    /// Google's view: the group's address (a group without one is not a Google group),
    /// and its members that are not the tenant's users, by address: nested groups
    /// (`GROUP`) and external addresses (`USER`).
    email: Option<String>,
    google_others: BTreeMap<String, &'static str>,
}

impl EmuGroup {
    fn new(display_name: String, members: BTreeSet<String>, meta: Meta) -> EmuGroup {
        EmuGroup {
            display_name,
            attrs: Map::new(),
            members,
            extra: BTreeMap::new(),
            meta,
            okta_type: crate::okta::client::OKTA_GROUP.to_string(),
            description: None,
            email: None,
            google_others: BTreeMap::new(),
        }
    }
}

/// When a resource was made and last changed, and its version (RFC 7643 section 3.1).
#[derive(Debug, Clone)]
struct Meta {
    created: String,
    modified: String,
    version: u64,
}

impl Meta {
    fn json(&self, kind: Kind, location: String) -> Value {
        json!({
            "resourceType": kind.resource_type(),
            "created": self.created,
            "lastModified": self.modified,
            "version": format!("W/\"{}\"", self.version),
            "location": location,
        })
    }
}

struct Tenant {
    /// `http://host:port/tenant`, for `meta.location`.
    base: String,
    users: BTreeMap<String, Value>,
    groups: BTreeMap<String, EmuGroup>,
    next_id: u64,
    faults: Faults,
    quirks: Quirks,
    counters: Counters,
    /// PATCH requests to groups so far, for [`Quirks::slow_patch_every`].
    group_patches: u64,
    /// Gives each change a new `meta.version`.
    version: u64,
    tokens: BTreeSet<String>,
    /// When the latest requests arrived (at most `ARRIVALS_KEPT`), to check pacing.
    arrivals: std::collections::VecDeque<std::time::Instant>,
    /// The `User-Agent` of the latest writes (at most `ARRIVALS_KEPT`), in order: which
    /// process wrote when.
    write_agents: std::collections::VecDeque<String>,
    /// Okta's group rules, as its API lists them.
    group_rules: Vec<Value>,
    /// Okta's rate-limit windows: when each bucket's minute began, and its requests since.
    rate_windows: BTreeMap<&'static str, (i64, u64)>,
    /// Google's view: user ids by lower-case userName, as of the users' count and the
    /// latest id handed out (either changes when users come or go).
    user_index: Option<((usize, u64), std::collections::HashMap<String, String>)>,
}

const ARRIVALS_KEPT: usize = 10_000;

struct Shared {
    addr: SocketAddr,
    options: Options,
    tenants: Mutex<BTreeMap<String, Tenant>>,
    rng: Mutex<rand_chacha::ChaCha8Rng>,
}

/// A running emulator; dropping it stops the server.
pub struct Emulator {
    addr: SocketAddr,
    shared: Arc<Shared>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Emulator {
    /// Listens on `addr` (port 0 picks a free one) and serves until dropped.
    pub async fn start(addr: SocketAddr, options: Options) -> std::io::Result<Emulator> {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            addr,
            options,
            tenants: Mutex::new(BTreeMap::new()),
            rng: Mutex::new(rand_chacha::ChaCha8Rng::seed_from_u64(7)),
        });
        let app = axum::Router::new()
            .fallback(handle)
            .with_state(Arc::clone(&shared));
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(async move {
            let serve = axum::serve(listener, app).with_graceful_shutdown(async move {
                let _ = stopped.await;
            });
            if let Err(e) = serve.await {
                tracing::error!("SCIM emulator stopped: {e}");
            }
        });
        Ok(Emulator {
            addr,
            shared,
            stop: Some(stop),
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The SCIM base URL of a tenant.
    pub fn url(&self, tenant: &str) -> String {
        format!("http://{}/{tenant}", self.addr)
    }

    pub fn set_faults(&self, tenant: &str, faults: Faults) {
        self.with_tenant(tenant, |t| t.faults = faults);
    }

    pub fn set_quirks(&self, tenant: &str, quirks: Quirks) {
        self.with_tenant(tenant, |t| t.quirks = quirks);
    }

    pub fn counters(&self, tenant: &str) -> Counters {
        self.with_tenant(tenant, |t| t.counters.clone())
    }

    pub fn reset_counters(&self, tenant: &str) {
        self.with_tenant(tenant, |t| {
            t.counters = Counters::default();
            t.arrivals.clear();
            t.write_agents.clear();
        });
    }

    /// When the latest requests (of any kind) arrived, oldest first.
    pub fn arrivals(&self, tenant: &str) -> Vec<std::time::Instant> {
        self.with_tenant(tenant, |t| t.arrivals.iter().copied().collect())
    }

    /// The `User-Agent` of each write request received, oldest first.
    pub fn write_agents(&self, tenant: &str) -> Vec<String> {
        self.with_tenant(tenant, |t| t.write_agents.iter().cloned().collect())
    }

    /// Adds a user; its id.
    pub fn add_user(&self, tenant: &str, user_name: &str) -> String {
        self.with_tenant(tenant, |t| t.insert_user(user_name))
    }

    /// Every group: displayName → members' userNames.
    pub fn groups(&self, tenant: &str) -> BTreeMap<String, BTreeSet<String>> {
        self.with_tenant(tenant, |t| {
            t.groups
                .values()
                .map(|g| (g.display_name.clone(), t.user_names(&g.members)))
                .collect()
        })
    }

    /// How many groups have this displayName (more than one is a duplicate).
    pub fn group_count(&self, tenant: &str, display_name: &str) -> usize {
        self.with_tenant(tenant, |t| {
            t.groups
                .values()
                .filter(|g| g.display_name == display_name)
                .count()
        })
    }

    /// Changes a group as a person in the target's admin console would: adds and removes
    /// members by userName. `false` when there is no such group.
    pub fn edit_by_hand(&self, tenant: &str, group: &str, add: &[&str], remove: &[&str]) -> bool {
        self.with_tenant(tenant, |t| {
            let ids: BTreeMap<String, String> = t
                .users
                .iter()
                .filter_map(|(id, u)| Some((u["userName"].as_str()?.to_string(), id.clone())))
                .collect();
            let Some(g) = t.groups.values_mut().find(|g| g.display_name == group) else {
                return false;
            };
            for name in add {
                if let Some(id) = ids.get(*name) {
                    g.members.insert(id.clone());
                }
            }
            for name in remove {
                if let Some(id) = ids.get(*name) {
                    g.members.remove(id);
                }
            }
            true
        })
    }

    /// Creates a group as a person in the target's console would, with members by userName.
    pub fn create_by_hand(&self, tenant: &str, display_name: &str, members: &[&str]) {
        self.with_tenant(tenant, |t| {
            let members = t
                .users
                .iter()
                .filter(|(_, u)| u["userName"].as_str().is_some_and(|n| members.contains(&n)))
                .map(|(id, _)| id.clone())
                .collect();
            let id = t.new_id('g');
            let meta = t.touch(None);
            t.groups
                .insert(id, EmuGroup::new(display_name.to_string(), members, meta));
        });
    }

    /// Deletes a user and creates it again under a new id, as a target does when an account
    /// is deprovisioned and provisioned again; the new id.
    pub fn recreate_user(&self, tenant: &str, user_name: &str) -> String {
        self.with_tenant(tenant, |t| {
            t.users
                .retain(|_, u| u["userName"].as_str() != Some(user_name));
            for g in t.groups.values_mut() {
                g.members.retain(|m| t.users.contains_key(m));
            }
            t.insert_user(user_name)
        })
    }

    /// Deletes every user and creates each again under a new id, as a restore, a re-import
    /// or a tenant reset does. Groups keep the old ids with
    /// [`Quirks::accept_unknown_members`], and lose them otherwise.
    pub fn recreate_all_users(&self, tenant: &str) {
        self.with_tenant(tenant, |t| {
            let names: Vec<String> = t
                .users
                .values()
                .filter_map(|u| u["userName"].as_str().map(str::to_string))
                .collect();
            t.users.clear();
            for name in &names {
                t.insert_user(name);
            }
            if !t.quirks.accept_unknown_members {
                for g in t.groups.values_mut() {
                    g.members.clear();
                    g.extra.clear();
                }
            }
        });
    }

    /// Adds entries to a group by raw member id, as a person or another tool might: ids
    /// that are no user's, or (with [`Quirks::duplicate_on_add`]) members it has already.
    pub fn add_entries_by_hand(&self, tenant: &str, group: &str, ids: &[&str]) {
        self.with_tenant(tenant, |t| {
            let duplicates = t.quirks.duplicate_on_add;
            if let Some(g) = t.groups.values_mut().find(|g| g.display_name == group) {
                for id in ids {
                    if !g.members.insert(id.to_string()) && duplicates {
                        *g.extra.entry(id.to_string()).or_default() += 1;
                    }
                }
            }
        });
    }

    /// Every group's entries by member id, a member held twice listed twice; and how many
    /// entries are no user's.
    pub fn entries(&self, tenant: &str) -> (BTreeMap<String, Vec<String>>, usize) {
        self.with_tenant(tenant, |t| {
            let mut unknown = 0;
            let groups = t
                .groups
                .values()
                .map(|g| {
                    let mut ids = Vec::new();
                    for m in &g.members {
                        let n = 1 + g.extra.get(m).copied().unwrap_or(0);
                        if !t.users.contains_key(m) {
                            unknown += n;
                        }
                        ids.extend(std::iter::repeat_n(m.clone(), n));
                    }
                    (g.display_name.clone(), ids)
                })
                .collect();
            (groups, unknown)
        })
    }

    /// Renames a group as a person in the target's console would. `false` when there is no
    /// group named `from`.
    pub fn rename_by_hand(&self, tenant: &str, from: &str, to: &str) -> bool {
        self.with_tenant(tenant, |t| t.rename(from, to))
    }

    /// Loses every group and user, as a target restarted on empty storage does; with
    /// `recreate_users`, its users come back under new ids (a restore of the user list alone).
    pub fn restart_empty(&self, tenant: &str, recreate_users: bool) {
        self.with_tenant(tenant, |t| t.restart_empty(recreate_users));
    }

    /// Deletes a group as a person in the target's console would.
    /// Makes the group named `display_name` one of Okta's other types (`APP_GROUP`,
    /// `BUILT_IN`): what an app or Okta itself fills.
    pub fn set_group_type(&self, tenant: &str, display_name: &str, okta_type: &str) -> bool {
        self.with_group(tenant, display_name, |g| {
            g.okta_type = okta_type.to_string();
        })
    }

    /// Adds an active Okta group rule named `rule` that assigns people to the groups named
    /// `groups`.
    pub fn add_group_rule(&self, tenant: &str, rule: &str, groups: &[&str]) {
        self.with_tenant(tenant, |t| {
            let ids: Vec<&String> = t
                .groups
                .iter()
                .filter(|(_, g)| groups.contains(&g.display_name.as_str()))
                .map(|(id, _)| id)
                .collect();
            let id = format!("0pr{:05}", t.group_rules.len() + 1);
            let json = json!({
                "id": id,
                "type": "group_rule",
                "status": "ACTIVE",
                "name": rule,
                "conditions": {"expression": {"value": "user.department==\"Sales\"", "type": "urn:okta:expression:1.0"}},
                "actions": {"assignUserToGroups": {"groupIds": ids}},
            });
            t.group_rules.push(json);
        });
    }

    pub fn delete_by_hand(&self, tenant: &str, group: &str) {
        self.with_tenant(tenant, |t| t.groups.retain(|_, g| g.display_name != group));
    }

    /// Changes the group named `display_name`, as a person in the target's console would:
    /// whether there is one.
    fn with_group(&self, tenant: &str, display_name: &str, f: impl FnOnce(&mut EmuGroup)) -> bool {
        self.with_tenant(tenant, |t| {
            let group = t
                .groups
                .values_mut()
                .find(|g| g.display_name == display_name);
            group.map(f).is_some()
        })
    }

    fn with_tenant<T>(&self, tenant: &str, f: impl FnOnce(&mut Tenant) -> T) -> T {
        let mut tenants = lock(&self.shared.tenants);
        f(tenant_mut(&mut tenants, &self.shared, tenant))
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock leaves plain data behind; keep serving it.
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn tenant_mut<'a>(
    tenants: &'a mut BTreeMap<String, Tenant>,
    shared: &Shared,
    name: &str,
) -> &'a mut Tenant {
    let options = &shared.options;
    tenants.entry(name.to_string()).or_insert_with(|| {
        let mut t = Tenant {
            base: format!("http://{}/{name}", shared.addr),
            users: BTreeMap::new(),
            groups: BTreeMap::new(),
            next_id: 0,
            faults: Faults::default(),
            quirks: options.quirks.clone(),
            counters: Counters::default(),
            group_patches: 0,
            version: 0,
            tokens: options.token.iter().cloned().collect(),
            arrivals: std::collections::VecDeque::new(),
            write_agents: std::collections::VecDeque::new(),
            group_rules: Vec::new(),
            rate_windows: BTreeMap::new(),
            user_index: None,
        };
        for user in &options.users {
            t.insert_user(user);
        }
        t
    })
}

impl Tenant {
    fn rename(&mut self, from: &str, to: &str) -> bool {
        let meta = self.touch(None);
        let Some(g) = self.groups.values_mut().find(|g| g.display_name == from) else {
            return false;
        };
        g.display_name = to.to_string();
        g.meta = Meta {
            created: g.meta.created.clone(),
            ..meta
        };
        true
    }

    /// Ids keep counting up: a restarted target hands out none it handed out before.
    fn restart_empty(&mut self, recreate_users: bool) {
        let names: Vec<String> = self
            .users
            .values()
            .filter_map(|u| u["userName"].as_str().map(str::to_string))
            .collect();
        self.users.clear();
        self.groups.clear();
        if recreate_users {
            for name in &names {
                self.insert_user(name);
            }
        }
    }

    fn new_id(&mut self, prefix: char) -> String {
        self.next_id += 1;
        // Opaque ids, as real targets hand out; ordered, for stable listings.
        format!("{prefix}{:08x}", self.next_id)
    }

    /// The `meta` of a resource made or changed now.
    fn touch(&mut self, created: Option<&str>) -> Meta {
        self.version += 1;
        let now = crate::clock::stamp(crate::clock::now_utc());
        Meta {
            created: created.map_or_else(|| now.clone(), str::to_string),
            modified: now,
            version: self.version,
        }
    }

    fn location(&self, kind: Kind, id: &str) -> String {
        format!("{}/{}/{id}", self.base, kind.endpoint())
    }

    fn insert_user(&mut self, user_name: &str) -> String {
        let mut attrs = Map::new();
        attrs.insert("userName".into(), json!(user_name));
        attrs.insert("active".into(), json!(true));
        let id = self.new_id('u');
        self.put_user(&id, attrs, None);
        id
    }

    /// Stores a user's attributes under `id`, with its `meta` made or changed now.
    fn put_user(&mut self, id: &str, attrs: Map<String, Value>, created: Option<&str>) {
        // A userName may change: Google's index of them is made again when next asked.
        self.user_index = None;
        let meta = self.touch(created);
        let mut user = Map::new();
        user.insert("schemas".into(), json!([wire::USER_SCHEMA]));
        user.insert("id".into(), json!(id));
        user.extend(attrs);
        user.insert(
            "meta".into(),
            meta.json(Kind::Users, self.location(Kind::Users, id)),
        );
        self.users.insert(id.to_string(), Value::Object(user));
    }

    /// A user's own attributes (without `schemas`, `id` and `meta`) and when it was made.
    fn user_attrs(&self, id: &str) -> Option<(Map<String, Value>, String)> {
        let mut user = self.users.get(id)?.as_object()?.clone();
        let created = user
            .get("meta")
            .and_then(|m| m["created"].as_str())
            .unwrap_or_default()
            .to_string();
        for k in ["schemas", "id", "meta"] {
            user.remove(k);
        }
        Some((user, created))
    }

    /// The id of the user with this userName (compared as the tenant compares it), other
    /// than `except`.
    fn user_named(&self, name: &str, except: Option<&str>) -> Option<&String> {
        self.users
            .iter()
            .filter(|(id, _)| Some(id.as_str()) != except)
            .find(|(_, u)| {
                u["userName"].as_str().is_some_and(|n| {
                    n == name
                        || (!self.quirks.case_sensitive_user_name && n.eq_ignore_ascii_case(name))
                })
            })
            .map(|(id, _)| id)
    }

    fn user_names(&self, ids: &BTreeSet<String>) -> BTreeSet<String> {
        ids.iter()
            .map(|id| {
                self.users
                    .get(id)
                    .and_then(|u| u["userName"].as_str())
                    .unwrap_or(id)
                    .to_string()
            })
            .collect()
    }

    /// A group as JSON; its members are rendered only when the answer carries them.
    fn group_json(&self, id: &str, g: &EmuGroup, projection: &Projection) -> Value {
        let mut o = Map::new();
        o.insert("schemas".into(), json!([wire::GROUP_SCHEMA]));
        o.insert("id".into(), json!(id));
        o.insert("displayName".into(), json!(g.display_name));
        o.extend(g.attrs.clone());
        if !projection.omits("members") {
            let members: Vec<Value> = g
                .members
                .iter()
                .flat_map(|m| std::iter::repeat_n(m, 1 + g.extra.get(m).copied().unwrap_or(0)))
                .map(|m| {
                    // No `display`: it is optional, and answering with a member as it was
                    // added is what scim2-tester checks.
                    let mut member = Map::new();
                    member.insert("value".into(), json!(m));
                    if self.users.contains_key(m) {
                        member.insert("$ref".into(), json!(self.location(Kind::Users, m)));
                    }
                    member.insert("type".into(), json!("User"));
                    Value::Object(member)
                })
                .collect();
            // An empty list rather than none: RFC 7643 section 2.5 makes them the same.
            o.insert("members".into(), Value::Array(members));
        }
        o.insert(
            "meta".into(),
            g.meta.json(Kind::Groups, self.location(Kind::Groups, id)),
        );
        projection.apply(Value::Object(o))
    }
}
