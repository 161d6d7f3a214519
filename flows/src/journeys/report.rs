//! The three report journeys — complaint, lost item, found item — as one list of fields per
//! kind, asked in order, then a review where any field can be edited, then confirm.

use super::menu::{kind_msg, show_menu};
use super::{Picked, Turn, choice, not_understood, pick, reprompt, yes_no};
use crate::effect::{Attachment, Custody, Effect, NewReport, Place};
use crate::message::{Body, Channel, MediaKind};
use crate::reference::{Reference, ReportKind};
use crate::reply::{Choice, Hint, Label, Text};
use crate::state::{Draft, Field, Step};
use crate::understand::date::{DateError, parse_past_date};
use crate::understand::imei::{ImeiError, mask_document, parse_imei};
use crate::understand::phone::{display as display_phone, parse_indian_mobile};
use crate::understand::text::{TextError, bounded, name as read_name};

/// Longest complaint narrative, in characters as people see them.
pub const MAX_DESCRIPTION: usize = 1000;
/// Longest item description or typed address.
pub const MAX_SHORT_TEXT: usize = 300;
/// Most attachments on one report.
pub const MAX_ATTACHMENTS: usize = 5;
/// Rows per page of a station list: WhatsApp lists hold 10 rows, two go to "not sure" and "more".
const STATIONS_PER_PAGE: usize = 8;
const DISTRICTS_PER_PAGE: usize = 9;

/// Complaint category ids, in menu order (Fluent `choice-cat-<id>`).
pub const COMPLAINT_CATEGORIES: [&str; 9] = [
    "theft",
    "cyber",
    "harassment",
    "women",
    "missing",
    "property",
    "nuisance",
    "drugs_liquor_gambling",
    "other",
];
const ITEM_TYPES: [&str; 7] = [
    "mobile",
    "id_document",
    "wallet",
    "bag",
    "jewellery",
    "vehicle_papers",
    "other",
];

/// Hinglish and everyday words for choices, beside their labels in both languages.
const ALIASES: &[(&str, &[&str])] = &[
    ("cat:theft", &["chori", "चोरी", "theft", "stolen"]),
    (
        "cat:cyber",
        &[
            "cyber",
            "साइबर",
            "ऑनलाइन ठगी",
            "fraud",
            "online fraud",
            "thagi",
            "ठगी",
            "dhokha",
            "धोखा",
            "upi fraud",
        ],
    ),
    (
        "cat:harassment",
        &["harassment", "threat", "dhamki", "धमकी", "pareshan"],
    ),
    ("cat:women", &["women", "mahila", "महिला"]),
    ("cat:missing", &["missing", "lapata", "लापता", "gum"]),
    (
        "cat:property",
        &["property", "zameen", "jameen", "ज़मीन", "जमीन"],
    ),
    ("cat:nuisance", &["nuisance", "shor", "शोर", "updrav"]),
    (
        "cat:drugs_liquor_gambling",
        &[
            "drugs",
            "nasha",
            "नशा",
            "liquor",
            "sharab",
            "daru",
            "शराब",
            "दारू",
            "gambling",
            "jua",
            "जुआ",
            "satta",
            "सट्टा",
        ],
    ),
    ("cat:other", &["other", "anya", "अन्य", "dusra", "कुछ और"]),
    (
        "item:mobile",
        &["mobile", "phone", "फोन", "फ़ोन", "मोबाइल", "smartphone"],
    ),
    (
        "item:id_document",
        &[
            "aadhaar",
            "aadhar",
            "आधार",
            "pan",
            "पैन",
            "passport",
            "licence",
            "license",
            "id card",
            "document",
        ],
    ),
    ("item:wallet", &["wallet", "purse", "batua", "बटुआ", "पर्स"]),
    ("item:bag", &["bag", "बैग", "thaila", "थैला"]),
    (
        "item:jewellery",
        &["jewellery", "jewelry", "gahne", "गहने", "zevar", "ज़ेवर"],
    ),
    (
        "item:vehicle_papers",
        &["rc", "vehicle papers", "gaadi ke kagaz", "गाड़ी के कागज़"],
    ),
    ("item:other", &["other", "anya", "अन्य"]),
    ("when:today", &["today", "aaj", "आज"]),
    ("when:yesterday", &["yesterday", "kal", "कल"]),
    (
        "skip",
        &[
            "skip",
            "chhodo",
            "छोड़ें",
            "nahi pata",
            "नहीं पता",
            "pata nahi",
            "पता नहीं",
        ],
    ),
    (
        "done",
        &[
            "done",
            "ho gaya",
            "हो गया",
            "bas",
            "बस",
            "skip",
            "no",
            "nahi",
            "नहीं",
        ],
    ),
    (
        "not-sure",
        &["not sure", "pata nahi", "पता नहीं", "nahi pata", "नहीं पता"],
    ),
    ("more", &["more", "aur", "और", "next", "aage", "आगे"]),
    ("custody:with_me", &["with me", "mere paas", "मेरे पास"]),
    (
        "custody:at_station",
        &["at station", "thane mein", "थाने में", "police station"],
    ),
];

/// The fields of a journey, in order, given what the draft holds so far. `anonymous_allowed`:
/// the draft's category is open to anonymous tips.
fn fields(draft: &Draft, districts: usize, anonymous_allowed: bool) -> Vec<Field> {
    let mut f = vec![Field::Category];
    if draft.kind == ReportKind::Complaint && (anonymous_allowed || draft.anonymous.is_some()) {
        f.push(Field::Anonymous);
    }
    let identifier = matches!(draft.category.as_deref(), Some("mobile" | "id_document"));
    match draft.kind {
        ReportKind::Complaint => f.extend([Field::Description, Field::When, Field::Place]),
        ReportKind::Lost | ReportKind::Found => {
            if identifier {
                f.push(Field::Identifier);
            }
            f.extend([Field::Description, Field::When, Field::Place]);
        }
    }
    // With a single district there is nothing to choose.
    if districts > 1 {
        f.push(Field::District);
    }
    f.push(Field::Station);
    if draft.kind == ReportKind::Found {
        f.push(Field::Custody);
    }
    if draft.anonymous != Some(true) {
        f.extend([Field::Name, Field::Phone]);
    }
    if draft.kind == ReportKind::Complaint {
        f.extend([Field::Attachments, Field::Consent]);
    }
    f
}

fn draft<'t>(turn: &'t Turn<'_, '_>) -> Option<&'t Draft> {
    turn.state.draft.as_ref()
}

fn journey_fields(turn: &Turn<'_, '_>) -> Vec<Field> {
    match draft(turn) {
        Some(d) => fields(
            d,
            turn.ctx.stations.districts().len(),
            anonymous_allowed(turn, d.category.as_deref()),
        ),
        None => Vec::new(),
    }
}

/// Whether the operator opened this complaint category to anonymous tips.
fn anonymous_allowed(turn: &Turn<'_, '_>, category: Option<&str>) -> bool {
    let kind = draft(turn).map(|d| d.kind);
    kind == Some(ReportKind::Complaint)
        && category.is_some_and(|c| turn.ctx.anonymous_categories.iter().any(|a| a == c))
}

pub(super) fn start(turn: &mut Turn<'_, '_>) {
    if let Some(kind) = draft(turn).map(|d| d.kind) {
        turn.say(Text::new(match kind {
            ReportKind::Complaint => "complaint-intro",
            ReportKind::Lost => "lost-intro",
            ReportKind::Found => "found-intro",
        }));
    }
    ask(turn, Field::Category, 0, false);
}

/// After a field is answered: the next field, or back to the review when editing.
fn advance(turn: &mut Turn<'_, '_>, answered: Field, editing: bool) {
    if editing {
        // Changing the item type can add an identifier question the draft has not answered.
        let fields = journey_fields(turn);
        if answered == Field::Category && fields.contains(&Field::Identifier) {
            return ask(turn, Field::Identifier, 0, true);
        }
        if answered == Field::Category
            && fields.contains(&Field::Anonymous)
            && draft(turn).is_some_and(|d| d.anonymous.is_none())
        {
            return ask(turn, Field::Anonymous, 0, true);
        }
        if answered == Field::District {
            return ask(turn, Field::Station, 0, true);
        }
        // An edit can make fields necessary (name and number once a tip is no longer
        // anonymous): ask them, still editing, before the review.
        if let Some(missing) = fields.iter().find(|f| is_missing(turn, **f)) {
            return ask(turn, *missing, 0, true);
        }
        return show_review(turn);
    }
    let fields = journey_fields(turn);
    let next = fields
        .iter()
        .position(|f| *f == answered)
        .and_then(|i| fields.get(i + 1))
        .copied();
    match next {
        Some(field) => ask(turn, field, 0, false),
        None => show_review(turn),
    }
}

pub(super) fn previous_field(turn: &mut Turn<'_, '_>, current: Field) {
    let fields = journey_fields(turn);
    match fields.iter().position(|f| *f == current) {
        Some(i) if i > 0 => ask(turn, fields[i - 1], 0, false),
        _ => {
            turn.say(Text::new("draft-discarded"));
            show_menu(turn);
        }
    }
}

pub(super) fn last_field(turn: &mut Turn<'_, '_>) {
    match journey_fields(turn).last() {
        Some(f) => ask(turn, *f, 0, false),
        None => show_menu(turn),
    }
}

fn category_choices(kind: ReportKind) -> Vec<Choice> {
    match kind {
        ReportKind::Complaint => COMPLAINT_CATEGORIES
            .iter()
            .map(|c| choice(&format!("cat:{c}"), &format!("choice-cat-{c}")))
            .collect(),
        ReportKind::Lost | ReportKind::Found => ITEM_TYPES
            .iter()
            .map(|c| choice(&format!("item:{c}"), &format!("choice-item-{c}")))
            .collect(),
    }
}

fn district_choices(turn: &Turn<'_, '_>, page: u16) -> Vec<Choice> {
    let all = turn.ctx.stations.districts();
    let start = page as usize * DISTRICTS_PER_PAGE;
    let mut out: Vec<Choice> = all
        .iter()
        .skip(start)
        .take(DISTRICTS_PER_PAGE)
        .map(|d| Choice {
            id: format!("d:{}", d.id),
            label: Label::Raw(d.name(turn.lang).to_owned()),
        })
        .collect();
    if all.len() > DISTRICTS_PER_PAGE {
        out.push(choice("more", "choice-more"));
    }
    out
}

fn district_id(turn: &Turn<'_, '_>) -> Option<String> {
    let districts = turn.ctx.stations.districts();
    if districts.len() == 1 {
        return Some(districts[0].id.clone());
    }
    draft(turn).and_then(|d| d.district_id.clone())
}

fn station_choices(turn: &Turn<'_, '_>, page: u16) -> Vec<Choice> {
    let mut out = vec![choice("not-sure", "choice-not-sure")];
    let Some(district) = district_id(turn) else {
        return out;
    };
    let all = turn.ctx.stations.stations_in(&district);
    out.extend(
        all.iter()
            .skip(page as usize * STATIONS_PER_PAGE)
            .take(STATIONS_PER_PAGE)
            .map(|s| Choice {
                id: format!("st:{}", s.id),
                label: Label::Raw(s.name(turn.lang).to_owned()),
            }),
    );
    if all.len() > STATIONS_PER_PAGE {
        out.push(choice("more", "choice-more"));
    }
    out
}

fn page_count(items: usize, per_page: usize) -> u16 {
    items.div_ceil(per_page).max(1) as u16
}

fn phone_known(turn: &Turn<'_, '_>) -> Option<String> {
    turn.ctx
        .profile
        .phone
        .clone()
        .or_else(|| turn.ctx.profile.channel_phone.clone())
}

fn choices_for(turn: &Turn<'_, '_>, field: Field, page: u16) -> Vec<Choice> {
    let kind = draft(turn).map(|d| d.kind).unwrap_or(ReportKind::Complaint);
    match field {
        Field::Category => category_choices(kind),
        Field::Identifier => vec![choice("skip", "choice-skip")],
        Field::When => vec![
            choice("when:today", "choice-when-today"),
            choice("when:yesterday", "choice-when-yesterday"),
        ],
        Field::District => district_choices(turn, page),
        Field::Station => station_choices(turn, page),
        Field::Custody => vec![
            choice("custody:with_me", "choice-custody-with_me"),
            choice("custody:at_station", "choice-custody-at_station"),
        ],
        Field::Phone if page == 0 && phone_known(turn).is_some() => {
            vec![
                choice("phone:use", "choice-phone-use"),
                choice("phone:other", "choice-phone-other"),
            ]
        }
        Field::Attachments => vec![choice("done", "choice-done")],
        Field::Anonymous => vec![
            choice("anonymous:yes", "choice-anonymous-yes"),
            choice("anonymous:no", "choice-anonymous-no"),
        ],
        Field::Consent => vec![
            choice("consent:yes", "choice-consent-yes"),
            choice("consent:no", "choice-consent-no"),
        ],
        Field::Description | Field::Place | Field::Name | Field::Phone => Vec::new(),
    }
}

/// Asks for a field. `page` pages long lists; for the phone it means "type another number".
pub(super) fn ask(turn: &mut Turn<'_, '_>, field: Field, page: u16, editing: bool) {
    turn.state.step = Step::Ask {
        field,
        page,
        editing,
    };
    let kind = draft(turn).map(|d| d.kind).unwrap_or(ReportKind::Complaint);
    let category = draft(turn)
        .and_then(|d| d.category.clone())
        .unwrap_or_default();
    let choices = choices_for(turn, field, page);
    let mut hint = None;
    let prompt = match field {
        Field::Category => Text::new(match kind {
            ReportKind::Complaint => "ask-category",
            ReportKind::Lost => "ask-item-lost",
            ReportKind::Found => "ask-item-found",
        }),
        Field::Description => Text::new(match kind {
            ReportKind::Complaint => "ask-description",
            ReportKind::Lost => "ask-details-lost",
            ReportKind::Found => "ask-details-found",
        })
        .arg("max", MAX_DESCRIPTION.min(max_len(kind)) as i64),
        Field::Identifier if category == "mobile" => Text::new("ask-imei"),
        Field::Identifier => Text::new("ask-document-number"),
        Field::When => Text::new(match kind {
            ReportKind::Complaint => "ask-when",
            ReportKind::Lost => "ask-when-lost",
            ReportKind::Found => "ask-when-found",
        }),
        Field::Place => {
            hint = Some(Hint::AskLocation);
            Text::new(match kind {
                ReportKind::Complaint => "ask-place",
                ReportKind::Lost => "ask-place-lost",
                ReportKind::Found => "ask-place-found",
            })
        }
        Field::District => Text::new("ask-district"),
        Field::Station => {
            let total = district_id(turn)
                .map(|d| turn.ctx.stations.stations_in(&d).len())
                .unwrap_or(0);
            let pages = page_count(total, STATIONS_PER_PAGE);
            let nearest = nearest_station_name(turn);
            let mut t = Text::new("ask-station")
                .arg("page", page as i64 + 1)
                .arg("pages", pages as i64);
            if let Some(name) = nearest {
                turn.say(Text::new("station-nearest").arg("station", name));
            }
            t = t.arg("district", district_name(turn));
            t
        }
        Field::Custody => Text::new("ask-custody"),
        Field::Name => Text::new("ask-name"),
        Field::Phone => match phone_known(turn) {
            Some(phone) if page == 0 => {
                Text::new("ask-phone-confirm").arg("phone", display_phone(&phone))
            }
            _ => {
                if turn.ctx.profile.channel == Channel::Telegram {
                    hint = Some(Hint::AskContact);
                }
                Text::new("ask-phone")
            }
        },
        Field::Attachments => {
            let n = draft(turn).map(|d| d.attachments.len()).unwrap_or(0);
            Text::new("ask-attachments")
                .arg("count", n as i64)
                .arg("max", MAX_ATTACHMENTS as i64)
        }
        Field::Consent => Text::new("ask-consent"),
        Field::Anonymous => Text::new("ask-anonymous"),
    };
    turn.prompt(prompt, choices, hint);
}

fn max_len(kind: ReportKind) -> usize {
    match kind {
        ReportKind::Complaint => MAX_DESCRIPTION,
        ReportKind::Lost | ReportKind::Found => MAX_SHORT_TEXT,
    }
}

fn district_name(turn: &Turn<'_, '_>) -> String {
    district_id(turn)
        .and_then(|id| {
            turn.ctx
                .stations
                .district(&id)
                .map(|d| d.name(turn.lang).to_owned())
        })
        .unwrap_or_default()
}

/// With a shared location, the nearest station of the chosen district is suggested.
fn nearest_station_name(turn: &Turn<'_, '_>) -> Option<String> {
    let Some(Place::Location {
        latitude,
        longitude,
        ..
    }) = draft(turn).and_then(|d| d.place.clone())
    else {
        return None;
    };
    let station = turn.ctx.stations.nearest(latitude, longitude)?;
    (Some(station.district_id.clone()) == district_id(turn))
        .then(|| station.name(turn.lang).to_owned())
}

fn text_error(turn: &mut Turn<'_, '_>, e: TextError) {
    turn.say(match e {
        TextError::Empty => Text::new("text-empty"),
        TextError::TooLong { max, got } => Text::new("text-too-long")
            .arg("max", max as i64)
            .arg("got", got as i64),
        TextError::NoLetters => Text::new("text-no-letters"),
    });
}

fn draft_mut<'t>(turn: &'t mut Turn<'_, '_>) -> Option<&'t mut Draft> {
    turn.state.draft.as_mut()
}

/// Attaches a photo, document or voice note to the draft, from any step of a journey.
fn attach(
    turn: &mut Turn<'_, '_>,
    kind: MediaKind,
    file_id: &str,
    mime: &Option<String>,
    caption: &Option<String>,
) {
    let Some(d) = draft_mut(turn) else { return };
    if d.attachments.len() >= MAX_ATTACHMENTS {
        turn.say(Text::new("attachments-full").arg("max", MAX_ATTACHMENTS as i64));
        return;
    }
    let caption = caption
        .as_deref()
        .and_then(|c| bounded(c, MAX_SHORT_TEXT).ok());
    d.attachments.push(Attachment {
        kind,
        file_id: file_id.to_owned(),
        mime: mime.clone(),
        caption,
    });
    let count = d.attachments.len() as i64;
    if kind == MediaKind::Voice {
        turn.say(Text::new("voice-added").arg("count", count));
    } else {
        turn.say(Text::new("attachment-added").arg("count", count));
    }
}

pub(super) fn on_field(
    turn: &mut Turn<'_, '_>,
    body: &Body,
    field: Field,
    page: u16,
    editing: bool,
) {
    if draft(turn).is_none() {
        return show_menu(turn);
    }
    if let Body::Media {
        kind,
        file_id,
        mime,
        caption,
    } = body
        && *kind != MediaKind::Sticker
    {
        attach(turn, *kind, file_id, mime, caption);
        return ask(turn, field, page, editing);
    }
    let choices = choices_for(turn, field, page);
    let picked = pick(body, &choices, turn.catalog(), ALIASES);
    let kind = draft(turn).map(|d| d.kind).unwrap_or(ReportKind::Complaint);

    match field {
        Field::Category => {
            let Picked::Choice(id) = picked else {
                return not_understood(turn, picked, body, choices.len());
            };
            let category = id.split_once(':').map(|(_, c)| c.to_owned()).unwrap_or(id);
            let allowed = anonymous_allowed(turn, Some(&category));
            if let Some(d) = draft_mut(turn) {
                if d.category.as_deref() != Some(category.as_str()) {
                    d.identifier = None;
                    // Asked again for a category open to tips; otherwise filed with a name.
                    d.anonymous = None;
                }
                if !allowed {
                    d.anonymous = None;
                }
                d.category = Some(category.clone());
            }
            match category.as_str() {
                "cyber" => turn.say(Text::new("note-cyber-1930")),
                "missing" | "harassment" | "women" => turn.say(Text::new("note-danger-112")),
                _ => {}
            }
            advance(turn, field, editing);
        }
        Field::Description => {
            let Picked::Other(Some(text)) = picked else {
                return not_understood(turn, picked, body, 0);
            };
            match bounded(text, max_len(kind)) {
                Ok(t) => {
                    if let Some(d) = draft_mut(turn) {
                        d.description = Some(t);
                    }
                    advance(turn, field, editing);
                }
                Err(e) => {
                    text_error(turn, e);
                    reprompt(turn);
                }
            }
        }
        Field::Identifier => {
            let category = draft(turn)
                .and_then(|d| d.category.clone())
                .unwrap_or_default();
            let value = match picked {
                Picked::Choice(_) => None,
                Picked::Other(Some(text)) if category == "mobile" => match parse_imei(text) {
                    Ok(imei) => Some(imei),
                    Err(ImeiError::NotFifteenDigits) => {
                        turn.say(Text::new("imei-length"));
                        return reprompt(turn);
                    }
                    Err(ImeiError::BadCheckDigit) => {
                        turn.say(Text::new("imei-check"));
                        return reprompt(turn);
                    }
                },
                Picked::Other(Some(text)) => match mask_document(text) {
                    Some(masked) => Some(masked),
                    None => {
                        turn.say(Text::new("document-invalid"));
                        return reprompt(turn);
                    }
                },
                other => return not_understood(turn, other, body, choices.len()),
            };
            if let Some(d) = draft_mut(turn) {
                d.identifier = value;
            }
            advance(turn, field, editing);
        }
        Field::When => {
            let today = turn.ctx.today;
            let date = match picked {
                Picked::Choice(id) if id == "when:today" => today,
                Picked::Choice(_) => today.pred_opt().unwrap_or(today),
                Picked::Other(Some(text)) => match parse_past_date(text, today) {
                    Ok(d) => d,
                    Err(e) => {
                        turn.say(Text::new(match e {
                            DateError::Future => "date-future",
                            DateError::TooOld => "date-too-old",
                            DateError::Unreadable => "date-unreadable",
                        }));
                        return reprompt(turn);
                    }
                },
                other => return not_understood(turn, other, body, choices.len()),
            };
            if let Some(d) = draft_mut(turn) {
                d.occurred_on = Some(date);
            }
            advance(turn, field, editing);
        }
        Field::Place => {
            let place = match body {
                Body::Location {
                    latitude,
                    longitude,
                    name,
                    address,
                } if latitude.is_finite()
                    && longitude.is_finite()
                    && (-90.0..=90.0).contains(latitude)
                    && (-180.0..=180.0).contains(longitude) =>
                {
                    let label = name.clone().or_else(|| address.clone());
                    Place::Location {
                        latitude: *latitude,
                        longitude: *longitude,
                        label,
                    }
                }
                Body::Text { text } => match bounded(text, MAX_SHORT_TEXT) {
                    Ok(t) => Place::Address { text: t },
                    Err(e) => {
                        text_error(turn, e);
                        return reprompt(turn);
                    }
                },
                _ => return not_understood(turn, picked, body, 0),
            };
            if let Some(d) = draft_mut(turn) {
                d.place = Some(place);
            }
            advance(turn, field, editing);
        }
        Field::District => match picked {
            Picked::Choice(id) if id == "more" => {
                let pages = page_count(turn.ctx.stations.districts().len(), DISTRICTS_PER_PAGE);
                ask(turn, field, (page + 1) % pages, editing)
            }
            Picked::Choice(id) => {
                if let Some(d) = draft_mut(turn) {
                    d.district_id = id.strip_prefix("d:").map(str::to_owned);
                    d.station_id = None;
                }
                advance(turn, field, editing);
            }
            Picked::Other(Some(text)) => {
                let folded = crate::understand::words::fold(text);
                let found: Vec<String> = turn
                    .ctx
                    .stations
                    .districts()
                    .iter()
                    .filter(|d| {
                        folded.chars().count() >= 2
                            && (d.name_en.to_lowercase().contains(&folded)
                                || d.name_hi.contains(folded.as_str()))
                    })
                    .map(|d| d.id.clone())
                    .collect();
                if let [one] = found.as_slice() {
                    if let Some(d) = draft_mut(turn) {
                        d.district_id = Some(one.clone());
                        d.station_id = None;
                    }
                    advance(turn, field, editing)
                } else {
                    not_understood(turn, Picked::Other(Some(text)), body, choices.len())
                }
            }
            other => not_understood(turn, other, body, choices.len()),
        },
        Field::Station => on_station(turn, body, picked, page, editing, choices.len()),
        Field::Custody => {
            let custody = match picked {
                Picked::Choice(id) if id == "custody:with_me" => Custody::WithMe,
                Picked::Choice(_) => Custody::AtStation,
                other => return not_understood(turn, other, body, choices.len()),
            };
            if let Some(d) = draft_mut(turn) {
                d.custody = Some(custody);
            }
            advance(turn, field, editing);
        }
        Field::Name => {
            let Picked::Other(Some(text)) = picked else {
                return not_understood(turn, picked, body, 0);
            };
            match read_name(text) {
                Ok(n) => {
                    if let Some(d) = draft_mut(turn) {
                        d.name = Some(n);
                    }
                    advance(turn, field, editing);
                }
                Err(e) => {
                    text_error(turn, e);
                    reprompt(turn);
                }
            }
        }
        Field::Phone => on_phone(turn, body, picked, page, editing, choices.len()),
        Field::Attachments => match picked {
            Picked::Choice(_) => advance(turn, field, editing),
            Picked::Other(Some(text)) => {
                // A typed line after a voice note is its short description.
                let waiting_voice = draft(turn)
                    .and_then(|d| d.attachments.last())
                    .is_some_and(|a| a.kind == MediaKind::Voice && a.caption.is_none());
                if !waiting_voice {
                    return not_understood(turn, Picked::Other(Some(text)), body, choices.len());
                }
                match bounded(text, MAX_SHORT_TEXT) {
                    Ok(t) => {
                        if let Some(a) = draft_mut(turn).and_then(|d| d.attachments.last_mut()) {
                            a.caption = Some(t);
                        }
                        turn.say(Text::new("voice-described"));
                        reprompt(turn);
                    }
                    Err(e) => {
                        text_error(turn, e);
                        reprompt(turn);
                    }
                }
            }
            other => not_understood(turn, other, body, choices.len()),
        },
        Field::Anonymous => {
            match yes_no(
                body,
                "anonymous:yes",
                "anonymous:no",
                &choices,
                turn.catalog(),
            ) {
                Some(anonymous) => {
                    if let Some(d) = draft_mut(turn) {
                        d.anonymous = Some(anonymous);
                        if anonymous {
                            d.name = None;
                            d.phone = None;
                        }
                    }
                    advance(turn, field, editing);
                }
                None => not_understood(turn, picked, body, choices.len()),
            }
        }
        Field::Consent => match yes_no(body, "consent:yes", "consent:no", &choices, turn.catalog())
        {
            Some(true) => {
                if let Some(d) = draft_mut(turn) {
                    d.consent = true;
                }
                advance(turn, field, editing);
            }
            Some(false) => {
                turn.say(Text::new("consent-declined"));
                show_menu(turn);
            }
            None => not_understood(turn, picked, body, choices.len()),
        },
    }
}

fn on_station(
    turn: &mut Turn<'_, '_>,
    body: &Body,
    picked: Picked<'_>,
    page: u16,
    editing: bool,
    n: usize,
) {
    let Some(district) = district_id(turn) else {
        return ask(turn, Field::District, 0, editing);
    };
    let station = match picked {
        Picked::Choice(id) if id == "more" => {
            let pages = page_count(
                turn.ctx.stations.stations_in(&district).len(),
                STATIONS_PER_PAGE,
            );
            return ask(turn, Field::Station, (page + 1) % pages, editing);
        }
        Picked::Choice(id) if id == "not-sure" => match turn.ctx.stations.control_room(&district) {
            Some(room) => room.id.clone(),
            None => {
                turn.say(Text::new("station-no-control-room"));
                return reprompt(turn);
            }
        },
        Picked::Choice(id) => id.strip_prefix("st:").unwrap_or(&id).to_owned(),
        Picked::Other(Some(text)) => {
            let found = turn.ctx.stations.search(&district, text);
            match found.as_slice() {
                [one] => one.id.clone(),
                [] => {
                    turn.say(Text::new("station-no-match"));
                    return reprompt(turn);
                }
                many => {
                    // Several stations match: offer just those.
                    let choices: Vec<Choice> = many
                        .iter()
                        .take(9)
                        .map(|s| Choice {
                            id: format!("st:{}", s.id),
                            label: Label::Raw(s.name(turn.lang).to_owned()),
                        })
                        .chain(std::iter::once(choice("not-sure", "choice-not-sure")))
                        .collect();
                    turn.state.step = Step::Ask {
                        field: Field::Station,
                        page,
                        editing,
                    };
                    turn.prompt(Text::new("station-several"), choices, None);
                    return;
                }
            }
        }
        other => return not_understood(turn, other, body, n),
    };
    if turn.ctx.stations.station(&station).is_none() {
        turn.say(Text::new("menu-expired"));
        return reprompt(turn);
    }
    if let Some(d) = draft_mut(turn) {
        d.district_id = Some(district);
        d.station_id = Some(station);
    }
    advance(turn, Field::Station, editing);
}

fn on_phone(
    turn: &mut Turn<'_, '_>,
    body: &Body,
    picked: Picked<'_>,
    page: u16,
    editing: bool,
    n: usize,
) {
    let phone = match (body, picked) {
        (_, Picked::Choice(id)) if id == "phone:use" => phone_known(turn),
        (_, Picked::Choice(_)) => return ask(turn, Field::Phone, 1, editing),
        (Body::Contact { phone, own }, _) => {
            if !own && turn.ctx.profile.channel == Channel::Telegram {
                turn.say(Text::new("contact-not-own"));
                return reprompt(turn);
            }
            match parse_indian_mobile(phone) {
                Some(p) => Some(p),
                None => {
                    turn.say(Text::new("phone-invalid"));
                    return reprompt(turn);
                }
            }
        }
        (_, Picked::Other(Some(text))) => {
            if page == 0 && phone_known(turn).is_some() {
                if let Some(yes) = crate::understand::words::yes_no(text) {
                    if yes {
                        phone_known(turn)
                    } else {
                        return ask(turn, Field::Phone, 1, editing);
                    }
                } else {
                    match parse_indian_mobile(text) {
                        Some(p) => Some(p),
                        None => return not_understood(turn, Picked::Other(Some(text)), body, n),
                    }
                }
            } else {
                match parse_indian_mobile(text) {
                    Some(p) => Some(p),
                    None => {
                        turn.say(Text::new("phone-invalid"));
                        return reprompt(turn);
                    }
                }
            }
        }
        (_, other) => return not_understood(turn, other, body, n),
    };
    let Some(phone) = phone else {
        return ask(turn, Field::Phone, 1, editing);
    };
    turn.effect(Effect::SetPhone {
        phone: phone.clone(),
    });
    if let Some(d) = draft_mut(turn) {
        d.phone = Some(phone);
    }
    advance(turn, Field::Phone, editing);
}

fn review_choices() -> Vec<Choice> {
    vec![
        choice("review:confirm", "choice-review-confirm"),
        choice("review:edit", "choice-review-edit"),
        choice("review:cancel", "choice-review-cancel"),
    ]
}

fn field_msg(field: Field) -> &'static str {
    match field {
        Field::Category => "field-category",
        Field::Anonymous => "field-anonymous",
        Field::Description => "field-description",
        Field::Identifier => "field-identifier",
        Field::When => "field-when",
        Field::Place => "field-place",
        Field::District => "field-district",
        Field::Station => "field-station",
        Field::Custody => "field-custody",
        Field::Name => "field-name",
        Field::Phone => "field-phone",
        Field::Attachments => "field-attachments",
        Field::Consent => "field-consent",
    }
}

/// The value of a field as the review shows it, in the citizen's language.
fn field_value(turn: &Turn<'_, '_>, field: Field) -> Option<String> {
    let d = draft(turn)?;
    let lang = turn.lang;
    match field {
        Field::Category => {
            let c = d.category.as_deref()?;
            let id = match d.kind {
                ReportKind::Complaint => format!("choice-cat-{c}"),
                _ => format!("choice-item-{c}"),
            };
            Some(turn.label(&Label::Msg(id)))
        }
        Field::Anonymous => d.anonymous.map(|a| {
            turn.format(&Text::new(if a {
                "review-anonymous-yes"
            } else {
                "review-anonymous-no"
            }))
        }),
        Field::Description => d.description.clone(),
        Field::Identifier => d.identifier.clone(),
        Field::When => d.occurred_on.map(|o| o.format("%d-%m-%Y").to_string()),
        Field::Place => d.place.as_ref().map(|p| match p {
            Place::Address { text } => text.clone(),
            Place::Location {
                latitude,
                longitude,
                label,
            } => match label {
                Some(l) => format!("{l} ({latitude:.5}, {longitude:.5})"),
                None => format!("{latitude:.5}, {longitude:.5}"),
            },
        }),
        Field::District => {
            let id = d.district_id.as_deref()?;
            turn.ctx
                .stations
                .district(id)
                .map(|x| x.name(lang).to_owned())
        }
        Field::Station => {
            let id = d.station_id.as_deref()?;
            turn.ctx
                .stations
                .station(id)
                .map(|s| s.name(lang).to_owned())
        }
        Field::Custody => d.custody.map(|c| {
            turn.label(&Label::Msg(
                match c {
                    Custody::WithMe => "choice-custody-with_me",
                    Custody::AtStation => "choice-custody-at_station",
                }
                .to_owned(),
            ))
        }),
        Field::Name => d.name.clone(),
        Field::Phone => d.phone.as_deref().map(display_phone),
        Field::Attachments => Some(d.attachments.len().to_string()),
        Field::Consent => None,
    }
}

pub(super) fn show_review(turn: &mut Turn<'_, '_>) {
    let Some(kind) = draft(turn).map(|d| d.kind) else {
        return show_menu(turn);
    };
    // A field added by an edit (an IMEI after changing the item to a phone) is asked first.
    let fields = journey_fields(turn);
    if let Some(missing) = fields.iter().find(|f| is_missing(turn, **f)) {
        return ask(turn, *missing, 0, false);
    }
    turn.state.step = Step::Review;
    let lines: Vec<String> = fields
        .iter()
        .filter_map(|f| {
            let value = field_value(turn, *f)?;
            Some(format!(
                "{}: {}",
                turn.format(&Text::new(field_msg(*f))),
                value
            ))
        })
        .collect();
    let kind = turn.format(&Text::new(kind_msg(kind)));
    turn.prompt(
        Text::new("review")
            .arg("kind", kind)
            .arg("summary", lines.join("\n")),
        review_choices(),
        None,
    );
}

fn is_missing(turn: &Turn<'_, '_>, field: Field) -> bool {
    let Some(d) = draft(turn) else { return false };
    match field {
        Field::Category => d.category.is_none(),
        Field::Anonymous => d.anonymous.is_none(),
        Field::Description => d.description.is_none(),
        Field::When => d.occurred_on.is_none(),
        Field::Place => d.place.is_none(),
        Field::District => d.district_id.is_none(),
        Field::Station => d.station_id.is_none(),
        Field::Custody => d.custody.is_none(),
        Field::Name => d.name.is_none(),
        Field::Phone => d.phone.is_none(),
        Field::Consent => !d.consent,
        Field::Identifier | Field::Attachments => false,
    }
}

pub(super) fn on_review(turn: &mut Turn<'_, '_>, body: &Body) {
    let choices = review_choices();
    match pick(
        body,
        &choices,
        turn.catalog(),
        &[(
            "review:confirm",
            &["confirm", "haan", "ha", "yes", "हाँ", "हां", "ok"],
        )],
    ) {
        Picked::Choice(id) if id == "review:confirm" => confirm(turn),
        Picked::Choice(id) if id == "review:edit" => ask_edit_pick(turn),
        Picked::Choice(_) => {
            turn.state.draft = None;
            turn.say(Text::new("cancelled"));
            show_menu(turn);
        }
        picked => not_understood(turn, picked, body, choices.len()),
    }
}

fn confirm(turn: &mut Turn<'_, '_>) {
    let lang = turn.lang;
    let reference_seed = turn.ctx.fresh.reference;
    let Some(d) = draft_mut(turn) else {
        return show_menu(turn);
    };
    // Filing is idempotent on the draft id, so a confirm repeated after a crash files once.
    d.submitted = true;
    let mut report = NewReport {
        draft_id: d.id.clone(),
        reference: Reference::generate(d.kind, reference_seed),
        kind: d.kind,
        category: d.category.clone().unwrap_or_else(|| "other".to_owned()),
        description: d.description.clone(),
        identifier: d.identifier.clone(),
        occurred_on: d.occurred_on,
        place: d.place.clone(),
        district_id: d.district_id.clone(),
        station_id: d.station_id.clone(),
        name: d.name.clone(),
        phone: d.phone.clone(),
        custody: d.custody,
        attachments: d.attachments.clone(),
        lang,
        anonymous: d.anonymous == Some(true),
    };
    if report.anonymous {
        // Never filed with a name or number, whatever an edit left behind.
        report.name = None;
        report.phone = None;
    }
    turn.effect(Effect::FileReport {
        report: Box::new(report),
    });
}

pub(super) fn on_filed(turn: &mut Turn<'_, '_>, reference: &Reference, station: Option<&str>) {
    let kind = reference.kind();
    let station_name = station
        .and_then(|id| turn.ctx.stations.station(id))
        .map(|s| s.name(turn.lang).to_owned())
        .unwrap_or_else(|| "-".to_owned());
    let cyber = draft(turn).and_then(|d| d.category.as_deref()) == Some("cyber");
    let anonymous = draft(turn).is_some_and(|d| d.anonymous == Some(true));
    // Personal fields leave the conversation state once the report holds them.
    turn.state.draft = None;
    turn.say(
        Text::new(match kind {
            ReportKind::Complaint if anonymous => "filed-tip",
            ReportKind::Complaint => "filed-complaint",
            ReportKind::Lost => "filed-lost",
            ReportKind::Found => "filed-found",
        })
        .arg("reference", reference.to_string())
        .arg("station", station_name),
    );
    if cyber {
        turn.say(Text::new("note-cyber-1930"));
    }
    show_menu(turn);
}

fn editable(turn: &Turn<'_, '_>) -> Vec<Field> {
    journey_fields(turn)
        .into_iter()
        .filter(|f| !matches!(f, Field::Consent | Field::Attachments))
        .collect()
}

fn edit_choices(turn: &Turn<'_, '_>) -> Vec<Choice> {
    editable(turn)
        .into_iter()
        .map(|f| {
            let msg = field_msg(f);
            choice(
                &format!("edit:{}", &msg["field-".len()..]),
                &format!("choice-edit-{}", &msg["field-".len()..]),
            )
        })
        .collect()
}

pub(super) fn ask_edit_pick(turn: &mut Turn<'_, '_>) {
    turn.state.step = Step::EditPick;
    let choices = edit_choices(turn);
    turn.prompt(Text::new("ask-edit-field"), choices, None);
}

pub(super) fn on_edit_pick(turn: &mut Turn<'_, '_>, body: &Body) {
    let choices = edit_choices(turn);
    match pick(body, &choices, turn.catalog(), &[]) {
        Picked::Choice(id) => {
            let fields = editable(turn);
            let idx = choices.iter().position(|c| c.id == id).unwrap_or(0);
            let field = fields.get(idx).copied().unwrap_or(Field::Category);
            ask(turn, field, 0, true);
        }
        picked => not_understood(turn, picked, body, choices.len()),
    }
}
