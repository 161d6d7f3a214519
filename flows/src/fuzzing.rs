//! Fuzz checks (feature `fuzzing`): each function takes arbitrary bytes, drives one part of the
//! engine and asserts what must hold for every input. The cargo-fuzz targets in `fuzz/` call
//! them, and `tests/regressions.rs` runs them over the kept inputs in `tests/regressions/`, so a
//! crash once found stays fixed in the ordinary test suite.
//!
//! Inputs are plain bytes cut at `0xFF` (never part of UTF-8), so kept inputs stay mostly
//! readable text. Every check panics (with a message) when a property is broken.

use std::collections::VecDeque;

use chrono::{Months, NaiveDate};
use unicode_segmentation::UnicodeSegmentation;

use crate::Lang;
use crate::catalog::Catalog;
use crate::effect::{Effect, EffectResult, ReportRefusal, ReportView};
use crate::engine::{Ctx, Fresh, Input, Profile, step};
use crate::message::{Body, Channel, MediaKind};
use crate::reference::{ALPHABET, Reference, ReferenceError, ReportKind};
use crate::reply::{Arg, Label, Reply};
use crate::state::{Conversation, Loaded};
use crate::stations::{Directory, Station, StationKind};
use crate::understand::{date, digits, imei, phone, text, words};

/// The chunk separator of structured fuzz inputs.
pub const SEP: u8 = 0xFF;

/// Most inputs one dialogue case may feed (keeps each run short).
const MAX_TURNS: usize = 48;

/// Most effect round trips after one message (the runtime's own guard is similar).
const MAX_STEPS: usize = 8;

fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn u16_at(b: &[u8], i: usize) -> u16 {
    u16::from_le_bytes([
        b.get(i).copied().unwrap_or(0),
        b.get(i + 1).copied().unwrap_or(0),
    ])
}

/// A date from two bytes: mostly around the present, sometimes at chrono's very ends.
fn date_from(b: &[u8]) -> NaiveDate {
    let n = u16_at(b, 0);
    match n {
        0xFFFF => NaiveDate::MAX,
        0xFFFE => NaiveDate::MIN,
        0xFFFD => NaiveDate::from_ymd_opt(1, 1, 1).expect("valid"),
        n => NaiveDate::from_ymd_opt(2000, 1, 1).expect("valid") + chrono::Days::new(u64::from(n)),
    }
}

// ---------------------------------------------------------------------------------------------
// understand

/// Everything in [`crate::understand`] and [`Reference::parse`] on one text.
///
/// Layout: 2 bytes "today", 1 byte length limit, then the text (lossy UTF-8).
pub fn understand(data: &[u8]) {
    let today = date_from(data);
    let max = usize::from(data.get(2).copied().unwrap_or(0)) * 8;
    let s = lossy(data.get(3..).unwrap_or_default());
    understand_text(&s, today, max);
}

/// The checks of [`understand`] on an already decoded text.
pub fn understand_text(s: &str, today: NaiveDate, max: usize) {
    // digits
    let normalized = digits::normalize_digits(s);
    assert!(
        !normalized.chars().any(|c| ('०'..='९').contains(&c)),
        "Devanagari digit left after normalize_digits"
    );
    if let Some(n) = digits::option_number(s) {
        assert!(n <= 999, "option number {n} has more than 3 digits");
    }

    // phone
    if let Some(p) = phone::parse_indian_mobile(s) {
        assert!(
            p.len() == 13
                && p.starts_with("+91")
                && p[3..].bytes().all(|b| b.is_ascii_digit())
                && matches!(p.as_bytes()[3], b'6'..=b'9'),
            "parse_indian_mobile returned {p:?}"
        );
        assert_eq!(
            phone::parse_indian_mobile(&p).as_deref(),
            Some(p.as_str()),
            "E.164 form does not parse to itself"
        );
        let shown = phone::display(&p);
        assert_eq!(shown.replace(' ', ""), p, "display changed the number");
        let masked = phone::mask(&p);
        assert!(
            masked.ends_with(&p[9..]) && !masked.contains(&p[3..9]),
            "mask shows more than the last four digits: {masked}"
        );
    }
    let _ = phone::display(s);
    let masked = phone::mask(s);
    let shown = masked.chars().filter(|&c| c != '*').count();
    if phone::parse_indian_mobile(s).is_none() && !s.starts_with("+91") {
        assert!(shown <= 4, "mask of a non-number shows {shown} characters");
    }

    // dates
    if let Ok(d) = date::parse_past_date(s, today) {
        assert!(d <= today, "{d} is after today {today}");
        if let Some(oldest) = today.checked_sub_months(Months::new(60)) {
            assert!(d >= oldest, "{d} is more than five years before {today}");
        }
    }
    // The same text on a fixed ordinary day, where every relative word is computable.
    let _ = date::parse_past_date(s, NaiveDate::from_ymd_opt(2026, 11, 28).expect("valid"));

    // IMEI and document numbers
    if let Ok(i) = imei::parse_imei(s) {
        assert!(
            i.len() == 15 && i.bytes().all(|b| b.is_ascii_digit()),
            "parse_imei returned {i:?}"
        );
        assert_eq!(imei::parse_imei(&i).as_deref(), Ok(i.as_str()));
    }
    if let Some(m) = imei::mask_document(s) {
        assert!(m.chars().count() <= 64, "masked document too long");
    }

    // words
    let folded = words::fold(s);
    let _ = words::tokens(s);
    let _ = words::tokens(&folded);
    let _ = words::global_command(s);
    let _ = words::yes_no(s);
    let _ = words::intent(s);

    // free text
    for limit in [max, 500, text::NAME_MAX] {
        if let Ok(t) = text::bounded(s, limit) {
            let n = t.graphemes(true).count();
            assert!(n > 0 && n <= limit, "bounded({limit}) kept {n} graphemes");
            assert!(
                t.graphemes(true)
                    .all(|g| g.chars().count() <= text::CLUSTER_MAX_CHARS),
                "bounded kept a grapheme cluster over {} characters",
                text::CLUSTER_MAX_CHARS
            );
            assert!(
                !t.chars()
                    .any(|c| (c.is_control() && c != '\n') || words::is_zero_width(c)),
                "bounded kept an invisible or control character"
            );
            assert!(!t.contains("\n\n\n"), "bounded kept three line breaks");
            assert_eq!(t.trim(), t, "bounded did not trim");
            assert_eq!(
                text::bounded(&t, limit).as_deref(),
                Ok(t.as_str()),
                "bounded is not idempotent"
            );
        }
    }
    if let Ok(n) = text::name(s) {
        assert!(!n.contains('\n'), "a name kept a line break");
        assert!(
            n.chars().any(char::is_alphabetic),
            "a name without a letter"
        );
        assert!(n.graphemes(true).count() <= text::NAME_MAX, "name too long");
    }

    reference_text(s);
}

// ---------------------------------------------------------------------------------------------
// references

/// [`Reference::parse`] on arbitrary text, and the check character against single errors.
///
/// Layout: 1 byte kind, 8 bytes random, 1 byte position, 1 byte replacement, then the text.
pub fn reference(data: &[u8]) {
    let s = lossy(data.get(11..).unwrap_or_default());
    reference_text(&s);

    let kind = ReportKind::ALL[usize::from(data.first().copied().unwrap_or(0)) % 3];
    let mut random = [0u8; 8];
    for (i, r) in random.iter_mut().enumerate() {
        *r = data.get(1 + i).copied().unwrap_or(0);
    }
    let r = Reference::generate(kind, random);
    let shown = r.to_string();
    assert_eq!(
        Reference::parse(&shown),
        Ok(r),
        "{shown} does not parse back"
    );
    assert_eq!(r.kind(), kind);
    // Any single wrong character among the nine after the kind is refused: the Damm check
    // detects every single substitution.
    let chars: Vec<char> = shown.chars().collect();
    let positions: Vec<usize> = (0..chars.len())
        .filter(|&i| chars[i] != '-')
        .skip(1)
        .collect();
    let at = positions[usize::from(data.get(9).copied().unwrap_or(0)) % positions.len()];
    let replacement = ALPHABET[usize::from(data.get(10).copied().unwrap_or(0)) % 32] as char;
    if replacement != chars[at] {
        let mut typo = chars.clone();
        typo[at] = replacement;
        let typo: String = typo.into_iter().collect();
        assert_eq!(
            Reference::parse(&typo),
            Err(ReferenceError::Typo),
            "{typo} (one character off {shown}) was not caught"
        );
    }
    // Adjacent transpositions of different characters are caught too.
    if at + 1 < chars.len() && chars[at + 1] != '-' && chars[at] != chars[at + 1] {
        let mut swapped = chars.clone();
        swapped.swap(at, at + 1);
        let swapped: String = swapped.into_iter().collect();
        assert!(
            Reference::parse(&swapped).is_err(),
            "{swapped} (a transposition of {shown}) was accepted"
        );
    }
}

fn reference_text(s: &str) {
    if let Ok(r) = Reference::parse(s) {
        let shown = r.to_string();
        assert_eq!(shown.len(), 13, "reference shown as {shown:?}");
        assert_eq!(
            Reference::parse(&shown),
            Ok(r),
            "{shown} does not parse back"
        );
        let json = serde_json::to_string(&r).expect("reference serializes");
        assert_eq!(
            serde_json::from_str::<Reference>(&json).ok(),
            Some(r),
            "reference JSON does not round-trip"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Fluent rendering

/// Every variable name used anywhere in the locale files (`$name`), plus a few that are not.
fn variable_names() -> &'static [String] {
    static NAMES: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
    NAMES.get_or_init(|| {
        let mut names = vec!["nosuchvar".to_owned(), String::new(), "-".to_owned()];
        for lang in Lang::ALL {
            for src in crate::catalog::sources(lang) {
                for part in src.split('$').skip(1) {
                    let name: String = part
                        .chars()
                        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
                        .collect();
                    if !name.is_empty() && !names.contains(&name) {
                        names.push(name);
                    }
                }
            }
        }
        names
    })
}

/// `(lang, id, attribute)` of every message and attribute, both languages.
fn message_keys() -> &'static [(Lang, String, Option<String>)] {
    static KEYS: std::sync::OnceLock<Vec<(Lang, String, Option<String>)>> =
        std::sync::OnceLock::new();
    KEYS.get_or_init(|| {
        let mut keys = Vec::new();
        for lang in Lang::ALL {
            for (id, attrs) in Catalog::message_ids(lang) {
                keys.push((lang, id.clone(), None));
                for a in attrs {
                    keys.push((lang, id.clone(), Some(a)));
                }
            }
        }
        keys
    })
}

/// Decodes `(name, value)` arguments: each chunk is 1 byte name index, 1 byte type, the value.
fn fluent_args(chunks: &[&[u8]]) -> Vec<(String, Arg)> {
    let names = variable_names();
    chunks
        .iter()
        .take(16)
        .map(|c| {
            let name = names[usize::from(c.first().copied().unwrap_or(0)) % names.len()].clone();
            let rest = c.get(2..).unwrap_or_default();
            let value = match c.get(1).copied().unwrap_or(0) % 4 {
                0 => {
                    let mut n = [0u8; 8];
                    for (i, b) in rest.iter().take(8).enumerate() {
                        n[i] = *b;
                    }
                    Arg::Num(i64::from_le_bytes(n))
                }
                1 => Arg::Num(i64::from(rest.first().copied().unwrap_or(0)) - 2),
                _ => Arg::Str(lossy(rest)),
            };
            (name, value)
        })
        .collect()
}

/// One message (or attribute) of the catalog formatted with arbitrary arguments, then a whole
/// reply with those texts and raw labels rendered.
///
/// Layout: chunks cut at `0xFF`; the first is 2 bytes picking the message, the others are
/// arguments (see `fluent_args`).
pub fn fluent(data: &[u8]) {
    let catalog = Catalog::global();
    let chunks: Vec<&[u8]> = data.split(|&b| b == SEP).collect();
    let keys = message_keys();
    let (lang, id, attr) = &keys[usize::from(u16_at(chunks[0], 0)) % keys.len()];
    let args = fluent_args(&chunks[1..]);
    let arg_len: usize = args
        .iter()
        .map(|(_, v)| match v {
            Arg::Str(s) => s.len(),
            Arg::Num(_) => 20,
        })
        .sum();
    if let Ok(out) = catalog.format_checked(*lang, id, attr.as_deref(), &args) {
        // An argument is inserted as text, never read as Fluent: the output grows at most by
        // a few copies of the arguments.
        assert!(
            out.len() <= 8 * 1024 + 8 * arg_len,
            "{id}: {} bytes from {arg_len} bytes of arguments",
            out.len()
        );
    }
    // Plain text arguments must come out verbatim where the message uses them.
    let mut text = crate::reply::Text::new(id.as_str());
    text.args = args.clone();
    let reply = Reply {
        texts: vec![text],
        choices: args
            .iter()
            .filter_map(|(n, v)| match v {
                Arg::Str(s) => Some(crate::reply::Choice {
                    id: n.clone(),
                    label: Label::Raw(s.clone()),
                }),
                Arg::Num(_) => None,
            })
            .collect(),
        hint: None,
    };
    let rendered = catalog.render(*lang, &reply);
    let _ = rendered.with_numbered_choices();
}

// ---------------------------------------------------------------------------------------------
// the dialogue

/// The example directory (`config/stations.example.csv`: one district, a control room and a
/// dozen stations, so station lists page), plus a station without coordinates and a second
/// district.
pub fn directory() -> Directory {
    let mut rows: Vec<Station> = include_str!("../../config/stations.example.csv")
        .lines()
        .filter(|l| !l.starts_with('#') && !l.starts_with("id,") && !l.trim().is_empty())
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            Station {
                id: f[0].into(),
                district_id: f[1].into(),
                district_en: f[2].into(),
                district_hi: f[3].into(),
                name_en: f[4].into(),
                name_hi: f[5].into(),
                kind: if f[6] == "control_room" {
                    StationKind::ControlRoom
                } else {
                    StationKind::Station
                },
                alert_language: Lang::Hi,
                telegram_chat_id: f[8].parse().ok(),
                latitude: f[9].parse().ok(),
                longitude: f[10].parse().ok(),
            }
        })
        .collect();
    let extra = |id: &str, district: &str, coords: Option<(f64, f64)>| Station {
        id: id.into(),
        district_id: district.into(),
        district_en: format!("District {district}"),
        district_hi: format!("ज़िला {district}"),
        name_en: format!("Station {id}"),
        name_hi: format!("थाना {id}"),
        kind: StationKind::Station,
        alert_language: Lang::En,
        telegram_chat_id: None,
        latitude: coords.map(|c| c.0),
        longitude: coords.map(|c| c.1),
    };
    rows.push(extra("patna-nocoords", "patna", None));
    rows.push(extra("gaya-town", "gaya", Some((24.79, 85.0))));
    Directory::new(rows)
}

/// The first chunk of a dialogue case: who the citizen is, and the stored state.
fn profile_from(b: &[u8]) -> (Profile, Option<String>) {
    let flags = b.first().copied().unwrap_or(0);
    let channel = [Channel::Telegram, Channel::Whatsapp, Channel::Terminal][usize::from(flags % 3)];
    let lang = match (flags >> 2) % 3 {
        0 => None,
        1 => Some(Lang::Hi),
        _ => Some(Lang::En),
    };
    let profile = Profile {
        channel,
        lang,
        lang_hint: if flags & 0x10 != 0 {
            Some(Lang::En)
        } else {
            None
        },
        channel_phone: (flags & 0x20 != 0).then(|| "+919876543210".to_owned()),
        phone: (flags & 0x40 != 0).then(|| "+918765432109".to_owned()),
        pushes_enabled: flags & 0x80 == 0,
    };
    // Nothing after the flags: a citizen never seen (no stored state at all).
    let stored = b.get(1..).filter(|r| !r.is_empty()).map(lossy);
    (profile, stored)
}

fn f64_from(b: &[u8]) -> f64 {
    let mut n = [0u8; 8];
    for (i, x) in b.iter().take(8).enumerate() {
        n[i] = *x;
    }
    let v = f64::from_le_bytes(n);
    // Channels never deliver NaN or infinities (JSON cannot carry them).
    if v.is_finite() { v } else { 0.0 }
}

fn view(b: &[u8], n: u8) -> ReportView {
    let kind = ReportKind::ALL[usize::from(n % 3)];
    let mut random = [0u8; 8];
    for (i, r) in random.iter_mut().enumerate() {
        *r = b.get(i).copied().unwrap_or(n);
    }
    let status = lossy(b.get(8..).unwrap_or_default());
    let day = date_from(b);
    ReportView {
        reference: Reference::generate(kind, random),
        kind,
        status: status.clone(),
        station_en: (n & 1 == 1).then(|| "Kotwali".to_owned()),
        station_hi: (n & 2 == 2).then(|| "कोतवाली".to_owned()),
        updated_on: day,
        fir_number: (n & 4 == 4).then(|| status.clone()),
        history: (0..usize::from(n % 4))
            .map(|i| (format!("status-{i}"), day))
            .collect(),
    }
}

/// One input chunk: the first byte picks the kind, the rest is its content. `None` for a
/// clock advance (returned as seconds in `Err`).
fn input_from(b: &[u8], now: i64) -> Result<Input, i64> {
    let kind = b.first().copied().unwrap_or(0);
    let rest = b.get(1..).unwrap_or_default();
    let text = || lossy(rest);
    let body = match kind % 16 {
        0..=4 => Body::Text { text: text() },
        5 | 6 => Body::Choice { id: text() },
        7 => Body::Location {
            latitude: f64_from(rest),
            longitude: f64_from(rest.get(8..).unwrap_or_default()),
            name: rest.get(16..).map(lossy),
            address: None,
        },
        8 => Body::Contact {
            phone: text(),
            own: kind & 0x10 != 0,
        },
        9 => Body::Media {
            kind: [
                MediaKind::Photo,
                MediaKind::Document,
                MediaKind::Voice,
                MediaKind::Video,
                MediaKind::Sticker,
            ][usize::from(kind >> 4) % 5],
            file_id: "file-1".to_owned(),
            mime: Some("image/jpeg".to_owned()),
            caption: (!rest.is_empty()).then(text),
        },
        10 => Body::Unsupported { what: text() },
        11 => return Ok(Input::StateReset(Body::Text { text: text() })),
        12 => {
            let mut random = [0u8; 8];
            for (i, r) in random.iter_mut().enumerate() {
                *r = rest.get(i).copied().unwrap_or(0);
            }
            let kind = ReportKind::ALL[usize::from(kind >> 4) % 3];
            return Ok(Input::Result(EffectResult::Filed {
                reference: Reference::generate(kind, random),
                station: rest.get(8..).map(lossy),
            }));
        }
        13 => {
            return Ok(Input::Result(EffectResult::Report {
                report: (kind & 0x10 != 0).then(|| view(rest, kind >> 5)),
            }));
        }
        14 => {
            return Ok(Input::Result(EffectResult::MyReports {
                reports: (0..(kind >> 4) % 8).map(|n| view(rest, n)).collect(),
            }));
        }
        _ => {
            // Time passes: up to about two days, in steps that cross the idle limits.
            let secs = i64::from(u16_at(rest, 0)) * 4;
            return Err(now.saturating_add(secs));
        }
    };
    Ok(Input::Message(body))
}

/// Checks one step's outcome: the state survives a save and reload, every text and label
/// exists in the catalog with the arguments it needs, a filed report leaves no draft behind.
fn check_outcome(catalog: &Catalog, before: &Input, outcome: &crate::engine::Outcome) {
    let json = outcome.state.to_json();
    match Conversation::load(Some(&json)) {
        Loaded::Restored(c) => assert_eq!(c, outcome.state, "state changed on reload: {json}"),
        other => panic!("state does not reload: {json} → {other:?}"),
    }
    for reply in &outcome.replies {
        assert!(
            !reply.texts.is_empty() || !reply.choices.is_empty(),
            "an empty reply"
        );
        for t in &reply.texts {
            if let Err(e) = catalog.format_checked(outcome.lang, &t.id, None, &t.args) {
                panic!("reply text does not render: {e}");
            }
        }
        for c in &reply.choices {
            assert!(!c.id.is_empty(), "a choice without id");
            if let Label::Msg(id) = &c.label {
                assert!(
                    catalog.format_checked(outcome.lang, id, None, &[]).is_ok(),
                    "choice label {id} does not render"
                );
            }
        }
        let rendered = catalog.render(outcome.lang, reply);
        assert!(
            !rendered.with_numbered_choices().trim().is_empty(),
            "blank reply"
        );
    }
    if let Input::Result(EffectResult::Filed { .. }) = before
        && let Some(d) = &outcome.state.draft
    {
        assert!(
            d.name.is_none() && d.phone.is_none() && d.description.is_none(),
            "personal fields kept in the state after filing"
        );
    }
    for e in &outcome.effects {
        if let Effect::FileReport { report } = e {
            assert_eq!(
                report.reference.kind(),
                report.kind,
                "reference of another kind"
            );
            assert!(!report.category.is_empty(), "report without category");
        }
    }
}

/// The whole dialogue: a stored state (any bytes), a profile, then up to 48 inputs, with the
/// effects answered as the runtime would. Every outcome is checked (`check_outcome`).
///
/// Layout: chunks cut at `0xFF`. The first chunk is 1 byte of profile flags followed by the
/// stored state (none after the flags: a citizen never seen); each later chunk is one input
/// (see `input_from`).
pub fn dialogue(data: &[u8]) {
    let catalog = Catalog::global();
    let stations = directory();
    let mut chunks = data.split(|&b| b == SEP);
    let (mut profile, stored) = profile_from(chunks.next().unwrap_or_default());
    let (mut state, reset) = match Conversation::load(stored.as_deref()) {
        Loaded::Fresh(c) | Loaded::Restored(c) => (c, false),
        Loaded::Reset(c) => (c, true),
    };
    let mut now: i64 = 1_795_867_200;
    let mut counter: u32 = 0;
    let mut first = true;
    let mut filed: Vec<Reference> = Vec::new();
    for chunk in chunks.take(MAX_TURNS) {
        let input = match input_from(chunk, now) {
            Ok(Input::Message(body)) if first && reset => Input::StateReset(body),
            Ok(i) => i,
            Err(later) => {
                now = later;
                continue;
            }
        };
        first = false;
        let today = chrono::DateTime::from_timestamp(now, 0)
            .unwrap_or_default()
            .date_naive();
        let mut inputs = VecDeque::from([input]);
        let mut steps = 0;
        while let Some(input) = inputs.pop_front() {
            steps += 1;
            assert!(steps <= MAX_STEPS, "effects keep asking for more effects");
            counter += 1;
            let fresh = Fresh {
                reference: counter.to_le_bytes().repeat(2).try_into().expect("8 bytes"),
                draft_id: format!("draft-{counter}"),
            };
            let outcome = {
                let ctx = Ctx {
                    now,
                    today,
                    profile: &profile,
                    stations: &stations,
                    catalog,
                    fresh,
                    anonymous_categories: &anonymous_tips(),
                };
                step(state, &input, &ctx)
            };
            check_outcome(catalog, &input, &outcome);
            for effect in &outcome.effects {
                match effect {
                    Effect::SetLanguage { lang } => profile.lang = Some(*lang),
                    Effect::SetPhone { phone } => {
                        assert!(
                            phone::parse_indian_mobile(phone).as_deref() == Some(phone.as_str()),
                            "SetPhone with {phone:?}"
                        );
                        profile.phone = Some(phone.clone());
                    }
                    Effect::SetPushes { enabled } => profile.pushes_enabled = *enabled,
                    Effect::DeleteMyData => profile.phone = None,
                    Effect::FileReport { report } => {
                        filed.push(report.reference);
                        inputs.push_back(Input::Result(EffectResult::Filed {
                            reference: report.reference,
                            station: report.station_id.clone(),
                        }));
                    }
                    Effect::LookupReport { reference } => {
                        let report = filed.contains(reference).then(|| {
                            let mut v = view(&[counter as u8], counter as u8);
                            v.reference = *reference;
                            v.kind = reference.kind();
                            v
                        });
                        inputs.push_back(Input::Result(EffectResult::Report { report }));
                    }
                    Effect::ListMyReports => {
                        inputs.push_back(Input::Result(EffectResult::MyReports {
                            reports: filed
                                .iter()
                                .map(|r| {
                                    let mut v = view(&[], 0);
                                    v.reference = *r;
                                    v.kind = r.kind();
                                    v
                                })
                                .collect(),
                        }))
                    }
                    Effect::CheckReportLimit { kind } => {
                        // A limit of 3 a day, so both answers are explored.
                        let refused = (filed.len() >= 3).then(|| ReportRefusal {
                            filed: filed.len() as u32,
                            until: chrono::DateTime::from_timestamp(now + 86_400, 0)
                                .unwrap_or_default()
                                .naive_utc(),
                        });
                        inputs.push_back(Input::Result(EffectResult::ReportLimit {
                            kind: *kind,
                            refused,
                        }));
                    }
                }
            }
            state = outcome.state;
        }
    }
}

/// The operator's anonymous-tip categories, so these paths are exercised too.
fn anonymous_tips() -> Vec<String> {
    vec!["drugs_liquor_gambling".to_owned()]
}
