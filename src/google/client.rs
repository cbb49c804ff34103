//! The Directory API endpoints that rosterd uses, over the shared [`Requester`] (pacing,
//! retries with exponential backoff and jitter on 429, 5xx and Google's 403 quota
//! answers, and the service account's access token). Listings follow `nextPageToken`;
//! member changes and user checks go in batch requests.

use reqwest::Method;
use serde::Deserialize;
use serde_json::{json, Value};

use super::batch;
use crate::config::TargetConfig;
use crate::http::client::{Dialect, MaySend, Raw, Request, Requester, Stats, TargetError};
use crate::http::encode;

const GOOGLE: Dialect = Dialect {
    media_type: "application/json",
    error: super::error_of,
    url_help: "https://admin.googleapis.com (or the emulator's tenant URL)",
    undecodable: "not what the Directory API answers",
    rate_limits: None,
    throttle_codes: super::THROTTLE_REASONS,
};

const V1: &str = "/admin/directory/v1";

/// Members per page when reading a group (the API's most).
const MEMBER_PAGE: u64 = 200;
/// Users per page when listing them (the API's most).
const USER_PAGE: u64 = 500;

#[derive(Debug, Clone, Deserialize)]
pub struct Group {
    pub id: String,
    pub email: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct User {
    pub id: String,
    pub primary_email: String,
    #[serde(default)]
    pub aliases: Vec<String>,
}

impl User {
    /// The key rosterd knows the user by: its primary address, in lower case.
    pub fn key(&self) -> String {
        self.primary_email.to_lowercase()
    }
}

#[derive(Debug, Clone, Deserialize)]
struct Member {
    #[serde(default)]
    email: Option<String>,
    #[serde(default)]
    id: Option<String>,
    #[serde(rename = "type", default)]
    kind: Option<String>,
}

/// A group's members as rosterd reads them: the users it manages (their primary addresses,
/// entry by entry), and the members it keeps its hands off, described.
#[derive(Debug, Default)]
pub struct Members {
    pub users: Vec<String>,
    pub kept: Vec<String>,
}

/// A Google Workspace target's endpoints.
pub struct Client {
    http: Requester,
    customer: String,
    /// The account's domains, in lower case; empty: none is known.
    domains: Vec<String>,
    batch_size: usize,
    /// The base URL's path, which a batch's parts (written from the host's root) start with.
    root: String,
    /// When the next call may go, and the time each call takes of the quota.
    next_call: tokio::sync::Mutex<tokio::time::Instant>,
    call_interval: std::time::Duration,
}

impl Client {
    pub fn new(target: &str, config: &TargetConfig) -> Result<Client, TargetError> {
        let google = config.google();
        let http = Requester::new(target, config, GOOGLE)?;
        Ok(Client {
            root: http.base_path(),
            http,
            customer: google.customer,
            domains: config.google_domains(),
            batch_size: google.batch_size,
            next_call: tokio::sync::Mutex::new(tokio::time::Instant::now()),
            call_interval: std::time::Duration::from_secs(60)
                .div_f64(google.calls_per_minute.max(1) as f64),
        })
    }

    /// See [`Requester::gated`].
    pub fn gated(mut self, may_send: MaySend) -> Client {
        self.http = self.http.gated(may_send);
        self
    }

    pub fn stats(&self) -> &Stats {
        &self.http.stats
    }

    /// Waits until `calls` more calls keep within `calls_per_minute`: a request goes when
    /// its turn comes, and the next waits for the share of the minute this one's calls take.
    async fn pace(&self, calls: usize) {
        let start = {
            let mut next = self.next_call.lock().await;
            let start = (*next).max(tokio::time::Instant::now());
            *next = start + self.call_interval.mul_f64(calls as f64);
            start
        };
        if start > tokio::time::Instant::now() {
            tokio::time::sleep_until(start).await;
        }
    }

    /// Sends one call, paced.
    async fn call(&self, request: &Request) -> Result<Option<Value>, TargetError> {
        self.pace(1).await;
        self.http.send(request).await
    }

    /// rosterd will not do what it was asked, and `message` says why: nothing was sent.
    pub fn refused(&self, message: String) -> TargetError {
        TargetError::Refused {
            target: self.http.target().to_string(),
            message,
        }
    }

    pub fn batch_size(&self) -> usize {
        self.batch_size
    }

    pub fn show(&self, request: &Request) -> String {
        self.http.show(request)
    }

    /// How a batch of `parts` is sent, as `--dry-run` shows it: the batch request, then
    /// each call in it.
    pub fn show_batch(&self, parts: &[Request]) -> Vec<String> {
        let mut out = vec![format!(
            "{} ({} calls in one batch):",
            self.show(&batch_request()),
            parts.len()
        )];
        out.extend(parts.iter().map(|p| format!("  {}", self.show(p))));
        out
    }

    // --- Groups ------------------------------------------------------------------------------

    pub fn get_group_request(&self, key: &str) -> Request {
        Request::get(format!("{V1}/groups/{}", encode(key)))
    }

    /// The group whose address (or id) is `key`; `None` when Google says 404.
    pub async fn get_group(&self, key: &str) -> Result<Option<Group>, TargetError> {
        let request = self.get_group_request(key);
        match self.call(&request).await {
            Ok(body) => self.http.decode(&request, body).map(Some),
            Err(e) if e.status() == Some(404) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The group's members, every page of them.
    pub async fn members(&self, key: &str) -> Result<Members, TargetError> {
        let mut out = Members::default();
        let mut token: Option<String> = None;
        for _ in 0..100_000 {
            let mut path = format!(
                "{V1}/groups/{}/members?maxResults={MEMBER_PAGE}",
                encode(key)
            );
            if let Some(t) = &token {
                path.push_str(&format!("&pageToken={}", encode(t)));
            }
            let request = Request::get(path);
            let body = self.call(&request).await?.unwrap_or(Value::Null);
            let page: Vec<Member> = self.http.decode(&request, Some(listed(&body, "members")))?;
            for m in page {
                self.sort_member(m, &mut out);
            }
            match body["nextPageToken"].as_str() {
                Some(next) if !next.is_empty() && token.as_deref() != Some(next) => {
                    token = Some(next.to_string());
                }
                _ => return Ok(out),
            }
        }
        Err(self.http.unusable(
            &self.get_group_request(key),
            "its members run to more than 100,000 pages".into(),
        ))
    }

    /// Puts a member with the users rosterd manages, or with those it keeps.
    fn sort_member(&self, m: Member, out: &mut Members) {
        let email = m.email.as_deref().map(str::to_lowercase);
        let kind = m.kind.as_deref().unwrap_or("USER");
        match (kind, email) {
            ("USER", Some(email)) if self.in_domains(&email) => out.users.push(email),
            ("USER", Some(email)) => out
                .kept
                .push(format!("{email} (outside {})", self.domains.join(", "))),
            ("GROUP", Some(email)) => out.kept.push(format!("{email} (a group)")),
            ("CUSTOMER", _) => out.kept.push(format!(
                "{} (everyone in the account)",
                m.id.as_deref().unwrap_or("the customer")
            )),
            (kind, email) => out.kept.push(format!(
                "{} ({kind})",
                email.or(m.id).unwrap_or_else(|| "(no address)".into())
            )),
        }
    }

    /// Whether an address is in one of the account's domains (or their subdomains); with
    /// none known, every address is.
    fn in_domains(&self, email: &str) -> bool {
        let Some((_, domain)) = email.rsplit_once('@') else {
            return false;
        };
        self.domains.is_empty()
            || self
                .domains
                .iter()
                .any(|d| domain == d || domain.ends_with(&format!(".{d}")))
    }

    pub fn create_group_request(&self, email: &str, name: &str, description: &str) -> Request {
        Request {
            method: Method::POST,
            path: format!("{V1}/groups"),
            body: Some(json!({"email": email, "name": name, "description": description})),
        }
    }

    pub async fn create_group(&self, request: &Request) -> Result<Group, TargetError> {
        let body = self.call(request).await?;
        self.http.decode(request, body)
    }

    /// Renames the group: its name only (its address stays).
    pub fn rename_request(&self, key: &str, name: &str) -> Request {
        Request {
            method: Method::PATCH,
            path: format!("{V1}/groups/{}", encode(key)),
            body: Some(json!({ "name": name })),
        }
    }

    pub fn delete_request(&self, key: &str) -> Request {
        Request {
            method: Method::DELETE,
            path: format!("{V1}/groups/{}", encode(key)),
            body: None,
        }
    }

    pub async fn send(&self, request: &Request) -> Result<(), TargetError> {
        self.call(request).await.map(|_| ())
    }

    /// The calls that add and remove members (by address).
    pub fn member_calls(&self, group: &str, add: &[String], remove: &[String]) -> Vec<Request> {
        let members = format!("{V1}/groups/{}/members", encode(group));
        add.iter()
            .map(|user| Request {
                method: Method::POST,
                path: members.clone(),
                body: Some(json!({"email": user, "role": "MEMBER"})),
            })
            .chain(remove.iter().map(|user| Request {
                method: Method::DELETE,
                path: format!("{members}/{}", encode(user)),
                body: None,
            }))
            .collect()
    }

    /// Makes member changes in batches. A member already there (409 on insert) or already
    /// gone (404 of the member on delete) is as wanted; the first other failure is the
    /// error, once every call has had its answer.
    pub async fn change_members(&self, calls: Vec<Request>) -> Result<(), TargetError> {
        let answers = self.batches(&calls, true).await?;
        let mut outcomes = calls
            .iter()
            .zip(answers)
            .map(|(call, answer)| member_outcome(&self.http, call, answer));
        outcomes.find(Result::is_err).unwrap_or(Ok(()))
    }

    /// Sends `calls` in batches (of the configured size for changes; as many as Google
    /// takes in one, 1,000, for reads): the answer to each, in order. A
    /// call Google answers with a quota error or 5xx is sent again, in a later batch, after
    /// an exponential backoff with jitter, as Google asks; one still refused after the
    /// retries is the error.
    async fn batches(
        &self,
        calls: &[Request],
        writes: bool,
    ) -> Result<Vec<batch::Answer>, TargetError> {
        let mut out: Vec<Option<batch::Answer>> = vec![None; calls.len()];
        let indexes: Vec<usize> = (0..calls.len()).collect();
        let size = if writes {
            self.batch_size.max(1)
        } else {
            1_000
        };
        for chunk in indexes.chunks(size) {
            let mut pending: Vec<usize> = chunk.to_vec();
            let mut attempt = 0;
            while !pending.is_empty() {
                let sent: Vec<Request> = pending.iter().map(|&i| calls[i].clone()).collect();
                let answers = self.batch(&sent, writes).await?;
                let mut again = Vec::new();
                let mut last = None;
                for (&i, answer) in pending.iter().zip(answers) {
                    let error = (!(200..300).contains(&answer.status)).then(|| {
                        self.http
                            .error_of(&calls[i], answer.status, answer.body.as_ref())
                    });
                    match error {
                        Some(e) if e.throttled() || e.status().is_some_and(|s| s >= 500) => {
                            last = Some(e);
                            again.push(i);
                        }
                        _ => out[i] = Some(answer),
                    }
                }
                pending = again;
                if let Some(e) = last {
                    attempt += 1;
                    if attempt > self.http.retries() {
                        return Err(e);
                    }
                    self.http
                        .stats
                        .retries
                        .fetch_add(pending.len() as u64, std::sync::atomic::Ordering::Relaxed);
                    tokio::time::sleep(self.http.backoff(attempt)).await;
                }
            }
        }
        Ok(out.into_iter().flatten().collect())
    }

    /// Sends `calls` as one batch request: their answers, in order.
    async fn batch(
        &self,
        calls: &[Request],
        writes: bool,
    ) -> Result<Vec<batch::Answer>, TargetError> {
        let root = &self.root;
        let parts: Vec<batch::Part> = calls
            .iter()
            .map(|c| batch::Part {
                method: c.method.to_string(),
                path: format!("{root}{}", c.path),
                body: c.body.clone(),
            })
            .collect();
        let raw = Raw {
            content_type: batch::content_type(),
            body: batch::encode(&parts),
            writes,
            // Each call is safe to repeat: an insert of a member there is a 409, a delete
            // of one gone a 404, and both are taken as done.
            idempotent: true,
        };
        let request = batch_request();
        self.pace(calls.len()).await;
        let answer = self.http.send_raw(&request, &raw).await?;
        batch::decode(&answer.body, &answer.content_type, calls.len()).map_err(|e| {
            self.http
                .unusable(&request, format!("not a batch answer: {e}"))
        })
    }

    // --- Users -------------------------------------------------------------------------------

    /// The user whose address (primary or alias) or id is `key`; `None` when Google says
    /// 404.
    pub async fn get_user(&self, key: &str) -> Result<Option<User>, TargetError> {
        let request = Request::get(format!("{V1}/users/{}", encode(key)));
        match self.call(&request).await {
            Ok(body) => self.http.decode(&request, body).map(Some),
            Err(e) if e.status() == Some(404) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// One page of the account's users: from the start, or from a page token. The users
    /// and the next page's token.
    pub async fn list_users(
        &self,
        token: Option<&str>,
        count: u64,
    ) -> Result<(Vec<User>, Option<String>), TargetError> {
        let mut path = format!(
            "{V1}/users?customer={}&maxResults={}",
            encode(&self.customer),
            count.clamp(1, USER_PAGE)
        );
        if let Some(t) = token {
            path.push_str(&format!("&pageToken={}", encode(t)));
        }
        let request = Request::get(path);
        let body = self.call(&request).await?.unwrap_or(Value::Null);
        let users: Vec<User> = self.http.decode(&request, Some(listed(&body, "users")))?;
        let next = body["nextPageToken"]
            .as_str()
            .filter(|t| !t.is_empty())
            .map(str::to_string);
        Ok((users, next))
    }

    /// Those of `keys` that are users, asked in one batch of `users.get` calls.
    pub async fn users_among(&self, keys: &[&str]) -> Result<Vec<String>, TargetError> {
        let calls: Vec<Request> = keys
            .iter()
            .map(|k| Request::get(format!("{V1}/users/{}", encode(k))))
            .collect();
        let mut out = Vec::new();
        for (call, answer) in calls.iter().zip(self.batches(&calls, false).await?) {
            match answer.status {
                200..=299 => {
                    let user: User = self.http.decode(call, answer.body)?;
                    out.push(user.key());
                }
                404 => {}
                status => return Err(self.http.error_of(call, status, answer.body.as_ref())),
            }
        }
        Ok(out)
    }
}

/// Whether a member change's answer leaves the group as wanted.
fn member_outcome(
    http: &Requester,
    call: &Request,
    answer: batch::Answer,
) -> Result<(), TargetError> {
    let error = match answer.status {
        200..=299 => return Ok(()),
        status => http.error_of(call, status, answer.body.as_ref()),
    };
    let message = error.detail().unwrap_or_default();
    match (&call.method, error.status()) {
        // "Member already exists."
        (&Method::POST, Some(409)) => Ok(()),
        // "Resource Not Found: memberKey": the member is gone; a missing group is an error.
        (&Method::DELETE, Some(404)) if message.contains("memberKey") => Ok(()),
        _ => Err(error),
    }
}

/// The batch endpoint, per the Directory API's discovery document (`batchPath`).
fn batch_request() -> Request {
    Request {
        method: Method::POST,
        path: "/batch".into(),
        body: None,
    }
}

/// A listing's array (`members`, `users`): absent when the page is empty.
fn listed(body: &Value, field: &str) -> Value {
    match &body[field] {
        Value::Null => json!([]),
        list => list.clone(),
    }
}
