//! Why a worker is, or is not, in a group: every sub-expression's value for that worker, the
//! person entries that name them, and which step decided.

use std::fmt::Write as _;

use serde::Serialize;

use super::eval::{self, Context};
use super::{resolve, Evaluation};
use crate::directory::{Snapshot, Value, WorkerId};
use crate::rules::{CExpr, GroupId, GroupKind, Op, PersonEntry, RuleSet, SourceMap};

/// One sub-expression and its value for the worker.
#[derive(Debug, Clone, Serialize)]
pub struct Node {
    /// The expression as written (whitespace folded).
    pub expr: String,
    /// `null` when missing.
    pub value: Option<serde_json::Value>,
    /// The value as the rules language writes it, or `missing`.
    pub shown: String,
    pub location: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub children: Vec<Node>,
    /// Bool-typed sub-expressions are marked true/false when rendered.
    #[serde(skip)]
    is_bool: bool,
}

/// A person entry that names the worker.
#[derive(Debug, Clone, Serialize)]
pub struct EntryMatch {
    /// `include`, `exclude` or `members`.
    pub list: &'static str,
    pub entry: String,
    pub details: String,
    pub location: String,
    /// False when the entry has expired on the evaluation date.
    pub active: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct Explanation {
    pub group: String,
    pub kind: GroupKind,
    pub group_location: String,
    pub worker: String,
    /// As the config's `directory.name` attributes give it.
    pub name: Option<String>,
    pub email: Option<String>,
    pub as_of: String,
    pub member: bool,
    /// The step that decided, in words.
    pub decision: String,
    pub eligible: bool,
    pub eligibility: Option<Node>,
    pub rule: Option<Node>,
    pub entries: Vec<EntryMatch>,
}

/// Explains the (worker, group) pair under an evaluation made from the same inputs.
pub fn explain(
    snapshot: &Snapshot,
    rules: &RuleSet,
    evaluation: &Evaluation,
    worker: WorkerId,
    group: GroupId,
) -> Explanation {
    let ctx = evaluation.context(snapshot);
    let sources = rules.sources();
    let g = rules.group(group);
    let eligibility = rules.eligibility().map(|e| tree(e, worker, &ctx, sources));
    let rule = g.rule.as_ref().map(|e| tree(e, worker, &ctx, sources));
    let mut entries = Vec::new();
    for (list, items) in [
        ("include", &g.include),
        ("exclude", &g.exclude),
        ("members", &g.members),
    ] {
        for e in items
            .iter()
            .filter(|e| resolve(&e.who, snapshot) == Some(worker))
        {
            entries.push(entry_match(list, e, evaluation, sources));
        }
    }
    let eligible = evaluation.eligible.contains(worker);
    let member = evaluation.is_member(group, worker);
    let rule_true = g
        .rule
        .as_ref()
        .is_some_and(|e| eval::truth(e, worker, &ctx));
    let decision = decide(g.kind, eligible, rule_true, &entries);
    Explanation {
        group: g.name.clone(),
        kind: g.kind,
        name: snapshot.name(worker),
        group_location: sources.location(g.span),
        worker: snapshot.key(worker).to_string(),
        email: snapshot.email(worker).map(str::to_string),
        as_of: evaluation.as_of.to_string(),
        member,
        decision,
        eligible,
        eligibility,
        rule,
        entries,
    }
}

fn entry_match(
    list: &'static str,
    e: &PersonEntry,
    evaluation: &Evaluation,
    sources: &SourceMap,
) -> EntryMatch {
    EntryMatch {
        list,
        entry: e.who.to_string(),
        details: e.details(),
        location: sources.location(e.span),
        active: e.active_on(evaluation.as_of),
    }
}

/// The step of docs/rules-language.md section 8 that decided membership.
fn decide(kind: GroupKind, eligible: bool, rule: bool, entries: &[EntryMatch]) -> String {
    let active = |list: &str| entries.iter().find(|e| e.list == list && e.active);
    let expired = |list: &str| entries.iter().find(|e| e.list == list && !e.active);
    let by = |e: &EntryMatch| format!("`{}` at {}", e.entry, e.location);
    let not_eligible =
        "not a member: the worker is not eligible (eligibility removes them from every group)";
    match kind {
        GroupKind::Managed if !rule => "not a member: the rule is false".into(),
        GroupKind::Managed if !eligible => not_eligible.into(),
        GroupKind::Managed => "member: the rule is true".into(),
        GroupKind::Hybrid => {
            if let Some(x) = active("exclude") {
                if !eligible {
                    return not_eligible.into();
                }
                return format!("not a member: excluded by {}", by(x));
            }
            match (rule, active("include")) {
                (false, None) => match expired("include") {
                    Some(x) => format!(
                        "not a member: the rule is false and the include entry {} expired",
                        by(x)
                    ),
                    None => "not a member: the rule is false and no include entry names the worker"
                        .into(),
                },
                _ if !eligible => not_eligible.into(),
                (true, _) => "member: the rule is true".into(),
                (false, Some(x)) => format!("member: included by {}", by(x)),
            }
        }
        GroupKind::Manual => match (active("members"), expired("members")) {
            (Some(_), _) if !eligible => not_eligible.into(),
            (Some(x), _) => format!("member: listed by {}", by(x)),
            (None, Some(x)) => format!("not a member: the entry {} expired", by(x)),
            (None, None) => "not a member: no entry in `members` names the worker".into(),
        },
    }
}

fn tree(e: &CExpr, w: WorkerId, ctx: &Context<'_>, sources: &SourceMap) -> Node {
    let value = eval::value(e, w, ctx);
    let children = e
        .children()
        .into_iter()
        .filter(|c| !matches!(c.op, Op::Lit(_)))
        .map(|c| tree(c, w, ctx, sources))
        .collect();
    let shown = value
        .as_ref()
        .map_or_else(|| "missing".to_string(), Value::to_string);
    Node {
        expr: sources
            .slice(e.span)
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" "),
        value: value.as_ref().map(Value::to_json),
        shown,
        location: sources.location(e.span),
        children,
        is_bool: e.ty == crate::rules::Type::Bool,
    }
}

impl Node {
    /// For a bool-typed sub-expression, whether it held for the worker (missing is false);
    /// `None` for other values, which are shown with their value instead.
    pub fn holds(&self) -> Option<bool> {
        self.is_bool
            .then_some(matches!(self.value, Some(serde_json::Value::Bool(true))))
    }
}

impl Explanation {
    /// The step that decided, without its leading label.
    pub fn decided_by(&self) -> &str {
        self.decision
            .split_once(": ")
            .map_or(self.decision.as_str(), |(_, r)| r)
    }

    /// The explanation as `rosterd explain` prints it.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let mut who = self.worker.clone();
        if let Some(name) = &self.name {
            who.push(' ');
            who.push_str(name);
        }
        if let Some(e) = &self.email {
            who.push_str(&format!(" ({e})"));
        }
        let verdict = if self.member {
            "MEMBER"
        } else {
            "NOT A MEMBER"
        };
        let _ = writeln!(
            out,
            "{who} in {} ({}, {}) as of {}: {verdict}",
            self.group, self.kind, self.group_location, self.as_of
        );
        let _ = writeln!(out, "  decided by: {}", self.decided_by());
        match &self.eligibility {
            Some(node) => {
                let _ = writeln!(out, "  eligibility: {}", yes_no(self.eligible));
                render_node(&mut out, node, 2);
            }
            None => {
                let _ = writeln!(
                    out,
                    "  eligibility: true (no eligibility expression: every worker)"
                );
            }
        }
        if let Some(node) = &self.rule {
            let _ = writeln!(out, "  rule: {}", node.shown);
            render_node(&mut out, node, 2);
        }
        for e in &self.entries {
            let state = if e.active { "" } else { " [expired: ignored]" };
            let details = if e.details.is_empty() {
                String::new()
            } else {
                format!(" ({})", e.details)
            };
            let _ = writeln!(
                out,
                "  {} entry `{}` at {}{details}{state}",
                e.list, e.entry, e.location
            );
        }
        out
    }
}

fn yes_no(b: bool) -> &'static str {
    if b {
        "true"
    } else {
        "false"
    }
}

fn render_node(out: &mut String, node: &Node, depth: usize) {
    let pad = "  ".repeat(depth);
    match node.holds() {
        Some(holds) => {
            let mark = if holds { "✓" } else { "✗" };
            let _ = writeln!(out, "{pad}{mark} {}", node.expr);
        }
        None => {
            let _ = writeln!(out, "{pad}· {} = {}", node.expr, node.shown);
        }
    }
    for child in &node.children {
        render_node(out, child, depth + 1);
    }
}
