//! Reading mapping files from disk: one file, or a whole directory of them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::destination::Destination;
use crate::error::MappingError;
use crate::parse::parse_file;

/// Reads and parses one mapping file; an I/O error is reported at 1:1.
pub fn load_file(
    file: &Path,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Destination, Vec<MappingError>> {
    match std::fs::read_to_string(file) {
        Ok(text) => parse_file(file, &text, env),
        Err(e) => Err(vec![file_error(file, format!("cannot read file: {e}"))]),
    }
}

/// Loads every `*.yaml` / `*.yml` file directly in `dir`, in file name order.
///
/// Other files (such as `schema.json`) are ignored. Files with errors are left out of the
/// destinations and their errors returned; so is every file reusing a destination name
/// already taken by an earlier file.
pub fn load_dir(
    dir: &Path,
    env: &dyn Fn(&str) -> Option<String>,
) -> (Vec<Destination>, Vec<MappingError>) {
    let mut errors = Vec::new();
    let files = match mapping_files(dir) {
        Ok(files) => files,
        Err(e) => {
            return (
                Vec::new(),
                vec![file_error(dir, format!("cannot read directory: {e}"))],
            );
        }
    };
    let mut destinations: Vec<Destination> = Vec::with_capacity(files.len());
    let mut by_name: BTreeMap<String, usize> = BTreeMap::new();
    for file in files {
        match load_file(&file, env) {
            Ok(d) => {
                let earlier = by_name.get(&d.name).and_then(|&i| destinations.get(i));
                if let Some(other) = earlier {
                    let (line, col) = other.positions.nearest("destination");
                    errors.push(d.error_at(
                        "destination",
                        format!(
                            "destination {:?} is already defined in {}:{line}:{col}",
                            d.name,
                            other.file.display()
                        ),
                    ));
                } else {
                    by_name.insert(d.name.clone(), destinations.len());
                    destinations.push(d);
                }
            }
            Err(mut e) => errors.append(&mut e),
        }
    }
    (destinations, errors)
}

fn mapping_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        let is_yaml = path
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| e == "yaml" || e == "yml");
        if is_yaml && path.is_file() {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

fn file_error(file: &Path, reason: String) -> MappingError {
    MappingError {
        file: file.to_path_buf(),
        line: 1,
        col: 1,
        key_path: String::new(),
        reason,
    }
}
