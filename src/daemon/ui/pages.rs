//! The console's pages. Each reads what the JSON API reads (the store, the rules in force,
//! the snapshot in force evaluated and kept in memory) and renders it; none changes state
//! but the approval, which is a POST with the session's CSRF token from an approver.

use std::collections::BTreeMap;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Form};
use maud::{html, Markup};

use super::html::{page, seg, size_chart, PageResult};
use super::{csrf_ok, redirect, CsrfForm, Person, Ui, WithStatus};
use crate::engine::explain::Node;
use crate::store::{HoldStatus, StoreError};
use crate::text::thousands;

/// Members listed per page of a group.
const MEMBERS_PER_PAGE: usize = 100;
/// A run's changes listed per page.
const CHANGES_PER_PAGE: usize = 200;
/// Groups listed at once (the search narrows them).
const GROUPS_LISTED: usize = 500;

#[derive(serde::Deserialize, Default)]
pub struct ListQuery {
    q: Option<String>,
    page: Option<usize>,
    group: Option<String>,
    approved: Option<i64>,
    standby: Option<u8>,
    /// After "Sync now": `queued`, or `standby` where this instance cannot run it.
    sync: Option<String>,
    /// A group's members on this date (`YYYY-MM-DD`).
    date: Option<String>,
}

type Q = Query<ListQuery>;

fn page_of(q: &ListQuery) -> usize {
    q.page.unwrap_or(1).max(1)
}

/// Links to the neighbouring pages of a list of `total`.
fn pager(base: &str, page: usize, per: usize, total: usize) -> Markup {
    let pages = total.div_ceil(per).max(1);
    let sep = if base.contains('?') { '&' } else { '?' };
    html! {
        @if pages > 1 {
            div.pager {
                @if page > 1 { a href=(format!("{base}{sep}page={}", page - 1)) { "← previous" } }
                span.muted { "page " (page) " of " (pages) }
                " "
                @if page < pages { a href=(format!("{base}{sep}page={}", page + 1)) { "next →" } }
            }
        }
    }
}

// --- Overview --------------------------------------------------------------------------------

pub async fn overview(
    State(shared): State<Ui>,
    Extension(person): Extension<Person>,
    Query(q): Q,
) -> PageResult {
    let body = overview_body(&shared, &person, &q).await?;
    Ok(page("Overview", &person, body).into_response())
}

async fn overview_body(
    shared: &super::Shared,
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
    let running = super::super::running(shared);
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
                ", loaded " (revision.loaded_at)
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
                            td { (t.since.as_deref().unwrap_or("-")) }
                            td { (t.last_push.as_deref().unwrap_or("-")) }
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

fn runs_table(runs: &[crate::store::RunInfo]) -> Markup {
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
                        td { (r.started_at) }
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
fn list_of(v: &serde_json::Value) -> String {
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

fn outcome_class(outcome: crate::store::RunOutcome) -> &'static str {
    use crate::store::RunOutcome;
    match outcome {
        RunOutcome::Succeeded | RunOutcome::NothingToDo => "ok",
        RunOutcome::Failed | RunOutcome::PartlyFailed | RunOutcome::CutShort => "bad",
        RunOutcome::SucceededWithHeldPushes | RunOutcome::Held => "warn",
    }
}

// --- Groups ----------------------------------------------------------------------------------

pub async fn groups(
    State(shared): State<Ui>,
    Extension(person): Extension<Person>,
    Query(q): Q,
) -> PageResult {
    let sizes = shared.store.group_sizes().await?;
    let rules = shared.rules();
    let needle = q.q.as_deref().unwrap_or("").trim().to_lowercase();
    let matching: Vec<&crate::rules::Group> = rules
        .groups()
        .iter()
        .filter(|g| {
            needle.is_empty()
                || g.name.to_lowercase().contains(&needle)
                || g.owners.iter().any(|o| o.to_lowercase().contains(&needle))
                || g.push
                    .iter()
                    .any(|p| p.target.to_lowercase().contains(&needle))
        })
        .collect();
    // Groups the audit knows that the rules have dropped, so their past stays reachable.
    let removed: Vec<String> = shared
        .store
        .audited_groups()
        .await?
        .into_iter()
        .filter(|n| rules.lookup(n).is_none())
        .filter(|n| needle.is_empty() || n.to_lowercase().contains(&needle))
        .collect();
    let body = html! {
        form method="get" action="/groups" {
            input type="search" name="q" value=(needle) placeholder="name, owner or target" aria-label="Search groups";
            " " button type="submit" { "Search" }
        }
        p.muted { (thousands(matching.len() as u64)) " of " (thousands(rules.groups().len() as u64)) " groups"
            @if matching.len() > GROUPS_LISTED { "; the first " (GROUPS_LISTED) " are listed, search to narrow" } }
        table {
            tr { th { "Group" } th { "Kind" } th.n { "Members" } th { "Targets" } th { "Owners" } }
            @for g in matching.iter().take(GROUPS_LISTED) {
                tr {
                    td { a href=(format!("/groups/{}", seg(&g.name))) { (g.name) } }
                    td { (g.kind) }
                    td.n { (thousands(sizes.get(&g.name).copied().unwrap_or(0) as u64)) }
                    td { (g.push.iter().map(|p| p.target.as_str()).collect::<Vec<_>>().join(", ")) }
                    td { (g.owners.join(", ")) }
                }
            }
        }
        @if !removed.is_empty() {
            p.removed { "No longer in the rules (their audit stays): "
                @for (i, n) in removed.iter().enumerate() {
                    @if i > 0 { ", " }
                    a href=(format!("/groups/{}", seg(n))) { (n) }
                }
            }
        }
    };
    Ok(page("Groups", &person, body).into_response())
}

pub async fn group(
    State(shared): State<Ui>,
    Extension(person): Extension<Person>,
    Path(name): Path<String>,
    Query(q): Q,
) -> PageResult {
    let rules = shared.rules();
    let Some(id) = rules.lookup(&name) else {
        return removed_group(&shared, &person, &name).await;
    };
    let body = group_body(&shared, &rules, id, page_of(&q)).await?;
    Ok(page(&format!("Group {name}"), &person, body).into_response())
}

async fn group_body(
    shared: &super::Shared,
    rules: &crate::rules::RuleSet,
    id: crate::rules::GroupId,
    page_no: usize,
) -> Result<Markup, String> {
    let g = rules.group(id);
    let (location, definition) = rules.definition(id);
    let store = &shared.store;
    let config = shared.config();
    let now = crate::clock::now_utc();
    let workers = shared.worker_ids().await.map_err(|e| e.to_string())?;
    let desired = store
        .group_state(&g.name)
        .await
        .map_err(|e| e.to_string())?;
    let members = desired.keyed(&workers).map_err(|e| e.to_string())?;
    let evaluated = super::super::evaluated(shared).await?;
    // Person entries by the worker they name, for each member's ticket and expiry.
    let mut entries: BTreeMap<&str, &crate::rules::PersonEntry> = BTreeMap::new();
    if let Some(e) = &evaluated {
        for entry in g.include.iter().chain(&g.members) {
            let w = crate::engine::resolve(&entry.who, &e.snapshot);
            if let Some(w) = w {
                entries.insert(e.snapshot.key(w), entry);
            }
        }
    }
    let history = store
        .group_deltas(&g.name, None)
        .await
        .map_err(|e| e.to_string())?;
    let points: Vec<(i64, u64)> = history
        .iter()
        .rev()
        .take(200)
        .rev()
        .map(|(run, _, d)| (*run, d.member_count))
        .collect();
    // What `rosterd status` and the API say of each push of this group: the one model.
    let model: BTreeMap<String, crate::push::status::GroupPush> =
        crate::push::status::of_group(&config, Some(rules), store, &g.name, now)
            .await
            .map_err(|e| e.to_string())?
            .into_iter()
            .map(|p| (p.target.clone(), p))
            .collect();
    let mut targets = Vec::new();
    let unprovisioned = store.unprovisioned().await.map_err(|e| e.to_string())?;
    for push in &g.push {
        let linked = store
            .target_groups(&push.target)
            .await
            .map_err(|e| e.to_string())?
            .remove(&g.name);
        let confirmed = store
            .target_set(&push.target, &g.name)
            .await
            .map_err(|e| e.to_string())?;
        let without: Vec<&str> = unprovisioned
            .iter()
            .filter(|u| u.target == push.target && u.group == g.name)
            .map(|u| u.worker_key.as_str())
            .collect();
        // Workers without an account are listed apart, as `rosterd status` lists them.
        let without_ids: roaring::RoaringBitmap =
            without.iter().filter_map(|k| workers.id(k)).collect();
        let (joins, leaves) = confirmed.unsent(&desired.members, &without_ids);
        let joins = joins.len();
        let error = store
            .last_failure(&push.target, &g.name)
            .await
            .map_err(|e| e.to_string())?;
        // What its last read back found, as `rosterd status` says it.
        let read = model
            .get(&push.target)
            .map_or(crate::push::status::Verification::NotInTarget, |p| {
                p.status.verification.clone()
            });
        targets.push((
            push,
            linked,
            confirmed.len(),
            joins,
            leaves,
            without,
            error,
            read,
        ));
    }
    // The pushes of this group a hold keeps back, one per target at most.
    let holds: Vec<&crate::store::PushHold> =
        model.values().filter_map(|p| p.hold.as_ref()).collect();
    let total = members.len();
    let first = (page_no - 1) * MEMBERS_PER_PAGE;
    let base = format!("/groups/{}", seg(&g.name));
    Ok(html! {
        p {
            (g.kind) " group, " strong { (thousands(total as u64)) } " members"
            @if !g.owners.is_empty() { ", owned by " (g.owners.join(", ")) }
        }
        @if let Some(d) = &g.description { p.muted { (d) } }
        h2 { "Definition" }
        p.muted { code { (location) } }
        pre { (definition) }
        h2 { "Push" }
        @for h in &holds {
            p.warn {
                strong { "The push to " (h.target) " is " (h.status) } " (hold " (h.id) ": +" (h.to_add) " -" (h.to_remove) "): " (h.reason) ". "
                a href=(format!("/holds/{}", h.id)) { "Who would leave and join" }
            }
        }
        @if targets.is_empty() {
            p.muted { "This group is not pushed." }
        } @else {
            table {
                tr { th { "Target" } th { "Group in the target" } th.n { "Confirmed" } th.n { "To join" } th.n { "To leave" } th { "Without an account" } th { "Last push" } th { "Read back" } th { "Last error" } }
                @for (push, linked, confirmed, joins, leaves, without, error, read) in &targets {
                    tr {
                        td { (push.target) @if !push.active { " " span.badge.muted { "unpushed" } } }
                        td { @match linked {
                            Some(t) => { code { (t.scim_id) } " " span.muted { (t.display_name) } },
                            None => span.muted { "not created yet" },
                        } }
                        td.n { (thousands(*confirmed as u64)) }
                        td.n { (thousands(*joins)) }
                        td.n { (thousands(*leaves)) }
                        td { @if without.is_empty() { span.muted { "none" } } @else {
                            (without.len()) ": " (without.iter().take(5).copied().collect::<Vec<_>>().join(", "))
                            @if without.len() > 5 { ", …" }
                        } }
                        td { (linked.as_ref().and_then(|t| t.pushed_at.clone()).unwrap_or_else(|| "-".into())) }
                        td { @match read {
                            crate::push::status::Verification::Current { outcome: crate::store::VerifyState::Drifted, .. } => span.bad { (read.text()) },
                            crate::push::status::Verification::Current { .. } => span.ok { (read.text()) },
                            _ => span.warn { (read.text()) },
                        } }
                        td { @match error {
                            Some(f) => span.bad { (f.http_status.map(|s| s.to_string()).unwrap_or_default()) " " (f.detail.as_deref().unwrap_or("")) " (" (f.finished_at.as_deref().unwrap_or(&f.created_at)) ")" },
                            None => span.muted { "none" },
                        } }
                    }
                }
            }
        }
        h2 { "Members" }
        @if total == 0 {
            p.muted { "No members." }
        } @else {
            table {
                tr { th { "Worker" } th { "Reason" } th { "Ticket" } th { "Expires" } th.n { "Since run" } }
                @for (key, m) in members.iter().skip(first).take(MEMBERS_PER_PAGE) {
                    @let entry = entries.get(key.as_str());
                    tr {
                        td { a href=(format!("/workers/{}?group={}", seg(key), seg(&g.name))) {
                            (label_of(evaluated.as_deref(), key))
                        } }
                        td { (m.reason) }
                        td { (entry.and_then(|e| e.ticket.clone()).unwrap_or_default()) }
                        td { (entry.and_then(|e| e.expires).map(|d| d.to_string()).unwrap_or_default()) }
                        td.n { a href=(format!("/runs/{}", m.since_run)) { (m.since_run) } }
                    }
                }
            }
            (pager(&base, page_no, MEMBERS_PER_PAGE, total))
        }
        h2 { "History" }
        (on_date_form(&base))
        (size_chart(&points))
        (history_table(&history))
    })
}

/// A worker's key, name and email as the snapshot in force has them; the key alone for a
/// worker it no longer has.
fn label_of(evaluated: Option<&super::super::Evaluated>, key: &str) -> String {
    evaluated
        .and_then(|e| e.snapshot.by_key(key).map(|w| e.snapshot.label(w)))
        .unwrap_or_else(|| key.to_string())
}

/// A group the rules in force no longer define: its audit stays readable (its history, and
/// who was in it on a date); a name the audit never had is not a group.
async fn removed_group(shared: &super::Shared, person: &Person, name: &str) -> PageResult {
    let history = shared.store.group_deltas(name, None).await?;
    if history.is_empty() {
        return Ok(no_group(person, name));
    }
    let base = format!("/groups/{}", seg(name));
    let body = html! {
        p.warn { "The rules in force no longer define " strong { (name) } "; what the audit recorded of it stays." }
        (on_date_form(&base))
        (history_table(&history))
    };
    Ok(page(&format!("Group {name}"), person, body).into_response())
}

/// Asks for a group's members on a date.
fn on_date_form(base: &str) -> Markup {
    html! {
        form method="get" action=(format!("{base}/on")) {
            label { "Who was a member on " input type="date" name="date" required; }
            " " button type="submit" { "Show" }
        }
    }
}

/// A group's joins and leaves per run, the newest 30.
fn history_table(history: &[(i64, String, crate::store::GroupDelta)]) -> Markup {
    html! {
        @if !history.is_empty() {
            table {
                tr { th.n { "Run" } th { "As of" } th.n { "Joined" } th.n { "Left" } th.n { "Members after" } }
                @for (run, as_of, d) in history.iter().rev().take(30) {
                    tr {
                        td.n { a href=(format!("/runs/{run}")) { (run) } }
                        td { (as_of) }
                        td.n { (thousands(d.added.len())) }
                        td.n { (thousands(d.removed.len())) }
                        td.n { (thousands(d.member_count)) }
                    }
                }
            }
        }
    }
}

/// `/groups/{name}/on?date=YYYY-MM-DD`: who was in the group after the last run evaluated on
/// or before the date, and why, reconstructed from the audit as `rosterd history` does. A
/// group the rules no longer define is shown too, as long as the audit has it.
pub async fn group_on(
    State(shared): State<Ui>,
    Extension(person): Extension<Person>,
    Path(name): Path<String>,
    Query(q): Q,
) -> PageResult {
    let raw = q.date.as_deref().unwrap_or("").trim();
    let Ok(date) = chrono::NaiveDate::parse_from_str(raw, "%Y-%m-%d") else {
        return Ok(super::html::error_page(
            StatusCode::BAD_REQUEST,
            "Not a date",
            &format!("date: `{raw}` is not a date; give it as YYYY-MM-DD"),
        ));
    };
    // A group the rules do not define must be one the audit has.
    let in_rules = shared.rules().lookup(&name).is_some();
    if !in_rules && !shared.store.audited_groups().await?.contains(&name) {
        return Ok(no_group(&person, &name));
    }
    // Keyed with the console's kept worker numbering, not read whole again.
    let state = shared.store.group_state_at(&name, date).await?;
    let workers = shared.worker_ids().await?;
    let members = state.keyed(&workers)?;
    let evaluated = super::super::evaluated(&shared).await?;
    let held = shared.store.holds_on(&name, &date.to_string()).await?;
    let page_no = page_of(&q);
    let base = format!("/groups/{}/on?date={date}", seg(&name));
    let body = html! {
        @for h in &held {
            p.warn { (crate::push::hold::on_date_note(h, &date.to_string())) ". " a href=(format!("/holds/{}", h.id)) { "The hold" } }
        }
        p {
            @if in_rules { a href=(format!("/groups/{}", seg(&name))) { (name) } } @else { (name) " (no longer in the rules)" }
            " on " (date) ": " strong { (thousands(members.len() as u64)) } " members, as the last run evaluated on or before that day left it (reconstructed from the audit)."
        }
        @if members.is_empty() {
            p.muted { "Nobody: " (name) " had no members after the last run evaluated on or before " (date) "." }
        } @else {
            table {
                tr { th { "Worker" } th { "Reason" } th.n { "Since run" } }
                @for (key, m) in members.iter().skip((page_no - 1) * MEMBERS_PER_PAGE).take(MEMBERS_PER_PAGE) {
                    tr {
                        td { a href=(match in_rules {
                            true => format!("/workers/{}?group={}#history", seg(key), seg(&name)),
                            false => format!("/workers/{}", seg(key)),
                        }) {
                            (label_of(evaluated.as_deref(), key))
                        } }
                        td { (m.reason) }
                        td.n { a href=(format!("/runs/{}", m.since_run)) { (m.since_run) } }
                    }
                }
            }
            (pager(&base, page_no, MEMBERS_PER_PAGE, members.len()))
        }
    };
    Ok(page(&format!("Group {name} on {date}"), &person, body).into_response())
}

// --- Workers ---------------------------------------------------------------------------------

/// `/workers?q=KEY_OR_EMAIL`: the worker's page, if the snapshot in force has them.
pub async fn find_worker(
    State(shared): State<Ui>,
    Extension(person): Extension<Person>,
    Query(q): Q,
) -> PageResult {
    let wanted = q.q.as_deref().unwrap_or("").trim().to_string();
    if wanted.is_empty() {
        return Ok(redirect("/"));
    }
    Ok(match super::super::evaluated(&shared).await? {
        Some(e) => match e.snapshot.find(&wanted) {
            Some(w) => redirect(&format!("/workers/{}", seg(e.snapshot.key(w)))),
            None => no_worker(&person, &wanted),
        },
        None => no_snapshot(&person),
    })
}

fn no_group(person: &Person, name: &str) -> Response {
    page(
        "No such group",
        person,
        html! { p { "The rules in force have no group " code { (name) } "." } },
    )
    .with_status(StatusCode::NOT_FOUND)
}

fn no_worker(person: &Person, wanted: &str) -> Response {
    page(
        "No such worker",
        person,
        html! { p { "The snapshot in force has no worker with the key or email " code { (wanted) } "." } },
    )
    .with_status(StatusCode::NOT_FOUND)
}

fn no_snapshot(person: &Person) -> Response {
    page(
        "No snapshot yet",
        person,
        html! { p { "No run has stored a snapshot yet; workers are shown after the first sync." } },
    )
    .with_status(StatusCode::CONFLICT)
}

pub async fn worker(
    State(shared): State<Ui>,
    Extension(person): Extension<Person>,
    Path(key): Path<String>,
    Query(q): Q,
) -> PageResult {
    let e = match super::super::evaluated(&shared).await? {
        Some(e) => e,
        None => return Ok(no_snapshot(&person)),
    };
    let Some(w) = e.snapshot.find(&key) else {
        return Ok(no_worker(&person, &key));
    };
    let groups = e.evaluation.groups_of(w);
    let chosen = match q.group.as_deref().filter(|g| !g.is_empty()) {
        Some(name) => match e.rules.lookup(name) {
            Some(g) => Some(g),
            None => return Ok(no_group(&person, name)),
        },
        None => None,
    };
    let explained: Vec<crate::engine::Explanation> = groups
        .iter()
        .map(|&g| crate::engine::explain(&e.snapshot, &e.rules, &e.evaluation, w, g))
        .collect();
    let tree = chosen.map(|g| crate::engine::explain(&e.snapshot, &e.rules, &e.evaluation, w, g));
    let worker_key = e.snapshot.key(w).to_string();
    // Who had access when: the worker's joins and leaves of the chosen group, as recorded.
    let history = match chosen {
        Some(g) => {
            shared
                .store
                .worker_history(&e.rules.group(g).name, &worker_key)
                .await?
        }
        None => Vec::new(),
    };
    let base = format!("/workers/{}", seg(&worker_key));
    let body = html! {
        p { "As of " (e.evaluation.as_of) ", snapshot " (e.snapshot_id) ": in " strong { (groups.len()) } " of " (thousands(e.rules.groups().len() as u64)) " groups." }
        h2 { "Groups" }
        @if explained.is_empty() {
            p.muted { "In no group." }
        } @else {
            table {
                tr { th { "Group" } th { "Kind" } th { "Why" } th { } }
                @for x in &explained {
                    tr {
                        td { a href=(format!("/groups/{}", seg(&x.group))) { (x.group) } }
                        td { (x.kind) }
                        td { (x.decided_by()) }
                        td { a href=(format!("{base}?group={}#explain", seg(&x.group))) { "explain" } }
                    }
                }
            }
        }
        h2 #explain { "Explain" }
        form method="get" action=(base) {
            label { "Why is this worker in, or not in, " }
            select name="group" {
                @for g in e.rules.groups() {
                    option value=(g.name) selected[tree.as_ref().is_some_and(|t| t.group == g.name)] { (g.name) }
                }
            }
            " " button type="submit" { "Explain" }
        }
        @if let Some(t) = &tree {
            (explanation(t))
            h2 #history { "History in " (t.group) }
            @if history.is_empty() {
                p.muted { "No run has recorded this worker joining or leaving " (t.group) "." }
            } @else {
                table {
                    tr { th.n { "Run" } th { "As of" } th { "Change" } th { "Why" } }
                    @for h in &history {
                        tr {
                            td.n { a href=(format!("/runs/{}?group={}", h.run_id, seg(&t.group))) { (h.run_id) } }
                            td { (h.as_of) }
                            td { @if h.added { span.ok { "joined" } } @else { span.bad { "left" } } }
                            td { (h.reason) }
                        }
                    }
                }
            }
        }
    };
    Ok(page(&e.snapshot.label(w), &person, body).into_response())
}

/// The explain tree as `rosterd explain` gives it, as nested lists.
fn explanation(x: &crate::engine::Explanation) -> Markup {
    html! {
        section.explain {
            p {
                strong { (x.group) } " (" (x.kind) ", " code { (x.group_location) } ") as of " (x.as_of) ": "
                @if x.member { strong.ok { "MEMBER" } } @else { strong.bad { "NOT A MEMBER" } }
            }
            p { "Decided by: " (x.decided_by()) }
            p { "Eligibility: " (if x.eligible { "true" } else { "false" })
                @if x.eligibility.is_none() { span.muted { " (no eligibility expression: every worker)" } } }
            @if let Some(n) = &x.eligibility { ul.tree { (node(n)) } }
            @if let Some(n) = &x.rule {
                p { "Rule: " code { (n.shown) } }
                ul.tree { (node(n)) }
            }
            @if !x.entries.is_empty() {
                p { "Person entries that name this worker:" }
                ul {
                    @for entry in &x.entries {
                        li {
                            (entry.list) " entry " code { (entry.entry) } " at " code { (entry.location) }
                            @if !entry.details.is_empty() { " (" (entry.details) ")" }
                            @if !entry.active { " " span.badge.warn { "expired: ignored" } }
                        }
                    }
                }
            }
        }
    }
}

fn node(n: &Node) -> Markup {
    html! {
        li {
            @match n.holds() {
                Some(true) => { span.mark.ok title="true" { "✓" } code { (n.expr) } },
                Some(false) => { span.mark.bad title="false" { "✗" } code { (n.expr) } },
                None => { span.mark.muted { "·" } code { (n.expr) } " = " code { (n.shown) } },
            }
            @if !n.children.is_empty() {
                ul.tree { @for c in &n.children { (node(c)) } }
            }
        }
    }
}

// --- Runs ------------------------------------------------------------------------------------

pub async fn runs(State(shared): State<Ui>, Extension(person): Extension<Person>) -> PageResult {
    let runs = shared.store.runs_told(100).await?;
    Ok(page("Runs", &person, runs_table(&runs)).into_response())
}

pub async fn run(
    State(shared): State<Ui>,
    Extension(person): Extension<Person>,
    Path(raw): Path<String>,
    Query(q): Q,
) -> PageResult {
    let Ok(id) = raw.parse::<i64>() else {
        return Ok(
            page("No such run", &person, html! { p { "Runs are numbered." } })
                .with_status(StatusCode::NOT_FOUND),
        );
    };
    let Some(run) = shared.store.run(id).await? else {
        return Ok(page(
            "No such run",
            &person,
            html! { p { "There is no run " (id) "." } },
        )
        .with_status(StatusCode::NOT_FOUND));
    };
    // A first run changes millions of memberships at 100,000 x 2,000: the page counts
    // them per group, and lists one group's changes a page at a time.
    let deltas = shared.store.run_deltas(id).await?;
    let chosen = q.group.as_deref().filter(|g| !g.is_empty());
    let mut listed: Vec<(String, bool, String)> = Vec::new();
    let mut total = 0;
    if let Some(delta) = chosen.and_then(|g| deltas.iter().find(|d| d.group == g)) {
        let workers = shared.worker_ids().await?;
        total = (delta.added.len() + delta.removed.len()) as usize;
        let first = (page_of(&q) - 1) * CHANGES_PER_PAGE;
        for (worker, added, reason) in delta.changes().skip(first).take(CHANGES_PER_PAGE) {
            let key = workers.key(worker).unwrap_or("?").to_string();
            listed.push((key, added, reason.to_string()));
        }
    }
    let base = format!("/runs/{id}");
    let body = html! {
        (runs_table(std::slice::from_ref(&run)))
        @if let Some(reason) = &run.outcome_reason { p { strong { "Outcome: " } (reason) } }
        @if let Some(pushed) = run.pushed.as_ref().and_then(|p| p.as_object()).filter(|p| !p.is_empty()) {
            table {
                tr { th { "Target" } th.n { "Added" } th.n { "Removed" } th.n { "Writes" } th { "Held" } th { "Failed" } }
                @for (target, t) in pushed {
                    tr {
                        td { (target) }
                        td.n { (t["added"]) }
                        td.n { (t["removed"]) }
                        td.n { (t["writes"]) }
                        td { (list_of(&t["held"])) }
                        td { (list_of(&t["failed"])) @if let Some(e) = t["error"].as_str() { " " span.bad { (e) } } }
                    }
                }
            }
        }
        @if let Some(m) = &run.message { pre { (m) } }
        p { "Rules: " @match (&run.rules_commit, &run.rules_digest) {
            (Some(c), _) => code { (c) },
            (None, Some(d)) => code { "sha256:" (d) },
            (None, None) => span.muted { "unknown" },
        } }
        @if let Some(group) = chosen {
            h2 { "Changes to " (group) }
            p { a href=(base) { "← every group of run " (id) } }
            @if listed.is_empty() {
                p.muted { "This run did not change " (group) "." }
            } @else {
                table {
                    tr { th { "Worker" } th { "Change" } th { "Reason" } }
                    @for (key, added, reason) in &listed {
                        tr {
                            td { a href=(format!("/workers/{}", seg(key))) { (key) } }
                            td { @if *added { span.ok { "joined" } } @else { span.bad { "left" } } }
                            td { (reason) }
                        }
                    }
                }
                (pager(&format!("{base}?group={}", seg(group)), page_of(&q), CHANGES_PER_PAGE, total))
            }
        } @else {
            h2 { "Membership changes by group" }
            @if deltas.is_empty() {
                p.muted { "This run changed no membership." }
            } @else {
                table {
                    tr { th { "Group" } th.n { "Joined" } th.n { "Left" } th.n { "Members after" } }
                    @for d in &deltas {
                        tr {
                            td { a href=(format!("{base}?group={}", seg(&d.group))) { (d.group) } }
                            td.n { (thousands(d.added.len())) }
                            td.n { (thousands(d.removed.len())) }
                            td.n { (thousands(d.member_count)) }
                        }
                    }
                }
            }
        }
    };
    Ok(page(&format!("Run {id}"), &person, body).into_response())
}

// --- Holds -----------------------------------------------------------------------------------

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
                        td { (h.created_at) }
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

fn holds_table(holds: &[&crate::store::PushHold]) -> Markup {
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
                        td { (h.approved_at.as_deref().unwrap_or(&h.created_at)) }
                    }
                }
            }
        }
    }
}

/// People listed on a hold's page at a time.
const HOLD_PEOPLE_PER_PAGE: usize = 200;

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
        return Ok(super::html::error_page(
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
        return Ok(super::html::error_page(
            StatusCode::NOT_FOUND,
            "No such hold",
            "holds are numbered",
        ));
    };
    // The approver confirmed how many removals they release: the count on the hold now.
    let to_remove = shared.store.push_hold(id).await?.map(|h| h.to_remove);
    if let Some(n) = to_remove.filter(|n| confirmed.as_deref() != Some(n.to_string().as_str())) {
        return Ok(super::html::error_page(
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
            super::html::error_page(StatusCode::NOT_FOUND, "No such hold", &m)
        }
        Err(StoreError::Conflict(m)) => {
            super::html::error_page(StatusCode::CONFLICT, "Already decided", &m)
        }
        Err(e) => return Err(e.into()),
    })
}

/// A state-changing form may go ahead when it carries the session's CSRF token and comes
/// from an approver; otherwise this is the answer that refuses it (logged and counted).
/// `what` is what the form asks, as in "only approvers may {what}".
fn refusal(
    shared: &super::Shared,
    person: &Person,
    form: Result<Form<CsrfForm>, axum::extract::rejection::FormRejection>,
    what: &str,
) -> Option<Response> {
    let given = form.map(|f| f.0.csrf).unwrap_or_default();
    if !csrf_ok(person, &given) {
        tracing::warn!(subject = %person.session.subject, "console: a request to {what} without a valid CSRF token was refused");
        shared.metrics.console_refused("csrf");
        return Some(super::html::forbidden_csrf());
    }
    if !person.approver {
        tracing::warn!(subject = %person.session.subject, "console: a viewer's request to {what} was refused");
        shared.metrics.console_refused("role");
        return Some(super::html::error_page(
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
    shared.request(super::super::Job::Sync);
    Ok(redirect("/?sync=queued"))
}

// --- Plan this rule ----------------------------------------------------------------------

/// The longest rule the preview takes.
const MAX_PREVIEW_RULE: usize = 16 * 1024;
/// Members shown of a previewed rule.
const PREVIEW_SAMPLE: usize = 25;

#[derive(serde::Deserialize, Default)]
pub struct PreviewQuery {
    rule: Option<String>,
}

/// What a pasted rule would select on the snapshot in force, under the rules in force (so
/// `member_of` works): its member count and a sample. It is checked like a rule file and
/// never stored; a GET, so it changes nothing and can be linked to.
pub async fn preview(
    State(shared): State<Ui>,
    Extension(person): Extension<Person>,
    Query(q): Query<PreviewQuery>,
) -> PageResult {
    let rule = q.rule.unwrap_or_default();
    let rule = rule.trim();
    let outcome = if rule.is_empty() {
        None
    } else if rule.len() > MAX_PREVIEW_RULE
        || rule
            .chars()
            .any(|c| c.is_control() && c != '\n' && c != '\r')
    {
        Some(Err(format!(
            "a rule is printable text of at most {} KiB",
            MAX_PREVIEW_RULE / 1024
        )))
    } else {
        let e = match super::super::evaluated(&shared).await? {
            Some(e) => e,
            None => return Ok(no_snapshot(&person)),
        };
        let config = shared.config();
        let rule = rule.to_string();
        Some(tokio::task::spawn_blocking(move || preview_rule(&config, &e, &rule)).await?)
    };
    let body = html! {
        p.muted { "Paste a rule expression (as in a rule file's " code { "rule:" } "). It is evaluated on the snapshot in force under the rules in force, and never stored." }
        form method="get" action="/plan" {
            textarea name="rule" rows="4" cols="90" aria-label="Rule" { (rule) }
            br;
            button type="submit" { "Plan" }
        }
        @match &outcome {
            None => {},
            Some(Err(diagnostics)) => { h2 { "The rule does not check" } pre { (diagnostics) } },
            Some(Ok(p)) => {
                h2 { (thousands(p.members as u64)) " of " (thousands(p.workers as u64)) " workers" }
                p.muted { "As of " (p.as_of) ", snapshot " (p.snapshot) "." }
                @if !p.sample.is_empty() {
                    p { "The first " (p.sample.len()) ":" }
                    ul { @for (key, label) in &p.sample {
                        li { a href=(format!("/workers/{}", seg(key))) { (label) } }
                    } }
                }
            },
        }
    };
    Ok(page("Plan a rule", &person, body).into_response())
}

struct Preview {
    members: usize,
    workers: usize,
    as_of: String,
    snapshot: i64,
    sample: Vec<(String, String)>,
}

/// Checks `rule` as the rule of one more managed group beside the rules in force, and
/// evaluates it.
fn preview_rule(
    config: &crate::config::Config,
    e: &super::super::Evaluated,
    rule: &str,
) -> Result<Preview, String> {
    let mut name = "console-preview".to_string();
    while e.rules.lookup(&name).is_some() {
        name.push('-');
    }
    // A block scalar: every line of the rule indented, whatever it holds.
    let mut yaml = format!("groups:\n  - name: {name}\n    kind: managed\n    rule: |-\n");
    for line in rule.lines() {
        yaml.push_str("      ");
        yaml.push_str(line);
        yaml.push('\n');
    }
    // The rule files in force, read as they were loaded (the eligibility expression's
    // config file among the sources is not a rule file), and the preview.
    let mut sources = crate::rules::SourceMap::default();
    for file in e.rules.sources().files() {
        if file.path != config.path {
            sources.add(file.name.clone(), &file.path, file.text.clone());
        }
    }
    sources.add(
        "(the rule pasted in the console)",
        std::path::Path::new("console"),
        yaml,
    );
    let schema = crate::directory::Schema::from_config(&config.directory);
    let rules = crate::rules::check_sources(
        sources,
        &crate::rules::Context::from_config(config, &schema),
    )
    .map_err(|err| err.to_string())?;
    let id = rules
        .lookup(&name)
        .ok_or_else(|| "the previewed group was not checked".to_string())?;
    let evaluation = crate::engine::evaluate(&e.snapshot, &rules, e.evaluation.as_of);
    let members = evaluation.members(id);
    Ok(Preview {
        members: members.count_ones(..),
        workers: e.snapshot.len(),
        as_of: e.evaluation.as_of.to_string(),
        snapshot: e.snapshot_id,
        sample: members
            .ones()
            .take(PREVIEW_SAMPLE)
            .map(|w| (e.snapshot.key(w).to_string(), e.snapshot.label(w)))
            .collect(),
    })
}
