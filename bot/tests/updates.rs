//! Raw Telegram updates (fixtures in `testdata/`, real payload shapes from protocol-facts §2.4)
//! → the events Seva acts on. One row per behaviour, named as a sentence.

use bot::inbound::{CallbackInfo, TelegramEvent, parse_update, translate};
use flows::Lang;
use flows::message::{Body, Channel, Inbound, MediaKind, SenderHints};

enum Expect {
    Event(Box<TelegramEvent>),
    Ignored,
}

fn event(e: TelegramEvent) -> Expect {
    Expect::Event(Box::new(e))
}

fn fixture(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/testdata/{name}.json", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn from_asha(update_id: u32, sent_at: i64, body: Body, lang: Option<Lang>) -> Inbound {
    Inbound {
        channel: Channel::Telegram,
        sender: "111".into(),
        provider_id: update_id.to_string(),
        sent_at,
        body,
        hints: SenderHints {
            lang,
            phone: None,
            name: Some("Asha".into()),
        },
    }
}

fn message(update_id: u32, sent_at: i64, body: Body) -> Expect {
    event(TelegramEvent::Message(
        from_asha(update_id, sent_at, body, None),
        None,
    ))
}

fn media(kind: MediaKind, file_id: &str, mime: Option<&str>, caption: Option<&str>) -> Body {
    Body::Media {
        kind,
        file_id: file_id.into(),
        mime: mime.map(Into::into),
        caption: caption.map(Into::into),
    }
}

fn rows() -> Vec<(&'static str, &'static str, Expect)> {
    vec![
        (
            "a private text becomes a text message with the sender's language as a hint",
            "text",
            event(TelegramEvent::Message(
                Inbound {
                    channel: Channel::Telegram,
                    sender: "218485655".into(),
                    provider_id: "892252934".into(),
                    sent_at: 1569518342,
                    body: Body::Text {
                        text: "mera phone kho gaya".into(),
                    },
                    hints: SenderHints {
                        lang: Some(Lang::Hi),
                        phone: None,
                        name: Some("Asha Kumari".into()),
                    },
                },
                None,
            )),
        ),
        (
            "a /start deep link stays text for the engine to parse, and en-GB hints English",
            "command_start_deeplink",
            event(TelegramEvent::Message(
                from_asha(
                    10001,
                    1700000000,
                    Body::Text {
                        text: "/start status_C-7K3Q-9XM4-R".into(),
                    },
                    Some(Lang::En),
                ),
                None,
            )),
        ),
        (
            "a command picked from a menu loses the bot's name",
            "command_with_bot_name",
            message(
                10011,
                1700000010,
                Body::Text {
                    text: "/help".into(),
                },
            ),
        ),
        (
            "a button tap becomes a choice with the callback to answer and the keyboard to remove",
            "callback_query",
            event(TelegramEvent::Message(
                from_asha(
                    10005,
                    0,
                    Body::Choice {
                        id: "lang:hi".into(),
                    },
                    Some(Lang::Hi),
                ),
                Some(CallbackInfo {
                    callback_query_id: "4382bfdwdsb323b2d9".into(),
                    chat_id: 111,
                    message_id: Some(5),
                }),
            )),
        ),
        (
            "a tap on a message too old to read is still a choice, for the engine to call stale",
            "callback_query_inaccessible_message",
            event(TelegramEvent::Message(
                from_asha(
                    10006,
                    0,
                    Body::Choice {
                        id: "menu:lost".into(),
                    },
                    None,
                ),
                Some(CallbackInfo {
                    callback_query_id: "old-press-1".into(),
                    chat_id: 111,
                    message_id: Some(3),
                }),
            )),
        ),
        (
            "a shared location becomes a location",
            "location",
            message(
                10003,
                1700000002,
                Body::Location {
                    latitude: 28.6139,
                    longitude: 77.209,
                    name: None,
                    address: None,
                },
            ),
        ),
        (
            "a chosen place keeps its name and address",
            "venue",
            message(
                10013,
                1700000012,
                Body::Location {
                    latitude: 25.6093,
                    longitude: 85.1376,
                    name: Some("Gandhi Maidan".into()),
                    address: Some("Patna, Bihar".into()),
                },
            ),
        ),
        (
            "the citizen's own contact is marked own and gains a plus",
            "contact_own",
            message(
                10002,
                1700000001,
                Body::Contact {
                    phone: "+919876543210".into(),
                    own: true,
                },
            ),
        ),
        (
            "another person's contact is not the citizen's own number",
            "contact_other_user",
            message(
                10007,
                1700000006,
                Body::Contact {
                    phone: "+919123456789".into(),
                    own: false,
                },
            ),
        ),
        (
            "a photo keeps its largest size and caption",
            "photo",
            message(
                10004,
                1700000003,
                media(
                    MediaKind::Photo,
                    "AgAC-large",
                    Some("image/jpeg"),
                    Some("bill"),
                ),
            ),
        ),
        (
            "a document keeps its file id, type and caption",
            "document",
            message(
                10008,
                1700000007,
                media(
                    MediaKind::Document,
                    "BQAC-doc",
                    Some("application/pdf"),
                    Some("FIR copy"),
                ),
            ),
        ),
        (
            "a voice note is media of kind voice",
            "voice",
            message(
                10009,
                1700000008,
                media(MediaKind::Voice, "AwAC-voice", Some("audio/ogg"), None),
            ),
        ),
        (
            "a video is media of kind video",
            "video",
            message(
                10014,
                1700000013,
                media(MediaKind::Video, "BAAC-video", Some("video/mp4"), None),
            ),
        ),
        (
            "a sticker is media of kind sticker",
            "sticker",
            message(
                10010,
                1700000009,
                media(MediaKind::Sticker, "CAAC-sticker", None, None),
            ),
        ),
        (
            "a dice throw is unsupported, named",
            "dice",
            message(
                10015,
                1700000014,
                Body::Unsupported {
                    what: "dice".into(),
                },
            ),
        ),
        (
            "blocking the bot makes the citizen unreachable",
            "my_chat_member_kicked",
            event(TelegramEvent::Reachability {
                update_id: 10020,
                sender: "111".into(),
                reachable: false,
                at: 1644677726,
            }),
        ),
        (
            "unblocking the bot makes the citizen reachable again",
            "my_chat_member_member",
            event(TelegramEvent::Reachability {
                update_id: 10021,
                sender: "111".into(),
                reachable: true,
                at: 1644677800,
            }),
        ),
        (
            "a message in a group asks for the polite private-chat line",
            "group_message",
            event(TelegramEvent::GroupChat {
                update_id: 10030,
                chat_id: -1001234567890,
                callback: None,
            }),
        ),
        (
            "a button press in a group asks for the polite line and still gets its answer",
            "callback_in_group",
            event(TelegramEvent::GroupChat {
                update_id: 10032,
                chat_id: -1001234567890,
                callback: Some(CallbackInfo {
                    callback_query_id: "group-press-1".into(),
                    chat_id: -1001234567890,
                    message_id: Some(32),
                }),
            }),
        ),
        (
            "a channel post asks for the polite private-chat line",
            "channel_post",
            event(TelegramEvent::GroupChat {
                update_id: 10031,
                chat_id: -1009876543210,
                callback: None,
            }),
        ),
        (
            "an edited message is ignored",
            "edited_message",
            Expect::Ignored,
        ),
        (
            "an update of an unknown kind is ignored but keeps its id",
            "unknown_kind",
            Expect::Ignored,
        ),
        (
            "a message teloxide cannot read is ignored but keeps its id",
            "malformed_message",
            Expect::Ignored,
        ),
    ]
}

#[test]
fn updates_become_events() {
    let mut failures = Vec::new();
    for (name, file, expect) in rows() {
        let update = match parse_update(&fixture(file)) {
            Ok(u) => u,
            Err(e) => {
                failures.push(format!("{name} ({file}): does not parse: {e}"));
                continue;
            }
        };
        let events = translate(&update);
        let ok = match (&expect, events.as_slice()) {
            (Expect::Event(want), [got]) => **want == *got,
            (Expect::Ignored, [TelegramEvent::Ignored { update_id, .. }]) => {
                *update_id == update.id.0
            }
            _ => false,
        };
        if !ok {
            let want = match &expect {
                Expect::Event(e) => format!("{e:?}"),
                Expect::Ignored => "Ignored".into(),
            };
            failures.push(format!(
                "{name} ({file}):\n   want {want}\n   got  {events:?}"
            ));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[test]
fn json_that_is_not_an_update_is_an_error() {
    assert!(parse_update(b"{not json").is_err());
    assert!(parse_update(br#"{"message": {}}"#).is_err(), "no update_id");
    assert!(parse_update(b"[]").is_err());
}

#[test]
fn every_event_names_its_update() {
    for file in [
        "text",
        "callback_query",
        "my_chat_member_kicked",
        "group_message",
        "edited_message",
    ] {
        let update = parse_update(&fixture(file)).unwrap();
        for event in translate(&update) {
            assert_eq!(event.update_id(), update.id.0, "{file}");
        }
    }
}
