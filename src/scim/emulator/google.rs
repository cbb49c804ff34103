//! The same tenants seen through Google Workspace's Admin SDK Directory API, under
//! `/{tenant}/admin/directory/v1`: what a target of `kind: google_workspace` uses, with the
//! behaviour the API's reference and its discovery document describe.
//!
//! - Users: `primaryEmail` is the userName; `GET users/{userKey}` (id or address, without
//!   case); `GET users?customer=...` paged by `maxResults` (at most 500) and `pageToken`.
//! - Groups: only groups with an address are Google groups; `GET`, `POST`, `PATCH`, `PUT`
//!   and `DELETE groups/{groupKey}` (id or address); an address taken by a group or a user
//!   is refused 409 `duplicate`.
//! - Members: `GET groups/{key}/members` paged (at most 200); `POST` adds by `email` (a
//!   user, a group as a nested member, or an address outside the tenant's domain as an
//!   external member; an address in the domain that is no user's is 404), 409 `duplicate`
//!   when already there; `DELETE groups/{key}/members/{memberKey}`, 404 `Resource Not
//!   Found: memberKey` when not there.
//! - Batches: `POST /{tenant}/batch`, `multipart/mixed` parts of `application/http`, at most
//!   1,000, each answered in its own part.
//! - Errors as Google writes them (`{"error": {"code", "message", "errors": [{"reason"}]}}`),
//!   and with [`Quirks::google_throttle_every`] its quota answers (403
//!   `userRateLimitExceeded`).
//! - `POST /{tenant}/token`: a service account's JWT bearer grant ([`Options::google_service_account`]).

use super::*;
use crate::google::batch;

/// The Directory API's root under a tenant.
const ROOT: &[&str] = &["admin", "directory", "v1"];

/// An error as Google writes it.
pub(super) fn google_error(status: StatusCode, reason: &str, message: impl Into<String>) -> Answer {
    let message = message.into();
    (
        status,
        Some(json!({"error": {
            "code": status.as_u16(),
            "message": message,
            "errors": [{"message": message, "domain": "global", "reason": reason}],
        }})),
    )
}

fn not_found(what: &str) -> Answer {
    google_error(
        StatusCode::NOT_FOUND,
        "notFound",
        format!("Resource Not Found: {what}"),
    )
}

fn bad(message: impl Into<String>) -> Answer {
    google_error(StatusCode::BAD_REQUEST, "invalid", message)
}

/// Whether `rest` (the path after the tenant) is the Directory API's.
pub(super) fn is_directory(rest: &[&str]) -> bool {
    rest.starts_with(ROOT)
}

/// A request to the Directory API or its batch endpoint (`rest` is the path after the
/// tenant), past the faults: its answer, as Google writes it.
pub(super) fn handle(
    shared: &Shared,
    tenant: &str,
    method: &Method,
    rest: &[&str],
    query: &BTreeMap<String, String>,
    headers: &HeaderMap,
    body: &[u8],
) -> Response {
    let mut tenants = lock(&shared.tenants);
    let t = tenant_mut(&mut tenants, shared, tenant);
    if !authorised(t, headers) {
        let answer = google_error(
            StatusCode::UNAUTHORIZED,
            "authError",
            "Request had invalid authentication credentials.",
        );
        *t.counters.by_status.entry(401).or_default() += 1;
        return respond(answer, None);
    }
    if rest == ["batch"] {
        let content_type = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        return serve_batch(t, tenant, content_type, body);
    }
    let answer = call(t, method, &rest[ROOT.len()..], query, body);
    respond(answer, None)
}

/// One call, counted, logged, perhaps throttled, and served.
fn call(
    t: &mut Tenant,
    method: &Method,
    rest: &[&str],
    query: &BTreeMap<String, String>,
    body: &[u8],
) -> Answer {
    t.counters.google_calls += 1;
    if t.counters.google_log.len() < 10_000 {
        let body: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
        t.counters.google_log.push(json!({
            "method": method.as_str(),
            "path": format!("admin/directory/v1/{}", rest.join("/")),
            "query": query,
            "body": body,
        }));
    }
    let every = t.quirks.google_throttle_every;
    let answer = if (every > 0 && t.counters.google_calls.is_multiple_of(every)) || over_quota(t) {
        google_error(
            StatusCode::FORBIDDEN,
            "userRateLimitExceeded",
            "Quota exceeded for quota metric 'Queries' and limit 'Queries per minute per user'",
        )
    } else {
        let decoded: Vec<String> = rest.iter().map(|s| decode(s)).collect();
        let rest: Vec<&str> = decoded.iter().map(String::as_str).collect();
        serve(t, method, &rest, query, body).unwrap_or_else(|refused| refused)
    };
    *t.counters.by_status.entry(answer.0.as_u16()).or_default() += 1;
    if *method != Method::GET && answer.0.is_success() {
        t.counters.applied_writes += 1;
    }
    answer
}

/// Counts a call against [`Quirks::google_calls_per_window`]: whether it is beyond.
fn over_quota(t: &mut Tenant) -> bool {
    let limit = t.quirks.google_calls_per_window;
    if limit == 0 {
        return false;
    }
    let span_ms = match t.quirks.google_quota_window_ms {
        0 => t
            .quirks
            .google_quota_window_seconds
            .max(1)
            .saturating_mul(1_000),
        ms => ms,
    };
    let span = i64::try_from(span_ms).unwrap_or(60_000);
    let now = crate::clock::now_utc().timestamp_millis();
    let window = t.rate_windows.entry("google").or_insert((now, 0));
    if now >= window.0 + span {
        *window = (now, 0);
    }
    window.1 += 1;
    window.1 > limit
}

fn decode(segment: &str) -> String {
    percent_encoding::percent_decode_str(segment)
        .decode_utf8_lossy()
        .into_owned()
}

/// `POST /{tenant}/batch`: each part served as its own call.
fn serve_batch(t: &mut Tenant, tenant: &str, content_type: &str, body: &[u8]) -> Response {
    t.counters.google_batches += 1;
    let parts = match batch::parse_request(body, content_type) {
        Ok(parts) => parts,
        Err(e) => return respond(bad(format!("Invalid batch request: {e}")), None),
    };
    if parts.len() > 1_000 {
        return respond(bad("A batch request may hold at most 1000 calls"), None);
    }
    let prefix = format!("/{tenant}/");
    let mut answers = Vec::with_capacity(parts.len());
    for (id, part) in parts {
        let (path, query) = part.path.split_once('?').unwrap_or((&part.path, ""));
        let query: BTreeMap<String, String> = url::form_urlencoded::parse(query.as_bytes())
            .into_owned()
            .collect();
        let rest: Vec<&str> = path
            .strip_prefix(&prefix)
            .unwrap_or(path)
            .split('/')
            .filter(|s| !s.is_empty())
            .collect();
        let method = Method::from_bytes(part.method.as_bytes()).unwrap_or(Method::GET);
        let body = part.body.as_ref().map(Value::to_string).unwrap_or_default();
        let (status, body) = if rest.starts_with(ROOT) {
            call(t, &method, &rest[ROOT.len()..], &query, body.as_bytes())
        } else {
            not_found("the batch part's path is not the Directory API's")
        };
        answers.push((
            id,
            batch::Answer {
                status: status.as_u16(),
                body,
            },
        ));
    }
    let boundary = format!("batch_emulator_{}", t.counters.google_batches);
    Response::builder()
        .status(StatusCode::OK)
        .header(
            header::CONTENT_TYPE,
            format!("multipart/mixed; boundary={boundary}"),
        )
        .body(Body::from(batch::encode_answer(&answers, &boundary)))
        .unwrap_or_else(|_| Response::new(Body::empty()))
}

/// Serves one call; `rest` is the path after `admin/directory/v1`, decoded.
fn serve(
    t: &mut Tenant,
    method: &Method,
    rest: &[&str],
    query: &BTreeMap<String, String>,
    body: &[u8],
) -> Result<Answer, Answer> {
    let ok = |v: Value| Ok((StatusCode::OK, Some(v)));
    let done = || Ok((StatusCode::NO_CONTENT, None));
    match (method.as_str(), rest) {
        ("GET", ["users"]) => list_users(t, query),
        ("GET", ["users", key]) => {
            let id = t.google_user(key).ok_or_else(|| not_found("userKey"))?;
            ok(t.google_user_json(&id))
        }
        ("POST", ["groups"]) => {
            let id = insert_group(t, body)?;
            ok(t.google_group_json(&id))
        }
        ("GET", ["groups", key]) => {
            let id = t.google_group(key).ok_or_else(|| not_found("groupKey"))?;
            ok(t.google_group_json(&id))
        }
        ("PATCH" | "PUT", ["groups", key]) => {
            let id = t.google_group(key).ok_or_else(|| not_found("groupKey"))?;
            update_group(t, &id, body, method == Method::PUT)?;
            ok(t.google_group_json(&id))
        }
        ("DELETE", ["groups", key]) => {
            let id = t.google_group(key).ok_or_else(|| not_found("groupKey"))?;
            t.groups.remove(&id);
            done()
        }
        ("GET", ["groups", key, "members"]) => {
            let id = t.google_group(key).ok_or_else(|| not_found("groupKey"))?;
            list_members(t, &id, query)
        }
        ("POST", ["groups", key, "members"]) => {
            let id = t.google_group(key).ok_or_else(|| not_found("groupKey"))?;
            let member = insert_member(t, &id, body)?;
            ok(member)
        }
        ("DELETE", ["groups", key, "members", member]) => {
            let id = t.google_group(key).ok_or_else(|| not_found("groupKey"))?;
            delete_member(t, &id, member)?;
            done()
        }
        (_, ["users" | "groups", ..]) => Err(google_error(
            StatusCode::METHOD_NOT_ALLOWED,
            "methodNotAllowed",
            "The method is not allowed here",
        )),
        _ => Err(not_found("the endpoint")),
    }
}

/// `maxResults` within `1..=most`, or `default`.
fn max_results(
    query: &BTreeMap<String, String>,
    default: usize,
    most: usize,
) -> Result<usize, Answer> {
    match query.get("maxResults") {
        None => Ok(default),
        Some(m) => m
            .parse::<usize>()
            .ok()
            .filter(|&m| (1..=most).contains(&m))
            .ok_or_else(|| bad(format!("Invalid value for maxResults: {m} (1 to {most})"))),
    }
}

/// The slice of `items` a `pageToken` (an offset, opaque to clients) starts, and the next
/// page's token.
fn page<'a, T>(
    items: &'a [T],
    query: &BTreeMap<String, String>,
    size: usize,
) -> Result<(&'a [T], Option<String>), Answer> {
    let start = match query.get("pageToken") {
        None => 0,
        Some(token) => token
            .strip_prefix("emu-page-")
            .and_then(|n| n.parse::<usize>().ok())
            .filter(|&n| n <= items.len())
            .ok_or_else(|| bad("Invalid pageToken"))?,
    };
    let end = (start + size).min(items.len());
    Ok((
        &items[start..end],
        (end < items.len()).then(|| format!("emu-page-{end}")),
    ))
}

fn list_users(t: &Tenant, query: &BTreeMap<String, String>) -> Result<Answer, Answer> {
    if !query.contains_key("customer") && !query.contains_key("domain") {
        return Err(bad("Bad Request: either customer or domain is required"));
    }
    let size = max_results(query, 100, 500)?;
    let mut ids: Vec<(String, String)> = t
        .users
        .iter()
        .map(|(id, u)| {
            (
                u["userName"].as_str().unwrap_or_default().to_lowercase(),
                id.clone(),
            )
        })
        .collect();
    ids.sort();
    let (slice, next) = page(&ids, query, size)?;
    let users: Vec<Value> = slice.iter().map(|(_, id)| t.google_user_json(id)).collect();
    let mut out = json!({"kind": "admin#directory#users", "etag": "\"emu\"", "users": users});
    if let Some(next) = next {
        out["nextPageToken"] = json!(next);
    }
    Ok((StatusCode::OK, Some(out)))
}

fn list_members(t: &Tenant, id: &str, query: &BTreeMap<String, String>) -> Result<Answer, Answer> {
    let size = max_results(query, 200, 200)?;
    let g = &t.groups[id];
    // By address; each member's JSON is made for the page only (a group of 100,000 is read
    // in 500 pages).
    let mut members: Vec<(String, &str, &'static str)> = g
        .members
        .iter()
        .filter_map(|user| {
            let email = t.users.get(user)?["userName"].as_str()?.to_lowercase();
            Some((email, user.as_str(), "USER"))
        })
        .collect();
    for (email, kind) in &g.google_others {
        members.push((email.clone(), "", kind));
    }
    members.sort_unstable();
    let (slice, next) = page(&members, query, size)?;
    let listed: Vec<Value> = slice
        .iter()
        .map(|(email, user, kind)| {
            let id = match *user {
                "" => t
                    .google_group(email)
                    .unwrap_or_else(|| format!("ext-{}", email.replace('@', "-at-"))),
                user => user.to_string(),
            };
            member_json(&id, email, kind)
        })
        .collect();
    let mut out = json!({
        "kind": "admin#directory#members",
        "etag": "\"emu\"",
        "members": listed,
    });
    if let Some(next) = next {
        out["nextPageToken"] = json!(next);
    }
    Ok((StatusCode::OK, Some(out)))
}

fn member_json(id: &str, email: &str, kind: &str) -> Value {
    json!({
        "kind": "admin#directory#member",
        "etag": "\"emu\"",
        "id": id,
        "email": email,
        "role": "MEMBER",
        "type": kind,
        "status": "ACTIVE",
    })
}

fn json_body(body: &[u8]) -> Result<Value, Answer> {
    serde_json::from_slice(body).map_err(|e| {
        google_error(
            StatusCode::BAD_REQUEST,
            "parseError",
            format!("Invalid JSON payload received. {e}"),
        )
    })
}

fn insert_group(t: &mut Tenant, body: &[u8]) -> Result<String, Answer> {
    let body = json_body(body)?;
    let email = body["email"]
        .as_str()
        .filter(|e| crate::config::is_address(e))
        .ok_or_else(|| bad("Invalid Input: email"))?
        .to_lowercase();
    if t.google_group(&email).is_some() || t.google_user(&email).is_some() {
        return Err(google_error(
            StatusCode::CONFLICT,
            "duplicate",
            "Entity already exists.",
        ));
    }
    let name = body["name"].as_str().unwrap_or(&email).to_string();
    let id = t.new_id('g');
    let meta = t.touch(None);
    let mut g = EmuGroup::new(name, BTreeSet::new(), meta);
    g.email = Some(email);
    g.description = body["description"].as_str().map(str::to_string);
    t.groups.insert(id.clone(), g);
    Ok(id)
}

/// PATCH changes the fields sent; PUT replaces the group's (a description left out is
/// gone).
fn update_group(t: &mut Tenant, id: &str, body: &[u8], replace: bool) -> Result<(), Answer> {
    let body = json_body(body)?;
    let meta = t.touch(None);
    let Some(g) = t.groups.get_mut(id) else {
        return Err(not_found("groupKey"));
    };
    if let Some(name) = body["name"].as_str() {
        g.display_name = name.to_string();
    }
    if replace || body.get("description").is_some() {
        g.description = body["description"].as_str().map(str::to_string);
    }
    g.meta.modified = meta.modified;
    Ok(())
}

fn insert_member(t: &mut Tenant, id: &str, body: &[u8]) -> Result<Value, Answer> {
    let body = json_body(body)?;
    let Some(email) = body["email"].as_str().map(str::to_lowercase) else {
        return Err(bad("Missing required field: memberKey"));
    };
    let in_domain = {
        let domain = t.quirks.google_domain.to_lowercase();
        email
            .rsplit_once('@')
            .is_some_and(|(_, d)| d == domain || d.ends_with(&format!(".{domain}")))
    };
    let duplicate = || google_error(StatusCode::CONFLICT, "duplicate", "Member already exists.");
    let meta = t.touch(None);
    if let Some(user) = t.google_user(&email) {
        let g = t.groups.get_mut(id).ok_or_else(|| not_found("groupKey"))?;
        if !g.members.insert(user.clone()) {
            return Err(duplicate());
        }
        g.meta.modified = meta.modified;
        t.counters.members_added += 1;
        return Ok(member_json(&user, &email, "USER"));
    }
    let kind = if t.google_group(&email).is_some() {
        "GROUP"
    } else if in_domain {
        return Err(not_found("email"));
    } else {
        "USER"
    };
    let g = t.groups.get_mut(id).ok_or_else(|| not_found("groupKey"))?;
    if g.google_others.insert(email.clone(), kind).is_some() {
        return Err(duplicate());
    }
    Ok(member_json("other", &email, kind))
}

fn delete_member(t: &mut Tenant, id: &str, key: &str) -> Result<(), Answer> {
    let user = t.google_user(key);
    let key = key.to_lowercase();
    let g = t.groups.get_mut(id).ok_or_else(|| not_found("groupKey"))?;
    let removed = match user {
        Some(user) => g.members.remove(&user),
        None => g.google_others.remove(&key).is_some(),
    };
    if !removed {
        return Err(not_found("memberKey"));
    }
    t.counters.members_removed += 1;
    Ok(())
}

impl Tenant {
    /// A user's id, from its id or its address (without case).
    fn google_user(&mut self, key: &str) -> Option<String> {
        if self.users.contains_key(key) {
            return Some(key.to_string());
        }
        let version = (self.users.len(), self.next_id);
        if self.user_index.as_ref().is_none_or(|(v, _)| *v != version) {
            let index = self
                .users
                .iter()
                .filter_map(|(id, u)| Some((u["userName"].as_str()?.to_lowercase(), id.clone())))
                .collect();
            self.user_index = Some((version, index));
        }
        let (_, index) = self.user_index.as_ref()?;
        index.get(&key.to_lowercase()).cloned()
    }

    /// A Google group's id, from its id or its address (without case).
    fn google_group(&self, key: &str) -> Option<String> {
        if let Some(g) = self.groups.get(key) {
            return g.email.is_some().then(|| key.to_string());
        }
        self.groups
            .iter()
            .find(|(id, g)| {
                g.email.is_some()
                    && (id.as_str() == key
                        || g.email
                            .as_deref()
                            .is_some_and(|e| e.eq_ignore_ascii_case(key)))
            })
            .map(|(id, _)| id.clone())
    }

    fn google_user_json(&self, id: &str) -> Value {
        let user = self.users.get(id).cloned().unwrap_or_default();
        let email = user["userName"].as_str().unwrap_or_default();
        let local = email.split('@').next().unwrap_or(email);
        let (given, family) = local.split_once('.').unwrap_or((local, ""));
        json!({
            "kind": "admin#directory#user",
            "id": id,
            "etag": "\"emu\"",
            "primaryEmail": email,
            "name": {"givenName": given, "familyName": family, "fullName": format!("{given} {family}").trim()},
            "isAdmin": false,
            "suspended": user["active"] == json!(false),
            "creationTime": user["meta"]["created"],
        })
    }

    fn google_group_json(&self, id: &str) -> Value {
        let Some(g) = self.groups.get(id) else {
            return Value::Null;
        };
        json!({
            "kind": "admin#directory#group",
            "id": id,
            "etag": "\"emu\"",
            "email": g.email,
            "name": g.display_name,
            "description": g.description.clone().unwrap_or_default(),
            "directMembersCount": (g.members.len() + g.google_others.len()).to_string(),
            "adminCreated": true,
        })
    }
}

/// The scopes a service account's token must carry for what rosterd does.
const SCOPES: [&str; 2] = [
    "https://www.googleapis.com/auth/admin.directory.group",
    "https://www.googleapis.com/auth/admin.directory.user.readonly",
];

/// `POST /{tenant}/token`: Google's OAuth 2.0 token endpoint for a service account's JWT
/// bearer grant (RFC 7523 section 2.1): signed RS256 by the account's key, for Google's
/// token audience (whatever the endpoint's URL), not expired, acting for a `sub`, and asking for scopes the account's
/// domain-wide delegation allows (the two rosterd needs); else `unauthorized_client`.
pub(super) fn issue_token(shared: &Shared, tenant: &str, body: &[u8]) -> Answer {
    let oauth = |status: StatusCode, error: &str, description: &str| {
        (
            status,
            Some(json!({"error": error, "error_description": description})),
        )
    };
    let Some((client_email, public_key)) = &shared.options.google_service_account else {
        return oauth(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "no service account",
        );
    };
    let form: BTreeMap<String, String> = url::form_urlencoded::parse(body).into_owned().collect();
    if form.get("grant_type").map(String::as_str)
        != Some("urn:ietf:params:oauth:grant-type:jwt-bearer")
    {
        return oauth(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "Invalid grant_type",
        );
    }
    let mut tenants = lock(&shared.tenants);
    let t = tenant_mut(&mut tenants, shared, tenant);
    let audience = crate::http::GOOGLE_TOKEN_AUDIENCE;
    let Ok(key) = jsonwebtoken::DecodingKey::from_rsa_pem(public_key.as_bytes()) else {
        return oauth(
            StatusCode::INTERNAL_SERVER_ERROR,
            "server_error",
            "the account's key",
        );
    };
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
    validation.set_audience(&[audience]);
    validation.set_issuer(&[client_email]);
    validation.set_required_spec_claims(&["exp", "iss", "aud"]);
    let assertion = form
        .get("assertion")
        .map(String::as_str)
        .unwrap_or_default();
    let claims = match jsonwebtoken::decode::<Value>(assertion, &key, &validation) {
        Ok(data) => data.claims,
        Err(e) => {
            return oauth(
                StatusCode::BAD_REQUEST,
                "invalid_grant",
                &format!("Invalid JWT: {e}"),
            )
        }
    };
    let scope = claims["scope"].as_str().unwrap_or_default();
    let asked: Vec<&str> = scope.split_whitespace().collect();
    let subject = claims["sub"].as_str().unwrap_or_default();
    if SCOPES.iter().any(|s| !asked.contains(s)) || !crate::config::is_address(subject) {
        return oauth(
            StatusCode::UNAUTHORIZED,
            "unauthorized_client",
            "Client is unauthorized to retrieve access tokens using this method, or client not authorized for any of the scopes requested.",
        );
    }
    let token = format!("ya29.emu-{tenant}-{}", t.tokens.len() + 1);
    t.tokens.insert(token.clone());
    (
        StatusCode::OK,
        Some(json!({"access_token": token, "expires_in": 3599, "token_type": "Bearer"})),
    )
}

impl Emulator {
    /// Gives the group named `display_name` an address, making it a Google group (as if
    /// made in the Admin console).
    pub fn set_group_email(&self, tenant: &str, display_name: &str, email: &str) -> bool {
        self.with_group(tenant, display_name, |g| {
            g.email = Some(email.to_lowercase());
        })
    }

    /// Adds to the Google group at `group_email` a member that is no user of the tenant,
    /// as an admin would: another group's address (`GROUP`) or an external one (`USER`).
    pub fn add_google_member(&self, tenant: &str, group_email: &str, email: &str) -> bool {
        self.with_tenant(tenant, |t| {
            let kind = if t.google_group(email).is_some() {
                "GROUP"
            } else {
                "USER"
            };
            let Some(id) = t.google_group(group_email) else {
                return false;
            };
            t.groups
                .get_mut(&id)
                .map(|g| g.google_others.insert(email.to_lowercase(), kind))
                .is_some()
        })
    }

    /// The Google groups, by address: their members' addresses, users and others.
    pub fn google_groups(&self, tenant: &str) -> BTreeMap<String, BTreeSet<String>> {
        self.with_tenant(tenant, |t| {
            t.groups
                .values()
                .filter_map(|g| {
                    let mut members = t.user_names(&g.members);
                    members.extend(g.google_others.keys().cloned());
                    Some((g.email.clone()?, members))
                })
                .collect()
        })
    }
}
