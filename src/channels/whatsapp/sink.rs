//! [`RuntimeSink`]: the runtime behind `POST /webhook/whatsapp`.
//!
//! `accept` stores every message (transaction 1, unique on its wamid; the citizen's WhatsApp
//! messages waiting for the 24-hour window become due in it) and returns only once they are
//! committed, so the route answers 200 after the commit (and 500 on failure, so Meta delivers
//! the notification again). A notification carrying one message (the usual case) is stored
//! and processed in one commit ([`Runtime::accept_and_process`]); otherwise the citizens'
//! turns (transaction 2; the sweeper catches anything missed) run in the background. Then
//! each message is marked as read and media downloads start. A redelivered wamid changes
//! nothing and starts nothing.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use flows::message::{Body, Channel, Inbound};
use webhook::graph::REENGAGEMENT;
use webhook::{DeliveryStatus, GraphClient, SinkError, WhatsappSink};

use super::media::MediaFetcher;
use crate::metrics;
use crate::runtime::{Handled, Runtime};
use crate::store::StatusApplied;

/// Meta redelivers a notification for up to 7 days; a message timestamp older than that (or
/// missing) cannot be the moment the citizen wrote, so the time of receipt stands in for it
/// in the 24-hour window.
const PLAUSIBLE_AGE_SECS: i64 = 8 * 24 * 3600;

/// A second look for rows whose window was being closed by an in-flight send while the
/// citizen's message arrived (they were `sending`, so the first look could not move them).
pub(super) const REWAKE_AFTER: Duration = Duration::from_secs(2);

/// Stores what the WhatsApp webhook receives and sets the rest in motion.
#[derive(Clone)]
pub struct RuntimeSink {
    runtime: Runtime,
    graph: GraphClient,
    media: Arc<MediaFetcher>,
    background: bool,
}

impl RuntimeSink {
    pub fn new(runtime: Runtime, graph: GraphClient, media: Arc<MediaFetcher>) -> RuntimeSink {
        RuntimeSink {
            runtime,
            graph,
            media,
            background: true,
        }
    }

    /// Stores and answers, and starts nothing afterwards: the state a crash right after the
    /// 200 leaves behind (for tests of the sweeper and restarts).
    pub fn store_only(mut self) -> RuntimeSink {
        self.background = false;
        self
    }

    /// A media message's download job, queued in the same request as its message (again for a
    /// redelivery, in case the first request stored the message and then failed).
    async fn queue_media(
        &self,
        msg: &Inbound,
        citizen_id: i64,
    ) -> Result<Option<String>, SinkError> {
        let Body::Media {
            kind,
            file_id,
            mime,
            ..
        } = &msg.body
        else {
            return Ok(None);
        };
        match self
            .media
            .register(file_id, citizen_id, *kind, mime.as_deref())
            .await
        {
            Ok(true) => Ok(Some(file_id.clone())),
            Ok(false) => Ok(None),
            Err(e) => {
                tracing::error!(citizen = citizen_id, error = %e, "whatsapp media download not queued");
                Err(SinkError::new("media download not queued"))
            }
        }
    }

    /// The background work after a commit: for each citizen with new messages, their turn
    /// unless it ran already, and a second look at rows waiting for the window; a read receipt
    /// per message; the first download attempts. Turns and read receipts are tracked: shutdown
    /// lets them finish.
    fn start(&self, citizens: Vec<NewFrom>, wamids: Vec<String>, media: Vec<String>) {
        for citizen in citizens {
            let runtime = self.runtime.clone();
            let NewFrom {
                citizen_id,
                recipient,
                processed,
            } = citizen;
            self.runtime.spawn_tracked(async move {
                if !processed && let Err(e) = runtime.process(citizen_id).await {
                    tracing::warn!(citizen = citizen_id, error = %e, "turn failed; the sweeper will retry");
                }
                // The second look is not worth holding a shutdown for.
                tokio::spawn(async move {
                    tokio::time::sleep(REWAKE_AFTER).await;
                    wake_waiting(&runtime, &recipient).await;
                });
            });
        }
        for wamid in wamids {
            let graph = self.graph.clone();
            self.runtime.spawn_tracked(async move {
                if let Err(outcome) = graph.mark_read(&wamid).await {
                    tracing::info!(?outcome, "whatsapp read receipt not sent");
                }
            });
        }
        for media_id in media {
            let fetcher = self.media.clone();
            tokio::spawn(async move { fetcher.fetch(&media_id).await });
        }
    }
}

/// A citizen with new messages in a notification.
struct NewFrom {
    citizen_id: i64,
    /// Their `wa_id`.
    recipient: String,
    /// Their turn ran in the messages' own transaction.
    processed: bool,
}

/// The second look at the citizen's WhatsApp rows waiting for the window.
async fn wake_waiting(runtime: &Runtime, recipient: &str) {
    let now = runtime.clock().now();
    match runtime.store().whatsapp_wake_waiting(recipient, now).await {
        Ok(0) => {}
        Ok(n) => {
            tracing::info!(rows = n, "whatsapp messages waiting for the window are due");
            runtime.wake().notify_one();
        }
        Err(e) => tracing::warn!(error = %e, "waiting whatsapp messages not woken"),
    }
}

/// The provider's timestamp opens the 24-hour window; one that cannot be real is replaced by
/// the time of receipt.
fn plausible_time(msg: &mut Inbound, now: i64) {
    if msg.sent_at <= 0 || now - msg.sent_at > PLAUSIBLE_AGE_SECS {
        tracing::debug!(
            sent_at = msg.sent_at,
            "whatsapp message timestamp implausible; using the time of receipt"
        );
        msg.sent_at = now;
    }
}

#[async_trait]
impl WhatsappSink for RuntimeSink {
    async fn accept(&self, messages: Vec<Inbound>) -> Result<(), SinkError> {
        let now = self.runtime.clock().now();
        let mut citizens: Vec<NewFrom> = Vec::new();
        let mut wamids = Vec::new();
        let mut media = Vec::new();
        let mut failure = None;
        // Several messages are all stored before any is processed, as Meta batched them.
        let at_once = self.background && messages.len() == 1;
        for mut msg in messages {
            plausible_time(&mut msg, now);
            let handled = if at_once {
                self.runtime.accept_and_process(&msg).await
            } else {
                self.runtime.accept(&msg).await.map(Handled::from)
            };
            let citizen_id = match handled {
                Ok(
                    handled @ (Handled::Processed {
                        citizen_id,
                        inbox_id,
                    }
                    | Handled::Stored {
                        citizen_id,
                        inbox_id,
                    }),
                ) => {
                    let processed = matches!(handled, Handled::Processed { .. });
                    tracing::debug!(
                        citizen = citizen_id,
                        inbox = inbox_id,
                        processed,
                        "whatsapp message stored"
                    );
                    match citizens.iter_mut().find(|c| c.citizen_id == citizen_id) {
                        Some(c) => c.processed &= processed,
                        None => citizens.push(NewFrom {
                            citizen_id,
                            recipient: msg.sender.clone(),
                            processed,
                        }),
                    }
                    wamids.push(msg.provider_id.clone());
                    citizen_id
                }
                Ok(Handled::Duplicate { citizen_id }) => {
                    tracing::info!(
                        citizen = citizen_id,
                        "whatsapp message redelivered; already stored"
                    );
                    citizen_id
                }
                Err(e) => {
                    tracing::error!(error = %e, "whatsapp message not stored");
                    failure = Some(SinkError::new("message not stored"));
                    break;
                }
            };
            match self.queue_media(&msg, citizen_id).await {
                Ok(Some(media_id)) => media.push(media_id),
                Ok(None) => {}
                Err(e) => {
                    failure = Some(e);
                    break;
                }
            }
        }
        // What was committed is processed even when a later message failed: the redelivery
        // Meta makes after our 500 finds those as duplicates.
        if self.background {
            self.start(citizens, wamids, media);
        }
        match failure {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    async fn statuses(&self, statuses: Vec<DeliveryStatus>) -> Result<(), SinkError> {
        let store = self.runtime.store();
        let mut woke = false;
        for status in &statuses {
            let now = self.runtime.clock().now();
            match store.whatsapp_apply_status(status, now).await {
                Ok(StatusApplied::Unknown) => {
                    tracing::debug!(
                        status = status.status.as_str(),
                        "status for no known outbox row"
                    );
                }
                Ok(StatusApplied::Recorded { outbox_id }) => {
                    tracing::debug!(
                        outbox = outbox_id,
                        status = status.status.as_str(),
                        "whatsapp status recorded"
                    );
                }
                Ok(StatusApplied::Duplicate { outbox_id }) => {
                    tracing::debug!(outbox = outbox_id, "whatsapp failed status redelivered");
                }
                Ok(StatusApplied::Reengage { outbox_id }) => {
                    metrics::provider_error(Channel::Whatsapp, &REENGAGEMENT.to_string());
                    tracing::info!(
                        outbox = outbox_id,
                        "whatsapp message failed outside the 24-hour window (131047); it becomes its template or waits for the citizen"
                    );
                    woke = true;
                }
                Ok(StatusApplied::Dead { outbox_id }) => {
                    let codes: Vec<i64> = status.errors.iter().map(|(c, _)| *c).collect();
                    for code in &codes {
                        metrics::provider_error(Channel::Whatsapp, &code.to_string());
                    }
                    tracing::warn!(
                        outbox = outbox_id,
                        ?codes,
                        "whatsapp message failed to deliver"
                    );
                }
                Err(e) => {
                    tracing::error!(error = %e, "whatsapp status not stored");
                    return Err(SinkError::new("status not stored"));
                }
            }
        }
        if woke {
            self.runtime.wake().notify_one();
        }
        Ok(())
    }
}
