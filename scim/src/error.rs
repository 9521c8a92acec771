//! The syntax error shared by the path and filter parsers.

/// A syntax error, located by the 0-based character (not byte) offset where
/// the parser noticed it.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("at position {position}: {message}")]
pub struct ParseError {
    /// 0-based char offset into the input.
    pub position: usize,
    /// Human-readable description of what was expected or found.
    pub message: String,
}

impl ParseError {
    /// Builds an error at `position` (a char offset).
    pub fn new(position: usize, message: impl Into<String>) -> Self {
        Self {
            position,
            message: message.into(),
        }
    }
}
