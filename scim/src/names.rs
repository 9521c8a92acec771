//! Lexical rules for attribute paths: schema URN prefixes and ATTRNAME
//! (RFC 7644 section 3.10 and RFC 7643 section 2.1).

use crate::error::ParseError;
use crate::path::AttrPath;

/// Splits a path word at its last `:` (schema URN) and then at `.`.
/// Path words are ASCII, so byte offsets equal char offsets here.
pub(crate) fn split_attr_path(word: &str, start: usize) -> Result<AttrPath, ParseError> {
    let (schema, rest, rest_start) = match word.rfind(':') {
        Some(i) => {
            validate_schema(&word[..i], start)?;
            (Some(word[..i].to_owned()), &word[i + 1..], start + i + 1)
        }
        None => (None, word, start),
    };
    let mut parts = rest.splitn(2, '.');
    let name = parts.next().unwrap_or_default();
    validate_name(name, rest_start)?;
    let sub_attr = match parts.next() {
        Some(sub) => {
            validate_name(sub, rest_start + name.len() + 1)?;
            Some(sub.to_owned())
        }
        None => None,
    };
    Ok(AttrPath {
        schema,
        name: name.to_owned(),
        sub_attr,
    })
}

fn validate_schema(schema: &str, start: usize) -> Result<(), ParseError> {
    let is_urn = schema
        .get(..4)
        .is_some_and(|p| p.eq_ignore_ascii_case("urn:"));
    if !is_urn {
        return Err(ParseError::new(
            start,
            "attribute names cannot contain ':'; a schema prefix must be a URN (urn:...)",
        ));
    }
    let mut offset = 0;
    for segment in schema.split(':') {
        if segment.is_empty() {
            return Err(ParseError::new(
                start + offset,
                "empty segment in schema URN",
            ));
        }
        offset += segment.len() + 1;
    }
    Ok(())
}

/// ATTRNAME = ALPHA *(ALPHA / DIGIT / "-" / "_"), plus `$ref` (RFC 7643).
pub(crate) fn validate_name(name: &str, start: usize) -> Result<(), ParseError> {
    let mut chars = name.chars();
    match chars.next() {
        None => return Err(ParseError::new(start, "expected an attribute name")),
        Some(c) if c.is_ascii_alphabetic() || c == '$' => {}
        Some(c) => {
            return Err(ParseError::new(
                start,
                format!("attribute name cannot start with '{c}'"),
            ));
        }
    }
    for (i, c) in chars.enumerate() {
        if !(c.is_ascii_alphanumeric() || c == '-' || c == '_') {
            return Err(ParseError::new(
                start + i + 1,
                format!("invalid character '{c}' in attribute name"),
            ));
        }
    }
    Ok(())
}
