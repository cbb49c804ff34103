//! `rosterd reviews`: the entries due for an access review; `rosterd review keep|remove`:
//! a review's decision, committed to the rules repository.

use std::fmt::Write as _;

use chrono::NaiveDate;

use super::{print, print_json, CliError, Format, Global, Workspace};
use crate::access::{self, Decision, Due};
use crate::notify::{Event, Notifier};
use crate::store::DecisionRecord;

/// `rosterd reviews`: what is due on the evaluation date or within `within` days, for
/// everyone or for one approver.
pub fn reviews(
    global: &Global,
    within: u32,
    approver: Option<&str>,
    tell: bool,
) -> Result<(), CliError> {
    let as_of = global.as_of();
    let (config, due) = if let Some(email) = approver {
        // A `group:` approver is a member of a rosterd group: that takes the export.
        let ws = Workspace::load(global)?;
        let evaluation = ws.evaluate(as_of);
        let person = ws.snapshot.find(email);
        let member_of = |group: &str| {
            let (Some(id), Some(w)) = (ws.rules.lookup(group), person) else {
                return false;
            };
            evaluation.is_member(id, w)
        };
        let due = access::due(&ws.rules, as_of, within)
            .into_iter()
            .filter(|d| access::is_approver(&d.approvers, email, &[], member_of))
            .collect();
        (ws.config, due)
    } else {
        let ws = Workspace::load_rules_only(global)?;
        let due = access::due(&ws.rules, as_of, within);
        (std::sync::Arc::unwrap_or_clone(ws.config), due)
    };
    if tell && !due.is_empty() {
        notify(
            &config,
            &Event::ReviewsDue {
                as_of,
                due: due.clone(),
            },
        )?;
    }
    match global.format {
        Format::Json => print_json(&serde_json::json!({ "as_of": as_of, "due": due })),
        _ => print(&text(&due, as_of, within)),
    }
}

fn text(due: &[Due], as_of: NaiveDate, within: u32) -> String {
    let mut out = String::new();
    if due.is_empty() {
        let _ = writeln!(
            out,
            "nothing due for review on {as_of}{}",
            if within > 0 {
                format!(" or within {within} days")
            } else {
                String::new()
            }
        );
        return out;
    }
    for d in due {
        let when = if d.due_on < as_of {
            format!("overdue since {}", d.due_on)
        } else if d.due_on == as_of {
            "due".to_string()
        } else {
            format!("due {}", d.due_on)
        };
        let _ = writeln!(
            out,
            "{} {} {} ({}): {when}, {}",
            d.group, d.list, d.who, d.location, d.why
        );
        let mut details = Vec::new();
        if let Some(r) = &d.reason {
            details.push(format!("reason: {r}"));
        }
        if let Some(t) = &d.ticket {
            details.push(format!("ticket: {t}"));
        }
        if !details.is_empty() {
            let _ = writeln!(out, "    {}", details.join(", "));
        }
        let approvers: Vec<String> = d.approvers.iter().map(ToString::to_string).collect();
        let _ = writeln!(
            out,
            "    approvers: {}",
            if approvers.is_empty() {
                "nobody (give the group `owners` or `requests.approvers`)".to_string()
            } else {
                approvers.join(", ")
            }
        );
    }
    let _ = writeln!(
        out,
        "\n{}",
        crate::text::count_as(due.len() as u64, "entry due", "entries due")
    );
    out
}

/// Tells the configured webhooks of `event`; a webhook that cannot be reached is reported
/// on stderr and fails nothing.
fn notify(config: &crate::config::Config, event: &Event) -> Result<(), CliError> {
    let Some(notifications) = &config.notifications else {
        return Ok(());
    };
    let notifier = Notifier::new(notifications).map_err(|e| CliError::Invalid(e.to_string()))?;
    let deliveries = super::block_on(async { Ok(notifier.send(event).await) })?;
    for d in deliveries.iter().filter(|d| !d.delivered) {
        eprintln!(
            "warning: webhook `{}` was not told after {}: {}",
            d.webhook,
            crate::text::count(u64::from(d.tries), "try"),
            d.error.as_deref().unwrap_or("")
        );
    }
    Ok(())
}

/// What `rosterd review` was told.
pub struct ReviewArgs {
    pub keep: bool,
    pub group: String,
    /// The entry's worker as the entry names it: a key or an email.
    pub worker: String,
    pub by: String,
    pub comment: String,
    pub until: Option<NaiveDate>,
}

/// `rosterd review keep|remove`: the decision as a commit, pushed.
pub fn review(global: &Global, args: &ReviewArgs) -> Result<(), CliError> {
    if !crate::config::is_address(&args.by) {
        return Err(CliError::Usage(format!(
            "`--by {}` is not an email address: name the reviewer by their email",
            args.by
        )));
    }
    let config = super::load_config(&global.config)?;
    // The audit is opened first: a decision that could not be recorded is not made.
    let store = super::block_on(super::open_store(&config))?;
    let decision = Decision::review(
        args.keep,
        args.group.clone(),
        args.worker.clone(),
        args.until,
        args.by.clone(),
        args.comment.clone(),
    );
    let landed = access::land(&config, &decision, global.as_of()).map_err(|e| match e {
        access::LandError::Off => CliError::Usage(e.to_string()),
        e => CliError::Invalid(e.to_string()),
    })?;
    let record = decision.record(&landed);
    let id = super::block_on(async {
        store.record_decision(&record).await.map_err(|e| {
            CliError::Invalid(format!(
                "the decision landed as commit {} on {}, but recording it in the audit failed: {e}",
                landed.commit, landed.branch
            ))
        })
    })?;
    notify(&config, &Event::Decision(DecisionRecord { id, ..record }))?;
    match global.format {
        Format::Json => print_json(
            &serde_json::to_value(&landed).map_err(|e| CliError::Invalid(e.to_string()))?,
        ),
        _ => {
            let mut out = String::new();
            let _ = writeln!(
                out,
                "{} {} {}: commit {} on {} ({}), changing {}",
                decision.kind(),
                args.group,
                args.worker,
                &landed.commit[..landed.commit.len().min(12)],
                landed.branch,
                if landed.direct {
                    "the rules' branch itself"
                } else {
                    "a branch for review; merge it to put it in force"
                },
                landed.file
            );
            if let Some(link) = &landed.link {
                let _ = writeln!(out, "{link}");
            }
            print(&out)
        }
    }
}

/// `rosterd decisions`: the audit of access decisions, for a group and a period.
pub fn decisions(
    global: &Global,
    group: Option<&str>,
    from: Option<NaiveDate>,
    to: Option<NaiveDate>,
) -> Result<(), CliError> {
    let config = super::load_config(&global.config)?;
    let (from, to) = (from.map(|d| d.to_string()), to.map(|d| d.to_string()));
    let records = super::block_on(async {
        let store = super::open_store(&config).await?;
        store
            .decisions(group, from.as_deref(), to.as_deref())
            .await
            .map_err(|e| CliError::Invalid(e.to_string()))
    })?;
    match global.format {
        Format::Json => print_json(&serde_json::json!({ "decisions": records })),
        Format::Csv => print(&decisions_csv(&records)?),
        _ => {
            let mut out = String::new();
            if records.is_empty() {
                out.push_str("no access decisions recorded for that group and period\n");
            }
            for r in &records {
                let _ = writeln!(
                    out,
                    "{} {} {} {} {} by {}{}{}",
                    r.decided_at,
                    r.decision,
                    r.group,
                    r.list,
                    r.worker,
                    r.decided_by,
                    r.until
                        .as_ref()
                        .map(|u| format!(", until {u}"))
                        .unwrap_or_default(),
                    r.commit
                        .as_ref()
                        .map(|c| format!(
                            ", commit {} on {}",
                            &c[..c.len().min(12)],
                            r.branch.as_deref().unwrap_or("")
                        ))
                        .unwrap_or_default(),
                );
                if !r.comment.is_empty() {
                    let _ = writeln!(out, "    {}", r.comment);
                }
            }
            print(&out)
        }
    }
}

/// One row per decision, with a header: what an auditor's spreadsheet reads.
fn decisions_csv(records: &[DecisionRecord]) -> Result<String, CliError> {
    let mut w = csv::Writer::from_writer(Vec::new());
    let failed = |e: csv::Error| CliError::Invalid(e.to_string());
    w.write_record([
        "id",
        "decided_at",
        "decision",
        "group",
        "list",
        "worker",
        "decided_by",
        "comment",
        "until",
        "request",
        "branch",
        "commit",
        "direct_commit",
        "link",
    ])
    .map_err(failed)?;
    for r in records {
        let opt = |v: &Option<String>| v.clone().unwrap_or_default();
        w.write_record([
            r.id.to_string(),
            r.decided_at.clone(),
            r.decision.to_string(),
            r.group.clone(),
            r.list.clone(),
            r.worker.clone(),
            r.decided_by.clone(),
            r.comment.clone(),
            opt(&r.until),
            opt(&r.request),
            opt(&r.branch),
            opt(&r.commit),
            r.direct_commit.to_string(),
            opt(&r.link),
        ])
        .map_err(failed)?;
    }
    let bytes = w
        .into_inner()
        .map_err(|e| CliError::Invalid(e.to_string()))?;
    String::from_utf8(bytes).map_err(|e| CliError::Invalid(e.to_string()))
}
