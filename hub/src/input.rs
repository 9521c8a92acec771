//! What every inbound value must satisfy whatever protocol carried it: no
//! NUL character in any string or object key. PostgreSQL can store neither
//! in `text` nor in `jsonb`, so such input is refused at the door (4xx) on
//! both databases alike, instead of failing the commit (5xx) on one.

use serde_json::Value;

/// The path of the first string or key holding a NUL (`subject.emails[0].value`),
/// relative to `at` (`""` for the root).
pub fn find_nul(value: &Value, at: &str) -> Option<String> {
    match value {
        Value::String(s) if s.contains('\0') => Some(display(at)),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .find_map(|(i, v)| find_nul(v, &format!("{at}[{i}]"))),
        Value::Object(map) => map.iter().find_map(|(k, v)| {
            if k.contains('\0') {
                // The key itself is the problem: name its holder.
                return Some(display(at));
            }
            let path = if at.is_empty() {
                k.clone()
            } else {
                format!("{at}.{k}")
            };
            find_nul(v, &path)
        }),
        _ => None,
    }
}

/// Whether a text (a path segment, a query value) holds a NUL.
pub fn has_nul(text: &str) -> bool {
    text.contains('\0')
}

fn display(at: &str) -> String {
    if at.is_empty() {
        "the body".into()
    } else {
        at.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn finds_nul_in_values_and_keys_at_any_depth() {
        assert_eq!(find_nul(&json!({"a": ["x", {"b": "y"}]}), ""), None);
        assert_eq!(
            find_nul(&json!({"a": ["x", {"b": "y\u{0}"}]}), "subject"),
            Some("subject.a[1].b".into())
        );
        assert_eq!(find_nul(&json!({"a": {"k\u{0}": 1}}), ""), Some("a".into()));
        assert_eq!(find_nul(&json!("\u{0}"), ""), Some("the body".into()));
        assert!(has_nul("a\u{0}") && !has_nul("a0"));
    }
}
