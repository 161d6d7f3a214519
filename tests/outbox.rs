//! The outbox dispatcher against a real SQLite file and a scripted channel sender.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{FakeSender, Harness};
use flows::Lang;
use flows::catalog::Catalog;
use flows::delivery::SendOutcome;
use flows::message::Channel;
use flows::reply::{Reply, Text};
use seva::channels::whatsapp::sender::WAIT_FOR_WINDOW;
use seva::channels::whatsapp::{WINDOW_SECS, WhatsappSender};
use seva::outbox::{ChannelSender, Dispatcher, OutboundMessage, RetryPolicy};
use seva::store::{
    Claim, NewOutbox, OutboxKind, OutboxLane, OutboxRow, OutboxStatus, SendOutcomeRow, SendRecord,
    Store,
};
use sqlx::AnyPool;
use webhook::testing::FakeGraph;
use webhook::{GraphClient, Secret};

fn reply(to: &str, id: &str) -> NewOutbox {
    NewOutbox {
        citizen_id: None,
        channel: Channel::Telegram,
        recipient: to.to_owned(),
        kind: OutboxKind::Reply,
        content: serde_json::to_string(&Reply::text(Text::new(id))).unwrap(),
        lang: Some(Lang::Hi),
    }
}

async fn row(h: &Harness, id: i64) -> OutboxRow {
    h.store.outbox_row(id).await.unwrap().unwrap()
}

fn dispatcher(h: &Harness, sender: &Arc<FakeSender>) -> Dispatcher {
    let sender: Arc<dyn ChannelSender> = sender.clone();
    Dispatcher::new(h.store.clone(), vec![sender], h.clock()).with_policy(RetryPolicy {
        base: Duration::from_secs(2),
        cap: Duration::from_secs(10),
        max_attempts: 4,
        jitter: false,
    })
}

#[tokio::test]
async fn one_recipients_messages_leave_in_order_even_across_retries() {
    for h in common::backends().await {
        let fake = FakeSender::new(Channel::Telegram);
        let d = dispatcher(&h, &fake);
        let a1 = h
            .store
            .enqueue(&reply("A", "menu-prompt"), h.time())
            .await
            .unwrap();
        let a2 = h
            .store
            .enqueue(&reply("A", "help"), h.time())
            .await
            .unwrap();
        let b1 = h
            .store
            .enqueue(&reply("B", "menu-prompt"), h.time())
            .await
            .unwrap();
        fake.script(
            "A",
            SendOutcome::Transient {
                reason: "502 bad gateway".to_owned(),
            },
        );

        assert_eq!(
            d.run_once().await.unwrap(),
            2,
            "A's first and B's first; A's second waits"
        );
        assert_eq!(fake.delivered(), [("B".to_owned(), b1)]);
        let r = row(&h, a1).await;
        assert_eq!(
            (r.status, r.attempts, r.next_attempt_at),
            (OutboxStatus::Pending, 1, h.time() + 2)
        );
        assert_eq!(r.last_error.as_deref(), Some("502 bad gateway"));

        assert_eq!(
            d.run_once().await.unwrap(),
            0,
            "A's second must not overtake the retrying first"
        );
        h.advance(2);
        d.run_once().await.unwrap();
        d.run_once().await.unwrap();
        assert_eq!(
            fake.delivered(),
            [
                ("B".to_owned(), b1),
                ("A".to_owned(), a1),
                ("A".to_owned(), a2)
            ]
        );
        let r = row(&h, a2).await;
        assert_eq!(
            (r.status, r.provider_id.as_deref()),
            (OutboxStatus::Sent, Some(format!("fake-{a2}").as_str()))
        );
    }
}

#[tokio::test]
async fn transient_failures_back_off_exponentially_then_go_dead() {
    for h in common::backends().await {
        let fake = FakeSender::new(Channel::Telegram);
        let d = dispatcher(&h, &fake);
        let id = h
            .store
            .enqueue(&reply("A", "menu-prompt"), h.time())
            .await
            .unwrap();
        for _ in 0..4 {
            fake.script(
                "A",
                SendOutcome::Transient {
                    reason: "timeout".to_owned(),
                },
            );
        }
        let mut waits = Vec::new();
        for _ in 0..3 {
            d.run_once().await.unwrap();
            let r = row(&h, id).await;
            assert_eq!(r.status, OutboxStatus::Pending);
            waits.push(r.next_attempt_at - h.time());
            h.advance(r.next_attempt_at - h.time());
        }
        assert_eq!(waits, [2, 4, 8]);
        d.run_once().await.unwrap();
        let r = row(&h, id).await;
        assert_eq!((r.status, r.attempts), (OutboxStatus::Dead, 4));
        assert_eq!(
            r.last_error.as_deref(),
            Some("gave up after 4 attempts: timeout")
        );
        assert!(fake.delivered().is_empty());
        assert_eq!(
            RetryPolicy::default().backoff(30),
            RetryPolicy::default().cap,
            "the wait is capped"
        );
    }
}

#[tokio::test]
async fn retry_after_waits_as_asked_without_counting_an_attempt() {
    for h in common::backends().await {
        let fake = FakeSender::new(Channel::Telegram);
        let d = dispatcher(&h, &fake);
        let id = h
            .store
            .enqueue(&reply("A", "menu-prompt"), h.time())
            .await
            .unwrap();
        fake.script("A", SendOutcome::RetryAfter { secs: 30 });
        d.run_once().await.unwrap();
        let r = row(&h, id).await;
        assert_eq!(
            (r.status, r.attempts, r.next_attempt_at),
            (OutboxStatus::Pending, 0, h.time() + 30)
        );
        h.advance(29);
        d.run_once().await.unwrap();
        assert!(fake.delivered().is_empty());
        h.advance(1);
        d.run_once().await.unwrap();
        assert_eq!(fake.delivered(), [("A".to_owned(), id)]);
    }
}

#[tokio::test]
async fn a_permanent_failure_is_dead_at_once_and_does_not_hold_back_the_next() {
    for h in common::backends().await {
        let fake = FakeSender::new(Channel::Telegram);
        let d = dispatcher(&h, &fake);
        let a1 = h
            .store
            .enqueue(&reply("A", "menu-prompt"), h.time())
            .await
            .unwrap();
        let a2 = h
            .store
            .enqueue(&reply("A", "help"), h.time())
            .await
            .unwrap();
        fake.script(
            "A",
            SendOutcome::Permanent {
                code: "403".to_owned(),
                reason: "bot was blocked by the user".to_owned(),
            },
        );
        d.run_once().await.unwrap();
        let r = row(&h, a1).await;
        assert_eq!(
            (r.status, r.last_error.as_deref()),
            (OutboxStatus::Dead, Some("403: bot was blocked by the user"))
        );
        d.run_once().await.unwrap();
        assert_eq!(fake.delivered(), [("A".to_owned(), a2)]);

        let dead = h.store.list_outbox(true, 10).await.unwrap();
        assert_eq!(dead.iter().map(|r| r.id).collect::<Vec<_>>(), [a1]);
    }
}

#[tokio::test]
async fn retry_revives_a_dead_message_but_never_resends_a_sent_one() {
    for h in common::backends().await {
        let fake = FakeSender::new(Channel::Telegram);
        let d = dispatcher(&h, &fake);
        let id = h
            .store
            .enqueue(&reply("A", "menu-prompt"), h.time())
            .await
            .unwrap();
        fake.script(
            "A",
            SendOutcome::Permanent {
                code: "400".to_owned(),
                reason: "chat not found".to_owned(),
            },
        );
        d.run_once().await.unwrap();
        assert_eq!(row(&h, id).await.status, OutboxStatus::Dead);

        assert_eq!(
            h.store.retry_outbox(id, h.time()).await.unwrap(),
            OutboxStatus::Dead
        );
        let r = row(&h, id).await;
        assert_eq!((r.status, r.attempts), (OutboxStatus::Pending, 0));
        d.run_once().await.unwrap();
        assert_eq!(fake.delivered(), [("A".to_owned(), id)]);

        assert_eq!(
            h.store.retry_outbox(id, h.time()).await.unwrap(),
            OutboxStatus::Sent
        );
        d.run_once().await.unwrap();
        assert_eq!(fake.delivered().len(), 1);
    }
}

#[tokio::test]
async fn rows_left_sending_by_a_crash_are_sent_after_restart() {
    for h in common::backends().await {
        let id = h
            .store
            .enqueue(&reply("A", "menu-prompt"), h.time())
            .await
            .unwrap();
        // A dispatcher claims the row and dies before recording anything.
        let claimed = h
            .store
            .claim_due(
                &Claim {
                    channels: &[Channel::Telegram],
                    recipient: None,
                    lane: None,
                    limit: 10,
                },
                h.time(),
            )
            .await
            .unwrap();
        assert_eq!(claimed.len(), 1);
        assert_eq!(row(&h, id).await.status, OutboxStatus::Sending);

        let fake = FakeSender::new(Channel::Telegram);
        let d = dispatcher(&h, &fake);
        assert_eq!(
            d.run_once().await.unwrap(),
            0,
            "a sending row is not claimed twice"
        );
        assert_eq!(d.recover().await.unwrap(), 1);
        d.run_once().await.unwrap();
        assert_eq!(fake.delivered(), [("A".to_owned(), id)]);
    }
}

#[tokio::test]
async fn messages_are_rendered_in_their_language_at_send_time() {
    for h in common::backends().await {
        let fake = FakeSender::new(Channel::Telegram);
        let d = dispatcher(&h, &fake);
        let mut en = reply("A", "menu-prompt");
        en.lang = Some(Lang::En);
        h.store
            .enqueue(&reply("B", "menu-prompt"), h.time())
            .await
            .unwrap();
        h.store.enqueue(&en, h.time()).await.unwrap();
        d.run_once().await.unwrap();

        let sent = fake.sent.lock().unwrap().clone();
        let content = Reply::text(Text::new("menu-prompt"));
        for m in &sent {
            assert_eq!(m.content, content);
            assert_eq!(m.rendered, Catalog::global().render(m.lang, &content));
        }
        let langs: Vec<_> = sent
            .iter()
            .map(|m| (m.recipient.as_str(), m.lang))
            .collect();
        assert!(
            langs.contains(&("A", Lang::En)) && langs.contains(&("B", Lang::Hi)),
            "{langs:?}"
        );
    }
}

#[tokio::test]
async fn a_row_that_is_not_a_reply_goes_dead_instead_of_looping() {
    for h in common::backends().await {
        let fake = FakeSender::new(Channel::Telegram);
        let d = dispatcher(&h, &fake);
        let mut bad = reply("A", "x");
        bad.content = "{\"not\": \"a reply\"}".to_owned();
        let id = h.store.enqueue(&bad, h.time()).await.unwrap();
        d.run_once().await.unwrap();
        assert_eq!(row(&h, id).await.status, OutboxStatus::Dead);
    }
}

#[tokio::test]
async fn only_rows_of_the_dispatchers_channels_are_claimed() {
    for h in common::backends().await {
        let fake = FakeSender::new(Channel::Telegram);
        let d = dispatcher(&h, &fake);
        let mut terminal = reply("local", "menu-prompt");
        terminal.channel = Channel::Terminal;
        let id = h.store.enqueue(&terminal, h.time()).await.unwrap();
        assert_eq!(d.run_once().await.unwrap(), 0);
        assert_eq!(row(&h, id).await.status, OutboxStatus::Pending);
    }
}

/// Both inbound paths wake the dispatcher: a turn of its own (`Runtime::handle`, which wakes
/// both lanes) and a group commit that wrote only replies (which wakes the interactive lane
/// alone). Either reply goes out at once, not at the next poll (a second after the last look).
#[tokio::test]
async fn the_running_dispatcher_sends_each_turns_reply_at_once_and_stops_on_request() {
    for h in common::backends().await {
        let rt = h.runtime();
        let fake = FakeSender::new(Channel::Terminal);
        let d = dispatcher(&h, &fake);
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let running = tokio::spawn(
            d.with_replies_wake(rt.replies_wake())
                .run(rt.wake(), stopped),
        );
        for (sent, alone) in [(1, true), (2, false)] {
            // Let both lanes make their last look and go to sleep.
            tokio::time::sleep(Duration::from_millis(150)).await;
            let written = tokio::time::Instant::now();
            let msg = common::text("asha", &format!("m{sent}"), "hello");
            if alone {
                rt.handle(&msg).await.unwrap();
            } else {
                rt.accept_and_process(&msg).await.unwrap();
            }
            while fake.delivered().len() < sent {
                assert!(
                    written.elapsed() < Duration::from_millis(700),
                    "reply {sent} waited for the poll"
                );
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
        stop.send(true).unwrap();
        tokio::time::timeout(Duration::from_secs(5), running)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(fake.delivered()[0].0, "asha");
    }
}

fn push(to: &str, id: &str) -> NewOutbox {
    NewOutbox {
        kind: OutboxKind::Push,
        ..reply(to, id)
    }
}

async fn claim(h: &Harness, lane: OutboxLane) -> Vec<OutboxRow> {
    h.store
        .claim_due(
            &Claim {
                channels: &[Channel::Telegram],
                recipient: None,
                lane: Some(lane),
                limit: 1000,
            },
            h.time(),
        )
        .await
        .unwrap()
}

async fn ids(rows: Vec<OutboxRow>) -> Vec<i64> {
    rows.iter().map(|r| r.id).collect()
}

async fn sent(h: &Harness, id: i64) {
    let record = SendRecord::Sent {
        provider_id: "x".into(),
    };
    h.store.record_send(id, &record, 1, h.time()).await.unwrap();
}

#[tokio::test]
async fn a_reply_is_claimed_apart_from_a_backlog_of_pushes_and_a_push_never_cuts_into_a_reply() {
    for h in common::backends().await {
        let t = h.time();
        for n in 0..50 {
            let p = push(&format!("P{n}"), "cmd-help");
            h.store.enqueue(&p, t).await.unwrap();
        }
        // A's push is due ahead of A's reply: it rides along in the reply's lane, first.
        let a_push = h.store.enqueue(&push("A", "cmd-help"), t).await.unwrap();
        let a_reply = h
            .store
            .enqueue(&reply("A", "menu-prompt"), t)
            .await
            .unwrap();
        // B's push comes after B's reply: it never cuts in before it.
        let b_reply = h
            .store
            .enqueue(&reply("B", "menu-prompt"), t)
            .await
            .unwrap();
        let b_push = h.store.enqueue(&push("B", "cmd-help"), t).await.unwrap();
        // C's push waits (for the WhatsApp window, say): C's reply does not wait for it.
        let c_push = h.store.enqueue(&push("C", "cmd-help"), t).await.unwrap();
        let later = SendRecord::Retry {
            next_attempt_at: t + 600,
            error: "waiting".into(),
        };
        h.store.record_send(c_push, &later, 0, t).await.unwrap();
        let c_reply = h
            .store
            .enqueue(&reply("C", "menu-prompt"), t)
            .await
            .unwrap();

        assert_eq!(
            ids(claim(&h, OutboxLane::Interactive).await).await,
            [a_push, b_reply, c_reply]
        );
        let bulk = ids(claim(&h, OutboxLane::Bulk).await).await;
        assert_eq!(bulk.len(), 50, "the backlog only: {bulk:?}");
        assert!(![a_push, b_push, c_push].iter().any(|id| bulk.contains(id)));

        sent(&h, a_push).await;
        sent(&h, b_reply).await;
        assert_eq!(
            ids(claim(&h, OutboxLane::Interactive).await).await,
            [a_reply]
        );
        assert_eq!(ids(claim(&h, OutboxLane::Bulk).await).await, [b_push]);
    }
}

#[tokio::test]
async fn retries_are_jittered_within_the_upper_half_of_the_backoff() {
    let policy = RetryPolicy::default();
    assert!(policy.jitter, "jitter is on by default");
    let full = policy.backoff(5);
    let waits: Vec<Duration> = (0..200).map(|_| policy.delay(5)).collect();
    assert!(
        waits.iter().all(|w| *w >= full / 2 && *w <= full),
        "{waits:?}"
    );
    let distinct: std::collections::HashSet<_> = waits.iter().map(|w| w.as_millis()).collect();
    assert!(
        distinct.len() > 50,
        "rows failing together must not all retry together: {distinct:?}"
    );
    let exact = RetryPolicy {
        jitter: false,
        ..policy
    };
    assert_eq!(exact.delay(5), full);
}

#[tokio::test]
async fn a_back_office_event_is_retried_past_the_attempt_limit_until_acknowledged() {
    for h in common::backends().await {
        let fake = FakeSender::new(Channel::Events);
        let sender: Arc<dyn ChannelSender> = fake.clone();
        let d =
            Dispatcher::new(h.store.clone(), vec![sender], h.clock()).with_policy(RetryPolicy {
                base: Duration::from_secs(1),
                cap: Duration::from_secs(4),
                max_attempts: 3,
                jitter: false,
            });
        let event = NewOutbox {
            channel: Channel::Events,
            recipient: "backoffice".into(),
            kind: OutboxKind::Event,
            ..reply("backoffice", "x")
        };
        let id = h.store.enqueue(&event, h.time()).await.unwrap();
        for _ in 0..8 {
            fake.script(
                "backoffice",
                SendOutcome::Transient {
                    reason: "receiver answered HTTP 503".into(),
                },
            );
        }
        for attempt in 1..=8 {
            d.run_once().await.unwrap();
            let r = row(&h, id).await;
            assert_eq!(
                (r.status, r.attempts),
                (OutboxStatus::Pending, attempt),
                "never dead before a 2xx"
            );
            assert!(r.next_attempt_at - h.time() <= 4, "the wait is capped");
            h.advance(r.next_attempt_at - h.time());
        }
        d.run_once().await.unwrap();
        assert_eq!(row(&h, id).await.status, OutboxStatus::Sent);
        assert_eq!(fake.delivered(), [("backoffice".to_owned(), id)]);
    }
}

// ---- WhatsApp: one window read per claimed batch -------------------------------------------

fn wa_reply(to: &str) -> NewOutbox {
    NewOutbox {
        channel: Channel::Whatsapp,
        ..reply(to, "menu-prompt")
    }
}

/// A WhatsApp citizen whose last message (their only one) came at `at`.
async fn wa_citizen(h: &Harness, wa_id: &str, at: i64) {
    sqlx::query(
        "insert into citizens (channel, external_id, created_at) values ('whatsapp', $1, $2)",
    )
    .bind(wa_id)
    .bind(at)
    .execute(&h.db().await)
    .await
    .unwrap();
    wa_writes(&h.db().await, wa_id, at).await;
}

/// The citizen writes at `at`: what [`Store::admit`] records of it. Returns the inbox id.
async fn wa_writes(db: &AnyPool, wa_id: &str, at: i64) -> i64 {
    sqlx::query(
        "update citizens set last_inbound_at = $1 where channel = 'whatsapp' and external_id = $2",
    )
    .bind(at)
    .bind(wa_id)
    .execute(db)
    .await
    .unwrap();
    sqlx::query_scalar(
        "insert into inbox (channel, provider_id, citizen_id, payload, received_at) \
         select 'whatsapp', $1, id, '{}', $2 from citizens where channel = 'whatsapp' and external_id = $3 \
         returning id",
    )
    .bind(format!("wamid.{:016x}", rand::random::<u64>()))
    .bind(at)
    .bind(wa_id)
    .fetch_one(db)
    .await
    .unwrap()
}

/// The WhatsApp sender over a pool of its own (returned too), without templates.
async fn wa_sender(h: &Harness, graph: &FakeGraph) -> (Arc<WhatsappSender>, Store) {
    let own = Store::connect(&h.url).await.unwrap();
    let client = GraphClient::new(graph.url(), "1555", Secret::new("token"));
    let sender = WhatsappSender::with_store(client, own.clone(), None, None).with_clock(h.clock());
    (Arc::new(sender), own)
}

/// What happens after the sender prepared for a batch and before its sends.
enum Meanwhile {
    /// The sender's own pool closes: a send that reads the database fails.
    PoolCloses(Store),
    /// Time passes (the harness clock).
    Passes(Arc<std::sync::atomic::AtomicI64>, i64),
    /// The citizen writes, at that time.
    CitizenWrites(AnyPool, String, i64),
    Nothing,
}

/// The WhatsApp sender, with [`Meanwhile`] between each preparation and the sends.
struct Between {
    sender: Arc<WhatsappSender>,
    meanwhile: Meanwhile,
}

#[async_trait::async_trait]
impl ChannelSender for Between {
    fn channel(&self) -> Channel {
        Channel::Whatsapp
    }

    async fn prepare(&self, batch: &[&OutboundMessage]) {
        self.sender.prepare(batch).await;
        match &self.meanwhile {
            Meanwhile::PoolCloses(store) => store.close().await,
            Meanwhile::Passes(now, secs) => {
                now.fetch_add(*secs, std::sync::atomic::Ordering::SeqCst);
            }
            Meanwhile::CitizenWrites(db, wa_id, at) => {
                wa_writes(db, wa_id, *at).await;
            }
            Meanwhile::Nothing => {}
        }
    }

    async fn send(&self, msg: &OutboundMessage) -> SendOutcome {
        self.sender.send(msg).await
    }
}

fn wa_dispatcher(h: &Harness, sender: Between) -> Dispatcher {
    let sender: Arc<dyn ChannelSender> = Arc::new(sender);
    Dispatcher::new(h.store.clone(), vec![sender], h.clock())
}

async fn wait_mark(h: &Harness, id: i64) -> Option<i64> {
    sqlx::query_scalar("select wa_wait_after_inbox from outbox where id = $1")
        .bind(id)
        .fetch_one(&h.db().await)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_whatsapp_batch_reads_its_window_state_once_before_its_sends() {
    for h in common::backends().await {
        let graph = FakeGraph::start().await;
        let (sender, own) = wa_sender(&h, &graph).await;
        let mut ids = Vec::new();
        for i in 0..6 {
            let wa_id = format!("91987654320{i}");
            wa_citizen(&h, &wa_id, h.time() - 60).await;
            ids.push(h.store.enqueue(&wa_reply(&wa_id), h.time()).await.unwrap());
        }
        let d = wa_dispatcher(
            &h,
            Between {
                sender,
                meanwhile: Meanwhile::PoolCloses(own),
            },
        );

        // The sender's pool closes once the batch is prepared: no send may read it again.
        assert_eq!(d.run_once().await.unwrap(), 6);
        for id in &ids {
            assert_eq!(row(&h, *id).await.status, OutboxStatus::Sent);
        }
        assert_eq!(graph.messages().len(), 6);

        // Without a prepared state (the pool is closed now), a send reads its row, and fails.
        let late = h
            .store
            .enqueue(&wa_reply("919876543200"), h.time())
            .await
            .unwrap();
        assert_eq!(d.run_once().await.unwrap(), 1);
        let r = row(&h, late).await;
        assert_eq!((r.status, r.attempts), (OutboxStatus::Pending, 1));
        assert!(
            r.last_error.as_deref().unwrap().contains("window state"),
            "{:?}",
            r.last_error
        );
        assert_eq!(graph.messages().len(), 6);
    }
}

#[tokio::test]
async fn a_window_that_closes_between_the_batchs_read_and_the_send_is_closed() {
    for h in common::backends().await {
        let graph = FakeGraph::start().await;
        let (sender, _) = wa_sender(&h, &graph).await;
        wa_citizen(&h, "919876543210", h.time() - WINDOW_SECS + 1).await;
        let id = h
            .store
            .enqueue(&wa_reply("919876543210"), h.time())
            .await
            .unwrap();
        let d = wa_dispatcher(
            &h,
            Between {
                sender,
                meanwhile: Meanwhile::Passes(h.now.clone(), 2),
            },
        );

        d.run_once().await.unwrap();
        assert!(
            graph.messages().is_empty(),
            "no free text outside the window"
        );
        let r = row(&h, id).await;
        assert_eq!(
            (r.status, r.next_attempt_at),
            (OutboxStatus::Pending, h.time() + WAIT_FOR_WINDOW as i64)
        );
        assert!(wait_mark(&h, id).await.is_some());
    }
}

#[tokio::test]
async fn a_citizen_who_writes_between_the_batchs_read_and_the_send_gets_the_reply_after_the_second_look()
 {
    for h in common::backends().await {
        let graph = FakeGraph::start().await;
        let (sender, _) = wa_sender(&h, &graph).await;
        let wa_id = "919876543211";
        wa_citizen(&h, wa_id, h.time() - 2 * 86_400).await;
        let id = h.store.enqueue(&wa_reply(wa_id), h.time()).await.unwrap();
        let d = wa_dispatcher(
            &h,
            Between {
                sender: sender.clone(),
                meanwhile: Meanwhile::CitizenWrites(h.db().await, wa_id.to_owned(), h.time()),
            },
        );

        // The batch's read saw the window closed; the send decides on it and waits.
        d.run_once().await.unwrap();
        assert!(graph.messages().is_empty());
        assert_eq!(row(&h, id).await.status, OutboxStatus::Pending);
        // The mark is the message that read saw, not the one that came after it.
        let first_message: i64 = sqlx::query_scalar("select min(id) from inbox")
            .fetch_one(&h.db().await)
            .await
            .unwrap();
        assert_eq!(wait_mark(&h, id).await, Some(first_message));

        // The sink's second look after that message makes the row due, and it goes out.
        assert_eq!(
            h.store
                .whatsapp_wake_waiting(wa_id, h.time())
                .await
                .unwrap(),
            1
        );
        let d = wa_dispatcher(
            &h,
            Between {
                sender,
                meanwhile: Meanwhile::Nothing,
            },
        );
        assert_eq!(d.run_once().await.unwrap(), 1);
        assert_eq!(row(&h, id).await.status, OutboxStatus::Sent);
        assert_eq!(graph.messages().len(), 1);
        assert_eq!(wait_mark(&h, id).await, None);
    }
}

fn wa_message(id: i64, to: &str) -> OutboundMessage {
    let content = Reply::text(Text::new("menu-prompt"));
    OutboundMessage {
        id,
        citizen_id: None,
        recipient: to.to_owned(),
        kind: OutboxKind::Reply,
        lang: Lang::Hi,
        rendered: Catalog::global().render(Lang::Hi, &content),
        content,
        template: None,
        event: None,
        attempts: 0,
        answers: None,
    }
}

#[tokio::test]
async fn a_prepared_window_state_serves_one_send_and_only_while_it_is_fresh() {
    for h in common::backends().await {
        let graph = FakeGraph::start().await;
        let (sender, _) = wa_sender(&h, &graph).await;
        let wa_id = "919876543212";
        wa_citizen(&h, wa_id, h.time() - 60).await;
        let id = h.store.enqueue(&wa_reply(wa_id), h.time()).await.unwrap();
        let msg = wa_message(id, wa_id);
        let db = h.db().await;
        let set_last_inbound = |at: Option<i64>| {
            let db = db.clone();
            async move {
                sqlx::query("update citizens set last_inbound_at = $1 where external_id = $2")
                    .bind(at)
                    .bind(wa_id)
                    .execute(&db)
                    .await
                    .unwrap();
            }
        };

        sender.prepare(&[&msg]).await;
        // From here on, a read of the row finds the window closed.
        set_last_inbound(None).await;
        let outcome = sender.send(&msg).await;
        assert!(matches!(outcome, SendOutcome::Sent { .. }), "{outcome:?}");
        let outcome = sender.send(&msg).await;
        assert!(
            matches!(outcome, SendOutcome::RetryAfter { secs } if secs == WAIT_FOR_WINDOW),
            "read again, the prepared state being used up: {outcome:?}"
        );

        // A state prepared too long before its send is read again.
        set_last_inbound(Some(h.time() - 60)).await;
        sqlx::query("update outbox set wa_wait_after_inbox = null where id = $1")
            .bind(id)
            .execute(&db)
            .await
            .unwrap();
        sender.prepare(&[&msg]).await;
        set_last_inbound(None).await;
        tokio::time::sleep(Duration::from_millis(1100)).await;
        let outcome = sender.send(&msg).await;
        assert!(
            matches!(outcome, SendOutcome::RetryAfter { .. }),
            "{outcome:?}"
        );
        assert_eq!(graph.messages().len(), 1);
    }
}

#[tokio::test]
async fn the_second_look_wakes_only_the_citizens_with_something_waiting_in_one_go() {
    for h in common::backends().await {
        let db = h.db().await;
        for wa_id in ["waiting", "unreachable", "nothing", "not-looked-at"] {
            wa_citizen(&h, wa_id, h.time() - 2 * 86_400).await;
        }
        let later = h.time() + WAIT_FOR_WINDOW as i64;
        let mut rows = Vec::new();
        for wa_id in ["waiting", "not-looked-at"] {
            let id = h.store.enqueue(&wa_reply(wa_id), h.time()).await.unwrap();
            sqlx::query(
                "update outbox set wa_wait_after_inbox = 1, next_attempt_at = $1 where id = $2",
            )
            .bind(later)
            .bind(id)
            .execute(&db)
            .await
            .unwrap();
            rows.push(id);
        }
        sqlx::query("update citizens set unreachable = 1 where external_id in ('unreachable', 'not-looked-at')")
            .execute(&db)
            .await
            .unwrap();
        // More recipients than one statement takes.
        let mut looked_at: Vec<String> = (0..1200).map(|i| format!("9100000{i:05}")).collect();
        looked_at.insert(1100, "waiting".to_owned());
        looked_at.insert(700, "unreachable".to_owned());
        looked_at.push("nothing".to_owned());

        let woken = h
            .store
            .whatsapp_wake_waiting_all(&looked_at, h.time())
            .await
            .unwrap();
        assert_eq!(woken, 1);
        assert_eq!(row(&h, rows[0]).await.next_attempt_at, h.time());
        assert_eq!(row(&h, rows[1]).await.next_attempt_at, later);
        let unreachable: Vec<String> = sqlx::query_scalar(
            "select external_id from citizens where unreachable <> 0 order by external_id",
        )
        .fetch_all(&db)
        .await
        .unwrap();
        assert_eq!(unreachable, ["not-looked-at"]);
    }
}

/// A running dispatcher with the runtime's handoff: the interactive lane sends the replies a
/// group commit wrote claimed.
fn running_with_handoff(
    h: &Harness,
    rt: &seva::runtime::Runtime,
    fake: &Arc<FakeSender>,
) -> (
    tokio::sync::watch::Sender<bool>,
    tokio::task::JoinHandle<()>,
) {
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let running = tokio::spawn(
        dispatcher(h, fake)
            .with_replies_wake(rt.replies_wake())
            .with_handoff(rt.handoff())
            .run(rt.wake(), stopped),
    );
    (stop, running)
}

async fn wait_delivered(fake: &FakeSender, n: usize) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while fake.delivered().len() < n {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{} of {n} delivered",
            fake.delivered().len()
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// A reply handed straight to the lane is sent and recorded like a claimed one; when its
/// send fails, the citizen's next reply waits behind its retry instead of overtaking it.
#[tokio::test]
async fn a_handed_over_reply_keeps_its_recipients_order_across_a_retry() {
    for h in common::backends().await {
        let rt = h.runtime();
        let fake = FakeSender::new(Channel::Terminal);
        let (stop, running) = running_with_handoff(&h, &rt, &fake);
        // Let the lane take the lead before the first message.
        tokio::time::sleep(Duration::from_millis(150)).await;

        rt.accept_and_process(&common::text("asha", "m1", "hello"))
            .await
            .unwrap();
        wait_delivered(&fake, 1).await;
        let first = fake.delivered()[0].1;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while row(&h, first).await.status != OutboxStatus::Sent {
            assert!(tokio::time::Instant::now() < deadline, "never recorded");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }

        fake.script(
            "asha",
            SendOutcome::Transient {
                reason: "502 bad gateway".to_owned(),
            },
        );
        rt.accept_and_process(&common::text("asha", "m2", "help"))
            .await
            .unwrap();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        let failed = loop {
            let retrying: Option<i64> = sqlx::query_scalar(
                "select id from outbox where status = 'pending' and attempts = 1",
            )
            .fetch_optional(&h.db().await)
            .await
            .unwrap();
            if let Some(id) = retrying {
                break id;
            }
            assert!(tokio::time::Instant::now() < deadline, "no retry recorded");
            tokio::time::sleep(Duration::from_millis(5)).await;
        };

        rt.accept_and_process(&common::text("asha", "m3", "menu"))
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(fake.delivered().len(), 1, "m3's reply overtook m2's retry");

        h.advance(3);
        wait_delivered(&fake, 3).await;
        let ids: Vec<i64> = fake.delivered().iter().map(|d| d.1).collect();
        assert_eq!(ids[1], failed, "the retry goes first");
        assert!(ids[2] > failed);
        stop.send(true).unwrap();
        tokio::time::timeout(Duration::from_secs(5), running)
            .await
            .unwrap()
            .unwrap();
    }
}

/// A reply is written claimed only when nothing of its recipient is in its way: not a
/// pending row, not a sending one whose provider has not answered yet, not an earlier reply
/// of the same commit.
#[tokio::test]
async fn a_reply_is_written_claimed_only_when_nothing_of_its_recipient_is_in_its_way() {
    for h in common::backends().await {
        let to = |text: &str| NewOutbox {
            channel: Channel::Terminal,
            ..reply("asha", text)
        };
        let pending = || async {
            let ids: Vec<i64> =
                sqlx::query_scalar("select id from outbox where status = 'pending' order by id")
                    .fetch_all(&h.db().await)
                    .await
                    .unwrap();
            ids
        };
        let mut n = 0;
        let mut commit = |rows: Vec<NewOutbox>, answered: Vec<i64>| {
            n += 1;
            let msg = common::text("asha", &format!("m{n}"), "hello");
            let store = h.store.clone();
            let now = h.time();
            async move {
                let (mut batch, _) = store.admit_batch(&[&msg], now).await.unwrap();
                for row in rows {
                    batch.enqueue_claimed(row);
                }
                batch
                    .commit(now, |id| answered.contains(&id))
                    .await
                    .unwrap()
            }
        };

        let claimed = commit(vec![to("a")], vec![]).await;
        assert_eq!(claimed.len(), 1);
        let a = claimed[0].1.id;
        assert_eq!(row(&h, a).await.status, OutboxStatus::Sending);

        assert!(
            commit(vec![to("b")], vec![]).await.is_empty(),
            "a is sending"
        );
        let b = pending().await;
        assert_eq!(b.len(), 1);
        assert!(
            commit(vec![to("c")], vec![a]).await.is_empty(),
            "b is pending"
        );
        sent(&h, b[0]).await;
        sent(&h, pending().await[0]).await;

        let claimed = commit(vec![to("d"), to("e")], vec![a]).await;
        assert_eq!(
            claimed.iter().map(|c| c.0).collect::<Vec<_>>(),
            [0],
            "a was answered; e waits behind d"
        );
        let d = claimed[0].1.id;
        assert_eq!(pending().await.len(), 1);
        assert!(pending().await[0] > d);
    }
}

/// On SQLite a send's record rides along in the next batch's transaction while one is open:
/// it is written with that batch's commit, and written all the same (by its writer) when the
/// batch that took it fails and rolls back.
#[tokio::test]
async fn a_send_record_left_with_a_batch_is_written_whether_the_batch_commits_or_fails() {
    for h in common::backends().await {
        let store = h.store.clone();
        let now = h.time();
        let to = |who: &str| NewOutbox {
            channel: Channel::Terminal,
            ..reply(who, "menu-prompt")
        };
        let msg = common::text("asha", "m1", "hello");
        let (mut batch, _) = store.admit_batch(&[&msg], now).await.unwrap();
        batch.enqueue_claimed(to("a"));
        batch.enqueue_claimed(to("b"));
        let claimed = batch.commit(now, |_| false).await.unwrap();
        let (a, b) = (claimed[0].1.id, claimed[1].1.id);
        let record = |id: i64| {
            let store = store.clone();
            let outcome = SendOutcomeRow {
                id,
                record: SendRecord::Sent {
                    provider_id: format!("p{id}"),
                },
                attempts: 1,
                at: now,
            };
            tokio::spawn(async move { store.record_sends_soon(&[outcome]).await })
        };

        let msg = common::text("asha", "m2", "hello");
        let (batch, _) = store.admit_batch(&[&msg], now).await.unwrap();
        let writer = record(a);
        // The record is left with the open batch before it commits.
        tokio::time::sleep(Duration::from_millis(5)).await;
        batch.commit(now, |_| false).await.unwrap();
        writer.await.unwrap().unwrap();
        let sent = row(&h, a).await;
        assert_eq!(sent.status, OutboxStatus::Sent);
        assert_eq!(sent.provider_id.as_deref(), Some(&*format!("p{a}")));

        let msg = common::text("asha", "m3", "hello");
        let (mut batch, _) = store.admit_batch(&[&msg], now).await.unwrap();
        let writer = record(b);
        tokio::time::sleep(Duration::from_millis(5)).await;
        // No such citizen: the conversation's insert fails after the record was written.
        batch.save_conversation(i64::MAX, "{}".to_owned());
        assert!(batch.commit(now, |_| false).await.is_err());
        writer.await.unwrap().unwrap();
        assert_eq!(row(&h, b).await.status, OutboxStatus::Sent);
        assert_eq!(
            sqlx::query_scalar::<_, i64>("select count(*) from inbox where provider_id = 'm3'")
                .fetch_one(&h.db().await)
                .await
                .unwrap(),
            0,
            "the failed batch rolled back"
        );
    }
}
