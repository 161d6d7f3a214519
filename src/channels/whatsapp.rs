//! The whatsapp channel wired to the runtime. (Being written.)

use std::sync::Arc;

use axum::Router;

use crate::config::Config;
use crate::outbox::ChannelSender;
use crate::runtime::Runtime;

/// The whatsapp sender, when configured.
pub fn sender(_config: &Config) -> Option<Arc<dyn ChannelSender>> {
    None
}

/// The whatsapp webhook routes, when configured.
pub fn routes(_config: &Config, _runtime: &Runtime) -> Router {
    Router::new()
}
