//! Owned YAML tree with 1-based positions, built from saphyr's marked nodes.
//!
//! Copying saphyr's borrowed tree into this small shape keeps the validator free of
//! saphyr's lifetimes and scalar-resolution rules, and records every key path's position.

use saphyr::{MarkedYaml, Scalar, ScalarStyle, YamlData, YamlLoader};
use saphyr_parser::{Marker, Parser};
use serde_json::Value;

use crate::positions::Positions;

/// A 1-based line/column position in the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Pos {
    pub line: usize,
    pub col: usize,
}

impl Pos {
    pub(crate) const START: Pos = Pos { line: 1, col: 1 };

    fn from_marker(m: &Marker) -> Pos {
        // saphyr lines are 1-based, columns 0-based.
        Pos {
            line: m.line().max(1),
            col: m.col() + 1,
        }
    }
}

/// A scalar leaf: its resolved JSON value and enough of its source form to locate
/// characters inside it.
#[derive(Debug, Clone)]
pub(crate) struct Leaf {
    pub value: Value,
    /// Plain (unquoted) and on one line: char offsets in the text map 1:1 to columns.
    pub plain_single_line: bool,
}

#[derive(Debug, Clone)]
pub(crate) struct Key {
    pub text: String,
    pub pos: Pos,
}

#[derive(Debug, Clone)]
pub(crate) enum Kind {
    Scalar(Leaf),
    Seq(Vec<Node>),
    Map(Vec<(Key, Node)>),
}

#[derive(Debug, Clone)]
pub(crate) struct Node {
    pub pos: Pos,
    pub kind: Kind,
}

impl Node {
    /// Position of this node moved `offset` chars right, when that is meaningful.
    pub(crate) fn pos_at_offset(&self, offset: usize) -> Pos {
        match &self.kind {
            Kind::Scalar(s) if s.plain_single_line => Pos {
                line: self.pos.line,
                col: self.pos.col + offset,
            },
            _ => self.pos,
        }
    }

    pub(crate) fn type_name(&self) -> &'static str {
        match &self.kind {
            Kind::Seq(_) => "a list",
            Kind::Map(_) => "a mapping",
            Kind::Scalar(s) => match s.value {
                Value::Null => "null",
                Value::Bool(_) => "a boolean",
                Value::Number(_) => "a number",
                Value::String(_) => "a string",
                // Scalars never resolve to collections.
                Value::Array(_) | Value::Object(_) => "a value",
            },
        }
    }

    pub(crate) fn is_null(&self) -> bool {
        matches!(&self.kind, Kind::Scalar(s) if s.value.is_null())
    }

    pub(crate) fn as_str(&self) -> Option<&str> {
        match &self.kind {
            Kind::Scalar(s) => s.value.as_str(),
            _ => None,
        }
    }

    /// The node as plain JSON (mappings become objects keyed by key text).
    pub(crate) fn to_json(&self) -> Value {
        match &self.kind {
            Kind::Scalar(s) => s.value.clone(),
            Kind::Seq(items) => Value::Array(items.iter().map(Node::to_json).collect()),
            Kind::Map(entries) => Value::Object(
                entries
                    .iter()
                    .map(|(k, v)| (k.text.clone(), v.to_json()))
                    .collect(),
            ),
        }
    }
}

/// A problem found while reading the YAML itself (syntax, tags, odd scalars).
#[derive(Debug, Clone)]
pub(crate) struct TreeError {
    pub key_path: String,
    pub pos: Pos,
    pub reason: String,
}

/// Result of loading: the root (absent for an empty file), all key positions, problems.
pub(crate) struct Loaded {
    pub root: Option<Node>,
    pub positions: Positions,
    pub errors: Vec<TreeError>,
}

/// Parses `text` as a single YAML document.
pub(crate) fn load(text: &str) -> Loaded {
    let mut loaded = Loaded {
        root: None,
        positions: Positions::default(),
        errors: Vec::new(),
    };
    let mut loader: YamlLoader<'_, MarkedYaml<'_>> = YamlLoader::default();
    // Keep scalar representations so we know their style (plain vs quoted).
    loader.early_parse(false);
    let mut parser = Parser::new_from_str(text);
    let scan = parser.load(&mut loader, true).err();
    if let Some(e) = scan.or_else(|| loader.error().cloned()) {
        loaded.errors.push(TreeError {
            key_path: String::new(),
            pos: Pos::from_marker(e.marker()),
            reason: format!("YAML syntax error: {}", e.info()),
        });
        return loaded;
    }
    let mut docs = loader.into_documents().into_iter();
    let Some(first) = docs.next() else {
        return loaded;
    };
    if let Some(second) = docs.next() {
        loaded.errors.push(TreeError {
            key_path: String::new(),
            pos: Pos::from_marker(&second.span.start),
            reason: "only one YAML document is allowed per file".into(),
        });
    }
    let mut conv = Converter {
        positions: &mut loaded.positions,
        errors: &mut loaded.errors,
    };
    let root = conv.node(&first, "");
    // An empty document is a null scalar: treat it like an empty file.
    loaded.root = (!root.is_null()).then_some(root);
    loaded.positions.insert(String::new(), Pos::START);
    loaded
}

struct Converter<'a> {
    positions: &'a mut Positions,
    errors: &'a mut Vec<TreeError>,
}

impl Converter<'_> {
    fn error(&mut self, key_path: &str, pos: Pos, reason: String) {
        self.errors.push(TreeError {
            key_path: key_path.to_owned(),
            pos,
            reason,
        });
    }

    fn node(&mut self, y: &MarkedYaml<'_>, path: &str) -> Node {
        let pos = Pos::from_marker(&y.span.start);
        let kind = match &y.data {
            YamlData::Representation(raw, style, tag) => {
                let plain = *style == ScalarStyle::Plain;
                if let Some(t) = tag.as_deref().filter(|t| !t.is_yaml_core_schema()) {
                    self.error(path, pos, format!("unsupported YAML tag {t}"));
                }
                let value =
                    match Scalar::parse_from_cow_and_metadata(raw.clone(), *style, tag.as_ref()) {
                        Some(s) => self.scalar(s, path, pos),
                        None => {
                            self.error(path, pos, format!("invalid tagged value {raw:?}"));
                            Value::Null
                        }
                    };
                Kind::Scalar(Leaf {
                    value,
                    plain_single_line: plain && y.span.start.line() == y.span.end.line(),
                })
            }
            YamlData::Value(s) => {
                let value = self.scalar(s.clone(), path, pos);
                Kind::Scalar(Leaf {
                    value,
                    plain_single_line: false,
                })
            }
            YamlData::Sequence(items) => Kind::Seq(
                items
                    .iter()
                    .enumerate()
                    .map(|(i, item)| {
                        let p = format!("{path}[{i}]");
                        let n = self.node(item, &p);
                        self.positions.insert(p, n.pos);
                        n
                    })
                    .collect(),
            ),
            YamlData::Mapping(map) => {
                let mut seen = std::collections::HashSet::new();
                Kind::Map(
                    map.iter()
                        .map(|(k, v)| {
                            let key = self.key(k, path);
                            // saphyr compares keys by representation, so `a` and 'a' both get in.
                            if !seen.insert(key.text.clone()) {
                                self.error(
                                    &join(path, &key.text),
                                    key.pos,
                                    format!("duplicated key {:?}", key.text),
                                );
                            }
                            let p = join(path, &key.text);
                            let n = self.node(v, &p);
                            // Block collections start on the next line: point at the key.
                            let at = if n.pos.line == key.pos.line {
                                n.pos
                            } else {
                                key.pos
                            };
                            self.positions.insert(p, at);
                            (key, n)
                        })
                        .collect(),
                )
            }
            YamlData::Tagged(tag, inner) => {
                self.error(path, pos, format!("unsupported YAML tag {tag}"));
                return self.node(inner, path);
            }
            YamlData::Alias(_) | YamlData::BadValue => {
                self.error(path, pos, "unsupported YAML value".into());
                Kind::Scalar(Leaf {
                    value: Value::Null,
                    plain_single_line: false,
                })
            }
        };
        Node { pos, kind }
    }

    fn key(&mut self, k: &MarkedYaml<'_>, path: &str) -> Key {
        let pos = Pos::from_marker(&k.span.start);
        let text = match &k.data {
            YamlData::Representation(raw, ..) => raw.to_string(),
            YamlData::Value(s) => scalar_text(s),
            _ => {
                self.error(path, pos, "mapping keys must be plain values".into());
                String::new()
            }
        };
        Key { text, pos }
    }

    fn scalar(&mut self, s: Scalar<'_>, path: &str, pos: Pos) -> Value {
        match s {
            Scalar::Null => Value::Null,
            Scalar::Boolean(b) => Value::Bool(b),
            Scalar::Integer(i) => Value::from(i),
            Scalar::FloatingPoint(f) => match serde_json::Number::from_f64(f.into_inner()) {
                Some(n) => Value::Number(n),
                None => {
                    self.error(
                        path,
                        pos,
                        "infinite and NaN numbers are not supported".into(),
                    );
                    Value::Null
                }
            },
            Scalar::String(s) => Value::String(s.into_owned()),
        }
    }
}

fn scalar_text(s: &Scalar<'_>) -> String {
    match s {
        Scalar::Null => "null".into(),
        Scalar::Boolean(b) => b.to_string(),
        Scalar::Integer(i) => i.to_string(),
        Scalar::FloatingPoint(f) => f.to_string(),
        Scalar::String(s) => s.to_string(),
    }
}

/// Joins a parent key path and a child key: `fields` + `email` -> `fields.email`.
pub(crate) fn join(parent: &str, key: &str) -> String {
    if parent.is_empty() {
        key.to_owned()
    } else {
        format!("{parent}.{key}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_are_one_based() {
        let l = load("a: 1\nb:\n  c: \"x\"\n  d: [1, 2]\n");
        assert!(l.errors.is_empty(), "{:?}", l.errors);
        assert_eq!(l.positions.get("a"), Some((1, 4)));
        assert_eq!(l.positions.get("b"), Some((2, 1)));
        assert_eq!(l.positions.get("b.c"), Some((3, 6)));
        assert_eq!(l.positions.get("b.d[1]"), Some((4, 10)));
    }

    #[test]
    fn syntax_error_has_position() {
        let l = load("a: [1, 2\nb: 3\n");
        assert_eq!(l.errors.len(), 1);
        assert!(l.errors[0].reason.starts_with("YAML syntax error"));
    }

    #[test]
    fn scalars_resolve_like_yaml_core_schema() {
        let l = load("a: 1\nb: '1'\nc: true\nd: ~\ne: 1.5\nf: text here\n");
        let v = l.root.map(|r| r.to_json()).unwrap_or_default();
        assert_eq!(
            v,
            serde_json::json!({"a": 1, "b": "1", "c": true, "d": null, "e": 1.5, "f": "text here"})
        );
    }

    #[test]
    fn empty_file_has_no_root() {
        assert!(load("").root.is_none());
        assert!(load("# only a comment\n").root.is_none());
    }

    #[test]
    fn differently_quoted_duplicate_key_is_an_error() {
        let l = load("a: 1\n'a': 2\n");
        assert_eq!(l.errors.len(), 1);
        assert_eq!(l.errors[0].pos, Pos { line: 2, col: 1 });
        assert_eq!(l.errors[0].reason, "duplicated key \"a\"");
    }

    #[test]
    fn duplicate_key_is_an_error() {
        let l = load("a: 1\na: 2\n");
        assert_eq!(l.errors.len(), 1);
        assert_eq!(l.errors[0].pos, Pos { line: 2, col: 1 });
    }
}
