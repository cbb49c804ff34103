//! Expression text → [`Expr`], with pest. Positions are mapped from the expression text back
//! into the rule file, so parse errors point where the user typed.

use chrono::NaiveDate;
use pest::iterators::Pair;
use pest::Parser as _;

use super::ast::{CmpOp, Expr, ExprKind, Literal};
use super::diagnostic::Diagnostic;
use super::source::{FileId, Span};

#[derive(pest_derive::Parser)]
#[grammar = "../grammar/rules.pest"]
struct RulesParser;

/// Where the expression text sits in its file: `positions[i]` is the file offset of byte `i`
/// of the text (one entry more for its end).
pub struct Origin<'a> {
    pub file: FileId,
    pub positions: &'a [u32],
}

impl Origin<'_> {
    fn span(&self, text: &str, start: usize, end: usize) -> Span {
        let at = |i: usize| self.positions.get(i).copied().unwrap_or(0) as usize;
        let file_start = at(start);
        let file_end = match text.get(start..end).and_then(|s| s.chars().next_back()) {
            Some(last) => at(end - last.len_utf8()) + last.len_utf8(),
            None => file_start,
        };
        Span::new(self.file, file_start, file_end.max(file_start))
    }
}

/// Parses one expression; the first syntax error is returned as a diagnostic.
pub fn parse_expr(text: &str, origin: &Origin<'_>) -> Result<Expr, Diagnostic> {
    if let Some(at) = super::limits::too_deep(text) {
        return Err(Diagnostic::error(
            origin.span(text, at, at + 1),
            format!(
                "expression nested too deeply: more than {} levels",
                super::limits::MAX_NESTING
            ),
        )
        .with_label("this level is one too many")
        .with_help("split the rule: name a part as a group of its own and use `member_of`"));
    }
    let mut pairs =
        RulesParser::parse(Rule::expression, text).map_err(|e| syntax_error(text, origin, e))?;
    let expression = pairs
        .next()
        .ok_or_else(|| Diagnostic::error(origin.span(text, 0, text.len()), "empty expression"))?;
    let or_expr = expression
        .into_inner()
        .next()
        .ok_or_else(|| Diagnostic::error(origin.span(text, 0, 0), "empty expression"))?;
    Builder { text, origin }.expr(or_expr)
}

struct Builder<'a> {
    text: &'a str,
    origin: &'a Origin<'a>,
}

impl Builder<'_> {
    fn span(&self, pair: &Pair<'_, Rule>) -> Span {
        let s = pair.as_span();
        self.origin.span(self.text, s.start(), s.end())
    }

    fn expr(&self, pair: Pair<'_, Rule>) -> Result<Expr, Diagnostic> {
        let span = self.span(&pair);
        match pair.as_rule() {
            Rule::or_expr | Rule::and_expr => {
                let is_or = pair.as_rule() == Rule::or_expr;
                let mut items = pair
                    .into_inner()
                    .filter(|p| !matches!(p.as_rule(), Rule::kw_or | Rule::kw_and))
                    .map(|p| self.expr(p))
                    .collect::<Result<Vec<_>, _>>()?;
                if items.len() == 1 {
                    return Ok(items.remove(0));
                }
                let kind = if is_or {
                    ExprKind::Or(items)
                } else {
                    ExprKind::And(items)
                };
                Ok(Expr { kind, span })
            }
            Rule::not_expr => {
                let mut inner = pair.into_inner();
                let first = self.next(&mut inner, span)?;
                if first.as_rule() == Rule::kw_not {
                    let operand = self.expr(self.next(&mut inner, span)?)?;
                    Ok(Expr {
                        kind: ExprKind::Not(Box::new(operand)),
                        span,
                    })
                } else {
                    self.expr(first)
                }
            }
            Rule::compare => self.compare(pair, span),
            Rule::paren => {
                let inner = pair
                    .into_inner()
                    .find(|p| p.as_rule() == Rule::or_expr)
                    .ok_or_else(|| Diagnostic::error(span, "empty parentheses"))?;
                let mut e = self.expr(inner)?;
                e.span = span;
                Ok(e)
            }
            Rule::attribute => Ok(Expr {
                kind: ExprKind::Attribute(pair.as_str().to_string()),
                span,
            }),
            Rule::call => self.call(pair, span),
            Rule::list => {
                let items = pair
                    .into_inner()
                    .filter(|p| {
                        !matches!(p.as_rule(), Rule::lbracket | Rule::rbracket | Rule::comma)
                    })
                    .map(|p| Ok((self.literal(&p)?, self.span(&p))))
                    .collect::<Result<Vec<_>, Diagnostic>>()?;
                Ok(Expr {
                    kind: ExprKind::List(items),
                    span,
                })
            }
            _ => Ok(Expr {
                kind: ExprKind::Literal(self.literal(&pair)?),
                span,
            }),
        }
    }

    fn next<'i>(
        &self,
        inner: &mut pest::iterators::Pairs<'i, Rule>,
        span: Span,
    ) -> Result<Pair<'i, Rule>, Diagnostic> {
        // The grammar guarantees the child; an error keeps a grammar change from panicking.
        inner
            .next()
            .ok_or_else(|| Diagnostic::error(span, "internal error: incomplete parse tree"))
    }

    fn compare(&self, pair: Pair<'_, Rule>, span: Span) -> Result<Expr, Diagnostic> {
        let mut inner = pair.into_inner();
        let lhs = self.expr(self.next(&mut inner, span)?)?;
        let Some(op_pair) = inner.next() else {
            return Ok(lhs);
        };
        let op_span = self.span(&op_pair);
        let op = cmp_op(&op_pair);
        let rhs = self.expr(self.next(&mut inner, span)?)?;
        if let Some(second) = inner.next() {
            return Err(
                Diagnostic::error(self.span(&second), "comparisons do not chain")
                    .with_label("a second comparison operator")
                    .with_help("combine comparisons with `and`, e.g. `a == b and b == c`"),
            );
        }
        Ok(Expr {
            kind: ExprKind::Compare {
                op,
                op_span,
                lhs: Box::new(lhs),
                rhs: Box::new(rhs),
            },
            span,
        })
    }

    fn call(&self, pair: Pair<'_, Rule>, span: Span) -> Result<Expr, Diagnostic> {
        let mut inner = pair.into_inner();
        let name_pair = self.next(&mut inner, span)?;
        let args = inner
            .filter(|p| p.as_rule() == Rule::or_expr)
            .map(|p| self.expr(p))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Expr {
            kind: ExprKind::Call {
                name: name_pair.as_str().to_string(),
                name_span: self.span(&name_pair),
                args,
            },
            span,
        })
    }

    fn literal(&self, pair: &Pair<'_, Rule>) -> Result<Literal, Diagnostic> {
        let span = self.span(pair);
        let text = pair.as_str();
        match pair.as_rule() {
            Rule::boolean => Ok(Literal::Bool(text == "true")),
            Rule::number => text
                .parse::<f64>()
                .map(Literal::Num)
                .map_err(|_| Diagnostic::error(span, format!("invalid number `{text}`"))),
            Rule::date => NaiveDate::parse_from_str(text, "%Y-%m-%d")
                .map(Literal::Date)
                .map_err(|_| {
                    Diagnostic::error(span, format!("invalid date `{text}`"))
                        .with_label("no such calendar date")
                }),
            Rule::string => unescape(&text[1..text.len() - 1])
                .map(Literal::Str)
                .map_err(|m| Diagnostic::error(span, m)),
            other => Err(Diagnostic::error(
                span,
                format!("internal error: unexpected {}", rule_name(other)),
            )),
        }
    }
}

fn cmp_op(pair: &Pair<'_, Rule>) -> CmpOp {
    let rule = pair
        .clone()
        .into_inner()
        .next()
        .map_or(Rule::eq, |p| p.as_rule());
    match rule {
        Rule::ne => CmpOp::Ne,
        Rule::lt => CmpOp::Lt,
        Rule::le => CmpOp::Le,
        Rule::gt => CmpOp::Gt,
        Rule::ge => CmpOp::Ge,
        Rule::kw_in => CmpOp::In,
        Rule::not_in => CmpOp::NotIn,
        Rule::kw_contains => CmpOp::Contains,
        Rule::kw_startswith => CmpOp::StartsWith,
        Rule::kw_endswith => CmpOp::EndsWith,
        Rule::kw_matches => CmpOp::Matches,
        _ => CmpOp::Eq,
    }
}

fn unescape(body: &str) -> Result<String, String> {
    let mut out = String::with_capacity(body.len());
    let mut chars = body.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('"') => out.push('"'),
            Some('\\') => out.push('\\'),
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some('u') => {
                let hex: String = chars.by_ref().skip(1).take_while(|&c| c != '}').collect();
                let code = u32::from_str_radix(&hex, 16).ok().and_then(char::from_u32);
                match code {
                    Some(ch) => out.push(ch),
                    None => return Err(format!("invalid unicode escape `\\u{{{hex}}}`")),
                }
            }
            _ => return Err("invalid escape in string".to_string()),
        }
    }
    Ok(out)
}

/// The human name of a grammar rule, as error messages say it.
fn rule_name(rule: Rule) -> &'static str {
    match rule {
        Rule::expression | Rule::or_expr | Rule::and_expr | Rule::not_expr | Rule::compare => {
            "an expression"
        }
        Rule::op
        | Rule::eq
        | Rule::ne
        | Rule::le
        | Rule::ge
        | Rule::lt
        | Rule::gt
        | Rule::not_in
        | Rule::kw_in
        | Rule::kw_contains
        | Rule::kw_startswith
        | Rule::kw_endswith
        | Rule::kw_matches => "an operator",
        Rule::kw_and => "`and`",
        Rule::kw_or => "`or`",
        Rule::kw_not => "`not`",
        Rule::paren | Rule::lparen => "`(`",
        Rule::rparen => "`)`",
        Rule::lbracket | Rule::list => "a list",
        Rule::rbracket => "`]`",
        Rule::comma => "`,`",
        Rule::call | Rule::name => "a function call",
        Rule::attribute | Rule::ident | Rule::ident_char | Rule::keyword => "an attribute",
        Rule::operand => "an attribute, a value or a function call",
        Rule::string | Rule::string_body | Rule::escape => "a string",
        Rule::literal => "a value",
        Rule::number => "a number",
        Rule::date => "a date",
        Rule::boolean => "`true` or `false`",
        Rule::EOI => "the end of the expression",
        Rule::WHITESPACE | Rule::COMMENT => "whitespace",
    }
}

/// The order in which expected items are listed.
const NAME_ORDER: &[&str] = &[
    "an attribute",
    "a function call",
    "a string",
    "a number",
    "a date",
    "`true` or `false`",
    "a list",
    "`(`",
    "an operator",
    "`and`",
    "`or`",
    "`not`",
    "`,`",
    "`)`",
    "`]`",
    "an expression",
    "the end of the expression",
];

fn syntax_error(text: &str, origin: &Origin<'_>, e: pest::error::Error<Rule>) -> Diagnostic {
    let pos = match e.location {
        pest::error::InputLocation::Pos(p) => p,
        pest::error::InputLocation::Span((s, _)) => s,
    };
    let found = describe_token(text, pos);
    let token_len = token_len(text, pos);
    let span = origin.span(text, pos, pos + token_len);
    let expected = match &e.variant {
        pest::error::ErrorVariant::ParsingError { positives, .. } => {
            let mut names: Vec<&str> = positives.iter().map(|r| rule_name(*r)).collect();
            names.sort_by_key(|n| NAME_ORDER.iter().position(|o| o == n));
            names.dedup();
            join_or(&names)
        }
        pest::error::ErrorVariant::CustomError { message } => message.clone(),
    };
    // A `"` where a value may start, with no closing one after it: the string never ends.
    if text[pos..].starts_with('"') && !text[pos + 1..].contains('"') {
        let line_end = text[pos..].find('\n').map_or(text.len(), |n| pos + n);
        return Diagnostic::error(
            origin.span(text, pos, line_end),
            "syntax error: this string is not closed",
        )
        .with_help("end it with `\"`; a `\"` inside a string is written `\\\"`");
    }
    let mut d = Diagnostic::error(
        span,
        format!("syntax error: expected {expected}, found {found}"),
    );
    if let Some(help) = syntax_help(text, pos) {
        d = d.with_help(help);
    }
    d
}

fn syntax_help(text: &str, pos: usize) -> Option<String> {
    let rest = &text[pos..];
    let word: String = rest
        .chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect();
    if rest.starts_with('=') && !rest.starts_with("==") {
        return Some("equality is written `==`".into());
    }
    if rest.starts_with('\'') {
        return Some("strings are written in double quotes: \"...\"".into());
    }
    if matches!(
        word.as_str(),
        "AND" | "OR" | "NOT" | "IN" | "And" | "Or" | "Not"
    ) {
        return Some(format!(
            "keywords are lower case: `{}`",
            word.to_lowercase()
        ));
    }
    if matches!(rest.chars().next(), Some('&' | '|' | '!')) && !rest.starts_with("!=") {
        return Some("write `and`, `or` and `not` as words".into());
    }
    if word.chars().next().is_some_and(char::is_uppercase) {
        return Some("attribute names are lower case; strings go in double quotes".into());
    }
    None
}

fn join_or(names: &[&str]) -> String {
    match names {
        [] => "something else".to_string(),
        [one] => (*one).to_string(),
        [init @ .., last] => format!("{} or {last}", init.join(", ")),
    }
}

fn token_len(text: &str, pos: usize) -> usize {
    let rest = &text[pos.min(text.len())..];
    let word = rest
        .char_indices()
        .take_while(|(_, c)| c.is_alphanumeric() || *c == '_' || *c == '.' || *c == '-')
        .last()
        .map_or(0, |(i, c)| i + c.len_utf8());
    if word > 0 {
        word
    } else {
        rest.chars().next().map_or(0, char::len_utf8)
    }
}

fn describe_token(text: &str, pos: usize) -> String {
    let rest = &text[pos.min(text.len())..];
    if rest.is_empty() {
        return "the end of the expression".to_string();
    }
    format!("`{}`", &rest[..token_len(text, pos)])
}

#[cfg(test)]
mod tests;
