//! The normalized inbound message: what every channel adapter turns a provider payload into.

use serde::{Deserialize, Serialize};

/// Where a citizen talks to Seva, and where the outbox sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Channel {
    Telegram,
    Whatsapp,
    Terminal,
    /// The back-office event webhook (`SEVA_EVENTS_URL`): never a citizen's channel, only the
    /// outbox's route for `report.*` events, so the dispatcher paces and retries them like
    /// any other message.
    Events,
}

impl Channel {
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Telegram => "telegram",
            Channel::Whatsapp => "whatsapp",
            Channel::Terminal => "terminal",
            Channel::Events => "events",
        }
    }

    pub fn parse(s: &str) -> Option<Channel> {
        match s {
            "telegram" => Some(Channel::Telegram),
            "whatsapp" => Some(Channel::Whatsapp),
            "terminal" => Some(Channel::Terminal),
            "events" => Some(Channel::Events),
            _ => None,
        }
    }
}

/// One message from a citizen, as the adapter understood it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Inbound {
    pub channel: Channel,
    /// The citizen's channel identity: Telegram user id, WhatsApp `wa_id` or business-scoped
    /// user id, or the `seva chat --as` name.
    pub sender: String,
    /// The provider's id for this message (`wamid`, `update_id`, …): the inbox is unique on it.
    pub provider_id: String,
    /// Unix seconds when the provider says it was sent (0 when unknown).
    pub sent_at: i64,
    pub body: Body,
    /// Hints the channel gives about the citizen (Telegram `language_code`, WhatsApp number).
    #[serde(default)]
    pub hints: SenderHints,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SenderHints {
    /// A likely language (Telegram's `language_code`), only used to order the first choice.
    pub lang: Option<crate::Lang>,
    /// The sender's own mobile number in E.164 when the channel reveals it (WhatsApp `wa_id`).
    pub phone: Option<String>,
    /// A display name the provider gave (not trusted, never logged).
    pub name: Option<String>,
}

/// What the citizen sent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Body {
    /// Typed text (also Telegram commands such as `/start status_C-…`).
    Text { text: String },
    /// A native choice was tapped: a button or list row, carrying the choice id Seva sent.
    Choice { id: String },
    /// A shared location.
    Location {
        latitude: f64,
        longitude: f64,
        name: Option<String>,
        address: Option<String>,
    },
    /// A shared contact card. `own` is true only when the channel proves it is the sender's own
    /// number (Telegram `contact.user_id == from.id`).
    Contact { phone: String, own: bool },
    /// A photo, document, voice note, video or sticker.
    Media {
        kind: MediaKind,
        /// The provider's media/file id, or a stored file path once downloaded.
        file_id: String,
        mime: Option<String>,
        caption: Option<String>,
    },
    /// Something the dialogue cannot use (reaction, unsupported type, …); `what` names it.
    Unsupported { what: String },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MediaKind {
    Photo,
    Document,
    Voice,
    Video,
    Sticker,
}
