//! The SCIM 2.0 client: one method per endpoint over the shared [`Requester`], which paces,
//! limits concurrency, authenticates and retries. An error keeps its status, `scimType`
//! (as its code) and `detail`.

use reqwest::Method;
use serde_json::Value;

use super::wire::{self, ErrorResponse, Group, ListResponse, Member, PatchOperation, PatchRequest};
use crate::config::TargetConfig;
use crate::http::client::{Dialect, MaySend, Request, Requester, Stats, TargetError};
use crate::http::encode;

/// SCIM's media type (RFC 7644 section 3.1) and error body (section 3.12).
const SCIM: Dialect = Dialect {
    media_type: "application/scim+json",
    error: scim_error,
    url_help: "the app's SCIM base URL",
    undecodable: "not SCIM JSON",
    rate_limits: None,
    throttle_codes: &[],
};

fn scim_error(body: &Value) -> (Option<String>, Option<String>) {
    match serde_json::from_value::<ErrorResponse>(body.clone()) {
        Ok(e) => (e.scim_type, e.detail),
        Err(_) => (None, None),
    }
}

/// A SCIM target's endpoints.
pub struct Client {
    http: Requester,
}

impl Client {
    pub fn new(target: &str, config: &TargetConfig) -> Result<Client, TargetError> {
        let http = Requester::new(target, config, SCIM)?;
        Ok(Client { http })
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

    /// `METHOD URL` and the JSON body, as `--dry-run` prints it.
    pub fn show(&self, request: &Request) -> String {
        self.http.show(request)
    }

    /// Sends `request` (see [`Requester::send`]).
    pub async fn send(&self, request: &Request) -> Result<Option<Value>, TargetError> {
        self.http.send(request).await
    }

    // --- Endpoints -------------------------------------------------------------------------

    /// `None` when the target says 404.
    pub async fn get_group(&self, id: &str) -> Result<Option<Group>, TargetError> {
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

    pub async fn find_groups(&self, display_name: &str) -> Result<Vec<Group>, TargetError> {
        let filter = wire::eq_filter("displayName", display_name);
        let request = Request {
            method: Method::GET,
            path: format!("/Groups?filter={}", encode(&filter)),
            body: None,
        };
        let list: ListResponse<Group> = self.http.decode(&request, self.send(&request).await?)?;
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

    pub async fn create_group(&self, request: &Request) -> Result<Group, TargetError> {
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

    pub async fn find_users(
        &self,
        attribute: &str,
        value: &str,
    ) -> Result<Vec<Value>, TargetError> {
        let filter = wire::eq_filter(attribute, value);
        let request = Request {
            method: Method::GET,
            path: format!("/Users?filter={}", encode(&filter)),
            body: None,
        };
        let list: ListResponse<Value> = self.http.decode(&request, self.send(&request).await?)?;
        Ok(list.resources)
    }

    /// The users among `ids` that the target has: one filter of `id eq` terms joined by
    /// `or` (RFC 7644 section 3.4.2.2), asking for as many results as ids.
    pub async fn users_with_ids(&self, ids: &[&str]) -> Result<Vec<Value>, TargetError> {
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
        let list: ListResponse<Value> = self.http.decode(&request, self.send(&request).await?)?;
        Ok(list.resources)
    }

    /// One user by id; `None` when the target says 404.
    pub async fn get_user(&self, id: &str) -> Result<Option<Value>, TargetError> {
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
    pub async fn user_schema(&self) -> Result<Option<Value>, TargetError> {
        // A refusal other than of our credentials, or an answer that is no schema, means
        // only that the target does not describe itself.
        let described = |answer: Result<Option<Value>, TargetError>| match answer {
            Ok(body) => Ok(body),
            Err(e @ TargetError::Status { .. }) if !e.is_auth() => Ok(None),
            Err(TargetError::Decode { .. }) => Ok(None),
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
    ) -> Result<ListResponse<Value>, TargetError> {
        let request = Request {
            method: Method::GET,
            path: format!("/Users?startIndex={start}&count={count}"),
            body: None,
        };
        self.http.decode(&request, self.send(&request).await?)
    }

    // --- The request helper ------------------------------------------------------------------

    fn decode_group(&self, request: &Request, body: Option<Value>) -> Result<Group, TargetError> {
        let group: Group = self.http.decode(request, body)?;
        self.checked_group(request, group)
    }

    /// A group as the protocol requires it: an `id` (RFC 7643 section 3.1), and member
    /// values that are ids too. What is missing is an error, never a default: a group stored
    /// with an empty id would send every later PATCH to `/Groups/`.
    fn checked_group(&self, request: &Request, group: Group) -> Result<Group, TargetError> {
        let bad = |message: String| self.http.unusable(request, message);
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
}
