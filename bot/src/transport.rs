//! Getting updates from Telegram without losing any: long polling and the webhook route.
//!
//! The promise (product §6): an update is durably stored before Telegram is told it may forget
//! it. In polling mode Telegram forgets an update once `getUpdates` is called with a higher
//! `offset`, so each batch goes to [`TelegramSink::accept`] — which returns only after the
//! store has committed — before the next call moves the offset past it. A failed `accept`
//! keeps the offset, so the batch comes again. In webhook mode the route answers 200 only
//! after `accept`; anything else makes Telegram retry. That is why teloxide's `Dispatcher`
//! (confirms a batch before handling it) and its webhook listener (answers before storing)
//! are not used. After a restart polling starts without an offset: what was stored but not
//! yet confirmed comes again, and the inbox, unique on `update_id`, drops it.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use axum::Router;
use axum::body::to_bytes;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::routing::post;
use flows::delivery::SendOutcome;
use subtle::ConstantTimeEq;
use teloxide::RequestError;

use crate::inbound::{TelegramEvent, read_update, read_updates};
use crate::sender::{
    TelegramError, TelegramSender, classify, is_conflict, json_position, loggable,
};

/// The route Telegram posts updates to in webhook mode.
pub const WEBHOOK_PATH: &str = "/webhook/telegram";

/// The header carrying the `secret_token` given to `setWebhook`.
pub const SECRET_HEADER: &str = "x-telegram-bot-api-secret-token";

/// Largest webhook body accepted. One update is a few kilobytes; this leaves ample room.
pub const MAX_WEBHOOK_BODY: usize = 1 << 20;

/// Where the adapter hands its events. `accept` must return only once every event of the
/// batch is durably stored (or known to be a duplicate); an `Err` means "nothing may be
/// confirmed", and the same updates will come again.
#[async_trait]
pub trait TelegramSink: Send + Sync {
    async fn accept(&self, events: Vec<TelegramEvent>) -> Result<(), SinkError>;
}

/// The store could not take a batch. The text is logged, never shown to Telegram.
#[derive(Debug, thiserror::Error)]
#[error("telegram sink: {0}")]
pub struct SinkError(pub String);

impl SinkError {
    pub fn new(reason: impl std::fmt::Display) -> Self {
        SinkError(reason.to_string())
    }
}

/// How long polling waits and backs off.
#[derive(Debug, Clone)]
pub struct PollingConfig {
    /// Long-poll `timeout` in seconds. teloxide's HTTP client gives up after 17 s, so keep it
    /// well below that.
    pub timeout_secs: u32,
    /// Updates per `getUpdates` (1–100).
    pub limit: u8,
    /// First wait after an error; doubled per consecutive error up to `max_backoff`.
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
    /// Wait after a 409 (another poller, or a webhook, is active), doubled up to `max_backoff`.
    pub conflict_backoff: Duration,
    /// Call `deleteWebhook` (keeping pending updates) before polling, so a webhook left from
    /// an earlier deployment does not make every `getUpdates` fail with 409.
    pub delete_webhook_first: bool,
}

impl Default for PollingConfig {
    fn default() -> Self {
        PollingConfig {
            timeout_secs: 10,
            limit: 100,
            initial_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(60),
            conflict_backoff: Duration::from_secs(5),
            delete_webhook_first: true,
        }
    }
}

fn backoff(base: Duration, max: Duration, failures: u32) -> Duration {
    let factor = 1u32 << failures.saturating_sub(1).min(16);
    base.saturating_mul(factor).min(max)
}

/// Polls `getUpdates` until `shutdown` completes, handing every batch to `sink` before
/// confirming it. Starts without an offset (see the module docs). On shutdown the offset of
/// what was stored is confirmed with one quick `getUpdates`, so a restart sees less again.
pub async fn run_polling(
    sender: TelegramSender,
    sink: Arc<dyn TelegramSink>,
    config: PollingConfig,
    shutdown: impl Future<Output = ()> + Send,
) {
    let mut shutdown = std::pin::pin!(shutdown);

    if config.delete_webhook_first {
        let mut failures = 0;
        loop {
            let result = tokio::select! {
                biased;
                () = &mut shutdown => return,
                r = sender.delete_webhook() => r,
            };
            match result {
                Ok(()) => break,
                // A refusal no retry can fix (a Bot API server without the method, …): poll
                // anyway; if a webhook really is active, getUpdates says so with a 409.
                Err(TelegramError::Request(err))
                    if matches!(classify(&err), SendOutcome::Permanent { .. }) =>
                {
                    tracing::warn!(error = %loggable(&err), "telegram deleteWebhook refused; polling anyway");
                    break;
                }
                Err(err) => {
                    failures += 1;
                    let wait = backoff(config.initial_backoff, config.max_backoff, failures);
                    tracing::warn!(error = %err, ?wait, "telegram deleteWebhook failed; retrying");
                    if sleep_or_shutdown(wait, &mut shutdown).await {
                        return;
                    }
                }
            }
        }
    }

    let mut offset: Option<i32> = None;
    let mut failures: u32 = 0;
    let mut conflicts: u32 = 0;
    loop {
        let request = sender.get_updates(offset, config.limit, config.timeout_secs);
        let result = tokio::select! {
            biased;
            () = &mut shutdown => break,
            r = request => r,
        };
        let wait = match result {
            Ok(updates) => {
                conflicts = 0;
                let (last, events) = read_updates(&updates);
                let Some(last) = last else {
                    failures = 0;
                    continue;
                };
                // Not raced against shutdown: a half-done store is rolled back, not lost, but
                // finishing lets the offset move on.
                match sink.accept(events.clone()).await {
                    Ok(()) => {
                        failures = 0;
                        offset = Some(next_offset(last));
                        tracing::debug!(
                            count = updates.len(),
                            last_update_id = last,
                            "telegram updates stored"
                        );
                        acknowledge(&sender, &events);
                        continue;
                    }
                    Err(err) => {
                        failures += 1;
                        let wait = backoff(config.initial_backoff, config.max_backoff, failures);
                        tracing::error!(error = %err, ?wait, "telegram updates not stored; they will come again");
                        wait
                    }
                }
            }
            Err(err) if is_conflict(&err) => {
                conflicts += 1;
                let wait = backoff(config.conflict_backoff, config.max_backoff, conflicts);
                tracing::warn!(
                    ?wait,
                    "telegram getUpdates 409: another poller or a webhook is active; backing off"
                );
                wait
            }
            Err(RequestError::RetryAfter(secs)) => {
                let wait = secs.duration().max(Duration::from_secs(1));
                tracing::warn!(?wait, "telegram getUpdates rate limited");
                wait
            }
            Err(err) => {
                failures += 1;
                let wait = backoff(config.initial_backoff, config.max_backoff, failures);
                tracing::warn!(error = %loggable(&err), ?wait, "telegram getUpdates failed; backing off");
                wait
            }
        };
        if sleep_or_shutdown(wait, &mut shutdown).await {
            break;
        }
    }

    if let Some(offset) = offset {
        // Confirm what is stored; whatever this returns is not confirmed and is left alone.
        let confirm = sender.get_updates(Some(offset), 1, 0);
        if tokio::time::timeout(Duration::from_secs(3), confirm)
            .await
            .is_err()
        {
            tracing::debug!("telegram offset confirmation at shutdown timed out");
        }
    }
    tracing::info!("telegram polling stopped");
}

/// `update_id` + 1, as `getUpdates` wants it. Telegram's ids fit an `i32`.
fn next_offset(last: u32) -> i32 {
    i32::try_from(last)
        .unwrap_or(i32::MAX - 1)
        .saturating_add(1)
}

/// Returns true when shutdown came first.
async fn sleep_or_shutdown(
    wait: Duration,
    shutdown: &mut std::pin::Pin<&mut impl Future<Output = ()>>,
) -> bool {
    tokio::select! {
        biased;
        () = shutdown.as_mut() => true,
        () = tokio::time::sleep(wait) => false,
    }
}

/// After a batch is stored: answer every callback query (the client shows a spinner until
/// then) and remove the inline keyboard of each pressed private-chat message, so a stale
/// button cannot be pressed twice. These calls expire, so they go out directly, not through
/// the outbox, in a background task so polling and the webhook answer do not wait for them.
pub fn acknowledge(sender: &TelegramSender, events: &[TelegramEvent]) {
    let mut work = Vec::new();
    for event in events {
        if let Some(cb) = event.callback() {
            let remove = match event {
                TelegramEvent::Message(..) => cb.message_id,
                _ => None,
            };
            work.push((cb.callback_query_id.clone(), cb.chat_id, remove));
        }
    }
    if work.is_empty() {
        return;
    }
    let sender = sender.clone();
    tokio::spawn(async move {
        for (callback_query_id, chat_id, remove) in work {
            if let Err(err) = sender.answer_callback(&callback_query_id, None).await {
                tracing::warn!(error = %err, "telegram answerCallbackQuery failed");
            }
            let Some(message_id) = remove else { continue };
            if let Err(err) = sender.remove_keyboard(chat_id, message_id).await {
                tracing::warn!(error = %err, "telegram keyboard removal failed");
            }
        }
    });
}

struct WebhookState {
    secret: Arc<str>,
    sink: Arc<dyn TelegramSink>,
    sender: TelegramSender,
}

/// Seva's own `POST /webhook/telegram` (webhook mode). Merge it into the main router.
///
/// * `X-Telegram-Bot-Api-Secret-Token` must be sent once and equal `secret` (compared in
///   constant time) → else 401, before the body is read. An empty `secret` refuses everything.
/// * Bodies over [`MAX_WEBHOOK_BODY`] → 413; not an update → 400 (Telegram will not resend
///   what can never be read).
/// * `sink.accept` fails → 500, so Telegram delivers the update again later; stored → 200.
pub fn webhook_router(
    secret: String,
    sink: Arc<dyn TelegramSink>,
    sender: TelegramSender,
) -> Router {
    // Shared, not cloned: axum clones the state for every request (three times), and the
    // sender's clone copies its strings.
    let state = Arc::new(WebhookState {
        secret: secret.into(),
        sink,
        sender,
    });
    Router::new()
        .route(WEBHOOK_PATH, post(webhook))
        .with_state(state)
}

async fn webhook(State(state): State<Arc<WebhookState>>, request: Request) -> StatusCode {
    // Exactly one header: a repeated one is refused whatever its values, as a forged request
    // would otherwise pick which copy is read.
    let mut values = request.headers().get_all(SECRET_HEADER).iter();
    let given = match (values.next(), values.next()) {
        (Some(v), None) => v.as_bytes(),
        _ => &[],
    };
    let expected = state.secret.as_bytes();
    if expected.is_empty() || !bool::from(given.ct_eq(expected)) {
        tracing::warn!("telegram webhook: wrong or missing secret token");
        return StatusCode::UNAUTHORIZED;
    }
    let Ok(body) = to_bytes(request.into_body(), MAX_WEBHOOK_BODY).await else {
        tracing::warn!("telegram webhook: body too large or unreadable");
        return StatusCode::PAYLOAD_TOO_LARGE;
    };
    let events = match read_update(&body) {
        Ok(events) => events,
        Err(err) => {
            // Position only: serde_json's own message may quote a value from the body.
            tracing::warn!(error = %json_position(&err), "telegram webhook: body is not an update");
            return StatusCode::BAD_REQUEST;
        }
    };
    let update_id = events.first().map(TelegramEvent::update_id);
    match state.sink.accept(events.clone()).await {
        Ok(()) => {
            acknowledge(&state.sender, &events);
            StatusCode::OK
        }
        Err(err) => {
            tracing::error!(error = %err, update_id = ?update_id, "telegram webhook: update not stored");
            StatusCode::INTERNAL_SERVER_ERROR
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_is_capped() {
        let s = Duration::from_secs(1);
        let max = Duration::from_secs(10);
        assert_eq!(backoff(s, max, 1), Duration::from_secs(1));
        assert_eq!(backoff(s, max, 2), Duration::from_secs(2));
        assert_eq!(backoff(s, max, 4), Duration::from_secs(8));
        assert_eq!(backoff(s, max, 40), max);
    }

    #[test]
    fn the_next_offset_is_one_past_the_last_update() {
        assert_eq!(next_offset(41), 42);
    }
}
