use serde::{Deserialize, Serialize};

/// The two languages Seva speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Lang {
    Hi,
    En,
}

impl Lang {
    pub const ALL: [Lang; 2] = [Lang::Hi, Lang::En];

    /// BCP 47 code, also the WhatsApp template language code.
    pub fn code(self) -> &'static str {
        match self {
            Lang::Hi => "hi",
            Lang::En => "en",
        }
    }

    /// Reads `hi`, `hi-IN`, `en`, `en-GB`, … (Telegram's `language_code`, `--lang`).
    pub fn from_code(code: &str) -> Option<Lang> {
        let primary = code.split(['-', '_']).next()?.to_ascii_lowercase();
        match primary.as_str() {
            "hi" => Some(Lang::Hi),
            "en" => Some(Lang::En),
            _ => None,
        }
    }
}
