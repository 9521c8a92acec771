//! Unit tests of SCIM PATCH: paths, value filters, mutability, IdP quirks.

use serde_json::json;

use super::*;
use crate::scim_model::schema::{GROUP, SYNCD_URN, USER};

fn obj(v: Value) -> Map<String, Value> {
    v.as_object().cloned().expect("an object")
}

fn ops(list: Value) -> Vec<PatchOp> {
    parse_request(&json!({"schemas": [crate::scim_model::PATCH_URN], "Operations": list}))
        .expect("a valid PatchOp")
}

fn patched(user: Value, list: Value) -> Result<Value, ScimError> {
    let mut u = obj(user);
    apply(&mut u, &ops(list), &USER)?;
    Ok(Value::Object(u))
}

fn scim_type(e: ScimError) -> Option<&'static str> {
    e.scim_type().map(ScimType::as_str)
}

#[test]
fn parse_refuses_malformed_requests() {
    for (body, t) in [
        (json!({}), "invalidSyntax"),
        (json!({"Operations": []}), "invalidSyntax"),
        (json!({"Operations": [{"op": "move"}]}), "invalidSyntax"),
        (
            json!({"Operations": [{"op": "add", "path": 7}]}),
            "invalidPath",
        ),
    ] {
        let e = parse_request(&body).expect_err("refused");
        assert_eq!(scim_type(e), Some(t), "{body}");
    }
    // Entra's capitalised ops and keys; a blank path is no path.
    let ops = parse_request(&json!({"operations": [{"Op": "Replace", "Path": " ", "Value": {}}]}))
        .unwrap();
    assert_eq!(ops[0].kind, PatchKind::Replace);
    assert_eq!(ops[0].path, None);
}

#[test]
fn replace_without_path_merges_and_ignores_read_only() {
    let u = patched(
        json!({"userName": "a", "name": {"givenName": "A", "familyName": "B"}, "active": true}),
        json!([{"op": "replace", "value": {
            "active": false, "id": "ignored", "name": {"givenName": "Z"},
            SYNCD_URN: {"attributes": {"tier": "gold"}},
        }}]),
    )
    .unwrap();
    assert_eq!(u["active"], false);
    assert!(u.get("id").is_none());
    assert_eq!(u["name"], json!({"givenName": "Z", "familyName": "B"}));
    assert_eq!(u[SYNCD_URN]["attributes"]["tier"], "gold");
}

#[test]
fn value_filter_paths_target_matching_elements() {
    let user = json!({"userName": "a", "emails": [
        {"value": "a@home", "type": "home", "primary": true},
        {"value": "a@work", "type": "work"},
    ]});
    let u = patched(
        user.clone(),
        json!([{"op": "replace", "path": "emails[type eq \"work\"].value", "value": "new@work"}]),
    )
    .unwrap();
    assert_eq!(u["emails"][1]["value"], "new@work");
    assert_eq!(u["emails"][0]["value"], "a@home");
    let u = patched(
        user.clone(),
        json!([{"op": "remove", "path": "emails[type eq \"home\"]"}]),
    )
    .unwrap();
    assert_eq!(u["emails"].as_array().unwrap().len(), 1);
    // Removing what is not there succeeds: IdPs retry.
    patched(
        user.clone(),
        json!([{"op": "remove", "path": "emails[type eq \"other\"]"}]),
    )
    .unwrap();
    // No match and no eq terms to build one from: noTarget.
    let e = patched(
        user.clone(),
        json!([{"op": "replace", "path": "emails[value co \"x\"].value", "value": "y"}]),
    )
    .unwrap_err();
    assert_eq!(scim_type(e), Some("noTarget"));
    // Entra adds a work e-mail to a user without one: built from the filter.
    let u = patched(
        json!({"userName": "a"}),
        json!([{"op": "add", "path": "emails[type eq \"work\"].value", "value": "w@x"}]),
    )
    .unwrap();
    assert_eq!(u["emails"], json!([{"type": "work", "value": "w@x"}]));
}

#[test]
fn multi_valued_add_dedups_and_remove_takes_a_value_array() {
    let mut g = obj(json!({"displayName": "G", "members": [{"value": "1"}]}));
    let list = ops(json!([
        {"op": "add", "path": "members", "value": [{"value": "1"}, {"value": "2"}]},
        {"op": "Add", "path": "members", "value": {"value": "3"}},
    ]));
    let touched = apply(&mut g, &list, &GROUP).unwrap();
    assert_eq!(touched, vec!["members".to_string()]);
    assert_eq!(
        g["members"],
        json!([{"value": "1"}, {"value": "2"}, {"value": "3"}])
    );
    let list = ops(
        json!([{"op": "Remove", "path": "members", "value": [{"value": "1"}, {"value": "3"}]}]),
    );
    apply(&mut g, &list, &GROUP).unwrap();
    assert_eq!(g["members"], json!([{"value": "2"}]));
    let list = ops(json!([{"op": "remove", "path": "members[value eq \"2\"]"}]));
    apply(&mut g, &list, &GROUP).unwrap();
    assert!(
        g.get("members").is_none(),
        "an emptied attribute is unassigned"
    );
}

#[test]
fn refusals_carry_their_scim_type() {
    let user = json!({"userName": "a", "name": "flat"});
    for (list, t) in [
        (
            json!([{"op": "replace", "path": "groups", "value": []}]),
            "mutability",
        ),
        (json!([{"op": "remove"}]), "noTarget"),
        (json!([{"op": "add", "path": "title"}]), "invalidValue"),
        (
            json!([{"op": "add", "value": "not an object"}]),
            "invalidValue",
        ),
        (
            json!([{"op": "add", "path": "emails[type eq", "value": "x"}]),
            "invalidPath",
        ),
        (
            json!([{"op": "replace", "path": "userName[value eq \"a\"]", "value": "x"}]),
            "invalidPath",
        ),
    ] {
        let e = patched(user.clone(), list.clone()).expect_err("refused");
        assert_eq!(scim_type(e), Some(t), "{list}");
    }
}

#[test]
fn immutable_sub_attributes_are_set_once() {
    let group = || obj(json!({"displayName": "G", "members": [{"value": "1", "display": "One"}]}));
    let run = |list: Value| {
        let mut g = group();
        apply(&mut g, &ops(list), &GROUP).map(|_| Value::Object(g))
    };
    for list in [
        json!([{"op": "replace", "path": "members[value eq \"1\"].value", "value": "2"}]),
        json!([{"op": "remove", "path": "members[value eq \"1\"].value"}]),
        json!([{"op": "replace", "path": "members.value", "value": "2"}]),
        json!([{"op": "replace", "path": "members[value eq \"1\"]", "value": {"value": "2"}}]),
        json!([{"op": "add", "path": "members[value eq \"1\"].value", "value": "3"}]),
    ] {
        let e = run(list.clone()).expect_err("an immutable value changed");
        assert_eq!(scim_type(e), Some("mutability"), "{list}");
    }
    // Setting it when absent, or to what it holds, is allowed.
    let g = run(json!([
        {"op": "add", "path": "members[value eq \"1\"].$ref", "value": "https://h/Users/1"},
        {"op": "replace", "path": "members[value eq \"1\"].value", "value": "1"},
        {"op": "replace", "path": "members[value eq \"1\"]", "value": {"display": "Uno"}},
    ]))
    .unwrap();
    assert_eq!(
        g["members"],
        json!([{"value": "1", "$ref": "https://h/Users/1", "display": "Uno"}])
    );
    // Re-adding a member keeps its immutable sub-attributes.
    let g = run(json!([
        {"op": "add", "path": "members[value eq \"1\"].$ref", "value": "a"},
        {"op": "add", "path": "members", "value": [{"value": "1", "$ref": "b"}]},
    ]))
    .unwrap();
    assert_eq!(g["members"][0]["$ref"], "a");
    // Removing the element, or replacing the whole set, is no change of it.
    run(json!([{"op": "remove", "path": "members[value eq \"1\"]"}])).unwrap();
    run(json!([{"op": "replace", "path": "members", "value": [{"value": "2"}]}])).unwrap();
}

#[test]
fn read_only_sub_attributes_refuse_patch() {
    let e = patched(
        json!({"userName": "a"}),
        json!([{"op": "add", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.displayName", "value": "Boss"}]),
    )
    .unwrap_err();
    assert_eq!(scim_type(e), Some("mutability"));
    patched(
        json!({"userName": "a"}),
        json!([{"op": "add", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value", "value": "m1"}]),
    )
    .unwrap();
}

#[test]
fn password_is_never_stored_and_null_unassigns() {
    let u = patched(
        json!({"userName": "a", "title": "Dr"}),
        json!([
            {"op": "replace", "path": "password", "value": "hunter2"},
            {"op": "replace", "path": "title", "value": null},
            {"op": "add", "path": "NICKNAME", "value": "Al"},
        ]),
    )
    .unwrap();
    assert_eq!(u, json!({"userName": "a", "nickName": "Al"}));
}

#[test]
fn extension_paths_land_in_the_extension() {
    let u = patched(
        json!({"userName": "a"}),
        json!([
            {"op": "add", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department", "value": "R&D"},
            {"op": "add", "path": format!("{SYNCD_URN}:consent.marketing_email"), "value": "granted"},
        ]),
    )
    .unwrap();
    assert_eq!(
        u["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"]["department"],
        "R&D"
    );
    assert_eq!(u[SYNCD_URN]["consent"]["marketing_email"], "granted");
    // Removing from an extension the user lacks is a no-op.
    let u = patched(
        json!({"userName": "a"}),
        json!([{"op": "remove", "path": format!("{SYNCD_URN}:consent")}]),
    )
    .unwrap();
    assert_eq!(u, json!({"userName": "a"}));
}
