//! An in-process fake Telegram Bot API for tests (feature `testing`).
//!
//! It listens on `127.0.0.1:0`, serves `POST /bot<token>/<method>` the way teloxide calls it
//! (JSON bodies; `setWebhook` as multipart), and answers in Telegram's envelope:
//! `{"ok":true,"result":…}` or `{"ok":false,"error_code":…,"description":…,"parameters":{…}}`.
//! Every call is recorded. Tests push updates that `getUpdates` hands out (long polling with
//! its `timeout`, honouring `offset`: an update is forgotten once a call's offset passes it),
//! and can script the next call of a method to fail.
//!
//! ```ignore
//! let api = FakeBotApi::start("123:abc").await;
//! let bot = api.bot();                       // or telegram_bot(token, &api.url())
//! api.push_text(111, "/start");
//! let sent = api.wait_for_calls("sendMessage", 1, Duration::from_secs(5)).await;
//! api.fail_next("sendMessage", FakeError::Blocked);
//! ```
//!
//! Errors never use a 5xx status unless asked to: teloxide sleeps 10 s on any 5xx.
//!
//! Webhook mode works as Telegram's does: once `setWebhook` names a loopback `http` URL, queued
//! updates are POSTed there one at a time, in `update_id` order, with the
//! `X-Telegram-Bot-Api-Secret-Token` given to `setWebhook`; an update is forgotten on a 2xx
//! answer and retried otherwise. Meanwhile `getUpdates` answers 409, as Telegram does. A
//! non-loopback webhook URL is recorded but never called (tests never leave the machine).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use serde_json::{Value, json};
use tokio::sync::{Notify, oneshot};

/// A scripted failure for the next call of a method.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FakeError {
    /// 429 "Too Many Requests: retry after N" with `parameters.retry_after`.
    RetryAfter(u32),
    /// 403 "Forbidden: bot was blocked by the user".
    Blocked,
    /// 403 "Forbidden: user is deactivated".
    Deactivated,
    /// 400 "Bad Request: chat not found".
    ChatNotFound,
    /// 409 "Conflict: terminated by other getUpdates request; …".
    Conflict,
    /// 409 "Conflict: can't use getUpdates method while webhook is active; …".
    WebhookActive,
    /// 400 "Bad Request: group chat was upgraded to a supergroup chat" with
    /// `parameters.migrate_to_chat_id`.
    Migrated(i64),
    /// Any other error body. A `code` of 500 or more makes teloxide's own requests wait 10 s
    /// first (not `sendMessage`, which Seva posts itself).
    Api { code: u16, description: String },
}

impl FakeError {
    fn body(&self) -> (u16, Value) {
        let plain = |code: u16, description: &str| {
            (
                code,
                json!({ "ok": false, "error_code": code, "description": description }),
            )
        };
        match self {
            FakeError::RetryAfter(secs) => (
                429,
                json!({
                    "ok": false,
                    "error_code": 429,
                    "description": format!("Too Many Requests: retry after {secs}"),
                    "parameters": { "retry_after": secs },
                }),
            ),
            FakeError::Blocked => plain(403, "Forbidden: bot was blocked by the user"),
            FakeError::Deactivated => plain(403, "Forbidden: user is deactivated"),
            FakeError::ChatNotFound => plain(400, "Bad Request: chat not found"),
            FakeError::Conflict => plain(
                409,
                "Conflict: terminated by other getUpdates request; make sure that only one bot instance is running",
            ),
            FakeError::WebhookActive => plain(
                409,
                "Conflict: can't use getUpdates method while webhook is active; use deleteWebhook to delete the webhook first",
            ),
            FakeError::Migrated(to) => (
                400,
                json!({
                    "ok": false,
                    "error_code": 400,
                    "description": "Bad Request: group chat was upgraded to a supergroup chat",
                    "parameters": { "migrate_to_chat_id": to },
                }),
            ),
            FakeError::Api { code, description } => plain(*code, description),
        }
    }
}

/// One recorded Bot API call.
#[derive(Debug, Clone)]
pub struct RecordedCall {
    /// The method, spelled as Telegram documents it (`sendMessage`, `getUpdates`, …).
    pub method: String,
    /// Its parameters as JSON (multipart fields decoded: JSON where they parse, else strings).
    pub params: Value,
    /// When the fake received it.
    pub at: Instant,
}

#[derive(Default)]
struct FakeState {
    /// Updates not yet confirmed, ordered by `update_id`.
    updates: VecDeque<Value>,
    next_update_id: u32,
    /// Every update below this id is confirmed (forgotten).
    confirmed_below: u32,
    calls: Vec<RecordedCall>,
    failures: HashMap<String, VecDeque<FakeError>>,
    next_message_id: i64,
    next_callback_id: u64,
    /// Messages the bot sent, by id, as `sendMessage`'s result, kept current by edits.
    messages: BTreeMap<i64, Value>,
    webhook: Option<Value>,
    /// Every update ever pushed, by id, for [`FakeBotApi::redeliver`].
    history: BTreeMap<u32, Value>,
    /// `(update_id, HTTP status)` of every webhook delivery attempt.
    deliveries: Vec<(u32, u16)>,
}

struct Shared {
    token: String,
    bot_id: i64,
    state: Mutex<FakeState>,
    updates_pushed: Notify,
    call_recorded: Notify,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, FakeState> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// The fake Bot API server. Stops when dropped.
pub struct FakeBotApi {
    shared: Arc<Shared>,
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    delivery: tokio::task::JoinHandle<()>,
}

impl Drop for FakeBotApi {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.delivery.abort();
    }
}

impl FakeBotApi {
    /// Starts the fake on `127.0.0.1:0` for bot `token` (`"<bot id>:<secret>"`).
    pub async fn start(token: &str) -> FakeBotApi {
        let bot_id = token
            .split(':')
            .next()
            .and_then(|id| id.parse().ok())
            .unwrap_or(1);
        let shared = Arc::new(Shared {
            token: token.to_owned(),
            bot_id,
            state: Mutex::new(FakeState {
                next_update_id: 1,
                next_message_id: 1,
                ..Default::default()
            }),
            updates_pushed: Notify::new(),
            call_recorded: Notify::new(),
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local addr");
        let app = Router::new()
            .route("/{bot}/{method}", any(handle))
            .with_state(shared.clone());
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await;
        });
        let delivery = tokio::spawn(deliver_to_webhook(shared.clone()));
        FakeBotApi {
            shared,
            addr,
            stop: Some(stop),
            delivery,
        }
    }

    /// The base URL, to use as `TELEGRAM_API_URL` (`http://127.0.0.1:<port>`).
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn token(&self) -> &str {
        &self.shared.token
    }

    /// The bot's own user id (the number before `:` in the token).
    pub fn bot_id(&self) -> i64 {
        self.shared.bot_id
    }

    /// A teloxide `Bot` pointed at this fake.
    pub fn bot(&self) -> teloxide::Bot {
        crate::sender::telegram_bot(&self.shared.token, &self.url()).expect("fake url is valid")
    }

    /// Queues an update for `getUpdates`. Without an `update_id` the next one is assigned;
    /// with one, later assigned ids continue above it. Returns the `update_id`.
    pub fn push_update(&self, mut update: Value) -> u32 {
        let id = {
            let mut st = self.shared.lock();
            let id = match update.get("update_id").and_then(Value::as_u64) {
                Some(id) => u32::try_from(id).expect("update_id fits u32"),
                None => {
                    let id = st.next_update_id;
                    update["update_id"] = json!(id);
                    id
                }
            };
            st.next_update_id = st.next_update_id.max(id + 1);
            st.history.insert(id, update.clone());
            let pos = st
                .updates
                .iter()
                .position(|u| update_id(u) > id)
                .unwrap_or(st.updates.len());
            st.updates.insert(pos, update);
            id
        };
        self.shared.updates_pushed.notify_waiters();
        id
    }

    /// Hands out an update again as if it had never been confirmed (Telegram redelivering what
    /// Seva stored but could not confirm before a crash). Returns false for an unknown id.
    pub fn redeliver(&self, update_id: u32) -> bool {
        {
            let mut st = self.shared.lock();
            let Some(update) = st.history.get(&update_id).cloned() else {
                return false;
            };
            st.confirmed_below = st.confirmed_below.min(update_id);
            if !st.updates.iter().any(|u| self::update_id(u) == update_id) {
                let pos = st
                    .updates
                    .iter()
                    .position(|u| self::update_id(u) > update_id)
                    .unwrap_or(st.updates.len());
                st.updates.insert(pos, update);
            }
        }
        self.shared.updates_pushed.notify_waiters();
        true
    }

    /// A text message from `user_id` in the group `chat_id` (negative, as Telegram's are).
    pub fn push_group_text(&self, chat_id: i64, user_id: i64, text: &str) -> u32 {
        self.push_update(json!({ "message": {
            "message_id": INCOMING_MESSAGE_ID.fetch_add(1, Ordering::Relaxed),
            "date": now(),
            "from": user(user_id),
            "chat": { "id": chat_id, "type": "group", "title": "Group" },
            "text": text,
        }}))
    }

    /// `(update_id, HTTP status)` of every webhook delivery attempt so far.
    pub fn webhook_deliveries(&self) -> Vec<(u32, u16)> {
        self.shared.lock().deliveries.clone()
    }

    /// A private-chat text message from `user_id` (commands too: `"/start status_…"`).
    pub fn push_text(&self, user_id: i64, text: &str) -> u32 {
        self.push_update(json!({ "message": private_message(user_id, json!({ "text": text })) }))
    }

    /// An inline-button tap by `user_id` on the bot's message `message_id`, sending `data`.
    pub fn push_callback(&self, user_id: i64, message_id: i64, data: &str) -> u32 {
        let (id, message) = {
            let mut st = self.shared.lock();
            st.next_callback_id += 1;
            let message = st.messages.get(&message_id).cloned().unwrap_or_else(|| {
                json!({
                    "message_id": message_id, "date": now(), "text": "…",
                    "chat": { "id": user_id, "type": "private", "first_name": "Citizen" },
                })
            });
            (format!("cb-{}", st.next_callback_id), message)
        };
        self.push_update(json!({
            "callback_query": {
                "id": id,
                "chat_instance": format!("ci-{user_id}"),
                "from": user(user_id),
                "message": message,
                "data": data,
            }
        }))
    }

    /// A shared contact card; `contact_user_id` equal to `user_id` means "my own number".
    pub fn push_contact(&self, user_id: i64, phone: &str, contact_user_id: Option<i64>) -> u32 {
        let mut contact = json!({ "phone_number": phone, "first_name": "Citizen" });
        if let Some(owner) = contact_user_id {
            contact["user_id"] = json!(owner);
        }
        self.push_update(
            json!({ "message": private_message(user_id, json!({ "contact": contact })) }),
        )
    }

    /// A shared location.
    pub fn push_location(&self, user_id: i64, latitude: f64, longitude: f64) -> u32 {
        let location = json!({ "location": { "latitude": latitude, "longitude": longitude } });
        self.push_update(json!({ "message": private_message(user_id, location) }))
    }

    /// A photo (two sizes; the larger has `file_id`).
    pub fn push_photo(&self, user_id: i64, file_id: &str, caption: Option<&str>) -> u32 {
        let mut fields = json!({ "photo": [
            { "file_id": format!("{file_id}-small"), "file_unique_id": "s", "width": 90, "height": 60 },
            { "file_id": file_id, "file_unique_id": "l", "width": 1280, "height": 853 },
        ]});
        if let Some(caption) = caption {
            fields["caption"] = json!(caption);
        }
        self.push_update(json!({ "message": private_message(user_id, fields) }))
    }

    /// The citizen blocked the bot (`reachable == false`) or unblocked it.
    pub fn push_membership(&self, user_id: i64, reachable: bool) -> u32 {
        let bot = json!({ "id": self.shared.bot_id, "is_bot": true, "first_name": "Seva" });
        let (old, new) = if reachable {
            ("kicked", "member")
        } else {
            ("member", "kicked")
        };
        // Telegram always sends `until_date` with `kicked` (teloxide needs it).
        let member = |status: &str| {
            let mut m = json!({ "user": bot, "status": status });
            if status == "kicked" {
                m["until_date"] = json!(0);
            }
            m
        };
        let (old_member, new_member) = (member(old), member(new));
        self.push_update(json!({ "my_chat_member": {
            "chat": { "id": user_id, "type": "private", "first_name": "Citizen" },
            "from": user(user_id),
            "date": now(),
            "old_chat_member": old_member,
            "new_chat_member": new_member,
        }}))
    }

    /// Makes the next call of `method` fail with `error` (queued: call again to fail several).
    pub fn fail_next(&self, method: &str, error: FakeError) {
        self.shared
            .lock()
            .failures
            .entry(method.to_ascii_lowercase())
            .or_default()
            .push_back(error);
    }

    /// The parameters of every call of `method` so far (method names compare case-insensitively).
    pub fn calls(&self, method: &str) -> Vec<Value> {
        self.shared
            .lock()
            .calls
            .iter()
            .filter(|c| c.method.eq_ignore_ascii_case(method))
            .map(|c| c.params.clone())
            .collect()
    }

    /// Every call so far, in order.
    pub fn call_log(&self) -> Vec<RecordedCall> {
        self.shared.lock().calls.clone()
    }

    /// Waits until `method` has been called at least `n` times and returns those calls'
    /// parameters; panics after `timeout`, listing what was called.
    pub async fn wait_for_calls(&self, method: &str, n: usize, timeout: Duration) -> Vec<Value> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.shared.call_recorded.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let calls = self.calls(method);
            if calls.len() >= n {
                return calls;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                let methods: Vec<String> = self.call_log().into_iter().map(|c| c.method).collect();
                panic!(
                    "fake Bot API: expected {n} {method} call(s) within {timeout:?}, saw {}; calls: {methods:?}",
                    calls.len()
                );
            }
        }
    }

    /// The `offset` parameter of every `getUpdates` call, in order (`None` when absent).
    pub fn offsets(&self) -> Vec<Option<i64>> {
        self.calls("getUpdates")
            .iter()
            .map(|p| p.get("offset").and_then(Value::as_i64))
            .collect()
    }

    /// Updates pushed and not yet confirmed by an offset past them.
    pub fn pending_updates(&self) -> usize {
        self.shared.lock().updates.len()
    }

    /// The texts the bot successfully sent to `chat_id`, in order.
    pub fn sent_texts(&self, chat_id: i64) -> Vec<String> {
        self.sent_messages(chat_id)
            .iter()
            .filter_map(|m| m["text"].as_str().map(str::to_owned))
            .collect()
    }

    /// The messages the bot successfully sent to `chat_id`, in order, as they are now (a
    /// removed inline keyboard is gone from `reply_markup`).
    pub fn sent_messages(&self, chat_id: i64) -> Vec<Value> {
        self.shared
            .lock()
            .messages
            .values()
            .filter(|m| m["chat"]["id"].as_i64() == Some(chat_id))
            .cloned()
            .collect()
    }

    /// The last message the bot successfully sent to `chat_id`.
    pub fn last_message(&self, chat_id: i64) -> Option<Value> {
        self.sent_messages(chat_id).pop()
    }

    /// A message the bot sent, as it is now (its `reply_markup` disappears once removed).
    pub fn message(&self, message_id: i64) -> Option<Value> {
        self.shared.lock().messages.get(&message_id).cloned()
    }

    /// The webhook set by `setWebhook` (its parameters), or `None` after `deleteWebhook`.
    pub fn webhook(&self) -> Option<Value> {
        self.shared.lock().webhook.clone()
    }
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

fn user(user_id: i64) -> Value {
    json!({ "id": user_id, "is_bot": false, "first_name": "Citizen", "language_code": "hi" })
}

/// Ids of citizens' messages, far from the ids of the bot's own messages.
static INCOMING_MESSAGE_ID: AtomicI64 = AtomicI64::new(500_000);

fn private_message(user_id: i64, fields: Value) -> Value {
    let mut message = json!({
        "message_id": INCOMING_MESSAGE_ID.fetch_add(1, Ordering::Relaxed),
        "date": now(),
        "from": user(user_id),
        "chat": { "id": user_id, "type": "private", "first_name": "Citizen" },
    });
    if let (Some(m), Value::Object(extra)) = (message.as_object_mut(), fields) {
        m.extend(extra);
    }
    message
}

fn update_id(update: &Value) -> u32 {
    update
        .get("update_id")
        .and_then(Value::as_u64)
        .map_or(0, |id| id as u32)
}

fn reply(status: u16, body: Value) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST);
    (status, axum::Json(body)).into_response()
}

fn ok(result: Value) -> Response {
    reply(200, json!({ "ok": true, "result": result }))
}

async fn handle(
    State(shared): State<Arc<Shared>>,
    Path((bot, method)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if bot.strip_prefix("bot") != Some(shared.token.as_str()) {
        return reply(
            401,
            json!({ "ok": false, "error_code": 401, "description": "Unauthorized" }),
        );
    }
    // teloxide sends `SendMessage`; Telegram's names are case-insensitive and documented as
    // `sendMessage`, which is how calls are recorded.
    let method = canonical_method(&method);
    let params = decode_params(&headers, &body);
    let failure = {
        let mut st = shared.lock();
        st.calls.push(RecordedCall {
            method: method.clone(),
            params: params.clone(),
            at: Instant::now(),
        });
        st.failures
            .get_mut(&method.to_ascii_lowercase())
            .and_then(VecDeque::pop_front)
    };
    shared.call_recorded.notify_waiters();
    if let Some(error) = failure {
        let (status, body) = error.body();
        return reply(status, body);
    }
    match method.to_ascii_lowercase().as_str() {
        "getupdates" => get_updates(&shared, &params).await,
        "sendmessage" => send_message(&shared, &params),
        "editmessagereplymarkup" => edit_reply_markup(&shared, &params),
        "answercallbackquery" | "setmycommands" => ok(json!(true)),
        "deletewebhook" => {
            shared.lock().webhook = None;
            ok(json!(true))
        }
        "setwebhook" => {
            let url = params
                .get("url")
                .and_then(Value::as_str)
                .unwrap_or_default();
            shared.lock().webhook = (!url.is_empty()).then_some(params);
            shared.updates_pushed.notify_waiters();
            ok(json!(true))
        }
        "getme" => ok(json!({
            "id": shared.bot_id, "is_bot": true, "first_name": "Seva", "username": "seva_test_bot",
            "can_join_groups": true, "can_read_all_group_messages": false,
            "supports_inline_queries": false, "can_connect_to_business": false,
            "has_main_web_app": false,
        })),
        _ => reply(
            404,
            json!({ "ok": false, "error_code": 404, "description": "Not Found" }),
        ),
    }
}

async fn get_updates(shared: &Shared, params: &Value) -> Response {
    if shared.lock().webhook.is_some() {
        return reply(
            409,
            json!({ "ok": false, "error_code": 409, "description":
            "Conflict: can't use getUpdates method while webhook is active; use deleteWebhook to delete the webhook first" }),
        );
    }
    let limit = params
        .get("limit")
        .and_then(Value::as_u64)
        .unwrap_or(100)
        .clamp(1, 100) as usize;
    let timeout = params
        .get("timeout")
        .and_then(Value::as_u64)
        .unwrap_or(0)
        .min(50);
    if let Some(offset) = params
        .get("offset")
        .and_then(Value::as_i64)
        .filter(|o| *o > 0)
    {
        let offset = u32::try_from(offset).unwrap_or(u32::MAX);
        let mut st = shared.lock();
        st.confirmed_below = st.confirmed_below.max(offset);
        let below = st.confirmed_below;
        st.updates.retain(|u| update_id(u) >= below);
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(timeout);
    loop {
        let notified = shared.updates_pushed.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        let batch: Vec<Value> = {
            let st = shared.lock();
            let below = st.confirmed_below;
            st.updates
                .iter()
                .filter(|u| update_id(u) >= below)
                .take(limit)
                .cloned()
                .collect()
        };
        if !batch.is_empty() || tokio::time::timeout_at(deadline, notified).await.is_err() {
            return ok(Value::Array(batch));
        }
    }
}

/// The webhook URL to deliver to, when one is set and it is a loopback `http` URL.
fn loopback_webhook(webhook: Option<&Value>) -> Option<(String, Option<String>)> {
    let hook = webhook?;
    let url = hook.get("url")?.as_str()?.to_owned();
    let parsed = reqwest::Url::parse(&url).ok()?;
    let host = parsed
        .host_str()?
        .trim_start_matches('[')
        .trim_end_matches(']');
    let loopback = host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    if parsed.scheme() != "http" || !loopback {
        return None;
    }
    let secret = hook
        .get("secret_token")
        .and_then(Value::as_str)
        .map(str::to_owned);
    Some((url, secret))
}

/// Telegram's side of webhook mode: the oldest unconfirmed update goes to the webhook; a 2xx
/// confirms it, anything else is retried shortly.
async fn deliver_to_webhook(shared: Arc<Shared>) {
    let client = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("http client");
    loop {
        let notified = shared.updates_pushed.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        let next = {
            let st = shared.lock();
            loopback_webhook(st.webhook.as_ref()).and_then(|hook| {
                let below = st.confirmed_below;
                st.updates
                    .iter()
                    .find(|u| update_id(u) >= below)
                    .cloned()
                    .map(|u| (hook, u))
            })
        };
        let Some(((url, secret), update)) = next else {
            let _ = tokio::time::timeout(Duration::from_millis(200), notified).await;
            continue;
        };
        let id = update_id(&update);
        let mut request = client.post(&url).json(&update);
        if let Some(secret) = secret {
            request = request.header("X-Telegram-Bot-Api-Secret-Token", secret);
        }
        let status = match request.send().await {
            Ok(response) => response.status().as_u16(),
            Err(_) => 0,
        };
        let delivered = (200..300).contains(&status);
        {
            let mut st = shared.lock();
            st.deliveries.push((id, status));
            if delivered {
                st.confirmed_below = st.confirmed_below.max(id + 1);
                let below = st.confirmed_below;
                st.updates.retain(|u| update_id(u) >= below);
            }
        }
        if !delivered {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

fn chat(chat_id: i64) -> Value {
    if chat_id < 0 {
        json!({ "id": chat_id, "type": "group", "title": "Group" })
    } else {
        json!({ "id": chat_id, "type": "private", "first_name": "Citizen" })
    }
}

fn send_message(shared: &Shared, params: &Value) -> Response {
    let Some(chat_id) = params.get("chat_id").and_then(Value::as_i64) else {
        return reply(
            400,
            json!({ "ok": false, "error_code": 400, "description": "Bad Request: chat not found" }),
        );
    };
    let text = params
        .get("text")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if text.is_empty() {
        return reply(
            400,
            json!({ "ok": false, "error_code": 400, "description": "Bad Request: message text is empty" }),
        );
    }
    if text.encode_utf16().count() > 4096 {
        return reply(
            400,
            json!({ "ok": false, "error_code": 400, "description": "Bad Request: message is too long" }),
        );
    }
    let mut st = shared.lock();
    let id = st.next_message_id;
    st.next_message_id += 1;
    let mut message = json!({
        "message_id": id,
        "date": now(),
        "chat": chat(chat_id),
        "from": { "id": shared.bot_id, "is_bot": true, "first_name": "Seva", "username": "seva_test_bot" },
        "text": text,
    });
    // Only an inline keyboard is part of a Message; reply keyboards are not echoed back.
    if let Some(markup) = params
        .get("reply_markup")
        .filter(|m| m.get("inline_keyboard").is_some())
    {
        message["reply_markup"] = markup.clone();
    }
    st.messages.insert(id, message.clone());
    ok(message)
}

fn edit_reply_markup(shared: &Shared, params: &Value) -> Response {
    let message_id = params
        .get("message_id")
        .and_then(Value::as_i64)
        .unwrap_or_default();
    let mut st = shared.lock();
    let Some(message) = st.messages.get_mut(&message_id) else {
        return reply(
            400,
            json!({ "ok": false, "error_code": 400, "description": "Bad Request: message to edit not found" }),
        );
    };
    let object = message
        .as_object_mut()
        .expect("stored messages are objects");
    let new = params
        .get("reply_markup")
        .filter(|m| m.get("inline_keyboard").is_some())
        .cloned();
    if object.get("reply_markup") == new.as_ref() {
        return reply(
            400,
            json!({ "ok": false, "error_code": 400, "description":
            "Bad Request: message is not modified: specified new message content and reply markup are exactly the same as a current content and reply markup of the message" }),
        );
    }
    match new {
        Some(markup) => object.insert("reply_markup".into(), markup),
        None => object.remove("reply_markup"),
    };
    ok(message.clone())
}

fn canonical_method(method: &str) -> String {
    let mut chars = method.chars();
    chars.next().map_or_else(String::new, |first| {
        first.to_ascii_lowercase().to_string() + chars.as_str()
    })
}

/// JSON bodies as they are; multipart (teloxide sends `setWebhook` that way) field by field.
fn decode_params(headers: &HeaderMap, body: &[u8]) -> Value {
    let content_type = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if let Some(boundary) = content_type.split("boundary=").nth(1) {
        return decode_multipart(body, boundary.trim_matches('"'));
    }
    if body.is_empty() {
        return json!({});
    }
    serde_json::from_slice(body).unwrap_or_else(|_| json!({}))
}

fn decode_multipart(body: &[u8], boundary: &str) -> Value {
    let text = String::from_utf8_lossy(body);
    let mut fields = serde_json::Map::new();
    for part in text.split(&format!("--{boundary}")) {
        let Some((head, value)) = part.split_once("\r\n\r\n") else {
            continue;
        };
        let Some(name) = head
            .split("name=\"")
            .nth(1)
            .and_then(|s| s.split('"').next())
        else {
            continue;
        };
        let value = value.strip_suffix("\r\n").unwrap_or(value);
        let parsed =
            serde_json::from_str(value).unwrap_or_else(|_| Value::String(value.to_owned()));
        fields.insert(name.to_owned(), parsed);
    }
    Value::Object(fields)
}
