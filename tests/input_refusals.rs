//! Bad input never gets in, on SQLite and PostgreSQL alike: a NUL character
//! anywhere (webhook fields, SCIM bodies, filters, path segments, admin
//! subject ids) gets a 4xx, never a 5xx; webhook subjects are held to the
//! same published schemas, read-only and write-only rules as SCIM; an event
//! from the future is refused. Every refusal changes nothing.

mod common;

use axum::body::Body;
use axum::http::Request;
use common::router::{Hub, Reply};
use serde_json::{Value, json};

router_tests!(
    nul_in_any_webhook_string_is_422,
    nul_in_scim_bodies_filters_and_paths_is_4xx,
    nul_in_admin_subject_ids_and_bodies_is_4xx,
    webhook_subjects_are_checked_against_the_published_schemas,
    webhook_password_is_never_stored_and_groups_id_meta_refused,
    webhook_from_the_future_is_refused,
);

const TABLES: [&str; 6] = [
    "subjects",
    "changes",
    "delivery_jobs",
    "inbound_messages",
    "consents",
    "scim_groups",
];

const NUL: &str = "fz\u{0}nul";

fn event(external_id: &str) -> Value {
    let mut e = common::profile_event(external_id, common::now_utc());
    e["evidence"] = json!({"form": "signup-7", "ip": "192.0.2.1"});
    e["brands"] = json!(["acme"]);
    e
}

/// Every path (as JSON pointer) to a string value, and to each object key.
fn string_slots(v: &Value, at: String, out: &mut Vec<(String, bool)>) {
    match v {
        Value::String(_) => out.push((at, false)),
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                string_slots(item, format!("{at}/{i}"), out);
            }
        }
        Value::Object(map) => {
            for (k, item) in map {
                let p = format!("{at}/{}", k.replace('~', "~0").replace('/', "~1"));
                out.push((p.clone(), true));
                string_slots(item, p, out);
            }
        }
        _ => {}
    }
}

/// `v` with a NUL put into the string (or the key) at `pointer`.
fn with_nul(v: &Value, pointer: &str, key: bool) -> Value {
    let mut out = v.clone();
    if key {
        let (parent, last) = pointer.rsplit_once('/').unwrap();
        let holder = out.pointer_mut(parent).unwrap().as_object_mut().unwrap();
        let item = holder.remove(last).unwrap();
        holder.insert(format!("{last}\u{0}"), item);
    } else {
        *out.pointer_mut(pointer).unwrap() = json!(NUL);
    }
    out
}

fn assert_4xx(r: &Reply, what: &str) {
    assert!(
        r.status.is_client_error(),
        "{what}: {} {}",
        r.status,
        r.body
    );
}

async fn unchanged(h: &Hub, before: &[(String, i64)], what: &str) {
    assert_eq!(h.counts(&TABLES).await, before, "{what} changed something");
}

async fn nul_in_any_webhook_string_is_422(h: Hub) {
    let good = event("cust-nul");
    let mut slots = Vec::new();
    string_slots(&good, String::new(), &mut slots);
    assert!(slots.len() > 25, "{slots:?}");
    let before = h.counts(&TABLES).await;
    for (pointer, key) in &slots {
        let bad = with_nul(&good, pointer, *key);
        let r = h.webhook(&bad).await;
        assert_eq!(r.status, 422, "NUL at {pointer} (key: {key}): {}", r.body);
        assert!(
            r.body["detail"].as_str().unwrap().contains("NUL character"),
            "{}",
            r.body
        );
    }
    unchanged(&h, &before, "a webhook with NUL").await;
    // The same event without NUL goes in.
    assert_eq!(h.webhook(&good).await.status, 202);
}

async fn scim(h: &Hub, method: &str, uri: &str, body: Option<Value>) -> Reply {
    let r = h.okta(method, uri, body).await;
    assert_4xx(&r, &format!("{method} {uri}"));
    assert_eq!(r.headers["content-type"], "application/scim+json", "{uri}");
    r
}

async fn nul_in_scim_bodies_filters_and_paths_is_4xx(h: Hub) {
    let user = json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": "nul@example.com", "externalId": "nul-1",
        "name": {"givenName": "Ada", "familyName": "Lovelace"},
        "emails": [{"value": "nul@example.com", "type": "work", "primary": true}],
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"department": "R&D"},
    });
    let created = h.okta("POST", "/scim/v2/Users", Some(user.clone())).await;
    assert_eq!(created.status, 201);
    let id = created.body["id"].as_str().unwrap().to_string();
    let uri = format!("/scim/v2/Users/{id}");
    let before = h.counts(&TABLES).await;
    let mut slots = Vec::new();
    string_slots(&user, String::new(), &mut slots);
    for (pointer, key) in &slots {
        let bad = with_nul(&user, pointer, *key);
        scim(&h, "POST", "/scim/v2/Users", Some(bad.clone())).await;
        scim(&h, "PUT", &uri, Some(bad)).await;
    }
    let patch = |ops: Value| {
        Some(
            json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": ops}),
        )
    };
    for ops in [
        json!([{"op": "replace", "path": "nickName", "value": NUL}]),
        json!([{"op": "add", "value": {"nickName": NUL}}]),
        json!([{"op": "add", "path": "emails", "value": [{"value": NUL}]}]),
        // A NUL reaching a stored value through the filter Entra builds elements from.
        json!([{"op": "replace", "path": "emails[type eq \"x\\u0000y\"].value", "value": "a@b"}]),
    ] {
        scim(&h, "PATCH", &uri, patch(ops)).await;
    }
    scim(
        &h,
        "POST",
        "/scim/v2/Groups",
        Some(json!({"displayName": NUL})),
    )
    .await;
    scim(
        &h,
        "POST",
        "/scim/v2/Groups",
        Some(json!({"displayName": "g", "members": [{"value": NUL}]})),
    )
    .await;
    scim(
        &h,
        "POST",
        "/scim/v2/Bulk",
        Some(json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"],
            "Operations": [{"method": "POST", "path": "/Users", "bulkId": "a", "data": {"userName": NUL}}]})),
    )
    .await;
    for filter in [
        "userName eq \"\\u0000\"",
        "emails[value eq \"a\\u0000\"]",
        "externalId eq \"x\\u0000\" or userName pr",
    ] {
        let q: String = url::form_urlencoded::byte_serialize(filter.as_bytes()).collect();
        let r = scim(&h, "GET", &format!("/scim/v2/Users?filter={q}"), None).await;
        assert_eq!(r.body["scimType"], "invalidFilter", "{filter}: {}", r.body);
        scim(&h, "GET", &format!("/scim/v2/Groups?filter={q}"), None).await;
        scim(
            &h,
            "POST",
            "/scim/v2/Users/.search",
            Some(json!({"filter": filter})),
        )
        .await;
        scim(
            &h,
            "POST",
            "/scim/v2/.search",
            Some(json!({"filter": filter})),
        )
        .await;
    }
    scim(
        &h,
        "GET",
        "/scim/v2/Users?filter=userName%20eq%20%22%00%22",
        None,
    )
    .await;
    for segment in ["%00", "a%00b", &format!("{id}%00")] {
        for kind in ["Users", "Groups"] {
            let u = format!("/scim/v2/{kind}/{segment}");
            scim(&h, "GET", &u, None).await;
            scim(
                &h,
                "PUT",
                &u,
                Some(json!({"userName": "x@example.com", "displayName": "x"})),
            )
            .await;
            scim(
                &h,
                "PATCH",
                &u,
                patch(json!([{"op": "replace", "path": "nickName", "value": "x"}])),
            )
            .await;
            scim(&h, "DELETE", &u, None).await;
        }
        scim(&h, "GET", &format!("/scim/v2/Schemas/{segment}"), None).await;
        scim(
            &h,
            "GET",
            &format!("/scim/v2/ResourceTypes/{segment}"),
            None,
        )
        .await;
    }
    unchanged(&h, &before, "SCIM input with NUL").await;
    let u = h.okta("GET", &uri, None).await.body;
    assert_eq!(u["meta"]["version"], "W/\"1\"");
}

async fn nul_in_admin_subject_ids_and_bodies_is_4xx(h: Hub) {
    assert_eq!(h.webhook(&event("dd-1")).await.status, 202);
    let before = h.counts(&TABLES).await;
    let admin = |method: &'static str, uri: String, body: Option<Value>| {
        let h = &h;
        async move {
            let r = h.admin(method, &uri, body).await;
            assert_4xx(&r, &format!("{method} {uri}"));
            assert_eq!(
                r.headers["content-type"], "application/problem+json",
                "{uri}"
            );
        }
    };
    for key in ["%00", "ciam:%00", "ciam:dd-1%00", "%00:dd-1"] {
        admin("GET", format!("/admin/subjects/{key}/export"), None).await;
        admin("GET", format!("/admin/subjects/{key}/consent"), None).await;
        admin("POST", format!("/admin/subjects/{key}/erase"), None).await;
        admin("GET", format!("/admin/deliveries?subject={key}"), None).await;
    }
    admin("GET", "/admin/dead-letters?destination=%00".into(), None).await;
    admin("POST", "/admin/destinations/%00/backfill".into(), None).await;
    for body in [
        json!({"destination": NUL}),
        json!({"id": NUL}),
        json!({"all": true, "destination\u{0}": "x"}),
    ] {
        admin("POST", "/admin/dead-letters/replay".into(), Some(body)).await;
    }
    let req = Request::builder()
        .method("POST")
        .uri("/webhooks/%00")
        .header("content-type", "application/json")
        .body(Body::from("{}"))
        .unwrap();
    assert_4xx(&h.send(req).await, "POST /webhooks/%00");
    unchanged(&h, &before, "admin input with NUL").await;
    // The subject itself is still reachable by its source id.
    let r = h
        .admin("GET", "/admin/subjects/ciam:dd-1/export", None)
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
}

async fn webhook_subjects_are_checked_against_the_published_schemas(h: Hub) {
    let before = h.counts(&TABLES).await;
    let enterprise = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
    let syncd = "urn:ietf:params:scim:schemas:extension:syncd:2.0:User";
    for (attr, value, path) in [
        ("emails", json!("x"), "subject.emails"),
        ("emails", json!(["x"]), "subject.emails[0]"),
        ("emails", json!([{"value": 1}]), "subject.emails[0].value"),
        ("active", json!("yes"), "subject.active"),
        ("userName", json!(1), "subject.userName"),
        ("name", json!("Ada"), "subject.name"),
        (
            "name",
            json!({"givenName": ["Ada"]}),
            "subject.name.givenName",
        ),
        ("phoneNumbers", json!([null]), "subject.phoneNumbers[0]"),
        (
            "addresses",
            json!([{"primary": "yes"}]),
            "subject.addresses[0].primary",
        ),
        ("externalId", json!(7), "subject.externalId"),
        (
            enterprise,
            json!("x"),
            "subject.urn:ietf:params:scim:schemas:extension:enterprise:2.0:User",
        ),
        (
            syncd,
            json!({"brands": ["globex"]}),
            "subject.urn:ietf:params:scim:schemas:extension:syncd:2.0:User:brands[0]",
        ),
        (
            syncd,
            json!({"consent": {"analytics": "granted"}}),
            "subject.urn:ietf:params:scim:schemas:extension:syncd:2.0:User:consent",
        ),
    ] {
        let mut e = event("typed-1");
        e["subject"][attr] = value.clone();
        let r = h.webhook(&e).await;
        assert_eq!(r.status, 422, "{attr} = {value}: {}", r.body);
        let detail = r.body["detail"].as_str().unwrap();
        assert!(detail.starts_with(path), "{attr} = {value}: {detail}");
        assert!(!detail.contains("globex"), "no value echoed: {detail}");
    }
    unchanged(&h, &before, "a mistyped webhook").await;
    // null still removes an attribute; unknown (custom) attributes pass as sent.
    let mut e = event("typed-1");
    e["subject"]["nickName"] = Value::Null;
    e["subject"]["loyaltyTier"] = json!({"level": 3});
    let r = h.webhook(&e).await;
    assert_eq!(r.status, 202, "{}", r.body);
}

async fn webhook_password_is_never_stored_and_groups_id_meta_refused(h: Hub) {
    let mut e = event("pw-1");
    e["subject"]["password"] = json!("hunter2-secret");
    e["subject"]["PassWord"] = json!("hunter3-secret");
    let r = h.webhook(&e).await;
    assert_eq!(r.status, 202, "{}", r.body);
    let id = r.body["subject"].as_str().unwrap().to_string();
    let export = h
        .admin("GET", &format!("/admin/subjects/{id}/export"), None)
        .await;
    assert_eq!(export.status, 200);
    let text = export.body.to_string();
    assert!(!text.contains("hunter"), "password stored: {text}");
    let report = h.state.store.subject_report(&id).await.unwrap().unwrap();
    assert!(
        !report
            .profile
            .to_string()
            .to_lowercase()
            .contains("password")
    );
    // Read-only sub-attributes are dropped, as SCIM drops them.
    let mut e = event("pw-1");
    e["subject"]["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"] =
        json!({"manager": {"value": "m-1", "displayName": "Someone"}});
    assert_eq!(h.webhook(&e).await.status, 202);
    let report = h.state.store.subject_report(&id).await.unwrap().unwrap();
    let manager =
        &report.profile["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"]["manager"];
    assert_eq!(manager, &json!({"value": "m-1"}));
    let before = h.counts(&TABLES).await;
    for attr in ["groups", "Groups", "id", "meta"] {
        let mut e = event("pw-1");
        e["subject"][attr] = json!([{"value": "g-1", "display": "VIP"}]);
        let r = h.webhook(&e).await;
        assert_eq!(r.status, 422, "{attr}: {}", r.body);
        assert!(
            r.body["detail"].as_str().unwrap().contains("read-only"),
            "{}",
            r.body
        );
    }
    unchanged(&h, &before, "a webhook writing read-only attributes").await;
    // groups stay what SCIM made them: none here.
    let report = h.state.store.subject_report(&id).await.unwrap().unwrap();
    assert!(report.profile.get("groups").is_none());
}

async fn webhook_from_the_future_is_refused(h: Hub) {
    let before = h.counts(&TABLES).await;
    for at in [
        "9999-12-31T23:59:59Z".to_string(),
        (common::now_utc() + chrono::Duration::minutes(10)).to_rfc3339(),
    ] {
        let mut e = event("future-1");
        e["occurredAt"] = json!(at);
        let r = h.webhook(&e).await;
        assert_eq!(r.status, 422, "{at}: {}", r.body);
        assert!(
            r.body["detail"].as_str().unwrap().contains("future"),
            "{}",
            r.body
        );
    }
    unchanged(&h, &before, "an event from the future").await;
    // Within the tolerance (clocks differ a little): accepted, and a later
    // real update is not made stale by it for long.
    let mut e = event("future-1");
    e["occurredAt"] = json!((common::now_utc() + chrono::Duration::minutes(2)).to_rfc3339());
    assert_eq!(h.webhook(&e).await.status, 202);
}
