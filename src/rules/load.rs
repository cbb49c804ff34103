//! YAML nodes → group definitions. Checks the shape of every file (known keys, value types,
//! which fields each kind allows) and parses rule expressions; names and types are `check`'s.

use std::path::Path;

use chrono::NaiveDate;

use super::ast::Expr;
use super::diagnostic::{Diagnostic, Diagnostics};
use super::parse::{parse_expr, Origin};
use super::source::{FileId, SourceMap, Span};
use super::yaml::{self, Node, NodeKind, Scalar};
use super::{is_group_name, Failsafe, GroupKind, PersonEntry, Push, Who};

/// A group as written, before names and types are checked.
pub(super) struct GroupDef {
    pub name: String,
    pub span: Span,
    /// The whole entry.
    pub definition: Span,
    pub kind: GroupKind,
    pub description: Option<String>,
    pub owners: Vec<String>,
    /// `None` when absent or unparsable (the parse error is already reported).
    pub rule: Option<Expr>,
    pub include: Vec<PersonEntry>,
    pub exclude: Vec<PersonEntry>,
    pub members: Vec<PersonEntry>,
    pub push: Vec<Push>,
    pub failsafe: Failsafe,
    pub requests: Option<super::Requests>,
}

/// A rule test as written (see `rules::rule_tests`).
pub(super) struct TestDef {
    pub name: String,
    pub span: Span,
    pub as_of: Option<NaiveDate>,
    pub workers: Vec<FixtureDef>,
    pub expect: Vec<ExpectDef>,
}

/// A made-up worker: attribute name (with its span) → value as written.
pub(super) struct FixtureDef {
    pub span: Span,
    pub values: Vec<(String, Span, Node)>,
}

/// `{ worker: W, in: GROUP }` or `{ worker: W, not_in: GROUP }`, perhaps with a reason.
pub(super) struct ExpectDef {
    pub span: Span,
    pub worker: (String, Span),
    pub group: (String, Span),
    pub member: bool,
    pub reason: Option<(String, Span)>,
    pub ticket: Option<String>,
}

/// A guardrail as written (see `rules::Guardrail`).
pub(super) struct GuardrailDef {
    pub name: String,
    pub span: Span,
    pub description: Option<String>,
    pub never: Option<(Expr, Span)>,
    pub group: Option<(String, Span)>,
    pub requires: Option<Expr>,
    pub min_members: Option<u64>,
    pub max_members: Option<u64>,
    /// `on_violation: hold` (the default) or `warn`.
    pub hold: bool,
}

/// What a rule file holds besides groups.
#[derive(Default)]
pub(super) struct Extras {
    pub tests: Vec<TestDef>,
    pub guardrails: Vec<GuardrailDef>,
    /// Files that are not YAML at all: the groups they define are unknown.
    pub unreadable: usize,
}

const FILE_KEYS: &[&str] = &["groups", "tests", "guardrails"];
const GUARDRAIL_KEYS: &[&str] = &[
    "name",
    "description",
    "never",
    "group",
    "requires",
    "min_members",
    "max_members",
    "on_violation",
];
const TEST_KEYS: &[&str] = &["name", "as_of", "workers", "expect"];
const EXPECT_KEYS: &[&str] = &["worker", "in", "not_in", "reason", "ticket"];

const GROUP_KEYS: &[&str] = &[
    "name",
    "kind",
    "description",
    "owners",
    "rule",
    "include",
    "exclude",
    "members",
    "push",
    "failsafe",
    "requests",
];
const ENTRY_KEYS: &[&str] = &[
    "id", "email", "reason", "ticket", "expires", "added_by", "reviewed",
];
const PUSH_KEYS: &[&str] = &["target", "display_name", "link", "email", "active"];
const FAILSAFE_KEYS: &[&str] = &["max_remove_percent", "max_remove_count"];
const KINDS: &[&str] = &["managed", "hybrid", "manual"];

/// Every group of every file, in file order, and the rule tests and guardrails into
/// `extras`; problems go to `diags`.
pub(super) fn groups(
    sources: &SourceMap,
    diags: &mut Diagnostics,
    extras: &mut Extras,
) -> Vec<GroupDef> {
    let mut out = Vec::new();
    for (id, file) in sources.files().iter().enumerate() {
        let id = FileId::try_from(id).unwrap_or(FileId::MAX);
        let root = match yaml::parse(&file.text, id) {
            Ok(root) => root,
            Err(d) => {
                diags.push(d);
                extras.unreadable += 1;
                continue;
            }
        };
        let mut r = Reader { diags };
        let Some(fields) = r.fields(&root, FILE_KEYS, "a rule file") else {
            continue;
        };
        if let Some(list) = fields.get("tests") {
            for node in r.seq(list, "`tests`") {
                if let Some(def) = r.test(node) {
                    extras.tests.push(def);
                }
            }
        }
        if let Some(list) = fields.get("guardrails") {
            for node in r.seq(list, "`guardrails`") {
                if let Some(def) = r.guardrail(node) {
                    extras.guardrails.push(def);
                }
            }
        }
        let Some(list) = fields.get("groups") else {
            if !root.is_null()
                && fields.get("tests").is_none()
                && fields.get("guardrails").is_none()
            {
                r.diags.push(
                    Diagnostic::error(root.span, "a rule file needs a `groups` list")
                        .with_help("start the file with `groups:` and list the groups under it (or `tests:`, for a file of rule tests)"),
                );
            }
            continue;
        };
        for node in r.seq(list, "`groups`") {
            if let Some(def) = r.group(node) {
                out.push(def);
            }
        }
    }
    out
}

/// Parses the eligibility expression of the config at `config_path`, pointing diagnostics into
/// the config file itself when the expression can be found there.
pub(super) fn eligibility(
    text: &str,
    config_path: &Path,
    sources: &mut SourceMap,
    diags: &mut Diagnostics,
) -> Option<Expr> {
    let config_text = std::fs::read_to_string(config_path).unwrap_or_default();
    let config_file = sources.add(config_path.display().to_string(), config_path, config_text);
    let in_config = yaml::parse(&sources.file(config_file).text, config_file)
        .ok()
        .and_then(|root| find_path(&root, &["directory", "eligibility"]))
        .and_then(|node| match node.kind {
            NodeKind::Scalar(s) if s.value == text => Some(s.positions),
            _ => None,
        });
    let (file, positions) = match in_config {
        Some(positions) => (config_file, positions),
        None => {
            // Not in the file as given (e.g. set by a test): the expression is a file of its own.
            let name = format!("{} (directory.eligibility)", config_path.display());
            let file = sources.add(name, config_path, text.to_string());
            (
                file,
                (0..=u32::try_from(text.len()).unwrap_or(u32::MAX)).collect(),
            )
        }
    };
    let origin = Origin {
        file,
        positions: &positions,
    };
    parse_expr(text, &origin).map_err(|d| diags.push(d)).ok()
}

fn find_path(node: &Node, path: &[&str]) -> Option<Node> {
    let Some((first, rest)) = path.split_first() else {
        return Some(node.clone());
    };
    let NodeKind::Map(entries) = &node.kind else {
        return None;
    };
    let (_, value) = entries
        .iter()
        .find(|(k, _)| matches!(&k.kind, NodeKind::Scalar(s) if s.value == *first))?;
    find_path(value, rest)
}

/// Reads typed values out of nodes, reporting what does not fit.
pub(super) struct Reader<'d> {
    pub(super) diags: &'d mut Diagnostics,
}

/// The entries of a mapping, by key.
pub(super) struct Fields<'n> {
    entries: Vec<(&'n str, &'n Node, &'n Node)>,
}

impl<'n> Fields<'n> {
    pub(super) fn get(&self, key: &str) -> Option<&'n Node> {
        self.entries
            .iter()
            .find(|(k, _, _)| *k == key)
            .map(|(_, _, v)| *v)
    }

    pub(super) fn key_span(&self, key: &str) -> Option<Span> {
        self.entries
            .iter()
            .find(|(k, _, _)| *k == key)
            .map(|(_, k, _)| k.span)
    }
}

impl Reader<'_> {
    pub(super) fn error(&mut self, span: Span, message: impl Into<String>) {
        self.diags.push(Diagnostic::error(span, message));
    }

    /// A mapping whose keys must be among `allowed`; unknown keys are reported.
    pub(super) fn fields<'n>(
        &mut self,
        node: &'n Node,
        allowed: &[&str],
        what: &str,
    ) -> Option<Fields<'n>> {
        let NodeKind::Map(entries) = &node.kind else {
            if !node.is_null() || what != "a rule file" {
                self.error(
                    node.span,
                    format!("expected {what} (a mapping), found {}", node.describe()),
                );
            }
            return None;
        };
        let mut fields = Fields {
            entries: Vec::new(),
        };
        for (k, v) in entries {
            let NodeKind::Scalar(key) = &k.kind else {
                continue;
            };
            if allowed.contains(&key.value.as_str()) {
                fields.entries.push((key.value.as_str(), k, v));
            } else {
                let d = Diagnostic::error(k.span, format!("unknown key `{}` in {what}", key.value))
                    .with_suggestion(&key.value, allowed.iter().copied());
                let d = if d.help.is_none() {
                    d.with_help(format!("allowed keys: {}", allowed.join(", ")))
                } else {
                    d
                };
                self.diags.push(d);
            }
        }
        Some(fields)
    }

    pub(super) fn seq<'n>(&mut self, node: &'n Node, what: &str) -> &'n [Node] {
        match &node.kind {
            NodeKind::Seq(items) => items,
            _ if node.is_null() => &[],
            _ => {
                self.error(
                    node.span,
                    format!("expected {what} to be a list, found {}", node.describe()),
                );
                &[]
            }
        }
    }

    pub(super) fn scalar<'n>(&mut self, node: &'n Node, what: &str) -> Option<&'n Scalar> {
        match &node.kind {
            NodeKind::Scalar(s) if !node.is_null() => Some(s),
            _ => {
                self.error(
                    node.span,
                    format!("expected {what}, found {}", node.describe()),
                );
                None
            }
        }
    }

    pub(super) fn string(&mut self, node: &Node, what: &str) -> Option<String> {
        self.scalar(node, what).map(|s| s.value.clone())
    }

    pub(super) fn date(&mut self, node: &Node, what: &str) -> Option<NaiveDate> {
        let s = self.scalar(node, what)?;
        let date = NaiveDate::parse_from_str(&s.value, "%Y-%m-%d").ok();
        if date.is_none() {
            self.error(
                node.span,
                format!("invalid date `{}`: expected YYYY-MM-DD", s.value),
            );
        }
        date
    }

    pub(super) fn bool(&mut self, node: &Node, what: &str) -> Option<bool> {
        let s = self.scalar(node, what)?;
        match (s.plain, s.value.as_str()) {
            (true, "true") => Some(true),
            (true, "false") => Some(false),
            _ => {
                self.error(
                    node.span,
                    format!("expected {what} (true or false), found `{}`", s.value),
                );
                None
            }
        }
    }

    pub(super) fn number(&mut self, node: &Node, what: &str) -> Option<f64> {
        let s = self.scalar(node, what)?;
        let n = s
            .value
            .parse::<f64>()
            .ok()
            .filter(|n| n.is_finite() && *n >= 0.0);
        if n.is_none() || !s.plain {
            self.error(node.span, format!("expected {what}, found `{}`", s.value));
            return None;
        }
        n
    }

    pub(super) fn strings(&mut self, node: &Node, what: &str) -> Vec<String> {
        let items = self.seq(node, what);
        items
            .iter()
            .filter_map(|n| self.string(n, "a string"))
            .collect()
    }

    fn test(&mut self, node: &Node) -> Option<TestDef> {
        let f = self.fields(node, TEST_KEYS, "a test")?;
        let Some(name_node) = f.get("name") else {
            self.error(node.span, "a test needs a `name`");
            return None;
        };
        let name = self.string(name_node, "a test name")?;
        let as_of = f.get("as_of").and_then(|n| self.date(n, "a date"));
        let mut workers = Vec::new();
        if let Some(list) = f.get("workers") {
            for w in self.seq(list, "`workers`") {
                match &w.kind {
                    NodeKind::Map(entries) => {
                        let values = entries
                            .iter()
                            .filter_map(|(k, v)| match &k.kind {
                                NodeKind::Scalar(key) => {
                                    Some((key.value.clone(), k.span, v.clone()))
                                }
                                _ => None,
                            })
                            .collect();
                        workers.push(FixtureDef {
                            span: w.span,
                            values,
                        });
                    }
                    _ => self.error(
                        w.span,
                        format!(
                            "expected a worker (a mapping of attributes), found {}",
                            w.describe()
                        ),
                    ),
                }
            }
        }
        let mut expect = Vec::new();
        if let Some(list) = f.get("expect") {
            for e in self.seq(list, "`expect`") {
                if let Some(e) = self.expectation(e) {
                    expect.push(e);
                }
            }
        }
        if expect.is_empty() && f.get("expect").is_none() {
            self.diags.push(
                Diagnostic::error(name_node.span, "a test needs an `expect` list")
                    .with_help("for example `expect: [{ worker: W1, in: some-group }]`"),
            );
        }
        Some(TestDef {
            name,
            span: name_node.span,
            as_of,
            workers,
            expect,
        })
    }

    fn guardrail(&mut self, node: &Node) -> Option<GuardrailDef> {
        let f = self.fields(node, GUARDRAIL_KEYS, "a guardrail")?;
        let Some(name_node) = f.get("name") else {
            self.error(node.span, "a guardrail needs a `name`");
            return None;
        };
        let name = self.string(name_node, "a guardrail name")?;
        let never = match f.get("never") {
            Some(n) => Some((self.rule(n)?, n.span)),
            None => None,
        };
        let group = match f.get("group") {
            Some(n) => Some((self.string(n, "a group name")?, n.span)),
            None => None,
        };
        let requires = match f.get("requires") {
            Some(n) => Some(self.rule(n)?),
            None => None,
        };
        let count = |r: &mut Self, key: &str| {
            f.get(key)
                .and_then(|n| r.number(n, "a number of members"))
                .map(|n| n as u64)
        };
        let min_members = count(self, "min_members");
        let max_members = count(self, "max_members");
        let hold = match f.get("on_violation") {
            None => true,
            Some(n) => match self.string(n, "`hold` or `warn`")?.as_str() {
                "hold" => true,
                "warn" => false,
                other => {
                    self.diags.push(
                        Diagnostic::error(n.span, format!("unknown `on_violation` `{other}`"))
                            .with_suggestion(other, ["hold", "warn"])
                            .with_label("`hold` holds the pushes of the groups involved; `warn` only reports"),
                    );
                    return None;
                }
            },
        };
        let on_group = requires.is_some() || min_members.is_some() || max_members.is_some();
        match (&never, &group, on_group) {
            (Some(_), None, false) | (None, Some(_), true) => {}
            (Some(_), _, _) => {
                self.diags.push(
                    Diagnostic::error(name_node.span, format!("guardrail `{name}` mixes `never` with a group's checks"))
                        .with_help("`never: EXPR` stands alone; `group` goes with `requires`, `min_members` and `max_members`"),
                );
                return None;
            }
            (None, Some(_), false) => {
                self.diags.push(
                    Diagnostic::error(
                        name_node.span,
                        format!("guardrail `{name}` names a group but checks nothing"),
                    )
                    .with_help("add `requires: EXPR`, `min_members: N` or `max_members: N`"),
                );
                return None;
            }
            (None, None, _) => {
                self.diags.push(
                    Diagnostic::error(name_node.span, format!("guardrail `{name}` checks nothing"))
                        .with_help("use `never: EXPR` (no worker may make it true), or `group: G` with `requires`, `min_members` or `max_members`"),
                );
                return None;
            }
        }
        Some(GuardrailDef {
            name,
            span: name_node.span,
            description: f
                .get("description")
                .and_then(|n| self.string(n, "a description")),
            never,
            group,
            requires,
            min_members,
            max_members,
            hold,
        })
    }

    fn expectation(&mut self, node: &Node) -> Option<ExpectDef> {
        let f = self.fields(node, EXPECT_KEYS, "an expectation")?;
        let Some(worker_node) = f.get("worker") else {
            self.error(node.span, "an expectation needs a `worker`");
            return None;
        };
        let worker = (
            self.string(worker_node, "a worker's key")?,
            worker_node.span,
        );
        let (member, group_node) = match (f.get("in"), f.get("not_in")) {
            (Some(g), None) => (true, g),
            (None, Some(g)) => (false, g),
            _ => {
                self.diags.push(
                    Diagnostic::error(node.span, "an expectation needs one of `in` and `not_in`")
                        .with_help(
                            "`in: GROUP` expects the worker in the group, `not_in: GROUP` not",
                        ),
                );
                return None;
            }
        };
        let group = (self.string(group_node, "a group name")?, group_node.span);
        let reason = match f.get("reason") {
            Some(n) => Some((self.string(n, "a reason")?, n.span)),
            None => None,
        };
        let ticket = f.get("ticket").and_then(|n| self.string(n, "a ticket"));
        Some(ExpectDef {
            span: node.span,
            worker,
            group,
            member,
            reason,
            ticket,
        })
    }

    fn group(&mut self, node: &Node) -> Option<GroupDef> {
        let f = self.fields(node, GROUP_KEYS, "a group")?;
        let Some(name_node) = f.get("name") else {
            self.error(node.span, "a group needs a `name`");
            return None;
        };
        let name = self.string(name_node, "a group name")?;
        if !is_group_name(&name) {
            self.diags.push(
                Diagnostic::error(name_node.span, format!("invalid group name `{name}`"))
                    .with_help("names are 1-128 characters of a-z, 0-9, `.`, `_` and `-`, starting with a letter or digit"),
            );
        }
        let kind = self.kind(&f, name_node.span, &name)?;
        let mut def = GroupDef {
            name,
            span: name_node.span,
            definition: node.span,
            kind,
            description: f
                .get("description")
                .and_then(|n| self.string(n, "a description")),
            owners: f
                .get("owners")
                .map(|n| self.strings(n, "`owners`"))
                .unwrap_or_default(),
            rule: None,
            include: Vec::new(),
            exclude: Vec::new(),
            members: Vec::new(),
            push: f.get("push").map(|n| self.pushes(n)).unwrap_or_default(),
            failsafe: f
                .get("failsafe")
                .map(|n| self.failsafe(n))
                .unwrap_or_default(),
            requests: None,
        };
        self.kind_fields(&f, &mut def);
        if let Some(node) = f.get("requests") {
            def.requests = self.requests(node, def.kind, f.key_span("requests"));
        }
        Some(def)
    }

    fn kind(&mut self, f: &Fields<'_>, name_span: Span, name: &str) -> Option<GroupKind> {
        let Some(node) = f.get("kind") else {
            self.diags.push(
                Diagnostic::error(name_span, format!("group `{name}` needs a `kind`"))
                    .with_help("add `kind: managed`, `kind: hybrid` or `kind: manual`"),
            );
            return None;
        };
        let text = self.string(node, "a group kind")?;
        match text.as_str() {
            "managed" => Some(GroupKind::Managed),
            "hybrid" => Some(GroupKind::Hybrid),
            "manual" => Some(GroupKind::Manual),
            _ => {
                let d = Diagnostic::error(node.span, format!("unknown group kind `{text}`"))
                    .with_suggestion(&text, KINDS.iter().copied());
                let d = if d.help.is_none() {
                    d.with_help("the kinds are `managed`, `hybrid` and `manual`")
                } else {
                    d
                };
                self.diags.push(d);
                // The rest of the group is still checked, as the kind it most likely means
                // (the one suggested, else the one its fields fit), so that one run reports
                // every independent error; the error above keeps the rules from loading.
                let guess = match super::diagnostic::did_you_mean(&text, KINDS.iter().copied()) {
                    Some("hybrid") => GroupKind::Hybrid,
                    Some("manual") => GroupKind::Manual,
                    Some(_) => GroupKind::Managed,
                    None if f.get("members").is_some() => GroupKind::Manual,
                    None if f.get("include").is_some() || f.get("exclude").is_some() => {
                        GroupKind::Hybrid
                    }
                    None => GroupKind::Managed,
                };
                Some(guess)
            }
        }
    }

    /// Reads `rule`, `include`, `exclude` and `members`, as far as the kind allows them.
    fn kind_fields(&mut self, f: &Fields<'_>, def: &mut GroupDef) {
        let allowed: &[&str] = match def.kind {
            GroupKind::Managed => &["rule"],
            GroupKind::Hybrid => &["rule", "include", "exclude"],
            GroupKind::Manual => &["members"],
        };
        for key in ["rule", "include", "exclude", "members"] {
            let Some(node) = f.get(key) else {
                continue;
            };
            if !allowed.contains(&key) {
                let span = f.key_span(key).unwrap_or(node.span);
                self.diags.push(
                    Diagnostic::error(
                        span,
                        format!("`{key}` is not allowed on a {} group", def.kind),
                    )
                    .with_help(kind_help(def.kind, key)),
                );
                continue;
            }
            match key {
                "rule" => def.rule = self.rule(node),
                "include" => def.include = self.entries(node, "`include`"),
                "exclude" => def.exclude = self.entries(node, "`exclude`"),
                _ => def.members = self.entries(node, "`members`"),
            }
        }
        if def.kind != GroupKind::Manual && f.get("rule").is_none() {
            self.diags.push(
                Diagnostic::error(
                    def.span,
                    format!("{} group `{}` has no `rule`", def.kind, def.name),
                )
                .with_help("add a `rule:` expression, or make it `kind: manual` with `members`"),
            );
        }
    }

    fn rule(&mut self, node: &Node) -> Option<Expr> {
        let s = self.scalar(node, "a rule expression")?;
        let origin = Origin {
            file: node.span.file,
            positions: &s.positions,
        };
        parse_expr(&s.value, &origin)
            .map_err(|d| self.diags.push(d))
            .ok()
    }

    fn entries(&mut self, node: &Node, what: &str) -> Vec<PersonEntry> {
        let items = self.seq(node, what);
        items.iter().filter_map(|n| self.entry(n)).collect()
    }

    fn entry(&mut self, node: &Node) -> Option<PersonEntry> {
        if let NodeKind::Scalar(s) = &node.kind {
            if node.is_null() {
                self.error(node.span, "empty person entry");
                return None;
            }
            return Some(PersonEntry {
                who: Who::KeyOrEmail(s.value.clone()),
                reason: None,
                ticket: None,
                expires: None,
                added_by: None,
                reviewed: None,
                span: node.span,
            });
        }
        let f = self.fields(node, ENTRY_KEYS, "a person entry")?;
        let who = match (f.get("id"), f.get("email")) {
            (Some(id), None) => Who::Key(self.string(id, "a worker id")?),
            (None, Some(email)) => Who::Email(self.string(email, "an email")?),
            (Some(_), Some(_)) => {
                self.diags.push(
                    Diagnostic::error(node.span, "a person entry has both `id` and `email`")
                        .with_help("name the worker by exactly one of them"),
                );
                return None;
            }
            (None, None) => {
                self.diags.push(
                    Diagnostic::error(node.span, "a person entry needs `id` or `email`")
                        .with_help("e.g. `- email: jane@example.com` or `- id: E000123`"),
                );
                return None;
            }
        };
        Some(PersonEntry {
            who,
            reason: f.get("reason").and_then(|n| self.string(n, "a reason")),
            ticket: f.get("ticket").and_then(|n| self.string(n, "a ticket")),
            expires: f.get("expires").and_then(|n| self.date(n, "a date")),
            added_by: f.get("added_by").and_then(|n| self.string(n, "a name")),
            reviewed: f.get("reviewed").and_then(|n| self.date(n, "a date")),
            span: node.span,
        })
    }

    fn pushes(&mut self, node: &Node) -> Vec<Push> {
        let items = self.seq(node, "`push`");
        items.iter().filter_map(|n| self.push(n)).collect()
    }

    fn push(&mut self, node: &Node) -> Option<Push> {
        if let NodeKind::Scalar(_) = &node.kind {
            let target = self.string(node, "a target name")?;
            return Some(Push {
                target,
                display_name: String::new(),
                link: None,
                email: None,
                active: true,
                span: node.span,
            });
        }
        let f = self.fields(node, PUSH_KEYS, "a push")?;
        let Some(target_node) = f.get("target") else {
            self.error(node.span, "a push needs a `target`");
            return None;
        };
        Some(Push {
            target: self.string(target_node, "a target name")?,
            display_name: f
                .get("display_name")
                .and_then(|n| self.string(n, "a display name"))
                .unwrap_or_default(),
            link: f
                .get("link")
                .and_then(|n| self.string(n, "a group to link to")),
            email: f.get("email").and_then(|n| {
                let email = self.string(n, "an email address")?;
                if crate::config::is_address(&email) {
                    Some(email)
                } else {
                    self.error(n.span, format!("`{email}` is not an email address"));
                    None
                }
            }),
            active: f
                .get("active")
                .and_then(|n| self.bool(n, "`active`"))
                .unwrap_or(true),
            span: target_node.span,
        })
    }

    fn failsafe(&mut self, node: &Node) -> Failsafe {
        let Some(f) = self.fields(node, FAILSAFE_KEYS, "a failsafe") else {
            return Failsafe::default();
        };
        let percent = f.get("max_remove_percent").and_then(|n| {
            let p = self.number(n, "a percentage from 0 to 100")?;
            if p > 100.0 {
                self.error(n.span, "`max_remove_percent` must be from 0 to 100");
                return None;
            }
            Some(p)
        });
        let count = f.get("max_remove_count").and_then(|n| {
            let c = self.number(n, "a whole number of members")?;
            if c.fract() != 0.0 {
                self.error(n.span, "`max_remove_count` must be a whole number");
                return None;
            }
            Some(c as u64)
        });
        Failsafe {
            max_remove_percent: percent,
            max_remove_count: count,
        }
    }
}

fn kind_help(kind: GroupKind, key: &str) -> &'static str {
    match (kind, key) {
        (GroupKind::Managed, _) => {
            "managed groups are the rule alone; use `kind: hybrid` for a rule plus manual entries"
        }
        (GroupKind::Hybrid, _) => "hybrid groups name people in `include` and `exclude`",
        (GroupKind::Manual, "rule") => {
            "manual groups list their `members`; use `kind: hybrid` for a rule plus manual entries"
        }
        (GroupKind::Manual, _) => {
            "manual groups list people in `members`; to keep someone out, remove their entry"
        }
    }
}
