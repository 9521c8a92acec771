//! SCIM User <-> subject attributes.

use serde_json::{Map, Value};

use super::error::ScimError;
use super::patch::key_of;
use super::schema::{self, USER};
use crate::store::ScimUserRecord;

/// The attributes a POST or PUT body asks to store: readOnly attributes
/// (`id`, `meta`, `groups`), `schemas` and `password` are dropped, as are
/// nulls (unassigned); names take their canonical spelling.
pub fn from_body(body: &Value) -> Result<Map<String, Value>, ScimError> {
    let Value::Object(input) = body else {
        return Err(ScimError::bad(
            super::ScimType::InvalidSyntax,
            "a User must be a JSON object",
        ));
    };
    let mut out = Map::new();
    for (k, v) in input {
        if v.is_null() || k.eq_ignore_ascii_case("schemas") || k.eq_ignore_ascii_case("password") {
            continue;
        }
        if USER.is_read_only(k) {
            continue;
        }
        let key = match USER.extension(k) {
            Some(urn) => urn.to_string(),
            None => USER.canonical(k),
        };
        let v = match v {
            Value::Object(m) => Value::Object(
                m.iter()
                    .filter(|(_, v)| !v.is_null())
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
            ),
            other => other.clone(),
        };
        out.insert(key, v);
    }
    normalize(&mut out)?;
    Ok(out)
}

/// Coerces Entra's `"True"`/`"False"`, keeps one `primary` per multi-valued
/// attribute (the last one set), and checks the required and typed
/// attributes.
pub fn normalize(user: &mut Map<String, Value>) -> Result<(), ScimError> {
    let active = key_of(user, "active");
    if let Some(v) = user.get_mut(&active) {
        coerce_bool(v);
        if !v.is_boolean() {
            return Err(ScimError::invalid_value("active must be a boolean"));
        }
    }
    for attr in USER.multi_valued {
        let key = key_of(user, attr);
        let Some(slot) = user.get_mut(&key) else {
            continue;
        };
        if slot.is_object() {
            *slot = Value::Array(vec![slot.take()]);
        }
        let Value::Array(items) = slot else {
            return Err(ScimError::invalid_value(format!("{attr} must be an array")));
        };
        for item in items.iter_mut().filter_map(Value::as_object_mut) {
            let pk = key_of(item, "primary");
            if let Some(p) = item.get_mut(&pk) {
                coerce_bool(p);
            }
        }
        let primaries: Vec<usize> = items
            .iter()
            .enumerate()
            .filter(|(_, i)| super::get_ci(i, "primary") == Some(&Value::Bool(true)))
            .map(|(n, _)| n)
            .collect();
        if let Some((_, earlier)) = primaries.split_last() {
            for &n in earlier {
                if let Some(obj) = items[n].as_object_mut() {
                    let pk = key_of(obj, "primary");
                    obj.insert(pk, Value::Bool(false));
                }
            }
        }
        if items.is_empty() {
            user.remove(&key);
        }
    }
    match user.get("userName") {
        Some(Value::String(s)) if !s.trim().is_empty() => {}
        Some(_) => {
            return Err(ScimError::invalid_value(
                "userName must be a non-empty string",
            ));
        }
        None => return Err(ScimError::invalid_value("userName is required")),
    }
    if let Some(v) = user.get("externalId")
        && !v.is_string()
    {
        return Err(ScimError::invalid_value("externalId must be a string"));
    }
    Ok(())
}

fn coerce_bool(v: &mut Value) {
    if let Value::String(s) = v {
        if s.eq_ignore_ascii_case("true") {
            *v = Value::Bool(true);
        } else if s.eq_ignore_ascii_case("false") {
            *v = Value::Bool(false);
        }
    }
}

/// The `externalId` column: the SCIM `externalId`, else the hub id.
pub fn external_id(user: &Map<String, Value>, id: &str) -> String {
    user.get("externalId")
        .and_then(Value::as_str)
        .unwrap_or(id)
        .to_string()
}

/// The full resource, as GET returns it.
pub fn render(record: &ScimUserRecord, base: &str) -> Value {
    let mut out = match &record.profile {
        Value::Object(m) => m.clone(),
        _ => Map::new(),
    };
    out.remove("password");
    let mut schemas = vec![Value::from(schema::USER_URN)];
    for urn in USER.extensions {
        if out.contains_key(*urn) {
            schemas.push(Value::from(*urn));
        }
    }
    out.insert("schemas".into(), schemas.into());
    out.insert("id".into(), record.id.clone().into());
    out.insert(
        "meta".into(),
        super::meta(
            "User",
            record.created_at,
            record.updated_at,
            record.version,
            format!("{base}/Users/{}", record.id),
        ),
    );
    Value::Object(out)
}

/// The stored attributes of a record, for PATCH and PUT to start from.
pub fn attributes(record: &ScimUserRecord) -> Map<String, Value> {
    match &record.profile {
        Value::Object(m) => m.clone(),
        _ => Map::new(),
    }
}
