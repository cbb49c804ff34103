//! Requests to a target, whatever its kind: paced (`requests_per_second`), limited in
//! concurrency, authenticated, retried on 429, 5xx and lost connections with backoff or as
//! `Retry-After` asks, and counted ([`Stats`]). An HTTP error keeps its status, the target's
//! own error code and its detail. What differs by kind (the media type, how an error body
//! reads) is its [`Dialect`]; the endpoints are the kinds' own clients (`crate::scim`).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rand::{Rng, SeedableRng};
use reqwest::Method;
use serde_json::Value;
use tokio::sync::{Mutex, Semaphore};
use tokio::time::Instant;

use super::auth::Auth;
use crate::config::TargetConfig;
use crate::secret::shown_url;

#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    #[error("target `{target}`: {method} {path}: HTTP {status}{}{}", code.as_ref().map(|t| format!(" ({t})")).unwrap_or_default(), detail.as_ref().map(|d| format!(": {d}")).unwrap_or_default())]
    Status {
        target: String,
        method: String,
        path: String,
        status: u16,
        /// The target's own name for the error: SCIM's `scimType`, for one.
        code: Option<String>,
        detail: Option<String>,
        /// The target asks for fewer requests (429, or Google's 403 `rateLimitExceeded`):
        /// worth retrying later, and no judgement of the credentials.
        throttled: bool,
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
    /// A directory's answer to an LDAP operation other than success.
    #[error("target `{target}`: LDAP {operation} `{dn}`: result {rc} ({name}){}", if message.is_empty() { String::new() } else { format!(": {message}") })]
    Ldap {
        target: String,
        operation: String,
        dn: String,
        /// The result code and its name (RFC 4511 appendix A).
        rc: u32,
        name: String,
        message: String,
        /// What the push makes of it, in HTTP's words: 404 for an entry that is not there,
        /// 409 for one that is, 401 and 403 for credentials and rights, 400 for a request
        /// the directory refuses, 503 for one to try again.
        class: u16,
    },
    #[error("target `{target}`: {message}")]
    Setup { target: String, message: String },
    /// rosterd will not touch what it was asked to (a group another party manages): nothing
    /// was sent, and the message says whose it is.
    #[error("target `{target}`: {message}")]
    Refused { target: String, message: String },
    /// The process may send nothing more (it no longer leads): nothing was sent.
    #[error("target `{target}`: not sent: {message}")]
    Stopped { target: String, message: String },
}

impl TargetError {
    pub fn status(&self) -> Option<u16> {
        match self {
            TargetError::Status { status, .. } => Some(*status),
            TargetError::Ldap { class, .. } => Some(*class),
            _ => None,
        }
    }

    /// The target refused our credentials: nothing more should be sent to it this run.
    pub fn is_auth(&self) -> bool {
        (matches!(self.status(), Some(401 | 403)) && !self.throttled())
            || matches!(
                self,
                TargetError::Setup { .. } | TargetError::Stopped { .. }
            )
    }

    /// The target asks for fewer requests: 429, or what its kind answers instead.
    pub fn throttled(&self) -> bool {
        matches!(
            self,
            TargetError::Status {
                throttled: true,
                ..
            }
        )
    }

    /// The target's own name for the error (SCIM's `scimType`).
    pub fn code(&self) -> Option<&str> {
        match self {
            TargetError::Status { code, .. } => code.as_deref(),
            TargetError::Ldap { name, .. } => Some(name),
            _ => None,
        }
    }

    /// A write whose answer was lost after it may have reached the target: it may or may
    /// not have been applied.
    pub fn outcome_unknown(&self) -> bool {
        matches!(self, TargetError::Transport { method, maybe_sent: true, .. } if method != "GET" && method != "search")
    }

    pub fn detail(&self) -> Option<&str> {
        match self {
            TargetError::Status { detail, .. } => detail.as_deref(),
            TargetError::Ldap { message, .. } if !message.is_empty() => Some(message),
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
    /// `GET path`.
    pub fn get(path: String) -> Request {
        Request {
            method: Method::GET,
            path,
            body: None,
        }
    }

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

pub struct Requester {
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
    /// Asked before every attempt; a reason stops the request unsent (see [`Requester::gated`]).
    may_send: Option<MaySend>,
    dialect: Dialect,
    /// Rate-limit buckets, by name (see [`Dialect::rate_limits`]).
    windows: std::sync::Mutex<std::collections::HashMap<&'static str, Window>>,
}

/// What differs between kinds of target on the wire.
#[derive(Debug, Clone, Copy)]
pub struct Dialect {
    /// The media type of request bodies; answers are accepted in it and as plain JSON.
    pub media_type: &'static str,
    /// The target's error code and detail, from an error answer's JSON body.
    pub error: fn(&Value) -> (Option<String>, Option<String>),
    /// What the URL should be, for the error when none is configured.
    pub url_help: &'static str,
    /// How an answer that does not decode is described (`not SCIM JSON`).
    pub undecodable: &'static str,
    /// The rate-limit bucket a request counts against, for a kind that announces its
    /// limits in `X-Rate-Limit-Limit`, `-Remaining` and `-Reset` (Okta): requests are then
    /// held back when a bucket is spent until it resets, before the target answers 429.
    pub rate_limits: Option<fn(&Method, &str) -> &'static str>,
    /// The error codes with which a 403 asks for fewer requests, as a 429 does (Google's
    /// `rateLimitExceeded` and `userRateLimitExceeded`): retried with backoff.
    pub throttle_codes: &'static [&'static str],
}

/// A request or answer body that is not JSON: a batch of requests in one
/// (`multipart/mixed`), and its answer.
#[derive(Debug, Clone)]
pub struct Raw {
    pub content_type: String,
    pub body: Vec<u8>,
    /// Whether it changes anything (its parts are writes), for the counts.
    pub writes: bool,
    /// Whether sending it twice does no harm, so that one whose answer was lost is sent
    /// again (a batch of member changes, each of which the target takes twice as once).
    pub idempotent: bool,
}

/// What the target said is left of a rate-limit bucket, less the requests sent since.
#[derive(Debug, Clone, Copy)]
struct Window {
    remaining: u64,
    resets: Instant,
    /// Requests sent and not answered yet: the target may not have counted them.
    in_flight: u64,
}

/// Says why this process may send nothing more, or `None` when it may.
pub type MaySend = Arc<dyn Fn() -> Option<String> + Send + Sync>;

impl Requester {
    pub fn new(
        target: &str,
        config: &TargetConfig,
        dialect: Dialect,
    ) -> Result<Requester, TargetError> {
        let setup = |message: String| TargetError::Setup {
            target: target.to_string(),
            message,
        };
        let base = config
            .url
            .as_deref()
            .ok_or_else(|| {
                setup(format!(
                    "no `url` is configured\nhelp: set targets.{target}.url to {}",
                    dialect.url_help
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
        let auth = Auth::of(&config.auth, &base).map_err(setup)?;
        Ok(Requester {
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
            dialect,
            windows: Default::default(),
        })
    }

    /// The client asks `may_send` before every attempt of every request, reads included: a
    /// process that lost the leadership (or whose lease ran out while it was stopped) sends
    /// nothing more, not even the request it was about to retry.
    pub fn gated(mut self, may_send: MaySend) -> Requester {
        self.may_send = Some(may_send);
        self
    }

    pub fn target(&self) -> &str {
        &self.target
    }

    /// The path of the base URL (`/google` of `http://host/google`; empty for a host's
    /// root), which a batch's parts, written from the host's root, start with.
    pub fn base_path(&self) -> String {
        reqwest::Url::parse(&self.base)
            .map(|u| u.path().trim_end_matches('/').to_string())
            .unwrap_or_default()
    }

    /// Further attempts a request gets after a failure that is worth retrying.
    pub fn retries(&self) -> u32 {
        self.retries
    }

    /// The request's full URL, as shown to people (no credentials, no query string secrets:
    /// SCIM filters are not secret, so the query stays).
    fn url_of(&self, request: &Request) -> String {
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

    /// The target answered `request` with what rosterd cannot use, and `message` says why.
    pub fn unusable(&self, request: &Request, message: String) -> TargetError {
        TargetError::Decode {
            target: self.target.clone(),
            method: request.method.to_string(),
            path: request.path.clone(),
            message,
        }
    }

    /// An answer's JSON body as `T`; an answer that is not one is unusable, in the kind's
    /// words.
    pub fn decode<T: serde::de::DeserializeOwned>(
        &self,
        request: &Request,
        body: Option<Value>,
    ) -> Result<T, TargetError> {
        serde_json::from_value(body.unwrap_or(Value::Null))
            .map_err(|e| self.unusable(request, format!("{}: {e}", self.dialect.undecodable)))
    }

    /// Sends `request`, retrying 429, 5xx, timeouts and dropped connections with backoff
    /// (or as long as `Retry-After` asks). The answer's JSON body, if it has one.
    pub async fn send(&self, request: &Request) -> Result<Option<Value>, TargetError> {
        Ok(self.send_page(request).await?.0)
    }

    /// As [`Requester::send`], with the path of the next page when the answer links one
    /// (`Link: <URL>; rel="next"`, RFC 8288), which must be under the base URL.
    pub async fn send_page(
        &self,
        request: &Request,
    ) -> Result<(Option<Value>, Option<String>), TargetError> {
        let (body, next, _) = self.exchange(request, None).await?;
        Ok((body, next))
    }

    /// Sends `request` (its path and method) with the body `raw`, retried as
    /// [`Requester::send`] does: the answer's body, as it came, with its media type.
    pub async fn send_raw(&self, request: &Request, raw: &Raw) -> Result<Raw, TargetError> {
        let (_, _, answer) = self.exchange(request, Some(raw)).await?;
        answer.ok_or_else(|| self.unusable(request, "no answer body".into()))
    }

    /// The error a target's answer (`status` and its JSON body) is, read in the kind's
    /// dialect: for an answer within a batch.
    pub fn error_of(&self, request: &Request, status: u16, body: Option<&Value>) -> TargetError {
        let (code, detail) = body.map_or((None, None), |b| (self.dialect.error)(b));
        let throttled = status == 429
            || (status == 403
                && code
                    .as_deref()
                    .is_some_and(|c| self.dialect.throttle_codes.contains(&c)));
        TargetError::Status {
            target: self.target.clone(),
            method: request.method.to_string(),
            path: request.path.clone(),
            status,
            // What a target says is quoted, not copied: a few hundred characters.
            code: code.map(|t| crate::text::shorten(&t, 100)),
            detail: detail.map(|d| crate::text::shorten(&d, 500)),
            throttled,
        }
    }

    /// The delay before retry `attempt` (from 1): exponential, with jitter.
    pub fn backoff(&self, attempt: u32) -> Duration {
        backoff(self.backoff_ms, attempt, &self.rng)
    }

    async fn exchange(
        &self,
        request: &Request,
        raw: Option<&Raw>,
    ) -> Result<(Option<Value>, Option<String>, Option<Raw>), TargetError> {
        let _permit = self.gate.acquire().await.map_err(|_| TargetError::Setup {
            target: self.target.clone(),
            message: "the client is shutting down".into(),
        })?;
        let started = Instant::now();
        let mut attempt = 0;
        let mut refreshed = false;
        loop {
            attempt += 1;
            self.pace().await;
            self.within_limits(request).await;
            if let Some(why) = self.may_send.as_ref().and_then(|may| may()) {
                return Err(TargetError::Stopped {
                    target: self.target.clone(),
                    message: why,
                });
            }
            note_sent(1);
            if raw.map_or(request.is_write(), |r| r.writes) {
                self.stats.writes.fetch_add(1, Ordering::Relaxed);
            } else {
                self.stats.reads.fetch_add(1, Ordering::Relaxed);
            }
            let (error, retry_after) = match self.attempt(request, raw).await? {
                Attempt::Done(body, next, answer) => return Ok((body, next, answer)),
                Attempt::Failed(error, retry_after) => (error, retry_after),
            };
            if error.status() == Some(401) && !refreshed && self.auth.renews() {
                // The access token may have expired early: fetch a new one, once.
                refreshed = true;
                self.auth.forget().await;
                continue;
            }
            let retryable = match &error {
                TargetError::Status { status, .. } => error.throttled() || *status >= 500,
                // A POST whose answer was lost may have created its resource, and a PATCH
                // applied its change (adding a member twice makes two entries on some
                // targets): neither is sent again blindly. The caller looks first. Reads,
                // deletes and requests that never connected are safe to repeat.
                TargetError::Transport { maybe_sent, .. } => {
                    request.method == Method::GET
                        || request.method == Method::DELETE
                        || raw.is_some_and(|r| r.idempotent)
                        || !maybe_sent
                }
                _ => false,
            };
            if !retryable || attempt > self.retries {
                let unusable = match &error {
                    TargetError::Status { status, .. } => error.throttled() || *status >= 500,
                    TargetError::Transport { .. } => true,
                    _ => false,
                };
                if unusable {
                    self.stats.gave_up.fetch_add(1, Ordering::Relaxed);
                    crate::locks::lock(&self.stats.first_give_up)
                        .get_or_insert_with(|| error.to_string());
                }
                return Err(match error {
                    TargetError::Transport {
                        target,
                        method,
                        path,
                        message,
                        maybe_sent,
                        ..
                    } => TargetError::Transport {
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
                return Err(TargetError::Transport {
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

    /// The request as it goes out: its URL, `Accept`, credentials and body.
    async fn build(
        &self,
        request: &Request,
        raw: Option<&Raw>,
    ) -> Result<reqwest::RequestBuilder, TargetError> {
        let setup = |message: String| TargetError::Setup {
            target: self.target.clone(),
            message,
        };
        let url = format!("{}{}", self.base, request.path);
        let mut builder = self.http.request(request.method.clone(), &url).header(
            reqwest::header::ACCEPT,
            format!("{}, application/json", self.dialect.media_type),
        );
        let jti = || crate::locks::lock(&self.rng).random();
        if let Some(value) = self.auth.header(&self.http, jti).await.map_err(setup)? {
            let mut value = reqwest::header::HeaderValue::from_str(value.expose()).map_err(|_| {
                setup("the credentials cannot be sent in a header (they hold a line break or a control character)".into())
            })?;
            value.set_sensitive(true);
            builder = builder.header(reqwest::header::AUTHORIZATION, value);
        }
        if let Some(raw) = raw {
            builder = builder
                .header(reqwest::header::CONTENT_TYPE, &raw.content_type)
                .body(raw.body.clone());
        } else if let Some(body) = &request.body {
            builder = builder
                .header(reqwest::header::CONTENT_TYPE, self.dialect.media_type)
                .body(serde_json::to_vec(body).unwrap_or_default());
        }
        Ok(builder)
    }

    async fn attempt(&self, request: &Request, raw: Option<&Raw>) -> Result<Attempt, TargetError> {
        let builder = self.build(request, raw).await?;
        let transport = |e: reqwest::Error| TargetError::Transport {
            target: self.target.clone(),
            method: request.method.to_string(),
            path: request.path.clone(),
            message: super::describe(&e),
            attempts: 1,
            maybe_sent: !e.is_connect(),
        };
        let response = match builder.send().await {
            Ok(r) => r,
            Err(e) => {
                // No answer: the request is no longer in flight all the same.
                self.note_limits(request, &reqwest::header::HeaderMap::new());
                return Ok(Attempt::Failed(transport(e), None));
            }
        };
        let status = response.status().as_u16();
        let content_type = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        let retry_after = crate::http::retry_after(response.headers(), self.max_retry_after)
            .or_else(|| {
                // A kind that announces its limits says when a spent bucket resets.
                (status == 429)
                    .then(|| self.reset_in(response.headers()))
                    .flatten()
            });
        self.note_limits(request, response.headers());
        let next = next_link(response.headers());
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
        if raw.is_some() && (200..300).contains(&status) {
            self.stats.answered.fetch_add(1, Ordering::Relaxed);
            let answer = Raw {
                content_type,
                body: bytes,
                writes: false,
                idempotent: false,
            };
            return Ok(Attempt::Done(None, None, Some(answer)));
        }
        let body: Option<Value> = if bytes.iter().all(u8::is_ascii_whitespace) {
            None
        } else {
            serde_json::from_slice(&bytes).ok()
        };
        if (200..300).contains(&status) {
            self.stats.answered.fetch_add(1, Ordering::Relaxed);
            let next = match next {
                None => None,
                Some(url) => Some(
                    url.strip_prefix(&self.base)
                        .filter(|rest| rest.starts_with('/'))
                        .map(str::to_string)
                        .ok_or_else(|| {
                            self.unusable(
                                request,
                                format!(
                                    "its next page is linked outside the target's URL: {}",
                                    shown_url(&url)
                                ),
                            )
                        })?,
                ),
            };
            return Ok(Attempt::Done(body, next, None));
        }
        let error = self.error_of(request, status, body.as_ref());
        if !error.throttled() && status < 500 {
            self.stats.answered.fetch_add(1, Ordering::Relaxed);
        }
        Ok(Attempt::Failed(
            error,
            retry_after.filter(|_| status == 429 || status == 503),
        ))
    }

    /// The rate-limit bucket `request` counts against, for a kind that has them.
    fn bucket_of(&self, request: &Request) -> Option<&'static str> {
        self.dialect
            .rate_limits
            .map(|bucket| bucket(&request.method, &request.path))
    }

    /// Waits while the request's rate-limit bucket is spent (until it resets), and counts
    /// the request against it.
    async fn within_limits(&self, request: &Request) {
        let Some(bucket) = self.bucket_of(request) else {
            return;
        };
        loop {
            let wait = {
                let mut windows = crate::locks::lock(&self.windows);
                match windows.get_mut(bucket) {
                    Some(w) if w.remaining == 0 && w.resets > Instant::now() => Some(w.resets),
                    Some(w) => {
                        w.remaining = w.remaining.saturating_sub(1);
                        w.in_flight += 1;
                        None
                    }
                    None => {
                        // Nothing known yet: the first answers will say.
                        windows.insert(
                            bucket,
                            Window {
                                remaining: u64::MAX,
                                resets: Instant::now(),
                                in_flight: 1,
                            },
                        );
                        None
                    }
                }
            };
            match wait {
                Some(until) => {
                    tracing::debug!(target_name = %self.target, bucket, "rate limit spent; waiting for it to reset");
                    tokio::time::sleep_until(until).await;
                    // The window is the target's to renew: the next answer says how much.
                    if let Some(w) = crate::locks::lock(&self.windows).get_mut(bucket) {
                        if w.resets <= Instant::now() {
                            w.remaining = 1;
                        }
                    }
                }
                None => return,
            }
        }
    }

    /// How long until the bucket an answer's `X-Rate-Limit-Reset` names resets (epoch
    /// seconds, by the target's clock as near as the `Date` header tells), capped.
    fn reset_in(&self, headers: &reqwest::header::HeaderMap) -> Option<Duration> {
        let number =
            |name: &str| -> Option<i64> { headers.get(name)?.to_str().ok()?.trim().parse().ok() };
        let reset = number("x-rate-limit-reset")?;
        let now = headers
            .get(reqwest::header::DATE)
            .and_then(|d| d.to_str().ok())
            .and_then(|d| chrono::DateTime::parse_from_rfc2822(d).ok())
            .map_or_else(|| crate::clock::now_utc().timestamp(), |d| d.timestamp());
        let seconds = u64::try_from(reset - now).unwrap_or(0);
        // The reset second itself is part of the window: wait into the next one.
        Some(Duration::from_secs(seconds + 1).min(self.max_retry_after))
    }

    /// Keeps what an answer says of its request's rate-limit bucket: what is left, less the
    /// requests still in flight (which the target may not have counted yet), and never more
    /// than was known for the same window.
    fn note_limits(&self, request: &Request, headers: &reqwest::header::HeaderMap) {
        let Some(bucket) = self.bucket_of(request) else {
            return;
        };
        let said: Option<u64> = headers
            .get("x-rate-limit-remaining")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse().ok());
        let resets_in = self.reset_in(headers);
        let mut windows = crate::locks::lock(&self.windows);
        let Some(w) = windows.get_mut(bucket) else {
            return;
        };
        w.in_flight = w.in_flight.saturating_sub(1);
        let (Some(said), Some(resets_in)) = (said, resets_in) else {
            return;
        };
        let resets = Instant::now() + resets_in;
        let left = said.saturating_sub(w.in_flight);
        // The same window (its reset within a second of the one known): the lower count.
        let same = w.resets.max(resets) - w.resets.min(resets) < Duration::from_secs(1);
        w.remaining = if same { w.remaining.min(left) } else { left };
        w.resets = resets;
    }

    async fn pace(&self) {
        pace(&self.next_slot, self.interval).await;
    }
}

tokio::task_local! {
    /// Requests sent (each attempt, each page) while a [`counted`] future runs.
    static SENT: std::cell::Cell<u64>;
}

/// Runs `work`, counting the requests (each attempt, each page) it sends through target
/// clients, HTTP and LDAP alike ([`note_sent`]): what one read took in pages and retries,
/// however many other reads run beside it.
pub(crate) async fn counted<F: std::future::Future>(work: F) -> (F::Output, u64) {
    SENT.scope(std::cell::Cell::new(0), async move {
        let output = work.await;
        (output, SENT.with(std::cell::Cell::get))
    })
    .await
}

/// Counts `n` requests (attempts, pages) sent for the [`counted`] future this runs in, if
/// any: each target client, HTTP or LDAP, counts what it sends.
pub(crate) fn note_sent(n: u64) {
    let _ = SENT.try_with(|sent| sent.set(sent.get() + n));
}

/// The wait before retry `attempt`: `backoff_ms` doubled each attempt (at most a minute),
/// half of it fixed and half jitter. Every kind's retries wait so.
pub(crate) fn backoff(
    backoff_ms: u64,
    attempt: u32,
    rng: &std::sync::Mutex<rand_chacha::ChaCha8Rng>,
) -> Duration {
    let exp = backoff_ms
        .saturating_mul(1u64 << (attempt.max(1) - 1).min(16))
        .min(60_000);
    let jitter = match rng.lock() {
        Ok(mut rng) => rng.random_range(0..=exp / 2 + 1),
        Err(_) => 0,
    };
    Duration::from_millis(exp / 2 + jitter)
}

/// Waits for the next request's slot: one every `interval` (`requests_per_second`).
pub(crate) async fn pace(next_slot: &Mutex<Instant>, interval: Duration) {
    let start = {
        let mut next = next_slot.lock().await;
        let start = (*next).max(Instant::now());
        *next = start + interval;
        start
    };
    // A timer rounds up to the next millisecond tick: one for a slot that is already here
    // cost every request a millisecond, most of a fast target's time.
    if start > Instant::now() {
        tokio::time::sleep_until(start).await;
    }
}

enum Attempt {
    /// The body, the next page's path, and a raw answer's body.
    Done(Option<Value>, Option<String>, Option<Raw>),
    Failed(TargetError, Option<Duration>),
}

/// The URL an answer's `Link` header gives for `rel="next"`.
fn next_link(headers: &reqwest::header::HeaderMap) -> Option<String> {
    headers
        .get_all(reqwest::header::LINK)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .find_map(|link| {
            let (url, params) = link.trim().split_once(';')?;
            let is_next = params
                .split(';')
                .any(|p| p.trim().replace(' ', "") == "rel=\"next\"" || p.trim() == "rel=next");
            is_next.then(|| {
                url.trim()
                    .trim_start_matches('<')
                    .trim_end_matches('>')
                    .to_string()
            })
        })
}
