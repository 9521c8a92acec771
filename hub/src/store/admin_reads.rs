//! What the admin API reads (and the one dead-letter write it adds): subject
//! search, recent changes, one dead letter, erasure receipts. Plain queries
//! over tables other modules write; nothing here is on the delivery path.

use serde::Serialize;

use super::{DeadLetter, ErasureReceipt, SqlStore, StoreError};

/// One hit of a subject search: who it is, not what it holds.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct SubjectHit {
    pub id: String,
    pub source: String,
    pub external_id: String,
    pub user_name: Option<String>,
    pub primary_email: Option<String>,
    pub version: i64,
    pub deleted_at: Option<i64>,
    pub erase_requested_at: Option<i64>,
    pub updated_at: i64,
}

/// One row of the change log, with its subject.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ChangeEntry {
    pub id: i64,
    pub subject_id: String,
    pub source: String,
    pub kind: String,
    /// Names of the attributes that changed (never their values).
    pub attributes: serde_json::Value,
    pub occurred_at: i64,
    pub received_at: i64,
}

const HIT_COLUMNS: &str = "id, source, external_id, user_name, primary_email, version, \
     deleted_at, erase_requested_at, updated_at";

/// Subjects whose hub id or `externalId` (any source) is `text`, or whose
/// e-mail (the primary one, or any a SCIM client gave; compared trimmed and
/// lowercased) is.
pub(super) async fn search_subjects(
    store: &SqlStore,
    text: &str,
    limit: i64,
) -> Result<Vec<SubjectHit>, StoreError> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {HIT_COLUMNS} FROM subjects WHERE id = $1 OR external_id = $1 OR primary_email = $2 \
         OR id IN (SELECT subject_id FROM subject_emails WHERE email = $2) ORDER BY id LIMIT $3"
    )))
    .bind(text)
    .bind(text.trim().to_lowercase())
    .bind(limit)
    .fetch_all(&store.pool)
    .await?)
}

/// The newest changes first; `before` (a change id) pages back.
pub(super) async fn recent_changes(
    store: &SqlStore,
    before: Option<i64>,
    limit: i64,
) -> Result<Vec<ChangeEntry>, StoreError> {
    let rows: Vec<(i64, String, String, String, String, i64, i64)> = sqlx::query_as(
        "SELECT id, subject_id, source, kind, attributes, occurred_at, received_at FROM changes \
         WHERE ($1 < 0 OR id < $1) ORDER BY id DESC LIMIT $2",
    )
    .bind(before.unwrap_or(-1))
    .bind(limit)
    .fetch_all(&store.pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(
            |(id, subject_id, source, kind, attributes, occurred_at, received_at)| ChangeEntry {
                id,
                subject_id,
                source,
                kind,
                attributes: serde_json::from_str(&attributes).unwrap_or_default(),
                occurred_at,
                received_at,
            },
        )
        .collect())
}

/// One dead letter, replayed or not.
pub(super) async fn dead_letter(
    store: &SqlStore,
    id: &str,
) -> Result<Option<DeadLetter>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT id, destination, subject_id, attempts, status_code, detail, created_at, replayed_at \
         FROM dead_letters WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(&store.pool)
    .await?)
}

/// Drops a dead letter that is not replayed; false when there is none.
pub(super) async fn discard_dead_letter(store: &SqlStore, id: &str) -> Result<bool, StoreError> {
    let mut tx = store.begin_write().await?;
    let done = sqlx::query("DELETE FROM dead_letters WHERE id = $1 AND replayed_at IS NULL")
        .bind(id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(done.rows_affected() > 0)
}

type ReceiptRow = (String, i64, i64, String, String);

fn receipt(
    (subject_id, requested_at, completed_at, confirmed, unconfirmed): ReceiptRow,
) -> Result<ErasureReceipt, StoreError> {
    Ok(ErasureReceipt {
        subject_id,
        requested_at,
        completed_at,
        confirmed: serde_json::from_str(&confirmed)?,
        unconfirmed: serde_json::from_str(&unconfirmed)?,
    })
}

/// The newest receipts first.
pub(super) async fn erasure_receipts(
    store: &SqlStore,
    limit: i64,
) -> Result<Vec<ErasureReceipt>, StoreError> {
    let rows: Vec<ReceiptRow> = sqlx::query_as(
        "SELECT subject_id, requested_at, completed_at, confirmed, unconfirmed \
         FROM erasure_receipts ORDER BY completed_at DESC, subject_id LIMIT $1",
    )
    .bind(limit)
    .fetch_all(&store.pool)
    .await?;
    rows.into_iter().map(receipt).collect()
}

pub(super) async fn erasure_receipt(
    store: &SqlStore,
    subject_id: &str,
) -> Result<Option<ErasureReceipt>, StoreError> {
    let row: Option<ReceiptRow> = sqlx::query_as(
        "SELECT subject_id, requested_at, completed_at, confirmed, unconfirmed \
         FROM erasure_receipts WHERE subject_id = $1",
    )
    .bind(subject_id)
    .fetch_optional(&store.pool)
    .await?;
    row.map(receipt).transpose()
}
