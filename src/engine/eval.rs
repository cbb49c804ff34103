//! The per-worker interpreter: the semantics of docs/rules-language.md (expressions,
//! operators, functions, missing values), one worker at a time, written to be obviously
//! right. Missing values are `None`.

use std::cmp::Ordering;
use std::collections::HashSet;

use chrono::NaiveDate;
use fixedbitset::FixedBitSet;

use crate::directory::{Snapshot, Value, WorkerId};
use crate::rules::ast::CmpOp;
use crate::rules::{CExpr, Op};

/// What an expression may look at besides the worker's own attributes.
pub struct Context<'a> {
    pub snapshot: &'a Snapshot,
    pub as_of: NaiveDate,
    pub is_manager: &'a FixedBitSet,
    /// Final members of the groups evaluated so far, by group id.
    pub members: &'a [FixedBitSet],
    /// Set when `snapshot` is a part of the organisation.
    pub part: Option<&'a Part<'a>>,
}

/// Some workers of a snapshot evaluated on their own (incremental evaluation): position `i`
/// of the part's snapshot is worker `workers[i]` of the whole, and `reports_to` follows the
/// whole's chart.
pub struct Part<'a> {
    pub whole: &'a Snapshot,
    pub workers: &'a [WorkerId],
    /// (manager, position) for every manager up every position's chain, sorted.
    below: Vec<(u32, u32)>,
}

impl<'a> Part<'a> {
    /// Walks each worker's chain once: the cost is the sum of their depths.
    pub fn new(whole: &'a Snapshot, workers: &'a [WorkerId]) -> Self {
        let mut below = Vec::new();
        let mut chain: Vec<u32> = Vec::new();
        let mut seen = HashSet::new();
        for (i, &w) in workers.iter().enumerate() {
            chain.clear();
            seen.clear();
            let mut current = whole.manager(w);
            // As in [`reports_to`]: the walk ends at the top, back at `w`, or in a cycle.
            while let Some(m) = current {
                let m32 = m as u32;
                // Chains are short; a set is only worth it for a long one.
                let repeated = if chain.len() < 32 {
                    chain.contains(&m32)
                } else {
                    if seen.is_empty() {
                        seen.extend(chain.iter().copied());
                    }
                    !seen.insert(m32)
                };
                if m == w || repeated {
                    break;
                }
                chain.push(m32);
                current = whole.manager(m);
            }
            below.extend(chain.iter().map(|&m| (m, i as u32)));
        }
        below.sort_unstable();
        Part {
            whole,
            workers,
            below,
        }
    }

    /// The positions whose manager chain reaches the worker `key`, as [`reports_to`] decides.
    pub fn reports_to(&self, key: &str) -> FixedBitSet {
        let mut out = FixedBitSet::with_capacity(self.workers.len());
        if let Some(m) = self.whole.by_key(key) {
            let m = m as u32;
            let start = self.below.partition_point(|&(x, _)| x < m);
            let end = self.below.partition_point(|&(x, _)| x <= m);
            for &(_, i) in &self.below[start..end] {
                out.insert(i as usize);
            }
        }
        out
    }
}

/// The workers for whom the bool expression `rule` is true.
pub fn rule_over_all(rule: &CExpr, ctx: &Context<'_>) -> FixedBitSet {
    let n = ctx.snapshot.len();
    let mut out = FixedBitSet::with_capacity(n);
    for w in 0..n {
        if truth(rule, w, ctx) {
            out.insert(w);
        }
    }
    out
}

/// A bool expression for one worker: a missing bool counts as false.
pub fn truth(e: &CExpr, w: WorkerId, ctx: &Context<'_>) -> bool {
    matches!(value(e, w, ctx), Some(Value::Bool(true)))
}

/// The value of `e` for worker `w`; `None` is missing.
pub fn value(e: &CExpr, w: WorkerId, ctx: &Context<'_>) -> Option<Value> {
    let b = |x: bool| Some(Value::Bool(x));
    match &e.op {
        Op::Lit(v) => Some(v.clone()),
        Op::Attr(a) => ctx.snapshot.get(*a, w).cloned(),
        Op::IsManager => b(ctx.is_manager.contains(w)),
        Op::Or(items) => b(items.iter().any(|i| truth(i, w, ctx))),
        Op::And(items) => b(items.iter().all(|i| truth(i, w, ctx))),
        Op::Not(inner) => b(!truth(inner, w, ctx)),
        Op::Cmp { op, lhs, rhs } => {
            let (l, r) = (value(lhs, w, ctx), value(rhs, w, ctx));
            b(compare(*op, l.as_ref(), r.as_ref()))
        }
        Op::In {
            negated,
            lhs,
            items,
        } => {
            let found = value(lhs, w, ctx).is_some_and(|v| items.contains(&v));
            b(found != *negated)
        }
        Op::Matches { lhs, regex } => {
            b(matches!(value(lhs, w, ctx), Some(Value::Str(s)) if regex.is_match(&s)))
        }
        Op::MemberOf(g) => b(ctx.members[*g].contains(w)),
        Op::ReportsTo(key) => b(match ctx.part {
            Some(part) => reports_to(part.whole, part.workers[w], key),
            None => reports_to(ctx.snapshot, w, key),
        }),
        Op::Has(inner) => b(value(inner, w, ctx).is_some()),
        Op::Lower(inner) => match value(inner, w, ctx) {
            Some(Value::Str(s)) => Some(Value::Str(s.to_lowercase())),
            _ => None,
        },
        Op::DaysSince(inner) => match value(inner, w, ctx) {
            Some(Value::Date(d)) => Some(Value::Num((ctx.as_of - d).num_days() as f64)),
            _ => None,
        },
    }
}

/// A comparison; with a missing operand it is false, except `!=`, the negation of `==`.
pub fn compare(op: CmpOp, l: Option<&Value>, r: Option<&Value>) -> bool {
    let (Some(l), Some(r)) = (l, r) else {
        return op == CmpOp::Ne;
    };
    match op {
        CmpOp::Eq => l == r,
        CmpOp::Ne => l != r,
        CmpOp::Lt => order(l, r) == Some(Ordering::Less),
        CmpOp::Le => matches!(order(l, r), Some(Ordering::Less | Ordering::Equal)),
        CmpOp::Gt => order(l, r) == Some(Ordering::Greater),
        CmpOp::Ge => matches!(order(l, r), Some(Ordering::Greater | Ordering::Equal)),
        CmpOp::Contains => match (l, r) {
            (Value::List(items), Value::Str(s)) => items.contains(s),
            (Value::Str(hay), Value::Str(needle)) => hay.contains(needle.as_str()),
            _ => false,
        },
        CmpOp::StartsWith => {
            matches!((l, r), (Value::Str(a), Value::Str(b)) if a.starts_with(b.as_str()))
        }
        CmpOp::EndsWith => {
            matches!((l, r), (Value::Str(a), Value::Str(b)) if a.ends_with(b.as_str()))
        }
        // `in`, `not in` and `matches` have their own operations after checking.
        CmpOp::In | CmpOp::NotIn | CmpOp::Matches => false,
    }
}

/// Strings by bytes, numbers and dates naturally.
fn order(l: &Value, r: &Value) -> Option<Ordering> {
    match (l, r) {
        (Value::Str(a), Value::Str(b)) => Some(a.as_bytes().cmp(b.as_bytes())),
        (Value::Num(a), Value::Num(b)) => a.partial_cmp(b),
        (Value::Date(a), Value::Date(b)) => Some(a.cmp(b)),
        _ => None,
    }
}

/// Whether `w`'s manager chain, followed upward, reaches the worker with key `key` (not `w`
/// itself). A cycle in the chain ends the walk.
pub fn reports_to(snapshot: &Snapshot, w: WorkerId, key: &str) -> bool {
    let Some(target) = snapshot.by_key(key) else {
        return false;
    };
    if target == w {
        // Not even when a cycle in the HR data leads back to the worker.
        return false;
    }
    let mut current = snapshot.manager(w);
    // A chain longer than the population has looped.
    for _ in 0..snapshot.len() {
        match current {
            None => return false,
            Some(m) if m == target => return true,
            Some(m) if m == w => return false,
            Some(m) => current = snapshot.manager(m),
        }
    }
    false
}
