//! Secrets: read from the environment, handed to the one call that needs them, never printed;
//! and URLs scrubbed of the secrets they may carry before a message shows them.

use std::fmt;

/// A secret value. `Debug` and `Display` print `***`, so a secret that ends up in a log line,
/// an error or a debug dump shows nothing.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Reads the environment variable `var`; unset or empty is `None`.
    pub fn from_env(var: &str) -> Option<Secret> {
        std::env::var(var)
            .ok()
            .filter(|v| !v.is_empty())
            .map(Secret)
    }

    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The value itself, for the request that sends it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

// URLs carry secrets too (a password in the user info, a token in the query); these are
// the two ways messages show them.

/// A URL with its password replaced by `***`, for messages.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let Some((userinfo, host)) = rest.split_once('@') else {
        return url.to_string();
    };
    match userinfo.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
        None => url.to_string(),
    }
}

/// A URL as messages may show it: no user info, no query string (either may carry secrets).
pub fn shown_url(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let rest = rest.split('?').next().unwrap_or(rest);
    let (authority, path) = rest.split_once('/').map_or((rest, ""), |(a, p)| (a, p));
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let query = if url.contains('?') { "?..." } else { "" };
    if scheme.is_empty() {
        format!("{host}/{path}{query}")
    } else {
        format!("{scheme}://{host}/{path}{query}")
    }
}

/// Whether `given` is the secret `expected`. Compares digests of both, so that neither the contents nor the length of the token
/// shows in the time taken.
pub fn same(given: &str, expected: &str) -> bool {
    use sha2::{Digest as _, Sha256};
    let (a, b) = (
        Sha256::digest(given.as_bytes()),
        Sha256::digest(expected.as_bytes()),
    );
    a.iter()
        .zip(b.iter())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y))
        == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_never_reach_messages() {
        assert_eq!(
            redact_url("postgres://rosterd:s3cret@db:5432/rosterd"),
            "postgres://rosterd:***@db:5432/rosterd"
        );
        assert_eq!(
            redact_url("postgres://rosterd@db/rosterd"),
            "postgres://rosterd@db/rosterd"
        );
        assert_eq!(redact_url("sqlite://rosterd.db"), "sqlite://rosterd.db");
    }

    #[test]
    fn urls_in_messages_carry_no_credentials_or_query() {
        assert_eq!(
            shown_url("https://isu:pw@wd5.example.com/ccx/report/Workers?format=json&token=abc"),
            "https://wd5.example.com/ccx/report/Workers?..."
        );
        assert_eq!(
            shown_url("http://127.0.0.1:8080/x"),
            "http://127.0.0.1:8080/x"
        );
    }

    #[test]
    fn secrets_print_as_stars() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s} {s:?} {:?}", Some(&s)), "*** *** Some(***)");
        assert_eq!(s.expose(), "hunter2");
    }

    #[test]
    fn secrets_compare_whole() {
        assert!(same("abc", "abc"));
        assert!(!same("abd", "abc"));
        assert!(!same("ab", "abc"));
        assert!(!same("", "abc"));
    }
}
