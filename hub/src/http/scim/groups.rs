//! `/scim/v2/Groups`: CRUD and PATCH of groups; membership changes rewrite
//! each affected member's `groups` attribute and queue it for every
//! destination, in the same transaction.

use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use serde_json::Value;

use super::auth::ScimClient;
use super::{ScimResponse, base_url, check_if_match, json_body, not_modified, query_pairs, wake};
use crate::AppState;
use crate::scim_model::group::{self, GroupInput};
use crate::scim_model::query::{self, ListParams};
use crate::scim_model::schema::GROUP;
use crate::scim_model::{ScimError, patch};
use crate::store::{
    GroupNarrowing, ScimGroupRecord, ScimGroupWrite, ScimOp, ScimWriteOutcome, now_ms,
};

const WRITE_ATTEMPTS: usize = 5;

pub fn router() -> axum::Router<AppState> {
    use axum::routing::{get, post};
    axum::Router::new()
        .route("/Groups", get(list).post(create))
        .route("/Groups/.search", post(search))
        .route(
            "/Groups/{id}",
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
    list_groups(&state, &headers, &params).await
}

async fn search(
    State(state): State<AppState>,
    _client: ScimClient,
    headers: HeaderMap,
    body: Body,
) -> Result<ScimResponse, ScimError> {
    let params = super::users::search_params(&json_body(body).await?)?;
    list_groups(&state, &headers, &params).await
}

pub(crate) async fn list_groups(
    state: &AppState,
    headers: &HeaderMap,
    params: &ListParams,
) -> Result<ScimResponse, ScimError> {
    let base = base_url(headers);
    let narrowing = query::group_narrowing(params.filter.as_ref());
    // Entra asks excludedAttributes=members and must not get them.
    let with_members = !params.excludes("members") || params.in_memory();
    let (page, total) = if params.in_memory() {
        let (records, _) = state
            .store
            .scim_list_groups(&narrowing, 0, None, with_members)
            .await?;
        query::select(
            params,
            records.iter().map(|r| group::render(r, &base)).collect(),
        )
    } else {
        let (records, total) = state
            .store
            .scim_list_groups(
                &narrowing,
                params.start_index - 1,
                Some(params.count),
                with_members,
            )
            .await?;
        (
            records.iter().map(|r| group::render(r, &base)).collect(),
            total,
        )
    };
    let resources = page
        .into_iter()
        .map(|r| query::project(r, &params.attributes, &params.excluded, &GROUP))
        .collect();
    Ok(ScimResponse::ok(query::list_response(
        resources,
        total,
        params.start_index,
    )))
}

async fn load(state: &AppState, id: &str) -> Result<ScimGroupRecord, ScimError> {
    let (mut records, _) = state
        .store
        .scim_list_groups(&GroupNarrowing::Id(id.to_string()), 0, Some(1), true)
        .await?;
    records
        .pop()
        .ok_or_else(|| ScimError::NotFound(format!("Resource {id} not found")))
}

fn answer(
    status: StatusCode,
    record: &ScimGroupRecord,
    headers: &HeaderMap,
    q: Option<&str>,
) -> Result<ScimResponse, ScimError> {
    let params = ListParams::parse(&query_pairs(q))?;
    let body = query::project(
        group::render(record, &base_url(headers)),
        &params.attributes,
        &params.excluded,
        &GROUP,
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

fn refused<T>(outcome: ScimWriteOutcome<T>, id: &str) -> ScimError {
    match outcome {
        ScimWriteOutcome::Conflict(attr) => {
            ScimError::Conflict(format!("a Group with this {attr} already exists"))
        }
        ScimWriteOutcome::UnknownMember(m) => {
            ScimError::invalid_value(format!("member {m} is not a known User"))
        }
        ScimWriteOutcome::NotFound => ScimError::NotFound(format!("Resource {id} not found")),
        _ => ScimError::PreconditionFailed,
    }
}

async fn create(
    State(state): State<AppState>,
    ScimClient(client): ScimClient,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
    body: Body,
) -> Result<ScimResponse, ScimError> {
    let input = group::from_body(&json_body(body).await?)?;
    let id = uuid::Uuid::now_v7().to_string();
    let write = ScimGroupWrite {
        op: ScimOp::Create,
        id: id.clone(),
        client,
        external_id: input.external_id,
        display_name: input.display_name,
        members: input.members,
        destinations: state.destinations.load().enabled_names(),
        now: now_ms(),
    };
    match state.store.scim_write_group(&write).await? {
        ScimWriteOutcome::Done(record) => {
            wake(&state);
            let location = format!("{}/Groups/{}", base_url(&headers), record.id);
            Ok(
                answer(StatusCode::CREATED, &record, &headers, q.as_deref())?
                    .with_location(&location),
            )
        }
        other => Err(refused(other, &id)),
    }
}

async fn update(
    state: &AppState,
    client: String,
    id: &str,
    headers: &HeaderMap,
    q: Option<&str>,
    compute: impl Fn(&ScimGroupRecord) -> Result<GroupInput, ScimError>,
) -> Result<ScimResponse, ScimError> {
    for _ in 0..WRITE_ATTEMPTS {
        let record = load(state, id).await?;
        check_if_match(headers, record.version)?;
        let input = compute(&record)?;
        let mut old: Vec<&String> = record.members.iter().map(|m| &m.0).collect();
        let mut new: Vec<&String> = input.members.iter().collect();
        old.sort();
        new.sort();
        new.dedup();
        if input.display_name == record.display_name
            && input.external_id == record.external_id
            && old == new
        {
            return answer(StatusCode::OK, &record, headers, q);
        }
        let write = ScimGroupWrite {
            op: ScimOp::Update {
                expected_version: record.version,
            },
            id: id.to_string(),
            client: client.clone(),
            external_id: input.external_id,
            display_name: input.display_name,
            members: input.members,
            destinations: state.destinations.load().enabled_names(),
            now: now_ms(),
        };
        match state.store.scim_write_group(&write).await? {
            ScimWriteOutcome::Done(record) => {
                wake(state);
                return answer(StatusCode::OK, &record, headers, q);
            }
            ScimWriteOutcome::VersionMismatch => continue,
            other => return Err(refused(other, id)),
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
    group::from_body(&body)?;
    update(&state, client, &id, &headers, q.as_deref(), |_| {
        group::from_body(&body)
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
    let base = base_url(&headers);
    update(&state, client, &id, &headers, q.as_deref(), |record| {
        let mut attrs = group::attributes(record, &base);
        patch::apply(&mut attrs, &ops, &GROUP)?;
        group::from_body(&Value::Object(attrs))
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
    let write = ScimGroupWrite {
        op: ScimOp::Delete {
            expected_version: Some(record.version),
        },
        id: id.clone(),
        client,
        external_id: record.external_id.clone(),
        display_name: record.display_name.clone(),
        members: Vec::new(),
        destinations: state.destinations.load().enabled_names(),
        now: now_ms(),
    };
    match state.store.scim_write_group(&write).await? {
        ScimWriteOutcome::Done(_) => {
            wake(&state);
            Ok(ScimResponse::new(StatusCode::NO_CONTENT, None))
        }
        other => Err(refused(other, &id)),
    }
}
