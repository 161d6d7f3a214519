//! [`RuntimeSink`]: the runtime behind `POST /webhook/whatsapp`.
//!
//! `accept` stores every message (transaction 1, unique on its wamid; the citizen's WhatsApp
//! messages waiting for the 24-hour window become due in it) and returns only once they are
//! committed, so the route answers 200 after the commit (and 500 on failure, so Meta delivers
//! the notification again). Its messages (usually one) are stored and processed in one
//! commit ([`Runtime::accept_and_process_all`]), each citizen's in their order; the turn of a
//! citizen whose message was only stored (marked unreachable) runs in the background (the
//! sweeper catches anything missed). Then
//! the messages are marked as read (a citizen's latest, about once a second at most:
//! [`super::read_receipts`]) and media downloads start. A redelivered wamid changes nothing
//! and starts nothing.

use std::collections::HashSet;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use flows::message::{Body, Channel, Inbound};
use webhook::graph::REENGAGEMENT;
use webhook::{DeliveryStatus, GraphClient, SinkError, WhatsappSink};

use super::media::MediaFetcher;
use super::read_receipts::ReadReceipts;
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
    media: Arc<MediaFetcher>,
    background: bool,
    second_look: Arc<SecondLook>,
    receipts: Arc<ReadReceipts>,
}

impl RuntimeSink {
    pub fn new(runtime: Runtime, graph: GraphClient, media: Arc<MediaFetcher>) -> RuntimeSink {
        let looker = runtime.clone();
        let second_look = SecondLook::new(
            REWAKE_AFTER,
            Box::new(move |due| {
                let runtime = looker.clone();
                Box::pin(async move { wake_waiting(&runtime, due).await })
            }),
        );
        RuntimeSink {
            receipts: ReadReceipts::new(graph, runtime.clone()),
            runtime,
            media,
            background: true,
            second_look,
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
    /// unless it ran already, and a second look at rows waiting for the window; the messages
    /// marked as read ([`ReadReceipts`]); the first download attempts. Turns and read receipts
    /// are tracked: shutdown lets them finish.
    fn start(&self, citizens: Vec<NewFrom>, read: Vec<(String, String)>, media: Vec<String>) {
        for citizen in citizens {
            let NewFrom {
                citizen_id,
                recipient,
                processed,
            } = citizen;
            if processed {
                self.second_look.queue(recipient);
                continue;
            }
            let runtime = self.runtime.clone();
            let second_look = self.second_look.clone();
            self.runtime.spawn_tracked(async move {
                if let Err(e) = runtime.process(citizen_id).await {
                    tracing::warn!(citizen = citizen_id, error = %e, "turn failed; the sweeper will retry");
                }
                second_look.queue(recipient);
            });
        }
        for (wa_id, wamid) in read {
            self.receipts.mark(&wa_id, wamid);
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

/// What a second look does with the recipients due for it.
type Look = Box<dyn Fn(Vec<String>) -> Pin<Box<dyn Future<Output = ()> + Send>> + Send + Sync>;

/// The second looks at rows waiting for the window, taken together: one read every
/// [`REWAKE_AFTER`] for everyone who wrote meanwhile, not one per message. Each recipient is
/// looked at between one and two `every`s after they were queued. The task that looks runs
/// only while someone is queued, and shutdown does not wait for it.
struct SecondLook {
    every: Duration,
    look: Look,
    queue: Mutex<Looks>,
}

#[derive(Default)]
struct Looks {
    /// Looked at on the next tick: queued before the last tick, or just before the task
    /// started (its first tick is a whole `every` away).
    ripe: HashSet<String>,
    /// Queued since the last tick: the next tick may be sooner than `every` away, so they
    /// become ripe then and are looked at on the tick after.
    fresh: HashSet<String>,
    /// Whether the task runs; it stops when a tick finds nobody queued.
    running: bool,
}

impl SecondLook {
    fn new(every: Duration, look: Look) -> Arc<SecondLook> {
        Arc::new(SecondLook {
            every,
            look,
            queue: Mutex::default(),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Looks> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A second look at `recipient`'s rows, `every` from now or up to twice that.
    fn queue(self: &Arc<Self>, recipient: String) {
        let mut looks = self.lock();
        if looks.running {
            looks.fresh.insert(recipient);
            return;
        }
        looks.ripe.insert(recipient);
        looks.running = true;
        drop(looks);
        let this = self.clone();
        tokio::spawn(async move { this.run().await });
    }

    async fn run(&self) {
        loop {
            tokio::time::sleep(self.every).await;
            let due = {
                let mut looks = self.lock();
                let fresh = std::mem::take(&mut looks.fresh);
                let due = std::mem::replace(&mut looks.ripe, fresh);
                if due.is_empty() && looks.ripe.is_empty() {
                    looks.running = false;
                    return;
                }
                due
            };
            if !due.is_empty() {
                (self.look)(due.into_iter().collect()).await;
            }
        }
    }
}

/// The second look at these citizens' WhatsApp rows waiting for the window.
async fn wake_waiting(runtime: &Runtime, recipients: Vec<String>) {
    let now = runtime.clock().now();
    match runtime
        .store()
        .whatsapp_wake_waiting_all(&recipients, now)
        .await
    {
        Ok(0) => {}
        Ok(n) => {
            tracing::info!(rows = n, "whatsapp messages waiting for the window are due");
            runtime.wake().notify_one();
        }
        Err(e) => tracing::warn!(
            recipients = recipients.len(),
            error = %e,
            "waiting whatsapp messages not woken"
        ),
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
        let mut read = Vec::new();
        let mut media = Vec::new();
        let mut failure = None;
        let mut messages = messages;
        for msg in &mut messages {
            plausible_time(msg, now);
        }
        let results = if self.background {
            // All in one commit, as Meta batched them, each citizen's in their order.
            let refs: Vec<&Inbound> = messages.iter().collect();
            self.runtime.accept_and_process_all(&refs).await
        } else {
            let mut results = Vec::with_capacity(messages.len());
            for msg in &messages {
                let stored = self.runtime.accept(msg).await.map(Handled::from);
                let failed = stored.is_err();
                results.push(stored);
                if failed {
                    break;
                }
            }
            results
        };
        for (msg, handled) in messages.iter().zip(results) {
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
                    read.push((msg.sender.clone(), msg.provider_id.clone()));
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
            match self.queue_media(msg, citizen_id).await {
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
            self.start(citizens, read, media);
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

#[cfg(test)]
mod tests {
    use tokio::time::Instant;

    use super::*;

    /// Each look: when, and whom (sorted).
    type Seen = Arc<Mutex<Vec<(Instant, Vec<String>)>>>;

    fn recording(every: Duration) -> (Arc<SecondLook>, Seen) {
        let seen: Seen = Arc::default();
        let record = seen.clone();
        let look: Look = Box::new(move |mut due| {
            due.sort();
            record.lock().unwrap().push((Instant::now(), due));
            Box::pin(async {})
        });
        (SecondLook::new(every, look), seen)
    }

    #[tokio::test]
    async fn each_recipient_is_looked_at_once_between_one_and_two_intervals_later() {
        let every = Duration::from_millis(500);
        let (second_look, seen) = recording(every);
        let start = Instant::now();
        second_look.queue("a".to_owned());
        tokio::time::sleep(every / 2).await;
        let b_at = Instant::now();
        second_look.queue("b".to_owned());
        second_look.queue("c".to_owned());
        second_look.queue("b".to_owned());
        tokio::time::sleep(every * 3).await;

        let looks = seen.lock().unwrap().clone();
        let whom: Vec<Vec<String>> = looks.iter().map(|(_, due)| due.clone()).collect();
        assert_eq!(
            whom,
            [vec!["a"], vec!["b", "c"]],
            "one look per tick, deduplicated"
        );
        assert!(looks[0].0 - start >= every && looks[0].0 - start < every * 2);
        assert!(looks[1].0 - b_at >= every && looks[1].0 - b_at < every * 2);
        assert!(
            !second_look.lock().running,
            "the task stops once nobody is queued"
        );

        second_look.queue("a".to_owned());
        let again = Instant::now();
        tokio::time::sleep(every * 3 / 2).await;
        let looks = seen.lock().unwrap().clone();
        assert_eq!(looks.len(), 3, "a new message starts the task again");
        assert_eq!(looks[2].1, ["a"]);
        assert!(looks[2].0 - again >= every);
    }
}
