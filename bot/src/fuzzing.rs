//! Fuzz checks (feature `fuzzing`): the cargo-fuzz target `telegram_update` in `fuzz/` and
//! `tests/regressions.rs` (over the kept inputs in `tests/regressions/`) run [`telegram`], so a
//! crash once found stays fixed in the ordinary test suite.

use flows::catalog::{Rendered, RenderedChoice};
use flows::message::{Body, Inbound};
use flows::reply::Hint;
use teloxide::types::ReplyMarkup;

use crate::inbound::{TelegramEvent, parse_update, read_update, translate};
use crate::render::{self, MAX_CALLBACK_DATA_BYTES, RenderOptions};

/// One webhook body or `getUpdates` element: parse, translate, the stored form of every
/// message, and a reply echoing it rendered within Telegram's limits.
pub fn telegram(data: &[u8]) {
    let Ok(update) = parse_update(data) else {
        return;
    };
    let events = translate(&update);
    assert_eq!(events.len(), 1, "one event per update");
    assert_eq!(
        read_update(data).ok().as_ref(),
        Some(&events),
        "the webhook's short cut read the update differently"
    );
    for event in &events {
        assert_eq!(event.update_id(), update.id.0, "event lost its update_id");
        if let TelegramEvent::Ignored { reason, .. } = event {
            assert!(
                reason.chars().count() <= 80,
                "ignored reason too long: {reason}"
            );
        }
        if let TelegramEvent::Message(m, _) = event {
            check_message(m, data.len());
        }
    }
}

fn check_message(m: &Inbound, salt: usize) {
    assert!(!m.sender.is_empty() && !m.provider_id.is_empty());
    let json = serde_json::to_string(m).expect("inbound serializes");
    let back: Inbound = serde_json::from_str(&json).expect("stored inbound reads back");
    assert_eq!(&back, m, "inbound changed through the inbox");
    let (text, choice) = match &m.body {
        Body::Text { text } => (text.clone(), None),
        Body::Choice { id } => (String::new(), Some(id.clone())),
        Body::Media { caption, .. } => (caption.clone().unwrap_or_default(), None),
        Body::Unsupported { what } => (what.clone(), None),
        Body::Contact { phone, .. } => (phone.clone(), None),
        Body::Location { name, .. } => (name.clone().unwrap_or_default(), None),
    };
    let choices: Vec<RenderedChoice> = choice
        .into_iter()
        .map(|id| RenderedChoice {
            id: id.clone(),
            short: id.clone(),
            full: id,
        })
        .collect();
    let hint = match salt % 3 {
        0 => Some(Hint::AskContact),
        1 => Some(Hint::AskLocation),
        _ => None,
    };
    let rendered = Rendered {
        body: text,
        choices,
        hint,
    };
    let max = 2 + salt % 4096;
    let opts = RenderOptions {
        max_text_utf16: max,
        ..RenderOptions::default()
    };
    for out in render::render(&rendered, &opts) {
        let n: usize = out.text.chars().map(char::len_utf16).sum();
        assert!(n <= max, "a message of {n} UTF-16 units, limit {max}");
        if let Some(ReplyMarkup::InlineKeyboard(k)) = &out.reply_markup {
            for b in k.inline_keyboard.iter().flatten() {
                if let teloxide::types::InlineKeyboardButtonKind::CallbackData(d) = &b.kind {
                    assert!(
                        !d.is_empty() && d.len() <= MAX_CALLBACK_DATA_BYTES,
                        "callback_data of {} bytes",
                        d.len()
                    );
                }
            }
        }
    }
}
