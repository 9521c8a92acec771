//! SCIM User <-> subject attributes.

use serde_json::{Map, Value};

use super::error::ScimError;
use super::patch::key_of;
use super::schema::{self, USER};
use crate::config::Config;
use crate::store::{ScimConsent, ScimUserRecord};

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
    strip_read_only(&mut out, &USER);
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
    coerce_consent_states(user);
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

/// Drops what the published schemas mark readOnly from a POST or PUT body
/// (RFC 7644 3.3, 3.5.1: ignored, not refused), at any level: a core
/// attribute, an extension's, or a sub-attribute (`manager.displayName`).
pub fn strip_read_only(attrs: &mut Map<String, Value>, resource: &schema::ResourceSchema) {
    for (n, def) in resource.definitions().into_iter().enumerate() {
        let holder = if n == 0 {
            Some(&mut *attrs)
        } else {
            let urn = def["id"].as_str().unwrap_or_default();
            let k = key_of(attrs, urn);
            attrs.get_mut(&k).and_then(Value::as_object_mut)
        };
        let Some(holder) = holder else { continue };
        for a in def["attributes"].as_array().into_iter().flatten() {
            let Some(name) = a["name"].as_str() else {
                continue;
            };
            let key = key_of(holder, name);
            if a["mutability"] == "readOnly" {
                holder.remove(&key);
                continue;
            }
            for sub in a["subAttributes"].as_array().into_iter().flatten() {
                let (Some(sname), "readOnly") = (
                    sub["name"].as_str(),
                    sub["mutability"].as_str().unwrap_or_default(),
                ) else {
                    continue;
                };
                let items: Vec<&mut Map<String, Value>> = match holder.get_mut(&key) {
                    Some(Value::Object(o)) => vec![o],
                    Some(Value::Array(list)) => {
                        list.iter_mut().filter_map(Value::as_object_mut).collect()
                    }
                    _ => Vec::new(),
                };
                for o in items {
                    let k = key_of(o, sname);
                    o.remove(&k);
                }
            }
        }
    }
}

/// Consent states as the published schema names them: `granted` or
/// `denied`, from any case, booleans or Entra's `"True"`/`"False"`; what is
/// none of these is left for the schema check to refuse.
fn coerce_consent_states(user: &mut Map<String, Value>) {
    let ext = key_of(user, schema::SYNCD_URN);
    let Some(Value::Object(ext)) = user.get_mut(&ext) else {
        return;
    };
    let canonical = |v: &mut Value| {
        coerce_bool(v);
        let state = match &*v {
            Value::Bool(true) => "granted",
            Value::Bool(false) => "denied",
            Value::String(s) if s.eq_ignore_ascii_case("granted") => "granted",
            Value::String(s) if s.eq_ignore_ascii_case("denied") => "denied",
            _ => return,
        };
        *v = Value::from(state);
    };
    let consent = key_of(ext, "consent");
    if let Some(Value::Object(purposes)) = ext.get_mut(&consent) {
        purposes.values_mut().for_each(canonical);
    }
    let branded = key_of(ext, "brandConsent");
    if let Some(Value::Object(brands)) = ext.get_mut(&branded) {
        for purposes in brands.values_mut().filter_map(Value::as_object_mut) {
            purposes.values_mut().for_each(canonical);
        }
    }
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
    let mut out = attributes(record);
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

/// The stored attributes of a record, with its current consent in the hub
/// extension, for GET to render and PATCH and PUT to start from.
pub fn attributes(record: &ScimUserRecord) -> Map<String, Value> {
    let mut out = match &record.profile {
        Value::Object(m) => m.clone(),
        _ => Map::new(),
    };
    if record.consents.is_empty() {
        return out;
    }
    let mut global = Map::new();
    let mut branded = Map::new();
    for c in &record.consents {
        let slot = if c.brand.is_empty() {
            &mut global
        } else {
            let b = branded
                .entry(c.brand.clone())
                .or_insert_with(|| Value::Object(Map::new()));
            match b.as_object_mut() {
                Some(m) => m,
                None => continue,
            }
        };
        slot.insert(c.purpose.clone(), c.state.clone().into());
    }
    let ext = out
        .entry(schema::SYNCD_URN)
        .or_insert_with(|| Value::Object(Map::new()));
    if !ext.is_object() {
        *ext = Value::Object(Map::new());
    }
    if let Some(ext) = ext.as_object_mut() {
        if !global.is_empty() {
            ext.insert("consent".into(), Value::Object(global));
        }
        if !branded.is_empty() {
            ext.insert("brandConsent".into(), Value::Object(branded));
        }
    }
    out
}

/// After a PATCH: every consent `record` holds that the patched attributes
/// no longer name was removed, and a removed consent is a withdrawal (the
/// ledger keeps every decision; unassigned reads as denied). So it is put
/// back as `denied`, which `take_consent` then records.
pub fn withdraw_removed(attrs: &mut Map<String, Value>, record: &ScimUserRecord) {
    for c in &record.consents {
        let ext_key = key_of(attrs, schema::SYNCD_URN);
        let ext = attrs
            .entry(ext_key)
            .or_insert_with(|| Value::Object(Map::new()));
        if !ext.is_object() {
            *ext = Value::Object(Map::new());
        }
        let Some(ext) = ext.as_object_mut() else {
            continue;
        };
        let (slot_name, brand) = match c.brand.as_str() {
            "" => ("consent", None),
            b => ("brandConsent", Some(b)),
        };
        let slot_key = key_of(ext, slot_name);
        let mut slot = ext
            .entry(slot_key)
            .or_insert_with(|| Value::Object(Map::new()));
        if let Some(b) = brand {
            if !slot.is_object() {
                *slot = Value::Object(Map::new());
            }
            let Some(brands) = slot.as_object_mut() else {
                continue;
            };
            let k = key_of(brands, b);
            slot = brands.entry(k).or_insert_with(|| Value::Object(Map::new()));
        }
        if !slot.is_object() {
            *slot = Value::Object(Map::new());
        }
        if let Some(purposes) = slot.as_object_mut() {
            let k = key_of(purposes, &c.purpose);
            purposes.entry(k).or_insert_with(|| Value::from("denied"));
        }
    }
}

/// Takes `consent` (`{purpose: state}`) and `brandConsent`
/// (`{brand: {purpose: state}}`) out of the hub extension: consent lives in
/// its own table, not in the profile. A state is `granted` or `denied`
/// (any case; booleans and Entra's `"True"`/`"False"` too). Purposes and
/// brands must be declared in the configuration, as must those of the
/// extension's `brands` list (which stays in the profile, as webhooks keep
/// it). A purpose left out is left as it is: withdrawing is setting `denied`.
pub fn take_consent(
    user: &mut Map<String, Value>,
    config: &Config,
) -> Result<Vec<ScimConsent>, ScimError> {
    let Some(key) = user
        .keys()
        .find(|k| k.eq_ignore_ascii_case(schema::SYNCD_URN))
        .cloned()
    else {
        return Ok(Vec::new());
    };
    let Some(Value::Object(ext)) = user.get_mut(&key) else {
        return Err(ScimError::invalid_value(format!(
            "{} must be an object",
            schema::SYNCD_URN
        )));
    };
    let take = |ext: &mut Map<String, Value>, name: &str| {
        let k = ext.keys().find(|k| k.eq_ignore_ascii_case(name)).cloned()?;
        ext.remove(&k)
    };
    if let Some(k) = ext
        .keys()
        .find(|k| k.eq_ignore_ascii_case("brands"))
        .cloned()
    {
        // The brands the subject belongs to stay in the profile; checked here.
        let ok = match &ext[&k] {
            Value::Array(list) => list
                .iter()
                .all(|b| b.as_str().is_some_and(|b| config.brands.contains_key(b))),
            Value::Null => true,
            _ => false,
        };
        if !ok {
            return Err(ScimError::invalid_value(
                "brands must be a list of declared brand names",
            ));
        }
        if k != "brands" {
            let v = ext.remove(&k).unwrap_or_default();
            ext.insert("brands".into(), v);
        }
    }
    let global = take(ext, "consent");
    let branded = take(ext, "brandConsent");
    if ext.is_empty() {
        user.remove(&key);
    }
    let mut out = Vec::new();
    if let Some(global) = global {
        read_purposes(&global, "", config, &mut out)?;
    }
    match branded {
        None | Some(Value::Null) => {}
        Some(Value::Object(brands)) => {
            for (brand, purposes) in &brands {
                if !config.brands.contains_key(brand) {
                    return Err(ScimError::invalid_value(format!(
                        "brandConsent names the brand {brand:?}, which is not declared"
                    )));
                }
                read_purposes(purposes, brand, config, &mut out)?;
            }
        }
        Some(_) => {
            return Err(ScimError::invalid_value(
                "brandConsent must map brands to objects of purpose: state",
            ));
        }
    }
    Ok(out)
}

fn read_purposes(
    value: &Value,
    brand: &str,
    config: &Config,
    out: &mut Vec<ScimConsent>,
) -> Result<(), ScimError> {
    let purposes = match value {
        Value::Null => return Ok(()),
        Value::Object(m) => m,
        _ => {
            return Err(ScimError::invalid_value(
                "consent must map purposes to \"granted\" or \"denied\"",
            ));
        }
    };
    for (purpose, state) in purposes {
        if !config.purposes.contains_key(purpose) {
            return Err(ScimError::invalid_value(format!(
                "consent names the purpose {purpose:?}, which is not declared"
            )));
        }
        let mut state = state.clone();
        coerce_bool(&mut state);
        let state = match &state {
            Value::Bool(true) => "granted",
            Value::Bool(false) => "denied",
            Value::String(s) if s.eq_ignore_ascii_case("granted") => "granted",
            Value::String(s) if s.eq_ignore_ascii_case("denied") => "denied",
            _ => {
                return Err(ScimError::invalid_value(format!(
                    "consent for {purpose:?} must be \"granted\" or \"denied\""
                )));
            }
        };
        out.retain(|c: &ScimConsent| !(c.purpose == *purpose && c.brand == brand));
        out.push(ScimConsent {
            purpose: purpose.clone(),
            brand: brand.to_string(),
            state: state.to_string(),
        });
    }
    Ok(())
}
