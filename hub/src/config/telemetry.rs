//! `[telemetry]`: where spans go. With no `otlp_endpoint` nothing is
//! exported and nothing extra runs.

use std::time::Duration;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TelemetrySettings {
    /// An OTLP/HTTP collector, e.g. `http://127.0.0.1:4318`; spans are
    /// posted (protobuf) to `/v1/traces` under it. Unset: no export.
    #[serde(default)]
    pub otlp_endpoint: Option<String>,
    /// `service.name` of every span.
    #[serde(default = "default_service_name")]
    pub service_name: String,
    /// One export call, answer included.
    #[serde(default = "default_export_timeout", with = "humantime_serde")]
    pub export_timeout: Duration,
}

impl Default for TelemetrySettings {
    fn default() -> Self {
        Self {
            otlp_endpoint: None,
            service_name: default_service_name(),
            export_timeout: default_export_timeout(),
        }
    }
}

fn default_service_name() -> String {
    "hub".into()
}

fn default_export_timeout() -> Duration {
    Duration::from_secs(10)
}

/// `[telemetry]` once checked: the collector's traces URL, if any.
#[derive(Debug, Clone, Default)]
pub struct Telemetry {
    /// `{otlp_endpoint}/v1/traces`.
    pub traces_url: Option<url::Url>,
    pub service_name: String,
    pub export_timeout: Duration,
}

impl Telemetry {
    /// Spans are exported (and jobs carry their request's trace context).
    pub fn enabled(&self) -> bool {
        self.traces_url.is_some()
    }
}

impl TelemetrySettings {
    pub fn validate(self, errors: &mut Vec<String>) -> Telemetry {
        if self.service_name.trim().is_empty() {
            errors.push("telemetry.service_name must not be empty".into());
        }
        if self.export_timeout.is_zero() {
            errors.push("telemetry.export_timeout must not be 0".into());
        }
        let traces_url = self.otlp_endpoint.as_deref().and_then(|text| {
            // The URL is not quoted: it may carry credentials.
            let parsed = url::Url::parse(text.trim())
                .ok()
                .filter(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some());
            let Some(base) = parsed else {
                errors.push(
                    "telemetry.otlp_endpoint: expected an http:// or https:// URL of an OTLP/HTTP collector"
                        .into(),
                );
                return None;
            };
            let path = format!("{}/v1/traces", base.path().trim_end_matches('/'));
            let mut traces = base;
            traces.set_path(&path);
            Some(traces)
        });
        Telemetry {
            traces_url,
            service_name: self.service_name,
            export_timeout: self.export_timeout,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(endpoint: Option<&str>) -> (Telemetry, Vec<String>) {
        let mut errors = Vec::new();
        let t = TelemetrySettings {
            otlp_endpoint: endpoint.map(String::from),
            ..Default::default()
        }
        .validate(&mut errors);
        (t, errors)
    }

    #[test]
    fn no_endpoint_exports_nothing() {
        let (t, errors) = check(None);
        assert!(errors.is_empty());
        assert!(!t.enabled());
    }

    #[test]
    fn an_endpoint_gets_the_traces_path() {
        let (t, _) = check(Some("http://127.0.0.1:4318"));
        assert_eq!(
            t.traces_url.unwrap().as_str(),
            "http://127.0.0.1:4318/v1/traces"
        );
        let (t, _) = check(Some("https://otel.example/base/"));
        assert_eq!(
            t.traces_url.unwrap().as_str(),
            "https://otel.example/base/v1/traces"
        );
    }

    #[test]
    fn a_bad_endpoint_is_refused_without_quoting_it() {
        let (t, errors) = check(Some("ftp://user:secret@x"));
        assert!(!t.enabled());
        assert_eq!(errors.len(), 1);
        assert!(!errors[0].contains("secret"), "{errors:?}");
    }
}
