//! The example mappings of the marketing connectors build their connector
//! (secrets stand in for `${env:...}`) and define its identity fields.

use std::path::Path;

use serde_json::Value;

fn example(name: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../mappings")
        .join(name);
    let text = std::fs::read_to_string(&path).expect("example mapping");
    vendor_fakes::yaml::to_json(&text).expect("YAML")
}

/// `${env:NAME}` as a value that passes the connector's checks.
fn resolved(settings: &Value, secret: &str) -> Value {
    let text = settings.to_string();
    let mut out = String::new();
    let mut rest = text.as_str();
    while let Some(start) = rest.find("${env:") {
        out.push_str(&rest[..start]);
        let end = rest[start..].find('}').expect("closed reference") + start;
        out.push_str(secret);
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    serde_json::from_str(&out).unwrap()
}

#[test]
fn the_marketing_examples_are_disabled_build_and_define_their_identity() {
    for (file, secret) in [
        ("mailchimp.yaml", "0123456789abcdef-us6"),
        ("klaviyo.yaml", "pk_example"),
    ] {
        let doc = example(file);
        assert_eq!(doc["enabled"], false, "{file}");
        let connector = doc["connector"].as_str().unwrap();
        let settings = resolved(&doc["settings"], secret);
        let c = connectors::build(connector, &settings).unwrap_or_else(|e| panic!("{file}: {e}"));
        for field in c.identity_fields() {
            assert!(doc["fields"].get(&field).is_some(), "{file} lacks {field}");
        }
        assert!(
            doc["settings"].to_string().contains("${env:"),
            "{file}: secrets come from the environment"
        );
    }
}
