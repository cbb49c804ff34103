//! `rosterd plan`: what the rules would change, against the stored state, like a terraform
//! plan: per group, who joins and who leaves, and why.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::{block_on, print, print_json, CliError, Format, Global, Workspace};
use crate::cycle;
use crate::store::Change;

/// Changes listed per group in text; JSON lists them all.
const SHOWN_PER_GROUP: usize = 50;

pub fn plan(global: &Global, group: Option<&str>) -> Result<(), CliError> {
    let ws = Workspace::load(global)?;
    let as_of = global.as_of();
    let evaluation = ws.evaluate(as_of);
    let only = group.map(|name| ws.group(name)).transpose()?;
    let (stored, base_run) = block_on(async {
        if !store_exists(ws.config.database.expose()) {
            // A plan reads; it does not create a database where there is none.
            return Ok((BTreeMap::new(), None));
        }
        // Read only: a plan neither migrates nor writes, so a CI job can run it with a
        // role that may only read the database.
        let store = crate::store::Store::connect(ws.config.database.expose())
            .await
            .map_err(|e| CliError::Invalid(e.to_string()))?;
        let stored = store.member_keys().await?;
        let runs = store.runs(1).await?;
        store.close().await;
        Ok::<_, CliError>((stored, runs.into_iter().next()))
    })?;
    let mut changes = cycle::changes(&ws.snapshot, &ws.rules, &evaluation, &stored);
    if let Some(g) = only {
        changes.retain(|c| c.group == ws.rules.group(g).name);
    }
    let mut by_group: BTreeMap<&str, Vec<&Change>> = BTreeMap::new();
    for c in &changes {
        by_group.entry(c.group.as_str()).or_default().push(c);
    }
    let label = |key: &str| {
        ws.snapshot
            .by_key(key)
            .map_or_else(|| key.to_string(), |w| ws.snapshot.label(w))
    };
    let groups: Vec<usize> = match only {
        Some(g) => vec![g],
        None => (0..ws.rules.groups().len()).collect(),
    };
    let joins = changes.iter().filter(|c| c.added).count();
    if global.format == Format::Json {
        let change_json = |c: &&Change| serde_json::json!({"key": c.worker, "label": label(&c.worker), "reason": c.reason});
        let rows: Vec<serde_json::Value> = groups
            .iter()
            .map(|&g| {
                let group = ws.rules.group(g);
                let mine = by_group
                    .get(group.name.as_str())
                    .cloned()
                    .unwrap_or_default();
                serde_json::json!({
                    "name": group.name,
                    "kind": group.kind,
                    "members": evaluation.members(g).count_ones(..),
                    "new": !stored.contains_key(&group.name),
                    "joins": mine.iter().filter(|c| c.added).map(change_json).collect::<Vec<_>>(),
                    "leaves": mine.iter().filter(|c| !c.added).map(change_json).collect::<Vec<_>>(),
                    "push": group.push,
                })
            })
            .collect();
        let removed: Vec<&str> = stored
            .keys()
            .filter(|n| ws.rules.lookup(n).is_none())
            .map(String::as_str)
            .collect();
        return print_json(&serde_json::json!({
            "as_of": as_of.to_string(),
            "source": ws.report.source,
            "workers": ws.snapshot.len(),
            "eligible": evaluation.eligible().count_ones(..),
            "base_run": base_run.as_ref().map(|r| r.id),
            "join": joins,
            "leave": changes.len() - joins,
            "groups": rows,
            "removed_groups": removed,
        }));
    }
    let mut out = format!(
        "{} workers ({} eligible) from {}; {} groups; as of {as_of}\n",
        ws.snapshot.len(),
        evaluation.eligible().count_ones(..),
        ws.report.source,
        ws.rules.groups().len()
    );
    let _ = match &base_run {
        Some(run) => writeln!(
            out,
            "compared with the stored state after run {} (as of {})\n",
            run.id, run.as_of
        ),
        None => writeln!(out, "compared with an empty store: every member joins\n"),
    };
    for (name, items) in &by_group {
        let (mark, note) = match ws.rules.lookup(name) {
            None => ("-", " (removed from the rules)".to_string()),
            Some(g) if !stored.contains_key(*name) => {
                ("+", format!(" ({}, new)", ws.rules.group(g).kind))
            }
            Some(g) => ("~", format!(" ({})", ws.rules.group(g).kind)),
        };
        let j = items.iter().filter(|c| c.added).count();
        let _ = writeln!(
            out,
            "{mark} {name}{note}: {j} join, {} leave",
            items.len() - j
        );
        for c in items.iter().take(SHOWN_PER_GROUP) {
            let _ = writeln!(
                out,
                "    {} {}  [{}]",
                if c.added { "+" } else { "-" },
                label(&c.worker),
                c.reason
            );
        }
        if items.len() > SHOWN_PER_GROUP {
            let _ = writeln!(
                out,
                "    ... and {} more (`--format json` lists all)",
                items.len() - SHOWN_PER_GROUP
            );
        }
    }
    if !by_group.is_empty() {
        out.push('\n');
    }
    members_table(&mut out, &ws, &evaluation, &groups);
    let _ = writeln!(
        out,
        "\nPlan: {joins} to join, {} to leave, in {} groups; {} groups unchanged.",
        changes.len() - joins,
        by_group.len(),
        groups
            .iter()
            .filter(|&&g| !by_group.contains_key(ws.rules.group(g).name.as_str()))
            .count()
    );
    if let Some(g) = only {
        let group = ws.rules.group(g);
        let mut members: Vec<usize> = evaluation.members(g).ones().collect();
        members.sort_by(|&a, &b| ws.snapshot.key(a).cmp(ws.snapshot.key(b)));
        let _ = writeln!(
            out,
            "\n{} ({}): {} members as of {as_of}",
            group.name,
            group.kind,
            members.len()
        );
        for w in members {
            let _ = writeln!(out, "  {}", ws.snapshot.label(w));
        }
    }
    if !ws.report.issues.is_empty() {
        let _ = writeln!(
            out,
            "{} issues in the export: run `rosterd check` to see them",
            ws.report.issues.len()
        );
    }
    print(&out)
}

/// Whether the database may hold state: a SQLite file that exists, or any server.
fn store_exists(url: &str) -> bool {
    match url.strip_prefix("sqlite://") {
        Some(file) => std::path::Path::new(file.split('?').next().unwrap_or(file)).exists(),
        None => true,
    }
}

fn members_table(
    out: &mut String,
    ws: &Workspace,
    evaluation: &crate::engine::Evaluation,
    groups: &[usize],
) {
    let width = groups
        .iter()
        .map(|&g| ws.rules.group(g).name.len())
        .max()
        .unwrap_or(5)
        .max(5);
    let _ = writeln!(
        out,
        "{:<width$}  {:<7}  {:>7}  PUSH",
        "GROUP", "KIND", "MEMBERS"
    );
    for &g in groups {
        let group = ws.rules.group(g);
        let push: Vec<String> = group
            .push
            .iter()
            .map(|p| {
                if p.active {
                    p.target.clone()
                } else {
                    format!("{} (inactive)", p.target)
                }
            })
            .collect();
        let count = evaluation.members(g).count_ones(..);
        let _ = writeln!(
            out,
            "{:<width$}  {:<7}  {count:>7}  {}",
            group.name,
            group.kind.to_string(),
            push.join(", ")
        );
    }
}
