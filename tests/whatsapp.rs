//! The WhatsApp channel end to end: the real server (`seva::run` on 127.0.0.1:0, SQLite in a
//! tempdir) behind signed webhook requests, sending through the in-process fake Graph API of
//! `webhook::testing`, which records every request. Nothing here reaches the internet.

use std::net::SocketAddr;
use std::time::Duration;

use flows::Lang;
use flows::delivery::{OutboxContent, TemplateParams};
use flows::message::Channel;
use flows::reply::{Reply, Text};
use reqwest::StatusCode;
use serde_json::{Value, json};
use seva::config::Config;
use seva::officer::auth::{hash_token, new_token};
use seva::store::{NewOutbox, OutboxKind, Scope, Store};
use sqlx::AnyPool;
use webhook::testing::{self, FakeError, FakeGraph, RecordedRequest};

mod common;

use common::TestDb;
use common::serve::Serving;

const APP_SECRET: &str = "test-app-secret";
const VERIFY_TOKEN: &str = "test-verify-token";
const ACCESS_TOKEN: &str = "EAAG-test-access-token";
const TEMPLATE_HI: &str = "seva_status_update_hi";
const TEMPLATE_EN: &str = "seva_status_update_en";

/// The citizen's WhatsApp number (wa_id) in these tests.
const ASHA: &str = "919876543210";

const WAIT: Duration = Duration::from_secs(15);

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// A client that only ever talks to loopback addresses.
fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

struct Options {
    templates: bool,
}

fn config(dir: &tempfile::TempDir, db_url: &str, graph_url: &str, opts: &Options) -> Config {
    let mut vars: Vec<(&str, String)> = vec![
        ("SEVA_DATABASE_URL", db_url.to_owned()),
        (
            "SEVA_STATIONS_CSV",
            format!("{}/config/stations.example.csv", env!("CARGO_MANIFEST_DIR")),
        ),
        (
            "SEVA_MEDIA_DIR",
            dir.path().join("media").display().to_string(),
        ),
        ("SEVA_SHUTDOWN_GRACE", "5".to_owned()),
        ("WHATSAPP_APP_SECRET", APP_SECRET.to_owned()),
        ("WHATSAPP_VERIFY_TOKEN", VERIFY_TOKEN.to_owned()),
        ("WHATSAPP_ACCESS_TOKEN", ACCESS_TOKEN.to_owned()),
        (
            "WHATSAPP_PHONE_NUMBER_ID",
            testing::PHONE_NUMBER_ID.to_owned(),
        ),
        ("WHATSAPP_API_URL", graph_url.to_owned()),
    ];
    if opts.templates {
        vars.push(("SEVA_WHATSAPP_TEMPLATE_HI", TEMPLATE_HI.to_owned()));
        vars.push(("SEVA_WHATSAPP_TEMPLATE_EN", TEMPLATE_EN.to_owned()));
    }
    Config::load(&move |key| vars.iter().find(|(k, _)| *k == key).map(|(_, v)| v.clone())).unwrap()
}

/// `seva serve` with WhatsApp configured against a fake Graph API.
struct Server {
    db: TestDb,
    db_url: String,
    addr: SocketAddr,
    fake: FakeGraph,
    pool: AnyPool,
    http: reqwest::Client,
    serving: Option<Serving>,
    /// Accepted message sends already returned by [`Server::turn`].
    seen: usize,
    next_wamid: u32,
}

impl Server {
    async fn start(db: TestDb, opts: Options) -> Server {
        let db_url = db.url.clone();
        // Migrate first, so the test's own pool sees the tables from the start.
        Store::open(&db_url).await.unwrap().close().await;
        let fake = FakeGraph::start().await;
        fake.require_token(ACCESS_TOKEN);
        let pool = db.pool().await;
        let mut server = Server {
            db,
            db_url,
            addr: "127.0.0.1:0".parse().unwrap(),
            fake,
            pool,
            http: client(),
            serving: None,
            seen: 0,
            next_wamid: 0,
        };
        server.serve(&opts).await;
        server
    }

    fn config(&self, opts: &Options) -> Config {
        config(&self.db.dir, &self.db_url, &self.fake.url(), opts)
    }

    /// Starts `seva serve` (again) on a fresh port.
    async fn serve(&mut self, opts: &Options) {
        let serving = Serving::start(self.config(opts)).await;
        self.addr = serving.addr;
        self.serving = Some(serving);
    }

    async fn shutdown(&mut self) {
        if let Some(mut serving) = self.serving.take() {
            serving.stop().await;
        }
    }

    fn webhook_url(&self) -> String {
        format!("http://{}/webhook/whatsapp", self.addr)
    }

    /// POSTs a notification body with the given `X-Hub-Signature-256` (if any).
    async fn post_raw(&self, body: Vec<u8>, signature: Option<&str>) -> StatusCode {
        let mut req = self
            .http
            .post(self.webhook_url())
            .header("content-type", "application/json")
            .body(body);
        if let Some(sig) = signature {
            req = req.header("x-hub-signature-256", sig);
        }
        req.send().await.unwrap().status()
    }

    /// POSTs a correctly signed notification.
    async fn post(&self, notification: &Value) -> StatusCode {
        let (body, sig) = testing::signed(APP_SECRET, notification);
        self.post_raw(body, Some(&sig)).await
    }

    fn wamid(&mut self) -> String {
        self.next_wamid += 1;
        format!(
            "wamid.HBgMOTE5ODc2NTQzMjEwFQIAEhggIN{:08}A==",
            self.next_wamid
        )
    }

    /// One message from Asha, signed and posted; waits until it is handled and every reply
    /// is sent; returns the message sends the fake accepted meanwhile.
    async fn turn(&mut self, message: Value) -> Vec<Value> {
        let status = self
            .post(&testing::notification(
                &[(ASHA, "Asha")],
                vec![message],
                vec![],
            ))
            .await;
        assert_eq!(status, StatusCode::OK);
        self.settle().await;
        let all = self.fake.messages();
        let new = all[self.seen..].to_vec();
        self.seen = all.len();
        assert!(!new.is_empty(), "no reply");
        new
    }

    async fn count(&self, sql: &str) -> i64 {
        sqlx::query_scalar(sql).fetch_one(&self.pool).await.unwrap()
    }

    /// Waits until every stored message is processed and every WhatsApp outbox row is sent
    /// (or dead, or waiting for the 24-hour window).
    async fn settle(&self) {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let unprocessed = self
                .count("select count(*) from inbox where processed_at is null")
                .await;
            let undelivered = self
                .count(
                    "select count(*) from outbox where channel = 'whatsapp' and (status = 'sending' \
                     or (status = 'pending' and wa_wait_after_inbox is null))",
                )
                .await;
            if unprocessed == 0 && undelivered == 0 {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "not settled: {unprocessed} unprocessed, {undelivered} undelivered"
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Waits until `cond` holds on the fake's requests.
    /// The message sends the fake received, refused ones too; not the read receipts, which
    /// may come up to a second after their message.
    fn sends(&self) -> Vec<RecordedRequest> {
        self.fake
            .requests()
            .into_iter()
            .filter(RecordedRequest::is_message)
            .collect()
    }

    async fn wait_requests(&self, what: &str, cond: impl Fn(&[RecordedRequest]) -> bool) {
        let deadline = tokio::time::Instant::now() + WAIT;
        while !cond(&self.fake.requests()) {
            assert!(tokio::time::Instant::now() < deadline, "waited for {what}");
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Writes an outbox row as the officer lifecycle does for a status change.
    async fn enqueue_push(&self, lang: Lang, reference: &str) -> i64 {
        let store = Store::connect(&self.db_url).await.unwrap();
        let citizen: i64 = sqlx::query_scalar(
            "select id from citizens where channel = 'whatsapp' and external_id = $1",
        )
        .bind(ASHA)
        .fetch_one(&self.pool)
        .await
        .unwrap();
        let (status, station) = match lang {
            Lang::Hi => ("जांच जारी", "कोतवाली"),
            Lang::En => ("under inquiry", "Kotwali"),
        };
        let content = OutboxContent {
            reply: Reply::text(
                Text::new("push-status")
                    .arg("reference", reference)
                    .arg("status", status)
                    .arg("station", station),
            ),
            template: Some(TemplateParams {
                reference: reference.to_owned(),
                status: status.to_owned(),
                station: station.to_owned(),
                note: "Please visit\nthe station".to_owned(),
            }),
            event: None,
        };
        let id = store
            .enqueue(
                &NewOutbox {
                    citizen_id: Some(citizen),
                    channel: Channel::Whatsapp,
                    recipient: ASHA.to_owned(),
                    kind: OutboxKind::Push,
                    content: serde_json::to_string(&content).unwrap(),
                    lang: Some(lang),
                },
                now(),
            )
            .await
            .unwrap();
        store.close().await;
        id
    }

    async fn outbox(&self, id: i64) -> sqlx::any::AnyRow {
        sqlx::query("select * from outbox where id = $1")
            .bind(id)
            .fetch_one(&self.pool)
            .await
            .unwrap()
    }
}

/// Sets the message's timestamp to now (the webhook builders use a fixed one).
fn fresh(mut message: Value) -> Value {
    message["timestamp"] = json!(now().to_string());
    message
}

fn text(s: &mut Server, body: &str) -> Value {
    let id = s.wamid();
    fresh(testing::text_message(ASHA, &id, body))
}

fn button(s: &mut Server, id: &str) -> Value {
    let wamid = s.wamid();
    fresh(testing::button_reply(ASHA, &wamid, id, "title"))
}

fn row(s: &mut Server, id: &str) -> Value {
    let wamid = s.wamid();
    fresh(testing::list_reply(ASHA, &wamid, id, "title"))
}

fn location(s: &mut Server, lat: f64, lon: f64) -> Value {
    let wamid = s.wamid();
    fresh(testing::location_message(ASHA, &wamid, lat, lon))
}

/// The choice ids of an interactive message (buttons or list rows).
fn choice_ids(m: &Value) -> Vec<String> {
    let buttons = m
        .pointer("/interactive/action/buttons")
        .and_then(Value::as_array)
        .map(|b| {
            b.iter()
                .filter_map(|b| b.pointer("/reply/id")?.as_str().map(str::to_owned))
                .collect::<Vec<_>>()
        });
    let rows = m
        .pointer("/interactive/action/sections")
        .and_then(Value::as_array)
        .map(|sections| {
            sections
                .iter()
                .filter_map(|s| s.get("rows")?.as_array())
                .flatten()
                .filter_map(|r| r.get("id")?.as_str().map(str::to_owned))
                .collect::<Vec<_>>()
        });
    buttons.or(rows).unwrap_or_default()
}

fn interactive_type(m: &Value) -> Option<&str> {
    m.pointer("/interactive/type").and_then(Value::as_str)
}

/// The last message of a reply, which carries its choices.
fn last(msgs: &[Value]) -> &Value {
    msgs.last().unwrap()
}

fn all_text(msgs: &[Value]) -> String {
    msgs.iter()
        .map(testing::message_text)
        .collect::<Vec<_>>()
        .join("\n")
}

/// Asserts reply buttons with exactly these ids, each titled within WhatsApp's 20 characters.
fn assert_buttons(m: &Value, ids: &[&str]) {
    assert_eq!(m["type"], "interactive", "{m:#}");
    assert_eq!(interactive_type(m), Some("button"), "{m:#}");
    assert_eq!(choice_ids(m), ids, "{m:#}");
    for b in m["interactive"]["action"]["buttons"].as_array().unwrap() {
        assert_eq!(b["type"], "reply");
        let title = b["reply"]["title"].as_str().unwrap();
        assert!(!title.is_empty() && title.chars().count() <= 20, "{title}");
    }
    let body = m["interactive"]["body"]["text"].as_str().unwrap();
    assert!(body.contains("\n1. "), "numbered lines too: {body}");
}

/// Asserts a list message whose rows start with these ids.
fn assert_list(m: &Value, first_ids: &[&str], rows: usize) {
    assert_eq!(m["type"], "interactive", "{m:#}");
    assert_eq!(interactive_type(m), Some("list"), "{m:#}");
    let ids = choice_ids(m);
    assert_eq!(ids.len(), rows, "{m:#}");
    assert_eq!(&ids[..first_ids.len()], first_ids, "{m:#}");
    let action = &m["interactive"]["action"];
    assert!(action["button"].as_str().unwrap().chars().count() <= 20);
    for r in action["sections"][0]["rows"].as_array().unwrap() {
        assert!(r["title"].as_str().unwrap().chars().count() <= 24, "{r}");
    }
}

fn assert_text(m: &Value) {
    assert_eq!(m["type"], "text", "{m:#}");
    assert!(!m["text"]["body"].as_str().unwrap().is_empty());
}

/// Every message went to Asha with the Bearer token and an outbox id as opaque data.
fn assert_addressed(fake: &FakeGraph) {
    for r in fake.requests().iter().filter(|r| r.is_message()) {
        let body = r.body.as_ref().unwrap();
        assert_eq!(body["to"], ASHA, "{body:#}");
        assert_eq!(body["messaging_product"], "whatsapp");
        let opaque = body["biz_opaque_callback_data"].as_str().unwrap();
        assert!(opaque.parse::<i64>().is_ok(), "{opaque}");
        assert_eq!(
            r.header("authorization"),
            Some(format!("Bearer {ACCESS_TOKEN}").as_str())
        );
        assert_eq!(
            r.path,
            format!(
                "/{}/{}/messages",
                testing::VERSION,
                testing::PHONE_NUMBER_ID
            )
        );
    }
}

/// The JPEG Asha attaches to her complaint.
fn photo() -> Vec<u8> {
    [&[0xFF, 0xD8, 0xFF, 0xE0][..], &[7u8; 2048][..]].concat()
}

/// Asha files a theft complaint in Hindi, with her location, her WhatsApp number and a photo,
/// checking each prompt's buttons on the way; returns the reference she is given.
async fn hindi_complaint(s: &mut Server) -> String {
    let m = text(s, "नमस्ते");
    let out = s.turn(m).await;
    assert_buttons(last(&out), &["lang:hi", "lang:en"]);
    assert!(all_text(&out).contains("हिन्दी"));

    let m = button(s, "lang:hi");
    let out = s.turn(m).await;
    assert_list(
        last(&out),
        &["menu:complaint", "menu:lost", "menu:found", "menu:status"],
        6,
    );
    assert_eq!(
        last(&out)["interactive"]["action"]["button"],
        "विकल्प चुनें",
        "Hindi list button"
    );

    let m = row(s, "menu:complaint");
    let out = s.turn(m).await;
    assert_list(last(&out), &["cat:theft", "cat:cyber"], 9);

    let m = row(s, "cat:theft");
    let out = s.turn(m).await;
    assert_text(last(&out));

    let m = text(s, "बाज़ार में खड़ी मेरी साइकिल दिन में चोरी हो गई।");
    let out = s.turn(m).await;
    assert_buttons(last(&out), &["when:today", "when:yesterday"]);

    let m = button(s, "when:yesterday");
    let out = s.turn(m).await;
    let ask = last(&out);
    assert_eq!(
        interactive_type(ask),
        Some("location_request_message"),
        "{ask:#}"
    );
    assert_eq!(ask["interactive"]["action"]["name"], "send_location");

    let m = location(s, 25.6117, 85.1379);
    let out = s.turn(m).await;
    let stations = last(&out);
    assert_eq!(interactive_type(stations), Some("list"), "{stations:#}");
    let ids = choice_ids(stations);
    assert!(ids.len() <= 10, "{ids:?}");
    assert!(ids.contains(&"st:patna-kotwali".to_owned()), "{ids:?}");

    let m = row(s, "st:patna-kotwali");
    let out = s.turn(m).await;
    assert_text(last(&out));

    let m = text(s, "रमेश कुमार");
    let out = s.turn(m).await;
    // WhatsApp tells us the sender's number: the citizen confirms it.
    assert_buttons(last(&out), &["phone:use", "phone:other"]);
    assert!(all_text(&out).contains("98765 43210"), "{}", all_text(&out));

    let m = button(s, "phone:use");
    let out = s.turn(m).await;
    assert_buttons(last(&out), &["done"]);

    // A photo: stored, downloaded in the background, attached by its media id.
    s.fake.add_media("1122334455", "image/jpeg", photo());
    let wamid = s.wamid();
    let m = fresh(testing::image_message(
        ASHA,
        &wamid,
        "1122334455",
        Some("साइकिल"),
    ));
    let out = s.turn(m).await;
    assert_buttons(last(&out), &["done"]);

    let m = button(s, "done");
    let out = s.turn(m).await;
    assert_buttons(last(&out), &["consent:yes", "consent:no"]);

    let m = button(s, "consent:yes");
    let out = s.turn(m).await;
    assert_buttons(
        last(&out),
        &["review:confirm", "review:edit", "review:cancel"],
    );

    let m = button(s, "review:confirm");
    let out = s.turn(m).await;
    let said = all_text(&out);
    let reference =
        common::reference_in(&said, 'C').unwrap_or_else(|| panic!("no reference in {said}"));
    assert!(said.contains("कोतवाली"), "{said}");
    reference
}

#[tokio::test]
async fn a_complaint_filed_in_hindi_through_signed_webhooks_gets_its_reference() {
    for db in common::TestDb::all().await {
        let mut s = Server::start(db, Options { templates: false }).await;

        let reference = hindi_complaint(&mut s).await;

        // The report is filed under that reference, with the photo's media id.
        let (kind, station): (String, String) =
            sqlx::query_as("select kind, station_id from reports where reference = $1")
                .bind(&reference)
                .fetch_one(&s.pool)
                .await
                .unwrap();
        assert_eq!(
            (kind.as_str(), station.as_str()),
            ("complaint", "patna-kotwali")
        );
        let file_id: String = sqlx::query_scalar(
            "select a.file_id from attachments a join reports r on r.id = a.report_id where r.reference = $1",
        )
        .bind(&reference)
        .fetch_one(&s.pool)
        .await
        .unwrap();
        assert_eq!(file_id, "1122334455");

        // The media file is on disk under SEVA_MEDIA_DIR, found through the media id.
        let store = Store::connect(&s.db_url).await.unwrap();
        let deadline = tokio::time::Instant::now() + WAIT;
        let media = loop {
            let m = store.whatsapp_media("1122334455").await.unwrap().unwrap();
            if m.status == "done" {
                break m;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "not downloaded: {m:?}"
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        };
        let path = std::path::PathBuf::from(media.path.unwrap());
        assert!(path.starts_with(s.db.dir.path().join("media")), "{path:?}");
        assert_eq!(std::fs::read(&path).unwrap(), photo());
        assert_eq!(media.bytes, Some(photo().len() as i64));

        // Check status with the reference typed loosely (lowercase, spaces): the same report.
        let m = row(&mut s, "menu:status");
        let out = s.turn(m).await;
        assert_text(last(&out));
        let typed = reference.to_lowercase().replace('-', " ");
        let m = text(&mut s, &typed);
        let out = s.turn(m).await;
        let said = all_text(&out);
        assert!(said.contains(&reference), "{said}");
        assert!(said.contains("कोतवाली"), "{said}");

        // Every message was addressed properly; the latest inbound message was marked as read
        // (which marks every earlier one too).
        assert_addressed(&s.fake);
        let latest = format!("wamid.HBgMOTE5ODc2NTQzMjEwFQIAEhggIN{:08}A==", s.next_wamid);
        s.wait_requests("the latest message marked as read", |_| {
            s.fake.read_receipts().contains(&latest)
        })
        .await;
        // The citizen's window is tracked from their messages.
        let last_inbound: i64 = sqlx::query_scalar(
            "select last_inbound_at from citizens where channel = 'whatsapp' and external_id = $1",
        )
        .bind(ASHA)
        .fetch_one(&s.pool)
        .await
        .unwrap();
        assert!(now() - last_inbound < 60);
        s.shutdown().await;
    }
}

/// A bearer token for an officer of Kotwali police station.
async fn kotwali_officer(s: &Server) -> String {
    let token = new_token();
    let store = Store::connect(&s.db_url).await.unwrap();
    let scope = Scope::parse("station:patna-kotwali").unwrap();
    let hash = hash_token(&token);
    store
        .add_officer("si-kotwali", &scope, &hash, now())
        .await
        .unwrap();
    store.close().await;
    token
}

/// `POST /api/v1/reports/{reference}/status` as that officer; the answer must be 200.
async fn change_status(s: &Server, token: &str, reference: &str, change: Value) {
    let resp = s
        .http
        .post(format!(
            "http://{}/api/v1/reports/{reference}/status",
            s.addr
        ))
        .bearer_auth(token)
        .json(&change)
        .send()
        .await
        .unwrap();
    let status = resp.status();
    let body: Value = resp.json().await.unwrap();
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["citizen_notified"], true, "{body}");
}

#[tokio::test]
async fn an_officers_status_change_reaches_the_citizen_in_hindi_then_as_a_template_a_day_later() {
    for db in common::TestDb::all().await {
        let mut s = Server::start(db, Options { templates: true }).await;
        let reference = hindi_complaint(&mut s).await;
        s.settle().await;
        let officer = kotwali_officer(&s).await;

        // Meta has a bad moment (a 500, then its throughput limit): the push still arrives once.
        s.fake.fail_next(FakeError::ServerError);
        s.fake.fail_next(FakeError::RateLimit);
        let before = s.fake.requests().len();
        s.seen = s.fake.messages().len();
        change_status(
            &s,
            &officer,
            &reference,
            json!({"status": "acknowledged", "note": "कल सुबह पहचान पत्र के साथ थाने आएं।"}),
        )
        .await;
        s.wait_requests("the push", |r| {
            r[before..]
                .iter()
                .any(|r| r.is_message() && r.status == 200)
        })
        .await;
        s.settle().await;
        let pushes = s.fake.messages()[s.seen..].to_vec();
        assert_eq!(pushes.len(), 1, "{pushes:#?}");
        let push = &pushes[0];
        assert_eq!(
            (push["to"].as_str(), push["type"].as_str()),
            (Some(ASHA), Some("text"))
        );
        let said = testing::message_text(push);
        for expected in [
            reference.as_str(),
            "थाने को मिल गई",
            "कोतवाली",
            "कल सुबह पहचान पत्र के साथ थाने आएं।",
        ] {
            assert!(said.contains(expected), "{expected:?} not in {said}");
        }
        let refused = s.fake.requests()[before..]
            .iter()
            .filter(|r| r.is_message() && r.status != 200)
            .count();
        assert_eq!(refused, 2, "the 500 and the throttle, each tried again");

        // A day later the window is closed: the next change goes out as the Hindi template.
        sqlx::query("update citizens set last_inbound_at = $1")
            .bind(now() - 24 * 3600)
            .execute(&s.pool)
            .await
            .unwrap();
        change_status(
            &s,
            &officer,
            &reference,
            json!({"status": "under_inquiry", "note": "जांच एसआई वर्मा को सौंपी गई।"}),
        )
        .await;
        s.wait_requests("the template", |r| {
            r.iter().any(|r| {
                r.status == 200 && r.body.as_ref().is_some_and(|b| b["type"] == "template")
            })
        })
        .await;
        s.settle().await;
        let templates = templates_sent(&s.fake);
        assert_eq!(templates.len(), 1);
        let t = &templates[0];
        assert_eq!(t["to"], ASHA);
        assert_eq!(t["template"]["name"], TEMPLATE_HI);
        assert_eq!(t["template"]["language"]["code"], "hi");
        let params: Vec<&str> = t["template"]["components"][0]["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["text"].as_str().unwrap())
            .collect();
        assert_eq!(
            params,
            [
                reference.as_str(),
                "जांच जारी है",
                "कोतवाली",
                "जांच एसआई वर्मा को सौंपी गई।"
            ]
        );
        s.shutdown().await;
    }
}

/// Drives a lost or found journey in English up to its reference.
async fn english_report(s: &mut Server, menu: &str, item: &str) -> String {
    let m = text(s, "Hello");
    let out = s.turn(m).await;
    assert_buttons(last(&out), &["lang:hi", "lang:en"]);

    let m = button(s, "lang:en");
    let out = s.turn(m).await;
    assert_list(
        last(&out),
        &["menu:complaint", "menu:lost", "menu:found"],
        6,
    );
    assert_eq!(
        last(&out)["interactive"]["action"]["button"],
        "Choose an option"
    );

    let m = row(s, menu);
    let out = s.turn(m).await;
    assert_list(
        last(&out),
        &["item:mobile", "item:id_document", "item:wallet"],
        7,
    );

    let m = row(s, item);
    let out = s.turn(m).await;
    assert_text(last(&out));

    let m = text(s, "Brown leather, a bus pass inside");
    let out = s.turn(m).await;
    assert_buttons(last(&out), &["when:today", "when:yesterday"]);

    let m = button(s, "when:today");
    let out = s.turn(m).await;
    assert_eq!(
        interactive_type(last(&out)),
        Some("location_request_message")
    );

    let m = text(s, "Gandhi Maidan bus stand");
    let out = s.turn(m).await;
    let ids = choice_ids(last(&out));
    assert_eq!(ids.first().map(String::as_str), Some("not-sure"), "{ids:?}");

    if menu == "menu:found" {
        let m = row(s, "not-sure");
        let out = s.turn(m).await;
        assert_buttons(last(&out), &["custody:with_me", "custody:at_station"]);
        let m = button(s, "custody:at_station");
        let out = s.turn(m).await;
        assert_text(last(&out));
    } else {
        let m = row(s, "st:patna-gandhi-maidan");
        let out = s.turn(m).await;
        assert_text(last(&out));
    }

    let m = text(s, "Sunita Devi");
    let out = s.turn(m).await;
    assert_buttons(last(&out), &["phone:use", "phone:other"]);

    let m = button(s, "phone:use");
    let out = s.turn(m).await;
    assert_buttons(
        last(&out),
        &["review:confirm", "review:edit", "review:cancel"],
    );
    let review = all_text(&out);
    assert!(review.contains("Sunita Devi"), "{review}");

    let m = button(s, "review:confirm");
    let out = s.turn(m).await;
    let said = all_text(&out);
    let kind = if menu == "menu:found" { 'F' } else { 'L' };
    common::reference_in(&said, kind).unwrap_or_else(|| panic!("no reference in {said}"))
}

#[tokio::test]
async fn a_lost_item_is_reported_in_english() {
    for db in common::TestDb::all().await {
        let mut s = Server::start(db, Options { templates: false }).await;
        let reference = english_report(&mut s, "menu:lost", "item:wallet").await;
        let (kind, category): (String, String) =
            sqlx::query_as("select kind, category from reports where reference = $1")
                .bind(&reference)
                .fetch_one(&s.pool)
                .await
                .unwrap();
        assert_eq!((kind.as_str(), category.as_str()), ("lost", "wallet"));
        assert_addressed(&s.fake);
        s.shutdown().await;
    }
}

#[tokio::test]
async fn a_found_item_is_reported_in_english() {
    for db in common::TestDb::all().await {
        let mut s = Server::start(db, Options { templates: false }).await;
        let reference = english_report(&mut s, "menu:found", "item:bag").await;
        let (kind, custody, station): (String, String, String) =
            sqlx::query_as("select kind, custody, station_id from reports where reference = $1")
                .bind(&reference)
                .fetch_one(&s.pool)
                .await
                .unwrap();
        assert_eq!(kind, "found");
        assert_eq!(custody, "at_station");
        assert_eq!(
            station, "patna-control-room",
            "\"not sure\" goes to the control room"
        );
        s.shutdown().await;
    }
}

/// Meta may batch several messages, of several citizens, into one notification. They are
/// stored and answered in the commit its 200 follows, each citizen's in their order.
#[tokio::test]
async fn a_batched_notification_is_answered_before_its_200_each_citizen_in_order() {
    const RAVI: &str = "919812345678";
    for db in common::TestDb::all().await {
        let mut s = Server::start(db, Options { templates: false }).await;
        let (a1, r1, a2) = (s.wamid(), s.wamid(), s.wamid());
        let batch = testing::notification(
            &[(ASHA, "Asha"), (RAVI, "Ravi")],
            vec![
                fresh(testing::text_message(ASHA, &a1, "Hello")),
                fresh(testing::text_message(RAVI, &r1, "नमस्ते")),
                fresh(testing::button_reply(ASHA, &a2, "lang:en", "English")),
            ],
            vec![],
        );
        assert_eq!(s.post(&batch).await, StatusCode::OK);
        assert_eq!(
            s.count("select count(*) from inbox where processed_at is null")
                .await,
            0,
            "answered in the commit the 200 followed"
        );
        assert_eq!(
            s.count("select count(distinct citizen_id) from outbox")
                .await,
            2
        );
        s.settle().await;
        let to = |wa_id: &str| -> Vec<Value> {
            s.fake
                .messages()
                .into_iter()
                .filter(|m| m["to"] == wa_id)
                .collect()
        };
        let asha = to(ASHA);
        assert_buttons(&asha[0], &["lang:hi", "lang:en"]);
        assert_list(
            last(&asha),
            &["menu:complaint", "menu:lost", "menu:found"],
            6,
        );
        let ravi = to(RAVI);
        assert_eq!(ravi.len(), 1, "{ravi:?}");
        assert_buttons(&ravi[0], &["lang:hi", "lang:en"]);
        s.shutdown().await;
    }
}

#[tokio::test]
async fn a_redelivered_wamid_changes_nothing_and_sends_nothing() {
    for db in common::TestDb::all().await {
        let mut s = Server::start(db, Options { templates: false }).await;
        let m = text(&mut s, "नमस्ते");
        let notification = testing::notification(&[(ASHA, "Asha")], vec![m.clone()], vec![]);
        assert_eq!(s.post(&notification).await, StatusCode::OK);
        s.settle().await;
        s.wait_requests("read receipt", |r| r.iter().any(|r| r.is_read_receipt()))
            .await;
        let sent = s.fake.messages().len();
        assert!(sent >= 1);
        let conversation: String = sqlx::query_scalar("select state from conversations")
            .fetch_one(&s.pool)
            .await
            .unwrap();

        // Meta delivers the same notification again, and once more inside a batch.
        assert_eq!(s.post(&notification).await, StatusCode::OK);
        let batch = testing::notification(&[(ASHA, "Asha")], vec![m.clone(), m], vec![]);
        assert_eq!(s.post(&batch).await, StatusCode::OK);
        s.settle().await;
        tokio::time::sleep(Duration::from_millis(500)).await;

        assert_eq!(s.count("select count(*) from inbox").await, 1);
        assert_eq!(s.count("select count(*) from citizens").await, 1);
        assert_eq!(s.fake.messages().len(), sent, "nothing more sent");
        assert_eq!(s.fake.read_receipts().len(), 1, "marked as read once");
        let after: String = sqlx::query_scalar("select state from conversations")
            .fetch_one(&s.pool)
            .await
            .unwrap();
        assert_eq!(after, conversation);
        s.shutdown().await;
    }
}

#[tokio::test]
async fn messages_written_in_a_row_are_marked_as_read_by_the_latest() {
    for db in common::TestDb::all().await {
        let mut s = Server::start(db, Options { templates: false }).await;
        let first = s.wamid();
        let m = fresh(testing::text_message(ASHA, &first, "नमस्ते"));
        assert_eq!(
            s.post(&testing::notification(&[(ASHA, "Asha")], vec![m], vec![]))
                .await,
            StatusCode::OK
        );
        // The first message after a quiet moment is marked at once.
        s.wait_requests("the first message marked as read", |_| {
            s.fake.read_receipts() == vec![first.clone()]
        })
        .await;

        // Three more in quick succession: one receipt, for the last, marks all three.
        let mut later = Vec::new();
        for body in ["1", "menu", "2"] {
            let id = s.wamid();
            let m = fresh(testing::text_message(ASHA, &id, body));
            assert_eq!(
                s.post(&testing::notification(&[(ASHA, "Asha")], vec![m], vec![]))
                    .await,
                StatusCode::OK
            );
            later.push(id);
        }
        let last = later.last().unwrap().clone();
        s.wait_requests("the latest message marked as read", |_| {
            s.fake.read_receipts().contains(&last)
        })
        .await;
        tokio::time::sleep(Duration::from_millis(1_500)).await;
        // Two receipts, or three if a window happened to end between the posts: never one
        // per message.
        let receipts = s.fake.read_receipts();
        assert!(receipts.len() < 1 + later.len(), "{receipts:?}");
        assert_eq!(receipts[0], first);
        s.shutdown().await;
    }
}

#[tokio::test]
async fn delivery_statuses_are_applied_to_their_outbox_rows() {
    for db in common::TestDb::all().await {
        let mut s = Server::start(db, Options { templates: false }).await;
        let m = text(&mut s, "नमस्ते");
        s.turn(m).await;
        let m = button(&mut s, "lang:hi");
        s.turn(m).await;
        let sends: Vec<RecordedRequest> = s
            .fake
            .requests()
            .into_iter()
            .filter(|r| r.is_message() && r.wamid.is_some())
            .collect();
        assert!(sends.len() >= 2);
        let first = sends[0].wamid.clone().unwrap();
        let second = sends.last().unwrap().wamid.clone().unwrap();
        let id_of = |wamid: String| {
            let pool = s.pool.clone();
            async move {
                sqlx::query_scalar::<_, i64>("select id from outbox where provider_id = $1")
                    .bind(wamid)
                    .fetch_one(&pool)
                    .await
                    .unwrap()
            }
        };
        let first_id = id_of(first.clone()).await;
        let second_id = id_of(second.clone()).await;

        // Read arrives before delivered (Meta does not order them); an unknown wamid is ignored.
        let statuses = vec![
            testing::status(&first, "sent", ASHA, Some(&first_id.to_string()), None),
            testing::status(&first, "read", ASHA, Some(&first_id.to_string()), None),
            testing::status(&first, "delivered", ASHA, Some(&first_id.to_string()), None),
            testing::status("wamid.unknown", "delivered", ASHA, None, None),
            testing::status(&second, "failed", ASHA, None, Some(131026)),
        ];
        let n = testing::notification(&[], vec![], statuses);
        assert_eq!(s.post(&n).await, StatusCode::OK);

        let row = s.outbox(first_id).await;
        use sqlx::Row;
        let delivered: Option<i64> = row.get("delivered_at");
        let read: Option<i64> = row.get("read_at");
        assert_eq!(read, Some(1_749_416_400));
        assert_eq!(delivered, Some(1_749_416_400));
        assert_eq!(row.get::<String, _>("status"), "sent");

        let row = s.outbox(second_id).await;
        assert_eq!(row.get::<String, _>("status"), "dead");
        assert_eq!(
            row.get::<Option<String>, _>("failure").as_deref(),
            Some("131026: error")
        );
        assert!(row.get::<Option<i64>, _>("failed_at").is_some());

        // Redelivered, the failure changes nothing more.
        assert_eq!(s.post(&n).await, StatusCode::OK);
        assert_eq!(s.count("select count(*) from whatsapp_failures").await, 1);
        s.shutdown().await;
    }
}

fn templates_sent(fake: &FakeGraph) -> Vec<Value> {
    fake.messages()
        .into_iter()
        .filter(|m| m["type"] == "template")
        .collect()
}

#[tokio::test]
async fn a_131047_turns_a_push_into_its_template_once() {
    for db in common::TestDb::all().await {
        let mut s = Server::start(db, Options { templates: true }).await;
        let m = text(&mut s, "नमस्ते");
        s.turn(m).await;
        let m = button(&mut s, "lang:hi");
        s.turn(m).await;

        // Inside the window the push goes out as text; then its failed status says 131047.
        let push = s.enqueue_push(Lang::Hi, "C-7K3Q-9XM4-R").await;
        s.settle().await;
        let row = s.outbox(push).await;
        use sqlx::Row;
        let wamid: String = row.get("provider_id");
        let free = s.fake.messages().last().cloned().unwrap();
        assert_eq!(free["type"], "text");
        assert!(testing::message_text(&free).contains("C-7K3Q-9XM4-R"));

        let failed = testing::notification(
            &[],
            vec![],
            vec![testing::status(
                &wamid,
                "failed",
                ASHA,
                Some(&push.to_string()),
                Some(131047),
            )],
        );
        assert_eq!(s.post(&failed).await, StatusCode::OK);
        s.wait_requests("the template", |r| {
            r.iter()
                .any(|r| r.wamid.is_some() && r.body.as_ref().unwrap()["type"] == "template")
        })
        .await;
        s.settle().await;
        let templates = templates_sent(&s.fake);
        assert_eq!(templates.len(), 1);
        let t = &templates[0];
        assert_eq!(t["to"], ASHA);
        assert_eq!(t["biz_opaque_callback_data"], push.to_string());
        assert_eq!(t["template"]["name"], TEMPLATE_HI);
        assert_eq!(t["template"]["language"]["code"], "hi");
        let params: Vec<&str> = t["template"]["components"][0]["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["text"].as_str().unwrap())
            .collect();
        assert_eq!(
            params,
            [
                "C-7K3Q-9XM4-R",
                "जांच जारी",
                "कोतवाली",
                "Please visit the station"
            ]
        );
        let row = s.outbox(push).await;
        assert_eq!(row.get::<String, _>("status"), "sent");
        assert!(row.get::<Option<i64>, _>("wa_templated_at").is_some());
        let template_wamid: String = row.get("provider_id");
        assert_ne!(template_wamid, wamid);

        // The failed status again, and a 131047 for the template itself: no more sends.
        assert_eq!(s.post(&failed).await, StatusCode::OK);
        let again = testing::notification(
            &[],
            vec![],
            vec![testing::status(
                &template_wamid,
                "failed",
                ASHA,
                None,
                Some(131047),
            )],
        );
        assert_eq!(s.post(&again).await, StatusCode::OK);
        tokio::time::sleep(Duration::from_millis(1500)).await;
        s.settle().await;
        assert_eq!(templates_sent(&s.fake).len(), 1, "once");
        assert_eq!(s.outbox(push).await.get::<String, _>("status"), "dead");

        // A 131047 in the send's own answer: the template at once.
        s.fake.fail_next(FakeError::ReEngagement);
        let push2 = s.enqueue_push(Lang::Hi, "C-7K3Q-9XM4-R").await;
        s.wait_requests("the second template", |r| {
            r.iter()
                .filter(|r| r.wamid.is_some() && r.body.as_ref().unwrap()["type"] == "template")
                .count()
                == 2
        })
        .await;
        s.settle().await;
        assert_eq!(s.outbox(push2).await.get::<String, _>("status"), "sent");
        let refused = s
            .fake
            .requests()
            .into_iter()
            .filter(|r| r.status == 400 && r.is_message())
            .count();
        assert_eq!(refused, 1);

        // Outside the window by Seva's own clock (last message 24 h ago): straight to the
        // template, no free-form attempt.
        sqlx::query("update citizens set last_inbound_at = $1")
            .bind(now() - 24 * 3600)
            .execute(&s.pool)
            .await
            .unwrap();
        let before = s.sends().len();
        let push3 = s.enqueue_push(Lang::Hi, "C-7K3Q-9XM4-R").await;
        s.wait_requests("the third template", |_| s.sends().len() > before)
            .await;
        s.settle().await;
        let after: Vec<RecordedRequest> = s.sends()[before..].to_vec();
        assert_eq!(after.len(), 1, "{after:#?}");
        assert_eq!(after[0].body.as_ref().unwrap()["type"], "template");
        assert_eq!(s.outbox(push3).await.get::<String, _>("status"), "sent");
        s.shutdown().await;
    }
}

#[tokio::test]
async fn without_a_template_a_push_waits_for_the_citizen_to_write() {
    for db in common::TestDb::all().await {
        let mut s = Server::start(db, Options { templates: false }).await;
        let m = text(&mut s, "Hello");
        s.turn(m).await;
        let m = button(&mut s, "lang:en");
        s.turn(m).await;

        // Meta says the window is closed: no template configured, so the push waits.
        s.fake.fail_next(FakeError::ReEngagement);
        let before = s.sends().len();
        let push = s.enqueue_push(Lang::En, "L-7K3Q-9XM4-K").await;
        s.wait_requests("the refused send", |_| s.sends().len() > before)
            .await;
        s.settle().await;
        tokio::time::sleep(Duration::from_millis(1500)).await;
        use sqlx::Row;
        let row = s.outbox(push).await;
        assert_eq!(row.get::<String, _>("status"), "pending");
        assert!(row.get::<Option<i64>, _>("wa_wait_after_inbox").is_some());
        assert!(row.get::<i64, _>("next_attempt_at") > now() + 60);
        assert_eq!(s.sends().len(), before + 1, "tried once, then waits");
        assert!(templates_sent(&s.fake).is_empty());

        // The citizen writes: the push goes out first, then the answer.
        s.seen = s.fake.messages().len();
        let m = text(&mut s, "menu");
        let out = s.turn(m).await;
        assert!(out.len() >= 2, "{out:#?}");
        assert!(
            testing::message_text(&out[0]).contains("L-7K3Q-9XM4-K"),
            "{out:#?}"
        );
        assert_eq!(out[0]["type"], "text");
        assert!(choice_ids(last(&out)).contains(&"menu:complaint".to_owned()));
        let row = s.outbox(push).await;
        assert_eq!(row.get::<String, _>("status"), "sent");
        assert!(row.get::<Option<i64>, _>("wa_wait_after_inbox").is_none());

        // Outside the window by Seva's clock: nothing is even tried until the citizen writes.
        sqlx::query("update citizens set last_inbound_at = $1")
            .bind(now() - 24 * 3600)
            .execute(&s.pool)
            .await
            .unwrap();
        let before = s.sends().len();
        let push2 = s.enqueue_push(Lang::En, "L-7K3Q-9XM4-K").await;
        let deadline = tokio::time::Instant::now() + WAIT;
        while s
            .outbox(push2)
            .await
            .get::<Option<i64>, _>("wa_wait_after_inbox")
            .is_none()
        {
            assert!(tokio::time::Instant::now() < deadline);
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        s.settle().await;
        assert_eq!(s.sends().len(), before, "no send tried");
        assert_eq!(s.outbox(push2).await.get::<String, _>("status"), "pending");

        s.seen = s.fake.messages().len();
        let m = text(&mut s, "menu");
        let out = s.turn(m).await;
        assert!(
            testing::message_text(&out[0]).contains("L-7K3Q-9XM4-K"),
            "{out:#?}"
        );
        assert_eq!(s.outbox(push2).await.get::<String, _>("status"), "sent");
        s.shutdown().await;
    }
}

#[tokio::test]
async fn throttling_is_waited_out_then_the_reply_is_sent() {
    for db in common::TestDb::all().await {
        let mut s = Server::start(db, Options { templates: false }).await;
        s.fake.fail_next(FakeError::RateLimit);
        let m = text(&mut s, "नमस्ते");
        let out = s.turn(m).await;
        assert_buttons(last(&out), &["lang:hi", "lang:en"]);
        let sends: Vec<RecordedRequest> = s
            .fake
            .requests()
            .into_iter()
            .filter(|r| r.is_message())
            .collect();
        assert_eq!(sends.len(), 2, "{sends:#?}");
        assert_eq!(sends[0].status, 400);
        assert_eq!(sends[1].status, 200);
        assert_eq!(sends[0].body, sends[1].body, "the same message again");
        use sqlx::Row;
        let row = sqlx::query("select status, attempts from outbox")
            .fetch_one(&s.pool)
            .await
            .unwrap();
        assert_eq!(row.get::<String, _>("status"), "sent");
        assert_eq!(row.get::<i64, _>("attempts"), 1, "waiting does not count");
        s.shutdown().await;
    }
}

#[tokio::test]
async fn an_expired_access_token_makes_a_dead_letter_an_operator_sees() {
    for db in common::TestDb::all().await {
        let mut s = Server::start(db, Options { templates: false }).await;
        s.fake.fail_next(FakeError::TokenExpired);
        let m = text(&mut s, "नमस्ते");
        let n = testing::notification(&[(ASHA, "Asha")], vec![m], vec![]);
        assert_eq!(s.post(&n).await, StatusCode::OK);
        s.settle().await;
        use sqlx::Row;
        let row = sqlx::query("select status, last_error from outbox")
            .fetch_one(&s.pool)
            .await
            .unwrap();
        assert_eq!(row.get::<String, _>("status"), "dead");
        let error: String = row.get("last_error");
        assert!(error.starts_with("190"), "{error}");
        assert!(!error.contains(ACCESS_TOKEN));
        s.shutdown().await;
    }
}

#[tokio::test]
async fn a_crash_after_the_200_loses_nothing() {
    for db in common::TestDb::all().await {
        let mut s = Server::start(db, Options { templates: false }).await;
        s.shutdown().await;

        // A server that stores and answers 200, then "crashes" before anything else happens.
        let opts = Options { templates: false };
        let config = s.config(&opts);
        let store = Store::open(&s.db_url).await.unwrap();
        let runtime = seva::runtime::Runtime::builder(store.clone()).build();
        let sink = seva::channels::whatsapp::sink(&config, &runtime)
            .unwrap()
            .store_only();
        let app = webhook::router(
            seva::channels::whatsapp::webhook_config(config.whatsapp.as_ref().unwrap()),
            std::sync::Arc::new(sink),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        s.addr = listener.local_addr().unwrap();
        let crashed = tokio::spawn(async move { axum::serve(listener, app).await });
        let photo = vec![0xFF, 0xD8, 0xFF, 0xE0, 1, 2, 3];
        s.fake.add_media("5566778899", "image/jpeg", photo.clone());
        let m1 = text(&mut s, "नमस्ते");
        let w = s.wamid();
        let m2 = fresh(testing::image_message(ASHA, &w, "5566778899", None));
        let n = testing::notification(&[(ASHA, "Asha")], vec![m1, m2], vec![]);
        assert_eq!(s.post(&n).await, StatusCode::OK);
        crashed.abort();
        store.close().await;
        assert_eq!(
            s.count("select count(*) from inbox where processed_at is null")
                .await,
            2
        );
        assert!(s.fake.messages().is_empty());

        // Restart: the sweeper processes what was stored; the media worker downloads the photo.
        s.serve(&opts).await;
        s.settle().await;
        let out = s.fake.wait_for(1, WAIT).await;
        assert_buttons(&out[0], &["lang:hi", "lang:en"]);
        assert_eq!(
            s.count("select count(*) from inbox where processed_at is null")
                .await,
            0
        );
        let deadline = tokio::time::Instant::now() + WAIT;
        while s
            .count("select count(*) from whatsapp_media where status = 'done'")
            .await
            == 0
        {
            assert!(
                tokio::time::Instant::now() < deadline,
                "photo not downloaded"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        s.shutdown().await;
    }
}

#[tokio::test]
async fn a_failed_media_download_is_retried() {
    for db in common::TestDb::all().await {
        let mut s = Server::start(db, Options { templates: false }).await;
        let m = text(&mut s, "नमस्ते");
        s.turn(m).await;
        s.fake.add_media(
            "9988776655",
            "audio/ogg",
            vec![b'O', b'g', b'g', b'S', 0, 2],
        );
        s.fake.fail_next_media(FakeError::ServerError);
        let w = s.wamid();
        let voice = json!({
            "from": ASHA, "id": w, "timestamp": now().to_string(), "type": "audio",
            "audio": { "mime_type": "audio/ogg; codecs=opus", "sha256": "m04p=", "id": "9988776655", "voice": true }
        });
        s.turn(voice).await;
        let store = Store::connect(&s.db_url).await.unwrap();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        let media = loop {
            let m = store.whatsapp_media("9988776655").await.unwrap().unwrap();
            if m.status == "done" {
                break m;
            }
            assert_ne!(m.status, "failed", "{m:?}");
            assert!(tokio::time::Instant::now() < deadline, "not retried: {m:?}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        assert_eq!(media.attempts, 2);
        assert_eq!(media.kind, "voice");
        assert!(media.path.unwrap().ends_with("9988776655.ogg"));
        s.shutdown().await;
    }
}

#[tokio::test]
async fn bad_signatures_get_401_and_nothing_is_stored() {
    for db in common::TestDb::all().await {
        let mut s = Server::start(db, Options { templates: false }).await;
        let m = text(&mut s, "नमस्ते");
        let n = testing::notification(&[(ASHA, "Asha")], vec![m], vec![]);
        let (body, good) = testing::signed(APP_SECRET, &n);
        let (_, wrong_key) = testing::signed("another-secret", &n);

        assert_eq!(
            s.post_raw(body.clone(), None).await,
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(
            s.post_raw(body.clone(), Some(&wrong_key)).await,
            StatusCode::UNAUTHORIZED
        );
        let mut tampered = body.clone();
        let at = tampered.len() - 5;
        tampered[at] ^= 1;
        assert_eq!(
            s.post_raw(tampered, Some(&good)).await,
            StatusCode::UNAUTHORIZED
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(s.count("select count(*) from inbox").await, 0);
        assert_eq!(s.count("select count(*) from citizens").await, 0);
        assert!(s.fake.requests().is_empty());

        // The handshake too: only the right token is echoed.
        let url = s.webhook_url();
        let ok = s
            .http
            .get(format!(
                "{url}?hub.mode=subscribe&hub.verify_token={VERIFY_TOKEN}&hub.challenge=1158201444"
            ))
            .send()
            .await
            .unwrap();
        assert_eq!(ok.status(), StatusCode::OK);
        assert_eq!(ok.text().await.unwrap(), "1158201444");
        let refused = s
            .http
            .get(format!(
                "{url}?hub.mode=subscribe&hub.verify_token=nope&hub.challenge=1158201444"
            ))
            .send()
            .await
            .unwrap();
        assert_eq!(refused.status(), StatusCode::FORBIDDEN);

        // And the properly signed request is stored and answered.
        assert_eq!(s.post_raw(body, Some(&good)).await, StatusCode::OK);
        s.settle().await;
        assert_eq!(s.count("select count(*) from inbox").await, 1);
        s.shutdown().await;
    }
}

#[tokio::test]
async fn a_message_with_a_stale_example_timestamp_is_still_answered() {
    // Payloads copied from Meta's documentation carry a timestamp from long ago; Meta never
    // delivers anything older than 7 days, so the time of receipt opens the window instead.
    for db in common::TestDb::all().await {
        let mut s = Server::start(db, Options { templates: false }).await;
        let w = s.wamid();
        let m = testing::text_message(ASHA, &w, "Hello");
        assert_eq!(m["timestamp"], "1749416383");
        let out = s.turn(m).await;
        assert_buttons(last(&out), &["lang:hi", "lang:en"]);
        s.shutdown().await;
    }
}

#[tokio::test]
async fn a_message_redelivered_after_the_window_closed_is_not_answered_with_free_text() {
    // Meta redelivers a notification for up to 7 days. A message written two days ago and
    // delivered only now leaves the window closed: the answer waits for the citizen's next
    // message instead of going out as free text Meta would refuse (131047). The reply is
    // handed straight from the commit to the sender, which must still see the closed window.
    for db in common::TestDb::all().await {
        let mut s = Server::start(db, Options { templates: false }).await;
        let w = s.wamid();
        let mut m = testing::text_message(ASHA, &w, "Hello");
        let written = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
            - 2 * 24 * 3600;
        m["timestamp"] = Value::String(written.to_string());
        let status = s
            .post(&testing::notification(&[(ASHA, "Asha")], vec![m], vec![]))
            .await;
        assert_eq!(status, StatusCode::OK);
        s.settle().await;
        assert!(s.sends().is_empty(), "answered outside the window");
        assert_eq!(
            s.count(
                "select count(*) from outbox where channel = 'whatsapp' and status = 'pending' \
                 and wa_wait_after_inbox is not null"
            )
            .await,
            1,
            "the answer waits for the citizen's next message"
        );
        s.shutdown().await;
    }
}
