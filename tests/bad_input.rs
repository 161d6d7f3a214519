//! The bad-input matrix (spec §6, "Bad input is harmless"): one table over the real server
//! (`seva::run` on 127.0.0.1:0, SQLite in a tempdir) with both channels on — signed WhatsApp
//! webhooks against the fake Graph API, Telegram webhook updates against the fake Bot API.
//!
//! Each row names the input and the answer it must get: an HTTP status (and then nothing is
//! stored and nothing is sent), or 200 and a reply the citizen sees at the fake provider (a
//! re-prompt leaves the conversation exactly where it was). After every row the table counts
//! are compared, so no row may leave a partial write (a citizen without a message, a report, a
//! stray outbox row), and at the end no message failed (a panic in the engine is caught and
//! recorded as a failed message) and the server still answers `/healthz`.
//!
//! Every row has its own citizen, so rows do not depend on each other's conversations. The
//! table runs on SQLite, then on PostgreSQL when one is available (`tests/common`).

mod common;

use std::time::Duration;

use bot::testing::FakeBotApi;
use serde_json::{Value, json};
use seva::config::Config;
use seva::store::Store;
use sqlx::AnyPool;
use webhook::testing::{self, FakeGraph};

const APP_SECRET: &str = "bad-input-app-secret";
const VERIFY_TOKEN: &str = "bad-input-verify-token";
const ACCESS_TOKEN: &str = "EAAG-bad-input-access-token";
const TG_TOKEN: &str = "4343:bad-input-telegram";
const TG_SECRET: &str = "bad_input-Webhook-secret";

const WAIT: Duration = Duration::from_secs(20);
/// How long a refused or ignored input gets to (wrongly) cause something.
const QUIET: Duration = Duration::from_millis(400);

/// A well-formed reference of nobody (the spec's test vector).
const REFERENCE: &str = "C-7K3Q-9XM4-R";

const WA_LIMIT: usize = webhook::routes::MAX_BODY_BYTES;
const TG_LIMIT: usize = bot::transport::MAX_WEBHOOK_BODY;

#[derive(Debug, Clone, Copy, PartialEq)]
enum Ch {
    Wa,
    Tg,
}

/// Where the row's citizen is before the probe.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Setup {
    /// Never wrote before.
    New,
    /// English chosen, filing a theft complaint, asked "What happened?".
    Description,
    /// English chosen, asked for a reference to check.
    Status,
}

/// How a request authenticates.
#[derive(Debug, Clone)]
enum Auth {
    /// The right `X-Hub-Signature-256` / `X-Telegram-Bot-Api-Secret-Token`.
    Good,
    None,
    /// Signed with another key / a wrong secret.
    Wrong,
    /// A header value that is not a signature at all.
    Malformed(&'static str),
    /// The right signature of a different body.
    OtherBody,
    /// The header twice: the right value and then `second` (`None`: the right one again).
    Twice(Option<&'static str>),
}

#[derive(Debug, Clone)]
enum Payload {
    /// A well-formed text message from the row's citizen.
    Text(String),
    /// A tap on a button that sends this id (WhatsApp button reply, Telegram callback query).
    Choice(String),
    /// WhatsApp: extra fields of the `messages[]` element (`type` and content; `from`, `id` and
    /// `timestamp` are filled in unless given). Telegram: fields merged into a private message
    /// (`date` is filled in unless given).
    Message(Value),
    /// Telegram only: the update's fields besides `update_id`.
    Update(Value),
    /// These exact bytes.
    Bytes(Vec<u8>),
}

#[derive(Debug, Clone)]
enum Probe {
    Post(Auth, Payload),
    /// The same signed, well-formed text posted twice.
    Replay(String),
    /// WhatsApp's verification handshake with this query string.
    Handshake(&'static str),
}

#[derive(Debug, Clone, Copy)]
enum Expect {
    /// Refused with this status: nothing stored, nothing sent.
    Refused(u16),
    /// 200 (a provider must not retry it), but nothing stored and nothing sent.
    Ignored,
    /// 200; the citizen is asked again (the reply contains the text) and the conversation did
    /// not move.
    Reprompt(&'static str),
    /// 200; the citizen gets a reply containing the text (the conversation may move on).
    Answer(&'static str),
}

struct Row {
    name: &'static str,
    ch: Ch,
    setup: Setup,
    probe: Probe,
    expect: Expect,
    /// Text that must be kept verbatim in the stored conversation afterwards.
    kept: Option<&'static str>,
}

fn row(name: &'static str, ch: Ch, setup: Setup, probe: Probe, expect: Expect) -> Row {
    Row {
        name,
        ch,
        setup,
        probe,
        expect,
        kept: None,
    }
}

fn post(auth: Auth, payload: Payload) -> Probe {
    Probe::Post(auth, payload)
}

fn text(s: impl Into<String>) -> Probe {
    post(Auth::Good, Payload::Text(s.into()))
}

fn nested(depth: usize) -> Vec<u8> {
    let mut v = br#"{"object":"whatsapp_business_account","update_id":1,"entry":"#.to_vec();
    v.extend(std::iter::repeat_n(b'[', depth));
    v.extend(std::iter::repeat_n(b']', depth));
    v.push(b'}');
    v
}

/// A body of `len` bytes that is valid JSON apart from its size.
fn huge(len: usize) -> Vec<u8> {
    let mut v = br#"{"object":"whatsapp_business_account","update_id":1,"pad":""#.to_vec();
    v.resize(len - 2, b'a');
    v.extend(b"\"}");
    v
}

/// A letter under 3,000 combining marks: one grapheme cluster, so one "character".
fn zalgo() -> String {
    let mut s = String::from("a");
    for i in 0..3000u32 {
        s.push(char::from_u32(0x300 + i % 0x70).unwrap());
    }
    s
}

/// What is kept of [`zalgo`] in the stored state: its first 16 characters
/// (`text::CLUSTER_MAX_CHARS`) and then the end of the JSON string.
const ZALGO_KEPT: &str = "a\u{300}\u{301}\u{302}\u{303}\u{304}\u{305}\u{306}\u{307}\u{308}\u{309}\u{30a}\u{30b}\u{30c}\u{30d}\u{30e}\"";
const TOO_LONG: &str = "That is too long";
const WHAT_HAPPENED: &str = "What happened?";
const WHEN: &str = "When did it happen?";
const WELCOME: &str = "Choose your language";
const MALFORMED: &str = "That is not a reference number";
const NOT_FOUND: &str = "No report with this reference was found for you";

fn rows() -> Vec<Row> {
    use Ch::{Tg, Wa};
    use Expect::{Answer, Ignored, Refused, Reprompt};
    use Setup::{Description, New, Status};
    let hello = || Payload::Text("hello".into());
    vec![
        // ---- WhatsApp: who may post ----
        row(
            "wa: no signature header",
            Wa,
            New,
            post(Auth::None, hello()),
            Refused(401),
        ),
        row(
            "wa: signed with another key",
            Wa,
            New,
            post(Auth::Wrong, hello()),
            Refused(401),
        ),
        row(
            "wa: signature header not sha256=<hex>",
            Wa,
            New,
            post(Auth::Malformed("sha1=0123456789abcdef"), hello()),
            Refused(401),
        ),
        row(
            "wa: signature header empty",
            Wa,
            New,
            post(Auth::Malformed(""), hello()),
            Refused(401),
        ),
        row(
            "wa: valid signature of another body",
            Wa,
            New,
            post(Auth::OtherBody, hello()),
            Refused(401),
        ),
        row(
            "wa: signature header twice, right then wrong",
            Wa,
            New,
            post(
                Auth::Twice(Some(
                    "sha256=0000000000000000000000000000000000000000000000000000000000000000",
                )),
                hello(),
            ),
            Refused(401),
        ),
        row(
            "wa: signature header twice, both right",
            Wa,
            New,
            post(Auth::Twice(None), hello()),
            Answer(WELCOME),
        ),
        row(
            "wa: handshake with a wrong verify token",
            Wa,
            New,
            Probe::Handshake("hub.mode=subscribe&hub.verify_token=guess&hub.challenge=42"),
            Refused(403),
        ),
        row(
            "wa: handshake without a token",
            Wa,
            New,
            Probe::Handshake("hub.mode=subscribe&hub.challenge=42"),
            Refused(403),
        ),
        // ---- WhatsApp: what is posted ----
        row(
            "wa: a replayed notification is processed once",
            Wa,
            New,
            Probe::Replay("hello".into()),
            Answer(WELCOME),
        ),
        row(
            "wa: body one byte over the limit (signed)",
            Wa,
            New,
            post(Auth::Good, Payload::Bytes(huge(WA_LIMIT + 1))),
            Refused(413),
        ),
        row(
            "wa: body one byte over the limit (unsigned)",
            Wa,
            New,
            post(Auth::None, Payload::Bytes(huge(WA_LIMIT + 1))),
            Refused(413),
        ),
        row(
            "wa: JSON nested 100,000 deep",
            Wa,
            New,
            post(Auth::Good, Payload::Bytes(nested(100_000))),
            Refused(400),
        ),
        row(
            "wa: not JSON",
            Wa,
            New,
            post(Auth::Good, Payload::Bytes(b"hello=world".to_vec())),
            Refused(400),
        ),
        row(
            "wa: JSON but not an object",
            Wa,
            New,
            post(Auth::Good, Payload::Bytes(b"[1,2,3]".to_vec())),
            Refused(400),
        ),
        row(
            "wa: invalid UTF-8 inside the text",
            Wa,
            Status,
            post(Auth::Good, Payload::Bytes(Vec::new())), // built per citizen below
            Refused(400),
        ),
        row(
            "wa: a lone surrogate escape (\\ud800) in a reference",
            Wa,
            Status,
            post(Auth::Good, Payload::Bytes(Vec::new())), // built per citizen below
            Refused(400),
        ),
        row(
            "wa: an object that is not a WhatsApp notification",
            Wa,
            New,
            post(
                Auth::Good,
                Payload::Bytes(br#"{"object":"page","entry":[]}"#.to_vec()),
            ),
            Ignored,
        ),
        row(
            "wa: a status for a message Seva never sent",
            Wa,
            New,
            post(Auth::Good, Payload::Bytes(Vec::new())), // built per citizen below
            Ignored,
        ),
        row(
            "wa: unknown message type",
            Wa,
            Description,
            post(
                Auth::Good,
                Payload::Message(json!({ "type": "hologram", "hologram": { "x": 1 } })),
            ),
            Reprompt("I can read text"),
        ),
        row(
            "wa: message without type or content",
            Wa,
            Description,
            post(Auth::Good, Payload::Message(json!({}))),
            Reprompt("I can read text"),
        ),
        row(
            "wa: a 5,000-character text",
            Wa,
            Description,
            text("a".repeat(5000)),
            Reprompt(TOO_LONG),
        ),
        row(
            "wa: a 5,000-character Devanagari text",
            Wa,
            Description,
            text("क".repeat(5000)),
            Reprompt(TOO_LONG),
        ),
        row(
            "wa: zero-width characters only",
            Wa,
            Description,
            text("\u{200B}\u{200C}\u{200D}\u{2060}\u{FEFF}"),
            Reprompt("Please write a few words"),
        ),
        Row {
            kept: Some(ZALGO_KEPT),
            ..row(
                "wa: one letter with 3,000 combining marks (cut to 16 characters)",
                Wa,
                Description,
                text(zalgo()),
                Answer(WHEN),
            )
        },
        Row {
            kept: Some("سرقت دراجتي"),
            ..row(
                "wa: right-to-left text with a bidi override",
                Wa,
                Description,
                text("\u{202E}سرقت دراجتي من السوق"),
                Answer(WHEN),
            )
        },
        Row {
            kept: Some("'; drop table reports;--"),
            ..row(
                "wa: SQL in free text",
                Wa,
                Description,
                text("'; drop table reports;--"),
                Answer(WHEN),
            )
        },
        Row {
            kept: Some("{ $name } { -brand } {"),
            ..row(
                "wa: Fluent syntax in free text",
                Wa,
                Description,
                text("{ $name } { -brand } { NUMBER($x) }"),
                Answer(WHEN),
            )
        },
        row(
            "wa: a reference with Devanagari digits",
            Wa,
            Status,
            text("C-७K३Q-९XM४-R"),
            Answer(NOT_FOUND),
        ),
        row(
            "wa: a reference with a Cyrillic С",
            Wa,
            Status,
            text("С-7K3Q-9XM4-R"),
            Reprompt(MALFORMED),
        ),
        row(
            "wa: a reference with one wrong character",
            Wa,
            Status,
            text("C-7K3Q-9XM4-S"),
            Reprompt("typo"),
        ),
        row(
            "wa: SQL where a reference is expected",
            Wa,
            Status,
            text("C' or '1'='1"),
            Reprompt(MALFORMED),
        ),
        row(
            "wa: a 5,000-character button id",
            Wa,
            Description,
            post(Auth::Good, Payload::Choice("x".repeat(5000))),
            Reprompt(WHAT_HAPPENED),
        ),
        row(
            "wa: a timestamp in the year 2100",
            Wa,
            New,
            post(
                Auth::Good,
                Payload::Message(
                    json!({ "type": "text", "text": { "body": "hello" }, "timestamp": "4102444800" }),
                ),
            ),
            Answer(WELCOME),
        ),
        row(
            "wa: a timestamp in milliseconds",
            Wa,
            New,
            post(
                Auth::Good,
                Payload::Message(json!({ "type": "text", "text": { "body": "hello" },
                "timestamp": (chrono::Utc::now().timestamp() * 1000).to_string() })),
            ),
            Answer(WELCOME),
        ),
        row(
            "wa: a timestamp that is not a number",
            Wa,
            New,
            post(
                Auth::Good,
                Payload::Message(
                    json!({ "type": "text", "text": { "body": "hello" }, "timestamp": "soon" }),
                ),
            ),
            Answer(WELCOME),
        ),
        // ---- Telegram: who may post ----
        row(
            "tg: no secret header",
            Tg,
            New,
            post(Auth::None, hello()),
            Refused(401),
        ),
        row(
            "tg: wrong secret",
            Tg,
            New,
            post(Auth::Wrong, hello()),
            Refused(401),
        ),
        row(
            "tg: empty secret header",
            Tg,
            New,
            post(Auth::Malformed(""), hello()),
            Refused(401),
        ),
        row(
            "tg: secret header twice, right then wrong",
            Tg,
            New,
            post(Auth::Twice(Some("wrong")), hello()),
            Refused(401),
        ),
        // ---- Telegram: what is posted ----
        row(
            "tg: a replayed update is processed once",
            Tg,
            New,
            Probe::Replay("hello".into()),
            Answer(WELCOME),
        ),
        row(
            "tg: body one byte over the limit",
            Tg,
            New,
            post(Auth::Good, Payload::Bytes(huge(TG_LIMIT + 1))),
            Refused(413),
        ),
        row(
            "tg: JSON nested 100,000 deep",
            Tg,
            New,
            post(Auth::Good, Payload::Bytes(nested(100_000))),
            Refused(400),
        ),
        row(
            "tg: not JSON",
            Tg,
            New,
            post(Auth::Good, Payload::Bytes(b"\x00\x01garbage".to_vec())),
            Refused(400),
        ),
        row(
            "tg: JSON without update_id",
            Tg,
            New,
            post(Auth::Good, Payload::Bytes(br#"{"message":{}}"#.to_vec())),
            Refused(400),
        ),
        row(
            "tg: invalid UTF-8 inside the text",
            Tg,
            Status,
            post(Auth::Good, Payload::Bytes(Vec::new())), // built per citizen below
            Refused(400),
        ),
        row(
            "tg: unknown update kind",
            Tg,
            New,
            post(
                Auth::Good,
                Payload::Update(json!({ "hologram": { "x": 1 } })),
            ),
            Ignored,
        ),
        row(
            "tg: unknown message content",
            Tg,
            Description,
            post(
                Auth::Good,
                Payload::Message(json!({ "hologram": { "x": 1 } })),
            ),
            Reprompt("I can read text"),
        ),
        row(
            "tg: a dice",
            Tg,
            Description,
            post(
                Auth::Good,
                Payload::Message(json!({ "dice": { "emoji": "🎲", "value": 3 } })),
            ),
            Reprompt("I can read text"),
        ),
        row(
            "tg: a 5,000-character text",
            Tg,
            Description,
            text("a".repeat(5000)),
            Reprompt(TOO_LONG),
        ),
        row(
            "tg: zero-width characters only",
            Tg,
            Description,
            text("\u{200B}\u{200C}\u{200D}\u{2060}\u{FEFF}"),
            Reprompt("Please write a few words"),
        ),
        Row {
            kept: Some(ZALGO_KEPT),
            ..row(
                "tg: one letter with 3,000 combining marks (cut to 16 characters)",
                Tg,
                Description,
                text(zalgo()),
                Answer(WHEN),
            )
        },
        Row {
            kept: Some("גנבו לי את האופניים"),
            ..row(
                "tg: right-to-left text with isolates",
                Tg,
                Description,
                text("\u{2067}גנבו לי את האופניים\u{2069}"),
                Answer(WHEN),
            )
        },
        Row {
            kept: Some("'; drop table reports;--"),
            ..row(
                "tg: SQL in free text",
                Tg,
                Description,
                text("'; drop table reports;--"),
                Answer(WHEN),
            )
        },
        Row {
            kept: Some("{ $name }"),
            ..row(
                "tg: Fluent syntax in free text",
                Tg,
                Description,
                text("{ $name } stole { $station }"),
                Answer(WHEN),
            )
        },
        row(
            "tg: a reference with Devanagari digits",
            Tg,
            Status,
            text("c ७k३q ९xm४ r"),
            Answer(NOT_FOUND),
        ),
        row(
            "tg: a reference with a Cyrillic С and К",
            Tg,
            Status,
            text("С-7К3Q-9XM4-R"),
            Reprompt(MALFORMED),
        ),
        row(
            "tg: a /start deep link with a broken reference",
            Tg,
            Status,
            text("/start status_C-7K3Q-9XM4-%27%3B"),
            Answer("What would you like to do?"),
        ),
        row(
            "tg: a 5,000-byte callback_data",
            Tg,
            Description,
            post(Auth::Good, Payload::Choice("x".repeat(5000))),
            Reprompt(WHAT_HAPPENED),
        ),
        row(
            "tg: a date in the year 2100",
            Tg,
            New,
            post(
                Auth::Good,
                Payload::Message(json!({ "text": "hello", "date": 4_102_444_800_i64 })),
            ),
            Answer(WELCOME),
        ),
        row(
            "tg: a date in milliseconds",
            Tg,
            New,
            post(
                Auth::Good,
                Payload::Message(
                    json!({ "text": "hello", "date": chrono::Utc::now().timestamp() * 1000 }),
                ),
            ),
            Answer(WELCOME),
        ),
    ]
}

/// The references of the table are what the rows say they are.
#[test]
fn the_references_in_the_table_are_well_formed() {
    use flows::reference::{Reference, ReferenceError};
    let r = Reference::parse(REFERENCE).unwrap();
    assert_eq!(Reference::parse("C-७K३Q-९XM४-R"), Ok(r));
    assert_eq!(Reference::parse("c ७k३q ९xm४ r"), Ok(r));
    assert_eq!(
        Reference::parse("С-7K3Q-9XM4-R"),
        Err(ReferenceError::Malformed),
        "Cyrillic С"
    );
    assert_eq!(
        Reference::parse("С-7К3Q-9XM4-R"),
        Err(ReferenceError::Malformed),
        "Cyrillic С and К"
    );
}

// ---------------------------------------------------------------------------------------------

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

struct Server {
    /// Kept for its cleanup (a PostgreSQL schema is dropped with it).
    _db: common::TestDb,
    addr: std::net::SocketAddr,
    graph: FakeGraph,
    tg: FakeBotApi,
    pool: AnyPool,
    http: reqwest::Client,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<Result<(), seva::Error>>>,
    next_id: u64,
}

impl Server {
    async fn start(db: common::TestDb) -> Server {
        let db_url = db.url.clone();
        let dir = db.dir.path().to_owned();
        Store::open(&db_url).await.unwrap().close().await;
        let graph = FakeGraph::start().await;
        graph.require_token(ACCESS_TOKEN);
        let tg = FakeBotApi::start(TG_TOKEN).await;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        assert!(addr.ip().is_loopback());
        let vars: Vec<(&str, String)> = vec![
            ("SEVA_DATABASE_URL", db_url.clone()),
            (
                "SEVA_STATIONS_CSV",
                format!("{}/config/stations.example.csv", env!("CARGO_MANIFEST_DIR")),
            ),
            ("SEVA_MEDIA_DIR", dir.join("media").display().to_string()),
            ("SEVA_SHUTDOWN_GRACE", "5".to_owned()),
            ("WHATSAPP_APP_SECRET", APP_SECRET.to_owned()),
            ("WHATSAPP_VERIFY_TOKEN", VERIFY_TOKEN.to_owned()),
            ("WHATSAPP_ACCESS_TOKEN", ACCESS_TOKEN.to_owned()),
            (
                "WHATSAPP_PHONE_NUMBER_ID",
                testing::PHONE_NUMBER_ID.to_owned(),
            ),
            ("WHATSAPP_API_URL", graph.url()),
            ("TELEGRAM_BOT_TOKEN", TG_TOKEN.to_owned()),
            ("TELEGRAM_API_URL", tg.url()),
            (
                "TELEGRAM_WEBHOOK_URL",
                format!("http://{addr}/webhook/telegram"),
            ),
            ("TELEGRAM_WEBHOOK_SECRET", TG_SECRET.to_owned()),
            ("SEVA_TELEGRAM_CHAT_MPS", "50".to_owned()),
        ];
        let config =
            Config::load(&move |key| vars.iter().find(|(k, _)| *k == key).map(|(_, v)| v.clone()))
                .unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(seva::run(config, listener, async move {
            let _ = stopped.await;
        }));
        let pool = db.pool().await;
        let server = Server {
            _db: db,
            addr,
            graph,
            tg,
            pool,
            http: client(),
            stop: Some(stop),
            task: Some(task),
            next_id: 0,
        };
        server.tg.wait_for_calls("setWebhook", 1, WAIT).await;
        server
    }

    async fn shutdown(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let result = tokio::time::timeout(WAIT, task)
                .await
                .expect("server stops")
                .unwrap();
            assert!(result.is_ok(), "{result:?}");
        }
    }

    fn fresh_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    async fn count(&self, sql: &str) -> i64 {
        sqlx::query_scalar(sql).fetch_one(&self.pool).await.unwrap()
    }

    /// Row counts of every table a message can touch.
    async fn snapshot(&self) -> Vec<(&'static str, i64)> {
        let mut out = Vec::new();
        for table in [
            "citizens",
            "conversations",
            "inbox",
            "outbox",
            "reports",
            "report_history",
            "attachments",
            "whatsapp_media",
            "telegram_reachability",
            "telegram_group_chats",
            "audit_log",
        ] {
            out.push((
                table,
                self.count(&format!("select count(*) from {table}")).await,
            ));
        }
        out
    }

    /// Waits until every stored message is processed and every reply is delivered.
    async fn settle(&self) {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let unprocessed = self
                .count("select count(*) from inbox where processed_at is null")
                .await;
            let undelivered = self
                .count(
                    "select count(*) from outbox where status = 'sending' or (status = 'pending' \
                     and (channel <> 'whatsapp' or wa_wait_after_inbox is null))",
                )
                .await;
            if unprocessed == 0 && undelivered == 0 {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "not settled: {unprocessed} unprocessed, {undelivered} undelivered"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Everything the citizen has been sent so far, as text.
    fn sent(&self, c: &Citizen) -> Vec<String> {
        match c.ch {
            Ch::Wa => self
                .graph
                .messages()
                .iter()
                .filter(|m| m["to"].as_str() == Some(c.wa_id().as_str()))
                .map(testing::message_text)
                .collect(),
            Ch::Tg => self.tg.sent_texts(c.user),
        }
    }

    /// The stored conversation of the citizen, without `last_seen`.
    async fn state(&self, c: &Citizen) -> Option<Value> {
        let (channel, external) = match c.ch {
            Ch::Wa => ("whatsapp", c.wa_id()),
            Ch::Tg => ("telegram", c.user.to_string()),
        };
        let state: Option<String> = sqlx::query_scalar(
            "select state from conversations join citizens on citizens.id = conversations.citizen_id \
             where citizens.channel = $1 and citizens.external_id = $2",
        )
        .bind(channel)
        .bind(external)
        .fetch_optional(&self.pool)
        .await
        .unwrap();
        state.map(|s| {
            let mut v: Value = serde_json::from_str(&s).unwrap();
            v.as_object_mut().unwrap().remove("last_seen");
            v
        })
    }

    // ---- building requests ----

    fn wa_message(&mut self, c: &Citizen, fields: Value) -> Value {
        let wamid = format!("wamid.bad-input-{}", self.fresh_id());
        let mut m = json!({
            "from": c.wa_id(),
            "id": wamid,
            "timestamp": chrono::Utc::now().timestamp().to_string(),
        });
        for (k, v) in fields.as_object().unwrap() {
            m[k] = v.clone();
        }
        testing::notification(&[(c.wa_id().as_str(), "Citizen")], vec![m], vec![])
    }

    fn tg_update(&mut self, fields: Value) -> Value {
        let id = 10_000 + self.fresh_id();
        let mut u = json!({ "update_id": id });
        for (k, v) in fields.as_object().unwrap() {
            u[k] = v.clone();
        }
        u
    }

    fn tg_message(&mut self, c: &Citizen, fields: Value) -> Value {
        let mut m = json!({
            "message_id": 700_000 + self.fresh_id(),
            "date": chrono::Utc::now().timestamp(),
            "from": { "id": c.user, "is_bot": false, "first_name": "Citizen", "language_code": "en" },
            "chat": { "id": c.user, "type": "private", "first_name": "Citizen" },
        });
        for (k, v) in fields.as_object().unwrap() {
            m[k] = v.clone();
        }
        self.tg_update(json!({ "message": m }))
    }

    fn body(&mut self, c: &Citizen, payload: &Payload) -> Vec<u8> {
        let value = match (c.ch, payload) {
            (_, Payload::Bytes(b)) => return b.clone(),
            (Ch::Wa, Payload::Text(t)) => {
                self.wa_message(c, json!({ "type": "text", "text": { "body": t } }))
            }
            (Ch::Wa, Payload::Choice(id)) => self.wa_message(
                c,
                json!({ "type": "interactive", "interactive": {
                    "type": "button_reply", "button_reply": { "id": id, "title": "tap" } } }),
            ),
            (Ch::Wa, Payload::Message(fields)) => self.wa_message(c, fields.clone()),
            (Ch::Wa, Payload::Update(_)) => panic!("no WhatsApp updates"),
            (Ch::Tg, Payload::Text(t)) => self.tg_message(c, json!({ "text": t })),
            (Ch::Tg, Payload::Message(fields)) => self.tg_message(c, fields.clone()),
            (Ch::Tg, Payload::Update(fields)) => self.tg_update(fields.clone()),
            (Ch::Tg, Payload::Choice(data)) => {
                let id = self.fresh_id();
                self.tg_update(
                    json!({ "callback_query": {
                        "id": format!("cb-bad-{id}"),
                        "chat_instance": format!("ci-{}", c.user),
                        "from": { "id": c.user, "is_bot": false, "first_name": "Citizen", "language_code": "en" },
                        "message": {
                            "message_id": 1, "date": chrono::Utc::now().timestamp(), "text": "…",
                            "chat": { "id": c.user, "type": "private", "first_name": "Citizen" },
                        },
                        "data": data,
                    } }),
                )
            }
        };
        serde_json::to_vec(&value).unwrap()
    }

    async fn send(&self, ch: Ch, auth: &Auth, body: Vec<u8>) -> u16 {
        let (url, name) = match ch {
            Ch::Wa => (
                format!("http://{}/webhook/whatsapp", self.addr),
                "x-hub-signature-256",
            ),
            Ch::Tg => (
                format!("http://{}/webhook/telegram", self.addr),
                "x-telegram-bot-api-secret-token",
            ),
        };
        let good = match ch {
            Ch::Wa => webhook::signature::sign(APP_SECRET.as_bytes(), &body),
            Ch::Tg => TG_SECRET.to_owned(),
        };
        let values: Vec<String> = match auth {
            Auth::Good => vec![good],
            Auth::None => vec![],
            Auth::Wrong => vec![match ch {
                Ch::Wa => webhook::signature::sign(b"not-the-app-secret", &body),
                Ch::Tg => "not-the-secret".to_owned(),
            }],
            Auth::Malformed(v) => vec![(*v).to_owned()],
            Auth::OtherBody => vec![match ch {
                Ch::Wa => webhook::signature::sign(APP_SECRET.as_bytes(), b"{}"),
                Ch::Tg => TG_SECRET.to_owned(),
            }],
            Auth::Twice(second) => vec![good.clone(), second.map_or(good, str::to_owned)],
        };
        let mut req = self
            .http
            .post(url)
            .header("content-type", "application/json")
            .body(body);
        for v in values {
            req = req.header(name, v);
        }
        match req.send().await {
            Ok(resp) => resp.status().as_u16(),
            // A server may answer 413 and close before the whole body is written; reqwest then
            // reports the write error. Only for over-limit bodies.
            Err(e) => panic!("request failed: {e}"),
        }
    }

    /// Brings the citizen to `setup`.
    async fn prepare(&mut self, c: &Citizen, setup: Setup) {
        let steps: &[&str] = match setup {
            Setup::New => &[],
            Setup::Description => &["hello", "@lang:en", "@menu:complaint", "@cat:theft"],
            Setup::Status => &["hello", "@lang:en", "@menu:status"],
        };
        for step in steps {
            let payload = match step.strip_prefix('@') {
                Some(id) => Payload::Choice(id.to_owned()),
                None => Payload::Text((*step).to_owned()),
            };
            let body = self.body(c, &payload);
            assert_eq!(self.send(c.ch, &Auth::Good, body).await, 200, "{step}");
            self.settle().await;
        }
        let expected = match setup {
            Setup::New => return,
            Setup::Description => WHAT_HAPPENED,
            Setup::Status => "reference",
        };
        let sent = self.sent(c);
        assert!(
            sent.last().is_some_and(|t| t.contains(expected)),
            "setup {setup:?} did not reach {expected:?}: {sent:#?}"
        );
    }
}

struct Citizen {
    ch: Ch,
    user: i64,
}

impl Citizen {
    fn wa_id(&self) -> String {
        format!("9198{:08}", self.user)
    }
}

/// Bodies that must be built for the row's own citizen.
fn special_body(server: &mut Server, row: &Row, c: &Citizen) -> Option<Vec<u8>> {
    match row.name {
        "wa: invalid UTF-8 inside the text" | "tg: invalid UTF-8 inside the text" => {
            let marker = "INVALID-UTF8-HERE";
            let body = server.body(c, &Payload::Text(marker.into()));
            let s = String::from_utf8(body).unwrap();
            let (a, b) = s.split_once(marker).unwrap();
            let mut bytes = a.as_bytes().to_vec();
            bytes.extend(b"C-7K3Q-\xff\xfe-R");
            bytes.extend(b.as_bytes());
            Some(bytes)
        }
        "wa: a lone surrogate escape (\\ud800) in a reference" => {
            let marker = "SURROGATE-HERE";
            let body = server.body(c, &Payload::Text(marker.into()));
            let s = String::from_utf8(body).unwrap();
            Some(s.replace(marker, "C-7K3Q-\\ud800-R").into_bytes())
        }
        "wa: a status for a message Seva never sent" => {
            let n = testing::notification(
                &[],
                vec![],
                vec![testing::status(
                    "wamid.never-sent",
                    "delivered",
                    &c.wa_id(),
                    Some("999999"),
                    None,
                )],
            );
            Some(serde_json::to_vec(&n).unwrap())
        }
        _ => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_a_clear_answer_and_changes_nothing_else() {
    for db in common::TestDb::all().await {
        eprintln!("-- on {}", db.kind.name());
        matrix(Server::start(db).await).await;
    }
}

async fn matrix(mut server: Server) {
    let mut failures = Vec::new();
    for (i, row) in rows().iter().enumerate() {
        let c = Citizen {
            ch: row.ch,
            user: 80_000 + i as i64,
        };
        server.prepare(&c, row.setup).await;
        let state_before = server.state(&c).await;
        let sent_before = server.sent(&c).len();
        let before = server.snapshot().await;

        let statuses: Vec<u16> = match &row.probe {
            Probe::Handshake(query) => {
                let url = format!("http://{}/webhook/whatsapp?{query}", server.addr);
                vec![server.http.get(url).send().await.unwrap().status().as_u16()]
            }
            Probe::Replay(t) => {
                let body = server.body(&c, &Payload::Text(t.clone()));
                let first = server.send(c.ch, &Auth::Good, body.clone()).await;
                server.settle().await;
                let second = server.send(c.ch, &Auth::Good, body).await;
                vec![first, second]
            }
            Probe::Post(auth, payload) => {
                let body = match special_body(&mut server, row, &c) {
                    Some(b) => b,
                    None => server.body(&c, payload),
                };
                vec![server.send(c.ch, auth, body).await]
            }
        };

        let outcome = check(
            &server,
            row,
            &c,
            &statuses,
            &before,
            state_before,
            sent_before,
        )
        .await;
        if let Err(why) = outcome {
            failures.push(format!("{}: {why}", row.name));
        }
    }

    // No message failed (the runtime records a caught panic or error on its inbox row), no
    // report was filed by any row, and the server still answers.
    let failed: Vec<(String, String)> =
        sqlx::query_as("select provider_id, error from inbox where error is not null")
            .fetch_all(&server.pool)
            .await
            .unwrap();
    assert!(failed.is_empty(), "messages failed: {failed:?}");
    assert_eq!(server.count("select count(*) from reports").await, 0);
    let health = server
        .http
        .get(format!("http://{}/healthz", server.addr))
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(health, 200);
    server.shutdown().await;
    assert!(
        failures.is_empty(),
        "{} of {} rows failed:\n{}",
        failures.len(),
        rows().len(),
        failures.join("\n")
    );
}

async fn check(
    server: &Server,
    row: &Row,
    c: &Citizen,
    statuses: &[u16],
    before: &[(&'static str, i64)],
    state_before: Option<Value>,
    sent_before: usize,
) -> Result<(), String> {
    let expected_status = match row.expect {
        Expect::Refused(s) => s,
        _ => 200,
    };
    if statuses.iter().any(|&s| s != expected_status) {
        return Err(format!("status {statuses:?}, expected {expected_status}"));
    }
    match row.expect {
        Expect::Refused(_) | Expect::Ignored => {
            tokio::time::sleep(QUIET).await;
            server.settle().await;
            let after = server.snapshot().await;
            if after != before {
                return Err(format!("tables changed: {before:?} → {after:?}"));
            }
            let sent = server.sent(c);
            if sent.len() != sent_before {
                return Err(format!("the citizen was sent {:?}", &sent[sent_before..]));
            }
        }
        Expect::Reprompt(needle) | Expect::Answer(needle) => {
            server.settle().await;
            let after = server.snapshot().await;
            for ((table, b), (_, a)) in before.iter().zip(&after) {
                let allowed: &[i64] = match *table {
                    "inbox" => &[1],
                    "outbox" => &[1, 2, 3],
                    "citizens" | "conversations" if row.setup == Setup::New => &[1],
                    "citizens" | "conversations" => &[0],
                    _ => &[0],
                };
                if !allowed.contains(&(a - b)) {
                    return Err(format!(
                        "{table}: {b} → {a}; before {before:?}, after {after:?}"
                    ));
                }
            }
            let sent = server.sent(c);
            let new = sent.get(sent_before..).unwrap_or_default();
            let hits = new.iter().filter(|t| t.contains(needle)).count();
            if hits != 1 {
                return Err(format!(
                    "expected one reply containing {needle:?}, got {new:#?}"
                ));
            }
            let state = server.state(c).await;
            if matches!(row.expect, Expect::Reprompt(_)) && state != state_before {
                return Err(format!(
                    "a re-prompt moved the conversation: {state_before:?} → {state:?}"
                ));
            }
            // Nothing a citizen sends can blow up the stored conversation.
            let size = state.as_ref().map_or(0, |s| s.to_string().len());
            if size > 2048 {
                return Err(format!("stored conversation of {size} bytes"));
            }
            if let Some(kept) = row.kept {
                let json = state.map(|s| s.to_string()).unwrap_or_default();
                if !json.contains(kept) {
                    return Err(format!("{kept:?} not kept verbatim in {json}"));
                }
            }
        }
    }
    Ok(())
}
