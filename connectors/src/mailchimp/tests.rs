use super::*;

#[test]
fn subscriber_hash_is_md5_of_the_lowercased_address() {
    // The example of Mailchimp's "Manage subscribers" guide.
    assert_eq!(
        subscriber_hash("Urist.McVankab@freddiesjokes.com"),
        "62eeb292278cc15f5817cb78f7790b08"
    );
    assert!(is_subscriber_hash(&subscriber_hash("a@b.co")));
    assert!(!is_subscriber_hash("not-a-hash"));
}

#[test]
fn the_data_centre_is_the_suffix_of_the_key() {
    assert_eq!(data_centre("0123abcd-us6"), Some("us6"));
    assert_eq!(data_centre("0123abcd-US6"), None);
    assert_eq!(data_centre("0123abcd"), None);
    assert_eq!(data_centre("0123abcd-"), None);
    let c = MailchimpConnector::from_settings(
        &serde_json::json!({"api_key": "0123abcd-us21", "list_id": "a1b2c3"}),
    )
    .unwrap();
    assert_eq!(c.base_url, "https://us21.api.mailchimp.com/3.0");
}

#[test]
fn status_follows_the_email_purpose() {
    let c = MailchimpConnector::from_settings(
        &serde_json::json!({"api_key": "k-us6", "list_id": "a1", "email_purpose": "newsletter"}),
    )
    .unwrap();
    let mut item = Item {
        subject_id: "s".into(),
        delivery_id: "d".into(),
        action: Action::Upsert(Default::default()),
        identity: Default::default(),
        record_id: None,
        consent: Default::default(),
    };
    assert_eq!(c.status_for(&item), MemberStatus::Transactional);
    item.consent.insert("marketing_email".into(), true);
    assert_eq!(c.status_for(&item), MemberStatus::Transactional);
    item.consent.insert("newsletter".into(), false);
    assert_eq!(c.status_for(&item), MemberStatus::Unsubscribed);
    item.consent.insert("newsletter".into(), true);
    assert_eq!(c.status_for(&item), MemberStatus::Subscribed);
}
