//! Parsing into the expected trees and printing the canonical text.

use serde_json::json;

use super::f;
use crate::{AttrPath, CompareOp, Filter, ValuePath, parse_attr_path, parse_value_path};

fn p(name: &str) -> AttrPath {
    AttrPath {
        schema: None,
        name: name.to_owned(),
        sub_attr: None,
    }
}

fn cmp(name: &str, op: CompareOp, value: serde_json::Value) -> Filter {
    Filter::Compare {
        path: p(name),
        op,
        value,
    }
}

fn and(l: Filter, r: Filter) -> Filter {
    Filter::And(Box::new(l), Box::new(r))
}

fn or(l: Filter, r: Filter) -> Filter {
    Filter::Or(Box::new(l), Box::new(r))
}

#[test]
fn attr_paths() {
    assert_eq!(parse_attr_path("userName"), Ok(p("userName")));
    assert_eq!(
        parse_attr_path("name.givenName"),
        Ok(AttrPath {
            schema: None,
            name: "name".into(),
            sub_attr: Some("givenName".into())
        })
    );
    assert_eq!(
        parse_attr_path("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value"),
        Ok(AttrPath {
            schema: Some("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User".into()),
            name: "manager".into(),
            sub_attr: Some("value".into())
        })
    );
    assert_eq!(parse_attr_path("  $ref "), Ok(p("$ref")));
}

#[test]
fn value_paths() {
    let vp = parse_value_path(r#"emails[type eq "work"].value"#);
    assert_eq!(
        vp,
        Ok(ValuePath {
            attr: p("emails"),
            filter: Some(cmp("type", CompareOp::Eq, json!("work"))),
            sub_attr: Some("value".into()),
        })
    );
    let members = parse_value_path(r#"members[value eq "2819c223"]"#);
    assert_eq!(members.map(|v| v.sub_attr), Ok(None));
    let plain = parse_value_path("name.familyName");
    assert_eq!(
        plain.map(|v| (v.attr.sub_attr, v.filter.is_none())),
        Ok((Some("familyName".into()), true))
    );
}

#[test]
fn every_operator() {
    for op in CompareOp::ALL {
        let text = format!("age {} 3", op.as_str().to_uppercase());
        assert_eq!(f(&text), cmp("age", op, json!(3)), "{text}");
        assert_eq!(f(&text).to_string(), format!("age {op} 3"));
    }
    assert_eq!(f("title PR"), Filter::Present(p("title")));
}

#[test]
fn values() {
    assert_eq!(
        f(r#"a eq "a\"b\\c\u00e9\n""#),
        cmp("a", CompareOp::Eq, json!("a\"b\\cé\n"))
    );
    assert_eq!(
        f(r#"a eq "\ud83d\ude00""#),
        cmp("a", CompareOp::Eq, json!("😀"))
    );
    assert_eq!(f("a eq -12"), cmp("a", CompareOp::Eq, json!(-12)));
    assert_eq!(f("a eq 1.25e2"), cmp("a", CompareOp::Eq, json!(125.0)));
    assert_eq!(
        f("a eq 18446744073709551615"),
        cmp("a", CompareOp::Eq, json!(u64::MAX))
    );
    assert_eq!(f("a eq TRUE"), cmp("a", CompareOp::Eq, json!(true)));
    assert_eq!(f("a ne False"), cmp("a", CompareOp::Ne, json!(false)));
    assert_eq!(f("a eq null"), cmp("a", CompareOp::Eq, json!(null)));
}

#[test]
fn precedence_and_associativity() {
    let a = || cmp("a", CompareOp::Eq, json!(1));
    let b = || cmp("b", CompareOp::Eq, json!(2));
    let c = || cmp("c", CompareOp::Eq, json!(3));
    assert_eq!(f("a eq 1 or b eq 2 and c eq 3"), or(a(), and(b(), c())));
    assert_eq!(f("a eq 1 and b eq 2 or c eq 3"), or(and(a(), b()), c()));
    assert_eq!(f("(a eq 1 or b eq 2) and c eq 3"), and(or(a(), b()), c()));
    assert_eq!(f("a eq 1 and b eq 2 and c eq 3"), and(and(a(), b()), c()));
    assert_eq!(f("a eq 1 and (b eq 2 and c eq 3)"), and(a(), and(b(), c())));
    assert_eq!(
        f("not (a eq 1) and b eq 2"),
        and(Filter::Not(Box::new(a())), b())
    );
}

#[test]
fn canonical_text() {
    for (input, canonical) in [
        ("a eq 1 or b eq 2 and c eq 3", "a eq 1 or b eq 2 and c eq 3"),
        (
            "(a eq 1 or b eq 2) and c eq 3",
            "(a eq 1 or b eq 2) and c eq 3",
        ),
        (
            "((a eq 1)) AND (b Eq 2 and c eq 3)",
            "a eq 1 and (b eq 2 and c eq 3)",
        ),
        ("a pr or (b pr or c pr)", "a pr or (b pr or c pr)"),
        ("NOT   ( a pr )", "not (a pr)"),
        ("not(a pr)", "not (a pr)"),
        (r#"emails[ type EQ "work" ]"#, r#"emails[type eq "work"]"#),
        ("a eq 1.50", "a eq 1.5"),
        ("a eq true", "a eq true"),
        ("a eq \"tab\there\"", r#"a eq "tab\there""#),
    ] {
        assert_eq!(f(input).to_string(), canonical, "{input}");
        assert_eq!(f(canonical), f(input), "{canonical}");
    }
}

#[test]
fn keywords_can_be_attribute_names() {
    assert_eq!(f("not pr"), Filter::Present(p("not")));
    assert_eq!(
        f("and pr and or pr"),
        and(Filter::Present(p("and")), Filter::Present(p("or")))
    );
    assert_eq!(f("pr eq 1").to_string(), "pr eq 1");
    assert_eq!(
        f("not[a pr]"),
        Filter::ValuePath {
            attr: p("not"),
            filter: Box::new(Filter::Present(p("a")))
        }
    );
}

#[test]
fn display_parses_back() {
    for s in [
        r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value eq "x""#,
        r#"emails[type eq "work" and value co "@example.com"] or ims[type eq "xmpp"]"#,
        "not (not (a pr) or b pr)",
    ] {
        assert_eq!(f(&f(s).to_string()), f(s));
    }
    for s in [
        "emails[primary eq true].value",
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:costCenter",
        "name.givenName",
        r#"members[value eq "2819c223" or display sw "A"]"#,
    ] {
        let vp = parse_value_path(s);
        assert_eq!(vp.as_ref().map(ToString::to_string).as_deref(), Ok(s));
    }
}

#[test]
fn from_str_impls() {
    assert_eq!("a pr".parse::<Filter>(), Ok(Filter::Present(p("a"))));
    assert_eq!(
        "a.b".parse::<AttrPath>().map(|a| a.to_string()).as_deref(),
        Ok("a.b")
    );
    assert!("a[b pr].c".parse::<ValuePath>().is_ok());
}
