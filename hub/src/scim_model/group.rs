//! SCIM Group <-> group rows.

use serde_json::{Map, Value, json};

use super::error::{ScimError, ScimType};
use super::schema::GROUP_URN;
use crate::store::ScimGroupRecord;

/// What a Group body (POST, PUT, or a resource after PATCH) asks to store.
pub struct GroupInput {
    pub display_name: String,
    pub external_id: Option<String>,
    pub members: Vec<String>,
}

pub fn from_body(body: &Value) -> Result<GroupInput, ScimError> {
    if !body.is_object() {
        return Err(ScimError::bad(
            ScimType::InvalidSyntax,
            "a Group must be a JSON object",
        ));
    }
    let display_name = match super::get_ci(body, "displayName") {
        Some(Value::String(s)) if !s.trim().is_empty() => s.clone(),
        _ => return Err(ScimError::invalid_value("displayName is required")),
    };
    let external_id = match super::get_ci(body, "externalId") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => return Err(ScimError::invalid_value("externalId must be a string")),
    };
    let members = match super::get_ci(body, "members") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items
            .iter()
            .map(|m| match super::get_ci(m, "value") {
                Some(Value::String(id)) => Ok(id.clone()),
                _ => Err(ScimError::invalid_value("each member needs a string value")),
            })
            .collect::<Result<_, _>>()?,
        Some(_) => return Err(ScimError::invalid_value("members must be an array")),
    };
    Ok(GroupInput {
        display_name,
        external_id,
        members,
    })
}

/// The group's writable attributes, for PATCH to start from.
pub fn attributes(record: &ScimGroupRecord, base: &str) -> Map<String, Value> {
    let mut out = Map::new();
    out.insert("displayName".into(), record.display_name.clone().into());
    if let Some(e) = &record.external_id {
        out.insert("externalId".into(), e.clone().into());
    }
    let members: Vec<Value> = record
        .members
        .iter()
        .map(|(id, display)| {
            let mut m =
                json!({ "value": id, "$ref": format!("{base}/Users/{id}"), "type": "User" });
            if let Some(d) = display {
                m["display"] = d.clone().into();
            }
            m
        })
        .collect();
    out.insert("members".into(), members.into());
    out
}

pub fn render(record: &ScimGroupRecord, base: &str) -> Value {
    let mut out = attributes(record, base);
    out.insert("schemas".into(), json!([GROUP_URN]));
    out.insert("id".into(), record.id.clone().into());
    out.insert(
        "meta".into(),
        super::meta(
            "Group",
            record.created_at,
            record.updated_at,
            record.version,
            format!("{base}/Groups/{}", record.id),
        ),
    );
    Value::Object(out)
}
