//! Group commit for [`Runtime::accept_and_process`]: the webhook messages that arrive while
//! one batch commits wait for the next, and a batch stores, answers and marks processed all
//! its messages, of every citizen in it, in one transaction ([`crate::store::Batch`]).
//!
//! Each caller still returns only after its message is committed, so a webhook's 200 (or the
//! Telegram offset) follows the commit as before. A batch that fails as a whole (a message the
//! engine cannot handle, a database error) is rolled back and its messages are handled one by
//! one on the single-message path, which isolates the failing message.

use std::sync::{Arc, Weak};

use flows::Lang;
use flows::message::Inbound;
use flows::reply::Reply;
use tokio::sync::{Mutex, mpsc, oneshot};

use super::{Handled, Inner, Runtime, RuntimeError, reply_row};
use crate::limits::HELD_BACK_NOTE;
use crate::metrics;
use crate::outbox::AnsweredMessage;
use crate::outbox::handoff::HandedOff;
use crate::store::{Backend, Batch, BatchAdmission, InboxRow, Turn};

/// Messages per batch (the last job taken may carry it past): enough that a batch's fixed
/// round trips cost little per message, few enough that one batch's work does not hold the
/// first message's answer for long.
const MAX_BATCH: usize = 128;

/// Batches committing at once. SQLite has one writer whatever this says; PostgreSQL overlaps
/// one batch's round trips with another's.
fn committers(backend: Backend) -> usize {
    match backend {
        Backend::Sqlite => 1,
        Backend::Postgres => 4,
    }
}

/// Messages waiting for their batch: one from a webhook; a polling batch's run of messages
/// together, so that one transaction admits and processes them all and a citizen's messages
/// in it cannot be split across batches that commit in another order (PostgreSQL's
/// committers overlap).
pub(super) struct Job {
    msgs: Vec<Inbound>,
    answer: oneshot::Sender<Vec<Result<Handled, RuntimeError>>>,
}

/// Where messages queue for their batch. The committers hold the runtime weakly: when the
/// last [`Runtime`] handle goes, the queue closes and they stop.
pub(super) type Queue = mpsc::UnboundedSender<Job>;

pub(super) fn start(inner: &Arc<Inner>) -> Queue {
    let (queue, jobs) = mpsc::unbounded_channel::<Job>();
    let jobs = Arc::new(Mutex::new(jobs));
    for _ in 0..committers(inner.store.backend()) {
        let jobs = jobs.clone();
        let inner: Weak<Inner> = Arc::downgrade(inner);
        tokio::spawn(async move {
            loop {
                let batch = {
                    let mut jobs = jobs.lock().await;
                    let Some(first) = jobs.recv().await else {
                        return;
                    };
                    let mut batch = vec![first];
                    gather_weighed(&mut jobs, &mut batch, MAX_BATCH, |j| j.msgs.len()).await;
                    batch
                };
                let Some(inner) = inner.upgrade() else {
                    return;
                };
                Runtime { inner }.commit_batch(batch).await;
            }
        });
    }
    queue
}

/// Takes what is queued into `batch` (up to `max` items), yielding to the scheduler while
/// that brings more: requests already read from their sockets reach the queue first, so a
/// busy moment makes one batch instead of many small ones, and an idle one waits for nothing.
pub(crate) async fn gather<T>(
    queue: &mut mpsc::UnboundedReceiver<T>,
    batch: &mut Vec<T>,
    max: usize,
) {
    gather_weighed(queue, batch, max, |_| 1).await;
}

/// [`gather`] where an item counts `weight(item)` towards `max` (a job of several messages
/// counts each): the batch takes no more once it holds `max`; the last item taken may carry
/// it past.
async fn gather_weighed<T>(
    queue: &mut mpsc::UnboundedReceiver<T>,
    batch: &mut Vec<T>,
    max: usize,
    weight: impl Fn(&T) -> usize,
) {
    let mut total: usize = batch.iter().map(&weight).sum();
    for _ in 0..GATHER_YIELDS {
        while total < max {
            match queue.try_recv() {
                Ok(item) => {
                    total += weight(&item);
                    batch.push(item);
                }
                Err(_) => break,
            }
        }
        if total >= max {
            return;
        }
        let before = batch.len();
        tokio::task::yield_now().await;
        if queue.is_empty() && batch.len() == before {
            return;
        }
    }
}

/// Yields per gather at most, so a steady trickle cannot hold a batch open.
const GATHER_YIELDS: usize = 4;

impl Runtime {
    /// [`Runtime::accept_and_process`] for several messages at once (a Telegram polling
    /// batch, a WhatsApp notification): queued for the next batch, all in the same one, so
    /// each citizen's keep their order; waits for its commit. One result per message, in
    /// their order.
    pub async fn accept_and_process_all(
        &self,
        msgs: &[&Inbound],
    ) -> Vec<Result<Handled, RuntimeError>> {
        if msgs.is_empty() {
            return Vec::new();
        }
        let queue = self.inner.group_commit.get_or_init(|| start(&self.inner));
        let (answer, answered) = oneshot::channel();
        let job = Job {
            msgs: msgs.iter().map(|m| (*m).clone()).collect(),
            answer,
        };
        if queue.send(job).is_err() {
            return self.accept_each_alone(msgs).await;
        }
        match answered.await {
            Ok(results) => results,
            // The committer stopped before answering (the runtime is going away): whatever it
            // did was rolled back or is found as a duplicate.
            Err(_) => self.accept_each_alone(msgs).await,
        }
    }

    async fn accept_each_alone(&self, msgs: &[&Inbound]) -> Vec<Result<Handled, RuntimeError>> {
        let mut results = Vec::with_capacity(msgs.len());
        for msg in msgs {
            results.push(self.accept_and_process_alone(msg).await);
        }
        results
    }

    async fn commit_batch(&self, jobs: Vec<Job>) {
        let msgs: Vec<&Inbound> = jobs.iter().flat_map(|j| &j.msgs).collect();
        match self.process_batch(&msgs).await {
            Ok(handled) => {
                let mut handled = handled.into_iter();
                for job in jobs {
                    let results = handled.by_ref().take(job.msgs.len()).map(Ok).collect();
                    // A caller that stopped waiting has nobody to tell.
                    let _ = job.answer.send(results);
                }
            }
            Err(e) => {
                tracing::warn!(messages = msgs.len(), error = %e, "group commit failed; handling its messages one by one");
                for job in jobs {
                    let msgs: Vec<&Inbound> = job.msgs.iter().collect();
                    let results = self.accept_each_alone(&msgs).await;
                    let _ = job.answer.send(results);
                }
            }
        }
    }

    /// One transaction for the batch: admit, run each citizen's turn, write, commit.
    async fn process_batch(&self, msgs: &[&Inbound]) -> Result<Vec<Handled>, RuntimeError> {
        let now = self.inner.clock.now();
        let (mut batch, admissions) = self.inner.store.admit_batch(msgs, now).await?;
        // Citizens marked unreachable are only stored: the caller decides first whether
        // this message proves otherwise (as on the single-message path).
        let mut turns: Vec<usize> = Vec::new();
        for a in &admissions {
            if let BatchAdmission::New { citizen, .. } = *a
                && !batch.citizens[citizen].unreachable
                && !turns.contains(&citizen)
            {
                turns.push(citizen);
            }
        }
        let ids: Vec<i64> = turns.iter().map(|&c| batch.citizens[c].id).collect();
        let held = msgs
            .iter()
            .zip(&admissions)
            .filter_map(|(m, a)| match *a {
                BatchAdmission::New { citizen, inbox_id } => {
                    Some((batch.citizens[citizen].id, inbox_id, (*m).clone()))
                }
                BatchAdmission::Duplicate { .. } => None,
            })
            .collect();
        let mut waiting = batch.waiting_and_conversations(&ids, held).await?;
        let mut done = BatchDone::default();
        for &c in &turns {
            let Some((rows, stored)) = waiting.remove(&batch.citizens[c].id) else {
                continue;
            };
            let mut turn = batch.turn(c)?;
            let result = self
                .batch_turn(&mut turn, &mut batch, rows, stored, now, &mut done)
                .await;
            batch.end_turn(turn);
            result?;
        }
        let woke = batch.woke;
        let bulk = batch.wrote_beyond_replies();
        let citizens: Vec<(i64, bool)> = batch
            .citizens
            .iter()
            .map(|c| (c.id, c.unreachable))
            .collect();
        let handoff = &self.inner.handoff;
        let claimed = batch.commit(now, |id| handoff.answered(id)).await?;
        let handed_over = claimed.len();
        if handed_over > 0 {
            let replies = claimed
                .into_iter()
                .filter_map(|(i, row)| {
                    let (lang, reply, answers) = done.claimable.get_mut(i)?.take()?;
                    Some(HandedOff::reply(row, lang, reply, answers))
                })
                .collect();
            let refused = handoff.pass(replies);
            if !refused.is_empty() {
                // The lane stopped since the batch looked: the rows go back to pending for
                // whichever dispatcher runs next.
                if let Err(e) = self.inner.store.release_claims(&refused).await {
                    tracing::warn!(rows = refused.len(), error = %e, "handed-over replies not released; their lease runs out");
                }
                self.inner.replies_wake.notify_one();
            }
        }

        let handled: Vec<Handled> = admissions
            .iter()
            .map(|a| match *a {
                BatchAdmission::New { citizen, inbox_id } => {
                    let (citizen_id, unreachable) = citizens[citizen];
                    if unreachable {
                        Handled::Stored {
                            citizen_id,
                            inbox_id,
                        }
                    } else {
                        Handled::Processed {
                            citizen_id,
                            inbox_id,
                        }
                    }
                }
                BatchAdmission::Duplicate { citizen_id } => Handled::Duplicate { citizen_id },
            })
            .collect();
        for (msg, h) in msgs.iter().zip(&handled) {
            match h {
                Handled::Duplicate { .. } => metrics::duplicate(msg.channel),
                _ => metrics::inbound(msg.channel, &msg.body),
            }
        }
        if woke > 0 {
            tracing::info!(
                rows = woke,
                "whatsapp messages waiting for the window are due"
            );
        }
        done.journeys.into_iter().for_each(metrics::dialogue_step);
        if done.messages > 0 {
            tracing::info!(
                citizens = turns.len(),
                messages = done.messages,
                replies = done.replies,
                "turns processed"
            );
        }
        if bulk && handed_over > 0 && done.replies == handed_over {
            handoff.wake_bulk();
        } else if bulk {
            self.inner.wake.notify_one();
        } else if done.replies > handed_over {
            self.inner.replies_wake.notify_one();
        }
        Ok(handled)
    }

    /// One citizen's turn in a batch: like [`Runtime::run_turn`] without per-message
    /// isolation (a failing message fails the batch, whose messages are then handled alone),
    /// with its replies, processed marks and conversation handed to the batch to write.
    async fn batch_turn(
        &self,
        turn: &mut Turn,
        batch: &mut Batch,
        rows: Vec<InboxRow>,
        stored: Option<String>,
        now: i64,
        done: &mut BatchDone,
    ) -> Result<(), RuntimeError> {
        let citizen_id = turn.citizen().id;
        let (mut state, mut reset) = self
            .inner
            .conversations
            .restore(citizen_id, stored.as_deref());
        for row in rows {
            done.messages += 1;
            if let Some(held) = self.inner.limits.message(citizen_id, row.received_at) {
                if let Some(reply) = held.reply() {
                    let lang = turn.citizen().lang.unwrap_or(Lang::Hi);
                    self.batch_reply(turn, batch, row.id, lang, reply, done)?;
                }
                batch.mark_processed(row.id, Some(HELD_BACK_NOTE));
                continue;
            }
            let (next, replies) = self
                .message(turn, row.payload, state.clone(), reset, now)
                .await
                .map_err(|e| {
                    tracing::debug!(citizen = citizen_id, inbox = row.id, error = %e, "message failure detail");
                    RuntimeError::Message(e.kind())
                })?;
            done.journeys.push(metrics::journey(&state, &next));
            for (lang, reply) in replies {
                self.batch_reply(turn, batch, row.id, lang, reply, done)?;
            }
            batch.mark_processed(row.id, None);
            state = next;
            reset = false;
        }
        let json = state.to_json();
        // Kept before the commit: if it fails, the row keeps its old text and this entry
        // matches nothing.
        self.inner.conversations.saved(citizen_id, &json, state);
        batch.save_conversation(citizen_id, json);
        Ok(())
    }

    fn batch_reply(
        &self,
        turn: &Turn,
        batch: &mut Batch,
        inbox_id: i64,
        lang: Lang,
        reply: Reply,
        done: &mut BatchDone,
    ) -> Result<(), RuntimeError> {
        let row = reply_row(turn.citizen(), lang, &reply)?;
        let answers = AnsweredMessage {
            inbox_id,
            last_inbound_at: turn.citizen().last_inbound_at,
        };
        // Whatever holds the reply back (an earlier row of its recipient) is checked at commit.
        if self.inner.handoff.accepts(row.channel) {
            batch.enqueue_claimed(row);
            done.claimable.push(Some((lang, reply, answers)));
        } else {
            batch.enqueue(row);
            done.claimable.push(None);
        }
        done.replies += 1;
        Ok(())
    }
}

/// What a batch's turns did, counted once it commits.
#[derive(Default)]
struct BatchDone {
    messages: usize,
    replies: usize,
    journeys: Vec<&'static str>,
    /// Per reply enqueued, in order: what to hand over if it is written claimed.
    claimable: Vec<Option<(Lang, Reply, AnsweredMessage)>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A polling batch's job counts as its messages: a batch stops taking jobs once it holds
    /// `MAX_BATCH` messages, not `MAX_BATCH` jobs.
    #[tokio::test]
    async fn a_batch_counts_messages_not_jobs() {
        let (queue, mut jobs) = mpsc::unbounded_channel::<Vec<u8>>();
        for size in [100, 20, 30, 1] {
            queue.send(vec![0; size]).unwrap();
        }
        let mut batch = vec![jobs.recv().await.unwrap()];
        gather_weighed(&mut jobs, &mut batch, 128, Vec::len).await;
        let sizes: Vec<usize> = batch.iter().map(Vec::len).collect();
        assert_eq!(
            sizes,
            [100, 20, 30],
            "the last job taken carries it past 128"
        );
        let mut next = vec![jobs.recv().await.unwrap()];
        gather_weighed(&mut jobs, &mut next, 128, Vec::len).await;
        assert_eq!(next, [vec![0]]);
        // Counted one each, the same queue would have gone into one batch.
        for size in [100, 20, 30, 1] {
            queue.send(vec![0; size]).unwrap();
        }
        let mut all = Vec::new();
        gather(&mut jobs, &mut all, 128).await;
        assert_eq!(all.len(), 4);
    }
}
