//! The vocabulary shared by the outbox dispatcher and the channel senders.

use serde::{Deserialize, Serialize};

/// What a channel did with one outbound message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum SendOutcome {
    /// Accepted by the provider, with its message id (`wamid`, Telegram `message_id`).
    Sent { provider_id: String },
    /// The provider asked us to wait (429, `retry_after`, WhatsApp throttling).
    RetryAfter { secs: u64 },
    /// Worth retrying with backoff (5xx, timeouts, connection errors).
    Transient { reason: String },
    /// Will never succeed (blocked, not a WhatsApp user, bad token): park as a dead letter.
    Permanent { code: String, reason: String },
}

/// The parameters of a status push, for channels that must use a pre-approved template
/// (WhatsApp outside the 24-hour window): {{1}} reference, {{2}} status, {{3}} station, {{4}} note.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TemplateParams {
    pub reference: String,
    pub status: String,
    pub station: String,
    pub note: String,
}

/// What an outbox row holds: the abstract reply every channel renders, plus what some kinds
/// need besides. Stored as JSON; a bare [`crate::reply::Reply`] reads as content with neither.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutboxContent {
    #[serde(flatten)]
    pub reply: crate::reply::Reply,
    /// For status pushes: the template parameters a channel uses when free text is not allowed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<TemplateParams>,
    /// For back-office events: the JSON body to POST.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event: Option<serde_json::Value>,
}

impl OutboxContent {
    pub fn reply(reply: crate::reply::Reply) -> OutboxContent {
        OutboxContent {
            reply,
            template: None,
            event: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reply::{Choice, Hint, Label, Reply, Text};

    /// Replies are written as the reply's own JSON (`seva`'s runtime does, without wrapping
    /// a copy): it must be the text the wrapper would have written, and read back the same.
    #[test]
    fn a_reply_alone_is_stored_as_its_own_json() {
        let replies = [
            Reply::text(Text::new("menu-prompt")),
            Reply {
                texts: vec![
                    Text::new("filed-complaint")
                        .arg("reference", "C-V5C5-7A95-2")
                        .arg("count", 3),
                    Text::new("menu-prompt"),
                ],
                choices: vec![
                    Choice {
                        id: "menu:lost".into(),
                        label: Label::Msg("choice-menu-lost".into()),
                    },
                    Choice {
                        id: "st:kotwali".into(),
                        label: Label::Raw("Kotwali \"Patna\"".into()),
                    },
                ],
                hint: Some(Hint::AskLocation),
            },
        ];
        for reply in replies {
            let own = serde_json::to_string(&reply).unwrap();
            let wrapped = serde_json::to_string(&OutboxContent::reply(reply.clone())).unwrap();
            assert_eq!(own, wrapped);
            let read: OutboxContent = serde_json::from_str(&own).unwrap();
            assert_eq!(read, OutboxContent::reply(reply));
        }
    }
}
