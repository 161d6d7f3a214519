//! Seva's dialogue engine: pure and channel-agnostic.
//!
//! One call to [`engine::step`] takes the stored [`state::Conversation`], one [`engine::Input`]
//! and a [`engine::Ctx`] (the clock, the citizen's profile, the station directory, fresh random
//! values) and returns the new conversation, abstract [`reply::Reply`]s and [`effect::Effect`]s.
//! Nothing here does IO: the runtime executes effects and feeds their results back as input.
//!
//! * [`message`] — the normalized inbound model every channel adapter produces.
//! * [`reply`] — abstract replies (Fluent ids, choices, hints) each channel renders natively.
//! * [`effect`] — what the runtime must do (file a report, look one up, …) and its results.
//! * [`catalog`] — the Fluent catalog of `locales/en` and `locales/hi`, and rendering.
//! * [`understand`] — reading what citizens type: numbers, dates, phones, IMEI, references, intents.
//! * [`reference`] — report references `K-XXXX-XXXX-X` with their Damm check character.
//! * [`stations`] — the district and police-station directory the dialogue offers.
//! * [`state`] — the stored, versioned conversation state.
//! * [`engine`] — `step` and the journeys.

pub mod catalog;
pub mod delivery;
pub mod effect;
pub mod engine;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
mod journeys;
pub mod lang;
pub mod message;
pub mod reference;
pub mod reply;
pub mod state;
pub mod stations;
pub mod understand;

pub use lang::Lang;
