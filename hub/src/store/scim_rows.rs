//! Row and value types of the SCIM tables: Users (subjects a SCIM client
//! provisioned) and Groups with their members.

/// A SCIM User as stored: a live subject whose `scim_user_name` is set.
#[derive(Debug, Clone)]
pub struct ScimUserRecord {
    pub id: String,
    /// The SCIM client that created it.
    pub source: String,
    pub external_id: String,
    /// SCIM-shaped attributes (core at the top, extensions keyed by URN),
    /// without `id`, `meta`, `schemas` or `password`.
    pub profile: serde_json::Value,
    pub version: i64,
    pub created_at: i64,
    pub updated_at: i64,
    /// Current consent, ordered by (brand, purpose).
    pub consents: Vec<ScimConsent>,
}

/// One consent of a subject; `brand` is empty for the global one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScimConsent {
    pub purpose: String,
    pub brand: String,
    /// `granted` or `denied`.
    pub state: String,
}

#[derive(Debug, Clone)]
pub struct ScimGroupRecord {
    pub id: String,
    pub source: String,
    pub external_id: Option<String>,
    pub display_name: String,
    pub version: i64,
    pub created_at: i64,
    pub updated_at: i64,
    /// (subject id, display), ordered by subject id; empty unless asked for.
    pub members: Vec<(String, Option<String>)>,
}

/// How a User query is narrowed in SQL before the filter runs in memory.
/// Every row the filter could match is in the narrowed set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserNarrowing {
    All,
    Id(String),
    /// Lowercased userName.
    UserName(String),
    ExternalId(String),
    /// A lowercased, ASCII e-mail address some `emails[].value` equals.
    Email(String),
    /// `meta.lastModified` (epoch ms) at or after this.
    ModifiedSince(i64),
    /// `meta.lastModified` (epoch ms) at or before this.
    ModifiedUntil(i64),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GroupNarrowing {
    All,
    Id(String),
    /// Lowercased displayName.
    DisplayName(String),
    ExternalId(String),
}

/// What a write does to the resource; `expected_version` guards against a
/// concurrent write between our read and this write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScimOp {
    Create,
    Update { expected_version: i64 },
    Delete { expected_version: Option<i64> },
}

/// A User write, committed with its change and delivery jobs.
#[derive(Debug, Clone)]
pub struct ScimUserWrite {
    pub op: ScimOp,
    pub id: String,
    /// The SCIM client: the change's source.
    pub client: String,
    /// `externalId` if given, else the hub id (the column is NOT NULL).
    pub external_id: String,
    /// The new attributes (ignored for a delete).
    pub profile: serde_json::Value,
    /// Names of the attributes written, for the change record.
    pub attributes: Vec<String>,
    /// Consents to set (ignored for a delete): each differing from the
    /// current state gets a new version and a ledger row, with the client
    /// as source.
    pub consents: Vec<ScimConsent>,
    pub destinations: Vec<String>,
    pub now: i64,
}

/// A Group write; `members` is the complete new member list.
#[derive(Debug, Clone)]
pub struct ScimGroupWrite {
    pub op: ScimOp,
    pub id: String,
    pub client: String,
    pub external_id: Option<String>,
    pub display_name: String,
    pub members: Vec<String>,
    pub destinations: Vec<String>,
    pub now: i64,
}

#[derive(Debug, Clone)]
pub enum ScimWriteOutcome<T> {
    Done(T),
    NotFound,
    /// The resource changed since it was read.
    VersionMismatch,
    /// A uniqueness rule refused it; names the attribute.
    Conflict(&'static str),
}
