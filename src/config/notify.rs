//! `notifications:`: webhooks told of access requests and decisions, entries due for review,
//! held pushes and broken guardrails.

use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotificationsConfig {
    pub webhooks: Vec<WebhookConfig>,
    /// Tries after the first, for a network error, a timeout, 429 or 5xx.
    #[serde(default = "default_retries")]
    pub retries: u32,
    /// The first retry's wait; each one after doubles it, with jitter.
    #[serde(default = "default_retry_backoff_ms")]
    pub retry_backoff_ms: u64,
    #[serde(default = "default_timeout_seconds")]
    pub timeout_seconds: f64,
    /// The daemon tells `reviews_due` once a day (UTC), after the day's first run, when
    /// entries are due or expire within 14 days; off by default (`rosterd reviews --notify`
    /// from cron does the same).
    #[serde(default)]
    pub reviews_due_daily: bool,
}

/// One receiver.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// Named in messages (the URL may be a secret, as Slack's are).
    pub name: String,
    /// The address, or `url_env` naming the environment variable that holds it.
    #[serde(default)]
    pub url: Option<String>,
    #[serde(default)]
    pub url_env: Option<String>,
    #[serde(default)]
    pub format: WebhookFormat,
    /// The environment variable holding the key of the `X-Rosterd-Signature` HMAC.
    #[serde(default)]
    pub secret_env: Option<String>,
    /// The events it is told of; all when empty.
    #[serde(default)]
    pub events: Vec<EventKind>,
}

/// What a webhook may be told of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// An access decision: a grant, a denial, a keep or a removal.
    Decision,
    /// Entries are due for an access review, or expire within 14 days.
    ReviewsDue,
    /// A push is held by the removal failsafe or a guardrail, waiting for an approver.
    Hold,
    /// Someone asked for access to a group in the console.
    Request,
    /// A run newly broke a guardrail that only warns (one that holds pushes is told as a
    /// `hold`).
    Guardrail,
}

impl EventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Decision => "decision",
            EventKind::ReviewsDue => "reviews_due",
            EventKind::Hold => "hold",
            EventKind::Request => "request",
            EventKind::Guardrail => "guardrail",
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WebhookFormat {
    /// `{"event", "delivery", "at", "data"}`.
    #[default]
    Json,
    /// Slack's incoming-webhook message: `{"text"}`.
    Slack,
}

fn default_retries() -> u32 {
    3
}

fn default_retry_backoff_ms() -> u64 {
    500
}

fn default_timeout_seconds() -> f64 {
    10.0
}

impl NotificationsConfig {
    pub(super) fn validate(&self) -> Result<(), String> {
        for (i, hook) in self.webhooks.iter().enumerate() {
            let at = format!("notifications.webhooks[{i}]");
            if hook.name.trim().is_empty() {
                return Err(format!("{at}.name: must not be empty"));
            }
            match (&hook.url, &hook.url_env) {
                (Some(url), None) => {
                    super::check_http_url(url).map_err(|e| format!("{at}.url: {e}"))?
                }
                (None, Some(var)) if !var.trim().is_empty() => {}
                _ => {
                    return Err(format!(
                        "{at}: give one of `url` or `url_env` (the environment variable holding it)"
                    ))
                }
            }
        }
        if !(self.timeout_seconds > 0.0 && self.timeout_seconds <= 300.0) {
            return Err(
                "notifications.timeout_seconds: must be more than 0 and at most 300".into(),
            );
        }
        if self.retries > 10 {
            return Err("notifications.retries: at most 10".into());
        }
        Ok(())
    }
}
