//! `push`, `sync`, `status`, `approve push` and `emulator`: getting groups into the targets
//! and seeing what is stuck.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::{
    load_config, print, print_json, with_store, CliError, Format, Global, Workspace, HELD,
};
use crate::cycle::{self, Outcome};
use crate::push::{self, Desired, Report};
use crate::store::{HoldStatus, OutboxStatus, Store};

/// Exit status when some pushes failed (the report says which).
pub const PUSH_FAILED: u8 = 4;

/// What `push` and `sync` take from the command line.
#[derive(Debug, Clone, Default)]
pub struct PushArgs {
    pub group: Option<String>,
    pub target: Option<String>,
    pub dry_run: bool,
    pub reconcile: bool,
}

/// Pushes the stored memberships (of the last `evaluate` or `sync`).
pub fn push(global: &Global, args: &PushArgs) -> Result<u8, CliError> {
    let ws = Workspace::load_rules_only(global)?;
    check_names(&ws.config, &ws.rules, args)?;
    let report = with_store(&ws.config, async |store| {
        let desired = Desired::from_store(store, &ws.config)
            .await
            .map_err(invalid)?;
        watched(args, async |options| {
            push::run(&ws.config, &ws.rules, &desired, store, options).await
        })
        .await
        .map_err(invalid)
    })?;
    show(global, &report, None, args.dry_run)?;
    Ok(exit_status(&report, false))
}

/// Refreshes the snapshot, evaluates, records and pushes: one full cycle. With `--dry-run`
/// nothing is recorded and no change is sent.
pub fn sync(global: &Global, args: &PushArgs) -> Result<u8, CliError> {
    if args.dry_run {
        return sync_dry_run(global, args);
    }
    let ws = Workspace::load_rules_only(global)?;
    check_names(&ws.config, &ws.rules, args)?;
    let inputs = cycle::Inputs {
        config: std::sync::Arc::clone(&ws.config),
        rules: std::sync::Arc::clone(&ws.rules),
        as_of: global.as_of(),
        now: crate::clock::now_utc(),
        // `runs` tells a reconcile from a plain sync, as the daemon's runs do.
        kind: if args.reconcile { "reconcile" } else { "sync" },
    };
    let (outcome, report) = with_store(&ws.config, async |store| {
        sync_with(&inputs, store, args).await
    })?;
    show(global, &report, Some(&outcome), false)?;
    Ok(exit_status(
        &report,
        match &outcome {
            Outcome::Held { .. } => true,
            Outcome::Applied { violations, .. } => crate::engine::guardrails::any_holds(violations),
        },
    ))
}

async fn sync_with(
    inputs: &cycle::Inputs<'_>,
    store: &Store,
    args: &PushArgs,
) -> Result<(Outcome, Report), CliError> {
    let outcome = cycle::run(inputs, store).await.map_err(invalid)?;
    // A held snapshot changes nothing; the stored state is still pushed, which repairs
    // anything the targets lost.
    let desired = Desired::from_store(store, &inputs.config)
        .await
        .map_err(invalid)?;
    let report = watched(args, async |options| {
        push::run(&inputs.config, &inputs.rules, &desired, store, options).await
    })
    .await
    .map_err(invalid)?;
    // The run's one account, as the daemon records it.
    push::Summary::of(Some(&outcome), &report)
        .record(store, outcome.run_id())
        .await?;
    Ok((outcome, report))
}

fn sync_dry_run(global: &Global, args: &PushArgs) -> Result<u8, CliError> {
    let ws = Workspace::load(global)?;
    check_names(&ws.config, &ws.rules, args)?;
    let evaluation = ws.evaluate(global.as_of());
    let rows = ws.snapshot.to_rows();
    let attributes = push::match_attributes(&ws.config);
    let report = with_store(&ws.config, async |store| {
        // The stored numbering, and new workers numbered in memory: nothing is stored.
        let mut desired = Desired::new(store.worker_ids().await?);
        for (g, group) in ws.rules.groups().iter().enumerate() {
            let members = evaluation
                .members(g)
                .ones()
                .map(|w| desired.number(ws.snapshot.key(w)))
                .collect();
            desired.members.insert(group.name.clone(), members);
        }
        for (key, json) in &rows {
            let id = desired.number(key);
            // A snapshot's rows are rosterd's own JSON.
            let _ = desired.set_values(id, json, &attributes);
        }
        watched(args, async |options| {
            push::run(&ws.config, &ws.rules, &desired, store, options).await
        })
        .await
        .map_err(invalid)
    })?;
    show(global, &report, None, args.dry_run)?;
    Ok(exit_status(&report, false))
}

fn options(args: &PushArgs) -> push::Options {
    push::Options {
        dry_run: args.dry_run,
        reconcile: args.reconcile,
        group: args.group.clone(),
        target: args.target.clone(),
        progress: (!args.dry_run).then(|| std::sync::Arc::new(push::Progress::default())),
    }
}

/// Runs a push with its progress on stderr while it lasts (see [`push::progress::Display`]).
async fn watched<F>(args: &PushArgs, push: F) -> Result<Report, push::PushError>
where
    F: AsyncFnOnce(&push::Options) -> Result<Report, push::PushError>,
{
    let options = options(args);
    let _display = options
        .progress
        .clone()
        .map(|p| push::progress::Display::start(p, std::time::Duration::from_secs(10)));
    push(&options).await
}

fn invalid(e: impl std::fmt::Display) -> CliError {
    CliError::Invalid(e.to_string())
}

fn check_names(
    config: &crate::config::Config,
    rules: &crate::rules::RuleSet,
    args: &PushArgs,
) -> Result<(), CliError> {
    if let Some(group) = &args.group {
        if rules.lookup(group).is_none() {
            let mut msg = format!("no group `{group}` in the rules");
            if let Some(best) = crate::rules::diagnostic::did_you_mean(group, rules.names()) {
                let _ = write!(msg, "\nhelp: did you mean `{best}`?");
            }
            return Err(CliError::Usage(msg));
        }
    }
    if let Some(target) = &args.target {
        if !config.targets.contains_key(target) {
            let mut msg = format!("no target `{target}` in the config");
            if let Some(best) = crate::rules::diagnostic::did_you_mean(
                target,
                config.targets.keys().map(String::as_str),
            ) {
                let _ = write!(msg, "\nhelp: did you mean `{best}`?");
            }
            return Err(CliError::Usage(msg));
        }
    }
    Ok(())
}

fn exit_status(report: &Report, snapshot_held: bool) -> u8 {
    if report.failed() > 0 {
        PUSH_FAILED
    } else if report.held() > 0 || snapshot_held {
        HELD
    } else {
        0
    }
}

fn show(
    global: &Global,
    report: &Report,
    outcome: Option<&Outcome>,
    dry_run: bool,
) -> Result<(), CliError> {
    if global.format == Format::Json {
        let value =
            serde_json::json!({ "dry_run": dry_run, "evaluation": outcome, "push": report });
        return print_json(&value);
    }
    let mut s = String::new();
    if dry_run {
        s.push_str(
            "dry run: nothing was recorded and nothing was sent; below are the changes and the write requests a sync would send\n",
        );
    }
    match outcome {
        Some(Outcome::Applied {
            run_id,
            added,
            removed,
            memberships,
            warning,
            violations,
            ..
        }) => {
            let _ = writeln!(
                s,
                "run {run_id}: {added} joined, {removed} left; {memberships} memberships"
            );
            if let Some(w) = warning {
                let _ = writeln!(s, "warning: {w}");
            }
            s.push_str(&crate::engine::guardrails::render(violations));
        }
        Some(Outcome::Held { run_id, reason, .. }) => {
            let _ = writeln!(
                s,
                "run {run_id}: the snapshot is held, the stored memberships are pushed: {reason}"
            );
        }
        None => {}
    }
    for t in &report.targets {
        let (added, removed): (usize, usize) = t
            .groups
            .iter()
            .fold((0, 0), |(a, r), p| (a + p.added, r + p.removed));
        let groups = crate::text::count(t.groups.len() as u64, "group");
        if dry_run {
            let planned: usize = t.groups.iter().map(|p| p.requests.len()).sum();
            let _ = write!(
                s,
                "{}: {groups}, +{added} -{removed} members; {} would be sent ({} made to plan them)",
                t.target,
                crate::text::count(planned as u64, "write request"),
                crate::text::count(t.reads, "read")
            );
        } else {
            let _ = write!(
                s,
                "{}: {groups}, +{added} -{removed} members; {} ({}, {}, {})",
                t.target,
                crate::text::count(t.reads + t.writes, "request"),
                crate::text::count(t.reads, "read"),
                crate::text::count(t.writes, "write"),
                crate::text::count_as(t.retries, "retry", "retries")
            );
            // Attempts are counted as sent; say when not one of them was served.
            if t.answered == 0 && t.reads + t.writes > 0 {
                s.push_str(", none of them served");
            }
        }
        if t.replayed > 0 {
            let _ = write!(s, "; {} outbox entries replayed", t.replayed);
        }
        if t.verified > 0 {
            let _ = write!(
                s,
                "; verified {} ({})",
                crate::text::count(t.verified as u64, "group"),
                crate::text::count(t.verify_reads, "read")
            );
        }
        s.push('\n');
        if let Some(reason) = &t.reset {
            let _ = writeln!(s, "  the whole target was verified: {reason}");
        }
        if let Some(e) = &t.error {
            let _ = writeln!(s, "  error: {e}");
        }
        for p in &t.groups {
            pair_text(&mut s, p);
        }
        let unprovisioned: usize = t.groups.iter().map(|p| p.unprovisioned).sum();
        if unprovisioned > 0 {
            let _ = writeln!(
                s,
                "  {unprovisioned} members have no account in {} (`rosterd status` lists them)",
                t.target
            );
        }
    }
    print(&s)
}

/// One pair's lines in a push's report; nothing for a pair with nothing to say.
fn pair_text(s: &mut String, p: &push::PairReport) {
    let quiet = p.added == 0
        && p.removed == 0
        && !p.renamed
        && p.action.is_none()
        && p.held.is_none()
        && p.error.is_none()
        && p.drift == 0
        && p.kept.is_empty()
        && p.requests.is_empty();
    if quiet {
        return;
    }
    let _ = write!(s, "  {} → \"{}\"", p.group, p.display_name);
    if let Some(a) = &p.action {
        let _ = write!(s, " {a}");
    }
    if p.added + p.removed > 0 {
        let _ = write!(s, " +{} -{}", p.added, p.removed);
    }
    if p.renamed {
        s.push_str(" renamed");
    }
    if p.drift > 0 {
        let _ = write!(
            s,
            " ({} found by reading it back)",
            crate::text::count(p.drift as u64, "difference")
        );
    }
    s.push('\n');
    if let Some(h) = &p.held {
        let _ = writeln!(s, "    held: {}", h.reason);
        if h.hold_id > 0 {
            let _ = writeln!(
                s,
                "    help: if this is right, run `rosterd approve push {}`",
                h.hold_id
            );
        }
    }
    if let Some(e) = &p.error {
        let _ = writeln!(s, "    error: {e}");
    }
    if !p.kept.is_empty() {
        let shown: Vec<&str> = p.kept.iter().take(5).map(String::as_str).collect();
        let more = p.kept.len().saturating_sub(shown.len());
        let _ = writeln!(
            s,
            "    kept, not managed by rosterd: {}{}",
            shown.join(", "),
            if more > 0 {
                format!(" and {more} more")
            } else {
                String::new()
            }
        );
    }
    for r in &p.requests {
        for line in r.lines() {
            let _ = writeln!(s, "    {line}");
        }
    }
}

/// Exit status of `status` when a connected target is not healthy (unreachable, or groups
/// not read back within `verify_every`, or drifted and not repaired).
pub const NOT_HEALTHY: u8 = 5;

/// What each target holds, what is stuck, and why. The exit status says whether every
/// connected target is healthy.
pub fn status(global: &Global) -> Result<u8, CliError> {
    // The rules say which groups are pushed where, including those never created in a
    // target yet; rules that do not load leave what the store knows.
    let (config, rules) = super::config_and_rules(global)?;
    let (value, model) = with_store(&config, async |store| {
        let model =
            push::status::targets(&config, rules.as_ref(), store, crate::clock::now_utc()).await?;
        Ok((
            status_value(&config, rules.as_ref(), store, &model).await?,
            model,
        ))
    })?;
    let code = if model
        .values()
        .all(|t| t.health.is_healthy() || t.health == push::status::Health::NotConnected)
    {
        0
    } else {
        NOT_HEALTHY
    };
    if global.format == Format::Json {
        print_json(&value)?;
        return Ok(code);
    }
    let mut s = String::new();
    for (name, t) in value.as_object().into_iter().flatten() {
        if let Some(m) = model.get(name) {
            target_text(&mut s, name, m, t);
        }
    }
    print(&s)?;
    Ok(code)
}

/// One target's part of `rosterd status`: `m` is the status model, `t` its JSON with what
/// only `status` adds (lookup, failures, unsent, unprovisioned, guardrails).
fn target_text(s: &mut String, name: &str, m: &push::status::TargetStatus, t: &serde_json::Value) {
    let _ = writeln!(s, "{name}: {}", m.health.text());
    if let Some(reason) = &m.seen.reset_reason {
        let _ = writeln!(
            s,
            "  last sign that it lost state ({}): {reason}; the whole target was verified",
            m.seen.reset_at.as_deref().unwrap_or("")
        );
    }
    if t["connected"].as_bool() == Some(true) {
        let _ = writeln!(s, "  user lookup: {}", lookup_text(&t["lookup"]));
        let _ = writeln!(
            s,
            "  verified: every group at least every {}",
            m.verify_every
        );
    }
    for g in &m.groups {
        let pushed = match &g.pushed_at {
            Some(at) => format!(", last pushed {at}"),
            None => String::new(),
        };
        let known = match &g.scim_id {
            Some(id) => format!(
                " ({id}): {} as last known",
                crate::text::count_as(g.members.max(0) as u64, "entry", "entries")
            ),
            None => String::new(),
        };
        let _ = writeln!(
            s,
            "  {} → \"{}\"{known}; {}{pushed}",
            g.group,
            g.display_name,
            g.verification.text(),
        );
    }
    for (group, u) in t["unsent"].as_object().into_iter().flatten() {
        let first: Vec<&str> = u["first"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|k| k.as_str())
            .collect();
        let _ = writeln!(
            s,
            "  {group}: {} and {} stored but not confirmed by the target{}",
            crate::text::count(u["joins"].as_u64().unwrap_or(0), "join"),
            crate::text::count(u["leaves"].as_u64().unwrap_or(0), "leave"),
            if first.is_empty() {
                String::new()
            } else {
                format!(" (joining: {})", first.join(", "))
            }
        );
    }
    let _ = writeln!(s, "  outbox: {} pending, {} failed", m.pending, m.failed);
    for e in t["failures"].as_array().into_iter().flatten() {
        let _ = writeln!(
            s,
            "    failed {} {} for {}: HTTP {} {}: {}",
            e["id"],
            e["action"].as_str().unwrap_or(""),
            e["group"].as_str().unwrap_or(""),
            e["http_status"],
            e["scim_type"].as_str().unwrap_or(""),
            e["detail"].as_str().unwrap_or("")
        );
    }
    for v in t["guardrails"].as_array().into_iter().flatten() {
        let effect = if v["hold"].as_bool() == Some(true) {
            "holds changes to"
        } else {
            "warns about"
        };
        let groups: Vec<&str> = v["groups"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|g| g.as_str())
            .collect();
        let _ = writeln!(
            s,
            "  guardrail `{}` is violated ({effect} {}): {}",
            v["guardrail"].as_str().unwrap_or(""),
            groups.join(", "),
            v["message"].as_str().unwrap_or("")
        );
    }
    for h in &m.holds {
        let status = match (h.status, &h.approved_by) {
            (HoldStatus::Approved, Some(by)) => format!(
                "approved by {by} at {}",
                h.approved_at.as_deref().unwrap_or("")
            ),
            (status, _) => status.to_string(),
        };
        let _ = writeln!(s, "  hold {} ({status}) on {}: {}", h.id, h.group, h.reason);
    }
    for (group, workers) in t["unprovisioned"].as_object().into_iter().flatten() {
        let list: Vec<String> = workers
            .as_array()
            .into_iter()
            .flatten()
            .map(|w| match w["match_value"].as_str() {
                Some(v) => format!("{} ({v})", w["worker_key"].as_str().unwrap_or("")),
                None => format!(
                    "{} (no value to match)",
                    w["worker_key"].as_str().unwrap_or("")
                ),
            })
            .collect();
        let _ = writeln!(
            s,
            "  {group}: {} without an account: {}",
            list.len(),
            list.join(", ")
        );
    }
}

/// Whether any of `groups` is pushed to `target` (any, when the rules are not known).
fn pushed_here(rules: Option<&crate::rules::RuleSet>, target: &str, groups: &[String]) -> bool {
    let Some(rules) = rules else {
        return true;
    };
    groups.iter().any(|g| {
        rules
            .lookup(g)
            .is_some_and(|id| rules.group(id).push.iter().any(|p| p.target == target))
    })
}

/// How the target's users are looked up: the configured mode, and with `auto` what was
/// learned about its filters and hence whether its users are listed or filtered.
fn lookup_value(
    target: &crate::config::TargetConfig,
    learned: Option<&crate::store::TargetLookup>,
) -> serde_json::Value {
    use crate::config::UserLookup;
    let attribute = target.user_attribute();
    let (mode, by) = match target.user_match.lookup {
        UserLookup::Auto => ("auto", None),
        UserLookup::Filter => ("filter", Some("filter")),
        UserLookup::List => ("list", Some("list")),
    };
    let learned = learned.filter(|l| l.attribute == attribute && mode == "auto");
    let by = by.or_else(|| learned.map(|l| if l.case_exact { "list" } else { "filter" }));
    serde_json::json!({
        "mode": mode,
        "attribute": attribute,
        "by": by,
        "case_exact": learned.map(|l| l.case_exact),
        "source": learned.map(|l| l.source.clone()),
        "checked_at": learned.map(|l| l.checked_at.clone()),
    })
}

/// `lookup` of `status` in words.
fn lookup_text(l: &serde_json::Value) -> String {
    let attribute = l["attribute"].as_str().unwrap_or("");
    match (l["mode"].as_str(), l["case_exact"].as_bool()) {
        (Some("auto"), Some(exact)) => {
            let source = match l["source"].as_str() {
                Some("schemas") => "the target's /Schemas says so",
                Some(crate::push::SCHEMAS_WRONG) => {
                    "found by probing, although its /Schemas says its filters ignore case"
                }
                _ => "found by probing",
            };
            format!(
                "auto: {} ({attribute} compares case-{}sensitively in its filters: {source}, {})",
                if exact { "lists the users" } else { "filters" },
                if exact { "" } else { "in" },
                l["checked_at"].as_str().unwrap_or("")
            )
        }
        (Some("auto"), None) => format!(
            "auto: not learned yet (how filters compare {attribute} is learned at the first lookup)"
        ),
        (mode, _) => format!("{} by {attribute} (configured)", mode.unwrap_or("")),
    }
}

/// Per pushed group of `target`: the joins and leaves the store holds that the target has
/// not confirmed (workers without an account there, `unprovisioned` by group, are listed
/// apart), from the sets.
async fn unsent(
    target: &str,
    rules: Option<&crate::rules::RuleSet>,
    state: &crate::store::MemberState,
    store: &Store,
    unprovisioned: &BTreeMap<&str, Vec<&crate::store::Unprovisioned>>,
) -> Result<serde_json::Map<String, serde_json::Value>, CliError> {
    let sets = store.target_sets(target).await?;
    let mut groups: std::collections::BTreeSet<String> = sets.keys().cloned().collect();
    for group in rules.map(|r| r.groups()).into_iter().flatten() {
        if group.push.iter().any(|p| p.target == target && p.active) {
            groups.insert(group.name.clone());
        }
    }
    let none = crate::store::Confirmed::default();
    let mut out = serde_json::Map::new();
    for group in groups {
        let members = state
            .group(&group)
            .map(|g| g.members.clone())
            .unwrap_or_default();
        let held = sets.get(&group).unwrap_or(&none);
        let without: roaring::RoaringBitmap = unprovisioned
            .get(group.as_str())
            .into_iter()
            .flatten()
            .filter_map(|u| state.workers.id(&u.worker_key))
            .collect();
        let (joins, leaves) = held.unsent(&members, &without);
        if joins.is_empty() && leaves == 0 {
            continue;
        }
        let first: Vec<&str> = joins
            .iter()
            .take(5)
            .filter_map(|id| state.workers.key(id))
            .collect();
        out.insert(
            group,
            serde_json::json!({ "joins": joins.len(), "leaves": leaves, "first": first }),
        );
    }
    Ok(out)
}

async fn status_value(
    config: &crate::config::Config,
    rules: Option<&crate::rules::RuleSet>,
    store: &Store,
    model: &BTreeMap<String, push::status::TargetStatus>,
) -> Result<serde_json::Value, CliError> {
    let state = store.member_state().await?;
    let failures = store.outbox(Some(OutboxStatus::Failed), 50).await?;
    let unprovisioned = store.unprovisioned().await?;
    let lookups = store.target_lookups().await?;
    let violations: Vec<crate::engine::guardrails::Violation> = store.current_violations().await?;
    let mut out = serde_json::Map::new();
    for (name, target) in &config.targets {
        let Some(m) = model.get(name) else { continue };
        let mut by_group: BTreeMap<&str, Vec<&crate::store::Unprovisioned>> = BTreeMap::new();
        for u in unprovisioned.iter().filter(|u| &u.target == name) {
            by_group.entry(&u.group).or_default().push(u);
        }
        let unsent = unsent(name, rules, &state, store, &by_group).await?;
        // The model as it is, with what only `status` shows added beside it.
        let mut value = serde_json::to_value(m).map_err(|e| CliError::Output(e.into()))?;
        if let Some(fields) = value.as_object_mut() {
            fields.extend([
                ("connected".into(), target.url.is_some().into()),
                ("healthy".into(), m.health.is_healthy().into()),
                (
                    "failures".into(),
                    serde_json::json!(failures
                        .iter()
                        .filter(|f| &f.target == name)
                        .collect::<Vec<_>>()),
                ),
                ("unprovisioned".into(), serde_json::json!(by_group)),
                ("unsent".into(), serde_json::Value::Object(unsent)),
                ("lookup".into(), lookup_value(target, lookups.get(name))),
                (
                    "guardrails".into(),
                    serde_json::json!(violations
                        .iter()
                        .filter(|v| pushed_here(rules, name, &v.groups))
                        .collect::<Vec<_>>()),
                ),
            ]);
        }
        out.insert(name.clone(), value);
    }
    Ok(serde_json::Value::Object(out))
}

/// `rosterd holds`: the pushes waiting for approval and those approved but not sent yet;
/// `rosterd holds ID`: who that push would remove and add, and why.
pub fn holds(global: &Global, id: Option<i64>) -> Result<(), CliError> {
    let config = load_config(&global.config)?;
    let Some(id) = id else {
        let open = with_store(&config, async |store| Ok(store.open_push_holds().await?))?;
        if global.format == Format::Json {
            return print_json(
                &serde_json::to_value(&open).map_err(|e| CliError::Output(e.into()))?,
            );
        }
        let mut s = String::new();
        for h in &open {
            let _ = writeln!(
                s,
                "hold {} ({}): {} → {}, +{} -{} of {} in the target, since {}: {}",
                h.id,
                h.status,
                h.group,
                h.target,
                h.to_add,
                h.to_remove,
                h.members_in_target,
                h.created_at,
                h.reason
            );
        }
        if open.is_empty() {
            s.push_str("no push is held\n");
        } else {
            s.push_str("`rosterd holds ID` lists who a push would remove and add, and why\n");
        }
        return print(&s);
    };
    let detail = with_store(&config, async |store| {
        let hold = store.push_hold(id).await?.ok_or_else(|| {
            CliError::Usage(format!(
                "no push hold {id}\nhelp: `rosterd holds` lists them"
            ))
        })?;
        Ok(push::hold::detail(store, &config, hold).await?)
    })?;
    if global.format == Format::Json {
        return print_json(&serde_json::to_value(&detail).map_err(|e| CliError::Output(e.into()))?);
    }
    let h = &detail.hold;
    let mut s = format!(
        "hold {} ({}): {} → {}: {}\n",
        h.id, h.status, h.group, h.target, h.reason
    );
    let list = |s: &mut String, what: &str, people: &[push::hold::Person]| {
        let _ = writeln!(s, "{what} ({}):", people.len());
        for p in people {
            let _ = writeln!(
                s,
                "  {}  {}  {}  {}  {}",
                p.key,
                p.name.as_deref().unwrap_or("-"),
                p.email.as_deref().unwrap_or("-"),
                p.department.as_deref().unwrap_or("-"),
                p.why
            );
        }
    };
    list(&mut s, "would leave", &detail.leaving);
    list(&mut s, "would join", &detail.joining);
    if !detail.other_entries.is_empty() {
        let _ = writeln!(
            s,
            "entries that are no worker's, which leave too: {}",
            detail.other_entries.join(", ")
        );
    }
    if h.status == HoldStatus::Held {
        let _ = writeln!(
            s,
            "help: if this is right, run `rosterd approve push {}`",
            h.id
        );
    }
    print(&s)
}

/// Who approves from the command line: `cli:` and the operating-system user.
fn approver() -> String {
    let user = ["USER", "LOGNAME"]
        .iter()
        .find_map(|v| std::env::var(v).ok().filter(|u| !u.is_empty()))
        .unwrap_or_else(|| "unknown".into());
    format!("cli:{user}")
}

pub fn approve_push(global: &Global, id: i64) -> Result<(), CliError> {
    let config = load_config(&global.config)?;
    let hold = with_store(&config, async |store| {
        store
            .approve_push_hold(
                id,
                &crate::clock::stamp(crate::clock::now_utc()),
                &approver(),
            )
            .await
            .map_err(super::named_record_error)
    })?;
    print(&format!(
        "approved push hold {} ({} in {}: +{} -{}) as {}: the next push sends it\n",
        hold.id,
        hold.group,
        hold.target,
        hold.to_add,
        hold.to_remove,
        hold.approved_by.as_deref().unwrap_or("")
    ))
}

/// Serves the SCIM emulator until interrupted. With `users_from_config`, every tenant starts
/// with one user per worker of the config's export who has an email.
pub fn emulator(
    global: &Global,
    listen: std::net::SocketAddr,
    users_from_config: bool,
    token_env: Option<&str>,
) -> Result<(), CliError> {
    use crate::scim::emulator::{Emulator, Options};
    let mut options = Options::default();
    if let Some(var) = token_env {
        let token = crate::secret::Secret::from_env(var)
            .ok_or_else(|| CliError::Usage(format!("environment variable `{var}` is not set")))?;
        options.token = Some(token.expose().to_string());
    }
    if users_from_config {
        let ws = Workspace::load(global)?;
        for w in 0..ws.snapshot.len() {
            if let Some(email) = ws.snapshot.email(w) {
                options.users.push(email.to_string());
            }
        }
    }
    let users = options.users.len();
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?
        .block_on(async {
            let emulator = Emulator::start(listen, options).await?;
            print(&format!(
                "SCIM emulator on http://{}/TENANT ({users} users per tenant); Ctrl-C stops it\n",
                emulator.addr()
            ))?;
            let mut term =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            drop(emulator);
            Ok(())
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pair_says_which_members_it_keeps() {
        let pair = push::PairReport {
            group: "sales".into(),
            display_name: "Sales".into(),
            kept: (1..=7)
                .map(|i| format!("m{i}@other.org (outside example.com)"))
                .collect(),
            ..Default::default()
        };
        let mut s = String::new();
        pair_text(&mut s, &pair);
        assert!(s.starts_with("  sales → \"Sales\"\n"), "{s}");
        assert!(
            s.contains("    kept, not managed by rosterd: m1@other.org (outside example.com), "),
            "{s}"
        );
        assert!(s.trim_end().ends_with("and 2 more"), "{s}");
    }
}
