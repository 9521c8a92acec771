//! SCIM clients that read `/Schemas` and write what it allows (as
//! conformance suites and some IdP connectors do): every attribute published
//! as writable can be written with POST, PUT and PATCH and read back as
//! written; brands carry canonicalValues; values the schemas refuse get 400
//! and change nothing. SQLite and PostgreSQL.

mod common;

use common::router::{Hub, assert_error, patch_body};
use serde_json::{Map, Value, json};

const USER_URN: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
const GROUP_URN: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
const SYNCD: &str = "urn:ietf:params:scim:schemas:extension:syncd:2.0:User";
const BASE: &str = "http://hub.test/scim/v2";

router_tests!(
    every_writable_user_attribute_round_trips,
    every_writable_group_attribute_round_trips,
    brands_are_published_as_canonical_values_and_others_refused,
    wrong_types_are_refused_and_change_nothing,
);

/// The published schemas, by id.
async fn schemas(h: &Hub) -> Map<String, Value> {
    let r = h.okta("GET", "/scim/v2/Schemas", None).await;
    assert_eq!(r.status, 200);
    r.body["Resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["id"].as_str().unwrap().to_string(), s.clone()))
        .collect()
}

/// Whether a client may write this attribute and expect it back.
fn writable(a: &Value) -> bool {
    a["mutability"] != "readOnly" && a["returned"] != "never"
}

/// A value a client would write for `a`, from its published type and
/// canonical values; `n` varies it. `member` names a User a reference may
/// point at.
fn sample(a: &Value, n: usize, member: &str) -> Value {
    let one = |a: &Value| -> Value {
        if let Some(values) = a["canonicalValues"].as_array() {
            return values[n % values.len()].clone();
        }
        let name = a["name"].as_str().unwrap();
        match a["type"].as_str().unwrap() {
            "boolean" => json!(n.is_multiple_of(2)),
            "integer" => json!(n),
            "decimal" => json!(n as f64 + 0.5),
            "dateTime" => json!(format!("2026-0{}-0{}T10:00:00Z", 1 + n % 9, 1 + n % 9)),
            "binary" => json!("aGVsbG8="),
            "reference" if name == "$ref" => json!(format!("{BASE}/Users/{member}")),
            "reference" => json!(format!("https://example.com/{name}/{n}")),
            "complex" => {
                let mut out = Map::new();
                for sub in a["subAttributes"].as_array().into_iter().flatten() {
                    if writable(sub) {
                        out.insert(sub["name"].as_str().unwrap().into(), sample(sub, n, member));
                    }
                }
                if a["subAttributes"].is_null() {
                    // A complex attribute without published sub-attributes: free.
                    out.insert("note".into(), json!(format!("note-{n}")));
                }
                Value::Object(out)
            }
            "string" if name == "value" && a["caseExact"] == true => json!(member),
            _ => json!(format!("{name}-{n}@example.com")),
        }
    };
    if a["multiValued"] == true {
        let mut item = one(a);
        if let Some(obj) = item.as_object_mut()
            && obj.contains_key("primary")
        {
            obj.insert("primary".into(), json!(true));
        }
        json!([item])
    } else {
        one(a)
    }
}

/// (schema id, attribute definition) of every writable attribute of a resource.
fn writable_attributes(defs: &Map<String, Value>, ids: &[&str]) -> Vec<(String, Value)> {
    let mut out = Vec::new();
    for id in ids {
        for a in defs[*id]["attributes"].as_array().unwrap() {
            if writable(a) {
                out.push((id.to_string(), a.clone()));
            }
        }
    }
    out
}

/// Sets `value` for attribute `name` of schema `id` in a resource body.
fn put_in(body: &mut Value, core: &str, id: &str, name: &str, value: Value) {
    if id == core {
        body[name] = value;
    } else {
        if body.get(id).is_none() {
            body[id] = json!({});
        }
        body[id][name] = value;
    }
}

fn get_in<'a>(body: &'a Value, core: &str, id: &str, name: &str) -> &'a Value {
    if id == core {
        &body[name]
    } else {
        &body[id][name]
    }
}

/// A PATCH path for the attribute.
fn path_of(core: &str, id: &str, name: &str) -> String {
    if id == core {
        name.to_string()
    } else {
        format!("{id}:{name}")
    }
}

/// `got` holds `sent`: the same, or for objects (and lists of them) at least
/// every member sent with the same value (the hub adds `$ref`, `type` and
/// `display` to group members).
fn holds(got: &Value, sent: &Value) -> bool {
    match (got, sent) {
        (Value::Object(g), Value::Object(s)) => s
            .iter()
            .all(|(k, v)| g.get(k).is_some_and(|gv| holds(gv, v))),
        (Value::Array(g), Value::Array(s)) => {
            g.len() == s.len() && g.iter().zip(s).all(|(g, s)| holds(g, s))
        }
        _ => got == sent,
    }
}

/// What a removed attribute reads as: absent, except consent, which is a
/// decision kept on record: removing it withdraws it, and it reads `denied`.
fn reads_as_removed(got: &Value, name: &str) -> bool {
    match name {
        "consent" => got
            .as_object()
            .is_some_and(|m| m.values().all(|v| v == "denied")),
        "brandConsent" => got.as_object().is_some_and(|brands| {
            brands
                .values()
                .all(|p| p.as_object().unwrap().values().all(|v| v == "denied"))
        }),
        _ => got.is_null(),
    }
}

/// PATCHes one `op` of `value` at `path` (asserting 200), then GETs the resource.
async fn patch_then_read(h: &Hub, uri: &str, op: &str, path: &str, value: &Value) -> Value {
    let r = h
        .okta(
            "PATCH",
            uri,
            patch_body(json!([{"op": op, "path": path, "value": value}])),
        )
        .await;
    assert_eq!(r.status, 200, "{op} {path}: {}", r.body);
    h.okta("GET", uri, None).await.body
}

async fn every_writable_user_attribute_round_trips(h: Hub) {
    let defs = schemas(&h).await;
    let member = h.create_user("manager@example.com").await;
    let attrs = writable_attributes(&defs, &[USER_URN, ENTERPRISE, SYNCD]);
    assert!(attrs.len() > 20, "{attrs:?}");
    let body = |n: usize| {
        let mut b = json!({"schemas": [USER_URN, ENTERPRISE, SYNCD]});
        for (id, a) in &attrs {
            let name = a["name"].as_str().unwrap();
            put_in(&mut b, USER_URN, id, name, sample(a, n, &member));
        }
        b
    };
    let check = |r: &Value, sent: &Value, what: &str| {
        for (id, a) in &attrs {
            let name = a["name"].as_str().unwrap();
            let (got, want) = (
                get_in(r, USER_URN, id, name),
                get_in(sent, USER_URN, id, name),
            );
            assert!(
                holds(got, want),
                "{what} {id}:{name}: sent {want}, read {got}"
            );
        }
    };
    // POST with every writable attribute, then read back.
    let sent = body(1);
    let r = h.okta("POST", "/scim/v2/Users", Some(sent.clone())).await;
    assert_eq!(r.status, 201, "{}", r.body);
    check(&r.body, &sent, "POST answer");
    let uri = format!("/scim/v2/Users/{}", r.body["id"].as_str().unwrap());
    check(&h.okta("GET", &uri, None).await.body, &sent, "after POST");
    // PUT with other values.
    let sent = body(2);
    let r = h.okta("PUT", &uri, Some(sent.clone())).await;
    assert_eq!(r.status, 200, "{}", r.body);
    check(&h.okta("GET", &uri, None).await.body, &sent, "after PUT");
    // PATCH each attribute: remove, add, replace, remove.
    for (id, a) in &attrs {
        let name = a["name"].as_str().unwrap();
        let path = path_of(USER_URN, id, name);
        let required = a["required"] == true;
        if !required {
            let r = h
                .okta(
                    "PATCH",
                    &uri,
                    patch_body(json!([{"op": "remove", "path": path}])),
                )
                .await;
            assert_eq!(r.status, 200, "remove {path}: {}", r.body);
            let got = get_in(&h.okta("GET", &uri, None).await.body, USER_URN, id, name).clone();
            assert!(reads_as_removed(&got, name), "removed {path}, read {got}");
        }
        for (op, n) in [("add", 3), ("replace", 4)] {
            let value = sample(a, n, &member);
            let read = patch_then_read(&h, &uri, op, &path, &value).await;
            let got = get_in(&read, USER_URN, id, name).clone();
            // After the remove, an add leaves exactly the added value.
            assert!(holds(&got, &value), "{op} {path}: sent {value}, read {got}");
        }
    }
}

async fn every_writable_group_attribute_round_trips(h: Hub) {
    let defs = schemas(&h).await;
    let member = h.create_user("member@example.com").await;
    let other = h.create_user("other@example.com").await;
    let attrs = writable_attributes(&defs, &[GROUP_URN]);
    let names: Vec<&str> = attrs
        .iter()
        .map(|(_, a)| a["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["displayName", "members", "externalId"]);
    let body = |n: usize, m: &str| {
        let mut b = json!({"schemas": [GROUP_URN]});
        for (_, a) in &attrs {
            b[a["name"].as_str().unwrap()] = sample(a, n, m);
        }
        b
    };
    let check = |r: &Value, sent: &Value, what: &str| {
        for name in &names {
            assert!(
                holds(&r[name], &sent[name]),
                "{what} {name}: sent {}, read {}",
                sent[name],
                r[name]
            );
        }
    };
    let sent = body(1, &member);
    let r = h.okta("POST", "/scim/v2/Groups", Some(sent.clone())).await;
    assert_eq!(r.status, 201, "{}", r.body);
    let uri = format!("/scim/v2/Groups/{}", r.body["id"].as_str().unwrap());
    check(&h.okta("GET", &uri, None).await.body, &sent, "after POST");
    let sent = body(2, &other);
    assert_eq!(h.okta("PUT", &uri, Some(sent.clone())).await.status, 200);
    check(&h.okta("GET", &uri, None).await.body, &sent, "after PUT");
    for (_, a) in &attrs {
        let name = a["name"].as_str().unwrap();
        if a["required"] != true {
            let r = h
                .okta(
                    "PATCH",
                    &uri,
                    patch_body(json!([{"op": "remove", "path": name}])),
                )
                .await;
            assert_eq!(r.status, 200, "remove {name}: {}", r.body);
            let got = &h.okta("GET", &uri, None).await.body[name];
            assert!(
                got.is_null() || got == &json!([]),
                "removed {name}, read {got}"
            );
        }
        for (op, n) in [("add", 3), ("replace", 4)] {
            let value = sample(a, n, &member);
            let read = patch_then_read(&h, &uri, op, name, &value).await;
            let got = &read[name];
            assert!(holds(got, &value), "{op} {name}: sent {value}, read {got}");
        }
    }
}

async fn brands_are_published_as_canonical_values_and_others_refused(h: Hub) {
    let defs = schemas(&h).await;
    let brands = defs[SYNCD]["attributes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == "brands")
        .unwrap()
        .clone();
    assert_eq!(brands["canonicalValues"], json!(["acme"]), "{brands}");
    assert_eq!(brands["multiValued"], true);
    let r = h
        .okta(
            "POST",
            "/scim/v2/Users",
            Some(json!({"userName": "b@example.com", SYNCD: {"brands": ["acme"]}})),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let uri = format!("/scim/v2/Users/{}", r.body["id"].as_str().unwrap());
    let undeclared = json!(["acme", "globex"]);
    assert_error(
        &h.okta(
            "POST",
            "/scim/v2/Users",
            Some(json!({"userName": "c@example.com", SYNCD: {"brands": undeclared}})),
        )
        .await,
        400,
        Some("invalidValue"),
    );
    assert_error(
        &h.okta(
            "PUT",
            &uri,
            Some(json!({"userName": "b@example.com", SYNCD: {"brands": undeclared}})),
        )
        .await,
        400,
        Some("invalidValue"),
    );
    assert_error(
        &h.okta(
            "PATCH",
            &uri,
            patch_body(
                json!([{"op": "add", "path": format!("{SYNCD}:brands"), "value": ["globex"]}]),
            ),
        )
        .await,
        400,
        Some("invalidValue"),
    );
    let u = h.okta("GET", &uri, None).await.body;
    assert_eq!(u[SYNCD]["brands"], json!(["acme"]));
    assert_eq!(u["meta"]["version"], "W/\"1\"", "nothing changed");
}

async fn wrong_types_are_refused_and_change_nothing(h: Hub) {
    let id = h.create_user("typed@example.com").await;
    let uri = format!("/scim/v2/Users/{id}");
    let before = h.state.store.stats().await.unwrap();
    for (attr, value) in [
        ("emails", json!("x")),
        ("emails", json!(["x"])),
        ("emails", json!([{"value": 1}])),
        ("active", json!("yes")),
        ("userName", json!(1)),
        ("name", json!("Ada")),
        (
            "phoneNumbers",
            json!([{"value": "+1", "primary": "sometimes"}]),
        ),
        ("addresses", json!([{"country": ["DE"]}])),
    ] {
        let mut body = json!({"userName": "new@example.com"});
        body[attr] = value.clone();
        assert_error(
            &h.okta("POST", "/scim/v2/Users", Some(body.clone())).await,
            400,
            Some("invalidValue"),
        );
        body["userName"] = json!("typed@example.com");
        if attr != "userName" {
            assert_error(
                &h.okta("PUT", &uri, Some(body)).await,
                400,
                Some("invalidValue"),
            );
        }
        for op in ["add", "replace"] {
            let r = h
                .okta(
                    "PATCH",
                    &uri,
                    patch_body(json!([{"op": op, "path": attr, "value": value}])),
                )
                .await;
            assert_error(&r, 400, Some("invalidValue"));
        }
        // No path: the value object carries the attribute.
        let r = h
            .okta(
                "PATCH",
                &uri,
                patch_body(json!([{"op": "replace", "value": {attr: value}}])),
            )
            .await;
        assert_error(&r, 400, Some("invalidValue"));
    }
    let u = h.okta("GET", &uri, None).await.body;
    assert_eq!(u["meta"]["version"], "W/\"1\"", "{u}");
    assert!(u.get("emails").is_none(), "{u}");
    let after = h.state.store.stats().await.unwrap();
    assert_eq!(
        (after.changes, after.pending_jobs),
        (before.changes, before.pending_jobs)
    );
    let list = h.okta("GET", "/scim/v2/Users", None).await.body;
    assert_eq!(list["totalResults"], 1, "no user was created: {list}");
}
