//! Memberships: a snapshot, a rule set and an evaluation date in; every group's members out,
//! exactly as docs/rules-language.md section 8 says. Pure: no clock, no I/O, no async.
//!
//! The unit of work is one rule over all workers at once, returning a bitset: the columnar
//! evaluator ([`columnar`]) does it, the groups of each `member_of` level split between two
//! threads. [`evaluate_simple`] does the same with the per-worker interpreter ([`eval`]); it
//! is the oracle the tests and the benchmark compare with.

use chrono::NaiveDate;
use fixedbitset::FixedBitSet;

use crate::directory::{Snapshot, WorkerId};
use crate::rules::{GroupId, GroupKind, PersonEntry, RuleSet, Who};

pub mod columnar;
pub mod eval;
pub mod explain;
pub mod guardrails;
mod incremental;
pub mod lint;
mod reach;
pub mod reason;
pub mod rule_tests;

pub use explain::{explain, Explanation};
pub use incremental::evaluate_incremental;
pub use lint::lint;
pub use reach::reach;

/// The result of evaluating a rule set over a snapshot on one date.
#[derive(Debug, Clone)]
pub struct Evaluation {
    pub as_of: NaiveDate,
    eligible: FixedBitSet,
    is_manager: FixedBitSet,
    /// By [`GroupId`].
    members: Vec<FixedBitSet>,
    /// Hybrid groups' rule matches before include and exclude, for the reason of a membership.
    rule_sets: Vec<Option<FixedBitSet>>,
}

impl Evaluation {
    pub fn members(&self, group: GroupId) -> &FixedBitSet {
        &self.members[group]
    }

    pub fn is_member(&self, group: GroupId, worker: WorkerId) -> bool {
        self.members[group].contains(worker)
    }

    pub fn eligible(&self) -> &FixedBitSet {
        &self.eligible
    }

    pub fn is_manager(&self) -> &FixedBitSet {
        &self.is_manager
    }

    /// What expressions see when evaluated against this evaluation (for explain and lint).
    pub fn context<'a>(&'a self, snapshot: &'a Snapshot) -> eval::Context<'a> {
        context(snapshot, self.as_of, &self.is_manager, &self.members)
    }

    /// Where this evaluation differs from `other` of the same rules: `eligibility`,
    /// `is_manager`, and each group whose members or rule matches differ, by name.
    pub fn differences(&self, other: &Evaluation, rules: &RuleSet) -> Vec<String> {
        let mut out = Vec::new();
        if self.eligible != other.eligible {
            out.push("eligibility".to_string());
        }
        if self.is_manager != other.is_manager {
            out.push("is_manager".to_string());
        }
        for g in 0..self.members.len().min(other.members.len()) {
            if self.members[g] != other.members[g] || self.rule_sets[g] != other.rule_sets[g] {
                out.push(rules.group(g).name.clone());
            }
        }
        out
    }

    /// Groups the worker is a final member of, in rule-set order.
    pub fn groups_of(&self, worker: WorkerId) -> Vec<GroupId> {
        (0..self.members.len())
            .filter(|&g| self.members[g].contains(worker))
            .collect()
    }
}

/// Evaluates every group of `rules` over `snapshot` as of `as_of`.
pub fn evaluate(snapshot: &Snapshot, rules: &RuleSet, as_of: NaiveDate) -> Evaluation {
    let n = snapshot.len();
    let groups = rules.groups().len();
    let indexes = columnar::Indexes::new(snapshot);
    let memo = columnar::Memo::default();
    let none = FixedBitSet::with_capacity(n);
    // Placeholders: each group's bitset is made by its level, and `member_of` only reads
    // groups of earlier levels.
    let mut members = vec![FixedBitSet::new(); groups];
    let eligible = match rules.eligibility() {
        // The checker keeps `is_manager` and `member_of` out of the eligibility expression.
        Some(expr) => columnar::Columnar {
            indexes: &indexes,
            as_of,
            is_manager: &none,
            members: &members,
            memo: &memo,
            part: None,
        }
        .truth(expr),
        None => full(n),
    };
    let is_manager = managers_of(snapshot, &eligible);
    let mut rule_sets = vec![None; groups];
    by_levels(rules, &mut members, &mut rule_sets, |members, part| {
        let mut c = columnar::Columnar {
            indexes: &indexes,
            as_of,
            is_manager: &is_manager,
            members,
            memo: &memo,
            part: None,
        };
        part.iter()
            .map(|&g| {
                let result = group_members(rules, g, &eligible, snapshot, as_of, |r| c.truth(r));
                (g, result)
            })
            .collect()
    });
    Evaluation {
        as_of,
        eligible,
        is_manager,
        members,
        rule_sets,
    }
}

/// A group's final members, and for a hybrid group its rule's matches.
type Members = (FixedBitSet, Option<FixedBitSet>);

/// Evaluates the groups level by level: groups of one level name only groups of earlier
/// levels, so two threads share a level, each running `run` on half of it with the members
/// so far.
fn by_levels(
    rules: &RuleSet,
    members: &mut [FixedBitSet],
    rule_sets: &mut [Option<FixedBitSet>],
    run: impl Fn(&[FixedBitSet], &[GroupId]) -> Vec<(GroupId, Members)> + Sync,
) {
    for level in rules.levels() {
        let so_far: &[FixedBitSet] = members;
        let results = crate::halves::map_halves(level.len(), |half| run(so_far, &level[half]));
        for (g, (group, rule_set)) in results {
            members[g] = group;
            rule_sets[g] = rule_set;
        }
    }
}

/// The same evaluation with the per-worker interpreter: the oracle of the columnar one.
pub fn evaluate_simple(snapshot: &Snapshot, rules: &RuleSet, as_of: NaiveDate) -> Evaluation {
    let n = snapshot.len();
    let none = FixedBitSet::with_capacity(n);
    let mut members = vec![FixedBitSet::with_capacity(n); rules.groups().len()];
    let eligible = match rules.eligibility() {
        Some(expr) => eval::rule_over_all(expr, &context(snapshot, as_of, &none, &members)),
        None => full(n),
    };
    let is_manager = managers_of(snapshot, &eligible);
    let mut rule_sets = vec![None; rules.groups().len()];
    for &g in rules.evaluation_order() {
        let ctx = context(snapshot, as_of, &is_manager, &members);
        let (group, rule_set) = group_members(rules, g, &eligible, snapshot, as_of, |r| {
            eval::rule_over_all(r, &ctx)
        });
        members[g] = group;
        rule_sets[g] = rule_set;
    }
    Evaluation {
        as_of,
        eligible,
        is_manager,
        members,
        rule_sets,
    }
}

fn context<'a>(
    snapshot: &'a Snapshot,
    as_of: NaiveDate,
    is_manager: &'a FixedBitSet,
    members: &'a [FixedBitSet],
) -> eval::Context<'a> {
    eval::Context {
        snapshot,
        as_of,
        is_manager,
        members,
        part: None,
    }
}

fn full(n: usize) -> FixedBitSet {
    let mut all = FixedBitSet::with_capacity(n);
    all.insert_range(..);
    all
}

/// Workers whom at least one eligible worker names as manager.
fn managers_of(snapshot: &Snapshot, eligible: &FixedBitSet) -> FixedBitSet {
    let mut out = FixedBitSet::with_capacity(snapshot.len());
    for w in eligible.ones() {
        if let Some(m) = snapshot.manager(w) {
            out.insert(m);
        }
    }
    out
}

/// Adds to `out` every worker below `from` in the chart `managers`, with `extra` edges
/// (manager, worker) besides.
pub(super) fn descendants(
    managers: &[Option<WorkerId>],
    extra: &[(WorkerId, WorkerId)],
    from: &[WorkerId],
    out: &mut FixedBitSet,
) {
    let n = managers.len();
    // Children by manager, as one array: `starts[m]..starts[m + 1]` are m's.
    let mut starts = vec![0usize; n + 1];
    let edges = || {
        (managers.iter().enumerate())
            .filter_map(|(w, m)| m.map(|m| (m, w)))
            .chain(extra.iter().copied())
    };
    for (m, _) in edges() {
        starts[m + 1] += 1;
    }
    for m in 0..n {
        starts[m + 1] += starts[m];
    }
    let mut children = vec![0; starts[n]];
    let mut next = starts.clone();
    for (m, w) in edges() {
        children[next[m]] = w;
        next[m] += 1;
    }
    let mut seen = FixedBitSet::with_capacity(n);
    let mut stack: Vec<WorkerId> = from.to_vec();
    seen.extend(from.iter().copied());
    while let Some(m) = stack.pop() {
        for &c in &children[starts[m]..starts[m + 1]] {
            if !seen.put(c) {
                out.insert(c);
                stack.push(c);
            }
        }
    }
}

/// The group's final members, and for a hybrid group its rule's matches.
fn group_members<'r>(
    rules: &'r RuleSet,
    g: GroupId,
    eligible: &FixedBitSet,
    snapshot: &Snapshot,
    as_of: NaiveDate,
    mut rule_over_all: impl FnMut(&'r crate::rules::CExpr) -> FixedBitSet,
) -> Members {
    let group = rules.group(g);
    let n = snapshot.len();
    let mut members = match group.kind {
        GroupKind::Manual => entries_set(&group.members, snapshot, as_of),
        GroupKind::Managed | GroupKind::Hybrid => match &group.rule {
            Some(rule) => rule_over_all(rule),
            None => FixedBitSet::with_capacity(n),
        },
    };
    let mut rule_set = None;
    if group.kind == GroupKind::Hybrid {
        rule_set = Some(members.clone());
        members.union_with(&entries_set(&group.include, snapshot, as_of));
        members.difference_with(&entries_set(&group.exclude, snapshot, as_of));
    }
    members.intersect_with(eligible);
    (members, rule_set)
}

/// The workers that the entries active on `as_of` name.
fn entries_set(entries: &[PersonEntry], snapshot: &Snapshot, as_of: NaiveDate) -> FixedBitSet {
    let mut set = FixedBitSet::with_capacity(snapshot.len());
    for entry in entries.iter().filter(|e| e.active_on(as_of)) {
        if let Some(w) = resolve(&entry.who, snapshot) {
            set.insert(w);
        }
    }
    set
}

/// The worker a person entry names, if any: an email ignoring case; a bare string as a key
/// first, then as an email.
pub fn resolve(who: &Who, snapshot: &Snapshot) -> Option<WorkerId> {
    match who {
        Who::Key(k) => snapshot.by_key(k),
        Who::Email(e) => snapshot.by_email(e),
        Who::KeyOrEmail(s) => snapshot.find(s),
    }
}
