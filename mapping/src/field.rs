//! One output field of a destination and how its value is computed from a subject.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::transform::Transform;

/// Where a field's value comes from.
#[derive(Debug, Clone)]
pub enum FieldSource {
    /// A SCIM value path into the subject (`emails[primary eq true].value`).
    From(scim::ValuePath),
    /// A constant.
    Value(Value),
}

/// A rule producing one output field (`fields.<target>` in the file).
#[derive(Debug, Clone)]
pub struct FieldRule {
    pub target: String,
    pub source: FieldSource,
    pub transforms: Vec<Transform>,
    pub default: Option<Value>,
    /// Lookup table applied after transforms; values without an entry pass through.
    pub map: Option<BTreeMap<String, Value>>,
    /// Purpose that must be granted for the field to be sent.
    pub consent: Option<String>,
}

impl FieldRule {
    /// The field's value for `subject`, or `None` to leave the field out.
    ///
    /// First selected value -> transforms in order -> `map` -> `default` if nothing is left.
    /// Consent is not checked here (see [`crate::Destination::map`]).
    pub fn evaluate(&self, subject: &Value) -> Option<Value> {
        let picked = match &self.source {
            FieldSource::From(path) => path.select(subject).into_iter().next().cloned(),
            FieldSource::Value(v) => Some(v.clone()),
        };
        let transformed = present(picked).and_then(|v| {
            self.transforms
                .iter()
                .try_fold(v, |v, t| present(t.apply(v)))
        });
        let mapped = transformed.map(|v| match &self.map {
            Some(table) => lookup_key(&v)
                .and_then(|k| table.get(&k).cloned())
                .unwrap_or(v),
            None => v,
        });
        present(mapped).or_else(|| self.default.clone())
    }
}

/// Null counts as "nothing", like a missing attribute.
fn present(v: Option<Value>) -> Option<Value> {
    v.filter(|v| !v.is_null())
}

/// `map` keys are strings; scalars are looked up by their text form.
fn lookup_key(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}
