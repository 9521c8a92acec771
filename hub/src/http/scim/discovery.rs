//! Discovery (RFC 7644 section 4): `/ServiceProviderConfig`, `/ResourceTypes`
//! and `/Schemas`, built from static descriptions.

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use serde_json::{Value, json};

use super::auth::ScimClient;
use super::{ScimResponse, base_url};
use crate::AppState;
use crate::scim_model::ScimError;
use crate::scim_model::query::{MAX_COUNT, list_response};
use crate::scim_model::schema::{ENTERPRISE_URN, GROUP_URN, Published, SYNCD_URN, USER_URN};

pub fn router() -> axum::Router<AppState> {
    use axum::routing::get;
    axum::Router::new()
        .route("/ServiceProviderConfig", get(service_provider_config))
        .route("/ResourceTypes", get(resource_types))
        .route("/ResourceTypes/{id}", get(resource_type))
        .route("/Schemas", get(schemas))
        .route("/Schemas/{id}", get(schema))
}

async fn service_provider_config(_client: ScimClient, headers: HeaderMap) -> ScimResponse {
    ScimResponse::ok(json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"],
        "patch": {"supported": true},
        "bulk": {
            "supported": true,
            "maxOperations": super::bulk::MAX_OPERATIONS,
            "maxPayloadSize": super::bulk::MAX_PAYLOAD,
        },
        "filter": {"supported": true, "maxResults": MAX_COUNT},
        "changePassword": {"supported": false},
        "sort": {"supported": true},
        "etag": {"supported": true},
        "authenticationSchemes": [{
            "type": "oauthbearertoken",
            "name": "Bearer token",
            "description": "A static bearer token per identity provider (hub token new NAME)",
            "primary": true,
        }],
        "meta": {"resourceType": "ServiceProviderConfig", "location": format!("{}/ServiceProviderConfig", base_url(&headers))},
    }))
}

fn resource_type_list(base: &str) -> Vec<Value> {
    vec![
        json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ResourceType"],
            "id": "User", "name": "User", "endpoint": "/Users", "description": "A customer (subject)",
            "schema": USER_URN,
            "schemaExtensions": [
                {"schema": ENTERPRISE_URN, "required": false},
                {"schema": SYNCD_URN, "required": false},
            ],
            "meta": {"resourceType": "ResourceType", "location": format!("{base}/ResourceTypes/User")},
        }),
        json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ResourceType"],
            "id": "Group", "name": "Group", "endpoint": "/Groups", "description": "A group of customers",
            "schema": GROUP_URN,
            "meta": {"resourceType": "ResourceType", "location": format!("{base}/ResourceTypes/Group")},
        }),
    ]
}

async fn resource_types(_client: ScimClient, headers: HeaderMap) -> ScimResponse {
    whole_list(resource_type_list(&base_url(&headers)))
}

/// A ListResponse holding all of `list`.
fn whole_list(list: Vec<Value>) -> ScimResponse {
    let n = list.len() as i64;
    ScimResponse::ok(list_response(list, n, 1))
}

async fn resource_type(
    _client: ScimClient,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<ScimResponse, ScimError> {
    by_id(
        resource_type_list(&base_url(&headers)),
        &id,
        "resource type",
    )
}

/// The entry of a discovery list whose `id` matches, case-insensitively.
fn by_id(list: Vec<Value>, id: &str, what: &str) -> Result<ScimResponse, ScimError> {
    list.into_iter()
        .find(|r| r["id"].as_str().is_some_and(|i| i.eq_ignore_ascii_case(id)))
        .map(ScimResponse::ok)
        .ok_or_else(|| ScimError::NotFound(format!("no {what} {id}")))
}

fn schema_list(published: &Published, base: &str) -> Vec<Value> {
    published
        .all()
        .iter()
        .map(|def| {
            let mut def = def.clone();
            let id = def["id"].as_str().unwrap_or_default().to_string();
            def["meta"] =
                json!({"resourceType": "Schema", "location": format!("{base}/Schemas/{id}")});
            def
        })
        .collect()
}

async fn schemas(
    State(state): State<AppState>,
    _client: ScimClient,
    headers: HeaderMap,
) -> ScimResponse {
    whole_list(schema_list(&state.schemas, &base_url(&headers)))
}

async fn schema(
    State(state): State<AppState>,
    _client: ScimClient,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<ScimResponse, ScimError> {
    by_id(
        schema_list(&state.schemas, &base_url(&headers)),
        &id,
        "schema",
    )
}
