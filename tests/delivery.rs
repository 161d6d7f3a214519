//! Outbox delivery under load, through the real server (`seva::run`) against the fake Bot API:
//! a burst of status pushes keeps to the configured provider rate while a citizen's reply
//! overtakes it, 429s are waited out without losing or repeating a message, and a restart in
//! the middle of a burst neither loses nor repeats a push. Both SQLite and PostgreSQL.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use bot::testing::{FakeBotApi, FakeError};

mod common;

use common::telegram::*;

/// Chats that receive the burst (not citizens of the test's own conversations).
fn burst_chats(n: i64) -> Vec<(Option<i64>, i64)> {
    (0..n).map(|i| (None, 9_000_000 + i)).collect()
}

/// When each burst chat got its message(s), from the fake's receive log.
fn burst_arrivals(api: &FakeBotApi) -> HashMap<i64, Vec<Instant>> {
    let mut by_chat: HashMap<i64, Vec<Instant>> = HashMap::new();
    for call in api.call_log() {
        if call.method != "sendMessage" {
            continue;
        }
        if let Some(chat) = call.params["chat_id"].as_i64().filter(|c| *c >= 9_000_000) {
            by_chat.entry(chat).or_default().push(call.at);
        }
    }
    by_chat
}

async fn wait_for_arrivals(api: &FakeBotApi, n: usize, within: Duration) {
    let deadline = tokio::time::Instant::now() + within;
    while burst_arrivals(api).len() < n {
        assert!(
            tokio::time::Instant::now() < deadline,
            "only {} of {n} pushes arrived",
            burst_arrivals(api).len()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits until the server polls (its migrations are applied by then).
async fn polling(api: &FakeBotApi) {
    api.wait_for_calls("getUpdates", 1, WAIT).await;
}

/// The most sends the fake saw in any one-second window.
fn busiest_second(mut times: Vec<Instant>) -> usize {
    times.sort();
    let mut most = 0;
    let mut start = 0;
    for end in 0..times.len() {
        while times[end].duration_since(times[start]) >= Duration::from_secs(1) {
            start += 1;
        }
        most = most.max(end - start + 1);
    }
    most
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_1000_pushes_keeps_the_configured_rate_and_a_reply_still_arrives_within_a_second()
 {
    const RATE: usize = 200;
    const PUSHES: i64 = 1000;
    for db in common::TestDb::all().await {
        let env = Env::new(db);
        let api = FakeBotApi::start(TOKEN).await;
        let server = Server::start(&env, &api, &[("SEVA_TELEGRAM_MPS", RATE.to_string())]).await;
        polling(&api).await;
        let ids = enqueue_pushes(&env, &burst_chats(PUSHES)).await;
        assert_eq!(ids.len(), PUSHES as usize);

        // In the middle of the burst, a citizen writes and waits for the answer.
        wait_for_arrivals(&api, 200, WAIT).await;
        let ravi = Citizen {
            api: &api,
            user: 4242,
        };
        let asked = Instant::now();
        ravi.say("/start", "Choose your language").await;
        let answered = api
            .call_log()
            .into_iter()
            .find(|c| c.method == "sendMessage" && c.params["chat_id"] == 4242)
            .unwrap()
            .at;
        let waited = answered.duration_since(asked);
        let behind = PUSHES as usize - burst_arrivals(&api).len();
        assert!(
            behind > 100,
            "the reply must be measured during the burst ({behind} pushes left)"
        );
        assert!(
            waited < Duration::from_secs(1),
            "the reply waited {waited:?} behind the burst"
        );

        wait_for_arrivals(&api, PUSHES as usize, Duration::from_secs(60)).await;
        let arrivals = burst_arrivals(&api);
        assert!(
            arrivals.values().all(|a| a.len() == 1),
            "every push exactly once"
        );
        let mut times: Vec<Instant> = arrivals.into_values().flatten().collect();
        // The citizen's reply shares the provider's rate with the burst.
        times.push(answered);
        times.sort();
        let busiest = busiest_second(times.clone());
        // Slots are exact; arrival times carry a few milliseconds of scheduling noise.
        assert!(
            busiest <= RATE + RATE / 50 + 1,
            "{busiest} sends in one second at a configured {RATE}/s"
        );
        let span = times.last().unwrap().duration_since(times[0]).as_secs_f64();
        let mean = (times.len() - 1) as f64 / span;
        assert!(
            mean <= RATE as f64 * 1.01,
            "{mean:.1}/s on average at a configured {RATE}/s"
        );
        server.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_in_the_middle_of_a_burst_loses_and_repeats_nothing() {
    const PUSHES: i64 = 400;
    for db in common::TestDb::all().await {
        let env = Env::new(db);
        let api = FakeBotApi::start(TOKEN).await;
        let rate = [("SEVA_TELEGRAM_MPS", "100".to_owned())];
        let first = Server::start(&env, &api, &rate).await;
        polling(&api).await;
        let ids = enqueue_pushes(&env, &burst_chats(PUSHES)).await;
        wait_for_arrivals(&api, 80, WAIT).await;
        first.stop().await;
        let delivered = burst_arrivals(&api).len();
        assert!(
            delivered < PUSHES as usize - 100,
            "the stop came in the middle of the burst ({delivered} delivered)"
        );

        let second = Server::start(&env, &api, &rate).await;
        wait_for_arrivals(&api, PUSHES as usize, Duration::from_secs(60)).await;
        let db = env.db().await;
        for id in &ids {
            assert_eq!(outbox_status(&db, *id).await.0, "sent", "row {id}");
        }
        // A moment more: nothing is sent a second time.
        tokio::time::sleep(Duration::from_millis(500)).await;
        let arrivals = burst_arrivals(&api);
        assert_eq!(arrivals.len(), PUSHES as usize);
        let repeated: Vec<_> = arrivals.iter().filter(|(_, a)| a.len() > 1).collect();
        assert!(repeated.is_empty(), "sent twice: {repeated:?}");
        second.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn injected_429s_are_waited_out_and_every_push_arrives_once() {
    const PUSHES: i64 = 60;
    for db in common::TestDb::all().await {
        let env = Env::new(db);
        let api = FakeBotApi::start(TOKEN).await;
        for _ in 0..12 {
            api.fail_next("sendMessage", FakeError::RetryAfter(1));
        }
        let server = Server::start(&env, &api, &[]).await;
        polling(&api).await;
        let ids = enqueue_pushes(&env, &burst_chats(PUSHES)).await;
        let db = env.db().await;
        for id in &ids {
            wait_for(&format!("row {id} sent"), || async {
                outbox_status(&db, *id).await.0 == "sent"
            })
            .await;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        for (_, chat) in burst_chats(PUSHES) {
            assert_eq!(
                api.sent_messages(chat).len(),
                1,
                "chat {chat}: accepted once"
            );
        }
        let refused = burst_arrivals(&api).values().map(Vec::len).sum::<usize>() - PUSHES as usize;
        assert_eq!(refused, 12, "each injected 429 was one refused attempt");
        server.stop().await;
    }
}
