//! `/holds`, a hold's page (who would leave and join, and why), approving, and Sync now.

use super::*;

pub async fn holds(
    State(shared): State<Ui>,
    Extension(person): Extension<Person>,
    Query(q): Q,
) -> PageResult {
    let all = shared.store.push_holds(None).await?;
    let waiting: Vec<_> = all
        .iter()
        .filter(|h| h.status == HoldStatus::Held)
        .collect();
    let approved: Vec<_> = all
        .iter()
        .filter(|h| h.status == HoldStatus::Approved)
        .collect();
    let past: Vec<_> = all
        .iter()
        .rev()
        .filter(|h| !h.status.is_open())
        .take(50)
        .collect();
    let body = html! {
        @if let Some(id) = q.approved {
            @if q.standby.is_some() {
                p.flash { "Push hold " (id) " is approved; the leader's next scheduled sync sends it (this instance is on standby)." }
            } @else {
                p.flash { "Push hold " (id) " is approved; a sync is queued to send it." }
            }
        }
        p.muted { "A push is held when it would change more of a target's group than its failsafe allows, or when a guardrail on the group is broken. Approving releases that one change; a later change is held again if it breaks the same limit." }
        h2 { "Waiting for approval" }
        @if waiting.is_empty() {
            p.muted { "No push is held." }
        } @else {
            table {
                tr { th.n { "Hold" } th { "Group" } th { "Target" } th.n { "To add" } th.n { "To remove" } th.n { "In the target" } th { "Why" } th { "Held since" } th { } }
                @for h in &waiting {
                    tr {
                        td.n { (h.id) }
                        td { a href=(format!("/groups/{}", seg(&h.group))) { (h.group) } }
                        td { (h.target) }
                        td.n { (thousands(h.to_add as u64)) }
                        td.n { (thousands(h.to_remove as u64)) }
                        td.n { (thousands(h.members_in_target as u64)) }
                        td { (h.reason) }
                        td { (when(&h.created_at)) }
                        td {
                            @if person.approver {
                                a href=(format!("/holds/{}", h.id)) { "Review and approve" }
                            } @else {
                                a href=(format!("/holds/{}", h.id)) { "Review" } " " span.muted { "approvers only" }
                            }
                        }
                    }
                }
            }
        }
        h2 { "Approved, sent by the next push" }
        (holds_table(&approved))
        h2 { "Earlier" }
        (holds_table(&past))
    };
    Ok(page("Holds", &person, body).into_response())
}

pub(super) fn holds_table(holds: &[&crate::store::PushHold]) -> Markup {
    html! {
        @if holds.is_empty() {
            p.muted { "None." }
        } @else {
            table {
                tr { th.n { "Hold" } th { "Group" } th { "Target" } th.n { "To add" } th.n { "To remove" } th { "Status" } th { "Approved by" } th { "At" } }
                @for h in holds {
                    tr {
                        td.n { (h.id) }
                        td { (h.group) }
                        td { (h.target) }
                        td.n { (thousands(h.to_add as u64)) }
                        td.n { (thousands(h.to_remove as u64)) }
                        td { (h.status) }
                        td { (h.approved_by.as_deref().unwrap_or("-")) }
                        td { (when(h.approved_at.as_deref().unwrap_or(&h.created_at))) }
                    }
                }
            }
        }
    }
}

/// People listed on a hold's page at a time.
pub(super) const HOLD_PEOPLE_PER_PAGE: usize = 200;

/// One hold: who its push would remove and add, and why; for an approver, the form that
/// releases it, which asks them to confirm the count.
pub async fn hold(
    State(shared): State<Ui>,
    Extension(person): Extension<Person>,
    Path(raw): Path<String>,
    Query(q): Q,
) -> PageResult {
    let found = match raw.parse::<i64>() {
        Ok(id) => shared.store.push_hold(id).await?,
        Err(_) => None,
    };
    let Some(found) = found else {
        return Ok(crate::daemon::ui::html::error_page(
            StatusCode::NOT_FOUND,
            "No such hold",
            "there is no such push hold",
        ));
    };
    let config = shared.config();
    let detail = crate::push::hold::detail(&shared.store, &config, found).await?;
    let h = &detail.hold;
    let page_no = page_of(&q);
    let base = format!("/holds/{}", h.id);
    let people = |list: &[crate::push::hold::Person]| {
        html! {
            @if list.is_empty() {
                p.muted { "Nobody." }
            } @else {
                table {
                    tr { th { "Worker" } th { "Name" } th { "Email" } th { "Department" } th { "Why" } }
                    @for p in list.iter().skip((page_no - 1) * HOLD_PEOPLE_PER_PAGE).take(HOLD_PEOPLE_PER_PAGE) {
                        tr {
                            td { a href=(format!("/workers/{}?group={}", seg(&p.key), seg(&h.group))) { (p.key) } }
                            td { (p.name.as_deref().unwrap_or("-")) }
                            td { (p.email.as_deref().unwrap_or("-")) }
                            td { (p.department.as_deref().unwrap_or("-")) }
                            td { (p.why) }
                        }
                    }
                }
                (pager(&base, page_no, HOLD_PEOPLE_PER_PAGE, list.len()))
            }
        }
    };
    let body = html! {
        p { "The push of " a href=(format!("/groups/{}", seg(&h.group))) { (h.group) } " to " strong { (h.target) } " is " strong { (h.status) } ": " (h.reason) }
        h2 { "Would leave (" (thousands(detail.leaving.len() as u64)) ")" }
        (people(&detail.leaving))
        h2 { "Would join (" (thousands(detail.joining.len() as u64)) ")" }
        (people(&detail.joining))
        @if !detail.other_entries.is_empty() {
            p { "Entries of the target's group that are no worker's, which leave too: " (detail.other_entries.join(", ")) }
        }
        @if h.status == HoldStatus::Held {
            @if person.approver {
                form method="post" action=(format!("/holds/{}/approve", h.id)) {
                    input type="hidden" name="csrf" value=(person.session.csrf_token);
                    label {
                        input type="checkbox" name="confirm" value=(h.to_remove) required;
                        " I have checked the list: release removing " strong { (thousands(h.to_remove as u64)) } " and adding " strong { (thousands(h.to_add as u64)) } " members of " (h.group) " in " (h.target)
                    }
                    " "
                    button type="submit" { "Approve" }
                }
            } @else {
                p.muted { "Only approvers may release it." }
            }
        }
    };
    Ok(page(&format!("Hold {}", h.id), &person, body).into_response())
}

/// Approves a held push: a POST from an approver with the session's CSRF token, confirming
/// the number of removals it releases. The approval records the person (`oidc:SUBJECT
/// (EMAIL)`), and a sync is queued to send it.
pub async fn approve(
    State(shared): State<Ui>,
    Extension(person): Extension<Person>,
    Path(raw): Path<String>,
    form: Result<Form<CsrfForm>, axum::extract::rejection::FormRejection>,
) -> PageResult {
    let confirmed = form.as_ref().ok().and_then(|f| f.0.confirm.clone());
    if let Some(refused) = refusal(&shared, &person, form, "release a held push") {
        return Ok(refused);
    }
    let Ok(id) = raw.parse::<i64>() else {
        return Ok(crate::daemon::ui::html::error_page(
            StatusCode::NOT_FOUND,
            "No such hold",
            "holds are numbered",
        ));
    };
    // The approver confirmed how many removals they release: the count on the hold now.
    let to_remove = shared.store.push_hold(id).await?.map(|h| h.to_remove);
    if let Some(n) = to_remove.filter(|n| confirmed.as_deref() != Some(n.to_string().as_str())) {
        return Ok(crate::daemon::ui::html::error_page(
            StatusCode::BAD_REQUEST,
            "Not confirmed",
            &format!("approving hold {id} releases {n} removals: tick the box that names them on the hold's page"),
        ));
    }
    Ok(match shared.approve_hold(id, &person.approver_id()).await {
        Ok(_) => {
            shared.metrics.console_approved();
            if shared.leadership.leading() {
                redirect(&format!("/holds?approved={id}"))
            } else {
                redirect(&format!("/holds?approved={id}&standby=1"))
            }
        }
        Err(StoreError::NotFound(m)) => {
            crate::daemon::ui::html::error_page(StatusCode::NOT_FOUND, "No such hold", &m)
        }
        Err(StoreError::Conflict(m)) => {
            crate::daemon::ui::html::error_page(StatusCode::CONFLICT, "Already decided", &m)
        }
        Err(e) => return Err(e.into()),
    })
}

/// A state-changing form may go ahead when it carries the session's CSRF token and comes
/// from an approver; otherwise this is the answer that refuses it (logged and counted).
/// `what` is what the form asks, as in "only approvers may {what}".
pub(super) fn refusal(
    shared: &crate::daemon::Shared,
    person: &Person,
    form: Result<Form<CsrfForm>, axum::extract::rejection::FormRejection>,
    what: &str,
) -> Option<Response> {
    let given = form.map(|f| f.0.csrf).unwrap_or_default();
    if !csrf_ok(person, &given) {
        tracing::warn!(subject = %person.session.subject, "console: a request to {what} without a valid CSRF token was refused");
        shared.metrics.console_refused("csrf");
        return Some(crate::daemon::ui::html::forbidden_csrf());
    }
    if !person.approver {
        tracing::warn!(subject = %person.session.subject, "console: a viewer's request to {what} was refused");
        shared.metrics.console_refused("role");
        return Some(crate::daemon::ui::html::error_page(
            StatusCode::FORBIDDEN,
            "Refused",
            &format!("only approvers may {what}"),
        ));
    }
    None
}

/// "Sync now" (approvers): queues a sync on the leader, as `POST /api/v1/runs` does. A
/// standby runs none; its page says so.
pub async fn sync_now(
    State(shared): State<Ui>,
    Extension(person): Extension<Person>,
    form: Result<Form<CsrfForm>, axum::extract::rejection::FormRejection>,
) -> PageResult {
    if let Some(refused) = refusal(&shared, &person, form, "ask for a sync") {
        return Ok(refused);
    }
    if !shared.leadership.leading() {
        return Ok(redirect("/?sync=standby"));
    }
    tracing::info!(by = %person.approver_id(), "console: sync requested");
    shared.request(crate::daemon::Job::Sync);
    Ok(redirect("/?sync=queued"))
}
