//! `step`: one turn of the dialogue. Pure: time, randomness and data arrive in [`Ctx`] and
//! [`Input`]; the outcome is data.

use chrono::NaiveDate;

use crate::Lang;
use crate::catalog::Catalog;
use crate::effect::{Effect, EffectResult};
use crate::message::{Body, Channel};
use crate::reply::Reply;
use crate::state::Conversation;
use crate::stations::Directory;

pub use crate::journeys::COMPLAINT_CATEGORIES;

/// What Seva knows about the citizen, kept by the store outside the conversation.
#[derive(Debug, Clone, PartialEq)]
pub struct Profile {
    pub channel: Channel,
    /// The chosen language; `None` until the citizen picks one.
    pub lang: Option<Lang>,
    /// A language hint from the channel (Telegram `language_code`, Devanagari text).
    pub lang_hint: Option<Lang>,
    /// The sender's number as the channel proves it (WhatsApp), E.164.
    pub channel_phone: Option<String>,
    /// A mobile number the citizen confirmed earlier, E.164.
    pub phone: Option<String>,
    pub pushes_enabled: bool,
}

/// Fresh values for this turn; the runtime draws them, tests fix them.
#[derive(Debug, Clone, PartialEq)]
pub struct Fresh {
    /// Random values for a new reference (only the low 5 bits of each are used).
    pub reference: [u8; 8],
    /// A unique id for a new draft.
    pub draft_id: String,
}

/// Everything `step` may look at besides the state and the input.
pub struct Ctx<'a> {
    /// Unix seconds.
    pub now: i64,
    /// Today's date in `SEVA_TIMEZONE`.
    pub today: NaiveDate,
    pub profile: &'a Profile,
    pub stations: &'a Directory,
    pub catalog: &'a Catalog,
    pub fresh: Fresh,
    /// Complaint categories the operator opened to anonymous tips
    /// (`SEVA_ANONYMOUS_CATEGORIES`): the journey offers to file them without name and number.
    pub anonymous_categories: &'a [String],
}

/// One input to the dialogue.
#[derive(Debug, Clone, PartialEq)]
pub enum Input {
    /// A message from the citizen.
    Message(Body),
    /// The result of an effect the previous step asked for.
    Result(EffectResult),
    /// The stored state could not be read and was reset (see `state::Loaded::Reset`).
    StateReset(Body),
}

/// What one step decided.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub state: Conversation,
    /// The language the replies are written in (after any language change in this step).
    pub lang: Lang,
    pub replies: Vec<Reply>,
    pub effects: Vec<Effect>,
}

/// One turn: the state after `input`, the replies to send and the effects to run.
pub fn step(state: Conversation, input: &Input, ctx: &Ctx<'_>) -> Outcome {
    crate::journeys::step(state, input, ctx)
}
