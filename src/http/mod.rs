//! What every HTTP client of rosterd's shares, since every remote party may be hostile: a
//! body read within a size limit, redirects followed only within the origin configured, and
//! `Retry-After` read and capped.

mod auth;
pub mod client;

pub use auth::{GOOGLE_SCOPES, GOOGLE_TOKEN_AUDIENCE};

use std::time::Duration;

use crate::secret::shown_url;

/// Why a body could not be read.
pub enum BodyError {
    TooLarge,
    Network(reqwest::Error),
}

/// Reads an answer's body up to `max` bytes: a larger one is refused as soon as it is known
/// to be larger (from `Content-Length`, or while it streams), never held whole.
pub async fn read_body(mut response: reqwest::Response, max: u64) -> Result<Vec<u8>, BodyError> {
    if response.content_length().is_some_and(|n| n > max) {
        return Err(BodyError::TooLarge);
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(BodyError::Network)? {
        if (body.len() + chunk.len()) as u64 > max {
            return Err(BodyError::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// Follows a redirect only within the same origin (scheme, host and port), and at most five:
/// credentials are sent to the origin configured, and answers are believed only from it.
pub fn same_origin_redirects() -> reqwest::redirect::Policy {
    reqwest::redirect::Policy::custom(|attempt| {
        let same = attempt
            .previous()
            .first()
            .is_some_and(|first| first.origin() == attempt.url().origin());
        if !same {
            let to = shown_url(attempt.url().as_str());
            attempt.error(format!("refused a redirect to another origin: {to}"))
        } else if attempt.previous().len() > 5 {
            attempt.error("more than five redirects")
        } else {
            attempt.follow()
        }
    })
}

/// `Retry-After` as seconds or an HTTP date (RFC 9110 section 10.2.3), at most `max`.
pub fn retry_after(headers: &reqwest::header::HeaderMap, max: Duration) -> Option<Duration> {
    let value = headers
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim();
    let wait = match value.parse::<u64>() {
        Ok(seconds) => Duration::from_secs(seconds),
        Err(_) => {
            let at = chrono::DateTime::parse_from_rfc2822(value).ok()?;
            (at.with_timezone(&chrono::Utc) - crate::clock::now_utc())
                .to_std()
                .unwrap_or_default()
        }
    };
    Some(wait.min(max))
}

/// Percent-encodes a path segment or query value.
pub fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// What went wrong with a request, in a few words (no URL: the caller names the path).
pub(crate) fn describe(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "timed out".into()
    } else if e.is_connect() {
        "cannot connect".into()
    } else if e.is_body() || e.is_decode() {
        "the connection broke during the answer".into()
    } else {
        // reqwest puts the URL in its messages; the caller already names the path.
        crate::text::with_causes(e).replace(e.url().map(|u| u.as_str()).unwrap_or("\u{0}"), "")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_is_read_as_seconds_or_a_date_and_capped() {
        let mut headers = reqwest::header::HeaderMap::new();
        let max = Duration::from_secs(60);
        headers.insert(reqwest::header::RETRY_AFTER, "7".parse().unwrap());
        assert_eq!(retry_after(&headers, max), Some(Duration::from_secs(7)));
        headers.insert(reqwest::header::RETRY_AFTER, "999999".parse().unwrap());
        assert_eq!(retry_after(&headers, max), Some(max));
        let later = (crate::clock::now_utc() + chrono::Duration::days(30)).to_rfc2822();
        headers.insert(reqwest::header::RETRY_AFTER, later.parse().unwrap());
        assert_eq!(retry_after(&headers, max), Some(max));
        headers.insert(reqwest::header::RETRY_AFTER, "soon".parse().unwrap());
        assert_eq!(retry_after(&headers, max), None);
    }
}
