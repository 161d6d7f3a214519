//! The Telegram channel (the `bot` crate) wired to the runtime.
//!
//! * [`sink`] — [`SevaSink`]: stores every update before the transport confirms it, then runs
//!   the citizens' turns; reachability changes; the polite line for group chats.
//! * [`sender`] — [`TelegramChannel`]: the outbox dispatcher's sender (native rendering,
//!   per-chat pacing, 403 → unreachable, 429 → wait).
//!
//! Modes (spec §5). Without `TELEGRAM_WEBHOOK_URL`, long polling: `deleteWebhook` keeping
//! pending updates, then `getUpdates` from no stored offset (the inbox drops what was stored
//! before a restart); with replicas on one PostgreSQL, only the replica holding the
//! `telegram:polling` lead polls. With it, webhook mode (on every replica): `setWebhook` with
//! `TELEGRAM_WEBHOOK_SECRET` at start, updates at `POST /webhook/telegram` on Seva's own router
//! (secret checked in constant time, 401 when wrong, 200 only once stored). In both, `setMyCommands` registers the
//! commands in English (default) and Hindi from the locales. Every call goes to
//! `TELEGRAM_API_URL`.

pub mod sender;
pub mod sink;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use bot::sender::{TelegramSender, classify};
use bot::transport::{PollingConfig, WEBHOOK_PATH, run_polling, webhook_router};
use flows::Lang;
use flows::catalog::Catalog;
use flows::delivery::SendOutcome;
use flows::reply::Text;
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::config::{Config, TelegramConfig};
use crate::outbox::ChannelSender;
use crate::runtime::Runtime;
use crate::store::Store;

pub use sender::{ChatPacer, TelegramChannel, bot_sender};
pub use sink::SevaSink;

/// The commands shown in Telegram's menu, with the locale message describing each.
pub const COMMANDS: [(&str, &str); 5] = [
    ("start", "cmd-start"),
    ("help", "cmd-help"),
    ("cancel", "cmd-cancel"),
    ("language", "cmd-language"),
    ("status", "cmd-status"),
];

/// First and longest wait between retries of a start-up call (`setWebhook`, `setMyCommands`).
const SETUP_BACKOFF: (Duration, Duration) = (Duration::from_secs(1), Duration::from_secs(60));

/// `setMyCommands` is worth a few tries, not a fight: the commands work typed anyway.
const COMMAND_ATTEMPTS: u32 = 5;

/// The Telegram sender for the dispatcher, when `TELEGRAM_BOT_TOKEN` is set.
pub fn sender(config: &Config) -> Option<Arc<dyn ChannelSender>> {
    let tg = config.telegram.as_ref()?;
    match TelegramChannel::new(tg, &config.database_url) {
        Ok(channel) => Some(Arc::new(channel)),
        Err(e) => {
            tracing::error!(error = %e, "channel telegram: cannot send");
            None
        }
    }
}

/// `POST /webhook/telegram` in webhook mode; nothing in polling mode.
pub fn routes(config: &Config, runtime: &Runtime) -> Router {
    let Some(tg) = &config.telegram else {
        return Router::new();
    };
    if tg.webhook_url.is_none() {
        return Router::new();
    }
    let Some(secret) = webhook_secret(tg) else {
        return Router::new();
    };
    let sender = match bot_sender(tg) {
        Ok(sender) => sender,
        Err(e) => {
            tracing::error!(error = %e, "channel telegram: webhook route not served");
            return Router::new();
        }
    };
    let sink = Arc::new(SevaSink::new(runtime.clone(), sender.clone()));
    webhook_router(secret, sink, sender)
}

/// Polling (or, in webhook mode, `setWebhook`) and `setMyCommands`, until `stop`.
pub fn spawn_tasks(
    config: &Config,
    runtime: &Runtime,
    stop: watch::Receiver<bool>,
    tasks: &mut JoinSet<()>,
) {
    let Some(tg) = &config.telegram else {
        return;
    };
    let sender = match bot_sender(tg) {
        Ok(sender) => sender,
        Err(e) => {
            tracing::error!(error = %e, "channel telegram: not started");
            return;
        }
    };
    tasks.spawn(register_commands(sender.clone(), stop.clone()));
    match &tg.webhook_url {
        Some(url) => {
            let Some(secret) = webhook_secret(tg) else {
                return;
            };
            let url = webhook_url(url);
            tracing::info!(
                mode = "webhook",
                path = WEBHOOK_PATH,
                "channel telegram: on"
            );
            tasks.spawn(set_webhook(sender, url, secret, stop));
        }
        None => {
            tracing::info!(mode = "long polling", "channel telegram: on");
            let sink = Arc::new(SevaSink::new(runtime.clone(), sender.clone()));
            tasks.spawn(poll_as_leader(runtime.store().clone(), sender, sink, stop));
        }
    }
}

/// Long polling on one replica at a time: Telegram answers a second concurrent `getUpdates`
/// with 409. This process polls while it holds the `telegram:polling` lead (always, on
/// SQLite); when the leader dies another replica takes over within seconds and, polling from
/// no stored offset, gets what was not confirmed (the inbox drops what was already stored).
async fn poll_as_leader(
    store: Store,
    sender: TelegramSender,
    sink: Arc<SevaSink>,
    mut stop: watch::Receiver<bool>,
) {
    let mut leader = store.lead("telegram:polling", stop.clone());
    loop {
        tokio::select! {
            () = leader.acquired() => {}
            _ = stop.wait_for(|stop| *stop) => return,
        }
        tracing::info!("telegram polling: this replica polls");
        let mut until = stop.clone();
        let mut lost = leader.clone();
        run_polling(
            sender.clone(),
            sink.clone(),
            PollingConfig::default(),
            async move {
                tokio::select! {
                    _ = until.wait_for(|stop| *stop) => {}
                    () = lost.lost() => {}
                }
            },
        )
        .await;
        if *stop.borrow() {
            return;
        }
        tracing::info!("telegram polling: another replica polls now");
    }
}

/// The webhook secret, checked against what `setWebhook` accepts: 1–256 characters of
/// `A-Z a-z 0-9 _ -`. Configuration already refuses webhook mode without one.
fn webhook_secret(tg: &TelegramConfig) -> Option<String> {
    let secret = tg.webhook_secret.as_ref().map(|s| s.expose().to_owned());
    match secret {
        Some(s) if valid_secret(&s) => Some(s),
        Some(_) => {
            tracing::error!(
                "channel telegram: TELEGRAM_WEBHOOK_SECRET must be 1-256 characters of A-Z, a-z, 0-9, _ and -; webhook mode not started"
            );
            None
        }
        None => {
            tracing::error!(
                "channel telegram: TELEGRAM_WEBHOOK_URL is set without TELEGRAM_WEBHOOK_SECRET; webhook mode not started"
            );
            None
        }
    }
}

/// Whether Telegram accepts `s` as a webhook `secret_token`.
pub fn valid_secret(s: &str) -> bool {
    (1..=256).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// The URL given to `setWebhook`: `TELEGRAM_WEBHOOK_URL` as it is, or with
/// `/webhook/telegram` appended when it names only a host (`https://seva.example.org`).
pub fn webhook_url(configured: &str) -> String {
    let trimmed = configured.trim();
    match reqwest::Url::parse(trimmed) {
        Ok(url) if url.path() == "/" && url.query().is_none() => {
            format!("{}{WEBHOOK_PATH}", trimmed.trim_end_matches('/'))
        }
        _ => trimmed.to_owned(),
    }
}

fn backoff(failures: u32) -> Duration {
    let (base, max) = SETUP_BACKOFF;
    base.saturating_mul(1 << failures.saturating_sub(1).min(16))
        .min(max)
}

/// Sleeps `wait` unless `stop` turns true first (then returns true).
async fn stopped_during(wait: Duration, stop: &mut watch::Receiver<bool>) -> bool {
    tokio::select! {
        _ = stop.wait_for(|stop| *stop) => true,
        () = tokio::time::sleep(wait) => false,
    }
}

/// `setWebhook` with the secret, retried until it succeeds; a refusal that no retry can fix
/// (a bad URL, a rejected token) is logged as an error once.
async fn set_webhook(
    sender: TelegramSender,
    url: String,
    secret: String,
    mut stop: watch::Receiver<bool>,
) {
    let mut failures = 0;
    loop {
        let result = tokio::select! {
            _ = stop.wait_for(|stop| *stop) => return,
            r = sender.set_webhook(&url, &secret) => r,
        };
        let err = match result {
            Ok(()) => {
                tracing::info!("telegram webhook set");
                return;
            }
            Err(e) => e,
        };
        let wait = match &err {
            bot::TelegramError::Request(request) => match classify(request) {
                SendOutcome::Permanent { .. } => {
                    tracing::error!(error = %err, "Telegram refused the webhook; check TELEGRAM_WEBHOOK_URL and the bot token");
                    return;
                }
                SendOutcome::RetryAfter { secs } => Duration::from_secs(secs),
                _ => {
                    failures += 1;
                    backoff(failures)
                }
            },
            _ => {
                tracing::error!(error = %err, "telegram webhook not set");
                return;
            }
        };
        tracing::warn!(error = %err, ?wait, "telegram setWebhook failed; retrying");
        if stopped_during(wait, &mut stop).await {
            return;
        }
    }
}

/// `(command, description)` pairs for `setMyCommands`.
pub type CommandList = Vec<(String, String)>;

/// The command menu in English (the default) and Hindi, from the `cmd-*` locale texts.
pub fn command_lists() -> (CommandList, CommandList) {
    let catalog = Catalog::global();
    let list = |lang: Lang| {
        COMMANDS
            .iter()
            .map(|(command, id)| ((*command).to_owned(), catalog.text(lang, &Text::new(*id))))
            .collect::<Vec<_>>()
    };
    (list(Lang::En), list(Lang::Hi))
}

async fn register_commands(sender: TelegramSender, mut stop: watch::Receiver<bool>) {
    let (en, hi) = command_lists();
    let en: Vec<(&str, &str)> = en.iter().map(|(c, d)| (c.as_str(), d.as_str())).collect();
    let hi: Vec<(&str, &str)> = hi.iter().map(|(c, d)| (c.as_str(), d.as_str())).collect();
    for attempt in 1..=COMMAND_ATTEMPTS {
        let result = tokio::select! {
            _ = stop.wait_for(|stop| *stop) => return,
            r = sender.set_commands(&en, &hi) => r,
        };
        match result {
            Ok(()) => {
                tracing::debug!("telegram commands registered in English and Hindi");
                return;
            }
            Err(e) if attempt == COMMAND_ATTEMPTS => {
                tracing::warn!(error = %e, "telegram setMyCommands failed; commands still work when typed");
                return;
            }
            Err(e) => {
                let wait = backoff(attempt);
                tracing::debug!(error = %e, ?wait, "telegram setMyCommands failed; retrying");
                if stopped_during(wait, &mut stop).await {
                    return;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bare_host_webhook_url_gets_the_route_appended() {
        assert_eq!(
            webhook_url("https://seva.example.org"),
            "https://seva.example.org/webhook/telegram"
        );
        assert_eq!(
            webhook_url("https://seva.example.org/"),
            "https://seva.example.org/webhook/telegram"
        );
        assert_eq!(
            webhook_url("https://proxy.example.org/tg/hook"),
            "https://proxy.example.org/tg/hook"
        );
    }

    #[test]
    fn webhook_secrets_follow_telegrams_charset() {
        assert!(valid_secret("abc_DEF-123"));
        assert!(!valid_secret(""));
        assert!(!valid_secret("with space"));
        assert!(!valid_secret(&"x".repeat(257)));
    }

    #[test]
    fn commands_are_described_in_both_languages() {
        let (en, hi) = command_lists();
        assert_eq!(en.len(), 5);
        assert_eq!(
            en[0],
            ("start".into(), "Start or go to the main menu".into())
        );
        assert!(hi[0].1.contains("शुरू"));
    }
}
