//! The same tenants seen through Okta's management API, under `/{tenant}/api/v1`: what a
//! target of `kind: okta` uses, with Okta's behaviour as its API reference describes it.
//!
//! - Users: `profile.login` is the userName, `profile.email` the first email (or the
//!   userName when it is an address); `GET /users` lists them by id with `limit` and an
//!   opaque `after` cursor in a `Link: rel="next"` header, or searches them
//!   (`search=profile.login eq "..."`, terms joined by `and` and `or`, values compared
//!   without case); `GET /users/{id or login}`.
//! - Groups: a type (`OKTA_GROUP`, unless set otherwise by hand) and a profile with `name`
//!   and `description`; found by search on `profile.name` or `type`, created by POST,
//!   renamed by PUT of the whole profile, deleted; names are unique among OKTA_GROUPs.
//! - Members: `GET /groups/{id}/users` paged as users are; `PUT` and `DELETE
//!   /groups/{id}/users/{userId}` add and remove one member (both idempotent; a user id that
//!   is no user's is refused with 404, as Okta does); only an OKTA_GROUP's members change.
//! - Group rules (`GET /groups/rules`), set by hand.
//! - Errors as Okta writes them (`errorCode`, `errorSummary`, `errorCauses`), and, when
//!   [`Quirks::okta_rate_limit_per_minute`] is set, its rate limits: each bucket of
//!   [`crate::okta::bucket`] allows that many requests a minute, every answer says what is
//!   left in `X-Rate-Limit-Limit`, `-Remaining` and `-Reset`, and a request beyond it gets
//!   429 `E0000047`.

use super::*;

/// Members and users per page unless `limit` says otherwise.
const DEFAULT_LIMIT: usize = 200;
const MAX_LIMIT: usize = 1_000;

/// An answer, and the next page's URL for its `Link` header.
pub(super) type OktaServed = Result<(Answer, Option<String>), Answer>;

/// An error as Okta writes it.
pub(super) fn okta_error(status: StatusCode, code: &str, summary: impl Into<String>) -> Answer {
    okta_error_with(status, code, summary, &[])
}

fn okta_error_with(
    status: StatusCode,
    code: &str,
    summary: impl Into<String>,
    causes: &[String],
) -> Answer {
    let causes: Vec<Value> = causes.iter().map(|c| json!({"errorSummary": c})).collect();
    (
        status,
        Some(json!({
            "errorCode": code,
            "errorSummary": summary.into(),
            "errorLink": code,
            "errorId": "oae-emulator",
            "errorCauses": causes,
        })),
    )
}

fn not_found(id: &str, kind: &str) -> Answer {
    okta_error(
        StatusCode::NOT_FOUND,
        "E0000007",
        format!("Not found: Resource not found: {id} ({kind})"),
    )
}

/// What a rate-limit bucket says in an answer's headers: its limit, what is left, and when
/// it resets (epoch seconds).
pub(super) type Limits = (u64, u64, i64);

/// Counts a request against its rate-limit bucket: the headers to answer with, or those and
/// the 429 when the bucket is spent.
pub(super) fn take_limit(
    t: &mut Tenant,
    method: &Method,
    path: &str,
) -> Result<Option<Limits>, (Limits, Answer)> {
    let method = reqwest::Method::from_bytes(method.as_str().as_bytes()).unwrap_or_default();
    let bucket = crate::okta::bucket(&method, path);
    *t.counters
        .okta_buckets
        .entry(bucket.to_string())
        .or_default() += 1;
    let limit = match t.quirks.okta_rate_limit_per_minute {
        0 if t.quirks.okta_documented_limits => {
            crate::okta::documented_per_minute(bucket)
                * t.quirks.okta_documented_limits_times.max(1)
        }
        0 => return Ok(None),
        limit => limit,
    };
    let span = i64::try_from(t.quirks.okta_rate_limit_window_seconds.max(1)).unwrap_or(60);
    let now = crate::clock::now_utc().timestamp();
    let window = t.rate_windows.entry(bucket).or_insert((now, 0));
    if now >= window.0 + span {
        *window = (now, 0);
    }
    let reset = window.0 + span;
    if window.1 >= limit {
        return Err((
            (limit, 0, reset),
            okta_error(
                StatusCode::TOO_MANY_REQUESTS,
                "E0000047",
                "API call exceeded rate limit due to too many requests.",
            ),
        ));
    }
    window.1 += 1;
    Ok(Some((limit, limit - window.1, reset)))
}

/// The scopes a service app's token must carry for what rosterd does.
const SCOPES: [&str; 2] = ["okta.groups.manage", "okta.users.read"];

/// `POST /{tenant}/oauth2/v1/token` for the service app of [`Options::okta_service_app`]:
/// the client-credentials grant with a client assertion (RFC 7523) signed RS256 by the app's
/// key, for this endpoint, from the app, not expired; the scopes rosterd needs.
pub(super) fn issue_token(shared: &Shared, tenant: &str, body: &[u8]) -> Answer {
    let oauth = |status: StatusCode, error: &str, description: &str| {
        (
            status,
            Some(json!({"error": error, "error_description": description})),
        )
    };
    let Some((client_id, public_key)) = &shared.options.okta_service_app else {
        return oauth(StatusCode::UNAUTHORIZED, "invalid_client", "no service app");
    };
    let form: BTreeMap<String, String> = url::form_urlencoded::parse(body).into_owned().collect();
    if form.get("grant_type").map(String::as_str) != Some("client_credentials") {
        return oauth(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "client_credentials only",
        );
    }
    if form.get("client_assertion_type").map(String::as_str)
        != Some("urn:ietf:params:oauth:client-assertion-type:jwt-bearer")
    {
        return oauth(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "a client assertion is required",
        );
    }
    let mut tenants = lock(&shared.tenants);
    let t = tenant_mut(&mut tenants, shared, tenant);
    let audience = format!("{}/oauth2/v1/token", t.base);
    let Ok(key) = jsonwebtoken::DecodingKey::from_rsa_pem(public_key.as_bytes()) else {
        return oauth(
            StatusCode::INTERNAL_SERVER_ERROR,
            "server_error",
            "the app's key",
        );
    };
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
    validation.set_audience(&[&audience]);
    validation.set_issuer(&[client_id]);
    validation.sub = Some(client_id.clone());
    validation.set_required_spec_claims(&["exp", "iss", "sub", "aud"]);
    let assertion = form
        .get("client_assertion")
        .map(String::as_str)
        .unwrap_or_default();
    if let Err(e) = jsonwebtoken::decode::<Value>(assertion, &key, &validation) {
        return oauth(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            &format!("The client_assertion is invalid: {e}"),
        );
    }
    let scope = form.get("scope").cloned().unwrap_or_default();
    let asked: Vec<&str> = scope.split_whitespace().collect();
    if SCOPES.iter().any(|s| !asked.contains(s)) {
        return oauth(
            StatusCode::BAD_REQUEST,
            "invalid_scope",
            "The authorization server resource does not have any configured default scopes",
        );
    }
    let token = format!("emu-okta-{tenant}-{}", t.tokens.len() + 1);
    t.tokens.insert(token.clone());
    (
        StatusCode::OK,
        Some(json!({
            "token_type": "Bearer",
            "expires_in": 3600,
            "access_token": token,
            "scope": scope,
        })),
    )
}

/// Serves `rest` (the path after `/api/v1`).
pub(super) fn serve(
    t: &mut Tenant,
    method: &Method,
    rest: &[&str],
    query: &BTreeMap<String, String>,
    body: &[u8],
) -> OktaServed {
    let ok = |v: Value| Ok(((StatusCode::OK, Some(v)), None));
    let done = || Ok(((StatusCode::NO_CONTENT, None), None));
    match (method.as_str(), rest) {
        ("GET", ["users"]) => list_users(t, query),
        ("GET", ["users", id]) => {
            let id = t
                .user_by_id_or_login(id)
                .ok_or_else(|| not_found(id, "User"))?;
            ok(t.okta_user(&id))
        }
        ("GET", ["groups"]) => list_groups(t, query),
        ("POST", ["groups"]) => {
            let id = create_group(t, body)?;
            ok(t.okta_group(&id))
        }
        ("GET", ["groups", "rules"]) if t.quirks.okta_rules_forbidden => Err(okta_error(
            StatusCode::FORBIDDEN,
            "E0000006",
            "You do not have permission to perform the requested action",
        )),
        ("GET", ["groups", "rules"]) => ok(Value::Array(t.group_rules.clone())),
        ("GET", ["groups", id]) => {
            t.groups
                .get(*id)
                .ok_or_else(|| not_found(id, "UserGroup"))?;
            ok(t.okta_group(id))
        }
        ("PUT", ["groups", id]) => {
            update_group(t, id, body)?;
            ok(t.okta_group(id))
        }
        ("DELETE", ["groups", id]) => {
            changeable(t, id)?;
            t.groups.remove(*id);
            done()
        }
        ("GET", ["groups", id, "users"]) => {
            let g = t
                .groups
                .get(*id)
                .ok_or_else(|| not_found(id, "UserGroup"))?;
            let members: Vec<String> = g
                .members
                .iter()
                .filter(|m| t.users.contains_key(*m))
                .cloned()
                .collect();
            page_of_users(t, members, query, &format!("groups/{id}/users"))
        }
        ("PUT" | "DELETE", ["groups", id, "users", user]) => {
            changeable(t, id)?;
            if !t.users.contains_key(*user) {
                return Err(not_found(user, "User"));
            }
            let adding = method == Method::PUT;
            let meta = t.touch(None);
            if let Some(g) = t.groups.get_mut(*id) {
                let changed = if adding {
                    g.members.insert(user.to_string())
                } else {
                    g.members.remove(*user)
                };
                if changed {
                    g.meta.modified = meta.modified;
                    if adding {
                        t.counters.members_added += 1;
                    } else {
                        t.counters.members_removed += 1;
                    }
                }
            }
            done()
        }
        (_, ["users" | "groups", ..]) => Err(okta_error(
            StatusCode::METHOD_NOT_ALLOWED,
            "E0000022",
            "The endpoint does not support the provided HTTP method",
        )),
        _ => Err(okta_error(
            StatusCode::NOT_FOUND,
            "E0000007",
            "Not found: Resource not found: the endpoint",
        )),
    }
}

/// The group `id`, when it is there and of the type whose profile and members an API
/// client may change.
fn changeable<'t>(t: &'t Tenant, id: &str) -> Result<&'t EmuGroup, Answer> {
    let g = t.groups.get(id).ok_or_else(|| not_found(id, "UserGroup"))?;
    if g.okta_type != crate::okta::client::OKTA_GROUP {
        return Err(unsupported());
    }
    Ok(g)
}

fn unsupported() -> Answer {
    okta_error(
        StatusCode::BAD_REQUEST,
        "E0000060",
        "Unsupported operation: only an OKTA_GROUP's profile and members can be changed",
    )
}

fn list_users(t: &Tenant, query: &BTreeMap<String, String>) -> OktaServed {
    let ids: Vec<String> = match query.get("search") {
        Some(search) => {
            let expr = Search::parse(search).map_err(invalid_search)?;
            t.users
                .keys()
                .filter(|id| expr.matches(&|attr| t.okta_user_value(id, attr)))
                .cloned()
                .collect()
        }
        None => t
            .users
            .iter()
            .filter(|(_, u)| u["active"] != json!(false))
            .map(|(id, _)| id.clone())
            .collect(),
    };
    page_of_users(t, ids, query, "users")
}

fn invalid_search(e: String) -> Answer {
    okta_error(
        StatusCode::BAD_REQUEST,
        "E0000031",
        format!("Invalid search: {e}"),
    )
}

/// A page of `ids` (sorted) from after `after`, with the next page's link.
fn page_of_users(
    t: &Tenant,
    mut ids: Vec<String>,
    query: &BTreeMap<String, String>,
    path: &str,
) -> OktaServed {
    ids.sort();
    let (page, next) = page(&ids, query, &t.base, path)?;
    let users = page.iter().map(|id| t.okta_user(id)).collect();
    Ok(((StatusCode::OK, Some(Value::Array(users))), next))
}

/// The slice of `ids` a request's `limit` and `after` ask for, and the next page's URL.
fn page<'a>(
    ids: &'a [String],
    query: &BTreeMap<String, String>,
    base: &str,
    path: &str,
) -> Result<(&'a [String], Option<String>), Answer> {
    let limit = match query.get("limit") {
        None => DEFAULT_LIMIT,
        Some(l) => l
            .parse::<usize>()
            .ok()
            .filter(|&l| l >= 1)
            .ok_or_else(|| {
                okta_error(
                    StatusCode::BAD_REQUEST,
                    "E0000001",
                    "Api validation failed: limit",
                )
            })?
            .min(MAX_LIMIT),
    };
    let start = match query.get("after") {
        Some(after) => ids.partition_point(|id| id.as_str() <= after.as_str()),
        None => 0,
    };
    let end = (start + limit).min(ids.len());
    let slice = &ids[start..end];
    let next = (end < ids.len()).then(|| {
        let mut url = format!(
            "{base}/api/v1/{path}?limit={limit}&after={}",
            slice[slice.len() - 1]
        );
        if let Some(search) = query.get("search") {
            url.push_str("&search=");
            url.push_str(&crate::http::encode(search));
        }
        url
    });
    Ok((slice, next))
}

fn list_groups(t: &Tenant, query: &BTreeMap<String, String>) -> OktaServed {
    let search = query.get("search").or(query.get("filter"));
    let expr = match search {
        Some(s) => Some(Search::parse(s).map_err(invalid_search)?),
        None => None,
    };
    let prefix = query.get("q").map(|q| q.to_lowercase());
    let ids: Vec<String> = t
        .groups
        .iter()
        .filter(|(id, g)| {
            expr.as_ref().is_none_or(|e| {
                e.matches(&|attr| match attr {
                    "profile.name" => Some(g.display_name.clone()),
                    "profile.description" => g.description.clone(),
                    "type" => Some(g.okta_type.clone()),
                    "id" => Some(id.to_string()),
                    _ => None,
                })
            }) && prefix
                .as_ref()
                .is_none_or(|p| g.display_name.to_lowercase().starts_with(p))
        })
        .map(|(id, _)| id.clone())
        .collect();
    let (page, next) = page(&ids, query, &t.base, "groups")?;
    let groups = page.iter().map(|id| t.okta_group(id)).collect();
    Ok(((StatusCode::OK, Some(Value::Array(groups))), next))
}

/// The `profile` of a group body: its name, and its description.
fn profile(body: &[u8]) -> Result<(String, Option<String>), Answer> {
    let body: Value = serde_json::from_slice(body).map_err(|e| {
        okta_error(
            StatusCode::BAD_REQUEST,
            "E0000003",
            format!("The request body was not well-formed: {e}"),
        )
    })?;
    let name = body["profile"]["name"]
        .as_str()
        .filter(|n| !n.trim().is_empty())
        .ok_or_else(|| {
            okta_error_with(
                StatusCode::BAD_REQUEST,
                "E0000001",
                "Api validation failed: name",
                &["name: The field cannot be left blank".into()],
            )
        })?;
    Ok((
        name.to_string(),
        body["profile"]["description"].as_str().map(str::to_string),
    ))
}

/// Refuses a name another OKTA_GROUP has (names compare without case).
fn check_name(t: &Tenant, name: &str, except: Option<&str>) -> Result<(), Answer> {
    let taken = t.groups.iter().any(|(id, g)| {
        Some(id.as_str()) != except
            && g.okta_type == crate::okta::client::OKTA_GROUP
            && g.display_name.eq_ignore_ascii_case(name)
    });
    if taken && t.quirks.unique_display_names {
        return Err(okta_error_with(
            StatusCode::BAD_REQUEST,
            "E0000001",
            "Api validation failed: name",
            &["name: An object with this field already exists in the current organization".into()],
        ));
    }
    Ok(())
}

fn create_group(t: &mut Tenant, body: &[u8]) -> Result<String, Answer> {
    let (name, description) = profile(body)?;
    check_name(t, &name, None)?;
    let id = t.new_id('g');
    let meta = t.touch(None);
    let mut g = EmuGroup::new(name, BTreeSet::new(), meta);
    g.description = description;
    t.groups.insert(id.clone(), g);
    Ok(id)
}

fn update_group(t: &mut Tenant, id: &str, body: &[u8]) -> Result<(), Answer> {
    changeable(t, id)?;
    let (name, description) = profile(body)?;
    check_name(t, &name, Some(id))?;
    let meta = t.touch(None);
    if let Some(g) = t.groups.get_mut(id) {
        g.display_name = name;
        // A PUT replaces the whole profile: a description left out is gone.
        g.description = description;
        g.meta.modified = meta.modified;
    }
    Ok(())
}

impl Tenant {
    /// A user's id, from its id or its login (compared without case).
    fn user_by_id_or_login(&self, key: &str) -> Option<String> {
        if self.users.contains_key(key) {
            return Some(key.to_string());
        }
        self.users
            .iter()
            .find(|(_, u)| {
                u["userName"]
                    .as_str()
                    .is_some_and(|n| n.eq_ignore_ascii_case(key))
            })
            .map(|(id, _)| id.clone())
    }

    /// A user's attribute as Okta's search names it.
    fn okta_user_value(&self, id: &str, attribute: &str) -> Option<String> {
        let user = self.users.get(id)?;
        let login = user["userName"].as_str().unwrap_or_default();
        match attribute {
            "id" => Some(id.to_string()),
            "profile.login" => Some(login.to_string()),
            "profile.email" => user["emails"][0]["value"]
                .as_str()
                .map(str::to_string)
                .or_else(|| login.contains('@').then(|| login.to_string())),
            "status" => Some(okta_status(user).to_string()),
            _ => None,
        }
    }

    fn okta_user(&self, id: &str) -> Value {
        let user = self.users.get(id).cloned().unwrap_or_default();
        let login = user["userName"].as_str().unwrap_or_default();
        let (first, last) = login
            .split('@')
            .next()
            .unwrap_or(login)
            .split_once('.')
            .unwrap_or((login, ""));
        json!({
            "id": id,
            "status": okta_status(&user),
            "created": user["meta"]["created"],
            "lastUpdated": user["meta"]["lastModified"],
            "type": {"id": "oty-emulator"},
            "profile": {
                "login": login,
                "email": self.okta_user_value(id, "profile.email"),
                "firstName": first,
                "lastName": last,
            },
            "_links": {"self": {"href": format!("{}/api/v1/users/{id}", self.base)}},
        })
    }

    fn okta_group(&self, id: &str) -> Value {
        let Some(g) = self.groups.get(id) else {
            return Value::Null;
        };
        json!({
            "id": id,
            "type": g.okta_type,
            "created": g.meta.created,
            "lastUpdated": g.meta.modified,
            "lastMembershipUpdated": g.meta.modified,
            "objectClass": ["okta:user_group"],
            "profile": {"name": g.display_name, "description": g.description},
            "_links": {
                "self": {"href": format!("{}/api/v1/groups/{id}", self.base)},
                "users": {"href": format!("{}/api/v1/groups/{id}/users", self.base)},
            },
        })
    }
}

fn okta_status(user: &Value) -> &'static str {
    if user["active"] == json!(false) {
        "DEPROVISIONED"
    } else {
        "ACTIVE"
    }
}

/// A search expression: `eq` comparisons joined by `and` (binding first) and `or`.
struct Search {
    /// Alternatives, each a list of (attribute, value) that must all hold.
    any: Vec<Vec<(String, String)>>,
}

impl Search {
    fn parse(text: &str) -> Result<Search, String> {
        let tokens = tokenize(text)?;
        let mut any = vec![Vec::new()];
        let mut i = 0;
        loop {
            let (Some(attr), Some(op), Some(value)) =
                (tokens.get(i), tokens.get(i + 1), tokens.get(i + 2))
            else {
                return Err("expected ATTRIBUTE eq \"VALUE\"".into());
            };
            let (Token::Word(attr), Token::Word(op), Token::Quoted(value)) = (attr, op, value)
            else {
                return Err("expected ATTRIBUTE eq \"VALUE\"".into());
            };
            if !op.eq_ignore_ascii_case("eq") {
                return Err(format!("the emulator compares with `eq` only, not `{op}`"));
            }
            if let Some(all) = any.last_mut() {
                all.push((attr.clone(), value.clone()));
            }
            i += 3;
            match tokens.get(i) {
                None => return Ok(Search { any }),
                Some(Token::Word(w)) if w.eq_ignore_ascii_case("and") => {}
                Some(Token::Word(w)) if w.eq_ignore_ascii_case("or") => any.push(Vec::new()),
                Some(_) => return Err("expected `and` or `or`".into()),
            }
            i += 1;
        }
    }

    fn matches(&self, value: &dyn Fn(&str) -> Option<String>) -> bool {
        self.any.iter().any(|all| {
            all.iter()
                .all(|(attr, want)| value(attr).is_some_and(|have| have.eq_ignore_ascii_case(want)))
        })
    }
}

enum Token {
    Word(String),
    Quoted(String),
}

fn tokenize(text: &str) -> Result<Vec<Token>, String> {
    let mut out = Vec::new();
    let mut chars = text.chars().peekable();
    while let Some(&c) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
        } else if c == '"' {
            chars.next();
            let mut s = String::new();
            loop {
                match chars.next() {
                    Some('\\') => s.extend(chars.next()),
                    Some('"') => break,
                    Some(c) => s.push(c),
                    None => return Err("an unterminated string".into()),
                }
            }
            out.push(Token::Quoted(s));
        } else {
            let mut s = String::new();
            while let Some(&c) = chars.peek() {
                if c.is_whitespace() || c == '"' {
                    break;
                }
                s.push(c);
                chars.next();
            }
            out.push(Token::Word(s));
        }
    }
    Ok(out)
}
