//! Sending to Telegram, and what each failure means for the outbox: `sendMessage`, the hot
//! path, is posted directly with teloxide's client and types ([`TelegramSender::send_messages`]),
//! and so is `getUpdates`, whose updates are left raw for [`crate::inbound::read_update`]
//! ([`TelegramSender::get_updates`]); every other call is teloxide's own request.
//!
//! teloxide parses the response body, not the HTTP status (shared/spec/protocol-facts.md §2.7):
//! `parameters.retry_after` → `RequestError::RetryAfter`, known descriptions → `ApiError`
//! variants, anything else → `ApiError::Unknown(description)`. The live API says "Forbidden: …"
//! for a blocked bot or a deactivated user, so unknown descriptions are classified by prefix too.
//!
//! Replies, pushes and alerts go through the outbox ([`TelegramSender::send`] is what the
//! dispatcher calls). Calls that expire — answering a callback query, removing a pressed
//! keyboard — are made directly by the transport.

use std::fmt;
use std::sync::Arc;

use flows::catalog::Rendered;
use flows::delivery::SendOutcome;
use reqwest::header::{CONTENT_TYPE, HeaderValue};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use teloxide::payloads::{
    AnswerCallbackQuerySetters, DeleteWebhookSetters, GetUpdates, SendMessage,
    SetMyCommandsSetters, SetWebhookSetters,
};
use teloxide::requests::{Payload, Requester};
use teloxide::types::{
    AllowedUpdate, BotCommand, CallbackQueryId, ChatId, MessageId, ResponseParameters,
};
use teloxide::{ApiError, Bot, RequestError};

use crate::render::{OutgoingMessage, RenderOptions, render};

/// The `Bot API` base Seva calls when `TELEGRAM_API_URL` is unset.
pub const DEFAULT_API_URL: &str = "https://api.telegram.org";

/// The outcome code of every failure meaning "this citizen cannot be reached" (blocked the bot,
/// deactivated, chat gone): the runtime marks the citizen unreachable and stops sending.
pub const UNREACHABLE_CODE: &str = "403";

/// The update kinds Seva asks for, in polling (`getUpdates`) and webhook (`setWebhook`) mode.
pub fn allowed_updates() -> Vec<AllowedUpdate> {
    vec![
        AllowedUpdate::Message,
        AllowedUpdate::CallbackQuery,
        AllowedUpdate::MyChatMember,
    ]
}

/// Failures of the adapter's direct calls. Display never shows the bot token (teloxide
/// redacts it from network errors).
#[derive(Debug, thiserror::Error)]
pub enum TelegramError {
    #[error("TELEGRAM_API_URL is not a usable http(s) URL")]
    BadApiUrl,
    #[error("TELEGRAM_WEBHOOK_URL is not a usable https URL")]
    BadWebhookUrl,
    #[error("Telegram request failed: {}", loggable(.0))]
    Request(#[from] RequestError),
}

/// A Bot API error as a log line may show it. teloxide's own text for an answer it could not
/// parse quotes the whole answer — to `getUpdates` or `sendMessage` that is citizens' messages,
/// names and numbers — so that one is reduced to serde's category and position.
pub fn loggable(err: &RequestError) -> String {
    match err {
        RequestError::InvalidJson { source, .. } => {
            format!("unparsable Bot API answer ({})", json_position(source))
        }
        other => other.to_string(),
    }
}

/// A JSON error without the values serde quotes (`invalid type: string "…"`): its category
/// and position only.
pub fn json_position(err: &serde_json::Error) -> String {
    format!(
        "{:?} error at line {}, column {}",
        err.classify(),
        err.line(),
        err.column()
    )
}

/// Builds a `Bot` that sends every call to `{api_url}/bot{token}/{method}`.
///
/// teloxide-core 0.13 appends path segments to the base, so a prefix such as
/// `http://host/telegram` is kept; a trailing `/` is trimmed because it would yield `//bot…`.
pub fn telegram_bot(token: &str, api_url: &str) -> Result<Bot, TelegramError> {
    let trimmed = api_url.trim().trim_end_matches('/');
    let url = reqwest::Url::parse(trimmed).map_err(|_| TelegramError::BadApiUrl)?;
    if !matches!(url.scheme(), "http" | "https") || url.cannot_be_a_base() {
        return Err(TelegramError::BadApiUrl);
    }
    Ok(Bot::new(token).set_api_url(url))
}

/// Sends rendered replies and makes the adapter's direct calls.
#[derive(Clone)]
pub struct TelegramSender {
    bot: Bot,
    options: RenderOptions,
    /// `{api}/bot{token}/sendMessage`, built once: teloxide builds every method's URL anew
    /// for each call. `None` if the bot's API URL cannot take path segments (teloxide itself
    /// would panic on it).
    send_message_url: Option<reqwest::Url>,
    /// `{api}/bot{token}/getUpdates`, the same way.
    get_updates_url: Option<reqwest::Url>,
}

impl fmt::Debug for TelegramSender {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // `Bot`'s own Debug prints the token.
        f.debug_struct("TelegramSender")
            .field("bot", &"***")
            .finish()
    }
}

impl TelegramSender {
    pub fn new(bot: Bot) -> Self {
        let send_message_url = method_url(&bot, <SendMessage as Payload>::NAME);
        let get_updates_url = method_url(&bot, <GetUpdates as Payload>::NAME);
        TelegramSender {
            bot,
            options: RenderOptions::default(),
            send_message_url,
            get_updates_url,
        }
    }

    /// Default rendering options (button labels for the location/contact requests, …).
    pub fn with_options(mut self, options: RenderOptions) -> Self {
        self.options = options;
        self
    }

    pub fn bot(&self) -> &Bot {
        &self.bot
    }

    pub fn options(&self) -> &RenderOptions {
        &self.options
    }

    /// Sends one rendered reply to a private chat (the chat id of a Telegram user is their user
    /// id). `Sent` carries the `message_id` of the last message (the one with the keyboard).
    pub async fn send(&self, chat_id: i64, rendered: &Rendered) -> SendOutcome {
        self.send_with(chat_id, rendered, &self.options).await
    }

    /// [`send`](Self::send) with options for this message (labels in the citizen's language).
    ///
    /// A reply longer than one message goes out as several; if a later part fails, a retry
    /// resends the earlier parts too (delivery is at least once).
    pub async fn send_with(
        &self,
        chat_id: i64,
        rendered: &Rendered,
        options: &RenderOptions,
    ) -> SendOutcome {
        let messages = render(rendered, options);
        if messages.is_empty() {
            return SendOutcome::Permanent {
                code: "empty".into(),
                reason: "reply has no text and no choices".into(),
            };
        }
        self.send_messages(chat_id, messages).await
    }

    /// Sends plain text (a station alert, the polite line for group chats), split if too long.
    pub async fn send_text(&self, chat_id: i64, text: &str) -> SendOutcome {
        let rendered = Rendered {
            body: text.to_owned(),
            choices: Vec::new(),
            hint: None,
        };
        let options = RenderOptions {
            remove_reply_keyboard: false,
            ..self.options.clone()
        };
        self.send_with(chat_id, &rendered, &options).await
    }

    /// Sends already rendered messages in order (see [`render`]); the caller rendered them to
    /// count or pace them. Stops at the first failure and returns its classification.
    pub async fn send_messages(&self, chat_id: i64, messages: Vec<OutgoingMessage>) -> SendOutcome {
        let mut last_id = String::new();
        for m in messages {
            let mut payload = SendMessage::new(ChatId(chat_id), m.text);
            payload.reply_markup = m.reply_markup;
            match self.send_message(&payload).await {
                Ok(message_id) => last_id = message_id.to_string(),
                Err(err) => {
                    let outcome = classify(&err);
                    tracing::warn!(error = %loggable(&err), ?outcome, "telegram sendMessage failed");
                    return outcome;
                }
            }
        }
        SendOutcome::Sent {
            provider_id: last_id,
        }
    }

    /// Answers a callback query so the client stops its progress spinner; `text` shows as a
    /// brief toast (at most 200 characters). An already answered or too old query is not an
    /// error worth reporting: it is logged at debug level and `Ok` is returned.
    pub async fn answer_callback(
        &self,
        callback_query_id: &str,
        text: Option<&str>,
    ) -> Result<(), TelegramError> {
        let mut request = self
            .bot
            .answer_callback_query(CallbackQueryId(callback_query_id.to_owned()));
        if let Some(text) = text {
            request = request.text(text.chars().take(200).collect::<String>());
        }
        match request.await {
            Ok(_) => Ok(()),
            Err(RequestError::Api(ApiError::InvalidQueryId)) => {
                tracing::debug!("callback query already answered or too old");
                Ok(())
            }
            Err(err) => Err(err.into()),
        }
    }

    /// Removes the inline keyboard of a message (editMessageReplyMarkup without markup), so a
    /// pressed or stale menu cannot be pressed again. "Not modified" (already removed) and a
    /// message that can no longer be edited count as done.
    pub async fn remove_keyboard(
        &self,
        chat_id: i64,
        message_id: i32,
    ) -> Result<(), TelegramError> {
        match self
            .bot
            .edit_message_reply_markup(ChatId(chat_id), MessageId(message_id))
            .await
        {
            Ok(_) => Ok(()),
            Err(RequestError::Api(
                ApiError::MessageNotModified
                | ApiError::MessageCantBeEdited
                | ApiError::MessageToEditNotFound,
            )) => Ok(()),
            Err(RequestError::Api(ApiError::Unknown(d)))
                if d.contains("message is not modified") =>
            {
                Ok(())
            }
            Err(err) => Err(err.into()),
        }
    }

    /// Registers the command menu: `english` as the default list (no `language_code`), `hindi`
    /// for clients set to Hindi (`language_code: "hi"`). Each entry is `(command, description)`;
    /// a leading `/` on the command is dropped. Descriptions come from the locales.
    pub async fn set_commands(
        &self,
        english: &[(&str, &str)],
        hindi: &[(&str, &str)],
    ) -> Result<(), TelegramError> {
        self.bot.set_my_commands(bot_commands(english)).await?;
        self.bot
            .set_my_commands(bot_commands(hindi))
            .language_code("hi")
            .await?;
        Ok(())
    }

    /// Removes any webhook so `getUpdates` works, keeping the updates Telegram still holds.
    pub async fn delete_webhook(&self) -> Result<(), TelegramError> {
        self.bot
            .delete_webhook()
            .drop_pending_updates(false)
            .await?;
        Ok(())
    }

    /// Points Telegram at Seva's `POST /webhook/telegram` with the secret it must send back in
    /// `X-Telegram-Bot-Api-Secret-Token`; pending updates are kept.
    pub async fn set_webhook(&self, url: &str, secret: &str) -> Result<(), TelegramError> {
        let url = reqwest::Url::parse(url).map_err(|_| TelegramError::BadWebhookUrl)?;
        self.bot
            .set_webhook(url)
            .secret_token(secret)
            .allowed_updates(allowed_updates())
            .drop_pending_updates(false)
            .await?;
        Ok(())
    }
}

impl TelegramSender {
    /// `sendMessage` with teloxide's payload, reading only the sent message's id from the
    /// answer. teloxide's own request parses the answer as an untagged enum, which buffers
    /// the whole `Message` (chat, sender, entities) before looking at it, rebuilds the
    /// method's URL and copies the body into a `String` first: together about 2.5 % of
    /// Seva's instructions per reply (callgrind, BENCHMARKS.md). Errors become teloxide's
    /// own [`RequestError`]s, as its request would make them (the token hidden in network
    /// errors), so [`classify`] reads them the same way. Unlike teloxide, a 5xx answer is
    /// not held for 10 s before it is read: the outbox backs off on its own.
    async fn send_message(&self, payload: &SendMessage) -> Result<i32, RequestError> {
        let sent: SentMessageId = self.call(&self.send_message_url, payload).await?;
        Ok(sent.message_id)
    }

    /// `getUpdates` (long polling): the updates after `offset`, at most `limit`, waiting up to
    /// `timeout_secs` for the first. Each update is left as its raw JSON, to be read like a
    /// webhook body ([`crate::inbound::read_updates`]): teloxide's `Vec<Update>` reads every
    /// update into flattened enums that buffer all its fields and try each variant in turn
    /// (~42 k instructions an update under load, several times the webhook's reader).
    pub async fn get_updates(
        &self,
        offset: Option<i32>,
        limit: u8,
        timeout_secs: u32,
    ) -> Result<Vec<Box<RawValue>>, RequestError> {
        let mut payload = GetUpdates::new();
        payload.offset = offset;
        payload.limit = Some(limit.clamp(1, 100));
        payload.timeout = Some(timeout_secs);
        payload.allowed_updates = Some(allowed_updates());
        self.call(&self.get_updates_url, &payload).await
    }

    /// Posts `payload` as JSON to `url` with teloxide's client and reads the answer as
    /// teloxide would: `result` when `ok`, else `retry_after`, a chat migration or the
    /// description as an [`ApiError`].
    async fn call<T: DeserializeOwned>(
        &self,
        url: &Option<reqwest::Url>,
        payload: &impl Serialize,
    ) -> Result<T, RequestError> {
        let Some(url) = url else {
            return Err(RequestError::Api(ApiError::Unknown(
                "Bad Request: the Bot API URL cannot take a method path".into(),
            )));
        };
        let body = serde_json::to_vec(payload).map_err(|source| RequestError::InvalidJson {
            source: Arc::new(source),
            raw: Box::from(""),
        })?;
        let response = self
            .bot
            .client()
            .post(url.clone())
            .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
            .body(body)
            .send()
            .await?;
        let bytes = response.bytes().await?;
        let invalid = |source| RequestError::InvalidJson {
            source: Arc::new(source),
            raw: String::from_utf8_lossy(&bytes).into(),
        };
        let answer: Answer<T> = serde_json::from_slice(&bytes).map_err(invalid)?;
        match answer {
            Answer {
                ok: true,
                result: Some(result),
                ..
            } => Ok(result),
            Answer {
                ok: false,
                parameters: Some(ResponseParameters::RetryAfter(secs)),
                ..
            } => Err(RequestError::RetryAfter(secs)),
            Answer {
                ok: false,
                parameters: Some(ResponseParameters::MigrateToChatId(to)),
                ..
            } => Err(RequestError::MigrateToChatId(to)),
            Answer {
                ok: false,
                description: Some(error),
                ..
            } => Err(RequestError::Api(error)),
            // What teloxide could not parse either: `ok` without a result, an error without a
            // description.
            _ => Err(invalid(serde::de::Error::custom(
                "a Bot API answer without its result or description",
            ))),
        }
    }
}

/// `{api}/bot{token}/{method}`, as teloxide builds it.
fn method_url(bot: &Bot, method: &str) -> Option<reqwest::Url> {
    let mut url = bot.api_url();
    url.path_segments_mut()
        .ok()?
        .push(&format!("bot{}", bot.token()))
        .push(method);
    Some(url)
}

/// A Bot API answer, as far as its caller needs it (serde skips the rest unparsed).
#[derive(Deserialize)]
#[serde(bound = "T: DeserializeOwned")]
struct Answer<T> {
    ok: bool,
    #[serde(default = "Option::default")]
    result: Option<T>,
    #[serde(default)]
    description: Option<ApiError>,
    #[serde(default)]
    parameters: Option<ResponseParameters>,
}

/// The one field of a sent `Message` the outbox records.
#[derive(Deserialize)]
struct SentMessageId {
    message_id: i32,
}

fn bot_commands(list: &[(&str, &str)]) -> Vec<BotCommand> {
    list.iter()
        .map(|(command, description)| {
            BotCommand::new(command.trim_start_matches('/'), *description)
        })
        .collect()
}

/// What a failed Bot API call means for the outbox.
///
/// * `RetryAfter` — flood control (`retry_after`), wait that long (at least 1 s).
/// * `Transient` — network errors and timeouts, unparsable answers (an HTML 5xx page),
///   5xx descriptions, a 409 conflict: retry with backoff.
/// * `Permanent` with code [`UNREACHABLE_CODE`] — blocked, deactivated, kicked, chat not
///   found, or any "Forbidden: …": the citizen cannot be reached.
/// * `Permanent` with code `"401"` — the token is wrong; `"migrated"` — a group became a
///   supergroup (reason names the new id); `"400"` — any other refusal (a bug in the request).
pub fn classify(err: &RequestError) -> SendOutcome {
    match err {
        RequestError::RetryAfter(secs) => SendOutcome::RetryAfter {
            secs: u64::from(secs.seconds()).max(1),
        },
        RequestError::MigrateToChatId(to) => SendOutcome::Permanent {
            code: "migrated".into(),
            reason: format!("group migrated to supergroup {}", to.0),
        },
        RequestError::Network(e) if e.is_builder() => SendOutcome::Permanent {
            code: "request".into(),
            reason: e.to_string(),
        },
        RequestError::Network(e) => SendOutcome::Transient {
            reason: e.to_string(),
        },
        RequestError::InvalidJson { .. } => SendOutcome::Transient {
            reason: "unparsable Bot API answer".into(),
        },
        RequestError::Io(e) => SendOutcome::Transient {
            reason: e.to_string(),
        },
        RequestError::Api(api) => classify_api(api),
    }
}

fn classify_api(api: &ApiError) -> SendOutcome {
    let unreachable = |reason: &str| SendOutcome::Permanent {
        code: UNREACHABLE_CODE.into(),
        reason: reason.into(),
    };
    match api {
        ApiError::BotBlocked => unreachable("blocked: bot was blocked by the user"),
        ApiError::UserDeactivated => unreachable("deactivated: user is deactivated"),
        ApiError::ChatNotFound => unreachable("chat not found"),
        ApiError::BotKicked
        | ApiError::BotKickedFromSupergroup
        | ApiError::BotKickedFromChannel => unreachable("kicked: bot was removed from the chat"),
        ApiError::CantInitiateConversation | ApiError::CantTalkWithBots => {
            unreachable("cannot initiate a conversation with this user")
        }
        ApiError::InvalidToken => SendOutcome::Permanent {
            code: "401".into(),
            reason: "bot token rejected".into(),
        },
        ApiError::TerminatedByOtherGetUpdates | ApiError::CantGetUpdates => {
            SendOutcome::Transient {
                reason: "409 conflict".into(),
            }
        }
        ApiError::Unknown(description) => classify_description(description),
        other => SendOutcome::Permanent {
            code: "400".into(),
            reason: other.to_string(),
        },
    }
}

fn classify_description(description: &str) -> SendOutcome {
    let lower = description.to_ascii_lowercase();
    if lower.starts_with("forbidden") {
        SendOutcome::Permanent {
            code: UNREACHABLE_CODE.into(),
            reason: description.to_owned(),
        }
    } else if lower.starts_with("too many requests") {
        // A 429 without `parameters`: wait a little, like Telegram's usual hint.
        SendOutcome::RetryAfter { secs: 5 }
    } else if lower.starts_with("conflict")
        || lower.starts_with("internal server error")
        || lower.starts_with("bad gateway")
        || lower.starts_with("gateway")
        || lower.starts_with("service unavailable")
    {
        SendOutcome::Transient {
            reason: description.to_owned(),
        }
    } else if lower.starts_with("unauthorized") {
        SendOutcome::Permanent {
            code: "401".into(),
            reason: description.to_owned(),
        }
    } else {
        SendOutcome::Permanent {
            code: "400".into(),
            reason: description.to_owned(),
        }
    }
}

/// Whether a failed call was a 409: another `getUpdates` poller, or a webhook, is active.
pub fn is_conflict(err: &RequestError) -> bool {
    match err {
        RequestError::Api(ApiError::TerminatedByOtherGetUpdates | ApiError::CantGetUpdates) => true,
        RequestError::Api(ApiError::Unknown(d)) => d.to_ascii_lowercase().starts_with("conflict"),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unparsable_answer_is_not_quoted_in_logs() {
        let raw = r#"{"ok":true,"result":[{"message":{"text":"my number is 9812345678"}}]}"#;
        let source = serde_json::from_str::<i64>("\"my number is 9812345678\"").unwrap_err();
        let err = RequestError::InvalidJson {
            source: std::sync::Arc::new(source),
            raw: raw.into(),
        };
        assert!(err.to_string().contains("9812345678"), "teloxide quotes it");
        let shown = loggable(&err);
        assert!(!shown.contains("9812345678"), "{shown}");
        assert!(shown.contains("line 1"), "{shown}");
        let wrapped = TelegramError::Request(err).to_string();
        assert!(!wrapped.contains("9812345678"), "{wrapped}");
    }

    fn api(description: &str) -> RequestError {
        let err: ApiError =
            serde_json::from_value(serde_json::Value::String(description.into())).unwrap();
        RequestError::Api(err)
    }

    #[test]
    fn a_blocked_bot_is_a_permanent_unreachable_failure() {
        let outcome = classify(&api("Forbidden: bot was blocked by the user"));
        assert!(
            matches!(outcome, SendOutcome::Permanent { ref code, .. } if code == UNREACHABLE_CODE)
        );
        let outcome = classify(&api("Forbidden: some new reason"));
        assert!(
            matches!(outcome, SendOutcome::Permanent { ref code, .. } if code == UNREACHABLE_CODE)
        );
    }

    #[test]
    fn both_kinds_of_409_are_conflicts() {
        assert!(is_conflict(&api(
            "Conflict: terminated by other getUpdates request; make sure that only one bot instance is running"
        )));
        assert!(is_conflict(&api(
            "Conflict: can't use getUpdates method while webhook is active; use deleteWebhook to delete the webhook first"
        )));
        assert!(!is_conflict(&api("Bad Request: chat not found")));
    }

    #[test]
    fn a_server_error_description_is_transient() {
        assert!(matches!(
            classify(&api("Internal Server Error")),
            SendOutcome::Transient { .. }
        ));
        assert!(matches!(
            classify(&api("Bad Request: message is too long")),
            SendOutcome::Permanent { .. }
        ));
    }

    #[test]
    fn the_api_url_keeps_its_path_and_loses_a_trailing_slash() {
        let bot = telegram_bot("1:x", "http://127.0.0.1:9/tg/").unwrap();
        assert_eq!(bot.api_url().as_str(), "http://127.0.0.1:9/tg");
        assert!(telegram_bot("1:x", "not a url").is_err());
        assert!(telegram_bot("1:x", "ftp://host").is_err());
    }
}
