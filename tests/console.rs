//! The web console against `hub serve` on loopback (SQLite), seeded through
//! signed webhooks: over plain HTTP (session cookie, CSRF, scopes, sign-out,
//! bad input) and in headless Chromium (every page, with a screenshot of
//! each in `target/console-screenshots/`).

#[path = "console/browser.rs"]
mod browser;
#[path = "console/client.rs"]
mod client;
mod common;

use std::time::{Duration, Instant};

use browser::Browser;
use client::Console;
use common::{Backend, PATIENCE, Reply, Sink, TestHub, crm_mapping, now_utc, profile_event};
use serde_json::Value;
use sha2::Digest;

const READ_TOKEN: &str = "console-read-token";
const OPS_TOKEN: &str = "console-ops-token";

fn sha(token: &str) -> String {
    hex::encode(sha2::Sha256::digest(token.as_bytes()))
}

async fn start(sink: &Sink, extra_mapping_lines: &str) -> TestHub {
    let mapping = format!("{}{extra_mapping_lines}", crm_mapping("crm", &sink.url()));
    let tokens = format!(
        "[admin.tokens.reader]\ntoken_sha256 = \"{}\"\nscope = \"read\"\n\n\
         [admin.tokens.ops]\ntoken_sha256 = \"{}\"\nscope = \"write\"\n",
        sha(READ_TOKEN),
        sha(OPS_TOKEN)
    );
    TestHub::builder(Backend::Sqlite)
        .mapping("crm.yaml", mapping)
        .toml(&tokens)
        .start()
        .await
}

/// The admin API's view of something, to check what the console did.
async fn admin_get(hub: &TestHub, path: &str) -> Value {
    let r = hub
        .http
        .get(format!("{}{path}", hub.url))
        .bearer_auth(READ_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "GET {path}");
    r.json().await.unwrap()
}

async fn crm_state(hub: &TestHub) -> String {
    let d = admin_get(hub, "/admin/destinations/crm").await;
    d["state"].as_str().unwrap().to_string()
}

async fn wait_dead_letter(hub: &TestHub) -> String {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let list = admin_get(hub, "/admin/dead-letters").await;
        if let Some(id) = list["dead_letters"][0]["id"].as_str() {
            return id.to_string();
        }
        assert!(
            Instant::now() < deadline,
            "no dead letter\n{}",
            hub.log_text()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

// ------------------------------------------------------------ over HTTP

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_sets_an_httponly_samesite_strict_session_cookie_on_the_console_path() {
    let sink = Sink::start().await;
    let hub = start(&sink, "").await;
    let mut console = Console::new(&hub);

    // Signed out, every page leads to the sign-in form.
    let page = console.get("/console/destinations").await;
    assert_eq!(page.status, 303);
    assert_eq!(page.location.as_deref(), Some("/console/login"));
    let page = console.get("/console").await;
    assert_eq!(page.status, 303);
    let form = console.get("/console/login").await;
    assert_eq!(form.status, 200);
    assert!(form.body.contains("type=\"password\""), "{}", form.body);

    let page = console.sign_in(OPS_TOKEN).await;
    assert_eq!(page.location.as_deref(), Some("/console/destinations"));
    let cookie = page.set_cookie.unwrap();
    let attrs: Vec<&str> = cookie.split("; ").skip(1).collect();
    for needed in ["HttpOnly", "SameSite=Strict", "Path=/console"] {
        assert!(attrs.contains(&needed), "{cookie}");
    }
    assert!(!attrs.contains(&"Secure"), "plain http: {cookie}");
    let id = console.cookie.clone().unwrap();
    assert_eq!(id.len(), 64, "{cookie}");
    assert!(!cookie.contains(OPS_TOKEN));

    let page = console.get("/console/destinations").await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("destination-crm"), "{}", page.body);
    assert!(
        page.body.contains(">ops<"),
        "the admin's name: {}",
        page.body
    );

    // Behind a TLS-terminating proxy the cookie is Secure too.
    let behind_tls = console
        .send(
            console
                .http
                .post(format!("{}/console/login", hub.url))
                .header("x-forwarded-proto", "https")
                .header("content-type", "application/x-www-form-urlencoded")
                .body(format!("token={OPS_TOKEN}")),
        )
        .await;
    assert!(
        behind_tls.set_cookie.unwrap().ends_with("; Secure"),
        "https: Secure"
    );
    assert!(!hub.log_text().contains(OPS_TOKEN), "the token was logged");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_token_gets_the_form_again_with_401_and_is_never_echoed() {
    let sink = Sink::start().await;
    let hub = start(&sink, "").await;
    let console = Console::new(&hub);
    let wrong = "wrong-token-marker-7f3a";
    let page = console.post("/console/login", &[("token", wrong)]).await;
    assert_eq!(page.status, 401);
    assert!(page.set_cookie.is_none());
    assert!(page.body.contains("id=\"token\""), "the form again");
    assert!(
        page.body.contains("not a valid admin token"),
        "{}",
        page.body
    );
    assert!(!page.body.contains(wrong), "echoed: {}", page.body);
    // No field at all, or a body that is no form: the same.
    let page = console.post("/console/login", &[]).await;
    assert_eq!(page.status, 401);
    let page = console
        .send(
            console
                .http
                .post(format!("{}/console/login", hub.url))
                .body("\u{0}garbage"),
        )
        .await;
    assert_eq!(page.status, 401);
    assert!(!hub.log_text().contains(wrong), "the token was logged");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_post_without_this_sessions_csrf_token_is_refused_and_changes_nothing() {
    let sink = Sink::start().await;
    let hub = start(&sink, "").await;
    let mut console = Console::new(&hub);
    console.sign_in(OPS_TOKEN).await;
    let csrf = console.csrf().await;
    let mut other = Console::new(&hub);
    other.sign_in(OPS_TOKEN).await;
    let others_csrf = other.csrf().await;
    assert_ne!(csrf, others_csrf);

    let pause = "/console/destinations/crm/pause";
    for fields in [
        vec![],
        vec![("csrf", "")],
        vec![("csrf", "0000")],
        vec![("csrf", others_csrf.as_str())],
    ] {
        let page = console.post(pause, &fields).await;
        assert_eq!(page.status, 403, "{fields:?}: {}", page.body);
        assert!(page.body.contains("reload the page"), "{}", page.body);
    }
    assert_eq!(crm_state(&hub).await, "active");

    // A browser saying the POST comes from another site: refused, even
    // with the right token (and sign-in, which has none yet, the same).
    for path in [pause, "/console/login"] {
        let page = console
            .send(
                console
                    .http
                    .post(format!("{}{path}", hub.url))
                    .header("sec-fetch-site", "cross-site")
                    .header("content-type", "application/x-www-form-urlencoded")
                    .body(format!("csrf={csrf}&token={OPS_TOKEN}")),
            )
            .await;
        assert_eq!(page.status, 403, "{path}: {}", page.body);
        assert!(page.set_cookie.is_none());
    }
    assert_eq!(crm_state(&hub).await, "active");

    // A POST from no session at all goes to sign-in and changes nothing.
    let anonymous = Console::new(&hub);
    let page = anonymous.post(pause, &[("csrf", csrf.as_str())]).await;
    assert_eq!(page.status, 303);
    assert_eq!(crm_state(&hub).await, "active");

    let page = console.post(pause, &[("csrf", csrf.as_str())]).await;
    assert_eq!(page.status, 303, "{}", page.body);
    assert_eq!(crm_state(&hub).await, "paused");
    let page = console
        .post(
            "/console/destinations/crm/resume",
            &[("csrf", csrf.as_str())],
        )
        .await;
    assert_eq!(page.status, 303);
    assert_eq!(crm_state(&hub).await, "active");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_session_sees_no_write_button_and_every_write_is_403() {
    let sink = Sink::start().await;
    sink.script([Reply::Status(422)]);
    let hub = start(&sink, "").await;
    hub.send_ok(&profile_event("cust-read", now_utc())).await;
    let letter = wait_dead_letter(&hub).await;
    let mut console = Console::new(&hub);
    console.sign_in(READ_TOKEN).await;
    let csrf = console.csrf().await;

    let page = console.get("/console/destinations").await;
    assert!(!page.body.contains("Pause"), "{}", page.body);
    let page = console
        .get(&format!("/console/dead-letters/{letter}"))
        .await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("HTTP 422"), "{}", page.body);
    assert!(!page.body.contains("Replay"), "{}", page.body);

    for path in [
        "/console/destinations/crm/pause".to_string(),
        "/console/destinations/crm/resume".to_string(),
        format!("/console/dead-letters/{letter}/replay"),
    ] {
        let page = console.post(&path, &[("csrf", csrf.as_str())]).await;
        assert_eq!(page.status, 403, "{path}: {}", page.body);
        assert!(page.body.contains("read scope"), "{}", page.body);
        // No form at all: still 403, the scope is checked first.
        let page = console.post(&path, &[]).await;
        assert_eq!(page.status, 403, "{path}");
    }
    assert_eq!(crm_state(&hub).await, "active");
    let letters = admin_get(&hub, "/admin/dead-letters").await;
    assert_eq!(letters["dead_letters"][0]["id"], letter.as_str());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signing_out_ends_the_session_and_clears_the_cookie() {
    let sink = Sink::start().await;
    let hub = start(&sink, "").await;
    let mut console = Console::new(&hub);
    console.sign_in(READ_TOKEN).await;
    let csrf = console.csrf().await;
    let page = console.post("/console/logout", &[("csrf", "nope")]).await;
    assert_eq!(page.status, 403, "sign-out is CSRF-checked too");
    assert_eq!(console.get("/console/destinations").await.status, 200);

    let page = console
        .post("/console/logout", &[("csrf", csrf.as_str())])
        .await;
    assert_eq!(page.status, 303);
    assert_eq!(page.location.as_deref(), Some("/console/login"));
    let cleared = page.set_cookie.unwrap();
    assert!(cleared.starts_with("hub_console=;"), "{cleared}");
    assert!(cleared.contains("Max-Age=0"), "{cleared}");
    // The old cookie names no session any more.
    let page = console.get("/console/destinations").await;
    assert_eq!(page.status, 303);
    assert_eq!(page.location.as_deref(), Some("/console/login"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_a_friendly_html_page_never_a_5xx() {
    let sink = Sink::start().await;
    let hub = start(&sink, "").await;
    let mut console = Console::new(&hub);
    console.sign_in(OPS_TOKEN).await;
    let csrf = console.csrf().await;
    for (path, status) in [
        ("/console/subjects/ciam:nobody", 404),
        ("/console/subjects/%FF%FE", 400),
        ("/console/dead-letters/no-such-letter", 404),
        ("/console/preview?destination=nope&subject=ciam:nobody", 404),
        ("/console/preview?destination=crm&subject=ciam:nobody", 404),
        ("/console/no-such-page", 404),
        ("/console/subjects?q=a%00b", 400),
    ] {
        let page = console.get(path).await;
        assert_eq!(page.status, status, "{path}: {}", page.body);
        assert!(page.body.contains("id=\"error\""), "{path}: {}", page.body);
    }
    // Output is escaped.
    let page = console
        .get("/console/subjects?q=%3Cscript%3Ealert(1)%3C/script%3E")
        .await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("&lt;script&gt;"), "{}", page.body);
    assert!(!page.body.contains("<script>"), "{}", page.body);
    // A write naming nothing.
    let page = console
        .post(
            "/console/destinations/nope/pause",
            &[("csrf", csrf.as_str())],
        )
        .await;
    assert_eq!(page.status, 404);
    let page = console
        .post(
            "/console/dead-letters/nope/replay",
            &[("csrf", csrf.as_str())],
        )
        .await;
    assert_eq!(page.status, 404);
    // Every page says: do not cache, do not frame.
    let r = console
        .http
        .get(format!("{}/console/login", hub.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["cache-control"], "no-store");
    assert_eq!(r.headers()["x-frame-options"], "DENY");
}

// ------------------------------------------------------------ in a browser

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_signs_in_and_finds_a_subject_by_email_with_consent_history_and_deliveries() {
    let sink = Sink::start().await;
    let hub = start(&sink, "").await;
    let reply = hub.send_ok(&profile_event("cust-ada", now_utc())).await;
    let id = reply["subject"].as_str().unwrap().to_string();
    sink.wait_for(1, PATIENCE).await;
    let Some(b) = Browser::start(&hub.url).await else {
        return;
    };
    b.goto("/console/destinations").await;
    assert_eq!(b.path().await, "/console/login", "signed out: the form");
    b.type_into("#token", "not-a-token").await;
    b.click("#sign-in").await;
    assert!(b.text("#error").await.contains("not a valid admin token"));
    b.screenshot("login").await;
    b.sign_in(OPS_TOKEN).await;
    assert_eq!(b.text("#who").await, "ops");

    b.click("nav a[href='/console/subjects']").await;
    b.type_into("#q", "Ada@Example.com").await;
    b.click("#search").await;
    assert_eq!(b.count("#hits a.subject").await, 1);
    assert_eq!(b.text("#hits a.subject").await, id);
    b.screenshot("subjects").await;
    b.click("#hits a.subject").await;
    assert_eq!(b.text("#subject-id").await, id);
    let history = b.text("#consent-history").await;
    assert!(history.contains("marketing_email"), "{history}");
    assert!(history.contains("analytics"), "{history}");
    assert!(
        history.contains("granted") && history.contains("denied"),
        "{history}"
    );
    assert_eq!(b.count("#consent-history tbody tr").await, 2);
    let delivered = b
        .wait_text("#timeline-crm .attempts .outcome", "a delivery", |t| {
            t == "delivered"
        })
        .await;
    assert_eq!(delivered, "delivered");
    assert!(b.text("#timeline-crm .holds").await.contains("sent"));
    assert!(b.text("#profile").await.contains("Lovelace"));
    b.screenshot("subject").await;
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_pauses_and_resumes_a_destination() {
    let sink = Sink::start().await;
    let hub = start(&sink, "").await;
    let Some(b) = Browser::start(&hub.url).await else {
        return;
    };
    b.sign_in(OPS_TOKEN).await;
    let state = || b.attr("#destination-crm", "data-state");
    assert_eq!(state().await.as_deref(), Some("active"));
    b.click("#pause-crm").await;
    assert_eq!(b.path().await, "/console/destinations");
    assert_eq!(state().await.as_deref(), Some("paused"));
    assert!(b.text("#destination-crm").await.contains("paused by ops"));
    assert_eq!(crm_state(&hub).await, "paused");
    b.screenshot("destinations-paused").await;
    b.click("#resume-crm").await;
    assert_eq!(state().await.as_deref(), Some("active"));
    assert_eq!(crm_state(&hub).await, "active");
    b.screenshot("destinations").await;
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_replays_a_dead_letter_and_sees_it_delivered() {
    let sink = Sink::start().await;
    sink.script([Reply::Status(422)]);
    let hub = start(&sink, "").await;
    let reply = hub.send_ok(&profile_event("cust-dead", now_utc())).await;
    let id = reply["subject"].as_str().unwrap().to_string();
    let letter = wait_dead_letter(&hub).await;
    let Some(b) = Browser::start(&hub.url).await else {
        return;
    };
    b.sign_in(OPS_TOKEN).await;
    b.click("nav a[href='/console/dead-letters']").await;
    assert_eq!(b.text("#dead-letters a.dead-letter").await, letter);
    b.screenshot("dead-letters").await;
    b.click("#dead-letters a.dead-letter").await;
    assert_eq!(b.text("#vendor-status").await, "HTTP 422");
    b.screenshot("dead-letter").await;
    b.click("#replay").await;
    assert_eq!(b.path().await, format!("/console/subjects/{id}"));
    assert!(b.text("#notice").await.contains("replayed"));
    b.wait_text(
        "#timeline-crm .attempts .outcome",
        "the replay delivered",
        |t| t == "delivered",
    )
    .await;
    b.screenshot("subject-after-replay").await;
    assert!(sink.received().len() >= 2, "the replay reached the sink");
    b.goto("/console/dead-letters").await;
    assert_eq!(b.count("#no-dead-letters").await, 1);
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_previews_a_mapping_and_sees_which_fields_consent_removed() {
    let sink = Sink::start().await;
    let hub = start(
        &sink,
        "  nickname: { from: userName, consent: analytics }\n",
    )
    .await;
    let reply = hub.send_ok(&profile_event("cust-preview", now_utc())).await;
    let id = reply["subject"].as_str().unwrap().to_string();
    let Some(b) = Browser::start(&hub.url).await else {
        return;
    };
    b.sign_in(READ_TOKEN).await;
    b.click("nav a[href='/console/preview']").await;
    b.type_into("#subject", &id).await;
    b.click("#preview").await;
    assert_eq!(b.text("#outcome").await, "send");
    assert_eq!(b.text("#action").await, "upsert");
    let payload = b.text("#payload").await;
    assert!(
        payload.contains("\"email\": \"ada@example.com\""),
        "{payload}"
    );
    assert!(!payload.contains("nickname"), "{payload}");
    let removed = b.text("#removed-fields").await;
    assert!(removed.contains("nickname"), "{removed}");
    assert!(removed.contains("analytics"), "{removed}");
    assert!(
        removed.contains("the subject denied this purpose"),
        "{removed}"
    );
    b.screenshot("preview").await;
    // By e-mail as well, and the subject page's link leads here too.
    b.type_into("#subject", "ada@example.com").await;
    b.click("#preview").await;
    assert_eq!(b.text("#outcome").await, "send");
    b.goto(&format!("/console/subjects/{id}")).await;
    b.click("#timeline-crm h3 a").await;
    assert_eq!(b.path().await, "/console/preview");
    assert!(b.text("#removed-fields").await.contains("nickname"));
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_read_token_sees_no_write_buttons_and_a_forged_post_gets_403() {
    let sink = Sink::start().await;
    sink.script([Reply::Status(422)]);
    let hub = start(&sink, "").await;
    hub.send_ok(&profile_event("cust-reader", now_utc())).await;
    let letter = wait_dead_letter(&hub).await;
    let Some(b) = Browser::start(&hub.url).await else {
        return;
    };
    b.sign_in(READ_TOKEN).await;
    assert_eq!(b.text("#scope").await, "read");
    assert_eq!(
        b.attr("#destination-crm", "data-state").await.as_deref(),
        Some("active")
    );
    // The only button on a page is sign-out.
    assert_eq!(b.count("main button").await, 0);
    assert_eq!(b.count("main form[method='post']").await, 0);
    b.screenshot("destinations-read").await;
    b.goto(&format!("/console/dead-letters/{letter}")).await;
    assert_eq!(b.text("#vendor-status").await, "HTTP 422");
    assert_eq!(b.count("#replay").await, 0);
    assert_eq!(b.count("main button").await, 0);
    b.screenshot("dead-letter-read").await;

    // A hand-made form with this session's own CSRF token: still refused.
    b.client
        .execute(
            "const f = document.createElement('form');
             f.method = 'post';
             f.action = '/console/destinations/crm/pause';
             const i = document.createElement('input');
             i.name = 'csrf';
             i.value = document.querySelector('input[name=csrf]').value;
             f.appendChild(i);
             document.body.appendChild(f);
             f.submit();",
            vec![],
        )
        .await
        .unwrap();
    let error = b.wait_text_no_reload("#error", "the refusal").await;
    assert!(error.contains("read scope"), "{error}");
    b.screenshot("forged-post-refused").await;
    assert_eq!(crm_state(&hub).await, "active");
    b.close().await;
}
