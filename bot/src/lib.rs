//! Seva's Telegram adapter, on teloxide's types and requests (not its `Dispatcher`).
//!
//! * [`inbound`] — a Telegram `Update` → [`TelegramEvent`]s carrying normalized
//!   [`flows::message::Inbound`] messages (pure).
//! * [`render`] — a [`flows::catalog::Rendered`] reply → `sendMessage` text and keyboards (pure).
//! * [`sender`] — [`TelegramSender`]: sends replies for the outbox and classifies failures into
//!   [`flows::delivery::SendOutcome`]; direct calls (answer callbacks, remove keyboards,
//!   commands, webhook set-up).
//! * [`transport`] — long polling that stores before it confirms, and the `POST
//!   /webhook/telegram` route.
//! * `testing` (feature `testing`) — an in-process fake Bot API for end-to-end tests.

#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
pub mod inbound;
pub mod render;
pub mod sender;
#[cfg(feature = "testing")]
pub mod testing;
pub mod transport;

pub use inbound::{CallbackInfo, TelegramEvent};
pub use render::RenderOptions;
pub use sender::{TelegramError, TelegramSender, telegram_bot};
pub use transport::{PollingConfig, SinkError, TelegramSink, run_polling, webhook_router};
