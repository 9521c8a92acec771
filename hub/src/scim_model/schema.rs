//! What the PATCH and input code needs to know of each resource's schema:
//! canonical attribute names, readOnly and multi-valued attributes, and the
//! extension URNs it carries.

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
