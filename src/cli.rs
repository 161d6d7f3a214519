//! The `seva` command line (spec §5). Results go to stdout, everything else to stderr.

use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use flows::Lang;

use crate::chat::{ChatOptions, DEFAULT_CITIZEN};
use crate::config::Config;
use crate::store::{OutboxStatus, Store};
use crate::{Error, logging};

#[derive(Debug, Parser)]
#[command(
    name = "seva",
    version,
    about = "Police citizen services on Telegram and WhatsApp, in Hindi and English"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run every configured channel, the HTTP routes and the outbox dispatcher.
    Serve,
    /// Talk to the bot in the terminal, on the same flows and database.
    Chat {
        /// The citizen's language; skips the language question.
        #[arg(long, value_enum)]
        lang: Option<LangArg>,
        /// The terminal citizen's name, to play several citizens or come back as one later.
        #[arg(long = "as", value_name = "ID", default_value = DEFAULT_CITIZEN)]
        as_id: String,
    },
    /// Apply database migrations (serve also does it at start).
    Migrate,
    /// See and replay messages that could not be delivered.
    Outbox {
        #[command(subcommand)]
        command: OutboxCommand,
    },
    /// Officer API tokens.
    Officer {
        #[command(subcommand)]
        command: OfficerCommand,
    },
    /// Officer actions on a report, from the shell (acting as `cli`, audited).
    Report {
        #[command(subcommand)]
        command: ReportCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum OfficerCommand {
    /// Create a token; prints only the token on stdout (shown this once, stored hashed).
    Add {
        /// Who holds the token (shown in the audit log).
        #[arg(long)]
        name: String,
        /// What it may see: station:<id>, district:<id> or state.
        #[arg(long)]
        scope: String,
        /// Days until the token stops working on its own (default: until revoked).
        #[arg(long, value_name = "DAYS", value_parser = clap::value_parser!(u32).range(1..=3650))]
        expires_in: Option<u32>,
    },
    /// Revoke every token of that officer.
    Revoke {
        /// The officer's name, as given to `officer add`.
        name: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum ReportCommand {
    /// A report with its history and attachments.
    Show {
        /// The reference, e.g. C-7K3Q-9XM4-R.
        reference: String,
        /// Print the officer API's JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Move a report to its next status (or closed); the citizen is notified.
    SetStatus {
        reference: String,
        /// The new status, e.g. acknowledged, fir_registered, closed.
        status: String,
        /// A note for the citizen, sent with the update.
        #[arg(long)]
        note: Option<String>,
        /// A note kept in the history, never sent.
        #[arg(long)]
        internal_note: Option<String>,
        /// The FIR number (required for fir_registered).
        #[arg(long = "fir")]
        fir: Option<String>,
        /// Why the report is closed (required for closed).
        #[arg(long)]
        reason: Option<String>,
        /// For a lost item marked found: the found report's reference.
        #[arg(long)]
        found_ref: Option<String>,
    },
    /// Remove the personal data of reports closed or returned long ago, keeping anonymous
    /// statistics; prints how many reports were purged.
    Purge {
        /// How long ago the report was closed or returned: 90d, 12w, 36h (default
        /// SEVA_REPORT_RETENTION_DAYS days).
        #[arg(long, value_name = "AGE")]
        older_than: Option<String>,
    },
    /// Move an open report to another station; the new station is alerted, the citizen told.
    Transfer {
        reference: String,
        /// The station id, from the stations file.
        station: String,
        /// A note for the citizen.
        #[arg(long)]
        note: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum OutboxCommand {
    /// Undelivered messages, newest first.
    List {
        /// Only dead letters.
        #[arg(long)]
        dead: bool,
    },
    /// Send a dead (or waiting) message again, now.
    Retry {
        /// The outbox id, as `outbox list` shows it.
        id: i64,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum LangArg {
    Hi,
    En,
}

impl From<LangArg> for Lang {
    fn from(l: LangArg) -> Lang {
        match l {
            LangArg::Hi => Lang::Hi,
            LangArg::En => Lang::En,
        }
    }
}

/// Tokio's scheduler for as many cores as the process may use. On one core (a small VM, or
/// pinned with `taskset`) the work-stealing scheduler has nobody to steal from and only its
/// cross-thread bookkeeping left; the current-thread scheduler runs the same tasks without it
/// (3 % more replies/s under load on one core).
fn async_runtime() -> std::io::Result<tokio::runtime::Runtime> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    if cores == 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Runtime::new()
    }
}

/// Parses the command line, runs the command, and maps failure to an exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = match Config::from_env() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("seva: {e}");
            return ExitCode::from(2);
        }
    };
    // The chat's own stderr should show the conversation, not every turn's log line.
    let default_level = if matches!(cli.command, Command::Chat { .. }) {
        "warn"
    } else {
        "info"
    };
    logging::init(config.log_format, default_level);
    let runtime = match async_runtime() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("seva: cannot start: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(execute(cli.command, config));
    // `serve` has drained within its grace period: whatever is left (work abandoned when the
    // grace ran out, a blocked stdin read) must not hold the exit.
    runtime.shutdown_timeout(std::time::Duration::from_millis(250));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("seva: {e}");
            ExitCode::FAILURE
        }
    }
}

pub async fn execute(command: Command, config: Config) -> Result<(), Error> {
    match command {
        Command::Serve => {
            let listener = tokio::net::TcpListener::bind(config.listen).await?;
            crate::run(config, listener, shutdown_signal()).await
        }
        Command::Chat { lang, as_id } => {
            if as_id.trim().is_empty() {
                return Err(Error::Usage("--as needs a name".to_owned()));
            }
            let lang = lang.map(Lang::from);
            crate::chat::run(&config, &ChatOptions { lang, as_id }).await
        }
        Command::Migrate => {
            let store = Store::open(&config.database_url).await?;
            store.close().await;
            eprintln!("seva: migrations applied");
            Ok(())
        }
        Command::Outbox { command } => outbox(command, &config).await,
        Command::Officer { command } => match command {
            OfficerCommand::Add {
                name,
                scope,
                expires_in,
            } => crate::officer::commands::officer_add(&config, &name, &scope, expires_in).await,
            OfficerCommand::Revoke { name } => {
                crate::officer::commands::officer_revoke(&config, &name).await
            }
        },
        Command::Report { command } => report(command, &config).await,
    }
}

async fn outbox(command: OutboxCommand, config: &Config) -> Result<(), Error> {
    let store = Store::open(&config.database_url).await?;
    let result = match command {
        OutboxCommand::List { dead } => {
            let rows = store.list_outbox(dead, 200).await?;
            if rows.is_empty() {
                eprintln!(
                    "seva: no {} messages",
                    if dead { "dead" } else { "undelivered" }
                );
            } else {
                println!("id\tstatus\tchannel\tkind\tto\tattempts\tnext_attempt_at\tlast_error");
            }
            for r in rows {
                // Citizens by internal id: a WhatsApp recipient is a phone number.
                let to = match r.citizen_id {
                    Some(id) => format!("citizen:{id}"),
                    None => r.recipient.clone(),
                };
                let next = chrono::DateTime::from_timestamp(r.next_attempt_at, 0)
                    .map(|t| t.to_rfc3339())
                    .unwrap_or_default();
                println!(
                    "{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}",
                    r.id,
                    r.status.as_str(),
                    r.channel.as_str(),
                    r.kind.as_str(),
                    to,
                    r.attempts,
                    next,
                    r.last_error.unwrap_or_default().replace(['\t', '\n'], " ")
                );
            }
            Ok(())
        }
        OutboxCommand::Retry { id } => match store
            .retry_outbox(id, chrono::Utc::now().timestamp())
            .await?
        {
            OutboxStatus::Dead | OutboxStatus::Pending => {
                eprintln!(
                    "seva: message {id} is due now; a running dispatcher sends it within a second"
                );
                Ok(())
            }
            OutboxStatus::Sending => Err(Error::Usage(format!(
                "message {id} is being sent right now"
            ))),
            OutboxStatus::Sent => Err(Error::Usage(format!("message {id} was already sent"))),
        },
    };
    store.close().await;
    result
}

async fn report(command: ReportCommand, config: &Config) -> Result<(), Error> {
    use crate::officer::commands::{self, SetStatus};
    match command {
        ReportCommand::Show { reference, json } => {
            commands::report_show(config, &reference, json).await
        }
        ReportCommand::SetStatus {
            reference,
            status,
            note,
            internal_note,
            fir,
            reason,
            found_ref,
        } => {
            let set = SetStatus {
                status,
                note,
                internal_note,
                fir_number: fir,
                reason,
                found_ref,
            };
            commands::report_set_status(config, &reference, set).await
        }
        ReportCommand::Transfer {
            reference,
            station,
            note,
        } => commands::report_transfer(config, &reference, &station, note.as_deref()).await,
        ReportCommand::Purge { older_than } => {
            commands::report_purge(config, older_than.as_deref()).await
        }
    }
}

/// Resolves on Ctrl-C or SIGTERM.
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
        () = ctrl_c => {}
        () = term => {}
    }
}
