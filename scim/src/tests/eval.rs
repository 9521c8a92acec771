//! Evaluation semantics: operators, types, case rules, multi-valued
//! attributes, schema URNs, dates, presence and `null`.

use serde_json::json;

use super::{eval, f, sample_user};
use crate::{AttrPath, parse_attr_path, parse_value_path};

#[test]
fn string_operators() {
    let u = sample_user();
    assert!(eval(r#"userName eq "bjensen@example.com""#, &u));
    assert!(!eval(r#"userName ne "bjensen@example.com""#, &u));
    assert!(eval(r#"userName co "jensen@""#, &u));
    assert!(eval(r#"userName sw "bjen""#, &u));
    assert!(eval(r#"userName ew ".com""#, &u));
    assert!(!eval(r#"userName sw ".com""#, &u));
    assert!(eval(r#"title gt "Tour""#, &u));
    assert!(eval(r#"title ge "tour guide""#, &u));
    assert!(eval(r#"title lt "Zebra""#, &u));
    assert!(eval(r#"title le "TOUR GUIDE""#, &u));
    assert!(!eval(r#"title lt "Tour""#, &u));
}

#[test]
fn number_operators() {
    let u = sample_user();
    assert!(eval("loginCount eq 42", &u));
    assert!(eval("loginCount eq 42.0", &u));
    assert!(eval("loginCount ne 41", &u));
    assert!(eval("loginCount gt 41.5", &u));
    assert!(eval("loginCount ge 42", &u));
    assert!(eval("loginCount lt 100", &u));
    assert!(eval("loginCount le 42", &u));
    assert!(eval("score gt -1", &u));
    assert!(eval("score lt 3.75", &u));
    assert!(!eval("loginCount co 4", &u));
    assert!(!eval("loginCount sw 4", &u));
    assert!(!eval("loginCount ew 2", &u));
    assert!(eval(
        "big gt 9223372036854775807",
        &json!({"big": u64::MAX})
    ));
}

#[test]
fn booleans_and_type_mismatches() {
    let u = sample_user();
    assert!(eval("active eq true", &u));
    assert!(eval("active ne false", &u));
    assert!(!eval("active gt false", &u));
    assert!(!eval("active co true", &u));
    // Mismatched types are never equal, and never "not equal" either.
    assert!(!eval(r#"loginCount eq "42""#, &u));
    assert!(!eval(r#"loginCount ne "42""#, &u));
    assert!(!eval("userName eq 42", &u));
    assert!(!eval("active eq 1", &u));
    assert!(!eval(r#"name eq "Jensen""#, &u));
}

#[test]
fn null_means_unassigned() {
    let u = sample_user();
    assert!(eval("nosuch eq null", &u));
    assert!(eval("x509Certificates eq null", &u));
    assert!(eval("phoneNumbers eq null", &u));
    assert!(!eval("userName eq null", &u));
    assert!(eval("userName ne null", &u));
    assert!(!eval("nosuch ne null", &u));
    assert!(!eval("userName gt null", &u));
    assert!(!eval("userName co null", &u));
}

#[test]
fn presence_of_empty_forms() {
    let r = json!({
        "s": "x", "empty": "", "nul": null, "arr": [], "arrOfEmpty": ["", null],
        "obj": {}, "zero": 0, "no": false, "full": [{"value": "a"}], "emptyEl": [{}]
    });
    for present in ["s", "zero", "no", "full", "full.value"] {
        assert!(eval(&format!("{present} pr"), &r), "{present}");
    }
    for absent in [
        "empty",
        "nul",
        "arr",
        "arrOfEmpty",
        "obj",
        "missing",
        "emptyEl",
        "s.x",
    ] {
        assert!(!eval(&format!("{absent} pr"), &r), "{absent}");
    }
}

#[test]
fn names_and_operators_are_case_insensitive() {
    let u = sample_user();
    assert!(eval(r#"USERNAME EQ "BJENSEN@EXAMPLE.COM""#, &u));
    assert!(eval(r#"Name.GivenName Sw "bar""#, &u));
    assert!(eval(r#"EMAILS[TYPE eq "WORK" AND Primary Eq TRUE]"#, &u));
    assert!(eval("NOT (title Pr) Or Active EQ true", &u));
}

#[test]
fn case_exact_callback() {
    let u = sample_user();
    let filter = f(r#"userName eq "BJensen@example.com""#);
    let exact_username = |p: &AttrPath| p.name == "userName";
    assert!(filter.matches(&u));
    assert!(!filter.matches_with(&u, &exact_username));
    assert!(f(r#"userName sw "bjensen""#).matches_with(&u, &exact_username));
    assert!(!f(r#"userName sw "BJ""#).matches_with(&u, &|_| true));
    // Inside a value filter the callback sees the absolute path.
    let seen = std::cell::RefCell::new(Vec::new());
    let record = |p: &AttrPath| {
        seen.borrow_mut().push(p.to_string());
        p.to_string() == "emails.type"
    };
    assert!(!f(r#"emails[type eq "WORK"]"#).matches_with(&u, &record));
    assert!(f(r#"emails[type eq "work"]"#).matches_with(&u, &record));
    assert!(seen.borrow().iter().all(|p| p == "emails.type"));
}

#[test]
fn multi_valued_attributes() {
    let u = sample_user();
    assert!(eval(r#"emails.value eq "babs@jensen.org""#, &u));
    assert!(eval(r#"emails.type eq "home""#, &u));
    // Complex attribute without sub-attribute compares each element's value.
    assert!(eval(r#"emails co "jensen.org""#, &u));
    assert!(eval(r#"emails eq "BJENSEN@example.com""#, &u));
    assert!(!eval(r#"emails co "home""#, &u));
    assert!(eval(r#"tags eq "b""#, &json!({"tags": ["a", "b"]})));
}

#[test]
fn complex_value_filters() {
    let u = sample_user();
    assert!(eval(
        r#"emails[type eq "work" and value co "@example.com"]"#,
        &u
    ));
    // Both conditions must hold on the SAME element.
    assert!(!eval(
        r#"emails[type eq "home" and value co "@example.com"]"#,
        &u
    ));
    assert!(eval(
        r#"emails[type eq "home"] and emails[value co "@example.com"]"#,
        &u
    ));
    assert!(eval(r#"emails[not (primary pr)]"#, &u));
    assert!(!eval(r#"phoneNumbers[type pr]"#, &u));
    assert!(eval(r#"name[givenName eq "Barbara"]"#, &u));
}

#[test]
fn urn_prefixed_paths() {
    let u = sample_user();
    let ent = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
    assert!(eval(&format!(r#"{ent}:costCenter eq "4130""#), &u));
    assert!(eval(&format!(r#"{ent}:manager.displayName sw "john""#), &u));
    assert!(eval(
        &format!(r#"{}:COSTCENTER eq "4130""#, ent.to_uppercase()),
        &u
    ));
    assert!(eval(
        r#"urn:ietf:params:scim:schemas:core:2.0:User:userName sw "bjensen""#,
        &u
    ));
    assert!(eval(
        r#"urn:ietf:params:scim:schemas:core:2.0:User:name.givenName eq "barbara""#,
        &u
    ));
    // An extension attribute is not looked up at the top level.
    assert!(!eval(r#"urn:example:ext:userName pr"#, &u));
    assert!(!eval(&format!("{ent}:userName pr"), &u));
}

#[test]
fn date_times_compare_as_instants() {
    let u = sample_user();
    assert!(eval(r#"meta.lastModified gt "2011-05-13T04:42:33Z""#, &u));
    assert!(!eval(r#"meta.lastModified gt "2011-05-13T04:42:34Z""#, &u));
    assert!(eval(r#"meta.lastModified ge "2011-05-13T04:42:34Z""#, &u));
    // Same instant written with an offset and a fraction.
    assert!(eval(
        r#"meta.lastModified eq "2011-05-13T06:42:34.000+02:00""#,
        &u
    ));
    assert!(eval(
        r#"meta.lastModified lt "2011-05-13T05:00:00-00:30""#,
        &u
    ));
    // As text "...T04:42:34Z" < "...T05:00:00+02:00"; as instants 04:42 > 03:00.
    assert!(eval(
        r#"meta.lastModified gt "2011-05-13T05:00:00+02:00""#,
        &u
    ));
    assert!(!eval(
        r#"meta.lastModified lt "2011-05-13T05:00:00+02:00""#,
        &u
    ));
}

#[test]
fn select_values() {
    let u = sample_user();
    let sel = |s: &str| match parse_value_path(s) {
        Ok(vp) => vp.select(&u).into_iter().cloned().collect::<Vec<_>>(),
        Err(e) => panic!("{s}: {e}"),
    };
    assert_eq!(
        sel("emails[primary eq true].value"),
        vec![json!("bjensen@example.com")]
    );
    assert_eq!(
        sel("emails.value"),
        vec![json!("bjensen@example.com"), json!("babs@jensen.org")]
    );
    assert_eq!(
        sel(r#"emails[type eq "HOME"]"#),
        vec![u["emails"][1].clone()]
    );
    assert_eq!(
        sel("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:costCenter"),
        vec![json!("4130")]
    );
    assert_eq!(sel("name.givenName"), vec![json!("Barbara")]);
    assert!(sel("x509Certificates").is_empty());
    assert!(sel("nosuch.value").is_empty());
    assert!(sel("emails[primary eq false].value").is_empty());
    let attr = parse_attr_path("ims.type").map(|p| p.select(&u).len());
    assert_eq!(attr, Ok(1));
}

#[test]
fn odd_resources_never_panic() {
    for r in [
        json!(null),
        json!(3),
        json!("s"),
        json!([1, 2]),
        json!({"a": [[1], {"b": null}]}),
    ] {
        for s in [
            "a pr",
            "a eq 1",
            "a[b pr]",
            "a.b co \"x\"",
            "urn:x:y:a pr",
            "not (a eq null)",
        ] {
            let _ = eval(s, &r);
        }
    }
}
