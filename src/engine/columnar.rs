//! The columnar evaluator: each rule over all workers at once. A predicate on an attribute
//! (or on `lower(...)`/`days_since(...)` of one) is decided once per distinct value of the
//! attribute's dictionary, and the matching workers are gathered from a posting index or a
//! scan of the codes, whichever touches less; `and`, `or` and `not` are word-wise bitset
//! operations; `member_of` reuses the group's bitset; `reports_to` walks the org chart down
//! from the manager once. Leaf results are memoised, because thousands of rules share a few
//! hundred predicates. Anything else falls back to the per-worker interpreter
//! ([`super::eval`]), which is also the oracle this evaluator is tested against.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use chrono::NaiveDate;
use fixedbitset::FixedBitSet;

use super::eval;
use crate::directory::{AttrId, Snapshot, Value, MISSING};
use crate::rules::{CExpr, Op};

/// Per-snapshot indexes, built on first use and shared by the threads of an evaluation.
pub struct Indexes<'a> {
    snapshot: &'a Snapshot,
    /// Per attribute: workers grouped by code (CSR: `offsets[code]..offsets[code + 1]`).
    postings: Vec<OnceLock<Postings>>,
    /// Per attribute with few distinct values: each value's workers as a bitset, and the
    /// workers missing it.
    code_bits: Vec<OnceLock<(Vec<FixedBitSet>, FixedBitSet)>>,
    /// Each worker's direct reports.
    children: OnceLock<Vec<Vec<u32>>>,
}

/// Attributes with at most this many distinct values get a bitset per value.
const FEW_VALUES: usize = 256;

struct Postings {
    offsets: Vec<u32>,
    workers: Vec<u32>,
    missing: Vec<u32>,
}

impl<'a> Indexes<'a> {
    pub fn new(snapshot: &'a Snapshot) -> Self {
        Indexes {
            snapshot,
            postings: (0..snapshot.schema().attrs().len())
                .map(|_| OnceLock::new())
                .collect(),
            code_bits: (0..snapshot.schema().attrs().len())
                .map(|_| OnceLock::new())
                .collect(),
            children: OnceLock::new(),
        }
    }

    fn postings(&self, attr: AttrId) -> &Postings {
        self.postings[attr].get_or_init(|| {
            let column = self.snapshot.column(attr);
            let mut counts = vec![0u32; column.dict().len() + 1];
            let mut missing = Vec::new();
            for (w, &code) in column.codes().iter().enumerate() {
                if code == MISSING {
                    missing.push(w as u32);
                } else {
                    counts[code as usize + 1] += 1;
                }
            }
            for i in 1..counts.len() {
                counts[i] += counts[i - 1];
            }
            let offsets = counts.clone();
            let mut workers = vec![0u32; column.codes().len() - missing.len()];
            for (w, &code) in column.codes().iter().enumerate() {
                if code != MISSING {
                    let slot = &mut counts[code as usize];
                    workers[*slot as usize] = w as u32;
                    *slot += 1;
                }
            }
            Postings {
                offsets,
                workers,
                missing,
            }
        })
    }

    fn code_bits(&self, attr: AttrId) -> &(Vec<FixedBitSet>, FixedBitSet) {
        self.code_bits[attr].get_or_init(|| {
            let column = self.snapshot.column(attr);
            let n = column.codes().len();
            let mut bits = vec![FixedBitSet::with_capacity(n); column.dict().len()];
            let mut missing = FixedBitSet::with_capacity(n);
            for (w, &code) in column.codes().iter().enumerate() {
                match code {
                    MISSING => missing.insert(w),
                    code => bits[code as usize].insert(w),
                }
            }
            (bits, missing)
        })
    }

    fn children(&self) -> &[Vec<u32>] {
        self.children.get_or_init(|| {
            let mut children = vec![Vec::new(); self.snapshot.len()];
            for (w, m) in self.snapshot.managers().iter().enumerate() {
                if let Some(m) = m {
                    children[*m].push(w as u32);
                }
            }
            children
        })
    }
}

/// Memoised leaf predicates, shared by the threads of one evaluation (one snapshot, one
/// date). Two threads may compute the same leaf at once; both get the same answer.
#[derive(Default)]
pub struct Memo {
    leaves: Mutex<HashMap<String, Arc<FixedBitSet>>>,
}

impl Memo {
    fn get(&self, key: &str) -> Option<Arc<FixedBitSet>> {
        self.lock().get(key).cloned()
    }

    fn put(&self, key: String, bits: &Arc<FixedBitSet>) {
        self.lock().insert(key, Arc::clone(bits));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<FixedBitSet>>> {
        // The map holds finished results only; a panic elsewhere cannot leave it half-written.
        self.leaves.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// What a rule sees: the snapshot's indexes, the date, managers and groups evaluated so far.
pub struct Columnar<'a> {
    pub indexes: &'a Indexes<'a>,
    pub as_of: NaiveDate,
    pub is_manager: &'a FixedBitSet,
    pub members: &'a [FixedBitSet],
    pub memo: &'a Memo,
    /// Set when the snapshot is a part of the organisation (incremental evaluation): the
    /// chart is then the whole one's.
    pub reports_to: Option<&'a dyn Fn(&str) -> FixedBitSet>,
}

/// How a value is derived from one attribute's value: `lower` and `days_since` applied in
/// order, innermost first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Step {
    Lower,
    DaysSince,
}

impl<'a> Columnar<'a> {
    fn snapshot(&self) -> &Snapshot {
        self.indexes.snapshot
    }

    fn n(&self) -> usize {
        self.snapshot().len()
    }

    /// The workers for whom the bool expression is true.
    pub fn truth(&mut self, e: &CExpr) -> FixedBitSet {
        self.bits(e).into_owned()
    }

    fn bits(&mut self, e: &CExpr) -> Bits<'a> {
        match &e.op {
            Op::Or(items) => {
                let mut iter = items.iter();
                let Some(first) = iter.next() else {
                    return Bits::Owned(FixedBitSet::with_capacity(self.n()));
                };
                let mut out = self.bits(first).into_owned();
                for item in iter {
                    let part = self.bits(item);
                    out.union_with(part.get());
                }
                Bits::Owned(out)
            }
            Op::And(items) => {
                let mut iter = items.iter();
                let Some(first) = iter.next() else {
                    return Bits::Owned(self.all());
                };
                let mut out = self.bits(first).into_owned();
                for item in iter {
                    if out.is_clear() {
                        break;
                    }
                    let part = self.bits(item);
                    out.intersect_with(part.get());
                }
                Bits::Owned(out)
            }
            Op::Not(inner) => {
                let mut out = self.bits(inner).into_owned();
                out.toggle_range(..);
                Bits::Owned(out)
            }
            Op::IsManager => Bits::Borrowed(self.is_manager),
            Op::MemberOf(g) => Bits::Borrowed(&self.members[*g]),
            Op::ReportsTo(key) => Bits::Shared(self.reports_to(key)),
            Op::Lit(v) => {
                if *v == Value::Bool(true) {
                    Bits::Owned(self.all())
                } else {
                    Bits::Owned(FixedBitSet::with_capacity(self.n()))
                }
            }
            _ => match self.leaf(e) {
                Some(bits) => Bits::Shared(bits),
                None => Bits::Owned(self.per_worker(e)),
            },
        }
    }

    fn all(&self) -> FixedBitSet {
        let mut all = FixedBitSet::with_capacity(self.n());
        all.insert_range(..);
        all
    }

    fn per_worker(&self, e: &CExpr) -> FixedBitSet {
        let ctx = eval::Context {
            snapshot: self.snapshot(),
            as_of: self.as_of,
            is_manager: self.is_manager,
            members: self.members,
        };
        eval::rule_over_all(e, &ctx)
    }

    /// A predicate over one attribute, decided per distinct value; `None` when `e` is not
    /// one.
    fn leaf(&mut self, e: &CExpr) -> Option<Arc<FixedBitSet>> {
        let (attr, decide, key) = self.leaf_predicate(e)?;
        if let Some(bits) = self.memo.get(&key) {
            return Some(bits);
        }
        let column = self.snapshot().column(attr);
        let table: Vec<bool> = column.dict().iter().map(|v| decide(Some(v))).collect();
        let missing = decide(None);
        let bits = Arc::new(self.gather(attr, &table, missing));
        self.memo.put(key, &bits);
        Some(bits)
    }

    /// The attribute, the decision per value (`None`: missing) and a memo key.
    #[expect(
        clippy::type_complexity,
        reason = "a local triple, named by the doc comment"
    )]
    fn leaf_predicate<'e>(
        &self,
        e: &'e CExpr,
    ) -> Option<(AttrId, Box<dyn Fn(Option<&Value>) -> bool + 'e>, String)> {
        let as_of = self.as_of;
        match &e.op {
            Op::Attr(a) => Some((
                *a,
                Box::new(|v| matches!(v, Some(Value::Bool(true)))),
                format!("bool {a}"),
            )),
            Op::Cmp { op, lhs, rhs } => {
                if let (Some((a, steps)), Some(lit)) = (derived(lhs), constant(rhs, as_of)) {
                    let key = format!("{a} {steps:?} {op} {lit:?}");
                    let op = *op;
                    return Some((
                        a,
                        Box::new(move |v| {
                            eval::compare(op, apply(v, &steps, as_of).as_ref(), lit.as_ref())
                        }),
                        key,
                    ));
                }
                let (Some(lit), Some((a, steps))) = (constant(lhs, as_of), derived(rhs)) else {
                    return None;
                };
                let key = format!("{lit:?} {op} {a} {steps:?}");
                let op = *op;
                Some((
                    a,
                    Box::new(move |v| {
                        eval::compare(op, lit.as_ref(), apply(v, &steps, as_of).as_ref())
                    }),
                    key,
                ))
            }
            Op::In {
                negated,
                lhs,
                items,
            } => {
                let (a, steps) = derived(lhs)?;
                let key = format!("{a} {steps:?} in {negated} {items:?}");
                let negated = *negated;
                Some((
                    a,
                    Box::new(move |v| {
                        apply(v, &steps, as_of).is_some_and(|v| items.contains(&v)) != negated
                    }),
                    key,
                ))
            }
            Op::Matches { lhs, regex } => {
                let (a, steps) = derived(lhs)?;
                let key = format!("{a} {steps:?} matches {}", regex.as_str());
                Some((
                    a,
                    Box::new(
                        move |v| matches!(apply(v, &steps, as_of), Some(Value::Str(s)) if regex.is_match(&s)),
                    ),
                    key,
                ))
            }
            Op::Has(inner) => {
                let (a, steps) = derived(inner)?;
                let key = format!("has {a} {steps:?}");
                Some((a, Box::new(move |v| apply(v, &steps, as_of).is_some()), key))
            }
            _ => None,
        }
    }

    /// The workers whose code the table marks (and the missing ones when `missing`): from the
    /// posting index when few match, by scanning the codes when many do.
    fn gather(&self, attr: AttrId, table: &[bool], missing: bool) -> FixedBitSet {
        let n = self.n();
        let column = self.snapshot().column(attr);
        let mut out = FixedBitSet::with_capacity(n);
        let matching_codes = table.iter().filter(|&&t| t).count();
        if matching_codes == 0 && !missing {
            return out;
        }
        if table.len() <= FEW_VALUES {
            // A union of the matching values' bitsets, or of the others', then flipped.
            let (bits, missing_bits) = self.indexes.code_bits(attr);
            let flip = matching_codes * 2 > table.len();
            for (code, &t) in table.iter().enumerate() {
                if t != flip {
                    out.union_with(&bits[code]);
                }
            }
            if missing != flip {
                out.union_with(missing_bits);
            }
            if flip {
                out.toggle_range(..);
            }
            return out;
        }
        // Scanning costs n; postings cost their length per matching code, once built.
        let postings = self.indexes.postings(attr);
        let count = |code: usize| (postings.offsets[code + 1] - postings.offsets[code]) as usize;
        let hits: usize = table
            .iter()
            .enumerate()
            .filter(|(_, &t)| t)
            .map(|(c, _)| count(c))
            .sum::<usize>()
            + if missing { postings.missing.len() } else { 0 };
        if hits * 4 < n {
            for (code, _) in table.iter().enumerate().filter(|(_, &t)| t) {
                let range = postings.offsets[code] as usize..postings.offsets[code + 1] as usize;
                for &w in &postings.workers[range] {
                    out.insert(w as usize);
                }
            }
            if missing {
                for &w in &postings.missing {
                    out.insert(w as usize);
                }
            }
        } else {
            // The table's last entry stands for a missing value: `MISSING.min(len)` is `len`.
            let mut table = table.to_vec();
            table.push(missing);
            let last = table.len() - 1;
            let words = column.codes().chunks(64).map(|chunk| {
                chunk.iter().enumerate().fold(0usize, |word, (i, &code)| {
                    word | (usize::from(table[(code as usize).min(last)]) << i)
                })
            });
            out = FixedBitSet::with_capacity_and_blocks(n, words);
        }
        out
    }

    /// Workers whose manager chain reaches the worker `key` (not that worker itself).
    fn reports_to(&mut self, key: &str) -> Arc<FixedBitSet> {
        let memo_key = format!("reports_to {key}");
        if let Some(bits) = self.memo.get(&memo_key) {
            return bits;
        }
        let mut out = FixedBitSet::with_capacity(self.n());
        if let Some(chart) = self.reports_to {
            out = chart(key);
        } else if let Some(root) = self.snapshot().by_key(key) {
            let children = self.indexes.children();
            let mut stack: Vec<u32> = children[root].clone();
            while let Some(w) = stack.pop() {
                let w = w as usize;
                if w == root || out.contains(w) {
                    continue;
                }
                out.insert(w);
                stack.extend_from_slice(&children[w]);
            }
        }
        let out = Arc::new(out);
        self.memo.put(memo_key, &out);
        out
    }
}

/// A result that may be shared with the memo or borrowed from the evaluation, so that `and`
/// and `or` copy a bitset only when they must.
enum Bits<'a> {
    Owned(FixedBitSet),
    Shared(Arc<FixedBitSet>),
    Borrowed(&'a FixedBitSet),
}

impl Bits<'_> {
    fn get(&self) -> &FixedBitSet {
        match self {
            Bits::Owned(b) => b,
            Bits::Shared(b) => b,
            Bits::Borrowed(b) => b,
        }
    }

    fn into_owned(self) -> FixedBitSet {
        match self {
            Bits::Owned(b) => b,
            Bits::Shared(b) => Arc::try_unwrap(b).unwrap_or_else(|b| (*b).clone()),
            Bits::Borrowed(b) => b.clone(),
        }
    }
}

/// `attr`, `lower(...)` or `days_since(...)` of one: the attribute and the steps.
fn derived(e: &CExpr) -> Option<(AttrId, Vec<Step>)> {
    match &e.op {
        Op::Attr(a) => Some((*a, Vec::new())),
        Op::Lower(inner) => derived(inner).map(|(a, mut s)| {
            s.push(Step::Lower);
            (a, s)
        }),
        Op::DaysSince(inner) => derived(inner).map(|(a, mut s)| {
            s.push(Step::DaysSince);
            (a, s)
        }),
        _ => None,
    }
}

/// The value of an expression that depends on no worker (`Some(None)`: missing).
fn constant(e: &CExpr, as_of: NaiveDate) -> Option<Option<Value>> {
    match &e.op {
        Op::Lit(v) => Some(Some(v.clone())),
        Op::Lower(inner) => {
            constant(inner, as_of).map(|v| apply(v.as_ref(), &[Step::Lower], as_of))
        }
        Op::DaysSince(inner) => {
            constant(inner, as_of).map(|v| apply(v.as_ref(), &[Step::DaysSince], as_of))
        }
        _ => None,
    }
}

/// Applies the steps as the interpreter does: `lower` of a non-string and `days_since` of a
/// non-date are missing.
fn apply(v: Option<&Value>, steps: &[Step], as_of: NaiveDate) -> Option<Value> {
    let mut v = v.cloned();
    for step in steps {
        v = match (step, v) {
            (Step::Lower, Some(Value::Str(s))) => Some(Value::Str(s.to_lowercase())),
            (Step::DaysSince, Some(Value::Date(d))) => {
                Some(Value::Num((as_of - d).num_days() as f64))
            }
            _ => None,
        };
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_apply_innermost_first() {
        let as_of = NaiveDate::from_ymd_opt(2026, 1, 11).unwrap();
        let d = Value::Date(NaiveDate::from_ymd_opt(2026, 1, 1).unwrap());
        assert_eq!(
            apply(Some(&d), &[Step::DaysSince], as_of),
            Some(Value::Num(10.0))
        );
        assert_eq!(apply(Some(&d), &[Step::Lower], as_of), None);
        assert_eq!(
            apply(Some(&Value::Str("AbC".into())), &[Step::Lower], as_of),
            Some(Value::Str("abc".into()))
        );
        assert_eq!(apply(None, &[], as_of), None);
    }
}
