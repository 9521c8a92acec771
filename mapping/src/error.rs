//! The located error type every validation problem is reported as.

use std::path::PathBuf;

/// One problem in a mapping file, located at `file:line:col` (1-based).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}:{}:{}: {}{}", file.display(), line, col, key_prefix(key_path), reason)]
pub struct MappingError {
    pub file: PathBuf,
    pub line: usize,
    pub col: usize,
    /// Where in the document, e.g. `fields.email.transform[2]`; empty for file-level problems.
    pub key_path: String,
    pub reason: String,
}

fn key_prefix(key_path: &str) -> String {
    if key_path.is_empty() {
        String::new()
    } else {
        format!("{key_path}: ")
    }
}

/// Collects every error of one file, so a run reports all of them at once.
pub(crate) struct Errors {
    file: PathBuf,
    list: Vec<MappingError>,
}

impl Errors {
    pub(crate) fn new(file: &std::path::Path) -> Self {
        Errors {
            file: file.to_path_buf(),
            list: Vec::new(),
        }
    }

    pub(crate) fn push(
        &mut self,
        key_path: &str,
        pos: crate::tree::Pos,
        reason: impl Into<String>,
    ) {
        self.list.push(MappingError {
            file: self.file.clone(),
            line: pos.line,
            col: pos.col,
            key_path: key_path.to_owned(),
            reason: reason.into(),
        });
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    pub(crate) fn into_vec(self) -> Vec<MappingError> {
        self.list
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_omits_empty_key_path() {
        let mut e = MappingError {
            file: "m/x.yaml".into(),
            line: 3,
            col: 7,
            key_path: "when".into(),
            reason: "boom".into(),
        };
        assert_eq!(e.to_string(), "m/x.yaml:3:7: when: boom");
        e.key_path.clear();
        assert_eq!(e.to_string(), "m/x.yaml:3:7: boom");
    }
}
