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
}

impl Default for Conversation {
    fn default() -> Self {
        Conversation {
            version: STATE_VERSION,
            step: Step::New,
            draft: None,
            last_seen: 0,
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
