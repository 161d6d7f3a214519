//! Send records that ride along in the next group-commit batch's transaction (SQLite).
//!
//! A SQLite commit writes every page it touched to the WAL, whole. The records of a round of
//! sends (`sent`, the provider id) touch the same outbox pages and indexes as the replies the
//! next batch writes, and in a transaction of their own they cost a second commit that
//! rewrites those pages. So while a batch is open in this process, [`Store::record_sends_soon`]
//! leaves the records with it: the batch writes them first thing at its commit
//! ([`super::Batch::commit`]) and tells the waiting writer once it has committed. A writer
//! whose records no batch took within [`RIDE_WAIT`], or whose batch failed, writes them in a
//! transaction of its own, as before. Writing a record twice changes nothing.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::oneshot;

use super::{Result, SendOutcomeRow, Store};

/// How long records wait for a batch to take them before their writer writes them itself: a
/// few batches' time under load, and all an idle moment's records are late by.
const RIDE_WAIT: Duration = Duration::from_millis(25);

/// Records waiting for a batch, with the batches open now. One per database file, shared by
/// every store this process opens on it (as its writer slot is).
#[derive(Default)]
pub(super) struct RideAlong {
    open_batches: AtomicUsize,
    next_ticket: AtomicU64,
    waiting: Mutex<Vec<Waiting>>,
}

struct Waiting {
    ticket: u64,
    rows: Vec<SendOutcomeRow>,
    done: oneshot::Sender<()>,
}

pub(super) fn ride_along_for(url: &str) -> Arc<RideAlong> {
    static FILES: LazyLock<Mutex<HashMap<String, Arc<RideAlong>>>> =
        LazyLock::new(Default::default);
    let mut files = FILES.lock().unwrap_or_else(|e| e.into_inner());
    files.entry(url.to_owned()).or_default().clone()
}

impl RideAlong {
    fn waiting(&self) -> MutexGuard<'_, Vec<Waiting>> {
        self.waiting.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Counts a batch as open until the guard drops (at its commit or rollback).
    pub(super) fn open_batch(self: &Arc<Self>) -> OpenBatch {
        self.open_batches.fetch_add(1, Ordering::AcqRel);
        OpenBatch(self.clone())
    }

    /// Everything waiting, for the calling batch to write.
    pub(super) fn take(&self) -> Riders {
        let taken = std::mem::take(&mut *self.waiting());
        let mut riders = Riders::default();
        for w in taken {
            riders.rows.extend(w.rows);
            riders.done.push(w.done);
        }
        riders
    }
}

/// A batch counted as open.
pub(super) struct OpenBatch(Arc<RideAlong>);

impl Drop for OpenBatch {
    fn drop(&mut self) {
        self.0.open_batches.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Records a batch took. Dropped without [`Riders::committed`] (the batch failed), their
/// writers write them themselves.
#[derive(Default)]
pub(super) struct Riders {
    pub(super) rows: Vec<SendOutcomeRow>,
    done: Vec<oneshot::Sender<()>>,
}

impl Riders {
    pub(super) fn committed(self) {
        for done in self.done {
            // A writer that stopped waiting wrote its records itself.
            let _ = done.send(());
        }
    }
}

impl Store {
    /// [`Store::record_sends`], in the transaction of a batch open in this process if there is
    /// one (SQLite). Returns once the records are committed, either way.
    pub async fn record_sends_soon(&self, outcomes: &[SendOutcomeRow]) -> Result<()> {
        if let Some(ride) = &self.ride_along
            && !outcomes.is_empty()
            && ride.open_batches.load(Ordering::Acquire) > 0
        {
            let ticket = ride.next_ticket.fetch_add(1, Ordering::Relaxed);
            let (done, mut committed) = oneshot::channel();
            ride.waiting().push(Waiting {
                ticket,
                rows: outcomes.to_vec(),
                done,
            });
            match tokio::time::timeout(RIDE_WAIT, &mut committed).await {
                Ok(Ok(())) => return Ok(()),
                // The batch that took them failed: they were rolled back with it.
                Ok(Err(_)) => {}
                Err(_) => {
                    let taken = {
                        let mut waiting = ride.waiting();
                        let mine = waiting.iter().position(|w| w.ticket == ticket);
                        if let Some(at) = mine {
                            waiting.swap_remove(at);
                        }
                        mine.is_none()
                    };
                    // A batch took them just now: its commit answers.
                    if taken && committed.await.is_ok() {
                        return Ok(());
                    }
                }
            }
        }
        self.record_sends(outcomes).await
    }
}
