//! The officer API over the real server on 127.0.0.1:0, with reports filed through the runtime
//! (scripted engine) on the same SQLite file, fake channel senders, a loopback event receiver,
//! and the `seva` binary for the shell commands.

mod common;

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use common::{FakeSender, Harness, TestDb};
use flows::Lang;
use flows::message::Channel;
use flows::reference::{Reference, ReportKind};
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use seva::config::Config;
use seva::officer::auth::{hash_token, new_token};
use seva::outbox::{ChannelSender, OutboundMessage};
use seva::runtime::{Engine, Runtime};
use seva::store::{OutboxKind, Scope};
use sha2::Sha256;

const EVENTS_SECRET: &str = "test-events-secret";

/// The example district, with Telegram chats for two stations (Kotwali in Hindi, Gandhi
/// Maidan in English).
fn stations_csv() -> String {
    let path = format!("{}/config/stations.example.csv", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(path)
        .unwrap()
        .replace(
            "patna-kotwali,patna,Patna,पटना,Kotwali,कोतवाली,station,hi,,",
            "patna-kotwali,patna,Patna,पटना,Kotwali,कोतवाली,station,hi,-1001,",
        )
        .replace(
            "patna-gandhi-maidan,patna,Patna,पटना,Gandhi Maidan,गांधी मैदान,station,hi,,",
            "patna-gandhi-maidan,patna,Patna,पटना,Gandhi Maidan,गांधी मैदान,station,en,-1002,",
        )
}

/// A loopback HTTP receiver for back-office events: answers 500 to the first `fail_first`
/// requests, then 204, and keeps every request.
#[derive(Clone, Default)]
struct Receiver {
    seen: Arc<Mutex<Vec<(HeaderMap, Bytes)>>>,
    fail_first: usize,
    calls: Arc<AtomicUsize>,
}

impl Receiver {
    async fn start(fail_first: usize) -> (Receiver, String) {
        let receiver = Receiver {
            fail_first,
            ..Default::default()
        };
        let state = receiver.clone();
        let app = axum::Router::new().route(
            "/events",
            axum::routing::post(move |headers: HeaderMap, body: Bytes| {
                let state = state.clone();
                async move {
                    let n = state.calls.fetch_add(1, Ordering::SeqCst);
                    state.seen.lock().unwrap().push((headers, body));
                    if n < state.fail_first {
                        StatusCode::INTERNAL_SERVER_ERROR
                    } else {
                        StatusCode::NO_CONTENT
                    }
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/events", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        (receiver, url)
    }

    fn requests(&self) -> Vec<(HeaderMap, Bytes)> {
        self.seen.lock().unwrap().clone()
    }
}

/// `seva serve` on a tempdir database, with fakes for the terminal and Telegram channels and
/// (when given) the real events sender posting to `events_url`.
struct Server {
    h: Harness,
    address: std::net::SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<Result<(), seva::Error>>>,
    terminal: Arc<FakeSender>,
    telegram: Arc<FakeSender>,
    http: reqwest::Client,
    stations: PathBuf,
    media: PathBuf,
    events: bool,
}

impl Server {
    async fn start(db: TestDb, events_url: Option<String>) -> Server {
        let h = Harness::on(db).await;
        let stations = h.dir.path().join("stations.csv");
        std::fs::write(&stations, stations_csv()).unwrap();
        let media = h.dir.path().join("media");
        std::fs::create_dir_all(&media).unwrap();
        let vars: Vec<(&str, String)> = vec![
            ("SEVA_DATABASE_URL", h.url.clone()),
            ("SEVA_STATIONS_CSV", stations.display().to_string()),
            ("SEVA_MEDIA_DIR", media.display().to_string()),
            ("SEVA_SHUTDOWN_GRACE", "5".to_owned()),
        ];
        let mut vars = vars;
        if let Some(url) = &events_url {
            vars.push(("SEVA_EVENTS_URL", url.clone()));
            vars.push(("SEVA_EVENTS_SECRET", EVENTS_SECRET.to_owned()));
        }
        let config =
            Config::load(&move |key| vars.iter().find(|(k, _)| *k == key).map(|(_, v)| v.clone()))
                .unwrap();
        let terminal = FakeSender::new(Channel::Terminal);
        let telegram = FakeSender::new(Channel::Telegram);
        let mut senders: Vec<Arc<dyn ChannelSender>> = vec![terminal.clone(), telegram.clone()];
        senders.extend(seva::channels::events::sender(&config));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(seva::run_with(
            config,
            listener,
            async move {
                let _ = stopped.await;
            },
            senders,
        ));
        let http = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap();
        let server = Server {
            h,
            address,
            stop: Some(stop),
            task: Some(task),
            terminal,
            telegram,
            http,
            stations,
            media,
            events: events_url.is_some(),
        };
        // Ready once it answers.
        for _ in 0..100 {
            if server.http.get(server.url("/healthz")).send().await.is_ok() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        server
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.address)
    }

    /// A runtime on the same database file, as another process would have.
    fn runtime(&self) -> Runtime {
        let stations = seva::stations::load(&self.stations).unwrap();
        Runtime::builder(self.h.store.clone())
            .stations(stations)
            .clock(self.h.clock())
            .engine(Arc::new(common::scripted) as Engine)
            .events(self.events)
            .build()
    }

    /// Files a complaint at Kotwali for terminal citizen `who` speaking `lang`, through the
    /// citizen's turn transaction (as the runtime does on "confirm"). Not through the inbox:
    /// serve's own sweeper would race to process those messages with the real engine.
    async fn file(&self, who: &str, lang: &str, draft: &str) -> String {
        let rt = self.runtime();
        let store = &self.h.store;
        let citizen = store
            .ensure_citizen(Channel::Terminal, who, self.h.time())
            .await
            .unwrap();
        let reference = Reference::generate(ReportKind::Complaint, rand::random());
        let mut turn = store.lock_citizen(citizen.id).await.unwrap();
        turn.set_lang(Lang::from_code(lang).unwrap()).await.unwrap();
        turn.file_report(
            &common::report(draft, reference),
            self.h.time(),
            rt.notices(),
        )
        .await
        .unwrap();
        turn.commit().await.unwrap();
        reference.to_string()
    }

    /// The citizen writes `stop`: no more pushes.
    async fn stop_pushes(&self, who: &str) {
        let store = &self.h.store;
        let citizen = store
            .find_citizen(Channel::Terminal, who)
            .await
            .unwrap()
            .unwrap();
        let mut turn = store.lock_citizen(citizen.id).await.unwrap();
        turn.set_pushes(false).await.unwrap();
        turn.commit().await.unwrap();
    }

    async fn token(&self, name: &str, scope: &str) -> String {
        let token = new_token();
        self.h
            .store
            .add_officer(
                name,
                &Scope::parse(scope).unwrap(),
                &hash_token(&token),
                common::START,
            )
            .await
            .unwrap();
        token
    }

    async fn get(&self, path: &str, token: Option<&str>) -> (StatusCode, Value) {
        let mut req = self.http.get(self.url(path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let resp = req.send().await.unwrap();
        let status = StatusCode::from_u16(resp.status().as_u16()).unwrap();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    async fn post(&self, path: &str, token: &str, body: Value) -> (StatusCode, Value) {
        let resp = self
            .http
            .post(self.url(path))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = StatusCode::from_u16(resp.status().as_u16()).unwrap();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    /// Waits until `fake` has delivered a message matching `want`.
    async fn delivered(
        &self,
        fake: &FakeSender,
        want: impl Fn(&OutboundMessage) -> bool,
    ) -> OutboundMessage {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(m) = fake.sent.lock().unwrap().iter().find(|m| want(m)) {
                return m.clone();
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "not delivered in time"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let result = tokio::time::timeout(Duration::from_secs(10), task)
                .await
                .unwrap()
                .unwrap();
            assert!(result.is_ok(), "{result:?}");
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_report_outside_the_scope_is_404_exactly_like_a_missing_one_and_a_bad_token_is_401() {
    for db in common::TestDb::all().await {
        let s = Server::start(db, None).await;
        let reference = s.file("asha", "en", "d1").await;
        let kotwali = s.token("si-kotwali", "station:patna-kotwali").await;
        let gandhi = s.token("si-gandhi", "station:patna-gandhi-maidan").await;
        let district = s.token("sp-patna", "district:patna").await;
        let other_district = s.token("sp-gaya", "district:gaya").await;
        let state = s.token("dgp", "state").await;

        let path = format!("/api/v1/reports/{reference}");
        for token in [&kotwali, &district, &state] {
            let (status, body) = s.get(&path, Some(token)).await;
            assert_eq!(status, StatusCode::OK, "{body}");
            assert_eq!(body["report"]["reference"], reference);
        }
        // Read leniently, like citizens type it.
        let lenient = format!(
            "/api/v1/reports/{}",
            reference.to_lowercase().replace('-', "")
        );
        assert_eq!(s.get(&lenient, Some(&kotwali)).await.0, StatusCode::OK);

        let (status, outside) = s.get(&path, Some(&gandhi)).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        let (status, missing) = s.get("/api/v1/reports/C-7K3Q-9XM4-R", Some(&gandhi)).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(
            outside, missing,
            "out of scope answers exactly like missing"
        );
        assert_eq!(
            outside,
            json!({"code": "not_found", "message": "no report with this reference"})
        );
        assert_eq!(
            s.get(&path, Some(&other_district)).await.0,
            StatusCode::NOT_FOUND
        );
        let (status, _) = s
            .post(
                &format!("{path}/status"),
                &gandhi,
                json!({"status": "acknowledged"}),
            )
            .await;
        assert_eq!(
            status,
            StatusCode::NOT_FOUND,
            "no changes outside the scope either"
        );
        let (_, listed) = s.get("/api/v1/reports", Some(&gandhi)).await;
        assert_eq!(listed["reports"], json!([]));

        for token in [None, Some("seva_not-a-real-token"), Some("")] {
            let (status, body) = s.get(&path, token).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED);
            assert_eq!(body["code"], "unauthorized");
        }
        let resp = s
            .http
            .get(s.url("/api/v1/reports"))
            .header("Authorization", format!("Basic {kotwali}"))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 401);
        assert!(resp.headers().contains_key("www-authenticate"));

        // A revoked token is 401 at once.
        assert_eq!(
            s.h.store
                .revoke_officer("si-kotwali", common::START)
                .await
                .unwrap(),
            1
        );
        assert_eq!(
            s.get(&path, Some(&kotwali)).await.0,
            StatusCode::UNAUTHORIZED
        );
        s.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_status_change_pushes_once_to_the_citizen_in_hindi_with_template_parameters() {
    for db in common::TestDb::all().await {
        let s = Server::start(db, None).await;
        let reference = s.file("asha", "hi", "d1").await;
        let officer = s.token("si-kotwali", "station:patna-kotwali").await;

        let (status, body) = s
            .post(
                &format!("/api/v1/reports/{reference}/status"),
                &officer,
                json!({
                    "status": "acknowledged",
                    "note": "कल थाने आएं।\nसाथ में पहचान पत्र लाएं।",
                    "internal_note": "assign SI Verma",
                }),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["report"]["status"], "acknowledged");
        assert_eq!(
            body["report"]["allowed_next"],
            json!(["under_inquiry", "closed"])
        );
        assert_eq!(body["change"]["actor"], "si-kotwali");
        assert_eq!(body["citizen_notified"], true);

        let push = s
            .delivered(&s.terminal, |m| m.kind == OutboxKind::Push)
            .await;
        assert_eq!(push.recipient, "asha");
        assert_eq!(push.lang, Lang::Hi);
        assert_eq!(
            push.rendered.body,
            format!(
                "{reference} पर नई जानकारी: थाने को मिल गई।\nथाना: कोतवाली\n\nपुलिस की टिप्पणी: कल थाने आएं।\nसाथ में पहचान पत्र लाएं।"
            )
        );
        assert!(
            !push.rendered.body.contains("Verma"),
            "internal notes stay internal"
        );
        let template = push.template.clone().unwrap();
        assert_eq!(template.reference, reference);
        assert_eq!(template.status, "थाने को मिल गई");
        assert_eq!(template.station, "कोतवाली");
        assert_eq!(template.note, "कल थाने आएं। साथ में पहचान पत्र लाएं।");

        // The same change again is refused and notifies nobody.
        let (status, body) = s
            .post(
                &format!("/api/v1/reports/{reference}/status"),
                &officer,
                json!({"status": "acknowledged"}),
            )
            .await;
        assert_eq!(status, StatusCode::CONFLICT);
        assert_eq!(body["code"], "illegal_transition");
        tokio::time::sleep(Duration::from_millis(300)).await;
        let pushes = s
            .terminal
            .sent
            .lock()
            .unwrap()
            .iter()
            .filter(|m| m.kind == OutboxKind::Push)
            .count();
        assert_eq!(pushes, 1);
        let rows: i64 = sqlx::query_scalar("select count(*) from outbox where kind = 'push'")
            .fetch_one(&s.h.db().await)
            .await
            .unwrap();
        assert_eq!(rows, 1);
        s.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn refusals_are_json_with_stable_codes_naming_what_is_allowed() {
    for db in common::TestDb::all().await {
        let s = Server::start(db, None).await;
        let reference = s.file("asha", "en", "d1").await;
        let officer = s.token("si-kotwali", "station:patna-kotwali").await;
        let path = format!("/api/v1/reports/{reference}/status");

        let (status, body) = s
            .post(&path, &officer, json!({"status": "under_inquiry"}))
            .await;
        assert_eq!(status, StatusCode::CONFLICT);
        assert_eq!(
            body,
            json!({
                "code": "illegal_transition",
                "message": "cannot move from submitted to under_inquiry; allowed next: acknowledged, closed"
            })
        );
        let cases = [
            (json!({"status": "closed"}), 422, "reason_required"),
            (json!({"status": "returned"}), 422, "unknown_status"),
            (
                json!({"status": "acknowledged", "reason": "x"}),
                422,
                "unexpected_field",
            ),
            (
                json!({"status": "acknowledged", "fir": "1"}),
                400,
                "invalid_json",
            ),
            (json!({"note": "no status"}), 400, "invalid_json"),
        ];
        for (request, code, name) in cases {
            let (status, body) = s.post(&path, &officer, request.clone()).await;
            assert_eq!(status.as_u16(), code, "{request} → {body}");
            assert_eq!(body["code"], name, "{request} → {body}");
            assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()));
        }
        for next in ["acknowledged", "under_inquiry"] {
            let (status, body) = s.post(&path, &officer, json!({"status": next})).await;
            assert_eq!(status, StatusCode::OK, "{body}");
        }
        let (status, body) = s
            .post(&path, &officer, json!({"status": "fir_registered"}))
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(body["code"], "fir_number_required");
        let (status, body) = s
            .post(
                &path,
                &officer,
                json!({"status": "fir_registered", "fir_number": "0042/2026", "note": "FIR lodged"}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["report"]["fir_number"], "0042/2026");

        let push = s
            .delivered(&s.terminal, |m| {
                m.kind == OutboxKind::Push && m.rendered.body.contains("0042/2026")
            })
            .await;
        assert_eq!(push.lang, Lang::En);
        assert_eq!(
            push.rendered.body,
            format!(
                "Update on {reference}: FIR registered.\nPolice station: Kotwali\n\nFIR number: 0042/2026\n\nNote from the police: FIR lodged"
            )
        );
        assert_eq!(
            push.template.unwrap().note,
            "FIR number: 0042/2026 — FIR lodged"
        );

        let (status, body) = s
            .post(
                &format!("/api/v1/reports/{reference}/transfer"),
                &officer,
                json!({"station": "patna-nowhere"}),
            )
            .await;
        assert_eq!(
            (status.as_u16(), body["code"].as_str()),
            (422, Some("unknown_station"))
        );
        s.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn no_push_after_the_citizen_wrote_stop() {
    for db in common::TestDb::all().await {
        let s = Server::start(db, None).await;
        let reference = s.file("asha", "en", "d1").await;
        s.stop_pushes("asha").await;
        let officer = s.token("dgp", "state").await;
        let (status, body) = s
            .post(
                &format!("/api/v1/reports/{reference}/status"),
                &officer,
                json!({"status": "acknowledged", "note": "seen"}),
            )
            .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["citizen_notified"], false);
        let pushes: i64 = sqlx::query_scalar("select count(*) from outbox where kind = 'push'")
            .fetch_one(&s.h.db().await)
            .await
            .unwrap();
        assert_eq!(pushes, 0);
        // The change itself is recorded all the same.
        let (_, detail) = s
            .get(&format!("/api/v1/reports/{reference}"), Some(&officer))
            .await;
        assert_eq!(detail["history"][1]["note"], "seen");
        s.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn new_reports_alert_the_station_chat_and_a_transfer_alerts_the_new_station() {
    for db in common::TestDb::all().await {
        let s = Server::start(db, None).await;
        let reference = s.file("asha", "en", "d1").await;
        let alert = s
            .delivered(&s.telegram, |m| m.kind == OutboxKind::Alert)
            .await;
        assert_eq!(alert.recipient, "-1001");
        assert_eq!(alert.lang, Lang::Hi, "in the station's language");
        assert_eq!(
            alert.rendered.body,
            format!("कोतवाली के लिए नई शिकायत {reference}। प्रकार: चोरी।")
        );

        let kotwali = s.token("si-kotwali", "station:patna-kotwali").await;
        let gandhi = s.token("si-gandhi", "station:patna-gandhi-maidan").await;
        let (status, body) = s
            .post(
                &format!("/api/v1/reports/{reference}/transfer"),
                &kotwali,
                json!({"station": "patna-gandhi-maidan", "note": "Closer to the market"}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["report"]["station_id"], "patna-gandhi-maidan");
        assert_eq!(body["report"]["status"], "submitted");
        assert_eq!(body["change"]["action"], "transfer");
        assert_eq!(body["station_alerted"], true);
        assert_eq!(body["citizen_notified"], true);

        let moved = s.delivered(&s.telegram, |m| m.recipient == "-1002").await;
        assert_eq!(moved.lang, Lang::En);
        assert_eq!(
            moved.rendered.body,
            format!("Transferred to Gandhi Maidan: complaint {reference}. Category: Theft.")
        );
        let told = s
            .delivered(&s.terminal, |m| m.kind == OutboxKind::Push)
            .await;
        assert_eq!(
            told.rendered.body,
            format!(
                "Your report {reference} has been transferred to Gandhi Maidan.\n\nNote from the police: Closer to the market"
            )
        );

        let path = format!("/api/v1/reports/{reference}");
        assert_eq!(s.get(&path, Some(&kotwali)).await.0, StatusCode::NOT_FOUND);
        let (status, detail) = s.get(&path, Some(&gandhi)).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(detail["history"][1]["from_station"], "patna-kotwali");
        assert_eq!(detail["history"][1]["actor"], "si-kotwali");
        s.stop().await;
    }
}

fn hmac_hex(timestamp: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(EVENTS_SECRET.as_bytes()).unwrap();
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

#[tokio::test(flavor = "multi_thread")]
async fn signed_events_reach_the_back_office_and_are_retried_after_a_500() {
    for db in common::TestDb::all().await {
        let (receiver, url) = Receiver::start(1).await;
        let s = Server::start(db, Some(url)).await;
        let reference = s.file("asha", "en", "d1").await;
        let officer = s.token("si-kotwali", "station:patna-kotwali").await;
        let (status, _) = s
            .post(
                &format!("/api/v1/reports/{reference}/status"),
                &officer,
                json!({"status": "acknowledged", "note": "seen", "internal_note": "secret"}),
            )
            .await;
        assert_eq!(status, StatusCode::OK);

        // The first POST gets a 500; the dispatcher retries after its backoff (2 s).
        let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
        while receiver.requests().len() < 3 {
            assert!(
                tokio::time::Instant::now() < deadline,
                "events not delivered: {} requests",
                receiver.requests().len()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let requests = receiver.requests();
        let mut delivered = Vec::new();
        for (headers, body) in &requests {
            let header = |name: &str| headers.get(name).unwrap().to_str().unwrap().to_owned();
            let timestamp = header("x-seva-timestamp");
            assert_eq!(
                header("x-seva-signature"),
                format!("sha256={}", hmac_hex(&timestamp, body)),
                "signed over timestamp.body"
            );
            assert_eq!(header("content-type"), "application/json");
            let age = chrono::Utc::now().timestamp() - timestamp.parse::<i64>().unwrap();
            assert!((0..60).contains(&age));
            let event: Value = serde_json::from_slice(body).unwrap();
            delivered.push((header("x-seva-event-id"), event));
        }
        // The retried event keeps its id; the id is the outbox row's.
        assert_eq!(delivered[0].0, delivered[1].0);
        assert_eq!(delivered[0].1, delivered[1].1);
        let created = &delivered[1].1;
        assert_eq!(created["type"], "report.created");
        assert_eq!(created["version"], 1);
        assert_eq!(created["report"]["reference"], reference);
        assert_eq!(
            created["report"]["description"],
            "cycle stolen near the market"
        );
        assert!(created["occurred_at"].as_str().unwrap().ends_with('Z'));
        let changed = &delivered[2].1;
        assert_eq!(changed["type"], "report.status_changed");
        assert_eq!(changed["change"]["from"], "submitted");
        assert_eq!(changed["change"]["to"], "acknowledged");
        assert_eq!(changed["change"]["note"], "seen");
        assert!(!String::from_utf8_lossy(&requests[2].1).contains("secret"));
        // The receiver sees a request before the dispatcher records its answer.
        let mut ids: Vec<i64> = Vec::new();
        while ids.len() < 2 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
            ids = sqlx::query_scalar(
                "select id from outbox where kind = 'event' and status = 'sent' order by id",
            )
            .fetch_all(&s.h.db().await)
            .await
            .unwrap();
        }
        assert_eq!(
            ids.iter().map(|i| i.to_string()).collect::<Vec<_>>(),
            [delivered[1].0.clone(), delivered[2].0.clone()]
        );
        s.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn listing_filters_pages_with_a_cursor_and_every_read_and_change_is_audited() {
    for db in common::TestDb::all().await {
        let s = Server::start(db, None).await;
        let mut refs = Vec::new();
        for i in 0..3 {
            refs.push(s.file(&format!("c{i}"), "en", &format!("d{i}")).await);
        }
        let officer = s.token("sp-patna", "district:patna").await;
        let (status, page) = s.get("/api/v1/reports?limit=2", Some(&officer)).await;
        assert_eq!(status, StatusCode::OK);
        let listed: Vec<&str> = page["reports"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["reference"].as_str().unwrap())
            .collect();
        assert_eq!(listed, [refs[2].as_str(), refs[1].as_str()], "newest first");
        let cursor = page["next_cursor"].as_str().unwrap();
        let (_, next) = s
            .get(
                &format!("/api/v1/reports?limit=2&cursor={cursor}"),
                Some(&officer),
            )
            .await;
        assert_eq!(next["reports"][0]["reference"], refs[0]);
        assert_eq!(next["next_cursor"], Value::Null);

        s.post(
            &format!("/api/v1/reports/{}/status", refs[1]),
            &officer,
            json!({"status": "acknowledged"}),
        )
        .await;
        let (_, acked) = s
            .get("/api/v1/reports?status=acknowledged", Some(&officer))
            .await;
        assert_eq!(acked["reports"].as_array().unwrap().len(), 1);
        assert_eq!(acked["reports"][0]["reference"], refs[1]);
        for (query, n) in [
            ("kind=complaint&station=patna-kotwali", 3),
            ("kind=lost", 0),
            ("station=patna-danapur", 0),
            ("from=2026-11-28&to=2026-11-28", 3),
            ("to=2026-11-27", 0),
        ] {
            let (status, body) = s
                .get(&format!("/api/v1/reports?{query}"), Some(&officer))
                .await;
            assert_eq!(status, StatusCode::OK, "{query}: {body}");
            assert_eq!(body["reports"].as_array().unwrap().len(), n, "{query}");
        }
        for (query, code) in [
            ("kind=bicycle", "invalid_query"),
            ("from=28-11-2026", "invalid_query"),
            ("limit=0", "invalid_query"),
            ("cursor=abc", "invalid_cursor"),
        ] {
            let (status, body) = s
                .get(&format!("/api/v1/reports?{query}"), Some(&officer))
                .await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{query}");
            assert_eq!(body["code"], code, "{query}");
        }

        s.get(&format!("/api/v1/reports/{}", refs[0]), Some(&officer))
            .await;
        let log = s.h.store.audit_log(None, 100).await.unwrap();
        assert!(
            log.iter()
                .all(|e| e.actor == "sp-patna" && e.officer_id.is_some())
        );
        let first = &log[0];
        assert_eq!(first.action, "report.list");
        let detail: Value = serde_json::from_str(first.detail.as_deref().unwrap()).unwrap();
        assert_eq!(detail["references"], json!([refs[2], refs[1]]));
        let actions: Vec<(&str, Option<&str>)> = log
            .iter()
            .filter(|e| e.action != "report.list")
            .map(|e| (e.action.as_str(), e.reference.as_deref()))
            .collect();
        assert_eq!(
            actions,
            [
                ("report.status", Some(refs[1].as_str())),
                ("report.read", Some(refs[0].as_str()))
            ]
        );
        s.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn attachments_are_served_from_the_media_dir_within_scope_only() {
    for db in common::TestDb::all().await {
        let s = Server::start(db, None).await;
        let reference = s.file("asha", "en", "d1").await;
        let officer = s.token("si-kotwali", "station:patna-kotwali").await;
        let outsider = s.token("si-gandhi", "station:patna-gandhi-maidan").await;
        let path = format!("/api/v1/reports/{reference}/attachments/1");

        let (status, body) = s.get(&path, Some(&officer)).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(body["code"], "attachment_unavailable");

        // The scripted report's photo has file id `photo-1`: a download names it `photo-1.jpg`.
        std::fs::write(s.media.join("photo-1.jpg"), b"\xff\xd8jpeg").unwrap();
        let resp = s
            .http
            .get(s.url(&path))
            .bearer_auth(&officer)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.headers()["content-type"], "image/jpeg");
        assert_eq!(resp.bytes().await.unwrap().as_ref(), b"\xff\xd8jpeg");

        for (token, p) in [
            (&outsider, path.clone()),
            (
                &officer,
                format!("/api/v1/reports/{reference}/attachments/2"),
            ),
            (
                &officer,
                format!("/api/v1/reports/{reference}/attachments/x"),
            ),
        ] {
            let (status, body) = s.get(&p, Some(token)).await;
            assert_eq!(status, StatusCode::NOT_FOUND, "{p}");
            assert_eq!(body["code"], "not_found");
        }
        let (_, detail) = s
            .get(&format!("/api/v1/reports/{reference}"), Some(&officer))
            .await;
        assert_eq!(detail["attachments"][0]["url"], path);
        assert_eq!(detail["attachments"][0]["mime"], "image/jpeg");
        s.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_openapi_document_is_valid_json_listing_every_route() {
    for db in common::TestDb::all().await {
        let s = Server::start(db, None).await;
        let (status, doc) = s.get("/api/v1/openapi.json", None).await;
        assert_eq!(status, StatusCode::OK);
        assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
        let paths = doc["paths"].as_object().unwrap();
        for (path, method) in [
            ("/api/v1/reports", "get"),
            ("/api/v1/reports/{reference}", "get"),
            ("/api/v1/reports/{reference}/status", "post"),
            ("/api/v1/reports/{reference}/transfer", "post"),
            ("/api/v1/reports/{reference}/attachments/{n}", "get"),
        ] {
            assert!(paths[path][method].is_object(), "{path} {method}");
        }
        assert_eq!(
            doc["components"]["securitySchemes"]["bearer"]["scheme"],
            "bearer"
        );
        for schema in [
            "StatusRequest",
            "TransferRequest",
            "ErrorJson",
            "ReportDetailJson",
        ] {
            assert!(doc["components"]["schemas"][schema].is_object(), "{schema}");
        }
        s.stop().await;
    }
}

/// Runs the `seva` binary on the server's database and stations file.
fn seva(s: &Server, args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_seva"))
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("SEVA_DATABASE_URL", &s.h.url)
        .env("SEVA_STATIONS_CSV", &s.stations)
        .env("SEVA_LOG_FORMAT", "text")
        .output()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_shell_adds_and_revokes_officers_and_acts_on_reports() {
    for db in common::TestDb::all().await {
        let s = Server::start(db, None).await;
        let reference = s.file("asha", "en", "d1").await;

        let out = seva(
            &s,
            &[
                "officer",
                "add",
                "--name",
                "si-verma",
                "--scope",
                "station:patna-kotwali",
            ],
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let stdout = String::from_utf8(out.stdout).unwrap();
        let token = stdout.trim_end_matches('\n');
        assert!(
            !token.contains('\n'),
            "only the token on stdout: {stdout:?}"
        );
        assert!(token.starts_with("seva_") && token.len() == 69, "{token:?}");
        let stderr = String::from_utf8(out.stderr).unwrap();
        assert!(
            stderr.contains("si-verma") && !stderr.contains(token),
            "{stderr}"
        );
        let stored: Vec<String> = sqlx::query_scalar("select token_hash from officers")
            .fetch_all(&s.h.db().await)
            .await
            .unwrap();
        assert_eq!(stored, [hash_token(token)], "stored hashed, never in clear");

        let path = format!("/api/v1/reports/{reference}");
        assert_eq!(s.get(&path, Some(token)).await.0, StatusCode::OK);

        let bad = seva(
            &s,
            &[
                "officer",
                "add",
                "--name",
                "x",
                "--scope",
                "station:nowhere",
            ],
        );
        assert!(!bad.status.success());
        assert!(bad.stdout.is_empty());

        let set = seva(
            &s,
            &[
                "report",
                "set-status",
                &reference,
                "closed",
                "--note",
                "Resolved at the station",
            ],
        );
        assert!(!set.status.success(), "closing needs a reason");
        assert!(String::from_utf8_lossy(&set.stderr).contains("needs a reason"));
        let set = seva(
            &s,
            &[
                "report",
                "set-status",
                &reference,
                "acknowledged",
                "--note",
                "Seen",
            ],
        );
        assert!(
            set.status.success(),
            "{}",
            String::from_utf8_lossy(&set.stderr)
        );
        assert_eq!(
            String::from_utf8(set.stdout).unwrap().trim(),
            format!("{reference} submitted -> acknowledged")
        );
        let moved = seva(&s, &["report", "transfer", &reference, "patna-danapur"]);
        assert!(
            moved.status.success(),
            "{}",
            String::from_utf8_lossy(&moved.stderr)
        );
        let shown = seva(&s, &["report", "show", &reference.to_lowercase()]);
        assert!(shown.status.success());
        let shown = String::from_utf8(shown.stdout).unwrap();
        assert!(
            shown.contains("status       acknowledged (next: under_inquiry, closed)"),
            "{shown}"
        );
        assert!(
            shown.contains("station      patna-danapur (Danapur)"),
            "{shown}"
        );
        assert!(
            shown.contains("transfer patna-kotwali -> patna-danapur  by cli"),
            "{shown}"
        );
        let json = seva(&s, &["report", "show", &reference, "--json"]);
        let json: Value = serde_json::from_slice(&json.stdout).unwrap();
        assert_eq!(json["report"]["station_id"], "patna-danapur");

        // The officer's station lost the report; revoking ends the token.
        assert_eq!(s.get(&path, Some(token)).await.0, StatusCode::NOT_FOUND);
        let revoked = seva(&s, &["officer", "revoke", "si-verma"]);
        assert!(revoked.status.success());
        assert_eq!(s.get(&path, Some(token)).await.0, StatusCode::UNAUTHORIZED);
        assert!(
            !seva(&s, &["officer", "revoke", "si-verma"])
                .status
                .success()
        );

        // A token given a lifetime stops working on its own when it runs out.
        let out = seva(
            &s,
            &[
                "officer",
                "add",
                "--name",
                "si-temp",
                "--scope",
                "state",
                "--expires-in",
                "30",
            ],
        );
        assert!(out.status.success());
        assert!(String::from_utf8_lossy(&out.stderr).contains("expires in 30 day"));
        let temp = String::from_utf8(out.stdout).unwrap().trim().to_owned();
        let db = s.h.db().await;
        let expires_at: i64 =
            sqlx::query_scalar("select expires_at from officers where name = 'si-temp'")
                .fetch_one(&db)
                .await
                .unwrap();
        let in_30_days = chrono::Utc::now().timestamp() + 30 * 24 * 3600;
        assert!((expires_at - in_30_days).abs() < 60, "{expires_at}");
        assert_eq!(s.get(&path, Some(&temp)).await.0, StatusCode::OK);
        sqlx::query("update officers set expires_at = $1 where name = 'si-temp'")
            .bind(chrono::Utc::now().timestamp() - 1)
            .execute(&db)
            .await
            .unwrap();
        let (status, body) = s.get(&path, Some(&temp)).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
        let never = seva(
            &s,
            &[
                "officer",
                "add",
                "--name",
                "x",
                "--scope",
                "state",
                "--expires-in",
                "0",
            ],
        );
        assert!(
            !never.status.success(),
            "a token that never works is refused"
        );

        let actions: Vec<String> =
            s.h.store
                .audit_log(Some(&reference), 50)
                .await
                .unwrap()
                .into_iter()
                .filter(|e| e.actor == "cli")
                .map(|e| e.action)
                .collect();
        assert_eq!(
            actions,
            [
                "report.status",
                "report.status",
                "report.transfer",
                "report.read",
                "report.read"
            ],
            "the refused close is audited too"
        );
        s.stop().await;
    }
}
