//! Properties over arbitrary conversations: no input sequence panics, the state always
//! survives a save and reload, and in every reachable state `menu` and `cancel` (in either
//! language) lead back to the main menu.

use chrono::NaiveDate;
use flows::Lang;
use flows::catalog::Catalog;
use flows::effect::{Effect, EffectResult};
use flows::engine::{Ctx, Fresh, Input, Profile, step};
use flows::message::{Body, Channel, MediaKind};
use flows::state::{Conversation, Step};
use flows::stations::{Directory, Station, StationKind};
use proptest::prelude::*;

fn directory() -> Directory {
    let st = |id: &str, kind| Station {
        id: id.into(),
        district_id: "d1".into(),
        district_en: "Patna".into(),
        district_hi: "पटना".into(),
        name_en: format!("Station {id}"),
        name_hi: format!("थाना {id}"),
        kind,
        alert_language: Lang::Hi,
        telegram_chat_id: None,
        latitude: Some(25.6),
        longitude: Some(85.1),
    };
    let mut rows: Vec<Station> = (0..12)
        .map(|i| st(&format!("s{i}"), StationKind::Station))
        .collect();
    rows.push(st("cr", StationKind::ControlRoom));
    let mut other = st("e1", StationKind::Station);
    other.district_id = "d2".into();
    rows.push(other);
    Directory::new(rows)
}

fn body() -> impl Strategy<Value = Body> {
    let words = prop::sample::select(vec![
        "1",
        "2",
        "3",
        "9",
        "०",
        "१",
        "हाँ",
        "no",
        "yes",
        "done",
        "हो गया",
        "back",
        "पीछे",
        "help",
        "मदद",
        "language",
        "भाषा",
        "stop",
        "start",
        "delete my data",
        "/start",
        "/start status_C-7K3Q-9XM4-R",
        "/status",
        "C-7K3Q-9XM4-R",
        "C-7K3Q-9XM4-S",
        "today",
        "कल",
        "25-11-2026",
        "9876543210",
        "490154203237518",
        "mera phone kho gaya",
        "nahi mila",
        "not sure",
        "more",
        "",
    ]);
    let choice_ids = prop::sample::select(vec![
        "menu:complaint",
        "menu:lost",
        "menu:found",
        "menu:status",
        "menu:mine",
        "lang:hi",
        "lang:en",
        "cat:cyber",
        "item:mobile",
        "item:id_document",
        "when:today",
        "st:s3",
        "st:zz",
        "not-sure",
        "more",
        "custody:with_me",
        "phone:use",
        "phone:other",
        "done",
        "skip",
        "consent:yes",
        "review:confirm",
        "review:edit",
        "edit:category",
        "edit:station",
        "resume:yes",
        "resume:no",
        "delete:yes",
        "d:d2",
    ]);
    prop_oneof![
        4 => words.prop_map(|t| Body::Text { text: t.to_owned() }),
        2 => ".{0,40}".prop_map(|t| Body::Text { text: t }),
        3 => choice_ids.prop_map(|id| Body::Choice { id: id.to_owned() }),
        1 => (-100.0f64..100.0, -200.0f64..200.0)
            .prop_map(|(latitude, longitude)| Body::Location { latitude, longitude, name: None, address: None }),
        1 => Just(Body::Media { kind: MediaKind::Voice, file_id: "f".into(), mime: None, caption: None }),
        1 => Just(Body::Contact { phone: "+91 98765 43210".into(), own: false }),
        1 => Just(Body::Unsupported { what: "reaction".into() }),
    ]
}

struct Sim {
    state: Conversation,
    profile: Profile,
    now: i64,
    stations: Directory,
}

impl Sim {
    fn new(channel: Channel) -> Sim {
        Sim {
            state: Conversation::default(),
            profile: Profile {
                channel,
                lang: None,
                lang_hint: None,
                channel_phone: (channel == Channel::Whatsapp).then(|| "+919876543210".into()),
                phone: None,
                pushes_enabled: true,
            },
            now: 1_795_858_200,
            stations: directory(),
        }
    }

    fn send(&mut self, body: Body) {
        let mut input = Input::Message(body);
        for _ in 0..4 {
            let ctx = Ctx {
                now: self.now,
                today: NaiveDate::from_ymd_opt(2026, 11, 28).unwrap(),
                profile: &self.profile,
                stations: &self.stations,
                catalog: Catalog::global(),
                fresh: Fresh {
                    reference: [1, 2, 3, 4, 5, 6, 7, 8],
                    draft_id: "d".into(),
                },
                anonymous_categories: &anonymous_tips(),
            };
            let out = step(self.state.clone(), &input, &ctx);
            let json = out.state.to_json();
            let reloaded: Conversation = serde_json::from_str(&json).unwrap();
            assert_eq!(reloaded, out.state);
            self.state = reloaded;
            let mut next = None;
            for e in out.effects {
                match e {
                    Effect::SetLanguage { lang } => self.profile.lang = Some(lang),
                    Effect::SetPhone { phone } => self.profile.phone = Some(phone),
                    Effect::FileReport { report } => {
                        next = Some(EffectResult::Filed {
                            reference: report.reference,
                            station: report.station_id,
                        })
                    }
                    Effect::LookupReport { .. } => {
                        next = Some(EffectResult::Report { report: None })
                    }
                    Effect::ListMyReports => {
                        next = Some(EffectResult::MyReports { reports: vec![] })
                    }
                    Effect::CheckReportLimit { kind } => {
                        next = Some(EffectResult::ReportLimit {
                            kind,
                            refused: None,
                        })
                    }
                    Effect::SetPushes { .. } | Effect::DeleteMyData => {}
                }
            }
            match next {
                Some(r) => input = Input::Result(r),
                None => return,
            }
        }
        panic!("effects did not settle");
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn no_input_sequence_panics_and_menu_and_cancel_return_to_the_menu(
        inputs in prop::collection::vec(body(), 0..40),
        waits in prop::collection::vec(0i64..100_000, 0..40),
        whatsapp in any::<bool>(),
        word in prop::sample::select(vec!["menu", "मेनू", "cancel", "रद्द", "Cancel ", "MENU"]),
    ) {
        let channel = if whatsapp { Channel::Whatsapp } else { Channel::Telegram };
        let mut sim = Sim::new(channel);
        for (i, body) in inputs.into_iter().enumerate() {
            sim.now += waits.get(i).copied().unwrap_or(5);
            sim.send(body);
        }
        let mut escaped = Sim { state: sim.state.clone(), profile: sim.profile.clone(), now: sim.now + 1, stations: directory() };
        escaped.send(Body::Text { text: word.to_owned() });
        if sim.profile.lang.is_some() {
            prop_assert_eq!(&escaped.state.step, &Step::Menu);
            prop_assert!(escaped.state.draft.is_none());
        } else {
            let at_language = matches!(escaped.state.step, Step::Language { .. });
            prop_assert!(at_language);
        }
    }

    #[test]
    fn arbitrary_stored_state_bytes_never_panic(bytes in ".{0,200}") {
        let loaded = Conversation::load(Some(&bytes));
        let state = match loaded {
            flows::state::Loaded::Fresh(s) | flows::state::Loaded::Restored(s) | flows::state::Loaded::Reset(s) => s,
        };
        let profile = Sim::new(Channel::Terminal).profile;
        let stations = directory();
        let ctx = Ctx {
            now: 0,
            today: NaiveDate::from_ymd_opt(2026, 11, 28).unwrap(),
            profile: &profile,
            stations: &stations,
            catalog: Catalog::global(),
            fresh: Fresh { reference: [0; 8], draft_id: "d".into() },
            anonymous_categories: &anonymous_tips(),
        };
        let _ = step(state, &Input::StateReset(Body::Text { text: bytes.clone() }), &ctx);
    }
}

#[test]
fn a_state_from_an_older_schema_resets_politely() {
    let old = r#"{"version":0,"step":{"step":"menu"},"last_seen":5}"#;
    assert!(matches!(
        Conversation::load(Some(old)),
        flows::state::Loaded::Reset(_)
    ));
    let garbage = r#"{"version":1,"step":{"step":"warp_drive"}}"#;
    assert!(matches!(
        Conversation::load(Some(garbage)),
        flows::state::Loaded::Reset(_)
    ));
    let mut sim = Sim::new(Channel::Terminal);
    sim.profile.lang = Some(Lang::En);
    let ctx = Ctx {
        now: 10,
        today: NaiveDate::from_ymd_opt(2026, 11, 28).unwrap(),
        profile: &sim.profile,
        stations: &sim.stations,
        catalog: Catalog::global(),
        fresh: Fresh {
            reference: [0; 8],
            draft_id: "d".into(),
        },
        anonymous_categories: &anonymous_tips(),
    };
    let out = step(
        Conversation::default(),
        &Input::StateReset(Body::Text { text: "hi".into() }),
        &ctx,
    );
    assert_eq!(out.state.step, Step::Menu);
    assert_eq!(out.replies[0].texts[0].id, "state-reset");
}

/// The operator's anonymous-tip categories, so these paths are exercised too.
fn anonymous_tips() -> Vec<String> {
    vec!["drugs_liquor_gambling".to_owned()]
}
