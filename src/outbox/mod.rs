//! The outbox dispatcher: claims due rows, keeps each recipient's order, paces each channel,
//! sends through the channel's [`ChannelSender`] and records the outcome (sent, retry later,
//! dead letter).
//!
//! Two lanes share each channel's pacing: replies (the interactive lane) are claimed apart from
//! pushes, alerts and events (the bulk lane), and each lane takes its pacing slots one at a
//! time, just before a send, so a reply waits at most a slot or two behind a burst of 10,000
//! status pushes instead of behind the whole burst.
//!
//! Delivery is at least once: a crash between a provider's answer and our record of it leaves
//! the row in `sending`, and it is put back to pending when a dispatcher next takes the
//! channel over (at the next start; with replicas on PostgreSQL, when another replica takes
//! the dead one's lead), or claimed again once its lease ran out ([`crate::store::CLAIM_LEASE`]).
//!
//! Replicas on one PostgreSQL: [`Dispatcher::run`] dispatches a channel only while it holds
//! that channel's lead ([`Store::lead`]), so one replica sends per provider and the pacing holds
//! for the fleet; rows are claimed with `for update skip locked` all the same.

pub mod handoff;
pub mod prepared;
pub mod terminal;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use flows::Lang;
use flows::catalog::{Catalog, Rendered};
use flows::delivery::{OutboxContent, SendOutcome, TemplateParams};
use flows::message::Channel;
use flows::reply::Reply;
use tokio::sync::{Notify, mpsc, oneshot, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;

use self::handoff::{HandedOff, Handoff};
use crate::clock::Clock;
use crate::store::{
    Claim, Leader, OutboxKind, OutboxLane, OutboxRow, SendOutcomeRow, SendRecord, Store, StoreError,
};

/// How often the dispatcher looks for due rows when nobody wakes it.
const POLL: Duration = Duration::from_secs(1);

/// Rows claimed per round (at most one per recipient).
const BATCH: u32 = 64;

/// Sends one lane keeps in flight at most; past it, the lane waits for one to finish before
/// claiming more (a slow provider must not pile up unbounded tasks).
const MAX_IN_FLIGHT: usize = 512;

/// One message, ready for a channel to send.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboundMessage {
    /// The outbox row id (WhatsApp carries it in `biz_opaque_callback_data`).
    pub id: i64,
    pub citizen_id: Option<i64>,
    /// Telegram chat id, WhatsApp `wa_id`, terminal `--as` name.
    pub recipient: String,
    pub kind: OutboxKind,
    pub lang: Lang,
    /// The abstract reply, for channels that need more than the rendering (templates).
    pub content: Reply,
    /// Template parameters of a status push (WhatsApp outside the 24-hour window).
    pub template: Option<TemplateParams>,
    /// The JSON body of a back-office event.
    pub event: Option<serde_json::Value>,
    /// `content` rendered in `lang` with [`Catalog::global`] at send time.
    pub rendered: Rendered,
    /// Earlier attempts at this row (0 on the first).
    pub attempts: u32,
    /// For a reply handed over in the commit that stored the citizen's message
    /// ([`handoff`]), what that commit knew of the citizen, so a sender need not read it
    /// again: they were reachable (a batch runs no turn for one marked unreachable).
    pub answers: Option<AnsweredMessage>,
}

/// The message a handed-over reply answers, as the commit that stored it left the citizen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AnsweredMessage {
    /// Its inbox id. A later message of the same batch may exist; a window closed on this
    /// id reopens with it, which is the safe side.
    pub inbox_id: i64,
    /// The citizen's `last_inbound_at` as that commit wrote it (a redelivered old message
    /// does not move it, so WhatsApp's window may still be closed).
    pub last_inbound_at: Option<i64>,
}

/// One channel's way of sending. Implementations only talk to their provider and classify the
/// answer; claiming, ordering, pacing and retries are the dispatcher's.
#[async_trait]
pub trait ChannelSender: Send + Sync {
    fn channel(&self) -> Channel;

    /// The messages of one claimed batch for this channel, before any of their sends starts:
    /// what a sender reads per message may be read once for all of them here.
    async fn prepare(&self, _batch: &[&OutboundMessage]) {}

    async fn send(&self, msg: &OutboundMessage) -> SendOutcome;
}

/// When to try again after a transient failure, and when to give up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Wait after the first transient failure; doubled after each further one.
    pub base: Duration,
    /// The longest wait between attempts.
    pub cap: Duration,
    /// Attempts (sends tried) after which a transient failure makes the row dead. Back-office
    /// events are exempt: they are retried until the receiver answers 2xx (spec §4).
    pub max_attempts: u32,
    /// Waits are drawn from the upper half of the backoff ("equal jitter"), so the rows that
    /// failed together in one provider outage do not all come back in the same second.
    pub jitter: bool,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            base: Duration::from_secs(2),
            cap: Duration::from_secs(15 * 60),
            max_attempts: 10,
            jitter: true,
        }
    }
}

impl RetryPolicy {
    /// The longest wait after the `attempts`-th failed attempt (1-based), before jitter.
    pub fn backoff(&self, attempts: u32) -> Duration {
        let factor = 2u32.saturating_pow(attempts.saturating_sub(1));
        self.base.saturating_mul(factor).min(self.cap)
    }

    /// The wait after the `attempts`-th failed attempt: [`RetryPolicy::backoff`], or with
    /// jitter a time between half of it and all of it.
    pub fn delay(&self, attempts: u32) -> Duration {
        let full = self.backoff(attempts);
        if !self.jitter {
            return full;
        }
        let half = full / 2;
        half + (full - half).mul_f64(rand::random::<f64>())
    }
}

/// Spaces one channel's sends at most `per_second` apart, across all its recipients and both
/// lanes.
struct Pacer {
    interval: Duration,
    next: std::sync::Mutex<Instant>,
}

impl Pacer {
    fn new(per_second: u32) -> Pacer {
        Pacer {
            interval: Duration::from_secs(1) / per_second.max(1),
            next: std::sync::Mutex::new(Instant::now()),
        }
    }

    /// Takes the next free slot and sleeps until it. Callers take one slot per send, right
    /// before it, so neither lane books far ahead of the other. A caller that wakes late (timer
    /// granularity, a busy core) may use up to [`PACER_SLACK`] slots it missed, so the rate
    /// holds on average instead of losing every late wake-up; any one second still sees at
    /// most that many sends above the rate.
    async fn wait(&self) {
        let slot = {
            let mut next = self.next.lock().unwrap_or_else(|e| e.into_inner());
            let now = Instant::now();
            let earliest = now.checked_sub(self.interval * PACER_SLACK).unwrap_or(now);
            let slot = (*next).max(earliest);
            *next = slot + self.interval;
            (slot > now).then_some(slot)
        };
        // A slot already due is taken at once: tokio's timer rounds every sleep up to the
        // next millisecond, so sleeping even until "now" capped a channel at ~1,000 sends/s
        // whatever its configured rate.
        if let Some(slot) = slot {
            tokio::time::sleep_until(slot).await;
        }
    }
}

/// Missed pacing slots a late sender may still use ([`Pacer::wait`]).
const PACER_SLACK: u32 = 2;

/// How one channel's messages leave: its sender and, when configured, its pacing.
struct Route {
    sender: Arc<dyn ChannelSender>,
    pacer: Option<Pacer>,
}

/// Drains the outbox for the channels it has senders for.
pub struct Dispatcher {
    store: Store,
    routes: HashMap<Channel, Arc<Route>>,
    channels: Vec<Channel>,
    clock: Clock,
    policy: RetryPolicy,
    catalog: &'static Catalog,
    /// The task that writes send outcomes in batches, started at the first outcome (on the
    /// dispatcher's own pool when [`Dispatcher::run`] has switched to it by then).
    records: std::sync::OnceLock<RecordWriter>,
    /// Wakes the interactive lane alone ([`Dispatcher::with_replies_wake`]).
    replies_wake: Arc<Notify>,
    /// Replies written claimed, for the interactive lane ([`Dispatcher::with_handoff`]).
    handoff: Option<Handoff>,
}

impl Dispatcher {
    /// A dispatcher for `senders` (one per channel; a later one replaces an earlier one).
    pub fn new(store: Store, senders: Vec<Arc<dyn ChannelSender>>, clock: Clock) -> Dispatcher {
        let mut routes = HashMap::new();
        for sender in senders {
            routes.insert(
                sender.channel(),
                Arc::new(Route {
                    sender,
                    pacer: None,
                }),
            );
        }
        let mut channels: Vec<Channel> = routes.keys().copied().collect();
        channels.sort_by_key(|c| c.as_str());
        Dispatcher {
            store,
            routes,
            channels,
            clock,
            policy: RetryPolicy::default(),
            catalog: Catalog::global(),
            records: std::sync::OnceLock::new(),
            replies_wake: Arc::new(Notify::new()),
            handoff: None,
        }
    }

    /// Has the interactive lane send the replies handed over through `handoff`
    /// ([`crate::runtime::Runtime::handoff`]) on the channels it leads.
    pub fn with_handoff(mut self, handoff: Handoff) -> Dispatcher {
        self.handoff = Some(handoff);
        self
    }

    /// Also wakes on `wake`, for the interactive lane only: new replies and nothing else to
    /// send ([`crate::runtime::Runtime::replies_wake`]). Without it every wake-up has both
    /// lanes look, and the bulk lane's look finds nothing after most of a citizen's turns.
    pub fn with_replies_wake(mut self, wake: Arc<Notify>) -> Dispatcher {
        self.replies_wake = wake;
        self
    }

    pub fn with_policy(mut self, policy: RetryPolicy) -> Dispatcher {
        self.policy = policy;
        self
    }

    /// Sends on `channel` at most `per_second` messages per second.
    pub fn with_pace(mut self, channel: Channel, per_second: u32) -> Dispatcher {
        if let Some(route) = self.routes.get_mut(&channel) {
            *route = Arc::new(Route {
                sender: route.sender.clone(),
                pacer: Some(Pacer::new(per_second)),
            });
        }
        self
    }

    /// The channels this dispatcher sends on.
    pub fn channels(&self) -> &[Channel] {
        &self.channels
    }

    /// Puts this dispatcher's rows left in `sending` by a crash back to pending.
    pub async fn recover(&self) -> Result<u64, StoreError> {
        self.store.reset_sending(&self.channels, None).await
    }

    /// Claims due rows once and sends them (different recipients concurrently). Returns how
    /// many rows it handled, whatever their outcome.
    pub async fn run_once(&self) -> Result<usize, StoreError> {
        let claim = Claim {
            channels: &self.channels,
            recipient: None,
            lane: None,
            limit: BATCH,
        };
        let mut sends = InFlight::default();
        let claimed = self.send_claimed(&claim, None, &mut sends).await;
        let finished = sends.finish(self).await;
        let claimed = claimed?;
        finished?;
        Ok(claimed)
    }

    /// Sends every due row for one recipient, in order, until none is due (`seva chat`).
    /// Returns how many rows it handled.
    pub async fn deliver_to(&self, channel: Channel, recipient: &str) -> Result<usize, StoreError> {
        let channels = [channel];
        let claim = Claim {
            channels: &channels,
            recipient: Some(recipient),
            lane: None,
            limit: 1,
        };
        let mut handled = 0;
        loop {
            let mut sends = InFlight::default();
            let claimed = self.send_claimed(&claim, None, &mut sends).await;
            let finished = sends.finish(self).await;
            match (claimed?, finished?) {
                (0, ()) => return Ok(handled),
                (n, ()) => handled += n,
            }
        }
    }

    /// Claims due rows once, shows each channel's sender its share ([`ChannelSender::prepare`])
    /// and starts their sends in `sends`: one pacing slot taken before each send, the sends
    /// themselves concurrent and recorded as each provider answers. Does not wait for them: a
    /// recipient's next row is not claimable while this one is `sending`, so the next claim
    /// may overlap these sends without breaking anyone's order. When `stop` turns true
    /// halfway, the rows not yet started are handed back ([`Store::release_claims`]).
    async fn send_claimed(
        &self,
        claim: &Claim<'_>,
        stop: Option<&watch::Receiver<bool>>,
        sends: &mut InFlight,
    ) -> Result<usize, StoreError> {
        let rows = self.store.claim_due(claim, self.clock.now()).await?;
        let handled = rows.len();
        let mut ready: Vec<(OutboxRow, OutboundMessage)> = Vec::with_capacity(handled);
        for row in rows {
            if !self.routes.contains_key(&row.channel) {
                // Claimed only for our channels; kept as a guard against a future mismatch.
                self.record(
                    &row,
                    SendOutcome::Transient {
                        reason: "no sender for channel".to_owned(),
                    },
                )
                .await?;
                continue;
            }
            match self.message(&row) {
                Ok(msg) => ready.push((row, msg)),
                Err(reason) => {
                    let dead = SendOutcome::Permanent {
                        code: "content".to_owned(),
                        reason,
                    };
                    self.record(&row, dead).await?;
                }
            }
        }
        self.start_sends(ready, stop, sends).await?;
        Ok(handled)
    }

    /// Shows each channel's sender its share of `ready` ([`ChannelSender::prepare`]) and
    /// starts their sends in `sends`, one pacing slot taken before each. When `stop` turns
    /// true halfway, the rows not yet started are handed back ([`Store::release_claims`]).
    async fn start_sends(
        &self,
        ready: Vec<(OutboxRow, OutboundMessage)>,
        stop: Option<&watch::Receiver<bool>>,
        sends: &mut InFlight,
    ) -> Result<(), StoreError> {
        for channel in &self.channels {
            let batch: Vec<&OutboundMessage> = ready
                .iter()
                .filter(|(row, _)| row.channel == *channel)
                .map(|(_, msg)| msg)
                .collect();
            if !batch.is_empty()
                && let Some(route) = self.routes.get(channel)
            {
                route.sender.prepare(&batch).await;
            }
        }
        let mut unsent = Vec::new();
        for (row, msg) in ready {
            let Some(route) = self.routes.get(&row.channel).cloned() else {
                unsent.push(row.id);
                continue;
            };
            if stop.is_some_and(|s| *s.borrow()) {
                unsent.push(row.id);
                continue;
            }
            if let Some(pacer) = &route.pacer {
                pacer.wait().await;
            }
            let recorder = self.recorder();
            let claimed = row.clone();
            let handoff = self.handoff.clone();
            let handle = sends.set.spawn(async move {
                let outcome = route.sender.send(&msg).await;
                let Some(handoff) = handoff else {
                    return recorder.record(&claimed, outcome).await;
                };
                let accepted = matches!(outcome, SendOutcome::Sent { .. });
                if accepted {
                    handoff.accepted(claimed.id);
                }
                let recorded = recorder.record(&claimed, outcome).await;
                if accepted {
                    handoff.recorded(claimed.id);
                }
                recorded
            });
            sends.rows.insert(handle.id(), row);
        }
        // An error here is not fatal to the rows: their lease runs out, or the next leader's
        // recovery takes them back.
        self.store.release_claims(&unsent).await?;
        Ok(())
    }

    fn message(&self, row: &OutboxRow) -> Result<OutboundMessage, String> {
        let OutboxContent {
            reply: content,
            template,
            event,
        } = serde_json::from_str(&row.content)
            .map_err(|e| format!("content is not a reply: {e}"))?;
        let lang = row.lang.unwrap_or(Lang::Hi);
        Ok(OutboundMessage {
            id: row.id,
            citizen_id: row.citizen_id,
            recipient: row.recipient.clone(),
            kind: row.kind,
            lang,
            rendered: self.catalog.render(lang, &content),
            content,
            template,
            event,
            attempts: row.attempts,
            answers: None,
        })
    }

    async fn record(&self, row: &OutboxRow, outcome: SendOutcome) -> Result<(), StoreError> {
        self.recorder().record(row, outcome).await
    }

    fn recorder(&self) -> Recorder {
        Recorder {
            writer: self
                .records
                .get_or_init(|| RecordWriter::spawn(self.store.clone()))
                .clone(),
            clock: self.clock.clone(),
            policy: self.policy,
        }
    }

    /// Runs until `stop` turns true (or its sender is dropped): takes over the channels whose
    /// lead it wins (recovering their crashed rows), and drains both lanes of those channels
    /// whenever `wake` is notified and at least every second.
    pub async fn run(mut self, wake: Arc<Notify>, stop: watch::Receiver<bool>) {
        // Connections of its own: what a provider accepted is recorded at once, not after the
        // webhooks' and turns' work on the shared pool (a crash then resends less).
        match self.store.own_pool().await {
            Ok(own) => self.store = own,
            Err(e) => tracing::warn!(error = %e, "outbox dispatcher shares the main pool"),
        }
        // Rows another replica's turns write wake this one too (PostgreSQL).
        self.store
            .forward_outbox_wakeups(wake.clone(), stop.clone());
        let handed = self.handoff.as_ref().and_then(Handoff::take_receiver);
        if handed.is_none() {
            // Another dispatcher's lane takes what is handed over.
            self.handoff = None;
        }
        let (led_tx, led_rx) = watch::channel(Vec::new());
        let interactive = Arc::new(Notify::new());
        let bulk = Arc::new(Notify::new());
        tokio::join!(
            self.lead(
                led_tx,
                wake,
                [interactive.clone(), bulk.clone()],
                stop.clone()
            ),
            self.drain(
                OutboxLane::Interactive,
                led_rx.clone(),
                interactive,
                handed,
                stop.clone()
            ),
            self.drain(OutboxLane::Bulk, led_rx, bulk, None, stop),
        );
    }

    /// Keeps `led` up to date with the channels this dispatcher leads (replicas on one
    /// PostgreSQL: one leader per channel, so pacing holds for the fleet; on SQLite the lead is
    /// held at once), and passes each wake-up on to both lanes (a replies-only one to the
    /// interactive lane).
    async fn lead(
        &self,
        led_tx: watch::Sender<Vec<Channel>>,
        wake: Arc<Notify>,
        [interactive, bulk]: [Arc<Notify>; 2],
        mut stop: watch::Receiver<bool>,
    ) {
        let leaders: Vec<(Channel, Leader)> = self
            .channels
            .iter()
            .map(|c| {
                let role = format!("dispatch:{}", c.as_str());
                (*c, self.store.lead(&role, stop.clone()))
            })
            .collect();
        let mut led: Vec<Channel> = Vec::new();
        loop {
            if *stop.borrow() {
                return;
            }
            led = self.take_over(&leaders, led).await;
            if let Some(handoff) = &self.handoff {
                handoff.open(&led);
            }
            led_tx.send_if_modified(|current| {
                let changed = *current != led;
                if changed {
                    current.clone_from(&led);
                }
                changed
            });
            tokio::select! {
                _ = wake.notified() => {
                    interactive.notify_one();
                    bulk.notify_one();
                }
                _ = self.replies_wake.notified() => interactive.notify_one(),
                _ = bulk_woken(self.handoff.as_ref()) => bulk.notify_one(),
                _ = tokio::time::sleep(POLL) => {}
                changed = stop.changed() => if changed.is_err() { return },
            }
        }
    }

    /// One lane's loop: claims and sends that lane's due rows on the led channels until none is
    /// due, then sleeps until woken, the lead changes, or a second has passed. Claims overlap
    /// the sends still in flight (at most [`MAX_IN_FLIGHT`]), so a paced channel has no gap
    /// between batches; every send started is finished and recorded before the loop returns.
    /// The interactive lane also sends the replies `handed` over, first and unclaimed.
    async fn drain(
        &self,
        lane: OutboxLane,
        mut led: watch::Receiver<Vec<Channel>>,
        wake: Arc<Notify>,
        mut handed: Option<handoff::Receiver>,
        mut stop: watch::Receiver<bool>,
    ) {
        let mut sends = InFlight::default();
        // Whether to claim on this round; a wake-up, a poll, a change of lead, a full batch or
        // a send that may have held a row back sets it.
        let mut look = true;
        let mut waiting: Vec<HandedOff> = Vec::new();
        loop {
            look |= sends.reap(self).await;
            while sends.len() >= MAX_IN_FLIGHT {
                look |= sends.next(self).await;
            }
            if *stop.borrow() {
                break;
            }
            if let Some(handed) = &mut handed {
                waiting.extend(handed.take_waiting(BATCH as usize));
                if !waiting.is_empty() {
                    let ready = waiting.drain(..).map(|h| (h.row, h.message)).collect();
                    if let Err(e) = self.start_sends(ready, Some(&stop), &mut sends).await {
                        tracing::warn!(lane = lane.as_str(), error = %e, "outbox dispatch failed");
                    }
                }
            }
            let channels = led.borrow_and_update().clone();
            if look && !channels.is_empty() {
                look = false;
                let claim = Claim {
                    channels: &channels,
                    recipient: None,
                    lane: Some(lane),
                    limit: BATCH,
                };
                match self.send_claimed(&claim, Some(&stop), &mut sends).await {
                    // A full batch means more may be due: claim again while these are in
                    // flight.
                    Ok(n) if n >= BATCH as usize => {
                        look = true;
                        continue;
                    }
                    // A partial one took everything due but what a send in flight holds back
                    // (a recipient's next row): look again once one of those is recorded.
                    Ok(_) => sends.mark_all(),
                    Err(e) => {
                        tracing::warn!(lane = lane.as_str(), error = %e, "outbox dispatch failed");
                    }
                }
            }
            if sends.len() > 0 {
                tokio::select! {
                    joined = sends.set.join_next_with_id() => {
                        if let Some(joined) = joined {
                            look |= sends.settle_logged(self, joined).await;
                        }
                    }
                    _ = wake.notified() => look = true,
                    Some(reply) = handed_over(&mut handed) => waiting.push(reply),
                }
                continue;
            }
            tokio::select! {
                _ = wake.notified() => look = true,
                _ = led.changed() => look = true,
                _ = tokio::time::sleep(POLL) => look = true,
                Some(reply) = handed_over(&mut handed) => waiting.push(reply),
                changed = stop.changed() => if changed.is_err() { break },
            }
        }
        if let Some(handed) = &mut handed {
            waiting.extend(handed.close());
            let unsent: Vec<i64> = waiting.iter().map(|h| h.row.id).collect();
            if let Err(e) = self.store.release_claims(&unsent).await {
                tracing::warn!(lane = lane.as_str(), error = %e, "handed-over replies not released");
            }
        }
        if let Err(e) = sends.finish(self).await {
            tracing::warn!(lane = lane.as_str(), error = %e, "outbox send not recorded");
        }
    }

    /// The channels led now, given those `led` before: a channel whose lead was just taken is
    /// recovered first (its rows left `sending` by a crash, or by the previous leader, are
    /// pending again); one whose recovery failed is tried again next round.
    async fn take_over(&self, leaders: &[(Channel, Leader)], led: Vec<Channel>) -> Vec<Channel> {
        let mut now = Vec::with_capacity(leaders.len());
        for (channel, leader) in leaders {
            let leading = leader.is_leader();
            let before = led.contains(channel);
            if leading && !before {
                match self.store.reset_sending(&[*channel], None).await {
                    Ok(n) => {
                        if n > 0 {
                            tracing::info!(
                                channel = channel.as_str(),
                                rows = n,
                                "outbox rows left sending by a crash are pending again"
                            );
                        }
                        tracing::info!(channel = channel.as_str(), "dispatching this channel");
                    }
                    Err(e) => {
                        tracing::warn!(channel = channel.as_str(), error = %e, "outbox recovery failed");
                        continue;
                    }
                }
            } else if !leading && before {
                tracing::info!(
                    channel = channel.as_str(),
                    "another replica dispatches this channel now"
                );
            }
            if leading {
                now.push(*channel);
            }
        }
        now
    }
}

/// Waits for a bulk-only wake-up ([`Handoff::wake_bulk`]); never, without a handoff.
async fn bulk_woken(handoff: Option<&Handoff>) {
    match handoff {
        Some(handoff) => handoff.bulk_woken().await,
        None => std::future::pending().await,
    }
}

/// Waits for a reply to be handed over; never, for a lane that takes none.
async fn handed_over(handed: &mut Option<handoff::Receiver>) -> Option<HandedOff> {
    match handed {
        Some(handed) => handed.ready().await,
        None => std::future::pending().await,
    }
}

/// Sends started and not yet finished, with the row each one carries (to record a failure if
/// its task panics), and which of them may hold a row back that a claim left behind.
#[derive(Default)]
struct InFlight {
    set: JoinSet<Result<(), StoreError>>,
    rows: foldhash::HashMap<tokio::task::Id, OutboxRow>,
    marked: foldhash::HashSet<tokio::task::Id>,
}

impl InFlight {
    fn len(&self) -> usize {
        self.set.len()
    }

    /// A claim just left behind what these sends hold back: look again as each finishes.
    fn mark_all(&mut self) {
        self.marked.extend(self.rows.keys().copied());
    }

    /// Collects the sends that have finished, without waiting; whether one was marked.
    async fn reap(&mut self, dispatcher: &Dispatcher) -> bool {
        let mut marked = false;
        while let Some(joined) = self.set.try_join_next_with_id() {
            marked |= self.settle_logged(dispatcher, joined).await;
        }
        marked
    }

    /// Waits for one send to finish; whether it was marked.
    async fn next(&mut self, dispatcher: &Dispatcher) -> bool {
        match self.set.join_next_with_id().await {
            Some(joined) => self.settle_logged(dispatcher, joined).await,
            None => false,
        }
    }

    /// Waits for every send to finish (and be recorded); the first failure to record, if any.
    async fn finish(&mut self, dispatcher: &Dispatcher) -> Result<(), StoreError> {
        let mut failed = None;
        while let Some(joined) = self.set.join_next_with_id().await {
            if let Err(e) = self.settle(dispatcher, joined).await {
                failed.get_or_insert(e);
            }
        }
        failed.map_or(Ok(()), Err)
    }

    /// [`InFlight::settle`], with a failure to record logged (a row left `sending` is not
    /// claimable again before its lease ends, so it holds nothing a claim could find).
    async fn settle_logged(
        &mut self,
        dispatcher: &Dispatcher,
        joined: Result<(tokio::task::Id, Result<(), StoreError>), tokio::task::JoinError>,
    ) -> bool {
        self.settle(dispatcher, joined).await.unwrap_or_else(|e| {
            tracing::warn!(error = %e, "outbox send not recorded");
            false
        })
    }

    /// Takes a finished send off the books; whether it was marked ([`InFlight::mark_all`]).
    async fn settle(
        &mut self,
        dispatcher: &Dispatcher,
        joined: Result<(tokio::task::Id, Result<(), StoreError>), tokio::task::JoinError>,
    ) -> Result<bool, StoreError> {
        match joined {
            Ok((task, recorded)) => {
                self.rows.remove(&task);
                let marked = self.marked.remove(&task);
                recorded.map(|()| marked)
            }
            Err(e) => {
                let marked = self.marked.remove(&e.id());
                match self.rows.remove(&e.id()) {
                    Some(row) => {
                        let outcome = SendOutcome::Transient {
                            reason: format!("sender failed: {e}"),
                        };
                        dispatcher.record(&row, outcome).await.map(|()| marked)
                    }
                    None => Ok(marked),
                }
            }
        }
    }
}

/// What recording a send's outcome needs. Each send's task records its own outcome the moment
/// the provider answered, so a crash leaves as few sent-but-unrecorded rows (to be sent again)
/// as possible.
#[derive(Clone)]
struct Recorder {
    writer: RecordWriter,
    clock: Clock,
    policy: RetryPolicy,
}

/// Outcomes written per transaction at most.
const RECORD_BATCH: usize = 256;

/// One outcome on its way to the database, and who waits for it to be written.
type RecordWrite = (SendOutcomeRow, oneshot::Sender<Result<(), StoreError>>);

/// Writes send outcomes as they come, each transaction taking every outcome that arrived while
/// the previous one committed: one commit per outcome would cap a paced channel at the
/// database's commit rate and hold up the replies' own writes. A sender still waits until its
/// outcome is written.
#[derive(Clone)]
struct RecordWriter {
    store: Store,
    queue: mpsc::UnboundedSender<RecordWrite>,
}

impl RecordWriter {
    fn spawn(store: Store) -> RecordWriter {
        let (queue, mut incoming) = mpsc::unbounded_channel::<RecordWrite>();
        let db = store.clone();
        tokio::spawn(async move {
            while let Some(first) = incoming.recv().await {
                let mut batch = vec![first];
                crate::runtime::gather(&mut incoming, &mut batch, RECORD_BATCH).await;
                let (rows, waiters): (Vec<SendOutcomeRow>, Vec<_>) = batch.into_iter().unzip();
                if db.record_sends_soon(&rows).await.is_ok() {
                    for done in waiters {
                        let _ = done.send(Ok(()));
                    }
                    continue;
                }
                // One at a time, so each waiter learns its own outcome.
                for (row, done) in rows.iter().zip(waiters) {
                    let _ = done.send(db.record_sends(std::slice::from_ref(row)).await);
                }
            }
        });
        RecordWriter { store, queue }
    }

    async fn write(&self, row: SendOutcomeRow) -> Result<(), StoreError> {
        let (done, written) = oneshot::channel();
        match self.queue.send((row, done)) {
            Ok(()) => match written.await {
                Ok(result) => result,
                // The writer is gone (it panicked): this outcome may not be written.
                Err(_) => Err(StoreError::Unsupported(
                    "outbox record writer stopped".to_owned(),
                )),
            },
            Err(mpsc::error::SendError((row, _))) => {
                self.store.record_sends(std::slice::from_ref(&row)).await
            }
        }
    }
}

impl Recorder {
    async fn record(&self, row: &OutboxRow, outcome: SendOutcome) -> Result<(), StoreError> {
        let now = self.clock.now();
        let tried = row.attempts + 1;
        crate::metrics::outbox_send(row.channel, row.kind, &outcome);
        let (record, attempts) = match outcome {
            SendOutcome::Sent { provider_id } => (SendRecord::Sent { provider_id }, tried),
            // The provider's own pacing is not the message's fault: it does not count.
            SendOutcome::RetryAfter { secs } => (
                SendRecord::Retry {
                    next_attempt_at: now.saturating_add(secs.clamp(1, i64::MAX as u64) as i64),
                    error: format!("provider asked to wait {secs}s"),
                },
                row.attempts,
            ),
            SendOutcome::Transient { reason }
                if tried >= self.policy.max_attempts && row.kind != OutboxKind::Event =>
            {
                tracing::warn!(
                    outbox = row.id,
                    channel = row.channel.as_str(),
                    attempts = tried,
                    "giving up on message"
                );
                (
                    SendRecord::Dead {
                        error: format!("gave up after {tried} attempts: {reason}"),
                    },
                    tried,
                )
            }
            SendOutcome::Transient { reason } => {
                tracing::debug!(outbox = row.id, channel = row.channel.as_str(), %reason, "send failed, will retry");
                let wait = self.policy.delay(tried).as_secs_f64().round().max(1.0) as i64;
                (
                    SendRecord::Retry {
                        next_attempt_at: now.saturating_add(wait),
                        error: reason,
                    },
                    tried,
                )
            }
            SendOutcome::Permanent { code, reason } => {
                tracing::warn!(outbox = row.id, channel = row.channel.as_str(), %code, "message cannot be delivered");
                (
                    SendRecord::Dead {
                        error: format!("{code}: {reason}"),
                    },
                    tried,
                )
            }
        };
        self.writer
            .write(SendOutcomeRow {
                id: row.id,
                record,
                attempts,
                at: now,
            })
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Tokio's paused clock moves only when a task sleeps, so it shows what pacing cost.
    #[tokio::test(start_paused = true)]
    async fn a_rate_far_above_the_sends_does_not_slow_them() {
        let pacer = Pacer::new(1_000_000);
        let start = Instant::now();
        for _ in 0..2_000 {
            pacer.wait().await;
            // Sends come a few microseconds apart, as on a fast machine.
            tokio::time::advance(Duration::from_micros(5)).await;
        }
        let paced = Instant::now() - start - Duration::from_micros(5 * 2_000);
        assert!(paced < Duration::from_millis(2), "pacing took {paced:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn sends_faster_than_the_rate_are_spaced_to_it() {
        let pacer = Pacer::new(100);
        let start = Instant::now();
        for _ in 0..201 {
            pacer.wait().await;
        }
        // 200 intervals of 10 ms after the first send, less the two missed slots a late
        // caller may use.
        let took = Instant::now() - start;
        assert!(took >= Duration::from_millis(1_980), "{took:?}");
        assert!(took <= Duration::from_millis(2_010), "{took:?}");
    }
}
