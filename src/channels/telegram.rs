//! The telegram channel wired to the runtime. (Being written.)

use std::sync::Arc;

use axum::Router;
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::config::Config;
use crate::outbox::ChannelSender;
use crate::runtime::Runtime;

/// The telegram sender, when configured.
pub fn sender(_config: &Config) -> Option<Arc<dyn ChannelSender>> {
    None
}

/// The telegram webhook routes, when configured.
pub fn routes(_config: &Config, _runtime: &Runtime) -> Router {
    Router::new()
}

/// Background tasks, when configured.
pub fn spawn_tasks(
    _config: &Config,
    _runtime: &Runtime,
    _stop: watch::Receiver<bool>,
    _tasks: &mut JoinSet<()>,
) {
}
