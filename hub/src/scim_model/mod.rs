//! SCIM 2.0 resources over the hub's model (RFC 7643): a User is a subject
//! (`profile` holds its SCIM-shaped attributes), a Group is a row with members
//! whose `groups` attribute it maintains. This module turns request bodies
//! into stored attributes, applies PATCH, and renders resources and lists;
//! it knows nothing of HTTP (see `http/scim/`) or SQL (see `store/`).

pub mod error;
pub mod group;
pub mod patch;
pub mod query;
pub mod schema;
pub mod user;
pub mod validate;

pub use error::{ScimError, ScimType};

pub const ERROR_URN: &str = "urn:ietf:params:scim:api:messages:2.0:Error";
pub const LIST_URN: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";
pub const PATCH_URN: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";

/// Object member lookup, exact key first, then ASCII case-insensitive.
pub(crate) fn get_ci<'a>(value: &'a serde_json::Value, key: &str) -> Option<&'a serde_json::Value> {
    let obj = value.as_object()?;
    obj.get(key).or_else(|| {
        obj.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v)
    })
}

/// RFC 3339 with milliseconds, UTC, from the store's epoch milliseconds.
pub(crate) fn timestamp(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// The weak ETag of a version.
pub fn etag(version: i64) -> String {
    format!("W/\"{version}\"")
}

/// The `meta` object of a resource.
pub(crate) fn meta(
    kind: &str,
    created: i64,
    modified: i64,
    version: i64,
    location: String,
) -> serde_json::Value {
    serde_json::json!({
        "resourceType": kind,
        "created": timestamp(created),
        "lastModified": timestamp(modified),
        "version": etag(version),
        "location": location,
    })
}
