//! Waking the fleet's dispatchers when outbox rows are written.
//!
//! In one process the runtime wakes its own dispatcher after a turn. With replicas on
//! PostgreSQL the turn may commit on a replica that does not lead the provider's dispatcher,
//! so after every commit that wrote due outbox rows Seva sends `NOTIFY seva_outbox` (with the
//! schema as payload so deployments sharing a database stay apart), and every dispatcher
//! listens on a dedicated connection. Without it the leader would still find the rows on its
//! next poll, a second later. On SQLite there is one process: nothing to do.
//!
//! A citizen's turn sends its notification after the commit, not inside the transaction: PostgreSQL
//! serializes the commits of all notifying transactions (a database-wide lock held through
//! the commit's WAL flush), which made every turn wait for every other turn's fsync. After the
//! commit, one task per store sends them, coalescing the wake-ups of concurrent commits into
//! one notification in a transaction that does not wait for the disk (a lost wake-up costs at
//! most the next poll).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use sqlx::AnyPool;
use sqlx::postgres::PgListener;
use tokio::sync::{Notify, watch};

use super::sql;
use super::{Backend, Result, Store, Tx};

const CHANNEL: &str = "seva_outbox";

/// How long to wait before listening again after the connection failed.
const RECONNECT: Duration = Duration::from_secs(2);

/// The wake-ups one store still owes the fleet (PostgreSQL).
#[derive(Debug, Default)]
pub(super) struct FleetWakeups {
    /// A commit wrote due rows since the last notification was sent.
    pending: AtomicBool,
    /// A task is sending notifications.
    sending: AtomicBool,
}

/// Inside a transaction that wrote due outbox rows: wakes every replica's dispatcher once it
/// commits (PostgreSQL; nothing on SQLite). For the rare writers (officers' changes, the CLI,
/// delivery statuses): delivered at commit, even by a process that exits right after. Turns
/// use [`Store::wake_fleet`] instead.
pub(super) async fn wake_dispatchers(tx: &mut Tx, backend: Backend) -> Result<()> {
    if backend == Backend::Postgres {
        sql::query("select pg_notify('seva_outbox', current_schema()::text)")
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}

impl Store {
    /// After a commit that wrote due outbox rows: wakes every replica's dispatcher
    /// (PostgreSQL; nothing on SQLite). Returns at once; see the module comment.
    pub(super) fn wake_fleet(&self) {
        if self.backend != Backend::Postgres {
            return;
        }
        let wakeups = self.wakeups.clone();
        wakeups.pending.store(true, Ordering::SeqCst);
        if wakeups.sending.swap(true, Ordering::SeqCst) {
            // The running task sends one more after its current one.
            return;
        }
        let pool = self.pool.clone();
        tokio::spawn(async move {
            loop {
                while wakeups.pending.swap(false, Ordering::SeqCst) {
                    if let Err(e) = notify(&pool).await {
                        tracing::debug!(error = %e, "outbox wake-up not sent; the next poll finds the rows");
                    }
                }
                wakeups.sending.store(false, Ordering::SeqCst);
                // A commit between the last swap and the store above found `sending` still set.
                if !wakeups.pending.load(Ordering::SeqCst)
                    || wakeups.sending.swap(true, Ordering::SeqCst)
                {
                    return;
                }
            }
        });
    }

    /// Notifies `wake` whenever any process on this database commits outbox rows, until
    /// `stop` (PostgreSQL; on SQLite the runtime of the one process wakes its dispatcher).
    pub fn forward_outbox_wakeups(&self, wake: Arc<Notify>, stop: watch::Receiver<bool>) {
        if self.backend == Backend::Postgres {
            tokio::spawn(listen(self.url.to_string(), wake, stop));
        }
    }
}

async fn notify(pool: &AnyPool) -> Result<(), sqlx::Error> {
    let mut tx = pool.begin().await?;
    sqlx::query("set local synchronous_commit = off")
        .execute(&mut *tx)
        .await?;
    sqlx::query("select pg_notify('seva_outbox', current_schema()::text)")
        .execute(&mut *tx)
        .await?;
    tx.commit().await
}

async fn listen(url: String, wake: Arc<Notify>, mut stop: watch::Receiver<bool>) {
    let mut warned = false;
    loop {
        if *stop.borrow() {
            return;
        }
        match listen_once(&url, &wake, &mut stop).await {
            Ok(()) => return,
            Err(e) => {
                if !warned {
                    tracing::warn!(error = %e, "outbox wake-ups from other replicas paused; retrying");
                    warned = true;
                }
            }
        }
        tokio::select! {
            () = tokio::time::sleep(RECONNECT) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
    }
}

/// Listens until `stop` (`Ok`) or the connection fails.
async fn listen_once(
    url: &str,
    wake: &Notify,
    stop: &mut watch::Receiver<bool>,
) -> Result<(), sqlx::Error> {
    let mut listener = PgListener::connect(url).await?;
    let schema: String = sqlx::query_scalar("select current_schema()::text")
        .fetch_one(&mut listener)
        .await?;
    listener.listen(CHANNEL).await?;
    // Rows may have been written while this was not listening.
    wake.notify_one();
    loop {
        tokio::select! {
            note = listener.try_recv() => match note? {
                Some(note) if note.payload() == schema => wake.notify_one(),
                Some(_) => {}
                // The connection was lost (and is re-established by the next call): rows
                // written meanwhile are found by looking.
                None => wake.notify_one(),
            },
            _ = stop.wait_for(|s| *s) => return Ok(()),
        }
    }
}
