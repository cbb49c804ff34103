//! `/`: the rules in force, each target's health, what is held, the last runs.

use super::*;

pub async fn overview(
    State(shared): State<Ui>,
    Extension(person): Extension<Person>,
    Query(q): Q,
) -> PageResult {
    let body = overview_body(&shared, &person, &q).await?;
    Ok(page("Overview", &person, body).into_response())
}

pub(super) async fn overview_body(
    shared: &crate::daemon::Shared,
    person: &Person,
    q: &ListQuery,
) -> Result<Markup, StoreError> {
    let config = shared.config();
    let revision = shared.revision();
    let refused = shared.refused();
    let runs = shared.store.runs_told(10).await?;
    let rules = shared.rules();
    let status = crate::push::status::targets(
        &config,
        Some(rules.as_ref()),
        &shared.store,
        crate::clock::now_utc(),
    )
    .await?;
    let holds: Vec<&crate::store::PushHold> = status
        .values()
        .flat_map(|t| &t.holds)
        .filter(|h| h.status == HoldStatus::Held)
        .collect();
    let snapshots_held: Vec<_> = shared
        .store
        .snapshots(20)
        .await?
        .into_iter()
        .filter(|s| s.status == crate::store::SnapshotStatus::Held)
        .collect();
    let violations: Vec<crate::engine::guardrails::Violation> =
        shared.store.current_violations().await?;
    let running = crate::daemon::running(shared);
    Ok(html! {
        @match q.sync.as_deref() {
            Some("queued") => p.flash { "A sync is queued; it shows under Last runs once it has run." },
            Some("standby") => p.flash { "This instance is on standby and runs no sync; the leader's next scheduled sync runs as usual." },
            _ => {}
        }
        section {
            h2 { "Rules in force" }
            p {
                (thousands(revision.groups as u64)) " groups"
                @if let Some(c) = &revision.commit { ", commit " code { (c) } }
                ", digest " code { (revision.digest.get(..12).unwrap_or(&revision.digest)) }
                ", loaded " (when(&revision.loaded_at))
            }
            @if let Some(r) = &refused {
                p.bad { strong { "The newest rules were refused" } " at " (r.at)
                    @if let Some(c) = &r.commit { " (commit " code { (c) } ")" }
                    "; the rules above stay in force:" }
                pre { (r.diagnostics) }
            }
            @if !violations.is_empty() {
                p.warn { strong { (violations.len()) " guardrail(s) broken:" } }
                ul { @for v in &violations { li { (v.guardrail) ": " (v.message) } } }
            }
        }
        section {
            h2 { "Targets" }
            @if config.targets.is_empty() {
                p.muted { "No targets are configured." }
            } @else {
                table {
                    tr { th { "Target" } th { "Health" } th { "Since" } th { "Last push" } th.n { "Unsent" } th.n { "Failed" } }
                    @for (name, t) in &status {
                        tr {
                            td { (name) }
                            td {
                                @match &t.health {
                                    health if health.is_healthy() => span.ok { "healthy" },
                                    health @ (crate::push::status::Health::NotPushedYet | crate::push::status::Health::NotConnected) => span.muted { (health.text()) },
                                    health => span.bad { (health.text()) },
                                }
                            }
                            td { (when(t.since.as_deref().unwrap_or("-"))) }
                            td { (when(t.last_push.as_deref().unwrap_or("-"))) }
                            td.n { (t.pending) }
                            td.n { (t.failed) }
                        }
                    }
                }
            }
        }
        section {
            h2 { "Held" }
            @if holds.is_empty() && snapshots_held.is_empty() {
                p.muted { "Nothing is held." }
            }
            @if !holds.is_empty() {
                p { a href="/holds" { (holds.len()) " push(es) wait for approval" } ": "
                    @for (i, h) in holds.iter().enumerate() {
                        @if i > 0 { ", " }
                        (h.group) " → " (h.target)
                    }
                }
            }
            @for s in &snapshots_held {
                p.warn { "Snapshot " (s.id) " is held: " (s.hold_reason.as_deref().unwrap_or("")) " — approve it with "
                    code { "rosterd approve snapshot " (s.id) } }
            }
        }
        section {
            h2 { "Last runs" }
            @if let Some(job) = running { p { "Running now: " strong { (job) } } }
            (runs_table(&runs))
            p { a href="/runs" { "All runs" } }
            @if person.approver {
                form method="post" action="/sync" {
                    input type="hidden" name="csrf" value=(person.session.csrf_token);
                    button type="submit" { "Sync now" }
                    span.muted { " reads the export and the rules and pushes what changed, as the schedule does" }
                }
            }
        }
    })
}

pub(super) fn runs_table(runs: &[crate::store::RunInfo]) -> Markup {
    html! {
        @if runs.is_empty() {
            p.muted { "No run yet." }
        } @else {
            table {
                tr { th.n { "Run" } th { "Kind" } th { "Outcome" } th { "Started" } th { "As of" } th.n { "Joined" } th.n { "Left" } th.n { "Memberships" } th { "Message" } }
                @for r in runs {
                    tr {
                        td.n { a href=(format!("/runs/{}", r.id)) { (r.id) } }
                        td { (r.kind) }
                        td { span class=(outcome_class(r.outcome)) { (r.outcome.as_str().replace('_', " ")) } }
                        td { (when(&r.started_at)) }
                        td { (r.as_of) }
                        td.n { (thousands(r.added as u64)) }
                        td.n { (thousands(r.removed as u64)) }
                        td.n { (thousands(r.memberships as u64)) }
                        td { (r.outcome_reason.as_deref().or(r.message.as_deref()).and_then(|m| m.lines().next()).unwrap_or("")) }
                    }
                }
            }
        }
    }
}

/// A JSON list of names as `a, b`, or `none`.
pub(super) fn list_of(v: &serde_json::Value) -> String {
    let names: Vec<&str> = v
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|n| n.as_str())
        .collect();
    if names.is_empty() {
        "none".into()
    } else {
        names.join(", ")
    }
}

pub(super) fn outcome_class(outcome: crate::store::RunOutcome) -> &'static str {
    use crate::store::RunOutcome;
    match outcome {
        RunOutcome::Succeeded | RunOutcome::NothingToDo => "ok",
        RunOutcome::Failed | RunOutcome::PartlyFailed | RunOutcome::CutShort => "bad",
        RunOutcome::SucceededWithHeldPushes | RunOutcome::Held => "warn",
    }
}
