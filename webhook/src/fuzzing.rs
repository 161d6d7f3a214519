//! Fuzz checks (feature `fuzzing`): the cargo-fuzz target `whatsapp_parse` in `fuzz/` and
//! `tests/regressions.rs` (over the kept inputs in `tests/regressions/`) run [`whatsapp`], so a
//! crash once found stays fixed in the ordinary test suite.

use flows::catalog::{Rendered, RenderedChoice};
use flows::message::{Body, Inbound};
use flows::reply::Hint;
use serde_json::Value;

use crate::inbound;
use crate::render::{self, Recipient};
use crate::signature;

const SECRET: &[u8] = b"fuzz-app-secret";

/// One webhook POST body, as the route sees it after the signature: the signature check on
/// arbitrary header values, the parse, the stored form of every message, and a reply that
/// echoes each text rendered for WhatsApp within Meta's limits.
pub fn whatsapp(data: &[u8]) {
    // The body doubles as a (usually malformed) signature header value.
    let _ = signature::verify(SECRET, data, [data]);
    let sig = signature::sign(SECRET, data);
    assert_eq!(signature::verify(SECRET, data, [sig.as_bytes()]), Ok(()));

    let Ok(notification) = inbound::parse(data) else {
        return;
    };
    for why in &notification.ignored {
        // Names are cut to 48 characters, each escaped to at most 10 (`\u{10ffff}`).
        let line = why.to_string();
        assert!(
            line.chars().count() <= 600,
            "ignored reason too long: {line}"
        );
    }
    for status in &notification.statuses {
        assert!(!status.provider_id.trim().is_empty(), "status without id");
    }
    for m in &notification.messages {
        check_message(m, data.len());
    }
}

fn check_message(m: &Inbound, salt: usize) {
    assert!(!m.sender.is_empty() && !m.provider_id.is_empty());
    // The inbox stores the message as JSON and the runtime reads it back.
    let json = serde_json::to_string(m).expect("inbound serializes");
    let back: Inbound = serde_json::from_str(&json).expect("stored inbound reads back");
    assert_eq!(&back, m, "inbound changed through the inbox");
    if let Body::Location {
        latitude,
        longitude,
        ..
    } = m.body
    {
        assert!((-90.0..=90.0).contains(&latitude) && (-180.0..=180.0).contains(&longitude));
    }
    let (text, choice) = match &m.body {
        Body::Text { text } => (text.clone(), None),
        Body::Choice { id } => (String::new(), Some(id.clone())),
        Body::Media { caption, .. } => (caption.clone().unwrap_or_default(), None),
        Body::Unsupported { what } => (what.clone(), None),
        Body::Contact { phone, .. } => (phone.clone(), None),
        Body::Location { name, .. } => (name.clone().unwrap_or_default(), None),
    };
    let mut choices: Vec<RenderedChoice> = Vec::new();
    if let Some(id) = choice {
        for i in 0..(salt % 13) {
            choices.push(RenderedChoice {
                id: format!("{id}{i}"),
                short: id.clone(),
                full: format!("{id} {text}"),
            });
        }
    }
    let hint = match salt % 3 {
        0 => Some(Hint::AskLocation),
        _ => None,
    };
    let rendered = Rendered {
        body: text,
        choices,
        hint,
    };
    let to = Recipient::for_sender(&m.sender);
    for body in render::render(&to, &rendered, "1") {
        check_request(&body);
    }
}

/// A Graph API message body keeps within Meta's documented limits.
pub fn check_request(body: &Value) {
    let w = |v: &Value| v.as_str().map(render::width).unwrap_or(0);
    match body["type"].as_str() {
        Some("text") => {
            let n = w(&body["text"]["body"]);
            assert!((1..=render::TEXT_MAX).contains(&n), "text body of {n}");
        }
        Some("interactive") => {
            let i = &body["interactive"];
            let n = w(&i["body"]["text"]);
            assert!(
                (1..=render::BUTTON_BODY_MAX).contains(&n),
                "interactive body of {n}"
            );
            for b in i["action"]["buttons"].as_array().into_iter().flatten() {
                let t = w(&b["reply"]["title"]);
                assert!(
                    (1..=render::BUTTON_TITLE_MAX).contains(&t),
                    "button title {t}"
                );
            }
            for s in i["action"]["sections"].as_array().into_iter().flatten() {
                for r in s["rows"].as_array().into_iter().flatten() {
                    let t = w(&r["title"]);
                    assert!((1..=render::ROW_TITLE_MAX).contains(&t), "row title {t}");
                    assert!(w(&r["description"]) <= render::ROW_DESCRIPTION_MAX);
                }
            }
        }
        other => panic!("unexpected message type {other:?}"),
    }
}
