//! What the PATCH and input code needs to know of each resource's schema:
//! canonical attribute names, readOnly and multi-valued attributes, and the
//! extension URNs it carries; and the schema definitions `/Schemas` publishes
//! ([`definitions`]), from which input, PATCH and projection read each
//! attribute's `mutability` and `returned`, so behaviour and discovery agree.

use std::sync::LazyLock;

use serde_json::{Value, json};

pub const USER_URN: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
pub const GROUP_URN: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
pub const ENTERPRISE_URN: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
/// The hub's own extension: consent per purpose and custom attributes.
pub const SYNCD_URN: &str = "urn:ietf:params:scim:schemas:extension:syncd:2.0:User";
const CORE_PREFIX: &str = "urn:ietf:params:scim:schemas:core:";

pub struct ResourceSchema {
    pub core: &'static str,
    pub extensions: &'static [&'static str],
    pub read_only: &'static [&'static str],
    pub multi_valued: &'static [&'static str],
    /// Canonical spelling of every known attribute and sub-attribute.
    pub names: &'static [&'static str],
}

pub static USER: ResourceSchema = ResourceSchema {
    core: USER_URN,
    extensions: &[ENTERPRISE_URN, SYNCD_URN],
    read_only: &["id", "meta", "groups"],
    multi_valued: &[
        "emails",
        "phoneNumbers",
        "ims",
        "photos",
        "addresses",
        "groups",
        "entitlements",
        "roles",
        "x509Certificates",
    ],
    names: &[
        "userName",
        "name",
        "displayName",
        "nickName",
        "profileUrl",
        "title",
        "userType",
        "preferredLanguage",
        "locale",
        "timezone",
        "active",
        "password",
        "emails",
        "phoneNumbers",
        "ims",
        "photos",
        "addresses",
        "groups",
        "entitlements",
        "roles",
        "x509Certificates",
        "externalId",
        "formatted",
        "familyName",
        "givenName",
        "middleName",
        "honorificPrefix",
        "honorificSuffix",
        "value",
        "display",
        "type",
        "primary",
        "streetAddress",
        "locality",
        "region",
        "postalCode",
        "country",
        "employeeNumber",
        "costCenter",
        "organization",
        "division",
        "department",
        "manager",
        "consent",
        "attributes",
    ],
};

pub static GROUP: ResourceSchema = ResourceSchema {
    core: GROUP_URN,
    extensions: &[],
    read_only: &["id", "meta"],
    multi_valued: &["members"],
    names: &[
        "displayName",
        "members",
        "externalId",
        "value",
        "display",
        "type",
    ],
};

impl ResourceSchema {
    /// The known extension URN `name` spells, ignoring case; also Entra's
    /// `...:enterprise:2.0User` with its colon missing.
    pub fn extension(&self, name: &str) -> Option<&'static str> {
        self.extensions.iter().copied().find(|urn| {
            urn.eq_ignore_ascii_case(name)
                || (name.len() + 1 == urn.len()
                    && urn
                        .rsplit_once(':')
                        .is_some_and(|(a, b)| name.eq_ignore_ascii_case(&format!("{a}{b}"))))
        })
    }

    pub fn is_core(&self, urn: &str) -> bool {
        urn.get(..CORE_PREFIX.len())
            .is_some_and(|p| p.eq_ignore_ascii_case(CORE_PREFIX))
    }

    pub fn canonical(&self, name: &str) -> String {
        self.names
            .iter()
            .find(|n| n.eq_ignore_ascii_case(name))
            .map(|n| n.to_string())
            .unwrap_or_else(|| name.to_string())
    }

    pub fn is_read_only(&self, name: &str) -> bool {
        self.read_only.iter().any(|n| n.eq_ignore_ascii_case(name))
    }

    pub fn is_multi_valued(&self, name: &str) -> bool {
        self.multi_valued
            .iter()
            .any(|n| n.eq_ignore_ascii_case(name))
    }
}

impl ResourceSchema {
    /// The published definitions of this resource's schemas, core first.
    pub fn definitions(&self) -> Vec<&'static Value> {
        std::iter::once(self.core)
            .chain(self.extensions.iter().copied())
            .filter_map(definition)
            .collect()
    }

    /// The published definition of `name` (with `sub`, its sub-attribute)
    /// in `container` (an extension URN; None for the core schema).
    pub fn attribute(
        &self,
        container: Option<&str>,
        name: &str,
        sub: Option<&str>,
    ) -> Option<&'static Value> {
        let def = definition(container.unwrap_or(self.core))?;
        let attr = find_attr(def.get("attributes")?, name)?;
        match sub {
            None => Some(attr),
            Some(sub) => find_attr(attr.get("subAttributes")?, sub),
        }
    }

    /// `mutability` of an attribute; `readWrite` when it is not published.
    pub fn mutability(
        &self,
        container: Option<&str>,
        name: &str,
        sub: Option<&str>,
    ) -> &'static str {
        self.attribute(container, name, sub)
            .and_then(|a| a.get("mutability"))
            .and_then(Value::as_str)
            .unwrap_or("readWrite")
    }

    /// The names of `name`'s sub-attributes published with `mutability`.
    pub fn subs_with(
        &self,
        container: Option<&str>,
        name: &str,
        mutability: &str,
    ) -> Vec<&'static str> {
        self.attribute(container, name, None)
            .and_then(|a| a.get("subAttributes"))
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter(|s| s["mutability"] == mutability)
            .filter_map(|s| s["name"].as_str())
            .collect()
    }
}

/// The schemas as this hub publishes them under `/Schemas` and checks input
/// against: the static definitions, with the declared brands as the
/// `canonicalValues` of the hub extension's `brands`.
#[derive(Debug, Clone)]
pub struct Published {
    defs: Vec<Value>,
}

impl Published {
    /// The definitions for these declared purposes and brands: `brands`
    /// lists the brands as `canonicalValues`; `consent` has one
    /// sub-attribute per purpose (`granted` / `denied`), and `brandConsent`
    /// one per brand holding the same (a nesting RFC 7643 does not foresee
    /// for complex attributes, published so that clients can see the shape).
    pub fn new<'a>(
        purposes: impl IntoIterator<Item = &'a String>,
        brands: impl IntoIterator<Item = &'a String>,
    ) -> Self {
        let purposes: Vec<&String> = purposes.into_iter().collect();
        let brands: Vec<&String> = brands.into_iter().collect();
        let states = |name: &str| {
            let mut a = attr(name, "string", &[], vec![]);
            a["canonicalValues"] = json!(["granted", "denied"]);
            a
        };
        let consent_subs: Vec<Value> = purposes.iter().map(|p| states(p)).collect();
        let mut defs = definitions().to_vec();
        for def in &mut defs {
            if def["id"] != SYNCD_URN {
                continue;
            }
            for a in def["attributes"].as_array_mut().into_iter().flatten() {
                match a["name"].as_str() {
                    Some("brands") => {
                        a["canonicalValues"] = json!(brands);
                        a["description"] = json!("the declared brands the subject belongs to");
                    }
                    Some("consent") => {
                        a["subAttributes"] = json!(consent_subs);
                        a["description"] =
                            json!("consent per declared purpose: \"granted\" or \"denied\"");
                    }
                    Some("brandConsent") => {
                        let per_brand: Vec<Value> = brands
                            .iter()
                            .map(|b| attr(b, "complex", &[], consent_subs.clone()))
                            .collect();
                        a["subAttributes"] = json!(per_brand);
                        a["description"] = json!(
                            "consent for one declared brand: brand -> purpose -> \"granted\" or \"denied\""
                        );
                    }
                    _ => {}
                }
            }
        }
        Self { defs }
    }

    /// Every published schema, without `meta`.
    pub fn all(&self) -> &[Value] {
        &self.defs
    }

    /// The published schema with this id (any case).
    pub fn get(&self, urn: &str) -> Option<&Value> {
        self.defs.iter().find(|d| {
            d["id"]
                .as_str()
                .is_some_and(|id| id.eq_ignore_ascii_case(urn))
        })
    }
}

/// The attribute named `name` (any case) in a list of definitions.
pub fn find_attr<'a>(list: &'a Value, name: &str) -> Option<&'a Value> {
    list.as_array()?.iter().find(|a| {
        a["name"]
            .as_str()
            .is_some_and(|n| n.eq_ignore_ascii_case(name))
    })
}

/// The schemas `/Schemas` publishes, without `meta`.
pub fn definitions() -> &'static [Value] {
    static DEFS: LazyLock<Vec<Value>> = LazyLock::new(build);
    &DEFS
}

/// The published schema with this id (any case).
pub fn definition(urn: &str) -> Option<&'static Value> {
    definitions().iter().find(|d| {
        d["id"]
            .as_str()
            .is_some_and(|id| id.eq_ignore_ascii_case(urn))
    })
}

/// One attribute definition; `flags` holds the non-default characteristics.
fn attr(name: &str, kind: &str, flags: &[&str], subs: Vec<Value>) -> Value {
    let has = |f: &str| flags.contains(&f);
    let mut a = json!({
        "name": name,
        "type": kind,
        "multiValued": has("multi"),
        "required": has("required"),
        "caseExact": has("caseExact"),
        "mutability": if has("readOnly") { "readOnly" } else if has("immutable") { "immutable" } else if has("writeOnly") { "writeOnly" } else { "readWrite" },
        "returned": if has("never") { "never" } else if has("always") { "always" } else if has("request") { "request" } else { "default" },
        "uniqueness": if has("unique") { "server" } else { "none" },
        "description": name,
    });
    if !subs.is_empty() {
        a["subAttributes"] = Value::Array(subs);
    }
    a
}

/// A member's `type`: Users only (the hub keeps no nested groups).
fn member_type() -> Value {
    let mut a = s("type");
    a["canonicalValues"] = json!(["User"]);
    a
}

fn s(name: &str) -> Value {
    attr(name, "string", &[], vec![])
}

fn multi(name: &str) -> Value {
    attr(
        name,
        "complex",
        &["multi"],
        vec![
            s("value"),
            s("display"),
            s("type"),
            attr("primary", "boolean", &[], vec![]),
        ],
    )
}

fn build() -> Vec<Value> {
    let user = vec![
        attr("userName", "string", &["required", "unique"], vec![]),
        attr(
            "name",
            "complex",
            &[],
            [
                "formatted",
                "familyName",
                "givenName",
                "middleName",
                "honorificPrefix",
                "honorificSuffix",
            ]
            .into_iter()
            .map(s)
            .collect(),
        ),
        s("displayName"),
        s("nickName"),
        attr("profileUrl", "reference", &[], vec![]),
        s("title"),
        s("userType"),
        s("preferredLanguage"),
        s("locale"),
        s("timezone"),
        attr("active", "boolean", &[], vec![]),
        attr("password", "string", &["writeOnly", "never"], vec![]),
        multi("emails"),
        multi("phoneNumbers"),
        multi("ims"),
        multi("photos"),
        attr(
            "addresses",
            "complex",
            &["multi"],
            [
                "formatted",
                "streetAddress",
                "locality",
                "region",
                "postalCode",
                "country",
                "type",
            ]
            .into_iter()
            .map(s)
            .chain([attr("primary", "boolean", &[], vec![])])
            .collect(),
        ),
        attr(
            "groups",
            "complex",
            &["multi", "readOnly"],
            vec![
                s("value"),
                attr("$ref", "reference", &[], vec![]),
                s("display"),
                s("type"),
            ],
        ),
        multi("entitlements"),
        multi("roles"),
        multi("x509Certificates"),
        attr("externalId", "string", &["caseExact"], vec![]),
    ];
    let enterprise = vec![
        s("employeeNumber"),
        s("costCenter"),
        s("organization"),
        s("division"),
        s("department"),
        attr(
            "manager",
            "complex",
            &[],
            vec![
                s("value"),
                attr("$ref", "reference", &[], vec![]),
                attr("displayName", "string", &["readOnly"], vec![]),
            ],
        ),
    ];
    let syncd = vec![
        attr("consent", "complex", &[], vec![]),
        attr("brandConsent", "complex", &[], vec![]),
        attr("brands", "string", &["multi"], vec![]),
        attr("attributes", "complex", &[], vec![]),
    ];
    let group = vec![
        attr("displayName", "string", &["required", "unique"], vec![]),
        attr(
            "members",
            "complex",
            &["multi"],
            vec![
                attr("value", "string", &["immutable", "caseExact"], vec![]),
                attr("$ref", "reference", &["immutable"], vec![]),
                // The hub shows the User's displayName (or userName) here.
                attr("display", "string", &["readOnly"], vec![]),
                member_type(),
            ],
        ),
        attr("externalId", "string", &["caseExact"], vec![]),
    ];
    [
        (USER_URN, "User", "User Account", user),
        (
            ENTERPRISE_URN,
            "EnterpriseUser",
            "Enterprise User",
            enterprise,
        ),
        (
            SYNCD_URN,
            "SyncdUser",
            "Hub extension: consent per purpose (\"granted\"/\"denied\") and custom attributes",
            syncd,
        ),
        (GROUP_URN, "Group", "Group", group),
    ]
    .into_iter()
    .map(|(id, name, description, attributes)| {
        json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Schema"],
            "id": id, "name": name, "description": description, "attributes": attributes,
        })
    })
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The hand-kept lists agree with what `/Schemas` publishes.
    #[test]
    fn resource_schemas_agree_with_the_published_definitions() {
        for resource in [&USER, &GROUP] {
            let core = definition(resource.core).expect("published");
            let attrs = core["attributes"].as_array().unwrap();
            for a in attrs {
                let name = a["name"].as_str().unwrap();
                assert_eq!(
                    a["mutability"] == "readOnly",
                    resource.is_read_only(name),
                    "{name} readOnly"
                );
                assert_eq!(
                    a["multiValued"] == true,
                    resource.is_multi_valued(name),
                    "{name} multiValued"
                );
            }
            for n in resource.read_only.iter().chain(resource.multi_valued) {
                assert!(
                    ["id", "meta"].contains(n) || find_attr(&core["attributes"], n).is_some(),
                    "{n} is not published"
                );
            }
            for def in resource.definitions() {
                for a in def["attributes"].as_array().unwrap() {
                    let subs = a["subAttributes"].as_array().cloned().unwrap_or_default();
                    for n in std::iter::once(a)
                        .chain(&subs)
                        .filter_map(|a| a["name"].as_str())
                    {
                        if n != "$ref" && n != "brandConsent" && n != "brands" {
                            assert_eq!(resource.canonical(&n.to_uppercase()), n);
                        }
                    }
                }
            }
        }
        assert_eq!(
            GROUP.subs_with(None, "members", "immutable"),
            ["value", "$ref"]
        );
        assert_eq!(
            USER.mutability(Some(ENTERPRISE_URN), "manager", Some("displayName")),
            "readOnly"
        );
        assert_eq!(USER.mutability(None, "password", None), "writeOnly");
    }
}
