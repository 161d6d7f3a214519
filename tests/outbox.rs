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
use seva::store::{Claim, NewOutbox, OutboxKind, OutboxRow, OutboxStatus};

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
