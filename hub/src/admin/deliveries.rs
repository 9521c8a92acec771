//! Recent delivery attempts, of every subject or of one.

use serde::Serialize;
use utoipa::ToSchema;

use super::AdminResult;
use crate::AppState;
use crate::store::AttemptRecord;

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DeliveryList {
    /// Newest first.
    pub deliveries: Vec<AttemptRecord>,
}

/// `subject`: a hub id or `SOURCE:externalId`, as `hub deliveries` takes.
pub async fn list(
    state: &AppState,
    subject: Option<&str>,
    limit: i64,
) -> AdminResult<DeliveryList> {
    let subject = match subject {
        None => None,
        Some(key) => Some(super::subjects::resolve(state, key).await?),
    };
    let deliveries = state.store.attempts(subject.as_deref(), limit).await?;
    Ok(DeliveryList { deliveries })
}
