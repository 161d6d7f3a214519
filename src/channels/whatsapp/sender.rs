//! [`WhatsappSender`]: the outbox dispatcher's channel for WhatsApp.
//!
//! Each outbox row is rendered with [`webhook::render::render_bodies`] (text, reply buttons, a list,
//! a location request) and POSTed to the Graph API, one request body after another; the outbox
//! id travels in `biz_opaque_callback_data`, and the row keeps the last wamid.
//!
//! The 24-hour customer-service window (spec §2.9): free text may only be sent within 24 hours
//! of the citizen's last message, which Seva treats as closed after 23 h 50 min
//! ([`super::WINDOW_SECS`]). Outside it, or when Meta answers 131047 (at send time, or later in
//! a `failed` status webhook), the row is turned into its approved template once — when it is
//! a status push (it carries template parameters) and a template is configured for its
//! language (`SEVA_WHATSAPP_TEMPLATE_HI` / `_EN`) — and otherwise waits until the citizen next
//! writes: the row stays pending (rechecked every [`WAIT_FOR_WINDOW`] without calling Meta),
//! and the webhook sink makes it due the moment a message from that citizen is stored.
//!
//! The window state of a claimed batch is read in one statement before its sends start
//! ([`ChannelSender::prepare`]); each send takes its row's state from there, or reads it alone.

use std::time::Duration;

use async_trait::async_trait;
use flows::Lang;
use flows::delivery::SendOutcome;
use flows::message::Channel;
use tokio::sync::OnceCell;
use tokio::time::Instant;
use webhook::graph::REENGAGEMENT;
use webhook::{GraphClient, Recipient, render_bodies, render_template};

use super::WINDOW_SECS;
use super::sink::REWAKE_AFTER;
use crate::clock::Clock;
use crate::metrics;
use crate::outbox::prepared::Prepared;
use crate::outbox::{ChannelSender, OutboundMessage};
use crate::store::{Store, StoreError, WhatsappSendState};

/// How often a row waiting for the window is looked at again (without calling Meta); the
/// citizen's next message makes it due at once anyway.
pub const WAIT_FOR_WINDOW: u64 = 15 * 60;

/// Meta's "message undeliverable" (not a WhatsApp user, old app, terms not accepted).
const UNDELIVERABLE: &str = "131026";

/// How long a state read by [`ChannelSender::prepare`] may stand in for a read at send time.
/// The citizen may write after it was read, and a send deciding on the older state then
/// closes the window for a row it should have sent; the sink's second look, which comes
/// [`REWAKE_AFTER`] after that message, makes the row due again, but only if the send has
/// been recorded by then. A paced batch at the default 80/s is sent within this.
const PREPARED_FOR: Duration = Duration::from_secs(1);
const _: () = assert!(PREPARED_FOR.as_millis() * 2 <= REWAKE_AFTER.as_millis());

/// Prepared states kept at most: a bound for rows prepared and then never sent (a batch handed
/// back at shutdown), far above what the dispatcher's batches leave unsent within
/// [`PREPARED_FOR`].
const PREPARED_MAX: usize = 4096;

/// The database, for the window and template state of each row. The dispatcher's senders are
/// built before `serve` opens its store, so the sender connects its own small pool to the same
/// database on first use (and tries again on the next send if that fails).
enum StoreHandle {
    Given(Store),
    Lazy { url: String, store: OnceCell<Store> },
}

impl StoreHandle {
    async fn get(&self) -> Result<&Store, StoreError> {
        match self {
            StoreHandle::Given(store) => Ok(store),
            StoreHandle::Lazy { url, store } => {
                store.get_or_try_init(|| Store::connect_small(url)).await
            }
        }
    }
}

/// Sends outbox rows through the Graph API.
pub struct WhatsappSender {
    graph: GraphClient,
    store: StoreHandle,
    template_hi: Option<String>,
    template_en: Option<String>,
    clock: Clock,
    /// Send states read for a claimed batch, by outbox id, with when they were read.
    prepared: Prepared<WhatsappSendState>,
}

fn transient(what: &str, e: &StoreError) -> SendOutcome {
    tracing::warn!(error = %e, "whatsapp sender: {what}");
    SendOutcome::Transient {
        reason: format!("{what}: database unavailable"),
    }
}

impl WhatsappSender {
    /// The sender `serve` runs, over its own pool to `database_url`.
    pub fn new(
        graph: GraphClient,
        database_url: &str,
        template_hi: Option<String>,
        template_en: Option<String>,
    ) -> WhatsappSender {
        WhatsappSender {
            graph,
            store: StoreHandle::Lazy {
                url: database_url.to_owned(),
                store: OnceCell::new(),
            },
            template_hi,
            template_en,
            clock: Clock::system(),
            prepared: Prepared::new(PREPARED_FOR, PREPARED_MAX),
        }
    }

    /// A sender over an open store (tests, embedding).
    pub fn with_store(
        graph: GraphClient,
        store: Store,
        template_hi: Option<String>,
        template_en: Option<String>,
    ) -> WhatsappSender {
        WhatsappSender {
            graph,
            store: StoreHandle::Given(store),
            template_hi,
            template_en,
            clock: Clock::system(),
            prepared: Prepared::new(PREPARED_FOR, PREPARED_MAX),
        }
    }

    pub fn with_clock(mut self, clock: Clock) -> WhatsappSender {
        self.clock = clock;
        self
    }

    /// The approved status template for a language, if configured.
    fn template(&self, lang: Lang) -> Option<&str> {
        match lang {
            Lang::Hi => self.template_hi.as_deref(),
            Lang::En => self.template_en.as_deref(),
        }
    }

    /// Outside the window: the row's template (turned into it once, for good), or a wait for
    /// the citizen's next message.
    async fn outside_window(
        &self,
        store: &Store,
        msg: &OutboundMessage,
        to: &Recipient,
        state: &WhatsappSendState,
    ) -> SendOutcome {
        if let (Some(params), Some(name)) = (msg.template.as_ref(), self.template(msg.lang)) {
            if state.templated_at.is_none() {
                if let Err(e) = store
                    .whatsapp_mark_templated(msg.id, self.clock.now())
                    .await
                {
                    return transient("template mark not stored", &e);
                }
                tracing::info!(
                    outbox = msg.id,
                    lang = msg.lang.code(),
                    "outside the 24-hour window: sending the status template"
                );
            }
            let body = render_template(to, name, msg.lang.code(), params, &msg.id.to_string());
            let outcome = self.graph.send(&body).await;
            metrics::provider_outcome(Channel::Whatsapp, &outcome);
            return outcome;
        }
        if let Err(e) = store
            .whatsapp_close_window(msg.id, state.last_inbox_id)
            .await
        {
            return transient("window mark not stored", &e);
        }
        tracing::info!(
            outbox = msg.id,
            kind = msg.kind.as_str(),
            "outside the 24-hour window and no template for it: waiting for the citizen to write"
        );
        SendOutcome::RetryAfter {
            secs: WAIT_FOR_WINDOW,
        }
    }

    /// Inside the window: every request body of the rendered reply, in order, from the first
    /// one Meta has not accepted yet.
    async fn free_form(
        &self,
        store: &Store,
        msg: &OutboundMessage,
        to: &Recipient,
        state: &WhatsappSendState,
    ) -> SendOutcome {
        let opaque = msg.id.to_string();
        let bodies = render_bodies(to, &msg.rendered, &opaque);
        if bodies.is_empty() {
            // An empty reply renders to nothing: there is nothing to deliver.
            return SendOutcome::Sent {
                provider_id: format!("empty-{}", msg.id),
            };
        }
        let skip = (state.parts_sent as usize).min(bodies.len() - 1);
        let mut last = None;
        for (i, body) in bodies.iter().enumerate().skip(skip) {
            let outcome = self.graph.send(body).await;
            metrics::provider_outcome(Channel::Whatsapp, &outcome);
            match outcome {
                SendOutcome::Sent { provider_id } => {
                    if i + 1 < bodies.len()
                        && let Err(e) = store.whatsapp_set_parts_sent(msg.id, i as u32 + 1).await
                    {
                        // At worst this part is sent again on a retry.
                        tracing::warn!(outbox = msg.id, error = %e, "whatsapp part progress not stored");
                    }
                    last = Some(provider_id);
                }
                SendOutcome::Permanent { code, .. } if code == REENGAGEMENT.to_string() => {
                    tracing::info!(
                        outbox = msg.id,
                        "Meta says the 24-hour window is closed (131047)"
                    );
                    if let Err(e) = store
                        .whatsapp_close_window(msg.id, state.last_inbox_id)
                        .await
                    {
                        return transient("window mark not stored", &e);
                    }
                    return self.outside_window(store, msg, to, state).await;
                }
                SendOutcome::Permanent { code, reason } => {
                    if code == UNDELIVERABLE
                        && let Err(e) = store.whatsapp_mark_unreachable(&msg.recipient).await
                    {
                        tracing::warn!(error = %e, "citizen not marked unreachable");
                    }
                    return SendOutcome::Permanent { code, reason };
                }
                other => return other,
            }
        }
        match last {
            Some(provider_id) => SendOutcome::Sent { provider_id },
            None => SendOutcome::Transient {
                reason: "nothing was sent".to_owned(),
            },
        }
    }
}

#[async_trait]
impl ChannelSender for WhatsappSender {
    fn channel(&self) -> Channel {
        Channel::Whatsapp
    }

    async fn prepare(&self, batch: &[&OutboundMessage]) {
        let Ok(store) = self.store.get().await else {
            // Each send reads its own state, and reports the failure.
            return;
        };
        // A handed-over reply's state is known: a fresh row, to a citizen who just wrote.
        let ids: Vec<i64> = batch
            .iter()
            .filter(|m| m.answers.is_none())
            .map(|m| m.id)
            .collect();
        if ids.is_empty() || !self.prepared.room_for(ids.len()) {
            return;
        }
        let read_at = Instant::now();
        match store.whatsapp_send_states(&ids).await {
            Ok(states) => self.prepared.fill(read_at, states),
            Err(e) => tracing::debug!(error = %e, "whatsapp send states not read for the batch"),
        }
    }

    async fn send(&self, msg: &OutboundMessage) -> SendOutcome {
        let store = match self.store.get().await {
            Ok(store) => store,
            Err(e) => return transient("cannot open the database", &e),
        };
        let mut state = match (self.prepared.take(msg.id), msg.answers) {
            (Some(state), _) => state,
            // Nothing marked on the row yet: its window is the citizen's, as just stored.
            (None, Some(answered)) => WhatsappSendState {
                last_inbound_at: answered.last_inbound_at,
                last_inbox_id: Some(answered.inbox_id),
                ..WhatsappSendState::default()
            },
            (None, None) => match store.whatsapp_send_state(msg.id).await {
                Ok(state) => state.unwrap_or_default(),
                Err(e) => return transient("cannot read the window state", &e),
            },
        };
        let to = Recipient::for_sender(&msg.recipient);
        if state.templated_at.is_some() {
            return self.outside_window(store, msg, &to, &state).await;
        }
        if let Some(mark) = state.wait_after_inbox {
            if state.last_inbox_id.unwrap_or(0) <= mark {
                return self.outside_window(store, msg, &to, &state).await;
            }
            // The citizen wrote since the window closed for this row.
            if let Err(e) = store.whatsapp_reopen_window(msg.id).await {
                return transient("window mark not cleared", &e);
            }
            state.wait_after_inbox = None;
        }
        let open = state
            .last_inbound_at
            .is_some_and(|at| self.clock.now() - at < WINDOW_SECS);
        if !open {
            return self.outside_window(store, msg, &to, &state).await;
        }
        self.free_form(store, msg, &to, &state).await
    }
}
