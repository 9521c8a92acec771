//! Comparison values (`compValue` in RFC 7644): JSON strings, numbers,
//! `true`, `false` and `null`.

use serde_json::{Number, Value};

use crate::cursor::{Cursor, is_word_char};
use crate::error::ParseError;

/// Parses one comparison value at the cursor.
pub(crate) fn value(cur: &mut Cursor) -> Result<Value, ParseError> {
    match cur.peek() {
        Some('"') => string(cur).map(Value::String),
        Some(c) if c == '-' || c.is_ascii_digit() => number(cur),
        Some(c) if is_word_char(c) => {
            let (start, word) = cur.word();
            // ABNF literals are case-insensitive, so `True` and `NULL` count.
            match word.to_ascii_lowercase().as_str() {
                "true" => Ok(Value::Bool(true)),
                "false" => Ok(Value::Bool(false)),
                "null" => Ok(Value::Null),
                _ => Err(ParseError::new(
                    start,
                    format!("invalid value '{word}': strings must be double-quoted"),
                )),
            }
        }
        _ => Err(cur.expected("a value (string, number, true, false or null)")),
    }
}

/// JSON string with escapes; the cursor is on the opening quote.
fn string(cur: &mut Cursor) -> Result<String, ParseError> {
    let open = cur.pos();
    cur.bump();
    let mut out = String::new();
    loop {
        match cur.bump() {
            None => return Err(ParseError::new(open, "unterminated string")),
            Some('"') => return Ok(out),
            Some('\\') => out.push(escape(cur)?),
            // Raw control characters are tolerated: Display re-escapes them.
            Some(c) => out.push(c),
        }
    }
}

/// One escape sequence; the cursor is just past the backslash.
fn escape(cur: &mut Cursor) -> Result<char, ParseError> {
    let at = cur.pos().saturating_sub(1);
    let c = match cur.bump() {
        Some('"') => '"',
        Some('\\') => '\\',
        Some('/') => '/',
        Some('b') => '\u{8}',
        Some('f') => '\u{c}',
        Some('n') => '\n',
        Some('r') => '\r',
        Some('t') => '\t',
        Some('u') => return unicode_escape(cur, at),
        None => return Err(ParseError::new(at, "unterminated escape sequence")),
        Some(other) => {
            return Err(ParseError::new(
                at,
                format!("invalid escape '\\{}'", other.escape_debug()),
            ));
        }
    };
    Ok(c)
}

/// `\uXXXX`, combining UTF-16 surrogate pairs as JSON requires.
fn unicode_escape(cur: &mut Cursor, at: usize) -> Result<char, ParseError> {
    let invalid = || ParseError::new(at, "invalid \\u escape");
    let high = hex4(cur).ok_or_else(invalid)?;
    let code = match high {
        0xD800..=0xDBFF => {
            if !(cur.eat('\\') && cur.eat('u')) {
                return Err(ParseError::new(
                    at,
                    "unpaired UTF-16 surrogate in \\u escape",
                ));
            }
            let low = hex4(cur).ok_or_else(invalid)?;
            if !(0xDC00..=0xDFFF).contains(&low) {
                return Err(ParseError::new(
                    at,
                    "unpaired UTF-16 surrogate in \\u escape",
                ));
            }
            0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00)
        }
        0xDC00..=0xDFFF => {
            return Err(ParseError::new(
                at,
                "unpaired UTF-16 surrogate in \\u escape",
            ));
        }
        other => other,
    };
    char::from_u32(code).ok_or_else(invalid)
}

fn hex4(cur: &mut Cursor) -> Option<u32> {
    let mut code = 0;
    for _ in 0..4 {
        code = code * 16 + cur.peek()?.to_digit(16)?;
        cur.bump();
    }
    Some(code)
}

/// JSON-style number: `-?digits(.digits)?([eE][+-]?digits)?`.
fn number(cur: &mut Cursor) -> Result<Value, ParseError> {
    let start = cur.pos();
    let mut text = String::new();
    if cur.eat('-') {
        text.push('-');
    }
    digits(cur, &mut text, start)?;
    let mut integral = true;
    if cur.eat('.') {
        text.push('.');
        integral = false;
        digits(cur, &mut text, start)?;
    }
    if let Some(e @ ('e' | 'E')) = cur.peek() {
        cur.bump();
        text.push(e);
        integral = false;
        if let Some(sign @ ('+' | '-')) = cur.peek() {
            cur.bump();
            text.push(sign);
        }
        digits(cur, &mut text, start)?;
    }
    // `12abc` or `1.2.3` is a typo, not a number followed by something.
    if cur.peek().is_some_and(is_word_char) {
        return Err(ParseError::new(start, "invalid number"));
    }
    to_number(&text, integral).ok_or_else(|| ParseError::new(start, "number out of range"))
}

fn digits(cur: &mut Cursor, text: &mut String, start: usize) -> Result<(), ParseError> {
    let before = text.len();
    while let Some(d) = cur.peek().filter(char::is_ascii_digit) {
        cur.bump();
        text.push(d);
    }
    if text.len() == before {
        return Err(ParseError::new(start, "invalid number: expected digits"));
    }
    Ok(())
}

/// Integers stay exact when they fit 64 bits; everything else goes through
/// std's correctly rounded f64 parser so Display output parses back exactly.
fn to_number(text: &str, integral: bool) -> Option<Value> {
    if integral {
        if let Ok(i) = text.parse::<i64>() {
            return Some(Value::from(i));
        }
        if let Ok(u) = text.parse::<u64>() {
            return Some(Value::from(u));
        }
    }
    let f = text.parse::<f64>().ok()?;
    Number::from_f64(f).map(Value::Number)
}
