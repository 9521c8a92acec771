//! Every vendor description loads, and every JSON request schema in it
//! compiles: a schema that does not compile would let requests through.

use vendor_fakes::openapi::{RequestParts, Spec};

const SPECS: &[&str] = &[
    "hubspot/contacts-v3.json",
    "klaviyo/klaviyo-profiles-privacy.served.json",
    "mailchimp/marketing-lists-members.served.json",
    "rudderstack/gateway-openapi.yaml",
    "braze/braze-users.derived.yaml",
    "segment/segment-tracking.derived.yaml",
    "salesforce/salesforce-rest.derived.yaml",
];

#[test]
fn every_request_schema_compiles() {
    for name in SPECS {
        let spec = Spec::load(name);
        let pointers = spec.request_schema_pointers();
        assert!(!pointers.is_empty(), "{name}: no JSON request bodies");
        for p in pointers {
            let errors = spec.validate(&p, &serde_json::json!(null));
            assert!(
                !errors.iter().any(|e| e.contains("does not compile")),
                "{name}: {errors:?}"
            );
        }
    }
}

#[test]
fn hubspot_batch_upsert_is_checked_against_the_published_schema() {
    let spec = Spec::load("hubspot/contacts-v3.json");
    let headers = vec![("content-type".to_string(), "application/json".to_string())];
    let check = |body: &str| {
        spec.check(&RequestParts {
            method: "POST",
            path: "/crm/v3/objects/contacts/batch/upsert",
            query: &[],
            headers: &headers,
            body: body.as_bytes(),
        })
    };
    let good = r#"{"inputs":[{"id":"ada@example.com","idProperty":"email","properties":{"firstname":"Ada"}}]}"#;
    assert!(check(good).is_empty(), "{:?}", check(good));
    let bad = r#"{"inputs":[{"idProperty":"email","properties":{"firstname":"Ada"}}]}"#;
    assert!(
        !check(bad).is_empty(),
        "an input without id must not validate"
    );
}

#[test]
fn shopify_admin_schema_loads_and_checks_queries_and_variables() {
    let schema = vendor_fakes::shopify::admin_schema();
    let vars = |v: serde_json::Value| v.as_object().cloned().unwrap();
    let create = "mutation Up($c0: CustomerInput!) { c0: customerCreate(input: $c0) { customer { id } userErrors { field message } } }";
    let ok = schema.check(
        create,
        None,
        &vars(serde_json::json!({"c0": {"email": "ada@example.com", "tags": ["hub"],
            "metafields": [{"namespace": "hub", "key": "tier", "type": "single_line_text_field", "value": "gold"}],
            "emailMarketingConsent": {"marketingState": "SUBSCRIBED", "marketingOptInLevel": "SINGLE_OPT_IN"}}})),
    );
    assert!(ok.is_ok(), "{:?}", ok.err());
    // customerSet is not in 2025-01.
    let set = "mutation { customerSet(input: {email: \"a@b.c\"}) { customer { id } } }";
    assert!(schema.check(set, None, &Default::default()).is_err());
    // A state Shopify only reports, never takes, still validates as an enum
    // value; an unknown one does not.
    let consent = "mutation($i: CustomerEmailMarketingConsentUpdateInput!) { customerEmailMarketingConsentUpdate(input: $i) { userErrors { field message } } }";
    let bad = schema.check(
        consent,
        None,
        &vars(
            serde_json::json!({"i": {"customerId": "gid://shopify/Customer/1",
            "emailMarketingConsent": {"marketingState": "OPTED_OUT"}}}),
        ),
    );
    assert!(bad.is_err());
    let unknown_field =
        "mutation($c: CustomerInput!) { customerCreate(input: $c) { customer { nickname } } }";
    assert!(
        schema
            .check(unknown_field, None, &vars(serde_json::json!({"c": {}})))
            .is_err()
    );
}
