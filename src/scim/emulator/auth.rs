//! Who may call the emulator: bearer tokens, and the OAuth2 client-credentials endpoint that
//! issues them.

use super::*;

pub(super) fn authorised(t: &Tenant, headers: &HeaderMap) -> bool {
    if t.tokens.is_empty() {
        return true;
    }
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        // Okta's API tokens come as `SSWS <token>`.
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("SSWS "))
        })
        .is_some_and(|token| t.tokens.contains(token))
}

pub(super) fn issue_token(shared: &Shared, tenant: &str, headers: &HeaderMap) -> Answer {
    let Some((id, secret)) = &shared.options.oauth_client else {
        return error(
            StatusCode::NOT_FOUND,
            None,
            "no OAuth2 client is configured",
        );
    };
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(decode_basic);
    if given.as_ref() != Some(&(id.clone(), secret.clone())) {
        return (
            StatusCode::UNAUTHORIZED,
            Some(json!({"error": "invalid_client"})),
        );
    }
    let mut tenants = lock(&shared.tenants);
    let t = tenant_mut(&mut tenants, shared, tenant);
    let token = format!("emu-{tenant}-{}", t.tokens.len() + 1);
    t.tokens.insert(token.clone());
    (
        StatusCode::OK,
        Some(json!({"access_token": token, "token_type": "Bearer", "expires_in": 3600})),
    )
}

/// `id:secret` from HTTP Basic credentials.
fn decode_basic(text: &str) -> Option<(String, String)> {
    use base64::Engine as _;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text.trim())
        .ok()?;
    let text = String::from_utf8(bytes).ok()?;
    let (id, secret) = text.split_once(':')?;
    Some((id.to_string(), secret.to_string()))
}
