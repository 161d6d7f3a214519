//! Channel wiring: each adapter crate bound to the runtime — inbound sinks that store before
//! acknowledging, outbound senders for the dispatcher, and the routes and tasks `serve` runs.
//!
//! * [`whatsapp`] — the WhatsApp Cloud API (`webhook` crate).
//! * [`telegram`] — the Telegram Bot API (`bot` crate), polling or webhook.
//! * [`events`] — the back-office event webhook.

pub mod events;
pub mod telegram;
pub mod whatsapp;

use std::sync::Arc;

use axum::Router;
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::config::Config;
use crate::outbox::ChannelSender;
use crate::runtime::Runtime;

/// The senders `config` enables.
pub fn senders(config: &Config) -> Vec<Arc<dyn ChannelSender>> {
    let mut out = Vec::new();
    out.extend(whatsapp::sender(config));
    out.extend(telegram::sender(config));
    out.extend(events::sender(config));
    out
}

/// The webhook routes of the enabled channels.
pub fn routes(config: &Config, runtime: &Runtime) -> Router {
    Router::new()
        .merge(whatsapp::routes(config, runtime))
        .merge(telegram::routes(config, runtime))
}

/// Background tasks of the enabled channels (Telegram long polling, WhatsApp media
/// downloads), stopped by `stop`.
pub fn spawn_tasks(
    config: &Config,
    runtime: &Runtime,
    stop: watch::Receiver<bool>,
    tasks: &mut JoinSet<()>,
) {
    whatsapp::spawn_tasks(config, runtime, stop.clone(), tasks);
    telegram::spawn_tasks(config, runtime, stop, tasks);
}
