//! `rosterd plan`: what the rules would change, against the stored state, like a terraform
//! plan: per group, who joins and who leaves, and why.
//!
//! The plan streams: each group's changes are made, written and dropped before the next
//! group's, so its memory is that of the largest group's changes, whatever their total. JSON
//! stays one valid document, written as it goes.

use std::fmt::Write as _;
use std::io::Write as _;

use serde::Serialize;

use super::{block_on, CliError, Format, Global, Workspace};
use crate::cycle;
use crate::cycle::{KeyOrder, PlannedChange};
use crate::engine::Evaluation;
use crate::store::{MemberState, SnapshotStatus};

/// Changes listed per group in text; JSON lists them all.
const SHOWN_PER_GROUP: usize = 50;

pub fn plan(global: &Global, group: Option<&str>) -> Result<(), CliError> {
    let ws = Workspace::load(global)?;
    let as_of = global.as_of();
    let evaluation = ws.evaluate(as_of);
    let only = group.map(|name| ws.group(name)).transpose()?;
    let url = ws
        .config
        .database_url()
        .map_err(|e| CliError::Invalid(e.to_string()))?;
    let (stored, base_run) = block_on(async {
        if !store_exists(url) {
            // A plan reads; it does not create a database where there is none.
            return Ok((Stored::Members(MemberState::default()), None));
        }
        // Read only: a plan neither migrates nor writes, so a CI job can run it with a
        // role that may only read the database.
        let store = crate::store::Store::connect(url)
            .await
            .map_err(|e| CliError::Invalid(e.to_string()))?;
        if !store.has_schema().await? {
            // A database that exists but was never migrated holds nothing either.
            store.close().await;
            return Ok((Stored::Members(MemberState::default()), None));
        }
        let runs = store.runs(1).await?;
        // The same export, rules, config and date as the last succeeded run: the store holds
        // the evaluation, so there is nothing to read or compare. (A database a newer rosterd
        // has not migrated yet cannot say; it is compared in full.)
        let rules_digest = ws.rules.digest(&ws.config.rules.dir);
        let digest = cycle::inputs_digest(&ws.config, &rules_digest, as_of);
        let same = match store.snapshot_by_checksum(&ws.checksum).await? {
            Some(s) if s.status == SnapshotStatus::Current => {
                cycle::same_as_last_run(&store, s.id, digest.as_deref())
                    .await
                    .ok()
                    .flatten()
            }
            _ => None,
        };
        let stored = match same {
            Some(run) => Stored::AsEvaluatedBy(run.id),
            None => Stored::Members(store.member_state_for_reading().await?),
        };
        store.close().await;
        Ok::<_, CliError>((stored, runs.into_iter().next()))
    })?;
    // Rule-set groups by name, and the stored groups the rules no longer define.
    let mut groups: Vec<usize> = match only {
        Some(g) => vec![g],
        None => (0..ws.rules.groups().len()).collect(),
    };
    groups.sort_by(|&a, &b| ws.rules.group(a).name.cmp(&ws.rules.group(b).name));
    let removed: Vec<&str> = match (only, &stored) {
        (None, Stored::Members(stored)) => stored
            .groups
            .keys()
            .filter(|n| ws.rules.lookup(n).is_none())
            .map(String::as_str)
            .collect(),
        _ => Vec::new(),
    };
    let empty = MemberState::default();
    let state = match &stored {
        Stored::Members(state) => state,
        Stored::AsEvaluatedBy(_) => &empty,
    };
    let numbering = cycle::Numbering::new(&ws.snapshot, &state.workers);
    let plan = Plan {
        ws: &ws,
        evaluation: &evaluation,
        stored: &stored,
        side: cycle::StoredSide {
            state,
            numbering: &numbering,
        },
        order: KeyOrder::new(&ws.snapshot),
    };
    let mut out = std::io::BufWriter::with_capacity(1 << 16, std::io::stdout().lock());
    let header = Header {
        as_of: as_of.to_string(),
        source: &ws.report.source,
        workers: ws.snapshot.len(),
        eligible: evaluation.eligible().count_ones(..),
        base_run: base_run.as_ref().map(|r| r.id),
        guardrails: crate::engine::guardrails::check(&ws.snapshot, &ws.rules, &evaluation),
    };
    if global.format == Format::Json {
        plan.json(&mut out, &header, &groups, &removed)?;
    } else {
        let mut compared = match &base_run {
            Some(run) => format!(
                "compared with the stored state after run {} (as of {})",
                run.id, run.as_of
            ),
            None => "compared with an empty store: every member joins".to_string(),
        };
        if let Stored::AsEvaluatedBy(run) = stored {
            compared.push_str(&format!(
                "\nthe export, the rules, the config and the date are those of run {run}: nothing changes"
            ));
        }
        plan.text(&mut out, &header, &compared, &groups, &removed, only)?;
        if !header.guardrails.is_empty() {
            writeln!(out)?;
            out.write_all(crate::engine::guardrails::render(&header.guardrails).as_bytes())?;
        }
    }
    out.flush()?;
    Ok(())
}

#[derive(Serialize)]
struct Header<'a> {
    as_of: String,
    source: &'a str,
    workers: usize,
    eligible: usize,
    base_run: Option<i64>,
    /// The guardrails the planned memberships would break.
    guardrails: Vec<crate::engine::guardrails::Violation>,
}

/// Each worker's `{"key":KEY,"label":LABEL,"reason":"`, JSON-escaped once, end to end.
struct ChangeHeads {
    bytes: Vec<u8>,
    /// Where each worker's head ends in `bytes`.
    ends: Vec<usize>,
}

impl ChangeHeads {
    fn new(snapshot: &crate::directory::Snapshot) -> Result<Self, CliError> {
        let json_err = |e: serde_json::Error| CliError::Output(e.into());
        let mut bytes = Vec::new();
        let mut ends = Vec::with_capacity(snapshot.len());
        let mut label = String::new();
        for w in 0..snapshot.len() {
            label.clear();
            snapshot.write_label(w, &mut label);
            bytes.extend_from_slice(b"{\"key\":");
            serde_json::to_writer(&mut bytes, snapshot.key(w)).map_err(json_err)?;
            bytes.extend_from_slice(b",\"label\":");
            serde_json::to_writer(&mut bytes, label.as_str()).map_err(json_err)?;
            bytes.extend_from_slice(b",\"reason\":\"");
            ends.push(bytes.len());
        }
        Ok(ChangeHeads { bytes, ends })
    }

    fn of(&self, w: usize) -> &[u8] {
        let start = if w == 0 { 0 } else { self.ends[w - 1] };
        &self.bytes[start..self.ends[w]]
    }
}

/// What the store holds, as far as the plan needs it.
enum Stored {
    /// Each group's members.
    Members(MemberState),
    /// Exactly this evaluation, stored by the run with this id: nothing to compare.
    AsEvaluatedBy(i64),
}

struct Plan<'a> {
    ws: &'a Workspace,
    evaluation: &'a Evaluation,
    stored: &'a Stored,
    side: cycle::StoredSide<'a>,
    order: KeyOrder,
}

/// Joins and leaves counted so far.
#[derive(Default)]
struct Totals {
    joins: usize,
    leaves: usize,
    changed_groups: usize,
}

impl Totals {
    fn add(&mut self, changes: &[PlannedChange<'_>]) {
        let joins = changes.iter().filter(|c| c.added).count();
        self.add_counts(joins, changes.len() - joins);
    }

    fn add_counts(&mut self, joins: usize, leaves: usize) {
        self.joins += joins;
        self.leaves += leaves;
        self.changed_groups += usize::from(joins + leaves > 0);
    }
}

impl Plan<'_> {
    fn changes_of(&self, g: usize) -> Vec<PlannedChange<'_>> {
        self.first_changes_of(g, usize::MAX).2
    }

    /// The joins and leaves of group `g`, and the first `shown` of its changes.
    fn first_changes_of(&self, g: usize, shown: usize) -> (usize, usize, Vec<PlannedChange<'_>>) {
        if let Stored::AsEvaluatedBy(_) = self.stored {
            return (0, 0, Vec::new());
        }
        cycle::planned_changes(
            &self.ws.snapshot,
            &self.order,
            &self.ws.rules,
            self.evaluation,
            g,
            &self.side,
            shown,
        )
    }

    fn removed_changes(&self, name: &str) -> Vec<PlannedChange<'_>> {
        cycle::removed_group_changes(&self.side, name)
    }

    /// How many stored members the removed group `name` has: each of them leaves.
    fn removed_count(&self, name: &str) -> usize {
        match self.stored {
            Stored::Members(stored) => stored.group(name).map_or(0, |g| g.members.len() as usize),
            Stored::AsEvaluatedBy(_) => 0,
        }
    }

    /// A worker's label (`KEY Name (email)`), or the bare key of one no longer in the export.
    fn label_into(&self, c: &PlannedChange<'_>, out: &mut String) {
        out.clear();
        match c.worker {
            Some(w) => self.ws.snapshot.write_label(w, out),
            None => out.push_str(c.key),
        }
    }

    /// `{"key":...,"label":...,"reason":...}`, written straight out: a plan may hold
    /// millions, so none is built as a JSON value first, and a worker's key and label are
    /// escaped once (`heads`), not once per group they join.
    fn write_change(
        &self,
        out: &mut impl std::io::Write,
        c: &PlannedChange<'_>,
        heads: &ChangeHeads,
        label: &mut String,
    ) -> Result<(), CliError> {
        match c.worker {
            Some(w) => out.write_all(heads.of(w))?,
            // No longer in the export: its key is all there is.
            None => {
                let json_err = |e: serde_json::Error| CliError::Output(e.into());
                self.label_into(c, label);
                out.write_all(b"{\"key\":")?;
                serde_json::to_writer(&mut *out, c.key).map_err(json_err)?;
                out.write_all(b",\"label\":")?;
                serde_json::to_writer(&mut *out, label.as_str()).map_err(json_err)?;
                out.write_all(b",\"reason\":\"")?;
            }
        }
        out.write_all(c.reason.as_bytes())?;
        out.write_all(b"\"}")?;
        Ok(())
    }

    /// Whether the store has never held the group.
    fn is_new(&self, name: &str) -> bool {
        match self.stored {
            Stored::Members(stored) => stored.group(name).is_none(),
            Stored::AsEvaluatedBy(_) => false,
        }
    }

    /// `{header..., "groups": [...], "removed_groups": [...], "join": N, "leave": N}`, one
    /// group per line, each written as soon as it is made.
    fn json(
        &self,
        out: &mut impl std::io::Write,
        header: &Header<'_>,
        groups: &[usize],
        removed: &[&str],
    ) -> Result<(), CliError> {
        let json_err = |e: serde_json::Error| CliError::Output(e.into());
        let mut head = serde_json::to_string(header).map_err(json_err)?;
        head.pop(); // the closing brace: the document goes on
        write!(out, "{head},\"groups\":[")?;
        let mut totals = Totals::default();
        let mut label = String::new();
        let heads = ChangeHeads::new(&self.ws.snapshot)?;
        for (i, &g) in groups.iter().enumerate() {
            let group = self.ws.rules.group(g);
            let changes = self.changes_of(g);
            totals.add(&changes);
            let mut head = serde_json::to_string(&serde_json::json!({
                "name": group.name,
                "kind": group.kind,
                "members": self.evaluation.members(g).count_ones(..),
                "new": self.is_new(&group.name),
                "push": group.push,
            }))
            .map_err(json_err)?;
            head.pop(); // the closing brace: the lists follow
            out.write_all(if i == 0 { b"\n" } else { b",\n" })?;
            out.write_all(head.as_bytes())?;
            for (list, added) in [(",\"joins\":[", true), ("],\"leaves\":[", false)] {
                out.write_all(list.as_bytes())?;
                for (n, c) in changes.iter().filter(|c| c.added == added).enumerate() {
                    if n > 0 {
                        out.write_all(b",")?;
                    }
                    self.write_change(out, c, &heads, &mut label)?;
                }
            }
            out.write_all(b"]}")?;
        }
        let removed_leaves: usize = removed.iter().map(|name| self.removed_count(name)).sum();
        write!(
            out,
            "\n],\"removed_groups\":{},\"join\":{},\"leave\":{}}}\n",
            serde_json::to_string(removed).map_err(json_err)?,
            totals.joins,
            totals.leaves + removed_leaves
        )?;
        Ok(())
    }

    fn text(
        &self,
        out: &mut impl std::io::Write,
        header: &Header<'_>,
        compared: &str,
        groups: &[usize],
        removed: &[&str],
        only: Option<usize>,
    ) -> Result<(), CliError> {
        let ws = self.ws;
        writeln!(
            out,
            "{} ({} eligible) from {}; {}; as of {}\n{compared}\n",
            crate::text::count(header.workers as u64, "worker"),
            header.eligible,
            header.source,
            crate::text::count(ws.rules.groups().len() as u64, "group"),
            header.as_of
        )?;
        // Rule-set groups and removed ones, merged by name.
        let mut names: Vec<(&str, Option<usize>)> = groups
            .iter()
            .map(|&g| (ws.rules.group(g).name.as_str(), Some(g)))
            .chain(removed.iter().map(|&n| (n, None)))
            .collect();
        names.sort();
        let mut totals = Totals::default();
        for (name, g) in names {
            let (j, leaves, changes) = match g {
                Some(g) => self.first_changes_of(g, SHOWN_PER_GROUP),
                None => {
                    let changes = self.removed_changes(name);
                    (0, changes.len(), changes)
                }
            };
            totals.add_counts(j, leaves);
            if j + leaves == 0 {
                continue;
            }
            let (mark, note) = match g {
                None => ("-", " (removed from the rules)".to_string()),
                Some(g) if self.is_new(name) => {
                    ("+", format!(" ({}, new)", ws.rules.group(g).kind))
                }
                Some(g) => ("~", format!(" ({})", ws.rules.group(g).kind)),
            };
            writeln!(
                out,
                "{mark} {name}{note}: {}, {}",
                crate::text::count(j as u64, "join"),
                crate::text::count(leaves as u64, "leave")
            )?;
            let mut label = String::new();
            for c in changes.iter().take(SHOWN_PER_GROUP) {
                self.label_into(c, &mut label);
                writeln!(
                    out,
                    "    {} {label}  [{}]",
                    if c.added { "+" } else { "-" },
                    c.reason
                )?;
            }
            if j + leaves > SHOWN_PER_GROUP {
                writeln!(
                    out,
                    "    ... and {} more (`--format json` lists all)",
                    j + leaves - SHOWN_PER_GROUP
                )?;
            }
        }
        if totals.changed_groups > 0 {
            writeln!(out)?;
        }
        let mut table = String::new();
        members_table(&mut table, ws, self.evaluation, groups);
        out.write_all(table.as_bytes())?;
        writeln!(
            out,
            "\nPlan: {} to join, {} to leave, in {}; {} unchanged.",
            totals.joins,
            totals.leaves,
            crate::text::count(totals.changed_groups as u64, "group"),
            crate::text::count(
                (groups.len() + removed.len()).saturating_sub(totals.changed_groups) as u64,
                "group"
            )
        )?;
        if let Some(g) = only {
            let group = ws.rules.group(g);
            let mut members: Vec<usize> = self.evaluation.members(g).ones().collect();
            members.sort_by(|&a, &b| ws.snapshot.key(a).cmp(ws.snapshot.key(b)));
            writeln!(
                out,
                "\n{} ({}): {} as of {}",
                group.name,
                group.kind,
                crate::text::count(members.len() as u64, "member"),
                header.as_of
            )?;
            for w in members {
                writeln!(out, "  {}", ws.snapshot.label(w))?;
            }
        }
        if !ws.report.issues.is_empty() {
            writeln!(
                out,
                "{} in the export: run `rosterd check` to see them",
                crate::text::count(ws.report.issues.len() as u64, "issue")
            )?;
        }
        Ok(())
    }
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
