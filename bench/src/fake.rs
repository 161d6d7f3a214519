//! A lean fake of both provider APIs on one loopback port: the WhatsApp Graph API
//! (`POST /{version}/{phone_number_id}/messages`) and the Telegram Bot API
//! (`POST /bot<token>/<method>`).
//!
//! For Telegram long polling it also answers `getUpdates` from a queue the virtual citizens
//! fill, as Telegram does: updates stay queued until a later call's `offset` confirms them,
//! and a call with nothing queued waits up to its `timeout`.
//!
//! It records nothing: each message send is parsed just enough to learn its recipient and
//! text, handed to the virtual citizen registered for that recipient, and answered with the
//! provider's success body. (`webhook::testing::FakeGraph` and `bot::testing::FakeBotApi` keep
//! every request for tests to inspect, and FakeBotApi delivers webhook updates one at a time:
//! both would become the bottleneck under load.)

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::{Notify, mpsc};

/// One message that reached the fake for a citizen.
#[derive(Debug)]
pub struct Arrival {
    pub at: Instant,
    pub text: String,
}

/// Who gets which recipient's messages, and counters.
#[derive(Default)]
pub struct Routes {
    citizens: Mutex<HashMap<String, mpsc::UnboundedSender<Arrival>>>,
    /// Message sends delivered to a registered citizen.
    pub delivered: AtomicU64,
    /// Message sends for nobody registered (late replies to an abandoned journey, or the
    /// pushes of `seva-load burst`).
    pub strays: AtomicU64,
    /// When each stray arrived, while [`Routes::time_strays`] is on (`seva-load burst`).
    stray_times: Mutex<Option<Vec<Instant>>>,
    /// WhatsApp read receipts.
    pub read_receipts: AtomicU64,
    /// Any other call (setWebhook, setMyCommands, answerCallbackQuery, …).
    pub other: AtomicU64,
    next_id: AtomicU64,
    /// Updates waiting for `getUpdates` (Telegram long polling).
    updates: Mutex<UpdateQueue>,
    updates_pushed: Notify,
}

/// Telegram's side of long polling: updates in `update_id` order, kept until confirmed.
#[derive(Default)]
struct UpdateQueue {
    last_id: u64,
    pending: VecDeque<(u64, String)>,
}

/// The most `getUpdates` answers with, whatever its `limit` says (Telegram's own maximum).
const MAX_UPDATES: usize = 100;

impl Routes {
    /// Messages for `recipient` (a wa_id, or a Telegram chat id) go to the returned receiver
    /// until [`Routes::unregister`].
    pub fn register(&self, recipient: &str) -> mpsc::UnboundedReceiver<Arrival> {
        let (tx, rx) = mpsc::unbounded_channel();
        self.lock().insert(recipient.to_owned(), tx);
        rx
    }

    pub fn unregister(&self, recipient: &str) {
        self.lock().remove(recipient);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, mpsc::UnboundedSender<Arrival>>> {
        self.citizens.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn deliver(&self, recipient: &str, text: String) {
        let at = Instant::now();
        let tx = self.lock().get(recipient).cloned();
        match tx.map(|tx| tx.send(Arrival { at, text })) {
            Some(Ok(())) => {
                self.delivered.fetch_add(1, Ordering::Relaxed);
            }
            _ => {
                self.strays.fetch_add(1, Ordering::Relaxed);
                if let Some(times) = self
                    .stray_times
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .as_mut()
                {
                    times.push(at);
                }
            }
        }
    }

    /// Starts recording when each stray arrives (and forgets earlier ones).
    pub fn time_strays(&self) {
        *self.stray_times.lock().unwrap_or_else(|e| e.into_inner()) = Some(Vec::new());
    }

    /// The stray arrival times recorded so far.
    pub fn stray_times(&self) -> Vec<Instant> {
        self.stray_times
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
            .unwrap_or_default()
    }

    /// Queues an update for `getUpdates`; `update` builds its JSON from its `update_id`, which
    /// is given out under the queue's lock so that ids rise in queue order.
    pub fn push_update(&self, update: impl FnOnce(u64) -> String) {
        {
            let mut queue = self.queue();
            queue.last_id += 1;
            let id = queue.last_id;
            queue.pending.push_back((id, update(id)));
        }
        self.updates_pushed.notify_waiters();
    }

    /// Forgets every queued update (a new target must not receive the last one's leftovers).
    pub fn clear_updates(&self) {
        self.queue().pending.clear();
    }

    fn queue(&self) -> std::sync::MutexGuard<'_, UpdateQueue> {
        self.updates.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The `result` of `getUpdates`: drops the updates `offset` confirms, then lists up to
    /// `limit` of the rest.
    fn updates_from(&self, offset: i64, limit: usize) -> Option<String> {
        let mut queue = self.queue();
        while let Some((id, _)) = queue.pending.front() {
            if (*id as i64) < offset {
                queue.pending.pop_front();
            } else {
                break;
            }
        }
        if queue.pending.is_empty() {
            return None;
        }
        let mut result = String::from("[");
        for (i, (_, update)) in queue.pending.iter().take(limit).enumerate() {
            if i > 0 {
                result.push(',');
            }
            result.push_str(update);
        }
        result.push(']');
        Some(result)
    }

    fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed) + 1
    }
}

/// The running fake; stops when dropped.
pub struct Fake {
    pub addr: SocketAddr,
    pub routes: Arc<Routes>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Fake {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Fake {
    pub async fn start() -> std::io::Result<Fake> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let routes = Arc::new(Routes::default());
        let app = Router::new().fallback(handle).with_state(routes.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Fake { addr, routes, task })
    }

    /// `WHATSAPP_API_URL`.
    pub fn graph_url(&self) -> String {
        format!("http://{}/v23.0", self.addr)
    }

    /// `TELEGRAM_API_URL`.
    pub fn telegram_url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

fn json_response(body: String) -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        body,
    )
        .into_response()
}

async fn handle(State(routes): State<Arc<Routes>>, uri: Uri, body: Bytes) -> Response {
    let path = uri.path();
    if let Some(rest) = path.strip_prefix("/bot") {
        let method = rest.rsplit('/').next().unwrap_or_default();
        if method.eq_ignore_ascii_case("getupdates") {
            return get_updates(&routes, &body).await;
        }
        return telegram(&routes, method, &body);
    }
    if path.ends_with("/messages") {
        return graph_send(&routes, &body);
    }
    routes.other.fetch_add(1, Ordering::Relaxed);
    (StatusCode::NOT_FOUND, "not found").into_response()
}

#[derive(Deserialize)]
struct GraphSend {
    #[serde(default)]
    to: Option<String>,
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    text: Option<GraphText>,
    #[serde(default)]
    interactive: Option<GraphInteractive>,
}

#[derive(Deserialize)]
struct GraphText {
    body: String,
}

#[derive(Deserialize)]
struct GraphInteractive {
    #[serde(default)]
    body: Option<InteractiveBody>,
}

#[derive(Deserialize)]
struct InteractiveBody {
    text: String,
}

fn graph_send(routes: &Routes, body: &[u8]) -> Response {
    let Ok(send) = serde_json::from_slice::<GraphSend>(body) else {
        return (StatusCode::BAD_REQUEST, "not json").into_response();
    };
    if send.status.as_deref() == Some("read") {
        routes.read_receipts.fetch_add(1, Ordering::Relaxed);
        return json_response(r#"{"success":true}"#.to_owned());
    }
    let to = send.to.unwrap_or_default();
    let text = match (send.text, send.interactive) {
        (Some(t), _) => t.body,
        (None, Some(GraphInteractive { body: Some(t) })) => t.text,
        _ => String::new(),
    };
    routes.deliver(&to, text);
    let id = routes.next_id();
    json_response(format!(
        r#"{{"messaging_product":"whatsapp","contacts":[{{"input":"{to}","wa_id":"{to}"}}],"messages":[{{"id":"wamid.LOAD{id:016X}","message_status":"accepted"}}]}}"#
    ))
}

#[derive(Deserialize)]
struct TelegramSend {
    chat_id: Value,
    #[serde(default)]
    text: String,
    #[serde(default)]
    message_id: Option<i64>,
}

fn chat_id(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// A `Message` teloxide can read: a private text message from the bot.
fn telegram_message(message_id: i64, chat: &str) -> String {
    let chat_json = if chat.starts_with('-') {
        format!(r#"{{"id":{chat},"type":"group","title":"Group"}}"#)
    } else {
        format!(r#"{{"id":{chat},"type":"private","first_name":"Citizen"}}"#)
    };
    format!(
        r#"{{"ok":true,"result":{{"message_id":{message_id},"date":1750000000,"chat":{chat_json},"from":{{"id":4242,"is_bot":true,"first_name":"Seva","username":"seva_load_bot"}},"text":"ok"}}}}"#
    )
}

#[derive(Deserialize, Default)]
struct GetUpdates {
    #[serde(default)]
    offset: Option<i64>,
    #[serde(default)]
    limit: Option<usize>,
    #[serde(default)]
    timeout: Option<u64>,
}

async fn get_updates(routes: &Routes, body: &[u8]) -> Response {
    let params = if body.is_empty() {
        GetUpdates::default()
    } else {
        match serde_json::from_slice::<GetUpdates>(body) {
            Ok(p) => p,
            Err(_) => {
                return (
                    StatusCode::BAD_REQUEST,
                    json!({"ok": false, "error_code": 400, "description": "Bad Request: can't parse parameters"})
                        .to_string(),
                )
                    .into_response();
            }
        }
    };
    let offset = params.offset.unwrap_or(0);
    let limit = params.limit.unwrap_or(MAX_UPDATES).clamp(1, MAX_UPDATES);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(params.timeout.unwrap_or(0));
    loop {
        // Registered before looking, so a push between the look and the wait still wakes it.
        let pushed = routes.updates_pushed.notified();
        tokio::pin!(pushed);
        pushed.as_mut().enable();
        if let Some(result) = routes.updates_from(offset, limit) {
            return json_response(format!(r#"{{"ok":true,"result":{result}}}"#));
        }
        if tokio::time::timeout_at(deadline, pushed).await.is_err() {
            return json_response(r#"{"ok":true,"result":[]}"#.to_owned());
        }
    }
}

fn telegram(routes: &Routes, method: &str, body: &[u8]) -> Response {
    let method = method.to_ascii_lowercase();
    match method.as_str() {
        "sendmessage" => {
            let Ok(send) = serde_json::from_slice::<TelegramSend>(body) else {
                return (
                    StatusCode::BAD_REQUEST,
                    json!({"ok": false, "error_code": 400, "description": "Bad Request"})
                        .to_string(),
                )
                    .into_response();
            };
            let chat = chat_id(&send.chat_id);
            routes.deliver(&chat, send.text);
            let id = routes.next_id() as i64;
            json_response(telegram_message(id, &chat))
        }
        "editmessagereplymarkup" | "editmessagetext" => {
            routes.other.fetch_add(1, Ordering::Relaxed);
            let (chat, id) = serde_json::from_slice::<TelegramSend>(body)
                .map(|s| (chat_id(&s.chat_id), s.message_id.unwrap_or(1)))
                .unwrap_or_else(|_| ("1".to_owned(), 1));
            json_response(telegram_message(id, &chat))
        }
        "getme" => {
            routes.other.fetch_add(1, Ordering::Relaxed);
            json_response(
                r#"{"ok":true,"result":{"id":4242,"is_bot":true,"first_name":"Seva","username":"seva_load_bot","can_join_groups":true,"can_read_all_group_messages":false,"supports_inline_queries":false}}"#
                    .to_owned(),
            )
        }
        _ => {
            routes.other.fetch_add(1, Ordering::Relaxed);
            json_response(r#"{"ok":true,"result":true}"#.to_owned())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn sends_reach_the_registered_citizen_and_read_receipts_do_not() {
        let fake = Fake::start().await.unwrap();
        let mut wa = fake.routes.register("917000000001");
        let mut tg = fake.routes.register("1000001");
        let http = reqwest::Client::builder().no_proxy().build().unwrap();
        let graph = format!("{}/106540352242922/messages", fake.graph_url());
        let read = http
            .post(&graph)
            .json(&json!({"messaging_product": "whatsapp", "status": "read", "message_id": "w"}))
            .send()
            .await
            .unwrap();
        assert!(read.status().is_success());
        let sent: Value = http
            .post(&graph)
            .json(&json!({"messaging_product": "whatsapp", "to": "917000000001", "type": "interactive",
                "interactive": {"type": "button", "body": {"text": "Choose"}}}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert!(
            sent["messages"][0]["id"]
                .as_str()
                .unwrap()
                .starts_with("wamid.")
        );
        assert_eq!(wa.recv().await.unwrap().text, "Choose");
        let tg_sent: Value = http
            .post(format!("{}/bot1:x/SendMessage", fake.telegram_url()))
            .json(&json!({"chat_id": 1000001, "text": "Hello"}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(tg_sent["result"]["chat"]["id"], 1000001);
        assert_eq!(tg.recv().await.unwrap().text, "Hello");
        assert_eq!(fake.routes.read_receipts.load(Ordering::Relaxed), 1);
        assert_eq!(fake.routes.delivered.load(Ordering::Relaxed), 2);
    }

    #[tokio::test]
    async fn get_updates_keeps_updates_until_an_offset_confirms_them_and_waits_for_new_ones() {
        let fake = Fake::start().await.unwrap();
        let http = reqwest::Client::builder().no_proxy().build().unwrap();
        let url = format!("{}/bot1:x/getUpdates", fake.telegram_url());
        let get = |body: Value| {
            let request = http.post(&url).json(&body).send();
            async move { request.await.unwrap().json::<Value>().await.unwrap() }
        };
        for text in ["one", "two"] {
            fake.routes
                .push_update(|id| json!({"update_id": id, "message": {"text": text}}).to_string());
        }
        let both = get(json!({"timeout": 0})).await;
        assert_eq!(both["ok"], true);
        let ids: Vec<i64> = both["result"]
            .as_array()
            .unwrap()
            .iter()
            .map(|u| u["update_id"].as_i64().unwrap())
            .collect();
        assert_eq!(ids.len(), 2);
        assert!(ids[0] < ids[1]);
        // Not confirmed yet: the same two again, or fewer with a limit.
        let first = get(json!({"limit": 1})).await;
        assert_eq!(first["result"].as_array().unwrap().len(), 1);
        assert_eq!(first["result"][0]["update_id"], ids[0]);
        let rest = get(json!({"offset": ids[0] + 1})).await;
        assert_eq!(rest["result"].as_array().unwrap().len(), 1);
        assert_eq!(rest["result"][0]["message"]["text"], "two");
        // Everything confirmed: a long poll waits until an update is pushed.
        let waiting = tokio::spawn(get(json!({"offset": ids[1] + 1, "timeout": 5})));
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(!waiting.is_finished());
        fake.routes
            .push_update(|id| json!({"update_id": id, "message": {"text": "three"}}).to_string());
        let third = tokio::time::timeout(Duration::from_secs(2), waiting)
            .await
            .expect("the long poll answers when an update arrives")
            .unwrap();
        assert_eq!(third["result"][0]["message"]["text"], "three");
        // Nothing queued and no wait asked for: an empty list at once.
        let empty = get(json!({"offset": ids[1] + 2})).await;
        assert_eq!(empty, json!({"ok": true, "result": []}));
        // Parameters that are not JSON: Telegram's 400 shape.
        let bad = http.post(&url).body("{").send().await.unwrap();
        assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
    }
}
