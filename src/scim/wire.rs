//! SCIM 2.0 wire types with the RFC's field names (RFC 7643 resources, RFC 7644 messages).
//! Users stay JSON values: rosterd only reads their `id` and the one attribute it matches
//! workers by, and targets add extensions freely.

use serde::{Deserialize, Serialize};
use serde_json::Value;

pub const USER_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
pub const GROUP_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
pub const LIST_RESPONSE: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";
pub const PATCH_OP: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
pub const ERROR: &str = "urn:ietf:params:scim:api:messages:2.0:Error";

/// A member of a group (RFC 7643 section 4.2): `value` is the member's `id`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    pub value: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display: Option<String>,
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
}

impl Member {
    pub fn id(value: impl Into<String>) -> Member {
        Member {
            value: value.into(),
            display: None,
            kind: None,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Group {
    #[serde(default)]
    pub schemas: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    pub display_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_id: Option<String>,
    /// Absent when the target leaves members out of the answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub members: Option<Vec<Member>>,
}

impl Group {
    pub fn new(display_name: &str, members: Vec<Member>) -> Group {
        Group {
            schemas: vec![GROUP_SCHEMA.to_string()],
            id: None,
            display_name: display_name.to_string(),
            external_id: None,
            members: Some(members),
        }
    }
}

/// RFC 7644 section 3.4.2: a page of query results.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ListResponse<T> {
    #[serde(default)]
    pub schemas: Vec<String>,
    #[serde(rename = "totalResults")]
    pub total_results: u64,
    #[serde(
        rename = "startIndex",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub start_index: Option<u64>,
    #[serde(
        rename = "itemsPerPage",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub items_per_page: Option<u64>,
    #[serde(rename = "Resources", default = "Vec::new")]
    pub resources: Vec<T>,
}

/// RFC 7644 section 3.5.2: a PATCH request body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PatchRequest {
    pub schemas: Vec<String>,
    #[serde(rename = "Operations")]
    pub operations: Vec<PatchOperation>,
}

impl PatchRequest {
    pub fn new(operations: Vec<PatchOperation>) -> PatchRequest {
        PatchRequest {
            schemas: vec![PATCH_OP.to_string()],
            operations,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PatchOperation {
    /// `add`, `remove` or `replace`; some targets send them capitalised, so reading ignores
    /// case.
    pub op: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<Value>,
}

/// RFC 7644 section 3.12: an error answer. `status` is a string in the RFC, a number at some
/// targets.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ErrorResponse {
    #[serde(default)]
    pub schemas: Vec<String>,
    #[serde(default)]
    pub status: Value,
    #[serde(rename = "scimType", default, skip_serializing_if = "Option::is_none")]
    pub scim_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

impl ErrorResponse {
    pub fn new(status: u16, scim_type: Option<&str>, detail: impl Into<String>) -> ErrorResponse {
        ErrorResponse {
            schemas: vec![ERROR.to_string()],
            status: Value::String(status.to_string()),
            scim_type: scim_type.map(str::to_string),
            detail: Some(detail.into()),
        }
    }
}

/// `attr eq "value"` with the value quoted per RFC 7644 section 3.4.2.2.
pub fn eq_filter(attribute: &str, value: &str) -> String {
    let escaped = value.replace('\\', "\\\\").replace('"', "\\\"");
    format!("{attribute} eq \"{escaped}\"")
}

/// The values a user has for a simple attribute path such as `userName`, `externalId`,
/// `emails` or `emails.value` (multi-valued attributes give every value).
pub fn user_values<'a>(user: &'a Value, path: &str) -> Vec<&'a str> {
    let (head, sub) = path.split_once('.').unwrap_or((path, "value"));
    let field = user
        .as_object()
        .and_then(|o| o.iter().find(|(k, _)| k.eq_ignore_ascii_case(head)))
        .map(|(_, v)| v);
    match field {
        Some(Value::String(s)) => vec![s.as_str()],
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(|item| match item {
                Value::String(s) => Some(s.as_str()),
                Value::Object(o) => o
                    .iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case(sub))
                    .and_then(|(_, v)| v.as_str()),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// Whether a target's resource id can be stored and sent back: not empty, at most 1,024
/// bytes, no control characters (PostgreSQL's text cannot hold NUL, and a path with a
/// line break is not a path).
pub fn is_valid_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 1_024 && !id.chars().any(char::is_control)
}

#[cfg(test)]
mod tests;
