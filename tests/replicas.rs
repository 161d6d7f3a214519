//! Real `seva serve` processes (the compiled binary) under load: two replicas on one fresh
//! PostgreSQL database, and a single process on SQLite, receiving interleaved signed WhatsApp
//! traffic from many citizens, each walking a journey, and sending through the in-process fake
//! Graph API (`webhook::testing::FakeGraph`).
//!
//! The test plays Meta and a load balancer: each citizen's messages go one after the other
//! (the next once the previous was acknowledged with 200), alternately to the two replicas;
//! some are delivered twice (to the other replica, or to both at once); a message whose POST
//! failed (a killed replica) is delivered again elsewhere, as Meta redelivers.
//!
//! Checked: every message processed exactly once (the inbox), every citizen's replies in order
//! and as their journey expects, every reply sent once (the fake's requests, told apart by
//! `biz_opaque_callback_data`, which carries the outbox id), every report filed once. Crash
//! runs SIGKILL a replica (or the single SQLite process) mid-load and restart it: nothing
//! acknowledged is lost, no report is filed twice, no outbox row is sent more than twice.
//!
//! The PostgreSQL runs are skipped with a notice when no server answers (unless `CI=true`);
//! see `tests/common/mod.rs`.

mod common;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;
use std::process::Stdio;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::TestDb;
use reqwest::StatusCode;
use serde_json::{Value, json};
use sqlx::AnyPool;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::Semaphore;
use webhook::testing::{self, FakeGraph, RecordedRequest};

const APP_SECRET: &str = "replicas-app-secret";
const ACCESS_TOKEN: &str = "EAAG-replicas-token";

/// How long the fleet may take to answer every message once the load is sent.
const SETTLE: Duration = Duration::from_secs(45);

/// Citizens talking at the same time (each one message after the other).
const CONCURRENCY: usize = 40;

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap()
}

/// A free loopback port (bound, read, released).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// One `seva serve` process.
struct Replica {
    name: String,
    port: u16,
    env: Vec<(String, String)>,
    child: Option<Child>,
    /// Its log lines (JSON), all runs.
    logs: Arc<Mutex<Vec<String>>>,
}

impl Replica {
    fn new(name: &str, env: Vec<(String, String)>) -> Replica {
        Replica {
            name: name.to_owned(),
            port: free_port(),
            env,
            child: None,
            logs: Arc::default(),
        }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/webhook/whatsapp", self.port)
    }

    /// Starts the process and waits until `/healthz` answers.
    async fn start(&mut self) {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_seva"));
        cmd.arg("serve")
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("SEVA_LISTEN", format!("127.0.0.1:{}", self.port))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().unwrap();
        let stderr = child.stderr.take().unwrap();
        let logs = self.logs.clone();
        tokio::spawn(async move {
            let mut lines = BufReader::new(stderr).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                logs.lock().unwrap().push(line);
            }
        });
        self.child = Some(child);
        let http = client();
        let health = format!("http://127.0.0.1:{}/healthz", self.port);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(r) = http.get(&health).send().await
                && r.status() == StatusCode::OK
            {
                return;
            }
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!(
                    "{} exited at start ({status}):\n{}",
                    self.name,
                    self.log_tail()
                );
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{} did not come up:\n{}",
                self.name,
                self.log_tail()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// SIGKILL: no shutdown, no flush, as a crash or an OOM kill.
    async fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().await.unwrap();
        }
    }

    /// How often its log says it took the lead of `role`.
    fn leads_taken(&self, role: &str) -> usize {
        let logs = self.logs.lock().unwrap();
        logs.iter()
            .filter(|line| {
                serde_json::from_str::<Value>(line).is_ok_and(|v| {
                    // Fields at the top level, or under `fields` (tracing's own JSON layout).
                    let fields = if v.get("fields").is_some() {
                        &v["fields"]
                    } else {
                        &v
                    };
                    fields["message"] == "leadership taken" && fields["role"] == role
                })
            })
            .count()
    }

    fn log_tail(&self) -> String {
        let logs = self.logs.lock().unwrap();
        logs[logs.len().saturating_sub(40)..].join("\n")
    }
}

/// The environment every replica shares.
fn serve_env(db_url: &str, graph: &FakeGraph, dir: &Path) -> Vec<(String, String)> {
    let stations = format!("{}/config/stations.example.csv", env!("CARGO_MANIFEST_DIR"));
    [
        ("SEVA_DATABASE_URL", db_url.to_owned()),
        ("SEVA_STATIONS_CSV", stations),
        ("SEVA_MEDIA_DIR", dir.join("media").display().to_string()),
        ("SEVA_LOG_FORMAT", "json".to_owned()),
        ("SEVA_SHUTDOWN_GRACE", "5".to_owned()),
        ("SEVA_WHATSAPP_MPS", "2000".to_owned()),
        ("WHATSAPP_APP_SECRET", APP_SECRET.to_owned()),
        ("WHATSAPP_VERIFY_TOKEN", "replicas-verify".to_owned()),
        ("WHATSAPP_ACCESS_TOKEN", ACCESS_TOKEN.to_owned()),
        (
            "WHATSAPP_PHONE_NUMBER_ID",
            testing::PHONE_NUMBER_ID.to_owned(),
        ),
        ("WHATSAPP_API_URL", graph.url()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Journey {
    /// Language, menu, a lost wallet reported to its confirmation: 11 messages, one report.
    LostWallet,
    /// Language, menu, a status check of a reference that is not theirs: 4 messages.
    StatusCheck,
}

/// One citizen's messages, in order (each a WhatsApp message object with its wamid).
struct Script {
    wa_id: String,
    journey: Journey,
    messages: Vec<Value>,
}

fn script(n: usize) -> Script {
    let wa_id = format!("9190{n:08}");
    let journey = if n.is_multiple_of(2) {
        Journey::LostWallet
    } else {
        Journey::StatusCheck
    };
    let mut i = 0;
    let mut wamid = || {
        i += 1;
        format!("wamid.replicas.{n}.{i}")
    };
    let fresh = |mut m: Value| {
        m["timestamp"] = json!(now().to_string());
        m
    };
    let text = |w: String, t: &str| fresh(testing::text_message(&wa_id, &w, t));
    let button = |w: String, id: &str| fresh(testing::button_reply(&wa_id, &w, id, "title"));
    let row = |w: String, id: &str| fresh(testing::list_reply(&wa_id, &w, id, "title"));
    let messages = match journey {
        Journey::LostWallet => vec![
            text(wamid(), "Hello"),
            button(wamid(), "lang:en"),
            row(wamid(), "menu:lost"),
            row(wamid(), "item:wallet"),
            text(wamid(), &format!("Brown leather wallet number {n}")),
            button(wamid(), "when:today"),
            text(wamid(), "Gandhi Maidan bus stand"),
            row(wamid(), "st:patna-gandhi-maidan"),
            text(wamid(), "Sunita Devi"),
            button(wamid(), "phone:use"),
            button(wamid(), "review:confirm"),
        ],
        Journey::StatusCheck => vec![
            text(wamid(), "Hello"),
            button(wamid(), "lang:en"),
            row(wamid(), "menu:status"),
            text(wamid(), "L-7K3Q-9XM4-R"),
        ],
    };
    Script {
        wa_id,
        journey,
        messages,
    }
}

/// Where the load balancer may send a request: the replicas' webhook URLs (`None` while one
/// is down for a restart).
type Targets = Arc<Mutex<Vec<Option<String>>>>;

/// What the load sent and what was acknowledged.
#[derive(Default)]
struct Sent {
    /// Every wamid a replica answered 200 for.
    acked: Mutex<HashSet<String>>,
    /// Messages acknowledged so far (first acknowledgements only).
    progress: AtomicUsize,
}

/// POSTs one signed notification to `targets[first]`, or, when that fails, to the others in
/// turn, until one answers 200 (Meta redelivers until it gets a 200).
async fn deliver(http: &reqwest::Client, targets: &Targets, first: usize, notification: &Value) {
    let (body, signature) = testing::signed(APP_SECRET, notification);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let mut attempt = first;
    loop {
        let url = {
            let t = targets.lock().unwrap();
            t[attempt % t.len()].clone()
        };
        attempt += 1;
        if let Some(url) = url {
            let answer = http
                .post(&url)
                .header("content-type", "application/json")
                .header("x-hub-signature-256", &signature)
                .body(body.clone())
                .send()
                .await;
            if let Ok(r) = answer
                && r.status() == StatusCode::OK
            {
                return;
            }
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no replica acknowledged a message for a minute"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Sends every citizen's messages, citizens interleaved, each citizen's one after the other,
/// alternating between replicas; every 4th message is delivered a second time (to the other
/// replica, and every 12th to both at once).
async fn send_load(scripts: Arc<Vec<Script>>, targets: Targets, sent: Arc<Sent>) {
    let http = client();
    let gate = Arc::new(Semaphore::new(CONCURRENCY));
    let mut tasks = tokio::task::JoinSet::new();
    for c in 0..scripts.len() {
        let http = http.clone();
        let targets = targets.clone();
        let sent = sent.clone();
        let gate = gate.clone();
        let scripts = scripts.clone();
        tasks.spawn(async move {
            let _permit = gate.acquire().await.unwrap();
            let s = &scripts[c];
            for (i, message) in s.messages.iter().enumerate() {
                let n =
                    testing::notification(&[(&s.wa_id, "Citizen")], vec![message.clone()], vec![]);
                let first = c + i;
                if (c + i) % 12 == 5 {
                    // The same message at both replicas at once.
                    tokio::join!(
                        deliver(&http, &targets, first, &n),
                        deliver(&http, &targets, first + 1, &n)
                    );
                } else {
                    deliver(&http, &targets, first, &n).await;
                    if (c + i) % 4 == 1 {
                        deliver(&http, &targets, first + 1, &n).await;
                    }
                }
                let wamid = message["id"].as_str().unwrap().to_owned();
                if sent.acked.lock().unwrap().insert(wamid) {
                    sent.progress.fetch_add(1, Ordering::SeqCst);
                }
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.unwrap();
    }
}

async fn count(pool: &AnyPool, sql: &str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(pool).await.unwrap()
}

/// Waits until every stored message is processed and every WhatsApp outbox row is sent.
async fn settle(pool: &AnyPool, fleet: &[&Replica]) {
    let deadline = tokio::time::Instant::now() + SETTLE;
    loop {
        let unprocessed = count(
            pool,
            "select count(*) from inbox where processed_at is null",
        )
        .await;
        let unsent = count(
            pool,
            "select count(*) from outbox where channel = 'whatsapp' and status <> 'sent'",
        )
        .await;
        if unprocessed == 0 && unsent == 0 {
            return;
        }
        if tokio::time::Instant::now() > deadline {
            let logs: Vec<String> = fleet
                .iter()
                .map(|r| format!("{}:\n{}", r.name, r.log_tail()))
                .collect();
            panic!(
                "not settled: {unprocessed} unprocessed, {unsent} unsent\n{}",
                logs.join("\n")
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// What a message looks like to the citizen, without its text: type, interactive type and
/// choice ids. One journey gives every citizen the same sequence.
fn shape(m: &Value) -> String {
    let kind = m["type"].as_str().unwrap_or("?");
    let interactive = m
        .pointer("/interactive/type")
        .and_then(Value::as_str)
        .unwrap_or("");
    let mut ids: Vec<&str> = Vec::new();
    if let Some(buttons) = m
        .pointer("/interactive/action/buttons")
        .and_then(Value::as_array)
    {
        ids.extend(
            buttons
                .iter()
                .filter_map(|b| b.pointer("/reply/id")?.as_str()),
        );
    }
    if let Some(sections) = m
        .pointer("/interactive/action/sections")
        .and_then(Value::as_array)
    {
        for s in sections {
            if let Some(rows) = s["rows"].as_array() {
                ids.extend(rows.iter().filter_map(|r| r["id"].as_str()));
            }
        }
    }
    format!("{kind}/{interactive}[{}]", ids.join(","))
}

/// A report reference (`L-XXXX-XXXX-X`) in `text`.
fn reference_in(text: &str) -> Option<String> {
    text.char_indices()
        .filter(|(_, c)| *c == 'L')
        .filter_map(|(i, _)| text.get(i..i + 13))
        .find(|r| flows::reference::Reference::parse(r).is_ok_and(|p| p.to_string() == *r))
        .map(str::to_owned)
}

/// The accepted message sends, per recipient in the order the fake received them:
/// (outbox id from `biz_opaque_callback_data`, body).
fn sends_by_recipient(requests: &[RecordedRequest]) -> HashMap<String, Vec<(i64, Value)>> {
    let mut out: HashMap<String, Vec<(i64, Value)>> = HashMap::new();
    for r in requests
        .iter()
        .filter(|r| r.is_message() && r.wamid.is_some())
    {
        let body = r.body.clone().unwrap();
        let to = body["to"].as_str().unwrap().to_owned();
        let opaque: i64 = body["biz_opaque_callback_data"]
            .as_str()
            .and_then(|o| o.parse().ok())
            .unwrap_or_else(|| panic!("a send without its outbox id: {body}"));
        out.entry(to).or_default().push((opaque, body));
    }
    out
}

/// Whether the run crashed something: then one row in flight at the kill may be sent twice.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Run {
    Clean,
    Crashed,
}

/// Everything the load promised, checked on the database and the fake's requests.
async fn check(pool: &AnyPool, graph: &FakeGraph, scripts: &[Script], sent: &Sent, run: Run) {
    // Every message stored once and processed once, without error; nothing acknowledged lost.
    let total: usize = scripts.iter().map(|s| s.messages.len()).sum();
    let acked = sent.acked.lock().unwrap().clone();
    assert_eq!(
        acked.len(),
        total,
        "every message was acknowledged in the end"
    );
    let inbox: Vec<(String, Option<i64>, Option<String>)> =
        sqlx::query_as("select provider_id, processed_at, error from inbox")
            .fetch_all(pool)
            .await
            .unwrap();
    assert_eq!(
        inbox.len(),
        total,
        "one inbox row per message, duplicates dropped"
    );
    let stored: HashSet<&str> = inbox.iter().map(|(p, _, _)| p.as_str()).collect();
    for wamid in &acked {
        assert!(
            stored.contains(wamid.as_str()),
            "acknowledged {wamid} was lost"
        );
    }
    for (wamid, processed, error) in &inbox {
        assert!(processed.is_some(), "{wamid} not processed");
        assert_eq!(error, &None, "{wamid} failed");
    }

    // Every report filed once, by its citizen.
    let reports: Vec<(String, Option<i64>, String)> =
        sqlx::query_as("select r.reference, r.citizen_id, c.external_id from reports r join citizens c on c.id = r.citizen_id")
            .fetch_all(pool)
            .await
            .unwrap();
    let lost: Vec<&Script> = scripts
        .iter()
        .filter(|s| s.journey == Journey::LostWallet)
        .collect();
    assert_eq!(
        reports.len(),
        lost.len(),
        "one report per lost-wallet citizen"
    );
    let reported: HashMap<&str, &str> = reports
        .iter()
        .map(|(r, _, who)| (who.as_str(), r.as_str()))
        .collect();
    assert_eq!(reported.len(), lost.len(), "no citizen has two reports");

    // Every outbox row sent once (at most twice after a crash), each recipient's in order.
    let rows: Vec<(i64, String)> =
        sqlx::query_as("select id, recipient from outbox where channel = 'whatsapp' order by id")
            .fetch_all(pool)
            .await
            .unwrap();
    let requests = graph.requests();
    let by_recipient = sends_by_recipient(&requests);
    let mut sent_ids: HashSet<i64> = HashSet::new();
    let mut copies: HashMap<String, usize> = HashMap::new();
    for sends in by_recipient.values() {
        for (id, body) in sends {
            sent_ids.insert(*id);
            *copies.entry(body.to_string()).or_default() += 1;
        }
    }
    for (id, _) in &rows {
        assert!(
            sent_ids.contains(id),
            "outbox row {id} never reached the provider"
        );
    }
    let most = copies.values().copied().max().unwrap_or(0);
    match run {
        Run::Clean => assert_eq!(most, 1, "a reply was sent twice"),
        Run::Crashed => assert!(most <= 2, "a reply was sent {most} times"),
    }

    let mut journeys: BTreeMap<Journey, Vec<String>> = BTreeMap::new();
    for s in scripts {
        let sends = by_recipient.get(&s.wa_id).cloned().unwrap_or_default();
        // A resend after a crash repeats the row it resends, right away: keep first copies.
        let mut seen = HashSet::new();
        let sends: Vec<(i64, Value)> = sends
            .into_iter()
            .filter(|(_, body)| seen.insert(body.to_string()))
            .collect();
        let ids: Vec<i64> = sends.iter().map(|(id, _)| *id).collect();
        assert!(
            ids.windows(2).all(|w| w[0] <= w[1]),
            "replies to {} left out of order: {ids:?}",
            s.wa_id
        );
        let shapes: Vec<String> = sends.iter().map(|(_, b)| shape(b)).collect();
        match journeys.get(&s.journey) {
            None => {
                journeys.insert(s.journey, shapes);
            }
            Some(expected) => assert_eq!(
                &shapes, expected,
                "{} ({:?}) was answered differently from the first citizen of that journey",
                s.wa_id, s.journey
            ),
        }
        let texts: Vec<String> = sends
            .iter()
            .map(|(_, b)| testing::message_text(b))
            .collect();
        let references: Vec<String> = texts.iter().filter_map(|t| reference_in(t)).collect();
        match s.journey {
            Journey::LostWallet => {
                assert_eq!(references.len(), 1, "{}: {texts:?}", s.wa_id);
                assert_eq!(
                    Some(&references[0].as_str()),
                    reported.get(s.wa_id.as_str())
                );
            }
            Journey::StatusCheck => assert!(references.is_empty(), "{}: {texts:?}", s.wa_id),
        }
    }
    // The journeys were walked to their end: the lost wallet's last answer has the reference.
    let lost_shapes = &journeys[&Journey::LostWallet];
    assert!(lost_shapes.len() >= 11, "{lost_shapes:?}");
    let resent = copies.values().filter(|n| **n > 1).count();
    eprintln!(
        "{} citizens, {total} messages, {} replies ({} sends, {resent} resent), {} reports",
        scripts.len(),
        rows.len(),
        copies.values().sum::<usize>(),
        reports.len()
    );
}

/// Waits until `part` of the load is acknowledged.
async fn wait_progress(sent: &Sent, at: usize) {
    while sent.progress.load(Ordering::SeqCst) < at {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

struct Fleet {
    db: TestDb,
    graph: FakeGraph,
    replicas: Vec<Replica>,
    targets: Targets,
    scripts: Arc<Vec<Script>>,
    sent: Arc<Sent>,
}

impl Fleet {
    /// `n` (1 or 2) replicas of `seva serve` on `db`, started together on the empty database
    /// (each applies the migrations at start; they take turns), and the scripts of `citizens`
    /// citizens.
    async fn start(db: TestDb, n: usize, citizens: usize) -> Fleet {
        let graph = FakeGraph::start().await;
        let env = serve_env(&db.url, &graph, db.dir.path());
        let mut replicas: Vec<Replica> = (0..n)
            .map(|i| Replica::new(&format!("replica-{i}"), env.clone()))
            .collect();
        match replicas.as_mut_slice() {
            [one] => one.start().await,
            [a, b] => {
                tokio::join!(a.start(), b.start());
            }
            _ => panic!("one or two replicas"),
        }
        let targets: Targets =
            Arc::new(Mutex::new(replicas.iter().map(|r| Some(r.url())).collect()));
        Fleet {
            db,
            graph,
            replicas,
            targets,
            scripts: Arc::new((0..citizens).map(script).collect()),
            sent: Arc::default(),
        }
    }

    fn total(&self) -> usize {
        self.scripts.iter().map(|s| s.messages.len()).sum()
    }

    fn load(&self) -> tokio::task::JoinHandle<()> {
        tokio::spawn(send_load(
            self.scripts.clone(),
            self.targets.clone(),
            self.sent.clone(),
        ))
    }

    /// Kills replica `i` with SIGKILL, keeps it down a moment (the load balancer sends
    /// elsewhere, or — a single process — Meta keeps retrying), and starts it again.
    async fn crash_and_restart(&mut self, i: usize, down: Duration) {
        self.targets.lock().unwrap()[i] = None;
        self.replicas[i].kill().await;
        tokio::time::sleep(down).await;
        self.replicas[i].start().await;
        let url = self.replicas[i].url();
        self.targets.lock().unwrap()[i] = Some(url);
    }

    async fn finish(mut self, run: Run) {
        let pool = self.db.pool().await;
        {
            let fleet: Vec<&Replica> = self.replicas.iter().collect();
            settle(&pool, &fleet).await;
        }
        check(&pool, &self.graph, &self.scripts, &self.sent, run).await;
        pool.close().await;
        for r in &mut self.replicas {
            r.kill().await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_replicas_on_one_postgres_process_every_message_once_in_order() {
    let Some(db) = TestDb::postgres_database().await else {
        return;
    };
    let fleet = Fleet::start(db, 2, 200).await;
    fleet.load().await.unwrap();
    fleet.finish(Run::Clean).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_replica_killed_mid_load_loses_nothing_and_files_nothing_twice() {
    let Some(db) = TestDb::postgres_database().await else {
        return;
    };
    let mut fleet = Fleet::start(db, 2, 120).await;
    let load = fleet.load();
    wait_progress(&fleet.sent, fleet.total() * 2 / 5).await;
    // Kill the WhatsApp dispatcher's leader, so the other replica must take its lead over
    // (and resend what it had in flight).
    const ROLE: &str = "dispatch:whatsapp";
    let leader = (0..2)
        .find(|i| fleet.replicas[*i].leads_taken(ROLE) > 0)
        .expect("a replica leads the WhatsApp dispatcher");
    let survivor = 1 - leader;
    let before = fleet.replicas[survivor].leads_taken(ROLE);
    // Down for longer than a follower waits between attempts at the lead.
    fleet
        .crash_and_restart(leader, Duration::from_millis(3000))
        .await;
    assert!(
        fleet.replicas[survivor].leads_taken(ROLE) > before,
        "the survivor took the dead leader's place"
    );
    load.await.unwrap();
    for line in fleet.replicas[survivor].logs.lock().unwrap().iter() {
        if line.contains("pending again") {
            eprintln!("survivor: {line}");
        }
    }
    fleet.finish(Run::Crashed).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_sqlite_process_killed_mid_load_loses_nothing_and_files_nothing_twice() {
    let mut fleet = Fleet::start(TestDb::sqlite(), 1, 80).await;
    let load = fleet.load();
    wait_progress(&fleet.sent, fleet.total() * 2 / 5).await;
    fleet.crash_and_restart(0, Duration::from_millis(700)).await;
    load.await.unwrap();
    fleet.finish(Run::Crashed).await;
}
