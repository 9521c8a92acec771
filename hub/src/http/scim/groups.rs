//! `/scim/v2/Groups`: CRUD and PATCH of groups; membership changes rewrite
//! each affected member's `groups` attribute and queue it for every
//! destination, in the same transaction. The handlers shared with `/Users`
//! are in `resource.rs`.

use axum::extract::{Path, RawQuery, State};
use axum::http::HeaderMap;
use serde_json::Value;

use super::auth::ScimClient;
use super::resource::{self, ScimResource, created, list, read, refused, remove, search};
use super::{ScimJson, ScimResponse, base_url};
use crate::AppState;
use crate::scim_model::group::{self, GroupInput};
use crate::scim_model::query::{self, ListParams};
use crate::scim_model::schema::{GROUP, ResourceSchema};
use crate::scim_model::{ScimError, patch, validate};
use crate::store::{
    GroupNarrowing, ScimGroupRecord, ScimGroupWrite, ScimOp, ScimWriteOutcome, StoreError, now_ms,
};

pub fn router() -> axum::Router<AppState> {
    use axum::routing::{get, post};
    type Group = ScimGroupRecord;
    axum::Router::new()
        .route("/Groups", get(list::<Group>).post(create))
        .route("/Groups/.search", post(search::<Group>))
        .route(
            "/Groups/{id}",
            get(read::<Group>)
                .put(replace)
                .patch(modify)
                .delete(remove::<Group>),
        )
}

impl ScimResource for ScimGroupRecord {
    const NAME: &'static str = "Group";
    const ENDPOINT: &'static str = "Groups";
    const SCHEMA: &'static ResourceSchema = &GROUP;
    type Write = ScimGroupWrite;

    fn id(&self) -> &str {
        &self.id
    }

    fn version(&self) -> i64 {
        self.version
    }

    fn render(&self, base: &str) -> Value {
        group::render(self, base)
    }

    async fn page(
        state: &AppState,
        params: &ListParams,
        offset: i64,
        limit: Option<i64>,
    ) -> Result<(Vec<Self>, i64), StoreError> {
        let narrowing = query::group_narrowing(params.filter.as_ref());
        // Entra asks excludedAttributes=members and must not get them.
        let with_members = !params.excludes("members") || params.in_memory();
        state
            .store
            .scim_list_groups(&narrowing, offset, limit, with_members)
            .await
    }

    async fn find(state: &AppState, id: &str) -> Result<Option<Self>, StoreError> {
        let narrowing = GroupNarrowing::Id(id.to_string());
        let (mut records, _) = state
            .store
            .scim_list_groups(&narrowing, 0, Some(1), true)
            .await?;
        Ok(records.pop())
    }

    async fn write(
        state: &AppState,
        write: &ScimGroupWrite,
    ) -> Result<ScimWriteOutcome<Self>, StoreError> {
        state.store.scim_write_group(write).await
    }

    fn deletion(&self, state: &AppState, client: String) -> ScimGroupWrite {
        ScimGroupWrite {
            op: ScimOp::Delete {
                expected_version: Some(self.version),
            },
            id: self.id.clone(),
            client,
            external_id: self.external_id.clone(),
            display_name: self.display_name.clone(),
            members: Vec::new(),
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
    let input = checked_input(&state, &body)?;
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
        ScimWriteOutcome::Done(record) => created(&state, &record, &headers, q.as_deref()),
        other => Err(refused(other, &id)),
    }
}

/// `resource::update` with the Group rules: nothing is written when the
/// name, externalId and member set are all unchanged.
async fn update(
    state: &AppState,
    client: String,
    id: &str,
    headers: &HeaderMap,
    q: Option<&str>,
    compute: impl Fn(&ScimGroupRecord) -> Result<GroupInput, ScimError>,
) -> Result<ScimResponse, ScimError> {
    resource::update(state, id, headers, q, |record: &ScimGroupRecord| {
        let input = compute(record)?;
        let mut old: Vec<&String> = record.members.iter().map(|m| &m.0).collect();
        let mut new: Vec<&String> = input.members.iter().collect();
        old.sort();
        new.sort();
        new.dedup();
        if input.display_name == record.display_name
            && input.external_id == record.external_id
            && old == new
        {
            return Ok(None);
        }
        Ok(Some(ScimGroupWrite {
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
        }))
    })
    .await
}

/// A Group body (or a group after PATCH) checked against the published
/// schema, as the store will take it.
fn checked_input(state: &AppState, body: &Value) -> Result<GroupInput, ScimError> {
    if let Value::Object(attrs) = body {
        validate::check(attrs, &GROUP, &state.schemas)?;
    }
    group::from_body(body)
}

async fn replace(
    State(state): State<AppState>,
    ScimClient(client): ScimClient,
    Path(id): Path<String>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
    ScimJson(body): ScimJson,
) -> Result<ScimResponse, ScimError> {
    checked_input(&state, &body)?;
    update(&state, client, &id, &headers, q.as_deref(), |_| {
        checked_input(&state, &body)
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
    let base = base_url(&headers);
    update(&state, client, &id, &headers, q.as_deref(), |record| {
        let mut attrs = group::attributes(record, &base);
        patch::apply(&mut attrs, &ops, &GROUP)?;
        checked_input(&state, &Value::Object(attrs))
    })
    .await
}
