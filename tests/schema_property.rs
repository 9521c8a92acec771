//! Property: bodies generated from the hub's own published schema data
//! (`/Schemas`, i.e. `Published`), valid and invalid, as webhooks and as
//! SCIM requests. Valid ones are accepted and read back equal; invalid ones
//! (a value of the wrong type or shape, an undeclared canonical value, a
//! NUL) get a 4xx and change nothing; nothing is ever answered 5xx.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};

use common::router::{Hub, hub};
use hub::scim_model::schema::Published;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use serde_json::{Map, Value, json};

const USER_URN: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
const SYNCD: &str = "urn:ietf:params:scim:schemas:extension:syncd:2.0:User";
const TABLES: [&str; 4] = ["subjects", "changes", "consents", "inbound_messages"];

/// The schemas as the test hub publishes them (its brands and purposes).
fn published() -> Published {
    let purposes: Vec<String> = [
        "marketing_email",
        "marketing_sms",
        "analytics",
        "personalization",
        "advertising",
    ]
    .map(String::from)
    .to_vec();
    Published::new(&purposes, &["acme".to_string()])
}

/// Attributes a client may write and read back (not readOnly, returned).
fn writable(a: &Value) -> bool {
    a["mutability"] != "readOnly" && a["returned"] != "never"
}

fn text() -> BoxedStrategy<String> {
    "[a-zA-Z0-9 ._@é中-]{1,12}".boxed()
}

/// A valid value for one attribute definition.
fn valid(def: &Value) -> BoxedStrategy<Value> {
    let single = single(def);
    if def["multiValued"] != true {
        return single;
    }
    let complex = def["type"] == "complex";
    proptest::collection::vec(single, 1..3)
        .prop_map(move |mut items| {
            // One primary at most (the hub keeps the last one set).
            for item in items.iter_mut().skip(1) {
                if complex && let Some(o) = item.as_object_mut() {
                    o.remove("primary");
                }
            }
            Value::Array(items)
        })
        .boxed()
}

fn single(def: &Value) -> BoxedStrategy<Value> {
    if let Some(values) = def["canonicalValues"].as_array() {
        return proptest::sample::select(values.clone()).boxed();
    }
    match def["type"].as_str().unwrap_or("string") {
        "boolean" => any::<bool>().prop_map(Value::from).boxed(),
        "integer" => any::<i32>().prop_map(Value::from).boxed(),
        "decimal" => (-1000i32..1000).prop_map(|n| json!(n as f64 / 4.0)).boxed(),
        "dateTime" => (0i64..2_000_000_000)
            .prop_map(|s| json!(chrono::DateTime::from_timestamp(s, 0).unwrap().to_rfc3339()))
            .boxed(),
        "reference" => "[a-z]{1,8}"
            .prop_map(|p| json!(format!("https://x.example/{p}")))
            .boxed(),
        "complex" => {
            let subs: Vec<Value> = def["subAttributes"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|s| writable(s))
                .cloned()
                .collect();
            if subs.is_empty() {
                // Free-form (custom attributes).
                return proptest::collection::btree_map("[a-z]{1,6}", text(), 1..3)
                    .prop_map(|m| json!(m))
                    .boxed();
            }
            object_of(subs)
        }
        _ => text().prop_map(Value::from).boxed(),
    }
}

/// An object holding a non-empty subset of `defs`, each with a valid value.
fn object_of(defs: Vec<Value>) -> BoxedStrategy<Value> {
    let n = defs.len();
    let parts: Vec<BoxedStrategy<(String, Value)>> = defs
        .iter()
        .map(|d| {
            let name = d["name"].as_str().unwrap().to_string();
            valid(d).prop_map(move |v| (name.clone(), v)).boxed()
        })
        .collect();
    (
        parts,
        proptest::sample::subsequence((0..n).collect::<Vec<_>>(), 1..=n),
    )
        .prop_map(|(values, keep)| {
            let map: Map<String, Value> = keep.into_iter().map(|i| values[i].clone()).collect();
            Value::Object(map)
        })
        .boxed()
}

/// A value of the wrong type or shape for `def`.
fn invalid(def: &Value) -> BoxedStrategy<Value> {
    let nul = Just(json!("bad\u{0}value")).boxed();
    if def["multiValued"] == true {
        return prop_oneof![
            Just(json!("not-a-list")),
            Just(json!(7)),
            Just(json!([null])),
            nul
        ]
        .boxed();
    }
    let wrong = match def["type"].as_str().unwrap_or("string") {
        "boolean" => prop_oneof![Just(json!("yes")), Just(json!(1))].boxed(),
        "complex" => prop_oneof![Just(json!("x")), Just(json!([1]))].boxed(),
        _ if def["canonicalValues"].is_array() => Just(json!("not-declared")).boxed(),
        "integer" | "decimal" => Just(json!("12")).boxed(),
        _ => prop_oneof![Just(json!(1)), Just(json!(true)), Just(json!({"a": 1}))].boxed(),
    };
    prop_oneof![wrong, nul].boxed()
}

/// The writable attributes of a schema, minus those a case sets itself.
fn attrs_of(p: &Published, urn: &str, skip: &[&str]) -> Vec<Value> {
    p.get(urn).unwrap()["attributes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| writable(a) && !skip.contains(&a["name"].as_str().unwrap()))
        .cloned()
        .collect()
}

/// A SCIM User body (core, enterprise and hub extension) or a webhook
/// subject (without the hub extension's consent: webhooks carry it apart).
fn user_attrs(webhook: bool) -> BoxedStrategy<Map<String, Value>> {
    let p = published();
    let core = attrs_of(&p, USER_URN, &["userName", "externalId"]);
    let enterprise = attrs_of(
        &p,
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User",
        &[],
    );
    let syncd_skip: &[&str] = if webhook {
        &["consent", "brandConsent"]
    } else {
        &[]
    };
    let syncd = attrs_of(&p, SYNCD, syncd_skip);
    (
        object_of(core),
        proptest::option::of(object_of(enterprise)),
        proptest::option::of(object_of(syncd)),
    )
        .prop_map(|(core, enterprise, syncd)| {
            let mut m = core.as_object().unwrap().clone();
            if let Some(e) = enterprise {
                m.insert(
                    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User".into(),
                    e,
                );
            }
            if let Some(s) = syncd {
                m.insert(SYNCD.into(), s);
            }
            m
        })
        .boxed()
}

/// One attribute (by path: top level, or inside an extension) of `attrs`
/// given a wrong value.
fn corrupted(webhook: bool) -> BoxedStrategy<(Map<String, Value>, String)> {
    let p = published();
    let mut targets: Vec<(Option<String>, Value)> = attrs_of(&p, USER_URN, &["externalId"])
        .into_iter()
        .map(|d| (None, d))
        .collect();
    for a in attrs_of(&p, SYNCD, &["consent", "brandConsent", "attributes"]) {
        targets.push((Some(SYNCD.to_string()), a));
    }
    let bad: Vec<BoxedStrategy<(Option<String>, String, Value)>> = targets
        .into_iter()
        .map(|(urn, d)| {
            let name = d["name"].as_str().unwrap().to_string();
            invalid(&d)
                .prop_map(move |v| (urn.clone(), name.clone(), v))
                .boxed()
        })
        .collect();
    (user_attrs(webhook), proptest::strategy::Union::new(bad))
        .prop_map(|(mut attrs, (urn, name, value))| {
            let label = match &urn {
                None => {
                    attrs.insert(name.clone(), value);
                    name
                }
                Some(urn) => {
                    let ext = attrs.entry(urn.clone()).or_insert_with(|| json!({}));
                    ext[&name] = value;
                    format!("{urn}:{name}")
                }
            };
            (attrs, label)
        })
        .boxed()
}

static SEQ: AtomicUsize = AtomicUsize::new(0);

fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", SEQ.fetch_add(1, Ordering::Relaxed))
}

/// Every attribute written reads back equal.
fn assert_read_back(
    got: &Value,
    sent: &Map<String, Value>,
    what: &str,
) -> Result<(), TestCaseError> {
    for (k, v) in sent {
        if k == "schemas" {
            continue;
        }
        match (v, got.get(k)) {
            (Value::Object(inner), Some(Value::Object(held))) if k.starts_with("urn:") => {
                for (ik, iv) in inner {
                    prop_assert_eq!(held.get(ik), Some(iv), "{} {}:{}", what, k, ik);
                }
            }
            _ => prop_assert_eq!(got.get(k), Some(v), "{} {}", what, k),
        }
    }
    Ok(())
}

async fn webhook_case(
    h: &Hub,
    attrs: Map<String, Value>,
    bad: Option<&str>,
) -> Result<(), TestCaseError> {
    let before = h.counts(&TABLES).await;
    let mut subject = attrs.clone();
    let ext = unique("prop");
    subject.insert("externalId".into(), json!(ext));
    let event = json!({
        "type": "profile.upserted",
        "subject": subject,
        "consent": {"marketing_email": "granted"},
        "occurredAt": common::now_utc().to_rfc3339(),
    });
    let r = h.webhook(&event).await;
    prop_assert!(r.status.as_u16() < 500, "5xx: {} {}", r.status, r.body);
    match bad {
        Some(label) => {
            prop_assert_eq!(r.status.as_u16(), 422, "{} refused: {}", label, r.body);
            prop_assert_eq!(
                h.counts(&TABLES).await,
                before,
                "refused {} changed something",
                label
            );
        }
        None => {
            prop_assert_eq!(r.status.as_u16(), 202, "{}", r.body);
            let id = r.body["subject"].as_str().unwrap();
            let report = h.state.store.subject_report(id).await.unwrap().unwrap();
            assert_read_back(&report.profile, &subject, "webhook")?;
        }
    }
    Ok(())
}

async fn scim_case(
    h: &Hub,
    attrs: Map<String, Value>,
    bad: Option<&str>,
) -> Result<(), TestCaseError> {
    let before = h.counts(&TABLES).await;
    let mut body = attrs.clone();
    body.entry("userName")
        .or_insert_with(|| json!(format!("{}@example.com", unique("user"))));
    body.insert("schemas".into(), json!([USER_URN]));
    let r = h
        .okta("POST", "/scim/v2/Users", Some(Value::Object(body.clone())))
        .await;
    prop_assert!(r.status.as_u16() < 500, "5xx: {} {}", r.status, r.body);
    match bad {
        Some(label) => {
            prop_assert_eq!(r.status.as_u16(), 400, "{} refused: {}", label, r.body);
            prop_assert_eq!(
                h.counts(&TABLES).await,
                before,
                "refused {} changed something",
                label
            );
            // The same value through PATCH on an existing user: refused too.
            let id = h
                .okta(
                    "POST",
                    "/scim/v2/Users",
                    Some(json!({"userName": format!("{}@example.com", unique("base"))})),
                )
                .await
                .body["id"]
                .as_str()
                .unwrap()
                .to_string();
            let mid = h.counts(&TABLES).await;
            let mut value = attrs.clone();
            value.remove("schemas");
            let p = h
                .okta(
                    "PATCH",
                    &format!("/scim/v2/Users/{id}"),
                    Some(
                        json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                        "Operations": [{"op": "replace", "value": value}]}),
                    ),
                )
                .await;
            prop_assert!(
                p.status.is_client_error(),
                "{} PATCH: {} {}",
                label,
                p.status,
                p.body
            );
            prop_assert_eq!(h.counts(&TABLES).await, mid);
        }
        None => {
            prop_assert_eq!(r.status.as_u16(), 201, "{}", r.body);
            assert_read_back(&r.body, &body, "POST answer")?;
            let uri = format!("/scim/v2/Users/{}", r.body["id"].as_str().unwrap());
            assert_read_back(&h.okta("GET", &uri, None).await.body, &body, "GET")?;
        }
    }
    Ok(())
}

fn run(postgres: bool, cases: u32) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let h = rt.block_on(hub(postgres));
    let config = Config {
        cases,
        max_shrink_iters: 32,
        failure_persistence: None,
        ..Config::default()
    };
    let check = |strategy: BoxedStrategy<(Map<String, Value>, Option<String>)>, scim: bool| {
        let mut runner = TestRunner::new(config.clone());
        runner
            .run(&strategy, |(attrs, bad)| {
                rt.block_on(async {
                    if scim {
                        scim_case(&h, attrs, bad.as_deref()).await
                    } else {
                        webhook_case(&h, attrs, bad.as_deref()).await
                    }
                })
            })
            .unwrap_or_else(|e| panic!("{e}"));
    };
    for scim in [false, true] {
        let valid = user_attrs(!scim).prop_map(|a| (a, None)).boxed();
        let invalid = corrupted(!scim)
            .prop_map(|(a, label)| (a, Some(label)))
            .boxed();
        check(valid, scim);
        check(invalid, scim);
    }
}

#[test]
fn generated_bodies_valid_accepted_invalid_refused_never_5xx_on_sqlite() {
    run(false, 96);
}

#[test]
#[cfg_attr(
    not(hub_pg),
    ignore = "set HUB_TEST_DATABASE_URL to run the PostgreSQL variant"
)]
fn generated_bodies_valid_accepted_invalid_refused_never_5xx_on_postgres() {
    run(true, 32);
}
