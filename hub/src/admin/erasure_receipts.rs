//! Erasure receipts: proof that an erasure ran, who confirmed the delete
//! and who did not in time.

use serde::Serialize;
use utoipa::ToSchema;

use super::{AdminError, AdminResult};
use crate::AppState;
use crate::store::ErasureReceipt;

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ReceiptList {
    /// Newest first.
    pub receipts: Vec<ErasureReceipt>,
}

pub async fn list(state: &AppState, limit: i64) -> AdminResult<ReceiptList> {
    let receipts = state.store.erasure_receipts(limit).await?;
    Ok(ReceiptList { receipts })
}

/// The receipt of an erased subject, by hub id (its external id is gone).
pub async fn get(state: &AppState, subject_id: &str) -> AdminResult<ErasureReceipt> {
    state
        .store
        .erasure_receipt(subject_id)
        .await?
        .ok_or(AdminError::UnknownReceipt)
}
