//! Attribute paths and value paths.
//!
//! Resolution rules (RFC 7643/7644): names and schema URNs match keys
//! case-insensitively; `null` is the same as absent; multi-valued attributes
//! are flattened so callers see one entry per value, in document order.

use std::fmt;
use std::str::FromStr;

use serde_json::Value;

use crate::error::ParseError;
use crate::filter::Filter;
use crate::parser::Parser;

/// Attributes of schemas with this prefix live at the top level of a
/// resource; any other URN names an extension object keyed by the URN.
const CORE_SCHEMA_PREFIX: &str = "urn:ietf:params:scim:schemas:core:";

/// `[schemaURN ":"] attrName ["." subAttr]`, e.g. `name.givenName`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AttrPath {
    pub schema: Option<String>,
    pub name: String,
    pub sub_attr: Option<String>,
}

/// `attrPath | attrPath "[" valFilter "]" ["." subAttr]`, the PATCH `path`
/// form, e.g. `emails[type eq "work"].value`.
///
/// The canonical (parsed) form keeps `sub_attr` as `None` unless a filter is
/// present: `name.givenName` is stored in `attr.sub_attr`.
#[derive(Clone, Debug, PartialEq)]
pub struct ValuePath {
    pub attr: AttrPath,
    pub filter: Option<Filter>,
    pub sub_attr: Option<String>,
}

/// Parses an attribute path such as `urn:...:User:manager.value`.
pub fn parse_attr_path(s: &str) -> Result<AttrPath, ParseError> {
    Parser::new(s).complete_attr_path()
}

/// Parses a PATCH-style value path such as `emails[primary eq true].value`.
pub fn parse_value_path(s: &str) -> Result<ValuePath, ParseError> {
    Parser::new(s).complete_value_path()
}

impl AttrPath {
    /// Every non-null value the path designates, arrays flattened, in
    /// document order. Absent attributes give an empty list.
    pub fn select<'a>(&self, resource: &'a Value) -> Vec<&'a Value> {
        let mut out = Vec::new();
        let Some(attr) = self.base(resource).and_then(|b| get_ci(b, &self.name)) else {
            return out;
        };
        match &self.sub_attr {
            None => push_flat(attr, &mut out),
            Some(sub) => {
                for item in flat(attr) {
                    if let Some(v) = get_ci(item, sub) {
                        push_flat(v, &mut out);
                    }
                }
            }
        }
        out
    }

    /// The object holding this path's attribute: the resource itself for
    /// core schemas, or the extension object keyed by the URN.
    fn base<'a>(&self, resource: &'a Value) -> Option<&'a Value> {
        let Some(urn) = &self.schema else {
            return Some(resource);
        };
        if let Some(ext) = get_ci(resource, urn) {
            return Some(ext);
        }
        let is_core = urn
            .get(..CORE_SCHEMA_PREFIX.len())
            .is_some_and(|p| p.eq_ignore_ascii_case(CORE_SCHEMA_PREFIX));
        is_core.then_some(resource)
    }

    /// The absolute path of `rel`, a path written inside `self[...]`:
    /// `emails` + `type` gives `emails.type`. Paths that cannot be joined
    /// (schema-qualified or already two levels) are returned unchanged.
    pub fn join(&self, rel: &AttrPath) -> AttrPath {
        if self.sub_attr.is_some() || rel.schema.is_some() || rel.sub_attr.is_some() {
            return rel.clone();
        }
        AttrPath {
            schema: self.schema.clone(),
            name: self.name.clone(),
            sub_attr: Some(rel.name.clone()),
        }
    }
}

impl ValuePath {
    /// Every value the path designates: the attribute's values, narrowed to
    /// elements matching the filter, then their sub-attribute if any.
    /// Strings in the filter compare case-insensitively.
    pub fn select<'a>(&self, resource: &'a Value) -> Vec<&'a Value> {
        self.select_with(resource, &|_| false)
    }

    /// Like [`ValuePath::select`], with `case_exact` deciding per absolute
    /// attribute path (e.g. `emails.value`) whether strings compare exactly.
    pub fn select_with<'a>(
        &self,
        resource: &'a Value,
        case_exact: &dyn Fn(&AttrPath) -> bool,
    ) -> Vec<&'a Value> {
        let mut items = self.attr.select(resource);
        if let Some(filter) = &self.filter {
            let scoped = |rel: &AttrPath| case_exact(&self.attr.join(rel));
            items.retain(|item| filter.matches_with(item, &scoped));
        }
        let Some(sub) = &self.sub_attr else {
            return items;
        };
        let mut out = Vec::new();
        for item in items {
            if let Some(v) = get_ci(item, sub) {
                push_flat(v, &mut out);
            }
        }
        out
    }
}

/// Object member lookup, exact key first, then ASCII case-insensitive.
pub(crate) fn get_ci<'a>(value: &'a Value, key: &str) -> Option<&'a Value> {
    let obj = value.as_object()?;
    obj.get(key).or_else(|| {
        obj.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v)
    })
}

/// The elements of an array, or the value itself.
fn flat(value: &Value) -> impl Iterator<Item = &Value> {
    match value {
        Value::Array(items) => items.iter(),
        other => std::slice::from_ref(other).iter(),
    }
}

/// Appends `value` (or its elements), skipping nulls: null means unassigned.
fn push_flat<'a>(value: &'a Value, out: &mut Vec<&'a Value>) {
    out.extend(flat(value).filter(|v| !v.is_null()));
}

impl fmt::Display for AttrPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(schema) = &self.schema {
            write!(f, "{schema}:")?;
        }
        f.write_str(&self.name)?;
        if let Some(sub) = &self.sub_attr {
            write!(f, ".{sub}")?;
        }
        Ok(())
    }
}

impl fmt::Display for ValuePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.attr)?;
        if let Some(filter) = &self.filter {
            write!(f, "[{filter}]")?;
        }
        if let Some(sub) = &self.sub_attr {
            write!(f, ".{sub}")?;
        }
        Ok(())
    }
}

impl FromStr for AttrPath {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_attr_path(s)
    }
}

impl FromStr for ValuePath {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_value_path(s)
    }
}
