//! The names and types the config speaks of: identifiers, group and target names, the
//! rules language's reserved words, attribute types. The ground floor: the config checks
//! against it, and `rules` and `directory` build on it; it imports nothing of rosterd's.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Words of the expression language that cannot name attributes.
const RESERVED: &[&str] = &[
    "and",
    "or",
    "not",
    "in",
    "contains",
    "startswith",
    "endswith",
    "matches",
    "true",
    "false",
];

pub fn is_reserved_word(name: &str) -> bool {
    RESERVED.contains(&name)
}

/// `[a-z_][a-z0-9_]*`: an attribute or function name.
pub fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

/// `[a-z0-9][a-z0-9._-]{0,127}`: a group or target name.
pub fn is_group_name(name: &str) -> bool {
    let ok = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
    let mut chars = name.chars();
    name.len() <= 128
        && chars.next().is_some_and(ok)
        && chars.all(|c| ok(c) || matches!(c, '.' | '_' | '-'))
}

/// The built-in bool attribute: the worker is named as manager by an eligible worker.
pub const IS_MANAGER: &str = "is_manager";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AttrType {
    String,
    Number,
    Bool,
    Date,
    /// A list of strings.
    List,
}

impl fmt::Display for AttrType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AttrType::String => "string",
            AttrType::Number => "number",
            AttrType::Bool => "bool",
            AttrType::Date => "date",
            AttrType::List => "list",
        })
    }
}

/// A git branch name rosterd will use: `git check-ref-format`'s rules for the names rosterd
/// writes and reads (letters, digits, `/`, `.`, `_`, `-`; no `..`, no leading `-` or `/`,
/// no trailing `/` or `.lock`).
pub fn is_branch_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 200
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-".contains(c))
        && !name.starts_with(['-', '/', '.'])
        && !name.ends_with(['/', '.'])
        && !name.ends_with(".lock")
        && !name.contains("..")
        && !name.contains("//")
        && !name.contains("/.")
}
