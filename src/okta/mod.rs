//! Okta's management API (`/api/v1`), for a target of `kind: okta`: the identity provider's
//! own groups, so that its app assignments and pushes follow the rules. Only groups of type
//! `OKTA_GROUP` are touched; `APP_GROUP` and `BUILT_IN` groups, and groups an Okta group rule
//! fills, are refused by name.

pub mod client;

pub use client::Client;

/// The rate-limit bucket of a request, as this client and the emulator count them: group
/// membership changes, the rest of the group endpoints, group rules, and users.
pub fn bucket(method: &reqwest::Method, path: &str) -> &'static str {
    let path = path.split('?').next().unwrap_or(path);
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match segments.as_slice() {
        ["api", "v1", "groups", "rules", ..] => "group-rules",
        ["api", "v1", "groups", _, "users", _] if method != reqwest::Method::GET => {
            "group-membership"
        }
        ["api", "v1", "groups", ..] => "groups",
        ["api", "v1", "users", ..] => "users",
        _ => "other",
    }
}
