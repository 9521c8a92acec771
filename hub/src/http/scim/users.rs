//! `/scim/v2/Users`: list (filter, paging, projection), create, read,
//! replace (PUT), PATCH, delete. Every write commits the subject, a change
//! and the delivery jobs together before the answer.

use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use serde_json::Value;

use super::auth::ScimClient;
use super::{ScimResponse, base_url, check_if_match, json_body, not_modified, query_pairs, wake};
use crate::AppState;
use crate::scim_model::query::{self, ListParams};
use crate::scim_model::schema::USER;
use crate::scim_model::{ScimError, patch, user};
use crate::store::{
    ScimConsent, ScimOp, ScimUserRecord, ScimUserWrite, ScimWriteOutcome, UserNarrowing, now_ms,
};

/// Attempts at a read-modify-write before giving up on a busy resource.
const WRITE_ATTEMPTS: usize = 5;

pub fn router() -> axum::Router<AppState> {
    use axum::routing::{get, post};
    axum::Router::new()
        .route("/Users", get(list).post(create))
        .route("/Users/.search", post(search))
        .route(
            "/Users/{id}",
            get(read).put(replace).patch(modify).delete(remove),
        )
}

async fn list(
    State(state): State<AppState>,
    _client: ScimClient,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> Result<ScimResponse, ScimError> {
    let params = ListParams::parse(&query_pairs(q.as_deref()))?;
    list_users(&state, &headers, &params).await
}

/// `POST /Users/.search`: the query parameters as a SearchRequest body.
async fn search(
    State(state): State<AppState>,
    _client: ScimClient,
    headers: HeaderMap,
    body: Body,
) -> Result<ScimResponse, ScimError> {
    let params = search_params(&json_body(body).await?)?;
    list_users(&state, &headers, &params).await
}

/// A SearchRequest (RFC 7644 3.4.3) as list parameters.
pub fn search_params(body: &Value) -> Result<ListParams, ScimError> {
    let Value::Object(obj) = body else {
        return Err(ScimError::bad(
            crate::scim_model::ScimType::InvalidSyntax,
            "a SearchRequest must be an object",
        ));
    };
    let mut pairs = Vec::new();
    for (k, v) in obj {
        let text = match v {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            Value::Array(items) => items
                .iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join(","),
            _ => continue,
        };
        pairs.push((k.clone(), text));
    }
    ListParams::parse(&pairs)
}

pub(crate) async fn list_users(
    state: &AppState,
    headers: &HeaderMap,
    params: &ListParams,
) -> Result<ScimResponse, ScimError> {
    let base = base_url(headers);
    let narrowing = query::user_narrowing(params.filter.as_ref());
    let (page, total) = if params.in_memory() {
        let (records, _) = state.store.scim_list_users(&narrowing, 0, None).await?;
        query::select(
            params,
            records.iter().map(|r| user::render(r, &base)).collect(),
        )
    } else {
        let (records, total) = state
            .store
            .scim_list_users(&narrowing, params.start_index - 1, Some(params.count))
            .await?;
        (
            records.iter().map(|r| user::render(r, &base)).collect(),
            total,
        )
    };
    let resources = page
        .into_iter()
        .map(|r| query::project(r, &params.attributes, &params.excluded, &USER))
        .collect();
    Ok(ScimResponse::ok(query::list_response(
        resources,
        total,
        params.start_index,
    )))
}

async fn load(state: &AppState, id: &str) -> Result<ScimUserRecord, ScimError> {
    let (mut records, _) = state
        .store
        .scim_list_users(&UserNarrowing::Id(id.to_string()), 0, Some(1))
        .await?;
    records
        .pop()
        .ok_or_else(|| ScimError::NotFound(format!("Resource {id} not found")))
}

/// The resource as a response, projected by the request's parameters.
fn answer(
    status: StatusCode,
    record: &ScimUserRecord,
    headers: &HeaderMap,
    q: Option<&str>,
) -> Result<ScimResponse, ScimError> {
    let params = ListParams::parse(&query_pairs(q))?;
    let body = query::project(
        user::render(record, &base_url(headers)),
        &params.attributes,
        &params.excluded,
        &USER,
    );
    Ok(ScimResponse::new(status, Some(body)).with_etag(record.version))
}

async fn read(
    State(state): State<AppState>,
    _client: ScimClient,
    Path(id): Path<String>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> Result<ScimResponse, ScimError> {
    let record = load(&state, &id).await?;
    if not_modified(&headers, record.version) {
        return Ok(ScimResponse::new(StatusCode::NOT_MODIFIED, None).with_etag(record.version));
    }
    answer(StatusCode::OK, &record, &headers, q.as_deref())
}

fn conflict(attr: &str) -> ScimError {
    ScimError::Conflict(format!("a User with this {attr} already exists"))
}

async fn create(
    State(state): State<AppState>,
    ScimClient(client): ScimClient,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
    body: Body,
) -> Result<ScimResponse, ScimError> {
    let mut attrs = user::from_body(&json_body(body).await?)?;
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
        ScimWriteOutcome::Done(record) => {
            wake(&state);
            let location = format!("{}/Users/{}", base_url(&headers), record.id);
            Ok(
                answer(StatusCode::CREATED, &record, &headers, q.as_deref())?
                    .with_location(&location),
            )
        }
        ScimWriteOutcome::Conflict(attr) => Err(conflict(attr)),
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

/// Read, check `If-Match`, compute the new attributes (consent in the hub
/// extension, as `user::attributes` gives it), write if anything changed; a
/// concurrent write in between makes it start over.
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
    for _ in 0..WRITE_ATTEMPTS {
        let record = load(state, id).await?;
        check_if_match(headers, record.version)?;
        let (mut attrs, mut attributes) = compute(&record)?;
        let consents: Vec<ScimConsent> = user::take_consent(&mut attrs, &state.config)?
            .into_iter()
            .filter(|c| !record.consents.contains(c))
            .collect();
        let ext = crate::scim_model::schema::SYNCD_URN;
        if !attrs.contains_key(ext) && record.profile.get(ext).is_none() {
            attributes.retain(|a| a != ext);
        }
        if consents.is_empty() && Value::Object(attrs.clone()) == record.profile {
            return answer(StatusCode::OK, &record, headers, q);
        }
        attributes.extend(consents.iter().map(consent_label));
        let write = ScimUserWrite {
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
        };
        match state.store.scim_write_user(&write).await? {
            ScimWriteOutcome::Done(record) => {
                wake(state);
                return answer(StatusCode::OK, &record, headers, q);
            }
            ScimWriteOutcome::Conflict(attr) => return Err(conflict(attr)),
            ScimWriteOutcome::NotFound => {
                return Err(ScimError::NotFound(format!("Resource {id} not found")));
            }
            ScimWriteOutcome::VersionMismatch | ScimWriteOutcome::UnknownMember(_) => continue,
        }
    }
    Err(ScimError::PreconditionFailed)
}

async fn replace(
    State(state): State<AppState>,
    ScimClient(client): ScimClient,
    Path(id): Path<String>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
    body: Body,
) -> Result<ScimResponse, ScimError> {
    let body = json_body(body).await?;
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
    body: Body,
) -> Result<ScimResponse, ScimError> {
    let ops = patch::parse_request(&json_body(body).await?)?;
    update(&state, client, &id, &headers, q.as_deref(), |record| {
        let mut attrs = user::attributes(record);
        let touched = patch::apply(&mut attrs, &ops, &USER)?;
        user::normalize(&mut attrs)?;
        Ok((attrs, touched))
    })
    .await
}

async fn remove(
    State(state): State<AppState>,
    ScimClient(client): ScimClient,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<ScimResponse, ScimError> {
    let record = load(&state, &id).await?;
    check_if_match(&headers, record.version)?;
    let write = ScimUserWrite {
        op: ScimOp::Delete {
            expected_version: Some(record.version),
        },
        id: id.clone(),
        client,
        external_id: record.external_id.clone(),
        profile: Value::Null,
        attributes: Vec::new(),
        consents: Vec::new(),
        destinations: state.destinations.load().enabled_names(),
        now: now_ms(),
    };
    match state.store.scim_write_user(&write).await? {
        ScimWriteOutcome::Done(_) => {
            wake(&state);
            Ok(ScimResponse::new(StatusCode::NO_CONTENT, None))
        }
        ScimWriteOutcome::NotFound => Err(ScimError::NotFound(format!("Resource {id} not found"))),
        _ => Err(ScimError::PreconditionFailed),
    }
}
