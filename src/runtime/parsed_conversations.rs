//! The conversations this process saved last, kept parsed, so the next turn of a citizen who
//! writes again does not parse the JSON it just wrote.
//!
//! The database stays the truth: an entry is used only when the stored JSON the turn read is,
//! byte for byte, the JSON the entry was saved as. Another replica's save, a rolled-back
//! batch or a restore from backup changes the stored text, and the turn parses it as before.
//! `Conversation` round-trips through its JSON (`flows/tests/properties.rs` checks every step),
//! so the parsed value kept here is the one parsing would give.

use std::sync::atomic::{AtomicU64, Ordering};

use dashmap::DashMap;
use flows::state::Conversation;

use super::restore;

/// Citizens kept at most: the ones in the middle of a conversation right now. An entry is
/// ~340 bytes plus its JSON. In a run that left 360,000 citizens holding state (issue 7's
/// limit: 100 MiB), 8,192 added 12–15 MiB to the peak RSS and 2,048 adds 2–5. Past it,
/// the entries not used lately go.
const KEPT: usize = 2048;

pub(super) struct ParsedConversations {
    entries: DashMap<i64, Entry, foldhash::fast::RandomState>,
    /// Saves so far: the age of an entry is counted in saves made since it was last touched.
    saves: AtomicU64,
}

struct Entry {
    json: Box<str>,
    state: Conversation,
    /// `saves` when it was saved or last used.
    used: u64,
}

impl ParsedConversations {
    pub(super) fn new() -> ParsedConversations {
        ParsedConversations {
            entries: DashMap::default(),
            saves: AtomicU64::new(0),
        }
    }

    /// What [`restore`] gives for `stored`, from the entry saved as exactly `stored` if there
    /// is one.
    pub(super) fn restore(&self, citizen_id: i64, stored: Option<&str>) -> (Conversation, bool) {
        if let Some(json) = stored
            && let Some(mut entry) = self.entries.get_mut(&citizen_id)
            && *entry.json == *json
        {
            entry.used = self.saves.load(Ordering::Relaxed);
            return (entry.state.clone(), false);
        }
        restore(citizen_id, stored)
    }

    /// Keeps `state`, saved as `json`, for the citizen's next turn.
    pub(super) fn saved(&self, citizen_id: i64, json: &str, state: Conversation) {
        let now = self.saves.fetch_add(1, Ordering::Relaxed);
        if self.entries.len() >= KEPT && !self.entries.contains_key(&citizen_id) {
            // Entries not touched in the last `KEPT / 2` saves go (about half of the map when
            // every save is a new citizen); if that is not enough, all go.
            let mark = now.saturating_sub(KEPT as u64 / 2);
            self.entries.retain(|_, e| e.used >= mark);
            if self.entries.len() >= KEPT {
                self.entries.clear();
            }
        }
        self.entries.insert(
            citizen_id,
            Entry {
                json: json.into(),
                state,
                used: now,
            },
        );
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.entries.len()
    }
}

#[cfg(test)]
mod tests {
    use flows::state::Step;

    use super::*;

    fn at_menu(last_seen: i64) -> Conversation {
        Conversation {
            step: Step::Menu,
            last_seen,
            ..Conversation::default()
        }
    }

    #[test]
    fn a_turn_gets_what_it_saved_and_a_changed_row_is_parsed_again() {
        let kept = ParsedConversations::new();
        let saved = at_menu(100);
        let json = saved.to_json();
        kept.saved(7, &json, saved.clone());
        assert_eq!(kept.restore(7, Some(&json)), (saved, false));

        // Another replica saved since: its row wins, not the entry.
        let theirs = Conversation {
            step: Step::StatusAsk,
            ..at_menu(200)
        };
        assert_eq!(
            kept.restore(7, Some(&theirs.to_json())),
            (theirs.clone(), false)
        );
        // The row is gone (the citizen deleted their data): a fresh conversation.
        assert_eq!(kept.restore(7, None), (Conversation::default(), false));
        // Unreadable text starts over, as without the entries.
        assert_eq!(
            kept.restore(7, Some("{not json")),
            (Conversation::default(), true)
        );
        // Another citizen with the same text does not get this citizen's entry by id, but
        // parses to the same state.
        assert_eq!(kept.restore(8, Some(&json)), (at_menu(100), false));
    }

    #[test]
    fn the_entries_stay_bounded_and_keep_the_citizens_in_use() {
        let kept = ParsedConversations::new();
        let busy = at_menu(1);
        let busy_json = busy.to_json();
        kept.saved(-1, &busy_json, busy.clone());
        for id in 0..(3 * KEPT as i64) {
            let c = at_menu(id);
            kept.saved(id, &c.to_json(), c);
            if id % 64 == 0 {
                // The busy citizen keeps writing.
                let _ = kept.restore(-1, Some(&busy_json));
            }
            assert!(kept.len() <= KEPT);
        }
        assert_eq!(kept.restore(-1, Some(&busy_json)), (busy, false));
        assert!(kept.entries.contains_key(&-1));
    }
}
