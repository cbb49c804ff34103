//! The emulator's HTTP side: the handler every request goes through (faults, auth,
//! quirks), the answers, and listing and search with `eq` filters and pages.

use super::*;

pub(super) type Answer = (StatusCode, Option<Value>);

pub(super) fn error(
    status: StatusCode,
    scim_type: Option<&str>,
    detail: impl Into<String>,
) -> Answer {
    let body = ErrorResponse::new(status.as_u16(), scim_type, detail);
    (status, serde_json::to_value(body).ok())
}

pub(super) async fn handle(
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
    if rest == ["oauth2", "v1", "token"] && method == Method::POST {
        return respond_okta(okta::issue_token(&shared, tenant, &body), None, None, None);
    }
    if rest == ["token"] && method == Method::POST {
        return respond(google::issue_token(&shared, tenant, &body), None);
    }
    // A search is a POST that changes nothing.
    let is_write = method != Method::GET && rest.last() != Some(&".search");
    let (faults, fault) = admit(&shared, tenant, &method, rest, &query, &headers, is_write);
    if faults.latency_ms > 0 {
        tokio::time::sleep(Duration::from_millis(faults.latency_ms)).await;
    }
    let okta = rest.starts_with(&["api", "v1"]);
    let google = google::is_directory(rest) || rest == ["batch"];
    match fault {
        Some(FaultKind::Status(code)) => {
            let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let retry = matches!(code, 429 | 503).then_some(faults.retry_after_seconds);
            count_status(&shared, tenant, code);
            if okta {
                let answer = okta::okta_error(status, "E0000009", "injected fault");
                return respond_okta(answer, None, None, retry);
            }
            if google {
                let answer = google::google_error(status, "backendError", "injected fault");
                return respond(answer, retry);
            }
            return respond(error(status, None, "injected fault"), retry);
        }
        Some(FaultKind::Drop) => return broken(),
        _ => {}
    }
    if google {
        let response = google::handle(&shared, tenant, &method, rest, &query, &headers, &body);
        if fault == Some(FaultKind::DropAfterApply) {
            return broken();
        }
        return response;
    }
    if okta {
        return handle_okta(
            &shared,
            tenant,
            &method,
            &uri,
            &rest[2..],
            &query,
            &headers,
            &body,
            fault,
        )
        .await;
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

/// A request to Okta's API (`rest` is the path after `/api/v1`), past the faults.
#[allow(
    clippy::too_many_arguments,
    reason = "the parts of one request, as handle has them"
)]
async fn handle_okta(
    shared: &Shared,
    tenant: &str,
    method: &Method,
    uri: &Uri,
    rest: &[&str],
    query: &BTreeMap<String, String>,
    headers: &HeaderMap,
    body: &[u8],
    fault: Option<FaultKind>,
) -> Response {
    let is_write = method != Method::GET;
    let (answer, next, limits) = {
        let mut tenants = lock(&shared.tenants);
        let t = tenant_mut(&mut tenants, shared, tenant);
        let (answer, next, limits) = if !authorised(t, headers) {
            let answer = okta::okta_error(
                StatusCode::UNAUTHORIZED,
                "E0000011",
                "Invalid token provided",
            );
            (answer, None, None)
        } else {
            match okta::take_limit(
                t,
                method,
                uri.path().trim_start_matches(&format!("/{tenant}")),
            ) {
                Err((limits, answer)) => (answer, None, Some(limits)),
                Ok(limits) => match okta::serve(t, method, rest, query, body) {
                    Ok((answer, next)) => (answer, next, limits),
                    Err(answer) => (answer, None, limits),
                },
            }
        };
        *t.counters.by_status.entry(answer.0.as_u16()).or_default() += 1;
        if is_write && answer.0.is_success() {
            t.counters.applied_writes += 1;
        }
        (answer, next, limits)
    };
    if fault == Some(FaultKind::DropAfterApply) {
        return broken();
    }
    respond_okta(answer, next, limits, None)
}

/// An answer of Okta's API: JSON, with its `Link` to the next page and its rate-limit
/// headers.
pub(super) fn respond_okta(
    (status, body): Answer,
    next: Option<String>,
    limits: Option<(u64, u64, i64)>,
    retry_after: Option<u64>,
) -> Response {
    let mut builder = Response::builder().status(status);
    if let Some(seconds) = retry_after {
        builder = builder.header(header::RETRY_AFTER, seconds.to_string());
    }
    if let Some(next) = next {
        builder = builder.header(header::LINK, format!("<{next}>; rel=\"next\""));
    }
    if let Some((limit, remaining, reset)) = limits {
        builder = builder
            .header("x-rate-limit-limit", limit.to_string())
            .header("x-rate-limit-remaining", remaining.to_string())
            .header("x-rate-limit-reset", reset.to_string());
    }
    let response = match body {
        Some(body) => builder
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(body.to_string())),
        None => builder.body(Body::empty()),
    };
    response.unwrap_or_else(|_| Response::new(Body::empty()))
}

/// Counts a request on its tenant (its kind, its arrival, a write's agent) and picks the
/// fault it meets, if any.
fn admit(
    shared: &Shared,
    tenant: &str,
    method: &Method,
    rest: &[&str],
    query: &BTreeMap<String, String>,
    headers: &HeaderMap,
    is_write: bool,
) -> (Faults, Option<FaultKind>) {
    let mut tenants = lock(&shared.tenants);
    let t = tenant_mut(&mut tenants, shared, tenant);
    if is_write {
        t.counters.writes += 1;
    } else {
        t.counters.reads += 1;
    }
    if *method == Method::GET && rest == ["Users"] && !query.contains_key("filter") {
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
}

/// How long the tenant's quirks hold this answer back: a page of a listing with
/// [`Quirks::slow_pages_ms`], every Nth group PATCH with [`Quirks::slow_patch_every`].
pub(super) fn quirk_delay(t: &mut Tenant, method: &Method, rest: &[&str]) -> Duration {
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

pub(super) fn count_status(shared: &Shared, tenant: &str, code: u16) {
    let mut tenants = lock(&shared.tenants);
    let t = tenant_mut(&mut tenants, shared, tenant);
    *t.counters.by_status.entry(code).or_default() += 1;
}

pub(super) fn respond((status, body): Answer, retry_after: Option<u64>) -> Response {
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
pub(super) fn broken() -> Response {
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

/// What a request's handler answers: an answer, or the error that refused the request.
pub(super) type Served = Result<Answer, Answer>;

pub(super) fn serve(
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
pub(super) fn resources(
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

pub(super) fn not_found(kind: &str, id: &str) -> Answer {
    error(
        StatusCode::NOT_FOUND,
        None,
        format!("{kind} `{id}` not found"),
    )
}

/// Every item of a discovery endpoint, as one page.
pub(super) fn listed(items: Vec<Value>) -> Value {
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
pub(super) struct Page {
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
pub(super) fn search(t: &Tenant, kinds: &[Kind], body: &[u8]) -> Served {
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

pub(super) fn list(t: &Tenant, kinds: &[Kind], page: &Page) -> Served {
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

pub(super) enum Found<'t> {
    User(&'t Value),
    Group(&'t String, &'t EmuGroup),
}

/// `attr eq "value"`, or several of them joined by `or`: the filter forms rosterd sends.
pub(super) fn parse_filter(filter: &str) -> Result<Vec<(String, String)>, String> {
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
pub(super) fn parse_body<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, Answer> {
    serde_json::from_slice(body).map_err(|e| {
        error(
            StatusCode::BAD_REQUEST,
            Some("invalidSyntax"),
            e.to_string(),
        )
    })
}
