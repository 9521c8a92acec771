//! The command line: `hub serve`, `hub demo`, and the admin commands that
//! read the same database as the running hub.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "hub", version, about = "Customer identity integration hub")]
pub struct Cli {
    /// Settings file (default: hub.toml if present; env HUB_CONFIG).
    #[arg(long, global = true)]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the hub: HTTP API, delivery workers, mapping reloads.
    Serve {
        /// Which parts this process runs (default: `role` in hub.toml,
        /// else all). `api` and `worker` need PostgreSQL.
        #[arg(long, value_enum)]
        role: Option<crate::config::Role>,
    },
    /// A guided tour on a temporary database with a built-in sink.
    Demo,
    /// Check or preview mapping files.
    #[command(subcommand)]
    Mappings(MappingsCommand),
    /// Dead letters: list or replay.
    #[command(subcommand)]
    Dlq(DlqCommand),
    /// Recent delivery attempts, newest first.
    Deliveries {
        /// Only this subject (hub id or SOURCE:externalId).
        #[arg(long)]
        subject: Option<String>,
        #[arg(long, default_value_t = 50)]
        limit: i64,
    },
    /// Consent of a subject: current state and full history, as JSON.
    #[command(subcommand)]
    Consent(ConsentCommand),
    /// Everything the hub holds about a subject, as JSON (GDPR art. 15).
    Export {
        /// Hub id or SOURCE:externalId.
        subject: String,
    },
    /// Erase a subject (GDPR art. 17): a delete to every destination that had
    /// it, then its PII is removed here and a receipt kept. Prints JSON.
    Erase {
        /// Hub id or SOURCE:externalId.
        subject: String,
    },
    /// Destinations: state (active, paused, throttled), queue, lag, last
    /// error and last hour's outcomes; pause and resume.
    Destinations {
        #[command(subcommand)]
        command: Option<DestinationsCommand>,
    },
    /// Queue every subject for one destination, in batches; resumes an
    /// unfinished run where it stopped. Progress on stderr.
    Backfill(BackfillArgs),
    /// Measure webhooks in to deliveries out against a local sink.
    Bench(crate::demo::bench::BenchArgs),
    /// Measure the SCIM endpoint: user load, filtered lookups, PATCH rate.
    BenchScim(crate::demo::bench_scim::BenchScimArgs),
    /// SCIM client and admin API tokens.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Tools for tests and benchmarks.
    #[command(subcommand, hide = true)]
    Dev(DevCommand),
}

#[derive(Debug, Clone, clap::Args)]
pub struct BackfillArgs {
    #[arg(long)]
    pub destination: String,
    /// Subjects per batch (one statement and one commit each).
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub batch: u32,
    /// Pause after each batch (e.g. 50ms); default: as long as the batch
    /// took, so that ingest keeps at least half of the writer.
    #[arg(long, value_parser = humantime::parse_duration)]
    pub pause: Option<std::time::Duration>,
    /// Start over from the first subject, even if a run is unfinished.
    #[arg(long)]
    pub restart: bool,
    /// The runner's lease, renewed by every batch (a killed run can be
    /// resumed once it has run out).
    #[arg(long, value_parser = humantime::parse_duration, default_value = "15s", hide = true)]
    pub lease: std::time::Duration,
}

#[derive(Debug, Subcommand)]
pub enum DevCommand {
    /// Create subjects seed-1 .. seed-N straight in the store (no webhooks).
    Seed {
        #[arg(long)]
        subjects: u64,
    },
}

#[derive(Debug, Subcommand)]
pub enum MappingsCommand {
    /// Validate every file; prints file:line:col: reason and exits 1 on error.
    Check { dir: Option<PathBuf> },
    /// Show what a destination would receive for a subject, without sending.
    Preview {
        #[arg(long)]
        destination: String,
        /// A SCIM User as JSON.
        #[arg(long)]
        subject: PathBuf,
        /// Purposes to treat as granted (repeatable).
        #[arg(long = "grant")]
        grants: Vec<String>,
        #[arg(long)]
        dir: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
pub enum DlqCommand {
    List {
        #[arg(long)]
        destination: Option<String>,
    },
    Replay {
        #[arg(long)]
        destination: Option<String>,
        /// One dead letter by id.
        #[arg(long)]
        id: Option<String>,
        /// Every dead letter of every destination.
        #[arg(long)]
        all: bool,
        /// Dead letters per step (progress is shown after each).
        #[arg(long, default_value_t = 100)]
        batch: usize,
    },
}

#[derive(Debug, Subcommand)]
pub enum DestinationsCommand {
    /// Stop delivering to NAME (jobs are kept) until `resume`.
    Pause {
        name: String,
        #[arg(long, default_value = "paused by an admin")]
        reason: String,
    },
    /// Deliver to NAME again: everything it missed goes out, latest state only.
    Resume { name: String },
}

#[derive(Debug, Subcommand)]
pub enum ConsentCommand {
    Show {
        /// Hub id or SOURCE:externalId.
        subject: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Print a fresh random bearer token and the `hub.toml` lines holding
    /// its SHA-256: for SCIM client NAME, or with `--admin NAME --scope
    /// read|write` for an admin API token.
    New {
        /// The SCIM client's name (not with --admin).
        #[arg(required_unless_present = "admin", conflicts_with = "admin")]
        name: Option<String>,
        /// An admin API token of this name.
        #[arg(long, value_name = "NAME", requires = "scope")]
        admin: Option<String>,
        /// What the admin token may do: read, or also write.
        #[arg(long, value_enum, requires = "admin")]
        scope: Option<crate::config::Scope>,
    },
}

/// 32 random bytes as hex, and the SHA-256 hex of that text.
fn random_token() -> (String, String) {
    use rand::RngCore;
    use sha2::{Digest, Sha256};
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let token = hex::encode(bytes);
    let hash = hex::encode(Sha256::digest(token.as_bytes()));
    (token, hash)
}

/// A random token and the config lines for it (only the hash is kept).
pub fn new_scim_token(name: &str) -> (String, String) {
    let (token, hash) = random_token();
    (
        token,
        format!("[scim.clients.{name}]\ntoken_sha256 = \"{hash}\""),
    )
}

/// A random admin token and its `[admin.tokens.NAME]` lines.
pub fn new_admin_token(name: &str, scope: crate::config::Scope) -> (String, String) {
    let (token, hash) = random_token();
    (
        token,
        format!(
            "[admin.tokens.{name}]\ntoken_sha256 = \"{hash}\"\nscope = \"{}\"",
            scope.as_str()
        ),
    )
}
