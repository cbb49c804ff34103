//! Reading the HR export: a file, or a URL such as a Workday RaaS report, with basic or bearer
//! auth from environment variables, a timeout, and retries with backoff. The directory itself
//! only ever sees text.

use std::sync::Arc;
use std::time::Duration;

use rand::{Rng, SeedableRng};

use crate::config::{DirectoryConfig, SourceAuth, SourceConfig};
use crate::directory::{self, DirectoryError, LoadReport, Schema, Snapshot};
use crate::secret::{shown_url, Secret};

#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("cannot read HR export `{path}`: {source}")]
    File {
        path: String,
        source: std::io::Error,
    },
    #[error("environment variable `{var}` ({field}) is not set\nhelp: the config names the variable; set it in the daemon's environment")]
    MissingSecret { var: String, field: &'static str },
    #[error("HR export {url}: HTTP {status}{detail} after {attempts} attempt{}", plural(*attempts))]
    Status {
        url: String,
        status: u16,
        detail: String,
        attempts: u32,
    },
    #[error("HR export {url}: {message} after {attempts} attempt{}", plural(*attempts))]
    Network {
        url: String,
        message: String,
        attempts: u32,
    },
    #[error("HR export {source_name}: not UTF-8 text: the first bad byte is at line {line}, column {column}\nhelp: export the report as UTF-8")]
    Encoding {
        source_name: String,
        line: usize,
        column: usize,
    },
    #[error("HR export {source_name}: not an export: {why}\nhelp: check directory.source.url (a sign-in page or an error page answers with HTML) and directory.source.format")]
    NotAnExport { source_name: String, why: String },
    #[error("HR export {source_name}: larger than directory.source.max_bytes ({max} bytes)")]
    TooLarge { source_name: String, max: u64 },
    #[error("HR export {url}: no answer within directory.source.deadline_seconds ({seconds} s), retries included")]
    Deadline { url: String, seconds: u64 },
}

impl FetchError {
    /// The source answered, but with something that is not an export: such a run fails.
    /// Otherwise (it could not be reached or refused to answer) the last good snapshot may
    /// stand in for it.
    pub fn is_bad_answer(&self) -> bool {
        matches!(
            self,
            FetchError::Encoding { .. }
                | FetchError::TooLarge { .. }
                | FetchError::NotAnExport { .. }
        )
    }
}

/// `bytes` as text, or where its first byte that is not UTF-8 sits.
pub fn decode(bytes: Vec<u8>, source_name: &str) -> Result<String, FetchError> {
    String::from_utf8(bytes).map_err(|e| {
        let at = e.utf8_error().valid_up_to();
        let bytes = e.as_bytes();
        let before = &bytes[..at];
        let line = 1 + before.iter().filter(|&&b| b == b'\n').count();
        let line_start = before
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |i| i + 1);
        // Characters before the bad byte on its line (the part before is valid UTF-8).
        let column = 1 + String::from_utf8_lossy(&before[line_start..])
            .chars()
            .count();
        FetchError::Encoding {
            source_name: source_name.to_string(),
            line,
            column,
        }
    })
}

fn plural(n: u32) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

/// A fetch or a load failed.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error(transparent)]
    Fetch(#[from] FetchError),
    #[error(transparent)]
    Directory(#[from] DirectoryError),
}

impl LoadError {
    /// The export could not be had from its URL (its credential is not set here, or the
    /// server did not answer with it): nothing is known of the data, which is not wrong. A
    /// file that cannot be read, or an answer that is no export, is an error of the setup.
    pub fn unobtainable(&self) -> bool {
        matches!(
            self,
            LoadError::Fetch(
                FetchError::MissingSecret { .. }
                    | FetchError::Status { .. }
                    | FetchError::Network { .. }
                    | FetchError::Deadline { .. }
            )
        )
    }
}

/// How messages name the source: the file, or the URL without credentials or query.
pub fn source_name(source: &SourceConfig) -> String {
    match (&source.file, &source.url) {
        (Some(file), _) => file.display().to_string(),
        (None, Some(url)) => shown_url(url),
        (None, None) => String::new(),
    }
}

/// The export's text.
pub async fn export(source: &SourceConfig) -> Result<String, FetchError> {
    let name = source_name(source);
    let bytes = match (&source.file, &source.url) {
        (Some(path), _) => read_file(path, source.max_bytes, &name).await?,
        (None, Some(url)) => {
            let deadline = Duration::from_secs(source.deadline_seconds);
            tokio::time::timeout(deadline, fetch_url(url, source))
                .await
                .map_err(|_| FetchError::Deadline {
                    url: shown_url(url),
                    seconds: source.deadline_seconds,
                })??
        }
        (None, None) => {
            return Err(FetchError::File {
                path: String::new(),
                source: std::io::Error::new(std::io::ErrorKind::NotFound, "no source configured"),
            })
        }
    };
    decode(bytes, &name)
}

async fn read_file(path: &std::path::Path, max: u64, name: &str) -> Result<Vec<u8>, FetchError> {
    let file_err = |source| FetchError::File {
        path: path.display().to_string(),
        source,
    };
    let size = tokio::fs::metadata(path).await.map_err(file_err)?.len();
    if size > max {
        return Err(FetchError::TooLarge {
            source_name: name.to_string(),
            max,
        });
    }
    tokio::fs::read(path).await.map_err(file_err)
}

/// Fetches and parses the export.
pub async fn load(config: &DirectoryConfig) -> Result<(Snapshot, LoadReport), LoadError> {
    load_with_checksum(config)
        .await
        .map(|(snapshot, report, _)| (snapshot, report))
}

/// Fetches and parses the export; also its checksum, by which the store knows a snapshot.
pub async fn load_with_checksum(
    config: &DirectoryConfig,
) -> Result<(Snapshot, LoadReport, String), LoadError> {
    let text = export(&config.source).await?;
    let checksum = directory::checksum(text.as_bytes());
    let schema = Arc::new(Schema::from_config(config));
    let (snapshot, report) = directory::load_from_str(
        &text,
        config.source.format(),
        &source_name(&config.source),
        schema,
        config.max_bad_rows_percent,
    )?;
    Ok((snapshot, report, checksum))
}

enum Credentials {
    None,
    Basic(String, Secret),
    Bearer(Secret),
}

fn credentials(source: &SourceConfig) -> Result<Credentials, FetchError> {
    let secret = |var: &str, field| {
        Secret::from_env(var).ok_or_else(|| FetchError::MissingSecret {
            var: var.to_string(),
            field,
        })
    };
    Ok(match &source.auth {
        None => Credentials::None,
        Some(SourceAuth::Basic {
            username,
            password_env,
        }) => Credentials::Basic(
            username.clone(),
            secret(password_env, "directory.source.auth.basic.password_env")?,
        ),
        Some(SourceAuth::Bearer { token_env }) => {
            Credentials::Bearer(secret(token_env, "directory.source.auth.bearer.token_env")?)
        }
    })
}

async fn fetch_url(url: &str, source: &SourceConfig) -> Result<Vec<u8>, FetchError> {
    let shown = shown_url(url);
    let credentials = credentials(source)?;
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(source.timeout_seconds))
        .user_agent(concat!("rosterd/", env!("CARGO_PKG_VERSION")))
        .redirect(crate::http::same_origin_redirects())
        .build()
        .map_err(|e| FetchError::Network {
            url: shown.clone(),
            message: describe(&e),
            attempts: 0,
        })?;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(u64::from(std::process::id()));
    let mut attempt = 0;
    loop {
        attempt += 1;
        let mut request = client.get(url);
        request = match &credentials {
            Credentials::None => request,
            Credentials::Basic(user, password) => request.basic_auth(user, Some(password.expose())),
            Credentials::Bearer(token) => request.bearer_auth(token.expose()),
        };
        let (error, retry_after) = match request.send().await {
            Ok(response) if response.status().is_success() => {
                return read_export(response, source, &shown, attempt).await;
            }
            Ok(response) => {
                let status = response.status().as_u16();
                let retry_after = crate::http::retry_after(
                    response.headers(),
                    Duration::from_secs(source.max_retry_after_seconds),
                );
                let detail = match status {
                    401 | 403 => ": the credentials were refused".to_string(),
                    404 => ": no such report".to_string(),
                    _ => String::new(),
                };
                let error = FetchError::Status {
                    url: shown.clone(),
                    status,
                    detail,
                    attempts: attempt,
                };
                if !(status == 429 || status >= 500) {
                    return Err(error);
                }
                (error, retry_after)
            }
            Err(e) => (
                FetchError::Network {
                    url: shown.clone(),
                    message: describe(&e),
                    attempts: attempt,
                },
                None,
            ),
        };
        if attempt > source.retries {
            return Err(error);
        }
        let delay =
            retry_after.unwrap_or_else(|| backoff(source.retry_backoff_ms, attempt, &mut rng));
        tracing::warn!(url = %shown, attempt, delay_ms = delay.as_millis() as u64, "HR export fetch failed, retrying: {error}");
        tokio::time::sleep(delay).await;
    }
}

/// Reads an answer, checking as it comes that it is an export: UTF-8 throughout, and
/// beginning as the format does. An answer that is not one is refused at its first bad
/// byte, not after all of it (up to `max_bytes`) is in memory.
async fn read_export(
    mut response: reqwest::Response,
    source: &SourceConfig,
    shown: &str,
    attempt: u32,
) -> Result<Vec<u8>, FetchError> {
    let max = source.max_bytes;
    let too_large = || FetchError::TooLarge {
        source_name: shown.to_string(),
        max,
    };
    if response.content_length().is_some_and(|n| n > max) {
        return Err(too_large());
    }
    let mut body: Vec<u8> = Vec::new();
    // Bytes checked as UTF-8 so far, and whether the beginning was looked at.
    let mut valid = 0;
    let mut began = false;
    loop {
        let chunk = match response.chunk().await {
            Ok(Some(chunk)) => chunk,
            Ok(None) => break,
            Err(e) => {
                return Err(FetchError::Network {
                    url: shown.to_string(),
                    message: describe(&e),
                    attempts: attempt,
                })
            }
        };
        if (body.len() + chunk.len()) as u64 > max {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
        match std::str::from_utf8(&body[valid..]) {
            Ok(_) => valid = body.len(),
            // A character cut by the chunk's end is checked with the next chunk.
            Err(e) if e.error_len().is_none() => valid += e.valid_up_to(),
            Err(_) => return decode(body, shown).map(String::into_bytes),
        }
        if !began {
            began = begins_as(&body[..valid], source.format(), shown)?;
        }
    }
    if valid < body.len() {
        // The answer ended inside a character.
        return decode(body, shown).map(String::into_bytes);
    }
    Ok(body)
}

/// Whether `text` (checked UTF-8) has its first character that is not a byte-order mark or
/// white space yet, and an error if that character cannot begin an export of `format`.
fn begins_as(
    text: &[u8],
    format: crate::config::SourceFormat,
    shown: &str,
) -> Result<bool, FetchError> {
    let text = std::str::from_utf8(text).unwrap_or_default();
    let Some(first) = text
        .trim_start_matches('\u{feff}')
        .chars()
        .find(|c| !c.is_whitespace())
    else {
        return Ok(false);
    };
    let why = match (first, format) {
        ('<', _) => Some("it begins with `<`: an HTML or XML page".to_string()),
        ('{' | '[', crate::config::SourceFormat::WorkdayJson) => None,
        (other, crate::config::SourceFormat::WorkdayJson) => Some(format!(
            "it begins with `{}`, and a Workday JSON report begins with `{{`",
            other.escape_default()
        )),
        _ => None,
    };
    match why {
        Some(why) => Err(FetchError::NotAnExport {
            source_name: shown.to_string(),
            why,
        }),
        None => Ok(true),
    }
}

/// Exponential backoff with up to 25% jitter, capped at five minutes.
pub(crate) fn backoff(base_ms: u64, attempt: u32, rng: &mut impl Rng) -> Duration {
    let exp = base_ms.saturating_mul(1u64 << (attempt - 1).min(20));
    let jitter = rng.random_range(0..=exp / 4 + 1);
    Duration::from_millis(exp.saturating_add(jitter).min(300_000))
}

/// A reqwest error in words, without the URL it carries (which may hold a query secret).
pub(crate) fn describe(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "cannot connect"
    } else if e.is_body() || e.is_decode() {
        "the answer broke off"
    } else {
        "request failed"
    };
    let mut source = std::error::Error::source(e);
    let mut detail = None;
    while let Some(s) = source {
        detail = Some(s.to_string());
        source = s.source();
    }
    match detail {
        Some(d) => format!("{kind}: {d}"),
        None => kind.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_bounded_jitter() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
        for attempt in 1..6u32 {
            let d = backoff(100, attempt, &mut rng).as_millis() as u64;
            let base = 100 << (attempt - 1);
            assert!(
                d >= base && d <= base + base / 4 + 1,
                "attempt {attempt}: {d}"
            );
        }
        assert_eq!(backoff(1_000, 40, &mut rng), Duration::from_secs(300));
    }
}
