//! Checked expressions: names resolved to schema and group indices, types known, regexes
//! compiled. This is what the engine evaluates; spans stay for explanations.

use std::fmt;

use regex::Regex;

use super::ast::CmpOp;
use super::source::Span;
use super::GroupId;
use crate::directory::{AttrId, AttrType, Value};

/// The static type of an expression.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Type {
    Str,
    Num,
    Bool,
    Date,
    /// A list of strings: list attributes, and string list literals.
    List,
    /// A list literal of numbers, dates or bools (only `in` takes one).
    ListOf(Scalar),
    /// `[]`, which fits any list.
    EmptyList,
}

/// Element types of list literals other than strings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scalar {
    Num,
    Date,
    Bool,
}

impl Type {
    pub fn of_attr(ty: AttrType) -> Type {
        match ty {
            AttrType::String => Type::Str,
            AttrType::Number => Type::Num,
            AttrType::Bool => Type::Bool,
            AttrType::Date => Type::Date,
            AttrType::List => Type::List,
        }
    }

    pub fn is_list(self) -> bool {
        matches!(self, Type::List | Type::ListOf(_) | Type::EmptyList)
    }

    /// Whether values of the two types can be equal.
    pub fn matches(self, other: Type) -> bool {
        self == other
            || (self == Type::EmptyList && other.is_list())
            || (other == Type::EmptyList && self.is_list())
    }
}

impl fmt::Display for Type {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Type::Str => "string",
            Type::Num => "number",
            Type::Bool => "bool",
            Type::Date => "date",
            Type::List => "list",
            Type::ListOf(Scalar::Num) => "list of numbers",
            Type::ListOf(Scalar::Date) => "list of dates",
            Type::ListOf(Scalar::Bool) => "list of bools",
            Type::EmptyList => "empty list",
        })
    }
}

#[derive(Debug, Clone)]
pub struct CExpr {
    pub op: Op,
    pub ty: Type,
    pub span: Span,
}

#[derive(Debug, Clone)]
pub enum Op {
    Lit(Value),
    Attr(AttrId),
    /// The built-in `is_manager`.
    IsManager,
    Or(Vec<CExpr>),
    And(Vec<CExpr>),
    Not(Box<CExpr>),
    /// `==`, `!=`, the orderings, `contains`, `startswith` and `endswith`.
    Cmp {
        op: CmpOp,
        lhs: Box<CExpr>,
        rhs: Box<CExpr>,
    },
    In {
        negated: bool,
        lhs: Box<CExpr>,
        items: Vec<Value>,
    },
    Matches {
        lhs: Box<CExpr>,
        regex: Regex,
    },
    MemberOf(GroupId),
    /// The key of the manager to look for up the chain.
    ReportsTo(String),
    /// `has(attr)`: the operand is an attribute.
    Has(Box<CExpr>),
    Lower(Box<CExpr>),
    DaysSince(Box<CExpr>),
}

impl CExpr {
    /// The direct sub-expressions, for explanations and traversals.
    pub fn children(&self) -> Vec<&CExpr> {
        match &self.op {
            Op::Lit(_) | Op::Attr(_) | Op::IsManager | Op::MemberOf(_) | Op::ReportsTo(_) => {
                Vec::new()
            }
            Op::Or(items) | Op::And(items) => items.iter().collect(),
            Op::Cmp { lhs, rhs, .. } => vec![lhs, rhs],
            Op::Not(e)
            | Op::In { lhs: e, .. }
            | Op::Matches { lhs: e, .. }
            | Op::Has(e)
            | Op::Lower(e)
            | Op::DaysSince(e) => vec![e],
        }
    }

    /// Every group this expression names in `member_of`, directly.
    pub fn member_of_groups(&self) -> Vec<GroupId> {
        let mut out = Vec::new();
        let mut stack = vec![self];
        while let Some(e) = stack.pop() {
            if let Op::MemberOf(g) = e.op {
                out.push(g);
            }
            stack.extend(e.children());
        }
        out
    }
}
