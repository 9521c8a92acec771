//! `/scim/v2/Users`: list (filter, paging, projection), create, read,
//! replace (PUT), PATCH, delete. Every write commits the subject, a change
//! and the delivery jobs together before the answer. The handlers shared
//! with `/Groups` are in `resource.rs`.

use axum::extract::{Path, RawQuery, State};
use axum::http::HeaderMap;
use serde_json::Value;

use super::ScimJson;
use super::ScimResponse;
use super::auth::ScimClient;
use super::resource::{self, ScimResource, conflict, created, list, read, remove, search};
use crate::AppState;
use crate::scim_model::query::{self, ListParams};
use crate::scim_model::schema::{ResourceSchema, USER};
use crate::scim_model::{ScimError, patch, user, validate};
use crate::store::{
    ScimConsent, ScimOp, ScimUserRecord, ScimUserWrite, ScimWriteOutcome, StoreError,
    UserNarrowing, now_ms,
};

pub fn router() -> axum::Router<AppState> {
    use axum::routing::{get, post};
    type User = ScimUserRecord;
    axum::Router::new()
        .route("/Users", get(list::<User>).post(create))
        .route("/Users/.search", post(search::<User>))
        .route(
            "/Users/{id}",
            get(read::<User>)
                .put(replace)
                .patch(modify)
                .delete(remove::<User>),
        )
}

impl ScimResource for ScimUserRecord {
    const NAME: &'static str = "User";
    const ENDPOINT: &'static str = "Users";
    const SCHEMA: &'static ResourceSchema = &USER;
    type Write = ScimUserWrite;

    fn id(&self) -> &str {
        &self.id
    }

    fn version(&self) -> i64 {
        self.version
    }

    fn render(&self, base: &str) -> Value {
        user::render(self, base)
    }

    async fn page(
        state: &AppState,
        params: &ListParams,
        offset: i64,
        limit: Option<i64>,
    ) -> Result<(Vec<Self>, i64), StoreError> {
        let narrowing = query::user_narrowing(params.filter.as_ref());
        state.store.scim_list_users(&narrowing, offset, limit).await
    }

    async fn find(state: &AppState, id: &str) -> Result<Option<Self>, StoreError> {
        let narrowing = UserNarrowing::Id(id.to_string());
        let (mut records, _) = state.store.scim_list_users(&narrowing, 0, Some(1)).await?;
        Ok(records.pop())
    }

    async fn write(
        state: &AppState,
        write: &ScimUserWrite,
    ) -> Result<ScimWriteOutcome<Self>, StoreError> {
        state.store.scim_write_user(write).await
    }

    fn deletion(&self, state: &AppState, client: String) -> ScimUserWrite {
        ScimUserWrite {
            op: ScimOp::Delete {
                expected_version: Some(self.version),
            },
            id: self.id.clone(),
            client,
            external_id: self.external_id.clone(),
            profile: Value::Null,
            attributes: Vec::new(),
            consents: Vec::new(),
            destinations: state.destinations.load().enabled_names(),
            now: now_ms(),
        }
    }
}

async fn create(
    State(state): State<AppState>,
    ScimClient(client): ScimClient,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
    ScimJson(body): ScimJson,
) -> Result<ScimResponse, ScimError> {
    let mut attrs = user::from_body(&body)?;
    validate::check(&attrs, &USER, &state.schemas)?;
    let consents = user::take_consent(&mut attrs, &state.config)?;
    let id = uuid::Uuid::now_v7().to_string();
    let mut attributes: Vec<String> = attrs.keys().cloned().collect();
    attributes.extend(consents.iter().map(consent_label));
    let write = ScimUserWrite {
        op: ScimOp::Create,
        external_id: user::external_id(&attrs, &id),
        attributes,
        consents,
        profile: Value::Object(attrs),
        id,
        client,
        destinations: state.destinations.load().enabled_names(),
        now: now_ms(),
    };
    match state.store.scim_write_user(&write).await? {
        ScimWriteOutcome::Done(record) => created(&state, &record, &headers, q.as_deref()),
        ScimWriteOutcome::Conflict(attr) => Err(conflict::<ScimUserRecord>(attr)),
        _ => Err(ScimError::Conflict(
            "the User could not be created; retry".into(),
        )),
    }
}

/// How a consent change is named in the change record (as webhooks do).
fn consent_label(c: &ScimConsent) -> String {
    if c.brand.is_empty() {
        format!("consent.{}", c.purpose)
    } else {
        format!("consent.{}.{}", c.brand, c.purpose)
    }
}

/// `resource::update` with the User rules: `compute` gives the new
/// attributes (consent in the hub extension, as `user::attributes` gives it)
/// and the changed attribute names; only consents that differ are written,
/// and nothing is written when neither profile nor consent changed.
async fn update(
    state: &AppState,
    client: String,
    id: &str,
    headers: &HeaderMap,
    q: Option<&str>,
    compute: impl Fn(
        &ScimUserRecord,
    ) -> Result<(serde_json::Map<String, Value>, Vec<String>), ScimError>,
) -> Result<ScimResponse, ScimError> {
    resource::update(state, id, headers, q, |record: &ScimUserRecord| {
        let (mut attrs, mut attributes) = compute(record)?;
        // What would be stored, after PATCH or PUT, fits the schemas.
        validate::check(&attrs, &USER, &state.schemas)?;
        let consents: Vec<ScimConsent> = user::take_consent(&mut attrs, &state.config)?
            .into_iter()
            .filter(|c| !record.consents.contains(c))
            .collect();
        let ext = crate::scim_model::schema::SYNCD_URN;
        if !attrs.contains_key(ext) && record.profile.get(ext).is_none() {
            attributes.retain(|a| a != ext);
        }
        if consents.is_empty() && Value::Object(attrs.clone()) == record.profile {
            return Ok(None);
        }
        attributes.extend(consents.iter().map(consent_label));
        Ok(Some(ScimUserWrite {
            op: ScimOp::Update {
                expected_version: record.version,
            },
            id: id.to_string(),
            client: client.clone(),
            external_id: user::external_id(&attrs, id),
            profile: Value::Object(attrs),
            attributes,
            consents,
            destinations: state.destinations.load().enabled_names(),
            now: now_ms(),
        }))
    })
    .await
}

async fn replace(
    State(state): State<AppState>,
    ScimClient(client): ScimClient,
    Path(id): Path<String>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
    ScimJson(body): ScimJson,
) -> Result<ScimResponse, ScimError> {
    let new = user::from_body(&body)?;
    update(&state, client, &id, &headers, q.as_deref(), |record| {
        let mut attrs = new.clone();
        // readOnly attributes keep their stored values.
        if let Some(groups) = record.profile.get("groups") {
            attrs.insert("groups".into(), groups.clone());
        }
        let old = user::attributes(record);
        let mut changed: Vec<String> = attrs
            .keys()
            .filter(|k| old.get(*k) != attrs.get(*k))
            .cloned()
            .collect();
        changed.extend(old.keys().filter(|k| !attrs.contains_key(*k)).cloned());
        Ok((attrs, changed))
    })
    .await
}

async fn modify(
    State(state): State<AppState>,
    ScimClient(client): ScimClient,
    Path(id): Path<String>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
    ScimJson(body): ScimJson,
) -> Result<ScimResponse, ScimError> {
    let ops = patch::parse_request(&body)?;
    update(&state, client, &id, &headers, q.as_deref(), |record| {
        let mut attrs = user::attributes(record);
        let touched = patch::apply(&mut attrs, &ops, &USER)?;
        user::withdraw_removed(&mut attrs, record);
        user::normalize(&mut attrs)?;
        Ok((attrs, touched))
    })
    .await
}
