//! Privacy (spec §6, "Private"): what Seva writes down about citizens and secrets.
//!
//! * The log of a whole journey on both channels — `seva serve` as a child process, as an
//!   operator runs it, with `RUST_LOG=info` in both log formats, on SQLite and on PostgreSQL
//!   when one is available — holds no phone number (in any
//!   of the forms used), no complaint text or name, no IMEI, no token and no secret. The
//!   journey files a complaint on WhatsApp (with a photo) and a lost phone on Telegram, an
//!   officer reads and updates the report (with a token, and once with a wrong one), the
//!   citizen gets the status push, and both citizens delete their data.
//! * Secrets print as `***` in `Debug`.
//! * Once a report is filed its personal fields are gone from the stored conversation.
//! * A draft left for 24 hours is dropped from the stored conversation when the citizen returns
//!   (the periodic purge for citizens who never return is in tests/retention.rs).
//! * "Delete my data" also removes the WhatsApp media rows and downloaded files.
//! * An anonymous tip shows officers a pseudonym, never the number, and its updates still
//!   reach the citizen.

mod common;

use std::net::SocketAddr;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bot::testing::FakeBotApi;
use serde_json::{Value, json};
use sqlx::AnyPool;
use tokio::io::AsyncBufReadExt;
use webhook::testing::{self, FakeGraph};

const APP_SECRET: &str = "privacy-app-secret-5f1c";
const VERIFY_TOKEN: &str = "privacy-verify-token-77aa";
const ACCESS_TOKEN: &str = "EAAGprivacyAccessToken9b2e";
const TG_TOKEN: &str = "5151:privacy-bot-secret-c0ffee";
const EVENTS_SECRET: &str = "privacy-events-secret-beef";
const PSEUDONYM_KEY: &str = "privacy-pseudonym-key-0b5e55ed";

/// Asha on WhatsApp: her number is her WhatsApp id.
const ASHA: &str = "919876543210";
/// The Telegram citizen.
const SUNITA: i64 = 424_242;

const WA_NAME: &str = "Asha Verma";
const WA_DESCRIPTION: &str = "Someone stole my red Hero bicycle outside the fruit market";
const WA_TYPED_PHONE: &str = "98123 45670";
const TG_NAME: &str = "Sunita Devi";
const TG_DESCRIPTION: &str = "Black Redmi Note 12 with a blue back cover";
const TG_IMEI: &str = "4901 5420 3237 518";
const TG_CONTACT: &str = "+919812300011";
const OFFICER_NOTE: &str = "Visited the market";

/// Everything that must never appear in a log line.
fn forbidden(officer_token: &str) -> Vec<(&'static str, String)> {
    let mut v: Vec<(&'static str, String)> = vec![
        ("WhatsApp number", ASHA.to_owned()),
        ("WhatsApp number, national", "9876543210".to_owned()),
        ("WhatsApp number, displayed", "98765 43210".to_owned()),
        ("typed mobile", WA_TYPED_PHONE.to_owned()),
        ("typed mobile, digits", WA_TYPED_PHONE.replace(' ', "")),
        ("shared contact", TG_CONTACT.to_owned()),
        ("shared contact, national", TG_CONTACT[3..].to_owned()),
        ("complaint text", WA_DESCRIPTION.to_owned()),
        ("complaint text, a part", "red Hero bicycle".to_owned()),
        ("item description", TG_DESCRIPTION.to_owned()),
        ("item description, a part", "Redmi Note".to_owned()),
        ("IMEI", TG_IMEI.replace(' ', "")),
        ("IMEI as typed", TG_IMEI.to_owned()),
        ("WhatsApp profile and typed name", WA_NAME.to_owned()),
        ("typed name", TG_NAME.to_owned()),
        ("app secret", APP_SECRET.to_owned()),
        ("verify token", VERIFY_TOKEN.to_owned()),
        ("access token", ACCESS_TOKEN.to_owned()),
        ("bot token", TG_TOKEN.to_owned()),
        (
            "bot token secret part",
            TG_TOKEN.split(':').nth(1).unwrap().to_owned(),
        ),
        ("events secret", EVENTS_SECRET.to_owned()),
        ("pseudonym key", PSEUDONYM_KEY.to_owned()),
        ("officer token", officer_token.to_owned()),
    ];
    if officer_token.len() > 16 {
        v.push(("officer token, a part", officer_token[4..20].to_owned()));
    }
    v
}

const WAIT: Duration = Duration::from_secs(30);

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

/// A `seva` child process whose stdout and stderr are collected.
struct Child {
    child: tokio::process::Child,
    log: Arc<Mutex<String>>,
}

impl Child {
    fn spawn(args: &[&str], env: &[(String, String)]) -> Child {
        let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_seva"));
        cmd.args(args)
            .env_clear()
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = cmd.spawn().unwrap();
        let log = Arc::new(Mutex::new(String::new()));
        let stdout = child.stdout.take().unwrap();
        let stderr = child.stderr.take().unwrap();
        for reader in [
            Box::new(stdout) as Box<dyn tokio::io::AsyncRead + Unpin + Send>,
            Box::new(stderr),
        ] {
            let log = log.clone();
            tokio::spawn(async move {
                let mut lines = tokio::io::BufReader::new(reader).split(b'\n');
                while let Ok(Some(line)) = lines.next_segment().await {
                    let mut l = log.lock().unwrap();
                    l.push_str(&String::from_utf8_lossy(&line));
                    l.push('\n');
                }
            });
        }
        Child { child, log }
    }

    fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// The address from the "seva is listening" line.
    async fn address(&self) -> SocketAddr {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let log = self.log();
            if let Some(line) = log.lines().find(|l| l.contains("seva is listening")) {
                let at = line.find("127.0.0.1:").expect("a loopback address");
                let addr: String = line[at..]
                    .chars()
                    .take_while(|c| c.is_ascii_digit() || *c == '.' || *c == ':')
                    .collect();
                return addr.parse().unwrap();
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "seva serve did not start:\n{log}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// SIGTERM, then waits for a clean exit.
    async fn stop(mut self) -> String {
        if let Some(pid) = self.child.id() {
            let _ = std::process::Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status();
        }
        let status = tokio::time::timeout(WAIT, self.child.wait())
            .await
            .expect("seva stops on SIGTERM")
            .unwrap();
        // Let the readers drain the pipes.
        tokio::time::sleep(Duration::from_millis(200)).await;
        let log = self.log();
        assert!(status.success(), "seva serve exited with {status}:\n{log}");
        log
    }
}

struct Journey {
    db: common::TestDb,
    graph: FakeGraph,
    tg: FakeBotApi,
    http: reqwest::Client,
    wa_seen: usize,
    next_wamid: u32,
}

impl Journey {
    async fn new(db: common::TestDb) -> Journey {
        let graph = FakeGraph::start().await;
        graph.require_token(ACCESS_TOKEN);
        let tg = FakeBotApi::start(TG_TOKEN).await;
        Journey {
            db,
            graph,
            tg,
            http: client(),
            wa_seen: 0,
            next_wamid: 0,
        }
    }

    fn env(&self, format: &str) -> Vec<(String, String)> {
        let v = |k: &str, v: String| (k.to_owned(), v);
        vec![
            v("RUST_LOG", "info".into()),
            v("SEVA_LOG_FORMAT", format.into()),
            v("SEVA_LISTEN", "127.0.0.1:0".into()),
            v("SEVA_DATABASE_URL", self.db.url.clone()),
            v(
                "SEVA_STATIONS_CSV",
                format!("{}/config/stations.example.csv", env!("CARGO_MANIFEST_DIR")),
            ),
            v(
                "SEVA_MEDIA_DIR",
                self.db.dir.path().join("media").display().to_string(),
            ),
            v("SEVA_SHUTDOWN_GRACE", "3".into()),
            v("WHATSAPP_APP_SECRET", APP_SECRET.into()),
            v("WHATSAPP_VERIFY_TOKEN", VERIFY_TOKEN.into()),
            v("WHATSAPP_ACCESS_TOKEN", ACCESS_TOKEN.into()),
            v("WHATSAPP_PHONE_NUMBER_ID", testing::PHONE_NUMBER_ID.into()),
            v("WHATSAPP_API_URL", self.graph.url()),
            v("TELEGRAM_BOT_TOKEN", TG_TOKEN.into()),
            v("TELEGRAM_API_URL", self.tg.url()),
            v("SEVA_TELEGRAM_CHAT_MPS", "50".into()),
            // Nothing listens there: the back-office events fail and are retried, so their
            // error lines are in the log too.
            v("SEVA_EVENTS_URL", "http://127.0.0.1:9/seva-events".into()),
            v("SEVA_EVENTS_SECRET", EVENTS_SECRET.into()),
            v("SEVA_ANONYMOUS_CATEGORIES", "drugs_liquor_gambling".into()),
            v("SEVA_PSEUDONYM_KEY", PSEUDONYM_KEY.into()),
        ]
    }

    // ---- WhatsApp ----

    fn wa_texts(&self) -> Vec<String> {
        self.graph
            .messages()
            .iter()
            .map(testing::message_text)
            .collect()
    }

    /// Posts one message from Asha and waits for a reply containing `expect`.
    async fn wa(&mut self, addr: SocketAddr, fields: Value, expect: &str) -> String {
        self.next_wamid += 1;
        let mut m = json!({
            "from": ASHA,
            "id": format!("wamid.privacy-{}", self.next_wamid),
            "timestamp": chrono::Utc::now().timestamp().to_string(),
        });
        for (k, v) in fields.as_object().unwrap() {
            m[k] = v.clone();
        }
        let n = testing::notification(&[(ASHA, WA_NAME)], vec![m], vec![]);
        let (body, sig) = testing::signed(APP_SECRET, &n);
        let status = self
            .http
            .post(format!("http://{addr}/webhook/whatsapp"))
            .header("content-type", "application/json")
            .header("x-hub-signature-256", sig)
            .body(body)
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(status, 200);
        self.wa_wait(expect).await
    }

    async fn wa_wait(&mut self, expect: &str) -> String {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let texts = self.wa_texts();
            let new = texts.get(self.wa_seen..).unwrap_or_default();
            if new.iter().any(|t| t.contains(expect)) {
                let joined = new.join("\n---\n");
                self.wa_seen = texts.len();
                return joined;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "WhatsApp: never got {expect:?}; got {new:#?}"
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    async fn wa_text(&mut self, addr: SocketAddr, text: &str, expect: &str) -> String {
        self.wa(
            addr,
            json!({ "type": "text", "text": { "body": text } }),
            expect,
        )
        .await
    }

    async fn wa_tap(&mut self, addr: SocketAddr, id: &str, expect: &str) -> String {
        self.wa(
            addr,
            json!({ "type": "interactive", "interactive": {
                "type": "list_reply", "list_reply": { "id": id, "title": "t" } } }),
            expect,
        )
        .await
    }

    // ---- Telegram ----

    async fn tg_wait(&self, from: usize, expect: &str) -> String {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let texts = self.tg.sent_texts(SUNITA);
            let new = texts.get(from..).unwrap_or_default();
            if new.iter().any(|t| t.contains(expect)) {
                return new.join("\n---\n");
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "Telegram: never got {expect:?}; got {new:#?}"
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    async fn tg_say(&self, text: &str, expect: &str) -> String {
        let from = self.tg.sent_texts(SUNITA).len();
        self.tg.push_text(SUNITA, text);
        self.tg_wait(from, expect).await
    }

    async fn tg_tap(&self, data: &str, expect: &str) -> String {
        let message_id = self
            .tg
            .sent_messages(SUNITA)
            .iter()
            .rev()
            .find(|m| {
                m["reply_markup"]
                    .to_string()
                    .contains(&format!("\"{data}\""))
            })
            .and_then(|m| m["message_id"].as_i64())
            .unwrap_or_else(|| panic!("no message shows a {data:?} button"));
        let from = self.tg.sent_texts(SUNITA).len();
        self.tg.push_callback(SUNITA, message_id, data);
        self.tg_wait(from, expect).await
    }

    async fn pool(&self) -> AnyPool {
        self.db.pool().await
    }
}

/// The reference after `marker` in `text`.
fn reference_after(text: &str, marker: &str) -> String {
    let at = text
        .find(marker)
        .unwrap_or_else(|| panic!("{marker:?} in {text}"))
        + marker.len();
    let r: String = text[at..].chars().take(13).collect();
    assert!(flows::reference::Reference::parse(&r).is_ok(), "{r:?}");
    r
}

/// A report's name, phone, description and identifier.
type PersonalFields = (
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
);

/// The stored conversation of a citizen (`None` when there is none).
async fn conversation(pool: &AnyPool, channel: &str, external_id: &str) -> Option<String> {
    sqlx::query_scalar(
        "select state from conversations join citizens on citizens.id = conversations.citizen_id \
         where citizens.channel = $1 and citizens.external_id = $2",
    )
    .bind(channel)
    .bind(external_id)
    .fetch_optional(pool)
    .await
    .unwrap()
}

/// The databases the journey runs on: SQLite, and PostgreSQL when one is available (a
/// database of its own, as `seva` takes a plain URL).
async fn databases() -> Vec<common::TestDb> {
    let mut all = vec![common::TestDb::sqlite()];
    all.extend(common::TestDb::postgres_database().await);
    all
}

/// `seva ARGS` as an operator runs it; returns (stdout, stderr) after checking it succeeded.
async fn cli(env: &[(String, String)], args: &[&str]) -> (String, String) {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_seva"))
        .args(args)
        .env_clear()
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .output()
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "seva {args:?}: {stderr}");
    (String::from_utf8(out.stdout).unwrap(), stderr)
}

/// An officer token for the district, made with the CLI as an operator would (printed on
/// stdout only); returns (token, the CLI's log).
async fn officer_token(env: &[(String, String)]) -> (String, String) {
    let add = [
        "officer",
        "add",
        "--name",
        "Inspector Rao",
        "--scope",
        "district:patna",
    ];
    let (out, cli_log) = cli(env, &add).await;
    let officer_token = out.trim().to_owned();
    assert!(officer_token.len() >= 20, "{officer_token:?}");
    (officer_token, cli_log)
}

/// The whole journey against one `seva serve`, in one log format; returns the log.
async fn journey(db: common::TestDb, format: &str) -> (String, String) {
    let mut j = Journey::new(db).await;
    let env = j.env(format);
    let (officer_token, cli_log) = officer_token(&env).await;

    let serve = Child::spawn(&["serve"], &env);
    let addr = serve.address().await;
    let pool = j.pool().await;

    // ---- WhatsApp: a theft complaint with a typed mobile number and a photo ----
    j.wa_text(addr, "Hello", "Choose your language").await;
    j.wa_tap(addr, "lang:en", "What would you like to do?")
        .await;
    j.wa_tap(addr, "menu:complaint", "What is your complaint about?")
        .await;
    j.wa_tap(addr, "cat:theft", "What happened?").await;
    j.wa_text(addr, WA_DESCRIPTION, "When did it happen?").await;
    j.wa_tap(addr, "when:today", "Where did it happen?").await;
    j.wa(
        addr,
        json!({ "type": "location", "location": { "latitude": 25.6117, "longitude": 85.1379 } }),
        "nearest police station",
    )
    .await;
    j.wa_tap(addr, "st:patna-kotwali", "Your full name?").await;
    j.wa_text(addr, WA_NAME, "Shall the police contact you")
        .await;
    j.wa_tap(addr, "phone:other", "Your mobile number?").await;
    j.wa_text(addr, WA_TYPED_PHONE, "You can send photos").await;
    j.graph.add_media(
        "5566778899",
        "image/jpeg",
        vec![0xFF, 0xD8, 0xFF, 0xE0, 1, 2, 3],
    );
    j.wa(
        addr,
        json!({ "type": "image", "image": { "id": "5566778899", "mime_type": "image/jpeg",
            "caption": "my bicycle" } }),
        "Attached (1)",
    )
    .await;
    j.wa_tap(addr, "done", "Do you agree?").await;
    j.wa_tap(addr, "consent:yes", "Please check your complaint")
        .await;
    let filed = j.wa_tap(addr, "review:confirm", "Reference number").await;
    let wa_reference = reference_after(&filed, "Reference number: ");

    // Filed: the stored conversation keeps none of the report's personal fields.
    let state = conversation(&pool, "whatsapp", ASHA).await.unwrap();
    for (what, value) in [
        ("name", WA_NAME),
        ("description", WA_DESCRIPTION),
        ("mobile", "9812345670"),
    ] {
        assert!(
            !state.contains(value),
            "the {what} stays in the conversation after filing: {state}"
        );
    }

    // ---- Telegram: a lost phone with its IMEI and the citizen's own contact card ----
    j.tg_say("/start", "Choose your language").await;
    j.tg_tap("lang:en", "What would you like to do?").await;
    j.tg_say("mera phone kho gaya", "What did you lose?").await;
    j.tg_tap("item:mobile", "IMEI").await;
    j.tg_say(TG_IMEI, "Describe the item").await;
    j.tg_say(TG_DESCRIPTION, "When did you lose it?").await;
    j.tg_tap("when:yesterday", "Where did you lose it?").await;
    let from = j.tg.sent_texts(SUNITA).len();
    j.tg.push_location(SUNITA, 25.6196, 85.1452);
    j.tg_wait(from, "nearest police station").await;
    j.tg_tap("st:patna-gandhi-maidan", "Your full name?").await;
    j.tg_say(TG_NAME, "Your mobile number?").await;
    let from = j.tg.sent_texts(SUNITA).len();
    j.tg.push_contact(SUNITA, TG_CONTACT, Some(SUNITA));
    j.tg_wait(from, "Please check your").await;
    let filed = j.tg_tap("review:confirm", "Reference number").await;
    let tg_reference = reference_after(&filed, "Reference number: ");
    let state = conversation(&pool, "telegram", &SUNITA.to_string())
        .await
        .unwrap();
    for (what, value) in [
        ("name", TG_NAME),
        ("description", TG_DESCRIPTION),
        ("IMEI", "490154203237518"),
        ("mobile", "9812300011"),
    ] {
        assert!(
            !state.contains(value),
            "the {what} stays in the conversation after filing: {state}"
        );
    }

    // ---- The officer API: a wrong token, a read, a status change that is pushed ----
    let api = |path: &str| format!("http://{addr}/api/v1{path}");
    let status = j
        .http
        .get(api(&format!("/reports/{wa_reference}")))
        .bearer_auth(format!("{officer_token}x"))
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 401);
    let report: Value = j
        .http
        .get(api(&format!("/reports/{wa_reference}")))
        .bearer_auth(&officer_token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        report["report"]["reference"],
        wa_reference.as_str(),
        "{report:#}"
    );
    let status = j
        .http
        .post(api(&format!("/reports/{wa_reference}/status")))
        .bearer_auth(&officer_token)
        .json(&json!({ "status": "acknowledged", "note": OFFICER_NOTE }))
        .send()
        .await
        .unwrap()
        .status();
    assert!(status.is_success(), "{status}");
    j.wa_wait(OFFICER_NOTE).await;
    let status = j
        .http
        .get(api(&format!("/reports/{tg_reference}")))
        .bearer_auth(&officer_token)
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 200);

    // ---- Both citizens delete their data ----
    // Asha's photo is downloaded by now; deleting her data removes it from the disk too.
    let media = j.db.dir.path().join("media");
    let deadline = tokio::time::Instant::now() + WAIT;
    while std::fs::read_dir(&media).map_or(0, |d| d.count()) == 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the photo was never downloaded"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    j.wa_text(addr, "delete my data", "Delete your personal data?")
        .await;
    j.wa_tap(addr, "delete:yes", "Your personal data has been deleted")
        .await;
    let media_rows: i64 = sqlx::query_scalar("select count(*) from whatsapp_media")
        .fetch_one(&pool)
        .await
        .unwrap();
    let files: Vec<_> = std::fs::read_dir(&media).unwrap().collect();
    assert_eq!(
        (media_rows, files.len()),
        (0, 0),
        "WhatsApp media kept after 'delete my data': {files:?}"
    );
    j.tg_say("delete my data", "Delete your personal data?")
        .await;
    j.tg_tap("delete:yes", "Your personal data has been deleted")
        .await;
    let kept: Vec<PersonalFields> =
        sqlx::query_as("select name, phone, description, identifier from reports")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(kept.len(), 2);
    assert!(
        kept.iter()
            .all(|r| r.0.is_none() && r.1.is_none() && r.2.is_none() && r.3.is_none()),
        "personal fields kept after 'delete my data': {kept:?}"
    );

    pool.close().await;
    let log = serve.stop().await;
    (format!("{cli_log}{log}"), officer_token)
}

/// An anonymous tip over WhatsApp, where the citizen's address is their phone number: the
/// officer API, `seva report show`, station alerts and back-office events carry a pseudonym
/// and never the number or a name, and the officer's status change still reaches the citizen.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_anonymous_tip_shows_officers_a_pseudonym_and_its_updates_still_reach_the_citizen() {
    const TIP: &str = "Illegal liquor is sold every evening behind the bus stand";
    for db in databases().await {
        eprintln!("-- on {}", db.kind.name());
        let mut j = Journey::new(db).await;
        let env = j.env("text");
        let (token, _) = officer_token(&env).await;
        let serve = Child::spawn(&["serve"], &env);
        let addr = serve.address().await;

        j.wa_text(addr, "Hello", "Choose your language").await;
        j.wa_tap(addr, "lang:en", "What would you like to do?")
            .await;
        j.wa_tap(addr, "menu:complaint", "What is your complaint about?")
            .await;
        j.wa_tap(addr, "cat:drugs_liquor_gambling", "File it anonymously?")
            .await;
        j.wa_tap(addr, "anonymous:yes", "What happened?").await;
        j.wa_text(addr, TIP, "When did it happen?").await;
        j.wa_tap(addr, "when:today", "Where did it happen?").await;
        j.wa_text(addr, "Behind the bus stand", "Which police station")
            .await;
        let asked = j
            .wa_tap(addr, "st:patna-kotwali", "You can send photos")
            .await;
        assert!(!asked.contains("Your full name?"), "{asked}");
        j.wa_tap(addr, "done", "Do you agree?").await;
        let review = j
            .wa_tap(addr, "consent:yes", "Please check your complaint")
            .await;
        assert!(!review.contains("98765"), "{review}");
        let filed = j
            .wa_tap(addr, "review:confirm", "anonymous tip is registered")
            .await;
        let reference = reference_after(&filed, "Reference number: ");

        let api = |path: &str| format!("http://{addr}/api/v1{path}");
        let detail: Value = j
            .http
            .get(api(&format!("/reports/{reference}")))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let report = &detail["report"];
        assert_eq!(report["anonymous"], true, "{detail:#}");
        assert_eq!(report["description"], TIP);
        assert!(
            report["phone"].is_null() && report["name"].is_null(),
            "{detail:#}"
        );
        let pseudonym = report["citizen_pseudonym"].as_str().unwrap().to_owned();
        assert!(pseudonym.starts_with("anon-"), "{pseudonym}");
        let listing = j
            .http
            .get(api("/reports"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let (shown, _) = cli(&env, &["report", "show", &reference]).await;
        assert!(shown.contains(&pseudonym), "{shown}");
        let pool = j.pool().await;
        let notices: Vec<String> =
            sqlx::query_scalar("select content from outbox where kind in ('event', 'alert')")
                .fetch_all(&pool)
                .await
                .unwrap();
        let stored: (Option<String>, Option<String>) =
            sqlx::query_as("select name, phone from reports where reference = $1")
                .bind(&reference)
                .fetch_one(&pool)
                .await
                .unwrap();
        assert_eq!(stored, (None, None));
        for (what, seen) in [
            ("the officer API", detail.to_string()),
            ("the listing", listing),
            ("seva report show", shown),
            ("events and alerts", notices.join("\n")),
        ] {
            for number in [ASHA, "9876543210", "98765 43210"] {
                assert!(!seen.contains(number), "{what} shows {number}: {seen}");
            }
            assert!(!seen.contains(WA_NAME), "{what} shows the name: {seen}");
        }

        let status = j
            .http
            .post(api(&format!("/reports/{reference}/status")))
            .bearer_auth(&token)
            .json(&json!({ "status": "acknowledged", "note": OFFICER_NOTE }))
            .send()
            .await
            .unwrap()
            .status();
        assert!(status.is_success(), "{status}");
        j.wa_wait(OFFICER_NOTE).await;
        pool.close().await;
        serve.stop().await;
    }
}

fn assert_clean(format: &str, log: &str, officer_token: &str) {
    // `SEVA_PRIVACY_LOG_DIR=/tmp cargo test --test privacy` keeps the logs to read.
    if let Ok(dir) = std::env::var("SEVA_PRIVACY_LOG_DIR") {
        std::fs::write(format!("{dir}/seva-privacy-{format}.log"), log).unwrap();
    }
    // The capture works: lines from each part of the journey are there.
    for expected in [
        "seva is listening",
        "report filed",
        "turns processed",
        "citizen data deleted",
    ] {
        assert!(
            log.contains(expected),
            "{format} log lacks {expected:?}:\n{log}"
        );
    }
    let mut leaks = Vec::new();
    for (what, value) in forbidden(officer_token) {
        for line in log.lines().filter(|l| l.contains(&value)) {
            leaks.push(format!("{what} ({value:?}) in: {line}"));
        }
    }
    assert!(
        leaks.is_empty(),
        "{format} log leaks {} line(s):\n{}",
        leaks.len(),
        leaks.join("\n")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_journey_on_both_channels_logs_no_personal_data_and_no_secret_in_text_format() {
    for db in databases().await {
        eprintln!("-- on {}", db.kind.name());
        let (log, token) = journey(db, "text").await;
        assert_clean("text", &log, &token);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_journey_on_both_channels_logs_no_personal_data_and_no_secret_in_json_format() {
    for db in databases().await {
        eprintln!("-- on {}", db.kind.name());
        let (log, token) = journey(db, "json").await;
        assert!(
            log.lines()
                .filter(|l| l.contains("report filed"))
                .all(|l| l.trim_start().starts_with('{')),
            "json lines expected"
        );
        assert_clean("json", &log, &token);
    }
}

/// The check itself finds what it looks for (a clean log proves nothing otherwise).
#[test]
fn the_leak_check_finds_a_leak() {
    let base = "seva is listening\nreport filed\nturns processed\ncitizen data deleted\n";
    assert_clean("text", base, "so-tkn-0123456789abcdef0123");
    for leak in [
        "citizen=1 from=919876543210",
        "phone=\"98123 45670\"",
        "text=\"Someone stole my red Hero bicycle\"",
        "token so-tkn-0123456789abcdef0123",
        "url=https://api.telegram.org/bot5151:privacy-bot-secret-c0ffee/getUpdates",
    ] {
        let log = format!("{base}{leak}\n");
        let caught =
            std::panic::catch_unwind(|| assert_clean("text", &log, "so-tkn-0123456789abcdef0123"));
        assert!(caught.is_err(), "not caught: {leak}");
    }
}

#[test]
fn secrets_print_as_stars_in_debug() {
    let vars = [
        ("WHATSAPP_APP_SECRET", APP_SECRET),
        ("WHATSAPP_VERIFY_TOKEN", VERIFY_TOKEN),
        ("WHATSAPP_ACCESS_TOKEN", ACCESS_TOKEN),
        ("WHATSAPP_PHONE_NUMBER_ID", "106540352242922"),
        ("TELEGRAM_BOT_TOKEN", TG_TOKEN),
        (
            "TELEGRAM_WEBHOOK_URL",
            "https://seva.example.org/webhook/telegram",
        ),
        ("TELEGRAM_WEBHOOK_SECRET", "privacy_webhook-secret"),
        ("SEVA_EVENTS_URL", "https://backoffice.example.org/seva"),
        ("SEVA_EVENTS_SECRET", EVENTS_SECRET),
    ];
    let config = seva::config::Config::load(&|key| {
        vars.iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| (*v).to_owned())
    })
    .unwrap();
    let shown = format!("{config:?} {config:#?}");
    for secret in [
        APP_SECRET,
        VERIFY_TOKEN,
        ACCESS_TOKEN,
        TG_TOKEN,
        "privacy-bot-secret-c0ffee",
        "privacy_webhook-secret",
        EVENTS_SECRET,
    ] {
        assert!(!shown.contains(secret), "{secret} in {shown}");
    }
    assert!(shown.contains("***"), "{shown}");
    // The adapters' own secret type too.
    let s = webhook::Secret::new(ACCESS_TOKEN);
    assert_eq!(format!("{s:?}"), "***");
    let cfg = webhook::WebhookConfig::new(APP_SECRET.to_owned(), VERIFY_TOKEN.to_owned());
    let shown = format!("{cfg:?}");
    assert!(
        !shown.contains(APP_SECRET) && !shown.contains(VERIFY_TOKEN),
        "{shown}"
    );
}

/// A draft left for more than 24 hours is dropped from the stored conversation when the
/// citizen next writes (the engine's `DRAFT_KEPT_SECS`); the retention job drops it without
/// a next message (tests/retention.rs).
#[tokio::test]
async fn a_draft_abandoned_for_24_hours_is_dropped_when_the_citizen_returns() {
    use flows::message::{Body, Channel, Inbound, SenderHints};
    use std::sync::atomic::{AtomicI64, Ordering};

    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("seva.db").display());
    let store = seva::store::Store::open(&url).await.unwrap();
    let now = Arc::new(AtomicI64::new(1_795_867_200));
    let clock_now = now.clone();
    let stations = seva::stations::load(
        &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config/stations.example.csv"),
    )
    .unwrap();
    let runtime = seva::runtime::Runtime::builder(store.clone())
        .stations(stations)
        .clock(seva::clock::Clock::from_fn(move || {
            clock_now.load(Ordering::SeqCst)
        }))
        .build();
    let mut n = 0;
    let mut say = |text: &str| {
        n += 1;
        Inbound {
            channel: Channel::Terminal,
            sender: "meena".into(),
            provider_id: format!("p{n}"),
            sent_at: 0,
            body: Body::Text { text: text.into() },
            hints: SenderHints::default(),
        }
    };
    for text in ["hello", "2", "1", "1", WA_DESCRIPTION] {
        runtime.handle(&say(text)).await.unwrap();
    }
    sqlx::any::install_default_drivers();
    let pool = AnyPool::connect(&url).await.unwrap();
    let stored = conversation(&pool, "terminal", "meena").await.unwrap();
    assert!(stored.contains(WA_DESCRIPTION), "a draft: {stored}");

    now.fetch_add(flows::state::DRAFT_KEPT_SECS + 60, Ordering::SeqCst);
    runtime.handle(&say("hello")).await.unwrap();
    let stored = conversation(&pool, "terminal", "meena").await.unwrap();
    assert!(
        !stored.contains(WA_DESCRIPTION) && !stored.contains("\"draft\""),
        "the expired draft is gone: {stored}"
    );
    pool.close().await;
    store.close().await;
}

/// A report's citizen, anonymous flag, pseudonym, name and phone.
type TipRow = (String, i64, Option<String>, Option<String>, Option<String>);

/// Anonymous tips through the runtime with the real engine, on each backend: one citizen's
/// tips share a pseudonym, another citizen's differs, none stores a name or number, and the
/// same category is an ordinary complaint where the operator has not opened it.
#[tokio::test]
async fn one_citizens_tips_share_a_pseudonym_and_store_no_name_or_number() {
    use seva::runtime::Runtime;
    for h in common::backends().await {
        let privacy = seva::config::Config::load(&|key| match key {
            "SEVA_ANONYMOUS_CATEGORIES" => Some("drugs_liquor_gambling".to_owned()),
            "SEVA_PSEUDONYM_KEY" => Some(PSEUDONYM_KEY.to_owned()),
            _ => None,
        })
        .unwrap()
        .privacy;
        let open = Runtime::builder(h.store.clone())
            .stations(common::example_stations())
            .clock(h.clock())
            .privacy(&privacy)
            .build();
        let closed = Runtime::builder(h.store.clone())
            .stations(common::example_stations())
            .clock(h.clock())
            .build();
        let mut n = 0;
        let mut say = async |rt: &Runtime, who: &str, texts: &[&str]| {
            for text in texts {
                n += 1;
                rt.handle(&common::text(who, &format!("tip-{n}"), text))
                    .await
                    .unwrap();
            }
        };
        const HELLO: [&str; 2] = ["hello", "2"];
        const TIP: [&str; 10] = [
            "1",
            "8",
            "yes",
            "Gambling den behind the cinema every night",
            "today",
            "Behind the cinema",
            "Kotwali",
            "done",
            "1",
            "1",
        ];
        say(&open, "meena", &HELLO).await;
        say(&open, "meena", &TIP).await;
        say(&open, "meena", &TIP).await;
        say(&open, "ravi", &HELLO).await;
        say(&open, "ravi", &TIP).await;
        // Not opened by the operator: no question; name and number are asked as usual.
        say(&closed, "sita", &HELLO).await;
        say(
            &closed,
            "sita",
            &[
                "1",
                "8",
                "Satta is played openly",
                "today",
                "Behind the cinema",
                "Kotwali",
                "Sita Devi",
                "9812345670",
                "done",
                "1",
                "1",
            ],
        )
        .await;
        let pool = h.db().await;
        let rows: Vec<TipRow> = sqlx::query_as(
            "select c.external_id, r.anonymous, r.pseudonym, r.name, r.phone from reports r \
                 join citizens c on c.id = r.citizen_id order by r.id",
        )
        .fetch_all(&pool)
        .await
        .unwrap();
        assert_eq!(rows.len(), 4, "{rows:?}");
        let (meena1, meena2, ravi) = (&rows[0], &rows[1], &rows[2]);
        assert!(meena1.2.as_deref().is_some_and(|p| p.starts_with("anon-")));
        assert_eq!(meena1.2, meena2.2, "one citizen, one pseudonym");
        assert_ne!(meena1.2, ravi.2);
        for r in &rows[..3] {
            assert_eq!(
                (r.1, r.3.as_deref(), r.4.as_deref()),
                (1, None, None),
                "{r:?}"
            );
        }
        let sita = &rows[3];
        assert_eq!(
            (sita.1, sita.2.as_deref(), sita.3.as_deref()),
            (0, None, Some("Sita Devi")),
            "{sita:?}"
        );
        pool.close().await;
    }
}
