//! How requests to a target prove who sends them: a bearer token, an Okta API token
//! (`SSWS`), or an OAuth 2.0 access token fetched, cached and renewed by one of three grants:
//! client credentials with a secret (RFC 6749 section 4.4), with a client assertion signed by
//! the app's key (RFC 7523 section 2.2, Okta's service apps), or a JWT bearer grant (RFC 7523
//! section 2.1) from a Google service account acting for an admin (domain-wide delegation).
//! Secrets are read once, when the client is made, and never shown.

use std::time::Duration;

use serde_json::Value;
use tokio::sync::Mutex;
use tokio::time::Instant;

use crate::config::TargetAuth;
use crate::secret::{shown_url, Secret};

pub(super) enum Auth {
    None,
    Bearer(Secret),
    /// An Okta API token: `Authorization: SSWS <token>`.
    Ssws(Secret),
    OAuth2 {
        grant: Grant,
        /// The current access token and when to fetch a new one.
        token: Mutex<Option<(Secret, Instant)>>,
    },
}

/// How an access token is asked for.
pub(super) enum Grant {
    /// Client credentials, the client's secret in HTTP Basic auth (RFC 6749 section 2.3.1).
    Secret {
        token_url: String,
        client_id: String,
        secret: Secret,
        scope: Option<String>,
    },
    /// Client credentials with a client assertion signed by the app's private key.
    PrivateKey {
        token_url: String,
        client_id: String,
        key: Box<jsonwebtoken::EncodingKey>,
        key_id: Option<String>,
        scope: String,
    },
    /// A Google service account's JWT, for `subject` (the admin it acts for).
    ServiceAccount {
        token_url: String,
        client_email: String,
        key: Box<jsonwebtoken::EncodingKey>,
        key_id: Option<String>,
        subject: String,
        scope: String,
    },
}

/// The audience of every Google service-account JWT, whatever the key's `token_uri`
/// ("When making an access token request this value is always
/// https://oauth2.googleapis.com/token"; google-auth sends the same).
pub const GOOGLE_TOKEN_AUDIENCE: &str = "https://oauth2.googleapis.com/token";

/// The scopes a Google Workspace target asks for unless configured: groups and their
/// members managed, users read.
pub const GOOGLE_SCOPES: &str = "https://www.googleapis.com/auth/admin.directory.group https://www.googleapis.com/auth/admin.directory.user.readonly";

impl Auth {
    /// How requests authenticate, from a target's `auth` (secrets and keys read from the
    /// environment or a file now); `setup` words a failure.
    /// A failure is its message.
    pub(super) fn of(auth: &Option<TargetAuth>, base: &str) -> Result<Auth, String> {
        let setup = |message: String| message;
        let secret = |var: &str| {
            Secret::from_env(var).ok_or_else(|| {
                setup(format!(
                    "environment variable `{var}` is not set\nhelp: the config names the variable; set it in rosterd's environment"
                ))
            })
        };
        // A key from its file or its variable; `field` names the setting in messages.
        let key_text = |field: &str, file: &Option<std::path::PathBuf>, var: &Option<String>| match (
            file, var,
        ) {
            (Some(file), _) => Ok(Secret::new(std::fs::read_to_string(file).map_err(|e| {
                setup(format!(
                    "cannot read {field}.key_file `{}`: {e}",
                    file.display()
                ))
            })?)),
            (None, Some(var)) => secret(var),
            (None, None) => Err(setup(format!("{field}: no key_file or key_env"))),
        };
        let oauth = |grant| Auth::OAuth2 {
            grant,
            token: Mutex::new(None),
        };
        Ok(match auth {
            None => Auth::None,
            Some(TargetAuth::Simple { .. } | TargetAuth::ClientCertificate { .. }) => {
                return Err(setup(
                    "an LDAP bind is only for a target of `kind: ldap`".into(),
                ))
            }
            Some(TargetAuth::Bearer { token_env }) => Auth::Bearer(secret(token_env)?),
            Some(TargetAuth::Ssws { token_env }) => Auth::Ssws(secret(token_env)?),
            Some(TargetAuth::Oauth2 {
                token_url,
                client_id,
                client_secret_env,
                scope,
            }) => oauth(Grant::Secret {
                token_url: token_url.clone(),
                client_id: client_id.clone(),
                secret: secret(client_secret_env)?,
                scope: scope.clone(),
            }),
            Some(TargetAuth::PrivateKeyJwt {
                client_id,
                key_file,
                key_env,
                key_id,
                scopes,
            }) => {
                let pem = key_text("auth.private_key_jwt", key_file, key_env)?;
                oauth(Grant::PrivateKey {
                    token_url: format!("{base}/oauth2/v1/token"),
                    client_id: client_id.clone(),
                    key: rsa_key(&pem, "auth.private_key_jwt")?,
                    key_id: key_id.clone(),
                    scope: scopes
                        .clone()
                        .unwrap_or_else(|| "okta.groups.manage okta.users.read".into()),
                })
            }
            Some(TargetAuth::ServiceAccount {
                key_file,
                key_env,
                subject,
                scopes,
            }) => {
                let field = "auth.service_account";
                let text = key_text(field, key_file, key_env)?;
                // The key's own parse error could quote it: say only what is missing.
                let json: Value = serde_json::from_str(text.expose()).map_err(|_| {
                    setup(format!("{field}: the key is not a service account's JSON key (as the Google Cloud console downloads it)"))
                })?;
                let field_of = |name: &str| {
                    json[name]
                        .as_str()
                        .map(str::to_string)
                        .ok_or_else(|| setup(format!("{field}: the JSON key has no `{name}`")))
                };
                if json["type"] != "service_account" {
                    return Err(setup(format!(
                        "{field}: the JSON key is not of `\"type\": \"service_account\"`"
                    )));
                }
                let token_url = field_of("token_uri")?;
                crate::config::check_http_url(&token_url)
                    .map_err(|e| setup(format!("{field}: the JSON key's token_uri: {e}")))?;
                oauth(Grant::ServiceAccount {
                    token_url,
                    client_email: field_of("client_email")?,
                    key: rsa_key(&Secret::new(field_of("private_key")?), field)?,
                    key_id: json["private_key_id"].as_str().map(str::to_string),
                    subject: subject.clone(),
                    scope: scopes.clone().unwrap_or_else(|| GOOGLE_SCOPES.into()),
                })
            }
        })
    }

    /// Whether a 401 may be cured by fetching a new access token.
    pub(super) fn renews(&self) -> bool {
        matches!(self, Auth::OAuth2 { .. })
    }

    /// The `Authorization` header's value, fetching an access token when none is current.
    /// `jti` makes a signed assertion unique (asked only when one is signed). A failure is
    /// its message.
    pub(super) async fn header(
        &self,
        http: &reqwest::Client,
        jti: impl FnOnce() -> u128,
    ) -> Result<Option<Secret>, String> {
        match self {
            Auth::None => Ok(None),
            Auth::Ssws(token) => Ok(Some(Secret::new(format!("SSWS {}", token.expose())))),
            Auth::Bearer(token) => Ok(Some(Secret::new(format!("Bearer {}", token.expose())))),
            Auth::OAuth2 { grant, token } => {
                let mut cached = token.lock().await;
                if let Some((value, until)) = cached.as_ref() {
                    if Instant::now() < *until {
                        return Ok(Some(Secret::new(format!("Bearer {}", value.expose()))));
                    }
                }
                let (value, lifetime) = grant.fetch(http, jti()).await?;
                // Renew a minute early (or at half-life for short tokens).
                let renew = lifetime
                    .saturating_sub(Duration::from_secs(60))
                    .max(lifetime / 2);
                *cached = Some((value.clone(), Instant::now() + renew));
                Ok(Some(Secret::new(format!("Bearer {}", value.expose()))))
            }
        }
    }

    /// Drops the access token, so the next request fetches a new one.
    pub(super) async fn forget(&self) {
        if let Auth::OAuth2 { token, .. } = self {
            *token.lock().await = None;
        }
    }
}

fn rsa_key(pem: &Secret, field: &str) -> Result<Box<jsonwebtoken::EncodingKey>, String> {
    // The key's own error could quote it: say only that it is not one.
    jsonwebtoken::EncodingKey::from_rsa_pem(pem.expose().as_bytes())
        .map(Box::new)
        .map_err(|_| {
            format!("{field}: the key is not an RSA private key in PEM (PKCS#1 or PKCS#8)")
        })
}

impl Grant {
    fn token_url(&self) -> &str {
        match self {
            Grant::Secret { token_url, .. }
            | Grant::PrivateKey { token_url, .. }
            | Grant::ServiceAccount { token_url, .. } => token_url,
        }
    }

    /// Asks the token endpoint for an access token: the token and how long it lasts.
    async fn fetch(&self, http: &reqwest::Client, jti: u128) -> Result<(Secret, Duration), String> {
        let token_url = self.token_url();
        let fail =
            |message: String| format!("OAuth2 token from {}: {message}", shown_url(token_url));
        let sign = |claims: Value, key: &jsonwebtoken::EncodingKey, key_id: &Option<String>| {
            let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
            header.kid = key_id.clone();
            jsonwebtoken::encode(&header, &claims, key)
                .map_err(|e| fail(format!("cannot sign the assertion: {e}")))
        };
        let now = crate::clock::now_utc().timestamp();
        let mut request = http.post(token_url);
        let form: Vec<(&str, String)> = match self {
            Grant::Secret {
                client_id,
                secret,
                scope,
                ..
            } => {
                request = request.basic_auth(client_id, Some(secret.expose()));
                let mut form = vec![("grant_type", "client_credentials".to_string())];
                form.extend(scope.iter().map(|s| ("scope", s.clone())));
                form
            }
            Grant::PrivateKey {
                client_id,
                key,
                key_id,
                scope,
                ..
            } => {
                let claims = serde_json::json!({
                    "iss": client_id, "sub": client_id, "aud": token_url,
                    "iat": now, "exp": now + 300, "jti": format!("{jti:032x}"),
                });
                vec![
                    ("grant_type", "client_credentials".into()),
                    ("scope", scope.clone()),
                    (
                        "client_assertion_type",
                        "urn:ietf:params:oauth:client-assertion-type:jwt-bearer".into(),
                    ),
                    ("client_assertion", sign(claims, key, key_id)?),
                ]
            }
            Grant::ServiceAccount {
                client_email,
                key,
                key_id,
                subject,
                scope,
                ..
            } => {
                // Google's service-account JWT: for an hour at most, acting as `sub`.
                let claims = serde_json::json!({
                    "iss": client_email, "sub": subject, "scope": scope,
                    "aud": GOOGLE_TOKEN_AUDIENCE, "iat": now, "exp": now + 3600,
                });
                vec![
                    (
                        "grant_type",
                        "urn:ietf:params:oauth:grant-type:jwt-bearer".into(),
                    ),
                    ("assertion", sign(claims, key, key_id)?),
                ]
            }
        };
        let response = request
            .form(&form)
            .send()
            .await
            .map_err(|e| fail(super::describe(&e)))?;
        let status = response.status();
        if !status.is_success() {
            // The server's OAuth error code says why (`invalid_client`, `invalid_scope`).
            let body = response.bytes().await.unwrap_or_default();
            let said = serde_json::from_slice::<Value>(&body)
                .ok()
                .and_then(|b| b["error"].as_str().map(|e| crate::text::shorten(e, 60)));
            let help = match (self, said.as_deref()) {
                (Grant::ServiceAccount { subject, .. }, Some("unauthorized_client")) => format!(
                    "\nhelp: in the Admin console (Security > API controls > Domain-wide delegation), allow the service account's client ID these scopes; and check that `{subject}` is an admin"
                ),
                _ => String::new(),
            };
            return Err(fail(match said {
                Some(error) => format!("HTTP {} ({error}){help}", status.as_u16()),
                None => format!("HTTP {}", status.as_u16()),
            }));
        }
        let bytes = response
            .bytes()
            .await
            .map_err(|e| fail(super::describe(&e)))?;
        let body: Value = serde_json::from_slice(&bytes)
            .map_err(|e| fail(format!("the answer is not JSON: {e}")))?;
        let token = body
            .get("access_token")
            .and_then(Value::as_str)
            .ok_or_else(|| fail("the answer has no access_token".into()))?;
        let lifetime = body
            .get("expires_in")
            .and_then(Value::as_u64)
            .unwrap_or(3600);
        Ok((Secret::new(token), Duration::from_secs(lifetime)))
    }
}
