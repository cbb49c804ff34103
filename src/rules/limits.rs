//! The limits that keep a rule file from costing more than the daemon has: every pass over an
//! expression (parse, check, evaluate, explain) recurses on its nesting, so the nesting is
//! bounded before any of them runs; files, groups and regexes are bounded so that one commit
//! cannot take the memory or the minutes of a reload. Each limit is a diagnostic that names it.

/// Levels of nesting in one expression: parentheses, brackets, calls and `not`s in a row.
/// Rules people write stay under ten; every recursive pass is safe far beyond this on any
/// thread's stack.
pub const MAX_NESTING: usize = 64;
/// Bytes in one rule file.
pub const MAX_FILE_BYTES: usize = 4 << 20;
/// Bytes of all rule files together.
pub const MAX_TOTAL_BYTES: usize = 64 << 20;
/// Groups in the whole rule set.
pub const MAX_GROUPS: usize = 50_000;
/// Levels of nesting in a rule file's YAML.
pub const MAX_YAML_NESTING: usize = 64;
/// Compiled size of one `matches` regex.
pub const MAX_REGEX_BYTES: usize = 1 << 20;
/// The lazy DFA cache of one `matches` regex on one thread; past it the cache is cleared
/// and rebuilt (or the regex falls back to a slower search), never grown.
pub const MAX_REGEX_CACHE_BYTES: usize = 256 << 10;
/// Compiled size of all `matches` regexes together.
pub const MAX_REGEX_TOTAL_BYTES: usize = 32 << 20;

/// The byte offset where `text` first nests deeper than [`MAX_NESTING`], or `None`.
///
/// A lexical scan, run before the parser so that the parser's own recursion is bounded too:
/// an opening parenthesis or bracket, and each `not` (but the one of `not in`), go one level
/// down; `and`, `or` and a comma end a run of `not`s; closing returns to the level of the
/// opening. It over-counts rather than under-counts.
pub fn too_deep(text: &str) -> Option<usize> {
    let bytes = text.as_bytes();
    let mut depth = 0usize;
    // For each open bracket: the depth outside it.
    let mut outer: Vec<usize> = Vec::new();
    let base = |outer: &[usize]| outer.last().map_or(0, |d| d + 1);
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'"' => {
                i += 1;
                while i < bytes.len() && bytes[i] != b'"' {
                    i += if bytes[i] == b'\\' { 2 } else { 1 };
                }
            }
            b'#' => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
            }
            b'(' | b'[' => {
                outer.push(depth);
                depth += 1;
            }
            b')' | b']' => depth = outer.pop().unwrap_or(0),
            b',' => depth = base(&outer),
            c if c.is_ascii_lowercase() || c == b'_' => {
                let start = i;
                while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_') {
                    i += 1;
                }
                match &text[start..i] {
                    "and" | "or" => depth = base(&outer),
                    "not" if !next_word_is(bytes, i, b"in") => depth += 1,
                    _ => {}
                }
                if depth > MAX_NESTING {
                    return Some(start);
                }
                continue;
            }
            _ => {}
        }
        if depth > MAX_NESTING {
            return Some(i.min(bytes.len().saturating_sub(1)));
        }
        i += 1;
    }
    None
}

fn next_word_is(bytes: &[u8], mut i: usize, word: &[u8]) -> bool {
    while i < bytes.len() && bytes[i].is_ascii_whitespace() {
        i += 1;
    }
    bytes[i..].starts_with(word)
        && bytes
            .get(i + word.len())
            .is_none_or(|c| !(c.is_ascii_alphanumeric() || *c == b'_'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinary_rules_are_not_too_deep() {
        assert_eq!(
            too_deep(r#"not (a == "x(" or not b in ["]"]) and c not in [1]"#),
            None
        );
        let flat = vec!["not a"; 10_000].join(" and ");
        assert_eq!(too_deep(&flat), None, "and ends a run of nots");
        let list = format!("a in [{}]", vec!["1"; 10_000].join(", "));
        assert_eq!(too_deep(&list), None);
    }

    #[test]
    fn nesting_past_the_limit_is_found_where_it_goes_too_deep() {
        let parens = format!(
            "{}a{}",
            "(".repeat(MAX_NESTING + 1),
            ")".repeat(MAX_NESTING + 1)
        );
        assert_eq!(too_deep(&parens), Some(MAX_NESTING));
        let ok = format!("{}a{}", "(".repeat(MAX_NESTING), ")".repeat(MAX_NESTING));
        assert_eq!(too_deep(&ok), None);
        let nots = "not ".repeat(MAX_NESTING + 1) + "a";
        assert_eq!(too_deep(&nots), Some(4 * MAX_NESTING));
        let calls = "lower(".repeat(100) + "a" + &")".repeat(100);
        assert!(too_deep(&calls).is_some());
        let mixed = "not (".repeat(40) + "a" + &")".repeat(40);
        assert!(
            too_deep(&mixed).is_some(),
            "a not and a parenthesis are two levels"
        );
    }
}
