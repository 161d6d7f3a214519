//! One dialogue step and one Fluent render, each beside a trivial baseline measured in the
//! same run (cloning the data the real work starts from), so figures can be given as ratios.
//!
//! `cargo bench -p seva-flows --bench dialogue`

use std::hint::black_box;

use chrono::NaiveDate;
use criterion::{Criterion, criterion_group, criterion_main};
use flows::Lang;
use flows::catalog::Catalog;
use flows::effect::Effect;
use flows::engine::{Ctx, Fresh, Input, Profile, step};
use flows::message::{Body, Channel};
use flows::state::Conversation;
use flows::stations::{Directory, Station, StationKind};

fn directory() -> Directory {
    let names = [
        ("kotwali", "Kotwali", "कोतवाली"),
        ("gandhi-maidan", "Gandhi Maidan", "गांधी मैदान"),
        ("pirbahore", "Pirbahore", "पीरबहोर"),
        ("kadamkuan", "Kadamkuan", "कदमकुआं"),
    ];
    Directory::new(
        names
            .iter()
            .map(|(id, en, hi)| Station {
                id: format!("patna-{id}"),
                district_id: "patna".into(),
                district_en: "Patna".into(),
                district_hi: "पटना".into(),
                name_en: (*en).into(),
                name_hi: (*hi).into(),
                kind: StationKind::Station,
                alert_language: Lang::Hi,
                telegram_chat_id: None,
                latitude: Some(25.61),
                longitude: Some(85.14),
            })
            .collect(),
    )
}

fn text(t: &str) -> Input {
    Input::Message(Body::Text { text: t.to_owned() })
}

struct World {
    profile: Profile,
    stations: Directory,
}

impl World {
    fn ctx(&self) -> Ctx<'_> {
        Ctx {
            now: 1_795_858_200,
            today: NaiveDate::from_ymd_opt(2026, 11, 28).unwrap(),
            profile: &self.profile,
            stations: &self.stations,
            catalog: Catalog::global(),
            fresh: Fresh {
                reference: [1, 2, 3, 4, 5, 6, 7, 8],
                draft_id: "d".into(),
            },
            anonymous_categories: &[],
        }
    }

    /// The state after `inputs` (steps without effects other than the language).
    fn after(&mut self, inputs: &[&str]) -> Conversation {
        let mut state = Conversation::default();
        for input in inputs {
            let out = step(state, &text(input), &self.ctx());
            for e in &out.effects {
                if let Effect::SetLanguage { lang } = e {
                    self.profile.lang = Some(*lang);
                }
            }
            state = out.state;
        }
        state
    }
}

fn bench_step(c: &mut Criterion) {
    let mut world = World {
        profile: Profile {
            channel: Channel::Whatsapp,
            lang: None,
            lang_hint: None,
            channel_phone: Some("+919876543210".into()),
            phone: None,
            pushes_enabled: true,
        },
        stations: directory(),
    };
    // Mid-complaint: the category question answered with a typed word.
    let asked = world.after(&["hello", "english", "1"]);
    let input = text("theft");
    let stored = asked.to_json();
    let ctx = world.ctx();

    let mut g = c.benchmark_group("dialogue_step");
    g.bench_function("baseline_clone_state", |b| {
        b.iter(|| black_box(black_box(&asked).clone()))
    });
    g.bench_function("step", |b| {
        b.iter(|| step(black_box(&asked).clone(), black_box(&input), &ctx))
    });
    // What the runtime adds around a step: the stored JSON read and written again.
    g.bench_function("state_load_and_save", |b| {
        b.iter(|| match Conversation::load(Some(black_box(&stored))) {
            flows::state::Loaded::Restored(c) => c.to_json(),
            _ => unreachable!(),
        })
    });
    g.finish();

    // The main menu reply: two paragraphs and six choices, each with a `.short` attribute.
    let menu = step(asked.clone(), &text("menu"), &ctx)
        .replies
        .into_iter()
        .max_by_key(|r| r.choices.len())
        .expect("the menu has a reply");
    let catalog = Catalog::global();
    let mut g = c.benchmark_group("fluent_render");
    g.bench_function("baseline_clone_reply", |b| {
        b.iter(|| black_box(black_box(&menu).clone()))
    });
    g.bench_function("render_menu_en", |b| {
        b.iter(|| catalog.render(Lang::En, black_box(&menu)))
    });
    g.bench_function("render_menu_hi", |b| {
        b.iter(|| catalog.render(Lang::Hi, black_box(&menu)))
    });
    g.finish();
}

criterion_group!(benches, bench_step);
criterion_main!(benches);
