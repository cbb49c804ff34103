//! Names, types and cycles: group definitions → [`RuleSet`]. Reports every error it finds, not
//! just the first, and keeps going past each one.

use std::collections::HashMap;

use regex::Regex;

use super::limits;

use super::ast::{CmpOp, Expr, ExprKind, Literal};
use super::compiled::{CExpr, Op, Scalar, Type};
use super::diagnostic::{Diagnostic, Diagnostics};
use super::load::GroupDef;
use super::source::{SourceMap, Span};
use super::{Context, Group, GroupId, RuleSet};
use crate::directory::{Schema, Value, IS_MANAGER};

const FUNCTIONS: &[&str] = &["member_of", "reports_to", "has", "lower", "days_since"];

pub(super) fn check(
    defs: Vec<GroupDef>,
    eligibility: Option<Expr>,
    ctx: &Context<'_>,
    sources: SourceMap,
    diags: &mut Diagnostics,
) -> Option<RuleSet> {
    let mut by_name: HashMap<String, GroupId> = HashMap::new();
    let mut kept = Vec::new();
    for def in defs {
        if let Some(&first) = by_name.get(&def.name) {
            let first_span = kept.get(first).map_or(def.span, |d: &GroupDef| d.span);
            diags.push(
                Diagnostic::error(def.span, format!("duplicate group name `{}`", def.name))
                    .with_note(first_span, "first defined")
                    .with_help("group names are unique across all rule files"),
            );
            continue;
        }
        by_name.insert(def.name.clone(), kept.len());
        kept.push(def);
    }
    let mut compiler = Compiler {
        schema: ctx.schema,
        groups: &by_name,
        diags,
        in_eligibility: false,
        regex_bytes: 0,
    };
    let mut groups = Vec::with_capacity(kept.len());
    for def in kept {
        let rule = def.rule.as_ref().and_then(|e| compiler.rule(e, "a rule"));
        let push = check_pushes(&def, ctx, compiler.diags);
        groups.push(Group {
            name: def.name,
            kind: def.kind,
            description: def.description,
            owners: def.owners,
            rule,
            include: def.include,
            exclude: def.exclude,
            members: def.members,
            push,
            failsafe: def.failsafe,
            requests: def.requests,
            span: def.span,
            definition: def.definition,
        });
    }
    approver_groups(&groups, &by_name, compiler.diags);
    compiler.in_eligibility = true;
    let eligibility = eligibility.and_then(|e| compiler.rule(&e, "the eligibility expression"));
    let order = evaluation_order(&groups, diags)?;
    let levels = levels(&groups, &order);
    Some(RuleSet {
        tests: Vec::new(),
        guardrails: Vec::new(),
        sources,
        groups,
        by_name,
        order,
        levels,
        eligibility,
    })
}

/// Checks the guardrails against the groups and the schema.
pub(super) fn guardrails(
    defs: Vec<super::load::GuardrailDef>,
    groups: &HashMap<String, GroupId>,
    schema: &Schema,
    diags: &mut Diagnostics,
) -> Vec<super::Guardrail> {
    use super::GuardCheck;
    let mut names: HashMap<String, Span> = HashMap::new();
    let mut out = Vec::new();
    let mut compiler = Compiler {
        schema,
        groups,
        diags,
        in_eligibility: false,
        regex_bytes: 0,
    };
    for def in defs {
        if let Some(first) = names.get(&def.name) {
            compiler.diags.push(
                Diagnostic::error(def.span, format!("duplicate guardrail name `{}`", def.name))
                    .with_note(*first, "first defined"),
            );
            continue;
        }
        names.insert(def.name.clone(), def.span);
        let group = match &def.group {
            Some((name, span)) => match groups.get(name) {
                Some(&g) => Some(g),
                None => {
                    compiler.diags.push(
                        Diagnostic::error(*span, format!("unknown group `{name}`"))
                            .with_suggestion(name, groups.keys().map(String::as_str)),
                    );
                    continue;
                }
            },
            None => None,
        };
        let (check, involved) = match (def.never, group) {
            (Some((expr, span)), _) => {
                let Some(expr) = compiler.rule(&expr, "a `never` guardrail") else {
                    continue;
                };
                let mut involved = expr.member_of_groups();
                involved.sort_unstable();
                involved.dedup();
                if involved.is_empty() {
                    compiler.diags.push(
                        Diagnostic::error(span, "a `never` guardrail names no group")
                            .with_help("name the groups it concerns with member_of(\"...\"): their pushes are what a violation holds"),
                    );
                    continue;
                }
                (GuardCheck::Never(expr), involved)
            }
            (None, Some(group)) => {
                let check = match &def.requires {
                    Some(expr) => {
                        let Some(expr) = compiler.rule(expr, "a `requires` guardrail") else {
                            continue;
                        };
                        if def.min_members.is_some() || def.max_members.is_some() {
                            compiler.diags.push(
                                Diagnostic::error(
                                    def.span,
                                    format!(
                                        "guardrail `{}` has both `requires` and a size",
                                        def.name
                                    ),
                                )
                                .with_help("write the size check as a guardrail of its own"),
                            );
                            continue;
                        }
                        GuardCheck::Requires { group, expr }
                    }
                    None => GuardCheck::Size {
                        group,
                        min: def.min_members,
                        max: def.max_members,
                    },
                };
                (check, vec![group])
            }
            (None, None) => continue,
        };
        out.push(super::Guardrail {
            name: def.name,
            span: def.span,
            description: def.description,
            check,
            hold: def.hold,
            groups: involved,
        });
    }
    out
}

/// The groups by level: a group's level is one more than the highest level of the groups its
/// rule names in `member_of` (0 when it names none).
fn levels(groups: &[Group], order: &[GroupId]) -> Vec<Vec<GroupId>> {
    let mut depth = vec![0usize; groups.len()];
    let mut out: Vec<Vec<GroupId>> = Vec::new();
    for &g in order {
        let d = groups[g].rule.as_ref().map_or(0, |r| {
            r.member_of_groups()
                .iter()
                .map(|&m| depth[m] + 1)
                .max()
                .unwrap_or(0)
        });
        depth[g] = d;
        if out.len() <= d {
            out.resize_with(d + 1, Vec::new);
        }
        out[d].push(g);
    }
    out
}

fn check_pushes(
    def: &GroupDef,
    ctx: &super::Context<'_>,
    diags: &mut Diagnostics,
) -> Vec<super::Push> {
    let targets = &ctx.targets;
    let mut out: Vec<super::Push> = Vec::new();
    for push in &def.push {
        if !targets.contains(&push.target) {
            let d = Diagnostic::error(push.span, format!("unknown push target `{}`", push.target))
                .with_suggestion(&push.target, targets.iter().map(String::as_str));
            let d = if d.help.is_some() {
                d
            } else if targets.is_empty() {
                d.with_help(
                    "no targets are configured: add them under `targets:` in the daemon config",
                )
            } else {
                d.with_help(format!(
                    "the configured targets are: {}",
                    targets.join(", ")
                ))
            };
            diags.push(d);
            continue;
        }
        if let Some(first) = out.iter().find(|p| p.target == push.target) {
            diags.push(
                Diagnostic::error(push.span, format!("`{}` is pushed to twice", push.target))
                    .with_note(first.span, "first push"),
            );
            continue;
        }
        if push.email.is_some() && !ctx.addressed.contains(&push.target) {
            diags.push(
                Diagnostic::error(
                    push.span,
                    format!(
                        "`email` is set, but target `{}`'s groups have no address",
                        push.target
                    ),
                )
                .with_help("only a Google Workspace target (`kind: google_workspace`) makes groups with an email address"),
            );
            continue;
        }
        let mut push = push.clone();
        if push.display_name.is_empty() {
            push.display_name = def.name.clone();
        }
        out.push(push);
    }
    out
}

/// Groups ordered so that every `member_of` target comes before its users; `None` after
/// reporting each cycle.
fn evaluation_order(groups: &[Group], diags: &mut Diagnostics) -> Option<Vec<GroupId>> {
    let deps: Vec<Vec<GroupId>> = groups
        .iter()
        .map(|g| {
            g.rule
                .as_ref()
                .map(CExpr::member_of_groups)
                .unwrap_or_default()
        })
        .collect();
    const NEW: u8 = 0;
    const ACTIVE: u8 = 1;
    const DONE: u8 = 2;
    let mut state = vec![NEW; groups.len()];
    let mut order = Vec::with_capacity(groups.len());
    let mut cyclic = false;
    for root in 0..groups.len() {
        if state[root] != NEW {
            continue;
        }
        // Iterative DFS: (group, next dependency to visit).
        let mut stack = vec![(root, 0usize)];
        state[root] = ACTIVE;
        while let Some(&mut (g, ref mut next)) = stack.last_mut() {
            if let Some(&dep) = deps[g].get(*next) {
                *next += 1;
                match state[dep] {
                    NEW => {
                        state[dep] = ACTIVE;
                        stack.push((dep, 0));
                    }
                    ACTIVE => {
                        cyclic = true;
                        let pos = stack.iter().position(|(s, _)| *s == dep).unwrap_or(0);
                        let cycle: Vec<GroupId> = stack[pos..].iter().map(|(s, _)| *s).collect();
                        diags.push(cycle_error(groups, &cycle));
                    }
                    _ => {}
                }
            } else {
                state[g] = DONE;
                order.push(g);
                stack.pop();
            }
        }
    }
    (!cyclic).then_some(order)
}

fn cycle_error(groups: &[Group], cycle: &[GroupId]) -> Diagnostic {
    let mut names: Vec<&str> = cycle.iter().map(|&g| groups[g].name.as_str()).collect();
    names.push(names[0]);
    let at =
        member_of_span(&groups[cycle[cycle.len() - 1]], cycle[0]).unwrap_or(groups[cycle[0]].span);
    Diagnostic::error(at, format!("member_of cycle: {}", names.join(" -> ")))
        .with_help("a group cannot depend on itself through `member_of`; break the cycle in one of these rules")
}

fn member_of_span(group: &Group, target: GroupId) -> Option<Span> {
    let mut stack: Vec<&CExpr> = group.rule.iter().collect();
    while let Some(e) = stack.pop() {
        if matches!(e.op, Op::MemberOf(g) if g == target) {
            return Some(e.span);
        }
        stack.extend(e.children());
    }
    None
}

struct Compiler<'a> {
    schema: &'a Schema,
    groups: &'a HashMap<String, GroupId>,
    diags: &'a mut Diagnostics,
    /// The eligibility expression decides who is a worker at all, so it cannot use what is
    /// computed from eligible workers (`is_manager`, `member_of`).
    in_eligibility: bool,
    /// The compiled size of the `matches` regexes so far, against
    /// [`limits::MAX_REGEX_TOTAL_BYTES`].
    regex_bytes: usize,
}

impl Compiler<'_> {
    fn error<T>(&mut self, d: Diagnostic) -> Option<T> {
        self.diags.push(d);
        None
    }

    /// A whole rule: it must be a bool.
    fn rule(&mut self, e: &Expr, what: &str) -> Option<CExpr> {
        let c = self.expr(e)?;
        if c.ty != Type::Bool {
            return self.error(
                Diagnostic::error(
                    e.span,
                    format!("{what} must be true or false, but this is a {}", c.ty),
                )
                .with_help(bool_help(c.ty)),
            );
        }
        Some(c)
    }

    fn expr(&mut self, e: &Expr) -> Option<CExpr> {
        let span = e.span;
        let (op, ty) = match &e.kind {
            ExprKind::Or(items) | ExprKind::And(items) => {
                let word = if matches!(e.kind, ExprKind::Or(_)) {
                    "or"
                } else {
                    "and"
                };
                let compiled = self.bool_operands(items, word)?;
                let op = if word == "or" {
                    Op::Or(compiled)
                } else {
                    Op::And(compiled)
                };
                (op, Type::Bool)
            }
            ExprKind::Not(inner) => {
                let c = self.bool_operands(std::slice::from_ref(inner.as_ref()), "not")?;
                (Op::Not(Box::new(c.into_iter().next()?)), Type::Bool)
            }
            ExprKind::Literal(lit) => {
                let (value, ty) = literal(lit);
                (Op::Lit(value), ty)
            }
            ExprKind::List(items) => return self.list_value(items, span),
            ExprKind::Attribute(name) => return self.attribute(name, span),
            ExprKind::Compare {
                op,
                op_span,
                lhs,
                rhs,
            } => return self.compare(*op, *op_span, lhs, rhs, span),
            ExprKind::Call {
                name,
                name_span,
                args,
            } => return self.call(name, *name_span, args, span),
        };
        Some(CExpr { op, ty, span })
    }

    fn bool_operands(&mut self, items: &[Expr], word: &str) -> Option<Vec<CExpr>> {
        let mut out = Vec::with_capacity(items.len());
        let mut ok = true;
        for item in items {
            match self.expr(item) {
                Some(c) if c.ty == Type::Bool => out.push(c),
                Some(c) => {
                    ok = false;
                    self.diags.push(
                        Diagnostic::error(
                            item.span,
                            format!("`{word}` needs true or false, but this is a {}", c.ty),
                        )
                        .with_help(bool_help(c.ty)),
                    );
                }
                None => ok = false,
            }
        }
        ok.then_some(out)
    }

    fn attribute(&mut self, name: &str, span: Span) -> Option<CExpr> {
        if name == IS_MANAGER {
            if self.in_eligibility {
                return self.error(
                    Diagnostic::error(span, "the eligibility expression cannot use `is_manager`")
                        .with_help("`is_manager` is computed from eligible workers"),
                );
            }
            return Some(CExpr {
                op: Op::IsManager,
                ty: Type::Bool,
                span,
            });
        }
        match self.schema.lookup(name) {
            Some(id) => Some(CExpr {
                op: Op::Attr(id),
                ty: Type::of_attr(self.schema.attr(id).ty),
                span,
            }),
            None => {
                let d = Diagnostic::error(span, format!("unknown attribute `{name}`"))
                    .with_suggestion(name, self.schema.names());
                let d = if d.help.is_some() {
                    d
                } else if FUNCTIONS.contains(&name) {
                    d.with_help(format!("`{name}` is a function: call it as `{name}(...)`"))
                } else {
                    d.with_help("attributes come from `directory.attributes` in the daemon config; strings go in double quotes")
                };
                self.error(d)
            }
        }
    }

    /// A list literal used as a value (`tags == ["a", "b"]`); `in` reads its list directly.
    fn list_value(&mut self, items: &[(Literal, Span)], span: Span) -> Option<CExpr> {
        let (values, ty) = self.list_items(items)?;
        match ty {
            Type::List | Type::EmptyList => {
                let strings = values
                    .into_iter()
                    .filter_map(|v| match v {
                        Value::Str(s) => Some(s),
                        _ => None,
                    })
                    .collect();
                Some(CExpr {
                    op: Op::Lit(Value::List(strings)),
                    ty,
                    span,
                })
            }
            _ => self.error(
                Diagnostic::error(span, format!("a {ty} can only follow `in` or `not in`"))
                    .with_help("lists of other values than strings are for `x in [...]`"),
            ),
        }
    }

    /// The values of a list literal and its type; all elements must have one type.
    fn list_items(&mut self, items: &[(Literal, Span)]) -> Option<(Vec<Value>, Type)> {
        let mut values = Vec::with_capacity(items.len());
        let mut first: Option<Type> = None;
        for (lit, span) in items {
            let (value, ty) = literal(lit);
            match first {
                None => first = Some(ty),
                Some(t) if t != ty => {
                    return self.error(
                        Diagnostic::error(*span, format!("list elements must all have one type: this is a {ty}, the first is a {t}")),
                    );
                }
                _ => {}
            }
            values.push(value);
        }
        let ty = match first {
            None => Type::EmptyList,
            Some(Type::Str) => Type::List,
            Some(Type::Num) => Type::ListOf(Scalar::Num),
            Some(Type::Date) => Type::ListOf(Scalar::Date),
            Some(_) => Type::ListOf(Scalar::Bool),
        };
        Some((values, ty))
    }

    fn compare(
        &mut self,
        op: CmpOp,
        op_span: Span,
        lhs: &Expr,
        rhs: &Expr,
        span: Span,
    ) -> Option<CExpr> {
        if matches!(op, CmpOp::In | CmpOp::NotIn) {
            return self.in_list(op, lhs, rhs, span);
        }
        if op == CmpOp::Matches {
            return self.matches(lhs, rhs, span);
        }
        let l = self.expr(lhs);
        let r = self.expr(rhs);
        let (l, r) = (l?, r?);
        let ok = match op {
            CmpOp::Eq | CmpOp::Ne => l.ty.matches(r.ty) && !matches!(l.ty, Type::ListOf(_)),
            CmpOp::Lt | CmpOp::Le | CmpOp::Gt | CmpOp::Ge => {
                l.ty == r.ty && matches!(l.ty, Type::Str | Type::Num | Type::Date)
            }
            CmpOp::Contains => matches!((l.ty, r.ty), (Type::List | Type::Str, Type::Str)),
            _ => l.ty == Type::Str && r.ty == Type::Str,
        };
        if !ok {
            return self.error(
                Diagnostic::error(
                    op_span,
                    format!("`{op}` cannot compare a {} with a {}", l.ty, r.ty),
                )
                .with_label(format!("left is a {}, right is a {}", l.ty, r.ty))
                .with_help(operator_help(op)),
            );
        }
        Some(CExpr {
            op: Op::Cmp {
                op,
                lhs: Box::new(l),
                rhs: Box::new(r),
            },
            ty: Type::Bool,
            span,
        })
    }

    fn in_list(&mut self, op: CmpOp, lhs: &Expr, rhs: &Expr, span: Span) -> Option<CExpr> {
        let l = self.expr(lhs)?;
        let ExprKind::List(items) = &rhs.kind else {
            let r = self.expr(rhs)?;
            let mut d = Diagnostic::error(
                rhs.span,
                format!("`{op}` needs a list literal on its right, found a {}", r.ty),
            );
            d = if r.ty == Type::List {
                d.with_help("to test whether a list attribute holds a value, write `list contains \"value\"`")
            } else {
                d.with_help(format!("e.g. `{} {op} [\"a\", \"b\"]`", self.snippet(lhs)))
            };
            return self.error(d);
        };
        let (values, ty) = self.list_items(items)?;
        let element_fits = match (l.ty, ty) {
            (_, Type::EmptyList) => matches!(l.ty, Type::Str | Type::Num | Type::Date),
            (Type::Str, Type::List) => true,
            (Type::Num, Type::ListOf(Scalar::Num)) | (Type::Date, Type::ListOf(Scalar::Date)) => {
                true
            }
            _ => false,
        };
        if !element_fits {
            let help = if l.ty == Type::List {
                "a list attribute is tested with `contains`: `tags contains \"x\"`".to_string()
            } else {
                format!("`{op}` compares a string, number or date with a list of the same type")
            };
            return self.error(
                Diagnostic::error(span, format!("`{op}` cannot look for a {} in a {ty}", l.ty))
                    .with_help(help),
            );
        }
        Some(CExpr {
            op: Op::In {
                negated: op == CmpOp::NotIn,
                lhs: Box::new(l),
                items: values,
            },
            ty: Type::Bool,
            span,
        })
    }

    fn matches(&mut self, lhs: &Expr, rhs: &Expr, span: Span) -> Option<CExpr> {
        let l = self.expr(lhs)?;
        if l.ty != Type::Str {
            return self.error(Diagnostic::error(
                lhs.span,
                format!("`matches` needs a string on its left, found a {}", l.ty),
            ));
        }
        let ExprKind::Literal(Literal::Str(pattern)) = &rhs.kind else {
            return self.error(
                Diagnostic::error(
                    rhs.span,
                    "`matches` needs a string literal (the regex) on its right",
                )
                .with_help("e.g. `title matches \"^(Senior|Staff) \"`"),
            );
        };
        match self.regex(pattern) {
            Ok(regex) => Some(CExpr {
                op: Op::Matches {
                    lhs: Box::new(l),
                    regex,
                },
                ty: Type::Bool,
                span,
            }),
            Err(Some(help)) => {
                self.error(Diagnostic::error(rhs.span, "invalid regex").with_help(help))
            }
            // Past the budget, which one diagnostic already said.
            Err(None) => None,
        }
    }

    /// Compiles a `matches` pattern within the size limits: one regex may not exceed
    /// [`limits::MAX_REGEX_BYTES`], and all of them together not
    /// [`limits::MAX_REGEX_TOTAL_BYTES`]. The regex crate's own default allows 10 MiB each,
    /// so a few hundred `x{65000}` would take gigabytes.
    ///
    /// `Err(None)`: the budget was spent before this pattern, and that was reported once.
    fn regex(&mut self, pattern: &str) -> Result<Regex, Option<String>> {
        use regex_automata::meta;
        if self.regex_bytes > limits::MAX_REGEX_TOTAL_BYTES {
            return Err(None);
        }
        let one = limits::MAX_REGEX_BYTES;
        // The meta regex is what `regex::Regex` wraps; only it reports its memory.
        let measured = meta::Regex::builder()
            .configure(meta::Config::new().nfa_size_limit(Some(one)).dfa(false))
            .build(pattern)
            .map(|r| r.memory_usage());
        let compiled = regex::RegexBuilder::new(pattern)
            .size_limit(one)
            // The lazy DFA's cache, per regex and per thread that matches: small, since
            // thousands of regexes may each have one on both evaluation threads.
            .dfa_size_limit(limits::MAX_REGEX_CACHE_BYTES)
            .build();
        let too_big = format!(
            "the compiled regex is larger than the limit of {} KiB for one pattern; \
             use a shorter pattern or smaller repetition counts",
            one >> 10
        );
        let regex = match (compiled, measured) {
            (Ok(regex), Ok(bytes)) => (regex, bytes),
            (Err(regex::Error::CompiledTooBig(_)), _) | (Ok(_), Err(_)) => {
                return Err(Some(too_big))
            }
            (Err(e), _) => return Err(Some(regex_error_text(&e))),
        };
        self.regex_bytes += regex.1;
        if self.regex_bytes > limits::MAX_REGEX_TOTAL_BYTES {
            return Err(Some(format!(
                "the `matches` regexes of the rules together compile to more than the limit of \
                 {} MiB (from here on they are not compiled); share patterns between groups \
                 with `member_of`, or simplify them",
                limits::MAX_REGEX_TOTAL_BYTES >> 20
            )));
        }
        Ok(regex.0)
    }

    fn call(&mut self, name: &str, name_span: Span, args: &[Expr], span: Span) -> Option<CExpr> {
        if !FUNCTIONS.contains(&name) {
            let d = Diagnostic::error(name_span, format!("unknown function `{name}`"))
                .with_suggestion(name, FUNCTIONS.iter().copied());
            let d = if d.help.is_some() {
                d
            } else {
                d.with_help(format!("the functions are: {}", FUNCTIONS.join(", ")))
            };
            return self.error(d);
        }
        let [arg] = args else {
            return self.error(Diagnostic::error(
                span,
                format!("`{name}` takes 1 argument, found {}", args.len()),
            ));
        };
        let (op, ty) = match name {
            "member_of" => (Op::MemberOf(self.group_arg(arg)?), Type::Bool),
            "reports_to" => {
                let ExprKind::Literal(Literal::Str(key)) = &arg.kind else {
                    return self.error(
                        Diagnostic::error(
                            arg.span,
                            "`reports_to` takes a worker key as a string literal",
                        )
                        .with_help("e.g. `reports_to(\"E000001\")`"),
                    );
                };
                (Op::ReportsTo(key.clone()), Type::Bool)
            }
            "has" => {
                if !matches!(arg.kind, ExprKind::Attribute(_)) {
                    return self.error(
                        Diagnostic::error(arg.span, "`has` takes an attribute name")
                            .with_help("e.g. `has(cost_center)`"),
                    );
                }
                (Op::Has(Box::new(self.expr(arg)?)), Type::Bool)
            }
            "lower" => (
                Op::Lower(Box::new(self.typed_arg(name, arg, Type::Str)?)),
                Type::Str,
            ),
            _ => (
                Op::DaysSince(Box::new(self.typed_arg(name, arg, Type::Date)?)),
                Type::Num,
            ),
        };
        Some(CExpr { op, ty, span })
    }

    fn typed_arg(&mut self, function: &str, arg: &Expr, want: Type) -> Option<CExpr> {
        let c = self.expr(arg)?;
        if c.ty != want {
            return self.error(Diagnostic::error(
                arg.span,
                format!("`{function}` takes a {want}, found a {}", c.ty),
            ));
        }
        Some(c)
    }

    fn group_arg(&mut self, arg: &Expr) -> Option<GroupId> {
        if self.in_eligibility {
            return self.error(
                Diagnostic::error(
                    arg.span,
                    "the eligibility expression cannot use `member_of`",
                )
                .with_help("group membership is computed from eligible workers"),
            );
        }
        let ExprKind::Literal(Literal::Str(group)) = &arg.kind else {
            return self.error(
                Diagnostic::error(
                    arg.span,
                    "`member_of` takes a group name as a string literal",
                )
                .with_help("e.g. `member_of(\"security-division\")`"),
            );
        };
        match self.groups.get(group) {
            Some(&g) => Some(g),
            None => {
                let d = Diagnostic::error(arg.span, format!("unknown group `{group}`"))
                    .with_suggestion(group, self.groups.keys().map(String::as_str));
                self.error(d)
            }
        }
    }

    fn snippet(&self, e: &Expr) -> String {
        match &e.kind {
            ExprKind::Attribute(name) => name.clone(),
            _ => "x".to_string(),
        }
    }
}

fn literal(lit: &Literal) -> (Value, Type) {
    match lit {
        Literal::Str(s) => (Value::Str(s.clone()), Type::Str),
        Literal::Num(n) => (Value::Num(*n), Type::Num),
        Literal::Date(d) => (Value::Date(*d), Type::Date),
        Literal::Bool(b) => (Value::Bool(*b), Type::Bool),
    }
}

fn bool_help(ty: Type) -> String {
    match ty {
        Type::Str | Type::Num | Type::Date | Type::List => {
            format!("compare the {ty} (e.g. with `==`), or test that it is set with `has(...)`")
        }
        _ => "combine comparisons with `and`, `or` and `not`".to_string(),
    }
}

fn operator_help(op: CmpOp) -> &'static str {
    match op {
        CmpOp::Eq | CmpOp::Ne => "both sides of `==` and `!=` must have the same type",
        CmpOp::Lt | CmpOp::Le | CmpOp::Gt | CmpOp::Ge => {
            "orderings compare two numbers, two dates or two strings"
        }
        CmpOp::Contains => {
            "`contains` takes a list or string on its left and a string on its right"
        }
        _ => "`startswith` and `endswith` take two strings",
    }
}

/// The regex crate's message without its repeated copy of the pattern.
fn regex_error_text(e: &regex::Error) -> String {
    let text = e.to_string();
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    lines.join("\n")
}

/// Every `group:` approver names a group of the rules: one that does not would leave its
/// requests with nobody to decide them.
fn approver_groups(groups: &[Group], by_name: &HashMap<String, GroupId>, diags: &mut Diagnostics) {
    for group in groups {
        let Some(requests) = &group.requests else {
            continue;
        };
        for (approver, span) in requests.approvers.iter().zip(&requests.approver_spans) {
            if let super::Approver::Group(name) = approver {
                if !by_name.contains_key(name) {
                    diags.push(
                        Diagnostic::error(
                            *span,
                            format!("approver `group: {name}` of group `{}` is not a group of the rules", group.name),
                        )
                        .with_suggestion(name, by_name.keys().map(String::as_str)),
                    );
                }
            }
        }
    }
}
