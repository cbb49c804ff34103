//! Access requests made in the console, and every change of their state. A request is
//! pending until an approver denies it or approves it (the approval lands as a commit to the
//! rules repository first); from then on the daemon moves it along as the change does:
//! merged into the rules' branch, in force, expired. Each change appends an event, so a
//! request's page (and an auditor) reads its whole history.

use serde::Serialize;
use sqlx::{AssertSqlSafe, Row};

use super::text::RequestState;
use super::{Store, StoreError};

/// One request, as stored.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AccessRequest {
    pub id: i64,
    /// RFC 3339, UTC.
    pub created_at: String,
    pub updated_at: String,
    pub state: RequestState,
    pub group: String,
    /// `include` (a hybrid group) or `members` (a manual one).
    pub list: String,
    /// The worker who would join, by key.
    pub worker: String,
    pub worker_email: Option<String>,
    pub worker_name: Option<String>,
    /// `oidc:SUBJECT (EMAIL)` of the person who asked.
    pub requested_by: String,
    #[serde(skip)]
    pub requester_subject: String,
    pub requester_email: Option<String>,
    pub justification: String,
    /// The last day of the access asked for (`YYYY-MM-DD`).
    pub until: String,
    /// Who is writing its approval to the rules repository now, and since when.
    pub deciding_by: Option<String>,
    #[serde(skip)]
    pub deciding_since: Option<String>,
    pub decided_by: Option<String>,
    pub decided_at: Option<String>,
    pub comment: Option<String>,
    pub branch: Option<String>,
    pub commit: Option<String>,
    pub direct_commit: bool,
    pub link: Option<String>,
}

/// What a person asks for.
#[derive(Debug, Clone)]
pub struct NewRequest {
    pub group: String,
    pub list: String,
    pub worker: String,
    pub worker_email: Option<String>,
    pub worker_name: Option<String>,
    pub requested_by: String,
    pub requester_subject: String,
    pub requester_email: Option<String>,
    pub justification: String,
    pub until: String,
}

/// Where an approval landed in the rules repository.
#[derive(Debug, Clone)]
pub struct RequestLanding {
    pub branch: String,
    pub commit: String,
    pub direct_commit: bool,
    pub link: Option<String>,
}

/// One change of a request's state.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RequestEvent {
    pub at: String,
    pub state: RequestState,
    pub by: String,
    pub note: String,
}

/// How long an approval may take to land before another approver may try again: a daemon
/// that stopped while writing one leaves it claimed no longer than this.
const DECIDING_SECONDS: i64 = 300;

const COLUMNS: &str = "id, created_at, updated_at, state, group_name, list_name, worker, \
     worker_email, worker_name, requested_by, requester_subject, requester_email, justification, \
     until_date, deciding_by, deciding_since, decided_by, decided_at, comment, branch, commit_sha, \
     direct_commit, link";

fn request(row: &sqlx::any::AnyRow) -> Result<AccessRequest, sqlx::Error> {
    Ok(AccessRequest {
        id: row.try_get("id")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
        state: RequestState::parse(&row.try_get::<String, _>("state")?)?,
        group: row.try_get("group_name")?,
        list: row.try_get("list_name")?,
        worker: row.try_get("worker")?,
        worker_email: row.try_get("worker_email")?,
        worker_name: row.try_get("worker_name")?,
        requested_by: row.try_get("requested_by")?,
        requester_subject: row.try_get("requester_subject")?,
        requester_email: row.try_get("requester_email")?,
        justification: row.try_get("justification")?,
        until: row.try_get("until_date")?,
        deciding_by: row.try_get("deciding_by")?,
        deciding_since: row.try_get("deciding_since")?,
        decided_by: row.try_get("decided_by")?,
        decided_at: row.try_get("decided_at")?,
        comment: row.try_get("comment")?,
        branch: row.try_get("branch")?,
        commit: row.try_get("commit_sha")?,
        direct_commit: row.try_get::<i64, _>("direct_commit")? != 0,
        link: row.try_get("link")?,
    })
}

/// Which requests to list.
#[derive(Debug, Clone, Default)]
pub struct RequestFilter<'a> {
    pub states: &'a [RequestState],
    /// Only those this person asked for (by OpenID subject).
    pub requester_subject: Option<&'a str>,
    /// Only those for this worker (by key).
    pub worker: Option<&'a str>,
    pub group: Option<&'a str>,
}

/// `states` as the comma-separated list the queries match a row's state against.
fn states(states: &[RequestState]) -> String {
    states
        .iter()
        .map(|s| s.as_str())
        .collect::<Vec<_>>()
        .join(",")
}

async fn append_event(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    id: i64,
    event: &RequestEvent,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO access_request_events (request_id, at, state, by_whom, note) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(id)
    .bind(event.at.as_str())
    .bind(event.state.as_str())
    .bind(event.by.as_str())
    .bind(event.note.as_str())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

impl Store {
    /// Stores a new, pending request; refused (a conflict) while the same worker has a
    /// request for the same group that is pending or grants.
    pub async fn create_request(&self, new: &NewRequest, now: &str) -> Result<i64, StoreError> {
        let (_writing, mut tx) = self.begin_write().await?;
        let open: Option<i64> = sqlx::query_scalar(
            "SELECT id FROM access_requests WHERE group_name = $1 AND worker = $2 \
             AND (',' || $3 || ',') LIKE ('%,' || state || ',%') ORDER BY id LIMIT 1",
        )
        .bind(new.group.as_str())
        .bind(new.worker.as_str())
        .bind(states(RequestState::LIVE))
        .fetch_optional(&mut *tx)
        .await?;
        if let Some(id) = open {
            return Err(StoreError::Conflict(format!(
                "request {id} already asks for {} to be in {}",
                new.worker, new.group
            )));
        }
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO access_requests (created_at, updated_at, state, group_name, list_name, \
             worker, worker_email, worker_name, requested_by, requester_subject, requester_email, \
             justification, until_date) \
             VALUES ($1, $1, 'pending', $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING id",
        )
        .bind(now)
        .bind(new.group.as_str())
        .bind(new.list.as_str())
        .bind(new.worker.as_str())
        .bind(new.worker_email.as_deref())
        .bind(new.worker_name.as_deref())
        .bind(new.requested_by.as_str())
        .bind(new.requester_subject.as_str())
        .bind(new.requester_email.as_deref())
        .bind(new.justification.as_str())
        .bind(new.until.as_str())
        .fetch_one(&mut *tx)
        .await?;
        let event = RequestEvent {
            at: now.to_string(),
            state: RequestState::Pending,
            by: new.requested_by.clone(),
            note: new.justification.clone(),
        };
        append_event(&mut tx, id, &event).await?;
        tx.commit().await?;
        Ok(id)
    }

    pub async fn access_request(&self, id: i64) -> Result<Option<AccessRequest>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM access_requests WHERE id = $1");
        let row = sqlx::query(AssertSqlSafe(sql))
            .bind(id)
            .fetch_optional(self.pool())
            .await?;
        Ok(row.as_ref().map(request).transpose()?)
    }

    /// The requests `filter` picks, newest first, at most `limit`.
    pub async fn access_requests(
        &self,
        filter: &RequestFilter<'_>,
        limit: i64,
    ) -> Result<Vec<AccessRequest>, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM access_requests WHERE ($1 = '' OR (',' || $1 || ',') LIKE ('%,' || state || ',%')) \
             AND ($2 = '' OR requester_subject = $2) AND ($3 = '' OR worker = $3) \
             AND ($4 = '' OR group_name = $4) ORDER BY id DESC LIMIT $5"
        );
        let rows = sqlx::query(AssertSqlSafe(sql))
            .bind(states(filter.states))
            .bind(filter.requester_subject.unwrap_or(""))
            .bind(filter.worker.unwrap_or(""))
            .bind(filter.group.unwrap_or(""))
            .bind(limit)
            .fetch_all(self.pool())
            .await?;
        Ok(rows.iter().map(request).collect::<Result<_, _>>()?)
    }

    /// A request's changes of state, oldest first.
    pub async fn request_events(&self, id: i64) -> Result<Vec<RequestEvent>, StoreError> {
        let rows = sqlx::query(
            "SELECT at, state, by_whom, note FROM access_request_events WHERE request_id = $1 \
             ORDER BY id",
        )
        .bind(id)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(RequestEvent {
                    at: r.try_get("at")?,
                    state: RequestState::parse(&r.try_get::<String, _>("state")?)?,
                    by: r.try_get("by_whom")?,
                    note: r.try_get("note")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(Into::into)
    }

    /// Claims a pending request for `by` to write its approval: of two approvers at once,
    /// one claims it and the other is told someone is deciding it. A claim older than five
    /// minutes (its daemon stopped) may be taken over.
    pub async fn claim_request(
        &self,
        id: i64,
        by: &str,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<AccessRequest, StoreError> {
        let stale = crate::clock::stamp(now - chrono::Duration::seconds(DECIDING_SECONDS));
        let claimed = {
            let _writing = self.writing().await;
            sqlx::query(
                "UPDATE access_requests SET deciding_by = $1, deciding_since = $2 WHERE id = $3 \
                 AND state = 'pending' AND (deciding_since IS NULL OR deciding_since < $4)",
            )
            .bind(by)
            .bind(crate::clock::stamp(now))
            .bind(id)
            .bind(stale)
            .execute(self.pool())
            .await?
            .rows_affected()
                == 1
        };
        let found = self
            .access_request(id)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("no access request {id}")))?;
        if !claimed {
            return Err(StoreError::Conflict(match &found.deciding_by {
                Some(who) if found.state.is_open() => {
                    format!("{who} is deciding request {id} now")
                }
                _ => format!("request {id} is {}, not pending", found.state.label()),
            }));
        }
        Ok(found)
    }

    /// Lets go of a claim whose approval did not land: the request is pending again.
    pub async fn release_request(&self, id: i64) -> Result<(), StoreError> {
        let _writing = self.writing().await;
        sqlx::query(
            "UPDATE access_requests SET deciding_by = NULL, deciding_since = NULL \
             WHERE id = $1 AND state = 'pending'",
        )
        .bind(id)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Moves a request from one of `from` to `event.state`, recording the change; a decision
    /// (approved, denied) records who made it and the comment, an approval where it landed.
    /// A conflict when the request is in none of `from` (someone else moved it first).
    pub async fn move_request(
        &self,
        id: i64,
        from: &[RequestState],
        event: &RequestEvent,
        landing: Option<&RequestLanding>,
    ) -> Result<(), StoreError> {
        let (_writing, mut tx) = self.begin_write().await?;
        let decision = matches!(event.state, RequestState::Approved | RequestState::Denied);
        let moved = sqlx::query(
            "UPDATE access_requests SET state = $1, updated_at = $2, deciding_by = NULL, \
             deciding_since = NULL, \
             decided_by = CASE WHEN $3 = 1 THEN $4 ELSE decided_by END, \
             decided_at = CASE WHEN $3 = 1 THEN $2 ELSE decided_at END, \
             comment = CASE WHEN $3 = 1 THEN $5 ELSE comment END, \
             branch = COALESCE($6, branch), commit_sha = COALESCE($7, commit_sha), \
             direct_commit = CASE WHEN $8 = 1 THEN 1 ELSE direct_commit END, \
             link = COALESCE($9, link) \
             WHERE id = $10 AND (',' || $11 || ',') LIKE ('%,' || state || ',%')",
        )
        .bind(event.state.as_str())
        .bind(event.at.as_str())
        .bind(i64::from(decision))
        .bind(event.by.as_str())
        .bind(event.note.as_str())
        .bind(landing.map(|l| l.branch.as_str()))
        .bind(landing.map(|l| l.commit.as_str()))
        .bind(i64::from(landing.is_some_and(|l| l.direct_commit)))
        .bind(landing.and_then(|l| l.link.as_deref()))
        .bind(id)
        .bind(states(from))
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        if !moved {
            drop(tx);
            let now = self.access_request(id).await?;
            return Err(match now {
                None => StoreError::NotFound(format!("no access request {id}")),
                Some(r) => StoreError::Conflict(format!(
                    "request {id} is {}, so it cannot become {}",
                    r.state.label(),
                    event.state.label()
                )),
            });
        }
        append_event(&mut tx, id, event).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Claims the notice `kind` for `day` (`YYYY-MM-DD`): true for the first to claim it, so
    /// a daily notice is sent once whatever the daemons and restarts.
    pub async fn claim_daily_notice(
        &self,
        kind: &str,
        day: &str,
        now: &str,
    ) -> Result<bool, StoreError> {
        let _writing = self.writing().await;
        let claimed = sqlx::query(
            "INSERT INTO daily_notices (kind, day, sent_at) VALUES ($1, $2, $3) \
             ON CONFLICT (kind, day) DO NOTHING",
        )
        .bind(kind)
        .bind(day)
        .bind(now)
        .execute(self.pool())
        .await?
        .rows_affected();
        Ok(claimed == 1)
    }
}
