//! The back-office event webhook: signed `report.created` / `report.status_changed` POSTs.
//! (Being written.)

use std::sync::Arc;

use crate::config::Config;
use crate::outbox::ChannelSender;

/// The events sender, when `SEVA_EVENTS_URL` is set.
pub fn sender(_config: &Config) -> Option<Arc<dyn ChannelSender>> {
    None
}
