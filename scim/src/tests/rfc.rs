//! The example filters of RFC 7644 section 3.4.2.2 against a sample user.

use serde_json::json;

use super::{eval, f, sample_user};

#[test]
fn rfc_examples_parse_round_trip_and_evaluate() {
    let u = sample_user();
    let cases = [
        (r#"userName Eq "john""#, false),
        (r#"userName Eq "bjensen@example.com""#, true),
        (r#"name.familyName co "O'Malley""#, false),
        (r#"userName sw "J""#, false),
        (
            r#"urn:ietf:params:scim:schemas:core:2.0:User:userName sw "J""#,
            false,
        ),
        ("title pr", true),
        (r#"meta.lastModified gt "2011-05-13T04:42:34Z""#, false),
        (r#"meta.lastModified ge "2011-05-13T04:42:34Z""#, true),
        (r#"meta.lastModified lt "2011-05-13T04:42:34Z""#, false),
        (r#"meta.lastModified le "2011-05-13T04:42:34Z""#, true),
        (r#"title pr and userType eq "Employee""#, true),
        (r#"title pr or userType eq "Intern""#, true),
        (
            r#"schemas eq "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User""#,
            true,
        ),
        (
            r#"userType eq "Employee" and (emails co "example.com" or emails.value co "example.org")"#,
            true,
        ),
        (
            r#"userType ne "Employee" and not (emails co "example.com" or emails.value co "example.org")"#,
            false,
        ),
        (
            r#"userType eq "Employee" and (emails.type eq "work")"#,
            true,
        ),
        (
            r#"userType eq "Employee" and emails[type eq "work" and value co "@example.com"]"#,
            true,
        ),
        (
            r#"emails[type eq "work" and value co "@example.com"] or ims[type eq "xmpp" and value co "@foo.com"]"#,
            true,
        ),
    ];
    for (text, expected) in cases {
        let filter = f(text);
        assert_eq!(f(&filter.to_string()), filter, "round trip of {text}");
        assert_eq!(filter.matches(&u), expected, "{text}");
    }
}

#[test]
fn rfc_examples_other_users() {
    let john = json!({"userName": "John", "name": {"familyName": "O'Malley"}, "userType": "Intern",
        "ims": [{"type": "xmpp", "value": "j@foo.com"}]});
    assert!(eval(r#"userName Eq "john""#, &john));
    assert!(eval(r#"name.familyName co "O'Malley""#, &john));
    assert!(eval(r#"userName sw "J""#, &john));
    assert!(eval(
        r#"urn:ietf:params:scim:schemas:core:2.0:User:userName sw "J""#,
        &john
    ));
    assert!(!eval("title pr", &john));
    assert!(eval(r#"title pr or userType eq "Intern""#, &john));
    assert!(eval(
        r#"emails[type eq "work" and value co "@example.com"] or ims[type eq "xmpp" and value co "@foo.com"]"#,
        &john
    ));
}

#[test]
fn mapping_file_expressions() {
    let u = sample_user();
    let when = "active eq true and emails[primary eq true].value pr";
    assert_eq!(
        f(when).to_string(),
        "active eq true and emails[primary eq true and value pr]"
    );
    assert!(eval(when, &u));
    assert!(!eval(
        when,
        &json!({"active": true, "emails": [{"primary": true}, {"value": "x"}]})
    ));
    assert!(eval(r#"emails[type eq "home"].value ew ".ORG""#, &u));
    assert!(!eval(r#"emails[type eq "home"].value ew ".com""#, &u));
    assert!(eval(
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:costCenter pr",
        &u
    ));
}
