//! The console over plain HTTP, as a browser without JavaScript would use
//! it: redirects shown, not followed; one session cookie held by hand.

use super::common::TestHub;

/// A client that shows redirects instead of following them, holding one
/// session cookie by hand.
pub struct Console {
    pub http: reqwest::Client,
    base: String,
    pub cookie: Option<String>,
}

pub struct Page {
    pub status: u16,
    pub location: Option<String>,
    pub set_cookie: Option<String>,
    pub content_type: String,
    pub body: String,
}

impl Console {
    pub fn new(hub: &TestHub) -> Console {
        Console {
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            base: hub.url.clone(),
            cookie: None,
        }
    }

    pub async fn send(&self, req: reqwest::RequestBuilder) -> Page {
        let req = match &self.cookie {
            Some(c) => req.header("cookie", format!("hub_console={c}")),
            None => req,
        };
        let r = req.send().await.unwrap();
        let header = |name: &str| {
            r.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        let page = Page {
            status: r.status().as_u16(),
            location: header("location"),
            set_cookie: header("set-cookie"),
            content_type: header("content-type").unwrap_or_default(),
            body: String::new(),
        };
        let body = r.text().await.unwrap();
        assert!(page.status < 500, "{}: {body}", page.status);
        if page.status != 303 {
            assert!(
                page.content_type.starts_with("text/html"),
                "{} {}",
                page.status,
                page.content_type
            );
        }
        Page { body, ..page }
    }

    pub async fn get(&self, path: &str) -> Page {
        self.send(self.http.get(format!("{}{path}", self.base)))
            .await
    }

    pub async fn post(&self, path: &str, fields: &[(&str, &str)]) -> Page {
        let body: String = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(fields)
            .finish();
        self.send(
            self.http
                .post(format!("{}{path}", self.base))
                .header("content-type", "application/x-www-form-urlencoded")
                .body(body),
        )
        .await
    }

    /// Signs in; keeps the session cookie.
    pub async fn sign_in(&mut self, token: &str) -> Page {
        let page = self.post("/console/login", &[("token", token)]).await;
        assert_eq!(page.status, 303, "{}", page.body);
        let cookie = page.set_cookie.clone().expect("a session cookie");
        let value = cookie
            .strip_prefix("hub_console=")
            .and_then(|c| c.split(';').next())
            .expect("hub_console=...")
            .to_string();
        self.cookie = Some(value);
        page
    }

    /// The CSRF token the pages of this session carry.
    pub async fn csrf(&self) -> String {
        let page = self.get("/console/destinations").await;
        assert_eq!(page.status, 200);
        csrf_in(&page.body)
    }
}

pub fn csrf_in(html: &str) -> String {
    let start =
        html.find("name=\"csrf\" value=\"").expect("a csrf field") + "name=\"csrf\" value=\"".len();
    html[start..].split('"').next().unwrap().to_string()
}
