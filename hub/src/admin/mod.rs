//! What an admin can see and do, for the admin API (`http/admin/`) and the
//! console alike: plain async functions over [`AppState`](crate::AppState)
//! that return serde + OpenAPI-described types and fail with [`AdminError`].
//! One module per resource, named as its URL (`/admin/dead-letters` ->
//! `dead_letters`); the HTTP handlers only extract, call and render.

pub mod changes;
pub mod dead_letters;
pub mod deliveries;
pub mod destinations;
pub mod erasure_receipts;
pub mod mappings;
pub mod subjects;

use crate::store::StoreError;

/// Why an admin operation did not happen. Texts never hold a profile
/// value or a secret: a subject is named by the words "that subject".
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("no subject with that hub id or SOURCE:externalId")]
    UnknownSubject,
    #[error("no destination named {0:?}")]
    UnknownDestination(String),
    #[error("no dead letter with that id (or it was replayed or discarded already)")]
    UnknownDeadLetter,
    #[error("no erasure receipt for that subject")]
    UnknownReceipt,
    /// The request is malformed or names nothing that could exist.
    #[error("{0}")]
    Invalid(String),
    /// Well-formed, but the hub's state refuses it now.
    #[error("{detail}")]
    Conflict { title: &'static str, detail: String },
    #[error("the store is unavailable")]
    Store(#[from] StoreError),
}

pub type AdminResult<T> = Result<T, AdminError>;

/// The most rows one list answers.
pub const MAX_LIMIT: i64 = 1000;

/// A page size: `default` when none was asked for; refused outside 1..=1000.
pub fn limit(asked: Option<i64>, default: i64) -> AdminResult<i64> {
    match asked {
        None => Ok(default),
        Some(n) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
        Some(_) => Err(AdminError::Invalid(format!(
            "limit must be between 1 and {MAX_LIMIT}"
        ))),
    }
}
