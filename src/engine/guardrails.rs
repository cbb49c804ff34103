//! Guardrails over an evaluation: which hold, and which are violated by whom. Each is one
//! columnar expression, or a bitset difference or count, over the evaluation's memberships:
//! a few set operations per guardrail, against the thousands an evaluation makes.

use fixedbitset::FixedBitSet;
use serde::Serialize;

use super::{columnar, Evaluation};
use crate::directory::Snapshot;
use crate::rules::{GuardCheck, RuleSet};

/// Workers named in a violation, at most (the count says how many there are).
pub const WORKERS_SHOWN: usize = 50;

/// A guardrail the evaluation breaks.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct Violation {
    pub guardrail: String,
    /// The guardrail's name in its file (not stored: `location` says it in words).
    #[serde(skip, default = "no_span")]
    pub span: crate::rules::Span,
    /// `file:line:col` of the guardrail's name.
    pub location: String,
    /// Whether it holds the pushes of `groups` (else it only warns).
    pub hold: bool,
    pub groups: Vec<String>,
    /// How many workers break it (0 for a size guardrail).
    pub count: usize,
    /// The first of them, by key.
    pub workers: Vec<String>,
    /// What is wrong, in words.
    pub message: String,
}

/// Checks every guardrail of `rules` against `evaluation` (made from `snapshot`).
pub fn check(snapshot: &Snapshot, rules: &RuleSet, evaluation: &Evaluation) -> Vec<Violation> {
    if rules.guardrails().is_empty() {
        return Vec::new();
    }
    let indexes = columnar::Indexes::new(snapshot);
    let memo = columnar::Memo::default();
    let mut columnar = columnar::Columnar {
        indexes: &indexes,
        as_of: evaluation.as_of,
        is_manager: &evaluation.is_manager,
        members: &evaluation.members,
        memo: &memo,
        part: None,
    };
    let sources = rules.sources();
    let mut out = Vec::new();
    for g in rules.guardrails() {
        let name = |id: usize| rules.group(id).name.clone();
        let (breakers, message): (Option<FixedBitSet>, String) = match &g.check {
            GuardCheck::Never(expr) => {
                let mut hit = columnar.truth(expr);
                hit.intersect_with(evaluation.eligible());
                let n = hit.count_ones(..);
                (
                    Some(hit),
                    format!(
                        "{} make `{}` true",
                        crate::text::count(n as u64, "worker"),
                        squash(sources.slice(expr.span))
                    ),
                )
            }
            GuardCheck::Requires { group, expr } => {
                let holds = columnar.truth(expr);
                let mut hit = evaluation.members(*group).clone();
                hit.difference_with(&holds);
                let n = hit.count_ones(..);
                (
                    Some(hit),
                    format!(
                        "{} of `{}` {} not `{}`",
                        crate::text::count(n as u64, "member"),
                        name(*group),
                        if n == 1 { "is" } else { "are" },
                        squash(sources.slice(expr.span))
                    ),
                )
            }
            GuardCheck::Size { group, min, max } => {
                let size = evaluation.members(*group).count_ones(..) as u64;
                let message = match (min, max) {
                    (Some(min), _) if size < *min => {
                        format!("`{}` has {size} members, fewer than {min}", name(*group))
                    }
                    (_, Some(max)) if size > *max => {
                        format!("`{}` has {size} members, more than {max}", name(*group))
                    }
                    _ => continue,
                };
                (None, message)
            }
        };
        let (count, workers) = match &breakers {
            Some(hit) if hit.count_ones(..) == 0 => continue,
            Some(hit) => (
                hit.count_ones(..),
                hit.ones()
                    .take(WORKERS_SHOWN)
                    .map(|w| snapshot.key(w).to_string())
                    .collect(),
            ),
            None => (0, Vec::new()),
        };
        out.push(Violation {
            guardrail: g.name.clone(),
            span: g.span,
            location: sources.location(g.span),
            hold: g.hold,
            groups: g.groups.iter().map(|&id| name(id)).collect(),
            count,
            workers,
            message,
        });
    }
    out
}

impl Violation {
    /// As `rosterd check` reports it: an error for a guardrail that holds, a warning for one
    /// that warns, naming the workers.
    pub fn diagnostic(&self) -> crate::rules::Diagnostic {
        use crate::rules::Diagnostic;
        let message = format!(
            "guardrail `{}` is violated: {}",
            self.guardrail, self.message
        );
        let d = if self.hold {
            Diagnostic::error(self.span, message)
                .with_label("a run that breaks it holds the pushes of the groups involved")
        } else {
            Diagnostic::warning(self.span, message)
        };
        match self.workers_text() {
            Some(text) => d.with_help(text),
            None => d,
        }
    }

    /// `workers: E1, E2, ... (and 8 more)`, when workers break it.
    pub fn workers_text(&self) -> Option<String> {
        if self.workers.is_empty() {
            return None;
        }
        let more = self.count.saturating_sub(self.workers.len());
        Some(format!(
            "workers: {}{}",
            self.workers.join(", "),
            if more > 0 {
                format!(" (and {more} more)")
            } else {
                String::new()
            }
        ))
    }
}

fn no_span() -> crate::rules::Span {
    crate::rules::Span::new(0, 0, 0)
}

/// Violations as the CLI prints them after a run: one line each, the workers under it.
pub fn render(violations: &[Violation]) -> String {
    let mut out = String::new();
    for v in violations {
        let effect = if v.hold {
            format!("holds the pushes of {}", v.groups.join(", "))
        } else {
            "warns".to_string()
        };
        out.push_str(&format!(
            "guardrail `{}` is violated ({effect}): {}\n",
            v.guardrail, v.message
        ));
        if let Some(workers) = v.workers_text() {
            out.push_str(&format!("  {workers}\n"));
        }
    }
    out
}

/// Whether any of them holds pushes.
pub fn any_holds(violations: &[Violation]) -> bool {
    violations.iter().any(|v| v.hold)
}

/// An expression on one line.
fn squash(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}
