//! Webhooks: receivers told of access decisions, entries due for review and held pushes, as
//! JSON signed with an HMAC, or as Slack incoming-webhook messages. A delivery is retried
//! on a network error, a timeout, 429 or 5xx, with the same delivery id so that a receiver
//! can drop a repeat; a webhook that cannot be reached never fails what it reports on.
//! Events carry names, groups and decisions, never a secret.

use std::time::Duration;

use serde::Serialize;
use sha2::Digest as _;

use crate::config::{EventKind, NotificationsConfig, WebhookFormat};
use crate::secret::Secret;

/// Something a webhook is told of.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum Event {
    Decision(crate::store::DecisionRecord),
    ReviewsDue {
        as_of: chrono::NaiveDate,
        due: Vec<crate::access::Due>,
    },
    Hold(crate::store::PushHold),
    Request(Box<crate::store::AccessRequest>),
    Guardrail(crate::engine::guardrails::Violation),
}

impl Event {
    pub fn kind(&self) -> EventKind {
        match self {
            Event::Decision(_) => EventKind::Decision,
            Event::ReviewsDue { .. } => EventKind::ReviewsDue,
            Event::Hold(_) => EventKind::Hold,
            Event::Request(_) => EventKind::Request,
            Event::Guardrail(_) => EventKind::Guardrail,
        }
    }

    /// One line for a person, as Slack shows it.
    pub fn text(&self) -> String {
        match self {
            Event::Decision(d) => {
                let until = d.until.as_ref().map(|u| format!(" until {u}")).unwrap_or_default();
                let link = d.link.as_ref().map(|l| format!(" <{l}|the change>")).unwrap_or_default();
                format!(
                    "rosterd: {} decided *{}* of {} in `{}` ({}){until}.{link}",
                    d.decided_by, d.decision, d.worker, d.group, d.list
                )
            }
            Event::ReviewsDue { as_of, due } => {
                let mut groups: Vec<&str> = due.iter().map(|d| d.group.as_str()).collect();
                groups.dedup();
                format!(
                    "rosterd: {} due for access review on {as_of}, in {}. `rosterd reviews` lists them.",
                    crate::text::count_as(due.len() as u64, "entry is", "entries are"),
                    groups.join(", ")
                )
            }
            Event::Hold(h) => format!(
                "rosterd: the push of `{}` to {} is held ({}): {} to add, {} to remove. An approver must look at hold {}.",
                h.group, h.target, h.reason, h.to_add, h.to_remove, h.id
            ),
            Event::Request(r) => format!(
                "rosterd: {} asks for {} to be in `{}` until {}: {}. The group's approvers decide request {}.",
                r.requested_by,
                r.worker_name.as_deref().unwrap_or(&r.worker),
                r.group,
                r.until,
                r.justification.trim(),
                r.id
            ),
            Event::Guardrail(v) => format!(
                "rosterd: guardrail `{}` is broken ({}): {}",
                v.guardrail, v.location, v.message
            ),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    #[error("notifications.webhooks `{hook}`: the environment variable `{var}` is not set")]
    Unset { hook: String, var: String },
    #[error("notifications: {0}")]
    Client(String),
}

/// How one webhook fared with one event.
#[derive(Debug, Clone, Serialize)]
pub struct Delivery {
    pub webhook: String,
    pub delivered: bool,
    pub tries: u32,
    /// Why it was not delivered; never the URL's secret parts.
    pub error: Option<String>,
}

struct Hook {
    name: String,
    url: Secret,
    format: WebhookFormat,
    key: Option<Secret>,
    events: Vec<EventKind>,
}

/// The configured webhooks, their secrets read from the environment.
pub struct Notifier {
    hooks: Vec<Hook>,
    client: reqwest::Client,
    retries: u32,
    backoff_ms: u64,
}

impl Notifier {
    pub fn new(config: &NotificationsConfig) -> Result<Notifier, NotifyError> {
        let env = |hook: &str, var: &str| {
            Secret::from_env(var).ok_or_else(|| NotifyError::Unset {
                hook: hook.to_string(),
                var: var.to_string(),
            })
        };
        let mut hooks = Vec::new();
        for h in &config.webhooks {
            let url = match (&h.url, &h.url_env) {
                (Some(url), _) => Secret::new(url.clone()),
                (None, Some(var)) => env(&h.name, var)?,
                (None, None) => continue,
            };
            let key = h
                .secret_env
                .as_deref()
                .map(|v| env(&h.name, v))
                .transpose()?;
            hooks.push(Hook {
                name: h.name.clone(),
                url,
                format: h.format,
                key,
                events: h.events.clone(),
            });
        }
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs_f64(config.timeout_seconds))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| NotifyError::Client(e.to_string()))?;
        Ok(Notifier {
            hooks,
            client,
            retries: config.retries,
            backoff_ms: config.retry_backoff_ms,
        })
    }

    /// Tells every webhook that takes the event's kind; how each fared.
    pub async fn send(&self, event: &Event) -> Vec<Delivery> {
        let kind = event.kind();
        let at = crate::clock::stamp(crate::clock::now_utc());
        let mut out = Vec::new();
        for hook in &self.hooks {
            if !hook.events.is_empty() && !hook.events.contains(&kind) {
                continue;
            }
            let delivery = delivery_id(&hook.name, &at, kind);
            let body = match hook.format {
                WebhookFormat::Json => serde_json::json!({
                    "event": kind.as_str(),
                    "delivery": delivery,
                    "at": at,
                    "data": event,
                }),
                WebhookFormat::Slack => serde_json::json!({ "text": event.text() }),
            }
            .to_string();
            out.push(self.deliver(hook, kind, &delivery, &body).await);
        }
        out
    }

    async fn deliver(&self, hook: &Hook, kind: EventKind, delivery: &str, body: &str) -> Delivery {
        use rand::SeedableRng as _;
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(u64::from(std::process::id()));
        let mut tries = 0;
        loop {
            tries += 1;
            let mut request = self
                .client
                .post(hook.url.expose())
                .header("content-type", "application/json")
                .header("user-agent", concat!("rosterd/", env!("CARGO_PKG_VERSION")))
                .header("x-rosterd-event", kind.as_str())
                .header("x-rosterd-delivery", delivery);
            if let Some(key) = &hook.key {
                let t = crate::clock::now_utc().timestamp();
                request = request.header("x-rosterd-signature", signature(key.expose(), t, body));
            }
            let (retry, error) = match request.body(body.to_string()).send().await {
                Ok(r) if r.status().is_success() => {
                    return Delivery {
                        webhook: hook.name.clone(),
                        delivered: true,
                        tries,
                        error: None,
                    }
                }
                Ok(r) => {
                    let s = r.status();
                    (
                        s.as_u16() == 429 || s.is_server_error(),
                        format!("answered {s}"),
                    )
                }
                // reqwest's message names the URL; only its kind is told.
                Err(e) => (true, crate::fetch::describe(&e)),
            };
            if !retry || tries > self.retries {
                tracing::warn!(webhook = %hook.name, tries, %error, "a notification was not delivered");
                return Delivery {
                    webhook: hook.name.clone(),
                    delivered: false,
                    tries,
                    error: Some(error),
                };
            }
            let wait = crate::fetch::backoff(self.backoff_ms, tries, &mut rng);
            tokio::time::sleep(wait).await;
        }
    }
}

/// Tells the webhooks of `config` of `events` in the background, so that a slow receiver
/// holds up nothing; what could not be delivered is logged.
pub fn tell(config: &crate::config::Config, events: Vec<Event>) {
    let Some(notifications) = &config.notifications else {
        return;
    };
    if events.is_empty() {
        return;
    }
    let notifier = match Notifier::new(notifications) {
        Ok(n) => n,
        Err(e) => return tracing::warn!("{e}"),
    };
    tokio::spawn(async move {
        for event in events {
            notifier.send(&event).await;
        }
    });
}

/// `t=UNIX_SECONDS,v1=HEX`: the HMAC-SHA256, keyed with the webhook's secret, of
/// `UNIX_SECONDS.BODY`. A receiver recomputes it, compares in constant time, and refuses
/// a timestamp too far from its clock.
pub fn signature(key: &str, t: i64, body: &str) -> String {
    use hmac::Mac as _;
    let Ok(mut mac) = hmac::Hmac::<sha2::Sha256>::new_from_slice(key.as_bytes()) else {
        return String::new();
    };
    mac.update(format!("{t}.{body}").as_bytes());
    let hex: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("t={t},v1={hex}")
}

fn delivery_id(hook: &str, at: &str, kind: EventKind) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let digest = sha2::Sha256::digest(format!("{hook}{at}{}{nanos}", kind.as_str()));
    digest.iter().take(16).map(|b| format!("{b:02x}")).collect()
}
