//! Headless Chromium for the console tests: chromedriver (Debian's
//! `chromium-driver`) spawned on a free loopback port, driven through
//! fantoccini. Without chromedriver the tests fail when `CI=true` and are
//! skipped, loudly, elsewhere.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;

/// Long enough for a cold Chromium on a busy 2-core machine.
const START_PATIENCE: Duration = Duration::from_secs(60);

/// One browser at a time: two cores run one Chromium well, five badly.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn on_path(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join(name))
            .find(|p| p.is_file())
    })
}

pub struct Browser {
    pub client: Client,
    /// Base URL of the hub under test.
    base: String,
    /// Set by [`Browser::close`]; otherwise (a test that panicked) the
    /// drop ends the session, so chromedriver quits Chromium rather than
    /// leave it running.
    closed: bool,
    _driver: tokio::process::Child,
    _profile: tempfile::TempDir,
    _turn: tokio::sync::MutexGuard<'static, ()>,
}

impl Browser {
    /// A fresh headless Chromium pointed at `base`, or `None` (skip) when
    /// chromedriver is missing outside CI.
    pub async fn start(base: &str) -> Option<Browser> {
        let driver_path = std::env::var_os("HUB_CHROMEDRIVER")
            .map(PathBuf::from)
            .or_else(|| on_path("chromedriver"));
        let Some(driver_path) = driver_path else {
            if std::env::var("CI").as_deref() == Ok("true") {
                panic!(
                    "chromedriver not found: CI runs the console's browser tests \
                     (apt-get install chromium chromium-driver)"
                );
            }
            eprintln!(
                "SKIPPED: chromedriver not found (apt-get install chromium chromium-driver); \
                 the console's browser test did not run"
            );
            return None;
        };
        let turn = ONE_AT_A_TIME.lock().await;
        let port = super::common::unused_addr().port();
        let driver = tokio::process::Command::new(&driver_path)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", driver_path.display()));
        let profile = tempfile::tempdir().unwrap();
        let mut options = json!({
            "args": [
                "--headless=new",
                // CI runs as root, where Chromium's sandbox cannot start.
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--no-first-run",
                "--window-size=1280,900",
                format!("--user-data-dir={}", profile.path().display()),
            ]
        });
        if let Some(chromium) = on_path("chromium") {
            options["binary"] = json!(chromium.display().to_string());
        }
        let mut caps = serde_json::Map::new();
        caps.insert("goog:chromeOptions".into(), options);
        let webdriver = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + START_PATIENCE;
        let client = loop {
            let connector = hyper_util::client::legacy::connect::HttpConnector::new();
            match ClientBuilder::new(connector)
                .capabilities(caps.clone())
                .connect(&webdriver)
                .await
            {
                Ok(c) => break c,
                Err(e) => {
                    assert!(
                        Instant::now() < deadline,
                        "chromedriver at {webdriver} did not start a session: {e}"
                    );
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        };
        Some(Browser {
            client,
            base: base.to_string(),
            closed: false,
            _driver: driver,
            _profile: profile,
            _turn: turn,
        })
    }

    pub async fn goto(&self, path: &str) {
        self.client
            .goto(&format!("{}{path}", self.base))
            .await
            .unwrap_or_else(|e| panic!("goto {path}: {e}"));
    }

    /// The path of the page shown.
    pub async fn path(&self) -> String {
        self.client.current_url().await.unwrap().path().to_string()
    }

    pub async fn text(&self, css: &str) -> String {
        let e = self
            .client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no {css} on {}: {e}", self.base));
        e.text().await.unwrap()
    }

    pub async fn count(&self, css: &str) -> usize {
        self.client.find_all(Locator::Css(css)).await.unwrap().len()
    }

    pub async fn attr(&self, css: &str, name: &str) -> Option<String> {
        let e = self.client.find(Locator::Css(css)).await.unwrap();
        e.attr(name).await.unwrap()
    }

    /// Clicks a link or submit button and waits for the next page: the old
    /// document goes stale, the new one finishes loading.
    pub async fn click(&self, css: &str) {
        let old = self.client.find(Locator::Css("html")).await.unwrap();
        self.client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no {css} to click: {e}"))
            .click()
            .await
            .unwrap();
        let deadline = Instant::now() + super::common::PATIENCE;
        while old.tag_name().await.is_ok() {
            assert!(Instant::now() < deadline, "clicking {css} loaded no page");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        self.wait_loaded().await;
    }

    async fn wait_loaded(&self) {
        let deadline = Instant::now() + super::common::PATIENCE;
        loop {
            let state = self
                .client
                .execute("return document.readyState", vec![])
                .await
                .ok();
            if state.as_ref().and_then(|s| s.as_str()) == Some("complete") {
                return;
            }
            assert!(Instant::now() < deadline, "the page did not finish loading");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub async fn type_into(&self, css: &str, text: &str) {
        let e = self.client.find(Locator::Css(css)).await.unwrap();
        e.clear().await.unwrap();
        e.send_keys(text).await.unwrap();
    }

    /// Signs in with `token` from the sign-in page; lands on destinations.
    pub async fn sign_in(&self, token: &str) {
        self.goto("/console/login").await;
        self.type_into("#token", token).await;
        self.click("#sign-in").await;
        assert_eq!(self.path().await, "/console/destinations");
    }

    /// Reloads until the text of `css` satisfies `done`.
    pub async fn wait_text(&self, css: &str, what: &str, done: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + super::common::PATIENCE;
        loop {
            if let Ok(e) = self.client.find(Locator::Css(css)).await {
                let text = e.text().await.unwrap_or_default();
                if done(&text) {
                    return text;
                }
                assert!(
                    Instant::now() < deadline,
                    "timed out waiting for {what}: {css} shows {text:?}"
                );
            } else {
                assert!(
                    Instant::now() < deadline,
                    "timed out waiting for {what}: no {css}"
                );
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
            self.client.refresh().await.unwrap();
        }
    }

    /// Waits (no reload: the page may be a POST's answer) for `css` to appear.
    pub async fn wait_text_no_reload(&self, css: &str, what: &str) -> String {
        let deadline = Instant::now() + super::common::PATIENCE;
        loop {
            if let Ok(e) = self.client.find(Locator::Css(css)).await {
                return e.text().await.unwrap_or_default();
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}: no {css}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Writes the page shown to `target/console-screenshots/NAME.png`.
    pub async fn screenshot(&self, name: &str) {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/console-screenshots");
        std::fs::create_dir_all(&dir).unwrap();
        let png = self.client.screenshot().await.unwrap();
        assert!(png.starts_with(b"\x89PNG"), "not a PNG");
        std::fs::write(dir.join(format!("{name}.png")), png).unwrap();
    }

    pub async fn close(mut self) {
        let _ = self.client.clone().close().await;
        self.closed = true;
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if self.closed {
            return;
        }
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            return;
        };
        if handle.runtime_flavor() != tokio::runtime::RuntimeFlavor::MultiThread {
            return;
        }
        let client = self.client.clone();
        tokio::task::block_in_place(|| {
            let _ = handle.block_on(tokio::time::timeout(
                Duration::from_secs(10),
                client.close(),
            ));
        });
    }
}
