//! Seva's WhatsApp Cloud API adapter.
//!
//! * [`signature`] — `X-Hub-Signature-256` verification on the raw body.
//! * [`payload`] — the webhook notification's wire structs.
//! * [`inbound`] — pure parsing of a notification into [`flows::message::Inbound`]s and
//!   [`inbound::DeliveryStatus`]es.
//! * [`render`] — pure shaping of rendered replies and templates into Graph API request bodies.
//! * [`graph`] — the Graph API client: send, mark as read, download media; error classification.
//! * [`routes`] — the axum routes `GET/POST /webhook/whatsapp` and the [`routes::WhatsappSink`]
//!   the runtime implements to store what arrives.
//! * `testing` (feature `testing`) — an in-process fake Graph API for tests.
//!
//! Facts this is written against: `shared/spec/protocol-facts.md` §1.

#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
pub mod graph;
pub mod inbound;
pub mod payload;
pub mod render;
pub mod routes;
pub mod signature;
#[cfg(feature = "testing")]
pub mod testing;

pub use graph::{GraphClient, MediaError, Secret};
pub use inbound::{DeliveryStatus, Ignored, Notification, ParseError, StatusKind, parse};
pub use render::{MessageBody, Recipient, render, render_bodies, render_template};
pub use routes::{SinkError, WebhookConfig, WhatsappSink, router};
