//! SCIM end to end: a real `hub serve`, Okta's and Entra's request
//! sequences over HTTP, and a sink playing the CRM destination. Checks what
//! the destination receives: mapped fields, the `groups[display eq "VIP"]`
//! field after a group add and remove, no upsert once a user is deactivated
//! (the mapping's `when: active eq true ...` skips it), and the delete of an
//! erased user.

mod common;

use std::time::{Duration, Instant};

use common::*;
use serde_json::{Value, json};
use sha2::Digest;

const OKTA_TOKEN: &str = "okta-e2e-token";
const ENTRA_TOKEN: &str = "entra-e2e-token";
const SYNCD: &str = "urn:ietf:params:scim:schemas:extension:syncd:2.0:User";
const PATCH_OP: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";

backend_tests!(
    okta_sequence_reaches_the_destination,
    entra_sequence_reaches_the_destination
);

fn clients_toml() -> String {
    let hash = |t: &str| hex::encode(sha2::Sha256::digest(t.as_bytes()));
    format!(
        "[scim.clients.okta]\ntoken_sha256 = \"{}\"\n\n[scim.clients.entra]\ntoken_sha256 = \"{}\"\n",
        hash(OKTA_TOKEN),
        hash(ENTRA_TOKEN)
    )
}

/// The CRM mapping plus a field from group membership.
fn mapping(sink: &Sink) -> String {
    let mut yaml = crm_mapping("crm", &sink.url());
    yaml.push_str("  vip:\n    from: 'groups[display eq \"VIP\"].display'\n");
    yaml
}

async fn start(backend: Backend) -> (Sink, TestHub) {
    let sink = Sink::start().await;
    let hub = TestHub::builder(backend)
        .mapping("crm.yaml", mapping(&sink))
        .toml(&clients_toml())
        .start()
        .await;
    (sink, hub)
}

async fn scim(
    hub: &TestHub,
    token: &str,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let mut req = hub
        .http
        .request(method, format!("{}/scim/v2{path}", hub.url))
        .bearer_auth(token);
    if let Some(b) = body {
        req = req
            .header("content-type", "application/scim+json")
            .body(b.to_string());
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

fn q(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// Waits for an upsert of `subject` whose data satisfies `pred`.
async fn upsert_where(sink: &Sink, subject: &str, pred: impl Fn(&Value) -> bool) -> Value {
    let r = sink
        .wait_until(PATIENCE, |r| {
            let e = r.json();
            e["type"] == "profile.upserted" && e["subject"] == subject && pred(&e["data"])
        })
        .await;
    r.verify(&destination_secret()).unwrap();
    r.json()
}

/// The first request after a group removal: an upsert without `vip`.
async fn after_removal(sink: &Sink, before: usize) -> Value {
    let got = sink.wait_for(before + 1, PATIENCE).await;
    let e = got[before].json();
    assert_eq!(e["type"], "profile.upserted", "{e}");
    assert!(e["data"].get("vip").is_none(), "{e}");
    e
}

/// After deactivation: a `skipped` attempt, and nothing more at the sink.
async fn deactivation_is_skipped(hub: &TestHub, sink: &Sink, id: &str, sent_before: usize) {
    let list = hub
        .wait_deliveries(id, "a skipped attempt", |l| {
            l.iter().any(|a| a["outcome"] == "skipped")
        })
        .await;
    let last = list.last().unwrap();
    assert_eq!(last["outcome"], "skipped", "{list:#?}");
    assert_eq!(last["destination"], "crm");
    assert!(
        last["detail"].as_str().is_some_and(|d| d.contains("when")),
        "{last}"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        sink.received().len(),
        sent_before,
        "no upsert after deactivation"
    );
}

async fn okta_sequence_reaches_the_destination(backend: Backend) {
    let (sink, hub) = start(backend).await;
    let okta = |m: &'static str, p: String, b: Option<Value>| {
        let hub = &hub;
        async move { scim(hub, OKTA_TOKEN, m, &p, b).await }
    };
    // Existence check, then create.
    let lookup = format!(
        "/Users?filter={}&startIndex=1&count=100",
        q("userName eq \"ada@example.com\"")
    );
    let (status, body) = okta("GET", lookup.clone(), None).await;
    assert_eq!((status, &body["totalResults"]), (200, &json!(0)), "{body}");
    let user = json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", SYNCD],
        "userName": "ada@example.com",
        "name": {"givenName": "Ada", "familyName": "Lovelace"},
        "emails": [{"primary": true, "value": "Ada@Example.com ", "type": "work"}],
        "displayName": "Ada Lovelace",
        "locale": "en-US",
        "externalId": "00u1ada",
        "groups": [],
        "password": "hunter2!",
        "active": true,
        SYNCD: {"consent": {"marketing_email": "granted"}},
    });
    let (status, body) = okta("POST", "/Users".into(), Some(user.clone())).await;
    assert_eq!(status, 201, "{body}");
    let id = body["id"].as_str().unwrap().to_string();
    let e = upsert_where(&sink, &id, |d| d["first_name"] == "Ada").await;
    assert_eq!(e["data"]["email"], "ada@example.com");
    assert_eq!(e["data"]["last_name"], "Lovelace");
    assert!(e["data"].get("vip").is_none(), "{e}");
    assert!(e["timestamp"].is_string());

    let (_, body) = okta("GET", lookup, None).await;
    assert_eq!(body["totalResults"], 1);
    assert_eq!(body["Resources"][0]["id"], id.as_str());

    // Profile update: PUT of the whole user.
    let mut updated = user.clone();
    updated["name"]["givenName"] = json!("Augusta");
    let (status, body) = okta("PUT", format!("/Users/{id}"), Some(updated)).await;
    assert_eq!(status, 200, "{body}");
    upsert_where(&sink, &id, |d| d["first_name"] == "Augusta").await;

    // Group push: create, add the member, remove it by path filter.
    let (status, group) = okta(
        "POST",
        "/Groups".into(),
        Some(json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "VIP", "members": []})),
    )
    .await;
    assert_eq!(status, 201, "{group}");
    let gid = group["id"].as_str().unwrap().to_string();
    let (status, body) = okta(
        "PATCH",
        format!("/Groups/{gid}"),
        Some(json!({"schemas": [PATCH_OP], "Operations": [
            {"op": "add", "path": "members", "value": [{"value": id, "display": "ada@example.com"}]}
        ]})),
    )
    .await;
    assert!(status == 200 || status == 204, "{status} {body}");
    upsert_where(&sink, &id, |d| d["vip"] == "VIP").await;
    let before = sink.received().len();
    let (status, body) = okta(
        "PATCH",
        format!("/Groups/{gid}"),
        Some(json!({"schemas": [PATCH_OP], "Operations": [
            {"op": "remove", "path": format!("members[value eq \"{id}\"]")}
        ]})),
    )
    .await;
    assert!(status == 200 || status == 204, "{status} {body}");
    let e = after_removal(&sink, before).await;
    assert_eq!(e["data"]["first_name"], "Augusta");
    assert_eq!(e["data"]["email"], "ada@example.com");

    // Deactivation: PATCH replace {"active": false}; never a DELETE.
    let sent = sink.received().len();
    let (status, body) = okta(
        "PATCH",
        format!("/Users/{id}"),
        Some(json!({"schemas": [PATCH_OP], "Operations": [{"op": "replace", "value": {"active": false}}]})),
    )
    .await;
    assert_eq!((status, &body["active"]), (200, &json!(false)), "{body}");
    deactivation_is_skipped(&hub, &sink, &id, sent).await;
}

async fn entra_sequence_reaches_the_destination(backend: Backend) {
    let (sink, hub) = start(backend).await;
    let entra = |m: &'static str, p: String, b: Option<Value>| {
        let hub = &hub;
        async move { scim(hub, ENTRA_TOKEN, m, &p, b).await }
    };
    // Entra probes with a random userName, then looks the user up by externalId.
    let (status, body) = entra(
        "GET",
        format!("/Users?filter={}", q("userName eq \"4f1c1f0a-probe\"")),
        None,
    )
    .await;
    assert_eq!((status, &body["totalResults"]), (200, &json!(0)));
    let by_external = format!("/Users?filter={}", q("externalId eq \"grace\""));
    let (_, body) = entra("GET", by_external.clone(), None).await;
    assert_eq!(body["totalResults"], 0);
    let (status, body) = entra(
        "POST",
        "/Users".into(),
        Some(json!({
            "schemas": [
                "urn:ietf:params:scim:schemas:core:2.0:User",
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User",
                SYNCD,
            ],
            "externalId": "grace",
            "userName": "grace@contoso.example",
            "active": "True",
            "displayName": "Grace Hopper",
            "emails": [{"primary": true, "type": "work", "value": "grace@contoso.example"}],
            "name": {"formatted": "Grace Hopper", "familyName": "Hopper", "givenName": "Grace"},
            "addresses": [{"type": "work", "country": "DE", "primary": true}],
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"costCenter": "gold"},
            SYNCD: {"consent": {"marketing_email": "True"}},
        })),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let id = body["id"].as_str().unwrap().to_string();
    let e = upsert_where(&sink, &id, |d| d["first_name"] == "Grace").await;
    assert_eq!(e["data"]["tier"], "gold");
    assert_eq!(e["data"]["country"], "Germany");
    let (_, body) = entra("GET", by_external, None).await;
    assert_eq!(body["Resources"][0]["id"], id.as_str());

    // Update: PATCH with Entra's capitalised ops.
    let (status, body) = entra(
        "PATCH",
        format!("/Users/{id}"),
        Some(json!({"schemas": [PATCH_OP], "Operations": [
            {"op": "Replace", "path": "name.givenName", "value": "Amazing Grace"},
            {"op": "Add", "path": "emails[type eq \"work\"].value", "value": "grace.hopper@contoso.example"},
        ]})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let e = upsert_where(&sink, &id, |d| d["first_name"] == "Amazing Grace").await;
    assert_eq!(e["data"]["email"], "grace.hopper@contoso.example");

    // Groups: lookup without members, create, add, remove with a value array.
    let (_, body) = entra(
        "GET",
        format!(
            "/Groups?excludedAttributes=members&filter={}",
            q("displayName eq \"VIP\"")
        ),
        None,
    )
    .await;
    assert_eq!(body["totalResults"], 0);
    let (status, group) = entra(
        "POST",
        "/Groups".into(),
        Some(json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "VIP", "externalId": "vip-group"})),
    )
    .await;
    assert_eq!(status, 201, "{group}");
    let gid = group["id"].as_str().unwrap().to_string();
    let (status, body) = entra(
        "PATCH",
        format!("/Groups/{gid}"),
        Some(json!({"schemas": [PATCH_OP], "Operations": [
            {"op": "Add", "path": "members", "value": [{"value": id}]}
        ]})),
    )
    .await;
    assert!(status == 200 || status == 204, "{status} {body}");
    upsert_where(&sink, &id, |d| d["vip"] == "VIP").await;
    let before = sink.received().len();
    let (status, body) = entra(
        "PATCH",
        format!("/Groups/{gid}"),
        Some(json!({"schemas": [PATCH_OP], "Operations": [
            {"op": "Remove", "path": "members", "value": [{"value": id}]}
        ]})),
    )
    .await;
    assert!(status == 200 || status == 204, "{status} {body}");
    let e = after_removal(&sink, before).await;
    assert_eq!(e["data"]["first_name"], "Amazing Grace");

    // Deactivation: Replace active with the string "False".
    let sent = sink.received().len();
    let (status, body) = entra(
        "PATCH",
        format!("/Users/{id}"),
        Some(json!({"schemas": [PATCH_OP], "Operations": [{"op": "Replace", "path": "active", "value": "False"}]})),
    )
    .await;
    assert_eq!((status, &body["active"]), (200, &json!(false)), "{body}");
    deactivation_is_skipped(&hub, &sink, &id, sent).await;

    // Entra deletes after its soft-delete period: an erasure. The CRM got
    // the user before, so it gets the delete, and the PII goes here too.
    let (status, _) = entra("DELETE", format!("/Users/{id}"), None).await;
    assert_eq!(status, 204);
    sink.wait_until(PATIENCE, |r| {
        let e = r.json();
        e["type"] == "profile.deleted" && e["subject"] == id.as_str()
    })
    .await;
    let deadline = Instant::now() + PATIENCE;
    let export = loop {
        let out = hub.cli(&["export", &id]).await;
        assert!(out.status.success(), "{out:?}");
        let export: Value = serde_json::from_str(&out.stdout).unwrap();
        if !export["erasure_receipt"].is_null() {
            break export;
        }
        assert!(Instant::now() < deadline, "no erasure receipt: {export:#}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(export["profile"], json!({}));
    assert_eq!(export["erasure_receipt"]["confirmed"][0][0], "crm");
    let (status, _) = entra("GET", format!("/Users/{id}"), None).await;
    assert_eq!(status, 404);
}
