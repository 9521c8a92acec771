//! SCIM requests as independent clients send them: bodies in other media
//! types get 415 and change nothing; a Group naming members that are no
//! User (yet) is accepted and returned with them; root `.search` finds Users
//! and Groups. SQLite and PostgreSQL.

mod common;

use common::router::{Hub, OKTA, assert_error, patch_body};
use serde_json::{Value, json};

router_tests!(
    bodies_in_other_media_types_get_415,
    a_group_with_an_unknown_member_is_accepted_and_returned,
    root_search_finds_users_and_groups,
);

async fn bodies_in_other_media_types_get_415(h: Hub) {
    let id = h.create_user("media@example.com").await;
    let user = json!({"userName": "other@example.com"}).to_string();
    let ops = patch_body(json!([{"op": "replace", "path": "nickName", "value": "x"}]))
        .unwrap()
        .to_string();
    let before = h.state.store.stats().await.unwrap().changes;
    for ct in [
        "text/plain",
        "application/xml",
        "multipart/form-data; boundary=x",
        "application/x-www-form-urlencoded",
        "application/scim+xml",
    ] {
        for (method, uri, body) in [
            ("POST", "/scim/v2/Users".to_string(), user.clone()),
            ("PUT", format!("/scim/v2/Users/{id}"), user.clone()),
            ("PATCH", format!("/scim/v2/Users/{id}"), ops.clone()),
            (
                "POST",
                "/scim/v2/Groups".to_string(),
                json!({"displayName": "g"}).to_string(),
            ),
            (
                "POST",
                "/scim/v2/Users/.search".to_string(),
                "{}".to_string(),
            ),
            ("POST", "/scim/v2/.search".to_string(), "{}".to_string()),
            (
                "POST",
                "/scim/v2/Bulk".to_string(),
                json!({"Operations": []}).to_string(),
            ),
        ] {
            let req = axum::http::Request::builder()
                .method(method)
                .uri(&uri)
                .header("host", "hub.test")
                .header("authorization", format!("Bearer {OKTA}"))
                .header("content-type", ct)
                .body(axum::body::Body::from(body))
                .unwrap();
            let r = h.send(req).await;
            assert_eq!(r.status, 415, "{method} {uri} as {ct}: {}", r.body);
            assert_eq!(r.headers["content-type"], "application/scim+json");
            assert_eq!(r.body["status"], "415");
        }
    }
    assert_eq!(h.state.store.stats().await.unwrap().changes, before);
    let list = h.okta("GET", "/scim/v2/Users", None).await.body;
    assert_eq!(list["totalResults"], 1);
}

async fn a_group_with_an_unknown_member_is_accepted_and_returned(h: Hub) {
    let ada = h.create_user("ada@example.com").await;
    let queued = "2c9f1b0e-not-provisioned-yet";
    let members = json!([{"value": ada}, {"value": queued}]);
    let r = h
        .okta(
            "POST",
            "/scim/v2/Groups",
            Some(json!({"displayName": "VIP", "members": members})),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let gid = r.body["id"].as_str().unwrap().to_string();
    let uri = format!("/scim/v2/Groups/{gid}");
    let values = |g: &Value| -> Vec<String> {
        let mut v: Vec<String> = g["members"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["value"].as_str().unwrap().to_string())
            .collect();
        v.sort();
        v
    };
    let mut both = vec![ada.clone(), queued.to_string()];
    both.sort();
    assert_eq!(values(&r.body), both);
    assert_eq!(values(&h.okta("GET", &uri, None).await.body), both);
    // The known member is in the group; the unknown one touched no subject.
    let u = h
        .okta("GET", &format!("/scim/v2/Users/{ada}"), None)
        .await
        .body;
    assert_eq!(u["groups"][0]["value"], gid.as_str());
    assert_eq!(h.state.store.subject_ids(None, 100).await.unwrap().len(), 1);
    // PUT and PATCH take unknown members too.
    let second = "second-queued-user";
    let r = h
        .okta(
            "PUT",
            &uri,
            Some(json!({"displayName": "VIP", "members": [{"value": queued}, {"value": second}]})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let mut pair = vec![queued.to_string(), second.to_string()];
    pair.sort();
    assert_eq!(values(&r.body), pair);
    let u = h
        .okta("GET", &format!("/scim/v2/Users/{ada}"), None)
        .await
        .body;
    assert!(u.get("groups").is_none(), "ada left the group: {u}");
    let r = h
        .okta("PATCH", &uri, patch_body(json!([{"op": "add", "path": "members", "value": [{"value": "third"}, {"value": ada}]}])))
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(values(&r.body).len(), 4);
    let r = h
        .okta(
            "PATCH",
            &uri,
            patch_body(
                json!([{"op": "remove", "path": format!("members[value eq \"{queued}\"]")}]),
            ),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(!values(&r.body).contains(&queued.to_string()));
    // Filters see them like any member.
    let r = h
        .okta(
            "GET",
            &format!("/scim/v2/Groups?filter=members.value%20eq%20%22{second}%22"),
            None,
        )
        .await;
    assert_eq!(r.body["totalResults"], 1, "{}", r.body);
    assert_eq!(h.okta("DELETE", &uri, None).await.status, 204);
    let u = h
        .okta("GET", &format!("/scim/v2/Users/{ada}"), None)
        .await
        .body;
    assert!(u.get("groups").is_none(), "{u}");
}

async fn root_search_finds_users_and_groups(h: Hub) {
    let ada = h.create_user("ada@example.com").await;
    h.create_user("grace@example.com").await;
    let r = h
        .okta(
            "POST",
            "/scim/v2/Groups",
            Some(json!({"displayName": "Analysts", "members": [{"value": ada}]})),
        )
        .await;
    assert_eq!(r.status, 201);
    let h = &h;
    let search = |body: Value| async move {
        let r = h.okta("POST", "/scim/v2/.search", Some(body)).await;
        assert_eq!(r.status, 200, "{}", r.body);
        r.body
    };
    let all =
        search(json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"]})).await;
    assert_eq!(all["totalResults"], 3, "{all}");
    let kinds: Vec<&str> = all["Resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["meta"]["resourceType"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["User", "User", "Group"]);
    let one = search(json!({"filter": "userName eq \"ada@example.com\""})).await;
    assert_eq!(one["totalResults"], 1);
    assert_eq!(one["Resources"][0]["id"], ada.as_str());
    let groups =
        search(json!({"filter": "displayName sw \"Ana\"", "attributes": ["displayName"]})).await;
    assert_eq!(groups["totalResults"], 1);
    assert_eq!(groups["Resources"][0]["displayName"], "Analysts");
    assert!(groups["Resources"][0].get("members").is_none());
    let page = search(json!({"startIndex": 2, "count": 1})).await;
    assert_eq!(
        (page["totalResults"].as_i64(), page["itemsPerPage"].as_i64()),
        (Some(3), Some(1))
    );
    assert_error(
        &h.okta("POST", "/scim/v2/.search", Some(json!({"filter": "((("})))
            .await,
        400,
        Some("invalidFilter"),
    );
    let r = h
        .call(None, "POST", "/scim/v2/.search", Some(json!({})), &[])
        .await;
    assert_error(&r, 401, None);
}
