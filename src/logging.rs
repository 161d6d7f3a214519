//! Log lines to stderr, as text or JSON (`SEVA_LOG_FORMAT`), filtered by `RUST_LOG`.
//!
//! JSON: one object per line — `timestamp`, `level`, `target`, the event's fields and
//! `message` at the top level — for log shippers.
//!
//! What may appear (spec §6, "Private"): citizens by their internal id (`citizen = 42`),
//! reports by reference, outbox rows by id, provider error codes. Never at info level or
//! above: a phone number (a WhatsApp `wa_id` is one — use [`mask_phone`] if one must be
//! named), a name, anything the citizen wrote or was sent, a secret. `RUST_LOG=debug` may
//! show more, for a developer's own machine.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

/// Installs the global subscriber; `default` is the filter when `RUST_LOG` is unset. A second
/// call (tests) keeps the first subscriber.
pub fn init(format: LogFormat, default: &str) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => builder
            .with_ansi(std::io::stderr().is_terminal())
            .try_init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(false)
            .with_ansi(false)
            .try_init(),
    };
}

/// A phone number fit for a log line: `+91******3210`; anything else keeps at most its last
/// four characters.
pub fn mask_phone(phone: &str) -> String {
    flows::understand::phone::mask(phone)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phone_numbers_are_masked() {
        assert_eq!(mask_phone("+919876543210"), "+91******3210");
        assert!(!mask_phone("919876543210").contains("98765"));
    }
}
