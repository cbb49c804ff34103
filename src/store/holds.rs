//! Push holds: a push the removal failsafe or a guardrail held, until a person approves it
//! (one conditional update) and the next push sends it, or a later plan no longer needs it.

use serde::Serialize;
// Dynamic SQL here is only constants and `$N` placeholders; values are always bound.
use sqlx::AssertSqlSafe;
use sqlx::Row;

use super::text::HoldStatus;
use super::{Store, StoreError};

#[derive(Debug, Clone, Serialize)]
pub struct PushHold {
    pub id: i64,
    pub target: String,
    pub group: String,
    pub reason: String,
    pub to_add: i64,
    pub to_remove: i64,
    pub members_in_target: i64,
    pub status: HoldStatus,
    pub created_at: String,
    pub approved_at: Option<String>,
    /// Who approved it: `cli:USER`, `api`, or a person signed in.
    pub approved_by: Option<String>,
}

impl PushHold {
    /// Still holding its push: held, or approved and not sent yet.
    pub fn is_open(&self) -> bool {
        self.status.is_open()
    }
}

const HOLD_COLUMNS: &str = "id, target, group_name, reason, to_add, to_remove, \
     members_in_target, status, created_at, approved_at, approved_by";

fn push_hold(row: &sqlx::any::AnyRow) -> Result<PushHold, sqlx::Error> {
    Ok(PushHold {
        id: row.try_get("id")?,
        target: row.try_get("target")?,
        group: row.try_get("group_name")?,
        reason: row.try_get("reason")?,
        to_add: row.try_get("to_add")?,
        to_remove: row.try_get("to_remove")?,
        members_in_target: row.try_get("members_in_target")?,
        status: HoldStatus::parse(&row.try_get::<String, _>("status")?)?,
        created_at: row.try_get("created_at")?,
        approved_at: row.try_get("approved_at")?,
        approved_by: row.try_get("approved_by")?,
    })
}

impl Store {
    // --- Holds -------------------------------------------------------------------------------

    pub async fn push_holds(
        &self,
        status: Option<HoldStatus>,
    ) -> Result<Vec<PushHold>, StoreError> {
        let sql = format!(
            "SELECT {HOLD_COLUMNS} FROM push_holds WHERE ($1 = '' OR status = $1) ORDER BY id"
        );
        let rows = sqlx::query(AssertSqlSafe(sql))
            .bind(status.map_or("", HoldStatus::as_str))
            .fetch_all(self.pool())
            .await?;
        Ok(rows.iter().map(push_hold).collect::<Result<_, _>>()?)
    }

    /// The holds still holding their push (held, or approved and not sent yet), oldest
    /// first: what `status`, the metrics and the console's overview read on every request,
    /// without every hold ever made.
    pub async fn open_push_holds(&self) -> Result<Vec<PushHold>, StoreError> {
        let sql = format!(
            "SELECT {HOLD_COLUMNS} FROM push_holds WHERE status IN ('held', 'approved') ORDER BY id"
        );
        let rows = sqlx::query(AssertSqlSafe(sql))
            .fetch_all(self.pool())
            .await?;
        Ok(rows.iter().map(push_hold).collect::<Result<_, _>>()?)
    }

    /// One hold by id.
    pub async fn push_hold(&self, id: i64) -> Result<Option<PushHold>, StoreError> {
        let sql = format!("SELECT {HOLD_COLUMNS} FROM push_holds WHERE id = $1");
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(id)
            .fetch_optional(self.pool())
            .await?;
        Ok(row.as_ref().map(push_hold).transpose()?)
    }

    /// The pair's hold that is still open (held or approved), if any.
    pub async fn open_push_hold(
        &self,
        target: &str,
        group: &str,
    ) -> Result<Option<PushHold>, StoreError> {
        let sql = format!(
            "SELECT {HOLD_COLUMNS} FROM push_holds WHERE target = $1 AND group_name = $2 \
             AND status IN ('held', 'approved') ORDER BY id DESC LIMIT 1"
        );
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(target)
            .bind(group)
            .fetch_optional(self.pool())
            .await?;
        Ok(row.as_ref().map(push_hold).transpose()?)
    }

    /// Holds a pair's push: updates its open hold, or opens one. The hold's id.
    pub async fn hold_push(&self, hold: &PushHold, now: &str) -> Result<i64, StoreError> {
        let (_writing, mut tx) = self.begin_write().await?;
        sqlx::query(
            "UPDATE push_holds SET status = 'superseded' WHERE target = $1 AND group_name = $2 \
             AND status IN ('held', 'approved')",
        )
        .bind(hold.target.as_str())
        .bind(hold.group.as_str())
        .execute(&mut *tx)
        .await?;
        let row = sqlx::query(
            "INSERT INTO push_holds (target, group_name, reason, to_add, to_remove, members_in_target, \
             status, created_at) VALUES ($1, $2, $3, $4, $5, $6, 'held', $7) RETURNING id",
        )
        .bind(hold.target.as_str())
        .bind(hold.group.as_str())
        .bind(hold.reason.as_str())
        .bind(hold.to_add)
        .bind(hold.to_remove)
        .bind(hold.members_in_target)
        .bind(now)
        .fetch_one(&mut *tx)
        .await?;
        let id = row.try_get::<i64, _>(0)?;
        tx.commit().await?;
        Ok(id)
    }

    /// Closes a pair's open hold: `released` when an approval was used, `superseded` when
    /// the push no longer needs one.
    pub async fn close_push_hold(
        &self,
        id: i64,
        status: HoldStatus,
        now: &str,
    ) -> Result<(), StoreError> {
        let _writing = self.writing().await;
        sqlx::query("UPDATE push_holds SET status = $1, closed_at = $2 WHERE id = $3")
            .bind(status.as_str())
            .bind(now)
            .bind(id)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// The holds of `group`'s pushes that held on `date` (`YYYY-MM-DD`, UTC): made that day
    /// or before, and not closed before it.
    pub async fn holds_on(&self, group: &str, date: &str) -> Result<Vec<PushHold>, StoreError> {
        let sql = format!(
            "SELECT {HOLD_COLUMNS} FROM push_holds WHERE group_name = $1 \
             AND substr(created_at, 1, 10) <= $2 \
             AND (closed_at IS NULL OR substr(closed_at, 1, 10) >= $2) ORDER BY id"
        );
        let rows = sqlx::query(AssertSqlSafe(sql))
            .bind(group)
            .bind(date)
            .fetch_all(self.pool())
            .await?;
        Ok(rows.iter().map(push_hold).collect::<Result<_, _>>()?)
    }

    /// Releases a held push, recording when and by whom.
    pub async fn approve_push_hold(
        &self,
        id: i64,
        now: &str,
        by: &str,
    ) -> Result<PushHold, StoreError> {
        let _writing = self.writing().await;
        // One conditional update: of two approvers (or processes) at once, one approves and
        // the other is told it is approved already.
        let approved = sqlx::query(
            "UPDATE push_holds SET status = 'approved', approved_at = $1, approved_by = $2 \
             WHERE id = $3 AND status = 'held'",
        )
        .bind(now)
        .bind(by)
        .bind(id)
        .execute(self.pool())
        .await?
        .rows_affected()
            == 1;
        let hold = self
            .push_hold(id)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("no push hold {id}")))?;
        if !approved {
            return Err(StoreError::Conflict(format!(
                "push hold {id} is {}, not held",
                hold.status
            )));
        }
        Ok(hold)
    }
}
