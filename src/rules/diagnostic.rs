//! Compiler-style diagnostics: `file:line:col: error: message`, the source line with the span
//! underlined, and `help:` advice.

use std::fmt::{self, Write as _};

use serde::Serialize;

use super::source::{SourceMap, Span};
use crate::text::shorten;

/// How many diagnostics are told at most; the rest are counted.
pub const SHOWN: usize = 200;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub severity: Severity,
    pub span: Span,
    pub message: String,
    /// A short text printed after the underline.
    pub label: Option<String>,
    pub help: Option<String>,
    /// Further places that matter, e.g. where a duplicate name was first defined.
    pub notes: Vec<(Span, String)>,
}

impl Diagnostic {
    pub fn error(span: Span, message: impl Into<String>) -> Self {
        Self::new(Severity::Error, span, message.into())
    }

    pub fn warning(span: Span, message: impl Into<String>) -> Self {
        Self::new(Severity::Warning, span, message.into())
    }

    fn new(severity: Severity, span: Span, message: String) -> Self {
        Diagnostic {
            severity,
            span,
            message: shorten(&message, 400),
            label: None,
            help: None,
            notes: Vec::new(),
        }
    }

    pub fn with_label(mut self, label: impl Into<String>) -> Self {
        self.label = Some(label.into());
        self
    }

    pub fn with_help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(shorten(&help.into(), 2_000));
        self
    }

    /// Adds `help: did you mean ...` when a candidate is close to `name`.
    pub fn with_suggestion<'a>(
        self,
        name: &str,
        candidates: impl IntoIterator<Item = &'a str>,
    ) -> Self {
        match did_you_mean(name, candidates) {
            Some(best) => self.with_help(format!("did you mean `{best}`?")),
            None => self,
        }
    }

    pub fn with_note(mut self, span: Span, note: impl Into<String>) -> Self {
        self.notes.push((span, note.into()));
        self
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }

    /// Renders the diagnostic as the CLI prints it.
    pub fn render(&self, sources: &SourceMap) -> String {
        let mut out = format!(
            "{}: {}: {}\n",
            sources.location(self.span),
            self.severity,
            self.message
        );
        excerpt(&mut out, sources, self.span, self.label.as_deref());
        for (span, note) in &self.notes {
            let _ = writeln!(out, "note: {note} at {}", sources.location(*span));
            excerpt(&mut out, sources, *span, None);
        }
        if let Some(help) = &self.help {
            for (i, line) in help.lines().enumerate() {
                let lead = if i == 0 { "help: " } else { "      " };
                let _ = writeln!(out, "{lead}{line}");
            }
        }
        out
    }

    /// The diagnostic as JSON for `--format json`.
    pub fn to_json(&self, sources: &SourceMap) -> serde_json::Value {
        let file = sources.file(self.span.file);
        let (line, column) = file.line_col(self.span.start as usize);
        serde_json::json!({
            "severity": self.severity,
            "file": file.name,
            "line": line,
            "column": column,
            "message": self.message,
            "help": self.help,
            "rendered": self.render(sources),
        })
    }
}

/// The longest source line an excerpt shows whole; a longer one is shown as a window of this
/// many characters around the span, so a one-line file of megabytes prints a short message.
const EXCERPT_CHARS: usize = 120;

/// The source line of the span's start with a `^^^` underline (to the end of that line when
/// the span runs on).
fn excerpt(out: &mut String, sources: &SourceMap, span: Span, label: Option<&str>) {
    let file = sources.file(span.file);
    let (line, col) = file.line_col(span.start as usize);
    let (end_line, end_col) = file.line_col(span.end as usize);
    let text = file.line_text(line);
    let chars = text.chars().count();
    let width = if end_line == line {
        end_col.saturating_sub(col).max(1)
    } else {
        (chars + 1).saturating_sub(col).max(1)
    };
    // The window of the line shown: all of it, or EXCERPT_CHARS around the column.
    let (from, to) = if chars <= EXCERPT_CHARS {
        (0, chars)
    } else {
        let from = (col - 1).saturating_sub(EXCERPT_CHARS / 2);
        let from = from.min(chars.saturating_sub(EXCERPT_CHARS));
        (from, from + EXCERPT_CHARS)
    };
    let lead = if from > 0 { "…" } else { "" };
    let tail = if to < chars { "…" } else { "" };
    let shown: String = text.chars().skip(from).take(to - from).collect();
    let width = width.min(to + 1 - (col - 1).min(to)).max(1);
    let gutter = line.to_string().len();
    let pad = " ".repeat(gutter);
    let indent: String = lead
        .chars()
        .chain(text.chars().skip(from).take((col - 1).saturating_sub(from)))
        .map(|c| if c == '\t' { '\t' } else { ' ' })
        .collect();
    let _ = writeln!(out, "{pad} |");
    let _ = writeln!(out, "{line} | {lead}{shown}{tail}");
    let label = label.map(|l| format!(" {l}")).unwrap_or_default();
    let _ = writeln!(out, "{pad} | {indent}{}{label}", "^".repeat(width));
}

/// The candidate closest to `name`, when it is close enough to be a likely typo.
pub fn did_you_mean<'a>(
    name: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    candidates
        .into_iter()
        .filter(|c| *c != name)
        .map(|c| (strsim::damerau_levenshtein(name, c), c))
        .filter(|(d, c)| *d <= (name.len().max(c.len()) / 3).max(1))
        .min_by_key(|(d, c)| (*d, *c))
        .map(|(_, c)| c)
}

/// All diagnostics of one load or check, in the order found.
#[derive(Debug, Clone, Default)]
pub struct Diagnostics {
    items: Vec<Diagnostic>,
}

impl Diagnostics {
    /// Keeps only the diagnostics `keep` accepts.
    pub fn retain(&mut self, keep: impl FnMut(&Diagnostic) -> bool) {
        self.items.retain(keep);
    }

    pub fn push(&mut self, d: Diagnostic) {
        self.items.push(d);
    }

    pub fn extend(&mut self, other: Diagnostics) {
        self.items.extend(other.items);
    }

    pub fn has_errors(&self) -> bool {
        self.items.iter().any(Diagnostic::is_error)
    }

    pub fn errors(&self) -> usize {
        self.items.iter().filter(|d| d.is_error()).count()
    }

    pub fn warnings(&self) -> usize {
        self.items.len() - self.errors()
    }

    /// Sorted by file and position, errors first within a position.
    ///
    /// (Every one is kept and counted; [`Diagnostics::shown`] gives those told.)
    pub fn sorted(&self) -> Vec<&Diagnostic> {
        let mut items: Vec<&Diagnostic> = self.items.iter().collect();
        items.sort_by_key(|d| (d.span.file, d.span.start, d.severity));
        items
    }

    pub fn iter(&self) -> impl Iterator<Item = &Diagnostic> {
        self.items.iter()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// The first [`SHOWN`] diagnostics rendered (and how many more there are), then a
    /// summary line.
    pub fn render(&self, sources: &SourceMap) -> String {
        self.render_counting(sources, 0)
    }

    /// The first [`SHOWN`], by position: what `rosterd check`, the daemon's log, the API and
    /// the console show. A file with a hundred thousand mistakes is told in a page, not in
    /// a 22 MB line.
    pub fn shown(&self) -> Vec<&Diagnostic> {
        let mut sorted = self.sorted();
        sorted.truncate(SHOWN);
        sorted
    }

    /// As [`Diagnostics::render`], the summary counting `more_errors` found elsewhere (an
    /// export that cannot be read has no place in a rule file).
    pub fn render_counting(&self, sources: &SourceMap, more_errors: usize) -> String {
        let mut out = String::new();
        for d in self.shown() {
            out.push_str(&d.render(sources));
            out.push('\n');
        }
        if self.items.len() > SHOWN {
            let _ = writeln!(
                out,
                "... and {} more not shown (the first {SHOWN} are, by file and position)",
                self.items.len() - SHOWN
            );
        }
        let (e, w) = (self.errors() + more_errors, self.warnings());
        let plural = |n: usize| if n == 1 { "" } else { "s" };
        let _ = writeln!(out, "{e} error{}, {w} warning{}", plural(e), plural(w));
        out
    }
}
