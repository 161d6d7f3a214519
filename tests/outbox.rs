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
use seva::outbox::{ChannelSender, Dispatcher, RetryPolicy};
use seva::store::{Claim, NewOutbox, OutboxKind, OutboxLane, OutboxRow, OutboxStatus, SendRecord};

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

#[tokio::test]
async fn the_running_dispatcher_delivers_what_a_turn_wrote_and_stops_on_request() {
    for h in common::backends().await {
        let rt = h.runtime();
        let fake = FakeSender::new(Channel::Terminal);
        let d = dispatcher(&h, &fake);
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let running = tokio::spawn(d.run(rt.wake(), stopped));

        rt.handle(&common::text("asha", "m1", "hello"))
            .await
            .unwrap();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while fake.delivered().is_empty() {
            assert!(tokio::time::Instant::now() < deadline, "not delivered");
            tokio::time::sleep(Duration::from_millis(20)).await;
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
