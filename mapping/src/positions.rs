//! Key path -> source position index, kept on each destination for later error reports.

use std::collections::BTreeMap;
use std::path::Path;

use crate::error::MappingError;
use crate::tree::Pos;

/// Source positions of every key path in a mapping file, 1-based `(line, col)`.
///
/// Key paths join mapping keys with `.` and list indexes with `[i]`:
/// `settings.url`, `fields.email.transform[1]`. The empty path is the file itself (1:1).
/// A key whose value is a block collection points at the key; otherwise at the value.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Positions(BTreeMap<String, (usize, usize)>);

impl Positions {
    /// Position of `key_path`, if the file has it.
    pub fn get(&self, key_path: &str) -> Option<(usize, usize)> {
        self.0.get(key_path).copied()
    }

    /// Position of `key_path`, else of its nearest present ancestor, else 1:1.
    pub fn nearest(&self, key_path: &str) -> (usize, usize) {
        let mut path = key_path;
        loop {
            if let Some(p) = self.get(path) {
                return p;
            }
            match path.rfind(['.', '[']) {
                Some(i) => path = &path[..i],
                None => return self.get("").unwrap_or((1, 1)),
            }
        }
    }

    /// Builds an error located at `key_path` (see [`Positions::nearest`]).
    pub fn error(&self, file: &Path, key_path: &str, reason: impl Into<String>) -> MappingError {
        let (line, col) = self.nearest(key_path);
        MappingError {
            file: file.to_path_buf(),
            line,
            col,
            key_path: key_path.to_owned(),
            reason: reason.into(),
        }
    }

    /// All recorded key paths with their positions, in key path order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, (usize, usize))> {
        self.0.iter().map(|(k, v)| (k.as_str(), *v))
    }

    pub(crate) fn insert(&mut self, key_path: String, pos: Pos) {
        self.0.insert(key_path, (pos.line, pos.col));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_falls_back_to_ancestors() {
        let mut p = Positions::default();
        p.insert(String::new(), Pos::START);
        p.insert("fields.email".into(), Pos { line: 4, col: 3 });
        assert_eq!(p.nearest("fields.email.transform[2]"), (4, 3));
        assert_eq!(p.nearest("connector"), (1, 1));
        let e = p.error(Path::new("a.yaml"), "fields.email.map", "bad");
        assert_eq!(e.to_string(), "a.yaml:4:3: fields.email.map: bad");
    }
}
