//! In-process router harness: `hub::app(state)` over a fresh store, called
//! with `tower::ServiceExt::oneshot` (SCIM with the clients' bearer tokens,
//! webhooks signed for [`super::SOURCE`]).

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use hub::config::{RawConfig, ScimClientSettings};
use serde_json::Value;
use sha2::{Digest, Sha256};
use tower::ServiceExt;

/// Generates `on_sqlite::NAME` and `on_postgres::NAME` tests from
/// `async fn NAME(Hub)`, each on a fresh in-process hub; the PostgreSQL ones
/// are ignored unless `HUB_TEST_DATABASE_URL` is set (see build.rs).
#[macro_export]
macro_rules! router_tests {
    ($($name:ident),* $(,)?) => {
        mod on_sqlite {
            $(#[tokio::test]
            async fn $name() { super::$name($crate::common::router::hub(false).await).await; })*
        }
        mod on_postgres {
            $(#[tokio::test]
            #[cfg_attr(not(hub_pg), ignore = "set HUB_TEST_DATABASE_URL to run the PostgreSQL variant")]
            async fn $name() { super::$name($crate::common::router::hub(true).await).await; })*
        }
    };
}

pub const OKTA: &str = "okta-token";

/// A PatchOp request body with these operations.
pub fn patch_body(ops: Value) -> Option<Value> {
    Some(
        serde_json::json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": ops}),
    )
}
pub const ENTRA: &str = "entra-token";

pub struct Hub {
    pub app: axum::Router,
    pub state: hub::AppState,
    // Dropped after the state's pool: a PostgreSQL database goes with it.
    _db: super::Db,
    _dir: tempfile::TempDir,
}

/// An in-process hub on a fresh database: one enabled destination (`sink`,
/// nothing listens there), brand `acme`, SCIM clients `okta` and `entra`,
/// webhook source [`super::SOURCE`].
pub async fn hub(postgres: bool) -> Hub {
    let dir = tempfile::tempdir().unwrap();
    let backend = if postgres {
        super::Backend::Postgres
    } else {
        super::Backend::Sqlite
    };
    let db = super::Db::create(backend, dir.path()).await;
    let mappings = dir.path().join("mappings");
    std::fs::create_dir_all(&mappings).unwrap();
    std::fs::write(
        mappings.join("sink.yaml"),
        "destination: sink\nconnector: webhook\nenabled: true\nsettings:\n  url: http://127.0.0.1:9/hook\n  secret: whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\non_delete: delete\nfields:\n  email: { from: 'emails[primary eq true].value' }\n",
    )
    .unwrap();
    let mut raw = RawConfig {
        listen: "127.0.0.1:0".into(),
        database_url: db.url.clone(),
        mappings,
        ..Default::default()
    };
    raw.brands
        .insert("acme".into(), hub::config::BrandSettings::default());
    raw.sources.insert(
        super::SOURCE.into(),
        hub::config::SourceSettings {
            secret: Some(super::source_secret().to_text()),
            secrets: vec![],
        },
    );
    raw.admin.token_sha256 = Some(hex::encode(Sha256::digest(super::ADMIN_TOKEN.as_bytes())));
    for (name, token) in [("okta", OKTA), ("entra", ENTRA)] {
        raw.scim.clients.insert(
            name.into(),
            ScimClientSettings {
                token_sha256: hex::encode(Sha256::digest(token.as_bytes())),
            },
        );
    }
    let (state, _writer) = hub::build_state(raw.validate().unwrap()).await.unwrap();
    assert_eq!(
        state.destinations.load().enabled_names(),
        vec!["sink".to_string()]
    );
    Hub {
        app: hub::app(state.clone()),
        state,
        _db: db,
        _dir: dir,
    }
}

pub struct Reply {
    pub status: StatusCode,
    pub headers: axum::http::HeaderMap,
    pub body: Value,
}

impl Hub {
    pub async fn call(
        &self,
        token: Option<&str>,
        method: &str,
        uri: &str,
        body: Option<Value>,
        extra: &[(&str, &str)],
    ) -> Reply {
        let mut req = Request::builder()
            .method(method)
            .uri(uri)
            .header("host", "hub.test");
        if let Some(t) = token {
            req = req.header("authorization", format!("Bearer {t}"));
        }
        for (k, v) in extra {
            req = req.header(*k, *v);
        }
        let req = match body {
            Some(b) => req
                .header("content-type", "application/scim+json")
                .body(Body::from(b.to_string())),
            None => req.body(Body::empty()),
        }
        .unwrap();
        let resp = self.app.clone().oneshot(req).await.unwrap();
        let status = resp.status();
        let headers = resp.headers().clone();
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap()
        };
        if !bytes.is_empty() {
            assert_eq!(headers["content-type"], "application/scim+json", "{uri}");
        }
        Reply {
            status,
            headers,
            body,
        }
    }

    pub async fn okta(&self, method: &str, uri: &str, body: Option<Value>) -> Reply {
        self.call(Some(OKTA), method, uri, body, &[]).await
    }

    pub async fn entra(&self, method: &str, uri: &str, body: Option<Value>) -> Reply {
        self.call(Some(ENTRA), method, uri, body, &[]).await
    }

    pub async fn pending_jobs(&self) -> i64 {
        self.state.store.stats().await.unwrap().pending_jobs
    }
}

pub fn assert_error(r: &Reply, status: u16, scim_type: Option<&str>) {
    assert_eq!(r.status.as_u16(), status, "{}", r.body);
    assert_eq!(
        r.body["schemas"][0],
        "urn:ietf:params:scim:api:messages:2.0:Error"
    );
    assert_eq!(r.body["status"], status.to_string());
    assert_eq!(r.body["scimType"].as_str(), scim_type, "{}", r.body);
}

impl Hub {
    /// Any request; the body is parsed as JSON when it is JSON.
    pub async fn send(&self, req: Request<Body>) -> Reply {
        let resp = self.app.clone().oneshot(req).await.unwrap();
        let status = resp.status();
        let headers = resp.headers().clone();
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        let body = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
        Reply {
            status,
            headers,
            body,
        }
    }

    /// `POST /webhooks/ciam` with `body` as sent, signed, under a fresh id.
    pub async fn webhook_raw(&self, body: Vec<u8>) -> Reply {
        let id = format!("msg_{}", uuid::Uuid::new_v4().simple());
        let ts = chrono::Utc::now().timestamp();
        let signature = super::source_secret().sign(&id, ts, &body);
        let req = Request::builder()
            .method("POST")
            .uri(format!("/webhooks/{}", super::SOURCE))
            .header("content-type", "application/json")
            .header("webhook-id", id)
            .header("webhook-timestamp", ts.to_string())
            .header("webhook-signature", signature)
            .body(Body::from(body))
            .unwrap();
        let r = self.send(req).await;
        if !r.status.is_success() {
            assert_eq!(
                r.headers["content-type"], "application/problem+json",
                "{}",
                r.body
            );
        }
        r
    }

    /// A canonical event as a signed webhook.
    pub async fn webhook(&self, event: &Value) -> Reply {
        self.webhook_raw(serde_json::to_vec(event).unwrap()).await
    }

    /// `/admin/...` with the admin token.
    pub async fn admin(&self, method: &str, uri: &str, body: Option<Value>) -> Reply {
        let req = Request::builder()
            .method(method)
            .uri(uri)
            .header("authorization", format!("Bearer {}", super::ADMIN_TOKEN));
        let req = match body {
            Some(b) => req
                .header("content-type", "application/json")
                .body(Body::from(b.to_string())),
            None => req.body(Body::empty()),
        }
        .unwrap();
        self.send(req).await
    }

    /// Creates a SCIM User (as Okta) with just this userName; its id.
    pub async fn create_user(&self, user_name: &str) -> String {
        let body = serde_json::json!({"userName": user_name});
        let r = self.okta("POST", "/scim/v2/Users", Some(body)).await;
        assert_eq!(r.status, 201, "{}", r.body);
        r.body["id"].as_str().unwrap().to_string()
    }

    /// Row counts of the given tables.
    pub async fn counts(&self, tables: &[&str]) -> Vec<(String, i64)> {
        self._db.counts(tables).await
    }
}
