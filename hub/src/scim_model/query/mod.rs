//! List queries (RFC 7644 3.4.2): parameters, the SQL narrowing a filter
//! allows, in-memory filtering, sorting, paging and attribute projection.

use serde_json::{Map, Value, json};

use scim::{AttrPath, CompareOp, Filter};

use super::error::{ScimError, ScimType};
use crate::store::{GroupNarrowing, UserNarrowing};

/// Page size when the client names none, and the most we return at once.
pub const DEFAULT_COUNT: i64 = 100;
pub const MAX_COUNT: i64 = 1000;

#[derive(Debug, Default)]
pub struct ListParams {
    pub filter: Option<Filter>,
    /// 1-based.
    pub start_index: i64,
    pub count: i64,
    pub attributes: Vec<AttrPath>,
    pub excluded: Vec<AttrPath>,
    pub sort_by: Option<AttrPath>,
    pub descending: bool,
}

impl ListParams {
    /// From decoded query pairs (names compared case-insensitively).
    pub fn parse(pairs: &[(String, String)]) -> Result<Self, ScimError> {
        let get = |name: &str| {
            pairs
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.as_str())
        };
        let filter = match get("filter") {
            None => None,
            Some(f) if f.trim().is_empty() => None,
            Some(f) => {
                let filter = scim::parse_filter(f)
                    .map_err(|e| ScimError::bad(ScimType::InvalidFilter, format!("filter {e}")))?;
                if crate::input::has_nul(f) || holds_nul(&filter) {
                    return Err(ScimError::bad(
                        ScimType::InvalidFilter,
                        "a filter value must not contain a NUL character",
                    ));
                }
                Some(filter)
            }
        };
        let int = |name: &str, default: i64| -> Result<i64, ScimError> {
            match get(name) {
                None => Ok(default),
                Some(v) => v
                    .trim()
                    .parse::<i64>()
                    .map_err(|_| ScimError::invalid_value(format!("{name} must be an integer"))),
            }
        };
        let sort_by = match get("sortBy") {
            None => None,
            Some(p) => Some(
                scim::parse_attr_path(p)
                    .map_err(|e| ScimError::invalid_path(format!("sortBy {e}")))?,
            ),
        };
        let descending = match get("sortOrder") {
            None => false,
            Some(o) if o.eq_ignore_ascii_case("ascending") => false,
            Some(o) if o.eq_ignore_ascii_case("descending") => true,
            Some(_) => {
                return Err(ScimError::invalid_value(
                    "sortOrder must be ascending or descending",
                ));
            }
        };
        Ok(ListParams {
            filter,
            // RFC 7644 3.4.2.4: below 1 is read as 1, a negative count as 0.
            start_index: int("startIndex", 1)?.max(1),
            count: int("count", DEFAULT_COUNT)?.clamp(0, MAX_COUNT),
            attributes: paths(get("attributes"))?,
            excluded: paths(get("excludedAttributes"))?,
            sort_by,
            descending,
        })
    }

    /// Whether filtering or sorting must see every candidate row.
    pub fn in_memory(&self) -> bool {
        self.filter.is_some() || self.sort_by.is_some()
    }

    /// Whether `name` (a top-level attribute) would be left out.
    pub fn excludes(&self, name: &str) -> bool {
        let hit = |p: &AttrPath| {
            p.schema.is_none() && p.sub_attr.is_none() && p.name.eq_ignore_ascii_case(name)
        };
        self.excluded.iter().any(hit)
            || (!self.attributes.is_empty()
                && !self
                    .attributes
                    .iter()
                    .any(|p| p.name.eq_ignore_ascii_case(name)))
    }
}

/// Whether a comparison value of the filter holds a NUL (`"\u0000"`).
fn holds_nul(filter: &Filter) -> bool {
    match filter {
        Filter::Present(_) => false,
        Filter::Compare { value, .. } => crate::input::find_nul(value, "").is_some(),
        Filter::And(l, r) | Filter::Or(l, r) => holds_nul(l) || holds_nul(r),
        Filter::Not(inner) | Filter::ValuePath { filter: inner, .. } => holds_nul(inner),
    }
}

fn paths(list: Option<&str>) -> Result<Vec<AttrPath>, ScimError> {
    list.unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            scim::parse_attr_path(s)
                .map_err(|e| ScimError::invalid_path(format!("attribute {s:?}: {e}")))
        })
        .collect()
}

/// The comparison a filter requires of every match, found in its top-level
/// conjunction: `attr eq "x"` on one of `names`.
fn required_eq<'a>(filter: &'a Filter, names: &[&str]) -> Option<(String, &'a str)> {
    match filter {
        Filter::Compare {
            path,
            op: CompareOp::Eq,
            value: Value::String(v),
        } if path.schema.is_none() => {
            let full = match &path.sub_attr {
                Some(sub) => format!("{}.{}", path.name, sub),
                None => path.name.clone(),
            };
            names
                .iter()
                .find(|n| n.eq_ignore_ascii_case(&full))
                .map(|n| (n.to_string(), v.as_str()))
        }
        Filter::ValuePath { attr, filter } if attr.schema.is_none() && attr.sub_attr.is_none() => {
            // emails[value eq "x"] narrows like emails.value eq "x".
            let inner = required_eq(filter, &["value"])?;
            let full = format!("{}.value", attr.name);
            names
                .iter()
                .find(|n| n.eq_ignore_ascii_case(&full))
                .map(|n| (n.to_string(), inner.1))
        }
        Filter::And(l, r) => required_eq(l, names).or_else(|| required_eq(r, names)),
        _ => None,
    }
}

/// A `meta.lastModified gt/ge/lt/le "DATE"` in the top-level conjunction,
/// as a range one millisecond wider (the in-memory filter decides).
fn required_modified(filter: &Filter) -> Option<UserNarrowing> {
    match filter {
        Filter::Compare {
            path,
            op,
            value: Value::String(v),
        } if path.schema.is_none()
            && path.name.eq_ignore_ascii_case("meta")
            && path
                .sub_attr
                .as_deref()
                .is_some_and(|s| s.eq_ignore_ascii_case("lastModified")) =>
        {
            let ms = chrono::DateTime::parse_from_rfc3339(v)
                .ok()?
                .timestamp_millis();
            match op {
                CompareOp::Gt | CompareOp::Ge => Some(UserNarrowing::ModifiedSince(ms - 1)),
                CompareOp::Lt | CompareOp::Le => Some(UserNarrowing::ModifiedUntil(ms + 1)),
                _ => None,
            }
        }
        Filter::And(l, r) => required_modified(l).or_else(|| required_modified(r)),
        _ => None,
    }
}

pub fn user_narrowing(filter: Option<&Filter>) -> UserNarrowing {
    let Some(filter) = filter else {
        return UserNarrowing::All;
    };
    if required_eq(filter, &["id", "userName", "externalId", "emails.value"]).is_none()
        && let Some(n) = required_modified(filter)
    {
        return n;
    }
    match required_eq(filter, &["id", "userName", "externalId", "emails.value"]) {
        Some((n, v)) if n == "id" => UserNarrowing::Id(v.to_string()),
        Some((n, v)) if n == "userName" => UserNarrowing::UserName(v.to_lowercase()),
        Some((n, v)) if n == "externalId" => UserNarrowing::ExternalId(v.to_string()),
        // The store matches lowercased JSON text: ASCII only, no JSON escapes.
        Some((_, v))
            if v.bytes()
                .all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\\') =>
        {
            UserNarrowing::Email(v.to_ascii_lowercase())
        }
        _ => UserNarrowing::All,
    }
}

pub fn group_narrowing(filter: Option<&Filter>) -> GroupNarrowing {
    let Some(filter) = filter else {
        return GroupNarrowing::All;
    };
    match required_eq(filter, &["id", "displayName", "externalId"]) {
        Some((n, v)) if n == "id" => GroupNarrowing::Id(v.to_string()),
        Some((n, v)) if n == "displayName" => GroupNarrowing::DisplayName(v.to_lowercase()),
        Some((n, v)) if n == "externalId" => GroupNarrowing::ExternalId(v.to_string()),
        _ => GroupNarrowing::All,
    }
}

/// RFC 7643 caseExact: ids and externalId compare exactly.
fn case_exact(path: &AttrPath) -> bool {
    path.sub_attr.is_none()
        && ["id", "externalId"]
            .iter()
            .any(|n| n.eq_ignore_ascii_case(&path.name))
        || path.name.eq_ignore_ascii_case("members")
            && path
                .sub_attr
                .as_deref()
                .is_some_and(|s| s.eq_ignore_ascii_case("value"))
}

/// Filters, sorts and pages rendered resources held in id order.
pub fn select(params: &ListParams, mut resources: Vec<Value>) -> (Vec<Value>, i64) {
    if let Some(f) = &params.filter {
        resources.retain(|r| f.matches_with(r, &case_exact));
    }
    if let Some(by) = &params.sort_by {
        let key = |r: &Value| {
            by.select(r).first().map(|v| match v {
                Value::String(s) => s.to_lowercase(),
                other => other.to_string(),
            })
        };
        // Stable: ties keep id order. Unassigned values sort last (RFC 7644 3.4.2.3).
        resources.sort_by(|a, b| match (key(a), key(b)) {
            (Some(x), Some(y)) if params.descending => y.cmp(&x),
            (Some(x), Some(y)) => x.cmp(&y),
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (None, None) => std::cmp::Ordering::Equal,
        });
    }
    let total = resources.len() as i64;
    let page = resources
        .into_iter()
        .skip((params.start_index - 1) as usize)
        .take(params.count as usize)
        .collect();
    (page, total)
}

/// Adds sub-attribute `sub` of `value` (an object, or an array of them) to
/// what `kept[key]` already holds (`name.givenName,name.familyName` merge).
fn keep_sub(kept: &mut Map<String, Value>, key: &str, value: &Value, sub: &str) {
    let pick = |o: &Map<String, Value>| {
        let k = super::patch::key_of(o, sub);
        o.get(&k).map(|v| (k, v.clone()))
    };
    match value {
        Value::Object(o) => {
            let Some((k, v)) = pick(o) else { return };
            let slot = kept.entry(key.to_string()).or_insert_with(|| json!({}));
            if let Some(held) = slot.as_object_mut() {
                held.insert(k, v);
            }
        }
        Value::Array(items) => {
            let slot = kept
                .entry(key.to_string())
                .or_insert_with(|| Value::Array(vec![json!({}); items.len()]));
            let Some(held) = slot.as_array_mut() else {
                return;
            };
            for (item, out) in items.iter().zip(held.iter_mut()) {
                if let (Some((k, v)), Some(out)) =
                    (item.as_object().and_then(pick), out.as_object_mut())
                {
                    out.insert(k, v);
                }
            }
        }
        _ => {}
    }
}

/// Applies `attributes` / `excludedAttributes` and the `returned`
/// characteristic the published schema gives each attribute: `id` and
/// `schemas` (and any `always` attribute) stay even when excluded, `meta`
/// stays unless excluded, `never` is never returned, `request` only when
/// `attributes` names it.
pub fn project(
    resource: Value,
    attributes: &[AttrPath],
    excluded: &[AttrPath],
    schema: &super::schema::ResourceSchema,
) -> Value {
    project_with(resource, attributes, excluded, &schema.definitions())
}

/// [`project`] by the given schema definitions, core first.
pub fn project_with(
    resource: Value,
    attributes: &[AttrPath],
    excluded: &[AttrPath],
    definitions: &[&Value],
) -> Value {
    let full = resource.clone();
    let projected = select_attributes(resource, attributes, excluded);
    apply_returned(full, projected, attributes, definitions)
}

/// Whether `attributes` names `name` (in `urn`, None for the core schema),
/// or its sub-attribute `sub`.
fn asked(attributes: &[AttrPath], urn: Option<&str>, name: &str, sub: Option<&str>) -> bool {
    attributes.iter().any(|p| {
        let same_schema = match (&p.schema, urn) {
            (None, None) => true,
            (Some(s), None) => s
                .to_ascii_lowercase()
                .starts_with("urn:ietf:params:scim:schemas:core:"),
            (Some(s), Some(u)) => s.eq_ignore_ascii_case(u),
            (None, Some(_)) => false,
        };
        same_schema
            && p.name.eq_ignore_ascii_case(name)
            && match sub {
                None => true,
                Some(sub) => p
                    .sub_attr
                    .as_deref()
                    .is_none_or(|s| s.eq_ignore_ascii_case(sub)),
            }
    })
}

fn returned(def: &Value) -> &str {
    def["returned"].as_str().unwrap_or("default")
}

fn apply_returned(
    full: Value,
    projected: Value,
    attributes: &[AttrPath],
    definitions: &[&Value],
) -> Value {
    let (Value::Object(full), Value::Object(mut out)) = (full, projected) else {
        return Value::Null;
    };
    for key in ["id", "schemas"] {
        if let (Some(v), false) = (full.get(key), out.contains_key(key)) {
            out.insert(key.into(), v.clone());
        }
    }
    for (n, def) in definitions.iter().enumerate() {
        let urn = (n > 0).then(|| def["id"].as_str().unwrap_or_default());
        let Some(attrs) = def["attributes"].as_array() else {
            continue;
        };
        let (src, dst) = match urn {
            None => (Some(&full), Some(&mut out)),
            Some(urn) => {
                let k = super::patch::key_of(&full, urn);
                let src = full.get(&k).and_then(Value::as_object);
                if src.is_some()
                    && !out.contains_key(&k)
                    && attrs.iter().any(|a| returned(a) == "always")
                {
                    out.insert(k.clone(), json!({}));
                }
                (src, out.get_mut(&k).and_then(Value::as_object_mut))
            }
        };
        let Some(dst) = dst else { continue };
        for a in attrs {
            let Some(name) = a["name"].as_str() else {
                continue;
            };
            let key = super::patch::key_of(dst, name);
            match returned(a) {
                "never" => {
                    dst.remove(&key);
                    continue;
                }
                "request" if !asked(attributes, urn, name, None) => {
                    dst.remove(&key);
                    continue;
                }
                "always" => {
                    let skey = src.map(|s| super::patch::key_of(s, name));
                    if let Some(v) = src.zip(skey).and_then(|(s, k)| s.get(&k)) {
                        dst.insert(key.clone(), v.clone());
                    }
                }
                _ => {}
            }
            let Some(subs) = a["subAttributes"].as_array() else {
                continue;
            };
            for s in subs {
                let Some(sub) = s["name"].as_str() else {
                    continue;
                };
                let drop = match returned(s) {
                    "never" => true,
                    "request" => !asked(attributes, urn, name, Some(sub)),
                    _ => false,
                };
                if !drop {
                    continue;
                }
                let items: Vec<&mut Map<String, Value>> = match dst.get_mut(&key) {
                    Some(Value::Object(o)) => vec![o],
                    Some(Value::Array(list)) => {
                        list.iter_mut().filter_map(Value::as_object_mut).collect()
                    }
                    _ => Vec::new(),
                };
                for o in items {
                    let k = super::patch::key_of(o, sub);
                    o.remove(&k);
                }
            }
        }
        if urn.is_some() && dst.is_empty() {
            let k = super::patch::key_of(&out, urn.unwrap_or_default());
            out.remove(&k);
        }
    }
    Value::Object(out)
}

/// `attributes` then `excludedAttributes`, by name alone.
fn select_attributes(resource: Value, attributes: &[AttrPath], excluded: &[AttrPath]) -> Value {
    let Value::Object(mut obj) = resource else {
        return resource;
    };
    if !attributes.is_empty() {
        let mut kept = Map::new();
        for key in ["id", "schemas", "meta"] {
            if let Some(v) = obj.remove(key) {
                kept.insert(key.into(), v);
            }
        }
        for p in attributes {
            match &p.schema {
                Some(urn)
                    if !urn
                        .to_ascii_lowercase()
                        .starts_with("urn:ietf:params:scim:schemas:core:") =>
                {
                    let ukey = super::patch::key_of(&obj, urn);
                    let Some(Value::Object(ext)) = obj.get(&ukey) else {
                        continue;
                    };
                    let akey = super::patch::key_of(ext, &p.name);
                    if let Some(v) = ext.get(&akey).cloned() {
                        let slot = kept.entry(ukey.clone()).or_insert_with(|| json!({}));
                        if let Some(o) = slot.as_object_mut() {
                            o.insert(akey, v);
                        }
                    }
                }
                _ => {
                    let key = super::patch::key_of(&obj, &p.name);
                    let Some(v) = obj.get(&key) else { continue };
                    match &p.sub_attr {
                        None => {
                            kept.insert(key, v.clone());
                        }
                        Some(sub) => keep_sub(&mut kept, &key, v, sub),
                    }
                }
            }
        }
        obj = kept;
    }
    for p in excluded {
        if ["id", "schemas"]
            .iter()
            .any(|k| k.eq_ignore_ascii_case(&p.name))
            && p.schema.is_none()
        {
            continue;
        }
        let holder = match &p.schema {
            Some(urn)
                if !urn
                    .to_ascii_lowercase()
                    .starts_with("urn:ietf:params:scim:schemas:core:") =>
            {
                let ukey = super::patch::key_of(&obj, urn);
                obj.get_mut(&ukey).and_then(Value::as_object_mut)
            }
            _ => Some(&mut obj),
        };
        let Some(holder) = holder else { continue };
        let key = super::patch::key_of(holder, &p.name);
        match &p.sub_attr {
            None => {
                holder.remove(&key);
            }
            Some(sub) => match holder.get_mut(&key) {
                Some(Value::Object(o)) => {
                    let k = super::patch::key_of(o, sub);
                    o.remove(&k);
                }
                Some(Value::Array(items)) => {
                    for o in items.iter_mut().filter_map(Value::as_object_mut) {
                        let k = super::patch::key_of(o, sub);
                        o.remove(&k);
                    }
                }
                _ => {}
            },
        }
    }
    Value::Object(obj)
}

pub fn list_response(resources: Vec<Value>, total: i64, start_index: i64) -> Value {
    json!({
        "schemas": [super::LIST_URN],
        "totalResults": total,
        "startIndex": start_index,
        "itemsPerPage": resources.len(),
        "Resources": resources,
    })
}

#[cfg(test)]
mod tests;
