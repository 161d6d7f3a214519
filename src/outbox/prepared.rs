//! What a sender read for a whole claimed batch in [`super::ChannelSender::prepare`], kept
//! for the batch's sends: one read per batch instead of one per send.

use std::time::Duration;

use dashmap::DashMap;
// Tokio's clock, so tests that pause time see entries go stale.
use tokio::time::Instant;

/// Values read for outbox rows, each taken once by its row's send, and only while it is
/// recent enough to stand in for a read at send time.
pub struct Prepared<T> {
    values: DashMap<i64, (Instant, T), foldhash::fast::RandomState>,
    fresh_for: Duration,
    /// A bound for rows prepared and never sent (a batch handed back at shutdown).
    max: usize,
}

impl<T> Prepared<T> {
    pub fn new(fresh_for: Duration, max: usize) -> Self {
        Prepared {
            values: DashMap::default(),
            fresh_for,
            max,
        }
    }

    /// Drops what went stale; `false` when a batch of `incoming` more would pass the bound
    /// (its sends then read for themselves).
    pub fn room_for(&self, incoming: usize) -> bool {
        self.values
            .retain(|_, (read_at, _)| read_at.elapsed() < self.fresh_for);
        incoming > 0 && self.values.len() + incoming <= self.max
    }

    /// Values read at `read_at`; one left from an earlier claim of the same row is replaced.
    pub fn fill(&self, read_at: Instant, values: impl IntoIterator<Item = (i64, T)>) {
        for (id, value) in values {
            self.values.insert(id, (read_at, value));
        }
    }

    /// The row's value, once, if it is still fresh.
    pub fn take(&self, outbox_id: i64) -> Option<T> {
        let (_, (read_at, value)) = self.values.remove(&outbox_id)?;
        (read_at.elapsed() < self.fresh_for).then_some(value)
    }
}
