//! A rendered reply → the `sendMessage` calls that show it on Telegram. Pure.
//!
//! Facts (shared/spec/protocol-facts.md §2.5): text is 1–4096 characters; `callback_data` is
//! 1–64 **bytes**; `request_location` / `request_contact` buttons exist only in reply keyboards
//! (private chats); a message carries one `reply_markup`, inline or reply keyboard, not both.
//!
//! Choices are always written as numbered lines too ([`Rendered::with_numbered_choices`]), so a
//! typed number works on every client, and a choice whose id cannot be a button still works.

use flows::catalog::{Rendered, RenderedChoice};
use flows::reply::Hint;
use teloxide::types::{
    ButtonRequest, InlineKeyboardButton, InlineKeyboardMarkup, KeyboardButton, KeyboardMarkup,
    KeyboardRemove, ReplyMarkup,
};
use unicode_segmentation::UnicodeSegmentation;

/// Telegram's limit on a message's text, counted here in UTF-16 code units (what Telegram
/// counts entities in), which is never fewer than characters: splitting by it is safe.
pub const MAX_TEXT_UTF16: usize = 4096;

/// Telegram's limit on `callback_data`, in bytes.
pub const MAX_CALLBACK_DATA_BYTES: usize = 64;

/// Button labels up to this many characters sit two to a row; any longer one puts every button
/// on its own row (a consistent grid reads better than a ragged one).
pub const SHORT_LABEL_CHARS: usize = 16;

/// One `sendMessage` call: the text and its optional keyboard.
#[derive(Debug, Clone, PartialEq)]
pub struct OutgoingMessage {
    pub text: String,
    pub reply_markup: Option<ReplyMarkup>,
}

/// What rendering needs beyond the reply itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderOptions {
    /// Label of the `request_location` button (the citizen's language when known).
    pub location_label: String,
    /// Label of the `request_contact` button.
    pub contact_label: String,
    /// Attach `ReplyKeyboardRemove` to messages that carry no keyboard of their own, so a
    /// "share location" keyboard does not linger once the question is answered by typing.
    /// Harmless when no reply keyboard is shown.
    pub remove_reply_keyboard: bool,
    /// Longest text per message, in UTF-16 units (tests lower it).
    pub max_text_utf16: usize,
}

impl Default for RenderOptions {
    fn default() -> Self {
        RenderOptions {
            location_label: "📍 स्थान भेजें / Send location".to_owned(),
            contact_label: "📱 अपना नंबर भेजें / Share my number".to_owned(),
            remove_reply_keyboard: true,
            max_text_utf16: MAX_TEXT_UTF16,
        }
    }
}

/// The messages that show `rendered`: usually one; several when the text is too long, and then
/// only the last carries the keyboard. Never empty unless the reply has no text and no choices.
pub fn render(rendered: &Rendered, opts: &RenderOptions) -> Vec<OutgoingMessage> {
    let text = rendered.with_numbered_choices();
    let mut parts = split_text(text.trim(), opts.max_text_utf16.max(1));
    let Some(last) = parts.pop() else {
        return Vec::new();
    };
    let remove = opts
        .remove_reply_keyboard
        .then(|| ReplyMarkup::KeyboardRemove(KeyboardRemove::new()));
    let markup = match rendered.hint {
        Some(hint) => Some(ReplyMarkup::Keyboard(request_keyboard(
            hint,
            &rendered.choices,
            opts,
        ))),
        None => inline_keyboard(&rendered.choices)
            .map(ReplyMarkup::InlineKeyboard)
            .or(remove.clone()),
    };
    let mut out: Vec<OutgoingMessage> = parts
        .into_iter()
        .map(|text| OutgoingMessage {
            text,
            reply_markup: remove.clone(),
        })
        .collect();
    out.push(OutgoingMessage {
        text: last,
        reply_markup: markup,
    });
    out
}

/// The inline keyboard for `choices`: one button per choice whose id fits `callback_data`
/// (ASCII by design; a longer or empty id gets no button, its numbered line still works), the
/// button text being the short label. `None` when no choice can be a button.
pub fn inline_keyboard(choices: &[RenderedChoice]) -> Option<InlineKeyboardMarkup> {
    let buttons: Vec<InlineKeyboardButton> = choices
        .iter()
        .filter(|c| callback_data_fits(&c.id))
        .map(|c| InlineKeyboardButton::callback(button_label(c), c.id.clone()))
        .collect();
    if buttons.is_empty() {
        return None;
    }
    let all_short = buttons
        .iter()
        .all(|b| b.text.chars().count() <= SHORT_LABEL_CHARS);
    let per_row = if all_short { 2 } else { 1 };
    let rows: Vec<Vec<InlineKeyboardButton>> = buttons
        .chunks(per_row)
        .map(<[InlineKeyboardButton]>::to_vec)
        .collect();
    Some(InlineKeyboardMarkup::new(rows))
}

/// Whether `id` can be sent as `callback_data` (1–64 bytes).
pub fn callback_data_fits(id: &str) -> bool {
    !id.is_empty() && id.len() <= MAX_CALLBACK_DATA_BYTES
}

fn button_label(c: &RenderedChoice) -> String {
    if c.short.trim().is_empty() {
        c.full.clone()
    } else {
        c.short.clone()
    }
}

/// A one-time reply keyboard with the requested button first. When the reply also offers
/// choices they become plain text buttons below it (a message has only one keyboard); tapping
/// one sends its full label, which the engine matches like a typed label.
fn request_keyboard(
    hint: Hint,
    choices: &[RenderedChoice],
    opts: &RenderOptions,
) -> KeyboardMarkup {
    let request = match hint {
        Hint::AskLocation => {
            KeyboardButton::new(&opts.location_label).request(ButtonRequest::Location)
        }
        Hint::AskContact => {
            KeyboardButton::new(&opts.contact_label).request(ButtonRequest::Contact)
        }
    };
    let mut rows = vec![vec![request]];
    rows.extend(choices.iter().map(|c| vec![KeyboardButton::new(&c.full)]));
    KeyboardMarkup::new(rows)
        .one_time_keyboard()
        .resize_keyboard()
}

/// Splits `text` into pieces of at most `max_utf16` UTF-16 units, preferring a paragraph
/// break, then a line break, then a space, and cutting inside a word only when one word is
/// longer than a message, then between grapheme clusters (never inside a character or a
/// Devanagari conjunct). Whitespace at a split is dropped.
pub fn split_text(text: &str, max_utf16: usize) -> Vec<String> {
    let max_utf16 = max_utf16.max(1);
    let mut out = Vec::new();
    let mut rest = text;
    // A char never takes more UTF-16 units than UTF-8 bytes: a text within the limit in
    // bytes (almost every reply) is within it in units without counting them.
    while rest.len() > max_utf16 && utf16_len(rest) > max_utf16 {
        let fit = longest_fitting_prefix(rest, max_utf16);
        let window = &rest[..fit];
        let half = fit / 2;
        let cut = window
            .rfind("\n\n")
            .filter(|&i| i >= half)
            .or_else(|| window.rfind('\n').filter(|&i| i >= half))
            .or_else(|| window.rfind(char::is_whitespace).filter(|&i| i > 0))
            .unwrap_or_else(|| grapheme_cut(rest, fit));
        let piece = rest[..cut].trim_end();
        if !piece.is_empty() {
            out.push(piece.to_owned());
        }
        rest = rest[cut..].trim_start();
    }
    if !rest.is_empty() {
        out.push(rest.to_owned());
    }
    out
}

fn utf16_len(s: &str) -> usize {
    s.chars().map(char::len_utf16).sum()
}

/// The byte length of the longest prefix of `s` within `max_utf16` units (a char boundary).
fn longest_fitting_prefix(s: &str, max_utf16: usize) -> usize {
    let mut units = 0;
    let mut end = 0;
    for (i, c) in s.char_indices() {
        units += c.len_utf16();
        if units > max_utf16 {
            break;
        }
        end = i + c.len_utf8();
    }
    end
}

/// The last grapheme boundary of `s` at or before byte `fit`, or the char boundary `fit` when a
/// single grapheme is longer than a message (never in practice).
fn grapheme_cut(s: &str, fit: usize) -> usize {
    s.grapheme_indices(true)
        .map(|(i, _)| i)
        .take_while(|&i| i <= fit)
        .filter(|&i| i > 0)
        .last()
        .unwrap_or(fit.max(s.chars().next().map_or(0, char::len_utf8)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn choice(id: &str, short: &str, full: &str) -> RenderedChoice {
        RenderedChoice {
            id: id.into(),
            short: short.into(),
            full: full.into(),
        }
    }

    fn inline(m: &OutgoingMessage) -> &InlineKeyboardMarkup {
        match &m.reply_markup {
            Some(ReplyMarkup::InlineKeyboard(k)) => k,
            other => panic!("expected an inline keyboard, got {other:?}"),
        }
    }

    #[test]
    fn choices_become_numbered_lines_and_inline_buttons_two_to_a_row_when_short() {
        let r = Rendered {
            body: "Choose".into(),
            choices: vec![
                choice("lang:hi", "हिन्दी", "हिन्दी"),
                choice("lang:en", "English", "English"),
            ],
            hint: None,
        };
        let out = render(&r, &RenderOptions::default());
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].text, "Choose\n\n1. हिन्दी\n2. English");
        let kb = inline(&out[0]);
        assert_eq!(kb.inline_keyboard.len(), 1);
        assert_eq!(kb.inline_keyboard[0].len(), 2);
    }

    #[test]
    fn a_long_label_puts_every_button_on_its_own_row() {
        let r = Rendered {
            body: "Menu".into(),
            choices: vec![
                choice("a", "File a complaint about it", "File a complaint"),
                choice("b", "Help", "Help"),
            ],
            hint: None,
        };
        let kb = inline(&render(&r, &RenderOptions::default())[0]).clone();
        assert_eq!(
            kb.inline_keyboard.iter().map(Vec::len).collect::<Vec<_>>(),
            vec![1, 1]
        );
    }

    #[test]
    fn an_id_longer_than_64_bytes_gets_no_button_but_keeps_its_numbered_line() {
        let long = "x".repeat(65);
        let r = Rendered {
            body: "Pick".into(),
            choices: vec![choice(&long, "Long", "Long one"), choice("ok", "Ok", "Ok")],
            hint: None,
        };
        let out = render(&r, &RenderOptions::default());
        assert!(out[0].text.contains("1. Long one"));
        let kb = inline(&out[0]);
        let ids: Vec<_> = kb
            .inline_keyboard
            .concat()
            .into_iter()
            .map(|b| b.text)
            .collect();
        assert_eq!(ids, vec!["Ok"]);
    }

    #[test]
    fn a_location_hint_offers_a_one_time_request_location_keyboard() {
        let r = Rendered {
            body: "Where?".into(),
            choices: vec![],
            hint: Some(Hint::AskLocation),
        };
        let out = render(&r, &RenderOptions::default());
        let json = serde_json::to_value(&out[0].reply_markup).unwrap();
        assert_eq!(json["keyboard"][0][0]["request_location"], true);
        assert_eq!(json["one_time_keyboard"], true);
        assert_eq!(json["resize_keyboard"], true);
    }

    #[test]
    fn a_plain_message_removes_a_lingering_reply_keyboard() {
        let r = Rendered {
            body: "Thanks".into(),
            choices: vec![],
            hint: None,
        };
        let out = render(&r, &RenderOptions::default());
        let json = serde_json::to_value(&out[0].reply_markup).unwrap();
        assert_eq!(json["remove_keyboard"], true);
    }

    #[test]
    fn splitting_prefers_line_breaks_and_never_exceeds_the_limit() {
        let text = format!("{}\n{}", "a".repeat(30), "b".repeat(30));
        assert_eq!(split_text(&text, 40), vec!["a".repeat(30), "b".repeat(30)]);
        let words = "नमस्ते दुनिया ".repeat(50);
        for part in split_text(&words, 37) {
            assert!(utf16_len(&part) <= 37);
            assert!(
                part.starts_with("नमस्ते") || part.starts_with("दुनिया"),
                "{part}"
            );
        }
    }

    #[test]
    fn a_word_longer_than_a_message_is_cut_between_graphemes() {
        let word = "क्षि".repeat(20); // conjuncts: each grapheme is several code points
        let parts = split_text(&word, 10);
        assert_eq!(parts.concat(), word);
        for p in &parts {
            assert!(utf16_len(p) <= 10);
            // Never starts with a combining sign (virama, vowel sign) torn from its consonant.
            assert!(!p.starts_with(['\u{94D}', '\u{93F}']), "{p:?}");
        }
    }
}
