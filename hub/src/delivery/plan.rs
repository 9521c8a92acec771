//! What a job should do, decided from the subject's state at the moment of
//! sending: level-triggered, so a retry or replay re-reads everything.

use connectors::Action;
use mapping::OnDelete;

use crate::destinations::ActiveDestination;
use crate::store::SubjectState;

#[derive(Debug, Clone, PartialEq)]
pub enum Plan {
    Send(Action),
    /// A purpose the destination needs is not granted: nothing is sent.
    Suppressed {
        missing: Vec<String>,
    },
    /// Nothing to do, and why.
    Skip(&'static str),
}

pub fn plan(destination: Option<&ActiveDestination>, subject: Option<&SubjectState>) -> Plan {
    let Some(dest) = destination else {
        return Plan::Skip("destination removed or disabled");
    };
    if !dest.mapping.enabled {
        return Plan::Skip("destination removed or disabled");
    }
    let Some(subject) = subject else {
        return Plan::Skip("subject not found");
    };
    if subject.deleted {
        return match dest.mapping.on_delete {
            OnDelete::Delete => Plan::Send(Action::Delete),
            OnDelete::Suppress => Plan::Send(Action::Suppress),
            OnDelete::Ignore => Plan::Skip("subject deleted; on_delete is ignore"),
        };
    }
    let brand = dest.mapping.brand.as_deref();
    let missing: Vec<String> = dest
        .mapping
        .consent
        .iter()
        .filter(|p| !subject.granted(p, brand))
        .cloned()
        .collect();
    if !missing.is_empty() {
        return Plan::Suppressed { missing };
    }
    if !dest.mapping.applies_to(&subject.profile) {
        return Plan::Skip("`when` does not match");
    }
    let fields = dest
        .mapping
        .map(&subject.profile, &|purpose| subject.granted(purpose, brand));
    Plan::Send(Action::Upsert(fields))
}
