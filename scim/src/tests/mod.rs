//! Crate tests: parsing, canonical text, evaluation, errors, limits and
//! property tests.

mod errors;
mod eval;
mod limits;
mod parse;
mod props;
mod rfc;

use serde_json::{Value, json};

use crate::{Filter, parse_filter};

/// Parses or fails the test with the error (inputs here are known-good).
fn f(s: &str) -> Filter {
    match parse_filter(s) {
        Ok(filter) => filter,
        Err(e) => panic!("{s:?} should parse: {e}"),
    }
}

/// Evaluates `filter` against `resource`, case-insensitively.
fn eval(filter: &str, resource: &Value) -> bool {
    f(filter).matches(resource)
}

/// A user shaped like RFC 7643 section 8.2, with the enterprise extension.
fn sample_user() -> Value {
    json!({
        "schemas": [
            "urn:ietf:params:scim:schemas:core:2.0:User",
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
        ],
        "id": "2819c223-7f76-453a-919d-413861904646",
        "externalId": "701984",
        "userName": "bjensen@example.com",
        "name": {
            "formatted": "Ms. Barbara J Jensen, III",
            "familyName": "Jensen",
            "givenName": "Barbara",
            "middleName": "Jane"
        },
        "displayName": "Babs Jensen",
        "nickName": "",
        "title": "Tour Guide",
        "userType": "Employee",
        "active": true,
        "loginCount": 42,
        "score": 3.5,
        "emails": [
            {"value": "bjensen@example.com", "type": "work", "primary": true},
            {"value": "babs@jensen.org", "type": "home"}
        ],
        "ims": [
            {"value": "someaimhandle", "type": "aim"}
        ],
        "phoneNumbers": [],
        "x509Certificates": null,
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {
            "employeeNumber": "701984",
            "costCenter": "4130",
            "manager": {"value": "26118915-6090-4610-87e4-49d8ca9f808d", "displayName": "John Smith"}
        },
        "meta": {
            "resourceType": "User",
            "created": "2010-01-23T04:56:22Z",
            "lastModified": "2011-05-13T04:42:34Z"
        }
    })
}
