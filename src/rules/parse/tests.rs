use super::*;

fn parse(text: &str) -> Result<Expr, Diagnostic> {
    let positions: Vec<u32> = (0..=u32::try_from(text.len()).unwrap()).collect();
    parse_expr(
        text,
        &Origin {
            file: 0,
            positions: &positions,
        },
    )
}

/// The expression's shape as a compact string, to compare trees.
fn shape(e: &Expr) -> String {
    match &e.kind {
        ExprKind::Or(items) => format!(
            "or({})",
            items.iter().map(shape).collect::<Vec<_>>().join(", ")
        ),
        ExprKind::And(items) => format!(
            "and({})",
            items.iter().map(shape).collect::<Vec<_>>().join(", ")
        ),
        ExprKind::Not(x) => format!("not({})", shape(x)),
        ExprKind::Compare { op, lhs, rhs, .. } => format!("({} {op} {})", shape(lhs), shape(rhs)),
        ExprKind::Literal(Literal::Str(s)) => format!("{s:?}"),
        ExprKind::Literal(Literal::Num(n)) => n.to_string(),
        ExprKind::Literal(Literal::Date(d)) => d.to_string(),
        ExprKind::Literal(Literal::Bool(b)) => b.to_string(),
        ExprKind::List(items) => format!("[{}]", items.len()),
        ExprKind::Attribute(a) => a.clone(),
        ExprKind::Call { name, args, .. } => format!(
            "{name}({})",
            args.iter().map(shape).collect::<Vec<_>>().join(", ")
        ),
    }
}

#[test]
fn precedence_or_and_not_comparison() {
    let e = parse("a == 1 or not b and c in [1, 2] or d").unwrap();
    assert_eq!(shape(&e), "or((a == 1), and(not(b), (c in [2])), d)");
    assert_eq!(shape(&parse("not not x").unwrap()), "not(not(x))");
    assert_eq!(
        shape(&parse("x not in [\"a\",]").unwrap()),
        "(x not in [1])"
    );
}

#[test]
fn keywords_are_not_identifiers_but_may_prefix_them() {
    assert_eq!(
        shape(&parse("android == order").unwrap()),
        "(android == order)"
    );
    assert_eq!(
        shape(&parse("notes and inbox").unwrap()),
        "and(notes, inbox)"
    );
    assert!(parse("and == 1").is_err());
}

#[test]
fn literals_dates_numbers_strings() {
    assert_eq!(shape(&parse("d < 2024-02-29").unwrap()), "(d < 2024-02-29)");
    assert_eq!(shape(&parse("n >= -2.5").unwrap()), "(n >= -2.5)");
    assert_eq!(
        shape(&parse(r#"s == "a\"b\\c\u{41}""#).unwrap()),
        r#"(s == "a\"b\\cA")"#
    );
    assert!(parse("d < 2023-02-29")
        .unwrap_err()
        .message
        .contains("invalid date"));
}

#[test]
fn spans_cover_the_source_text() {
    let text = "division  ==  \"Security\"";
    let e = parse(text).unwrap();
    assert_eq!((e.span.start, e.span.end), (0, text.len() as u32));
    let ExprKind::Compare { op_span, .. } = e.kind else {
        panic!("not a comparison")
    };
    assert_eq!(&text[op_span.start as usize..op_span.end as usize], "==");
}

#[test]
fn syntax_errors_say_what_was_expected_and_found() {
    let e = parse("a == ").unwrap_err();
    assert!(
        e.message
            .starts_with("syntax error: expected an attribute, a function call, a string"),
        "{}",
        e.message
    );
    assert!(
        e.message.ends_with("found the end of the expression"),
        "{}",
        e.message
    );
    let e = parse("a == 1 AND b").unwrap_err();
    assert_eq!(e.help.as_deref(), Some("keywords are lower case: `and`"));
    let e = parse("a == 'x'").unwrap_err();
    assert_eq!(
        e.help.as_deref(),
        Some("strings are written in double quotes: \"...\"")
    );
    let e = parse("(a == 1").unwrap_err();
    assert!(e.message.contains("`)`"), "{}", e.message);
    let e = parse("a == \"unterminated").unwrap_err();
    assert!(e.message.starts_with("syntax error"), "{}", e.message);
}
