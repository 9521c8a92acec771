//! Checks GraphQL requests against a vendor's schema, as the vendor's server
//! would before executing anything: the document parses and validates
//! against the schema (fields, arguments, types, required arguments), the
//! operation to run is unambiguous, and the variables coerce to the types the
//! operation declares. The schema comes from an introspection result
//! (Shopify publishes its Admin API that way), turned into SDL here because
//! apollo-compiler reads SDL.
//!
//! [`Checked`] gives the fake what it needs to act: the root fields with
//! their arguments resolved to JSON, and [`Checked::project`] to shape an
//! answer to the selection set the client asked for.

use std::fmt::Write as _;
use std::io::Read as _;
use std::sync::Arc;

use apollo_compiler::ExecutableDocument;
use apollo_compiler::Schema;
use apollo_compiler::ast;
use apollo_compiler::executable::{Operation, Selection, SelectionSet};
use apollo_compiler::validation::Valid;
use serde_json::{Map, Value};

/// A vendor schema, validated, ready to check requests.
#[derive(Clone)]
pub struct GraphQlSchema {
    schema: Arc<Valid<Schema>>,
}

impl std::fmt::Debug for GraphQlSchema {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("GraphQlSchema")
    }
}

/// One root field of the operation: `alias: name(args)`.
#[derive(Debug, Clone, PartialEq)]
pub struct RootField {
    /// The key the answer goes under (the alias, or the name).
    pub key: String,
    pub name: String,
    /// Arguments with variables substituted (after coercion).
    pub arguments: Map<String, Value>,
}

/// A request that validated: its operation, root fields and variables.
pub struct Checked {
    document: Valid<ExecutableDocument>,
    operation_name: Option<String>,
    pub is_mutation: bool,
    pub fields: Vec<RootField>,
}

impl GraphQlSchema {
    /// Loads `vendor-specs/RELATIVE`, an introspection result (`.json` or
    /// `.json.gz`). Panics when missing or invalid: a fake without its schema
    /// proves nothing.
    pub fn load_introspection(relative: &str) -> GraphQlSchema {
        let path = crate::openapi::specs_dir().join(relative);
        let bytes = std::fs::read(&path).unwrap_or_else(|e| {
            panic!(
                "vendor schema {} is missing ({e}); set HUB_VENDOR_SPECS",
                path.display()
            )
        });
        let text = if relative.ends_with(".gz") {
            let mut out = String::new();
            flate2::read::GzDecoder::new(&bytes[..])
                .read_to_string(&mut out)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            out
        } else {
            String::from_utf8(bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        };
        let introspection: Value =
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let sdl = introspection_to_sdl(&introspection)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        Self::from_sdl(&sdl, relative)
    }

    pub fn from_sdl(sdl: &str, name: &str) -> GraphQlSchema {
        let schema = Schema::parse_and_validate(sdl, name)
            .unwrap_or_else(|e| panic!("{name}: schema does not validate: {}", e.errors));
        GraphQlSchema {
            schema: Arc::new(schema),
        }
    }

    /// Validates a request body's `query`, `operationName` and `variables`.
    /// The errors are GraphQL error messages, as a server reports them.
    pub fn check(
        &self,
        query: &str,
        operation_name: Option<&str>,
        variables: &Map<String, Value>,
    ) -> Result<Checked, Vec<String>> {
        let document = ExecutableDocument::parse_and_validate(&self.schema, query, "query.graphql")
            .map_err(|e| e.errors.iter().map(|d| d.to_string()).collect::<Vec<_>>())?;
        let operation = document
            .operations
            .get(operation_name)
            .map_err(|e| vec![e.message().to_string()])?;
        let values: serde_json_bytes::Map<serde_json_bytes::ByteString, serde_json_bytes::Value> =
            serde_json::from_value(Value::Object(variables.clone()))
                .map_err(|e| vec![format!("variables: {e}")])?;
        let coerced =
            apollo_compiler::request::coerce_variable_values(&self.schema, operation, &values)
                .map_err(|e| vec![e.message().to_string()])?;
        let coerced: Map<String, Value> = serde_json::to_value(&*coerced)
            .ok()
            .and_then(|v| v.as_object().cloned())
            .unwrap_or_default();
        let fields = root_fields(&document, operation, &coerced)?;
        Ok(Checked {
            is_mutation: operation.operation_type == ast::OperationType::Mutation,
            operation_name: operation.name.as_ref().map(|n| n.to_string()),
            document,
            fields,
        })
    }
}

impl Checked {
    /// Shapes `full` (everything the fake knows about a root field's value)
    /// to what the request selected under `key`: only selected fields, under
    /// their aliases, recursively.
    pub fn project(&self, key: &str, full: &Value) -> Value {
        let Ok(operation) = self.document.operations.get(self.operation_name.as_deref()) else {
            return Value::Null;
        };
        let selection = find_root(&self.document, &operation.selection_set, key);
        match selection {
            Some(set) => project(&self.document, set, full),
            None => Value::Null,
        }
    }
}

fn find_root<'a>(
    document: &'a ExecutableDocument,
    set: &'a SelectionSet,
    key: &str,
) -> Option<&'a SelectionSet> {
    for selection in &set.selections {
        match selection {
            Selection::Field(f) => {
                if f.response_key().as_str() == key {
                    return Some(&f.selection_set);
                }
            }
            Selection::InlineFragment(i) => {
                if let Some(s) = find_root(document, &i.selection_set, key) {
                    return Some(s);
                }
            }
            Selection::FragmentSpread(s) => {
                if let Some(fragment) = document.fragments.get(&s.fragment_name)
                    && let Some(found) = find_root(document, &fragment.selection_set, key)
                {
                    return Some(found);
                }
            }
        }
    }
    None
}

fn project(document: &ExecutableDocument, set: &SelectionSet, full: &Value) -> Value {
    match full {
        Value::Array(items) => Value::Array(
            items
                .iter()
                .map(|item| project(document, set, item))
                .collect(),
        ),
        Value::Object(object) if !set.selections.is_empty() => {
            let mut out = Map::new();
            project_into(document, set, object, &mut out);
            Value::Object(out)
        }
        other => other.clone(),
    }
}

fn project_into(
    document: &ExecutableDocument,
    set: &SelectionSet,
    object: &Map<String, Value>,
    out: &mut Map<String, Value>,
) {
    for selection in &set.selections {
        match selection {
            Selection::Field(f) => {
                let value = if f.name == "__typename" {
                    Value::String(set.ty.to_string())
                } else {
                    object
                        .get(f.name.as_str())
                        .map(|v| project(document, &f.selection_set, v))
                        .unwrap_or(Value::Null)
                };
                out.insert(f.response_key().to_string(), value);
            }
            Selection::InlineFragment(i) => project_into(document, &i.selection_set, object, out),
            Selection::FragmentSpread(s) => {
                if let Some(fragment) = document.fragments.get(&s.fragment_name) {
                    project_into(document, &fragment.selection_set, object, out);
                }
            }
        }
    }
}

fn root_fields(
    document: &ExecutableDocument,
    operation: &Operation,
    variables: &Map<String, Value>,
) -> Result<Vec<RootField>, Vec<String>> {
    let mut out = Vec::new();
    collect_root(document, &operation.selection_set, variables, &mut out);
    Ok(out)
}

fn collect_root(
    document: &ExecutableDocument,
    set: &SelectionSet,
    variables: &Map<String, Value>,
    out: &mut Vec<RootField>,
) {
    for selection in &set.selections {
        match selection {
            Selection::Field(f) => {
                let arguments = f
                    .arguments
                    .iter()
                    .map(|a| (a.name.to_string(), literal(&a.value, variables)))
                    .collect();
                out.push(RootField {
                    key: f.response_key().to_string(),
                    name: f.name.to_string(),
                    arguments,
                });
            }
            Selection::InlineFragment(i) => {
                collect_root(document, &i.selection_set, variables, out)
            }
            Selection::FragmentSpread(s) => {
                if let Some(fragment) = document.fragments.get(&s.fragment_name) {
                    collect_root(document, &fragment.selection_set, variables, out);
                }
            }
        }
    }
}

/// An argument's value as JSON, with variables substituted.
fn literal(value: &ast::Value, variables: &Map<String, Value>) -> Value {
    match value {
        ast::Value::Null => Value::Null,
        ast::Value::Enum(name) => Value::String(name.to_string()),
        ast::Value::Variable(name) => variables.get(name.as_str()).cloned().unwrap_or(Value::Null),
        ast::Value::String(s) => Value::String(s.clone()),
        ast::Value::Float(f) => f
            .try_to_f64()
            .ok()
            .and_then(serde_json::Number::from_f64)
            .map(Value::Number)
            .unwrap_or(Value::Null),
        ast::Value::Int(i) => i
            .try_to_i32()
            .map(|n| Value::from(n as i64))
            .unwrap_or(Value::Null),
        ast::Value::Boolean(b) => Value::Bool(*b),
        ast::Value::List(items) => {
            Value::Array(items.iter().map(|v| literal(v, variables)).collect())
        }
        ast::Value::Object(fields) => Value::Object(
            fields
                .iter()
                .map(|(k, v)| (k.to_string(), literal(v, variables)))
                .collect(),
        ),
    }
}

/// The SDL of an introspection result (`{"data": {"__schema": ...}}` or
/// `{"__schema": ...}`). Descriptions and directive applications are left
/// out: validation does not read them.
pub fn introspection_to_sdl(introspection: &Value) -> Result<String, String> {
    let schema = introspection
        .pointer("/data/__schema")
        .or_else(|| introspection.get("__schema"))
        .ok_or("no __schema in the introspection result")?;
    let mut sdl = String::new();
    let root = |key: &str| {
        schema
            .get(key)
            .and_then(|t| t.get("name"))
            .and_then(Value::as_str)
    };
    sdl.push_str("schema {\n");
    for (op, key) in [
        ("query", "queryType"),
        ("mutation", "mutationType"),
        ("subscription", "subscriptionType"),
    ] {
        if let Some(name) = root(key) {
            let _ = writeln!(sdl, "  {op}: {name}");
        }
    }
    sdl.push_str("}\n");
    for directive in schema
        .get("directives")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let name = str_of(directive, "name")?;
        if ["skip", "include", "deprecated", "specifiedBy"].contains(&name) {
            continue;
        }
        let locations: Vec<&str> = directive
            .get("locations")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        let repeatable = directive.get("isRepeatable").and_then(Value::as_bool) == Some(true);
        let _ = writeln!(
            sdl,
            "directive @{name}{}{} on {}",
            arguments(directive.get("args"))?,
            if repeatable { " repeatable" } else { "" },
            locations.join(" | ")
        );
    }
    for ty in schema
        .get("types")
        .and_then(Value::as_array)
        .ok_or("no types")?
    {
        let name = str_of(ty, "name")?;
        if name.starts_with("__") {
            continue;
        }
        match str_of(ty, "kind")? {
            "SCALAR" => {
                if !["String", "Int", "Float", "Boolean", "ID"].contains(&name) {
                    let _ = writeln!(sdl, "scalar {name}");
                }
            }
            "OBJECT" | "INTERFACE" => {
                let keyword = if str_of(ty, "kind")? == "OBJECT" {
                    "type"
                } else {
                    "interface"
                };
                let interfaces: Vec<&str> = ty
                    .get("interfaces")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter_map(|i| i.get("name").and_then(Value::as_str))
                    .collect();
                let implements = if interfaces.is_empty() {
                    String::new()
                } else {
                    format!(" implements {}", interfaces.join(" & "))
                };
                let _ = writeln!(sdl, "{keyword} {name}{implements} {{");
                for field in ty
                    .get("fields")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    let _ = writeln!(
                        sdl,
                        "  {}{}: {}",
                        str_of(field, "name")?,
                        arguments(field.get("args"))?,
                        type_ref(&field["type"])?
                    );
                }
                sdl.push_str("}\n");
            }
            "UNION" => {
                let members: Vec<&str> = ty
                    .get("possibleTypes")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter_map(|t| t.get("name").and_then(Value::as_str))
                    .collect();
                let _ = writeln!(sdl, "union {name} = {}", members.join(" | "));
            }
            "ENUM" => {
                let _ = writeln!(sdl, "enum {name} {{");
                for value in ty
                    .get("enumValues")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    let _ = writeln!(sdl, "  {}", str_of(value, "name")?);
                }
                sdl.push_str("}\n");
            }
            "INPUT_OBJECT" => {
                let one_of = ty.get("isOneOf").and_then(Value::as_bool) == Some(true);
                let _ = writeln!(
                    sdl,
                    "input {name}{} {{",
                    if one_of { " @oneOf" } else { "" }
                );
                for field in ty
                    .get("inputFields")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    let _ = writeln!(sdl, "  {}", input_value(field)?);
                }
                sdl.push_str("}\n");
            }
            other => return Err(format!("type {name}: unknown kind {other}")),
        }
    }
    Ok(sdl)
}

fn str_of<'a>(value: &'a Value, key: &str) -> Result<&'a str, String> {
    value
        .get(key)
        .and_then(Value::as_str)
        .ok_or_else(|| format!("missing {key}"))
}

fn arguments(args: Option<&Value>) -> Result<String, String> {
    let args: Vec<String> = args
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(input_value)
        .collect::<Result<_, _>>()?;
    Ok(if args.is_empty() {
        String::new()
    } else {
        format!("({})", args.join(", "))
    })
}

fn input_value(value: &Value) -> Result<String, String> {
    let mut out = format!("{}: {}", str_of(value, "name")?, type_ref(&value["type"])?);
    if let Some(default) = value.get("defaultValue").and_then(Value::as_str) {
        out.push_str(" = ");
        out.push_str(default);
    }
    Ok(out)
}

fn type_ref(ty: &Value) -> Result<String, String> {
    match str_of(ty, "kind")? {
        "NON_NULL" => Ok(format!("{}!", type_ref(&ty["ofType"])?)),
        "LIST" => Ok(format!("[{}]", type_ref(&ty["ofType"])?)),
        _ => Ok(str_of(ty, "name")?.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema() -> GraphQlSchema {
        let introspection = json!({"data": {"__schema": {
        "queryType": {"name": "Query"}, "mutationType": {"name": "Mutation"},
        "subscriptionType": null, "directives": [],
        "types": [
            {"kind": "OBJECT", "name": "Query", "fields": [
                {"name": "thing", "args": [{"name": "id", "defaultValue": null,
                    "type": {"kind": "NON_NULL", "ofType": {"kind": "SCALAR", "name": "ID"}}}],
                 "type": {"kind": "OBJECT", "name": "Thing"}}], "interfaces": []},
            {"kind": "OBJECT", "name": "Mutation", "fields": [
                {"name": "thingCreate", "args": [{"name": "input", "defaultValue": null,
                    "type": {"kind": "NON_NULL", "ofType": {"kind": "INPUT_OBJECT", "name": "ThingInput"}}}],
                 "type": {"kind": "OBJECT", "name": "Thing"}}], "interfaces": []},
            {"kind": "OBJECT", "name": "Thing", "interfaces": [], "fields": [
                {"name": "id", "args": [], "type": {"kind": "SCALAR", "name": "ID"}},
                {"name": "state", "args": [], "type": {"kind": "ENUM", "name": "State"}}]},
            {"kind": "ENUM", "name": "State", "enumValues": [{"name": "ON"}, {"name": "OFF"}]},
            {"kind": "INPUT_OBJECT", "name": "ThingInput", "inputFields": [
                {"name": "state", "defaultValue": null,
                 "type": {"kind": "NON_NULL", "ofType": {"kind": "ENUM", "name": "State"}}},
                {"name": "tags", "defaultValue": null,
                 "type": {"kind": "LIST", "ofType": {"kind": "NON_NULL", "ofType": {"kind": "SCALAR", "name": "String"}}}}]}
        ]}}});
        GraphQlSchema::from_sdl(&introspection_to_sdl(&introspection).unwrap(), "test")
    }

    fn vars(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap()
    }

    #[test]
    fn a_valid_mutation_gives_its_root_fields_and_projects_answers() {
        let q = "mutation M($a: ThingInput!) { one: thingCreate(input: $a) { id } two: thingCreate(input: {state: OFF}) { state } }";
        let checked = schema()
            .check(q, None, &vars(json!({"a": {"state": "ON", "tags": ["x"]}})))
            .unwrap();
        assert!(checked.is_mutation);
        assert_eq!(checked.fields.len(), 2);
        assert_eq!(checked.fields[0].key, "one");
        assert_eq!(checked.fields[0].arguments["input"]["state"], "ON");
        assert_eq!(checked.fields[1].arguments["input"]["state"], "OFF");
        let full = json!({"id": "T1", "state": "ON"});
        assert_eq!(checked.project("one", &full), json!({"id": "T1"}));
        assert_eq!(checked.project("two", &full), json!({"state": "ON"}));
    }

    #[test]
    fn unknown_fields_bad_enums_and_missing_variables_are_refused() {
        let s = schema();
        assert!(
            s.check("{ thing(id: 1) { nope } }", None, &Map::new())
                .is_err()
        );
        let q = "mutation($a: ThingInput!) { thingCreate(input: $a) { id } }";
        assert!(s.check(q, None, &Map::new()).is_err(), "missing variable");
        assert!(
            s.check(q, None, &vars(json!({"a": {"state": "MAYBE"}})))
                .is_err(),
            "bad enum"
        );
        assert!(
            s.check(q, None, &vars(json!({"a": {"state": "ON", "extra": 1}})))
                .is_err(),
            "unknown input field"
        );
        assert!(
            s.check("{ thing { id } }", None, &Map::new()).is_err(),
            "required arg"
        );
    }
}
