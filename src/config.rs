//! The daemon config: one YAML file, parsed once into validated types.
//!
//! Relative paths in the file are resolved against the file's own folder, so a config works
//! the same from any working directory.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::names::AttrType;

mod ldap;
mod notify;
mod requests;
mod target;
mod ui;
pub use ldap::{GroupClass, LdapFlavor, LdapSettings};
pub use notify::{EventKind, NotificationsConfig, WebhookConfig, WebhookFormat};
pub use requests::{RepositoryConfig, RequestsConfig};
pub use target::{
    is_address, Every, GoogleSettings, OnUnpush, PushFailsafe, RemoveDialect, TargetAuth,
    TargetConfig, TargetKind, TargetPatch, TargetTls, UserLookup, UserMatch,
};
pub use ui::{Role, UiConfig};

/// The config file that `rosterd` reads when `--config` is not given.
pub const DEFAULT_PATH: &str = "rosterd.yaml";

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config `{path}`: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Invalid { path: PathBuf, message: String },
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub directory: DirectoryConfig,
    pub rules: RulesConfig,
    /// `sqlite://FILE` (relative to this file's folder) or `postgres://...`.
    #[serde(default = "default_database")]
    pub database: DatabaseUrl,
    /// The environment variable that holds the database URL instead, for a URL with a
    /// password in it (which has no place in a file kept in git). Overrides `database`.
    #[serde(default)]
    pub database_env: Option<String>,
    /// Push targets by name. Rule files may only push to names listed here.
    #[serde(default)]
    pub targets: BTreeMap<String, TargetConfig>,
    /// How `rosterd run` schedules its work and serves its admin API.
    #[serde(default)]
    pub daemon: DaemonConfig,
    /// How long old snapshots and runs are kept. The audit of membership changes is kept
    /// whatever this says.
    #[serde(default)]
    pub retention: RetentionConfig,
    /// The web console on the daemon's address; off without this section.
    #[serde(default)]
    pub ui: Option<UiConfig>,
    /// Access requests and reviews, written as commits to the rules repository; off
    /// without this section.
    #[serde(default)]
    pub requests: Option<RequestsConfig>,
    /// Webhooks told of access decisions, reviews due and held pushes; none without it.
    #[serde(default)]
    pub notifications: Option<NotificationsConfig>,
    /// Where the config was read from; set by [`Config::load`].
    #[serde(skip)]
    pub path: PathBuf,
    /// The variable `database_env` names, when it is not set: an error only for the
    /// commands that open the database ([`Config::database_url`]), so that `check` runs
    /// without it.
    #[serde(skip)]
    pub database_unset: Option<String>,
}

/// `rosterd run`: schedules (cron, in `time_zone`), the admin API, reloads and shutdown.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DaemonConfig {
    /// Refresh the export, evaluate and push: `*/15 * * * *` reaches every app within the
    /// hour with room for a failed run. Five fields, or six/seven with seconds (and year).
    #[serde(default = "default_sync_schedule")]
    pub sync: String,
    /// A sync that also reads every pushed group back and repairs drift.
    #[serde(default = "default_reconcile_schedule")]
    pub reconcile: String,
    /// `UTC`, a fixed offset such as `+02:00`, or an IANA zone name such as `Europe/Berlin`.
    #[serde(default = "default_time_zone")]
    pub time_zone: String,
    /// The admin API's address; loopback unless you put it behind something.
    #[serde(default = "default_listen")]
    pub listen: std::net::SocketAddr,
    /// The environment variable that holds the API's bearer token.
    #[serde(default = "default_api_token_env")]
    pub api_token_env: String,
    /// How often the rules folder is looked at for changes; a change is loaded once it has
    /// stayed the same for one more look.
    #[serde(default = "default_rules_poll_seconds")]
    pub rules_poll_seconds: f64,
    /// A rules change that loads is followed by a sync this many seconds later (unless a
    /// run starts before), so a merged change reaches the apps without waiting for the
    /// schedule; 0 leaves it to the schedule.
    #[serde(default = "default_sync_after_rules_change_seconds")]
    pub sync_after_rules_change_seconds: f64,
    /// How long SIGTERM waits for a run in flight before exiting (its unsent changes stay
    /// in the outbox).
    #[serde(default = "default_shutdown_seconds")]
    pub shutdown_timeout_seconds: f64,
    /// With PostgreSQL, how often a standby tries to take the leadership (and the leader
    /// checks that it still holds it): the longest a failover waits once the old leader's
    /// connection is gone.
    #[serde(default = "default_leader_poll_seconds")]
    pub leader_poll_seconds: f64,
    /// With PostgreSQL, after how many polls without a renewal of its lease a leader counts
    /// as hung: a standby then ends the leader's lock session and takes over, and the old
    /// leader (should it wake) sends nothing more, having stopped a poll before that.
    #[serde(default = "default_leader_lease_polls")]
    pub leader_lease_polls: u32,
    /// How long an API client may take to send a request's headers; a connection that
    /// takes longer is closed.
    #[serde(default = "default_api_header_timeout_seconds")]
    pub api_header_timeout_seconds: f64,
    /// API connections open at once, at most (fewer if the process may not open that many
    /// files); more are closed as soon as they are accepted.
    #[serde(default = "default_api_max_connections")]
    pub api_max_connections: u64,
    /// API connections one client address may hold open at once; more are closed as soon
    /// as they are accepted, so that one client cannot take the others' connections.
    #[serde(default = "default_api_max_connections_per_client")]
    pub api_max_connections_per_client: u64,
    /// A run evaluates only the workers the export changed (and those their change
    /// reaches), from what the run before it kept; every this many runs it also evaluates
    /// everyone and compares, and a difference fails the run loudly. 1 evaluates everyone
    /// every run. A run with nothing kept that compares only the workers its change reaches
    /// also compares everyone every this many runs (by run id).
    #[serde(default = "default_full_evaluation_every")]
    pub full_evaluation_every: u32,
}

fn default_full_evaluation_every() -> u32 {
    24
}

/// What is removed with age, after each run that succeeds. Never the audit: every
/// membership change, with its reason and run, stays for as long as the database does.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetentionConfig {
    /// Days a superseded snapshot keeps its workers. After that only its summary (source,
    /// checksum, counts) and its list of HR changes remain.
    #[serde(default = "default_snapshot_days")]
    pub snapshot_days: u32,
    /// Days a run that changed no membership (unchanged, held, failed) is listed. Runs that
    /// changed memberships are the audit and are kept.
    #[serde(default = "default_run_days")]
    pub run_days: u32,
}

fn default_snapshot_days() -> u32 {
    90
}

fn default_run_days() -> u32 {
    400
}

impl Default for RetentionConfig {
    fn default() -> Self {
        RetentionConfig {
            snapshot_days: default_snapshot_days(),
            run_days: default_run_days(),
        }
    }
}

impl Default for DaemonConfig {
    fn default() -> Self {
        DaemonConfig {
            sync: default_sync_schedule(),
            reconcile: default_reconcile_schedule(),
            time_zone: default_time_zone(),
            listen: default_listen(),
            api_token_env: default_api_token_env(),
            rules_poll_seconds: default_rules_poll_seconds(),
            sync_after_rules_change_seconds: default_sync_after_rules_change_seconds(),
            shutdown_timeout_seconds: default_shutdown_seconds(),
            leader_poll_seconds: default_leader_poll_seconds(),
            leader_lease_polls: default_leader_lease_polls(),
            api_header_timeout_seconds: default_api_header_timeout_seconds(),
            api_max_connections: default_api_max_connections(),
            api_max_connections_per_client: default_api_max_connections_per_client(),
            full_evaluation_every: default_full_evaluation_every(),
        }
    }
}

fn default_sync_schedule() -> String {
    "*/15 * * * *".into()
}

fn default_reconcile_schedule() -> String {
    "30 3 * * *".into()
}

fn default_time_zone() -> String {
    "UTC".into()
}

fn default_listen() -> std::net::SocketAddr {
    std::net::SocketAddr::from(([127, 0, 0, 1], 9464))
}

fn default_api_token_env() -> String {
    "ROSTERD_API_TOKEN".into()
}

fn default_rules_poll_seconds() -> f64 {
    2.0
}

fn default_shutdown_seconds() -> f64 {
    30.0
}

fn default_sync_after_rules_change_seconds() -> f64 {
    60.0
}

fn default_leader_poll_seconds() -> f64 {
    2.0
}

fn default_leader_lease_polls() -> u32 {
    3
}

fn default_api_header_timeout_seconds() -> f64 {
    10.0
}

fn default_api_max_connections() -> u64 {
    4_096
}

fn default_api_max_connections_per_client() -> u64 {
    64
}

impl DaemonConfig {
    fn validate(&self) -> Result<(), String> {
        crate::schedule::Schedule::parse(&self.sync, &self.time_zone)
            .map_err(|e| format!("daemon.sync: {e}"))?;
        crate::schedule::Schedule::parse(&self.reconcile, &self.time_zone)
            .map_err(|e| format!("daemon.reconcile: {e}"))?;
        if !(0.01..=3600.0).contains(&self.rules_poll_seconds) {
            return Err("daemon.rules_poll_seconds: must be from 0.01 to 3600".into());
        }
        if !(0.0..=3600.0).contains(&self.shutdown_timeout_seconds) {
            return Err("daemon.shutdown_timeout_seconds: must be from 0 to 3600".into());
        }
        if !(0.0..=86_400.0).contains(&self.sync_after_rules_change_seconds) {
            return Err(
                "daemon.sync_after_rules_change_seconds: must be from 0 (off) to 86400".into(),
            );
        }
        if !(0.1..=60.0).contains(&self.leader_poll_seconds) {
            return Err("daemon.leader_poll_seconds: must be from 0.1 to 60".into());
        }
        if !(2..=20).contains(&self.leader_lease_polls) {
            return Err("daemon.leader_lease_polls: must be from 2 to 20".into());
        }
        if !(0.1..=600.0).contains(&self.api_header_timeout_seconds) {
            return Err("daemon.api_header_timeout_seconds: must be from 0.1 to 600".into());
        }
        in_range(
            "daemon.api_max_connections",
            self.api_max_connections,
            16..=100_000,
        )?;
        in_range(
            "daemon.api_max_connections_per_client",
            self.api_max_connections_per_client,
            1..=100_000,
        )?;
        in_range(
            "daemon.full_evaluation_every",
            u64::from(self.full_evaluation_every),
            1..=10_000,
        )?;
        Ok(())
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DirectoryConfig {
    pub source: SourceConfig,
    /// The attribute that identifies a worker (Workday's Employee_ID).
    pub key: String,
    /// The attribute that holds a worker's email; person entries may name workers by it.
    pub email: String,
    /// The attribute that holds the key of a worker's manager.
    #[serde(default)]
    pub manager: Option<String>,
    /// Attributes that make up a worker's name in listings, e.g. `[first_name, last_name]`.
    #[serde(default)]
    pub name: Vec<String>,
    /// Attribute name → where it comes from in the export and its type.
    pub attributes: BTreeMap<String, AttributeConfig>,
    /// Who counts as a worker at all, e.g. `status == "Active"`. Default: everyone.
    #[serde(default)]
    pub eligibility: Option<String>,
    /// The load fails when more than this share of rows is bad or rejected.
    #[serde(default = "default_max_bad_rows_percent")]
    pub max_bad_rows_percent: f64,
    #[serde(default)]
    pub failsafe: DirectoryFailsafe,
}

/// Guards against a broken export: a snapshot that trips it is held until approved.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DirectoryFailsafe {
    /// Hold a snapshot whose eligible population is this much smaller than the current one's.
    #[serde(default = "default_max_shrink_percent")]
    pub max_shrink_percent: f64,
}

impl Default for DirectoryFailsafe {
    fn default() -> Self {
        DirectoryFailsafe {
            max_shrink_percent: default_max_shrink_percent(),
        }
    }
}

fn default_max_shrink_percent() -> f64 {
    10.0
}

/// The embedded default: a SQLite file beside the config.
pub const DEFAULT_DATABASE: &str = "sqlite://rosterd.db";

fn default_database() -> DatabaseUrl {
    DatabaseUrl(DEFAULT_DATABASE.to_string())
}

/// The database URL. It may hold a password, so `Debug` and `Display` show it redacted.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct DatabaseUrl(String);

impl DatabaseUrl {
    pub fn new(url: impl Into<String>) -> Self {
        DatabaseUrl(url.into())
    }

    /// The URL itself, for connecting.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", crate::secret::redact_url(&self.0))
    }
}

impl std::fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&crate::secret::redact_url(&self.0))
    }
}

fn default_max_bad_rows_percent() -> f64 {
    5.0
}

/// Where the HR export comes from: a file, or a URL (a Workday RaaS report).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceConfig {
    #[serde(default)]
    pub file: Option<PathBuf>,
    /// `https://...`; plain `http://` only to a loopback address.
    #[serde(default)]
    pub url: Option<String>,
    /// Default: `.json` files and URLs with `.json` or `format=json` are Workday RaaS JSON,
    /// anything else CSV.
    #[serde(default)]
    pub format: Option<SourceFormat>,
    /// `{ basic: { username, password_env } }` or `{ bearer: { token_env } }`.
    #[serde(default, with = "serde_yaml::with::singleton_map")]
    pub auth: Option<SourceAuth>,
    #[serde(default = "default_timeout_seconds")]
    pub timeout_seconds: u64,
    /// Further attempts after a failed fetch (network errors, timeouts, 429 and 5xx).
    #[serde(default = "default_retries")]
    pub retries: u32,
    /// The first retry's delay; each next one doubles, with jitter. 429 and 503 answers
    /// with `Retry-After` wait as long as the server asks.
    #[serde(default = "default_retry_backoff_ms")]
    pub retry_backoff_ms: u64,
    /// The longest wait a `Retry-After` answer can ask for; a longer one waits this long.
    #[serde(default = "default_max_retry_after_seconds")]
    pub max_retry_after_seconds: u64,
    /// One fetch, its retries and waits included, fails after this long.
    #[serde(default = "default_deadline_seconds")]
    pub deadline_seconds: u64,
    /// The largest export accepted, in bytes (a file's size, or a URL's answer).
    #[serde(default = "default_max_bytes")]
    pub max_bytes: u64,
}

/// Credentials for the export URL. Secrets are never in the config: it names the
/// environment variables that hold them.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub enum SourceAuth {
    Basic {
        username: String,
        password_env: String,
    },
    Bearer {
        token_env: String,
    },
}

fn default_timeout_seconds() -> u64 {
    60
}

pub(crate) fn default_max_retry_after_seconds() -> u64 {
    60
}

fn default_deadline_seconds() -> u64 {
    900
}

fn default_max_bytes() -> u64 {
    2 << 30
}

fn default_retries() -> u32 {
    3
}

fn default_retry_backoff_ms() -> u64 {
    500
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SourceFormat {
    Csv,
    WorkdayJson,
}

impl SourceConfig {
    pub fn format(&self) -> SourceFormat {
        self.format.unwrap_or_else(|| {
            let by_file = self
                .file
                .as_ref()
                .and_then(|f| f.extension())
                .is_some_and(|e| e.eq_ignore_ascii_case("json"));
            let by_url = self.url.as_ref().is_some_and(|u| {
                let lower = u.to_ascii_lowercase();
                let path = lower.split('?').next().unwrap_or("");
                path.ends_with(".json") || lower.contains("format=json")
            });
            if by_file || by_url {
                SourceFormat::WorkdayJson
            } else {
                SourceFormat::Csv
            }
        })
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttributeConfig {
    /// The column (CSV header, or Report_Entry field) the value comes from.
    pub column: String,
    #[serde(rename = "type")]
    pub ty: AttrType,
    /// For lists given as one text field: what separates the elements. Default `;`.
    #[serde(default)]
    pub separator: Option<String>,
    /// For dates not in `YYYY-MM-DD` form: a chrono format, e.g. `%m/%d/%Y`.
    #[serde(default)]
    pub format: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RulesConfig {
    /// The folder of rule files, read recursively.
    pub dir: PathBuf,
}

impl Config {
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_yaml(&text, path)
    }

    /// Parses and validates `text` as if read from `path` (which anchors relative paths).
    pub fn from_yaml(text: &str, path: &Path) -> Result<Self, ConfigError> {
        let invalid = |message: String| ConfigError::Invalid {
            path: path.to_path_buf(),
            message,
        };
        let mut config: Config = serde_yaml::from_str(text).map_err(|e| invalid(e.to_string()))?;
        config.path = path.to_path_buf();
        if let Some(var) = &config.database_env {
            match std::env::var(var) {
                Ok(url) if !url.is_empty() => config.database = DatabaseUrl(url),
                _ => config.database_unset = Some(var.clone()),
            }
        }
        let base = path.parent().unwrap_or(Path::new(""));
        if let Some(file) = &config.directory.source.file {
            config.directory.source.file = Some(base.join(file));
        }
        config.rules.dir = base.join(&config.rules.dir);
        for target in config.targets.values_mut() {
            if let Some(tls) = &mut target.tls {
                tls.ca_file = base.join(&tls.ca_file);
            }
            if let Some(
                TargetAuth::PrivateKeyJwt {
                    key_file: Some(file),
                    ..
                }
                | TargetAuth::ServiceAccount {
                    key_file: Some(file),
                    ..
                }
                | TargetAuth::Simple {
                    password_file: Some(file),
                    ..
                },
            ) = &mut target.auth
            {
                *file = base.join(&*file);
            }
            if let Some(TargetAuth::ClientCertificate {
                cert_file,
                key_file,
            }) = &mut target.auth
            {
                *cert_file = base.join(&*cert_file);
                *key_file = base.join(&*key_file);
            }
        }
        if let Some(requests) = &mut config.requests {
            requests.resolve(base);
        }
        if let Some(file) = config.database.0.strip_prefix("sqlite://") {
            let (file, query) = file
                .split_once('?')
                .map_or((file, None), |(f, q)| (f, Some(q)));
            if !file.starts_with('/') && !file.is_empty() {
                let joined = base.join(file).display().to_string();
                config.database = DatabaseUrl(match query {
                    Some(q) => format!("sqlite://{joined}?{q}"),
                    None => format!("sqlite://{joined}"),
                });
            }
        }
        config.validate().map_err(invalid)?;
        Ok(config)
    }

    /// The database's URL, for a command that opens it: an error naming `database_env` when
    /// the variable it names is not set.
    pub fn database_url(&self) -> Result<&str, ConfigError> {
        match &self.database_unset {
            Some(var) => Err(ConfigError::Invalid {
                path: self.path.clone(),
                message: format!(
                    "database_env: the environment variable `{var}` is not set\nhelp: it holds the database URL; set it in rosterd's environment"
                ),
            }),
            None => Ok(self.database.expose()),
        }
    }

    fn validate(&self) -> Result<(), String> {
        self.daemon.validate()?;
        if let Some(ui) = &self.ui {
            ui.validate()?;
        }
        if let Some(requests) = &self.requests {
            requests.validate()?;
        }
        if let Some(notifications) = &self.notifications {
            notifications.validate()?;
        }
        in_range(
            "retention.snapshot_days",
            self.retention.snapshot_days,
            1..=36_500,
        )?;
        in_range("retention.run_days", self.retention.run_days, 1..=36_500)?;
        let dir = &self.directory;
        validate_source(&dir.source)?;
        for (name, attr) in &dir.attributes {
            if !crate::names::is_identifier(name) {
                return Err(format!(
                    "directory.attributes: `{name}` is not a valid attribute name\nhelp: use lower case letters, digits and `_`, starting with a letter or `_`"
                ));
            }
            if crate::names::is_reserved_word(name) || name == crate::names::IS_MANAGER {
                return Err(format!(
                    "directory.attributes: `{name}` is reserved by the rules language"
                ));
            }
            if attr.separator.is_some() && attr.ty != AttrType::List {
                return Err(format!(
                    "directory.attributes.{name}: `separator` is only for attributes of type list"
                ));
            }
            if attr.format.is_some() && attr.ty != AttrType::Date {
                return Err(format!(
                    "directory.attributes.{name}: `format` is only for attributes of type date"
                ));
            }
        }
        let string_attr = |role: &str, name: &str| match dir.attributes.get(name) {
            None => Err(format!(
                "directory.{role}: `{name}` is not one of directory.attributes"
            )),
            Some(a) if a.ty != AttrType::String => Err(format!(
                "directory.{role}: attribute `{name}` must be of type string"
            )),
            Some(_) => Ok(()),
        };
        string_attr("key", &dir.key)?;
        string_attr("email", &dir.email)?;
        if let Some(manager) = &dir.manager {
            string_attr("manager", manager)?;
        }
        for name in &dir.name {
            if !dir.attributes.contains_key(name) {
                return Err(format!(
                    "directory.name: `{name}` is not one of directory.attributes"
                ));
            }
        }
        if !(0.0..=100.0).contains(&dir.failsafe.max_shrink_percent) {
            return Err("directory.failsafe.max_shrink_percent: must be between 0 and 100".into());
        }
        if crate::backend::Backend::of_url(self.database.expose()).is_none() {
            return Err(format!(
                "database: `{}` is neither `sqlite://FILE` nor `postgres://...`",
                self.database
            ));
        }
        if !(0.0..=100.0).contains(&dir.max_bad_rows_percent) {
            return Err("directory.max_bad_rows_percent: must be between 0 and 100".into());
        }
        for (name, target) in &self.targets {
            if !crate::names::is_group_name(name) {
                return Err(format!("targets: `{name}` is not a valid target name"));
            }
            target
                .validate()
                .map_err(|e| format!("targets.{name}.{e}"))?;
            if let Some(attr) = &target.user_match.worker_attribute {
                if !dir.attributes.contains_key(attr) {
                    return Err(format!(
                        "targets.{name}.user_match.worker_attribute: `{attr}` is not one of directory.attributes"
                    ));
                }
            }
        }
        Ok(())
    }
}

/// `https://...`, or plain `http://` to a loopback address only: `Err` says which. Loopback
/// means the URL's host, parsed, is a loopback IP address or exactly `localhost`; a name
/// that only begins like one (`localhost.example.com`, `127.0.0.1.nip.io`) is not.
pub(crate) fn check_http_url(url: &str) -> Result<(), String> {
    let shown = crate::secret::shown_url(url);
    let parsed =
        reqwest::Url::parse(url).map_err(|e| format!("`{shown}` is not a valid URL: {e}"))?;
    let loopback = match parsed.host() {
        Some(url::Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    };
    match parsed.scheme() {
        "https" if parsed.host().is_some() => Ok(()),
        "http" if loopback => Ok(()),
        "http" => Err(format!(
            "`{shown}` is plain http\nhelp: plain http is allowed only to a loopback address (127.0.0.0/8, ::1 or `localhost`); use https"
        )),
        _ => Err(format!("`{shown}` is not an http(s) URL")),
    }
}

/// `Err` names the field when `value` is outside `range`.
pub(crate) fn in_range<T: PartialOrd + std::fmt::Display>(
    field: &str,
    value: T,
    range: std::ops::RangeInclusive<T>,
) -> Result<(), String> {
    if range.contains(&value) {
        Ok(())
    } else {
        Err(format!(
            "{field}: must be from {} to {}, not {value}",
            range.start(),
            range.end()
        ))
    }
}

fn validate_source(source: &SourceConfig) -> Result<(), String> {
    let field = |name: &str| format!("directory.source.{name}");
    in_range(&field("timeout_seconds"), source.timeout_seconds, 1..=3_600)?;
    in_range(&field("retries"), source.retries, 0..=20)?;
    in_range(
        &field("retry_backoff_ms"),
        source.retry_backoff_ms,
        0..=600_000,
    )?;
    in_range(
        &field("max_retry_after_seconds"),
        source.max_retry_after_seconds,
        0..=3_600,
    )?;
    in_range(
        &field("deadline_seconds"),
        source.deadline_seconds,
        1..=86_400,
    )?;
    in_range(&field("max_bytes"), source.max_bytes, 1..=(64 << 30))?;
    match (&source.file, &source.url) {
        (Some(_), Some(_)) => Err("directory.source: give `file` or `url`, not both".into()),
        (None, None) => Err("directory.source: give the export's `file` or `url`".into()),
        (Some(_), None) if source.auth.is_some() => {
            Err("directory.source.auth: only a `url` source takes credentials".into())
        }
        (Some(_), None) => Ok(()),
        (None, Some(url)) => check_http_url(url).map_err(|e| format!("directory.source.url: {e}")),
    }
}

#[cfg(test)]
mod tests;
