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

/// Validates a mapping file's text as `hub mappings check` would a file
/// of that name (`POST /admin/mappings/validate`); nothing is loaded.
pub fn check_text(
    file: &Path,
    text: &str,
    vocab: &Vocabulary,
) -> Result<ActiveDestination, Vec<MappingError>> {
    let mapping = mapping::parse_file(file, text, &env_lookup)?;
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

/// True when a disabled file still holds `${env:...}` placeholders (their
/// variables are not set here), so its settings cannot be judged yet.
fn has_placeholders(value: &serde_json::Value) -> bool {
    match value {
        serde_json::Value::String(s) => s.contains("${env:"),
        serde_json::Value::Array(items) => items.iter().any(has_placeholders),
        serde_json::Value::Object(map) => map.values().any(has_placeholders),
        _ => false,
    }
}

/// Every identity field the connector addresses subjects by must be mapped.
fn check_identity(mapping: &Destination, connector: &dyn Connector) -> Vec<MappingError> {
    connector
        .identity_fields()
        .into_iter()
        .filter(|f| !mapping.fields.iter().any(|rule| &rule.target == f))
        .map(|f| {
            mapping.error_at(
                "fields",
                format!(
                    "connector {} identifies subjects by field {f:?}: map it under fields",
                    mapping.connector
                ),
            )
        })
        .collect()
}

fn bind(mapping: Destination, vocab: &Vocabulary) -> Result<ActiveDestination, Vec<MappingError>> {
    let mut errors = check_names(&mapping, vocab);
    let built = connectors::build(&mapping.connector, mapping.settings.as_value());
    let connector = match built {
        Ok(connector) => {
            errors.extend(check_identity(&mapping, connector.as_ref()));
            Some(connector)
        }
        // A disabled file with unresolved secrets is checked once enabled.
        Err(_)
            if !mapping.enabled
                && has_placeholders(mapping.settings.as_value())
                && connectors::ConnectorKind::parse(&mapping.connector).is_some() =>
        {
            None
        }
        Err(e) => {
            let (key, reason) = settings_problem(&e, mapping.settings.as_value());
            errors.push(mapping.error_at(&key, reason));
            None
        }
    };
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(ActiveDestination {
        connector: connector.filter(|_| mapping.enabled),
        mapping,
    })
}

/// The key and reason of a connector's refusal of its settings, with no
/// setting's value in it. The connectors' messages name the key and what
/// was expected (`connectors::settings`); as a second line of defence any
/// setting's value that still shows up is taken out, since after
/// `${env:...}` resolution it can be a secret.
fn settings_problem(
    e: &connectors::ConnectorError,
    settings: &serde_json::Value,
) -> (String, String) {
    use connectors::ConnectorError as E;
    let named = |key: &str| format!("settings.{key}");
    let mut reason = e.to_string();
    for value in string_values(settings) {
        reason = reason.replace(&format!("{value:?}"), "(value not shown)");
        if value.chars().count() >= 4 {
            reason = reason.replace(value, "(value not shown)");
        }
    }
    let key = match e {
        E::Unknown(_) => "connector".to_string(),
        E::Secret(_) => named("secret"),
        // "invalid settings: url: expected ..." names its key first.
        E::Invalid(text) => text
            .split_once(':')
            .map(|(k, _)| k.trim())
            .filter(|k| {
                settings
                    .pointer(&format!("/{}", k.replace('.', "/")))
                    .is_some()
            })
            .map(named)
            .unwrap_or_else(|| "settings".into()),
    };
    (key, reason)
}

/// Every string value in a settings tree, at any depth.
fn string_values(value: &serde_json::Value) -> Vec<&str> {
    match value {
        serde_json::Value::String(s) if !s.is_empty() => vec![s.as_str()],
        serde_json::Value::Array(items) => items.iter().flat_map(string_values).collect(),
        serde_json::Value::Object(map) => map.values().flat_map(string_values).collect(),
        _ => Vec::new(),
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
        // An unchanged file keeps its connector, and with it the
        // connector's state (a cached OAuth token, say).
        let unchanged = previous.by_file.get(&file).filter(|d| {
            std::fs::read(&file).is_ok_and(|text| sha256_hex(&text) == d.mapping.source_sha256)
        });
        let candidate = match unchanged {
            Some(d) => Some(d.clone()),
            None => match load_one(&file, vocab) {
                Ok(d) => Some(Arc::new(d)),
                Err(e) => {
                    errors.extend(e);
                    previous.by_file.get(&file).cloned()
                }
            },
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

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(bytes))
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

/// `hub destinations` and `GET /admin/destinations`: each loaded
/// destination with its connector, whether it is enabled, and its state,
/// queue and outcomes from the store.
pub async fn reports<'a>(
    store: &dyn crate::store::Store,
    destinations: impl IntoIterator<Item = &'a ActiveDestination>,
) -> Result<Vec<serde_json::Value>, crate::store::StoreError> {
    let list: Vec<&ActiveDestination> = destinations.into_iter().collect();
    let names: Vec<String> = list.iter().map(|d| d.mapping.name.clone()).collect();
    let reports = store.destination_reports(&names).await?;
    let backfills = store.backfill_statuses(&names).await?;
    Ok(list
        .iter()
        .zip(reports)
        .map(|(d, r)| {
            let mut v = serde_json::to_value(&r).unwrap_or_default();
            if let Some(obj) = v.as_object_mut() {
                obj.insert("connector".into(), d.mapping.connector.clone().into());
                obj.insert("enabled".into(), d.mapping.enabled.into());
                // The latest backfill's cursor and counts: with `pending`,
                // how far it has queued and how much is left to deliver.
                let backfill = backfills.iter().find(|b| b.destination == d.mapping.name);
                obj.insert(
                    "backfill".into(),
                    serde_json::to_value(backfill).unwrap_or_default(),
                );
            }
            v
        })
        .collect())
}

#[cfg(test)]
mod tests;
