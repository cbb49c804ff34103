//! Deciding an access request: an approver of its group (never the person who asked, nor
//! the worker it is for) approves it, which lands as a commit to the rules repository, or
//! denies it, which writes nothing; the person who asked may withdraw it while it waits.
//! Every decision is in the audit (`rosterd decisions`) and told to the webhooks.

use super::*;
use crate::access::request as asking;
use crate::store::{
    AccessDecision, AccessRequest, DecisionRecord, RequestEvent, RequestLanding, RequestState,
};

#[derive(serde::Deserialize, Default)]
pub struct DecideForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    comment: String,
}

/// Whether the person asked for `r`, or is the worker it is for.
pub(super) fn is_own(person: &Person, r: &AccessRequest) -> bool {
    r.requester_subject == person.session.subject
        || person.worker.as_deref() == Some(r.worker.as_str())
        || matches!((&person.session.email, &r.requester_email), (Some(a), Some(b)) if a.eq_ignore_ascii_case(b))
}

/// Whether the person decides for group `name` in `rules`.
pub(super) fn decides(person: &Person, rules: &crate::rules::RuleSet, name: &str) -> bool {
    rules
        .lookup(name)
        .is_some_and(|id| person.decides_for(rules.group(id)))
}

/// Where an approved request's change has reached: the steps the daemon recorded (merged in
/// its history, in force as its state now), and what each target confirmed.
pub(super) struct Reach {
    merged: bool,
    in_force: bool,
    /// Each target the group is pushed to, and whether it confirmed the worker as a member.
    targets: Vec<(String, bool)>,
}

pub(super) async fn reach(
    shared: &crate::daemon::Shared,
    rules: &crate::rules::RuleSet,
    r: &AccessRequest,
    history: &[RequestEvent],
) -> Result<Reach, PageError> {
    let reached = |state: RequestState| history.iter().any(|e| e.state == state);
    let mut targets = Vec::new();
    if let Some(id) = rules.lookup(&r.group) {
        let worker = shared.store.worker_id(&r.worker).await?;
        for push in &rules.group(id).push {
            let confirmed = shared.store.target_set(&push.target, &r.group).await?;
            let there = worker.is_some_and(|w| confirmed.workers.contains(w));
            targets.push((push.target.clone(), there));
        }
    }
    Ok(Reach {
        merged: reached(RequestState::Merged),
        // In force now, as recorded: not after it expired or a review ended it.
        in_force: r.state == RequestState::InForce,
        targets,
    })
}

/// The console's address, which an approved request's ticket links to.
pub(super) fn origin(shared: &crate::daemon::Shared) -> Option<&str> {
    shared.console.as_ref().map(|c| c.origin())
}

pub(super) fn reach_table(r: &AccessRequest, reach: &Reach) -> Markup {
    let landed = r.commit.is_some();
    html! {
        @if landed {
            h2 { "Where the change is" }
            table {
                tr { th { "Step" } th { "Where" } }
                tr { td { "Committed" } td {
                    code { (r.commit.as_deref().map_or("", |c| &c[..c.len().min(12)])) }
                    " on " code { (r.branch.as_deref().unwrap_or("")) }
                    @if r.direct_commit { " (the rules' own branch)" } @else { " (a branch for review: merge it to put it in force)" }
                    @if let Some(link) = &r.link { " " a href=(link) { "the change" } }
                } }
                tr { td { "Merged" } td { (yes(reach.merged)) } }
                tr { td { "In force" } td { (yes(reach.in_force)) " " span.muted { "the daemon's rules granted it" } } }
                @for (target, there) in &reach.targets {
                    tr { td { "In " (target) } td { (yes(*there)) " " span.muted { "the target confirmed the member" } } }
                }
            }
        }
    }
}

fn yes(b: bool) -> Markup {
    html! { @if b { span.ok { "yes" } } @else { span.muted { "not yet" } } }
}

/// A decision's form, read and checked: the request, the comment, and the rules in force;
/// or the answer that refuses it.
async fn checked(
    shared: &crate::daemon::Shared,
    person: &Person,
    raw: &str,
    form: Result<Form<DecideForm>, axum::extract::rejection::FormRejection>,
    what: &str,
) -> Result<Result<(AccessRequest, String), Response>, PageError> {
    let form = form.map(|f| f.0).unwrap_or_default();
    if !csrf_ok(person, &form.csrf) {
        shared.metrics.console_refused("csrf");
        return Ok(Err(crate::daemon::ui::html::forbidden_csrf()));
    }
    let found = match raw.parse::<i64>() {
        Ok(id) => shared.store.access_request(id).await?,
        Err(_) => None,
    };
    let Some(r) = found else {
        return Ok(Err(crate::daemon::ui::html::error_page(
            StatusCode::NOT_FOUND,
            "No such request",
            "there is no such access request",
        )));
    };
    let rules = shared.rules();
    if what != "withdraw" {
        if !decides(person, &rules, &r.group) {
            shared.metrics.console_refused("role");
            return Ok(Err(crate::daemon::ui::html::error_page(
                StatusCode::FORBIDDEN,
                "Refused",
                &format!(
                    "only the approvers of `{}` may {what} its requests",
                    r.group
                ),
            )));
        }
        if is_own(person, &r) {
            tracing::warn!(subject = %person.session.subject, request = r.id, "console: a request of one's own was not decided");
            shared.metrics.console_refused("own_request");
            return Ok(Err(crate::daemon::ui::html::error_page(
                StatusCode::FORBIDDEN,
                "Refused",
                &format!("you cannot {what} a request of your own (asked by you, or for you): another approver of `{}` decides it", r.group),
            )));
        }
    } else if r.requester_subject != person.session.subject {
        return Ok(Err(crate::daemon::ui::html::error_page(
            StatusCode::FORBIDDEN,
            "Refused",
            "only the person who asked may withdraw a request",
        )));
    }
    Ok(Ok((r, form.comment.trim().to_string())))
}

fn conflict(why: &str) -> Response {
    crate::daemon::ui::html::error_page(StatusCode::CONFLICT, "Already decided", why)
}

/// The audit's record of a denial of `r`: nothing landed.
fn denial(
    shared: &crate::daemon::Shared,
    r: &AccessRequest,
    by: &str,
    comment: &str,
) -> DecisionRecord {
    DecisionRecord {
        id: 0,
        decided_at: crate::clock::stamp(crate::clock::now_utc()),
        decision: AccessDecision::Deny,
        group: r.group.clone(),
        list: r.list.clone(),
        worker: r.worker.clone(),
        decided_by: by.to_string(),
        comment: comment.to_string(),
        until: None,
        request: Some(asking::ticket(origin(shared), r.id)),
        branch: None,
        commit: None,
        direct_commit: false,
        link: None,
    }
}

async fn audit(shared: &crate::daemon::Shared, d: DecisionRecord) -> Result<(), PageError> {
    let id = shared.store.record_decision(&d).await?;
    crate::notify::tell(
        &shared.config(),
        vec![crate::notify::Event::Decision(DecisionRecord { id, ..d })],
    );
    Ok(())
}

/// `POST /requests/{id}/approve`: claims the request, lands its entry in the rules
/// repository (checked and tested first), and records the approval; a change that cannot
/// land leaves the request pending and says why.
pub async fn approve_request(
    State(shared): State<Ui>,
    Extension(person): Extension<Person>,
    Path(raw): Path<String>,
    form: Result<Form<DecideForm>, axum::extract::rejection::FormRejection>,
) -> PageResult {
    let (r, comment) = match checked(&shared, &person, &raw, form, "approve").await? {
        Ok(ok) => ok,
        Err(refused) => return Ok(refused),
    };
    let by = person.approver_id();
    let now = crate::clock::now_utc();
    if let Err(e) = shared.store.claim_request(r.id, &by, now).await {
        return match e {
            StoreError::Conflict(why) => Ok(conflict(&why)),
            e => Err(e.into()),
        };
    }
    let ticket = asking::ticket(origin(&shared), r.id);
    let decision = asking::grant(&r, &by, &ticket);
    let config = shared.config();
    let today = crate::clock::today_utc();
    let landing = decision.clone();
    let landed =
        tokio::task::spawn_blocking(move || crate::access::land(&config, &landing, today)).await?;
    let landed = match landed {
        Ok(l) => l,
        Err(e) => {
            shared.store.release_request(r.id).await?;
            tracing::warn!(request = r.id, "console: an approval did not land: {e}");
            return Ok(crate::daemon::ui::html::error_page(
                StatusCode::UNPROCESSABLE_ENTITY,
                "Not approved",
                &format!(
                    "the request is still pending, because its change could not be committed: {e}"
                ),
            ));
        }
    };
    let landing = RequestLanding {
        branch: landed.branch.clone(),
        commit: landed.commit.clone(),
        direct_commit: landed.direct,
        link: landed.link.clone(),
    };
    let at = crate::clock::stamp(crate::clock::now_utc());
    let note = match landed.direct {
        true => format!("committed {} to {}", landed.commit, landed.branch),
        false => format!(
            "committed {} on branch {} for review",
            landed.commit, landed.branch
        ),
    };
    let event = RequestEvent {
        at: at.clone(),
        state: RequestState::Approved,
        by: by.clone(),
        note: if comment.is_empty() {
            note
        } else {
            format!("{comment} ({note})")
        },
    };
    match shared
        .store
        .move_request(r.id, &[RequestState::Pending], &event, Some(&landing))
        .await
    {
        Ok(()) => {}
        Err(StoreError::Conflict(why)) => return Ok(conflict(&why)),
        Err(e) => return Err(e.into()),
    }
    if landed.direct {
        let merged = RequestEvent {
            at,
            state: RequestState::Merged,
            by: "rosterd".into(),
            note: format!("on {}", landed.branch),
        };
        shared
            .store
            .move_request(r.id, &[RequestState::Approved], &merged, None)
            .await?;
    }
    tracing::info!(request = r.id, by = %by, commit = %landed.commit, branch = %landed.branch, "console: access request approved");
    audit(
        &shared,
        DecisionRecord {
            comment,
            ..decision.record(&landed)
        },
    )
    .await?;
    Ok(redirect(&format!("/requests/{}", r.id)))
}

/// `POST /requests/{id}/deny`: refuses the request; nothing is written to the rules.
pub async fn deny_request(
    State(shared): State<Ui>,
    Extension(person): Extension<Person>,
    Path(raw): Path<String>,
    form: Result<Form<DecideForm>, axum::extract::rejection::FormRejection>,
) -> PageResult {
    let (r, comment) = match checked(&shared, &person, &raw, form, "deny").await? {
        Ok(ok) => ok,
        Err(refused) => return Ok(refused),
    };
    let by = person.approver_id();
    if let Some(refused) = end(&shared, &r, RequestState::Denied, &by, &comment).await? {
        return Ok(refused);
    }
    tracing::info!(request = r.id, by = %by, "console: access request denied");
    audit(&shared, denial(&shared, &r, &by, &comment)).await?;
    Ok(redirect(&format!("/requests/{}", r.id)))
}

/// `POST /requests/{id}/withdraw`: the person who asked takes it back while it waits.
pub async fn withdraw_request(
    State(shared): State<Ui>,
    Extension(person): Extension<Person>,
    Path(raw): Path<String>,
    form: Result<Form<DecideForm>, axum::extract::rejection::FormRejection>,
) -> PageResult {
    let (r, comment) = match checked(&shared, &person, &raw, form, "withdraw").await? {
        Ok(ok) => ok,
        Err(refused) => return Ok(refused),
    };
    let by = person.approver_id();
    Ok(end(&shared, &r, RequestState::Withdrawn, &by, &comment)
        .await?
        .unwrap_or_else(|| redirect(&format!("/requests/{}", r.id))))
}

/// Ends pending request `r` as `to` (denied, withdrawn), by `by` with `note`; the answer
/// that refuses it when someone decided it first.
async fn end(
    shared: &crate::daemon::Shared,
    r: &AccessRequest,
    to: RequestState,
    by: &str,
    note: &str,
) -> Result<Option<Response>, PageError> {
    let event = RequestEvent {
        at: crate::clock::stamp(crate::clock::now_utc()),
        state: to,
        by: by.to_string(),
        note: note.to_string(),
    };
    match shared
        .store
        .move_request(r.id, &[RequestState::Pending], &event, None)
        .await
    {
        Ok(()) => Ok(None),
        Err(StoreError::Conflict(why)) => Ok(Some(conflict(&why))),
        Err(e) => Err(e.into()),
    }
}
