//! Property tests: no panics on arbitrary input, generated trees round-trip
//! through their canonical text, and re-parsing canonical text is stable.

use proptest::prelude::*;
use serde_json::{Number, Value};

use crate::{AttrPath, CompareOp, Filter, ValuePath, parse_filter, parse_value_path};

const SCHEMAS: [&str; 3] = [
    "urn:ietf:params:scim:schemas:core:2.0:User",
    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User",
    "urn:example:x.y-z_1",
];

fn config() -> ProptestConfig {
    ProptestConfig::with_cases(256)
}

fn name() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => "[a-zA-Z][a-zA-Z0-9_-]{0,6}",
        1 => prop::sample::select(vec!["not", "and", "or", "pr", "eq", "true", "$ref", "NOT"])
            .prop_map(str::to_owned),
    ]
}

fn attr_path(with_sub: bool) -> impl Strategy<Value = AttrPath> {
    let sub = if with_sub {
        prop::option::of(name()).boxed()
    } else {
        Just(None).boxed()
    };
    (
        prop::option::of(prop::sample::select(SCHEMAS.to_vec())),
        name(),
        sub,
    )
        .prop_map(|(schema, name, sub_attr)| AttrPath {
            schema: schema.map(str::to_owned),
            name,
            sub_attr,
        })
}

fn value() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<String>().prop_map(Value::String),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_filter_map("finite", |x| Number::from_f64(x).map(Value::Number)),
        any::<bool>().prop_map(Value::Bool),
        Just(Value::Null),
    ]
}

fn filter() -> impl Strategy<Value = Filter> {
    let op = prop::sample::select(CompareOp::ALL.to_vec());
    let leaf = prop_oneof![
        attr_path(true).prop_map(Filter::Present),
        (attr_path(true), op, value()).prop_map(|(path, op, value)| Filter::Compare {
            path,
            op,
            value
        }),
    ];
    leaf.prop_recursive(5, 32, 2, |inner| {
        prop_oneof![
            (inner.clone(), inner.clone()).prop_map(|(l, r)| Filter::And(Box::new(l), Box::new(r))),
            (inner.clone(), inner.clone()).prop_map(|(l, r)| Filter::Or(Box::new(l), Box::new(r))),
            inner.clone().prop_map(|f| Filter::Not(Box::new(f))),
            (attr_path(false), inner).prop_map(|(attr, f)| Filter::ValuePath {
                attr,
                filter: Box::new(f)
            }),
        ]
    })
}

/// Canonical value paths: a sub-attribute after `]` only with a filter.
fn value_path() -> impl Strategy<Value = ValuePath> {
    prop_oneof![
        attr_path(true).prop_map(|attr| ValuePath {
            attr,
            filter: None,
            sub_attr: None
        }),
        (attr_path(false), filter(), prop::option::of(name())).prop_map(|(attr, f, sub_attr)| {
            ValuePath {
                attr,
                filter: Some(f),
                sub_attr,
            }
        }),
    ]
}

fn token() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec![
        "userName",
        "emails",
        "name.givenName",
        "urn:ietf:params:scim:schemas:core:2.0:User:",
        "value",
        "type",
        "eq",
        "EQ",
        "ne",
        "co",
        "sw",
        "ew",
        "gt",
        "ge",
        "lt",
        "le",
        "pr",
        "and",
        "or",
        "not",
        "NOT",
        "(",
        ")",
        "[",
        "]",
        ".",
        ":",
        "\"x\"",
        "\"",
        "\\",
        "\"a\\\"b\"",
        "1",
        "-2.5e3",
        "1.",
        "true",
        "null",
        "False",
        " ",
        "  ",
        "\t",
        "é",
        "$ref",
        "\\u00e9",
    ])
}

/// Filter-ish token soup: random sequences of grammar tokens.
fn token_soup() -> impl Strategy<Value = String> {
    (
        prop::collection::vec(token(), 0..24),
        prop::collection::vec(any::<bool>(), 24),
    )
        .prop_map(|(tokens, spaces)| {
            let mut s = String::new();
            for (t, space) in tokens.iter().zip(spaces) {
                s.push_str(t);
                if space {
                    s.push(' ');
                }
            }
            s
        })
}

/// Canonical text of a generated filter with a few random edits: near-valid
/// input, so many cases are accepted and exercise property (3).
fn mutated() -> impl Strategy<Value = String> {
    let edit = (any::<prop::sample::Index>(), 0..4u8, token());
    (filter(), prop::collection::vec(edit, 0..3)).prop_map(|(f, edits)| {
        let mut chars: Vec<char> = f.to_string().chars().collect();
        for (at, kind, tok) in edits {
            let i = at.index(chars.len() + 1);
            match kind {
                0 if i < chars.len() => {
                    chars.remove(i);
                }
                1 => {
                    chars.splice(i..i, tok.chars());
                }
                2 => chars = chars.iter().flat_map(|c| c.to_uppercase()).collect(),
                _ => chars.splice(i..i, [' ', '\t']).for_each(drop),
            }
        }
        chars.into_iter().collect()
    })
}

/// Property (3): an accepted input's canonical text parses to the same tree.
fn assert_stable(s: &str) -> Result<(), TestCaseError> {
    if let Ok(first) = parse_filter(s) {
        prop_assert_eq!(parse_filter(&first.to_string()), Ok(first));
    }
    if let Ok(first) = parse_value_path(s) {
        prop_assert_eq!(parse_value_path(&first.to_string()), Ok(first));
    }
    Ok(())
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn arbitrary_strings_never_panic(s in any::<String>()) {
        assert_stable(&s)?;
    }

    #[test]
    fn token_soup_never_panics(s in token_soup()) {
        assert_stable(&s)?;
        if let Ok(f) = parse_filter(&s) {
            let _ = f.matches(&super::sample_user());
        }
    }

    #[test]
    fn mutated_filters_never_panic(s in mutated()) {
        assert_stable(&s)?;
    }

    #[test]
    fn generated_filters_round_trip(f in filter()) {
        let text = f.to_string();
        prop_assert_eq!(parse_filter(&text), Ok(f.clone()));
        // Evaluation is total: any tree against any resource, no panic.
        let _ = f.matches_with(&super::sample_user(), &|p| p.name.len() % 2 == 0);
    }

    #[test]
    fn generated_value_paths_round_trip(vp in value_path()) {
        prop_assert_eq!(parse_value_path(&vp.to_string()), Ok(vp.clone()));
        let _ = vp.select(&super::sample_user());
    }

    #[test]
    fn canonical_text_is_stable(f in filter()) {
        assert_stable(&f.to_string())?;
    }
}
