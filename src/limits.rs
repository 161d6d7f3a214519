//! Per-citizen abuse limits (issue 8 item 3), configured in [`crate::config::LimitsConfig`].
//!
//! * **Messages per minute** (`SEVA_CITIZEN_MESSAGES_PER_MINUTE`). A fixed one-minute window
//!   per citizen, opened by their first message, counted by when each message *arrived* (so a
//!   backlog processed after a restart is judged by its arrival, not by the sweep). A message
//!   over the limit has already been stored and acknowledged like any other — nothing
//!   acknowledged is lost, and redeliveries are still deduplicated — but it is not run through
//!   the dialogue. The first one over the limit in a window gets one polite reply (through the
//!   outbox, in the citizen's language); the rest of that window gets none, so a flood is not
//!   answered with a flood. The counts live in this process, which the architecture guide
//!   allows for this limit: with several replicas a citizen may get up to the limit per replica.
//! * **New reports per day** (`SEVA_CITIZEN_REPORTS_PER_DAY`). Counted from the database
//!   (reports the citizen filed in the last 24 hours), so every replica agrees. The engine asks
//!   ([`flows::effect::Effect::CheckReportLimit`]) when a report journey starts, and a citizen
//!   over the limit is told at once, before typing anything, when they may file again and to
//!   call 112 in an emergency.
//!
//! Both count into `seva_citizen_limited_total{limit="messages"|"reports"}`.

use std::sync::atomic::{AtomicU64, Ordering};

use chrono::NaiveDateTime;
use chrono_tz::Tz;
use dashmap::DashMap;
use flows::effect::ReportRefusal;
use flows::reply::{Reply, Text};

use crate::config::LimitsConfig;
use crate::metrics;
use crate::store::{StoreError, Turn};

/// The reply to the first message over the per-minute limit.
pub const TOO_MANY_MESSAGES_ID: &str = "too-many-messages";

/// The note on an inbox row that was held back (stored, not run through the dialogue).
pub const HELD_BACK_NOTE: &str = "held back: over SEVA_CITIZEN_MESSAGES_PER_MINUTE";

const MINUTE: i64 = 60;
const DAY: i64 = 24 * 60 * 60;

/// Prune windows that have ended after this many messages, so the map holds only citizens
/// who wrote in the last minute (plus what arrived since the last prune).
const PRUNE_EVERY: u64 = 4096;

/// One citizen's current minute.
#[derive(Debug, Clone, Copy)]
struct Window {
    /// Unix seconds.
    start: i64,
    count: u32,
    /// The polite reply was written in this window.
    told: bool,
}

/// The per-citizen limits of one process. Share one (the runtime holds it).
pub struct CitizenLimits {
    messages_per_minute: u32,
    reports_per_day: u32,
    windows: DashMap<i64, Window, foldhash::fast::RandomState>,
    seen: AtomicU64,
}

/// A message over the per-minute limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeldBack {
    /// Whether this is the first in its window, which is answered.
    pub tell: bool,
}

impl HeldBack {
    /// The reply to write, once per window.
    pub fn reply(&self) -> Option<Reply> {
        self.tell
            .then(|| Reply::text(Text::new(TOO_MANY_MESSAGES_ID)))
    }
}

impl CitizenLimits {
    /// `0` turns a limit off.
    pub fn new(messages_per_minute: u32, reports_per_day: u32) -> CitizenLimits {
        CitizenLimits {
            messages_per_minute,
            reports_per_day,
            windows: DashMap::default(),
            seen: AtomicU64::new(0),
        }
    }

    pub fn from_config(config: &LimitsConfig) -> CitizenLimits {
        CitizenLimits::new(
            config.citizen_messages_per_minute,
            config.citizen_reports_per_day,
        )
    }

    /// No limits (tests, `seva chat`).
    pub fn off() -> CitizenLimits {
        CitizenLimits::new(0, 0)
    }

    /// Counts a message of `citizen_id` that arrived at `arrived` (unix seconds); `Some` when
    /// it is over the limit and must not run through the dialogue. Call once per stored
    /// message, under the citizen's lock.
    pub fn message(&self, citizen_id: i64, arrived: i64) -> Option<HeldBack> {
        let limit = self.messages_per_minute;
        if limit == 0 {
            return None;
        }
        if self.seen.fetch_add(1, Ordering::Relaxed) % PRUNE_EVERY == PRUNE_EVERY - 1 {
            self.windows.retain(|_, w| arrived < w.start + MINUTE);
        }
        let fresh = Window {
            start: arrived,
            count: 0,
            told: false,
        };
        let mut w = self.windows.entry(citizen_id).or_insert(fresh);
        if arrived >= w.start + MINUTE {
            *w = fresh;
        }
        w.count = w.count.saturating_add(1);
        if w.count <= limit {
            return None;
        }
        let tell = !w.told;
        w.told = true;
        metrics::citizen_limited("messages");
        if tell {
            tracing::info!(
                citizen = citizen_id,
                limit,
                "citizen over the message limit; later messages this minute are held back"
            );
        }
        Some(HeldBack { tell })
    }

    /// Whether the turn's citizen may start another report at `now`: `None` when they may, or
    /// when they may file again (local time in `tz`).
    pub async fn new_report(
        &self,
        turn: &mut Turn,
        tz: Tz,
        now: i64,
    ) -> Result<Option<ReportRefusal>, StoreError> {
        let limit = self.reports_per_day;
        if limit == 0 {
            return Ok(None);
        }
        // Newest first; one more than the limit would not change the answer.
        let filed = turn.filed_since(now - DAY, limit).await?;
        let Some(&oldest_counted) = filed.get(limit as usize - 1) else {
            return Ok(None);
        };
        metrics::citizen_limited("reports");
        tracing::info!(
            citizen = turn.citizen().id,
            limit,
            "citizen over the daily report limit; new report refused"
        );
        Ok(Some(ReportRefusal {
            filed: limit,
            until: local(oldest_counted + DAY, tz),
        }))
    }
}

/// Unix seconds as the local time in `tz`, rounded up to the minute (the refusal shows
/// minutes, and "after 15:30" must not be a few seconds early).
fn local(unix: i64, tz: Tz) -> NaiveDateTime {
    let up = unix.div_euclid(MINUTE) * MINUTE + if unix % MINUTE == 0 { 0 } else { MINUTE };
    chrono::DateTime::from_timestamp(up, 0)
        .unwrap_or_default()
        .with_timezone(&tz)
        .naive_local()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_minute_admits_the_limit_and_tells_once() {
        let l = CitizenLimits::new(3, 0);
        let t = 1_000_000;
        for i in 0..3 {
            assert_eq!(l.message(7, t + i), None);
        }
        assert_eq!(l.message(7, t + 10), Some(HeldBack { tell: true }));
        for i in 11..59 {
            assert_eq!(l.message(7, t + i), Some(HeldBack { tell: false }));
        }
        assert_eq!(
            l.message(8, t + 30),
            None,
            "another citizen has their own minute"
        );
        assert_eq!(l.message(7, t + 60), None, "a new minute");
        assert_eq!(l.message(7, t + 61), None);
        assert_eq!(l.message(7, t + 62), None);
        assert_eq!(l.message(7, t + 63), Some(HeldBack { tell: true }));
        // A backlog judged by arrival: older than the window start still counts in it.
        assert_eq!(l.message(7, t + 55), Some(HeldBack { tell: false }));
    }

    #[test]
    fn zero_is_off() {
        let l = CitizenLimits::off();
        assert!((0..1000).all(|i| l.message(1, 5 + i / 100).is_none()));
    }

    #[test]
    fn the_refusal_time_is_local_and_never_early() {
        let tz = chrono_tz::Asia::Kolkata;
        // 2026-11-28 09:30:00 UTC is 15:00 in India.
        let t = 1_795_858_200;
        assert_eq!(
            local(t, tz).format("%d-%m-%Y %H:%M").to_string(),
            "28-11-2026 15:00"
        );
        assert_eq!(local(t + 1, tz).format("%H:%M").to_string(), "15:01");
        assert_eq!(local(t - 59, tz).format("%H:%M").to_string(), "15:00");
    }
}
