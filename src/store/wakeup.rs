//! Waking the fleet's dispatchers when outbox rows are written.
//!
//! In one process the runtime wakes its own dispatcher after a turn. With replicas on
//! PostgreSQL the turn may commit on a replica that does not lead the provider's dispatcher,
//! so every transaction that writes due outbox rows also sends `NOTIFY seva_outbox` (delivered
//! at commit, with the schema as payload so deployments sharing a database stay apart), and
//! every dispatcher listens on a dedicated connection. Without it the leader would still find
//! the rows on its next poll, a second later. On SQLite there is one process: nothing to do.

use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::PgListener;
use tokio::sync::{Notify, watch};

use super::{Backend, Result, Store, Tx};

const CHANNEL: &str = "seva_outbox";

/// How long to wait before listening again after the connection failed.
const RECONNECT: Duration = Duration::from_secs(2);

/// Inside a transaction that wrote due outbox rows: wakes every replica's dispatcher once it
/// commits (PostgreSQL; nothing on SQLite).
pub(super) async fn wake_dispatchers(tx: &mut Tx, backend: Backend) -> Result<()> {
    if backend == Backend::Postgres {
        sqlx::query("select pg_notify('seva_outbox', current_schema()::text)")
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}

impl Store {
    /// Notifies `wake` whenever any process on this database commits outbox rows, until
    /// `stop` (PostgreSQL; on SQLite the runtime of the one process wakes its dispatcher).
    pub fn forward_outbox_wakeups(&self, wake: Arc<Notify>, stop: watch::Receiver<bool>) {
        if self.backend == Backend::Postgres {
            tokio::spawn(listen(self.url.to_string(), wake, stop));
        }
    }
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
