//! Folding what citizens type, and reading words from it: global commands (whole message only),
//! yes/no answers and main-menu intents in Hindi, English and Hinglish.
//!
//! Matching is done on *loose* tokens: the folded text is split into words (Devanagari vowel
//! signs, virama and nukta stay inside their word; punctuation, symbols and emoji separate
//! words), then each word is loosened so common spelling variants compare equal:
//!
//! * the nukta is dropped (फ़ोन = फोन, ज़िला = जिला, ड़ = ड), precomposed or combining;
//! * chandrabindu is read as anusvara (हाँ = हां);
//! * a run of the same ASCII letter counts once (haan = han, haaa = ha, peeche = peche,
//!   shikaayat = shikayat, okk = ok).
//!
//! Keyword lists are loosened the same way, so each list names a spelling once.

use std::sync::LazyLock;

/// Zero-width characters that clients and keyboards slip into text: ZWSP, ZWNJ, ZWJ, BOM and
/// WORD JOINER.
pub fn is_zero_width(c: char) -> bool {
    matches!(c, '\u{200B}'..='\u{200D}' | '\u{FEFF}' | '\u{2060}')
}

/// Punctuation stripped from the ends of a folded message. `/` is not in it: `/start` is a command.
fn is_edge_punct(c: char) -> bool {
    matches!(
        c,
        '.' | '!'
            | '?'
            | ','
            | ';'
            | ':'
            | '।'
            | '॥'
            | '…'
            | '"'
            | '\''
            | '`'
            | '“'
            | '”'
            | '‘'
            | '’'
            | '¡'
            | '¿'
            | '؟'
            | '،'
    )
}

/// Trim, Unicode-lowercase, collapse inner whitespace to one space, strip trailing/leading
/// punctuation like . ! ? , । (danda) and zero-width chars (U+200B..U+200D, U+FEFF, U+2060).
/// Control characters count as whitespace. NFC is not applied.
pub fn fold(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut pending_space = false;
    for c in s.chars() {
        if is_zero_width(c) {
            continue;
        }
        if c.is_whitespace() || c.is_control() {
            pending_space = !out.is_empty();
            continue;
        }
        if pending_space {
            out.push(' ');
            pending_space = false;
        }
        out.extend(c.to_lowercase());
    }
    let trimmed = out.trim_matches(|c: char| c == ' ' || is_edge_punct(c));
    if trimmed.len() == out.len() {
        out
    } else {
        trimmed.to_string()
    }
}

/// Whether `c` belongs inside a word: letters and digits of any script, every Devanagari
/// character except the dandas (so vowel signs, virama and nukta stay in the word), and
/// combining diacritics.
fn is_word_char(c: char) -> bool {
    c.is_alphanumeric()
        || (('\u{0900}'..='\u{097F}').contains(&c) && c != '।' && c != '॥')
        || ('\u{0300}'..='\u{036F}').contains(&c)
}

/// A word loosened for comparison (see the module docs).
fn loose(word: &str) -> String {
    loose_chars(word).collect()
}

/// The characters of [`loose`]`(word)`, without building the string.
fn loose_chars(word: &str) -> impl Iterator<Item = char> + '_ {
    let mut prev: Option<char> = None;
    word.chars().filter_map(move |c| {
        let c = match c {
            '\u{093C}' => return None, // nukta
            '\u{0901}' => '\u{0902}',  // chandrabindu → anusvara
            '\u{0958}' => 'क',
            '\u{0959}' => 'ख',
            '\u{095A}' => 'ग',
            '\u{095B}' => 'ज',
            '\u{095C}' => 'ड',
            '\u{095D}' => 'ढ',
            '\u{095E}' => 'फ',
            '\u{095F}' => 'य',
            other => other,
        };
        if c.is_ascii_alphabetic() && prev == Some(c) {
            return None;
        }
        prev = Some(c);
        Some(c)
    })
}

/// At most this many words of a message are looked at when matching keywords, so a pasted
/// novel costs bounded time.
const MAX_TOKENS: usize = 1000;

/// The message folded, split into words and loosened for matching (at most the first 1000
/// words).
pub fn tokens(s: &str) -> Vec<String> {
    fold(s)
        .split(|c: char| !is_word_char(c))
        .filter(|w| !w.is_empty())
        .take(MAX_TOKENS)
        .map(loose)
        .collect()
}

/// One word of a keyword pattern: a loose word, matched exactly or as a prefix (written with a
/// trailing `*` in the lists).
struct Part {
    word: String,
    prefix: bool,
}

impl Part {
    fn matches(&self, token: &str) -> bool {
        if self.prefix {
            token.starts_with(self.word.as_str())
        } else {
            token == self.word
        }
    }
}

fn compile(pattern: &str) -> Vec<Part> {
    pattern
        .split(' ')
        .filter(|w| !w.is_empty())
        .map(|w| match w.strip_suffix('*') {
            Some(stem) => Part {
                word: loose(stem),
                prefix: true,
            },
            None => Part {
                word: loose(w),
                prefix: false,
            },
        })
        .collect()
}

/// Start positions in `tokens` where `pattern` (space-separated words, `*` = prefix) occurs.
fn positions(tokens: &[String], pattern: &str) -> Vec<usize> {
    let parts = compile(pattern);
    if parts.is_empty() || parts.len() > tokens.len() {
        return Vec::new();
    }
    (0..=tokens.len() - parts.len())
        .filter(|&i| parts.iter().zip(&tokens[i..]).all(|(p, t)| p.matches(t)))
        .collect()
}

/// Whether any of `patterns` occurs anywhere in `tokens`.
pub fn has_any(tokens: &[String], patterns: &[&str]) -> bool {
    patterns.iter().any(|p| !positions(tokens, p).is_empty())
}

/// Whether the whole message (its tokens) is exactly one of `patterns`.
///
/// Matches word by word without compiling the patterns: building each pattern's [`Part`]s
/// on every call was once most of a dialogue step's cost. The global commands, which every
/// message is matched against, are compiled once instead ([`GLOBAL_PATTERNS`]); the test
/// `is_exactly_agrees_with_compiled_patterns` holds the two ways to the same answers.
fn is_exactly(tokens: &[String], patterns: &[&str]) -> bool {
    patterns.iter().any(|p| {
        let mut words = p.split(' ').filter(|w| !w.is_empty());
        let mut toks = tokens.iter();
        loop {
            match (words.next(), toks.next()) {
                (None, None) => return true,
                (Some(w), Some(t)) if word_matches(w, t) => {}
                _ => return false,
            }
        }
    })
}

/// Whether a (loosened) token matches one pattern word, as [`compile`]`(word)` would.
fn word_matches(word: &str, token: &str) -> bool {
    let (stem, prefix) = match word.strip_suffix('*') {
        Some(stem) => (stem, true),
        None => (word, false),
    };
    let mut rest = token.chars();
    loose_chars(stem).all(|c| rest.next() == Some(c)) && (prefix || rest.next().is_none())
}

/// A command that works anywhere in a dialogue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Global {
    Cancel,
    Back,
    Menu,
    Help,
    Language,
    StopPushes,
    StartPushes,
    DeleteMyData,
    Status,
    Begin { payload: Option<String> },
}

const CANCEL: &[&str] = &[
    "cancel",
    "cancel karo",
    "cancel karen",
    "cancel karein",
    "cancel kar do",
    "cancel kro",
    "रद्द",
    "रद्द करें",
    "रद्द करे",
    "रद्द करो",
    "रद्द कर दो",
    "radd",
    "radd karo",
    "radd karen",
    "radd karein",
    "radd kar do",
    "कैंसल",
    "कैंसिल",
    "कैंसल करें",
    "कैंसल करो",
];
const BACK: &[&str] = &[
    "back",
    "go back",
    "पीछे",
    "पीछे जाएं",
    "पीछे जायें",
    "peeche",
    "piche",
    "pichhe",
    "peechhe",
    "peeche jao",
    "piche jao",
    "wapas",
    "vapas",
    "wapis",
    "vapis",
    "wapas jao",
    "वापस",
    "वापस जाएं",
    "वापस जायें",
];
const MENU: &[&str] = &["menu", "main menu", "मेनू", "मेन्यू", "मैन्यू", "मुख्य मेनू", "मेन मेनू"];
const HELP: &[&str] = &[
    "help",
    "help me",
    "मदद",
    "मदद करें",
    "madad",
    "madad karo",
    "madad chahiye",
    "सहायता",
    "sahayata",
];
const LANGUAGE: &[&str] = &[
    "language",
    "change language",
    "lang",
    "भाषा",
    "भाषा बदलें",
    "bhasha",
    "bhasa",
    "bhasha badlo",
    "bhasha badlen",
];
const STOP: &[&str] = &[
    "stop",
    "stop updates",
    "stop notifications",
    "unsubscribe",
    "बंद करें",
    "बंद करो",
    "बंद कर दो",
    "band karo",
    "band karen",
    "band karein",
    "band kar do",
];
const START: &[&str] = &[
    "start",
    "start updates",
    "शुरू करें",
    "शुरू करो",
    "shuru karo",
    "shuru karen",
    "shuru karein",
    "shuru kar do",
];
const DELETE_MY_DATA: &[&str] = &[
    "delete my data",
    "delete data",
    "मेरा डेटा हटाएं",
    "मेरा डाटा हटाएं",
    "मेरा डेटा हटायें",
    "मेरा डाटा हटायें",
    "मेरा डेटा हटाओ",
    "मेरा डाटा हटाओ",
    "mera data hatao",
    "mera data hata do",
    "mera data hataen",
    "mera data hatayen",
    "mera data delete karo",
];

/// A global command ONLY when it is the whole message after [`fold`]: cancel/रद्द/radd,
/// back/पीछे/peeche/wapas, menu/मेनू, help/मदद/madad, language/भाषा/bhasha, stop/बंद करें/band
/// karo, start/शुरू करें/shuru karo, "delete my data"/"मेरा डेटा हटाएं"/"mera data hatao" (and
/// close variants in the lists above). Telegram slash commands (`/start`, `/help`, `/cancel`, `/language`,
/// `/status`, `/menu`, `/stop`, and `/back`, `/lang`) may carry an `@botname` suffix; text after
/// `/start` is its deep-link payload (kept as typed, case included); text after any other slash
/// command is ignored. "status" alone is an intent, not a command; only `/status` is
/// [`Global::Status`].
pub fn global_command(s: &str) -> Option<Global> {
    let visible = s.trim_start_matches(|c: char| c.is_whitespace() || is_zero_width(c));
    if let Some(rest) = visible.strip_prefix('/') {
        return slash_command(rest);
    }
    let toks = tokens(s);
    if toks.is_empty() || toks.len() > 4 {
        return None;
    }
    GLOBAL_PATTERNS
        .iter()
        .find(|(patterns, _)| {
            patterns.iter().any(|parts| {
                parts.len() == toks.len() && parts.iter().zip(&toks).all(|(p, t)| p.matches(t))
            })
        })
        .map(|(_, g)| g.clone())
}

/// The global commands' patterns, compiled once: every message is matched against all of them.
static GLOBAL_PATTERNS: LazyLock<Vec<(Vec<Vec<Part>>, Global)>> = LazyLock::new(|| {
    let table: [(&[&str], Global); 8] = [
        (CANCEL, Global::Cancel),
        (BACK, Global::Back),
        (MENU, Global::Menu),
        (HELP, Global::Help),
        (LANGUAGE, Global::Language),
        (STOP, Global::StopPushes),
        (START, Global::StartPushes),
        (DELETE_MY_DATA, Global::DeleteMyData),
    ];
    table
        .into_iter()
        .map(|(list, g)| (list.iter().map(|p| compile(p)).collect(), g))
        .collect()
});

/// `rest` is the message after its leading `/`.
fn slash_command(rest: &str) -> Option<Global> {
    let (cmd, arg) = match rest.find(|c: char| c.is_whitespace()) {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    let cmd = cmd.split('@').next().unwrap_or_default();
    let cmd = fold(cmd);
    let global = match cmd.as_str() {
        "start" => {
            let payload: String = arg.chars().filter(|c| !is_zero_width(*c)).collect();
            let payload = payload.trim();
            Global::Begin {
                payload: (!payload.is_empty()).then(|| payload.to_string()),
            }
        }
        "help" => Global::Help,
        "cancel" => Global::Cancel,
        "language" | "lang" => Global::Language,
        "status" => Global::Status,
        "menu" => Global::Menu,
        "stop" => Global::StopPushes,
        "back" => Global::Back,
        _ => return None,
    };
    Some(global)
}

const YES: &[&str] = &[
    "हाँ",
    "हा",
    "जी",
    "जी हाँ",
    "हाँ जी",
    "जी हाँ जी",
    "haan",
    "ha",
    "ji",
    "hanji",
    "haan ji",
    "ji haan",
    "yes",
    "y",
    "yeah",
    "yep",
    "yes please",
    "ok",
    "okay",
    "ओके",
    "ठीक",
    "ठीक है",
    "theek",
    "thik",
    "theek hai",
    "thik hai",
    "theek h",
    "thik h",
    "sahi",
    "sahi hai",
    "सही",
    "सही है",
    "confirm",
    "पुष्टि",
    "पुष्टि करें",
];
const NO: &[&str] = &[
    "नहीं",
    "नही",
    "ना",
    "नहीं जी",
    "जी नहीं",
    "nahi",
    "nahin",
    "nhi",
    "nai",
    "nahee",
    "na",
    "no",
    "n",
    "nope",
    "nahi ji",
    "ji nahi",
    "galat",
    "गलत",
];

/// Yes (`Some(true)`), no (`Some(false)`), or neither — the whole message after [`fold`]:
/// हाँ हां हा जी "जी हाँ" haan han ha haa ji hanji yes y ok okay "ठीक है" "theek hai" sahi
/// confirm "पुष्टि करें"…; नहीं नही ना nahi nahin nhi na no n….
pub fn yes_no(s: &str) -> Option<bool> {
    let toks = tokens(s);
    if toks.is_empty() || toks.len() > 4 {
        return None;
    }
    if is_exactly(&toks, YES) {
        Some(true)
    } else if is_exactly(&toks, NO) {
        Some(false)
    } else {
        None
    }
}

/// What a citizen wants when they type on the main menu.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Intent {
    Complaint,
    Lost,
    Found,
    Status,
    MyReports,
    Help,
}

const STATUS: &[&str] = &[
    "स्थिति",
    "status",
    "sthiti",
    "stithi",
    "isthiti",
    "स्टेटस",
    "kya hua",
    "क्या हुआ",
    "track*",
    "ट्रैक*",
];
const MY_REPORTS: &[&str] = &[
    "my reports",
    "my report",
    "my complaints",
    "meri report*",
    "mere report*",
    "मेरी रिपोर्ट*",
    "मेरे रिपोर्ट*",
    "मेरी शिकायतें",
    "meri shikayatein",
    "meri shikayaten",
    "meri complaints",
];
/// Words that say something is lost, whatever is lost. Exact words: "खो*" would also catch
/// खोल (open).
const LOST: &[&str] = &[
    "खो",
    "खोया",
    "खोयी",
    "खोई",
    "खोए",
    "खोये",
    "kho",
    "khoya",
    "khoyi",
    "khoi",
    "khoye",
    "गुम",
    "gum",
    "गुमशुदा",
    "gumshuda",
    "गायब",
    "gayab",
    "lost",
    "lose",
    "missing",
    "misplaced",
    "ढूंढ*",
    "ढूढ*",
    "dhundh*",
    "dhoondh*",
    "dhund*",
    "looking for",
    "search*",
];
/// Who can go missing: with one of these and no item, "lost"/"missing" is a missing-person
/// complaint.
const PERSONS: &[&str] = &[
    "person",
    "son",
    "daughter",
    "child",
    "kid",
    "boy",
    "girl",
    "wife",
    "husband",
    "father",
    "mother",
    "brother",
    "sister",
    "grandfather",
    "grandmother",
    "beta",
    "beti",
    "bachcha",
    "bacha",
    "bachchi",
    "bachi",
    "bhai",
    "behen",
    "bahan",
    "papa",
    "mummy",
    "biwi",
    "pati",
    "patni",
    "dada",
    "dadi",
    "nana",
    "nani",
    "व्यक्ति",
    "बेटा",
    "बेटी",
    "बच्चा",
    "बच्ची",
    "बच्चे",
    "भाई",
    "बहन",
    "पति",
    "पत्नी",
    "पिता",
    "पापा",
    "माँ",
    "मां",
    "मम्मी",
    "दादा",
    "दादी",
    "नाना",
    "नानी",
];
/// Things people lose.
const ITEMS: &[&str] = &[
    "phone*",
    "mobile*",
    "wallet*",
    "purse*",
    "bag*",
    "document*",
    "card*",
    "aadhaar",
    "aadhar",
    "pan",
    "passport",
    "licen*",
    "dl",
    "rc",
    "key*",
    "chabi",
    "jewel*",
    "chain",
    "ring",
    "watch",
    "laptop",
    "sim",
    "bike",
    "scooty",
    "cycle",
    "vehicle",
    "gaadi",
    "फोन",
    "मोबाइल",
    "पर्स",
    "बटुआ",
    "बैग",
    "थैला",
    "आधार",
    "पैन",
    "कार्ड",
    "पासपोर्ट",
    "लाइसेंस",
    "कागज*",
    "दस्तावेज*",
    "चाबी",
    "गहने",
    "चेन",
    "अंगूठी",
    "घड़ी",
    "लैपटॉप",
    "सिम",
    "गाड़ी",
    "बाइक",
];
const COMPLAINT: &[&str] = &[
    "शिकायत*",
    "shikayat*",
    "shikayt*",
    "shikyat*",
    "complain*",
    "fir",
    "एफआईआर",
    "एफ आई आर",
    "f i r",
    "report a crime",
    "crime",
    "अपराध",
    "चोरी",
    "chori",
    "chory",
    "theft",
    "thief",
    "stolen",
    "stole",
    "steal*",
    "robbery",
    "robbed",
    "लूट*",
    "loot*",
    "snatch*",
    "छीन*",
    "chheen*",
    "chin liya",
    "fraud*",
    "धोखा*",
    "धोखे*",
    "dhokha*",
    "dhoka*",
    "ठगी",
    "ठग",
    "ठगा",
    "thagi",
    "thag",
    "thaga",
    "scam*",
    "cyber",
    "साइबर",
    "harass*",
    "परेशान*",
    "pareshan*",
    "धमकी",
    "dhamki",
    "threat*",
    "मारपीट",
    "marpeet",
    "marpit",
    "झगड़ा",
    "jhagda",
    "jhagada",
    "लापता",
    "lapata",
];
/// Verbs that say something was found (मिला, पाया, found).
const FOUND_VERBS: &[&str] = &[
    "मिला",
    "मिली",
    "मिले",
    "मिल",
    "पाया",
    "पायी",
    "पाई",
    "पाए",
    "पाये",
    "mila",
    "mili",
    "mile",
    "mil",
    "paya",
    "payi",
    "found",
];
/// Verbs that, negated, say something is lost ("can't find"), but alone say nothing.
const FIND_VERBS: &[&str] = &["find", "locate", "trace"];
/// Negation before a verb: "नहीं मिला", "not found", "can't find" (can't → can + t).
const NEG_BEFORE: &[&str] = &[
    "नहीं",
    "नही",
    "ना",
    "न",
    "nahi",
    "nahin",
    "nhi",
    "nai",
    "na",
    "not",
    "never",
    "cant",
    "cannot",
    "couldnt",
    "didnt",
    "dont",
    "t",
    "unable",
];
/// Negation after a verb: "मिला नहीं", "mil nahi raha".
const NEG_AFTER: &[&str] = &["नहीं", "नही", "nahi", "nahin", "nhi", "nai"];
const HELP_WORDS: &[&str] = &[
    "मदद",
    "madad",
    "help",
    "सहायता",
    "sahayata",
    "helpline",
    "हेल्पलाइन",
    "emergency",
    "आपात*",
];

/// Whether some verb of `verbs` in `toks` is negated ("नहीं मिला", "mila nahi", "can't find").
fn negated(toks: &[String], verbs: &[&str]) -> bool {
    let before = compile_all(NEG_BEFORE);
    let after = compile_all(NEG_AFTER);
    verbs.iter().any(|verb| {
        positions(toks, verb).into_iter().any(|i| {
            let from = i.saturating_sub(3);
            let until = (i + 3).min(toks.len());
            toks[from..i]
                .iter()
                .any(|t| before.iter().any(|p| p.matches(t)))
                || toks[i + 1..until]
                    .iter()
                    .any(|t| after.iter().any(|p| p.matches(t)))
        })
    })
}

fn compile_all(patterns: &[&str]) -> Vec<Part> {
    patterns.iter().flat_map(|p| compile(p)).collect()
}

/// Whether a found verb occurs without being negated.
fn plainly_found(toks: &[String]) -> bool {
    let before = compile_all(NEG_BEFORE);
    let after = compile_all(NEG_AFTER);
    FOUND_VERBS.iter().any(|verb| {
        positions(toks, verb).into_iter().any(|i| {
            let from = i.saturating_sub(3);
            let until = (i + 3).min(toks.len());
            !toks[from..i]
                .iter()
                .any(|t| before.iter().any(|p| p.matches(t)))
                && !toks[i + 1..until]
                    .iter()
                    .any(|t| after.iter().any(|p| p.matches(t)))
        })
    })
}

/// "fir" as the police report, not the Hinglish "fir" (= phir, "then/again"): "fir se", "fir bhi"
/// are not complaints.
fn mentions_fir(toks: &[String]) -> bool {
    positions(toks, "fir").into_iter().any(|i| {
        !matches!(
            toks.get(i + 1).map(String::as_str),
            Some("se" | "bhi" | "kya" | "kab" | "kaise")
        )
    })
}

/// Free text on the main menu → intent, by keywords anywhere in the message (Hindi, English,
/// Hinglish). Precedence: status ("meri complaint ka status" is a status question), my reports,
/// lost (a missing person without any item is a complaint), complaint, negated found ("phone
/// nahi mila", "not found", "can't find" → lost), found, help.
pub fn intent(s: &str) -> Option<Intent> {
    let toks = tokens(s);
    if toks.is_empty() {
        return None;
    }
    if has_any(&toks, STATUS) {
        return Some(Intent::Status);
    }
    if has_any(&toks, MY_REPORTS) {
        return Some(Intent::MyReports);
    }
    if has_any(&toks, LOST) {
        if has_any(&toks, PERSONS) && !has_any(&toks, ITEMS) {
            return Some(Intent::Complaint);
        }
        return Some(Intent::Lost);
    }
    let complaint_words: Vec<&str> = COMPLAINT.iter().copied().filter(|p| *p != "fir").collect();
    if has_any(&toks, &complaint_words) || mentions_fir(&toks) {
        return Some(Intent::Complaint);
    }
    if negated(&toks, FOUND_VERBS) || negated(&toks, FIND_VERBS) {
        return Some(Intent::Lost);
    }
    if plainly_found(&toks) {
        return Some(Intent::Found);
    }
    if has_any(&toks, HELP_WORDS) {
        return Some(Intent::Help);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The matching [`is_exactly`] did before it stopped compiling patterns.
    fn is_exactly_compiled(tokens: &[String], patterns: &[&str]) -> bool {
        patterns.iter().any(|p| {
            let parts = compile(p);
            parts.len() == tokens.len() && parts.iter().zip(tokens).all(|(p, t)| p.matches(t))
        })
    }

    #[test]
    fn is_exactly_agrees_with_compiled_patterns() {
        let lists: [&[&str]; 10] = [
            CANCEL,
            BACK,
            MENU,
            HELP,
            LANGUAGE,
            STOP,
            START,
            DELETE_MY_DATA,
            YES,
            NO,
        ];
        let mut inputs: Vec<String> = lists
            .iter()
            .flat_map(|l| l.iter())
            .map(|p| p.replace('*', ""))
            .collect();
        inputs.extend(
            lists
                .iter()
                .flat_map(|l| l.iter())
                .map(|p| p.replace('*', "xyz")),
        );
        inputs.extend(
            lists
                .iter()
                .flat_map(|l| l.iter())
                .map(|p| format!("{p} more")),
        );
        inputs.extend(
            [
                "",
                "menuu",
                "MENU",
                "mainmenu",
                "cancell",
                "रद्द करें",
                "हाँ जी",
                "yess",
                "no",
            ]
            .map(String::from),
        );
        for input in &inputs {
            let toks = tokens(input);
            for list in lists {
                assert_eq!(
                    is_exactly(&toks, list),
                    is_exactly_compiled(&toks, list),
                    "{input:?}"
                );
            }
        }
    }
    use proptest::prelude::*;

    // ---- fold ----

    #[test]
    fn fold_trims_lowercases_and_collapses_spaces() {
        assert_eq!(fold("  Hello   WORLD \n\t again "), "hello world again");
    }

    #[test]
    fn fold_strips_edge_punctuation_and_danda() {
        assert_eq!(fold("हाँ।"), "हाँ");
        assert_eq!(fold("  ok!! "), "ok");
        assert_eq!(fold("¿Yes?"), "yes");
        assert_eq!(fold("...cancel..."), "cancel");
        assert_eq!(fold("हाँ !"), "हाँ");
    }

    #[test]
    fn fold_keeps_inner_punctuation() {
        assert_eq!(fold("C-7K3Q, 9XM4."), "c-7k3q, 9xm4");
    }

    #[test]
    fn fold_removes_zero_width_characters() {
        assert_eq!(fold("\u{FEFF}can\u{200B}cel\u{2060}\u{200D}"), "cancel");
    }

    #[test]
    fn fold_keeps_the_leading_slash_of_a_command() {
        assert_eq!(fold(" /Start "), "/start");
    }

    #[test]
    fn fold_of_punctuation_only_is_empty() {
        assert_eq!(fold(" ?!. । "), "");
        assert_eq!(fold(""), "");
    }

    #[test]
    fn fold_treats_control_characters_as_spaces() {
        assert_eq!(fold("ok\u{0}ay\u{7}"), "ok ay");
    }

    // ---- tokens ----

    #[test]
    fn tokens_keep_devanagari_vowel_signs_and_virama_inside_words() {
        assert_eq!(tokens("रद्द करें।"), vec!["रद्द", "करें"]);
    }

    #[test]
    fn tokens_read_nukta_and_chandrabindu_loosely() {
        assert_eq!(tokens("फ़ोन"), tokens("फोन"));
        assert_eq!(tokens("फ\u{093C}ोन"), tokens("फोन"));
        assert_eq!(tokens("हाँ"), tokens("हां"));
    }

    #[test]
    fn tokens_count_repeated_latin_letters_once() {
        assert_eq!(tokens("haaaan"), vec!["han"]);
        assert_eq!(tokens("Peeche"), tokens("peche"));
    }

    #[test]
    fn tokens_split_on_emoji_and_punctuation() {
        assert_eq!(tokens("phone📱kho,gaya"), vec!["phone", "kho", "gaya"]);
    }

    // ---- global commands ----

    #[test]
    fn cancel_words_in_both_languages_are_global() {
        for s in [
            "cancel",
            "CANCEL",
            "रद्द",
            "रद्द करें",
            "radd",
            "cancel karo",
            " Cancel. ",
        ] {
            assert_eq!(global_command(s), Some(Global::Cancel), "{s}");
        }
    }

    #[test]
    fn back_words_are_global() {
        for s in ["back", "पीछे", "peeche", "piche", "wapas", "वापस"] {
            assert_eq!(global_command(s), Some(Global::Back), "{s}");
        }
    }

    #[test]
    fn menu_help_and_language_words_are_global() {
        for s in ["menu", "मेनू", "main menu", "मुख्य मेनू"] {
            assert_eq!(global_command(s), Some(Global::Menu), "{s}");
        }
        for s in ["help", "मदद", "madad", "Help!"] {
            assert_eq!(global_command(s), Some(Global::Help), "{s}");
        }
        for s in ["language", "भाषा", "bhasha", "bhasa"] {
            assert_eq!(global_command(s), Some(Global::Language), "{s}");
        }
    }

    #[test]
    fn stop_and_start_words_control_pushes() {
        for s in ["stop", "बंद करें", "band karo", "/stop", "STOP"] {
            assert_eq!(global_command(s), Some(Global::StopPushes), "{s}");
        }
        for s in ["start", "शुरू करें", "shuru karo"] {
            assert_eq!(global_command(s), Some(Global::StartPushes), "{s}");
        }
    }

    #[test]
    fn delete_my_data_in_both_languages_is_global() {
        for s in [
            "delete my data",
            "मेरा डेटा हटाएं",
            "मेरा डाटा हटाएं",
            "mera data hatao",
            "मेरा डेटा हटाएँ",
        ] {
            assert_eq!(global_command(s), Some(Global::DeleteMyData), "{s}");
        }
    }

    #[test]
    fn command_words_inside_a_sentence_are_not_global() {
        for s in [
            "मुझे मदद चाहिए क्योंकि फोन खो गया",
            "please cancel the order he placed",
            "stop him",
            "menu card",
            "status",
            "स्थिति",
        ] {
            assert_eq!(global_command(s), None, "{s}");
        }
    }

    #[test]
    fn telegram_start_without_payload_begins() {
        assert_eq!(
            global_command("/start"),
            Some(Global::Begin { payload: None })
        );
        assert_eq!(
            global_command("  /start  "),
            Some(Global::Begin { payload: None })
        );
    }

    #[test]
    fn telegram_start_payload_is_kept_as_typed() {
        assert_eq!(
            global_command("/start Ref_C7K3Q-9xm4"),
            Some(Global::Begin {
                payload: Some("Ref_C7K3Q-9xm4".into())
            })
        );
    }

    #[test]
    fn telegram_bot_name_suffix_is_ignored() {
        assert_eq!(
            global_command("/start@SevaPoliceBot"),
            Some(Global::Begin { payload: None })
        );
        assert_eq!(
            global_command("/start@SevaPoliceBot abc"),
            Some(Global::Begin {
                payload: Some("abc".into())
            })
        );
        assert_eq!(global_command("/help@SevaBot"), Some(Global::Help));
        assert_eq!(global_command("/Cancel@SevaBot"), Some(Global::Cancel));
    }

    #[test]
    fn every_telegram_command_is_read() {
        assert_eq!(global_command("/help"), Some(Global::Help));
        assert_eq!(global_command("/cancel"), Some(Global::Cancel));
        assert_eq!(global_command("/language"), Some(Global::Language));
        assert_eq!(global_command("/status"), Some(Global::Status));
        assert_eq!(global_command("/menu"), Some(Global::Menu));
        assert_eq!(global_command("/stop"), Some(Global::StopPushes));
        assert_eq!(global_command("/back"), Some(Global::Back));
    }

    #[test]
    fn unknown_slash_commands_are_not_global() {
        assert_eq!(global_command("/frobnicate"), None);
        assert_eq!(global_command("/"), None);
        assert_eq!(global_command("/@bot"), None);
    }

    #[test]
    fn zero_width_characters_do_not_hide_a_command() {
        assert_eq!(
            global_command("\u{200B}/start"),
            Some(Global::Begin { payload: None })
        );
        assert_eq!(global_command("can\u{200D}cel"), Some(Global::Cancel));
    }

    // ---- yes / no ----

    #[test]
    fn hindi_and_hinglish_yes_words_are_yes() {
        for s in [
            "हाँ",
            "हां",
            "हा",
            "जी",
            "जी हाँ",
            "haan",
            "han",
            "ha",
            "haa",
            "ji",
            "hanji",
            "yes",
            "y",
            "ok",
            "okay",
            "ठीक है",
            "theek hai",
            "thik hai",
            "sahi",
            "confirm",
            "पुष्टि करें",
            "Yes!",
            "हाँ।",
            "OK",
        ] {
            assert_eq!(yes_no(s), Some(true), "{s}");
        }
    }

    #[test]
    fn hindi_and_hinglish_no_words_are_no() {
        for s in [
            "नहीं",
            "नही",
            "ना",
            "nahi",
            "nahin",
            "nhi",
            "na",
            "no",
            "n",
            "No.",
            "नहीं।",
        ] {
            assert_eq!(yes_no(s), Some(false), "{s}");
        }
    }

    #[test]
    fn yes_or_no_inside_a_sentence_is_neither() {
        for s in [
            "yes but change the date",
            "no idea",
            "",
            "maybe",
            "हाँ लेकिन नहीं",
        ] {
            assert_eq!(yes_no(s), None, "{s}");
        }
    }

    // ---- intent ----

    #[test]
    fn brief_examples_map_to_their_intents() {
        let cases = [
            ("mera phone kho gaya", Some(Intent::Lost)),
            ("मेरा फोन खो गया", Some(Intent::Lost)),
            ("lost my wallet", Some(Intent::Lost)),
            ("phone nahi mila", Some(Intent::Lost)),
            ("मेरा पर्स नहीं मिला", Some(Intent::Lost)),
            ("I found a wallet", Some(Intent::Found)),
            ("ek phone mila hai", Some(Intent::Found)),
            ("shikayat darj karni hai", Some(Intent::Complaint)),
            ("meri complaint ka status", Some(Intent::Status)),
            ("hello", None),
        ];
        for (s, want) in cases {
            assert_eq!(intent(s), want, "{s}");
        }
    }

    #[test]
    fn negation_turns_found_into_lost() {
        for s in [
            "not found",
            "my bag is not found",
            "I can't find my phone",
            "I can’t find my keys",
            "cannot find my purse",
            "nhi mili meri chain",
            "mila nahi abhi tak",
            "मेरा फ़ोन मिल नहीं रहा",
        ] {
            assert_eq!(intent(s), Some(Intent::Lost), "{s}");
        }
    }

    #[test]
    fn found_words_in_both_scripts_are_found() {
        for s in [
            "मुझे एक बैग मिला",
            "रास्ते में पर्स पाया",
            "found a phone",
            "ek purse mili",
            "mujhe ek phone mil gaya",
        ] {
            assert_eq!(intent(s), Some(Intent::Found), "{s}");
        }
    }

    #[test]
    fn lost_words_in_both_scripts_are_lost() {
        for s in [
            "मेरा बटुआ खोया",
            "purse gum ho gaya",
            "मेरी चाबी गुम हो गई",
            "my phone is missing",
            "kho gayi meri ring",
            "phone dhundh raha hu",
        ] {
            assert_eq!(intent(s), Some(Intent::Lost), "{s}");
        }
    }

    #[test]
    fn a_missing_person_is_a_complaint_not_a_lost_item() {
        for s in [
            "mera beta kho gaya",
            "my son is missing",
            "मेरी बेटी गुम हो गई",
            "लापता",
        ] {
            assert_eq!(intent(s), Some(Intent::Complaint), "{s}");
        }
        assert_eq!(intent("my son lost his phone"), Some(Intent::Lost));
    }

    #[test]
    fn complaint_words_in_both_scripts_are_complaints() {
        for s in [
            "शिकायत",
            "मुझे शिकायत दर्ज करनी है",
            "ई-शिकायत",
            "complaint",
            "I want to complain",
            "FIR",
            "fir darj karwani hai",
            "एफआईआर",
            "report a crime",
            "mera phone chori ho gaya",
            "मेरी बाइक चोरी हो गई",
            "online fraud hua",
            "मेरे साथ ठगी हुई",
            "dhokha hua",
            "shikaayat",
        ] {
            assert_eq!(intent(s), Some(Intent::Complaint), "{s}");
        }
    }

    #[test]
    fn hinglish_fir_meaning_then_is_not_a_complaint() {
        assert_eq!(intent("fir se try karta hu"), None);
    }

    #[test]
    fn a_complaint_that_got_no_reply_is_not_a_lost_item() {
        assert_eq!(
            intent("meri shikayat ka jawab nahi mila"),
            Some(Intent::Complaint)
        );
    }

    #[test]
    fn status_words_are_status() {
        for s in [
            "स्थिति",
            "status",
            "sthiti",
            "kya hua",
            "meri report ki sthiti",
            "track my case",
        ] {
            assert_eq!(intent(s), Some(Intent::Status), "{s}");
        }
    }

    #[test]
    fn my_reports_words_are_my_reports() {
        for s in [
            "my reports",
            "मेरी रिपोर्ट",
            "meri report",
            "मेरी शिकायतें",
            "show my reports",
        ] {
            assert_eq!(intent(s), Some(Intent::MyReports), "{s}");
        }
    }

    #[test]
    fn help_words_are_help() {
        for s in ["मदद", "madad chahiye", "help please", "emergency"] {
            assert_eq!(intent(s), Some(Intent::Help), "{s}");
        }
    }

    #[test]
    fn unrelated_text_has_no_intent() {
        for s in [
            "",
            "hello",
            "नमस्ते",
            "first of all",
            "🙏🙏",
            "gumbo recipe",
            "milan",
        ] {
            assert_eq!(intent(s), None, "{s}");
        }
    }

    proptest! {
        #[test]
        fn fold_never_panics_and_is_idempotent(s in any::<String>()) {
            let once = fold(&s);
            prop_assert_eq!(fold(&once), once.clone());
            prop_assert!(!once.starts_with(' ') && !once.ends_with(' '));
            prop_assert!(!once.contains("  "));
        }

        #[test]
        fn word_readers_never_panic(s in any::<String>()) {
            let _ = global_command(&s);
            let _ = yes_no(&s);
            let _ = intent(&s);
            let _ = tokens(&s);
        }

        #[test]
        fn word_readers_never_panic_on_mixed_scripts(
            s in "[a-z /@\u{0900}-\u{097F}\u{200B}-\u{200F}\u{202E}\u{0300}-\u{0310}\u{1F600}-\u{1F64F}।!?.,'-]{0,60}"
        ) {
            let _ = global_command(&s);
            let _ = yes_no(&s);
            let _ = intent(&s);
        }

        #[test]
        fn start_payload_round_trips(p in "[A-Za-z0-9_-]{1,64}") {
            prop_assert_eq!(
                global_command(&format!("/start {p}")),
                Some(Global::Begin { payload: Some(p.clone()) })
            );
        }
    }
}
