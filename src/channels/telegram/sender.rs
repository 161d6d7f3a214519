//! The dispatcher's Telegram sender: renders each outbox row natively (inline keyboards,
//! "share location" / "share my number" reply keyboards labelled in the citizen's language),
//! paces each chat, and classifies Telegram's answer.
//!
//! * A citizen marked unreachable (blocked the bot: a `my_chat_member` "kicked", or an earlier
//!   403) gets no sends: the row fails permanently without calling Telegram.
//! * 403 (blocked, deactivated, …) marks the citizen unreachable; the row is dead.
//! * 429 waits `retry_after` (the dispatcher reschedules the row; this chat's pacer holds too).
//! * Per chat, Telegram tolerates about one message a second with short bursts, and about 20 a
//!   minute in a group (shared/spec/protocol-facts.md §2.6). The dispatcher paces the channel
//!   as a whole (`SEVA_TELEGRAM_MPS`); [`ChatPacer`] paces each chat (`SEVA_TELEGRAM_CHAT_MPS`).

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use bot::render::{RenderOptions, render};
use bot::sender::{TelegramError, TelegramSender, UNREACHABLE_CODE, telegram_bot};
use dashmap::DashMap;
use flows::Lang;
use flows::catalog::Catalog;
use flows::delivery::SendOutcome;
use flows::message::Channel;
use flows::reply::Text;
use tokio::sync::OnceCell;
use tokio::time::Instant;

use crate::config::TelegramConfig;
use crate::metrics;
use crate::outbox::prepared::Prepared;
use crate::outbox::{ChannelSender, OutboundMessage};
use crate::store::telegram::{ReachabilityAt, ReachabilityChange};
use crate::store::{OutboxKind, Store};

/// Messages one chat may receive back to back before pacing starts.
pub const CHAT_BURST: u32 = 3;

/// Telegram's limit for a group: about 20 messages a minute.
pub const GROUP_INTERVAL: Duration = Duration::from_secs(3);

/// The longest a send waits for its chat's slot; a longer wait goes back to the dispatcher
/// as `RetryAfter`, so one busy chat does not hold up the dispatcher's round.
pub const MAX_PACING_WAIT: Duration = Duration::from_secs(2);

/// The Telegram channel as the outbox dispatcher sees it.
pub struct TelegramChannel {
    sender: TelegramSender,
    pacer: ChatPacer,
    store: StoreHandle,
    hi: RenderOptions,
    en: RenderOptions,
    /// Each row's citizen's unreachable flag, read for its whole batch.
    prepared: Prepared<bool>,
}

/// How long a flag read for a batch stands in for a read at send time: a flag a few moments
/// old at worst sends one message to a citizen who just blocked the bot (Telegram answers
/// 403 and the row is dead, as it would be a moment later).
const PREPARED_FOR: Duration = Duration::from_secs(1);

/// Flags kept at most (rows prepared and never sent).
const PREPARED_MAX: usize = 4096;

/// The database, for the unreachable flag. The dispatcher's senders are built before `serve`
/// opens its store, so the sender connects its own (small) pool to the same database on
/// first use. If that fails, sends go ahead without the flag (Telegram still answers 403).
enum StoreHandle {
    Given(Store),
    Lazy {
        url: String,
        store: OnceCell<Option<Store>>,
    },
}

impl StoreHandle {
    async fn get(&self) -> Option<&Store> {
        match self {
            StoreHandle::Given(store) => Some(store),
            StoreHandle::Lazy { url, store } => store
                .get_or_init(|| async {
                    match Store::connect_small(url).await {
                        Ok(store) => Some(store),
                        Err(e) => {
                            tracing::warn!(error = %e, "telegram sender cannot open the database; unreachable citizens are not skipped");
                            None
                        }
                    }
                })
                .await
                .as_ref(),
        }
    }
}

impl TelegramChannel {
    /// The sender `serve` runs: the bot at `TELEGRAM_API_URL`, per-chat pacing at
    /// `SEVA_TELEGRAM_CHAT_MPS`, the database at `database_url`.
    pub fn new(config: &TelegramConfig, database_url: &str) -> Result<Self, TelegramError> {
        let sender = bot_sender(config)?;
        Ok(Self::build(
            sender,
            config.chat_mps,
            StoreHandle::Lazy {
                url: database_url.to_owned(),
                store: OnceCell::new(),
            },
        ))
    }

    /// A sender over an open store (tests, embedding).
    pub fn with_store(sender: TelegramSender, chat_mps: u32, store: Store) -> Self {
        Self::build(sender, chat_mps, StoreHandle::Given(store))
    }

    fn build(sender: TelegramSender, chat_mps: u32, store: StoreHandle) -> Self {
        TelegramChannel {
            sender,
            pacer: ChatPacer::new(chat_mps, CHAT_BURST),
            store,
            hi: render_options(Lang::Hi),
            en: render_options(Lang::En),
            prepared: Prepared::new(PREPARED_FOR, PREPARED_MAX),
        }
    }

    fn options(&self, msg: &OutboundMessage, chat_id: i64) -> RenderOptions {
        let base = match msg.lang {
            Lang::Hi => &self.hi,
            Lang::En => &self.en,
        };
        RenderOptions {
            // A station alert goes to a group, where no reply keyboard of ours lingers.
            remove_reply_keyboard: msg.kind != OutboxKind::Alert && chat_id > 0,
            ..base.clone()
        }
    }

    async fn unreachable(&self, outbox_id: i64, citizen_id: i64) -> bool {
        if let Some(flag) = self.prepared.take(outbox_id) {
            return flag;
        }
        let Some(store) = self.store.get().await else {
            return false;
        };
        match store.citizen_unreachable(citizen_id).await {
            Ok(flag) => flag,
            Err(e) => {
                tracing::warn!(citizen = citizen_id, error = %e, "cannot read the unreachable flag; sending anyway");
                false
            }
        }
    }

    async fn mark_unreachable(&self, citizen_id: i64) {
        let Some(store) = self.store.get().await else {
            return;
        };
        let when = ReachabilityAt {
            at: chrono::Utc::now().timestamp(),
            update_id: 0,
        };
        match store
            .telegram_set_citizen_reachable(citizen_id, false, when)
            .await
        {
            Ok(ReachabilityChange::Applied { changed: true, .. }) => tracing::info!(
                citizen = citizen_id,
                "telegram citizen is unreachable (blocked the bot or left); sends to them stop"
            ),
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(citizen = citizen_id, error = %e, "cannot mark the citizen unreachable")
            }
        }
    }
}

/// A `TelegramSender` for `config`: every call goes to `{TELEGRAM_API_URL}/bot{token}/…`.
pub fn bot_sender(config: &TelegramConfig) -> Result<TelegramSender, TelegramError> {
    let bot = telegram_bot(config.bot_token.expose(), &config.api_url)?;
    Ok(TelegramSender::new(bot).with_options(render_options(Lang::Hi)))
}

/// Labels of the request buttons in `lang`.
pub fn render_options(lang: Lang) -> RenderOptions {
    let catalog = Catalog::global();
    RenderOptions {
        location_label: format!("📍 {}", catalog.text(lang, &Text::new("share-location"))),
        contact_label: format!("📱 {}", catalog.text(lang, &Text::new("share-contact"))),
        ..RenderOptions::default()
    }
}

#[async_trait]
impl ChannelSender for TelegramChannel {
    fn channel(&self) -> Channel {
        Channel::Telegram
    }

    /// The unreachable flags of the batch's citizens in one read, for each row's send.
    async fn prepare(&self, batch: &[&OutboundMessage]) {
        let rows: Vec<(i64, i64)> = batch
            .iter()
            .filter(|m| m.kind != OutboxKind::Alert && m.answers.is_none())
            .filter_map(|m| Some((m.id, m.citizen_id?)))
            .collect();
        if !self.prepared.room_for(rows.len()) {
            return;
        }
        let Some(store) = self.store.get().await else {
            return;
        };
        let mut citizens: Vec<i64> = rows.iter().map(|r| r.1).collect();
        citizens.sort_unstable();
        citizens.dedup();
        let read_at = Instant::now();
        match store.citizens_unreachable(&citizens).await {
            Ok(flags) => {
                let flags: HashMap<i64, bool> = flags.into_iter().collect();
                // A citizen missing from the answer has no flag, like the single read says.
                self.prepared.fill(
                    read_at,
                    rows.iter()
                        .map(|&(id, citizen)| (id, flags.get(&citizen).copied().unwrap_or(false))),
                );
            }
            Err(e) => tracing::debug!(error = %e, "unreachable flags not read for the batch"),
        }
    }

    async fn send(&self, msg: &OutboundMessage) -> SendOutcome {
        let Ok(chat_id) = msg.recipient.trim().parse::<i64>() else {
            return SendOutcome::Permanent {
                code: "recipient".into(),
                reason: "not a Telegram chat id".into(),
            };
        };
        // Alerts go to a station's chat; only a citizen's own chat has a reachability flag.
        let citizen = msg.citizen_id.filter(|_| msg.kind != OutboxKind::Alert);
        if let Some(citizen_id) = citizen
            && msg.answers.is_none()
            && self.unreachable(msg.id, citizen_id).await
        {
            tracing::debug!(
                outbox = msg.id,
                citizen = citizen_id,
                "not sent: citizen unreachable"
            );
            return SendOutcome::Permanent {
                code: UNREACHABLE_CODE.into(),
                reason: "citizen unreachable: blocked the bot or left the chat".into(),
            };
        }
        let options = self.options(msg, chat_id);
        let messages = render(&msg.rendered, &options);
        if messages.is_empty() {
            return SendOutcome::Permanent {
                code: "empty".into(),
                reason: "reply has no text and no choices".into(),
            };
        }
        let parts = u32::try_from(messages.len()).unwrap_or(u32::MAX);
        match self.pacer.reserve(chat_id, parts, MAX_PACING_WAIT) {
            Pace::Go(wait) => {
                if !wait.is_zero() {
                    tokio::time::sleep(wait).await;
                }
            }
            Pace::Later(wait) => {
                return SendOutcome::RetryAfter {
                    secs: wait.as_secs().saturating_add(1),
                };
            }
        }
        let outcome = self.sender.send_messages(chat_id, messages).await;
        metrics::provider_outcome(Channel::Telegram, &outcome);
        match &outcome {
            SendOutcome::Permanent { code, .. } if code == UNREACHABLE_CODE => match citizen {
                Some(citizen_id) => self.mark_unreachable(citizen_id).await,
                None if msg.kind == OutboxKind::Alert => tracing::warn!(
                    outbox = msg.id,
                    "a station's Telegram alert chat refuses the bot (removed from the group?)"
                ),
                None => {}
            },
            SendOutcome::RetryAfter { secs } => {
                self.pacer.hold(chat_id, Duration::from_secs(*secs));
            }
            _ => {}
        }
        outcome
    }
}

/// What [`ChatPacer::reserve`] decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pace {
    /// Send after this wait (zero within the burst); the slot is taken.
    Go(Duration),
    /// The chat is busy for this long; nothing was taken.
    Later(Duration),
}

/// Per-chat pacing (the generic cell rate algorithm): each chat has a theoretical arrival time
/// that moves one interval per message; a send may go up to `burst - 1` intervals early.
/// In memory only: losing it on a restart costs at most one burst (architecture guide: maps
/// are for what may be lost without harm).
pub struct ChatPacer {
    private: Rate,
    group: Rate,
    slots: DashMap<i64, Instant, foldhash::fast::RandomState>,
}

#[derive(Debug, Clone, Copy)]
struct Rate {
    interval: Duration,
    tolerance: Duration,
}

impl Rate {
    fn new(interval: Duration, burst: u32) -> Rate {
        Rate {
            interval,
            tolerance: interval.saturating_mul(burst.max(1) - 1),
        }
    }
}

/// Forget chats idle for a while once this many are tracked.
const PACER_PRUNE_AT: usize = 4096;

impl ChatPacer {
    /// `per_second` messages a second to one private chat, after a burst of `burst`; groups
    /// (negative chat ids) get [`GROUP_INTERVAL`] with the same burst.
    pub fn new(per_second: u32, burst: u32) -> ChatPacer {
        ChatPacer {
            private: Rate::new(Duration::from_secs(1) / per_second.max(1), burst),
            group: Rate::new(GROUP_INTERVAL, burst),
            slots: DashMap::default(),
        }
    }

    fn rate(&self, chat_id: i64) -> Rate {
        if chat_id < 0 {
            self.group
        } else {
            self.private
        }
    }

    /// Takes `n` consecutive slots for `chat_id` unless the first is more than `max_wait` away.
    pub fn reserve(&self, chat_id: i64, n: u32, max_wait: Duration) -> Pace {
        self.reserve_at(Instant::now(), chat_id, n, max_wait)
    }

    /// [`reserve`](Self::reserve) as of `now`.
    pub fn reserve_at(&self, now: Instant, chat_id: i64, n: u32, max_wait: Duration) -> Pace {
        let rate = self.rate(chat_id);
        let pace = {
            let mut slot = self.slots.entry(chat_id).or_insert(now);
            let tat = (*slot).max(now);
            let wait = tat
                .saturating_duration_since(now)
                .saturating_sub(rate.tolerance);
            if wait > max_wait {
                Pace::Later(wait)
            } else {
                *slot = tat + rate.interval.saturating_mul(n.max(1));
                Pace::Go(wait)
            }
        };
        if self.slots.len() > PACER_PRUNE_AT {
            self.slots.retain(|_, tat| *tat > now);
        }
        pace
    }

    /// Telegram asked to wait `wait` before the next message to `chat_id`.
    pub fn hold(&self, chat_id: i64, wait: Duration) {
        self.hold_at(Instant::now(), chat_id, wait);
    }

    /// [`hold`](Self::hold) as of `now`.
    pub fn hold_at(&self, now: Instant, chat_id: i64, wait: Duration) {
        let rate = self.rate(chat_id);
        let until = now + wait + rate.tolerance;
        let mut slot = self.slots.entry(chat_id).or_insert(until);
        if *slot < until {
            *slot = until;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LONG: Duration = Duration::from_secs(60);
    const SEC: Duration = Duration::from_secs(1);

    #[test]
    fn a_chat_gets_a_burst_then_one_message_per_interval() {
        let pacer = ChatPacer::new(1, 3);
        let t0 = Instant::now();
        for _ in 0..3 {
            assert_eq!(pacer.reserve_at(t0, 7, 1, LONG), Pace::Go(Duration::ZERO));
        }
        assert_eq!(pacer.reserve_at(t0, 7, 1, LONG), Pace::Go(SEC));
        assert_eq!(pacer.reserve_at(t0, 7, 1, LONG), Pace::Go(2 * SEC));
        // Another chat is not held up.
        assert_eq!(pacer.reserve_at(t0, 8, 1, LONG), Pace::Go(Duration::ZERO));
        // After a quiet spell the burst is back.
        let later = t0 + 10 * SEC;
        for _ in 0..3 {
            assert_eq!(
                pacer.reserve_at(later, 7, 1, LONG),
                Pace::Go(Duration::ZERO)
            );
        }
        assert_eq!(pacer.reserve_at(later, 7, 1, LONG), Pace::Go(SEC));
    }

    #[test]
    fn a_long_wait_is_handed_back_without_taking_a_slot() {
        let pacer = ChatPacer::new(1, 1);
        let t0 = Instant::now();
        assert_eq!(pacer.reserve_at(t0, 7, 5, LONG), Pace::Go(Duration::ZERO));
        assert_eq!(pacer.reserve_at(t0, 7, 1, 2 * SEC), Pace::Later(5 * SEC));
        assert_eq!(pacer.reserve_at(t0, 7, 1, LONG), Pace::Go(5 * SEC));
    }

    #[test]
    fn groups_are_paced_at_twenty_a_minute_and_a_429_holds_the_chat() {
        let pacer = ChatPacer::new(30, 1);
        let t0 = Instant::now();
        assert_eq!(
            pacer.reserve_at(t0, -100, 1, LONG),
            Pace::Go(Duration::ZERO)
        );
        assert_eq!(
            pacer.reserve_at(t0, -100, 1, LONG),
            Pace::Go(GROUP_INTERVAL)
        );
        pacer.hold_at(t0, 9, 4 * SEC);
        assert_eq!(pacer.reserve_at(t0, 9, 1, LONG), Pace::Go(4 * SEC));
    }

    #[test]
    fn request_buttons_are_labelled_in_the_citizens_language() {
        let hi = render_options(Lang::Hi);
        let en = render_options(Lang::En);
        assert!(en.location_label.contains("Share my location"));
        assert!(en.contact_label.contains("Share my number"));
        assert!(hi.location_label.contains("लोकेशन"));
        assert_ne!(hi.contact_label, en.contact_label);
    }
}
