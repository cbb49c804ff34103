//! The Okta management API's endpoints that rosterd uses, over the shared
//! [`Requester`] (pacing, retries, `SSWS` auth, and Okta's `X-Rate-Limit-*` headers, which
//! hold requests back before a 429). Listings follow the `Link: rel="next"` header.

use reqwest::Method;
use serde::Deserialize;
use serde_json::{json, Map, Value};
use tokio::sync::Mutex;

use crate::config::TargetConfig;
use crate::http::client::{Dialect, MaySend, Request, Requester, Stats, TargetError};
use crate::http::encode;

/// Okta speaks plain JSON; its errors carry `errorCode` and `errorSummary`, with
/// `errorCauses` for the fields at fault.
const OKTA: Dialect = Dialect {
    media_type: "application/json",
    error: okta_error,
    url_help: "the Okta org's URL, such as https://example.okta.com",
    undecodable: "not what Okta answers",
    rate_limits: Some(super::bucket),
    throttle_codes: &[],
};

fn okta_error(body: &Value) -> (Option<String>, Option<String>) {
    let code = body["errorCode"].as_str().map(str::to_string);
    let mut detail = body["errorSummary"].as_str().map(str::to_string);
    let causes: Vec<&str> = body["errorCauses"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c["errorSummary"].as_str())
        .collect();
    if !causes.is_empty() {
        let d = detail.get_or_insert_with(String::new);
        d.push_str(": ");
        d.push_str(&causes.join("; "));
    }
    (code, detail)
}

/// The one group type rosterd manages.
pub const OKTA_GROUP: &str = "OKTA_GROUP";

/// Members per page when reading a group (Okta allows up to 1,000 here).
const MEMBER_PAGE: u64 = 1_000;

#[derive(Debug, Clone, Deserialize)]
pub struct Group {
    pub id: String,
    #[serde(rename = "type", default)]
    pub kind: String,
    pub profile: GroupProfile,
}

#[derive(Debug, Clone, Deserialize)]
pub struct GroupProfile {
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct User {
    pub id: String,
    #[serde(default)]
    pub profile: Map<String, Value>,
}

impl User {
    /// The profile attribute's value, as text.
    pub fn value(&self, attribute: &str) -> Option<&str> {
        self.profile.get(attribute).and_then(Value::as_str)
    }
}

/// An active group rule: its name, and the groups it assigns people to.
type GroupRule = (String, Vec<String>);

/// An Okta target's endpoints.
pub struct Client {
    http: Requester,
    /// The active group rules, once read in this push.
    rules: Mutex<Option<Vec<GroupRule>>>,
}

impl Client {
    pub fn new(target: &str, config: &TargetConfig) -> Result<Client, TargetError> {
        let http = Requester::new(target, config, OKTA)?;
        Ok(Client {
            http,
            rules: Mutex::new(None),
        })
    }

    /// See [`Requester::gated`].
    pub fn gated(mut self, may_send: MaySend) -> Client {
        self.http = self.http.gated(may_send);
        self
    }

    /// The requests sent so far, by kind.
    pub fn stats(&self) -> &Stats {
        &self.http.stats
    }

    pub fn show(&self, request: &Request) -> String {
        self.http.show(request)
    }

    fn refused(&self, message: String) -> TargetError {
        TargetError::Refused {
            target: self.http.target().to_string(),
            message,
        }
    }

    // --- Groups ------------------------------------------------------------------------------

    /// The groups named exactly `name`, of any type.
    pub async fn find_groups(&self, name: &str) -> Result<Vec<Group>, TargetError> {
        let search = format!("profile.name eq {}", quoted(name));
        let request = Request::get(format!("/api/v1/groups?search={}", encode(&search)));
        let groups: Vec<Group> = self.all_pages(request).await?;
        Ok(groups
            .into_iter()
            .filter(|g| g.profile.name == name)
            .collect())
    }

    pub fn get_group_request(&self, id: &str) -> Request {
        Request::get(format!("/api/v1/groups/{}", encode(id)))
    }

    /// The group `id`; `None` when Okta says 404.
    pub async fn get_group(&self, id: &str) -> Result<Option<Group>, TargetError> {
        let request = self.get_group_request(id);
        match self.http.send(&request).await {
            Ok(body) => self.http.decode(&request, body).map(Some),
            Err(e) if e.status() == Some(404) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The user ids of the group's members, every page of them.
    pub async fn member_ids(&self, id: &str) -> Result<Vec<String>, TargetError> {
        let request = Request::get(format!(
            "/api/v1/groups/{}/users?limit={MEMBER_PAGE}",
            encode(id)
        ));
        let users: Vec<User> = self.all_pages(request).await?;
        Ok(users.into_iter().map(|u| u.id).collect())
    }

    pub fn create_group_request(&self, name: &str, description: &str) -> Request {
        Request {
            method: Method::POST,
            path: "/api/v1/groups".into(),
            body: Some(json!({"profile": {"name": name, "description": description}})),
        }
    }

    pub async fn create_group(&self, name: &str, description: &str) -> Result<Group, TargetError> {
        let request = self.create_group_request(name, description);
        let body = self.http.send(&request).await?;
        self.http.decode(&request, body)
    }

    pub fn rename_request(&self, id: &str, name: &str, description: Option<&str>) -> Request {
        Request {
            method: Method::PUT,
            path: format!("/api/v1/groups/{}", encode(id)),
            body: Some(json!({"profile": {"name": name, "description": description}})),
        }
    }

    /// Renames the group, keeping the rest of its profile (a PUT replaces all of it).
    pub async fn rename(&self, id: &str, name: &str) -> Result<(), TargetError> {
        let request = self.get_group_request(id);
        let body = self.http.send(&request).await?;
        let group: Group = self.http.decode(&request, body)?;
        self.check_ours(&group).await?;
        self.send(&self.rename_request(id, name, group.profile.description.as_deref()))
            .await
    }

    pub fn membership_request(&self, group: &str, user: &str, add: bool) -> Request {
        Request {
            method: if add { Method::PUT } else { Method::DELETE },
            path: format!("/api/v1/groups/{}/users/{}", encode(group), encode(user)),
            body: None,
        }
    }

    pub fn delete_request(&self, id: &str) -> Request {
        Request {
            method: Method::DELETE,
            path: format!("/api/v1/groups/{}", encode(id)),
            body: None,
        }
    }

    pub async fn send(&self, request: &Request) -> Result<(), TargetError> {
        self.http.send(request).await.map(|_| ())
    }

    /// Why rosterd must not touch `group`: it is not an `OKTA_GROUP`, or an active group
    /// rule fills it (the rules are read once per push).
    pub async fn check_ours(&self, group: &Group) -> Result<(), TargetError> {
        if group.kind != OKTA_GROUP {
            return Err(self.refused(format!(
                "group `{}` ({}) is of type {}; rosterd manages only OKTA_GROUP groups (an APP_GROUP is the app's to fill, a BUILT_IN group Okta's)",
                group.profile.name, group.id, group.kind
            )));
        }
        let mut rules = self.rules.lock().await;
        if rules.is_none() {
            *rules = Some(match self.group_rules().await {
                Ok(rules) => rules,
                // Not allowed to read the rules: it cannot be told whether one fills the
                // group, so the group is not touched (and the target's other work goes on).
                Err(e) if e.status() == Some(403) => {
                    return Err(self.refused(format!(
                        "the API token may not read the group rules ({e}), so rosterd cannot tell whether a rule fills group `{}`; it is not touched\nhelp: give the token's admin a role that can read group rules (docs/targets/okta.md)",
                        group.profile.name
                    )))
                }
                Err(e) => return Err(e),
            });
        }
        if let Some((rule, _)) = rules
            .iter()
            .flatten()
            .find(|(_, groups)| groups.contains(&group.id))
        {
            return Err(self.refused(format!(
                "group `{}` ({}) is filled by the Okta group rule `{rule}`; rosterd and the rule would undo each other's changes\nhelp: deactivate the rule in Okta, or push to another group",
                group.profile.name, group.id
            )));
        }
        Ok(())
    }

    /// The active group rules: each one's name and the groups it assigns people to.
    async fn group_rules(&self) -> Result<Vec<GroupRule>, TargetError> {
        let request = Request::get("/api/v1/groups/rules?limit=200".into());
        let rules: Vec<Value> = self.all_pages(request).await?;
        Ok(rules
            .iter()
            .filter(|r| r["status"] == "ACTIVE")
            .map(|r| {
                let name = r["name"].as_str().unwrap_or("(unnamed)").to_string();
                let groups = r["actions"]["assignUserToGroups"]["groupIds"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|g| g.as_str().map(str::to_string))
                    .collect();
                (name, groups)
            })
            .collect())
    }

    // --- Users -------------------------------------------------------------------------------

    /// The users whose profile `attribute` equals `value` (Okta's search compares these
    /// without case).
    pub async fn find_users(&self, attribute: &str, value: &str) -> Result<Vec<User>, TargetError> {
        let search = format!("profile.{attribute} eq {}", quoted(value));
        let request = Request::get(format!("/api/v1/users?search={}", encode(&search)));
        let body = self.http.send(&request).await?;
        self.http.decode(&request, body)
    }

    /// One page of the users: from the start, or from the path a page linked next. The
    /// users and the next page's path.
    pub async fn list_users(
        &self,
        next: Option<&str>,
        limit: u64,
    ) -> Result<(Vec<User>, Option<String>), TargetError> {
        let request = Request::get(
            next.map_or_else(|| format!("/api/v1/users?limit={limit}"), str::to_string),
        );
        let (body, next) = self.http.send_page(&request).await?;
        Ok((self.http.decode(&request, body)?, next))
    }

    /// The users among `ids`, asked in one search of `id eq` terms joined by `or`.
    pub async fn users_with_ids(&self, ids: &[&str]) -> Result<Vec<User>, TargetError> {
        let search = ids
            .iter()
            .map(|id| format!("id eq {}", quoted(id)))
            .collect::<Vec<_>>()
            .join(" or ");
        let request = Request::get(format!(
            "/api/v1/users?search={}&limit={}",
            encode(&search),
            ids.len().max(1)
        ));
        let body = self.http.send(&request).await?;
        self.http.decode(&request, body)
    }

    /// The user `id`; `None` when Okta says 404.
    pub async fn get_user(&self, id: &str) -> Result<Option<User>, TargetError> {
        let request = Request::get(format!("/api/v1/users/{}", encode(id)));
        match self.http.send(&request).await {
            Ok(body) => self.http.decode(&request, body).map(Some),
            Err(e) if e.status() == Some(404) => Ok(None),
            Err(e) => Err(e),
        }
    }

    // --- Helpers -----------------------------------------------------------------------------

    /// Every page of a listing, following `Link: rel="next"`; at most 100,000 pages.
    async fn all_pages<T: serde::de::DeserializeOwned>(
        &self,
        first: Request,
    ) -> Result<Vec<T>, TargetError> {
        let mut out = Vec::new();
        let mut request = first;
        for _ in 0..100_000 {
            let (body, next) = self.http.send_page(&request).await?;
            let page: Vec<T> = self.http.decode(&request, body)?;
            let empty = page.is_empty();
            out.extend(page);
            match next {
                Some(path) if !empty && path != request.path => request = Request::get(path),
                _ => return Ok(out),
            }
        }
        Err(self
            .http
            .unusable(&request, "the listing links more than 100,000 pages".into()))
    }
}

/// A string as Okta's search expressions quote it.
fn quoted(value: &str) -> String {
    format!("\"{}\"", value.replace('\\', "\\\\").replace('"', "\\\""))
}
