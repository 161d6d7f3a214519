//! `GET /webhook/whatsapp` (verification handshake) and `POST /webhook/whatsapp`
//! (notifications), as axum routes the seva server merges into its router.
//!
//! POST order, so that nothing unauthenticated is ever parsed or stored:
//! body limit (413) → signature on the raw bytes (401) → JSON (400) → store messages through the
//! [`WhatsappSink`] (500 on failure, so Meta retries) → store statuses → 200.
//! Authentic notifications that carry nothing usable still get 200 (with a log line), or Meta
//! would retry them for days.
//! <https://developers.facebook.com/documentation/business-messaging/whatsapp/webhooks/overview>

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{DefaultBodyLimit, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use flows::message::Inbound;
use subtle::ConstantTimeEq;

use crate::graph::Secret;
use crate::inbound::{self, DeliveryStatus};
use crate::signature;

/// The route path, fixed by the product spec.
pub const PATH: &str = "/webhook/whatsapp";

/// Largest accepted notification body. Meta's batched notifications can approach 3 MB.
pub const MAX_BODY_BYTES: usize = 4 * 1024 * 1024;

/// What the routes need to know.
#[derive(Clone, Debug)]
pub struct WebhookConfig {
    /// `WHATSAPP_APP_SECRET`: the HMAC key of `X-Hub-Signature-256`. Empty refuses every POST.
    pub app_secret: Secret,
    /// `WHATSAPP_VERIFY_TOKEN`: what Meta must present in the GET handshake. Empty refuses it.
    pub verify_token: Secret,
    /// Body limit; [`MAX_BODY_BYTES`] unless a test wants less.
    pub max_body_bytes: usize,
}

impl WebhookConfig {
    pub fn new(app_secret: impl Into<Secret>, verify_token: impl Into<Secret>) -> WebhookConfig {
        WebhookConfig {
            app_secret: app_secret.into(),
            verify_token: verify_token.into(),
            max_body_bytes: MAX_BODY_BYTES,
        }
    }
}

/// The store could not take the notification. Its text is logged: keep personal data out.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SinkError(pub String);

impl SinkError {
    pub fn new(reason: impl Into<String>) -> SinkError {
        SinkError(reason.into())
    }
}

/// Where parsed notifications go; the seva runtime implements it over its store.
#[async_trait]
pub trait WhatsappSink: Send + Sync {
    /// Stores the messages durably (unique on `provider_id`: a redelivered wamid is a no-op)
    /// and returns only once they are committed. An error answers 500 so Meta delivers the
    /// notification again. Messages arrive in payload order.
    async fn accept(&self, messages: Vec<Inbound>) -> Result<(), SinkError>;

    /// Applies delivery statuses (sent/delivered/read/failed) to outbox rows.
    async fn statuses(&self, statuses: Vec<DeliveryStatus>) -> Result<(), SinkError>;
}

struct AppState {
    cfg: WebhookConfig,
    sink: Arc<dyn WhatsappSink>,
}

/// The WhatsApp webhook routes, with their body limit, ready to `merge` into the server.
pub fn router(cfg: WebhookConfig, sink: Arc<dyn WhatsappSink>) -> Router {
    let limit = cfg.max_body_bytes;
    Router::new()
        .route(PATH, get(handshake).post(notify))
        .layer(DefaultBodyLimit::max(limit))
        .with_state(Arc::new(AppState { cfg, sink }))
}

fn plain(status: StatusCode, body: impl Into<String>) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        body.into(),
    )
        .into_response()
}

/// `GET /webhook/whatsapp?hub.mode=subscribe&hub.verify_token=…&hub.challenge=…`: echo the
/// challenge exactly (as text, never parsed as a number) when mode and token match; else 403.
async fn handshake(
    State(st): State<Arc<AppState>>,
    query: Result<Query<HashMap<String, String>>, QueryRejection>,
) -> Response {
    let Ok(Query(q)) = query else {
        tracing::warn!("whatsapp handshake refused: unreadable query");
        return plain(StatusCode::FORBIDDEN, "forbidden");
    };
    let mode_ok = q.get("hub.mode").map(String::as_str) == Some("subscribe");
    let expected = st.cfg.verify_token.expose().as_bytes();
    let token_ok = !expected.is_empty()
        && q.get("hub.verify_token")
            .is_some_and(|t| bool::from(t.as_bytes().ct_eq(expected)));
    match (mode_ok && token_ok, q.get("hub.challenge")) {
        (true, Some(challenge)) => {
            tracing::info!("whatsapp webhook verified");
            plain(StatusCode::OK, challenge.clone())
        }
        _ => {
            tracing::warn!(mode_ok, token_ok, "whatsapp handshake refused");
            plain(StatusCode::FORBIDDEN, "forbidden")
        }
    }
}

async fn notify(
    State(st): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let body = match body {
        Ok(b) => b,
        Err(rejection) => {
            let status = rejection.status();
            tracing::warn!(
                status = status.as_u16(),
                "whatsapp notification body refused"
            );
            let reason = if status == StatusCode::PAYLOAD_TOO_LARGE {
                "payload too large"
            } else {
                "unreadable body"
            };
            return plain(status, reason);
        }
    };
    let secret = st.cfg.app_secret.expose().as_bytes();
    let verified = if secret.is_empty() {
        Err(signature::SignatureError::Mismatch)
    } else {
        signature::verify_headers(secret, &headers, &body)
    };
    if let Err(why) = verified {
        tracing::warn!(reason = %why, bytes = body.len(), "whatsapp notification refused: bad signature");
        return plain(StatusCode::UNAUTHORIZED, "invalid signature");
    }
    let notification = match inbound::parse(&body) {
        Ok(n) => n,
        Err(e) => {
            tracing::warn!(reason = %e, "whatsapp notification refused: malformed");
            return plain(StatusCode::BAD_REQUEST, e.to_string());
        }
    };
    let inbound::Notification {
        messages,
        statuses,
        ignored,
    } = notification;
    for why in &ignored {
        tracing::info!(reason = %why, "whatsapp notification part ignored");
    }
    let (n_messages, n_statuses) = (messages.len(), statuses.len());
    if !messages.is_empty()
        && let Err(e) = st.sink.accept(messages).await
    {
        tracing::error!(error = %e, messages = n_messages, "whatsapp messages not stored; answering 500 so Meta retries");
        return plain(StatusCode::INTERNAL_SERVER_ERROR, "not stored");
    }
    if !statuses.is_empty()
        && let Err(e) = st.sink.statuses(statuses).await
    {
        tracing::error!(error = %e, statuses = n_statuses, "whatsapp statuses not stored; answering 500 so Meta retries");
        return plain(StatusCode::INTERNAL_SERVER_ERROR, "not stored");
    }
    tracing::debug!(
        messages = n_messages,
        statuses = n_statuses,
        ignored = ignored.len(),
        "whatsapp notification accepted"
    );
    plain(StatusCode::OK, "ok")
}
