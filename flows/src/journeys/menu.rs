//! First contact, language, the main menu, help, my reports, resuming a draft, deleting data.

use super::{Picked, Turn, choice, not_understood, pick, reprompt, yes_no};
use crate::Lang;
use crate::effect::{Effect, ReportRefusal, ReportView};
use crate::message::Body;
use crate::reference::ReportKind;
use crate::reply::{Choice, Text};
use crate::state::{Draft, Step};
use crate::understand::words::{self, Intent};

const LANG_ALIASES: &[(&str, &[&str])] = &[
    ("lang:hi", &["hindi", "हिंदी", "हिन्दी", "hi"]),
    (
        "lang:en",
        &["english", "अंग्रेज़ी", "अंग्रेजी", "angrezi", "en", "इंग्लिश"],
    ),
];

fn language_choices(first: Lang) -> Vec<Choice> {
    let hi = choice("lang:hi", "choice-lang-hi");
    let en = choice("lang:en", "choice-lang-en");
    match first {
        Lang::Hi => vec![hi, en],
        Lang::En => vec![en, hi],
    }
}

fn language_order(turn: &Turn<'_, '_>) -> Lang {
    turn.ctx
        .profile
        .lang
        .or(turn.ctx.profile.lang_hint)
        .unwrap_or(Lang::Hi)
}

pub(super) fn ask_language_with_hint(turn: &mut Turn<'_, '_>, hint: Option<Lang>) {
    let first = hint.unwrap_or_else(|| language_order(turn));
    turn.lang = first;
    turn.prompt(Text::new("welcome"), language_choices(first), None);
}

pub(super) fn ask_language(turn: &mut Turn<'_, '_>, resume: Option<Step>) {
    turn.state.step = Step::Language {
        resume: resume.map(Box::new),
        lookup: None,
    };
    let first = language_order(turn);
    turn.prompt(Text::new("language-prompt"), language_choices(first), None);
}

pub(super) fn on_language(
    turn: &mut Turn<'_, '_>,
    body: &Body,
    resume: Option<Step>,
    lookup: Option<crate::reference::Reference>,
) {
    let choices = language_choices(language_order(turn));
    let lang = match pick(body, &choices, turn.catalog(), LANG_ALIASES) {
        Picked::Choice(id) if id == "lang:hi" => Lang::Hi,
        Picked::Choice(_) => Lang::En,
        picked => {
            // A first message in Devanagari or English text is not a language name: ask again.
            return not_understood(turn, picked, body, choices.len());
        }
    };
    turn.lang = lang;
    turn.effect(Effect::SetLanguage { lang });
    turn.say(Text::new("language-set"));
    if let Some(reference) = lookup {
        // A deep link opened before the language was known: look it up now.
        turn.flush();
        return super::status::lookup(turn, reference);
    }
    match resume {
        Some(step) if !matches!(step, Step::New | Step::Language { .. }) => {
            turn.state.step = step;
            reprompt(turn);
        }
        _ => show_menu(turn),
    }
}

fn menu_choices() -> Vec<Choice> {
    vec![
        choice("menu:complaint", "choice-menu-complaint"),
        choice("menu:lost", "choice-menu-lost"),
        choice("menu:found", "choice-menu-found"),
        choice("menu:status", "choice-menu-status"),
        choice("menu:mine", "choice-menu-mine"),
        choice("menu:help", "choice-menu-help"),
    ]
}

pub(super) fn show_menu(turn: &mut Turn<'_, '_>) {
    turn.state.step = Step::Menu;
    turn.state.draft = None;
    turn.prompt(Text::new("menu-prompt"), menu_choices(), None);
}

/// The menu, or the language question while the citizen has not chosen one.
pub(super) fn show_menu_or_language(turn: &mut Turn<'_, '_>) {
    if turn.ctx.profile.lang.is_some()
        || turn
            .effects
            .iter()
            .any(|e| matches!(e, Effect::SetLanguage { .. }))
    {
        show_menu(turn);
    } else {
        turn.state.draft = None;
        ask_language(turn, None);
    }
}

/// The first message of a citizen whose language is already known (`seva chat --lang`, a reset):
/// act on it when it names something the menu offers, otherwise greet with the menu.
pub(super) fn on_first_message(turn: &mut Turn<'_, '_>, body: &Body) {
    let actionable = match body {
        Body::Text { text } => {
            words::intent(text).is_some()
                || crate::understand::digits::option_number(text).is_some()
                || super::status::looks_like_reference(text)
        }
        Body::Choice { .. } => true,
        _ => false,
    };
    if actionable {
        on_menu(turn, body);
    } else {
        turn.say(Text::new("welcome-back"));
        show_menu(turn);
    }
}

pub(super) fn on_menu(turn: &mut Turn<'_, '_>, body: &Body) {
    let choices = menu_choices();
    let intent = match pick(body, &choices, turn.catalog(), &[]) {
        Picked::Choice(id) => match id.as_str() {
            "menu:complaint" => Intent::Complaint,
            "menu:lost" => Intent::Lost,
            "menu:found" => Intent::Found,
            "menu:status" => Intent::Status,
            "menu:mine" => Intent::MyReports,
            _ => Intent::Help,
        },
        Picked::Other(Some(text)) => {
            // A reference typed straight at the menu is a status check.
            if super::status::looks_like_reference(text) {
                super::status::on_reference(turn, body);
                return;
            }
            match words::intent(text) {
                Some(intent) => intent,
                None => {
                    return not_understood(turn, Picked::Other(Some(text)), body, choices.len());
                }
            }
        }
        picked => return not_understood(turn, picked, body, choices.len()),
    };
    match intent {
        Intent::Complaint => start_report(turn, ReportKind::Complaint),
        Intent::Lost => start_report(turn, ReportKind::Lost),
        Intent::Found => start_report(turn, ReportKind::Found),
        Intent::Status => super::status::ask_reference(turn),
        Intent::MyReports => turn.effect(Effect::ListMyReports),
        Intent::Help => {
            turn.say(Text::new("help"));
            show_menu(turn);
        }
    }
}

/// Asks the runtime first whether the citizen may start another report today; the journey
/// starts (or is refused) in [`on_report_limit`].
fn start_report(turn: &mut Turn<'_, '_>, kind: ReportKind) {
    turn.effect(Effect::CheckReportLimit { kind });
}

/// The answer to [`Effect::CheckReportLimit`]: the report journey, or a polite refusal that
/// says when the citizen may file again, then the menu.
pub(super) fn on_report_limit(
    turn: &mut Turn<'_, '_>,
    kind: ReportKind,
    refused: Option<&ReportRefusal>,
) {
    match refused {
        None => {
            let draft = Draft::new(turn.ctx.fresh.draft_id.clone(), kind);
            turn.state.draft = Some(draft);
            super::report::start(turn);
        }
        Some(r) => {
            turn.say(
                Text::new("report-limit-reached")
                    .arg("count", i64::from(r.filed))
                    .arg("date", r.until.format("%d-%m-%Y").to_string())
                    .arg("time", r.until.format("%H:%M").to_string()),
            );
            show_menu(turn);
        }
    }
}

pub(super) fn on_my_reports(turn: &mut Turn<'_, '_>, reports: &[ReportView]) {
    if reports.is_empty() {
        turn.say(Text::new("my-reports-empty"));
    } else {
        let lines: Vec<String> = reports
            .iter()
            .map(|r| {
                turn.format(
                    &Text::new("my-reports-line")
                        .arg("reference", r.reference.to_string())
                        .arg("kind", turn.format(&Text::new(kind_msg(r.kind))))
                        .arg("status", turn.format(&Text::new(status_msg(&r.status))))
                        .arg("date", r.updated_on.format("%d-%m-%Y").to_string()),
                )
            })
            .collect();
        turn.say(
            Text::new("my-reports")
                .arg("count", reports.len() as i64)
                .arg("lines", lines.join("\n")),
        );
    }
    show_menu(turn);
}

pub(crate) fn kind_msg(kind: ReportKind) -> &'static str {
    match kind {
        ReportKind::Complaint => "kind-complaint",
        ReportKind::Lost => "kind-lost",
        ReportKind::Found => "kind-found",
    }
}

/// The message id naming a status; unknown statuses fall back to a generic label.
pub(crate) fn status_msg(status: &str) -> &'static str {
    match status {
        "submitted" => "status-submitted",
        "acknowledged" => "status-acknowledged",
        "under_inquiry" => "status-under_inquiry",
        "fir_registered" => "status-fir_registered",
        "registered" => "status-registered",
        "found" => "status-found",
        "deposited" => "status-deposited",
        "returned" => "status-returned",
        "closed" => "status-closed",
        _ => "status-other",
    }
}

fn resume_choices() -> Vec<Choice> {
    vec![
        choice("resume:yes", "choice-resume-yes"),
        choice("resume:no", "choice-resume-no"),
    ]
}

pub(super) fn offer_resume(turn: &mut Turn<'_, '_>) {
    let kind = turn
        .state
        .draft
        .as_ref()
        .map(|d| d.kind)
        .unwrap_or(ReportKind::Complaint);
    let kind = turn.format(&Text::new(kind_msg(kind)));
    turn.prompt(
        Text::new("resume-offer").arg("kind", kind),
        resume_choices(),
        None,
    );
}

pub(super) fn on_resume(turn: &mut Turn<'_, '_>, body: &Body, resume_to: Step) {
    let choices = resume_choices();
    match yes_no(body, "resume:yes", "resume:no", &choices, turn.catalog()) {
        Some(true) => {
            turn.state.step = resume_to;
            reprompt(turn);
        }
        Some(false) => {
            turn.say(Text::new("draft-discarded"));
            show_menu(turn);
        }
        None => not_understood(
            turn,
            pick(body, &choices, turn.catalog(), &[]),
            body,
            choices.len(),
        ),
    }
}

fn delete_choices() -> Vec<Choice> {
    vec![
        choice("delete:yes", "choice-delete-yes"),
        choice("delete:no", "choice-delete-no"),
    ]
}

pub(super) fn ask_delete(turn: &mut Turn<'_, '_>) {
    turn.prompt(Text::new("delete-confirm"), delete_choices(), None);
}

pub(super) fn on_delete_confirm(turn: &mut Turn<'_, '_>, body: &Body) {
    let choices = delete_choices();
    match yes_no(body, "delete:yes", "delete:no", &choices, turn.catalog()) {
        Some(true) => {
            turn.effect(Effect::DeleteMyData);
            turn.state.draft = None;
            turn.state.step = Step::Menu;
            turn.say(Text::new("data-deleted"));
            show_menu(turn);
        }
        Some(false) => {
            turn.say(Text::new("delete-kept"));
            show_menu(turn);
        }
        None => not_understood(
            turn,
            pick(body, &choices, turn.catalog(), &[]),
            body,
            choices.len(),
        ),
    }
}
