//! Why a configuration could not be read, as a person fixing it needs it:
//! the file (or environment variable), `line:col`, the key and the reason,
//! and never the value. A value may be a secret (`secret = "whsec_..."`),
//! and the messages of the TOML parser and of serde quote values and whole
//! source lines, so they are rebuilt here from their parts, not passed on.

use std::fmt;
use std::path::Path;

use figment::error::{Actual, Kind};

/// One thing wrong with the configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigProblem {
    /// The file, or the environment variable, the value came from.
    pub origin: String,
    /// 1-based line and column in `origin`, when it is a file.
    pub position: Option<(usize, usize)>,
    /// Dotted key path, e.g. `webhooks.tolerance`; empty for syntax errors.
    pub key: String,
    pub reason: String,
}

impl fmt::Display for ConfigProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.origin)?;
        if let Some((line, col)) = self.position {
            write!(f, ":{line}:{col}")?;
        }
        if !self.key.is_empty() {
            write!(f, ": {}", self.key)?;
        }
        write!(f, ": {}", self.reason)
    }
}

/// A TOML syntax error: where, and what the parser expected.
pub(super) fn syntax(file: &Path, text: &str, e: &toml::de::Error) -> ConfigProblem {
    ConfigProblem {
        origin: file.display().to_string(),
        position: e.span().map(|s| line_col(text, s.start)),
        key: String::new(),
        // The parser's message without the quoted source line it renders.
        reason: e.message().trim().to_string(),
    }
}

/// Every error figment collected, each located in `text` (the TOML file's
/// contents) when it came from there.
pub(super) fn extraction(e: figment::Error, file: &Path, text: Option<&str>) -> Vec<ConfigProblem> {
    let doc = text.and_then(|t| toml_edit::ImDocument::parse(t).ok());
    e.into_iter()
        .map(|e| {
            let mut key = e.path.clone();
            if let Kind::UnknownField(field, _) = &e.kind
                && key.last() != Some(field)
            {
                key.push(field.clone());
            }
            // The only file merged is the TOML file; the rest is the environment.
            let from_file = e
                .metadata
                .as_ref()
                .and_then(|m| m.source.as_ref())
                .and_then(|s| s.file_path())
                .is_some();
            let origin = match &e.metadata {
                Some(_) if from_file => file.display().to_string(),
                Some(m) if m.name.contains("environment") => format!(
                    "environment variable HUB_{}",
                    e.path.join("__").to_uppercase()
                ),
                Some(m) => m.name.to_string(),
                None => "configuration".into(),
            };
            let position = match (&doc, text, from_file) {
                (Some(doc), Some(text), true) => locate(doc, &key).map(|at| line_col(text, at)),
                _ => None,
            };
            ConfigProblem {
                origin,
                position,
                key: key.join("."),
                reason: reason(&e.kind),
            }
        })
        .collect()
}

/// The reason of an error kind, with every value left out.
fn reason(kind: &Kind) -> String {
    match kind {
        Kind::InvalidType(actual, expected) => {
            format!("expected {expected}, found {}", shape(actual))
        }
        Kind::InvalidValue(actual, expected) => {
            format!("{} is not valid here: expected {expected}", shape(actual))
        }
        Kind::InvalidLength(len, expected) => format!("{len} items, expected {expected}"),
        Kind::UnknownVariant(_, expected) => {
            format!("unknown value; expected one of {}", expected.join(", "))
        }
        Kind::UnknownField(_, []) => "unknown key".into(),
        Kind::UnknownField(_, expected) => {
            format!("unknown key; known keys: {}", expected.join(", "))
        }
        Kind::MissingField(name) => format!("missing key {name}"),
        Kind::DuplicateField(name) => format!("{name} is given twice"),
        Kind::ISizeOutOfRange(_) | Kind::USizeOutOfRange(_) => "the number is out of range".into(),
        Kind::Unsupported(actual) => format!("{} is not supported here", shape(actual)),
        Kind::UnsupportedKey(actual, expected) => {
            format!(
                "a {} key is not supported here, expected {expected}",
                shape(actual)
            )
        }
        // Our own deserializers' messages (e.g. sizes) name no values.
        Kind::Message(m) => m.clone(),
    }
}

/// What kind of value was found, without the value.
fn shape(actual: &Actual) -> &'static str {
    match actual {
        Actual::Bool(_) => "a boolean",
        Actual::Unsigned(_) | Actual::Signed(_) | Actual::Float(_) => "a number",
        Actual::Char(_) | Actual::Str(_) => "a string",
        Actual::Bytes(_) => "bytes",
        Actual::Unit | Actual::Option => "an empty value",
        Actual::Seq => "a list",
        Actual::Map => "a table",
        _ => "a value of another kind",
    }
}

/// The byte offset of the value (or key) at `path` in the document.
fn locate(doc: &toml_edit::ImDocument<&str>, path: &[String]) -> Option<usize> {
    let (first, rest) = path.split_first()?;
    let mut item = doc.as_table().get(first)?;
    for key in rest {
        match item.get(key.as_str()) {
            Some(next) => item = next,
            // An unknown key inside a known table: point at the table.
            None => break,
        }
    }
    item.span().map(|s| s.start)
}

/// 1-based line and column (in characters) of a byte offset.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().unwrap_or("").chars().count() + 1;
    (line, col)
}
