//! `ui:`: the web console. Without this section the console is off and the daemon's address
//! serves the JSON API only.

use serde::Deserialize;

/// Sign-in with OpenID Connect (authorization code with PKCE) and who may see and approve.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UiConfig {
    /// The identity provider's issuer, as its discovery document gives it: Okta
    /// `https://ORG.okta.com/oauth2/default` (or `https://ORG.okta.com` for the org server),
    /// Entra ID `https://login.microsoftonline.com/TENANT_ID/v2.0`.
    pub issuer: String,
    pub client_id: String,
    /// The environment variable that holds the client secret (never in this file).
    #[serde(default = "default_client_secret_env")]
    pub client_secret_env: String,
    /// Where the provider sends the browser back: the console's public address followed by
    /// `/auth/callback`, registered with the provider as is.
    pub redirect_url: String,
    /// Asked for at sign-in; `openid` is always asked for.
    #[serde(default = "default_scopes")]
    pub scopes: Vec<String>,
    /// The ID token claim that lists the person's groups (`groups` for Okta and Entra ID).
    #[serde(default = "default_groups_claim")]
    pub groups_claim: String,
    /// Who may see the console; approvers may too.
    #[serde(default)]
    pub viewers: Vec<Role>,
    /// Who may approve held pushes.
    #[serde(default)]
    pub approvers: Vec<Role>,
    /// How long a sign-in lasts.
    #[serde(default = "default_session_hours")]
    pub session_hours: f64,
    /// Whether signing out of the console also signs the person out at the provider, when
    /// the provider offers it (OpenID Connect RP-Initiated Logout). The provider then sends
    /// the browser back to [`UiConfig::signed_out_url`], which must be registered with it
    /// as a sign-out redirect URI.
    #[serde(default = "default_true")]
    pub sign_out_at_provider: bool,
    /// Issuers whose ID tokens may leave `email_verified` out and still name the person by
    /// their email (some providers only put verified addresses in `email` and never send
    /// the claim). From any other issuer an email without `email_verified: true` names
    /// nobody; an explicit `false` names nobody from any issuer.
    #[serde(default)]
    pub trust_unverified_email_from: Vec<String>,
}

impl UiConfig {
    /// The console's signed-out page: `redirect_url` with `/auth/signed-out` in place of
    /// `/auth/callback`.
    pub fn signed_out_url(&self) -> String {
        let base = self
            .redirect_url
            .strip_suffix("/auth/callback")
            .unwrap_or(&self.redirect_url);
        format!("{base}/auth/signed-out")
    }
}

fn default_true() -> bool {
    true
}

/// One way to hold a role: a group the identity provider names in the groups claim, or one
/// of rosterd's own groups, matched by the person's email against the workers' emails in
/// the snapshot in force (so that CorpSec's approvers can themselves be a managed group).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "RoleSpec")]
pub enum Role {
    Claim(String),
    Group(String),
}

/// A role as written: `claim: NAME` or `group: NAME`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RoleSpec {
    claim: Option<String>,
    group: Option<String>,
}

impl TryFrom<RoleSpec> for Role {
    type Error = String;

    fn try_from(spec: RoleSpec) -> Result<Role, String> {
        match (spec.claim, spec.group) {
            (Some(c), None) => Ok(Role::Claim(c)),
            (None, Some(g)) => Ok(Role::Group(g)),
            _ => Err("give one of `claim: GROUP` (a group in the ID token's groups claim) or `group: NAME` (a rosterd group)".into()),
        }
    }
}

fn default_client_secret_env() -> String {
    "ROSTERD_OIDC_CLIENT_SECRET".into()
}

fn default_scopes() -> Vec<String> {
    ["openid", "email", "profile"]
        .iter()
        .map(|s| s.to_string())
        .collect()
}

fn default_groups_claim() -> String {
    "groups".into()
}

fn default_session_hours() -> f64 {
    8.0
}

impl UiConfig {
    pub(super) fn validate(&self) -> Result<(), String> {
        let url = |field: &str, value: &str| -> Result<url::Url, String> {
            super::check_http_url(value).map_err(|e| format!("ui.{field}: {e}"))?;
            url::Url::parse(value).map_err(|e| format!("ui.{field}: {e}"))
        };
        url("issuer", &self.issuer)?;
        let redirect = url("redirect_url", &self.redirect_url)?;
        if redirect.path() != "/auth/callback" {
            return Err(format!(
                "ui.redirect_url: `{}` must end in /auth/callback, the console's sign-in return\nhelp: e.g. https://rosterd.example.com/auth/callback",
                self.redirect_url
            ));
        }
        if self.client_id.trim().is_empty() {
            return Err("ui.client_id: must not be empty".into());
        }
        if self.groups_claim.trim().is_empty() {
            return Err("ui.groups_claim: must not be empty".into());
        }
        if self.viewers.is_empty() && self.approvers.is_empty() {
            return Err("ui: give `viewers` or `approvers` (a list of `claim: GROUP` or `group: ROSTERD_GROUP`); without them nobody may sign in".into());
        }
        for (field, roles) in [("viewers", &self.viewers), ("approvers", &self.approvers)] {
            for role in roles {
                let (Role::Claim(name) | Role::Group(name)) = role;
                if name.trim().is_empty() {
                    return Err(format!("ui.{field}: a group name must not be empty"));
                }
            }
        }
        if !(self.session_hours > 0.0 && self.session_hours <= 24.0 * 30.0) {
            return Err("ui.session_hours: must be more than 0 and at most 720".into());
        }
        Ok(())
    }

    /// `Err` naming the first `group:` role that the rules do not define (`known` says
    /// which they do): such a role would quietly lock its people out.
    pub fn check_groups(
        &self,
        config: &std::path::Path,
        rules_dir: &std::path::Path,
        known: impl Fn(&str) -> bool,
    ) -> Result<(), String> {
        match self.rosterd_groups().find(|(_, group)| !known(group)) {
            Some((field, group)) => Err(format!(
                "{}: ui.{field}: `group: {group}` is not a group of the rules in {}\nhelp: name a group the rules define, or use `claim: {group}` for a group of the identity provider",
                config.display(),
                rules_dir.display()
            )),
            None => Ok(()),
        }
    }

    /// The rosterd groups the roles name, with the field that names them, for checking
    /// against the rules.
    pub fn rosterd_groups(&self) -> impl Iterator<Item = (&'static str, &str)> {
        fn of<'a>(
            field: &'static str,
            roles: &'a [Role],
        ) -> impl Iterator<Item = (&'static str, &'a str)> {
            roles.iter().filter_map(move |r| match r {
                Role::Group(g) => Some((field, g.as_str())),
                Role::Claim(_) => None,
            })
        }
        of("viewers", &self.viewers).chain(of("approvers", &self.approvers))
    }
}
