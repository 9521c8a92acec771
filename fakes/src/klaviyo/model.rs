//! What the Klaviyo fake holds: profiles (by id, found by email, phone or
//! external id), bulk import jobs that advance over polls, and deletions
//! that complete after a number of reads.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde_json::{Map, Value, json};

/// One profile as the fake holds it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Profile {
    pub id: String,
    pub email: Option<String>,
    pub phone_number: Option<String>,
    pub external_id: Option<String>,
    /// first_name, last_name, organization, locale, image, location.
    pub attributes: Map<String, Value>,
    pub properties: Map<String, Value>,
    /// Email marketing consent: `SUBSCRIBED`, `UNSUBSCRIBED`, or never set.
    pub email_marketing: Option<String>,
    pub lists: BTreeSet<String>,
}

impl Profile {
    pub fn to_json(&self, base: &str) -> Value {
        let mut attrs = self.attributes.clone();
        attrs.insert("email".into(), json!(self.email));
        attrs.insert("phone_number".into(), json!(self.phone_number));
        attrs.insert("external_id".into(), json!(self.external_id));
        attrs.insert("properties".into(), Value::Object(self.properties.clone()));
        attrs.insert("created".into(), json!("2026-11-23T10:00:00+00:00"));
        attrs.insert("updated".into(), json!("2026-11-23T10:00:00+00:00"));
        json!({
            "type": "profile",
            "id": self.id,
            "attributes": attrs,
            "links": {"self": format!("{base}/api/profiles/{}", self.id)},
        })
    }
}

/// A profile bulk import job.
#[derive(Clone, Debug)]
pub struct ImportJob {
    pub id: String,
    /// The profiles' resources as submitted.
    pub profiles: Vec<Value>,
    pub polls: u32,
    /// Polls before the job reports `complete`.
    pub polls_needed: u32,
    pub cancel: bool,
    pub status: &'static str,
    /// Import errors, once complete.
    pub errors: Vec<Value>,
    pub completed: usize,
}

/// A deletion Klaviyo has accepted: the profiles go after `reads_left` reads.
#[derive(Clone, Debug)]
pub struct PendingDeletion {
    pub profile_id: String,
    pub reads_left: u32,
}

/// What a deletion request named.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeletionRequest {
    /// `id`, `email` or `phone_number`.
    pub by: String,
    pub value: String,
}

#[derive(Debug, Default)]
pub struct Model {
    pub profiles: BTreeMap<String, Profile>,
    pub jobs: BTreeMap<String, ImportJob>,
    pub pending_deletions: Vec<PendingDeletion>,
    pub deletion_requests: Vec<DeletionRequest>,
    /// Ids of profiles deleted for good.
    pub deleted: BTreeSet<String>,
    /// Lowercased emails Klaviyo refuses, with the detail.
    pub refused: HashMap<String, String>,
    pub job_polls: u32,
    pub deletion_reads: u32,
    pub cancel_next_job: bool,
    pub next_id: u64,
}

/// Why a profile could not be written: (JSON pointer below the profile,
/// code, detail).
pub type Refusal = (String, &'static str, String);

impl Model {
    pub fn new() -> Self {
        Self {
            job_polls: 2,
            deletion_reads: 1,
            ..Default::default()
        }
    }

    pub fn fresh_id(&mut self, prefix: &str) -> String {
        self.next_id += 1;
        format!("{prefix}{:020}", self.next_id)
    }

    /// The profiles any of these identifiers point at.
    pub fn matching(&self, attrs: &Map<String, Value>) -> BTreeSet<String> {
        let text = |k: &str| attrs.get(k).and_then(Value::as_str);
        let email = text("email").map(str::to_lowercase);
        self.profiles
            .values()
            .filter(|p| {
                (email.is_some() && p.email.as_ref().map(|e| e.to_lowercase()) == email)
                    || (text("phone_number").is_some()
                        && p.phone_number.as_deref() == text("phone_number"))
                    || (text("external_id").is_some()
                        && p.external_id.as_deref() == text("external_id"))
            })
            .map(|p| p.id.clone())
            .collect()
    }

    /// Klaviyo's rules for one profile's attributes, before it is written.
    pub fn refusal(&self, attrs: &Map<String, Value>) -> Option<Refusal> {
        let text = |k: &str| attrs.get(k).and_then(Value::as_str);
        if text("email").is_none()
            && text("phone_number").is_none()
            && text("external_id").is_none()
        {
            return Some((
                "/attributes".into(),
                "invalid",
                "One of email, phone_number or external_id is required.".into(),
            ));
        }
        if let Some(email) = text("email") {
            if !crate::mailchimp::looks_like_email(email) {
                return Some((
                    "/attributes/email".into(),
                    "invalid",
                    format!("Invalid email address: {email}"),
                ));
            }
            if let Some(detail) = self.refused.get(&email.to_lowercase()) {
                return Some(("/attributes/email".into(), "invalid", detail.clone()));
            }
        }
        if let Some(phone) = text("phone_number")
            && !is_e164(phone)
        {
            return Some((
                "/attributes/phone_number".into(),
                "invalid",
                "Invalid phone number format (Example of a valid format: +12345678901)".into(),
            ));
        }
        None
    }

    /// Writes a profile-import's attributes: `Ok((id, created))`, or the
    /// id of a second profile that another identifier points at.
    pub fn upsert(&mut self, attrs: &Map<String, Value>) -> Result<(String, bool), String> {
        let found = self.matching(attrs);
        if found.len() > 1 {
            return Err(found.into_iter().nth(1).unwrap_or_default());
        }
        let (id, created) = match found.into_iter().next() {
            Some(id) => (id, false),
            None => {
                let id = self.fresh_id("01FAKEPROFILE");
                let profile = Profile {
                    id: id.clone(),
                    ..Default::default()
                };
                self.profiles.insert(id.clone(), profile);
                (id, true)
            }
        };
        let profile = self.profiles.get_mut(&id).expect("just found or made");
        for (key, value) in attrs {
            let text = value.as_str().map(str::to_string);
            match key.as_str() {
                "email" => profile.email = text,
                "phone_number" => profile.phone_number = text,
                "external_id" => profile.external_id = text,
                "properties" => {
                    if let Some(props) = value.as_object() {
                        profile.properties.extend(props.clone());
                    }
                }
                "location" => {
                    let mut location = profile
                        .attributes
                        .get("location")
                        .and_then(Value::as_object)
                        .cloned()
                        .unwrap_or_default();
                    if let Some(sent) = value.as_object() {
                        location.extend(sent.clone());
                    }
                    profile
                        .attributes
                        .insert("location".into(), Value::Object(location));
                }
                _ if value.is_null() => {
                    profile.attributes.remove(key);
                }
                _ => {
                    profile.attributes.insert(key.clone(), value.clone());
                }
            }
        }
        Ok((id, created))
    }

    /// Advances a job by one poll; completes it (writing its profiles)
    /// when it has been polled enough.
    pub fn poll(&mut self, job_id: &str) -> Option<ImportJob> {
        let mut job = self.jobs.get(job_id)?.clone();
        job.polls += 1;
        if job.status == "complete" || job.status == "cancelled" {
        } else if job.polls < job.polls_needed {
            job.status = if job.polls <= 1 {
                "queued"
            } else {
                "processing"
            };
        } else if job.cancel {
            job.status = "cancelled";
        } else {
            job.status = "complete";
            for (k, resource) in job.profiles.iter().enumerate() {
                let attrs = resource["attributes"]
                    .as_object()
                    .cloned()
                    .unwrap_or_default();
                let refusal = self.refusal(&attrs);
                let refusal = refusal.or_else(|| match self.upsert(&attrs) {
                    Ok(_) => None,
                    Err(other) => Some((
                        "/attributes".into(),
                        "duplicate_profile",
                        format!(
                            "A profile already exists with one of these identifiers ({other})."
                        ),
                    )),
                });
                match refusal {
                    None => job.completed += 1,
                    Some((at, code, detail)) => {
                        let id = format!("{}-error-{k}", job.id);
                        job.errors.push(json!({
                            "type": "import-error",
                            "id": id,
                            "attributes": {
                                "code": code,
                                "title": "Invalid input.",
                                "detail": detail,
                                "source": {"pointer": format!("/data/attributes/profiles/data/{k}{at}")},
                                "original_payload": attrs,
                            },
                        }));
                    }
                }
            }
        }
        self.jobs.insert(job_id.to_string(), job.clone());
        Some(job)
    }

    /// A read of these profiles: deletions whose reads ran out take effect
    /// first, the others count the read.
    pub fn read(&mut self, ids: &[String]) {
        let mut gone = Vec::new();
        for pending in self.pending_deletions.iter_mut() {
            if !ids.contains(&pending.profile_id) {
                continue;
            }
            if pending.reads_left == 0 {
                gone.push(pending.profile_id.clone());
            } else {
                pending.reads_left -= 1;
            }
        }
        for id in gone {
            self.erase(&id);
        }
    }

    pub fn erase(&mut self, id: &str) {
        self.profiles.remove(id);
        self.deleted.insert(id.to_string());
        self.pending_deletions.retain(|p| p.profile_id != id);
    }

    /// Profiles matched by one filter field.
    pub fn find(&self, field: &str, value: &str) -> Vec<String> {
        self.profiles
            .values()
            .filter(|p| match field {
                "id" => p.id == value,
                "email" => p.email.as_deref().map(str::to_lowercase) == Some(value.to_lowercase()),
                "phone_number" => p.phone_number.as_deref() == Some(value),
                "external_id" => p.external_id.as_deref() == Some(value),
                _ => false,
            })
            .map(|p| p.id.clone())
            .collect()
    }
}

/// `+` and 8 to 15 digits.
pub fn is_e164(phone: &str) -> bool {
    phone
        .strip_prefix('+')
        .is_some_and(|d| (8..=15).contains(&d.len()) && d.bytes().all(|b| b.is_ascii_digit()))
}

/// `equals(email,"ada@example.com")` (or single quotes) -> (field, value).
pub fn parse_equals(filter: &str) -> Option<(String, String)> {
    let inner = filter.trim().strip_prefix("equals(")?.strip_suffix(')')?;
    let (field, literal) = inner.split_once(',')?;
    let literal = literal.trim();
    let quote = literal.chars().next()?;
    if !(quote == '"' || quote == '\'') || !literal.ends_with(quote) || literal.len() < 2 {
        return None;
    }
    let body = &literal[1..literal.len() - 1];
    let mut value = String::new();
    let mut chars = body.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            value.push(chars.next()?);
        } else {
            value.push(c);
        }
    }
    Some((field.trim().to_string(), value))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_and_phones() {
        assert_eq!(
            parse_equals(r#"equals(email,"a\"b@x.io")"#),
            Some(("email".into(), "a\"b@x.io".into()))
        );
        assert_eq!(
            parse_equals("equals(external_id,'u-1')"),
            Some(("external_id".into(), "u-1".into()))
        );
        assert_eq!(parse_equals("any(email,[\"a\"])"), None);
        assert!(is_e164("+4915112345678"));
        assert!(!is_e164("015112345678"));
    }
}
