//! The terminal channel (`seva chat`): prints each message with its choices as numbered lines.

use std::io::Write;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use flows::delivery::SendOutcome;
use flows::message::Channel;

use super::{ChannelSender, OutboundMessage};

/// Writes messages to a terminal (stdout in `seva chat`), one blank line between messages.
#[derive(Clone)]
pub struct TerminalSender {
    out: Arc<Mutex<Box<dyn Write + Send>>>,
}

impl TerminalSender {
    pub fn new(out: Box<dyn Write + Send>) -> TerminalSender {
        TerminalSender {
            out: Arc::new(Mutex::new(out)),
        }
    }

    pub fn stdout() -> TerminalSender {
        TerminalSender::new(Box::new(std::io::stdout()))
    }
}

#[async_trait]
impl ChannelSender for TerminalSender {
    fn channel(&self) -> Channel {
        Channel::Terminal
    }

    async fn send(&self, msg: &OutboundMessage) -> SendOutcome {
        let text = msg.rendered.with_numbered_choices();
        let mut out = match self.out.lock() {
            Ok(out) => out,
            Err(poisoned) => poisoned.into_inner(),
        };
        match writeln!(out, "{text}\n").and_then(|()| out.flush()) {
            Ok(()) => SendOutcome::Sent {
                provider_id: format!("terminal-{}", msg.id),
            },
            // A closed pipe will not reopen; the row stays for the next `seva chat`.
            Err(e) => SendOutcome::Transient {
                reason: format!("terminal write failed: {e}"),
            },
        }
    }
}
