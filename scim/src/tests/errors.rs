//! Syntax errors: each is a `ParseError` at a sensible char position.

use crate::{ParseError, parse_attr_path, parse_filter, parse_value_path};

/// Asserts `result` failed at `position` with a message containing `needle`.
fn assert_err<T: std::fmt::Debug>(result: Result<T, ParseError>, position: usize, needle: &str) {
    match result {
        Err(e) => {
            assert_eq!(e.position, position, "{e}");
            assert!(
                e.message.contains(needle),
                "{e:?} should mention {needle:?}"
            );
        }
        Ok(v) => panic!("expected an error, got {v:?}"),
    }
}

#[test]
fn unterminated_strings_and_bad_escapes() {
    assert_err(
        parse_filter(r#"userName eq "john"#),
        12,
        "unterminated string",
    );
    assert_err(parse_filter(r#"a eq "x\"#), 7, "unterminated escape");
    assert_err(parse_filter(r#"a eq "\x""#), 6, "invalid escape");
    assert_err(parse_filter(r#"a eq "\u12G4""#), 6, "\\u escape");
    assert_err(parse_filter(r#"a eq "\ud800x""#), 6, "surrogate");
    assert_err(parse_filter(r#"a eq "\udc00""#), 6, "surrogate");
}

#[test]
fn missing_operands() {
    assert_err(parse_filter("userName eq"), 11, "expected a value");
    assert_err(parse_filter("userName eq   "), 14, "found end of input");
    assert_err(parse_filter("userName"), 8, "expected an operator");
    assert_err(parse_filter("a pr and"), 8, "expected an attribute path");
    assert_err(parse_filter("a pr or )"), 8, "found ')'");
    assert_err(parse_filter("and"), 3, "expected an operator");
    assert_err(parse_filter("emails[]"), 7, "empty value filter");
    assert_err(parse_filter("not ()"), 5, "expected an attribute path");
}

#[test]
fn unknown_operators_and_bad_values() {
    assert_err(
        parse_filter(r#"userName xx "a""#),
        9,
        "unknown operator 'xx'",
    );
    assert_err(
        parse_filter(r#"userName equals "a""#),
        9,
        "unknown operator",
    );
    assert_err(parse_filter("a eq bob"), 5, "must be double-quoted");
    assert_err(parse_filter("a eq 1.2.3"), 5, "invalid number");
    assert_err(parse_filter("a eq 1."), 5, "expected digits");
    assert_err(parse_filter("a eq -"), 5, "expected digits");
    assert_err(parse_filter("a eq 1e999"), 5, "out of range");
    assert_err(parse_filter("a eq +1"), 5, "expected a value");
    assert_err(parse_filter("not a pr"), 4, "unknown operator 'a'");
}

#[test]
fn trailing_garbage() {
    assert_err(
        parse_filter("a pr b pr"),
        5,
        "expected 'and', 'or' or end of filter",
    );
    assert_err(parse_filter(r#"a eq "ééé" b"#), 11, "found 'b'");
    assert_err(parse_filter("a pr !"), 5, "found '!'");
    assert_err(parse_attr_path("emails[x pr]"), 6, "end of attribute path");
    assert_err(
        parse_value_path(r#"emails[type eq "work"]value"#),
        22,
        "end of path",
    );
    assert_err(
        parse_value_path(r#"emails[type eq "work"]."#),
        23,
        "attribute name",
    );
}

#[test]
fn empty_input() {
    assert_err(parse_filter(""), 0, "empty filter");
    assert_err(parse_filter("   "), 3, "empty filter");
    assert_err(parse_attr_path(""), 0, "expected an attribute path");
    assert_err(parse_value_path(" "), 1, "found end of input");
}

#[test]
fn unbalanced_brackets_and_parens() {
    assert_err(
        parse_filter("(a pr"),
        5,
        "missing ')' for '(' at position 0",
    );
    assert_err(
        parse_filter("((a pr)"),
        7,
        "missing ')' for '(' at position 0",
    );
    assert_err(parse_filter("a pr)"), 4, "unbalanced ')'");
    assert_err(parse_filter("(a pr]"), 5, "expected 'and', 'or' or ')'");
    assert_err(
        parse_filter(r#"emails[type eq "w""#),
        18,
        "missing ']' for '[' at position 6",
    );
    assert_err(
        parse_filter(r#"emails[type eq "w"]]"#),
        19,
        "unbalanced ']'",
    );
    assert_err(
        parse_filter(r#"emails[type eq "w")"#),
        18,
        "expected 'and', 'or' or ']'",
    );
    assert_err(parse_value_path("emails[a pr"), 11, "missing ']'");
}

#[test]
fn bad_paths() {
    assert_err(parse_filter("foo:bar pr"), 0, "must be a URN");
    assert_err(parse_filter("urn::x:a pr"), 4, "empty segment");
    assert_err(parse_filter("urn:x: pr"), 6, "expected an attribute name");
    assert_err(parse_filter("a.b.c pr"), 3, "invalid character '.'");
    assert_err(parse_filter("1abc pr"), 0, "cannot start with '1'");
    assert_err(parse_filter("é pr"), 0, "expected an attribute path");
    assert_err(
        parse_filter("name.givenName[x pr]"),
        14,
        "not a sub-attribute",
    );
    assert_err(
        parse_value_path("name.givenName[x pr]"),
        14,
        "not a sub-attribute",
    );
    assert_err(parse_filter("a[b pr].1 pr"), 8, "cannot start with '1'");
}

#[test]
fn error_display() {
    let err = ParseError::new(3, "boom");
    assert_eq!(err.to_string(), "at position 3: boom");
}
