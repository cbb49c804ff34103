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
use serde_json::{json, Value};

use super::wire::{self, ErrorResponse, Group, ListResponse, Member, PatchOperation, PatchRequest};

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
    members: BTreeSet<String>,
    /// Entries beyond the first of a member, with [`Quirks::duplicate_on_add`].
    extra: BTreeMap<String, usize>,
}

struct Tenant {
    users: BTreeMap<String, Value>,
    groups: BTreeMap<String, EmuGroup>,
    next_id: u64,
    faults: Faults,
    quirks: Quirks,
    counters: Counters,
    tokens: BTreeSet<String>,
    /// When the latest requests arrived (at most `ARRIVALS_KEPT`), to check pacing.
    arrivals: std::collections::VecDeque<std::time::Instant>,
}

const ARRIVALS_KEPT: usize = 10_000;

struct Shared {
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
        });
    }

    /// When the latest requests (of any kind) arrived, oldest first.
    pub fn arrivals(&self, tenant: &str) -> Vec<std::time::Instant> {
        self.with_tenant(tenant, |t| t.arrivals.iter().copied().collect())
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
            let group = EmuGroup {
                display_name: display_name.to_string(),
                members,
                extra: BTreeMap::new(),
            };
            t.groups.insert(id, group);
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

    /// Deletes a group as a person in the target's console would.
    pub fn delete_by_hand(&self, tenant: &str, group: &str) {
        self.with_tenant(tenant, |t| t.groups.retain(|_, g| g.display_name != group));
    }

    fn with_tenant<T>(&self, tenant: &str, f: impl FnOnce(&mut Tenant) -> T) -> T {
        let mut tenants = lock(&self.shared.tenants);
        f(tenant_mut(&mut tenants, &self.shared.options, tenant))
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
    options: &Options,
    name: &str,
) -> &'a mut Tenant {
    tenants.entry(name.to_string()).or_insert_with(|| {
        let mut t = Tenant {
            users: BTreeMap::new(),
            groups: BTreeMap::new(),
            next_id: 0,
            faults: Faults::default(),
            quirks: options.quirks.clone(),
            counters: Counters::default(),
            tokens: options.token.iter().cloned().collect(),
            arrivals: std::collections::VecDeque::new(),
        };
        for user in &options.users {
            t.insert_user(user);
        }
        t
    })
}

impl Tenant {
    fn new_id(&mut self, prefix: char) -> String {
        self.next_id += 1;
        // Opaque ids, as real targets hand out; ordered, for stable listings.
        format!("{prefix}{:08x}", self.next_id)
    }

    fn insert_user(&mut self, user_name: &str) -> String {
        let id = self.new_id('u');
        let user = json!({
            "schemas": [wire::USER_SCHEMA],
            "id": id,
            "userName": user_name,
            "active": true,
            "meta": {"resourceType": "User"},
        });
        self.users.insert(id.clone(), user);
        id
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

    fn group_json(&self, id: &str, g: &EmuGroup) -> Value {
        let members: Vec<Member> = g
            .members
            .iter()
            .flat_map(|m| std::iter::repeat_n(m, 1 + g.extra.get(m).copied().unwrap_or(0)))
            .map(|m| Member {
                value: m.clone(),
                display: self
                    .users
                    .get(m)
                    .and_then(|u| u["userName"].as_str())
                    .map(str::to_string),
                kind: Some("User".into()),
            })
            .collect();
        json!({
            "schemas": [wire::GROUP_SCHEMA],
            "id": id,
            "displayName": g.display_name,
            "members": members,
            "meta": {"resourceType": "Group"},
        })
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
    let is_write = method != Method::GET;
    let (faults, fault) = {
        let mut tenants = lock(&shared.tenants);
        let t = tenant_mut(&mut tenants, &shared.options, tenant);
        if is_write {
            t.counters.writes += 1;
        } else {
            t.counters.reads += 1;
        }
        if t.arrivals.len() == ARRIVALS_KEPT {
            t.arrivals.pop_front();
        }
        t.arrivals.push_back(std::time::Instant::now());
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
    let answer = {
        let mut tenants = lock(&shared.tenants);
        let t = tenant_mut(&mut tenants, &shared.options, tenant);
        let answer = if authorised(t, &headers) {
            serve(t, &method, rest, &query, &body)
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
        answer
    };
    if fault == Some(FaultKind::DropAfterApply) {
        return broken();
    }
    respond(answer, None)
}

fn count_status(shared: &Shared, tenant: &str, code: u16) {
    let mut tenants = lock(&shared.tenants);
    let t = tenant_mut(&mut tenants, &shared.options, tenant);
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
    let t = tenant_mut(&mut tenants, &shared.options, tenant);
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
            "use /_emulator/TENANT/{groups,stats,faults,quirks}",
        );
    };
    let mut tenants = lock(&shared.tenants);
    let t = tenant_mut(&mut tenants, &shared.options, tenant);
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
        _ => error(StatusCode::NOT_FOUND, None, "no such emulator endpoint"),
    }
}

fn serve(
    t: &mut Tenant,
    method: &Method,
    rest: &[&str],
    query: &BTreeMap<String, String>,
    body: &[u8],
) -> Answer {
    match (method.as_str(), rest) {
        ("GET", ["ServiceProviderConfig"]) => (StatusCode::OK, Some(service_provider_config(t))),
        ("GET", ["Users"]) => list(t, query, Kind::Users),
        ("GET", ["Users", id]) => match t.users.get(*id) {
            Some(u) => (StatusCode::OK, Some(u.clone())),
            None => not_found("User", id),
        },
        ("POST", ["Users"]) => create_user(t, body),
        ("GET", ["Groups"]) => list(t, query, Kind::Groups),
        ("GET", ["Groups", id]) => match t.groups.get(*id) {
            Some(g) => (StatusCode::OK, Some(t.group_json(id, g))),
            None => not_found("Group", id),
        },
        ("POST", ["Groups"]) => create_group(t, body),
        ("PATCH", ["Groups", id]) => patch_group(t, id, body),
        ("PUT", ["Groups", id]) => put_group(t, id, body),
        ("DELETE", ["Groups", id]) => match t.groups.remove(*id) {
            Some(_) => (StatusCode::NO_CONTENT, None),
            None => not_found("Group", id),
        },
        _ => error(StatusCode::NOT_FOUND, None, "no such endpoint"),
    }
}

fn not_found(kind: &str, id: &str) -> Answer {
    error(
        StatusCode::NOT_FOUND,
        None,
        format!("{kind} `{id}` not found"),
    )
}

fn service_provider_config(t: &Tenant) -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"],
        "patch": {"supported": true},
        "bulk": {"supported": false, "maxOperations": 0, "maxPayloadSize": 0},
        "filter": {"supported": true, "maxResults": t.quirks.max_page_size},
        "changePassword": {"supported": false},
        "sort": {"supported": false},
        "etag": {"supported": false},
        "authenticationSchemes": [],
    })
}

#[derive(Clone, Copy)]
enum Kind {
    Users,
    Groups,
}

fn list(t: &Tenant, query: &BTreeMap<String, String>, kind: Kind) -> Answer {
    let filter = match query.get("filter").map(|f| parse_filter(f)).transpose() {
        Ok(f) => f,
        Err(e) => return error(StatusCode::BAD_REQUEST, Some("invalidFilter"), e),
    };
    let matches = |resource: &Value| match &filter {
        None => true,
        Some((attr, value)) => {
            let exact = match kind {
                Kind::Users => {
                    attr.eq_ignore_ascii_case("username") && t.quirks.case_sensitive_user_name
                        || attr.eq_ignore_ascii_case("id")
                        || attr.eq_ignore_ascii_case("externalId")
                }
                Kind::Groups => attr.eq_ignore_ascii_case("id"),
            };
            wire::user_values(resource, attr).iter().any(|v| {
                if exact {
                    v == value
                } else {
                    v.eq_ignore_ascii_case(value)
                }
            })
        }
    };
    let start = query
        .get("startIndex")
        .and_then(|s| s.parse::<u64>().ok())
        .unwrap_or(1)
        .max(1);
    let count = query
        .get("count")
        .and_then(|s| s.parse::<u64>().ok())
        .unwrap_or(t.quirks.max_page_size)
        .min(t.quirks.max_page_size);
    let (skip, take) = ((start - 1) as usize, count as usize);
    // Resources are matched where they are and only the page is copied or rendered: paging
    // through 100k users must not copy all of them for every page, nor a lookup by name
    // render every group's members.
    let (total, page): (usize, Vec<Value>) = match kind {
        Kind::Users => {
            let all: Vec<&Value> = t.users.values().filter(|u| matches(u)).collect();
            let page = all.iter().skip(skip).take(take);
            (all.len(), page.map(|u| (*u).clone()).collect())
        }
        Kind::Groups => {
            let group_matches = |id: &String, g: &EmuGroup| match &filter {
                Some((attr, value)) if attr.eq_ignore_ascii_case("displayName") => {
                    g.display_name.eq_ignore_ascii_case(value)
                }
                Some((attr, value)) if attr.eq_ignore_ascii_case("id") => id == value,
                _ => matches(&json!({"id": id, "displayName": g.display_name})),
            };
            let all: Vec<(&String, &EmuGroup)> = t
                .groups
                .iter()
                .filter(|(id, g)| group_matches(id, g))
                .collect();
            let page = all.iter().skip(skip).take(take);
            (all.len(), page.map(|(id, g)| t.group_json(id, g)).collect())
        }
    };
    let list = ListResponse {
        schemas: vec![wire::LIST_RESPONSE.to_string()],
        total_results: total as u64,
        start_index: Some(start),
        items_per_page: Some(page.len() as u64),
        resources: page,
    };
    (StatusCode::OK, serde_json::to_value(list).ok())
}

/// `attr eq "value"`: the one filter form rosterd sends.
fn parse_filter(filter: &str) -> Result<(String, String), String> {
    let unsupported = || format!("unsupported filter `{filter}`: only `attribute eq \"value\"`");
    let (attr, rest) = filter.trim().split_once(' ').ok_or_else(unsupported)?;
    let (op, value) = rest.trim().split_once(' ').ok_or_else(unsupported)?;
    if !op.eq_ignore_ascii_case("eq") {
        return Err(unsupported());
    }
    let value: String = serde_json::from_str(value.trim()).map_err(|_| unsupported())?;
    Ok((attr.to_string(), value))
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

fn create_user(t: &mut Tenant, body: &[u8]) -> Answer {
    let user: Value = match parse_body(body) {
        Ok(v) => v,
        Err(answer) => return answer,
    };
    let Some(name) = user["userName"].as_str() else {
        return error(
            StatusCode::BAD_REQUEST,
            Some("invalidValue"),
            "userName is required",
        );
    };
    if t.users.values().any(|u| {
        u["userName"]
            .as_str()
            .is_some_and(|n| n.eq_ignore_ascii_case(name))
    }) {
        return error(
            StatusCode::CONFLICT,
            Some("uniqueness"),
            format!("userName `{name}` is taken"),
        );
    }
    let id = t.insert_user(name);
    (StatusCode::CREATED, t.users.get(&id).cloned())
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

fn create_group(t: &mut Tenant, body: &[u8]) -> Answer {
    let group: Group = match parse_body(body) {
        Ok(v) => v,
        Err(answer) => return answer,
    };
    if t.quirks.unique_display_names
        && t.groups
            .values()
            .any(|g| g.display_name == group.display_name)
    {
        return error(
            StatusCode::CONFLICT,
            Some("uniqueness"),
            format!("a group named `{}` exists", group.display_name),
        );
    }
    let members = match group
        .members
        .as_ref()
        .map(|m| serde_json::to_value(m).unwrap_or_default())
    {
        Some(v) => match member_ids(t, &v) {
            Ok(ids) => ids,
            Err(answer) => return answer,
        },
        None => Vec::new(),
    };
    if let Err(answer) = check_cap(t, members.len()) {
        return answer;
    }
    t.counters.members_added += members.len() as u64;
    let id = t.new_id('g');
    let g = EmuGroup {
        display_name: group.display_name,
        members: members.into_iter().collect(),
        extra: BTreeMap::new(),
    };
    let answer = (StatusCode::CREATED, Some(t.group_json(&id, &g)));
    t.groups.insert(id, g);
    answer
}

fn put_group(t: &mut Tenant, id: &str, body: &[u8]) -> Answer {
    let group: Group = match parse_body(body) {
        Ok(v) => v,
        Err(answer) => return answer,
    };
    let members = match member_ids(
        t,
        &serde_json::to_value(group.members.unwrap_or_default()).unwrap_or_default(),
    ) {
        Ok(ids) => ids,
        Err(answer) => return answer,
    };
    t.counters.member_list_replaces += 1;
    match t.groups.get_mut(id) {
        Some(g) => {
            g.display_name = group.display_name;
            g.members = members.into_iter().collect();
            (StatusCode::NO_CONTENT, None)
        }
        None => not_found("Group", id),
    }
}

fn patch_group(t: &mut Tenant, id: &str, body: &[u8]) -> Answer {
    let patch: PatchRequest = match parse_body(body) {
        Ok(v) => v,
        Err(answer) => return answer,
    };
    // Taken out while the operations apply, which read the tenant's users.
    let Some(mut group) = t.groups.remove(id) else {
        return not_found("Group", id);
    };
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
    }
    t.groups.insert(id.to_string(), group);
    if let Err(answer) = result {
        return answer;
    }
    t.counters.members_added += added;
    t.counters.members_removed += removed;
    t.counters.member_list_replaces += replaces;
    (StatusCode::NO_CONTENT, None)
}

/// A group being changed by one PATCH, with what it takes to undo the change.
struct Edit<'g> {
    group: &'g mut EmuGroup,
    name: Option<String>,
    /// Members that were not there before, and members that were and are gone.
    added: BTreeSet<String>,
    removed: BTreeSet<String>,
}

impl<'g> Edit<'g> {
    fn new(group: &'g mut EmuGroup) -> Self {
        Edit {
            group,
            name: None,
            added: BTreeSet::new(),
            removed: BTreeSet::new(),
        }
    }

    fn rename(&mut self, name: &str) {
        let old = std::mem::replace(&mut self.group.display_name, name.to_string());
        self.name.get_or_insert(old);
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
        if let Some(name) = self.name.take() {
            self.group.display_name = name;
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
    let path = op.path.as_deref().map(str::trim);
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
            if let Some(name) = value.get("displayName").and_then(Value::as_str) {
                group.rename(name);
            }
            if let Some(members) = value.get("members") {
                let ids = member_ids(t, members)?;
                *changes += ids.len();
                if kind == "replace" {
                    *replaces += 1;
                    group.clear();
                }
                ids.into_iter().for_each(|id| group.add(id));
            }
        }
        ("replace", Some(p)) if p.eq_ignore_ascii_case("displayName") => {
            let Some(name) = value.as_str() else {
                return Err(error(
                    StatusCode::BAD_REQUEST,
                    Some("invalidValue"),
                    "displayName must be a string",
                ));
            };
            group.rename(name);
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
            let (attr, id) = parse_filter(inner).map_err(invalid_path)?;
            if !attr.eq_ignore_ascii_case("value") {
                return Err(invalid_path(format!(
                    "members can be selected by `value` only: `{p}`"
                )));
            }
            *changes += 1;
            strict_remove(t, group, &id)?;
        }
        _ => {
            return Err(invalid_path(format!(
                "unsupported operation `{}` on `{}`",
                op.op,
                path.unwrap_or("(no path)")
            )))
        }
    }
    Ok(())
}
