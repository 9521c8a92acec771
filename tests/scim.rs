//! SCIM 2.0 router tests: `oneshot` on `hub::app(state)` over a fresh store
//! (SQLite always; PostgreSQL when HUB_TEST_DATABASE_URL is set, else the
//! PostgreSQL variants are reported ignored), replaying
//! the Okta and Entra request sequences from docs and checking that each
//! write queues a delivery job.

use axum::body::Body;
use axum::http::Request;
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;

mod common;

use common::router::{Hub, OKTA, Reply, assert_error, patch_body};

router_tests!(
    okta_user_lifecycle_and_group_push,
    entra_user_lifecycle_and_groups,
    errors_have_status_and_scim_type,
    list_pages_filters_and_projects,
    etags_guard_writes_and_reads,
    delete_tombstones_and_fans_out,
    discovery_endpoints_answer,
    consent_in_the_hub_extension,
    bulk_resolves_bulk_ids,
    bulk_fail_on_errors_stops,
    bulk_limits_are_advertised_and_enforced,
    last_modified_filters,
    published_schemas_drive_behaviour,
    list_parameter_edges_and_content_types,
);

async fn last_modified_filters(h: Hub) {
    let mut stamps = Vec::new();
    for name in ["early@example.com", "late@example.com"] {
        let r = h
            .okta("POST", "/scim/v2/Users", Some(json!({"userName": name})))
            .await;
        assert_eq!(r.status, 201);
        stamps.push(r.body["meta"]["lastModified"].as_str().unwrap().to_string());
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    let names = |r: &Reply| -> Vec<String> {
        r.body["Resources"]
            .as_array()
            .unwrap()
            .iter()
            .map(|u| u["userName"].as_str().unwrap().to_string())
            .collect()
    };
    for (filter, expected) in [
        (
            format!("meta.lastModified gt \"{}\"", stamps[0]),
            vec!["late@example.com"],
        ),
        (
            format!("meta.lastModified ge \"{}\"", stamps[0]),
            vec!["early@example.com", "late@example.com"],
        ),
        (
            format!("meta.lastModified lt \"{}\"", stamps[1]),
            vec!["early@example.com"],
        ),
        (
            format!(
                "meta.lastModified le \"{}\" and userName sw \"late\"",
                stamps[1]
            ),
            vec!["late@example.com"],
        ),
        (
            "meta.lastModified gt \"2999-01-01T00:00:00+01:00\"".to_string(),
            vec![],
        ),
    ] {
        let r = h
            .okta(
                "GET",
                &format!(
                    "/scim/v2/Users?sortBy=userName&filter={}",
                    urlencode(&filter)
                ),
                None,
            )
            .await;
        assert_eq!(r.status, 200, "{filter}: {}", r.body);
        assert_eq!(names(&r), expected, "{filter}");
    }
}

const BULK: &str = "urn:ietf:params:scim:api:messages:2.0:BulkRequest";

async fn bulk_resolves_bulk_ids(h: Hub) {
    // The group refers to users created later in the same request, and a
    // PATCH to a user by bulkId path.
    let r = h
        .okta(
            "POST",
            "/scim/v2/Bulk",
            Some(json!({
                "schemas": [BULK],
                "Operations": [
                    {"method": "POST", "path": "/Groups", "bulkId": "g",
                     "data": {"displayName": "Bulk VIP", "members": [
                         {"value": "bulkId:u1"}, {"value": "bulkId:u2"}]}},
                    {"method": "POST", "path": "/Users", "bulkId": "u1",
                     "data": {"userName": "bulk1@example.com"}},
                    {"method": "POST", "path": "/Users", "bulkId": "u2",
                     "data": {"userName": "bulk2@example.com"}},
                    {"method": "PATCH", "path": "/Users/bulkId:u1", "data": {
                        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                        "Operations": [{"op": "replace", "path": "displayName", "value": "Bulk One"}]}},
                    {"method": "DELETE", "path": "/Users/bulkId:nowhere"},
                    {"method": "GET", "path": "/Users"},
                ],
            })),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        r.body["schemas"][0],
        "urn:ietf:params:scim:api:messages:2.0:BulkResponse"
    );
    let ops = r.body["Operations"].as_array().unwrap();
    assert_eq!(ops.len(), 6, "{}", r.body);
    let by_bulk = |b: &str| {
        ops.iter()
            .find(|o| o["bulkId"] == b)
            .unwrap_or_else(|| panic!("no {b} in {}", r.body))
    };
    for b in ["u1", "u2", "g"] {
        assert_eq!(by_bulk(b)["status"], "201", "{}", r.body);
        assert!(
            by_bulk(b)["location"]
                .as_str()
                .unwrap()
                .starts_with("http://hub.test/scim/v2/")
        );
        assert_eq!(by_bulk(b)["version"], "W/\"1\"");
    }
    let u1 = by_bulk("u1")["location"]
        .as_str()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .to_string();
    let patched = ops.iter().find(|o| o["method"] == "PATCH").unwrap();
    assert_eq!(patched["status"], "200", "{}", r.body);
    let deleted = ops.iter().find(|o| o["method"] == "DELETE").unwrap();
    assert_eq!(deleted["status"], "409", "{}", r.body);
    assert_eq!(deleted["response"]["scimType"], "invalidValue");
    let get = ops.iter().find(|o| o["method"] == "GET").unwrap();
    assert_eq!(get["status"], "400", "{}", r.body);
    assert_eq!(
        get["response"]["schemas"][0],
        "urn:ietf:params:scim:api:messages:2.0:Error"
    );

    let gid = by_bulk("g")["location"]
        .as_str()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .to_string();
    let g = h.okta("GET", &format!("/scim/v2/Groups/{gid}"), None).await;
    assert_eq!(g.body["members"].as_array().unwrap().len(), 2, "{}", g.body);
    let u = h.okta("GET", &format!("/scim/v2/Users/{u1}"), None).await;
    assert_eq!(u.body["displayName"], "Bulk One");
    assert_eq!(u.body["groups"][0]["display"], "Bulk VIP");

    // Circular references fail both operations; nothing is created.
    let r = h
        .okta(
            "POST",
            "/scim/v2/Bulk",
            Some(json!({"schemas": [BULK], "Operations": [
                {"method": "POST", "path": "/Groups", "bulkId": "a",
                 "data": {"displayName": "A", "members": [{"value": "bulkId:b"}]}},
                {"method": "POST", "path": "/Groups", "bulkId": "b",
                 "data": {"displayName": "B", "members": [{"value": "bulkId:a"}]}},
            ]})),
        )
        .await;
    let ops = r.body["Operations"].as_array().unwrap();
    assert_eq!(ops.len(), 2);
    assert!(ops.iter().all(|o| o["status"] == "409"), "{}", r.body);
}

async fn bulk_fail_on_errors_stops(h: Hub) {
    let r = h
        .okta(
            "POST",
            "/scim/v2/Users",
            Some(json!({"userName": "taken@example.com"})),
        )
        .await;
    assert_eq!(r.status, 201);
    let r = h
        .okta(
            "POST",
            "/scim/v2/Bulk",
            Some(json!({"schemas": [BULK], "failOnErrors": 1, "Operations": [
                {"method": "POST", "path": "/Users", "bulkId": "ok", "data": {"userName": "first@example.com"}},
                {"method": "POST", "path": "/Users", "bulkId": "dup", "data": {"userName": "TAKEN@example.com"}},
                {"method": "POST", "path": "/Users", "bulkId": "never", "data": {"userName": "never@example.com"}},
            ]})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let ops = r.body["Operations"].as_array().unwrap();
    assert_eq!(
        ops.len(),
        2,
        "processing stops at the first error: {}",
        r.body
    );
    assert_eq!(ops[0]["status"], "201");
    assert_eq!(ops[1]["status"], "409");
    assert_eq!(ops[1]["response"]["scimType"], "uniqueness");
    // Each operation commits on its own: the first stays.
    let list = h
        .okta(
            "GET",
            "/scim/v2/Users?filter=userName%20eq%20%22first@example.com%22",
            None,
        )
        .await;
    assert_eq!(list.body["totalResults"], 1);
    let list = h
        .okta(
            "GET",
            "/scim/v2/Users?filter=userName%20eq%20%22never@example.com%22",
            None,
        )
        .await;
    assert_eq!(list.body["totalResults"], 0);

    // Without failOnErrors every operation runs.
    let r = h
        .okta(
            "POST",
            "/scim/v2/Bulk",
            Some(json!({"schemas": [BULK], "Operations": [
                {"method": "POST", "path": "/Users", "data": {"userName": "taken@example.com"}},
                {"method": "PUT", "path": "/Users/no-such-id", "data": {"userName": "x@example.com"}},
                {"method": "POST", "path": "/Users", "data": {"userName": "never@example.com"}},
                {"method": "PATCH", "path": "/Users/x", "version": "W/\"1\""},
            ]})),
        )
        .await;
    let statuses: Vec<&str> = r.body["Operations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["409", "404", "201", "400"], "{}", r.body);
    assert_error(
        &h.okta(
            "POST",
            "/scim/v2/Bulk",
            Some(json!({"schemas": [BULK], "failOnErrors": -1, "Operations": []})),
        )
        .await,
        400,
        Some("invalidValue"),
    );
    assert_error(
        &h.okta("POST", "/scim/v2/Bulk", Some(json!({"schemas": [BULK]})))
            .await,
        400,
        Some("invalidSyntax"),
    );
    assert_error(
        &h.call(None, "POST", "/scim/v2/Bulk", Some(json!({})), &[])
            .await,
        401,
        None,
    );
}

async fn bulk_limits_are_advertised_and_enforced(h: Hub) {
    let r = h.okta("GET", "/scim/v2/ServiceProviderConfig", None).await;
    assert_eq!(r.body["bulk"]["supported"], true);
    let max_ops = r.body["bulk"]["maxOperations"].as_u64().unwrap() as usize;
    let max_size = r.body["bulk"]["maxPayloadSize"].as_u64().unwrap() as usize;
    assert!(max_ops > 0 && max_size > 0);
    let op = json!({"method": "DELETE", "path": "/Users/x"});
    let r = h
        .okta(
            "POST",
            "/scim/v2/Bulk",
            Some(json!({"schemas": [BULK], "Operations": vec![op.clone(); max_ops + 1]})),
        )
        .await;
    assert_error(&r, 413, Some("tooMany"));
    let r = h
        .okta(
            "POST",
            "/scim/v2/Bulk",
            Some(json!({"schemas": [BULK], "Operations": [
                {"method": "POST", "path": "/Users", "data": {"userName": "big@example.com", "nickName": "x".repeat(max_size)}}
            ]})),
        )
        .await;
    assert_error(&r, 413, Some("tooLarge"));
    let r = h
        .okta(
            "POST",
            "/scim/v2/Bulk",
            Some(json!({"schemas": [BULK], "Operations": vec![op; max_ops]})),
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["Operations"].as_array().unwrap().len(), max_ops);
}

const SYNCD: &str = "urn:ietf:params:scim:schemas:extension:syncd:2.0:User";

async fn consent_in_the_hub_extension(h: Hub) {
    let r = h
        .okta(
            "POST",
            "/scim/v2/Users",
            Some(json!({
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", SYNCD],
                "userName": "consent@example.com",
                SYNCD: {
                    "consent": {"marketing_email": "granted", "analytics": "Denied"},
                    "brandConsent": {"acme": {"marketing_sms": true}},
                    "Brands": ["acme"],
                    "attributes": {"tier": "gold"},
                },
            })),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let id = r.body["id"].as_str().unwrap().to_string();
    assert_eq!(r.body[SYNCD]["consent"]["marketing_email"], "granted");
    assert_eq!(r.body[SYNCD]["consent"]["analytics"], "denied");
    assert_eq!(
        r.body[SYNCD]["brandConsent"]["acme"]["marketing_sms"],
        "granted"
    );
    assert_eq!(r.body[SYNCD]["attributes"]["tier"], "gold");
    assert_eq!(r.body[SYNCD]["brands"], json!(["acme"]));
    let uri = format!("/scim/v2/Users/{id}");
    let report = h.state.store.subject_report(&id).await.unwrap().unwrap();
    assert_eq!(report.consent.len(), 3);
    assert_eq!(report.consent_history.len(), 3);
    assert!(
        report
            .consent_history
            .iter()
            .all(|e| e.source == "okta" && e.previous_state.is_none())
    );
    // The profile does not hold consent: it lives in its own table.
    assert!(
        report.profile[SYNCD].get("consent").is_none(),
        "{}",
        report.profile
    );

    // PATCH withdraws one purpose; the ledger has previous and new state.
    let r = h
        .entra(
            "PATCH",
            &uri,
            Some(json!({
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                "Operations": [{"op": "Replace", "path": format!("{SYNCD}:consent.marketing_email"), "value": "denied"}],
            })),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body[SYNCD]["consent"]["marketing_email"], "denied");
    assert_eq!(r.body[SYNCD]["consent"]["analytics"], "denied");
    let report = h.state.store.subject_report(&id).await.unwrap().unwrap();
    let last = report.consent_history.last().unwrap();
    assert_eq!(
        (
            last.purpose.as_str(),
            last.previous_state.as_deref(),
            last.new_state.as_str(),
            last.source.as_str()
        ),
        ("marketing_email", Some("granted"), "denied", "entra")
    );
    let c = report
        .consent
        .iter()
        .find(|c| c.purpose == "marketing_email")
        .unwrap();
    assert_eq!((c.state.as_str(), c.version), ("denied", 2));
    assert!(
        report
            .changes
            .last()
            .unwrap()
            .attributes
            .as_array()
            .unwrap()
            .contains(&json!("consent.marketing_email"))
    );

    // The same state again is no change: no ledger row, same version.
    let version = r.body["meta"]["version"].clone();
    let r = h
        .okta(
            "PATCH",
            &uri,
            Some(json!({
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                "Operations": [{"op": "replace", "value": {SYNCD: {"consent": {"marketing_email": "denied"}}}}],
            })),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["meta"]["version"], version);
    let report = h.state.store.subject_report(&id).await.unwrap().unwrap();
    assert_eq!(report.consent_history.len(), 4);

    // PUT without the extension leaves consent as it is; with it, sets it.
    let r = h
        .okta(
            "PUT",
            &uri,
            Some(json!({"userName": "consent@example.com"})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body[SYNCD]["consent"]["analytics"], "denied");
    assert!(r.body[SYNCD].get("attributes").is_none(), "{}", r.body);
    let r = h
        .okta(
            "PUT",
            &uri,
            Some(json!({"userName": "consent@example.com", SYNCD: {"consent": {"analytics": "granted"}}})),
        )
        .await;
    assert_eq!(r.body[SYNCD]["consent"]["analytics"], "granted");
    let r = h.okta("GET", &uri, None).await;
    assert_eq!(r.body[SYNCD]["consent"]["analytics"], "granted");
    assert!(
        r.body["schemas"]
            .as_array()
            .unwrap()
            .contains(&json!(SYNCD))
    );
    let r = h
        .okta(
            "GET",
            "/scim/v2/Users?filter=userName%20eq%20%22consent@example.com%22",
            None,
        )
        .await;
    assert_eq!(
        r.body["Resources"][0][SYNCD]["consent"]["analytics"],
        "granted"
    );

    // Undeclared purposes and brands, and bad states, are refused; nothing changes.
    for bad in [
        json!({"consent": {"telepathy": "granted"}}),
        json!({"consent": {"analytics": "maybe"}}),
        json!({"consent": "granted"}),
        json!({"brandConsent": {"globex": {"analytics": "granted"}}}),
        json!({"brandConsent": {"acme": ["analytics"]}}),
        json!({"brands": ["globex"]}),
        json!({"brands": "acme"}),
    ] {
        let r = h
            .okta(
                "PUT",
                &uri,
                Some(json!({"userName": "consent@example.com", SYNCD: bad})),
            )
            .await;
        assert_error(&r, 400, Some("invalidValue"));
        let r = h
            .okta(
                "POST",
                "/scim/v2/Users",
                Some(json!({"userName": "other@example.com", SYNCD: bad})),
            )
            .await;
        assert_error(&r, 400, Some("invalidValue"));
    }
    let r = h
        .okta(
            "PATCH",
            &uri,
            Some(json!({
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                "Operations": [{"op": "add", "path": format!("{SYNCD}:consent.telepathy"), "value": "granted"}],
            })),
        )
        .await;
    assert_error(&r, 400, Some("invalidValue"));
    let report = h.state.store.subject_report(&id).await.unwrap().unwrap();
    assert_eq!(report.consent_history.len(), 5);
}

async fn okta_user_lifecycle_and_group_push(h: Hub) {
    // 1. Existence check: no match is an empty ListResponse.
    let q =
        "/scim/v2/Users?filter=userName%20eq%20%22ada.l%40example.com%22&startIndex=1&count=100";
    let r = h.okta("GET", q, None).await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.body,
        json!({"schemas":["urn:ietf:params:scim:api:messages:2.0:ListResponse"],"totalResults":0,"startIndex":1,"itemsPerPage":0,"Resources":[]})
    );
    // 2. Create (with the placeholder password, never stored nor returned).
    let r = h.okta("POST", "/scim/v2/Users", Some(json!({"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"ada.l@example.com",
        "name":{"givenName":"Ada","familyName":"Lovelace"},
        "emails":[{"primary":true,"value":"ada.l@example.com","type":"work"}],
        "displayName":"Ada Lovelace","locale":"en-US","externalId":"00u1a2b3c4D5e6F7g8h9",
        "groups":[],"password":"t3mpPlaceholder","active":true}))).await;
    assert_eq!(r.status, 201, "{}", r.body);
    let id = r.body["id"].as_str().unwrap().to_string();
    assert_eq!(
        r.headers["location"],
        format!("http://hub.test/scim/v2/Users/{id}")
    );
    assert_eq!(r.body["meta"]["resourceType"], "User");
    assert_eq!(r.body["meta"]["version"], "W/\"1\"");
    assert_eq!(r.headers["etag"], "W/\"1\"");
    assert!(r.body.get("password").is_none());
    assert_eq!(h.pending_jobs().await, 1);
    // Again: 409 uniqueness, case-insensitively.
    let dup = h
        .okta(
            "POST",
            "/scim/v2/Users",
            Some(json!({"userName":"ADA.L@example.com"})),
        )
        .await;
    assert_error(&dup, 409, Some("uniqueness"));
    // 1 again: now it matches.
    let r = h.okta("GET", q, None).await;
    assert_eq!(r.body["totalResults"], 1);
    assert_eq!(r.body["Resources"][0]["id"], id.as_str());
    assert_eq!(r.body["Resources"][0]["active"], true);
    // 3 + 4. Read, then PUT the object back with a change.
    let mut user = h
        .okta("GET", &format!("/scim/v2/Users/{id}"), None)
        .await
        .body;
    user["name"]["middleName"] = json!("King");
    let r = h
        .okta("PUT", &format!("/scim/v2/Users/{id}"), Some(user))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["name"]["middleName"], "King");
    assert_eq!(r.body["meta"]["version"], "W/\"2\"");
    // 5. Deactivate.
    let r = h.okta("PATCH", &format!("/scim/v2/Users/{id}"), Some(json!({"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","value":{"active":false}}]}))).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["active"], false);
    // 7. Password sync: accepted, nothing stored.
    let r = h.okta("PATCH", &format!("/scim/v2/Users/{id}"), Some(json!({"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","value":{"password":"n3w-Secret!"}}]}))).await;
    assert_eq!(r.status, 200);
    assert!(r.body.get("password").is_none());
    // 6. Reactivate.
    let r = h.okta("PATCH", &format!("/scim/v2/Users/{id}"), Some(json!({"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","value":{"active":true}}]}))).await;
    assert_eq!(r.body["active"], true);
    let other = h
        .okta(
            "POST",
            "/scim/v2/Users",
            Some(json!({"userName":"charles.b@example.com","active":true})),
        )
        .await
        .body["id"]
        .as_str()
        .unwrap()
        .to_string();

    // 9. Group push, 10. lookup by name, 12. rename, 13. membership.
    let r = h.okta("POST", "/scim/v2/Groups", Some(json!({"schemas":["urn:ietf:params:scim:schemas:core:2.0:Group"],"displayName":"Analytical Engines","members":[]}))).await;
    assert_eq!(r.status, 201, "{}", r.body);
    let gid = r.body["id"].as_str().unwrap().to_string();
    assert_eq!(r.body["members"], json!([]));
    let r = h.okta("GET", "/scim/v2/Groups?filter=displayName%20eq%20%22Analytical%20Engines%22&startIndex=1&count=100", None).await;
    assert_eq!(r.body["totalResults"], 1);
    let r = h
        .okta(
            "PATCH",
            &format!("/scim/v2/Groups/{gid}"),
            Some(
                json!({"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations":[{"op":"replace","value":{"id":gid,"displayName":"Analytical Engines"}}]}),
            ),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = h
        .okta(
            "PATCH",
            &format!("/scim/v2/Groups/{gid}"),
            Some(
                json!({"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations":[{"op":"remove","path":format!("members[value eq \"{other}\"]")},
          {"op":"add","path":"members","value":[{"value":id,"display":"ada.l@example.com"}]}]}),
            ),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["members"].as_array().unwrap().len(), 1);
    let u = h
        .okta("GET", &format!("/scim/v2/Users/{id}"), None)
        .await
        .body;
    assert_eq!(
        u["groups"],
        json!([{"value": gid, "display": "Analytical Engines", "type": "direct"}])
    );
    // 14. Full membership push.
    let r = h
        .okta(
            "PATCH",
            &format!("/scim/v2/Groups/{gid}"),
            Some(
                json!({"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations":[{"op":"replace","path":"members","value":[{"value":id},{"value":other}]}]}),
            ),
        )
        .await;
    assert_eq!(r.body["members"].as_array().unwrap().len(), 2);
    // Membership removal by path filter rewrites the member's groups.
    let r = h
        .okta(
            "PATCH",
            &format!("/scim/v2/Groups/{gid}"),
            Some(
                json!({"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations":[{"op":"remove","path":format!("members[value eq \"{id}\"]")}]}),
            ),
        )
        .await;
    assert_eq!(r.status, 200);
    let u = h
        .okta("GET", &format!("/scim/v2/Users/{id}"), None)
        .await
        .body;
    assert!(u.get("groups").is_none(), "{u}");
    // 15. AIW PUT, 16. delete.
    let r = h.okta("PUT", &format!("/scim/v2/Groups/{gid}"), Some(json!({"schemas":["urn:ietf:params:scim:schemas:core:2.0:Group"],"displayName":"Analytical Engines","members":[{"value":id}]}))).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = h
        .okta("DELETE", &format!("/scim/v2/Groups/{gid}"), None)
        .await;
    assert_eq!(r.status, 204);
    let u = h
        .okta("GET", &format!("/scim/v2/Users/{id}"), None)
        .await
        .body;
    assert!(u.get("groups").is_none());
    assert_error(
        &h.okta("GET", &format!("/scim/v2/Groups/{gid}"), None).await,
        404,
        None,
    );
}

async fn entra_user_lifecycle_and_groups(h: Hub) {
    // 0. Connection test.
    let r = h
        .entra(
            "GET",
            "/scim/v2/Users?filter=userName+eq+%223c1f8a52-5e0b-4d1e-9f0a-7b2d6c4e8a10%22",
            None,
        )
        .await;
    assert_eq!(r.body["totalResults"], 0);
    // 2. Create, with the enterprise extension and a null attribute.
    let r = h.entra("POST", "/scim/v2/Users", Some(json!({"schemas":["urn:ietf:params:scim:schemas:core:2.0:User","urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],
        "externalId":"ada","userName":"ada@contoso.example","active":"True",
        "emails":[{"primary":true,"type":"work","value":"ada@contoso.example"}],
        "meta":{"resourceType":"User"},"title":null,
        "name":{"formatted":"Ada Lovelace","familyName":"Lovelace","givenName":"Ada"},"roles":[],
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0User":{"department":"R&D"}}))).await;
    assert_eq!(r.status, 201, "{}", r.body);
    let id = r.body["id"].as_str().unwrap().to_string();
    assert_eq!(r.body["active"], true);
    assert_eq!(
        r.body["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"]["department"],
        "R&D"
    );
    assert!(r.body.get("title").is_none());
    // 1a. Match queries on each attribute.
    for f in [
        "userName eq \"ADA@contoso.example\"",
        "externalId eq \"ada\"",
        "emails[type eq \"work\"].value eq \"ada@contoso.example\"",
    ] {
        let uri = format!("/scim/v2/Users?filter={}", urlencode(f));
        let r = h.entra("GET", &uri, None).await;
        assert_eq!(r.body["totalResults"], 1, "{f}: {}", r.body);
    }
    let r = h
        .entra(
            "GET",
            &format!(
                "/scim/v2/Users?filter={}",
                urlencode("externalId eq \"ADA\"")
            ),
            None,
        )
        .await;
    assert_eq!(r.body["totalResults"], 0, "externalId is caseExact");
    // 4. Several attributes, Entra style.
    let r = h.entra("PATCH", &format!("/scim/v2/Users/{id}"), Some(json!({"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[
        {"op":"Replace","path":"displayName","value":"Ada King"},{"op":"Replace","path":"externalId","value":"ada.king"},
        {"op":"Replace","path":"emails[type eq \"work\"].value","value":"ada.king@contoso.example"},
        {"op":"Replace","path":"name.givenName","value":"Augusta"},{"op":"Replace","path":"name.familyName","value":"King"},
        {"op":"Replace","path":"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber","value":"701985"}]}))).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["displayName"], "Ada King");
    assert_eq!(r.body["externalId"], "ada.king");
    assert_eq!(
        r.body["emails"],
        json!([{"primary":true,"type":"work","value":"ada.king@contoso.example"}])
    );
    assert_eq!(r.body["name"]["givenName"], "Augusta");
    assert_eq!(r.body["name"]["formatted"], "Ada Lovelace");
    // The email index follows the change: the new address finds her, the old one not.
    for (email, n) in [("ADA.KING@contoso.example", 1), ("ada@contoso.example", 0)] {
        let f = format!("emails.value eq \"{email}\"");
        let uri = format!("/scim/v2/Users?filter={}", urlencode(&f));
        let found = h.entra("GET", &uri, None).await;
        assert_eq!(found.body["totalResults"], n, "{f}: {}", found.body);
    }
    let ext = &r.body["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"];
    assert_eq!(ext["employeeNumber"], "701985");
    assert_eq!(ext["department"], "R&D");
    // The flag form: dotted and URN-qualified keys in a no-path value.
    let r = h
        .entra(
            "PATCH",
            &format!("/scim/v2/Users/{id}"),
            Some(
                json!({"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[
        {"op":"replace","value":{"displayName":"Ada K","name.givenName":"Ada",
         "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber":"42"}}]}),
            ),
        )
        .await;
    assert_eq!(r.body["displayName"], "Ada K");
    assert_eq!(r.body["name"]["givenName"], "Ada");
    assert_eq!(
        r.body["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"]["employeeNumber"],
        "42"
    );
    // 5. Single values, Add.
    let r = h.entra("PATCH", &format!("/scim/v2/Users/{id}"), Some(json!({"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"Add","path":"nickName","value":"Babs"}]}))).await;
    assert_eq!(r.body["nickName"], "Babs");
    // A work email that does not exist yet is created from the filter.
    let r = h
        .entra(
            "PATCH",
            &format!("/scim/v2/Users/{id}"),
            Some(
                json!({"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[
        {"op":"Replace","path":"emails[type eq \"home\"].value","value":"ada@home.example"}]}),
            ),
        )
        .await;
    assert_eq!(r.body["emails"].as_array().unwrap().len(), 2, "{}", r.body);
    // 7. Disable with the string "False", 8. re-enable.
    for (v, want) in [
        (json!("False"), false),
        (json!(true), true),
        (json!("false"), false),
    ] {
        let r = h.entra("PATCH", &format!("/scim/v2/Users/{id}"), Some(json!({"Operations":[{"op":"Replace","path":"active","value":v}],"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"]}))).await;
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(r.body["active"], want);
    }
    let second = h
        .entra(
            "POST",
            "/scim/v2/Users",
            Some(json!({"userName":"charles@contoso.example","externalId":"charles"})),
        )
        .await
        .body["id"]
        .as_str()
        .unwrap()
        .to_string();
    // 11. Group create, 10. match with excludedAttributes=members.
    let r = h.entra("POST", "/scim/v2/Groups", Some(json!({"schemas":["urn:ietf:params:scim:schemas:core:2.0:Group","http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group"],
        "externalId":"5e9d0c4b-0000-4a1a-9b2b-3c4d5e6f7a8b","displayName":"Analytical Engines","meta":{"resourceType":"Group"}}))).await;
    assert_eq!(r.status, 201, "{}", r.body);
    let gid = r.body["id"].as_str().unwrap().to_string();
    let dup = h
        .entra(
            "POST",
            "/scim/v2/Groups",
            Some(json!({"displayName":"analytical engines"})),
        )
        .await;
    assert_error(&dup, 409, Some("uniqueness"));
    // 14. Add members.
    let r = h.entra("PATCH", &format!("/scim/v2/Groups/{gid}"), Some(json!({"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"Add","path":"members",
        "value":[{"$ref":null,"value":id},{"$ref":null,"value":second}]}]}))).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = h
        .entra(
            "GET",
            &format!(
                "/scim/v2/Groups?excludedAttributes=members&filter={}",
                urlencode("displayName eq \"Analytical Engines\"")
            ),
            None,
        )
        .await;
    assert_eq!(r.body["totalResults"], 1);
    assert!(
        r.body["Resources"][0].get("members").is_none(),
        "{}",
        r.body
    );
    let r = h
        .entra(
            "GET",
            &format!("/scim/v2/Groups/{gid}?excludedAttributes=members"),
            None,
        )
        .await;
    assert!(r.body.get("members").is_none());
    assert_eq!(r.body["displayName"], "Analytical Engines");
    // 13. Rename: members' groups follow.
    let r = h.entra("PATCH", &format!("/scim/v2/Groups/{gid}"), Some(json!({"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"Replace","path":"displayName","value":"Difference Engines"}]}))).await;
    assert_eq!(r.status, 200);
    let u = h
        .entra("GET", &format!("/scim/v2/Users/{second}"), None)
        .await
        .body;
    assert_eq!(u["groups"][0]["display"], "Difference Engines");
    // 15. Remove members with a value array.
    let r = h.entra("PATCH", &format!("/scim/v2/Groups/{gid}"), Some(json!({"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"Remove","path":"members","value":[{"value":second}]}]}))).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["members"].as_array().unwrap().len(), 1);
    let u = h
        .entra("GET", &format!("/scim/v2/Users/{second}"), None)
        .await
        .body;
    assert!(u.get("groups").is_none());
    // A member that is no User (its provisioning failed or is queued) is
    // kept as sent; removing it again works like any member.
    let r = h
        .entra(
            "PATCH",
            &format!("/scim/v2/Groups/{gid}"),
            Some(json!({"Operations":[{"op":"Add","path":"members","value":[{"value":"nope"}]}]})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(
        r.body["members"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["value"] == "nope")
    );
    let r = h
        .entra(
            "PATCH",
            &format!("/scim/v2/Groups/{gid}"),
            Some(json!({"Operations":[{"op":"Remove","path":"members[value eq \"nope\"]"}]})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["members"].as_array().unwrap().len(), 1);
    // 9. Hard delete, 16. group delete.
    assert_eq!(
        h.entra("DELETE", &format!("/scim/v2/Users/{id}"), None)
            .await
            .status,
        204
    );
    assert_error(
        &h.entra("GET", &format!("/scim/v2/Users/{id}"), None).await,
        404,
        None,
    );
    let g = h
        .entra("GET", &format!("/scim/v2/Groups/{gid}"), None)
        .await
        .body;
    assert_eq!(g["members"], json!([]));
    assert_eq!(
        h.entra("DELETE", &format!("/scim/v2/Groups/{gid}"), None)
            .await
            .status,
        204
    );
}

fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

async fn errors_have_status_and_scim_type(h: Hub) {
    let r = h.call(None, "GET", "/scim/v2/Users", None, &[]).await;
    assert_error(&r, 401, None);
    assert!(
        r.headers["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Bearer")
    );
    assert_error(
        &h.call(Some("wrong"), "GET", "/scim/v2/Users", None, &[])
            .await,
        401,
        None,
    );
    assert_error(
        &h.okta("GET", "/scim/v2/Users?filter=userName%20eq", None)
            .await,
        400,
        Some("invalidFilter"),
    );
    assert_error(
        &h.okta("GET", "/scim/v2/Users?filter=(((", None).await,
        400,
        Some("invalidFilter"),
    );
    assert_error(
        &h.okta("GET", "/scim/v2/Users?count=ten", None).await,
        400,
        Some("invalidValue"),
    );
    assert_error(&h.okta("GET", "/scim/v2/Users/nope", None).await, 404, None);
    assert_error(&h.okta("GET", "/scim/v2/Nope", None).await, 404, None);
    let r = h
        .call(Some(OKTA), "POST", "/scim/v2/Users", None, &[])
        .await;
    assert_error(&r, 400, Some("invalidSyntax"));
    assert_error(
        &h.okta(
            "POST",
            "/scim/v2/Users",
            Some(json!({"name": {"givenName": "x"}})),
        )
        .await,
        400,
        Some("invalidValue"),
    );
    assert_error(
        &h.okta(
            "POST",
            "/scim/v2/Users",
            Some(json!({"userName": "x", "active": "maybe"})),
        )
        .await,
        400,
        Some("invalidValue"),
    );
    assert_error(
        &h.okta("POST", "/scim/v2/Users", Some(json!([1, 2]))).await,
        400,
        Some("invalidSyntax"),
    );
    let id = h.okta("POST", "/scim/v2/Users", Some(json!({"userName": "x@example.com", "emails": [{"value": "x@example.com", "type": "work"}]}))).await.body["id"].as_str().unwrap().to_string();
    let uri = format!("/scim/v2/Users/{id}");
    let patch = |ops: Value| {
        Some(
            json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": ops}),
        )
    };
    assert_error(
        &h.okta(
            "PATCH",
            &uri,
            patch(json!([{"op": "replace", "path": "emails[type eq", "value": "x"}])),
        )
        .await,
        400,
        Some("invalidPath"),
    );
    assert_error(
        &h.okta(
            "PATCH",
            &uri,
            patch(json!([{"op": "replace", "path": "id", "value": "x"}])),
        )
        .await,
        400,
        Some("mutability"),
    );
    assert_error(
        &h.okta(
            "PATCH",
            &uri,
            patch(json!([{"op": "replace", "path": "groups", "value": []}])),
        )
        .await,
        400,
        Some("mutability"),
    );
    assert_error(
        &h.okta("PATCH", &uri, patch(json!([{"op": "remove"}])))
            .await,
        400,
        Some("noTarget"),
    );
    assert_error(
        &h.okta(
            "PATCH",
            &uri,
            patch(json!([{"op": "replace", "path": "emails[type co \"h\"].value", "value": "y"}])),
        )
        .await,
        400,
        Some("noTarget"),
    );
    assert_error(
        &h.okta(
            "PATCH",
            &uri,
            patch(json!([{"op": "move", "path": "userName"}])),
        )
        .await,
        400,
        Some("invalidSyntax"),
    );
    assert_error(
        &h.okta("PATCH", &uri, Some(json!({"schemas": []}))).await,
        400,
        Some("invalidSyntax"),
    );
    assert_error(
        &h.okta(
            "PATCH",
            &uri,
            patch(json!([{"op": "remove", "path": "userName"}])),
        )
        .await,
        400,
        Some("invalidValue"),
    );
    let other = h
        .okta(
            "POST",
            "/scim/v2/Users",
            Some(json!({"userName": "y@example.com"})),
        )
        .await
        .body["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_error(
        &h.okta(
            "PATCH",
            &format!("/scim/v2/Users/{other}"),
            patch(json!([{"op": "replace", "path": "userName", "value": "X@example.com"}])),
        )
        .await,
        409,
        Some("uniqueness"),
    );
    // Nothing changed by the refusals.
    let u = h.okta("GET", &uri, None).await.body;
    assert_eq!(u["meta"]["version"], "W/\"1\"");
}

async fn list_pages_filters_and_projects(h: Hub) {
    for i in 0..5 {
        let r = h.okta("POST", "/scim/v2/Users", Some(json!({"userName": format!("u{i}@example.com"), "active": i % 2 == 0,
            "emails": [{"value": format!("u{i}@example.com"), "primary": true}], "name": {"givenName": format!("G{}", 4 - i)}}))).await;
        assert_eq!(r.status, 201);
    }
    let all = h
        .okta("GET", "/scim/v2/Users?startIndex=1&count=2", None)
        .await
        .body;
    assert_eq!(
        (all["totalResults"].as_i64(), all["itemsPerPage"].as_i64()),
        (Some(5), Some(2))
    );
    let page2 = h
        .okta("GET", "/scim/v2/Users?startIndex=3&count=2", None)
        .await
        .body;
    let page3 = h
        .okta("GET", "/scim/v2/Users?startIndex=5&count=2", None)
        .await
        .body;
    let mut names: Vec<String> = [&all, &page2, &page3]
        .iter()
        .flat_map(|p| {
            p["Resources"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r["userName"].as_str().unwrap().to_string())
        })
        .collect();
    assert_eq!(names.len(), 5);
    names.dedup();
    assert_eq!(names.len(), 5, "stable, non-overlapping pages");
    assert_eq!(page2["startIndex"], 3);
    let totals = h.okta("GET", "/scim/v2/Users?count=0", None).await.body;
    assert_eq!(
        (
            totals["totalResults"].as_i64(),
            totals["Resources"].as_array().unwrap().len()
        ),
        (Some(5), 0)
    );
    let active = h
        .okta(
            "GET",
            &format!(
                "/scim/v2/Users?filter={}",
                urlencode("active eq true and userName sw \"u\"")
            ),
            None,
        )
        .await
        .body;
    assert_eq!(active["totalResults"], 3);
    let by_email = h
        .okta(
            "GET",
            &format!(
                "/scim/v2/Users?filter={}",
                urlencode("emails.value eq \"U3@EXAMPLE.COM\"")
            ),
            None,
        )
        .await
        .body;
    assert_eq!(by_email["totalResults"], 1);
    let sorted = h
        .okta("GET", "/scim/v2/Users?sortBy=name.givenName&count=2", None)
        .await
        .body;
    assert_eq!(sorted["Resources"][0]["name"]["givenName"], "G0");
    let desc = h
        .okta(
            "GET",
            "/scim/v2/Users?sortBy=userName&sortOrder=descending&count=1",
            None,
        )
        .await
        .body;
    assert_eq!(desc["Resources"][0]["userName"], "u4@example.com");
    let projected = h
        .okta("GET", "/scim/v2/Users?attributes=userName&count=1", None)
        .await
        .body;
    let r = projected["Resources"][0].as_object().unwrap();
    let mut keys: Vec<&str> = r.keys().map(String::as_str).collect();
    keys.sort();
    assert_eq!(keys, ["id", "meta", "schemas", "userName"]);
    let excluded = h
        .okta(
            "GET",
            "/scim/v2/Users?excludedAttributes=emails,name&count=1",
            None,
        )
        .await
        .body;
    assert!(excluded["Resources"][0].get("emails").is_none());
    assert!(excluded["Resources"][0].get("userName").is_some());
    let search = h.okta("POST", "/scim/v2/Users/.search", Some(json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
        "filter": "userName eq \"u1@example.com\"", "attributes": ["userName"], "startIndex": 1, "count": 10}))).await.body;
    assert_eq!(search["totalResults"], 1);
}

async fn etags_guard_writes_and_reads(h: Hub) {
    let r = h
        .okta(
            "POST",
            "/scim/v2/Users",
            Some(json!({"userName": "e@example.com"})),
        )
        .await;
    let uri = format!("/scim/v2/Users/{}", r.body["id"].as_str().unwrap());
    let r = h
        .call(
            Some(OKTA),
            "GET",
            &uri,
            None,
            &[("if-none-match", "W/\"1\"")],
        )
        .await;
    assert_eq!(r.status, 304);
    let r = h
        .call(
            Some(OKTA),
            "GET",
            &uri,
            None,
            &[("if-none-match", "W/\"9\"")],
        )
        .await;
    assert_eq!(r.status, 200);
    let body = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": [{"op": "add", "path": "nickName", "value": "E"}]});
    let r = h
        .call(
            Some(OKTA),
            "PATCH",
            &uri,
            Some(body.clone()),
            &[("if-match", "W/\"7\"")],
        )
        .await;
    assert_error(&r, 412, None);
    let r = h
        .call(
            Some(OKTA),
            "PATCH",
            &uri,
            Some(body),
            &[("if-match", "W/\"1\"")],
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.headers["etag"], "W/\"2\"");
    let r = h
        .call(Some(OKTA), "DELETE", &uri, None, &[("if-match", "W/\"1\"")])
        .await;
    assert_error(&r, 412, None);
    let r = h
        .call(Some(OKTA), "DELETE", &uri, None, &[("if-match", "W/\"2\"")])
        .await;
    assert_eq!(r.status, 204);
}

async fn delete_tombstones_and_fans_out(h: Hub) {
    let r = h
        .okta(
            "POST",
            "/scim/v2/Users",
            Some(json!({"userName": "gone@example.com", "externalId": "gone"})),
        )
        .await;
    let id = r.body["id"].as_str().unwrap().to_string();
    let before = h.state.store.stats().await.unwrap().changes;
    assert_eq!(
        h.okta("DELETE", &format!("/scim/v2/Users/{id}"), None)
            .await
            .status,
        204
    );
    let subjects = h
        .state
        .store
        .load_subjects(std::slice::from_ref(&id))
        .await
        .unwrap();
    assert!(
        subjects[0].deleted,
        "a tombstone stays for the destinations"
    );
    assert!(subjects[0].erasing, "a SCIM DELETE is an erasure");
    let report = h.state.store.subject_report(&id).await.unwrap().unwrap();
    assert_eq!(report.external_id, format!("erased:{id}"));
    assert!(report.erase_requested_at.is_some());
    assert_eq!(h.state.store.stats().await.unwrap().changes, before + 1);
    assert_eq!(h.pending_jobs().await, 1);
    assert_error(
        &h.okta("DELETE", &format!("/scim/v2/Users/{id}"), None)
            .await,
        404,
        None,
    );
    // userName and externalId are free again.
    let r = h
        .okta(
            "POST",
            "/scim/v2/Users",
            Some(json!({"userName": "gone@example.com", "externalId": "gone"})),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    // No destination ever held it: the PII is scrubbed at once.
    let receipts = h
        .state
        .store
        .complete_erasures(hub::store::now_ms(), 60_000)
        .await
        .unwrap();
    assert!(receipts.iter().any(|r| r.subject_id == id));
    let report = h.state.store.subject_report(&id).await.unwrap().unwrap();
    assert_eq!(report.profile, json!({}));
    assert!(report.erased_at.is_some());
}

async fn discovery_endpoints_answer(h: Hub) {
    let r = h.entra("GET", "/scim/v2/ServiceProviderConfig", None).await;
    assert_eq!(r.body["patch"]["supported"], true);
    let r = h.entra("GET", "/scim/v2/Schemas", None).await;
    let ids: Vec<&str> = r.body["Resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    assert!(ids.contains(&"urn:ietf:params:scim:schemas:extension:syncd:2.0:User"));
    let r = h
        .entra(
            "GET",
            "/scim/v2/Schemas/urn:ietf:params:scim:schemas:core:2.0:User",
            None,
        )
        .await;
    assert_eq!(r.body["name"], "User");
    let r = h.entra("GET", "/scim/v2/ResourceTypes/Group", None).await;
    assert_eq!(r.body["endpoint"], "/Groups");
    assert_eq!(
        h.entra("GET", "/scim/v2/ResourceTypes", None).await.body["totalResults"],
        2
    );
}

/// Walks what `/Schemas` publishes and checks each characteristic against
/// behaviour: readOnly ignored on POST/PUT and refused by PATCH, writeOnly /
/// returned never never returned (even when asked for), immutable
/// sub-attributes settable once, uniqueness server 409, caseExact filters.
async fn published_schemas_drive_behaviour(h: Hub) {
    let schemas = h.okta("GET", "/scim/v2/Schemas", None).await.body;
    let find = |id: &str| {
        schemas["Resources"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["id"] == id)
            .unwrap_or_else(|| panic!("{id} published"))
            .clone()
    };
    let user_schema = find("urn:ietf:params:scim:schemas:core:2.0:User");
    let enterprise = find("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User");
    let group_schema = find("urn:ietf:params:scim:schemas:core:2.0:Group");
    let mut checked: Vec<String> = Vec::new();

    // A member to put in groups, and a group holding them.
    let member = h
        .okta(
            "POST",
            "/scim/v2/Users",
            Some(json!({"userName": "member@example.com"})),
        )
        .await
        .body["id"]
        .as_str()
        .unwrap()
        .to_string();
    let other = h
        .okta(
            "POST",
            "/scim/v2/Users",
            Some(json!({"userName": "other@example.com"})),
        )
        .await
        .body["id"]
        .as_str()
        .unwrap()
        .to_string();

    for (urn, def) in [
        ("", &user_schema),
        (
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:",
            &enterprise,
        ),
    ] {
        for a in def["attributes"].as_array().unwrap() {
            let name = a["name"].as_str().unwrap();
            let sample = match a["type"].as_str().unwrap() {
                "boolean" => json!(true),
                "complex" if a["multiValued"] == true => json!([{"value": "x", "display": "x"}]),
                "complex" => json!({"value": "x"}),
                _ if a["multiValued"] == true => json!(["x"]),
                _ => json!("x"),
            };
            let path = format!("{urn}{name}");
            let with = |body: &mut Value, v: Value| {
                if urn.is_empty() {
                    body[name] = v;
                } else {
                    body[urn.trim_end_matches(':')] = json!({ name: v });
                }
            };
            let n = checked.len();
            let mut body = json!({"userName": format!("{name}-{n}@example.com")});
            with(&mut body, sample.clone());
            if a["mutability"] == "readOnly" {
                // Ignored on POST (RFC 7644 3.3), refused by PATCH.
                let r = h.okta("POST", "/scim/v2/Users", Some(body.clone())).await;
                assert_eq!(r.status, 201, "{path}: {}", r.body);
                assert_ne!(r.body[name], sample, "{path} is readOnly: ignored on input");
                let uri = format!("/scim/v2/Users/{}", r.body["id"].as_str().unwrap());
                let p = h
                    .okta(
                        "PATCH",
                        &uri,
                        patch_body(json!([{"op": "replace", "path": path, "value": sample}])),
                    )
                    .await;
                assert_error(&p, 400, Some("mutability"));
                checked.push(format!("readOnly {path}"));
            }
            if a["returned"] == "never" || a["mutability"] == "writeOnly" {
                let r = h.okta("POST", "/scim/v2/Users", Some(body)).await;
                assert_eq!(r.status, 201, "{path}: {}", r.body);
                assert!(r.body.get(name).is_none(), "{path} returned on POST");
                let uri = format!("/scim/v2/Users/{}", r.body["id"].as_str().unwrap());
                for q in [
                    "",
                    "?attributes=",
                    "?excludedAttributes=userName&attributes=",
                ] {
                    let q = if q.ends_with('=') {
                        format!("{q}{path},userName")
                    } else {
                        q.to_string()
                    };
                    let g = h.okta("GET", &format!("{uri}{q}"), None).await;
                    assert_eq!(g.status, 200);
                    assert!(g.body.get(name).is_none(), "{path} returned by GET{q}");
                }
                let l = h
                    .okta(
                        "GET",
                        &format!("/scim/v2/Users?attributes={path}&count=100"),
                        None,
                    )
                    .await;
                assert!(
                    l.body["Resources"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .all(|u| u.get(name).is_none())
                );
                let p = h
                    .okta(
                        "PATCH",
                        &uri,
                        patch_body(json!([{"op": "add", "path": "nickName", "value": "N"}])),
                    )
                    .await;
                assert_eq!(p.status, 200);
                assert!(p.body.get(name).is_none(), "{path} returned by PATCH");
                checked.push(format!("never {path}"));
            }
            if a["uniqueness"] == "server" {
                let dup = h
                    .okta(
                        "POST",
                        "/scim/v2/Users",
                        Some(json!({name: "MEMBER@example.com"})),
                    )
                    .await;
                assert_error(&dup, 409, Some("uniqueness"));
                checked.push(format!("unique {path}"));
            }
            for sub in a["subAttributes"].as_array().into_iter().flatten() {
                let sname = sub["name"].as_str().unwrap();
                if sub["mutability"] != "readOnly" {
                    continue;
                }
                let mut body = json!({"userName": format!("{name}-{sname}@example.com")});
                with(&mut body, json!({"value": member, sname: "ignored"}));
                let r = h.okta("POST", "/scim/v2/Users", Some(body)).await;
                assert_eq!(r.status, 201, "{}", r.body);
                let held = if urn.is_empty() {
                    &r.body[name]
                } else {
                    &r.body[urn.trim_end_matches(':')][name]
                };
                assert_eq!(held["value"], member.as_str());
                assert!(
                    held.get(sname).is_none(),
                    "{path}.{sname} is readOnly: ignored"
                );
                let uri = format!("/scim/v2/Users/{}", r.body["id"].as_str().unwrap());
                let p = h
                    .okta(
                        "PATCH",
                        &uri,
                        patch_body(
                            json!([{"op": "add", "path": format!("{path}.{sname}"), "value": "x"}]),
                        ),
                    )
                    .await;
                assert_error(&p, 400, Some("mutability"));
                checked.push(format!("readOnly {path}.{sname}"));
            }
        }
    }
    // caseExact: externalId matches exactly, userName (not caseExact) in any case.
    let ext = find("urn:ietf:params:scim:schemas:core:2.0:User");
    let attr = |n: &str| {
        ext["attributes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["name"] == n)
            .unwrap()
            .clone()
    };
    assert_eq!(
        (
            attr("externalId")["caseExact"].clone(),
            attr("userName")["caseExact"].clone()
        ),
        (json!(true), json!(false))
    );
    h.okta(
        "POST",
        "/scim/v2/Users",
        Some(json!({"userName": "exact@example.com", "externalId": "AbC"})),
    )
    .await;
    for (filter, n) in [
        ("externalId eq \"AbC\"", 1),
        ("externalId eq \"abc\"", 0),
        ("userName eq \"EXACT@example.com\"", 1),
        ("externalId sw \"ab\"", 0),
    ] {
        let r = h
            .okta(
                "GET",
                &format!("/scim/v2/Users?filter={}", urlencode(filter)),
                None,
            )
            .await;
        assert_eq!(r.body["totalResults"], n, "{filter}");
    }

    // Group: immutable member sub-attributes; displayName unique.
    let g = h
        .okta(
            "POST",
            "/scim/v2/Groups",
            Some(json!({"displayName": "Walk", "members": [{"value": member}]})),
        )
        .await;
    assert_eq!(g.status, 201, "{}", g.body);
    let uri = format!("/scim/v2/Groups/{}", g.body["id"].as_str().unwrap());
    let members = group_schema["attributes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == "members")
        .unwrap();
    for sub in members["subAttributes"].as_array().unwrap() {
        let sname = sub["name"].as_str().unwrap();
        if sub["mutability"] != "immutable" {
            continue;
        }
        let changed = if sname == "value" {
            other.clone()
        } else {
            format!("http://hub.test/scim/v2/Users/{other}")
        };
        let p = h
            .okta("PATCH", &uri, patch_body(json!([{"op": "replace", "path": format!("members[value eq \"{member}\"].{sname}"), "value": changed}])))
            .await;
        assert_error(&p, 400, Some("mutability"));
        checked.push(format!("immutable members.{sname}"));
    }
    // Adding and removing members is no change of an immutable value.
    let p = h
        .okta(
            "PATCH",
            &uri,
            patch_body(
                json!([{"op": "add", "path": "members", "value": [{"value": other}]},
            {"op": "remove", "path": format!("members[value eq \"{member}\"]")}]),
            ),
        )
        .await;
    assert_eq!(p.status, 200, "{}", p.body);
    assert_eq!(p.body["members"][0]["value"], other.as_str());
    let dup = h
        .okta(
            "POST",
            "/scim/v2/Groups",
            Some(json!({"displayName": "WALK"})),
        )
        .await;
    assert_error(&dup, 409, Some("uniqueness"));

    checked.sort();
    assert_eq!(
        checked,
        [
            "immutable members.$ref",
            "immutable members.value",
            "never password",
            "readOnly groups",
            "readOnly urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.displayName",
            "unique userName",
        ],
        "every characteristic was exercised"
    );
}

async fn list_parameter_edges_and_content_types(h: Hub) {
    for i in 0..3 {
        h.okta(
            "POST",
            "/scim/v2/Users",
            Some(json!({"userName": format!("p{i}@example.com")})),
        )
        .await;
    }
    let ids = |r: &Reply| -> Vec<String> {
        r.body["Resources"]
            .as_array()
            .unwrap()
            .iter()
            .map(|u| u["userName"].as_str().unwrap().to_string())
            .collect()
    };
    // count=0: totals only, with a filter too.
    for q in [
        "count=0",
        "count=0&filter=userName%20sw%20%22p%22",
        "count=-3",
    ] {
        let r = h.okta("GET", &format!("/scim/v2/Users?{q}"), None).await;
        assert_eq!(r.body["totalResults"], 3, "{q}");
        assert_eq!(r.body["itemsPerPage"], 0, "{q}");
        assert_eq!(r.body["Resources"], json!([]), "{q}");
    }
    // startIndex below 1 reads as 1.
    let first = h.okta("GET", "/scim/v2/Users", None).await;
    for q in ["startIndex=0", "startIndex=-7"] {
        let r = h.okta("GET", &format!("/scim/v2/Users?{q}"), None).await;
        assert_eq!(r.body["startIndex"], 1, "{q}");
        assert_eq!(ids(&r), ids(&first), "{q}");
    }
    // A startIndex past the end: an empty page, the total kept.
    let r = h.okta("GET", "/scim/v2/Users?startIndex=10", None).await;
    assert_eq!(
        (
            r.body["totalResults"].as_i64(),
            r.body["itemsPerPage"].as_i64()
        ),
        (Some(3), Some(0))
    );
    // count over the advertised maximum is clamped to it, not refused.
    let max = h
        .okta("GET", "/scim/v2/ServiceProviderConfig", None)
        .await
        .body["filter"]["maxResults"]
        .as_i64()
        .unwrap();
    let r = h
        .okta("GET", &format!("/scim/v2/Users?count={}", max * 10), None)
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["itemsPerPage"], 3);
    // sortBy an attribute no resource has (or no schema defines): as if
    // absent, so the stable id order; a malformed one is invalidPath.
    for by in ["nickName", "noSuchAttribute", "urn:x:y:z:w"] {
        let r = h
            .okta("GET", &format!("/scim/v2/Users?sortBy={by}"), None)
            .await;
        assert_eq!(r.status, 200, "{by}: {}", r.body);
        assert_eq!(ids(&r), ids(&first), "{by}");
        let r = h
            .okta(
                "GET",
                &format!("/scim/v2/Users?sortBy={by}&sortOrder=descending"),
                None,
            )
            .await;
        assert_eq!(ids(&r), ids(&first), "{by} descending");
    }
    assert_error(
        &h.okta("GET", "/scim/v2/Users?sortBy=a..b", None).await,
        400,
        Some("invalidPath"),
    );
    assert_error(
        &h.okta("GET", "/scim/v2/Groups?sortBy=members[", None).await,
        400,
        Some("invalidPath"),
    );
    // excludedAttributes=meta leaves meta out; id and schemas stay.
    let r = h
        .okta(
            "GET",
            "/scim/v2/Users?excludedAttributes=meta,id,schemas,userName&count=1",
            None,
        )
        .await;
    let u = &r.body["Resources"][0];
    assert!(u.get("meta").is_none() && u.get("userName").is_none());
    assert!(u["id"].is_string() && u["schemas"].is_array());

    // application/json is accepted (and answered as application/scim+json).
    let raw = |method: &str, uri: &str, ct: &str, body: String| {
        Request::builder()
            .method(method)
            .uri(uri)
            .header("host", "hub.test")
            .header("authorization", format!("Bearer {OKTA}"))
            .header("content-type", ct)
            .header("accept", "application/json")
            .body(Body::from(body))
            .unwrap()
    };
    for (n, ct) in [
        "application/json",
        "application/scim+json; charset=utf-8",
        "application/json; charset=UTF-8",
    ]
    .iter()
    .enumerate()
    {
        let resp = h
            .app
            .clone()
            .oneshot(raw(
                "POST",
                "/scim/v2/Users",
                ct,
                json!({"userName": format!("json{n}@example.com")}).to_string(),
            ))
            .await
            .unwrap();
        assert_eq!(resp.status(), 201, "{ct}");
        assert_eq!(resp.headers()["content-type"], "application/scim+json");
    }
    // tooLarge: a body over the limit, on any endpoint.
    let big = json!({"userName": "big@example.com", "nickName": "x".repeat(hub::http::scim::MAX_BODY + 1)});
    let resp = h
        .app
        .clone()
        .oneshot(raw(
            "POST",
            "/scim/v2/Users",
            "application/scim+json",
            big.to_string(),
        ))
        .await
        .unwrap();
    assert_eq!(resp.status(), 413);
    let body: Value =
        serde_json::from_slice(&resp.into_body().collect().await.unwrap().to_bytes()).unwrap();
    assert_eq!(
        (body["status"].as_str(), body["scimType"].as_str()),
        (Some("413"), Some("tooLarge"))
    );
}
