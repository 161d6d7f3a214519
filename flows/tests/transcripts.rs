//! Golden conversation transcripts: `flows/tests/transcripts/<case>.<en|hi>.txt`.
//!
//! A transcript's `>` lines are what citizens send; the runner drives `step` with a frozen clock
//! and seeded references, serializing and reloading the state after every step, executes effects
//! against a small in-memory store, and writes `<` (bot) and `=` (state) lines after each input.
//! `UPDATE_GOLDEN=1 cargo test -p seva-flows --test transcripts` rewrites the files; review the
//! diff like code. The English and Hindi files of a case must walk the same state trail.
//!
//! Input forms: `> text`, `> [choice ID]`, `> [location LAT,LON]`, `> [contact +91… own|other]`,
//! `> [photo]`, `> [voice]`, `> [sticker]`, `> [wait 40m]` (advance the clock), `> [as NAME]`
//! (switch citizen), `> [channel whatsapp|telegram|terminal]` (for the current citizen),
//! `> [purge]` (the runtime's periodic purge of drafts idle for 24 hours),
//! `> [officer REF|last STATUS [FIR]]` (an officer changes a report's status),
//! `> [report-limit N]` (`SEVA_CITIZEN_REPORTS_PER_DAY`; unlimited until set).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use chrono::{NaiveDate, NaiveDateTime};
use flows::Lang;
use flows::catalog::Catalog;
use flows::effect::{Effect, EffectResult, ReportRefusal, ReportView};
use flows::engine::{Ctx, Fresh, Input, Outcome, Profile, step};
use flows::message::{Body, Channel, MediaKind};
use flows::reference::Reference;
use flows::state::{Conversation, Loaded, Step};
use flows::stations::{Directory, Station, StationKind};

pub fn directory() -> Directory {
    let row = |id: &str, en: &str, hi: &str, kind: StationKind, lat: f64, lon: f64| Station {
        id: id.into(),
        district_id: "patna".into(),
        district_en: "Patna".into(),
        district_hi: "पटना".into(),
        name_en: en.into(),
        name_hi: hi.into(),
        kind,
        alert_language: Lang::Hi,
        telegram_chat_id: None,
        latitude: Some(lat),
        longitude: Some(lon),
    };
    let (st, cr) = (StationKind::Station, StationKind::ControlRoom);
    Directory::new(vec![
        row("pat-kotwali", "Kotwali", "कोतवाली", st, 25.6100, 85.1400),
        row(
            "pat-gandhi-maidan",
            "Gandhi Maidan",
            "गांधी मैदान",
            st,
            25.6190,
            85.1440,
        ),
        row(
            "pat-pirbahore",
            "Pirbahore",
            "पीरबहोर",
            st,
            25.6150,
            85.1600,
        ),
        row("pat-kadamkuan", "Kadamkuan", "कदमकुआं", st, 25.6050, 85.1500),
        row(
            "pat-sachivalaya",
            "Sachivalaya",
            "सचिवालय",
            st,
            25.5980,
            85.1150,
        ),
        row(
            "pat-patliputra",
            "Patliputra",
            "पाटलिपुत्र",
            st,
            25.6280,
            85.1000,
        ),
        row(
            "pat-rajeev-nagar",
            "Rajeev Nagar",
            "राजीव नगर",
            st,
            25.6200,
            85.0800,
        ),
        row("pat-danapur", "Danapur", "दानापुर", st, 25.6300, 85.0450),
        row(
            "pat-phulwari",
            "Phulwari Sharif",
            "फुलवारी शरीफ",
            st,
            25.5750,
            85.0800,
        ),
        row("pat-agamkuan", "Agamkuan", "अगमकुआं", st, 25.6000, 85.2100),
        row(
            "pat-control",
            "Patna District Control Room",
            "पटना ज़िला नियंत्रण कक्ष",
            cr,
            25.61,
            85.14,
        ),
    ])
}

struct Citizen {
    profile: Profile,
    state: String,
}

struct Filed {
    owner: String,
    /// Unix seconds.
    at: i64,
    view: ReportView,
    draft_id: String,
}

/// The effects' side of the runtime, in memory: enough to drive the engine honestly.
struct World {
    catalog: &'static Catalog,
    stations: Directory,
    now: i64,
    seq: u64,
    citizens: HashMap<String, Citizen>,
    reports: Vec<Filed>,
    /// The operator's `SEVA_ANONYMOUS_CATEGORIES` in every transcript.
    anonymous: Vec<String>,
    /// New reports one citizen may file in 24 hours.
    report_limit: Option<u32>,
}

const START: i64 = 1_795_858_200; // 2026-11-28 09:30 UTC, 15:00 in India
const DAY: i64 = 24 * 60 * 60;

/// Local time in India (UTC+5:30 all year).
fn local(unix: i64) -> NaiveDateTime {
    chrono::DateTime::from_timestamp(unix + 5 * 3600 + 1800, 0)
        .unwrap()
        .naive_utc()
}

impl World {
    fn new() -> World {
        World {
            catalog: Catalog::global(),
            stations: directory(),
            now: START,
            seq: 0,
            citizens: HashMap::new(),
            reports: Vec::new(),
            anonymous: vec!["drugs_liquor_gambling".to_owned()],
            report_limit: None,
        }
    }

    fn today(&self) -> NaiveDate {
        local(self.now).date()
    }

    fn citizen(&mut self, who: &str) -> &mut Citizen {
        self.citizens
            .entry(who.to_owned())
            .or_insert_with(|| Citizen {
                profile: Profile {
                    channel: Channel::Terminal,
                    lang: None,
                    lang_hint: None,
                    channel_phone: None,
                    phone: None,
                    pushes_enabled: true,
                },
                state: Conversation::default().to_json(),
            })
    }

    fn fresh(&mut self) -> Fresh {
        self.seq += 1;
        let s = self.seq as u8;
        Fresh {
            reference: [7, 19, 3, s, 9, 29, 20, s.wrapping_mul(3)],
            draft_id: format!("draft-{}", self.seq),
        }
    }

    /// One citizen message: step, then effects and their results, like the runtime's turn.
    fn turn(&mut self, who: &str, body: Body, out: &mut Vec<String>) {
        let mut input = Input::Message(body);
        loop {
            let fresh = self.fresh();
            let (profile, stored) = {
                let c = self.citizen(who);
                (c.profile.clone(), c.state.clone())
            };
            let state = match Conversation::load(Some(&stored)) {
                Loaded::Restored(s) | Loaded::Fresh(s) => s,
                Loaded::Reset(_) => panic!("state did not reload: {stored}"),
            };
            let today = self.today();
            let ctx = Ctx {
                now: self.now,
                today,
                profile: &profile,
                stations: &self.stations,
                catalog: self.catalog,
                fresh,
                anonymous_categories: &self.anonymous,
            };
            let Outcome {
                state,
                lang,
                replies,
                effects,
            } = step(state, &input, &ctx);
            for reply in &replies {
                for t in &reply.texts {
                    if let Err(e) = self.catalog.format_checked(lang, &t.id, None, &t.args) {
                        panic!("message {} fails in {}: {e}", t.id, lang.code());
                    }
                }
                let rendered = self.catalog.render(lang, reply);
                for line in rendered.with_numbered_choices().lines() {
                    out.push(format!("< {line}"));
                }
                if let Some(hint) = rendered.hint {
                    out.push(format!("< [{hint:?}]"));
                }
                let ids: Vec<&str> = reply.choices.iter().map(|c| c.id.as_str()).collect();
                if !ids.is_empty() {
                    out.push(format!("< [choices {}]", ids.join(" ")));
                }
                out.push("<".into());
            }
            // The state must survive a save and a reload after every step.
            let json = state.to_json();
            assert_eq!(serde_json::from_str::<Conversation>(&json).unwrap(), state);
            self.citizen(who).state = json;
            out.push(format!("= {}", describe(&state.step)));

            let mut next = None;
            for effect in effects {
                if let Some(result) = self.apply(who, effect) {
                    next = Some(result);
                }
            }
            match next {
                Some(result) => input = Input::Result(result),
                None => break,
            }
        }
    }

    fn apply(&mut self, who: &str, effect: Effect) -> Option<EffectResult> {
        match effect {
            Effect::SetLanguage { lang } => {
                self.citizen(who).profile.lang = Some(lang);
                None
            }
            Effect::SetPhone { phone } => {
                self.citizen(who).profile.phone = Some(phone);
                None
            }
            Effect::SetPushes { enabled } => {
                self.citizen(who).profile.pushes_enabled = enabled;
                None
            }
            Effect::DeleteMyData => {
                let c = self.citizen(who);
                c.profile.phone = None;
                None
            }
            Effect::FileReport { report } => {
                if let Some(f) = self.reports.iter().find(|f| f.draft_id == report.draft_id) {
                    return Some(EffectResult::Filed {
                        reference: f.view.reference,
                        station: None,
                    });
                }
                let station = report.station_id.clone();
                let st = station.as_deref().and_then(|id| self.stations.station(id));
                let first = match report.kind {
                    flows::reference::ReportKind::Complaint => "submitted",
                    _ => "registered",
                };
                let today = self.today();
                self.reports.push(Filed {
                    owner: who.to_owned(),
                    at: self.now,
                    draft_id: report.draft_id.clone(),
                    view: ReportView {
                        reference: report.reference,
                        kind: report.kind,
                        status: first.into(),
                        station_en: st.map(|s| s.name_en.clone()),
                        station_hi: st.map(|s| s.name_hi.clone()),
                        updated_on: today,
                        fir_number: None,
                        history: vec![(first.into(), today)],
                    },
                });
                Some(EffectResult::Filed {
                    reference: report.reference,
                    station,
                })
            }
            Effect::LookupReport { reference } => {
                let report = self
                    .reports
                    .iter()
                    .find(|f| f.view.reference == reference && f.owner == who)
                    .map(|f| f.view.clone());
                Some(EffectResult::Report { report })
            }
            Effect::ListMyReports => {
                let reports = self
                    .reports
                    .iter()
                    .rev()
                    .filter(|f| f.owner == who)
                    .take(5)
                    .map(|f| f.view.clone())
                    .collect();
                Some(EffectResult::MyReports { reports })
            }
            Effect::CheckReportLimit { kind } => {
                let refused = self.report_limit.and_then(|limit| {
                    let recent: Vec<i64> = self
                        .reports
                        .iter()
                        .filter(|f| f.owner == who && f.at > self.now - DAY)
                        .map(|f| f.at)
                        .collect();
                    // Oldest first: the `limit`-th newest must age out of the window.
                    let n = recent.len();
                    (n >= limit as usize).then(|| ReportRefusal {
                        filed: n as u32,
                        until: local(recent[n - limit as usize] + DAY),
                    })
                });
                Some(EffectResult::ReportLimit { kind, refused })
            }
        }
    }

    /// An officer moves a report on (for status transcripts).
    fn officer(&mut self, reference: &str, status: &str, fir: Option<&str>) {
        let today = self.today();
        let f = match reference {
            "last" => self.reports.last_mut().expect("a filed report"),
            r => {
                let r = Reference::parse(r).expect("reference in transcript");
                self.reports
                    .iter_mut()
                    .find(|f| f.view.reference == r)
                    .expect("filed report")
            }
        };
        f.view.status = status.into();
        f.view.fir_number = fir.map(str::to_owned);
        f.view.updated_on = today;
        f.view.history.push((status.into(), today));
    }
}

fn describe(step: &Step) -> String {
    match step {
        Step::Ask {
            field,
            page,
            editing,
        } => {
            let mut s = format!("Ask {field:?}");
            if *page > 0 {
                s.push_str(&format!(" page {page}"));
            }
            if *editing {
                s.push_str(" (editing)");
            }
            s
        }
        Step::Language { .. } => "Language".into(),
        Step::ResumeOffer { .. } => "ResumeOffer".into(),
        other => format!("{other:?}"),
    }
}

fn parse_input(line: &str) -> Option<Result<Body, String>> {
    let inner = line.strip_prefix('[')?.strip_suffix(']')?;
    let (word, rest) = inner.split_once(' ').unwrap_or((inner, ""));
    let media = |kind| Body::Media {
        kind,
        file_id: format!("file-{rest}"),
        mime: None,
        caption: None,
    };
    Some(Ok(match word {
        "choice" => Body::Choice { id: rest.into() },
        "location" => {
            let (lat, lon) = rest.split_once(',')?;
            Body::Location {
                latitude: lat.trim().parse().ok()?,
                longitude: lon.trim().parse().ok()?,
                name: None,
                address: None,
            }
        }
        "contact" => {
            let (phone, own) = rest.rsplit_once(' ')?;
            Body::Contact {
                phone: phone.into(),
                own: own == "own",
            }
        }
        "photo" => media(MediaKind::Photo),
        "voice" => media(MediaKind::Voice),
        "sticker" => media(MediaKind::Sticker),
        "unsupported" => Body::Unsupported { what: rest.into() },
        _ => return Some(Err(inner.to_owned())),
    }))
}

/// Runs one transcript file and returns what it should contain.
fn run(path: &Path) -> (String, Vec<String>) {
    let src = std::fs::read_to_string(path).unwrap();
    let mut world = World::new();
    let mut who = "citizen".to_owned();
    let mut out = Vec::new();
    let mut trail = Vec::new();
    for line in src.lines() {
        if line.starts_with('#') {
            out.push(line.to_owned());
            continue;
        }
        let Some(input) = line.strip_prefix("> ") else {
            continue;
        };
        out.push(line.to_owned());
        // "> " followed by nothing is an empty message; "> \u{200b}" keeps invisible input.
        let input = input.replace("\\u{200b}", "\u{200b}");
        let input = if let Some(n) = input.strip_prefix("[repeat ") {
            let (n, text) = n.strip_suffix(']').unwrap().split_once(' ').unwrap();
            text.repeat(n.parse().unwrap())
        } else {
            input
        };
        let body = match parse_input(&input) {
            None => Body::Text {
                text: input.clone(),
            },
            Some(Ok(body)) => body,
            Some(Err(directive)) => {
                let (word, rest) = directive.split_once(' ').unwrap_or((&directive, ""));
                match word {
                    "wait" => {
                        let mins: i64 = rest.trim_end_matches('m').parse().unwrap();
                        world.now += mins * 60;
                    }
                    "as" => who = rest.to_owned(),
                    // The runtime's periodic purge of drafts abandoned for 24 hours.
                    "purge" => {
                        let now = world.now;
                        let c = world.citizen(&who);
                        if let Loaded::Restored(mut state) = Conversation::load(Some(&c.state)) {
                            state.expire_draft(now);
                            c.state = state.to_json();
                        }
                    }
                    "report-limit" => world.report_limit = Some(rest.parse().unwrap()),
                    "channel" => {
                        let c = world.citizen(&who);
                        c.profile.channel = Channel::parse(rest).unwrap();
                        if c.profile.channel == Channel::Whatsapp {
                            c.profile.channel_phone = Some("+919876543210".into());
                        }
                    }
                    "officer" => {
                        let mut parts = rest.split(' ');
                        let (r, s) = (parts.next().unwrap(), parts.next().unwrap());
                        world.officer(r, s, parts.next());
                    }
                    other => panic!("unknown directive {other}"),
                }
                continue;
            }
        };
        let before = out.len();
        world.turn(&who, body, &mut out);
        trail.extend(out[before..].iter().filter(|l| l.starts_with('=')).cloned());
    }
    (out.join("\n") + "\n", trail)
}

fn transcript_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/transcripts")
}

#[test]
fn golden_transcripts_match_in_both_languages() {
    let update = std::env::var_os("UPDATE_GOLDEN").is_some();
    let mut cases: Vec<PathBuf> = std::fs::read_dir(transcript_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "txt"))
        .collect();
    cases.sort();
    assert!(!cases.is_empty());
    let mut failures = Vec::new();
    let mut trails: HashMap<String, Vec<(String, Vec<String>)>> = HashMap::new();
    for path in &cases {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let (case, lang) = name
            .trim_end_matches(".txt")
            .rsplit_once('.')
            .expect("<case>.<lang>.txt");
        assert!(
            matches!(lang, "en" | "hi"),
            "{name}: language must be en or hi"
        );
        let (got, trail) = run(path);
        trails
            .entry(case.to_owned())
            .or_default()
            .push((lang.to_owned(), trail));
        let want = std::fs::read_to_string(path).unwrap();
        if got != want {
            if update {
                std::fs::write(path, &got).unwrap();
            } else {
                failures.push(name);
            }
        }
    }
    for (case, langs) in &trails {
        assert_eq!(langs.len(), 2, "case {case} must exist in both en and hi");
        assert_eq!(
            langs[0].1, langs[1].1,
            "case {case}: en and hi walk different state trails"
        );
    }
    assert!(
        failures.is_empty(),
        "transcripts differ (run with UPDATE_GOLDEN=1 and review the diff): {failures:?}"
    );
}
