//! Mapped fields as a `CustomerInput`: its own fields by name, everything
//! else as a metafield in the configured namespace.

use serde_json::{Map, Value, json};

/// `CustomerInput` fields the mapping may name directly.
pub const TEXT_FIELDS: &[&str] = &["email", "firstName", "lastName", "phone", "note", "locale"];

/// The `CustomerInput` for `fields`, or why it cannot be built.
pub fn customer_input(
    fields: &Map<String, Value>,
    namespace: &str,
) -> Result<Map<String, Value>, String> {
    let mut input = Map::new();
    let mut metafields = Vec::new();
    for (name, value) in fields {
        if TEXT_FIELDS.contains(&name.as_str()) {
            let value = match value {
                Value::String(_) | Value::Null => value.clone(),
                other => Value::String(scalar_text(other)),
            };
            input.insert(name.clone(), value);
            continue;
        }
        if name == "tags" {
            let tags: Vec<String> = match value {
                Value::Array(items) => items.iter().map(scalar_text).collect(),
                Value::String(s) => s
                    .split(',')
                    .map(|t| t.trim().to_string())
                    .filter(|t| !t.is_empty())
                    .collect(),
                Value::Null => Vec::new(),
                other => vec![scalar_text(other)],
            };
            input.insert("tags".into(), json!(tags));
            continue;
        }
        if value.is_null() {
            continue; // CustomerInput cannot remove a metafield
        }
        if !valid_key(name) {
            return Err(format!(
                "field {name:?} cannot be a Shopify metafield key (2 to 64 letters, digits, - or _)"
            ));
        }
        let (kind, text) = match value {
            Value::String(s) if s.contains('\n') => ("multi_line_text_field", s.clone()),
            Value::String(s) => ("single_line_text_field", s.clone()),
            Value::Bool(b) => ("boolean", b.to_string()),
            Value::Number(n) if n.is_i64() || n.is_u64() => ("number_integer", n.to_string()),
            Value::Number(n) => ("number_decimal", n.to_string()),
            other => ("json", other.to_string()),
        };
        metafields.push(json!({"namespace": namespace, "key": name, "type": kind, "value": text}));
    }
    if !metafields.is_empty() {
        input.insert("metafields".into(), Value::Array(metafields));
    }
    Ok(input)
}

fn scalar_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

pub fn valid_key(key: &str) -> bool {
    (2..=64).contains(&key.len())
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn customer_fields_stay_and_the_rest_become_typed_metafields() {
        let fields = json!({"email": "ada@example.com", "firstName": "Ada", "tags": "a, b",
            "tier": "gold", "visits": 3, "vip": true})
        .as_object()
        .cloned()
        .unwrap();
        let input = customer_input(&fields, "hub").unwrap();
        assert_eq!(input["email"], "ada@example.com");
        assert_eq!(input["tags"], json!(["a", "b"]));
        let metafields = input["metafields"].as_array().unwrap();
        assert_eq!(metafields.len(), 3);
        assert!(metafields.contains(
            &json!({"namespace": "hub", "key": "visits", "type": "number_integer", "value": "3"})
        ));
        let bad = json!({"a": "x"}).as_object().cloned().unwrap();
        assert!(customer_input(&bad, "hub").is_err());
    }
}
