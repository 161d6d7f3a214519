//! Abuse limits (issue 8 item 3), on SQLite and on PostgreSQL when one is available:
//!
//! * per citizen, messages per minute: over the real server (signed WhatsApp webhooks, the fake
//!   Graph API) a flood gets one polite reply in the citizen's language and moves nothing; with
//!   the runtime's injectable clock, the next minute is answered again;
//! * per citizen, new reports per day: refused at the start of the journey, in English and in
//!   Hindi, saying when a new report can be filed; counted from the database;
//! * the officer API slows wrong tokens per client address (429 with `Retry-After`), believes
//!   `X-Forwarded-For` only from a trusted proxy, and takes a right token again afterwards;
//! * webhook routes are not limited: a burst of provider redeliveries all get 200.

mod common;

use std::time::Duration;

use common::serve::{self, Serving};
use common::{Harness, TestDb};
use flows::Lang;
use flows::catalog::Catalog;
use flows::delivery::OutboxContent;
use flows::message::Channel;
use flows::reference::{Reference, ReportKind};
use reqwest::StatusCode;
use serde_json::{Value, json};
use seva::limits::{CitizenLimits, HELD_BACK_NOTE};
use seva::officer::auth::{hash_token, new_token};
use seva::runtime::Runtime;
use seva::store::{Scope, Store};
use sqlx::AnyPool;
use webhook::testing::{self, FakeGraph};

const APP_SECRET: &str = "limits-app-secret";
const ACCESS_TOKEN: &str = "EAAG-limits-access-token";
const ASHA: &str = "919876543210";
const RAVI: &str = "919812345678";

// ---------------------------------------------------------------------------------------------
// The real server

/// `seva serve` with WhatsApp on (against the fake Graph API) and the given extra settings.
struct Server {
    serving: Serving,
    fake: FakeGraph,
    pool: AnyPool,
    store: Store,
    http: reqwest::Client,
    wamids: u32,
    _db: TestDb,
}

impl Server {
    async fn start(db: TestDb, extra: &[(&'static str, &str)]) -> Server {
        let store = Store::open(&db.url).await.unwrap();
        let fake = FakeGraph::start().await;
        fake.require_token(ACCESS_TOKEN);
        let mut settings = serve::base_settings(&db);
        settings.extend([
            ("WHATSAPP_APP_SECRET", APP_SECRET.into()),
            ("WHATSAPP_VERIFY_TOKEN", "limits-verify".into()),
            ("WHATSAPP_ACCESS_TOKEN", ACCESS_TOKEN.into()),
            ("WHATSAPP_PHONE_NUMBER_ID", testing::PHONE_NUMBER_ID.into()),
            ("WHATSAPP_API_URL", fake.url()),
        ]);
        settings.extend(extra.iter().map(|(k, v)| (*k, (*v).to_owned())));
        Server {
            serving: Serving::start(serve::config(settings)).await,
            fake,
            pool: db.pool().await,
            store,
            http: serve::loopback_client(),
            wamids: 0,
            _db: db,
        }
    }

    fn url(&self, path: &str) -> String {
        self.serving.url(path)
    }

    /// A signed notification carrying one text from `from`, with a fresh wamid.
    fn text(&mut self, from: &str, body: &str) -> Value {
        self.wamids += 1;
        let wamid = format!("wamid.limits{:08}", self.wamids);
        let mut m = testing::text_message(from, &wamid, body);
        m["timestamp"] = json!(chrono::Utc::now().timestamp().to_string());
        testing::notification(&[(from, "Citizen")], vec![m], vec![])
    }

    async fn post(&self, notification: &Value) -> StatusCode {
        post_signed(&self.http, self.url("/webhook/whatsapp"), notification).await
    }

    /// Posts one text and waits until it is handled and its replies are sent.
    async fn say(&mut self, from: &str, body: &str) {
        let n = self.text(from, body);
        assert_eq!(self.post(&n).await, StatusCode::OK);
        serve::settled(&self.pool).await;
    }

    async fn count(&self, sql: &str) -> i64 {
        serve::count(&self.pool, sql).await
    }

    /// The texts the fake Graph API accepted for `to`, in order.
    fn texts_to(&self, to: &str) -> Vec<String> {
        self.fake
            .messages()
            .iter()
            .filter(|m| m["to"] == to)
            .map(testing::message_text)
            .collect()
    }

    /// A state-wide officer token.
    async fn token(&self, name: &str) -> String {
        let token = new_token();
        self.store
            .add_officer(
                name,
                &Scope::parse("state").unwrap(),
                &hash_token(&token),
                common::START,
            )
            .await
            .unwrap();
        token
    }

    /// `GET /api/v1/reports` with an optional token and `X-Forwarded-For`.
    async fn list(&self, token: Option<&str>, forwarded: Option<&str>) -> reqwest::Response {
        let mut req = self.http.get(self.url("/api/v1/reports"));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(f) = forwarded {
            req = req.header("x-forwarded-for", f);
        }
        req.send().await.unwrap()
    }

    async fn metrics(&self) -> String {
        let resp = self.http.get(self.url("/metrics")).send().await.unwrap();
        resp.text().await.unwrap()
    }

    async fn stop(mut self) {
        self.serving.stop().await;
        self.store.close().await;
    }
}

/// POSTs a notification signed with the app secret.
async fn post_signed(http: &reqwest::Client, url: String, notification: &Value) -> StatusCode {
    let (body, signature) = testing::signed(APP_SECRET, notification);
    http.post(url)
        .header("content-type", "application/json")
        .header("x-hub-signature-256", signature)
        .body(body)
        .send()
        .await
        .unwrap()
        .status()
}

/// The step a stored conversation is at, as `(step, field)`.
fn at(state: &Value) -> (String, String) {
    let s = |k: &str| state["step"][k].as_str().unwrap_or_default().to_owned();
    (s("step"), s("field"))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_flood_gets_one_polite_reply_in_the_citizens_language_and_moves_nothing() {
    for db in TestDb::all().await {
        let mut s = Server::start(db, &[("SEVA_CITIZEN_MESSAGES_PER_MINUTE", "3")]).await;
        // Three messages each: language, menu, "file a complaint" → asked for the category.
        for (who, words) in [
            (ASHA, ["hi", "English", "1"]),
            (RAVI, ["नमस्ते", "हिन्दी", "1"]),
        ] {
            for w in words {
                s.say(who, w).await;
            }
            assert_eq!(
                at(&serve::conversation_of(&s.pool, who).await),
                ("ask".into(), "category".into())
            );
        }
        let before_asha = s.texts_to(ASHA).len();
        let before_ravi = s.texts_to(RAVI).len();

        // Ten more each as fast as the webhook takes them: all acknowledged, none answered
        // but the first, and none moves the dialogue (each would have picked a category).
        for _ in 0..10 {
            for (who, w) in [(ASHA, "2"), (RAVI, "चोरी")] {
                let n = s.text(who, w);
                assert_eq!(s.post(&n).await, StatusCode::OK);
            }
        }
        serve::settled(&s.pool).await;
        tokio::time::sleep(Duration::from_millis(300)).await;

        let asha = s.texts_to(ASHA)[before_asha..].to_vec();
        assert_eq!(asha.len(), 1, "{asha:?}");
        assert!(
            asha[0].starts_with("You are sending messages very quickly") && asha[0].contains("112"),
            "{asha:?}"
        );
        let ravi = s.texts_to(RAVI)[before_ravi..].to_vec();
        assert_eq!(ravi.len(), 1, "{ravi:?}");
        assert!(
            ravi[0].starts_with("आप बहुत जल्दी-जल्दी संदेश भेज रहे हैं") && ravi[0].contains("112"),
            "{ravi:?}"
        );
        for who in [ASHA, RAVI] {
            let state = serve::conversation_of(&s.pool, who).await;
            assert_eq!(at(&state), ("ask".into(), "category".into()), "{state}");
            assert!(state["draft"]["category"].is_null(), "{state}");
        }
        // Stored and processed, marked as held back: nothing acknowledged is lost.
        assert_eq!(s.count("select count(*) from inbox").await, 26);
        let held: i64 = sqlx::query_scalar("select count(*) from inbox where error = $1")
            .bind(HELD_BACK_NOTE)
            .fetch_one(&s.pool)
            .await
            .unwrap();
        assert_eq!(held, 20);
        assert_eq!(s.count("select count(*) from reports").await, 0);
        let metrics = s.metrics().await;
        assert!(
            metrics.contains("seva_citizen_limited_total{limit=\"messages\"}"),
            "{metrics}"
        );
        s.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn thirty_quick_redeliveries_of_one_message_all_get_200_and_are_processed_once() {
    for db in TestDb::all().await {
        // A low citizen limit too: redeliveries must not use up the citizen's minute.
        let mut s = Server::start(db, &[("SEVA_CITIZEN_MESSAGES_PER_MINUTE", "2")]).await;
        let n = s.text(ASHA, "hi");
        let mut posts = tokio::task::JoinSet::new();
        for _ in 0..30 {
            let (http, url, n) = (s.http.clone(), s.url("/webhook/whatsapp"), n.clone());
            posts.spawn(async move { post_signed(&http, url, &n).await });
        }
        let statuses: Vec<StatusCode> = posts.join_all().await;
        assert!(
            statuses.iter().all(|st| *st == StatusCode::OK),
            "{statuses:?}"
        );
        serve::settled(&s.pool).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(s.count("select count(*) from inbox").await, 1);
        assert_eq!(s.texts_to(ASHA).len(), 1, "one language question");

        // The citizen's next message is the second of their minute: answered normally.
        s.say(ASHA, "English").await;
        let texts = s.texts_to(ASHA);
        assert_eq!(texts.len(), 2);
        assert!(texts[1].contains("What would you like to do?"), "{texts:?}");
        s.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn wrong_tokens_from_one_address_get_429_even_with_the_right_token_until_the_penalty_ends() {
    for db in TestDb::all().await {
        let s = Server::start(
            db,
            &[
                ("SEVA_OFFICER_AUTH_FAILURES", "3"),
                ("SEVA_OFFICER_AUTH_WINDOW", "1.5"),
            ],
        )
        .await;
        let right = s.token("insp-verma").await;
        assert_eq!(s.list(Some(&right), None).await.status(), StatusCode::OK);
        // Requests without a token are not guesses and do not count.
        for _ in 0..5 {
            assert_eq!(s.list(None, None).await.status(), StatusCode::UNAUTHORIZED);
        }
        let wrong = new_token();
        for _ in 0..3 {
            assert_eq!(
                s.list(Some(&wrong), None).await.status(),
                StatusCode::UNAUTHORIZED
            );
        }
        for token in [Some(right.as_str()), Some(wrong.as_str()), None] {
            let resp = s.list(token, None).await;
            assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
            let retry: u64 = resp.headers()["retry-after"]
                .to_str()
                .unwrap()
                .parse()
                .unwrap();
            assert!((1..=2).contains(&retry), "{retry}");
            let body: Value = resp.json().await.unwrap();
            assert_eq!(body["code"], "too_many_attempts");
            assert!(
                body["message"].as_str().unwrap().contains("seconds"),
                "{body}"
            );
        }
        let metrics = s.metrics().await;
        assert!(
            metrics.contains("seva_officer_auth_throttled_total "),
            "{metrics}"
        );

        tokio::time::sleep(Duration::from_millis(1600)).await;
        assert_eq!(s.list(Some(&right), None).await.status(), StatusCode::OK);
        s.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn forwarded_for_is_believed_only_from_a_trusted_proxy() {
    let limits = [
        ("SEVA_OFFICER_AUTH_FAILURES", "3"),
        ("SEVA_OFFICER_AUTH_WINDOW", "60"),
    ];
    let attacker = "203.0.113.7";
    let victim = "198.51.100.9";

    // Behind a trusted proxy (the test client at 127.0.0.1 plays it): the proxy appends the
    // address it saw to whatever the client wrote.
    let mut trusted = limits.to_vec();
    trusted.push(("SEVA_TRUSTED_PROXIES", "127.0.0.0/8, ::1"));
    let s = Server::start(TestDb::sqlite(), &trusted).await;
    let right = s.token("insp-verma").await;
    let wrong = new_token();
    // The attacker writes the victim's address first, hoping to frame them.
    let framed = format!("{victim}, {attacker}");
    for _ in 0..3 {
        let resp = s.list(Some(&wrong), Some(&framed)).await;
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    }
    let attacker_again = s.list(Some(&right), Some(attacker)).await;
    assert_eq!(attacker_again.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(
        s.list(Some(&right), Some(victim)).await.status(),
        StatusCode::OK,
        "the victim is not framed"
    );
    assert_eq!(
        s.list(Some(&right), Some("192.0.2.44")).await.status(),
        StatusCode::OK,
        "another client behind the proxy is not affected"
    );
    s.stop().await;

    // Without trusting the peer, the header is ignored: a new address per request does not
    // dodge the count.
    for proxies in [None, Some("10.0.0.0/8")] {
        let mut vars = limits.to_vec();
        if let Some(p) = proxies {
            vars.push(("SEVA_TRUSTED_PROXIES", p));
        }
        let s = Server::start(TestDb::sqlite(), &vars).await;
        let right = s.token("insp-verma").await;
        for i in 0..3 {
            let spoofed = format!("198.51.100.{i}");
            let resp = s.list(Some(&wrong), Some(&spoofed)).await;
            assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
        }
        let resp = s.list(Some(&right), Some("198.51.100.200")).await;
        assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS, "{proxies:?}");
        s.stop().await;
    }
}

// ---------------------------------------------------------------------------------------------
// The runtime with the real engine and an injectable clock

fn runtime(h: &Harness, limits: CitizenLimits) -> Runtime {
    Runtime::builder(h.store.clone())
        .stations(common::example_stations())
        .clock(h.clock())
        .limits(limits)
        .build()
}

/// A terminal citizen's replies, oldest first, rendered in the language they were written in.
async fn rendered(h: &Harness, who: &str) -> Vec<(Vec<String>, String)> {
    let citizen = h
        .store
        .find_citizen(Channel::Terminal, who)
        .await
        .unwrap()
        .unwrap();
    let rows: Vec<(String, String)> = sqlx::query_as(
        "select content, lang from outbox where citizen_id = $1 and kind = 'reply' order by id",
    )
    .bind(citizen.id)
    .fetch_all(&h.db().await)
    .await
    .unwrap();
    rows.into_iter()
        .map(|(content, lang)| {
            let OutboxContent { reply, .. } = serde_json::from_str(&content).unwrap();
            let lang = Lang::from_code(&lang).unwrap();
            let ids = reply.texts.iter().map(|t| t.id.clone()).collect();
            (ids, Catalog::global().render(lang, &reply).body)
        })
        .collect()
}

async fn conversation_step(h: &Harness, who: &str) -> Value {
    serve::conversation_of(&h.db().await, who).await
}

#[tokio::test(flavor = "multi_thread")]
async fn held_back_messages_leave_the_dialogue_alone_and_the_next_minute_is_answered() {
    for db in TestDb::all().await {
        let h = Harness::on(db).await;
        let rt = runtime(&h, CitizenLimits::new(2, 0));
        let mut n = 0;
        let mut send = async |text: &str| {
            n += 1;
            rt.handle(&common::text("asha", &format!("m{n}"), text))
                .await
                .unwrap();
        };
        send("hi").await;
        send("English").await;
        h.advance(20);
        send("1").await;
        h.advance(20);
        send("1").await;
        send("2").await;
        let replies = rendered(&h, "asha").await;
        assert_eq!(replies.len(), 3, "{replies:?}");
        assert_eq!(replies[2].0, ["too-many-messages"]);
        assert!(replies[2].1.contains("wait a minute"), "{}", replies[2].1);
        assert_eq!(conversation_step(&h, "asha").await["step"]["step"], "menu");

        // A minute after the first message, a new window.
        h.advance(20);
        send("1").await;
        let replies = rendered(&h, "asha").await;
        assert_eq!(replies.len(), 4, "{replies:?}");
        assert_eq!(replies[3].0[0], "complaint-intro");
        let state = conversation_step(&h, "asha").await;
        assert_eq!(at(&state), ("ask".into(), "category".into()));
        let held: i64 = sqlx::query_scalar("select count(*) from inbox where error = $1")
            .bind(HELD_BACK_NOTE)
            .fetch_one(&h.db().await)
            .await
            .unwrap();
        assert_eq!(held, 3);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_report_over_the_daily_limit_is_refused_at_the_start_in_english_and_hindi() {
    const HOUR: i64 = 3600;
    for db in TestDb::all().await {
        let h = Harness::on(db).await;
        let rt = runtime(&h, CitizenLimits::new(0, 2));
        let tz = chrono_tz::Asia::Kolkata;
        // The oldest of the two reports leaves the 24 hours at START + 4 h.
        let free_at = chrono::DateTime::from_timestamp(common::START + 4 * HOUR, 0)
            .unwrap()
            .with_timezone(&tz);
        let (date, time) = (
            free_at.format("%d-%m-%Y").to_string(),
            free_at.format("%H:%M").to_string(),
        );
        for (who, lang, start, said) in [
            (
                "asha",
                Lang::En,
                "1",
                "You have already filed 2 reports in the last 24 hours",
            ),
            (
                "ravi",
                Lang::Hi,
                "शिकायत",
                "आप पिछले 24 घंटों में 2 रिपोर्ट दर्ज कर चुके हैं",
            ),
        ] {
            // Two reports filed in the last 24 hours, and a third one a day and more ago.
            let citizen = h
                .store
                .ensure_citizen(Channel::Terminal, who, h.time())
                .await
                .unwrap();
            let mut turn = h.store.lock_citizen(citizen.id).await.unwrap();
            turn.set_lang(lang).await.unwrap();
            for (i, ago) in [30 * HOUR, 20 * HOUR, HOUR].into_iter().enumerate() {
                let reference = Reference::generate(ReportKind::Complaint, rand::random());
                let draft = format!("{who}-{i}");
                turn.file_report(
                    &common::report(&draft, reference),
                    h.time() - ago,
                    rt.notices(),
                )
                .await
                .unwrap();
            }
            turn.commit().await.unwrap();

            rt.handle(&common::text(who, &format!("{who}-1"), start))
                .await
                .unwrap();
            let replies = rendered(&h, who).await;
            let (ids, text) = replies.last().unwrap();
            assert_eq!(ids[0], "report-limit-reached", "{replies:?}");
            assert!(text.contains(said), "{text}");
            assert!(text.contains(&date) && text.contains(&time), "{text}");
            assert!(text.contains("112"), "{text}");
            let state = conversation_step(&h, who).await;
            assert_eq!(state["step"]["step"], "menu", "{state}");
            assert!(state["draft"].is_null(), "{state}");
        }
        assert_eq!(
            sqlx::query_scalar::<_, i64>("select count(*) from reports")
                .fetch_one(&h.db().await)
                .await
                .unwrap(),
            6,
            "nothing filed"
        );

        // When the oldest of the two is 24 hours old, a new report can be started.
        h.advance(4 * HOUR);
        for who in ["asha", "ravi"] {
            rt.handle(&common::text(who, &format!("{who}-2"), "1"))
                .await
                .unwrap();
            let replies = rendered(&h, who).await;
            assert_eq!(
                replies.last().unwrap().0[0],
                "complaint-intro",
                "{replies:?}"
            );
        }
        assert!(seva::metrics::render().contains("seva_citizen_limited_total{limit=\"reports\"}"));
    }
}
