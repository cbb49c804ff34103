//! The columnar evaluator: each rule over all workers at once. A predicate on an attribute
//! (or on `lower(...)`/`days_since(...)` of one) is decided once per distinct value of the
//! attribute's dictionary, and the matching workers are gathered from a posting index or a
//! scan of the codes, whichever touches less; `and`, `or` and `not` are word-wise bitset
//! operations; `member_of` reuses the group's bitset; `reports_to` walks the org chart down
//! from the manager once. Leaf results are memoised, because thousands of rules share a few
//! hundred predicates. Anything else falls back to the per-worker interpreter
//! ([`super::eval`]), which is also the oracle this evaluator is tested against.

use std::borrow::Cow;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, OnceLock, RwLock};

use chrono::NaiveDate;
use fixedbitset::FixedBitSet;
use rustc_hash::FxHashMap;

use super::eval;
use crate::directory::{AttrId, Snapshot, Value, MISSING};
use crate::rules::ast::CmpOp;
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
pub struct Memo<'r> {
    leaves: RwLock<FxHashMap<Key<'r>, Arc<FixedBitSet>>>,
}

impl<'r> Memo<'r> {
    fn get(&self, key: &Key<'r>) -> Option<Arc<FixedBitSet>> {
        // The map holds finished results only; a panic elsewhere cannot leave it half-written.
        let leaves = crate::locks::read(&self.leaves);
        leaves.get(key).cloned()
    }

    fn put(&self, key: Key<'r>, bits: &Arc<FixedBitSet>) {
        let mut leaves = crate::locks::write(&self.leaves);
        leaves.insert(key, Arc::clone(bits));
    }
}

/// What a memoised result is the answer to: a predicate over one attribute (after the steps),
/// or a `reports_to`. Thousands of rules repeat a few hundred of these; a key borrows from
/// the rules, so that making one seldom allocates, and it decides values itself.
#[derive(PartialEq, Eq, Hash)]
enum Key<'r> {
    Bool(AttrId),
    Cmp {
        attr: AttrId,
        steps: Vec<Step>,
        op: CmpOp,
        literal: Exact<'r>,
        /// `attr op literal`, or `literal op attr`.
        attr_first: bool,
    },
    In {
        attr: AttrId,
        steps: Vec<Step>,
        negated: bool,
        items: ExactList<'r>,
    },
    Matches {
        attr: AttrId,
        steps: Vec<Step>,
        regex: Pattern<'r>,
    },
    Has {
        attr: AttrId,
        steps: Vec<Step>,
    },
    ReportsTo(&'r str),
}

impl Key<'_> {
    fn attr(&self) -> Option<AttrId> {
        match self {
            Key::Bool(attr)
            | Key::Cmp { attr, .. }
            | Key::In { attr, .. }
            | Key::Matches { attr, .. }
            | Key::Has { attr, .. } => Some(*attr),
            Key::ReportsTo(_) => None,
        }
    }

    /// The predicate for one value of the attribute (`None`: missing), as the interpreter
    /// decides it.
    fn decide(&self, v: Option<&Value>, as_of: NaiveDate) -> bool {
        match self {
            Key::Bool(_) => matches!(v, Some(Value::Bool(true))),
            Key::Cmp {
                steps,
                op,
                literal,
                attr_first,
                ..
            } => {
                let v = apply(v, steps, as_of);
                let literal = literal.0.as_deref();
                if *attr_first {
                    eval::compare(*op, v.as_deref(), literal)
                } else {
                    eval::compare(*op, literal, v.as_deref())
                }
            }
            Key::In {
                steps,
                negated,
                items,
                ..
            } => apply(v, steps, as_of).is_some_and(|v| items.0.contains(&*v)) != *negated,
            Key::Matches { steps, regex, .. } => {
                matches!(apply(v, steps, as_of).as_deref(), Some(Value::Str(s)) if regex.0.is_match(s))
            }
            Key::Has { steps, .. } => apply(v, steps, as_of).is_some(),
            Key::ReportsTo(_) => false,
        }
    }
}

/// A regular expression as a key, by its text.
struct Pattern<'r>(&'r regex::Regex);

impl PartialEq for Pattern<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.0.as_str() == other.0.as_str()
    }
}

impl Eq for Pattern<'_> {}

impl Hash for Pattern<'_> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.0.as_str().hash(state);
    }
}

/// A literal as a key: equal when identical, numbers by their bits.
struct Exact<'r>(Option<Cow<'r, Value>>);

/// An `in` list as a key, compared as [`Exact`] does.
struct ExactList<'r>(&'r [Value]);

/// The parts of a value that make it identical to another.
#[derive(PartialEq, Eq, Hash)]
enum Identity<'v> {
    Str(&'v str),
    Num(u64),
    Bool(bool),
    Date(NaiveDate),
    List(&'v [String]),
}

fn identity(v: &Value) -> Identity<'_> {
    match v {
        Value::Str(s) => Identity::Str(s),
        Value::Num(n) => Identity::Num(n.to_bits()),
        Value::Bool(b) => Identity::Bool(*b),
        Value::Date(d) => Identity::Date(*d),
        Value::List(items) => Identity::List(items),
    }
}

impl PartialEq for Exact<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.0.as_deref().map(identity) == other.0.as_deref().map(identity)
    }
}

impl Eq for Exact<'_> {}

impl Hash for Exact<'_> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.0.as_deref().map(identity).hash(state);
    }
}

impl PartialEq for ExactList<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.0.len() == other.0.len()
            && self
                .0
                .iter()
                .zip(other.0)
                .all(|(a, b)| identity(a) == identity(b))
    }
}

impl Eq for ExactList<'_> {}

impl Hash for ExactList<'_> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.0.len().hash(state);
        for v in self.0 {
            identity(v).hash(state);
        }
    }
}

/// What a rule sees: the snapshot's indexes, the date, managers and groups evaluated so far.
/// `'r` is the rules' lifetime, which the memo's keys borrow.
pub struct Columnar<'a, 'r> {
    pub indexes: &'a Indexes<'a>,
    pub as_of: NaiveDate,
    pub is_manager: &'a FixedBitSet,
    pub members: &'a [FixedBitSet],
    pub memo: &'a Memo<'r>,
    /// Set when the snapshot is a part of the organisation (incremental evaluation): the
    /// chart is then the whole one's.
    pub part: Option<&'a eval::Part<'a>>,
}

/// How a value is derived from one attribute's value: `lower` and `days_since` applied in
/// order, innermost first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Step {
    Lower,
    DaysSince,
}

impl<'a, 'r> Columnar<'a, 'r> {
    fn snapshot(&self) -> &Snapshot {
        self.indexes.snapshot
    }

    fn n(&self) -> usize {
        self.snapshot().len()
    }

    /// The workers for whom the bool expression is true.
    pub fn truth(&mut self, e: &'r CExpr) -> FixedBitSet {
        self.bits(e).into_owned()
    }

    fn bits(&mut self, e: &'r CExpr) -> Bits<'a> {
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
            part: self.part,
        };
        eval::rule_over_all(e, &ctx)
    }

    /// A predicate over one attribute, decided per distinct value; `None` when `e` is not
    /// one.
    fn leaf(&mut self, e: &'r CExpr) -> Option<Arc<FixedBitSet>> {
        let key = self.leaf_key(e)?;
        if let Some(bits) = self.memo.get(&key) {
            return Some(bits);
        }
        let as_of = self.as_of;
        let attr = key.attr()?;
        let column = self.snapshot().column(attr);
        let missing = key.decide(None, as_of);
        let bits = if column.dict().len() > self.n() {
            // A part of the organisation sharing the whole's dictionary: decide only the
            // values its workers have.
            let mut decided: FxHashMap<u32, bool> = FxHashMap::default();
            let mut out = FixedBitSet::with_capacity(self.n());
            for (w, &code) in column.codes().iter().enumerate() {
                let hit = match code {
                    MISSING => missing,
                    code => *decided
                        .entry(code)
                        .or_insert_with(|| key.decide(Some(&column.dict()[code as usize]), as_of)),
                };
                out.set(w, hit);
            }
            Arc::new(out)
        } else {
            let table: Vec<bool> = column
                .dict()
                .iter()
                .map(|v| key.decide(Some(v), as_of))
                .collect();
            Arc::new(self.gather(attr, &table, missing))
        };
        self.memo.put(key, &bits);
        Some(bits)
    }

    /// The leaf predicate `e` is, if it is one.
    fn leaf_key(&self, e: &'r CExpr) -> Option<Key<'r>> {
        let as_of = self.as_of;
        match &e.op {
            Op::Attr(a) => Some(Key::Bool(*a)),
            Op::Cmp { op, lhs, rhs } => {
                let (attr, steps, literal, attr_first) = match (derived(lhs), constant(rhs, as_of))
                {
                    (Some((a, steps)), Some(lit)) => (a, steps, lit, true),
                    _ => {
                        let (Some(lit), Some((a, steps))) = (constant(lhs, as_of), derived(rhs))
                        else {
                            return None;
                        };
                        (a, steps, lit, false)
                    }
                };
                Some(Key::Cmp {
                    attr,
                    steps,
                    op: *op,
                    literal: Exact(literal),
                    attr_first,
                })
            }
            Op::In {
                negated,
                lhs,
                items,
            } => {
                let (attr, steps) = derived(lhs)?;
                Some(Key::In {
                    attr,
                    steps,
                    negated: *negated,
                    items: ExactList(items),
                })
            }
            Op::Matches { lhs, regex } => {
                let (attr, steps) = derived(lhs)?;
                Some(Key::Matches {
                    attr,
                    steps,
                    regex: Pattern(regex),
                })
            }
            Op::Has(inner) => {
                let (attr, steps) = derived(inner)?;
                Some(Key::Has { attr, steps })
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
    fn reports_to(&mut self, key: &'r str) -> Arc<FixedBitSet> {
        let memo_key = Key::ReportsTo(key);
        if let Some(bits) = self.memo.get(&memo_key) {
            return bits;
        }
        let mut out = FixedBitSet::with_capacity(self.n());
        if let Some(part) = self.part {
            out = part.reports_to(key);
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
fn constant(e: &CExpr, as_of: NaiveDate) -> Option<Option<Cow<'_, Value>>> {
    match &e.op {
        Op::Lit(v) => Some(Some(Cow::Borrowed(v))),
        Op::Lower(inner) => constant(inner, as_of).map(|v| {
            apply(v.as_deref(), &[Step::Lower], as_of).map(|v| Cow::Owned(v.into_owned()))
        }),
        Op::DaysSince(inner) => constant(inner, as_of).map(|v| {
            apply(v.as_deref(), &[Step::DaysSince], as_of).map(|v| Cow::Owned(v.into_owned()))
        }),
        _ => None,
    }
}

/// Applies the steps as the interpreter does: `lower` of a non-string and `days_since` of a
/// non-date are missing. Without steps the value is borrowed.
fn apply<'v>(v: Option<&'v Value>, steps: &[Step], as_of: NaiveDate) -> Option<Cow<'v, Value>> {
    let mut v = v.map(Cow::Borrowed);
    for step in steps {
        v = match (step, v.as_deref()) {
            (Step::Lower, Some(Value::Str(s))) => Some(Cow::Owned(Value::Str(s.to_lowercase()))),
            (Step::DaysSince, Some(Value::Date(d))) => {
                Some(Cow::Owned(Value::Num((as_of - *d).num_days() as f64)))
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
            apply(Some(&d), &[Step::DaysSince], as_of).as_deref(),
            Some(&Value::Num(10.0))
        );
        assert_eq!(apply(Some(&d), &[Step::Lower], as_of), None);
        assert_eq!(
            apply(Some(&Value::Str("AbC".into())), &[Step::Lower], as_of).as_deref(),
            Some(&Value::Str("abc".into()))
        );
        assert_eq!(apply(None, &[], as_of), None);
    }
}
