//! A phone's IMEI, checked with its Luhn digit, and identity document numbers, kept masked.

use super::digits::ascii_digit;
use super::words::is_zero_width;

/// Why an IMEI answer is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImeiError {
    /// Not exactly 15 digits, or something other than digits and separators.
    NotFifteenDigits,
    /// 15 digits whose last one is not their Luhn check digit: a typo.
    BadCheckDigit,
}

const IMEI_DIGITS: usize = 15;

/// 15 digits (spaces/dashes/slashes allowed, Devanagari digits allowed) with a valid Luhn check
/// digit → the 15 ASCII digits. A leading "IMEI" label ("IMEI: 4901…", "imei no. 4901…") is
/// allowed too; any other letter or symbol → NotFifteenDigits.
pub fn parse_imei(s: &str) -> Result<String, ImeiError> {
    let mut digits = String::with_capacity(IMEI_DIGITS);
    for c in strip_label(s.trim()).chars() {
        if let Some(d) = ascii_digit(c) {
            if digits.len() == IMEI_DIGITS {
                return Err(ImeiError::NotFifteenDigits);
            }
            digits.push(d);
        } else if !(c.is_whitespace() || is_zero_width(c) || matches!(c, '-' | '/')) {
            return Err(ImeiError::NotFifteenDigits);
        }
    }
    if digits.len() != IMEI_DIGITS {
        return Err(ImeiError::NotFifteenDigits);
    }
    if luhn_valid(&digits) {
        Ok(digits)
    } else {
        Err(ImeiError::BadCheckDigit)
    }
}

/// The text after a leading "IMEI" label with its optional "number" / "no." / "no" and ":" /
/// "#" / "-".
fn strip_label(s: &str) -> &str {
    let Some(head) = s.get(..4).filter(|h| h.eq_ignore_ascii_case("imei")) else {
        return s;
    };
    let mut rest = &s[head.len()..];
    for word in ["number", "no.", "no"] {
        let trimmed = rest.trim_start();
        if let Some(after) = trimmed
            .get(..word.len())
            .filter(|w| w.eq_ignore_ascii_case(word))
        {
            rest = &trimmed[after.len()..];
            break;
        }
    }
    rest.trim_start()
        .trim_start_matches([':', '#', '-'])
        .trim_start()
}

/// Luhn over ASCII digits: from the right, double every second digit.
fn luhn_valid(digits: &str) -> bool {
    let sum: u32 = digits
        .bytes()
        .rev()
        .enumerate()
        .map(|(i, b)| {
            let d = u32::from(b.wrapping_sub(b'0'));
            if i % 2 == 1 {
                let twice = d * 2;
                if twice > 9 { twice - 9 } else { twice }
            } else {
                d
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

const DOC_MIN: usize = 4;
const DOC_MAX: usize = 20;
const DOC_VISIBLE: usize = 4;

/// Identity document number (Aadhaar, PAN, passport, voter id, DL…): keep letters/digits only,
/// require 4..=20 of them, and return it masked so only the last 4 remain, e.g. "XXXXXXXX1234"
/// (one X per hidden char). None when unusable.
///
/// Letters and digits are the ASCII ones (documents are numbered in Latin script), Devanagari
/// digits read as 0-9, letters uppercased; everything else (spaces, dashes, a Hindi label such as
/// "आधार") is dropped.
pub fn mask_document(s: &str) -> Option<String> {
    let mut kept: Vec<char> = Vec::with_capacity(DOC_MAX);
    for c in s.chars() {
        let c = ascii_digit(c).unwrap_or(c);
        if c.is_ascii_alphanumeric() {
            if kept.len() == DOC_MAX {
                return None;
            }
            kept.push(c.to_ascii_uppercase());
        }
    }
    if kept.len() < DOC_MIN {
        return None;
    }
    let hidden = kept.len() - DOC_VISIBLE;
    let mut masked = "X".repeat(hidden);
    masked.extend(&kept[hidden..]);
    Some(masked)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const IMEI: &str = "490154203237518";

    #[test]
    fn a_known_valid_imei_is_accepted() {
        assert_eq!(parse_imei(IMEI).as_deref(), Ok(IMEI));
        assert_eq!(
            parse_imei("356938035643809").as_deref(),
            Ok("356938035643809")
        );
    }

    #[test]
    fn spaces_dashes_and_slashes_in_an_imei_are_ignored() {
        for s in [
            "49 015420 323751 8",
            "49-015420-323751-8",
            "490154/20/3237518",
            "  490154203237518\n",
            "4901 5420 3237 518",
        ] {
            assert_eq!(parse_imei(s).as_deref(), Ok(IMEI), "{s}");
        }
    }

    #[test]
    fn devanagari_digits_in_an_imei_are_read() {
        assert_eq!(parse_imei("४९०१५४२०३२३७५१८").as_deref(), Ok(IMEI));
        assert_eq!(parse_imei("४९०१५४ 203237518").as_deref(), Ok(IMEI));
    }

    #[test]
    fn an_imei_label_in_front_is_allowed() {
        for s in [
            "IMEI: 490154203237518",
            "imei 490154203237518",
            "IMEI No. 490154203237518",
        ] {
            assert_eq!(parse_imei(s).as_deref(), Ok(IMEI), "{s}");
        }
    }

    #[test]
    fn a_wrong_check_digit_is_a_typo() {
        assert_eq!(parse_imei("490154203237519"), Err(ImeiError::BadCheckDigit));
    }

    #[test]
    fn a_swap_of_neighbouring_digits_is_caught() {
        assert_eq!(parse_imei("940154203237518"), Err(ImeiError::BadCheckDigit));
    }

    #[test]
    fn too_few_or_too_many_digits_are_refused() {
        for s in [
            "",
            "4901542032375",
            "49015420323751",
            "4901542032375180",
            "१२३",
        ] {
            assert_eq!(parse_imei(s), Err(ImeiError::NotFifteenDigits), "{s}");
        }
        assert_eq!(
            parse_imei(&"1".repeat(100_000)),
            Err(ImeiError::NotFifteenDigits)
        );
    }

    #[test]
    fn letters_or_symbols_in_an_imei_are_refused() {
        for s in [
            "49015420323751O",
            "490154203237518!",
            "a490154203237518",
            "📱490154203237518",
        ] {
            assert_eq!(parse_imei(s), Err(ImeiError::NotFifteenDigits), "{s}");
        }
    }

    #[test]
    fn an_aadhaar_number_is_masked_to_its_last_four() {
        assert_eq!(
            mask_document("1234 5678 9012").as_deref(),
            Some("XXXXXXXX9012")
        );
    }

    #[test]
    fn a_pan_is_uppercased_and_masked() {
        assert_eq!(mask_document("abcde1234f").as_deref(), Some("XXXXXX234F"));
    }

    #[test]
    fn separators_and_a_hindi_label_are_dropped_from_a_document() {
        assert_eq!(
            mask_document("आधार: १२३४-५६७८-९०१२").as_deref(),
            Some("XXXXXXXX9012")
        );
        assert_eq!(
            mask_document("DL-14 2011 0012345").as_deref(),
            Some("XXXXXXXXXXX2345")
        );
    }

    #[test]
    fn document_length_limits_are_four_to_twenty() {
        assert_eq!(mask_document("1234").as_deref(), Some("1234"));
        assert_eq!(mask_document("123"), None);
        assert_eq!(mask_document(&"A".repeat(20)).map(|m| m.len()), Some(20));
        assert_eq!(mask_document(&"A".repeat(21)), None);
        assert_eq!(mask_document(""), None);
        assert_eq!(mask_document("---- 🙂 ----"), None);
    }

    proptest! {
        #[test]
        fn parse_imei_never_panics(s in any::<String>()) {
            let _ = parse_imei(&s);
        }

        #[test]
        fn every_fourteen_digits_have_exactly_one_check_digit(body in "[0-9]{14}") {
            let valid: Vec<u8> = (0..10u8)
                .filter(|d| parse_imei(&format!("{body}{d}")).is_ok())
                .collect();
            prop_assert_eq!(valid.len(), 1);
        }

        #[test]
        fn any_single_wrong_digit_is_caught(pos in 0usize..15, add in 1u8..10) {
            let mut digits: Vec<u8> = IMEI.bytes().collect();
            digits[pos] = b'0' + (digits[pos] - b'0' + add) % 10;
            let s = String::from_utf8(digits).unwrap_or_default();
            prop_assert_eq!(parse_imei(&s), Err(ImeiError::BadCheckDigit));
        }

        #[test]
        fn mask_document_never_panics_and_hides_all_but_four(s in any::<String>()) {
            if let Some(m) = mask_document(&s) {
                prop_assert!((4..=20).contains(&m.len()));
                prop_assert!(m.chars().rev().skip(4).all(|c| c == 'X'));
            }
        }
    }
}
