//! Leadership for work that one process of the fleet does at a time: the dispatcher of each
//! provider (so pacing holds for the fleet) and Telegram long polling (Telegram refuses two
//! concurrent `getUpdates`).
//!
//! PostgreSQL: a session advisory lock, `pg_try_advisory_lock`, held on a dedicated connection
//! (not a pooled one: the lock belongs to the session). The key is a hash of the schema and the
//! role, so two deployments in different schemas of one database do not share leaders. A
//! process that is not the leader tries again every [`RETRY`]; the leader checks its connection
//! as often and steps down when it fails. When the leader dies, PostgreSQL ends its session and
//! frees the lock, and another replica takes over within [`RETRY`].
//!
//! SQLite: one process owns the file (the guide's single-writer setting), so leadership is
//! held at once and for good.

use std::time::Duration;

use sqlx::{AnyConnection, Connection};
use tokio::sync::watch;

use super::{Backend, Store};

/// How often a follower tries to take the lead, and the leader checks it still holds it.
pub const RETRY: Duration = Duration::from_secs(2);

/// The longest a check of the leader's connection may take before it counts as lost.
const CHECK_TIMEOUT: Duration = Duration::from_secs(5);

/// The lock key: the same for every replica on this schema and role.
const LOCK_KEY: &str = "hashtextextended('seva:' || current_schema() || ':' || $1, 0)";

/// Whether this process leads a role, as it changes. Dropping it does not give the lead up;
/// the `stop` given to [`Store::lead`] does.
#[derive(Debug, Clone)]
pub struct Leader {
    rx: watch::Receiver<bool>,
    /// Set for a lead held for good: a closed channel would read as "changed" forever.
    _always: Option<std::sync::Arc<watch::Sender<bool>>>,
}

impl Leader {
    /// A leader that always leads (SQLite, tests).
    pub fn always() -> Leader {
        let (tx, rx) = watch::channel(true);
        Leader {
            rx,
            _always: Some(std::sync::Arc::new(tx)),
        }
    }

    /// Whether this process leads now.
    pub fn is_leader(&self) -> bool {
        *self.rx.borrow()
    }

    /// Waits until this process leads.
    pub async fn acquired(&mut self) {
        if self.rx.wait_for(|lead| *lead).await.is_err() {
            std::future::pending::<()>().await;
        }
    }

    /// Waits until this process no longer leads (it never returns for a lead held for good).
    pub async fn lost(&mut self) {
        if self.rx.wait_for(|lead| !*lead).await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

impl Store {
    /// Competes for the lead of `role` (e.g. `dispatch:whatsapp`) until `stop` turns true,
    /// then gives it up. See the module documentation.
    pub fn lead(&self, role: &str, stop: watch::Receiver<bool>) -> Leader {
        match self.backend {
            Backend::Sqlite => Leader::always(),
            Backend::Postgres => {
                let (tx, rx) = watch::channel(false);
                tokio::spawn(hold(self.url.to_string(), role.to_owned(), tx, stop));
                Leader { rx, _always: None }
            }
        }
    }
}

/// The advisory lock's life: connect, try, hold and check, and reconnect after a failure.
async fn hold(url: String, role: String, tx: watch::Sender<bool>, mut stop: watch::Receiver<bool>) {
    let try_lock = format!("select pg_try_advisory_lock({LOCK_KEY})");
    let mut warned = false;
    loop {
        if *stop.borrow() {
            break;
        }
        let mut conn = match AnyConnection::connect(&url).await {
            Ok(conn) => conn,
            Err(e) => {
                if !warned {
                    tracing::warn!(role, error = %e, "leadership: cannot connect; retrying");
                    warned = true;
                }
                if sleep_or_stop(&mut stop).await {
                    break;
                }
                continue;
            }
        };
        warned = false;
        // Connected: try for the lock, then hold it while the connection answers.
        loop {
            let held = tx.borrow().to_owned();
            let check = async {
                if held {
                    sqlx::query("select 1")
                        .execute(&mut conn)
                        .await
                        .map(|_| true)
                } else {
                    sqlx::query_scalar::<_, bool>(&try_lock)
                        .bind(&role)
                        .fetch_one(&mut conn)
                        .await
                }
            };
            match tokio::time::timeout(CHECK_TIMEOUT, check).await {
                Ok(Ok(lead)) => {
                    if lead && !held {
                        tracing::info!(role, "leadership taken");
                        tx.send_replace(true);
                    }
                }
                failed => {
                    if held {
                        tracing::warn!(role, "leadership lost: its database connection failed");
                    } else if let Ok(Err(e)) = failed {
                        tracing::debug!(role, error = %e, "leadership: lock attempt failed");
                    }
                    tx.send_replace(false);
                    // A fresh connection next, after the usual wait.
                    drop(conn);
                    if sleep_or_stop(&mut stop).await {
                        return;
                    }
                    break;
                }
            }
            if sleep_or_stop(&mut stop).await {
                if *tx.borrow() {
                    tracing::info!(role, "leadership given up");
                }
                tx.send_replace(false);
                // Closing the session frees the lock.
                let _ = tokio::time::timeout(CHECK_TIMEOUT, conn.close()).await;
                return;
            }
        }
    }
    tx.send_replace(false);
}

/// Sleeps [`RETRY`]; true when `stop` turned true (or its sender is gone) meanwhile.
async fn sleep_or_stop(stop: &mut watch::Receiver<bool>) -> bool {
    let stopped = tokio::select! {
        () = tokio::time::sleep(RETRY) => false,
        _ = stop.wait_for(|s| *s) => true,
    };
    stopped || *stop.borrow()
}
