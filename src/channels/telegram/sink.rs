//! Where the Telegram transport (polling or webhook) hands its events: [`SevaSink`].
//!
//! `accept` returns only once every event of the batch is stored, so the transport may then
//! confirm the batch (move the `getUpdates` offset, answer the webhook 200). Citizens'
//! messages are stored and processed in one commit ([`Runtime::accept_and_process_all`]):
//! a webhook's one message, or a polling batch's messages together, in `update_id` order,
//! sharing the commit with whatever else is committing (group commit). A citizen marked
//! unreachable is only stored; if the message proves they are reachable again, their turn
//! runs afterwards in a spawned task, as does the turn of a redelivered update (it may have
//! been stored just before a crash). Whatever a crash interrupts, the sweeper finishes.

use std::collections::HashSet;

use async_trait::async_trait;
use bot::TelegramEvent;
use bot::sender::TelegramSender;
use bot::transport::{SinkError, TelegramSink};
use flows::Lang;
use flows::catalog::Catalog;
use flows::delivery::SendOutcome;
use flows::message::Inbound;
use flows::reply::Text;

use crate::runtime::{Handled, Runtime};
use crate::store::telegram::{ReachabilityAt, ReachabilityChange};

/// The runtime as the Telegram transport's sink.
pub struct SevaSink {
    runtime: Runtime,
    sender: TelegramSender,
    /// Stations' alert chats (`telegram_chat_id` in the stations CSV): officers talk there,
    /// and Seva does not tell them to use a private chat.
    alert_chats: HashSet<i64>,
}

impl SevaSink {
    pub fn new(runtime: Runtime, sender: TelegramSender) -> SevaSink {
        let alert_chats = runtime
            .stations()
            .all()
            .iter()
            .filter_map(|s| s.telegram_chat_id)
            .collect();
        SevaSink {
            runtime,
            sender,
            alert_chats,
        }
    }

    /// A message from a citizen marked unreachable shows they can be reached again (they
    /// unblocked the bot and the `my_chat_member` update is late or lost). Only a message with
    /// Telegram's date counts, and only if newer than the change that marked them.
    async fn message_proves_reachable(
        &self,
        citizen_id: i64,
        inbound: &Inbound,
    ) -> Result<(), SinkError> {
        if inbound.sent_at <= 0 {
            return Ok(());
        }
        let store = self.runtime.store();
        if !store
            .citizen_unreachable(citizen_id)
            .await
            .map_err(SinkError::new)?
        {
            return Ok(());
        }
        let when = ReachabilityAt {
            at: not_after_now(inbound.sent_at, self.runtime.clock().now()),
            update_id: inbound.provider_id.parse().unwrap_or(0),
        };
        let change = store
            .telegram_set_citizen_reachable(citizen_id, true, when)
            .await
            .map_err(SinkError::new)?;
        if let ReachabilityChange::Applied { changed: true, .. } = change {
            tracing::info!(
                citizen = citizen_id,
                "telegram citizen wrote again: reachable"
            );
            // Pushes refused while they were blocked are pending again.
            self.runtime.wake().notify_one();
        }
        Ok(())
    }

    /// Stores and processes a run of messages in one commit; the citizens whose messages
    /// were only stored (marked unreachable, or already stored before) are added to `turns`.
    async fn store_and_process(
        &self,
        run: Vec<&Inbound>,
        turns: &mut Vec<i64>,
    ) -> Result<(), SinkError> {
        let results = self.runtime.accept_and_process_all(&run).await;
        for (inbound, handled) in run.into_iter().zip(results) {
            let (citizen_id, inbox_id) = match handled.map_err(SinkError::new)? {
                Handled::Processed {
                    citizen_id,
                    inbox_id,
                } => {
                    tracing::debug!(
                        citizen = citizen_id,
                        inbox = inbox_id,
                        "telegram message stored and processed"
                    );
                    continue;
                }
                Handled::Stored {
                    citizen_id,
                    inbox_id,
                } => (citizen_id, Some(inbox_id)),
                Handled::Duplicate { citizen_id } => (citizen_id, None),
            };
            match inbox_id {
                Some(inbox_id) => {
                    tracing::debug!(
                        citizen = citizen_id,
                        inbox = inbox_id,
                        "telegram message stored"
                    );
                    self.message_proves_reachable(citizen_id, inbound).await?;
                }
                None => tracing::debug!(
                    citizen = citizen_id,
                    update_id = %inbound.provider_id,
                    "telegram update already stored"
                ),
            }
            // A duplicate still gets a turn: it may be a message stored just before a crash
            // and never processed (the turn is empty otherwise).
            if !turns.contains(&citizen_id) {
                turns.push(citizen_id);
            }
        }
        Ok(())
    }

    /// Tells each group chat, once, that Seva works in private chats. Best effort and off the
    /// transport's path: a failed claim or send is logged, and the next message may try again.
    fn tell_groups(&self, chats: Vec<i64>) {
        if chats.is_empty() {
            return;
        }
        let store = self.runtime.store().clone();
        let now = self.runtime.clock().now();
        let sender = self.sender.clone();
        tokio::spawn(async move {
            for chat_id in chats {
                match store.telegram_group_claim_notice(chat_id, now).await {
                    Ok(true) => {}
                    Ok(false) => continue,
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot record a telegram group chat");
                        continue;
                    }
                }
                match sender.send_text(chat_id, &group_notice()).await {
                    SendOutcome::Sent { .. } => {
                        tracing::info!("telegram group chat told that Seva works in private chats");
                    }
                    outcome => {
                        tracing::warn!(
                            ?outcome,
                            "telegram group chat could not be told to use a private chat"
                        );
                        if let Err(e) = store.telegram_group_untold(chat_id).await {
                            tracing::warn!(error = %e, "cannot release a telegram group notice");
                        }
                    }
                }
            }
        });
    }
}

/// The one polite line for a group chat, in both languages (a group has no one language).
pub fn group_notice() -> String {
    let catalog = Catalog::global();
    let text = Text::new("group-chat-only-private");
    format!(
        "{}\n{}",
        catalog.text(Lang::Hi, &text),
        catalog.text(Lang::En, &text)
    )
}

#[async_trait]
impl TelegramSink for SevaSink {
    async fn accept(&self, events: Vec<TelegramEvent>) -> Result<(), SinkError> {
        let now = self.runtime.clock().now();
        let store = self.runtime.store();
        let mut turns: Vec<i64> = Vec::new();
        let mut groups: Vec<i64> = Vec::new();
        // Each run of messages (a polling batch is mostly one run; a webhook brings one
        // message) is stored and processed in one commit, shared with whatever else is
        // committing (group commit); the other events keep their places between runs.
        let mut run: Vec<&Inbound> = Vec::new();
        for event in &events {
            if let TelegramEvent::Message(inbound, _) = event {
                run.push(inbound);
                continue;
            }
            self.store_and_process(std::mem::take(&mut run), &mut turns)
                .await?;
            match event {
                TelegramEvent::Message(..) => {}
                TelegramEvent::Reachability {
                    update_id,
                    sender,
                    reachable,
                    at,
                } => {
                    let when = ReachabilityAt {
                        at: not_after_now(*at, now),
                        update_id: i64::from(*update_id),
                    };
                    let change = store
                        .telegram_set_reachable(sender, *reachable, when, now)
                        .await
                        .map_err(SinkError::new)?;
                    match change {
                        ReachabilityChange::Applied {
                            citizen_id,
                            changed,
                        } => {
                            tracing::info!(
                                citizen = citizen_id,
                                reachable = *reachable,
                                changed,
                                "telegram citizen blocked or unblocked the bot"
                            );
                            if changed && *reachable {
                                self.runtime.wake().notify_one();
                            }
                        }
                        ReachabilityChange::Stale { citizen_id } => tracing::debug!(
                            citizen = citizen_id,
                            update_id,
                            "older telegram membership update ignored"
                        ),
                    }
                }
                TelegramEvent::GroupChat { chat_id, .. } => {
                    if self.alert_chats.contains(chat_id) {
                        tracing::debug!(update_id = event.update_id(), "station alert chat update");
                    } else if !groups.contains(chat_id) {
                        groups.push(*chat_id);
                    }
                }
                TelegramEvent::Ignored {
                    update_id, reason, ..
                } => tracing::debug!(update_id, %reason, "telegram update ignored"),
            }
        }
        self.store_and_process(run, &mut turns).await?;
        // Everything is stored: the transport may confirm. What is left: the turns of
        // citizens whose messages were only stored.
        for citizen_id in turns {
            let runtime = self.runtime.clone();
            // Tracked: shutdown lets the turn finish.
            self.runtime.spawn_tracked(async move {
                if let Err(e) = runtime.process(citizen_id).await {
                    tracing::warn!(citizen = citizen_id, error = %e, "turn failed; the sweeper will retry it");
                }
            });
        }
        self.tell_groups(groups);
        Ok(())
    }
}

/// A Telegram date as the time a reachability change happened, never later than now: a date in
/// the future (a skewed or forged clock) would otherwise outrank every genuine change after it,
/// and a citizen who then blocks the bot would still be sent to.
fn not_after_now(date: i64, now: i64) -> i64 {
    date.min(now)
}
