//! Value transforms applied to a field, in order (`trim`, `sha256`, `{date: FORMAT}`, ...).
//!
//! To add a transform: add a variant, a row in [`Transform::CATALOG`], and an arm in
//! [`Transform::from_parts`] and [`Transform::apply`].

use std::fmt::{self, Write as _};

use chrono::format::StrftimeItems;
use chrono::{DateTime, FixedOffset, NaiveDate, NaiveTime};
use serde_json::{Number, Value};
use sha2::{Digest, Sha256};

/// One step of a field's `transform` list.
///
/// A transform returns `None` to drop the value (e.g. an invalid phone number); the
/// field then falls back to its `default`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transform {
    /// Strip leading and trailing whitespace.
    Trim,
    Lowercase,
    Uppercase,
    /// Lowercase hex SHA-256 of the UTF-8 text.
    Sha256,
    /// Normalize a phone number to E.164 (`+` and 8..15 digits), else drop it.
    E164,
    /// Reformat an RFC 3339 date-time or `YYYY-MM-DD` date with a chrono strftime format.
    Date(String),
    /// RFC 3339 date-time (or `YYYY-MM-DD`, midnight UTC) to integer seconds since the epoch.
    UnixSeconds,
    ToString,
    ToNumber,
    /// Booleans, `"true"`/`"false"` in any case, and the numbers 0 and 1.
    ToBool,
}

/// Whether a transform is written as a bare name or as `{name: ARGUMENT}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arity {
    Bare,
    WithArgument,
}

impl Transform {
    /// Every transform name and how it is written, in the order error messages list them.
    pub const CATALOG: &'static [(&'static str, Arity)] = &[
        ("trim", Arity::Bare),
        ("lowercase", Arity::Bare),
        ("uppercase", Arity::Bare),
        ("sha256", Arity::Bare),
        ("e164", Arity::Bare),
        ("date", Arity::WithArgument),
        ("unix_seconds", Arity::Bare),
        ("to_string", Arity::Bare),
        ("to_number", Arity::Bare),
        ("to_bool", Arity::Bare),
    ];

    /// The name used in mapping files.
    pub fn name(&self) -> &'static str {
        match self {
            Transform::Trim => "trim",
            Transform::Lowercase => "lowercase",
            Transform::Uppercase => "uppercase",
            Transform::Sha256 => "sha256",
            Transform::E164 => "e164",
            Transform::Date(_) => "date",
            Transform::UnixSeconds => "unix_seconds",
            Transform::ToString => "to_string",
            Transform::ToNumber => "to_number",
            Transform::ToBool => "to_bool",
        }
    }

    /// Builds a transform from its name and optional argument; the error is a reason
    /// suitable for a [`crate::MappingError`].
    pub fn from_parts(name: &str, arg: Option<&Value>) -> Result<Transform, String> {
        let Some((_, arity)) = Self::CATALOG.iter().find(|(n, _)| *n == name) else {
            let names: Vec<&str> = Self::CATALOG.iter().map(|(n, _)| *n).collect();
            return Err(format!(
                "unknown transform {name:?}; expected one of {}",
                names.join(", ")
            ));
        };
        match (arity, arg) {
            (Arity::Bare, Some(_)) => {
                return Err(format!(
                    "transform {name:?} takes no argument; write it as `{name}`"
                ));
            }
            (Arity::WithArgument, None) => {
                return Err(format!(
                    "transform {name:?} needs an argument; write it as `{{ {name}: ... }}`"
                ));
            }
            _ => {}
        }
        Ok(match name {
            "trim" => Transform::Trim,
            "lowercase" => Transform::Lowercase,
            "uppercase" => Transform::Uppercase,
            "sha256" => Transform::Sha256,
            "e164" => Transform::E164,
            "date" => Transform::Date(date_format(arg)?),
            "unix_seconds" => Transform::UnixSeconds,
            "to_string" => Transform::ToString,
            "to_number" => Transform::ToNumber,
            "to_bool" => Transform::ToBool,
            // CATALOG and this match are kept in sync by the `catalog_is_complete` test.
            _ => return Err(format!("transform {name:?} is not implemented")),
        })
    }

    /// Applies the transform; `None` drops the value.
    pub fn apply(&self, v: Value) -> Option<Value> {
        match self {
            Transform::Trim => Some(map_str(v, |s| s.trim().to_owned())),
            Transform::Lowercase => Some(map_str(v, str::to_lowercase)),
            Transform::Uppercase => Some(map_str(v, str::to_uppercase)),
            Transform::Sha256 => text(&v).map(|s| Value::String(hex::encode(Sha256::digest(s)))),
            Transform::E164 => text(&v).and_then(|s| e164(&s)).map(Value::String),
            Transform::Date(fmt) => text(&v)
                .and_then(|s| format_date(&s, fmt))
                .map(Value::String),
            Transform::UnixSeconds => match v {
                Value::Number(n) if n.is_i64() => Some(Value::Number(n)),
                other => text(&other).and_then(|s| unix_seconds(&s)).map(Value::from),
            },
            Transform::ToString => match v {
                Value::String(_) => Some(v),
                Value::Number(_) | Value::Bool(_) => text(&v).map(Value::String),
                _ => None,
            },
            Transform::ToNumber => match v {
                Value::Number(_) => Some(v),
                Value::String(s) => to_number(s.trim()),
                _ => None,
            },
            Transform::ToBool => match &v {
                Value::Bool(_) => Some(v),
                Value::String(s) if s.trim().eq_ignore_ascii_case("true") => {
                    Some(Value::Bool(true))
                }
                Value::String(s) if s.trim().eq_ignore_ascii_case("false") => {
                    Some(Value::Bool(false))
                }
                Value::Number(n) if n.as_f64() == Some(1.0) => Some(Value::Bool(true)),
                Value::Number(n) if n.as_f64() == Some(0.0) => Some(Value::Bool(false)),
                _ => None,
            },
        }
    }
}

impl fmt::Display for Transform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Transform::Date(format) => write!(f, "{{date: {format:?}}}"),
            other => f.write_str(other.name()),
        }
    }
}

fn date_format(arg: Option<&Value>) -> Result<String, String> {
    let Some(Value::String(format)) = arg else {
        return Err("the date format must be a string, e.g. { date: \"%d/%m/%Y\" }".into());
    };
    // Reject bad formats now; chrono would otherwise fail at every sync.
    if StrftimeItems::new(format).parse().is_err() {
        return Err(format!("invalid date format {format:?}"));
    }
    Ok(format.clone())
}

/// Case/whitespace transforms only touch strings; other values pass unchanged.
fn map_str(v: Value, f: impl FnOnce(&str) -> String) -> Value {
    match v {
        Value::String(s) => Value::String(f(&s)),
        other => other,
    }
}

/// Text form of a scalar; null and collections have none.
fn text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn e164(raw: &str) -> Option<String> {
    let compact: String = raw
        .chars()
        .filter(|c| !matches!(c, ' ' | '-' | '.' | '(' | ')') && !c.is_whitespace())
        .collect();
    let digits = match compact.strip_prefix("00") {
        Some(rest) => rest,
        None => compact.strip_prefix('+')?,
    };
    let ok = (8..=15).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit());
    ok.then(|| format!("+{digits}"))
}

/// RFC 3339 date-time, or a plain date taken as midnight UTC.
fn parse_instant(s: &str) -> Option<DateTime<FixedOffset>> {
    let s = s.trim();
    DateTime::parse_from_rfc3339(s).ok().or_else(|| {
        NaiveDate::parse_from_str(s, "%Y-%m-%d")
            .ok()
            .map(|d| d.and_time(NaiveTime::MIN).and_utc().fixed_offset())
    })
}

fn format_date(s: &str, format: &str) -> Option<String> {
    // Keep the input's own offset: converting to UTC could move a birthdate by a day.
    let instant = parse_instant(s)?;
    let mut out = String::new();
    write!(out, "{}", instant.format(format)).ok()?;
    Some(out)
}

fn unix_seconds(s: &str) -> Option<i64> {
    parse_instant(s).map(|t| t.timestamp())
}

fn to_number(s: &str) -> Option<Value> {
    if let Ok(i) = s.parse::<i64>() {
        return Some(Value::from(i));
    }
    s.parse::<f64>()
        .ok()
        .and_then(Number::from_f64)
        .map(Value::Number)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn t(name: &str) -> Transform {
        Transform::from_parts(name, None).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn catalog_is_complete() {
        for (name, arity) in Transform::CATALOG {
            let arg = json!("%Y");
            let arg = (*arity == Arity::WithArgument).then_some(&arg);
            let tr = Transform::from_parts(name, arg).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(tr.name(), *name);
        }
    }

    #[test]
    fn string_case_and_trim() {
        assert_eq!(t("trim").apply(json!("  a b \n")), Some(json!("a b")));
        assert_eq!(t("lowercase").apply(json!("ÄbC")), Some(json!("äbc")));
        assert_eq!(t("uppercase").apply(json!("abc")), Some(json!("ABC")));
        assert_eq!(t("lowercase").apply(json!(5)), Some(json!(5)));
    }

    #[test]
    fn sha256_is_hex_of_utf8() {
        assert_eq!(
            t("sha256").apply(json!("abc")),
            Some(json!(
                "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
            ))
        );
        assert_eq!(t("sha256").apply(json!(null)), None);
    }

    #[test]
    fn e164_normalizes_or_drops() {
        let e = t("e164");
        assert_eq!(
            e.apply(json!("+49 151 2345 6789")),
            Some(json!("+4915123456789"))
        );
        assert_eq!(
            e.apply(json!("0049 (151) 2345-67.89")),
            Some(json!("+4915123456789"))
        );
        assert_eq!(e.apply(json!("0151 23456789")), None, "no country code");
        assert_eq!(e.apply(json!("+49 123")), None, "too short");
        assert_eq!(e.apply(json!("+1234567890123456")), None, "too long");
        assert_eq!(e.apply(json!("+49 151 CALL ME")), None);
        assert_eq!(e.apply(json!("+12345678")), Some(json!("+12345678")));
    }

    #[test]
    fn date_formats_datetimes_and_dates() {
        let d = Transform::from_parts("date", Some(&json!("%d/%m/%Y"))).ok();
        let d = d.unwrap_or(Transform::Trim);
        assert_eq!(d.apply(json!("1815-12-10")), Some(json!("10/12/1815")));
        assert_eq!(
            d.apply(json!("1815-12-10T00:30:00+01:00")),
            Some(json!("10/12/1815"))
        );
        assert_eq!(d.apply(json!("10 Dec 1815")), None);
        let tz = Transform::Date("%H:%M %z".into());
        assert_eq!(
            tz.apply(json!("2024-01-02T03:04:05Z")),
            Some(json!("03:04 +0000"))
        );
    }

    #[test]
    fn date_argument_is_checked() {
        assert!(Transform::from_parts("date", Some(&json!("%Q"))).is_err());
        assert!(Transform::from_parts("date", Some(&json!(5))).is_err());
        assert!(Transform::from_parts("date", None).is_err());
        assert!(Transform::from_parts("trim", Some(&json!("x"))).is_err());
    }

    #[test]
    fn unknown_lists_all_names() {
        let e = Transform::from_parts("lowercasee", None)
            .err()
            .unwrap_or_default();
        assert_eq!(
            e,
            "unknown transform \"lowercasee\"; expected one of trim, lowercase, uppercase, \
             sha256, e164, date, unix_seconds, to_string, to_number, to_bool"
        );
    }

    #[test]
    fn unix_seconds_from_rfc3339() {
        let u = t("unix_seconds");
        assert_eq!(u.apply(json!("1970-01-01T00:01:00Z")), Some(json!(60)));
        assert_eq!(u.apply(json!("1970-01-01T01:00:00+01:00")), Some(json!(0)));
        assert_eq!(u.apply(json!("1970-01-02")), Some(json!(86400)));
        assert_eq!(u.apply(json!("yesterday")), None);
    }

    #[test]
    fn conversions() {
        assert_eq!(t("to_string").apply(json!(42)), Some(json!("42")));
        assert_eq!(t("to_string").apply(json!(true)), Some(json!("true")));
        assert_eq!(t("to_string").apply(json!({"a": 1})), None);
        assert_eq!(t("to_number").apply(json!(" 42 ")), Some(json!(42)));
        assert_eq!(t("to_number").apply(json!("4.5")), Some(json!(4.5)));
        assert_eq!(t("to_number").apply(json!("x")), None);
        assert_eq!(t("to_bool").apply(json!("True")), Some(json!(true)));
        assert_eq!(t("to_bool").apply(json!("False")), Some(json!(false)));
        assert_eq!(t("to_bool").apply(json!("false")), Some(json!(false)));
        assert_eq!(t("to_bool").apply(json!(1)), Some(json!(true)));
        assert_eq!(t("to_bool").apply(json!("yes")), None);
    }
}
