//! An in-process fake of the WhatsApp Graph API, for tests (feature `testing`).
//!
//! ```no_run
//! # async fn demo() {
//! use std::time::Duration;
//! use webhook::graph::{GraphClient, Secret};
//! use webhook::testing::{FakeError, FakeGraph};
//!
//! let fake = FakeGraph::start().await;
//! let client = GraphClient::new(fake.url(), "106540352242922", Secret::new("token"));
//! fake.fail_next(FakeError::ReEngagement); // the next send answers 131047
//! // … run the code under test, which sends through `client` …
//! let sent = fake.wait_for(2, Duration::from_secs(5)).await; // bodies of accepted messages
//! # }
//! ```
//!
//! It listens on 127.0.0.1 only and answers:
//! * `POST /{version}/{phone_number_id}/messages`: a message send (success body with a fresh
//!   wamid, or the next scripted [`FakeError`]) or a mark-as-read (`{"success": true}`);
//! * `GET /{version}/{media_id}`: media info whose `url` points back at the fake;
//! * `GET /media/{media_id}`: the media bytes (Bearer token required, as Meta does).
//!
//! Every request is recorded ([`FakeGraph::requests`]). Message sends and media lookups can be
//! scripted to fail ([`FakeGraph::fail_next`], [`FakeGraph::fail_next_media`]). Also here:
//! builders of signed webhook notifications ([`notification`], [`text_message`], …) for
//! driving `POST /webhook/whatsapp`.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use tokio::sync::Notify;

/// The API version in [`FakeGraph::url`].
pub const VERSION: &str = "v23.0";

/// One request the fake received.
#[derive(Debug, Clone)]
pub struct RecordedRequest {
    pub method: String,
    /// Path without the query, e.g. `/v23.0/106540352242922/messages`.
    pub path: String,
    pub query: Option<String>,
    /// Lowercase names, in arrival order.
    pub headers: Vec<(String, String)>,
    /// The body parsed as JSON, when it was JSON.
    pub body: Option<Value>,
    pub raw_body: Vec<u8>,
    /// What the fake answered.
    pub status: u16,
    /// The wamid handed out, for an accepted message send.
    pub wamid: Option<String>,
}

impl RecordedRequest {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// A `POST …/messages` that is not a read receipt.
    pub fn is_message(&self) -> bool {
        self.method == "POST" && self.path.ends_with("/messages") && !self.is_read_receipt()
    }

    /// A mark-as-read call.
    pub fn is_read_receipt(&self) -> bool {
        self.method == "POST"
            && self.path.ends_with("/messages")
            && self
                .body
                .as_ref()
                .and_then(|b| b.get("status"))
                .and_then(Value::as_str)
                == Some("read")
    }
}

/// A scripted failure, answered with Meta's documented error body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FakeError {
    /// 131047: more than 24 hours since the user last wrote.
    ReEngagement,
    /// 130429: the number's throughput was exceeded.
    RateLimit,
    /// 131056: too many messages to one user in a short time.
    PairRateLimit,
    /// 131048: spam rate limit.
    SpamRateLimit,
    /// 190: access token expired (HTTP 401).
    TokenExpired,
    /// 131026: not a WhatsApp user / undeliverable.
    NotWhatsappUser,
    /// 100: invalid parameter.
    InvalidParameter,
    /// HTTP 500 with code 1, "An unknown error has occurred".
    ServerError,
    /// Any Graph error: HTTP status, code, title, details.
    Api {
        status: u16,
        code: i64,
        title: String,
        details: String,
    },
    /// A raw answer (status and body as given, e.g. a proxy's HTML 502).
    Raw { status: u16, body: String },
}

impl FakeError {
    fn api(status: u16, code: i64, title: &str, details: &str) -> (u16, String) {
        let body = json!({
            "error": {
                "message": format!("(#{code}) {title}"),
                "type": "OAuthException",
                "code": code,
                "error_data": { "messaging_product": "whatsapp", "details": details },
                "fbtrace_id": "AbCdEfGhIjKlMnOpQrStUv",
            }
        });
        (status, body.to_string())
    }

    /// HTTP status and body the fake answers with.
    pub fn response(&self) -> (u16, String) {
        match self {
            FakeError::ReEngagement => Self::api(
                400,
                131047,
                "Re-engagement message",
                "Message failed to send because more than 24 hours have passed since the customer last replied to this number.",
            ),
            FakeError::RateLimit => Self::api(
                400,
                130429,
                "Rate limit hit",
                "Cloud API message throughput has been reached.",
            ),
            FakeError::PairRateLimit => Self::api(
                400,
                131056,
                "(Business Account, Consumer Account) pair rate limit hit",
                "Message failed to send because there were too many messages sent from this phone number to the same phone number in a short period of time.",
            ),
            FakeError::SpamRateLimit => Self::api(
                400,
                131048,
                "Spam rate limit hit",
                "Message failed to send because there are restrictions on how many messages can be sent from this phone number.",
            ),
            FakeError::TokenExpired => {
                let body = json!({
                    "error": {
                        "message": "Error validating access token: Session has expired on Friday, 13-Jun-25 04:00:00 PDT.",
                        "type": "OAuthException",
                        "code": 190,
                        "error_subcode": 463,
                        "fbtrace_id": "AbCdEfGhIjKlMnOpQrStUv",
                    }
                });
                (401, body.to_string())
            }
            FakeError::NotWhatsappUser => Self::api(
                400,
                131026,
                "Message Undeliverable",
                "Message failed to send because the recipient is not a WhatsApp user.",
            ),
            FakeError::InvalidParameter => Self::api(
                400,
                100,
                "Invalid parameter",
                "Param text['body'] is required.",
            ),
            FakeError::ServerError => {
                let body = json!({
                    "error": {
                        "message": "An unknown error has occurred.",
                        "type": "OAuthException",
                        "code": 1,
                        "fbtrace_id": "AbCdEfGhIjKlMnOpQrStUv",
                    }
                });
                (500, body.to_string())
            }
            FakeError::Api {
                status,
                code,
                title,
                details,
            } => Self::api(*status, *code, title, details),
            FakeError::Raw { status, body } => (*status, body.clone()),
        }
    }
}

struct FakeMedia {
    mime: String,
    bytes: Vec<u8>,
}

#[derive(Default)]
struct FakeState {
    requests: Vec<RecordedRequest>,
    failures: VecDeque<FakeError>,
    media_failures: VecDeque<FakeError>,
    media: HashMap<String, FakeMedia>,
    next_id: u64,
    required_token: Option<String>,
}

struct Inner {
    state: Mutex<FakeState>,
    changed: Notify,
    addr: SocketAddr,
}

/// The running fake; stops when dropped.
pub struct FakeGraph {
    inner: Arc<Inner>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FakeGraph {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FakeGraph {
    /// Binds 127.0.0.1:0 and serves until dropped.
    pub async fn start() -> FakeGraph {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local addr");
        let inner = Arc::new(Inner {
            state: Mutex::new(FakeState::default()),
            changed: Notify::new(),
            addr,
        });
        let app = Router::new().fallback(handle).with_state(inner.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        FakeGraph { inner, task }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, FakeState> {
        self.inner.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The `WHATSAPP_API_URL` to configure: `http://127.0.0.1:<port>/v23.0`.
    pub fn url(&self) -> String {
        format!("http://{}/{VERSION}", self.inner.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.inner.addr
    }

    /// Every request so far, in arrival order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.state().requests.clone()
    }

    /// Bodies of the message sends the fake accepted (failed attempts and read receipts are
    /// only in [`FakeGraph::requests`]).
    pub fn messages(&self) -> Vec<Value> {
        accepted(&self.state().requests)
    }

    /// The wamids of the inbound messages marked as read.
    pub fn read_receipts(&self) -> Vec<String> {
        self.state()
            .requests
            .iter()
            .filter(|r| r.is_read_receipt())
            .filter_map(|r| {
                r.body
                    .as_ref()?
                    .get("message_id")?
                    .as_str()
                    .map(str::to_owned)
            })
            .collect()
    }

    /// The human-readable text of each accepted message (see [`message_text`]).
    pub fn texts(&self) -> Vec<String> {
        self.messages().iter().map(message_text).collect()
    }

    /// Waits until at least `n` message sends were accepted and returns their bodies; panics
    /// after `timeout` with what did arrive, so a failing test says why.
    pub async fn wait_for(&self, n: usize, timeout: Duration) -> Vec<Value> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.inner.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let got = self.messages();
            if got.len() >= n {
                return got;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                let got = self.messages();
                if got.len() >= n {
                    return got;
                }
                panic!(
                    "FakeGraph: waited {timeout:?} for {n} messages, got {}: {}",
                    got.len(),
                    serde_json::to_string_pretty(&got).unwrap_or_default()
                );
            }
        }
    }

    /// Waits until at least `n` requests of any kind arrived.
    pub async fn wait_for_requests(&self, n: usize, timeout: Duration) -> Vec<RecordedRequest> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.inner.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let got = self.requests();
            if got.len() >= n {
                return got;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                let got = self.requests();
                assert!(
                    got.len() >= n,
                    "FakeGraph: waited {timeout:?} for {n} requests, got {}",
                    got.len()
                );
                return got;
            }
        }
    }

    /// The next message send fails with `err` (queued: call again for the one after).
    /// Read receipts and media calls are not affected.
    pub fn fail_next(&self, err: FakeError) {
        self.state().failures.push_back(err);
    }

    /// The next media lookup (`GET /{version}/{media_id}`) fails with `err` (queued like
    /// [`FakeGraph::fail_next`]).
    pub fn fail_next_media(&self, err: FakeError) {
        self.state().media_failures.push_back(err);
    }

    /// Every request must carry `Authorization: Bearer <token>`; others get a 190 (HTTP 401).
    pub fn require_token(&self, token: &str) {
        self.state().required_token = Some(token.to_owned());
    }

    /// Makes a media id downloadable.
    pub fn add_media(&self, media_id: &str, mime: &str, bytes: impl Into<Vec<u8>>) {
        self.state().media.insert(
            media_id.to_owned(),
            FakeMedia {
                mime: mime.to_owned(),
                bytes: bytes.into(),
            },
        );
    }

    /// Forgets the recorded requests (scripted failures and media stay).
    pub fn clear(&self) {
        self.state().requests.clear();
    }
}

fn accepted(requests: &[RecordedRequest]) -> Vec<Value> {
    requests
        .iter()
        .filter(|r| r.is_message() && r.wamid.is_some())
        .filter_map(|r| r.body.clone())
        .collect()
}

/// The text a person would read in a sent message: `text.body`, the interactive body, or a
/// template's parameters joined by ` | `.
pub fn message_text(m: &Value) -> String {
    if let Some(t) = m.pointer("/text/body").and_then(Value::as_str) {
        return t.to_owned();
    }
    if let Some(t) = m.pointer("/interactive/body/text").and_then(Value::as_str) {
        return t.to_owned();
    }
    if let Some(components) = m.pointer("/template/components").and_then(Value::as_array) {
        return components
            .iter()
            .filter_map(|c| c.get("parameters")?.as_array())
            .flatten()
            .filter_map(|p| p.get("text")?.as_str())
            .collect::<Vec<_>>()
            .join(" | ");
    }
    String::new()
}

fn json_response(status: u16, body: String) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

fn graph_error(status: u16, code: i64, message: &str) -> (u16, String) {
    let body = json!({ "error": { "message": message, "type": "OAuthException", "code": code, "fbtrace_id": "AbCdEfGhIjKlMnOpQrStUv" } });
    (status, body.to_string())
}

async fn handle(
    State(inner): State<Arc<Inner>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().to_owned();
    let json_body: Option<Value> = serde_json::from_slice(&body).ok();
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::to_owned);
    let mut st = inner.state.lock().unwrap_or_else(|e| e.into_inner());
    let token_ok = match (&st.required_token, &token) {
        (Some(required), Some(t)) => required == t,
        (Some(_), None) => false,
        (None, t) => t.as_deref().is_some_and(|t| !t.is_empty()),
    };
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let mut wamid = None;
    let mut content: Option<(String, Vec<u8>)> = None;
    let (status, response_body) = if !token_ok {
        FakeError::TokenExpired.response()
    } else if method == Method::POST && segments.len() == 3 && segments[2] == "messages" {
        let is_read = json_body
            .as_ref()
            .and_then(|b| b.get("status"))
            .and_then(Value::as_str)
            == Some("read");
        if is_read {
            (200, json!({ "success": true }).to_string())
        } else if let Some(err) = st.failures.pop_front() {
            err.response()
        } else {
            match json_body
                .as_ref()
                .filter(|b| b.get("messaging_product").and_then(Value::as_str) == Some("whatsapp"))
            {
                None => FakeError::InvalidParameter.response(),
                Some(b) => {
                    st.next_id += 1;
                    let id = format!("wamid.HBgMOTE5ODc2NTQzMjEwFQIAERgS{:016X}AA==", st.next_id);
                    wamid = Some(id.clone());
                    let contact = match (
                        b.get("to").and_then(Value::as_str),
                        b.get("recipient").and_then(Value::as_str),
                    ) {
                        (Some(to), _) => {
                            let digits: String = to.chars().filter(char::is_ascii_digit).collect();
                            json!({ "input": to, "wa_id": digits })
                        }
                        (None, Some(user)) => json!({ "input": user, "user_id": user }),
                        (None, None) => json!({}),
                    };
                    let body = json!({
                        "messaging_product": "whatsapp",
                        "contacts": [contact],
                        "messages": [{ "id": id, "message_status": "accepted" }],
                    });
                    (200, body.to_string())
                }
            }
        }
    } else if method == Method::GET && segments.len() == 2 && segments[0] == "media" {
        match st.media.get(segments[1]) {
            Some(m) => {
                content = Some((m.mime.clone(), m.bytes.clone()));
                (200, String::new())
            }
            None => (404, "Not Found".to_owned()),
        }
    } else if method == Method::GET && segments.len() == 2 {
        let media_id = segments[1];
        if let Some(err) = st.media_failures.pop_front() {
            err.response()
        } else {
            match st.media.get(media_id) {
                Some(m) => {
                    let sha = {
                        use sha2::Digest;
                        hex::encode(sha2::Sha256::digest(&m.bytes))
                    };
                    let body = json!({
                        "messaging_product": "whatsapp",
                        "url": format!("http://{}/media/{media_id}?ext=1&hash=fake", inner.addr),
                        "mime_type": m.mime,
                        "sha256": sha,
                        "file_size": m.bytes.len().to_string(),
                        "id": media_id,
                    });
                    (200, body.to_string())
                }
                None => graph_error(
                    400,
                    100,
                    "Unsupported get request. Object with ID does not exist, cannot be loaded due to missing permissions, or does not support this operation.",
                ),
            }
        }
    } else {
        graph_error(400, 100, "Unknown path components")
    };
    st.requests.push(RecordedRequest {
        method: method.to_string(),
        path,
        query: uri.query().map(str::to_owned),
        headers: headers
            .iter()
            .map(|(n, v)| {
                (
                    n.as_str().to_owned(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect(),
        body: json_body,
        raw_body: body.to_vec(),
        status,
        wamid,
    });
    drop(st);
    inner.changed.notify_waiters();
    match content {
        Some((mime, bytes)) => {
            (StatusCode::OK, [(header::CONTENT_TYPE, mime)], bytes).into_response()
        }
        None => json_response(status, response_body),
    }
}

// ---- webhook notification builders -------------------------------------------------------

/// The fake business number's id in built notifications.
pub const PHONE_NUMBER_ID: &str = "106540352242922";

/// A `whatsapp_business_account` notification with one entry and one `messages` change.
/// `contacts` are `(wa_id, profile name)`.
pub fn notification(
    contacts: &[(&str, &str)],
    messages: Vec<Value>,
    statuses: Vec<Value>,
) -> Value {
    let mut value = json!({
        "messaging_product": "whatsapp",
        "metadata": { "display_phone_number": "15550783881", "phone_number_id": PHONE_NUMBER_ID },
    });
    if !contacts.is_empty() {
        value["contacts"] = contacts
            .iter()
            .map(|(wa_id, name)| json!({ "profile": { "name": name }, "wa_id": wa_id }))
            .collect();
    }
    if !messages.is_empty() {
        value["messages"] = Value::Array(messages);
    }
    if !statuses.is_empty() {
        value["statuses"] = Value::Array(statuses);
    }
    json!({
        "object": "whatsapp_business_account",
        "entry": [{ "id": "102290129340398", "changes": [{ "value": value, "field": "messages" }] }],
    })
}

fn message(from: &str, wamid: &str, kind: &str, content: Value) -> Value {
    let mut m = json!({ "from": from, "id": wamid, "timestamp": "1749416383", "type": kind });
    m[kind] = content;
    m
}

/// A typed text message.
pub fn text_message(from: &str, wamid: &str, text: &str) -> Value {
    message(from, wamid, "text", json!({ "body": text }))
}

/// A tap on a reply button Seva sent.
pub fn button_reply(from: &str, wamid: &str, id: &str, title: &str) -> Value {
    message(
        from,
        wamid,
        "interactive",
        json!({ "type": "button_reply", "button_reply": { "id": id, "title": title } }),
    )
}

/// A tap on a list row Seva sent.
pub fn list_reply(from: &str, wamid: &str, id: &str, title: &str) -> Value {
    message(
        from,
        wamid,
        "interactive",
        json!({ "type": "list_reply", "list_reply": { "id": id, "title": title } }),
    )
}

/// A shared current location.
pub fn location_message(from: &str, wamid: &str, latitude: f64, longitude: f64) -> Value {
    message(
        from,
        wamid,
        "location",
        json!({ "latitude": latitude, "longitude": longitude }),
    )
}

/// A photo; pair it with [`FakeGraph::add_media`].
pub fn image_message(from: &str, wamid: &str, media_id: &str, caption: Option<&str>) -> Value {
    let mut image = json!({ "mime_type": "image/jpeg", "sha256": "4654+8g=", "id": media_id });
    if let Some(c) = caption {
        image["caption"] = json!(c);
    }
    message(from, wamid, "image", image)
}

/// A delivery status for a message Seva sent; `code` makes it `failed` with that error.
pub fn status(
    wamid: &str,
    status: &str,
    recipient: &str,
    opaque: Option<&str>,
    code: Option<i64>,
) -> Value {
    let mut s = json!({ "id": wamid, "status": status, "timestamp": "1749416400", "recipient_id": recipient });
    if let Some(o) = opaque {
        s["biz_opaque_callback_data"] = json!(o);
    }
    if let Some(c) = code {
        s["errors"] = json!([{ "code": c, "title": "error", "message": "error", "error_data": { "details": "error" } }]);
    }
    s
}

/// Serializes a notification and signs it: `(body, X-Hub-Signature-256 value)`.
pub fn signed(app_secret: &str, notification: &Value) -> (Vec<u8>, String) {
    let body = serde_json::to_vec(notification).expect("json");
    let sig = crate::signature::sign(app_secret.as_bytes(), &body);
    (body, sig)
}
