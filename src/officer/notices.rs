//! What a report change sends: the citizen's status push, the station alert and the
//! back-office event, as outbox content. Texts stay abstract (Fluent ids and arguments, rendered
//! by the channel at send time); only values that are themselves texts in the recipient's
//! language (a status label, a category) are formatted here.

use flows::Lang;
use flows::catalog::Catalog;
use flows::delivery::{OutboxContent, TemplateParams};
use flows::reference::ReportKind;
use flows::reply::{Reply, Text};
use flows::stations::Directory;

use super::model::ReportJson;
use crate::store::ReportRecord;

/// The version of the event body; a receiver reads `version` before anything else.
pub const EVENT_VERSION: u32 = 1;

/// The longest template note ({{4}}), in characters.
pub const TEMPLATE_NOTE_MAX: usize = 200;

fn format(lang: Lang, id: &str) -> Option<String> {
    Catalog::global().format_checked(lang, id, None, &[]).ok()
}

/// A status id as the citizen reads it (`status-under_inquiry` → "under inquiry").
pub fn status_label(lang: Lang, status: &str) -> String {
    format(lang, &format!("status-{status}"))
        .or_else(|| format(lang, "status-other"))
        .unwrap_or_else(|| status.to_owned())
}

/// A report kind in words (`kind-complaint`).
pub fn kind_label(lang: Lang, kind: ReportKind) -> String {
    format(lang, &format!("kind-{}", kind.as_str())).unwrap_or_else(|| kind.as_str().to_owned())
}

/// A complaint category or item type in words, as the citizen chose it.
pub fn category_label(lang: Lang, kind: ReportKind, category: &str) -> String {
    let id = match kind {
        ReportKind::Complaint => format!("choice-cat-{category}"),
        ReportKind::Lost | ReportKind::Found => format!("choice-item-{category}"),
    };
    format(lang, &id).unwrap_or_else(|| category.to_owned())
}

/// One line for a template parameter: no tabs or newlines, no runs of spaces, at most `max`
/// characters (cut at a character boundary, marked with "…"); never empty.
pub fn one_line(text: &str, max: usize) -> String {
    let joined = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let out = if joined.chars().count() > max {
        let mut cut: String = joined.chars().take(max.saturating_sub(1)).collect();
        cut = cut.trim_end().to_owned();
        cut.push('…');
        cut
    } else {
        joined
    };
    if out.is_empty() { "-".to_owned() } else { out }
}

/// The push for a status change: the new status, the station, the FIR number when one was
/// registered, and the officer's public note; with the template parameters WhatsApp needs
/// outside the 24-hour window ({{4}} carries the FIR number and the note on one line).
pub fn status_push(
    lang: Lang,
    reference: &str,
    status: &str,
    station: &str,
    fir_number: Option<&str>,
    note: Option<&str>,
) -> OutboxContent {
    let label = status_label(lang, status);
    let mut texts = vec![
        Text::new("push-status")
            .arg("reference", reference)
            .arg("status", label.as_str())
            .arg("station", station),
    ];
    let mut line = Vec::new();
    if let Some(fir) = fir_number {
        let t = Text::new("push-fir").arg("fir", fir);
        line.push(Catalog::global().text(lang, &t));
        texts.push(t);
    }
    if let Some(note) = note {
        texts.push(Text::new("push-note").arg("note", note));
        line.push(note.to_owned());
    }
    OutboxContent {
        reply: Reply {
            texts,
            ..Default::default()
        },
        template: Some(TemplateParams {
            reference: reference.to_owned(),
            status: label,
            station: one_line(station, TEMPLATE_NOTE_MAX),
            note: one_line(&line.join(" — "), TEMPLATE_NOTE_MAX),
        }),
        event: None,
    }
}

/// The push for a transfer: the new station, and the officer's public note.
pub fn transfer_push(
    lang: Lang,
    reference: &str,
    status: &str,
    station: &str,
    note: Option<&str>,
) -> OutboxContent {
    let moved = Text::new("push-transferred")
        .arg("reference", reference)
        .arg("station", station);
    let mut line = vec![Catalog::global().text(lang, &moved)];
    let mut texts = vec![moved];
    if let Some(note) = note {
        texts.push(Text::new("push-note").arg("note", note));
        line.push(note.to_owned());
    }
    OutboxContent {
        reply: Reply {
            texts,
            ..Default::default()
        },
        template: Some(TemplateParams {
            reference: reference.to_owned(),
            status: status_label(lang, status),
            station: one_line(station, TEMPLATE_NOTE_MAX),
            note: one_line(&line.join(" — "), TEMPLATE_NOTE_MAX),
        }),
        event: None,
    }
}

/// The alert to a station's Telegram chat, in the station's language: a new report, or one
/// transferred to it.
pub fn station_alert(
    lang: Lang,
    kind: ReportKind,
    category: &str,
    reference: &str,
    station: &str,
    transferred: bool,
) -> OutboxContent {
    let id = if transferred {
        "station-alert-transferred"
    } else {
        "station-alert"
    };
    OutboxContent::reply(Reply::text(
        Text::new(id)
            .arg("kind", kind_label(lang, kind))
            .arg("reference", reference)
            .arg("station", station)
            .arg("category", category_label(lang, kind, category)),
    ))
}

/// The push to a lost item's owner when a found report may match it.
pub fn match_push(
    lang: Lang,
    lost_reference: &str,
    lost_status: &str,
    station: &str,
) -> OutboxContent {
    let text = Text::new("push-match")
        .arg("reference", lost_reference)
        .arg("station", station);
    let line = Catalog::global().text(lang, &text);
    OutboxContent {
        reply: Reply::text(text),
        template: Some(TemplateParams {
            reference: lost_reference.to_owned(),
            status: status_label(lang, lost_status),
            station: one_line(station, TEMPLATE_NOTE_MAX),
            note: one_line(&line, TEMPLATE_NOTE_MAX),
        }),
        event: None,
    }
}

/// The alert to a station's chat about a possible lost ↔ found match.
pub fn match_alert(
    lang: Lang,
    kind: ReportKind,
    category: &str,
    lost_reference: &str,
    found_reference: &str,
) -> OutboxContent {
    OutboxContent::reply(Reply::text(
        Text::new("station-match")
            .arg("found", found_reference)
            .arg("lost", lost_reference)
            .arg("category", category_label(lang, kind, category)),
    ))
}

/// A back-office event body (spec §4): `type`, `version`, `occurred_at` (RFC 3339, UTC) and
/// the report; a change event adds what changed (never the internal note).
///
/// ```json
/// { "type": "report.status_changed", "version": 1, "occurred_at": "2026-11-28T12:00:00Z",
///   "report": { "reference": "C-7K3Q-9XM4-R", "status": "acknowledged", … },
///   "change": { "from": "submitted", "to": "acknowledged", "note": "…", "actor": "si-verma" } }
/// ```
pub fn event(
    kind: &str,
    now: i64,
    report: &ReportRecord,
    stations: &Directory,
    change: Option<serde_json::Value>,
) -> serde_json::Value {
    let mut body = serde_json::json!({
        "type": kind,
        "version": EVENT_VERSION,
        "occurred_at": super::model::rfc3339(now),
        "report": ReportJson::from_record(report, stations),
    });
    if let Some(change) = change {
        body["change"] = change;
    }
    body
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_flattens_shortens_and_never_is_empty() {
        assert_eq!(one_line("a\tb\n\n c   d", 50), "a b c d");
        assert_eq!(one_line("  ", 50), "-");
        let long = "अ".repeat(300);
        let cut = one_line(&long, 200);
        assert_eq!(cut.chars().count(), 200);
        assert!(cut.ends_with('…'));
    }

    #[test]
    fn labels_come_from_the_catalog_in_the_recipients_language() {
        assert_eq!(status_label(Lang::En, "under_inquiry"), "under inquiry");
        assert_eq!(status_label(Lang::Hi, "closed"), "बंद की गई");
        assert_eq!(kind_label(Lang::Hi, ReportKind::Complaint), "शिकायत");
        assert_eq!(
            category_label(Lang::En, ReportKind::Lost, "mobile"),
            "Mobile phone"
        );
        assert_eq!(
            category_label(Lang::En, ReportKind::Complaint, "nonsense"),
            "nonsense"
        );
    }

    #[test]
    fn a_fir_push_carries_the_number_in_text_and_template() {
        let c = status_push(
            Lang::En,
            "C-7K3Q-9XM4-R",
            "fir_registered",
            "Kotwali",
            Some("123/2026"),
            Some("Visit\nthe station"),
        );
        let ids: Vec<&str> = c.reply.texts.iter().map(|t| t.id.as_str()).collect();
        assert_eq!(ids, ["push-status", "push-fir", "push-note"]);
        let t = c.template.unwrap();
        assert_eq!(t.status, "FIR registered");
        assert_eq!(t.note, "FIR number: 123/2026 — Visit the station");
    }
}
