//! What `/Users` and `/Groups` handle alike: list and search, read with
//! `If-None-Match`, the optimistic write loop, delete with `If-Match`, and
//! how a refused write becomes a SCIM error. Each resource file implements
//! [`ScimResource`] for its record type and keeps its router and its own
//! rules (how a body becomes a write, what counts as unchanged).

use std::future::Future;

use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use serde_json::Value;

use super::auth::ScimClient;
use super::{ScimJson, ScimResponse, base_url, check_if_match, not_modified, query_pairs, wake};
use crate::AppState;
use crate::scim_model::query::{self, ListParams};
use crate::scim_model::schema::ResourceSchema;
use crate::scim_model::{ScimError, ScimType};
use crate::store::{ScimWriteOutcome, StoreError};

/// Attempts at a read-modify-write before giving up on a busy resource.
const WRITE_ATTEMPTS: usize = 5;

/// A stored SCIM resource type, as the shared handlers see it.
///
/// The store calls return `impl Future + Send` rather than being `async fn`
/// so that the generic handlers stay `Send`, which axum requires.
pub(crate) trait ScimResource: Sized + Send + Sync + 'static {
    /// The resource type name, as error messages say it ("User").
    const NAME: &'static str;
    /// The path segment under `/scim/v2` ("Users").
    const ENDPOINT: &'static str;
    /// The schema `attributes` / `excludedAttributes` project against.
    const SCHEMA: &'static ResourceSchema;
    /// What the store writes for a create, update or delete.
    type Write: Send + Sync;

    fn id(&self) -> &str;
    fn version(&self) -> i64;
    /// The full SCIM JSON of the resource; `base` is the `/scim/v2` URL.
    fn render(&self, base: &str) -> Value;

    /// One page of the resources the list request's filter narrows to
    /// (all of them when `limit` is `None`), and how many there are.
    fn page(
        state: &AppState,
        params: &ListParams,
        offset: i64,
        limit: Option<i64>,
    ) -> impl Future<Output = Result<(Vec<Self>, i64), StoreError>> + Send;

    /// The resource with this id, if it exists.
    fn find(
        state: &AppState,
        id: &str,
    ) -> impl Future<Output = Result<Option<Self>, StoreError>> + Send;

    fn write(
        state: &AppState,
        write: &Self::Write,
    ) -> impl Future<Output = Result<ScimWriteOutcome<Self>, StoreError>> + Send;

    /// The write that deletes this resource, expecting its current version.
    fn deletion(&self, state: &AppState, client: String) -> Self::Write;
}

/// `GET /{endpoint}`.
pub(crate) async fn list<R: ScimResource>(
    State(state): State<AppState>,
    _client: ScimClient,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> Result<ScimResponse, ScimError> {
    let params = ListParams::parse(&query_pairs(q.as_deref()))?;
    list_response::<R>(&state, &headers, &params).await
}

/// `POST /{endpoint}/.search`: the query parameters as a SearchRequest body.
pub(crate) async fn search<R: ScimResource>(
    State(state): State<AppState>,
    _client: ScimClient,
    headers: HeaderMap,
    ScimJson(body): ScimJson,
) -> Result<ScimResponse, ScimError> {
    let params = search_params(&body)?;
    list_response::<R>(&state, &headers, &params).await
}

/// `POST /.search` at the root (RFC 7644 3.4.3): the query over Users and
/// Groups together, each projected by its own schema.
pub(crate) async fn root_search(
    State(state): State<AppState>,
    _client: ScimClient,
    headers: HeaderMap,
    ScimJson(body): ScimJson,
) -> Result<ScimResponse, ScimError> {
    use crate::store::{GroupNarrowing, ScimGroupRecord, ScimUserRecord, UserNarrowing};
    let params = search_params(&body)?;
    let base = base_url(&headers);
    let (users, _) = state
        .store
        .scim_list_users(&UserNarrowing::All, 0, None)
        .await?;
    let (groups, _) = state
        .store
        .scim_list_groups(&GroupNarrowing::All, 0, None, true)
        .await?;
    let all: Vec<Value> = users
        .iter()
        .map(|u| u.render(&base))
        .chain(groups.iter().map(|g| g.render(&base)))
        .collect();
    let (page, total) = query::select(&params, all);
    let resources = page
        .into_iter()
        .map(|r| {
            let schema = match r["meta"]["resourceType"].as_str() {
                Some(ScimGroupRecord::NAME) => ScimGroupRecord::SCHEMA,
                _ => ScimUserRecord::SCHEMA,
            };
            query::project(r, &params.attributes, &params.excluded, schema)
        })
        .collect();
    Ok(ScimResponse::ok(query::list_response(
        resources,
        total,
        params.start_index,
    )))
}

/// A SearchRequest (RFC 7644 3.4.3) as list parameters.
fn search_params(body: &Value) -> Result<ListParams, ScimError> {
    let Value::Object(obj) = body else {
        return Err(ScimError::bad(
            ScimType::InvalidSyntax,
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

/// A ListResponse. Filters and sorting the SQL cannot narrow are applied to
/// every record in memory; otherwise the store pages.
async fn list_response<R: ScimResource>(
    state: &AppState,
    headers: &HeaderMap,
    params: &ListParams,
) -> Result<ScimResponse, ScimError> {
    let base = base_url(headers);
    let (page, total) = if params.in_memory() {
        let (records, _) = R::page(state, params, 0, None).await?;
        query::select(params, records.iter().map(|r| r.render(&base)).collect())
    } else {
        let (records, total) =
            R::page(state, params, params.start_index - 1, Some(params.count)).await?;
        (records.iter().map(|r| r.render(&base)).collect(), total)
    };
    let resources = page
        .into_iter()
        .map(|r| query::project(r, &params.attributes, &params.excluded, R::SCHEMA))
        .collect();
    Ok(ScimResponse::ok(query::list_response(
        resources,
        total,
        params.start_index,
    )))
}

/// The resource, or 404.
async fn load<R: ScimResource>(state: &AppState, id: &str) -> Result<R, ScimError> {
    R::find(state, id).await?.ok_or_else(|| not_found(id))
}

fn not_found(id: &str) -> ScimError {
    ScimError::NotFound(format!("Resource {id} not found"))
}

/// The resource as a response, projected by the request's parameters.
fn answer<R: ScimResource>(
    status: StatusCode,
    record: &R,
    headers: &HeaderMap,
    q: Option<&str>,
) -> Result<ScimResponse, ScimError> {
    let params = ListParams::parse(&query_pairs(q))?;
    let body = query::project(
        record.render(&base_url(headers)),
        &params.attributes,
        &params.excluded,
        R::SCHEMA,
    );
    Ok(ScimResponse::new(status, Some(body)).with_etag(record.version()))
}

/// `GET /{endpoint}/{id}`; 304 when `If-None-Match` names the current version.
pub(crate) async fn read<R: ScimResource>(
    State(state): State<AppState>,
    _client: ScimClient,
    Path(id): Path<String>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> Result<ScimResponse, ScimError> {
    let record = load::<R>(&state, &id).await?;
    if not_modified(&headers, record.version()) {
        return Ok(ScimResponse::new(StatusCode::NOT_MODIFIED, None).with_etag(record.version()));
    }
    answer(StatusCode::OK, &record, &headers, q.as_deref())
}

/// 201 with `Location` for a resource just created.
pub(crate) fn created<R: ScimResource>(
    state: &AppState,
    record: &R,
    headers: &HeaderMap,
    q: Option<&str>,
) -> Result<ScimResponse, ScimError> {
    wake(state);
    let location = format!("{}/{}/{}", base_url(headers), R::ENDPOINT, record.id());
    Ok(answer(StatusCode::CREATED, record, headers, q)?.with_location(&location))
}

/// 409 for an attribute whose value another resource holds.
pub(crate) fn conflict<R: ScimResource>(attr: &str) -> ScimError {
    ScimError::Conflict(format!("a {} with this {attr} already exists", R::NAME))
}

/// The error for a write the store did not do.
pub(crate) fn refused<R: ScimResource>(outcome: ScimWriteOutcome<R>, id: &str) -> ScimError {
    match outcome {
        ScimWriteOutcome::Conflict(attr) => conflict::<R>(attr),
        ScimWriteOutcome::NotFound => not_found(id),
        _ => ScimError::PreconditionFailed,
    }
}

/// Read, check `If-Match`, ask `next_write` for the write (`None`: nothing
/// changed, answer the record as it is), write it; a concurrent write in
/// between makes it start over.
pub(crate) async fn update<R: ScimResource>(
    state: &AppState,
    id: &str,
    headers: &HeaderMap,
    q: Option<&str>,
    next_write: impl Fn(&R) -> Result<Option<R::Write>, ScimError>,
) -> Result<ScimResponse, ScimError> {
    for _ in 0..WRITE_ATTEMPTS {
        let record = load::<R>(state, id).await?;
        check_if_match(headers, record.version())?;
        let Some(write) = next_write(&record)? else {
            return answer(StatusCode::OK, &record, headers, q);
        };
        match R::write(state, &write).await? {
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

/// `DELETE /{endpoint}/{id}`, honouring `If-Match`.
pub(crate) async fn remove<R: ScimResource>(
    State(state): State<AppState>,
    ScimClient(client): ScimClient,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<ScimResponse, ScimError> {
    let record = load::<R>(&state, &id).await?;
    check_if_match(&headers, record.version())?;
    match R::write(&state, &record.deletion(&state, client)).await? {
        ScimWriteOutcome::Done(_) => {
            wake(&state);
            Ok(ScimResponse::new(StatusCode::NO_CONTENT, None))
        }
        other => Err(refused(other, &id)),
    }
}
