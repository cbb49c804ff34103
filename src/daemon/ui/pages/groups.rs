//! `/groups`, a group's page, and who was in it on a date.

use super::*;

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
    let search = q.q.as_deref().map(str::trim).filter(|s| !s.is_empty());
    let body = group_body(&shared, &rules, id, page_of(&q), search).await?;
    Ok(page(&format!("Group {name}"), &person, body).into_response())
}

pub(super) async fn group_body(
    shared: &crate::daemon::Shared,
    rules: &crate::rules::RuleSet,
    id: crate::rules::GroupId,
    page_no: usize,
    search: Option<&str>,
) -> Result<Markup, PageError> {
    let g = rules.group(id);
    let (location, definition) = rules.definition(id);
    let store = &shared.store;
    let config = shared.config();
    let now = crate::clock::now_utc();
    let workers = shared.worker_ids().await?;
    let desired = store.group_state(&g.name).await?;
    let members = desired.keyed(&workers)?;
    let evaluated = crate::daemon::evaluated(shared).await?;
    let entries = entries_by_key(g, evaluated.as_deref());
    let history = store.group_deltas(&g.name, None).await?;
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
            .await?
            .into_iter()
            .map(|p| (p.target.clone(), p))
            .collect();
    let targets = push_rows(shared, g, &desired.members, &workers, &model).await?;
    // The pushes of this group a hold keeps back, one per target at most.
    let holds: Vec<&crate::store::PushHold> =
        model.values().filter_map(|p| p.hold.as_ref()).collect();
    let total = members.len();
    let first = (page_no - 1) * MEMBERS_PER_PAGE;
    let base = format!("/groups/{}", seg(&g.name));
    // The members whose key, name or email holds the search, without case.
    let needle = search.map(str::to_lowercase);
    let shown: Vec<(&String, &crate::store::Membership)> = members
        .iter()
        .filter(|(key, _)| {
            needle.as_ref().is_none_or(|n| {
                label_of(evaluated.as_deref(), key)
                    .to_lowercase()
                    .contains(n.as_str())
            })
        })
        .collect();
    let listed = match search {
        Some(s) => format!("{base}?q={}", crate::http::encode(s)),
        None => base.clone(),
    };
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
        (push_table(&targets))
        h2 { "Members" }
        @if total == 0 {
            p.muted { "No members." }
        } @else {
            form.search method="get" action=(base) {
                input type="search" name="q" value=(search.unwrap_or("")) placeholder="Name, email or key" aria-label="Search the members";
                " " button type="submit" { "Search" }
                @if search.is_some() { " " a href=(base) { "All members" } }
                " " a.export href=(format!("{base}/members.csv")) download { "Export CSV" }
            }
            @if let Some(s) = search {
                p.muted { (thousands(shown.len() as u64)) " of " (thousands(total as u64)) " members match " code { (s) } "." }
            }
            table {
                tr { th { "Worker" } th { "Reason" } th { "Ticket" } th { "Expires" } th.n { "Since run" } }
                @for (key, m) in shown.iter().copied().skip(first).take(MEMBERS_PER_PAGE) {
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
            (pager(&listed, page_no, MEMBERS_PER_PAGE, shown.len()))
        }
        h2 { "History" }
        (on_date_form(&base))
        (size_chart(&points))
        (history_table(&history))
    })
}

/// A group's person entries (include and member) by the key of the worker each names in
/// the snapshot in force: a member's ticket and expiry.
fn entries_by_key<'a>(
    g: &'a crate::rules::Group,
    evaluated: Option<&'a crate::daemon::Evaluated>,
) -> BTreeMap<&'a str, &'a crate::rules::PersonEntry> {
    let mut entries = BTreeMap::new();
    if let Some(e) = evaluated {
        for entry in g.include.iter().chain(&g.members) {
            if let Some(w) = crate::engine::resolve(&entry.who, &e.snapshot) {
                entries.insert(e.snapshot.key(w), entry);
            }
        }
    }
    entries
}

/// One push of a group, as its page shows it.
pub(super) struct PushRow<'g> {
    push: &'g crate::rules::Push,
    linked: Option<crate::store::TargetGroup>,
    confirmed: usize,
    joins: u64,
    leaves: u64,
    without: Vec<String>,
    error: Option<crate::store::OutboxEntry>,
    read: crate::push::status::Verification,
}

/// Each push of group `g`: the group linked in the target, what the target confirmed, what
/// is not sent yet, who has no account there, its last error and its last read back.
pub(super) async fn push_rows<'g>(
    shared: &crate::daemon::Shared,
    g: &'g crate::rules::Group,
    desired: &roaring::RoaringBitmap,
    workers: &crate::store::WorkerIds,
    model: &BTreeMap<String, crate::push::status::GroupPush>,
) -> Result<Vec<PushRow<'g>>, PageError> {
    let store = &shared.store;
    let unprovisioned = store.unprovisioned().await?;
    let mut rows = Vec::new();
    for push in &g.push {
        let linked = store.target_groups(&push.target).await?.remove(&g.name);
        let confirmed = store.target_set(&push.target, &g.name).await?;
        let without: Vec<String> = unprovisioned
            .iter()
            .filter(|u| u.target == push.target && u.group == g.name)
            .map(|u| u.worker_key.clone())
            .collect();
        // Workers without an account are listed apart, as `rosterd status` lists them.
        let without_ids: roaring::RoaringBitmap =
            without.iter().filter_map(|k| workers.id(k)).collect();
        let (joins, leaves) = confirmed.unsent(desired, &without_ids);
        rows.push(PushRow {
            push,
            linked,
            confirmed: confirmed.len(),
            joins: joins.len(),
            leaves,
            without,
            error: store.last_failure(&push.target, &g.name).await?,
            // What its last read back found, as `rosterd status` says it.
            read: model
                .get(&push.target)
                .map_or(crate::push::status::Verification::NotInTarget, |p| {
                    p.status.verification.clone()
                }),
        });
    }
    Ok(rows)
}

/// The pushes of a group, a row each.
pub(super) fn push_table(targets: &[PushRow<'_>]) -> Markup {
    html! {
    @if targets.is_empty() {
        p.muted { "This group is not pushed." }
    } @else {
        table {
            tr { th { "Target" } th { "Group in the target" } th.n { "Confirmed" } th.n { "To join" } th.n { "To leave" } th { "Without an account" } th { "Last push" } th { "Read back" } th { "Last error" } }
            @for PushRow { push, linked, confirmed, joins, leaves, without, error, read } in targets {
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
                        (without.len()) ": " (without.iter().take(5).map(String::as_str).collect::<Vec<_>>().join(", "))
                        @if without.len() > 5 { ", …" }
                    } }
                    td { (when(&linked.as_ref().and_then(|t| t.pushed_at.clone()).unwrap_or_else(|| "-".into()))) }
                    td { @match read {
                        crate::push::status::Verification::Current { outcome: crate::store::VerifyState::Drifted, .. } => span.bad { (read.text()) },
                        crate::push::status::Verification::Current { .. } => span.ok { (read.text()) },
                        _ => span.warn { (read.text()) },
                    } }
                    td { @match error {
                        Some(f) => span.bad { (f.http_status.map(|s| s.to_string()).unwrap_or_default()) " " (f.detail.as_deref().unwrap_or("")) " (" (when(f.finished_at.as_deref().unwrap_or(&f.created_at))) ")" },
                        None => span.muted { "none" },
                    } }
                }
            }
        }
    }
    }
}

/// A worker's key, name and email as the snapshot in force has them; the key alone for a
/// worker it no longer has.
pub(super) fn label_of(evaluated: Option<&crate::daemon::Evaluated>, key: &str) -> String {
    evaluated
        .and_then(|e| e.snapshot.by_key(key).map(|w| e.snapshot.label(w)))
        .unwrap_or_else(|| key.to_string())
}

/// A group the rules in force no longer define: its audit stays readable (its history, and
/// who was in it on a date); a name the audit never had is not a group.
pub(super) async fn removed_group(
    shared: &crate::daemon::Shared,
    person: &Person,
    name: &str,
) -> PageResult {
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
pub(super) fn on_date_form(base: &str) -> Markup {
    html! {
        form method="get" action=(format!("{base}/on")) {
            label { "Who was a member on " input type="date" name="date" required; }
            " " button type="submit" { "Show" }
        }
    }
}

/// A group's joins and leaves per run, the newest 30.
pub(super) fn history_table(history: &[(i64, String, crate::store::GroupDelta)]) -> Markup {
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
        return Ok(crate::daemon::ui::html::error_page(
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
    let evaluated = crate::daemon::evaluated(&shared).await?;
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
            @if !members.is_empty() {
                " " a.export href=(format!("/groups/{}/on.csv?date={date}", seg(&name))) download { "Export CSV" }
            }
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

/// `/groups/{name}/members.csv`: the group's members as the store holds them, one row each:
/// key, name, email, reason, the run they joined in, and a person entry's ticket and expiry.
pub async fn group_csv(State(shared): State<Ui>, Path(name): Path<String>) -> PageResult {
    let rules = shared.rules();
    let Some(id) = rules.lookup(&name) else {
        return Ok(StatusCode::NOT_FOUND.into_response());
    };
    let g = rules.group(id);
    let workers = shared.worker_ids().await?;
    let members = shared.store.group_state(&g.name).await?.keyed(&workers)?;
    let evaluated = crate::daemon::evaluated(&shared).await?;
    let entries = entries_by_key(g, evaluated.as_deref());
    let rows = members.iter().map(|(key, m)| {
        let entry = entries.get(key.as_str());
        vec![
            m.reason.clone(),
            m.since_run.to_string(),
            entry.and_then(|e| e.ticket.clone()).unwrap_or_default(),
            entry
                .and_then(|e| e.expires)
                .map(|d| d.to_string())
                .unwrap_or_default(),
        ]
    });
    let keys: Vec<&str> = members.keys().map(String::as_str).collect();
    csv_response(
        &format!("{name}-members.csv"),
        &["reason", "since_run", "ticket", "expires"],
        evaluated.as_deref(),
        &keys,
        rows,
    )
}

/// `/groups/{name}/on.csv?date=YYYY-MM-DD`: who was in the group on the date, as the
/// page of that date lists them.
pub async fn group_on_csv(
    State(shared): State<Ui>,
    Path(name): Path<String>,
    Query(q): Q,
) -> PageResult {
    let raw = q.date.as_deref().unwrap_or("").trim();
    let Ok(date) = chrono::NaiveDate::parse_from_str(raw, "%Y-%m-%d") else {
        return Ok((
            StatusCode::BAD_REQUEST,
            format!("date: `{raw}` is not a date; give it as YYYY-MM-DD\n"),
        )
            .into_response());
    };
    if shared.rules().lookup(&name).is_none()
        && !shared.store.audited_groups().await?.contains(&name)
    {
        return Ok(StatusCode::NOT_FOUND.into_response());
    }
    let workers = shared.worker_ids().await?;
    let members = shared
        .store
        .group_state_at(&name, date)
        .await?
        .keyed(&workers)?;
    let evaluated = crate::daemon::evaluated(&shared).await?;
    let keys: Vec<&str> = members.keys().map(String::as_str).collect();
    let rows = members
        .values()
        .map(|m| vec![m.reason.clone(), m.since_run.to_string()]);
    csv_response(
        &format!("{name}-on-{date}.csv"),
        &["reason", "since_run"],
        evaluated.as_deref(),
        &keys,
        rows,
    )
}

/// A CSV file of workers (`keys`, each with its name and email from the snapshot in force)
/// and their `columns`, offered for download as `file`.
fn csv_response(
    file: &str,
    columns: &[&str],
    evaluated: Option<&crate::daemon::Evaluated>,
    keys: &[&str],
    rows: impl Iterator<Item = Vec<String>>,
) -> PageResult {
    let mut out = csv::Writer::from_writer(Vec::new());
    let header = ["key", "name", "email"].iter().chain(columns);
    out.write_record(header)?;
    for (key, row) in keys.iter().zip(rows) {
        let worker = evaluated.and_then(|e| Some((e, e.snapshot.by_key(key)?)));
        let name = worker
            .and_then(|(e, w)| e.snapshot.name(w))
            .unwrap_or_default();
        let email = worker
            .and_then(|(e, w)| e.snapshot.email(w).map(str::to_string))
            .unwrap_or_default();
        let mut record = vec![key.to_string(), name, email];
        record.extend(row);
        out.write_record(&record)?;
    }
    let body = out.into_inner()?;
    let disposition = format!(
        "attachment; filename=\"{}\"",
        file.replace(
            |c: char| !c.is_ascii_alphanumeric() && !"-._".contains(c),
            "_"
        )
    );
    Ok((
        [
            (
                axum::http::header::CONTENT_TYPE,
                "text/csv; charset=utf-8".to_string(),
            ),
            (axum::http::header::CONTENT_DISPOSITION, disposition),
        ],
        body,
    )
        .into_response())
}
