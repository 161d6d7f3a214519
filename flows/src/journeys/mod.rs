//! The journeys. Placeholder until the engine lands: always shows the main menu.
use crate::engine::{Ctx, Input, Outcome};
use crate::reply::{Reply, Text};
use crate::state::{Conversation, Step};
use crate::Lang;

pub(crate) fn step(mut state: Conversation, _input: &Input, ctx: &Ctx<'_>) -> Outcome {
    state.step = Step::Menu;
    state.last_seen = ctx.now;
    Outcome {
        state,
        lang: ctx.profile.lang.unwrap_or(Lang::Hi),
        replies: vec![Reply::text(Text::new("menu-prompt"))],
        effects: vec![],
    }
}
