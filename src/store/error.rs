//! What the store's operations fail with.

use super::NO_EPOCH;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(
        "unsupported database URL `{0}`\nhelp: use `sqlite://FILE` or `postgres://USER@HOST/DB`"
    )]
    Url(String),
    #[error("cannot open database `{url}`: {source}")]
    Open { url: String, source: sqlx::Error },
    #[error("cannot migrate database `{url}`: {source}")]
    Migrate {
        url: String,
        source: sqlx::migrate::MigrateError,
    },
    #[error("database error: {0}")]
    Query(#[from] sqlx::Error),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{}", fenced_message(*mine, now))]
    Fenced { mine: i64, now: String },
    /// Storing a target's confirmations failed in the commit that carried them (shared by
    /// the requests that finished meanwhile): why, as that commit's error said.
    #[error("storing the target's confirmations failed: {0}")]
    Confirm(String),
}

fn fenced_message(mine: i64, now: &str) -> String {
    if mine == NO_EPOCH {
        "this process does not lead (another one does, or none can reach the database): a run \
         it started writes nothing"
            .to_string()
    } else {
        format!(
            "this process no longer leads: it ran as leadership epoch {mine}, and {now}; its \
             writes are refused"
        )
    }
}

/// Stored state that cannot be read back: nothing rosterd wrote reads so.
pub(super) fn corrupt(what: &str, message: impl std::fmt::Display) -> StoreError {
    StoreError::Query(sqlx::Error::Decode(
        format!(
            "{what}: {message}\nhelp: the database is damaged; restore it from a backup \
             (the rules and the HR export are enough to evaluate again, but not the audit)"
        )
        .into(),
    ))
}
