//! The SQL both backends share, expanded once per backend by `impl_store!`.
//! Each backend module supplies `sql::{CLAIM, LOAD_SUBJECTS, LOAD_CONSENTS,
//! RESCHEDULE, INSERT_ATTEMPTS, DELETE_RUNNING_JOBS, LOAD_RECEIVED, RECORD_RECEIVED}` for the few statements
//! whose dialects differ (batch statements take one JSON array parameter), and a
//! `begin_write` that opens a write transaction.

/// Fields of a profile the store indexes.
pub(crate) fn indexed_keys(profile: &serde_json::Value) -> (Option<String>, Option<String>) {
    let user_name = profile
        .get("userName")
        .and_then(|v| v.as_str())
        .map(str::to_owned);
    let emails = profile.get("emails").and_then(|v| v.as_array());
    let primary = emails.and_then(|list| {
        list.iter()
            .find(|e| e.get("primary").and_then(|p| p.as_bool()) == Some(true))
            .or_else(|| list.first())
    });
    let email = primary
        .and_then(|e| e.get("value"))
        .and_then(|v| v.as_str())
        .map(|s| s.trim().to_lowercase());
    (user_name, email)
}

/// Top-level attributes of `patch` replace those of `base`; a `null` removes one.
pub(crate) fn merge_profile(
    base: &mut serde_json::Map<String, serde_json::Value>,
    patch: &serde_json::Map<String, serde_json::Value>,
) {
    for (k, v) in patch {
        if v.is_null() {
            base.remove(k);
        } else {
            base.insert(k.clone(), v.clone());
        }
    }
}

macro_rules! impl_store {
    ($store:ident, $db:ty) => {
        use $crate::store::*;

        type Tx = WriteTx;

        impl $store {
            async fn insert_job(
                tx: &mut Tx,
                destination: &str,
                subject_id: &str,
                reason: JobReason,
                now: i64,
            ) -> Result<u64, StoreError> {
                let r = sqlx::query(
                    "INSERT INTO delivery_jobs (id, destination, subject_id, reason, status, attempt, \
                     not_before, locked_until, first_enqueued_at) \
                     VALUES ($1, $2, $3, $4, 'pending', 0, $5, NULL, $5) \
                     ON CONFLICT (destination, subject_id) WHERE status = 'pending' DO NOTHING",
                )
                .bind(uuid::Uuid::now_v7().to_string())
                .bind(destination)
                .bind(subject_id)
                .bind(reason.as_str())
                .bind(now)
                .execute(&mut **tx)
                .await?;
                Ok(r.rows_affected())
            }

            /// Queues every destination that ever received these subjects,
            /// enabled or not now: an erasure must reach all of them.
            async fn queue_held_destinations(
                tx: &mut Tx,
                subject_ids: &[String],
                now: i64,
            ) -> Result<(), StoreError> {
                if subject_ids.is_empty() {
                    return Ok(());
                }
                let held: Vec<(String, String, String)> = sqlx::query_as(sql::LOAD_RECEIVED)
                    .bind(serde_json::to_string(subject_ids)?)
                    .fetch_all(&mut **tx)
                    .await?;
                for (subject_id, destination, _) in held {
                    Self::insert_job(tx, &destination, &subject_id, JobReason::Change, now).await?;
                }
                Ok(())
            }

            /// Rescheduling and dead-lettering; the attempt row and the job's
            /// removal were written for the whole batch by `finish_jobs`.
            async fn finish_one(tx: &mut Tx, r: &JobResult, now: i64) -> Result<(), StoreError> {
                let job = &r.job;
                match &r.next {
                    NextStep::Done => {}
                    NextStep::RetryAt(at) | NextStep::DeferUntil(at) => {
                        // A deferred job was never attempted: its count stays.
                        let attempt = match r.next {
                            NextStep::DeferUntil(_) => job.attempt,
                            _ => job.attempt + 1,
                        };
                        sqlx::query(sql::RESCHEDULE)
                            .bind(&job.id)
                            .bind(&job.destination)
                            .bind(&job.subject_id)
                            .bind(attempt)
                            .bind(*at)
                            .bind(job.first_enqueued_at)
                            .execute(&mut **tx)
                            .await?;
                    }
                    NextStep::DeadLetter => {
                        sqlx::query(
                            "INSERT INTO dead_letters (id, destination, subject_id, attempts, status_code, detail, \
                             created_at, replayed_at) VALUES ($1, $2, $3, $4, $5, $6, $7, NULL) \
                             ON CONFLICT (id) DO UPDATE SET attempts = excluded.attempts, \
                             status_code = excluded.status_code, detail = excluded.detail, \
                             created_at = excluded.created_at, replayed_at = NULL",
                        )
                        .bind(&job.id)
                        .bind(&job.destination)
                        .bind(&job.subject_id)
                        .bind(job.attempt + 1)
                        .bind(r.status_code.map(i64::from))
                        .bind(r.detail.clone().unwrap_or_default())
                        .bind(now)
                        .execute(&mut **tx)
                        .await?;
                    }
                }
                Ok(())
            }
        }

        #[async_trait::async_trait]
        impl Store for $store {
            async fn ingest(&self, items: &[IngestItem]) -> Result<Vec<IngestOutcome>, StoreError> {
                use $crate::store::batch;
                let mut tx = self.begin_write().await?;
                let fresh: Vec<(String, String)> = sqlx::query_as(BATCH.insert_messages.as_str())
                    .bind(batch::message_keys(items)?)
                    .fetch_all(&mut *tx)
                    .await?;
                let rows: Vec<(String, String, String, String, i64, i64, Option<i64>, i64)> =
                    sqlx::query_as(BATCH.load_subjects.as_str())
                        .bind(batch::subject_keys(items)?)
                        .fetch_all(&mut *tx)
                        .await?;
                let ids: Vec<serde_json::Value> =
                    rows.iter().map(|r| serde_json::json!({ "id": r.0 })).collect();
                let consent_rows: Vec<(String, String, String, String, i64, i64, String)> =
                    sqlx::query_as(BATCH.load_consents.as_str())
                        .bind(serde_json::to_string(&ids)?)
                        .fetch_all(&mut *tx)
                        .await?;
                let mut existing = Vec::with_capacity(rows.len());
                for (id, source, external_id, profile, version, last_occurred_at, deleted_at, created_at) in rows {
                    let profile = match serde_json::from_str(&profile)? {
                        serde_json::Value::Object(m) => m,
                        _ => serde_json::Map::new(),
                    };
                    existing.push(batch::SubjectRow {
                        id, source, external_id, profile, version, last_occurred_at, deleted_at, created_at,
                        erase_requested_at: None,
                        updated_at: created_at,
                    });
                }
                let consents = consent_rows
                    .into_iter()
                    .map(|(subject_id, purpose, brand, state, occurred_at, version, source)| {
                        ((subject_id, purpose, brand), batch::ConsentRow { state, occurred_at, version, source })
                    })
                    .collect();
                let (outcomes, writes) =
                    batch::plan(items, fresh.into_iter().collect(), existing, consents)?;
                let statements = [
                    (&BATCH.upsert_subjects, writes.subjects),
                    (&BATCH.upsert_consents, writes.consents),
                    (&BATCH.insert_ledger, writes.ledger),
                    (&BATCH.insert_changes, writes.changes),
                    (&BATCH.insert_jobs, writes.jobs),
                ];
                for (sql, rows) in statements {
                    if let Some(rows) = rows {
                        sqlx::query(sql.as_str()).bind(rows).execute(&mut *tx).await?;
                    }
                }
                let now = items.iter().map(|i| i.received_at).max().unwrap_or_default();
                Self::queue_held_destinations(&mut tx, &writes.erased, now).await?;
                tx.commit().await?;
                Ok(outcomes)
            }

            async fn claim_jobs(&self, limit: i64, now: i64, lease_ms: i64) -> Result<Vec<DeliveryJob>, StoreError> {
                let mut tx = self.begin_write().await?;
                let jobs: Vec<DeliveryJob> = sqlx::query_as(sql::CLAIM)
                    .bind(now + lease_ms)
                    .bind(now)
                    .bind(limit)
                    .fetch_all(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(jobs)
            }

            async fn load_subjects(&self, ids: &[String]) -> Result<Vec<SubjectState>, StoreError> {
                if ids.is_empty() {
                    return Ok(Vec::new());
                }
                let list = serde_json::to_string(ids)?;
                let rows: Vec<(String, String, i64, Option<i64>, Option<i64>)> = sqlx::query_as(sql::LOAD_SUBJECTS)
                    .bind(&list)
                    .fetch_all(&self.pool)
                    .await?;
                let consents: Vec<(String, String, String, String)> = sqlx::query_as(sql::LOAD_CONSENTS)
                    .bind(&list)
                    .fetch_all(&self.pool)
                    .await?;
                let held: Vec<(String, String, String)> = sqlx::query_as(sql::LOAD_RECEIVED)
                    .bind(&list)
                    .fetch_all(&self.pool)
                    .await?;
                let mut received: std::collections::HashMap<String, std::collections::HashMap<String, Held>> =
                    std::collections::HashMap::new();
                for (subject, destination, state) in held {
                    if let Some(h) = Held::parse(&state) {
                        received.entry(subject).or_default().insert(destination, h);
                    }
                }
                let mut by_subject: std::collections::HashMap<String, Vec<(String, String, bool)>> =
                    std::collections::HashMap::new();
                for (subject, purpose, brand, state) in consents {
                    by_subject.entry(subject).or_default().push((purpose, brand, state == "granted"));
                }
                rows.into_iter()
                    .map(|(id, profile, version, deleted_at, erase_requested_at)| {
                        let mut profile: serde_json::Value = serde_json::from_str(&profile)?;
                        if let Some(obj) = profile.as_object_mut() {
                            obj.insert("id".into(), id.clone().into());
                        }
                        Ok(SubjectState {
                            consents: by_subject.remove(&id).unwrap_or_default(),
                            received: received.remove(&id).unwrap_or_default(),
                            id,
                            profile,
                            version,
                            deleted: deleted_at.is_some(),
                            erasing: erase_requested_at.is_some(),
                        })
                    })
                    .collect()
            }

            async fn finish_jobs(&self, results: &[JobResult], now: i64) -> Result<(), StoreError> {
                if results.is_empty() {
                    return Ok(());
                }
                // Two statements for the whole batch, whatever its size.
                let attempts: Vec<serde_json::Value> = results
                    .iter()
                    .filter(|r| !matches!(r.next, NextStep::DeferUntil(_)))
                    .map(|r| {
                        serde_json::json!({
                            "job_id": r.job.id,
                            "destination": r.job.destination,
                            "subject_id": r.job.subject_id,
                            "attempt": r.job.attempt + 1,
                            "action": r.action,
                            "outcome": r.outcome.as_str(),
                            "status_code": r.status_code,
                            "latency_ms": r.latency_ms,
                            "detail": r.detail,
                        })
                    })
                    .collect();
                let ids: Vec<&str> = results.iter().map(|r| r.job.id.as_str()).collect();
                let mut tx = self.begin_write().await?;
                if !attempts.is_empty() {
                    sqlx::query(sql::INSERT_ATTEMPTS)
                        .bind(serde_json::Value::Array(attempts).to_string())
                        .bind(now)
                        .execute(&mut *tx)
                        .await?;
                }
                sqlx::query(sql::DELETE_RUNNING_JOBS)
                    .bind(serde_json::to_string(&ids)?)
                    .execute(&mut *tx)
                    .await?;
                // One row per pair: an upsert may not touch a row twice.
                let mut latest: std::collections::BTreeMap<(&str, &str), Held> = Default::default();
                for r in results.iter().filter(|r| r.outcome == AttemptOutcome::Delivered) {
                    if let Some(h) = Held::after(r.action) {
                        latest.insert((r.job.destination.as_str(), r.job.subject_id.as_str()), h);
                    }
                }
                let held: Vec<serde_json::Value> = latest
                    .into_iter()
                    .map(|((destination, subject_id), h)| {
                        serde_json::json!({"destination": destination, "subject_id": subject_id, "state": h.as_str()})
                    })
                    .collect();
                if !held.is_empty() {
                    sqlx::query(sql::RECORD_RECEIVED)
                        .bind(serde_json::Value::Array(held).to_string())
                        .bind(now)
                        .execute(&mut *tx)
                        .await?;
                }
                for r in results.iter().filter(|r| r.next != NextStep::Done) {
                    Self::finish_one(&mut tx, r, now).await?;
                }
                tx.commit().await?;
                Ok(())
            }

            async fn enqueue(&self, destination: &str, subject_id: &str, reason: JobReason, now: i64) -> Result<bool, StoreError> {
                let mut tx = self.begin_write().await?;
                let n = Self::insert_job(&mut tx, destination, subject_id, reason, now).await?;
                tx.commit().await?;
                Ok(n > 0)
            }

            async fn subject_ids(&self, after: Option<&str>, limit: i64) -> Result<Vec<String>, StoreError> {
                let rows: Vec<(String,)> = sqlx::query_as(
                    "SELECT id FROM subjects WHERE deleted_at IS NULL AND id > $1 ORDER BY id LIMIT $2",
                )
                .bind(after.unwrap_or(""))
                .bind(limit)
                .fetch_all(&self.pool)
                .await?;
                Ok(rows.into_iter().map(|r| r.0).collect())
            }

            async fn find_subject(&self, key: &SubjectKey) -> Result<Option<String>, StoreError> {
                let row: Option<(String,)> = match key {
                    SubjectKey::Id(id) => sqlx::query_as("SELECT id FROM subjects WHERE id = $1")
                        .bind(id)
                        .fetch_optional(&self.pool)
                        .await?,
                    SubjectKey::External { source, external_id } => sqlx::query_as(
                        "SELECT id FROM subjects WHERE source = $1 AND external_id = $2",
                    )
                    .bind(source)
                    .bind(external_id)
                    .fetch_optional(&self.pool)
                    .await?,
                };
                Ok(row.map(|r| r.0))
            }

            async fn dead_letters(&self, destination: Option<&str>) -> Result<Vec<DeadLetter>, StoreError> {
                Ok(sqlx::query_as(
                    "SELECT id, destination, subject_id, attempts, status_code, detail, created_at, replayed_at \
                     FROM dead_letters WHERE replayed_at IS NULL AND ($1 = '' OR destination = $1) \
                     ORDER BY created_at, id",
                )
                .bind(destination.unwrap_or(""))
                .fetch_all(&self.pool)
                .await?)
            }

            async fn replay_dead_letters(&self, destination: Option<&str>, id: Option<&str>, now: i64) -> Result<u64, StoreError> {
                let mut tx = self.begin_write().await?;
                let rows: Vec<(String, String, String)> = sqlx::query_as(
                    "SELECT id, destination, subject_id FROM dead_letters WHERE replayed_at IS NULL \
                     AND ($1 = '' OR destination = $1) AND ($2 = '' OR id = $2)",
                )
                .bind(destination.unwrap_or(""))
                .bind(id.unwrap_or(""))
                .fetch_all(&mut *tx)
                .await?;
                for (dl_id, dest, subject) in &rows {
                    Self::insert_job(&mut tx, dest, subject, JobReason::Replay, now).await?;
                    sqlx::query("UPDATE dead_letters SET replayed_at = $1 WHERE id = $2")
                        .bind(now)
                        .bind(dl_id)
                        .execute(&mut *tx)
                        .await?;
                }
                tx.commit().await?;
                Ok(rows.len() as u64)
            }

            async fn attempts(&self, subject_id: Option<&str>, limit: i64) -> Result<Vec<AttemptRecord>, StoreError> {
                Ok(sqlx::query_as(
                    "SELECT id, job_id, destination, subject_id, attempt, action, outcome, status_code, \
                     latency_ms, detail, created_at FROM delivery_attempts \
                     WHERE ($1 = '' OR subject_id = $1) ORDER BY id DESC LIMIT $2",
                )
                .bind(subject_id.unwrap_or(""))
                .bind(limit)
                .fetch_all(&self.pool)
                .await?)
            }

            async fn stats(&self) -> Result<StoreStats, StoreError> {
                let row: (i64, i64, i64, i64, i64, i64, i64) = sqlx::query_as(
                    "SELECT (SELECT COUNT(*) FROM subjects), (SELECT COUNT(*) FROM changes), \
                     (SELECT COUNT(*) FROM delivery_jobs WHERE status = 'pending'), \
                     (SELECT COUNT(*) FROM delivery_jobs WHERE status = 'running'), \
                     (SELECT COUNT(*) FROM delivery_attempts), \
                     (SELECT COUNT(*) FROM dead_letters WHERE replayed_at IS NULL), \
                     (SELECT COUNT(*) FROM inbound_messages)",
                )
                .fetch_one(&self.pool)
                .await?;
                Ok(StoreStats {
                    subjects: row.0,
                    changes: row.1,
                    pending_jobs: row.2,
                    running_jobs: row.3,
                    attempts: row.4,
                    dead_letters: row.5,
                    inbound_messages: row.6,
                })
            }

            async fn ping(&self) -> Result<(), StoreError> {
                sqlx::query("SELECT 1").execute(&self.pool).await?;
                Ok(())
            }

            fn parallel_writers(&self) -> usize {
                Self::PARALLEL_WRITERS
            }

            async fn subject_report(&self, subject_id: &str) -> Result<Option<SubjectReport>, StoreError> {
                self.privacy_subject_report(subject_id).await
            }

            async fn request_erasure(&self, subject_id: &str, destinations: &[String], now: i64) -> Result<bool, StoreError> {
                self.privacy_request_erasure(subject_id, destinations, now).await
            }

            async fn complete_erasures(&self, now: i64, deadline_ms: i64) -> Result<Vec<ErasureReceipt>, StoreError> {
                self.privacy_complete_erasures(now, deadline_ms).await
            }

            async fn prune_attempts(&self, before: i64) -> Result<u64, StoreError> {
                self.privacy_prune_attempts(before).await
            }

            async fn scim_list_users(&self, n: &UserNarrowing, offset: i64, limit: Option<i64>) -> Result<(Vec<ScimUserRecord>, i64), StoreError> {
                self.scim_list_users_in(n, offset, limit).await
            }

            async fn scim_write_user(&self, w: &ScimUserWrite) -> Result<ScimWriteOutcome<ScimUserRecord>, StoreError> {
                self.scim_write_user_in(w).await
            }

            async fn scim_list_groups(&self, n: &GroupNarrowing, offset: i64, limit: Option<i64>, with_members: bool) -> Result<(Vec<ScimGroupRecord>, i64), StoreError> {
                self.scim_list_groups_in(n, offset, limit, with_members).await
            }

            async fn scim_write_group(&self, w: &ScimGroupWrite) -> Result<ScimWriteOutcome<ScimGroupRecord>, StoreError> {
                self.scim_write_group_in(w).await
            }
        }

        $crate::store::scim_sql::impl_scim_sql!($store, $db);
        $crate::store::privacy_sql::impl_privacy_sql!($store, $db);
    };
}

pub(crate) use impl_store;
