use super::*;

fn item(fields: Value) -> Item {
    Item {
        subject_id: "0190-hub-id".into(),
        delivery_id: "d".into(),
        action: Action::Upsert(fields.as_object().cloned().unwrap_or_default()),
        identity: Default::default(),
        record_id: None,
        consent: Default::default(),
    }
}

#[test]
fn fields_become_attributes_location_and_properties() {
    let attrs = KlaviyoConnector::attributes(&item(json!({
        "email": "ada@example.com",
        "first_name": "Ada",
        "location.city": "London",
        "location": {"country": "GB"},
        "loyalty_tier": "gold",
        "external_id": "ignored",
        "zip_code_is_not_location": 1,
    })));
    assert_eq!(
        Value::Object(attrs),
        json!({
            "email": "ada@example.com",
            "first_name": "Ada",
            "external_id": "0190-hub-id",
            "location": {"city": "London", "country": "GB"},
            "properties": {"loyalty_tier": "gold", "zip_code_is_not_location": 1},
        })
    );
}

#[test]
fn revisions_are_dates_with_an_optional_suffix() {
    assert!(is_revision("2026-07-15"));
    assert!(is_revision("2024-10-15.pre"));
    assert!(!is_revision("2026-7-15"));
    assert!(!is_revision("latest"));
}

#[test]
fn filter_literals_are_escaped() {
    assert_eq!(quoted(r#"a"b\c"#), r#""a\"b\\c""#);
}
