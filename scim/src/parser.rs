//! Recursive-descent parser for attribute paths, value paths and filters
//! (RFC 7644 3.4.2.2 and 3.5.2), with limits that keep hostile input from
//! exhausting the stack.

use crate::cursor::Cursor;
use crate::error::ParseError;
use crate::filter::{CompareOp, Filter};
use crate::literal;
use crate::names::{split_attr_path, validate_name};
use crate::path::{AttrPath, ValuePath};

/// Maximum nesting of `(`, `not (` and `[`: bounds parser recursion.
pub const MAX_NESTING: usize = 64;

/// Maximum depth of the resulting [`Filter`] tree, long `and`/`or` chains
/// included: bounds recursion in evaluation, Display, Clone and Drop.
pub const MAX_DEPTH: usize = 1000;

const OPERATORS: &str = "an operator (pr, eq, ne, co, sw, ew, gt, ge, lt, le)";
const PATH: &str = "an attribute path";
const EXPRESSION: &str = "an attribute path, '(' or 'not ('";

/// A parsed sub-filter with the depth of its tree.
struct Node {
    filter: Filter,
    depth: usize,
}

pub(crate) struct Parser {
    cur: Cursor,
    nesting: usize,
}

impl Parser {
    pub(crate) fn new(input: &str) -> Self {
        Self {
            cur: Cursor::new(input),
            nesting: 0,
        }
    }

    /// A whole filter expression, nothing after it.
    pub(crate) fn complete_filter(mut self) -> Result<Filter, ParseError> {
        self.cur.skip_ws();
        if self.cur.at_end() {
            return Err(ParseError::new(self.cur.pos(), "empty filter"));
        }
        let node = self.disjunction()?;
        self.finish("'and', 'or' or end of filter")?;
        Ok(node.filter)
    }

    /// `attrPath`, nothing after it.
    pub(crate) fn complete_attr_path(mut self) -> Result<AttrPath, ParseError> {
        self.cur.skip_ws();
        let path = self.attr_path(PATH)?;
        self.finish("end of attribute path")?;
        Ok(path)
    }

    /// `attrPath [ "[" valFilter "]" [ "." subAttr ] ]`, nothing after it.
    pub(crate) fn complete_value_path(mut self) -> Result<ValuePath, ParseError> {
        self.cur.skip_ws();
        let attr = self.attr_path(PATH)?;
        let mut filter = None;
        let mut sub_attr = None;
        if self.cur.peek() == Some('[') {
            filter = Some(self.bracket_filter(&attr)?.filter);
            if self.cur.eat('.') {
                let (start, word) = self.cur.word();
                validate_name(&word, start)?;
                sub_attr = Some(word);
            }
        }
        self.finish("end of path")?;
        Ok(ValuePath {
            attr,
            filter,
            sub_attr,
        })
    }

    /// Trailing whitespace is fine; anything else is an error.
    fn finish(&mut self, expected: &str) -> Result<(), ParseError> {
        self.cur.skip_ws();
        match self.cur.peek() {
            None => Ok(()),
            Some(c @ (')' | ']')) => {
                Err(ParseError::new(self.cur.pos(), format!("unbalanced '{c}'")))
            }
            Some(_) => Err(self.cur.expected(expected)),
        }
    }

    /// `or` level: lowest precedence, left-associative.
    fn disjunction(&mut self) -> Result<Node, ParseError> {
        let mut left = self.conjunction()?;
        while self.keyword("or") {
            let right = self.conjunction()?;
            left = self.combine(left, right, Filter::Or)?;
        }
        Ok(left)
    }

    /// `and` level: binds tighter than `or`, left-associative.
    fn conjunction(&mut self) -> Result<Node, ParseError> {
        let mut left = self.unary()?;
        while self.keyword("and") {
            let right = self.unary()?;
            left = self.combine(left, right, Filter::And)?;
        }
        Ok(left)
    }

    fn combine(
        &self,
        left: Node,
        right: Node,
        make: fn(Box<Filter>, Box<Filter>) -> Filter,
    ) -> Result<Node, ParseError> {
        let depth = self.check_depth(left.depth.max(right.depth) + 1)?;
        Ok(Node {
            filter: make(Box::new(left.filter), Box::new(right.filter)),
            depth,
        })
    }

    fn check_depth(&self, depth: usize) -> Result<usize, ParseError> {
        if depth > MAX_DEPTH {
            return Err(ParseError::new(
                self.cur.pos(),
                format!("filter too complex (more than {MAX_DEPTH} levels)"),
            ));
        }
        Ok(depth)
    }

    /// `not (...)`, `(...)` or an attribute expression.
    fn unary(&mut self) -> Result<Node, ParseError> {
        self.cur.skip_ws();
        match self.cur.peek() {
            Some('(') => self.group(),
            None => Err(self.cur.expected(EXPRESSION)),
            Some(_) => {
                if self.not_keyword() {
                    let inner = self.group()?;
                    let depth = self.check_depth(inner.depth + 1)?;
                    Ok(Node {
                        filter: Filter::Not(Box::new(inner.filter)),
                        depth,
                    })
                } else {
                    self.atom()
                }
            }
        }
    }

    /// `not` counts as the operator only when a `(` follows, so an attribute
    /// that happens to be named `not` still parses (`not pr`).
    fn not_keyword(&mut self) -> bool {
        let start = self.cur.pos();
        let (_, word) = self.cur.word();
        if word.eq_ignore_ascii_case("not") {
            self.cur.skip_ws();
            if self.cur.peek() == Some('(') {
                return true;
            }
        }
        self.cur.reset(start);
        false
    }

    /// Consumes the keyword `kw` (case-insensitive) if it is the next word.
    fn keyword(&mut self, kw: &str) -> bool {
        let start = self.cur.pos();
        self.cur.skip_ws();
        let (_, word) = self.cur.word();
        if word.eq_ignore_ascii_case(kw) {
            return true;
        }
        self.cur.reset(start);
        false
    }

    /// `( filter )`; the cursor is on the `(`.
    fn group(&mut self) -> Result<Node, ParseError> {
        let open = self.cur.pos();
        if !self.cur.eat('(') {
            return Err(self.cur.expected("'('"));
        }
        self.enter(open)?;
        let inner = self.disjunction()?;
        self.cur.skip_ws();
        if !self.cur.eat(')') {
            return Err(self.unclosed(open, ')', "'and', 'or' or ')'"));
        }
        self.nesting -= 1;
        Ok(inner)
    }

    fn enter(&mut self, at: usize) -> Result<(), ParseError> {
        self.nesting += 1;
        if self.nesting > MAX_NESTING {
            return Err(ParseError::new(
                at,
                format!("nesting deeper than {MAX_NESTING} levels"),
            ));
        }
        Ok(())
    }

    fn unclosed(&self, open: usize, close: char, expected: &str) -> ParseError {
        if self.cur.at_end() {
            let opener = if close == ')' { '(' } else { '[' };
            ParseError::new(
                self.cur.pos(),
                format!("missing '{close}' for '{opener}' at position {open}"),
            )
        } else {
            self.cur.expected(expected)
        }
    }

    /// `attrPath pr`, `attrPath op value`, `attrPath [ valFilter ]`, or
    /// the mapping-file extension `attrPath [ valFilter ] . subAttr op ...`.
    fn atom(&mut self) -> Result<Node, ParseError> {
        let path = self.attr_path(EXPRESSION)?;
        self.cur.skip_ws();
        if self.cur.peek() != Some('[') {
            return self.condition(path);
        }
        let mut inner = self.bracket_filter(&path)?;
        if self.cur.eat('.') {
            // `emails[primary eq true].value pr` means "some element matches
            // both", which the tree holds as `emails[primary eq true and value pr]`.
            let (start, sub) = self.cur.word();
            validate_name(&sub, start)?;
            let sub_path = AttrPath {
                schema: None,
                name: sub,
                sub_attr: None,
            };
            let cond = self.condition(sub_path)?;
            inner = self.combine(inner, cond, Filter::And)?;
        }
        let depth = self.check_depth(inner.depth + 1)?;
        let filter = Filter::ValuePath {
            attr: path,
            filter: Box::new(inner.filter),
        };
        Ok(Node { filter, depth })
    }

    /// The `pr` or `op value` part after an attribute path.
    fn condition(&mut self, path: AttrPath) -> Result<Node, ParseError> {
        self.cur.skip_ws();
        let (op_start, word) = self.cur.word();
        if word.is_empty() {
            return Err(self.cur.expected(OPERATORS));
        }
        if word.eq_ignore_ascii_case("pr") {
            return Ok(Node {
                filter: Filter::Present(path),
                depth: 1,
            });
        }
        let op = CompareOp::from_keyword(&word).ok_or_else(|| {
            ParseError::new(
                op_start,
                format!("unknown operator '{word}'; expected {OPERATORS}"),
            )
        })?;
        self.cur.skip_ws();
        let value = literal::value(&mut self.cur)?;
        Ok(Node {
            filter: Filter::Compare { path, op, value },
            depth: 1,
        })
    }

    /// `[ valFilter ]` after `attr`; the cursor is on the `[`.
    fn bracket_filter(&mut self, attr: &AttrPath) -> Result<Node, ParseError> {
        let open = self.cur.pos();
        if attr.sub_attr.is_some() {
            return Err(ParseError::new(
                open,
                "a value filter must follow a multi-valued attribute, not a sub-attribute",
            ));
        }
        self.cur.bump();
        self.enter(open)?;
        self.cur.skip_ws();
        if self.cur.peek() == Some(']') {
            return Err(ParseError::new(self.cur.pos(), "empty value filter"));
        }
        let inner = self.disjunction()?;
        self.cur.skip_ws();
        if !self.cur.eat(']') {
            return Err(self.unclosed(open, ']', "'and', 'or' or ']'"));
        }
        self.nesting -= 1;
        Ok(inner)
    }

    /// `[URN ":"] ATTRNAME ["." subAttr]`.
    fn attr_path(&mut self, expected: &str) -> Result<AttrPath, ParseError> {
        let (start, word) = self.cur.word();
        if word.is_empty() {
            return Err(self.cur.expected(expected));
        }
        split_attr_path(&word, start)
    }
}
