//! The SQL both backends share, expanded once per backend by `impl_store!`.
//! Each backend module supplies `sql::{CLAIM, LOAD_SUBJECTS, LOAD_CONSENTS,
//! RESCHEDULE}` for the few statements whose dialects differ, and a
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
        use $crate::event::EventType;
        use $crate::store::common::{indexed_keys, merge_profile};
        use $crate::store::*;

        type Tx = sqlx::Transaction<'static, $db>;

        impl $store {
            async fn ingest_one(tx: &mut Tx, item: &IngestItem) -> Result<IngestOutcome, StoreError> {
                let fresh = sqlx::query(
                    "INSERT INTO inbound_messages (source, message_id, received_at) VALUES ($1, $2, $3) \
                     ON CONFLICT DO NOTHING",
                )
                .bind(&item.source)
                .bind(&item.message_id)
                .bind(item.received_at)
                .execute(&mut **tx)
                .await?;
                if fresh.rows_affected() == 0 {
                    return Ok(IngestOutcome::Duplicate);
                }
                let event = &item.event;
                let external_id = event.external_id().unwrap_or_default();
                let occurred = event.occurred_at.timestamp_millis();
                let now = item.received_at;
                let existing: Option<(String, String, i64)> = sqlx::query_as(
                    "SELECT id, profile, last_occurred_at FROM subjects WHERE source = $1 AND external_id = $2",
                )
                .bind(&item.source)
                .bind(external_id)
                .fetch_optional(&mut **tx)
                .await?;

                if let Some((id, _, last)) = &existing {
                    if occurred < *last && event.event_type != EventType::ConsentUpdated {
                        return Ok(IngestOutcome::Stale { subject_id: id.clone() });
                    }
                }
                let subject_id = match (&existing, event.event_type) {
                    (None, EventType::ProfileDeleted) => return Ok(IngestOutcome::Unknown),
                    (Some((id, _, _)), EventType::ProfileDeleted) => {
                        sqlx::query(
                            "UPDATE subjects SET deleted_at = $1, version = version + 1, \
                             last_occurred_at = $2, updated_at = $1 WHERE id = $3",
                        )
                        .bind(now)
                        .bind(occurred)
                        .bind(id)
                        .execute(&mut **tx)
                        .await?;
                        id.clone()
                    }
                    (Some((id, profile, _)), _) => {
                        let mut merged: serde_json::Map<String, serde_json::Value> =
                            serde_json::from_str(profile)?;
                        let upsert = event.event_type == EventType::ProfileUpserted;
                        if upsert {
                            merge_profile(&mut merged, &event.subject);
                        }
                        let merged = serde_json::Value::Object(merged);
                        let (user_name, email) = indexed_keys(&merged);
                        sqlx::query(
                            "UPDATE subjects SET profile = $1, user_name = $2, primary_email = $3, \
                             version = version + 1, \
                             last_occurred_at = CASE WHEN $4 > last_occurred_at THEN $4 ELSE last_occurred_at END, \
                             deleted_at = CASE WHEN $5 THEN NULL ELSE deleted_at END, updated_at = $6 WHERE id = $7",
                        )
                        .bind(merged.to_string())
                        .bind(user_name)
                        .bind(email)
                        .bind(occurred)
                        .bind(upsert)
                        .bind(now)
                        .bind(id)
                        .execute(&mut **tx)
                        .await?;
                        id.clone()
                    }
                    (None, _) => {
                        let id = uuid::Uuid::now_v7().to_string();
                        let mut profile = serde_json::Map::new();
                        profile.insert("externalId".into(), external_id.into());
                        if event.event_type == EventType::ProfileUpserted {
                            merge_profile(&mut profile, &event.subject);
                        }
                        let profile = serde_json::Value::Object(profile);
                        let (user_name, email) = indexed_keys(&profile);
                        sqlx::query(
                            "INSERT INTO subjects (id, source, external_id, user_name, primary_email, profile, \
                             version, last_occurred_at, deleted_at, created_at, updated_at) \
                             VALUES ($1, $2, $3, $4, $5, $6, 1, $7, NULL, $8, $8)",
                        )
                        .bind(&id)
                        .bind(&item.source)
                        .bind(external_id)
                        .bind(user_name)
                        .bind(email)
                        .bind(profile.to_string())
                        .bind(occurred)
                        .bind(now)
                        .execute(&mut **tx)
                        .await?;
                        id
                    }
                };

                let mut attributes: Vec<String> = match event.event_type {
                    EventType::ProfileUpserted => event.subject.keys().cloned().collect(),
                    _ => Vec::new(),
                };
                if event.event_type != EventType::ProfileDeleted {
                    for (purpose, state) in &event.consent {
                        if Self::record_consent(tx, &subject_id, purpose, state.as_str(), &item.source, occurred, now).await? {
                            attributes.push(format!("consent.{purpose}"));
                        }
                    }
                }
                let kind = match event.event_type {
                    EventType::ProfileUpserted => "profile_upserted",
                    EventType::ProfileDeleted => "profile_deleted",
                    EventType::ConsentUpdated => "consent_updated",
                };
                sqlx::query(
                    "INSERT INTO changes (subject_id, source, kind, message_id, attributes, occurred_at, received_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7)",
                )
                .bind(&subject_id)
                .bind(&item.source)
                .bind(kind)
                .bind(&item.message_id)
                .bind(serde_json::to_string(&attributes)?)
                .bind(occurred)
                .bind(now)
                .execute(&mut **tx)
                .await?;

                let mut jobs = 0;
                for destination in &item.destinations {
                    jobs += Self::insert_job(tx, destination, &subject_id, JobReason::Change, now).await?;
                }
                Ok(IngestOutcome::Applied { subject_id, jobs })
            }

            /// Returns true when the state changed (and a ledger row was written).
            async fn record_consent(
                tx: &mut Tx,
                subject_id: &str,
                purpose: &str,
                state: &str,
                source: &str,
                occurred: i64,
                now: i64,
            ) -> Result<bool, StoreError> {
                let current: Option<(String, i64)> = sqlx::query_as(
                    "SELECT state, occurred_at FROM consents WHERE subject_id = $1 AND purpose = $2 AND brand = ''",
                )
                .bind(subject_id)
                .bind(purpose)
                .fetch_optional(&mut **tx)
                .await?;
                if let Some((prev, at)) = &current {
                    if prev == state || *at > occurred {
                        return Ok(false);
                    }
                }
                sqlx::query(
                    "INSERT INTO consents (subject_id, purpose, brand, state, source, version, occurred_at) \
                     VALUES ($1, $2, '', $3, $4, 1, $5) ON CONFLICT (subject_id, purpose, brand) DO UPDATE \
                     SET state = excluded.state, source = excluded.source, \
                     version = consents.version + 1, occurred_at = excluded.occurred_at",
                )
                .bind(subject_id)
                .bind(purpose)
                .bind(state)
                .bind(source)
                .bind(occurred)
                .execute(&mut **tx)
                .await?;
                sqlx::query(
                    "INSERT INTO consent_ledger (subject_id, purpose, brand, previous_state, new_state, source, \
                     evidence, occurred_at, recorded_at) VALUES ($1, $2, '', $3, $4, $5, NULL, $6, $7)",
                )
                .bind(subject_id)
                .bind(purpose)
                .bind(current.map(|c| c.0))
                .bind(state)
                .bind(source)
                .bind(occurred)
                .bind(now)
                .execute(&mut **tx)
                .await?;
                Ok(true)
            }

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

            async fn finish_one(tx: &mut Tx, r: &JobResult, now: i64) -> Result<(), StoreError> {
                let job = &r.job;
                sqlx::query(
                    "INSERT INTO delivery_attempts (job_id, destination, subject_id, attempt, action, outcome, \
                     status_code, latency_ms, detail, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
                )
                .bind(&job.id)
                .bind(&job.destination)
                .bind(&job.subject_id)
                .bind(job.attempt + 1)
                .bind(r.action)
                .bind(r.outcome.as_str())
                .bind(r.status_code.map(i64::from))
                .bind(r.latency_ms)
                .bind(&r.detail)
                .bind(now)
                .execute(&mut **tx)
                .await?;
                sqlx::query("DELETE FROM delivery_jobs WHERE id = $1 AND status = 'running'")
                    .bind(&job.id)
                    .execute(&mut **tx)
                    .await?;
                match &r.next {
                    NextStep::Done => {}
                    NextStep::RetryAt(at) => {
                        sqlx::query(sql::RESCHEDULE)
                            .bind(&job.id)
                            .bind(&job.destination)
                            .bind(&job.subject_id)
                            .bind(job.attempt + 1)
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
                let mut tx = self.begin_write().await?;
                let mut out = Vec::with_capacity(items.len());
                for item in items {
                    out.push(Self::ingest_one(&mut tx, item).await?);
                }
                tx.commit().await?;
                Ok(out)
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
                let rows: Vec<(String, String, i64, Option<i64>)> = sqlx::query_as(sql::LOAD_SUBJECTS)
                    .bind(&list)
                    .fetch_all(&self.pool)
                    .await?;
                let consents: Vec<(String, String, String, String)> = sqlx::query_as(sql::LOAD_CONSENTS)
                    .bind(&list)
                    .fetch_all(&self.pool)
                    .await?;
                let mut by_subject: std::collections::HashMap<String, Vec<(String, String, bool)>> =
                    std::collections::HashMap::new();
                for (subject, purpose, brand, state) in consents {
                    by_subject.entry(subject).or_default().push((purpose, brand, state == "granted"));
                }
                rows.into_iter()
                    .map(|(id, profile, version, deleted_at)| {
                        let mut profile: serde_json::Value = serde_json::from_str(&profile)?;
                        if let Some(obj) = profile.as_object_mut() {
                            obj.insert("id".into(), id.clone().into());
                        }
                        Ok(SubjectState {
                            consents: by_subject.remove(&id).unwrap_or_default(),
                            id,
                            profile,
                            version,
                            deleted: deleted_at.is_some(),
                        })
                    })
                    .collect()
            }

            async fn finish_jobs(&self, results: &[JobResult], now: i64) -> Result<(), StoreError> {
                if results.is_empty() {
                    return Ok(());
                }
                let mut tx = self.begin_write().await?;
                for r in results {
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
        }
    };
}

pub(crate) use impl_store;
