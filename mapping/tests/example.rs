//! The shipped example file, `mappings/crm-webhook.yaml`: parses, and maps a sample subject to
//! the expected fields.

use std::path::Path;

use mapping::{FieldSource, OnDelete, OnWithdraw, Transform, parse_file};
use serde_json::json;

/// The shipped example, as users copy it (not an inline copy that could drift).
const EXAMPLE: &str = include_str!("../../mappings/crm-webhook.yaml");

const SECRET: &str = "whsec_topsecret_42";

fn env(name: &str) -> Option<String> {
    (name == "CRM_WEBHOOK_SECRET").then(|| SECRET.to_owned())
}

fn ada() -> serde_json::Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "id": "2819c223",
        "userName": "ada",
        "active": true,
        "name": { "givenName": "Ada", "familyName": "Lovelace" },
        "emails": [
            { "value": "ada@work.example", "type": "work" },
            { "value": " Ada@Example.com ", "primary": true }
        ],
        "phoneNumbers": [
            { "value": "+44 20 7946 0000", "type": "work" },
            { "value": "+49 151 2345 6789", "type": "mobile" }
        ],
        "addresses": [{ "country": "DE", "primary": true }],
        "urn:ietf:params:scim:schemas:extension:syncd:2.0:User": { "birthdate": "1815-12-10" }
    })
}

#[test]
fn example_parses() {
    let d = parse_file(Path::new("mappings/crm.yaml"), EXAMPLE, &env)
        .unwrap_or_else(|e| panic!("{e:#?}"));
    assert_eq!(d.name, "crm-webhook");
    assert_eq!(d.connector, "webhook");
    assert!(!d.enabled, "the shipped example stays disabled");
    assert_eq!(d.brand, None);
    assert_eq!(
        d.settings.as_value(),
        &json!({"url": "http://127.0.0.1:9000/hook", "secret": SECRET, "timeout": "10s"})
    );
    assert_eq!(d.consent, ["marketing_email"]);
    assert_eq!(d.on_delete, OnDelete::Delete);
    assert_eq!(d.on_withdraw, OnWithdraw::Suppress);
    assert!(d.when.is_some());
    let targets: Vec<&str> = d.fields.iter().map(|f| f.target.as_str()).collect();
    assert_eq!(
        targets,
        [
            "email",
            "email_sha256",
            "first_name",
            "last_name",
            "phone",
            "tier",
            "country",
            "birthday",
            "source"
        ]
    );
    assert_eq!(
        d.fields[1].transforms,
        [Transform::Trim, Transform::Lowercase, Transform::Sha256]
    );
    assert!(matches!(&d.fields[8].source, FieldSource::Value(v) if v == "ciam"));
    assert_eq!(d.fields[7].consent.as_deref(), Some("analytics"));
    assert_eq!(d.file, Path::new("mappings/crm.yaml"));
    assert_eq!(d.positions.get("settings.url"), Some((8, 8)));
    assert_eq!(d.positions.get("fields.email.transform[1]"), Some((18, 23)));
    assert_eq!(d.positions.get("fields.email"), Some((16, 3)));
    assert_eq!(d.positions.get("connector"), Some((5, 12)));
}

#[test]
fn example_maps_ada() {
    let d = parse_file(Path::new("crm.yaml"), EXAMPLE, &env).unwrap_or_else(|e| panic!("{e:#?}"));
    let subject = ada();
    assert!(d.applies_to(&subject));
    assert!(d.consented(&|p| p == "marketing_email"));
    assert!(!d.consented(&|_| false));

    let all = d.map(&subject, &|_| true);
    assert_eq!(
        serde_json::Value::Object(all),
        json!({
            "email": "ada@example.com",
            "email_sha256": "b5fc85e55755f9e0d030a10ab4429b6b2944855f9a0d60077fe832becbc41d72",
            "first_name": "Ada",
            "last_name": "Lovelace",
            "phone": "+4915123456789",
            "tier": "free",
            "country": "Germany",
            "birthday": "10/12/1815",
            "source": "ciam"
        })
    );
}

#[test]
fn field_consent_leaves_field_out() {
    let d = parse_file(Path::new("crm.yaml"), EXAMPLE, &env).unwrap_or_else(|e| panic!("{e:#?}"));
    let out = d.map(&ada(), &|p| p != "analytics");
    assert!(!out.contains_key("birthday"));
    assert_eq!(out.len(), 8);
}

#[test]
fn when_filters_subjects() {
    let d = parse_file(Path::new("crm.yaml"), EXAMPLE, &env).unwrap_or_else(|e| panic!("{e:#?}"));
    let mut inactive = ada();
    inactive["active"] = json!(false);
    assert!(!d.applies_to(&inactive));
    assert!(!d.applies_to(&json!({"active": true})), "no primary email");
}

#[test]
fn missing_values_fall_back_or_disappear() {
    let d = parse_file(Path::new("crm.yaml"), EXAMPLE, &env).unwrap_or_else(|e| panic!("{e:#?}"));
    let subject = json!({
        "active": true,
        "emails": [{ "value": "x@y.z", "primary": true }],
        "phoneNumbers": [{ "value": "12", "type": "mobile" }],
        "addresses": [{ "country": "FR", "primary": true }],
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": { "costCenter": "gold" }
    });
    let out = serde_json::Value::Object(d.map(&subject, &|_| true));
    // Invalid phone dropped, no name/birthday, unmapped country passes through.
    assert_eq!(
        out,
        json!({
            "email": "x@y.z",
            "email_sha256": "b8e30d1addc62fa00ee5c1c6d01b5e006963c1b178e6b35458daf6c44875468d",
            "tier": "gold",
            "country": "FR",
            "source": "ciam"
        })
    );
}

#[test]
fn fingerprint_tells_versions_apart() {
    let a = parse_file(Path::new("a.yaml"), EXAMPLE, &env).unwrap_or_else(|e| panic!("{e:#?}"));
    let b = parse_file(Path::new("b.yaml"), EXAMPLE, &env).unwrap_or_else(|e| panic!("{e:#?}"));
    let changed = EXAMPLE.replace("tier:", "level:");
    let c = parse_file(Path::new("a.yaml"), &changed, &env).unwrap_or_else(|e| panic!("{e:#?}"));
    assert_eq!(a.fingerprint(), b.fingerprint());
    assert_ne!(a.fingerprint(), c.fingerprint());
    assert_eq!(a.fingerprint().len(), 64);
}

#[test]
fn settings_debug_hides_secret() {
    let d = parse_file(Path::new("crm.yaml"), EXAMPLE, &env).unwrap_or_else(|e| panic!("{e:#?}"));
    let settings = format!("{:?}", d.settings);
    assert!(settings.contains("\"secret\": \"***\""), "{settings}");
    assert!(!settings.contains(SECRET));
    assert!(!format!("{d:?}").contains(SECRET));
    assert!(!format!("{d:#?}").contains(SECRET));
}
