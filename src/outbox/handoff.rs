//! Replies handed from the group commit straight to this process's interactive lane.
//!
//! A reply whose recipient has nothing else pending or sending is written already claimed
//! ([`crate::store::Batch::enqueue_claimed`]) and passed here with its rendering, so the lane
//! sends it without claiming it, reading it back or parsing its content again. Everything
//! else about it is as for a claimed row: the lane paces it, keeps it among its sends in
//! flight and records the outcome; a crash leaves it `sending` for the next leader's
//! recovery, and its lease runs out like any claim's.
//!
//! Only the lane that leads a channel takes its replies: a replica that does not lead one
//! (PostgreSQL) writes them pending for the leader to claim, as before.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use dashmap::DashSet;

use flows::Lang;
use flows::catalog::Catalog;
use flows::message::Channel;
use flows::reply::Reply;
use tokio::sync::{Notify, mpsc};

use super::{AnsweredMessage, OutboundMessage};
use crate::store::OutboxRow;

/// Replies waiting for the lane at most. Past it, replies are written pending for a claim:
/// a row waiting here holds a lease ([`crate::store::CLAIM_LEASE`]) that must not run out
/// before the lane's pacing lets it go.
const MAX_WAITING: usize = 256;

/// A reply written claimed, ready to send.
pub struct HandedOff {
    pub row: OutboxRow,
    pub message: OutboundMessage,
}

impl HandedOff {
    /// `reply` to the message `answers`, written claimed as `row`, rendered as the
    /// dispatcher renders what it claims.
    pub fn reply(row: OutboxRow, lang: Lang, reply: Reply, answers: AnsweredMessage) -> HandedOff {
        let message = OutboundMessage {
            id: row.id,
            citizen_id: row.citizen_id,
            recipient: row.recipient.clone(),
            kind: row.kind,
            lang,
            rendered: Catalog::global().render(lang, &reply),
            content: reply,
            template: None,
            event: None,
            attempts: row.attempts,
            answers: Some(answers),
        };
        HandedOff { row, message }
    }
}

/// Shared by the runtime (which hands replies over) and the dispatcher (whose interactive
/// lane takes them). Cheap to clone.
#[derive(Clone)]
pub struct Handoff {
    shared: Arc<Shared>,
}

struct Shared {
    /// Channels whose interactive lane runs in this process and leads them: empty until the
    /// lane starts and again once it stops.
    open: RwLock<Vec<Channel>>,
    waiting: AtomicUsize,
    /// Rows this process's provider accepted whose record is not written yet: still
    /// `sending` in the database, they no longer hold their recipient's next reply back.
    answered: DashSet<i64>,
    queue: mpsc::UnboundedSender<HandedOff>,
    /// Wakes the bulk lane alone: a batch whose replies were all handed over may still have
    /// written pushes, alerts or events.
    bulk: Notify,
    /// Taken by the one lane that sends what is handed over.
    taken: Mutex<Option<mpsc::UnboundedReceiver<HandedOff>>>,
}

impl Default for Handoff {
    fn default() -> Self {
        Handoff::new()
    }
}

impl Handoff {
    pub fn new() -> Handoff {
        let (queue, taken) = mpsc::unbounded_channel();
        Handoff {
            shared: Arc::new(Shared {
                open: RwLock::new(Vec::new()),
                waiting: AtomicUsize::new(0),
                answered: DashSet::new(),
                queue,
                bulk: Notify::new(),
                taken: Mutex::new(Some(taken)),
            }),
        }
    }

    /// Whether a reply on `channel` may be written claimed and handed over now.
    pub fn accepts(&self, channel: Channel) -> bool {
        self.shared.waiting.load(Ordering::Relaxed) < MAX_WAITING
            && self
                .shared
                .open
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .contains(&channel)
    }

    /// Whether the provider accepted row `id` and only its record is still to be written.
    pub fn answered(&self, id: i64) -> bool {
        self.shared.answered.contains(&id)
    }

    /// The provider accepted row `id`; until [`Handoff::recorded`], its recipient's next
    /// reply need not wait for it.
    pub(super) fn accepted(&self, id: i64) {
        self.shared.answered.insert(id);
    }

    /// Row `id`'s outcome is written (or failed to be): the database says again.
    pub(super) fn recorded(&self, id: i64) {
        self.shared.answered.remove(&id);
    }

    /// Has the bulk lane look for due rows (and not the interactive one, which was handed
    /// what it needs).
    pub fn wake_bulk(&self) {
        self.shared.bulk.notify_one();
    }

    pub(super) async fn bulk_woken(&self) {
        self.shared.bulk.notified().await;
    }

    /// Hands `replies` to the lane. Returns the ids of those it can no longer take (it
    /// stopped meanwhile): the caller releases their claims.
    pub fn pass(&self, replies: Vec<HandedOff>) -> Vec<i64> {
        let mut refused = Vec::new();
        for reply in replies {
            self.shared.waiting.fetch_add(1, Ordering::Relaxed);
            if let Err(mpsc::error::SendError(reply)) = self.shared.queue.send(reply) {
                self.shared.waiting.fetch_sub(1, Ordering::Relaxed);
                refused.push(reply.row.id);
            }
        }
        refused
    }

    /// The receiving end, for the lane that sends what is handed over (once).
    pub(super) fn take_receiver(&self) -> Option<Receiver> {
        let rx = self
            .shared
            .taken
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()?;
        Some(Receiver {
            rx,
            handoff: self.clone(),
        })
    }

    /// The channels the lane sends on now.
    pub(super) fn open(&self, channels: &[Channel]) {
        let mut open = self.shared.open.write().unwrap_or_else(|e| e.into_inner());
        if *open != channels {
            *open = channels.to_vec();
        }
    }
}

/// The lane's end of a [`Handoff`].
pub(super) struct Receiver {
    rx: mpsc::UnboundedReceiver<HandedOff>,
    handoff: Handoff,
}

impl Receiver {
    /// What is waiting now, up to `max`, without waiting.
    pub(super) fn take_waiting(&mut self, max: usize) -> Vec<HandedOff> {
        let mut out = Vec::new();
        while out.len() < max {
            match self.rx.try_recv() {
                Ok(reply) => out.push(reply),
                Err(_) => break,
            }
        }
        self.handoff
            .shared
            .waiting
            .fetch_sub(out.len(), Ordering::Relaxed);
        out
    }

    /// Waits until something is handed over (never returns while the runtime lives).
    pub(super) async fn ready(&mut self) -> Option<HandedOff> {
        let reply = self.rx.recv().await;
        if reply.is_some() {
            self.handoff.shared.waiting.fetch_sub(1, Ordering::Relaxed);
        }
        reply
    }

    /// Stops taking replies; returns those handed over and not yet taken (to release).
    pub(super) fn close(&mut self) -> Vec<HandedOff> {
        self.handoff.open(&[]);
        self.rx.close();
        self.take_waiting(usize::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nothing_is_accepted_until_a_lane_leads_the_channel_nor_after_it_stops() {
        let handoff = Handoff::new();
        assert!(!handoff.accepts(Channel::Telegram));
        let mut lane = handoff.take_receiver().expect("first taker");
        assert!(handoff.take_receiver().is_none(), "one lane only");
        handoff.open(&[Channel::Telegram]);
        assert!(handoff.accepts(Channel::Telegram));
        assert!(!handoff.accepts(Channel::Whatsapp));
        assert!(lane.close().is_empty());
        assert!(!handoff.accepts(Channel::Telegram));
    }

    fn reply(id: i64) -> HandedOff {
        let row = OutboxRow {
            id,
            citizen_id: Some(1),
            channel: Channel::Telegram,
            recipient: "42".to_owned(),
            kind: crate::store::OutboxKind::Reply,
            content: String::new(),
            lang: Some(Lang::En),
            status: crate::store::OutboxStatus::Sending,
            attempts: 0,
            next_attempt_at: 0,
            provider_id: None,
            last_error: None,
            created_at: 0,
            sent_at: None,
        };
        let answers = AnsweredMessage {
            inbox_id: 1,
            last_inbound_at: Some(0),
        };
        HandedOff::reply(
            row,
            Lang::En,
            Reply::text(flows::reply::Text::new("help")),
            answers,
        )
    }

    /// A batch that looked while the lane ran and hands over after it stopped gets its rows
    /// back to release; those the lane had not taken when it stopped are returned by close.
    #[test]
    fn replies_handed_over_around_a_stop_are_given_back() {
        let handoff = Handoff::new();
        let mut lane = handoff.take_receiver().unwrap();
        handoff.open(&[Channel::Telegram]);
        assert!(handoff.pass(vec![reply(1), reply(2)]).is_empty());
        assert_eq!(lane.take_waiting(1).len(), 1);
        let left: Vec<i64> = lane.close().iter().map(|h| h.row.id).collect();
        assert_eq!(left, [2]);
        assert_eq!(handoff.pass(vec![reply(3)]), [3]);
    }
}
