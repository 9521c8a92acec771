//! Character cursor under the parsers; positions are char offsets so error
//! positions stay meaningful for non-ASCII input.

use crate::error::ParseError;

/// Characters that may appear in an attribute path or a keyword: ATTRNAME
/// characters, `.` for sub-attributes, `:` for schema URNs and `$` for `$ref`.
pub(crate) fn is_word_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':' | '$')
}

pub(crate) struct Cursor {
    chars: Vec<char>,
    pos: usize,
}

impl Cursor {
    pub(crate) fn new(input: &str) -> Self {
        Self {
            chars: input.chars().collect(),
            pos: 0,
        }
    }

    pub(crate) fn pos(&self) -> usize {
        self.pos
    }

    /// Moves back to an earlier position (used to undo a keyword look-ahead).
    pub(crate) fn reset(&mut self, pos: usize) {
        self.pos = pos.min(self.chars.len());
    }

    pub(crate) fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    pub(crate) fn at_end(&self) -> bool {
        self.pos >= self.chars.len()
    }

    pub(crate) fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += 1;
        Some(c)
    }

    /// Consumes `c` if it is next.
    pub(crate) fn eat(&mut self, c: char) -> bool {
        if self.peek() == Some(c) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    /// Skips whitespace; the ABNF wants single spaces, we accept any run.
    pub(crate) fn skip_ws(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.pos += 1;
        }
    }

    /// Reads a run of word characters (possibly empty); returns its start.
    pub(crate) fn word(&mut self) -> (usize, String) {
        let start = self.pos;
        while self.peek().is_some_and(is_word_char) {
            self.pos += 1;
        }
        (start, self.chars[start..self.pos].iter().collect())
    }

    /// Describes the token at the cursor for error messages.
    pub(crate) fn describe_next(&self) -> String {
        match self.peek() {
            None => "end of input".to_owned(),
            Some(c) if is_word_char(c) => {
                let word: String = self.chars[self.pos..]
                    .iter()
                    .take_while(|c| is_word_char(**c))
                    .take(40)
                    .collect();
                format!("'{word}'")
            }
            Some(c) => format!("'{}'", c.escape_debug()),
        }
    }

    /// An "expected X, found Y" error at the cursor.
    pub(crate) fn expected(&self, what: &str) -> ParseError {
        ParseError::new(
            self.pos,
            format!("expected {what}, found {}", self.describe_next()),
        )
    }
}
