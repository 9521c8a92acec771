//! The live set of destinations: mapping files bound to their connectors,
//! loaded and validated together, and swapped atomically on reload. A file
//! that fails validation is refused and its previous version keeps running.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwap;
use connectors::Connector;
use mapping::{Destination, MappingError};

use crate::config::Vocabulary;

/// A destination ready to deliver.
#[derive(Debug)]
pub struct ActiveDestination {
    pub mapping: Destination,
    /// None while the destination is disabled (its settings may be incomplete).
    pub connector: Option<Box<dyn Connector>>,
}

#[derive(Debug, Default)]
pub struct DestinationSet {
    by_name: BTreeMap<String, Arc<ActiveDestination>>,
    by_file: BTreeMap<PathBuf, Arc<ActiveDestination>>,
}

impl DestinationSet {
    pub fn get(&self, name: &str) -> Option<&Arc<ActiveDestination>> {
        self.by_name.get(name)
    }

    /// Enabled destinations: the fan-out of every change.
    pub fn enabled_names(&self) -> Vec<String> {
        self.by_name
            .values()
            .filter(|d| d.mapping.enabled)
            .map(|d| d.mapping.name.clone())
            .collect()
    }

    pub fn iter(&self) -> impl Iterator<Item = &Arc<ActiveDestination>> {
        self.by_name.values()
    }

    pub fn from_destinations(list: Vec<ActiveDestination>) -> Self {
        let mut set = DestinationSet::default();
        for d in list {
            let d = Arc::new(d);
            set.by_file.insert(d.mapping.file.clone(), d.clone());
            set.by_name.insert(d.mapping.name.clone(), d);
        }
        set
    }
}

/// Reads the environment for `${env:NAME}` at load time only.
fn env_lookup(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

/// Parses one file and builds its connector.
pub fn load_one(file: &Path, vocab: &Vocabulary) -> Result<ActiveDestination, Vec<MappingError>> {
    let mapping = mapping::load_file(file, &env_lookup)?;
    bind(mapping, vocab)
}

/// Every purpose and brand a file names must be declared in the settings.
fn check_names(mapping: &Destination, vocab: &Vocabulary) -> Vec<MappingError> {
    let unknown = |p: &String| !vocab.purposes.contains(p);
    let known = vocab.purposes.join(", ");
    let mut errors: Vec<MappingError> = mapping
        .consent
        .iter()
        .enumerate()
        .filter(|(_, p)| unknown(p))
        .map(|(i, p)| {
            mapping.error_at(
                &format!("consent[{i}]"),
                format!("unknown purpose {p:?}; declared: {known}"),
            )
        })
        .collect();
    for field in &mapping.fields {
        if let Some(p) = field.consent.as_ref().filter(|p| unknown(p)) {
            errors.push(mapping.error_at(
                &format!("fields.{}.consent", field.target),
                format!("unknown purpose {p:?}; declared: {known}"),
            ));
        }
    }
    if let Some(b) = mapping.brand.as_ref().filter(|b| !vocab.brands.contains(b)) {
        errors.push(mapping.error_at(
            "brand",
            format!("unknown brand {b:?}; declared: {}", vocab.brands.join(", ")),
        ));
    }
    errors
}

fn bind(mapping: Destination, vocab: &Vocabulary) -> Result<ActiveDestination, Vec<MappingError>> {
    let errors = check_names(&mapping, vocab);
    if !errors.is_empty() {
        return Err(errors);
    }
    if !mapping.enabled {
        return Ok(ActiveDestination {
            mapping,
            connector: None,
        });
    }
    match connectors::build(&mapping.connector, mapping.settings.as_value()) {
        Ok(connector) => Ok(ActiveDestination {
            mapping,
            connector: Some(connector),
        }),
        Err(e) => {
            let key = match e {
                connectors::ConnectorError::Unknown(_) => "connector",
                _ => "settings",
            };
            Err(vec![mapping.error_at(key, e.to_string())])
        }
    }
}

/// Every mapping file of `dir`, fully validated (`hub mappings check`).
pub fn check_dir(dir: &Path, vocab: &Vocabulary) -> (Vec<ActiveDestination>, Vec<MappingError>) {
    let (destinations, mut errors) = mapping::load_dir(dir, &env_lookup);
    let mut ok = Vec::new();
    for d in destinations {
        match bind(d, vocab) {
            Ok(a) => ok.push(a),
            Err(e) => errors.extend(e),
        }
    }
    (ok, errors)
}

/// Builds the next set from `dir`: good files replace their previous
/// version, bad files keep it. Returns the errors to log.
pub fn reload(
    dir: &Path,
    previous: &DestinationSet,
    vocab: &Vocabulary,
) -> (DestinationSet, Vec<MappingError>) {
    let files = mapping_files(dir);
    let mut next = DestinationSet::default();
    let mut errors = Vec::new();
    for file in files {
        let candidate = match load_one(&file, vocab) {
            Ok(d) => Some(Arc::new(d)),
            Err(e) => {
                errors.extend(e);
                previous.by_file.get(&file).cloned()
            }
        };
        let Some(d) = candidate else { continue };
        if let Some(other) = next.by_name.get(&d.mapping.name) {
            errors.push(d.mapping.error_at(
                "destination",
                format!(
                    "destination {:?} is already defined in {}",
                    d.mapping.name,
                    other.mapping.file.display()
                ),
            ));
            continue;
        }
        next.by_name.insert(d.mapping.name.clone(), d.clone());
        next.by_file.insert(file, d);
    }
    (next, errors)
}

fn mapping_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| matches!(p.extension().and_then(|e| e.to_str()), Some("yaml" | "yml")))
        .collect();
    files.sort();
    files
}

/// What identifies a version of the directory: names, sizes and mtimes.
fn fingerprint(dir: &Path) -> Vec<(PathBuf, u64, Option<SystemTime>)> {
    mapping_files(dir)
        .into_iter()
        .map(|p| {
            let meta = std::fs::metadata(&p).ok();
            let len = meta.as_ref().map(|m| m.len()).unwrap_or(0);
            let mtime = meta.and_then(|m| m.modified().ok());
            (p, len, mtime)
        })
        .collect()
}

/// Polls `dir` and swaps in a new set when files change.
pub async fn watch(
    dir: PathBuf,
    live: Arc<ArcSwap<DestinationSet>>,
    interval: Duration,
    vocab: Vocabulary,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    let mut seen = fingerprint(&dir);
    loop {
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = shutdown.changed() => return,
        }
        let now = fingerprint(&dir);
        if now == seen {
            continue;
        }
        seen = now;
        let (next, errors) = reload(&dir, &live.load(), &vocab);
        for e in &errors {
            tracing::error!(error = %e, "mapping file refused; previous version kept");
        }
        tracing::info!(destinations = next.by_name.len(), "mappings reloaded");
        live.store(Arc::new(next));
    }
}
