//! Which parts of the hub one process runs (`hub serve --role`, `role` in
//! hub.toml, `HUB_ROLE`): everything, only the HTTP API, or only the
//! delivery workers. See docs/scaling.md.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// HTTP API, delivery drivers and housekeeping in one process.
    #[default]
    All,
    /// Webhooks, SCIM, admin API, `/healthz`, `/readyz`, `/metrics`; no
    /// delivery drivers and no housekeeping.
    Api,
    /// Delivery drivers and housekeeping; HTTP only for `/healthz`,
    /// `/readyz` and `/metrics`.
    Worker,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::All => "all",
            Role::Api => "api",
            Role::Worker => "worker",
        }
    }

    /// Serves webhooks, SCIM and the admin API.
    pub fn serves_api(self) -> bool {
        matches!(self, Role::All | Role::Api)
    }

    /// Runs the delivery drivers and housekeeping.
    pub fn runs_workers(self) -> bool {
        matches!(self, Role::All | Role::Worker)
    }

    /// A split role needs a database that several processes share. SQLite
    /// is refused: the write gate that orders writers is in-process (a
    /// second process would queue in SQLite's busy handler, with its
    /// multi-second stalls), the wake-ups from ingest to the drivers do not
    /// cross processes, and the file is one host's anyway.
    pub fn check_database(self, database_url: &str) -> Result<(), String> {
        if self != Role::All && database_url.starts_with("sqlite:") {
            return Err(format!(
                "role: {:?} needs PostgreSQL (database_url = \"postgres://...\"); with SQLite one \
                 process runs every part (role = \"all\")",
                self.as_str()
            ));
        }
        Ok(())
    }
}
