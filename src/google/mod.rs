//! Google Workspace's Admin SDK Directory API (`/admin/directory/v1`), for a target of
//! `kind: google_workspace`: Google Groups, each with an email address. Users and members
//! are known by their primary address (lower case), which every call takes as a key; member
//! changes go in batch requests ([`batch`]). Members that are groups, the whole account, or
//! addresses outside the account's domains are kept: reported, never removed.

pub mod batch;
pub mod client;

pub use client::Client;

/// The reasons with which Google answers 403 to ask for fewer requests ("Directory API:
/// Limits and quotas"): retried with exponential backoff, as 429 and 503 are.
pub const THROTTLE_REASONS: &[&str] = &[
    "rateLimitExceeded",
    "userRateLimitExceeded",
    "quotaExceeded",
];

/// Google's error body: `{"error": {"code", "message", "errors": [{"reason", ...}]}}`. The
/// first reason is the code; the message the detail.
pub fn error_of(body: &serde_json::Value) -> (Option<String>, Option<String>) {
    let error = &body["error"];
    let code = error["errors"][0]["reason"]
        .as_str()
        .or_else(|| error["status"].as_str())
        .map(str::to_string);
    (code, error["message"].as_str().map(str::to_string))
}
