//! Presence and comparison rules of RFC 7644 3.4.2.2 applied to JSON values.

use std::borrow::Cow;
use std::cmp::Ordering;

use serde_json::{Number, Value};

use crate::datetime;
use crate::filter::CompareOp;
use crate::path::{AttrPath, get_ci};

/// `pr`: assigned and not an empty string, array or object.
pub(crate) fn is_present(value: &Value) -> bool {
    match value {
        Value::Null => false,
        Value::String(s) => !s.is_empty(),
        // Only nested arrays get here: select() already flattened one level.
        Value::Array(items) => !items.is_empty(),
        Value::Object(map) => !map.is_empty(),
        Value::Bool(_) | Value::Number(_) => true,
    }
}

/// `path op expected`: true if ANY value of the path satisfies it.
pub(crate) fn compare_path(
    resource: &Value,
    path: &AttrPath,
    op: CompareOp,
    expected: &Value,
    case_exact: &dyn Fn(&AttrPath) -> bool,
) -> bool {
    let values = path.select(resource);
    if expected.is_null() {
        // select() already drops nulls, so "no values" means unassigned.
        return match op {
            CompareOp::Eq => values.is_empty(),
            CompareOp::Ne => !values.is_empty(),
            _ => false,
        };
    }
    let exact = case_exact(path);
    values
        .into_iter()
        .filter_map(comparable)
        .any(|actual| compare(actual, op, expected, exact))
}

/// A complex value without a sub-attribute compares through its `value`
/// sub-attribute (`emails co "@x"` looks at each `emails[].value`).
fn comparable(value: &Value) -> Option<&Value> {
    if value.is_object() {
        get_ci(value, "value").filter(|v| !v.is_null())
    } else {
        Some(value)
    }
}

/// One value against the filter's literal; type mismatches are false.
pub(crate) fn compare(actual: &Value, op: CompareOp, expected: &Value, case_exact: bool) -> bool {
    match (actual, expected) {
        (Value::String(a), Value::String(b)) => compare_strings(a, b, op, case_exact),
        (Value::Number(a), Value::Number(b)) => {
            compare_numbers(a, b).is_some_and(|ord| ordering_holds(op, ord))
        }
        (Value::Bool(a), Value::Bool(b)) => match op {
            CompareOp::Eq => a == b,
            CompareOp::Ne => a != b,
            _ => false,
        },
        _ => false,
    }
}

fn compare_strings(a: &str, b: &str, op: CompareOp, case_exact: bool) -> bool {
    let (fa, fb) = (folded(a, case_exact), folded(b, case_exact));
    match op {
        CompareOp::Co => fa.contains(&*fb),
        CompareOp::Sw => fa.starts_with(&*fb),
        CompareOp::Ew => fa.ends_with(&*fb),
        _ => {
            // Date-times compare as instants so offsets and fractions agree.
            let ord = match (datetime::parse(a), datetime::parse(b)) {
                (Some(x), Some(y)) => x.cmp(&y),
                _ => fa.cmp(&fb),
            };
            ordering_holds(op, ord)
        }
    }
}

fn folded(s: &str, case_exact: bool) -> Cow<'_, str> {
    if case_exact {
        Cow::Borrowed(s)
    } else {
        Cow::Owned(s.to_lowercase())
    }
}

/// Exact for 64-bit integers, f64 otherwise.
fn compare_numbers(a: &Number, b: &Number) -> Option<Ordering> {
    if let (Some(x), Some(y)) = (a.as_i64(), b.as_i64()) {
        return Some(x.cmp(&y));
    }
    if let (Some(x), Some(y)) = (a.as_u64(), b.as_u64()) {
        return Some(x.cmp(&y));
    }
    a.as_f64()?.partial_cmp(&b.as_f64()?)
}

fn ordering_holds(op: CompareOp, ord: Ordering) -> bool {
    match op {
        CompareOp::Eq => ord == Ordering::Equal,
        CompareOp::Ne => ord != Ordering::Equal,
        CompareOp::Gt => ord == Ordering::Greater,
        CompareOp::Ge => ord != Ordering::Less,
        CompareOp::Lt => ord == Ordering::Less,
        CompareOp::Le => ord != Ordering::Greater,
        CompareOp::Co | CompareOp::Sw | CompareOp::Ew => false,
    }
}
