//! Shared test fixtures: a fresh database on each backend (a SQLite file in a tempdir, and a
//! PostgreSQL schema of its own when a server answers), a frozen clock, a scripted dialogue
//! engine and a scripted channel sender.
//!
//! PostgreSQL: the server at `SEVA_TEST_POSTGRES` (default
//! `postgres://postgres@127.0.0.1:5432/test`). Each test gets a schema of its own there
//! (`seva_t_<time>_<random>`, selected through the URL's `search_path`), dropped afterwards.
//! When no server answers, PostgreSQL runs are skipped with a notice on stderr — unless
//! `CI=true`, where an unreachable server fails the test. Pointing `SEVA_TEST_POSTGRES` at a
//! closed port (`postgres://127.0.0.1:1/x`) simulates a machine without PostgreSQL.
#![allow(dead_code)] // each test file uses a different part

pub mod serve;
pub mod telegram;

use std::collections::VecDeque;
use std::io::Write as _;
use std::path::PathBuf;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

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
use sqlx::{AnyConnection, AnyPool, Connection, Executor};

/// 2026-11-28 12:00 UTC.
pub const START: i64 = 1_795_867_200;

/// Where the PostgreSQL tests find their server (a database they may create schemas and
/// databases from).
pub const POSTGRES_ENV: &str = "SEVA_TEST_POSTGRES";
pub const POSTGRES_DEFAULT: &str = "postgres://postgres@127.0.0.1:5432/test";

/// Schemas and databases the tests create start with these; leftovers of a killed test run
/// older than [`STALE_AFTER`] are dropped by the next run.
const SCHEMA_PREFIX: &str = "seva_t_";
pub const DATABASE_PREFIX: &str = "seva_r_";
const STALE_AFTER: i64 = 2 * 3600;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Sqlite,
    Postgres,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Sqlite => "sqlite",
            Kind::Postgres => "postgres",
        }
    }
}

/// The PostgreSQL server URL the tests use.
pub fn postgres_admin_url() -> String {
    std::env::var(POSTGRES_ENV)
        .ok()
        .filter(|v| !v.trim().is_empty())
        .unwrap_or_else(|| POSTGRES_DEFAULT.to_owned())
}

fn ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// Whether the PostgreSQL tests run: the server answers. Without one, false with a notice
/// (once per test binary), or a failure when `CI=true`.
pub async fn postgres_available() -> bool {
    static AVAILABLE: OnceLock<bool> = OnceLock::new();
    if let Some(available) = AVAILABLE.get() {
        return *available;
    }
    sqlx::any::install_default_drivers();
    let url = postgres_admin_url();
    let attempt = tokio::time::timeout(Duration::from_secs(5), AnyConnection::connect(&url)).await;
    let error = match attempt {
        Ok(Ok(mut conn)) => {
            reap_stale(&mut conn).await;
            let _ = conn.close().await;
            None
        }
        Ok(Err(e)) => Some(e.to_string()),
        Err(_) => Some("no answer within 5 s".to_owned()),
    };
    if let Some(error) = &error {
        if ci() {
            panic!("CI=true: the PostgreSQL tests must run, but {url} is unreachable: {error}");
        }
        static NOTICE: OnceLock<()> = OnceLock::new();
        NOTICE.get_or_init(|| {
            // Straight to stderr, past the test harness's capture, so it is seen.
            let _ = writeln!(
                std::io::stderr(),
                "NOTICE: PostgreSQL tests skipped: {url} is unreachable ({error}); set {POSTGRES_ENV} \
                 to a server to run them (CI=true makes this a failure)"
            );
        });
    }
    *AVAILABLE.get_or_init(|| error.is_none())
}

/// Drops schemas and databases a killed test run left behind (older than [`STALE_AFTER`]).
async fn reap_stale(conn: &mut AnyConnection) {
    let now = chrono::Utc::now().timestamp();
    let stale = |name: &str, prefix: &str| {
        name.strip_prefix(prefix)
            .and_then(|rest| rest.split('_').next())
            .and_then(|t| t.parse::<i64>().ok())
            .is_some_and(|t| now - t > STALE_AFTER)
    };
    let schemas: Vec<String> = sqlx::query_scalar(
        "select nspname::text from pg_namespace where nspname like 'seva\\_t\\_%'",
    )
    .fetch_all(&mut *conn)
    .await
    .unwrap_or_default();
    for s in schemas.iter().filter(|s| stale(s, SCHEMA_PREFIX)) {
        let _ = conn
            .execute(format!("drop schema if exists {s} cascade").as_str())
            .await;
    }
    let databases: Vec<String> = sqlx::query_scalar(
        "select datname::text from pg_database where datname like 'seva\\_r\\_%'",
    )
    .fetch_all(&mut *conn)
    .await
    .unwrap_or_default();
    for d in databases.iter().filter(|d| stale(d, DATABASE_PREFIX)) {
        let _ = conn
            .execute(format!("drop database if exists {d} with (force)").as_str())
            .await;
    }
}

/// A fresh name: `<prefix><unix seconds>_<random>`.
pub fn fresh_name(prefix: &str) -> String {
    format!(
        "{prefix}{}_{:08x}",
        chrono::Utc::now().timestamp(),
        rand::random::<u32>()
    )
}

/// `base` (a PostgreSQL URL) naming database `database` instead of its own.
pub fn with_database(base: &str, database: &str) -> String {
    let (head, query) = match base.split_once('?') {
        Some((h, q)) => (h, Some(q)),
        None => (base, None),
    };
    let (server, _) = head.rsplit_once('/').expect("a database URL has a path");
    match query {
        Some(q) => format!("{server}/{database}?{q}"),
        None => format!("{server}/{database}"),
    }
}

/// What dropping a test database cleans up.
enum Cleanup {
    Schema { admin: String, schema: String },
    Database { admin: String, database: String },
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let (admin, sql, application) = match self {
            Cleanup::Schema { admin, schema } => (
                admin.clone(),
                format!("drop schema if exists {schema} cascade"),
                Some(schema.clone()),
            ),
            Cleanup::Database { admin, database } => (
                admin.clone(),
                format!("drop database if exists {database} with (force)"),
                None,
            ),
        };
        // Drop may run inside a runtime (or while a panic unwinds): a thread of its own.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                let Ok(mut conn) = AnyConnection::connect(&admin).await else {
                    return;
                };
                if let Some(name) = &application {
                    // Connections the test left open (a transaction whose rollback waits for
                    // the test's runtime, which this drop blocks) would hold locks on the
                    // schema: end them first.
                    let _ = sqlx::query(
                        "select pg_terminate_backend(pid) from pg_stat_activity \
                         where application_name = $1 and pid <> pg_backend_pid()",
                    )
                    .bind(name)
                    .execute(&mut conn)
                    .await;
                }
                let _ = conn.execute("set lock_timeout = '10s'").await;
                if let Err(e) = conn.execute(sql.as_str()).await {
                    let _ = writeln!(std::io::stderr(), "test cleanup: {sql}: {e}");
                }
                let _ = conn.close().await;
            });
        })
        .join();
    }
}

/// A fresh, empty (not migrated) database for one test, with a tempdir beside it.
pub struct TestDb {
    pub kind: Kind,
    pub url: String,
    pub dir: tempfile::TempDir,
    cleanup: Option<Cleanup>,
}

impl TestDb {
    /// A SQLite file under the tempdir (created on first connect).
    pub fn sqlite() -> TestDb {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("data/seva.db").display());
        TestDb {
            kind: Kind::Sqlite,
            url,
            dir,
            cleanup: None,
        }
    }

    /// A schema of its own on the test server, or `None` when PostgreSQL tests are skipped.
    pub async fn postgres() -> Option<TestDb> {
        if !postgres_available().await {
            return None;
        }
        let admin = postgres_admin_url();
        let schema = fresh_name(SCHEMA_PREFIX);
        let mut conn = AnyConnection::connect(&admin).await.unwrap();
        conn.execute(format!("create schema {schema}").as_str())
            .await
            .unwrap();
        let _ = conn.close().await;
        let sep = if admin.contains('?') { '&' } else { '?' };
        // The application name marks the test's connections, for the cleanup.
        let url =
            format!("{admin}{sep}options=-c%20search_path%3D{schema}&application_name={schema}");
        Some(TestDb {
            kind: Kind::Postgres,
            url,
            dir: tempfile::tempdir().unwrap(),
            cleanup: Some(Cleanup::Schema { admin, schema }),
        })
    }

    /// A whole database of its own on the test server (for tests that start `seva` processes
    /// as a user would, with a plain URL), or `None` when PostgreSQL tests are skipped.
    pub async fn postgres_database() -> Option<TestDb> {
        if !postgres_available().await {
            return None;
        }
        let admin = postgres_admin_url();
        let database = fresh_name(DATABASE_PREFIX);
        let mut conn = AnyConnection::connect(&admin).await.unwrap();
        conn.execute(format!("create database {database}").as_str())
            .await
            .unwrap();
        let _ = conn.close().await;
        Some(TestDb {
            kind: Kind::Postgres,
            url: with_database(&admin, &database),
            dir: tempfile::tempdir().unwrap(),
            cleanup: Some(Cleanup::Database { admin, database }),
        })
    }

    /// SQLite, then PostgreSQL when it runs: what each test loops over.
    pub async fn all() -> Vec<TestDb> {
        let mut all = vec![TestDb::sqlite()];
        all.extend(TestDb::postgres().await);
        all
    }

    /// A separate pool for looking at rows the API does not expose (SQL with `$1` placeholders
    /// runs on both backends).
    pub async fn pool(&self) -> AnyPool {
        sqlx::any::install_default_drivers();
        AnyPool::connect(&self.url).await.unwrap()
    }

    /// Opens the store and applies migrations.
    pub async fn open(&self) -> Store {
        Store::open(&self.url).await.unwrap()
    }
}

pub struct Harness {
    pub kind: Kind,
    pub dir: tempfile::TempDir,
    pub url: String,
    pub store: Store,
    pub now: Arc<AtomicI64>,
    pool: tokio::sync::OnceCell<AnyPool>,
    _cleanup: Option<Cleanup>,
}

/// A harness on each backend that runs here (SQLite always, PostgreSQL when available).
pub async fn backends() -> Vec<Harness> {
    let mut out = Vec::new();
    for db in TestDb::all().await {
        out.push(Harness::on(db).await);
    }
    out
}

impl Harness {
    /// On SQLite.
    pub async fn new() -> Harness {
        Harness::on(TestDb::sqlite()).await
    }

    /// On that database, migrated.
    pub async fn on(db: TestDb) -> Harness {
        // Shown with a failing test's output: which backend it failed on.
        eprintln!("-- on {}", db.kind.name());
        let store = db.open().await;
        let TestDb {
            kind,
            url,
            dir,
            cleanup,
        } = db;
        Harness {
            kind,
            dir,
            url,
            store,
            now: Arc::new(AtomicI64::new(START)),
            pool: tokio::sync::OnceCell::new(),
            _cleanup: cleanup,
        }
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

    /// A separate pool for looking at rows the API does not expose (SQL with `$1`
    /// placeholders runs on both backends).
    pub async fn db(&self) -> AnyPool {
        self.pool
            .get_or_init(|| async {
                sqlx::any::install_default_drivers();
                AnyPool::connect(&self.url).await.unwrap()
            })
            .await
            .clone()
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
        anonymous: false,
    }
}

/// The outbox replies of one citizen, oldest first: (text id, first argument as JSON).
pub async fn replies(pool: &AnyPool, citizen_id: i64) -> Vec<(String, serde_json::Value)> {
    let rows: Vec<String> = sqlx::query_scalar(
        "select content from outbox where citizen_id = $1 and kind = 'reply' order by id",
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

/// Every valid reference printed in `out`, exactly as Seva prints one (`K-XXXX-XXXX-X`).
/// Reading loosely would find one in ordinary words about once in 32 windows.
pub fn references(out: &str) -> Vec<String> {
    let chars: Vec<char> = out.chars().collect();
    (0..chars.len().saturating_sub(12))
        .map(|i| chars[i..i + 13].iter().collect::<String>())
        .filter(|s| flows::reference::Reference::parse(s).is_ok_and(|r| r.to_string() == *s))
        .collect()
}

/// The first reference of that kind (`C`, `L`, `F`) printed in `text`.
pub fn reference_in(text: &str, kind: char) -> Option<String> {
    references(text).into_iter().find(|r| r.starts_with(kind))
}
