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
        config: std::sync::Arc::clone(&ws.config),
        rules: std::sync::Arc::clone(&ws.rules),
        as_of: global.as_of(),
        now: crate::clock::now_utc(),
        kind: "evaluate",
    };
    let outcome = with_store(&ws.config, async |store| {
        cycle::run_once(&inputs, store)
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
                compared,
            } => {
                let mut s = format!(
                    "run {run_id}: {added} joined, {removed} left; {memberships} memberships in {} groups (snapshot {})\n",
                    ws.rules.groups().len(),
                    snapshot_id.map_or_else(|| "-".into(), |s| s.to_string())
                );
                if let Some(n) = compared {
                    let _ = writeln!(
                        s,
                        "compared the {n} workers the export's change could reach with the stored memberships"
                    );
                }
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

/// A group named on the command line must be one the rules define or the audit holds (a
/// group the rules no longer define keeps its history); whether the rules define it.
async fn known_group(
    rules: Option<&crate::rules::RuleSet>,
    store: &crate::store::Store,
    group: &str,
) -> Result<bool, CliError> {
    let in_rules = rules.is_some_and(|r| r.lookup(group).is_some());
    // Every group the audit has a change of: a group the rules dropped has no members left,
    // and its past is what an auditor asks about.
    let audited = store.audited_groups().await?;
    if in_rules || audited.contains(group) {
        return Ok(in_rules);
    }
    let mut names: std::collections::BTreeSet<&str> = audited.iter().map(String::as_str).collect();
    if let Some(rules) = rules {
        names.extend(rules.names());
    }
    let mut message = format!("no group `{group}` in the rules or the audit");
    if let Some(best) = crate::rules::diagnostic::did_you_mean(group, names.iter().copied()) {
        let _ = write!(message, "\nhelp: did you mean `{best}`?");
    }
    Err(CliError::Usage(message))
}

/// The worker key an audit question names: a key the audit knows, or a key or email (any
/// case) of a worker in the snapshot in force. Anything else is an error with the nearest
/// name, never an empty answer: "was not a member" about a worker rosterd never heard of would
/// be a false audit answer.
pub async fn audited_worker(
    store: &crate::store::Store,
    snapshot: Option<&crate::directory::Snapshot>,
    asked: &str,
) -> Result<String, CliError> {
    if store.worker_id(asked).await?.is_some() {
        return Ok(asked.to_string());
    }
    if let Some((s, w)) = snapshot.and_then(|s| Some((s, s.find(asked)?))) {
        return Ok(s.key(w).to_string());
    }
    let mut message = format!("no worker `{asked}` in the audit or the snapshot in force");
    if let Some(s) = snapshot {
        let names = (0..s.len()).flat_map(|w| {
            let email = s.email(w);
            std::iter::once(s.key(w)).chain(email)
        });
        if let Some(best) = crate::rules::diagnostic::did_you_mean(asked, names) {
            let _ = write!(message, "\nhelp: did you mean `{best}`?");
        }
    }
    message.push_str("\nhelp: name a worker by key or by email");
    Err(CliError::Usage(message))
}

/// The workers of the snapshot in force, for their names; `None` before the first run.
async fn stored_snapshot(
    config: &crate::config::Config,
    store: &crate::store::Store,
) -> Result<Option<crate::directory::Snapshot>, CliError> {
    let Some(current) = store.current_snapshot().await? else {
        return Ok(None);
    };
    let rows = store.snapshot_workers(current.id).await?;
    let schema = std::sync::Arc::new(crate::directory::Schema::from_config(&config.directory));
    Ok(crate::directory::Snapshot::from_rows_json(schema, &rows).ok())
}

/// `KEY  Name Surname` when the snapshot in force knows the worker; the key otherwise (a
/// worker who left).
fn who(snapshot: Option<&crate::directory::Snapshot>, key: &str) -> String {
    let name = snapshot
        .and_then(|s| Some((s, s.by_key(key)?)))
        .and_then(|(s, w)| s.name(w));
    match name {
        Some(name) => format!("{key}  {name}"),
        None => key.to_string(),
    }
}

pub fn members(global: &Global, group: &str) -> Result<(), CliError> {
    let (config, rules) = super::config_and_rules(global)?;
    let (members, in_rules, snapshot) = with_store(&config, async |store| {
        let in_rules = known_group(rules.as_ref(), store, group).await?;
        let members = store.group_memberships(group).await?;
        let snapshot = stored_snapshot(&config, store).await?;
        Ok((members, in_rules, snapshot))
    })?;
    if global.format == Format::Json {
        return print_json(
            &serde_json::json!({ "group": group, "count": members.len(), "members": members }),
        );
    }
    let mut out = format!(
        "{group}: {}\n",
        crate::text::count(members.len() as u64, "member")
    );
    for (key, m) in &members {
        let _ = writeln!(
            out,
            "  {}  {}  since run {}",
            who(snapshot.as_ref(), key),
            m.reason,
            m.since_run
        );
    }
    if members.is_empty() {
        out.push_str(if in_rules {
            "no run has stored members of it: `rosterd evaluate` records one; `rosterd plan --group GROUP` shows what the rules say now\n"
        } else {
            "the rules no longer define it; `rosterd history` shows who was in it\n"
        });
    }
    print(&out)
}

pub fn history(
    global: &Global,
    group: &str,
    worker: Option<&str>,
    at: Option<NaiveDate>,
) -> Result<(), CliError> {
    let (config, rules) = super::config_and_rules(global)?;
    let at = at.unwrap_or_else(|| global.as_of());
    let (members, timeline, snapshot, worker, held) = with_store(&config, async |store| {
        known_group(rules.as_ref(), store, group).await?;
        let snapshot = stored_snapshot(&config, store).await?;
        let worker = match worker {
            Some(w) => Some(audited_worker(store, snapshot.as_ref(), w).await?),
            None => None,
        };
        let members = store.members_at(group, at).await?;
        let timeline = match &worker {
            Some(w) => Some(store.worker_history(group, w).await?),
            None => None,
        };
        let held = store.holds_on(group, &at.to_string()).await?;
        Ok((members, timeline, snapshot, worker, held))
    })?;
    let worker = worker.as_deref();
    if global.format == Format::Json {
        return print_json(&serde_json::json!({
            "group": group,
            "at": at.to_string(),
            "worker": worker,
            "member": worker.map(|w| members.contains_key(w)),
            "members": if worker.is_some() { serde_json::Value::Null } else { serde_json::json!(members) },
            "timeline": timeline,
            "held_pushes": held,
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
            let _ = writeln!(
                out,
                "{} was {state} of {group} on {at}",
                who(snapshot.as_ref(), w)
            );
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
            let _ = writeln!(
                out,
                "{group} on {at}: {}",
                crate::text::count(members.len() as u64, "member")
            );
            for (key, reason) in &members {
                let _ = writeln!(out, "  {}  [{reason}]", who(snapshot.as_ref(), key));
            }
        }
    }
    // The rules' members are not what a target held while its push was held.
    for h in &held {
        let _ = writeln!(
            out,
            "note: {}",
            crate::push::hold::on_date_note(h, &at.to_string())
        );
    }
    print(&out)
}

pub fn runs(global: &Global, limit: i64) -> Result<(), CliError> {
    let config = load_config(&global.config)?;
    let (runs, holds) = with_store(&config, async |store| {
        Ok((store.runs_told(limit).await?, store.push_holds(None).await?))
    })?;
    if global.format == Format::Json {
        return print_json(&serde_json::to_value(&runs).map_err(|e| CliError::Output(e.into()))?);
    }
    let mut out = format!(
        "{:>5}  {:<26}  {:<9}  {:<10}  {:<25}  {:>8}  {:>6}  {:>6}  {:>8}  {:<18}  MESSAGE\n",
        "RUN",
        "OUTCOME",
        "KIND",
        "AS OF",
        "STARTED",
        "SNAPSHOT",
        "ADDED",
        "LEFT",
        "MEMBERS",
        "RULES"
    );
    for r in &runs {
        // Why the run ended as it did, else what its evaluation said.
        let message = r
            .outcome_reason
            .as_deref()
            .or(r.message.as_deref())
            .and_then(|m| m.lines().next())
            .unwrap_or("-");
        let snapshot = r
            .snapshot_id
            .map_or_else(|| "-".to_string(), |s| s.to_string());
        // The rules folder's commit (short; `-dirty` kept), else the files' digest.
        let rules = match (&r.rules_commit, &r.rules_digest) {
            (Some(c), _) => match c.strip_suffix("-dirty") {
                Some(c) => format!("{}-dirty", c.get(..12).unwrap_or(c)),
                None => c.get(..12).unwrap_or(c).to_string(),
            },
            (None, Some(d)) => format!("sha256:{}", d.get(..8).unwrap_or(d)),
            (None, None) => "-".to_string(),
        };
        let _ = writeln!(
            out,
            "{:>5}  {:<26}  {:<9}  {:<10}  {:<25}  {snapshot:>8}  {:>6}  {:>6}  {:>8}  {rules:<18}  {message}",
            r.id,
            r.outcome.as_str(),
            r.kind,
            r.as_of,
            r.started_at.get(..25).unwrap_or(&r.started_at),
            r.added,
            r.removed,
            r.memberships
        );
    }
    // Who released held pushes in the time these runs cover (the console records the
    // person signed in, the CLI the operating-system user).
    let since = runs.last().map_or("", |r| r.started_at.as_str());
    let approved: Vec<_> = holds
        .iter()
        .filter(|h| h.approved_at.as_deref().is_some_and(|a| a >= since))
        .collect();
    if !approved.is_empty() {
        out.push_str("\npush holds approved:\n");
        for h in approved {
            let _ = writeln!(
                out,
                "  hold {} {} in {} (+{} -{}) approved {} by {}: {}",
                h.id,
                h.group,
                h.target,
                h.to_add,
                h.to_remove,
                h.approved_at.as_deref().unwrap_or(""),
                h.approved_by.as_deref().unwrap_or("unknown"),
                h.status
            );
        }
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
