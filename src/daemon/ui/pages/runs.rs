//! `/runs` and a run's page: its changes per group, one group's a page at a time.

use super::*;

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
