//! Edits of a rule file's text that keep everything else as written: comments, order,
//! quoting, line endings. Access requests and reviews land as such edits; the caller checks
//! the edited rules again (`rosterd check`, `rosterd test`) before anything is committed.

use std::fmt::Write as _;

use chrono::NaiveDate;

use super::yaml::{self, Node, NodeKind};
use super::Who;

/// An entry to add to a group's `include` or `members`.
#[derive(Debug, Clone, PartialEq)]
pub struct Grant {
    /// `Who::Key` or `Who::Email`; a bare `KeyOrEmail` is written as an email when it has
    /// an `@`.
    pub who: Who,
    pub reason: Option<String>,
    pub ticket: Option<String>,
    pub expires: Option<NaiveDate>,
    pub added_by: Option<String>,
    pub reviewed: Option<NaiveDate>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EditError {
    #[error("the file is not valid YAML: {0}")]
    Yaml(String),
    #[error("group `{0}` is not in this file")]
    NoGroup(String),
    #[error("group `{group}` has no `{list}` entry for {who}")]
    NoEntry {
        group: String,
        list: String,
        who: String,
    },
    #[error("group `{group}` already has a `{list}` entry for {who}")]
    Exists {
        group: String,
        list: String,
        who: String,
    },
    #[error("`{list}` of group `{group}` is a flow list (`[...]`); write it as a block list (one `- ` line per entry) so that rosterd can edit it")]
    Flow { group: String, list: String },
}

/// `text` with `grant` appended to `list` (`include` or `members`) of `group`.
pub fn add_entry(text: &str, group: &str, list: &str, grant: &Grant) -> Result<String, EditError> {
    let file = File::parse(text, group)?;
    let nl = file.newline();
    if let Some((_, value)) = file.list(list) {
        if file
            .items(value, list)?
            .iter()
            .any(|i| names(i, &grant.who))
        {
            return Err(EditError::Exists {
                group: group.into(),
                list: list.into(),
                who: who_text(&grant.who),
            });
        }
    }
    let mut out = text.to_string();
    match file.list(list) {
        Some((_, value)) if matches!(&value.kind, NodeKind::Seq(items) if !items.is_empty()) => {
            let NodeKind::Seq(items) = &value.kind else {
                return Err(file.flow(list));
            };
            let first = items.first().map_or(value.span.start, |i| i.span.start) as usize;
            let dash = dash_column(text, first).ok_or_else(|| file.flow(list))?;
            let at = end_line(text, value.span.end as usize);
            out.insert_str(at, &render(grant, dash, nl));
        }
        Some((key, value)) => {
            if !value.is_null() && !is_empty_flow(&value.kind) {
                return Err(file.flow(list));
            }
            let key_col = column(text, key.span.start as usize);
            let start = key.span.end as usize;
            let end = line_content_end(text, value.span.end.max(key.span.end) as usize);
            let block = render(grant, key_col + 2, nl);
            let block = block.strip_suffix(nl).unwrap_or(&block);
            out.replace_range(start..end, &format!(":{nl}{block}"));
        }
        None => {
            let key_col = file.key_column();
            let at = end_line(text, file.group.span.end as usize);
            let mut block = format!("{}{list}:{nl}", " ".repeat(key_col));
            block.push_str(&render(grant, key_col + 2, nl));
            out.insert_str(at, &ensure_line(&out, at, nl, &block));
        }
    }
    Ok(out)
}

/// `text` without the entry of `list` of `group` that names `who` as written.
pub fn remove_entry(text: &str, group: &str, list: &str, who: &Who) -> Result<String, EditError> {
    let file = File::parse(text, group)?;
    let (key, value) = file.list(list).ok_or_else(|| file.no_entry(list, who))?;
    let items = file.items(value, list)?;
    let item = items
        .iter()
        .find(|i| names(i, who))
        .ok_or_else(|| file.no_entry(list, who))?;
    let mut out = text.to_string();
    if items.len() == 1 {
        let end = line_content_end(text, value.span.end as usize);
        out.replace_range(key.span.end as usize..end, ": []");
    } else {
        let start = line_start(text, item.span.start as usize);
        out.replace_range(start..end_line(text, item.span.end as usize), "");
    }
    Ok(out)
}

/// `text` with the entry of `list` of `group` naming `who` kept: `reviewed` set, and
/// `expires` set when given (else left as it is).
pub fn keep_entry(
    text: &str,
    group: &str,
    list: &str,
    who: &Who,
    expires: Option<NaiveDate>,
    reviewed: NaiveDate,
) -> Result<String, EditError> {
    let file = File::parse(text, group)?;
    let nl = file.newline();
    let (_, value) = file.list(list).ok_or_else(|| file.no_entry(list, who))?;
    let items = file.items(value, list)?;
    let item = items
        .iter()
        .find(|i| names(i, who))
        .ok_or_else(|| file.no_entry(list, who))?;
    let fields: Vec<(&str, NaiveDate)> = expires
        .map(|e| ("expires", e))
        .into_iter()
        .chain([("reviewed", reviewed)])
        .collect();
    let mut out = text.to_string();
    let col = column(text, item.span.start as usize);
    let NodeKind::Map(entries) = &item.kind else {
        // A bare `- KEY_OR_EMAIL` becomes a mapping to carry the dates.
        let mut block = format!("{}{nl}", entry_line(who));
        for (field, date) in &fields {
            let _ = write!(block, "{}{field}: {date}{nl}", " ".repeat(col));
        }
        let block = block.strip_suffix(nl).unwrap_or(&block).to_string();
        out.replace_range(item.span.start as usize..item.span.end as usize, &block);
        return Ok(out);
    };
    let mut edits: Vec<(usize, usize, String)> = Vec::new();
    let mut missing = String::new();
    for (field, date) in &fields {
        match entries.iter().find(|(k, _)| scalar(k) == Some(field)) {
            Some((_, v)) => {
                edits.push((v.span.start as usize, v.span.end as usize, date.to_string()))
            }
            None => {
                let _ = write!(missing, "{}{field}: {date}{nl}", " ".repeat(col));
            }
        }
    }
    if !missing.is_empty() {
        let at = end_line(text, item.span.end as usize);
        edits.push((at, at, ensure_line(text, at, nl, &missing)));
    }
    edits.sort_by_key(|e| std::cmp::Reverse(e.0));
    for (start, end, with) in edits {
        out.replace_range(start..end, &with);
    }
    Ok(out)
}

/// The parsed file and the group's mapping in it.
struct File<'t> {
    text: &'t str,
    name: String,
    group: Node,
}

impl<'t> File<'t> {
    fn parse(text: &'t str, group: &str) -> Result<Self, EditError> {
        let root = yaml::parse(text, 0).map_err(|d| EditError::Yaml(d.message))?;
        let node = field(&root, "groups")
            .and_then(|groups| match &groups.kind {
                NodeKind::Seq(items) => items
                    .iter()
                    .find(|g| field(g, "name").and_then(scalar) == Some(group))
                    .cloned(),
                _ => None,
            })
            .ok_or_else(|| EditError::NoGroup(group.into()))?;
        Ok(File {
            text,
            name: group.into(),
            group: node,
        })
    }

    fn newline(&self) -> &'static str {
        if self.text.contains("\r\n") {
            "\r\n"
        } else {
            "\n"
        }
    }

    /// The key and value of `list` in the group's mapping.
    fn list(&self, list: &str) -> Option<(&Node, &Node)> {
        let NodeKind::Map(entries) = &self.group.kind else {
            return None;
        };
        entries
            .iter()
            .find(|(k, _)| scalar(k) == Some(list))
            .map(|(k, v)| (k, v))
    }

    /// The items of a list value: none for an empty one; an error for a flow list.
    fn items<'n>(&self, value: &'n Node, list: &str) -> Result<&'n [Node], EditError> {
        match &value.kind {
            NodeKind::Seq(items) if items.is_empty() => Ok(items),
            NodeKind::Seq(items) => match dash_column(self.text, items[0].span.start as usize) {
                Some(_) => Ok(items),
                None => Err(self.flow(list)),
            },
            _ => Ok(&[]),
        }
    }

    /// The column of the group's keys.
    fn key_column(&self) -> usize {
        match &self.group.kind {
            NodeKind::Map(entries) => entries
                .first()
                .map_or(0, |(k, _)| column(self.text, k.span.start as usize)),
            _ => 0,
        }
    }

    fn flow(&self, list: &str) -> EditError {
        EditError::Flow {
            group: self.name.clone(),
            list: list.into(),
        }
    }

    fn no_entry(&self, list: &str, who: &Who) -> EditError {
        EditError::NoEntry {
            group: self.name.clone(),
            list: list.into(),
            who: who_text(who),
        }
    }
}

fn field<'n>(node: &'n Node, key: &str) -> Option<&'n Node> {
    match &node.kind {
        NodeKind::Map(entries) => entries
            .iter()
            .find(|(k, _)| scalar(k) == Some(key))
            .map(|(_, v)| v),
        _ => None,
    }
}

fn scalar(node: &Node) -> Option<&str> {
    match &node.kind {
        NodeKind::Scalar(s) => Some(s.value.as_str()),
        _ => None,
    }
}

/// Whether an entry names the worker `who` names: the same id, or the same email in any
/// case, whichever way either is written.
fn names(item: &Node, who: &Who) -> bool {
    let (key, email) = match &item.kind {
        NodeKind::Scalar(s) => (Some(s.value.as_str()), Some(s.value.as_str())),
        _ => (
            field(item, "id").and_then(scalar),
            field(item, "email").and_then(scalar),
        ),
    };
    let same_email = |e: &str| email.is_some_and(|m| m.eq_ignore_ascii_case(e));
    match who {
        Who::Key(k) => key == Some(k.as_str()),
        Who::Email(e) => same_email(e),
        Who::KeyOrEmail(s) => key == Some(s.as_str()) || same_email(s),
    }
}

fn who_text(who: &Who) -> String {
    match who {
        Who::Key(k) => format!("id {k}"),
        Who::Email(e) => format!("email {e}"),
        Who::KeyOrEmail(s) => s.clone(),
    }
}

/// `id: KEY` or `email: EMAIL`.
fn entry_line(who: &Who) -> String {
    match who {
        Who::Key(k) => format!("id: {}", quoted(k)),
        Who::Email(e) => format!("email: {}", quoted(e)),
        Who::KeyOrEmail(s) if s.contains('@') => format!("email: {}", quoted(s)),
        Who::KeyOrEmail(s) => format!("id: {}", quoted(s)),
    }
}

/// One list item, the dash at column `dash`.
fn render(grant: &Grant, dash: usize, nl: &str) -> String {
    let pad = " ".repeat(dash);
    let mut out = format!("{pad}- {}{nl}", entry_line(&grant.who));
    let mut line = |key: &str, value: String| {
        let _ = write!(out, "{pad}  {key}: {value}{nl}");
    };
    if let Some(r) = &grant.reason {
        line("reason", quoted(r));
    }
    if let Some(t) = &grant.ticket {
        line("ticket", quoted(t));
    }
    if let Some(e) = grant.expires {
        line("expires", e.to_string());
    }
    if let Some(a) = &grant.added_by {
        line("added_by", quoted(a));
    }
    if let Some(r) = grant.reviewed {
        line("reviewed", r.to_string());
    }
    out
}

/// `s` as a YAML scalar that reads back as the same string: plain when it is plainly a
/// word, an id or an address, else double-quoted (JSON's escapes are YAML's).
fn quoted(s: &str) -> String {
    let plain = s.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "@._+-".contains(c))
        && !matches!(
            s.to_ascii_lowercase().as_str(),
            "true" | "false" | "yes" | "no" | "on" | "off" | "null" | "y" | "n"
        );
    if plain {
        s.to_string()
    } else {
        serde_json::to_string(s).unwrap_or_else(|_| format!("\"{}\"", s.escape_default()))
    }
}

/// The column of the `- ` that starts the item whose content begins at `at`, when the item
/// is a block list item.
fn dash_column(text: &str, at: usize) -> Option<usize> {
    let start = line_start(text, at);
    let before = text.get(start..at)?;
    let dash = before.find('-')?;
    let shape_ok = before[..dash].chars().all(|c| c == ' ')
        && before[dash + 1..].chars().all(|c| c == ' ')
        && before.len() > dash + 1;
    shape_ok.then_some(dash)
}

fn is_empty_flow(kind: &NodeKind) -> bool {
    matches!(kind, NodeKind::Seq(items) if items.is_empty())
}

fn line_start(text: &str, at: usize) -> usize {
    text[..at].rfind('\n').map_or(0, |i| i + 1)
}

fn column(text: &str, at: usize) -> usize {
    at - line_start(text, at)
}

/// The start of the line after the one `end` (a node's end) is on; a node that ends with
/// its line's newline ends there already.
fn end_line(text: &str, end: usize) -> usize {
    if end > 0 && text.as_bytes().get(end - 1) == Some(&b'\n') {
        return end;
    }
    text[end..].find('\n').map_or(text.len(), |i| end + i + 1)
}

/// Where the content of the line `end` is on stops (before `\r\n` or `\n`).
fn line_content_end(text: &str, end: usize) -> usize {
    let stop = end_line(text, end);
    let line = &text[..stop];
    let line = line.strip_suffix('\n').unwrap_or(line);
    line.strip_suffix('\r')
        .unwrap_or(line)
        .len()
        .max(end.min(line.len()))
}

/// `block` to insert at `at`, after a newline when the file's last line has none.
fn ensure_line(text: &str, at: usize, nl: &str, block: &str) -> String {
    if at == text.len() && !text.is_empty() && !text.ends_with('\n') {
        format!("{nl}{block}")
    } else {
        block.to_string()
    }
}

#[cfg(test)]
mod tests;
