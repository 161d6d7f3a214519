//! The echo gateway: the baseline every Seva figure is a ratio to. A bare axum server with no
//! state and no database: a webhook in (WhatsApp notification or Telegram update), 200 out,
//! and one fixed reply POSTed to the provider API for the sender. Its only work is what any
//! gateway must do: read the body, find the sender, send one message over HTTP. With
//! `--telegram-polling` it also fetches Telegram updates with `getUpdates` long polling, one
//! call at a time as Telegram allows, and replies to each the same way.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use serde_json::{Value, json};

/// The one reply the echo gateway sends.
pub const REPLY: &str = "Thank you, we have received your message.";

pub struct EchoConfig {
    pub listen: SocketAddr,
    /// `http://127.0.0.1:<port>/v23.0`.
    pub graph_url: String,
    pub phone_number_id: String,
    pub access_token: String,
    /// `http://127.0.0.1:<port>`.
    pub telegram_url: String,
    pub bot_token: String,
    pub telegram_polling: bool,
}

struct Echo {
    http: reqwest::Client,
    graph_messages: String,
    bearer: String,
    telegram_send: String,
    telegram_get_updates: String,
}

pub async fn serve(cfg: EchoConfig) -> std::io::Result<()> {
    let http = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(10))
        .build()
        .map_err(std::io::Error::other)?;
    let echo = Arc::new(Echo {
        http,
        graph_messages: format!("{}/{}/messages", cfg.graph_url, cfg.phone_number_id),
        bearer: format!("Bearer {}", cfg.access_token),
        telegram_send: format!("{}/bot{}/sendMessage", cfg.telegram_url, cfg.bot_token),
        telegram_get_updates: format!("{}/bot{}/getUpdates", cfg.telegram_url, cfg.bot_token),
    });
    if cfg.telegram_polling {
        tokio::spawn(poll_telegram(echo.clone()));
    }
    let app = Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(|| async { "ready" }))
        .route("/webhook/whatsapp", post(whatsapp))
        .route("/webhook/telegram", post(telegram))
        .with_state(echo);
    let listener = tokio::net::TcpListener::bind(cfg.listen).await?;
    axum::serve(listener, app).await
}

fn send(echo: &Arc<Echo>, url: String, bearer: Option<String>, body: Value) {
    let echo = echo.clone();
    tokio::spawn(async move {
        let mut request = echo.http.post(url).json(&body);
        if let Some(b) = bearer {
            request = request.header("authorization", b);
        }
        if let Ok(response) = request.send().await {
            let _ = response.bytes().await;
        }
    });
}

async fn whatsapp(State(echo): State<Arc<Echo>>, body: Bytes) -> StatusCode {
    let Ok(v) = serde_json::from_slice::<Value>(&body) else {
        return StatusCode::BAD_REQUEST;
    };
    let Some(from) = v
        .pointer("/entry/0/changes/0/value/messages/0/from")
        .and_then(Value::as_str)
    else {
        return StatusCode::OK;
    };
    let reply = json!({
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": from,
        "type": "text",
        "text": { "body": REPLY },
    });
    send(
        &echo,
        echo.graph_messages.clone(),
        Some(echo.bearer.clone()),
        reply,
    );
    StatusCode::OK
}

async fn telegram(State(echo): State<Arc<Echo>>, body: Bytes) -> StatusCode {
    let Ok(v) = serde_json::from_slice::<Value>(&body) else {
        return StatusCode::BAD_REQUEST;
    };
    reply_to_update(&echo, &v);
    StatusCode::OK
}

fn reply_to_update(echo: &Arc<Echo>, update: &Value) {
    if let Some(chat) = update.pointer("/message/chat/id").and_then(Value::as_i64) {
        let reply = json!({ "chat_id": chat, "text": REPLY });
        send(echo, echo.telegram_send.clone(), None, reply);
    }
}

/// The long-polling loop: each batch's replies go out concurrently while the next
/// `getUpdates` (whose `offset` confirms the batch) is already waiting.
async fn poll_telegram(echo: Arc<Echo>) {
    let mut offset = 0i64;
    loop {
        let request = json!({ "offset": offset, "limit": 100, "timeout": 5 });
        let batch = match echo
            .http
            .post(&echo.telegram_get_updates)
            .json(&request)
            .send()
            .await
        {
            Ok(response) => response.json::<Value>().await.ok(),
            Err(_) => None,
        };
        let Some(batch) = batch else {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        for update in batch["result"].as_array().into_iter().flatten() {
            if let Some(id) = update["update_id"].as_i64() {
                offset = offset.max(id + 1);
            }
            reply_to_update(&echo, update);
        }
    }
}
