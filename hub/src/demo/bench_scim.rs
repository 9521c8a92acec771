//! `hub bench-scim`: loads N SCIM Users into an in-process hub (no
//! destinations, so only the SCIM path is measured), then times filtered
//! lookups by userName one at a time and PATCH throughput at C concurrency,
//! beside a bare HTTP GET loop against a trivial local route (the ceiling).

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use anyhow::Context;
use rand::Rng;
use serde_json::{Value, json};

use super::bench::{drive, ms, percentile};
use super::local::LocalHub;
use crate::config::ScimClientSettings;

#[derive(Debug, Clone, clap::Args)]
pub struct BenchScimArgs {
    /// Users to create through `POST /scim/v2/Users` before measuring.
    #[arg(long, default_value_t = 100_000)]
    pub users: usize,
    /// `sqlite` (a temporary file) or a `postgres://` URL, in which a fresh
    /// database is created for the run and dropped afterwards.
    #[arg(long, default_value = "sqlite")]
    pub database: String,
    /// PATCH requests to send, each to a random user.
    #[arg(long, default_value_t = 5_000)]
    pub patches: usize,
    /// Concurrent clients for the load, the PATCHes and the ceiling.
    #[arg(long, default_value_t = 32)]
    pub concurrency: usize,
}

/// Filtered lookups, sent one after the other.
const LOOKUPS: usize = 2_000;
/// Requests of the bare-HTTP ceiling loop.
const CEILING_REQUESTS: usize = 20_000;
const SCIM_JSON: &str = "application/scim+json";

fn user(k: usize) -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": format!("user{k}@example.com"),
        "externalId": format!("bench-{k}"),
        "name": {"givenName": "Bench", "familyName": format!("User {k}")},
        "emails": [{"value": format!("user{k}@example.com"), "type": "work", "primary": true}],
        "active": true
    })
}

pub async fn run(args: BenchScimArgs) -> anyhow::Result<()> {
    use rand::RngCore;
    use sha2::{Digest, Sha256};

    connectors::install_crypto_provider();
    let n = args.users.max(1);
    let concurrency = args.concurrency.max(1);
    let patches = args.patches;

    // The hub, in this process: one SCIM client, no destinations.
    let mut key = [0u8; 32];
    rand::rng().fill_bytes(&mut key);
    let token = hex::encode(key);
    let token_sha256 = hex::encode(Sha256::digest(token.as_bytes()));
    let hub = LocalHub::start(&args.database, &[], |raw| {
        raw.scim
            .clients
            .insert("bench".into(), ScimClientSettings { token_sha256 });
    })
    .await?;
    let base = format!("{}/scim/v2", hub.url);
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency)
        .timeout(Duration::from_secs(60))
        .build()?;
    let auth = format!("Bearer {token}");

    let result = measure(&client, &base, &auth, n, concurrency, patches).await;
    let backend = hub.backend();
    hub.stop().await?;
    let m = result?;

    // The ceiling: the same client, a trivial route, the same concurrency.
    let ceiling = ceiling(&client, concurrency).await?;

    println!(
        "hub bench-scim: {n} users, {concurrency} concurrent clients, {backend}, no destinations"
    );
    println!("  ceiling (bare HTTP GET, trivial axum route)  {ceiling:>9.0} req/s");
    println!(
        "  load (POST /Users, 201 committed)            {:>9.0} users/s   {:.3} of ceiling   p50 {:.1} ms  p99 {:.1} ms   ({n} in {:.1} s)",
        m.load_rate,
        m.load_rate / ceiling,
        ms(percentile(&m.load_lat, 0.5)),
        ms(percentile(&m.load_lat, 0.99)),
        m.load_time.as_secs_f64()
    );
    println!(
        "  GET /Users?filter=userName eq (sequential)   p50 {:.2} ms  p99 {:.2} ms  max {:.2} ms   ({LOOKUPS} lookups, each totalResults 1)",
        ms(percentile(&m.get_lat, 0.5)),
        ms(percentile(&m.get_lat, 0.99)),
        m.get_lat.last().copied().map(ms).unwrap_or_default()
    );
    println!(
        "  PATCH /Users/{{id}} (replace name.givenName)  {:>9.0} /s        {:.3} of ceiling   p50 {:.1} ms  p99 {:.1} ms   ({patches} patches)",
        m.patch_rate,
        m.patch_rate / ceiling,
        ms(percentile(&m.patch_lat, 0.5)),
        ms(percentile(&m.patch_lat, 0.99))
    );
    Ok(())
}

struct Measured {
    load_time: Duration,
    load_rate: f64,
    load_lat: Vec<Duration>,
    get_lat: Vec<Duration>,
    patch_rate: f64,
    patch_lat: Vec<Duration>,
}

async fn measure(
    client: &reqwest::Client,
    base: &str,
    auth: &str,
    n: usize,
    concurrency: usize,
    patches: usize,
) -> anyhow::Result<Measured> {
    // 1. Load: every user through POST /Users; keep the ids for the PATCHes.
    let ids: Arc<Vec<OnceLock<String>>> = Arc::new((0..n).map(|_| OnceLock::new()).collect());
    let (c, url, a, ids2) = (
        client.clone(),
        format!("{base}/Users"),
        auth.to_string(),
        ids.clone(),
    );
    let (load_time, load_lat) = drive(n, concurrency, move |k| {
        let req = c
            .post(&url)
            .header("authorization", &a)
            .header("content-type", SCIM_JSON)
            .body(user(k).to_string());
        let ids = ids2.clone();
        async move {
            let r = req.send().await?;
            let status = r.status();
            anyhow::ensure!(status.as_u16() == 201, "POST /Users answered {status}");
            let body: Value = r.json().await?;
            let id = body["id"].as_str().context("a created User without id")?;
            let _ = ids[k].set(id.to_string());
            Ok(())
        }
    })
    .await
    .context("loading users")?;
    let load_rate = n as f64 / load_time.as_secs_f64();

    // 2. Filtered lookups, one at a time so the latency is not queueing.
    let mut get_lat = Vec::with_capacity(LOOKUPS);
    for _ in 0..LOOKUPS {
        let k = rand::rng().random_range(0..n);
        let filter = format!("userName eq \"user{k}@example.com\"");
        let t = Instant::now();
        let r = client
            .get(format!(
                "{base}/Users?{}",
                url::form_urlencoded::Serializer::new(String::new())
                    .append_pair("filter", &filter)
                    .finish()
            ))
            .header("authorization", auth)
            .send()
            .await?;
        let status = r.status();
        let body: Value = r.json().await?;
        get_lat.push(t.elapsed());
        anyhow::ensure!(status.is_success(), "filtered GET answered {status}");
        anyhow::ensure!(
            body["totalResults"] == 1,
            "filter {filter} gave totalResults {}",
            body["totalResults"]
        );
    }
    get_lat.sort();

    // 3. PATCHes at C concurrency, each to a random user.
    let targets: Arc<Vec<String>> = Arc::new(
        (0..patches)
            .map(|_| {
                let k = rand::rng().random_range(0..n);
                ids[k].get().cloned().unwrap_or_default()
            })
            .collect(),
    );
    let (c, base2, a) = (client.clone(), base.to_string(), auth.to_string());
    let (patch_time, patch_lat) = drive(patches, concurrency, move |i| {
        let body = json!({
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "replace", "path": "name.givenName", "value": format!("Patched {i}")}]
        });
        let req = c
            .patch(format!("{base2}/Users/{}", targets[i]))
            .header("authorization", &a)
            .header("content-type", SCIM_JSON)
            .body(body.to_string());
        async move {
            let r = req.send().await?;
            let status = r.status();
            anyhow::ensure!(status.as_u16() == 200, "PATCH answered {status}");
            Ok(())
        }
    })
    .await
    .context("patching users")?;
    Ok(Measured {
        load_time,
        load_rate,
        load_lat,
        get_lat,
        patch_rate: patches as f64 / patch_time.as_secs_f64(),
        patch_lat,
    })
}

/// Requests per second of a bare GET loop against a trivial local route.
async fn ceiling(client: &reqwest::Client, concurrency: usize) -> anyhow::Result<f64> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/ping", listener.local_addr()?);
    let router = axum::Router::new().route("/ping", axum::routing::get(|| async { "ok" }));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        axum::serve(listener, router)
            .with_graceful_shutdown(async {
                let _ = stopped.await;
            })
            .await
    });
    let c = client.clone();
    let (time, _) = drive(CEILING_REQUESTS, concurrency, move |_| {
        let req = c.get(&url);
        async move {
            let r = req.send().await?;
            anyhow::ensure!(r.status().is_success(), "ceiling answered {}", r.status());
            r.bytes().await?;
            Ok(())
        }
    })
    .await?;
    let _ = stop.send(());
    server.await??;
    Ok(CEILING_REQUESTS as f64 / time.as_secs_f64())
}
