//! Indian mobile numbers: read in any common written form, stored in E.164 (`+91XXXXXXXXXX`).

use super::digits::ascii_digit;
use super::words::is_zero_width;

/// No written form of a mobile number has more digits than `0091` + 10.
const MAX_DIGITS: usize = 14;

/// Indian mobile → E.164 "+91XXXXXXXXXX". Accepts Devanagari digits, spaces, dashes, dots,
/// parentheses, +91 / 91 / 0 / 0091 prefixes. The 10-digit number must start with 6-9.
/// Anything else (letters, a `+` that is not the first character, another country code) → None.
pub fn parse_indian_mobile(s: &str) -> Option<String> {
    let mut digits = String::with_capacity(MAX_DIGITS);
    let mut plus = false;
    for c in s.chars() {
        if let Some(d) = ascii_digit(c) {
            if digits.len() == MAX_DIGITS {
                return None;
            }
            digits.push(d);
        } else if c == '+' {
            // Only one `+`, before every digit.
            if plus || !digits.is_empty() {
                return None;
            }
            plus = true;
        } else if !(c.is_whitespace() || is_zero_width(c) || matches!(c, '-' | '.' | '(' | ')')) {
            return None;
        }
    }
    let national = if plus {
        digits.strip_prefix("91")?
    } else {
        match digits.len() {
            10 => digits.as_str(),
            11 => digits.strip_prefix('0')?,
            12 => digits.strip_prefix("91")?,
            14 => digits.strip_prefix("0091")?,
            _ => return None,
        }
    };
    let valid = national.len() == 10 && national.starts_with(['6', '7', '8', '9']);
    valid.then(|| format!("+91{national}"))
}

/// The ten national digits of a well-formed `+91XXXXXXXXXX`.
fn national(e164: &str) -> Option<&str> {
    e164.strip_prefix("+91")
        .filter(|n| n.len() == 10 && n.bytes().all(|b| b.is_ascii_digit()))
}

/// "+919876543210" → "+91 98765 43210" for display; masks nothing. Anything that is not a
/// well-formed Indian E.164 number is returned unchanged.
pub fn display(e164: &str) -> String {
    match national(e164) {
        Some(n) => format!("+91 {} {}", &n[..5], &n[5..]),
        None => e164.to_string(),
    }
}

/// For logs: "+91******3210". Anything else keeps only its last 4 characters, each earlier
/// character becoming `*` (and a string of 4 characters or fewer is masked entirely), so a
/// malformed number never reaches a log whole.
pub fn mask(e164: &str) -> String {
    if let Some(n) = national(e164) {
        return format!("+91******{}", &n[6..]);
    }
    let count = e164.chars().count();
    if count <= 4 {
        return "*".repeat(count);
    }
    e164.chars()
        .enumerate()
        .map(|(i, c)| if i < count - 4 { '*' } else { c })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const E164: &str = "+919876543210";

    #[test]
    fn a_plain_ten_digit_mobile_is_read() {
        assert_eq!(parse_indian_mobile("9876543210").as_deref(), Some(E164));
    }

    #[test]
    fn every_accepted_prefix_is_read() {
        for s in [
            "+919876543210",
            "+91 98765 43210",
            "+91-98765-43210",
            "919876543210",
            "09876543210",
            "0091 98765 43210",
            "0091-9876543210",
        ] {
            assert_eq!(parse_indian_mobile(s).as_deref(), Some(E164), "{s}");
        }
    }

    #[test]
    fn devanagari_digits_in_mobile_are_read() {
        assert_eq!(parse_indian_mobile("९८७६५४३२१०").as_deref(), Some(E164));
        assert_eq!(
            parse_indian_mobile("+९१ ९८७६५ ४३२१०").as_deref(),
            Some(E164)
        );
        assert_eq!(parse_indian_mobile("98765 ४३२१०").as_deref(), Some(E164));
    }

    #[test]
    fn spaces_dashes_dots_and_parentheses_are_ignored() {
        for s in [
            " 98765 43210 ",
            "98765-43210",
            "98.765.432.10",
            "(+91) 98765 43210",
            "+91 (987) 654-3210",
            "98765\u{00A0}43210",
            "98765\u{200B}43210",
        ] {
            assert_eq!(parse_indian_mobile(s).as_deref(), Some(E164), "{s}");
        }
    }

    #[test]
    fn every_allowed_first_digit_is_accepted() {
        for first in ['6', '7', '8', '9'] {
            let s = format!("{first}123456789");
            assert_eq!(parse_indian_mobile(&s), Some(format!("+91{s}")));
        }
    }

    #[test]
    fn a_number_starting_with_0_to_5_is_refused() {
        for s in ["5876543210", "1234567890", "+91 5876543210", "0 5876543210"] {
            assert_eq!(parse_indian_mobile(s), None, "{s}");
        }
    }

    #[test]
    fn wrong_lengths_are_refused() {
        for s in [
            "",
            "98765",
            "987654321",
            "98765432101",
            "+9198765432",
            "9198765432101",
        ] {
            assert_eq!(parse_indian_mobile(s), None, "{s}");
        }
    }

    #[test]
    fn other_country_codes_are_refused() {
        for s in [
            "+1 415 555 2671",
            "+449876543210",
            "+92 9876543210",
            "+9876543210",
        ] {
            assert_eq!(parse_indian_mobile(s), None, "{s}");
        }
    }

    #[test]
    fn letters_and_misplaced_plus_are_refused() {
        for s in [
            "mobile 9876543210",
            "98765O3210",
            "98765+43210",
            "++919876543210",
            "9876543210 ext 5",
            "🙂9876543210",
        ] {
            assert_eq!(parse_indian_mobile(s), None, "{s}");
        }
    }

    #[test]
    fn a_huge_run_of_digits_is_refused() {
        assert_eq!(parse_indian_mobile(&"9".repeat(100_000)), None);
    }

    #[test]
    fn display_groups_the_number() {
        assert_eq!(display(E164), "+91 98765 43210");
    }

    #[test]
    fn display_leaves_anything_else_unchanged() {
        assert_eq!(display("hello"), "hello");
        assert_eq!(display("+91 98765"), "+91 98765");
        assert_eq!(display(""), "");
    }

    #[test]
    fn mask_keeps_only_the_last_four_digits() {
        assert_eq!(mask(E164), "+91******3210");
    }

    #[test]
    fn mask_hides_a_malformed_number_too() {
        assert_eq!(mask("98765432"), "****5432");
        assert_eq!(mask("123"), "***");
        assert_eq!(mask(""), "");
        assert_eq!(mask("+९१९८७६५४३२१०"), "*********३२१०");
    }

    proptest! {
        #[test]
        fn parse_never_panics(s in any::<String>()) {
            let _ = parse_indian_mobile(&s);
        }

        #[test]
        fn display_and_mask_never_panic(s in any::<String>()) {
            let _ = display(&s);
            let masked = mask(&s);
            prop_assert_eq!(masked.chars().count(), s.chars().count());
        }

        #[test]
        fn every_valid_mobile_round_trips(first in 6u8..=9, rest in "[0-9]{9}", prefix in prop::sample::select(vec!["", "+91", "+91 ", "91", "0", "0091"])) {
            let national = format!("{first}{rest}");
            let parsed = parse_indian_mobile(&format!("{prefix}{national}"));
            prop_assert_eq!(parsed.clone(), Some(format!("+91{national}")));
            let e164 = parsed.unwrap_or_default();
            prop_assert_eq!(parse_indian_mobile(&display(&e164)), Some(e164.clone()));
            prop_assert!(mask(&e164).ends_with(&national[6..]));
        }

        #[test]
        fn a_parsed_mobile_is_always_e164(s in "[+0-9 ()\\-.]{0,20}") {
            if let Some(e) = parse_indian_mobile(&s) {
                prop_assert_eq!(e.len(), 13);
                prop_assert!(e.starts_with("+91"));
                prop_assert!(matches!(e.as_bytes()[3], b'6'..=b'9'));
            }
        }
    }
}
