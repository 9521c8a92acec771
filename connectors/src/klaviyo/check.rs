//! Where Klaviyo's asynchronous work stands: a profile bulk import job is
//! polled (and, once complete with failures, its import errors are read and
//! matched to items by external id, then email); a data-privacy deletion,
//! which Klaviyo gives no job to poll for, is confirmed when the profile
//! can no longer be found.

use std::collections::BTreeMap;

use super::wire::{ImportErrors, JobDocument, JobStatus, ProfileList};
use super::{
    CHECK_DELETION_AFTER, CHECK_IMPORT_AFTER, DELETION_BY_EMAIL, DELETION_BY_ID, EMAIL,
    IMPORT_TICKET, KlaviyoConnector, classify, quota_spent, quoted,
};
use crate::classify::Class;
use crate::{CheckResult, DestinationSignal, Http, Ticket, TicketStatus, VendorResponse};

/// Pages of import errors read for one job at most (100 errors a page,
/// more than a batch holds).
const MAX_ERROR_PAGES: usize = 20;

/// What one look at the vendor said about a group of tickets.
enum Look {
    /// The same status for every ticket of the group.
    All(TicketStatus),
    /// A status per ticket of the group, in order.
    Each(Vec<TicketStatus>),
    /// No answer worth keeping (a 5xx, a timeout): ask again later.
    Unknown,
}

pub(super) async fn check(
    c: &KlaviyoConnector,
    http: &Http<'_>,
    tickets: &[Ticket],
) -> CheckResult {
    let mut groups: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, t) in tickets.iter().enumerate() {
        groups.entry(t.ticket.as_str()).or_default().push(i);
    }
    let mut result = CheckResult::default();
    for (ticket, indices) in groups {
        if result.signal.is_some() {
            break;
        }
        let members: Vec<&Ticket> = indices.iter().map(|&i| &tickets[i]).collect();
        let (look, status, signal) = if let Some(job) = ticket.strip_prefix(IMPORT_TICKET) {
            import_job(c, http, job, &members).await
        } else if let Some(id) = ticket.strip_prefix(DELETION_BY_ID) {
            let url = c.url(&format!("/api/profiles/{id}"), &[]);
            profile_gone(c, http, &url, true).await
        } else if ticket.starts_with(DELETION_BY_EMAIL) {
            match members[0].item.identity_str(EMAIL) {
                Some(email) => {
                    let filter = format!("equals(email,{})", quoted(email.trim()));
                    let url = c.url(
                        "/api/profiles",
                        &[("filter", &filter), ("fields[profile]", "email")],
                    );
                    profile_gone(c, http, &url, false).await
                }
                None => (
                    Look::All(TicketStatus::Failed {
                        reason: "the deletion's email is no longer known".into(),
                        retry: true,
                    }),
                    None,
                    None,
                ),
            }
        } else {
            (
                Look::All(TicketStatus::Failed {
                    reason: "not a ticket of the klaviyo connector".into(),
                    retry: false,
                }),
                None,
                None,
            )
        };
        if status.is_some() {
            result.status = status;
        }
        if result.signal.is_none() {
            result.signal = signal;
        }
        match look {
            Look::All(s) => result
                .statuses
                .extend(indices.iter().map(|&i| (i, s.clone()))),
            Look::Each(each) => result.statuses.extend(indices.iter().copied().zip(each)),
            Look::Unknown => {}
        }
    }
    result
}

type Answer = (Look, Option<u16>, Option<DestinationSignal>);

/// A failed look: throttle and pause become the signal, the rest waits.
fn not_looked(resp: &VendorResponse) -> Answer {
    (Look::Unknown, Some(resp.status), classify(resp).signal())
}

async fn import_job(
    c: &KlaviyoConnector,
    http: &Http<'_>,
    job: &str,
    tickets: &[&Ticket],
) -> Answer {
    let url = c.url(&format!("/api/profile-bulk-import-jobs/{job}"), &[]);
    let Ok(resp) = c.get(http, &url).await else {
        return (Look::Unknown, None, None);
    };
    let spent = quota_spent(&resp);
    if resp.status == 404 {
        let failed = TicketStatus::Failed {
            reason: "Klaviyo no longer knows this import job".into(),
            retry: true,
        };
        return (Look::All(failed), Some(404), spent);
    }
    if classify(&resp) != Class::Success {
        return not_looked(&resp);
    }
    let Ok(doc) = resp.json::<JobDocument>() else {
        return (Look::Unknown, Some(resp.status), spent);
    };
    let look = match doc.data.attributes.status {
        JobStatus::Queued | JobStatus::Processing => Look::All(TicketStatus::Pending {
            check_after: CHECK_IMPORT_AFTER,
        }),
        JobStatus::Cancelled => Look::All(TicketStatus::Failed {
            reason: format!("Klaviyo cancelled import job {}", doc.data.id),
            retry: true,
        }),
        JobStatus::Complete if doc.data.attributes.failed_count.unwrap_or(0) == 0 => {
            Look::Each(tickets.iter().map(|t| confirmed(t)).collect())
        }
        JobStatus::Complete => return import_errors(c, http, job, tickets, spent).await,
    };
    (look, Some(resp.status), spent)
}

fn confirmed(t: &Ticket) -> TicketStatus {
    TicketStatus::Confirmed {
        record_id: t.item.record_id.clone(),
    }
}

/// Reads a complete job's import errors and gives each ticket its own.
async fn import_errors(
    c: &KlaviyoConnector,
    http: &Http<'_>,
    job: &str,
    tickets: &[&Ticket],
    mut signal: Option<DestinationSignal>,
) -> Answer {
    let mut next = Some(c.url(
        &format!("/api/profile-bulk-import-jobs/{job}/import-errors"),
        &[("page[size]", "100")],
    ));
    let mut by_external_id: BTreeMap<String, String> = BTreeMap::new();
    let mut by_email: BTreeMap<String, String> = BTreeMap::new();
    let mut status = None;
    for _ in 0..MAX_ERROR_PAGES {
        let Some(url) = next.take() else { break };
        let Ok(resp) = c.get(http, &url).await else {
            return (Look::Unknown, status, signal);
        };
        status = Some(resp.status);
        signal = signal.or_else(|| quota_spent(&resp));
        if classify(&resp) != Class::Success {
            return not_looked(&resp);
        }
        let Ok(page) = resp.json::<ImportErrors>() else {
            return (Look::Unknown, status, signal);
        };
        for e in &page.data {
            let a = &e.attributes;
            if let Some(id) = a.submitted("external_id") {
                by_external_id.insert(id.to_string(), a.reason());
            } else if let Some(email) = a.submitted(EMAIL) {
                by_email.insert(email.trim().to_lowercase(), a.reason());
            }
        }
        // Only our own API's pages: the key goes with every request.
        next = page
            .links
            .next
            .filter(|n| n.starts_with(&format!("{}/", c.base_url)));
    }
    let each = tickets
        .iter()
        .map(|t| {
            let email = t
                .item
                .fields()
                .and_then(|f| f.get(EMAIL))
                .and_then(|v| v.as_str())
                .map(|e| e.trim().to_lowercase());
            let reason = by_external_id
                .get(&t.item.subject_id)
                .or_else(|| email.and_then(|e| by_email.get(&e)));
            match reason {
                Some(reason) => TicketStatus::Failed {
                    reason: format!("Klaviyo import error: {reason}"),
                    retry: false,
                },
                None => confirmed(t),
            }
        })
        .collect();
    (Look::Each(each), status, signal)
}

/// Confirmed once the profile is gone: `by_id` reads one profile (404 =
/// gone), otherwise `url` lists the profiles matching a filter (none = gone).
async fn profile_gone(c: &KlaviyoConnector, http: &Http<'_>, url: &str, by_id: bool) -> Answer {
    let Ok(resp) = c.get(http, url).await else {
        return (Look::Unknown, None, None);
    };
    let spent = quota_spent(&resp);
    let pending = Look::All(TicketStatus::Pending {
        check_after: CHECK_DELETION_AFTER,
    });
    let gone = Look::All(TicketStatus::Confirmed { record_id: None });
    if by_id && resp.status == 404 {
        return (gone, Some(404), spent);
    }
    if classify(&resp) != Class::Success {
        return not_looked(&resp);
    }
    let look = if by_id {
        pending
    } else {
        match resp.json::<ProfileList>() {
            Ok(list) if list.data.is_empty() => gone,
            Ok(_) => pending,
            Err(_) => Look::Unknown,
        }
    };
    (look, Some(resp.status), spent)
}
