//! Check status: read a reference in any reasonable form, then show what the runtime found.
//! Only the citizen who filed a report sees it; anyone else gets the "not found" reply.

use super::menu::{kind_msg, show_menu, status_msg};
use super::{Turn, not_understood};
use crate::effect::{Effect, ReportView};
use crate::message::Body;
use crate::reference::{Reference, ReferenceError};
use crate::reply::Text;
use crate::state::Step;

/// The longest text we try to read as a reference; anything longer is not one.
const MAX_REFERENCE_INPUT: usize = 40;

pub(super) fn ask_reference(turn: &mut Turn<'_, '_>) {
    turn.state.step = Step::StatusAsk;
    turn.state.draft = None;
    turn.prompt(Text::new("status-prompt"), Vec::new(), None);
}

/// True when a menu message is shaped like a reference (kind letter and about nine more
/// characters), so typing one at the menu checks it directly.
pub(super) fn looks_like_reference(text: &str) -> bool {
    let compact: String = text
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .collect();
    let n = compact.chars().count();
    (9..=11).contains(&n)
        && compact
            .chars()
            .next()
            .is_some_and(|c| matches!(c, 'C' | 'L' | 'F' | 'c' | 'l' | 'f'))
        && compact
            .chars()
            .skip(1)
            .any(|c| crate::understand::digits::ascii_digit(c).is_some())
}

pub(super) fn on_reference(turn: &mut Turn<'_, '_>, body: &Body) {
    let Body::Text { text } = body else {
        return not_understood(turn, super::Picked::Other(None), body, 0);
    };
    if text.chars().count() > MAX_REFERENCE_INPUT {
        turn.state.step = Step::StatusAsk;
        turn.say(Text::new("status-malformed"));
        return ask_reference(turn);
    }
    match Reference::parse(text) {
        Ok(reference) => {
            turn.state.step = Step::StatusAsk;
            turn.effect(Effect::LookupReport { reference });
        }
        Err(ReferenceError::Typo) => {
            turn.say(Text::new("status-typo"));
            ask_reference(turn);
        }
        Err(ReferenceError::Malformed) => {
            turn.say(Text::new("status-malformed"));
            ask_reference(turn);
        }
    }
}

pub(super) fn on_report(turn: &mut Turn<'_, '_>, report: Option<&ReportView>) {
    match report {
        None => turn.say(Text::new("status-not-found")),
        Some(r) => {
            let station = match turn.lang {
                crate::Lang::Hi => r.station_hi.clone(),
                crate::Lang::En => r.station_en.clone(),
            }
            .unwrap_or_else(|| "-".to_owned());
            let history: Vec<String> = r
                .history
                .iter()
                .map(|(status, on)| {
                    turn.format(
                        &Text::new("status-history-line")
                            .arg("date", on.format("%d-%m-%Y").to_string())
                            .arg("status", turn.format(&Text::new(status_msg(status)))),
                    )
                })
                .collect();
            turn.say(
                Text::new("status-view")
                    .arg("reference", r.reference.to_string())
                    .arg("kind", turn.format(&Text::new(kind_msg(r.kind))))
                    .arg("status", turn.format(&Text::new(status_msg(&r.status))))
                    .arg("station", station)
                    .arg("date", r.updated_on.format("%d-%m-%Y").to_string()),
            );
            if let Some(fir) = &r.fir_number {
                turn.say(Text::new("status-fir").arg("fir", fir.clone()));
            }
            if !history.is_empty() {
                turn.say(Text::new("status-history").arg("lines", history.join("\n")));
            }
        }
    }
    show_menu(turn);
}

/// `/start status_<REF>` (a Telegram deep link) names a report to look up.
pub(super) fn deep_link(payload: &str) -> Option<Reference> {
    Reference::parse(payload.trim().strip_prefix("status_")?).ok()
}

/// Looks up a deep-linked report.
pub(super) fn lookup(turn: &mut Turn<'_, '_>, reference: Reference) {
    turn.state.step = Step::StatusAsk;
    turn.state.draft = None;
    turn.effect(Effect::LookupReport { reference });
}
