//! Every kind of validation error, with its exact `file:line:col` location.

use std::path::Path;

use mapping::{MappingError, parse_file};

fn env(name: &str) -> Option<String> {
    (name == "SET").then(|| "value".to_owned())
}

fn errors(text: &str) -> Vec<MappingError> {
    match parse_file(Path::new("m.yaml"), text, &env) {
        Ok(d) => panic!("expected errors, parsed {}", d.name),
        Err(e) => e,
    }
}

fn messages(text: &str) -> Vec<String> {
    errors(text).iter().map(ToString::to_string).collect()
}

/// A valid file with `extra` appended at the top level (after line 4).
fn with(extra: &str) -> String {
    format!("destination: d\nconnector: webhook\nfields:\n  a: {{ from: userName }}\n{extra}")
}

#[test]
fn valid_minimal_file() {
    let d = parse_file(Path::new("m.yaml"), &with(""), &env).unwrap_or_else(|e| panic!("{e:?}"));
    assert!(d.enabled && d.consent.is_empty() && d.when.is_none() && d.brand.is_none());
    assert_eq!(d.settings.as_value(), &serde_json::json!({}));
}

#[test]
fn three_mistakes_give_three_errors() {
    let text = "\
destination: Bad Name
connector: webhook
fields:
  email:
    from: emails.value
    transform: [trim, lowercasee]
  x: { from: a, value: b }
";
    assert_eq!(
        messages(text),
        [
            "m.yaml:1:14: destination: invalid destination name \"Bad Name\"; use lowercase \
             letters, digits, \"_\" and \"-\", starting with a letter or digit",
            "m.yaml:6:23: fields.email.transform[1]: unknown transform \"lowercasee\"; expected \
             one of trim, lowercase, uppercase, sha256, e164, date, unix_seconds, to_string, \
             to_number, to_bool",
            "m.yaml:7:17: fields.x: use either `from` (a SCIM value path) or `value` (a \
             constant), not both",
        ]
    );
}

#[test]
fn unknown_keys() {
    let text = with("conector: x\n  \n");
    assert_eq!(
        messages(&text),
        [
            "m.yaml:5:1: conector: unknown key \"conector\"; expected one of destination, \
          connector, enabled, brand, settings, consent, on_delete, on_withdraw, when, fields"
        ]
    );
    let text =
        "destination: d\nconnector: c\nfields:\n  a:\n    from: userName\n    tranform: [trim]\n";
    assert_eq!(
        messages(text),
        [
            "m.yaml:6:5: fields.a.tranform: unknown key \"tranform\"; expected one of from, value, \
          transform, default, map, consent"
        ]
    );
}

#[test]
fn wrong_types() {
    assert_eq!(
        messages(&with("enabled: \"yes\"\n")),
        ["m.yaml:5:10: enabled: expected a boolean (true or false), found a string"]
    );
    assert_eq!(
        messages(&with("consent: marketing\n")),
        ["m.yaml:5:10: consent: expected a list of consent purposes, found a string"]
    );
    assert_eq!(
        messages(&with("settings: [1]\n")),
        ["m.yaml:5:11: settings: expected a mapping, found a list"]
    );
    assert_eq!(
        messages("destination: d\nconnector: c\nfields:\n  a: { from: [x] }\n"),
        ["m.yaml:4:14: fields.a.from: expected a string, found a list"]
    );
    assert_eq!(
        messages("destination: d\nconnector: c\nfields:\n  a: { from: x, transform: trim }\n"),
        ["m.yaml:4:28: fields.a.transform: expected a list of transforms, found a string"]
    );
    assert_eq!(
        messages("- a\n- b\n"),
        ["m.yaml:1:1: expected a mapping, found a list"]
    );
}

#[test]
fn bad_enum_values_list_allowed_ones() {
    assert_eq!(
        messages(&with("on_delete: remove\non_withdraw: Delete\n")),
        [
            "m.yaml:5:12: on_delete: invalid value \"remove\"; expected one of delete, suppress, \
             ignore",
            "m.yaml:6:14: on_withdraw: invalid value \"Delete\"; expected one of suppress, \
             unsubscribe, delete, ignore",
        ]
    );
}

#[test]
fn missing_required_keys() {
    assert_eq!(
        messages("destination: d\n"),
        [
            "m.yaml:1:1: connector: missing required key",
            "m.yaml:1:1: fields: missing required key",
        ]
    );
    assert_eq!(
        messages(""),
        [
            "m.yaml:1:1: the file is empty; expected a mapping with destination, connector and fields"
        ]
    );
}

#[test]
fn bad_when_points_into_the_filter() {
    let filter = "active eq true and (";
    let offset = scim::parse_filter(filter).err().map(|e| e.position);
    let Some(offset) = offset else {
        panic!("{filter:?} should not parse");
    };
    let e = errors(&with(&format!("when: {filter}\n")));
    assert_eq!(e.len(), 1);
    assert_eq!((e[0].line, e[0].col), (5, 7 + offset));
    assert_eq!(e[0].key_path, "when");
    assert!(
        e[0].reason.starts_with("invalid filter: "),
        "{}",
        e[0].reason
    );

    // Quoted: columns are not exact, so the value's start plus the offset in the text.
    let e = errors(&with(&format!("when: \"{filter}\"\n")));
    assert_eq!((e[0].line, e[0].col), (5, 7));
    if offset > 0 {
        assert!(
            e[0].reason.contains(&format!("at position {offset}")),
            "{}",
            e[0].reason
        );
    }
}

#[test]
fn bad_from_points_into_the_path() {
    let path = "emails[type eq ].value";
    let Some(offset) = scim::parse_value_path(path).err().map(|e| e.position) else {
        panic!("{path:?} should not parse");
    };
    let e = errors(&format!(
        "destination: d\nconnector: c\nfields:\n  a:\n    from: {path}\n"
    ));
    assert_eq!(e.len(), 1);
    assert_eq!(
        (e[0].line, e[0].col, e[0].key_path.as_str()),
        (5, 11 + offset, "fields.a.from")
    );
    assert!(
        e[0].reason.starts_with("invalid value path: "),
        "{}",
        e[0].reason
    );
}

#[test]
fn transform_errors() {
    let text = "destination: d\nconnector: c\nfields:\n  a:\n    from: x\n    transform:\n      - trim\n      - date\n      - { date: \"%Q\" }\n      - { nope: 1 }\n      - { trim: 1 }\n      - [trim]\n";
    assert_eq!(
        messages(text),
        [
            "m.yaml:8:9: fields.a.transform[1]: transform \"date\" needs an argument; write it as \
             `{ date: ... }`",
            "m.yaml:9:17: fields.a.transform[2]: invalid date format \"%Q\"",
            "m.yaml:10:11: fields.a.transform[3]: unknown transform \"nope\"; expected one of \
             trim, lowercase, uppercase, sha256, e164, date, unix_seconds, to_string, to_number, \
             to_bool",
            "m.yaml:11:17: fields.a.transform[4]: transform \"trim\" takes no argument; write it \
             as `trim`",
            "m.yaml:12:9: fields.a.transform[5]: expected a transform name or { name: argument \
             }, found a list",
        ]
    );
}

#[test]
fn neither_from_nor_value() {
    assert_eq!(
        messages("destination: d\nconnector: c\nfields:\n  a: { default: 1 }\n  b:\n    map: {}\n"),
        [
            "m.yaml:4:6: fields.a: needs `from` (a SCIM value path) or `value` (a constant)",
            "m.yaml:5:3: fields.b: needs `from` (a SCIM value path) or `value` (a constant)",
        ]
    );
}

#[test]
fn yaml_syntax_errors_have_their_own_position() {
    let e = errors("destination: d\nconnector: [c\nfields: {}\n");
    assert_eq!(e.len(), 1);
    assert!(
        e[0].reason.starts_with("YAML syntax error: "),
        "{}",
        e[0].reason
    );
    assert_eq!(e[0].key_path, "");
    assert_eq!((e[0].line, e[0].col), (3, 7), "{}", e[0]);

    let e = errors("destination: d\ndestination: e\n");
    assert_eq!(e.len(), 1);
    assert_eq!((e[0].line, e[0].col), (2, 1), "{}", e[0]);
}

#[test]
fn env_substitution() {
    let text =
        with("settings:\n  url: https://x/${env:SET}/y\n  n: 3\n  h: { k: [\"${env:SET}\"] }\n");
    let d = parse_file(Path::new("m.yaml"), &text, &env).unwrap_or_else(|e| panic!("{e:?}"));
    assert_eq!(
        d.settings.as_value(),
        &serde_json::json!({"url": "https://x/value/y", "n": 3, "h": {"k": ["value"]}})
    );
    // Only settings are substituted.
    let d = parse_file(Path::new("m.yaml"), &with("brand: ${env:SET}\n"), &env);
    assert_eq!(d.ok().and_then(|d| d.brand).as_deref(), Some("${env:SET}"));
}

#[test]
fn missing_env_is_an_error_at_the_value() {
    let text = with(
        "settings:\n  secret: ${env:NOPE}\n  url: https://x/${env:ALSO_NOPE}\n  q: \"${env:BAD NAME}\"\n",
    );
    assert_eq!(
        messages(&text),
        [
            "m.yaml:6:11: settings.secret: environment variable NOPE is not set",
            "m.yaml:7:18: settings.url: environment variable ALSO_NOPE is not set",
            "m.yaml:8:6: settings.q: invalid environment variable name \"BAD NAME\"",
        ]
    );
}

#[test]
fn other_value_checks() {
    assert_eq!(
        messages(&with("brand: \"\"\nconsent: [a, 3]\nconnector2: x\n")),
        [
            "m.yaml:7:1: connector2: unknown key \"connector2\"; expected one of destination, \
             connector, enabled, brand, settings, consent, on_delete, on_withdraw, when, fields",
            "m.yaml:5:8: brand: must not be empty",
            "m.yaml:6:14: consent[1]: expected a string, found a number",
        ]
    );
    assert_eq!(
        messages(
            "destination: d\nconnector: c\nfields:\n  a: { value: 1, map: [x], consent: 2 }\n"
        ),
        [
            "m.yaml:4:23: fields.a.map: expected a mapping of input to output values, found a list",
            "m.yaml:4:37: fields.a.consent: expected a string, found a number",
        ]
    );
    assert_eq!(
        messages("destination: d\nconnector: c\nfields: []\n"),
        ["m.yaml:3:9: fields: expected a mapping of output field names to rules, found a list"]
    );
    assert_eq!(
        messages("destination: d\nconnector: c\nfields: {}\n---\ndestination: e\n"),
        ["m.yaml:5:1: only one YAML document is allowed per file"]
    );
}

#[test]
fn error_display_and_lookup() {
    let d =
        parse_file(Path::new("dir/m.yaml"), &with(""), &env).unwrap_or_else(|e| panic!("{e:?}"));
    let e = d.error_at("connector", "unknown connector \"webhook\"");
    assert_eq!(
        e.to_string(),
        "dir/m.yaml:2:12: connector: unknown connector \"webhook\""
    );
    let e = d.error_at("fields.a.nothing", "x");
    assert_eq!((e.line, e.col), (4, 6));
    let boxed: Box<dyn std::error::Error> = Box::new(e);
    assert!(boxed.to_string().ends_with("fields.a.nothing: x"));
}
