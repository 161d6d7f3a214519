//! The journeys, and what every step shares: global commands, resuming idle drafts, matching
//! typed input against the offered choices.
//!
//! * [`menu`] — first contact, language, main menu, help, my reports, stop/start, delete my data.
//! * [`report`] — the three report journeys (complaint, lost item, found item): fields, review,
//!   edit, confirm.
//! * [`status`] — check status by reference.

mod menu;
mod report;
mod status;

pub use report::COMPLAINT_CATEGORIES;

use crate::Lang;
use crate::catalog::Catalog;
use crate::effect::{Effect, EffectResult};
use crate::engine::{Ctx, Input, Outcome};
use crate::message::Body;
use crate::reply::{Choice, Hint, Label, Reply, Text};
use crate::state::{Conversation, DRAFT_KEPT_SECS, IDLE_AFTER_SECS, Step};
use crate::understand::digits::option_number;
use crate::understand::words::{self, Global, fold};

/// A turn in progress: the state being changed, what to say and what to do.
pub(crate) struct Turn<'c, 'a> {
    pub ctx: &'c Ctx<'a>,
    pub state: Conversation,
    pub lang: Lang,
    /// Texts said before the next prompt (confirmations, errors).
    pub said: Vec<Text>,
    pub replies: Vec<Reply>,
    pub effects: Vec<Effect>,
}

impl<'c, 'a> Turn<'c, 'a> {
    fn new(state: Conversation, ctx: &'c Ctx<'a>) -> Self {
        let lang = ctx
            .profile
            .lang
            .or(ctx.profile.lang_hint)
            .unwrap_or(Lang::Hi);
        Turn {
            ctx,
            state,
            lang,
            said: Vec::new(),
            replies: Vec::new(),
            effects: Vec::new(),
        }
    }

    pub fn catalog(&self) -> &Catalog {
        self.ctx.catalog
    }

    /// Says a text before the next prompt.
    pub fn say(&mut self, t: Text) {
        self.said.push(t);
    }

    /// Ends the turn's message with a prompt and its choices.
    pub fn prompt(&mut self, t: Text, choices: Vec<Choice>, hint: Option<Hint>) {
        let mut texts = std::mem::take(&mut self.said);
        texts.push(t);
        self.replies.push(Reply {
            texts,
            choices,
            hint,
        });
    }

    /// Flushes pending texts as one message without choices.
    pub fn flush(&mut self) {
        if !self.said.is_empty() {
            let texts = std::mem::take(&mut self.said);
            self.replies.push(Reply {
                texts,
                ..Default::default()
            });
        }
    }

    /// A localized string for use inside another message's argument.
    pub fn format(&self, t: &Text) -> String {
        self.catalog().text(self.lang, t)
    }

    pub fn label(&self, label: &Label) -> String {
        self.catalog().label(self.lang, label).1
    }

    pub fn effect(&mut self, e: Effect) {
        self.effects.push(e);
    }

    fn finish(mut self) -> Outcome {
        self.flush();
        Outcome {
            state: self.state,
            lang: self.lang,
            replies: self.replies,
            effects: self.effects,
        }
    }
}

/// A choice whose label is a Fluent message.
pub(crate) fn choice(id: &str, msg: &str) -> Choice {
    Choice {
        id: id.to_owned(),
        label: Label::Msg(msg.to_owned()),
    }
}

/// What a message means against the offered choices.
pub(crate) enum Picked<'m> {
    /// One of the offered choices, by id.
    Choice(String),
    /// A button from an older message that is no longer on offer.
    Stale,
    /// A number outside the list.
    BadNumber,
    /// Not a choice; the text, if any, for the step to read itself.
    Other(Option<&'m str>),
}

/// Matches a message to the offered choices: a tapped id, an option number (Devanagari digits
/// too), a label in either language, or an alias (Hinglish spellings).
pub(crate) fn pick<'m>(
    body: &'m Body,
    choices: &[Choice],
    catalog: &Catalog,
    aliases: &[(&str, &[&str])],
) -> Picked<'m> {
    match body {
        Body::Choice { id } => {
            if choices.iter().any(|c| &c.id == id) {
                Picked::Choice(id.clone())
            } else {
                Picked::Stale
            }
        }
        Body::Text { text } => {
            if let Some(n) = option_number(text) {
                return match choices.get(n.wrapping_sub(1)) {
                    Some(c) => Picked::Choice(c.id.clone()),
                    None if choices.is_empty() => Picked::Other(Some(text)),
                    None => Picked::BadNumber,
                };
            }
            let folded = fold(text);
            if folded.is_empty() {
                return Picked::Other(Some(text));
            }
            for c in choices {
                if Lang::ALL
                    .iter()
                    .any(|&lang| catalog.label_matches(lang, &c.label, &folded))
                {
                    return Picked::Choice(c.id.clone());
                }
            }
            for (id, words) in aliases {
                if choices.iter().any(|c| c.id == *id) && words.iter().any(|w| fold(w) == folded) {
                    return Picked::Choice((*id).to_owned());
                }
            }
            Picked::Other(Some(text))
        }
        _ => Picked::Other(None),
    }
}

pub(crate) fn step(state: Conversation, input: &Input, ctx: &Ctx<'_>) -> Outcome {
    let mut turn = Turn::new(state, ctx);
    match input {
        Input::Result(result) => on_result(&mut turn, result),
        Input::StateReset(body) => {
            turn.state = Conversation::default();
            turn.state.last_seen = ctx.now;
            turn.say(Text::new("state-reset"));
            let _ = body;
            if ctx.profile.lang.is_some() {
                menu::show_menu(&mut turn);
            } else {
                menu::ask_language(&mut turn, None);
            }
        }
        Input::Message(body) => on_message(&mut turn, body),
    }
    turn.finish()
}

fn on_result(turn: &mut Turn<'_, '_>, result: &EffectResult) {
    match result {
        EffectResult::Filed { reference, station } => {
            report::on_filed(turn, reference, station.as_deref())
        }
        EffectResult::Report { report } => status::on_report(turn, report.as_ref()),
        EffectResult::MyReports { reports } => menu::on_my_reports(turn, reports),
        EffectResult::ReportLimit { kind, refused } => {
            menu::on_report_limit(turn, *kind, refused.as_ref())
        }
    }
}

fn on_message(turn: &mut Turn<'_, '_>, body: &Body) {
    let idle = turn.ctx.now.saturating_sub(turn.state.last_seen);
    let first_contact = matches!(turn.state.step, Step::New);
    turn.state.last_seen = turn.ctx.now;

    if turn.ctx.profile.lang.is_none() && matches!(turn.state.step, Step::New) {
        // A new citizen always gets the bilingual greeting and the language choice first;
        // Devanagari text puts Hindi first, as the channel's language hint does.
        let hint = match body {
            Body::Text { text } if has_devanagari(text) => Some(Lang::Hi),
            _ => turn.ctx.profile.lang_hint,
        };
        if let Body::Text { text } = body
            && let Some(Global::Begin { payload: Some(p) }) = words::global_command(text)
        {
            turn.state.step = Step::Language {
                resume: None,
                lookup: status::deep_link(&p),
            };
            menu::ask_language_with_hint(turn, hint);
            return;
        }
        turn.state.step = Step::Language {
            resume: None,
            lookup: None,
        };
        menu::ask_language_with_hint(turn, hint);
        return;
    }

    let expired_while_away = std::mem::take(&mut turn.state.draft_expired);
    if let Body::Text { text } = body
        && let Some(global) = words::global_command(text)
    {
        on_global(turn, global);
        return;
    }
    if expired_while_away && matches!(turn.state.step, Step::Menu) {
        turn.say(Text::new("draft-expired"));
        menu::show_menu(turn);
        return;
    }

    if turn.state.in_journey() && !first_contact && idle > IDLE_AFTER_SECS {
        if idle > DRAFT_KEPT_SECS {
            turn.state.draft = None;
            turn.say(Text::new("draft-expired"));
            menu::show_menu(turn);
        } else {
            let resume_to = Box::new(turn.state.step.clone());
            turn.state.step = Step::ResumeOffer { resume_to };
            menu::offer_resume(turn);
        }
        return;
    }

    match turn.state.step.clone() {
        Step::New => menu::on_first_message(turn, body),
        Step::Language { resume, lookup } => {
            menu::on_language(turn, body, resume.map(|b| *b), lookup)
        }
        Step::Menu => menu::on_menu(turn, body),
        Step::Ask {
            field,
            page,
            editing,
        } => report::on_field(turn, body, field, page, editing),
        Step::Review => report::on_review(turn, body),
        Step::EditPick => report::on_edit_pick(turn, body),
        Step::StatusAsk => status::on_reference(turn, body),
        Step::ResumeOffer { resume_to } => menu::on_resume(turn, body, *resume_to),
        Step::DeleteConfirm => menu::on_delete_confirm(turn, body),
    }
}

fn on_global(turn: &mut Turn<'_, '_>, global: Global) {
    match global {
        Global::Cancel => {
            if turn.state.draft.take().is_some() {
                turn.say(Text::new("cancelled"));
            }
            menu::show_menu_or_language(turn);
        }
        Global::Menu => {
            if turn.state.draft.take().is_some() {
                turn.say(Text::new("draft-discarded"));
            }
            menu::show_menu_or_language(turn);
        }
        Global::Back => back(turn),
        Global::Help => {
            turn.say(Text::new("help"));
            reprompt(turn);
        }
        Global::Language => {
            let resume = match &turn.state.step {
                Step::Language { resume, .. } => resume.clone(),
                Step::New => None,
                other => Some(Box::new(other.clone())),
            };
            menu::ask_language(turn, resume.map(|b| *b));
        }
        Global::StopPushes => {
            turn.effect(Effect::SetPushes { enabled: false });
            turn.say(Text::new("pushes-stopped"));
            reprompt(turn);
        }
        Global::StartPushes => {
            turn.effect(Effect::SetPushes { enabled: true });
            turn.say(Text::new("pushes-started"));
            reprompt(turn);
        }
        Global::DeleteMyData => {
            turn.state.step = Step::DeleteConfirm;
            menu::ask_delete(turn);
        }
        Global::Status => {
            turn.state.draft = None;
            status::ask_reference(turn);
        }
        Global::Begin { payload } => {
            turn.state.draft = None;
            if let Some(reference) = payload.as_deref().and_then(status::deep_link) {
                status::lookup(turn, reference);
            } else {
                turn.say(Text::new("welcome-back"));
                menu::show_menu_or_language(turn);
            }
        }
    }
}

/// Goes one question back; at the start of a journey, back to the menu.
fn back(turn: &mut Turn<'_, '_>) {
    match turn.state.step.clone() {
        Step::Ask { field, editing, .. } => {
            if editing {
                report::show_review(turn);
            } else {
                report::previous_field(turn, field);
            }
        }
        Step::Review => report::last_field(turn),
        Step::EditPick => report::show_review(turn),
        Step::ResumeOffer { resume_to } => {
            turn.state.step = *resume_to;
            reprompt(turn);
        }
        Step::Language {
            resume: Some(resume),
            ..
        } if turn.ctx.profile.lang.is_some() => {
            turn.state.step = *resume;
            reprompt(turn);
        }
        _ => menu::show_menu_or_language(turn),
    }
}

/// Asks the current question again (after help, an error, a language change).
pub(crate) fn reprompt(turn: &mut Turn<'_, '_>) {
    match turn.state.step.clone() {
        Step::New | Step::Menu => menu::show_menu_or_language(turn),
        Step::Language { resume, .. } => menu::ask_language(turn, resume.map(|b| *b)),
        Step::Ask {
            field,
            page,
            editing,
        } => report::ask(turn, field, page, editing),
        Step::Review => report::show_review(turn),
        Step::EditPick => report::ask_edit_pick(turn),
        Step::StatusAsk => status::ask_reference(turn),
        Step::ResumeOffer { .. } => menu::offer_resume(turn),
        Step::DeleteConfirm => menu::ask_delete(turn),
    }
}

/// Tells the citizen why a message was not understood, then asks again.
pub(crate) fn not_understood(
    turn: &mut Turn<'_, '_>,
    picked: Picked<'_>,
    body: &Body,
    choices: usize,
) {
    match picked {
        Picked::Stale => turn.say(Text::new("menu-expired")),
        Picked::BadNumber => {
            turn.say(Text::new("option-out-of-range").arg("count", choices as i64))
        }
        _ => match body {
            Body::Text { .. } | Body::Choice { .. } => turn.say(Text::new("not-understood")),
            Body::Unsupported { .. } => turn.say(Text::new("unsupported-type")),
            Body::Location { .. } => turn.say(Text::new("unexpected-location")),
            Body::Contact { .. } => turn.say(Text::new("unexpected-contact")),
            Body::Media { .. } => turn.say(Text::new("unexpected-media")),
        },
    }
    reprompt(turn);
}

pub(crate) fn has_devanagari(s: &str) -> bool {
    s.chars().any(|c| ('\u{0900}'..='\u{097F}').contains(&c))
}

/// Yes/no as choices and as typed words.
pub(crate) fn yes_no(
    body: &Body,
    yes_id: &str,
    no_id: &str,
    choices: &[Choice],
    catalog: &Catalog,
) -> Option<bool> {
    match pick(body, choices, catalog, &[]) {
        Picked::Choice(id) if id == yes_id => Some(true),
        Picked::Choice(id) if id == no_id => Some(false),
        Picked::Other(Some(text)) => words::yes_no(text),
        _ => None,
    }
}
