//! The audit of access decisions: every grant, denial, keep and removal, with who decided,
//! why, and the commit it landed as. Appended only; read by group and period for auditors.

use serde::Serialize;
use sqlx::Row;

use super::text::AccessDecision;
use super::{Store, StoreError};

/// One decision, as recorded.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DecisionRecord {
    pub id: i64,
    /// RFC 3339, UTC.
    pub decided_at: String,
    pub decision: AccessDecision,
    pub group: String,
    /// `include` or `members`.
    pub list: String,
    /// The entry's worker as the decision named them.
    pub worker: String,
    pub decided_by: String,
    pub comment: String,
    /// The entry's last day after the decision.
    pub until: Option<String>,
    /// The request a grant or denial answered.
    pub request: Option<String>,
    pub branch: Option<String>,
    pub commit: Option<String>,
    /// Committed to the branch the daemon reads, not to a branch for review.
    pub direct_commit: bool,
    pub link: Option<String>,
}

const COLUMNS: &str = "id, decided_at, decision, group_name, list_name, worker, decided_by, \
     comment, until_date, request, branch, commit_sha, direct_commit, link";

fn record(row: &sqlx::any::AnyRow) -> Result<DecisionRecord, sqlx::Error> {
    Ok(DecisionRecord {
        id: row.try_get("id")?,
        decided_at: row.try_get("decided_at")?,
        decision: AccessDecision::parse(&row.try_get::<String, _>("decision")?)?,
        group: row.try_get("group_name")?,
        list: row.try_get("list_name")?,
        worker: row.try_get("worker")?,
        decided_by: row.try_get("decided_by")?,
        comment: row.try_get("comment")?,
        until: row.try_get("until_date")?,
        request: row.try_get("request")?,
        branch: row.try_get("branch")?,
        commit: row.try_get("commit_sha")?,
        direct_commit: row.try_get::<i64, _>("direct_commit")? != 0,
        link: row.try_get("link")?,
    })
}

impl Store {
    /// Records a decision (its `id` is ignored); the id it was given.
    pub async fn record_decision(&self, d: &DecisionRecord) -> Result<i64, StoreError> {
        let _writing = self.writing().await;
        let row = sqlx::query(
            "INSERT INTO access_decisions (decided_at, decision, group_name, list_name, worker, \
             decided_by, comment, until_date, request, branch, commit_sha, direct_commit, link) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) RETURNING id",
        )
        .bind(d.decided_at.as_str())
        .bind(d.decision.as_str())
        .bind(d.group.as_str())
        .bind(d.list.as_str())
        .bind(d.worker.as_str())
        .bind(d.decided_by.as_str())
        .bind(d.comment.as_str())
        .bind(d.until.as_deref())
        .bind(d.request.as_deref())
        .bind(d.branch.as_deref())
        .bind(d.commit.as_deref())
        .bind(i64::from(d.direct_commit))
        .bind(d.link.as_deref())
        .fetch_one(self.pool())
        .await?;
        Ok(row.try_get::<i64, _>(0)?)
    }

    /// The decisions about `group` (every group when `None`) made from `from` to `to`
    /// (`YYYY-MM-DD`, UTC, both days included; open ends when `None`), oldest first.
    pub async fn decisions(
        &self,
        group: Option<&str>,
        from: Option<&str>,
        to: Option<&str>,
    ) -> Result<Vec<DecisionRecord>, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM access_decisions WHERE ($1 = '' OR group_name = $1) \
             AND ($2 = '' OR substr(decided_at, 1, 10) >= $2) \
             AND ($3 = '' OR substr(decided_at, 1, 10) <= $3) ORDER BY decided_at, id"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(group.unwrap_or(""))
            .bind(from.unwrap_or(""))
            .bind(to.unwrap_or(""))
            .fetch_all(self.pool())
            .await?;
        Ok(rows.iter().map(record).collect::<Result<_, _>>()?)
    }
}
