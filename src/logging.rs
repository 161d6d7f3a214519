//! Log lines to stderr, as text or JSON (`SEVA_LOG_FORMAT`), filtered by `RUST_LOG`.
//!
//! Citizens appear in logs by their internal id only; phone numbers and message text are never
//! logged at info level or above.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

/// Installs the global subscriber; `default` is the filter when `RUST_LOG` is unset. A second
/// call (tests) keeps the first subscriber.
pub fn init(format: LogFormat, default: &str) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}
