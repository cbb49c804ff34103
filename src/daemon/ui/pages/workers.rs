//! A worker's page: their HR record, their groups with why, the explain tree, and their
//! history.

use super::*;

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
    Ok(match crate::daemon::evaluated(&shared).await? {
        Some(e) => match e.snapshot.find(&wanted) {
            Some(w) => redirect(&format!("/workers/{}", seg(e.snapshot.key(w)))),
            None => no_worker(&person, &wanted),
        },
        None => no_snapshot(&person),
    })
}

pub(super) fn no_group(person: &Person, name: &str) -> Response {
    page(
        "No such group",
        person,
        html! { p { "The rules in force have no group " code { (name) } "." } },
    )
    .with_status(StatusCode::NOT_FOUND)
}

pub(super) fn no_worker(person: &Person, wanted: &str) -> Response {
    page(
        "No such worker",
        person,
        html! { p { "The snapshot in force has no worker with the key or email " code { (wanted) } "." } },
    )
    .with_status(StatusCode::NOT_FOUND)
}

pub(super) fn no_snapshot(person: &Person) -> Response {
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
    let e = match crate::daemon::evaluated(&shared).await? {
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
        h2 { "HR record" }
        (hr_record(&e.snapshot, w))
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

/// The worker's row of the snapshot in force, every attribute the config reads, as the HR
/// export gave it; the manager links to their page.
fn hr_record(snapshot: &crate::directory::Snapshot, w: crate::directory::WorkerId) -> Markup {
    let schema = snapshot.schema();
    let manager = schema.manager();
    html! {
        table.record {
            @for (id, attr) in schema.attrs().iter().enumerate() {
                tr {
                    th { (attr.name) }
                    td {
                        @match (snapshot.get(id, w), Some(id) == manager) {
                            (None, _) => span.muted { "(empty)" },
                            (Some(_), true) => @match snapshot.manager(w) {
                                Some(m) => a href=(format!("/workers/{}", seg(snapshot.key(m)))) { (snapshot.label(m)) },
                                None => { (shown(snapshot.get(id, w))) " " span.muted { "(not in the export)" } },
                            },
                            (Some(_), false) => (shown(snapshot.get(id, w))),
                        }
                    }
                }
            }
        }
    }
}

/// A value as the export had it: text without quotes, a list comma-separated.
pub(super) fn shown(value: Option<&crate::directory::Value>) -> String {
    use crate::directory::Value;
    match value {
        None => String::new(),
        Some(Value::Str(s)) => s.clone(),
        Some(Value::List(items)) => items.join(", "),
        Some(other) => other.to_string(),
    }
}

/// The explain tree as `rosterd explain` gives it, as nested lists.
pub(super) fn explanation(x: &crate::engine::Explanation) -> Markup {
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

pub(super) fn node(n: &Node) -> Markup {
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
