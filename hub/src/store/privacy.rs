//! Privacy: access (`subject_report`), erasure (request, then completion
//! with its receipt) and retention of delivery attempts.

use super::{
    ChangeRecord, ConsentRecord, ErasureReceipt, HeldRecord, JobReason, LedgerEntry, SqlStore,
    Store, StoreError, SubjectReport, jobs,
};

/// id, source, external_id, profile, version, deleted_at, erase_requested_at, erased_at
type SubjectReportRow = (
    String,
    String,
    String,
    String,
    i64,
    Option<i64>,
    Option<i64>,
    Option<i64>,
);
/// purpose, brand, previous_state, new_state, source, evidence, occurred_at, recorded_at
type LedgerRow = (
    String,
    String,
    Option<String>,
    String,
    String,
    Option<String>,
    i64,
    i64,
);

impl SqlStore {
    pub(super) async fn privacy_subject_report(
        &self,
        subject_id: &str,
    ) -> Result<Option<SubjectReport>, StoreError> {
        // The receipt first: it commits with the PII scrub, so a report
        // that shows a receipt also shows the scrubbed profile.
        let receipt: Option<(i64, i64, String, String)> = sqlx::query_as(
            "SELECT requested_at, completed_at, confirmed, unconfirmed FROM erasure_receipts WHERE subject_id = $1",
        )
        .bind(subject_id)
        .fetch_optional(&self.pool)
        .await?;
        let row: Option<SubjectReportRow> =
            sqlx::query_as(
                "SELECT id, source, external_id, profile, version, deleted_at, erase_requested_at, erased_at \
                 FROM subjects WHERE id = $1",
            )
            .bind(subject_id)
            .fetch_optional(&self.pool)
            .await?;
        let Some((
            id,
            source,
            external_id,
            profile,
            version,
            deleted_at,
            erase_requested_at,
            erased_at,
        )) = row
        else {
            return Ok(None);
        };
        let consent: Vec<ConsentRecord> = sqlx::query_as(
            "SELECT purpose, brand, state, source, version, occurred_at FROM consents \
             WHERE subject_id = $1 ORDER BY purpose, brand",
        )
        .bind(&id)
        .fetch_all(&self.pool)
        .await?;
        let ledger: Vec<LedgerRow> =
            sqlx::query_as(
                "SELECT purpose, brand, previous_state, new_state, source, evidence, occurred_at, recorded_at \
                 FROM consent_ledger WHERE subject_id = $1 ORDER BY id",
            )
            .bind(&id)
            .fetch_all(&self.pool)
            .await?;
        let destinations: Vec<HeldRecord> = sqlx::query_as(
            "SELECT destination, state, updated_at FROM destination_subjects WHERE subject_id = $1 ORDER BY destination",
        )
        .bind(&id)
        .fetch_all(&self.pool)
        .await?;
        let changes: Vec<(String, String, String, i64, i64)> = sqlx::query_as(
            "SELECT kind, source, attributes, occurred_at, received_at FROM changes WHERE subject_id = $1 ORDER BY id",
        )
        .bind(&id)
        .fetch_all(&self.pool)
        .await?;

        let deliveries = self.attempts(Some(&id), 1000).await?;
        Ok(Some(SubjectReport {
            profile: serde_json::from_str(&profile)?,
            consent,
            consent_history: ledger
                .into_iter()
                .map(
                    |(
                        purpose,
                        brand,
                        previous_state,
                        new_state,
                        source,
                        evidence,
                        occurred_at,
                        recorded_at,
                    )| LedgerEntry {
                        purpose,
                        brand,
                        previous_state,
                        new_state,
                        source,
                        evidence: evidence.and_then(|e| serde_json::from_str(&e).ok()),
                        occurred_at,
                        recorded_at,
                    },
                )
                .collect(),
            destinations,
            changes: changes
                .into_iter()
                .map(
                    |(kind, source, attributes, occurred_at, received_at)| ChangeRecord {
                        kind,
                        source,
                        attributes: serde_json::from_str(&attributes).unwrap_or_default(),
                        occurred_at,
                        received_at,
                    },
                )
                .collect(),
            deliveries,
            erasure_receipt: match receipt {
                Some((requested_at, completed_at, confirmed, unconfirmed)) => {
                    Some(ErasureReceipt {
                        subject_id: id.clone(),
                        requested_at,
                        completed_at,
                        confirmed: serde_json::from_str(&confirmed)?,
                        unconfirmed: serde_json::from_str(&unconfirmed)?,
                    })
                }
                None => None,
            },
            id,
            source,
            external_id,
            version,
            deleted_at,
            erase_requested_at,
            erased_at,
        }))
    }

    pub(super) async fn privacy_request_erasure(
        &self,
        subject_id: &str,
        destinations: &[String],
        now: i64,
    ) -> Result<bool, StoreError> {
        let mut tx = self.begin_write().await?;
        let updated = sqlx::query(
            "UPDATE subjects SET deleted_at = COALESCE(deleted_at, $1), erase_requested_at = $1, \
             external_id = 'erased:' || id, version = version + 1, updated_at = $1 \
             WHERE id = $2 AND erase_requested_at IS NULL",
        )
        .bind(now)
        .bind(subject_id)
        .execute(&mut *tx)
        .await?;
        if updated.rows_affected() == 0 {
            return Ok(false);
        }
        for destination in destinations {
            jobs::insert_job(&mut tx, destination, subject_id, JobReason::Change, now).await?;
        }
        jobs::queue_held_destinations(&mut tx, &[subject_id.to_string()], now).await?;
        sqlx::query(
            "INSERT INTO changes (subject_id, source, kind, message_id, attributes, occurred_at, received_at) \
             VALUES ($1, 'admin', 'profile_deleted', NULL, '[\"erasure\"]', $2, $2)",
        )
        .bind(subject_id)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    pub(super) async fn privacy_complete_erasures(
        &self,
        now: i64,
        deadline_ms: i64,
    ) -> Result<Vec<ErasureReceipt>, StoreError> {
        let pending: Vec<(String, i64)> = sqlx::query_as(
            "SELECT id, erase_requested_at FROM subjects \
             WHERE erase_requested_at IS NOT NULL AND erased_at IS NULL ORDER BY erase_requested_at LIMIT 100",
        )
        .fetch_all(&self.pool)
        .await?;
        let mut receipts = Vec::new();
        for (id, requested_at) in pending {
            let overdue = now >= requested_at + deadline_ms;
            // A cheap read first: most checks find the erasure not done yet.
            if !overdue && !self.erasure_settled(&self.pool, &id).await? {
                continue;
            }
            let mut tx = self.begin_write().await?;
            // Again inside the transaction: a delivery claimed meanwhile
            // (an upsert that started before the tombstone) must land first.
            if !overdue && !self.erasure_settled(&mut *tx, &id).await? {
                continue;
            }
            let held: Vec<(String, String, i64)> = sqlx::query_as(
                "SELECT destination, state, updated_at FROM destination_subjects WHERE subject_id = $1 ORDER BY destination",
            )
            .bind(&id)
            .fetch_all(&mut *tx)
            .await?;
            // Deleted, or suppressed where `on_delete: suppress` asks for
            // that: either way the destination no longer processes the data.
            let confirmed: Vec<(String, i64)> = held
                .iter()
                .filter(|h| h.1 != "sent")
                .map(|h| (h.0.clone(), h.2))
                .collect();
            let unconfirmed: Vec<String> = held
                .iter()
                .filter(|h| h.1 == "sent")
                .map(|h| h.0.clone())
                .collect();
            // Two hubs may finish the same erasure: the first one writes it.
            let claimed = sqlx::query(
                "UPDATE subjects SET profile = '{}', user_name = NULL, primary_email = NULL, \
                 scim_user_name = NULL, erased_at = $1, updated_at = $1 WHERE id = $2 AND erased_at IS NULL",
            )
            .bind(now)
            .bind(&id)
            .execute(&mut *tx)
            .await?;
            if claimed.rows_affected() == 0 {
                continue;
            }
            // The identity values kept for deletes are PII too.
            sqlx::query("UPDATE destination_subjects SET identity = NULL WHERE subject_id = $1")
                .bind(&id)
                .execute(&mut *tx)
                .await?;
            // Group member rows copy the display name.
            sqlx::query(
                "UPDATE scim_groups SET version = version + 1, updated_at = $1 \
                 WHERE id IN (SELECT group_id FROM scim_group_members WHERE subject_id = $2)",
            )
            .bind(now)
            .bind(&id)
            .execute(&mut *tx)
            .await?;
            sqlx::query("DELETE FROM scim_group_members WHERE subject_id = $1")
                .bind(&id)
                .execute(&mut *tx)
                .await?;
            // Vendor answers kept with attempts may echo PII.
            sqlx::query("UPDATE delivery_attempts SET detail = NULL WHERE subject_id = $1")
                .bind(&id)
                .execute(&mut *tx)
                .await?;
            sqlx::query("UPDATE consent_ledger SET evidence = NULL WHERE subject_id = $1")
                .bind(&id)
                .execute(&mut *tx)
                .await?;
            sqlx::query("UPDATE dead_letters SET detail = '' WHERE subject_id = $1")
                .bind(&id)
                .execute(&mut *tx)
                .await?;
            sqlx::query(
                "INSERT INTO erasure_receipts (subject_id, requested_at, completed_at, confirmed, unconfirmed) \
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT (subject_id) DO NOTHING",
            )
            .bind(&id)
            .bind(requested_at)
            .bind(now)
            .bind(serde_json::to_string(&confirmed)?)
            .bind(serde_json::to_string(&unconfirmed)?)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            receipts.push(ErasureReceipt {
                subject_id: id,
                requested_at,
                completed_at: now,
                confirmed,
                unconfirmed,
            });
        }
        Ok(receipts)
    }

    /// True when no delivery of the subject is in flight (a call running or
    /// a vendor job awaiting confirmation) and no destination still holds
    /// its data.
    async fn erasure_settled<'e, E>(&self, executor: E, id: &str) -> Result<bool, StoreError>
    where
        E: sqlx::Executor<'e, Database = sqlx::Any>,
    {
        let (open,): (i64,) = sqlx::query_as(
            "SELECT (SELECT COUNT(*) FROM delivery_jobs WHERE subject_id = $1 \
             AND status IN ('running', 'waiting')) \
             + (SELECT COUNT(*) FROM destination_subjects WHERE subject_id = $1 AND state = 'sent')",
        )
        .bind(id)
        .fetch_one(executor)
        .await?;
        Ok(open == 0)
    }

    pub(super) async fn privacy_prune_attempts(&self, before: i64) -> Result<u64, StoreError> {
        super::retention::prune_attempts(self, before, 10_000).await
    }
}
