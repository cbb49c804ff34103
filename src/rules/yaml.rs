//! A YAML document as a tree of nodes that know where they are in the file. serde gives no
//! positions for values, and every rule-file diagnostic needs one, down to the column inside
//! a folded block scalar.

use saphyr_parser::{Event, Parser, ScalarStyle};

use super::diagnostic::Diagnostic;
use super::limits::MAX_YAML_NESTING;
use super::source::{FileId, Span};

#[derive(Debug, Clone)]
pub struct Node {
    pub kind: NodeKind,
    pub span: Span,
}

#[derive(Debug, Clone)]
pub enum NodeKind {
    Scalar(Scalar),
    Seq(Vec<Node>),
    Map(Vec<(Node, Node)>),
}

#[derive(Debug, Clone)]
pub struct Scalar {
    pub value: String,
    /// Plain scalars may be bools, numbers or dates; quoted ones are always strings.
    pub plain: bool,
    /// `positions[i]` is the file byte offset of the value's byte `i` (one more entry for the
    /// end), so that errors inside the value point into the file.
    pub positions: Vec<u32>,
}

impl Node {
    pub fn describe(&self) -> &'static str {
        match &self.kind {
            NodeKind::Scalar(s) if s.plain && s.value.is_empty() => "nothing",
            NodeKind::Scalar(_) => "a scalar",
            NodeKind::Seq(_) => "a list",
            NodeKind::Map(_) => "a mapping",
        }
    }

    pub fn is_null(&self) -> bool {
        matches!(&self.kind, NodeKind::Scalar(s) if s.plain && matches!(s.value.as_str(), "" | "~" | "null"))
    }
}

/// Parses one YAML document of `text` (file `file`). An empty file is an empty mapping.
pub fn parse(text: &str, file: FileId) -> Result<Node, Diagnostic> {
    let offsets = CharOffsets::new(text);
    let mut builder = Builder {
        text,
        file,
        stack: Vec::new(),
        root: None,
    };
    for event in Parser::new_from_str(text) {
        let (event, span) = event.map_err(|e| {
            let at = offsets.byte(e.marker().index());
            Diagnostic::error(
                Span::new(file, at, at + 1),
                format!("invalid YAML: {}", e.info()),
            )
        })?;
        let start = offsets.byte(span.start.index());
        let end = offsets.byte(span.end.index());
        builder.event(event, start, end)?;
    }
    Ok(builder.root.unwrap_or(Node {
        kind: NodeKind::Map(Vec::new()),
        span: Span::new(file, 0, 0),
    }))
}

/// Character index → byte offset, since the YAML parser counts characters.
struct CharOffsets {
    /// `None` when the text is ASCII and the two agree.
    table: Option<Vec<usize>>,
    len: usize,
}

impl CharOffsets {
    fn new(text: &str) -> Self {
        let table = (!text.is_ascii()).then(|| text.char_indices().map(|(b, _)| b).collect());
        CharOffsets {
            table,
            len: text.len(),
        }
    }

    fn byte(&self, char_index: usize) -> usize {
        match &self.table {
            None => char_index.min(self.len),
            Some(t) => t.get(char_index).copied().unwrap_or(self.len),
        }
    }
}

enum Open {
    Seq(usize, Vec<Node>),
    /// Entries, a key waiting for its value, and each key's entry index (so that a duplicate
    /// is found in constant time, whatever the number of keys).
    Map(
        usize,
        Vec<(Node, Node)>,
        Option<Node>,
        rustc_hash::FxHashMap<String, usize>,
    ),
}

struct Builder<'a> {
    text: &'a str,
    file: FileId,
    stack: Vec<Open>,
    root: Option<Node>,
}

impl Builder<'_> {
    fn event(&mut self, event: Event<'_>, start: usize, end: usize) -> Result<(), Diagnostic> {
        match event {
            Event::Scalar(value, style, _, _) => {
                let node = self.scalar(&value, style, start, end);
                self.add(node)
            }
            Event::SequenceStart(..) => {
                self.open(start)?;
                self.stack.push(Open::Seq(start, Vec::new()));
                Ok(())
            }
            Event::MappingStart(..) => {
                self.open(start)?;
                self.stack
                    .push(Open::Map(start, Vec::new(), None, Default::default()));
                Ok(())
            }
            Event::SequenceEnd | Event::MappingEnd => {
                let node = match self.stack.pop() {
                    Some(Open::Seq(s, items)) => Node {
                        span: Span::new(self.file, s, end_of(&items, s)),
                        kind: NodeKind::Seq(items),
                    },
                    Some(Open::Map(s, entries, _, _)) => {
                        let last = entries.last().map_or(s, |(_, v)| v.span.end as usize);
                        Node {
                            span: Span::new(self.file, s, last.max(s)),
                            kind: NodeKind::Map(entries),
                        }
                    }
                    None => return Ok(()),
                };
                self.add(node)
            }
            Event::Alias(_) => Err(Diagnostic::error(
                Span::new(self.file, start, end.max(start + 1)),
                "YAML aliases are not supported in rule files",
            )
            .with_help("write the value out in full")),
            Event::DocumentStart(_) if self.root.is_some() => Err(Diagnostic::error(
                Span::new(self.file, start, start + 3),
                "a rule file holds one YAML document",
            )),
            _ => Ok(()),
        }
    }

    /// A list or mapping opens: refused past [`MAX_YAML_NESTING`] levels, since the nodes'
    /// readers (and their drop) recurse on them.
    fn open(&self, start: usize) -> Result<(), Diagnostic> {
        if self.stack.len() < MAX_YAML_NESTING {
            return Ok(());
        }
        Err(Diagnostic::error(
            Span::new(self.file, start, start + 1),
            format!("YAML nested too deeply: more than {MAX_YAML_NESTING} levels"),
        ))
    }

    fn add(&mut self, node: Node) -> Result<(), Diagnostic> {
        if let NodeKind::Scalar(s) = &node.kind {
            if let Some(at) = s.value.find('\0') {
                let pos = s
                    .positions
                    .get(at)
                    .map_or(node.span.start as usize, |&p| p as usize);
                return Err(Diagnostic::error(
                    Span::new(self.file, pos, pos + 1),
                    "a NUL character cannot be part of a rule file's value",
                ));
            }
        }
        match self.stack.last_mut() {
            None => {
                self.root = Some(node);
                Ok(())
            }
            Some(Open::Seq(_, items)) => {
                items.push(node);
                Ok(())
            }
            Some(Open::Map(_, entries, pending, keys)) => match pending.take() {
                None => {
                    let NodeKind::Scalar(key) = &node.kind else {
                        return Err(Diagnostic::error(
                            node.span,
                            "mapping keys must be plain names",
                        ));
                    };
                    if let Some(&first) = keys.get(&key.value) {
                        // The key of entry `first`, or the key still waiting for its value.
                        let first_span = entries.get(first).map_or(node.span, |(k, _)| k.span);
                        return Err(Diagnostic::error(node.span, "duplicate key in mapping")
                            .with_note(first_span, "first given"));
                    }
                    keys.insert(key.value.clone(), entries.len());
                    *pending = Some(node);
                    Ok(())
                }
                Some(key) => {
                    entries.push((key, node));
                    Ok(())
                }
            },
        }
    }

    fn scalar(&self, value: &str, style: ScalarStyle, start: usize, end: usize) -> Node {
        let quoted = matches!(style, ScalarStyle::SingleQuoted | ScalarStyle::DoubleQuoted);
        let raw_start = if quoted { start + 1 } else { start };
        let raw = self.text.get(raw_start..end.max(raw_start)).unwrap_or("");
        let positions = align(value, raw, raw_start);
        let shown_end = if quoted {
            end
        } else {
            positions.last().map_or(end, |&p| p as usize)
        };
        Node {
            kind: NodeKind::Scalar(Scalar {
                value: value.to_string(),
                plain: style == ScalarStyle::Plain,
                positions,
            }),
            span: Span::new(self.file, start, shown_end.max(start)),
        }
    }
}

fn end_of(items: &[Node], start: usize) -> usize {
    items.last().map_or(start, |n| n.span.end as usize)
}

/// Maps each byte of a decoded scalar `value` to a file offset by walking the raw source text
/// alongside it: non-blank characters match one to one, while folding, indentation and escape
/// characters in the raw text are skipped. Blanks map to just after the previous character.
fn align(value: &str, raw: &str, base: usize) -> Vec<u32> {
    let to_u32 = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
    let mut positions = vec![to_u32(base); value.len() + 1];
    let mut raw_chars = raw.char_indices();
    let mut after_last = base;
    for (vi, vc) in value.char_indices() {
        let at = if vc.is_whitespace() {
            after_last
        } else {
            match raw_chars.by_ref().find(|&(_, rc)| rc == vc) {
                Some((ri, rc)) => {
                    after_last = base + ri + rc.len_utf8();
                    base + ri
                }
                // The raw text does not line up (an unusual escape): point at the scalar.
                None => return vec![to_u32(base); value.len() + 1],
            }
        };
        for slot in &mut positions[vi..vi + vc.len_utf8()] {
            *slot = to_u32(at);
        }
    }
    positions[value.len()] = to_u32(after_last);
    positions
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scalar_at(text: &str, key: &str) -> (Scalar, Node) {
        let root = parse(text, 0).unwrap();
        let NodeKind::Map(entries) = root.kind else {
            panic!("not a map")
        };
        let (_, node) = entries
            .into_iter()
            .find(|(k, _)| matches!(&k.kind, NodeKind::Scalar(s) if s.value == key))
            .unwrap();
        let NodeKind::Scalar(s) = node.kind.clone() else {
            panic!("not a scalar")
        };
        (s, node)
    }

    #[test]
    fn folded_block_scalar_positions_point_into_the_file() {
        let text = "rule: >-\n  a == \"x\"\n  and bee\n";
        let (s, _) = scalar_at(text, "rule");
        assert_eq!(s.value, "a == \"x\" and bee");
        let bee = s.value.find("bee").unwrap();
        assert_eq!(&text[s.positions[bee] as usize..][..3], "bee");
    }

    #[test]
    fn double_quoted_with_escapes_still_aligns_after_the_escape() {
        let text = "rule: \"a == \\\"x\\\" and bee\"\n";
        let (s, _) = scalar_at(text, "rule");
        let bee = s.value.find("bee").unwrap();
        assert_eq!(&text[s.positions[bee] as usize..][..3], "bee");
    }

    #[test]
    fn duplicate_keys_and_aliases_are_errors() {
        assert!(parse("a: 1\na: 2\n", 0)
            .unwrap_err()
            .message
            .contains("duplicate key"));
        assert!(parse("a: &x 1\nb: *x\n", 0)
            .unwrap_err()
            .message
            .contains("aliases"));
    }

    #[test]
    fn syntax_errors_carry_a_position() {
        let e = parse("groups:\n  - name: a\n   rule: [\n", 0).unwrap_err();
        assert!(e.message.starts_with("invalid YAML"), "{}", e.message);
        assert!(e.span.start > 0);
    }
}
