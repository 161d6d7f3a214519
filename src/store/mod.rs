//! The store: every SQL statement Seva runs lives in this module.
//!
//! [`Store`] is the pool-level API (transaction 1, the outbox, the CLI); [`Turn`] is transaction
//! 2, opened by [`Store::lock_citizen`] and holding that citizen's lock until commit.
//!
//! Only SQLite is implemented. The statements are plain lowercase SQL with runtime binding; the
//! SQLite-only parts are marked where they sit (`begin immediate` as the lock, `max()` as a
//! scalar, `returning` after `update`). A PostgreSQL store follows the same method list over
//! `migrations/postgres`: `select … for update` on the citizen row for [`Store::lock_citizen`]
//! and `for update skip locked` in [`Store::claim_due`].
//!
//! SQLite runs in WAL mode with `synchronous=NORMAL`, a busy timeout and foreign keys, and every
//! write transaction starts with `begin immediate`: a deferred transaction that reads and then
//! writes fails with "busy" when `serve`, `seva chat` and the CLI share the file.

mod reports;
pub mod telegram;
mod turn;
mod whatsapp;

use std::str::FromStr;
use std::time::Duration;

use flows::Lang;
use flows::message::{Channel, Inbound};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow,
    SqliteSynchronous,
};
use sqlx::{Row, Sqlite, Transaction};

pub use reports::{
    Actor, AttachmentRecord, AuditEntry, ChangeFailure, Changed, EVENTS_RECIPIENT, HistoryEntry,
    Notices, Officer, ReportDetail, ReportFilter, ReportRecord, Scope,
};
pub use turn::{Filing, StoredReport, Turn};
pub use whatsapp::{MediaJob, MediaRecord, StatusApplied, WhatsappSendState};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

/// How long a writer waits for another process's write transaction before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(15);

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
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

/// Seva's database. Cheap to clone (a pool handle).
#[derive(Clone, Debug)]
pub struct Store {
    pool: SqlitePool,
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

/// An inbox row waiting to be processed.
#[derive(Debug, Clone, PartialEq)]
pub struct InboxRow {
    pub id: i64,
    /// JSON of the `flows::message::Inbound`.
    pub payload: String,
    pub received_at: i64,
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
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutboxStatus {
    /// Waiting for its `next_attempt_at`.
    Pending,
    /// Claimed by a dispatcher; reset to pending at start if a crash left it here.
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

/// Which due outbox rows a dispatcher may claim.
#[derive(Debug, Clone, Copy)]
pub struct Claim<'a> {
    /// Only these channels (the ones this process can send on).
    pub channels: &'a [Channel],
    /// Only this recipient (`seva chat` delivers to its own citizen only).
    pub recipient: Option<&'a str>,
    pub limit: u32,
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

const OUTBOX_COLUMNS: &str = "id, citizen_id, channel, recipient, kind, content, lang, status, attempts, \
     next_attempt_at, provider_id, last_error, created_at, sent_at";

const CITIZEN_COLUMNS: &str = "id, channel, external_id, lang, phone, pushes_enabled, unreachable, created_at, last_inbound_at";

impl Store {
    /// Connects (creating the SQLite file and its directory) and applies migrations.
    pub async fn open(url: &str) -> Result<Store> {
        let store = Store::connect(url).await?;
        store.migrate().await?;
        Ok(store)
    }

    /// Connects without migrating.
    pub async fn connect(url: &str) -> Result<Store> {
        if !url.starts_with("sqlite:") {
            return Err(StoreError::Unsupported(
                "only sqlite:// database URLs are supported so far (PostgreSQL is planned)"
                    .to_owned(),
            ));
        }
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(BUSY_TIMEOUT)
            .foreign_keys(true);
        let file = options.get_filename();
        if let Some(dir) = file.parent().filter(|d| !d.as_os_str().is_empty())
            && file.as_os_str() != ":memory:"
        {
            std::fs::create_dir_all(dir)?;
        }
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await?;
        Ok(Store { pool })
    }

    pub async fn migrate(&self) -> Result<()> {
        MIGRATOR.run(&self.pool).await?;
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
        if MIGRATOR.iter().all(|m| applied.contains(&m.version)) {
            Ok(())
        } else {
            Err(StoreError::NotMigrated)
        }
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// A write transaction. SQLite: `begin immediate` takes the database's write lock up front.
    async fn write(&self) -> Result<Transaction<'static, Sqlite>> {
        Ok(self.pool.begin_with("begin immediate").await?)
    }

    /// Transaction 1: upserts the citizen and stores the message, unique on its provider id.
    /// A duplicate rolls back, so it changes nothing at all.
    pub async fn accept(&self, msg: &Inbound, now: i64) -> Result<Accepted> {
        let payload = serde_json::to_string(msg).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let mut tx = self.write().await?;
        let existing: Option<i64> =
            sqlx::query_scalar("select id from citizens where channel = ? and external_id = ?")
                .bind(msg.channel.as_str())
                .bind(&msg.sender)
                .fetch_optional(&mut *tx)
                .await?;
        let citizen_id = match existing {
            Some(id) => id,
            None => insert_citizen(&mut tx, msg.channel, &msg.sender, now).await?,
        };
        let inbox_id: Option<i64> = sqlx::query_scalar(
            "insert into inbox (channel, provider_id, citizen_id, payload, received_at) values (?, ?, ?, ?, ?) \
             on conflict (channel, provider_id) do nothing returning id",
        )
        .bind(msg.channel.as_str())
        .bind(&msg.provider_id)
        .bind(citizen_id)
        .bind(&payload)
        .bind(now)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(inbox_id) = inbox_id else {
            tx.rollback().await?;
            return Ok(Accepted::Duplicate { citizen_id });
        };
        // The WhatsApp customer-service window opens when the citizen writes; the provider's
        // timestamp is that moment, ours is the fallback.
        let written = if msg.sent_at > 0 {
            msg.sent_at.min(now)
        } else {
            now
        };
        sqlx::query("update citizens set last_inbound_at = max(coalesce(last_inbound_at, 0), ?) where id = ?")
            .bind(written)
            .bind(citizen_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(Accepted::New {
            citizen_id,
            inbox_id,
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
        let existing: Option<i64> =
            sqlx::query_scalar("select id from citizens where channel = ? and external_id = ?")
                .bind(channel.as_str())
                .bind(external_id)
                .fetch_optional(&mut *tx)
                .await?;
        if existing.is_none() {
            insert_citizen(&mut tx, channel, external_id, now).await?;
        }
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
        let sql =
            format!("select {CITIZEN_COLUMNS} from citizens where channel = ? and external_id = ?");
        let row = sqlx::query(&sql)
            .bind(channel.as_str())
            .bind(external_id)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| citizen_from_row(&r)).transpose()
    }

    pub async fn citizen(&self, id: i64) -> Result<Option<Citizen>> {
        let sql = format!("select {CITIZEN_COLUMNS} from citizens where id = ?");
        let row = sqlx::query(&sql)
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| citizen_from_row(&r)).transpose()
    }

    /// Citizens with stored but unprocessed messages, oldest waiting first (for the sweeper).
    pub async fn citizens_with_unprocessed(&self) -> Result<Vec<i64>> {
        Ok(sqlx::query_scalar(
            "select citizen_id from inbox where processed_at is null group by citizen_id order by min(id)",
        )
        .fetch_all(&self.pool)
        .await?)
    }

    /// Transaction 2 for one citizen: holds the citizen's lock until the [`Turn`] commits or
    /// drops. SQLite: `begin immediate` locks the whole database, which covers the citizen;
    /// PostgreSQL: `select … for update` on the citizen row.
    pub async fn lock_citizen(&self, citizen_id: i64) -> Result<Turn> {
        let mut tx = self.write().await?;
        let sql = format!("select {CITIZEN_COLUMNS} from citizens where id = ?");
        let row = sqlx::query(&sql)
            .bind(citizen_id)
            .fetch_optional(&mut *tx)
            .await?;
        let citizen = row
            .map(|r| citizen_from_row(&r))
            .transpose()?
            .ok_or(StoreError::NotFound("citizen"))?;
        Ok(Turn::new(tx, citizen))
    }

    /// Writes one outbox row in its own transaction (pushes from the CLI, tests).
    pub async fn enqueue(&self, row: &NewOutbox, now: i64) -> Result<i64> {
        let mut tx = self.write().await?;
        let id = insert_outbox(&mut tx, row, now).await?;
        tx.commit().await?;
        Ok(id)
    }

    /// Puts rows a crashed dispatcher left in `sending` back to pending. Scoped to the channels
    /// (and recipient) this process owns, so `seva chat` never resets `serve`'s in-flight rows.
    pub async fn reset_sending(
        &self,
        channels: &[Channel],
        recipient: Option<&str>,
    ) -> Result<u64> {
        if channels.is_empty() {
            return Ok(0);
        }
        let mut sql = format!(
            "update outbox set status = 'pending' where status = 'sending' and channel in ({})",
            placeholders(channels.len())
        );
        if recipient.is_some() {
            sql.push_str(" and recipient = ?");
        }
        let mut q = sqlx::query(&sql);
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

    /// Claims due pending rows (marks them `sending`), at most one per recipient: a row waits
    /// while an earlier row of the same recipient is pending or sending, so one recipient's
    /// messages leave in id order even across retries. Dead rows do not hold later ones back.
    pub async fn claim_due(&self, claim: &Claim<'_>, now: i64) -> Result<Vec<OutboxRow>> {
        if claim.channels.is_empty() {
            return Ok(Vec::new());
        }
        let mut inner = format!(
            "select o.id from outbox o where o.status = 'pending' and o.next_attempt_at <= ? and o.channel in ({})",
            placeholders(claim.channels.len())
        );
        if claim.recipient.is_some() {
            inner.push_str(" and o.recipient = ?");
        }
        inner.push_str(
            " and not exists (select 1 from outbox e where e.channel = o.channel and e.recipient = o.recipient \
             and e.id < o.id and e.status in ('pending', 'sending')) order by o.id limit ?",
        );
        let sql = format!(
            "update outbox set status = 'sending' where id in ({inner}) returning {OUTBOX_COLUMNS}"
        );
        let mut q = sqlx::query(&sql).bind(now);
        for c in claim.channels {
            q = q.bind(c.as_str());
        }
        if let Some(r) = claim.recipient {
            q = q.bind(r);
        }
        q = q.bind(claim.limit);
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
        let q = match record {
            SendRecord::Sent { provider_id } => {
                sqlx::query("update outbox set status = 'sent', provider_id = ?, sent_at = ?, attempts = ? where id = ?")
                    .bind(provider_id)
                    .bind(now)
            }
            SendRecord::Retry { next_attempt_at, error } => sqlx::query(
                "update outbox set status = 'pending', next_attempt_at = ?, last_error = ?, attempts = ? where id = ?",
            )
            .bind(next_attempt_at)
            .bind(error),
            SendRecord::Dead { error } => {
                sqlx::query("update outbox set status = 'dead', last_error = ?, attempts = ? where id = ?").bind(error)
            }
        };
        let mut tx = self.write().await?;
        q.bind(attempts).bind(id).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn outbox_row(&self, id: i64) -> Result<Option<OutboxRow>> {
        let sql = format!("select {OUTBOX_COLUMNS} from outbox where id = ?");
        let row = sqlx::query(&sql)
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
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
            format!("select {OUTBOX_COLUMNS} from outbox where {filter} order by id desc limit ?");
        let rows = sqlx::query(&sql).bind(limit).fetch_all(&self.pool).await?;
        rows.iter().map(outbox_from_row).collect()
    }

    /// Makes a dead (or waiting) row due now with a fresh attempt budget. Returns the row's
    /// status before the call; `sent` and `sending` rows are left alone.
    pub async fn retry_outbox(&self, id: i64, now: i64) -> Result<OutboxStatus> {
        let mut tx = self.write().await?;
        let status: Option<String> = sqlx::query_scalar("select status from outbox where id = ?")
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
        let status = status.ok_or(StoreError::NotFound("outbox message"))?;
        let status = OutboxStatus::parse(&status)
            .ok_or_else(|| StoreError::Corrupt(format!("outbox status {status}")))?;
        if matches!(status, OutboxStatus::Dead | OutboxStatus::Pending) {
            sqlx::query("update outbox set status = 'pending', attempts = 0, next_attempt_at = ? where id = ?")
                .bind(now)
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(status)
    }
}

async fn insert_citizen(
    tx: &mut Transaction<'static, Sqlite>,
    channel: Channel,
    external_id: &str,
    now: i64,
) -> Result<i64> {
    Ok(sqlx::query_scalar(
        "insert into citizens (channel, external_id, pushes_enabled, unreachable, created_at) \
         values (?, ?, 1, 0, ?) returning id",
    )
    .bind(channel.as_str())
    .bind(external_id)
    .bind(now)
    .fetch_one(&mut **tx)
    .await?)
}

pub(crate) async fn insert_outbox(
    tx: &mut Transaction<'static, Sqlite>,
    row: &NewOutbox,
    now: i64,
) -> Result<i64> {
    Ok(sqlx::query_scalar(
        "insert into outbox (citizen_id, channel, recipient, kind, content, lang, status, attempts, \
         next_attempt_at, created_at) values (?, ?, ?, ?, ?, ?, 'pending', 0, ?, ?) returning id",
    )
    .bind(row.citizen_id)
    .bind(row.channel.as_str())
    .bind(&row.recipient)
    .bind(row.kind.as_str())
    .bind(&row.content)
    .bind(row.lang.map(Lang::code))
    .bind(now)
    .bind(now)
    .fetch_one(&mut **tx)
    .await?)
}

fn placeholders(n: usize) -> String {
    vec!["?"; n].join(", ")
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

fn citizen_from_row(r: &SqliteRow) -> Result<Citizen> {
    Ok(Citizen {
        id: r.try_get("id")?,
        channel: channel_of(r.try_get("channel")?)?,
        external_id: r.try_get("external_id")?,
        lang: lang_of(r.try_get("lang")?)?,
        phone: r.try_get("phone")?,
        pushes_enabled: r.try_get("pushes_enabled")?,
        unreachable: r.try_get("unreachable")?,
        created_at: r.try_get("created_at")?,
        last_inbound_at: r.try_get("last_inbound_at")?,
    })
}

fn outbox_from_row(r: &SqliteRow) -> Result<OutboxRow> {
    let kind: String = r.try_get("kind")?;
    let status: String = r.try_get("status")?;
    Ok(OutboxRow {
        id: r.try_get("id")?,
        citizen_id: r.try_get("citizen_id")?,
        channel: channel_of(r.try_get("channel")?)?,
        recipient: r.try_get("recipient")?,
        kind: OutboxKind::parse(&kind).ok_or_else(|| corrupt("outbox kind", &kind))?,
        content: r.try_get("content")?,
        lang: lang_of(r.try_get("lang")?)?,
        status: OutboxStatus::parse(&status).ok_or_else(|| corrupt("outbox status", &status))?,
        attempts: r.try_get("attempts")?,
        next_attempt_at: r.try_get("next_attempt_at")?,
        provider_id: r.try_get("provider_id")?,
        last_error: r.try_get("last_error")?,
        created_at: r.try_get("created_at")?,
        sent_at: r.try_get("sent_at")?,
    })
}
