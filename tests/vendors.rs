//! Every vendor connector through the real binary at once: the eight vendor
//! fakes (each checking every request against the vendor's own API
//! description) and the webhook sink behind one hub. A SCIM-provisioned
//! user, a webhook-created one, consent changes by webhook, a brand-scoped
//! destination, a withdrawal, then an erasure whose receipt must wait for
//! the vendors' asynchronous deletions. Both databases.

mod common;

use std::time::{Duration, Instant};

use common::*;
use serde_json::{Value, json};
use vendor_fakes::{
    Forced, Recorded, braze, hubspot, klaviyo, mailchimp, rudderstack, salesforce, segment, shopify,
};

backend_tests!(
    every_vendor_receives_what_its_mapping_and_consent_allow,
    refused_credentials_pause_each_vendor_and_refused_items_are_dead_lettered,
    each_vendors_429_holds_its_destination_and_a_5xx_is_retried,
);

const SYNCD: &str = "urn:ietf:params:scim:schemas:extension:syncd:2.0:User";
/// The SCIM client shares the webhook source's name: the CIAM platform
/// provisions over SCIM and pushes consent as webhooks, one identity space.
const SCIM_TOKEN: &str = "scim-token-of-the-ciam-platform";
/// Polls each asynchronous vendor job stays pending.
const ASYNC_POLLS: u32 = 2;

struct Vendors {
    hubspot: hubspot::Fake,
    salesforce: salesforce::Fake,
    braze: braze::Fake,
    mailchimp: mailchimp::MailchimpFake,
    klaviyo: klaviyo::KlaviyoFake,
    segment: segment::Fake,
    rudderstack: rudderstack::Fake,
    shopify: shopify::Fake,
}

impl Vendors {
    async fn start() -> Vendors {
        let v = Vendors {
            hubspot: hubspot::start().await,
            salesforce: salesforce::start().await,
            braze: braze::start().await,
            mailchimp: mailchimp::start().await,
            klaviyo: klaviyo::start().await,
            segment: segment::start().await,
            rudderstack: rudderstack::start().await,
            shopify: shopify::start().await,
        };
        // The asynchronous deletions take a few status checks to finish.
        v.segment.set_regulation_polls(ASYNC_POLLS);
        v.rudderstack.set_listing_delay(ASYNC_POLLS);
        v.klaviyo.set_deletion_reads(ASYNC_POLLS);
        v.shopify.set_erasure_polls(ASYNC_POLLS);
        // A Shopify Plus shop (1,000 points a second): at the Standard
        // plan's 100 a call is paced 2.5 s apart, beyond these tests'
        // one-second call deadline.
        v.shopify.set_bucket(10_000.0, 10_000.0, 1000.0);
        v
    }

    /// Requests each fake has seen so far.
    fn request_counts(&self) -> Vec<(&'static str, usize)> {
        self.journals()
            .into_iter()
            .map(|(name, j)| (name, j.requests().len()))
            .collect()
    }

    fn journals(&self) -> [(&'static str, &vendor_fakes::Journal); 8] {
        [
            ("hubspot", &self.hubspot.journal),
            ("salesforce", &self.salesforce.journal),
            ("braze", &self.braze.journal),
            ("mailchimp", &self.mailchimp.journal),
            ("klaviyo", &self.klaviyo.journal),
            ("segment", &self.segment.journal),
            ("rudderstack", &self.rudderstack.journal),
            ("shopify", &self.shopify.journal),
        ]
    }

    fn assert_no_violations(&self) {
        self.assert_no_violations_since(&[0; 8]);
    }

    /// Violations each fake has recorded so far.
    fn violation_counts(&self) -> [usize; 8] {
        self.journals().map(|(_, j)| j.violations().len())
    }

    /// No request since `counts` was taken that its vendor would refuse.
    fn assert_no_violations_since(&self, counts: &[usize; 8]) {
        for ((name, journal), seen) in self.journals().into_iter().zip(counts) {
            let v = journal.violations().split_off(*seen);
            assert!(v.is_empty(), "{name}: requests the vendor refuses: {v:#?}");
        }
    }

    /// One mapping file per vendor, pointed at its fake.
    fn mappings(&self) -> Vec<(&'static str, String)> {
        self.mappings_with(|secret| secret.to_string(), |_| "")
    }

    /// The mappings with every credential passed through `credential`, and
    /// `extra_fields(file)` (YAML lines under `fields:`) added to each.
    fn mappings_with(
        &self,
        credential: impl Fn(&str) -> String,
        extra_fields: impl Fn(&str) -> &'static str,
    ) -> Vec<(&'static str, String)> {
        self.base_mappings(&credential)
            .into_iter()
            .map(|(file, yaml)| (file, format!("{yaml}{}", extra_fields(file))))
            .collect()
    }

    fn base_mappings(&self, credential: &dyn Fn(&str) -> String) -> Vec<(&'static str, String)> {
        let email = "    from: emails[primary eq true].value\n    transform: [trim, lowercase]\n";
        vec![
            (
                "hubspot.yaml",
                format!(
                    "destination: hubspot\nconnector: hubspot\nsettings:\n  token: {}\n  base_url: {}\n\
                     consent: [marketing_email]\non_withdraw: unsubscribe\n\
                     fields:\n  email:\n{email}  firstname: {{ from: name.givenName }}\n  lastname: {{ from: name.familyName }}\n\
                     \x20 country:\n    from: addresses[primary eq true].country\n    consent: personalization\n",
                    credential(hubspot::TOKEN),
                    self.hubspot.url
                ),
            ),
            (
                "salesforce.yaml",
                format!(
                    "destination: salesforce\nconnector: salesforce\nsettings:\n  base_url: {}\n  client_id: {}\n  client_secret: {}\n\
                     \x20 external_id_field: Hub_Id__c\n  email_purpose: marketing_email\n\
                     consent: [marketing_email]\non_withdraw: unsubscribe\n\
                     fields:\n  LastName: {{ from: name.familyName, default: Unknown }}\n  FirstName: {{ from: name.givenName }}\n  Email:\n{email}",
                    self.salesforce.url,
                    salesforce::CLIENT_ID,
                    credential(salesforce::CLIENT_SECRET)
                ),
            ),
            (
                "braze.yaml",
                format!(
                    "destination: braze\nconnector: braze\nsettings:\n  api_key: {}\n  base_url: {}\n  email_purpose: marketing_email\n\
                     consent: [marketing_email]\non_withdraw: unsubscribe\n\
                     fields:\n  email:\n{email}  first_name: {{ from: name.givenName }}\n",
                    credential(braze::API_KEY),
                    self.braze.url
                ),
            ),
            (
                "mailchimp.yaml",
                format!(
                    "destination: mailchimp\nconnector: mailchimp\nsettings:\n  api_key: {}\n  list_id: {}\n  base_url: {}\n  email_purpose: marketing_email\n\
                     consent: [marketing_email]\non_withdraw: unsubscribe\n\
                     fields:\n  email:\n{email}  FNAME: {{ from: name.givenName }}\n",
                    credential(mailchimp::API_KEY),
                    mailchimp::LIST_ID,
                    self.mailchimp.base_url
                ),
            ),
            (
                "klaviyo.yaml",
                format!(
                    "destination: klaviyo\nconnector: klaviyo\nsettings:\n  api_key: {}\n  base_url: {}\n  revision: \"{}\"\n  list_id: {}\n  email_purpose: marketing_email\n\
                     consent: [marketing_email]\non_withdraw: unsubscribe\n\
                     fields:\n  email:\n{email}  first_name: {{ from: name.givenName }}\n",
                    credential(klaviyo::API_KEY),
                    self.klaviyo.url,
                    klaviyo::REVISION,
                    klaviyo::LIST_ID
                ),
            ),
            (
                "segment.yaml",
                format!(
                    "destination: segment\nconnector: segment\nsettings:\n  write_key: {}\n  base_url: {}\n  public_api_token: {}\n  public_api_url: {}\n\
                     \x20 consent_categories:\n    analytics: Analytics\n    marketing_email: Marketing\n\
                     consent: [analytics]\non_withdraw: suppress\n\
                     fields:\n  email:\n{email}  firstName: {{ from: name.givenName }}\n",
                    credential(segment::WRITE_KEY),
                    self.segment.url,
                    segment::PUBLIC_API_TOKEN,
                    self.segment.url
                ),
            ),
            (
                "rudderstack.yaml",
                format!(
                    "destination: rudderstack\nconnector: rudderstack\nsettings:\n  write_key: {}\n  base_url: {}\n  api_token: {}\n  regulation_url: {}\n\
                     \x20 consent_ids:\n    analytics: C0002\n    marketing_email: C0004\n\
                     consent: [analytics]\non_withdraw: suppress\n\
                     fields:\n  email:\n{email}  firstName: {{ from: name.givenName }}\n",
                    credential(rudderstack::WRITE_KEY),
                    self.rudderstack.url,
                    rudderstack::API_TOKEN,
                    self.rudderstack.url
                ),
            ),
            (
                "shopify.yaml",
                format!(
                    "destination: shopify\nconnector: shopify\nsettings:\n  shop: acme.myshopify.com\n  access_token: {}\n  base_url: {}\n\
                     \x20 delete_with: data_erasure\n  email_purpose: marketing_email\n  restore_rate: 1000\n\
                     fields:\n  email:\n{email}  firstName: {{ from: name.givenName }}\n  lastName: {{ from: name.familyName }}\n",
                    credential(shopify::ACCESS_TOKEN),
                    self.shopify.url
                ),
            ),
        ]
    }
}

/// The webhook destination: only brand `acme`'s subjects.
fn acme_crm(url: &str) -> String {
    format!(
        "destination: acme-crm\nconnector: webhook\nbrand: acme\nsettings:\n  url: {url}\n  secret: {}\n  timeout: 5s\n\
         consent: [marketing_email]\nfields:\n  email:\n    from: emails[primary eq true].value\n  first_name: {{ from: name.givenName }}\n",
        destination_secret().to_text()
    )
}

fn hub_toml() -> String {
    format!(
        "[scim.clients.{SOURCE}]\ntoken_sha256 = \"{}\"\n\n[brands.acme]\ndescription = \"Acme Outdoor\"\n",
        hex::encode(<sha2::Sha256 as sha2::Digest>::digest(
            SCIM_TOKEN.as_bytes()
        ))
    )
}

async fn scim_post_user(hub: &TestHub, user: Value) -> String {
    let r = hub
        .http
        .post(format!("{}/scim/v2/Users", hub.url))
        .bearer_auth(SCIM_TOKEN)
        .header("content-type", "application/scim+json")
        .body(user.to_string())
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let body: Value = r.json().await.unwrap();
    assert_eq!(status, 201, "{body}");
    body["id"].as_str().unwrap().to_string()
}

/// Polls `check` until it holds; panics with `what` after `within`.
async fn eventually(hub: &TestHub, within: Duration, what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !check() {
        if Instant::now() >= deadline {
            let log = hub.log_text();
            let tail: String = log
                .chars()
                .skip(log.chars().count().saturating_sub(6000))
                .collect();
            panic!("{what} did not happen in time; the hub's log ends:\n{tail}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn export(hub: &TestHub, id: &str) -> Value {
    let out = hub.cli(&["export", id]).await;
    assert!(out.status.success(), "{out:?}");
    serde_json::from_str(&out.stdout).unwrap()
}

async fn every_vendor_receives_what_its_mapping_and_consent_allow(backend: Backend) {
    let vendors = Vendors::start().await;
    let sink = Sink::start().await;
    let mut builder = TestHub::builder(backend)
        .toml(&hub_toml())
        // Vendors name checks minutes or a day ahead; the test cannot wait.
        .delivery("ticket_check_cap", "\"300ms\"")
        .mapping("acme-crm.yaml", acme_crm(&sink.url()));
    for (file, yaml) in vendors.mappings() {
        builder = builder.mapping(file, yaml);
    }
    let hub = builder.start().await;
    let patience = Duration::from_secs(60);

    // Ada: provisioned over SCIM, brand acme, marketing email granted.
    let ada = scim_post_user(
        &hub,
        json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", SYNCD],
            "userName": "ada@example.com",
            "externalId": "ada",
            "name": {"givenName": "Ada", "familyName": "Lovelace"},
            "emails": [{"value": "Ada@Example.com", "primary": true}],
            "addresses": [{"country": "GB", "primary": true}],
            "active": true,
            SYNCD: {"consent": {"marketing_email": "granted"}, "brands": ["acme"]},
        }),
    )
    .await;
    // Bob: from a webhook, no brand, marketing email granted.
    let mut bob_event = profile_event("bob", now_utc());
    bob_event["subject"]["userName"] = json!("bob@example.com");
    bob_event["subject"]["name"] = json!({"givenName": "Bob", "familyName": "Babbage"});
    bob_event["subject"]["emails"] = json!([{"value": "bob@example.com", "primary": true}]);
    bob_event["consent"] = json!({"marketing_email": "granted"});
    let bob = hub.send_ok(&bob_event).await["subject"]
        .as_str()
        .unwrap()
        .to_string();

    // The five marketing tools and Shopify get both; mapped fields only.
    eventually(&hub, patience, "both contacts in HubSpot", || {
        ["ada@example.com", "bob@example.com"]
            .iter()
            .all(|e| vendors.hubspot.contact_by("email", e).is_some())
    })
    .await;
    let contact = vendors
        .hubspot
        .contact_by("email", "ada@example.com")
        .unwrap();
    assert_eq!(contact.properties.get("firstname").unwrap(), "Ada");
    assert!(
        !contact.properties.contains_key("country"),
        "a field whose purpose is not granted stays out: {contact:?}"
    );
    eventually(&hub, patience, "both contacts in Salesforce", || {
        [&ada, &bob].iter().all(|id| {
            vendors
                .salesforce
                .record_by_external_id("Contact", "Hub_Id__c", id)
                .is_some()
        })
    })
    .await;
    eventually(&hub, patience, "both users in Braze", || {
        [&ada, &bob]
            .iter()
            .all(|id| vendors.braze.user(id).is_some())
    })
    .await;
    eventually(&hub, patience, "both members in Mailchimp", || {
        ["ada@example.com", "bob@example.com"].iter().all(|e| {
            vendors
                .mailchimp
                .member(e)
                .is_some_and(|m| m.status == "subscribed")
        })
    })
    .await;
    eventually(&hub, patience, "both profiles in Klaviyo", || {
        ["ada@example.com", "bob@example.com"]
            .iter()
            .all(|e| vendors.klaviyo.profile_by_email(e).is_some())
    })
    .await;
    eventually(
        &hub,
        patience,
        &format!(
            "both customers in Shopify {:?}",
            vendors.shopify.customers()
        ),
        || {
            ["ada@example.com", "bob@example.com"]
                .iter()
                .all(|e| vendors.shopify.customer_by_email(e).is_some())
        },
    )
    .await;
    // The brand's destination gets Ada only.
    let ada_at_crm = sink.wait_for(1, patience).await;
    assert_eq!(ada_at_crm[0].json()["subject"], json!(ada));

    // Analytics is not granted to anyone yet: the CDPs hold nothing.
    assert!(vendors.segment.profiles().is_empty());
    assert!(vendors.rudderstack.profiles().is_empty());

    // Webhook consent changes: Ada grants analytics, Bob withdraws email.
    hub.send_ok(&json!({
        "type": "consent.updated",
        "subject": {"externalId": "ada"},
        "consent": {"analytics": "granted"},
        "occurredAt": now_utc().to_rfc3339(),
    }))
    .await;
    hub.send_ok(&json!({
        "type": "consent.updated",
        "subject": {"externalId": "bob"},
        "consent": {"marketing_email": "denied"},
        "occurredAt": now_utc().to_rfc3339(),
    }))
    .await;
    eventually(&hub, patience, "Ada in both CDPs", || {
        vendors.segment.profile(&ada).is_some() && vendors.rudderstack.profile(&ada).is_some()
    })
    .await;
    let at_segment = vendors.segment.profile(&ada).unwrap();
    assert_eq!(
        at_segment.consent.as_ref().and_then(|c| c.get("Analytics")),
        Some(&json!(true)),
        "Segment's consent agrees with the hub: {at_segment:?}"
    );
    assert!(vendors.segment.profile(&bob).is_none());
    assert!(vendors.rudderstack.profile(&bob).is_none());

    eventually(
        &hub,
        patience,
        "Bob's withdrawal at every marketing tool",
        || {
            let sf = vendors
                .salesforce
                .record_by_external_id("Contact", "Hub_Id__c", &bob)
                .is_some_and(|r| r.fields.get("HasOptedOutOfEmail") == Some(&json!(true)));
            vendors.hubspot.opted_out("bob@example.com")
                && sf
                && vendors
                    .mailchimp
                    .member("bob@example.com")
                    .is_some_and(|m| m.status == "unsubscribed")
                && vendors
                    .klaviyo
                    .profile_by_email("bob@example.com")
                    .is_some_and(|p| p.email_marketing.as_deref() == Some("UNSUBSCRIBED"))
                && vendors
                    .braze
                    .user(&bob)
                    .is_some_and(|u| u.email_subscribe.as_deref() == Some("unsubscribed"))
        },
    )
    .await;
    assert!(
        !vendors.hubspot.opted_out("ada@example.com"),
        "Ada's consent is untouched"
    );

    // Ada asks to be erased (SCIM DELETE by the platform).
    let r = hub
        .http
        .delete(format!("{}/scim/v2/Users/{ada}", hub.url))
        .bearer_auth(SCIM_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 204);
    let deadline = Instant::now() + patience;
    let receipt = loop {
        let e = export(&hub, &ada).await;
        if !e["erasure_receipt"].is_null() {
            break e["erasure_receipt"].clone();
        }
        assert!(Instant::now() < deadline, "no erasure receipt: {e:#}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    // The receipt came only after every asynchronous deletion finished.
    let regulations = vendors.segment.regulations();
    assert!(
        regulations
            .iter()
            .any(|r| r.subject_ids.contains(&ada) && r.polls >= ASYNC_POLLS),
        "Segment's regulation was confirmed before the receipt: {regulations:?}"
    );
    let klaviyo_id = vendors
        .klaviyo
        .deletion_requests()
        .first()
        .cloned()
        .expect("a Klaviyo deletion request");
    assert!(
        vendors
            .klaviyo
            .profiles()
            .iter()
            .all(|p| p.email.as_deref() != Some("ada@example.com")),
        "Klaviyo's deletion ({klaviyo_id:?}) took effect before the receipt"
    );
    assert_eq!(
        vendors.shopify.erased().len(),
        1,
        "Shopify's erasure took effect before the receipt"
    );
    assert!(
        vendors
            .rudderstack
            .regulations()
            .iter()
            .any(|r| r.hidden_for == 0 && !r.canceled),
        "RudderStack's regulation was listed before the receipt"
    );
    let mut confirmed: Vec<String> = receipt["confirmed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c[0].as_str().unwrap().to_string())
        .collect();
    confirmed.sort();
    assert_eq!(
        confirmed,
        [
            "acme-crm",
            "braze",
            "hubspot",
            "klaviyo",
            "mailchimp",
            "rudderstack",
            "salesforce",
            "segment",
            "shopify"
        ],
        "{receipt:#}"
    );
    assert_eq!(receipt["unconfirmed"], json!([]));
    // And at each vendor, Ada is gone.
    assert!(
        vendors
            .hubspot
            .contact_by("email", "ada@example.com")
            .is_none()
    );
    assert!(
        vendors
            .salesforce
            .record_by_external_id("Contact", "Hub_Id__c", &ada)
            .is_none_or(|r| r.deleted)
    );
    assert!(vendors.braze.deleted(&ada));
    assert!(vendors.mailchimp.is_forgotten("ada@example.com"));
    assert!(vendors.segment.profile(&ada).is_none_or(|p| p.deleted));
    assert!(vendors.rudderstack.profile(&ada).is_none_or(|p| p.deleted));
    let at_crm = sink.received();
    assert_eq!(at_crm.last().unwrap().json()["type"], "profile.deleted");
    assert!(
        at_crm.iter().all(|r| r.json()["subject"] == json!(ada)),
        "the acme brand's destination never saw Bob"
    );
    // Bob stays everywhere he was.
    assert!(
        vendors
            .hubspot
            .contact_by("email", "bob@example.com")
            .is_some()
    );
    assert!(
        vendors
            .shopify
            .customer_by_email("bob@example.com")
            .is_some()
    );
    vendors.assert_no_violations();
}

/// Every item of a subject the vendors refuse, each in its own words.
const CAROL: &str = "carol@example.com";

async fn refused_credentials_pause_each_vendor_and_refused_items_are_dead_lettered(
    backend: Backend,
) {
    let vendors = Vendors::start().await;
    // Shopify refuses Carol's phone; Segment and RudderStack her 40 KB
    // nickname (events over 32 KB).
    let extra = |file: &str| match file {
        "shopify.yaml" => "  phone: { from: 'phoneNumbers[type eq \"mobile\"].value' }\n",
        "segment.yaml" | "rudderstack.yaml" => "  nick: { from: nickName }\n",
        _ => "",
    };
    let wrong = |secret: &str| {
        // Same shape (a Mailchimp key keeps its data centre), wrong value.
        match secret.rsplit_once('-') {
            Some((_, dc)) if dc.len() <= 4 => format!("{}-{dc}", "f".repeat(32)),
            _ => format!("wrong{secret}"),
        }
    };
    let mut builder = TestHub::builder(backend)
        .webhooks("max_body", "\"128KiB\"")
        .delivery("probe_interval", "\"1s\"")
        .delivery("ticket_check_cap", "\"300ms\"");
    for (file, yaml) in vendors.mappings_with(wrong, extra) {
        builder = builder.mapping(file, yaml);
    }
    let hub = builder.start().await;
    let names = [
        "braze",
        "hubspot",
        "klaviyo",
        "mailchimp",
        "rudderstack",
        "salesforce",
        "segment",
        "shopify",
    ];
    let person = |ext: &str, email: &str, phone: &str| {
        let mut e = profile_event(ext, now_utc());
        e["subject"]["userName"] = json!(email);
        e["subject"]["emails"] = json!([{"value": email, "primary": true}]);
        e["subject"]["phoneNumbers"] = json!([{"value": phone, "type": "mobile"}]);
        e["consent"] = json!({"marketing_email": "granted", "analytics": "granted"});
        e
    };
    let ada = hub
        .send_ok(&person("ada", "ada@example.com", "+441632960001"))
        .await["subject"]
        .as_str()
        .unwrap()
        .to_string();

    // Refused credentials: every vendor's destination pauses, none retries.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let list = destinations(&hub).await;
        let paused: Vec<&str> = names
            .iter()
            .copied()
            .filter(|n| {
                list.iter().any(|d| {
                    d["name"] == *n && d["state"] == "paused" && d["paused_by"] == "vendor"
                })
            })
            .collect();
        if paused.len() == names.len() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "paused so far: {paused:?}\n{list:#?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let calls_at_pause = vendors.request_counts();
    tokio::time::sleep(Duration::from_secs(3)).await;
    for ((name, before), (_, after)) in calls_at_pause.iter().zip(vendors.request_counts()) {
        // One probe a second (a probe may take two calls: token, then data).
        assert!(
            after - before <= 10,
            "{name}: {} calls in 3 s while paused",
            after - before
        );
    }

    // While paused: Carol (refused everywhere) and Dave come in.
    let mut carol_event = person("carol", CAROL, "0151 2345");
    carol_event["subject"]["nickName"] = json!("x".repeat(40 * 1024));
    let carol = hub.send_ok(&carol_event).await["subject"]
        .as_str()
        .unwrap()
        .to_string();
    let dave = hub
        .send_ok(&person("dave", "dave@example.com", "+441632960002"))
        .await["subject"]
        .as_str()
        .unwrap()
        .to_string();
    vendors.hubspot.fail_input(
        CAROL,
        "VALIDATION_ERROR",
        "Property values were not valid: email domain refused",
    );
    vendors.salesforce.fail_record(
        &carol,
        "FIELD_CUSTOM_VALIDATION_EXCEPTION",
        "Contacts from this domain are refused",
    );
    vendors
        .braze
        .fail_external_id(&carol, "Invalid email address for this app group");
    vendors.mailchimp.reject_email(
        CAROL,
        "carol@example.com looks fake or invalid, please enter a real email address.",
    );
    vendors
        .klaviyo
        .refuse_email(CAROL, "This email is suppressed and cannot be imported");

    // Credentials fixed: the probes succeed and everything missed arrives.
    for (file, yaml) in vendors.mappings_with(|s| s.to_string(), extra) {
        hub.write_mapping(file, &yaml);
    }
    let patience = Duration::from_secs(60);
    for email in ["ada@example.com", "dave@example.com"] {
        eventually(&hub, patience, "Ada and Dave at every vendor", || {
            vendors.hubspot.contact_by("email", email).is_some()
                && vendors.mailchimp.member(email).is_some()
                && vendors.klaviyo.profile_by_email(email).is_some()
                && vendors.shopify.customer_by_email(email).is_some()
        })
        .await;
    }
    eventually(
        &hub,
        patience,
        "Ada and Dave at the id-keyed vendors",
        || {
            [&ada, &dave].iter().all(|id| {
                vendors
                    .salesforce
                    .record_by_external_id("Contact", "Hub_Id__c", id)
                    .is_some()
                    && vendors.braze.user(id).is_some()
                    && vendors.segment.profile(id).is_some()
                    && vendors.rudderstack.profile(id).is_some()
            })
        },
    )
    .await;
    let list = destinations(&hub).await;
    for name in names {
        let d = list.iter().find(|d| d["name"] == name).unwrap();
        assert_eq!(d["state"], "active", "{d:#}");
    }
    // Until each destination resumed, its fake rightly noted the refused
    // credentials of every probe; after that nothing may be refused.
    let refused_credentials = vendors.violation_counts();

    // Carol: one dead letter per vendor, with the vendor's own words.
    let expected = [
        ("hubspot", "email domain refused"),
        ("salesforce", "Contacts from this domain are refused"),
        ("braze", "Invalid email address for this app group"),
        ("mailchimp", "looks fake or invalid"),
        ("klaviyo", "This email is suppressed"),
        ("shopify", "Phone is invalid"),
        ("segment", "32 KB"),
        ("rudderstack", "32 KB"),
    ];
    let deadline = Instant::now() + patience;
    loop {
        let out = hub.cli(&["dlq", "list"]).await;
        assert!(out.status.success(), "{out:?}");
        let dead: Vec<Value> = serde_json::from_str(&out.stdout).unwrap();
        let missing: Vec<&str> = expected
            .iter()
            .filter(|(name, words)| {
                !dead.iter().any(|d| {
                    d["destination"] == *name
                        && d["subject_id"] == json!(carol)
                        && d["detail"].as_str().is_some_and(|t| t.contains(words))
                })
            })
            .map(|(name, _)| *name)
            .collect();
        if missing.is_empty() {
            assert!(
                dead.iter().all(|d| d["subject_id"] == json!(carol)),
                "only Carol is dead-lettered: {dead:#?}"
            );
            assert!(
                !out.stdout.contains(CAROL),
                "a dead letter's detail carries no email address"
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no dead letter with the vendor's message for {missing:?}: {dead:#?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    vendors.assert_no_violations_since(&refused_credentials);
}

async fn destinations(hub: &TestHub) -> Vec<Value> {
    let out = hub.cli(&["destinations"]).await;
    assert!(out.status.success(), "{out:?}");
    serde_json::from_str(&out.stdout).unwrap()
}

/// A forced 429 in the vendor's own words, then a 503, then the vendor's
/// normal answer: the destination sends nothing until the vendor's wait is
/// over, retries the 503, and the change arrives.
async fn each_vendors_429_holds_its_destination_and_a_5xx_is_retried(backend: Backend) {
    let vendors = Vendors::start().await;
    let unavailable = || {
        Forced::reply(
            503,
            &[("content-type", "text/plain")],
            "Service Unavailable",
        )
    };
    // (vendor, its data path, the 429 it sends, the wait it asks for)
    let cases: [(&str, &vendor_fakes::Journal, &str, Forced, Duration); 6] = [
        (
            "hubspot",
            &vendors.hubspot.journal,
            "/crm/v3/objects/contacts",
            Forced::reply(
                429,
                &[
                    ("content-type", "application/json"),
                    ("x-hubspot-ratelimit-interval-milliseconds", "3000"),
                    ("x-hubspot-ratelimit-max", "100"),
                    ("x-hubspot-ratelimit-remaining", "0"),
                ],
                r#"{"status":"error","message":"You have reached your ten secondly limit.","errorType":"RATE_LIMIT","correlationId":"x","policyName":"TEN_SECONDLY_ROLLING"}"#,
            ),
            Duration::from_secs(3),
        ),
        (
            "mailchimp",
            &vendors.mailchimp.journal,
            "/3.0/lists",
            Forced::reply(
                429,
                &[
                    ("retry-after", "3"),
                    ("content-type", "application/problem+json"),
                ],
                r#"{"type":"https://mailchimp.com/developer/marketing/docs/errors/","title":"Too Many Requests","status":429,"detail":"You have exceeded the limit of 10 simultaneous connections.","instance":"x"}"#,
            ),
            Duration::from_secs(3),
        ),
        (
            "klaviyo",
            &vendors.klaviyo.journal,
            "/api/profile",
            Forced::reply(
                429,
                &[
                    ("retry-after", "3"),
                    ("content-type", "application/vnd.api+json"),
                ],
                r#"{"errors":[{"id":"x","status":429,"code":"throttled","title":"Request was throttled.","detail":"Request was throttled. Expected available in 3 seconds."}]}"#,
            ),
            Duration::from_secs(3),
        ),
        (
            "segment",
            &vendors.segment.journal,
            "/v1/batch",
            Forced::reply(
                429,
                &[("retry-after", "3"), ("x-ratelimit-reset", "3")],
                r#"{"code":"rate_limit_exceeded","message":"Too many requests"}"#,
            ),
            Duration::from_secs(3),
        ),
        (
            "rudderstack",
            &vendors.rudderstack.journal,
            "/v1/batch",
            Forced::reply(
                429,
                &[
                    ("retry-after", "3"),
                    ("content-type", "text/plain; charset=utf-8"),
                ],
                "Max Requests Limit reached",
            ),
            Duration::from_secs(3),
        ),
        (
            "braze",
            &vendors.braze.journal,
            "/users/track",
            Forced::reply(
                429,
                &[
                    ("content-type", "application/json"),
                    ("x-ratelimit-limit", "3000"),
                    ("x-ratelimit-remaining", "0"),
                    (
                        "x-ratelimit-reset",
                        &(chrono::Utc::now().timestamp() + 8).to_string(),
                    ),
                ],
                r#"{"message":"Rate limit exceeded"}"#,
            ),
            // Braze names the reset as a Unix second, 8 s after the force:
            // at least 3 s after the hub's first call.
            Duration::from_secs(3),
        ),
    ];
    for (_, journal, _, throttled, _) in &cases {
        journal.force([throttled.clone(), unavailable()]);
    }
    let mut builder = TestHub::builder(backend);
    for (file, yaml) in vendors.mappings() {
        builder = builder.mapping(file, yaml);
    }
    let hub = builder.start().await;
    let mut e = profile_event("ada", now_utc());
    e["consent"] = json!({"marketing_email": "granted", "analytics": "granted"});
    let ada = hub.send_ok(&e).await["subject"]
        .as_str()
        .unwrap()
        .to_string();

    let patience = Duration::from_secs(60);
    eventually(&hub, patience, "Ada at every throttled vendor", || {
        vendors
            .hubspot
            .contact_by("email", "ada@example.com")
            .is_some()
            && vendors.mailchimp.member("ada@example.com").is_some()
            && vendors
                .klaviyo
                .profile_by_email("ada@example.com")
                .is_some()
            && vendors.segment.profile(&ada).is_some()
            && vendors.rudderstack.profile(&ada).is_some()
            && vendors.braze.user(&ada).is_some()
    })
    .await;
    for (name, journal, path, _, wait) in &cases {
        let calls: Vec<Recorded> = journal
            .requests()
            .into_iter()
            .filter(|r| r.path.starts_with(path) && r.method != "GET")
            .collect();
        assert!(
            calls.len() >= 3,
            "{name}: the 429, the 503 and the delivery: {:?}",
            calls.iter().map(|c| &c.path).collect::<Vec<_>>()
        );
        let gap = calls[1].at.duration_since(calls[0].at);
        assert!(
            gap + Duration::from_millis(100) >= *wait,
            "{name}: the next call came {gap:?} after the 429 that asked for {wait:?}"
        );
    }
    let out = hub.cli(&["dlq", "list"]).await;
    assert_eq!(out.stdout.trim(), "[]", "nothing dead-lettered: {out:?}");
    vendors.assert_no_violations();
}
