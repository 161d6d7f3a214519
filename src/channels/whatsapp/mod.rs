//! The WhatsApp Cloud API channel (the `webhook` crate) wired to the runtime.
//!
//! * [`sink`] — [`RuntimeSink`]: what `POST /webhook/whatsapp` hands its parsed messages and
//!   statuses to. Each message is stored (transaction 1) before the route answers 200; the
//!   citizen's turn, the read receipt and media downloads then run in the background.
//! * [`sender`] — [`WhatsappSender`]: the dispatcher's [`ChannelSender`] over the Graph API,
//!   with the 24-hour customer-service window and the status template (spec §2.9).
//! * [`media`] — [`MediaFetcher`]: downloads photos, documents, voice notes and videos into
//!   `SEVA_MEDIA_DIR` as `<media_id>.<ext>`, retrying while the media id is valid.
//!
//! Facts this is written against: `shared/spec/protocol-facts.md` §1.

pub mod media;
mod read_receipts;
pub mod sender;
pub mod sink;

use std::sync::Arc;

use axum::Router;
use tokio::sync::watch;
use tokio::task::JoinSet;
use webhook::{GraphClient, Secret, WebhookConfig};

use crate::config::{Config, WhatsappConfig};
use crate::outbox::ChannelSender;
use crate::runtime::Runtime;

pub use media::MediaFetcher;
pub use sender::WhatsappSender;
pub use sink::RuntimeSink;

/// The customer-service window as Seva counts it: closed 23 h 50 min after the citizen's last
/// message (Meta's 24 hours, minus a margin for clocks and queues).
pub const WINDOW_SECS: i64 = 23 * 3600 + 50 * 60;

/// The Graph API client for the configured number.
pub fn graph(wa: &WhatsappConfig) -> GraphClient {
    GraphClient::new(
        wa.api_url.clone(),
        wa.phone_number_id.clone(),
        Secret::new(wa.access_token.expose()),
    )
}

/// The WhatsApp sender, when WhatsApp is configured.
pub fn sender(config: &Config) -> Option<Arc<dyn ChannelSender>> {
    let wa = config.whatsapp.as_ref()?;
    Some(Arc::new(WhatsappSender::new(
        graph(wa),
        &config.database_url,
        wa.template_hi.clone(),
        wa.template_en.clone(),
    )))
}

/// The sink `POST /webhook/whatsapp` stores through, when WhatsApp is configured.
pub fn sink(config: &Config, runtime: &Runtime) -> Option<RuntimeSink> {
    let wa = config.whatsapp.as_ref()?;
    let fetcher = MediaFetcher::new(graph(wa), runtime.store().clone(), &config.media_dir)
        .with_clock(runtime.clock().clone());
    Some(RuntimeSink::new(
        runtime.clone(),
        graph(wa),
        Arc::new(fetcher),
    ))
}

/// The webhook routes (`GET`/`POST /webhook/whatsapp`), when WhatsApp is configured.
pub fn routes(config: &Config, runtime: &Runtime) -> Router {
    match (config.whatsapp.as_ref(), sink(config, runtime)) {
        (Some(wa), Some(sink)) => webhook::router(webhook_config(wa), Arc::new(sink)),
        _ => Router::new(),
    }
}

/// The routes' settings: app secret and verify token.
pub fn webhook_config(wa: &WhatsappConfig) -> WebhookConfig {
    WebhookConfig::new(
        Secret::new(wa.app_secret.expose()),
        Secret::new(wa.verify_token.expose()),
    )
}

/// The media download worker (retries and downloads left over by a restart), when WhatsApp
/// is configured; it stops when `stop` turns true.
pub fn spawn_tasks(
    config: &Config,
    runtime: &Runtime,
    stop: watch::Receiver<bool>,
    tasks: &mut JoinSet<()>,
) {
    let Some(wa) = config.whatsapp.as_ref() else {
        return;
    };
    let fetcher = MediaFetcher::new(graph(wa), runtime.store().clone(), &config.media_dir)
        .with_clock(runtime.clock().clone());
    tasks.spawn(Arc::new(fetcher).run(stop));
}
