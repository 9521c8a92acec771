//! Unit tests of list queries: narrowing, paging, projection.

use serde_json::json;

use super::*;
use crate::scim_model::schema::USER;

fn params(pairs: &[(&str, &str)]) -> Result<ListParams, ScimError> {
    let pairs: Vec<(String, String)> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    ListParams::parse(&pairs)
}

fn narrowing(filter: &str) -> UserNarrowing {
    let p = params(&[("filter", filter)]).unwrap();
    user_narrowing(p.filter.as_ref())
}

#[test]
fn parameters_default_clamp_and_refuse() {
    let p = params(&[]).unwrap();
    assert_eq!(
        (p.start_index, p.count, p.filter.is_none()),
        (1, DEFAULT_COUNT, true)
    );
    let p = params(&[("STARTINDEX", "0"), ("count", "-5"), ("filter", "  ")]).unwrap();
    assert_eq!((p.start_index, p.count, p.filter.is_none()), (1, 0, true));
    assert_eq!(params(&[("count", "999999")]).unwrap().count, MAX_COUNT);
    let p = params(&[("sortBy", "name.familyName"), ("sortOrder", "Descending")]).unwrap();
    assert!(p.descending && p.in_memory());
    for (pairs, t) in [
        (vec![("filter", "userName eq")], ScimType::InvalidFilter),
        (
            vec![("filter", "userName zz \"a\"")],
            ScimType::InvalidFilter,
        ),
        (vec![("count", "ten")], ScimType::InvalidValue),
        (vec![("sortOrder", "up")], ScimType::InvalidValue),
        (vec![("sortBy", "a..b")], ScimType::InvalidPath),
        (vec![("attributes", "emails[")], ScimType::InvalidPath),
    ] {
        let e = params(&pairs).expect_err("refused");
        assert_eq!(e.scim_type(), Some(t), "{pairs:?}");
    }
}

#[test]
fn filters_narrow_to_indexed_columns() {
    assert_eq!(
        narrowing("userName eq \"Ada@Example.COM\""),
        UserNarrowing::UserName("ada@example.com".into())
    );
    assert_eq!(
        narrowing("active eq true and externalId eq \"X1\""),
        UserNarrowing::ExternalId("X1".into())
    );
    assert_eq!(
        narrowing("emails[type eq \"work\" and value eq \"A@X.io\"]"),
        UserNarrowing::Email("a@x.io".into())
    );
    assert_eq!(
        narrowing("emails[type eq \"work\" or value eq \"A@X.io\"]"),
        UserNarrowing::All
    );
    assert_eq!(
        narrowing("emails[value eq \"A@X.io\"]"),
        UserNarrowing::Email("a@x.io".into())
    );
    assert_eq!(
        narrowing("emails.value eq \"A@X.io\""),
        UserNarrowing::Email("a@x.io".into())
    );
    // A non-ASCII address cannot be matched in the JSON text: no narrowing.
    assert_eq!(narrowing("emails.value eq \"ä@x.io\""), UserNarrowing::All);
    // `or` and `not` require nothing in particular.
    assert_eq!(
        narrowing("userName eq \"a\" or userName eq \"b\""),
        UserNarrowing::All
    );
    assert_eq!(narrowing("not (id eq \"1\")"), UserNarrowing::All);
    assert_eq!(narrowing("id eq \"1\""), UserNarrowing::Id("1".into()));
    let p = params(&[("filter", "displayName eq \"VIP\"")]).unwrap();
    assert_eq!(
        group_narrowing(p.filter.as_ref()),
        GroupNarrowing::DisplayName("vip".into())
    );
}

#[test]
fn last_modified_ranges_narrow_in_sql() {
    let t = chrono::DateTime::parse_from_rfc3339("2026-11-23T10:00:00Z")
        .unwrap()
        .timestamp_millis();
    assert_eq!(
        narrowing("meta.lastModified gt \"2026-11-23T10:00:00Z\""),
        UserNarrowing::ModifiedSince(t - 1)
    );
    assert_eq!(
        narrowing("meta.lastModified le \"2026-11-23T12:00:00+02:00\""),
        UserNarrowing::ModifiedUntil(t + 1)
    );
    // An equality on an indexed column wins; `eq` on a date is not narrowed.
    assert_eq!(
        narrowing("meta.lastModified ge \"2026-11-23T10:00:00Z\" and userName eq \"a\""),
        UserNarrowing::UserName("a".into())
    );
    assert_eq!(
        narrowing("meta.lastModified eq \"2026-11-23T10:00:00Z\""),
        UserNarrowing::All
    );
    assert_eq!(
        narrowing("meta.lastModified gt \"yesterday\""),
        UserNarrowing::All
    );
}

#[test]
fn select_filters_sorts_and_pages() {
    let users: Vec<Value> = ["carol", "Alice", "bob", "dave"]
        .iter()
        .enumerate()
        .map(|(i, n)| json!({"id": i.to_string(), "userName": n, "active": i % 2 == 0}))
        .collect();
    let p = params(&[("sortBy", "userName"), ("startIndex", "2"), ("count", "2")]).unwrap();
    let (page, total) = select(&p, users.clone());
    assert_eq!(total, 4);
    let names: Vec<&str> = page
        .iter()
        .map(|u| u["userName"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["bob", "carol"], "case-insensitive order");
    let p = params(&[
        ("filter", "active eq true"),
        ("sortBy", "userName"),
        ("sortOrder", "descending"),
    ])
    .unwrap();
    let (page, total) = select(&p, users.clone());
    assert_eq!(total, 2);
    assert_eq!(page[0]["userName"], "carol");
    let p = params(&[("filter", "userName sw \"A\""), ("count", "0")]).unwrap();
    let (page, total) = select(&p, users);
    assert_eq!((page.len(), total), (0, 1));
}

#[test]
fn projection_keeps_always_returned_attributes() {
    let user = json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "id": "1", "userName": "a", "displayName": "A",
        "name": {"givenName": "G", "familyName": "F"},
        "meta": {"resourceType": "User"},
    });
    let p = params(&[("attributes", "name.givenName")]).unwrap();
    let out = project(user.clone(), &p.attributes, &p.excluded, &USER);
    assert_eq!(out["id"], "1");
    assert_eq!(out["name"], json!({"givenName": "G"}));
    assert!(out.get("displayName").is_none());
    let mut with_emails = user.clone();
    with_emails["emails"] = json!([{"value": "a@x", "type": "work"}, {"value": "b@x"}]);
    let p = params(&[("attributes", "emails.value,name.familyName,name.givenName")]).unwrap();
    let out = project(with_emails, &p.attributes, &p.excluded, &USER);
    assert_eq!(out["emails"], json!([{"value": "a@x"}, {"value": "b@x"}]));
    assert_eq!(out["name"], json!({"givenName": "G", "familyName": "F"}));
    let p = params(&[("excludedAttributes", "name,id")]).unwrap();
    let out = project(user, &p.attributes, &p.excluded, &USER);
    assert!(out.get("name").is_none());
    assert_eq!(out["id"], "1", "id is returned always");
    assert_eq!(out["displayName"], "A");
}

#[test]
fn projection_follows_the_returned_characteristic() {
    let defs = json!({
        "id": "urn:test:core",
        "attributes": [
            {"name": "secret", "returned": "never"},
            {"name": "big", "returned": "request"},
            {"name": "key", "returned": "always"},
            {"name": "plain", "returned": "default"},
            {"name": "items", "returned": "default", "subAttributes": [
                {"name": "value", "returned": "default"},
                {"name": "blob", "returned": "request"},
                {"name": "hash", "returned": "never"},
            ]},
        ],
    });
    let ext = json!({"id": "urn:test:ext", "attributes": [
        {"name": "hidden", "returned": "never"},
        {"name": "shown", "returned": "default"},
    ]});
    let defs = [&defs, &ext];
    let r = json!({
        "schemas": ["urn:test:core"], "id": "1", "meta": {"version": "W/\"1\""},
        "secret": "s", "big": "b", "key": "k", "plain": "p",
        "items": [{"value": "v", "blob": "x", "hash": "h"}],
        "urn:test:ext": {"hidden": "h", "shown": "s"},
    });
    let run = |pairs: &[(&str, &str)]| {
        let p = params(pairs).unwrap();
        project_with(r.clone(), &p.attributes, &p.excluded, &defs)
    };
    // Default: never and request left out, at every level.
    assert_eq!(
        run(&[]),
        json!({"schemas": ["urn:test:core"], "id": "1", "meta": {"version": "W/\"1\""},
            "key": "k", "plain": "p", "items": [{"value": "v"}],
            "urn:test:ext": {"shown": "s"}})
    );
    // request when asked for; never even when asked for; always and
    // id/schemas even when not asked for or excluded.
    assert_eq!(
        run(&[(
            "attributes",
            "big,secret,items.blob,items.hash,urn:test:ext:hidden"
        )]),
        json!({"schemas": ["urn:test:core"], "id": "1", "meta": {"version": "W/\"1\""},
            "big": "b", "key": "k", "items": [{"blob": "x"}]})
    );
    assert_eq!(
        run(&[(
            "excludedAttributes",
            "key,id,schemas,meta,plain,items,urn:test:ext:shown"
        )]),
        json!({"schemas": ["urn:test:core"], "id": "1", "key": "k"})
    );
}

#[test]
fn list_response_shape() {
    let r = list_response(vec![json!({"id": "1"})], 7, 3);
    assert_eq!(r["totalResults"], 7);
    assert_eq!(r["startIndex"], 3);
    assert_eq!(r["itemsPerPage"], 1);
    assert_eq!(r["Resources"][0]["id"], "1");
}
