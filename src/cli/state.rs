//! Commands over the stored state: `evaluate`, `members`, `history`, `runs`, `approve`,
//! `migrate`.

use std::fmt::Write as _;

use chrono::NaiveDate;

use super::{load_config, print, print_json, with_store, CliError, Format, Global, Workspace};
use crate::cycle::{self, Outcome};

/// Exit status of `evaluate` when the failsafe held the snapshot.
pub const HELD: u8 = 3;

/// Refreshes the snapshot, evaluates and records a run. Returns the exit status.
pub fn evaluate(global: &Global) -> Result<u8, CliError> {
    let ws = Workspace::load_rules_only(global)?;
    let inputs = cycle::Inputs {
        config: &ws.config,
        rules: &ws.rules,
        as_of: global.as_of(),
        now: crate::clock::now_utc(),
        kind: "evaluate",
    };
    let outcome = with_store(&ws.config, async |store| {
        cycle::run(&inputs, store)
            .await
            .map_err(|e| CliError::Invalid(e.to_string()))
    })?;
    if global.format == Format::Json {
        print_json(&serde_json::to_value(&outcome).map_err(|e| CliError::Output(e.into()))?)?;
    } else {
        let text = match &outcome {
            Outcome::Applied {
                run_id,
                snapshot_id,
                added,
                removed,
                memberships,
                warning,
                violations,
            } => {
                let mut s = format!(
                    "run {run_id}: {added} joined, {removed} left; {memberships} memberships in {} groups (snapshot {})\n",
                    ws.rules.groups().len(),
                    snapshot_id.map_or_else(|| "-".into(), |s| s.to_string())
                );
                if let Some(w) = warning {
                    let _ = writeln!(s, "warning: {w}");
                }
                s.push_str(&crate::engine::guardrails::render(violations));
                s
            }
            Outcome::Held { run_id, reason, .. } => {
                format!("run {run_id}: held, nothing changed: {reason}\n")
            }
        };
        print(&text)?;
    }
    Ok(match outcome {
        // A guardrail that holds is broken: the next push holds the groups involved.
        Outcome::Applied { violations, .. }
            if crate::engine::guardrails::any_holds(&violations) =>
        {
            HELD
        }
        Outcome::Applied { .. } => 0,
        Outcome::Held { .. } => HELD,
    })
}

pub fn migrate(global: &Global) -> Result<(), CliError> {
    let config = load_config(&global.config)?;
    with_store(&config, async |_| Ok(()))?;
    print(&format!("database `{}` is migrated\n", config.database))
}

pub fn members(global: &Global, group: &str) -> Result<(), CliError> {
    let config = load_config(&global.config)?;
    let members = with_store(&config, async |store| {
        let members = store.group_memberships(group).await?;
        Ok((!members.is_empty()).then_some(members))
    })?
    .ok_or_else(|| CliError::Usage(format!("no stored members of `{group}`\nhelp: `rosterd evaluate` records a run; `rosterd plan --group {group}` shows what the rules say now")))?;
    if global.format == Format::Json {
        return print_json(
            &serde_json::json!({ "group": group, "count": members.len(), "members": members }),
        );
    }
    let mut out = format!("{group}: {} members\n", members.len());
    for (key, m) in &members {
        let _ = writeln!(out, "  {key}  {}  since run {}", m.reason, m.since_run);
    }
    print(&out)
}

pub fn history(
    global: &Global,
    group: &str,
    worker: Option<&str>,
    at: Option<NaiveDate>,
) -> Result<(), CliError> {
    let config = load_config(&global.config)?;
    let at = at.unwrap_or_else(|| global.as_of());
    let (members, timeline) = with_store(&config, async |store| {
        let members = store.members_at(group, at).await?;
        let timeline = match worker {
            Some(w) => Some(store.worker_history(group, w).await?),
            None => None,
        };
        Ok((members, timeline))
    })?;
    if global.format == Format::Json {
        return print_json(&serde_json::json!({
            "group": group,
            "at": at.to_string(),
            "worker": worker,
            "member": worker.map(|w| members.contains_key(w)),
            "members": if worker.is_some() { serde_json::Value::Null } else { serde_json::json!(members) },
            "timeline": timeline,
        }));
    }
    let mut out = String::new();
    match (worker, timeline) {
        (Some(w), Some(timeline)) => {
            let state = if members.contains_key(w) {
                "a member"
            } else {
                "not a member"
            };
            let _ = writeln!(out, "{w} was {state} of {group} on {at}");
            for e in timeline {
                let verb = if e.added { "joined" } else { "left" };
                let _ = writeln!(
                    out,
                    "  {}  run {}  {verb}  [{}]",
                    e.as_of, e.run_id, e.reason
                );
            }
        }
        _ => {
            let _ = writeln!(out, "{group} on {at}: {} members", members.len());
            for (key, reason) in &members {
                let _ = writeln!(out, "  {key}  [{reason}]");
            }
        }
    }
    print(&out)
}

pub fn runs(global: &Global, limit: i64) -> Result<(), CliError> {
    let config = load_config(&global.config)?;
    let runs = with_store(&config, async |store| Ok(store.runs(limit).await?))?;
    if global.format == Format::Json {
        return print_json(&serde_json::to_value(&runs).map_err(|e| CliError::Output(e.into()))?);
    }
    let mut out = format!(
        "{:>5}  {:<9}  {:<10}  {:<25}  {:>8}  {:>6}  {:>6}  {:>8}  MESSAGE\n",
        "RUN", "STATUS", "AS OF", "STARTED", "SNAPSHOT", "ADDED", "LEFT", "MEMBERS"
    );
    for r in runs {
        let message = r
            .message
            .as_deref()
            .and_then(|m| m.lines().next())
            .unwrap_or("");
        let snapshot = r
            .snapshot_id
            .map_or_else(|| "-".to_string(), |s| s.to_string());
        let _ = writeln!(
            out,
            "{:>5}  {:<9}  {:<10}  {:<25}  {snapshot:>8}  {:>6}  {:>6}  {:>8}  {message}",
            r.id,
            r.status,
            r.as_of,
            r.started_at.get(..25).unwrap_or(&r.started_at),
            r.added,
            r.removed,
            r.memberships
        );
    }
    print(&out)
}

pub fn approve_snapshot(global: &Global, id: i64) -> Result<(), CliError> {
    let config = load_config(&global.config)?;
    let snapshot = with_store(&config, async |store| {
        store
            .approve_snapshot(id, &crate::clock::stamp(crate::clock::now_utc()))
            .await
            .map_err(super::named_record_error)
    })?;
    print(&format!(
        "approved snapshot {} ({} workers, {} eligible, from {}): the next run uses it\n",
        snapshot.id, snapshot.workers, snapshot.eligible, snapshot.source
    ))
}
