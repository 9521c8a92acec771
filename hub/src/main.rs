//! The `hub` binary: parse the command line, start tracing, call the library.

use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::Parser;
use hub::cli::{Cli, Command, ConsentCommand, DestinationsCommand, DlqCommand, MappingsCommand};
use hub::config::{Config, RawConfig, Role};
use hub::store::{self, SubjectKey, now_ms};

// glibc's malloc took about a tenth of the hub's CPU under load, mostly in
// its arena locks and free lists (perf, docs/decisions.md §25).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    // The demo and the benchmark narrate on stdout; keep their logs quiet.
    let default_filter = match cli.command {
        Command::Demo | Command::Bench(_) | Command::BenchScim(_) => "warn",
        _ => "info,sqlx=warn",
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let exporter = match start_tracing(&cli, default_filter, runtime.handle()) {
        Ok(exporter) => exporter,
        Err(e) => {
            eprintln!("error: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    let code = match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    };
    // Buffered spans go out while the runtime that posts them still runs.
    if let Some(exporter) = exporter {
        exporter.shutdown();
    }
    code
}

/// Logs to stderr, and for `hub serve` with `[telemetry] otlp_endpoint`,
/// spans to the collector. A configuration that does not load is left to
/// the command to report.
fn start_tracing(
    cli: &Cli,
    default_filter: &str,
    runtime: &tokio::runtime::Handle,
) -> anyhow::Result<Option<hub::telemetry::Exporter>> {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let telemetry = match &cli.command {
        Command::Serve { role } => load_serve_config(cli, *role)
            .map(|c| c.telemetry)
            .unwrap_or_default(),
        _ => Default::default(),
    };
    let otlp = hub::telemetry::otlp_layer(&telemetry, runtime.clone())?;
    let (layer, exporter) = match otlp {
        Some((layer, exporter)) => (Some(layer), Some(exporter)),
        None => (None, None),
    };
    tracing_subscriber::registry()
        .with(log_filter(default_filter))
        .with(tracing_subscriber::fmt::layer().with_writer(std::io::stderr))
        .with(layer)
        .init();
    Ok(exporter)
}

/// The log filter: `HUB_LOG` if set (it names this program only, so it
/// wins), else `RUST_LOG`, else `default`. A filter that does not parse is
/// reported and the default used, rather than logging nothing.
fn log_filter(default: &str) -> tracing_subscriber::EnvFilter {
    use tracing_subscriber::EnvFilter;
    for var in ["HUB_LOG", "RUST_LOG"] {
        let Some(text) = std::env::var(var).ok().filter(|v| !v.trim().is_empty()) else {
            continue;
        };
        match EnvFilter::try_new(&text) {
            Ok(filter) => return filter,
            Err(e) => {
                eprintln!("warning: {var} is not a valid log filter ({e}); using {default:?}")
            }
        }
        break;
    }
    EnvFilter::new(default)
}

fn load_config(cli: &Cli) -> anyhow::Result<Config> {
    Ok(RawConfig::load(cli.config.as_deref())?.validate()?)
}

/// The settings with `--role` (when given) in place of the file's `role`.
fn load_serve_config(cli: &Cli, role: Option<Role>) -> anyhow::Result<Config> {
    let mut raw = RawConfig::load(cli.config.as_deref())?;
    if let Some(role) = role {
        raw.role = role;
    }
    Ok(raw.validate()?)
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match &cli.command {
        Command::Serve { role } => {
            let config = load_serve_config(&cli, *role)?;
            let listen = config.listen;
            // Migrations finish before the port opens: nothing is accepted earlier.
            let prepared = hub::prepare(config).await?;
            let listener = tokio::net::TcpListener::bind(listen)
                .await
                .with_context(|| format!("cannot listen on {listen}"))?;
            // One line on stdout that scripts and tests read.
            println!("hub listening on http://{}", listener.local_addr()?);
            hub::serve(prepared, listener, shutdown_signal()).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Demo => hub::demo::run().await,
        Command::Token(hub::cli::TokenCommand::New { name, admin, scope }) => {
            let (token, lines, whom) = match (admin, scope, name) {
                (Some(admin), Some(scope), _) => {
                    let (token, lines) = hub::cli::new_admin_token(admin, *scope);
                    (token, lines, "the admin")
                }
                (_, _, Some(name)) => {
                    let (token, lines) = hub::cli::new_scim_token(name);
                    (token, lines, "the identity provider")
                }
                _ => bail!("name a SCIM client, or --admin NAME --scope read|write"),
            };
            println!("token (give it to {whom}; it is not stored): {token}");
            println!("add to hub.toml:\n{lines}");
            Ok(ExitCode::SUCCESS)
        }
        Command::Bench(args) => hub::demo::bench::run(args.clone())
            .await
            .map(|_| ExitCode::SUCCESS),
        Command::BenchScim(args) => hub::demo::bench_scim::run(args.clone())
            .await
            .map(|_| ExitCode::SUCCESS),
        Command::Mappings(MappingsCommand::Check { dir }) => {
            let config = load_config(&cli)?;
            let dir = dir.clone().unwrap_or(config.mappings.clone());
            let (ok, errors) = hub::destinations::check_dir(&dir, &config.vocabulary());
            for e in &errors {
                println!("{e}");
            }
            if errors.is_empty() {
                println!("{} destination(s) OK in {}", ok.len(), dir.display());
                Ok(ExitCode::SUCCESS)
            } else {
                println!("{} error(s)", errors.len());
                Ok(ExitCode::FAILURE)
            }
        }
        Command::Mappings(MappingsCommand::Preview {
            destination,
            subject,
            grants,
            dir,
        }) => {
            let config = load_config(&cli)?;
            let dir = dir.clone().unwrap_or(config.mappings.clone());
            let (ok, errors) = hub::destinations::check_dir(&dir, &config.vocabulary());
            for e in &errors {
                eprintln!("{e}");
            }
            let Some(dest) = ok.into_iter().find(|d| &d.mapping.name == destination) else {
                bail!(
                    "no valid destination named {destination:?} in {}",
                    dir.display()
                );
            };
            let text = std::fs::read_to_string(subject)
                .with_context(|| format!("cannot read {}", subject.display()))?;
            let profile: serde_json::Value = serde_json::from_str(&text)
                .with_context(|| format!("{} is not JSON", subject.display()))?;
            let preview = hub::demo::preview(&dest, profile, grants);
            println!("{}", serde_json::to_string_pretty(&preview)?);
            Ok(ExitCode::SUCCESS)
        }
        Command::Dlq(cmd) => {
            let store = store::connect(&load_config(&cli)?.database_url).await?;
            match cmd {
                DlqCommand::List { destination } => {
                    let list = store.dead_letters(destination.as_deref()).await?;
                    println!("{}", serde_json::to_string_pretty(&list)?);
                }
                DlqCommand::Replay {
                    destination,
                    id,
                    all,
                    batch,
                } => {
                    use hub::dlq::Selection;
                    let selection = match (destination, id, all) {
                        (Some(name), None, false) => Selection::Destination(name.clone()),
                        (None, Some(id), false) => Selection::Id(id.clone()),
                        (None, None, true) => Selection::All,
                        (None, None, false) => {
                            bail!("name --destination NAME, --id ID, or --all")
                        }
                        _ => bail!("name one of --destination NAME, --id ID and --all"),
                    };
                    let mut progress = hub::progress::Progress::for_stderr("dead letters");
                    let n = hub::dlq::replay(store.as_ref(), &selection, *batch, |event| {
                        hub::dlq::show(&mut progress, event)
                    })
                    .await?;
                    println!("replayed {n} dead letter(s)");
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Deliveries { subject, limit } => {
            let store = store::connect(&load_config(&cli)?.database_url).await?;
            let subject_id = match subject {
                None => None,
                Some(s) => Some(
                    store
                        .find_subject(&SubjectKey::parse(s))
                        .await?
                        .with_context(|| format!("no subject {s:?}"))?,
                ),
            };
            let list = store.attempts(subject_id.as_deref(), *limit).await?;
            println!("{}", serde_json::to_string_pretty(&list)?);
            Ok(ExitCode::SUCCESS)
        }
        Command::Consent(ConsentCommand::Show { subject }) => {
            let store = store::connect(&load_config(&cli)?.database_url).await?;
            let report = subject_report(store.as_ref(), subject).await?;
            let out = serde_json::json!({
                "subject": report.id,
                "consent": report.consent,
                "history": report.consent_history,
            });
            println!("{}", serde_json::to_string_pretty(&out)?);
            Ok(ExitCode::SUCCESS)
        }
        Command::Export { subject } => {
            let store = store::connect(&load_config(&cli)?.database_url).await?;
            let report = subject_report(store.as_ref(), subject).await?;
            println!("{}", serde_json::to_string_pretty(&report)?);
            Ok(ExitCode::SUCCESS)
        }
        Command::Erase { subject } => {
            let config = load_config(&cli)?;
            let (ok, _) = hub::destinations::check_dir(&config.mappings, &config.vocabulary());
            let names: Vec<String> = ok
                .iter()
                .filter(|d| d.mapping.enabled)
                .map(|d| d.mapping.name.clone())
                .collect();
            let store = store::connect(&config.database_url).await?;
            let id = subject_id(store.as_ref(), subject).await?;
            let started = store.request_erasure(&id, &names, now_ms()).await?;
            let out = serde_json::json!({
                "subject": id,
                "erasure": if started { "requested" } else { "already requested" },
            });
            println!("{}", serde_json::to_string_pretty(&out)?);
            Ok(ExitCode::SUCCESS)
        }
        Command::Destinations { command } => {
            let config = load_config(&cli)?;
            let (ok, _) = hub::destinations::check_dir(&config.mappings, &config.vocabulary());
            let store = store::connect(&config.database_url).await?;
            let known = |name: &str| ok.iter().any(|d| d.mapping.name == name);
            match command {
                None => {
                    let list = hub::destinations::reports(store.as_ref(), &ok).await?;
                    println!("{}", serde_json::to_string_pretty(&list)?);
                }
                Some(DestinationsCommand::Pause { name, reason }) => {
                    if !known(name) {
                        bail!("no valid destination named {name:?}");
                    }
                    store
                        .pause_destination(name, store::PausedBy::Admin, reason, None)
                        .await?;
                    println!("paused {name}");
                }
                Some(DestinationsCommand::Resume { name }) => {
                    if !known(name) {
                        bail!("no valid destination named {name:?}");
                    }
                    let was = store.resume_destination(name).await?;
                    println!(
                        "{}",
                        if was {
                            format!("resumed {name}")
                        } else {
                            format!("{name} was not paused")
                        }
                    );
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Backfill(args) => backfill(&cli, args).await,
        Command::Dev(hub::cli::DevCommand::Seed { subjects }) => {
            let store = store::connect(&load_config(&cli)?.database_url).await?;
            let created = store.seed_subjects(*subjects).await?;
            println!("created {created} subject(s)");
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// `hub backfill`: waits while another runner holds the destination, then
/// runs (or resumes) its backfill with progress on stderr; Ctrl-C stops
/// after the current batch and keeps the cursor.
async fn backfill(cli: &Cli, args: &hub::cli::BackfillArgs) -> anyhow::Result<ExitCode> {
    use hub::backfill::{Backfill, BackfillError, BackfillOptions};
    use hub::progress::Progress;
    let config = load_config(cli)?;
    let (ok, _) = hub::destinations::check_dir(&config.mappings, &config.vocabulary());
    let destination = &args.destination;
    if !ok.iter().any(|d| &d.mapping.name == destination) {
        bail!("no valid destination named {destination:?}");
    }
    let store = store::connect(&config.database_url).await?;
    let options = BackfillOptions {
        batch: args.batch as usize,
        pause: args.pause,
        lease: args.lease,
        restart: args.restart,
    };
    let run = loop {
        match Backfill::claim(store.clone(), destination, options).await {
            Ok(run) => break run,
            Err(BackfillError::Held { until }) => {
                let left = until - now_ms();
                eprintln!(
                    "backfill {destination}: another runner holds it (its lease ends in {}s); waiting",
                    (left.max(0) + 999) / 1000
                );
                let wait = left.clamp(100, 5_000);
                tokio::time::sleep(std::time::Duration::from_millis(wait as u64)).await;
            }
            Err(e) => return Err(e.into()),
        }
    };
    let (stop_tx, stop) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        shutdown_signal().await;
        let _ = stop_tx.send(true);
    });
    let mut progress = Progress::for_stderr("subjects");
    let status = run
        .run(
            |event| hub::backfill::progress::show(&mut progress, event),
            stop,
        )
        .await?;
    if status.state == store::BackfillState::Done {
        println!("queued {} subject(s) for {destination}", status.queued);
        Ok(ExitCode::SUCCESS)
    } else {
        println!(
            "stopped after {} of {} subject(s) for {destination}; run again to resume",
            status.queued, status.total
        );
        Ok(ExitCode::FAILURE)
    }
}

async fn subject_id(store: &dyn store::Store, key: &str) -> anyhow::Result<String> {
    store
        .find_subject(&SubjectKey::parse(key))
        .await?
        .with_context(|| format!("no subject {key:?}"))
}

async fn subject_report(
    store: &dyn store::Store,
    key: &str,
) -> anyhow::Result<store::SubjectReport> {
    let id = subject_id(store, key).await?;
    store
        .subject_report(&id)
        .await?
        .with_context(|| format!("no subject {key:?}"))
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
    tracing::info!("shutdown requested");
}
