//! What a job should do, decided from the subject's state at the moment of
//! sending: level-triggered, so a retry or replay re-reads everything.

use connectors::Action;
use mapping::{OnDelete, OnWithdraw};

use crate::destinations::ActiveDestination;
use crate::store::{Held, SubjectState};

#[derive(Debug, Clone, PartialEq)]
pub enum Plan {
    Send(Action),
    /// A purpose the destination needs was withdrawn while it holds data:
    /// its `on_withdraw` action, once.
    Withdraw {
        action: Action,
        missing: Vec<String>,
    },
    /// A purpose the destination needs is not granted: nothing is sent.
    Suppressed {
        missing: Vec<String>,
    },
    /// Nothing to do, and why.
    Skip(&'static str),
}

/// `in_doubt`: an earlier attempt of this job failed without a definite
/// refusal (a timeout, a reset, a 5xx, a lease that ran out mid-call), so
/// the vendor may have stored what it carried.
pub fn plan(
    destination: Option<&ActiveDestination>,
    subject: Option<&SubjectState>,
    in_doubt: bool,
) -> Plan {
    let Some(dest) = destination.filter(|d| d.mapping.enabled) else {
        return Plan::Skip("destination removed or disabled");
    };
    let Some(subject) = subject else {
        return Plan::Skip("subject not found");
    };
    let held = subject.held_by(&dest.mapping.name);
    if subject.deleted || subject.erasing {
        // Only a destination that ever received the subject has anything to
        // delete; `on_delete` says how (an erasure waits for it). One that
        // may have received it (in doubt) is asked to delete too: a delete
        // of nothing is harmless, data left after a receipt is not. (A
        // withdrawal in doubt sends nothing: it would hand the address to a
        // vendor that may never have had it.)
        let held = held.or(in_doubt.then_some(Held::Sent));
        return match (held, dest.mapping.on_delete) {
            (None, _) => Plan::Skip("subject deleted; never sent to this destination"),
            (Some(Held::Deleted), _) => Plan::Skip("subject deleted; already deleted here"),
            (_, OnDelete::Delete) => Plan::Send(Action::Delete),
            (Some(Held::Withdrawn), OnDelete::Suppress) => {
                Plan::Skip("subject deleted; already suppressed here")
            }
            (_, OnDelete::Suppress) => Plan::Send(Action::Suppress),
            (_, OnDelete::Ignore) => Plan::Skip("subject deleted; on_delete is ignore"),
        };
    }
    let brand = dest.mapping.brand.as_deref();
    // A brand's destination receives only that brand's subjects.
    if let Some(b) = brand
        && !crate::event::profile_brands(&subject.profile).contains(&b)
    {
        return match held {
            Some(Held::Sent) => Plan::Withdraw {
                action: Action::Suppress,
                missing: vec![format!("brand {b}")],
            },
            _ => Plan::Skip("subject is not in the destination's brand"),
        };
    }
    let missing: Vec<String> = dest
        .mapping
        .consent
        .iter()
        .filter(|p| !subject.granted(p, brand))
        .cloned()
        .collect();
    if !missing.is_empty() {
        let action = match dest.mapping.on_withdraw {
            OnWithdraw::Suppress => Some(Action::Suppress),
            OnWithdraw::Unsubscribe => Some(Action::Unsubscribe),
            OnWithdraw::Delete => Some(Action::Delete),
            OnWithdraw::Ignore => None,
        };
        return match (held, action) {
            (Some(Held::Sent), Some(action)) => Plan::Withdraw { action, missing },
            _ => Plan::Suppressed { missing },
        };
    }
    if !dest.mapping.applies_to(&subject.profile) {
        return Plan::Skip("`when` does not match");
    }
    let fields = dest
        .mapping
        .map(&subject.profile, &|purpose| subject.granted(purpose, brand));
    Plan::Send(Action::Upsert(fields))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn destination(extra: &str) -> ActiveDestination {
        let text = format!(
            "destination: crm\nconnector: webhook\nsettings:\n  url: http://127.0.0.1:9/hook\n  \
             secret: whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\nconsent: [marketing_email]\n{extra}\
             fields:\n  email:\n    from: emails[primary eq true].value\n  \
             score: {{ from: score, consent: analytics }}\n"
        );
        let mapping =
            mapping::parse_file(std::path::Path::new("crm.yaml"), &text, &|_| None).unwrap();
        let connector = connectors::build(&mapping.connector, mapping.settings.as_value()).ok();
        ActiveDestination { mapping, connector }
    }

    fn subject(grants: &[(&str, bool)], held: Option<Held>, deleted: bool) -> SubjectState {
        let mut received = HashMap::new();
        if let Some(h) = held {
            received.insert("crm".to_string(), crate::store::Holding::new(h));
        }
        SubjectState {
            id: "s1".into(),
            profile: serde_json::json!({"emails": [{"value": "a@example.com", "primary": true}], "score": 7, "active": true}),
            version: 3,
            deleted,
            erasing: false,
            consents: grants
                .iter()
                .map(|(p, g)| (p.to_string(), String::new(), *g))
                .collect(),
            received,
        }
    }

    #[test]
    fn sends_consented_fields_only() {
        let d = destination("");
        let Plan::Send(Action::Upsert(fields)) = plan(
            Some(&d),
            Some(&subject(&[("marketing_email", true)], None, false)),
            false,
        ) else {
            panic!("expected an upsert")
        };
        assert_eq!(
            fields.get("email"),
            Some(&serde_json::json!("a@example.com"))
        );
        assert!(!fields.contains_key("score"), "analytics not granted");
        let Plan::Send(Action::Upsert(fields)) = plan(
            Some(&d),
            Some(&subject(
                &[("marketing_email", true), ("analytics", true)],
                None,
                false,
            )),
            false,
        ) else {
            panic!()
        };
        assert_eq!(fields.get("score"), Some(&serde_json::json!(7)));
    }

    #[test]
    fn missing_consent_suppresses_and_withdrawal_acts_once() {
        let d = destination("on_withdraw: unsubscribe\n");
        let never_sent = plan(Some(&d), Some(&subject(&[], None, false)), false);
        assert_eq!(
            never_sent,
            Plan::Suppressed {
                missing: vec!["marketing_email".into()]
            }
        );
        let holds_data = plan(
            Some(&d),
            Some(&subject(
                &[("marketing_email", false)],
                Some(Held::Sent),
                false,
            )),
            false,
        );
        assert_eq!(
            holds_data,
            Plan::Withdraw {
                action: Action::Unsubscribe,
                missing: vec!["marketing_email".into()]
            }
        );
        let already = plan(
            Some(&d),
            Some(&subject(
                &[("marketing_email", false)],
                Some(Held::Withdrawn),
                false,
            )),
            false,
        );
        assert!(
            matches!(already, Plan::Suppressed { .. }),
            "withdrawal is sent once"
        );
    }

    #[test]
    fn deletes_reach_only_destinations_that_had_the_subject() {
        let d = destination("on_delete: delete\n");
        assert!(matches!(
            plan(Some(&d), Some(&subject(&[], None, true)), false),
            Plan::Skip(_)
        ));
        assert_eq!(
            plan(Some(&d), Some(&subject(&[], Some(Held::Sent), true)), false),
            Plan::Send(Action::Delete)
        );
        assert_eq!(
            plan(
                Some(&d),
                Some(&subject(&[], Some(Held::Withdrawn), true)),
                false
            ),
            Plan::Send(Action::Delete)
        );
        assert!(matches!(
            plan(
                Some(&d),
                Some(&subject(&[], Some(Held::Deleted), true)),
                false
            ),
            Plan::Skip(_)
        ));
    }

    #[test]
    fn an_erasure_goes_where_an_attempt_may_have_landed_a_withdrawal_does_not() {
        let d = destination("on_withdraw: unsubscribe\n");
        assert_eq!(
            plan(Some(&d), Some(&subject(&[], None, true)), true),
            Plan::Send(Action::Delete),
            "an earlier attempt failed in doubt: the vendor may hold the subject"
        );
        assert_eq!(
            plan(
                Some(&d),
                Some(&subject(&[], Some(Held::Deleted), true)),
                true
            ),
            Plan::Skip("subject deleted; already deleted here")
        );
        assert_eq!(
            plan(Some(&d), Some(&subject(&[], None, false)), true),
            Plan::Suppressed {
                missing: vec!["marketing_email".into()]
            },
            "no unsubscribe that would give the address to a vendor that may not have it"
        );
    }

    #[test]
    fn when_filter_and_missing_parts_skip() {
        let d = destination("when: active eq false\n");
        assert!(matches!(
            plan(
                Some(&d),
                Some(&subject(&[("marketing_email", true)], None, false)),
                false
            ),
            Plan::Skip(_)
        ));
        assert!(matches!(
            plan(None, Some(&subject(&[], None, false)), false),
            Plan::Skip(_)
        ));
        assert!(matches!(plan(Some(&d), None, false), Plan::Skip(_)));
    }
}
