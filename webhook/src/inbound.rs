//! Turns a (verified) notification body into the engine's vocabulary. Pure: no IO, no clock.
//!
//! Every entry, change, message and status is visited (`[0]` is never assumed). What cannot be
//! used is recorded in [`Notification::ignored`] with a reason that carries no personal data,
//! so the route can answer 200 (Meta would otherwise retry for days) and log a line.

use std::fmt;

use flows::message::{Body, Channel, Inbound, MediaKind, SenderHints};
use serde::{Deserialize, Serialize};

use crate::payload::{self, Envelope, Lenient, Message, MessagesValue, WaError};

/// Everything usable in one webhook POST.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Notification {
    pub messages: Vec<Inbound>,
    pub statuses: Vec<DeliveryStatus>,
    pub ignored: Vec<Ignored>,
}

/// A delivery receipt for a message Seva sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryStatus {
    /// The `wamid` the send call returned.
    pub provider_id: String,
    pub status: StatusKind,
    /// `recipient_id` (the wa_id), or the business-scoped `recipient_user_id`.
    pub recipient: Option<String>,
    /// Unix seconds (0 when absent).
    pub timestamp: i64,
    /// `(code, title)` of each error on a `failed` status.
    pub errors: Vec<(i64, String)>,
    /// Echo of what the send set: Seva's outbox id.
    pub biz_opaque_callback_data: Option<String>,
}

impl DeliveryStatus {
    /// True when the message failed because the 24-hour window was closed (131047): the
    /// caller turns that row into its template once.
    pub fn is_reengagement_failure(&self) -> bool {
        self.status == StatusKind::Failed && self.errors.iter().any(|(c, _)| *c == 131047)
    }
}

/// The documented delivery states. Meta may skip `delivered` when delivery and read happen
/// together, so order by [`StatusKind::rank`], not by arrival.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StatusKind {
    Sent,
    Delivered,
    Read,
    Failed,
}

impl StatusKind {
    pub fn parse(s: &str) -> Option<StatusKind> {
        match s {
            "sent" => Some(StatusKind::Sent),
            "delivered" => Some(StatusKind::Delivered),
            "read" => Some(StatusKind::Read),
            "failed" => Some(StatusKind::Failed),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            StatusKind::Sent => "sent",
            StatusKind::Delivered => "delivered",
            StatusKind::Read => "read",
            StatusKind::Failed => "failed",
        }
    }

    /// sent 1 < delivered 2 < read 3; failed 4 (final).
    pub fn rank(self) -> u8 {
        match self {
            StatusKind::Sent => 1,
            StatusKind::Delivered => 2,
            StatusKind::Read => 3,
            StatusKind::Failed => 4,
        }
    }
}

/// Something authentic that Seva does not use. No variant holds personal data: only names
/// and codes Meta defines (truncated), never numbers, names or texts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ignored {
    /// `object` is not `whatsapp_business_account`.
    NotWhatsapp {
        object: String,
    },
    /// An entry or change that is not an object of the documented shape.
    MalformedEntry,
    /// A change whose `field` is not `messages` (`account_update`, template status, …).
    OtherField {
        field: String,
    },
    /// A `messages` change with no `value`, or one of the wrong shape.
    MalformedValue,
    /// A message that is not an object of the documented shape.
    MalformedMessage,
    /// A message with neither `from` nor `from_user_id`.
    MessageWithoutSender,
    /// A message with no `id` (it could not be deduplicated).
    MessageWithoutId,
    MalformedStatus,
    StatusWithoutId,
    /// A status other than sent/delivered/read/failed (e.g. `deleted`).
    OtherStatus {
        status: String,
    },
    /// A system-level `value.errors[]` notification with no messages.
    Errors {
        codes: Vec<i64>,
    },
}

impl fmt::Display for Ignored {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Ignored::NotWhatsapp { object } => {
                write!(f, "object {object:?} is not whatsapp_business_account")
            }
            Ignored::MalformedEntry => f.write_str("malformed entry or change"),
            Ignored::OtherField { field } => write!(f, "field {field:?} is not handled"),
            Ignored::MalformedValue => f.write_str("malformed messages value"),
            Ignored::MalformedMessage => f.write_str("malformed message"),
            Ignored::MessageWithoutSender => f.write_str("message without sender"),
            Ignored::MessageWithoutId => f.write_str("message without id"),
            Ignored::MalformedStatus => f.write_str("malformed status"),
            Ignored::StatusWithoutId => f.write_str("status without id"),
            Ignored::OtherStatus { status } => write!(f, "status {status:?} is not handled"),
            Ignored::Errors { codes } => write!(f, "error notification, codes {codes:?}"),
        }
    }
}

/// The body is not a JSON object at all: the route answers 400.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// Not JSON; the text is serde's position information only, never the content.
    #[error("malformed JSON at line {line}, column {column}")]
    Json { line: usize, column: usize },
    #[error("notification is not a JSON object")]
    NotAnObject,
}

/// Keeps a Meta-defined name short in logs.
fn label(s: &str) -> String {
    s.chars().take(48).collect()
}

fn non_empty(s: Option<&str>) -> Option<String> {
    s.map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

/// The envelope of a body [`parse`] could not read directly: `None` when it is a JSON object
/// whose `object` or `entry` has the wrong shape ("unusable", not an error).
fn envelope_or_error(body: &[u8]) -> Result<Option<Envelope>, ParseError> {
    let value: serde_json::Value = serde_json::from_slice(body).map_err(|e| ParseError::Json {
        line: e.line(),
        column: e.column(),
    })?;
    if !value.is_object() {
        return Err(ParseError::NotAnObject);
    }
    // From text again: the lenient parts read raw text (`payload::Lenient`). Written out, the
    // object has lost what made the direct read fail if that was a repeated key.
    Ok(serde_json::from_str(&value.to_string()).ok())
}

/// Parses one webhook body.
pub fn parse(body: &[u8]) -> Result<Notification, ParseError> {
    let mut out = Notification::default();
    // A well-formed notification is read straight into its shape, once, and one with an odd
    // item leniently (see `payload::strictly`). Anything else takes the slow path, which
    // tells a syntax error, a body that is not an object and a shape problem apart. Only an
    // object is tried directly: serde would also fill a struct from an array.
    let starts_as_object = body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{');
    let direct = starts_as_object
        .then(|| {
            payload::strictly(|| serde_json::from_slice::<Envelope>(body))
                .or_else(|_| serde_json::from_slice::<Envelope>(body))
                .ok()
        })
        .flatten();
    let envelope = match direct {
        Some(envelope) => envelope,
        None => match envelope_or_error(body)? {
            Some(envelope) => envelope,
            None => {
                out.ignored.push(Ignored::MalformedEntry);
                return Ok(out);
            }
        },
    };
    if let Some(object) = envelope.object.as_deref()
        && object != "whatsapp_business_account"
    {
        out.ignored.push(Ignored::NotWhatsapp {
            object: label(object),
        });
        return Ok(out);
    }
    for entry in &envelope.entry {
        let Lenient::Ok(entry) = entry else {
            out.ignored.push(Ignored::MalformedEntry);
            continue;
        };
        for change in &entry.changes {
            let Lenient::Ok(change) = change else {
                out.ignored.push(Ignored::MalformedEntry);
                continue;
            };
            match change.field.as_deref() {
                Some("messages") => {}
                other => {
                    out.ignored.push(Ignored::OtherField {
                        field: label(other.unwrap_or("")),
                    });
                    continue;
                }
            }
            match &change.value {
                Some(Lenient::Ok(v)) => read_value(v, &mut out),
                _ => out.ignored.push(Ignored::MalformedValue),
            }
        }
    }
    Ok(out)
}

fn read_value(v: &MessagesValue, out: &mut Notification) {
    let value_errors: Vec<&WaError> = v.errors.iter().filter_map(Lenient::ok).collect();
    if v.messages.is_empty() && !value_errors.is_empty() {
        out.ignored.push(Ignored::Errors {
            codes: value_errors.iter().filter_map(|e| e.code).collect(),
        });
    }
    for m in &v.messages {
        let Lenient::Ok(m) = m else {
            out.ignored.push(Ignored::MalformedMessage);
            continue;
        };
        match read_message(m, v, &value_errors) {
            Ok(inbound) => out.messages.push(inbound),
            Err(why) => out.ignored.push(why),
        }
    }
    for s in &v.statuses {
        let Lenient::Ok(s) = s else {
            out.ignored.push(Ignored::MalformedStatus);
            continue;
        };
        match read_status(s) {
            Ok(status) => out.statuses.push(status),
            Err(why) => out.ignored.push(why),
        }
    }
}

/// `from` (digits), else the business-scoped `from_user_id`. A stray `+` is dropped so one
/// person keeps one identity.
fn sender(m: &Message) -> Option<(String, bool)> {
    if let Some(from) = non_empty(m.from.as_deref()) {
        let from = from.strip_prefix('+').map(str::to_owned).unwrap_or(from);
        let is_phone = !from.is_empty() && from.bytes().all(|b| b.is_ascii_digit());
        return Some((from, is_phone));
    }
    non_empty(m.from_user_id.as_deref()).map(|id| (id, false))
}

/// The profile name of the sender, from `value.contacts[]`.
fn profile_name(v: &MessagesValue, m: &Message) -> Option<String> {
    let contacts: Vec<&payload::Contact> = v.contacts.iter().filter_map(Lenient::ok).collect();
    let from = m.from.as_deref().map(|f| f.trim_start_matches('+'));
    let matching = contacts.iter().find(|c| {
        (from.is_some() && c.wa_id.as_deref() == from)
            || (m.from_user_id.is_some() && c.user_id.as_deref() == m.from_user_id.as_deref())
    });
    let contact = match matching {
        Some(c) => Some(*c),
        None if contacts.len() == 1 => Some(contacts[0]),
        None => None,
    }?;
    non_empty(contact.profile.as_ref()?.name.as_deref())
}

fn read_message(
    m: &Message,
    v: &MessagesValue,
    value_errors: &[&WaError],
) -> Result<Inbound, Ignored> {
    let (sender, is_phone) = sender(m).ok_or(Ignored::MessageWithoutSender)?;
    let provider_id = non_empty(m.id.as_deref()).ok_or(Ignored::MessageWithoutId)?;
    let hints = SenderHints {
        lang: None,
        phone: is_phone.then(|| format!("+{sender}")),
        name: profile_name(v, m),
    };
    Ok(Inbound {
        channel: Channel::Whatsapp,
        sender,
        provider_id,
        sent_at: m.timestamp.unwrap_or(0),
        body: body(m, value_errors),
        hints,
    })
}

fn unsupported(what: impl Into<String>) -> Body {
    Body::Unsupported { what: what.into() }
}

fn first_error_code<'a>(errors: impl IntoIterator<Item = &'a WaError>) -> Option<i64> {
    errors.into_iter().find_map(|e| e.code)
}

/// The message's content. Types and shapes the dialogue cannot use become
/// `Unsupported { what }`, where `what` is the message type (`reaction`, `order`, `system`,
/// `nfm_reply`, `unsupported`, …) or `error:<code>` when Meta reported an error instead of a body.
fn body(m: &Message, value_errors: &[&WaError]) -> Body {
    let kind = m.kind.as_deref().unwrap_or("");
    let own_errors: Vec<&WaError> = m.errors.iter().filter_map(Lenient::ok).collect();
    let error_body = || {
        first_error_code(
            own_errors
                .iter()
                .copied()
                .chain(value_errors.iter().copied()),
        )
        .map(|c| unsupported(format!("error:{c}")))
    };
    let media = |kind: MediaKind, media: Option<&payload::Media>, name: &str| match media
        .and_then(|md| Some((md, non_empty(md.id.as_deref())?)))
    {
        Some((md, id)) => Body::Media {
            kind,
            file_id: id,
            mime: non_empty(md.mime_type.as_deref()),
            caption: non_empty(md.caption.as_deref()),
        },
        None => error_body().unwrap_or_else(|| unsupported(name)),
    };
    match kind {
        "text" => match m.text.as_ref().and_then(|t| t.body.clone()) {
            Some(text) => Body::Text { text },
            None => error_body().unwrap_or_else(|| unsupported("text")),
        },
        "interactive" => {
            let Some(i) = m.interactive.as_ref() else {
                return error_body().unwrap_or_else(|| unsupported("interactive"));
            };
            let reply = match i.kind.as_deref() {
                Some("button_reply") => i.button_reply.as_ref(),
                Some("list_reply") => i.list_reply.as_ref(),
                _ => i.button_reply.as_ref().or(i.list_reply.as_ref()),
            };
            match reply {
                Some(r) => match (non_empty(r.id.as_deref()), r.title.clone()) {
                    (Some(id), _) => Body::Choice { id },
                    (None, Some(text)) => Body::Text { text },
                    (None, None) => unsupported("interactive"),
                },
                None => unsupported(label(i.kind.as_deref().unwrap_or("interactive"))),
            }
        }
        "button" => match m.button.as_ref() {
            Some(b) => match (non_empty(b.payload.as_deref()), b.text.clone()) {
                (Some(id), _) => Body::Choice { id },
                (None, Some(text)) => Body::Text { text },
                (None, None) => unsupported("button"),
            },
            None => error_body().unwrap_or_else(|| unsupported("button")),
        },
        "location" => match m
            .location
            .as_ref()
            .and_then(|l| Some((l, l.latitude?, l.longitude?)))
        {
            Some((l, latitude, longitude))
                if (-90.0..=90.0).contains(&latitude) && (-180.0..=180.0).contains(&longitude) =>
            {
                Body::Location {
                    latitude,
                    longitude,
                    name: non_empty(l.name.as_deref()),
                    address: non_empty(l.address.as_deref()),
                }
            }
            _ => error_body().unwrap_or_else(|| unsupported("location")),
        },
        "image" => media(MediaKind::Photo, m.image.as_ref(), "image"),
        "document" => media(MediaKind::Document, m.document.as_ref(), "document"),
        "audio" | "voice" => media(MediaKind::Voice, m.audio.as_ref(), "audio"),
        "video" => media(MediaKind::Video, m.video.as_ref(), "video"),
        "sticker" => media(MediaKind::Sticker, m.sticker.as_ref(), "sticker"),
        "contacts" => {
            let phone = m
                .contacts
                .iter()
                .filter_map(Lenient::ok)
                .flat_map(|c| c.phones.iter().filter_map(Lenient::ok))
                .find_map(|p| {
                    non_empty(p.phone.as_deref())
                        .or_else(|| non_empty(p.wa_id.as_deref()).map(|w| format!("+{w}")))
                });
            match phone {
                Some(phone) => Body::Contact { phone, own: false },
                None => unsupported("contacts"),
            }
        }
        "reaction" => unsupported("reaction"),
        "unsupported" => match first_error_code(own_errors.iter().copied()) {
            Some(code) => unsupported(format!("unsupported:{code}")),
            None => unsupported("unsupported"),
        },
        "" => error_body().unwrap_or_else(|| unsupported("unknown")),
        other => error_body().unwrap_or_else(|| unsupported(label(other))),
    }
}

fn read_status(s: &payload::Status) -> Result<DeliveryStatus, Ignored> {
    let provider_id = non_empty(s.id.as_deref()).ok_or(Ignored::StatusWithoutId)?;
    let raw = s.status.as_deref().unwrap_or("");
    let status =
        StatusKind::parse(raw).ok_or_else(|| Ignored::OtherStatus { status: label(raw) })?;
    let errors = s
        .errors
        .iter()
        .filter_map(Lenient::ok)
        .map(|e| {
            let title = e
                .title
                .clone()
                .or_else(|| e.message.clone())
                .unwrap_or_default();
            (e.code.unwrap_or(0), title)
        })
        .collect();
    Ok(DeliveryStatus {
        provider_id,
        status,
        recipient: non_empty(s.recipient_id.as_deref())
            .or_else(|| non_empty(s.recipient_user_id.as_deref())),
        timestamp: s.timestamp.unwrap_or(0),
        errors,
        biz_opaque_callback_data: s.biz_opaque_callback_data.clone(),
    })
}
