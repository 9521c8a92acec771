//! PATCH (RFC 7644 3.5.2) applied to a resource held as a JSON object: core
//! attributes at the top, extensions keyed by their URN. Paths and filters
//! come from crate `scim`. IdP habits are accepted as-is: `op` in any case
//! (Entra's `Replace`), no-path values with dotted or URN-qualified keys, and
//! Entra's member removal by a `value` array.

use serde_json::{Map, Value};

use scim::{CompareOp, Filter};

use super::error::{ScimError, ScimType};
use super::schema::ResourceSchema;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchKind {
    Add,
    Replace,
    Remove,
}

/// One parsed operation.
#[derive(Debug, Clone)]
pub struct PatchOp {
    pub kind: PatchKind,
    pub path: Option<String>,
    pub value: Option<Value>,
}

/// Parses a PatchOp request body.
pub fn parse_request(body: &Value) -> Result<Vec<PatchOp>, ScimError> {
    let ops = super::get_ci(body, "Operations")
        .and_then(Value::as_array)
        .ok_or_else(|| {
            ScimError::bad(
                ScimType::InvalidSyntax,
                "a PatchOp needs an Operations array",
            )
        })?;
    if ops.is_empty() {
        return Err(ScimError::bad(
            ScimType::InvalidSyntax,
            "Operations is empty",
        ));
    }
    ops.iter()
        .enumerate()
        .map(|(i, op)| {
            let name = super::get_ci(op, "op")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let kind = match name.to_ascii_lowercase().as_str() {
                "add" => PatchKind::Add,
                "replace" => PatchKind::Replace,
                "remove" => PatchKind::Remove,
                _ => {
                    return Err(ScimError::bad(
                        ScimType::InvalidSyntax,
                        format!("Operations[{i}].op must be add, replace or remove"),
                    ));
                }
            };
            let path = match super::get_ci(op, "path") {
                None | Some(Value::Null) => None,
                Some(Value::String(p)) if p.trim().is_empty() => None,
                Some(Value::String(p)) => Some(p.trim().to_string()),
                Some(_) => {
                    return Err(ScimError::invalid_path(format!(
                        "Operations[{i}].path must be a string"
                    )));
                }
            };
            let value = super::get_ci(op, "value").cloned();
            Ok(PatchOp { kind, path, value })
        })
        .collect()
}

/// Applies every operation in order; returns the top-level attributes
/// touched. All or nothing: on error the caller drops `resource`.
pub fn apply(
    resource: &mut Map<String, Value>,
    ops: &[PatchOp],
    schema: &ResourceSchema,
) -> Result<Vec<String>, ScimError> {
    let mut touched = Vec::new();
    for op in ops {
        match &op.path {
            Some(path) => apply_path(
                resource,
                op.kind,
                path,
                op.value.as_ref(),
                schema,
                &mut touched,
            )?,
            None => {
                if op.kind == PatchKind::Remove {
                    return Err(ScimError::bad(ScimType::NoTarget, "remove needs a path"));
                }
                let Some(Value::Object(values)) = &op.value else {
                    return Err(ScimError::invalid_value(
                        "an operation without a path needs an object value",
                    ));
                };
                for (key, value) in values {
                    if let Some(urn) = schema.extension(key) {
                        let Value::Object(inner) = value else {
                            return Err(ScimError::invalid_value(format!(
                                "{urn} must be an object"
                            )));
                        };
                        for (k, v) in inner {
                            apply_path(
                                resource,
                                op.kind,
                                &format!("{urn}:{k}"),
                                Some(v),
                                schema,
                                &mut touched,
                            )?;
                        }
                    } else if key.eq_ignore_ascii_case("schemas") || schema.is_read_only(key) {
                        // Okta sends the group's id along with a rename: ignore readOnly here.
                    } else {
                        apply_path(resource, op.kind, key, Some(value), schema, &mut touched)?;
                    }
                }
            }
        }
    }
    Ok(touched)
}

/// Where an operation lands.
struct Target {
    /// Extension URN holding the attribute, or None for the top level.
    container: Option<String>,
    name: String,
    sub: Option<String>,
    filter: Option<Filter>,
}

fn resolve(path: &str, schema: &ResourceSchema) -> Result<Target, ScimError> {
    if let Some(urn) = schema.extension(path) {
        return Ok(Target {
            container: None,
            name: urn.to_string(),
            sub: None,
            filter: None,
        });
    }
    let vp =
        scim::parse_value_path(path).map_err(|e| ScimError::invalid_path(format!("path {e}")))?;
    let container = match &vp.attr.schema {
        None => None,
        Some(urn) if schema.is_core(urn) => None,
        Some(urn) => Some(
            schema
                .extension(urn)
                .map(str::to_string)
                .unwrap_or_else(|| urn.clone()),
        ),
    };
    let name = schema.canonical(&vp.attr.name);
    let sub = vp
        .attr
        .sub_attr
        .or(vp.sub_attr)
        .map(|s| schema.canonical(&s));
    Ok(Target {
        container,
        name,
        sub,
        filter: vp.filter,
    })
}

fn apply_path(
    resource: &mut Map<String, Value>,
    kind: PatchKind,
    path: &str,
    value: Option<&Value>,
    schema: &ResourceSchema,
    touched: &mut Vec<String>,
) -> Result<(), ScimError> {
    let target = resolve(path, schema)?;
    if target.container.is_none() && target.name.eq_ignore_ascii_case("password") {
        // writeOnly and never stored (Okta's password sync has nowhere to go).
        return Ok(());
    }
    let container_urn = target.container.as_deref();
    let read_only =
        |sub: Option<&str>| schema.mutability(container_urn, &target.name, sub) == "readOnly";
    if (target.container.is_none() && schema.is_read_only(&target.name))
        || read_only(None)
        || target.sub.as_deref().is_some_and(|s| read_only(Some(s)))
    {
        let shown = match &target.sub {
            Some(sub) => format!("{}.{sub}", target.name),
            None => target.name.clone(),
        };
        return Err(ScimError::bad(
            ScimType::Mutability,
            format!("{shown} is readOnly"),
        ));
    }
    // Sub-attributes that may be set once but never changed.
    let immutable = schema.subs_with(container_urn, &target.name, "immutable");
    if kind != PatchKind::Remove && value.is_none() {
        return Err(ScimError::invalid_value(format!(
            "{kind:?} of {path} needs a value"
        )));
    }
    // A null value unassigns the attribute.
    let (kind, value) = match value {
        Some(Value::Null) if kind != PatchKind::Remove => (PatchKind::Remove, None),
        v => (kind, v),
    };
    let label = match &target.container {
        Some(urn) => format!("{urn}:{}", target.name),
        None => target.name.clone(),
    };
    if !touched.contains(&label) {
        touched.push(label);
    }
    let container = match &target.container {
        None => resource,
        Some(urn) => {
            let key = key_of(resource, urn);
            if kind == PatchKind::Remove && !resource.contains_key(&key) {
                return Ok(());
            }
            let slot = resource
                .entry(key)
                .or_insert_with(|| Value::Object(Map::new()));
            if !slot.is_object() {
                *slot = Value::Object(Map::new());
            }
            slot.as_object_mut().expect("just made an object")
        }
    };
    let key = key_of(container, &target.name);
    let sub = target.sub.as_deref();
    match &target.filter {
        None => apply_plain(container, &key, sub, kind, value, schema, &immutable),
        Some(filter) => apply_filtered(container, &key, filter, sub, kind, value, &immutable),
    }
}

fn apply_plain(
    container: &mut Map<String, Value>,
    key: &str,
    sub: Option<&str>,
    kind: PatchKind,
    value: Option<&Value>,
    schema: &ResourceSchema,
    immutable: &[&str],
) -> Result<(), ScimError> {
    if let Some(sub) = sub {
        let slot = container.entry(key.to_string()).or_insert(Value::Null);
        match slot {
            Value::Array(items) => {
                for item in items.iter_mut().filter_map(Value::as_object_mut) {
                    set_sub(item, sub, kind, value, immutable)?;
                }
            }
            _ => {
                if !slot.is_object() {
                    if kind == PatchKind::Remove {
                        container.remove(key);
                        return Ok(());
                    }
                    *slot = Value::Object(Map::new());
                }
                let obj = slot.as_object_mut().expect("an object");
                set_sub(obj, sub, kind, value, immutable)?;
                if obj.is_empty() {
                    container.remove(key);
                }
            }
        }
        return Ok(());
    }
    let multi = schema.is_multi_valued(key);
    match (kind, value) {
        (PatchKind::Remove, Some(Value::Array(gone)))
            if container.get(key).is_some_and(Value::is_array) =>
        {
            // Entra: `{"op":"Remove","path":"members","value":[{"value":"ID"}]}`.
            let ids: Vec<&Value> = gone
                .iter()
                .filter_map(|g| super::get_ci(g, "value"))
                .collect();
            if let Some(Value::Array(items)) = container.get_mut(key) {
                items
                    .retain(|item| !super::get_ci(item, "value").is_some_and(|v| ids.contains(&v)));
            }
        }
        (PatchKind::Remove, _) => {
            container.remove(key);
        }
        (PatchKind::Add, Some(v)) if multi || container.get(key).is_some_and(Value::is_array) => {
            let new: Vec<Value> = match v {
                Value::Array(items) => items.clone(),
                other => vec![other.clone()],
            };
            let slot = container
                .entry(key.to_string())
                .or_insert_with(|| Value::Array(Vec::new()));
            if !slot.is_array() {
                *slot = Value::Array(Vec::new());
            }
            let items = slot.as_array_mut().expect("an array");
            for item in new {
                let same_value = |x: &Value| {
                    super::get_ci(&item, "value")
                        .is_some_and(|v| super::get_ci(x, "value") == Some(v))
                        && super::get_ci(&item, "type") == super::get_ci(x, "type")
                };
                if let Some(existing) = items.iter_mut().find(|x| **x == item || same_value(x)) {
                    // Adding a value already there: its immutable
                    // sub-attributes keep what they hold.
                    if let (Some(e), Some(n)) = (existing.as_object_mut(), item.as_object()) {
                        let mut n = n.clone();
                        n.retain(|k, _| !immutable.iter().any(|i| i.eq_ignore_ascii_case(k)));
                        merge(e, &n);
                    }
                } else {
                    items.push(item);
                }
            }
        }
        (PatchKind::Replace, Some(v)) if multi && !v.is_array() => {
            container.insert(key.to_string(), Value::Array(vec![v.clone()]));
        }
        (_, Some(Value::Object(fields))) if container.get(key).is_some_and(Value::is_object) => {
            // A complex attribute: the given sub-attributes replace, the rest stay.
            let obj = container
                .get_mut(key)
                .and_then(Value::as_object_mut)
                .expect("an object");
            check_immutable(obj, fields, immutable)?;
            merge(obj, fields);
        }
        (_, Some(v)) => {
            container.insert(key.to_string(), v.clone());
        }
        (_, None) => {}
    }
    Ok(())
}

fn apply_filtered(
    container: &mut Map<String, Value>,
    key: &str,
    filter: &Filter,
    sub: Option<&str>,
    kind: PatchKind,
    value: Option<&Value>,
    immutable: &[&str],
) -> Result<(), ScimError> {
    let matched: Vec<usize> = match container.get(key) {
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .filter(|(_, item)| filter.matches(item))
            .map(|(i, _)| i)
            .collect(),
        Some(Value::Null) | None => Vec::new(),
        Some(_) => {
            return Err(ScimError::invalid_path(format!(
                "{key} is not multi-valued"
            )));
        }
    };
    if matched.is_empty() {
        if kind == PatchKind::Remove {
            // Already gone: removing it again succeeds (IdPs retry).
            return Ok(());
        }
        // Entra replaces `emails[type eq "work"].value` on users without one:
        // build the element from the filter's `eq` terms.
        let Some(terms) = eq_terms(filter) else {
            return Err(ScimError::bad(
                ScimType::NoTarget,
                format!("no {key} value matches the filter"),
            ));
        };
        let mut item = Map::new();
        for (k, v) in terms {
            item.insert(k, v);
        }
        match (sub, value) {
            (Some(sub), Some(v)) => {
                item.insert(sub.to_string(), v.clone());
            }
            (None, Some(Value::Object(fields))) => merge(&mut item, fields),
            _ => {
                return Err(ScimError::invalid_value(format!(
                    "a value for {key} must be an object"
                )));
            }
        }
        let slot = container
            .entry(key.to_string())
            .or_insert_with(|| Value::Array(Vec::new()));
        if !slot.is_array() {
            *slot = Value::Array(Vec::new());
        }
        slot.as_array_mut()
            .expect("an array")
            .push(Value::Object(item));
        return Ok(());
    }
    let Some(Value::Array(items)) = container.get_mut(key) else {
        return Ok(());
    };
    match (sub, kind) {
        (None, PatchKind::Remove) => {
            let mut i = 0;
            items.retain(|_| {
                let keep = !matched.contains(&i);
                i += 1;
                keep
            });
        }
        (Some(sub), _) => {
            for &i in &matched {
                if let Some(obj) = items[i].as_object_mut() {
                    set_sub(obj, sub, kind, value, immutable)?;
                }
            }
        }
        (None, _) => {
            let Some(Value::Object(fields)) = value else {
                return Err(ScimError::invalid_value(format!(
                    "a value for {key}[...] must be an object"
                )));
            };
            for &i in &matched {
                if let Some(obj) = items[i].as_object_mut() {
                    check_immutable(obj, fields, immutable)?;
                    if kind == PatchKind::Replace {
                        // The element is replaced, but what is immutable stays.
                        obj.retain(|k, _| immutable.iter().any(|i| i.eq_ignore_ascii_case(k)));
                    }
                    merge(obj, fields);
                }
            }
        }
    }
    if items.is_empty() {
        container.remove(key);
    }
    Ok(())
}

fn set_sub(
    obj: &mut Map<String, Value>,
    sub: &str,
    kind: PatchKind,
    value: Option<&Value>,
    immutable: &[&str],
) -> Result<(), ScimError> {
    let key = key_of(obj, sub);
    let new = match (kind, value) {
        (PatchKind::Remove, _) | (_, None) | (_, Some(Value::Null)) => None,
        (_, Some(v)) => Some(v),
    };
    if immutable.iter().any(|i| i.eq_ignore_ascii_case(sub))
        && let Some(old) = obj.get(&key).filter(|v| !v.is_null())
        && new != Some(old)
    {
        return Err(immutable_error(sub));
    }
    match new {
        None => {
            obj.remove(&key);
        }
        Some(v) => {
            obj.insert(key, v.clone());
        }
    }
    Ok(())
}

fn immutable_error(sub: &str) -> ScimError {
    ScimError::bad(
        ScimType::Mutability,
        format!("{sub} is immutable: it can be set once, not changed"),
    )
}

/// Refuses `fields` if they change an immutable sub-attribute `obj` holds
/// (a null unassigns, which changes it too).
fn check_immutable(
    obj: &Map<String, Value>,
    fields: &Map<String, Value>,
    immutable: &[&str],
) -> Result<(), ScimError> {
    for (k, v) in fields {
        if !immutable.iter().any(|i| i.eq_ignore_ascii_case(k)) {
            continue;
        }
        if let Some(old) = obj.get(&key_of(obj, k)).filter(|o| !o.is_null())
            && old != v
        {
            return Err(immutable_error(k));
        }
    }
    Ok(())
}

/// Overwrites `base`'s keys with `fields`' (case-insensitively); null removes.
pub(crate) fn merge(base: &mut Map<String, Value>, fields: &Map<String, Value>) {
    for (k, v) in fields {
        let key = key_of(base, k);
        if v.is_null() {
            base.remove(&key);
        } else {
            base.insert(key, v.clone());
        }
    }
}

/// The existing key matching `name` case-insensitively, else `name`.
pub(crate) fn key_of(map: &Map<String, Value>, name: &str) -> String {
    if map.contains_key(name) {
        return name.to_string();
    }
    map.keys()
        .find(|k| k.eq_ignore_ascii_case(name))
        .cloned()
        .unwrap_or_else(|| name.to_string())
}

/// `a eq x and b eq y` as [(a, x), (b, y)]; None for any other shape.
fn eq_terms(filter: &Filter) -> Option<Vec<(String, Value)>> {
    match filter {
        Filter::Compare {
            path,
            op: CompareOp::Eq,
            value,
        } if path.schema.is_none() && path.sub_attr.is_none() && !value.is_null() => {
            Some(vec![(path.name.clone(), value.clone())])
        }
        Filter::And(l, r) => {
            let mut terms = eq_terms(l)?;
            terms.extend(eq_terms(r)?);
            Some(terms)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests;
