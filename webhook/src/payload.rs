//! Wire structs of the WhatsApp Cloud API webhook notification, as Meta sends them.
//!
//! Reference: <https://developers.facebook.com/documentation/business-messaging/whatsapp/webhooks/overview>
//! and <https://developers.facebook.com/documentation/business-messaging/whatsapp/webhooks/reference/messages>.
//!
//! Everything that may be absent is an `Option` (or an empty `Vec`, also when Meta sends
//! `null`); unknown fields are ignored; timestamps are read from strings or numbers. Items of
//! `messages[]`, `statuses[]` and `contacts[]` are [`Lenient`]: one odd item never makes the whole
//! notification unreadable. These structs are the raw shape only: [`crate::inbound`] turns them
//! into the engine's vocabulary.

use std::cell::Cell;

use serde::{Deserialize, Deserializer};
use serde_json::Value;

/// Unix seconds above this are taken to be milliseconds (courier's `parseTimestamp` guard).
const MILLIS_THRESHOLD: i64 = 1_000_000_000_000;

/// Normalizes a provider timestamp to Unix seconds (milliseconds are divided by 1000).
pub fn unix_seconds(t: i64) -> i64 {
    if t >= MILLIS_THRESHOLD { t / 1000 } else { t }
}

/// `null` and absence both read as the type's default (an empty list).
fn nullable<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// A timestamp: `"1749416383"` (documented), `1749416383`, or milliseconds. Anything unreadable
/// is `None` rather than an error.
fn timestamp<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    let v = Option::<Value>::deserialize(d)?;
    let n = match v {
        Some(Value::String(s)) => s.trim().parse::<f64>().ok(),
        Some(Value::Number(n)) => n.as_f64(),
        _ => None,
    };
    Ok(n.filter(|n| n.is_finite() && *n >= 0.0)
        .map(|n| unix_seconds(n as i64)))
}

/// A coordinate: a JSON number (documented) or a numeric string.
fn coordinate<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    let v = Option::<Value>::deserialize(d)?;
    Ok(match v {
        Some(Value::Number(n)) => n.as_f64(),
        Some(Value::String(s)) => s.trim().parse().ok(),
        _ => None,
    }
    .filter(|f: &f64| f.is_finite()))
}

/// A string that may come as a number (`file_size`, some ids).
fn stringish<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let v = Option::<Value>::deserialize(d)?;
    Ok(match v {
        Some(Value::String(s)) => Some(s),
        Some(Value::Number(n)) => Some(n.to_string()),
        _ => None,
    })
}

/// One array item: the expected shape, or whatever else came (kept only to be counted).
///
/// Read from the item's raw text, not as `#[serde(untagged)]` would (every field of every
/// item buffered first, and again for each nested level): that was 3.4 % of Seva's CPU under
/// WhatsApp load. Only a JSON text (`serde_json::from_slice`/`from_str`) can be read this way,
/// not a `serde_json::Value`.
#[derive(Debug, Clone)]
pub enum Lenient<T> {
    Ok(T),
    Bad(Value),
}

thread_local! {
    /// Whether [`Lenient`] items are read in place: set by [`strictly`] on this thread.
    static STRICT: Cell<bool> = const { Cell::new(false) };
}

/// Runs `read` with every [`Lenient`] item read in place, in the same pass as the body around
/// it, so that an odd item fails the whole read instead of becoming [`Lenient::Bad`].
///
/// Lenient items cost one more pass over their text per level of nesting (each entry, change
/// and message is scanned as raw text, then read from it), four passes over a message in a
/// notification: 6 % of Seva's instructions per WhatsApp reply. A well-formed notification
/// reads the same either way, so [`crate::inbound::parse`] reads strictly first and leniently
/// only when that fails.
pub(crate) fn strictly<R>(read: impl FnOnce() -> R) -> R {
    struct Restore(bool);
    impl Drop for Restore {
        fn drop(&mut self) {
            STRICT.with(|s| s.set(self.0));
        }
    }
    let _restore = Restore(STRICT.with(|s| s.replace(true)));
    read()
}

impl<'de, T: serde::de::DeserializeOwned> Deserialize<'de> for Lenient<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        if STRICT.with(Cell::get) {
            return T::deserialize(d).map(Lenient::Ok);
        }
        let raw = <&serde_json::value::RawValue>::deserialize(d)?;
        if let Ok(t) = serde_json::from_str::<T>(raw.get()) {
            return Ok(Lenient::Ok(t));
        }
        // Not JSON serde_json accepts (nested too deep, a lone surrogate): the body's error,
        // as it was when every item was read as a `Value` first.
        let value: Value = serde_json::from_str(raw.get()).map_err(serde::de::Error::custom)?;
        // A key given twice counts once, with its last value, as a `Value` keeps it.
        Ok(match serde_json::from_str::<T>(&value.to_string()) {
            Ok(t) => Lenient::Ok(t),
            Err(_) => Lenient::Bad(value),
        })
    }
}

impl<T> Lenient<T> {
    pub fn ok(&self) -> Option<&T> {
        match self {
            Lenient::Ok(t) => Some(t),
            Lenient::Bad(_) => None,
        }
    }
}

// {
//   "object": "whatsapp_business_account",
//   "entry": [{ "id": "102290129340398", "changes": [ … ] }]
// }
/// The notification body. <https://developers.facebook.com/documentation/business-messaging/whatsapp/webhooks/overview>
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Envelope {
    #[serde(default)]
    pub object: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    pub entry: Vec<Lenient<Entry>>,
}

// { "id": "102290129340398", "changes": [{ "value": { … }, "field": "messages" }] }
/// One WhatsApp Business Account's changes. `id` is the WABA id, not the phone-number id.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Entry {
    #[serde(default, deserialize_with = "stringish")]
    pub id: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    pub changes: Vec<Lenient<Change>>,
}

// { "value": { "messaging_product": "whatsapp", "metadata": { … }, "messages": [ … ] },
//   "field": "messages" }
/// One change. Only `field == "messages"` carries messages and statuses; `value` stays raw
/// until the field is known (`account_update`, `message_template_status_update`, … differ).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Change {
    #[serde(default)]
    pub field: Option<String>,
    /// Read as the value of a `messages` change; [`crate::inbound`] uses it only when
    /// `field` says that is what it holds.
    #[serde(default)]
    pub value: Option<Lenient<MessagesValue>>,
}

// {
//   "messaging_product": "whatsapp",
//   "metadata": { "display_phone_number": "15550783881", "phone_number_id": "106540352242922" },
//   "contacts": [{ "profile": { "name": "Sheena Nelson" }, "wa_id": "16505551234" }],
//   "messages": [{ … }],
//   "statuses": [{ … }],
//   "errors": [{ … }]
// }
/// The `value` of a `messages` change.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct MessagesValue {
    #[serde(default)]
    pub messaging_product: Option<String>,
    #[serde(default)]
    pub metadata: Option<Metadata>,
    #[serde(default, deserialize_with = "nullable")]
    pub contacts: Vec<Lenient<Contact>>,
    #[serde(default, deserialize_with = "nullable")]
    pub messages: Vec<Lenient<Message>>,
    #[serde(default, deserialize_with = "nullable")]
    pub statuses: Vec<Lenient<Status>>,
    #[serde(default, deserialize_with = "nullable")]
    pub errors: Vec<Lenient<WaError>>,
}

// { "display_phone_number": "15550783881", "phone_number_id": "106540352242922" }
/// Which of our numbers received it. Route by `phone_number_id`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Metadata {
    #[serde(default, deserialize_with = "stringish")]
    pub display_phone_number: Option<String>,
    #[serde(default, deserialize_with = "stringish")]
    pub phone_number_id: Option<String>,
}

// { "profile": { "name": "Sheena Nelson" }, "wa_id": "16505551234" }
// { "profile": { "name": "Sheena Nelson", "username": "@realsheenanelson" },
//   "user_id": "US.13491208655302741918", "parent_user_id": "US.11815799212886844830" }
/// The sender's profile, beside `messages[]`. A user with a WhatsApp username may come with a
/// business-scoped `user_id` and no `wa_id`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Contact {
    #[serde(default)]
    pub profile: Option<Profile>,
    #[serde(default, deserialize_with = "stringish")]
    pub wa_id: Option<String>,
    #[serde(default)]
    pub user_id: Option<String>,
    #[serde(default)]
    pub parent_user_id: Option<String>,
}

// { "name": "Sheena Nelson", "username": "@realsheenanelson" }
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Profile {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub username: Option<String>,
}

// {
//   "context": { "from": "1122334455667", "id": "wamid.xyzxyz" },
//   "from": "16505551234",
//   "id": "wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQTRBNjU5OUFFRTAzODEwMTQ0RgA=",
//   "timestamp": "1749416383",
//   "type": "text",
//   "text": { "body": "Does it come in another color?" }
// }
// BSUID sender: { "from_user_id": "US.13491208655302741918", "from_parent_user_id": "US.1181…", … }
/// One inbound message. Exactly one of the type-named objects is expected, but every one is
/// optional. <https://developers.facebook.com/documentation/business-messaging/whatsapp/webhooks/reference/messages>
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Message {
    #[serde(default, deserialize_with = "stringish")]
    pub from: Option<String>,
    #[serde(default)]
    pub from_user_id: Option<String>,
    #[serde(default)]
    pub from_parent_user_id: Option<String>,
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default, deserialize_with = "timestamp")]
    pub timestamp: Option<i64>,
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    #[serde(default)]
    pub context: Option<Context>,
    #[serde(default)]
    pub text: Option<TextBody>,
    #[serde(default)]
    pub interactive: Option<Interactive>,
    #[serde(default)]
    pub button: Option<Button>,
    #[serde(default)]
    pub location: Option<Location>,
    #[serde(default)]
    pub image: Option<Media>,
    #[serde(default)]
    pub video: Option<Media>,
    #[serde(default)]
    pub document: Option<Media>,
    #[serde(default)]
    pub audio: Option<Media>,
    #[serde(default)]
    pub sticker: Option<Media>,
    #[serde(default, deserialize_with = "nullable")]
    pub contacts: Vec<Lenient<SharedContact>>,
    #[serde(default)]
    pub reaction: Option<Reaction>,
    #[serde(default, deserialize_with = "nullable")]
    pub errors: Vec<Lenient<WaError>>,
}

// reply:   { "from": "1122334455667", "id": "wamid.xyzxyz" }
// forward: { "forwarded": true }  /  { "frequently_forwarded": true }
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Context {
    #[serde(default, deserialize_with = "stringish")]
    pub from: Option<String>,
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub forwarded: Option<bool>,
    #[serde(default)]
    pub frequently_forwarded: Option<bool>,
}

// { "body": "Does it come in another color?" }
#[derive(Debug, Clone, Default, Deserialize)]
pub struct TextBody {
    #[serde(default)]
    pub body: Option<String>,
}

// { "type": "button_reply", "button_reply": { "id": "callback_data", "title": "title" } }
// { "type": "list_reply", "list_reply": { "id": "callback_data", "title": "title", "description": "…" } }
// { "type": "nfm_reply", "nfm_reply": { "response_json": "{…}", "body": "Sent", "name": "flow" } }
/// A tap on one of our interactive messages.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Interactive {
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    #[serde(default)]
    pub button_reply: Option<ReplyChoice>,
    #[serde(default)]
    pub list_reply: Option<ReplyChoice>,
}

// { "id": "callback_data", "title": "title", "description": "description" }
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ReplyChoice {
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub title: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
}

// { "payload": "callback_data", "text": "title" }
/// A quick-reply button on a *template* message (`type: "button"`, not `button_reply`).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Button {
    #[serde(default)]
    pub payload: Option<String>,
    #[serde(default)]
    pub text: Option<String>,
}

// { "latitude": 12.25089, "longitude": 43.90539 }
// { "latitude": 37.4611978, "longitude": -122.2164385, "name": "Facebook HQ",
//   "address": "1 Hacker Way, Menlo Park, CA 94025", "url": "https://maps.google.com/?cid=…" }
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Location {
    #[serde(default, deserialize_with = "coordinate")]
    pub latitude: Option<f64>,
    #[serde(default, deserialize_with = "coordinate")]
    pub longitude: Option<f64>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub address: Option<String>,
    #[serde(default)]
    pub url: Option<String>,
}

// { "mime_type": "image/jpeg", "sha256": "4654+8g=", "id": "65463453" }
// { "caption": "caption", "filename": "filename.pdf", "mime_type": "application/pdf", "sha256": "…", "id": "…" }
// { "mime_type": "audio/ogg; codecs=opus", "sha256": "…", "id": "…", "voice": true }
// { "mime_type": "image/webp", "sha256": "…", "id": "…", "animated": false }
/// image, video, document, audio or sticker. `id` is the media id (valid for 7 days).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Media {
    #[serde(default, deserialize_with = "stringish")]
    pub id: Option<String>,
    #[serde(default)]
    pub mime_type: Option<String>,
    #[serde(default)]
    pub sha256: Option<String>,
    #[serde(default)]
    pub caption: Option<String>,
    #[serde(default)]
    pub filename: Option<String>,
    #[serde(default)]
    pub voice: Option<bool>,
    #[serde(default)]
    pub animated: Option<bool>,
}

// { "name": { "first_name": "Chandler", "last_name": "Bing", "formatted_name": "Chandler Bing" },
//   "phones": [{ "phone": "+1 555-555-5555", "wa_id": "972987654321", "type": "CELL" }] }
/// A contact card the user shared (`type: "contacts"`).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct SharedContact {
    #[serde(default)]
    pub name: Option<Value>,
    #[serde(default, deserialize_with = "nullable")]
    pub phones: Vec<Lenient<SharedPhone>>,
}

// { "phone": "+1 555-555-5555", "wa_id": "972987654321", "type": "CELL" }
#[derive(Debug, Clone, Default, Deserialize)]
pub struct SharedPhone {
    #[serde(default, deserialize_with = "stringish")]
    pub phone: Option<String>,
    #[serde(default, deserialize_with = "stringish")]
    pub wa_id: Option<String>,
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
}

// { "message_id": "wamid.yzxyzx=", "emoji": "😮" }   (no or empty emoji: reaction removed)
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Reaction {
    #[serde(default)]
    pub message_id: Option<String>,
    #[serde(default)]
    pub emoji: Option<String>,
}

// { "code": 131051, "title": "Message type unknown", "message": "Message type unknown",
//   "error_data": { "details": "Message type is currently not supported." },
//   "href": "https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes/" }
/// An error object, in `messages[].errors`, `statuses[].errors` or `value.errors`.
/// <https://developers.facebook.com/documentation/business-messaging/whatsapp/webhooks/reference/messages/errors>
#[derive(Debug, Clone, Default, Deserialize)]
pub struct WaError {
    #[serde(default)]
    pub code: Option<i64>,
    #[serde(default)]
    pub title: Option<String>,
    #[serde(default)]
    pub message: Option<String>,
    #[serde(default)]
    pub error_data: Option<ErrorData>,
    #[serde(default)]
    pub href: Option<String>,
}

// { "details": "Message type is currently not supported." }
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ErrorData {
    #[serde(default)]
    pub details: Option<String>,
}

// {
//   "id": "wamid.xyzxyz", "status": "sent", "timestamp": "1698266945", "recipient_id": "972987654321",
//   "biz_opaque_callback_data": "outbox:42",
//   "conversation": { "id": "7270…", "expiration_timestamp": "1698339900", "origin": { "type": "service" } },
//   "pricing": { "billable": true, "pricing_model": "CBP", "category": "service" },
//   "errors": [{ "code": 131047, "title": "Re-engagement message", … }]
// }
/// A delivery receipt for a message we sent. `conversation` and `pricing` vary (CBP vs PMP
/// pricing) and are kept raw. <https://developers.facebook.com/documentation/business-messaging/whatsapp/webhooks/reference/messages/status>
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Status {
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default, deserialize_with = "timestamp")]
    pub timestamp: Option<i64>,
    #[serde(default, deserialize_with = "stringish")]
    pub recipient_id: Option<String>,
    #[serde(default)]
    pub recipient_user_id: Option<String>,
    #[serde(default)]
    pub biz_opaque_callback_data: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    pub errors: Vec<Lenient<WaError>>,
    #[serde(default)]
    pub conversation: Option<Value>,
    #[serde(default)]
    pub pricing: Option<Value>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_read_strings_numbers_and_milliseconds() {
        let m: Message = serde_json::from_str(r#"{"timestamp":"1749416383"}"#).unwrap();
        assert_eq!(m.timestamp, Some(1_749_416_383));
        let m: Message = serde_json::from_str(r#"{"timestamp":1749416383}"#).unwrap();
        assert_eq!(m.timestamp, Some(1_749_416_383));
        let m: Message = serde_json::from_str(r#"{"timestamp":"1749416383123"}"#).unwrap();
        assert_eq!(m.timestamp, Some(1_749_416_383));
        let m: Message = serde_json::from_str(r#"{"timestamp":"soon"}"#).unwrap();
        assert_eq!(m.timestamp, None);
    }

    #[test]
    fn strictly_reads_a_well_formed_notification_as_leniently_and_refuses_an_odd_item() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/testdata");
        let mut read_strictly = 0;
        for file in std::fs::read_dir(dir).unwrap() {
            let path = file.unwrap().path();
            let body = std::fs::read(&path).unwrap();
            let lenient = serde_json::from_slice::<Envelope>(&body);
            match strictly(|| serde_json::from_slice::<Envelope>(&body)) {
                Ok(strict) => {
                    read_strictly += 1;
                    let lenient = lenient.expect("lenient reads what strict reads");
                    assert_eq!(format!("{strict:?}"), format!("{lenient:?}"), "{path:?}");
                }
                // Only a body with an odd item (or not a notification at all) is refused.
                Err(_) => assert!(
                    lenient
                        .as_ref()
                        .map_or(true, |e| format!("{e:?}").contains("Bad(")),
                    "{path:?}: strict failed on a body without odd items"
                ),
            }
        }
        assert!(
            read_strictly >= 25,
            "{read_strictly} fixtures read strictly"
        );
        let odd = r#"{"statuses":[42,{"id":"wamid.1"}]}"#;
        assert!(strictly(|| serde_json::from_str::<MessagesValue>(odd)).is_err());
        // The mode ends with the read.
        let v: MessagesValue = serde_json::from_str(odd).unwrap();
        assert!(matches!(v.statuses[0], Lenient::Bad(_)));
    }

    #[test]
    fn null_arrays_and_odd_items_do_not_fail_the_value() {
        let v: MessagesValue = serde_json::from_str(
            r#"{"messages":null,"statuses":[42,{"id":"wamid.1"}],"extra":{}}"#,
        )
        .unwrap();
        assert!(v.messages.is_empty());
        assert!(matches!(v.statuses[0], Lenient::Bad(_)));
        assert_eq!(
            v.statuses[1].ok().and_then(|s| s.id.as_deref()),
            Some("wamid.1")
        );
    }
}
