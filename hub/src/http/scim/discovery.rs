//! Discovery (RFC 7644 section 4): `/ServiceProviderConfig`, `/ResourceTypes`
//! and `/Schemas`, built from static descriptions.

use axum::extract::Path;
use axum::http::HeaderMap;
use serde_json::{Value, json};

use super::auth::ScimClient;
use super::{ScimResponse, base_url};
use crate::AppState;
use crate::scim_model::ScimError;
use crate::scim_model::query::{MAX_COUNT, list_response};
use crate::scim_model::schema::{ENTERPRISE_URN, GROUP_URN, SYNCD_URN, USER_URN};

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
    let list = resource_type_list(&base_url(&headers));
    let n = list.len() as i64;
    ScimResponse::ok(list_response(list, n, 1))
}

async fn resource_type(
    _client: ScimClient,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<ScimResponse, ScimError> {
    resource_type_list(&base_url(&headers))
        .into_iter()
        .find(|r| {
            r["id"]
                .as_str()
                .is_some_and(|i| i.eq_ignore_ascii_case(&id))
        })
        .map(ScimResponse::ok)
        .ok_or_else(|| ScimError::NotFound(format!("no resource type {id}")))
}

/// One attribute definition; `flags` holds the non-default characteristics.
fn attr(name: &str, kind: &str, flags: &[&str], subs: Vec<Value>) -> Value {
    let has = |f: &str| flags.contains(&f);
    let mut a = json!({
        "name": name,
        "type": kind,
        "multiValued": has("multi"),
        "required": has("required"),
        "caseExact": has("caseExact"),
        "mutability": if has("readOnly") { "readOnly" } else if has("immutable") { "immutable" } else if has("writeOnly") { "writeOnly" } else { "readWrite" },
        "returned": if has("never") { "never" } else if has("always") { "always" } else { "default" },
        "uniqueness": if has("unique") { "server" } else { "none" },
        "description": name,
    });
    if !subs.is_empty() {
        a["subAttributes"] = Value::Array(subs);
    }
    a
}

fn s(name: &str) -> Value {
    attr(name, "string", &[], vec![])
}

fn multi(name: &str) -> Value {
    attr(
        name,
        "complex",
        &["multi"],
        vec![
            s("value"),
            s("display"),
            s("type"),
            attr("primary", "boolean", &[], vec![]),
        ],
    )
}

fn schema_list(base: &str) -> Vec<Value> {
    let user = vec![
        attr("userName", "string", &["required", "unique"], vec![]),
        attr(
            "name",
            "complex",
            &[],
            [
                "formatted",
                "familyName",
                "givenName",
                "middleName",
                "honorificPrefix",
                "honorificSuffix",
            ]
            .into_iter()
            .map(s)
            .collect(),
        ),
        s("displayName"),
        s("nickName"),
        attr("profileUrl", "reference", &[], vec![]),
        s("title"),
        s("userType"),
        s("preferredLanguage"),
        s("locale"),
        s("timezone"),
        attr("active", "boolean", &[], vec![]),
        attr("password", "string", &["writeOnly", "never"], vec![]),
        multi("emails"),
        multi("phoneNumbers"),
        multi("ims"),
        multi("photos"),
        attr(
            "addresses",
            "complex",
            &["multi"],
            [
                "formatted",
                "streetAddress",
                "locality",
                "region",
                "postalCode",
                "country",
                "type",
            ]
            .into_iter()
            .map(s)
            .chain([attr("primary", "boolean", &[], vec![])])
            .collect(),
        ),
        attr(
            "groups",
            "complex",
            &["multi", "readOnly"],
            vec![
                s("value"),
                attr("$ref", "reference", &[], vec![]),
                s("display"),
                s("type"),
            ],
        ),
        multi("entitlements"),
        multi("roles"),
        multi("x509Certificates"),
        attr("externalId", "string", &["caseExact"], vec![]),
    ];
    let enterprise = vec![
        s("employeeNumber"),
        s("costCenter"),
        s("organization"),
        s("division"),
        s("department"),
        attr(
            "manager",
            "complex",
            &[],
            vec![
                s("value"),
                attr("$ref", "reference", &[], vec![]),
                attr("displayName", "string", &["readOnly"], vec![]),
            ],
        ),
    ];
    let syncd = vec![
        attr("consent", "complex", &[], vec![]),
        attr("brandConsent", "complex", &[], vec![]),
        attr("brands", "string", &["multi"], vec![]),
        attr("attributes", "complex", &[], vec![]),
    ];
    let group = vec![
        attr("displayName", "string", &["required", "unique"], vec![]),
        attr(
            "members",
            "complex",
            &["multi"],
            vec![
                attr("value", "string", &["immutable", "caseExact"], vec![]),
                attr("$ref", "reference", &["immutable"], vec![]),
                s("display"),
                s("type"),
            ],
        ),
        attr("externalId", "string", &["caseExact"], vec![]),
    ];
    [
        (USER_URN, "User", "User Account", user),
        (
            ENTERPRISE_URN,
            "EnterpriseUser",
            "Enterprise User",
            enterprise,
        ),
        (
            SYNCD_URN,
            "SyncdUser",
            "Hub extension: consent per purpose (\"granted\"/\"denied\") and custom attributes",
            syncd,
        ),
        (GROUP_URN, "Group", "Group", group),
    ]
    .into_iter()
    .map(|(id, name, description, attributes)| {
        json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Schema"],
            "id": id, "name": name, "description": description, "attributes": attributes,
            "meta": {"resourceType": "Schema", "location": format!("{base}/Schemas/{id}")},
        })
    })
    .collect()
}

async fn schemas(_client: ScimClient, headers: HeaderMap) -> ScimResponse {
    let list = schema_list(&base_url(&headers));
    let n = list.len() as i64;
    ScimResponse::ok(list_response(list, n, 1))
}

async fn schema(
    _client: ScimClient,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<ScimResponse, ScimError> {
    schema_list(&base_url(&headers))
        .into_iter()
        .find(|r| {
            r["id"]
                .as_str()
                .is_some_and(|i| i.eq_ignore_ascii_case(&id))
        })
        .map(ScimResponse::ok)
        .ok_or_else(|| ScimError::NotFound(format!("no schema {id}")))
}
