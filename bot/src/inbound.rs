//! Telegram update → Seva's normalized events. Pure: no IO, no clock.
//!
//! Facts this follows (shared/spec/protocol-facts.md §2.4): commands arrive as plain text with a
//! `bot_command` entity (`"/start status_C-7K3Q-9XM4-R"`) and are left for the engine to parse;
//! a photo is an array of sizes, smallest first; a contact's `phone_number` may or may not start
//! with `+`; a contact is the sender's own only when `contact.user_id == from.id`; a private
//! chat's `my_chat_member` goes to `kicked` when the citizen blocks the bot and back to `member`
//! when they unblock it. teloxide turns an update it cannot parse into `UpdateKind::Error` but
//! keeps its `update_id`, so such updates are still confirmed (and reported as [`TelegramEvent::Ignored`]).

use flows::Lang;
use flows::message::{Body, Channel, Inbound, MediaKind, SenderHints};
use teloxide::types::{
    CallbackQuery, ChatMemberKind, ChatMemberUpdated, Message, MessageKind, Update, UpdateKind,
    User,
};

/// What the adapter made of one Telegram update.
#[derive(Debug, Clone, PartialEq)]
pub enum TelegramEvent {
    /// A citizen's message in a private chat. A tapped inline button carries the callback query
    /// to answer (and the message whose keyboard to remove) once the message is stored.
    Message(Inbound, Option<CallbackInfo>),
    /// The citizen blocked (`kicked`) or left the bot (`reachable: false`), or came back
    /// (`member`, `reachable: true`). Sends to an unreachable citizen should stop.
    Reachability {
        /// The `update_id`, for idempotency.
        update_id: u32,
        /// The Telegram user id, as [`Inbound::sender`] carries it.
        sender: String,
        reachable: bool,
        /// Unix seconds of the change.
        at: i64,
    },
    /// Someone wrote in a group, supergroup or channel. Seva works in private chats: the caller
    /// may answer one polite line (unless the chat is a station's alert chat).
    GroupChat {
        update_id: u32,
        chat_id: i64,
        /// Set when the update was an inline-button tap in that chat: it still needs an answer.
        callback: Option<CallbackInfo>,
    },
    /// Nothing to do (edited message, a bot's message, an update teloxide could not parse, …).
    /// `reason` is safe to log: it never holds message content.
    Ignored {
        update_id: u32,
        reason: String,
        /// A callback query that must still be answered (a tap without data, …).
        callback: Option<CallbackInfo>,
    },
}

impl TelegramEvent {
    /// The callback query to answer after this event is stored, if any.
    pub fn callback(&self) -> Option<&CallbackInfo> {
        match self {
            TelegramEvent::Message(_, cb) => cb.as_ref(),
            TelegramEvent::GroupChat { callback, .. } | TelegramEvent::Ignored { callback, .. } => {
                callback.as_ref()
            }
            TelegramEvent::Reachability { .. } => None,
        }
    }

    /// The `update_id` this event came from.
    pub fn update_id(&self) -> u32 {
        match self {
            TelegramEvent::Message(inbound, _) => inbound.provider_id.parse().unwrap_or(0),
            TelegramEvent::Reachability { update_id, .. }
            | TelegramEvent::GroupChat { update_id, .. }
            | TelegramEvent::Ignored { update_id, .. } => *update_id,
        }
    }
}

/// An inline-button tap: answer it (`answerCallbackQuery`) and, when the message is known,
/// remove that message's keyboard so the same stale button cannot be pressed twice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallbackInfo {
    pub callback_query_id: String,
    /// The chat the keyboard message is in (the citizen's private chat).
    pub chat_id: i64,
    /// The message that carried the keyboard; `None` for inline-mode messages.
    pub message_id: Option<i32>,
}

/// Reads one update from the raw JSON Telegram sends (webhook body, fixture file).
///
/// An update of a kind teloxide does not know parses fine, as `UpdateKind::Error`; only JSON
/// that is not an update at all (no `update_id`, not an object, not JSON) is an error.
pub fn parse_update(raw: &[u8]) -> Result<Update, serde_json::Error> {
    serde_json::from_slice(raw)
}

/// Translates one update into the events Seva acts on (zero or one today; a `Vec` so one update
/// may become several events later without changing callers).
pub fn translate(update: &Update) -> Vec<TelegramEvent> {
    let update_id = update.id.0;
    let event = match &update.kind {
        UpdateKind::Message(msg) => from_message(update_id, msg),
        UpdateKind::CallbackQuery(q) => from_callback(update_id, q),
        UpdateKind::MyChatMember(change) => from_my_chat_member(update_id, change),
        UpdateKind::ChannelPost(msg) => TelegramEvent::GroupChat {
            update_id,
            chat_id: msg.chat.id.0,
            callback: None,
        },
        UpdateKind::EditedMessage(_) => ignored(update_id, "edited message"),
        UpdateKind::EditedChannelPost(_) => ignored(update_id, "edited channel post"),
        UpdateKind::Error(_) => ignored(update_id, "update teloxide could not parse"),
        other => ignored(update_id, &format!("update kind {}", kind_name(other))),
    };
    vec![event]
}

/// Translates a batch, in `update_id` order as received.
pub fn translate_all(updates: &[Update]) -> Vec<TelegramEvent> {
    updates.iter().flat_map(translate).collect()
}

fn ignored(update_id: u32, reason: &str) -> TelegramEvent {
    TelegramEvent::Ignored {
        update_id,
        reason: reason.to_owned(),
        callback: None,
    }
}

fn kind_name(kind: &UpdateKind) -> &'static str {
    match kind {
        UpdateKind::InlineQuery(_) => "inline_query",
        UpdateKind::ChosenInlineResult(_) => "chosen_inline_result",
        UpdateKind::ShippingQuery(_) => "shipping_query",
        UpdateKind::PreCheckoutQuery(_) => "pre_checkout_query",
        UpdateKind::Poll(_) => "poll",
        UpdateKind::PollAnswer(_) => "poll_answer",
        UpdateKind::ChatMember(_) => "chat_member",
        UpdateKind::ChatJoinRequest(_) => "chat_join_request",
        UpdateKind::MessageReaction(_) => "message_reaction",
        UpdateKind::MessageReactionCount(_) => "message_reaction_count",
        UpdateKind::BusinessMessage(_) => "business_message",
        _ => "other",
    }
}

fn hints(user: &User) -> SenderHints {
    let name = match &user.last_name {
        Some(last) => format!("{} {last}", user.first_name),
        None => user.first_name.clone(),
    };
    SenderHints {
        lang: user.language_code.as_deref().and_then(Lang::from_code),
        phone: None,
        name: Some(name).filter(|n| !n.trim().is_empty()),
    }
}

fn inbound(update_id: u32, from: &User, sent_at: i64, body: Body) -> Inbound {
    Inbound {
        channel: Channel::Telegram,
        sender: from.id.0.to_string(),
        provider_id: update_id.to_string(),
        sent_at,
        body,
        hints: hints(from),
    }
}

fn from_message(update_id: u32, msg: &Message) -> TelegramEvent {
    if !msg.chat.is_private() {
        return TelegramEvent::GroupChat {
            update_id,
            chat_id: msg.chat.id.0,
            callback: None,
        };
    }
    let Some(from) = &msg.from else {
        return ignored(update_id, "private message without a sender");
    };
    if from.is_bot {
        return ignored(update_id, "message from a bot");
    }
    let body = match &msg.kind {
        MessageKind::Common(_) => body(msg, from),
        // Things a citizen sends that the dialogue cannot use: the engine says so and re-asks.
        MessageKind::Dice(_) => unsupported("dice"),
        MessageKind::UsersShared(_) => unsupported("users_shared"),
        MessageKind::ChatShared(_) => unsupported("chat_shared"),
        MessageKind::WebAppData(_) => unsupported("web_app_data"),
        MessageKind::PassportData(_) => unsupported("passport_data"),
        MessageKind::Giveaway(_) => unsupported("giveaway"),
        MessageKind::Invoice(_) => unsupported("invoice"),
        // Content teloxide does not know yet (a type Telegram added later): the citizen sent
        // something, so they are told what Seva can read rather than met with silence.
        MessageKind::Empty {} => unsupported("unknown"),
        // Service messages (a pin, an auto-delete timer, a payment receipt, …) say nothing.
        _ => return ignored(update_id, "service message"),
    };
    TelegramEvent::Message(inbound(update_id, from, msg.date.timestamp(), body), None)
}

/// The body of a citizen's message in a private chat.
fn body(msg: &Message, from: &User) -> Body {
    let caption = msg.caption().map(str::to_owned);
    if let Some(text) = msg.text() {
        return Body::Text {
            text: strip_bot_mention(text),
        };
    }
    if let Some(contact) = msg.contact() {
        return Body::Contact {
            phone: normalize_phone(&contact.phone_number),
            own: contact.user_id == Some(from.id),
        };
    }
    if let Some(venue) = msg.venue() {
        return Body::Location {
            latitude: venue.location.latitude,
            longitude: venue.location.longitude,
            name: Some(venue.title.clone()).filter(|s| !s.is_empty()),
            address: Some(venue.address.clone()).filter(|s| !s.is_empty()),
        };
    }
    if let Some(loc) = msg.location() {
        return Body::Location {
            latitude: loc.latitude,
            longitude: loc.longitude,
            name: None,
            address: None,
        };
    }
    if let Some(sizes) = msg.photo() {
        // Sizes come smallest first; keep the largest (by area, in case the order ever changes).
        if let Some(largest) = sizes
            .iter()
            .max_by_key(|p| u64::from(p.width) * u64::from(p.height))
        {
            return media(
                MediaKind::Photo,
                &largest.file.id.0,
                Some("image/jpeg".into()),
                caption,
            );
        }
    }
    if let Some(doc) = msg.document() {
        return media(
            MediaKind::Document,
            &doc.file.id.0,
            mime(doc.mime_type.as_ref()),
            caption,
        );
    }
    if let Some(voice) = msg.voice() {
        return media(
            MediaKind::Voice,
            &voice.file.id.0,
            mime(voice.mime_type.as_ref()),
            caption,
        );
    }
    if let Some(audio) = msg.audio() {
        // A music/audio file is kept like any other document attachment.
        return media(
            MediaKind::Document,
            &audio.file.id.0,
            mime(audio.mime_type.as_ref()),
            caption,
        );
    }
    if let Some(video) = msg.video() {
        return media(
            MediaKind::Video,
            &video.file.id.0,
            mime(video.mime_type.as_ref()),
            caption,
        );
    }
    if let Some(note) = msg.video_note() {
        return media(MediaKind::Video, &note.file.id.0, None, caption);
    }
    if let Some(sticker) = msg.sticker() {
        return media(MediaKind::Sticker, &sticker.file.id.0, None, None);
    }
    unsupported(unsupported_name(msg))
}

fn unsupported(what: &str) -> Body {
    Body::Unsupported {
        what: what.to_owned(),
    }
}

fn media(kind: MediaKind, file_id: &str, mime: Option<String>, caption: Option<String>) -> Body {
    Body::Media {
        kind,
        file_id: file_id.to_owned(),
        mime,
        caption,
    }
}

fn mime(m: Option<&impl std::fmt::Display>) -> Option<String> {
    m.map(|m| m.to_string())
}

fn unsupported_name(msg: &Message) -> &'static str {
    if msg.animation().is_some() {
        "animation"
    } else if msg.poll().is_some() {
        "poll"
    } else if msg.game().is_some() {
        "game"
    } else if msg.story().is_some() {
        "story"
    } else {
        "unknown"
    }
}

fn from_callback(update_id: u32, q: &CallbackQuery) -> TelegramEvent {
    let chat = q.message.as_ref().map(|m| m.chat());
    let info = CallbackInfo {
        callback_query_id: q.id.0.clone(),
        // Without a message (inline mode) the tap can only come from the user's own chat.
        chat_id: chat.map_or(q.from.id.0 as i64, |c| c.id.0),
        message_id: q.message.as_ref().map(|m| m.id().0),
    };
    if chat.is_some_and(|c| !c.is_private()) {
        return TelegramEvent::GroupChat {
            update_id,
            chat_id: info.chat_id,
            callback: Some(info),
        };
    }
    if q.from.is_bot {
        return TelegramEvent::Ignored {
            update_id,
            reason: "callback from a bot".into(),
            callback: Some(info),
        };
    }
    let Some(data) = q.data.as_deref().filter(|d| !d.is_empty()) else {
        return TelegramEvent::Ignored {
            update_id,
            reason: "callback query without data".into(),
            callback: Some(info),
        };
    };
    // A button press has no date of its own; the engine takes "now" from its context.
    let body = Body::Choice {
        id: data.to_owned(),
    };
    TelegramEvent::Message(inbound(update_id, &q.from, 0, body), Some(info))
}

fn from_my_chat_member(update_id: u32, change: &ChatMemberUpdated) -> TelegramEvent {
    if !change.chat.is_private() {
        return ignored(update_id, "bot membership changed in a group or channel");
    }
    let reachable = match &change.new_chat_member.kind {
        ChatMemberKind::Banned(_) | ChatMemberKind::Left => false,
        ChatMemberKind::Member(_)
        | ChatMemberKind::Restricted(_)
        | ChatMemberKind::Administrator(_)
        | ChatMemberKind::Owner(_) => true,
    };
    TelegramEvent::Reachability {
        update_id,
        sender: change.from.id.0.to_string(),
        reachable,
        at: change.date.timestamp(),
    }
}

/// `"+91 98765-43210"`, `"919876543210"` → `"+919876543210"`. Telegram sends international
/// numbers, with or without `+`, depending on the client.
pub fn normalize_phone(raw: &str) -> String {
    let digits: String = raw.chars().filter(char::is_ascii_digit).collect();
    format!("+{digits}")
}

/// `"/help@SevaBot"` → `"/help"`, `"/start@SevaBot status_X"` → `"/start status_X"`: a command
/// picked from a menu may carry the bot's name; the engine only knows the bare command.
fn strip_bot_mention(text: &str) -> String {
    if !text.starts_with('/') {
        return text.to_owned();
    }
    let end = text.find(char::is_whitespace).unwrap_or(text.len());
    let (command, rest) = text.split_at(end);
    match command.split_once('@') {
        Some((bare, _bot)) => format!("{bare}{rest}"),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_private_message_of_unknown_content_is_answered_not_ignored() {
        let raw = br#"{"update_id": 9, "message": {"message_id": 1, "date": 1700000000,
            "from": {"id": 5, "is_bot": false, "first_name": "A"},
            "chat": {"id": 5, "type": "private", "first_name": "A"},
            "hologram": {"x": 1}}}"#;
        let events = translate(&parse_update(raw).unwrap());
        match &events[..] {
            [TelegramEvent::Message(m, None)] => assert_eq!(
                m.body,
                Body::Unsupported {
                    what: "unknown".into()
                }
            ),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn phone_numbers_gain_a_plus_and_lose_formatting() {
        assert_eq!(normalize_phone("919876543210"), "+919876543210");
        assert_eq!(normalize_phone("+91 98765-43210"), "+919876543210");
    }

    #[test]
    fn a_command_keeps_its_payload_but_loses_the_bot_name() {
        assert_eq!(
            strip_bot_mention("/start@SevaBot status_C"),
            "/start status_C"
        );
        assert_eq!(strip_bot_mention("/help@SevaBot"), "/help");
        assert_eq!(strip_bot_mention("/start status_C"), "/start status_C");
        assert_eq!(strip_bot_mention("mail a@b.c"), "mail a@b.c");
    }
}
