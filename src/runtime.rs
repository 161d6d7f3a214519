//! The inbound path: the architecture guide's two transactions.
//!
//! * [`Runtime::accept`] — transaction 1: store the message, unique on its provider id. Only
//!   after it returns may a webhook answer 200 or the Telegram offset move on.
//! * [`Runtime::process`] — transaction 2: under the citizen's lock, run every unprocessed
//!   message through `flows::engine::step`, execute its effects, save the state and write the
//!   replies to the outbox, all in one commit; then wake the dispatcher.
//! * [`Runtime::accept_and_process`] — both in one commit, for a webhook carrying one message:
//!   the 200 still follows the commit, and one commit stores, answers and marks it processed,
//!   shared with the other citizens' messages that arrived meanwhile (group commit,
//!   `runtime/group_commit.rs`).
//! * [`Runtime::sweep`] — processes whatever was accepted and not processed (after a crash, or
//!   a failed turn), so nothing acknowledged is lost.

use std::collections::VecDeque;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use chrono::NaiveDate;
use chrono_tz::Tz;
use dashmap::DashMap;
use flows::Lang;
use flows::catalog::Catalog;
use flows::effect::{Effect, EffectResult, NewReport, ReportView};
use flows::engine::{Ctx, Fresh, Input, Outcome, Profile};
use flows::message::{Body, Inbound};
use flows::reference::Reference;
use flows::reply::{Reply, Text};
use flows::state::{Conversation, DRAFT_KEPT_SECS, Loaded};
use flows::stations::Directory;
use tokio::sync::{Mutex, Notify};

use crate::clock::Clock;
use crate::config::{PrivacyConfig, Secret};
use crate::drain::InFlight;
use crate::limits::{CitizenLimits, HELD_BACK_NOTE};
use crate::metrics;
use crate::outbox::handoff::Handoff;
pub use crate::store::Accepted;
use crate::store::{
    Admitted, Citizen, Filing, InboxPayload, NewOutbox, Notices, OutboxKind, Store, StoreError,
    StoredReport, Turn,
};

mod group_commit;
pub(crate) use group_commit::gather;
mod parsed_conversations;
use parsed_conversations::ParsedConversations;

/// The dialogue step the runtime calls: `flows::engine::step`, or a scripted one in tests.
pub type Engine = Arc<dyn Fn(Conversation, &Input, &Ctx<'_>) -> Outcome + Send + Sync>;

/// Draws the fresh random values of one step.
pub type FreshSource = Arc<dyn Fn() -> Fresh + Send + Sync>;

/// "My reports" shows this many.
pub const MY_REPORTS_LIMIT: u32 = 5;

/// Steps one message may take (its own and one per data effect) before it counts as a loop.
const MAX_STEPS: usize = 16;

/// Fresh references drawn for one report before giving up (40 random bits each: a second
/// draw colliding already means something else is wrong).
const MAX_REFERENCE_DRAWS: usize = 5;

/// Idle drafts looked at per purge round; the rest wait for the next round.
const IDLE_DRAFTS_PER_ROUND: u32 = 500;

/// The reply a citizen gets when their message could not be handled.
pub const ERROR_REPLY_ID: &str = "error-internal";

#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A turn run without per-message savepoints met a message it could not handle.
    #[error("message could not be handled: {0}")]
    Message(&'static str),
}

/// Why one message could not be handled. The message is marked processed with this note.
#[derive(Debug, thiserror::Error)]
enum MessageError {
    #[error("{0}")]
    Store(#[from] StoreError),
    #[error("stored payload is unreadable: {0}")]
    Payload(String),
    #[error("the dialogue engine panicked: {0}")]
    Panic(String),
    #[error("more than {MAX_STEPS} steps for one message")]
    Runaway,
    #[error("no free reference after {MAX_REFERENCE_DRAWS} draws")]
    NoReference,
}

impl MessageError {
    /// What went wrong, for info-level logs: a panic message or payload error could quote
    /// what the citizen wrote, so the full text goes to debug logs and the inbox row only.
    fn kind(&self) -> &'static str {
        match self {
            MessageError::Store(_) => "store",
            MessageError::Payload(_) => "payload",
            MessageError::Panic(_) => "engine_panic",
            MessageError::Runaway => "runaway",
            MessageError::NoReference => "no_reference",
        }
    }
}

/// What [`Runtime::accept_and_process`] did with a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handled {
    /// Stored, processed and answered (the replies are in the outbox).
    Processed { citizen_id: i64, inbox_id: i64 },
    /// Stored only: the caller starts the citizen's turn ([`Runtime::process`]).
    Stored { citizen_id: i64, inbox_id: i64 },
    /// The provider id was seen before: nothing changed.
    Duplicate { citizen_id: i64 },
}

impl Handled {
    pub fn citizen_id(self) -> i64 {
        match self {
            Handled::Processed { citizen_id, .. }
            | Handled::Stored { citizen_id, .. }
            | Handled::Duplicate { citizen_id } => citizen_id,
        }
    }
}

impl From<Accepted> for Handled {
    /// Transaction 1 alone: a new message is stored, not processed.
    fn from(accepted: Accepted) -> Handled {
        match accepted {
            Accepted::New {
                citizen_id,
                inbox_id,
            } => Handled::Stored {
                citizen_id,
                inbox_id,
            },
            Accepted::Duplicate { citizen_id } => Handled::Duplicate { citizen_id },
        }
    }
}

/// Whether a failing message is undone on its own (and answered with an apology) or fails
/// the whole turn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Isolate {
    EachMessage,
    /// The caller undoes the whole turn and stores its message again on its own
    /// ([`Runtime::accept_and_process`]); the turn it then runs isolates each message.
    Nothing,
}

/// What one [`Runtime::process`] call did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Processed {
    /// Inbox rows marked processed (including failed ones).
    pub messages: usize,
    /// Of those, the ones that failed and were answered with an apology.
    pub failed: usize,
    /// Outbox rows written.
    pub replies: usize,
}

/// The inbound path. Cheap to clone; share one per process.
#[derive(Clone)]
pub struct Runtime {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    stations: Directory,
    timezone: Tz,
    clock: Clock,
    fresh: FreshSource,
    engine: Engine,
    catalog: &'static Catalog,
    /// Whether back-office events are configured (`SEVA_EVENTS_URL`): filings and changes
    /// enqueue `report.*` events only then.
    events: bool,
    /// In-process fast path so one citizen's turns queue here rather than on the database
    /// lock; the database transaction is the real guard.
    locks: DashMap<i64, Arc<Mutex<()>>, foldhash::fast::RandomState>,
    /// The conversations this process saved, parsed, for the citizens' next turns.
    conversations: ParsedConversations,
    /// Woken after every commit that wrote outbox rows.
    wake: Arc<Notify>,
    /// Woken instead of `wake` after a group commit whose only outbox rows are replies, so
    /// the dispatcher's bulk lane does not look for pushes nobody wrote.
    replies_wake: Arc<Notify>,
    /// Where group commits hand replies written claimed to the dispatcher's interactive lane.
    handoff: Handoff,
    /// Background work (citizens' turns after a webhook answered) that shutdown waits for.
    in_flight: InFlight,
    /// `SEVA_ANONYMOUS_CATEGORIES`, for the engine.
    anonymous_categories: Vec<String>,
    /// `SEVA_PSEUDONYM_KEY`: what anonymous tips' pseudonyms are derived with.
    pseudonym_key: Option<Secret>,
    /// `SEVA_MEDIA_DIR`: where "delete my data" removes downloaded media from.
    media_dir: PathBuf,
    limits: CitizenLimits,
    /// Where [`Runtime::accept_and_process`] queues messages for their batch; started on
    /// first use, inside the caller's tokio runtime.
    group_commit: OnceLock<group_commit::Queue>,
}

/// Builds a [`Runtime`]; everything but the store has a production default.
pub struct RuntimeBuilder {
    store: Store,
    stations: Directory,
    timezone: Tz,
    clock: Clock,
    fresh: FreshSource,
    engine: Engine,
    wake: Arc<Notify>,
    events: bool,
    anonymous_categories: Vec<String>,
    pseudonym_key: Option<Secret>,
    media_dir: PathBuf,
    limits: CitizenLimits,
}

impl RuntimeBuilder {
    /// Anonymous tips (`SEVA_ANONYMOUS_CATEGORIES`, `SEVA_PSEUDONYM_KEY`).
    pub fn privacy(mut self, privacy: &PrivacyConfig) -> Self {
        self.anonymous_categories = privacy.anonymous_categories.clone();
        self.pseudonym_key = privacy.pseudonym_key.clone();
        self
    }

    /// `SEVA_MEDIA_DIR` (`./data/media` by default).
    pub fn media_dir(mut self, dir: PathBuf) -> Self {
        self.media_dir = dir;
        self
    }

    /// Whether to enqueue back-office events (set when `SEVA_EVENTS_URL` is configured).
    pub fn events(mut self, enabled: bool) -> Self {
        self.events = enabled;
        self
    }

    pub fn stations(mut self, stations: Directory) -> Self {
        self.stations = stations;
        self
    }

    pub fn timezone(mut self, timezone: Tz) -> Self {
        self.timezone = timezone;
        self
    }

    pub fn clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    pub fn fresh(mut self, fresh: FreshSource) -> Self {
        self.fresh = fresh;
        self
    }

    pub fn engine(mut self, engine: Engine) -> Self {
        self.engine = engine;
        self
    }

    /// The notifier the dispatcher waits on (a new one by default).
    pub fn wake(mut self, wake: Arc<Notify>) -> Self {
        self.wake = wake;
        self
    }

    /// Per-citizen abuse limits (none by default).
    pub fn limits(mut self, limits: CitizenLimits) -> Self {
        self.limits = limits;
        self
    }

    pub fn build(self) -> Runtime {
        Runtime {
            inner: Arc::new(Inner {
                store: self.store,
                stations: self.stations,
                timezone: self.timezone,
                clock: self.clock,
                fresh: self.fresh,
                engine: self.engine,
                catalog: Catalog::global(),
                events: self.events,
                locks: DashMap::default(),
                conversations: ParsedConversations::new(),
                wake: self.wake,
                replies_wake: Arc::new(Notify::new()),
                handoff: Handoff::new(),
                in_flight: InFlight::new(),
                anonymous_categories: self.anonymous_categories,
                pseudonym_key: self.pseudonym_key,
                media_dir: self.media_dir,
                limits: self.limits,
                group_commit: OnceLock::new(),
            }),
        }
    }
}

/// Random reference characters and a random draft id.
pub fn random_fresh() -> Fresh {
    Fresh {
        reference: rand::random(),
        draft_id: format!("{:032x}", rand::random::<u128>()),
    }
}

impl Runtime {
    /// A builder with the real engine, the system clock, random fresh values, Asia/Kolkata and
    /// an empty station directory.
    pub fn builder(store: Store) -> RuntimeBuilder {
        RuntimeBuilder {
            store,
            stations: Directory::default(),
            timezone: chrono_tz::Asia::Kolkata,
            clock: Clock::system(),
            fresh: Arc::new(random_fresh),
            engine: Arc::new(flows::engine::step),
            wake: Arc::new(Notify::new()),
            events: false,
            anonymous_categories: Vec::new(),
            pseudonym_key: None,
            media_dir: PathBuf::from("./data/media"),
            limits: CitizenLimits::off(),
        }
    }

    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    pub fn clock(&self) -> &Clock {
        &self.inner.clock
    }

    pub fn stations(&self) -> &Directory {
        &self.inner.stations
    }

    /// `SEVA_MEDIA_DIR`.
    pub fn media_dir(&self) -> &std::path::Path {
        &self.inner.media_dir
    }

    /// `SEVA_TIMEZONE`.
    pub fn timezone(&self) -> Tz {
        self.inner.timezone
    }

    /// What report changes need to write their station alerts and back-office events.
    pub fn notices(&self) -> Notices<'_> {
        Notices {
            stations: &self.inner.stations,
            events: self.inner.events,
        }
    }

    /// Notified whenever a turn wrote outbox rows; the dispatcher waits on it.
    pub fn wake(&self) -> Arc<Notify> {
        self.inner.wake.clone()
    }

    /// Notified (instead of [`Runtime::wake`]) when a group commit wrote replies and nothing
    /// else to the outbox; for the dispatcher's interactive lane
    /// ([`crate::outbox::Dispatcher::with_replies_wake`]).
    pub fn replies_wake(&self) -> Arc<Notify> {
        self.inner.replies_wake.clone()
    }

    /// Where group commits hand replies to the dispatcher's interactive lane, written claimed
    /// ([`crate::outbox::Dispatcher::with_handoff`]).
    pub fn handoff(&self) -> Handoff {
        self.inner.handoff.clone()
    }

    /// Spawns background work that shutdown waits for (within `SEVA_SHUTDOWN_GRACE`): a
    /// citizen's turn after its webhook answered, a read receipt.
    pub fn spawn_tracked<F>(&self, task: F)
    where
        F: std::future::Future<Output = ()> + Send + 'static,
    {
        self.inner.in_flight.spawn(task);
    }

    /// The work started with [`Runtime::spawn_tracked`], for shutdown to wait on.
    pub fn in_flight(&self) -> &InFlight {
        &self.inner.in_flight
    }

    /// Transaction 1. A duplicate provider id changes nothing.
    pub async fn accept(&self, msg: &Inbound) -> Result<Accepted, RuntimeError> {
        match self.inner.store.admit(msg, self.inner.clock.now()).await? {
            Admitted::New {
                turn,
                inbox_id,
                woke,
            } => {
                let citizen_id = turn.citizen().id;
                turn.commit().await?;
                self.admitted(msg, woke);
                Ok(Accepted::New {
                    citizen_id,
                    inbox_id,
                })
            }
            Admitted::Duplicate { citizen_id } => {
                metrics::duplicate(msg.channel);
                Ok(Accepted::Duplicate { citizen_id })
            }
        }
    }

    /// Transactions 1 and 2 in one commit: stores the message and, in the same transaction,
    /// runs the citizen's turn (their earlier unprocessed messages first), so one commit
    /// stores it, answers it and marks it processed. A caller that answers its provider only
    /// after this returns still answers after the message is durably stored. The commit is
    /// shared with the messages of other citizens that arrived meanwhile (group commit, see
    /// `runtime/group_commit.rs`); the result is as if each had been handled alone.
    ///
    /// A citizen marked unreachable is only stored (the caller decides first whether this
    /// message proves otherwise).
    pub async fn accept_and_process(&self, msg: &Inbound) -> Result<Handled, RuntimeError> {
        self.accept_and_process_all(&[msg])
            .await
            .pop()
            // One result per message always comes back; this only keeps a panic out.
            .unwrap_or(Err(RuntimeError::Message("unanswered")))
    }

    /// [`Runtime::accept_and_process`] for one message in its own transaction.
    ///
    /// Falls back to transaction 1 alone (the turn is then the caller's to start) when the
    /// citizen is marked unreachable (the caller decides first whether this message proves
    /// otherwise) or when the turn fails: its transaction rolled back, so the message is
    /// stored again on its own and nothing is lost.
    async fn accept_and_process_alone(&self, msg: &Inbound) -> Result<Handled, RuntimeError> {
        let admitted = self.inner.store.admit(msg, self.inner.clock.now()).await?;
        let (turn, inbox_id, woke) = match admitted {
            Admitted::Duplicate { citizen_id } => {
                metrics::duplicate(msg.channel);
                return Ok(Handled::Duplicate { citizen_id });
            }
            Admitted::New {
                turn,
                inbox_id,
                woke,
            } => (turn, inbox_id, woke),
        };
        let citizen_id = turn.citizen().id;
        if turn.citizen().unreachable {
            turn.commit().await?;
            self.admitted(msg, woke);
            return Ok(Handled::Stored {
                citizen_id,
                inbox_id,
            });
        }
        match self.run_turn(*turn, Isolate::Nothing).await {
            Ok(_) => {
                self.admitted(msg, woke);
                Ok(Handled::Processed {
                    citizen_id,
                    inbox_id,
                })
            }
            Err(e) => {
                tracing::warn!(citizen = citizen_id, error = %e, "turn with the message failed; storing it alone");
                Ok(match self.accept(msg).await? {
                    Accepted::New {
                        citizen_id,
                        inbox_id,
                    } => Handled::Stored {
                        citizen_id,
                        inbox_id,
                    },
                    // The failed turn's commit went through after all: a turn finds nothing.
                    Accepted::Duplicate { citizen_id } => Handled::Duplicate { citizen_id },
                })
            }
        }
    }

    /// A new message was committed.
    fn admitted(&self, msg: &Inbound, woke: u64) {
        metrics::inbound(msg.channel, &msg.body);
        if woke > 0 {
            tracing::info!(
                rows = woke,
                "whatsapp messages waiting for the window are due"
            );
            self.inner.wake.notify_one();
        }
    }

    /// Accepts, then processes the citizen's turn if the message was new.
    pub async fn handle(&self, msg: &Inbound) -> Result<Accepted, RuntimeError> {
        let accepted = self.accept(msg).await?;
        if let Accepted::New { citizen_id, .. } = accepted {
            self.process(citizen_id).await?;
        }
        Ok(accepted)
    }

    /// Processes every citizen with unprocessed messages; returns how many messages it handled.
    /// A citizen whose turn fails is logged and left for the next sweep.
    pub async fn sweep(&self) -> Result<usize, RuntimeError> {
        let mut handled = 0;
        for citizen_id in self.inner.store.citizens_with_unprocessed().await? {
            match self.process(citizen_id).await {
                Ok(p) => handled += p.messages,
                Err(e) => {
                    tracing::warn!(citizen = citizen_id, error = %e, "sweep could not process citizen")
                }
            }
        }
        Ok(handled)
    }

    /// Transaction 2 for one citizen: their unprocessed messages in arrival order, in one
    /// commit. A message that fails (engine panic, failing effect, unreadable payload) is
    /// undone on its own, answered with an apology and marked processed with an error note,
    /// so it cannot block the citizen's later messages.
    pub async fn process(&self, citizen_id: i64) -> Result<Processed, RuntimeError> {
        self.one_at_a_time(citizen_id, self.process_locked(citizen_id))
            .await
    }

    /// Runs `work` for one citizen after this process's earlier work for them; `work` takes
    /// the database lock itself (the real guard across replicas).
    async fn one_at_a_time<T>(&self, citizen_id: i64, work: impl Future<Output = T>) -> T {
        let lock = self.inner.locks.entry(citizen_id).or_default().clone();
        let result = {
            let _guard = lock.lock().await;
            work.await
        };
        drop(lock);
        // Only the map holds it now: nobody waits, so the entry can go.
        self.inner
            .locks
            .remove_if(&citizen_id, |_, m| Arc::strong_count(m) == 1);
        result
    }

    /// Drops drafts idle for more than 24 hours (`flows::state::DRAFT_KEPT_SECS`) from the
    /// stored conversations, so the personal data in them goes even if the citizen never
    /// comes back; they are told when they do. Each citizen is decided under their lock: a
    /// citizen whose message is waiting, or who wrote since, keeps the engine's own handling.
    /// Returns how many drafts were dropped.
    pub async fn purge_idle_drafts(&self) -> Result<usize, RuntimeError> {
        let now = self.inner.clock.now();
        let mut purged = 0;
        let candidates = self
            .inner
            .store
            .idle_drafts(now - DRAFT_KEPT_SECS, IDLE_DRAFTS_PER_ROUND)
            .await?;
        for citizen_id in candidates {
            match self
                .one_at_a_time(citizen_id, self.purge_draft_locked(citizen_id, now))
                .await
            {
                Ok(true) => purged += 1,
                Ok(false) => {}
                Err(e) => {
                    tracing::warn!(citizen = citizen_id, error = %e, "idle draft could not be purged")
                }
            }
        }
        Ok(purged)
    }

    async fn purge_draft_locked(&self, citizen_id: i64, now: i64) -> Result<bool, StoreError> {
        let mut turn = self.inner.store.lock_citizen(citizen_id).await?;
        if turn.has_unprocessed().await? {
            return Ok(false);
        }
        let Some(stored) = turn.conversation().await? else {
            return Ok(false);
        };
        let purge = match Conversation::load(Some(&stored)) {
            Loaded::Restored(mut state) => state.expire_draft(now).then_some(state),
            // Unreadable but idle and still holding what the citizen typed (the candidate
            // query saw a draft): it would be reset at their next message anyway.
            Loaded::Fresh(state) | Loaded::Reset(state) => Some(state),
        };
        let Some(state) = purge else {
            return Ok(false);
        };
        turn.save_conversation(&state.to_json(), now).await?;
        turn.commit().await?;
        tracing::info!(citizen = citizen_id, "idle draft purged");
        Ok(true)
    }

    async fn process_locked(&self, citizen_id: i64) -> Result<Processed, RuntimeError> {
        let turn = self.inner.store.lock_citizen(citizen_id).await?;
        self.run_turn(turn, Isolate::EachMessage).await
    }

    /// The body of transaction 2, on a turn holding the citizen's lock.
    async fn run_turn(&self, mut turn: Turn, isolate: Isolate) -> Result<Processed, RuntimeError> {
        let citizen_id = turn.citizen().id;
        let (rows, stored) = turn.unprocessed_and_conversation().await?;
        if rows.is_empty() {
            return Ok(Processed::default());
        }
        let (mut state, mut reset) = self
            .inner
            .conversations
            .restore(citizen_id, stored.as_deref());

        let mut done = Processed::default();
        // Counted once the turn is committed.
        let (mut journeys, mut failures) = (Vec::new(), Vec::new());
        let now = self.inner.clock.now();
        // One message in a turn that may fail whole: no savepoint needed to undo just it.
        let savepoints = !(isolate == Isolate::Nothing && rows.len() == 1);
        for row in rows {
            if let Some(held) = self.inner.limits.message(citizen_id, row.received_at) {
                if let Some(reply) = held.reply() {
                    let lang = turn.citizen().lang.unwrap_or(Lang::Hi);
                    self.enqueue_reply(&mut turn, lang, &reply, now).await?;
                    done.replies += 1;
                }
                turn.mark_processed(row.id, now, Some(HELD_BACK_NOTE))
                    .await?;
                done.messages += 1;
                continue;
            }
            if savepoints {
                turn.savepoint().await?;
            }
            match self
                .message(&mut turn, row.payload, state.clone(), reset, now)
                .await
            {
                Ok((next, replies)) => {
                    journeys.push(metrics::journey(&state, &next));
                    for (lang, reply) in &replies {
                        self.enqueue_reply(&mut turn, *lang, reply, now).await?;
                    }
                    turn.mark_processed(row.id, now, None).await?;
                    if savepoints {
                        turn.release_savepoint().await?;
                    }
                    state = next;
                    reset = false;
                    done.replies += replies.len();
                }
                Err(e) if !savepoints => {
                    tracing::debug!(citizen = citizen_id, inbox = row.id, error = %e, "message failure detail");
                    return Err(RuntimeError::Message(e.kind()));
                }
                Err(e) => {
                    turn.rollback_to_savepoint().await?;
                    failures.push(e.kind());
                    tracing::warn!(
                        citizen = citizen_id,
                        inbox = row.id,
                        reason = e.kind(),
                        "message could not be handled"
                    );
                    tracing::debug!(citizen = citizen_id, inbox = row.id, error = %e, "message failure detail");
                    let lang = turn.citizen().lang.unwrap_or(Lang::Hi);
                    self.enqueue_reply(
                        &mut turn,
                        lang,
                        &Reply::text(Text::new(ERROR_REPLY_ID)),
                        now,
                    )
                    .await?;
                    turn.mark_processed(row.id, now, Some(&e.to_string()))
                        .await?;
                    done.failed += 1;
                    done.replies += 1;
                }
            }
            done.messages += 1;
        }
        let json = state.to_json();
        turn.save_conversation(&json, now).await?;
        turn.commit().await?;
        self.inner.conversations.saved(citizen_id, &json, state);
        journeys.into_iter().for_each(metrics::dialogue_step);
        failures.into_iter().for_each(metrics::message_failed);
        tracing::info!(
            citizen = citizen_id,
            messages = done.messages,
            failed = done.failed,
            replies = done.replies,
            "turn processed"
        );
        if done.replies > 0 {
            self.inner.wake.notify_one();
        }
        Ok(done)
    }

    async fn enqueue_reply(
        &self,
        turn: &mut Turn,
        lang: Lang,
        reply: &Reply,
        now: i64,
    ) -> Result<(), StoreError> {
        let row = reply_row(turn.citizen(), lang, reply)?;
        turn.enqueue(&row, now).await?;
        Ok(())
    }

    /// One message: step, execute effects, feed data results back, until no input is left.
    async fn message(
        &self,
        turn: &mut Turn,
        payload: InboxPayload,
        mut state: Conversation,
        reset: bool,
        now: i64,
    ) -> Result<(Conversation, Vec<(Lang, Reply)>), MessageError> {
        let inbound = payload
            .into_message()
            .map_err(|e| MessageError::Payload(e.to_string()))?;
        let mut profile = profile(turn, &inbound);
        let today = self.local_date(now);
        let first = if reset {
            Input::StateReset(inbound.body)
        } else {
            Input::Message(inbound.body)
        };
        let mut inputs = VecDeque::from([first]);
        let mut replies = Vec::new();
        let mut steps = 0;
        while let Some(input) = inputs.pop_front() {
            steps += 1;
            if steps > MAX_STEPS {
                return Err(MessageError::Runaway);
            }
            let outcome = {
                let ctx = Ctx {
                    now,
                    today,
                    profile: &profile,
                    stations: &self.inner.stations,
                    catalog: self.inner.catalog,
                    fresh: (self.inner.fresh)(),
                    anonymous_categories: &self.inner.anonymous_categories,
                };
                // A panicking engine must cost one message, not the citizen's whole queue.
                std::panic::catch_unwind(AssertUnwindSafe(|| {
                    (self.inner.engine)(state, &input, &ctx)
                }))
                .map_err(|p| MessageError::Panic(panic_text(p.as_ref())))?
            };
            state = outcome.state;
            replies.extend(outcome.replies.into_iter().map(|r| (outcome.lang, r)));
            for effect in &outcome.effects {
                if let Some(result) = self.effect(turn, &mut profile, effect, now).await? {
                    inputs.push_back(Input::Result(result));
                }
            }
        }
        Ok((state, replies))
    }

    async fn effect(
        &self,
        turn: &mut Turn,
        profile: &mut Profile,
        effect: &Effect,
        now: i64,
    ) -> Result<Option<EffectResult>, MessageError> {
        let result = match effect {
            Effect::SetLanguage { lang } => {
                turn.set_lang(*lang).await?;
                profile.lang = Some(*lang);
                None
            }
            Effect::SetPhone { phone } => {
                turn.set_phone(phone).await?;
                profile.phone = Some(phone.clone());
                None
            }
            Effect::SetPushes { enabled } => {
                turn.set_pushes(*enabled).await?;
                profile.pushes_enabled = *enabled;
                None
            }
            Effect::DeleteMyData => {
                let media = turn.delete_my_data().await?;
                crate::privacy::remove_media_files(&self.inner.media_dir, &media);
                profile.phone = None;
                tracing::info!(citizen = turn.citizen().id, "citizen data deleted");
                None
            }
            Effect::FileReport { report } => Some(self.file(turn, report, now).await?),
            Effect::LookupReport { reference } => {
                let found = turn.own_report(reference).await?;
                Some(EffectResult::Report {
                    report: found.map(|r| self.view(r)),
                })
            }
            Effect::CheckReportLimit { kind } => Some(EffectResult::ReportLimit {
                kind: *kind,
                refused: self
                    .inner
                    .limits
                    .new_report(turn, self.inner.timezone, now)
                    .await?,
            }),
            Effect::ListMyReports => {
                let reports = turn.own_reports(MY_REPORTS_LIMIT).await?;
                Some(EffectResult::MyReports {
                    reports: reports.into_iter().map(|r| self.view(r)).collect(),
                })
            }
        };
        Ok(result)
    }

    async fn file(
        &self,
        turn: &mut Turn,
        report: &NewReport,
        now: i64,
    ) -> Result<EffectResult, MessageError> {
        let mut report = report.clone();
        let pseudonym = match (&self.inner.pseudonym_key, report.anonymous) {
            (Some(key), true) => Some(crate::privacy::pseudonym(key, turn.citizen().id)),
            _ => None,
        };
        for _ in 0..MAX_REFERENCE_DRAWS {
            match turn
                .file_report_as(&report, pseudonym.as_deref(), now, self.notices())
                .await?
            {
                Filing::Filed {
                    reference,
                    station_id,
                    new,
                } => {
                    if new {
                        metrics::report_filed(report.kind.as_str(), turn.citizen().channel);
                        tracing::info!(
                            citizen = turn.citizen().id,
                            reference = %reference,
                            kind = report.kind.as_str(),
                            anonymous = report.anonymous,
                            "report filed"
                        );
                    }
                    // The engine names the station from the directory itself.
                    return Ok(EffectResult::Filed {
                        reference,
                        station: station_id,
                    });
                }
                Filing::ReferenceTaken => {
                    report.reference =
                        Reference::generate(report.kind, (self.inner.fresh)().reference);
                }
            }
        }
        Err(MessageError::NoReference)
    }

    fn view(&self, r: StoredReport) -> ReportView {
        let station = r
            .station_id
            .as_deref()
            .and_then(|id| self.inner.stations.station(id));
        ReportView {
            reference: r.reference,
            kind: r.kind,
            status: r.status,
            station_en: station.map(|s| s.name_en.clone()),
            station_hi: station.map(|s| s.name_hi.clone()),
            updated_on: self.local_date(r.updated_at),
            fir_number: r.fir_number,
            history: r
                .history
                .into_iter()
                .map(|(status, at)| (status, self.local_date(at)))
                .collect(),
        }
    }

    /// The date at `unix` seconds in `SEVA_TIMEZONE`.
    pub fn local_date(&self, unix: i64) -> NaiveDate {
        chrono::DateTime::from_timestamp(unix, 0)
            .unwrap_or_default()
            .with_timezone(&self.inner.timezone)
            .date_naive()
    }
}

/// The stored conversation, or a fresh one when there is none or it cannot be read (`true`:
/// the citizen is told they start over).
fn restore(citizen_id: i64, stored: Option<&str>) -> (Conversation, bool) {
    match Conversation::load(stored) {
        Loaded::Fresh(c) | Loaded::Restored(c) => (c, false),
        Loaded::Reset(c) => {
            tracing::info!(
                citizen = citizen_id,
                "stored conversation unreadable; starting over"
            );
            (c, true)
        }
    }
}

/// The outbox row of a reply to the citizen.
fn reply_row(citizen: &Citizen, lang: Lang, reply: &Reply) -> Result<NewOutbox, StoreError> {
    Ok(NewOutbox {
        citizen_id: Some(citizen.id),
        channel: citizen.channel,
        recipient: citizen.external_id.clone(),
        kind: OutboxKind::Reply,
        // What `OutboxContent::reply(reply)` serializes to (its other fields are left out when
        // empty, `flows::delivery` tests), without a copy of the reply to wrap.
        content: serde_json::to_string(reply).map_err(|e| StoreError::Corrupt(e.to_string()))?,
        lang: Some(lang),
    })
}

fn profile(turn: &Turn, inbound: &Inbound) -> Profile {
    let citizen = turn.citizen();
    let devanagari = match &inbound.body {
        Body::Text { text } => text.chars().any(|c| ('\u{0900}'..='\u{097F}').contains(&c)),
        _ => false,
    };
    Profile {
        channel: citizen.channel,
        lang: citizen.lang,
        lang_hint: inbound.hints.lang.or(devanagari.then_some(Lang::Hi)),
        channel_phone: inbound.hints.phone.clone(),
        phone: citizen.phone.clone(),
        pushes_enabled: citizen.pushes_enabled,
    }
}

fn panic_text(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".to_owned())
}
