//! The admin API: JSON over HTTP. `/healthz` and `/readyz` are open (for probes); every
//! other route needs `Authorization: Bearer TOKEN`, compared in constant time. Errors are
//! JSON objects with an `error` message that names no internals.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, Query, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde_json::{json, Value};

use super::{Job, Shared};

type Api = Arc<Shared>;

/// How long a connection may stay open with no request in flight.
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// Open files kept free of connections, for the database, the rule files and the logs.
const FILES_KEPT: u64 = 256;
/// Serves the API until `stop`. Each connection gets `daemon.api_header_timeout_seconds` to
/// send its headers, and at most [`connection_limit`] are open at once, so half-sent
/// requests can neither hold the probes off nor take the files that the rules reload needs.
pub async fn serve(
    listener: tokio::net::TcpListener,
    shared: Api,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let daemon = shared.config().daemon.clone();
    let header_timeout = Duration::from_secs_f64(daemon.api_header_timeout_seconds);
    let app = router(Arc::clone(&shared));
    // When every connection is taken, a few more are kept for the health probes alone, so
    // that an orchestrator does not restart a daemon that is only busy.
    let probes = health_router(shared);
    let limit = connection_limit(daemon.api_max_connections);
    let open = Arc::new(tokio::sync::Semaphore::new(limit));
    let reserved = Arc::new(tokio::sync::Semaphore::new(PROBE_CONNECTIONS));
    let per_client = Arc::new(PerClient {
        open: std::sync::Mutex::new(std::collections::HashMap::new()),
        limit: daemon.api_max_connections_per_client,
    });
    let mut refused_logged = false;
    let mut client_refusals_logged: Option<std::net::IpAddr> = None;
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = stop.wait_for(|s| *s) => break,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(e) => {
                // Out of files, most likely: wait for connections to close.
                tracing::warn!("admin API: cannot accept a connection: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Some(slot) = PerClient::take(&per_client, peer.ip()) else {
            if client_refusals_logged != Some(peer.ip()) {
                tracing::warn!(
                    client = %peer.ip(),
                    limit = per_client.limit,
                    "admin API: one client holds too many open connections; closing its new ones"
                );
                client_refusals_logged = Some(peer.ip());
            }
            drop(stream);
            continue;
        };
        let (permit, app) = match Arc::clone(&open).try_acquire_owned() {
            Ok(permit) => {
                refused_logged = false;
                (permit, app.clone())
            }
            Err(_) => {
                if !refused_logged {
                    tracing::warn!(
                        limit,
                        "admin API: too many open connections; new ones are answered only at /healthz and /readyz"
                    );
                    refused_logged = true;
                }
                match Arc::clone(&reserved).try_acquire_owned() {
                    Ok(permit) => (permit, probes.clone()),
                    Err(_) => {
                        drop(stream);
                        continue;
                    }
                }
            }
        };
        // The client's address, for what is limited per client (the console's sign-ins).
        let app = app.layer(axum::Extension(super::ClientAddr(peer.ip())));
        let service = hyper_util::service::TowerToHyperService::new(app);
        let mut stop = stop.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let _slot = slot;
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(header_timeout);
            let conn = builder.serve_connection(hyper_util::rt::TokioIo::new(stream), service);
            tokio::pin!(conn);
            let idle = tokio::time::sleep(IDLE_TIMEOUT);
            tokio::pin!(idle);
            tokio::select! {
                _ = conn.as_mut() => return,
                _ = stop.wait_for(|s| *s) => {}
                () = &mut idle => {}
            }
            // Stopping, or open too long: finish the request in flight, then close.
            conn.as_mut().graceful_shutdown();
            let _ = tokio::time::timeout(Duration::from_secs(5), conn).await;
        });
    }
}

/// Connections at once: `most`, or fewer when the process may not open that many files. The
/// soft limit on open files is raised to the hard one first (containers often start with
/// 1,024).
fn connection_limit(most: u64) -> usize {
    let files = match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(n) => n,
        Err(e) => {
            tracing::warn!("cannot read the open files limit: {e}");
            1_024
        }
    };
    let limit = files.saturating_sub(FILES_KEPT).clamp(16, most);
    tracing::debug!(
        open_files = files,
        connections = limit,
        "admin API connection limit"
    );
    usize::try_from(limit).unwrap_or(16)
}

/// Connections kept for `/healthz` and `/readyz` when every other one is taken.
const PROBE_CONNECTIONS: usize = 16;

/// Open API connections per client address.
struct PerClient {
    open: std::sync::Mutex<std::collections::HashMap<std::net::IpAddr, u64>>,
    limit: u64,
}

/// One open connection of a client, given back when it closes.
struct ClientSlot {
    ip: std::net::IpAddr,
    of: Arc<PerClient>,
}

impl PerClient {
    fn take(this: &Arc<PerClient>, ip: std::net::IpAddr) -> Option<ClientSlot> {
        let mut open = crate::locks::lock(&this.open);
        let n = open.entry(ip).or_insert(0);
        if *n >= this.limit {
            return None;
        }
        *n += 1;
        Some(ClientSlot {
            ip,
            of: Arc::clone(this),
        })
    }
}

impl Drop for ClientSlot {
    fn drop(&mut self) {
        let mut open = crate::locks::lock(&self.of.open);
        if let Some(n) = open.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                open.remove(&self.ip);
            }
        }
    }
}

/// What a connection beyond the limit may ask: whether the daemon lives and is ready.
fn health_router(shared: Api) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .fallback(|| async {
            error(
                StatusCode::SERVICE_UNAVAILABLE,
                "too many open connections: only /healthz and /readyz are answered on this one",
            )
        })
        .with_state(shared)
}

fn router(shared: Api) -> Router {
    let private = Router::new()
        .route("/metrics", get(metrics))
        .route("/api/v1/groups", get(groups))
        .route("/api/v1/groups/{name}", get(group))
        .route("/api/v1/groups/{name}/members", get(members))
        .route("/api/v1/groups/{name}/push", post(push_now))
        .route("/api/v1/workers/{key}/groups", get(worker_groups))
        .route("/api/v1/explain", get(explain))
        .route("/api/v1/runs", get(runs).post(run_now))
        .route("/api/v1/runs/{id}", get(run))
        .route("/api/v1/holds", get(holds))
        .route("/api/v1/holds/{id}", get(hold))
        .route("/api/v1/holds/{id}/approve", post(approve))
        .route("/api/v1/requests", get(access_requests))
        .route("/api/v1/requests/{id}", get(access_request))
        .route("/api/v1/rules", get(rules_state))
        .route("/api/v1/guardrails", get(guardrails))
        .route("/api/v1/targets", get(targets))
        .layer(axum::middleware::from_fn_with_state(
            Arc::clone(&shared),
            authorize,
        ));
    let mut router = Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .merge(private);
    if let Some(console) = super::console_router(&shared) {
        router = router.merge(console);
    }
    router
        .fallback(|| async { error(StatusCode::NOT_FOUND, "no such route") })
        .with_state(shared)
}

fn error(status: StatusCode, message: &str) -> Response {
    (status, json_body(&json!({ "error": message }))).into_response()
}

fn json_body(v: &Value) -> ([(header::HeaderName, &'static str); 1], String) {
    (
        [(header::CONTENT_TYPE, "application/json")],
        serde_json::to_string_pretty(v).unwrap_or_default(),
    )
}

fn ok(v: Value) -> Response {
    (StatusCode::OK, json_body(&v)).into_response()
}

/// Why a request failed, answered as JSON with its status: handlers return
/// `Result<Response, ApiError>` and use `?`.
#[derive(Debug)]
pub(super) enum ApiError {
    /// The client's mistake, or what it asked for is not there: told as it is.
    Client(StatusCode, String),
    /// rosterd's own failure (the store, most likely): logged here and answered without its
    /// details.
    Internal(String),
}

impl ApiError {
    fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError::Client(status, message.into())
    }
}

impl From<crate::store::StoreError> for ApiError {
    fn from(e: crate::store::StoreError) -> ApiError {
        match e {
            crate::store::StoreError::NotFound(m) => ApiError::Client(StatusCode::NOT_FOUND, m),
            crate::store::StoreError::Conflict(m) => ApiError::Client(StatusCode::CONFLICT, m),
            other => ApiError::Internal(other.to_string()),
        }
    }
}

impl From<super::DaemonError> for ApiError {
    fn from(e: super::DaemonError) -> ApiError {
        match e {
            super::DaemonError::Store(e) => e.into(),
            other => ApiError::Internal(other.to_string()),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match self {
            ApiError::Client(status, message) => error(status, &message),
            ApiError::Internal(e) => {
                tracing::error!("admin API: {e}");
                error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "the request failed; see the daemon's log",
                )
            }
        }
    }
}

type ApiResult = Result<Response, ApiError>;

async fn authorize(State(shared): State<Api>, request: Request, next: Next) -> Response {
    let given = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    if !crate::secret::same(given, shared.token.expose()) {
        let mut response = error(StatusCode::UNAUTHORIZED, "a valid bearer token is required");
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            header::HeaderValue::from_static("Bearer"),
        );
        return response;
    }
    next.run(request).await
}

async fn healthz() -> Response {
    ok(json!({ "status": "ok" }))
}

/// How long `/readyz` waits for the database: a probe's own timeout is often 1 to 3 s, and
/// an answer that comes too late is no answer.
const READY_WAIT: std::time::Duration = std::time::Duration::from_millis(1_500);

async fn readyz(State(shared): State<Api>) -> Response {
    let error = match tokio::time::timeout(READY_WAIT, shared.store.runs(1)).await {
        Ok(Ok(_)) => {
            return ok(json!({
                "status": "ready",
                "groups": shared.rules().groups().len(),
                "leader": shared.leadership.leading(),
            }))
        }
        Ok(Err(e)) => {
            tracing::warn!("not ready: database: {e}");
            "the database is unreachable"
        }
        Err(_) => {
            tracing::warn!(
                "not ready: the database did not answer within {} ms",
                READY_WAIT.as_millis()
            );
            "the database did not answer within 1.5 s"
        }
    };
    (
        StatusCode::SERVICE_UNAVAILABLE,
        json_body(&json!({ "status": "not ready", "error": error })),
    )
        .into_response()
}

async fn metrics(State(shared): State<Api>) -> ApiResult {
    let sizes = shared.store.group_sizes().await?;
    let mut unprovisioned: BTreeMap<String, usize> = BTreeMap::new();
    let mut seen = std::collections::BTreeSet::new();
    for row in shared.store.unprovisioned().await? {
        if seen.insert((row.target.clone(), row.worker_key.clone())) {
            *unprovisioned.entry(row.target).or_default() += 1;
        }
    }
    let violations: Vec<crate::engine::guardrails::Violation> =
        shared.store.current_violations().await?;
    let targets = target_status(&shared).await?;
    Ok((
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        shared.metrics.render(
            &sizes,
            &unprovisioned,
            &progress(&shared),
            &violations,
            &targets,
            shared.leadership.leading(),
        ),
    )
        .into_response())
}

/// Every target's status, from the one model `rosterd status` and the console read.
async fn target_status(
    shared: &Api,
) -> Result<BTreeMap<String, crate::push::status::TargetStatus>, crate::store::StoreError> {
    let rules = shared.rules();
    crate::push::status::targets(
        &shared.config(),
        Some(rules.as_ref()),
        &shared.store,
        crate::clock::now_utc(),
    )
    .await
}

/// `GET /api/v1/targets`: what `rosterd status --format json` says of each target's health,
/// unsent and refused requests, holds and groups read back.
async fn targets(State(shared): State<Api>) -> ApiResult {
    Ok(ok(json!({ "targets": target_status(&shared).await? })))
}

async fn groups(State(shared): State<Api>) -> ApiResult {
    let sizes = shared.store.group_sizes().await?;
    let rules = shared.rules();
    let list: Vec<Value> = rules
        .groups()
        .iter()
        .map(|g| {
            json!({
                "name": g.name,
                "kind": g.kind.to_string(),
                "members": sizes.get(&g.name).copied().unwrap_or(0),
                "push": g.push.iter().map(|p| p.target.clone()).collect::<Vec<_>>(),
            })
        })
        .collect();
    Ok(ok(json!({ "groups": list })))
}

async fn group(State(shared): State<Api>, Path(name): Path<String>) -> ApiResult {
    let rules = shared.rules();
    let id = rules
        .lookup(&name)
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, "no such group"))?;
    let g = rules.group(id);
    let members = shared
        .store
        .group_sizes()
        .await?
        .get(&name)
        .copied()
        .unwrap_or(0);
    // Per target, from the model `rosterd status` and GET /api/v1/targets read.
    let pushed = crate::push::status::of_group(
        &shared.config(),
        Some(rules.as_ref()),
        &shared.store,
        &name,
        crate::clock::now_utc(),
    )
    .await?;
    let (location, definition) = rules.definition(id);
    Ok(ok(json!({
        "name": g.name,
        "kind": g.kind.to_string(),
        "location": location,
        "definition": definition,
        "members": members,
        "push": pushed,
    })))
}

async fn members(State(shared): State<Api>, Path(name): Path<String>) -> ApiResult {
    if shared.rules().lookup(&name).is_none() {
        return Err(ApiError::new(StatusCode::NOT_FOUND, "no such group"));
    }
    let members: Vec<Value> = shared
        .store
        .group_memberships(&name)
        .await?
        .into_iter()
        .map(|(key, membership)| json!({ "worker": key, "reason": membership.reason, "since_run": membership.since_run }))
        .collect();
    Ok(ok(json!({ "group": name, "members": members })))
}

async fn runs(State(shared): State<Api>) -> ApiResult {
    Ok(ok(json!({
        "runs": shared.store.runs_told(50).await?,
        "running": super::running(&shared),
        "progress": progress(&shared),
    })))
}

/// The guardrails in force, and which the memberships in force break.
async fn guardrails(State(shared): State<Api>) -> ApiResult {
    let violations: Vec<crate::engine::guardrails::Violation> =
        shared.store.current_violations().await?;
    let rules = shared.rules();
    let defined: Vec<Value> = rules
        .guardrails()
        .iter()
        .map(|g| {
            json!({
                "name": g.name,
                "description": g.description,
                "location": rules.sources().location(g.span),
                "on_violation": if g.hold { "hold" } else { "warn" },
                "groups": g.groups.iter().map(|&id| rules.group(id).name.clone()).collect::<Vec<_>>(),
                "violated": violations.iter().any(|v| v.guardrail == g.name),
            })
        })
        .collect();
    Ok(ok(
        json!({ "guardrails": defined, "violations": violations }),
    ))
}

/// How far the running job's push is, per target.
fn progress(shared: &Shared) -> Vec<crate::push::progress::Numbers> {
    crate::locks::lock(&shared.progress)
        .as_ref()
        .map(|p| p.numbers())
        .unwrap_or_default()
}

/// A numeric id from the path.
fn id(raw: &str) -> Result<i64, ApiError> {
    raw.parse()
        .map_err(|_| ApiError::new(StatusCode::BAD_REQUEST, "ids are whole numbers"))
}

/// A run's changes are listed whole up to this many; past it (a first run at 100k x 2,000
/// changes 20.8 M memberships) ask for one group's, a page at a time.
const RUN_CHANGES_LISTED: u64 = 10_000;
/// One group's changes per page.
const RUN_CHANGES_PAGE: usize = 1_000;

#[derive(serde::Deserialize)]
struct RunQuery {
    group: Option<String>,
    page: Option<usize>,
}

/// One run: its counts per group, and its changes (all of them when they are few, else one
/// group's with `?group=NAME&page=N`).
async fn run(
    State(shared): State<Api>,
    Path(raw): Path<String>,
    q: Result<Query<RunQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult {
    let id = id(&raw)?;
    let Ok(Query(q)) = q else {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "a run takes ?group=NAME and &page=N (from 1)",
        ));
    };
    let run = shared
        .store
        .run(id)
        .await?
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, "no such run"))?;
    let deltas = shared.store.run_deltas(id).await?;
    let total: u64 = deltas.iter().map(|d| d.added.len() + d.removed.len()).sum();
    let groups: Vec<Value> = deltas
        .iter()
        .map(|d| json!({ "group": d.group, "joined": d.added.len(), "left": d.removed.len(), "members_after": d.member_count }))
        .collect();
    let listed: Vec<&crate::store::GroupDelta> = match &q.group {
        Some(g) => deltas.iter().filter(|d| &d.group == g).collect(),
        None if total <= RUN_CHANGES_LISTED => deltas.iter().collect(),
        None => Vec::new(),
    };
    let (skip, take) = match (&q.group, q.page) {
        (Some(_), page) => (
            (page.unwrap_or(1).max(1) - 1) * RUN_CHANGES_PAGE,
            RUN_CHANGES_PAGE,
        ),
        (None, _) => (0, usize::MAX),
    };
    let workers = shared.worker_ids().await?;
    let changes: Vec<Value> = listed
        .iter()
        .flat_map(|d| d.changes().map(move |(w, added, reason)| (d, w, added, reason)))
        .skip(skip)
        .take(take)
        .map(|(d, w, added, reason)| {
            json!({ "group": d.group, "worker": workers.key(w).unwrap_or("?"), "added": added, "reason": reason })
        })
        .collect();
    let mut body =
        json!({ "run": run, "groups": groups, "total_changes": total, "changes": changes });
    if q.group.is_none() && total > RUN_CHANGES_LISTED {
        body["changes_omitted"] = json!(format!(
            "this run changed {total} memberships; ask for one group's with ?group=NAME&page=N ({RUN_CHANGES_PAGE} a page)"
        ));
    }
    Ok(ok(body))
}

/// Jobs run on the leader only; a standby says so instead of queueing what it cannot run.
fn standby() -> Response {
    error(
        StatusCode::SERVICE_UNAVAILABLE,
        "this instance is on standby; send the request to the leader (its /readyz shows \"leader\": true)",
    )
}

async fn run_now(State(shared): State<Api>) -> Response {
    if !shared.leadership.leading() {
        return standby();
    }
    shared.request(Job::Sync);
    (
        StatusCode::ACCEPTED,
        json_body(&json!({ "queued": "sync", "running": super::running(&shared) })),
    )
        .into_response()
}

async fn push_now(State(shared): State<Api>, Path(name): Path<String>) -> Response {
    if shared.rules().lookup(&name).is_none() {
        return error(StatusCode::NOT_FOUND, "no such group");
    }
    if !shared.leadership.leading() {
        return standby();
    }
    // Queued like any job, so it never overlaps a run; a sync queued too covers it.
    shared.request(Job::Push(name.clone()));
    (
        StatusCode::ACCEPTED,
        json_body(&json!({ "queued": "push", "group": name, "running": super::running(&shared) })),
    )
        .into_response()
}

/// The longest worker key or email the API takes.
const MAX_WORKER_INPUT: usize = 1_024;

/// A worker key or email as the API takes it: printable text of a bounded length. Keys with
/// control characters never enter the store (the HR loader rejects them), and NUL cannot even
/// be sent to PostgreSQL, so such input is a bad request, not a failed query.
fn worker_input(text: &str) -> Result<(), ApiError> {
    let bad =
        text.is_empty() || text.len() > MAX_WORKER_INPUT || text.chars().any(char::is_control);
    match bad {
        true => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "a worker is named by a key or an email: printable text of 1 to 1,024 bytes",
        )),
        false => Ok(()),
    }
}

/// A worker's groups as stored by the last run (what the targets are given), by key or by
/// email.
async fn worker_groups(State(shared): State<Api>, Path(key): Path<String>) -> ApiResult {
    worker_input(&key)?;
    let mut groups = shared.store.worker_memberships(&key).await?;
    let mut key = key;
    if groups.is_empty() {
        // Not a key with memberships: perhaps an email, which only the snapshot knows.
        if let Some(e) = super::evaluated(&shared).await? {
            if let Some(w) = e.snapshot.find(&key) {
                key = e.snapshot.key(w).to_string();
                groups = shared.store.worker_memberships(&key).await?;
            }
        }
    }
    let rules = shared.rules();
    let list: Vec<Value> = groups
        .into_iter()
        .map(|(group, m)| {
            let push: Vec<&str> = rules
                .lookup(&group)
                .map(|g| {
                    rules
                        .group(g)
                        .push
                        .iter()
                        .map(|p| p.target.as_str())
                        .collect()
                })
                .unwrap_or_default();
            json!({ "group": group, "reason": m.reason, "since_run": m.since_run, "push": push })
        })
        .collect();
    Ok(ok(json!({ "worker": key, "groups": list })))
}

#[derive(serde::Deserialize)]
struct ExplainQuery {
    worker: String,
    group: Option<String>,
}

/// Why a worker is or is not in a group (or, without `group`, in each group it is in): the
/// snapshot in force under the rules in force, as `rosterd explain` prints it.
async fn explain(
    State(shared): State<Api>,
    q: Result<Query<ExplainQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult {
    let Ok(Query(q)) = q else {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "explain takes ?worker=KEY_OR_EMAIL and, optionally, &group=NAME",
        ));
    };
    worker_input(&q.worker)?;
    let evaluated = super::evaluated(&shared).await?.ok_or_else(|| {
        ApiError::new(
            StatusCode::CONFLICT,
            "no run has stored a snapshot yet; explain answers after the first sync",
        )
    })?;
    let e = &*evaluated;
    let worker = e.snapshot.find(&q.worker).ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "no such worker in the snapshot in force",
        )
    })?;
    let groups = match &q.group {
        Some(name) => vec![e
            .rules
            .lookup(name)
            .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, "no such group"))?],
        None => e.evaluation.groups_of(worker),
    };
    let explanations: Vec<crate::engine::Explanation> = groups
        .into_iter()
        .map(|g| crate::engine::explain(&e.snapshot, &e.rules, &e.evaluation, worker, g))
        .collect();
    Ok(ok(json!({
        "snapshot": e.snapshot_id,
        "as_of": e.evaluation.as_of.to_string(),
        "explanations": explanations,
    })))
}

async fn holds(State(shared): State<Api>) -> ApiResult {
    Ok(ok(json!({ "holds": shared.store.push_holds(None).await? })))
}

/// One hold: who its push would remove and add, and why (as `rosterd holds ID` says).
async fn hold(State(shared): State<Api>, Path(raw): Path<String>) -> ApiResult {
    let id = id(&raw)?;
    let found = shared
        .store
        .push_hold(id)
        .await?
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, format!("no push hold {id}")))?;
    let detail = crate::push::hold::detail(&shared.store, &shared.config(), found).await?;
    Ok(ok(json!(detail)))
}

#[derive(serde::Deserialize)]
struct RequestsQuery {
    state: Option<String>,
    group: Option<String>,
}

/// Access requests made in the console, newest first (500 at most), by state and group.
async fn access_requests(State(shared): State<Api>, Query(q): Query<RequestsQuery>) -> ApiResult {
    let state = match q.state.as_deref().filter(|s| !s.is_empty()) {
        Some(s) => vec![crate::store::RequestState::parse(s).map_err(|_| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                format!("unknown request state `{s}`: pending, approved, denied, withdrawn, merged, in_force or expired"),
            )
        })?],
        None => Vec::new(),
    };
    let filter = crate::store::RequestFilter {
        states: &state,
        group: q.group.as_deref().filter(|g| !g.is_empty()),
        ..Default::default()
    };
    Ok(ok(
        json!({ "requests": shared.store.access_requests(&filter, 500).await? }),
    ))
}

/// One access request, with every change of its state.
async fn access_request(State(shared): State<Api>, Path(raw): Path<String>) -> ApiResult {
    let id = id(&raw)?;
    let found =
        shared.store.access_request(id).await?.ok_or_else(|| {
            ApiError::new(StatusCode::NOT_FOUND, format!("no access request {id}"))
        })?;
    let history = shared.store.request_events(id).await?;
    Ok(ok(json!({ "request": found, "history": history })))
}

async fn approve(State(shared): State<Api>, Path(raw): Path<String>) -> ApiResult {
    let id = id(&raw)?;
    // The bearer token is the service's, not a person's: the approval says so.
    let hold = shared.approve_hold(id, "api").await?;
    Ok(ok(
        json!({ "approved": hold, "leader": shared.leadership.leading() }),
    ))
}

async fn rules_state(State(shared): State<Api>) -> Response {
    let due = *crate::locks::lock(&shared.rules_sync_at);
    ok(json!({
        "in_force": shared.revision(),
        "refused": shared.refused(),
        "sync_due_at": due.map(crate::clock::stamp),
    }))
}
