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

/// [`parse_update`] then [`translate`], the webhook's way in. A citizen's text in their private
/// chat, nearly all the traffic, is read by a short cut ([`private_text`]) that gives the same
/// event; anything else takes the general way. An error is [`parse_update`]'s.
pub fn read_update(raw: &[u8]) -> Result<Vec<TelegramEvent>, serde_json::Error> {
    if let Some(event) = private_text(raw) {
        return Ok(vec![event]);
    }
    parse_update(raw).map(|update| translate(&update))
}

/// The updates of a `getUpdates` answer, each read as the webhook reads one ([`read_update`]),
/// and the highest `update_id` among them (`None` for an empty answer), which the offset must
/// move past. teloxide reads anything with an `update_id` (an unknown kind as
/// `UpdateKind::Error`), so an element it refuses has none the offset could pass: it is left
/// out rather than refusing the whole answer.
pub fn read_updates(raw: &[Box<serde_json::value::RawValue>]) -> (Option<u32>, Vec<TelegramEvent>) {
    let mut last = None;
    let mut events = Vec::with_capacity(raw.len());
    for update in raw {
        if let Ok(read) = read_update(update.get().as_bytes()) {
            // Every event carries its update's id.
            last = last.max(read.iter().map(TelegramEvent::update_id).max());
            events.extend(read);
        }
    }
    (last, events)
}

/// A text update whose every field is known to this reader, from a person, in a private chat:
/// teloxide's `Update` reads it into flattened enums that buffer every field first (3 % of
/// Seva's CPU under load). `None` for anything else, however slight the difference (another
/// field, a bot, a group, a date teloxide would refuse): the general way decides those.
fn private_text(raw: &[u8]) -> Option<TelegramEvent> {
    let update: TextUpdate = serde_json::from_slice(raw).ok()?;
    let msg = update.message;
    if msg.chat.kind != "private"
        || msg.from.is_bot
        || !(0..=MAX_DATE).contains(&msg.date)
        || !msg
            .entities
            .iter()
            .all(|e| PLAIN_ENTITIES.contains(&e.kind.as_str()))
    {
        return None;
    }
    let from = msg.from;
    let name = match from.last_name {
        Some(last) => format!("{} {last}", from.first_name),
        None => from.first_name.into_owned(),
    };
    Some(TelegramEvent::Message(
        Inbound {
            channel: Channel::Telegram,
            sender: from.id.to_string(),
            provider_id: update.update_id.to_string(),
            sent_at: msg.date,
            body: Body::Text {
                text: strip_bot_mention(&msg.text),
            },
            hints: SenderHints {
                lang: from.language_code.as_deref().and_then(Lang::from_code),
                phone: None,
                name: Some(name).filter(|n| !n.trim().is_empty()),
            },
        },
        None,
    ))
}

/// Unix seconds up to the year 9999: beyond, the short cut leaves the date to teloxide.
const MAX_DATE: i64 = 253_402_300_799;

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct TextUpdate<'a> {
    update_id: u32,
    #[serde(borrow)]
    message: TextMessage<'a>,
}

/// The fields of a plain text message; any other field sends the update the general way.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct TextMessage<'a> {
    #[allow(dead_code)]
    message_id: i32,
    date: i64,
    #[serde(borrow)]
    from: TextFrom<'a>,
    #[serde(borrow)]
    chat: TextChat<'a>,
    #[serde(borrow)]
    text: std::borrow::Cow<'a, str>,
    /// Commands, links, mentions: they change nothing here but must be well formed.
    #[serde(default)]
    #[allow(dead_code)]
    entities: Vec<TextEntity>,
}

/// A sender as teloxide reads one (other fields of a user are ignored there too).
#[derive(serde::Deserialize)]
struct TextFrom<'a> {
    id: u64,
    is_bot: bool,
    #[serde(borrow)]
    first_name: std::borrow::Cow<'a, str>,
    #[serde(borrow, default)]
    last_name: Option<std::borrow::Cow<'a, str>>,
    #[serde(borrow, default)]
    language_code: Option<std::borrow::Cow<'a, str>>,
}

#[derive(serde::Deserialize)]
struct TextChat<'a> {
    #[allow(dead_code)]
    id: i64,
    #[serde(rename = "type", borrow)]
    kind: std::borrow::Cow<'a, str>,
}

/// Entity types made of a type, an offset and a length only (`text_link`, `pre` and the like
/// carry more, which the general way checks).
const PLAIN_ENTITIES: &[&str] = &[
    "mention",
    "hashtag",
    "cashtag",
    "bot_command",
    "url",
    "email",
    "phone_number",
    "bold",
    "italic",
    "underline",
    "strikethrough",
    "spoiler",
    "code",
    "blockquote",
    "expandable_blockquote",
];

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct TextEntity {
    #[serde(rename = "type")]
    kind: String,
    offset: u32,
    length: u32,
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

    /// The webhook's short cut gives exactly what the general way gives, for every fixture
    /// and for text updates that differ from the common one in one detail each; and it does
    /// take the common ones.
    #[test]
    fn the_short_cut_reads_every_update_as_the_general_way_does() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/testdata");
        let mut raws: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| {
                let path = e.unwrap().path();
                (path.display().to_string(), std::fs::read(&path).unwrap())
            })
            .collect();
        let text = |message: &str| {
            format!(
                r#"{{"update_id": 77, "message": {{"message_id": 3, "date": 1700000000,
                "from": {{"id": 5, "is_bot": false, "first_name": "Ravi", "language_code": "hi"}},
                "chat": {{"id": 5, "type": "private", "first_name": "Ravi"}}{message}}}}}"#
            )
        };
        let variants = [
            (
                r#", "text": "mera phone \"kho\" gaya\n\u0939\u093e\u0901""#,
                true,
            ),
            (
                r#", "text": "/status@SevaBot C-7K3Q", "entities": [{"type": "bot_command", "offset": 0, "length": 15}]"#,
                true,
            ),
            (r#", "text": "  ""#, true),
            (
                r#", "text": "see", "entities": [{"type": "text_link", "offset": 0, "length": 3, "url": "https://x.in"}]"#,
                false,
            ),
            (
                r#", "text": "see", "entities": [{"type": "sparkle", "offset": 0, "length": 3}]"#,
                false,
            ),
            (
                r#", "text": "see", "entities": [{"type": "bold", "offset": 0}]"#,
                false,
            ),
            (
                r#", "text": "hi", "reply_to_message": {"message_id": 1, "date": 1700000000, "chat": {"id": 5, "type": "private"}, "text": "x"}"#,
                false,
            ),
            (r#", "text": "hi", "edit_date": 1700000001"#, false),
            (r#""#, false),
        ];
        for (extra, short) in variants {
            let raw = text(extra).into_bytes();
            assert_eq!(private_text(&raw).is_some(), short, "{extra}");
            raws.push((extra.to_owned(), raw));
        }
        for (what, from) in [
            ("a bot", r#""is_bot": true"#),
            ("no first name", r#""is_bot": false, "first_name": null"#),
        ] {
            let raw = text(r#", "text": "hi""#).replace(r#""is_bot": false"#, from);
            assert!(private_text(raw.as_bytes()).is_none(), "{what}");
            raws.push((what.to_owned(), raw.into_bytes()));
        }
        for date in ["-1", "99999999999999"] {
            let raw = text(r#", "text": "hi""#).replace("1700000000", date);
            assert!(private_text(raw.as_bytes()).is_none(), "date {date}");
            raws.push((format!("date {date}"), raw.into_bytes()));
        }
        let group = text(r#", "text": "hi""#).replace(r#""type": "private""#, r#""type": "group""#);
        raws.push(("a group".to_owned(), group.into_bytes()));
        let fixture = std::fs::read(format!("{dir}/text.json")).unwrap();
        assert!(
            private_text(&fixture).is_some(),
            "the common update takes the short cut"
        );
        for (what, raw) in raws {
            let general = parse_update(&raw).ok().map(|u| translate(&u));
            assert_eq!(read_update(&raw).ok(), general, "{what}");
        }
    }

    /// Polling reads a `getUpdates` answer update by update with the webhook's reader: the
    /// events are those teloxide's reading of the whole answer gave, in order, and the offset
    /// moves past the highest `update_id`. An element that is no update is skipped, not a
    /// reason to refuse (and so poll again) the whole answer.
    #[test]
    fn a_get_updates_answer_reads_as_teloxide_read_it_update_by_update() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/testdata");
        let mut paths: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        paths.sort();
        let updates: Vec<String> = paths
            .iter()
            .map(|p| std::fs::read_to_string(p).unwrap())
            .filter(|raw| parse_update(raw.as_bytes()).is_ok())
            .collect();
        assert!(updates.len() >= 5, "{} fixtures", updates.len());
        let answer = format!("[{}]", updates.join(","));
        let teloxide: Vec<Update> = serde_json::from_str(&answer).unwrap();
        let with_stray = format!(r#"[{}, {{"ok": 1}}, 7]"#, updates.join(","));
        let raw: Vec<Box<serde_json::value::RawValue>> = serde_json::from_str(&with_stray).unwrap();
        let (last, events) = read_updates(&raw);
        assert_eq!(
            events,
            teloxide.iter().flat_map(translate).collect::<Vec<_>>()
        );
        assert_eq!(last, teloxide.iter().map(|u| u.id.0).max());
        assert_eq!(read_updates(&[]), (None, Vec::new()));
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
