//! Okta's management API (`/api/v1`), for a target of `kind: okta`: the identity provider's
//! own groups, so that its app assignments and pushes follow the rules. Only groups of type
//! `OKTA_GROUP` are touched; `APP_GROUP` and `BUILT_IN` groups, and groups an Okta group rule
//! fills, are refused by name.

pub mod client;

pub use client::Client;

/// The rate-limit bucket of a request, as Okta's management rate limits group endpoints
/// (its "Management rate limits" page): a group by id; the rest of `/api/v1/groups` (lists,
/// creation, members, rules); listing and searching users; a user by id or login; the rest.
/// The client keeps what each answer says of its bucket; the emulator counts by them.
pub fn bucket(method: &reqwest::Method, path: &str) -> &'static str {
    let path = path.split('?').next().unwrap_or(path);
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match segments.as_slice() {
        ["api", "v1", "groups", id] if *id != "rules" => "groups/{id}",
        ["api", "v1", "groups", ..] => "groups",
        ["api", "v1", "users"] => "users",
        ["api", "v1", "users", _] if method == reqwest::Method::GET => "users/{id} (get)",
        ["api", "v1", "users", ..] => "users/{id}",
        _ => "other",
    }
}

/// The requests a minute Okta allows in `bucket` for a Workforce Identity org, as its
/// "Management rate limits" page lists them; the whole org is further held to 7,000.
pub fn documented_per_minute(bucket: &str) -> u64 {
    match bucket {
        "groups/{id}" => 1_000,
        "groups" => 500,
        "users" => 600,
        "users/{id} (get)" => 2_000,
        "users/{id}" => 600,
        _ => 1_200,
    }
}
