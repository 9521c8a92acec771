//! Subjects: the group-committed ingest of inbound changes (planned in
//! memory by `batch`), the state a delivery reads, and lookups.

use std::collections::HashMap;
use std::sync::LazyLock;

use super::batch::{self, BatchSql};
use super::db::Durability;
use super::dialect::Dialect;
use super::exec::{Exec, Param, WriteOp};
use super::{
    Holding, IngestItem, IngestOutcome, SqlStore, StoreError, SubjectKey, SubjectState, jobs,
};

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

static SQLITE_BATCH: LazyLock<BatchSql> = LazyLock::new(|| BatchSql::new(Dialect::Sqlite));
static POSTGRES_BATCH: LazyLock<BatchSql> = LazyLock::new(|| BatchSql::new(Dialect::Postgres));

fn batch_sql(dialect: Dialect) -> &'static BatchSql {
    match dialect {
        Dialect::Sqlite => &SQLITE_BATCH,
        Dialect::Postgres => &POSTGRES_BATCH,
    }
}

type SubjectRowTuple = (String, String, String, String, i64, i64, Option<i64>, i64);
/// id, profile, version, deleted_at, erase_requested_at
type StateRow = (String, String, i64, Option<i64>, Option<i64>);
type ConsentRowTuple = (String, String, String, String, i64, i64, String);

/// Applies inbound changes and fans out their jobs in one transaction: three
/// reads (fresh message ids, subjects, consents), the plan in memory, then
/// five writes, whatever the batch size.
pub(super) async fn ingest(
    store: &SqlStore,
    items: &[IngestItem],
) -> Result<Vec<IngestOutcome>, StoreError> {
    let op = Ingest {
        items: items.to_vec(),
    };
    store.transact(Durability::Acknowledged, op).await
}

/// One group commit: the batch's reads, its plan, its writes.
struct Ingest {
    items: Vec<IngestItem>,
}

impl WriteOp for Ingest {
    type Output = Vec<IngestOutcome>;

    async fn run<E: Exec>(self, exec: &mut E) -> Result<Vec<IngestOutcome>, StoreError> {
        let items = &self.items[..];
        let dialect = exec.dialect();
        let sql = batch_sql(dialect);
        let message_keys = batch::message_keys(items)?;
        let fresh: Vec<(String, String)> = exec
            .rows(&sql.insert_messages, &[Param::from(&message_keys)])
            .await?;
        let subject_keys = batch::subject_keys(items)?;
        let rows: Vec<SubjectRowTuple> = exec
            .rows(&sql.load_subjects, &[Param::from(&subject_keys)])
            .await?;
        let ids: Vec<serde_json::Value> = rows
            .iter()
            .map(|r| serde_json::json!({ "id": r.0 }))
            .collect();
        let ids = serde_json::to_string(&ids)?;
        let consent_rows: Vec<ConsentRowTuple> =
            exec.rows(&sql.load_consents, &[Param::from(&ids)]).await?;
        let existing = rows
            .into_iter()
            .map(subject_row)
            .collect::<Result<Vec<_>, StoreError>>()?;
        let consents = consent_rows.into_iter().map(consent_row).collect();
        let (outcomes, writes) =
            batch::plan(items, fresh.into_iter().collect(), existing, consents)?;
        let statements = [
            (&sql.upsert_subjects, writes.subjects),
            (&sql.upsert_consents, writes.consents),
            (&sql.insert_ledger, writes.ledger),
            (&sql.insert_changes, writes.changes),
            (&sql.insert_jobs, writes.jobs),
        ];
        for (statement, rows) in statements {
            if let Some(rows) = rows {
                exec.execute(statement, &[Param::from(&rows)]).await?;
            }
        }
        let now = items
            .iter()
            .map(|i| i.received_at)
            .max()
            .unwrap_or_default();
        jobs::queue_held_destinations(exec, &writes.erased, now).await?;
        if dialect == Dialect::Postgres {
            super::notify::notify(exec, &super::notify::Woken::by(items)).await?;
        }
        Ok(outcomes)
    }
}

fn subject_row(row: SubjectRowTuple) -> Result<batch::SubjectRow, StoreError> {
    let (id, source, external_id, profile, version, last_occurred_at, deleted_at, created_at) = row;
    let profile = match serde_json::from_str(&profile)? {
        serde_json::Value::Object(m) => m,
        _ => serde_json::Map::new(),
    };
    Ok(batch::SubjectRow {
        id,
        source,
        external_id,
        profile,
        version,
        last_occurred_at,
        deleted_at,
        created_at,
        erase_requested_at: None,
        updated_at: created_at,
    })
}

type ConsentKey = (String, String, String);

fn consent_row(row: ConsentRowTuple) -> (ConsentKey, batch::ConsentRow) {
    let (subject_id, purpose, brand, state, occurred_at, version, source) = row;
    (
        (subject_id, purpose, brand),
        batch::ConsentRow {
            state,
            occurred_at,
            version,
            source,
        },
    )
}

/// The current state of these subjects (missing ids are absent): profile,
/// consent and what each destination holds.
pub(super) async fn load(
    store: &SqlStore,
    ids: &[String],
) -> Result<Vec<SubjectState>, StoreError> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let list = serde_json::to_string(ids)?;
    let in_list = store.dialect.json_strings(1);
    let rows: Vec<StateRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT id, profile, version, deleted_at, erase_requested_at FROM subjects \
             WHERE id IN ({in_list})"
    )))
    .bind(&list)
    .fetch_all(&store.pool)
    .await?;
    let consents = load_consents(store.dialect, &store.pool, &list).await?;
    let held = jobs::load_held(store.dialect, &store.pool, &list).await?;
    let mut received: HashMap<String, HashMap<String, Holding>> = HashMap::new();
    for row in &held {
        if let Some(h) = jobs::holding(row) {
            received
                .entry(row.0.clone())
                .or_default()
                .insert(row.1.clone(), h);
        }
    }
    let mut by_subject: HashMap<String, Vec<(String, String, bool)>> = HashMap::new();
    for (subject, purpose, brand, state) in consents {
        by_subject
            .entry(subject)
            .or_default()
            .push((purpose, brand, state == "granted"));
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

/// (subject, purpose, brand, state) of the subjects in the JSON id list.
pub(super) async fn load_consents<'e, E>(
    dialect: Dialect,
    executor: E,
    id_list: &str,
) -> Result<Vec<(String, String, String, String)>, StoreError>
where
    E: sqlx::Executor<'e, Database = sqlx::Any>,
{
    let in_list = dialect.json_strings(1);
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT subject_id, purpose, brand, state FROM consents WHERE subject_id IN ({in_list})"
    )))
    .bind(id_list)
    .fetch_all(executor)
    .await?)
}

/// Subject ids that are not tombstoned, in id order after `after`.
pub(super) async fn ids_after(
    store: &SqlStore,
    after: Option<&str>,
    limit: i64,
) -> Result<Vec<String>, StoreError> {
    let rows: Vec<(String,)> = sqlx::query_as(
        "SELECT id FROM subjects WHERE deleted_at IS NULL AND id > $1 ORDER BY id LIMIT $2",
    )
    .bind(after.unwrap_or(""))
    .bind(limit)
    .fetch_all(&store.pool)
    .await?;
    Ok(rows.into_iter().map(|r| r.0).collect())
}

pub(super) async fn find(store: &SqlStore, key: &SubjectKey) -> Result<Option<String>, StoreError> {
    let row: Option<(String,)> = match key {
        SubjectKey::Id(id) => {
            sqlx::query_as("SELECT id FROM subjects WHERE id = $1")
                .bind(id)
                .fetch_optional(&store.pool)
                .await?
        }
        SubjectKey::External {
            source,
            external_id,
        } => {
            sqlx::query_as("SELECT id FROM subjects WHERE source = $1 AND external_id = $2")
                .bind(source)
                .bind(external_id)
                .fetch_optional(&store.pool)
                .await?
        }
    };
    Ok(row.map(|r| r.0))
}
