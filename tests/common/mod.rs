//! Shared test fixtures: a store on a real SQLite file in a tempdir, a frozen clock, a scripted
//! dialogue engine and a scripted channel sender.
#![allow(dead_code)] // each test file uses a different part

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use flows::Lang;
use flows::delivery::SendOutcome;
use flows::effect::{Effect, NewReport};
use flows::engine::{Ctx, Input, Outcome};
use flows::message::{Body, Channel, Inbound, SenderHints};
use flows::reference::{Reference, ReportKind};
use flows::reply::{Reply, Text};
use flows::state::{Conversation, Step};
use seva::clock::Clock;
use seva::outbox::{ChannelSender, OutboundMessage};
use seva::runtime::{Engine, Runtime};
use seva::store::Store;
use sqlx::SqlitePool;

/// 2026-11-28 12:00 UTC.
pub const START: i64 = 1_795_867_200;

pub struct Harness {
    pub dir: tempfile::TempDir,
    pub url: String,
    pub store: Store,
    pub now: Arc<AtomicI64>,
}

impl Harness {
    pub async fn new() -> Harness {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("data/seva.db").display());
        let store = Store::open(&url).await.unwrap();
        Harness {
            dir,
            url,
            store,
            now: Arc::new(AtomicI64::new(START)),
        }
    }

    pub fn db_path(&self) -> PathBuf {
        self.dir.path().join("data/seva.db")
    }

    pub fn clock(&self) -> Clock {
        let now = self.now.clone();
        Clock::from_fn(move || now.load(Ordering::SeqCst))
    }

    pub fn advance(&self, secs: i64) {
        self.now.fetch_add(secs, Ordering::SeqCst);
    }

    pub fn time(&self) -> i64 {
        self.now.load(Ordering::SeqCst)
    }

    /// A runtime over this store with the scripted engine and the example stations.
    pub fn runtime(&self) -> Runtime {
        self.runtime_on(self.store.clone())
    }

    pub fn runtime_on(&self, store: Store) -> Runtime {
        Runtime::builder(store)
            .stations(example_stations())
            .clock(self.clock())
            .engine(Arc::new(scripted) as Engine)
            .build()
    }

    /// A separate pool for looking at rows the API does not expose.
    pub async fn db(&self) -> SqlitePool {
        SqlitePool::connect(&self.url).await.unwrap()
    }
}

pub fn example_stations() -> flows::stations::Directory {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("config/stations.example.csv");
    seva::stations::load(&path).unwrap()
}

pub fn text(sender: &str, provider_id: &str, text: &str) -> Inbound {
    Inbound {
        channel: Channel::Terminal,
        sender: sender.to_owned(),
        provider_id: provider_id.to_owned(),
        sent_at: 0,
        body: Body::Text {
            text: text.to_owned(),
        },
        hints: SenderHints::default(),
    }
}

/// The reference the scripted engine files with `file-fixed`.
pub const FIXED_REFERENCE: &str = "C-7K3Q-9XM4-R";

/// A dialogue engine with a tiny command language, so runtime tests control effects exactly:
///
/// * `file DRAFT` — files a complaint with draft id DRAFT and a reference from `ctx.fresh`;
///   `file-fixed DRAFT` uses [`FIXED_REFERENCE`].
/// * `check REF` — looks up a reference; `mine` — lists my reports.
/// * `lang hi|en`, `stop`, `forget` — set language, stop pushes, delete my data.
/// * `boom` — panics.
/// * anything else — replies `echo` with the text.
///
/// Every effect result is answered with a `result` reply carrying the result as JSON; a reset
/// state is answered with `state-reset`.
pub fn scripted(mut state: Conversation, input: &Input, ctx: &Ctx<'_>) -> Outcome {
    state.step = Step::Menu;
    state.last_seen = ctx.now;
    let mut replies = Vec::new();
    let mut effects = Vec::new();
    match input {
        Input::Message(Body::Text { text }) => {
            let (cmd, arg) = text.split_once(' ').unwrap_or((text.as_str(), ""));
            match cmd {
                "file" | "file-fixed" => {
                    let reference = if cmd == "file" {
                        Reference::generate(ReportKind::Complaint, ctx.fresh.reference)
                    } else {
                        Reference::parse(FIXED_REFERENCE).unwrap()
                    };
                    effects.push(Effect::FileReport {
                        report: Box::new(report(arg, reference)),
                    });
                }
                "check" => effects.push(Effect::LookupReport {
                    reference: Reference::parse(arg).unwrap(),
                }),
                "mine" => effects.push(Effect::ListMyReports),
                "lang" => effects.push(Effect::SetLanguage {
                    lang: Lang::from_code(arg).unwrap(),
                }),
                "stop" => effects.push(Effect::SetPushes { enabled: false }),
                "forget" => effects.push(Effect::DeleteMyData),
                "boom" => panic!("scripted engine blew up"),
                _ => replies.push(Reply::text(Text::new("echo").arg("text", text.as_str()))),
            }
        }
        Input::Message(_) => replies.push(Reply::text(Text::new("echo").arg("text", "?"))),
        Input::Result(r) => replies.push(Reply::text(
            Text::new("result").arg("json", serde_json::to_string(r).unwrap()),
        )),
        Input::StateReset(_) => replies.push(Reply::text(Text::new("state-reset"))),
    }
    Outcome {
        state,
        lang: ctx.profile.lang.unwrap_or(Lang::En),
        replies,
        effects,
    }
}

pub fn report(draft_id: &str, reference: Reference) -> NewReport {
    NewReport {
        draft_id: draft_id.to_owned(),
        reference,
        kind: ReportKind::Complaint,
        category: "theft".to_owned(),
        description: Some("cycle stolen near the market".to_owned()),
        identifier: None,
        occurred_on: chrono::NaiveDate::from_ymd_opt(2026, 11, 28),
        place: Some(flows::effect::Place::Address {
            text: "Kankarbagh market".to_owned(),
        }),
        district_id: Some("patna".to_owned()),
        station_id: Some("patna-kotwali".to_owned()),
        name: Some("Asha".to_owned()),
        phone: Some("+919123456789".to_owned()),
        custody: None,
        attachments: vec![flows::effect::Attachment {
            kind: flows::message::MediaKind::Photo,
            file_id: "photo-1".to_owned(),
            mime: Some("image/jpeg".to_owned()),
            caption: None,
        }],
        lang: Lang::Hi,
    }
}

/// The outbox replies of one citizen, oldest first: (text id, first argument as JSON).
pub async fn replies(pool: &SqlitePool, citizen_id: i64) -> Vec<(String, serde_json::Value)> {
    let rows: Vec<String> = sqlx::query_scalar(
        "select content from outbox where citizen_id = ? and kind = 'reply' order by id",
    )
    .bind(citizen_id)
    .fetch_all(pool)
    .await
    .unwrap();
    rows.iter()
        .map(|c| {
            let reply: Reply = serde_json::from_str(c).unwrap();
            let t = &reply.texts[0];
            let arg = t
                .args
                .first()
                .map(|(_, v)| serde_json::to_value(v).unwrap())
                .unwrap_or_default();
            (t.id.clone(), arg)
        })
        .collect()
}

/// A channel sender that answers from a script (then `Sent`) and records what it was given.
pub struct FakeSender {
    pub channel: Channel,
    script: Mutex<VecDeque<(String, SendOutcome)>>,
    pub sent: Mutex<Vec<OutboundMessage>>,
}

impl FakeSender {
    pub fn new(channel: Channel) -> Arc<FakeSender> {
        Arc::new(FakeSender {
            channel,
            script: Mutex::new(VecDeque::new()),
            sent: Mutex::new(Vec::new()),
        })
    }

    /// The next send to `recipient` answers `outcome`.
    pub fn script(&self, recipient: &str, outcome: SendOutcome) {
        self.script
            .lock()
            .unwrap()
            .push_back((recipient.to_owned(), outcome));
    }

    /// Recipients and outbox ids of every successful send, in order.
    pub fn delivered(&self) -> Vec<(String, i64)> {
        self.sent
            .lock()
            .unwrap()
            .iter()
            .map(|m| (m.recipient.clone(), m.id))
            .collect()
    }
}

#[async_trait]
impl ChannelSender for FakeSender {
    fn channel(&self) -> Channel {
        self.channel
    }

    async fn send(&self, msg: &OutboundMessage) -> SendOutcome {
        let scripted = {
            let mut script = self.script.lock().unwrap();
            let i = script.iter().position(|(r, _)| *r == msg.recipient);
            i.and_then(|i| script.remove(i)).map(|(_, o)| o)
        };
        match scripted {
            Some(outcome) => outcome,
            None => {
                self.sent.lock().unwrap().push(msg.clone());
                SendOutcome::Sent {
                    provider_id: format!("fake-{}", msg.id),
                }
            }
        }
    }
}
