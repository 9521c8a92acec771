//! `hub bench --connector NAME`: one vendor's fake (crate `vendor-fakes`,
//! which checks every request against the vendor's own API description and
//! enforces its limits), an in-process hub with one destination of that
//! connector pointed at it, N webhooks in, and the time until the fake
//! holds all N records. Printed beside the vendor's documented ceiling:
//! calls per second allowed (the connector's `rate_limit()`) times items
//! per call (its `batch_policy()`). A fake whose journal noted any request
//! the vendor would refuse makes the run fail.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use connectors::ConnectorKind;
use serde_json::{Value, json};
use vendor_fakes::{Journal, Recorded};
use vendor_fakes::{braze, hubspot, klaviyo, mailchimp, rudderstack, salesforce, segment, shopify};

use super::bench::{BenchArgs, backend_name, ms, percentile, push};
use super::local::LocalHub;

/// Seconds of work at the vendor's ceiling that N is chosen for.
const SECONDS_AT_CEILING: f64 = 25.0;
/// N for a connector whose deliveries are confirmed by polling the vendor.
const ASYNC_N: usize = 2_000;
/// Every connector the bench knows, in the order `all` runs them.
const VENDORS: [ConnectorKind; 8] = [
    ConnectorKind::HubSpot,
    ConnectorKind::Salesforce,
    ConnectorKind::Braze,
    ConnectorKind::Mailchimp,
    ConnectorKind::Klaviyo,
    ConnectorKind::Segment,
    ConnectorKind::RudderStack,
    ConnectorKind::Shopify,
];

/// One running vendor fake.
enum Fake {
    HubSpot(hubspot::Fake),
    Salesforce(salesforce::Fake),
    Braze(braze::Fake),
    Mailchimp(mailchimp::MailchimpFake),
    Klaviyo(klaviyo::KlaviyoFake),
    Segment(segment::Fake),
    RudderStack(rudderstack::Fake),
    Shopify(shopify::Fake),
}

impl Fake {
    async fn start(kind: ConnectorKind) -> anyhow::Result<Fake> {
        Ok(match kind {
            ConnectorKind::HubSpot => Fake::HubSpot(hubspot::start().await),
            ConnectorKind::Salesforce => Fake::Salesforce(salesforce::start().await),
            ConnectorKind::Braze => Fake::Braze(braze::start().await),
            ConnectorKind::Mailchimp => Fake::Mailchimp(mailchimp::start().await),
            ConnectorKind::Klaviyo => Fake::Klaviyo(klaviyo::start().await),
            ConnectorKind::Segment => Fake::Segment(segment::start().await),
            ConnectorKind::RudderStack => Fake::RudderStack(rudderstack::start().await),
            ConnectorKind::Shopify => Fake::Shopify(shopify::start().await),
            ConnectorKind::Webhook => anyhow::bail!("the webhook connector is `hub bench` itself"),
        })
    }

    /// The destination's `settings`, as the connector tests aim them at
    /// their fakes.
    fn settings(&self) -> Value {
        match self {
            Fake::HubSpot(f) => json!({"token": hubspot::TOKEN, "base_url": f.url}),
            Fake::Salesforce(f) => json!({
                "base_url": f.url, "client_id": salesforce::CLIENT_ID,
                "client_secret": salesforce::CLIENT_SECRET, "external_id_field": "Hub_Id__c"
            }),
            Fake::Braze(f) => json!({"api_key": braze::API_KEY, "base_url": f.url}),
            Fake::Mailchimp(f) => json!({
                "api_key": mailchimp::API_KEY, "list_id": mailchimp::LIST_ID, "base_url": f.base_url
            }),
            Fake::Klaviyo(f) => json!({"api_key": klaviyo::API_KEY, "base_url": f.url}),
            Fake::Segment(f) => json!({
                "write_key": segment::WRITE_KEY, "base_url": f.url,
                "public_api_token": segment::PUBLIC_API_TOKEN, "public_api_url": f.url
            }),
            Fake::RudderStack(f) => json!({
                "write_key": rudderstack::WRITE_KEY, "base_url": f.url,
                "api_token": rudderstack::API_TOKEN, "regulation_url": f.url,
                "consent_ids": {"analytics": "C0002", "marketing_email": "C0004"}
            }),
            Fake::Shopify(f) => json!({
                "shop": "acme.myshopify.com", "access_token": shopify::ACCESS_TOKEN, "base_url": f.url
            }),
        }
    }

    /// `consent:` and `fields:` of the destination, in the shape of
    /// `mappings/NAME.yaml`.
    fn mapping_body(&self) -> &'static str {
        match self {
            Fake::HubSpot(_) => {
                "consent: [marketing_email]\nfields:\n  email:\n    from: emails[primary eq true].value\n    transform: [trim, lowercase]\n  firstname: { from: name.givenName }\n  lastname: { from: name.familyName }\n"
            }
            Fake::Salesforce(_) => {
                "consent: [marketing_email]\nfields:\n  LastName: { from: name.familyName, default: Unknown }\n  FirstName: { from: name.givenName }\n  Email:\n    from: emails[primary eq true].value\n    transform: [trim, lowercase]\n"
            }
            Fake::Braze(_) | Fake::Klaviyo(_) => {
                "consent: [marketing_email]\nfields:\n  email:\n    from: emails[primary eq true].value\n    transform: [trim, lowercase]\n  first_name: { from: name.givenName }\n  last_name: { from: name.familyName }\n"
            }
            Fake::Mailchimp(_) => {
                "consent: [marketing_email]\nfields:\n  email:\n    from: emails[primary eq true].value\n    transform: [trim, lowercase]\n  FNAME: { from: name.givenName }\n  LNAME: { from: name.familyName }\n"
            }
            Fake::Segment(_) | Fake::RudderStack(_) => {
                "consent: [analytics]\nfields:\n  email:\n    from: emails[primary eq true].value\n    transform: [trim, lowercase]\n  firstName: { from: name.givenName }\n  lastName: { from: name.familyName }\n"
            }
            Fake::Shopify(_) => {
                "consent: [marketing_email]\nfields:\n  email:\n    from: emails[primary eq true].value\n    transform: [trim, lowercase]\n  firstName: { from: name.givenName }\n  lastName: { from: name.familyName }\n"
            }
        }
    }

    fn journal(&self) -> &Journal {
        match self {
            Fake::HubSpot(f) => &f.journal,
            Fake::Salesforce(f) => &f.journal,
            Fake::Braze(f) => &f.journal,
            Fake::Mailchimp(f) => &f.journal,
            Fake::Klaviyo(f) => &f.journal,
            Fake::Segment(f) => &f.journal,
            Fake::RudderStack(f) => &f.journal,
            Fake::Shopify(f) => &f.journal,
        }
    }

    /// Records the fake holds, through its public readers.
    fn held(&self) -> usize {
        match self {
            Fake::HubSpot(f) => f.contacts().len(),
            Fake::Salesforce(f) => f.records().iter().filter(|r| !r.deleted).count(),
            Fake::Braze(f) => f.users().len(),
            Fake::Mailchimp(f) => f.members().len(),
            Fake::Klaviyo(f) => f.profiles().len(),
            Fake::Segment(f) => f.profiles().len(),
            Fake::RudderStack(f) => f.profiles().len(),
            Fake::Shopify(f) => f.customers().len(),
        }
    }

    /// Whether `r` is a call that carries upserts (the calls a batch size
    /// is measured over; token requests, lookups and polls are not).
    fn is_upsert_call(&self, r: &Recorded) -> bool {
        let post = r.method == "POST";
        match self {
            Fake::HubSpot(_) => post && r.path.ends_with("/batch/upsert"),
            Fake::Salesforce(_) => r.method == "PATCH" && r.path.contains("/composite/sobjects/"),
            Fake::Braze(_) => r.path == "/users/track",
            Fake::Mailchimp(_) => post && r.path == format!("/3.0/lists/{}", mailchimp::LIST_ID),
            Fake::Klaviyo(_) => {
                post && (r.path == "/api/profile-bulk-import-jobs"
                    || r.path == "/api/profile-import")
            }
            Fake::Segment(_) | Fake::RudderStack(_) => r.path == "/v1/batch",
            Fake::Shopify(_) => {
                let body = String::from_utf8_lossy(&r.body);
                body.contains("customerCreate") || body.contains("customerUpdate")
            }
        }
    }
}

/// A webhook for subject `i` with the consent every bench mapping needs.
fn connector_event(i: usize) -> Value {
    json!({
        "type": "profile.upserted",
        "subject": {
            "externalId": format!("bench-{i}"),
            "userName": format!("user{i}@example.com"),
            "name": {"givenName": "Bench", "familyName": format!("User {i}")},
            "emails": [{"value": format!("User{i}@Example.com"), "primary": true}],
            "active": true
        },
        "consent": {"marketing_email": "granted", "analytics": "granted"},
        "occurredAt": "2026-11-23T10:00:00Z"
    })
}

/// Delivery attempts by outcome, from the hub's `GET /metrics`.
async fn attempt_outcomes(
    client: &reqwest::Client,
    hub: &LocalHub,
) -> anyhow::Result<BTreeMap<String, u64>> {
    let text = client
        .get(format!("{}/metrics", hub.url))
        .send()
        .await?
        .text()
        .await?;
    Ok(text
        .lines()
        .filter_map(|l| l.strip_prefix("hub_delivery_attempts_total{outcome=\""))
        .filter_map(|l| {
            let (outcome, value) = l.split_once("\"} ")?;
            Some((outcome.to_string(), value.trim().parse().ok()?))
        })
        .collect())
}

pub(crate) async fn run(args: &BenchArgs, name: &str) -> anyhow::Result<()> {
    let kinds: Vec<ConnectorKind> = if name == "all" {
        VENDORS.to_vec()
    } else {
        let kind = ConnectorKind::parse(name)
            .filter(|k| VENDORS.contains(k))
            .ok_or_else(|| {
                anyhow::anyhow!(
                    "--connector must be one of {} or all",
                    VENDORS.map(|k| k.as_str()).join(", ")
                )
            })?;
        vec![kind]
    };
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(args.concurrency)
        .build()?;
    let mut failures = Vec::new();
    for kind in kinds {
        if let Err(e) = run_one(args, &client, kind).await {
            println!("  ERROR: {e:#}");
            failures.push(format!("{}: {e:#}", kind.as_str()));
        }
    }
    anyhow::ensure!(failures.is_empty(), "{}", failures.join("; "));
    Ok(())
}

async fn run_one(
    args: &BenchArgs,
    client: &reqwest::Client,
    kind: ConnectorKind,
) -> anyhow::Result<()> {
    let name = kind.as_str();
    let fake = Fake::start(kind).await?;
    let settings = fake.settings();
    let connector = connectors::build(name, &settings)?;
    let policy = connector.batch_policy();
    let limit = connector.rate_limit();
    let ceiling = limit.map(|r| f64::from(r.calls) / r.per.as_secs_f64() * policy.max_items as f64);
    let mut n = ceiling
        .map(|c| (c * SECONDS_AT_CEILING) as usize)
        .unwrap_or(args.n)
        .clamp(1, args.n.max(1));
    if kind == ConnectorKind::Klaviyo {
        // Its bulk imports are confirmed by polling the job, and the polls
        // share the 150-a-minute window with the imports: the engine checks
        // 100 items per poll, so confirmation, not the
        // import, sets the pace (about 80/s here).
        n = n.min(ASYNC_N);
    }
    println!(
        "hub bench --connector {name}: {n} webhooks, {} concurrent senders, {}",
        args.concurrency,
        backend_name(&args.database)
    );
    match (limit, ceiling) {
        (Some(r), Some(c)) => println!(
            "  vendor ceiling                   {c:>9.0} /s   = {} calls per {:?} x {} per call (connector's rate_limit() and batch_policy())",
            r.calls, r.per, policy.max_items
        ),
        _ => println!(
            "  vendor ceiling                        none   the connector declares no rate limit (the vendor documents none per second); {} per call",
            policy.max_items
        ),
    }

    let mapping = format!(
        "destination: bench-{name}\nconnector: {name}\nsettings: {settings}\n{}",
        fake.mapping_body()
    );
    let hub = LocalHub::start(&args.database, &[("bench.yaml", mapping)], |_| {}).await?;
    let intake = push(&hub, client, n, args.concurrency, connector_event).await?;
    // At the ceiling the run takes n / ceiling; allow three times that.
    let patience = Duration::from_secs_f64(
        ceiling
            .map(|c| 3.0 * n as f64 / c)
            .unwrap_or(0.0)
            .max(120.0),
    );
    let deadline = Instant::now() + patience;
    // A refused mapping (or a connector that never calls) shows as silence.
    let silent_until = Instant::now() + Duration::from_secs(30);
    let mut held = fake.held();
    while held < n && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
        held = fake.held();
        if Instant::now() > silent_until && fake.journal().requests().is_empty() {
            break;
        }
    }
    let detected = Instant::now();
    let outcomes = attempt_outcomes(client, &hub).await.unwrap_or_default();
    hub.stop().await?;

    let requests = fake.journal().requests();
    // The request that landed the last record arrived at or before the
    // poll that saw it.
    let done = requests
        .iter()
        .map(|r| r.at)
        .filter(|at| *at <= detected)
        .max()
        .unwrap_or(detected);
    let took = done.saturating_duration_since(intake.started);
    let rate = held as f64 / took.as_secs_f64();
    let upserts = requests.iter().filter(|r| fake.is_upsert_call(r)).count();
    let accepted = intake.per_second();
    println!(
        "  accepted (202, committed)        {accepted:>9.0} /s   accept p50 {:.1} ms  p99 {:.1} ms",
        ms(percentile(&intake.latencies, 0.5)),
        ms(percentile(&intake.latencies, 0.99))
    );
    println!(
        "  delivered (held by the fake)     {rate:>9.0} /s   {}   {held} of {n} after {:.1} s",
        ceiling
            .map(|c| format!("{:.3} of ceiling", rate / c))
            .unwrap_or_else(|| "no ceiling".into()),
        took.as_secs_f64()
    );
    let others: Vec<String> = outcomes
        .iter()
        .filter(|(o, v)| o.as_str() != "delivered" && **v > 0)
        .map(|(o, v)| format!("{o} {v}"))
        .collect();
    println!(
        "  calls made {}   upsert calls {upserts}   mean batch {:.1} per upsert call   attempts: delivered {}{}",
        requests.len(),
        if upserts == 0 {
            0.0
        } else {
            held as f64 / upserts as f64
        },
        outcomes.get("delivered").copied().unwrap_or(0),
        if others.is_empty() {
            String::new()
        } else {
            format!(", {}", others.join(", "))
        }
    );
    let violations = fake.journal().violations();
    if violations.is_empty() {
        println!("  fake's journal: no violations");
    } else {
        println!(
            "  fake's journal: {} VIOLATION(S), first: {}",
            violations.len(),
            violations[0]
        );
    }
    anyhow::ensure!(
        violations.is_empty(),
        "{} request(s) the vendor would refuse: {}",
        violations.len(),
        violations
            .iter()
            .take(3)
            .cloned()
            .collect::<Vec<_>>()
            .join(" | ")
    );
    anyhow::ensure!(
        held >= n,
        "the fake holds {held} of {n} records after {:.0} s",
        patience.as_secs_f64()
    );
    Ok(())
}
