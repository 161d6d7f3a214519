//! Incoming WhatsApp notifications: raw payload fixtures (`tests/testdata/*.json`, one per
//! scenario, shaped as Meta's documentation and public fixtures show them) through the pure
//! parser, then through the HTTP routes with a recording sink. One row per behaviour.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use axum::body::Body as HttpBody;
use axum::http::{Request, StatusCode, header};
use flows::message::{Body, Channel, Inbound, MediaKind};
use http_body_util::BodyExt;
use tower::ServiceExt;
use webhook::inbound::{DeliveryStatus, Ignored, Notification, ParseError, StatusKind, parse};
use webhook::routes::{SinkError, WebhookConfig, WhatsappSink, router};
use webhook::signature::sign;

const SECRET: &str = "test-app-secret";
const VERIFY: &str = "verify-me";
const WAMID: &str =
    "wamid.HBgMOTE5ODc2NTQzMjEwFQIAEhggNEE2QkY5QzE3RjM2RkI2QjM5QjE3NkQ2NEQzQjlBNkEA";
const STATUS_WAMID: &str = "wamid.HBgMOTE5ODc2NTQzMjEwFQIAERgSQUFBQUFBQUFBQUFBQUEA";

fn fixture(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/testdata/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn parsed(name: &str) -> Notification {
    parse(&fixture(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// The only message of a notification, which must have no statuses.
fn only(n: &Notification) -> &Inbound {
    assert_eq!(n.messages.len(), 1, "messages: {:?}", n.messages);
    assert!(n.statuses.is_empty());
    &n.messages[0]
}

fn only_body(n: &Notification) -> &Body {
    &only(n).body
}

fn only_status(n: &Notification) -> &DeliveryStatus {
    assert!(n.messages.is_empty());
    assert!(n.ignored.is_empty(), "ignored: {:?}", n.ignored);
    assert_eq!(n.statuses.len(), 1);
    &n.statuses[0]
}

fn unsupported(what: &str) -> Body {
    Body::Unsupported {
        what: what.to_owned(),
    }
}

struct Row {
    behaviour: &'static str,
    fixture: &'static str,
    check: fn(&Notification),
}

const ROWS: &[Row] = &[
    Row {
        behaviour: "a typed text becomes Text, sent by the wa_id, with a +E.164 phone hint and the profile name",
        fixture: "text.json",
        check: |n| {
            let m = only(n);
            assert_eq!(m.channel, Channel::Whatsapp);
            assert_eq!(m.sender, "919876543210");
            assert_eq!(m.provider_id, WAMID);
            assert_eq!(m.sent_at, 1_749_416_383);
            assert_eq!(
                m.body,
                Body::Text {
                    text: "मेरा फोन खो गया".into()
                }
            );
            assert_eq!(m.hints.phone.as_deref(), Some("+919876543210"));
            assert_eq!(m.hints.name.as_deref(), Some("Sheena Nelson"));
            assert_eq!(m.hints.lang, None);
            assert!(n.ignored.is_empty());
        },
    },
    Row {
        behaviour: "a text from a click-to-WhatsApp ad (with referral) is still plain text",
        fixture: "text_with_referral.json",
        check: |n| assert_eq!(only_body(n), &Body::Text { text: "Hi".into() }),
    },
    Row {
        behaviour: "a timestamp in milliseconds is read as seconds",
        fixture: "millis_timestamp.json",
        check: |n| assert_eq!(only(n).sent_at, 1_749_416_383),
    },
    Row {
        behaviour: "a tapped reply button becomes Choice with the id Seva sent",
        fixture: "button_reply.json",
        check: |n| {
            assert_eq!(
                only_body(n),
                &Body::Choice {
                    id: "menu:complaint".into()
                }
            )
        },
    },
    Row {
        behaviour: "a chosen list row becomes Choice with the row id",
        fixture: "list_reply.json",
        check: |n| {
            assert_eq!(
                only_body(n),
                &Body::Choice {
                    id: "station:PS-KOTWALI".into()
                }
            )
        },
    },
    Row {
        behaviour: "a Flows (nfm_reply) answer is unsupported, named by its type",
        fixture: "nfm_reply.json",
        check: |n| assert_eq!(only_body(n), &unsupported("nfm_reply")),
    },
    Row {
        behaviour: "a template quick-reply button becomes Choice with its payload",
        fixture: "template_button.json",
        check: |n| {
            assert_eq!(
                only_body(n),
                &Body::Choice {
                    id: "status:C-7K3Q-9XM4-R".into()
                }
            )
        },
    },
    Row {
        behaviour: "a template button without a payload becomes its text",
        fixture: "template_button_without_payload.json",
        check: |n| {
            assert_eq!(
                only_body(n),
                &Body::Text {
                    text: "Check status".into()
                }
            )
        },
    },
    Row {
        behaviour: "a shared current location has coordinates and no name or address",
        fixture: "location.json",
        check: |n| {
            assert_eq!(
                only_body(n),
                &Body::Location {
                    latitude: 25.5941,
                    longitude: 85.1376,
                    name: None,
                    address: None
                }
            )
        },
    },
    Row {
        behaviour: "a chosen place keeps its name and address",
        fixture: "location_with_name.json",
        check: |n| {
            assert_eq!(
                only_body(n),
                &Body::Location {
                    latitude: 25.6093,
                    longitude: 85.1235,
                    name: Some("Gandhi Maidan".into()),
                    address: Some("Gandhi Maidan Marg, Patna, Bihar 800001".into()),
                }
            )
        },
    },
    Row {
        behaviour: "a photo becomes Media Photo with its media id, MIME type and caption",
        fixture: "image.json",
        check: |n| {
            assert_eq!(
                only_body(n),
                &Body::Media {
                    kind: MediaKind::Photo,
                    file_id: "1479537139650973".into(),
                    mime: Some("image/jpeg".into()),
                    caption: Some("टूटा हुआ ताला".into()),
                }
            )
        },
    },
    Row {
        behaviour: "a document becomes Media Document",
        fixture: "document.json",
        check: |n| {
            assert_eq!(
                only_body(n),
                &Body::Media {
                    kind: MediaKind::Document,
                    file_id: "1234567890987654321".into(),
                    mime: Some("application/pdf".into()),
                    caption: Some("FIR copy".into()),
                }
            )
        },
    },
    Row {
        behaviour: "a voice note becomes Media Voice with the full MIME type",
        fixture: "voice.json",
        check: |n| {
            assert_eq!(
                only_body(n),
                &Body::Media {
                    kind: MediaKind::Voice,
                    file_id: "9876543210123456".into(),
                    mime: Some("audio/ogg; codecs=opus".into()),
                    caption: None,
                }
            )
        },
    },
    Row {
        behaviour: "a video becomes Media Video",
        fixture: "video.json",
        check: |n| {
            assert_eq!(
                only_body(n),
                &Body::Media {
                    kind: MediaKind::Video,
                    file_id: "765756756".into(),
                    mime: Some("video/mp4".into()),
                    caption: Some("CCTV clip".into()),
                }
            )
        },
    },
    Row {
        behaviour: "a sticker becomes Media Sticker",
        fixture: "sticker.json",
        check: |n| {
            assert_eq!(
                only_body(n),
                &Body::Media {
                    kind: MediaKind::Sticker,
                    file_id: "5554443332221110".into(),
                    mime: Some("image/webp".into()),
                    caption: None,
                }
            )
        },
    },
    Row {
        behaviour: "a shared contact card gives its first phone, not proven to be the sender's own",
        fixture: "contacts.json",
        check: |n| {
            assert_eq!(
                only_body(n),
                &Body::Contact {
                    phone: "+91 98765 43211".into(),
                    own: false
                }
            )
        },
    },
    Row {
        behaviour: "a contact card without a phone is unsupported",
        fixture: "contacts_without_phone.json",
        check: |n| assert_eq!(only_body(n), &unsupported("contacts")),
    },
    Row {
        behaviour: "a reaction is unsupported",
        fixture: "reaction.json",
        check: |n| assert_eq!(only_body(n), &unsupported("reaction")),
    },
    Row {
        behaviour: "a removed reaction (empty emoji) is unsupported too",
        fixture: "reaction_removed.json",
        check: |n| assert_eq!(only_body(n), &unsupported("reaction")),
    },
    Row {
        behaviour: "an unsupported message names Meta's error code",
        fixture: "unsupported.json",
        check: |n| assert_eq!(only_body(n), &unsupported("unsupported:131051")),
    },
    Row {
        behaviour: "a message without a body beside value-level errors is unsupported with the error code",
        fixture: "interactive_with_value_errors.json",
        check: |n| assert_eq!(only_body(n), &unsupported("error:131000")),
    },
    Row {
        behaviour: "a system-level error notification is ignored with its codes",
        fixture: "system_error.json",
        check: |n| {
            assert!(n.messages.is_empty() && n.statuses.is_empty());
            assert_eq!(
                n.ignored,
                vec![Ignored::Errors {
                    codes: vec![130429]
                }]
            );
        },
    },
    Row {
        behaviour: "an unknown message type is accepted as unsupported, named by its type",
        fixture: "order.json",
        check: |n| assert_eq!(only_body(n), &unsupported("order")),
    },
    Row {
        behaviour: "a message without any sender id is ignored",
        fixture: "no_sender.json",
        check: |n| {
            assert!(n.messages.is_empty());
            assert_eq!(n.ignored, vec![Ignored::MessageWithoutSender]);
        },
    },
    Row {
        behaviour: "a sent status carries the wamid, recipient, time and Seva's outbox id",
        fixture: "status_sent.json",
        check: |n| {
            assert_eq!(
                only_status(n),
                &DeliveryStatus {
                    provider_id: STATUS_WAMID.into(),
                    status: StatusKind::Sent,
                    recipient: Some("919876543210".into()),
                    timestamp: 1_749_416_400,
                    errors: vec![],
                    biz_opaque_callback_data: Some("outbox:42".into()),
                }
            )
        },
    },
    Row {
        behaviour: "a delivered status with per-message pricing is read",
        fixture: "status_delivered.json",
        check: |n| {
            let s = only_status(n);
            assert_eq!(s.status, StatusKind::Delivered);
            assert_eq!(s.timestamp, 1_749_416_401);
        },
    },
    Row {
        behaviour: "a read status without conversation or pricing is read",
        fixture: "status_read.json",
        check: |n| {
            let s = only_status(n);
            assert_eq!(s.status, StatusKind::Read);
            assert!(s.status.rank() > StatusKind::Delivered.rank());
        },
    },
    Row {
        behaviour: "a failed status with 131047 carries the code and says the window closed",
        fixture: "status_failed_131047.json",
        check: |n| {
            let s = only_status(n);
            assert_eq!(s.status, StatusKind::Failed);
            assert_eq!(s.errors, vec![(131047, "Re-engagement message".to_owned())]);
            assert!(s.is_reengagement_failure());
            assert_eq!(s.biz_opaque_callback_data.as_deref(), Some("outbox:42"));
        },
    },
    Row {
        behaviour: "a deleted status is ignored",
        fixture: "status_deleted.json",
        check: |n| {
            assert!(n.statuses.is_empty());
            assert_eq!(
                n.ignored,
                vec![Ignored::OtherStatus {
                    status: "deleted".into()
                }]
            );
        },
    },
    Row {
        behaviour: "a sender with only a business-scoped user id is that id, with no phone hint",
        fixture: "bsuid_text.json",
        check: |n| {
            let m = only(n);
            assert_eq!(m.sender, "US.13491208655302741918");
            assert_eq!(m.hints.phone, None);
            assert_eq!(m.hints.name.as_deref(), Some("Sheena Nelson"));
            assert_eq!(
                m.body,
                Body::Text {
                    text: "Hello World".into()
                }
            );
        },
    },
    Row {
        behaviour: "every entry, change and message of a batch is read, in order",
        fixture: "batched_two_entries.json",
        check: |n| {
            let got: Vec<(&str, &str, &Body)> = n
                .messages
                .iter()
                .map(|m| (m.sender.as_str(), m.provider_id.as_str(), &m.body))
                .collect();
            let text = |t: &str| Body::Text { text: t.into() };
            assert_eq!(
                got,
                vec![
                    ("919876543210", "wamid.A1", &text("one")),
                    ("919876543210", "wamid.A2", &text("two")),
                    ("919812345678", "wamid.B1", &text("three")),
                ]
            );
            assert_eq!(n.messages[2].hints.name.as_deref(), Some("Asha"));
            assert_eq!(n.statuses.len(), 1);
            assert!(n.ignored.is_empty());
        },
    },
    Row {
        behaviour: "a change of another field is ignored by name",
        fixture: "unknown_field.json",
        check: |n| {
            assert!(n.messages.is_empty() && n.statuses.is_empty());
            assert_eq!(
                n.ignored,
                vec![Ignored::OtherField {
                    field: "account_update".into()
                }]
            );
        },
    },
    Row {
        behaviour: "a notification for another object is ignored",
        fixture: "not_whatsapp_object.json",
        check: |n| {
            assert!(n.messages.is_empty());
            assert_eq!(
                n.ignored,
                vec![Ignored::NotWhatsapp {
                    object: "page".into()
                }]
            );
        },
    },
];

#[test]
fn every_fixture_parses_as_described() {
    let mut failures = Vec::new();
    for row in ROWS {
        let n = parsed(row.fixture);
        if let Err(e) = std::panic::catch_unwind(|| (row.check)(&n)) {
            let msg = e.downcast_ref::<String>().cloned().unwrap_or_default();
            failures.push(format!("{} ({}): {msg}", row.behaviour, row.fixture));
        }
    }
    assert!(
        failures.is_empty(),
        "{} rows failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn every_fixture_file_has_a_row() {
    let dir = format!("{}/tests/testdata", env!("CARGO_MANIFEST_DIR"));
    let http_only = ["malformed.json", "not_an_object.json"];
    for entry in std::fs::read_dir(dir).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        assert!(
            ROWS.iter().any(|r| r.fixture == name) || http_only.contains(&name.as_str()),
            "{name} has no test row"
        );
    }
}

#[test]
fn malformed_json_is_a_parse_error_with_a_position_only() {
    let err = parse(&fixture("malformed.json")).unwrap_err();
    assert!(matches!(err, ParseError::Json { .. }), "{err:?}");
    assert!(!err.to_string().contains("whatsapp"));
    assert_eq!(
        parse(&fixture("not_an_object.json")).unwrap_err(),
        ParseError::NotAnObject
    );
    assert!(parse(b"\xff\xfe").is_err());
    assert!(parse(b"").is_err());
}

#[test]
fn odd_shapes_are_ignored_not_fatal() {
    let n = parse(br#"{"object":"whatsapp_business_account","entry":[42,{"changes":[7,{"field":"messages"},{"field":"messages","value":{"messages":["x",{"from":"91","type":"text","text":{"body":"no id"}}],"statuses":[{"status":"sent"}]}}]}]}"#).unwrap();
    assert!(n.messages.is_empty() && n.statuses.is_empty());
    assert_eq!(
        n.ignored,
        vec![
            Ignored::MalformedEntry,
            Ignored::MalformedEntry,
            Ignored::MalformedValue,
            Ignored::MalformedMessage,
            Ignored::MessageWithoutId,
            Ignored::StatusWithoutId,
        ]
    );
    // No reason's text carries what the citizen sent.
    assert!(n.ignored.iter().all(|i| !i.to_string().contains("no id")));
}

/// A key given twice counts once, with its last value, as in most JSON readers: the
/// notification is still read, including the message that repeated a key of its own.
#[test]
fn a_repeated_key_does_not_lose_the_notification() {
    let n = parse(br#"{"object":"whatsapp_business_account","object":"whatsapp_business_account","entry":[{"id":"1","changes":[{"field":"messages","value":{"messages":[{"from":"919876543210","id":"wamid.r1","id":"wamid.r2","timestamp":"1749416383","type":"text","text":{"body":"hi"}}]}}]}]}"#).unwrap();
    assert_eq!(n.messages.len(), 1, "{:?}", n.ignored);
    assert_eq!(n.messages[0].provider_id, "wamid.r2");
    // Only the message repeats a key: the rest of the body reads directly.
    let n = parse(br#"{"object":"whatsapp_business_account","entry":[{"id":"1","changes":[{"field":"messages","value":{"messages":[{"from":"919876543210","id":"wamid.r1","id":"wamid.r3","timestamp":"1749416383","type":"text","text":{"body":"hi"}}]}}]}]}"#).unwrap();
    assert_eq!(n.messages.len(), 1, "{:?}", n.ignored);
    assert_eq!(n.messages[0].provider_id, "wamid.r3");
}

// ---- HTTP ---------------------------------------------------------------------------------

#[derive(Default)]
struct RecordingSink {
    messages: Mutex<Vec<Inbound>>,
    statuses: Mutex<Vec<DeliveryStatus>>,
    fail: AtomicBool,
}

#[async_trait]
impl WhatsappSink for RecordingSink {
    async fn accept(&self, messages: Vec<Inbound>) -> Result<(), SinkError> {
        if self.fail.load(Ordering::SeqCst) {
            return Err(SinkError::new("database unavailable"));
        }
        self.messages.lock().unwrap().extend(messages);
        Ok(())
    }

    async fn statuses(&self, statuses: Vec<DeliveryStatus>) -> Result<(), SinkError> {
        if self.fail.load(Ordering::SeqCst) {
            return Err(SinkError::new("database unavailable"));
        }
        self.statuses.lock().unwrap().extend(statuses);
        Ok(())
    }
}

fn post(body: Vec<u8>, signature: Option<String>) -> Request<HttpBody> {
    let mut req =
        Request::post("/webhook/whatsapp").header(header::CONTENT_TYPE, "application/json");
    if let Some(sig) = signature {
        req = req.header("X-Hub-Signature-256", sig);
    }
    req.body(HttpBody::from(body)).unwrap()
}

fn signed(name: &str) -> Request<HttpBody> {
    let body = fixture(name);
    let sig = sign(SECRET.as_bytes(), &body);
    post(body, Some(sig))
}

fn get(query: &str) -> Request<HttpBody> {
    Request::get(format!("/webhook/whatsapp?{query}"))
        .body(HttpBody::empty())
        .unwrap()
}

/// Sends the requests in order to one router; returns the last status and body.
async fn call(
    sink: &Arc<RecordingSink>,
    requests: Vec<Request<HttpBody>>,
) -> (StatusCode, String, Option<String>) {
    let app = router(WebhookConfig::new(SECRET, VERIFY), sink.clone());
    let mut last = None;
    for req in requests {
        let resp = app.clone().oneshot(req).await.unwrap();
        let status = resp.status();
        let ctype = resp
            .headers()
            .get(header::CONTENT_TYPE)
            .map(|v| v.to_str().unwrap().to_owned());
        let body = String::from_utf8(
            resp.into_body()
                .collect()
                .await
                .unwrap()
                .to_bytes()
                .to_vec(),
        )
        .unwrap();
        last = Some((status, body, ctype));
    }
    last.expect("at least one request")
}

struct HttpRow {
    behaviour: &'static str,
    requests: fn() -> Vec<Request<HttpBody>>,
    sink_fails: bool,
    status: StatusCode,
    /// The response body, when it matters.
    body: Option<&'static str>,
    stored_messages: usize,
    stored_statuses: usize,
}

fn http_rows() -> Vec<HttpRow> {
    vec![
        HttpRow {
            behaviour: "a handshake with the right token echoes the challenge as plain text",
            requests: || {
                vec![get(
                    "hub.mode=subscribe&hub.verify_token=verify-me&hub.challenge=1158201444",
                )]
            },
            sink_fails: false,
            status: StatusCode::OK,
            body: Some("1158201444"),
            stored_messages: 0,
            stored_statuses: 0,
        },
        HttpRow {
            behaviour: "a non-numeric challenge is echoed exactly, not parsed",
            requests: || {
                vec![get(
                    "hub.mode=subscribe&hub.challenge=00ab%20c&hub.verify_token=verify-me",
                )]
            },
            sink_fails: false,
            status: StatusCode::OK,
            body: Some("00ab c"),
            stored_messages: 0,
            stored_statuses: 0,
        },
        HttpRow {
            behaviour: "a handshake with a wrong token is forbidden",
            requests: || {
                vec![get(
                    "hub.mode=subscribe&hub.verify_token=guess&hub.challenge=1158201444",
                )]
            },
            sink_fails: false,
            status: StatusCode::FORBIDDEN,
            body: None,
            stored_messages: 0,
            stored_statuses: 0,
        },
        HttpRow {
            behaviour: "a handshake with another mode is forbidden",
            requests: || {
                vec![get(
                    "hub.mode=unsubscribe&hub.verify_token=verify-me&hub.challenge=1",
                )]
            },
            sink_fails: false,
            status: StatusCode::FORBIDDEN,
            body: None,
            stored_messages: 0,
            stored_statuses: 0,
        },
        HttpRow {
            behaviour: "a handshake without parameters is forbidden",
            requests: || {
                vec![
                    Request::get("/webhook/whatsapp")
                        .body(HttpBody::empty())
                        .unwrap(),
                ]
            },
            sink_fails: false,
            status: StatusCode::FORBIDDEN,
            body: None,
            stored_messages: 0,
            stored_statuses: 0,
        },
        HttpRow {
            behaviour: "a correctly signed message is stored before the 200",
            requests: || vec![signed("text.json")],
            sink_fails: false,
            status: StatusCode::OK,
            body: None,
            stored_messages: 1,
            stored_statuses: 0,
        },
        HttpRow {
            behaviour: "an uppercase-hex signature is accepted",
            requests: || {
                let body = fixture("text.json");
                let sig = sign(SECRET.as_bytes(), &body)
                    .to_uppercase()
                    .replace("SHA256=", "sha256=");
                vec![post(body, Some(sig))]
            },
            sink_fails: false,
            status: StatusCode::OK,
            body: None,
            stored_messages: 1,
            stored_statuses: 0,
        },
        HttpRow {
            behaviour: "a notification without a signature is refused with 401 and nothing stored",
            requests: || vec![post(fixture("text.json"), None)],
            sink_fails: false,
            status: StatusCode::UNAUTHORIZED,
            body: None,
            stored_messages: 0,
            stored_statuses: 0,
        },
        HttpRow {
            behaviour: "a notification signed with another secret is refused with 401",
            requests: || {
                let body = fixture("text.json");
                let sig = sign(b"not-the-secret", &body);
                vec![post(body, Some(sig))]
            },
            sink_fails: false,
            status: StatusCode::UNAUTHORIZED,
            body: None,
            stored_messages: 0,
            stored_statuses: 0,
        },
        HttpRow {
            behaviour: "a signature over re-serialized JSON (not the raw bytes) is refused",
            requests: || {
                let body = fixture("text.json");
                let reserialized = serde_json::to_vec(
                    &serde_json::from_slice::<serde_json::Value>(&body).unwrap(),
                )
                .unwrap();
                let sig = sign(SECRET.as_bytes(), &reserialized);
                vec![post(body, Some(sig))]
            },
            sink_fails: false,
            status: StatusCode::UNAUTHORIZED,
            body: None,
            stored_messages: 0,
            stored_statuses: 0,
        },
        HttpRow {
            behaviour: "a signed body that is not JSON gets 400 with a short reason",
            requests: || vec![signed("malformed.json")],
            sink_fails: false,
            status: StatusCode::BAD_REQUEST,
            body: None,
            stored_messages: 0,
            stored_statuses: 0,
        },
        HttpRow {
            behaviour: "a malformed body with a bad signature is refused for the signature first",
            requests: || vec![post(fixture("malformed.json"), Some(sign(b"x", b"y")))],
            sink_fails: false,
            status: StatusCode::UNAUTHORIZED,
            body: None,
            stored_messages: 0,
            stored_statuses: 0,
        },
        HttpRow {
            behaviour: "a body over 4 MiB gets 413",
            requests: || {
                let body = vec![b' '; 4 * 1024 * 1024 + 1];
                let sig = sign(SECRET.as_bytes(), &body);
                vec![post(body, Some(sig))]
            },
            sink_fails: false,
            status: StatusCode::PAYLOAD_TOO_LARGE,
            body: None,
            stored_messages: 0,
            stored_statuses: 0,
        },
        HttpRow {
            behaviour: "a 3 MB batched notification is within the limit",
            requests: || {
                let mut body = fixture("batched_two_entries.json");
                body.extend(std::iter::repeat_n(b' ', 3_000_000));
                let sig = sign(SECRET.as_bytes(), &body);
                vec![post(body, Some(sig))]
            },
            sink_fails: false,
            status: StatusCode::OK,
            body: None,
            stored_messages: 3,
            stored_statuses: 1,
        },
        HttpRow {
            behaviour: "an authentic change of another field gets 200 and stores nothing",
            requests: || vec![signed("unknown_field.json")],
            sink_fails: false,
            status: StatusCode::OK,
            body: None,
            stored_messages: 0,
            stored_statuses: 0,
        },
        HttpRow {
            behaviour: "an authentic message without a sender gets 200 and stores nothing",
            requests: || vec![signed("no_sender.json")],
            sink_fails: false,
            status: StatusCode::OK,
            body: None,
            stored_messages: 0,
            stored_statuses: 0,
        },
        HttpRow {
            behaviour: "an unknown message type is stored as unsupported (the engine answers it) with 200",
            requests: || vec![signed("order.json")],
            sink_fails: false,
            status: StatusCode::OK,
            body: None,
            stored_messages: 1,
            stored_statuses: 0,
        },
        HttpRow {
            behaviour: "a store failure answers 500 so Meta retries",
            requests: || vec![signed("text.json")],
            sink_fails: true,
            status: StatusCode::INTERNAL_SERVER_ERROR,
            body: None,
            stored_messages: 0,
            stored_statuses: 0,
        },
        HttpRow {
            behaviour: "a store failure on statuses answers 500 too",
            requests: || vec![signed("status_failed_131047.json")],
            sink_fails: true,
            status: StatusCode::INTERNAL_SERVER_ERROR,
            body: None,
            stored_messages: 0,
            stored_statuses: 0,
        },
        HttpRow {
            behaviour: "statuses go to the sink",
            requests: || {
                vec![
                    signed("status_sent.json"),
                    signed("status_delivered.json"),
                    signed("status_read.json"),
                ]
            },
            sink_fails: false,
            status: StatusCode::OK,
            body: None,
            stored_messages: 0,
            stored_statuses: 3,
        },
        HttpRow {
            behaviour: "a redelivered notification is passed through again (the store deduplicates by wamid)",
            requests: || vec![signed("text.json"), signed("text.json")],
            sink_fails: false,
            status: StatusCode::OK,
            body: None,
            stored_messages: 2,
            stored_statuses: 0,
        },
    ]
}

#[tokio::test]
async fn the_webhook_routes_answer_as_described() {
    let mut failures = Vec::new();
    for row in http_rows() {
        let sink = Arc::new(RecordingSink::default());
        sink.fail.store(row.sink_fails, Ordering::SeqCst);
        let (status, body, ctype) = call(&sink, (row.requests)()).await;
        let stored = sink.messages.lock().unwrap().len();
        let statuses = sink.statuses.lock().unwrap().len();
        let mut problems = Vec::new();
        if status != row.status {
            problems.push(format!(
                "status {status} (body {body:?}), expected {}",
                row.status
            ));
        }
        if let Some(expected) = row.body {
            if body != expected {
                problems.push(format!("body {body:?}, expected {expected:?}"));
            }
            if !ctype.as_deref().unwrap_or("").starts_with("text/plain") {
                problems.push(format!("content type {ctype:?}, expected text/plain"));
            }
        }
        if stored != row.stored_messages {
            problems.push(format!(
                "{stored} messages stored, expected {}",
                row.stored_messages
            ));
        }
        if statuses != row.stored_statuses {
            problems.push(format!(
                "{statuses} statuses stored, expected {}",
                row.stored_statuses
            ));
        }
        if !problems.is_empty() {
            failures.push(format!("{}: {}", row.behaviour, problems.join("; ")));
        }
    }
    assert!(
        failures.is_empty(),
        "{} rows failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[tokio::test]
async fn a_400_reason_names_no_content() {
    let sink = Arc::new(RecordingSink::default());
    let (status, body, _) = call(&sink, vec![signed("malformed.json")]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body.starts_with("malformed JSON at line"), "{body}");
    assert!(body.len() < 80);
}

#[tokio::test]
async fn conflicting_duplicate_signature_headers_are_refused() {
    let body = fixture("text.json");
    let good = sign(SECRET.as_bytes(), &body);
    let bad = sign(SECRET.as_bytes(), b"other");
    let req = Request::post("/webhook/whatsapp")
        .header("X-Hub-Signature-256", good.clone())
        .header("X-Hub-Signature-256", bad)
        .body(HttpBody::from(body.clone()))
        .unwrap();
    let sink = Arc::new(RecordingSink::default());
    let (status, _, _) = call(&sink, vec![req]).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let req = Request::post("/webhook/whatsapp")
        .header("X-Hub-Signature-256", good.clone())
        .header("X-Hub-Signature-256", good)
        .body(HttpBody::from(body))
        .unwrap();
    let (status, _, _) = call(&sink, vec![req]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(sink.messages.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn an_empty_verify_token_or_app_secret_refuses_everything() {
    let sink: Arc<RecordingSink> = Arc::new(RecordingSink::default());
    let app = router(WebhookConfig::new("", ""), sink.clone());
    let resp = app
        .clone()
        .oneshot(get("hub.mode=subscribe&hub.verify_token=&hub.challenge=1"))
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    let body = fixture("text.json");
    let sig = sign(b"", &body);
    let resp = app.oneshot(post(body, Some(sig))).await.unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert!(sink.messages.lock().unwrap().is_empty());
}

/// A notification is read straight into its shape only when it is an object: serde would
/// fill the same struct from an array, and an array is not a notification.
#[test]
fn an_array_shaped_like_a_notification_is_still_not_an_object() {
    assert_eq!(
        parse(br#"  ["whatsapp_business_account", []]"#).unwrap_err(),
        ParseError::NotAnObject
    );
}

/// A key given twice reads as JSON objects do (the last one wins), on the direct path's
/// fallback as before it.
#[test]
fn a_repeated_key_counts_once_with_its_last_value() {
    let n = parse(br#"{"object":"page","object":"whatsapp_business_account","entry":[]}"#).unwrap();
    assert!(n.ignored.is_empty(), "{:?}", n.ignored);
    let n = parse(br#"{"object":"whatsapp_business_account","object":"page","entry":[]}"#).unwrap();
    assert!(
        matches!(n.ignored.as_slice(), [Ignored::NotWhatsapp { .. }]),
        "{:?}",
        n.ignored
    );
}
