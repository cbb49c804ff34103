//! Access requests: anyone signed in asks for a group that takes requests (for themselves,
//! or for another worker when they approve that group); the group's approvers approve or
//! deny; an approval is written to the rules repository as a commit (`access::land`), and
//! the request's page follows it: merged, in force, in each target.

use super::decide::{decides, is_own};
use super::*;
use crate::access::request as asking;
use crate::store::{AccessRequest, NewRequest, RequestFilter, RequestState};

/// Requests listed per table.
const LISTED: i64 = 200;

#[derive(serde::Deserialize, Default)]
pub struct AskForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    group: String,
    /// Someone else's key or email (approvers only); empty for oneself.
    #[serde(default)]
    worker: String,
    #[serde(default)]
    days: String,
    #[serde(default)]
    justification: String,
}

#[derive(serde::Deserialize, Default)]
pub struct NewQuery {
    group: Option<String>,
}

/// `/requests`: the requests the person made or is the worker of, those waiting for them
/// to decide, and (for the console's viewers) the latest of everyone's.
pub async fn requests(
    State(shared): State<Ui>,
    Extension(person): Extension<Person>,
) -> PageResult {
    let rules = shared.rules();
    let pending = shared
        .store
        .access_requests(
            &RequestFilter {
                states: &[RequestState::Pending],
                ..RequestFilter::default()
            },
            LISTED,
        )
        .await?;
    let to_decide: Vec<&AccessRequest> = pending
        .iter()
        .filter(|r| !is_own(&person, r) && decides(&person, &rules, &r.group))
        .collect();
    let mut mine = shared
        .store
        .access_requests(
            &RequestFilter {
                requester_subject: Some(&person.session.subject),
                ..RequestFilter::default()
            },
            LISTED,
        )
        .await?;
    if let Some(key) = &person.worker {
        let about_me = shared
            .store
            .access_requests(
                &RequestFilter {
                    worker: Some(key),
                    ..RequestFilter::default()
                },
                LISTED,
            )
            .await?;
        mine.extend(
            about_me
                .into_iter()
                .filter(|r| r.requester_subject != person.session.subject),
        );
        mine.sort_by_key(|r| std::cmp::Reverse(r.id));
    }
    let everyone = match person.viewer {
        true => {
            shared
                .store
                .access_requests(&RequestFilter::default(), 50)
                .await?
        }
        false => Vec::new(),
    };
    let body = html! {
        p { a href="/requests/new" { "Ask for access to a group" } }
        h2 { "Waiting for your decision" }
        (table(&to_decide))
        h2 { "Yours" }
        (table(&mine.iter().collect::<Vec<_>>()))
        @if person.viewer {
            h2 { "Everyone's, latest first" }
            (table(&everyone.iter().collect::<Vec<_>>()))
        }
    };
    Ok(page("Access requests", &person, body).into_response())
}

fn table(list: &[&AccessRequest]) -> Markup {
    html! {
        @if list.is_empty() {
            p.muted { "None." }
        } @else {
            table {
                tr { th.n { "Request" } th { "Group" } th { "Worker" } th { "Until" } th { "Asked by" } th { "State" } th { "Asked" } }
                @for r in list {
                    tr {
                        td.n { a href=(format!("/requests/{}", r.id)) { (r.id) } }
                        td { (r.group) }
                        td { (r.worker_name.as_deref().unwrap_or(&r.worker)) " " span.muted { (r.worker) } }
                        td { (r.until) }
                        td { (r.requested_by) }
                        td { span.badge.(state_class(r.state)) { (r.state.label()) } }
                        td { (when(&r.created_at)) }
                    }
                }
            }
        }
    }
}

pub(super) fn state_class(state: RequestState) -> &'static str {
    match state {
        RequestState::Pending | RequestState::Approved | RequestState::Merged => "warn",
        RequestState::InForce => "ok",
        _ => "muted",
    }
}

/// `/requests/new`: the form.
pub async fn new_request(
    State(shared): State<Ui>,
    Extension(person): Extension<Person>,
    Query(q): Query<NewQuery>,
) -> PageResult {
    let rules = shared.rules();
    let groups = asking::requestable(&rules);
    let approves_any = groups.iter().any(|g| person.decides_for(g));
    let chosen = q.group.unwrap_or_default();
    let body = html! {
        @if groups.is_empty() {
            p.muted { "No group in the rules in force takes requests (a group does with a `requests:` block)." }
        } @else {
            @if person.worker.is_none() && !approves_any {
                p.warn { "Your email is no worker's in the HR export, so you cannot ask for yourself." }
            }
            form method="post" action="/requests" {
                input type="hidden" name="csrf" value=(person.session.csrf_token);
                p {
                    label { "Group " select name="group" required {
                        @for g in &groups {
                            @let r = g.requests.as_ref();
                            option value=(g.name) selected[g.name == chosen] {
                                (g.name) " (at most " (r.map_or(0, |r| r.max_days)) " days)"
                            }
                        }
                    } }
                }
                @if approves_any {
                    p { label { "For (approvers: another worker's key or email; empty for yourself) "
                        input type="text" name="worker" size="32"; } }
                }
                p { label { "Days " input type="number" name="days" min="1" value="30" required; } }
                p { label { "Why " input type="text" name="justification" size="80"; } }
                p.muted { "An approver of the group decides; an approval is committed to the rules repository, and the access starts once that change is in force." }
                button type="submit" { "Ask" }
            }
            h2 { "Groups that take requests" }
            table {
                tr { th { "Group" } th { "Kind" } th { "Approvers" } th.n { "At most, days" } th { "Justification" } }
                @for g in &groups {
                    @let r = g.requests.as_ref();
                    tr {
                        td { (g.name) }
                        td { (g.kind) }
                        td { (g.approvers().iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")) }
                        td.n { (r.map_or(0, |r| r.max_days)) }
                        td { (if r.is_some_and(|r| r.justification_required) { "required" } else { "optional" }) }
                    }
                }
            }
        }
    };
    Ok(page("Ask for access", &person, body).into_response())
}

fn refused(status: StatusCode, why: &str) -> Response {
    crate::daemon::ui::html::error_page(status, "Not asked", why)
}

/// `POST /requests`: stores the request (pending) and tells the webhooks.
pub async fn ask(
    State(shared): State<Ui>,
    Extension(person): Extension<Person>,
    form: Result<Form<AskForm>, axum::extract::rejection::FormRejection>,
) -> PageResult {
    let Ok(Form(form)) = form else {
        return Ok(refused(
            StatusCode::BAD_REQUEST,
            "the form could not be read",
        ));
    };
    if !csrf_ok(&person, &form.csrf) {
        shared.metrics.console_refused("csrf");
        return Ok(crate::daemon::ui::html::forbidden_csrf());
    }
    let rules = shared.rules();
    let today = crate::clock::today_utc();
    let days = form.days.trim().parse::<u32>().unwrap_or(0);
    let asked = match asking::ask(&rules, form.group.trim(), days, &form.justification, today) {
        Ok(a) => a,
        Err(e) => return Ok(refused(StatusCode::UNPROCESSABLE_ENTITY, &e.to_string())),
    };
    let Some(e) = crate::daemon::evaluated(&shared).await? else {
        return Ok(no_snapshot(&person));
    };
    let wanted = form.worker.trim();
    let worker =
        if wanted.is_empty() {
            match person.worker.as_deref().and_then(|k| e.snapshot.find(k)) {
                Some(w) => w,
                None => return Ok(refused(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "your email is no worker's in the HR export, so you cannot ask for yourself",
                )),
            }
        } else {
            if !decides(&person, &rules, &form.group) {
                return Ok(refused(
                    StatusCode::FORBIDDEN,
                    &format!(
                        "only the approvers of `{}` may ask for someone else",
                        form.group.trim()
                    ),
                ));
            }
            match e.snapshot.find(wanted) {
                Some(w) => w,
                None => return Ok(no_worker(&person, wanted)),
            }
        };
    let key = e.snapshot.key(worker).to_string();
    if let Some(id) = e.rules.lookup(form.group.trim()) {
        if e.evaluation.is_member(id, worker) {
            let already = asking::AskError::AlreadyIn(key, form.group.trim().to_string());
            return Ok(refused(StatusCode::CONFLICT, &already.to_string()));
        }
    }
    let new = NewRequest {
        group: form.group.trim().to_string(),
        list: asked.list.to_string(),
        worker: key,
        worker_email: e.snapshot.email(worker).map(str::to_string),
        worker_name: e.snapshot.name(worker),
        requested_by: person.approver_id(),
        requester_subject: person.session.subject.clone(),
        requester_email: person.session.email.clone(),
        justification: form.justification.trim().to_string(),
        until: asked.until.to_string(),
    };
    let now = crate::clock::stamp(crate::clock::now_utc());
    let id = match shared.store.create_request(&new, &now).await {
        Ok(id) => id,
        Err(StoreError::Conflict(why)) => return Ok(refused(StatusCode::CONFLICT, &why)),
        Err(e) => return Err(e.into()),
    };
    tracing::info!(request = id, group = %new.group, worker = %new.worker, by = %new.requested_by, "console: access requested");
    if let Some(stored) = shared.store.access_request(id).await? {
        crate::notify::tell(
            &shared.config(),
            vec![crate::notify::Event::Request(Box::new(stored))],
        );
    }
    Ok(redirect(&format!("/requests/{id}")))
}

/// `/requests/{id}`: the request, its history, where its change stands, and the forms the
/// person may use on it. Only its requester, its worker, the group's approvers and the
/// console's viewers see it.
pub async fn request(
    State(shared): State<Ui>,
    Extension(person): Extension<Person>,
    Path(raw): Path<String>,
) -> PageResult {
    let rules = shared.rules();
    let found = match raw.parse::<i64>() {
        Ok(id) => shared.store.access_request(id).await?,
        Err(_) => None,
    };
    let Some(r) =
        found.filter(|r| person.viewer || is_own(&person, r) || decides(&person, &rules, &r.group))
    else {
        return Ok(crate::daemon::ui::html::error_page(
            StatusCode::NOT_FOUND,
            "No such request",
            "there is no such access request, or it is not yours to see",
        ));
    };
    let events = shared.store.request_events(r.id).await?;
    let reach = super::decide::reach(&shared, &rules, &r, &events).await?;
    let deciding = r.state.is_open() && !is_own(&person, &r) && decides(&person, &rules, &r.group);
    let body = html! {
        p {
            (r.requested_by) " asked for " strong { (r.worker_name.as_deref().unwrap_or(&r.worker)) } " (" (r.worker) ") "
            "to be in " a href=(format!("/groups/{}", seg(&r.group))) { (r.group) } " (" (r.list) ") until " strong { (r.until) } "."
        }
        p { "State: " span.badge.(state_class(r.state)) { (r.state.label()) }
            @if let Some(who) = r.deciding_by.as_deref().filter(|_| r.state.is_open()) { " " span.muted { (who) " is approving it now" } } }
        p { "Why: " (r.justification) }
        @if let Some(by) = &r.decided_by {
            p { "Decided by " (by) @if let Some(at) = &r.decided_at { ", " (when(at)) }
                @if let Some(c) = r.comment.as_deref().filter(|c| !c.is_empty()) { ": " (c) } }
        }
        (super::decide::reach_table(&r, &reach))
        @if deciding {
            h2 { "Decide" }
            form method="post" action=(format!("/requests/{}/approve", r.id)) {
                input type="hidden" name="csrf" value=(person.session.csrf_token);
                label { "Comment " input type="text" name="comment" size="60"; }
                " "
                button type="submit" { "Approve" }
            }
            form method="post" action=(format!("/requests/{}/deny", r.id)) {
                input type="hidden" name="csrf" value=(person.session.csrf_token);
                label { "Why not " input type="text" name="comment" size="60" required; }
                " "
                button.quiet type="submit" { "Deny" }
            }
        } @else if r.state.is_open() && is_own(&person, &r) {
            p.muted { "One of the group's approvers decides; you cannot approve a request of your own." }
        }
        @if r.state.is_open() && r.requester_subject == person.session.subject {
            form method="post" action=(format!("/requests/{}/withdraw", r.id)) {
                input type="hidden" name="csrf" value=(person.session.csrf_token);
                button.quiet type="submit" { "Withdraw" }
            }
        }
        h2 { "History" }
        table {
            tr { th { "At" } th { "State" } th { "By" } th { "Note" } }
            @for e in &events {
                tr { td { (when(&e.at)) } td { (e.state.label()) } td { (e.by) } td { (e.note) } }
            }
        }
    };
    Ok(page(&format!("Request {}", r.id), &person, body).into_response())
}
