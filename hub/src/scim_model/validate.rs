//! Attribute values checked against the published schemas (RFC 7643 2.3):
//! each attribute's type, whether it is multi-valued, its sub-attributes and
//! its `canonicalValues` where published. SCIM writes (after PATCH, so the
//! stored result is what is checked) and webhook subjects go through the
//! same check, so neither can store what the other would refuse. Attributes
//! no schema defines (custom ones) are left as sent; no string anywhere may
//! hold a NUL (see `crate::input`).

use serde_json::{Map, Value};

use super::schema::{Published, ResourceSchema, find_attr};

/// Why a resource does not fit its schema: the attribute path and the rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path} {rule}")]
pub struct Violation {
    /// `emails[0].value`, `urn:...:enterprise:2.0:User:manager.value`.
    pub path: String,
    /// What the value must be (`must be a boolean`); never the value itself.
    pub rule: String,
}

impl Violation {
    fn new(path: &str, rule: impl Into<String>) -> Self {
        Self {
            path: path.to_string(),
            rule: rule.into(),
        }
    }
}

/// Checks every attribute of `attrs` (core at the top, extensions under
/// their URN) that `resource`'s published schemas define. `null` is an
/// unassigned attribute and passes.
pub fn check(
    attrs: &Map<String, Value>,
    resource: &ResourceSchema,
    published: &Published,
) -> Result<(), Violation> {
    for (key, value) in attrs {
        if let Some(path) = crate::input::find_nul(value, key) {
            return Err(Violation::new(&path, "must not contain a NUL character"));
        }
        if crate::input::has_nul(key) {
            return Err(Violation::new(
                "an attribute name",
                "must not contain a NUL character",
            ));
        }
    }
    let Some(core) = published.get(resource.core) else {
        return Ok(());
    };
    for (key, value) in attrs {
        if let Some(urn) = resource.extension(key) {
            let Some(ext) = published.get(urn) else {
                continue;
            };
            match value {
                Value::Null => {}
                Value::Object(inner) => {
                    for (k, v) in inner {
                        if let Some(def) = find_attr(&ext["attributes"], k) {
                            check_value(def, v, &format!("{urn}:{k}"))?;
                        }
                    }
                }
                _ => return Err(Violation::new(urn, "must be an object")),
            }
        } else if let Some(def) = find_attr(&core["attributes"], key) {
            check_value(def, value, key)?;
        }
    }
    Ok(())
}

/// One attribute (or sub-attribute) value against its definition.
fn check_value(def: &Value, value: &Value, path: &str) -> Result<(), Violation> {
    if value.is_null() {
        return Ok(());
    }
    if def["multiValued"] != true {
        return check_single(def, value, path);
    }
    let Value::Array(items) = value else {
        return Err(Violation::new(
            path,
            "must be an array (it is multi-valued)",
        ));
    };
    for (i, item) in items.iter().enumerate() {
        let at = format!("{path}[{i}]");
        if item.is_null() {
            return Err(Violation::new(&at, "must not be null"));
        }
        check_single(def, item, &at)?;
    }
    Ok(())
}

fn check_single(def: &Value, value: &Value, path: &str) -> Result<(), Violation> {
    let kind = def["type"].as_str().unwrap_or("string");
    let fits = match kind {
        "string" | "reference" | "binary" => value.is_string(),
        "boolean" => value.is_boolean(),
        "integer" => value.is_i64() || value.is_u64(),
        "decimal" => value.is_number(),
        "dateTime" => value
            .as_str()
            .is_some_and(|s| chrono::DateTime::parse_from_rfc3339(s).is_ok()),
        "complex" => value.is_object(),
        _ => true,
    };
    if !fits {
        return Err(Violation::new(path, format!("must be {}", describe(kind))));
    }
    if let (Some(allowed), Some(text)) = (def["canonicalValues"].as_array(), value.as_str())
        && !allowed.iter().any(|a| a.as_str() == Some(text))
    {
        let list: Vec<&str> = allowed.iter().filter_map(Value::as_str).collect();
        return Err(Violation::new(
            path,
            format!(
                "must be one of the published canonicalValues: {}",
                list.join(", ")
            ),
        ));
    }
    if let (Some(subs), Value::Object(fields)) = (def.get("subAttributes"), value) {
        for (k, v) in fields {
            if let Some(sub) = find_attr(subs, k) {
                check_value(sub, v, &format!("{path}.{k}"))?;
            }
        }
    }
    Ok(())
}

fn describe(kind: &str) -> &'static str {
    match kind {
        "boolean" => "a boolean",
        "integer" => "an integer",
        "decimal" => "a number",
        "dateTime" => "an RFC 3339 date-time string",
        "complex" => "an object",
        "reference" => "a reference (a string)",
        "binary" => "base64 text (a string)",
        _ => "a string",
    }
}

impl From<Violation> for super::ScimError {
    fn from(v: Violation) -> Self {
        super::ScimError::invalid_value(v.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scim_model::schema::{ENTERPRISE_URN, GROUP, SYNCD_URN, USER};
    use serde_json::json;

    fn user(v: Value) -> Result<(), Violation> {
        let published = Published::new(&["analytics".to_string()], &["acme".to_string()]);
        check(v.as_object().unwrap(), &USER, &published)
    }

    #[test]
    fn accepts_values_of_the_published_types() {
        user(json!({
            "userName": "ada", "active": true, "name": {"givenName": "Ada"},
            "emails": [{"value": "a@x", "primary": true, "type": "work"}],
            "groups": null, "custom": {"anything": [1]},
            ENTERPRISE_URN: {"manager": {"value": "m-1"}, "costCenter": "7"},
            SYNCD_URN: {"brands": ["acme"], "consent": {"analytics": "granted"}},
        }))
        .unwrap();
    }

    #[test]
    fn refuses_each_wrong_type_with_its_path() {
        let cases = [
            (json!({"emails": "x"}), "emails"),
            (json!({"emails": ["x"]}), "emails[0]"),
            (json!({"emails": [null]}), "emails[0]"),
            (json!({"active": "yes"}), "active"),
            (json!({"userName": 1}), "userName"),
            (json!({"name": "Ada"}), "name"),
            (json!({"name": {"givenName": 7}}), "name.givenName"),
            (json!({"emails": [{"primary": "yes"}]}), "emails[0].primary"),
            (
                json!({ENTERPRISE_URN: {"manager": {"value": 3}}}),
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value",
            ),
            (json!({ENTERPRISE_URN: "x"}), ENTERPRISE_URN),
            (
                json!({SYNCD_URN: {"brands": ["globex"]}}),
                "urn:ietf:params:scim:schemas:extension:syncd:2.0:User:brands[0]",
            ),
            (json!({"nickName": "a\u{0}b"}), "nickName"),
            (
                json!({SYNCD_URN: {"consent": {"analytics": "maybe"}}}),
                "urn:ietf:params:scim:schemas:extension:syncd:2.0:User:consent.analytics",
            ),
            (
                json!({SYNCD_URN: {"brandConsent": {"acme": {"analytics": 1}}}}),
                "urn:ietf:params:scim:schemas:extension:syncd:2.0:User:brandConsent.acme.analytics",
            ),
        ];
        for (input, path) in cases {
            let e = user(input.clone()).expect_err(&input.to_string());
            assert_eq!(e.path, path, "{input}");
            assert!(!e.to_string().contains("globex"), "no value echoed: {e}");
        }
    }

    #[test]
    fn groups_check_their_members() {
        let published = Published::new(&[], &[]);
        let g = json!({"displayName": "g", "members": [{"value": 5}]});
        let e = check(g.as_object().unwrap(), &GROUP, &published).unwrap_err();
        assert_eq!(e.path, "members[0].value");
    }
}
