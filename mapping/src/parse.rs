//! Validation of a parsed YAML tree into a [`Destination`], collecting every error.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::destination::{Destination, OnDelete, OnWithdraw};
use crate::error::{Errors, MappingError};
use crate::field::{FieldRule, FieldSource};
use crate::settings::{Settings, resolve};
use crate::transform::Transform;
use crate::tree::{self, Key, Kind, Node, Pos, join};

/// Keys accepted at the top level of a mapping file.
pub(crate) const TOP_LEVEL_KEYS: &[&str] = &[
    "destination",
    "connector",
    "enabled",
    "brand",
    "settings",
    "consent",
    "on_delete",
    "on_withdraw",
    "when",
    "fields",
];

/// Keys accepted in one `fields.<name>` entry.
pub(crate) const FIELD_KEYS: &[&str] = &["from", "value", "transform", "default", "map", "consent"];

/// Parses and validates one mapping file's text. `file` is only used in errors.
///
/// Returns every error found in the file, not just the first.
pub fn parse_file(
    file: &Path,
    text: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Destination, Vec<MappingError>> {
    let loaded = tree::load(text);
    let mut v = Validator {
        errors: Errors::new(file),
        env,
    };
    for e in &loaded.errors {
        v.errors.push(&e.key_path, e.pos, e.reason.clone());
    }
    let Some(root) = &loaded.root else {
        if v.errors.is_empty() {
            v.errors.push(
                "",
                Pos::START,
                "the file is empty; expected a mapping with destination, connector and fields",
            );
        }
        return Err(v.errors.into_vec());
    };
    let dest = v.destination(root);
    match dest {
        Some(mut d) if v.errors.is_empty() => {
            d.file = file.to_path_buf();
            d.positions = loaded.positions;
            d.source_sha256 = hex::encode(Sha256::digest(text.as_bytes()));
            Ok(d)
        }
        _ => Err(v.errors.into_vec()),
    }
}

struct Validator<'e> {
    errors: Errors,
    env: &'e dyn Fn(&str) -> Option<String>,
}

/// A checked mapping node: its path and entries, for key lookups.
struct Obj<'a> {
    node: &'a Node,
    path: String,
    entries: &'a [(Key, Node)],
}

impl<'a> Obj<'a> {
    /// The value of `key`; an explicit null counts as absent.
    fn get(&self, key: &str) -> Option<(&'a Key, &'a Node)> {
        self.entries
            .iter()
            .find(|(k, n)| k.text == key && !n.is_null())
            .map(|(k, n)| (k, n))
    }

    fn path_of(&self, key: &str) -> String {
        join(&self.path, key)
    }
}

/// Where to report a problem with a whole entry: the value when it sits on the key's line
/// (scalars, flow collections), else the key.
fn entry_pos(key: &Key, node: &Node) -> Pos {
    if node.pos.line == key.pos.line {
        node.pos
    } else {
        key.pos
    }
}

impl Validator<'_> {
    fn destination(&mut self, root: &Node) -> Option<Destination> {
        let top = self.mapping(root, "", TOP_LEVEL_KEYS)?;
        let name = self.required(&top, "destination").and_then(|(_, n)| {
            let s = self.string(n, "destination")?;
            if is_destination_name(&s) {
                Some(s)
            } else {
                self.errors.push(
                    "destination",
                    n.pos,
                    format!(
                        "invalid destination name {s:?}; use lowercase letters, digits, \"_\" \
                         and \"-\", starting with a letter or digit"
                    ),
                );
                None
            }
        });
        let connector = self.required(&top, "connector").and_then(|(_, n)| {
            let s = self.string(n, "connector")?;
            if !s.is_empty()
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "_-".contains(c))
            {
                Some(s)
            } else {
                self.errors.push(
                    "connector",
                    n.pos,
                    format!("invalid connector {s:?}; use letters, digits, \"_\" and \"-\""),
                );
                None
            }
        });
        let enabled = match top.get("enabled") {
            Some((_, n)) => match &n.kind {
                Kind::Scalar(s) if s.value.is_boolean() => s.value.as_bool(),
                _ => {
                    self.type_error(n, "enabled", "a boolean (true or false)");
                    None
                }
            },
            None => Some(true),
        };
        let brand = match top.get("brand") {
            Some((_, n)) => self.non_empty_string(n, "brand").map(Some),
            None => Some(None),
        };
        let settings = match top.get("settings") {
            Some((_, n)) if matches!(n.kind, Kind::Map(_)) => {
                // A disabled destination may name secrets this machine lacks:
                // keep the placeholder; it is resolved when it is enabled.
                let env = self.env;
                let lenient = |k: &str| env(k).or_else(|| Some(format!("${{env:{k}}}")));
                let env: &dyn Fn(&str) -> Option<String> = if enabled == Some(false) {
                    &lenient
                } else {
                    env
                };
                Some(resolve(n, "settings", env, &mut self.errors))
            }
            Some((_, n)) => {
                self.type_error(n, "settings", "a mapping");
                None
            }
            None => Some(Value::Object(Map::new())),
        };
        let consent = match top.get("consent") {
            Some((_, n)) => self.purposes(n, "consent"),
            None => Some(Vec::new()),
        };
        let on_delete = self.choice(&top, "on_delete", &OnDelete::ALL, OnDelete::as_str);
        let on_withdraw = self.choice(&top, "on_withdraw", &OnWithdraw::ALL, OnWithdraw::as_str);
        let when = match top.get("when") {
            Some((_, n)) => self.filter(n, "when").map(Some),
            None => Some(None),
        };
        let fields = self
            .required(&top, "fields")
            .and_then(|(_, n)| self.fields(n, "fields"));

        Some(Destination {
            name: name?,
            connector: connector?,
            enabled: enabled?,
            brand: brand?,
            settings: Settings::from(settings?),
            consent: consent?,
            on_delete: on_delete?,
            on_withdraw: on_withdraw?,
            when: when?,
            fields: fields?,
            // Filled in by `parse_file`, which owns these.
            file: Default::default(),
            positions: Default::default(),
            source_sha256: String::new(),
        })
    }

    fn fields(&mut self, node: &Node, path: &str) -> Option<Vec<FieldRule>> {
        let Kind::Map(entries) = &node.kind else {
            self.type_error(node, path, "a mapping of output field names to rules");
            return None;
        };
        let mut rules = Vec::with_capacity(entries.len());
        let mut ok = true;
        for (key, rule) in entries {
            match self.field(key, rule, &join(path, &key.text)) {
                Some(r) => rules.push(r),
                None => ok = false,
            }
        }
        ok.then_some(rules)
    }

    fn field(&mut self, key: &Key, node: &Node, path: &str) -> Option<FieldRule> {
        if key.text.is_empty() {
            self.errors
                .push(path, key.pos, "output field names must not be empty");
            return None;
        }
        let obj = self.mapping(node, path, FIELD_KEYS)?;
        let source = match (obj.get("from"), obj.get("value")) {
            (Some((_, from)), None) => self.value_path(from, &obj.path_of("from")),
            (None, Some((_, value))) => Some(FieldSource::Value(value.to_json())),
            (Some(_), Some((vk, _))) => {
                self.errors.push(
                    path,
                    vk.pos,
                    "use either `from` (a SCIM value path) or `value` (a constant), not both",
                );
                None
            }
            (None, None) => {
                self.errors.push(
                    path,
                    entry_pos(key, node),
                    "needs `from` (a SCIM value path) or `value` (a constant)",
                );
                None
            }
        };
        let transforms = match obj.get("transform") {
            Some((_, n)) => self.transforms(n, &obj.path_of("transform")),
            None => Some(Vec::new()),
        };
        let map = match obj.get("map") {
            Some((_, n)) => match &n.kind {
                Kind::Map(entries) => Some(Some(
                    entries
                        .iter()
                        .map(|(k, v)| (k.text.clone(), v.to_json()))
                        .collect::<BTreeMap<_, _>>(),
                )),
                _ => {
                    self.type_error(
                        n,
                        &obj.path_of("map"),
                        "a mapping of input to output values",
                    );
                    None
                }
            },
            None => Some(None),
        };
        let consent = match obj.get("consent") {
            Some((_, n)) => self.non_empty_string(n, &obj.path_of("consent")).map(Some),
            None => Some(None),
        };
        Some(FieldRule {
            target: key.text.clone(),
            source: source?,
            transforms: transforms?,
            default: obj.get("default").map(|(_, n)| n.to_json()),
            map: map?,
            consent: consent?,
        })
    }

    fn transforms(&mut self, node: &Node, path: &str) -> Option<Vec<Transform>> {
        let Kind::Seq(items) = &node.kind else {
            self.type_error(node, path, "a list of transforms");
            return None;
        };
        let mut out = Vec::with_capacity(items.len());
        let mut ok = true;
        for (i, item) in items.iter().enumerate() {
            let item_path = format!("{path}[{i}]");
            let parsed = match &item.kind {
                Kind::Scalar(s) if s.value.is_string() => {
                    let name = s.value.as_str().unwrap_or_default();
                    Transform::from_parts(name, None).map_err(|e| (item.pos, e))
                }
                Kind::Map(entries) if entries.len() == 1 => {
                    let (k, arg) = &entries[0];
                    Transform::from_parts(&k.text, Some(&arg.to_json())).map_err(|e| {
                        let at = if Transform::CATALOG.iter().any(|(n, _)| *n == k.text) {
                            arg.pos
                        } else {
                            k.pos
                        };
                        (at, e)
                    })
                }
                _ => Err((
                    item.pos,
                    format!(
                        "expected a transform name or {{ name: argument }}, found {}",
                        item.type_name()
                    ),
                )),
            };
            match parsed {
                Ok(t) => out.push(t),
                Err((pos, reason)) => {
                    self.errors.push(&item_path, pos, reason);
                    ok = false;
                }
            }
        }
        ok.then_some(out)
    }

    fn value_path(&mut self, node: &Node, path: &str) -> Option<FieldSource> {
        let text = self.string(node, path)?;
        match scim::parse_value_path(&text) {
            Ok(p) => Some(FieldSource::From(p)),
            Err(e) => {
                self.scim_error(node, path, "invalid value path", &e);
                None
            }
        }
    }

    fn filter(&mut self, node: &Node, path: &str) -> Option<scim::Filter> {
        let text = self.string(node, path)?;
        match scim::parse_filter(&text) {
            Ok(f) => Some(f),
            Err(e) => {
                self.scim_error(node, path, "invalid filter", &e);
                None
            }
        }
    }

    /// Points into the value when its columns are exact, else names the offset in the text.
    fn scim_error(&mut self, node: &Node, path: &str, what: &str, e: &scim::ParseError) {
        let pos = node.pos_at_offset(e.position);
        let reason = if pos == node.pos && e.position != 0 {
            format!("{what}: {e}")
        } else {
            format!("{what}: {}", e.message)
        };
        self.errors.push(path, pos, reason);
    }

    fn purposes(&mut self, node: &Node, path: &str) -> Option<Vec<String>> {
        let Kind::Seq(items) = &node.kind else {
            self.type_error(node, path, "a list of consent purposes");
            return None;
        };
        let mut out = Vec::with_capacity(items.len());
        let mut ok = true;
        for (i, item) in items.iter().enumerate() {
            match self.non_empty_string(item, &format!("{path}[{i}]")) {
                Some(p) => out.push(p),
                None => ok = false,
            }
        }
        ok.then_some(out)
    }

    fn choice<T: Copy + Default>(
        &mut self,
        obj: &Obj<'_>,
        key: &str,
        all: &[T],
        name: fn(T) -> &'static str,
    ) -> Option<T> {
        let Some((_, n)) = obj.get(key) else {
            return Some(T::default());
        };
        let s = self.string(n, key)?;
        if let Some(v) = all.iter().copied().find(|v| name(*v) == s) {
            return Some(v);
        }
        let names: Vec<&str> = all.iter().map(|v| name(*v)).collect();
        self.errors.push(
            key,
            n.pos,
            format!("invalid value {s:?}; expected one of {}", names.join(", ")),
        );
        None
    }

    /// Checks `node` is a mapping whose keys are all in `allowed`.
    fn mapping<'a>(&mut self, node: &'a Node, path: &str, allowed: &[&str]) -> Option<Obj<'a>> {
        let Kind::Map(entries) = &node.kind else {
            self.type_error(node, path, "a mapping");
            return None;
        };
        for (k, _) in entries {
            if !allowed.contains(&k.text.as_str()) {
                self.errors.push(
                    &join(path, &k.text),
                    k.pos,
                    format!(
                        "unknown key {:?}; expected one of {}",
                        k.text,
                        allowed.join(", ")
                    ),
                );
            }
        }
        Some(Obj {
            node,
            path: path.to_owned(),
            entries,
        })
    }

    fn required<'a>(&mut self, obj: &Obj<'a>, key: &str) -> Option<(&'a Key, &'a Node)> {
        let found = obj.entries.iter().find(|(k, _)| k.text == key);
        if found.is_none() {
            self.errors
                .push(&obj.path_of(key), obj.node.pos, "missing required key");
        }
        found.map(|(k, n)| (k, n))
    }

    fn string(&mut self, node: &Node, path: &str) -> Option<String> {
        match node.as_str() {
            Some(s) => Some(s.to_owned()),
            None => {
                self.type_error(node, path, "a string");
                None
            }
        }
    }

    fn non_empty_string(&mut self, node: &Node, path: &str) -> Option<String> {
        let s = self.string(node, path)?;
        if s.trim().is_empty() {
            self.errors.push(path, node.pos, "must not be empty");
            return None;
        }
        Some(s)
    }

    fn type_error(&mut self, node: &Node, path: &str, expected: &str) {
        self.errors.push(
            path,
            node.pos,
            format!("expected {expected}, found {}", node.type_name()),
        );
    }
}

/// `[a-z0-9][a-z0-9_-]*`: safe in URLs, logs and command lines.
fn is_destination_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn destination_names() {
        for ok in ["crm", "crm-webhook", "0x", "a_b-1"] {
            assert!(is_destination_name(ok), "{ok}");
        }
        for bad in ["", "Crm", "-crm", "_crm", "crm hook", "crm/x", "crm.x"] {
            assert!(!is_destination_name(bad), "{bad}");
        }
    }

    /// The editor schema must accept exactly the keys the parser accepts.
    #[test]
    fn schema_json_matches_parser() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../mappings/schema.json");
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{e}"));
        let schema: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}"));
        let keys = |v: &Value| -> Vec<String> {
            let mut k: Vec<String> = v
                .as_object()
                .map(|o| o.keys().cloned().collect())
                .unwrap_or_default();
            k.sort();
            k
        };
        let sorted = |s: &[&str]| -> Vec<String> {
            let mut v: Vec<String> = s.iter().map(|s| s.to_string()).collect();
            v.sort();
            v
        };
        assert_eq!(
            schema["$schema"],
            "https://json-schema.org/draft/2020-12/schema"
        );
        assert_eq!(schema["additionalProperties"], false);
        assert_eq!(keys(&schema["properties"]), sorted(TOP_LEVEL_KEYS));
        assert_eq!(
            schema["required"],
            serde_json::json!(["destination", "connector", "fields"])
        );
        let field = &schema["$defs"]["field"];
        assert_eq!(field["additionalProperties"], false);
        assert_eq!(keys(&field["properties"]), sorted(FIELD_KEYS));

        // Transform names: bare ones in the enum, the others as single-key objects.
        let variants = &schema["$defs"]["transform"]["oneOf"];
        let mut names: Vec<String> = variants[0]["enum"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default();
        names.extend(keys(&variants[1]["properties"]));
        names.sort();
        let catalog: Vec<&str> = Transform::CATALOG.iter().map(|(n, _)| *n).collect();
        assert_eq!(names, sorted(&catalog));

        let enums = |v: &Value| -> Vec<String> {
            v["enum"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|v| v.as_str().map(String::from))
                        .collect()
                })
                .unwrap_or_default()
        };
        let on_delete: Vec<&str> = OnDelete::ALL.iter().map(|v| v.as_str()).collect();
        assert_eq!(enums(&schema["properties"]["on_delete"]), on_delete);
        let on_withdraw: Vec<&str> = OnWithdraw::ALL.iter().map(|v| v.as_str()).collect();
        assert_eq!(enums(&schema["properties"]["on_withdraw"]), on_withdraw);
    }
}
