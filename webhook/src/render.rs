//! Shapes the engine's rendered replies into Graph API `POST /{phone-number-id}/messages`
//! request bodies. Pure: the same reply always gives the same JSON.
//!
//! * no choices → `type: text` (body ≤ 4096; longer text is split on line, then word, then
//!   character boundaries into several messages);
//! * 1–3 choices → interactive reply `button`s;
//! * 4–10 choices → an interactive `list` (one section);
//! * more than 10 → a list of the first 9 and a "more" row (see [`MORE_PREFIX`]);
//! * [`Hint::AskLocation`] → `location_request_message` (the user gets a "Send location" button);
//! * [`Hint::AskContact`] → nothing special: WhatsApp already tells us the sender's number.
//!
//! The body text always carries the choices as numbered lines too
//! ([`Rendered::with_numbered_choices`]), so a typed number works wherever the native widget
//! does not. Text is shortened on grapheme-cluster boundaries (a Devanagari conjunct is never
//! cut) with `…`; choice ids are never changed — a reply whose ids WhatsApp would refuse is
//! sent as plain text with numbered lines instead.
//!
//! Limits: <https://developers.facebook.com/documentation/business-messaging/whatsapp/messages/interactive-reply-buttons-messages>,
//! <https://developers.facebook.com/documentation/business-messaging/whatsapp/messages/interactive-list-messages>,
//! <https://developers.facebook.com/documentation/business-messaging/whatsapp/messages/location-request-messages>.
//! Lengths are counted in UTF-16 code units, which is never less than the code-point count
//! Meta may use (the two only differ for emoji and other astral characters).

use flows::catalog::{Rendered, RenderedChoice};
use flows::delivery::TemplateParams;
use flows::reply::Hint;
use serde::Serialize;
use serde_json::{Value, json};
use unicode_segmentation::UnicodeSegmentation;

/// `text.body`.
pub const TEXT_MAX: usize = 4096;
/// `interactive.body.text` of reply buttons.
pub const BUTTON_BODY_MAX: usize = 1024;
/// Reply button title.
pub const BUTTON_TITLE_MAX: usize = 20;
/// Reply button id.
pub const BUTTON_ID_MAX: usize = 256;
/// Reply buttons per message.
pub const BUTTONS_MAX: usize = 3;
/// `interactive.body.text` of a list: 4096 in Meta's current doc, 1024 in older and BSP docs.
pub const LIST_BODY_MAX: usize = 1024;
/// The list's menu button label (`action.button`).
pub const LIST_BUTTON_MAX: usize = 20;
/// Rows across all sections.
pub const LIST_ROWS_MAX: usize = 10;
pub const ROW_ID_MAX: usize = 200;
pub const ROW_TITLE_MAX: usize = 24;
pub const ROW_DESCRIPTION_MAX: usize = 72;
pub const SECTION_TITLE_MAX: usize = 24;
/// `interactive.body.text` of a location request.
pub const LOCATION_BODY_MAX: usize = 1024;

/// Template parameter limits. A body parameter may be up to 1024 characters, but the whole
/// rendered template body must stay within 1024, so the four parameters share a budget.
pub const TEMPLATE_REFERENCE_MAX: usize = 40;
pub const TEMPLATE_STATUS_MAX: usize = 60;
pub const TEMPLATE_STATION_MAX: usize = 100;
pub const TEMPLATE_NOTE_MAX: usize = 500;

/// Id prefix of the overflow row of a list with more than [`LIST_ROWS_MAX`] choices:
/// `more:<n>`, where `n` is the 1-based number of the first choice that had no row. Tapping it
/// sends `Body::Choice { id: "more:<n>" }`, which the engine does not know and answers with the
/// same question again; the row's description tells the citizen to type the number instead
/// (every choice is in the numbered lines of the body). The engine pages long lists itself, so
/// this only keeps an unexpectedly long list deliverable.
pub const MORE_PREFIX: &str = "more:";

/// Who receives a message: a phone number (`to`, digits) or a business-scoped user id
/// (`recipient`), for users who have a WhatsApp username and no visible number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recipient {
    Phone(String),
    User(String),
}

impl Recipient {
    /// From an `Inbound::sender` as [`crate::inbound::parse`] produced it: digits are a phone
    /// number (a leading `+` is dropped), anything else is a business-scoped user id.
    pub fn for_sender(sender: &str) -> Recipient {
        let s = sender.trim();
        let digits = s.strip_prefix('+').unwrap_or(s);
        if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
            Recipient::Phone(digits.to_owned())
        } else {
            Recipient::User(s.to_owned())
        }
    }

    fn fields(&self) -> (Option<String>, Option<String>) {
        match self {
            Recipient::Phone(p) => (Some(p.clone()), None),
            Recipient::User(u) => (None, Some(u.clone())),
        }
    }
}

/// Length as WhatsApp may count it (UTF-16 code units: never less than code points).
pub fn width(s: &str) -> usize {
    s.encode_utf16().count()
}

/// Whether `s` is at most `max` wide. A char never takes more UTF-16 units than UTF-8 bytes,
/// so a text within `max` bytes (most replies and labels) fits without counting.
fn fits(s: &str, max: usize) -> bool {
    s.len() <= max || width(s) <= max
}

/// Indic viramas (and joiners): a cluster ending in one must stay with the next cluster even
/// under a segmentation that predates Unicode 15.1's conjunct rule (GB9c).
fn joins_next(cluster: &str) -> bool {
    matches!(
        cluster.chars().last(),
        Some(
            '\u{094D}'
                | '\u{09CD}'
                | '\u{0A4D}'
                | '\u{0ACD}'
                | '\u{0B4D}'
                | '\u{0BCD}'
                | '\u{0C4D}'
                | '\u{0CCD}'
                | '\u{0D4D}'
                | '\u{200C}'
                | '\u{200D}'
        )
    )
}

/// Byte offsets where `s` may be cut: grapheme-cluster boundaries, minus those right after a
/// virama or joiner. Always includes 0 and `s.len()`.
fn cut_points(s: &str) -> Vec<usize> {
    let mut points = vec![0];
    for (i, g) in s.grapheme_indices(true) {
        let end = i + g.len();
        if joins_next(g) && end < s.len() {
            continue;
        }
        points.push(end);
    }
    if points.last() != Some(&s.len()) {
        points.push(s.len());
    }
    points
}

/// The longest prefix of `s` ending on a cut point whose width is ≤ `max` (byte offset).
fn fit_prefix(s: &str, max: usize) -> usize {
    let mut best = 0;
    let mut w = 0;
    let mut prev = 0;
    for p in cut_points(s).into_iter().skip(1) {
        w += width(&s[prev..p]);
        if w > max {
            break;
        }
        best = p;
        prev = p;
    }
    best
}

/// The longest prefix of `s` (a char boundary) whose width is ≤ `max`, and at least one char.
fn char_prefix(s: &str, max: usize) -> usize {
    let mut w = 0;
    let mut end = 0;
    for (i, c) in s.char_indices() {
        w += c.len_utf16();
        if w > max && end > 0 {
            break;
        }
        end = i + c.len_utf8();
    }
    end
}

/// `s` if it fits in `max`, else its longest fitting prefix (on a grapheme boundary, never
/// inside a conjunct) followed by `…`.
pub fn shorten(s: &str, max: usize) -> String {
    if fits(s, max) {
        return s.to_owned();
    }
    if max == 0 {
        return String::new();
    }
    let cut = fit_prefix(s, max - 1);
    let mut out = s[..cut].trim_end().to_owned();
    out.push('…');
    out
}

/// Splits text into pieces of at most `max`, preferring line breaks, then spaces, then any
/// grapheme boundary. Whitespace at a split is dropped; nothing else is lost.
pub fn split_text(s: &str, max: usize) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = s.trim_end();
    while !fits(rest, max) {
        let fit = match fit_prefix(rest, max) {
            // Not even one cluster fits: a cluster wider than a message (a letter under
            // thousands of combining marks) is cut between characters; a single character
            // wider than `max` (only when `max` is tiny) goes whole rather than loop.
            0 => char_prefix(rest, max),
            fit => fit,
        };
        let prefix = &rest[..fit];
        let at = prefix
            .rfind('\n')
            .filter(|&i| !prefix[..i].trim().is_empty())
            .or_else(|| {
                prefix
                    .rfind(char::is_whitespace)
                    .filter(|&i| !prefix[..i].trim().is_empty())
            });
        let (chunk, next) = match at {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (prefix, &rest[fit..]),
        };
        let chunk = chunk.trim_end();
        if !chunk.is_empty() {
            out.push(chunk.to_owned());
        }
        rest = next.trim_start();
    }
    if !rest.trim().is_empty() {
        out.push(rest.to_owned());
    }
    out
}

/// Splits `s` into a head and the longest tail of width ≤ `max` that starts at a line start
/// (else a word start, else a cut point), so a trailing list of numbered lines stays whole.
fn split_tail(s: &str, max: usize) -> (&str, &str) {
    if fits(s, max) {
        return ("", s);
    }
    let total = width(s);
    // The tail may start at byte `i` once the head before it is at least this wide.
    let need = total - max;
    let mut head = 0;
    let mut earliest = s.len();
    for (i, c) in s.char_indices() {
        if head >= need {
            earliest = i;
            break;
        }
        head += c.len_utf16();
    }
    let mut line_starts = s.match_indices('\n').map(|(i, _)| i + 1);
    let mut word_starts = s
        .match_indices(char::is_whitespace)
        .map(|(i, w)| i + w.len());
    let start = line_starts
        .find(|&i| i >= earliest && i < s.len())
        .or_else(|| word_starts.find(|&i| i >= earliest && i < s.len()))
        .or_else(|| cut_points(s).into_iter().find(|&i| i >= earliest))
        .unwrap_or(s.len());
    (s[..start].trim_end(), s[start..].trim_start())
}

/// Does the text look Hindi (any Devanagari letter)? Picks the language of fixed labels.
fn is_hindi(s: &str) -> bool {
    s.chars().any(|c| ('\u{0900}'..='\u{097F}').contains(&c))
}

/// One request body for the messages endpoint, as [`render_bodies`] makes it: typed, so a
/// reply is serialized straight into its request without building a JSON tree first (that
/// tree, built, serialized and dropped, was 7 % of Seva's instructions per WhatsApp reply).
/// [`render`] shows the same bodies as JSON values.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MessageBody {
    messaging_product: &'static str,
    recipient_type: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    to: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    recipient: Option<String>,
    #[serde(flatten)]
    content: Content,
    #[serde(skip_serializing_if = "Option::is_none")]
    biz_opaque_callback_data: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Content {
    Text { text: TextBody },
    Interactive { interactive: Interactive },
    Template { template: Value },
}

#[derive(Debug, Clone, PartialEq, Serialize)]
struct TextBody {
    preview_url: bool,
    body: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Interactive {
    LocationRequestMessage {
        body: BodyText,
        action: NamedAction,
    },
    Button {
        body: BodyText,
        action: ButtonsAction,
    },
    List {
        body: BodyText,
        action: ListAction,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize)]
struct BodyText {
    text: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
struct NamedAction {
    name: &'static str,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
struct ButtonsAction {
    buttons: Vec<Button>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
struct Button {
    #[serde(rename = "type")]
    kind: &'static str,
    reply: ButtonReply,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
struct ButtonReply {
    id: String,
    title: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
struct ListAction {
    button: String,
    sections: [Section; 1],
}

#[derive(Debug, Clone, PartialEq, Serialize)]
struct Section {
    title: String,
    rows: Vec<Row>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
struct Row {
    id: String,
    title: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<String>,
}

fn message(to: &Recipient, content: Content, opaque: &str) -> MessageBody {
    let (to, recipient) = to.fields();
    MessageBody {
        messaging_product: "whatsapp",
        recipient_type: "individual",
        to,
        recipient,
        content,
        biz_opaque_callback_data: (!opaque.is_empty()).then(|| opaque.to_owned()),
    }
}

fn text_message(to: &Recipient, body: &str, opaque: &str) -> MessageBody {
    let text = TextBody {
        preview_url: false,
        body: body.to_owned(),
    };
    message(to, Content::Text { text }, opaque)
}

fn interactive_message(to: &Recipient, interactive: Interactive, opaque: &str) -> MessageBody {
    message(to, Content::Interactive { interactive }, opaque)
}

fn text_messages(to: &Recipient, text: &str, opaque: &str) -> Vec<MessageBody> {
    split_text(text, TEXT_MAX)
        .iter()
        .map(|t| text_message(to, t, opaque))
        .collect()
}

/// Text messages for whatever does not fit in an interactive body of `max`, then the body.
fn with_body(to: &Recipient, text: &str, max: usize, opaque: &str) -> (Vec<MessageBody>, String) {
    let (head, tail) = split_tail(text, max);
    let tail = if tail.trim().is_empty() {
        shorten(text.trim(), max)
    } else {
        tail.to_owned()
    };
    let tail = if tail.is_empty() {
        "…".to_owned()
    } else {
        tail
    };
    (text_messages(to, head, opaque), tail)
}

fn valid_id(id: &str, max: usize) -> bool {
    !id.is_empty() && id.chars().count() <= max && id.trim() == id
}

fn ids_usable(choices: &[RenderedChoice], max: usize) -> bool {
    // A handful of choices: comparing pairs beats hashing them.
    choices.iter().enumerate().all(|(i, c)| {
        valid_id(&c.id, max) && !choices[..i].iter().any(|earlier| earlier.id == c.id)
    })
}

/// The label to show on a widget: the short form, else the full one, else the number.
fn widget_label(c: &RenderedChoice) -> &str {
    if !c.short.trim().is_empty() {
        c.short.trim()
    } else {
        c.full.trim()
    }
}

/// Renders one reply into the request bodies to send, in order (usually one). `opaque` is
/// echoed back by Meta in status webhooks as `biz_opaque_callback_data`: pass the outbox id.
/// An empty reply (no text, no choices, no hint) gives no message.
pub fn render(to: &Recipient, rendered: &Rendered, opaque: &str) -> Vec<Value> {
    render_bodies(to, rendered, opaque)
        .iter()
        .map(MessageBody::to_value)
        .collect()
}

impl MessageBody {
    /// The body as the JSON it is sent as.
    pub fn to_value(&self) -> Value {
        serde_json::to_value(self).expect("a message body is plain JSON")
    }
}

/// [`render`], typed: what the sender posts.
pub fn render_bodies(to: &Recipient, rendered: &Rendered, opaque: &str) -> Vec<MessageBody> {
    let text = rendered.with_numbered_choices();
    let text = text.trim();
    let n = rendered.choices.len();
    if rendered.hint == Some(Hint::AskLocation) {
        // A location request has no room for buttons: the numbered lines in the body still
        // let the citizen pick a choice by typing its number.
        let (mut out, body) = with_body(to, text, LOCATION_BODY_MAX, opaque);
        out.push(interactive_message(
            to,
            Interactive::LocationRequestMessage {
                body: BodyText { text: body },
                action: NamedAction {
                    name: "send_location",
                },
            },
            opaque,
        ));
        return out;
    }
    if n == 0 {
        return text_messages(to, text, opaque);
    }
    if n <= BUTTONS_MAX {
        if !ids_usable(&rendered.choices, BUTTON_ID_MAX) {
            tracing::warn!(
                choices = n,
                "choice ids unusable as WhatsApp button ids; sending numbered text"
            );
            return text_messages(to, text, opaque);
        }
        let (mut out, body) = with_body(to, text, BUTTON_BODY_MAX, opaque);
        out.push(interactive_message(
            to,
            buttons(&rendered.choices, body),
            opaque,
        ));
        return out;
    }
    let shown = if n <= LIST_ROWS_MAX {
        n
    } else {
        LIST_ROWS_MAX - 1
    };
    if !ids_usable(&rendered.choices[..shown], ROW_ID_MAX) {
        tracing::warn!(
            choices = n,
            "choice ids unusable as WhatsApp list row ids; sending numbered text"
        );
        return text_messages(to, text, opaque);
    }
    let hindi = is_hindi(text);
    let mut rows: Vec<Row> = rendered.choices[..shown]
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let title = match widget_label(c) {
                "" => shorten(&(i + 1).to_string(), ROW_TITLE_MAX),
                l => shorten(l, ROW_TITLE_MAX),
            };
            let full = c.full.trim();
            let description =
                (!full.is_empty() && full != title).then(|| shorten(full, ROW_DESCRIPTION_MAX));
            Row {
                id: c.id.clone(),
                title,
                description,
            }
        })
        .collect();
    if n > shown {
        let first = shown + 1;
        let (title, description) = if hindi {
            (
                "और विकल्प…".to_owned(),
                format!("संदेश में दी गई संख्या ({first}–{n}) लिखें"),
            )
        } else {
            (
                "More options…".to_owned(),
                format!("Type a number ({first}–{n}) from the message"),
            )
        };
        rows.push(Row {
            id: format!("{MORE_PREFIX}{first}"),
            title: shorten(&title, ROW_TITLE_MAX),
            description: Some(shorten(&description, ROW_DESCRIPTION_MAX)),
        });
    }
    let (button, section) = if hindi {
        ("विकल्प चुनें", "विकल्प")
    } else {
        ("Choose an option", "Options")
    };
    let (mut out, body) = with_body(to, text, LIST_BODY_MAX, opaque);
    out.push(interactive_message(
        to,
        Interactive::List {
            body: BodyText { text: body },
            action: ListAction {
                button: shorten(button, LIST_BUTTON_MAX),
                sections: [Section {
                    title: shorten(section, SECTION_TITLE_MAX),
                    rows,
                }],
            },
        },
        opaque,
    ));
    out
}

/// Reply buttons with unique, non-empty titles of at most 20.
fn buttons(choices: &[RenderedChoice], body: String) -> Interactive {
    let labels: Vec<&str> = choices.iter().map(widget_label).collect();
    let mut titles: Vec<String> = labels
        .iter()
        .map(|l| shorten(l, BUTTON_TITLE_MAX))
        .collect();
    let unique = titles
        .iter()
        .enumerate()
        .all(|(i, t)| !titles[..i].contains(t));
    if !unique || titles.iter().any(|t| t.is_empty()) {
        // Meta refuses empty and duplicate titles; numbers also match the numbered lines.
        titles = labels
            .iter()
            .enumerate()
            .map(|(i, l)| shorten(format!("{}. {l}", i + 1).trim(), BUTTON_TITLE_MAX))
            .collect();
    }
    let buttons = choices
        .iter()
        .zip(titles)
        .map(|(c, title)| Button {
            kind: "reply",
            reply: ButtonReply {
                id: c.id.clone(),
                title,
            },
        })
        .collect();
    Interactive::Button {
        body: BodyText { text: body },
        action: ButtonsAction { buttons },
    }
}

/// One template parameter: a single line (tabs and newlines become spaces, runs of spaces
/// collapse to one, since Meta refuses newlines, tabs and 4+ consecutive spaces), shortened to
/// `max`, and `-` when empty (Meta refuses empty parameters).
pub fn template_param(s: &str, max: usize) -> String {
    let one_line = s.split_whitespace().collect::<Vec<_>>().join(" ");
    let one_line: String = one_line.chars().filter(|c| !c.is_control()).collect();
    let out = shorten(one_line.trim(), max);
    if out.is_empty() { "-".to_owned() } else { out }
}

/// The approved status template (`{{1}}` reference, `{{2}}` status, `{{3}}` station,
/// `{{4}}` note) for sending outside the 24-hour window. `lang_code` is the template's
/// language as approved (`hi`, `en`, `en_US`, …). `opaque` as for [`render`].
/// <https://developers.facebook.com/documentation/business-messaging/whatsapp/templates/overview>
pub fn render_template(
    to: &Recipient,
    name: &str,
    lang_code: &str,
    params: &TemplateParams,
    opaque: &str,
) -> Value {
    let texts = [
        template_param(&params.reference, TEMPLATE_REFERENCE_MAX),
        template_param(&params.status, TEMPLATE_STATUS_MAX),
        template_param(&params.station, TEMPLATE_STATION_MAX),
        template_param(&params.note, TEMPLATE_NOTE_MAX),
    ];
    let parameters: Vec<Value> = texts
        .iter()
        .map(|t| json!({ "type": "text", "text": t }))
        .collect();
    let template = json!({
        "name": name,
        "language": { "code": lang_code },
        "components": [{ "type": "body", "parameters": parameters }],
    });
    message(to, Content::Template { template }, opaque).to_value()
}

/// The mark-as-read request for an inbound message (also marks earlier ones).
/// <https://developers.facebook.com/documentation/business-messaging/whatsapp/messages/mark-message-as-read>
pub fn render_mark_read(wamid: &str) -> Value {
    json!({ "messaging_product": "whatsapp", "status": "read", "message_id": wamid })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shorten_keeps_devanagari_conjuncts_whole() {
        // क्ष = क + ् + ष: cutting after the virama would show a broken half-letter.
        let s = "क्षमा करें";
        for max in 1..width(s) {
            let out = shorten(s, max);
            assert!(width(&out) <= max, "{out} wider than {max}");
            let kept = out.trim_end_matches('…');
            assert!(!kept.ends_with('\u{094D}'), "cut after a virama: {out:?}");
            assert!(s.starts_with(kept));
        }
        assert_eq!(shorten("क्षमा", 3), "…");
        assert_eq!(shorten("क्षमा", 4), "क्ष…");
    }

    #[test]
    fn split_tail_keeps_trailing_lines_together() {
        let (head, tail) = split_tail("aaaa\nbbbb\n1. x\n2. y", 10);
        assert_eq!(head, "aaaa\nbbbb");
        assert_eq!(tail, "1. x\n2. y");
    }
}
