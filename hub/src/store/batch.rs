//! Group commit of inbound changes, planned in memory: the store reads what a
//! batch touches (fresh message ids, subjects, consents) in three statements,
//! this module applies the events in order, and the result is written back in
//! five statements, whatever the batch size. Each write is one JSON array
//! parameter, unpacked by `json_each` (SQLite) or `jsonb_to_recordset`
//! (PostgreSQL).

use std::collections::{HashMap, HashSet};

use serde::Serialize;
use serde_json::{Map, Value};

use super::dialect::Dialect;
use super::subjects::{indexed_keys, merge_profile};
use super::{IngestItem, IngestOutcome, StoreError};
use crate::event::{EventType, add_brands};

/// A subject as read for, and written by, a batch.
#[derive(Debug, Clone)]
pub(crate) struct SubjectRow {
    pub id: String,
    pub source: String,
    pub external_id: String,
    pub profile: Map<String, Value>,
    pub version: i64,
    pub last_occurred_at: i64,
    pub deleted_at: Option<i64>,
    pub erase_requested_at: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// The current global consent of one (subject, purpose).
#[derive(Debug, Clone)]
pub(crate) struct ConsentRow {
    pub state: String,
    pub occurred_at: i64,
    pub version: i64,
    pub source: String,
}

#[derive(Serialize)]
struct SubjectWrite<'a> {
    id: &'a str,
    source: &'a str,
    external_id: &'a str,
    user_name: Option<String>,
    primary_email: Option<String>,
    profile: String,
    version: i64,
    last_occurred_at: i64,
    deleted_at: Option<i64>,
    erase_requested_at: Option<i64>,
    created_at: i64,
    updated_at: i64,
}

#[derive(Serialize)]
struct ConsentWrite<'a> {
    subject_id: &'a str,
    purpose: &'a str,
    brand: &'a str,
    state: &'a str,
    source: &'a str,
    version: i64,
    occurred_at: i64,
}

#[derive(Serialize)]
struct LedgerWrite {
    subject_id: String,
    purpose: String,
    brand: String,
    previous_state: Option<String>,
    new_state: String,
    source: String,
    evidence: Option<String>,
    occurred_at: i64,
    recorded_at: i64,
}

#[derive(Serialize)]
struct ChangeWrite<'a> {
    subject_id: String,
    source: &'a str,
    kind: &'static str,
    message_id: &'a str,
    attributes: String,
    occurred_at: i64,
    received_at: i64,
}

#[derive(Serialize)]
struct JobWrite<'a> {
    id: String,
    destination: &'a str,
    subject_id: String,
    now: i64,
    /// Left out when unset (telemetry off): the column reads NULL.
    #[serde(skip_serializing_if = "Option::is_none")]
    traceparent: Option<&'a str>,
}

/// The batch's writes, each a JSON array ready to bind (None when empty).
#[derive(Debug, Default)]
pub(crate) struct BatchWrites {
    pub subjects: Option<String>,
    pub consents: Option<String>,
    pub ledger: Option<String>,
    pub changes: Option<String>,
    pub jobs: Option<String>,
    /// Subjects erased by this batch: every destination that held them is queued too.
    pub erased: Vec<String>,
}

fn array<T: Serialize>(rows: &[T]) -> Result<Option<String>, StoreError> {
    if rows.is_empty() {
        Ok(None)
    } else {
        Ok(Some(serde_json::to_string(rows)?))
    }
}

/// (source, external id) of every item, for the subject lookup.
pub(crate) fn subject_keys(items: &[IngestItem]) -> Result<String, StoreError> {
    let mut seen = HashSet::new();
    let keys: Vec<Value> = items
        .iter()
        .filter_map(|i| {
            let ext = i.event.external_id()?;
            seen.insert((i.source.as_str(), ext))
                .then(|| serde_json::json!({"s": i.source, "e": ext}))
        })
        .collect();
    Ok(serde_json::to_string(&keys)?)
}

/// (source, message id) of every item, for the idempotency insert.
pub(crate) fn message_keys(items: &[IngestItem]) -> Result<String, StoreError> {
    let keys: Vec<Value> = items
        .iter()
        .map(|i| serde_json::json!({"s": i.source, "m": i.message_id, "t": i.received_at}))
        .collect();
    Ok(serde_json::to_string(&keys)?)
}

/// Applies `items` in order over what the store holds.
pub(crate) fn plan(
    items: &[IngestItem],
    mut fresh: HashSet<(String, String)>,
    existing: Vec<SubjectRow>,
    mut consents: HashMap<(String, String, String), ConsentRow>,
) -> Result<(Vec<IngestOutcome>, BatchWrites), StoreError> {
    let mut subjects: HashMap<(String, String), SubjectRow> = existing
        .into_iter()
        .map(|s| ((s.source.clone(), s.external_id.clone()), s))
        .collect();
    let mut touched: Vec<(String, String)> = Vec::new();
    let mut erased: Vec<SubjectRow> = Vec::new();
    let mut touched_consents: Vec<(String, String, String)> = Vec::new();
    let mut ledger = Vec::new();
    let mut changes = Vec::new();
    let mut jobs = Vec::new();
    let mut queued: HashSet<(String, String)> = HashSet::new();
    let mut outcomes = Vec::with_capacity(items.len());

    for item in items {
        // The first occurrence of a message id in the batch takes it.
        if !fresh.remove(&(item.source.clone(), item.message_id.clone())) {
            outcomes.push(IngestOutcome::Duplicate);
            continue;
        }
        let event = &item.event;
        let external_id = event.external_id().unwrap_or_default().to_string();
        let key = (item.source.clone(), external_id.clone());
        let occurred = event.occurred_at.timestamp_millis();
        let now = item.received_at;
        let kind = event.event_type;

        if let Some(s) = subjects.get_mut(&key) {
            if occurred < s.last_occurred_at && kind != EventType::ConsentUpdated {
                outcomes.push(IngestOutcome::Stale {
                    subject_id: s.id.clone(),
                });
                continue;
            }
            match kind {
                // A deleted profile is erased: see `detach` below.
                EventType::ProfileDeleted => {
                    s.deleted_at = Some(now);
                    s.erase_requested_at = Some(now);
                }
                EventType::ProfileUpserted => {
                    merge_profile(&mut s.profile, &event.subject);
                    s.deleted_at = None;
                }
                EventType::ConsentUpdated => {}
            }
            if kind != EventType::ProfileDeleted {
                add_brands(&mut s.profile, &event.brands);
            }
            s.version += 1;
            s.last_occurred_at = s.last_occurred_at.max(occurred);
            s.updated_at = now;
        } else {
            if kind == EventType::ProfileDeleted {
                outcomes.push(IngestOutcome::Unknown);
                continue;
            }
            let mut profile = Map::new();
            profile.insert("externalId".into(), external_id.clone().into());
            if kind == EventType::ProfileUpserted {
                merge_profile(&mut profile, &event.subject);
            }
            add_brands(&mut profile, &event.brands);
            subjects.insert(
                key.clone(),
                SubjectRow {
                    id: uuid::Uuid::now_v7().to_string(),
                    source: item.source.clone(),
                    external_id: external_id.clone(),
                    profile,
                    version: 1,
                    last_occurred_at: occurred,
                    deleted_at: None,
                    erase_requested_at: None,
                    created_at: now,
                    updated_at: now,
                },
            );
        }
        let subject_id = subjects[&key].id.clone();
        if kind == EventType::ProfileDeleted {
            // Detach the source's id: a later event for it makes a new subject.
            if let Some(mut row) = subjects.remove(&key) {
                row.external_id = format!("erased:{}", row.id);
                erased.push(row);
            }
        }
        if !touched.contains(&key) {
            touched.push(key);
        }

        let mut attributes: Vec<String> = match kind {
            EventType::ProfileUpserted => event.subject.keys().cloned().collect(),
            _ => Vec::new(),
        };
        if kind != EventType::ProfileDeleted {
            let global = event.consent.iter().map(|(p, st)| ("", p, st));
            let branded = event
                .brand_consent
                .iter()
                .flat_map(|(b, m)| m.iter().map(move |(p, st)| (b.as_str(), p, st)));
            for (brand, purpose, state) in global.chain(branded) {
                let ckey = (subject_id.clone(), purpose.clone(), brand.to_string());
                let current = consents.get(&ckey);
                if let Some(c) = current
                    && (c.state == state.as_str() || c.occurred_at > occurred)
                {
                    continue;
                }
                ledger.push(LedgerWrite {
                    subject_id: subject_id.clone(),
                    purpose: purpose.clone(),
                    brand: brand.to_string(),
                    previous_state: current.map(|c| c.state.clone()),
                    new_state: state.as_str().into(),
                    source: item.source.clone(),
                    evidence: event.evidence.as_ref().map(|e| e.to_string()),
                    occurred_at: occurred,
                    recorded_at: now,
                });
                let version = current.map(|c| c.version + 1).unwrap_or(1);
                consents.insert(
                    ckey.clone(),
                    ConsentRow {
                        state: state.as_str().into(),
                        occurred_at: occurred,
                        version,
                        source: item.source.clone(),
                    },
                );
                if !touched_consents.contains(&ckey) {
                    touched_consents.push(ckey);
                }
                attributes.push(if brand.is_empty() {
                    format!("consent.{purpose}")
                } else {
                    format!("consent.{brand}.{purpose}")
                });
            }
        }
        changes.push(ChangeWrite {
            subject_id: subject_id.clone(),
            source: &item.source,
            kind: match kind {
                EventType::ProfileUpserted => "profile_upserted",
                EventType::ProfileDeleted => "profile_deleted",
                EventType::ConsentUpdated => "consent_updated",
            },
            message_id: &item.message_id,
            attributes: serde_json::to_string(&attributes)?,
            occurred_at: occurred,
            received_at: now,
        });
        for destination in &item.destinations {
            if queued.insert((destination.clone(), subject_id.clone())) {
                jobs.push(JobWrite {
                    id: uuid::Uuid::now_v7().to_string(),
                    destination,
                    subject_id: subject_id.clone(),
                    now,
                    traceparent: item.traceparent.as_deref(),
                });
            }
        }
        outcomes.push(IngestOutcome::Applied {
            subject_id,
            jobs: item.destinations.len() as u64,
        });
    }

    let subject_rows: Vec<SubjectWrite> = touched
        .iter()
        .filter_map(|k| subjects.get(k))
        .chain(erased.iter())
        .map(|s| {
            let profile = Value::Object(s.profile.clone());
            let (user_name, primary_email) = indexed_keys(&profile);
            SubjectWrite {
                id: &s.id,
                source: &s.source,
                external_id: &s.external_id,
                user_name,
                primary_email,
                profile: profile.to_string(),
                version: s.version,
                last_occurred_at: s.last_occurred_at,
                deleted_at: s.deleted_at,
                erase_requested_at: s.erase_requested_at,
                created_at: s.created_at,
                updated_at: s.updated_at,
            }
        })
        .collect();
    let consent_rows: Vec<ConsentWrite> = touched_consents
        .iter()
        .filter_map(|k| consents.get(k).map(|c| (k, c)))
        .map(|((subject_id, purpose, brand), c)| ConsentWrite {
            subject_id,
            purpose,
            brand,
            state: &c.state,
            source: &c.source,
            version: c.version,
            occurred_at: c.occurred_at,
        })
        .collect();
    let writes = BatchWrites {
        subjects: array(&subject_rows)?,
        consents: array(&consent_rows)?,
        ledger: array(&ledger)?,
        changes: array(&changes)?,
        jobs: array(&jobs)?,
        erased: erased.iter().map(|r| r.id.clone()).collect(),
    };
    Ok((outcomes, writes))
}

/// The batch statements, built once per backend from its way of turning a
/// JSON array parameter into rows (`from_json(columns)` gives a row source
/// whose columns carry those names).
#[derive(Debug)]
pub(crate) struct BatchSql {
    pub insert_messages: String,
    pub load_subjects: String,
    pub load_consents: String,
    pub upsert_subjects: String,
    pub upsert_consents: String,
    pub insert_ledger: String,
    pub insert_changes: String,
    pub insert_jobs: String,
}

const T: &str = "text";
const I: &str = "bigint";

impl BatchSql {
    pub fn new(dialect: Dialect) -> Self {
        let from_json = |columns: &[(&str, &str)]| dialect.json_rows(1, columns);
        // Rows are locked in id order so concurrent batches cannot deadlock on them.
        let lock = dialect.lock_for_update("sub");
        let messages = from_json(&[("s", T), ("m", T), ("t", I)]);
        let keys = from_json(&[("s", T), ("e", T)]);
        let ids = from_json(&[("id", T)]);
        let subjects = from_json(&[
            ("id", T),
            ("source", T),
            ("external_id", T),
            ("user_name", T),
            ("primary_email", T),
            ("profile", T),
            ("version", I),
            ("last_occurred_at", I),
            ("deleted_at", I),
            ("erase_requested_at", I),
            ("created_at", I),
            ("updated_at", I),
        ]);
        let consents = from_json(&[
            ("subject_id", T),
            ("purpose", T),
            ("brand", T),
            ("state", T),
            ("source", T),
            ("version", I),
            ("occurred_at", I),
        ]);
        let ledger = from_json(&[
            ("subject_id", T),
            ("purpose", T),
            ("brand", T),
            ("previous_state", T),
            ("new_state", T),
            ("source", T),
            ("evidence", T),
            ("occurred_at", I),
            ("recorded_at", I),
        ]);
        let changes = from_json(&[
            ("subject_id", T),
            ("source", T),
            ("kind", T),
            ("message_id", T),
            ("attributes", T),
            ("occurred_at", I),
            ("received_at", I),
        ]);
        let jobs = from_json(&[
            ("id", T),
            ("destination", T),
            ("subject_id", T),
            ("now", I),
            ("traceparent", T),
        ]);
        Self {
            insert_messages: format!(
                "INSERT INTO inbound_messages (source, message_id, received_at) \
                 SELECT s, m, t FROM ({messages}) AS x WHERE true \
                 ON CONFLICT DO NOTHING RETURNING source, message_id"
            ),
            load_subjects: format!(
                "SELECT sub.id, sub.source, sub.external_id, sub.profile, sub.version, sub.last_occurred_at, \
                 sub.deleted_at, sub.created_at FROM ({keys}) AS k \
                 JOIN subjects sub ON sub.source = k.s AND sub.external_id = k.e ORDER BY sub.id{lock}"
            ),
            load_consents: format!(
                "SELECT c.subject_id, c.purpose, c.brand, c.state, c.occurred_at, c.version, c.source \
                 FROM ({ids}) AS k JOIN consents c ON c.subject_id = k.id"
            ),
            upsert_subjects: format!(
                "INSERT INTO subjects (id, source, external_id, user_name, primary_email, profile, version, \
                 last_occurred_at, deleted_at, erase_requested_at, created_at, updated_at) \
                 SELECT id, source, external_id, user_name, primary_email, profile, version, last_occurred_at, \
                 deleted_at, erase_requested_at, created_at, updated_at FROM ({subjects}) AS x WHERE true \
                 ON CONFLICT (id) DO UPDATE SET user_name = excluded.user_name, \
                 external_id = excluded.external_id, erase_requested_at = excluded.erase_requested_at, \
                 primary_email = excluded.primary_email, profile = excluded.profile, version = excluded.version, \
                 last_occurred_at = excluded.last_occurred_at, deleted_at = excluded.deleted_at, \
                 updated_at = excluded.updated_at"
            ),
            upsert_consents: format!(
                "INSERT INTO consents (subject_id, purpose, brand, state, source, version, occurred_at) \
                 SELECT subject_id, purpose, brand, state, source, version, occurred_at FROM ({consents}) AS x \
                 WHERE true ON CONFLICT (subject_id, purpose, brand) DO UPDATE SET state = excluded.state, \
                 source = excluded.source, version = excluded.version, occurred_at = excluded.occurred_at"
            ),
            insert_ledger: format!(
                "INSERT INTO consent_ledger (subject_id, purpose, brand, previous_state, new_state, source, \
                 evidence, occurred_at, recorded_at) SELECT subject_id, purpose, brand, previous_state, new_state, \
                 source, evidence, occurred_at, recorded_at FROM ({ledger}) AS x"
            ),
            insert_changes: format!(
                "INSERT INTO changes (subject_id, source, kind, message_id, attributes, occurred_at, received_at) \
                 SELECT subject_id, source, kind, message_id, attributes, occurred_at, received_at FROM ({changes}) AS x"
            ),
            // A merge locks the pending row until commit, and the job is
            // due by the database's clock: see `jobs::insert_job`.
            insert_jobs: format!(
                "INSERT INTO delivery_jobs (id, destination, subject_id, reason, status, attempt, not_before, \
                 locked_until, first_enqueued_at, traceparent) SELECT id, destination, subject_id, 'change', \
                 'pending', 0, {clock}, NULL, now, traceparent FROM ({jobs}) AS x WHERE true \
                 ON CONFLICT (destination, subject_id) WHERE status = 'pending' \
                 DO UPDATE SET reason = delivery_jobs.reason",
                clock = dialect.now_ms()
            ),
        }
    }
}
