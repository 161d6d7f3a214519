//! The stored conversation state. Serialized as JSON with a schema version; a state that no
//! longer parses after a deploy is replaced by a fresh one, and the citizen is told politely.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::effect::{Attachment, Custody, Place};
use crate::reference::ReportKind;

/// Bump when a change to [`Conversation`] cannot read older JSON.
pub const STATE_VERSION: u32 = 1;

/// A draft idle this long is offered for resumption on return.
pub const IDLE_AFTER_SECS: i64 = 30 * 60;
/// A draft idle this long is dropped.
pub const DRAFT_KEPT_SECS: i64 = 24 * 60 * 60;

/// Everything the dialogue remembers about one citizen between messages.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Conversation {
    pub version: u32,
    pub step: Step,
    /// The report being drafted, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub draft: Option<Draft>,
    /// Unix seconds of the citizen's last message.
    pub last_seen: i64,
    /// A draft was dropped while the citizen was away ([`Conversation::expire_draft`]): the
    /// next message is told so before the menu.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub draft_expired: bool,
}

impl Default for Conversation {
    fn default() -> Self {
        Conversation {
            version: STATE_VERSION,
            step: Step::New,
            draft: None,
            last_seen: 0,
            draft_expired: false,
        }
    }
}

/// Loaded state, or why it had to start over.
#[derive(Debug, Clone, PartialEq)]
pub enum Loaded {
    Fresh(Conversation),
    Restored(Conversation),
    /// Stored state from an older or broken schema: start again and apologise.
    Reset(Conversation),
}

impl Conversation {
    /// Reads stored JSON (`None` for a citizen with no conversation yet).
    pub fn load(stored: Option<&str>) -> Loaded {
        let Some(json) = stored else {
            return Loaded::Fresh(Conversation::default());
        };
        match serde_json::from_str::<Conversation>(json) {
            Ok(c) if c.version == STATE_VERSION => Loaded::Restored(c),
            _ => Loaded::Reset(Conversation::default()),
        }
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("conversation state serializes")
    }

    /// Drops a draft idle for more than [`DRAFT_KEPT_SECS`] at `now`, so its personal data
    /// does not wait for a citizen who may never come back; the conversation returns to the
    /// menu and remembers to tell the citizen. Returns whether anything was dropped.
    pub fn expire_draft(&mut self, now: i64) -> bool {
        if self.draft.is_none() || now.saturating_sub(self.last_seen) <= DRAFT_KEPT_SECS {
            return false;
        }
        self.draft = None;
        self.step = match &self.step {
            Step::New => Step::New,
            // The language question stays; it no longer resumes into the dropped journey.
            Step::Language { lookup, .. } => Step::Language {
                resume: None,
                lookup: *lookup,
            },
            _ => Step::Menu,
        };
        self.draft_expired = true;
        true
    }

    /// True while a journey is collecting a report.
    pub fn in_journey(&self) -> bool {
        self.draft.is_some()
            && !matches!(
                self.step,
                Step::New | Step::Menu | Step::StatusAsk | Step::DeleteConfirm
            )
    }
}

/// A field a report journey asks for, in the journey's order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Field {
    Category,
    /// Whether to file without the citizen's name and number (categories the operator
    /// opened to anonymous tips only).
    Anonymous,
    Description,
    Identifier,
    When,
    Place,
    District,
    Station,
    Custody,
    Name,
    Phone,
    Attachments,
    Consent,
}

/// Where the citizen is in the dialogue.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "step", rename_all = "snake_case")]
pub enum Step {
    /// Never spoken to, or reset.
    New,
    /// Choosing a language; `resume` is where to go back to afterwards.
    Language {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        resume: Option<Box<Step>>,
        /// A report to look up once the language is chosen (a Telegram deep link).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        lookup: Option<crate::reference::Reference>,
    },
    /// At the main menu.
    Menu,
    /// A report journey asks for `field`. `page` pages long lists; `editing` returns to review.
    Ask {
        field: Field,
        #[serde(default)]
        page: u16,
        #[serde(default)]
        editing: bool,
    },
    /// Reviewing the draft before confirming.
    Review,
    /// Choosing which field to edit.
    EditPick,
    /// Asked for a reference to check.
    StatusAsk,
    /// Came back to an idle draft: continue it or discard it?
    ResumeOffer { resume_to: Box<Step> },
    /// Asked to confirm deleting their data.
    DeleteConfirm,
}

/// The report being drafted: what the journey has collected so far.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Draft {
    pub id: String,
    pub kind: ReportKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
    /// `Some(true)`: filed as an anonymous tip, without name and number. `None`: not asked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub anonymous: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identifier: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub occurred_on: Option<NaiveDate>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub place: Option<Place>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub district_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub station_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custody: Option<Custody>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attachments: Vec<Attachment>,
    #[serde(default)]
    pub consent: bool,
    /// Set once "confirm" was pressed and the filing effect issued.
    #[serde(default)]
    pub submitted: bool,
}

impl Draft {
    pub fn new(id: String, kind: ReportKind) -> Draft {
        Draft {
            id,
            kind,
            category: None,
            anonymous: None,
            description: None,
            identifier: None,
            occurred_on: None,
            place: None,
            district_id: None,
            station_id: None,
            custody: None,
            name: None,
            phone: None,
            attachments: Vec::new(),
            consent: false,
            submitted: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_draft(last_seen: i64) -> Conversation {
        Conversation {
            step: Step::Ask {
                field: Field::Description,
                page: 0,
                editing: false,
            },
            draft: Some(Draft::new("d".into(), ReportKind::Complaint)),
            last_seen,
            ..Conversation::default()
        }
    }

    #[test]
    fn a_draft_is_expired_only_after_24_hours_idle() {
        let mut c = with_draft(1_000);
        assert!(!c.expire_draft(1_000 + DRAFT_KEPT_SECS));
        assert!(c.draft.is_some() && !c.draft_expired);
        assert!(c.expire_draft(1_001 + DRAFT_KEPT_SECS));
        assert_eq!((c.draft.clone(), c.step.clone()), (None, Step::Menu));
        assert!(c.draft_expired);
        // Nothing left to drop: a second purge changes nothing.
        assert!(!c.expire_draft(10 * DRAFT_KEPT_SECS));
    }

    #[test]
    fn the_expired_notice_survives_a_save_and_older_states_still_load() {
        let mut c = with_draft(0);
        c.expire_draft(2 * DRAFT_KEPT_SECS);
        let json = c.to_json();
        assert_eq!(Conversation::load(Some(&json)), Loaded::Restored(c));
        let old = r#"{"version":1,"step":{"step":"menu"},"last_seen":5}"#;
        assert!(matches!(Conversation::load(Some(old)), Loaded::Restored(c) if !c.draft_expired));
    }
}
