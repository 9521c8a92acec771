//! Connector settings: `${env:NAME}` resolution and a Debug that never shows values.

use std::fmt;

use serde_json::Value;

use crate::error::Errors;
use crate::tree::{Kind, Node, join};

/// Connector-specific settings with `${env:NAME}` references already resolved.
///
/// Values may hold secrets, so `Debug` prints the keys only, with `"***"` for every value.
#[derive(Clone, PartialEq, Default)]
pub struct Settings(Value);

impl Settings {
    /// The resolved settings (a JSON object for settings read from a file).
    pub fn as_value(&self) -> &Value {
        &self.0
    }

    /// Setting `key` at the top level, if present.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.0.get(key)
    }
}

impl From<Value> for Settings {
    fn from(v: Value) -> Self {
        Settings(v)
    }
}

impl fmt::Debug for Settings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Settings").field(&Redacted(&self.0)).finish()
    }
}

/// Shows the structure of a value (keys, list lengths) but no scalar content.
struct Redacted<'a>(&'a Value);

impl fmt::Debug for Redacted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Value::Object(map) => f
                .debug_map()
                .entries(map.iter().map(|(k, v)| (k, Redacted(v))))
                .finish(),
            Value::Array(items) => f.debug_list().entries(items.iter().map(Redacted)).finish(),
            _ => f.write_str("\"***\""),
        }
    }
}

/// Converts the `settings` node to JSON, resolving `${env:NAME}` in every string.
pub(crate) fn resolve(
    node: &Node,
    path: &str,
    env: &dyn Fn(&str) -> Option<String>,
    errors: &mut Errors,
) -> Value {
    match &node.kind {
        Kind::Map(entries) => Value::Object(
            entries
                .iter()
                .map(|(k, v)| {
                    (
                        k.text.clone(),
                        resolve(v, &join(path, &k.text), env, errors),
                    )
                })
                .collect(),
        ),
        Kind::Seq(items) => Value::Array(
            items
                .iter()
                .enumerate()
                .map(|(i, v)| resolve(v, &format!("{path}[{i}]"), env, errors))
                .collect(),
        ),
        Kind::Scalar(s) => match &s.value {
            Value::String(text) => match substitute(text, env) {
                Ok(out) => Value::String(out),
                Err(e) => {
                    errors.push(path, node.pos_at_offset(e.offset), e.reason);
                    Value::Null
                }
            },
            other => other.clone(),
        },
    }
}

#[derive(Debug, PartialEq)]
pub(crate) struct SubstError {
    /// Char offset of the offending `${` in the string.
    pub offset: usize,
    pub reason: String,
}

const OPEN: &str = "${env:";

/// Replaces each `${env:NAME}` in `text` with the variable's value.
pub(crate) fn substitute(
    text: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<String, SubstError> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find(OPEN) {
        let offset = text[..text.len() - rest.len() + start].chars().count();
        out.push_str(&rest[..start]);
        let after = &rest[start + OPEN.len()..];
        let Some(end) = after.find('}') else {
            return Err(SubstError {
                offset,
                reason: "unterminated ${env:...} reference".into(),
            });
        };
        let name = &after[..end];
        if !is_env_name(name) {
            return Err(SubstError {
                offset,
                reason: format!("invalid environment variable name {name:?}"),
            });
        }
        match env(name) {
            Some(v) => out.push_str(&v),
            None => {
                return Err(SubstError {
                    offset,
                    reason: format!("environment variable {name} is not set"),
                });
            }
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

fn is_env_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn env(k: &str) -> Option<String> {
        (k == "TOKEN").then(|| "s3cr3t".to_owned())
    }

    #[test]
    fn substitutes_inside_longer_strings() {
        assert_eq!(
            substitute("Bearer ${env:TOKEN}!", &env).as_deref(),
            Ok("Bearer s3cr3t!")
        );
        assert_eq!(substitute("no refs", &env).as_deref(), Ok("no refs"));
        assert_eq!(
            substitute("${env:TOKEN}${env:TOKEN}", &env).as_deref(),
            Ok("s3cr3ts3cr3t")
        );
    }

    #[test]
    fn reports_missing_bad_and_unterminated() {
        let e = substitute("xé ${env:NOPE}", &env).err();
        assert_eq!(
            e,
            Some(SubstError {
                offset: 3,
                reason: "environment variable NOPE is not set".into()
            })
        );
        assert!(substitute("${env:1X}", &env).is_err());
        assert!(substitute("${env:TOKEN", &env).is_err());
    }

    #[test]
    fn debug_hides_values() {
        let s = Settings::from(json!({"url": "http://x", "secret": "s3cr3t", "h": {"k": ["v"]}}));
        let d = format!("{s:?}");
        assert!(!d.contains("s3cr3t") && !d.contains("http://x") && !d.contains("\"v\""));
        assert!(d.contains("\"secret\": \"***\""), "{d}");
        assert!(d.contains("\"h\": {\"k\": [\"***\"]}"), "{d}");
    }
}
