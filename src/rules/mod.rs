//! Rule files → a checked [`RuleSet`].
//!
//! The stages, each with its own module: `yaml` (file → nodes with spans), `load` (nodes →
//! group definitions, expressions parsed by `parse` into the `ast`), `check` (names, types,
//! cycles → compiled [`CExpr`]s). Every problem becomes a [`Diagnostic`]; all of a run's
//! diagnostics are reported together. Warnings that need a directory are the engine's
//! (`engine::lint`).

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};

use chrono::NaiveDate;
use serde::Serialize;

use crate::directory::Schema;

pub mod ast;
mod check;
mod compiled;
pub mod diagnostic;
pub mod edit;
pub mod limits;
mod load;
pub mod parse;
mod requests;
pub mod rule_tests;
pub mod source;
pub mod yaml;

pub use compiled::{CExpr, Op, Type};
pub use diagnostic::{Diagnostic, Diagnostics, Severity};
pub use source::{FileId, SourceMap, Span};

/// Index of a group in [`RuleSet::groups`].
pub type GroupId = usize;

pub use crate::names::{is_group_name, is_identifier, is_reserved_word};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum GroupKind {
    /// Membership is the rule alone.
    Managed,
    /// The rule plus `include`, minus `exclude`.
    Hybrid,
    /// The `members` list alone.
    Manual,
}

impl fmt::Display for GroupKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            GroupKind::Managed => "managed",
            GroupKind::Hybrid => "hybrid",
            GroupKind::Manual => "manual",
        })
    }
}

/// How a person entry names its worker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Who {
    Key(String),
    Email(String),
    /// A bare string: tried as a key first, then as an email.
    KeyOrEmail(String),
}

impl Who {
    /// The key or email as written, whichever it is.
    pub fn value(&self) -> &str {
        match self {
            Who::Key(s) | Who::Email(s) | Who::KeyOrEmail(s) => s,
        }
    }
}

impl fmt::Display for Who {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Who::Key(k) => write!(f, "id: {k}"),
            Who::Email(e) => write!(f, "email: {e}"),
            Who::KeyOrEmail(s) => f.write_str(s),
        }
    }
}

/// One `include`, `exclude` or `members` entry.
#[derive(Debug, Clone, PartialEq)]
pub struct PersonEntry {
    pub who: Who,
    pub reason: Option<String>,
    pub ticket: Option<String>,
    /// The last day the entry counts.
    pub expires: Option<NaiveDate>,
    pub added_by: Option<String>,
    /// The day the group's approvers last kept the entry (an access review or the request
    /// that added it); `None` when it was never reviewed.
    pub reviewed: Option<NaiveDate>,
    pub span: Span,
}

impl PersonEntry {
    /// Whether the entry still counts on `as_of` (an entry counts on its `expires` day).
    pub fn active_on(&self, as_of: NaiveDate) -> bool {
        self.expires.is_none_or(|e| e >= as_of)
    }

    /// `reason: ..., ticket: ..., expires: ...` as far as given.
    pub fn details(&self) -> String {
        let mut parts = Vec::new();
        if let Some(r) = &self.reason {
            parts.push(format!("reason: {r}"));
        }
        if let Some(t) = &self.ticket {
            parts.push(format!("ticket: {t}"));
        }
        if let Some(e) = &self.expires {
            parts.push(format!("expires: {e}"));
        }
        if let Some(a) = &self.added_by {
            parts.push(format!("added by: {a}"));
        }
        if let Some(r) = &self.reviewed {
            parts.push(format!("reviewed: {r}"));
        }
        parts.join(", ")
    }
}

/// One target a group is pushed to.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Push {
    pub target: String,
    /// The group's name in the target.
    pub display_name: String,
    /// Link to an existing target group with this displayName instead of creating one.
    pub link: Option<String>,
    /// The group's email address, for a Google Workspace target (else its `group_email`
    /// template makes one from the group's name).
    pub email: Option<String>,
    /// An inactive push sends nothing and leaves the target group as it is.
    pub active: bool,
    #[serde(skip)]
    pub span: Span,
}

/// A group's overrides of the daemon's removal failsafe.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Failsafe {
    pub max_remove_percent: Option<f64>,
    pub max_remove_count: Option<u64>,
}

#[derive(Debug, Clone)]
pub struct Group {
    pub name: String,
    pub kind: GroupKind,
    pub description: Option<String>,
    pub owners: Vec<String>,
    pub rule: Option<CExpr>,
    pub include: Vec<PersonEntry>,
    pub exclude: Vec<PersonEntry>,
    pub members: Vec<PersonEntry>,
    pub push: Vec<Push>,
    pub failsafe: Failsafe,
    /// Whether and how people may ask to join (hybrid and manual groups only).
    pub requests: Option<Requests>,
    /// The group's `name` value in its file.
    pub span: Span,
    /// The group's whole entry in its file.
    pub definition: Span,
}

/// A group's `requests:` block: people may ask to be added, and the approvers decide.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Requests {
    /// Who decides; the group's `owners` when the block names nobody.
    pub approvers: Vec<Approver>,
    /// Where each approver is written.
    #[serde(skip)]
    pub approver_spans: Vec<Span>,
    /// The longest a granted entry may last, in days.
    pub max_days: u32,
    /// Whether a request must say why.
    pub justification_required: bool,
    /// Days between access reviews of each entry.
    pub review_every_days: u32,
    #[serde(skip)]
    pub span: Span,
}

/// Days between access reviews of an entry, unless the group says otherwise.
pub const REVIEW_EVERY_DAYS: u32 = 90;
/// Days before an entry's `expires` that it is due for review.
pub const REVIEW_BEFORE_EXPIRY_DAYS: u32 = 14;

/// One way to be an approver, as the console's roles are written: a person's email, a
/// rosterd group (its members, by email), or a group in the identity provider's claim.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Approver {
    Email(String),
    Group(String),
    Claim(String),
}

impl fmt::Display for Approver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Approver::Email(e) => f.write_str(e),
            Approver::Group(g) => write!(f, "group: {g}"),
            Approver::Claim(c) => write!(f, "claim: {c}"),
        }
    }
}

impl Group {
    /// Who decides requests for and reviews of the group's entries: the `requests:` block's
    /// approvers, else the owners (each an email).
    pub fn approvers(&self) -> Vec<Approver> {
        match &self.requests {
            Some(r) if !r.approvers.is_empty() => r.approvers.clone(),
            _ => self
                .owners
                .iter()
                .map(|o| Approver::Email(o.clone()))
                .collect(),
        }
    }

    /// Days between access reviews of the group's entries.
    pub fn review_every_days(&self) -> u32 {
        self.requests
            .as_ref()
            .map_or(REVIEW_EVERY_DAYS, |r| r.review_every_days)
    }

    /// The entries people were granted by hand: `include` of a hybrid group, `members` of a
    /// manual one (`exclude` takes access away and is not reviewed).
    pub fn granted(&self) -> (&'static str, &[PersonEntry]) {
        match self.kind {
            GroupKind::Manual => ("members", &self.members),
            _ => ("include", &self.include),
        }
    }
}

/// A checked set of groups, ready to evaluate. Only [`load`] makes one, so holding a
/// `RuleSet` means the rules passed `check`.
#[derive(Debug, Clone)]
pub struct RuleSet {
    sources: SourceMap,
    groups: Vec<Group>,
    by_name: HashMap<String, GroupId>,
    /// Every group after the groups its rule names in `member_of`.
    order: Vec<GroupId>,
    /// The groups in levels: those of one level name only groups of earlier levels.
    levels: Vec<Vec<GroupId>>,
    eligibility: Option<CExpr>,
    /// The rule tests written beside the rules.
    tests: Vec<rule_tests::RuleTest>,
    guardrails: Vec<Guardrail>,
}

/// An invariant over the evaluated memberships, declared in the rules.
#[derive(Debug, Clone)]
pub struct Guardrail {
    pub name: String,
    /// The guardrail's `name` in its file.
    pub span: Span,
    pub description: Option<String>,
    pub check: GuardCheck,
    /// A violation holds the pushes of the groups involved (`on_violation: hold`, the
    /// default); otherwise it is only reported (`warn`).
    pub hold: bool,
    /// The groups a violation concerns: those `never` names in `member_of`, or the group.
    pub groups: Vec<GroupId>,
}

#[derive(Debug, Clone)]
pub enum GuardCheck {
    /// No worker may make the expression true.
    Never(CExpr),
    /// Every member of the group makes the expression true.
    Requires { group: GroupId, expr: CExpr },
    /// The group's size stays within bounds.
    Size {
        group: GroupId,
        min: Option<u64>,
        max: Option<u64>,
    },
}

impl RuleSet {
    pub fn sources(&self) -> &SourceMap {
        &self.sources
    }

    pub fn groups(&self) -> &[Group] {
        &self.groups
    }

    pub fn group(&self, id: GroupId) -> &Group {
        &self.groups[id]
    }

    pub fn lookup(&self, name: &str) -> Option<GroupId> {
        self.by_name.get(name).copied()
    }

    pub fn evaluation_order(&self) -> &[GroupId] {
        &self.order
    }

    /// The groups in levels: a group's rule names in `member_of` only groups of earlier
    /// levels, so the groups of one level can be evaluated at once.
    pub fn levels(&self) -> &[Vec<GroupId>] {
        &self.levels
    }

    pub fn eligibility(&self) -> Option<&CExpr> {
        self.eligibility.as_ref()
    }

    /// The rule tests (`tests:` lists in the rule files), checked.
    pub fn tests(&self) -> &[rule_tests::RuleTest] {
        &self.tests
    }

    /// The guardrails (`guardrails:` lists in the rule files), checked.
    pub fn guardrails(&self) -> &[Guardrail] {
        &self.guardrails
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.groups.iter().map(|g| g.name.as_str())
    }

    /// A group's entry as written: `file:line:col` where it starts, and its YAML, the lines
    /// it spans with the indentation of its first key taken off (a list item's `- ` too).
    pub fn definition(&self, id: GroupId) -> (String, String) {
        let span = self.groups[id].definition;
        let file = self.sources.file(span.file);
        let (first, col) = file.line_col(span.start as usize);
        let (last, _) = file.line_col((span.end as usize).saturating_sub(1));
        let indent = col - 1;
        let text: Vec<String> = (first..=last)
            .map(|line| {
                let text = file.line_text(line);
                let cut = text
                    .char_indices()
                    .nth(indent)
                    .map_or(text.len(), |(i, _)| i);
                let (head, rest) = text.split_at(cut);
                // The first line's head is `  - `; the others' is indentation only.
                if line == first || head.trim().is_empty() {
                    rest.to_string()
                } else {
                    text.trim_start().to_string()
                }
            })
            .collect();
        let text = text.join("\n").trim_end().to_string();
        (self.sources.location(span), text)
    }

    /// SHA-256 over the rule files under `dir` (paths and contents, in path order): the
    /// revision of the rules a run used, whether or not they are a git checkout.
    pub fn digest(&self, dir: &Path) -> String {
        use sha2::Digest;
        let mut hasher = sha2::Sha256::new();
        for file in self
            .sources
            .files()
            .iter()
            .filter(|f| f.path.starts_with(dir))
        {
            let relative = file.path.strip_prefix(dir).unwrap_or(&file.path);
            hasher.update(relative.display().to_string().as_bytes());
            hasher.update([0]);
            hasher.update(file.text.as_bytes());
            hasher.update([0]);
        }
        hasher
            .finalize()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RulesError {
    #[error("cannot read rules from `{}`: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}", diagnostics.render(sources))]
    Invalid {
        sources: Box<SourceMap>,
        diagnostics: Diagnostics,
    },
    #[error("{0}")]
    Internal(String),
}

/// What the rules may refer to outside themselves.
pub struct Context<'a> {
    pub schema: &'a Schema,
    /// Names of the configured push targets.
    pub targets: Vec<String>,
    /// Those whose groups have email addresses (Google Workspace): a push may name one.
    pub addressed: Vec<String>,
    /// The eligibility expression, and the config file it came from.
    pub eligibility: Option<(&'a str, &'a Path)>,
}

impl<'a> Context<'a> {
    /// What the daemon config lets the rules refer to.
    pub fn from_config(config: &'a crate::config::Config, schema: &'a Schema) -> Self {
        Context {
            schema,
            targets: config.targets.keys().cloned().collect(),
            addressed: config
                .targets
                .iter()
                .filter(|(_, t)| t.kind == crate::config::TargetKind::GoogleWorkspace)
                .map(|(name, _)| name.clone())
                .collect(),
            eligibility: config
                .directory
                .eligibility
                .as_deref()
                .map(|e| (e, config.path.as_path())),
        }
    }
}

/// Reads every rule file under `dir` and checks the whole set. On success the diagnostics
/// hold no errors (warnings from the engine's lint come separately).
pub fn load(dir: &Path, ctx: &Context<'_>) -> Result<RuleSet, RulesError> {
    let mut sources = SourceMap::default();
    let mut refused = Diagnostics::default();
    let mut total = 0usize;
    for path in rule_files(dir)? {
        let read_err = |source| RulesError::Read {
            path: path.clone(),
            source,
        };
        let size = std::fs::metadata(&path).map_err(read_err)?.len();
        let size = usize::try_from(size).unwrap_or(usize::MAX);
        total = total.saturating_add(size);
        let over = if size > limits::MAX_FILE_BYTES {
            Some(format!(
                "the rule file is {size} bytes, more than the limit of {} MiB for one file",
                limits::MAX_FILE_BYTES >> 20
            ))
        } else if total > limits::MAX_TOTAL_BYTES {
            Some(format!(
                "the rule files together are more than the limit of {} MiB",
                limits::MAX_TOTAL_BYTES >> 20
            ))
        } else {
            None
        };
        if let Some(message) = over {
            // Named, not read: the diagnostic points at the file's start.
            let id = sources.add(path.display().to_string(), &path, String::new());
            refused.push(
                Diagnostic::error(Span::new(id, 0, 0), message)
                    .with_help("split the rules into smaller files, or fewer groups"),
            );
            continue;
        }
        let text = std::fs::read_to_string(&path).map_err(read_err)?;
        sources.add(path.display().to_string(), &path, text);
    }
    if refused.has_errors() {
        return Err(RulesError::Invalid {
            sources: Box::new(sources),
            diagnostics: refused,
        });
    }
    check_sources(sources, ctx)
}

/// The stack of the thread that checks rules. Expression nesting is bounded
/// ([`limits::MAX_NESTING`]), so this is a margin, not a requirement: whatever thread asks
/// (a tokio worker has 2 MiB), checking runs with the same room.
const CHECK_STACK_BYTES: usize = 64 << 20;

/// Checks rule files already read into `sources` (tests and the daemon's reload use this).
///
/// The work runs on a thread of its own with a known stack, and a panic in it is an error
/// like any other: a rule file must never take the process down.
pub fn check_sources(sources: SourceMap, ctx: &Context<'_>) -> Result<RuleSet, RulesError> {
    std::thread::scope(|scope| {
        let worker = std::thread::Builder::new()
            .name("rules-check".into())
            .stack_size(CHECK_STACK_BYTES)
            .spawn_scoped(scope, || check_on_this_thread(sources, ctx));
        match worker.map(|w| w.join()) {
            Ok(Ok(result)) => result,
            Ok(Err(panic)) => Err(RulesError::Internal(panic_text(&panic))),
            Err(e) => Err(RulesError::Internal(format!(
                "cannot start the rules checker: {e}"
            ))),
        }
    })
}

fn panic_text(panic: &(dyn std::any::Any + Send)) -> String {
    let text = panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic".to_string());
    format!("internal error while checking the rules: {text}")
}

fn check_on_this_thread(mut sources: SourceMap, ctx: &Context<'_>) -> Result<RuleSet, RulesError> {
    let mut diagnostics = Diagnostics::default();
    let mut extras = load::Extras::default();
    let mut defs = load::groups(&sources, &mut diagnostics, &mut extras);
    if let Some(first_over) = defs.get(limits::MAX_GROUPS) {
        diagnostics.push(
            Diagnostic::error(
                first_over.span,
                format!(
                    "more than the limit of {} groups in the rules",
                    limits::MAX_GROUPS
                ),
            )
            .with_label("this group is one too many"),
        );
        defs.truncate(limits::MAX_GROUPS);
    }
    let eligibility = ctx
        .eligibility
        .and_then(|(text, config)| load::eligibility(text, config, &mut sources, &mut diagnostics));
    let mut rules = check::check(defs, eligibility, ctx, sources.clone(), &mut diagnostics);
    if let Some(rules) = &mut rules {
        rules.tests = rule_tests::check(extras.tests, &rules.by_name, ctx.schema, &mut diagnostics);
        rules.guardrails = check::guardrails(
            extras.guardrails,
            &rules.by_name,
            ctx.schema,
            &mut diagnostics,
        );
    }
    if extras.unreadable > 0 {
        // The groups of a file that is not YAML are unknown, not missing: naming one
        // elsewhere is not a second mistake (nor should it suggest another name).
        diagnostics.retain(|d| !d.message.starts_with("unknown group `"));
    }
    match rules {
        Some(rules) if !diagnostics.has_errors() => Ok(rules),
        _ => Err(RulesError::Invalid {
            sources: Box::new(sources),
            diagnostics,
        }),
    }
}

/// `*.yaml` and `*.yml` files under `dir`, recursively, sorted by path. Hidden files and
/// folders (`.git`, `.gitlab-ci.yml`) are not rule files.
fn rule_files(dir: &Path) -> Result<Vec<PathBuf>, RulesError> {
    let read_err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| RulesError::Read { path, source }
    };
    let mut out = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(folder) = pending.pop() {
        for entry in std::fs::read_dir(&folder).map_err(read_err(&folder))? {
            let entry = entry.map_err(read_err(&folder))?;
            let path = entry.path();
            let name = entry.file_name();
            if name.to_string_lossy().starts_with('.') {
                continue;
            }
            if entry.file_type().map_err(read_err(&path))?.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
                out.push(path);
            }
        }
    }
    out.sort();
    Ok(out)
}
