//! The back-office event webhook (spec §4): each `report.*` event row of the outbox is POSTed
//! as JSON to `SEVA_EVENTS_URL`, signed with `SEVA_EVENTS_SECRET`, and retried by the
//! dispatcher until the receiver answers 2xx.
//!
//! ```text
//! POST {SEVA_EVENTS_URL}
//! Content-Type: application/json
//! X-Seva-Event-Id: 42                      (the outbox id: the same on every retry)
//! X-Seva-Timestamp: 1795867200             (unix seconds of this attempt)
//! X-Seva-Signature: sha256=<hex HMAC-SHA256 of "1795867200.<body>">
//!
//! {"type":"report.created","version":1,"occurred_at":"2026-11-28T12:00:00Z","report":{…}}
//! ```
//!
//! A receiver recomputes the signature over the timestamp, a dot and the raw body, compares
//! in constant time, refuses old timestamps (replays) and deduplicates on the event id.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use flows::delivery::SendOutcome;
use flows::message::Channel;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::config::{Config, EventsConfig, Secret};
use crate::metrics;
use crate::outbox::{ChannelSender, OutboundMessage};

/// When the receiver asks us to wait (429) without saying how long.
const DEFAULT_RETRY_AFTER: u64 = 30;

/// The events sender, when `SEVA_EVENTS_URL` is set.
pub fn sender(config: &Config) -> Option<Arc<dyn ChannelSender>> {
    config
        .events
        .as_ref()
        .map(|events| Arc::new(EventsSender::new(events)) as Arc<dyn ChannelSender>)
}

/// `sha256=<hex>` of HMAC-SHA256 over `"<timestamp>.<body>"`.
pub fn signature(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes a key of any length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// POSTs signed events to one URL.
pub struct EventsSender {
    http: reqwest::Client,
    url: String,
    secret: Secret,
}

impl EventsSender {
    pub fn new(config: &EventsConfig) -> EventsSender {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(15))
            // A redirected POST turns into a GET: treat a redirect as the receiver's mistake.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("seva/", env!("CARGO_PKG_VERSION")))
            .build()
            .expect("reqwest client with static settings");
        EventsSender {
            http,
            url: config.url.clone(),
            secret: config.secret.clone(),
        }
    }
}

/// What a receiver's HTTP status means for the event. Only a 2xx acknowledges it (spec §4:
/// "retried until acknowledged"): a 4xx from a receiver being redeployed or misconfigured is
/// retried with backoff like a 5xx, and the outbox age gauge for `events` shows the stall.
pub fn classify(status: u16, retry_after: Option<u64>) -> SendOutcome {
    match status {
        200..=299 => SendOutcome::Sent {
            provider_id: format!("http-{status}"),
        },
        429 => SendOutcome::RetryAfter {
            secs: retry_after.unwrap_or(DEFAULT_RETRY_AFTER),
        },
        _ => SendOutcome::Transient {
            reason: format!("receiver answered HTTP {status}"),
        },
    }
}

#[async_trait]
impl ChannelSender for EventsSender {
    fn channel(&self) -> Channel {
        Channel::Events
    }

    async fn send(&self, msg: &OutboundMessage) -> SendOutcome {
        let Some(event) = &msg.event else {
            return SendOutcome::Permanent {
                code: "content".to_owned(),
                reason: "event row without an event body".to_owned(),
            };
        };
        let body = match serde_json::to_vec(event) {
            Ok(b) => b,
            Err(e) => {
                return SendOutcome::Permanent {
                    code: "content".to_owned(),
                    reason: e.to_string(),
                };
            }
        };
        let timestamp = chrono::Utc::now().timestamp();
        let signature = signature(self.secret.expose().as_bytes(), timestamp, &body);
        let result = self
            .http
            .post(&self.url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header("X-Seva-Event-Id", msg.id.to_string())
            .header("X-Seva-Timestamp", timestamp.to_string())
            .header("X-Seva-Signature", signature)
            .body(body)
            .send()
            .await;
        let outcome = match result {
            Ok(resp) => {
                let retry_after = resp
                    .headers()
                    .get(reqwest::header::RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.trim().parse::<u64>().ok());
                let outcome = classify(resp.status().as_u16(), retry_after);
                tracing::debug!(
                    outbox = msg.id,
                    status = resp.status().as_u16(),
                    "event posted"
                );
                outcome
            }
            // The error's text names the URL, which may carry a secret in its query.
            Err(e) => SendOutcome::Transient {
                reason: if e.is_timeout() {
                    "event receiver timed out".to_owned()
                } else if e.is_connect() {
                    "cannot connect to the event receiver".to_owned()
                } else {
                    "event request failed".to_owned()
                },
            },
        };
        metrics::provider_outcome(Channel::Events, &outcome);
        outcome
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_is_hmac_sha256_of_timestamp_dot_body() {
        // Independently: printf '%s' '1700000000.{"a":1}' | openssl dgst -sha256 -hmac key
        assert_eq!(
            signature(b"key", 1_700_000_000, br#"{"a":1}"#),
            "sha256=a438e398bfafc57e4396bb7fc2304422f0f768e965d073ca313cb52e22e6ad03"
        );
    }

    #[test]
    fn statuses_map_to_outcomes() {
        assert!(matches!(classify(204, None), SendOutcome::Sent { .. }));
        assert_eq!(classify(429, Some(7)), SendOutcome::RetryAfter { secs: 7 });
        assert!(matches!(classify(503, None), SendOutcome::Transient { .. }));
        assert!(matches!(classify(408, None), SendOutcome::Transient { .. }));
        assert!(matches!(classify(400, None), SendOutcome::Transient { .. }));
        assert!(matches!(classify(301, None), SendOutcome::Transient { .. }));
    }
}
