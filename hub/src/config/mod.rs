//! Settings: defaults, then `hub.toml` (or `HUB_CONFIG`), then `HUB_*` env
//! (`__` separates levels: `HUB_DELIVERY__MAX_ATTEMPTS=5`), then validation
//! into [`Config`], which the rest of the hub receives by value.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use connectors::standard_webhooks::{SecretError, WebhookSecret};
use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};

mod admin;
mod retention;
pub use admin::{AdminSettings, AdminToken, AdminTokenSettings, DEFAULT_TOKEN_NAME, Scope};
pub use retention::RetentionSettings;

mod problems;
mod role;
mod telemetry;
pub use problems::ConfigProblem;
pub use role::Role;
pub use telemetry::{Telemetry, TelemetrySettings};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    /// Which parts this process runs; `hub serve --role` overrides it.
    #[serde(default)]
    pub role: Role,
    #[serde(default = "default_listen")]
    pub listen: String,
    #[serde(default = "default_database_url")]
    pub database_url: String,
    #[serde(default = "default_mappings")]
    pub mappings: PathBuf,
    #[serde(default)]
    pub webhooks: WebhookSettings,
    #[serde(default)]
    pub sources: BTreeMap<String, SourceSettings>,
    #[serde(default)]
    pub delivery: DeliverySettings,
    #[serde(default)]
    pub admin: AdminSettings,
    #[serde(default)]
    pub consent: ConsentSettings,
    #[serde(default)]
    pub privacy: PrivacySettings,
    /// Brands a subject can belong to, and destinations and consent be scoped to.
    #[serde(default)]
    pub brands: BTreeMap<String, BrandSettings>,
    #[serde(default)]
    pub scim: ScimSettings,
    #[serde(default)]
    pub store: StoreSettings,
    #[serde(default)]
    pub retention: RetentionSettings,
    #[serde(default)]
    pub telemetry: TelemetrySettings,
}

/// `[store]`: how long anything waits for the database.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreSettings {
    /// A request that cannot commit within this is answered 503 with
    /// `Retry-After` (a full disk, a database that is down), and no
    /// connection is waited for longer.
    #[serde(default = "default_store_timeout", with = "humantime_serde")]
    pub timeout: Duration,
}

impl Default for StoreSettings {
    fn default() -> Self {
        Self {
            timeout: default_store_timeout(),
        }
    }
}

fn default_store_timeout() -> Duration {
    Duration::from_secs(5)
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct BrandSettings {
    #[serde(default)]
    pub description: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrivacySettings {
    /// An erasure completes (PII removed, receipt written) when every
    /// destination confirmed its delete, or when this passes (reported).
    #[serde(default = "default_erasure_deadline", with = "humantime_serde")]
    pub erasure_deadline: Duration,
    /// Delivery attempts (whose details may echo PII) are kept this long.
    #[serde(default = "default_attempt_retention", with = "humantime_serde")]
    pub attempt_retention: Duration,
}

impl Default for PrivacySettings {
    fn default() -> Self {
        Self {
            erasure_deadline: default_erasure_deadline(),
            attempt_retention: default_attempt_retention(),
        }
    }
}
fn default_erasure_deadline() -> Duration {
    Duration::from_secs(30 * 24 * 3600)
}
fn default_attempt_retention() -> Duration {
    Duration::from_secs(30 * 24 * 3600)
}

/// The purposes a customer can grant. Unknown purposes are refused at input.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsentSettings {
    #[serde(default = "default_purposes")]
    pub purposes: BTreeMap<String, PurposeSettings>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PurposeSettings {
    pub description: String,
}

impl Default for ConsentSettings {
    fn default() -> Self {
        Self {
            purposes: default_purposes(),
        }
    }
}

/// Declaring `[consent.purposes.*]` replaces this set.
fn default_purposes() -> BTreeMap<String, PurposeSettings> {
    [
        ("marketing_email", "Marketing messages by email"),
        ("marketing_sms", "Marketing messages by SMS"),
        ("analytics", "Product and usage analytics"),
        ("personalization", "Personalised content and offers"),
        ("advertising", "Advertising audiences"),
    ]
    .into_iter()
    .map(|(name, d)| {
        (
            name.to_string(),
            PurposeSettings {
                description: d.into(),
            },
        )
    })
    .collect()
}

fn default_listen() -> String {
    "127.0.0.1:8080".into()
}
fn default_database_url() -> String {
    "sqlite://./data/hub.db".into()
}
fn default_mappings() -> PathBuf {
    "./mappings".into()
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookSettings {
    /// Largest accepted body, e.g. `256KiB`.
    #[serde(default = "default_max_body")]
    pub max_body: ByteSize,
    /// How far `webhook-timestamp` may be from our clock, either way.
    #[serde(default = "default_tolerance", with = "humantime_serde")]
    pub tolerance: Duration,
}

impl Default for WebhookSettings {
    fn default() -> Self {
        Self {
            max_body: default_max_body(),
            tolerance: default_tolerance(),
        }
    }
}
fn default_max_body() -> ByteSize {
    ByteSize(256 * 1024)
}
fn default_tolerance() -> Duration {
    Duration::from_secs(300)
}

#[derive(Clone, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct SourceSettings {
    /// One `whsec_` secret...
    #[serde(default)]
    pub secret: Option<String>,
    /// ...or several, while rotating.
    #[serde(default)]
    pub secrets: Vec<String>,
}

impl std::fmt::Debug for SourceSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SourceSettings").finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeliverySettings {
    /// Jobs one destination claims at once, at most.
    #[serde(default = "default_batch")]
    pub batch: usize,
    /// Calls in flight per destination, at most (adaptive concurrency moves
    /// below it).
    #[serde(default = "default_concurrency")]
    pub concurrency: usize,
    /// How long a partial batch may wait for more items while other batches
    /// of the destination are in flight (an idle destination sends at once).
    #[serde(default = "default_linger", with = "humantime_serde")]
    pub linger: Duration,
    /// How often a destination paused by the vendor (401/403) is probed.
    #[serde(default = "default_probe_interval", with = "humantime_serde")]
    pub probe_interval: Duration,
    #[serde(default = "default_retry_base", with = "humantime_serde")]
    pub retry_base: Duration,
    #[serde(default = "default_retry_cap", with = "humantime_serde")]
    pub retry_cap: Duration,
    /// A vendor's `Retry-After` is honoured up to this.
    #[serde(default = "default_retry_cap", with = "humantime_serde")]
    pub retry_after_cap: Duration,
    #[serde(default = "default_max_attempts")]
    pub max_attempts: u32,
    #[serde(default = "default_max_age", with = "humantime_serde")]
    pub max_age: Duration,
    /// A claimed job is someone else's until this passes (crash recovery).
    #[serde(default = "default_lease", with = "humantime_serde")]
    pub lease: Duration,
    /// How often an idle worker looks for due jobs.
    #[serde(default = "default_poll", with = "humantime_serde")]
    pub poll_interval: Duration,
    /// Upper bound for one HTTP call to a destination.
    #[serde(default = "default_http_timeout", with = "humantime_serde")]
    pub http_timeout: Duration,
    /// A vendor's asynchronous job (an erasure request, an import) is asked
    /// about at least this often, whatever later time the connector named.
    #[serde(default = "default_ticket_check_cap", with = "humantime_serde")]
    pub ticket_check_cap: Duration,
}

impl Default for DeliverySettings {
    fn default() -> Self {
        Self {
            batch: default_batch(),
            concurrency: default_concurrency(),
            linger: default_linger(),
            probe_interval: default_probe_interval(),
            retry_base: default_retry_base(),
            retry_cap: default_retry_cap(),
            retry_after_cap: default_retry_cap(),
            max_attempts: default_max_attempts(),
            max_age: default_max_age(),
            lease: default_lease(),
            poll_interval: default_poll(),
            http_timeout: default_http_timeout(),
            ticket_check_cap: default_ticket_check_cap(),
        }
    }
}
fn default_linger() -> Duration {
    Duration::from_millis(100)
}
fn default_probe_interval() -> Duration {
    Duration::from_secs(60)
}
fn default_batch() -> usize {
    256
}
fn default_concurrency() -> usize {
    128
}
fn default_retry_base() -> Duration {
    Duration::from_secs(5)
}
fn default_retry_cap() -> Duration {
    Duration::from_secs(3600)
}
fn default_max_attempts() -> u32 {
    15
}
fn default_max_age() -> Duration {
    Duration::from_secs(24 * 3600)
}
fn default_lease() -> Duration {
    Duration::from_secs(120)
}
fn default_poll() -> Duration {
    Duration::from_millis(250)
}
fn default_http_timeout() -> Duration {
    Duration::from_secs(30)
}
fn default_ticket_check_cap() -> Duration {
    Duration::from_secs(3600)
}

/// A size such as `256KiB`, `1MiB`, `64kb` or a plain byte count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteSize(pub usize);

impl Serialize for ByteSize {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(self.0 as u64)
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            N(u64),
            S(String),
        }
        match Raw::deserialize(d)? {
            Raw::N(n) => Ok(ByteSize(n as usize)),
            Raw::S(s) => ByteSize::parse(&s).map_err(serde::de::Error::custom),
        }
    }
}

impl ByteSize {
    pub fn parse(text: &str) -> Result<Self, String> {
        let t = text.trim();
        let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
        let (num, unit) = t.split_at(split);
        let n: usize = num
            .parse()
            .map_err(|_| "expected a size like 256KiB".to_string())?;
        let mult = match unit.trim().to_ascii_lowercase().as_str() {
            "" | "b" => 1,
            "k" | "kb" | "kib" => 1024,
            "m" | "mb" | "mib" => 1024 * 1024,
            _ => return Err("unknown size unit; use B, KiB or MiB".to_string()),
        };
        Ok(ByteSize(n * mult))
    }
}

/// A webhook source with its parsed secrets.
#[derive(Debug, Clone)]
pub struct Source {
    pub name: String,
    pub secrets: Vec<WebhookSecret>,
}

/// The names mapping files may use: declared purposes and brands.
#[derive(Debug, Clone, Default)]
pub struct Vocabulary {
    pub purposes: Vec<String>,
    pub brands: Vec<String>,
}

impl Config {
    pub fn vocabulary(&self) -> Vocabulary {
        Vocabulary {
            purposes: self.purposes.keys().cloned().collect(),
            brands: self.brands.keys().cloned().collect(),
        }
    }
}

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub role: Role,
    pub listen: SocketAddr,
    pub database_url: String,
    pub mappings: PathBuf,
    pub webhooks: WebhookSettings,
    pub sources: BTreeMap<String, Source>,
    pub delivery: DeliverySettings,
    /// Admin API bearer tokens (none: the admin API is off).
    pub admin_tokens: Vec<AdminToken>,
    pub purposes: BTreeMap<String, PurposeSettings>,
    pub privacy: PrivacySettings,
    pub brands: BTreeMap<String, BrandSettings>,
    /// SCIM client name -> SHA-256 of its bearer token.
    pub scim_clients: BTreeMap<String, [u8; 32]>,
    pub store: StoreSettings,
    pub retention: RetentionSettings,
    /// Span export (OTLP); off unless `[telemetry] otlp_endpoint` is set.
    pub telemetry: Telemetry,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file or the environment could not be read into settings. The
    /// parser's own errors are not kept as a source: their text quotes
    /// values and source lines, which may hold secrets (see `problems`).
    #[error("configuration could not be read:\n  {}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n  "))]
    Load(Vec<ConfigProblem>),
    #[error("configuration is invalid:\n  {}", .0.join("\n  "))]
    Invalid(Vec<String>),
}

/// The top-level keys of [`RawConfig`], which `HUB_*` variables may set.
const SETTING_SECTIONS: &[&str] = &[
    "role",
    "listen",
    "database_url",
    "mappings",
    "webhooks",
    "sources",
    "delivery",
    "retention",
    "admin",
    "consent",
    "privacy",
    "brands",
    "scim",
    "store",
    "telemetry",
];

impl RawConfig {
    /// Layers defaults, the TOML file (when it exists) and `HUB_*` env.
    pub fn load(file: Option<&std::path::Path>) -> Result<Self, ConfigError> {
        let file = file
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HUB_CONFIG").map(PathBuf::from))
            .unwrap_or_else(|| "hub.toml".into());
        // Syntax first, by a parser whose errors we can word without values.
        let text = std::fs::read_to_string(&file).ok();
        if let Some(text) = &text
            && let Err(e) = text.parse::<toml::Table>()
        {
            return Err(ConfigError::Load(vec![problems::syntax(&file, text, &e)]));
        }
        let figment = Figment::from(Serialized::defaults(RawConfig::default()))
            .merge(Toml::file(&file))
            .merge(
                Env::prefixed("HUB_")
                    // Other HUB_* variables (HUB_LOG, HUB_CONFIG, a test's
                    // HUB_TEST_DATABASE_URL) are not settings; typos inside a
                    // section still fail as unknown keys.
                    .filter(|key| {
                        let section = key.as_str().split("__").next().unwrap_or_default();
                        SETTING_SECTIONS
                            .iter()
                            .any(|s| section.eq_ignore_ascii_case(s))
                    })
                    .split("__"),
            );
        figment
            .extract()
            .map_err(|e| ConfigError::Load(problems::extraction(e, &file, text.as_deref())))
    }

    /// Checks everything without I/O and reports every problem at once.
    pub fn validate(self) -> Result<Config, ConfigError> {
        let mut errors = Vec::new();
        let listen = self
            .listen
            .parse()
            .map_err(|_| errors.push(format!("listen: {:?} is not HOST:PORT", self.listen)))
            .ok();
        if !(self.database_url.starts_with("sqlite:")
            || self.database_url.starts_with("postgres://")
            || self.database_url.starts_with("postgresql://"))
        {
            errors.push("database_url: expected sqlite://PATH or postgres://...".into());
        }
        if let Err(e) = self.role.check_database(&self.database_url) {
            errors.push(e);
        }
        let mut sources = BTreeMap::new();
        for (name, s) in &self.sources {
            let texts: Vec<&String> = s.secret.iter().chain(s.secrets.iter()).collect();
            if texts.is_empty() {
                errors.push(format!("sources.{name}: needs `secret` or `secrets`"));
            }
            let mut secrets = Vec::new();
            for (i, t) in texts.iter().enumerate() {
                match WebhookSecret::parse(t) {
                    Ok(s) => secrets.push(s),
                    Err(e) => errors.push(format!("sources.{name}.secrets[{i}]: {e}")),
                }
            }
            sources.insert(
                name.clone(),
                Source {
                    name: name.clone(),
                    secrets,
                },
            );
        }
        for name in self.consent.purposes.keys() {
            if !crate::event::valid_purpose_name(name) {
                errors.push(format!(
                    "consent.purposes.{name}: a purpose name must match [a-z0-9_]{{1,64}}"
                ));
            }
        }
        let d = &self.delivery;
        if d.batch == 0 || d.concurrency == 0 || d.max_attempts == 0 {
            errors.push("delivery: batch, concurrency and max_attempts must be at least 1".into());
        }
        if d.retry_base > d.retry_cap {
            errors.push("delivery.retry_base must not exceed delivery.retry_cap".into());
        }
        // A claimed job may wait for a slot (up to linger), then its call
        // runs (up to http_timeout); with a second of slack the lease must
        // cover both, or a slow call could be reclaimed and sent twice.
        if d.lease < d.http_timeout * 2 + d.linger + Duration::from_secs(1) {
            errors.push(
                "delivery.lease must be at least 2 x delivery.http_timeout + delivery.linger + 1s"
                    .into(),
            );
        }
        if self.store.timeout.is_zero() {
            errors.push("store.timeout must not be 0".into());
        }
        if d.probe_interval.is_zero() || d.poll_interval.is_zero() {
            errors.push("delivery.probe_interval and delivery.poll_interval must not be 0".into());
        }
        let admin_tokens = self.admin.validate(&mut errors);
        let scim_clients = self.scim.validate(&mut errors);
        self.retention
            .validate(self.webhooks.tolerance, &mut errors);
        let telemetry = self.telemetry.validate(&mut errors);
        match (listen, errors.is_empty()) {
            (Some(listen), true) => Ok(Config {
                role: self.role,
                listen,
                database_url: self.database_url,
                mappings: self.mappings,
                webhooks: self.webhooks,
                sources,
                delivery: self.delivery,
                admin_tokens,
                purposes: self.consent.purposes,
                privacy: self.privacy,
                brands: self.brands,
                scim_clients,
                store: self.store,
                retention: self.retention,
                telemetry,
            }),
            _ => Err(ConfigError::Invalid(errors)),
        }
    }
}

impl Default for RawConfig {
    fn default() -> Self {
        Self {
            role: Role::default(),
            listen: default_listen(),
            database_url: default_database_url(),
            mappings: default_mappings(),
            webhooks: WebhookSettings::default(),
            sources: BTreeMap::new(),
            delivery: DeliverySettings::default(),
            admin: AdminSettings::default(),
            consent: ConsentSettings::default(),
            privacy: PrivacySettings::default(),
            brands: BTreeMap::new(),
            scim: ScimSettings::default(),
            store: StoreSettings::default(),
            retention: RetentionSettings::default(),
            telemetry: TelemetrySettings::default(),
        }
    }
}

impl From<SecretError> for ConfigError {
    fn from(e: SecretError) -> Self {
        ConfigError::Invalid(vec![e.to_string()])
    }
}

/// `[scim.clients.NAME]`: one identity provider each; its name is the
/// source of every change it makes.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct ScimSettings {
    #[serde(default)]
    pub clients: BTreeMap<String, ScimClientSettings>,
}

#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScimClientSettings {
    /// SHA-256 (hex) of the client's bearer token (`hub token new NAME`).
    pub token_sha256: String,
}

impl std::fmt::Debug for ScimClientSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScimClientSettings").finish_non_exhaustive()
    }
}

impl ScimSettings {
    fn validate(&self, errors: &mut Vec<String>) -> BTreeMap<String, [u8; 32]> {
        let mut clients = BTreeMap::new();
        for (name, c) in &self.clients {
            if !crate::event::valid_purpose_name(name) {
                errors.push(format!(
                    "scim.clients.{name}: a client name must match [a-z0-9_]{{1,64}}"
                ));
            }
            match hex::decode(c.token_sha256.trim())
                .ok()
                .and_then(|b| <[u8; 32]>::try_from(b).ok())
            {
                Some(hash) => {
                    clients.insert(name.clone(), hash);
                }
                None => errors.push(format!(
                    "scim.clients.{name}.token_sha256: expected 64 hex digits"
                )),
            }
        }
        clients
    }
}

#[cfg(test)]
mod tests;
