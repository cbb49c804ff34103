//! The SCIM 2.0 client: one method per endpoint over one request helper that paces, limits
//! concurrency, authenticates and retries. An HTTP error keeps its status, `scimType` and
//! `detail`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rand::{Rng, SeedableRng};
use reqwest::Method;
use serde_json::Value;
use tokio::sync::{Mutex, Semaphore};
use tokio::time::Instant;

use super::wire::{self, ErrorResponse, Group, ListResponse, Member, PatchOperation, PatchRequest};
use crate::config::{TargetAuth, TargetConfig};
use crate::secret::{shown_url, Secret};

#[derive(Debug, thiserror::Error)]
pub enum ScimError {
    #[error("target `{target}`: {method} {path}: HTTP {status}{}{}", scim_type.as_ref().map(|t| format!(" ({t})")).unwrap_or_default(), detail.as_ref().map(|d| format!(": {d}")).unwrap_or_default())]
    Status {
        target: String,
        method: String,
        path: String,
        status: u16,
        scim_type: Option<String>,
        detail: Option<String>,
    },
    #[error("target `{target}`: {method} {path}: {message} after {attempts} attempt(s)")]
    Transport {
        target: String,
        method: String,
        path: String,
        message: String,
        attempts: u32,
        /// The request may have reached the target (it was not a failure to connect).
        maybe_sent: bool,
    },
    #[error("target `{target}`: {method} {path}: the answer cannot be used: {message}")]
    Decode {
        target: String,
        method: String,
        path: String,
        message: String,
    },
    #[error("target `{target}`: {message}")]
    Setup { target: String, message: String },
    /// The process may send nothing more (it no longer leads): nothing was sent.
    #[error("target `{target}`: not sent: {message}")]
    Stopped { target: String, message: String },
}

impl ScimError {
    pub fn status(&self) -> Option<u16> {
        match self {
            ScimError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// The target refused our credentials: nothing more should be sent to it this run.
    pub fn is_auth(&self) -> bool {
        matches!(self.status(), Some(401 | 403))
            || matches!(self, ScimError::Setup { .. } | ScimError::Stopped { .. })
    }

    pub fn scim_type(&self) -> Option<&str> {
        match self {
            ScimError::Status { scim_type, .. } => scim_type.as_deref(),
            _ => None,
        }
    }

    /// A write whose answer was lost after it may have reached the target: it may or may
    /// not have been applied.
    pub fn outcome_unknown(&self) -> bool {
        matches!(self, ScimError::Transport { method, maybe_sent: true, .. } if method != "GET")
    }

    pub fn detail(&self) -> Option<&str> {
        match self {
            ScimError::Status { detail, .. } => detail.as_deref(),
            _ => None,
        }
    }
}

/// One request as it goes on the wire; `Display` prints it the way `--dry-run` shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    pub method: Method,
    /// Relative to the base URL, with its query string.
    pub path: String,
    pub body: Option<Value>,
}

impl Request {
    pub fn is_write(&self) -> bool {
        self.method != Method::GET
    }
}

/// Requests sent (attempts, retries included), by kind.
#[derive(Debug, Default)]
pub struct Stats {
    pub reads: AtomicU64,
    pub writes: AtomicU64,
    pub retries: AtomicU64,
    /// Requests the target served: answered with a status other than 429 or 5xx (a 4xx is
    /// its judgement of the request, so it works). What shows the target can be used.
    pub answered: AtomicU64,
    /// Requests given up after their retries on 429, 5xx or no answer, and the first
    /// one's error: what shows it cannot be used, even if it answered something else.
    pub gave_up: AtomicU64,
    pub first_give_up: std::sync::Mutex<Option<String>>,
}

impl Stats {
    pub fn reads(&self) -> u64 {
        self.reads.load(Ordering::Relaxed)
    }
    pub fn writes(&self) -> u64 {
        self.writes.load(Ordering::Relaxed)
    }
    pub fn retries(&self) -> u64 {
        self.retries.load(Ordering::Relaxed)
    }
    pub fn answered(&self) -> u64 {
        self.answered.load(Ordering::Relaxed)
    }
    pub fn gave_up(&self) -> u64 {
        self.gave_up.load(Ordering::Relaxed)
    }
    /// The first request given up on, as its error says it.
    pub fn first_give_up(&self) -> Option<String> {
        crate::locks::lock(&self.first_give_up).clone()
    }
}

enum Auth {
    None,
    Bearer(Secret),
    OAuth2 {
        token_url: String,
        client_id: String,
        secret: Secret,
        scope: Option<String>,
        /// The current access token and when to fetch a new one.
        token: Mutex<Option<(Secret, Instant)>>,
    },
}

pub struct Client {
    target: String,
    base: String,
    http: reqwest::Client,
    auth: Auth,
    gate: Semaphore,
    /// When the next request may start.
    next_slot: Mutex<Instant>,
    interval: Duration,
    retries: u32,
    backoff_ms: u64,
    max_retry_after: Duration,
    deadline: Duration,
    max_body: u64,
    rng: std::sync::Mutex<rand_chacha::ChaCha8Rng>,
    pub stats: Arc<Stats>,
    /// Asked before every attempt; a reason stops the request unsent (see [`Client::gated`]).
    may_send: Option<MaySend>,
}

/// Says why this process may send nothing more, or `None` when it may.
pub type MaySend = Arc<dyn Fn() -> Option<String> + Send + Sync>;

impl Client {
    pub fn new(target: &str, config: &TargetConfig) -> Result<Client, ScimError> {
        let setup = |message: String| ScimError::Setup {
            target: target.to_string(),
            message,
        };
        let base = config
            .url
            .as_deref()
            .ok_or_else(|| {
                setup(format!(
                    "no `url` is configured\nhelp: set targets.{target}.url to the app's SCIM base URL"
                ))
            })?
            .trim_end_matches('/')
            .to_string();
        let mut builder = reqwest::Client::builder()
            .timeout(Duration::from_secs(config.timeout_seconds))
            // The process id tells a target's log which of several rosterd processes sent
            // a request.
            .user_agent(format!(
                "rosterd/{} (pid {})",
                env!("CARGO_PKG_VERSION"),
                std::process::id()
            ))
            .redirect(crate::http::same_origin_redirects());
        if let Some(tls) = &config.tls {
            let pem = std::fs::read(&tls.ca_file).map_err(|e| {
                setup(format!(
                    "cannot read tls.ca_file `{}`: {e}",
                    tls.ca_file.display()
                ))
            })?;
            for cert in reqwest::Certificate::from_pem_bundle(&pem)
                .map_err(|e| setup(format!("tls.ca_file `{}`: {e}", tls.ca_file.display())))?
            {
                builder = builder.add_root_certificate(cert);
            }
        }
        let http = builder.build().map_err(|e| setup(e.to_string()))?;
        let secret = |var: &str| {
            Secret::from_env(var).ok_or_else(|| {
                setup(format!(
                    "environment variable `{var}` is not set\nhelp: the config names the variable; set it in rosterd's environment"
                ))
            })
        };
        let auth = match &config.auth {
            None => Auth::None,
            Some(TargetAuth::Bearer { token_env }) => Auth::Bearer(secret(token_env)?),
            Some(TargetAuth::Oauth2 {
                token_url,
                client_id,
                client_secret_env,
                scope,
            }) => Auth::OAuth2 {
                token_url: token_url.clone(),
                client_id: client_id.clone(),
                secret: secret(client_secret_env)?,
                scope: scope.clone(),
                token: Mutex::new(None),
            },
        };
        Ok(Client {
            target: target.to_string(),
            base,
            http,
            auth,
            gate: Semaphore::new(config.concurrency),
            next_slot: Mutex::new(Instant::now()),
            interval: Duration::from_secs_f64(1.0 / config.requests_per_second),
            retries: config.retries,
            backoff_ms: config.retry_backoff_ms,
            max_retry_after: Duration::from_secs(config.max_retry_after_seconds),
            deadline: Duration::from_secs(config.request_deadline_seconds),
            max_body: config.max_response_bytes,
            rng: std::sync::Mutex::new(rand_chacha::ChaCha8Rng::seed_from_u64(u64::from(
                std::process::id(),
            ))),
            stats: Arc::new(Stats::default()),
            may_send: None,
        })
    }

    /// The client asks `may_send` before every attempt of every request, reads included: a
    /// process that lost the leadership (or whose lease ran out while it was stopped) sends
    /// nothing more, not even the request it was about to retry.
    pub fn gated(mut self, may_send: MaySend) -> Client {
        self.may_send = Some(may_send);
        self
    }

    pub fn target(&self) -> &str {
        &self.target
    }

    /// The request's full URL, as shown to people (no credentials, no query string secrets:
    /// SCIM filters are not secret, so the query stays).
    pub fn url_of(&self, request: &Request) -> String {
        format!("{}{}", shown_url(&self.base), request.path)
    }

    /// `METHOD URL` and the JSON body, as `--dry-run` prints it.
    pub fn show(&self, request: &Request) -> String {
        let mut out = format!("{} {}", request.method, self.url_of(request));
        if let Some(body) = &request.body {
            out.push('\n');
            out.push_str(&serde_json::to_string_pretty(body).unwrap_or_default());
        }
        out
    }

    // --- Endpoints -------------------------------------------------------------------------

    /// `None` when the target says 404.
    pub async fn get_group(&self, id: &str) -> Result<Option<Group>, ScimError> {
        let request = Request {
            method: Method::GET,
            path: format!("/Groups/{}", encode(id)),
            body: None,
        };
        match self.send(&request).await {
            Ok(body) => self.decode_group(&request, body).map(Some),
            Err(e) if e.status() == Some(404) => Ok(None),
            Err(e) => Err(e),
        }
    }

    pub async fn find_groups(&self, display_name: &str) -> Result<Vec<Group>, ScimError> {
        let filter = wire::eq_filter("displayName", display_name);
        let request = Request {
            method: Method::GET,
            path: format!("/Groups?filter={}", encode(&filter)),
            body: None,
        };
        let list: ListResponse<Group> = self.decode(&request, self.send(&request).await?)?;
        // Some targets compare loosely; only an exact name is the group.
        list.resources
            .into_iter()
            .filter(|g| g.display_name == display_name)
            .map(|g| self.checked_group(&request, g))
            .collect()
    }

    pub fn create_group_request(&self, display_name: &str, members: &[String]) -> Request {
        let members = members.iter().map(Member::id).collect();
        Request {
            method: Method::POST,
            path: "/Groups".into(),
            body: serde_json::to_value(Group::new(display_name, members)).ok(),
        }
    }

    pub async fn create_group(&self, request: &Request) -> Result<Group, ScimError> {
        let body = self.send(request).await?;
        self.decode_group(request, body)
    }

    pub fn patch_request(&self, id: &str, operations: Vec<PatchOperation>) -> Request {
        Request {
            method: Method::PATCH,
            path: format!("/Groups/{}", encode(id)),
            body: serde_json::to_value(PatchRequest::new(operations)).ok(),
        }
    }

    pub fn delete_request(&self, id: &str) -> Request {
        Request {
            method: Method::DELETE,
            path: format!("/Groups/{}", encode(id)),
            body: None,
        }
    }

    pub async fn find_users(&self, attribute: &str, value: &str) -> Result<Vec<Value>, ScimError> {
        let filter = wire::eq_filter(attribute, value);
        let request = Request {
            method: Method::GET,
            path: format!("/Users?filter={}", encode(&filter)),
            body: None,
        };
        let list: ListResponse<Value> = self.decode(&request, self.send(&request).await?)?;
        Ok(list.resources)
    }

    /// The users among `ids` that the target has: one filter of `id eq` terms joined by
    /// `or` (RFC 7644 section 3.4.2.2), asking for as many results as ids.
    pub async fn users_with_ids(&self, ids: &[&str]) -> Result<Vec<Value>, ScimError> {
        let filter = ids
            .iter()
            .map(|id| wire::eq_filter("id", id))
            .collect::<Vec<_>>()
            .join(" or ");
        let request = Request {
            method: Method::GET,
            path: format!(
                "/Users?filter={}&count={}",
                encode(&filter),
                ids.len().max(1)
            ),
            body: None,
        };
        let list: ListResponse<Value> = self.decode(&request, self.send(&request).await?)?;
        Ok(list.resources)
    }

    /// One user by id; `None` when the target says 404.
    pub async fn get_user(&self, id: &str) -> Result<Option<Value>, ScimError> {
        let request = Request {
            method: Method::GET,
            path: format!("/Users/{}", encode(id)),
            body: None,
        };
        match self.send(&request).await {
            Ok(body) => Ok(body),
            Err(e) if e.status() == Some(404) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The target's description of its User resource (RFC 7643 section 7): from
    /// `/Schemas/{urn}`, else from the `/Schemas` list; `None` when it publishes none.
    pub async fn user_schema(&self) -> Result<Option<Value>, ScimError> {
        // A refusal other than of our credentials, or an answer that is no schema, means
        // only that the target does not describe itself.
        let described = |answer: Result<Option<Value>, ScimError>| match answer {
            Ok(body) => Ok(body),
            Err(e @ ScimError::Status { .. }) if !e.is_auth() => Ok(None),
            Err(ScimError::Decode { .. }) => Ok(None),
            Err(e) => Err(e),
        };
        let one = Request {
            method: Method::GET,
            // The URN's colons are allowed in a path segment (RFC 3986 pchar).
            path: format!("/Schemas/{}", wire::USER_SCHEMA),
            body: None,
        };
        if let Some(schema) = described(self.send(&one).await)? {
            if schema["id"] == wire::USER_SCHEMA && schema["attributes"].is_array() {
                return Ok(Some(schema));
            }
        }
        let all = Request {
            method: Method::GET,
            path: "/Schemas".into(),
            body: None,
        };
        let list = described(self.send(&all).await)?;
        Ok(list.and_then(|list| {
            list["Resources"]
                .as_array()?
                .iter()
                .find(|s| s["id"] == wire::USER_SCHEMA)
                .cloned()
        }))
    }

    /// One page of users; `start` counts from 1 (RFC 7644 section 3.4.2.4).
    pub async fn list_users(
        &self,
        start: u64,
        count: u64,
    ) -> Result<ListResponse<Value>, ScimError> {
        let request = Request {
            method: Method::GET,
            path: format!("/Users?startIndex={start}&count={count}"),
            body: None,
        };
        self.decode(&request, self.send(&request).await?)
    }

    // --- The request helper ------------------------------------------------------------------

    fn decode<T: serde::de::DeserializeOwned>(
        &self,
        request: &Request,
        body: Option<Value>,
    ) -> Result<T, ScimError> {
        serde_json::from_value(body.unwrap_or(Value::Null))
            .map_err(|e| self.unusable(request, format!("not SCIM JSON: {e}")))
    }

    /// The target answered `request` with what rosterd cannot use, and `message` says why.
    fn unusable(&self, request: &Request, message: String) -> ScimError {
        ScimError::Decode {
            target: self.target.clone(),
            method: request.method.to_string(),
            path: request.path.clone(),
            message,
        }
    }

    fn decode_group(&self, request: &Request, body: Option<Value>) -> Result<Group, ScimError> {
        let group: Group = self.decode(request, body)?;
        self.checked_group(request, group)
    }

    /// A group as the protocol requires it: an `id` (RFC 7643 section 3.1), and member
    /// values that are ids too. What is missing is an error, never a default: a group stored
    /// with an empty id would send every later PATCH to `/Groups/`.
    fn checked_group(&self, request: &Request, group: Group) -> Result<Group, ScimError> {
        let bad = |message: String| self.unusable(request, message);
        match group.id.as_deref() {
            None | Some("") => {
                return Err(bad(
                    "the group has no `id`, which RFC 7643 section 3.1 requires".into(),
                ))
            }
            Some(id) if !wire::is_valid_id(id) => {
                return Err(bad("the group's `id` is not a usable id".into()))
            }
            Some(_) => {}
        }
        if let Some(m) = group
            .members
            .iter()
            .flatten()
            .find(|m| !wire::is_valid_id(&m.value))
        {
            let shown = crate::text::prefix(&m.value, 40);
            return Err(bad(format!(
                "a member's `value` is not a usable id: {shown:?}"
            )));
        }
        Ok(group)
    }

    /// Sends `request`, retrying 429, 5xx, timeouts and dropped connections with backoff
    /// (or as long as `Retry-After` asks). The answer's JSON body, if it has one.
    pub async fn send(&self, request: &Request) -> Result<Option<Value>, ScimError> {
        let _permit = self.gate.acquire().await.map_err(|_| ScimError::Setup {
            target: self.target.clone(),
            message: "the client is shutting down".into(),
        })?;
        let started = Instant::now();
        let mut attempt = 0;
        let mut refreshed = false;
        loop {
            attempt += 1;
            self.pace().await;
            if let Some(why) = self.may_send.as_ref().and_then(|may| may()) {
                return Err(ScimError::Stopped {
                    target: self.target.clone(),
                    message: why,
                });
            }
            if request.is_write() {
                self.stats.writes.fetch_add(1, Ordering::Relaxed);
            } else {
                self.stats.reads.fetch_add(1, Ordering::Relaxed);
            }
            let (error, retry_after) = match self.attempt(request).await? {
                Attempt::Done(body) => return Ok(body),
                Attempt::Failed(error, retry_after) => (error, retry_after),
            };
            if error.status() == Some(401) && !refreshed && matches!(self.auth, Auth::OAuth2 { .. })
            {
                // The access token may have expired early: fetch a new one, once.
                refreshed = true;
                self.forget_token().await;
                continue;
            }
            let retryable = match &error {
                ScimError::Status { status, .. } => *status == 429 || *status >= 500,
                // A POST whose answer was lost may have created its resource, and a PATCH
                // applied its change (adding a member twice makes two entries on some
                // targets): neither is sent again blindly. The caller looks first. Reads,
                // deletes and requests that never connected are safe to repeat.
                ScimError::Transport { maybe_sent, .. } => {
                    request.method == Method::GET || request.method == Method::DELETE || !maybe_sent
                }
                _ => false,
            };
            if !retryable || attempt > self.retries {
                let unusable = match &error {
                    ScimError::Status { status, .. } => *status == 429 || *status >= 500,
                    ScimError::Transport { .. } => true,
                    _ => false,
                };
                if unusable {
                    self.stats.gave_up.fetch_add(1, Ordering::Relaxed);
                    crate::locks::lock(&self.stats.first_give_up)
                        .get_or_insert_with(|| error.to_string());
                }
                return Err(match error {
                    ScimError::Transport {
                        target,
                        method,
                        path,
                        message,
                        maybe_sent,
                        ..
                    } => ScimError::Transport {
                        target,
                        method,
                        path,
                        message,
                        attempts: attempt,
                        maybe_sent,
                    },
                    other => other,
                });
            }
            let delay = retry_after.unwrap_or_else(|| self.backoff(attempt));
            if started.elapsed() + delay > self.deadline {
                return Err(ScimError::Transport {
                    target: self.target.clone(),
                    method: request.method.to_string(),
                    path: request.path.clone(),
                    message: format!(
                        "gave up: request_deadline_seconds ({} s) would pass before the next attempt; last: {error}",
                        self.deadline.as_secs()
                    ),
                    attempts: attempt,
                    maybe_sent: error.outcome_unknown(),
                });
            }
            self.stats.retries.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(target_name = %self.target, method = %request.method, path = %request.path, attempt, delay_ms = delay.as_millis() as u64, "retrying: {error}");
            tokio::time::sleep(delay).await;
        }
    }

    async fn attempt(&self, request: &Request) -> Result<Attempt, ScimError> {
        let url = format!("{}{}", self.base, request.path);
        let mut builder = self.http.request(request.method.clone(), &url).header(
            reqwest::header::ACCEPT,
            "application/scim+json, application/json",
        );
        if let Some(token) = self.token().await? {
            builder = builder.bearer_auth(token.expose());
        }
        if let Some(body) = &request.body {
            builder = builder
                .header(reqwest::header::CONTENT_TYPE, "application/scim+json")
                .body(serde_json::to_vec(body).unwrap_or_default());
        }
        let transport = |e: reqwest::Error| ScimError::Transport {
            target: self.target.clone(),
            method: request.method.to_string(),
            path: request.path.clone(),
            message: describe(&e),
            attempts: 1,
            maybe_sent: !e.is_connect(),
        };
        let response = match builder.send().await {
            Ok(r) => r,
            Err(e) => return Ok(Attempt::Failed(transport(e), None)),
        };
        let status = response.status().as_u16();
        if status != 429 && status < 500 {
            self.stats.answered.fetch_add(1, Ordering::Relaxed);
        }
        let retry_after = crate::http::retry_after(response.headers(), self.max_retry_after);
        let bytes = match crate::http::read_body(response, self.max_body).await {
            Ok(b) => b,
            Err(crate::http::BodyError::Network(e)) => {
                return Ok(Attempt::Failed(transport(e), None))
            }
            Err(crate::http::BodyError::TooLarge) => {
                return Err(self.unusable(
                    request,
                    format!(
                        "larger than max_response_bytes ({} bytes); raise targets.{}.max_response_bytes if its answers are that large",
                        self.max_body, self.target
                    ),
                ))
            }
        };
        let body: Option<Value> = if bytes.iter().all(u8::is_ascii_whitespace) {
            None
        } else {
            serde_json::from_slice(&bytes).ok()
        };
        if (200..300).contains(&status) {
            return Ok(Attempt::Done(body));
        }
        let error: Option<ErrorResponse> = body.and_then(|b| serde_json::from_value(b).ok());
        Ok(Attempt::Failed(
            ScimError::Status {
                target: self.target.clone(),
                method: request.method.to_string(),
                path: request.path.clone(),
                status,
                // What a target says is quoted, not copied: a few hundred characters.
                scim_type: error
                    .as_ref()
                    .and_then(|e| e.scim_type.clone())
                    .map(|t| crate::text::shorten(&t, 100)),
                detail: error
                    .and_then(|e| e.detail)
                    .map(|d| crate::text::shorten(&d, 500)),
            },
            retry_after.filter(|_| status == 429 || status == 503),
        ))
    }

    async fn pace(&self) {
        let start = {
            let mut next = self.next_slot.lock().await;
            let start = (*next).max(Instant::now());
            *next = start + self.interval;
            start
        };
        // A timer rounds up to the next millisecond tick: one for a slot that is already
        // here cost every request a millisecond, most of a fast target's time.
        if start > Instant::now() {
            tokio::time::sleep_until(start).await;
        }
    }

    fn backoff(&self, attempt: u32) -> Duration {
        let exp = self
            .backoff_ms
            .saturating_mul(1u64 << (attempt - 1).min(16))
            .min(60_000);
        let jitter = match self.rng.lock() {
            Ok(mut rng) => rng.random_range(0..=exp / 2 + 1),
            Err(_) => 0,
        };
        Duration::from_millis(exp / 2 + jitter)
    }

    async fn token(&self) -> Result<Option<Secret>, ScimError> {
        match &self.auth {
            Auth::None => Ok(None),
            Auth::Bearer(token) => Ok(Some(token.clone())),
            Auth::OAuth2 {
                token_url,
                client_id,
                secret,
                scope,
                token,
            } => {
                let mut cached = token.lock().await;
                if let Some((value, until)) = cached.as_ref() {
                    if Instant::now() < *until {
                        return Ok(Some(value.clone()));
                    }
                }
                let (value, lifetime) = self
                    .fetch_token(token_url, client_id, secret, scope.as_deref())
                    .await?;
                // Renew a minute early (or at half-life for short tokens).
                let renew = lifetime
                    .saturating_sub(Duration::from_secs(60))
                    .max(lifetime / 2);
                *cached = Some((value.clone(), Instant::now() + renew));
                Ok(Some(value))
            }
        }
    }

    async fn forget_token(&self) {
        if let Auth::OAuth2 { token, .. } = &self.auth {
            *token.lock().await = None;
        }
    }

    async fn fetch_token(
        &self,
        token_url: &str,
        client_id: &str,
        secret: &Secret,
        scope: Option<&str>,
    ) -> Result<(Secret, Duration), ScimError> {
        let fail = |message: String| ScimError::Setup {
            target: self.target.clone(),
            message: format!("OAuth2 token from {}: {message}", shown_url(token_url)),
        };
        let mut form = vec![("grant_type", "client_credentials")];
        if let Some(scope) = scope {
            form.push(("scope", scope));
        }
        let response = self
            .http
            .post(token_url)
            .basic_auth(client_id, Some(secret.expose()))
            .form(&form)
            .send()
            .await
            .map_err(|e| fail(describe(&e)))?;
        let status = response.status();
        if !status.is_success() {
            return Err(fail(format!("HTTP {}", status.as_u16())));
        }
        let bytes = response.bytes().await.map_err(|e| fail(describe(&e)))?;
        let body: Value = serde_json::from_slice(&bytes)
            .map_err(|e| fail(format!("the answer is not JSON: {e}")))?;
        let token = body
            .get("access_token")
            .and_then(Value::as_str)
            .ok_or_else(|| fail("the answer has no access_token".into()))?;
        let lifetime = body
            .get("expires_in")
            .and_then(Value::as_u64)
            .unwrap_or(3600);
        Ok((Secret::new(token), Duration::from_secs(lifetime)))
    }
}

enum Attempt {
    Done(Option<Value>),
    Failed(ScimError, Option<Duration>),
}

/// Percent-encodes a path segment or query value.
fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn describe(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "timed out".into()
    } else if e.is_connect() {
        "cannot connect".into()
    } else if e.is_body() || e.is_decode() {
        "the connection broke during the answer".into()
    } else {
        // reqwest puts the URL in its messages; the caller already names the path.
        crate::text::with_causes(e).replace(e.url().map(|u| u.as_str()).unwrap_or("\u{0}"), "")
    }
}
