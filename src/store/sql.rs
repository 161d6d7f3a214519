//! The statements of write transactions, on either backend, through one small query API
//! shaped like sqlx's: `sql::query(text).bind(v).fetch_all(&mut *tx)`.
//!
//! Why not sqlx for these: sqlx drives every SQLite connection on a thread of its own, so each
//! statement, `begin` and `commit` is a hand-off to that thread and back — two context
//! switches on the one core a small deployment has (~3.2 per reply under load) — and its
//! `Any` driver copies every returned value twice (into a `SqliteRow`, then an `AnyRow`).
//! SQLite's writer connection is therefore driven here with rusqlite on the calling thread:
//! its statements are short (a batch's multi-row insert takes 30–190 µs) and they are the
//! ones every webhook waits for. Reads outside write transactions, the WAL checkpoints and
//! migrations stay on sqlx's pools, off the caller's thread. PostgreSQL statements go to
//! sqlx's `Any` driver unchanged.
//!
//! A write transaction waiting for another process's write lock (`seva chat`, the CLI) waits
//! asynchronously ([`begin_sqlite`]); a statement inside it never waits for a lock.

use std::borrow::Cow;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rusqlite::types::ValueRef;
use sqlx::any::AnyRow;
use sqlx::{Any, Row as _};
use tokio::sync::OwnedMutexGuard;

use super::{Result, StoreError};

/// Prepared statements kept per SQLite writer connection: every statement text the store
/// runs, with each padded size of the batch's multi-row statements.
const STATEMENT_CACHE: usize = 512;

/// A bound argument.
#[derive(Debug, Clone)]
pub(crate) enum Value<'q> {
    /// A null, with the type PostgreSQL is told it has.
    Null(NullOf),
    Int(i64),
    Text(Cow<'q, str>),
}

/// The type of a bound null (PostgreSQL checks it against the column's).
#[derive(Debug, Clone, Copy)]
pub(crate) enum NullOf {
    Int,
    Text,
}

/// What `bind` takes: the Rust types the store binds.
pub(crate) trait Bind<'q> {
    const NULL: NullOf;
    fn into_value(self) -> Value<'q>;
}

impl<'q> Bind<'q> for i64 {
    const NULL: NullOf = NullOf::Int;
    fn into_value(self) -> Value<'q> {
        Value::Int(self)
    }
}

impl<'q> Bind<'q> for &'q str {
    const NULL: NullOf = NullOf::Text;
    fn into_value(self) -> Value<'q> {
        Value::Text(Cow::Borrowed(self))
    }
}

impl<'q> Bind<'q> for &'q String {
    const NULL: NullOf = NullOf::Text;
    fn into_value(self) -> Value<'q> {
        Value::Text(Cow::Borrowed(self.as_str()))
    }
}

impl<'q> Bind<'q> for String {
    const NULL: NullOf = NullOf::Text;
    fn into_value(self) -> Value<'q> {
        Value::Text(Cow::Owned(self))
    }
}

impl<'q, T: Bind<'q>> Bind<'q> for Option<T> {
    const NULL: NullOf = T::NULL;
    fn into_value(self) -> Value<'q> {
        match self {
            Some(v) => v.into_value(),
            None => Value::Null(T::NULL),
        }
    }
}

impl<'q> Bind<'q> for &'q i64 {
    const NULL: NullOf = NullOf::Int;
    fn into_value(self) -> Value<'q> {
        Value::Int(*self)
    }
}

impl<'q> Bind<'q> for &'q Option<String> {
    const NULL: NullOf = NullOf::Text;
    fn into_value(self) -> Value<'q> {
        self.as_deref().into_value()
    }
}

/// A statement with its arguments, run with `execute` or one of the `fetch_*`.
#[must_use = "a query does nothing until it is executed or fetched"]
pub(crate) struct Query<'q> {
    sql: &'q str,
    args: Vec<Value<'q>>,
}

pub(crate) fn query(sql: &str) -> Query<'_> {
    Query {
        sql,
        args: Vec::new(),
    }
}

/// Where a statement runs: a write transaction's connection, or sqlx's pool (or one of its
/// connections) for reads outside one.
pub(crate) enum Target<'c> {
    Conn(&'c mut Conn),
    Pool(&'c sqlx::AnyPool),
    Any(&'c mut sqlx::AnyConnection),
}

impl<'c> From<&'c mut Conn> for Target<'c> {
    fn from(conn: &'c mut Conn) -> Target<'c> {
        Target::Conn(conn)
    }
}

impl<'c> From<&'c sqlx::AnyPool> for Target<'c> {
    fn from(pool: &'c sqlx::AnyPool) -> Target<'c> {
        Target::Pool(pool)
    }
}

impl<'c> From<&'c mut sqlx::AnyConnection> for Target<'c> {
    fn from(conn: &'c mut sqlx::AnyConnection) -> Target<'c> {
        Target::Any(conn)
    }
}

impl<'c> From<&'c mut sqlx::pool::PoolConnection<Any>> for Target<'c> {
    fn from(conn: &'c mut sqlx::pool::PoolConnection<Any>) -> Target<'c> {
        Target::Any(conn)
    }
}

/// What `execute` reports.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Done {
    rows_affected: u64,
}

impl Done {
    pub(crate) fn rows_affected(&self) -> u64 {
        self.rows_affected
    }
}

impl<'q> Query<'q> {
    pub(crate) fn bind(mut self, value: impl Bind<'q>) -> Self {
        self.args.push(value.into_value());
        self
    }

    pub(crate) async fn execute<'c>(self, on: impl Into<Target<'c>>) -> Result<Done> {
        let done = match on.into() {
            Target::Conn(Conn::Sqlite(tx)) => {
                let (_, rows_affected) = run_sqlite(&tx.conn, self.sql, &self.args, false)?;
                return Ok(Done { rows_affected });
            }
            Target::Conn(Conn::Any(tx)) => {
                any_query(self.sql, self.args).execute(&mut **tx).await?
            }
            Target::Pool(pool) => any_query(self.sql, self.args).execute(pool).await?,
            Target::Any(conn) => any_query(self.sql, self.args).execute(conn).await?,
        };
        Ok(Done {
            rows_affected: done.rows_affected(),
        })
    }

    pub(crate) async fn fetch_all<'c>(self, on: impl Into<Target<'c>>) -> Result<Vec<Row>> {
        let rows = match on.into() {
            Target::Conn(Conn::Sqlite(tx)) => {
                return Ok(run_sqlite(&tx.conn, self.sql, &self.args, true)?.0);
            }
            Target::Conn(Conn::Any(tx)) => {
                any_query(self.sql, self.args).fetch_all(&mut **tx).await?
            }
            Target::Pool(pool) => any_query(self.sql, self.args).fetch_all(pool).await?,
            Target::Any(conn) => any_query(self.sql, self.args).fetch_all(conn).await?,
        };
        Ok(rows.into_iter().map(Row::Any).collect())
    }

    pub(crate) async fn fetch_optional<'c>(self, on: impl Into<Target<'c>>) -> Result<Option<Row>> {
        let row = match on.into() {
            Target::Conn(Conn::Sqlite(tx)) => {
                return Ok(run_sqlite(&tx.conn, self.sql, &self.args, true)?
                    .0
                    .into_iter()
                    .next());
            }
            Target::Conn(Conn::Any(tx)) => {
                any_query(self.sql, self.args)
                    .fetch_optional(&mut **tx)
                    .await?
            }
            Target::Pool(pool) => any_query(self.sql, self.args).fetch_optional(pool).await?,
            Target::Any(conn) => any_query(self.sql, self.args).fetch_optional(conn).await?,
        };
        Ok(row.map(Row::Any))
    }

    pub(crate) async fn fetch_one<'c>(self, on: impl Into<Target<'c>>) -> Result<Row> {
        self.fetch_optional(on)
            .await?
            .ok_or(StoreError::Db(sqlx::Error::RowNotFound))
    }
}

/// A statement whose rows are one value each.
#[must_use = "a query does nothing until it is fetched"]
pub(crate) struct QueryScalar<'q, O> {
    query: Query<'q>,
    _out: PhantomData<O>,
}

pub(crate) fn query_scalar<O: Decode>(sql: &str) -> QueryScalar<'_, O> {
    QueryScalar {
        query: query(sql),
        _out: PhantomData,
    }
}

impl<'q, O: Decode> QueryScalar<'q, O> {
    pub(crate) fn bind(mut self, value: impl Bind<'q>) -> Self {
        self.query = self.query.bind(value);
        self
    }

    pub(crate) async fn fetch_all<'c>(self, on: impl Into<Target<'c>>) -> Result<Vec<O>> {
        self.query
            .fetch_all(on)
            .await?
            .iter()
            .map(|row| row.try_get(0))
            .collect()
    }

    pub(crate) async fn fetch_optional<'c>(self, on: impl Into<Target<'c>>) -> Result<Option<O>> {
        self.query
            .fetch_optional(on)
            .await?
            .map(|row| row.try_get(0))
            .transpose()
    }

    pub(crate) async fn fetch_one<'c>(self, on: impl Into<Target<'c>>) -> Result<O> {
        self.query.fetch_one(on).await?.try_get(0)
    }
}

fn any_query<'q>(
    sql: &'q str,
    args: Vec<Value<'q>>,
) -> sqlx::query::Query<'q, Any, sqlx::any::AnyArguments<'q>> {
    let mut q = sqlx::query(sql);
    for arg in args {
        q = match arg {
            Value::Null(NullOf::Int) => q.bind(None::<i64>),
            Value::Null(NullOf::Text) => q.bind(None::<String>),
            Value::Int(v) => q.bind(v),
            Value::Text(Cow::Borrowed(v)) => q.bind(v),
            Value::Text(Cow::Owned(v)) => q.bind(v),
        };
    }
    q
}

/// A connection a write transaction holds.
pub(crate) enum Conn {
    /// SQLite's writer connection, driven on the caller's thread.
    Sqlite(SqliteTx),
    /// PostgreSQL, through sqlx.
    Any(sqlx::Transaction<'static, Any>),
}

impl Conn {
    pub(crate) async fn commit(self) -> Result<()> {
        match self {
            Conn::Sqlite(mut tx) => {
                run_sqlite(&tx.conn, "commit", &[], false)?;
                tx.open = false;
                Ok(())
            }
            Conn::Any(tx) => Ok(tx.commit().await?),
        }
    }

    pub(crate) async fn rollback(self) -> Result<()> {
        match self {
            Conn::Sqlite(mut tx) => {
                tx.open = false;
                run_sqlite(&tx.conn, "rollback", &[], false)?;
                Ok(())
            }
            Conn::Any(tx) => Ok(tx.rollback().await?),
        }
    }
}

/// SQLite's writer connection in a transaction; dropped open, the transaction rolls back
/// (at once: nothing here waits).
pub(crate) struct SqliteTx {
    conn: OwnedMutexGuard<rusqlite::Connection>,
    open: bool,
}

impl Drop for SqliteTx {
    fn drop(&mut self) {
        if self.open && !self.conn.is_autocommit() {
            // A failed rollback leaves the connection in its transaction, and the next
            // `begin` fails loudly rather than writing into it.
            if let Err(e) = self.conn.execute_batch("rollback") {
                tracing::warn!(error = %e, "rolling back a dropped sqlite transaction failed");
            }
        }
    }
}

/// SQLite's writer connection for one database file: set up as sqlx's pools are, and
/// shared by the stores of one process that write to that file.
pub(crate) type SqliteWriter = Arc<tokio::sync::Mutex<rusqlite::Connection>>;

/// Opens the writer connection on `filename` (a path, or an SQLite URI for an in-memory
/// database) with `setup`'s pragmas run on it.
pub(crate) fn open_sqlite_writer(
    filename: &std::path::Path,
    busy_timeout: Duration,
    setup: &[&str],
) -> Result<SqliteWriter> {
    use rusqlite::OpenFlags;
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_CREATE
        | OpenFlags::SQLITE_OPEN_URI
        | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = rusqlite::Connection::open_with_flags(filename, flags)?;
    conn.busy_timeout(busy_timeout)?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    for pragma in setup {
        run_sqlite(&conn, pragma, &[], false)?;
    }
    Ok(Arc::new(tokio::sync::Mutex::new(conn)))
}

/// Opens a write transaction on the writer connection (`begin immediate`). While another
/// process holds the file's write lock this waits here, asynchronously, for up to
/// `busy_timeout`, and SQLite's own busy handler (which would sleep on this thread) is not
/// used for it.
pub(crate) async fn begin_sqlite(writer: &SqliteWriter, busy_timeout: Duration) -> Result<Conn> {
    let mut conn = writer.clone().lock_owned().await;
    let deadline = Instant::now() + busy_timeout;
    {
        // Put back even if this future is dropped while it waits.
        let off = BusyHandlerOff::new(&mut conn, busy_timeout)?;
        let mut pause = Duration::from_millis(1);
        loop {
            match run_sqlite(off.conn, "begin immediate", &[], false) {
                Err(StoreError::Sqlite(rusqlite::Error::SqliteFailure(e, _)))
                    if e.code == rusqlite::ErrorCode::DatabaseBusy && Instant::now() < deadline =>
                {
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_millis(20));
                }
                other => break other.map(|_| ())?,
            };
        }
    }
    Ok(Conn::Sqlite(SqliteTx { conn, open: true }))
}

/// SQLite's busy handler switched off on a connection until this is dropped, then set back
/// to `restore`.
/// (Held across `await`s, so it borrows the guard mutably: a shared `&Connection` is not
/// `Send`.)
struct BusyHandlerOff<'c> {
    conn: &'c mut OwnedMutexGuard<rusqlite::Connection>,
    restore: Duration,
}

impl<'c> BusyHandlerOff<'c> {
    fn new(
        conn: &'c mut OwnedMutexGuard<rusqlite::Connection>,
        restore: Duration,
    ) -> Result<BusyHandlerOff<'c>> {
        conn.busy_timeout(Duration::ZERO)?;
        Ok(BusyHandlerOff { conn, restore })
    }
}

impl Drop for BusyHandlerOff<'_> {
    fn drop(&mut self) {
        if let Err(e) = self.conn.busy_timeout(self.restore) {
            tracing::warn!(error = %e, "restoring sqlite's busy timeout failed");
        }
    }
}

/// Runs one statement on SQLite: binds `args` by the number in each `$N` (as sqlx does; SQLite
/// itself would number parameters in order of appearance), steps through every row, and
/// returns them if `keep_rows`, with the number of rows changed.
fn run_sqlite(
    conn: &rusqlite::Connection,
    sql: &str,
    args: &[Value<'_>],
    keep_rows: bool,
) -> Result<(Vec<Row>, u64)> {
    let mut stmt = conn.prepare_cached(sql)?;
    for i in 1..=stmt.parameter_count() {
        let n = stmt
            .parameter_name(i)
            .and_then(|name| name.get(1..))
            .and_then(|digits| digits.parse::<usize>().ok())
            .unwrap_or(i);
        let arg = args.get(n - 1).ok_or_else(|| {
            StoreError::Corrupt(format!(
                "statement wants argument {n}, {} bound",
                args.len()
            ))
        })?;
        match arg {
            Value::Null(_) => stmt.raw_bind_parameter(i, rusqlite::types::Null)?,
            Value::Int(v) => stmt.raw_bind_parameter(i, v)?,
            Value::Text(v) => stmt.raw_bind_parameter(i, v.as_ref())?,
        }
    }
    let width = stmt.column_count();
    let columns: Option<Arc<[Box<str>]>> = (keep_rows && width > 0)
        .then(|| {
            (0..width)
                .map(|i| stmt.column_name(i).map(Box::from))
                .collect::<rusqlite::Result<_>>()
        })
        .transpose()?;
    let mut out = Vec::new();
    let mut rows = stmt.raw_query();
    while let Some(row) = rows.next()? {
        if let Some(columns) = &columns {
            let mut values = Vec::with_capacity(width);
            for i in 0..width {
                values.push(Owned::from(row.get_ref(i)?));
            }
            out.push(Row::Sqlite {
                columns: columns.clone(),
                values,
            });
        }
    }
    drop(rows);
    Ok((out, conn.changes()))
}

/// A value read from SQLite.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Owned {
    Null,
    Int(i64),
    Real(f64),
    Text(String),
    Blob(Vec<u8>),
}

impl Owned {
    fn kind(&self) -> &'static str {
        match self {
            Owned::Null => "null",
            Owned::Int(_) => "an integer",
            Owned::Real(_) => "a real",
            Owned::Text(_) => "text",
            Owned::Blob(_) => "a blob",
        }
    }
}

impl From<ValueRef<'_>> for Owned {
    fn from(v: ValueRef<'_>) -> Owned {
        match v {
            ValueRef::Null => Owned::Null,
            ValueRef::Integer(i) => Owned::Int(i),
            ValueRef::Real(r) => Owned::Real(r),
            ValueRef::Text(t) => Owned::Text(String::from_utf8_lossy(t).into_owned()),
            ValueRef::Blob(b) => Owned::Blob(b.to_vec()),
        }
    }
}

/// A row a statement returned.
pub(crate) enum Row {
    Sqlite {
        columns: Arc<[Box<str>]>,
        values: Vec<Owned>,
    },
    Any(AnyRow),
}

impl From<AnyRow> for Row {
    fn from(row: AnyRow) -> Row {
        Row::Any(row)
    }
}

impl Row {
    /// The column `index` (a name, or a position from 0) as a `T`.
    pub(crate) fn try_get<T: Decode, I: ColumnIndex>(&self, index: I) -> Result<T> {
        match self {
            Row::Sqlite { columns, values } => {
                let i = index.position(columns)?;
                T::from_sqlite(&values[i]).ok_or_else(|| {
                    // The kind of value only: the value may be a citizen's text.
                    StoreError::Corrupt(format!(
                        "column {} holds {}, not a {}",
                        columns[i],
                        values[i].kind(),
                        std::any::type_name::<T>()
                    ))
                })
            }
            Row::Any(row) => Ok(index.get_any(row)?),
        }
    }
}

/// A column by name or position.
pub(crate) trait ColumnIndex: Copy {
    fn position(self, columns: &[Box<str>]) -> Result<usize>;
    fn get_any<T: Decode>(self, row: &AnyRow) -> std::result::Result<T, sqlx::Error>;
}

impl ColumnIndex for &str {
    fn position(self, columns: &[Box<str>]) -> Result<usize> {
        columns
            .iter()
            .position(|c| **c == *self)
            .ok_or_else(|| StoreError::Db(sqlx::Error::ColumnNotFound(self.to_owned())))
    }

    fn get_any<T: Decode>(self, row: &AnyRow) -> std::result::Result<T, sqlx::Error> {
        row.try_get(self)
    }
}

impl ColumnIndex for usize {
    fn position(self, columns: &[Box<str>]) -> Result<usize> {
        if self < columns.len() {
            Ok(self)
        } else {
            Err(StoreError::Db(sqlx::Error::ColumnIndexOutOfBounds {
                index: self,
                len: columns.len(),
            }))
        }
    }

    fn get_any<T: Decode>(self, row: &AnyRow) -> std::result::Result<T, sqlx::Error> {
        row.try_get(self)
    }
}

/// The Rust types the store reads columns as.
pub(crate) trait Decode: Sized + for<'r> sqlx::Decode<'r, Any> + sqlx::Type<Any> {
    fn from_sqlite(v: &Owned) -> Option<Self>;
}

impl Decode for i64 {
    fn from_sqlite(v: &Owned) -> Option<i64> {
        match v {
            Owned::Int(i) => Some(*i),
            _ => None,
        }
    }
}

impl Decode for String {
    fn from_sqlite(v: &Owned) -> Option<String> {
        match v {
            Owned::Text(s) => Some(s.clone()),
            _ => None,
        }
    }
}

impl<T: Decode> Decode for Option<T> {
    fn from_sqlite(v: &Owned) -> Option<Option<T>> {
        match v {
            Owned::Null => Some(None),
            v => T::from_sqlite(v).map(Some),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    const BUSY: Duration = Duration::from_secs(5);

    fn writer(dir: &tempfile::TempDir) -> SqliteWriter {
        let file = dir.path().join("seva.db");
        open_sqlite_writer(&file, BUSY, &["pragma journal_mode = wal"]).unwrap()
    }

    #[tokio::test]
    async fn arguments_are_bound_by_their_number_as_sqlx_binds_them() {
        let dir = tempfile::tempdir().unwrap();
        let mut conn = begin_sqlite(&writer(&dir), BUSY).await.unwrap();
        let row = query("select $2 as b, $1 as a, $2 || 'x' as bx, $3 as n")
            .bind(7_i64)
            .bind("two")
            .bind(None::<i64>)
            .fetch_one(&mut conn)
            .await
            .unwrap();
        assert_eq!(row.try_get::<String, _>("b").unwrap(), "two");
        assert_eq!(row.try_get::<i64, _>("a").unwrap(), 7);
        assert_eq!(row.try_get::<String, _>(2).unwrap(), "twox");
        assert_eq!(row.try_get::<Option<i64>, _>("n").unwrap(), None);
        let not_a_number = row.try_get::<i64, _>("b").unwrap_err().to_string();
        assert!(
            not_a_number.contains("column b holds text") && !not_a_number.contains("two"),
            "text is not read as a number, and the error does not quote it: {not_a_number}"
        );
        assert!(row.try_get::<i64, _>("missing").is_err());
        let unbound = query("select $1, $2")
            .bind(1_i64)
            .fetch_one(&mut conn)
            .await;
        assert!(
            unbound.is_err(),
            "a missing argument is an error, not a null"
        );
    }

    #[tokio::test]
    async fn a_transaction_dropped_open_rolls_back_and_the_next_one_begins() {
        let dir = tempfile::tempdir().unwrap();
        let writer = writer(&dir);
        let mut conn = begin_sqlite(&writer, BUSY).await.unwrap();
        query("create table t (x integer)")
            .execute(&mut conn)
            .await
            .unwrap();
        conn.commit().await.unwrap();

        let mut conn = begin_sqlite(&writer, BUSY).await.unwrap();
        let done = query("insert into t values ($1), ($1)")
            .bind(1_i64)
            .execute(&mut conn)
            .await
            .unwrap();
        assert_eq!(done.rows_affected(), 2);
        drop(conn);

        let mut conn = begin_sqlite(&writer, BUSY).await.unwrap();
        let n: i64 = query_scalar("select count(*) from t")
            .fetch_one(&mut conn)
            .await
            .unwrap();
        assert_eq!(n, 0, "the dropped transaction's rows are gone");
        conn.rollback().await.unwrap();
    }

    /// `seva chat` or the CLI holding the write lock must not stop `serve` answering: the
    /// wait for the lock yields to other tasks, even on a current-thread runtime.
    #[tokio::test]
    async fn waiting_for_another_process_lock_lets_other_tasks_run() {
        let dir = tempfile::tempdir().unwrap();
        let writer = writer(&dir);
        let other = rusqlite::Connection::open(dir.path().join("seva.db")).unwrap();
        other.execute_batch("begin immediate").unwrap();

        let ticks = Arc::new(AtomicU32::new(0));
        let ticker = tokio::spawn({
            let ticks = ticks.clone();
            async move {
                loop {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                    ticks.fetch_add(1, Ordering::Relaxed);
                }
            }
        });
        let waiting = tokio::spawn({
            let writer = writer.clone();
            async move { begin_sqlite(&writer, BUSY).await.map(|_| ()) }
        });
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(!waiting.is_finished(), "the lock is still held elsewhere");
        assert!(
            ticks.load(Ordering::Relaxed) >= 20,
            "other tasks ran meanwhile: {} ticks",
            ticks.load(Ordering::Relaxed)
        );
        other.execute_batch("commit").unwrap();
        waiting.await.unwrap().unwrap();

        // Given up on while waiting: SQLite's busy handler is back for the next user.
        other.execute_batch("begin immediate").unwrap();
        let wait = tokio::time::timeout(Duration::from_millis(30), begin_sqlite(&writer, BUSY));
        assert!(wait.await.is_err(), "still waiting when dropped");
        let busy_ms: i64 = writer
            .lock()
            .await
            .query_row("pragma busy_timeout", [], |r| r.get(0))
            .unwrap();
        assert_eq!(busy_ms, 5000);
        other.execute_batch("commit").unwrap();

        other.execute_batch("begin immediate").unwrap();
        let started = Instant::now();
        let gave_up = begin_sqlite(&writer, Duration::from_millis(150)).await;
        assert!(
            matches!(gave_up, Err(StoreError::Sqlite(_))),
            "busy past the timeout is an error"
        );
        assert!(started.elapsed() >= Duration::from_millis(150));
        ticker.abort();
    }
}
