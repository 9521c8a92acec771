//! SCIM Users and Groups. A write commits the resource, a `changes`
//! row and one delivery job per destination and affected subject together.

use super::db::WriteTx;
use super::{
    GroupNarrowing, JobReason, ScimConsent, ScimGroupRecord, ScimGroupWrite, ScimOp,
    ScimUserRecord, ScimUserWrite, ScimWriteOutcome, SqlStore, StoreError, UserNarrowing, jobs,
    subjects,
};

pub(crate) type UserRow = (String, String, String, String, i64, i64, i64);
pub(crate) type GroupRow = (String, String, Option<String>, String, i64, i64, i64);

/// Live SCIM Users.
macro_rules! users_where {
    ($extra:literal) => {
        concat!(
            "FROM subjects WHERE scim_user_name IS NOT NULL AND deleted_at IS NULL",
            $extra
        )
    };
}

/// The (rows, count, `$1` value) triple `user_statements` returns, for the
/// condition `$extra` appended to the live-Users `WHERE`.
macro_rules! user_sql {
    ($extra:literal, $arg:expr) => {
        (
            concat!(
                "SELECT id, source, external_id, profile, version, created_at, updated_at ",
                users_where!($extra),
                " ORDER BY id LIMIT $2 OFFSET $3"
            ),
            concat!("SELECT COUNT(*) ", users_where!($extra)),
            $arg,
        )
    };
}

/// The distinct lowercased `emails[].value` of a profile.
pub(crate) fn emails_lowercased(profile: &serde_json::Value) -> Vec<String> {
    let mut out: Vec<String> = profile
        .get("emails")
        .and_then(|e| e.as_array())
        .into_iter()
        .flatten()
        .filter_map(|e| e.get("value").and_then(|v| v.as_str()))
        .map(|v| v.to_lowercase())
        .filter(|v| !v.is_empty())
        .collect();
    out.sort();
    out.dedup();
    out
}

/// (rows, count) statements per narrowing and their `$1`, the narrowing value.
pub(crate) fn user_statements(narrowing: &UserNarrowing) -> (&'static str, &'static str, String) {
    use UserNarrowing as N;
    match narrowing {
        N::All => user_sql!(" AND $1 = ''", String::new()),
        N::Id(v) => user_sql!(" AND id = $1", v.clone()),
        N::UserName(v) => user_sql!(" AND scim_user_name = $1", v.clone()),
        N::ExternalId(v) => user_sql!(" AND external_id = $1", v.clone()),
        N::Email(v) => user_sql!(
            " AND id IN (SELECT subject_id FROM subject_emails WHERE email = $1)",
            v.clone()
        ),
        N::ModifiedSince(ms) => user_sql!(" AND updated_at >= CAST($1 AS BIGINT)", ms.to_string()),
        N::ModifiedUntil(ms) => user_sql!(" AND updated_at <= CAST($1 AS BIGINT)", ms.to_string()),
    }
}

/// As `user_sql!`, for Groups.
macro_rules! group_sql {
    ($extra:literal, $arg:expr) => {
        (
            concat!(
                "SELECT id, source, external_id, display_name, version, created_at, updated_at \
                 FROM scim_groups WHERE true",
                $extra,
                " ORDER BY id LIMIT $2 OFFSET $3"
            ),
            concat!("SELECT COUNT(*) FROM scim_groups WHERE true", $extra),
            $arg,
        )
    };
}

pub(crate) fn group_statements(narrowing: &GroupNarrowing) -> (&'static str, &'static str, String) {
    use GroupNarrowing as N;
    match narrowing {
        N::All => group_sql!(" AND $1 = ''", String::new()),
        N::Id(v) => group_sql!(" AND id = $1", v.clone()),
        N::DisplayName(v) => group_sql!(" AND display_name_key = $1", v.clone()),
        N::ExternalId(v) => group_sql!(" AND external_id = $1", v.clone()),
    }
}

pub(crate) fn user_record(row: UserRow) -> Result<ScimUserRecord, StoreError> {
    let (id, source, external_id, profile, version, created_at, updated_at) = row;
    Ok(ScimUserRecord {
        id,
        source,
        external_id,
        profile: serde_json::from_str(&profile)?,
        version,
        created_at,
        updated_at,
        consents: Vec::new(),
    })
}

/// Attaches the rows of `LOAD_CONSENTS` to their records.
pub(crate) fn attach_consents(
    records: &mut [ScimUserRecord],
    rows: Vec<(String, String, String, String)>,
) {
    for (subject, purpose, brand, state) in rows {
        if let Some(r) = records.iter_mut().find(|r| r.id == subject) {
            r.consents.push(ScimConsent {
                purpose,
                brand,
                state,
            });
        }
    }
    for r in records {
        r.consents
            .sort_by(|a, b| (&a.brand, &a.purpose).cmp(&(&b.brand, &b.purpose)));
    }
}

/// The JSON id list `LOAD_CONSENTS` takes.
pub(crate) fn id_list(records: &[ScimUserRecord]) -> Result<String, StoreError> {
    Ok(serde_json::to_string(
        &records.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(),
    )?)
}

pub(crate) fn group_record(row: GroupRow) -> ScimGroupRecord {
    let (id, source, external_id, display_name, version, created_at, updated_at) = row;
    ScimGroupRecord {
        id,
        source,
        external_id,
        display_name,
        version,
        created_at,
        updated_at,
        members: Vec::new(),
    }
}

/// The lowercased userName the uniqueness index holds.
pub(crate) fn user_name_key(profile: &serde_json::Value) -> Option<String> {
    profile
        .get("userName")
        .and_then(|v| v.as_str())
        .map(str::to_lowercase)
}

/// What a group lists as a member's `display`.
pub(crate) fn member_display(profile: &serde_json::Value) -> Option<String> {
    ["displayName", "userName"]
        .iter()
        .find_map(|k| profile.get(*k).and_then(|v| v.as_str()))
        .map(str::to_owned)
}

pub(crate) fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.is_unique_violation())
}

impl SqlStore {
    pub(super) async fn scim_list_users_in(
        &self,
        narrowing: &UserNarrowing,
        offset: i64,
        limit: Option<i64>,
    ) -> Result<(Vec<ScimUserRecord>, i64), StoreError> {
        let (rows_sql, count_sql, arg) = user_statements(narrowing);
        let (total,): (i64,) = sqlx::query_as(count_sql)
            .bind(&arg)
            .fetch_one(&self.pool)
            .await?;
        if limit == Some(0) {
            return Ok((Vec::new(), total));
        }
        let rows: Vec<UserRow> = sqlx::query_as(rows_sql)
            .bind(&arg)
            .bind(limit.unwrap_or(i64::MAX))
            .bind(offset.max(0))
            .fetch_all(&self.pool)
            .await?;
        let mut records: Vec<ScimUserRecord> = rows
            .into_iter()
            .map(user_record)
            .collect::<Result<_, _>>()?;
        if !records.is_empty() {
            let consents =
                subjects::load_consents(self.dialect, &self.pool, &id_list(&records)?).await?;
            attach_consents(&mut records, consents);
        }
        Ok((records, total))
    }

    async fn scim_user_tx(
        &self,
        tx: &mut WriteTx,
        id: &str,
    ) -> Result<Option<ScimUserRecord>, StoreError> {
        let row: Option<UserRow> = sqlx::query_as(
            "SELECT id, source, external_id, profile, version, created_at, updated_at \
             FROM subjects WHERE scim_user_name IS NOT NULL AND deleted_at IS NULL AND id = $1",
        )
        .bind(id)
        .fetch_optional(&mut **tx)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let mut records = [user_record(row)?];
        let consents =
            subjects::load_consents(self.dialect, &mut **tx, &id_list(&records)?).await?;
        attach_consents(&mut records, consents);
        let [record] = records;
        Ok(Some(record))
    }

    async fn scim_note_change(
        tx: &mut WriteTx,
        subject_id: &str,
        source: &str,
        kind: &str,
        attributes: &[String],
        destinations: &[String],
        now: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO changes (subject_id, source, kind, message_id, attributes, occurred_at, received_at) \
             VALUES ($1, $2, $3, NULL, $4, $5, $5)",
        )
        .bind(subject_id)
        .bind(source)
        .bind(kind)
        .bind(serde_json::to_string(attributes)?)
        .bind(now)
        .execute(&mut **tx)
        .await?;
        for destination in destinations {
            jobs::insert_job(tx, destination, subject_id, JobReason::Change, now).await?;
        }
        Ok(())
    }

    pub(super) async fn scim_write_user_in(
        &self,
        w: &ScimUserWrite,
    ) -> Result<ScimWriteOutcome<ScimUserRecord>, StoreError> {
        let mut tx = self.begin_write().await?;
        let key = user_name_key(&w.profile);
        if !matches!(w.op, ScimOp::Delete { .. }) {
            let taken: Option<(String,)> = sqlx::query_as(
                "SELECT id FROM subjects WHERE scim_user_name = $1 AND deleted_at IS NULL AND id <> $2",
            )
            .bind(&key)
            .bind(&w.id)
            .fetch_optional(&mut *tx)
            .await?;
            if taken.is_some() {
                return Ok(ScimWriteOutcome::Conflict("userName"));
            }
        }
        let (user_name, primary_email) = subjects::indexed_keys(&w.profile);
        let result = match w.op {
            ScimOp::Create => sqlx::query(
                "INSERT INTO subjects (id, source, external_id, user_name, primary_email, profile, version, \
                 last_occurred_at, deleted_at, created_at, updated_at, scim_user_name) \
                 VALUES ($1, $2, $3, $4, $5, $6, 1, $7, NULL, $7, $7, $8)",
            )
            .bind(&w.id)
            .bind(&w.client)
            .bind(&w.external_id)
            .bind(&user_name)
            .bind(&primary_email)
            .bind(w.profile.to_string())
            .bind(w.now)
            .bind(&key)
            .execute(&mut *tx)
            .await,
            ScimOp::Update { expected_version } => sqlx::query(
                "UPDATE subjects SET external_id = $1, user_name = $2, primary_email = $3, profile = $4, \
                 version = version + 1, last_occurred_at = $5, updated_at = $5, scim_user_name = $6 \
                 WHERE id = $7 AND version = $8 AND deleted_at IS NULL AND scim_user_name IS NOT NULL",
            )
            .bind(&w.external_id)
            .bind(&user_name)
            .bind(&primary_email)
            .bind(w.profile.to_string())
            .bind(w.now)
            .bind(&key)
            .bind(&w.id)
            .bind(expected_version)
            .execute(&mut *tx)
            .await,
            ScimOp::Delete { expected_version } => sqlx::query(
                "UPDATE subjects SET deleted_at = $1, erase_requested_at = COALESCE(erase_requested_at, $1), \
                 scim_user_name = NULL, external_id = 'erased:' || id, \
                 version = version + 1, updated_at = $1 \
                 WHERE id = $2 AND deleted_at IS NULL AND scim_user_name IS NOT NULL \
                 AND ($3 < 0 OR version = $3)",
            )
            .bind(w.now)
            .bind(&w.id)
            .bind(expected_version.unwrap_or(-1))
            .execute(&mut *tx)
            .await,
        };
        let done = match result {
            Ok(r) => r.rows_affected(),
            Err(e) if is_unique_violation(&e) => {
                return Ok(ScimWriteOutcome::Conflict("externalId"));
            }
            Err(e) => return Err(e.into()),
        };
        if done == 0 {
            return Ok(match self.scim_user_tx(&mut tx, &w.id).await? {
                None => ScimWriteOutcome::NotFound,
                Some(_) => ScimWriteOutcome::VersionMismatch,
            });
        }
        // The email index follows the profile.
        sqlx::query("DELETE FROM subject_emails WHERE subject_id = $1")
            .bind(&w.id)
            .execute(&mut *tx)
            .await?;
        if !matches!(w.op, ScimOp::Delete { .. }) {
            for email in emails_lowercased(&w.profile) {
                sqlx::query("INSERT INTO subject_emails (subject_id, email) VALUES ($1, $2) ON CONFLICT DO NOTHING")
                    .bind(&w.id)
                    .bind(email)
                    .execute(&mut *tx)
                    .await?;
            }
        }
        let kind = if let ScimOp::Delete { .. } = w.op {
            // A deleted subject leaves its groups; they change version.
            sqlx::query(
                "UPDATE scim_groups SET version = version + 1, updated_at = $1 \
                 WHERE id IN (SELECT group_id FROM scim_group_members WHERE subject_id = $2)",
            )
            .bind(w.now)
            .bind(&w.id)
            .execute(&mut *tx)
            .await?;
            sqlx::query("DELETE FROM scim_group_members WHERE subject_id = $1")
                .bind(&w.id)
                .execute(&mut *tx)
                .await?;
            jobs::queue_held_destinations(&mut tx, std::slice::from_ref(&w.id), w.now).await?;
            "profile_deleted"
        } else {
            Self::scim_set_consents(&mut tx, w).await?;
            "profile_upserted"
        };
        Self::scim_note_change(
            &mut tx,
            &w.id,
            &w.client,
            kind,
            &w.attributes,
            &w.destinations,
            w.now,
        )
        .await?;
        let record = match w.op {
            ScimOp::Delete { .. } => None,
            _ => self.scim_user_tx(&mut tx, &w.id).await?,
        };
        tx.commit().await?;
        Ok(match record {
            Some(r) => ScimWriteOutcome::Done(r),
            None => ScimWriteOutcome::Done(ScimUserRecord {
                id: w.id.clone(),
                source: w.client.clone(),
                external_id: w.external_id.clone(),
                profile: serde_json::Value::Null,
                version: 0,
                created_at: w.now,
                updated_at: w.now,
                consents: Vec::new(),
            }),
        })
    }

    /// Writes each consent that differs from the current one (a new
    /// version, `occurred_at` now, the client as source) and its
    /// ledger row, as the webhook batch does.
    async fn scim_set_consents(tx: &mut WriteTx, w: &ScimUserWrite) -> Result<(), StoreError> {
        for c in &w.consents {
            let current: Option<(String, i64)> = sqlx::query_as(
                "SELECT state, version FROM consents WHERE subject_id = $1 AND purpose = $2 AND brand = $3",
            )
            .bind(&w.id)
            .bind(&c.purpose)
            .bind(&c.brand)
            .fetch_optional(&mut **tx)
            .await?;
            if current.as_ref().is_some_and(|(state, _)| *state == c.state) {
                continue;
            }
            sqlx::query(
                "INSERT INTO consents (subject_id, purpose, brand, state, source, version, occurred_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (subject_id, purpose, brand) DO UPDATE \
                 SET state = excluded.state, source = excluded.source, version = excluded.version, \
                 occurred_at = excluded.occurred_at",
            )
            .bind(&w.id)
            .bind(&c.purpose)
            .bind(&c.brand)
            .bind(&c.state)
            .bind(&w.client)
            .bind(current.as_ref().map_or(1, |(_, v)| v + 1))
            .bind(w.now)
            .execute(&mut **tx)
            .await?;
            sqlx::query(
                "INSERT INTO consent_ledger (subject_id, purpose, brand, previous_state, new_state, source, \
                 evidence, occurred_at, recorded_at) VALUES ($1, $2, $3, $4, $5, $6, NULL, $7, $7)",
            )
            .bind(&w.id)
            .bind(&c.purpose)
            .bind(&c.brand)
            .bind(current.map(|(state, _)| state))
            .bind(&c.state)
            .bind(&w.client)
            .bind(w.now)
            .execute(&mut **tx)
            .await?;
        }
        Ok(())
    }

    async fn scim_group_members_of<'e, E>(
        executor: E,
        group_id: &str,
    ) -> Result<Vec<(String, Option<String>)>, StoreError>
    where
        E: sqlx::Executor<'e, Database = sqlx::Any>,
    {
        Ok(sqlx::query_as(
            // Members that name no User (yet) are listed as sent, without a display.
            "SELECT subject_id, display FROM scim_group_members WHERE group_id = $1 \
             UNION ALL SELECT member_id, CAST(NULL AS TEXT) FROM scim_group_unresolved_members \
             WHERE group_id = $1 ORDER BY 1",
        )
        .bind(group_id)
        .fetch_all(executor)
        .await?)
    }

    pub(super) async fn scim_list_groups_in(
        &self,
        narrowing: &GroupNarrowing,
        offset: i64,
        limit: Option<i64>,
        with_members: bool,
    ) -> Result<(Vec<ScimGroupRecord>, i64), StoreError> {
        let (rows_sql, count_sql, arg) = group_statements(narrowing);
        let (total,): (i64,) = sqlx::query_as(count_sql)
            .bind(&arg)
            .fetch_one(&self.pool)
            .await?;
        if limit == Some(0) {
            return Ok((Vec::new(), total));
        }
        let rows: Vec<GroupRow> = sqlx::query_as(rows_sql)
            .bind(&arg)
            .bind(limit.unwrap_or(i64::MAX))
            .bind(offset.max(0))
            .fetch_all(&self.pool)
            .await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let mut g = group_record(row);
            if with_members {
                g.members = Self::scim_group_members_of(&self.pool, &g.id).await?;
            }
            out.push(g);
        }
        Ok((out, total))
    }

    async fn scim_group_tx(
        tx: &mut WriteTx,
        id: &str,
    ) -> Result<Option<ScimGroupRecord>, StoreError> {
        let row: Option<GroupRow> = sqlx::query_as(
            "SELECT id, source, external_id, display_name, version, created_at, updated_at \
             FROM scim_groups WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&mut **tx)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let mut g = group_record(row);
        g.members = Self::scim_group_members_of(&mut **tx, id).await?;
        Ok(Some(g))
    }

    /// Rewrites a member subject's `groups` attribute from the
    /// membership table and queues it for every destination.
    async fn scim_resync_member(
        tx: &mut WriteTx,
        subject_id: &str,
        client: &str,
        destinations: &[String],
        now: i64,
    ) -> Result<(), StoreError> {
        let row: Option<(String,)> =
            sqlx::query_as("SELECT profile FROM subjects WHERE id = $1 AND deleted_at IS NULL")
                .bind(subject_id)
                .fetch_optional(&mut **tx)
                .await?;
        let Some((profile,)) = row else { return Ok(()) };
        let mut profile: serde_json::Value = serde_json::from_str(&profile)?;
        let groups: Vec<(String, String)> = sqlx::query_as(
            "SELECT g.id, g.display_name FROM scim_group_members m JOIN scim_groups g ON g.id = m.group_id \
             WHERE m.subject_id = $1 ORDER BY g.display_name_key, g.id",
        )
        .bind(subject_id)
        .fetch_all(&mut **tx)
        .await?;
        if let Some(obj) = profile.as_object_mut() {
            if groups.is_empty() {
                obj.remove("groups");
            } else {
                let list: Vec<serde_json::Value> = groups
                    .into_iter()
                    .map(|(id, display)| {
                        serde_json::json!({
                            "value": id, "display": display, "type": "direct"
                        })
                    })
                    .collect();
                obj.insert("groups".into(), list.into());
            }
        }
        sqlx::query(
            "UPDATE subjects SET profile = $1, version = version + 1, updated_at = $2 WHERE id = $3",
        )
        .bind(profile.to_string())
        .bind(now)
        .bind(subject_id)
        .execute(&mut **tx)
        .await?;
        Self::scim_note_change(
            tx,
            subject_id,
            client,
            "profile_upserted",
            &["groups".to_string()],
            destinations,
            now,
        )
        .await
    }

    pub(super) async fn scim_write_group_in(
        &self,
        w: &ScimGroupWrite,
    ) -> Result<ScimWriteOutcome<ScimGroupRecord>, StoreError> {
        let mut tx = self.begin_write().await?;
        let key = w.display_name.to_lowercase();
        let before = Self::scim_group_tx(&mut tx, &w.id).await?;
        match (&w.op, &before) {
            (ScimOp::Create, Some(_)) => return Ok(ScimWriteOutcome::Conflict("id")),
            (ScimOp::Update { .. } | ScimOp::Delete { .. }, None) => {
                return Ok(ScimWriteOutcome::NotFound);
            }
            (ScimOp::Update { expected_version }, Some(g)) if g.version != *expected_version => {
                return Ok(ScimWriteOutcome::VersionMismatch);
            }
            (
                ScimOp::Delete {
                    expected_version: Some(v),
                },
                Some(g),
            ) if g.version != *v => {
                return Ok(ScimWriteOutcome::VersionMismatch);
            }
            _ => {}
        }
        let old: Vec<String> = before
            .as_ref()
            .map(|g| g.members.iter().map(|m| m.0.clone()).collect())
            .unwrap_or_default();
        // Only members that are Users have a `groups` attribute to keep.
        let resolved_before: Vec<String> = sqlx::query_as::<_, (String,)>(
            "SELECT subject_id FROM scim_group_members WHERE group_id = $1",
        )
        .bind(&w.id)
        .fetch_all(&mut *tx)
        .await?
        .into_iter()
        .map(|(id,)| id)
        .collect();
        if let ScimOp::Delete { .. } = w.op {
            sqlx::query("DELETE FROM scim_group_members WHERE group_id = $1")
                .bind(&w.id)
                .execute(&mut *tx)
                .await?;
            sqlx::query("DELETE FROM scim_groups WHERE id = $1")
                .bind(&w.id)
                .execute(&mut *tx)
                .await?;
            for subject in &resolved_before {
                Self::scim_resync_member(&mut tx, subject, &w.client, &w.destinations, w.now)
                    .await?;
            }
            tx.commit().await?;
            return Ok(ScimWriteOutcome::Done(before.unwrap_or_else(|| {
                group_record((
                    w.id.clone(),
                    w.client.clone(),
                    None,
                    w.display_name.clone(),
                    0,
                    w.now,
                    w.now,
                ))
            })));
        }
        let taken: Option<(String,)> =
            sqlx::query_as("SELECT id FROM scim_groups WHERE display_name_key = $1 AND id <> $2")
                .bind(&key)
                .bind(&w.id)
                .fetch_optional(&mut *tx)
                .await?;
        if taken.is_some() {
            return Ok(ScimWriteOutcome::Conflict("displayName"));
        }
        let result = match w.op {
            ScimOp::Create => sqlx::query(
                "INSERT INTO scim_groups (id, source, external_id, display_name, display_name_key, version, \
                 created_at, updated_at) VALUES ($1, $2, $3, $4, $5, 1, $6, $6)",
            )
            .bind(&w.id)
            .bind(&w.client)
            .bind(&w.external_id)
            .bind(&w.display_name)
            .bind(&key)
            .bind(w.now)
            .execute(&mut *tx)
            .await,
            _ => sqlx::query(
                "UPDATE scim_groups SET external_id = $1, display_name = $2, display_name_key = $3, \
                 version = version + 1, updated_at = $4 WHERE id = $5",
            )
            .bind(&w.external_id)
            .bind(&w.display_name)
            .bind(&key)
            .bind(w.now)
            .bind(&w.id)
            .execute(&mut *tx)
            .await,
        };
        match result {
            Ok(_) => {}
            Err(e) if is_unique_violation(&e) => {
                return Ok(ScimWriteOutcome::Conflict("displayName"));
            }
            Err(e) => return Err(e.into()),
        }
        let mut new: Vec<String> = w.members.clone();
        new.sort();
        new.dedup();
        let renamed = before
            .as_ref()
            .is_some_and(|g| g.display_name != w.display_name);
        let mut affected: Vec<String> = Vec::new();
        for subject in &old {
            let resolved = resolved_before.contains(subject);
            if new.binary_search(subject).is_err() {
                let sql = if resolved {
                    "DELETE FROM scim_group_members WHERE group_id = $1 AND subject_id = $2"
                } else {
                    "DELETE FROM scim_group_unresolved_members WHERE group_id = $1 AND member_id = $2"
                };
                sqlx::query(sql)
                    .bind(&w.id)
                    .bind(subject)
                    .execute(&mut *tx)
                    .await?;
                if resolved {
                    affected.push(subject.clone());
                }
            } else if renamed && resolved {
                affected.push(subject.clone());
            }
        }
        for subject in &new {
            if resolved_before.contains(subject) {
                continue;
            }
            // A member that names no User is kept as sent and touches no subject.
            let Some(user) = self.scim_user_tx(&mut tx, subject).await? else {
                sqlx::query(
                    "INSERT INTO scim_group_unresolved_members (group_id, member_id) VALUES ($1, $2) \
                     ON CONFLICT DO NOTHING",
                )
                .bind(&w.id)
                .bind(subject)
                .execute(&mut *tx)
                .await?;
                continue;
            };
            // One named earlier that has become a User now counts.
            sqlx::query(
                "DELETE FROM scim_group_unresolved_members WHERE group_id = $1 AND member_id = $2",
            )
            .bind(&w.id)
            .bind(subject)
            .execute(&mut *tx)
            .await?;
            sqlx::query("INSERT INTO scim_group_members (group_id, subject_id, display) VALUES ($1, $2, $3)")
                .bind(&w.id)
                .bind(subject)
                .bind(member_display(&user.profile))
                .execute(&mut *tx)
                .await?;
            affected.push(subject.clone());
        }
        for subject in &affected {
            Self::scim_resync_member(&mut tx, subject, &w.client, &w.destinations, w.now).await?;
        }
        let record = Self::scim_group_tx(&mut tx, &w.id).await?;
        tx.commit().await?;
        Ok(match record {
            Some(g) => ScimWriteOutcome::Done(g),
            None => ScimWriteOutcome::NotFound,
        })
    }
}
