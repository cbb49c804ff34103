//! `rosterd plan`: what the rules make of the export. Offline for now: member counts per group,
//! or one group's members.

use std::fmt::Write as _;

use super::{print, print_json, CliError, Format, Global, Workspace};

pub fn plan(global: &Global, group: Option<&str>) -> Result<(), CliError> {
    let ws = Workspace::load(global)?;
    let as_of = global.as_of();
    let evaluation = ws.evaluate(as_of);
    if let Some(name) = group {
        return group_members(&ws, &evaluation, ws.group(name)?, global.format);
    }
    let groups = ws.rules.groups();
    if global.format == Format::Json {
        let rows: Vec<serde_json::Value> = groups
            .iter()
            .enumerate()
            .map(|(g, group)| {
                serde_json::json!({
                    "name": group.name,
                    "kind": group.kind,
                    "members": evaluation.members(g).count_ones(..),
                    "push": group.push,
                })
            })
            .collect();
        return print_json(&serde_json::json!({
            "as_of": as_of.to_string(),
            "source": ws.report.source,
            "workers": ws.snapshot.len(),
            "eligible": evaluation.eligible().count_ones(..),
            "groups": rows,
        }));
    }
    let mut out = format!(
        "{} workers ({} eligible) from {}; {} groups; as of {as_of}\n\n",
        ws.snapshot.len(),
        evaluation.eligible().count_ones(..),
        ws.report.source,
        groups.len()
    );
    let width = groups
        .iter()
        .map(|g| g.name.len())
        .max()
        .unwrap_or(5)
        .max(5);
    let _ = writeln!(
        out,
        "{:<width$}  {:<7}  {:>7}  PUSH",
        "GROUP", "KIND", "MEMBERS"
    );
    let mut total = 0;
    for (g, group) in groups.iter().enumerate() {
        let count = evaluation.members(g).count_ones(..);
        total += count;
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
        let _ = writeln!(
            out,
            "{:<width$}  {:<7}  {count:>7}  {}",
            group.name,
            group.kind.to_string(),
            push.join(", ")
        );
    }
    let _ = writeln!(out, "\n{} groups, {total} memberships", groups.len());
    if !ws.report.issues.is_empty() {
        let _ = writeln!(
            out,
            "{} issues in the export: run `rosterd check` to see them",
            ws.report.issues.len()
        );
    }
    print(&out)
}

fn group_members(
    ws: &Workspace,
    evaluation: &crate::engine::Evaluation,
    g: usize,
    format: Format,
) -> Result<(), CliError> {
    let group = ws.rules.group(g);
    let mut members: Vec<usize> = evaluation.members(g).ones().collect();
    members.sort_by(|&a, &b| ws.snapshot.key(a).cmp(ws.snapshot.key(b)));
    if format == Format::Json {
        let rows: Vec<serde_json::Value> = members
            .iter()
            .map(|&w| serde_json::json!({"key": ws.snapshot.key(w), "email": ws.snapshot.email(w)}))
            .collect();
        return print_json(&serde_json::json!({
            "group": group.name,
            "kind": group.kind,
            "as_of": evaluation.as_of.to_string(),
            "count": members.len(),
            "members": rows,
        }));
    }
    let mut out = format!(
        "{} ({}): {} members as of {}\n",
        group.name,
        group.kind,
        members.len(),
        evaluation.as_of
    );
    for w in members {
        let _ = writeln!(out, "  {}", ws.snapshot.label(w));
    }
    print(&out)
}
