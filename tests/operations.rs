//! Operations (spec §5–6): `/metrics` after real traffic, `/readyz` while draining, SIGTERM on
//! the real `seva` binary with a request in flight, and JSON logs that carry no phone number
//! and no message text. Every server here talks only to the in-process fakes of
//! `webhook::testing` and `bot::testing`, on 127.0.0.1.

mod common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;

use bot::testing::{FakeBotApi, FakeError as BotError};
use reqwest::StatusCode;
use serde_json::{Value, json};
use seva::config::Config;
use seva::store::{OutboxStatus, Store};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use webhook::testing::{self, FakeError, FakeGraph};

const APP_SECRET: &str = "ops-app-secret";
const VERIFY_TOKEN: &str = "ops-verify-token";
const ACCESS_TOKEN: &str = "EAAG-ops-access-token";
const BOT_TOKEN: &str = "4343:seva-ops-test";
const WAIT: Duration = Duration::from_secs(20);

/// Personal data the journey below sends; none of it may reach a log line at info level.
const PHONE: &str = "919812345678";
const NATIONAL: &str = "9812345678";
const NAME: &str = "Sunita Devi";
const PROFILE_NAME: &str = "Sunita";
const DESCRIPTION: &str = "Brown leather, a bus pass inside";
const PLACE: &str = "Gandhi Maidan bus stand";

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

fn stations_csv() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("config/stations.example.csv")
        .display()
        .to_string()
}

/// Settings of a server with its database in `dir`, plus `extra`.
fn base_vars(dir: &Path, extra: &[(&str, String)]) -> Vec<(String, String)> {
    let mut vars = vec![
        (
            "SEVA_DATABASE_URL".to_owned(),
            format!("sqlite://{}", dir.join("data/seva.db").display()),
        ),
        ("SEVA_STATIONS_CSV".to_owned(), stations_csv()),
        (
            "SEVA_MEDIA_DIR".to_owned(),
            dir.join("media").display().to_string(),
        ),
        ("SEVA_SHUTDOWN_GRACE".to_owned(), "5".to_owned()),
    ];
    for (k, v) in extra {
        vars.retain(|(key, _)| key != k);
        vars.push(((*k).to_owned(), v.clone()));
    }
    vars
}

/// WhatsApp against the fake Graph API at `graph_url`.
fn whatsapp_vars(graph_url: &str) -> Vec<(&'static str, String)> {
    vec![
        ("WHATSAPP_APP_SECRET", APP_SECRET.to_owned()),
        ("WHATSAPP_VERIFY_TOKEN", VERIFY_TOKEN.to_owned()),
        ("WHATSAPP_ACCESS_TOKEN", ACCESS_TOKEN.to_owned()),
        (
            "WHATSAPP_PHONE_NUMBER_ID",
            testing::PHONE_NUMBER_ID.to_owned(),
        ),
        ("WHATSAPP_API_URL", graph_url.to_owned()),
    ]
}

fn config(vars: Vec<(String, String)>) -> Config {
    Config::load(&move |key| vars.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone())).unwrap()
}

fn db_url(dir: &Path) -> String {
    format!("sqlite://{}", dir.join("data/seva.db").display())
}

/// `seva::run` in this process, on 127.0.0.1:0.
struct InProcess {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<(), seva::Error>>>,
}

impl InProcess {
    async fn start(config: Config) -> InProcess {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        assert!(addr.ip().is_loopback());
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(seva::run(config, listener, async move {
            let _ = stopped.await;
        }));
        wait_healthy(addr).await;
        InProcess {
            addr,
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// Asks it to stop (what SIGTERM does for `seva serve`).
    fn signal(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }

    async fn stopped(&mut self) -> Result<(), seva::Error> {
        self.signal();
        let task = self.task.take().expect("running");
        tokio::time::timeout(WAIT, task)
            .await
            .expect("serve stops")
            .unwrap()
    }
}

async fn wait_healthy(addr: SocketAddr) {
    let http = client();
    let deadline = Instant::now() + WAIT;
    loop {
        if let Ok(r) = http.get(format!("http://{addr}/healthz")).send().await
            && r.status() == StatusCode::OK
        {
            return;
        }
        assert!(Instant::now() < deadline, "seva never answered /healthz");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn scrape(addr: SocketAddr) -> String {
    let r = client()
        .get(format!("http://{addr}/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let content_type = r.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(
        content_type.starts_with("text/plain; version=0.0.4"),
        "{content_type}"
    );
    r.text().await.unwrap()
}

/// The value of one series (`name{labels}` exactly as rendered), if present.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|l| {
        l.strip_prefix(series)?
            .strip_prefix(' ')?
            .trim()
            .parse()
            .ok()
    })
}

fn at_least(text: &str, series: &str, min: f64) {
    let value = sample(text, series).unwrap_or_else(|| panic!("no {series} in\n{text}"));
    assert!(value >= min, "{series} = {value}, expected at least {min}");
}

/// Every line is a comment or `name{labels} value` with a number.
fn assert_exposition_format(text: &str) {
    for line in text.lines() {
        if line.starts_with("# HELP ") || line.starts_with("# TYPE ") {
            continue;
        }
        let (series, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("{line}"));
        assert!(
            value.parse::<f64>().is_ok() || value == "+Inf" || value == "NaN",
            "{line}"
        );
        let name = series.split('{').next().unwrap();
        assert!(
            name.starts_with("seva_")
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
            "{line}"
        );
        assert!(
            !series.contains('{') || series.ends_with('}'),
            "labels: {line}"
        );
    }
}

/// One WhatsApp citizen writing to a server through signed webhooks.
struct Citizen {
    addr: SocketAddr,
    http: reqwest::Client,
    store: Store,
    next: u32,
}

impl Citizen {
    async fn new(addr: SocketAddr, db_url: &str) -> Citizen {
        Citizen {
            addr,
            http: client(),
            // The server has migrated the database by now.
            store: Store::connect(db_url).await.unwrap(),
            next: 0,
        }
    }

    fn wamid(&mut self) -> String {
        self.next += 1;
        format!("wamid.HBgMOTE5ODEyMzQ1Njc4FQIAEhggOPS{:08}A==", self.next)
    }

    fn text(&mut self, body: &str) -> Value {
        let id = self.wamid();
        fresh(testing::text_message(PHONE, &id, body))
    }

    fn button(&mut self, id: &str) -> Value {
        let wamid = self.wamid();
        fresh(testing::button_reply(PHONE, &wamid, id, "title"))
    }

    fn row(&mut self, id: &str) -> Value {
        let wamid = self.wamid();
        fresh(testing::list_reply(PHONE, &wamid, id, "title"))
    }

    async fn post(&self, message: &Value) -> StatusCode {
        let notification =
            testing::notification(&[(PHONE, PROFILE_NAME)], vec![message.clone()], vec![]);
        let (body, sig) = testing::signed(APP_SECRET, &notification);
        self.http
            .post(format!("http://{}/webhook/whatsapp", self.addr))
            .header("content-type", "application/json")
            .header("x-hub-signature-256", sig)
            .body(body)
            .send()
            .await
            .unwrap()
            .status()
    }

    /// Posts a message and waits until it is handled and its replies are sent (or dead).
    async fn say(&self, message: Value) {
        assert_eq!(self.post(&message).await, StatusCode::OK);
        self.settle().await;
    }

    async fn settle(&self) {
        let deadline = Instant::now() + WAIT;
        loop {
            let unprocessed = self.store.citizens_with_unprocessed().await.unwrap();
            let undelivered = self
                .store
                .list_outbox(false, 1000)
                .await
                .unwrap()
                .into_iter()
                .filter(|r| matches!(r.status, OutboxStatus::Pending | OutboxStatus::Sending))
                .count();
            if unprocessed.is_empty() && undelivered == 0 {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "not settled: {} citizens waiting, {undelivered} undelivered",
                unprocessed.len()
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }
}

/// Sets the message's timestamp to now (the builders use a fixed one).
fn fresh(mut message: Value) -> Value {
    message["timestamp"] = json!(now().to_string());
    message
}

/// A lost wallet reported in English, start to reference; returns the reference.
async fn lost_wallet(c: &mut Citizen, fake: &FakeGraph) -> String {
    let steps = [
        c.text("Hello"),
        c.button("lang:en"),
        c.row("menu:lost"),
        c.row("item:wallet"),
        c.text(DESCRIPTION),
        c.button("when:today"),
        c.text(PLACE),
        c.row("st:patna-gandhi-maidan"),
        c.text(NAME),
        c.button("phone:use"),
        c.button("review:confirm"),
    ];
    for step in steps {
        c.say(step).await;
    }
    let said: Vec<String> = fake.messages().iter().map(testing::message_text).collect();
    said.iter()
        .rev()
        .find_map(|t| common::reference_in(t, 'L'))
        .unwrap_or_else(|| panic!("no reference in {said:#?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_show_whatsapp_traffic_journeys_reports_provider_errors_and_latency() {
    let dir = tempfile::tempdir().unwrap();
    let fake = FakeGraph::start().await;
    fake.require_token(ACCESS_TOKEN);
    let mut server =
        InProcess::start(config(base_vars(dir.path(), &whatsapp_vars(&fake.url())))).await;
    let mut citizen = Citizen::new(server.addr, &db_url(dir.path())).await;

    let reference = lost_wallet(&mut citizen, &fake).await;

    // A redelivery is counted as a duplicate, not as new traffic.
    let again = citizen.text("Hello again");
    citizen.say(again.clone()).await;
    citizen.say(again).await;

    // An expired token: the reply is a dead letter, counted by Meta's code.
    fake.fail_next(FakeError::TokenExpired);
    let m = citizen.text("menu");
    citizen.say(m).await;

    // An officer API call without a token.
    let refused = client()
        .get(format!("http://{}/api/v1/reports/{reference}", server.addr))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);

    let text = scrape(server.addr).await;
    assert_exposition_format(&text);
    at_least(
        &text,
        r#"seva_inbound_total{channel="whatsapp",type="text"}"#,
        6.0,
    );
    at_least(
        &text,
        r#"seva_inbound_total{channel="whatsapp",type="choice"}"#,
        7.0,
    );
    at_least(
        &text,
        r#"seva_inbound_duplicates_total{channel="whatsapp"}"#,
        1.0,
    );
    at_least(&text, r#"seva_dialogue_steps_total{journey="lost"}"#, 9.0);
    at_least(
        &text,
        r#"seva_dialogue_steps_total{journey="language"}"#,
        1.0,
    );
    at_least(
        &text,
        r#"seva_reports_filed_total{kind="lost",channel="whatsapp"}"#,
        1.0,
    );
    at_least(
        &text,
        r#"seva_provider_errors_total{channel="whatsapp",code="190"}"#,
        1.0,
    );
    at_least(
        &text,
        r#"seva_outbox_sends_total{channel="whatsapp",kind="reply",outcome="sent"}"#,
        11.0,
    );
    at_least(
        &text,
        r#"seva_outbox_sends_total{channel="whatsapp",kind="reply",outcome="permanent"}"#,
        1.0,
    );
    // Gauges are process-wide and other tests run servers too: present is what is certain.
    for gauge in [
        r#"seva_outbox_depth{channel="whatsapp",kind="reply"}"#,
        r#"seva_outbox_oldest_age_seconds{channel="whatsapp",kind="reply"}"#,
        r#"seva_outbox_dead{channel="whatsapp",kind="reply"}"#,
        r#"seva_outbox_depth{channel="telegram",kind="push"}"#,
        "seva_http_requests_in_flight",
    ] {
        assert!(sample(&text, gauge).is_some(), "no {gauge} in\n{text}");
    }
    at_least(
        &text,
        r#"seva_http_requests_total{method="POST",route="/webhook/whatsapp",status="200"}"#,
        14.0,
    );
    at_least(
        &text,
        r#"seva_http_request_duration_seconds_bucket{method="POST",route="/webhook/whatsapp",le="+Inf"}"#,
        14.0,
    );
    assert!(
        text.contains(
            r#"seva_http_request_duration_seconds_sum{method="POST",route="/webhook/whatsapp"}"#
        ),
        "{text}"
    );
    // Route templates, never a path with a reference in it.
    at_least(
        &text,
        r#"seva_officer_requests_total{method="GET",route="/api/v1/reports/{reference}",status="401"}"#,
        1.0,
    );
    assert!(!text.contains(&reference), "a reference in a label");
    assert!(!text.contains(NATIONAL), "a phone number in a label");
    assert!(text.contains("# TYPE seva_http_request_duration_seconds histogram"));
    assert!(text.contains("# TYPE seva_outbox_depth gauge"));
    assert!(text.contains("# TYPE seva_inbound_total counter"));

    server.stopped().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_telegram_429_and_403_by_code() {
    let dir = tempfile::tempdir().unwrap();
    let api = FakeBotApi::start(BOT_TOKEN).await;
    let vars = base_vars(
        dir.path(),
        &[
            ("TELEGRAM_BOT_TOKEN", api.token().to_owned()),
            ("TELEGRAM_API_URL", api.url()),
            ("SEVA_TELEGRAM_CHAT_MPS", "50".to_owned()),
        ],
    );
    let mut server = InProcess::start(config(vars)).await;

    // 429 with retry_after: waited out, then delivered.
    api.fail_next("sendMessage", BotError::RetryAfter(1));
    api.push_text(5001, "hello");
    let deadline = Instant::now() + WAIT;
    while api.sent_texts(5001).is_empty() {
        assert!(Instant::now() < deadline, "the reply never came");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // 403: the citizen blocked the bot.
    api.fail_next("sendMessage", BotError::Blocked);
    api.push_text(5002, "hello");
    let deadline = Instant::now() + WAIT;
    let text = loop {
        let text = scrape(server.addr).await;
        if sample(
            &text,
            r#"seva_provider_errors_total{channel="telegram",code="403"}"#,
        )
        .is_some()
        {
            break text;
        }
        assert!(Instant::now() < deadline, "no 403 counted:\n{text}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    at_least(
        &text,
        r#"seva_provider_errors_total{channel="telegram",code="429"}"#,
        1.0,
    );
    at_least(
        &text,
        r#"seva_inbound_total{channel="telegram",type="text"}"#,
        2.0,
    );
    at_least(
        &text,
        r#"seva_outbox_sends_total{channel="telegram",kind="reply",outcome="retry_after"}"#,
        1.0,
    );
    server.stopped().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_answers_503_while_draining_then_the_listener_closes() {
    let dir = tempfile::tempdir().unwrap();
    let vars = base_vars(dir.path(), &[("SEVA_DRAIN_DELAY", "1.5".to_owned())]);
    let mut server = InProcess::start(config(vars)).await;
    let http = client();
    let base = format!("http://{}", server.addr);

    let ready = http.get(format!("{base}/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), StatusCode::OK);
    assert_eq!(ready.text().await.unwrap(), "ready");

    let signalled = Instant::now();
    server.signal();
    let deadline = signalled + Duration::from_secs(1);
    let draining = loop {
        let r = http.get(format!("{base}/readyz")).send().await.unwrap();
        if r.status() == StatusCode::SERVICE_UNAVAILABLE {
            break r.text().await.unwrap();
        }
        assert!(Instant::now() < deadline, "/readyz still {}", r.status());
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(draining, "draining");
    // Still alive, still serving while the load balancer takes note.
    let health = http.get(format!("{base}/healthz")).send().await.unwrap();
    assert_eq!(health.status(), StatusCode::OK);
    let metrics = http.get(format!("{base}/metrics")).send().await.unwrap();
    assert_eq!(metrics.status(), StatusCode::OK);

    server.stopped().await.unwrap();
    let took = signalled.elapsed();
    assert!(
        took >= Duration::from_millis(1400),
        "no drain delay: {took:?}"
    );
    assert!(
        took < Duration::from_secs(5),
        "past the grace period: {took:?}"
    );
    assert!(
        http.get(format!("{base}/healthz")).send().await.is_err(),
        "still listening"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_readiness_probe_there_is_no_drain_delay() {
    let dir = tempfile::tempdir().unwrap();
    let vars = base_vars(dir.path(), &[("SEVA_DRAIN_DELAY", "4".to_owned())]);
    let mut server = InProcess::start(config(vars)).await;
    let started = Instant::now();
    server.stopped().await.unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
}

/// The real `seva serve` binary, killed if the test fails.
struct Binary {
    child: Child,
    addr: SocketAddr,
    log: PathBuf,
}

impl Drop for Binary {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

impl Binary {
    /// Starts `seva serve` with exactly these settings (no other environment) on a free port.
    async fn start(dir: &Path, vars: Vec<(String, String)>) -> Binary {
        Binary::start_on(dir, vars, None).await
    }

    /// [`Binary::start`], on these CPUs only (`taskset -c`), when given.
    async fn start_on(dir: &Path, vars: Vec<(String, String)>, cpus: Option<&str>) -> Binary {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let log = dir.join("seva.log");
        let mut command = match cpus {
            Some(cpus) => {
                let mut c = Command::new("taskset");
                c.arg("-c").arg(cpus).arg(env!("CARGO_BIN_EXE_seva"));
                c
            }
            None => Command::new(env!("CARGO_BIN_EXE_seva")),
        };
        let child = command
            .arg("serve")
            .env_clear()
            .envs(vars)
            .env("SEVA_LISTEN", addr.to_string())
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let binary = Binary { child, addr, log };
        wait_healthy(addr).await;
        binary
    }

    fn sigterm(&self) {
        let status = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status()
            .unwrap();
        assert!(status.success());
    }

    async fn exit(&mut self, within: Duration) -> ExitStatus {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "seva did not exit within {within:?}; log:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_answers_the_request_in_flight_finishes_its_turn_and_exits_zero() {
    sigterm_with_a_request_in_flight(None).await;
}

/// On one core Seva runs on tokio's current-thread scheduler (`cli::async_runtime`): the
/// same request in flight is answered and the exit is as clean.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_one_core_sigterm_answers_the_request_in_flight_and_exits_zero() {
    // The first CPU this process may use: a container's CPU set need not hold CPU 0.
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let cpu = status
        .lines()
        .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
        .and_then(|list| list.trim().split([',', '-']).next().map(str::to_owned))
        .unwrap_or_else(|| "0".to_owned());
    sigterm_with_a_request_in_flight(Some(&cpu)).await;
}

async fn sigterm_with_a_request_in_flight(cpus: Option<&str>) {
    let dir = tempfile::tempdir().unwrap();
    let fake = FakeGraph::start().await;
    let mut extra = whatsapp_vars(&fake.url());
    extra.push(("SEVA_DRAIN_DELAY", "0".to_owned()));
    extra.push(("SEVA_SHUTDOWN_GRACE", "5".to_owned()));
    let mut seva = Binary::start_on(dir.path(), base_vars(dir.path(), &extra), cpus).await;
    let store = Store::connect(&db_url(dir.path())).await.unwrap();

    // A webhook request whose body is still arriving when SIGTERM comes.
    let message = fresh(testing::text_message(PHONE, "wamid.in-flight-1", "Hello"));
    let notification = testing::notification(&[(PHONE, PROFILE_NAME)], vec![message], vec![]);
    let (body, sig) = testing::signed(APP_SECRET, &notification);
    let mut conn = tokio::net::TcpStream::connect(seva.addr).await.unwrap();
    let head = format!(
        "POST /webhook/whatsapp HTTP/1.1\r\nhost: {}\r\ncontent-type: application/json\r\n\
         x-hub-signature-256: {sig}\r\ncontent-length: {}\r\n\r\n",
        seva.addr,
        body.len()
    );
    conn.write_all(head.as_bytes()).await.unwrap();
    let half = body.len() / 2;
    conn.write_all(&body[..half]).await.unwrap();
    conn.flush().await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;

    let signalled = Instant::now();
    seva.sigterm();
    // New connections are refused from now on (no drain delay configured).
    let deadline = Instant::now() + Duration::from_secs(3);
    while tokio::net::TcpStream::connect(seva.addr).await.is_ok() {
        assert!(Instant::now() < deadline, "still accepting connections");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // The request in flight is still read, stored and answered.
    conn.write_all(&body[half..]).await.unwrap();
    conn.flush().await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), conn.read_to_end(&mut answer))
        .await
        .expect("an answer")
        .unwrap();
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");

    let status = seva.exit(Duration::from_secs(7)).await;
    let took = signalled.elapsed();
    let log = seva.log();
    assert_eq!(status.code(), Some(0), "{log}");
    assert!(
        took < Duration::from_secs(5),
        "past the grace period: {took:?}\n{log}"
    );
    assert!(log.contains("seva stopped"), "{log}");

    // Its citizen's turn ran before the exit: nothing waits to be processed, and the reply
    // waits in the outbox for the next start (the dispatcher had stopped).
    assert!(store.citizens_with_unprocessed().await.unwrap().is_empty());
    let pending: Vec<_> = store
        .list_outbox(false, 100)
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.status == OutboxStatus::Pending)
        .collect();
    assert!(!pending.is_empty(), "no reply was written; log:\n{log}");
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs_of_a_whole_journey_carry_no_phone_number_and_no_message_text() {
    let dir = tempfile::tempdir().unwrap();
    let fake = FakeGraph::start().await;
    fake.require_token(ACCESS_TOKEN);
    let mut extra = whatsapp_vars(&fake.url());
    extra.push(("SEVA_LOG_FORMAT", "json".to_owned()));
    let mut seva = Binary::start(dir.path(), base_vars(dir.path(), &extra)).await;
    let mut citizen = Citizen::new(seva.addr, &db_url(dir.path())).await;
    let reference = lost_wallet(&mut citizen, &fake).await;
    // A redelivery and a provider error are logged too.
    let again = citizen.text("Hello again, my number is 98123 45678");
    citizen.say(again.clone()).await;
    citizen.say(again).await;
    fake.fail_next(FakeError::NotWhatsappUser);
    let m = citizen.text("menu");
    citizen.say(m).await;
    citizen.store.close().await;

    seva.sigterm();
    let status = seva.exit(Duration::from_secs(7)).await;
    let log = seva.log();
    assert_eq!(status.code(), Some(0), "{log}");

    let mut messages = Vec::new();
    for line in log.lines().filter(|l| !l.trim().is_empty()) {
        let entry: Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("not one JSON object per line ({e}): {line}"));
        assert!(entry.is_object(), "{line}");
        let level = entry["level"].as_str().unwrap_or_else(|| panic!("{line}"));
        assert!(
            matches!(level, "INFO" | "WARN" | "ERROR"),
            "default level is info: {line}"
        );
        assert!(entry["timestamp"].is_string(), "{line}");
        for private in [
            PHONE,
            NATIONAL,
            "98123 45678",
            NAME,
            PROFILE_NAME,
            DESCRIPTION,
            "bus pass",
            "bus stand",
            "Hello",
            ACCESS_TOKEN,
            APP_SECRET,
        ] {
            assert!(!line.contains(private), "{private:?} logged: {line}");
        }
        if let Some(m) = entry["message"].as_str() {
            messages.push(m.to_owned());
        }
    }
    // The journey was logged, by internal ids and references.
    for expected in [
        "seva is listening",
        "turns processed",
        "report filed",
        "seva stopped",
    ] {
        assert!(
            messages.iter().any(|m| m == expected),
            "no {expected:?} in {messages:#?}"
        );
    }
    assert!(log.contains(&reference), "the filing names its reference");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_that_never_finishes_does_not_hold_the_exit_past_the_grace_period() {
    let dir = tempfile::tempdir().unwrap();
    let fake = FakeGraph::start().await;
    let mut extra = whatsapp_vars(&fake.url());
    extra.push(("SEVA_DRAIN_DELAY", "0".to_owned()));
    extra.push(("SEVA_SHUTDOWN_GRACE", "2".to_owned()));
    let mut seva = Binary::start(dir.path(), base_vars(dir.path(), &extra)).await;

    // A client that sends half a request and then nothing.
    let mut conn = tokio::net::TcpStream::connect(seva.addr).await.unwrap();
    let head = "POST /webhook/whatsapp HTTP/1.1\r\nhost: seva\r\ncontent-type: application/json\r\n\
                x-hub-signature-256: sha256=00\r\ncontent-length: 1000\r\n\r\n{\"object\":";
    conn.write_all(head.as_bytes()).await.unwrap();
    conn.flush().await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;

    let signalled = Instant::now();
    seva.sigterm();
    let status = seva.exit(Duration::from_secs(6)).await;
    let took = signalled.elapsed();
    let log = seva.log();
    assert_eq!(status.code(), Some(0), "{log}");
    assert!(
        took < Duration::from_secs(3),
        "took {took:?} with a 2 s grace period\n{log}"
    );
    assert!(log.contains("grace period over"), "{log}");
    drop(conn);
}
