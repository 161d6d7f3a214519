//! The store: every SQL statement Seva runs lives in this module.
//!
//! [`Store`] is the pool-level API (transaction 1, the outbox, the CLI); [`Turn`] is transaction
//! 2, opened by [`Store::lock_citizen`] and holding that citizen's lock until commit.
//!
//! One copy of the SQL serves both backends, through [`sql::query`]: in write transactions
//! SQLite's writer connection runs it on the caller's thread, and everything else (PostgreSQL,
//! reads on the pools) goes to sqlx's `Any` driver. Statements use `$1`,
//! `$2`, … placeholders (bound as the N-th argument on both), integers are `bigint` in
//! PostgreSQL so they decode as `i64` everywhere, flags are 0/1 integers in both, and new ids
//! come back with `returning id`. The few statements that differ ask [`Backend`]:
//!
//! * the write transaction: `begin immediate` on SQLite (see below), plain `begin` on PostgreSQL;
//! * the citizen lock: on PostgreSQL, `select … for no key update` on the citizen row (it does
//!   not block the foreign-key checks of rows pointing at the citizen); on SQLite, the write
//!   transaction holds the whole database, which covers the citizen;
//! * claiming (outbox rows, media downloads): `for update skip locked` on PostgreSQL, so
//!   replicas never claim the same row and never wait for each other's claims;
//! * leadership ([`Store::lead`]): a PostgreSQL advisory lock held on a dedicated connection;
//!   trivially held on SQLite, where one process owns the file.
//!
//! SQLite runs in WAL mode with `synchronous=NORMAL`, a busy timeout and foreign keys (set on
//! every new connection), and every write transaction starts with `begin immediate`: a deferred
//! transaction that reads and then writes fails with "busy" when `serve`, `seva chat` and the
//! CLI share the file.
//!
//! Migrations are embedded per backend, `migrations/sqlite` and `migrations/postgres`, paired
//! under identical file names (a test checks that they match).

mod batch;
mod checkpoint;
mod leader;
mod multi_row;
mod reports;
mod retention;
mod ride_along;
mod sql;
pub mod telegram;
mod turn;
mod wakeup;
mod whatsapp;

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::{Arc, LazyLock};

use multi_row::padded;
use std::time::Duration;

use flows::Lang;
use flows::message::{Channel, Inbound};
use sql::Row;
use sqlx::any::AnyPoolOptions;
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{AnyPool, Executor};
use tokio::sync::OwnedMutexGuard;

pub use batch::{Batch, BatchAdmission};
pub use leader::Leader;
pub use reports::{
    Actor, AttachmentRecord, AuditEntry, ChangeFailure, Changed, EVENTS_RECIPIENT, HistoryEntry,
    Notices, Officer, ReportDetail, ReportFilter, ReportRecord, Scope,
};
pub use retention::{MediaFile, PayloadsPurged, ReportsPurged};
pub use turn::{Filing, StoredReport, Turn};
pub use whatsapp::{MediaJob, MediaRecord, StatusApplied, WhatsappSendState};

static SQLITE_MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// How long a SQLite writer waits for another process's write transaction before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(15);

/// Connections of the main pool `serve`, `seva chat` and the CLI open.
const POOL_SIZE_SQLITE: u32 = 4;
const POOL_SIZE_POSTGRES: u32 = 10;

/// Connections of the small pools channel senders open beside the main one.
const SMALL_POOL_SIZE: u32 = 2;

/// How long a claimed outbox row stays `sending` before another dispatcher may claim it again
/// (its dispatcher is presumed dead or stuck). A send, paced and with its HTTP timeout, takes
/// far less; a dispatcher taking over a channel does not wait for it (see
/// [`Store::reset_sending`]).
pub const CLAIM_LEASE: i64 = 60;

/// A write transaction; on SQLite it also holds this process's writer slot ([`WriterSlot`]).
/// Dereferences to its connection, on which [`sql::query`] runs statements.
pub(crate) struct Tx {
    // Dropped first: an open transaction rolls back before the slot is free.
    conn: sql::Conn,
    _slot: Option<OwnedMutexGuard<()>>,
}

impl std::ops::Deref for Tx {
    type Target = sql::Conn;
    fn deref(&self) -> &sql::Conn {
        &self.conn
    }
}

impl std::ops::DerefMut for Tx {
    fn deref_mut(&mut self) -> &mut sql::Conn {
        &mut self.conn
    }
}

impl Tx {
    /// Commits, then frees the writer slot.
    pub(crate) async fn commit(self) -> Result<()> {
        self.conn.commit().await
    }

    pub(crate) async fn rollback(self) -> Result<()> {
        self.conn.rollback().await
    }
}

/// Where a store's write transactions run.
#[derive(Clone)]
enum Writes {
    /// SQLite: one connection, driven on the caller's thread ([`sql`]).
    Sqlite(sql::SqliteWriter),
    /// PostgreSQL: the pool.
    Pool(AnyPool),
}

/// Set on every SQLite connection, after the busy timeout.
fn sqlite_setup() -> [String; 5] {
    [
        "pragma journal_mode = wal".to_owned(),
        "pragma synchronous = normal".to_owned(),
        "pragma foreign_keys = on".to_owned(),
        // A multi-row insert that may fail halfway keeps a statement journal; in a temp
        // file that is an open, writes and a close per statement.
        "pragma temp_store = memory".to_owned(),
        format!(
            "pragma wal_autocheckpoint = {}",
            checkpoint::AUTOCHECKPOINT_PAGES
        ),
    ]
}

/// The writer connection on the SQLite file `url` names.
fn sqlite_writer(url: &str) -> Result<sql::SqliteWriter> {
    let url = sqlite_url(url)?;
    let options = SqliteConnectOptions::from_str(&url)?;
    let file = options.get_filename();
    let filename = if url.contains(":memory:") {
        std::path::PathBuf::from(format!("{}?mode=memory&cache=shared", file.display()))
    } else {
        file.to_path_buf()
    };
    let setup = sqlite_setup();
    let setup: Vec<&str> = setup.iter().map(String::as_str).collect();
    sql::open_sqlite_writer(&filename, BUSY_TIMEOUT, &setup)
}

/// A pool of `max_connections` on a SQLite file, each connection set up alike.
async fn sqlite_pool(url: &str, max_connections: u32) -> Result<AnyPool> {
    let url = sqlite_url(url)?;
    Ok(AnyPoolOptions::new()
        .max_connections(max_connections)
        .after_connect(|conn, _| {
            Box::pin(async move {
                let busy = format!("pragma busy_timeout = {}", BUSY_TIMEOUT.as_millis());
                conn.execute(busy.as_str()).await?;
                for pragma in sqlite_setup() {
                    conn.execute(pragma.as_str()).await?;
                }
                Ok(())
            })
        })
        .connect(&url)
        .await?)
}

/// SQLite has one writer at a time, and a connection waiting for the write lock polls in
/// SQLite's busy handler, sleeping between tries (1, 2, 5, 10 … 100 ms): under load the lock
/// sat free while every waiter slept, and the tail latency was those sleeps. So the writers of
/// one process queue here first, in order, and each takes the lock the moment the previous
/// one let go; the busy handler is left to waits for other processes (`seva chat`, the CLI).
/// One slot per database file, shared by every pool this process opens on it.
fn writer_slot_for(url: &str) -> Arc<tokio::sync::Mutex<()>> {
    static SLOTS: LazyLock<std::sync::Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>> =
        LazyLock::new(Default::default);
    let mut slots = SLOTS.lock().unwrap_or_else(|e| e.into_inner());
    slots.entry(url.to_owned()).or_default().clone()
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("cannot prepare the database file: {0}")]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    Unsupported(String),
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("stored data is unreadable: {0}")]
    Corrupt(String),
    #[error("migrations are not applied")]
    NotMigrated,
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Which database a [`Store`] runs on, from the URL's scheme.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Backend {
    /// `sqlite://…`: one file, one process writing at a time.
    Sqlite,
    /// `postgres://…` (or `postgresql://…`): shared by any number of `seva serve` replicas.
    Postgres,
}

impl Backend {
    /// The backend a database URL names.
    pub fn of_url(url: &str) -> Result<Backend> {
        let scheme = url.split_once(':').map(|(s, _)| s).unwrap_or_default();
        match scheme.to_ascii_lowercase().as_str() {
            "sqlite" => Ok(Backend::Sqlite),
            "postgres" | "postgresql" => Ok(Backend::Postgres),
            _ => Err(StoreError::Unsupported(
                "SEVA_DATABASE_URL must start with sqlite:// or postgres://".to_owned(),
            )),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }

    /// The statement that opens a write transaction. SQLite: `begin immediate` takes the
    /// database's write lock up front, so a transaction that reads then writes never fails
    /// with "busy" halfway.
    fn begin(self) -> &'static str {
        match self {
            Backend::Sqlite => "begin immediate",
            Backend::Postgres => "begin",
        }
    }

    /// Appended to a `select` in a write transaction that goes on to change the rows it read.
    /// SQLite's write transaction already excludes every other writer.
    fn for_update(self) -> &'static str {
        match self {
            Backend::Sqlite => "",
            Backend::Postgres => " for update",
        }
    }

    /// Appended to the `select` of a claim: rows another replica is claiming are skipped, not
    /// waited for.
    fn skip_locked(self) -> &'static str {
        match self {
            Backend::Sqlite => "",
            Backend::Postgres => " for update skip locked",
        }
    }

    fn migrator(self) -> &'static sqlx::migrate::Migrator {
        match self {
            Backend::Sqlite => &SQLITE_MIGRATOR,
            Backend::Postgres => &POSTGRES_MIGRATOR,
        }
    }
}

/// Whether a pool's commits wait for the disk (PostgreSQL; see [`Store::own_pool`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Commits {
    Durable,
    Lazy,
}

/// Seva's database. Cheap to clone (a pool handle).
#[derive(Clone)]
pub struct Store {
    pool: AnyPool,
    /// Where write transactions run. SQLite: one connection, shared with [`Store::own_pool`]
    /// and driven on the caller's thread ([`sql`]):
    /// a connection throws its whole page cache away whenever another connection has
    /// committed, so writes rotating over a pool's connections re-read (and re-parse) the
    /// same b-tree pages in nearly every transaction. PostgreSQL: the pool.
    writes: Writes,
    backend: Backend,
    wakeups: Arc<wakeup::FleetWakeups>,
    /// PostgreSQL: this pool's commits do not wait for the disk ([`Store::own_pool`]).
    lazy_commits: bool,
    /// SQLite: this process's writer slot for the file (see [`writer_slot_for`]).
    writer: Option<Arc<tokio::sync::Mutex<()>>>,
    /// SQLite: send records waiting for the next batch's transaction ([`ride_along`]).
    ride_along: Option<Arc<ride_along::RideAlong>>,
    /// For the dedicated connections of [`Store::lead`]. Never printed: it may hold a password.
    url: Arc<str>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("backend", &self.backend)
            .finish_non_exhaustive()
    }
}

/// A citizen: one channel identity.
#[derive(Debug, Clone, PartialEq)]
pub struct Citizen {
    pub id: i64,
    pub channel: Channel,
    pub external_id: String,
    pub lang: Option<Lang>,
    /// Confirmed mobile number, E.164.
    pub phone: Option<String>,
    pub pushes_enabled: bool,
    pub unreachable: bool,
    pub created_at: i64,
    pub last_inbound_at: Option<i64>,
}

/// What transaction 1 did with an inbound message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accepted {
    /// Stored; it will be processed.
    New { citizen_id: i64, inbox_id: i64 },
    /// The provider id was seen before: nothing changed.
    Duplicate { citizen_id: i64 },
}

impl Accepted {
    pub fn citizen_id(self) -> i64 {
        match self {
            Accepted::New { citizen_id, .. } | Accepted::Duplicate { citizen_id } => citizen_id,
        }
    }
}

/// What [`Store::admit`] did with an inbound message.
pub enum Admitted {
    /// Stored in the citizen's open turn: committing the turn keeps it.
    New {
        turn: Box<Turn>,
        inbox_id: i64,
        /// The citizen's WhatsApp rows that were waiting for the window and are due now.
        woke: u64,
    },
    /// The provider id was seen before: nothing changed.
    Duplicate { citizen_id: i64 },
}

/// An inbox row waiting to be processed.
#[derive(Debug, Clone, PartialEq)]
pub struct InboxRow {
    pub id: i64,
    pub payload: InboxPayload,
    pub received_at: i64,
}

/// An unprocessed message as a turn gets it.
#[derive(Debug, Clone, PartialEq)]
pub enum InboxPayload {
    /// As stored: JSON of the `flows::message::Inbound`.
    Stored(String),
    /// The message itself, from the batch that stored it: not read back and parsed again.
    Held(Inbound),
}

impl InboxPayload {
    pub fn into_message(self) -> std::result::Result<Inbound, serde_json::Error> {
        match self {
            InboxPayload::Stored(json) => serde_json::from_str(&json),
            InboxPayload::Held(message) => Ok(message),
        }
    }
}

/// What an outbox row carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutboxKind {
    /// An answer to the citizen's message.
    Reply,
    /// A status update the citizen did not ask for right now.
    Push,
    /// A new-report alert to a station.
    Alert,
    /// A back-office webhook event.
    Event,
}

impl OutboxKind {
    pub fn as_str(self) -> &'static str {
        match self {
            OutboxKind::Reply => "reply",
            OutboxKind::Push => "push",
            OutboxKind::Alert => "alert",
            OutboxKind::Event => "event",
        }
    }

    pub fn parse(s: &str) -> Option<OutboxKind> {
        [
            OutboxKind::Reply,
            OutboxKind::Push,
            OutboxKind::Alert,
            OutboxKind::Event,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
    }

    /// The dispatcher lane this kind travels in.
    pub fn lane(self) -> OutboxLane {
        match self {
            OutboxKind::Reply => OutboxLane::Interactive,
            OutboxKind::Push | OutboxKind::Alert | OutboxKind::Event => OutboxLane::Bulk,
        }
    }
}

/// The outbox's two lanes. A citizen waiting for an answer must not wait behind a fan-out of
/// status pushes, so replies are claimed and paced apart from everything else.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OutboxLane {
    /// Replies to a citizen's message, claimed apart from the bulk backlog. A reply waits for
    /// the recipient's earlier replies, and for an earlier push only when that push is due now
    /// (it is then claimed in this lane too, ahead of the reply); a push that is waiting (for
    /// the WhatsApp window, for a retry) does not hold it back.
    Interactive,
    /// Pushes, station alerts and back-office events: each recipient's wait for any earlier
    /// message to them, replies included, so a push never lands in the middle of an answer.
    Bulk,
}

impl OutboxLane {
    pub fn as_str(self) -> &'static str {
        match self {
            OutboxLane::Interactive => "interactive",
            OutboxLane::Bulk => "bulk",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutboxStatus {
    /// Waiting for its `next_attempt_at`.
    Pending,
    /// Claimed by a dispatcher until its lease ends ([`CLAIM_LEASE`]); a dispatcher that takes
    /// over a channel puts it back to pending, and an expired lease lets it be claimed again.
    Sending,
    Sent,
    /// Gave up: a permanent failure or too many attempts. `seva outbox retry` revives it.
    Dead,
}

impl OutboxStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            OutboxStatus::Pending => "pending",
            OutboxStatus::Sending => "sending",
            OutboxStatus::Sent => "sent",
            OutboxStatus::Dead => "dead",
        }
    }

    pub fn parse(s: &str) -> Option<OutboxStatus> {
        [
            OutboxStatus::Pending,
            OutboxStatus::Sending,
            OutboxStatus::Sent,
            OutboxStatus::Dead,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
    }
}

/// A message to write to the outbox.
#[derive(Debug, Clone, PartialEq)]
pub struct NewOutbox {
    pub citizen_id: Option<i64>,
    pub channel: Channel,
    /// The channel's address: Telegram chat id, WhatsApp `wa_id`, terminal `--as` name.
    pub recipient: String,
    pub kind: OutboxKind,
    /// Abstract content as JSON (a `flows::reply::Reply` for replies, pushes and alerts).
    pub content: String,
    pub lang: Option<Lang>,
}

/// One outbox row.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxRow {
    pub id: i64,
    pub citizen_id: Option<i64>,
    pub channel: Channel,
    pub recipient: String,
    pub kind: OutboxKind,
    pub content: String,
    pub lang: Option<Lang>,
    pub status: OutboxStatus,
    pub attempts: u32,
    pub next_attempt_at: i64,
    pub provider_id: Option<String>,
    pub last_error: Option<String>,
    pub created_at: i64,
    pub sent_at: Option<i64>,
}

/// How many outbox rows of one channel, kind and status there are ([`Store::outbox_tallies`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutboxTally {
    pub channel: Channel,
    pub kind: OutboxKind,
    pub status: OutboxStatus,
    pub count: u64,
    pub oldest_created_at: i64,
}

/// Which due outbox rows a dispatcher may claim.
#[derive(Debug, Clone, Copy)]
pub struct Claim<'a> {
    /// Only these channels (the ones this process can send on).
    pub channels: &'a [Channel],
    /// Only this recipient (`seva chat` delivers to its own citizen only).
    pub recipient: Option<&'a str>,
    /// Only this lane's kinds; `None` claims every kind in one order (`seva chat`, tests).
    pub lane: Option<OutboxLane>,
    pub limit: u32,
}

/// One send attempt's outcome, to record ([`Store::record_sends`]).
#[derive(Debug, Clone, PartialEq)]
pub struct SendOutcomeRow {
    pub id: i64,
    pub record: SendRecord,
    /// The row's new attempt count.
    pub attempts: u32,
    /// When the provider answered (`sent_at` of a sent row).
    pub at: i64,
}

/// What happened to a row after a send attempt.
#[derive(Debug, Clone, PartialEq)]
pub enum SendRecord {
    Sent {
        provider_id: String,
    },
    /// Back to pending, due at `next_attempt_at`.
    Retry {
        next_attempt_at: i64,
        error: String,
    },
    Dead {
        error: String,
    },
}

/// Rows (or ids) per multi-row or `in (…)` statement: well under the bind limits of both
/// backends (SQLite 32,766, PostgreSQL 65,535) at a few binds per row, and a statement short
/// enough to plan fast.
const ROWS_PER_STATEMENT: usize = 500;

const OUTBOX_COLUMNS: &str = "id, citizen_id, channel, recipient, kind, content, lang, status, attempts, \
     next_attempt_at, provider_id, last_error, created_at, sent_at";

const CITIZEN_COLUMNS: &str = "id, channel, external_id, lang, phone, pushes_enabled, unreachable, created_at, last_inbound_at";

impl Store {
    /// Connects (creating a SQLite file and its directory) and applies migrations.
    pub async fn open(url: &str) -> Result<Store> {
        let store = Store::connect(url).await?;
        store.migrate().await?;
        Ok(store)
    }

    /// Connects without migrating.
    pub async fn connect(url: &str) -> Result<Store> {
        let size = match Backend::of_url(url)? {
            Backend::Sqlite => POOL_SIZE_SQLITE,
            Backend::Postgres => POOL_SIZE_POSTGRES,
        };
        Store::connect_with(url, size, Commits::Durable, None).await
    }

    /// Connects a small pool without migrating: for a channel sender beside `serve`'s own pool.
    pub async fn connect_small(url: &str) -> Result<Store> {
        Store::connect_with(url, SMALL_POOL_SIZE, Commits::Durable, None).await
    }

    /// A small pool of its own on the same database, for work that must not queue behind the
    /// main pool's (the dispatcher claiming rows and recording what a provider accepted).
    ///
    /// On PostgreSQL its commits do not wait for the disk (`synchronous_commit = off`): what
    /// the dispatcher writes — claims and send records — may be lost only if PostgreSQL itself
    /// crashes in the next moment, and then the row is claimed and sent again (at least once,
    /// never lost). Meanwhile no claim or record waits for an fsync.
    pub async fn own_pool(&self) -> Result<Store> {
        let writes = Some(self.writes.clone());
        Store::connect_with(&self.url, SMALL_POOL_SIZE * 2, Commits::Lazy, writes).await
    }

    /// `writes`: SQLite's writer connection to share, if one is open already (PostgreSQL
    /// writes on its pool).
    async fn connect_with(
        url: &str,
        max_connections: u32,
        commits: Commits,
        writes: Option<Writes>,
    ) -> Result<Store> {
        sqlx::any::install_default_drivers();
        let backend = Backend::of_url(url)?;
        let pool = match backend {
            Backend::Sqlite => sqlite_pool(url, max_connections).await?,
            Backend::Postgres => {
                AnyPoolOptions::new()
                    .max_connections(max_connections)
                    .after_connect(move |conn, _| {
                        Box::pin(async move {
                            if commits == Commits::Lazy {
                                conn.execute("set synchronous_commit = off").await?;
                                // The dispatcher's claims run with the time and the channels
                                // bound; a generic plan made from a freshly filled outbox's
                                // statistics ("three rows") took 1-2 s per claim with 10,000
                                // pushes due, against 15 ms planned with the values.
                                conn.execute("set plan_cache_mode = force_custom_plan")
                                    .await?;
                            }
                            Ok(())
                        })
                    })
                    .connect(url)
                    .await?
            }
        };
        let writes = match (backend, writes) {
            (Backend::Sqlite, Some(shared)) => shared,
            (Backend::Sqlite, None) => Writes::Sqlite(sqlite_writer(url)?),
            (Backend::Postgres, _) => Writes::Pool(pool.clone()),
        };
        Ok(Store {
            pool,
            writes,
            backend,
            wakeups: Arc::default(),
            lazy_commits: backend == Backend::Postgres && commits == Commits::Lazy,
            writer: (backend == Backend::Sqlite).then(|| writer_slot_for(url)),
            ride_along: (backend == Backend::Sqlite).then(|| ride_along::ride_along_for(url)),
            url: url.into(),
        })
    }

    /// The database this store runs on.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    pub async fn migrate(&self) -> Result<()> {
        self.backend.migrator().run(&self.pool).await?;
        Ok(())
    }

    /// Readiness: the database answers and every migration this binary knows is applied.
    pub async fn ready(&self) -> Result<()> {
        let applied: Vec<i64> =
            match sqlx::query_scalar("select version from _sqlx_migrations where success")
                .fetch_all(&self.pool)
                .await
            {
                Ok(v) => v,
                Err(sqlx::Error::Database(_)) => return Err(StoreError::NotMigrated),
                Err(e) => return Err(e.into()),
            };
        if self
            .backend
            .migrator()
            .iter()
            .all(|m| applied.contains(&m.version))
        {
            Ok(())
        } else {
            Err(StoreError::NotMigrated)
        }
    }

    pub async fn close(&self) {
        self.pool.close().await;
        // On PostgreSQL the same pool: closed already, and closing again is a no-op. SQLite's
        // writer closes when its last store is dropped.
        if let Writes::Pool(pool) = &self.writes {
            pool.close().await;
        }
    }

    /// A write transaction (see [`Backend::begin`]).
    async fn write(&self) -> Result<Tx> {
        let slot = self.writer_slot().await;
        let conn = match &self.writes {
            Writes::Sqlite(writer) => sql::begin_sqlite(writer, BUSY_TIMEOUT).await?,
            Writes::Pool(pool) => sql::Conn::Any(pool.begin_with(self.backend.begin()).await?),
        };
        Ok(Tx { conn, _slot: slot })
    }

    /// This process's turn to write to the SQLite file (`None` on PostgreSQL, whose row
    /// locks let writers run concurrently). A slot held longer than SQLite's own busy timeout
    /// (a bug) is not waited for: the busy handler then decides, as without the slot.
    async fn writer_slot(&self) -> Option<OwnedMutexGuard<()>> {
        let slot = self.writer.clone()?;
        tokio::time::timeout(BUSY_TIMEOUT, slot.lock_owned())
            .await
            .ok()
    }

    /// Transaction 1: upserts the citizen and stores the message, unique on its provider id.
    /// A duplicate rolls back, so it changes nothing at all.
    pub async fn accept(&self, msg: &Inbound, now: i64) -> Result<Accepted> {
        match self.admit(msg, now).await? {
            Admitted::New { turn, inbox_id, .. } => {
                let citizen_id = turn.citizen().id;
                turn.commit().await?;
                Ok(Accepted::New {
                    citizen_id,
                    inbox_id,
                })
            }
            Admitted::Duplicate { citizen_id } => Ok(Accepted::Duplicate { citizen_id }),
        }
    }

    /// Transaction 1 left open as the citizen's turn: the message is stored once the turn
    /// commits, so the caller may process it first and store, process and reply in one commit
    /// (or commit it unprocessed). A duplicate rolls back, so it changes nothing at all.
    ///
    /// The citizen's row is written (and so, on PostgreSQL, locked like [`Store::lock_citizen`]
    /// does) before the message is inserted: two messages of one citizen arriving at two
    /// replicas get their inbox ids in the order they commit, so no turn can see a later
    /// message before an earlier one. One statement upserts the citizen, moves their
    /// `last_inbound_at` (the WhatsApp customer-service window opens when the citizen writes;
    /// the provider's timestamp is that moment, ours the fallback) and returns their row. On
    /// WhatsApp the citizen is reachable again and their rows waiting for the window are due.
    pub async fn admit(&self, msg: &Inbound, now: i64) -> Result<Admitted> {
        let payload = serde_json::to_string(msg).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let written = if msg.sent_at > 0 {
            msg.sent_at.min(now)
        } else {
            now
        };
        let whatsapp = msg.channel == Channel::Whatsapp;
        let reachable = if whatsapp { ", unreachable = 0" } else { "" };
        let upsert = format!(
            "insert into citizens (channel, external_id, pushes_enabled, unreachable, created_at, last_inbound_at) \
             values ($1, $2, 1, 0, $3, $4) on conflict (channel, external_id) do update set \
             last_inbound_at = case when coalesce(citizens.last_inbound_at, 0) > excluded.last_inbound_at \
             then citizens.last_inbound_at else excluded.last_inbound_at end{reachable} \
             returning {CITIZEN_COLUMNS}"
        );
        let mut tx = self.write().await?;
        let row = sql::query(&upsert)
            .bind(msg.channel.as_str())
            .bind(&msg.sender)
            .bind(now)
            .bind(written)
            .fetch_one(&mut *tx)
            .await?;
        let citizen = citizen_from_row(&row)?;
        let inbox_id: Option<i64> = sql::query_scalar(
            "insert into inbox (channel, provider_id, citizen_id, payload, received_at) values ($1, $2, $3, $4, $5) \
             on conflict (channel, provider_id) do nothing returning id",
        )
        .bind(msg.channel.as_str())
        .bind(&msg.provider_id)
        .bind(citizen.id)
        .bind(&payload)
        .bind(now)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(inbox_id) = inbox_id else {
            tx.rollback().await?;
            return Ok(Admitted::Duplicate {
                citizen_id: citizen.id,
            });
        };
        let woke = if whatsapp {
            whatsapp::wake_waiting(&mut tx, &msg.sender, now).await?
        } else {
            0
        };
        let mut turn = Turn::new(tx, citizen, self);
        if woke > 0 {
            turn.wrote_outbox();
        }
        Ok(Admitted::New {
            turn: Box::new(turn),
            inbox_id,
            woke,
        })
    }

    /// The citizen with this channel identity, created if new (for `seva chat`).
    pub async fn ensure_citizen(
        &self,
        channel: Channel,
        external_id: &str,
        now: i64,
    ) -> Result<Citizen> {
        if let Some(c) = self.find_citizen(channel, external_id).await? {
            return Ok(c);
        }
        let mut tx = self.write().await?;
        upsert_citizen(&mut tx, channel, external_id, now).await?;
        tx.commit().await?;
        self.find_citizen(channel, external_id)
            .await?
            .ok_or(StoreError::NotFound("citizen"))
    }

    pub async fn find_citizen(
        &self,
        channel: Channel,
        external_id: &str,
    ) -> Result<Option<Citizen>> {
        let sql = format!(
            "select {CITIZEN_COLUMNS} from citizens where channel = $1 and external_id = $2"
        );
        let row = sql::query(&sql)
            .bind(channel.as_str())
            .bind(external_id)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| citizen_from_row(&r)).transpose()
    }

    pub async fn citizen(&self, id: i64) -> Result<Option<Citizen>> {
        let sql = format!("select {CITIZEN_COLUMNS} from citizens where id = $1");
        let row = sql::query(&sql).bind(id).fetch_optional(&self.pool).await?;
        row.map(|r| citizen_from_row(&r)).transpose()
    }

    /// Citizens with stored but unprocessed messages, oldest waiting first (for the sweeper).
    pub async fn citizens_with_unprocessed(&self) -> Result<Vec<i64>> {
        sql::query_scalar(
            "select citizen_id from inbox where processed_at is null group by citizen_id order by min(id)",
        )
        .fetch_all(&self.pool)
        .await
    }

    /// Transaction 2 for one citizen: holds the citizen's lock until the [`Turn`] commits or
    /// drops, across every process on the database. SQLite: `begin immediate` locks the whole
    /// database, which covers the citizen; PostgreSQL: `select … for no key update` on the
    /// citizen row, which other turns of this citizen (on any replica) and transaction 1 of
    /// their next message wait for.
    pub async fn lock_citizen(&self, citizen_id: i64) -> Result<Turn> {
        let mut tx = self.write().await?;
        let lock = match self.backend {
            Backend::Sqlite => "",
            Backend::Postgres => " for no key update",
        };
        let sql = format!("select {CITIZEN_COLUMNS} from citizens where id = $1{lock}");
        let row = sql::query(&sql)
            .bind(citizen_id)
            .fetch_optional(&mut *tx)
            .await?;
        let citizen = row
            .map(|r| citizen_from_row(&r))
            .transpose()?
            .ok_or(StoreError::NotFound("citizen"))?;
        Ok(Turn::new(tx, citizen, self))
    }

    /// Writes one outbox row in its own transaction (pushes from the CLI, tests).
    pub async fn enqueue(&self, row: &NewOutbox, now: i64) -> Result<i64> {
        let ids = self.enqueue_all(std::slice::from_ref(row), now).await?;
        Ok(ids[0])
    }

    /// Writes `rows` to the outbox in one transaction (all or none), in order; returns their
    /// ids. A fan-out written this way reaches the dispatcher as one burst.
    pub async fn enqueue_all(&self, rows: &[NewOutbox], now: i64) -> Result<Vec<i64>> {
        let mut tx = self.write().await?;
        let mut ids = Vec::with_capacity(rows.len());
        for row in rows {
            ids.push(insert_outbox(&mut tx, row, now).await?);
        }
        wakeup::wake_dispatchers(&mut tx, self.backend).await?;
        tx.commit().await?;
        Ok(ids)
    }

    /// Puts rows left in `sending` back to pending: a crashed dispatcher's (at start), or the
    /// previous leader's when this dispatcher takes over a channel. Scoped to the channels (and
    /// recipient) the caller owns, so `seva chat` never resets `serve`'s in-flight rows.
    pub async fn reset_sending(
        &self,
        channels: &[Channel],
        recipient: Option<&str>,
    ) -> Result<u64> {
        if channels.is_empty() {
            return Ok(0);
        }
        let mut sql = format!(
            "update outbox set status = 'pending', claimed_until = null where status = 'sending' \
             and channel in ({})",
            placeholders(1, channels.len())
        );
        if recipient.is_some() {
            sql.push_str(&format!(" and recipient = ${}", channels.len() + 1));
        }
        let mut q = sql::query(&sql);
        for c in channels {
            q = q.bind(c.as_str());
        }
        if let Some(r) = recipient {
            q = q.bind(r);
        }
        let mut tx = self.write().await?;
        let n = q.execute(&mut *tx).await?.rows_affected();
        tx.commit().await?;
        Ok(n)
    }

    /// Hands claimed rows that were never sent back to pending (a dispatcher stopping in the
    /// middle of a paced batch), so they go out at once after a restart or from another
    /// replica rather than after their lease.
    pub async fn release_claims(&self, ids: &[i64]) -> Result<u64> {
        if ids.is_empty() {
            return Ok(0);
        }
        let sql = format!(
            "update outbox set status = 'pending', claimed_until = null where status = 'sending' \
             and id in ({})",
            placeholders(1, ids.len())
        );
        let mut q = sql::query(&sql);
        for id in ids {
            q = q.bind(*id);
        }
        let mut tx = self.write().await?;
        let n = q.execute(&mut *tx).await?.rows_affected();
        tx.commit().await?;
        Ok(n)
    }

    /// The statement [`Store::claim_due`] runs: $1 now, $2 the lease's end, $3… the channels,
    /// then the recipient (if any), then the limit.
    fn claim_sql(&self, claim: &Claim<'_>) -> String {
        let mut n = 2 + claim.channels.len();
        let mut inner = format!(
            "select o.id from outbox o where ((o.status = 'pending' and o.next_attempt_at <= $1) \
             or (o.status = 'sending' and coalesce(o.claimed_until, 0) < $1)) and o.channel in ({})",
            placeholders(3, claim.channels.len())
        );
        if claim.recipient.is_some() {
            n += 1;
            inner.push_str(&format!(" and o.recipient = ${n}"));
        }
        // Kinds are fixed words, not input: written into the statement, not bound.
        let (lane, earlier) = match claim.lane {
            None => ("", ""),
            // Replies, and a push already due ahead of a reply to the same recipient: it rides
            // along (first, in order) instead of holding the reply until the bulk lane gets to
            // it. An earlier row that is not due (a push waiting for the WhatsApp window, a
            // retry later on) does not hold a reply back; an earlier reply always does.
            // Both lookups of a recipient's other rows name `status in ('pending', 'sending')`
            // word for word: SQLite uses the partial index `outbox_active` only for a query
            // that repeats its condition, and the full history of sent rows is not walked.
            Some(OutboxLane::Interactive) => (
                " and (o.kind = 'reply' or exists (select 1 from outbox r where r.channel = o.channel \
                 and r.recipient = o.recipient and r.id > o.id and r.status in ('pending', 'sending') \
                 and r.kind = 'reply' and r.status = 'pending'))",
                " and (e.kind = 'reply' or e.status = 'sending' or e.next_attempt_at <= $1)",
            ),
            Some(OutboxLane::Bulk) => (" and o.kind <> 'reply'", ""),
        };
        inner.push_str(lane);
        n += 1;
        inner.push_str(&format!(
            " and not exists (select 1 from outbox e where e.channel = o.channel and e.recipient = o.recipient \
             and e.id < o.id and e.status in ('pending', 'sending'){earlier}) order by o.id limit ${n}{}",
            self.backend.skip_locked()
        ));
        format!(
            "update outbox set status = 'sending', claimed_until = $2 where id in ({inner}) \
             returning {OUTBOX_COLUMNS}"
        )
    }

    /// Claims due rows (marks them `sending` for [`CLAIM_LEASE`] seconds), at most one per
    /// recipient: a row waits while an earlier row of the same recipient is pending or
    /// sending, so one recipient's messages leave in id order even across retries (for the
    /// interactive lane, see [`OutboxLane::Interactive`]). Dead rows
    /// do not hold later ones back. A `sending` row whose lease ran out is due again. On
    /// PostgreSQL, rows another dispatcher is claiming at this moment are skipped.
    pub async fn claim_due(&self, claim: &Claim<'_>, now: i64) -> Result<Vec<OutboxRow>> {
        if claim.channels.is_empty() {
            return Ok(Vec::new());
        }
        let sql = self.claim_sql(claim);
        let mut q = sql::query(&sql).bind(now).bind(now + CLAIM_LEASE);
        for c in claim.channels {
            q = q.bind(c.as_str());
        }
        if let Some(r) = claim.recipient {
            q = q.bind(r);
        }
        q = q.bind(i64::from(claim.limit));
        let mut tx = self.write().await?;
        let rows = q.fetch_all(&mut *tx).await?;
        tx.commit().await?;
        let mut rows = rows
            .iter()
            .map(outbox_from_row)
            .collect::<Result<Vec<_>>>()?;
        rows.sort_by_key(|r| r.id);
        Ok(rows)
    }

    /// Records the outcome of one send attempt; `attempts` is the row's new attempt count.
    pub async fn record_send(
        &self,
        id: i64,
        record: &SendRecord,
        attempts: u32,
        now: i64,
    ) -> Result<()> {
        let one = SendOutcomeRow {
            id,
            record: record.clone(),
            attempts,
            at: now,
        };
        self.record_sends(std::slice::from_ref(&one)).await
    }

    /// Records the outcomes of several send attempts in one transaction: a dispatcher sending
    /// a thousand messages a second commits a few dozen times a second, not a thousand.
    pub async fn record_sends(&self, outcomes: &[SendOutcomeRow]) -> Result<()> {
        if outcomes.is_empty() {
            return Ok(());
        }
        let mut tx = self.write().await?;
        if self.backend == Backend::Postgres && !self.lazy_commits {
            // No wait for the disk: the sooner a send is recorded, the fewer sends a crash of
            // this process repeats. Lost only if PostgreSQL itself crashes in the next moment,
            // and then the row is sent again (at least once) — never lost.
            sql::query("set local synchronous_commit = off")
                .execute(&mut *tx)
                .await?;
        }
        write_send_records(&mut tx, self.backend, outcomes).await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn outbox_row(&self, id: i64) -> Result<Option<OutboxRow>> {
        let sql = format!("select {OUTBOX_COLUMNS} from outbox where id = $1");
        let row = sql::query(&sql).bind(id).fetch_optional(&self.pool).await?;
        row.as_ref().map(outbox_from_row).transpose()
    }

    /// Outbox rows, newest first: the undelivered ones (not `sent`), or only the dead ones.
    pub async fn list_outbox(&self, dead_only: bool, limit: u32) -> Result<Vec<OutboxRow>> {
        let filter = if dead_only {
            "status = 'dead'"
        } else {
            "status <> 'sent'"
        };
        let sql =
            format!("select {OUTBOX_COLUMNS} from outbox where {filter} order by id desc limit $1");
        let rows = sql::query(&sql)
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(outbox_from_row).collect()
    }

    /// Undelivered and dead rows counted per channel, kind and status, with the oldest row's
    /// creation time: what the outbox gauges show, counted by the database however deep the
    /// backlog is.
    pub async fn outbox_tallies(&self) -> Result<Vec<OutboxTally>> {
        let rows = sql::query(
            "select channel, kind, status, count(*) as n, min(created_at) as oldest from outbox \
             where status in ('pending', 'sending', 'dead') group by channel, kind, status",
        )
        .fetch_all(&self.pool)
        .await?;
        let mut tallies = Vec::with_capacity(rows.len());
        for row in &rows {
            let channel: String = row.try_get("channel")?;
            let kind: String = row.try_get("kind")?;
            let status: String = row.try_get("status")?;
            tallies.push(OutboxTally {
                channel: Channel::parse(&channel)
                    .ok_or_else(|| StoreError::Corrupt(format!("outbox channel {channel}")))?,
                kind: OutboxKind::parse(&kind)
                    .ok_or_else(|| StoreError::Corrupt(format!("outbox kind {kind}")))?,
                status: OutboxStatus::parse(&status)
                    .ok_or_else(|| StoreError::Corrupt(format!("outbox status {status}")))?,
                count: u64::try_from(row.try_get::<i64, _>("n")?).unwrap_or(0),
                oldest_created_at: row.try_get("oldest")?,
            });
        }
        Ok(tallies)
    }

    /// Makes a dead (or waiting) row due now with a fresh attempt budget. Returns the row's
    /// status before the call; `sent` and `sending` rows are left alone.
    pub async fn retry_outbox(&self, id: i64, now: i64) -> Result<OutboxStatus> {
        let mut tx = self.write().await?;
        let sql = format!(
            "select status from outbox where id = $1{}",
            self.backend.for_update()
        );
        let status: Option<String> = sql::query_scalar(&sql)
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
        let status = status.ok_or(StoreError::NotFound("outbox message"))?;
        let status = OutboxStatus::parse(&status)
            .ok_or_else(|| StoreError::Corrupt(format!("outbox status {status}")))?;
        if matches!(status, OutboxStatus::Dead | OutboxStatus::Pending) {
            sql::query(
                "update outbox set status = 'pending', attempts = 0, next_attempt_at = $1 where id = $2",
            )
            .bind(now)
            .bind(id)
            .execute(&mut *tx)
            .await?;
            wakeup::wake_dispatchers(&mut tx, self.backend).await?;
        }
        tx.commit().await?;
        Ok(status)
    }
}

/// The SQLite URL with `mode=rwc` (create the file if missing), after creating its directory.
fn sqlite_url(url: &str) -> Result<String> {
    let options = SqliteConnectOptions::from_str(url)?;
    let file = options.get_filename();
    let memory = file.as_os_str() == ":memory:" || url.contains(":memory:");
    if let Some(dir) = file.parent().filter(|d| !d.as_os_str().is_empty())
        && !memory
    {
        std::fs::create_dir_all(dir)?;
    }
    if memory || url.contains("mode=") {
        return Ok(url.to_owned());
    }
    let sep = if url.contains('?') { '&' } else { '?' };
    Ok(format!("{url}{sep}mode=rwc"))
}

/// The citizen's id, inserting the citizen if new. `on conflict do nothing` rather than a
/// look-up first: on PostgreSQL a concurrent insert of the same citizen (another replica)
/// makes this wait for it, then find its row.
async fn upsert_citizen(tx: &mut Tx, channel: Channel, external_id: &str, now: i64) -> Result<i64> {
    let inserted: Option<i64> = sql::query_scalar(
        "insert into citizens (channel, external_id, pushes_enabled, unreachable, created_at) \
         values ($1, $2, 1, 0, $3) on conflict (channel, external_id) do nothing returning id",
    )
    .bind(channel.as_str())
    .bind(external_id)
    .bind(now)
    .fetch_optional(&mut **tx)
    .await?;
    if let Some(id) = inserted {
        return Ok(id);
    }
    sql::query_scalar("select id from citizens where channel = $1 and external_id = $2")
        .bind(channel.as_str())
        .bind(external_id)
        .fetch_one(&mut **tx)
        .await
}

pub(crate) async fn insert_outbox(tx: &mut Tx, row: &NewOutbox, now: i64) -> Result<i64> {
    let query = sql::query(
        "insert into outbox (citizen_id, channel, recipient, kind, content, lang, status, attempts, \
         next_attempt_at, created_at) values ($1, $2, $3, $4, $5, $6, 'pending', 0, $7, $7) returning id",
    );
    let row = bind_outbox_columns(query, row)
        .bind(now)
        .fetch_one(&mut **tx)
        .await?;
    row.try_get("id")
}

/// Binds `row`'s citizen, channel, recipient, kind, content and language, in that order.
fn bind_outbox_columns<'q>(query: sql::Query<'q>, row: &'q NewOutbox) -> sql::Query<'q> {
    query
        .bind(row.citizen_id)
        .bind(row.channel.as_str())
        .bind(&row.recipient)
        .bind(row.kind.as_str())
        .bind(&row.content)
        .bind(row.lang.map(Lang::code))
}

/// `sql` with each `?` replaced by `$1`, `$2`, … in order (for statements assembled from
/// optional parts; they hold no `?` of their own).
fn numbered(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len() + 8);
    let mut n = 0;
    for c in sql.chars() {
        if c == '?' {
            n += 1;
            out.push_str(&format!("${n}"));
        } else {
            out.push(c);
        }
    }
    out
}

/// `sql` as `backend` binds it fastest. On SQLite, `$1, $2, …` become plain `?` when they
/// appear once each and in order (otherwise `sql` is kept): sqlx binds a `$N` placeholder by
/// asking SQLite its name, which SQLite finds by walking the statement's list of names, so
/// binding n of them costs n² (a batch statement has hundreds), while a `?` has no name.
fn positional(backend: Backend, sql: String) -> String {
    if backend != Backend::Sqlite {
        return sql;
    }
    let mut out = String::with_capacity(sql.len());
    let mut expected = 1usize;
    let mut rest = sql.as_str();
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let digits = rest[at + 1..]
            .bytes()
            .take_while(u8::is_ascii_digit)
            .count();
        if rest[at + 1..at + 1 + digits].parse::<usize>() != Ok(expected) {
            return sql;
        }
        out.push('?');
        expected += 1;
        rest = &rest[at + 1 + digits..];
    }
    out.push_str(rest);
    out
}

/// `$from, $from+1, …`: `n` numbered placeholders, for an `in (…)` list.
fn placeholders(from: usize, n: usize) -> String {
    (from..from + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn corrupt(what: &str, value: &str) -> StoreError {
    StoreError::Corrupt(format!("{what} {value:?}"))
}

fn channel_of(s: &str) -> Result<Channel> {
    Channel::parse(s).ok_or_else(|| corrupt("channel", s))
}

fn lang_of(s: Option<String>) -> Result<Option<Lang>> {
    s.map(|s| Lang::from_code(&s).ok_or_else(|| corrupt("language", &s)))
        .transpose()
}

/// A 0/1 flag column (integers on both backends).
fn flag(r: &Row, column: &str) -> Result<bool> {
    Ok(r.try_get::<i64, _>(column)? != 0)
}

/// A count column that fits `u32` (attempts, parts).
fn count(r: &Row, column: &str) -> Result<u32> {
    Ok(r.try_get::<i64, _>(column)?.clamp(0, i64::from(u32::MAX)) as u32)
}

fn citizen_from_row(r: &Row) -> Result<Citizen> {
    Ok(Citizen {
        id: r.try_get("id")?,
        channel: channel_of(&r.try_get::<String, _>("channel")?)?,
        external_id: r.try_get("external_id")?,
        lang: lang_of(r.try_get("lang")?)?,
        phone: r.try_get("phone")?,
        pushes_enabled: flag(r, "pushes_enabled")?,
        unreachable: flag(r, "unreachable")?,
        created_at: r.try_get("created_at")?,
        last_inbound_at: r.try_get("last_inbound_at")?,
    })
}

fn outbox_from_row(r: &Row) -> Result<OutboxRow> {
    let kind: String = r.try_get("kind")?;
    let status: String = r.try_get("status")?;
    Ok(OutboxRow {
        id: r.try_get("id")?,
        citizen_id: r.try_get("citizen_id")?,
        channel: channel_of(&r.try_get::<String, _>("channel")?)?,
        recipient: r.try_get("recipient")?,
        kind: OutboxKind::parse(&kind).ok_or_else(|| corrupt("outbox kind", &kind))?,
        content: r.try_get("content")?,
        lang: lang_of(r.try_get("lang")?)?,
        status: OutboxStatus::parse(&status).ok_or_else(|| corrupt("outbox status", &status))?,
        attempts: count(r, "attempts")?,
        next_attempt_at: r.try_get("next_attempt_at")?,
        provider_id: r.try_get("provider_id")?,
        last_error: r.try_get("last_error")?,
        created_at: r.try_get("created_at")?,
        sent_at: r.try_get("sent_at")?,
    })
}

/// The outcomes of send attempts, written on `tx`: [`Store::record_sends`], and a batch's
/// riders ([`ride_along`]).
async fn write_send_records(
    tx: &mut Tx,
    backend: Backend,
    outcomes: &[SendOutcomeRow],
) -> Result<()> {
    // Sends that went through, the common case, in one statement per chunk.
    let sent: Vec<(&SendOutcomeRow, &String)> = outcomes
        .iter()
        .filter_map(|o| match &o.record {
            SendRecord::Sent { provider_id } => Some((o, provider_id)),
            _ => None,
        })
        .collect();
    for chunk in sent.chunks(ROWS_PER_STATEMENT) {
        let sql = multi_row::statement_text("send records", backend, padded(chunk.len()), || {
            let values = multi_row::value_rows(padded(chunk.len()), 4, |n| {
                format!("(${}, ${}, ${}, ${})", n[0], n[1], n[2], n[3])
            });
            // A `values` list names its columns column1, column2, … on both databases.
            positional(
                backend,
                format!(
                    "update outbox set status = 'sent', provider_id = v.column2, sent_at = v.column3, \
                     claimed_until = null, attempts = v.column4 from (values {values}) as v \
                     where outbox.id = v.column1"
                ),
            )
        });
        let mut q = sql::query(&sql);
        for (o, provider_id) in chunk {
            q = q
                .bind(o.id)
                .bind(*provider_id)
                .bind(o.at)
                .bind(i64::from(o.attempts));
        }
        // Padding rows have no id: they match no row.
        for _ in chunk.len()..padded(chunk.len()) {
            q = q
                .bind(None::<i64>)
                .bind(None::<&str>)
                .bind(None::<i64>)
                .bind(None::<i64>);
        }
        q.execute(&mut **tx).await?;
    }
    for o in outcomes {
        let q = match &o.record {
                SendRecord::Sent { .. } => continue,
                SendRecord::Retry {
                    next_attempt_at,
                    error,
                } => sql::query(
                    "update outbox set status = 'pending', next_attempt_at = $1, last_error = $2, claimed_until = null, \
                     attempts = $3 where id = $4",
                )
                .bind(next_attempt_at)
                .bind(error),
                SendRecord::Dead { error } => sql::query(
                    "update outbox set status = 'dead', last_error = $1, claimed_until = null, attempts = $2 \
                     where id = $3",
                )
                .bind(error),
            };
        q.bind(i64::from(o.attempts))
            .bind(o.id)
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use flows::reference::ReportKind;

    /// The plan SQLite picks for `sql` with `binds` (text), one line per step.
    async fn plan(store: &Store, sql: &str, binds: &[&str]) -> Vec<String> {
        let explain = format!("explain query plan {sql}");
        let mut q = sql::query(&explain);
        for b in binds {
            q = q.bind(*b);
        }
        q.fetch_all(&store.pool)
            .await
            .unwrap()
            .iter()
            .map(|r| r.try_get::<String, _>("detail").unwrap())
            .collect()
    }

    async fn fresh_sqlite() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("seva.db").display());
        let store = Store::open(&url).await.unwrap();
        (dir, store)
    }

    /// A new lost (or found) report reads the newest candidates of its item type and district
    /// straight off an index, not every open report of the district, sorted.
    #[tokio::test]
    async fn matching_a_lost_item_reads_only_candidates() {
        let (_dir, store) = fresh_sqlite().await;
        for kind in [ReportKind::Lost, ReportKind::Found] {
            let (other, sql) = reports::match_candidates_sql(kind).unwrap();
            let plan = plan(&store, &sql, &[other, "mobile", "d1", "1"]).await;
            assert!(
                plan.iter().any(|d| d.contains("reports_match")),
                "{kind:?}: {plan:#?}"
            );
            assert!(
                !plan.iter().any(|d| d.contains("TEMP B-TREE")),
                "{kind:?}: {plan:#?}"
            );
        }
    }

    /// Writes of the main pool and of the dispatcher's own pool run on one connection (a
    /// temp table is seen only by the connection that made it): another connection's commit
    /// would empty its page cache.
    #[tokio::test]
    async fn every_write_transaction_of_a_process_runs_on_one_sqlite_connection() {
        let (_dir, store) = fresh_sqlite().await;
        let own = store.own_pool().await.unwrap();
        let mut tx = store.write().await.unwrap();
        sql::query("create temp table written_here (x integer)")
            .execute(&mut *tx)
            .await
            .unwrap();
        tx.commit().await.unwrap();
        for s in [&own, &store, &own] {
            let mut tx = s.write().await.unwrap();
            sql::query("insert into written_here values (1)")
                .execute(&mut *tx)
                .await
                .unwrap();
            tx.commit().await.unwrap();
        }
    }

    /// SQLite gets plain `?` only where binding in order gives each placeholder its value.
    #[test]
    fn placeholders_become_positional_only_when_they_come_in_order() {
        let sql = "update t set a = $1 where id in ($2, $3, $10)";
        assert_eq!(
            positional(Backend::Sqlite, sql.to_owned()),
            sql,
            "$10 after $3"
        );
        let sql = "insert into t values ($1, $2), ($3, $1)";
        assert_eq!(positional(Backend::Sqlite, sql.to_owned()), sql, "$1 twice");
        assert_eq!(
            positional(Backend::Sqlite, "select $1, $2 where x in ($3)".to_owned()),
            "select ?, ? where x in (?)"
        );
        let sql = "select $1, $2";
        assert_eq!(positional(Backend::Postgres, sql.to_owned()), sql);
    }

    /// Lookups of a provider id, a dedupe key and old processed messages stay on the partial
    /// indexes that hold only rows with a value (migrations/*/0011_lean_indexes.sql).
    #[tokio::test]
    async fn lookups_use_the_partial_indexes() {
        let (_dir, store) = fresh_sqlite().await;
        for (sql, index) in [
            (
                "select id from outbox where channel = $1 and provider_id = $2",
                "outbox_provider",
            ),
            (
                "select id from outbox where dedupe_key = $1",
                "outbox_dedupe",
            ),
            (
                "select id from inbox where processed_at is not null and processed_at < $1",
                "inbox_processed",
            ),
        ] {
            let plan = plan(&store, sql, &["whatsapp", "x"]).await;
            assert!(plan.iter().any(|d| d.contains(index)), "{sql}: {plan:#?}");
        }
    }

    /// A batch's look for messages a failed turn or a crash left unprocessed must stay on the
    /// partial index that holds only those, not walk each citizen's whole inbox.
    #[tokio::test]
    async fn a_batch_looks_for_leftover_messages_only_among_unprocessed_ones() {
        let (_dir, store) = fresh_sqlite().await;
        let sql = batch::leftovers_sql(Backend::Sqlite, 3);
        let plan = plan(&store, &sql, &["1", "2", "3"]).await;
        assert!(
            plan.iter().any(|d| d.contains("inbox_unprocessed")),
            "{plan:#?}"
        );
    }

    /// The claim's lookups of a recipient's earlier and later rows must stay on the partial
    /// index of rows in flight: on a full index they walk every row the recipient was ever
    /// sent, and claims slow down as history grows (see migrations/*/0010_outbox_active.sql).
    #[tokio::test]
    async fn the_claim_looks_only_at_rows_in_flight() {
        let (_dir, store) = fresh_sqlite().await;
        for lane in [OutboxLane::Interactive, OutboxLane::Bulk] {
            let claim = Claim {
                channels: &[Channel::Whatsapp, Channel::Telegram],
                recipient: None,
                lane: Some(lane),
                limit: 64,
            };
            let sql = store.claim_sql(&claim);
            let plan = plan(&store, &sql, &["0", "0", "whatsapp", "telegram", "64"]).await;
            let lookups: Vec<&String> = plan.iter().filter(|d| d.contains("recipient=?")).collect();
            let expected = if lane == OutboxLane::Interactive {
                2
            } else {
                1
            };
            assert_eq!(lookups.len(), expected, "{lane:?}: {plan:#?}");
            assert!(
                lookups.iter().all(|d| d.contains("outbox_active")),
                "{lane:?}: {plan:#?}"
            );
        }
    }
}
