//! Free text a citizen types for a field (what happened, a description, an address, a name):
//! cleaned of invisible characters, bounded in length, and refused with a clear reason.

use unicode_segmentation::UnicodeSegmentation;

use super::words::is_zero_width;

/// Why a text answer is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextError {
    /// Nothing visible was typed.
    Empty,
    /// Longer than `max` grapheme clusters (user-perceived characters); `got` is the length.
    TooLong { max: usize, got: usize },
    /// No letter or digit at all (only emoji, only punctuation; for a name, only digits).
    NoLetters,
}

/// The longest name accepted, in grapheme clusters.
pub const NAME_MAX: usize = 80;

/// Invisible formatting characters removed along with the zero-width ones: soft hyphen, the
/// bidirectional marks, embeddings, overrides and isolates (which can make text read
/// differently from what it is), and the Mongolian vowel separator. Right-to-left text itself
/// is kept.
fn is_invisible(c: char) -> bool {
    is_zero_width(c)
        || matches!(
            c,
            '\u{00AD}'
                | '\u{061C}'
                | '\u{180E}'
                | '\u{200E}'
                | '\u{200F}'
                | '\u{202A}'..='\u{202E}'
                | '\u{2066}'..='\u{2069}'
        )
}

/// Line breaks of every kind read as `\n`.
fn is_line_break(c: char) -> bool {
    matches!(
        c,
        '\n' | '\u{0B}' | '\u{0C}' | '\u{85}' | '\u{2028}' | '\u{2029}'
    )
}

/// Trim; turn every line break into `\n` and tabs into spaces; strip zero-width, invisible
/// formatting and control characters; drop spaces at the end of each line; keep at most one
/// blank line in a row (3+ newlines → 2).
fn clean(s: &str) -> String {
    let mut out = String::with_capacity(s.len().min(1 << 16));
    let mut newlines = 0usize;
    let mut spaces = String::new();
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        let c = match c {
            '\r' => {
                if chars.peek() == Some(&'\n') {
                    chars.next();
                }
                '\n'
            }
            '\t' => ' ',
            c if is_line_break(c) => '\n',
            c => c,
        };
        if c == '\n' {
            newlines += 1;
            spaces.clear();
        } else if c.is_control() || is_invisible(c) {
            // dropped
        } else if c.is_whitespace() {
            spaces.push(c);
        } else {
            if !out.is_empty() {
                for _ in 0..newlines.min(2) {
                    out.push('\n');
                }
                out.push_str(&spaces);
            }
            newlines = 0;
            spaces.clear();
            out.push(c);
        }
    }
    out
}

/// The most characters kept in one grapheme cluster. Real ones are short (a Devanagari
/// conjunct with its signs, an emoji ZWJ sequence: about ten); a letter under thousands of
/// combining marks ("Zalgo" text) would count as one character yet fill a whole message.
pub const CLUSTER_MAX_CHARS: usize = 16;

/// Cuts every grapheme cluster longer than [`CLUSTER_MAX_CHARS`] to its first characters.
fn cap_clusters(s: String) -> String {
    // After `clean` (no `\r` left), every ASCII character is a cluster of its own.
    if s.is_ascii() {
        return s;
    }
    if s.graphemes(true)
        .all(|g| g.chars().nth(CLUSTER_MAX_CHARS).is_none())
    {
        return s;
    }
    let mut out = String::with_capacity(s.len());
    for g in s.graphemes(true) {
        out.extend(g.chars().take(CLUSTER_MAX_CHARS));
    }
    out
}

/// Free text the citizen typed for a field. Trim; strip zero-width characters and control
/// characters (keep newlines, collapse 3+ newlines to 2); cut grapheme clusters to
/// [`CLUSTER_MAX_CHARS`] characters. Count length in grapheme clusters.
/// Empty after that → Empty; longer than max → TooLong; no letter or digit at all (emoji only,
/// punctuation only) → NoLetters. Otherwise Ok(cleaned).
pub fn bounded(s: &str, max: usize) -> Result<String, TextError> {
    let cleaned = cap_clusters(clean(s));
    if cleaned.is_empty() {
        return Err(TextError::Empty);
    }
    // Cleaned ASCII (no `\r\n` pair left) has one cluster per byte: most typed answers, and
    // segmenting them was ~1 % of Seva's instructions per reply.
    let got = if cleaned.is_ascii() {
        cleaned.len()
    } else {
        cleaned.graphemes(true).count()
    };
    if got > max {
        return Err(TextError::TooLong { max, got });
    }
    if !cleaned.chars().any(char::is_alphanumeric) {
        return Err(TextError::NoLetters);
    }
    Ok(cleaned)
}

/// A person's name: bounded(s, 80), and must contain at least one letter; digits-only →
/// NoLetters. Line breaks and runs of spaces inside a name become one space.
pub fn name(s: &str) -> Result<String, TextError> {
    let cleaned = bounded(s, NAME_MAX)?;
    if !cleaned.chars().any(char::is_alphabetic) {
        return Err(TextError::NoLetters);
    }
    Ok(cleaned.split_whitespace().collect::<Vec<_>>().join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_letter_under_thousands_of_combining_marks_is_cut_to_a_few() {
        let mut zalgo = String::from("a");
        zalgo.extend(std::iter::repeat_n('\u{0301}', 3000));
        let kept = bounded(&format!("{zalgo}bc"), 10).unwrap();
        assert_eq!(kept.chars().count(), CLUSTER_MAX_CHARS + 2);
        assert!(kept.ends_with("bc"));
        // Real clusters are untouched: a conjunct with its signs, an emoji sequence.
        let real = "स्त्रियाँ क्ष्म्य 👍🏽 🇮🇳";
        assert_eq!(bounded(real, 100).as_deref(), Ok(real));
    }

    #[test]
    fn ordinary_text_is_kept_trimmed() {
        assert_eq!(
            bounded("  मेरा फोन बस में चोरी हो गया  ", 500).as_deref(),
            Ok("मेरा फोन बस में चोरी हो गया")
        );
    }

    #[test]
    fn inner_spaces_are_kept_as_typed() {
        assert_eq!(bounded("a  b", 10).as_deref(), Ok("a  b"));
    }

    #[test]
    fn zero_width_characters_are_stripped() {
        assert_eq!(
            bounded("\u{FEFF}ab\u{200B}c\u{200C}d\u{200D}e\u{2060}", 10).as_deref(),
            Ok("abcde")
        );
    }

    #[test]
    fn control_characters_are_stripped_but_newlines_kept() {
        assert_eq!(
            bounded("line one\u{0}\u{7}\nline\u{1B} two", 100).as_deref(),
            Ok("line one\nline two")
        );
    }

    #[test]
    fn windows_and_unicode_line_breaks_become_newlines() {
        assert_eq!(
            bounded("a\r\nb\rc\u{2028}d", 10).as_deref(),
            Ok("a\nb\nc\nd")
        );
    }

    #[test]
    fn tabs_become_spaces() {
        assert_eq!(bounded("a\tb", 10).as_deref(), Ok("a b"));
    }

    #[test]
    fn three_or_more_newlines_collapse_to_two() {
        assert_eq!(bounded("a\n\n\n\n\nb", 10).as_deref(), Ok("a\n\nb"));
        assert_eq!(bounded("a\n \n\t\n  \nb", 10).as_deref(), Ok("a\n\nb"));
        assert_eq!(bounded("a\n\nb", 10).as_deref(), Ok("a\n\nb"));
    }

    #[test]
    fn trailing_spaces_on_a_line_are_dropped_and_indentation_kept() {
        assert_eq!(bounded("a   \n  b", 10).as_deref(), Ok("a\n  b"));
    }

    #[test]
    fn bidirectional_overrides_are_stripped_and_rtl_text_kept() {
        assert_eq!(bounded("\u{202E}abc\u{202C}", 10).as_deref(), Ok("abc"));
        assert_eq!(bounded("میرا فون", 10).as_deref(), Ok("میرا فون"));
    }

    #[test]
    fn empty_or_invisible_text_is_empty() {
        for s in [
            "",
            "   ",
            "\n\n\t",
            "\u{200B}\u{FEFF}",
            "\u{0}\u{1}",
            "\u{202E}",
        ] {
            assert_eq!(bounded(s, 10), Err(TextError::Empty), "{s:?}");
        }
    }

    #[test]
    fn length_is_counted_in_grapheme_clusters() {
        // "हिंदी" is 5 code points and 2 clusters; "é" written with a combining accent is 1.
        assert_eq!(bounded("हिंदी", 2).as_deref(), Ok("हिंदी"));
        assert_eq!(bounded("e\u{301}", 1).as_deref(), Ok("e\u{301}"));
        assert_eq!(bounded("👍🏽a", 2).as_deref(), Ok("👍🏽a"));
        // Plain ASCII is counted a character a cluster, a Windows line break (one cluster
        // as typed) as the one `\n` it becomes.
        assert_eq!(bounded("ab\r\ncd", 5).as_deref(), Ok("ab\ncd"));
        assert_eq!(
            bounded("ab\r\ncd", 4),
            Err(TextError::TooLong { max: 4, got: 5 })
        );
    }

    #[test]
    fn text_over_the_limit_reports_both_lengths() {
        assert_eq!(
            bounded("abcdef", 5),
            Err(TextError::TooLong { max: 5, got: 6 })
        );
        assert_eq!(bounded("a", 0), Err(TextError::TooLong { max: 0, got: 1 }));
    }

    #[test]
    fn a_huge_text_is_too_long_not_a_panic() {
        let huge = "क".repeat(1_000_000);
        assert_eq!(
            bounded(&huge, 2000),
            Err(TextError::TooLong {
                max: 2000,
                got: 1_000_000
            })
        );
    }

    #[test]
    fn emoji_or_punctuation_only_has_no_letters() {
        for s in ["🙏🙏🙏", "!!!", "...?", "😀 👍", "\u{301}"] {
            assert_eq!(bounded(s, 100), Err(TextError::NoLetters), "{s:?}");
        }
    }

    #[test]
    fn digits_alone_are_enough_for_free_text() {
        assert_eq!(bounded("१२३", 10).as_deref(), Ok("१२३"));
        assert_eq!(bounded("42", 10).as_deref(), Ok("42"));
    }

    #[test]
    fn a_name_in_either_script_is_accepted() {
        assert_eq!(name("  Ramesh Kumar ").as_deref(), Ok("Ramesh Kumar"));
        assert_eq!(name("रमेश कुमार").as_deref(), Ok("रमेश कुमार"));
    }

    #[test]
    fn a_name_spread_over_lines_becomes_one_line() {
        assert_eq!(name("Ramesh\n\n  Kumar").as_deref(), Ok("Ramesh Kumar"));
    }

    #[test]
    fn a_digits_only_name_has_no_letters() {
        assert_eq!(name("12345"), Err(TextError::NoLetters));
        assert_eq!(name("९८७६"), Err(TextError::NoLetters));
        assert_eq!(name("🙂"), Err(TextError::NoLetters));
    }

    #[test]
    fn a_name_is_at_most_eighty_characters() {
        assert!(name(&"a".repeat(80)).is_ok());
        assert_eq!(
            name(&"a".repeat(81)),
            Err(TextError::TooLong { max: 80, got: 81 })
        );
        assert_eq!(name("   "), Err(TextError::Empty));
    }

    proptest! {
        #[test]
        fn bounded_never_panics(s in any::<String>(), max in 0usize..300) {
            let _ = bounded(&s, max);
        }

        #[test]
        fn accepted_text_is_clean_and_within_bounds(s in any::<String>(), max in 1usize..300) {
            if let Ok(t) = bounded(&s, max) {
                prop_assert!(t.graphemes(true).count() <= max);
                prop_assert_eq!(t.trim(), t.as_str());
                prop_assert!(!t.contains("\n\n\n"));
                prop_assert!(!t.chars().any(|c| c != '\n' && c.is_control()));
                prop_assert!(!t.chars().any(is_invisible));
                prop_assert!(t.chars().any(char::is_alphanumeric));
                // Cleaning is idempotent.
                prop_assert_eq!(bounded(&t, max), Ok(t.clone()));
            }
        }

        #[test]
        fn name_never_panics(s in any::<String>()) {
            if let Ok(n) = name(&s) {
                prop_assert!(n.chars().any(char::is_alphabetic));
                prop_assert!(!n.contains('\n'));
            }
        }

        #[test]
        fn name_never_panics_on_mixed_scripts(
            s in "[a-zA-Z0-9 \n\t\u{0900}-\u{097F}\u{200B}-\u{200F}\u{202A}-\u{202E}\u{0600}-\u{06FF}\u{1F600}-\u{1F64F}]{0,100}"
        ) {
            let _ = name(&s);
            let _ = bounded(&s, 50);
        }
    }
}
