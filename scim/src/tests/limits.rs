//! Hostile input: deep nesting and very long chains fail cleanly instead of
//! overflowing the stack, and trees right below the limits are usable.

use serde_json::json;

use super::f;
use crate::{MAX_DEPTH, MAX_NESTING, parse_filter, parse_value_path};

#[test]
fn deep_parentheses_are_rejected() {
    let input = "(".repeat(100_000);
    let err = parse_filter(&input).err();
    assert_eq!(err.map(|e| e.position), Some(MAX_NESTING));
    let nots = "not (".repeat(100_000);
    assert!(parse_filter(&nots).is_err());
    let brackets = "a[".repeat(100_000);
    assert!(parse_filter(&brackets).is_err());
    assert!(parse_value_path(&brackets).is_err());
}

#[test]
fn nesting_limit_is_exact() {
    let ok = format!("{}a pr{}", "(".repeat(MAX_NESTING), ")".repeat(MAX_NESTING));
    assert!(parse_filter(&ok).is_ok());
    let too_deep = format!("({ok})");
    assert!(parse_filter(&too_deep).is_err());
}

#[test]
fn long_chains_are_rejected() {
    let input = format!("{}a pr", "a pr and ".repeat(100_000));
    let err = parse_filter(&input).err();
    assert!(err.is_some_and(|e| e.message.contains("too complex")));
}

#[test]
fn trees_at_the_depth_limit_work() {
    // MAX_DEPTH - 1 `or`s over leaves give exactly MAX_DEPTH levels.
    let input = format!("{}b eq 1", "a pr or ".repeat(MAX_DEPTH - 1));
    let filter = f(&input);
    let text = filter.to_string();
    assert_eq!(f(&text), filter);
    assert!(filter.matches(&json!({"b": 1})));
    assert!(!filter.matches(&json!({})));
    let too_long = format!("a pr or {input}");
    assert!(parse_filter(&too_long).is_err());
}
