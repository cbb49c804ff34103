//! The web console's sign-ins: sessions found by the SHA-256 of their cookie, and the state
//! of sign-ins in flight. Times are `clock::stamp` text, which sorts as time does.

use sqlx::Row;

use super::{Store, StoreError};
use crate::secret::Secret;

/// A signed-in person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsoleSession {
    pub subject: String,
    pub email: Option<String>,
    pub name: Option<String>,
    /// The ID token's groups claim.
    pub claim_groups: Vec<String>,
    pub csrf_token: String,
    pub expires_at: String,
    /// The ID token the provider issued at sign-in, its `id_token_hint` at sign-out.
    pub id_token: Option<Secret>,
    /// The provider left the groups claim out of the ID token and pointed elsewhere for it
    /// (Microsoft Entra ID's "overage", past 200 groups).
    pub groups_elsewhere: bool,
}

/// A sign-in in flight: what the callback needs to finish it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsoleLogin {
    pub nonce: String,
    pub pkce_verifier: String,
    pub return_to: String,
}

/// Sign-ins started and not finished (each lives ten minutes at most): a flood of sign-in
/// starts fills no more than this many rows.
pub const MAX_PENDING_LOGINS: i64 = 10_000;

impl Store {
    /// Stores a sign-in in flight under the hash of its `state`, and forgets those expired.
    pub async fn begin_console_login(
        &self,
        state_hash: &str,
        login: &ConsoleLogin,
        now: &str,
        expires_at: &str,
    ) -> Result<(), StoreError> {
        let _writing = self.writing().await;
        let mut tx = self.pool().begin().await?;
        sqlx::query("DELETE FROM console_logins WHERE expires_at <= $1")
            .bind(now)
            .execute(&mut *tx)
            .await?;
        let pending: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM console_logins")
            .fetch_one(&mut *tx)
            .await?;
        if pending >= MAX_PENDING_LOGINS {
            return Err(StoreError::Conflict(format!(
                "{pending} sign-ins are in progress, the most the console keeps; try again in a few minutes"
            )));
        }
        sqlx::query(
            "INSERT INTO console_logins (state_hash, nonce, pkce_verifier, return_to, expires_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(state_hash)
        .bind(&login.nonce)
        .bind(&login.pkce_verifier)
        .bind(&login.return_to)
        .bind(expires_at)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Takes a sign-in in flight: it can be finished once, and only before it expires.
    pub async fn take_console_login(
        &self,
        state_hash: &str,
        now: &str,
    ) -> Result<Option<ConsoleLogin>, StoreError> {
        let _writing = self.writing().await;
        let row = sqlx::query(
            "DELETE FROM console_logins WHERE state_hash = $1 \
             RETURNING nonce, pkce_verifier, return_to, expires_at",
        )
        .bind(state_hash)
        .fetch_optional(self.pool())
        .await?;
        let Some(row) = row else { return Ok(None) };
        let expires_at: String = row.try_get(3)?;
        if expires_at.as_str() <= now {
            return Ok(None);
        }
        Ok(Some(ConsoleLogin {
            nonce: row.try_get(0)?,
            pkce_verifier: row.try_get(1)?,
            return_to: row.try_get(2)?,
        }))
    }

    /// Stores a session under the hash of its cookie, and forgets those expired.
    pub async fn create_console_session(
        &self,
        id_hash: &str,
        session: &ConsoleSession,
        now: &str,
    ) -> Result<(), StoreError> {
        let groups = serde_json::to_string(&session.claim_groups)
            .map_err(|e| StoreError::Query(sqlx::Error::Decode(e.into())))?;
        let _writing = self.writing().await;
        let mut tx = self.pool().begin().await?;
        sqlx::query("DELETE FROM console_sessions WHERE expires_at <= $1")
            .bind(now)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO console_sessions (id_hash, subject, email, name, claim_groups, csrf_token, \
             created_at, expires_at, id_token, groups_elsewhere) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(id_hash)
        .bind(&session.subject)
        .bind(session.email.as_deref())
        .bind(session.name.as_deref())
        .bind(groups)
        .bind(&session.csrf_token)
        .bind(now)
        .bind(&session.expires_at)
        .bind(session.id_token.as_ref().map(Secret::expose))
        .bind(i64::from(session.groups_elsewhere))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The session whose cookie hashes to `id_hash`, unless it has expired.
    pub async fn console_session(
        &self,
        id_hash: &str,
        now: &str,
    ) -> Result<Option<ConsoleSession>, StoreError> {
        let row = sqlx::query(
            "SELECT subject, email, name, claim_groups, csrf_token, expires_at, id_token, \
             groups_elsewhere \
             FROM console_sessions WHERE id_hash = $1 AND expires_at > $2",
        )
        .bind(id_hash)
        .bind(now)
        .fetch_optional(self.pool())
        .await?;
        let Some(row) = row else { return Ok(None) };
        let groups: String = row.try_get(3)?;
        Ok(Some(ConsoleSession {
            subject: row.try_get(0)?,
            email: row.try_get(1)?,
            name: row.try_get(2)?,
            claim_groups: serde_json::from_str(&groups)
                .map_err(|e| StoreError::Query(sqlx::Error::Decode(e.into())))?,
            csrf_token: row.try_get(4)?,
            expires_at: row.try_get(5)?,
            id_token: row.try_get::<Option<String>, _>(6)?.map(Secret::new),
            groups_elsewhere: row.try_get::<i64, _>(7)? != 0,
        }))
    }

    /// Signs a session out.
    pub async fn end_console_session(&self, id_hash: &str) -> Result<(), StoreError> {
        let _writing = self.writing().await;
        sqlx::query("DELETE FROM console_sessions WHERE id_hash = $1")
            .bind(id_hash)
            .execute(self.pool())
            .await?;
        Ok(())
    }
}
