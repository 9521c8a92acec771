//! `hub demo` and `hub mappings preview`.

pub mod bench;

use crate::delivery::plan::{Plan, plan};
use crate::destinations::ActiveDestination;
use crate::store::SubjectState;

/// What `dest` would receive for `profile` with `grants` granted, as JSON.
pub fn preview(dest: &ActiveDestination, profile: serde_json::Value, grants: &[String]) -> serde_json::Value {
    let subject = SubjectState {
        id: "preview".into(),
        profile,
        version: 0,
        deleted: false,
        consents: grants.iter().map(|g| (g.clone(), String::new(), true)).collect(),
    };
    match plan(Some(dest), Some(&subject)) {
        Plan::Send(action) => serde_json::json!({ "destination": dest.mapping.name, "action": action }),
        Plan::Suppressed { missing } => serde_json::json!({ "destination": dest.mapping.name, "suppressed": { "missing_consent": missing } }),
        Plan::Skip(why) => serde_json::json!({ "destination": dest.mapping.name, "skipped": why }),
    }
}

pub async fn run() -> anyhow::Result<std::process::ExitCode> {
    anyhow::bail!("demo: not yet")
}
