//! `/reviews`: the entries due for an access review in the groups the person approves, with
//! keep (the entry's `reviewed` date becomes today, and its end date may move) and remove,
//! each landing as a commit to the rules repository as `rosterd review` does.

use super::*;
use crate::access::{self, Decision};
use crate::store::DecisionRecord;

/// Days ahead the page looks for what falls due.
const AHEAD_DAYS: u32 = 14;

#[derive(serde::Deserialize, Default)]
pub struct ReviewForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    group: String,
    /// The entry's key or email, as written.
    #[serde(default)]
    who: String,
    /// `keep` or `remove`.
    #[serde(default)]
    decision: String,
    /// Keep: the new last day (`YYYY-MM-DD`), or empty to leave it.
    #[serde(default)]
    until: String,
    #[serde(default)]
    comment: String,
}

#[derive(serde::Deserialize, Default)]
pub struct ReviewedQuery {
    done: Option<String>,
}

/// Whether the entry `who` (a key or an email, as written) is the person's own.
fn own_entry(person: &Person, who: &str) -> bool {
    person.worker.as_deref() == Some(who)
        || person
            .session
            .email
            .as_deref()
            .is_some_and(|e| e.eq_ignore_ascii_case(who))
}

pub async fn reviews(
    State(shared): State<Ui>,
    Extension(person): Extension<Person>,
    Query(q): Query<ReviewedQuery>,
) -> PageResult {
    let rules = shared.rules();
    let today = crate::clock::today_utc();
    let due: Vec<access::Due> = access::due(&rules, today, AHEAD_DAYS)
        .into_iter()
        .filter(|d| super::decide::decides(&person, &rules, &d.group))
        .collect();
    let body = html! {
        @if let Some(done) = &q.done {
            p.flash { (done) }
        }
        p.muted { "Every entry added by hand is reviewed by its group's approvers every `review_every` days and 14 days before it expires. Keep and remove each land as a commit to the rules repository." }
        @if due.is_empty() {
            p.muted { "Nothing of the groups you approve is due for review within " (AHEAD_DAYS) " days." }
        } @else {
            table {
                tr { th { "Group" } th { "Entry" } th { "Why" } th { "Due" } th { "Reason, ticket" } th { "Decide" } }
                @for d in &due {
                    tr {
                        td { (d.group) " " span.muted { (d.list) } }
                        td { (d.who) }
                        td { (d.why) }
                        td { (d.due_on) }
                        td { (d.reason.as_deref().unwrap_or("")) " " span.muted { (d.ticket.as_deref().unwrap_or("")) } }
                        td {
                            @if own_entry(&person, d.entry.who.value()) {
                                span.muted { "your own: another approver decides" }
                            } @else {
                                form method="post" action="/reviews" {
                                    input type="hidden" name="csrf" value=(person.session.csrf_token);
                                    input type="hidden" name="group" value=(d.group);
                                    input type="hidden" name="who" value=(d.entry.who.value());
                                    input type="text" name="comment" size="24" placeholder="comment" aria-label="Comment";
                                    " "
                                    input type="date" name="until" aria-label="Keep until";
                                    " "
                                    button type="submit" name="decision" value="keep" { "Keep" }
                                    " "
                                    button.quiet type="submit" name="decision" value="remove" { "Remove" }
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    Ok(page("Access reviews", &person, body).into_response())
}

fn refused(status: StatusCode, why: &str) -> Response {
    crate::daemon::ui::html::error_page(status, "Not decided", why)
}

/// `POST /reviews`: keeps or removes one entry, as a commit, and records the decision.
pub async fn review(
    State(shared): State<Ui>,
    Extension(person): Extension<Person>,
    form: Result<Form<ReviewForm>, axum::extract::rejection::FormRejection>,
) -> PageResult {
    let form = form.map(|f| f.0).unwrap_or_default();
    if !csrf_ok(&person, &form.csrf) {
        shared.metrics.console_refused("csrf");
        return Ok(crate::daemon::ui::html::forbidden_csrf());
    }
    let rules = shared.rules();
    if !super::decide::decides(&person, &rules, &form.group) {
        shared.metrics.console_refused("role");
        return Ok(refused(
            StatusCode::FORBIDDEN,
            &format!("only the approvers of `{}` review its entries", form.group),
        ));
    }
    if own_entry(&person, &form.who) {
        shared.metrics.console_refused("own_request");
        return Ok(refused(
            StatusCode::FORBIDDEN,
            "you cannot review your own access: another approver decides it",
        ));
    }
    let until = match form.until.trim() {
        "" => None,
        text => match chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d") {
            Ok(d) => Some(d),
            Err(_) => {
                return Ok(refused(
                    StatusCode::BAD_REQUEST,
                    "the date to keep it until is not YYYY-MM-DD",
                ))
            }
        },
    };
    let by = person.approver_id();
    let comment = form.comment.trim().to_string();
    let keep = match form.decision.as_str() {
        "keep" => true,
        "remove" => false,
        _ => return Ok(refused(StatusCode::BAD_REQUEST, "decide keep or remove")),
    };
    let decision = Decision::review(
        keep,
        form.group.clone(),
        form.who.clone(),
        until,
        by.clone(),
        comment,
    );
    let config = shared.config();
    let today = crate::clock::today_utc();
    let landing = decision.clone();
    let landed =
        tokio::task::spawn_blocking(move || access::land(&config, &landing, today)).await?;
    let landed = match landed {
        Ok(l) => l,
        Err(e) => {
            return Ok(refused(
                StatusCode::UNPROCESSABLE_ENTITY,
                &format!("nothing was committed: {e}"),
            ))
        }
    };
    let d = decision.record(&landed);
    tracing::info!(group = %form.group, who = %form.who, decision = d.decision.as_str(), by = %by, commit = %landed.commit, "console: access review decided");
    let id = shared.store.record_decision(&d).await?;
    crate::notify::tell(
        &shared.config(),
        vec![crate::notify::Event::Decision(DecisionRecord { id, ..d })],
    );
    let done = format!(
        "{} {} in {}: commit {} on {}{}",
        decision.kind(),
        form.who,
        form.group,
        &landed.commit[..landed.commit.len().min(12)],
        landed.branch,
        if landed.direct {
            ""
        } else {
            " (merge it to put it in force)"
        }
    );
    Ok(redirect(&format!(
        "/reviews?done={}",
        url::form_urlencoded::byte_serialize(done.as_bytes()).collect::<String>()
    )))
}
