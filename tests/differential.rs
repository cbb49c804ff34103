//! Property test: the engine against a reference evaluator written straight from
//! docs/rules-language.md, on random well-typed rules and random directories. The reference is
//! deliberately naive and shares no code with the engine: it walks its own expression type
//! over its own rows. `PROPTEST_CASES` sets the number of cases (CI runs 10,000).

#![allow(clippy::unwrap_used, reason = "a failed unwrap is a failed test")]

mod common;

use std::path::Path;
use std::sync::Arc;

use chrono::{Duration, NaiveDate};
use proptest::prelude::*;
use rosterd::directory::{Schema, Snapshot, Value};
use rosterd::engine;
use rosterd::rules::{self, SourceMap};

fn as_of() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 11, 22).unwrap()
}

// ---------- the generated world ----------

#[derive(Debug, Clone)]
struct Row {
    s: Option<String>,
    t: Option<String>,
    n: Option<f64>,
    b: Option<bool>,
    d: Option<NaiveDate>,
    l: Option<Vec<String>>,
    status: Option<String>,
    /// An index into the rows; out of range is a reference to nobody.
    mgr: Option<usize>,
}

#[derive(Debug, Clone)]
enum Term {
    Attr(&'static str),
    Str(String),
    Num(f64),
    Date(NaiveDate),
    List(Vec<String>),
    Lower(Box<Term>),
    DaysSince(Box<Term>),
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Cmp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Contains,
    Starts,
    Ends,
}

#[derive(Debug, Clone)]
enum B {
    Cmp(Cmp, Term, Term),
    In(Term, Vec<Term>, bool),
    Matches(Term, &'static str),
    Has(&'static str),
    BoolAttr,
    IsManager,
    /// Refers to group `k`; rendered only when `k` is an earlier group.
    MemberOf(usize),
    ReportsTo(usize),
    /// Two bool atoms compared with `==` (or `!=`): no columnar leaf, so the per-worker
    /// fallback evaluates it.
    BoolCmp(Box<B>, Box<B>, bool),
    Not(Box<B>),
    And(Box<B>, Box<B>),
    Or(Box<B>, Box<B>),
}

#[derive(Debug, Clone)]
struct Entry {
    worker: usize,
    by_email: bool,
    /// Days from the evaluation date to the expiry, if any.
    expires: Option<i64>,
}

#[derive(Debug, Clone)]
struct Group {
    kind: u8,
    rule: B,
    include: Vec<Entry>,
    exclude: Vec<Entry>,
    members: Vec<Entry>,
}

#[derive(Debug, Clone)]
struct World {
    rows: Vec<Row>,
    groups: Vec<Group>,
    eligibility: u8,
}

const ELIGIBILITY: [Option<&str>; 4] = [
    None,
    Some(r#"status == "Active""#),
    Some(r#"status != "Terminated""#),
    Some("has(s)"),
];
const PATTERNS: [&str; 6] = ["a", "^a", "b$", "^$", "é", "(?i)b"];

fn strings() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(""),
        Just("a"),
        Just("b"),
        Just("ab"),
        Just("B"),
        Just("é"),
        Just("a\"b"),
        Just("É")
    ]
    .prop_map(str::to_string)
}

fn numbers() -> impl Strategy<Value = f64> {
    prop_oneof![Just(-1.0), Just(0.0), Just(1.0), Just(2.5), Just(3.0)]
}

fn dates() -> impl Strategy<Value = NaiveDate> {
    (-2i64..=2).prop_map(|d| as_of() + Duration::days(d))
}

fn row() -> impl Strategy<Value = Row> {
    (
        proptest::option::of(strings()),
        proptest::option::of(strings()),
        proptest::option::of(numbers()),
        proptest::option::of(any::<bool>()),
        proptest::option::of(dates()),
        proptest::option::of(proptest::collection::vec(
            prop_oneof![Just("x"), Just("y"), Just("z")].prop_map(str::to_string),
            0..3,
        )),
        proptest::option::of(
            prop_oneof![Just("Active"), Just("Terminated"), Just("Leave")].prop_map(str::to_string),
        ),
        proptest::option::of(0usize..18),
    )
        .prop_map(|(s, t, n, b, d, l, status, mgr)| Row {
            s,
            t,
            n,
            b,
            d,
            l,
            status,
            mgr,
        })
}

fn str_term() -> impl Strategy<Value = Term> {
    prop_oneof![
        Just(Term::Attr("s")),
        Just(Term::Attr("t")),
        strings().prop_map(Term::Str),
        prop_oneof![Just(Term::Attr("s")), Just(Term::Attr("t"))]
            .prop_map(|t| Term::Lower(Box::new(t))),
    ]
}

fn num_term() -> impl Strategy<Value = Term> {
    prop_oneof![
        Just(Term::Attr("n")),
        numbers().prop_map(Term::Num),
        prop_oneof![Just(Term::Attr("d")), dates().prop_map(Term::Date)]
            .prop_map(|t| Term::DaysSince(Box::new(t))),
    ]
}

fn date_term() -> impl Strategy<Value = Term> {
    prop_oneof![Just(Term::Attr("d")), dates().prop_map(Term::Date)]
}

fn list_term() -> impl Strategy<Value = Term> {
    prop_oneof![
        Just(Term::Attr("l")),
        proptest::collection::vec(
            prop_oneof![Just("x"), Just("y")].prop_map(str::to_string),
            0..3
        )
        .prop_map(Term::List),
    ]
}

fn ordering() -> impl Strategy<Value = Cmp> {
    prop_oneof![
        Just(Cmp::Eq),
        Just(Cmp::Ne),
        Just(Cmp::Lt),
        Just(Cmp::Le),
        Just(Cmp::Gt),
        Just(Cmp::Ge)
    ]
}

fn leaf() -> impl Strategy<Value = B> {
    prop_oneof![
        (
            str_term(),
            prop_oneof![
                ordering(),
                Just(Cmp::Contains),
                Just(Cmp::Starts),
                Just(Cmp::Ends)
            ],
            str_term()
        )
            .prop_map(|(l, op, r)| B::Cmp(op, l, r)),
        (num_term(), ordering(), num_term()).prop_map(|(l, op, r)| B::Cmp(op, l, r)),
        (date_term(), ordering(), date_term()).prop_map(|(l, op, r)| B::Cmp(op, l, r)),
        (
            list_term(),
            prop_oneof![Just(Cmp::Eq), Just(Cmp::Ne)],
            list_term()
        )
            .prop_map(|(l, op, r)| B::Cmp(op, l, r)),
        (prop_oneof![Just(Term::Attr("l"))], str_term()).prop_map(|(l, r)| B::Cmp(
            Cmp::Contains,
            l,
            r
        )),
        (
            str_term(),
            proptest::collection::vec(strings().prop_map(Term::Str), 0..3),
            any::<bool>()
        )
            .prop_map(|(l, xs, neg)| B::In(l, xs, neg)),
        (
            num_term(),
            proptest::collection::vec(numbers().prop_map(Term::Num), 1..3),
            any::<bool>()
        )
            .prop_map(|(l, xs, neg)| B::In(l, xs, neg)),
        (
            date_term(),
            proptest::collection::vec(dates().prop_map(Term::Date), 1..3),
            any::<bool>()
        )
            .prop_map(|(l, xs, neg)| B::In(l, xs, neg)),
        (str_term(), proptest::sample::select(PATTERNS.to_vec()))
            .prop_map(|(l, p)| B::Matches(l, p)),
        proptest::sample::select(vec!["s", "t", "n", "b", "d", "l"]).prop_map(B::Has),
        Just(B::BoolAttr),
        Just(B::IsManager),
        (0usize..4).prop_map(B::MemberOf),
        (0usize..18).prop_map(B::ReportsTo),
    ]
}

fn bool_atom() -> impl Strategy<Value = B> {
    prop_oneof![
        Just(B::BoolAttr),
        Just(B::IsManager),
        (0usize..4).prop_map(B::MemberOf),
        (0usize..18).prop_map(B::ReportsTo),
    ]
}

fn expr() -> impl Strategy<Value = B> {
    let leaf = prop_oneof![
        8 => leaf(),
        1 => (bool_atom(), bool_atom(), any::<bool>())
            .prop_map(|(l, r, ne)| B::BoolCmp(Box::new(l), Box::new(r), ne)),
    ];
    leaf.prop_recursive(3, 24, 2, |inner| {
        prop_oneof![
            inner.clone().prop_map(|b| B::Not(Box::new(b))),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| B::And(Box::new(a), Box::new(b))),
            (inner.clone(), inner).prop_map(|(a, b)| B::Or(Box::new(a), Box::new(b))),
        ]
    })
}

fn entry() -> impl Strategy<Value = Entry> {
    (0usize..18, any::<bool>(), proptest::option::of(-2i64..=2)).prop_map(
        |(worker, by_email, expires)| Entry {
            worker,
            by_email,
            expires,
        },
    )
}

fn group() -> impl Strategy<Value = Group> {
    let entries = || proptest::collection::vec(entry(), 0..4);
    (0u8..3, expr(), entries(), entries(), entries()).prop_map(
        |(kind, rule, include, exclude, members)| Group {
            kind,
            rule,
            include,
            exclude,
            members,
        },
    )
}

fn world() -> impl Strategy<Value = World> {
    (
        proptest::collection::vec(row(), 0..16),
        proptest::collection::vec(group(), 1..5),
        0u8..4,
    )
        .prop_map(|(rows, groups, eligibility)| World {
            rows,
            groups,
            eligibility,
        })
}

// ---------- rendering the world for rosterd ----------

fn render_term(t: &Term) -> String {
    match t {
        Term::Attr(a) => a.to_string(),
        Term::Str(s) => format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\"")),
        Term::Num(n) => format!("{n}"),
        Term::Date(d) => d.to_string(),
        Term::List(items) => format!(
            "[{}]",
            items
                .iter()
                .map(|i| format!("\"{i}\""))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Term::Lower(t) => format!("lower({})", render_term(t)),
        Term::DaysSince(t) => format!("days_since({})", render_term(t)),
    }
}

fn render(b: &B, group: usize) -> String {
    let op = |c: Cmp| match c {
        Cmp::Eq => "==",
        Cmp::Ne => "!=",
        Cmp::Lt => "<",
        Cmp::Le => "<=",
        Cmp::Gt => ">",
        Cmp::Ge => ">=",
        Cmp::Contains => "contains",
        Cmp::Starts => "startswith",
        Cmp::Ends => "endswith",
    };
    match b {
        B::Cmp(c, l, r) => format!("{} {} {}", render_term(l), op(*c), render_term(r)),
        B::In(l, items, neg) => format!(
            "{} {} [{}]",
            render_term(l),
            if *neg { "not in" } else { "in" },
            items.iter().map(render_term).collect::<Vec<_>>().join(", ")
        ),
        B::Matches(l, p) => format!("{} matches \"{p}\"", render_term(l)),
        B::Has(a) => format!("has({a})"),
        B::BoolAttr => "b".into(),
        B::IsManager => "is_manager".into(),
        B::MemberOf(k) if *k < group => format!("member_of(\"g{k}\")"),
        B::MemberOf(_) => "b".into(),
        B::ReportsTo(k) => format!("reports_to(\"W{k}\")"),
        B::BoolCmp(x, y, ne) => format!(
            "{} {} {}",
            render(x, group),
            if *ne { "!=" } else { "==" },
            render(y, group)
        ),
        B::Not(x) => format!("not ({})", render(x, group)),
        B::And(x, y) => format!("({}) and ({})", render(x, group), render(y, group)),
        B::Or(x, y) => format!("({})\n        or ({})", render(x, group), render(y, group)),
    }
}

fn render_entries(key: &str, entries: &[Entry]) -> String {
    let mut out = format!("    {key}:\n");
    for e in entries {
        let who = if e.by_email {
            format!("email: W{}@Example.com", e.worker)
        } else {
            format!("id: W{}", e.worker)
        };
        out.push_str(&format!("      - {who}\n"));
        if let Some(days) = e.expires {
            out.push_str(&format!(
                "        expires: {}\n",
                as_of() + Duration::days(days)
            ));
        }
    }
    out
}

fn yaml(world: &World) -> String {
    let mut out = String::from("groups:\n");
    for (i, g) in world.groups.iter().enumerate() {
        out.push_str(&format!("  - name: g{i}\n"));
        match g.kind {
            0 => out.push_str(&format!(
                "    kind: managed\n    rule: |-\n      {}\n",
                render(&g.rule, i)
            )),
            1 => {
                out.push_str(&format!(
                    "    kind: hybrid\n    rule: >-\n      {}\n",
                    render(&g.rule, i)
                ));
                out.push_str(&render_entries("include", &g.include));
                out.push_str(&render_entries("exclude", &g.exclude));
            }
            _ => {
                out.push_str("    kind: manual\n");
                out.push_str(&render_entries("members", &g.members));
            }
        }
    }
    out
}

fn schema() -> Arc<Schema> {
    common::letters_schema()
}

/// The rows as the loader would store them: empty strings and lists are missing.
fn snapshot(rows: &[Row]) -> Snapshot {
    let text = |v: &Option<String>| v.clone().filter(|s| !s.is_empty()).map(Value::Str);
    let values = rows
        .iter()
        .enumerate()
        .map(|(i, r)| {
            vec![
                Some(Value::Str(format!("W{i}"))),
                Some(Value::Str(format!("w{i}@example.com"))),
                r.mgr.map(|m| Value::Str(format!("W{m}"))),
                text(&r.s),
                text(&r.t),
                r.n.map(Value::Num),
                r.b.map(Value::Bool),
                r.d.map(Value::Date),
                r.l.clone().filter(|l| !l.is_empty()).map(Value::List),
                text(&r.status),
            ]
        })
        .collect();
    Snapshot::from_rows(schema(), values)
}

// ---------- the reference evaluator, from docs/rules-language.md ----------

#[derive(Debug, Clone, PartialEq)]
enum V {
    S(String),
    N(f64),
    D(NaiveDate),
    L(Vec<String>),
}

struct Reference<'a> {
    rows: &'a [Row],
    eligible: Vec<bool>,
    is_manager: Vec<bool>,
    members: Vec<Vec<bool>>,
}

/// The manager of worker `i`, when it is another worker of the export.
fn manager(rows: &[Row], i: usize) -> Option<usize> {
    rows[i].mgr.filter(|&m| m < rows.len() && m != i)
}

impl Reference<'_> {
    /// "An attribute that is absent, or empty in the export, is missing."
    fn term(&self, t: &Term, w: usize) -> Option<V> {
        let r = &self.rows[w];
        let nonempty = |s: &Option<String>| s.clone().filter(|s| !s.is_empty());
        match t {
            Term::Attr("s") => nonempty(&r.s).map(V::S),
            Term::Attr("t") => nonempty(&r.t).map(V::S),
            Term::Attr("n") => r.n.map(V::N),
            Term::Attr("d") => r.d.map(V::D),
            Term::Attr("l") => r.l.clone().filter(|l| !l.is_empty()).map(V::L),
            Term::Attr(other) => panic!("no term attribute {other}"),
            Term::Str(s) => Some(V::S(s.clone())),
            Term::Num(n) => Some(V::N(*n)),
            Term::Date(d) => Some(V::D(*d)),
            Term::List(l) => Some(V::L(l.clone())),
            Term::Lower(t) => match self.term(t, w) {
                Some(V::S(s)) => Some(V::S(s.to_lowercase())),
                _ => None,
            },
            Term::DaysSince(t) => match self.term(t, w) {
                Some(V::D(d)) => Some(V::N((as_of() - d).num_days() as f64)),
                _ => None,
            },
        }
    }

    fn holds(&self, b: &B, w: usize, group: usize) -> bool {
        match b {
            B::Cmp(op, l, r) => {
                let (l, r) = (self.term(l, w), self.term(r, w));
                let (Some(l), Some(r)) = (l, r) else {
                    // Every comparison with a missing operand is false, except `!=`.
                    return *op == Cmp::Ne;
                };
                match (op, &l, &r) {
                    (Cmp::Eq, _, _) => l == r,
                    (Cmp::Ne, _, _) => l != r,
                    (Cmp::Contains, V::L(items), V::S(x)) => items.contains(x),
                    (Cmp::Contains, V::S(hay), V::S(x)) => hay.contains(x.as_str()),
                    (Cmp::Starts, V::S(a), V::S(x)) => a.starts_with(x.as_str()),
                    (Cmp::Ends, V::S(a), V::S(x)) => a.ends_with(x.as_str()),
                    (_, V::S(a), V::S(x)) => ordered(*op, a.as_bytes().cmp(x.as_bytes())),
                    (_, V::N(a), V::N(x)) => ordered(*op, a.partial_cmp(x).unwrap()),
                    (_, V::D(a), V::D(x)) => ordered(*op, a.cmp(x)),
                    other => panic!("ill-typed comparison {other:?}"),
                }
            }
            B::In(l, items, negated) => {
                let found = match self.term(l, w) {
                    None => false,
                    Some(v) => items.iter().any(|i| self.term(i, w) == Some(v.clone())),
                };
                found != *negated
            }
            B::Matches(l, p) => match self.term(l, w) {
                Some(V::S(s)) => regex::Regex::new(p).unwrap().is_match(&s),
                _ => false,
            },
            B::Has(a) => match *a {
                "b" => self.rows[w].b.is_some(),
                other => self.term(&Term::Attr(other), w).is_some(),
            },
            B::BoolAttr => self.rows[w].b == Some(true),
            B::IsManager => self.is_manager[w],
            B::MemberOf(k) if *k < group => self.members[*k][w],
            B::MemberOf(_) => self.rows[w].b == Some(true),
            B::ReportsTo(k) => {
                if *k >= self.rows.len() || *k == w {
                    return false;
                }
                let mut seen = vec![false; self.rows.len()];
                let mut cur = manager(self.rows, w);
                while let Some(m) = cur {
                    if m == *k {
                        return true;
                    }
                    if seen[m] {
                        return false;
                    }
                    seen[m] = true;
                    cur = manager(self.rows, m);
                }
                false
            }
            B::BoolCmp(x, y, ne) => {
                // A missing bool attribute makes `==` false, and `!=` is its negation.
                let value = |b: &B| match b {
                    B::BoolAttr => self.rows[w].b,
                    B::MemberOf(k) if *k >= group => self.rows[w].b,
                    other => Some(self.holds(other, w, group)),
                };
                let equal = matches!((value(x), value(y)), (Some(a), Some(b)) if a == b);
                equal != *ne
            }
            B::Not(x) => !self.holds(x, w, group),
            B::And(x, y) => self.holds(x, w, group) && self.holds(y, w, group),
            B::Or(x, y) => self.holds(x, w, group) || self.holds(y, w, group),
        }
    }
}

fn ordered(op: Cmp, o: std::cmp::Ordering) -> bool {
    use std::cmp::Ordering::*;
    match op {
        Cmp::Lt => o == Less,
        Cmp::Le => o != Greater,
        Cmp::Gt => o == Greater,
        Cmp::Ge => o != Less,
        _ => unreachable!(),
    }
}

fn names(entries: &[Entry], w: usize) -> bool {
    entries
        .iter()
        .any(|e| e.worker == w && e.expires.is_none_or(|d| d >= 0))
}

fn reference(world: &World) -> Vec<Vec<bool>> {
    let rows = &world.rows;
    let n = rows.len();
    let eligible: Vec<bool> = (0..n)
        .map(|w| match world.eligibility {
            0 => true,
            1 => rows[w].status.as_deref() == Some("Active"),
            2 => rows[w].status.as_deref() != Some("Terminated"),
            _ => rows[w].s.as_deref().is_some_and(|s| !s.is_empty()),
        })
        .collect();
    let mut is_manager = vec![false; n];
    for w in (0..n).filter(|&w| eligible[w]) {
        if let Some(m) = manager(rows, w) {
            is_manager[m] = true;
        }
    }
    let mut r = Reference {
        rows,
        eligible,
        is_manager,
        members: Vec::new(),
    };
    for (gi, g) in world.groups.iter().enumerate() {
        let set = (0..n)
            .map(|w| {
                r.eligible[w]
                    && match g.kind {
                        0 => r.holds(&g.rule, w, gi),
                        1 => {
                            (r.holds(&g.rule, w, gi) || names(&g.include, w))
                                && !names(&g.exclude, w)
                        }
                        _ => names(&g.members, w),
                    }
            })
            .collect();
        r.members.push(set);
    }
    r.members
}

proptest! {
    #![proptest_config(ProptestConfig { failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn engine_agrees_with_the_reference(world in world()) {
        let snap = snapshot(&world.rows);
        let text = yaml(&world);
        let mut sources = SourceMap::default();
        sources.add("rules/generated.yaml", Path::new("rules/generated.yaml"), text.clone());
        let ctx = rules::Context {
            schema: snap.schema(),
            targets: vec![],
            addressed: Vec::new(),
            eligibility: ELIGIBILITY[world.eligibility as usize].map(|e| (e, Path::new("generated-config.yaml"))),
        };
        let rules = match rules::check_sources(sources, &ctx) {
            Ok(r) => r,
            Err(e) => panic!("a well-typed rule set was rejected:\n{text}\n{e}"),
        };
        // The columnar engine, the per-worker interpreter, and this file's reference.
        let ev = engine::evaluate(&snap, &rules, as_of());
        let simple = engine::evaluate_simple(&snap, &rules, as_of());
        let expected = reference(&world);
        for (gi, want) in expected.iter().enumerate() {
            let g = rules.lookup(&format!("g{gi}")).unwrap();
            let got: Vec<bool> = (0..snap.len()).map(|w| ev.is_member(g, w)).collect();
            prop_assert_eq!(&got, want, "group g{} differs (columnar)\n{}", gi, text);
            let got: Vec<bool> = (0..snap.len()).map(|w| simple.is_member(g, w)).collect();
            prop_assert_eq!(&got, want, "group g{} differs (per worker)\n{}", gi, text);
        }
    }

    /// Incremental evaluation after a few workers change (manager included) equals a full
    /// evaluation of the changed snapshot.
    #[test]
    fn incremental_evaluation_equals_a_full_one(
        world in world(),
        changes in proptest::collection::vec((0usize..16, row()), 0..4),
    ) {
        let before = snapshot(&world.rows);
        let mut rows = world.rows.clone();
        let mut changed = Vec::new();
        for (i, row) in changes {
            if rows.is_empty() {
                break;
            }
            let i = i % rows.len();
            rows[i] = row;
            changed.push(i);
        }
        // A manager reference beyond the population names nobody, as the loader would drop it.
        let after = snapshot(&rows);
        let text = yaml(&world);
        let mut sources = SourceMap::default();
        sources.add("rules/generated.yaml", Path::new("rules/generated.yaml"), text.clone());
        let ctx = rules::Context {
            schema: before.schema(),
            targets: vec![],
            addressed: Vec::new(),
            eligibility: ELIGIBILITY[world.eligibility as usize].map(|e| (e, Path::new("generated-config.yaml"))),
        };
        let rules = rules::check_sources(sources, &ctx).unwrap();
        let prev = engine::evaluate(&before, &rules, as_of());
        let alignment = after.align(&before).unwrap();
        let incremental = engine::evaluate_incremental(prev, &before, &after, &alignment, &rules, as_of()).0;
        let full = engine::evaluate(&after, &rules, as_of());
        for g in 0..rules.groups().len() {
            prop_assert_eq!(incremental.members(g), full.members(g), "group {} differs after changing {:?}\n{}", g, changed, text);
        }
        prop_assert_eq!(incremental.eligible(), full.eligible());
        prop_assert_eq!(incremental.is_manager(), full.is_manager());
        let (misses, _) = reach_misses(&before, &after, &engine::evaluate(&before, &rules, as_of()), &full, &rules);
        prop_assert!(misses.is_empty(), "reach left out {:?} after changing {:?}\n{}", misses, changed, text);
    }
}

/// An entry by email names nobody while two workers hold the email: when another worker
/// takes the email an entry names, the worker it named leaves the group without a change
/// to its own row, and joins again when the email is given back. A cold run must compare
/// that worker ([`engine::reach`]).
#[test]
fn reach_follows_an_email_another_worker_takes_and_gives_back() {
    let (schema, rules) = common::hr::sample_rules();
    let load = |rows: &[Vec<String>]| common::hr::load(&schema, rows);
    let mut rows = common::hr::sample_rows();
    let email = rows[0].iter().position(|h| h == "Work_Email").unwrap();
    let named = rows
        .iter()
        .position(|r| r[email] == "ben.hansen@example.com")
        .unwrap();
    let taker = rows.len() - 1;
    let own = rows[taker][email].clone();
    let group = rules.lookup("security-slack").unwrap();
    let mut before = load(&rows);
    for (step, new_email) in [
        ("takes", "Ben.Hansen@example.com".to_string()),
        ("gives back", own),
    ] {
        rows[taker][email] = new_email;
        let after = load(&rows);
        let (then, now) = (
            engine::evaluate(&before, &rules, as_of()),
            engine::evaluate(&after, &rules, as_of()),
        );
        let ben = after.by_key(&rows[named][0]).unwrap();
        assert_ne!(
            then.is_member(group, ben),
            now.is_member(group, ben),
            "{step}: the named worker's membership is the case under test"
        );
        let (misses, reached) = reach_misses(&before, &after, &then, &now, &rules);
        assert_eq!(misses, Vec::<String>::new(), "{step}");
        assert!(reached < 10, "{step}: {reached} workers reached");
        before = after;
    }
}

/// The workers of `after` whose memberships differ from `before`'s (or who are new to it)
/// that [`engine::reach`] leaves out, knowing of `before` only the rows of the workers who
/// changed or left; and how many it reached.
fn reach_misses(
    before: &Snapshot,
    after: &Snapshot,
    then: &engine::Evaluation,
    now: &engine::Evaluation,
    rules: &rules::RuleSet,
) -> (Vec<String>, usize) {
    let Some(alignment) = after.align(before) else {
        return (vec!["the snapshots have other attributes".to_string()], 0);
    };
    let mut earlier: Vec<usize> = (alignment.changed.iter())
        .filter_map(|&w| alignment.old[w])
        .collect();
    earlier.extend((0..before.len()).filter(|&o| after.by_key(before.key(o)).is_none()));
    let earlier = before.select(&earlier);
    let reach = engine::reach(after, &alignment.changed, &earlier, rules, as_of());
    let misses = (0..after.len())
        .filter(|&w| {
            let differs = match alignment.old[w] {
                None => true,
                Some(o) => {
                    (0..rules.groups().len()).any(|g| then.is_member(g, o) != now.is_member(g, w))
                }
            };
            differs && reach.binary_search(&w).is_err()
        })
        .map(|w| after.key(w).to_string())
        .collect();
    (misses, reach.len())
}

/// Incremental evaluation, each step from the one before it, along a chain of HR changes on
/// the sample organisation and its rules (department, manager, termination, rehire, deleted
/// and re-added rows, blanked cells, dates crossing the evaluation date, emails, rows moving):
/// after every step it equals a full evaluation of the same export.
#[test]
fn incremental_evaluation_follows_a_chain_of_hr_changes() {
    use rand::SeedableRng as _;
    let (schema, rules) = common::hr::sample_rules();
    let mut rows = common::hr::sample_rows();
    let load = |rows: &[Vec<String>]| common::hr::load(&schema, rows);
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(20261206);
    let mut gone = Vec::new();
    let mut before = load(&rows);
    let mut incremental = engine::evaluate(&before, &rules, as_of());
    let mut history = Vec::new();
    let mut differences = 0;
    // What a cold run compares (engine::reach): never a worker short, and not everyone.
    let (mut reach_misses_seen, mut reached_fewer) = (Vec::new(), 0);
    for step in 0..40 {
        let changes = rand::Rng::random_range(&mut rng, 1..=4);
        for _ in 0..changes {
            let what = common::hr::change(&mut rows, &mut gone, &mut rng);
            history.push(format!("step {step}: {what}"));
        }
        let after = load(&rows);
        let alignment = after.align(&before).expect("the same attributes");
        incremental =
            engine::evaluate_incremental(incremental, &before, &after, &alignment, &rules, as_of())
                .0;
        let full = engine::evaluate(&after, &rules, as_of());
        let then = engine::evaluate(&before, &rules, as_of());
        let (misses, reached) = reach_misses(&before, &after, &then, &full, &rules);
        reached_fewer += usize::from(reached < after.len() / 2);
        reach_misses_seen.extend(misses.into_iter().map(|m| format!("step {step}: {m}")));
        for g in 0..rules.groups().len() {
            if incremental.members(g) != full.members(g) {
                differences += 1;
                let mut diff = incremental.members(g).clone();
                diff.symmetric_difference_with(full.members(g));
                let who: Vec<String> = diff
                    .ones()
                    .map(|w| format!("{} (in full: {})", after.key(w), full.is_member(g, w)))
                    .collect();
                eprintln!(
                    "step {step}: group {} differs for {}\n{}",
                    rules.group(g).name,
                    who.join(", "),
                    history.join("\n")
                );
            }
        }
        assert_eq!(
            incremental.eligible(),
            full.eligible(),
            "{}",
            history.join("\n")
        );
        assert_eq!(
            incremental.is_manager(),
            full.is_manager(),
            "{}",
            history.join("\n")
        );
        before = after;
    }
    assert_eq!(
        differences, 0,
        "incremental evaluation differs from a full one"
    );
    assert!(
        reach_misses_seen.is_empty(),
        "reach left out workers whose memberships changed: {reach_misses_seen:?}\n{}",
        history.join("\n")
    );
    assert!(
        reached_fewer >= 20,
        "reach took half the workers or more in {} of 40 steps",
        40 - reached_fewer
    );
    assert!(history.len() >= 20, "{} changes", history.len());
    for kind in [
        "row is",
        "is terminated",
        "is rehired",
        "now reports",
        "is blanked",
        "dates move",
        "moves to",
    ] {
        assert!(
            history.iter().any(|h| h.contains(kind)),
            "the chain never had a change `{kind}`: {history:#?}"
        );
    }
}
