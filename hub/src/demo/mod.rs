//! `hub demo` and `hub mappings preview`.

pub mod bench;
pub mod bench_connector;
pub mod bench_engine;
pub mod bench_scim;
pub mod bench_workers;
pub mod local;
pub mod rss;
pub mod sink;

use crate::delivery::plan::{Plan, plan};
use crate::destinations::ActiveDestination;
use crate::store::SubjectState;

/// What `dest` would receive for `profile` with `grants` granted, as JSON.
pub fn preview(
    dest: &ActiveDestination,
    profile: serde_json::Value,
    grants: &[String],
) -> serde_json::Value {
    let subject = SubjectState {
        id: "preview".into(),
        profile,
        version: 0,
        deleted: false,
        erasing: false,
        consents: grants
            .iter()
            .map(|g| (g.clone(), String::new(), true))
            .collect(),
        received: Default::default(),
    };
    match plan(Some(dest), Some(&subject), false) {
        Plan::Send(action) => {
            serde_json::json!({ "destination": dest.mapping.name, "action": action })
        }
        Plan::Withdraw { action, missing } => serde_json::json!({
            "destination": dest.mapping.name, "action": action, "withdrawn": { "missing_consent": missing }
        }),
        Plan::Suppressed { missing } => {
            serde_json::json!({ "destination": dest.mapping.name, "suppressed": { "missing_consent": missing } })
        }
        Plan::Skip(why) => serde_json::json!({ "destination": dest.mapping.name, "skipped": why }),
    }
}

/// The sample mapping: the built-in sink as a consented marketing destination.
const DEMO_MAPPING: &str = r#"destination: demo-crm
connector: webhook
settings:
  url: SINK_URL
  secret: SINK_SECRET
  timeout: 5s
consent: [marketing_email]
on_delete: delete
when: active eq true
fields:
  external_id: { from: externalId }
  email:
    from: emails[primary eq true].value
    transform: [trim, lowercase]
  first_name: { from: name.givenName }
  last_name: { from: name.familyName }
  phone:
    from: phoneNumbers[type eq "mobile"].value
    transform: [e164]
  country:
    from: addresses[primary eq true].country
    map: { DE: Germany, GB: United Kingdom, FI: Finland, US: United States }
"#;

/// Starts the hub in this process on a temporary SQLite file, pushes sample
/// changes through signed webhooks and narrates what each destination got.
pub async fn run() -> anyhow::Result<std::process::ExitCode> {
    use std::time::Duration;

    use anyhow::Context;
    use serde_json::json;

    let sink_secret = local::random_secret();
    let mut sink = sink::Sink::start(sink_secret.clone(), &["cust-linus"], true).await?;
    let mapping = DEMO_MAPPING
        .replace("SINK_URL", &sink.url())
        .replace("SINK_SECRET", &sink_secret.to_text());
    let hub = local::LocalHub::start("sqlite", &[("demo-crm.yaml", mapping)], |raw| {
        raw.delivery.retry_base = Duration::from_secs(1);
        raw.delivery.poll_interval = Duration::from_millis(100);
    })
    .await?;
    println!(
        "hub demo: hub on {}, database {}",
        hub.url, hub.database_url
    );
    println!(
        "          destination demo-crm -> built-in sink {} (needs consent: marketing_email)\n",
        sink.url()
    );

    let store = hub.store.clone();
    let client = reqwest::Client::new();
    let post = |id: &str, event: serde_json::Value| {
        hub.post_webhook(&client, id, event.to_string()).send()
    };
    let person = |ext: &str,
                  given: &str,
                  family: &str,
                  email: &str,
                  country: &str,
                  consent: &str,
                  at: &str| {
        json!({
            "type": "profile.upserted",
            "subject": {
                "externalId": ext, "userName": email, "active": true,
                "name": {"givenName": given, "familyName": family},
                "emails": [{"value": format!(" {email} "), "primary": true}],
                "phoneNumbers": [{"value": "+44 20 7946 0000", "type": "mobile"}],
                "addresses": [{"country": country, "primary": true}]
            },
            "consent": {"marketing_email": consent},
            "occurredAt": at
        })
    };
    let steps: Vec<(&str, &str, serde_json::Value)> = vec![
        (
            "msg_demo_1",
            "Ada signs up and opts in to marketing email",
            person(
                "cust-ada",
                "Ada",
                "Lovelace",
                "Ada@Example.com",
                "GB",
                "granted",
                "2026-11-23T10:00:00Z",
            ),
        ),
        (
            "msg_demo_2",
            "Grace signs up but declines marketing email",
            person(
                "cust-grace",
                "Grace",
                "Hopper",
                "grace@example.com",
                "US",
                "denied",
                "2026-11-23T10:00:01Z",
            ),
        ),
        (
            "msg_demo_3",
            "Linus signs up and opts in (the sink will refuse his first delivery)",
            person(
                "cust-linus",
                "Linus",
                "Torvalds",
                "linus@example.com",
                "FI",
                "granted",
                "2026-11-23T10:00:02Z",
            ),
        ),
        (
            "msg_demo_3",
            "the same webhook arrives again (a retry by the source)",
            person(
                "cust-linus",
                "Linus",
                "Torvalds",
                "linus@example.com",
                "FI",
                "granted",
                "2026-11-23T10:00:02Z",
            ),
        ),
        (
            "msg_demo_4",
            "Ada changes her surname",
            person(
                "cust-ada",
                "Ada",
                "King",
                "ada@example.com",
                "GB",
                "granted",
                "2026-11-23T10:05:00Z",
            ),
        ),
    ];
    for (id, what, event) in &steps {
        let resp = post(id, event.clone())
            .await
            .context("posting to the hub")?;
        let status = resp.status();
        let body: serde_json::Value = resp.json().await.unwrap_or_default();
        let dup = if body["duplicate"] == true {
            " (duplicate: nothing changed)"
        } else {
            ""
        };
        println!("-> {what}: webhook {id} answered {status}{dup}");
    }

    let mut seen_attempt = 0i64;
    let mut ada_last_name = None;
    let mut linus_refused = false;
    let mut linus_delivered = false;
    let mut grace_suppressed = false;
    let mut grace_sent = false;
    let mut bad_signature = false;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let mut grace_consented = false;
    while tokio::time::Instant::now() < deadline {
        let done = ada_last_name.as_deref() == Some("King")
            && linus_delivered
            && grace_suppressed
            && grace_consented
            && grace_sent;
        if done {
            break;
        }
        tokio::select! {
            Some(r) = sink.rx.recv() => {
                let who = r.event.data.get("external_id").and_then(|v| v.as_str()).unwrap_or("?").to_string();
                bad_signature |= !r.signature_ok;
                println!("   sink received {} for {who} (signature {}), answered {}: {}",
                    r.event.event_type, if r.signature_ok { "valid" } else { "INVALID" }, r.status,
                    serde_json::Value::Object(r.event.data.clone()));
                match (who.as_str(), r.status) {
                    ("cust-ada", 204) => ada_last_name = r.event.data.get("last_name").and_then(|v| v.as_str()).map(String::from),
                    ("cust-linus", 503) => linus_refused = true,
                    ("cust-linus", 204) => linus_delivered = true,
                    ("cust-grace", 204) => grace_sent = true,
                    _ => {}
                }
            }
            _ = tokio::time::sleep(Duration::from_millis(150)) => {
                let mut attempts = store.attempts(None, 200).await?;
                attempts.reverse();
                let since = seen_attempt;
                for a in attempts.into_iter().filter(|a| a.id > since) {
                    seen_attempt = a.id;
                    match a.outcome.as_str() {
                        "suppressed" => {
                            grace_suppressed = true;
                            println!("   suppressed delivery to {} for subject {}: {}", a.destination, a.subject_id, a.detail.unwrap_or_default());
                        }
                        "retry" => println!("   attempt {} to {} failed ({}); retrying later", a.attempt, a.destination, a.detail.unwrap_or_default()),
                        "dead" => println!("   dead letter for {}: {}", a.destination, a.detail.unwrap_or_default()),
                        _ => {}
                    }
                }
                if grace_suppressed && !grace_consented {
                    grace_consented = true;
                    let event = json!({"type": "consent.updated", "subject": {"externalId": "cust-grace"},
                        "consent": {"marketing_email": "granted"}, "occurredAt": "2026-11-23T10:10:00Z"});
                    let resp = post("msg_demo_5", event).await?;
                    println!("-> Grace opts in after all: webhook msg_demo_5 answered {}", resp.status());
                }
            }
        }
    }
    hub.stop().await?;

    let checks = [
        (
            "Ada's latest surname reached the sink",
            ada_last_name.as_deref() == Some("King"),
        ),
        (
            "Grace was suppressed while she had not consented",
            grace_suppressed,
        ),
        ("Grace was delivered once she consented", grace_sent),
        (
            "Linus was refused once and then delivered",
            linus_refused && linus_delivered,
        ),
        ("every delivery carried a valid signature", !bad_signature),
    ];
    println!();
    let mut ok = true;
    for (what, passed) in checks {
        println!("{} {what}", if passed { "ok  " } else { "FAIL" });
        ok &= passed;
    }
    Ok(if ok {
        std::process::ExitCode::SUCCESS
    } else {
        std::process::ExitCode::FAILURE
    })
}
