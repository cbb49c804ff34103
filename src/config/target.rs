//! A push target: a downstream app's API (SCIM 2.0, or an identity provider's own, by
//! `kind`) and how to talk to it.

use std::path::PathBuf;

use serde::Deserialize;

/// A downstream app. Without `url` a target is only a name that rule files may push to
/// (enough for `check` and `plan`); `push` reports it as not connected.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetConfig {
    /// Which API the target speaks (`scim`, the default, or `okta`).
    #[serde(default)]
    pub kind: TargetKind,
    #[serde(default)]
    pub description: Option<String>,
    /// The base URL: SCIM's (`/Users` and `/Groups` are appended), or the Okta org's
    /// (`https://example.okta.com`; `/api/v1/...` is appended).
    #[serde(default)]
    pub url: Option<String>,
    /// `{ bearer: { token_env } }` or `{ oauth2: { token_url, client_id, client_secret_env,
    /// scope } }` (SCIM); `{ ssws: { token_env } }` (an Okta API token). Without it
    /// requests carry no credentials.
    #[serde(default, with = "serde_yaml::with::singleton_map")]
    pub auth: Option<TargetAuth>,
    #[serde(default)]
    pub user_match: UserMatch,
    /// A Google Workspace target's groups: their addresses, the account, the domains.
    #[serde(default)]
    pub google: Option<GoogleSettings>,
    /// An LDAP or Active Directory target's groups and users: where they are, how named.
    #[serde(default)]
    pub ldap: Option<super::ldap::LdapSettings>,
    /// How a SCIM target's groups are patched (SCIM only; see [`TargetConfig::patch`]).
    #[serde(default, rename = "patch")]
    pub scim_patch: Option<TargetPatch>,
    /// Requests started per second, at most (all kinds, retries included).
    #[serde(default = "default_requests_per_second")]
    pub requests_per_second: f64,
    /// Requests in flight at once; also how many groups are pushed side by side.
    #[serde(default = "default_concurrency")]
    pub concurrency: usize,
    #[serde(default = "default_timeout_seconds")]
    pub timeout_seconds: u64,
    /// Further attempts after a 429, 5xx, timeout or dropped connection.
    #[serde(default = "default_retries")]
    pub retries: u32,
    /// The first retry's delay; each next one doubles, with jitter.
    #[serde(default = "default_retry_backoff_ms")]
    pub retry_backoff_ms: u64,
    /// The longest wait a `Retry-After` answer can ask for; a longer one waits this long.
    #[serde(default = "super::default_max_retry_after_seconds")]
    pub max_retry_after_seconds: u64,
    /// One request, its retries and waits included, gives up after this long.
    #[serde(default = "default_request_deadline_seconds")]
    pub request_deadline_seconds: u64,
    /// One push of this target gives up after this long; what is unsent stays in the outbox
    /// for the next run, and the run is reported failed.
    #[serde(default = "default_push_deadline_seconds")]
    pub push_deadline_seconds: u64,
    /// The largest answer accepted, in bytes.
    #[serde(default = "default_max_response_bytes")]
    pub max_response_bytes: u64,
    /// The most users a listing reads; a target whose `totalResults` promises more is read
    /// this far, and the log says so.
    #[serde(default = "default_max_listed_users")]
    pub max_listed_users: u64,
    /// The most pages a listing of users reads, and the longest it may take: a target that
    /// promises many users and serves few per page is read no further, and the workers
    /// left are looked up one by one.
    #[serde(default = "default_max_list_pages")]
    pub max_list_pages: u64,
    #[serde(default = "default_list_deadline_seconds")]
    pub list_deadline_seconds: u64,
    #[serde(default)]
    pub tls: Option<TargetTls>,
    /// What happens to the target group when its group leaves the rules or stops pushing
    /// here. Linked groups (which rosterd did not create) are never deleted.
    #[serde(default)]
    pub on_unpush: OnUnpush,
    #[serde(default)]
    pub failsafe: PushFailsafe,
    /// How long a resolved user id is trusted before it is looked up again.
    #[serde(default = "default_user_cache_seconds")]
    pub user_cache_seconds: u64,
    /// How long a worker found to have no account waits before it is looked up again.
    #[serde(default)]
    pub unresolved_retry_seconds: u64,
    /// Results per page when listing users.
    #[serde(default = "default_page_size")]
    pub page_size: u64,
    /// Every pushed group is read back entry by entry at least this often (`30m`, `24h`,
    /// `7d`): each sync reads the share of the groups that the sync schedule leaves for
    /// it, oldest first, and repairs what differs.
    #[serde(default = "default_verify_every")]
    pub verify_every: Every,
}

/// A length of time as people write it: a whole number and a unit (`s`, `m`, `h`, `d`),
/// or several (`1h30m`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Every(pub std::time::Duration);

impl Every {
    /// As a span of wall-clock time, to compare timestamps with.
    pub fn span(self) -> chrono::Duration {
        chrono::Duration::seconds(i64::try_from(self.0.as_secs()).unwrap_or(i64::MAX))
    }

    pub fn parse(text: &str) -> Result<Every, String> {
        let bad = || format!("`{text}` is not a length of time such as `30m`, `24h` or `7d`");
        let mut seconds: u64 = 0;
        let mut number = String::new();
        for c in text.trim().chars() {
            if c.is_ascii_digit() {
                number.push(c);
                continue;
            }
            let unit = match c {
                's' => 1,
                'm' => 60,
                'h' => 3_600,
                'd' => 86_400,
                _ => return Err(bad()),
            };
            let n: u64 = number.parse().map_err(|_| bad())?;
            number.clear();
            seconds = n
                .checked_mul(unit)
                .and_then(|s| seconds.checked_add(s))
                .ok_or_else(bad)?;
        }
        if !number.is_empty() || seconds == 0 {
            return Err(bad());
        }
        Ok(Every(std::time::Duration::from_secs(seconds)))
    }
}

impl<'de> Deserialize<'de> for Every {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Every::parse(&text).map_err(serde::de::Error::custom)
    }
}

impl std::fmt::Display for Every {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = self.0.as_secs();
        match s {
            // `24h` reads better than `1d`; a week is `7d`.
            _ if s.is_multiple_of(86_400) && s > 86_400 => write!(f, "{}d", s / 86_400),
            _ if s.is_multiple_of(3_600) => write!(f, "{}h", s / 3_600),
            _ if s.is_multiple_of(60) => write!(f, "{}m", s / 60),
            _ => write!(f, "{s}s"),
        }
    }
}

/// Which API a target speaks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TargetKind {
    /// SCIM 2.0 (RFC 7643/7644): most SaaS apps.
    #[default]
    Scim,
    /// The Okta management API: the identity provider's own groups (type OKTA_GROUP).
    Okta,
    /// Google Workspace's Admin SDK Directory API: Google Groups, with email addresses.
    GoogleWorkspace,
    /// An LDAP directory (OpenLDAP) or Active Directory: groups as directory entries, their
    /// members as DNs.
    Ldap,
}

/// What a Google Workspace target needs besides the URL and the credentials.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GoogleSettings {
    /// A group's address when its push names none (`email:` in the rules): `{name}` is the
    /// group's name in the rules, as in `{name}@groups.example.com`.
    #[serde(default)]
    pub group_email: Option<String>,
    /// The account whose users are listed: `my_customer` (the default) is the admin's own.
    #[serde(default = "default_customer")]
    pub customer: String,
    /// The account's domains: a member whose address is in none of them (nor in one of
    /// their subdomains) is external, and is kept (reported, never removed). Default: the
    /// domain of the admin the service account acts for; with neither, no member is taken
    /// for external.
    #[serde(default)]
    pub domains: Vec<String>,
    /// Member changes sent in one batch request (Google allows up to 1,000 calls in one).
    #[serde(default = "default_batch_size")]
    pub batch_size: usize,
    /// Calls sent a minute at most, each call in a batch counted, as Google's quota counts
    /// them: paced before Google has to refuse one. The default keeps under Google's
    /// default quota of 2,400 a minute with a batch to spare; raise it with the quota.
    #[serde(default = "default_calls_per_minute")]
    pub calls_per_minute: u64,
}

impl Default for GoogleSettings {
    fn default() -> Self {
        GoogleSettings {
            group_email: None,
            customer: default_customer(),
            domains: Vec::new(),
            batch_size: default_batch_size(),
            calls_per_minute: default_calls_per_minute(),
        }
    }
}

fn default_customer() -> String {
    "my_customer".into()
}

fn default_batch_size() -> usize {
    100
}

fn default_calls_per_minute() -> u64 {
    2_000
}

impl GoogleSettings {
    /// The address of the group `name` by the template, when there is one.
    pub fn email_of(&self, name: &str) -> Option<String> {
        self.group_email
            .as_ref()
            .map(|t| t.replace("{name}", &name.to_lowercase()))
    }
}

impl TargetKind {
    pub fn as_str(self) -> &'static str {
        match self {
            TargetKind::Scim => "scim",
            TargetKind::Okta => "okta",
            TargetKind::GoogleWorkspace => "google_workspace",
            TargetKind::Ldap => "ldap",
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub enum TargetAuth {
    Bearer {
        token_env: String,
    },
    /// An Okta API token, sent as `Authorization: SSWS <token>`.
    Ssws {
        token_env: String,
    },
    /// An OAuth 2.0 service app (Okta): access tokens from the org's token endpoint, asked
    /// for with a client assertion (a JWT signed RS256 with the app's private key, RFC 7523).
    PrivateKeyJwt {
        client_id: String,
        /// The private key (PEM, PKCS#1 or PKCS#8): from a file (relative to the config's
        /// folder), or from an environment variable.
        #[serde(default)]
        key_file: Option<PathBuf>,
        #[serde(default)]
        key_env: Option<String>,
        /// The key's id in the app's JWKS (`kid`), when it has several.
        #[serde(default)]
        key_id: Option<String>,
        /// Default: `okta.groups.manage okta.users.read`.
        #[serde(default)]
        scopes: Option<String>,
    },
    /// A Google service account with domain-wide delegation: its JSON key (from a file,
    /// relative to the config's folder, or an environment variable) signs a JWT that is
    /// exchanged for an access token acting as `subject`, an admin of the account.
    ServiceAccount {
        #[serde(default)]
        key_file: Option<PathBuf>,
        #[serde(default)]
        key_env: Option<String>,
        subject: String,
        /// Default: the Directory API's group scope and its read-only user scope.
        #[serde(default)]
        scopes: Option<String>,
    },
    /// An LDAP simple bind: the account's DN and its password, from an environment
    /// variable or a file (relative to the config's folder).
    Simple {
        bind_dn: String,
        #[serde(default)]
        password_env: Option<String>,
        #[serde(default)]
        password_file: Option<PathBuf>,
    },
    /// An LDAP SASL EXTERNAL bind: the TLS client certificate (PEM files, relative to the
    /// config's folder) is the account.
    ClientCertificate {
        cert_file: PathBuf,
        key_file: PathBuf,
    },
    /// OAuth 2.0 client credentials (RFC 6749 section 4.4).
    Oauth2 {
        token_url: String,
        client_id: String,
        client_secret_env: String,
        #[serde(default)]
        scope: Option<String>,
    },
}

/// How a worker is matched to a target user: the target user whose attribute (SCIM's
/// `scim_attribute`, Okta's `attribute`) equals the worker's `worker_attribute`, ignoring
/// case.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserMatch {
    /// A SCIM target's user attribute (default `userName`).
    #[serde(default)]
    pub scim_attribute: Option<String>,
    /// Another kind's: for Okta `login` (the default) or `email`, of the user's profile.
    #[serde(default)]
    pub attribute: Option<String>,
    /// Default: the directory's `email` attribute.
    #[serde(default)]
    pub worker_attribute: Option<String>,
    #[serde(default)]
    pub lookup: UserLookup,
}

/// How unresolved workers are looked up.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UserLookup {
    /// A filter per worker when few are unresolved, the user list in pages when that takes
    /// fewer requests.
    #[default]
    Auto,
    Filter,
    /// Always list; for targets whose filters compare case-sensitively.
    List,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetPatch {
    #[serde(default)]
    pub remove: RemoveDialect,
    /// Member changes per PATCH request (and members in a creating POST).
    #[serde(default = "default_max_members")]
    pub max_members_per_request: usize,
}

impl Default for TargetPatch {
    fn default() -> Self {
        TargetPatch {
            remove: RemoveDialect::default(),
            max_members_per_request: default_max_members(),
        }
    }
}

/// How a member is removed in a PATCH request.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RemoveDialect {
    /// RFC 7644: `{"op": "remove", "path": "members[value eq \"ID\"]"}`, one per member.
    #[default]
    PathFilter,
    /// Entra ID style: `{"op": "remove", "path": "members", "value": [{"value": "ID"}, ...]}`.
    ValueList,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetTls {
    /// A PEM file of CA certificates trusted besides the system's.
    pub ca_file: PathBuf,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnUnpush {
    #[default]
    Keep,
    Delete,
}

/// Guards against mass removals; a group's own `failsafe` overrides these.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PushFailsafe {
    #[serde(default = "default_max_remove_percent")]
    pub max_remove_percent: f64,
    #[serde(default)]
    pub max_remove_count: Option<u64>,
}

impl Default for PushFailsafe {
    fn default() -> Self {
        PushFailsafe {
            max_remove_percent: default_max_remove_percent(),
            max_remove_count: None,
        }
    }
}

impl TargetConfig {
    /// How a SCIM target's groups are patched: as configured, or the defaults.
    pub fn patch(&self) -> TargetPatch {
        self.scim_patch.clone().unwrap_or_default()
    }

    /// The target user attribute workers are matched on, as the kind names it.
    pub fn user_attribute(&self) -> &str {
        match self.kind {
            TargetKind::Scim => self
                .user_match
                .scim_attribute
                .as_deref()
                .unwrap_or("userName"),
            TargetKind::Okta => self.user_match.attribute.as_deref().unwrap_or("login"),
            TargetKind::GoogleWorkspace => self
                .user_match
                .attribute
                .as_deref()
                .unwrap_or("primaryEmail"),
            TargetKind::Ldap => self.user_match.attribute.as_deref().unwrap_or("mail"),
        }
    }

    /// A Google Workspace target's settings, as configured or the defaults.
    pub fn google(&self) -> GoogleSettings {
        self.google.clone().unwrap_or_default()
    }

    /// The domains a Google Workspace target's account holds: as configured, or that of
    /// the admin the service account acts for.
    pub fn google_domains(&self) -> Vec<String> {
        let google = self.google();
        if !google.domains.is_empty() {
            return google.domains.iter().map(|d| d.to_lowercase()).collect();
        }
        match &self.auth {
            Some(TargetAuth::ServiceAccount { subject, .. }) => subject
                .rsplit_once('@')
                .map(|(_, d)| d.to_lowercase())
                .into_iter()
                .collect(),
            _ => Vec::new(),
        }
    }

    /// The credentials, as this kind takes them.
    fn check_auth(&self) -> Result<(), String> {
        let auth_help = match self.kind {
            TargetKind::Scim => "a SCIM target takes `bearer` or `oauth2`",
            TargetKind::Okta => "an Okta target takes an API token (`{ ssws: { token_env: VAR } }`) or a service app's key (`{ private_key_jwt: { client_id, key_file } }`)",
            TargetKind::GoogleWorkspace => "a Google Workspace target takes a service account's key (`{ service_account: { key_file, subject } }`)",
            TargetKind::Ldap => "an LDAP target takes a simple bind (`{ simple: { bind_dn, password_env } }`) or a TLS client certificate (`{ client_certificate: { cert_file, key_file } }`)",
        };
        // Without `auth` requests carry no credentials (an emulator's tenant).
        let fits = matches!(
            (&self.auth, self.kind),
            (None, _)
                | (
                    Some(TargetAuth::Bearer { .. } | TargetAuth::Oauth2 { .. }),
                    TargetKind::Scim
                )
                | (
                    Some(TargetAuth::Ssws { .. } | TargetAuth::PrivateKeyJwt { .. }),
                    TargetKind::Okta
                )
                | (
                    Some(TargetAuth::ServiceAccount { .. }),
                    TargetKind::GoogleWorkspace
                )
                | (
                    Some(TargetAuth::Simple { .. } | TargetAuth::ClientCertificate { .. }),
                    TargetKind::Ldap
                )
        );
        if !fits {
            return Err(format!("auth: {auth_help}"));
        }
        match &self.auth {
            Some(TargetAuth::PrivateKeyJwt {
                key_file, key_env, ..
            }) if key_file.is_some() == key_env.is_some() => {
                return Err(
                    "auth.private_key_jwt: name the private key with one of `key_file` or `key_env`"
                        .into(),
                );
            }
            Some(TargetAuth::Simple {
                password_env,
                password_file,
                ..
            }) if password_env.is_some() == password_file.is_some() => {
                return Err(
                    "auth.simple: name the password with one of `password_env` or `password_file`"
                        .into(),
                );
            }
            Some(TargetAuth::ServiceAccount {
                key_file,
                key_env,
                subject,
                ..
            }) => {
                if key_file.is_some() == key_env.is_some() {
                    return Err("auth.service_account: name the JSON key with one of `key_file` or `key_env`".into());
                }
                if !is_address(subject) {
                    return Err(format!("auth.service_account.subject: `{subject}` is not an email address; it is the admin the service account acts for"));
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// The settings that belong to another kind of target, or that this kind cannot use.
    fn check_kind(&self) -> Result<(), String> {
        let kind = self.kind.as_str();
        let only = |field: &str, owner: &str| {
            format!("{field}: only {owner} target has it; this target is `kind: {kind}`")
        };
        if self.kind != TargetKind::Scim && self.scim_patch.is_some() {
            return Err(only("patch", "a SCIM"));
        }
        if self.kind != TargetKind::GoogleWorkspace && self.google.is_some() {
            return Err(only(
                "google",
                "a Google Workspace (`kind: google_workspace`)",
            ));
        }
        if self.kind != TargetKind::Ldap && self.ldap.is_some() {
            return Err(only("ldap", "an LDAP (`kind: ldap`)"));
        }
        if self.kind == TargetKind::Ldap && self.ldap.is_none() {
            return Err("ldap: an LDAP target needs `ldap: { group_base, user_base }`, where its groups and users are".into());
        }
        self.check_auth()?;
        let attribute = self.user_attribute();
        match self.kind {
            TargetKind::Scim => {
                if self.user_match.attribute.is_some() {
                    return Err("user_match.attribute: a SCIM target names the user attribute it matches on with `scim_attribute`".into());
                }
            }
            TargetKind::Ldap => {
                if self.user_match.scim_attribute.is_some() {
                    return Err(only("user_match.scim_attribute", "a SCIM"));
                }
                if !super::ldap::is_attribute_name(attribute) {
                    return Err(format!("user_match.attribute: `{attribute}` is not an LDAP attribute name such as `mail`, `uid`, `userPrincipalName` or `sAMAccountName`"));
                }
            }
            TargetKind::Okta | TargetKind::GoogleWorkspace => {
                let (allowed, help): (&[&str], _) = match self.kind {
                    TargetKind::Okta => (&["login", "email"], "an Okta user is matched on `login` or `email`"),
                    _ => (&["primaryEmail"], "a Google Workspace user is matched on `primaryEmail` (its aliases count too)"),
                };
                if self.user_match.scim_attribute.is_some() {
                    return Err(format!(
                        "{}\nhelp: {help}, named with `user_match.attribute`",
                        only("user_match.scim_attribute", "a SCIM")
                    ));
                }
                if !allowed.contains(&attribute) {
                    return Err(format!("user_match.attribute: {help}, not `{attribute}`"));
                }
            }
        }
        if let Some(ldap) = &self.ldap {
            ldap.validate()?;
        }
        if let Some(google) = &self.google {
            if let Some(template) = &google.group_email {
                let sample = template.replace("{name}", "group");
                if !template.contains("{name}") || !is_address(&sample) {
                    return Err(format!("google.group_email: `{template}` is not an address template such as `{{name}}@groups.example.com`"));
                }
            }
            if let Some(bad) = google
                .domains
                .iter()
                .find(|d| d.is_empty() || d.contains(['@', ' ', '/']))
            {
                return Err(format!(
                    "google.domains: `{bad}` is not a domain such as `example.com`"
                ));
            }
            super::in_range("google.batch_size", google.batch_size, 1..=1_000)?;
            super::in_range(
                "google.calls_per_minute",
                google.calls_per_minute,
                1..=100_000_000,
            )?;
        }
        Ok(())
    }

    /// `Err` starts with the field's name, for `targets.NAME.` to be put in front.
    pub(super) fn validate(&self) -> Result<(), String> {
        self.check_kind()?;
        if let Some(url) = &self.url {
            match self.kind {
                TargetKind::Ldap => super::ldap::check_ldap_url(url, self.ldap.as_ref()),
                _ => super::check_http_url(url),
            }
            .map_err(|e| format!("url: {e}"))?;
        }
        if let Some(TargetAuth::Oauth2 { token_url, .. }) = &self.auth {
            super::check_http_url(token_url).map_err(|e| format!("auth.oauth2.token_url: {e}"))?;
        }
        use super::in_range;
        if !(0.001..=1_000_000.0).contains(&self.requests_per_second) {
            return Err(format!(
                "requests_per_second: must be from 0.001 to 1000000, not {}",
                self.requests_per_second
            ));
        }
        in_range("concurrency", self.concurrency, 1..=256)?;
        in_range("timeout_seconds", self.timeout_seconds, 1..=3_600)?;
        in_range("retries", self.retries, 0..=20)?;
        in_range("retry_backoff_ms", self.retry_backoff_ms, 0..=600_000)?;
        in_range(
            "max_retry_after_seconds",
            self.max_retry_after_seconds,
            0..=3_600,
        )?;
        in_range(
            "request_deadline_seconds",
            self.request_deadline_seconds,
            1..=86_400,
        )?;
        in_range(
            "push_deadline_seconds",
            self.push_deadline_seconds,
            1..=7 * 86_400,
        )?;
        in_range(
            "max_response_bytes",
            self.max_response_bytes,
            1_024..=(1 << 30),
        )?;
        in_range("max_listed_users", self.max_listed_users, 1..=100_000_000)?;
        in_range("max_list_pages", self.max_list_pages, 1..=10_000_000)?;
        in_range(
            "list_deadline_seconds",
            self.list_deadline_seconds,
            1..=86_400,
        )?;
        in_range(
            "patch.max_members_per_request",
            self.patch().max_members_per_request,
            1..=10_000,
        )?;
        in_range("page_size", self.page_size, 1..=10_000)?;
        in_range(
            "user_cache_seconds",
            self.user_cache_seconds,
            0..=366 * 86_400,
        )?;
        in_range(
            "unresolved_retry_seconds",
            self.unresolved_retry_seconds,
            0..=366 * 86_400,
        )?;
        in_range(
            "verify_every (seconds)",
            self.verify_every.0.as_secs(),
            60..=366 * 86_400,
        )?;
        if !(0.0..=100.0).contains(&self.failsafe.max_remove_percent) {
            return Err("failsafe.max_remove_percent: must be between 0 and 100".into());
        }
        Ok(())
    }
}

/// Whether `text` reads as one email address: a local part, `@`, a dotted domain.
pub fn is_address(text: &str) -> bool {
    let Some((local, domain)) = text.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !domain.contains('@')
        && !text.chars().any(char::is_whitespace)
}

fn default_requests_per_second() -> f64 {
    20.0
}
fn default_concurrency() -> usize {
    4
}
fn default_timeout_seconds() -> u64 {
    30
}
fn default_retries() -> u32 {
    6
}
fn default_retry_backoff_ms() -> u64 {
    250
}
fn default_request_deadline_seconds() -> u64 {
    300
}
fn default_push_deadline_seconds() -> u64 {
    6 * 3_600
}
fn default_max_response_bytes() -> u64 {
    32 << 20
}
fn default_max_listed_users() -> u64 {
    10_000_000
}
fn default_max_list_pages() -> u64 {
    20_000
}
fn default_list_deadline_seconds() -> u64 {
    900
}
fn default_user_cache_seconds() -> u64 {
    86_400
}
fn default_verify_every() -> Every {
    Every(std::time::Duration::from_secs(86_400))
}
fn default_page_size() -> u64 {
    100
}
fn default_max_members() -> usize {
    100
}
fn default_max_remove_percent() -> f64 {
    20.0
}

#[cfg(test)]
mod every_tests {
    use super::Every;

    #[test]
    fn lengths_of_time_read_as_people_write_them() {
        let secs = |t: &str| Every::parse(t).map(|e| e.0.as_secs());
        assert_eq!(secs("24h"), Ok(86_400));
        assert_eq!(secs("1h30m"), Ok(5_400));
        assert_eq!(secs("7d"), Ok(604_800));
        assert_eq!(secs("90s"), Ok(90));
        for bad in ["", "24", "h", "0m", "1w", "-1h", "99999999999999999999d"] {
            assert!(secs(bad).is_err(), "{bad}");
        }
        assert_eq!(Every::parse("1440m").unwrap().to_string(), "24h");
        assert_eq!(Every::parse("7d").unwrap().to_string(), "7d");
        assert_eq!(Every::parse("90m").unwrap().to_string(), "90m");
    }
}
