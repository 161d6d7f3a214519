//! The adapter against the in-process fake Bot API: polling stores before it confirms, the
//! webhook route, sending and its failure classes, callbacks and long texts. Loopback only.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use bot::testing::{FakeBotApi, FakeError};
use bot::transport::{PollingConfig, SinkError, TelegramSink, run_polling, webhook_router};
use bot::{TelegramEvent, TelegramSender, telegram_bot};
use flows::catalog::{Rendered, RenderedChoice};
use flows::delivery::SendOutcome;
use flows::message::Body;
use serde_json::{Value, json};
use tokio::sync::{Notify, oneshot};
use tokio::task::JoinHandle;

const TOKEN: &str = "4242:test-token";
const WAIT: Duration = Duration::from_secs(10);

/// Records what it stores, with the `getUpdates` offsets seen so far at each `accept`, and
/// fails the first `fail_first` batches.
struct RecordingSink {
    api: Arc<FakeBotApi>,
    fail_first: AtomicUsize,
    attempts: AtomicUsize,
    stored: Mutex<Vec<TelegramEvent>>,
    offsets_at_accept: Mutex<Vec<Vec<Option<i64>>>>,
    changed: Notify,
}

impl RecordingSink {
    fn new(api: Arc<FakeBotApi>, fail_first: usize) -> Arc<Self> {
        Arc::new(RecordingSink {
            api,
            fail_first: AtomicUsize::new(fail_first),
            attempts: AtomicUsize::new(0),
            stored: Mutex::new(Vec::new()),
            offsets_at_accept: Mutex::new(Vec::new()),
            changed: Notify::new(),
        })
    }

    fn stored(&self) -> Vec<TelegramEvent> {
        self.stored.lock().unwrap().clone()
    }

    async fn wait_for_stored(&self, n: usize) -> Vec<TelegramEvent> {
        tokio::time::timeout(WAIT, async {
            loop {
                let notified = self.changed.notified();
                tokio::pin!(notified);
                notified.as_mut().enable();
                let stored = self.stored();
                if stored.len() >= n {
                    return stored;
                }
                notified.await;
            }
        })
        .await
        .unwrap_or_else(|_| panic!("sink did not store {n} events; has {:?}", self.stored()))
    }
}

#[async_trait]
impl TelegramSink for RecordingSink {
    async fn accept(&self, events: Vec<TelegramEvent>) -> Result<(), SinkError> {
        self.attempts.fetch_add(1, Ordering::SeqCst);
        self.offsets_at_accept
            .lock()
            .unwrap()
            .push(self.api.offsets());
        let failed = self
            .fail_first
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        if failed {
            self.changed.notify_waiters();
            return Err(SinkError::new("database is locked"));
        }
        self.stored.lock().unwrap().extend(events);
        self.changed.notify_waiters();
        Ok(())
    }
}

fn fast_polling() -> PollingConfig {
    PollingConfig {
        timeout_secs: 1,
        limit: 100,
        initial_backoff: Duration::from_millis(50),
        max_backoff: Duration::from_millis(500),
        conflict_backoff: Duration::from_millis(400),
        delete_webhook_first: true,
    }
}

async fn start() -> (Arc<FakeBotApi>, TelegramSender) {
    let api = Arc::new(FakeBotApi::start(TOKEN).await);
    let sender = TelegramSender::new(api.bot());
    (api, sender)
}

fn poll(
    sender: &TelegramSender,
    sink: Arc<RecordingSink>,
) -> (oneshot::Sender<()>, JoinHandle<()>) {
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(run_polling(sender.clone(), sink, fast_polling(), async {
        let _ = stopped.await;
    }));
    (stop, task)
}

async fn stop(stop: oneshot::Sender<()>, task: JoinHandle<()>) {
    let _ = stop.send(());
    tokio::time::timeout(WAIT, task)
        .await
        .expect("polling stops on shutdown")
        .unwrap();
}

fn texts(events: &[TelegramEvent]) -> Vec<String> {
    events
        .iter()
        .filter_map(|e| match e {
            TelegramEvent::Message(m, _) => match &m.body {
                Body::Text { text } => Some(text.clone()),
                _ => None,
            },
            _ => None,
        })
        .collect()
}

fn menu(body: &str) -> Rendered {
    Rendered {
        body: body.into(),
        choices: vec![
            RenderedChoice {
                id: "lang:hi".into(),
                short: "हिन्दी".into(),
                full: "हिन्दी".into(),
            },
            RenderedChoice {
                id: "lang:en".into(),
                short: "English".into(),
                full: "English".into(),
            },
        ],
        hint: None,
    }
}

#[tokio::test]
async fn polling_stores_every_update_before_the_get_updates_that_confirms_it() {
    let (api, sender) = start().await;
    let first = api.push_text(111, "namaste");
    let second = api.push_membership(222, false);
    let sink = RecordingSink::new(api.clone(), 0);
    let (stop_tx, task) = poll(&sender, sink.clone());

    let stored = sink.wait_for_stored(2).await;
    assert_eq!(texts(&stored), vec!["namaste"]);
    assert!(matches!(
        &stored[1],
        TelegramEvent::Reachability { sender, reachable: false, .. } if sender == "222"
    ));
    // When the batch was handed over, only the first (offset-less) getUpdates had been made.
    assert_eq!(sink.offsets_at_accept.lock().unwrap()[0], vec![None]);
    api.wait_for_calls("getUpdates", 2, WAIT).await;
    assert_eq!(api.offsets()[..2], [None, Some(i64::from(second) + 1)]);

    let third = api.push_text(111, "phir se");
    sink.wait_for_stored(3).await;
    stop(stop_tx, task).await;

    // The webhook was removed first, keeping pending updates.
    let deleted = api.calls("deleteWebhook");
    assert_eq!(deleted.len(), 1);
    assert_eq!(deleted[0]["drop_pending_updates"], false);
    assert_eq!(api.call_log()[0].method, "deleteWebhook");
    // Offsets only ever move to one past what was stored, and were asked with the right kinds.
    assert!(api.offsets().contains(&Some(i64::from(third) + 1)));
    assert!(
        api.offsets()
            .iter()
            .flatten()
            .all(|o| *o == i64::from(second) + 1 || *o == i64::from(third) + 1)
    );
    assert_eq!(
        api.calls("getUpdates")[0]["allowed_updates"],
        json!(["message", "callback_query", "my_chat_member"])
    );
    assert_eq!(api.calls("getUpdates")[0]["timeout"], 1);
    // Shutdown confirmed what was stored, and nothing else is waiting.
    assert_eq!(api.pending_updates(), 0);
    assert_eq!(first, 1);
}

#[tokio::test]
async fn a_bot_api_without_delete_webhook_does_not_stop_polling() {
    let (api, sender) = start().await;
    api.fail_next(
        "deleteWebhook",
        FakeError::Api {
            code: 404,
            description: "Not Found".into(),
        },
    );
    api.push_text(111, "namaste");
    let sink = RecordingSink::new(api.clone(), 0);
    let (stop_tx, task) = poll(&sender, sink.clone());
    assert_eq!(texts(&sink.wait_for_stored(1).await), vec!["namaste"]);
    stop(stop_tx, task).await;
    assert_eq!(api.calls("deleteWebhook").len(), 1, "not retried");
}

#[tokio::test]
async fn a_sink_failure_keeps_the_offset_so_the_same_updates_come_again() {
    let (api, sender) = start().await;
    let id = api.push_text(111, "mera phone kho gaya");
    let sink = RecordingSink::new(api.clone(), 1);
    let (stop_tx, task) = poll(&sender, sink.clone());

    let stored = sink.wait_for_stored(1).await;
    api.wait_for_calls("getUpdates", 3, WAIT).await;
    stop(stop_tx, task).await;

    assert_eq!(
        sink.attempts.load(Ordering::SeqCst),
        2,
        "one failed attempt, one stored"
    );
    match &stored[0] {
        TelegramEvent::Message(m, _) => assert_eq!(m.provider_id, id.to_string()),
        other => panic!("unexpected {other:?}"),
    }
    let offsets = api.offsets();
    assert_eq!(
        offsets[..3],
        [None, None, Some(i64::from(id) + 1)],
        "not advanced after the failure"
    );
}

#[tokio::test]
async fn a_409_conflict_is_backed_off_not_hammered() {
    let (api, sender) = start().await;
    api.fail_next("getUpdates", FakeError::Conflict);
    api.fail_next("getUpdates", FakeError::WebhookActive);
    let sink = RecordingSink::new(api.clone(), 0);
    let (stop_tx, task) = poll(&sender, sink.clone());

    api.wait_for_calls("getUpdates", 3, WAIT).await;
    api.push_text(111, "hello");
    sink.wait_for_stored(1).await;
    stop(stop_tx, task).await;

    let times: Vec<_> = api
        .call_log()
        .into_iter()
        .filter(|c| c.method == "getUpdates")
        .map(|c| c.at)
        .collect();
    let first_gap = times[1] - times[0];
    let second_gap = times[2] - times[1];
    assert!(
        first_gap >= Duration::from_millis(400),
        "waited {first_gap:?} after the first 409"
    );
    assert!(
        second_gap >= Duration::from_millis(500),
        "backoff grows (capped): {second_gap:?}"
    );
}

#[tokio::test]
async fn a_button_press_is_answered_and_its_keyboard_removed_after_it_is_stored() {
    let (api, sender) = start().await;
    let SendOutcome::Sent { provider_id } = sender.send(111, &menu("Choose your language")).await
    else {
        panic!("menu not sent");
    };
    let message_id: i64 = provider_id.parse().unwrap();
    assert!(api.message(message_id).unwrap()["reply_markup"]["inline_keyboard"].is_array());

    api.push_callback(111, message_id, "lang:hi");
    let sink = RecordingSink::new(api.clone(), 0);
    let (stop_tx, task) = poll(&sender, sink.clone());
    let stored = sink.wait_for_stored(1).await;
    let answered = api.wait_for_calls("answerCallbackQuery", 1, WAIT).await;
    let edited = api.wait_for_calls("editMessageReplyMarkup", 1, WAIT).await;
    stop(stop_tx, task).await;

    match &stored[0] {
        TelegramEvent::Message(m, Some(cb)) => {
            assert_eq!(
                m.body,
                Body::Choice {
                    id: "lang:hi".into()
                }
            );
            assert_eq!(
                cb.callback_query_id,
                answered[0]["callback_query_id"].as_str().unwrap()
            );
        }
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(edited[0]["chat_id"], 111);
    assert_eq!(edited[0]["message_id"], message_id);
    assert!(
        api.message(message_id)
            .unwrap()
            .get("reply_markup")
            .is_none(),
        "stale buttons are gone"
    );
}

async fn serve(router: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, router).await.unwrap();
    });
    format!("http://{addr}/webhook/telegram")
}

async fn post(url: &str, secret: Option<&str>, body: impl Into<reqwest::Body>) -> u16 {
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let mut request = client
        .post(url)
        .header("content-type", "application/json")
        .body(body);
    if let Some(secret) = secret {
        request = request.header("X-Telegram-Bot-Api-Secret-Token", secret);
    }
    request.send().await.unwrap().status().as_u16()
}

fn fixture(name: &str) -> String {
    std::fs::read_to_string(format!(
        "{}/tests/testdata/{name}.json",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

#[tokio::test]
async fn the_webhook_checks_the_secret_then_stores_then_answers_200() {
    let (api, sender) = start().await;
    let sink = RecordingSink::new(api.clone(), 0);
    let url = serve(webhook_router("s3cr3t_-Token".into(), sink.clone(), sender)).await;

    assert_eq!(
        post(&url, None, fixture("text")).await,
        401,
        "missing secret"
    );
    assert_eq!(
        post(&url, Some("s3cr3t_-Tokem"), fixture("text")).await,
        401,
        "wrong secret"
    );
    assert_eq!(
        post(&url, Some("s3cr3t_-Token-longer"), fixture("text")).await,
        401,
        "longer secret"
    );
    assert!(sink.stored().is_empty());
    assert_eq!(post(&url, Some("s3cr3t_-Token"), "{not json").await, 400);
    assert_eq!(
        post(&url, Some("s3cr3t_-Token"), r#"{"message":{}}"#).await,
        400
    );
    assert_eq!(
        post(&url, Some("s3cr3t_-Token"), vec![b' '; 2 << 20]).await,
        413
    );

    assert_eq!(
        post(&url, Some("s3cr3t_-Token"), fixture("text")).await,
        200
    );
    assert_eq!(texts(&sink.stored()), vec!["mera phone kho gaya"]);

    // A button press through the webhook is answered and its keyboard removed too.
    assert_eq!(
        post(&url, Some("s3cr3t_-Token"), fixture("callback_query")).await,
        200
    );
    let answered = api.wait_for_calls("answerCallbackQuery", 1, WAIT).await;
    assert_eq!(answered[0]["callback_query_id"], "4382bfdwdsb323b2d9");
    api.wait_for_calls("editMessageReplyMarkup", 1, WAIT).await;
}

#[tokio::test]
async fn the_webhook_answers_500_when_the_update_cannot_be_stored_so_telegram_retries() {
    let (api, sender) = start().await;
    let sink = RecordingSink::new(api.clone(), 1);
    let url = serve(webhook_router("secret".into(), sink.clone(), sender)).await;
    assert_eq!(post(&url, Some("secret"), fixture("text")).await, 500);
    assert_eq!(post(&url, Some("secret"), fixture("text")).await, 200);
    assert_eq!(sink.stored().len(), 1);
}

#[tokio::test]
async fn an_empty_webhook_secret_refuses_everything() {
    let (api, sender) = start().await;
    let sink = RecordingSink::new(api.clone(), 0);
    let url = serve(webhook_router(String::new(), sink.clone(), sender)).await;
    assert_eq!(post(&url, Some(""), fixture("text")).await, 401);
    assert_eq!(post(&url, None, fixture("text")).await, 401);
}

#[tokio::test]
async fn a_429_asks_to_retry_after_its_delay_and_the_retry_is_sent() {
    let (api, sender) = start().await;
    api.fail_next("sendMessage", FakeError::RetryAfter(3));
    assert_eq!(
        sender.send(111, &menu("Hi")).await,
        SendOutcome::RetryAfter { secs: 3 }
    );
    assert_eq!(
        sender.send(111, &menu("Hi")).await,
        SendOutcome::Sent {
            provider_id: "1".into()
        }
    );
    assert_eq!(api.sent_texts(111), vec!["Hi\n\n1. हिन्दी\n2. English"]);
}

#[tokio::test]
async fn a_blocked_or_vanished_citizen_is_a_permanent_unreachable_failure() {
    let (api, sender) = start().await;
    for error in [
        FakeError::Blocked,
        FakeError::Deactivated,
        FakeError::ChatNotFound,
    ] {
        api.fail_next("sendMessage", error.clone());
        match sender.send(111, &menu("Hi")).await {
            SendOutcome::Permanent { code, .. } => assert_eq!(code, "403", "{error:?}"),
            other => panic!("{error:?} gave {other:?}"),
        }
    }
    api.fail_next(
        "sendMessage",
        FakeError::Api {
            code: 400,
            description: "Bad Request: message is too long".into(),
        },
    );
    assert!(
        matches!(sender.send(111, &menu("Hi")).await, SendOutcome::Permanent { code, .. } if code == "400")
    );
}

#[tokio::test]
async fn a_migrated_group_and_a_server_error_are_told_apart_and_the_next_send_goes_out() {
    let (api, sender) = start().await;
    api.fail_next("sendMessage", FakeError::Migrated(-1001234567890));
    match sender.send_text(-4242, "alert").await {
        SendOutcome::Permanent { code, reason } => {
            assert_eq!(code, "migrated");
            assert!(reason.contains("-1001234567890"), "{reason}");
        }
        other => panic!("a migrated group gave {other:?}"),
    }
    // A 5xx is retried by the outbox's backoff; the send does not sit on it first.
    api.fail_next(
        "sendMessage",
        FakeError::Api {
            code: 502,
            description: "Bad Gateway".into(),
        },
    );
    let answered = tokio::time::timeout(Duration::from_secs(5), sender.send(111, &menu("Hi")))
        .await
        .expect("a 5xx answer is classified at once");
    assert!(
        matches!(answered, SendOutcome::Transient { .. }),
        "{answered:?}"
    );
    // The provider id is the sent message's id, read from the answer.
    let SendOutcome::Sent { provider_id } = sender.send(111, &menu("Hi")).await else {
        panic!("the send after the failures did not go out");
    };
    let last = api.last_message(111).expect("a message to 111");
    assert_eq!(provider_id, last["message_id"].to_string());
}

#[tokio::test]
async fn an_unreachable_api_is_a_transient_failure() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let sender =
        TelegramSender::new(telegram_bot(TOKEN, &format!("http://127.0.0.1:{port}")).unwrap());
    assert!(matches!(
        sender.send(111, &menu("Hi")).await,
        SendOutcome::Transient { .. }
    ));
}

#[tokio::test]
async fn a_long_text_is_split_and_only_the_last_part_carries_the_keyboard() {
    let (api, sender) = start().await;
    let body = "शिकायत का विवरण ".repeat(400); // 6,400 characters
    let outcome = sender.send(111, &menu(&body)).await;
    let calls = api.calls("sendMessage");
    assert_eq!(calls.len(), 2);
    assert_eq!(
        outcome,
        SendOutcome::Sent {
            provider_id: "2".into()
        }
    );
    for call in &calls {
        let text = call["text"].as_str().unwrap();
        assert!(text.encode_utf16().count() <= 4096);
        assert!(text.starts_with("शिकायत"), "split on a word boundary");
    }
    assert!(calls[0]["reply_markup"].get("inline_keyboard").is_none());
    let last = &calls[1];
    assert!(
        last["text"]
            .as_str()
            .unwrap()
            .ends_with("1. हिन्दी\n2. English")
    );
    assert_eq!(
        last["reply_markup"]["inline_keyboard"][0][0]["callback_data"],
        "lang:hi"
    );
}

#[tokio::test]
async fn commands_are_registered_in_english_by_default_and_in_hindi() {
    let (api, sender) = start().await;
    let en = [("/start", "Start"), ("help", "Help")];
    let hi = [("start", "शुरू करें"), ("help", "मदद")];
    sender.set_commands(&en, &hi).await.unwrap();
    let calls = api.calls("setMyCommands");
    assert_eq!(calls.len(), 2);
    assert_eq!(
        calls[0]["commands"],
        json!([{"command":"start","description":"Start"},{"command":"help","description":"Help"}])
    );
    assert!(calls[0].get("language_code").is_none());
    assert_eq!(calls[1]["language_code"], "hi");
    assert_eq!(calls[1]["commands"][1]["description"], "मदद");
}

#[tokio::test]
async fn the_webhook_is_set_with_its_secret_and_deleted_keeping_pending_updates() {
    let (api, sender) = start().await;
    sender
        .set_webhook("https://seva.example/webhook/telegram", "s3cr3t")
        .await
        .unwrap();
    let hook: Value = api.webhook().expect("webhook set");
    assert_eq!(hook["url"], "https://seva.example/webhook/telegram");
    assert_eq!(hook["secret_token"], "s3cr3t");
    sender.delete_webhook().await.unwrap();
    assert!(api.webhook().is_none());
    assert_eq!(api.calls("deleteWebhook")[0]["drop_pending_updates"], false);
}

#[tokio::test]
async fn a_stale_press_on_a_removed_keyboard_still_counts_as_removed() {
    let (_api, sender) = start().await;
    let SendOutcome::Sent { provider_id } = sender.send(111, &menu("Pick")).await else {
        panic!()
    };
    let id: i32 = provider_id.parse().unwrap();
    sender.remove_keyboard(111, id).await.unwrap();
    sender
        .remove_keyboard(111, id)
        .await
        .expect("not modified is fine");
    sender
        .answer_callback("cb-x", Some("That menu has expired"))
        .await
        .unwrap();
}

#[tokio::test]
async fn an_update_teloxide_cannot_read_is_handed_over_as_ignored_and_confirmed() {
    let (api, sender) = start().await;
    let odd = api.push_update(json!({ "some_future_update": { "id": 1 } }));
    let broken =
        api.push_update(json!({ "message": { "message_id": 1, "text": "no chat, no date" } }));
    let sink = RecordingSink::new(api.clone(), 0);
    let (stop_tx, task) = poll(&sender, sink.clone());
    let stored = sink.wait_for_stored(2).await;
    api.wait_for_calls("getUpdates", 2, WAIT).await;
    stop(stop_tx, task).await;

    assert!(matches!(stored[0], TelegramEvent::Ignored { update_id, .. } if update_id == odd));
    assert!(matches!(stored[1], TelegramEvent::Ignored { update_id, .. } if update_id == broken));
    assert_eq!(api.offsets()[1], Some(i64::from(broken) + 1));
    assert_eq!(api.pending_updates(), 0);
}
