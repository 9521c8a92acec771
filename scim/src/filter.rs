//! Filters (RFC 7644 3.4.2.2): the syntax tree, its canonical text form and
//! evaluation against a resource.
//!
//! One extension to the RFC grammar: mapping files write conditions such as
//! `emails[primary eq true].value pr` (PATCH value-path syntax). That parses
//! as `emails[primary eq true and value pr]`, which means the same thing:
//! some element matches the filter and its `value` is present. (Only `eq null`
//! reads differently: it then needs a matching element lacking the value.)

use std::fmt;
use std::str::FromStr;

use serde_json::Value;

use crate::error::ParseError;
use crate::eval;
use crate::parser::Parser;
use crate::path::AttrPath;

/// Comparison operators; parsed case-insensitively, printed lowercase.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CompareOp {
    Eq,
    Ne,
    Co,
    Sw,
    Ew,
    Gt,
    Ge,
    Lt,
    Le,
}

impl CompareOp {
    /// Every operator, in RFC order.
    pub const ALL: [CompareOp; 9] = [
        CompareOp::Eq,
        CompareOp::Ne,
        CompareOp::Co,
        CompareOp::Sw,
        CompareOp::Ew,
        CompareOp::Gt,
        CompareOp::Ge,
        CompareOp::Lt,
        CompareOp::Le,
    ];

    /// The lowercase keyword, e.g. `"eq"`.
    pub fn as_str(self) -> &'static str {
        match self {
            CompareOp::Eq => "eq",
            CompareOp::Ne => "ne",
            CompareOp::Co => "co",
            CompareOp::Sw => "sw",
            CompareOp::Ew => "ew",
            CompareOp::Gt => "gt",
            CompareOp::Ge => "ge",
            CompareOp::Lt => "lt",
            CompareOp::Le => "le",
        }
    }

    /// The operator for a keyword, case-insensitively (`EQ`, `Eq`, `eq`).
    pub fn from_keyword(word: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|op| op.as_str().eq_ignore_ascii_case(word))
    }
}

impl fmt::Display for CompareOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A filter expression.
#[derive(Clone, Debug, PartialEq)]
pub enum Filter {
    /// `attr pr`
    Present(AttrPath),
    /// `attr op value`; `value` is a string, number, bool or null.
    Compare {
        path: AttrPath,
        op: CompareOp,
        value: Value,
    },
    And(Box<Filter>, Box<Filter>),
    Or(Box<Filter>, Box<Filter>),
    Not(Box<Filter>),
    /// `attr[filter]`: some element of `attr` matches `filter`, whose paths
    /// are relative to the element.
    ValuePath {
        attr: AttrPath,
        filter: Box<Filter>,
    },
}

/// Parses a filter such as `userType eq "Employee" and emails pr`.
pub fn parse_filter(s: &str) -> Result<Filter, ParseError> {
    Parser::new(s).complete_filter()
}

impl FromStr for Filter {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_filter(s)
    }
}

impl Filter {
    /// Evaluates the filter with every string compared case-insensitively.
    pub fn matches(&self, resource: &Value) -> bool {
        self.matches_with(resource, &|_| false)
    }

    /// Evaluates the filter; `case_exact` says, per attribute path, whether
    /// strings compare exactly (RFC 7643 `caseExact`). Inside `attr[...]` it
    /// receives the absolute path, e.g. `emails.value` rather than `value`.
    ///
    /// Comparing with `null` tests for an unassigned attribute: `eq null` is
    /// true when the attribute is absent, null or an empty array, and
    /// `ne null` is its negation.
    pub fn matches_with(&self, resource: &Value, case_exact: &dyn Fn(&AttrPath) -> bool) -> bool {
        match self {
            Filter::Present(path) => path.select(resource).into_iter().any(eval::is_present),
            Filter::Compare { path, op, value } => {
                eval::compare_path(resource, path, *op, value, case_exact)
            }
            Filter::And(l, r) => {
                l.matches_with(resource, case_exact) && r.matches_with(resource, case_exact)
            }
            Filter::Or(l, r) => {
                l.matches_with(resource, case_exact) || r.matches_with(resource, case_exact)
            }
            Filter::Not(inner) => !inner.matches_with(resource, case_exact),
            Filter::ValuePath { attr, filter } => {
                let scoped = |rel: &AttrPath| case_exact(&attr.join(rel));
                attr.select(resource)
                    .into_iter()
                    .any(|item| filter.matches_with(item, &scoped))
            }
        }
    }
}

/// Canonical text: lowercase operators, JSON values, and only the
/// parentheses needed to keep the tree's shape (`and`/`or` associate left).
impl fmt::Display for Filter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Filter::Present(path) => write!(f, "{path} pr"),
            Filter::Compare { path, op, value } => write!(f, "{path} {op} {value}"),
            Filter::And(l, r) => {
                write_operand(f, l, matches!(**l, Filter::Or(..)))?;
                f.write_str(" and ")?;
                write_operand(f, r, matches!(**r, Filter::Or(..) | Filter::And(..)))
            }
            Filter::Or(l, r) => {
                write_operand(f, l, false)?;
                f.write_str(" or ")?;
                write_operand(f, r, matches!(**r, Filter::Or(..)))
            }
            Filter::Not(inner) => write!(f, "not ({inner})"),
            Filter::ValuePath { attr, filter } => write!(f, "{attr}[{filter}]"),
        }
    }
}

fn write_operand(f: &mut fmt::Formatter<'_>, operand: &Filter, parens: bool) -> fmt::Result {
    if parens {
        write!(f, "({operand})")
    } else {
        write!(f, "{operand}")
    }
}
