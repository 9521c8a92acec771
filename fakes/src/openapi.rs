//! Checks a request against a vendor's OpenAPI 3.0 description: the
//! operation exists for the method and path, required parameters (query and
//! header) are present and allowed, the content type is one the operation
//! takes, and the body validates against the operation's request schema.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde_json::{Map, Value, json};

/// Where the vendors' descriptions live: `HUB_VENDOR_SPECS`, or
/// `shared/vendor-specs` beside the project's checkout.
pub fn specs_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("HUB_VENDOR_SPECS") {
        return dir.into();
    }
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/vendor-specs")
}

/// A loaded OpenAPI document, ready to check requests.
pub struct Spec {
    name: String,
    doc: Value,
    /// `doc` as JSON Schema (see [`openapi_to_json_schema`]).
    schema_doc: Value,
    /// Compiled request schemas, by JSON pointer.
    validators: Mutex<HashMap<String, Arc<jsonschema::Validator>>>,
    /// The path part of `servers[0].url` (`/3.0` for Mailchimp), which
    /// requests carry before the operation's path.
    base_path: String,
    operations: Vec<Operation>,
}

struct Operation {
    method: String,
    template: Vec<Segment>,
    /// JSON pointer to the operation object.
    pointer: String,
}

#[derive(Debug, PartialEq)]
enum Segment {
    Literal(String),
    Param,
}

/// One way a request differs from the description.
#[derive(Debug, Clone, PartialEq)]
pub struct Violation(pub String);

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// What a request is made of, for [`Spec::check`].
pub struct RequestParts<'a> {
    pub method: &'a str,
    pub path: &'a str,
    /// Query pairs, decoded.
    pub query: &'a [(String, String)],
    /// Lowercased header names and their values.
    pub headers: &'a [(String, String)],
    pub body: &'a [u8],
}

impl Spec {
    /// Loads `vendor-specs/RELATIVE` (JSON or YAML). Panics with the path
    /// when the file is missing: a fake without its description proves nothing.
    pub fn load(relative: &str) -> Spec {
        let path = specs_dir().join(relative);
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
            panic!(
                "vendor description {} is missing ({e}); set HUB_VENDOR_SPECS",
                path.display()
            )
        });
        let doc = if relative.ends_with(".json") {
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        } else {
            crate::yaml::to_json(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        };
        Self::from_document(relative, doc)
    }

    pub fn from_document(name: &str, doc: Value) -> Spec {
        let base_path = doc
            .pointer("/servers/0/url")
            .and_then(Value::as_str)
            .map(server_path)
            .unwrap_or_default();
        let mut operations = Vec::new();
        if let Some(paths) = doc.get("paths").and_then(Value::as_object) {
            for (template, item) in paths {
                let Some(item) = item.as_object() else {
                    continue;
                };
                for method in ["get", "put", "post", "delete", "patch", "head", "options"] {
                    if item.contains_key(method) {
                        operations.push(Operation {
                            method: method.to_ascii_uppercase(),
                            template: parse_template(template),
                            pointer: format!("/paths/{}/{method}", escape_pointer(template)),
                        });
                    }
                }
            }
        }
        let mut schema_doc = doc.clone();
        openapi_to_json_schema(&mut schema_doc);
        Spec {
            name: name.to_string(),
            doc,
            schema_doc,
            validators: Mutex::new(HashMap::new()),
            base_path,
            operations,
        }
    }

    /// The operation a method and path hit, if the description has one.
    /// Literal segments win over parameters (`/batch/upsert` over `/{id}`).
    /// A server path that repeats the operations' own prefix (RudderStack's
    /// `servers: [{url: /v1}]` with paths `/v1/batch`) is tried both ways.
    fn operation(&self, method: &str, path: &str) -> Option<&Operation> {
        let stripped = path.strip_prefix(&self.base_path).unwrap_or(path);
        self.operation_at(method, stripped)
            .or_else(|| self.operation_at(method, path))
    }

    fn operation_at(&self, method: &str, path: &str) -> Option<&Operation> {
        let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
        self.operations
            .iter()
            .filter(|op| op.method.eq_ignore_ascii_case(method))
            .filter(|op| {
                op.template.len() == segments.len()
                    && op.template.iter().zip(&segments).all(|(t, s)| match t {
                        Segment::Literal(l) => l == s,
                        Segment::Param => !s.is_empty(),
                    })
            })
            .max_by_key(|op| {
                op.template
                    .iter()
                    .filter(|t| matches!(t, Segment::Literal(_)))
                    .count()
            })
    }

    /// JSON pointers of every JSON request-body schema the document holds.
    pub fn request_schema_pointers(&self) -> Vec<String> {
        let mut out = Vec::new();
        for op in &self.operations {
            let Some(body) = self.doc.pointer(&format!("{}/requestBody", op.pointer)) else {
                continue;
            };
            let base = match body.get("$ref").and_then(Value::as_str) {
                Some(r) => r[1..].to_string(),
                None => format!("{}/requestBody", op.pointer),
            };
            let content = self.resolve(body).get("content").and_then(Value::as_object);
            for media in content.into_iter().flat_map(|c| c.keys()) {
                if media.contains("json") {
                    out.push(format!("{base}/content/{}/schema", escape_pointer(media)));
                }
            }
        }
        out
    }

    /// Every way the request differs from the description (empty: it validates).
    pub fn check(&self, req: &RequestParts<'_>) -> Vec<Violation> {
        let where_ = format!("{} {} {}", self.name, req.method, req.path);
        let Some(op) = self.operation(req.method, req.path) else {
            return vec![Violation(format!("{where_}: no such operation"))];
        };
        let operation = self.doc.pointer(&op.pointer).cloned().unwrap_or_default();
        let mut out = Vec::new();
        self.check_parameters(&where_, &op.pointer, &operation, req, &mut out);
        self.check_body(&where_, &op.pointer, &operation, req, &mut out);
        out
    }

    fn resolve<'a>(&'a self, value: &'a Value) -> &'a Value {
        let mut v = value;
        for _ in 0..8 {
            match v.get("$ref").and_then(Value::as_str) {
                Some(r) if r.starts_with('#') => {
                    v = self.doc.pointer(&r[1..]).unwrap_or(&Value::Null);
                }
                _ => break,
            }
        }
        v
    }

    fn check_parameters(
        &self,
        where_: &str,
        pointer: &str,
        operation: &Value,
        req: &RequestParts<'_>,
        out: &mut Vec<Violation>,
    ) {
        // Path-item parameters apply to every operation under the path.
        let item_pointer = &pointer[..pointer.rfind('/').unwrap_or(0)];
        let shared = self
            .doc
            .pointer(&format!("{item_pointer}/parameters"))
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let own = operation
            .get("parameters")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        for param in shared.iter().chain(own.iter()) {
            let param = self.resolve(param);
            let name = param.get("name").and_then(Value::as_str).unwrap_or("");
            let location = param.get("in").and_then(Value::as_str).unwrap_or("");
            let required = param.get("required").and_then(Value::as_bool) == Some(true);
            let value = match location {
                "query" => req
                    .query
                    .iter()
                    .find(|(k, _)| k == name)
                    .map(|(_, v)| v.as_str()),
                "header" => {
                    let lower = name.to_ascii_lowercase();
                    req.headers
                        .iter()
                        .find(|(k, _)| *k == lower)
                        .map(|(_, v)| v.as_str())
                }
                _ => continue,
            };
            match value {
                None if required => out.push(Violation(format!(
                    "{where_}: required {location} parameter {name:?} is missing"
                ))),
                None => {}
                Some(v) => {
                    let schema = param.get("schema").map(|s| self.resolve(s));
                    let allowed = schema.and_then(|s| s.get("enum")).and_then(Value::as_array);
                    if let Some(allowed) = allowed
                        && !allowed.iter().any(|a| a.as_str() == Some(v))
                    {
                        out.push(Violation(format!(
                            "{where_}: {location} parameter {name:?} is not one of {}",
                            Value::Array(allowed.clone())
                        )));
                    }
                }
            }
        }
    }

    fn check_body(
        &self,
        where_: &str,
        pointer: &str,
        operation: &Value,
        req: &RequestParts<'_>,
        out: &mut Vec<Violation>,
    ) {
        let Some(body_spec) = operation.get("requestBody").map(|b| self.resolve(b)) else {
            if !req.body.is_empty() && req.method != "GET" {
                out.push(Violation(format!("{where_}: the operation takes no body")));
            }
            return;
        };
        let required = body_spec.get("required").and_then(Value::as_bool) == Some(true);
        if req.body.is_empty() {
            if required {
                out.push(Violation(format!("{where_}: the request body is required")));
            }
            return;
        }
        let content_type = req
            .headers
            .iter()
            .find(|(k, _)| k == "content-type")
            .map(|(_, v)| {
                v.split(';')
                    .next()
                    .unwrap_or("")
                    .trim()
                    .to_ascii_lowercase()
            });
        let Some(content_type) = content_type else {
            out.push(Violation(format!("{where_}: no content-type")));
            return;
        };
        let content = body_spec
            .get("content")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        let Some((media, _)) = content
            .iter()
            .find(|(m, _)| m.to_ascii_lowercase() == content_type)
        else {
            let known: Vec<&String> = content.keys().collect();
            out.push(Violation(format!(
                "{where_}: content-type {content_type} is not one of {known:?}"
            )));
            return;
        };
        if !media.contains("json") {
            return;
        }
        let body: Value = match serde_json::from_slice(req.body) {
            Ok(v) => v,
            Err(e) => {
                out.push(Violation(format!("{where_}: body is not JSON: {e}")));
                return;
            }
        };
        let body_pointer = if operation
            .get("requestBody")
            .and_then(|b| b.get("$ref"))
            .is_some()
        {
            let r = operation["requestBody"]["$ref"].as_str().unwrap_or("#");
            r[1..].to_string()
        } else {
            format!("{pointer}/requestBody")
        };
        let schema_pointer = format!("{body_pointer}/content/{}/schema", escape_pointer(media));
        for message in self.validate(&schema_pointer, &body) {
            out.push(Violation(format!("{where_}: body {message}")));
        }
    }

    /// Validates `instance` against the schema at `pointer` (JSON Schema
    /// draft 4, as OpenAPI 3.0 uses, with `nullable` made a type).
    pub fn validate(&self, pointer: &str, instance: &Value) -> Vec<String> {
        let validator = match self.validator(pointer) {
            Ok(v) => v,
            Err(e) => return vec![e],
        };
        validator
            .iter_errors(instance)
            .map(|e| {
                let at = e.instance_path().to_string();
                format!("{}: {e}", if at.is_empty() { "/" } else { &at })
            })
            .collect()
    }
}

impl Spec {
    fn validator(&self, pointer: &str) -> Result<Arc<jsonschema::Validator>, String> {
        let mut cache = self.validators.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(v) = cache.get(pointer) {
            return Ok(v.clone());
        }
        // The whole document is the root, so `#/components/...` refs resolve;
        // a root `$ref` makes draft 4 ignore every sibling key.
        let mut root = self.schema_doc.clone();
        if let Some(obj) = root.as_object_mut() {
            obj.insert("$ref".into(), json!(format!("#{}", fragment(pointer))));
        }
        let validator = jsonschema::options()
            .with_draft(jsonschema::Draft::Draft4)
            .should_validate_formats(false)
            .build(&root)
            .map_err(|e| format!("schema at {pointer} does not compile: {e}"))?;
        let validator = Arc::new(validator);
        cache.insert(pointer.to_string(), validator.clone());
        Ok(validator)
    }
}

/// OpenAPI 3.0's `nullable: true` next to a `type` is JSON Schema's
/// `type: [T, "null"]`; everything else of 3.0 a draft-4 validator reads as is.
fn openapi_to_json_schema(value: &mut Value) {
    match value {
        Value::Object(map) => {
            make_nullable(map);
            for v in map.values_mut() {
                openapi_to_json_schema(v);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(openapi_to_json_schema),
        _ => {}
    }
}

fn make_nullable(map: &mut Map<String, Value>) {
    if map.get("nullable").and_then(Value::as_bool) != Some(true) {
        return;
    }
    if let Some(Value::String(t)) = map.get("type").cloned() {
        map.insert("type".into(), json!([t, "null"]));
        if let Some(Value::Array(allowed)) = map.get_mut("enum")
            && !allowed.contains(&Value::Null)
        {
            allowed.push(Value::Null);
        }
    }
}

fn parse_template(template: &str) -> Vec<Segment> {
    template
        .trim_matches('/')
        .split('/')
        .map(|s| {
            if s.starts_with('{') && s.ends_with('}') {
                Segment::Param
            } else {
                Segment::Literal(s.to_string())
            }
        })
        .collect()
}

/// A JSON pointer as a URI fragment: `{id}` becomes `%7Bid%7D`.
fn fragment(pointer: &str) -> String {
    let mut out = String::with_capacity(pointer.len());
    for c in pointer.chars() {
        if c.is_ascii_alphanumeric() || "-._~/!$&'()*+,;=:@".contains(c) {
            out.push(c);
        } else {
            let mut buf = [0u8; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                out.push_str(&format!("%{b:02X}"));
            }
        }
    }
    out
}

fn escape_pointer(text: &str) -> String {
    text.replace('~', "~0").replace('/', "~1")
}

/// `https://server.api.mailchimp.com/3.0/` -> `/3.0`
fn server_path(url: &str) -> String {
    let after_scheme = url.split_once("://").map(|(_, r)| r).unwrap_or(url);
    match after_scheme.find('/') {
        Some(i) => after_scheme[i..].trim_end_matches('/').to_string(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> Spec {
        Spec::from_document(
            "test",
            json!({
                "openapi": "3.0.1",
                "servers": [{"url": "https://api.example.com/v2/"}],
                "paths": {
                    "/items/{id}": {"get": {"responses": {}}},
                    "/items/batch": {"post": {
                        "parameters": [{"name": "revision", "in": "header", "required": true,
                                        "schema": {"type": "string", "enum": ["2026-07-15"]}}],
                        "requestBody": {"required": true, "content": {"application/json": {
                            "schema": {"$ref": "#/components/schemas/Batch"}}}},
                        "responses": {}}}
                },
                "components": {"schemas": {"Batch": {
                    "type": "object", "required": ["inputs"],
                    "properties": {"inputs": {"type": "array", "items": {
                        "type": "object", "required": ["id"],
                        "properties": {"id": {"type": "string"},
                                       "note": {"type": "string", "nullable": true}}}}}}}}
            }),
        )
    }

    fn check(method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> Vec<Violation> {
        let headers: Vec<(String, String)> = headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        spec().check(&RequestParts {
            method,
            path,
            query: &[],
            headers: &headers,
            body: body.as_bytes(),
        })
    }

    const JSON: (&str, &str) = ("content-type", "application/json");
    const REV: (&str, &str) = ("revision", "2026-07-15");

    #[test]
    fn a_conforming_request_passes() {
        let v = check(
            "POST",
            "/v2/items/batch",
            &[JSON, REV],
            r#"{"inputs":[{"id":"a","note":null}]}"#,
        );
        assert!(v.is_empty(), "{v:?}");
        assert!(check("GET", "/v2/items/42", &[], "").is_empty());
    }

    #[test]
    fn every_kind_of_difference_is_reported() {
        assert!(
            !check("DELETE", "/v2/items/42", &[], "").is_empty(),
            "method"
        );
        assert!(
            !check("POST", "/v2/nothing", &[JSON, REV], "{}").is_empty(),
            "path"
        );
        let missing_header = check("POST", "/v2/items/batch", &[JSON], r#"{"inputs":[]}"#);
        assert!(
            missing_header[0].0.contains("revision"),
            "{missing_header:?}"
        );
        let bad_enum = check(
            "POST",
            "/v2/items/batch",
            &[JSON, ("revision", "2020-01-01")],
            r#"{"inputs":[]}"#,
        );
        assert_eq!(bad_enum.len(), 1);
        let wrong_type = check(
            "POST",
            "/v2/items/batch",
            &[("content-type", "text/plain"), REV],
            r#"{"inputs":[]}"#,
        );
        assert!(wrong_type[0].0.contains("content-type"));
        let bad_body = check(
            "POST",
            "/v2/items/batch",
            &[JSON, REV],
            r#"{"inputs":[{"id":1}]}"#,
        );
        assert_eq!(bad_body.len(), 1, "{bad_body:?}");
        assert!(bad_body[0].0.contains("/inputs/0/id"), "{bad_body:?}");
        assert!(
            !check("POST", "/v2/items/batch", &[JSON, REV], "").is_empty(),
            "required body"
        );
    }
}
