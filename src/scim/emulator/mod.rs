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

mod resource;
mod schema;

use resource::Projection;
use schema::Kind;

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
}

/// Settings every new tenant starts with.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Accept only this bearer token (or tokens issued by the OAuth2 endpoint).
    pub token: Option<String>,
    /// `(client_id, client_secret)` accepted by `POST /{tenant}/oauth/token`.
    pub oauth_client: Option<(String, String)>,
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
}

impl EmuGroup {
    fn new(display_name: String, members: BTreeSet<String>, meta: Meta) -> EmuGroup {
        EmuGroup {
            display_name,
            attrs: Map::new(),
            members,
            extra: BTreeMap::new(),
            meta,
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
    pub fn delete_by_hand(&self, tenant: &str, group: &str) {
        self.with_tenant(tenant, |t| t.groups.retain(|_, g| g.display_name != group));
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

type Answer = (StatusCode, Option<Value>);

fn error(status: StatusCode, scim_type: Option<&str>, detail: impl Into<String>) -> Answer {
    let body = ErrorResponse::new(status.as_u16(), scim_type, detail);
    (status, serde_json::to_value(body).ok())
}

async fn handle(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    Query(query): Query<BTreeMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let segments: Vec<&str> = uri.path().split('/').filter(|s| !s.is_empty()).collect();
    let Some((&tenant, rest)) = segments.split_first() else {
        return respond(
            error(StatusCode::NOT_FOUND, None, "no tenant in the path"),
            None,
        );
    };
    if tenant == "_emulator" {
        return respond(admin(&shared, &method, rest, &body), None);
    }
    if rest == ["oauth", "token"] && method == Method::POST {
        return respond(issue_token(&shared, tenant, &headers), None);
    }
    // A search is a POST that changes nothing.
    let is_write = method != Method::GET && rest.last() != Some(&".search");
    let (faults, fault) = {
        let mut tenants = lock(&shared.tenants);
        let t = tenant_mut(&mut tenants, &shared, tenant);
        if is_write {
            t.counters.writes += 1;
        } else {
            t.counters.reads += 1;
        }
        if method == Method::GET && rest == ["Users"] && !query.contains_key("filter") {
            t.counters.user_listings += 1;
        }
        if t.arrivals.len() == ARRIVALS_KEPT {
            t.arrivals.pop_front();
        }
        t.arrivals.push_back(std::time::Instant::now());
        if is_write {
            if t.write_agents.len() == ARRIVALS_KEPT {
                t.write_agents.pop_front();
            }
            let agent = headers
                .get(header::USER_AGENT)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_string();
            t.write_agents.push_back(agent);
        }
        let faults = t.faults.clone();
        let applies =
            faults.rate > 0.0 && !faults.kinds.is_empty() && (is_write || !faults.only_writes);
        let fault = applies
            .then(|| {
                let mut rng = lock(&shared.rng);
                (rng.random::<f64>() < faults.rate)
                    .then(|| faults.kinds[rng.random_range(0..faults.kinds.len())])
            })
            .flatten();
        if fault.is_some() {
            t.counters.faults += 1;
        }
        (faults, fault)
    };
    if faults.latency_ms > 0 {
        tokio::time::sleep(Duration::from_millis(faults.latency_ms)).await;
    }
    match fault {
        Some(FaultKind::Status(code)) => {
            let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let retry = matches!(code, 429 | 503).then_some(faults.retry_after_seconds);
            count_status(&shared, tenant, code);
            return respond(error(status, None, "injected fault"), retry);
        }
        Some(FaultKind::Drop) => return broken(),
        _ => {}
    }
    let (answer, delay) = {
        let mut tenants = lock(&shared.tenants);
        let t = tenant_mut(&mut tenants, &shared, tenant);
        let answer = if authorised(t, &headers) {
            serve(t, &method, rest, &query, &body).unwrap_or_else(|refused| refused)
        } else {
            error(
                StatusCode::UNAUTHORIZED,
                None,
                "a valid bearer token is required",
            )
        };
        *t.counters.by_status.entry(answer.0.as_u16()).or_default() += 1;
        if is_write && answer.0.is_success() {
            t.counters.applied_writes += 1;
        }
        (answer, quirk_delay(t, &method, rest))
    };
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    if fault == Some(FaultKind::DropAfterApply) {
        return broken();
    }
    respond(answer, None)
}

/// How long the tenant's quirks hold this answer back: a page of a listing with
/// [`Quirks::slow_pages_ms`], every Nth group PATCH with [`Quirks::slow_patch_every`].
fn quirk_delay(t: &mut Tenant, method: &Method, rest: &[&str]) -> Duration {
    let q = &t.quirks;
    match (method.as_str(), rest) {
        ("GET", ["Users" | "Groups"]) => Duration::from_millis(q.slow_pages_ms),
        ("PATCH", ["Groups", _]) if q.slow_patch_every > 0 => {
            t.group_patches += 1;
            if t.group_patches
                .is_multiple_of(u64::from(q.slow_patch_every))
            {
                Duration::from_millis(q.slow_answer_ms)
            } else {
                Duration::ZERO
            }
        }
        _ => Duration::ZERO,
    }
}

fn count_status(shared: &Shared, tenant: &str, code: u16) {
    let mut tenants = lock(&shared.tenants);
    let t = tenant_mut(&mut tenants, shared, tenant);
    *t.counters.by_status.entry(code).or_default() += 1;
}

fn authorised(t: &Tenant, headers: &HeaderMap) -> bool {
    if t.tokens.is_empty() {
        return true;
    }
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .is_some_and(|token| t.tokens.contains(token))
}

fn issue_token(shared: &Shared, tenant: &str, headers: &HeaderMap) -> Answer {
    use base64_lite::decode_basic;
    let Some((id, secret)) = &shared.options.oauth_client else {
        return error(
            StatusCode::NOT_FOUND,
            None,
            "no OAuth2 client is configured",
        );
    };
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(decode_basic);
    if given.as_ref() != Some(&(id.clone(), secret.clone())) {
        return (
            StatusCode::UNAUTHORIZED,
            Some(json!({"error": "invalid_client"})),
        );
    }
    let mut tenants = lock(&shared.tenants);
    let t = tenant_mut(&mut tenants, shared, tenant);
    let token = format!("emu-{tenant}-{}", t.tokens.len() + 1);
    t.tokens.insert(token.clone());
    (
        StatusCode::OK,
        Some(json!({"access_token": token, "token_type": "Bearer", "expires_in": 3600})),
    )
}

/// Minimal base64 for the OAuth2 endpoint's Basic credentials.
mod base64_lite {
    pub fn decode_basic(text: &str) -> Option<(String, String)> {
        let bytes = decode(text.trim())?;
        let text = String::from_utf8(bytes).ok()?;
        let (id, secret) = text.split_once(':')?;
        Some((id.to_string(), secret.to_string()))
    }

    fn decode(text: &str) -> Option<Vec<u8>> {
        const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut out = Vec::new();
        let mut buffer = 0u32;
        let mut bits = 0;
        for c in text.bytes().filter(|&c| c != b'=') {
            let v = ALPHABET.iter().position(|&a| a == c)? as u32;
            buffer = (buffer << 6) | v;
            bits += 6;
            if bits >= 8 {
                bits -= 8;
                out.push((buffer >> bits) as u8);
                buffer &= (1 << bits) - 1;
            }
        }
        Some(out)
    }
}

fn respond((status, body): Answer, retry_after: Option<u64>) -> Response {
    let mut builder = Response::builder().status(status);
    if let Some(seconds) = retry_after {
        builder = builder.header(header::RETRY_AFTER, seconds.to_string());
    }
    if status == StatusCode::CREATED {
        if let Some(location) = body.as_ref().and_then(|b| b["meta"]["location"].as_str()) {
            builder = builder.header(header::LOCATION, location);
        }
    }
    let response = match body {
        Some(body) => builder
            .header(header::CONTENT_TYPE, "application/scim+json")
            .body(Body::from(body.to_string())),
        None => builder.body(Body::empty()),
    };
    response.unwrap_or_else(|_| Response::new(Body::empty()))
}

/// An answer whose body breaks off: the client sees the connection drop.
fn broken() -> Response {
    let stream = futures_util::stream::once(async {
        Err::<Bytes, std::io::Error>(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "injected dropped connection",
        ))
    });
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "application/scim+json")
        .body(Body::from_stream(stream))
        .unwrap_or_else(|_| Response::new(Body::empty()))
}

fn admin(shared: &Shared, method: &Method, rest: &[&str], body: &[u8]) -> Answer {
    let [tenant, what] = rest else {
        return error(
            StatusCode::NOT_FOUND,
            None,
            "use /_emulator/TENANT/{groups,stats,faults,quirks,restart,rename}",
        );
    };
    let mut tenants = lock(&shared.tenants);
    let t = tenant_mut(&mut tenants, shared, tenant);
    let bad = |e: serde_json::Error| {
        error(
            StatusCode::BAD_REQUEST,
            Some("invalidSyntax"),
            e.to_string(),
        )
    };
    match (method.as_str(), *what) {
        ("GET", "groups") => {
            let groups: BTreeMap<String, BTreeSet<String>> = t
                .groups
                .values()
                .map(|g| (g.display_name.clone(), t.user_names(&g.members)))
                .collect();
            (StatusCode::OK, serde_json::to_value(groups).ok())
        }
        ("GET", "stats") => (StatusCode::OK, serde_json::to_value(&t.counters).ok()),
        ("PUT", "faults") => match serde_json::from_slice(body) {
            Ok(faults) => {
                t.faults = faults;
                (StatusCode::NO_CONTENT, None)
            }
            Err(e) => bad(e),
        },
        ("PUT", "quirks") => match serde_json::from_slice(body) {
            Ok(quirks) => {
                t.quirks = quirks;
                (StatusCode::NO_CONTENT, None)
            }
            Err(e) => bad(e),
        },
        // `{"recreate_users": true}`: see [`Emulator::restart_empty`].
        ("POST", "restart") => match serde_json::from_slice::<Restart>(body) {
            Ok(r) => {
                t.restart_empty(r.recreate_users);
                (StatusCode::NO_CONTENT, None)
            }
            Err(e) => bad(e),
        },
        // `{"from": "Sales", "to": "Sales (old)"}`: see [`Emulator::rename_by_hand`].
        ("POST", "rename") => match serde_json::from_slice::<Rename>(body) {
            Ok(r) if t.rename(&r.from, &r.to) => (StatusCode::NO_CONTENT, None),
            Ok(r) => error(
                StatusCode::NOT_FOUND,
                None,
                format!("no group named `{}`", r.from),
            ),
            Err(e) => bad(e),
        },
        _ => error(StatusCode::NOT_FOUND, None, "no such emulator endpoint"),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Restart {
    #[serde(default)]
    recreate_users: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Rename {
    from: String,
    to: String,
}

/// What a request's handler answers: an answer, or the error that refused the request.
type Served = Result<Answer, Answer>;

fn serve(
    t: &mut Tenant,
    method: &Method,
    rest: &[&str],
    query: &BTreeMap<String, String>,
    body: &[u8],
) -> Served {
    let kind = |segment: &str| match segment {
        "Users" => Some(Kind::Users),
        "Groups" => Some(Kind::Groups),
        _ => None,
    };
    let projection = |kind| {
        Projection::new(
            kind,
            query.get("attributes").map(String::as_str),
            query.get("excludedAttributes").map(String::as_str),
        )
    };
    let ok = |v: Value| Ok((StatusCode::OK, Some(v)));
    if t.quirks.no_discovery && matches!(rest.first(), Some(&("Schemas" | "ResourceTypes"))) {
        return Err(error(StatusCode::NOT_FOUND, None, "no such endpoint"));
    }
    match (method.as_str(), rest) {
        ("GET", ["ServiceProviderConfig"]) => {
            ok(schema::service_provider_config(&t.base, &t.quirks))
        }
        ("GET", ["Schemas"]) => ok(listed(schema::schemas(&t.base, &t.quirks))),
        ("GET", ["Schemas", id]) => schema::schemas(&t.base, &t.quirks)
            .into_iter()
            .find(|s| s["id"] == *id)
            .map_or_else(|| Err(not_found("Schema", id)), ok),
        ("GET", ["ResourceTypes"]) => ok(listed(schema::resource_types(&t.base))),
        ("GET", ["ResourceTypes", id]) => schema::resource_types(&t.base)
            .into_iter()
            .find(|s| s["id"] == *id)
            .map_or_else(|| Err(not_found("ResourceType", id)), ok),
        (_, ["ServiceProviderConfig" | "Schemas" | "ResourceTypes", ..]) => Err(error(
            StatusCode::METHOD_NOT_ALLOWED,
            None,
            format!("the discovery endpoints are read-only; {method} is not allowed"),
        )),
        ("POST", [".search"]) => search(t, &[Kind::Users, Kind::Groups], body),
        _ => {
            let Some((k, tail)) = rest
                .split_first()
                .and_then(|(k, tail)| Some((kind(k)?, tail)))
            else {
                return Err(error(StatusCode::NOT_FOUND, None, "no such endpoint"));
            };
            resources(t, method, k, tail, query, body, projection(k))
        }
    }
}

/// A request to `/Users` or `/Groups`.
fn resources(
    t: &mut Tenant,
    method: &Method,
    kind: Kind,
    tail: &[&str],
    query: &BTreeMap<String, String>,
    body: &[u8],
    projection: Projection,
) -> Served {
    match (method.as_str(), kind, tail) {
        ("POST", _, [".search"]) => search(t, &[kind], body),
        ("GET", _, []) => {
            let page = Page::new(
                query.get("filter").cloned(),
                query.get("startIndex").and_then(|s| s.parse().ok()),
                query.get("count").and_then(|s| s.parse().ok()),
                projection,
            );
            list(t, &[kind], &page)
        }
        ("GET", Kind::Users, [id]) => match t.users.get(*id) {
            Some(u) => Ok((StatusCode::OK, Some(projection.apply(u.clone())))),
            None => Err(not_found("User", id)),
        },
        ("POST", Kind::Users, []) => create_user(t, body),
        ("PUT", Kind::Users, [id]) => put_user(t, id, body),
        ("PATCH", Kind::Users, [id]) => patch_user(t, id, body),
        ("DELETE", Kind::Users, [id]) => delete_user(t, id),
        ("GET", Kind::Groups, [id]) => match t.groups.get(*id) {
            Some(g) => {
                let answer = t.group_json(id, g, &projection);
                *t.counters.group_reads.entry(id.to_string()).or_default() += 1;
                Ok((StatusCode::OK, Some(answer)))
            }
            None => Err(not_found("Group", id)),
        },
        ("POST", Kind::Groups, []) => create_group(t, body),
        ("PATCH", Kind::Groups, [id]) => patch_group(t, id, body),
        ("PUT", Kind::Groups, [id]) => put_group(t, id, body),
        ("DELETE", Kind::Groups, [id]) => match t.groups.remove(*id) {
            Some(_) => Ok((StatusCode::NO_CONTENT, None)),
            None => Err(not_found("Group", id)),
        },
        (_, _, [] | [_]) => Err(error(
            StatusCode::METHOD_NOT_ALLOWED,
            None,
            format!("{method} is not allowed here"),
        )),
        _ => Err(error(StatusCode::NOT_FOUND, None, "no such endpoint")),
    }
}

fn not_found(kind: &str, id: &str) -> Answer {
    error(
        StatusCode::NOT_FOUND,
        None,
        format!("{kind} `{id}` not found"),
    )
}

/// Every item of a discovery endpoint, as one page.
fn listed(items: Vec<Value>) -> Value {
    let list = ListResponse {
        schemas: vec![wire::LIST_RESPONSE.to_string()],
        total_results: items.len() as u64,
        start_index: Some(1),
        items_per_page: Some(items.len() as u64),
        resources: items,
    };
    serde_json::to_value(list).unwrap_or_default()
}

/// What a query asks for: which resources, which page of them, which attributes.
struct Page {
    filter: Option<String>,
    start: Option<u64>,
    count: Option<u64>,
    projection: Projection,
}

impl Page {
    fn new(
        filter: Option<String>,
        start: Option<u64>,
        count: Option<u64>,
        projection: Projection,
    ) -> Page {
        Page {
            filter,
            start,
            count,
            projection,
        }
    }
}

/// RFC 7644 section 3.4.3: a query in a POST body, at the root or at a resource type.
fn search(t: &Tenant, kinds: &[Kind], body: &[u8]) -> Served {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct SearchRequest {
        #[serde(default)]
        attributes: Vec<String>,
        #[serde(default)]
        excluded_attributes: Vec<String>,
        filter: Option<String>,
        start_index: Option<u64>,
        count: Option<u64>,
    }
    let request: SearchRequest = parse_body(body)?;
    let joined = |names: &[String]| (!names.is_empty()).then(|| names.join(","));
    let (only, without) = (
        joined(&request.attributes),
        joined(&request.excluded_attributes),
    );
    // With both resource types, the names are read against each in turn.
    let projection = Projection::new(kinds[0], only.as_deref(), without.as_deref());
    let page = Page::new(
        request.filter,
        request.start_index,
        request.count,
        projection,
    );
    list(t, kinds, &page)
}

fn list(t: &Tenant, kinds: &[Kind], page: &Page) -> Served {
    let filter = page
        .filter
        .as_deref()
        .map(parse_filter)
        .transpose()
        .map_err(|e| error(StatusCode::BAD_REQUEST, Some("invalidFilter"), e))?;
    let matches = |kind: Kind, resource: &Value| match &filter {
        None => true,
        Some(alternatives) => alternatives.iter().any(|(attr, value)| {
            let attr = schema::strip_urn(kind, attr);
            let exact = match kind {
                Kind::Users => {
                    attr.eq_ignore_ascii_case("username") && t.quirks.case_sensitive_user_name
                        || attr.eq_ignore_ascii_case("id")
                        || attr.eq_ignore_ascii_case("externalId")
                }
                Kind::Groups => {
                    attr.eq_ignore_ascii_case("id") || attr.eq_ignore_ascii_case("externalId")
                }
            };
            wire::user_values(resource, attr).iter().any(|v| {
                if exact {
                    v == value
                } else {
                    v.eq_ignore_ascii_case(value)
                }
            })
        }),
    };
    let start = page.start.unwrap_or(1).max(1);
    let count = page
        .count
        .unwrap_or(t.quirks.max_page_size)
        .min(t.quirks.max_page_size);
    let (skip, take) = ((start - 1) as usize, count as usize);
    // Resources are matched where they are and only the page is copied or rendered: paging
    // through 100k users must not copy all of them for every page, nor a lookup by name
    // render every group's members.
    let mut total = 0;
    let mut resources = Vec::new();
    for &kind in kinds {
        let by_id: Option<Vec<&str>> = filter.as_ref().and_then(|alternatives| {
            alternatives
                .iter()
                .map(|(attr, value)| {
                    schema::strip_urn(kind, attr)
                        .eq_ignore_ascii_case("id")
                        .then_some(value.as_str())
                })
                .collect()
        });
        let found: Vec<Found<'_>> = match (kind, by_id) {
            // Users by id (rosterd confirming the ids it cached): looked up, as a real
            // target's index would, not matched against every user.
            (Kind::Users, Some(ids)) => {
                let ids: BTreeSet<&str> = ids.into_iter().collect();
                ids.iter()
                    .filter_map(|id| t.users.get(*id))
                    .map(Found::User)
                    .collect()
            }
            (Kind::Users, None) => t
                .users
                .values()
                .filter(|u| matches(kind, u))
                .map(Found::User)
                .collect(),
            (Kind::Groups, _) => t
                .groups
                .iter()
                .filter(|(id, g)| match filter.as_deref() {
                    // The lookups rosterd makes, without copying every group's attributes.
                    None => true,
                    Some([(attr, value)]) if attr.eq_ignore_ascii_case("displayName") => {
                        g.display_name.eq_ignore_ascii_case(value)
                    }
                    Some([(attr, value)]) if attr.eq_ignore_ascii_case("id") => *id == value,
                    Some(_) => {
                        let mut head = g.attrs.clone();
                        head.insert("id".into(), json!(id));
                        head.insert("displayName".into(), json!(g.display_name));
                        matches(kind, &Value::Object(head))
                    }
                })
                .map(|(id, g)| Found::Group(id, g))
                .collect(),
        };
        let before = total;
        total += found.len();
        let from = skip.saturating_sub(before);
        let room = take.saturating_sub(resources.len());
        resources.extend(found.iter().skip(from).take(room).map(|f| match f {
            Found::User(u) => page.projection.apply((*u).clone()),
            Found::Group(id, g) => t.group_json(id, g, &page.projection),
        }));
    }
    let list = ListResponse {
        schemas: vec![wire::LIST_RESPONSE.to_string()],
        total_results: match t.quirks.inflate_total_results {
            0 => total as u64,
            lie => lie,
        },
        start_index: Some(start),
        items_per_page: Some(resources.len() as u64),
        resources,
    };
    Ok((StatusCode::OK, serde_json::to_value(list).ok()))
}

enum Found<'t> {
    User(&'t Value),
    Group(&'t String, &'t EmuGroup),
}

/// `attr eq "value"`, or several of them joined by `or`: the filter forms rosterd sends.
fn parse_filter(filter: &str) -> Result<Vec<(String, String)>, String> {
    let unsupported =
        || format!("unsupported filter `{filter}`: only `attribute eq \"value\"`, joined by `or`");
    let mut out = Vec::new();
    let mut rest = filter.trim();
    loop {
        let (attr, after) = rest.split_once(' ').ok_or_else(unsupported)?;
        let (op, after) = after.trim_start().split_once(' ').ok_or_else(unsupported)?;
        if !op.eq_ignore_ascii_case("eq") {
            return Err(unsupported());
        }
        // The value is a JSON string: read exactly one, then `or` or the end.
        let mut values =
            serde_json::Deserializer::from_str(after.trim_start()).into_iter::<String>();
        let value = values
            .next()
            .ok_or_else(unsupported)?
            .map_err(|_| unsupported())?;
        let used = values.byte_offset();
        out.push((attr.to_string(), value));
        rest = after.trim_start()[used..].trim_start();
        if rest.is_empty() {
            return Ok(out);
        }
        rest = match rest.split_once(' ') {
            Some((or, tail)) if or.eq_ignore_ascii_case("or") => tail.trim_start(),
            _ => return Err(unsupported()),
        };
    }
}

/// A request body as JSON, or the 400 that says why it is not.
fn parse_body<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, Answer> {
    serde_json::from_slice(body).map_err(|e| {
        error(
            StatusCode::BAD_REQUEST,
            Some("invalidSyntax"),
            e.to_string(),
        )
    })
}

/// Refuses a userName another user has (compared as the tenant compares userNames).
fn check_user_name(
    t: &Tenant,
    attrs: &Map<String, Value>,
    except: Option<&str>,
) -> Result<(), Answer> {
    let name = attrs["userName"].as_str().unwrap_or_default();
    match t.user_named(name, except) {
        Some(_) => Err(error(
            StatusCode::CONFLICT,
            Some("uniqueness"),
            format!("userName `{name}` is taken"),
        )),
        None => Ok(()),
    }
}

fn user_answer(t: &Tenant, status: StatusCode, id: &str) -> Served {
    Ok((status, t.users.get(id).cloned()))
}

fn create_user(t: &mut Tenant, body: &[u8]) -> Served {
    let attrs = resource::normalise(Kind::Users, &parse_body(body)?, true)?;
    check_user_name(t, &attrs, None)?;
    let id = t.new_id('u');
    t.put_user(&id, attrs, None);
    user_answer(t, StatusCode::CREATED, &id)
}

fn put_user(t: &mut Tenant, id: &str, body: &[u8]) -> Served {
    let attrs = resource::normalise(Kind::Users, &parse_body(body)?, true)?;
    let (_, created) = t.user_attrs(id).ok_or_else(|| not_found("User", id))?;
    check_user_name(t, &attrs, Some(id))?;
    t.put_user(id, attrs, Some(&created));
    user_answer(t, StatusCode::OK, id)
}

fn patch_user(t: &mut Tenant, id: &str, body: &[u8]) -> Served {
    let patch: PatchRequest = parse_body(body)?;
    let (mut attrs, created) = t.user_attrs(id).ok_or_else(|| not_found("User", id))?;
    for op in &patch.operations {
        resource::patch(
            Kind::Users,
            &mut attrs,
            &op.op,
            op.path.as_deref(),
            op.value.as_ref(),
        )?;
    }
    check_user_name(t, &attrs, Some(id))?;
    t.put_user(id, attrs, Some(&created));
    user_answer(t, StatusCode::OK, id)
}

/// Deletes a user. Its groups lose it, unless [`Quirks::accept_unknown_members`] keeps its
/// id in them as the servers that accept unknown ids do.
fn delete_user(t: &mut Tenant, id: &str) -> Served {
    t.users.remove(id).ok_or_else(|| not_found("User", id))?;
    if !t.quirks.accept_unknown_members {
        for g in t.groups.values_mut() {
            g.members.remove(id);
            g.extra.remove(id);
        }
    }
    Ok((StatusCode::NO_CONTENT, None))
}

fn member_ids(t: &Tenant, value: &Value) -> Result<Vec<String>, Answer> {
    let members: Vec<Member> = serde_json::from_value(value.clone()).map_err(|e| {
        error(
            StatusCode::BAD_REQUEST,
            Some("invalidValue"),
            format!("members: {e}"),
        )
    })?;
    members
        .into_iter()
        .map(|m| {
            if t.users.contains_key(&m.value) || t.quirks.accept_unknown_members {
                Ok(m.value)
            } else {
                Err(error(
                    StatusCode::BAD_REQUEST,
                    Some("invalidValue"),
                    format!("no user with id `{}`", m.value),
                ))
            }
        })
        .collect()
}

fn check_cap(t: &Tenant, changes: usize) -> Result<(), Answer> {
    match t.quirks.max_members_per_request {
        Some(cap) if changes > cap => Err(error(
            StatusCode::BAD_REQUEST,
            Some("invalidValue"),
            format!("{changes} member changes in one request; at most {cap} are allowed"),
        )),
        _ => Ok(()),
    }
}

/// A group's body: its displayName, its other attributes and its members' ids.
struct GroupBody {
    name: String,
    attrs: Map<String, Value>,
    members: Vec<String>,
}

fn group_body(t: &Tenant, body: &[u8]) -> Result<GroupBody, Answer> {
    let mut attrs = resource::normalise(Kind::Groups, &parse_body(body)?, true)?;
    let members = match attrs.remove("members") {
        Some(members) => member_ids(t, &members)?,
        None => Vec::new(),
    };
    let name = match attrs.remove("displayName") {
        Some(Value::String(name)) => name,
        _ => unreachable!("normalise requires a string displayName"),
    };
    Ok(GroupBody {
        name,
        attrs,
        members,
    })
}

fn create_group(t: &mut Tenant, body: &[u8]) -> Served {
    let GroupBody {
        name,
        attrs,
        members,
    } = group_body(t, body)?;
    if t.quirks.unique_display_names && t.groups.values().any(|g| g.display_name == name) {
        return Err(error(
            StatusCode::CONFLICT,
            Some("uniqueness"),
            format!("a group named `{name}` exists"),
        ));
    }
    check_cap(t, members.len())?;
    t.counters.members_added += members.len() as u64;
    let id = t.new_id('g');
    let meta = t.touch(None);
    let mut g = EmuGroup::new(name, members.into_iter().collect(), meta);
    g.attrs = attrs;
    let answer = t.group_json(&id, &g, &Projection::default());
    t.groups.insert(id, g);
    Ok((StatusCode::CREATED, Some(answer)))
}

fn put_group(t: &mut Tenant, id: &str, body: &[u8]) -> Served {
    let GroupBody {
        name,
        attrs,
        members,
    } = group_body(t, body)?;
    let created = match t.groups.get(id) {
        Some(g) => g.meta.created.clone(),
        None => return Err(not_found("Group", id)),
    };
    let meta = t.touch(Some(&created));
    t.counters.member_list_replaces += 1;
    let mut g = EmuGroup::new(name, members.into_iter().collect(), meta);
    g.attrs = attrs;
    let answer = t.group_json(id, &g, &Projection::default());
    t.groups.insert(id.to_string(), g);
    Ok((StatusCode::OK, Some(answer)))
}

fn patch_group(t: &mut Tenant, id: &str, body: &[u8]) -> Served {
    let patch: PatchRequest = parse_body(body)?;
    // Taken out while the operations apply, which read the tenant's users.
    let mut group = t.groups.remove(id).ok_or_else(|| not_found("Group", id))?;
    // All operations apply, or none (RFC 7644 section 3.5.2): the edit journals what it
    // changes, so a PATCH costs its own changes, not the group's size.
    let mut edit = Edit::new(&mut group);
    let mut changes = 0usize;
    let mut replaces = 0u64;
    let mut result = Ok(());
    for op in &patch.operations {
        result = apply(t, &mut edit, op, &mut changes, &mut replaces);
        if result.is_err() {
            break;
        }
    }
    let result = result.and_then(|()| check_cap(t, changes));
    let (added, removed) = (edit.added.len() as u64, edit.removed.len() as u64);
    if result.is_err() {
        edit.undo();
    } else {
        group.meta = t.touch(Some(&group.meta.created));
    }
    t.groups.insert(id.to_string(), group);
    result?;
    t.counters.members_added += added;
    t.counters.members_removed += removed;
    t.counters.member_list_replaces += replaces;
    Ok((StatusCode::NO_CONTENT, None))
}

/// A group being changed by one PATCH, with what it takes to undo the change.
struct Edit<'g> {
    group: &'g mut EmuGroup,
    /// The displayName and other attributes before the first change to them.
    attrs: Option<(String, Map<String, Value>)>,
    /// Members that were not there before, and members that were and are gone.
    added: BTreeSet<String>,
    removed: BTreeSet<String>,
}

impl<'g> Edit<'g> {
    fn new(group: &'g mut EmuGroup) -> Self {
        Edit {
            group,
            attrs: None,
            added: BTreeSet::new(),
            removed: BTreeSet::new(),
        }
    }

    /// Applies an operation to the attributes other than `members`.
    fn patch_attrs(
        &mut self,
        op: &str,
        path: Option<&str>,
        value: Option<&Value>,
    ) -> Result<(), Answer> {
        let g = &mut *self.group;
        self.attrs
            .get_or_insert_with(|| (g.display_name.clone(), g.attrs.clone()));
        let mut doc = g.attrs.clone();
        doc.insert("displayName".into(), json!(g.display_name));
        resource::patch(Kind::Groups, &mut doc, op, path, value)?;
        if let Some(Value::String(name)) = doc.remove("displayName") {
            g.display_name = name;
        }
        g.attrs = doc;
        Ok(())
    }

    fn add(&mut self, id: String) {
        if self.group.members.insert(id.clone()) && !self.removed.remove(&id) {
            self.added.insert(id);
        }
    }

    fn remove(&mut self, id: &str) {
        self.group.extra.remove(id);
        if self.group.members.remove(id) && !self.added.remove(id) {
            self.removed.insert(id.to_string());
        }
    }

    fn clear(&mut self) {
        self.group.extra.clear();
        for id in std::mem::take(&mut self.group.members) {
            if !self.added.remove(&id) {
                self.removed.insert(id);
            }
        }
    }

    /// Puts the group back as it was.
    fn undo(&mut self) {
        if let Some((name, attrs)) = self.attrs.take() {
            self.group.display_name = name;
            self.group.attrs = attrs;
        }
        for id in &self.added {
            self.group.members.remove(id);
        }
        self.group.members.append(&mut self.removed);
    }
}

/// Removes a member; with [`Quirks::strict_removal`], one the group lacks is an error.
fn strict_remove(t: &Tenant, group: &mut Edit<'_>, id: &str) -> Result<(), Answer> {
    if t.quirks.strict_removal && !group.group.members.contains(id) {
        return Err(error(
            StatusCode::BAD_REQUEST,
            Some("noTarget"),
            format!("`{id}` is not a member"),
        ));
    }
    group.remove(id);
    Ok(())
}

fn apply(
    t: &Tenant,
    group: &mut Edit<'_>,
    op: &PatchOperation,
    changes: &mut usize,
    replaces: &mut u64,
) -> Result<(), Answer> {
    let invalid_path = |detail: String| error(StatusCode::BAD_REQUEST, Some("invalidPath"), detail);
    let kind = op.op.to_ascii_lowercase();
    let path = op
        .path
        .as_deref()
        .map(|p| schema::strip_urn(Kind::Groups, p.trim()))
        .filter(|p| !p.is_empty());
    let value = op.value.clone().unwrap_or(Value::Null);
    match (kind.as_str(), path) {
        ("add", Some(p)) if p.eq_ignore_ascii_case("members") => {
            let ids = member_ids(t, &value)?;
            *changes += ids.len();
            for id in ids {
                if t.quirks.duplicate_on_add && group.group.members.contains(&id) {
                    // Not undone with the rest of a failed PATCH: such servers are not
                    // careful either.
                    *group.group.extra.entry(id).or_default() += 1;
                } else {
                    group.add(id);
                }
            }
        }
        ("add" | "replace", None) => {
            let mut rest = value.as_object().cloned().unwrap_or_default();
            let members = rest
                .keys()
                .find(|k| k.eq_ignore_ascii_case("members"))
                .cloned()
                .and_then(|k| rest.remove(&k));
            if let Some(members) = members {
                let ids = member_ids(t, &members)?;
                *changes += ids.len();
                if kind == "replace" {
                    *replaces += 1;
                    group.clear();
                }
                ids.into_iter().for_each(|id| group.add(id));
            }
            if !rest.is_empty() || !value.is_object() {
                group.patch_attrs(&kind, None, Some(&Value::Object(rest)))?;
            }
        }
        ("replace", Some(p)) if p.eq_ignore_ascii_case("members") => {
            let ids = member_ids(t, &value)?;
            *changes += ids.len();
            *replaces += 1;
            group.clear();
            ids.into_iter().for_each(|id| group.add(id));
        }
        ("remove", Some(p)) if p.eq_ignore_ascii_case("members") => {
            if value.is_null() {
                *replaces += 1;
                group.clear();
            } else if t.quirks.value_list_removal {
                let members: Vec<Member> = serde_json::from_value(value).map_err(|e| {
                    error(
                        StatusCode::BAD_REQUEST,
                        Some("invalidValue"),
                        format!("members: {e}"),
                    )
                })?;
                *changes += members.len();
                for m in members {
                    strict_remove(t, group, &m.value)?;
                }
            } else {
                return Err(error(
                    StatusCode::BAD_REQUEST,
                    Some("invalidValue"),
                    "a remove operation carries no value; a filter in the path selects what to remove",
                ));
            }
        }
        ("remove", Some(p)) if p.to_ascii_lowercase().starts_with("members[") => {
            if t.quirks.no_filtered_paths {
                return Err(invalid_path(format!(
                    "filtered paths are not supported: `{p}`"
                )));
            }
            let inner = p
                .get("members[".len()..p.len().saturating_sub(1))
                .filter(|_| p.ends_with(']'))
                .ok_or_else(|| invalid_path(format!("cannot read path `{p}`")))?;
            let (attr, id) = match parse_filter(inner).map_err(invalid_path)?.as_slice() {
                [(attr, id)] => (attr.clone(), id.clone()),
                _ => {
                    return Err(invalid_path(format!(
                        "one member at a time is selected: `{p}`"
                    )))
                }
            };
            if !attr.eq_ignore_ascii_case("value") {
                return Err(invalid_path(format!(
                    "members can be selected by `value` only: `{p}`"
                )));
            }
            *changes += 1;
            strict_remove(t, group, &id)?;
        }
        (_, Some(p)) if p.to_ascii_lowercase().starts_with("members") => {
            return Err(invalid_path(format!(
                "unsupported operation `{}` on `{p}`",
                op.op
            )))
        }
        _ => group.patch_attrs(&kind, path, op.value.as_ref())?,
    }
    Ok(())
}
