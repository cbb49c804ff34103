//! The outbox: every request a push plans is stored before it is sent and settled when the
//! target answers (done, failed, or superseded by a later plan), so that after a crash the
//! store says either "sent and confirmed" or "pending".

use std::collections::BTreeMap;

use serde::Serialize;
// Dynamic SQL here is only constants and `$N` placeholders; values are always bound.
use sqlx::AssertSqlSafe;
use sqlx::Row;

use super::push::TargetMember;
use super::text::{OutboxAction, OutboxStatus};
use super::{Store, StoreError};

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct OutboxPayload {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// The target group's id; absent for `create`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scim_id: Option<String>,
    /// The members created with the group, added, or (for `remove`) removed. Not stored:
    /// an entry left pending is never sent again as it was (its group is read back and
    /// planned afresh), so the store keeps only the counts.
    #[serde(skip)]
    pub members: Vec<TargetMember>,
    /// For `update`: the members removed (`members` are those added). Not stored.
    #[serde(skip)]
    pub remove: Vec<TargetMember>,
    /// How many members the entry adds, and removes.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub added: usize,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub removed: usize,
    /// For `create`: the group's email address, for a kind whose groups have one (Google
    /// Workspace), by which it is found and made.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// For `create`: link to an existing group instead (never create one).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub link: bool,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

impl OutboxPayload {
    /// The payload as stored: the counts of its member changes.
    fn stored(&self, action: OutboxAction) -> String {
        let (added, removed) = self.member_changes(action);
        let counted = OutboxPayload {
            added: added.len().max(self.added),
            removed: removed.len().max(self.removed),
            members: Vec::new(),
            remove: Vec::new(),
            ..self.clone()
        };
        serde_json::to_string(&counted).unwrap_or_default()
    }

    /// The members an entry of `action` adds, and those it removes.
    pub fn member_changes(&self, action: OutboxAction) -> (&[TargetMember], &[TargetMember]) {
        match action {
            OutboxAction::Create | OutboxAction::Add => (&self.members, &[]),
            OutboxAction::Remove => (&[], &self.members),
            OutboxAction::Update => (&self.members, &self.remove),
            OutboxAction::Rename | OutboxAction::Delete => (&[], &[]),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct OutboxEntry {
    pub id: i64,
    pub target: String,
    pub group: String,
    pub action: OutboxAction,
    pub payload: OutboxPayload,
    pub status: OutboxStatus,
    pub attempts: i64,
    pub http_status: Option<i64>,
    pub scim_type: Option<String>,
    pub detail: Option<String>,
    pub created_at: String,
    pub finished_at: Option<String>,
}

const OUTBOX_COLUMNS: &str = "id, target, group_name, action, payload, status, attempts, \
     http_status, scim_type, detail, created_at, finished_at";

fn outbox_entry(row: &sqlx::any::AnyRow) -> Result<OutboxEntry, sqlx::Error> {
    let payload: String = row.try_get("payload")?;
    Ok(OutboxEntry {
        id: row.try_get("id")?,
        target: row.try_get("target")?,
        group: row.try_get("group_name")?,
        action: OutboxAction::parse(&row.try_get::<String, _>("action")?)?,
        payload: serde_json::from_str(&payload)
            .map_err(|e| sqlx::Error::Decode(format!("outbox payload: {e}").into()))?,
        status: OutboxStatus::parse(&row.try_get::<String, _>("status")?)?,
        attempts: row.try_get("attempts")?,
        http_status: row.try_get("http_status")?,
        scim_type: row.try_get("scim_type")?,
        detail: row.try_get("detail")?,
        created_at: row.try_get("created_at")?,
        finished_at: row.try_get("finished_at")?,
    })
}

impl Store {
    // --- Outbox ------------------------------------------------------------------------------

    /// Writes entries, all or none; their ids in order.
    pub async fn enqueue(
        &self,
        target: &str,
        group: &str,
        entries: &[(OutboxAction, OutboxPayload)],
        now: &str,
    ) -> Result<Vec<i64>, StoreError> {
        let (_writing, mut tx) = self.begin_write().await?;
        let mut ids = Vec::with_capacity(entries.len());
        for (action, payload) in entries {
            let row = sqlx::query(
                "INSERT INTO outbox (target, group_name, action, payload, status, created_at) \
                 VALUES ($1, $2, $3, $4, 'pending', $5) RETURNING id",
            )
            .bind(target)
            .bind(group)
            .bind(action.as_str())
            .bind(payload.stored(*action))
            .bind(now)
            .fetch_one(&mut *tx)
            .await?;
            ids.push(row.try_get::<i64, _>(0)?);
        }
        tx.commit().await?;
        Ok(ids)
    }

    /// Pending entries of a target, oldest first.
    pub async fn pending_outbox(&self, target: &str) -> Result<Vec<OutboxEntry>, StoreError> {
        let sql = format!(
            "SELECT {OUTBOX_COLUMNS} FROM outbox WHERE target = $1 AND status = 'pending' ORDER BY id"
        );
        let rows = sqlx::query(AssertSqlSafe(sql))
            .bind(target)
            .fetch_all(self.pool())
            .await?;
        Ok(rows.iter().map(outbox_entry).collect::<Result<_, _>>()?)
    }

    /// The newest entries, optionally of one status.
    pub async fn outbox(
        &self,
        status: Option<OutboxStatus>,
        limit: i64,
    ) -> Result<Vec<OutboxEntry>, StoreError> {
        let sql = format!(
            "SELECT {OUTBOX_COLUMNS} FROM outbox WHERE ($1 = '' OR status = $1) ORDER BY id DESC LIMIT $2"
        );
        let rows = sqlx::query(AssertSqlSafe(sql))
            .bind(status.map_or("", OutboxStatus::as_str))
            .bind(limit)
            .fetch_all(self.pool())
            .await?;
        Ok(rows.iter().map(outbox_entry).collect::<Result<_, _>>()?)
    }

    /// The newest entry the target refused for good for one group, however old.
    pub async fn last_failure(
        &self,
        target: &str,
        group: &str,
    ) -> Result<Option<OutboxEntry>, StoreError> {
        let sql = format!(
            "SELECT {OUTBOX_COLUMNS} FROM outbox WHERE status = 'failed' AND target = $1 \
             AND group_name = $2 ORDER BY id DESC LIMIT 1"
        );
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(target)
            .bind(group)
            .fetch_optional(self.pool())
            .await?;
        Ok(row.as_ref().map(outbox_entry).transpose()?)
    }

    /// Unsent (`pending`) and refused (`failed`) entries per target and group.
    pub async fn outbox_counts(
        &self,
    ) -> Result<BTreeMap<(String, String, OutboxStatus), i64>, StoreError> {
        let rows = sqlx::query(
            "SELECT target, group_name, status, COUNT(*) FROM outbox \
             WHERE status IN ('pending', 'failed') GROUP BY target, group_name, status",
        )
        .fetch_all(self.pool())
        .await?;
        let mut out = BTreeMap::new();
        for row in rows {
            let status = OutboxStatus::parse(&row.try_get::<String, _>(2)?)?;
            out.insert(
                (row.try_get(0)?, row.try_get(1)?, status),
                row.try_get::<i64, _>(3)?,
            );
        }
        Ok(out)
    }

    /// Pending entries settled without being sent (again): left by a stopped push, after a
    /// lost answer, or after a 404 earlier in their batch. Their group's changes are planned
    /// afresh from what the target holds (`superseded`).
    pub async fn outbox_superseded(&self, ids: &[i64], now: &str) -> Result<(), StoreError> {
        let (_writing, mut tx) = self.begin_write().await?;
        for id in ids {
            sqlx::query(
                "UPDATE outbox SET status = 'superseded', finished_at = $1, \
                 detail = 'not confirmed; the group''s changes were planned again from what the target holds' \
                 WHERE id = $2 AND status = 'pending'",
            )
            .bind(now)
            .bind(*id)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// The target refused the entry for good (a 4xx other than 429): it is not sent again.
    pub async fn outbox_failed(
        &self,
        id: i64,
        attempts: i64,
        http_status: Option<u16>,
        scim_type: Option<&str>,
        detail: &str,
        now: &str,
    ) -> Result<(), StoreError> {
        let _writing = self.writing().await;
        sqlx::query(
            "UPDATE outbox SET status = 'failed', http_status = $1, scim_type = $2, detail = $3, \
             finished_at = $4, attempts = attempts + $6 WHERE id = $5",
        )
        .bind(http_status.map(i64::from))
        .bind(scim_type)
        .bind(detail)
        .bind(now)
        .bind(id)
        .bind(attempts)
        .execute(self.pool())
        .await?;
        Ok(())
    }
}
