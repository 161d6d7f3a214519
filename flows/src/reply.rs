//! Abstract replies: Fluent message ids with arguments, choices and hints. Each channel renders
//! them natively (buttons, lists, keyboards) and always also as numbered lines.

use serde::{Deserialize, Serialize};

/// A Fluent argument value. Counts are numbers so plural rules apply.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Arg {
    Num(i64),
    Str(String),
}

impl From<&str> for Arg {
    fn from(s: &str) -> Self {
        Arg::Str(s.to_owned())
    }
}
impl From<String> for Arg {
    fn from(s: String) -> Self {
        Arg::Str(s)
    }
}
impl From<i64> for Arg {
    fn from(n: i64) -> Self {
        Arg::Num(n)
    }
}

/// One Fluent message with its arguments.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Text {
    pub id: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<(String, Arg)>,
}

impl Text {
    pub fn new(id: impl Into<String>) -> Self {
        Text {
            id: id.into(),
            args: Vec::new(),
        }
    }

    pub fn arg(mut self, name: &str, value: impl Into<Arg>) -> Self {
        self.args.push((name.to_owned(), value.into()));
        self
    }
}

/// A choice: a stable id (what a button sends back) and its label. The label is a Fluent
/// message whose value is the full label and whose `.short` attribute fits a button.
/// `raw` labels (station names from the directory) are shown as they are.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Choice {
    pub id: String,
    pub label: Label,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Label {
    /// A Fluent message id with a `.short` attribute.
    Msg(String),
    /// Already-localized text (a station name).
    Raw(String),
}

/// What the channel should offer besides text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Hint {
    AskLocation,
    AskContact,
}

/// One reply message: paragraphs of text, then choices and an optional hint.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Reply {
    pub texts: Vec<Text>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub choices: Vec<Choice>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hint: Option<Hint>,
}

impl Reply {
    pub fn text(t: Text) -> Self {
        Reply {
            texts: vec![t],
            ..Default::default()
        }
    }
}
