//! Sign-in with OpenID Connect: the authorization code flow with PKCE, a nonce, and a
//! `state` that is also bound to the browser by a short-lived cookie (so a sign-in started in
//! one browser cannot be finished in another). The ID token is verified by `openidconnect`
//! (signature against the provider's keys, issuer, audience, expiry, nonce); the groups
//! claim, whose name the config gives, is read from the verified token.
//!
//! Signing out ends the console's session and, where the provider offers it (an
//! `end_session_endpoint` in its discovery document), sends the browser to the provider to
//! end its session too (OpenID Connect RP-Initiated Logout), with the ID token as
//! `id_token_hint`, so that the next person at the same browser is asked to sign in.

use std::time::{Duration, Instant};

use base64::Engine as _;
use openidconnect::core::{CoreAuthenticationFlow, CoreClient, CoreIdToken};
use openidconnect::{
    AuthorizationCode, ClientId, ClientSecret, CsrfToken, EndpointMaybeSet, EndpointNotSet,
    EndpointSet, IssuerUrl, LogoutRequest, Nonce, PkceCodeChallenge, PkceCodeVerifier,
    PostLogoutRedirectUrl, ProviderMetadataWithLogout, RedirectUrl, Scope, TokenResponse,
};

use crate::config::UiConfig;
use crate::daemon::DaemonError;
use crate::secret::Secret;
use crate::store::{ConsoleLogin, ConsoleSession};

/// How long a sign-in may take at the provider.
pub const LOGIN_SECONDS: i64 = 600;
/// How long the provider's discovery document (and so its keys) is kept before it is read
/// again; a token signed with a key not yet known has it read at once.
const METADATA_SECONDS: u64 = 3_600;

type Client = CoreClient<
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointMaybeSet,
    EndpointMaybeSet,
>;

/// Why a sign-in did not finish. The messages are shown to the person signing in, so they
/// name no secret and no token.
#[derive(Debug, thiserror::Error)]
pub enum SignInError {
    #[error("the identity provider cannot be reached or did not answer as expected: {0}")]
    Provider(String),
    #[error("this sign-in has expired or was already used; sign in again")]
    UnknownState,
    #[error("the identity provider refused the sign-in: {0}")]
    Refused(String),
    #[error("the identity provider's token did not verify: {0}")]
    Token(String),
    /// A claim the console reads is there but not as OpenID Connect defines it.
    #[error("the identity provider's token has a `{claim}` claim that {why}")]
    Claim { claim: String, why: String },
}

/// How far ahead of this host's clock an ID token may say it was issued.
const FUTURE_ISSUE_SECONDS: i64 = 300;

/// The console's OpenID Connect relying party.
pub struct Oidc {
    issuer: IssuerUrl,
    client_id: ClientId,
    secret: Secret,
    redirect: RedirectUrl,
    /// Where the provider sends the browser after its sign-out, when rosterd asks for one.
    signed_out: Option<PostLogoutRedirectUrl>,
    scopes: Vec<String>,
    groups_claim: String,
    /// Issuers trusted to send only verified addresses without saying so.
    trust_unverified: bool,
    http: reqwest::Client,
    metadata: tokio::sync::Mutex<Option<(Instant, ProviderMetadataWithLogout)>>,
}

/// Where the browser goes next, and what the callback will need.
pub struct Started {
    pub authorize_url: String,
    pub state: String,
    pub login: ConsoleLogin,
}

/// Who signed in.
pub struct Identity {
    pub subject: String,
    pub email: Option<String>,
    pub name: Option<String>,
    pub groups: Vec<String>,
    /// The provider left the groups claim out and pointed elsewhere for it.
    pub groups_elsewhere: bool,
    pub id_token: Secret,
}

impl Oidc {
    pub fn new(ui: &UiConfig, secret: Secret) -> Result<Oidc, DaemonError> {
        let http = reqwest::Client::builder()
            // Never follow redirects: the provider's endpoints answer directly, and a
            // redirect from one would send the client secret elsewhere.
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(15))
            .user_agent(concat!("rosterd/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| DaemonError::Config(format!("ui: cannot build the HTTP client: {e}")))?;
        Ok(Oidc {
            issuer: IssuerUrl::new(ui.issuer.clone())
                .map_err(|e| DaemonError::Config(format!("ui.issuer: {e}")))?,
            client_id: ClientId::new(ui.client_id.clone()),
            secret,
            redirect: RedirectUrl::new(ui.redirect_url.clone())
                .map_err(|e| DaemonError::Config(format!("ui.redirect_url: {e}")))?,
            signed_out: match ui.sign_out_at_provider {
                true => Some(
                    PostLogoutRedirectUrl::new(ui.signed_out_url())
                        .map_err(|e| DaemonError::Config(format!("ui.redirect_url: {e}")))?,
                ),
                false => None,
            },
            scopes: ui.scopes.clone(),
            groups_claim: ui.groups_claim.clone(),
            trust_unverified: ui
                .trust_unverified_email_from
                .iter()
                .any(|i| i.trim_end_matches('/') == ui.issuer.trim_end_matches('/')),
            http,
            metadata: tokio::sync::Mutex::new(None),
        })
    }

    /// The provider's metadata, read at most once an hour (or at once when `fresh`).
    async fn metadata(&self, fresh: bool) -> Result<ProviderMetadataWithLogout, SignInError> {
        let mut kept = self.metadata.lock().await;
        if let Some((at, m)) = kept.as_ref() {
            if !fresh && at.elapsed() < Duration::from_secs(METADATA_SECONDS) {
                return Ok(m.clone());
            }
        }
        let m = ProviderMetadataWithLogout::discover_async(self.issuer.clone(), &self.http)
            .await
            .map_err(|e| SignInError::Provider(crate::text::with_causes(&e)))?;
        *kept = Some((Instant::now(), m.clone()));
        Ok(m)
    }

    fn client(&self, metadata: ProviderMetadataWithLogout) -> Client {
        CoreClient::from_provider_metadata(
            metadata,
            self.client_id.clone(),
            Some(ClientSecret::new(self.secret.expose().to_string())),
        )
        .set_redirect_uri(self.redirect.clone())
    }

    /// Starts a sign-in that returns to `return_to` (a path on the console).
    pub async fn start(&self, return_to: &str) -> Result<Started, SignInError> {
        let client = self.client(self.metadata(false).await?);
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let mut request = client.authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        );
        for scope in self.scopes.iter().filter(|s| s.as_str() != "openid") {
            request = request.add_scope(Scope::new(scope.clone()));
        }
        let (url, state, nonce) = request.set_pkce_challenge(challenge).url();
        Ok(Started {
            authorize_url: url.to_string(),
            state: state.secret().clone(),
            login: ConsoleLogin {
                nonce: nonce.secret().clone(),
                pkce_verifier: verifier.secret().clone(),
                return_to: return_to.to_string(),
            },
        })
    }

    /// Finishes a sign-in: trades the code for tokens and verifies the ID token.
    pub async fn finish(&self, code: &str, login: &ConsoleLogin) -> Result<Identity, SignInError> {
        let client = self.client(self.metadata(false).await?);
        let tokens = client
            .exchange_code(AuthorizationCode::new(code.to_string()))
            .map_err(|e| SignInError::Provider(e.to_string()))?
            .set_pkce_verifier(PkceCodeVerifier::new(login.pkce_verifier.clone()))
            .request_async(&self.http)
            .await
            .map_err(|e| {
                // An ID token whose claims do not parse fails the whole answer: say which.
                let sent = match &e {
                    openidconnect::RequestTokenError::Parse(_, body) => {
                        serde_json::from_slice::<serde_json::Value>(body)
                            .ok()
                            .and_then(|b| b.get("id_token")?.as_str().and_then(payload))
                    }
                    _ => None,
                };
                sent.and_then(|p| malformed_claim(&p, &self.groups_claim))
                    .unwrap_or_else(|| SignInError::Refused(crate::text::with_causes(&e)))
            })?;
        let id_token = tokens
            .id_token()
            .ok_or_else(|| SignInError::Token("the token answer has no ID token".into()))?;
        let nonce = Nonce::new(login.nonce.clone());
        let verified = id_token
            .claims(&client.id_token_verifier(), &nonce)
            .cloned();
        // The payload as sent: read for a clearer error than the verifier's when a claim is
        // malformed, and (once verified) for the groups claim, whose name the config chooses.
        let payload = payload(&id_token.to_string()).unwrap_or_default();
        let claims = match verified {
            Ok(c) => c,
            // Perhaps the provider rotated its keys: read them again, once.
            Err(first) => {
                let fresh = self.client(self.metadata(true).await?);
                let verifier = fresh.id_token_verifier();
                let again = id_token.claims(&verifier, &nonce).cloned();
                again.map_err(|_| {
                    malformed_claim(&payload, &self.groups_claim)
                        .unwrap_or_else(|| SignInError::Token(first.to_string()))
                })?
            }
        };
        if let Some(e) = malformed_claim(&payload, &self.groups_claim) {
            return Err(e);
        }
        let ahead = (claims.issue_time() - chrono::Utc::now()).num_seconds();
        if ahead > FUTURE_ISSUE_SECONDS {
            return Err(SignInError::Claim {
                claim: "iat".into(),
                why: format!(
                    "says it was issued {ahead} s from now (more than {FUTURE_ISSUE_SECONDS} s ahead): check the clocks of the provider and of this host"
                ),
            });
        }
        let groups = claim_groups(&payload, &self.groups_claim);
        let groups_elsewhere = groups_elsewhere(&payload, &self.groups_claim);
        // Only an address the provider says it verified names the person: `group:` roles
        // match people by it, and an unverified one could be anyone's. A provider that leaves
        // the claim out is believed only when the config says so.
        let verified = match claims.email_verified() {
            Some(v) => v,
            None => self.trust_unverified,
        };
        Ok(Identity {
            subject: claims.subject().to_string(),
            email: claims.email().filter(|_| verified).map(|e| e.to_string()),
            name: claims
                .name()
                .and_then(|n| n.get(None))
                .map(|n| n.to_string()),
            groups,
            groups_elsewhere,
            id_token: Secret::new(id_token.to_string()),
        })
    }

    /// The issuer's origin (`https://host[:port]`), where its end-session endpoint must be.
    pub fn issuer_origin(&self) -> String {
        self.issuer.url().origin().ascii_serialization()
    }

    /// Where to send a browser whose session has just ended so that the provider ends its
    /// own: its end-session endpoint with the ID token as a hint, this client's id and the
    /// console's signed-out page to come back to. `None` when the config says not to, or
    /// the provider offers no such endpoint (or cannot be reached: the console's session is
    /// over either way).
    pub async fn end_session_url(&self, id_token: Option<&Secret>) -> Option<String> {
        let back = self.signed_out.clone()?;
        let metadata = match self.metadata(false).await {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!("console sign-out: not signed out at the provider: {e}");
                return None;
            }
        };
        let endpoint = metadata
            .additional_metadata()
            .end_session_endpoint
            .clone()?;
        // The pages allow forms to lead to the issuer's origin only.
        if endpoint.url().origin() != self.issuer.url().origin() {
            tracing::warn!(
                endpoint = %endpoint.url(),
                "console sign-out: the provider's end-session endpoint is not on the issuer's host; signed out of the console only"
            );
            return None;
        }
        let mut request = LogoutRequest::from(endpoint)
            .set_client_id(self.client_id.clone())
            .set_post_logout_redirect_uri(back);
        if let Some(token) = id_token.and_then(|t| t.expose().parse::<CoreIdToken>().ok()) {
            request = request.set_id_token_hint(&token);
        }
        Some(request.http_get_url().to_string())
    }
}

/// A JWT's payload as JSON.
fn payload(jwt: &str) -> Option<serde_json::Value> {
    let part = jwt.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part.trim_end_matches('='))
        .ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// The first claim the console reads that is not as OpenID Connect defines it, and how.
fn malformed_claim(payload: &serde_json::Value, groups_claim: &str) -> Option<SignInError> {
    use serde_json::Value;
    let bad = |claim: &str, why: &str| {
        Some(SignInError::Claim {
            claim: claim.to_string(),
            why: why.to_string(),
        })
    };
    let found = |v: &Value| match v {
        Value::String(s) => format!("`{}`", crate::text::shorten(s, 40)),
        Value::Array(_) => "a list".into(),
        Value::Object(_) => "an object".into(),
        other => other.to_string(),
    };
    for claim in ["sub", "email", "name"] {
        match payload.get(claim) {
            None | Some(Value::String(_)) => {}
            Some(Value::Null) if claim != "sub" => {}
            Some(v) => return bad(claim, &format!("is {} where text belongs", found(v))),
        }
    }
    match payload.get("email_verified") {
        None | Some(Value::Bool(_)) => {}
        // Some providers (AWS Cognito) send the text; it is read as the boolean it names.
        Some(Value::String(s)) if s == "true" || s == "false" => {}
        Some(v) => {
            return bad(
                "email_verified",
                &format!("is {}, not true or false", found(v)),
            )
        }
    }
    for claim in ["iat", "exp"] {
        match payload.get(claim) {
            Some(Value::Number(_)) => {}
            None => return bad(claim, "is missing"),
            Some(v) => return bad(claim, &format!("is {}, not a time in seconds", found(v))),
        }
    }
    match payload.get(groups_claim) {
        None | Some(Value::String(_)) => None,
        Some(Value::Array(items)) if items.iter().all(Value::is_string) => None,
        Some(v) => bad(
            groups_claim,
            &format!(
                "is {}, not a list of group names (ui.groups_claim)",
                found(v)
            ),
        ),
    }
}

/// The groups a claim lists: an array of strings, or one string.
fn claim_groups(payload: &serde_json::Value, claim: &str) -> Vec<String> {
    match payload.get(claim) {
        Some(serde_json::Value::Array(items)) => items
            .iter()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect(),
        Some(serde_json::Value::String(s)) => vec![s.clone()],
        _ => Vec::new(),
    }
}

/// Whether the token names `claim` as a distributed claim (OpenID Connect Core 5.6.2): the
/// provider left it out and points elsewhere for it. Microsoft Entra ID does so for the
/// groups of a person in more than 200 (its "overage"); rosterd does not fetch them.
fn groups_elsewhere(payload: &serde_json::Value, claim: &str) -> bool {
    payload
        .get("_claim_names")
        .and_then(|names| names.get(claim))
        .is_some()
}

/// A new random token (32 bytes, URL-safe base64) for a session or a CSRF token.
pub fn random_token() -> String {
    CsrfToken::new_random_len(32).secret().clone()
}

/// The hex SHA-256 of a token: what the store keeps.
pub fn token_hash(token: &str) -> String {
    crate::directory::checksum(token.as_bytes())
}

/// A session for `identity`, lasting `hours`.
pub fn session_for(
    identity: Identity,
    hours: f64,
    now: chrono::DateTime<chrono::Utc>,
) -> ConsoleSession {
    let expires = now + chrono::Duration::seconds((hours * 3_600.0) as i64);
    ConsoleSession {
        subject: identity.subject,
        email: identity.email,
        name: identity.name,
        claim_groups: identity.groups,
        groups_elsewhere: identity.groups_elsewhere,
        csrf_token: random_token(),
        expires_at: crate::clock::stamp(expires),
        id_token: Some(identity.id_token),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_groups_claim_is_read_whatever_its_shape() {
        let p = serde_json::json!({"groups": ["a", "b", 3], "roles": "x"});
        assert_eq!(claim_groups(&p, "groups"), vec!["a", "b"]);
        assert_eq!(claim_groups(&p, "roles"), vec!["x"]);
        assert!(claim_groups(&p, "missing").is_empty());
    }

    #[test]
    fn groups_left_out_of_the_token_are_noticed() {
        // Entra ID's overage: no groups claim, a pointer to where they are.
        let p = serde_json::json!({
            "_claim_names": {"groups": "src1"},
            "_claim_sources": {"src1": {"endpoint": "https://graph.windows.net/t/users/u/getMemberObjects"}}
        });
        assert!(groups_elsewhere(&p, "groups"));
        assert!(claim_groups(&p, "groups").is_empty());
        assert!(!groups_elsewhere(&p, "roles"));
        assert!(!groups_elsewhere(
            &serde_json::json!({"groups": ["a"]}),
            "groups"
        ));
    }

    #[test]
    fn a_jwt_payload_is_decoded() {
        let body = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(br#"{"groups":["g"]}"#);
        let jwt = format!("e30.{body}.sig");
        assert_eq!(
            claim_groups(&payload(&jwt).unwrap_or_default(), "groups"),
            vec!["g"]
        );
    }

    #[test]
    fn tokens_are_random_and_hashed() {
        let (a, b) = (random_token(), random_token());
        assert_ne!(a, b);
        assert!(a.len() >= 43);
        assert_eq!(token_hash("abc").len(), 64);
        assert_eq!(
            token_hash("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
