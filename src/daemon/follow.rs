//! Follows each granted access request to where its change stands, after every run: an
//! approved request is `merged` once the rules repository's main branch carries its ticket,
//! `in force` once the daemon's rules grant it, `expired` after its last day (as is a
//! pending one nobody decided in time), and `ended` when its entry leaves the rules in force
//! before then (a review removed it). Each move is recorded with the request.

use super::Shared;
use crate::access::request as asking;
use crate::store::{AccessRequest, RequestEvent, RequestFilter, RequestState};

/// Requests followed per run, at most.
const FOLLOWED: i64 = 10_000;

pub(super) async fn follow_requests(shared: &Shared) {
    if let Err(e) = follow(shared).await {
        tracing::warn!("the access requests could not be followed: {e}");
    }
}

async fn follow(shared: &Shared) -> Result<(), super::DaemonError> {
    let open = shared
        .store
        .access_requests(
            &RequestFilter {
                states: RequestState::LIVE,
                ..RequestFilter::default()
            },
            FOLLOWED,
        )
        .await?;
    if open.is_empty() {
        return Ok(());
    }
    let rules = shared.rules();
    let today = crate::clock::today_utc();
    let origin = shared.console.as_ref().map(|c| c.origin().to_string());
    let mut unmerged: Vec<(i64, String)> = Vec::new();
    for r in &open {
        let ticket = asking::ticket(origin.as_deref(), r.id);
        let over = chrono::NaiveDate::parse_from_str(&r.until, "%Y-%m-%d").is_ok_and(|u| u < today);
        if over {
            let note = format!("its last day, {}, has passed", r.until);
            move_to(shared, r, RequestState::Expired, &note).await?;
        } else if r.state == RequestState::InForce {
            if !asking::in_rules(&rules, &r.group, &ticket) {
                let note = format!(
                    "its entry is no longer in the daemon's rules{}: a review removed it, or someone did",
                    at_commit(shared)
                );
                move_to(shared, r, RequestState::Ended, &note).await?;
            }
        } else if matches!(r.state, RequestState::Approved | RequestState::Merged)
            && asking::in_rules(&rules, &r.group, &ticket)
        {
            if r.state == RequestState::Approved {
                move_to(
                    shared,
                    r,
                    RequestState::Merged,
                    "found in the rules in force",
                )
                .await?;
            }
            let note = format!("the daemon's rules{} grant it", at_commit(shared));
            move_to(shared, r, RequestState::InForce, &note).await?;
        } else if r.state == RequestState::Approved && !r.direct_commit {
            unmerged.push((r.id, ticket));
        }
    }
    if unmerged.is_empty() {
        return Ok(());
    }
    let config = shared.config();
    let merged = tokio::task::spawn_blocking(move || merged(&config, &unmerged)).await??;
    for id in merged {
        if let Some(r) = open.iter().find(|r| r.id == id) {
            let note = "its ticket is on the rules repository's main branch";
            move_to(shared, r, RequestState::Merged, note).await?;
        }
    }
    Ok(())
}

/// ` at COMMIT`, the rules in force's commit, when they have one.
fn at_commit(shared: &Shared) -> String {
    shared
        .revision()
        .commit
        .as_ref()
        .map(|c| format!(" at {c}"))
        .unwrap_or_default()
}

/// Of `tickets` (request id, ticket), those the rules repository's main branch carries.
fn merged(
    config: &crate::config::Config,
    tickets: &[(i64, String)],
) -> Result<Vec<i64>, super::DaemonError> {
    let Some(requests) = &config.requests else {
        return Ok(Vec::new());
    };
    let _clone = crate::locks::lock(&crate::access::git::CLONE);
    let repo = crate::access::git::Repo::new(requests)
        .map_err(|e| super::DaemonError::Config(e.to_string()))?;
    let words: Vec<String> = tickets.iter().map(|(_, t)| t.clone()).collect();
    let found = repo
        .branch_has(&requests.repository.path, &words)
        .map_err(|e| super::DaemonError::Config(e.to_string()))?;
    Ok(tickets
        .iter()
        .filter(|(_, t)| found.contains(t))
        .map(|(id, _)| *id)
        .collect())
}

async fn move_to(
    shared: &Shared,
    r: &AccessRequest,
    to: RequestState,
    note: &str,
) -> Result<(), super::DaemonError> {
    let event = RequestEvent {
        at: crate::clock::stamp(crate::clock::now_utc()),
        state: to,
        by: "rosterd".into(),
        note: note.to_string(),
    };
    match shared
        .store
        .move_request(r.id, RequestState::LIVE, &event, None)
        .await
    {
        Ok(()) => {
            tracing::info!(
                request = r.id,
                state = to.as_str(),
                "access request: {note}"
            );
            Ok(())
        }
        // Someone decided or moved it meanwhile: the next run looks again.
        Err(crate::store::StoreError::Conflict(_)) => Ok(()),
        Err(e) => Err(e.into()),
    }
}
